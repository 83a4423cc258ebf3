/* SPDX-License-Identifier: MIT */
/*
 * Signals through the signalfd: callbacks on the loop thread, several
 * watches of one signal in start order, stop from inside a callback, the
 * mask restored when the last watch stops, signals sent by another thread,
 * a loop made on one thread and run on another, bad input.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <signal.h>
#include <unistd.h>

#include "proa_test.h"
#include "proactor/proactor_int.h"

struct watch {
	struct proa_signal sig;
	int runs;
	int order;
	pthread_t thread;
	struct proa_signal *stop_other;
};

static int seq;

static void watch_cb(struct proa_signal *sig)
{
	struct watch *w = proa_container_of(sig, struct watch, sig);

	w->runs++;
	w->order = seq++;
	w->thread = pthread_self();
	if (w->stop_other)
		assert_res(proa_signal_stop(w->stop_other), 0);
}

static bool blocked(int signo)
{
	sigset_t cur;

	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	return sigismember(&cur, signo);
}

static void drive_until_runs(struct proa_loop *loop, const int *runs, int n)
{
	int i;

	for (i = 0; i < 1000 && *runs < n; i++)
		assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
	assert_int_equal(*runs, n);
}

static void test_signal_runs_callback_on_loop_thread(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct watch w = {0};

	assert_false(blocked(SIGUSR1));
	assert_res(proa_signal_start(loop, &w.sig, SIGUSR1, watch_cb, &w), 0);
	assert_true(blocked(SIGUSR1));
	assert_ptr_equal(w.sig.data, &w);
	assert_int_equal(raise(SIGUSR1), 0);
	assert_int_equal(w.runs, 0); /* never in signal context */
	drive_until_runs(loop, &w.runs, 1);
	assert_true(pthread_equal(w.thread, pthread_self()));
	/* Close refuses while a watch is on; stopping restores the mask. */
	assert_res(proa_loop_close(loop), -EBUSY);
	assert_res(proa_signal_stop(&w.sig), 0);
	assert_res(proa_signal_stop(&w.sig), -ENOENT);
	assert_false(blocked(SIGUSR1));
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	proa_test_loop_close(loop);
	(void)state;
}

static void test_signal_watches_run_in_order_and_stop_each_other(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct watch a = {0}, b = {0}, c = {0};

	seq = 0;
	assert_res(proa_signal_start(loop, &a.sig, SIGUSR2, watch_cb, 0), 0);
	assert_res(proa_signal_start(loop, &b.sig, SIGUSR2, watch_cb, 0), 0);
	assert_res(proa_signal_start(loop, &c.sig, SIGUSR2, watch_cb, 0), 0);
	assert_res(proa_signal_start(loop, &c.sig, SIGUSR2, watch_cb, 0),
		   -EBUSY);
	a.stop_other = &b.sig; /* b is next in line when a runs */
	assert_int_equal(raise(SIGUSR2), 0);
	drive_until_runs(loop, &c.runs, 1);
	assert_int_equal(a.runs, 1);
	assert_int_equal(b.runs, 0);
	assert_true(a.order < c.order);
	/* A second delivery reaches the two watches left. */
	a.stop_other = NULL;
	assert_int_equal(raise(SIGUSR2), 0);
	drive_until_runs(loop, &c.runs, 2);
	assert_int_equal(a.runs, 2);
	assert_res(proa_signal_stop(&a.sig), 0);
	assert_true(blocked(SIGUSR2)); /* c still watches it */
	assert_res(proa_signal_stop(&c.sig), 0);
	assert_false(blocked(SIGUSR2));
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	proa_test_loop_close(loop);
	(void)state;
}

static void *send_to_process(void *arg)
{
	/* This thread inherited the block, so the kernel hands the signal
	 * to a thread that can take it: the signalfd. */
	return (void *)(intptr_t)kill(getpid(), *(int *)arg);
}

static void test_signal_sent_by_another_thread_is_delivered(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct watch w = {0};
	int signo = SIGUSR1;
	pthread_t th;
	void *ret;

	assert_res(proa_signal_start(loop, &w.sig, SIGUSR1, watch_cb, NULL), 0);
	assert_int_equal(pthread_create(&th, NULL, send_to_process, &signo), 0);
	assert_int_equal(pthread_join(th, &ret), 0);
	assert_int_equal((intptr_t)ret, 0);
	drive_until_runs(loop, &w.runs, 1);
	assert_res(proa_signal_stop(&w.sig), 0);
	proa_test_loop_close(loop);
	(void)state;
}

static void test_signal_already_blocked_stays_blocked(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct watch w = {0};
	sigset_t one;

	sigemptyset(&one);
	sigaddset(&one, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &one, NULL);
	assert_res(proa_signal_start(loop, &w.sig, SIGUSR1, watch_cb, NULL), 0);
	assert_res(proa_signal_stop(&w.sig), 0);
	assert_true(blocked(SIGUSR1)); /* not ours to unblock */
	pthread_sigmask(SIG_UNBLOCK, &one, NULL);
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	proa_test_loop_close(loop);
	(void)state;
}

struct runner {
	struct proa_loop *loop;
	struct watch w;
	int close_ret;
	bool blocked_in_runner;
};

static void *run_until_signal(void *arg)
{
	struct runner *r = arg;
	int i;

	for (i = 0; i < 1000 && r->w.runs == 0; i++)
		proa_loop_run(r->loop, PROA_RUN_ONCE);
	r->blocked_in_runner = blocked(SIGUSR2);
	proa_signal_stop(&r->w.sig);
	r->close_ret = proa_loop_close(r->loop);
	return NULL;
}

static void test_signal_watch_started_before_run_on_other_thread(void **state)
{
	struct runner r = {0};
	sigset_t one;
	pthread_t th;

	r.loop = proa_test_loop_new();
	/* Started here, before the first run, which happens on th. */
	assert_res(proa_signal_start(r.loop, &r.w.sig, SIGUSR2, watch_cb, NULL),
		   0);
	/* th inherits our (blocked) mask anyway; unblock it in th's view by
	 * creating it with SIGUSR2 open, to prove the first run blocks it. */
	sigemptyset(&one);
	sigaddset(&one, SIGUSR2);
	pthread_sigmask(SIG_UNBLOCK, &one, NULL);
	assert_int_equal(pthread_create(&th, NULL, run_until_signal, &r), 0);
	pthread_sigmask(SIG_BLOCK, &one, NULL);
	/* Once th owns the loop it has blocked SIGUSR2 (white-box wait), so
	 * a signal directed at th can only reach its signalfd. */
	while (!atomic_load(&r.loop->owned))
		sched_yield();
	assert_int_equal(pthread_kill(th, SIGUSR2), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(r.w.runs, 1);
	assert_true(r.blocked_in_runner);
	assert_res(r.close_ret, 0);
	assert_res(proa_loop_free(r.loop), 0);
	pthread_sigmask(SIG_UNBLOCK, &one, NULL);
	(void)state;
}

/* The mask is the thread's, shared by its loops: one loop stopping its
 * watch leaves the signal blocked for another loop of the thread that
 * still watches it (it used to unblock it, and the next signal killed the
 * process). */
static void test_signal_two_loops_of_one_thread_share_the_block(void **state)
{
	struct proa_loop *a = proa_test_loop_new();
	struct proa_loop *b = proa_test_loop_new();
	struct watch wa = {0}, wb = {0};

	assert_false(blocked(SIGUSR1));
	assert_res(proa_signal_start(a, &wa.sig, SIGUSR1, watch_cb, NULL), 0);
	assert_res(proa_signal_start(b, &wb.sig, SIGUSR1, watch_cb, NULL), 0);
	assert_res(proa_signal_stop(&wa.sig), 0);
	assert_true(blocked(SIGUSR1));
	assert_int_equal(raise(SIGUSR1), 0);
	drive_until_runs(b, &wb.runs, 1);
	assert_int_equal(wa.runs, 0);
	assert_res(proa_signal_stop(&wb.sig), 0);
	assert_false(blocked(SIGUSR1));
	assert_res(proa_loop_run(a, PROA_RUN_DEFAULT), 0);
	assert_res(proa_loop_run(b, PROA_RUN_DEFAULT), 0);
	proa_test_loop_close(a);
	proa_test_loop_close(b);
	(void)state;
}

/* A signal that arrived while watched and was not read yet is the watch's:
 * stopping the last watch discards it instead of unblocking it into its
 * default action, which for SIGUSR1 ends the process (and this test). */
static void test_signal_pending_at_last_stop_is_discarded(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct watch w = {0};
	sigset_t pend;

	assert_res(proa_signal_start(loop, &w.sig, SIGUSR1, watch_cb, NULL), 0);
	assert_int_equal(raise(SIGUSR1), 0);
	sigpending(&pend);
	assert_true(sigismember(&pend, SIGUSR1));
	assert_res(proa_signal_stop(&w.sig), 0);
	assert_false(blocked(SIGUSR1));
	sigpending(&pend);
	assert_false(sigismember(&pend, SIGUSR1));
	assert_int_equal(w.runs, 0);
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	proa_test_loop_close(loop);
	(void)state;
}

static void no_cb(struct proa_signal *sig)
{
	(void)sig;
}

struct own_block {
	struct proa_loop *loop;
	struct proa_signal sig;
	int signo;
	bool blocked_after;
	int close_ret;
};

static void *run_own_block(void *arg)
{
	struct own_block *o = arg;

	assert_true(blocked(o->signo)); /* created so by the application */
	proa_loop_run(o->loop, PROA_RUN_NOWAIT);
	proa_signal_stop(&o->sig);
	o->close_ret = proa_loop_close(o->loop);
	o->blocked_after = blocked(o->signo);
	return NULL;
}

/* Set up on one thread, run on a thread the application created with the
 * signal blocked on purpose: the run thread's own block survives the last
 * stop (it used to be removed), and the setting-up thread keeps the block
 * it was given, as loop.h says. */
static void test_signal_run_thread_keeps_its_own_block(void **state)
{
	struct own_block o = {0};
	sigset_t one;
	pthread_t th;

	o.signo = SIGRTMIN + 2;
	o.loop = proa_test_loop_new();
	assert_false(blocked(o.signo));
	assert_res(proa_signal_start(o.loop, &o.sig, o.signo, no_cb, NULL), 0);
	assert_true(blocked(o.signo));
	sigemptyset(&one);
	sigaddset(&one, o.signo);
	/* The new thread inherits this mask: blocked, as the application
	 * wants it there. */
	pthread_sigmask(SIG_BLOCK, &one, NULL);
	assert_int_equal(pthread_create(&th, NULL, run_own_block, &o), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_res(o.close_ret, 0);
	assert_true(o.blocked_after);
	assert_true(blocked(o.signo));
	assert_res(proa_loop_free(o.loop), 0);
	(void)state;
}

static void test_signal_bad_input_is_refused(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_signal sig = {0};

	assert_res(proa_signal_start(loop, &sig, SIGKILL, watch_cb, 0),
		   -EINVAL);
	assert_res(proa_signal_start(loop, &sig, SIGSTOP, watch_cb, 0),
		   -EINVAL);
	assert_res(proa_signal_start(loop, &sig, 0, watch_cb, 0), -EINVAL);
	assert_res(proa_signal_start(loop, &sig, NSIG, watch_cb, 0), -EINVAL);
	assert_res(proa_signal_start(loop, &sig, SIGUSR1, NULL, 0), -EINVAL);
	assert_res(proa_signal_start(NULL, &sig, SIGUSR1, watch_cb, 0),
		   -EINVAL);
	assert_res(proa_signal_stop(&sig), -ENOENT);
	assert_res(proa_signal_stop(NULL), -EINVAL);
	proa_test_loop_close(loop);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_signal_runs_callback_on_loop_thread),
	    cmocka_unit_test(
		test_signal_watches_run_in_order_and_stop_each_other),
	    cmocka_unit_test(test_signal_sent_by_another_thread_is_delivered),
	    cmocka_unit_test(test_signal_already_blocked_stays_blocked),
	    cmocka_unit_test(
		test_signal_watch_started_before_run_on_other_thread),
	    cmocka_unit_test(
		test_signal_two_loops_of_one_thread_share_the_block),
	    cmocka_unit_test(test_signal_pending_at_last_stop_is_discarded),
	    cmocka_unit_test(test_signal_run_thread_keeps_its_own_block),
	    cmocka_unit_test(test_signal_bad_input_is_refused),
	};

	proa_test_require_uring();
	return cmocka_run_group_tests_name("loop.signal", tests, NULL, NULL);
}
