/* SPDX-License-Identifier: MIT */
/*
 * proa-probe - what does this machine give proa?
 *
 * Prints the version, the kernel, and either why io_uring is refused (in
 * words: a seccomp filter, the kernel.io_uring_disabled sysctl, an old
 * kernel) or the ring proa sets up and every feature it probed.  Then runs a
 * one-second self-check through the whole engine and prints what it
 * measured: NOPs in batches of 32 (ns and system calls per operation),
 * timer lateness, cross-thread items per second and the cross-thread round
 * trip.  Built on the public headers only.
 *
 * Exit: 0 on success, 1 if io_uring is unavailable or a check fails, 2 for
 * bad arguments.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

#include <proa.h>

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void usage(FILE *f)
{
	fprintf(
	    f, "usage: proa-probe [--features-only] [--help]\n"
	       "\n"
	       "Report the io_uring features proa finds on this machine (or "
	       "why\n"
	       "io_uring is refused), then run a short self-check through the\n"
	       "engine and print what it measured.\n"
	       "\n"
	       "  -f, --features-only  report the features, skip the "
	       "self-check\n"
	       "  -h, --help           this text\n"
	       "\n"
	       "Environment: PROA_RING=auto|defer|coop|plain picks the ring "
	       "set-up,\n"
	       "PROA_DEBUG=1 turns debug mode on.\n");
}

/* ---- NOPs in batches of 32 ------------------------------------------------
 */

struct nops {
	struct proa_loop *loop;
	struct proa_op op[32];
	uint64_t left;
	uint64_t done;
	int errors;
};

static void nop_cb(struct proa_op *op)
{
	struct nops *n = op->data;

	n->done++;
	if (op->res != 0)
		n->errors++;
	if (n->left > 0) {
		n->left--;
		if (proa_op_nop(n->loop, op) != 0)
			n->errors++;
	}
}

static int check_nops(struct proa_loop *loop)
{
	struct nops n = {.loop = loop, .left = 200000 - 32};
	struct proa_loop_stats a, b;
	uint64_t t0, dt;
	int i;

	proa_loop_stats(loop, &a);
	t0 = now_ns();
	for (i = 0; i < 32; i++) {
		proa_op_init(&n.op[i], nop_cb, &n);
		if (proa_op_nop(loop, &n.op[i]) != 0)
			return -1;
	}
	if (proa_loop_run(loop, PROA_RUN_DEFAULT) != 0 || n.errors ||
	    n.done != 200000)
		return -1;
	dt = now_ns() - t0;
	proa_loop_stats(loop, &b);
	printf("  nop, 32 in flight:   %llu ops, %.1f ns/op, %.3f "
	       "syscalls/op\n",
	       (unsigned long long)n.done, (double)dt / (double)n.done,
	       (double)(b.enters - a.enters) / (double)n.done);
	return 0;
}

/* ---- timers
 * ------------------------------------------------------------------- */

struct tick {
	struct proa_timer t;
	uint64_t due;
	uint64_t late;
	int fired;
};

static void tick_cb(void *arg)
{
	struct tick *k = arg;

	k->late = now_ns() - k->due;
	k->fired++;
}

static int check_timers(struct proa_loop *loop)
{
	enum { N = 200 };
	struct tick *ticks = calloc(N, sizeof(*ticks));
	uint64_t worst = 0, sum = 0, delay;
	int i, early = 0, ret = 0;

	if (!ticks)
		return -1;
	for (i = 0; i < N; i++) {
		delay = 1000000 + (uint64_t)i * 1000000 / N;
		ticks[i].due = now_ns() + delay;
		if (proa_loop_call_later(loop, &ticks[i].t, delay, tick_cb,
					 &ticks[i]) != 0) {
			ret = -1;
			goto out;
		}
	}
	if (proa_loop_run(loop, PROA_RUN_DEFAULT) != 0) {
		ret = -1;
		goto out;
	}
	for (i = 0; i < N; i++) {
		if (ticks[i].fired != 1)
			ret = -1;
		if ((int64_t)ticks[i].late < 0)
			early++;
		sum += ticks[i].late;
		if (ticks[i].late > worst)
			worst = ticks[i].late;
	}
	printf("  timers, 1-2 ms:      %d fired, %d early, lateness mean %.1f "
	       "us, worst %.1f us\n",
	       N, early, (double)sum / N / 1e3, (double)worst / 1e3);
	if (early)
		ret = -1;
out:
	free(ticks);
	return ret;
}

/* ---- cross-thread items and round trips --------------------------------- */

struct xt {
	struct proa_loop *loop;
	uint64_t expected;
	uint64_t seen;
	atomic_int failures;
};

static void xt_item(void *arg)
{
	struct xt *x = arg;

	if (++x->seen == x->expected)
		proa_loop_stop(x->loop);
}

static void *xt_producer(void *arg)
{
	struct xt *x = arg;
	uint64_t i;

	for (i = 0; i < x->expected / 2; i++) {
		if (proa_loop_call_soon_threadsafe(x->loop, NULL, xt_item, x))
			atomic_fetch_add(&x->failures, 1);
	}
	return NULL;
}

static int check_threadsafe(struct proa_loop *loop)
{
	struct xt x = {.loop = loop, .expected = 400000};
	pthread_t th[2];
	uint64_t t0, dt;
	int i;

	t0 = now_ns();
	for (i = 0; i < 2; i++)
		if (pthread_create(&th[i], NULL, xt_producer, &x) != 0)
			return -1;
	if (proa_loop_run(loop, PROA_RUN_FOREVER) != 0)
		return -1;
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	dt = now_ns() - t0;
	if (x.seen != x.expected || atomic_load(&x.failures))
		return -1;
	printf("  threadsafe, 2 prod.: %llu items, %.2f M items/s\n",
	       (unsigned long long)x.seen, (double)x.seen * 1e3 / (double)dt);
	return 0;
}

struct rt {
	struct proa_loop *loop;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int turn; /* guarded_by: mu */
	int run_ret;
	int close_ret;
};

static void rt_answer(void *arg)
{
	struct rt *r = arg;

	pthread_mutex_lock(&r->mu);
	r->turn = 0;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

/* The loop's own thread runs it and, once stopped, closes it. */
static void *rt_loop(void *arg)
{
	struct rt *r = arg;

	r->run_ret = proa_loop_run(r->loop, PROA_RUN_FOREVER);
	r->close_ret = proa_loop_close(r->loop);
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int check_round_trip(void)
{
	enum { N = 2000 };
	struct rt r = {.turn = 0};
	uint64_t lat[N], t0;
	pthread_t th;
	int i, ret = 0;

	if (proa_loop_new(&r.loop, NULL) != 0)
		return -1;
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	if (pthread_create(&th, NULL, rt_loop, &r) != 0)
		return -1;
	for (i = 0; i < N; i++) {
		t0 = now_ns();
		pthread_mutex_lock(&r.mu);
		r.turn = 1;
		pthread_mutex_unlock(&r.mu);
		if (proa_loop_call_soon_threadsafe(r.loop, NULL, rt_answer,
						   &r) != 0) {
			ret = -1;
			break;
		}
		pthread_mutex_lock(&r.mu);
		while (r.turn)
			pthread_cond_wait(&r.cv, &r.mu);
		pthread_mutex_unlock(&r.mu);
		lat[i] = now_ns() - t0;
	}
	proa_loop_stop_threadsafe(r.loop);
	pthread_join(th, NULL);
	if (r.run_ret != 0 || r.close_ret != 0)
		ret = -1;
	if (proa_loop_free(r.loop) != 0)
		ret = -1;
	if (ret == 0) {
		size_t p50 = N / 2, p99 = N * 99 / 100;

		qsort(lat, N, sizeof(lat[0]), cmp_u64);
		printf("  cross-thread trip:   p50 %.1f us, p99 %.1f us "
		       "(thread -> loop -> thread)\n",
		       (double)lat[p50] / 1e3, (double)lat[p99] / 1e3);
	}
	pthread_cond_destroy(&r.cv);
	pthread_mutex_destroy(&r.mu);
	return ret;
}

/* Whether everything printed reached stdout (a full disk, a closed pipe:
 * a report that did not arrive is a failure, not an exit 0). */
static bool flushed(void)
{
	if (fflush(stdout) == 0 && !ferror(stdout))
		return true;
	fprintf(stderr, "proa-probe: cannot write the report: %s\n",
		proa_strerror(-errno));
	return false;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"features-only", no_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct proa_loop *loop;
	struct utsname u;
	char why[256], desc[4096];
	bool features_only = false;
	int c, ret;

	/* Single-threaded here; getopt's static state is fine. */
	/* NOLINTNEXTLINE(concurrency-mt-unsafe) */
	while ((c = getopt_long(argc, argv, "fh", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			features_only = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "proa-probe: unexpected argument '%s'\n",
			argv[optind]);
		usage(stderr);
		return 2;
	}
	uname(&u);
	printf("proa %s on Linux %s (%s)\n", proa_version(), u.release,
	       u.machine);
	ret = proa_loop_new(&loop, NULL);
	if (ret < 0) {
		/* The ring may be there and the loop fail for another reason
		 * (PROA_BACKEND or PROA_RING set wrong, no descriptors left):
		 * say both. */
		proa_io_uring_probe(why, sizeof(why));
		fprintf(stderr,
			"proa-probe: cannot make a loop: %s (io_uring: %s)\n",
			proa_strerror(ret), why);
		return 1;
	}
	proa_loop_describe(loop, desc, sizeof(desc));
	fputs(desc, stdout);
	if (features_only)
		return proa_loop_free(loop) == 0 && flushed() ? 0 : 1;
	printf("self-check:\n");
	ret = 0;
	if (check_nops(loop) < 0 || check_timers(loop) < 0 ||
	    check_threadsafe(loop) < 0 || check_round_trip() < 0) {
		fprintf(stderr, "proa-probe: self-check FAILED\n");
		ret = 1;
	}
	if (proa_loop_free(loop) != 0) {
		fprintf(stderr, "proa-probe: the loop did not close cleanly\n");
		ret = 1;
	}
	if (ret == 0)
		printf("ok\n");
	return flushed() ? ret : 1;
}
