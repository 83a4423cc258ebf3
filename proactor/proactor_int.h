/* SPDX-License-Identifier: MIT */
/*
 * proactor/proactor_int.h - private to the library: struct proa_loop and the
 * functions its files share (loop.c, timer.c, threadsafe.c, signal.c,
 * ops.c, debug.c).
 *
 * Threads: everything in struct proa_loop belongs to the loop thread except
 * the fields of @q marked "any thread", @stop, @refs, @unref_warned and
 * @wakeups_sent, which are atomics for the _threadsafe entry points.
 */
#ifndef PROA_PROACTOR_INT_H
#define PROA_PROACTOR_INT_H

#include <pthread.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <sys/signalfd.h>
#include <sys/types.h>

#include "completion/completion_int.h"
#include "ring/ring_int.h"

/* q.sleep: the loop's side of the lost-wake-up handshake (threadsafe.c). */
enum {
	PROA__AWAKE = 0,
	PROA__SLEEPING, /* about to block, or blocked, in the ring */
	PROA__WOKEN,	/* a producer claimed the wake-up of this sleep */
};

#define PROA__CACHELINE 64

/* The body of a spin-wait: tells the CPU (and a hypervisor) that this
 * thread only waits, so it yields the core's resources to its sibling. */
static inline void proa__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/*
 * The cross-thread queue: Vyukov's intrusive MPSC queue.  Producers swap
 * themselves in at @prod (one atomic exchange) and then link the previous
 * node to them; the loop takes nodes from @cons.
 */
struct proa__mpsc {
	/* any thread: every producer writes this line */
	alignas(PROA__CACHELINE) _Atomic(struct proa__mpsc_node *) prod;
	/* any thread, read by every producer, written rarely (the loop's
	 * sleeps, close, the slow paths): a line of its own, so producers
	 * share it instead of pulling it away from each other.
	 * @gate: (counted producers inside << 2) | PROA__GATE_SHUT |
	 * PROA__GATE_CLOSED; lets close wait out producers (threadsafe.c) */
	alignas(PROA__CACHELINE) atomic_uint gate;
	atomic_uint sleep;
	/* proa__fork_gen when the loop was made (loop.c): here, not with the
	 * loop's other fields, because every producer checks it and this is
	 * the line they read anyway; beside the loop thread's hot fields it
	 * cost a miss a post (-13% items/s at 1 producer, -20% at 4). */
	unsigned fork_gen;
	/* loop thread only */
	alignas(PROA__CACHELINE) struct proa__mpsc_node *cons;
	/* @cons when the last pop found its producer between exchange and
	 * link: until the link comes, only that node's line is read */
	struct proa__mpsc_node *stalled;
	struct proa__mpsc_node stub;
};

#define PROA__GATE_CLOSED 1u /* closing or closed: nothing enters */
#define PROA__GATE_SHUT 2u   /* proa_loop_shutdown(): no new public posts */
#define PROA__GATE_ONE 4u    /* one producer inside */

#define PROA__BATCH 64

/*
 * A hook of a layer above (pool/, net/) on the loop: how such a layer
 * keeps per-loop state without the loop naming it.  Loop thread only.
 * @key says whose it is, for proa__loop_hook_find(): the address of a
 * static object of the user's (net/'s per-loop state, the default pool),
 * or of an object of its own (a pool's client hook is keyed by the pool).
 * @flush runs at the start of every iteration (before the loop decides
 * whether to wait) and after each ready drain: work gathered during the
 * iteration leaves in one batch.  @close runs in proa_loop_close() once
 * nothing is in flight, and must unlink the hook.  @cancel_all (may be
 * NULL) runs in proa_loop_cancel_all(): the layer ends what it has in
 * flight that is not an op (c-ares lookups wait on watches and a timer),
 * its results arriving in later iterations; it returns how many.
 */
struct proa__loop_hook {
	struct proa_link link;
	const void *key;
	void (*flush)(struct proa__loop_hook *h);
	void (*close)(struct proa__loop_hook *h);
	int (*cancel_all)(struct proa__loop_hook *h);
};
#define PROA__HANDLE_CACHE 256

/* The padding clang-analyzer reports is the cache-line separation of the
 * queue's producer and consumer sides, kept on purpose. */
struct proa_loop { /* NOLINT(clang-analyzer-optin.performance.Padding) */
	struct proa__sched sched; /* first: see proa__sched_of() */
	struct proa__mpsc q;
	struct proa__ring *ring;
	uint64_t now;
	struct proa_link ready;
	struct proa_link *draining; /* the batch run_ready() is running */

	/* timers: a pairing heap ordered by (when, seq) */
	struct proa_timer *timer_root;
	uint64_t timer_seq;
	uint64_t timers_active;

	/* the thread that owns the loop, fixed by the first run */
	pthread_t owner;
	atomic_bool owned;
	pid_t owner_tid;
	bool running;
	bool closed;
	atomic_bool stop;
	atomic_int refs;
	atomic_bool unref_warned; /* an unmatched unref was logged */
	uint64_t slow_ns;

	/* wake-ups from other threads: on io_uring a multishot poll of an
	 * eventfd, armed once (threadsafe.c, arm_wake()); else a read of it
	 * kept in flight */
	int wake_fd;
	struct proa_op wake_op;
	uint64_t wake_buf;
	bool wake_multishot;
	atomic_uint_fast64_t wakeups_sent;

	/* gathering of posted items (threadsafe.c, "Gathering") */
	uint64_t gather_ns;	/* the window; 0: off */
	uint64_t gather_until;	/* no drain before this; 0: no window open */
	unsigned gather_streak; /* drains in a row that left items behind */

	/* signals: a signalfd polled by an internal op */
	int sig_fd;
	sigset_t sig_mask; /* signals watched */
	/* The thread whose per-thread counts (signal.c) hold sig_mask: the
	 * one that started the first watch, then the owner from its first
	 * run on. */
	pthread_t sig_thread;
	bool sig_thread_set;
	struct proa_link signals;
	struct proa_link *sig_cursor; /* next watch while dispatching */
	struct proa_op sig_op;

	/* hooks of the layers above (struct proa__loop_hook), by key */
	struct proa_link hooks;

	/* prepare and check hooks (struct proa_iter_hook), by kind */
	struct proa_link iter_hooks[2];

	/* handles for call_soon(NULL) */
	struct proa_handle *free_handles;
	unsigned nfree;

	struct proa_loop_stats stats;
	struct proa__cqe batch[PROA__BATCH];
};

/* ---- loop.c ----------------------------------------------------------- */

void proa__call_soon(struct proa_loop *loop, struct proa_handle *h);
bool proa__loop_alive(struct proa_loop *loop);
/* Add @h (key, flush and close set) / unlink it.  Loop thread. */
void proa__loop_hook_add(struct proa_loop *loop, struct proa__loop_hook *h);
void proa__loop_hook_del(struct proa__loop_hook *h);
/* The first hook of @loop added with @key, or NULL.  Loop thread. */
struct proa__loop_hook *proa__loop_hook_find(struct proa_loop *loop,
					     const void *key);
/* Whether the calling thread runs @loop (false before its first run).
 * Thread: any. */
bool proa__loop_on_owner_thread(struct proa_loop *loop);
/* How many fork()s made this process from the one that started: bumped in
 * the child (whose only thread runs the handler, so nothing races it).  A
 * loop whose count differs was made by an ancestor and shares its ring
 * with it: proa_loop_run() and proa_loop_close() refuse it, and debug mode
 * aborts on any use but proa_loop_discard_after_fork() (loop.c). */
extern atomic_uint proa__fork_gen;

/* Whether the process forked since @loop was made, i.e. this is a child
 * of fork() holding its parent's loop (docs/processes.md).  Thread: any. */
static inline bool proa__loop_is_parents(const struct proa_loop *loop)
{
	return loop->q.fork_gen !=
	       atomic_load_explicit(&proa__fork_gen, memory_order_relaxed);
}
/* Entry check of public Thread: loop functions. */
#define PROA__LOOP_CHECK(loop) PROA__CHECK_THREAD(&(loop)->sched)
#define PROA__LOOP_CHECK_AS(loop, func)                                        \
	PROA__CHECK_THREAD_AS(&(loop)->sched, func)

/* ---- iterhook.c: prepare and check hooks ------------------------------ */

void proa__iter_hooks_init(struct proa_loop *loop);
/* Call the hooks of @kind (PROA_HOOK_PREPARE or _CHECK) once each. */
void proa__iter_hooks_run(struct proa_loop *loop, int kind);
/* proa_loop_close(): stop every hook still started. */
void proa__iter_hooks_stop_all(struct proa_loop *loop);

/* ---- creation: the executor ------------------------------------------ */

/*
 * Make a loop whose ring hands file operations it cannot do to @exec
 * (struct proa__executor, ring/ring_int.h; NULL: none, and they fail with
 * -EOPNOTSUPP).  The public proa_loop_new() lives in pool/fallback.c and
 * passes the pool's file lane, so nothing here calls up into pool/ and a
 * static link that makes a loop pulls the pool in.  Thread: any.
 */
int proa__loop_new(struct proa_loop **out, const struct proa_loop_opts *opts,
		   const struct proa__executor *exec);

/* How late a timer may fire so that nearby deadlines share a wake-up. */
#define PROA__TIMER_SLACK_NS 50000

/* ---- timer.c ---------------------------------------------------------- */

int proa__timer_arm(struct proa_loop *loop, struct proa_timer *t, uint64_t when,
		    uint64_t repeat, proa_callback_fn fn, void *arg);
/* Move due timers to the ready list. */
void proa__timers_run_due(struct proa_loop *loop);
/* Nanoseconds until the next deadline, 0 if one is due, -1 if none. */
int64_t proa__timers_timeout(struct proa_loop *loop);
/* Called by the ready drain before a timer's callback. */
void proa__timer_before_run(struct proa_loop *loop, struct proa_timer *t);
int proa__timer_cancel_all(struct proa_loop *loop);

/* ---- threadsafe.c ---------------------------------------------------------
 */

void proa__mpsc_init(struct proa__mpsc *q);
bool proa__mpsc_empty(struct proa__mpsc *q);
/* Take the items queued now (at most a bounded batch) and run their
 * mpsc run functions. */
void proa__threadsafe_drain(struct proa_loop *loop);
int proa__post(struct proa__sched *s, struct proa__mpsc_node *n);
/* call_soon_threadsafe for the library's own results, which a loop
 * reference pins (a pool job): accepted after proa_loop_shutdown(), which
 * refuses only new work. */
int proa__call_soon_pinned(struct proa_loop *loop, struct proa_handle *h,
			   proa_callback_fn fn, void *arg);
/*
 * A chain of handles that only its builder can post (a pool job's result,
 * a chain of one): built on one thread with proa__ts_chain_add(), then
 * queued with one exchange and at most one wake-up by
 * proa__ts_chain_post_pinned() (pinned like proa__call_soon_pinned()).
 * Each handle must be idle and owned by the builder alone, so it is not
 * claimed with a CAS.  Zero-initialise the chain, or post empties it.
 */
struct proa__ts_chain {
	struct proa_loop *loop;
	struct proa__mpsc_node *first, *last;
	unsigned n;
};
void proa__ts_chain_add(struct proa__ts_chain *c, struct proa_loop *loop,
			struct proa_handle *h, proa_callback_fn fn, void *arg);
int proa__ts_chain_post_pinned(struct proa__ts_chain *c);
/* The sleep handshake around a blocking wait. */
bool proa__sleep_begin(struct proa_loop *loop, bool need_alive);
void proa__sleep_end(struct proa_loop *loop);
/* Wake the loop if it may be asleep. */
void proa__wake(struct proa_loop *loop);
/* Enter/leave the gate that proa_loop_close() waits out; false: closed. */
bool proa__gate_enter(struct proa_loop *loop);
void proa__gate_leave(struct proa_loop *loop);
bool proa__gate_closed(struct proa_loop *loop);
/* Close the gate: 0, or -EBUSY if items arrived meanwhile. */
int proa__gate_close(struct proa_loop *loop);
void proa__gate_reopen(struct proa_loop *loop);
int proa__wake_init(struct proa_loop *loop);
void proa__wake_op_done(struct proa_op *op);

/* ---- ops.c ------------------------------------------------------------ */

/*
 * IORING_OP_WAITID on @pidfd (P_PIDFD) with waitid(2) @options, the
 * siginfo_t written to @info (borrowed until the callback); @op->res is 0
 * or -errno.  Not public: proc/ is its one user.  -EOPNOTSUPP without
 * PROA_FEAT_OP_WAITID (the epoll backend, kernels before 6.7).
 */
int proa__op_waitid(struct proa_loop *loop, struct proa_op *op, int pidfd,
		    void *info, int options);

/* ---- signal.c --------------------------------------------------------- */

void proa__signals_init(struct proa_loop *loop);
void proa__signals_exit(struct proa_loop *loop);
bool proa__signals_active(const struct proa_loop *loop);

/* ---- fdwatch.c -------------------------------------------------------- */

/* (Defined in loop.c.)  Set once a kernel refused a multishot poll: fd watches
 * then re-arm a one-shot poll per callback, and loops made after it wait for
 * wake-ups with a read of their eventfd (threadsafe.c).  Tests set it to run
 * those paths. */
extern atomic_bool proa__poll_no_multishot;

/* ---- debug.c ----------------------------------------------------------- */

void proa__check_thread(struct proa__sched *s, const char *func);
/* A child of fork() called @func on its parent's loop, whose copy nobody
 * runs: debug mode says so and aborts, as the thread check does for the
 * loop-thread calls; otherwise it returns and the caller refuses
 * (PROA_ECLOSED).  The _threadsafe calls and ref/unref, which skip the
 * thread check, call this. */
void proa__forked(struct proa_loop *loop, const char *func);
void proa__list_inflight(struct proa_loop *loop, const char *why);
/* Debug mode: run a callback, timed; log it if slower than slow_ns. */
void proa__run_timed(struct proa_loop *loop, proa_callback_fn fn, void *arg,
		     struct proa_op *op);
/* Signals block in the owner thread too (signal.c). */
void proa__signals_first_run(struct proa_loop *loop);
/* A child of fork() gives back what the loop's watches blocked in the
 * forking thread, whose mask it inherited (signal.c). */
void proa__signals_after_fork(struct proa_loop *loop);

static inline void proa__run_callback(struct proa_loop *loop,
				      proa_callback_fn fn, void *arg)
{
	loop->stats.callbacks++;
	if (proa__likely(!loop->sched.debug))
		fn(arg);
	else
		proa__run_timed(loop, fn, arg, NULL);
}

static inline void proa__run_op_callback(struct proa_loop *loop,
					 struct proa_op *op)
{
	loop->stats.callbacks++;
	if (proa__likely(!loop->sched.debug))
		op->cb(op);
	else
		proa__run_timed(loop, NULL, NULL, op);
}

#endif /* PROA_PROACTOR_INT_H */
