/* SPDX-License-Identifier: MIT */
/*
 * ring/epoll.c - the readiness backend: the completions of io_uring,
 * emulated with epoll where io_uring is missing or refused.
 *
 * Every operation is tried at once when it is issued; one that would block
 * (EAGAIN, EINPROGRESS) waits on its descriptor's entry and is tried again
 * when epoll reports the descriptor ready.  Results, immediate or not, go to
 * a completion list that wait() publishes and reap() hands out, so a
 * callback never runs inside the call that submitted its op and an op
 * submitted from a callback completes in a later iteration, as on io_uring.
 *
 * Triggering: edge-triggered, one registration per descriptor for
 * IN|OUT|RDHUP|PRI, made the first time an op on it has to wait and kept
 * until proa_op_close() (or until the descriptor is found to be another
 * file).  Since every op is tried before it waits, an edge can only be
 * missed by an op that is not waiting, and such an op is tried when it is
 * issued.  The point is the steady state of a connection: a receive that
 * waits, completes and is re-armed costs no epoll_ctl, and events for a
 * direction nobody waits on (a writable socket) do not wake the loop
 * again and again as level-triggered registrations would.  The price is
 * that whoever consumes readiness must drain it: a multishot op keeps
 * going until EAGAIN, within a budget, and an fd left with work (budget
 * spent) is "kicked": processed again in the next wait without an event.
 *
 * Descriptors: a table indexed by fd.  The entry remembers the file's
 * identity (st_dev, st_ino), because descriptors closed with close(2)
 * rather than proa_op_close() (net/ does so for sockets with nothing in
 * flight) come back as other files under the same number.  The identity is
 * checked with fstat() before a call that could block if the file were
 * in blocking mode (accept, connect, read and write, which have no
 * MSG_DONTWAIT), and when an op starts waiting on an entry nobody waited
 * on; a new identity resets the entry, sets O_NONBLOCK (op.h says the
 * epoll backend makes its descriptors non-blocking) and registers again.
 * Receives and sends use MSG_DONTWAIT and need no check to be tried.
 *
 * Regular files do not poll: user reads and writes on them, and the other
 * file and metadata ops (fsync, openat, openat2, statx, fallocate,
 * ftruncate, the *at calls, getdents, copy_file_range), run on the pool's
 * file lane (proa__ring_offload() answers for read and write; the others
 * are not advertised).  Close is done here, because it must forget the
 * descriptor's entry.
 *
 * Timeouts (PROA__OP_TIMEOUT) live in a binary heap; the wait's
 * epoll_pwait2() timeout ends at the earliest.  Provided-buffer rings are a
 * FIFO of buffer ids in user space.  Cross-thread wake-ups use the loop's
 * eventfd, as on io_uring.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "ring_priv.h"

/* How many completions a multishot op may produce per readiness event
 * before the descriptor is left for the next wait: fairness between
 * connections. */
#define EP_BUDGET 32
/* A busy loop (completions waiting) polls epoll at least this often. */
#define EP_POLL_EVERY 32
#define EP_EVENTS 256

struct opvec {
	struct proa_op **v;
	unsigned n, cap;
};

struct epfd {
	int fd;
	bool known;	 /* dev/ino name the file the entry describes */
	bool nonblock;	 /* O_NONBLOCK is set on that file */
	bool registered; /* in the epoll set */
	bool kicked;	 /* on the kick list */
	bool stream;	 /* a byte stream (TCP, UNIX stream, pipe) */
	bool hup;	 /* epoll said RDHUP, HUP or ERR: read to the end */
	dev_t dev;
	ino_t ino;
	struct opvec rd; /* receives, reads, accepts: in order */
	struct opvec wr; /* sends, writes, connect: in order */
	struct opvec po; /* poll ops */
};

struct tmo {
	uint64_t when;
	uint64_t seq; /* equal deadlines complete in submission order */
	struct proa_op *op;
};

struct ep {
	struct proa__ring base;
	int epfd;
	struct epfd **tab;
	unsigned ntab;
	/* Completions: [head, pub) may be reaped; [pub, n) were produced
	 * since the last wait and wait for the next iteration. */
	struct proa__cqe *cq;
	unsigned cq_head, cq_pub, cq_n, cq_cap;
	struct tmo *heap;
	unsigned nheap, capheap;
	uint64_t seq;
	int *kick;
	unsigned nkick, capkick;
	unsigned skipped;
	bool no_pwait2;
	char why[256]; /* why not io_uring, if auto fell back */
};

/* The FIFO of free buffer ids that stands in for the kernel's ring. */
struct kfifo {
	unsigned head; /* next id to hand out: ids[head % nbufs] */
	uint16_t ids[];
};

static struct ep *to_ep(struct proa__ring *r)
{
	return proa_container_of(r, struct ep, base);
}

/* ---- small containers ----------------------------------------------- */

static int grow(void **p, unsigned *cap, size_t elem, unsigned need)
{
	unsigned ncap = *cap ? *cap : 8;
	void *np;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	np = realloc(*p, (size_t)ncap * elem);
	if (!np)
		return -ENOMEM;
	*p = np;
	*cap = ncap;
	return 0;
}

static int vec_reserve(struct opvec *v)
{
	return grow((void **)&v->v, &v->cap, sizeof(struct proa_op *),
		    v->n + 1);
}

/* Only after vec_reserve(). */
static void vec_push(struct opvec *v, struct proa_op *op)
{
	v->v[v->n++] = op;
}

static void vec_del_at(struct opvec *v, unsigned i)
{
	memmove(&v->v[i], &v->v[i + 1],
		(v->n - i - 1) * sizeof(struct proa_op *));
	v->n--;
}

static bool vec_del(struct opvec *v, const struct proa_op *op)
{
	unsigned i;

	for (i = 0; i < v->n; i++) {
		if (v->v[i] == op) {
			vec_del_at(v, i);
			return true;
		}
	}
	return false;
}

/* Queue a completion.  Out of memory here would lose a completion, which
 * the contract forbids; the list only grows with ops in flight, so this
 * is as likely as malloc failing for a few bytes. */
static void cq_push(struct ep *e, struct proa_op *op, int32_t res,
		    uint32_t flags)
{
	if (e->cq_n == e->cq_cap && e->cq_head > 0) {
		memmove(e->cq, e->cq + e->cq_head,
			(e->cq_n - e->cq_head) * sizeof(*e->cq));
		e->cq_n -= e->cq_head;
		e->cq_pub -= e->cq_head;
		e->cq_head = 0;
	}
	if (grow((void **)&e->cq, &e->cq_cap, sizeof(*e->cq), e->cq_n + 1)) {
		proa__log(PROA_LOG_ERROR, "epoll backend: out of memory for "
					  "a completion; aborting");
		abort();
	}
	e->cq[e->cq_n].op = op;
	e->cq[e->cq_n].res = res;
	e->cq[e->cq_n].flags = flags;
	e->cq_n++;
}

/* ---- the timeout heap ----------------------------------------------- */

static bool tmo_before(const struct tmo *a, const struct tmo *b)
{
	return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

/* A waiting timeout knows its heap index (be.ep.heap_idx), so cancel
 * finds it without a search. */
static void heap_set(struct ep *e, unsigned i, struct tmo t)
{
	e->heap[i] = t;
	t.op->priv.u.be.ep.heap_idx = i;
}

static void heap_up(struct ep *e, unsigned i)
{
	struct tmo t = e->heap[i];

	while (i > 0 && tmo_before(&t, &e->heap[(i - 1) / 2])) {
		heap_set(e, i, e->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_set(e, i, t);
}

static void heap_down(struct ep *e, unsigned i)
{
	struct tmo t = e->heap[i];
	unsigned c;

	for (;;) {
		c = 2 * i + 1;
		if (c >= e->nheap)
			break;
		if (c + 1 < e->nheap &&
		    tmo_before(&e->heap[c + 1], &e->heap[c]))
			c++;
		if (!tmo_before(&e->heap[c], &t))
			break;
		heap_set(e, i, e->heap[c]);
		i = c;
	}
	heap_set(e, i, t);
}

static void heap_del(struct ep *e, unsigned i)
{
	e->nheap--;
	if (i == e->nheap)
		return;
	heap_set(e, i, e->heap[e->nheap]);
	heap_down(e, i);
	heap_up(e, e->heap[i].op->priv.u.be.ep.heap_idx);
}

static void fire_timeouts(struct ep *e)
{
	uint64_t now;

	if (e->nheap == 0)
		return;
	now = proa__now();
	while (e->nheap > 0 && e->heap[0].when <= now) {
		cq_push(e, e->heap[0].op, -ETIME, 0);
		heap_del(e, 0);
	}
}

/* ---- descriptors ------------------------------------------------------ */

static struct epfd *fd_find(struct ep *e, int fd)
{
	return (unsigned)fd < e->ntab ? e->tab[fd] : NULL;
}

static struct epfd *fd_get(struct ep *e, int fd)
{
	struct epfd *f = fd_find(e, fd);
	unsigned n = e->ntab;
	void *p;

	if (f)
		return f;
	if ((unsigned)fd >= e->ntab) {
		while (n <= (unsigned)fd)
			n = n ? 2 * n : 64;
		p = realloc(e->tab, n * sizeof(struct epfd *));
		if (!p)
			return NULL;
		e->tab = p;
		memset(e->tab + e->ntab, 0,
		       (n - e->ntab) * sizeof(struct epfd *));
		e->ntab = n;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->fd = fd;
	e->tab[fd] = f;
	return f;
}

static bool fd_idle(const struct epfd *f)
{
	return f->rd.n == 0 && f->wr.n == 0 && f->po.n == 0;
}

/* Whether a short read proves the file was drained: true for byte
 * streams, false for datagrams and records (one per read). */
static bool stream_of(int fd, const struct stat *st)
{
	socklen_t len = sizeof(int);
	int type = 0;

	if (!S_ISSOCK(st->st_mode))
		return S_ISFIFO(st->st_mode);
	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
	       type == SOCK_STREAM;
}

static void complete_waiters(struct ep *e, struct opvec *v, int32_t res)
{
	unsigned i;

	for (i = 0; i < v->n; i++)
		cq_push(e, v->v[i], res, 0);
	v->n = 0;
}

/* Make sure the entry describes the file now behind the number, and, for
 * an op that does I/O (@nonblock), that the file is non-blocking.  A poll
 * (an fd watch on someone else's descriptor) leaves the file's flags as
 * its owner set them: they are the open file's, shared with every copy.
 * 0 or -errno (EBADF: nothing open there). */
static int fd_validate(struct ep *e, struct epfd *f, bool nonblock)
{
	struct stat st;
	int fl;

	if (fstat(f->fd, &st) < 0)
		return -errno;
	if (!f->known || st.st_dev != f->dev || st.st_ino != f->ino) {
		/* Another file: a registration of the old one is gone with
		 * it (or belongs to it), so register again when needed.  Ops
		 * still waiting were the old file's, closed under them
		 * against rule 6 (proa_process_close() with a read on a
		 * stdio pipe): they end, or the new file's first bytes would
		 * go to them. */
		if (f->known) {
			complete_waiters(e, &f->rd, -EBADF);
			complete_waiters(e, &f->wr, -EBADF);
			complete_waiters(e, &f->po, -EBADF);
		}
		f->known = true;
		f->dev = st.st_dev;
		f->ino = st.st_ino;
		f->registered = false;
		f->nonblock = false;
		f->hup = false;
		f->stream = stream_of(f->fd, &st);
	}
	if (nonblock && !f->nonblock && !S_ISREG(st.st_mode)) {
		fl = fcntl(f->fd, F_GETFL);
		if (fl < 0)
			return -errno;
		if (!(fl & O_NONBLOCK) &&
		    fcntl(f->fd, F_SETFL, fl | O_NONBLOCK) < 0)
			return -errno;
		f->nonblock = true;
	}
	return 0;
}

static int fd_register(struct ep *e, struct epfd *f)
{
	struct epoll_event ev;

	if (f->registered)
		return 0;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET;
	ev.data.fd = f->fd;
	if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, f->fd, &ev) < 0) {
		/* EEXIST: registered under this number by a file we took
		 * for another (a dup'd descriptor); MOD re-arms the edge. */
		if (errno != EEXIST ||
		    epoll_ctl(e->epfd, EPOLL_CTL_MOD, f->fd, &ev) < 0)
			return -errno;
	}
	f->registered = true;
	return 0;
}

static void kick(struct ep *e, struct epfd *f)
{
	if (f->kicked)
		return;
	if (grow((void **)&e->kick, &e->capkick, sizeof(*e->kick),
		 e->nkick + 1)) {
		/* The next event on the fd resumes it instead. */
		return;
	}
	e->kick[e->nkick++] = f->fd;
	f->kicked = true;
}

/* ---- trying an operation -------------------------------------------- */

enum { EP_WAIT, EP_DONE, EP_AGAIN_LATER };

static bool would_block(int err)
{
	return err == EAGAIN || err == EWOULDBLOCK;
}

static struct kfifo *fifo_of(const struct proa_buf_ring *br)
{
	return br->kring;
}

static bool fifo_empty(const struct proa_buf_ring *br)
{
	return fifo_of(br)->head == br->tail;
}

static unsigned fifo_peek(const struct proa_buf_ring *br)
{
	const struct kfifo *k = fifo_of(br);

	return k->ids[k->head % br->nbufs];
}

/* @br->tail counts pushes modulo 2^16 like the kernel ring's tail; head
 * follows it, so both wrap together. */
static void fifo_take(struct proa_buf_ring *br)
{
	struct kfifo *k = fifo_of(br);

	k->head = (uint16_t)(k->head + 1);
}

/* One recv (or recvmsg) into the buffer at the head of the FIFO. */
static ssize_t select_call(const struct proa_op *op, struct proa_buf_ring *br,
			   unsigned id, uint32_t *used)
{
	unsigned char *buf = br->mem + (size_t)id * br->bufsize;
	const struct msghdr *want = op->priv.addr;
	struct proa__recvmsg_out *o = (struct proa__recvmsg_out *)(void *)buf;
	size_t hdr, room;
	struct msghdr m;
	struct iovec iov;
	ssize_t n;

	if (op->priv.kind == PROA__OP_RECV_SELECT) {
		n = recv(op->priv.fd, buf, br->bufsize, MSG_DONTWAIT);
		*used = n > 0 ? (uint32_t)n : 0;
		return n;
	}
	hdr = proa__recvmsg_hdr_len(want);
	if (hdr > br->bufsize) {
		errno = EFAULT;
		return -1;
	}
	room = br->bufsize - hdr;
	memset(&m, 0, sizeof(m));
	m.msg_name = want->msg_namelen ? buf + sizeof(*o) : NULL;
	m.msg_namelen = want->msg_namelen;
	m.msg_control =
	    want->msg_controllen ? buf + sizeof(*o) + want->msg_namelen : NULL;
	m.msg_controllen = want->msg_controllen;
	iov.iov_base = buf + hdr;
	iov.iov_len = room;
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	n = recvmsg(op->priv.fd, &m, MSG_DONTWAIT | MSG_TRUNC);
	if (n < 0)
		return n;
	o->namelen = m.msg_namelen;
	o->controllen = (uint32_t)m.msg_controllen;
	o->payloadlen = (uint32_t)n;
	o->flags = (uint32_t)m.msg_flags;
	*used = (uint32_t)(hdr + ((size_t)n < room ? (size_t)n : room));
	return n;
}

/* recv_select / recvmsg_select: take a buffer only when data came.
 * Edge-triggered, a multishot receive must read until EAGAIN, unless @f
 * is a byte stream and a read came back short: no data was left then, and
 * data that arrives later raises a new edge.  That saves the EAGAIN call
 * per message that draining would cost.  A short read says nothing of an
 * end of stream (or error) queued behind the data, whose edge may be the
 * one just consumed: once epoll has reported RDHUP, HUP or ERR for the
 * file (@f->hup, sticky), reads go on until 0, an error or EAGAIN. */
static int try_select(struct ep *e, const struct epfd *f, struct proa_op *op)
{
	struct proa_buf_ring *br = op->priv.addr2;
	bool multi = op->priv.iflags & PROA__OPF_MULTISHOT;
	uint32_t used, more = multi ? PROA_OP_F_MORE : 0;
	unsigned i, id;
	ssize_t n;

	for (i = 0; i < EP_BUDGET; i++) {
		/* As io_uring: no buffer to select is -ENOBUFS, data or
		 * not, and it ends a multishot receive. */
		if (fifo_empty(br)) {
			cq_push(e, op, -ENOBUFS, 0);
			return EP_DONE;
		}
		id = fifo_peek(br);
		n = select_call(op, br, id, &used);
		if (n < 0) {
			if (would_block(errno))
				return EP_WAIT;
			cq_push(e, op, -errno, 0);
			return EP_DONE;
		}
		if (n == 0 && op->priv.kind == PROA__OP_RECV_SELECT) {
			cq_push(e, op, 0, 0); /* EOF ends it */
			return EP_DONE;
		}
		fifo_take(br);
		cq_push(e, op, (int32_t)used,
			more | PROA_OP_F_BUFFER | (id << 16));
		if (!multi)
			return EP_DONE;
		if (f->stream && f->known && !f->hup && used < br->bufsize)
			return EP_WAIT;
	}
	return EP_AGAIN_LATER;
}

static int try_accept(struct ep *e, struct proa_op *op)
{
	const struct proa__op_priv *p = &op->priv;
	unsigned i;
	int fd;

	if (!(p->iflags & PROA__OPF_MULTISHOT)) {
		fd = accept4(p->fd, (struct sockaddr *)(uintptr_t)p->addr,
			     (socklen_t *)p->addr2, (int)p->extra);
		if (fd < 0 && would_block(errno))
			return EP_WAIT;
		cq_push(e, op, fd < 0 ? -errno : fd, 0);
		return EP_DONE;
	}
	for (i = 0; i < EP_BUDGET; i++) {
		fd = accept4(p->fd, NULL, NULL, (int)p->extra);
		if (fd < 0) {
			if (would_block(errno))
				return EP_WAIT;
			cq_push(e, op, -errno, 0);
			return EP_DONE;
		}
		cq_push(e, op, fd, PROA_OP_F_MORE);
	}
	return EP_AGAIN_LATER;
}

/* be.ep.phase of a connect: 0 before connect(2), 1 while it is in
 * progress. */
static int try_connect(struct ep *e, struct proa_op *op)
{
	struct proa__op_priv *p = &op->priv;
	socklen_t len = sizeof(int);
	int err = 0;

	if (p->u.be.ep.phase == 0) {
		if (connect(p->fd, p->addr, p->len) == 0) {
			cq_push(e, op, 0, 0);
			return EP_DONE;
		}
		if (errno == EINPROGRESS || errno == EAGAIN) {
			p->u.be.ep.phase = 1;
			return EP_WAIT;
		}
		cq_push(e, op, -errno, 0);
		return EP_DONE;
	}
	if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	cq_push(e, op, -err, 0);
	return EP_DONE;
}

static int try_poll(struct ep *e, struct proa_op *op, uint32_t revents)
{
	bool multi = op->priv.iflags & PROA__OPF_MULTISHOT;
	struct pollfd pfd;

	if (revents == UINT32_MAX) {
		/* First try: the state now, as IORING_OP_POLL_ADD does. */
		pfd.fd = op->priv.fd;
		pfd.events = (short)op->priv.extra;
		pfd.revents = 0;
		if (poll(&pfd, 1, 0) < 0)
			revents = 0;
		else
			revents = (uint16_t)pfd.revents;
		if (revents & POLLNVAL) {
			cq_push(e, op, -EBADF, 0);
			return EP_DONE;
		}
	}
	revents &= op->priv.extra | POLLERR | POLLHUP;
	if (revents == 0)
		return EP_WAIT;
	cq_push(e, op, (int32_t)revents, multi ? PROA_OP_F_MORE : 0);
	return multi ? EP_WAIT : EP_DONE;
}

/* recv and send with MSG_WAITALL: io_uring retries until all @len bytes
 * moved, so do we; be.ep.progress (0 from ep_issue()) counts them.  EOF or
 * an error after some progress completes with the count, as io_uring. */
static int try_waitall(struct ep *e, struct proa_op *op)
{
	struct proa__op_priv *p = &op->priv;
	uint32_t *done = &p->u.be.ep.progress;
	int flags = ((int)p->extra & ~MSG_WAITALL) | MSG_DONTWAIT;
	ssize_t n;

	while (*done < p->len) {
		if (p->kind == PROA__OP_RECV)
			n = recv(p->fd, (char *)(uintptr_t)p->addr + *done,
				 p->len - *done, flags);
		else
			n = send(p->fd, (const char *)p->addr + *done,
				 p->len - *done, flags);
		if (n < 0 && would_block(errno))
			return EP_WAIT;
		if (n <= 0) {
			cq_push(e, op,
				*done > 0 ? (int32_t)*done
				: n < 0	  ? -errno
					  : 0,
				0);
			return EP_DONE;
		}
		*done += (uint32_t)n;
	}
	cq_push(e, op, (int32_t)*done, 0);
	return EP_DONE;
}

/* Try @op once (a multishot op: until it would block or its budget is
 * spent).  EP_DONE: its final completion is queued. */
static int attempt(struct ep *e, const struct epfd *f, struct proa_op *op)
{
	const struct proa__op_priv *p = &op->priv;
	ssize_t n;

	switch (p->kind) {
	case PROA__OP_ACCEPT:
		return try_accept(e, op);
	case PROA__OP_CONNECT:
		return try_connect(e, op);
	case PROA__OP_RECV_SELECT:
	case PROA__OP_RECVMSG_SELECT:
		return try_select(e, f, op);
	case PROA__OP_POLL:
		return try_poll(e, op, UINT32_MAX);
	case PROA__OP_READ:
	case PROA__OP_WRITE:
	case PROA__OP_READV:
	case PROA__OP_WRITEV:
		n = proa__file_rw(op);
		break;
	case PROA__OP_RECV:
		if (p->extra & MSG_WAITALL)
			return try_waitall(e, op);
		n = recv(p->fd, (void *)p->addr, p->len,
			 (int)p->extra | MSG_DONTWAIT);
		break;
	case PROA__OP_SEND:
		if (p->extra & MSG_WAITALL)
			return try_waitall(e, op);
		n = send(p->fd, p->addr, p->len, (int)p->extra | MSG_DONTWAIT);
		break;
	case PROA__OP_SENDMSG:
		n = sendmsg(p->fd, p->addr, (int)p->extra | MSG_DONTWAIT);
		break;
	case PROA__OP_RECVMSG:
		n = recvmsg(p->fd, (struct msghdr *)(uintptr_t)p->addr,
			    (int)p->extra | MSG_DONTWAIT);
		break;
	default:
		/* Kinds this backend does not advertise never get here. */
		abort();
	}
	if (n < 0 && would_block(errno))
		return EP_WAIT;
	cq_push(e, op, n < 0 ? -errno : (int32_t)n, 0);
	return EP_DONE;
}

static bool is_write_side(unsigned kind)
{
	switch (kind) {
	case PROA__OP_WRITE:
	case PROA__OP_WRITEV:
	case PROA__OP_SEND:
	case PROA__OP_SENDMSG:
	case PROA__OP_CONNECT:
		return true;
	default:
		return false;
	}
}

/* Kinds that block when tried on a descriptor in blocking mode. */
static bool needs_nonblock(unsigned kind)
{
	switch (kind) {
	case PROA__OP_ACCEPT:
	case PROA__OP_CONNECT:
	case PROA__OP_READ:
	case PROA__OP_WRITE:
	case PROA__OP_READV:
	case PROA__OP_WRITEV:
		return true;
	default:
		return false;
	}
}

/* Retry the ops waiting in @v, in order, until one would block. */
static void run_side(struct ep *e, struct epfd *f, struct opvec *v)
{
	int r;

	while (v->n > 0) {
		r = attempt(e, f, v->v[0]);
		if (r == EP_WAIT)
			return;
		if (r == EP_AGAIN_LATER) {
			kick(e, f);
			return;
		}
		vec_del_at(v, 0);
	}
}

static void run_polls(struct ep *e, struct epfd *f, uint32_t events)
{
	unsigned i = 0;

	while (i < f->po.n) {
		if (try_poll(e, f->po.v[i], events) == EP_DONE)
			vec_del_at(&f->po, i);
		else
			i++;
	}
}

static void on_event(struct ep *e, int fd, uint32_t events)
{
	struct epfd *f = fd_find(e, fd);

	if (!f)
		return;
	if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		f->hup = true;
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP | EPOLLPRI))
		run_side(e, f, &f->rd);
	if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
		run_side(e, f, &f->wr);
	if (f->po.n > 0)
		run_polls(e, f, events);
}

/* ---- the backend operations ------------------------------------------ */

static void do_close(struct ep *e, struct proa_op *op)
{
	struct epfd *f = fd_find(e, op->priv.fd);

	if (f) {
		/* The close rule (docs/architecture.md rule 6) says nothing
		 * waits on it; if something does, it ends now rather than
		 * wait on a number that will be another file's. */
		complete_waiters(e, &f->rd, -ECANCELED);
		complete_waiters(e, &f->wr, -ECANCELED);
		complete_waiters(e, &f->po, -ECANCELED);
		/* A dup of the file would keep the registration alive. */
		if (f->registered)
			epoll_ctl(e->epfd, EPOLL_CTL_DEL, f->fd, NULL);
		f->registered = false;
		f->known = false;
		f->nonblock = false;
		f->hup = false;
	}
	/* close(2) itself waits for the wait that publishes this
	 * completion (close_published()), as io_uring closes when the SQE
	 * is submitted: the number is not free for another file before the
	 * op's callback runs. */
	cq_push(e, op, 0, 0);
}

/* Close the descriptors of the close ops about to be published. */
static void close_published(struct ep *e)
{
	struct proa_op *op;
	unsigned i;
	int ret;

	for (i = e->cq_pub; i < e->cq_n; i++) {
		op = e->cq[i].op;
		if (op->priv.kind != PROA__OP_CLOSE)
			continue;
		ret = close(op->priv.fd);
		/* Linux frees the descriptor even when close(2) says EINTR. */
		e->cq[i].res = ret < 0 && errno != EINTR ? -errno : 0;
	}
}

static int issue_timeout(struct ep *e, struct proa_op *op)
{
	uint64_t d = op->priv.timeout_ns;
	struct tmo t;

	if (grow((void **)&e->heap, &e->capheap, sizeof(*e->heap),
		 e->nheap + 1))
		return -ENOMEM;
	/* Far enough to be never, and no overflow when added to now. */
	if (d > UINT64_MAX / 2)
		d = UINT64_MAX / 2;
	t.when = proa__now() + d;
	t.seq = e->seq++;
	t.op = op;
	e->nheap++;
	heap_set(e, e->nheap - 1, t);
	heap_up(e, e->nheap - 1);
	return 0;
}

static int ep_issue(struct proa__ring *r, struct proa_op *op)
{
	struct ep *e = to_ep(r);
	struct proa__op_priv *p = &op->priv;
	bool checked = false, was_idle;
	struct opvec *v;
	struct epfd *f;
	int ret;

	r->stats.submissions++;
	switch (p->kind) {
	case PROA__OP_NOP:
		cq_push(e, op, 0, 0);
		return 0;
	case PROA__OP_TIMEOUT:
		return issue_timeout(e, op);
	case PROA__OP_CLOSE:
		do_close(e, op);
		return 0;
	case PROA__OP_SHUTDOWN:
		/* Never waits, so it queues behind nothing. */
		cq_push(e, op, shutdown(p->fd, (int)p->extra) < 0 ? -errno : 0,
			0);
		return 0;
	default:
		break;
	}
	f = fd_get(e, p->fd);
	if (!f)
		return -ENOMEM;
	v = p->kind == PROA__OP_POLL ? &f->po
	    : is_write_side(p->kind) ? &f->wr
				     : &f->rd;
	if (vec_reserve(v) < 0)
		return -ENOMEM;
	was_idle = fd_idle(f);
	if (p->kind == PROA__OP_CONNECT)
		p->u.be.ep.phase = 0;
	else if (p->kind == PROA__OP_RECV || p->kind == PROA__OP_SEND)
		p->u.be.ep.progress = 0;
	/* The loop's own descriptors (eventfd, signalfd) are
	 * non-blocking and never reused while it lives. */
	if (needs_nonblock(p->kind) && !(p->iflags & PROA__OPF_INTERNAL)) {
		ret = fd_validate(e, f, true);
		if (ret < 0) {
			cq_push(e, op, ret, 0);
			return 0;
		}
		checked = true;
	}
	/* Behind ops already waiting on this side, in order: a send must
	 * not overtake an earlier one. */
	if (v->n == 0 || p->kind == PROA__OP_POLL) {
		ret = attempt(e, f, op);
		if (ret == EP_DONE)
			return 0;
		if (ret == EP_AGAIN_LATER)
			kick(e, f);
	}
	/* Internal ops too: signal.c may close its signalfd and make a new
	 * one under the same number. */
	if (was_idle && !checked) {
		ret = fd_validate(e, f, false);
		if (ret < 0) {
			cq_push(e, op, ret, 0);
			return 0;
		}
	}
	ret = fd_register(e, f);
	if (ret < 0) {
		/* EPERM: a file that cannot be polled yet said EAGAIN. */
		cq_push(e, op, ret, 0);
		return 0;
	}
	vec_push(v, op);
	return 0;
}

static int ep_issue_cancel(struct proa__ring *r, struct proa_op *op)
{
	struct ep *e = to_ep(r);
	struct proa__op_priv *p = &op->priv;
	struct epfd *f;
	unsigned i;

	if (p->kind == PROA__OP_TIMEOUT) {
		i = p->u.be.ep.heap_idx;
		if (i < e->nheap && e->heap[i].op == op) {
			heap_del(e, i);
			cq_push(e, op, -ECANCELED, 0);
		}
		return 0;
	}
	/* Not waiting (its final completion is queued): it won the race. */
	f = fd_find(e, p->fd);
	if (f &&
	    (vec_del(&f->rd, op) || vec_del(&f->wr, op) || vec_del(&f->po, op)))
		cq_push(e, op, -ECANCELED, 0);
	return 0;
}

static int epoll_wait_ns(struct ep *e, struct epoll_event *evs,
			 int64_t timeout_ns)
{
	struct timespec ts;
	int ms, n;

	e->base.stats.enters++;
	if (!e->no_pwait2) {
		ts.tv_sec = timeout_ns / 1000000000;
		ts.tv_nsec = timeout_ns % 1000000000;
		n = epoll_pwait2(e->epfd, evs, EP_EVENTS,
				 timeout_ns < 0 ? NULL : &ts, NULL);
		if (n >= 0 || errno != ENOSYS)
			return n;
		e->no_pwait2 = true; /* before 5.11 */
	}
	/* Milliseconds, rounded up: a timer must never fire early. */
	if (timeout_ns < 0)
		ms = -1;
	else if (timeout_ns > (int64_t)INT_MAX * 1000000)
		ms = INT_MAX;
	else
		ms = (int)((timeout_ns + 999999) / 1000000);
	return epoll_wait(e->epfd, evs, EP_EVENTS, ms);
}

static void run_kicks(struct ep *e)
{
	unsigned n = e->nkick, i;
	struct epfd *f;
	int fd;

	/* Kicks added while these run wait for the next round. */
	for (i = 0; i < n; i++) {
		fd = e->kick[i];
		f = fd_find(e, fd);
		if (!f)
			continue;
		f->kicked = false;
		run_side(e, f, &f->rd);
	}
	memmove(e->kick, e->kick + n, (e->nkick - n) * sizeof(*e->kick));
	e->nkick -= n;
}

static int ep_wait(struct proa__ring *r, int64_t timeout_ns)
{
	struct epoll_event evs[EP_EVENTS];
	struct ep *e = to_ep(r);
	bool work = e->cq_n > e->cq_head || e->nkick > 0;
	uint64_t now;
	int n, i;

	if (work)
		timeout_ns = 0;
	if (timeout_ns != 0 && e->nheap > 0) {
		now = proa__now();
		if (e->heap[0].when <= now)
			timeout_ns = 0;
		else if (timeout_ns < 0 ||
			 (uint64_t)timeout_ns > e->heap[0].when - now)
			timeout_ns = (int64_t)(e->heap[0].when - now);
	}
	/* With completions to hand out, readiness can wait a little: poll
	 * every EP_POLL_EVERY passes, not every one. */
	if (timeout_ns == 0 && work && ++e->skipped < EP_POLL_EVERY) {
		n = 0;
	} else {
		e->skipped = 0;
		n = epoll_wait_ns(e, evs, timeout_ns);
		if (n < 0) {
			if (errno != EINTR) {
				n = -errno;
				proa__log(PROA_LOG_ERROR, "epoll_wait: %s",
					  proa_strerror(n));
				return n;
			}
			n = 0;
		}
	}
	for (i = 0; i < n; i++)
		on_event(e, evs[i].data.fd, evs[i].events);
	if (e->nkick > 0)
		run_kicks(e);
	fire_timeouts(e);
	close_published(e);
	e->cq_pub = e->cq_n;
	return 0;
}

static bool ep_has_pending(struct proa__ring *r)
{
	struct ep *e = to_ep(r);

	return e->cq_n > e->cq_head || e->nkick > 0;
}

static unsigned ep_reap(struct proa__ring *r, struct proa__cqe *out,
			unsigned max)
{
	struct ep *e = to_ep(r);
	unsigned n = e->cq_pub - e->cq_head;

	if (n > max)
		n = max;
	if (n == 0)
		return 0;
	memcpy(out, e->cq + e->cq_head, n * sizeof(*out));
	e->cq_head += n;
	if (e->cq_head == e->cq_n)
		e->cq_head = e->cq_pub = e->cq_n = 0;
	r->stats.completions += n;
	return n;
}

static int ep_enable(struct proa__ring *r)
{
	(void)r;
	return 0;
}

static int ep_describe(const struct proa__ring *r, char *buf, size_t len)
{
	const struct ep *e = proa_container_of(r, const struct ep, base);
	size_t used = 0;

	PROA__EMIT(buf, len, &used, "backend: epoll\n");
	PROA__EMIT(buf, len, &used, "trigger: edge\n");
	if (e->why[0])
		PROA__EMIT(buf, len, &used, "fallback: %s\n", e->why);
	PROA__EMIT(buf, len, &used,
		   "file operations: pool (regular files), readiness (pipes, "
		   "sockets, character devices)\n");
	return used > INT_MAX ? INT_MAX : (int)used;
}

static void ep_exit(struct proa__ring *r)
{
	struct ep *e = to_ep(r);
	unsigned i;

	for (i = 0; i < e->ntab; i++) {
		if (e->tab[i]) {
			free(e->tab[i]->rd.v);
			free(e->tab[i]->wr.v);
			free(e->tab[i]->po.v);
			free(e->tab[i]);
		}
	}
	free(e->tab);
	free(e->cq);
	free(e->heap);
	free(e->kick);
	close(e->epfd);
	free(e);
}

/* Regular files, directories and block devices do not poll: user reads
 * and writes on them run on the pool's file lane. */
static bool ep_offload(struct proa__ring *r, const struct proa_op *op)
{
	struct stat st;

	(void)r;
	switch (op->priv.kind) {
	case PROA__OP_READ:
	case PROA__OP_WRITE:
	case PROA__OP_READV:
	case PROA__OP_WRITEV:
		break;
	default:
		return false;
	}
	if (fstat(op->priv.fd, &st) < 0)
		return false; /* the backend reports the error */
	return S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) ||
	       S_ISBLK(st.st_mode);
}

static int ep_buf_ring_register(struct proa__ring *r, struct proa_buf_ring *br)
{
	struct kfifo *k;
	unsigned i;

	(void)r;
	k = malloc(sizeof(*k) + br->nbufs * sizeof(k->ids[0]));
	if (!k)
		return -ENOMEM;
	k->head = 0;
	for (i = 0; i < br->nbufs; i++) {
		k->ids[i] = (uint16_t)i;
		br->in_ring[i] = 1;
	}
	br->kring = k;
	br->kring_len = 0;
	br->tail = (uint16_t)br->nbufs;
	br->avail = br->nbufs;
	return 0;
}

static void ep_buf_ring_unregister(struct proa__ring *r,
				   struct proa_buf_ring *br)
{
	(void)r;
	free(br->kring);
	br->kring = NULL;
}

static void ep_buf_ring_push(struct proa_buf_ring *br, unsigned id)
{
	struct kfifo *k = fifo_of(br);

	k->ids[br->tail % br->nbufs] = (uint16_t)id;
	br->tail++;
}

/* The emulated registered-file table (ring.c) is about to close @fd, a
 * duplicate it owns, with nothing in flight on it: drop its registration
 * first, or epoll would keep reporting the file (still open under the
 * caller's descriptor) under a number that will be another file's. */
static void ep_forget_fd(struct proa__ring *r, int fd)
{
	struct epfd *f = fd_find(to_ep(r), fd);

	if (!f)
		return;
	if (f->registered)
		epoll_ctl(to_ep(r)->epfd, EPOLL_CTL_DEL, f->fd, NULL);
	f->registered = false;
	f->known = false;
	f->nonblock = false;
	f->hup = false;
}

static const struct proa__backend_ops ep_ops = {
    .name = "epoll",
    .issue = ep_issue,
    .issue_cancel = ep_issue_cancel,
    .wait = ep_wait,
    .has_pending = ep_has_pending,
    .reap = ep_reap,
    .enable = ep_enable,
    .describe = ep_describe,
    .exit = ep_exit,
    .offload = ep_offload,
    .buf_ring_register = ep_buf_ring_register,
    .buf_ring_unregister = ep_buf_ring_unregister,
    .buf_ring_push = ep_buf_ring_push,
    .forget_fd = ep_forget_fd,
};

/* What the backend does itself; fsync, openat, statx and the other file
 * and metadata ops are left to the pool by not being here. */
static const enum proa_feature ep_features[] = {
    PROA_FEAT_NODROP,	      PROA_FEAT_OP_NOP,
    PROA_FEAT_OP_TIMEOUT,     PROA_FEAT_OP_READ,
    PROA_FEAT_OP_WRITE,	      PROA_FEAT_OP_READV,
    PROA_FEAT_OP_WRITEV,      PROA_FEAT_OP_CLOSE,
    PROA_FEAT_OP_POLL,	      PROA_FEAT_OP_ASYNC_CANCEL,
    PROA_FEAT_OP_ACCEPT,      PROA_FEAT_OP_CONNECT,
    PROA_FEAT_OP_RECV,	      PROA_FEAT_OP_SEND,
    PROA_FEAT_OP_RECVMSG,     PROA_FEAT_OP_SENDMSG,
    PROA_FEAT_OP_SHUTDOWN,    PROA_FEAT_ACCEPT_MULTISHOT,
    PROA_FEAT_RECV_MULTISHOT, PROA_FEAT_BUF_RING,
};

int proa__epoll_new(struct proa__ring **out, const char *why)
{
	struct ep *e;
	unsigned i;

	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (e->epfd < 0) {
		free(e);
		return -errno;
	}
	e->base.ops = &ep_ops;
	for (i = 0; i < sizeof(ep_features) / sizeof(ep_features[0]); i++)
		proa__ring_set_probed(&e->base, ep_features[i], true);
	if (why)
		snprintf(e->why, sizeof(e->why), "%s", why);
	*out = &e->base;
	return 0;
}
