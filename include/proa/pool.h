/* SPDX-License-Identifier: MIT */
/*
 * proa/pool.h - the thread pool: work that can only block runs on worker
 * threads, and its result comes back as a future resolved on the loop
 * thread that submitted it (through the loop's call_soon_threadsafe queue).
 *
 * A pool has lanes, each with its own workers and its own bounded queue,
 * so that slow work of one kind (name resolution behind a dead server)
 * cannot starve another (file calls):
 *
 *   PROA_LANE_CPU   user functions;
 *   PROA_LANE_FILE  file calls the kernel cannot do asynchronously, and the
 *                   file operations this kernel's io_uring lacks;
 *   PROA_LANE_DNS   proa_getaddrinfo() where c-ares does not serve it, and
 *                   proa_getnameinfo() (proa/dns.h).
 *
 * Workers start on demand, up to each lane's limit, and are placed on CPUs
 * with hwloc (see enum proa_placement).  Every loop has a default pool,
 * created on its first use and shut down when the loop closes.
 *
 * Jobs submitted during one loop iteration are handed to the workers
 * together, before the loop next waits: one lock and at most one wake-up
 * per lane per iteration, not per job.
 */
#ifndef PROA_POOL_H
#define PROA_POOL_H

#include <sched.h>

#include "base.h"
#include "future.h"
#include "loop.h"

#ifdef __cplusplus
extern "C" {
#endif

struct addrinfo;
struct proa_pool;

enum proa_lane {
	PROA_LANE_CPU = 0,
	PROA_LANE_FILE,
	PROA_LANE_DNS,
	PROA_LANE__COUNT
};

/*
 * Where workers run.  Only the CPUs this process may use (its affinity
 * when the pool is made) are considered.
 */
enum proa_placement {
	/* The default for the loops' default pools: bound to the NUMA node
	 * of the thread that made the pool (all of it: the scheduler picks
	 * the CPU), so their memory stays local.  One node: every CPU. */
	PROA_PLACE_NEAR = 0,
	/* Worker k on core k mod cores, round-robin over the cores. */
	PROA_PLACE_SPREAD,
	/* Worker k on hardware thread k mod threads, filling a core's
	 * threads before the next core. */
	PROA_PLACE_PACK,
	/* Not bound. */
	PROA_PLACE_NONE,
	PROA_PLACE__COUNT
};

struct proa_pool_lane_opts {
	/* Most workers this lane starts; 0: CPU lane one per CPU, file
	 * lane 4, DNS lane 2. */
	unsigned threads;
	/* Most jobs waiting for a worker (submitted, not started); 0:
	 * 65536 (CPU, file) or 1024 (DNS). */
	unsigned queue;
	/* Must be zero (README, "ABI"). */
	uint32_t reserved[2];
};

/* Options for proa_pool_new(); all-zero means defaults. */
struct proa_pool_opts {
	enum proa_placement placement;
	struct proa_pool_lane_opts lanes[PROA_LANE__COUNT];
	/* Must be zero: room for fields a later 0.x adds without changing
	 * the size (README, "ABI"); nonzero is -EINVAL. */
	uint64_t reserved[4];
};

/**
 * proa_pool_new() - make a pool.  No worker starts until work arrives.
 *
 * Where hwloc finds no topology the pool still works, its workers
 * unbound; proa_pool_describe() says so.
 *
 * Return: 0; -EINVAL for bad options; -ENOMEM.
 * Thread: any.
 */
PROA_API int proa_pool_new(struct proa_pool **out,
			   const struct proa_pool_opts *opts);

enum proa_pool_shutdown {
	/* Run every job already queued, then stop. */
	PROA_POOL_DRAIN = 0,
	/* Jobs not started resolve with -ECANCELED; running ones finish. */
	PROA_POOL_CANCEL,
};

/**
 * proa_pool_shutdown() - refuse new work, drain or cancel what is queued,
 * and join every worker.  Blocks until the workers have exited; the
 * results of the jobs they finished reach their loops as usual.
 *
 * Jobs that a loop accepted in its current iteration and has not handed
 * over yet are handed over first when the caller is that loop's thread;
 * other loops' such jobs resolve with -ESHUTDOWN.
 *
 * Return: 0; -EALREADY if already shut down; -EDEADLK from a worker of
 *         @pool; -EINVAL for a bad @how.
 * Thread: any but @pool's workers.
 */
PROA_API int proa_pool_shutdown(struct proa_pool *pool,
				enum proa_pool_shutdown how);

/**
 * proa_pool_free() - shut @pool down (cancelling queued jobs) if not done,
 * and release it.  Loops that used it keep a small record until they
 * close; they must not submit to it again.
 *
 * Return: 0; -EDEADLK from a worker of @pool; -EINVAL for a default pool
 *         (it belongs to its loop).
 * Thread: any but @pool's workers.
 */
PROA_API int proa_pool_free(struct proa_pool *pool);

/**
 * proa_pool_default() - the default pool of @loop, made on first use
 * (PROA_PLACE_NEAR, default lanes).
 *
 * Return: 0; PROA_ECLOSED; -ENOMEM.
 * Thread: loop.
 */
PROA_API int proa_pool_default(struct proa_pool **out, struct proa_loop *loop);

/**
 * proa_pool_fn - a job, run on a worker thread.
 * @arg:   the submitter's argument.
 * @value: may be set to a value for the future.
 *
 * Return: the future's result: >= 0, or -errno.
 * Thread: worker.
 */
typedef int32_t (*proa_pool_fn)(void *arg, void **value);

/* Flags for proa_pool_submit_to(). */
/* When the lane's queue is full, block until it has room instead of
 * failing with -EAGAIN.  Blocks the loop thread: for producers that must
 * not drop work and would rather slow down. */
#define PROA_POOL_WAIT (1U << 0)

/**
 * proa_pool_submit() - run @fn(@arg) on @lane of @loop's default pool;
 * @fut resolves on @loop's thread with its result and value.
 * @fut: an initialised pending future of @loop without a canceller.
 *
 * proa_future_cancel(@fut) removes a job that has not started (the
 * future resolves with -ECANCELED); a running job is not interrupted and
 * its result still arrives.  Until then @fut cannot be released
 * (proa_future_fini() says -EBUSY) and @loop cannot close (-EBUSY).
 *
 * Return: 0; -EAGAIN if the lane's queue is full (nothing was queued);
 *         -EINVAL for NULLs, a bad @lane or a future of another loop;
 *         -EBUSY if @fut is not pending or has a canceller; PROA_ECLOSED;
 *         -ENOMEM.
 * Thread: loop.
 */
PROA_API int proa_pool_submit(struct proa_loop *loop, enum proa_lane lane,
			      proa_pool_fn fn, void *arg,
			      struct proa_future *fut);

/**
 * proa_pool_submit_to() - proa_pool_submit() on @pool, with @flags
 * (PROA_POOL_WAIT).
 *
 * Return: as proa_pool_submit(); -ESHUTDOWN once @pool is shut down.
 * Thread: loop.
 */
PROA_API int proa_pool_submit_to(struct proa_pool *pool, struct proa_loop *loop,
				 enum proa_lane lane, proa_pool_fn fn,
				 void *arg, struct proa_future *fut,
				 unsigned flags);

/*
 * struct proa_pool_work - a job whose record the caller owns, as libuv's
 * uv_work_t: submitting it allocates nothing.  A program that keeps its
 * requests in an array or embeds the record in each request pays no heap
 * growth and no first touches for a burst of jobs (proa_pool_submit()
 * takes a record from the loop's cache of 1024, then from malloc()).
 *
 * @fut resolves with the job's result and value on the submitting loop's
 * thread, exactly as the future of proa_pool_submit() does; from then on
 * the pool never reads or writes the record again, so the done-callback
 * may proa_future_fini(&work->fut) and free or reuse @work.  @priv is the
 * pool's; the program neither reads nor writes it.
 */
struct proa_pool_work {
	struct proa_future fut;
	uint64_t priv[24];
};

/**
 * proa_pool_work_submit() - run @fn(@arg) on @lane of @pool (NULL: @loop's
 * default pool), the job's record in @work; @work->fut resolves with the
 * result on @loop's thread.
 * @work:  caller-owned; @work->fut made by proa_future_init() for @loop,
 *         pending, without a canceller.  @work must stay in place until
 *         @work->fut has resolved.
 * @flags: PROA_POOL_WAIT, as for proa_pool_submit_to().
 *
 * proa_future_cancel(&@work->fut) removes a job that has not started, as
 * for proa_pool_submit().  A @work already submitted and not yet resolved
 * is refused (-EBUSY: its future has the pool's canceller).
 *
 * Return: 0; -EAGAIN if the lane's queue is full (nothing was queued);
 *         -EINVAL for a NULL @loop, @work or @fn, a bad @lane or @flags,
 *         or a future of another loop; -EBUSY as above; -ESHUTDOWN once
 *         @pool is shut down; PROA_ECLOSED; -ENOMEM (a default pool that
 *         could not be made).
 * Thread: loop.
 */
PROA_API int proa_pool_work_submit(struct proa_pool *pool,
				   struct proa_loop *loop, enum proa_lane lane,
				   struct proa_pool_work *work, proa_pool_fn fn,
				   void *arg, unsigned flags);

/* proa_getaddrinfo() and proa_getnameinfo(): proa/dns.h. */

struct proa_pool_lane_stats {
	uint64_t queued;    /* submitted, not started (now) */
	uint64_t running;   /* running (now) */
	uint64_t completed; /* ran to the end */
	uint64_t rejected;  /* refused with -EAGAIN: queue full */
	uint64_t cancelled; /* removed before they started: cancelled,
			     * or refused by a shutdown (-ESHUTDOWN) */
	uint32_t threads;   /* workers started */
	uint32_t max_threads;
	uint32_t queue_limit;
	/* From submission (the loop iteration's time) to start, and from
	 * start to end, over the jobs so far; 0 if none.  Within 1/8. */
	uint64_t wait_p50_ns, wait_p99_ns;
	uint64_t run_p50_ns, run_p99_ns;
	/* Zeroed by the library: room for counters a later release adds
	 * (README, "ABI"). */
	uint64_t reserved[2];
};

struct proa_pool_stats {
	enum proa_placement placement;
	bool bound; /* false: hwloc found no topology, workers unbound */
	struct proa_pool_lane_stats lanes[PROA_LANE__COUNT];
	/* Zeroed by the library: room for counters a later release adds
	 * (README, "ABI"). */
	uint64_t reserved[4];
};

/**
 * proa_pool_stats() - a snapshot of @pool's counters.
 * Return: 0; -EINVAL.
 * Thread: any.
 */
PROA_API int proa_pool_stats(struct proa_pool *pool,
			     struct proa_pool_stats *out);

/**
 * proa_pool_describe() - the placement in words ("spread over 2 cores of
 * 1 NUMA node", "unbound: hwloc found no topology") and each lane's
 * workers, one per line, NUL-terminated.
 * Return: the length it needs (like snprintf); -EINVAL.
 * Thread: any.
 */
PROA_API int proa_pool_describe(struct proa_pool *pool, char *buf, size_t len);

/**
 * proa_pool_worker_affinity() - the CPUs worker @index of @lane was bound
 * to (the process's CPUs if unbound).
 * Return: 0; -ENOENT if that worker has not started; -EINVAL.
 * Thread: any.
 */
PROA_API int proa_pool_worker_affinity(struct proa_pool *pool,
				       enum proa_lane lane, unsigned index,
				       cpu_set_t *set);

/**
 * proa_pool_current_worker() - on a worker thread, its lane and index.
 * Return: 0; -ESRCH if the caller is not a pool worker.
 * Thread: any.
 */
PROA_API int proa_pool_current_worker(enum proa_lane *lane, unsigned *index);

/** proa_lane_name() - "cpu", "file", "dns". Thread: any. */
PROA_API const char *proa_lane_name(enum proa_lane lane);

/** proa_placement_name() - "near", "spread", "pack", "none". Thread: any. */
PROA_API const char *proa_placement_name(enum proa_placement p);

#ifdef __cplusplus
}
#endif

#endif /* PROA_POOL_H */
