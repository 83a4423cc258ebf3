/* SPDX-License-Identifier: MIT */
/*
 * fuzz_loop - libFuzzer target: random sequences of timer arm/cancel,
 * call_soon/cancel, future add/remove-callback/resolve/cancel and loop
 * iterations, checked against a model of the exact order callbacks must
 * run in:
 *
 *   - at each iteration the ready list runs in the order things were made
 *     ready (call_soon; a future's callbacks, in the order added, when it
 *     resolves or, if already done, when added), then the timers that came
 *     due, by (deadline, arming order) - all deadlines here are in the
 *     past, so every armed timer is due at the next iteration;
 *   - a cancelled handle or timer never runs, anything else exactly once;
 *   - no callback runs inside the call that scheduled it.
 *
 * One loop serves every input; each input ends with the loop idle (no
 * timer, handle or future left), so inputs cannot leak into each other.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proa.h"

#define NT 8 /* timers */
#define NH 8 /* handles */
#define NF 4 /* futures */
#define MAXEV 4096

enum { EV_TIMER = 1, EV_HANDLE, EV_FUTCB };

struct model_ev {
	int kind;
	int id;	 /* timer/handle index, or callback id */
	int fut; /* for EV_FUTCB */
};

static struct proa_loop *loop;
static struct proa_timer timers[NT];
static uint64_t timer_when[NT], timer_seq[NT], seq_counter;
static struct proa_handle handles[NH];
static struct proa_future futs[NF];
static bool fut_live[NF];

/* What should run at the next iteration, in order (timers excluded). */
static struct model_ev ready[MAXEV];
static int nready;
/* Callbacks added to pending futures, in order. */
static struct model_ev pending[NF][64];
static int npending[NF];
static int cb_id;

static struct model_ev ran[MAXEV];
static int nran;
static bool in_call;

static void fail(const char *what)
{
	fprintf(stderr, "fuzz_loop: model violated: %s\n", what);
	abort();
}

static void record(int kind, int id, int fut)
{
	if (in_call)
		fail("a callback ran inside the call that scheduled it");
	if (nran < MAXEV)
		ran[nran++] = (struct model_ev){kind, id, fut};
}

static void timer_cb(void *arg)
{
	record(EV_TIMER, (int)(intptr_t)arg, 0);
}

static void handle_cb(void *arg)
{
	record(EV_HANDLE, (int)(intptr_t)arg, 0);
}

static void fut_cb(struct proa_future *fut, void *arg)
{
	record(EV_FUTCB, (int)(intptr_t)arg, (int)(fut - futs));
}

static void push_ready(struct model_ev ev)
{
	if (nready >= MAXEV)
		fail("model overflow");
	ready[nready++] = ev;
}

static void drop_ready(int kind, int id)
{
	int i;

	for (i = 0; i < nready; i++) {
		if (ready[i].kind == kind && ready[i].id == id) {
			memmove(&ready[i], &ready[i + 1],
				(size_t)(nready - i - 1) * sizeof(ready[0]));
			nready--;
			return;
		}
	}
}

static int cmp_timer(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	if (timer_when[x] != timer_when[y])
		return timer_when[x] < timer_when[y] ? -1 : 1;
	return timer_seq[x] < timer_seq[y] ? -1 : 1;
}

/* One iteration: compare what ran with the model. */
static void iterate(void)
{
	struct model_ev want[MAXEV];
	int due[NT], ndue = 0, n = 0, i;

	for (i = 0; i < nready; i++)
		want[n++] = ready[i];
	for (i = 0; i < NT; i++)
		if (proa_timer_is_active(&timers[i]))
			due[ndue++] = i;
	qsort(due, (size_t)ndue, sizeof(due[0]), cmp_timer);
	for (i = 0; i < ndue; i++)
		want[n++] = (struct model_ev){EV_TIMER, due[i], 0};
	nran = 0;
	nready = 0;
	if (proa_loop_run(loop, PROA_RUN_NOWAIT) < 0)
		fail("run failed");
	if (nran != n)
		fail("wrong number of callbacks ran");
	for (i = 0; i < n; i++) {
		if (ran[i].kind != want[i].kind || ran[i].id != want[i].id ||
		    (want[i].kind == EV_FUTCB && ran[i].fut != want[i].fut))
			fail("callbacks ran out of order");
	}
	for (i = 0; i < NT; i++)
		if (proa_timer_is_active(&timers[i]))
			fail("a due timer is still active");
}

static void resolve_model(int f)
{
	int i;

	for (i = 0; i < npending[f]; i++)
		push_ready(pending[f][i]);
	npending[f] = 0;
}

static void step(uint8_t a, uint8_t b)
{
	int i = b % NT, h = b % NH, f = b % NF, ret;
	intptr_t id;

	in_call = true;
	switch (a % 10) {
	case 0: /* arm a timer, deadline far in the past */
		ret = proa_loop_call_at(loop, &timers[i], 1 + (b >> 3),
					timer_cb, (void *)(intptr_t)i);
		if (ret == 0) {
			timer_when[i] = 1 + (uint64_t)(b >> 3);
			timer_seq[i] = ++seq_counter;
		} else if (ret != -EBUSY) {
			fail("call_at");
		}
		break;
	case 1:
		ret = proa_timer_cancel(&timers[i]);
		if (ret != 0 && ret != -ENOENT)
			fail("timer_cancel");
		break;
	case 2:
		ret = proa_loop_call_soon(loop, &handles[h], handle_cb,
					  (void *)(intptr_t)h);
		if (ret == 0)
			push_ready((struct model_ev){EV_HANDLE, h, 0});
		else if (ret != -EBUSY)
			fail("call_soon");
		break;
	case 3:
		ret = proa_handle_cancel(&handles[h]);
		if (ret == 0)
			drop_ready(EV_HANDLE, h);
		else if (ret != -ENOENT)
			fail("handle_cancel");
		break;
	case 4: /* add a callback (the model holds 64 per pending future) */
		if (!fut_live[f] ||
		    (!proa_future_is_done(&futs[f]) && npending[f] >= 64))
			break;
		id = ++cb_id;
		if (proa_future_add_done_callback(&futs[f], fut_cb,
						  (void *)id) != 0)
			fail("add_done_callback");
		if (proa_future_is_done(&futs[f]))
			push_ready((struct model_ev){EV_FUTCB, (int)id, f});
		else
			pending[f][npending[f]++] =
			    (struct model_ev){EV_FUTCB, (int)id, f};
		break;
	case 5: /* remove the oldest pending callback */
		if (!fut_live[f] || proa_future_is_done(&futs[f]) ||
		    npending[f] == 0)
			break;
		if (proa_future_remove_done_callback(
			&futs[f], fut_cb, (void *)(intptr_t)pending[f][0].id) !=
		    1)
			fail("remove_done_callback");
		memmove(&pending[f][0], &pending[f][1],
			(size_t)(npending[f] - 1) * sizeof(pending[f][0]));
		npending[f]--;
		break;
	case 6:
		if (!fut_live[f])
			break;
		ret = proa_future_set_result(&futs[f], b, NULL);
		if (ret == 0)
			resolve_model(f);
		else if (ret != -EALREADY)
			fail("set_result");
		break;
	case 7:
		if (!fut_live[f])
			break;
		ret = proa_future_cancel(&futs[f]);
		if (ret == 0)
			resolve_model(f);
		else if (ret != -EALREADY)
			fail("future_cancel");
		break;
	case 8: /* a fresh future in a free slot */
		if (fut_live[f])
			break;
		proa_future_init(&futs[f], loop);
		fut_live[f] = true;
		npending[f] = 0;
		break;
	default:
		in_call = false;
		iterate();
		break;
	}
	in_call = false;
}

/* Bring the loop back to idle and check nothing is left behind. */
static void settle(void)
{
	struct proa_loop_stats st;
	int f;

	iterate(); /* runs what is ready and every armed timer */
	for (f = 0; f < NF; f++) {
		if (!fut_live[f])
			continue;
		/* A pending future with callbacks is abandoned: fini frees
		 * them unrun, as documented. */
		if (proa_future_fini(&futs[f]) != 0)
			fail("future_fini refused an idle future");
		fut_live[f] = false;
		npending[f] = 0;
	}
	if (proa_loop_stats(loop, &st) != 0 || st.timers_active != 0 ||
	    st.ops_inflight != 0)
		fail("the loop is not idle after an input");
}

/* libFuzzer ends with exit(): the loop must still close clean. */
static void close_loop(void)
{
	if (proa_loop_close(loop) != 0 || proa_loop_free(loop) != 0)
		fail("the loop did not close clean at exit");
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char why[256];

	(void)argc;
	(void)argv;
	if (proa_io_uring_probe(why, sizeof(why)) < 0) {
		fprintf(stderr, "fuzz_loop: no io_uring: %s\n", why);
		exit(77);
	}
	if (proa_loop_new(&loop, NULL) != 0)
		abort();
	atexit(close_loop);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t i;

	for (i = 0; i + 1 < size && i < 2000; i += 2)
		step(data[i], data[i + 1]);
	settle();
	return 0;
}
