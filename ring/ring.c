/* SPDX-License-Identifier: MIT */
/*
 * ring/ring.c - what every backend shares: op states and lists, the line of
 * ops waiting for submission space, cancellation of ops the kernel has not
 * seen, and the counters.
 *
 * This file alone writes an op's state (the build checks it:
 * tests/layering/check_layers.py); the backends and the executor only
 * run ops and report results.
 *
 * Invariants:
 *  - an op is on exactly one list while not IDLE: queued (QUEUED), inflight
 *    (INFLIGHT, the backend has it), away (INFLIGHT, the executor has it)
 *    or done (completed without the backend, waiting to be reaped: QUEUED
 *    if cancelled before it was issued, INFLIGHT if home from the
 *    executor);
 *  - ops are handed to the kernel in submission order: while any op waits in
 *    line, new ops queue behind it (writes on one stream stay in order);
 *  - an op becomes IDLE only in proa__ring_complete(), just before its final
 *    callback, never earlier (a callback of another op in the same batch
 *    must not see it idle and reuse it under a pending CQE).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "ring_priv.h"

struct proa__ring_faults proa__ring_faults;

uint64_t proa__now(void)
{
	struct timespec ts;

	/* CLOCK_MONOTONIC cannot fail with a valid clock id. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* io_uring refused, as opposed to out of resources: ENOSYS (no io_uring,
 * or seccomp says so), EPERM (seccomp, kernel.io_uring_disabled, an LSM),
 * EINVAL (a kernel too old for what proa needs). */
static bool refused(int err)
{
	return err == -ENOSYS || err == -EPERM || err == -EINVAL;
}

static int backend_new(struct proa__ring **out,
		       const struct proa__ring_params *p, char *reason,
		       size_t reason_len)
{
	static atomic_bool told;
	char why[256] = "";
	int ret;

	/* epoll chosen: not even a probe, so no io_uring system call. */
	if (p->backend == PROA_BACKEND_EPOLL) {
		ret = proa__epoll_new(out, NULL);
		if (ret < 0 && reason && reason_len)
			snprintf(reason, reason_len, "epoll_create1: %s",
				 proa_strerror(ret));
		return ret;
	}
	ret = proa__uring_new(out, p, why, sizeof(why));
	if (ret == 0 || p->backend == PROA_BACKEND_IO_URING || !refused(ret)) {
		if (ret < 0 && reason && reason_len)
			snprintf(reason, reason_len, "%s", why);
		return ret;
	}
	ret = proa__epoll_new(out, why);
	if (ret < 0) {
		if (reason && reason_len)
			snprintf(reason, reason_len,
				 "%s; and the epoll fallback failed: %s", why,
				 proa_strerror(ret));
		return ret;
	}
	/* Once per process at INFO (a program may make many loops), then
	 * at DEBUG. */
	proa__log(atomic_exchange(&told, true) ? PROA_LOG_DEBUG : PROA_LOG_INFO,
		  "io_uring unavailable, using the epoll backend: %s", why);
	return 0;
}

int proa__ring_new(struct proa__ring **out, const struct proa__ring_params *p,
		   char *reason, size_t reason_len)
{
	struct proa__ring *r;
	int ret;

	ret = backend_new(&r, p, reason, reason_len);
	if (ret < 0)
		return ret;
	proa_list_init(&r->queued);
	proa_list_init(&r->inflight);
	proa_list_init(&r->away);
	proa_list_init(&r->done);
	proa_list_init(&r->buf_rings);
	*out = r;
	return 0;
}

static void files_drop(struct proa__ring *r, bool tell_backend);

void proa__ring_free(struct proa__ring *r)
{
	if (r) {
		proa__buf_rings_free_all(r);
		/* The kernel's tables go with the ring; the emulated one's
		 * descriptors are ours to close. */
		files_drop(r, true);
		free(r->bufs.iov);
		r->ops->exit(r);
	}
}

void proa__ring_forget(struct proa__ring *r)
{
	/* The kernel's ring (or epoll instance) is the parent's too: nothing
	 * is cancelled, unregistered or reaped.  Only this process's mapping
	 * and descriptor go; the provided-buffer rings' memory is left. */
	if (r) {
		/* The emulated table's duplicates are this process's own
		 * descriptors: closed, but the shared epoll instance is not
		 * told (its registrations are the parent's too). */
		files_drop(r, false);
		free(r->bufs.iov);
		r->ops->exit(r);
	}
}

int proa__ring_enable(struct proa__ring *r)
{
	return r->ops->enable(r);
}

static void count_new(struct proa__ring *r, struct proa_op *op)
{
	if (!(op->priv.iflags & PROA__OPF_INTERNAL))
		r->nr_user++;
}

int proa__ring_submit(struct proa__ring *r, struct proa_op *op)
{
	int ret;

	if (proa__likely(proa_list_empty(&r->queued))) {
		ret = r->ops->issue(r, op);
		if (proa__likely(ret == 0)) {
			op->priv.state = PROA_OP_INFLIGHT;
			proa_list_add_tail(&r->inflight, &op->priv.link);
			count_new(r, op);
			return 0;
		}
		if (ret != -EAGAIN)
			return ret;
	}
	op->priv.state = PROA_OP_QUEUED;
	proa_list_add_tail(&r->queued, &op->priv.link);
	count_new(r, op);
	return 0;
}

bool proa__ring_offload(struct proa__ring *r, const struct proa_op *op)
{
	return r->ops->offload && r->ops->offload(r, op);
}

/* ---- the executor ------------------------------------------------------ */

void proa__ring_set_executor(struct proa__ring *r,
			     const struct proa__executor *x)
{
	r->exec = x;
}

bool proa__op_is_file(const struct proa_op *op)
{
	if (op->priv.iflags & PROA__OPF_INTERNAL)
		return false;
	switch (op->priv.kind) {
	case PROA__OP_READ:
	case PROA__OP_WRITE:
	case PROA__OP_READV:
	case PROA__OP_WRITEV:
	case PROA__OP_FSYNC:
	case PROA__OP_OPENAT:
	case PROA__OP_CLOSE:
	case PROA__OP_STATX:
	case PROA__OP_OPENAT2:
	case PROA__OP_FALLOCATE:
	case PROA__OP_FTRUNCATE:
	case PROA__OP_UNLINKAT:
	case PROA__OP_RENAMEAT:
	case PROA__OP_MKDIRAT:
	case PROA__OP_SYMLINKAT:
	case PROA__OP_LINKAT:
	case PROA__OP_GETDENTS:
	case PROA__OP_COPY_FILE_RANGE:
		return true;
	default:
		return false;
	}
}

/* Hand INFLIGHT @op, already off its list, to the executor: away on
 * success, else back on nothing (the caller decides). */
static int send_away(struct proa__ring *r, struct proa_op *op)
{
	int ret;

	/* Away before the call: the executor may look the op up. */
	op->priv.iflags |= PROA__OPF_AWAY;
	proa_list_add_tail(&r->away, &op->priv.link);
	ret = r->exec->submit(r, op);
	if (ret < 0) {
		proa_list_del(&op->priv.link);
		op->priv.iflags &= (uint16_t)~PROA__OPF_AWAY;
	}
	return ret;
}

int proa__exec_submit(struct proa__ring *r, struct proa_op *op)
{
	int ret;

	if (!r->exec)
		return -EOPNOTSUPP;
	op->priv.state = PROA_OP_INFLIGHT;
	ret = send_away(r, op);
	if (ret < 0) {
		op->priv.state = PROA_OP_IDLE;
		return ret;
	}
	count_new(r, op);
	return 0;
}

/* Complete @op without the kernel; its callback runs after the next reap. */
static void complete_locally(struct proa__ring *r, struct proa_op *op,
			     int32_t res)
{
	proa_list_del(&op->priv.link);
	op->priv.iflags |= PROA__OPF_LOCAL_DONE;
	op->res = res;
	proa_list_add_tail(&r->done, &op->priv.link);
}

void proa__exec_complete(struct proa__ring *r, struct proa_op *op, int32_t res)
{
	complete_locally(r, op, res);
}

int proa__ring_cancel(struct proa__ring *r, struct proa_op *op)
{
	switch (op->priv.state) {
	case PROA_OP_IDLE:
		return -ENOENT;
	case PROA_OP_QUEUED:
		if (op->priv.iflags & PROA__OPF_CANCEL_REQ)
			return -EALREADY;
		op->priv.iflags |= PROA__OPF_CANCEL_REQ;
		complete_locally(r, op, -ECANCELED);
		return 0;
	default:
		if (op->priv.iflags & PROA__OPF_CANCEL_REQ)
			return -EALREADY;
		op->priv.iflags |= PROA__OPF_CANCEL_REQ;
		/* Home from the executor: its result won the race. */
		if (op->priv.iflags & PROA__OPF_LOCAL_DONE)
			return 0;
		if (op->priv.iflags & PROA__OPF_AWAY) {
			r->exec->cancel(r, op);
			return 0;
		}
		if (r->ops->issue_cancel(r, op) < 0) {
			op->priv.iflags |= PROA__OPF_CANCEL_BACKLOG;
			r->nr_cancel_backlog++;
		}
		return 0;
	}
}

/* Move waiting ops (and cancel requests) into the SQ while it has room. */
static void flush_queued(struct proa__ring *r)
{
	struct proa_link *l, *next;
	struct proa_op *op;
	int ret;

	while (!proa_list_empty(&r->queued)) {
		op = proa_container_of(r->queued.next, struct proa_op,
				       priv.link);
		ret = r->ops->issue(r, op);
		if (ret == -EAGAIN)
			break;
		if (ret < 0) {
			/* Accepted earlier, so the error goes to the op. */
			complete_locally(r, op, ret);
			continue;
		}
		proa_list_del(&op->priv.link);
		op->priv.state = PROA_OP_INFLIGHT;
		proa_list_add_tail(&r->inflight, &op->priv.link);
	}
	if (proa__likely(r->nr_cancel_backlog == 0))
		return;
	for (l = r->inflight.next; l != &r->inflight; l = next) {
		next = l->next;
		op = proa_container_of(l, struct proa_op, priv.link);
		if (!(op->priv.iflags & PROA__OPF_CANCEL_BACKLOG))
			continue;
		if (r->ops->issue_cancel(r, op) < 0)
			break;
		op->priv.iflags &= (uint16_t)~PROA__OPF_CANCEL_BACKLOG;
		r->nr_cancel_backlog--;
	}
}

int proa__ring_wait(struct proa__ring *r, int64_t timeout_ns)
{
	int ret;

	/* Ops waiting in line must reach the kernel before we block, or a
	 * wait could outlast them: submit without waiting until the line is
	 * empty or the kernel pushes back. */
	for (;;) {
		flush_queued(r);
		if (proa_list_empty(&r->queued) && r->nr_cancel_backlog == 0)
			break;
		ret = r->ops->wait(r, 0);
		if (ret < 0)
			return ret;
		if (ret > 0)
			break; /* the kernel is busy: wait for completions */
	}
	if (!proa_list_empty(&r->done))
		timeout_ns = 0;
	ret = r->ops->wait(r, timeout_ns);
	return ret < 0 ? ret : 0;
}

bool proa__ring_has_pending(struct proa__ring *r)
{
	return !proa_list_empty(&r->done) || r->ops->has_pending(r);
}

/* The kernel handed a buffer out with this completion: it is the
 * caller's until proa_buf_ring_put(). */
static void buffer_taken(const struct proa__cqe *c)
{
	struct proa_buf_ring *br = c->op->priv.addr2;
	unsigned id = c->flags >> 16;

	if ((c->op->priv.kind == PROA__OP_RECV_SELECT ||
	     c->op->priv.kind == PROA__OP_RECVMSG_SELECT) &&
	    id < br->nbufs && br->in_ring[id]) {
		br->in_ring[id] = 0;
		br->avail--;
	}
}

/* A file the kernel cannot do this on (libuv #4268): once more, on the
 * executor, unless it was cancelled.  The op stays INFLIGHT throughout.
 * Return: whether it went away (its completion is dropped). */
static bool retry_away(struct proa__ring *r, const struct proa__cqe *c)
{
	struct proa_op *op = c->op;

	/* A slot of the kernel's file table has no descriptor a thread
	 * could use: the refusal stands. */
	if (proa__likely(c->res != -EOPNOTSUPP) || !r->exec ||
	    !proa__op_is_file(op) ||
	    (op->priv.iflags & (PROA__OPF_CANCEL_REQ | PROA__OPF_FIXED_FILE)))
		return false;
	proa_list_del(&op->priv.link);
	if (send_away(r, op) == 0)
		return true;
	proa_list_add_tail(&r->inflight, &op->priv.link);
	return false;
}

/* proa__ring_faults.refuse_kinds: the kernel "refused" these. */
static void refuse_faults(struct proa__cqe *c, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (!(c[i].op->priv.iflags & PROA__OPF_INTERNAL) &&
		    (proa__ring_faults.refuse_kinds >> c[i].op->priv.kind) & 1)
			c[i].res = -EOPNOTSUPP;
	}
}

unsigned proa__ring_reap(struct proa__ring *r, struct proa__cqe *out,
			 unsigned max)
{
	struct proa_op *op;
	unsigned n = 0, k, i, j;

	while (n < max && !proa_list_empty(&r->done)) {
		op = proa_container_of(r->done.next, struct proa_op, priv.link);
		proa_list_del(&op->priv.link);
		out[n].op = op;
		out[n].res = op->res;
		out[n].flags = 0;
		n++;
	}
	while (n < max) {
		k = r->ops->reap(r, out + n, max - n);
		if (k == 0)
			break;
		if (proa__unlikely(proa__ring_faults.refuse_kinds != 0))
			refuse_faults(out + n, k);
		for (i = j = n; i < n + k; i++) {
			if (out[i].flags & PROA_OP_F_BUFFER)
				buffer_taken(&out[i]);
			if (!retry_away(r, &out[i]))
				out[j++] = out[i];
		}
		n = j;
		if (j == i)
			break; /* none went away: the next reap may be empty */
	}
	return n;
}

void proa__ring_complete(struct proa__ring *r, struct proa_op *op,
			 uint32_t flags)
{
	if (flags & PROA_OP_F_MORE)
		return;
	proa_list_del(&op->priv.link);
	if (op->priv.iflags & PROA__OPF_CANCEL_BACKLOG)
		r->nr_cancel_backlog--;
	if (!(op->priv.iflags & PROA__OPF_INTERNAL))
		r->nr_user--;
	op->priv.iflags &= PROA__OPF_INTERNAL;
	op->priv.state = PROA_OP_IDLE;
}

unsigned proa__ring_nr_user(const struct proa__ring *r)
{
	return r->nr_user;
}

static void for_each_on(struct proa_link *head,
			void (*fn)(struct proa_op *op, void *arg), void *arg)
{
	struct proa_link *l, *next;

	/* @fn may move the op to another list (cancel of a queued op). */
	for (l = head->next; l != head; l = next) {
		next = l->next;
		fn(proa_container_of(l, struct proa_op, priv.link), arg);
	}
}

void proa__ring_for_each(struct proa__ring *r,
			 void (*fn)(struct proa_op *op, void *arg), void *arg)
{
	for_each_on(&r->inflight, fn, arg);
	for_each_on(&r->away, fn, arg);
	for_each_on(&r->queued, fn, arg);
	for_each_on(&r->done, fn, arg);
}

bool proa__ring_feature(const struct proa__ring *r, enum proa_feature f)
{
	if ((unsigned)f >= PROA_FEAT__COUNT)
		return false;
	return (r->features >> f) & 1;
}

const char *proa__ring_backend(const struct proa__ring *r)
{
	return r->ops->name;
}

/* The features' names live beside the probe that finds them (they are
 * ring facts), so that the ring reports them without calling up. */
const char *proa_feature_name(enum proa_feature f)
{
	static const char *const names[PROA_FEAT__COUNT] = {
	    [PROA_FEAT_SINGLE_ISSUER] = "SINGLE_ISSUER",
	    [PROA_FEAT_DEFER_TASKRUN] = "DEFER_TASKRUN",
	    [PROA_FEAT_COOP_TASKRUN] = "COOP_TASKRUN",
	    [PROA_FEAT_TASKRUN_FLAG] = "TASKRUN_FLAG",
	    [PROA_FEAT_SUBMIT_ALL] = "SUBMIT_ALL",
	    [PROA_FEAT_NODROP] = "NODROP",
	    [PROA_FEAT_EXT_ARG] = "EXT_ARG",
	    [PROA_FEAT_REG_RING_FD] = "REG_RING_FD",
	    [PROA_FEAT_MSG_RING] = "MSG_RING",
	    [PROA_FEAT_OP_NOP] = "OP_NOP",
	    [PROA_FEAT_OP_TIMEOUT] = "OP_TIMEOUT",
	    [PROA_FEAT_OP_READ] = "OP_READ",
	    [PROA_FEAT_OP_WRITE] = "OP_WRITE",
	    [PROA_FEAT_OP_READV] = "OP_READV",
	    [PROA_FEAT_OP_WRITEV] = "OP_WRITEV",
	    [PROA_FEAT_OP_FSYNC] = "OP_FSYNC",
	    [PROA_FEAT_OP_OPENAT] = "OP_OPENAT",
	    [PROA_FEAT_OP_CLOSE] = "OP_CLOSE",
	    [PROA_FEAT_OP_STATX] = "OP_STATX",
	    [PROA_FEAT_OP_POLL] = "OP_POLL",
	    [PROA_FEAT_OP_ASYNC_CANCEL] = "OP_ASYNC_CANCEL",
	    [PROA_FEAT_OP_ACCEPT] = "OP_ACCEPT",
	    [PROA_FEAT_OP_CONNECT] = "OP_CONNECT",
	    [PROA_FEAT_OP_RECV] = "OP_RECV",
	    [PROA_FEAT_OP_SEND] = "OP_SEND",
	    [PROA_FEAT_OP_RECVMSG] = "OP_RECVMSG",
	    [PROA_FEAT_OP_SENDMSG] = "OP_SENDMSG",
	    [PROA_FEAT_OP_SHUTDOWN] = "OP_SHUTDOWN",
	    [PROA_FEAT_ACCEPT_MULTISHOT] = "ACCEPT_MULTISHOT",
	    [PROA_FEAT_RECV_MULTISHOT] = "RECV_MULTISHOT",
	    [PROA_FEAT_BUF_RING] = "BUF_RING",
	    [PROA_FEAT_OP_SPLICE] = "OP_SPLICE",
	    [PROA_FEAT_OP_WAITID] = "OP_WAITID",
	    [PROA_FEAT_OP_OPENAT2] = "OP_OPENAT2",
	    [PROA_FEAT_OP_FALLOCATE] = "OP_FALLOCATE",
	    [PROA_FEAT_OP_FTRUNCATE] = "OP_FTRUNCATE",
	    [PROA_FEAT_OP_UNLINKAT] = "OP_UNLINKAT",
	    [PROA_FEAT_OP_RENAMEAT] = "OP_RENAMEAT",
	    [PROA_FEAT_OP_MKDIRAT] = "OP_MKDIRAT",
	    [PROA_FEAT_OP_SYMLINKAT] = "OP_SYMLINKAT",
	    [PROA_FEAT_OP_LINKAT] = "OP_LINKAT",
	    [PROA_FEAT_REG_FILES] = "REG_FILES",
	    [PROA_FEAT_REG_BUFFERS] = "REG_BUFFERS",
	    [PROA_FEAT_OP_SENDMSG_ZC] = "OP_SENDMSG_ZC",
	    [PROA_FEAT_SEND_ZC_REPORT] = "SEND_ZC_REPORT",
	};

	if ((unsigned)f >= PROA_FEAT__COUNT)
		return "?";
	return names[f];
}

int proa__ring_describe(const struct proa__ring *r, char *buf, size_t len)
{
	int ret = r->ops->describe(r, buf, len);
	size_t used;

	if (ret < 0)
		return ret;
	/* Every backend's report ends with the same feature lines. */
	used = (size_t)ret;
	for (unsigned i = 0; i < PROA_FEAT__COUNT; i++) {
		PROA__EMIT(buf, len, &used, "%s: %s\n",
			   proa_feature_name((enum proa_feature)i),
			   proa__ring_feature(r, (enum proa_feature)i) ? "yes"
								       : "no");
	}
	return used > INT_MAX ? INT_MAX : (int)used;
}

void proa__ring_get_stats(const struct proa__ring *r,
			  struct proa__ring_stats *out)
{
	*out = r->stats;
}

int proa__ring_probe(char *reason, size_t len)
{
	return proa__uring_probe(reason, len);
}

/* ---- file calls made without io_uring ---------------------------------- */

ssize_t proa__file_rw(const struct proa_op *op)
{
	const struct proa__op_priv *p = &op->priv;
	bool at = p->off != UINT64_MAX;
	ssize_t n;

	/* A stream ignores the offset, as io_uring does for FMODE_STREAM
	 * files; a seekable pollable device honours it. */
	switch (p->kind) {
	case PROA__OP_READ:
		n = at ? pread(p->fd, (void *)p->addr, p->len, (off_t)p->off)
		       : read(p->fd, (void *)p->addr, p->len);
		if (n < 0 && at && errno == ESPIPE)
			n = read(p->fd, (void *)p->addr, p->len);
		return n;
	case PROA__OP_WRITE:
		n = at ? pwrite(p->fd, p->addr, p->len, (off_t)p->off)
		       : write(p->fd, p->addr, p->len);
		if (n < 0 && at && errno == ESPIPE)
			n = write(p->fd, p->addr, p->len);
		return n;
	case PROA__OP_READV:
		n = at ? preadv(p->fd, p->addr, (int)p->len, (off_t)p->off)
		       : readv(p->fd, p->addr, (int)p->len);
		if (n < 0 && at && errno == ESPIPE)
			n = readv(p->fd, p->addr, (int)p->len);
		return n;
	default: /* PROA__OP_WRITEV */
		n = at ? pwritev(p->fd, p->addr, (int)p->len, (off_t)p->off)
		       : writev(p->fd, p->addr, (int)p->len);
		if (n < 0 && at && errno == ESPIPE)
			n = writev(p->fd, p->addr, (int)p->len);
		return n;
	}
}

/* ---- multishot recvmsg buffers (struct proa__recvmsg_out) -------------- */

int proa_recvmsg_parse(const struct msghdr *msg, const void *buf, size_t len,
		       struct proa_recvmsg_out *out)
{
	const struct proa__recvmsg_out *o = buf;
	const unsigned char *name;
	size_t hdr;
	size_t room;

	if (!msg || !buf || !out || len > INT_MAX)
		return -EINVAL;
	hdr = proa__recvmsg_hdr_len(msg);
	if (len < hdr)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	name = (const unsigned char *)(o + 1);
	if (msg->msg_namelen > 0 && o->namelen > 0) {
		out->name = (const struct sockaddr *)(const void *)name;
		out->namelen = o->namelen < msg->msg_namelen ? o->namelen
							     : msg->msg_namelen;
	}
	if (msg->msg_controllen > 0) {
		out->control = name + msg->msg_namelen;
		out->controllen = o->controllen;
	}
	out->payload = (const unsigned char *)buf + hdr;
	room = len - hdr;
	out->truelen = o->payloadlen;
	out->payloadlen = o->payloadlen < room ? o->payloadlen : room;
	out->flags = (int)o->flags;
	return 0;
}

/* ---- provided-buffer rings ------------------------------------------------
 */

int proa__buf_ring_register(struct proa__ring *r, struct proa_buf_ring *br)
{
	struct proa_buf_ring *o;
	struct proa_link *l;
	uint32_t gid;
	bool used;
	int ret;

	if (!r->ops->buf_ring_register)
		return -EOPNOTSUPP;
	/* The lowest group id not in use: rings come and go rarely. */
	for (gid = 0; gid <= UINT16_MAX; gid++) {
		used = false;
		for (l = r->buf_rings.next; l != &r->buf_rings; l = l->next) {
			o = proa_container_of(l, struct proa_buf_ring, link);
			if (o->bgid == gid) {
				used = true;
				break;
			}
		}
		if (!used)
			break;
	}
	if (gid > UINT16_MAX)
		return -ENOSPC;
	if (br->bufsize > SIZE_MAX / br->nbufs)
		return -EINVAL;
	br->mem = aligned_alloc(4096, (br->nbufs * br->bufsize + 4095) &
					  ~(size_t)4095);
	br->in_ring = calloc(br->nbufs, 1);
	if (!br->mem || !br->in_ring) {
		ret = -ENOMEM;
		goto fail;
	}
	br->ring = r;
	br->bgid = (uint16_t)gid;
	ret = r->ops->buf_ring_register(r, br);
	if (ret < 0)
		goto fail;
	proa_list_add_tail(&r->buf_rings, &br->link);
	return 0;
fail:
	free(br->mem);
	free(br->in_ring);
	br->mem = NULL;
	br->in_ring = NULL;
	return ret;
}

static bool selects_from(struct proa_link *head, const struct proa_buf_ring *br)
{
	struct proa_link *l;
	struct proa_op *op;

	for (l = head->next; l != head; l = l->next) {
		op = proa_container_of(l, struct proa_op, priv.link);
		if ((op->priv.kind == PROA__OP_RECV_SELECT ||
		     op->priv.kind == PROA__OP_RECVMSG_SELECT) &&
		    op->priv.addr2 == br)
			return true;
	}
	return false;
}

static void buf_ring_release(struct proa__ring *r, struct proa_buf_ring *br)
{
	proa_list_del(&br->link);
	r->ops->buf_ring_unregister(r, br);
	free(br->mem);
	free(br->in_ring);
	free(br);
}

int proa__buf_ring_unregister(struct proa_buf_ring *br)
{
	struct proa__ring *r = br->ring;

	if (selects_from(&r->queued, br) || selects_from(&r->inflight, br) ||
	    selects_from(&r->done, br))
		return -EBUSY;
	buf_ring_release(r, br);
	return 0;
}

void proa__buf_ring_push(struct proa_buf_ring *br, unsigned id)
{
	br->ring->ops->buf_ring_push(br, id);
	br->in_ring[id] = 1;
	br->avail++;
}

void proa__buf_rings_free_all(struct proa__ring *r)
{
	while (!proa_list_empty(&r->buf_rings))
		buf_ring_release(r,
				 proa_container_of(r->buf_rings.next,
						   struct proa_buf_ring, link));
}

/* ---- registered files ------------------------------------------------------
 */

/* Slots made at the first registration: the kernel's table cannot grow
 * without being unregistered, which waits for every op on it.  At most
 * RLIMIT_NOFILE (the kernel refuses more with EMFILE). */
#define PROA__FILES_MAX 4096u

static void close_dup(struct proa__ring *r, int fd)
{
	if (r->ops->forget_fd)
		r->ops->forget_fd(r, fd);
	close(fd);
}

/* Free the table; close an emulated one's duplicates, telling the
 * backend first unless @tell_backend is false (a fork child). */
static void files_drop(struct proa__ring *r, bool tell_backend)
{
	struct proa__files *t = &r->files;

	if (!t->kernel) {
		for (uint32_t i = 0; i < t->nr; i++) {
			if (t->fds[i] < 0)
				continue;
			if (tell_backend)
				close_dup(r, t->fds[i]);
			else
				close(t->fds[i]);
		}
	}
	free(t->fds);
	memset(t, 0, sizeof(*t));
}

static int files_init(struct proa__ring *r)
{
	struct proa__files *t = &r->files;
	struct rlimit rl;
	uint32_t nr = PROA__FILES_MAX;
	int ret = -EOPNOTSUPP;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < nr)
		nr = rl.rlim_cur < 16 ? 16 : (uint32_t)rl.rlim_cur;
	t->fds = malloc(nr * sizeof(*t->fds));
	if (!t->fds)
		return -ENOMEM;
	for (uint32_t i = 0; i < nr; i++)
		t->fds[i] = PROA__SLOT_FREE;
	if (r->ops->files_init && proa__ring_feature(r, PROA_FEAT_REG_FILES))
		ret = r->ops->files_init(r, nr);
	if (ret < 0 && ret != -EOPNOTSUPP) {
		free(t->fds);
		t->fds = NULL;
		return ret;
	}
	t->kernel = ret == 0;
	t->nr = nr;
	return 0;
}

int proa__ring_file_add(struct proa__ring *r, int fd)
{
	struct proa__files *t = &r->files;
	uint32_t slot;
	int ret;

	if (fcntl(fd, F_GETFD) < 0)
		return -EBADF;
	if (t->nr == 0) {
		ret = files_init(r);
		if (ret < 0)
			return ret;
	}
	if (t->used == t->nr)
		return -ENOSPC;
	for (slot = 0; t->fds[slot] != PROA__SLOT_FREE; slot++)
		;
	if (t->kernel) {
		ret = r->ops->files_set(r, slot, fd);
		if (ret < 0)
			return ret;
		t->fds[slot] = PROA__SLOT_KERNEL;
	} else {
		/* Our own reference, as the kernel's table would hold: the
		 * caller may close @fd. */
		ret = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		if (ret < 0)
			return -errno;
		t->fds[slot] = ret;
	}
	t->used++;
	return (int)slot;
}

static bool uses_slot(const struct proa__ring *r, const struct proa_op *op,
		      unsigned slot)
{
	if (!(op->priv.iflags & PROA__OPF_SLOT))
		return false;
	if (op->priv.iflags & PROA__OPF_FIXED_FILE)
		return (unsigned)op->priv.fd == slot;
	return op->priv.fd == r->files.fds[slot];
}

static bool slot_busy_on(const struct proa__ring *r,
			 const struct proa_link *head, unsigned slot)
{
	for (const struct proa_link *l = head->next; l != head; l = l->next) {
		if (uses_slot(r,
			      proa_container_of(l, struct proa_op, priv.link),
			      slot))
			return true;
	}
	return false;
}

int proa__ring_file_del(struct proa__ring *r, unsigned slot)
{
	struct proa__files *t = &r->files;
	int ret;

	if (slot >= t->nr || t->fds[slot] == PROA__SLOT_FREE)
		return -EBADF;
	/* An emulated slot's descriptor must not close under an op (rule
	 * 6); the kernel's would survive, but both backends keep one
	 * rule. */
	if (slot_busy_on(r, &r->queued, slot) ||
	    slot_busy_on(r, &r->inflight, slot) ||
	    slot_busy_on(r, &r->away, slot) || slot_busy_on(r, &r->done, slot))
		return -EBUSY;
	if (t->kernel) {
		ret = r->ops->files_set(r, slot, -1);
		if (ret < 0)
			return ret;
	} else {
		close_dup(r, t->fds[slot]);
	}
	t->fds[slot] = PROA__SLOT_FREE;
	t->used--;
	return 0;
}

int proa__ring_file_use(struct proa__ring *r, struct proa_op *op, unsigned slot)
{
	const struct proa__files *t = &r->files;

	if (slot >= t->nr || t->fds[slot] == PROA__SLOT_FREE)
		return -EBADF;
	op->priv.iflags |= PROA__OPF_SLOT;
	if (t->kernel) {
		op->priv.iflags |= PROA__OPF_FIXED_FILE;
		op->priv.fd = (int32_t)slot;
	} else {
		op->priv.fd = t->fds[slot];
	}
	return 0;
}

/* ---- registered buffers ----------------------------------------------------
 */

int proa__ring_bufs_add(struct proa__ring *r, const struct iovec *iov,
			unsigned nr)
{
	struct proa__bufs *b = &r->bufs;
	struct iovec *copy;
	int ret = -EOPNOTSUPP;

	if (b->nr > 0)
		return -EBUSY;
	/* The kernel's limits (io_buffers_map): 16384 buffers of 1 GiB. */
	if (!iov || nr == 0 || nr > 16384)
		return -EINVAL;
	for (unsigned i = 0; i < nr; i++) {
		if (!iov[i].iov_base || iov[i].iov_len == 0 ||
		    iov[i].iov_len > (1u << 30))
			return -EINVAL;
	}
	copy = malloc(nr * sizeof(*copy));
	if (!copy)
		return -ENOMEM;
	memcpy(copy, iov, nr * sizeof(*copy));
	if (r->ops->bufs_register &&
	    proa__ring_feature(r, PROA_FEAT_REG_BUFFERS))
		ret = r->ops->bufs_register(r, copy, nr);
	if (ret < 0 && ret != -EOPNOTSUPP) {
		free(copy);
		return ret;
	}
	b->kernel = ret == 0;
	b->iov = copy;
	b->nr = nr;
	return 0;
}

static bool bufs_busy_on(const struct proa_link *head)
{
	for (const struct proa_link *l = head->next; l != head; l = l->next) {
		if (proa_container_of(l, struct proa_op, priv.link)
			->priv.iflags &
		    PROA__OPF_FIXED_BUF)
			return true;
	}
	return false;
}

int proa__ring_bufs_del(struct proa__ring *r)
{
	struct proa__bufs *b = &r->bufs;

	if (b->nr == 0)
		return -ENXIO;
	if (bufs_busy_on(&r->queued) || bufs_busy_on(&r->inflight) ||
	    bufs_busy_on(&r->away) || bufs_busy_on(&r->done))
		return -EBUSY;
	if (b->kernel)
		r->ops->bufs_unregister(r);
	free(b->iov);
	memset(b, 0, sizeof(*b));
	return 0;
}

bool proa__ring_buf_fits(const struct proa__ring *r, unsigned index,
			 const void *buf, size_t len)
{
	uintptr_t start, p = (uintptr_t)buf;

	if (index >= r->bufs.nr)
		return false;
	start = (uintptr_t)r->bufs.iov[index].iov_base;
	return p >= start && len <= r->bufs.iov[index].iov_len &&
	       p - start <= r->bufs.iov[index].iov_len - len;
}

bool proa__ring_bufs_kernel(const struct proa__ring *r)
{
	return r->bufs.kernel;
}
