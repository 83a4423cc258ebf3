/* SPDX-License-Identifier: MIT */
/*
 * The thread pool (docs/reliability.md P20, P23): 1M jobs each delivered
 * exactly once on the loop thread; 98 queued jobs cancelled behind 2 blocked
 * ones; lanes that do not wait for each other; a full queue that refuses (or
 * makes the caller wait) and loses nothing; workers bound as the placement
 * says; shutdown and free with work pending leaving no thread behind;
 * getaddrinfo; and file operations the ring "lacks" run on the file lane.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pool/pool_int.h"
#include "proa_test.h"

static int baseline_threads;

static void *nothing(void *arg)
{
	return arg;
}

static int group_setup(void **state)
{
	pthread_t th;

	(void)state;
	/* A first thread makes sanitizer runtimes start their own helper
	 * threads: count after that. */
	if (pthread_create(&th, NULL, nothing, NULL) != 0 ||
	    pthread_join(th, NULL) != 0)
		return -1;
	baseline_threads = proa_test_threads();
	return 0;
}

/* Workers are joined before shutdown returns, but a joined thread can
 * still be listed in /proc/self/task for a moment: the kernel wakes the
 * joiner (CLONE_CHILD_CLEARTID) before it has finished reaping the task,
 * and nothing tells us when it has.  So poll, for at most 5 s. */
static void assert_no_worker_left(void)
{
	struct timespec ms = {0, 1000000};
	int i, n = proa_test_threads();

	for (i = 0; i < 5000 && n != baseline_threads; i++) {
		nanosleep(&ms, NULL);
		n = proa_test_threads();
	}
	assert_int_equal(n, baseline_threads);
}

static struct proa_pool *new_pool(enum proa_placement place, unsigned cpu,
				  unsigned queue)
{
	struct proa_pool_opts opts = {.placement = place};
	struct proa_pool *pool = NULL;

	opts.lanes[PROA_LANE_CPU].threads = cpu;
	opts.lanes[PROA_LANE_CPU].queue = queue;
	assert_res(proa_pool_new(&pool, &opts), 0);
	return pool;
}

static void drive_until(struct proa_loop *loop, const unsigned *count,
			unsigned want)
{
	while (*count < want)
		assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
}

/* A gate that jobs wait on: opened by the test, never by time. */
struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool open;
	unsigned started;
	sem_t started_sem;
};

static void gate_init(struct gate *g)
{
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
	g->open = false;
	g->started = 0;
	sem_init(&g->started_sem, 0, 0);
}

static void gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->mu);
	g->open = true;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

static void gate_fini(struct gate *g)
{
	pthread_mutex_destroy(&g->mu);
	pthread_cond_destroy(&g->cv);
	sem_destroy(&g->started_sem);
}

static int32_t gate_job(void *arg, void **value)
{
	struct gate *g = arg;

	(void)value;
	sem_post(&g->started_sem);
	pthread_mutex_lock(&g->mu);
	while (!g->open)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
	return 7;
}

/* Holds its worker until the lane is shut down, so that a shutdown meets
 * the jobs behind it still queued. */
struct until_shut {
	struct proa__pool_lane *ln;
	sem_t started;
};

static void until_shut_init(struct until_shut *u, struct proa_pool *pool)
{
	u->ln = &pool->lanes[PROA_LANE_CPU];
	sem_init(&u->started, 0, 0);
}

static int32_t until_shut_job(void *arg, void **value)
{
	struct until_shut *u = arg;
	struct proa__pool_lane *ln = u->ln;
	bool shut = false;

	(void)value;
	sem_post(&u->started);
	while (!shut) {
		pthread_mutex_lock(&ln->mu);
		shut = ln->shut;
		pthread_mutex_unlock(&ln->mu);
		if (!shut)
			sched_yield();
	}
	return 7;
}

static atomic_uint plain_runs;

static int32_t plain_job(void *arg, void **value)
{
	atomic_fetch_add(&plain_runs, 1);
	*value = arg;
	return 1;
}

struct done_count {
	unsigned n;
	pthread_t thread;
	bool wrong_thread;
};

static void count_done(struct proa_future *fut, void *arg)
{
	struct done_count *d = arg;

	(void)fut;
	if (!pthread_equal(pthread_self(), d->thread))
		d->wrong_thread = true;
	d->n++;
}

/* ---- 1M jobs ----------------------------------------------------------------
 */

#define MILLION 1000000u
#define WINDOW 4096u

struct million {
	struct proa_loop *loop;
	struct proa_pool *pool;
	struct proa_future futs[WINDOW];
	unsigned char *ran;	  /* by workers, one byte per job */
	unsigned char *delivered; /* on the loop */
	unsigned next, done;
	pthread_t loop_thread;
	unsigned bad;
};

static struct million *g_million; /* read-only for workers once set */

static int32_t million_job(void *arg, void **value)
{
	uintptr_t i = (uintptr_t)arg;

	(void)value;
	g_million->ran[i]++;
	return (int32_t)i;
}

static void million_submit(struct million *m, unsigned slot);

static void million_done(struct proa_future *fut, void *arg)
{
	struct million *m = g_million;
	unsigned slot = (unsigned)(uintptr_t)arg;
	int res = proa_future_result(fut, NULL);

	if (!pthread_equal(pthread_self(), m->loop_thread) || res < 0 ||
	    (unsigned)res >= MILLION)
		m->bad++;
	else
		m->delivered[res]++;
	m->done++;
	if (proa_future_fini(fut) != 0)
		m->bad++;
	if (m->next < MILLION)
		million_submit(m, slot);
}

static void million_submit(struct million *m, unsigned slot)
{
	struct proa_future *fut = &m->futs[slot];
	uintptr_t i = m->next++;

	proa_future_init(fut, m->loop);
	if (proa_pool_submit_to(m->pool, m->loop, PROA_LANE_CPU, million_job,
				(void *)i, fut, 0) != 0 ||
	    proa_future_add_done_callback(fut, million_done,
					  (void *)(uintptr_t)slot) != 0)
		m->bad++;
}

static void test_million_jobs_each_delivered_once_on_the_loop(void **state)
{
	struct million *m = calloc(1, sizeof(*m));
	struct proa_pool_stats st;
	unsigned i;

	assert_non_null(m);
	m->loop = proa_test_loop_new();
	m->pool = new_pool(PROA_PLACE_SPREAD, 0, WINDOW);
	m->ran = calloc(MILLION, 1);
	m->delivered = calloc(MILLION, 1);
	assert_non_null(m->ran);
	assert_non_null(m->delivered);
	m->loop_thread = pthread_self();
	g_million = m;
	for (i = 0; i < WINDOW; i++)
		million_submit(m, i);
	assert_res(proa_loop_run(m->loop, PROA_RUN_DEFAULT), 0);
	assert_int_equal(m->bad, 0);
	assert_int_equal(m->done, MILLION);
	for (i = 0; i < MILLION; i++) {
		if (m->ran[i] != 1 || m->delivered[i] != 1)
			fail_msg("job %u ran %u times, delivered %u times", i,
				 m->ran[i], m->delivered[i]);
	}
	assert_res(proa_pool_stats(m->pool, &st), 0);
	assert_int_equal(st.lanes[PROA_LANE_CPU].completed, MILLION);
	assert_int_equal(st.lanes[PROA_LANE_CPU].queued, 0);
	assert_int_equal(st.lanes[PROA_LANE_CPU].running, 0);
	assert_int_equal(st.lanes[PROA_LANE_CPU].rejected, 0);
	assert_true(st.lanes[PROA_LANE_CPU].wait_p50_ns <=
		    st.lanes[PROA_LANE_CPU].wait_p99_ns);
	assert_res(proa_pool_free(m->pool), 0);
	assert_no_worker_left();
	proa_test_loop_close(m->loop);
	free(m->ran);
	free(m->delivered);
	free(m);
	(void)state;
}

/* ---- cancel -----------------------------------------------------------------
 */

static void test_cancel_98_queued_behind_2_blocked(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_pool *pool = new_pool(PROA_PLACE_NONE, 2, 0);
	struct proa_future *futs = calloc(100, sizeof(*futs));
	struct done_count d = {.thread = pthread_self()};
	struct proa_pool_stats st;
	struct gate g;
	unsigned i, cancelled = 0, normal = 0;

	assert_non_null(futs);
	gate_init(&g);
	atomic_store(&plain_runs, 0);
	for (i = 0; i < 100; i++) {
		proa_future_init(&futs[i], loop);
		assert_res(proa_pool_submit_to(pool, loop, PROA_LANE_CPU,
					       i < 2 ? gate_job : plain_job,
					       i < 2 ? (void *)&g : NULL,
					       &futs[i], 0),
			   0);
		assert_res(
		    proa_future_add_done_callback(&futs[i], count_done, &d), 0);
	}
	/* One iteration hands them over; then both workers are stuck. */
	assert_int_equal(proa_loop_run(loop, PROA_RUN_NOWAIT), 1);
	sem_wait(&g.started_sem);
	sem_wait(&g.started_sem);
	for (i = 0; i < 100; i++)
		assert_res(proa_future_cancel(&futs[i]), 0);
	/* The running two are not interrupted, so the loop is still busy
	 * and their futures cannot be released. */
	assert_res(proa_loop_close(loop), -EBUSY);
	assert_res(proa_future_fini(&futs[0]), -EBUSY);
	drive_until(loop, &d.n, 98);
	assert_int_equal(proa_future_state(&futs[0]), PROA_FUTURE_PENDING);
	assert_int_equal(proa_future_state(&futs[1]), PROA_FUTURE_PENDING);
	assert_res(proa_loop_close(loop), -EBUSY);
	gate_open(&g);
	drive_until(loop, &d.n, 100);
	assert_false(d.wrong_thread);
	for (i = 0; i < 100; i++) {
		int res = proa_future_result(&futs[i], NULL);

		if (res == -ECANCELED) {
			cancelled++;
			assert_true(i >= 2);
		} else {
			assert_int_equal(res, 7);
			assert_true(i < 2);
			normal++;
		}
		assert_res(proa_future_fini(&futs[i]), 0);
	}
	assert_int_equal(cancelled, 98);
	assert_int_equal(normal, 2);
	assert_int_equal(atomic_load(&plain_runs), 0);
	assert_res(proa_pool_stats(pool, &st), 0);
	assert_int_equal(st.lanes[PROA_LANE_CPU].cancelled, 98);
	assert_int_equal(st.lanes[PROA_LANE_CPU].completed, 2);
	assert_res(proa_pool_free(pool), 0);
	assert_no_worker_left();
	proa_test_loop_close(loop);
	gate_fini(&g);
	free(futs);
	(void)state;
}

/* Cancelled before the iteration hands it over: never reaches a worker. */
static void test_cancel_before_handover_and_after_start(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_future fut;
	struct done_count d = {.thread = pthread_self()};
	struct gate g;

	gate_init(&g);
	atomic_store(&plain_runs, 0);
	proa_future_init(&fut, loop);
	assert_res(proa_pool_submit(loop, PROA_LANE_CPU, plain_job, NULL, &fut),
		   0);
	assert_res(proa_future_add_done_callback(&fut, count_done, &d), 0);
	assert_res(proa_future_cancel(&fut), 0);
	/* Never inline. */
	assert_int_equal(d.n, 0);
	drive_until(loop, &d.n, 1);
	assert_res(proa_future_result(&fut, NULL), -ECANCELED);
	assert_int_equal(atomic_load(&plain_runs), 0);
	assert_res(proa_future_fini(&fut), 0);

	/* Cancelled while running: the result still arrives. */
	proa_future_init(&fut, loop);
	assert_res(proa_pool_submit(loop, PROA_LANE_CPU, gate_job, &g, &fut),
		   0);
	assert_int_equal(proa_loop_run(loop, PROA_RUN_NOWAIT), 1);
	sem_wait(&g.started_sem);
	assert_res(proa_future_cancel(&fut), 0);
	assert_res(proa_future_cancel(&fut), 0);
	gate_open(&g);
	assert_res(proa_loop_run_until_complete(loop, &fut), 0);
	assert_int_equal(proa_future_state(&fut), PROA_FUTURE_DONE);
	assert_int_equal(proa_future_result(&fut, NULL), 7);
	assert_res(proa_future_fini(&fut), 0);
	/* The default pool goes with the loop, and its workers with it. */
	proa_test_loop_close(loop);
	assert_no_worker_left();
	gate_fini(&g);
	(void)state;
}

/*
 * Cancel tells a job still gathered by the loop from one handed over to
 * the lane, whatever was handed over in between: the first leaves its
 * client's list (and count), the second the lane's queue under its lock.
 * Jobs 1-3 are handed over one iteration each behind a worker held by
 * job 0; jobs 4 and 5 are gathered and not yet handed over.
 */
static void test_cancel_tells_gathered_from_queued_jobs(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_pool *pool = new_pool(PROA_PLACE_NONE, 1, 0);
	struct proa__pool_lane *ln = &pool->lanes[PROA_LANE_CPU];
	struct done_count d = {.thread = pthread_self()};
	struct proa__pool_client *cl;
	struct proa_future futs[6];
	struct proa_pool_stats st;
	struct gate g;
	unsigned i;

	gate_init(&g);
	atomic_store(&plain_runs, 0);
	for (i = 0; i < 6; i++) {
		proa_future_init(&futs[i], loop);
		assert_res(proa_pool_submit_to(pool, loop, PROA_LANE_CPU,
					       i == 0 ? gate_job : plain_job,
					       i == 0 ? (void *)&g : NULL,
					       &futs[i], 0),
			   0);
		assert_res(
		    proa_future_add_done_callback(&futs[i], count_done, &d), 0);
		if (i < 4)
			assert_int_equal(proa_loop_run(loop, PROA_RUN_NOWAIT),
					 1);
		if (i == 0)
			sem_wait(&g.started_sem);
	}
	cl = proa_container_of(proa__loop_hook_find(loop, pool),
			       struct proa__pool_client, hook);
	assert_int_equal(cl->npending[PROA_LANE_CPU], 2);
	assert_int_equal(atomic_load(&ln->backlog), 5);

	/* The oldest queued job: the lane's, not the client's. */
	assert_res(proa_future_cancel(&futs[1]), 0);
	assert_int_equal(cl->npending[PROA_LANE_CPU], 2);
	assert_int_equal(atomic_load(&ln->backlog), 4);
	/* A gathered one: the client's. */
	assert_res(proa_future_cancel(&futs[4]), 0);
	assert_int_equal(cl->npending[PROA_LANE_CPU], 1);
	assert_int_equal(atomic_load(&ln->backlog), 3);
	/* The newest queued job, handed over after the one cancelled. */
	assert_res(proa_future_cancel(&futs[3]), 0);
	assert_int_equal(cl->npending[PROA_LANE_CPU], 1);
	assert_int_equal(atomic_load(&ln->backlog), 2);

	gate_open(&g);
	drive_until(loop, &d.n, 6);
	assert_false(d.wrong_thread);
	assert_int_equal(proa_future_result(&futs[0], NULL), 7);
	for (i = 1; i < 6; i++)
		assert_int_equal(proa_future_result(&futs[i], NULL),
				 i == 1 || i == 3 || i == 4 ? -ECANCELED : 1);
	assert_int_equal(atomic_load(&plain_runs), 2);
	assert_int_equal(atomic_load(&ln->backlog), 0);
	assert_res(proa_pool_stats(pool, &st), 0);
	assert_int_equal(st.lanes[PROA_LANE_CPU].cancelled, 3);
	assert_int_equal(st.lanes[PROA_LANE_CPU].completed, 3);
	for (i = 0; i < 6; i++)
		assert_res(proa_future_fini(&futs[i]), 0);
	assert_res(proa_pool_free(pool), 0);
	assert_no_worker_left();
	proa_test_loop_close(loop);
	gate_fini(&g);
	(void)state;
}

/*
 * Cancels racing the workers that take the same jobs: batches of 100
 * handed over one iteration each to two free workers, every other job of
 * a batch cancelled right after its hand-over.  Each job either ran once
 * and came home with its result, or never ran and came home -ECANCELED,
 * once; the counts agree with the lane's.
 */
#define RACE_JOBS 20000u
#define RACE_BATCH 100u

static atomic_uchar race_runs[RACE_JOBS];

static int32_t race_job(void *arg, void **value)
{
	atomic_fetch_add(&race_runs[(uintptr_t)arg], 1);
	*value = arg;
	return 1;
}

static void test_cancel_races_workers_taking_jobs(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_pool *pool = new_pool(PROA_PLACE_NONE, 2, 0);
	struct proa_future *futs = calloc(RACE_JOBS, sizeof(*futs));
	struct done_count d = {.thread = pthread_self()};
	unsigned i, b, cancelled = 0, ran = 0;
	struct proa_pool_stats st;
	void *value;
	int res;

	assert_non_null(futs);
	for (i = 0; i < RACE_JOBS; i++)
		atomic_init(&race_runs[i], 0);
	for (b = 0; b < RACE_JOBS; b += RACE_BATCH) {
		for (i = b; i < b + RACE_BATCH; i++) {
			proa_future_init(&futs[i], loop);
			assert_res(proa_pool_submit_to(
				       pool, loop, PROA_LANE_CPU, race_job,
				       (void *)(uintptr_t)i, &futs[i], 0),
				   0);
			assert_res(proa_future_add_done_callback(
				       &futs[i], count_done, &d),
				   0);
		}
		assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
		for (i = b; i < b + RACE_BATCH; i += 2) {
			res = proa_future_cancel(&futs[i]);
			assert_true(res == 0 || res == -EALREADY);
		}
	}
	drive_until(loop, &d.n, RACE_JOBS);
	assert_false(d.wrong_thread);
	for (i = 0; i < RACE_JOBS; i++) {
		value = NULL;
		res = proa_future_result(&futs[i], &value);
		if (res == -ECANCELED) {
			assert_true(i % 2 == 0);
			assert_int_equal(atomic_load(&race_runs[i]), 0);
			cancelled++;
		} else {
			assert_int_equal(res, 1);
			assert_ptr_equal(value, (void *)(uintptr_t)i);
			assert_int_equal(atomic_load(&race_runs[i]), 1);
			ran++;
		}
		assert_res(proa_future_fini(&futs[i]), 0);
	}
	assert_int_equal(cancelled + ran, RACE_JOBS);
	assert_int_equal(atomic_load(&pool->lanes[PROA_LANE_CPU].backlog), 0);
	assert_res(proa_pool_stats(pool, &st), 0);
	assert_int_equal(st.lanes[PROA_LANE_CPU].cancelled, cancelled);
	assert_int_equal(st.lanes[PROA_LANE_CPU].completed, ran);
	assert_res(proa_pool_free(pool), 0);
	assert_no_worker_left();
	proa_test_loop_close(loop);
	free(futs);
	(void)state;
}

/* ---- lanes
 * -------------------------------------------------------------------- */

static void test_blocked_dns_lane_does_not_delay_file_lane(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_pool_opts opts = {.placement = PROA_PLACE_NONE};
	struct proa_pool *pool = NULL;
	struct proa_future dns[3], file;
	struct gate g;
	int i;

	opts.lanes[PROA_LANE_DNS].threads = 2;
	assert_res(proa_pool_new(&pool, &opts), 0);
	gate_init(&g);
	/* Both DNS workers stuck in "resolution", a third waiting. */
	for (i = 0; i < 3; i++) {
		proa_future_init(&dns[i], loop);
		assert_res(proa_pool_submit_to(pool, loop, PROA_LANE_DNS,
					       gate_job, &g, &dns[i], 0),
			   0);
	}
	assert_int_equal(proa_loop_run(loop, PROA_RUN_NOWAIT), 1);
	sem_wait(&g.started_sem);
	sem_wait(&g.started_sem);
	proa_future_init(&file, loop);
	assert_res(proa_pool_submit_to(pool, loop, PROA_LANE_FILE, plain_job,
				       &file, &file, 0),
		   0);
	assert_res(proa_loop_run_until_complete(loop, &file), 0);
	assert_int_equal(proa_future_result(&file, NULL), 1);
	for (i = 0; i < 3; i++)
		assert_false(proa_future_is_done(&dns[i]));
	gate_open(&g);
	for (i = 0; i < 3; i++) {
		assert_res(proa_loop_run_until_complete(loop, &dns[i]), 0);
		assert_int_equal(proa_future_result(&dns[i], NULL), 7);
		assert_res(proa_future_fini(&dns[i]), 0);
	}
	assert_res(proa_future_fini(&file), 0);
	assert_res(proa_pool_free(pool), 0);
	assert_no_worker_left();
	proa_test_loop_close(loop);
	gate_fini(&g);
	(void)state;
}

/* ---- bounded queues ---------------------------------------------------------
 */

struct waiter {
	struct proa_pool *pool;
	struct gate *g;
};

/* Opens the gate once the loop thread is blocked waiting for room. */
static void *open_when_waiting(void *arg)
{
	struct waiter *w = arg;
	struct proa__pool_lane *ln = &w->pool->lanes[PROA_LANE_CPU];
	bool waiting = false;

	while (!waiting) {
		pthread_mutex_lock(&ln->mu);
		waiting = ln->space_waiters > 0;
		pthread_mutex_unlock(&ln->mu);
		if (!waiting)
			sched_yield();
	}
	gate_open(w->g);
	return NULL;
}

static void test_full_queue_rejects_and_loses_nothing(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_pool *pool = new_pool(PROA_PLACE_NONE, 1, 4);
	struct proa_future blocker, q[5], extra;
	struct proa_pool_stats st;
	struct waiter w;
	struct gate g;
	pthread_t th;
	void *value;
	int i;

	gate_init(&g);
	proa_future_init(&blocker, loop);
	assert_res(proa_pool_submit_to(pool, loop, PROA_LANE_CPU, gate_job, &g,
				       &blocker, 0),
		   0);
	assert_int_equal(proa_loop_run(loop, PROA_RUN_NOWAIT), 1);
	sem_wait(&g.started_sem);
	/* Four wait; the fifth is refused and left untouched. */
	for (i = 0; i < 5; i++) {
		proa_future_init(&q[i], loop);
		assert_int_equal(proa_pool_submit_to(pool, loop, PROA_LANE_CPU,
						     plain_job, &q[i], &q[i],
						     0),
				 i < 4 ? 0 : -EAGAIN);
	}
	assert_int_equal(proa_future_state(&q[4]), PROA_FUTURE_PENDING);
	assert_res(proa_future_fini(&q[4]), 0);
	assert_res(proa_pool_stats(pool, &st), 0);
	assert_int_equal(st.lanes[PROA_LANE_CPU].rejected, 1);
	assert_int_equal(st.lanes[PROA_LANE_CPU].queued, 4);
	assert_int_equal(st.lanes[PROA_LANE_CPU].running, 1);

	/* PROA_POOL_WAIT: blocks until the worker frees a place. */
	w.pool = pool;
	w.g = &g;
	assert_int_equal(pthread_create(&th, NULL, open_when_waiting, &w), 0);
	proa_future_init(&extra, loop);
	assert_res(proa_pool_submit_to(pool, loop, PROA_LANE_CPU, plain_job,
				       &extra, &extra, PROA_POOL_WAIT),
		   0);
	assert_int_equal(pthread_join(th, NULL), 0);

	/* Every accepted job runs, with its own value. */
	assert_res(proa_loop_run_until_complete(loop, &extra), 0);
	for (i = 0; i < 4; i++) {
		assert_res(proa_loop_run_until_complete(loop, &q[i]), 0);
		assert_int_equal(proa_future_result(&q[i], &value), 1);
		assert_ptr_equal(value, &q[i]);
		assert_res(proa_future_fini(&q[i]), 0);
	}
	assert_int_equal(proa_future_result(&extra, &value), 1);
	assert_ptr_equal(value, &extra);
	assert_res(proa_loop_run_until_complete(loop, &blocker), 0);
	assert_int_equal(proa_future_result(&blocker, NULL), 7);
	assert_res(proa_future_fini(&blocker), 0);
	assert_res(proa_future_fini(&extra), 0);
	assert_res(proa_pool_stats(pool, &st), 0);
	assert_int_equal(st.lanes[PROA_LANE_CPU].completed, 6);
	assert_res(proa_pool_free(pool), 0);
	assert_no_worker_left();
	proa_test_loop_close(loop);
	gate_fini(&g);
	(void)state;
}

/* ---- placement
 * ---------------------------------------------------------------- */

struct aff {
	pthread_barrier_t all_in;
	cpu_set_t seen[64];
	bool got[64];
	atomic_uint bad;
};

static int32_t affinity_job(void *arg, void **value)
{
	struct aff *a = arg;
	enum proa_lane lane;
	unsigned idx;

	(void)value;
	/* All at once: each job on its own worker. */
	pthread_barrier_wait(&a->all_in);
	if (proa_pool_current_worker(&lane, &idx) != 0 ||
	    lane != PROA_LANE_CPU || idx >= 64) {
		atomic_fetch_add(&a->bad, 1);
		return -1;
	}
	if (sched_getaffinity(0, sizeof(a->seen[idx]), &a->seen[idx]) != 0)
		atomic_fetch_add(&a->bad, 1);
	a->got[idx] = true;
	return (int32_t)idx;
}

static void check_placement(enum proa_placement place, bool no_topology)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_future futs[64];
	struct proa_pool_stats st;
	struct proa_pool *pool;
	cpu_set_t process, want, both;
	struct aff a;
	char text[1024];
	unsigned n, i, k;
	int last = -1;

	assert_int_equal(sched_getaffinity(getpid(), sizeof(process), &process),
			 0);
	n = (unsigned)CPU_COUNT(&process);
	if (n > 64)
		n = 64;
	proa__pool_fault_no_topology = no_topology;
	pool = new_pool(place, n, 0);
	proa__pool_fault_no_topology = false;
	memset(&a, 0, sizeof(a));
	pthread_barrier_init(&a.all_in, NULL, n);
	for (i = 0; i < n; i++) {
		proa_future_init(&futs[i], loop);
		assert_res(proa_pool_submit_to(pool, loop, PROA_LANE_CPU,
					       affinity_job, &a, &futs[i], 0),
			   0);
	}
	for (i = 0; i < n; i++) {
		assert_res(proa_loop_run_until_complete(loop, &futs[i]), 0);
		assert_true(proa_future_result(&futs[i], NULL) >= 0);
		assert_res(proa_future_fini(&futs[i]), 0);
	}
	assert_int_equal(atomic_load(&a.bad), 0);
	assert_res(proa_pool_stats(pool, &st), 0);
	assert_int_equal(st.placement, place);
	assert_int_equal(st.bound, !no_topology && place != PROA_PLACE_NONE);
	assert_true(proa_pool_describe(pool, text, sizeof(text)) > 0);
	print_message("%s", text);
	for (i = 0; i < n; i++) {
		assert_true(a.got[i]);
		/* What the worker sees is what the pool reports. */
		assert_res(
		    proa_pool_worker_affinity(pool, PROA_LANE_CPU, i, &want),
		    0);
		assert_true(CPU_EQUAL(&want, &a.seen[i]));
		CPU_AND(&both, &want, &process);
		assert_true(CPU_EQUAL(&both, &want)); /* within the process */
		if (no_topology || place == PROA_PLACE_NONE) {
			assert_true(CPU_EQUAL(&want, &process));
		} else if (place == PROA_PLACE_SPREAD) {
			/* Up to one worker per core: no two share a CPU. */
			for (k = 0; k < i; k++) {
				CPU_AND(&both, &want, &a.seen[k]);
				assert_int_equal(CPU_COUNT(&both), 0);
			}
		} else if (place == PROA_PLACE_PACK) {
			/* One hardware thread each, in order. */
			assert_int_equal(CPU_COUNT(&want), 1);
			for (k = 0; k < CPU_SETSIZE; k++) {
				if (CPU_ISSET(k, &want))
					break;
			}
			assert_true((int)k > last);
			last = (int)k;
		} else {
			/* Near: one node, shared by all; one node here. */
			assert_true(CPU_COUNT(&want) > 0);
			assert_true(CPU_EQUAL(&want, &a.seen[0]));
		}
	}
	if (no_topology)
		assert_non_null(strstr(text, "no topology"));
	assert_res(proa_pool_worker_affinity(pool, PROA_LANE_CPU, n, &want),
		   -ENOENT);
	assert_res(proa_pool_current_worker(NULL, NULL), -ESRCH);
	assert_res(proa_pool_free(pool), 0);
	pthread_barrier_destroy(&a.all_in);
	assert_no_worker_left();
	proa_test_loop_close(loop);
}

static void test_worker_affinity_matches_placement(void **state)
{
	check_placement(PROA_PLACE_SPREAD, false);
	check_placement(PROA_PLACE_PACK, false);
	check_placement(PROA_PLACE_NEAR, false);
	check_placement(PROA_PLACE_NONE, false);
	check_placement(PROA_PLACE_SPREAD, true);
	(void)state;
}

/* Unbound workers get the process's CPUs even when the thread that
 * starts them (a loop thread, not the main one) is pinned to one CPU: a
 * thread inherits its creator's mask, and the pool must not let it.  The
 * pinned loop runs on its own thread; it records, the test thread checks. */
struct pinned_run {
	int cpu;
	int err;
	cpu_set_t seen, reported;
};

static int32_t mask_job(void *arg, void **value)
{
	struct pinned_run *r = arg;

	(void)value;
	return sched_getaffinity(0, sizeof(r->seen), &r->seen) == 0 ? 0 : -1;
}

static void *pinned_loop_main(void *arg)
{
	struct pinned_run *r = arg;
	struct proa_pool_opts opts = {.placement = PROA_PLACE_NONE};
	struct proa_pool *pool = NULL;
	struct proa_loop *loop = NULL;
	struct proa_future fut;
	cpu_set_t one;

	CPU_ZERO(&one);
	CPU_SET(r->cpu, &one);
	opts.lanes[PROA_LANE_CPU].threads = 1;
	if (pthread_setaffinity_np(pthread_self(), sizeof(one), &one) != 0 ||
	    proa_loop_new(&loop, NULL) != 0) {
		r->err = 1;
		return NULL;
	}
	if (proa_pool_new(&pool, &opts) != 0) {
		r->err = 2;
		proa_loop_close(loop);
		proa_loop_free(loop);
		return NULL;
	}
	proa_future_init(&fut, loop);
	if (proa_pool_submit_to(pool, loop, PROA_LANE_CPU, mask_job, r, &fut,
				0) != 0 ||
	    proa_loop_run_until_complete(loop, &fut) != 0 ||
	    proa_future_result(&fut, NULL) != 0)
		r->err = 3;
	else if (proa_pool_worker_affinity(pool, PROA_LANE_CPU, 0,
					   &r->reported) != 0)
		r->err = 4;
	if (proa_future_fini(&fut) != 0 || proa_pool_free(pool) != 0 ||
	    proa_loop_close(loop) != 0 || proa_loop_free(loop) != 0)
		r->err = 5;
	return NULL;
}

static void test_unbound_workers_not_pinned(void **state)
{
	struct pinned_run r;
	cpu_set_t process;
	pthread_t th;

	(void)state;
	memset(&r, 0, sizeof(r));
	assert_int_equal(sched_getaffinity(0, sizeof(process), &process), 0);
	if (CPU_COUNT(&process) < 2) {
		print_message("one CPU: nothing to tell apart\n");
		return;
	}
	while (!CPU_ISSET(r.cpu, &process))
		r.cpu++;
	assert_int_equal(pthread_create(&th, NULL, pinned_loop_main, &r), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(r.err, 0);
	assert_true(CPU_EQUAL(&r.reported, &process));
	assert_true(CPU_EQUAL(&r.seen, &process));
	assert_no_worker_left();
}

/* ---- shutdown
 * ------------------------------------------------------------------- */

static void shutdown_with_pending(enum proa_pool_shutdown how)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_pool *pool = new_pool(PROA_PLACE_NONE, 1, 0);
	struct proa_future blocker, q[10], late;
	unsigned i, ran = 0, cancelled = 0;
	struct until_shut u;
	int res;

	until_shut_init(&u, pool);
	proa_future_init(&blocker, loop);
	assert_res(proa_pool_submit_to(pool, loop, PROA_LANE_CPU,
				       until_shut_job, &u, &blocker, 0),
		   0);
	assert_int_equal(proa_loop_run(loop, PROA_RUN_NOWAIT), 1);
	sem_wait(&u.started);
	for (i = 0; i < 10; i++) {
		proa_future_init(&q[i], loop);
		assert_res(proa_pool_submit_to(pool, loop, PROA_LANE_CPU,
					       plain_job, NULL, &q[i], 0),
			   0);
	}
	/* Handed over while the worker is held: the ten wait in the queue
	 * (the shutdown would hand them over itself otherwise). */
	assert_int_equal(proa_loop_run(loop, PROA_RUN_NOWAIT), 1);
	assert_res(proa_pool_shutdown(pool, how), 0);
	assert_res(proa_pool_shutdown(pool, how), -EALREADY);
	assert_no_worker_left();
	proa_future_init(&late, loop);
	assert_res(proa_pool_submit_to(pool, loop, PROA_LANE_CPU, plain_job,
				       NULL, &late, 0),
		   -ESHUTDOWN);
	assert_res(proa_future_fini(&late), 0);
	/* Every future resolves once: run when draining, else cancelled. */
	assert_res(proa_loop_run_until_complete(loop, &blocker), 0);
	assert_int_equal(proa_future_result(&blocker, NULL), 7);
	for (i = 0; i < 10; i++) {
		assert_res(proa_loop_run_until_complete(loop, &q[i]), 0);
		res = proa_future_result(&q[i], NULL);
		if (res == 1)
			ran++;
		else if (res == -ECANCELED)
			cancelled++;
		else
			fail_msg("job %u: %d", i, res);
		assert_res(proa_future_fini(&q[i]), 0);
	}
	assert_int_equal(ran, how == PROA_POOL_DRAIN ? 10 : 0);
	assert_int_equal(cancelled, how == PROA_POOL_DRAIN ? 0 : 10);
	assert_res(proa_future_fini(&blocker), 0);
	assert_res(proa_pool_free(pool), 0);
	proa_test_loop_close(loop);
	sem_destroy(&u.started);
}

static void test_shutdown_with_pending_work_leaves_no_thread(void **state)
{
	shutdown_with_pending(PROA_POOL_DRAIN);
	shutdown_with_pending(PROA_POOL_CANCEL);
	(void)state;
}

static void *shutdown_main(void *arg)
{
	return (void *)(intptr_t)proa_pool_shutdown(arg, PROA_POOL_CANCEL);
}

/* Jobs accepted in a loop iteration, and the pool shut down by another
 * thread before the loop hands them over: each resolves with -ESHUTDOWN,
 * and the stats count them as cancelled (accepted = completed + cancelled
 * + queued + running holds). */
static void test_jobs_refused_at_handover_are_counted(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_pool *pool = new_pool(PROA_PLACE_NONE, 1, 0);
	struct proa_pool_stats st;
	struct proa_future q[5];
	pthread_t th;
	void *ret;
	unsigned i;

	for (i = 0; i < 5; i++) {
		proa_future_init(&q[i], loop);
		assert_res(proa_pool_submit_to(pool, loop, PROA_LANE_CPU,
					       plain_job, NULL, &q[i], 0),
			   0);
	}
	assert_int_equal(pthread_create(&th, NULL, shutdown_main, pool), 0);
	assert_int_equal(pthread_join(th, &ret), 0);
	assert_int_equal((intptr_t)ret, 0);
	for (i = 0; i < 5; i++) {
		assert_res(proa_loop_run_until_complete(loop, &q[i]), 0);
		assert_int_equal(proa_future_result(&q[i], NULL), -ESHUTDOWN);
		assert_res(proa_future_fini(&q[i]), 0);
	}
	assert_res(proa_pool_stats(pool, &st), 0);
	assert_int_equal(st.lanes[PROA_LANE_CPU].cancelled, 5);
	assert_int_equal(st.lanes[PROA_LANE_CPU].completed, 0);
	assert_int_equal(st.lanes[PROA_LANE_CPU].queued, 0);
	assert_int_equal(st.lanes[PROA_LANE_CPU].running, 0);
	assert_res(proa_pool_free(pool), 0);
	proa_test_loop_close(loop);
	assert_no_worker_left();
	(void)state;
}

/* A pool freed while a loop still holds its record; the loop closes after,
 * releasing the last of it (ASan: nothing leaked or touched after). */
static void test_pool_freed_before_its_loop_closes(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_pool *pool = new_pool(PROA_PLACE_NONE, 2, 0);
	struct proa_future fut[3];
	struct until_shut u;
	int i;

	until_shut_init(&u, pool);
	for (i = 0; i < 3; i++) {
		proa_future_init(&fut[i], loop);
		assert_res(
		    proa_pool_submit_to(pool, loop, PROA_LANE_CPU,
					i < 2 ? until_shut_job : plain_job, &u,
					&fut[i], 0),
		    0);
	}
	assert_int_equal(proa_loop_run(loop, PROA_RUN_NOWAIT), 1);
	sem_wait(&u.started);
	sem_wait(&u.started);
	/* Cancels the queued one, lets the running two finish, joins. */
	assert_res(proa_pool_free(pool), 0);
	assert_no_worker_left();
	for (i = 0; i < 3; i++) {
		assert_res(proa_loop_run_until_complete(loop, &fut[i]), 0);
		assert_int_equal(proa_future_result(&fut[i], NULL),
				 i < 2 ? 7 : -ECANCELED);
		assert_res(proa_future_fini(&fut[i]), 0);
	}
	proa_test_loop_close(loop);
	sem_destroy(&u.started);
	(void)state;
}

/* The default pool's workers are joined by proa_loop_close(). */
static void test_loop_close_takes_its_default_pool_along(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_pool *pool = NULL, *again = NULL;
	struct proa_future fut;

	assert_res(proa_pool_default(&pool, loop), 0);
	assert_res(proa_pool_default(&again, loop), 0);
	assert_ptr_equal(pool, again);
	assert_res(proa_pool_free(pool), -EINVAL);
	proa_future_init(&fut, loop);
	assert_res(
	    proa_pool_submit(loop, PROA_LANE_FILE, plain_job, NULL, &fut), 0);
	assert_res(proa_loop_run_until_complete(loop, &fut), 0);
	assert_res(proa_future_fini(&fut), 0);
	assert_true(proa_test_threads() > baseline_threads);
	proa_test_loop_close(loop);
	assert_no_worker_left();
	(void)state;
}

/* ---- caller-owned records (struct proa_pool_work) -------------------------
 */

struct my_work {
	struct proa_pool_work w; /* first: not required, but common */
	unsigned idx;
	unsigned reuses; /* submitted again from its own callback */
	struct works *ctx;
};

struct works {
	struct proa_loop *loop;
	struct proa_pool *pool; /* NULL: the loop's default pool */
	enum proa_lane lane;
	pthread_t thread;
	unsigned done, bad, n;
	int32_t want; /* a result every job must have, or 0: its index */
	unsigned char *seen;
};

static int32_t index_job(void *arg, void **value)
{
	struct my_work *mw = arg;

	*value = mw;
	return (int32_t)mw->idx;
}

static void my_work_done(struct proa_future *fut, void *arg);

static int my_work_submit(struct works *c, struct my_work *mw)
{
	int ret;

	proa_future_init(&mw->w.fut, c->loop);
	ret = proa_pool_work_submit(c->pool, c->loop, c->lane, &mw->w,
				    index_job, mw, 0);
	if (ret == 0)
		ret =
		    proa_future_add_done_callback(&mw->w.fut, my_work_done, mw);
	return ret;
}

/* The record is the program's again here: it is released with free(), or
 * reused for one more job first.  Under ASan a pool that read or wrote a
 * record after resolving its future would stop the test. */
static void my_work_done(struct proa_future *fut, void *arg)
{
	struct my_work *mw = arg;
	struct works *c = mw->ctx;
	void *value = NULL;
	int res = proa_future_result(fut, &value);

	if (!pthread_equal(pthread_self(), c->thread))
		c->bad++;
	if (c->want ? res != c->want
		    : (res != (int)mw->idx || value != (void *)mw))
		c->bad++;
	if (proa_future_fini(fut) != 0)
		c->bad++;
	if (!c->want && mw->idx % 2 == 0 && mw->reuses == 0) {
		mw->reuses++;
		if (my_work_submit(c, mw) != 0)
			c->bad++;
		return;
	}
	if (mw->idx < c->n)
		c->seen[mw->idx]++;
	c->done++;
	memset(mw, 0xa5, sizeof(*mw));
	free(mw);
}

static struct my_work *my_work_new(struct works *c, unsigned idx)
{
	struct my_work *mw = calloc(1, sizeof(*mw));

	assert_non_null(mw);
	mw->idx = idx;
	mw->ctx = c;
	return mw;
}

/* Records in the caller's memory, on a pool of its own and on the loop's
 * default pool, each freed (or reused once, then freed) in its callback;
 * every job delivered exactly once, on the loop thread, and no record
 * taken from the loop's cache or the heap (the client's cache stays
 * empty: only proa_pool_submit()'s records go there). */
static void test_caller_owned_records_freed_in_their_callbacks(void **state)
{
	enum { N = 3000 };
	struct works c = {.thread = pthread_self(), .n = N};
	struct proa__pool_client *cl;
	struct proa_pool *own, *dflt = NULL;
	struct proa_pool_stats st;
	unsigned i;

	c.loop = proa_test_loop_new();
	c.seen = calloc(N, 1);
	assert_non_null(c.seen);
	own = new_pool(PROA_PLACE_NONE, 2, 0);
	c.pool = own;
	c.lane = PROA_LANE_CPU;
	for (i = 0; i < N / 2; i++)
		assert_res(my_work_submit(&c, my_work_new(&c, i)), 0);
	drive_until(c.loop, &c.done, N / 2);
	/* Not one of those records went into the loop's cache of job
	 * records (1500 would have filled it with freed memory). */
	cl = proa_container_of(proa__loop_hook_find(c.loop, own),
			       struct proa__pool_client, hook);
	assert_null(cl->cache);
	assert_int_equal(cl->ncache, 0);
	assert_int_equal(cl->outstanding, 0);
	assert_res(proa_pool_stats(own, &st), 0);
	/* Every even record ran twice. */
	assert_int_equal(st.lanes[PROA_LANE_CPU].completed, N / 2 + N / 4);

	/* The default pool (NULL), and another lane. */
	c.pool = NULL;
	c.lane = PROA_LANE_FILE;
	for (; i < N; i++)
		assert_res(my_work_submit(&c, my_work_new(&c, i)), 0);
	drive_until(c.loop, &c.done, N);
	assert_int_equal(c.bad, 0);
	for (i = 0; i < N; i++)
		assert_int_equal(c.seen[i], 1);
	assert_res(proa_pool_default(&dflt, c.loop), 0);
	assert_res(proa_pool_stats(dflt, &st), 0);
	assert_int_equal(st.lanes[PROA_LANE_FILE].completed, N / 2 + N / 4);
	assert_res(proa_pool_free(own), 0);
	proa_test_loop_close(c.loop);
	assert_no_worker_left();
	free(c.seen);
	(void)state;
}

/* Caller-owned records on every path that does not run the job: cancelled
 * before the hand-over and while queued, refused by a full queue or a shut
 * pool, and cancelled by the shutdown; and bad input.  Each record that was
 * accepted is freed in its callback (ASan: the pool never touches it
 * after), and one that was refused is the caller's at once. */
static void test_caller_owned_records_on_every_other_path(void **state)
{
	enum { QUEUED = 6 };
	struct works c = {.thread = pthread_self(), .want = -ECANCELED};
	struct proa_loop *other = proa_test_loop_new();
	struct proa_pool_work blocker, refused, foreign;
	struct my_work *mws[QUEUED], *late;
	struct proa_pool_stats st;
	struct proa_pool *pool;
	struct until_shut u;
	unsigned i;

	c.loop = proa_test_loop_new();
	c.lane = PROA_LANE_CPU;
	/* One worker; room for the blocker and QUEUED more. */
	pool = new_pool(PROA_PLACE_NONE, 1, QUEUED + 1);
	c.pool = pool;
	until_shut_init(&u, pool);
	proa_future_init(&blocker.fut, c.loop);
	assert_res(proa_pool_work_submit(pool, c.loop, PROA_LANE_CPU, &blocker,
					 until_shut_job, &u, 0),
		   0);
	/* The same record again while it is in use. */
	assert_res(proa_pool_work_submit(pool, c.loop, PROA_LANE_CPU, &blocker,
					 plain_job, NULL, 0),
		   -EBUSY);
	for (i = 0; i < QUEUED; i++) {
		mws[i] = my_work_new(&c, i);
		assert_res(my_work_submit(&c, mws[i]), 0);
	}

	/* The queue is full: refused, nothing queued, and the record is the
	 * caller's again (its future has no canceller and can go). */
	proa_future_init(&refused.fut, c.loop);
	assert_res(proa_pool_work_submit(pool, c.loop, PROA_LANE_CPU, &refused,
					 plain_job, NULL, 0),
		   -EAGAIN);
	assert_res(proa_future_fini(&refused.fut), 0);

	/* Bad input, refused before anything is taken. */
	proa_future_init(&refused.fut, c.loop);
	proa_future_init(&foreign.fut, other);
	assert_res(proa_pool_work_submit(pool, c.loop, PROA_LANE_CPU, NULL,
					 plain_job, NULL, 0),
		   -EINVAL);
	assert_res(proa_pool_work_submit(pool, NULL, PROA_LANE_CPU, &refused,
					 plain_job, NULL, 0),
		   -EINVAL);
	assert_res(proa_pool_work_submit(pool, c.loop, PROA_LANE_CPU, &refused,
					 NULL, NULL, 0),
		   -EINVAL);
	assert_res(proa_pool_work_submit(pool, c.loop, PROA_LANE__COUNT,
					 &refused, plain_job, NULL, 0),
		   -EINVAL);
	assert_res(proa_pool_work_submit(pool, c.loop, PROA_LANE_CPU, &refused,
					 plain_job, NULL, 1U << 7),
		   -EINVAL);
	assert_res(proa_pool_work_submit(pool, c.loop, PROA_LANE_CPU, &foreign,
					 plain_job, NULL, 0),
		   -EINVAL);
	assert_res(proa_future_fini(&foreign.fut), 0);
	assert_res(proa_future_set_result(&refused.fut, 0, NULL), 0);
	assert_res(proa_pool_work_submit(pool, c.loop, PROA_LANE_CPU, &refused,
					 plain_job, NULL, 0),
		   -EBUSY);
	assert_res(proa_future_fini(&refused.fut), 0);

	/* Two cancelled before the iteration hands them over. */
	assert_res(proa_future_cancel(&mws[0]->w.fut), 0);
	assert_res(proa_future_cancel(&mws[1]->w.fut), 0);
	assert_int_equal(c.done, 0); /* never inline */
	assert_int_equal(proa_loop_run(c.loop, PROA_RUN_NOWAIT), 1);
	sem_wait(&u.started);
	/* One cancelled while queued behind the blocker. */
	assert_res(proa_future_cancel(&mws[2]->w.fut), 0);
	drive_until(c.loop, &c.done, 3);
	/* The rest go with the shutdown; the blocker runs to its end. */
	assert_res(proa_loop_close(c.loop), -EBUSY);
	assert_res(proa_pool_shutdown(pool, PROA_POOL_CANCEL), 0);
	late = my_work_new(&c, QUEUED);
	assert_res(my_work_submit(&c, late), -ESHUTDOWN);
	assert_res(proa_future_fini(&late->w.fut), 0);
	free(late);
	drive_until(c.loop, &c.done, QUEUED);
	assert_res(proa_loop_run_until_complete(c.loop, &blocker.fut), 0);
	assert_int_equal(proa_future_result(&blocker.fut, NULL), 7);
	assert_res(proa_future_fini(&blocker.fut), 0);
	assert_int_equal(c.bad, 0);
	assert_res(proa_pool_stats(pool, &st), 0);
	assert_int_equal(st.lanes[PROA_LANE_CPU].completed, 1);
	assert_int_equal(st.lanes[PROA_LANE_CPU].rejected, 1);
	assert_res(proa_pool_free(pool), 0);
	assert_no_worker_left();
	proa_test_loop_close(c.loop);
	proa_test_loop_close(other);
	sem_destroy(&u.started);
	(void)state;
}

/* ---- bad input
 * ---------------------------------------------------------------- */

static int32_t shutdown_from_worker(void *arg, void **value)
{
	(void)value;
	return proa_pool_shutdown(arg, PROA_POOL_DRAIN);
}

static void test_bad_input(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_loop *other = proa_test_loop_new();
	struct proa_pool_opts opts = {0};
	struct proa_pool *pool = NULL;
	struct proa_future fut, done, foreign;

	assert_res(proa_pool_new(NULL, NULL), -EINVAL);
	opts.placement = PROA_PLACE__COUNT;
	assert_res(proa_pool_new(&pool, &opts), -EINVAL);
	opts.placement = PROA_PLACE_NONE;
	opts.lanes[PROA_LANE_DNS].threads = 100000;
	assert_res(proa_pool_new(&pool, &opts), -EINVAL);
	assert_null(pool);
	pool = new_pool(PROA_PLACE_NONE, 1, 0);

	proa_future_init(&fut, loop);
	proa_future_init(&done, loop);
	proa_future_init(&foreign, other);
	assert_res(proa_future_set_result(&done, 0, NULL), 0);
	assert_res(proa_pool_submit(NULL, PROA_LANE_CPU, plain_job, NULL, &fut),
		   -EINVAL);
	assert_res(proa_pool_submit(loop, PROA_LANE_CPU, NULL, NULL, &fut),
		   -EINVAL);
	assert_res(proa_pool_submit(loop, PROA_LANE_CPU, plain_job, NULL, NULL),
		   -EINVAL);
	assert_res(
	    proa_pool_submit(loop, PROA_LANE__COUNT, plain_job, NULL, &fut),
	    -EINVAL);
	assert_res(
	    proa_pool_submit(loop, PROA_LANE_CPU, plain_job, NULL, &foreign),
	    -EINVAL);
	assert_res(
	    proa_pool_submit(loop, PROA_LANE_CPU, plain_job, NULL, &done),
	    -EBUSY);
	assert_res(proa_pool_submit_to(NULL, loop, PROA_LANE_CPU, plain_job,
				       NULL, &fut, 0),
		   -EINVAL);
	assert_res(proa_pool_submit_to(pool, loop, PROA_LANE_CPU, plain_job,
				       NULL, &fut, 0x10),
		   -EINVAL);
	assert_res(proa_pool_shutdown(NULL, PROA_POOL_DRAIN), -EINVAL);
	assert_res(proa_pool_shutdown(pool, (enum proa_pool_shutdown)9),
		   -EINVAL);
	assert_res(proa_pool_stats(pool, NULL), -EINVAL);
	assert_res(proa_pool_free(NULL), 0);
	/* A worker cannot shut its own pool down (it would join itself). */
	assert_res(proa_pool_submit_to(pool, loop, PROA_LANE_CPU,
				       shutdown_from_worker, pool, &fut, 0),
		   0);
	/* Now it has a canceller: a second submission is refused. */
	assert_res(proa_pool_submit_to(pool, loop, PROA_LANE_CPU, plain_job,
				       NULL, &fut, 0),
		   -EBUSY);
	assert_res(proa_loop_run_until_complete(loop, &fut), 0);
	assert_res(proa_future_result(&fut, NULL), -EDEADLK);
	assert_res(proa_future_fini(&fut), 0);
	assert_res(proa_future_fini(&done), 0);
	assert_res(proa_future_fini(&foreign), 0);
	assert_res(proa_pool_free(pool), 0);
	proa_test_loop_close(other);
	assert_res(proa_loop_close(loop), 0);
	proa_future_init(&fut, loop);
	assert_res(proa_pool_submit(loop, PROA_LANE_CPU, plain_job, NULL, &fut),
		   PROA_ECLOSED);
	assert_res(proa_pool_default(&pool, loop), PROA_ECLOSED);
	assert_res(proa_loop_free(loop), 0);
	assert_no_worker_left();
	(void)state;
}

/* ---- getaddrinfo
 * ---------------------------------------------------------------- */

static int resolve(struct proa_loop *loop, const char *host,
		   const char *service, const struct addrinfo *hints,
		   struct addrinfo **out)
{
	struct proa_future fut;
	void *value = NULL;
	int res;

	proa_future_init(&fut, loop);
	assert_res(proa_getaddrinfo(loop, host, service, hints, &fut), 0);
	assert_res(proa_loop_run_until_complete(loop, &fut), 0);
	res = proa_future_result(&fut, &value);
	assert_res(proa_future_fini(&fut), 0);
	*out = value;
	if (res < 0)
		assert_null(value);
	return res;
}

static void test_getaddrinfo(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
	struct addrinfo *ai, *p;
	struct proa_future fut;
	bool loopback = false;
	int res;

	/* "localhost": from /etc/hosts, or loopback by RFC 6761 where a
	 * minimal container has no /etc/hosts. */
	assert_res(resolve(loop, "localhost", "80", &hints, &ai), 0);
	assert_non_null(ai);
	for (p = ai; p; p = p->ai_next) {
		if (p->ai_family == AF_INET &&
		    ((struct sockaddr_in *)p->ai_addr)->sin_addr.s_addr ==
			htonl(INADDR_LOOPBACK))
			loopback = true;
		if (p->ai_family == AF_INET6 &&
		    IN6_IS_ADDR_LOOPBACK(
			&((struct sockaddr_in6 *)p->ai_addr)->sin6_addr))
			loopback = true;
		assert_int_equal(p->ai_socktype, SOCK_STREAM);
	}
	assert_true(loopback);
	proa_freeaddrinfo(ai);

	/* *.localhost is loopback too (RFC 6761), whatever DNS says.  (A
	 * numeric port: minimal systems have no /etc/services.) */
	hints.ai_family = AF_INET6;
	assert_res(resolve(loop, "api.LOCALHOST.", "80", &hints, &ai), 0);
	for (p = ai; p; p = p->ai_next) {
		assert_int_equal(p->ai_family, AF_INET6);
		assert_true(IN6_IS_ADDR_LOOPBACK(
		    &((struct sockaddr_in6 *)p->ai_addr)->sin6_addr));
		assert_int_equal(((struct sockaddr_in6 *)p->ai_addr)->sin6_port,
				 htons(80));
	}
	proa_freeaddrinfo(ai);
	hints.ai_family = AF_UNSPEC;
	assert_res(resolve(loop, "x.localhost", NULL, &hints, &ai), 0);
	assert_int_equal(ai->ai_family, AF_INET);
	assert_int_equal(((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr,
			 htonl(INADDR_LOOPBACK));
	proa_freeaddrinfo(ai);
	/* Not a localhost name. */
	assert_true(
	    resolve(loop, "localhost.example.invalid", NULL, &hints, &ai) < 0);

	/* A numeric address, and its port. */
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	assert_res(resolve(loop, "192.0.2.7", "8080", &hints, &ai), 0);
	assert_int_equal(ai->ai_family, AF_INET);
	assert_int_equal(((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr,
			 htonl(0xc0000207));
	assert_int_equal(((struct sockaddr_in *)ai->ai_addr)->sin_port,
			 htons(8080));
	proa_freeaddrinfo(ai);

	/* Names that cannot resolve.  Numeric-only: decided locally. */
	assert_res(resolve(loop, "not-an-address", NULL, &hints, &ai),
		   PROA_ENONAME);
	/* Through the resolver: NXDOMAIN, or no resolver reachable. */
	hints.ai_flags = 0;
	res = resolve(loop, "name-that-does-not-exist.invalid", NULL, &hints,
		      &ai);
	print_message("unresolvable name: %s\n", proa_strerror(res));
	assert_true(res == PROA_ENONAME || res == -EAGAIN ||
		    res == PROA_EDNSFAIL);
	assert_string_equal(proa_strerror(PROA_ENONAME),
			    "name or service does not resolve");
	hints.ai_family = 12345;
	assert_res(resolve(loop, "localhost", NULL, &hints, &ai),
		   -EAFNOSUPPORT);

	proa_future_init(&fut, loop);
	assert_res(proa_getaddrinfo(loop, NULL, NULL, NULL, &fut), -EINVAL);
	assert_res(proa_getaddrinfo(loop, "x", NULL, NULL, NULL), -EINVAL);
	/* Cancelled before it starts: its copied request is freed (ASan). */
	assert_res(proa_getaddrinfo(loop, "localhost", "1", NULL, &fut), 0);
	assert_res(proa_future_cancel(&fut), 0);
	assert_res(proa_loop_run_until_complete(loop, &fut), 0);
	assert_res(proa_future_result(&fut, NULL), -ECANCELED);
	assert_res(proa_future_fini(&fut), 0);
	proa_freeaddrinfo(NULL);
	proa_test_loop_close(loop);
	(void)state;
}

/* ---- file operations on the pool
 * ------------------------------------------------ */

struct opdone {
	unsigned calls;
	int32_t res;
	pthread_t thread;
};

static void opdone_cb(struct proa_op *op)
{
	struct opdone *d = op->data;

	d->calls++;
	d->res = op->res;
	d->thread = pthread_self();
}

static int32_t run_op(struct proa_loop *loop, struct proa_op *op,
		      struct opdone *d)
{
	proa_test_drive_op(loop, op, 100000);
	assert_int_equal(d->calls, 1);
	assert_true(pthread_equal(d->thread, pthread_self()));
	return d->res;
}

static void test_missing_file_opcodes_run_on_the_file_lane(void **state)
{
	struct proa_loop *loop;
	struct proa_pool *pool;
	struct proa_pool_stats st;
	struct proa_op op, reads[4], queued;
	struct opdone d, rd[4], qd;
	struct statx stx;
	char buf[64], rbuf[5], path[] = "/tmp/proa-pool-XXXXXX";
	int fd, p[4][2], i;

	proa__ring_faults.hide_features =
	    (1ull << PROA_FEAT_OP_READ) | (1ull << PROA_FEAT_OP_WRITE) |
	    (1ull << PROA_FEAT_OP_OPENAT) | (1ull << PROA_FEAT_OP_STATX) |
	    (1ull << PROA_FEAT_OP_CLOSE) | (1ull << PROA_FEAT_OP_FSYNC);
	loop = proa_test_loop_new();
	proa__ring_faults.hide_features = 0;
	assert_false(proa_loop_feature(loop, PROA_FEAT_OP_READ));
	assert_true(proa_loop_feature(loop, PROA_FEAT_OP_NOP));
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);

	d = (struct opdone){0};
	proa_op_init(&op, opdone_cb, &d);
	assert_res(proa_op_openat(loop, &op, AT_FDCWD, path, O_RDWR, 0), 0);
	assert_int_equal(proa_op_state(&op), PROA_OP_INFLIGHT);
	assert_res(proa_op_openat(loop, &op, AT_FDCWD, path, O_RDWR, 0),
		   -EBUSY);
	fd = run_op(loop, &op, &d);
	assert_true(fd >= 0);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	d = (struct opdone){0};
	assert_res(proa_op_write(loop, &op, fd, "pooled!", 7, 3), 0);
	assert_int_equal(run_op(loop, &op, &d), 7);
	d = (struct opdone){0};
	assert_res(proa_op_fsync(loop, &op, fd, PROA_FSYNC_DATASYNC), 0);
	assert_res(run_op(loop, &op, &d), 0);
	assert_int_equal(pread(fd, buf, sizeof(buf), 0), 10);
	assert_memory_equal(buf + 3, "pooled!", 7);
	d = (struct opdone){0};
	memset(buf, 0, sizeof(buf));
	assert_res(proa_op_read(loop, &op, fd, buf, 4, 5), 0);
	assert_int_equal(run_op(loop, &op, &d), 4);
	assert_memory_equal(buf, "oled", 4);
	d = (struct opdone){0};
	assert_res(
	    proa_op_statx(loop, &op, AT_FDCWD, path, 0, STATX_SIZE, &stx), 0);
	assert_res(run_op(loop, &op, &d), 0);
	assert_int_equal(stx.stx_size, 10);
	d = (struct opdone){0};
	assert_res(proa_op_close(loop, &op, fd), 0);
	assert_res(run_op(loop, &op, &d), 0);
	assert_int_equal(fcntl(fd, F_GETFD), -1);
	d = (struct opdone){0};
	assert_res(proa_op_read(loop, &op, fd, buf, 4, 0), 0);
	assert_res(run_op(loop, &op, &d), -EBADF);

	/* Four reads of empty pipes hold all four file workers; a fifth
	 * read queues, and is cancelled: -ECANCELED, never inline. */
	assert_res(proa_pool_default(&pool, loop), 0);
	assert_res(proa_pool_stats(pool, &st), 0);
	assert_int_equal(st.lanes[PROA_LANE_FILE].max_threads, 4);
	for (i = 0; i < 4; i++) {
		assert_int_equal(pipe2(p[i], O_CLOEXEC), 0);
		rd[i] = (struct opdone){0};
		proa_op_init(&reads[i], opdone_cb, &rd[i]);
		assert_res(
		    proa_op_read(loop, &reads[i], p[i][0], &rbuf[i], 1, -1), 0);
	}
	qd = (struct opdone){0};
	proa_op_init(&queued, opdone_cb, &qd);
	assert_res(proa_op_read(loop, &queued, p[0][0], &rbuf[4], 1, -1), 0);
	assert_int_equal(proa_loop_run(loop, PROA_RUN_NOWAIT), 1);
	assert_res(proa_op_cancel(&queued), 0);
	assert_res(proa_op_cancel(&queued), -EALREADY);
	assert_int_equal(qd.calls, 0);
	/* The four workers took the four reads first (FIFO), so the fifth
	 * was still queued: cancelled without ever running. */
	assert_res(run_op(loop, &queued, &qd), -ECANCELED);
	for (i = 0; i < 4; i++)
		assert_int_equal(write(p[i][1], "a", 1), 1);
	for (i = 0; i < 4; i++) {
		assert_int_equal(run_op(loop, &reads[i], &rd[i]), 1);
		close(p[i][0]);
		close(p[i][1]);
	}
	assert_res(proa_pool_default(&pool, loop), 0);
	assert_res(proa_pool_stats(pool, &st), 0);
	assert_true(st.lanes[PROA_LANE_FILE].completed >= 11);
	assert_int_equal(unlink(path), 0);
	proa_test_loop_close(loop);
	assert_no_worker_left();
	(void)state;
}

/* A loop whose file reads have to run on the file lane, on either
 * backend: the ring "lacks" the read opcode. */
static struct proa_loop *loop_reads_on_the_lane(void)
{
	struct proa_loop *loop;

	proa__ring_faults.hide_features = 1ull << PROA_FEAT_OP_READ;
	loop = proa_test_loop_new();
	proa__ring_faults.hide_features = 0;
	assert_false(proa_loop_feature(loop, PROA_FEAT_OP_READ));
	return loop;
}

static unsigned ops_inflight(struct proa_loop *loop)
{
	struct proa_loop_stats st;

	assert_res(proa_loop_stats(loop, &st), 0);
	return (unsigned)st.ops_inflight;
}

/* The ring owns the op's life: a job that came home puts the op on the
 * ring's done list, and its callback runs when the loop next reaps.  A
 * cancel in between is too late to change anything: the callback runs
 * once, with the result. */
static void test_cancel_after_the_result_came_home_changes_nothing(void **state)
{
	struct proa_loop *loop = loop_reads_on_the_lane();
	char buf[8] = "", path[] = "/tmp/proa-pool-XXXXXX";
	struct opdone d = {0};
	struct proa_op op;
	unsigned i;
	int fd;

	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "home", 4), 4);
	proa_op_init(&op, opdone_cb, &d);
	assert_res(proa_op_read(loop, &op, fd, buf, sizeof(buf), 0), 0);
	assert_int_equal(ops_inflight(loop), 1);
	/* One iteration at a time until the job's delivery ran (the op is
	 * then on the done list) but the reap that calls back has not. */
	for (i = 0; i < 100000 && !(op.priv.iflags & PROA__OPF_LOCAL_DONE);
	     i++) {
		assert_int_equal(d.calls, 0);
		assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
	}
	assert_true(op.priv.iflags & PROA__OPF_LOCAL_DONE);
	assert_int_equal(d.calls, 0);
	assert_int_equal(proa_op_state(&op), PROA_OP_INFLIGHT);
	assert_int_equal(ops_inflight(loop), 1);
	assert_res(proa_op_cancel(&op), 0);
	assert_res(proa_op_cancel(&op), -EALREADY);
	assert_int_equal(run_op(loop, &op, &d), 4);
	assert_memory_equal(buf, "home", 4);
	assert_int_equal(ops_inflight(loop), 0);
	/* Nothing more comes for it. */
	assert_int_equal(proa_loop_run(loop, PROA_RUN_NOWAIT), 0);
	assert_int_equal(d.calls, 1);
	close(fd);
	assert_int_equal(unlink(path), 0);
	proa_test_loop_close(loop);
	assert_no_worker_left();
	(void)state;
}

/* A file op the kernel refuses at run time with -EOPNOTSUPP (libuv
 * #4268) goes on to the file lane from inside the reap: it stays
 * INFLIGHT, and calls back once, with the lane's result.  On epoll a
 * regular file's read runs on the lane from the start. */
static void test_file_op_refused_at_run_time_goes_to_the_lane(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	char buf[8] = "", path[] = "/tmp/proa-pool-XXXXXX";
	struct proa_pool_stats st;
	struct proa_pool *pool;
	struct opdone d = {0};
	struct proa_op op;
	uint64_t before;
	unsigned i;
	int fd;

	assert_res(proa_pool_default(&pool, loop), 0);
	assert_res(proa_pool_stats(pool, &st), 0);
	before = st.lanes[PROA_LANE_FILE].completed;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "refused", 7), 7);
	proa__ring_faults.refuse_kinds = 1ull << PROA__OP_READ;
	proa_op_init(&op, opdone_cb, &d);
	assert_res(proa_op_read(loop, &op, fd, buf, sizeof(buf), 2), 0);
	for (i = 0; i < 100000 && d.calls == 0; i++) {
		assert_int_equal(proa_op_state(&op), PROA_OP_INFLIGHT);
		assert_int_equal(ops_inflight(loop), 1);
		assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
	}
	proa__ring_faults.refuse_kinds = 0;
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.res, 5);
	assert_memory_equal(buf, "fused", 5);
	assert_int_equal(ops_inflight(loop), 0);
	assert_res(proa_pool_stats(pool, &st), 0);
	assert_int_equal(st.lanes[PROA_LANE_FILE].completed, before + 1);
	close(fd);
	assert_int_equal(unlink(path), 0);
	proa_test_loop_close(loop);
	assert_no_worker_left();
	(void)state;
}

/* Wait (at most 5 s) until @want of the default pool's file workers have
 * started a job: the workers start on their own threads. */
static void wait_file_lane_running(struct proa_loop *loop, unsigned want)
{
	struct timespec ms = {0, 1000000};
	struct proa_pool_stats st;
	struct proa_pool *pool;
	int i;

	assert_res(proa_pool_default(&pool, loop), 0);
	for (i = 0; i < 5000; i++) {
		assert_res(proa_pool_stats(pool, &st), 0);
		if (st.lanes[PROA_LANE_FILE].running == want)
			break;
		nanosleep(&ms, NULL);
	}
	assert_int_equal(st.lanes[PROA_LANE_FILE].running, want);
}

/* Ops away on the pool are the loop's ops in flight: counted, and
 * reached by proa_loop_cancel_all(), which stops those not started and
 * leaves the running ones to finish with their results. */
static void test_cancel_all_reaches_ops_away_on_the_pool(void **state)
{
	struct proa_loop *loop = loop_reads_on_the_lane();
	struct proa_op reads[6];
	struct opdone rd[6];
	char rbuf[6];
	int p[6][2], i, n;

	/* Four reads of empty pipes hold the lane's four workers; two more
	 * wait in its queue behind them (FIFO). */
	for (i = 0; i < 6; i++) {
		assert_int_equal(pipe2(p[i], O_CLOEXEC), 0);
		rd[i] = (struct opdone){0};
		proa_op_init(&reads[i], opdone_cb, &rd[i]);
		assert_res(
		    proa_op_read(loop, &reads[i], p[i][0], &rbuf[i], 1, -1), 0);
	}
	assert_int_equal(ops_inflight(loop), 6);
	assert_int_equal(proa_loop_run(loop, PROA_RUN_NOWAIT), 1);
	wait_file_lane_running(loop, 4);
	assert_int_equal(proa_loop_cancel_all(loop), 6);
	for (i = 0; i < 6; i++)
		assert_res(proa_op_cancel(&reads[i]), -EALREADY);
	for (i = 4; i < 6; i++)
		assert_int_equal(run_op(loop, &reads[i], &rd[i]), -ECANCELED);
	assert_int_equal(ops_inflight(loop), 4);
	for (i = 0; i < 4; i++)
		assert_int_equal(rd[i].calls, 0);
	for (i = 0; i < 4; i++)
		assert_int_equal(write(p[i][1], "a", 1), 1);
	for (i = 0, n = 0; i < 4; i++)
		n += run_op(loop, &reads[i], &rd[i]);
	assert_int_equal(n, 4);
	assert_int_equal(ops_inflight(loop), 0);
	for (i = 0; i < 6; i++) {
		assert_int_equal(rd[i].calls, 1);
		close(p[i][0]);
		close(p[i][1]);
	}
	proa_test_loop_close(loop);
	assert_no_worker_left();
	(void)state;
}

/* ---- a result is home before the worker's next job starts
 * ------------------------------------------------------------ */

static atomic_bool first_seen; /* set on the loop thread */

static int32_t first_job(void *arg, void **value)
{
	(void)arg;
	(void)value;
	return 1;
}

/* Waits (bounded) for the loop to have seen first_job's result. */
static int32_t waits_for_first(void *arg, void **value)
{
	uint64_t end = proa_test_now_ns() + UINT64_C(10) * 1000000000;

	(void)arg;
	(void)value;
	while (!atomic_load(&first_seen))
		if (proa_test_now_ns() > end)
			return -ETIMEDOUT;
		else
			sched_yield();
	return 0;
}

static void first_done(struct proa_future *fut, void *arg)
{
	(void)fut;
	(void)arg;
	atomic_store(&first_seen, true);
}

/* One worker, job B waiting for the loop's answer to job A: A's result
 * must leave before B starts, not wait to travel with B's. */
static void test_result_leaves_before_the_next_job_starts(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_pool *pool = new_pool(PROA_PLACE_NONE, 1, 0);
	struct proa_future a, b;

	(void)state;
	atomic_store(&first_seen, false);
	proa_future_init(&a, loop);
	proa_future_init(&b, loop);
	assert_res(proa_pool_submit_to(pool, loop, PROA_LANE_CPU, first_job,
				       NULL, &a, 0),
		   0);
	assert_res(proa_future_add_done_callback(&a, first_done, NULL), 0);
	assert_res(proa_pool_submit_to(pool, loop, PROA_LANE_CPU,
				       waits_for_first, NULL, &b, 0),
		   0);
	assert_res(proa_loop_run_until_complete(loop, &b), 0);
	assert_int_equal(proa_future_result(&a, NULL), 1);
	assert_int_equal(proa_future_result(&b, NULL), 0);
	assert_res(proa_future_fini(&a), 0);
	assert_res(proa_future_fini(&b), 0);
	assert_res(proa_pool_free(pool), 0);
	assert_no_worker_left();
	proa_test_loop_close(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_million_jobs_each_delivered_once_on_the_loop),
	    cmocka_unit_test(test_cancel_98_queued_behind_2_blocked),
	    cmocka_unit_test(test_cancel_before_handover_and_after_start),
	    cmocka_unit_test(test_cancel_tells_gathered_from_queued_jobs),
	    cmocka_unit_test(test_cancel_races_workers_taking_jobs),
	    cmocka_unit_test(test_blocked_dns_lane_does_not_delay_file_lane),
	    cmocka_unit_test(test_full_queue_rejects_and_loses_nothing),
	    cmocka_unit_test(test_worker_affinity_matches_placement),
	    cmocka_unit_test(test_unbound_workers_not_pinned),
	    cmocka_unit_test(test_shutdown_with_pending_work_leaves_no_thread),
	    cmocka_unit_test(test_jobs_refused_at_handover_are_counted),
	    cmocka_unit_test(test_pool_freed_before_its_loop_closes),
	    cmocka_unit_test(test_loop_close_takes_its_default_pool_along),
	    cmocka_unit_test(test_bad_input),
	    cmocka_unit_test(test_getaddrinfo),
	    cmocka_unit_test(test_missing_file_opcodes_run_on_the_file_lane),
	    cmocka_unit_test(
		test_cancel_after_the_result_came_home_changes_nothing),
	    cmocka_unit_test(test_cancel_all_reaches_ops_away_on_the_pool),
	    cmocka_unit_test(test_file_op_refused_at_run_time_goes_to_the_lane),
	    cmocka_unit_test(test_result_leaves_before_the_next_job_starts),
	    cmocka_unit_test(
		test_caller_owned_records_freed_in_their_callbacks),
	    cmocka_unit_test(test_caller_owned_records_on_every_other_path),
	};

	proa_test_require_uring();
	return cmocka_run_group_tests_name("pool.jobs", tests, group_setup,
					   NULL);
}
