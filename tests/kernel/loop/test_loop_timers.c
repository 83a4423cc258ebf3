/* SPDX-License-Identifier: MIT */
/*
 * Timers: fire in deadline order (arming order on ties), never early,
 * cancelled ones never; cancel from callbacks, also of a timer due in the
 * same iteration; repeating timers keep their phase and skip missed periods
 * instead of replaying them (docs/architecture.md rule 8); the heap against
 * a sorted model.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "proa_test.h"
#include "proactor/proactor_int.h"

/* A small deterministic generator, so failures reproduce. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

struct ev {
	struct proa_timer t;
	uint64_t when; /* the deadline it was armed for */
	uint64_t fired_at;
	int order;
	bool cancelled;
	struct ev *victim; /* cancelled by this one's callback */
};

static int fire_seq;
static unsigned early, wrong;

static void ev_cb(void *arg)
{
	struct ev *e = arg;

	e->fired_at = proa_test_now_ns();
	if (e->fired_at < e->when)
		early++;
	if (e->cancelled)
		wrong++;
	e->order = fire_seq++;
	if (e->victim) {
		assert_res(proa_timer_cancel(&e->victim->t), 0);
		e->victim->cancelled = true;
	}
}

static void test_timers_fire_in_order_never_early_cancelled_never(void **state)
{
	enum { N = 1000 };
	struct proa_loop *loop = proa_test_loop_new();
	struct ev *ev = calloc(N, sizeof(*ev));
	uint64_t delay;
	int i, j, fired = 0;

	fire_seq = 0;
	early = wrong = 0;
	for (i = 0; i < N; i++) {
		delay = rnd() % 20000000; /* up to 20 ms */
		assert_res(
		    proa_loop_call_later(loop, &ev[i].t, delay, ev_cb, &ev[i]),
		    0);
		ev[i].when = ev[i].t.priv.when;
		ev[i].order = -1;
	}
	/* A third are cancelled before running... */
	for (i = 0; i < N; i += 3) {
		assert_res(proa_timer_cancel(&ev[i].t), 0);
		assert_res(proa_timer_cancel(&ev[i].t), -ENOENT);
		ev[i].cancelled = true;
	}
	/* ...and some by the callback of a timer due before them. */
	for (i = 1; i + 3 < N; i += 9) {
		for (j = 0; j < N; j++) {
			/* j must fire before i: an earlier deadline, or
			 * the same one armed earlier. */
			if (j % 3 && j != i && !ev[j].victim &&
			    !ev[i].cancelled &&
			    (ev[j].when < ev[i].when ||
			     (ev[j].when == ev[i].when && j < i))) {
				ev[j].victim = &ev[i];
				break;
			}
		}
	}
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	assert_int_equal(early, 0);
	assert_int_equal(wrong, 0);
	for (i = 0; i < N; i++) {
		if (ev[i].cancelled) {
			assert_int_equal(ev[i].order, -1);
			continue;
		}
		fired++;
		assert_true(ev[i].order >= 0);
		for (j = 0; j < N; j++) {
			if (ev[j].cancelled || ev[j].order < 0)
				continue;
			/* Earlier deadline, or same deadline armed earlier,
			 * fires first. */
			if (ev[j].when < ev[i].when ||
			    (ev[j].when == ev[i].when && j < i))
				assert_true(ev[j].order < ev[i].order);
		}
	}
	assert_true(fired > N / 2);
	free(ev);
	proa_test_loop_close(loop);
	(void)state;
}

static void test_equal_deadlines_fire_in_arming_order(void **state)
{
	enum { N = 200 };
	struct proa_loop *loop = proa_test_loop_new();
	struct ev ev[N];
	uint64_t when = proa_loop_update_time(loop) + 1000000;
	int i;

	memset(ev, 0, sizeof(ev));
	fire_seq = 0;
	early = wrong = 0;
	for (i = 0; i < N; i++) {
		assert_res(
		    proa_loop_call_at(loop, &ev[i].t, when, ev_cb, &ev[i]), 0);
		ev[i].when = when;
	}
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	for (i = 0; i < N; i++)
		assert_int_equal(ev[i].order, i);
	assert_int_equal(early, 0);
	proa_test_loop_close(loop);
	(void)state;
}

/*
 * The heap against a model: deadlines far in the past (so all are due at
 * once), armed in random order with many ties, a random half cancelled,
 * some re-armed; one run must fire exactly the survivors, sorted by
 * (deadline, arming order).  This exercises removal of arbitrary nodes
 * (roots, inner nodes with children, leaves) and the two-pass merge.
 */
static void test_heap_matches_sorted_model(void **state)
{
	enum { N = 20000 };
	struct proa_loop *loop = proa_test_loop_new();
	struct ev *ev = calloc(N, sizeof(*ev));
	int *armed_order = calloc(N, sizeof(int));
	int i, k, seq = 0, prev = -1;

	fire_seq = 0;
	early = wrong = 0;
	for (i = 0; i < N; i++) {
		ev[i].when = 1 + rnd() % 500; /* ns since boot: long past */
		ev[i].order = -1;
		assert_res(proa_loop_call_at(loop, &ev[i].t, ev[i].when, ev_cb,
					     &ev[i]),
			   0);
		armed_order[i] = seq++;
	}
	for (k = 0; k < N; k++) {
		i = (int)(rnd() % N);
		if (ev[i].cancelled)
			continue;
		assert_res(proa_timer_cancel(&ev[i].t), 0);
		if (rnd() % 4 == 0) { /* re-arm: it now ranks as armed last */
			ev[i].when = 1 + rnd() % 500;
			assert_res(proa_loop_call_at(loop, &ev[i].t, ev[i].when,
						     ev_cb, &ev[i]),
				   0);
			armed_order[i] = seq++;
		} else {
			ev[i].cancelled = true;
		}
	}
	assert_res(proa_loop_run(loop, PROA_RUN_ONCE), 0);
	/* Walk the firing order and check it is sorted. */
	{
		int *by_order = malloc(N * sizeof(int));

		for (i = 0; i < N; i++)
			by_order[i] = -1;
		for (i = 0; i < N; i++) {
			if (ev[i].cancelled) {
				assert_int_equal(ev[i].order, -1);
				continue;
			}
			assert_true(ev[i].order >= 0 && ev[i].order < N);
			by_order[ev[i].order] = i;
		}
		for (k = 0; k < fire_seq; k++) {
			i = by_order[k];
			assert_true(i >= 0);
			if (prev >= 0)
				assert_true(
				    ev[prev].when < ev[i].when ||
				    (ev[prev].when == ev[i].when &&
				     armed_order[prev] < armed_order[i]));
			prev = i;
		}
		free(by_order);
	}
	free(armed_order);
	free(ev);
	proa_test_loop_close(loop);
	(void)state;
}

/* ---- repeating timers ---------------------------------------------------- */

struct rep {
	struct proa_timer t;
	int fires;
	uint64_t whens[16];
	uint64_t stall_ns; /* busy for this long in the first callback */
	int stop_after;
};

static void rep_cb(void *arg)
{
	struct rep *r = arg;
	uint64_t t0;

	/* Re-armed before the callback: priv.when is the next deadline. */
	r->whens[r->fires] = r->t.priv.when;
	r->fires++;
	if (r->fires == 1 && r->stall_ns) {
		/* The stall under test (a busy callback, as a suspended
		 * machine would look), not a synchronisation. */
		t0 = proa_test_now_ns();
		while (proa_test_now_ns() - t0 < r->stall_ns)
			;
	}
	if (r->fires >= r->stop_after)
		assert_res(proa_timer_cancel(&r->t), 0);
}

static void test_repeating_timer_fires_until_cancelled(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct rep r = {.stop_after = 5};
	uint64_t t0 = proa_test_now_ns();

	assert_res(proa_timer_start(loop, &r.t, 1000000, 2000000, rep_cb, &r),
		   0);
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	assert_int_equal(r.fires, 5);
	assert_false(proa_timer_is_active(&r.t));
	/* 1 ms, then every 2 ms: the fifth fire is at >= 9 ms. */
	assert_true(proa_test_now_ns() - t0 >= 9000000);
	proa_test_loop_close(loop);
	(void)state;
}

static void test_repeating_timer_skips_missed_periods_keeps_phase(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	/* Wide margins: the last check needs the loop to be less than a
	 * period late, also under sanitizers. */
	struct rep r = {.stop_after = 3, .stall_ns = 200000000};
	uint64_t first, period = 20000000;

	assert_res(proa_timer_start(loop, &r.t, period, period, rep_cb, &r), 0);
	first = r.t.priv.when;
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	assert_int_equal(r.fires, 3);
	/* whens[k] is the deadline armed before fire k ran.  After fire 0
	 * (which stalled 200 ms, 10 periods), the next deadline stays
	 * on the grid first + k * period and lies after the stall. */
	assert_int_equal((r.whens[1] - first) % period, 0);
	assert_true(r.whens[1] - first >= 10 * period);
	/* The stall was not replayed: the next fire is one period on. */
	assert_int_equal(r.whens[2] - r.whens[1], period);
	proa_test_loop_close(loop);
	(void)state;
}

/* ---- misc ---------------------------------------------------------------- */

static int fired_n;

static void count_cb(void *arg)
{
	(void)arg;
	fired_n++;
}

struct restart {
	struct proa_loop *loop;
	struct proa_timer t;
	int runs;
};

static void restart_cb(void *arg)
{
	struct restart *r = arg;

	/* The timer is idle in its own callback: it may be re-armed. */
	assert_false(proa_timer_is_active(&r->t));
	if (++r->runs < 3)
		assert_res(
		    proa_loop_call_later(r->loop, &r->t, 100000, restart_cb, r),
		    0);
}

static void test_timer_rearmed_from_own_callback_and_past_deadline(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct restart r = {.loop = loop};
	struct proa_timer past = {0};

	fired_n = 0;
	assert_res(proa_loop_call_later(loop, &r.t, 0, restart_cb, &r), 0);
	assert_res(proa_loop_call_later(loop, &r.t, 0, restart_cb, &r), -EBUSY);
	assert_res(proa_loop_call_at(loop, &past, 1, count_cb, NULL), 0);
	assert_int_equal(proa_loop_run(loop, PROA_RUN_NOWAIT), 1);
	assert_int_equal(fired_n, 1); /* a past deadline: next iteration */
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	assert_int_equal(r.runs, 3);
	proa_test_loop_close(loop);
	(void)state;
}

static void cancel_all_cb(void *arg)
{
	struct proa_loop *loop = arg;

	/* From a callback, with other due timers in this very batch. */
	assert_true(proa_loop_cancel_all(loop) >= 0);
}

static void test_cancel_all_disarms_armed_and_due_timers(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_timer first = {0}, due[10], later[10];
	uint64_t when = proa_loop_update_time(loop) + 1000000;
	int i;

	memset(due, 0, sizeof(due));
	memset(later, 0, sizeof(later));
	fired_n = 0;
	assert_res(proa_loop_call_at(loop, &first, when, cancel_all_cb, loop),
		   0);
	for (i = 0; i < 10; i++) {
		assert_res(
		    proa_loop_call_at(loop, &due[i], when, count_cb, NULL), 0);
		assert_res(proa_loop_call_later(loop, &later[i],
						60ull * 1000000000u, count_cb,
						NULL),
			   0);
	}
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	assert_int_equal(fired_n, 0);
	for (i = 0; i < 10; i++) {
		assert_false(proa_timer_is_active(&due[i]));
		assert_false(proa_timer_is_active(&later[i]));
	}
	proa_test_loop_close(loop);
	(void)state;
}

static void test_close_refuses_with_an_armed_timer(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_timer t = {0};
	struct proa_loop_stats st;

	assert_res(proa_loop_call_later(loop, &t, 1000000000, count_cb, NULL),
		   0);
	assert_res(proa_loop_stats(loop, &st), 0);
	assert_int_equal(st.timers_active, 1);
	assert_res(proa_loop_close(loop), -EBUSY);
	assert_res(proa_timer_cancel(&t), 0);
	proa_test_loop_close(loop);
	(void)state;
}

/* A period so long that deadline + period passes the end of the clock:
 * the timer fires once, then stays armed for ever, never again (the sum
 * once wrapped to a time already past, so it fired every iteration). */
static void test_timer_repeat_past_clock_end_fires_once(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_timer t = {0}, later = {0};
	int fired = 0, i;

	fired_n = 0;
	assert_res(proa_timer_start(loop, &t, 0, UINT64_MAX, count_cb, NULL),
		   0);
	assert_res(
	    proa_loop_call_later(loop, &later, UINT64_MAX, count_cb, NULL), 0);
	while (fired_n == 0)
		assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
	fired = fired_n;
	/* NOWAIT: both timers stay armed, so ONCE would sleep to the end. */
	for (i = 0; i < 5; i++)
		assert_int_equal(proa_loop_run(loop, PROA_RUN_NOWAIT), 1);
	assert_int_equal(fired, 1);
	assert_int_equal(fired_n, 1);
	assert_true(proa_timer_is_active(&t));
	assert_true(proa_timer_is_active(&later));
	assert_res(proa_timer_cancel(&t), 0);
	assert_res(proa_timer_cancel(&later), 0);
	proa_test_loop_close(loop);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(
		test_timers_fire_in_order_never_early_cancelled_never),
	    cmocka_unit_test(test_equal_deadlines_fire_in_arming_order),
	    cmocka_unit_test(test_heap_matches_sorted_model),
	    cmocka_unit_test(test_repeating_timer_fires_until_cancelled),
	    cmocka_unit_test(
		test_repeating_timer_skips_missed_periods_keeps_phase),
	    cmocka_unit_test(
		test_timer_rearmed_from_own_callback_and_past_deadline),
	    cmocka_unit_test(test_cancel_all_disarms_armed_and_due_timers),
	    cmocka_unit_test(test_close_refuses_with_an_armed_timer),
	    cmocka_unit_test(test_timer_repeat_past_clock_end_fires_once),
	};

	proa_test_require_uring();
	return cmocka_run_group_tests_name("loop.timers", tests, NULL, NULL);
}
