/* SPDX-License-Identifier: MIT */
/*
 * fork() and loops (docs/processes.md, "fork"): the child of a process
 * whose loop has work in flight and in its queues lets go of that loop
 * with proa_loop_discard_after_fork() - run and close are refused before,
 * its descriptors close, the signals it blocked come unblocked - then
 * makes a loop of its own, runs a timer
 * on it, spawns a child and exits 0.  The parent's loop then finishes its
 * own work as if nothing happened: the pending read, the queued nop and
 * the timer complete once each.  On both backends; the child reports by
 * exit code (cmocka's asserts belong to the parent).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proa_test.h"
#include "proa/process.h"

#define MS 1000000ull
#define DRIVE_NS (20ull * 1000000000ull)

struct parent_work {
	struct proa_op rd, nop;
	struct proa_timer tm;
	char buf[8];
	int rd_calls, nop_calls, tm_calls;
	int rd_res;
};

static void on_rd(struct proa_op *op)
{
	struct parent_work *w = op->data;

	w->rd_calls++;
	w->rd_res = op->res;
}

static void on_nop(struct proa_op *op)
{
	struct parent_work *w = op->data;

	w->nop_calls++;
}

static void on_tm(void *arg)
{
	struct parent_work *w = arg;

	w->tm_calls++;
}

static void on_sig(struct proa_signal *sig)
{
	(void)sig;
}

static void on_fresh_timer(void *arg)
{
	*(bool *)arg = true;
}

static void on_fresh_exit(struct proa_process *p, int code, int sig, void *arg)
{
	(void)p;
	(void)sig;
	*(int *)arg = code;
}

/* The child: exit codes say which step failed. */
static int child(struct proa_loop *inherited)
{
	char *argv[] = {"/bin/sh", "-c", "exit 6", NULL};
	struct proa_spawn_opts o = {0};
	struct proa_process *p = NULL;
	struct proa_loop *fresh = NULL;
	struct proa_timer t = {0};
	bool fired = false;
	int before, code = -1;
	sigset_t mask;

	/* The calls that would act on the shared ring are refused. */
	if (proa_loop_run(inherited, PROA_RUN_NOWAIT) != -EPERM)
		return 20;
	if (proa_loop_close(inherited) != -EPERM ||
	    proa_loop_free(inherited) != -EPERM)
		return 21;
	before = proa_test_fds();
	if (proa_loop_discard_after_fork(inherited) != 0)
		return 10;
	/* ring or epoll fd, eventfd, signalfd */
	if (proa_test_fds() > before - 3)
		return 11;
	if (pthread_sigmask(SIG_BLOCK, NULL, &mask) != 0 ||
	    sigismember(&mask, SIGUSR1))
		return 12;
	if (proa_loop_new(&fresh, NULL) < 0)
		return 13;
	if (proa_loop_call_later(fresh, &t, 10 * MS, on_fresh_timer, &fired))
		return 14;
	o.argv = argv;
	o.on_exit = on_fresh_exit;
	o.arg = &code;
	if (proa_spawn(&p, fresh, &o) < 0)
		return 15;
	while (!fired || code < 0)
		if (proa_loop_run(fresh, PROA_RUN_ONCE) < 0)
			return 16;
	if (code != 6)
		return 17;
	proa_process_close(p);
	if (proa_loop_run(fresh, PROA_RUN_DEFAULT) != 0)
		return 18;
	if (proa_loop_free(fresh) != 0)
		return 19;
	return 0;
}

static void fork_with_work_in_flight(bool run_first)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct parent_work w = {0};
	struct proa_signal sig = {0};
	int p[2], st = -1;
	pid_t pid;

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_res(proa_signal_start(loop, &sig, SIGUSR1, on_sig, NULL), 0);
	proa_op_init(&w.rd, on_rd, &w);
	assert_res(proa_op_read(loop, &w.rd, p[0], w.buf, sizeof(w.buf), 0), 0);
	assert_res(proa_loop_call_later(loop, &w.tm, 50 * MS, on_tm, &w), 0);
	/* The read in the kernel (in flight) or still queued, as forked. */
	if (run_first)
		assert_res(proa_loop_run(loop, PROA_RUN_NOWAIT), 1);
	proa_op_init(&w.nop, on_nop, &w);
	assert_res(proa_op_nop(loop, &w.nop), 0);

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child(loop));

	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);

	/* The parent's loop is whole: each piece of work completes once. */
	assert_int_equal(write(p[1], "hi", 2), 2);
	PROA_TEST_DRIVE_NS(loop, w.rd_calls && w.nop_calls && w.tm_calls,
			   DRIVE_NS);
	assert_int_equal(w.rd_res, 2);
	assert_memory_equal(w.buf, "hi", 2);
	assert_res(proa_signal_stop(&sig), 0);
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	assert_int_equal(w.rd_calls, 1);
	assert_int_equal(w.nop_calls, 1);
	assert_int_equal(w.tm_calls, 1);
	proa_test_loop_close(loop);
	close(p[0]);
	close(p[1]);
}

static void test_fork_child_discards_loop_queued(void **state)
{
	(void)state;
	fork_with_work_in_flight(false);
}

static void test_fork_child_discards_loop_in_flight(void **state)
{
	(void)state;
	fork_with_work_in_flight(true);
}

struct in_cb {
	struct proa_loop *loop;
	pid_t pid;
	bool ran;
};

/* The child starts from inside the parent's callback, and never returns
 * into the parent's loop: it runs its own to the end and exits. */
static void fork_in_callback(void *arg)
{
	struct in_cb *c = arg;
	struct proa_loop *fresh = NULL;
	struct proa_timer t = {0};
	bool fired = false;

	c->ran = true;
	c->pid = fork();
	if (c->pid != 0)
		return;
	if (proa_loop_current() != NULL)
		_exit(30);
	if (proa_loop_discard_after_fork(c->loop) != 0)
		_exit(31);
	if (proa_loop_new(&fresh, NULL) < 0)
		_exit(32);
	if (proa_loop_call_later(fresh, &t, 5 * MS, on_fresh_timer, &fired))
		_exit(33);
	if (proa_loop_run(fresh, PROA_RUN_DEFAULT) != 0 || !fired)
		_exit(34);
	_exit(proa_loop_free(fresh) == 0 ? 0 : 35);
}

/* fork() inside a callback: the child is not "inside" the parent's run
 * (proa_loop_current() is NULL there) and runs a loop of its own. */
static void test_fork_inside_a_callback(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct in_cb c = {.loop = loop, .pid = -1};
	struct proa_timer t = {0};
	int st = -1;

	(void)state;
	assert_res(proa_loop_call_later(loop, &t, 1 * MS, fork_in_callback, &c),
		   0);
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	assert_true(c.ran);
	assert_true(c.pid > 0);
	assert_int_equal(waitpid(c.pid, &st, 0), c.pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	proa_test_loop_close(loop);
}

/* In a child, make call @which on the parent's @loop; _exit(10) if it
 * returned, with PROA_ECLOSED _exit(11). */
static void child_calls(struct proa_loop *loop, int which)
{
	struct proa_handle h = {0};
	int ret = 0;

	switch (which) {
	case 0:
		ret = proa_loop_call_soon(loop, &h, on_fresh_timer, NULL);
		break;
	case 1:
		ret = proa_loop_call_soon_threadsafe(loop, &h, on_fresh_timer,
						     NULL);
		break;
	case 2:
		ret = proa_loop_stop_threadsafe(loop);
		break;
	default:
		proa_loop_ref(loop);
		break;
	}
	_exit(ret == PROA_ECLOSED ? 11 : 10);
}

/* Fork, let the child make call @which, and return its wait status; its
 * stderr in @out. */
static int fork_and_call(struct proa_loop *loop, int which, char *out,
			 size_t len)
{
	int p[2], st = -1;
	ssize_t n;
	pid_t pid;

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(p[1], STDERR_FILENO);
		child_calls(loop, which);
	}
	close(p[1]);
	n = read(p[0], out, len - 1);
	close(p[0]);
	out[n > 0 ? n : 0] = '\0';
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return st;
}

/* Debug mode: any other call on the parent's loop aborts with a message
 * that says what to do instead, the _threadsafe ones and ref included
 * (those skip the thread check: they went unnoticed, and an item posted
 * to the copy was lost while its wake-up reached the parent). */
static void test_fork_debug_mode_aborts_on_parents_loop(void **state)
{
	static const char *const names[] = {
	    "proa_loop_call_soon()", "proa_*_threadsafe()",
	    "proa_loop_stop_threadsafe()", "proa_loop_ref()"};
	struct proa_loop_opts opts = {.debug = 1};
	struct proa_loop *loop = proa_test_loop_new_opts(&opts);
	struct proa_handle h = {0};
	char out[4096];
	int which, st;

	(void)state;
	assert_res(proa_loop_run(loop, PROA_RUN_NOWAIT), 0); /* owned */
	for (which = 0; which < 4; which++) {
		st = fork_and_call(loop, which, out, sizeof(out));
		assert_true(WIFSIGNALED(st));
		assert_int_equal(WTERMSIG(st), SIGABRT);
		assert_non_null(strstr(out, names[which]));
		assert_non_null(strstr(out, "called in a child of fork()"));
		assert_non_null(strstr(out, "proa_loop_discard_after_fork()"));
	}
	/* The parent's loop is its own still. */
	assert_res(proa_loop_call_soon(loop, &h, proa_test_nop, NULL), 0);
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	proa_test_loop_close(loop);
}

/* Outside debug mode a _threadsafe call on the parent's loop is refused
 * (PROA_ECLOSED), not queued where nothing runs it. */
static void test_fork_threadsafe_on_parents_loop_refused(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	char out[4096];
	int st;

	(void)state;
	assert_res(proa_loop_run(loop, PROA_RUN_NOWAIT), 0); /* owned */
	st = fork_and_call(loop, 1, out, sizeof(out));
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 11);
	st = fork_and_call(loop, 2, out, sizeof(out));
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 11);
	proa_test_loop_close(loop);
}

/* A loop closed before the fork is discarded as well (only freed). */
static void test_fork_discard_closed_loop(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	int st = -1;
	pid_t pid;

	(void)state;
	assert_res(proa_loop_close(loop), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(proa_loop_discard_after_fork(loop) == 0 ? 0 : 1);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_res(proa_loop_free(loop), 0);
	assert_res(proa_loop_discard_after_fork(NULL), -EINVAL);
}

int main(void)
{
#define T(f)                                                                   \
	cmocka_unit_test_setup_teardown(f, proa_test_fds_setup,                \
					proa_test_fds_check)
	const struct CMUnitTest tests[] = {
	    T(test_fork_child_discards_loop_queued),
	    T(test_fork_child_discards_loop_in_flight),
	    T(test_fork_inside_a_callback),
	    T(test_fork_debug_mode_aborts_on_parents_loop),
	    T(test_fork_threadsafe_on_parents_loop_refused),
	    T(test_fork_discard_closed_loop),
	};
#undef T

	return cmocka_run_group_tests_name("proc.fork", tests, NULL, NULL);
}
