/* SPDX-License-Identifier: MIT */
/*
 * proactor/timer.c - timers on the loop's monotonic clock, kept in a
 * pairing heap ordered by (deadline, arming sequence).
 *
 * Why a pairing heap: arming is one comparison and a link (O(1)), and
 * cancelling a timer that is not the earliest - the common churn of
 * network timeouts that are re-armed long before they fire - unlinks it
 * and merges its children, usually none (O(1)).  Only taking the minimum
 * costs amortised O(log n).  A binary heap (libuv) pays O(log n) cache
 * misses on every start and stop.  Ties on the deadline break on the
 * sequence number, so timers due together fire in the order armed.
 *
 * The ring never holds a timer: the loop's wait carries the time to the
 * earliest deadline (one timeout, passed with io_uring_enter).
 */
#include <errno.h>

#include "proactor_int.h"

#define P(t) (&(t)->priv)

/* Deadlines are caller-given durations added to a clock: a huge one must
 * mean "never", not wrap to a time already past and fire at once. */
static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a + b < a ? UINT64_MAX : a + b;
}

static bool before(const struct proa_timer *a, const struct proa_timer *b)
{
	return P(a)->when < P(b)->when ||
	       (P(a)->when == P(b)->when && P(a)->seq < P(b)->seq);
}

static void detach(struct proa_timer *t)
{
	P(t)->prev = NULL;
	P(t)->sibling = NULL;
}

/* Meld two heap roots; the later one becomes the first child. */
static struct proa_timer *meld(struct proa_timer *a, struct proa_timer *b)
{
	struct proa_timer *tmp;

	if (!a)
		return b;
	if (!b)
		return a;
	if (before(b, a)) {
		tmp = a;
		a = b;
		b = tmp;
	}
	P(b)->sibling = P(a)->child;
	if (P(a)->child)
		P(P(a)->child)->prev = b;
	P(b)->prev = a;
	P(a)->child = b;
	return a;
}

/* The standard two-pass merge of a sibling list into one heap. */
static struct proa_timer *merge_pairs(struct proa_timer *first)
{
	struct proa_timer *acc = NULL, *a, *b, *m, *next, *result = NULL;

	/* Pass 1, left to right: meld pairs, stacking the results (the
	 * roots' free sibling field links the stack). */
	while (first) {
		a = first;
		b = P(a)->sibling;
		next = b ? P(b)->sibling : NULL;
		detach(a);
		if (b) {
			detach(b);
			m = meld(a, b);
		} else {
			m = a;
		}
		P(m)->sibling = acc;
		acc = m;
		first = next;
	}
	/* Pass 2, right to left: meld the stack into one heap. */
	while (acc) {
		next = P(acc)->sibling;
		P(acc)->sibling = NULL;
		result = meld(acc, result);
		acc = next;
	}
	return result;
}

static void heap_remove(struct proa_loop *loop, struct proa_timer *t)
{
	struct proa_timer *sub = merge_pairs(P(t)->child);

	if (t == loop->timer_root) {
		loop->timer_root = sub;
	} else {
		if (P(P(t)->prev)->child == t)
			P(P(t)->prev)->child = P(t)->sibling;
		else
			P(P(t)->prev)->sibling = P(t)->sibling;
		if (P(t)->sibling)
			P(P(t)->sibling)->prev = P(t)->prev;
		loop->timer_root = meld(loop->timer_root, sub);
	}
	P(t)->child = NULL;
	detach(t);
}

static void heap_insert(struct proa_loop *loop, struct proa_timer *t)
{
	P(t)->seq = ++loop->timer_seq;
	P(t)->child = NULL;
	detach(t);
	loop->timer_root = meld(loop->timer_root, t);
	proa__atomic_store(&t->handle.priv.state, PROA__H_ARMED, PROA__RELAXED);
}

int proa__timer_arm(struct proa_loop *loop, struct proa_timer *t, uint64_t when,
		    uint64_t repeat, proa_callback_fn fn, void *arg)
{
	if (proa__atomic_load(&t->handle.priv.state, PROA__RELAXED) !=
	    PROA__H_IDLE)
		return -EBUSY;
	t->handle.fn = fn;
	t->handle.arg = arg;
	t->handle.priv.loop = loop;
	t->handle.priv.flags = PROA__HF_TIMER;
	P(t)->when = when;
	P(t)->repeat = repeat;
	heap_insert(loop, t);
	loop->timers_active++;
	return 0;
}

static int check_args(struct proa_loop *loop, struct proa_timer *t,
		      proa_callback_fn fn, const char *func)
{
	if (!loop || !t || !fn)
		return -EINVAL;
	PROA__LOOP_CHECK_AS(loop, func);
	if (loop->closed)
		return PROA_ECLOSED;
	return 0;
}

static int timer_start(struct proa_loop *loop, struct proa_timer *t,
		       uint64_t delay_ns, uint64_t repeat_ns,
		       proa_callback_fn fn, void *arg, const char *func)
{
	uint64_t when;
	int ret = check_args(loop, t, fn, func);

	if (ret < 0)
		return ret;
	/* A fresh clock, not the iteration's: a callback that ran for a
	 * while must not arm a timer that fires early. */
	when = add_sat(proa__now(), delay_ns);
	return proa__timer_arm(loop, t, when, repeat_ns, fn, arg);
}

int proa_timer_start(struct proa_loop *loop, struct proa_timer *t,
		     uint64_t delay_ns, uint64_t repeat_ns, proa_callback_fn fn,
		     void *arg)
{
	return timer_start(loop, t, delay_ns, repeat_ns, fn, arg, __func__);
}

int proa_loop_call_later(struct proa_loop *loop, struct proa_timer *t,
			 uint64_t delay_ns, proa_callback_fn fn, void *arg)
{
	return timer_start(loop, t, delay_ns, 0, fn, arg, __func__);
}

int proa_loop_call_at(struct proa_loop *loop, struct proa_timer *t,
		      uint64_t when_ns, proa_callback_fn fn, void *arg)
{
	int ret = check_args(loop, t, fn, __func__);

	if (ret < 0)
		return ret;
	return proa__timer_arm(loop, t, when_ns, 0, fn, arg);
}

int proa_timer_cancel(struct proa_timer *t)
{
	struct proa_loop *loop;
	uint32_t state;

	if (!t)
		return -EINVAL;
	loop = t->handle.priv.loop;
	state = proa__atomic_load(&t->handle.priv.state, PROA__RELAXED);
	if (!loop || (state != PROA__H_ARMED && state != PROA__H_READY))
		return -ENOENT;
	PROA__LOOP_CHECK(loop);
	if (state == PROA__H_ARMED)
		heap_remove(loop, t);
	else
		proa_list_del(&t->handle.priv.link);
	proa__atomic_store(&t->handle.priv.state, PROA__H_IDLE, PROA__RELAXED);
	loop->timers_active--;
	return 0;
}

bool proa_timer_is_active(const struct proa_timer *t)
{
	uint32_t state =
	    proa__atomic_load(&t->handle.priv.state, PROA__RELAXED);

	return state == PROA__H_ARMED || state == PROA__H_READY;
}

void proa__timers_run_due(struct proa_loop *loop)
{
	struct proa_timer *t;

	while ((t = loop->timer_root) != NULL && P(t)->when <= loop->now) {
		heap_remove(loop, t);
		proa__call_soon(loop, &t->handle);
		loop->stats.timers_fired++;
	}
}

int64_t proa__timers_timeout(struct proa_loop *loop)
{
	struct proa_timer *t = loop->timer_root;
	uint64_t d;

	if (!t)
		return -1;
	if (P(t)->when <= loop->now)
		return 0;
	/* Sleep a little past the deadline, as Linux's default timer slack
	 * does: deadlines this close together then share one wake-up
	 * instead of costing one each (100k timers over 100 ms: 6.3 us of
	 * CPU per timer without it).  Never early, at most this late. */
	d = add_sat(P(t)->when - loop->now, PROA__TIMER_SLACK_NS);
	return d > INT64_MAX ? INT64_MAX : (int64_t)d;
}

void proa__timer_before_run(struct proa_loop *loop, struct proa_timer *t)
{
	uint64_t next, k;

	if (P(t)->repeat == 0) {
		proa__atomic_store(&t->handle.priv.state, PROA__H_IDLE,
				   PROA__RELAXED);
		loop->timers_active--;
		return;
	}
	/* Keep the phase; skip the periods missed while the loop (or the
	 * machine) was stalled instead of replaying them (docs/architecture.md
	 * rule 8).  A period past the end of the clock saturates: the timer
	 * then stays armed and never fires again, rather than firing every
	 * iteration. */
	next = add_sat(P(t)->when, P(t)->repeat);
	if (next <= loop->now) {
		k = (loop->now - P(t)->when) / P(t)->repeat + 1;
		next = add_sat(P(t)->when, k * P(t)->repeat);
	}
	P(t)->when = next;
	heap_insert(loop, t);
}

static int cancel_ready_timers(struct proa_link *head)
{
	struct proa_link *l, *next;
	struct proa_handle *h;
	int n = 0;

	for (l = head->next; l != head; l = next) {
		next = l->next;
		h = proa_container_of(l, struct proa_handle, priv.link);
		if (h->priv.flags & PROA__HF_TIMER) {
			proa_timer_cancel(
			    proa_container_of(h, struct proa_timer, handle));
			n++;
		}
	}
	return n;
}

int proa__timer_cancel_all(struct proa_loop *loop)
{
	int n = 0;

	while (loop->timer_root) {
		proa_timer_cancel(loop->timer_root);
		n++;
	}
	/* Due timers wait on the ready list, or in the batch being run when
	 * this is called from a callback. */
	n += cancel_ready_timers(&loop->ready);
	if (loop->draining)
		n += cancel_ready_timers(loop->draining);
	return n;
}
