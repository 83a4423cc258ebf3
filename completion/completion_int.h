/* SPDX-License-Identifier: MIT */
/*
 * completion/completion_int.h - private to the library: intrusive lists,
 * atomics on fields of public structs, the scheduler interface through which
 * futures reach their loop, operation kinds, and logging.
 *
 * completion/ knows no kernel interface and nothing above it: a future finds
 * its loop's call_soon through struct proa__sched, which the loop embeds as
 * its first member and fills in (proactor/loop.c).
 */
#ifndef PROA_COMPLETION_INT_H
#define PROA_COMPLETION_INT_H

#include <assert.h>
#include <stdarg.h>

#include "proa/base.h"
#include "proa/errno.h"
#include "proa/future.h"
#include "proa/loop.h"
#include "proa/op.h"

#if defined(__GNUC__)
#define proa__likely(x) __builtin_expect(!!(x), 1)
#define proa__unlikely(x) __builtin_expect(!!(x), 0)
#else
#define proa__likely(x) (x)
#define proa__unlikely(x) (x)
#endif

/* ---- intrusive circular lists ----------------------------------------
 * proa_list_init(), _empty(), _add_tail() and _del() are public
 * (proa/base.h), so that programs on the public headers need no copies.
 */

/* Move every node of @from to the tail of @to; @from becomes empty. */
static inline void proa__list_splice_tail(struct proa_link *from,
					  struct proa_link *to)
{
	if (proa_list_empty(from))
		return;
	from->next->prev = to->prev;
	to->prev->next = from->next;
	from->prev->next = to;
	to->prev = from->prev;
	proa_list_init(from);
}

/* ---- atomics on fields of public structs ------------------------------
 * Public structs use plain integer and pointer types so that the headers
 * parse as C++ too; these wrappers give those fields defined atomic access
 * with the GCC/Clang builtins.  Internal structs use <stdatomic.h>.
 */
#define proa__atomic_load(p, mo) __atomic_load_n((p), (mo))
#define proa__atomic_store(p, v, mo) __atomic_store_n((p), (v), (mo))
#define PROA__RELAXED __ATOMIC_RELAXED
#define PROA__ACQUIRE __ATOMIC_ACQUIRE
#define PROA__RELEASE __ATOMIC_RELEASE
#define PROA__ACQ_REL __ATOMIC_ACQ_REL
#define PROA__SEQ_CST __ATOMIC_SEQ_CST

/* @p is written: the const suggestion does not see through the builtin. */
static inline bool proa__atomic_cas_u32(uint32_t *p, /* NOLINT */
					uint32_t expect, uint32_t desired)
{
	return __atomic_compare_exchange_n(p, &expect, desired, false,
					   __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

static inline bool proa__atomic_cas_u16(uint16_t *p, /* NOLINT */
					uint16_t expect, uint16_t desired)
{
	return __atomic_compare_exchange_n(p, &expect, desired, false,
					   __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

/* ---- handle states and flags (struct proa_handle.priv) ---------------- */

enum {
	PROA__H_IDLE = 0,
	PROA__H_READY,	/* on the loop's ready list */
	PROA__H_POSTED, /* on the cross-thread queue */
	PROA__H_ARMED,	/* a timer in the timer heap */
};

#define PROA__HF_TIMER (1U << 0)  /* embedded in a struct proa_timer */
#define PROA__HF_ALLOC (1U << 1)  /* allocated by the loop; freed after run */
#define PROA__HF_FUTURE (1U << 2) /* a future's callback runner */

/* ---- the scheduler interface: what a future needs from its loop -------- */

struct proa__sched;

struct proa__sched_ops {
	/* Append an idle handle to the ready list.  Loop thread. */
	void (*call_soon)(struct proa__sched *s, struct proa_handle *h);
	/* Post @n to the cross-thread queue.  Any thread.  0 or PROA_ECLOSED.
	 */
	int (*post)(struct proa__sched *s, struct proa__mpsc_node *n);
	/* Arm a one-shot timer.  Loop thread. */
	int (*timer_start)(struct proa__sched *s, struct proa_timer *t,
			   uint64_t delay_ns, proa_callback_fn fn, void *arg);
	/* Disarm a timer; 0 or -ENOENT.  Loop thread. */
	int (*timer_cancel)(struct proa_timer *t);
	/* Request cancellation of an operation.  Loop thread. */
	int (*op_cancel)(struct proa_op *op);
	/* Abort with a message if not on the loop thread (debug mode). */
	void (*check_thread)(struct proa__sched *s, const char *func);
};

struct proa__sched {
	const struct proa__sched_ops *ops;
	bool debug;
	bool closed; /* proa_loop_close() is done: nothing runs any more */
};

static inline struct proa__sched *proa__sched_of(struct proa_loop *loop)
{
	return (struct proa__sched *)(void *)loop;
}

/* The wrong-thread check of every Thread: loop entry point
 * (docs/architecture.md rule 2).
 * Helpers shared by several entry points use the _AS form with the public
 * function's name, so that the message names what the caller called. */
#ifdef PROA_DEBUG_CHECKS
#define PROA__CHECK_THREAD_AS(sched, func)                                     \
	do {                                                                   \
		struct proa__sched *s__ = (sched);                             \
		if (proa__unlikely(s__->debug))                                \
			s__->ops->check_thread(s__, (func));                   \
	} while (0)
#else
#define PROA__CHECK_THREAD_AS(sched, func) ((void)(sched), (void)(func))
#endif
#define PROA__CHECK_THREAD(sched) PROA__CHECK_THREAD_AS(sched, __func__)

/* ---- operations --------------------------------------------------------- */

enum proa__op_kind {
	PROA__OP_NONE = 0,
	PROA__OP_NOP,
	PROA__OP_TIMEOUT,
	PROA__OP_READ,
	PROA__OP_WRITE,
	PROA__OP_READV,
	PROA__OP_WRITEV,
	PROA__OP_FSYNC,
	PROA__OP_OPENAT,
	PROA__OP_CLOSE,
	PROA__OP_STATX,
	PROA__OP_POLL,
	PROA__OP_ACCEPT,
	PROA__OP_CONNECT,
	PROA__OP_RECV,
	PROA__OP_RECV_SELECT,
	PROA__OP_SEND,
	PROA__OP_SENDMSG,
	PROA__OP_RECVMSG,
	PROA__OP_SHUTDOWN,
	PROA__OP_RECVMSG_SELECT,
	PROA__OP_SPLICE,
	PROA__OP_WAITID,
	PROA__OP_OPENAT2,
	PROA__OP_FALLOCATE,
	PROA__OP_FTRUNCATE,
	PROA__OP_UNLINKAT,
	PROA__OP_RENAMEAT,
	PROA__OP_MKDIRAT,
	PROA__OP_SYMLINKAT,
	PROA__OP_LINKAT,
	PROA__OP_GETDENTS,	  /* no opcode: always the executor */
	PROA__OP_COPY_FILE_RANGE, /* no opcode: always the executor */
	PROA__OP_SENDMSG_ZC,
};

/* op->priv.iflags */
#define PROA__OPF_INTERNAL (1U << 0)	   /* the loop's own; not user work */
#define PROA__OPF_CANCEL_REQ (1U << 1)	   /* proa_op_cancel() was called */
#define PROA__OPF_CANCEL_BACKLOG (1U << 2) /* cancel SQE not written yet */
#define PROA__OPF_MULTISHOT (1U << 3)
#define PROA__OPF_LOCAL_DONE (1U << 4) /* on the done list: no backend CQE */
#define PROA__OPF_AWAY (1U << 5)       /* runs on the executor (ring_int.h) */
#define PROA__OPF_POLL_FIRST (1U << 6) /* recv: wait for data first */
/* priv.fd is a slot of the kernel's registered-file table */
#define PROA__OPF_FIXED_FILE (1U << 7)
/* the op uses a slot of the loop's file table (kernel or emulated) */
#define PROA__OPF_SLOT (1U << 8)
/* read/write into a registered buffer, its index in priv.extra */
#define PROA__OPF_FIXED_BUF (1U << 9)

const char *proa__op_kind_name(unsigned kind);

/* ---- logging --------------------------------------------------------------
 */

/* Append printf output at @*used into @buf[@len], truncating, while @*used
 * counts the whole text's length (like snprintf), so a NULL or short
 * buffer still measures it.  Return: 0, or -EINVAL on a format error. */
int proa__appendf(char *buf, size_t len, size_t *used, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* proa__appendf() for the describe functions, which build a report line by
 * line: a format error makes the calling function return -EINVAL. */
#define PROA__EMIT(buf, len, used, ...)                                        \
	do {                                                                   \
		if (proa__appendf((buf), (len), (used), __VA_ARGS__) < 0)      \
			return -EINVAL;                                        \
	} while (0)

void proa__log(enum proa_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Name a code address for a log line ("fn+0x12" or "0x55d0..."). */
void proa__describe_addr(const void *addr, char *buf, size_t len);

/* ---- futures: used by the loop ---------------------------------------- */

/* The mpsc run function of a future's threadsafe result (loop thread). */
void proa__future_ts_run(struct proa__mpsc_node *node);

/* Resolve @fut if it is still pending (combinators).  Loop thread. */
void proa__future_resolve(struct proa_future *fut, int32_t res, void *value);
/* Whether @fut may be handed to a new piece of work: pending, and held by
 * none already (a canceller: a bound op, a combinator's output, a pool
 * job), which would go on pointing at it.  Every call that takes a future
 * asks this (-EBUSY when not).  Loop thread. */
static inline bool proa__future_free(const struct proa_future *fut)
{
	return fut->priv.state == PROA_FUTURE_PENDING && !fut->priv.canceller;
}

/* proa_future_add_done_callback() for a combinator waiting on an input:
 * proa_future_fini() refuses to release @fut while it waits.  Loop
 * thread. */
int proa__future_add_waiter(struct proa_future *fut, proa_future_fn fn,
			    void *arg);

/*
 * Whether an options struct's reserved tail is all zero.  A caller built
 * against a later proa may have set a field that this one does not know
 * (it sits where this one has reserved room): refused with -EINVAL rather
 * than ignored, as the kernel treats unknown flags.
 */
#define PROA__RESERVED_ZERO(opt)                                               \
	proa__all_zero((opt)->reserved, sizeof((opt)->reserved))

static inline bool proa__all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

#endif /* PROA_COMPLETION_INT_H */
