/* SPDX-License-Identifier: MIT */
/*
 * ring/uring.c - the io_uring backend.
 *
 * Set-up: flags are tried strongest first and dropped on EINVAL
 * (SINGLE_ISSUER|DEFER_TASKRUN, then COOP_TASKRUN, then none; SUBMIT_ALL
 * where accepted), never SQPOLL (docs/reliability.md P8).  The ring starts
 * disabled (R_DISABLED) and is enabled by the thread that first runs the
 * loop, because SINGLE_ISSUER binds the ring to its first submitter.
 *
 * Submission and waiting: liburing 2.3 fills SQEs and reads CQEs; the
 * io_uring_enter call is ours (io_uring_enter2), one per loop iteration at
 * most, so that we count it, keep EINTR/ETIME/EBUSY/EAGAIN in hand
 * (liburing's submit_and_wait_timeout hides the wait error once anything was
 * submitted: liburing#1280), and skip it entirely when there is nothing to
 * submit, nothing to wait for and the kernel has not flagged pending work
 * (IORING_SQ_TASKRUN, IORING_SQ_CQ_OVERFLOW).
 *
 * Minimum kernel: 5.11 (IORING_FEAT_EXT_ARG: the wait timeout travels with
 * the enter call instead of a timeout SQE; IORING_FEAT_NODROP, 5.5).  Older
 * kernels are reported as too old, in words.
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "ring_priv.h"

/* Not in the 6.1 UAPI headers Debian 12 ships, or not in liburing 2.3. */
#ifndef IORING_REGISTER_ENABLE_RINGS
#define IORING_REGISTER_ENABLE_RINGS 12
#endif
/* IORING_OP_WAITID (Linux 6.7) is an enumerator of headers newer than
 * liburing 2.3's, so it gets a name of ours; the probe says whether the
 * running kernel has it. */
#define PROA__IORING_OP_WAITID 50
/* IORING_OP_FTRUNCATE (Linux 6.9), likewise; liburing 2.6's
 * io_uring_prep_ftruncate() is a plain rw prep with the length as offset. */
#define PROA__IORING_OP_FTRUNCATE 55
/* A zero-copy send's report of whether the kernel copied after all
 * (Linux 6.2; liburing 2.3's headers are 6.1's): the flag asks for it in
 * the notification's res. */
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

/* proa/op.h spells openat2(2)'s struct and flags without kernel headers. */
_Static_assert(sizeof(struct proa_open_how) == sizeof(struct open_how) &&
		   offsetof(struct proa_open_how, flags) ==
		       offsetof(struct open_how, flags) &&
		   offsetof(struct proa_open_how, mode) ==
		       offsetof(struct open_how, mode) &&
		   offsetof(struct proa_open_how, resolve) ==
		       offsetof(struct open_how, resolve),
	       "proa_open_how must match the kernel's open_how");
_Static_assert(PROA_RESOLVE_NO_XDEV == RESOLVE_NO_XDEV &&
		   PROA_RESOLVE_NO_MAGICLINKS == RESOLVE_NO_MAGICLINKS &&
		   PROA_RESOLVE_NO_SYMLINKS == RESOLVE_NO_SYMLINKS &&
		   PROA_RESOLVE_BENEATH == RESOLVE_BENEATH &&
		   PROA_RESOLVE_IN_ROOT == RESOLVE_IN_ROOT &&
		   PROA_RESOLVE_CACHED == RESOLVE_CACHED,
	       "PROA_RESOLVE_* must be the kernel's RESOLVE_*");

_Static_assert(sizeof(struct proa__timespec) ==
		   sizeof(struct __kernel_timespec),
	       "proa__timespec must match __kernel_timespec");
/* The epoll backend writes, and proa_recvmsg_parse() reads, the kernel's
 * layout of a multishot recvmsg buffer through struct proa__recvmsg_out. */
_Static_assert(sizeof(struct proa__recvmsg_out) ==
		   sizeof(struct io_uring_recvmsg_out),
	       "proa__recvmsg_out must match io_uring_recvmsg_out");
_Static_assert(offsetof(struct proa__recvmsg_out, namelen) ==
		       offsetof(struct io_uring_recvmsg_out, namelen) &&
		   offsetof(struct proa__recvmsg_out, controllen) ==
		       offsetof(struct io_uring_recvmsg_out, controllen) &&
		   offsetof(struct proa__recvmsg_out, payloadlen) ==
		       offsetof(struct io_uring_recvmsg_out, payloadlen) &&
		   offsetof(struct proa__recvmsg_out, flags) ==
		       offsetof(struct io_uring_recvmsg_out, flags),
	       "proa__recvmsg_out fields must sit where the kernel's do");

struct uring {
	struct proa__ring base;
	struct io_uring ring;
	unsigned setup_flags;
	unsigned enter_fd;
	unsigned enter_flags; /* IORING_ENTER_REGISTERED_RING once registered */
	bool enabled;
	bool busy;	       /* the kernel refused submissions: reap first */
	bool zc_report;	       /* ask zero-copy sends whether they copied */
	unsigned last_dropped; /* *cq.koverflow last seen */
	/* openat2: the struct open_how each SQE slot points at, by slot
	 * index.  The kernel copies it when it consumes the SQE
	 * (io_openat2_prep), and a slot is reused only after that, so one
	 * per slot is enough and the op itself keeps 32 bytes less. */
	struct open_how *hows;
};

static struct uring *to_uring(struct proa__ring *r)
{
	return proa_container_of(r, struct uring, base);
}

static const struct uring *to_curing(const struct proa__ring *r)
{
	return proa_container_of(r, const struct uring, base);
}

/* ---- system calls, with the test faults ------------------------------- */

static int do_enter(struct uring *u, unsigned to_submit, unsigned min_complete,
		    unsigned flags, void *arg, size_t argsz)
{
	u->base.stats.enters++;
	if (proa__unlikely(proa__ring_faults.enter_fail_count > 0)) {
		proa__ring_faults.enter_fail_count--;
		return -proa__ring_faults.enter_errno;
	}
	return io_uring_enter2(u->enter_fd, to_submit, min_complete,
			       flags | u->enter_flags, arg, argsz);
}

/* Publish the SQEs written since the last call (liburing 2.3 keeps its own
 * __io_uring_flush_sq private).  Returns how many the kernel has not
 * consumed yet. */
static unsigned flush_sq(struct uring *u)
{
	struct io_uring_sq *sq = &u->ring.sq;
	unsigned tail = sq->sqe_tail;

	if (sq->sqe_head != tail) {
		sq->sqe_head = tail;
		/* Release: the kernel must see the SQE contents first. */
		io_uring_smp_store_release(sq->ktail, tail);
	}
	return tail - IO_URING_READ_ONCE(*sq->khead);
}

static bool kernel_has_work(struct uring *u)
{
	return IO_URING_READ_ONCE(*u->ring.sq.kflags) &
	       (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN);
}

static struct io_uring_sqe *get_sqe(struct uring *u)
{
	unsigned i;

	if (proa__unlikely(proa__ring_faults.get_sqe_fail_mask != 0)) {
		i = proa__ring_faults.get_sqe_calls++;
		if (i < 64 && (proa__ring_faults.get_sqe_fail_mask >> i) & 1)
			return NULL;
	}
	return io_uring_get_sqe(&u->ring);
}

/* Submit what is in the SQ now, without waiting.  0, or -EAGAIN when the
 * kernel pushed back (then @u->busy is set). */
static int submit_now(struct uring *u)
{
	unsigned to_submit = flush_sq(u);
	int ret;

	if (to_submit == 0)
		return 0;
	ret = do_enter(u, to_submit, 0, 0, NULL, 0);
	if (ret >= 0) {
		u->base.stats.submissions += (unsigned)ret;
		if ((unsigned)ret < to_submit) {
			u->busy = true;
			return -EAGAIN;
		}
		return 0;
	}
	if (ret == -EAGAIN || ret == -EBUSY || ret == -EINTR) {
		u->busy = ret != -EINTR;
		return -EAGAIN;
	}
	return ret;
}

/* An SQE, flushing a full SQ once (docs/reliability.md P2).  NULL when the ring
 * is not enabled yet or the kernel is pushing back. */
static struct io_uring_sqe *get_sqe_flush(struct uring *u)
{
	struct io_uring_sqe *sqe = get_sqe(u);

	if (proa__likely(sqe != NULL))
		return sqe;
	if (!u->enabled || u->busy)
		return NULL;
	u->base.stats.sq_full++;
	if (submit_now(u) < 0)
		return NULL;
	return get_sqe(u);
}

/* ---- the backend ------------------------------------------------------- */

static void prep(struct uring *u, struct io_uring_sqe *sqe, struct proa_op *op)
{
	struct proa__op_priv *p = &op->priv;
	struct open_how *how;

	switch (p->kind) {
	case PROA__OP_NOP:
		io_uring_prep_nop(sqe);
		break;
	case PROA__OP_TIMEOUT:
		/* The kernel reads the timespec when the SQE is submitted,
		 * so it lives in the op until then. */
		p->u.be.uring.ts.tv_sec =
		    (int64_t)(p->timeout_ns / 1000000000u);
		p->u.be.uring.ts.tv_nsec =
		    (long long)(p->timeout_ns % 1000000000u);
		io_uring_prep_timeout(
		    sqe, (struct __kernel_timespec *)&p->u.be.uring.ts, 0, 0);
		break;
	case PROA__OP_READ:
		/* Into a registered buffer: its index is in extra (ops.c
		 * checked that the range lies inside it). */
		if ((p->iflags & PROA__OPF_FIXED_BUF) &&
		    proa__ring_bufs_kernel(&u->base))
			io_uring_prep_read_fixed(sqe, p->fd, (void *)p->addr,
						 p->len, p->off, (int)p->extra);
		else
			io_uring_prep_read(sqe, p->fd, (void *)p->addr, p->len,
					   p->off);
		break;
	case PROA__OP_WRITE:
		if ((p->iflags & PROA__OPF_FIXED_BUF) &&
		    proa__ring_bufs_kernel(&u->base))
			io_uring_prep_write_fixed(sqe, p->fd, p->addr, p->len,
						  p->off, (int)p->extra);
		else
			io_uring_prep_write(sqe, p->fd, p->addr, p->len,
					    p->off);
		break;
	case PROA__OP_READV:
		io_uring_prep_readv(sqe, p->fd, p->addr, p->len, p->off);
		break;
	case PROA__OP_WRITEV:
		io_uring_prep_writev(sqe, p->fd, p->addr, p->len, p->off);
		break;
	case PROA__OP_FSYNC:
		io_uring_prep_fsync(sqe, p->fd,
				    (p->extra & PROA_FSYNC_DATASYNC)
					? IORING_FSYNC_DATASYNC
					: 0);
		break;
	case PROA__OP_OPENAT:
		io_uring_prep_openat(sqe, p->fd, p->addr, (int)p->extra,
				     (mode_t)p->len);
		break;
	case PROA__OP_CLOSE:
		io_uring_prep_close(sqe, p->fd);
		break;
	case PROA__OP_STATX:
		io_uring_prep_statx(sqe, p->fd, p->addr, (int)p->len, p->extra,
				    p->addr2);
		break;
	case PROA__OP_POLL:
		if (p->iflags & PROA__OPF_MULTISHOT)
			io_uring_prep_poll_multishot(sqe, p->fd, p->extra);
		else
			io_uring_prep_poll_add(sqe, p->fd, p->extra);
		break;
	case PROA__OP_ACCEPT:
		if (p->iflags & PROA__OPF_MULTISHOT)
			io_uring_prep_multishot_accept(sqe, p->fd, NULL, NULL,
						       (int)p->extra);
		else
			io_uring_prep_accept(sqe, p->fd, (void *)p->addr,
					     p->addr2, (int)p->extra);
		break;
	case PROA__OP_CONNECT:
		io_uring_prep_connect(sqe, p->fd, p->addr, p->len);
		break;
	case PROA__OP_RECV:
		io_uring_prep_recv(sqe, p->fd, (void *)p->addr, p->len,
				   (int)p->extra);
		break;
	case PROA__OP_RECV_SELECT:
		if (p->iflags & PROA__OPF_MULTISHOT)
			io_uring_prep_recv_multishot(sqe, p->fd, NULL, 0, 0);
		else
			io_uring_prep_recv(sqe, p->fd, NULL, 0, 0);
		/* Buffer rings came with 5.19, as POLL_FIRST did. */
		if (p->iflags & PROA__OPF_POLL_FIRST)
			sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
		sqe->flags |= IOSQE_BUFFER_SELECT;
		sqe->buf_group = ((struct proa_buf_ring *)p->addr2)->bgid;
		break;
	case PROA__OP_RECVMSG_SELECT:
		io_uring_prep_recvmsg_multishot(sqe, p->fd, (void *)p->addr,
						MSG_TRUNC);
		sqe->flags |= IOSQE_BUFFER_SELECT;
		sqe->buf_group = ((struct proa_buf_ring *)p->addr2)->bgid;
		break;
	case PROA__OP_SEND:
		io_uring_prep_send(sqe, p->fd, p->addr, p->len, (int)p->extra);
		break;
	case PROA__OP_SENDMSG:
		io_uring_prep_sendmsg(sqe, p->fd, p->addr, p->extra);
		break;
	case PROA__OP_SENDMSG_ZC:
		io_uring_prep_sendmsg_zc(sqe, p->fd, p->addr, p->extra);
		if (u->zc_report)
			sqe->ioprio |= IORING_SEND_ZC_REPORT_USAGE;
		break;
	case PROA__OP_RECVMSG:
		io_uring_prep_recvmsg(sqe, p->fd, (void *)p->addr, p->extra);
		break;
	case PROA__OP_SHUTDOWN:
		io_uring_prep_shutdown(sqe, p->fd, (int)p->extra);
		break;
	case PROA__OP_SPLICE:
		io_uring_prep_splice(sqe, p->fd, (int64_t)p->off,
				     p->u.splice.fd_out, p->u.splice.off_out,
				     p->len, p->u.splice.flags);
		break;
	case PROA__OP_WAITID:
		/* proactor/ops.c: fd the pidfd, addr the siginfo_t, extra
		 * the waitid options; as liburing 2.5's io_uring_prep_waitid
		 * with P_PIDFD. */
		io_uring_prep_rw(PROA__IORING_OP_WAITID, sqe, p->fd, NULL,
				 P_PIDFD, 0);
		sqe->file_index = p->extra;
		sqe->addr2 = (uint64_t)(uintptr_t)p->addr;
		break;
	case PROA__OP_OPENAT2:
		/* proactor/ops.c: flags in extra, mode in len, resolve in
		 * off. */
		how = &u->hows[sqe - u->ring.sq.sqes];
		how->flags = p->extra;
		how->mode = p->len;
		how->resolve = p->off;
		io_uring_prep_openat2(sqe, p->fd, p->addr, how);
		break;
	case PROA__OP_FALLOCATE:
		io_uring_prep_fallocate(sqe, p->fd, (int)p->extra,
					(off_t)p->off, (off_t)p->arg64);
		break;
	case PROA__OP_FTRUNCATE:
		/* As liburing 2.6's io_uring_prep_ftruncate(). */
		io_uring_prep_rw(PROA__IORING_OP_FTRUNCATE, sqe, p->fd, NULL, 0,
				 p->off);
		break;
	case PROA__OP_UNLINKAT:
		io_uring_prep_unlinkat(sqe, p->fd, p->addr, (int)p->extra);
		break;
	case PROA__OP_RENAMEAT:
		io_uring_prep_renameat(sqe, p->fd, p->addr, (int)p->len,
				       p->addr2, p->extra);
		break;
	case PROA__OP_MKDIRAT:
		io_uring_prep_mkdirat(sqe, p->fd, p->addr, (mode_t)p->len);
		break;
	case PROA__OP_SYMLINKAT:
		io_uring_prep_symlinkat(sqe, p->addr, p->fd, p->addr2);
		break;
	case PROA__OP_LINKAT:
		io_uring_prep_linkat(sqe, p->fd, p->addr, (int)p->len, p->addr2,
				     (int)p->extra);
		break;
	default:
		/* proactor/ops.c fills only the kinds above (getdents and
		 * copy_file_range have no opcode: they never come here). */
		abort();
	}
	/* fd is a slot of the kernel's registered-file table. */
	if (p->iflags & PROA__OPF_FIXED_FILE)
		sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data(sqe, op);
}

static int uring_issue(struct proa__ring *r, struct proa_op *op)
{
	struct io_uring_sqe *sqe = get_sqe_flush(to_uring(r));

	if (!sqe)
		return -EAGAIN;
	prep(to_uring(r), sqe, op);
	return 0;
}

static int uring_issue_cancel(struct proa__ring *r, struct proa_op *op)
{
	struct io_uring_sqe *sqe = get_sqe_flush(to_uring(r));

	if (!sqe)
		return -EAGAIN;
	/* The target is found by its user_data, the op's address.  The op
	 * cannot be resubmitted before its final CQE, and an SQE written
	 * after this one is seen after it, so the request cannot hit a
	 * later submission of the same op. */
	io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)op, 0);
	sqe->user_data = PROA__UD_IGNORE;
	return 0;
}

static int uring_wait(struct proa__ring *r, int64_t timeout_ns)
{
	struct uring *u = to_uring(r);
	struct io_uring_getevents_arg arg;
	struct __kernel_timespec ts;
	unsigned flags = IORING_ENTER_GETEVENTS;
	unsigned min_complete = 0;
	unsigned to_submit;
	void *argp = NULL;
	size_t argsz = 0;
	int ret;

	if (!u->enabled)
		return 0;
	to_submit = flush_sq(u);
	if (u->busy) {
		/* io_uring_enter(2): on EAGAIN/EBUSY "wait for some
		 * completions and try again".  Submit nothing this time and
		 * wait at most 1 ms, in case nothing is in flight. */
		u->busy = false;
		to_submit = 0;
		if (timeout_ns < 0 || timeout_ns > 1000000)
			timeout_ns = 1000000;
	}
	if (timeout_ns == 0 && to_submit == 0 && !kernel_has_work(u))
		return 0;
	if (timeout_ns != 0)
		min_complete = 1;
	if (timeout_ns > 0) {
		ts.tv_sec = timeout_ns / 1000000000;
		ts.tv_nsec = timeout_ns % 1000000000;
		memset(&arg, 0, sizeof(arg));
		arg.ts = (uint64_t)(uintptr_t)&ts;
		flags |= IORING_ENTER_EXT_ARG;
		argp = &arg;
		argsz = sizeof(arg);
	}
	ret = do_enter(u, to_submit, min_complete, flags, argp, argsz);
	if (ret >= 0) {
		u->base.stats.submissions += (unsigned)ret;
		if ((unsigned)ret < to_submit) {
			u->busy = true;
			return 1;
		}
		return 0;
	}
	switch (-ret) {
	case EINTR: /* a signal handler ran: not an error (P3) */
	case ETIME: /* the wait timed out */
		return 0;
	case EAGAIN:
	case EBUSY:
		u->busy = true;
		return 1;
	case EBADR:
		/* CQEs were dropped (kernel out of memory); reap notices the
		 * koverflow counter and reports it. */
		return 0;
	default:
		proa__log(PROA_LOG_ERROR, "io_uring_enter: %s (%d)",
			  proa_strerror(ret), ret);
		return ret;
	}
}

/*
 * Only CQEs already in the CQ count.  IORING_SQ_TASKRUN is a hint that can
 * stay set with no work behind it: with DEFER_TASKRUN the kernel clears it
 * when it *starts* running local work, so work queued during that run leaves
 * it set on an empty list (seen on 6.18).  It may make a non-blocking pass
 * enter the kernel, never keep the loop from blocking: a blocking enter runs
 * pending work first and returns at once if that produced a CQE.
 */
static bool uring_has_pending(struct proa__ring *r)
{
	return io_uring_cq_ready(&to_uring(r)->ring) > 0;
}

static void note_dropped(struct uring *u)
{
	unsigned dropped = IO_URING_READ_ONCE(*u->ring.cq.koverflow);

	if (proa__likely(dropped == u->last_dropped))
		return;
	u->base.stats.cq_dropped += dropped - u->last_dropped;
	proa__log(PROA_LOG_ERROR,
		  "the kernel dropped %u completions (out of memory while "
		  "the CQ was full); their operations will never complete",
		  dropped - u->last_dropped);
	u->last_dropped = dropped;
}

/* The kernel's CQE flags as PROA_OP_F_*: the buffer id stays in the upper
 * 16 bits, where both put it. */
static uint32_t cqe_flags(uint32_t k)
{
	uint32_t f = 0;

	if (k & IORING_CQE_F_MORE)
		f |= PROA_OP_F_MORE;
	if (k & IORING_CQE_F_SOCK_NONEMPTY)
		f |= PROA_OP_F_SOCK_NONEMPTY;
	if (k & IORING_CQE_F_BUFFER)
		f |= PROA_OP_F_BUFFER | (k & 0xffff0000u);
	if (k & IORING_CQE_F_NOTIF)
		f |= PROA_OP_F_NOTIF;
	return f;
}

static unsigned uring_reap(struct proa__ring *r, struct proa__cqe *out,
			   unsigned max)
{
	struct uring *u = to_uring(r);
	struct io_uring_cq *cq = &u->ring.cq;
	struct io_uring_cqe *cqe;
	unsigned head, tail, n = 0;
	bool flushed = false;
	uint64_t ud;

again:
	head = *cq->khead;
	tail = io_uring_smp_load_acquire(cq->ktail);
	while (head != tail && n < max) {
		cqe = &cq->cqes[head & cq->ring_mask];
		ud = cqe->user_data;
		head++;
		if (proa__unlikely(ud < PROA__UD_TAGS))
			continue;
		out[n].op = (struct proa_op *)(uintptr_t)ud;
		out[n].res = cqe->res;
		out[n].flags = cqe_flags(cqe->flags);
		/* A notification's res is a report, not a count: a flag. */
		if (proa__unlikely(out[n].flags & PROA_OP_F_NOTIF)) {
			if ((uint32_t)cqe->res & IORING_NOTIF_USAGE_ZC_COPIED)
				out[n].flags |= PROA_OP_F_ZC_COPIED;
			out[n].res = 0;
		}
		n++;
	}
	u->base.stats.completions += head - *cq->khead;
	/* Release: the kernel may reuse the slots only after we read them. */
	io_uring_smp_store_release(cq->khead, head);
	if (head != tail || n >= max)
		return n;
	/* The CQ is empty.  If the kernel held completions back (P1), ask
	 * it to move them in and reap them now, once per call. */
	note_dropped(u);
	if (!flushed && u->enabled &&
	    (IO_URING_READ_ONCE(*u->ring.sq.kflags) & IORING_SQ_CQ_OVERFLOW)) {
		u->base.stats.cq_overflows++;
		flushed = true;
		do_enter(u, 0, 0, IORING_ENTER_GETEVENTS, NULL, 0);
		goto again;
	}
	return n;
}

static int uring_enable(struct proa__ring *r)
{
	struct uring *u = to_uring(r);
	int ret;

	if (u->enabled)
		return 0;
	if (u->setup_flags & IORING_SETUP_R_DISABLED) {
		/* io_uring_enable_rings() is declared by liburing 2.3 but not
		 * exported; this is all it does. */
		ret = io_uring_register(u->ring.ring_fd,
					IORING_REGISTER_ENABLE_RINGS, NULL, 0);
		if (ret < 0)
			return ret;
	}
	u->enabled = true;
	/* A registered ring fd saves an fdget per enter; it is per-thread,
	 * so it is registered here, on the thread that will enter. */
	if (proa__ring_feature(r, PROA_FEAT_REG_RING_FD) &&
	    io_uring_register_ring_fd(&u->ring) == 1) {
		u->enter_fd = (unsigned)u->ring.enter_ring_fd;
		u->enter_flags = IORING_ENTER_REGISTERED_RING;
	}
	return 0;
}

static const struct {
	unsigned flag;
	const char *name;
} setup_names[] = {
    {IORING_SETUP_SINGLE_ISSUER, "SINGLE_ISSUER"},
    {IORING_SETUP_DEFER_TASKRUN, "DEFER_TASKRUN"},
    {IORING_SETUP_COOP_TASKRUN, "COOP_TASKRUN"},
    {IORING_SETUP_TASKRUN_FLAG, "TASKRUN_FLAG"},
    {IORING_SETUP_SUBMIT_ALL, "SUBMIT_ALL"},
    {IORING_SETUP_R_DISABLED, "R_DISABLED"},
    {IORING_SETUP_CQSIZE, "CQSIZE"},
};

static int uring_describe(const struct proa__ring *r, char *buf, size_t len)
{
	const struct uring *u = to_curing(r);
	size_t used = 0;
	unsigned i;

	PROA__EMIT(buf, len, &used, "backend: io_uring\n");
	PROA__EMIT(buf, len, &used, "sq_entries: %u\ncq_entries: %u\n",
		   u->ring.sq.ring_entries, u->ring.cq.ring_entries);
	PROA__EMIT(buf, len, &used, "setup_flags:");
	for (i = 0; i < sizeof(setup_names) / sizeof(setup_names[0]); i++) {
		if (u->setup_flags & setup_names[i].flag)
			PROA__EMIT(buf, len, &used, " %s", setup_names[i].name);
	}
	PROA__EMIT(buf, len, &used, "\n");
	return used > INT_MAX ? INT_MAX : (int)used;
}

static void uring_exit(struct proa__ring *r)
{
	struct uring *u = to_uring(r);

	io_uring_queue_exit(&u->ring);
	free(u->hows);
	free(u);
}

/* ---- provided-buffer rings (liburing 2.3 has no io_uring_setup_buf_ring:
 * the ring memory is ours, page-aligned, registered with
 * IORING_REGISTER_PBUF_RING). ------------------------------------------- */

static int register_kring(struct uring *u, void *kring, unsigned entries,
			  uint16_t bgid)
{
	struct io_uring_buf_reg reg;

	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)kring;
	reg.ring_entries = entries;
	reg.bgid = bgid;
	return io_uring_register_buf_ring(&u->ring, &reg, 0);
}

static int uring_buf_ring_register(struct proa__ring *r,
				   struct proa_buf_ring *br)
{
	struct uring *u = to_uring(r);
	struct io_uring_buf_ring *kr;
	unsigned mask = (unsigned)io_uring_buf_ring_mask(br->nbufs), i;
	size_t len = br->nbufs * sizeof(struct io_uring_buf);
	int ret;

	len = (len + 4095) & ~(size_t)4095;
	kr = mmap(NULL, len, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (kr == MAP_FAILED)
		return -ENOMEM;
	io_uring_buf_ring_init(kr);
	ret = register_kring(u, kr, br->nbufs, br->bgid);
	if (ret < 0) {
		munmap(kr, len);
		return ret == -EINVAL ? -EOPNOTSUPP : ret;
	}
	for (i = 0; i < br->nbufs; i++) {
		io_uring_buf_ring_add(kr, br->mem + (size_t)i * br->bufsize,
				      (unsigned)br->bufsize, (unsigned short)i,
				      (int)mask, (int)i);
		br->in_ring[i] = 1;
	}
	io_uring_buf_ring_advance(kr, (int)br->nbufs);
	br->tail = (uint16_t)br->nbufs;
	br->avail = br->nbufs;
	br->kring = kr;
	br->kring_len = len;
	return 0;
}

static void uring_buf_ring_unregister(struct proa__ring *r,
				      struct proa_buf_ring *br)
{
	io_uring_unregister_buf_ring(&to_uring(r)->ring, br->bgid);
	munmap(br->kring, br->kring_len);
	br->kring = NULL;
}

static void uring_buf_ring_push(struct proa_buf_ring *br, unsigned id)
{
	io_uring_buf_ring_add(br->kring, br->mem + (size_t)id * br->bufsize,
			      (unsigned)br->bufsize, (unsigned short)id,
			      io_uring_buf_ring_mask(br->nbufs), 0);
	/* Release: the kernel reads the entry only after the new tail. */
	io_uring_buf_ring_advance(br->kring, 1);
}

/* ---- registered files and buffers (liburing 2.3's
 * io_uring_register_files_sparse() raises RLIMIT_NOFILE behind the
 * caller's back on EMFILE: the call is ours). --------------------------- */

static int register_files_sparse(struct uring *u, unsigned nr)
{
	struct io_uring_rsrc_register reg;
	int *fds;
	int ret;

	memset(&reg, 0, sizeof(reg));
	reg.nr = nr;
	reg.flags = IORING_RSRC_REGISTER_SPARSE;
	ret = io_uring_register(u->ring.ring_fd, IORING_REGISTER_FILES2, &reg,
				sizeof(reg));
	if (ret != -EINVAL)
		return ret < 0 ? ret : 0;
	/* Before 5.19 there is no sparse flag: a table of -1 is the same
	 * (IORING_REGISTER_FILES skips -1 entries since 5.5). */
	fds = malloc(nr * sizeof(*fds));
	if (!fds)
		return -ENOMEM;
	for (unsigned i = 0; i < nr; i++)
		fds[i] = -1;
	ret = io_uring_register_files(&u->ring, fds, nr);
	free(fds);
	return ret;
}

static int uring_files_init(struct proa__ring *r, unsigned nr)
{
	int ret = register_files_sparse(to_uring(r), nr);

	/* Refused outright (an old kernel): the table is emulated. */
	return ret == -EINVAL ? -EOPNOTSUPP : ret;
}

static int uring_files_set(struct proa__ring *r, unsigned slot, int fd)
{
	int ret =
	    io_uring_register_files_update(&to_uring(r)->ring, slot, &fd, 1);

	return ret < 0 ? ret : 0;
}

static int uring_bufs_register(struct proa__ring *r, const struct iovec *iov,
			       unsigned nr)
{
	int ret = io_uring_register_buffers(&to_uring(r)->ring, iov, nr);

	/* ENOMEM is also RLIMIT_MEMLOCK (pinned pages are charged to it
	 * without CAP_IPC_LOCK): say so once, the caller gets the error. */
	if (ret == -ENOMEM)
		proa__log(PROA_LOG_WARN,
			  "registering %u buffers: ENOMEM (out of memory, or "
			  "over RLIMIT_MEMLOCK)",
			  nr);
	return ret;
}

static void uring_bufs_unregister(struct proa__ring *r)
{
	io_uring_unregister_buffers(&to_uring(r)->ring);
}

static const struct proa__backend_ops uring_ops = {
    .name = "io_uring",
    .issue = uring_issue,
    .issue_cancel = uring_issue_cancel,
    .wait = uring_wait,
    .has_pending = uring_has_pending,
    .reap = uring_reap,
    .enable = uring_enable,
    .describe = uring_describe,
    .exit = uring_exit,
    .buf_ring_register = uring_buf_ring_register,
    .buf_ring_unregister = uring_buf_ring_unregister,
    .buf_ring_push = uring_buf_ring_push,
    .files_init = uring_files_init,
    .files_set = uring_files_set,
    .bufs_register = uring_bufs_register,
    .bufs_unregister = uring_bufs_unregister,
};

/* ---- set-up and the reasons it can fail --------------------------------- */

static long read_long_file(const char *path, long fallback)
{
	char buf[64];
	long v = fallback;
	FILE *f = fopen(path, "re");

	if (!f)
		return fallback;
	if (fgets(buf, sizeof(buf), f))
		v = strtol(buf, NULL, 10);
	fclose(f);
	return v;
}

static int seccomp_mode(void)
{
	char line[256];
	int mode = -1;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "Seccomp:", 8) == 0) {
			mode = (int)strtol(line + 8, NULL, 10);
			break;
		}
	}
	fclose(f);
	return mode;
}

/* Say in words why io_uring_setup() failed with @err. */
static void explain(int err, char *reason, size_t len)
{
	long disabled;

	if (!reason || len == 0)
		return;
	switch (-err) {
	case ENOSYS:
		snprintf(reason, len,
			 "io_uring_setup: ENOSYS: this kernel has no io_uring "
			 "(built without CONFIG_IO_URING, or older than 5.1), "
			 "or a seccomp filter answers ENOSYS for it");
		return;
	case EPERM:
		disabled =
		    read_long_file("/proc/sys/kernel/io_uring_disabled", 0);
		if (disabled == 2) {
			snprintf(reason, len,
				 "io_uring_setup: EPERM: io_uring is disabled "
				 "for every process by the sysctl "
				 "kernel.io_uring_disabled=2");
		} else if (disabled == 1) {
			snprintf(reason, len,
				 "io_uring_setup: EPERM: the sysctl "
				 "kernel.io_uring_disabled=1 allows io_uring "
				 "only to members of kernel.io_uring_group "
				 "(gid %ld), and this process is not one",
				 read_long_file(
				     "/proc/sys/kernel/io_uring_group", -1));
		} else if (seccomp_mode() == 2) {
			snprintf(reason, len,
				 "io_uring_setup: EPERM: blocked by this "
				 "process's seccomp filter (Docker 25+ and "
				 "containerd block io_uring in their default "
				 "profile)");
		} else {
			snprintf(reason, len,
				 "io_uring_setup: EPERM: not permitted (a "
				 "security module or a seccomp filter of a "
				 "parent?)");
		}
		return;
	case EINVAL:
		snprintf(reason, len,
			 "io_uring_setup: EINVAL: the kernel rejected every "
			 "set-up tried; proa needs Linux 5.11 or newer");
		return;
	case ENOMEM:
		snprintf(reason, len,
			 "io_uring_setup: ENOMEM: out of memory for the ring, "
			 "or RLIMIT_MEMLOCK too low (kernels before 5.12 "
			 "charge rings to it)");
		return;
	case EMFILE:
	case ENFILE:
		snprintf(reason, len,
			 "io_uring_setup: %s: out of file descriptors",
			 err == -EMFILE ? "EMFILE" : "ENFILE");
		return;
	default:
		snprintf(reason, len, "io_uring_setup: %s (%d)",
			 proa_strerror(err), err);
	}
}

static int try_setup(struct uring *u, unsigned entries, unsigned cq_entries,
		     unsigned flags)
{
	struct io_uring_params p;
	int ret;

	if (proa__ring_faults.setup_errno)
		return -proa__ring_faults.setup_errno;
	memset(&p, 0, sizeof(p));
	p.flags = flags | IORING_SETUP_CQSIZE;
	p.cq_entries = cq_entries;
	ret = io_uring_queue_init_params(entries, &u->ring, &p);
	if (ret == 0)
		u->setup_flags = p.flags;
	return ret;
}

static const unsigned mode_flags[] = {
    [PROA_RING_DEFER_TASKRUN] = IORING_SETUP_SINGLE_ISSUER |
				IORING_SETUP_DEFER_TASKRUN |
				IORING_SETUP_TASKRUN_FLAG,
    [PROA_RING_COOP_TASKRUN] =
	IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
    [PROA_RING_PLAIN] = 0,
};

static int setup(struct uring *u, const struct proa__ring_params *p)
{
	/* SUBMIT_ALL is 5.18, R_DISABLED 5.10: drop them on EINVAL too. */
	static const unsigned extras[] = {
	    IORING_SETUP_SUBMIT_ALL | IORING_SETUP_R_DISABLED,
	    IORING_SETUP_R_DISABLED,
	};
	enum proa_ring_mode first = p->mode, last = p->mode, m;
	unsigned i;
	int ret = -EINVAL;

	if (p->mode == PROA_RING_AUTO) {
		first = PROA_RING_DEFER_TASKRUN;
		last = PROA_RING_PLAIN;
	}
	for (m = first; m <= last; m++) {
		for (i = 0; i < sizeof(extras) / sizeof(extras[0]); i++) {
			ret = try_setup(u, p->sq_entries, p->cq_entries,
					mode_flags[m] | extras[i]);
			if (ret != -EINVAL)
				return ret;
		}
	}
	return ret;
}

static const struct {
	enum proa_feature feat;
	int opcode;
} op_features[] = {
    {PROA_FEAT_OP_NOP, IORING_OP_NOP},
    {PROA_FEAT_OP_TIMEOUT, IORING_OP_TIMEOUT},
    {PROA_FEAT_OP_READ, IORING_OP_READ},
    {PROA_FEAT_OP_WRITE, IORING_OP_WRITE},
    {PROA_FEAT_OP_READV, IORING_OP_READV},
    {PROA_FEAT_OP_WRITEV, IORING_OP_WRITEV},
    {PROA_FEAT_OP_FSYNC, IORING_OP_FSYNC},
    {PROA_FEAT_OP_OPENAT, IORING_OP_OPENAT},
    {PROA_FEAT_OP_CLOSE, IORING_OP_CLOSE},
    {PROA_FEAT_OP_STATX, IORING_OP_STATX},
    {PROA_FEAT_OP_POLL, IORING_OP_POLL_ADD},
    {PROA_FEAT_OP_ASYNC_CANCEL, IORING_OP_ASYNC_CANCEL},
    {PROA_FEAT_MSG_RING, IORING_OP_MSG_RING},
    {PROA_FEAT_OP_ACCEPT, IORING_OP_ACCEPT},
    {PROA_FEAT_OP_CONNECT, IORING_OP_CONNECT},
    {PROA_FEAT_OP_RECV, IORING_OP_RECV},
    {PROA_FEAT_OP_SEND, IORING_OP_SEND},
    {PROA_FEAT_OP_RECVMSG, IORING_OP_RECVMSG},
    {PROA_FEAT_OP_SENDMSG, IORING_OP_SENDMSG},
    {PROA_FEAT_OP_SHUTDOWN, IORING_OP_SHUTDOWN},
    {PROA_FEAT_OP_SPLICE, IORING_OP_SPLICE},
    {PROA_FEAT_OP_WAITID, PROA__IORING_OP_WAITID},
    {PROA_FEAT_OP_OPENAT2, IORING_OP_OPENAT2},
    {PROA_FEAT_OP_FALLOCATE, IORING_OP_FALLOCATE},
    {PROA_FEAT_OP_FTRUNCATE, PROA__IORING_OP_FTRUNCATE},
    {PROA_FEAT_OP_UNLINKAT, IORING_OP_UNLINKAT},
    {PROA_FEAT_OP_RENAMEAT, IORING_OP_RENAMEAT},
    {PROA_FEAT_OP_MKDIRAT, IORING_OP_MKDIRAT},
    {PROA_FEAT_OP_SYMLINKAT, IORING_OP_SYMLINKAT},
    {PROA_FEAT_OP_LINKAT, IORING_OP_LINKAT},
    {PROA_FEAT_OP_SENDMSG_ZC, IORING_OP_SENDMSG_ZC},
};

/* Whether the running kernel is @maj.@min or newer.  Flags within an
 * opcode (multishot accept and recv) have no probe bit. */
static bool kernel_at_least(int maj, int min)
{
	struct utsname un;
	int a = 0, b = 0;

	if (uname(&un) < 0 || sscanf(un.release, "%d.%d", &a, &b) != 2)
		return false;
	return a > maj || (a == maj && b >= min);
}

/* Whether the kernel takes a provided-buffer ring: register one of a
 * single entry and take it back. */
static bool probe_buf_ring(struct uring *u)
{
	void *kr = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	bool ok;

	if (kr == MAP_FAILED)
		return false;
	ok = register_kring(u, kr, 1, 0) == 0;
	if (ok)
		io_uring_unregister_buf_ring(&u->ring, 0);
	munmap(kr, 4096);
	return ok;
}

/* Whether the kernel takes a registered-file table: one slot, taken
 * back. */
static bool probe_files(struct uring *u)
{
	if (register_files_sparse(u, 1) < 0)
		return false;
	io_uring_unregister_files(&u->ring);
	return true;
}

static void probe_features(struct uring *u)
{
	struct proa__ring *r = &u->base;
	struct io_uring_probe *probe;
	unsigned f = u->setup_flags;
	unsigned i;

	proa__ring_set_feature(r, PROA_FEAT_SINGLE_ISSUER,
			       f & IORING_SETUP_SINGLE_ISSUER);
	proa__ring_set_feature(r, PROA_FEAT_DEFER_TASKRUN,
			       f & IORING_SETUP_DEFER_TASKRUN);
	proa__ring_set_feature(r, PROA_FEAT_COOP_TASKRUN,
			       f & IORING_SETUP_COOP_TASKRUN);
	proa__ring_set_feature(r, PROA_FEAT_TASKRUN_FLAG,
			       f & IORING_SETUP_TASKRUN_FLAG);
	proa__ring_set_feature(r, PROA_FEAT_SUBMIT_ALL,
			       f & IORING_SETUP_SUBMIT_ALL);
	proa__ring_set_feature(r, PROA_FEAT_NODROP,
			       u->ring.features & IORING_FEAT_NODROP);
	proa__ring_set_feature(r, PROA_FEAT_EXT_ARG,
			       u->ring.features & IORING_FEAT_EXT_ARG);
	/* Registered ring fds are per thread, so the real registration
	 * waits for the first run; this only asks whether the kernel can. */
	if (io_uring_register_ring_fd(&u->ring) == 1) {
		proa__ring_set_feature(r, PROA_FEAT_REG_RING_FD, true);
		io_uring_unregister_ring_fd(&u->ring);
	}
	probe = io_uring_get_probe_ring(&u->ring);
	if (!probe)
		return;
	for (i = 0; i < sizeof(op_features) / sizeof(op_features[0]); i++)
		proa__ring_set_probed(
		    r, op_features[i].feat,
		    io_uring_opcode_supported(probe, op_features[i].opcode));
	proa__ring_set_probed(r, PROA_FEAT_ACCEPT_MULTISHOT,
			      proa__ring_feature(r, PROA_FEAT_OP_ACCEPT) &&
				  kernel_at_least(5, 19));
	proa__ring_set_probed(r, PROA_FEAT_BUF_RING, probe_buf_ring(u));
	proa__ring_set_probed(r, PROA_FEAT_REG_FILES, probe_files(u));
	proa__ring_set_probed(
	    r, PROA_FEAT_REG_BUFFERS,
	    io_uring_opcode_supported(probe, IORING_OP_READ_FIXED) &&
		io_uring_opcode_supported(probe, IORING_OP_WRITE_FIXED));
	io_uring_free_probe(probe);
	proa__ring_set_probed(r, PROA_FEAT_RECV_MULTISHOT,
			      proa__ring_feature(r, PROA_FEAT_BUF_RING) &&
				  proa__ring_feature(r, PROA_FEAT_OP_RECV) &&
				  kernel_at_least(6, 0));
	/* A 6.1 kernel refuses the flag (-EINVAL on every send): only
	 * ask for the report where the kernel gives it. */
	proa__ring_set_probed(r, PROA_FEAT_SEND_ZC_REPORT,
			      proa__ring_feature(r, PROA_FEAT_OP_SENDMSG_ZC) &&
				  kernel_at_least(6, 2));
	u->zc_report = proa__ring_feature(r, PROA_FEAT_SEND_ZC_REPORT);
}

int proa__uring_new(struct proa__ring **out, const struct proa__ring_params *p,
		    char *reason, size_t reason_len)
{
	struct uring *u;
	int ret;

	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	ret = setup(u, p);
	if (ret < 0) {
		explain(ret, reason, reason_len);
		free(u);
		return ret;
	}
	u->base.ops = &uring_ops;
	u->enter_fd = (unsigned)u->ring.ring_fd;
	probe_features(u);
	if (proa__ring_feature(&u->base, PROA_FEAT_OP_OPENAT2)) {
		u->hows = calloc(u->ring.sq.ring_entries, sizeof(*u->hows));
		/* Without them openat2 runs on the file lane. */
		if (!u->hows)
			u->base.features &=
			    ~(UINT64_C(1) << PROA_FEAT_OP_OPENAT2);
	}
	if (!proa__ring_feature(&u->base, PROA_FEAT_EXT_ARG) ||
	    !proa__ring_feature(&u->base, PROA_FEAT_NODROP)) {
		if (reason && reason_len)
			snprintf(reason, reason_len,
				 "io_uring is too old: proa needs "
				 "IORING_FEAT_EXT_ARG and IORING_FEAT_NODROP "
				 "(Linux 5.11)");
		io_uring_queue_exit(&u->ring);
		free(u->hows);
		free(u);
		return -EINVAL;
	}
	*out = &u->base;
	return 0;
}

int proa__uring_probe(char *reason, size_t len)
{
	struct proa__ring_params p = {
	    .sq_entries = 2,
	    .cq_entries = 4,
	    .mode = PROA_RING_AUTO,
	};
	struct proa__ring *r;
	int ret;

	ret = proa__uring_new(&r, &p, reason, len);
	if (ret < 0)
		return ret;
	r->ops->exit(r);
	if (reason && len)
		snprintf(reason, len, "io_uring is available");
	return 0;
}
