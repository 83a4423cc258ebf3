/* SPDX-License-Identifier: MIT */
/*
 * perf/bench.c - proa against its peers, same process, same machine:
 *
 *   call_soon      N callbacks through the ready queue (libuv: idle handles)
 *   threadsafe     call_soon_threadsafe from 1 and 4 producer threads,
 *                  one item per call and bursts of 16 per
 *                  call_soon_threadsafe_many (libuv: uv_async_send + a
 *                  mutex-protected queue; a burst under one lock)
 *   wake_rtt       round trips to a loop asleep on another CPU: loop-loop
 *                  (two loops post to each other; libuv: two loops and
 *                  uv_async_send) and thread-loop (a thread posts, the
 *                  callback answers on an eventfd; libuv: uv_async_send);
 *                  raw: two threads, two eventfds, the floor for both;
 *                  raw_uring_poll: two threads, two rings, each asleep
 *                  on a multishot poll of its eventfd as a proa loop is,
 *                  the floor of proa's own loop-loop wake-up;
 *                  raw_msg_ring: the same with MSG_RING each way, which
 *                  proa does not use (it measured slower)
 *   timers         start+cancel pairs with 1k/100k/1M live timers, the
 *                  churned one due first (near) or among them (far); 100k
 *                  timers firing (libuv: uv_timer_*)
 *   nop            NOP operations, 32 in flight (raw liburing)
 *   pool           1M empty jobs in a burst (the first of the process,
 *                  then again with the threads warm), jobs one after
 *                  another, 10k jobs of 100 us; job records the caller's
 *                  (proa_pool_work; libuv: uv_queue_work on uv_work_t),
 *                  and the warm burst again on records proa allocates
 *                  (proa_pool_submit_to: impl "proa_submit")
 *
 * Each measurement is one JSON line on stdout:
 *   {"bench":"timers","param":"churn near, 1000 live","impl":"proa",
 *    "value":123.4,"unit":"ns/op"}
 * Units ending in "/s" are better higher; the others lower.  perf/run
 * repeats the whole program, takes medians and prints the ratios.
 *
 * The loop thread is pinned to CPU 0 and other threads to CPU 1 where the
 * machine has two CPUs (docs/benchmarks.md: the two sides on different cores);
 * the pool benchmarks run unpinned (see main()).  Memory a benchmark
 * writes while timed is faulted in beforehand, for proa and peer alike.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "proa.h"

#ifdef PROA_PERF_HAVE_UV
#include <uv.h>
#endif

static int quick;

/*
 * --case NAME and --impl NAME: run only the measurements of that case (its
 * param, less " p50"/" p99": "1 producer", "loop-loop", "1M empty burst")
 * and of that impl ("proa", "libuv", "raw_eventfd", ...), for A/B work
 * on one row; perf/run passes neither.  A case run alone is the first of
 * its process: the pool's warm bursts, for one, then run cold.
 */
static const char *only_case, *only_impl;
static unsigned n_selected;

static int selected(const char *param, const char *impl)
{
	if ((only_case && strcmp(param, only_case) != 0) ||
	    (only_impl && strcmp(impl, only_impl) != 0))
		return 0;
	n_selected++;
	return 1;
}

#define SCALE(n) (quick ? (n) / 10 : (n))

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CPU time of the calling thread. */
static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void pin(int cpu)
{
	cpu_set_t set;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/* Touch every page of fresh memory so that page faults stay out of the
 * timed part (a plain memset after calloc is optimised away). */
static void prefault(void *p, size_t len)
{
	volatile char *c = p;
	size_t i;

	for (i = 0; i < len; i += 4096)
		c[i] = 0;
}

/* Let the calling thread (and the threads it creates) run on every CPU. */
static void unpin(void)
{
	cpu_set_t set;
	long i, n = sysconf(_SC_NPROCESSORS_ONLN);

	CPU_ZERO(&set);
	for (i = 0; i < n && i < CPU_SETSIZE; i++)
		CPU_SET((int)i, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void emit(const char *bench, const char *param, const char *impl,
		 double value, const char *unit)
{
	printf("{\"bench\":\"%s\",\"param\":\"%s\",\"impl\":\"%s\","
	       "\"value\":%.3f,\"unit\":\"%s\"}\n",
	       bench, param, impl, value, unit);
	fflush(stdout);
}

static void die(const char *what, int err)
{
	fprintf(stderr, "bench: %s: %s\n", what, proa_strerror(err));
	exit(1); /* NOLINT(concurrency-mt-unsafe): a benchmark gives up */
}

#define CHECK(call)                                                            \
	do {                                                                   \
		int rc_ = (call);                                              \
		if (rc_ < 0)                                                   \
			die(#call, rc_);                                       \
	} while (0)

static struct proa_loop *new_loop(void)
{
	struct proa_loop *loop;

	CHECK(proa_loop_new(&loop, NULL));
	return loop;
}

static void free_loop(struct proa_loop *loop)
{
	CHECK(proa_loop_close(loop));
	CHECK(proa_loop_free(loop));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t pct(uint64_t *v, size_t n, unsigned p)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return v[(n - 1) * p / 100];
}

/* ---- call_soon -------------------------------------------------------------
 */

#define SOON_HANDLES 1000

struct soon {
	struct proa_loop *loop;
	struct proa_handle h[SOON_HANDLES];
	uint64_t left;
};

static struct soon *g_soon;

static void soon_again(void *arg)
{
	struct proa_handle *h = arg;

	if (g_soon->left == 0)
		return;
	g_soon->left--;
	proa_loop_call_soon(g_soon->loop, h, soon_again, h);
}

static void bench_call_soon(void)
{
	struct soon *s = calloc(1, sizeof(*s));
	uint64_t n = SCALE(10000000u), t0, i;

	s->loop = new_loop();
	g_soon = s;
	s->left = n;
	for (i = 0; i < SOON_HANDLES; i++)
		CHECK(proa_loop_call_soon(s->loop, &s->h[i], soon_again,
					  &s->h[i]));
	t0 = now_ns();
	CHECK(proa_loop_run(s->loop, PROA_RUN_DEFAULT));
	emit("call_soon", "1000 handles", "proa",
	     (double)(now_ns() - t0) / (double)n, "ns/op");
	free_loop(s->loop);
	free(s);
}

#ifdef PROA_PERF_HAVE_UV
static uint64_t uv_soon_left;

static void soon_idle_cb(uv_idle_t *h)
{
	if (uv_soon_left == 0) {
		uv_idle_stop(h);
		return;
	}
	uv_soon_left--;
}

static void bench_call_soon_uv(void)
{
	uv_loop_t loop;
	uv_idle_t *h = calloc(SOON_HANDLES, sizeof(*h));
	uint64_t n = SCALE(10000000u), t0;
	unsigned i;

	uv_loop_init(&loop);
	uv_soon_left = n;
	for (i = 0; i < SOON_HANDLES; i++) {
		uv_idle_init(&loop, &h[i]);
		uv_idle_start(&h[i], soon_idle_cb);
	}
	t0 = now_ns();
	uv_run(&loop, UV_RUN_DEFAULT);
	emit("call_soon", "1000 handles", "libuv",
	     (double)(now_ns() - t0) / (double)n, "ns/op");
	for (i = 0; i < SOON_HANDLES; i++)
		uv_close((uv_handle_t *)&h[i], NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	free(h);
}
#endif

/* ---- call_soon_threadsafe
 * ---------------------------------------------------- */

struct ts {
	struct proa_loop *loop;
	struct proa_handle *h; /* one per item */
	uint64_t per_producer;
	unsigned producers;
	unsigned chain; /* items per post: 1, or a burst posted at once */
	uint64_t received, total;
	uint64_t t_first, t_last;
	atomic_uint ready;
	atomic_uint go;
#ifdef PROA_PERF_HAVE_UV
	uv_loop_t uvloop;
	uv_async_t async;
	pthread_mutex_t mu;
	struct uv_item *head, **tail;
#endif
};

struct ts_prod {
	struct ts *t;
	unsigned idx;
};

static void ts_cb(void *arg)
{
	struct ts *t = arg;

	if (++t->received == t->total) {
		t->t_last = now_ns();
		proa_loop_stop(t->loop);
	}
}

static void *ts_producer(void *arg)
{
	struct ts_prod *p = arg;
	struct ts *t = p->t;
	uint64_t i, base = p->idx * t->per_producer;

	pin(1);
	atomic_fetch_add(&t->ready, 1);
	while (!atomic_load(&t->go))
		sched_yield();
	if (t->chain > 1) {
		struct proa_handle *hs[64];
		unsigned k;

		/* per_producer is a multiple of the chain (see below). */
		for (i = 0; i < t->per_producer; i += t->chain) {
			for (k = 0; k < t->chain; k++) {
				hs[k] = &t->h[base + i + k];
				hs[k]->fn = ts_cb;
				hs[k]->arg = t;
			}
			if (proa_loop_call_soon_threadsafe_many(t->loop, hs,
								t->chain) < 0)
				abort();
		}
		return NULL;
	}
	for (i = 0; i < t->per_producer; i++) {
		if (proa_loop_call_soon_threadsafe(t->loop, &t->h[base + i],
						   ts_cb, t) < 0)
			abort();
	}
	return NULL;
}

static void ts_param(char *buf, size_t len, unsigned producers, unsigned chain)
{
	int n = snprintf(buf, len, "%u producer%s", producers,
			 producers > 1 ? "s" : "");

	if (chain > 1 && n > 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, ", bursts of %u", chain);
}

static void bench_threadsafe(unsigned producers, unsigned chain)
{
	struct ts *t = calloc(1, sizeof(*t));
	struct ts_prod p[8];
	pthread_t th[8];
	char param[48];
	unsigned i;

	t->per_producer =
	    (uint64_t)(SCALE(4000000u) / producers / chain) * chain;
	t->chain = chain;
	t->producers = producers;
	t->total = t->per_producer * producers;
	t->h = calloc(t->total, sizeof(*t->h));
	/* Fault the handles in now, not in the timed part (the libuv peer's
	 * items get the same treatment). */
	prefault(t->h, t->total * sizeof(*t->h));
	t->loop = new_loop();
	proa_loop_ref(t->loop);
	for (i = 0; i < producers; i++) {
		p[i].t = t;
		p[i].idx = i;
		pthread_create(&th[i], NULL, ts_producer, &p[i]);
	}
	while (atomic_load(&t->ready) < producers)
		sched_yield();
	t->t_first = now_ns();
	atomic_store(&t->go, 1);
	CHECK(proa_loop_run(t->loop, PROA_RUN_FOREVER));
	for (i = 0; i < producers; i++)
		pthread_join(th[i], NULL);
	ts_param(param, sizeof(param), producers, chain);
	emit("threadsafe", param, "proa",
	     (double)t->total * 1e9 / (double)(t->t_last - t->t_first),
	     "items/s");
	proa_loop_unref(t->loop);
	free_loop(t->loop);
	free(t->h);
	free(t);
}

#ifdef PROA_PERF_HAVE_UV
/* The standard libuv pattern: lock, append, unlock, uv_async_send; the
 * async callback takes the whole list under the lock and runs it. */
struct uv_item {
	struct uv_item *next;
	void (*fn)(struct ts *t);
	struct ts *t;
};

static void uv_ts_item(struct ts *t)
{
	if (++t->received == t->total) {
		t->t_last = now_ns();
		uv_close((uv_handle_t *)&t->async, NULL);
	}
}

static void uv_ts_async(uv_async_t *a)
{
	struct ts *t = a->data;
	struct uv_item *list, *it;

	pthread_mutex_lock(&t->mu);
	list = t->head;
	t->head = NULL;
	t->tail = &t->head;
	pthread_mutex_unlock(&t->mu);
	while (list) {
		it = list;
		list = it->next; /* before fn: it may reuse the item */
		it->fn(it->t);
	}
}

static void *uv_ts_producer(void *arg)
{
	struct ts_prod *p = arg;
	struct ts *t = p->t;
	struct uv_item *items = calloc(t->per_producer, sizeof(*items));
	uint64_t i;

	prefault(items, t->per_producer * sizeof(*items));
	pin(1);
	atomic_fetch_add(&t->ready, 1);
	while (!atomic_load(&t->go))
		sched_yield();
	/* A burst: the items appended under one lock, one async send. */
	for (i = 0; i < t->per_producer; i += t->chain) {
		uint64_t k;

		for (k = i; k < i + t->chain; k++) {
			items[k].fn = uv_ts_item;
			items[k].t = t;
		}
		pthread_mutex_lock(&t->mu);
		for (k = i; k < i + t->chain; k++) {
			*t->tail = &items[k];
			t->tail = &items[k].next;
		}
		pthread_mutex_unlock(&t->mu);
		uv_async_send(&t->async);
	}
	return items; /* freed by the joiner, after the loop has run them */
}

static void bench_threadsafe_uv(unsigned producers, unsigned chain)
{
	struct ts *t = calloc(1, sizeof(*t));
	struct ts_prod p[8];
	pthread_t th[8];
	void *items[8];
	char param[48];
	unsigned i;

	t->per_producer =
	    (uint64_t)(SCALE(4000000u) / producers / chain) * chain;
	t->chain = chain;
	t->total = t->per_producer * producers;
	uv_loop_init(&t->uvloop);
	uv_async_init(&t->uvloop, &t->async, uv_ts_async);
	t->async.data = t;
	pthread_mutex_init(&t->mu, NULL);
	t->tail = &t->head;
	for (i = 0; i < producers; i++) {
		p[i].t = t;
		p[i].idx = i;
		pthread_create(&th[i], NULL, uv_ts_producer, &p[i]);
	}
	while (atomic_load(&t->ready) < producers)
		sched_yield();
	t->t_first = now_ns();
	atomic_store(&t->go, 1);
	uv_run(&t->uvloop, UV_RUN_DEFAULT);
	for (i = 0; i < producers; i++) {
		pthread_join(th[i], &items[i]);
		free(items[i]);
	}
	ts_param(param, sizeof(param), producers, chain);
	emit("threadsafe", param, "libuv",
	     (double)t->total * 1e9 / (double)(t->t_last - t->t_first),
	     "items/s");
	uv_loop_close(&t->uvloop);
	pthread_mutex_destroy(&t->mu);
	free(t);
}
#endif

/* ---- wake round trip --------------------------------------------------------
 */

#define RTT_MAX 4000

struct rtt {
	struct proa_loop *a, *b; /* a: pinger (CPU 0), b: ponger (CPU 1) */
	struct proa_handle ha, hb;
	unsigned n, i;
	uint64_t t0;
	uint64_t v[RTT_MAX];
	atomic_uint b_ready;
};

static struct rtt *g_rtt;

static void rtt_ping(void *arg);

static void rtt_pong(void *arg)
{
	(void)arg;
	if (proa_loop_call_soon_threadsafe(g_rtt->a, &g_rtt->ha, rtt_ping,
					   NULL) < 0)
		abort();
}

static void rtt_send(void)
{
	g_rtt->t0 = now_ns();
	if (proa_loop_call_soon_threadsafe(g_rtt->b, &g_rtt->hb, rtt_pong,
					   NULL) < 0)
		abort();
}

static void rtt_ping(void *arg)
{
	(void)arg;
	g_rtt->v[g_rtt->i++] = now_ns() - g_rtt->t0;
	if (g_rtt->i == g_rtt->n) {
		proa_loop_stop_threadsafe(g_rtt->b);
		proa_loop_stop(g_rtt->a);
		return;
	}
	rtt_send();
}

static void *rtt_b_main(void *arg)
{
	struct rtt *r = arg;

	pin(1);
	r->b = new_loop();
	proa_loop_ref(r->b);
	atomic_store(&r->b_ready, 1);
	CHECK(proa_loop_run(r->b, PROA_RUN_FOREVER));
	/* A loop closes on the thread that ran it. */
	proa_loop_unref(r->b);
	free_loop(r->b);
	return NULL;
}

/* @shape: "loop-loop" (two loops ping-pong) or "thread-loop" (a plain
 * thread posts to a sleeping loop, whose callback answers on an eventfd). */
static void emit_rtt(const char *shape, const char *impl, uint64_t *v,
		     unsigned n)
{
	char param[32];

	snprintf(param, sizeof(param), "%s p50", shape);
	emit("wake_rtt", param, impl, (double)pct(v, n, 50) / 1000.0, "us");
	snprintf(param, sizeof(param), "%s p99", shape);
	emit("wake_rtt", param, impl, (double)pct(v, n, 99) / 1000.0, "us");
}

static void bench_wake_rtt(void)
{
	struct rtt *r = calloc(1, sizeof(*r));
	pthread_t th;

	g_rtt = r;
	r->n = quick ? 200 : 2000;
	pin(0);
	r->a = new_loop();
	pthread_create(&th, NULL, rtt_b_main, r);
	while (!atomic_load(&r->b_ready))
		sched_yield();
	proa_loop_ref(r->a);
	CHECK(proa_loop_run(r->a, PROA_RUN_NOWAIT)); /* bind a to us */
	rtt_send();
	CHECK(proa_loop_run(r->a, PROA_RUN_FOREVER));
	pthread_join(th, NULL);
	emit_rtt("loop-loop", "proa", r->v, r->n);
	proa_loop_unref(r->a);
	free_loop(r->a);
	free(r);
}

/* A plain thread (CPU 1) posts one item to a loop asleep on CPU 0; the
 * callback answers with an eventfd write the thread waits for in read(). */
struct trt {
	struct proa_loop *loop;
	struct proa_handle h;
	int reply;
	unsigned n;
	uint64_t *v;
};

static void trt_cb(void *arg)
{
	struct trt *r = arg;
	uint64_t one = 1;

	if (write(r->reply, &one, 8) != 8)
		abort();
}

static void *trt_sender(void *arg)
{
	struct trt *r = arg;
	uint64_t x, t0;
	unsigned i;

	pin(1);
	for (i = 0; i < r->n; i++) {
		t0 = now_ns();
		/* The handle is idle again before trt_cb runs, and the
		 * eventfd orders that before our read returns. */
		if (proa_loop_call_soon_threadsafe(r->loop, &r->h, trt_cb, r) <
			0 ||
		    read(r->reply, &x, 8) != 8)
			abort();
		r->v[i] = now_ns() - t0;
	}
	proa_loop_stop_threadsafe(r->loop);
	return NULL;
}

static void bench_wake_rtt_thread(void)
{
	struct trt *r = calloc(1, sizeof(*r));
	pthread_t th;

	r->n = quick ? 200 : 2000;
	r->v = calloc(r->n, sizeof(*r->v));
	r->reply = eventfd(0, EFD_CLOEXEC);
	pin(0);
	r->loop = new_loop();
	proa_loop_ref(r->loop);
	CHECK(proa_loop_run(r->loop, PROA_RUN_NOWAIT)); /* bind it to us */
	pthread_create(&th, NULL, trt_sender, r);
	CHECK(proa_loop_run(r->loop, PROA_RUN_FOREVER));
	pthread_join(th, NULL);
	emit_rtt("thread-loop", "proa", r->v, r->n);
	proa_loop_unref(r->loop);
	free_loop(r->loop);
	close(r->reply);
	free(r->v);
	free(r);
}

/* Raw floor: two threads, two eventfds, blocking read/write. */
struct raw_rtt {
	int to_b, to_a;
	unsigned n;
};

static void *raw_b(void *arg)
{
	struct raw_rtt *r = arg;
	uint64_t x;
	unsigned i;

	pin(1);
	for (i = 0; i < r->n; i++) {
		if (read(r->to_b, &x, 8) != 8 || write(r->to_a, &x, 8) != 8)
			abort();
	}
	return NULL;
}

static void bench_wake_rtt_raw(void)
{
	struct raw_rtt r;
	uint64_t *v, x = 1, t0;
	pthread_t th;
	unsigned i;

	r.n = quick ? 200 : 2000;
	v = calloc(r.n, sizeof(*v));
	r.to_b = eventfd(0, EFD_CLOEXEC);
	r.to_a = eventfd(0, EFD_CLOEXEC);
	pin(0);
	pthread_create(&th, NULL, raw_b, &r);
	for (i = 0; i < r.n; i++) {
		t0 = now_ns();
		if (write(r.to_b, &x, 8) != 8 || read(r.to_a, &x, 8) != 8)
			abort();
		v[i] = now_ns() - t0;
	}
	pthread_join(th, NULL);
	/* The floor for both shapes: the same numbers on both rows. */
	emit_rtt("loop-loop", "raw_eventfd", v, r.n);
	emit_rtt("thread-loop", "raw_eventfd", v, r.n);
	close(r.to_a);
	close(r.to_b);
	free(v);
}

/*
 * Raw io_uring floor of the loop-loop shape: two threads, each asleep in
 * its own ring (SINGLE_ISSUER|DEFER_TASKRUN where the kernel has them, as
 * a proa loop's), ping-pong one IORING_OP_MSG_RING each way; a side
 * submits its message, then waits: two io_uring_enter().  proa's loops woke
 * each other this way until it measured slower than an eventfd write into
 * the target's multishot poll (the next row).  Nothing if the kernel has
 * no MSG_RING.
 */
#define RAW_MSG_TAG 42

struct raw_msg {
	struct io_uring a, b;
	atomic_int b_fd; /* -1 until b's ring is up */
	unsigned n;
};

/* A ring set up as a proa loop's, on the calling thread; dies on failure. */
static void raw_ring_init(struct io_uring *r)
{
	int ret = io_uring_queue_init(
	    8, r, IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN);

	if (ret == -EINVAL)
		ret = io_uring_queue_init(8, r, 0);
	if (ret < 0)
		die("io_uring_queue_init", ret);
}

/* Send one message to the ring @fd; failures come back as a CQE. */
static void raw_msg_send(struct io_uring *r, int fd)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(r);
	int ret;

	io_uring_prep_msg_ring(sqe, fd, 0, RAW_MSG_TAG, 0);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	sqe->user_data = 1;
	ret = io_uring_submit(r);
	if (ret < 0)
		die("io_uring_submit", ret);
}

/* Sleep until the next message arrives. */
static void raw_msg_wait(struct io_uring *r)
{
	struct io_uring_cqe *cqe;
	int ret = io_uring_wait_cqe(r, &cqe);

	if (ret < 0)
		die("io_uring_wait_cqe", ret);
	if (cqe->user_data != RAW_MSG_TAG)
		die("MSG_RING", cqe->res < 0 ? cqe->res : -EPROTO);
	io_uring_cqe_seen(r, cqe);
}

static void *raw_msg_b(void *arg)
{
	struct raw_msg *r = arg;
	unsigned i;

	pin(1);
	raw_ring_init(&r->b);
	atomic_store(&r->b_fd, r->b.ring_fd);
	for (i = 0; i < r->n; i++) {
		raw_msg_wait(&r->b);
		raw_msg_send(&r->b, r->a.ring_fd);
	}
	io_uring_queue_exit(&r->b);
	return NULL;
}

static void bench_wake_rtt_msg_ring(void)
{
	struct raw_msg *r = calloc(1, sizeof(*r));
	struct io_uring_probe *probe;
	uint64_t *v, t0;
	pthread_t th;
	unsigned i;
	int fd;

	pin(0);
	raw_ring_init(&r->a);
	probe = io_uring_get_probe_ring(&r->a);
	if (!probe || !io_uring_opcode_supported(probe, IORING_OP_MSG_RING)) {
		io_uring_free_probe(probe);
		io_uring_queue_exit(&r->a);
		free(r);
		return;
	}
	io_uring_free_probe(probe);
	r->n = quick ? 200 : 2000;
	v = calloc(r->n, sizeof(*v));
	atomic_init(&r->b_fd, -1);
	pthread_create(&th, NULL, raw_msg_b, r);
	while ((fd = atomic_load(&r->b_fd)) < 0)
		sched_yield();
	for (i = 0; i < r->n; i++) {
		t0 = now_ns();
		raw_msg_send(&r->a, fd);
		raw_msg_wait(&r->a);
		v[i] = now_ns() - t0;
	}
	pthread_join(th, NULL);
	emit_rtt("loop-loop", "raw_msg_ring", v, r->n);
	io_uring_queue_exit(&r->a);
	free(v);
	free(r);
}

/*
 * Raw io_uring floor of the wake-up proa's loops use: two threads, each
 * asleep in its own ring (set up as raw_ring_init() does) on a multishot
 * poll of its own eventfd, as a proa loop is; a side writes the other's
 * eventfd, then waits for its own poll's completion.  Neither counter is
 * ever read, as proa never reads its loops'.  Between a wake-up and the
 * reply a side only reaps one CQE, so the distance from this row to
 * proa's loop-loop row is what proa's own code costs.  Nothing if the
 * kernel has no multishot poll (before 5.13).
 */
#define RAW_POLL_TAG 43

struct raw_poll {
	struct io_uring a, b;
	int efd_a, efd_b;
	atomic_int b_up; /* 1 once b's poll is armed (b dies on failure) */
	unsigned n;
};

static void raw_poll_arm(struct io_uring *r, int fd)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(r);
	int ret;

	io_uring_prep_poll_multishot(sqe, fd, POLLIN);
	sqe->user_data = RAW_POLL_TAG;
	ret = io_uring_submit(r);
	if (ret < 0)
		die("io_uring_submit", ret);
}

/* Sleep until @fd is written: 0, or the poll's error.  Arms the poll
 * again if the kernel ended it (a CQE without IORING_CQE_F_MORE). */
static int raw_poll_wait(struct io_uring *r, int fd)
{
	struct io_uring_cqe *cqe;
	int ret = io_uring_wait_cqe(r, &cqe);
	unsigned flags;

	if (ret < 0)
		die("io_uring_wait_cqe", ret);
	if (cqe->user_data != RAW_POLL_TAG)
		die("multishot poll", -EPROTO);
	ret = cqe->res < 0 ? cqe->res : 0;
	flags = cqe->flags;
	io_uring_cqe_seen(r, cqe);
	if (ret == 0 && !(flags & IORING_CQE_F_MORE))
		raw_poll_arm(r, fd);
	return ret;
}

static void raw_poll_kick(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) != sizeof(one))
		die("eventfd write", -errno);
}

static void *raw_poll_b(void *arg)
{
	struct raw_poll *r = arg;
	unsigned i;
	int ret;

	pin(1);
	raw_ring_init(&r->b);
	raw_poll_arm(&r->b, r->efd_b);
	atomic_store(&r->b_up, 1);
	for (i = 0; i < r->n; i++) {
		ret = raw_poll_wait(&r->b, r->efd_b);
		if (ret < 0)
			die("multishot poll", ret);
		raw_poll_kick(r->efd_a);
	}
	io_uring_queue_exit(&r->b);
	return NULL;
}

static void bench_wake_rtt_poll(void)
{
	struct raw_poll *r = calloc(1, sizeof(*r));
	uint64_t *v, t0;
	pthread_t th;
	unsigned i;
	int ret;

	pin(0);
	r->efd_a = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	r->efd_b = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->efd_a < 0 || r->efd_b < 0)
		die("eventfd", -errno);
	raw_ring_init(&r->a);
	/* One wake-up of our own: a kernel without multishot poll answers
	 * it with -EINVAL, and there is no row. */
	raw_poll_arm(&r->a, r->efd_a);
	raw_poll_kick(r->efd_a);
	ret = raw_poll_wait(&r->a, r->efd_a);
	if (ret == -EINVAL)
		goto out;
	if (ret < 0)
		die("multishot poll", ret);
	r->n = quick ? 200 : 2000;
	v = calloc(r->n, sizeof(*v));
	atomic_init(&r->b_up, 0);
	pthread_create(&th, NULL, raw_poll_b, r);
	while (!atomic_load(&r->b_up))
		sched_yield();
	for (i = 0; i < r->n; i++) {
		t0 = now_ns();
		raw_poll_kick(r->efd_b);
		ret = raw_poll_wait(&r->a, r->efd_a);
		if (ret < 0)
			die("multishot poll", ret);
		v[i] = now_ns() - t0;
	}
	pthread_join(th, NULL);
	emit_rtt("loop-loop", "raw_uring_poll", v, r->n);
	free(v);
out:
	io_uring_queue_exit(&r->a);
	close(r->efd_a);
	close(r->efd_b);
	free(r);
}

#ifdef PROA_PERF_HAVE_UV
struct uv_rtt {
	uv_loop_t la, lb;
	uv_async_t aa, ab;
	unsigned n, i;
	uint64_t t0;
	uint64_t *v;
	atomic_uint b_ready;
};

static void uv_rtt_b(uv_async_t *h)
{
	struct uv_rtt *r = h->data;

	if (r->i == r->n) {
		uv_close((uv_handle_t *)&r->ab, NULL);
		return;
	}
	uv_async_send(&r->aa);
}

static void uv_rtt_a(uv_async_t *h)
{
	struct uv_rtt *r = h->data;

	r->v[r->i++] = now_ns() - r->t0;
	if (r->i == r->n) {
		uv_async_send(&r->ab); /* b sees i == n and closes */
		uv_close((uv_handle_t *)&r->aa, NULL);
		return;
	}
	r->t0 = now_ns();
	uv_async_send(&r->ab);
}

static void *uv_rtt_b_main(void *arg)
{
	struct uv_rtt *r = arg;

	pin(1);
	atomic_store(&r->b_ready, 1);
	uv_run(&r->lb, UV_RUN_DEFAULT);
	return NULL;
}

static void bench_wake_rtt_uv(void)
{
	struct uv_rtt *r = calloc(1, sizeof(*r));
	pthread_t th;

	r->n = quick ? 200 : 2000;
	r->v = calloc(r->n, sizeof(*r->v));
	uv_loop_init(&r->la);
	uv_loop_init(&r->lb);
	uv_async_init(&r->la, &r->aa, uv_rtt_a);
	uv_async_init(&r->lb, &r->ab, uv_rtt_b);
	r->aa.data = r;
	r->ab.data = r;
	pin(0);
	pthread_create(&th, NULL, uv_rtt_b_main, r);
	while (!atomic_load(&r->b_ready))
		sched_yield();
	r->t0 = now_ns();
	uv_async_send(&r->ab);
	uv_run(&r->la, UV_RUN_DEFAULT);
	pthread_join(th, NULL);
	emit_rtt("loop-loop", "libuv", r->v, r->n);
	uv_loop_close(&r->la);
	uv_loop_close(&r->lb);
	free(r->v);
	free(r);
}

/* thread-loop on libuv: uv_async_send to a loop asleep on CPU 0, whose
 * async callback answers with an eventfd write. */
struct uv_trt {
	uv_loop_t loop;
	uv_async_t async;
	int reply;
	atomic_uint done;
	unsigned n;
	uint64_t *v;
};

static void uv_trt_cb(uv_async_t *a)
{
	struct uv_trt *r = a->data;
	uint64_t one = 1;

	if (atomic_load(&r->done)) {
		uv_close((uv_handle_t *)a, NULL);
		return;
	}
	if (write(r->reply, &one, 8) != 8)
		abort();
}

static void *uv_trt_sender(void *arg)
{
	struct uv_trt *r = arg;
	uint64_t x, t0;
	unsigned i;

	pin(1);
	for (i = 0; i < r->n; i++) {
		t0 = now_ns();
		if (uv_async_send(&r->async) < 0 || read(r->reply, &x, 8) != 8)
			abort();
		r->v[i] = now_ns() - t0;
	}
	atomic_store(&r->done, 1);
	uv_async_send(&r->async);
	return NULL;
}

static void bench_wake_rtt_thread_uv(void)
{
	struct uv_trt *r = calloc(1, sizeof(*r));
	pthread_t th;

	r->n = quick ? 200 : 2000;
	r->v = calloc(r->n, sizeof(*r->v));
	r->reply = eventfd(0, EFD_CLOEXEC);
	pin(0);
	uv_loop_init(&r->loop);
	uv_async_init(&r->loop, &r->async, uv_trt_cb);
	r->async.data = r;
	pthread_create(&th, NULL, uv_trt_sender, r);
	uv_run(&r->loop, UV_RUN_DEFAULT);
	pthread_join(th, NULL);
	emit_rtt("thread-loop", "libuv", r->v, r->n);
	uv_loop_close(&r->loop);
	close(r->reply);
	free(r->v);
	free(r);
}
#endif

/* ---- timers ----------------------------------------------------------------
 */

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void timer_noop(void *arg)
{
	(void)arg;
}

static unsigned fired;

static void timer_fire(void *arg)
{
	(void)arg;
	fired++;
}

#define HOUR_NS (3600ull * 1000000000ull)
#define MS_NS 1000000ull

/*
 * Churn: @live timers armed 1-2 hours ahead (random, fixed seed), then
 * start+cancel pairs of one more timer.  near: the churned timer is due in
 * 1 ms, ahead of every live one (the hard shape for a heap: it goes to
 * the root and back); far: it is due at a random time 1-2 hours ahead,
 * among the live ones.
 */
static uint64_t churn_delay_ns(bool near)
{
	return near ? MS_NS : HOUR_NS + rng() % HOUR_NS;
}

static void churn_param(char *buf, size_t len, unsigned live, bool near)
{
	snprintf(buf, len, "churn %s, %u live", near ? "near" : "far", live);
}

static void bench_timers(unsigned live, bool near)
{
	struct proa_loop *loop = new_loop();
	struct proa_timer *t = calloc(live + 1, sizeof(*t));
	uint64_t pairs = SCALE(2000000u), i, t0;
	char param[32];
	unsigned k;

	rng_state = 88172645463325252ull;
	for (k = 0; k < live; k++)
		CHECK(proa_timer_start(loop, &t[k], HOUR_NS + rng() % HOUR_NS,
				       0, timer_noop, NULL));
	t0 = now_ns();
	for (i = 0; i < pairs; i++) {
		CHECK(proa_timer_start(loop, &t[live], churn_delay_ns(near), 0,
				       timer_noop, NULL));
		CHECK(proa_timer_cancel(&t[live]));
	}
	churn_param(param, sizeof(param), live, near);
	emit("timers", param, "proa", (double)(now_ns() - t0) / (double)pairs,
	     "ns/op");
	for (k = 0; k < live; k++)
		CHECK(proa_timer_cancel(&t[k]));
	free_loop(loop);
	free(t);
}

/* 100k one-shot timers due over 100 ms (fixed seed); the loop thread's CPU
 * time per fired timer.  grid: deadlines in whole milliseconds, as libuv's
 * always are, so both engines see the same number of distinct deadlines. */
static uint64_t fire_delay_ns(bool grid)
{
	uint64_t d = rng() % (100 * MS_NS);

	return grid ? d / MS_NS * MS_NS : d;
}

static const char *fire_param(bool grid)
{
	return grid ? "100k firing, 1 ms grid" : "100k firing";
}

static void bench_timers_fire(bool grid)
{
	unsigned n = SCALE(100000u), k;
	struct proa_loop *loop = new_loop();
	struct proa_timer *t = calloc(n, sizeof(*t));
	uint64_t c0;

	rng_state = 1;
	fired = 0;
	for (k = 0; k < n; k++)
		CHECK(proa_timer_start(loop, &t[k], fire_delay_ns(grid), 0,
				       timer_fire, NULL));
	c0 = thread_cpu_ns();
	CHECK(proa_loop_run(loop, PROA_RUN_DEFAULT));
	if (fired != n)
		die("timers fired", -EIO);
	emit("timers", fire_param(grid), "proa",
	     (double)(thread_cpu_ns() - c0) / (double)n, "cpu ns/op");
	free_loop(loop);
	free(t);
}

#ifdef PROA_PERF_HAVE_UV
static void uv_timer_noop(uv_timer_t *h)
{
	(void)h;
}

static void uv_timer_fire(uv_timer_t *h)
{
	(void)h;
	fired++;
}

static void bench_timers_uv(unsigned live, bool near)
{
	uv_loop_t loop;
	uv_timer_t *t = calloc(live + 1, sizeof(*t));
	uint64_t pairs = SCALE(2000000u), i, t0;
	char param[32];
	unsigned k;

	uv_loop_init(&loop);
	rng_state = 88172645463325252ull;
	for (k = 0; k <= live; k++)
		uv_timer_init(&loop, &t[k]);
	/* libuv's timers are in milliseconds. */
	for (k = 0; k < live; k++)
		uv_timer_start(&t[k], uv_timer_noop,
			       (HOUR_NS + rng() % HOUR_NS) / MS_NS, 0);
	t0 = now_ns();
	for (i = 0; i < pairs; i++) {
		uv_timer_start(&t[live], uv_timer_noop,
			       churn_delay_ns(near) / MS_NS, 0);
		uv_timer_stop(&t[live]);
	}
	churn_param(param, sizeof(param), live, near);
	emit("timers", param, "libuv", (double)(now_ns() - t0) / (double)pairs,
	     "ns/op");
	for (k = 0; k <= live; k++)
		uv_close((uv_handle_t *)&t[k], NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	free(t);
}

static void bench_timers_fire_uv(bool grid)
{
	unsigned n = SCALE(100000u), k;
	uv_timer_t *t = calloc(n, sizeof(*t));
	uv_loop_t loop;
	uint64_t c0;

	uv_loop_init(&loop);
	rng_state = 1;
	fired = 0;
	for (k = 0; k < n; k++) {
		uv_timer_init(&loop, &t[k]);
		uv_timer_start(&t[k], uv_timer_fire,
			       fire_delay_ns(grid) / MS_NS, 0);
	}
	c0 = thread_cpu_ns();
	uv_run(&loop, UV_RUN_DEFAULT);
	if (fired != n)
		die("libuv timers fired", -EIO);
	emit("timers", fire_param(grid), "libuv",
	     (double)(thread_cpu_ns() - c0) / (double)n, "cpu ns/op");
	for (k = 0; k < n; k++)
		uv_close((uv_handle_t *)&t[k], NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	free(t);
}
#endif

static void bench_timers_all(void)
{
	static const unsigned lives[] = {1000, 100000, 1000000};
	unsigned i, n = quick ? 2 : 3; /* no 1M in --quick */
	int v;

	char param[32];

	for (v = 1; v >= 0; v--) { /* near, then far */
		for (i = 0; i < n; i++) {
			churn_param(param, sizeof(param), lives[i], v);
			if (selected(param, "proa"))
				bench_timers(lives[i], v);
#ifdef PROA_PERF_HAVE_UV
			if (selected(param, "libuv"))
				bench_timers_uv(lives[i], v);
#endif
		}
	}
	for (v = 0; v <= 1; v++) { /* free deadlines, then the 1 ms grid */
		if (selected(fire_param(v), "proa"))
			bench_timers_fire(v);
#ifdef PROA_PERF_HAVE_UV
		if (selected(fire_param(v), "libuv"))
			bench_timers_fire_uv(v);
#endif
	}
}

/* ---- NOP operations
 * ----------------------------------------------------------- */

struct nops {
	struct proa_loop *loop;
	uint64_t left;
};

static void nop_cb(struct proa_op *op)
{
	struct nops *n = op->data;

	if (n->left == 0)
		return;
	n->left--;
	if (proa_op_nop(n->loop, op) < 0)
		abort();
}

static void bench_nop(void)
{
	struct nops n;
	struct proa_op ops[32];
	uint64_t total = SCALE(4000000u), t0;
	unsigned i;

	pin(0);
	n.loop = new_loop();
	n.left = total - 32;
	for (i = 0; i < 32; i++) {
		proa_op_init(&ops[i], nop_cb, &n);
		CHECK(proa_op_nop(n.loop, &ops[i]));
	}
	t0 = now_ns();
	CHECK(proa_loop_run(n.loop, PROA_RUN_DEFAULT));
	emit("nop", "32 in flight", "proa",
	     (double)(now_ns() - t0) / (double)total, "ns/op");
	free_loop(n.loop);
}

static void bench_nop_raw(void)
{
	struct io_uring ring;
	struct io_uring_cqe *cqe;
	uint64_t total = SCALE(4000000u), left, t0;
	unsigned i, head, seen;
	int ret;

	pin(0);
	/* liburing returns -errno. */
	ret = io_uring_queue_init(64, &ring, 0);
	if (ret < 0)
		die("io_uring_queue_init", ret);
	for (i = 0; i < 32; i++)
		io_uring_prep_nop(io_uring_get_sqe(&ring));
	left = total - 32;
	t0 = now_ns();
	for (;;) {
		ret = io_uring_submit_and_wait(&ring, 1);
		if (ret < 0)
			die("io_uring_submit_and_wait", ret);
		seen = 0;
		io_uring_for_each_cqe(&ring, head, cqe)
		{
			seen++;
			if (left > 0) {
				left--;
				io_uring_prep_nop(io_uring_get_sqe(&ring));
			}
		}
		io_uring_cq_advance(&ring, seen);
		if (left == 0 && io_uring_sq_ready(&ring) == 0)
			break;
	}
	emit("nop", "32 in flight", "raw_liburing",
	     (double)(now_ns() - t0) / (double)total, "ns/op");
	io_uring_queue_exit(&ring);
}

/* ---- pool -------------------------------------------------------------------
 */

static int32_t empty_job(void *arg, void **value)
{
	(void)arg;
	(void)value;
	return 0;
}

static int32_t spin_100us(void *arg, void **value)
{
	uint64_t end = now_ns() + 100000;

	(void)arg;
	(void)value;
	while (now_ns() < end)
		;
	return 0;
}

struct pjobs {
	struct proa_loop *loop;
	struct proa_future *futs;
	struct proa_pool_work *works;
	uint64_t *t_sub, *lat;
	unsigned n, done;
};

static struct pjobs *g_pj;

static void pj_done(struct proa_future *fut, void *arg)
{
	uintptr_t i = (uintptr_t)arg;

	g_pj->lat[i] = now_ns() - g_pj->t_sub[i];
	g_pj->done++;
	proa_future_fini(fut);
}

/*
 * @owned: the job records are the caller's (struct proa_pool_work, an
 * array faulted in beforehand, as libuv's uv_work_t array is): impl
 * "proa".  Otherwise proa_pool_submit_to() takes them from the loop's
 * cache and the heap: impl "proa_submit".
 */
static void bench_pool_burst(const char *param, unsigned n, proa_pool_fn fn,
			     bool owned)
{
	struct proa_pool_opts opts = {.placement = PROA_PLACE_NONE};
	const char *impl = owned ? "proa" : "proa_submit";
	struct pjobs pj = {0};
	struct proa_future *fut;
	struct proa_pool *pool;
	uint64_t t0;
	unsigned i;

	opts.lanes[PROA_LANE_CPU].queue = n;
	unpin(); /* see main() */
	pj.loop = new_loop();
	CHECK(proa_pool_new(&pool, &opts));
	if (owned) {
		pj.works = calloc(n, sizeof(*pj.works));
		prefault(pj.works, n * sizeof(*pj.works));
	} else {
		pj.futs = calloc(n, sizeof(*pj.futs));
		prefault(pj.futs, n * sizeof(*pj.futs));
	}
	pj.t_sub = calloc(n, sizeof(*pj.t_sub));
	pj.lat = calloc(n, sizeof(*pj.lat));
	prefault(pj.t_sub, n * sizeof(*pj.t_sub));
	prefault(pj.lat, n * sizeof(*pj.lat));
	pj.n = n;
	g_pj = &pj;
	t0 = now_ns();
	for (i = 0; i < n; i++) {
		fut = owned ? &pj.works[i].fut : &pj.futs[i];
		proa_future_init(fut, pj.loop);
		pj.t_sub[i] = now_ns();
		if (owned)
			CHECK(proa_pool_work_submit(pool, pj.loop,
						    PROA_LANE_CPU, &pj.works[i],
						    fn, NULL, 0));
		else
			CHECK(proa_pool_submit_to(pool, pj.loop, PROA_LANE_CPU,
						  fn, NULL, fut, 0));
		CHECK(proa_future_add_done_callback(fut, pj_done,
						    (void *)(uintptr_t)i));
	}
	CHECK(proa_loop_run(pj.loop, PROA_RUN_DEFAULT));
	emit("pool", param, impl, (double)n * 1e9 / (double)(now_ns() - t0),
	     "jobs/s");
	emit("pool_lat_p50", param, impl, (double)pct(pj.lat, n, 50) / 1000.0,
	     "us");
	emit("pool_lat_p99", param, impl, (double)pct(pj.lat, n, 99) / 1000.0,
	     "us");
	CHECK(proa_pool_free(pool));
	free_loop(pj.loop);
	free(pj.futs);
	free(pj.works);
	free(pj.t_sub);
	free(pj.lat);
}

/* One job after another: the round trip of a single job. */
static void pj_seq_done(struct proa_future *fut, void *arg)
{
	struct proa_pool *pool = arg;
	unsigned i = g_pj->done;

	g_pj->lat[i] = now_ns() - g_pj->t_sub[0];
	proa_future_fini(fut);
	if (++g_pj->done == g_pj->n)
		return;
	proa_future_init(fut, g_pj->loop);
	g_pj->t_sub[0] = now_ns();
	CHECK(proa_pool_submit_to(pool, g_pj->loop, PROA_LANE_CPU, empty_job,
				  NULL, fut, 0));
	CHECK(proa_future_add_done_callback(fut, pj_seq_done, pool));
}

static void bench_pool_seq(void)
{
	struct proa_pool_opts opts = {.placement = PROA_PLACE_NONE};
	struct pjobs pj = {0};
	struct proa_future fut;
	struct proa_pool *pool;
	unsigned n = quick ? 1000 : 10000;

	unpin(); /* see main() */
	pj.loop = new_loop();
	CHECK(proa_pool_new(&pool, &opts));
	pj.t_sub = calloc(1, sizeof(*pj.t_sub));
	pj.lat = calloc(n, sizeof(*pj.lat));
	prefault(pj.lat, n * sizeof(*pj.lat));
	pj.n = n;
	g_pj = &pj;
	proa_future_init(&fut, pj.loop);
	pj.t_sub[0] = now_ns();
	CHECK(proa_pool_submit_to(pool, pj.loop, PROA_LANE_CPU, empty_job, NULL,
				  &fut, 0));
	CHECK(proa_future_add_done_callback(&fut, pj_seq_done, pool));
	CHECK(proa_loop_run(pj.loop, PROA_RUN_DEFAULT));
	emit("pool_lat_p50", "sequential", "proa",
	     (double)pct(pj.lat, n, 50) / 1000.0, "us");
	emit("pool_lat_p99", "sequential", "proa",
	     (double)pct(pj.lat, n, 99) / 1000.0, "us");
	CHECK(proa_pool_free(pool));
	free_loop(pj.loop);
	free(pj.t_sub);
	free(pj.lat);
}

#ifdef PROA_PERF_HAVE_UV
struct uvjob {
	uv_work_t w;
	uint64_t t_sub;
	int spin;
};

static uint64_t *uv_lat;
static unsigned uv_done, uv_n;
static uv_loop_t *uv_pl;

static void uv_work(uv_work_t *w)
{
	struct uvjob *j = (struct uvjob *)w;

	if (j->spin)
		spin_100us(NULL, NULL);
}

static void uv_after(uv_work_t *w, int status)
{
	struct uvjob *j = (struct uvjob *)w;

	(void)status;
	uv_lat[uv_done++] = now_ns() - j->t_sub;
}

static void bench_pool_burst_uv(const char *param, unsigned n, int spin)
{
	struct uvjob *jobs = calloc(n, sizeof(*jobs));
	uv_loop_t loop;
	uint64_t t0;
	unsigned i;

	unpin(); /* see main() */
	uv_loop_init(&loop);
	uv_lat = calloc(n, sizeof(*uv_lat));
	prefault(jobs, n * sizeof(*jobs));
	prefault(uv_lat, n * sizeof(*uv_lat));
	uv_done = 0;
	t0 = now_ns();
	for (i = 0; i < n; i++) {
		jobs[i].spin = spin;
		jobs[i].t_sub = now_ns();
		uv_queue_work(&loop, &jobs[i].w, uv_work, uv_after);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	emit("pool", param, "libuv", (double)n * 1e9 / (double)(now_ns() - t0),
	     "jobs/s");
	emit("pool_lat_p50", param, "libuv",
	     (double)pct(uv_lat, n, 50) / 1000.0, "us");
	emit("pool_lat_p99", param, "libuv",
	     (double)pct(uv_lat, n, 99) / 1000.0, "us");
	uv_loop_close(&loop);
	free(uv_lat);
	free(jobs);
}

static void uv_seq_after(uv_work_t *w, int status)
{
	struct uvjob *j = (struct uvjob *)w;

	(void)status;
	uv_lat[uv_done++] = now_ns() - j->t_sub;
	if (uv_done == uv_n)
		return;
	j->t_sub = now_ns();
	uv_queue_work(uv_pl, &j->w, uv_work, uv_seq_after);
}

static void bench_pool_seq_uv(void)
{
	struct uvjob j = {0};
	uv_loop_t loop;

	unpin(); /* see main() */
	uv_loop_init(&loop);
	uv_pl = &loop;
	uv_n = quick ? 1000 : 10000;
	uv_lat = calloc(uv_n, sizeof(*uv_lat));
	prefault(uv_lat, uv_n * sizeof(*uv_lat));
	uv_done = 0;
	j.t_sub = now_ns();
	uv_queue_work(&loop, &j.w, uv_work, uv_seq_after);
	uv_run(&loop, UV_RUN_DEFAULT);
	emit("pool_lat_p50", "sequential", "libuv",
	     (double)pct(uv_lat, uv_n, 50) / 1000.0, "us");
	emit("pool_lat_p99", "sequential", "libuv",
	     (double)pct(uv_lat, uv_n, 99) / 1000.0, "us");
	uv_pl = NULL;
	uv_loop_close(&loop);
	free(uv_lat);
}
#endif

/* ---- main
 * -------------------------------------------------------------------- */

static int ts_selected(unsigned producers, unsigned chain, const char *impl)
{
	char param[48];

	ts_param(param, sizeof(param), producers, chain);
	return selected(param, impl);
}

/* Whether argv[i] is an option's value, not a benchmark's name. */
static int is_opt_value(char **argv, int i)
{
	return i > 1 && (strcmp(argv[i - 1], "--case") == 0 ||
			 strcmp(argv[i - 1], "--impl") == 0);
}

static int wanted(int argc, char **argv, const char *name)
{
	int i, any = 0;

	for (i = 1; i < argc; i++) {
		if (argv[i][0] == '-' || is_opt_value(argv, i))
			continue;
		any = 1;
		if (strcmp(argv[i], name) == 0)
			return 1;
	}
	return !any;
}

int main(int argc, char **argv)
{
	char why[256];
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0) {
			quick = 1;
		} else if (strcmp(argv[i], "--case") == 0 && i + 1 < argc) {
			only_case = argv[++i];
		} else if (strcmp(argv[i], "--impl") == 0 && i + 1 < argc) {
			only_impl = argv[++i];
		} else if (argv[i][0] == '-') {
			fprintf(stderr,
				"usage: %s [--quick] [--case PARAM] [--impl "
				"IMPL] [call_soon threadsafe wake_rtt timers "
				"nop pool]...\n",
				argv[0]);
			return 2;
		}
	}
	if (proa_io_uring_probe(why, sizeof(why)) < 0) {
		fprintf(stderr, "bench: no io_uring here: %s\n", why);
		return 77;
	}
	/*
	 * The loop thread runs on CPU 0 and the other side (producers, the
	 * second loop, the ping-pong peer) on CPU 1.  The pool benchmarks are
	 * the exception: they run unpinned, loop and workers, because workers
	 * inherit the affinity of the thread that starts them (libuv's and
	 * proa's PROA_PLACE_NONE alike): a pinned loop would put every worker
	 * on its CPU.
	 */
	pin(0);
	if (wanted(argc, argv, "call_soon")) {
		if (selected("1000 handles", "proa"))
			bench_call_soon();
#ifdef PROA_PERF_HAVE_UV
		if (selected("1000 handles", "libuv"))
			bench_call_soon_uv();
#endif
	}
	if (wanted(argc, argv, "threadsafe")) {
		static const unsigned shapes[][2] = {
		    {1, 1}, {4, 1}, {1, 16}, {4, 16}};
		unsigned k;

		for (k = 0; k < 4; k++)
			if (ts_selected(shapes[k][0], shapes[k][1], "proa"))
				bench_threadsafe(shapes[k][0], shapes[k][1]);
#ifdef PROA_PERF_HAVE_UV
		for (k = 0; k < 4; k++)
			if (ts_selected(shapes[k][0], shapes[k][1], "libuv"))
				bench_threadsafe_uv(shapes[k][0], shapes[k][1]);
#endif
	}
	if (wanted(argc, argv, "wake_rtt")) {
		if (selected("loop-loop", "proa"))
			bench_wake_rtt();
		if (selected("thread-loop", "proa"))
			bench_wake_rtt_thread();
		/* One ping-pong, reported for both shapes. */
		if (selected("loop-loop", "raw_eventfd") ||
		    selected("thread-loop", "raw_eventfd"))
			bench_wake_rtt_raw();
		if (selected("loop-loop", "raw_msg_ring"))
			bench_wake_rtt_msg_ring();
		if (selected("loop-loop", "raw_uring_poll"))
			bench_wake_rtt_poll();
#ifdef PROA_PERF_HAVE_UV
		if (selected("loop-loop", "libuv"))
			bench_wake_rtt_uv();
		if (selected("thread-loop", "libuv"))
			bench_wake_rtt_thread_uv();
#endif
	}
	if (wanted(argc, argv, "timers")) {
		bench_timers_all();
	}
	if (wanted(argc, argv, "nop")) {
		if (selected("32 in flight", "proa"))
			bench_nop();
		if (selected("32 in flight", "raw_liburing"))
			bench_nop_raw();
	}
	if (wanted(argc, argv, "pool")) {
		/* The first burst of a process starts the threads: reported,
		 * then the burst again with them warm.  Both sides' records
		 * are the caller's, faulted in beforehand.  "proa_submit" is
		 * the warm burst on records proa_pool_submit_to() takes from
		 * the loop's cache and the heap: the heap grows for 1M of
		 * them (160 MB of first touches) while the clock runs, the
		 * price of not owning the records. */
		if (selected("1M empty burst, first", "proa"))
			bench_pool_burst("1M empty burst, first",
					 SCALE(1000000u), empty_job, true);
		if (selected("1M empty burst", "proa"))
			bench_pool_burst("1M empty burst", SCALE(1000000u),
					 empty_job, true);
		if (selected("1M empty burst", "proa_submit"))
			bench_pool_burst("1M empty burst", SCALE(1000000u),
					 empty_job, false);
		if (selected("10k x 100us", "proa"))
			bench_pool_burst("10k x 100us", SCALE(10000u),
					 spin_100us, true);
		if (selected("sequential", "proa"))
			bench_pool_seq();
#ifdef PROA_PERF_HAVE_UV
		if (selected("1M empty burst, first", "libuv"))
			bench_pool_burst_uv("1M empty burst, first",
					    SCALE(1000000u), 0);
		if (selected("1M empty burst", "libuv"))
			bench_pool_burst_uv("1M empty burst", SCALE(1000000u),
					    0);
		if (selected("10k x 100us", "libuv"))
			bench_pool_burst_uv("10k x 100us", SCALE(10000u), 1);
		if (selected("sequential", "libuv"))
			bench_pool_seq_uv();
#endif
	}
	if ((only_case || only_impl) && n_selected == 0) {
		fprintf(stderr, "%s: no measurement of %s%s%s%s%s\n", argv[0],
			only_case ? "case \"" : "", only_case ? only_case : "",
			only_case ? "\"" : "", only_impl ? " by impl " : "",
			only_impl ? only_impl : "");
		return 2;
	}
	return 0;
}
