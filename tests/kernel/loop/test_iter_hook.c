/* SPDX-License-Identifier: MIT */
/*
 * Prepare and check hooks (proa/loop.h): their place in the iteration
 * (prepare before the wait, check after the completions it brought and
 * before timers and the ready list), a prepare hook that schedules work
 * keeps the loop from blocking, hooks do not keep the loop alive, start
 * and stop from inside callbacks, close stops them, bad input.  Every
 * case closes its loop and leaves no descriptor open.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "proa_test.h"

#define MS 1000000ull

/* What ran, in order, one letter each. */
struct trace {
	char s[64];
	unsigned n;
	uint64_t prepare_ns, check_ns;
	struct proa_loop *loop;
	struct proa_iter_hook *other; /* stopped or started by a callback */
	struct proa_handle h;
	bool schedule; /* the prepare hook calls call_soon, once */
	bool stop_self, stop_other, start_other;
};

static void put(struct trace *t, char c)
{
	if (t->n + 1 < sizeof(t->s))
		t->s[t->n++] = c;
}

static void on_ready(void *arg)
{
	put(arg, 'R');
}

static void on_timer(void *arg)
{
	put(arg, 'T');
}

static void on_nop(struct proa_op *op)
{
	put(op->data, 'N');
}

static void on_other(struct proa_iter_hook *h, void *arg)
{
	(void)h;
	put(arg, 'O');
}

static void on_prepare(struct proa_iter_hook *h, void *arg)
{
	struct trace *t = arg;

	put(t, 'P');
	t->prepare_ns = proa_test_now_ns();
	if (t->schedule) {
		t->schedule = false;
		assert_res(proa_loop_call_soon(t->loop, &t->h, on_ready, t), 0);
	}
	if (t->stop_self)
		assert_res(proa_iter_hook_stop(h), 0);
	if (t->stop_other) {
		t->stop_other = false;
		assert_res(proa_iter_hook_stop(t->other), 0);
	}
	if (t->start_other) {
		t->start_other = false;
		assert_res(proa_iter_hook_start(t->loop, t->other,
						PROA_HOOK_PREPARE, on_other, t),
			   0);
	}
}

static void on_check(struct proa_iter_hook *h, void *arg)
{
	struct trace *t = arg;

	(void)h;
	put(t, 'C');
	t->check_ns = proa_test_now_ns();
}

static uint64_t iterations(struct proa_loop *loop)
{
	struct proa_loop_stats st;

	assert_res(proa_loop_stats(loop, &st), 0);
	return st.iterations;
}

/* Prepare, the completion's callback, check, then the ready list: one
 * iteration in that order; and across a wait, prepare before it and
 * check after it, before the timer that ended it. */
static void test_hook_order_around_the_wait(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_iter_hook p = {0}, c = {0};
	struct proa_timer tm = {0};
	struct trace t = {.loop = loop};
	struct proa_op op;
	uint64_t t0;

	(void)state;
	assert_res(
	    proa_iter_hook_start(loop, &p, PROA_HOOK_PREPARE, on_prepare, &t),
	    0);
	assert_res(
	    proa_iter_hook_start(loop, &c, PROA_HOOK_CHECK, on_check, &t), 0);
	assert_true(proa_iter_hook_is_active(&p));
	proa_op_init(&op, on_nop, &t);
	assert_res(proa_op_nop(loop, &op), 0);
	assert_res(proa_loop_call_soon(loop, &t.h, on_ready, &t), 0);
	/* The nop may need one iteration to be submitted and one to come
	 * back; each iteration brackets what it ran with P ... C. */
	PROA_TEST_DRIVE(loop, proa_op_is_idle(&op), 10);
	assert_int_equal(t.s[0], 'P');
	assert_non_null(strstr(t.s, "PNC")); /* completion inside P..C */
	assert_non_null(strstr(t.s, "CR"));  /* ready list after check */

	/* Across a wait for a 30 ms timer. */
	t.n = 0;
	memset(t.s, 0, sizeof(t.s));
	t0 = proa_test_now_ns();
	assert_res(proa_loop_call_later(loop, &tm, 30 * MS, on_timer, &t), 0);
	PROA_TEST_DRIVE(loop, !proa_timer_is_active(&tm), 100);
	assert_non_null(strstr(t.s, "PCT"));
	assert_true(t.prepare_ns - t0 < 30 * MS); /* before the wait */
	assert_true(t.check_ns - t0 >= 29 * MS);  /* after it */

	assert_res(proa_iter_hook_stop(&p), 0);
	assert_res(proa_iter_hook_stop(&c), 0);
	assert_false(proa_iter_hook_is_active(&p));
	proa_test_loop_close(loop);
}

/* Work a prepare hook schedules runs in the same iteration, without the
 * loop waiting for the 10 s timer that is its only other business. */
static void test_hook_prepare_work_keeps_loop_awake(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_iter_hook p = {0};
	struct proa_timer tm = {0};
	struct trace t = {.loop = loop, .schedule = true};
	uint64_t it, t0;

	(void)state;
	assert_res(proa_loop_call_later(loop, &tm, 10000 * MS, on_timer, &t),
		   0);
	assert_res(
	    proa_iter_hook_start(loop, &p, PROA_HOOK_PREPARE, on_prepare, &t),
	    0);
	it = iterations(loop);
	t0 = proa_test_now_ns();
	assert_res(proa_loop_run(loop, PROA_RUN_ONCE), 1);
	assert_true(proa_test_now_ns() - t0 < 5000 * MS);
	assert_int_equal(iterations(loop), it + 1);
	assert_string_equal(t.s, "PR");
	assert_res(proa_timer_cancel(&tm), 0);
	assert_res(proa_iter_hook_stop(&p), 0);
	proa_test_loop_close(loop);
}

/* Started hooks alone do not keep RUN_DEFAULT going; they still ran on
 * its one iteration, and in RUN_NOWAIT. */
static void test_hook_does_not_keep_loop_alive(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_iter_hook p = {0}, c = {0};
	struct trace t = {.loop = loop};

	(void)state;
	assert_res(
	    proa_iter_hook_start(loop, &p, PROA_HOOK_PREPARE, on_prepare, &t),
	    0);
	assert_res(
	    proa_iter_hook_start(loop, &c, PROA_HOOK_CHECK, on_check, &t), 0);
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	assert_string_equal(t.s, "PC");
	assert_res(proa_loop_run(loop, PROA_RUN_NOWAIT), 0);
	assert_string_equal(t.s, "PCPC");
	/* Close with both started: close stops them. */
	proa_test_loop_close(loop);
	assert_false(proa_iter_hook_is_active(&p));
	assert_false(proa_iter_hook_is_active(&c));
	assert_res(proa_iter_hook_stop(&p), -ENOENT);
}

/* A callback stops itself; stops a later hook before its turn (it does
 * not run); starts one (it runs from the next pass on). */
static void test_hook_start_stop_inside_callbacks(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_iter_hook p = {0}, o = {0};
	struct trace t = {.loop = loop, .other = &o};

	(void)state;
	assert_res(
	    proa_iter_hook_start(loop, &p, PROA_HOOK_PREPARE, on_prepare, &t),
	    0);
	assert_res(
	    proa_iter_hook_start(loop, &o, PROA_HOOK_PREPARE, on_other, &t), 0);
	t.stop_other = true;
	assert_res(proa_loop_run(loop, PROA_RUN_NOWAIT), 0);
	assert_string_equal(t.s, "P");
	assert_false(proa_iter_hook_is_active(&o));

	t.start_other = true;
	assert_res(proa_loop_run(loop, PROA_RUN_NOWAIT), 0);
	assert_string_equal(t.s, "PP");
	assert_res(proa_loop_run(loop, PROA_RUN_NOWAIT), 0);
	assert_string_equal(t.s, "PPPO");

	t.stop_self = true;
	assert_res(proa_loop_run(loop, PROA_RUN_NOWAIT), 0);
	assert_res(proa_loop_run(loop, PROA_RUN_NOWAIT), 0);
	assert_string_equal(t.s, "PPPOPOO");
	assert_false(proa_iter_hook_is_active(&p));
	assert_res(proa_iter_hook_stop(&o), 0);
	proa_test_loop_close(loop);
}

static void test_hook_bad_input(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_iter_hook h = {0};
	struct trace t = {.loop = loop};

	(void)state;
	assert_res(
	    proa_iter_hook_start(NULL, &h, PROA_HOOK_PREPARE, on_prepare, &t),
	    -EINVAL);
	assert_res(
	    proa_iter_hook_start(loop, NULL, PROA_HOOK_PREPARE, on_prepare, &t),
	    -EINVAL);
	assert_res(proa_iter_hook_start(loop, &h, PROA_HOOK_PREPARE, NULL, &t),
		   -EINVAL);
	assert_res(proa_iter_hook_start(loop, &h, (enum proa_iter_hook_kind)7,
					on_prepare, &t),
		   -EINVAL);
	assert_res(proa_iter_hook_stop(&h), -ENOENT);
	assert_res(proa_iter_hook_stop(NULL), -ENOENT);
	assert_res(
	    proa_iter_hook_start(loop, &h, PROA_HOOK_CHECK, on_check, &t), 0);
	assert_res(
	    proa_iter_hook_start(loop, &h, PROA_HOOK_CHECK, on_check, &t),
	    -EBUSY);
	assert_res(proa_iter_hook_stop(&h), 0);
	assert_res(proa_iter_hook_stop(&h), -ENOENT);
	proa_test_loop_close(loop);
}

int main(void)
{
#define T(f)                                                                   \
	cmocka_unit_test_setup_teardown(f, proa_test_fds_setup,                \
					proa_test_fds_check)
	const struct CMUnitTest tests[] = {
	    T(test_hook_order_around_the_wait),
	    T(test_hook_prepare_work_keeps_loop_awake),
	    T(test_hook_does_not_keep_loop_alive),
	    T(test_hook_start_stop_inside_callbacks),
	    T(test_hook_bad_input),
	};
#undef T

	return cmocka_run_group_tests_name("loop.iter_hook", tests, NULL, NULL);
}
