/* SPDX-License-Identifier: MIT */
/*
 * net/udp.c - UDP endpoints (proa/net.h): a bound, optionally connected
 * datagram socket with a receive that is always armed and a send queue.
 *
 * Threads: every function here is "Thread: loop" - the thread that runs
 * the endpoint's loop (or any one thread before the loop's first run).
 * Every callback of struct proa_datagram_protocol_ops runs on that thread,
 * from inside proa_loop_run(), never inside the proa_udp_* call that
 * caused it.
 *
 * One receive and up to SEND_INFLIGHT sends in flight per endpoint:
 *
 *   rop  receive.  With PROA_FEAT_RECV_MULTISHOT: one multishot
 *        recvmsg_select from the endpoint's own provided-buffer ring; each
 *        completion is one datagram, handed to datagram_received and the
 *        buffer put back at once.  Otherwise a single-shot recvmsg into
 *        the endpoint's 64 KiB buffer, re-armed after each datagram.
 *   sends  one sendmsg per queued datagram, up to SEND_INFLIGHT at once
 *        (an echo answering 64 datagrams in one iteration sends them in
 *        that iteration's submission, not one per iteration); the SQEs
 *        go in queue order, and only a full socket buffer, where the
 *        kernel waits for room, could let a later one overtake: UDP never
 *        promised order anyway.
 *
 * States:
 *
 *   (bound) --made handle (call_soon)--> connection_made, receive armed,
 *            queued sends started: OPEN
 *   OPEN --proa_udp_close, or a fatal error--> CLOSING
 *   CLOSING --made delivered, rop and every send idle--> fin scheduled
 *   fin: close(2), free the ring, connection_lost(err), free the endpoint
 *
 * connection_made is the first callback: the receive is armed, and sends
 * leave, only once it has run, so no datagram and no error reaches the
 * protocol before it (a receive armed in proa_udp_bind() could complete
 * in the reap that precedes the ready queue).  The descriptor is closed
 * only once neither op is in flight (docs/architecture.md rule 6), and
 * connection_lost is the last callback.  It always runs from the
 * endpoint's own call_soon handle, so it never runs inside
 * proa_udp_close() nor inside one of our op callbacks that still has to
 * touch the endpoint after the user's callback returns.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "completion/completion_int.h"
#include "proa/loop.h"
#include "proa/net.h"
#include "proa/op.h"
#include "ring/ring_int.h"

#define UDP_MAX_V4 65507u /* 65535 - IPv4 header (20) - UDP header (8) */
#define UDP_MAX_V6 65527u /* 65535 - UDP header (8): the IPv6 payload */
#define UDP_DEFAULT_MAX_QUEUED (1u << 20)

/* Single-shot receive buffer: more than the largest datagram, so a cut
 * can only mean the kernel gave us something unexpected. */
#define RBUF_SIZE 65536u

/* Multishot: each ring buffer holds struct proa__recvmsg_out (the
 * kernel's io_uring_recvmsg_out), the name room and the payload. */
#define RING_NBUFS 16u
#define RING_BUFSIZE                                                           \
	(sizeof(struct proa__recvmsg_out) + sizeof(struct sockaddr_storage) +  \
	 RBUF_SIZE + 64u)

/* Send entries kept for reuse, so steady traffic does not malloc. */
#define FREE_MAX 16u
#define FREE_MAX_BYTES ((size_t)256 * 1024)
#define DGRAM_MIN_CAP 512u
#define SEND_INFLIGHT 64u

/* One queued datagram, with its copy of the data and the destination, and
 * the sendmsg that carries it. */
struct udp_dgram {
	struct proa_link link; /* on sendq, inflight or freeq */
	struct proa_udp *u;
	struct proa_op op;
	struct msghdr msg; /* borrowed by op until it completes */
	struct iovec iov;
	size_t len;
	size_t cap;
	socklen_t addrlen; /* 0: the connected peer */
	struct sockaddr_storage addr;
	unsigned char data[];
};

struct proa_udp {
	struct proa_loop *loop;
	struct proa_datagram_protocol *p;
	int fd;
	int family;
	int err;   /* connection_lost's: the error that closed it, or 0 */
	bool made; /* connection_made delivered: receiving and sending */
	bool connected;
	bool closing;
	bool fin_scheduled;
	bool multishot;
	size_t max_queued;
	size_t queued; /* bytes in sendq and in flight */

	struct proa_link sendq;	   /* struct udp_dgram, oldest first */
	struct proa_link inflight; /* struct udp_dgram being sent */
	unsigned ninflight;
	struct proa_link freeq; /* entries kept for reuse */
	unsigned nfree;
	size_t free_bytes;

	struct proa_op rop;
	struct msghdr rmsg; /* borrowed by rop until its final completion */
	struct iovec riov;
	struct sockaddr_storage raddr;
	struct proa_buf_ring *br; /* multishot only */
	unsigned char *rbuf;	  /* single-shot only */

	struct proa_handle made_h;
	struct proa_handle fin;
};

static void recv_done(struct proa_op *op);
static void send_done(struct proa_op *op);
static void begin_close(struct proa_udp *u, int err);

/* ---- small helpers ---------------------------------------------------- */

static size_t max_dgram(const struct proa_udp *u)
{
	return u->family == AF_INET6 ? UDP_MAX_V6 : UDP_MAX_V4;
}

/* A usable INET address: the family's full sockaddr, no bigger than a
 * sockaddr_storage. */
static int check_addr(const struct sockaddr *sa, socklen_t len)
{
	if (len < sizeof(sa_family_t) || len > sizeof(struct sockaddr_storage))
		return -EINVAL;
	if (sa->sa_family == AF_INET)
		return len >= sizeof(struct sockaddr_in) ? 0 : -EINVAL;
	if (sa->sa_family == AF_INET6)
		return len >= sizeof(struct sockaddr_in6) ? 0 : -EINVAL;
	return -EAFNOSUPPORT;
}

/* Errors the kernel reports on a socket that stays usable: an ICMP error
 * on a connected endpoint (port or host unreachable, fragmentation needed)
 * or a send the network refused.  Receiving goes on after them. */
static bool soft_error(int err)
{
	switch (-err) {
	case ECONNREFUSED:
	case ECONNRESET:
	case EHOSTUNREACH:
	case EHOSTDOWN:
	case ENETUNREACH:
	case ENETDOWN:
	case EMSGSIZE:
	case EPROTO:
	case ENOPROTOOPT:
	case ETIMEDOUT:
	case EACCES:
	case EPERM:
		return true;
	default:
		return false;
	}
}

static void report(struct proa_udp *u, int err)
{
	if (u->p->ops->error_received && !u->closing)
		u->p->ops->error_received(u->p, err);
}

/* ---- send entries ------------------------------------------------------ */

static struct udp_dgram *dgram_get(struct proa_udp *u, size_t len)
{
	struct udp_dgram *d;
	size_t cap;

	/* LIFO: the most recently freed entry is the likeliest to fit. */
	if (!proa_list_empty(&u->freeq)) {
		d = proa_container_of(u->freeq.next, struct udp_dgram, link);
		if (d->cap >= len) {
			proa_list_del(&d->link);
			u->nfree--;
			u->free_bytes -= d->cap;
			return d;
		}
	}
	cap = len < DGRAM_MIN_CAP ? DGRAM_MIN_CAP : len;
	d = malloc(sizeof(*d) + cap);
	if (!d)
		return NULL;
	proa_list_init(&d->link);
	d->cap = cap;
	d->u = u;
	proa_op_init(&d->op, send_done, d);
	return d;
}

static void dgram_put(struct proa_udp *u, struct udp_dgram *d)
{
	if (u->closing || u->nfree >= FREE_MAX ||
	    u->free_bytes + d->cap > FREE_MAX_BYTES) {
		free(d);
		return;
	}
	/* At the front: LIFO, see dgram_get(). */
	d->link.next = u->freeq.next;
	d->link.prev = &u->freeq;
	u->freeq.next->prev = &d->link;
	u->freeq.next = &d->link;
	u->nfree++;
	u->free_bytes += d->cap;
}

/* Free every entry of @head (walked with the next pointer saved, then
 * emptied at once) and return their bytes. */
static size_t free_list(struct proa_link *head)
{
	struct proa_link *l = head->next;
	size_t bytes = 0;

	while (l != head) {
		struct proa_link *next = l->next;
		struct udp_dgram *d =
		    proa_container_of(l, struct udp_dgram, link);

		bytes += d->len;
		free(d);
		l = next;
	}
	proa_list_init(head);
	return bytes;
}

/* ---- closing ----------------------------------------------------------- */

/* The last step, from the endpoint's own handle: nothing is in flight, so
 * the descriptor and the ring can go (docs/architecture.md rule 6). */
static void fin_run(void *arg)
{
	struct proa_udp *u = arg;
	int ret;

	/* close(2) of a socket with no operation on it cannot block and its
	 * error (EINTR at worst) leaves the descriptor closed on Linux. */
	close(u->fd);
	u->fd = -1;
	ret = proa_buf_ring_free(u->br);
	if (ret < 0)
		proa__log(PROA_LOG_ERROR, "udp %p: freeing its ring: %d",
			  (void *)u, ret);
	u->br = NULL;
	free(u->rbuf);
	u->rbuf = NULL;
	(void)free_list(&u->sendq);
	(void)free_list(&u->freeq);
	if (u->p->ops->connection_lost)
		u->p->ops->connection_lost(u->p, u->err);
	free(u);
}

/* Schedule fin_run once both ops are idle.  Safe to call repeatedly. */
static void maybe_finish(struct proa_udp *u)
{
	int ret;

	if (!u->closing || !u->made || u->fin_scheduled ||
	    !proa_op_is_idle(&u->rop) || u->ninflight > 0)
		return;
	u->fin_scheduled = true;
	ret = proa_loop_call_soon(u->loop, &u->fin, fin_run, u);
	/* An idle embedded handle on a loop that runs our callbacks (or that
	 * has an endpoint open, so cannot be closed) cannot be refused. */
	if (ret < 0) {
		proa__log(PROA_LOG_ERROR, "udp %p: cannot schedule close: %d",
			  (void *)u, ret);
		abort();
	}
}

/* @err: what connection_lost will say (0 for proa_udp_close()). */
static void begin_close(struct proa_udp *u, int err)
{
	struct proa_link *l;

	if (u->closing)
		return;
	u->closing = true;
	u->err = err;
	/* What waits in the queue is dropped; datagrams in flight stay (the
	 * kernel reads them until their completions). */
	u->queued -= free_list(&u->sendq);
	/* -ENOENT (idle) and -EALREADY are both fine here. */
	if (!proa_op_is_idle(&u->rop))
		(void)proa_op_cancel(&u->rop);
	for (l = u->inflight.next; l != &u->inflight; l = l->next)
		(void)proa_op_cancel(
		    &proa_container_of(l, struct udp_dgram, link)->op);
	maybe_finish(u);
}

/* ---- receiving --------------------------------------------------------- */

static int arm_recv(struct proa_udp *u)
{
	if (u->multishot) {
		/* Only the room matters to a multishot recvmsg; the struct
		 * stays untouched until the final completion. */
		memset(&u->rmsg, 0, sizeof(u->rmsg));
		u->rmsg.msg_namelen = sizeof(struct sockaddr_storage);
		return proa_op_recvmsg_select(u->loop, &u->rop, u->fd, &u->rmsg,
					      u->br);
	}
	memset(&u->rmsg, 0, sizeof(u->rmsg));
	u->riov.iov_base = u->rbuf;
	u->riov.iov_len = RBUF_SIZE;
	u->rmsg.msg_name = &u->raddr;
	u->rmsg.msg_namelen = sizeof(u->raddr);
	u->rmsg.msg_iov = &u->riov;
	u->rmsg.msg_iovlen = 1;
	/* MSG_TRUNC: the result is the datagram's real length, so a cut is
	 * seen even if the kernel does not write msg_flags back. */
	return proa_op_recvmsg(u->loop, &u->rop, u->fd, &u->rmsg, MSG_TRUNC);
}

static void deliver(struct proa_udp *u, const void *data, size_t len,
		    size_t truelen, int flags, const struct sockaddr *from,
		    socklen_t fromlen)
{
	if (u->closing)
		return;
	if (truelen > len || (flags & MSG_TRUNC)) {
		/* A partial datagram is worse than none: drop it. */
		report(u, -EMSGSIZE);
		return;
	}
	u->p->ops->datagram_received(u->p, data, len, from, fromlen);
}

static void deliver_buffer(struct proa_udp *u, const struct proa_op *op)
{
	unsigned id = proa_op_buffer_id(op);
	const void *buf = proa_buf_ring_buf(u->br, id);
	struct proa_recvmsg_out out;
	int ret;

	if (!buf)
		return;
	ret = proa_recvmsg_parse(&u->rmsg, buf, (size_t)op->res, &out);
	if (ret == 0)
		deliver(u, out.payload, out.payloadlen, out.truelen, out.flags,
			out.name, out.namelen);
	else
		report(u, ret);
	/* Back to the kernel at once: the user only borrowed it. */
	ret = proa_buf_ring_put(u->br, id);
	if (ret < 0)
		proa__log(PROA_LOG_ERROR, "udp %p: buffer %u put back: %d",
			  (void *)u, id, ret);
}

/*
 * One completion of rop.  The user's callbacks may close the endpoint;
 * it stays allocated until fin_run (a later iteration), so @u may be read
 * afterwards, but nothing may be re-armed once it is closing.
 *
 * A multishot recvmsg ends (no PROA_OP_F_MORE) on -ENOBUFS when the ring
 * ran dry, and also after a zero-length datagram: the kernel takes a 0
 * from sock_recvmsg() for end of stream (seen on 6.18), so that completion
 * carries the datagram and the receive is simply re-armed.
 */
static void recv_done(struct proa_op *op)
{
	struct proa_udp *u = proa_container_of(op, struct proa_udp, rop);
	bool more = op->flags & PROA_OP_F_MORE;
	int res = op->res;
	int ret;

	if (u->multishot) {
		if (op->flags & PROA_OP_F_BUFFER) {
			if (res >= 0)
				deliver_buffer(u, op);
			else
				(void)proa_buf_ring_put(u->br,
							proa_op_buffer_id(op));
		}
	} else if (res >= 0) {
		deliver(u, u->rbuf,
			(size_t)res < RBUF_SIZE ? (size_t)res : RBUF_SIZE,
			(size_t)res, u->rmsg.msg_flags,
			(const struct sockaddr *)&u->raddr,
			u->rmsg.msg_namelen);
	}
	if (res < 0 && res != -ENOBUFS && res != -ECANCELED && res != -EAGAIN &&
	    res != -EINTR)
		report(u, res);
	if (more)
		return;
	if (u->closing) {
		maybe_finish(u);
		return;
	}
	/* -ECANCELED while open: someone else cancelled (proa_loop_cancel_all
	 * winding the loop down), so the endpoint winds down with it.  An
	 * error that is neither transient nor soft (EBADF, EINVAL...) would
	 * fail again at once: close rather than spin. */
	if (res < 0 && res != -ENOBUFS && res != -EAGAIN && res != -EINTR &&
	    !soft_error(res)) {
		begin_close(u, res);
		return;
	}
	ret = arm_recv(u);
	if (ret < 0) {
		report(u, ret);
		begin_close(u, ret);
	}
}

/* ---- sending ------------------------------------------------------------ */

/* Send @d (on no list); on success it is on u->inflight. */
static int submit_dgram(struct proa_udp *u, struct udp_dgram *d)
{
	int ret;

	memset(&d->msg, 0, sizeof(d->msg));
	if (d->addrlen) {
		d->msg.msg_name = &d->addr;
		d->msg.msg_namelen = d->addrlen;
	}
	d->iov.iov_base = d->data;
	d->iov.iov_len = d->len;
	d->msg.msg_iov = &d->iov;
	d->msg.msg_iovlen = 1;
	ret = proa_op_sendmsg(u->loop, &d->op, u->fd, &d->msg, 0);
	if (ret == 0) {
		proa_list_add_tail(&u->inflight, &d->link);
		u->ninflight++;
	}
	return ret;
}

/* Start the next queued datagram; a submission refused at once counts as
 * a failed send of that datagram. */
static void send_next(struct proa_udp *u)
{
	/* report() runs the user's error_received, which may queue more,
	 * start a send (sendto on an empty queue) or close: re-check. */
	while (!u->closing && u->ninflight < SEND_INFLIGHT &&
	       !proa_list_empty(&u->sendq)) {
		struct proa_link *l = u->sendq.next;
		struct udp_dgram *d =
		    proa_container_of(l, struct udp_dgram, link);
		int ret;

		/* The analyzer loses track of which list a freed entry was
		 * on: send_done() frees entries of inflight, never of sendq. */
		proa_list_del(l); // NOLINT(clang-analyzer-unix.Malloc)
		ret = submit_dgram(u, d);
		if (ret == 0)
			continue;
		u->queued -= d->len;
		dgram_put(u, d);
		report(u, ret);
	}
}

static void send_done(struct proa_op *op)
{
	struct udp_dgram *d = op->data;
	struct proa_udp *u = d->u;
	int res = op->res;

	proa_list_del(&d->link);
	u->ninflight--;
	u->queued -= d->len;
	dgram_put(u, d);
	if (u->closing) {
		maybe_finish(u);
		return;
	}
	if (res == -ECANCELED) {
		/* Not ours: the loop is being wound down. */
		begin_close(u, res);
		return;
	}
	if (res < 0) {
		report(u, res);
		if (u->closing) {
			maybe_finish(u);
			return;
		}
	}
	send_next(u);
	maybe_finish(u);
}

/* ---- the API ------------------------------------------------------------ */

static int set_int_opt(int fd, int level, int name, int val)
{
	if (setsockopt(fd, level, name, &val, sizeof(val)) < 0)
		return -errno;
	return 0;
}

static int setup_socket(struct proa_udp *u, const struct sockaddr *addr,
			socklen_t addrlen, const struct proa_udp_options *opt)
{
	int ret;

	u->fd = socket(u->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (u->fd < 0)
		return -errno;
	if (opt && opt->reuse_addr &&
	    (ret = set_int_opt(u->fd, SOL_SOCKET, SO_REUSEADDR, 1)) < 0)
		return ret;
	if (opt && opt->reuse_port &&
	    (ret = set_int_opt(u->fd, SOL_SOCKET, SO_REUSEPORT, 1)) < 0)
		return ret;
	if (opt && opt->broadcast &&
	    (ret = set_int_opt(u->fd, SOL_SOCKET, SO_BROADCAST, 1)) < 0)
		return ret;
	if (opt && opt->rcvbuf > 0 &&
	    (ret = set_int_opt(u->fd, SOL_SOCKET, SO_RCVBUF, opt->rcvbuf)) < 0)
		return ret;
	if (opt && opt->sndbuf > 0 &&
	    (ret = set_int_opt(u->fd, SOL_SOCKET, SO_SNDBUF, opt->sndbuf)) < 0)
		return ret;
	if (addr && bind(u->fd, addr, addrlen) < 0)
		return -errno;
	/* A UDP connect(2) only records the peer: it never blocks, so it
	 * needs no operation on the ring. */
	if (opt && opt->remote) {
		if (connect(u->fd, opt->remote, opt->remote_len) < 0)
			return -errno;
		u->connected = true;
	}
	return 0;
}

static int setup_recv(struct proa_udp *u)
{
	int ret;

	u->multishot = proa_loop_feature(u->loop, PROA_FEAT_RECV_MULTISHOT) &&
		       proa_loop_feature(u->loop, PROA_FEAT_BUF_RING);
	if (u->multishot) {
		ret = proa_buf_ring_new(&u->br, u->loop, RING_NBUFS,
					RING_BUFSIZE);
		if (ret == -EOPNOTSUPP) {
			u->multishot = false;
		} else if (ret < 0) {
			return ret;
		}
	}
	if (!u->multishot) {
		u->rbuf = malloc(RBUF_SIZE);
		if (!u->rbuf)
			return -ENOMEM;
	}
	return 0;
}

/* The first callback, from the ready queue: then the receive is armed
 * and what sendto queued meanwhile leaves. */
static void made_run(void *arg)
{
	struct proa_udp *u = arg;
	int ret;

	u->made = true;
	if (u->p->ops->connection_made)
		u->p->ops->connection_made(u->p, u);
	if (!u->closing) {
		ret = arm_recv(u);
		if (ret < 0) {
			report(u, ret);
			begin_close(u, ret);
		}
	}
	send_next(u);
	maybe_finish(u);
}

int proa_udp_bind(struct proa_udp **out, struct proa_loop *loop,
		  const struct sockaddr *addr, socklen_t addrlen,
		  const struct proa_udp_options *opt,
		  struct proa_datagram_protocol *p)
{
	const struct sockaddr *remote = opt ? opt->remote : NULL;
	struct proa_udp *u;
	int ret;

	if (!loop || !p || !p->ops || !p->ops->datagram_received || !out ||
	    (opt && !PROA__RESERVED_ZERO(opt)))
		return -EINVAL;
	PROA__CHECK_THREAD(proa__sched_of(loop));
	if (!addr && !remote)
		return -EINVAL;
	if (addr && (ret = check_addr(addr, addrlen)) < 0)
		return ret;
	if (remote && (ret = check_addr(remote, opt->remote_len)) < 0)
		return ret;
	if (addr && remote && addr->sa_family != remote->sa_family)
		return -EINVAL;

	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->loop = loop;
	u->p = p;
	u->fd = -1;
	u->family = addr ? addr->sa_family : remote->sa_family;
	u->max_queued =
	    opt && opt->max_queued ? opt->max_queued : UDP_DEFAULT_MAX_QUEUED;
	proa_list_init(&u->sendq);
	proa_list_init(&u->freeq);
	proa_op_init(&u->rop, recv_done, u);
	proa_list_init(&u->inflight);

	ret = setup_socket(u, addr, addrlen, opt);
	if (ret < 0)
		goto err_close;
	ret = setup_recv(u);
	if (ret < 0)
		goto err_close;
	ret = proa_loop_call_soon(loop, &u->made_h, made_run, u);
	if (ret < 0)
		goto err_close;
	*out = u;
	return 0;
err_close:
	/* Nothing was submitted (the receive is armed by made_run), so the
	 * ring and the descriptor are free to go now. */
	if (u->fd >= 0)
		close(u->fd);
	(void)proa_buf_ring_free(u->br);
	free(u->rbuf);
	free(u);
	return ret;
}

int proa_udp_sendto(struct proa_udp *u, const void *data, size_t len,
		    const struct sockaddr *to, socklen_t tolen)
{
	struct udp_dgram *d;
	int ret;

	if (!u || (!data && len > 0))
		return -EINVAL;
	PROA__CHECK_THREAD(proa__sched_of(u->loop));
	if (u->closing)
		return -EPIPE;
	if (to && u->connected)
		return -EISCONN;
	if (!to && !u->connected)
		return -EDESTADDRREQ;
	if (to && (ret = check_addr(to, tolen)) < 0)
		return ret;
	if (len > max_dgram(u))
		return -EMSGSIZE;
	/* The bound is on what waits; one datagram always fits an empty
	 * queue, so a max_queued below the datagram size cannot wedge it. */
	if (u->queued > 0 && u->queued + len > u->max_queued)
		return -EAGAIN;

	d = dgram_get(u, len);
	if (!d)
		return -ENOMEM;
	d->len = len;
	if (len)
		memcpy(d->data, data, len);
	d->addrlen = to ? tolen : 0;
	if (to)
		memcpy(&d->addr, to, tolen);
	if (u->made && u->ninflight < SEND_INFLIGHT &&
	    proa_list_empty(&u->sendq)) {
		/* Room in flight and nothing before it: go now (the SQE
		 * leaves with the loop's next submission).  The queue can be
		 * non-empty with room in flight only while send_done()
		 * reports an error; then this one waits its turn.  Before
		 * connection_made, it waits for made_run: a failed send's
		 * error_received must not come first. */
		ret = submit_dgram(u, d);
		if (ret < 0) {
			dgram_put(u, d);
			return ret;
		}
	} else {
		proa_list_add_tail(&u->sendq, &d->link);
	}
	u->queued += len;
	return 0;
}

int proa_udp_sockname(const struct proa_udp *u, struct sockaddr_storage *addr,
		      socklen_t *len)
{
	socklen_t l = sizeof(*addr);

	if (!u || !addr)
		return -EINVAL;
	PROA__CHECK_THREAD(proa__sched_of(u->loop));
	if (u->fd < 0)
		return -EBADF;
	if (getsockname(u->fd, (struct sockaddr *)addr, &l) < 0)
		return -errno;
	if (len)
		*len = l;
	return 0;
}

int proa_udp_fd(const struct proa_udp *u)
{
	if (!u)
		return -EINVAL;
	PROA__CHECK_THREAD(proa__sched_of(u->loop));
	return u->fd;
}

size_t proa_udp_queued(const struct proa_udp *u)
{
	if (!u)
		return 0;
	PROA__CHECK_THREAD(proa__sched_of(u->loop));
	return u->queued;
}

int proa_udp_close(struct proa_udp *u)
{
	if (!u)
		return -EINVAL;
	PROA__CHECK_THREAD(proa__sched_of(u->loop));
	if (u->closing)
		return -EALREADY;
	begin_close(u, 0);
	return 0;
}
