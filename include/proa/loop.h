/* SPDX-License-Identifier: MIT */
/*
 * proa/loop.h - the event loop: run modes, callbacks (call_soon, call_later,
 * call_soon_threadsafe), timers, signals, stats and the probed features.
 *
 * A loop belongs to the thread that first runs it.  Every callback runs on
 * that thread, from inside proa_loop_run(), never inside the call that
 * scheduled it.  Functions marked "Thread: loop" may be called only from that
 * thread, or from any one thread before the first run; with debug mode on
 * (PROA_DEBUG=1 or proa_loop_opts.debug) a call from another thread aborts
 * with a message naming the function and both threads.  Functions whose names
 * end in _threadsafe, and the few marked "Thread: any", may be called from
 * any thread at any time while the loop exists.
 */
#ifndef PROA_LOOP_H
#define PROA_LOOP_H

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

struct proa_future;

/*
 * struct proa_handle - a scheduled callback: what proa_loop_call_soon() and
 * proa_loop_call_soon_threadsafe() queue.  Caller-owned (or allocated by the
 * loop when the caller passes NULL).  Zero-initialise it before first use.
 *
 * States (private, in @priv.state):
 *
 *   IDLE --call_soon--> READY --(drain: IDLE, then fn runs)--> IDLE
 *   IDLE --call_soon_threadsafe--> POSTED --(loop takes it)--> READY
 *   READY --proa_handle_cancel--> IDLE (fn never runs)
 *
 * A handle may be reused or freed whenever it is IDLE, including inside its
 * own callback.
 */
struct proa__handle_priv {
	struct proa_link link;
	struct proa__mpsc_node node;
	struct proa_loop *loop;
	uint32_t state;
	uint32_t flags;
};

struct proa_handle {
	proa_callback_fn fn;
	void *arg;
	struct proa__handle_priv priv;
};

/*
 * struct proa_timer - a callback due at a point of the loop's monotonic
 * clock, optionally repeating.  Caller-owned, zero-initialised before first
 * use, reusable and freeable whenever it is not active.
 *
 *   IDLE --start--> ARMED --(deadline passes)--> READY --(fn runs)--> IDLE
 *                                          (repeating: re-ARMED before fn)
 *   ARMED or READY --proa_timer_cancel--> IDLE (fn never runs)
 */
struct proa_timer;
struct proa__timer_priv {
	uint64_t when;
	uint64_t repeat;
	uint64_t seq;
	struct proa_timer *child;
	struct proa_timer *sibling;
	struct proa_timer *prev;
};

struct proa_timer {
	struct proa_handle handle;
	struct proa__timer_priv priv;
};

/*
 * struct proa_signal - a watch on a POSIX signal, delivered through a
 * signalfd as a callback on the loop thread.  Caller-owned.
 */
struct proa_signal;
typedef void (*proa_signal_fn)(struct proa_signal *sig);

struct proa__signal_priv {
	struct proa_link link;
	struct proa_loop *loop;
};

struct proa_signal {
	proa_signal_fn fn;
	void *data;
	int signo;
	struct proa__signal_priv priv;
};

/* How strongly io_uring is set up; AUTO tries the strongest first. */
enum proa_ring_mode {
	PROA_RING_AUTO = 0,
	/* SINGLE_ISSUER | DEFER_TASKRUN (6.1+): completions run only when the
	 * loop asks for them, so nothing interrupts a callback. */
	PROA_RING_DEFER_TASKRUN,
	/* COOP_TASKRUN | TASKRUN_FLAG (5.19+). */
	PROA_RING_COOP_TASKRUN,
	/* No task-running flags: task work interrupts the loop thread. */
	PROA_RING_PLAIN,
};

/*
 * Which kernel interface a loop is built on (proa_loop_backend() names it).
 *
 * AUTO tries io_uring and falls back to epoll when io_uring is refused:
 * io_uring_setup fails with EPERM (a seccomp filter, as Docker's default
 * profile has; kernel.io_uring_disabled), ENOSYS (no io_uring) or EINVAL
 * (a kernel too old for proa).  The reason is logged once per process at
 * INFO level and shown by proa_loop_describe() ("fallback: ...").  Resource
 * errors (ENOMEM, EMFILE, ENFILE) stay errors: they are not fallbacks.
 *
 * On epoll, operations are tried at once and retried on readiness; user
 * file operations on regular files (and fsync, openat, statx) run on the
 * pool's file lane; provided-buffer rings and multishot accept/recv are
 * emulated in user space; @ring_mode is ignored.  With EPOLL chosen proa
 * makes no io_uring system call.
 */
enum proa_backend {
	PROA_BACKEND_AUTO = 0,
	PROA_BACKEND_IO_URING, /* io_uring or an error, never epoll */
	PROA_BACKEND_EPOLL,
};

/*
 * struct proa_loop_opts - options for proa_loop_new(); all-zero means
 * defaults.  Environment variables fill the fields left at zero:
 * PROA_RING=defer|coop|plain for @ring_mode, PROA_DEBUG=1 for @debug,
 * PROA_BACKEND=auto|io_uring|epoll for @backend, PROA_POST_GATHER_NS=N
 * (0: off) for @post_gather_ns.
 */
struct proa_loop_opts {
	enum proa_ring_mode ring_mode;
	/* Submission queue entries (rounded up to a power of two); 0: 256. */
	uint32_t sq_entries;
	/* Completion queue entries; 0: 16 x sq_entries.  Must be >= sq. */
	uint32_t cq_entries;
	/* > 0: debug mode on; < 0: off even if PROA_DEBUG is set; 0: env. */
	int debug;
	/* Debug mode logs callbacks slower than this; 0: 100 ms. */
	uint32_t slow_callback_ms;
	/* io_uring, epoll, or AUTO (0: PROA_BACKEND, else auto). */
	enum proa_backend backend;
	/* Gathering of cross-thread posts (call_soon_threadsafe, the pool's
	 * results): while a producer on another CPU streams items right
	 * behind the loop, the loop takes them at most once per this many
	 * ns, so that they come in batches instead of one contended cache
	 * line each.  A streaming producer's item may wait up to this much
	 * longer; a lone post never does.  The loop spins while it waits,
	 * so completions and timers that come due meanwhile wait as long:
	 * keep it short.  0: PROA_POST_GATHER_NS, else 4000; < 0: off; more
	 * than 1,000,000 (1 ms) is -EINVAL.  Always off on a machine with
	 * one CPU online. */
	int64_t post_gather_ns;
	/* Must be zero: room for fields a later 0.x adds without changing
	 * the size (README, "ABI"); nonzero is -EINVAL. */
	uint64_t reserved[3];
};

/**
 * proa_loop_new() - create an event loop on io_uring, or on epoll (see
 * enum proa_backend).
 * @out:  receives the loop; untouched on error.
 * @opts: options, or NULL for defaults.
 *
 * The ring is created disabled and bound to the thread that first runs the
 * loop, so a loop may be made on one thread and run on another.
 *
 * Return: 0; -ENOSYS, -EPERM or -EINVAL when io_uring cannot be set up on
 *         this system and the backend is PROA_BACKEND_IO_URING
 *         (proa_io_uring_probe() says why, in words); -ENOMEM,
 *         -EMFILE or -ENFILE when resources ran out; -EINVAL for bad
 *         options.
 * Thread: any.
 */
PROA_API int proa_loop_new(struct proa_loop **out,
			   const struct proa_loop_opts *opts);

/**
 * proa_loop_close() - close the loop's ring and descriptors.
 * @loop: an idle loop (not running).
 *
 * Refuses while anything could still produce a callback: operations queued
 * or in flight, timers armed, handles ready, cross-thread items queued,
 * signal watches, or references held (proa_loop_ref()).  In debug mode the
 * refusal lists the operations still in flight.  To wind a busy loop down,
 * call proa_loop_cancel_all() and run it until proa_loop_run() returns;
 * if other threads keep posting, call proa_loop_shutdown() first.
 * The memory stays valid until proa_loop_free(), so later calls return
 * PROA_ECLOSED instead of touching freed memory.
 *
 * Return: 0; -EBUSY as above or when called from a callback; -EPERM from
 *         a thread other than the one that ran the loop (its ring is bound
 *         to that thread), or in a child of fork() (use
 *         proa_loop_discard_after_fork()); PROA_ECLOSED if already closed.
 * Thread: loop.
 */
PROA_API int proa_loop_close(struct proa_loop *loop);

/**
 * proa_loop_free() - release a loop's memory, closing it first if needed.
 * @loop: a loop, or NULL.
 *
 * No other thread may use @loop once this is called.
 *
 * Return: 0, or -EBUSY (and nothing is freed) if proa_loop_close() refuses.
 * Thread: loop.
 */
PROA_API int proa_loop_free(struct proa_loop *loop);

enum proa_run_mode {
	/* Run until proa_loop_stop() or until nothing can produce a callback.
	 */
	PROA_RUN_DEFAULT = 0,
	/* One iteration; waits for an event if nothing is ready. */
	PROA_RUN_ONCE,
	/* One iteration without waiting. */
	PROA_RUN_NOWAIT,
	/* Run until proa_loop_stop(), even with nothing to do (asyncio's
	 * run_forever). */
	PROA_RUN_FOREVER,
};

/**
 * proa_loop_discard_after_fork() - in the child of fork(), let go of a loop
 * the parent made, without acting on it.
 *
 * After fork() the child shares the parent's io_uring (its queues are
 * shared memory) or epoll instance: submitting, cancelling, reaping or
 * closing as proa_loop_close() does would take the parent's completions or
 * change its registrations.  This call closes the loop's own descriptors
 * (ring or epoll, eventfd, signalfd), unblocks the signals the loop had
 * blocked in the forking thread, and frees the struct; it makes no call
 * on the ring and runs no callback.  What was made on the loop (sockets,
 * pipes, processes, watches, a pool) is not released: its memory stays
 * (exit or exec soon) and its descriptors stay open in the child until
 * it closes them or calls execve (proa opens every one O_CLOEXEC).
 *
 * This is the one proa call the child may make on a loop of the parent's:
 * proa_loop_run() and proa_loop_close() return -EPERM there, and in debug
 * mode every other call aborts with a message.  The child may then make
 * new loops (proa_loop_new()) and use them as usual.
 * docs/processes.md has the whole fork contract.
 *
 * Return: 0, or -EINVAL for NULL.  @loop must not be used afterwards.
 * Thread: the child's thread after fork() (any loop, whoever owned it).
 */
PROA_API int proa_loop_discard_after_fork(struct proa_loop *loop);

/**
 * proa_loop_run() - run the loop.
 * @loop: the loop.
 * @mode: see enum proa_run_mode.
 *
 * Each iteration submits what is queued and waits (not at all if callbacks
 * are ready; until the next timer; or until woken), dispatches the
 * completions' callbacks, then runs the callbacks ready at that point: due
 * timers, cross-thread items and call_soon handles, in that order of
 * arrival.  Callbacks queued while those run wait for the next iteration,
 * after the next poll, so a callback that reschedules itself cannot starve
 * timers or I/O.
 *
 * Return: 0 when the loop stopped or ran out of work; for ONCE and NOWAIT
 *         1 if work remains and 0 if not; -EBUSY if a loop is already
 *         running on this thread (including from a callback); -EPERM if
 *         @loop is bound to another thread or was made before a fork()
 *         that made this process (docs/processes.md; debug mode aborts
 *         there instead); PROA_ECLOSED after close; other
 *         -errno if the ring fails.
 * Thread: loop (the first call binds the loop to the calling thread).
 */
PROA_API int proa_loop_run(struct proa_loop *loop, enum proa_run_mode mode);

/**
 * proa_loop_run_once() - proa_loop_run(@loop, PROA_RUN_ONCE).
 * Thread: loop.
 */
PROA_API int proa_loop_run_once(struct proa_loop *loop);

/**
 * proa_loop_run_until_complete() - run until @fut is done or the loop stops.
 * @loop: the loop.
 * @fut:  a future of @loop.
 *
 * Return: 0 once @fut is done (read its result with proa_future_result());
 *         -EINTR if proa_loop_stop() came first; -EINVAL if @fut belongs to
 *         another loop; otherwise as proa_loop_run().
 * Thread: loop.
 */
PROA_API int proa_loop_run_until_complete(struct proa_loop *loop,
					  struct proa_future *fut);

/**
 * proa_loop_stop() - make proa_loop_run() return after this iteration.
 *
 * The callbacks already ready still run; a stop requested before run
 * starts makes the next run do one iteration.
 * Thread: loop.
 */
PROA_API void proa_loop_stop(struct proa_loop *loop);

/**
 * proa_loop_stop_threadsafe() - proa_loop_stop() from any thread.
 *
 * Return: 0, or PROA_ECLOSED if the loop is closed.
 * Thread: any.
 */
PROA_API int proa_loop_stop_threadsafe(struct proa_loop *loop);

/**
 * proa_loop_current() - the loop running on the calling thread.
 *
 * Return: the loop whose proa_loop_run() is on this thread's stack, or NULL.
 * Thread: any.
 */
PROA_API struct proa_loop *proa_loop_current(void);

/**
 * proa_loop_time() - the loop's clock: CLOCK_MONOTONIC in nanoseconds,
 * sampled once per iteration (so all callbacks of one iteration see the
 * same time).
 * Thread: loop.
 */
PROA_API uint64_t proa_loop_time(const struct proa_loop *loop);

/**
 * proa_loop_update_time() - re-sample the loop's clock now and return it.
 * Thread: loop.
 */
PROA_API uint64_t proa_loop_update_time(struct proa_loop *loop);

/**
 * proa_loop_call_soon() - run @fn(@arg) on the loop, in FIFO order.
 * @loop: the loop.
 * @h:    a caller-owned idle handle, or NULL to let the loop allocate one
 *        (freed after it runs; such a call cannot be cancelled).
 * @fn:   the callback; runs once, in a later iteration's drain.
 * @arg:  passed to @fn.
 *
 * Return: 0; -EBUSY if @h is not idle; -EINVAL if @fn is NULL; -ENOMEM;
 *         PROA_ECLOSED after close.  On error @fn never runs.
 * Thread: loop.
 */
PROA_API int proa_loop_call_soon(struct proa_loop *loop, struct proa_handle *h,
				 proa_callback_fn fn, void *arg);

/**
 * proa_loop_call_soon_threadsafe() - proa_loop_call_soon() from any thread.
 * @loop: the loop.
 * @h:    a caller-owned idle handle, or NULL to let the loop allocate one.
 *        A caller-owned handle belongs to the loop until @fn starts.
 * @fn:   the callback; runs once, on the loop thread.
 * @arg:  passed to @fn.
 *
 * Items from one thread run in the order that thread queued them.  The
 * queue is lock-free; the loop is woken (an eventfd write) only when it may
 * be asleep, so a busy loop costs producers no system call.
 *
 * Return: 0; -EBUSY if @h is not idle; -EINVAL if @fn is NULL; -ENOMEM;
 *         PROA_ECLOSED if the loop is closed; -ESHUTDOWN after
 *         proa_loop_shutdown().  On error @fn never runs.
 * Thread: any.
 */
PROA_API int proa_loop_call_soon_threadsafe(struct proa_loop *loop,
					    struct proa_handle *h,
					    proa_callback_fn fn, void *arg);

/**
 * proa_loop_call_soon_threadsafe_many() - post several callbacks from any
 * thread with one atomic exchange and at most one wake-up.
 * @loop: the loop.
 * @hs:   @n caller-owned idle handles, each with ->fn (not NULL) and ->arg
 *        set by the caller; each belongs to the loop until its fn starts.
 * @n:    how many; 0 posts nothing and returns 0.
 *
 * The same as proa_loop_call_soon_threadsafe(@loop, hs[i], hs[i]->fn,
 * hs[i]->arg) for i = 0 .. @n-1, in that order, except that all or none
 * are accepted and the queue sees them as one item: a producer that has
 * several items ready (a burst) pays the queue's exchange and the wake-up
 * check once.  They run in array order, possibly in different iterations
 * (the loop takes a bounded batch per iteration).  The whole chain costs
 * one locked instruction: unlike proa_loop_call_soon_threadsafe(), the
 * handles are checked, not claimed with a compare-and-swap, because the
 * caller writes their fn and arg itself - posting one handle from two
 * threads at once is a data race in the caller either way.  A handle
 * posted again before it ran is refused.
 *
 * Return: 0; -EINVAL if @loop is NULL, @hs is NULL with @n > 0, or a
 *         handle or its fn is NULL or the handle is a timer's; -EBUSY if a
 *         handle is not idle; PROA_ECLOSED if the loop is closed;
 *         -ESHUTDOWN after proa_loop_shutdown().  On error no fn runs and
 *         every handle is idle again.
 * Thread: any.
 */
PROA_API int proa_loop_call_soon_threadsafe_many(struct proa_loop *loop,
						 struct proa_handle *const *hs,
						 size_t n);

/**
 * proa_loop_shutdown() - stop taking cross-thread work, so that close can
 * win against producers that never pause.
 * @loop: the loop.
 *
 * proa_loop_close() refuses while cross-thread items are queued, and
 * threads that post without pause keep the queue from ever emptying.
 * After this call, proa_loop_call_soon_threadsafe() and
 * proa_future_set_result_threadsafe() on @loop fail with -ESHUTDOWN (and
 * their callbacks never run); what was accepted before still runs.  When
 * the call returns, every accepted item is queued: run the loop until it
 * has nothing left (proa_loop_run(@loop, PROA_RUN_DEFAULT) returns), then
 * close it.  The results of the loop's pool jobs still arrive (each job
 * holds a reference, so the loop cannot close before they are in), and
 * proa_loop_stop_threadsafe() keeps working.  There is no way back: the
 * loop is on its way to close.
 *
 * Return: 0, or -EINVAL if @loop is NULL.  Calling it again is harmless.
 * Thread: any (it waits, briefly, for posts already under way to finish).
 */
PROA_API int proa_loop_shutdown(struct proa_loop *loop);

/**
 * proa_handle_cancel() - unschedule a ready handle.
 *
 * Return: 0 if @h was ready and will not run; -ENOENT if it was idle;
 *         -EBUSY if it is still on its way from another thread (posted but
 *         not yet taken by the loop).
 * Thread: loop.
 */
PROA_API int proa_handle_cancel(struct proa_handle *h);

/**
 * proa_handle_is_idle() - whether @h may be reused or freed.
 * Thread: any (the answer may be stale for a handle posted from elsewhere).
 */
PROA_API bool proa_handle_is_idle(const struct proa_handle *h);

/**
 * proa_timer_start() - arm @t to run @fn(@arg) after @delay_ns, then every
 * @repeat_ns if that is not 0.
 * @loop:      the loop.
 * @t:         a caller-owned timer that is not active.
 * @delay_ns:  delay from proa_loop_time(), in nanoseconds.
 * @repeat_ns: 0 for a one-shot timer, else the period.
 * @fn, @arg:  the callback.
 *
 * Timers never fire early, and fire at most about 50 us late (plus
 * scheduling), the slack that lets nearby deadlines share one wake-up.
 * Timers due in the same iteration run in order of
 * deadline, and in order of arming for equal deadlines.  A repeating timer
 * that fell behind (a stalled loop, a suspended machine) fires once and
 * then keeps its phase: missed periods are skipped, not replayed.
 *
 * Return: 0; -EBUSY if @t is active; -EINVAL if @fn is NULL;
 *         PROA_ECLOSED after close.
 * Thread: loop.
 */
PROA_API int proa_timer_start(struct proa_loop *loop, struct proa_timer *t,
			      uint64_t delay_ns, uint64_t repeat_ns,
			      proa_callback_fn fn, void *arg);

/**
 * proa_loop_call_later() - one-shot timer after @delay_ns nanoseconds.
 * Return and Thread: as proa_timer_start().
 */
PROA_API int proa_loop_call_later(struct proa_loop *loop, struct proa_timer *t,
				  uint64_t delay_ns, proa_callback_fn fn,
				  void *arg);

/**
 * proa_loop_call_at() - one-shot timer at @when_ns of proa_loop_time()'s
 * clock (a past time fires in the next iteration).
 * Return and Thread: as proa_timer_start().
 */
PROA_API int proa_loop_call_at(struct proa_loop *loop, struct proa_timer *t,
			       uint64_t when_ns, proa_callback_fn fn,
			       void *arg);

/**
 * proa_timer_cancel() - disarm @t; its callback will not run.
 *
 * Return: 0 if it was active; -ENOENT if it was not.
 * Thread: loop.
 */
PROA_API int proa_timer_cancel(struct proa_timer *t);

/**
 * proa_timer_is_active() - whether @t is armed or due to run.
 * Thread: loop.
 */
PROA_API bool proa_timer_is_active(const struct proa_timer *t);

/**
 * proa_signal_start() - call @fn on the loop thread when @signo arrives.
 * @loop:  the loop.
 * @sig:   caller-owned, not started; @sig->data is yours.
 * @signo: the signal (not SIGKILL or SIGSTOP).
 * @fn:    the callback.
 * @data:  stored in @sig->data.
 *
 * The signal is blocked in the calling thread and read from a signalfd, so
 * no code runs in signal context.  Signals sent to the process reach the
 * signalfd only if every other thread blocks them too: block them before
 * creating threads.  Several watches of one signal all run, in order of
 * starting.  Standard signals that arrive while one is pending coalesce.
 *
 * The blocking is counted per thread, over every loop of the thread: a
 * signal stays blocked while any loop of the thread watches it.  A loop
 * whose watches were started before its first run on another thread blocks
 * them in its owner thread at that run too; the thread that started them
 * keeps them blocked.
 *
 * Return: 0; -EINVAL for a bad signal or NULL @fn; -EBUSY if @sig is
 *         started; -EMFILE/-ENFILE/-ENOMEM; PROA_ECLOSED after close.
 * Thread: loop.
 */
PROA_API int proa_signal_start(struct proa_loop *loop, struct proa_signal *sig,
			       int signo, proa_signal_fn fn, void *data);

/**
 * proa_signal_stop() - stop watching; the callback will not run again.
 *
 * When the last watch of a signal in this thread stops, the signal is
 * unblocked again if proa_signal_start() blocked it.  An instance that
 * arrived while it was watched and that no loop has read yet is discarded
 * first, not left to meet the default action.
 *
 * Return: 0, or -ENOENT if @sig was not started.
 * Thread: loop.
 */
PROA_API int proa_signal_stop(struct proa_signal *sig);

/*
 * Prepare and check hooks: a callback run on every iteration of the loop,
 * just before it decides how long to wait (PREPARE) or just after the wait
 * and the I/O completions it brought (CHECK).  libuv's uv_prepare and
 * uv_check, for a library that must flush what it gathered before the loop
 * sleeps, or look at what changed once it wakes.
 *
 * One iteration: PREPARE hooks; wait (not at all if a PREPARE hook made
 * work ready); completions; CHECK hooks; due timers, cross-thread items
 * and the ready list.  Hooks run in the order they were started, on the
 * loop thread, in every run mode (also PROA_RUN_NOWAIT).  A hook does not
 * keep the loop alive: proa_loop_run(PROA_RUN_DEFAULT) returns when nothing
 * else is left, whatever hooks are started.  Work a hook schedules
 * (proa_loop_call_soon()) runs in the same iteration's ready drain, and a
 * PREPARE hook that schedules work keeps the loop from blocking.
 *
 * Caller-owned; zero it (or stop it) before starting it.  A callback may
 * stop or start any hook, its own included; a hook started from a hook
 * runs first at the next pass of its kind.  proa_loop_close() stops the
 * hooks still started.
 */
enum proa_iter_hook_kind {
	PROA_HOOK_PREPARE = 0, /* before the loop may block */
	PROA_HOOK_CHECK,       /* after it woke and reaped completions */
};

struct proa_iter_hook;
typedef void (*proa_iter_hook_fn)(struct proa_iter_hook *h, void *arg);

struct proa__iter_hook_priv {
	struct proa_link link;
	struct proa_loop *loop; /* NULL while stopped */
	int kind;
};

struct proa_iter_hook {
	proa_iter_hook_fn fn;
	void *arg;
	struct proa__iter_hook_priv priv;
};

/**
 * proa_iter_hook_start() - run @fn(@h, @arg) on every iteration of @loop,
 * before it blocks (PROA_HOOK_PREPARE) or after (PROA_HOOK_CHECK).
 * Return: 0; -EINVAL for NULLs or an unknown @kind; -EBUSY if @h is
 *         started; PROA_ECLOSED after proa_loop_close().
 * Thread: loop.
 */
PROA_API int proa_iter_hook_start(struct proa_loop *loop,
				  struct proa_iter_hook *h,
				  enum proa_iter_hook_kind kind,
				  proa_iter_hook_fn fn, void *arg);

/**
 * proa_iter_hook_stop() - @fn does not run again until started again; @h
 * may be freed once this returns (also from inside its own callback).
 * Return: 0, or -ENOENT if @h was not started.
 * Thread: loop.
 */
PROA_API int proa_iter_hook_stop(struct proa_iter_hook *h);

/**
 * proa_iter_hook_is_active() - whether @h is started.
 * Thread: loop.
 */
PROA_API bool proa_iter_hook_is_active(const struct proa_iter_hook *h);

/**
 * proa_loop_ref() - keep proa_loop_run(PROA_RUN_DEFAULT) from returning for
 * lack of work, e.g. while another thread will post a result.
 * Thread: any.
 */
PROA_API void proa_loop_ref(struct proa_loop *loop);

/**
 * proa_loop_unref() - drop a reference taken by proa_loop_ref().
 *
 * An unref without a matching ref is a bug of the caller: in debug mode it
 * aborts with a message; otherwise the count stays at zero and a warning
 * is logged, once per loop.
 * Thread: any.
 */
PROA_API void proa_loop_unref(struct proa_loop *loop);

/**
 * proa_loop_cancel_all() - wind the loop down: request cancellation of every
 * operation in flight and disarm every timer.
 *
 * Operations still complete (with -ECANCELED or the result that won the
 * race) and their callbacks run in later iterations; run the loop until
 * proa_loop_run(PROA_RUN_DEFAULT) returns, then proa_loop_close().
 *
 * Lookups of proa_getaddrinfo() that c-ares runs on this loop end too,
 * with -ECANCELED.  fd watches (proa/watch.h) stay armed, and an armed
 * watch keeps the run going: stop or close them.
 *
 * Jobs of proa_pool_submit() and proa_pool_work_submit() are not
 * operations and are left alone: cancel their futures (a job not yet
 * started then never runs), or shut the pool down.  A job already running
 * cannot be stopped, and nothing bounds it: the loop's run, and the pool's
 * shutdown, wait for it to return.
 *
 * Return: the number of operations whose cancellation was requested.
 * Thread: loop.
 */
PROA_API int proa_loop_cancel_all(struct proa_loop *loop);

/* Counters since the loop was created; see proa_loop_stats(). */
struct proa_loop_stats {
	uint64_t iterations;
	uint64_t submissions;  /* SQEs handed to the kernel */
	uint64_t completions;  /* CQEs reaped */
	uint64_t enters;       /* io_uring_enter (epoll: epoll_wait) calls */
	uint64_t sq_full;      /* times the SQ was full and had to be flushed */
	uint64_t cq_overflows; /* times the kernel had to hold CQEs back */
	uint64_t cq_dropped;   /* CQEs the kernel lost (should stay 0) */
	uint64_t wakeups_sent; /* eventfd writes to this loop */
	uint64_t wakeups;      /* wake-ups this loop received */
	uint64_t threadsafe;   /* items taken from the cross-thread queue */
	uint64_t callbacks;    /* handles, timers and op callbacks run */
	uint64_t timers_fired;
	uint64_t ops_inflight;	/* now: user operations queued or in flight */
	uint64_t timers_active; /* now: timers armed or due */
	/* drains held back so that a streaming producer's items gather
	 * (proa_loop_opts.post_gather_ns), and the time spent holding them */
	uint64_t post_gathers;
	uint64_t post_gather_ns;
	/* Zeroed by the library: room for counters a later release adds
	 * (README, "ABI"). */
	uint64_t reserved[6];
};

/**
 * proa_loop_stats() - copy the loop's counters into @out.
 * Return: 0, or -EINVAL for NULL arguments.
 * Thread: loop.
 */
PROA_API int proa_loop_stats(struct proa_loop *loop,
			     struct proa_loop_stats *out);

/* What proa_loop_feature() can be asked about. */
enum proa_feature {
	PROA_FEAT_SINGLE_ISSUER = 0,
	PROA_FEAT_DEFER_TASKRUN,
	PROA_FEAT_COOP_TASKRUN,
	PROA_FEAT_TASKRUN_FLAG,
	PROA_FEAT_SUBMIT_ALL,
	PROA_FEAT_NODROP,
	PROA_FEAT_EXT_ARG,
	PROA_FEAT_REG_RING_FD,
	PROA_FEAT_MSG_RING,
	PROA_FEAT_OP_NOP,
	PROA_FEAT_OP_TIMEOUT,
	PROA_FEAT_OP_READ,
	PROA_FEAT_OP_WRITE,
	PROA_FEAT_OP_READV,
	PROA_FEAT_OP_WRITEV,
	PROA_FEAT_OP_FSYNC,
	PROA_FEAT_OP_OPENAT,
	PROA_FEAT_OP_CLOSE,
	PROA_FEAT_OP_STATX,
	PROA_FEAT_OP_POLL,
	PROA_FEAT_OP_ASYNC_CANCEL,
	PROA_FEAT_OP_ACCEPT,
	PROA_FEAT_OP_CONNECT,
	PROA_FEAT_OP_RECV,
	PROA_FEAT_OP_SEND,
	PROA_FEAT_OP_RECVMSG,
	PROA_FEAT_OP_SENDMSG,
	PROA_FEAT_OP_SHUTDOWN,
	PROA_FEAT_ACCEPT_MULTISHOT, /* Linux 5.19 */
	PROA_FEAT_RECV_MULTISHOT,   /* Linux 6.0 */
	PROA_FEAT_BUF_RING,	    /* provided-buffer rings, Linux 5.19 */
	PROA_FEAT_OP_SPLICE,
	PROA_FEAT_OP_WAITID, /* Linux 6.7; proc/ polls the pidfd without */
	/* File and metadata opcodes; without one, the op runs on the pool's
	 * file lane (proa/op.h). */
	PROA_FEAT_OP_OPENAT2,
	PROA_FEAT_OP_FALLOCATE,
	PROA_FEAT_OP_FTRUNCATE, /* Linux 6.9 */
	PROA_FEAT_OP_UNLINKAT,
	PROA_FEAT_OP_RENAMEAT,
	PROA_FEAT_OP_MKDIRAT,
	PROA_FEAT_OP_SYMLINKAT,
	PROA_FEAT_OP_LINKAT,
	/* The kernel's registered-file table and registered buffers
	 * (READ_FIXED/WRITE_FIXED); without them proa_loop_register_fd()
	 * and proa_loop_register_buffers() are emulated (proa/op.h). */
	PROA_FEAT_REG_FILES,
	PROA_FEAT_REG_BUFFERS,
	PROA_FEAT_OP_SENDMSG_ZC, /* zero-copy sendmsg, Linux 6.1 */
	/* the kernel says in a zero-copy send's notification whether it
	 * had to copy after all (Linux 6.2): PROA_OP_F_ZC_COPIED */
	PROA_FEAT_SEND_ZC_REPORT,
	PROA_FEAT__COUNT
};

/**
 * proa_loop_feature() - whether the loop uses or can use @f.
 * Thread: any (fixed once the loop exists).
 */
PROA_API bool proa_loop_feature(const struct proa_loop *loop,
				enum proa_feature f);

/**
 * proa_feature_name() - a short name for @f ("DEFER_TASKRUN", "OP_STATX").
 * Thread: any.
 */
PROA_API const char *proa_feature_name(enum proa_feature f);

/**
 * proa_loop_backend() - the backend in use: "io_uring" or "epoll".
 * Thread: any.
 */
PROA_API const char *proa_loop_backend(const struct proa_loop *loop);

/**
 * proa_loop_describe() - write a human-readable report of the backend, the
 * ring's sizes and setup flags, and every feature, one per line.
 * @buf, @len: the destination; always NUL-terminated when @len > 0.
 *
 * Return: the length the full report needs (as snprintf), or -EINVAL.
 * Thread: any.
 */
PROA_API int proa_loop_describe(const struct proa_loop *loop, char *buf,
				size_t len);

/**
 * proa_io_uring_probe() - can io_uring be set up here, and if not, why?
 * @reason, @len: receives a sentence naming the cause (a seccomp filter,
 *                the kernel.io_uring_disabled sysctl, an old kernel, ...);
 *                may be NULL.
 *
 * Return: 0 if a ring can be created; -ENOSYS, -EPERM or -EINVAL if
 *         io_uring is unavailable; other -errno for resource errors.
 * Thread: any.
 */
PROA_API int proa_io_uring_probe(char *reason, size_t len);

/**
 * proa_loop_set_debug() - turn debug mode on or off.
 * Thread: loop.
 */
PROA_API void proa_loop_set_debug(struct proa_loop *loop, bool on);

/**
 * proa_loop_is_debug() - whether debug mode is on.
 * Thread: loop.
 */
PROA_API bool proa_loop_is_debug(const struct proa_loop *loop);

enum proa_log_level {
	PROA_LOG_ERROR = 0,
	PROA_LOG_WARN,
	PROA_LOG_INFO,
	PROA_LOG_DEBUG,
};

typedef void (*proa_log_fn)(void *arg, enum proa_log_level level,
			    const char *msg);

/**
 * proa_set_log_fn() - send proa's log lines to @fn instead of stderr.
 * @fn:  called with one line (no trailing newline); NULL restores stderr.
 * @arg: passed to @fn.
 *
 * @fn may be called from any thread that uses proa, concurrently.
 * Thread: any.
 */
PROA_API void proa_set_log_fn(proa_log_fn fn, void *arg);

#ifdef __cplusplus
}
#endif

#endif /* PROA_LOOP_H */
