/* SPDX-License-Identifier: MIT */
/*
 * pool/pool_int.h - private to pool/: the pool, its lanes and workers, the
 * per-loop client that gathers an iteration's jobs, and the job record.
 *
 * Threads and locks:
 *  - a lane's queue, counters and histograms belong to its mutex @mu;
 *  - @backlog (jobs accepted and not started) and @rejected are atomics,
 *    so that a submission can be refused without the lock;
 *  - a client and its pending lists belong to its loop's thread;
 *  - a job's @state is written under its lane's lock once the job has
 *    left its client (PENDING -> RUNNING by a worker, PENDING -> DONE by a
 *    cancel or a shutdown), and read by the loop thread; it is atomic so
 *    those reads are defined;
 *  - whether a PENDING job has left its client is told by its @batch
 *    against the client's @flushes, both the loop thread's: a hand-over
 *    moves a whole list at once and writes no job;
 *  - a pool lives while its owner or any client holds a reference.
 */
#ifndef PROA_POOL_INT_H
#define PROA_POOL_INT_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "proa/pool.h"
#include "proactor/proactor_int.h"

#define PROA__POOL_MAX_THREADS 1024
#define PROA__HIST_BUCKETS 496

/* Log-linear histogram of nanoseconds: 8 buckets per power of two.  One
 * writer (its worker) with relaxed atomic stores, any number of readers
 * with relaxed loads: the counts are exact, a snapshot only approximate. */
struct proa__hist {
	uint64_t n;
	uint64_t b[PROA__HIST_BUCKETS];
};

void proa__hist_add(struct proa__hist *h, uint64_t ns);
/* Add @from into @to (a private snapshot). */
void proa__hist_merge(struct proa__hist *to, const struct proa__hist *from);
uint64_t proa__hist_pct(const struct proa__hist *h, unsigned pct);

struct proa__pool_worker {
	pthread_t th;
	struct proa_pool *pool;
	unsigned lane;
	unsigned index;
	bool bound;
	cpu_set_t cpus; /* bound to these (the process's CPUs if unbound) */
	/* Written by the worker alone, before each result is posted, so a
	 * delivered job is always counted. */
	uint64_t started, completed;
	struct proa__hist wait, run;
};

struct proa__pool_lane {
	pthread_mutex_t mu;
	pthread_cond_t work;  /* workers wait for jobs */
	pthread_cond_t space; /* PROA_POOL_WAIT submitters wait for room */
	struct proa_link queue;
	/* Workers waiting on @work, and how many of them have been signalled
	 * but not yet run: a signalled worker still counts in @idle until it
	 * wakes, so @idle - @signaled is what a new batch can count on. */
	unsigned idle;
	unsigned signaled;
	unsigned space_waiters;
	unsigned nthreads;
	unsigned max_threads;
	unsigned limit;
	bool shut;
	atomic_uint backlog; /* accepted, not started: the bounded quantity */
	atomic_uint_fast64_t rejected;
	uint64_t cancelled;
	struct proa__pool_worker *workers; /* [max_threads] */
};

/* Where workers go: a list of CPU sets taken round-robin. */
struct proa__place {
	enum proa_placement policy;
	bool bound;
	unsigned nslots;
	cpu_set_t *slots;
	cpu_set_t allowed; /* the process's CPUs */
	char note[160];
};

int proa__place_init(struct proa__place *pl, enum proa_placement policy);
void proa__place_fini(struct proa__place *pl);

struct proa_pool {
	atomic_int refs; /* the owner's and one per client */
	atomic_bool shut;
	bool is_default;
	pthread_mutex_t mu; /* @clients */
	struct proa_link clients;
	atomic_uint next_slot; /* placement: the next worker's slot */
	struct proa__place place;
	struct proa__pool_lane lanes[PROA_LANE__COUNT];
};

/* The jobs one loop submits to one pool; loop thread only. */
struct proa__pool_client {
	struct proa__loop_hook hook; /* flush: hand over pending jobs */
	struct proa_link in_pool;    /* pool->clients, under pool->mu */
	struct proa_loop *loop;
	struct proa_pool *pool;
	struct proa_link pending[PROA_LANE__COUNT];
	unsigned npending[PROA_LANE__COUNT];
	/* Hand-overs so far, per lane: pending[lane] holds exactly the jobs
	 * whose batch equals it.  64 bits: a job may wait in a lane's queue
	 * through any number of later hand-overs. */
	uint64_t flushes[PROA_LANE__COUNT];
	unsigned outstanding; /* accepted, not delivered: holds a loop ref */
	struct proa__pool_job *cache;
	unsigned ncache;
};

enum {
	/* not started: on its client's list, or on its lane's queue once
	 * its batch has been handed over (@batch) */
	PROA__JOB_PENDING = 1,
	PROA__JOB_RUNNING,
	PROA__JOB_DONE, /* result set; delivery on its way */
};

struct proa__pool_job {
	struct proa_link link;
	struct proa_handle h; /* delivery on the loop thread */
	struct proa__pool_client *cl;
	proa_pool_fn fn;
	void *arg;
	void (*drop)(void *arg); /* frees @arg if @fn never runs */
	struct proa_future *fut; /* resolved with the result, or */
	struct proa_op *op;	 /* completed with it (file fallback) */
	struct proa__ring *ring; /* @op's: it comes home there */
	void *value;
	uint64_t t_submit;
	uint64_t batch; /* its client's flushes[lane] when submitted */
	int32_t res;
	uint8_t lane;
	bool ran;
	bool owned; /* in a caller's proa_pool_work: never recycled */
	atomic_uchar state;
};

_Static_assert(sizeof(struct proa__pool_job) <=
		   sizeof(((struct proa_pool_work *)0)->priv),
	       "struct proa_pool_work's priv holds a job record");
_Static_assert(_Alignof(struct proa__pool_job) <= _Alignof(uint64_t),
	       "struct proa_pool_work's priv is aligned for a job record");

/* Accept a job for @fut or @op (exactly one of them); its record comes
 * from the client's cache or the heap. */
int proa__pool_submit(struct proa_pool *pool, struct proa_loop *loop,
		      enum proa_lane lane, proa_pool_fn fn, void *arg,
		      void (*drop)(void *arg), struct proa_future *fut,
		      struct proa_op *op, unsigned flags,
		      struct proa__pool_job **out);
/* Remove @j if it has not started; its delivery then says -ECANCELED.
 * Return: true if removed. */
bool proa__pool_job_cancel(struct proa__pool_job *j);

/* ---- dns.c: the pool path of proa_getaddrinfo() (dns/) ------------------ */

/* getaddrinfo(3) on @loop's default pool's DNS lane; arguments checked by
 * the caller, strings and hints copied. */
int proa__pool_getaddrinfo(struct proa_loop *loop, const char *host,
			   const char *service, const struct addrinfo *hints,
			   struct proa_future *fut);
/* "localhost" and "*.localhost" (RFC 6761 section 6.3). */
bool proa__dns_is_localhost(const char *host);
/* getaddrinfo's and getnameinfo's EAI_* codes as proa results. */
int32_t proa__gai_to_res(int rc, int saved_errno);

/* Tests only: pretend hwloc found nothing. */
extern bool proa__pool_fault_no_topology;

#endif /* PROA_POOL_INT_H */
