/* SPDX-License-Identifier: MIT */
/*
 * net/sock.c - the socket kind of transport (net_int.h): TCP and UNIX
 * stream sockets over the ring.  The public calls reach it through its
 * vtable (transport.c); TLS (tls.c) is a transport over one of these.
 *
 * The pipe kind (proa_pipe_open(): pipes, FIFOs, ttys, character devices)
 * is the same record and the same machine with its own vtable: the write
 * buffer, water marks, states and close rule are the socket's, and only
 * the system calls differ - read(2) into the transport's own buffer for
 * recv, writev(2) for sendmsg, close(2) of the write end for shutdown,
 * and a read end and a write end that may be two descriptors, or none.
 *
 * One receive, one sendmsg and one control op (shutdown, then close) per
 * connection, each at most once in flight:
 *
 *   rop  multishot recv selecting from the loop's buffer ring (a single
 *        shot into the transport's own buffer where there is none); the
 *        buffer goes back to the ring as soon as data_received returns;
 *        -ENOBUFS parks the transport until buffers come back (the data
 *        waits in the socket, nothing is lost)
 *   wop  sendmsg gathering up to 64 chunks of the write buffer; writes
 *        made during an iteration leave together at its end (netloop's
 *        hook), so a busy loop makes no system call per write.  A file
 *        chunk (sendfile) at the head goes by splice instead: file to
 *        the transport's pipe, pipe to socket, and a poll for room when
 *        the socket is full
 *   xop  shutdown(SHUT_WR) for write_eof and graceful close, then close
 *
 * States (enum proa_transport_state):
 *
 *   OPEN --write_eof--> HALF_LOCAL --EOF--> CLOSING
 *   OPEN --EOF, eof_received true--> HALF_PEER --close--> CLOSING
 *   OPEN/HALF_* --close or EOF--> CLOSING --flushed, SHUT_WR--> TEARDOWN
 *   any --abort, error, timeout--> TEARDOWN --rop, wop, xop idle--> CLOSED
 *   CLOSED --close(2) done--> connection_lost(err), freed
 *
 * The descriptor is closed only once no operation on it is in flight
 * (docs/architecture.md rule 6), and connection_lost is the last callback.
 *
 * Thread: loop, everything.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net_int.h"

#define DEFAULT_HIGH ((size_t)64 * 1024)
#define DEFAULT_LOW ((size_t)16 * 1024)
#define PIPE_READ ((size_t)64 * 1024) /* a pipe's read buffer, at least */

/* What wop is doing (t->wkind). */
enum { W_SENDMSG, W_FILL, W_DRAIN, W_POLL };

/*
 * Zero-copy sends (proa_net_set_send_zc()), per connection (t->zc): the
 * first one is a trial - until its notification says whether the kernel
 * sent from our pages or copied after all, the connection sends plainly -
 * and decides for the rest of the connection.
 */
enum { ZC_UNTRIED, ZC_TRIAL, ZC_ON, ZC_OFF };

/*
 * A zero-copy send: its own op, because the op outlives the send (the
 * notification comes when the peer acknowledged the bytes, long after the
 * connection may have sent more, or gone), and the chunks it sent from,
 * pinned until then.  The transport's iovecs and msghdr serve it as they
 * serve wop: the kernel has read them by the first callback.
 */
struct proa__zcsend {
	struct proa_op op;
	struct proa__netloop *nl;
	struct proa__sock *t;	  /* until the first callback */
	struct proa__sock *trial; /* whose trial this is, while it lives */
	unsigned n;
	struct proa__chunk *pin[PROA__SEND_IOV];
};

static void recv_done(struct proa_op *op);
static void send_done(struct proa_op *op);
static void wait_room(struct proa__sock *t, int fd);
static void teardown(struct proa__sock *t);
static void fatal(struct proa__sock *t, int err);
static int sock_close(struct proa_transport *bt);
static bool sock_can_write_eof(const struct proa_transport *bt);

static const struct proa__transport_vt sock_vt;

static struct proa__sock *of(const struct proa_transport *bt)
{
	return proa_container_of(bt, struct proa__sock, base);
}

struct proa__sock *proa__sock_of(const struct proa_transport *t)
{
	return t && t->vt == &sock_vt && !of(t)->is_pipe ? of(t) : NULL;
}

static void set_state(struct proa__sock *t, enum proa_transport_state s)
{
	proa__transport_set_state(&t->base, s);
}

static bool can_read(const struct proa__sock *t)
{
	return t->fd >= 0 &&
	       (t->base.state == PROA_TS_OPEN ||
		t->base.state == PROA_TS_HALF_LOCAL) &&
	       !t->eof_seen;
}

static bool can_write(const struct proa__sock *t)
{
	return t->wfd >= 0 &&
	       (t->base.state == PROA_TS_OPEN ||
		t->base.state == PROA_TS_HALF_PEER) &&
	       !t->eof_pending;
}

/* ---- receiving ---------------------------------------------------------- */

/*
 * Receiving descriptors (proa_transport_recv_fds()): one recvmsg at a
 * time into the transport's own buffer, with room for one SCM_RIGHTS
 * message; what arrives is queued for proa_transport_take_fd().
 */
struct proa__fdrx {
	struct msghdr msg;
	struct iovec iov;
	int *q; /* received, not yet taken: q[head..n) */
	unsigned head, n, cap;
	union {
		struct cmsghdr h;
		unsigned char
		    b[CMSG_SPACE(sizeof(int) * PROA_TRANSPORT_FDS_MAX)];
	} ctl;
};

/* No room for another message's descriptors: stop receiving until the
 * owner takes some, so that a peer cannot make us hold more than
 * PROA_TRANSPORT_FDS_QUEUED descriptors (and starve the process of them). */
static bool fdrx_full(const struct proa__fdrx *rx)
{
	return rx->n - rx->head + PROA_TRANSPORT_FDS_MAX >
	       PROA_TRANSPORT_FDS_QUEUED;
}

static void fdrx_free(struct proa__fdrx *rx)
{
	unsigned i;

	if (!rx)
		return;
	for (i = rx->head; i < rx->n; i++)
		close(rx->q[i]);
	free(rx->q);
	free(rx);
}

static int fdrx_recv(struct proa__sock *t)
{
	struct proa__fdrx *rx = t->fdrx;

	/* The kernel rewrites the lengths: set them for each receive. */
	memset(&rx->msg, 0, sizeof(rx->msg));
	rx->iov.iov_base = t->rbuf;
	rx->iov.iov_len = t->rlen;
	rx->msg.msg_iov = &rx->iov;
	rx->msg.msg_iovlen = 1;
	rx->msg.msg_control = rx->ctl.b;
	rx->msg.msg_controllen = sizeof(rx->ctl.b);
	return proa_op_recvmsg(t->base.loop, &t->rop, t->fd, &rx->msg,
			       MSG_CMSG_CLOEXEC);
}

/* Queue one descriptor; closed if there is no room for it. */
static int fdrx_push(struct proa__fdrx *rx, int fd)
{
	unsigned cap = rx->cap ? rx->cap * 2 : 8;
	int *q;

	if (rx->head > 0 && rx->head == rx->n)
		rx->head = rx->n = 0;
	if (rx->n == rx->cap) {
		q = realloc(rx->q, cap * sizeof(*q));
		if (!q) {
			close(fd);
			return -ENOMEM;
		}
		rx->q = q;
		rx->cap = cap;
	}
	rx->q[rx->n++] = fd;
	return 0;
}

/*
 * The recvmsg that just ended brought bytes: queue the descriptors that
 * came with them, before data_received shows the bytes.  0, or the
 * transport failed: -EMSGSIZE when the kernel had more descriptors than
 * room (MSG_CTRUNC: it closed the rest, and the peer would never know).
 */
static int fdrx_arrived(struct proa__sock *t)
{
	struct proa__fdrx *rx = t->fdrx;
	struct cmsghdr *c;
	size_t i, nfd;
	int fd, err = 0;

	for (c = CMSG_FIRSTHDR(&rx->msg); c; c = CMSG_NXTHDR(&rx->msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < nfd; i++) {
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			if (fdrx_push(rx, fd) < 0)
				err = -ENOMEM;
		}
	}
	if (rx->msg.msg_flags & MSG_CTRUNC)
		err = -EMSGSIZE;
	if (err)
		fatal(t, err);
	return err;
}

/*
 * Multishot where the loop has it, unless the transport receives one
 * buffer at a time (recv_oneshot, or after a pause).  A one-shot receive
 * on a socket the last receive left empty - a request/response peer just
 * answered - waits for data before trying (POLL_FIRST): the first attempt
 * would fail.  Measured on proa-httpd, 13-byte responses, 100
 * connections: 6.16 us of server CPU per request without it, 5.57 with
 * it (multishot: 5.19).
 */
static unsigned recv_flags(const struct proa__sock *t)
{
	if (t->nl->multishot && !t->oneshot)
		return PROA_RECV_MULTISHOT;
	return t->sock_nonempty ? 0 : PROA_RECV_POLL_FIRST;
}

/*
 * A write-only pipe on a FIFO has no read to notice its reader going
 * away, so it polls its write end while it is open for writing: POLLIN
 * never holds there, and POLLERR comes once no reader is left (asyncio's
 * write pipe transport does the same).  Not on a tty or other device,
 * whose write end may also be readable (a terminal the user types on).
 */
static void watch_hup(struct proa__sock *t)
{
	int ret;

	if (!proa_op_is_idle(&t->rop) || !t->want_read || !can_write(t))
		return;
	ret = proa_op_poll(t->base.loop, &t->rop, t->wfd, POLLIN, 0);
	if (ret < 0)
		fatal(t, ret);
}

static void start_read(struct proa__sock *t)
{
	struct proa__netloop *nl = t->nl;
	int ret;

	if (t->watch_hup) {
		watch_hup(t);
		return;
	}
	if (!proa_op_is_idle(&t->rop) || t->on_starved || !t->want_read ||
	    !can_read(t) || t->held_len > 0 || (t->fdrx && fdrx_full(t->fdrx)))
		return;
	if (t->is_pipe && t->rpoll)
		ret = proa_op_poll(t->base.loop, &t->rop, t->fd, POLLIN, 0);
	else if (t->is_pipe)
		ret = proa_op_read(t->base.loop, &t->rop, t->fd, t->rbuf,
				   t->rlen, -1);
	else if (t->fdrx)
		ret = fdrx_recv(t);
	else if (nl->br) {
		t->armed_big = t->big;
		ret = proa_op_recv_select(t->base.loop, &t->rop, t->fd,
					  t->big ? nl->big : nl->br,
					  recv_flags(t));
	} else
		ret = proa_op_recv(t->base.loop, &t->rop, t->fd, t->rbuf,
				   t->rlen, 0);
	if (ret < 0)
		fatal(t, ret);
}

static void stop_read(struct proa__sock *t)
{
	if (t->on_starved) {
		proa_list_del(&t->starve_link);
		t->on_starved = false;
	}
	if (!proa_op_is_idle(&t->rop))
		proa_op_cancel(&t->rop); /* -EALREADY is fine */
}

/* Keep bytes that arrived after pause_reading() (a multishot receive is
 * cancelled asynchronously) until resume_reading(). */
static int hold(struct proa__sock *t, const void *data, size_t len)
{
	unsigned char *p = realloc(t->held, t->held_len + len);

	if (!p)
		return -ENOMEM;
	memcpy(p + t->held_len, data, len);
	t->held = p;
	t->held_len += len;
	return 0;
}

static void on_eof(struct proa__sock *t)
{
	bool keep = false;

	t->eof_seen = true;
	if (!t->want_read || t->held_len > 0)
		return; /* told on resume_reading() */
	/* Told in HALF_LOCAL too (asyncio does); there the answer does not
	 * matter, both directions are done.  A read-only pipe has no write
	 * side to keep. */
	if (t->base.proto->ops->eof_received)
		keep = t->base.proto->ops->eof_received(t->base.proto) &&
		       t->wfd >= 0;
	if (t->base.state != PROA_TS_OPEN &&
	    t->base.state != PROA_TS_HALF_LOCAL)
		return; /* the protocol closed or aborted meanwhile */
	if (t->base.state == PROA_TS_OPEN && keep) {
		set_state(t, PROA_TS_HALF_PEER);
		return;
	}
	/* Both directions done (HALF_LOCAL), or the protocol did not keep
	 * the write side: a clean close. */
	if (t->base.state == PROA_TS_OPEN ||
	    t->base.state == PROA_TS_HALF_LOCAL)
		sock_close(&t->base);
}

/*
 * Show @len received bytes to the protocol, @piece at a time (a big-class
 * buffer is shown a shared buffer's worth at a time, so that no
 * data_received is bigger than the loop's receive size: proa-httpd sizes
 * its input buffer by it), stopping as soon as the protocol pauses: the
 * rest is held until it resumes.
 */
static void deliver(struct proa__sock *t, const unsigned char *data, size_t len,
		    size_t piece)
{
	size_t n;
	int ret;

	while (len > 0) {
		if (!can_read(t))
			return; /* closing: dropped, as asyncio does */
		if (!t->want_read || t->held_len > 0) {
			ret = hold(t, data, len);
			if (ret < 0)
				fatal(t, ret);
			return;
		}
		n = len < piece ? len : piece;
		t->base.proto->ops->data_received(t->base.proto, data, n);
		data += n;
		len -= n;
	}
}

/*
 * A pipe's read or its poll for input ended with *@res.  False: nothing
 * to hand on (read again, or poll first); true: *@res is what
 * recv_done() handles as a receive's result (0 for EOF).
 */
static bool pipe_read_res(struct proa__sock *t, int *res)
{
	if (t->rpoll) {
		t->rpoll = false;
		return *res < 0; /* input may be there: read it */
	}
	if (*res == -EAGAIN) {
		/* A descriptor in O_NONBLOCK mode, on a kernel whose io_uring
		 * answers -EAGAIN for those instead of waiting (6.18 waits;
		 * older ones need not): wait for input here, leaving the
		 * file's flags as its owner set them. */
		t->rpoll = true;
		return false;
	}
	/* A pty's master reads EIO once the last slave is closed: that is
	 * its end of file. */
	if (*res == -EIO)
		*res = 0;
	return true;
}

/* watch_hup()'s poll ended. */
static void hup_done(struct proa__sock *t, int res)
{
	if (t->base.state == PROA_TS_TEARDOWN) {
		teardown(t);
		return;
	}
	if (res > 0 && (res & (POLLERR | POLLHUP))) {
		/* The reader is gone: with nothing buffered that is a clean
		 * end; buffered bytes could never be delivered. */
		fatal(t, t->wbytes > 0 ? -EPIPE : 0);
		return;
	}
	if (res < 0 && res != -ECANCELED) {
		fatal(t, res);
		return;
	}
	start_read(t);
}

/*
 * The buffer class (netloop.c): a receive that filled a whole buffer of
 * the shared ring moves its connection to the big class; SMALL_RUN
 * receives in a row that a shared buffer would have held move it back,
 * and so does a big ring that ran dry (the shared one serves it, and
 * starves it if need be, as before).  A multishot receive keeps the ring
 * it was armed with: it is cancelled, and start_read() arms the new
 * class once it has ended.  A 64 KiB message over loopback comes as
 * about 64 KiB and a small remainder, so a streaming connection's run of
 * small receives stays short.  A one-shot transport (recv_oneshot, or one
 * that paused reading once) keeps to the shared ring: what a pause holds
 * is then one shared buffer at most (sock_pause_reading()).
 */
#define SMALL_RUN 8

static void set_class(struct proa__sock *t, bool big, bool more)
{
	t->big = big;
	t->small_run = 0;
	if (big)
		t->nl->promoted++;
	else
		t->nl->demoted++;
	if (more && !t->oneshot)
		proa_op_cancel(&t->rop); /* -EALREADY is fine */
}

static void resize(struct proa__sock *t, size_t res, bool more)
{
	struct proa__netloop *nl = t->nl;

	if (res > nl->rx_max)
		nl->rx_max = res;
	if (!t->armed_big) {
		if (!t->big && !t->oneshot && res >= nl->bufsize &&
		    proa__netloop_big(nl))
			set_class(t, true, more);
		return;
	}
	if (res >= nl->bufsize)
		t->small_run = 0;
	else if (t->big && ++t->small_run >= SMALL_RUN)
		set_class(t, false, more);
}

static void recv_done(struct proa_op *op)
{
	struct proa__sock *t = op->data;
	struct proa__netloop *nl = t->nl;
	bool more = op->flags & PROA_OP_F_MORE;
	int res = op->res;
	unsigned id;

	if (t->watch_hup) {
		hup_done(t, res);
		return;
	}
	if (t->is_pipe && !pipe_read_res(t, &res))
		res = -ECANCELED; /* no data, no error: read again */
	if (res > 0) {
		t->sock_nonempty = op->flags & PROA_OP_F_SOCK_NONEMPTY;
		t->last_io = proa_loop_time(t->base.loop);
		if (op->flags & PROA_OP_F_BUFFER) {
			id = proa_op_buffer_id(op);
			nl->cur = proa_buf_ring_buf(
			    t->armed_big ? nl->big : nl->br, id);
			nl->cur_len = (size_t)res;
			nl->cur_bid =
			    (int32_t)id | (t->armed_big ? PROA__BID_BIG : 0);
			resize(t, (size_t)res, more);
			proa__netloop_buf_hold(nl, nl->cur_bid);
			deliver(t, nl->cur, (size_t)res, nl->bufsize);
			/* Back to the kernel, unless writes keep it to send
			 * from (lend()). */
			proa__netloop_buf_put(nl, nl->cur_bid);
			nl->cur = NULL;
			nl->cur_bid = -1;
		} else if (!t->fdrx || fdrx_arrived(t) == 0) {
			deliver(t, t->rbuf, (size_t)res, (size_t)res);
		}
	} else if (res == 0) {
		if (can_read(t))
			on_eof(t);
	} else if (res == -ENOBUFS && t->armed_big) {
		/* The big class ran dry: the shared ring takes over. */
		nl->enobufs++;
		if (t->big)
			set_class(t, false, false);
	} else if (res == -ENOBUFS) {
		/* The ring ran dry; the data waits in the socket until
		 * buffers come back (proa__transports_feed). */
		nl->enobufs++;
		if (can_read(t) && t->want_read && !t->on_starved) {
			proa_list_add_tail(&nl->starved, &t->starve_link);
			t->on_starved = true;
		}
	} else if (res != -ECANCELED) {
		fatal(t, res);
	}
	if (more)
		return;
	if (t->base.state == PROA_TS_TEARDOWN)
		teardown(t);
	else
		start_read(t);
}

/* Re-arm the receives of starved transports while buffers last (the
 * netloop's hook, nl->feed). */
static void feed(struct proa__netloop *nl)
{
	struct proa__sock *t;

	while (!proa_list_empty(&nl->starved) &&
	       proa_buf_ring_available(nl->br) > 0) {
		t = proa_container_of(nl->starved.next, struct proa__sock,
				      starve_link);
		proa_list_del(&t->starve_link);
		t->on_starved = false;
		start_read(t);
	}
}

/* ---- sending ------------------------------------------------------------ */

/*
 * Tell the protocol where the write buffer stands.  t->proto_paused is the
 * buffer's state, changed in the call that crossed a mark; t->told_paused
 * is what the protocol was last told, and t->pause_owed says that the
 * buffer crossed the high mark since the protocol was last told it could
 * write.  The telling is deferred (rule 1), so the buffer may have gone
 * over the high mark and back under the low one before this runs: the
 * protocol still gets pause_writing and then resume_writing, because it
 * may have seen write_buffer_size() above the high mark and be waiting
 * for the resume (a deep pipeline once hung on exactly that).  The two
 * always alternate, pause first.
 */
static void notify_run(void *arg)
{
	struct proa__sock *t = arg;

	t->notify_queued = false;
	if (t->base.state >= PROA_TS_TEARDOWN)
		return;
	if (t->pause_owed) {
		t->pause_owed = false;
		t->told_paused = true;
		if (t->base.proto->ops->pause_writing)
			t->base.proto->ops->pause_writing(t->base.proto);
		if (t->base.state >= PROA_TS_TEARDOWN)
			return;
	}
	if (!t->proto_paused && t->told_paused) {
		t->told_paused = false;
		if (t->base.proto->ops->resume_writing)
			t->base.proto->ops->resume_writing(t->base.proto);
	}
}

/* pause_writing / resume_writing run from the ready queue, never inside
 * the write or the completion that crossed a mark (rule 1). */
static void queue_notify(struct proa__sock *t)
{
	if (t->notify_queued)
		return;
	if (proa_loop_call_soon(t->base.loop, &t->notify, notify_run, t) == 0)
		t->notify_queued = true;
}

/* The write buffer crossed a mark: over the high one (@paused), or back to
 * the low one.  The protocol hears of it from the ready queue. */
static void set_paused(struct proa__sock *t, bool paused)
{
	t->proto_paused = paused;
	if (paused && !t->told_paused)
		t->pause_owed = true;
	queue_notify(t);
}

static void mark_dirty(struct proa__sock *t)
{
	if (!t->on_dirty) {
		proa_list_add_tail(&t->nl->dirty, &t->dirty_link);
		t->on_dirty = true;
	}
}

static int file_chunk_to_map(struct proa__sock *t, struct proa__chunk *c);

/*
 * The file chunk @c is at the head: fill the pipe from the file, or send
 * what the pipe holds.  The bytes count as sent (consume) only once they
 * have left the pipe for the socket.  1: @c became a mapped chunk, to be
 * sent as memory (no pipe could be had).
 */
static int send_file(struct proa__sock *t, struct proa__chunk *c)
{
	uint32_t n = c->tail - c->head;
	int err;

	if (t->piped > 0) {
		t->wkind = W_DRAIN;
		/* More to come: let TCP fill whole segments meanwhile. */
		return proa_op_splice(
		    t->base.loop, &t->wop, t->pipe->rd, -1, t->fd, -1, t->piped,
		    n > t->piped || c->next ? SPLICE_F_MORE : 0);
	}
	if (!t->pipe && !(t->pipe = proa__pipe_get(t->nl))) {
		err = errno;
		/* A pipe is two descriptors.  Without them (EMFILE under
		 * load) the bytes still have to follow what was queued
		 * before them - a response head, typically - so they are
		 * sent from a mapping, which needs no descriptor. */
		if (err == EMFILE || err == ENFILE || err == ENOMEM)
			return file_chunk_to_map(t, c);
		return -err;
	}
	if (n > t->pipe->cap)
		n = t->pipe->cap;
	t->wkind = W_FILL;
	return proa_op_splice(t->base.loop, &t->wop, c->fd,
			      (int64_t)(c->foff + c->head), t->pipe->wr, -1, n,
			      0);
}

/* Whether a send (wop, or a zero-copy one's first half) is in flight. */
static bool sending(const struct proa__sock *t)
{
	return !proa_op_is_idle(&t->wop) || t->zc_send;
}

static void zc_done(struct proa_op *op);

/*
 * Send t->msg, whose @n iovecs are the bytes of @used, without a copy.
 * 0: sent; <0: send it plainly instead (-EOPNOTSUPP, -ENOMEM, or the
 * error the plain send will meet as well).
 */
static int send_zc(struct proa__sock *t, struct proa__chunk **used, int n,
		   int flags)
{
	struct proa__zcsend *z = malloc(sizeof(*z));
	int i, ret;

	if (!z)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		if (used[i]->zc_pins == UINT16_MAX) {
			free(z); /* a chunk sent in that many pieces: plainly */
			return -ENOSPC;
		}
	}
	proa_op_init(&z->op, zc_done, z);
	ret = proa_op_sendmsg_zc(t->base.loop, &z->op, t->fd, &t->msg, flags);
	if (ret < 0) {
		free(z);
		if (ret == -EOPNOTSUPP)
			t->zc = ZC_OFF;
		return ret;
	}
	for (i = 0; i < n; i++) {
		used[i]->zc_pins++;
		z->pin[i] = used[i];
	}
	z->n = (unsigned)n;
	z->nl = t->nl;
	z->t = t;
	z->trial = NULL;
	t->zc_send = z;
	t->wkind = W_SENDMSG;
	if (t->zc == ZC_UNTRIED) {
		t->zc = ZC_TRIAL;
		z->trial = t;
		t->zc_trial = z;
	}
	t->nl->zc_sends++;
	return 0;
}

static void sent(struct proa__sock *t, int res);

/* A zero-copy send's callbacks: the send's result, then (if the kernel
 * owes one) the notification that frees its chunks. */
static void zc_done(struct proa_op *op)
{
	struct proa__zcsend *z = op->data;
	struct proa__sock *t = z->t;
	unsigned i;

	if (!(op->flags & PROA_OP_F_NOTIF)) {
		int res = op->res;

		z->t = NULL;
		if (z->trial && (res < 0 || !(op->flags & PROA_OP_F_MORE))) {
			/* Nothing was sent to learn from.  -EOPNOTSUPP: the
			 * socket cannot (UNIX), and never will. */
			z->trial->zc = res == -EOPNOTSUPP ? ZC_OFF : ZC_UNTRIED;
			z->trial->zc_trial = NULL;
			z->trial = NULL;
		}
		if (t) {
			t->zc_send = NULL;
			if (res == -EOPNOTSUPP) {
				/* Nothing was sent: plainly now. */
				t->zc = ZC_OFF;
				res = 0;
			}
			sent(t, res);
		}
		if (op->flags & PROA_OP_F_MORE)
			return;
	} else {
		z->nl->zc_notifs++;
		if (op->flags & PROA_OP_F_ZC_COPIED)
			z->nl->zc_copied++;
		if (z->trial) {
			z->trial->zc = (op->flags & PROA_OP_F_ZC_COPIED) &&
					       !z->nl->zc_keep_copied
					   ? ZC_OFF
					   : ZC_ON;
			z->trial->zc_trial = NULL;
		}
	}
	for (i = 0; i < z->n; i++)
		proa__chunk_unpin(z->nl, z->pin[i]);
	free(z);
}

static void send_more(struct proa__sock *t)
{
	struct proa__chunk *c, *used[PROA__SEND_IOV];
	int n = 0, ret, flags = 0;
	size_t total = 0;

	if (sending(t) || t->wbytes == 0 || t->base.state >= PROA_TS_TEARDOWN)
		return;
	for (c = t->whead; c && c->tail == c->head; c = c->next)
		;
	if (c && c->bid == PROA__CHUNK_FILE) {
		ret = send_file(t, c);
		if (ret < 0)
			fatal(t, ret);
		if (ret != 1)
			return;
	}
	for (; c && n < PROA__SEND_IOV; c = c->next) {
		if (c->bid == PROA__CHUNK_FILE) {
			flags = MSG_MORE; /* the file follows at once */
			break;
		}
		if (c->tail == c->head)
			continue;
		/* After a fault (sent()), the caller's memory goes alone. */
		if (t->split_ref && n > 0 && c->bid == PROA__CHUNK_EXTERNAL)
			break;
		/* Descriptors go with the first byte of a sendmsg: theirs
		 * starts one. */
		if (c->fds && n > 0)
			break;
		if (c->fds) {
			t->fds_sent = c->fds;
			c->fds = NULL;
		}
		t->iov[n].iov_base = c->base + c->head;
		t->iov[n].iov_len = c->tail - c->head;
		total += t->iov[n].iov_len;
		used[n++] = c;
	}
	t->wkind = W_SENDMSG;
	t->gathered = n > 1;
	if (t->is_pipe) {
		ret = proa_op_writev(t->base.loop, &t->wop, t->wfd, t->iov, n,
				     -1);
		if (ret < 0)
			fatal(t, ret);
		return;
	}
	memset(&t->msg, 0, sizeof(t->msg));
	t->msg.msg_iov = t->iov;
	t->msg.msg_iovlen = (size_t)n;
	if (t->fds_sent) {
		t->msg.msg_control = t->fds_sent->ctl;
		t->msg.msg_controllen = t->fds_sent->len;
	}
	if (t->nl->zc_min && total >= t->nl->zc_min && !t->fds_sent &&
	    (t->zc == ZC_UNTRIED || t->zc == ZC_ON) &&
	    send_zc(t, used, n, flags) == 0)
		return;
	ret = proa_op_sendmsg(t->base.loop, &t->wop, t->fd, &t->msg, flags);
	if (ret < 0)
		fatal(t, ret);
}

/* Submit the writes of every transport on nl->dirty (the netloop's hook,
 * nl->flush). */
static void flush_dirty(struct proa__netloop *nl)
{
	struct proa__sock *t;

	while (!proa_list_empty(&nl->dirty)) {
		t = proa_container_of(nl->dirty.next, struct proa__sock,
				      dirty_link);
		proa_list_del(&t->dirty_link);
		t->on_dirty = false;
		send_more(t);
	}
}

static void shut_done(struct proa_op *op);
static void after_shut(struct proa__sock *t);

static void shut_wr(struct proa__sock *t)
{
	int ret;

	t->xop.cb = shut_done;
	if (!t->is_pipe) {
		ret = proa_op_shutdown(t->base.loop, &t->xop, t->fd, SHUT_WR);
	} else if (t->wfd >= 0 && t->wfd != t->fd) {
		/* A pipe's write end is shut by closing it: the reader sees
		 * EOF once no other process holds it open. */
		ret = proa_op_close(t->base.loop, &t->xop, t->wfd);
		if (ret == 0)
			t->wfd = -1;
	} else {
		/* No write end (read only), or one shared with the read end
		 * (a tty), which stays open for reading until teardown. */
		t->wr_shut = true;
		after_shut(t);
		return;
	}
	if (ret < 0)
		fatal(t, ret);
}

/* The write buffer is empty: a pending write_eof or close goes on. */
static void flushed(struct proa__sock *t)
{
	if (t->base.state == PROA_TS_CLOSING || t->eof_pending) {
		if (!t->wr_shut && proa_op_is_idle(&t->xop))
			shut_wr(t);
		else if (t->wr_shut && t->base.state == PROA_TS_CLOSING)
			teardown(t);
	}
}

static void shut_done(struct proa_op *op)
{
	struct proa__sock *t = op->data;

	t->wr_shut = true;
	/* ENOTCONN: the peer reset first; nothing more to say to it. */
	if (op->res < 0 && op->res != -ENOTCONN && t->err == 0)
		t->err = op->res;
	after_shut(t);
}

/* Our write side is shut: what is left of the connection? */
static void after_shut(struct proa__sock *t)
{
	/* A write-only pipe has nothing left once its write end is shut. */
	if (t->base.state == PROA_TS_CLOSING ||
	    t->base.state == PROA_TS_TEARDOWN ||
	    (t->base.state == PROA_TS_HALF_PEER && t->eof_pending) ||
	    (t->is_pipe && t->fd < 0))
		teardown(t);
}

static void consume(struct proa__sock *t, size_t n)
{
	struct proa__chunk *c;
	size_t k;

	t->wbytes -= n;
	while (n > 0 && (c = t->whead) != NULL) {
		k = c->tail - c->head;
		if (k > n)
			k = n;
		c->head += (uint32_t)k;
		n -= k;
		if (c->head == c->tail) {
			t->whead = c->next;
			if (!t->whead)
				t->wtail = NULL;
			proa__chunk_put(t->nl, c);
		}
	}
}

/*
 * A splice or its poll finished.  1: @res bytes left the pipe for the
 * socket (consume them); 0: handled here.
 */
static int file_step_done(struct proa__sock *t, int res)
{
	switch (t->wkind) {
	case W_FILL:
		if (res > 0) {
			t->piped = (uint32_t)res;
			send_more(t);
		} else {
			/* 0: the file ended before the length promised (it
			 * shrank); the peer was told more bytes would come,
			 * so the connection cannot go on. */
			fatal(t, res == 0 ? -ENODATA : res);
		}
		return 0;
	case W_DRAIN:
		if (res == -EAGAIN) {
			/* The socket is full: wait for room. */
			wait_room(t, t->fd);
			return 0;
		}
		if (res <= 0) {
			fatal(t, res == 0 ? -EIO : res);
			return 0;
		}
		t->piped -= (uint32_t)res;
		return 1;
	default: /* W_POLL: a one-shot poll (a pipe) */
		if (res < 0)
			fatal(t, res);
		else
			send_more(t);
		return 0;
	}
}

/*
 * A send found no room and said -EAGAIN, which io_uring does for an
 * O_NONBLOCK descriptor: a pipe's write end (see pipe_read_res()), and a
 * socket whose internal wait for room was woken by the peer shutting its
 * write side (a UNIX stream socket does; the retry finds no room, and a
 * request is polled only once).  Wait for room on @fd, then send again.
 *
 * A pipe polls once.  A socket polls multishot: io_uring reports POLLRDHUP
 * with every poll, level-triggered, so once the peer had shut its side a
 * one-shot poll for POLLOUT came back at once, the send failed again, and
 * the two went round in a loop that took a CPU for as long as the peer did
 * not read.  A multishot poll reports the state once and then only
 * wake-ups: room_done() passes over those without room, cancels the poll
 * at the first with it, and sends once the poll has ended.
 */
static void wait_room(struct proa__sock *t, int fd)
{
	int ret;

	t->wkind = W_POLL;
	t->room = false;
	ret = proa_op_poll(t->base.loop, &t->wop, fd, POLLOUT,
			   t->is_pipe ? 0 : PROA_POLL_MULTISHOT);
	if (ret < 0)
		fatal(t, ret);
}

/* A completion of wait_room()'s multishot poll. */
static void room_done(struct proa__sock *t, int res, bool more)
{
	if (t->base.state == PROA_TS_TEARDOWN) {
		if (!more)
			teardown(t);
		return;
	}
	if (more) {
		/* POLLERR and POLLHUP too: the send says what went wrong. */
		if (!t->room && res > 0 &&
		    (res & (POLLOUT | POLLERR | POLLHUP))) {
			t->room = true;
			proa_op_cancel(&t->wop);
		}
		return;
	}
	if (res < 0 && !(res == -ECANCELED && t->room)) {
		fatal(t, res);
		return;
	}
	/* Room, or the poll ended on its own (a CQ overflow can end it):
	 * either way the send tells. */
	send_more(t);
}

static void send_done(struct proa_op *op)
{
	struct proa__sock *t = op->data;

	if (t->wkind == W_POLL && !t->is_pipe) {
		room_done(t, op->res, op->flags & PROA_OP_F_MORE);
		return;
	}
	sent(t, op->res);
}

/* The send in flight (wop's, or a zero-copy one's) ended with @res. */
static void sent(struct proa__sock *t, int res)
{
	/* Sent (the peer holds its own references now) or failed (the
	 * connection ends): our copies of the descriptors go either way. */
	proa__fdmsg_free(t->fds_sent);
	t->fds_sent = NULL;

	if (t->base.state == PROA_TS_TEARDOWN) {
		/* A splice that won the race with the cancel still moved its
		 * bytes: keep the pipe's count true, so that a pipe with
		 * bytes in it is never handed to another connection. */
		if (res > 0 && t->wkind == W_FILL)
			t->piped += (uint32_t)res;
		else if (res > 0 && t->wkind == W_DRAIN)
			t->piped -= (uint32_t)res;
		teardown(t);
		return;
	}
	if (res == -EAGAIN && t->wkind == W_SENDMSG) {
		/* No room: wait for it (see there), then send again. */
		wait_room(t, t->wfd);
		return;
	}
	if (t->wkind != W_SENDMSG && file_step_done(t, res) == 0)
		return;
	/* Only the caller's memory (write_ref: a mapping of a file cut
	 * short since) can fault, and then the kernel sends nothing of the
	 * whole gather, though the pieces before it are good: a response
	 * complete before a broken one.  Those go first; the one that
	 * faults, alone, ends the connection. */
	if (res == -EFAULT && t->wkind == W_SENDMSG && t->gathered &&
	    !t->split_ref) {
		t->split_ref = true;
		send_more(t);
		return;
	}
	if (res < 0) {
		fatal(t, res);
		return;
	}
	t->split_ref = false;
	consume(t, (size_t)res);
	/* The file is sent: its pipe (empty now) serves another one. */
	if (t->pipe && t->piped == 0 &&
	    !(t->whead && t->whead->bid == PROA__CHUNK_FILE)) {
		proa__pipe_put(t->nl, t->pipe, true);
		t->pipe = NULL;
	}
	t->last_io = t->last_progress = proa_loop_time(t->base.loop);
	if (t->proto_paused && t->wbytes <= t->low)
		set_paused(t, false);
	if (t->wbytes > 0) {
		send_more(t); /* a short write goes on at once */
		return;
	}
	/* The write timer stays armed: it finds the buffer empty when it
	 * fires and stops there.  Cancelled here and armed again by the
	 * next write, it cost a heap insert and removal per message (~200
	 * instructions of ~2,250 an echo). */
	flushed(t);
}

/* Copy @len bytes into the buffer, all or nothing. */
static int append(struct proa__sock *t, const unsigned char *p, size_t len)
{
	struct proa__chunk *c = t->wtail, *first = NULL, **link = &first;
	size_t room = c ? c->cap - c->tail : 0, rest, k;

	if (len == 0)
		return 0; /* writev may pass empty pieces, even NULL ones */
	/* Allocate what the tail chunk cannot take before copying, so that
	 * -ENOMEM leaves the buffer as it was. */
	rest = len > room ? len - room : 0;
	while (rest > 0) {
		*link = proa__chunk_get(t->nl);
		if (!*link) {
			while (first) {
				c = first->next;
				proa__chunk_put(t->nl, first);
				first = c;
			}
			return -ENOMEM;
		}
		rest -= rest < (*link)->cap ? rest : (*link)->cap;
		link = &(*link)->next;
	}
	c = t->wtail;
	if (c && room > 0) {
		k = len < room ? len : room;
		memcpy(c->base + c->tail, p, k);
		c->tail += (uint32_t)k;
		p += k;
		len -= k;
	}
	for (c = first; c; c = c->next) {
		k = len < c->cap ? len : c->cap;
		memcpy(c->data, p, k);
		c->tail = (uint32_t)k;
		p += k;
		len -= k;
		if (t->wtail)
			t->wtail->next = c;
		else
			t->whead = c;
		t->wtail = c;
	}
	return 0;
}

/*
 * A write of bytes that a data_received is being shown from the ring, to
 * its own connection or another one of the loop: send them from there
 * instead of copying (an echo or a proxy then copies nothing in user
 * space).  Each loan holds the buffer (a big one is shown in pieces, each
 * maybe written).  Only while its ring has half its buffers free: lent
 * buffers wait for the peer to read, and the ring serves every socket of
 * the loop.  1 if lent, 0 to copy, or -ENOMEM.
 */
static int lend(struct proa__sock *t, const unsigned char *p, size_t len)
{
	struct proa__netloop *nl = t->nl;
	struct proa_buf_ring *br;
	struct proa__chunk *c;

	if (nl->cur_bid < 0 || p < nl->cur || p + len > nl->cur + nl->cur_len)
		return 0;
	/* The next piece of the buffer the last loan ends in (a big buffer
	 * shown in pieces, each echoed): the loan grows, and the send
	 * gathers one iovec instead of one per piece.  The buffer is held
	 * already; consume() and a send in flight read head and tail only
	 * when they run, so a longer tail is simply sent next. */
	c = t->wtail;
	if (c && c->bid == nl->cur_bid && c->base + c->tail == p) {
		c->tail += (uint32_t)len;
		c->cap = c->tail;
		return 1;
	}
	if (len < 512)
		return 0;
	br = nl->cur_bid & PROA__BID_BIG ? nl->big : nl->br;
	if (proa_buf_ring_available(br) * 2 < proa_buf_ring_nbufs(br))
		return 0;
	c = proa__chunk_lend(nl, nl->cur_bid, p, len);
	if (!c)
		return -ENOMEM;
	proa__netloop_buf_hold(nl, nl->cur_bid);
	nl->lent++;
	if (t->wtail)
		t->wtail->next = c;
	else
		t->whead = c;
	t->wtail = c;
	return 1;
}

static void write_timer_fire(void *arg);

static int queued(struct proa__sock *t, size_t before)
{
	if (t->wbytes == before)
		return 0;
	if (before == 0) {
		t->last_progress = proa_loop_time(t->base.loop);
		if (t->write_ns && !proa_timer_is_active(&t->write_timer))
			proa_loop_call_later(t->base.loop, &t->write_timer,
					     t->write_ns, write_timer_fire, t);
	}
	mark_dirty(t);
	if (!t->proto_paused && t->wbytes > t->high)
		set_paused(t, true);
	return 0;
}

static int sock_write(struct proa_transport *bt, const void *data, size_t len)
{
	struct proa__sock *t = of(bt);
	size_t before;
	int ret;

	if (!data && len > 0)
		return -EINVAL;
	if (!can_write(t))
		return -EPIPE;
	if (len == 0)
		return 0;
	before = t->wbytes;
	ret = lend(t, data, len);
	if (ret == 0)
		ret = append(t, data, len);
	if (ret < 0)
		return ret;
	t->wbytes += len;
	return queued(t, before);
}

/* Put a referencing chunk (write_ref, sendfile) of @len bytes at the end
 * of the write buffer. */
static int enqueue(struct proa__sock *t, struct proa__chunk *c, size_t len)
{
	size_t before = t->wbytes;

	if (t->wtail)
		t->wtail->next = c;
	else
		t->whead = c;
	t->wtail = c;
	t->wbytes += len;
	return queued(t, before);
}

static int sock_write_ref(struct proa_transport *bt, const void *data,
			  size_t len, void (*release)(void *arg), void *arg)
{
	struct proa__sock *t = of(bt);
	struct proa__chunk *c;

	/* Nothing to send: the release still comes, from the ready queue. */
	if (len == 0)
		return proa__transport_write_ref_copy(bt, data, len, release,
						      arg);
	if (!can_write(t))
		return -EPIPE;
	c = proa__chunk_external(t->nl, data, len, release, arg);
	if (!c)
		return -ENOMEM;
	return enqueue(t, c, len);
}

/*
 * The rest of file chunk @c, [foff + head, foff + tail), mapped: @c
 * becomes an external chunk over the mapping, released (unmapped, then
 * the caller's release) as write_ref's are.  1, or -errno from mmap.
 */
static int file_chunk_to_map(struct proa__sock *t, struct proa__chunk *c)
{
	struct proa__fmap *m;

	(void)t;
	m = proa__fmap_new(c->fd, c->foff + c->head, c->tail - c->head,
			   c->release, c->release_arg);
	if (!m)
		return -errno;
	c->bid = PROA__CHUNK_EXTERNAL;
	c->base = m->data;
	c->foff += c->head;
	c->tail -= c->head;
	c->cap = c->tail;
	c->head = 0;
	c->release = proa__fmap_release;
	c->release_arg = m;
	return 1;
}

static int sock_sendfile(struct proa_transport *bt, int fd, uint64_t off,
			 size_t len, void (*release)(void *arg), void *arg)
{
	struct proa__sock *t = of(bt);
	struct proa__chunk *c;

	if (len == 0)
		return proa__transport_write_ref_copy(bt, "", 0, release, arg);
	/* A pipe's write end may be a tty, which splice(2) does not take:
	 * pipes send files from a mapping. */
	if (t->is_pipe || !proa_loop_feature(bt->loop, PROA_FEAT_OP_SPLICE))
		return proa__transport_sendfile_mapped(bt, fd, off, len,
						       release, arg);
	if (!can_write(t))
		return -EPIPE;
	c = proa__chunk_file(t->nl, fd, off, len, release, arg);
	if (!c)
		return -ENOMEM;
	return enqueue(t, c, len);
}

static int sock_writev(struct proa_transport *bt, const struct iovec *iov,
		       int iovcnt)
{
	struct proa__sock *t = of(bt);
	size_t before, total = 0;
	int i, ret;

	if (!can_write(t))
		return -EPIPE;
	for (i = 0; i < iovcnt; i++) {
		if (!iov[i].iov_base && iov[i].iov_len > 0)
			return -EINVAL;
	}
	before = t->wbytes;
	for (i = 0; i < iovcnt; i++) {
		ret = append(t, iov[i].iov_base, iov[i].iov_len);
		if (ret < 0) {
			/* Earlier pieces are queued: say so honestly, as a
			 * partial write would. */
			if (t->wbytes + total == before)
				return ret;
			t->wbytes += total;
			queued(t, before);
			return ret;
		}
		total += iov[i].iov_len;
	}
	t->wbytes += total;
	return queued(t, before);
}

/* ---- closing ------------------------------------------------------------ */

static void close_done(struct proa_op *op);

static void lost_run(void *arg)
{
	struct proa__sock *t = arg;
	struct proa__chunk *c;

	proa_list_del(&t->link);
	proa_handle_cancel(&t->notify);
	proa_handle_cancel(&t->resume);
	/* A trial's notification may come after us: it decides nothing. */
	if (t->zc_trial)
		t->zc_trial->trial = NULL;
	while ((c = t->whead) != NULL) {
		t->whead = c->next;
		proa__chunk_put(t->nl, c);
	}
	if (t->pipe)
		proa__pipe_put(t->nl, t->pipe, t->piped == 0);
	free(t->held);
	free(t->rbuf);
	fdrx_free(t->fdrx);
	if (t->base.made && t->base.proto &&
	    t->base.proto->ops->connection_lost)
		t->base.proto->ops->connection_lost(t->base.proto, t->err);
	if (t->owner)
		t->owner->gone(t->owner);
	free(t);
}

static void close_done(struct proa_op *op)
{
	lost_run(op->data);
}

/* Cancel what is in flight; once nothing is, close the descriptor. */
static void teardown(struct proa__sock *t)
{
	int ret, cfd;

	if (t->base.state < PROA_TS_TEARDOWN) {
		set_state(t, PROA_TS_TEARDOWN);
		proa_timer_cancel(&t->idle_timer);
		proa_timer_cancel(&t->write_timer);
		if (t->on_dirty) {
			proa_list_del(&t->dirty_link);
			t->on_dirty = false;
		}
	}
	if (t->base.state != PROA_TS_TEARDOWN)
		return;
	stop_read(t);
	if (!proa_op_is_idle(&t->wop))
		proa_op_cancel(&t->wop);
	if (t->zc_send)
		proa_op_cancel(&t->zc_send->op);
	if (!proa_op_is_idle(&t->xop))
		proa_op_cancel(&t->xop);
	if (!proa_op_is_idle(&t->rop) || sending(t) ||
	    !proa_op_is_idle(&t->xop))
		return; /* each completion calls back here */
	set_state(t, PROA_TS_CLOSED);
	cfd = t->fd;
	if (t->wfd >= 0 && t->wfd != t->fd) {
		/* A pipe's second descriptor: nothing is in flight on it. */
		if (cfd < 0)
			cfd = t->wfd;
		else
			close(t->wfd);
	}
	t->wfd = -1;
	/* An error or a timeout ends it while zero-copy sends may still sit
	 * unacknowledged in the socket (a peer that stopped reading): closed
	 * plainly, the socket would linger as an orphan probing a shut window
	 * for minutes, with their memory pinned and proa_loop_close()
	 * refused meanwhile.  A reset frees them now; the connection is
	 * broken either way. */
	if (t->err != 0 && (t->zc == ZC_TRIAL || t->zc == ZC_ON) && cfd >= 0) {
		struct linger lg = {.l_onoff = 1, .l_linger = 0};

		(void)setsockopt(cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	t->xop.cb = close_done;
	ret = cfd >= 0 ? proa_op_close(t->base.loop, &t->xop, cfd) : -EBADF;
	if (ret < 0) {
		/* No ring for it (closing loop?), or nothing left to close
		 * (a write-only pipe shut by write_eof): close here, and
		 * still report from the ready queue, never from this call. */
		if (cfd >= 0)
			close(cfd);
		proa_loop_call_soon(t->base.loop, &t->lost, lost_run, t);
	}
}

static void fatal(struct proa__sock *t, int err)
{
	if (t->base.state >= PROA_TS_TEARDOWN)
		return;
	if (t->err == 0)
		t->err = err;
	teardown(t);
}

static int sock_close(struct proa_transport *bt)
{
	struct proa__sock *t = of(bt);

	if (t->base.state >= PROA_TS_CLOSING)
		return 0; /* as asyncio: closing twice is harmless */
	set_state(t, PROA_TS_CLOSING);
	stop_read(t);
	if (t->wbytes == 0 && !sending(t))
		flushed(t);
	return 0;
}

static int sock_abort(struct proa_transport *bt)
{
	fatal(of(bt), -ECONNABORTED);
	return 0;
}

static int sock_write_eof(struct proa_transport *bt)
{
	struct proa__sock *t = of(bt);

	/* Shut already (a pipe's write end is gone by now): -EPIPE, as a
	 * socket's second write_eof. */
	if (t->eof_pending || t->base.state >= PROA_TS_CLOSING)
		return -EPIPE;
	if (!sock_can_write_eof(bt))
		return -EOPNOTSUPP;
	if (!can_write(t))
		return -EPIPE;
	t->eof_pending = true;
	if (t->base.state == PROA_TS_OPEN)
		set_state(t, PROA_TS_HALF_LOCAL);
	if (t->wbytes == 0 && !sending(t))
		flushed(t);
	return 0;
}

static bool sock_can_write_eof(const struct proa_transport *bt)
{
	const struct proa__sock *t = of(bt);

	/* TCP and UNIX stream sockets both can.  A pipe half-closes by
	 * closing its write end: it needs one of its own (a tty's single
	 * descriptor is also the read end). */
	return !t->is_pipe || (t->wfd >= 0 && t->wfd != t->fd);
}

/* ---- reading control ---------------------------------------------------- */

static int sock_pause_reading(struct proa_transport *bt)
{
	struct proa__sock *t = of(bt);

	if (t->base.state >= PROA_TS_CLOSING)
		return -EPIPE;
	t->want_read = false;
	/* A multishot receive is cancelled asynchronously, and the kernel
	 * may post a burst of buffers (up to 32 per wake-up) before the
	 * cancel lands: all of it is held until resume_reading.  A
	 * connection that needed flow control once receives one buffer at
	 * a time from now on, so that each later pause overshoots by one
	 * buffer at most. */
	t->oneshot = true;
	if (t->big)
		set_class(t, false, false); /* one shared buffer at a time */
	stop_read(t);
	return 0;
}

static bool reading_state(const struct proa__sock *t)
{
	return t->base.state == PROA_TS_OPEN ||
	       t->base.state == PROA_TS_HALF_LOCAL;
}

/*
 * Hand over what arrived while reading was paused, a receive buffer's
 * worth at a time, stopping as soon as the protocol pauses again: a
 * protocol that bounds its own buffering (a stream's limit) then
 * overshoots by one piece at most, however much was held.
 */
static void resume_run(void *arg)
{
	struct proa__sock *t = arg;
	size_t off = 0, n, piece = t->nl->bufsize;

	/* Held bytes came before any EOF: they go first, even if EOF is
	 * already known. */
	while (off < t->held_len && t->want_read && reading_state(t)) {
		n = t->held_len - off < piece ? t->held_len - off : piece;
		t->base.proto->ops->data_received(t->base.proto, t->held + off,
						  n);
		off += n;
	}
	if (off == t->held_len) {
		free(t->held);
		t->held = NULL;
		t->held_len = 0;
	} else if (off > 0) {
		memmove(t->held, t->held + off, t->held_len - off);
		t->held_len -= off;
	}
	if (!t->want_read || !reading_state(t) || t->held_len > 0)
		return;
	if (t->eof_seen)
		on_eof(t);
	else
		start_read(t);
}

static int sock_resume_reading(struct proa_transport *bt)
{
	struct proa__sock *t = of(bt);

	if (t->base.state >= PROA_TS_CLOSING)
		return -EPIPE;
	if (t->want_read)
		return 0;
	t->want_read = true;
	if (t->held_len > 0 || t->eof_seen)
		proa_loop_call_soon(t->base.loop, &t->resume, resume_run, t);
	else
		start_read(t);
	return 0;
}

static bool sock_is_reading(const struct proa_transport *bt)
{
	const struct proa__sock *t = of(bt);

	return t->want_read && can_read(t);
}

/* ---- timeouts ----------------------------------------------------------- */

static void idle_timer_fire(void *arg)
{
	struct proa__sock *t = arg;
	uint64_t now = proa_loop_time(t->base.loop), idle = now - t->last_io;

	if (idle >= t->idle_ns) {
		fatal(t, -ETIMEDOUT);
		return;
	}
	/* Activity since arming: sleep for the rest, instead of re-arming
	 * on every message. */
	proa_loop_call_later(t->base.loop, &t->idle_timer, t->idle_ns - idle,
			     idle_timer_fire, t);
}

static void write_timer_fire(void *arg)
{
	struct proa__sock *t = arg;
	uint64_t now = proa_loop_time(t->base.loop);
	uint64_t still = now - t->last_progress;

	if (t->wbytes == 0)
		return;
	if (still >= t->write_ns) {
		fatal(t, -ETIMEDOUT);
		return;
	}
	proa_loop_call_later(t->base.loop, &t->write_timer, t->write_ns - still,
			     write_timer_fire, t);
}

static int sock_set_timeouts(struct proa_transport *bt, uint64_t idle_ns,
			     uint64_t write_ns)
{
	struct proa__sock *t = of(bt);

	if (t->base.state >= PROA_TS_TEARDOWN)
		return -EPIPE;
	t->idle_ns = idle_ns;
	t->write_ns = write_ns;
	t->last_io = t->last_progress = proa_loop_time(t->base.loop);
	proa_timer_cancel(&t->idle_timer);
	proa_timer_cancel(&t->write_timer);
	if (idle_ns)
		proa_loop_call_later(t->base.loop, &t->idle_timer, idle_ns,
				     idle_timer_fire, t);
	if (write_ns && t->wbytes > 0)
		proa_loop_call_later(t->base.loop, &t->write_timer, write_ns,
				     write_timer_fire, t);
	return 0;
}

/* ---- the write buffer and the descriptor -------------------------------- */

static void set_limits(struct proa__sock *t, size_t high, size_t low)
{
	t->high = high ? high : DEFAULT_HIGH;
	t->low = low ? low : (high ? high / 4 : DEFAULT_LOW);
	if (t->low > t->high)
		t->low = t->high;
}

static int sock_set_limits(struct proa_transport *bt, size_t high, size_t low)
{
	struct proa__sock *t = of(bt);

	set_limits(t, high, low);
	if (t->base.state < PROA_TS_TEARDOWN &&
	    (t->proto_paused ? t->wbytes <= t->low : t->wbytes > t->high))
		set_paused(t, !t->proto_paused);
	return 0;
}

static void sock_limits(const struct proa_transport *bt, size_t *high,
			size_t *low)
{
	*high = of(bt)->high;
	*low = of(bt)->low;
}

static size_t sock_write_buffer_size(const struct proa_transport *bt)
{
	return of(bt)->wbytes;
}

static int sock_fd(const struct proa_transport *bt)
{
	const struct proa__sock *t = of(bt);

	/* A pipe: the read end, else the write end, -EINVAL once gone */
	if (t->fd >= 0)
		return t->fd;
	return t->wfd >= 0 ? t->wfd : -EINVAL;
}

static const struct proa__transport_vt sock_vt = {
    .name = "socket/pipe", /* t->is_pipe tells */
    .write = sock_write,
    .writev = sock_writev,
    .write_ref = sock_write_ref,
    .sendfile = sock_sendfile,
    .write_eof = sock_write_eof,
    .can_write_eof = sock_can_write_eof,
    .close = sock_close,
    .abort = sock_abort,
    .pause_reading = sock_pause_reading,
    .resume_reading = sock_resume_reading,
    .is_reading = sock_is_reading,
    .write_buffer_size = sock_write_buffer_size,
    .set_limits = sock_set_limits,
    .limits = sock_limits,
    .set_timeouts = sock_set_timeouts,
    .fd = sock_fd,
};

/* ---- opening ------------------------------------------------------------ */

/* A transport record on @rfd / @wfd (a pipe's, or a socket's), not yet
 * connected to a protocol; NULL for -ENOMEM (nothing closed). */
static struct proa__sock *sock_new(struct proa_loop *loop, int rfd, int wfd,
				   bool is_pipe,
				   const struct proa_transport_options *opt)
{
	struct proa__netloop *nl = proa__netloop_get(loop);
	struct proa__sock *t;
	/* A pipe always reads into its own buffer: the ring's buffers are
	 * selected by recv, and read has no such op on every kernel. */
	bool own_buf = is_pipe || (nl && !nl->br);

	t = nl ? calloc(1, sizeof(*t)) : NULL;
	if (!t)
		return NULL;
	/* A pipe's buffer holds what a default pipe does (64 KiB), so that
	 * one read empties it: 1 GiB through a pipe (perf/pipe) moved 4,760
	 * MiB/s on io_uring and 3,850 on epoll with 16 KiB reads, 5,480
	 * and 4,490 with 64 KiB ones (libuv: 5,400). */
	t->rlen = is_pipe && nl->bufsize < PIPE_READ ? PIPE_READ : nl->bufsize;
	if (own_buf && rfd >= 0 && !(t->rbuf = malloc(t->rlen))) {
		free(t);
		return NULL;
	}
	nl->feed = feed;
	nl->flush = flush_dirty;
	t->base.vt = &sock_vt;
	t->base.loop = loop;
	t->nl = nl;
	t->fd = rfd;
	t->wfd = wfd;
	t->is_pipe = is_pipe;
	t->want_read = true;
	set_limits(t, opt ? opt->write_high : 0, opt ? opt->write_low : 0);
	t->oneshot = opt && opt->recv_oneshot;
	proa_op_init(&t->rop, recv_done, t);
	proa_op_init(&t->wop, send_done, t);
	proa_op_init(&t->xop, shut_done, t);
	return t;
}

/* Connect @t to protocol @p (made for it) and start reading. */
static void sock_start(struct proa__sock *t, struct proa_protocol *p,
		       const struct proa_transport_options *opt,
		       struct proa_transport **out)
{
	t->base.proto = p;
	t->base.made = true;
	if (opt && (opt->idle_timeout_ns || opt->write_timeout_ns))
		sock_set_timeouts(&t->base, opt->idle_timeout_ns,
				  opt->write_timeout_ns);
	if (out)
		*out = &t->base;
	if (p->ops->connection_made)
		p->ops->connection_made(p, &t->base);
	/* After connection_made, which may have paused reading or closed. */
	start_read(t);
}

int proa__transport_open(struct proa_loop *loop, int fd,
			 const struct proa_transport_options *opt,
			 proa_protocol_factory factory, void *arg,
			 struct proa__conn_owner *owner,
			 struct proa_transport **out)
{
	struct proa__sock *t = sock_new(loop, fd, fd, false, opt);
	struct proa_protocol *p;

	if (!t) {
		close(fd);
		return -ENOMEM;
	}
	t->owner = owner;
	proa_list_add_tail(&t->nl->all, &t->link);
	p = factory(arg, &t->base);
	if (!p || !p->ops || !p->ops->data_received) {
		proa_list_del(&t->link);
		free(t->rbuf);
		free(t);
		close(fd);
		return p ? -EINVAL : -ECONNREFUSED;
	}
	sock_start(t, p, opt, out);
	return 0;
}

int proa__transport_adopt(struct proa_loop *loop, int rfd, int wfd,
			  bool is_pipe,
			  const struct proa_transport_options *opt,
			  struct proa_protocol *proto,
			  struct proa_transport **out)
{
	struct proa__sock *t = sock_new(loop, rfd, wfd, is_pipe, opt);
	struct stat st;

	if (!t)
		return -ENOMEM;
	t->watch_hup =
	    is_pipe && rfd < 0 && fstat(wfd, &st) == 0 && S_ISFIFO(st.st_mode);
	proa_list_add_tail(&t->nl->all, &t->link);
	sock_start(t, proto, opt, out);
	return 0;
}

/* ---- passing descriptors (SCM_RIGHTS) ----------------------------------- */

/* @t as a UNIX stream socket transport, else NULL. */
static struct proa__sock *unix_sock_of(struct proa_transport *bt)
{
	struct proa__sock *t = proa__sock_of(bt);
	socklen_t len = sizeof(int);
	int dom = 0;

	if (!t || getsockopt(t->fd, SOL_SOCKET, SO_DOMAIN, &dom, &len) < 0 ||
	    dom != AF_UNIX)
		return NULL;
	return t;
}

/* Dups of @fds, as an SCM_RIGHTS message; NULL with -errno in *@err. */
static struct proa__fdmsg *fdmsg_new(const int *fds, unsigned nfds, int *err)
{
	size_t space = CMSG_SPACE(sizeof(int) * nfds);
	struct proa__fdmsg *m = calloc(1, sizeof(*m) + space);
	int fd;
	unsigned i;

	if (!m) {
		*err = -ENOMEM;
		return NULL;
	}
	m->len = space;
	m->ctl->cmsg_level = SOL_SOCKET;
	m->ctl->cmsg_type = SCM_RIGHTS;
	m->ctl->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
	for (i = 0; i < nfds; i++) {
		fd = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);
		if (fd < 0) {
			*err = -errno;
			proa__fdmsg_free(m);
			return NULL;
		}
		memcpy(CMSG_DATA(m->ctl) + i * sizeof(int), &fd, sizeof(fd));
		m->n++;
	}
	return m;
}

int proa_transport_write_fds(struct proa_transport *bt, const void *data,
			     size_t len, const int *fds, unsigned nfds)
{
	struct proa__sock *t;
	struct proa__chunk *c;
	size_t k, before;
	int ret = 0;

	if (!bt || !data || len == 0 || !fds || nfds == 0 ||
	    nfds > PROA_TRANSPORT_FDS_MAX)
		return -EINVAL;
	PROA__LOOP_CHECK(bt->loop);
	t = unix_sock_of(bt);
	if (!t)
		return -EOPNOTSUPP;
	if (!can_write(t))
		return -EPIPE;
	/* The bytes start a chunk of their own, which starts a sendmsg of
	 * its own: the descriptors travel with its first byte. */
	c = proa__chunk_get(t->nl);
	if (!c)
		return -ENOMEM;
	c->fds = fdmsg_new(fds, nfds, &ret);
	if (!c->fds) {
		proa__chunk_put(t->nl, c);
		return ret;
	}
	k = len < c->cap ? len : c->cap;
	memcpy(c->data, data, k);
	c->tail = (uint32_t)k;
	enqueue(t, c, k);
	if (k == len)
		return 0;
	/* -ENOMEM for the rest: what was queued is said, as writev does. */
	before = t->wbytes;
	ret = append(t, (const unsigned char *)data + k, len - k);
	if (ret < 0)
		return ret;
	t->wbytes += len - k;
	return queued(t, before);
}

int proa_transport_recv_fds(struct proa_transport *bt)
{
	struct proa__sock *t;

	if (!bt)
		return -EINVAL;
	PROA__LOOP_CHECK(bt->loop);
	t = unix_sock_of(bt);
	if (!t)
		return -EOPNOTSUPP;
	if (t->fdrx)
		return 0;
	/* A receive that might already have dropped descriptors (a recv
	 * without room for them closes them) cannot be taken back. */
	if (!proa_op_is_idle(&t->rop) || t->base.state >= PROA_TS_CLOSING)
		return -EBUSY;
	if (!t->rbuf && !(t->rbuf = malloc(t->rlen)))
		return -ENOMEM;
	t->fdrx = calloc(1, sizeof(*t->fdrx));
	if (!t->fdrx)
		return -ENOMEM;
	t->oneshot = true;
	return 0;
}

int proa_transport_take_fd(struct proa_transport *bt)
{
	struct proa__sock *t;
	struct proa__fdrx *rx;
	int fd;

	if (!bt)
		return -EINVAL;
	PROA__LOOP_CHECK(bt->loop);
	t = proa__sock_of(bt);
	rx = t ? t->fdrx : NULL;
	if (!rx)
		return -EOPNOTSUPP;
	if (rx->head == rx->n)
		return -EAGAIN;
	fd = rx->q[rx->head++];
	/* The receive stopped for want of room: room for a message again.
	 * Not from here (the caller may be inside data_received, reading
	 * the buffer the next receive fills): from the ready list. */
	if (rx->n - rx->head + PROA_TRANSPORT_FDS_MAX ==
		PROA_TRANSPORT_FDS_QUEUED &&
	    !t->eof_seen && t->held_len == 0)
		proa_loop_call_soon(bt->loop, &t->resume, resume_run, t);
	return fd;
}
