/* SPDX-License-Identifier: MIT */
/*
 * ring/ring_int.h - private to the library: the ring, as the loop sees it.
 *
 * struct proa__ring is opaque outside ring/ so that only ring/ includes
 * liburing.  It is the one internal interface that both backends implement
 * (io_uring in uring.c, readiness in epoll.c): ops go
 * in with proa__ring_submit(), completions come out of proa__ring_reap() as
 * plain (op, res, flags) records, and the loop dispatches them.
 *
 * Every function here is called on the loop thread only.
 */
#ifndef PROA_RING_INT_H
#define PROA_RING_INT_H

#include <sys/socket.h>
#include <sys/types.h>

#include "completion/completion_int.h"

struct proa__ring;
struct iovec;

/* One completion, copied out of the CQ so the CQ head can move on before
 * callbacks run (and may submit). */
struct proa__cqe {
	struct proa_op *op;
	int32_t res;
	uint32_t flags; /* PROA_OP_F_MORE */
};

struct proa__ring_params {
	uint32_t sq_entries;
	uint32_t cq_entries;
	enum proa_ring_mode mode; /* io_uring only */
	enum proa_backend backend;
};

struct proa__ring_stats {
	uint64_t submissions;
	uint64_t completions;
	uint64_t enters;
	uint64_t sq_full;
	uint64_t cq_overflows;
	uint64_t cq_dropped;
};

/* Create a ring on @p->backend; AUTO tries io_uring and falls back to
 * epoll when io_uring is refused (EPERM, ENOSYS, EINVAL), saying why in a
 * log line and in proa__ring_describe().  On failure @reason says why in
 * words. */
int proa__ring_new(struct proa__ring **out, const struct proa__ring_params *p,
		   char *reason, size_t reason_len);
void proa__ring_free(struct proa__ring *r);
/* In the child of fork(): drop the mapping and descriptor of a ring the
 * parent still uses, without a system call that would act on it. */
void proa__ring_forget(struct proa__ring *r);

/* Bind the ring to the calling thread (it was created disabled). */
int proa__ring_enable(struct proa__ring *r);

/* Hand an op with kind and arguments filled in to the kernel, or queue it
 * until the SQ has room.  0, or -EOPNOTSUPP if the kernel lacks the op. */
int proa__ring_submit(struct proa__ring *r, struct proa_op *op);

/* Whether the backend wants user file op @op (kind and fd set) to run on
 * the executor instead: a regular file on the epoll backend. */
bool proa__ring_offload(struct proa__ring *r, const struct proa_op *op);

/*
 * The executor: threads for the work a backend cannot do without blocking
 * (file ops this kernel's io_uring lacks or refused with -EOPNOTSUPP, and
 * regular files on the epoll backend).  The ring does not know whose
 * threads: the loop hands it an executor when it is made, as libxev's
 * epoll backend takes its thread pool; pool/fallback.c registers the
 * pool's file lane.
 *
 * The op's life stays the ring's: proa__exec_submit() makes it INFLIGHT
 * and puts it on the ring's "away" list (it counts as a user op in
 * flight, and proa__ring_for_each() reaches it), the executor runs it and
 * hands the result back with proa__exec_complete(), which moves it to the
 * ring's done list; the next reap returns it like any completion, and
 * proa__ring_complete() makes it IDLE before its callback.
 *
 * submit: loop thread.  Start @op (kind and arguments set, op->priv.loop
 *         its loop); it is already INFLIGHT and away.  0, or -errno if
 *         nothing was started (the ring then takes the op back and the
 *         submitting call fails).  Never completes the op inside the call.
 * cancel: loop thread.  Ask that away @op not run.  Either way it comes
 *         home once more, through proa__exec_complete(): with -ECANCELED
 *         if it was stopped, with its result if it had started.  Never
 *         completes it inside the call.
 * While an op is away, its priv.u.be.exec belongs to the executor.
 */
struct proa__executor {
	int (*submit)(struct proa__ring *r, struct proa_op *op);
	void (*cancel)(struct proa__ring *r, struct proa_op *op);
};

/* Give @r its executor (NULL: none; file ops the backend cannot do then
 * fail with -EOPNOTSUPP).  Once, before the first op. */
void proa__ring_set_executor(struct proa__ring *r,
			     const struct proa__executor *x);

/* A user's file call (read, write, readv, writev, fsync, openat, close,
 * statx): a kind the executor can run in the backend's place. */
bool proa__op_is_file(const struct proa_op *op);

/* Send @op (idle, kind and arguments set) to the executor.  0, or
 * -EOPNOTSUPP without one, or the executor's error. */
int proa__exec_submit(struct proa__ring *r, struct proa_op *op);

/* The executor's result for away op @op: it joins the done list, and its
 * callback runs after the next reap.  Loop thread. */
void proa__exec_complete(struct proa__ring *r, struct proa_op *op, int32_t res);

/* Request cancellation; see proa_op_cancel() for the return values.  An
 * op away on the executor is cancelled there; an op whose result is in
 * (waiting on the done list) is left to complete with it. */
int proa__ring_cancel(struct proa__ring *r, struct proa_op *op);

/* Submit what is queued and wait up to @timeout_ns for a completion
 * (< 0: no limit; 0: do not wait).  EINTR, ETIME, EBUSY and EAGAIN are
 * handled inside; a negative return is a ring failure. */
int proa__ring_wait(struct proa__ring *r, int64_t timeout_ns);

/* Whether completions are waiting to be reaped (so the loop must not
 * block). */
bool proa__ring_has_pending(struct proa__ring *r);

/* Copy up to @max completions to @out; 0 when none are left.  A file op
 * the kernel refused with -EOPNOTSUPP is not returned: it goes on to the
 * executor, unless it was cancelled or there is none. */
unsigned proa__ring_reap(struct proa__ring *r, struct proa__cqe *out,
			 unsigned max);

/* Before an op's callback runs: account for the completion; on the final
 * one the op becomes IDLE. */
void proa__ring_complete(struct proa__ring *r, struct proa_op *op,
			 uint32_t flags);

/* User ops queued, in flight or away (internal ops not counted). */
unsigned proa__ring_nr_user(const struct proa__ring *r);

/* Call @fn on every op queued, in flight or away, internal ones
 * included. */
void proa__ring_for_each(struct proa__ring *r,
			 void (*fn)(struct proa_op *op, void *arg), void *arg);

bool proa__ring_feature(const struct proa__ring *r, enum proa_feature f);
const char *proa__ring_backend(const struct proa__ring *r);
int proa__ring_describe(const struct proa__ring *r, char *buf, size_t len);
void proa__ring_get_stats(const struct proa__ring *r,
			  struct proa__ring_stats *out);

/* The read, write, readv or writev that user op @op (kind, fd, addr, len,
 * off set) asks for, made at once with the plain system call, for the
 * backends that do not give it to io_uring: epoll (on a pollable fd once
 * it is ready) and the pool's file lane.  Offset -1 (UINT64_MAX) means the
 * file position (read/write); any other offset on a file that cannot seek
 * (ESPIPE: pipes, sockets, ttys) is ignored, as io_uring ignores it on a
 * stream.  Return: like read(2), the byte count or -1 with errno set.
 * Any thread. */
ssize_t proa__file_rw(const struct proa_op *op);

/*
 * A buffer of proa_op_recvmsg_select(), on either backend: this header,
 * then msg_namelen bytes of room for the source address, msg_controllen
 * for ancillary data, then the payload.  The header is the kernel's
 * struct io_uring_recvmsg_out (uring.c asserts that they match); the epoll
 * backend writes the same layout, and proa_recvmsg_parse() (ring.c) reads
 * it for both.
 */
struct proa__recvmsg_out {
	uint32_t namelen;    /* the address's true length */
	uint32_t controllen; /* ancillary bytes written */
	uint32_t payloadlen; /* the datagram's true length */
	uint32_t flags;	     /* msg_flags: MSG_TRUNC, MSG_CTRUNC */
};

/* Bytes before the payload in a buffer of a recvmsg_select made with
 * @msg: the header and the name and control room. */
static inline size_t proa__recvmsg_hdr_len(const struct msghdr *msg)
{
	return sizeof(struct proa__recvmsg_out) + msg->msg_namelen +
	       msg->msg_controllen;
}

/* CLOCK_MONOTONIC in nanoseconds: the one clock of the library (timers,
 * the epoll backend's timeouts, the pool's timings).  Any thread. */
uint64_t proa__now(void);

/* proa_io_uring_probe(), the reason-in-words part. */
int proa__ring_probe(char *reason, size_t len);

/*
 * Provided-buffer rings (proa/op.h).  The public functions live in
 * proactor/bufring.c; the backend owns the memory the kernel reads.
 */
struct proa_buf_ring {
	struct proa_link link; /* on the ring's list */
	struct proa__ring *ring;
	void *owner; /* the struct proa_loop, for thread checks */
	void *kring; /* the backend's ring memory */
	size_t kring_len;
	unsigned char *mem; /* nbufs * bufsize */
	size_t bufsize;
	unsigned nbufs;
	unsigned avail;	  /* buffers the kernel may hand out */
	uint16_t bgid;	  /* the kernel's buffer group id */
	uint16_t tail;	  /* our copy of the ring's tail */
	uint8_t *in_ring; /* per buffer: 1 while the kernel may use it */
};

/* Allocate and register @br->nbufs buffers (fields nbufs, bufsize set);
 * on success every buffer is in the ring. */
int proa__buf_ring_register(struct proa__ring *r, struct proa_buf_ring *br);
/* Unregister and free what register allocated; -EBUSY while an op that
 * selects from it is queued or in flight. */
int proa__buf_ring_unregister(struct proa_buf_ring *br);
/* Give buffer @id back to the kernel (the caller checked it). */
void proa__buf_ring_push(struct proa_buf_ring *br, unsigned id);
/* Free every ring still registered (loop teardown). */
void proa__buf_rings_free_all(struct proa__ring *r);
static inline struct proa__ring *
proa__buf_ring_owner(const struct proa_buf_ring *br)
{
	return br->ring;
}

/*
 * Registered files and buffers (proa/op.h, proa/loop.h).  The public calls
 * live in proactor/; ring.c keeps the table and asks the backend.  Loop
 * thread, all of them.
 */

/* Put a reference to @fd's open file in the lowest free slot.  The slot
 * number, or -EBADF (@fd not open), -ENOSPC (table full), -ENOMEM,
 * -EMFILE, or the kernel's error. */
int proa__ring_file_add(struct proa__ring *r, int fd);
/* Empty @slot.  0; -EBADF: not a slot in use; -EBUSY: an op on it is
 * queued or in flight. */
int proa__ring_file_del(struct proa__ring *r, unsigned slot);
/* Set @op's fd for @slot: the slot itself with PROA__OPF_FIXED_FILE for
 * the kernel's table, the table's descriptor when emulated; either way
 * PROA__OPF_SLOT.  0, or -EBADF for a slot not in use. */
int proa__ring_file_use(struct proa__ring *r, struct proa_op *op,
			unsigned slot);
/* Register @nr buffers (copied iovecs).  0; -EBUSY: buffers already
 * registered; -EINVAL: bad iovecs; -ENOMEM (also RLIMIT_MEMLOCK), or the
 * kernel's error. */
int proa__ring_bufs_add(struct proa__ring *r, const struct iovec *iov,
			unsigned nr);
/* Unregister them.  0; -ENXIO: none; -EBUSY: a fixed-buffer op is queued
 * or in flight. */
int proa__ring_bufs_del(struct proa__ring *r);
/* Whether [@buf, @buf+@len) lies inside registered buffer @index. */
bool proa__ring_buf_fits(const struct proa__ring *r, unsigned index,
			 const void *buf, size_t len);
/* Whether registered buffers are the kernel's (read/write_fixed become
 * READ_FIXED/WRITE_FIXED). */
bool proa__ring_bufs_kernel(const struct proa__ring *r);

/*
 * Fault injection for tests (docs/reliability.md P1-P5).  liburing makes raw
 * system calls, so LD_PRELOAD cannot reach them; tests set these before
 * creating loops.  Not thread-safe; never set in production.
 */
struct proa__ring_faults {
	int setup_errno;	    /* io_uring_setup fails with it */
	int enter_errno;	    /* io_uring_enter fails with it ... */
	unsigned enter_fail_count;  /* ... this many times */
	uint64_t get_sqe_fail_mask; /* bit i: the i-th SQE request fails */
	unsigned get_sqe_calls;
	uint64_t hide_features; /* bit f: the probe says opcode f is absent */
	/* bit k: a backend completion of a user op of kind k (enum
	 * proa__op_kind) says -EOPNOTSUPP, as a kernel that cannot do the
	 * call on that file would */
	uint64_t refuse_kinds;
};
extern struct proa__ring_faults proa__ring_faults;

#endif /* PROA_RING_INT_H */
