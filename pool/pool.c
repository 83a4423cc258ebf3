/* SPDX-License-Identifier: MIT */
/*
 * pool/pool.c - the thread pool: lanes of workers with bounded queues, and
 * the path of a job:
 *
 *   submit (loop thread)   -> the client's pending list, no lock
 *   flush (loop hook)      -> the lane's queue: one lock, the wake-ups or
 *                             new workers the batch needs
 *   worker                 -> runs it, posts it back through the
 *                             loop's cross-thread queue (no lock)
 *   delivery (loop thread) -> resolves the future or completes the op
 *
 * A job that has not started can be cancelled: removed under its lane's
 * lock, and delivered with -ECANCELED in a later callback, never inline.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool_int.h"

static _Thread_local struct proa__pool_worker *tl_worker;

static const unsigned default_limit[PROA_LANE__COUNT] = {65536, 65536, 1024};

/* ---- histograms --------------------------------------------------------- */

static unsigned hist_bucket(uint64_t v)
{
	unsigned e;

	if (v < 8)
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v); /* >= 3 */
	return (e - 2) * 8 + (unsigned)((v >> (e - 3)) & 7);
}

/* Single writer: a relaxed load and store, no locked instruction. */
/* NOLINTNEXTLINE(readability-non-const-parameter): written atomically */
static void bump(uint64_t *p)
{
	__atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + 1,
			 __ATOMIC_RELAXED);
}

void proa__hist_add(struct proa__hist *h, uint64_t ns)
{
	bump(&h->b[hist_bucket(ns)]);
	bump(&h->n);
}

void proa__hist_merge(struct proa__hist *to, const struct proa__hist *from)
{
	unsigned b;

	for (b = 0; b < PROA__HIST_BUCKETS; b++)
		to->b[b] += __atomic_load_n(&from->b[b], __ATOMIC_RELAXED);
	to->n += __atomic_load_n(&from->n, __ATOMIC_RELAXED);
}

/* The upper bound of the bucket holding the @pct-th percentile. */
uint64_t proa__hist_pct(const struct proa__hist *h, unsigned pct)
{
	uint64_t want, seen = 0;
	unsigned b, e;

	if (h->n == 0)
		return 0;
	want = (h->n * pct + 99) / 100;
	for (b = 0; b < PROA__HIST_BUCKETS; b++) {
		seen += h->b[b];
		if (seen >= want)
			break;
	}
	if (b < 8)
		return b;
	e = b / 8 + 2;
	return ((uint64_t)(8 + b % 8 + 1) << (e - 3)) - 1;
}

/* ---- pools -------------------------------------------------------------- */

static void pool_unref(struct proa_pool *pool)
{
	unsigned i;

	if (atomic_fetch_sub_explicit(&pool->refs, 1, memory_order_acq_rel) !=
	    1)
		return;
	for (i = 0; i < PROA_LANE__COUNT; i++) {
		pthread_mutex_destroy(&pool->lanes[i].mu);
		pthread_cond_destroy(&pool->lanes[i].work);
		pthread_cond_destroy(&pool->lanes[i].space);
		free(pool->lanes[i].workers);
	}
	pthread_mutex_destroy(&pool->mu);
	proa__place_fini(&pool->place);
	free(pool);
}

static unsigned default_threads(enum proa_lane lane,
				const struct proa__place *pl)
{
	int n;

	switch (lane) {
	case PROA_LANE_CPU:
		n = CPU_COUNT(&pl->allowed);
		return n > 0 ? (unsigned)n : 1;
	case PROA_LANE_FILE:
		return 4;
	default:
		return 2;
	}
}

int proa_pool_new(struct proa_pool **out, const struct proa_pool_opts *opts)
{
	static const struct proa_pool_opts defaults;
	struct proa_pool *pool;
	struct proa__pool_lane *ln;
	unsigned i;
	int ret;

	if (!out || (opts && !PROA__RESERVED_ZERO(opts)))
		return -EINVAL;
	for (i = 0; opts && i < PROA_LANE__COUNT; i++)
		if (!PROA__RESERVED_ZERO(&opts->lanes[i]))
			return -EINVAL;
	*out = NULL;
	if (!opts)
		opts = &defaults;
	if ((unsigned)opts->placement >= PROA_PLACE__COUNT)
		return -EINVAL;
	for (i = 0; i < PROA_LANE__COUNT; i++) {
		if (opts->lanes[i].threads > PROA__POOL_MAX_THREADS ||
		    opts->lanes[i].queue > (1u << 30))
			return -EINVAL;
	}
	pool = calloc(1, sizeof(*pool));
	if (!pool)
		return -ENOMEM;
	ret = proa__place_init(&pool->place, opts->placement);
	if (ret < 0) {
		free(pool);
		return ret;
	}
	atomic_init(&pool->refs, 1);
	atomic_init(&pool->shut, false);
	pthread_mutex_init(&pool->mu, NULL);
	proa_list_init(&pool->clients);
	for (i = 0; i < PROA_LANE__COUNT; i++) {
		ln = &pool->lanes[i];
		pthread_mutex_init(&ln->mu, NULL);
		pthread_cond_init(&ln->work, NULL);
		pthread_cond_init(&ln->space, NULL);
		proa_list_init(&ln->queue);
		atomic_init(&ln->backlog, 0);
		atomic_init(&ln->rejected, 0);
		ln->max_threads = opts->lanes[i].threads
				      ? opts->lanes[i].threads
				      : default_threads(i, &pool->place);
		ln->limit = opts->lanes[i].queue ? opts->lanes[i].queue
						 : default_limit[i];
		ln->workers = calloc(ln->max_threads, sizeof(*ln->workers));
		if (!ln->workers) {
			pool_unref(pool);
			return -ENOMEM;
		}
	}
	*out = pool;
	return 0;
}

/* ---- workers ------------------------------------------------------------- */

static void job_deliver(void *arg);

/*
 * A worker sends each result home as soon as its job returns, before it
 * takes the next job: one exchange on the loop's queue, no lock, no CAS
 * (the job owns its handle), and a wake-up only if the loop sleeps.
 * Results are not held back to leave as one chain with later ones: the
 * next job may wait for what the loop does with this result (one worker,
 * job B waiting for the loop's answer to job A), and a held result would
 * then wait for ever; the exchange a chain would save is ~20 ns.
 *
 * post_back(): any thread, send a chain of results home.
 */
static void post_back(struct proa__ts_chain *c)
{
	int ret = proa__ts_chain_post_pinned(c);

	/* The client's reference keeps the loop open until every job is
	 * back, and proa_loop_shutdown() lets pinned results through, so
	 * this cannot fail; say so loudly if it ever does. */
	if (ret < 0)
		proa__log(PROA_LOG_ERROR,
			  "pool: a job's result could not reach its loop: %s",
			  proa_strerror(ret));
}

/* Any thread: send @j home on its own. */
static void post_one(struct proa__pool_job *j)
{
	struct proa__ts_chain c = {0};

	proa__ts_chain_add(&c, j->cl->loop, &j->h, job_deliver, j);
	post_back(&c);
}

static void *worker_main(void *p)
{
	struct proa__pool_worker *w = p;
	struct proa__pool_lane *ln = &w->pool->lanes[w->lane];
	struct proa__pool_job *j;
	uint64_t t0, t1 = 0;
	bool hot = false;
	char name[16];

	tl_worker = w;
	/* Named by itself: naming another thread writes its /proc comm
	 * file, which would be a file-system call on the loop thread that
	 * starts the worker. */
	snprintf(name, sizeof(name), "proa-%s-%u", proa_lane_name(w->lane),
		 w->index);
	pthread_setname_np(pthread_self(), name);
	pthread_mutex_lock(&ln->mu);
	for (;;) {
		while (proa_list_empty(&ln->queue) && !ln->shut) {
			ln->idle++;
			pthread_cond_wait(&ln->work, &ln->mu);
			ln->idle--;
			if (ln->signaled > 0)
				ln->signaled--;
			hot = false;
		}
		if (proa_list_empty(&ln->queue))
			break; /* shut down, and nothing left to drain */
		j = proa_container_of(ln->queue.next, struct proa__pool_job,
				      link);
		proa_list_del(&j->link);
		atomic_store_explicit(&j->state, PROA__JOB_RUNNING,
				      memory_order_relaxed);
		atomic_fetch_sub_explicit(&ln->backlog, 1,
					  memory_order_relaxed);
		bump(&w->started);
		if (ln->space_waiters)
			pthread_cond_signal(&ln->space);
		pthread_mutex_unlock(&ln->mu);

		/* Back to back, the end of one job is the start of the next:
		 * one clock read per job. */
		t0 = hot ? t1 : proa__now();
		j->value = NULL;
		j->res = j->fn(j->arg, &j->value);
		j->ran = true;
		t1 = proa__now();
		hot = true;
		proa__hist_add(&w->wait,
			       t0 > j->t_submit ? t0 - j->t_submit : 0);
		proa__hist_add(&w->run, t1 - t0);
		bump(&w->completed);
		atomic_store_explicit(&j->state, PROA__JOB_DONE,
				      memory_order_relaxed);
		post_one(j); /* @j is the loop's from here */
		pthread_mutex_lock(&ln->mu);
	}
	pthread_mutex_unlock(&ln->mu);
	return NULL;
}

/* Start one more worker on @ln; called with ln->mu held.  Workers block
 * every signal: signals are for the loops (signalfd) and the program. */
static int spawn_locked(struct proa_pool *pool, struct proa__pool_lane *ln)
{
	struct proa__pool_worker *w = &ln->workers[ln->nthreads];
	pthread_attr_t attr;
	sigset_t all, old;
	unsigned slot;
	int ret;

	w->pool = pool;
	w->lane = (unsigned)(ln - pool->lanes);
	w->index = ln->nthreads;
	w->bound = false;
	w->cpus = pool->place.allowed;
	pthread_attr_init(&attr);
	if (pool->place.bound) {
		slot = atomic_fetch_add_explicit(&pool->next_slot, 1,
						 memory_order_relaxed) %
		       pool->place.nslots;
		w->cpus = pool->place.slots[slot];
		w->bound = pthread_attr_setaffinity_np(&attr, sizeof(w->cpus),
						       &w->cpus) == 0;
		if (!w->bound)
			w->cpus = pool->place.allowed;
	}
	/* Unbound still means the process's CPUs, set explicitly: a thread
	 * inherits its creator's mask, and the creator may be a loop thread
	 * pinned to one CPU.  That is what proa_pool_worker_affinity()
	 * reports. */
	if (!w->bound)
		pthread_attr_setaffinity_np(&attr, sizeof(w->cpus), &w->cpus);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(&w->th, &attr, worker_main, w);
	if (ret == EINVAL) {
		/* The CPUs went away (cgroup, hotplug): run where the
		 * kernel lets us. */
		pthread_attr_destroy(&attr);
		pthread_attr_init(&attr);
		w->bound = false;
		w->cpus = pool->place.allowed;
		ret = pthread_create(&w->th, &attr, worker_main, w);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (ret != 0)
		return -ret;
	ln->nthreads++;
	return 0;
}

/* ---- clients: one per (loop, pool) --------------------------------------- */

static void client_flush(struct proa__loop_hook *h);
static void client_close(struct proa__loop_hook *h);

/* The key of a loop's client of its default pool (proa_pool_default());
 * a client of any other pool is keyed by the pool. */
static const char default_key;

static struct proa__pool_client *client_of(struct proa__loop_hook *h)
{
	return h ? proa_container_of(h, struct proa__pool_client, hook) : NULL;
}

static struct proa__pool_client *client_find(struct proa_loop *loop,
					     struct proa_pool *pool)
{
	struct proa__pool_client *cl;

	cl = client_of(proa__loop_hook_find(loop, pool));
	if (cl)
		return cl;
	cl = client_of(proa__loop_hook_find(loop, &default_key));
	return cl && cl->pool == pool ? cl : NULL;
}

static struct proa__pool_client *
client_new(struct proa_loop *loop, struct proa_pool *pool, const void *key)
{
	struct proa__pool_client *cl = calloc(1, sizeof(*cl));
	unsigned i;

	if (!cl)
		return NULL;
	cl->hook.key = key;
	cl->hook.flush = client_flush;
	cl->hook.close = client_close;
	cl->loop = loop;
	cl->pool = pool;
	for (i = 0; i < PROA_LANE__COUNT; i++)
		proa_list_init(&cl->pending[i]);
	atomic_fetch_add_explicit(&pool->refs, 1, memory_order_relaxed);
	pthread_mutex_lock(&pool->mu);
	proa_list_add_tail(&pool->clients, &cl->in_pool);
	pthread_mutex_unlock(&pool->mu);
	proa__loop_hook_add(loop, &cl->hook);
	return cl;
}

#define PROA__JOB_CACHE 1024

static void client_release(struct proa__pool_client *cl)
{
	struct proa__pool_job *j;

	proa__loop_hook_del(&cl->hook);
	pthread_mutex_lock(&cl->pool->mu);
	proa_list_del(&cl->in_pool);
	pthread_mutex_unlock(&cl->pool->mu);
	while ((j = cl->cache) != NULL) {
		cl->cache = (struct proa__pool_job *)j->link.next;
		free(j);
	}
	pool_unref(cl->pool);
	free(cl);
}

/* The loop closes with nothing in flight: let go of the pool, and shut a
 * default pool down (joining its idle workers). */
static void client_close(struct proa__loop_hook *h)
{
	struct proa__pool_client *cl =
	    proa_container_of(h, struct proa__pool_client, hook);
	struct proa_pool *pool = cl->pool;

	if (h->key == &default_key) {
		if (!atomic_load(&pool->shut))
			proa_pool_shutdown(pool, PROA_POOL_CANCEL);
		client_release(cl);
		pool_unref(pool); /* the owner's reference: the loop's */
		return;
	}
	client_release(cl);
}

static struct proa__pool_job *job_alloc(struct proa__pool_client *cl)
{
	struct proa__pool_job *j = cl->cache;

	if (j) {
		cl->cache = (struct proa__pool_job *)j->link.next;
		cl->ncache--;
		return j;
	}
	return malloc(sizeof(*j));
}

static void job_recycle(struct proa__pool_client *cl, struct proa__pool_job *j)
{
	if (cl->ncache >= PROA__JOB_CACHE) {
		free(j);
		return;
	}
	j->link.next = (struct proa_link *)cl->cache;
	cl->cache = j;
	cl->ncache++;
}

/* Loop thread: a job comes home. */
static void job_deliver(void *arg)
{
	struct proa__pool_job *j = arg;
	struct proa__pool_client *cl = j->cl;
	struct proa_loop *loop = cl->loop;
	struct proa_op *op = j->op;
	struct proa__ring *ring = j->ring;
	struct proa_future *fut = j->fut;
	int32_t res = j->res;
	void *value = j->value;

	if (!j->ran && j->drop)
		j->drop(j->arg);
	/* A caller's record is the caller's again once @fut resolves: it is
	 * neither kept nor read after this point. */
	if (!j->owned)
		job_recycle(cl, j);
	if (--cl->outstanding == 0)
		proa_loop_unref(loop);
	if (fut) {
		proa_future_set_canceller(fut, NULL, NULL);
		proa__future_resolve(fut, res, value);
	} else {
		/* The ring takes it from here: the callback runs once the
		 * loop reaps it, in its next iteration. */
		proa__exec_complete(ring, op, res);
	}
}

/* Loop thread: a job that will not run goes home with @res, later. */
static void job_finish_unrun(struct proa__pool_job *j, int32_t res)
{
	j->res = res;
	j->value = NULL;
	j->ran = false;
	atomic_store_explicit(&j->state, PROA__JOB_DONE, memory_order_relaxed);
	proa_loop_call_soon(j->cl->loop, &j->h, job_deliver, j);
}

/* Hand this client's jobs for @lane to the workers. */
static void flush_lane(struct proa__pool_client *cl, unsigned lane)
{
	struct proa__pool_lane *ln = &cl->pool->lanes[lane];
	struct proa__pool_job *j;
	struct proa_link batch;
	unsigned n = cl->npending[lane], wake, need, avail;

	/* No pass over the jobs: a burst of a million would otherwise touch
	 * every record once more (a cache miss each) before the first
	 * worker starts.  The count tells cancel they have left. */
	proa_list_init(&batch);
	proa__list_splice_tail(&cl->pending[lane], &batch);
	cl->npending[lane] = 0;
	cl->flushes[lane]++;
	pthread_mutex_lock(&ln->mu);
	if (ln->shut) {
		/* Accepted, never to start: cancelled, as the shutdown's
		 * own cancels count them. */
		ln->cancelled += n;
		pthread_mutex_unlock(&ln->mu);
		goto refuse;
	}
	proa__list_splice_tail(&batch, &ln->queue);
	/* Only workers not yet signalled can take this batch: counting one
	 * that was signalled by the last flush but has not run yet would
	 * leave a job queued behind a worker that then blocks in a job of
	 * its own, with no thread started for it (a lost wake-up whenever
	 * jobs block, as a hung open does). */
	avail = ln->idle > ln->signaled ? ln->idle - ln->signaled : 0;
	wake = n < avail ? n : avail;
	ln->signaled += wake;
	if (wake == avail && wake > 1)
		pthread_cond_broadcast(&ln->work);
	else
		for (need = wake; need > 0; need--)
			pthread_cond_signal(&ln->work);
	for (need = n - wake; need > 0 && ln->nthreads < ln->max_threads;
	     need--) {
		if (spawn_locked(cl->pool, ln) < 0)
			break;
	}
	if (ln->nthreads > 0) {
		pthread_mutex_unlock(&ln->mu);
		return;
	}
	/* Not one worker could start: nothing would ever run the queue
	 * (other loops' jobs included), so it all goes back, counted as
	 * cancelled: removed before they started. */
	proa__list_splice_tail(&ln->queue, &batch);
	for (struct proa_link *l = batch.next; l != &batch; l = l->next)
		ln->cancelled++;
	pthread_mutex_unlock(&ln->mu);
	proa__log(PROA_LOG_ERROR, "pool: no %s worker could start",
		  proa_lane_name(lane));
	while (!proa_list_empty(&batch)) {
		j = proa_container_of(batch.next, struct proa__pool_job, link);
		proa_list_del(&j->link);
		atomic_fetch_sub(&ln->backlog, 1);
		j->res = -EAGAIN;
		j->ran = false;
		atomic_store_explicit(&j->state, PROA__JOB_DONE,
				      memory_order_relaxed);
		post_one(j);
	}
	return;
refuse:
	while (!proa_list_empty(&batch)) {
		j = proa_container_of(batch.next, struct proa__pool_job, link);
		proa_list_del(&j->link);
		atomic_fetch_sub(&ln->backlog, 1);
		job_finish_unrun(j, -ESHUTDOWN);
	}
}

static void client_flush(struct proa__loop_hook *h)
{
	struct proa__pool_client *cl =
	    proa_container_of(h, struct proa__pool_client, hook);
	unsigned i;

	for (i = 0; i < PROA_LANE__COUNT; i++) {
		if (cl->npending[i])
			flush_lane(cl, i);
	}
}

/* ---- submitting and cancelling --------------------------------------------
 */

/* Take a place in @ln's bounded backlog. */
static bool reserve(struct proa__pool_lane *ln)
{
	unsigned n = atomic_load_explicit(&ln->backlog, memory_order_relaxed);

	do {
		if (n >= ln->limit)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(&ln->backlog, &n, n + 1,
							memory_order_relaxed,
							memory_order_relaxed));
	return true;
}

static int reserve_wait(struct proa__pool_client *cl, unsigned lane)
{
	struct proa__pool_lane *ln = &cl->pool->lanes[lane];
	int ret = 0;

	/* Our own gathered jobs first, or we could wait for ourselves. */
	if (cl->npending[lane])
		flush_lane(cl, lane);
	pthread_mutex_lock(&ln->mu);
	ln->space_waiters++;
	while (!ln->shut && !reserve(ln))
		pthread_cond_wait(&ln->space, &ln->mu);
	ln->space_waiters--;
	if (ln->shut)
		ret = -ESHUTDOWN;
	pthread_mutex_unlock(&ln->mu);
	return ret;
}

static void fut_cancel(struct proa_future *fut, void *arg)
{
	(void)fut;
	proa__pool_job_cancel(arg);
}

/* Accept a job; its record is @own (a caller's proa_pool_work) or, when
 * NULL, one from the cache or the heap. */
static int submit(struct proa_pool *pool, struct proa_loop *loop,
		  enum proa_lane lane, proa_pool_fn fn, void *arg,
		  void (*drop)(void *arg), struct proa_future *fut,
		  struct proa_op *op, unsigned flags,
		  struct proa__pool_job *own, struct proa__pool_job **out)
{
	struct proa__pool_client *cl;
	struct proa__pool_lane *ln;
	struct proa__pool_job *j;
	int ret;

	if (loop->closed)
		return PROA_ECLOSED;
	if (atomic_load(&pool->shut))
		return -ESHUTDOWN;
	cl = client_find(loop, pool);
	if (!cl) {
		cl = client_new(loop, pool, pool);
		if (!cl)
			return -ENOMEM;
	}
	ln = &pool->lanes[lane];
	if (!reserve(ln)) {
		if (!(flags & PROA_POOL_WAIT)) {
			atomic_fetch_add_explicit(&ln->rejected, 1,
						  memory_order_relaxed);
			return -EAGAIN;
		}
		ret = reserve_wait(cl, lane);
		if (ret < 0)
			return ret;
	}
	j = own ? own : job_alloc(cl);
	if (!j) {
		atomic_fetch_sub(&ln->backlog, 1);
		return -ENOMEM;
	}
	memset(j, 0, sizeof(*j));
	j->owned = own != NULL;
	j->cl = cl;
	j->fn = fn;
	j->arg = arg;
	j->drop = drop;
	j->fut = fut;
	j->op = op;
	j->lane = (uint8_t)lane;
	j->t_submit = loop->now;
	j->batch = cl->flushes[lane];
	atomic_init(&j->state, PROA__JOB_PENDING);
	proa_list_add_tail(&cl->pending[lane], &j->link);
	cl->npending[lane]++;
	if (cl->outstanding++ == 0)
		proa_loop_ref(loop);
	if (fut)
		proa_future_set_canceller(fut, fut_cancel, j);
	if (out)
		*out = j;
	return 0;
}

int proa__pool_submit(struct proa_pool *pool, struct proa_loop *loop,
		      enum proa_lane lane, proa_pool_fn fn, void *arg,
		      void (*drop)(void *arg), struct proa_future *fut,
		      struct proa_op *op, unsigned flags,
		      struct proa__pool_job **out)
{
	return submit(pool, loop, lane, fn, arg, drop, fut, op, flags, NULL,
		      out);
}

bool proa__pool_job_cancel(struct proa__pool_job *j)
{
	struct proa__pool_client *cl = j->cl;
	struct proa__pool_lane *ln = &cl->pool->lanes[j->lane];
	unsigned state = atomic_load_explicit(&j->state, memory_order_relaxed);

	if (state == PROA__JOB_PENDING && j->batch == cl->flushes[j->lane]) {
		/* Still ours: no other thread has seen it. */
		proa_list_del(&j->link);
		cl->npending[j->lane]--;
		pthread_mutex_lock(&ln->mu);
		atomic_fetch_sub(&ln->backlog, 1);
		ln->cancelled++;
		if (ln->space_waiters)
			pthread_cond_signal(&ln->space);
		pthread_mutex_unlock(&ln->mu);
		job_finish_unrun(j, -ECANCELED);
		return true;
	}
	if (state != PROA__JOB_PENDING)
		return false;
	/* On the lane's queue: a worker may take it meanwhile. */
	pthread_mutex_lock(&ln->mu);
	if (atomic_load_explicit(&j->state, memory_order_relaxed) !=
	    PROA__JOB_PENDING) {
		pthread_mutex_unlock(&ln->mu); /* a worker took it */
		return false;
	}
	proa_list_del(&j->link);
	atomic_fetch_sub(&ln->backlog, 1);
	ln->cancelled++;
	if (ln->space_waiters)
		pthread_cond_signal(&ln->space);
	pthread_mutex_unlock(&ln->mu);
	job_finish_unrun(j, -ECANCELED);
	return true;
}

static int check_submit(struct proa_loop *loop, enum proa_lane lane,
			proa_pool_fn fn, struct proa_future *fut,
			const char *func)
{
	if (!loop || !fn || !fut || (unsigned)lane >= PROA_LANE__COUNT)
		return -EINVAL;
	PROA__LOOP_CHECK_AS(loop, func);
	if (fut->priv.loop != loop)
		return -EINVAL;
	if (!proa__future_free(fut))
		return -EBUSY;
	return 0;
}

int proa_pool_submit_to(struct proa_pool *pool, struct proa_loop *loop,
			enum proa_lane lane, proa_pool_fn fn, void *arg,
			struct proa_future *fut, unsigned flags)
{
	int ret = check_submit(loop, lane, fn, fut, __func__);

	if (ret < 0)
		return ret;
	if (!pool || (flags & ~PROA_POOL_WAIT))
		return -EINVAL;
	return proa__pool_submit(pool, loop, lane, fn, arg, NULL, fut, NULL,
				 flags, NULL);
}

int proa_pool_default(struct proa_pool **out, struct proa_loop *loop)
{
	struct proa__pool_client *cl;
	struct proa_pool *pool;
	int ret;

	if (!loop || !out)
		return -EINVAL;
	PROA__LOOP_CHECK(loop);
	if (loop->closed)
		return PROA_ECLOSED;
	cl = client_of(proa__loop_hook_find(loop, &default_key));
	if (cl) {
		*out = cl->pool;
		return 0;
	}
	ret = proa_pool_new(&pool, NULL);
	if (ret < 0)
		return ret;
	pool->is_default = true;
	cl = client_new(loop, pool, &default_key);
	if (!cl) {
		pool_unref(pool);
		return -ENOMEM;
	}
	*out = pool;
	return 0;
}

int proa_pool_submit(struct proa_loop *loop, enum proa_lane lane,
		     proa_pool_fn fn, void *arg, struct proa_future *fut)
{
	struct proa_pool *pool;
	int ret = check_submit(loop, lane, fn, fut, __func__);

	if (ret < 0)
		return ret;
	ret = proa_pool_default(&pool, loop);
	if (ret < 0)
		return ret;
	return proa__pool_submit(pool, loop, lane, fn, arg, NULL, fut, NULL, 0,
				 NULL);
}

int proa_pool_work_submit(struct proa_pool *pool, struct proa_loop *loop,
			  enum proa_lane lane, struct proa_pool_work *work,
			  proa_pool_fn fn, void *arg, unsigned flags)
{
	int ret;

	if (!work)
		return -EINVAL;
	ret = check_submit(loop, lane, fn, &work->fut, __func__);
	if (ret < 0)
		return ret;
	if (flags & ~PROA_POOL_WAIT)
		return -EINVAL;
	if (!pool) {
		ret = proa_pool_default(&pool, loop);
		if (ret < 0)
			return ret;
	}
	return submit(pool, loop, lane, fn, arg, NULL, &work->fut, NULL, flags,
		      (struct proa__pool_job *)(void *)work->priv, NULL);
}

/* ---- shutdown --------------------------------------------------------------
 */

int proa_pool_shutdown(struct proa_pool *pool, enum proa_pool_shutdown how)
{
	struct proa__pool_client *cl;
	struct proa__pool_lane *ln;
	struct proa__pool_job *j;
	struct proa_link gone, *l;
	unsigned i, k;
	bool was;

	if (!pool || (unsigned)how > PROA_POOL_CANCEL)
		return -EINVAL;
	if (tl_worker && tl_worker->pool == pool)
		return -EDEADLK;
	/* The caller's own loops hand over what they gathered, so that a
	 * drain runs it. */
	pthread_mutex_lock(&pool->mu);
	was = atomic_exchange(&pool->shut, true);
	if (!was) {
		for (l = pool->clients.next; l != &pool->clients; l = l->next) {
			cl = proa_container_of(l, struct proa__pool_client,
					       in_pool);
			if (proa__loop_on_owner_thread(cl->loop))
				client_flush(&cl->hook);
		}
	}
	pthread_mutex_unlock(&pool->mu);
	if (was)
		return -EALREADY;
	proa_list_init(&gone);
	for (i = 0; i < PROA_LANE__COUNT; i++) {
		ln = &pool->lanes[i];
		pthread_mutex_lock(&ln->mu);
		ln->shut = true;
		if (how == PROA_POOL_CANCEL) {
			for (l = ln->queue.next; l != &ln->queue; l = l->next) {
				atomic_store_explicit(
				    &proa_container_of(l, struct proa__pool_job,
						       link)
					 ->state,
				    PROA__JOB_DONE, memory_order_relaxed);
				atomic_fetch_sub(&ln->backlog, 1);
				ln->cancelled++;
			}
			proa__list_splice_tail(&ln->queue, &gone);
		}
		pthread_cond_broadcast(&ln->work);
		pthread_cond_broadcast(&ln->space);
		pthread_mutex_unlock(&ln->mu);
	}
	while (!proa_list_empty(&gone)) {
		j = proa_container_of(gone.next, struct proa__pool_job, link);
		proa_list_del(&j->link);
		j->res = -ECANCELED;
		j->value = NULL;
		j->ran = false;
		post_one(j);
	}
	/* No worker can start now (flush sees @shut under the lock). */
	for (i = 0; i < PROA_LANE__COUNT; i++) {
		ln = &pool->lanes[i];
		for (k = 0; k < ln->nthreads; k++)
			pthread_join(ln->workers[k].th, NULL);
	}
	return 0;
}

int proa_pool_free(struct proa_pool *pool)
{
	int ret;

	if (!pool)
		return 0;
	if (pool->is_default)
		return -EINVAL;
	if (tl_worker && tl_worker->pool == pool)
		return -EDEADLK;
	ret = proa_pool_shutdown(pool, PROA_POOL_CANCEL);
	if (ret < 0 && ret != -EALREADY)
		return ret;
	pool_unref(pool);
	return 0;
}

/* ---- what the pool knows about itself ----------------------------------- */

int proa_pool_stats(struct proa_pool *pool, struct proa_pool_stats *out)
{
	struct proa_pool_lane_stats *s;
	struct proa__pool_worker *w;
	struct proa__pool_lane *ln;
	struct proa__hist *wait, *run;
	uint64_t started;
	unsigned i, k;

	if (!pool || !out)
		return -EINVAL;
	wait = calloc(2, sizeof(*wait));
	if (!wait)
		return -ENOMEM;
	run = wait + 1;
	memset(out, 0, sizeof(*out));
	out->placement = pool->place.policy;
	out->bound = pool->place.bound;
	for (i = 0; i < PROA_LANE__COUNT; i++) {
		ln = &pool->lanes[i];
		s = &out->lanes[i];
		memset(wait, 0, 2 * sizeof(*wait));
		started = 0;
		pthread_mutex_lock(&ln->mu);
		s->queued = atomic_load(&ln->backlog);
		s->rejected = atomic_load(&ln->rejected);
		s->cancelled = ln->cancelled;
		s->threads = ln->nthreads;
		s->max_threads = ln->max_threads;
		s->queue_limit = ln->limit;
		for (k = 0; k < ln->nthreads; k++) {
			w = &ln->workers[k];
			started +=
			    __atomic_load_n(&w->started, __ATOMIC_RELAXED);
			s->completed +=
			    __atomic_load_n(&w->completed, __ATOMIC_RELAXED);
			proa__hist_merge(wait, &w->wait);
			proa__hist_merge(run, &w->run);
		}
		pthread_mutex_unlock(&ln->mu);
		s->running =
		    started > s->completed ? started - s->completed : 0;
		s->wait_p50_ns = proa__hist_pct(wait, 50);
		s->wait_p99_ns = proa__hist_pct(wait, 99);
		s->run_p50_ns = proa__hist_pct(run, 50);
		s->run_p99_ns = proa__hist_pct(run, 99);
	}
	free(wait);
	return 0;
}

int proa_pool_describe(struct proa_pool *pool, char *buf, size_t len)
{
	struct proa_pool_stats st;
	size_t used = 0;
	unsigned i;
	int n;

	if (!pool || (!buf && len))
		return -EINVAL;
	n = proa_pool_stats(pool, &st);
	if (n < 0)
		return n;
	PROA__EMIT(buf, len, &used, "placement: %s (%s)\n",
		   proa_placement_name(st.placement), pool->place.note);
	for (i = 0; i < PROA_LANE__COUNT; i++)
		PROA__EMIT(
		    buf, len, &used,
		    "lane %s: %u of %u workers, queue %u/%u, %llu done\n",
		    proa_lane_name(i), st.lanes[i].threads,
		    st.lanes[i].max_threads, (unsigned)st.lanes[i].queued,
		    st.lanes[i].queue_limit,
		    (unsigned long long)st.lanes[i].completed);
	return (int)used;
}

int proa_pool_worker_affinity(struct proa_pool *pool, enum proa_lane lane,
			      unsigned index, cpu_set_t *set)
{
	struct proa__pool_lane *ln;
	int ret = 0;

	if (!pool || !set || (unsigned)lane >= PROA_LANE__COUNT)
		return -EINVAL;
	ln = &pool->lanes[lane];
	pthread_mutex_lock(&ln->mu);
	if (index >= ln->nthreads)
		ret = -ENOENT;
	else
		*set = ln->workers[index].cpus;
	pthread_mutex_unlock(&ln->mu);
	return ret;
}

int proa_pool_current_worker(enum proa_lane *lane, unsigned *index)
{
	if (!tl_worker)
		return -ESRCH;
	if (lane)
		*lane = (enum proa_lane)tl_worker->lane;
	if (index)
		*index = tl_worker->index;
	return 0;
}

const char *proa_lane_name(enum proa_lane lane)
{
	static const char *const names[] = {"cpu", "file", "dns"};

	return (unsigned)lane < PROA_LANE__COUNT ? names[lane] : "?";
}

const char *proa_placement_name(enum proa_placement p)
{
	static const char *const names[] = {"near", "spread", "pack", "none"};

	return (unsigned)p < PROA_PLACE__COUNT ? names[p] : "?";
}
