/* SPDX-License-Identifier: MIT */
/*
 * completion/combinators.c - futures made of futures: all, any, with-timeout.
 *
 * Each combinator allocates one state block, attaches a done-callback to
 * every input, and frees the block when the last callback still attached
 * has reported back - not when the output resolves - so no input callback
 * can ever reach freed state.  Inputs are borrowed until the output
 * resolves: any() then takes its callbacks back from the pending losers,
 * so their owners may release them (detach_losers()).
 */
#include <errno.h>
#include <stdlib.h>

#include "completion_int.h"

enum { COMB_ALL, COMB_ANY };

struct comb;

static void comb_input_done(struct proa_future *fut, void *arg);

struct comb_slot {
	struct comb *c;
	struct proa_future *fut;
	size_t idx;
};

struct comb {
	struct proa_future *out;
	int kind;
	size_t left;	/* inputs that have not reported back */
	size_t err_idx; /* ALL: lowest index of a failed input */
	int32_t err;	/* ALL: its result */
	size_t n;
	bool aborted;	 /* set-up failed: callbacks only release the block */
	bool cancel_req; /* @out was cancelled */
	bool cancelled;	 /* ALL: an input ended cancelled */
	struct comb_slot slots[];
};

/*
 * ANY has a winner: the inputs are no longer borrowed, and their owners may
 * release the losers while still pending, which drops our callbacks with
 * them - the block would then wait for reports that never come.  Take our
 * callbacks back from the pending losers now; only those already queued
 * (done inputs) still report, and the last of them frees the block.
 */
static void detach_losers(struct comb *c)
{
	size_t i;

	for (i = 0; i < c->n; i++) {
		if (proa_future_remove_done_callback(
			c->slots[i].fut, comb_input_done, &c->slots[i]) == 1)
			c->left--;
	}
}

static void comb_input_done(struct proa_future *fut, void *arg)
{
	struct comb_slot *slot = arg;
	struct comb *c = slot->c;
	int32_t res;

	c->left--;
	if (c->aborted) {
		if (c->left == 0)
			free(c);
		return;
	}
	/* A cancelled @out ends CANCELLED once an input has ended so, as
	 * asyncio's gather and wait do; inputs that won the race against the
	 * cancellation give their result. */
	if (c->kind == COMB_ALL) {
		/* The error travels on in @out, so reading it here counts. */
		res = proa_future_result(fut, NULL);
		if (res < 0 && slot->idx < c->err_idx) {
			c->err_idx = slot->idx;
			c->err = res;
		}
		if (proa_future_state(fut) == PROA_FUTURE_CANCELLED)
			c->cancelled = true;
		if (c->left == 0) {
			res = c->err_idx < c->n ? c->err : 0;
			if (c->cancel_req && c->cancelled)
				res = -ECANCELED;
			proa__future_resolve(c->out, res, NULL);
		}
	} else if (c->out) {
		res = (int32_t)slot->idx;
		if (c->cancel_req &&
		    proa_future_state(fut) == PROA_FUTURE_CANCELLED)
			res = -ECANCELED;
		/* @out is done from here on and its owner may release it
		 * while the other inputs still run: never touch it again. */
		proa__future_resolve(c->out, res, NULL);
		c->out = NULL;
		detach_losers(c);
	}
	if (c->left == 0)
		free(c);
}

static void comb_cancel(struct proa_future *out, void *arg)
{
	struct comb *c = arg;
	size_t i;

	(void)out;
	c->cancel_req = true;
	for (i = 0; i < c->n; i++) {
		if (!proa_future_is_done(c->slots[i].fut))
			proa_future_cancel(c->slots[i].fut);
	}
}

static int comb_start(struct proa_future *out, struct proa_future *const *futs,
		      size_t n, int kind, const char *func)
{
	struct comb *c;
	size_t i;
	int ret;

	if (!out || !futs || n == 0 || n > INT32_MAX)
		return -EINVAL;
	PROA__CHECK_THREAD_AS(proa__sched_of(out->priv.loop), func);
	for (i = 0; i < n; i++) {
		if (!futs[i] || futs[i]->priv.loop != out->priv.loop ||
		    futs[i] == out)
			return -EINVAL;
	}
	if (out->priv.state != PROA_FUTURE_PENDING || out->priv.canceller)
		return -EBUSY;
	c = calloc(1, sizeof(*c) + n * sizeof(c->slots[0]));
	if (!c)
		return -ENOMEM;
	c->out = out;
	c->kind = kind;
	c->n = n;
	c->left = n;
	c->err_idx = n;
	for (i = 0; i < n; i++) {
		c->slots[i].c = c;
		c->slots[i].fut = futs[i];
		c->slots[i].idx = i;
	}
	for (i = 0; i < n; i++) {
		ret = proa__future_add_waiter(futs[i], comb_input_done,
					      &c->slots[i]);
		if (ret < 0)
			goto err_detach;
	}
	proa_future_set_canceller(out, comb_cancel, c);
	return 0;
err_detach:
	/* Callbacks of pending inputs can be detached; a callback of a done
	 * input is already queued and cannot, so the block lives until those
	 * have run, and they only release it. */
	c->aborted = true;
	c->left = 0;
	while (i-- > 0) {
		if (proa_future_remove_done_callback(futs[i], comb_input_done,
						     &c->slots[i]) != 1)
			c->left++;
	}
	if (c->left == 0)
		free(c);
	return ret;
}

int proa_future_all(struct proa_future *out, struct proa_future *const *futs,
		    size_t n)
{
	return comb_start(out, futs, n, COMB_ALL, __func__);
}

int proa_future_any(struct proa_future *out, struct proa_future *const *futs,
		    size_t n)
{
	return comb_start(out, futs, n, COMB_ANY, __func__);
}

/* ---- with_timeout --------------------------------------------------- */

struct wt {
	struct proa_future *out;
	struct proa_future *in;
	struct proa_timer timer;
	bool timed_out;
};

static void wt_expired(void *arg)
{
	struct wt *w = arg;

	w->timed_out = true;
	proa_future_cancel(w->in);
}

static void wt_in_done(struct proa_future *in, void *arg)
{
	struct wt *w = arg;
	struct proa__sched *s = proa__sched_of(in->priv.loop);
	void *value = NULL;
	int32_t res;

	s->ops->timer_cancel(&w->timer);
	res = proa_future_result(in, &value);
	if (w->timed_out && res == -ECANCELED)
		res = -ETIMEDOUT;
	proa__future_resolve(w->out, res, value);
	free(w);
}

static void wt_cancel(struct proa_future *out, void *arg)
{
	struct wt *w = arg;

	/* The owner's cancel came first: a deadline passing while @in winds
	 * down must not turn it into a timeout. */
	proa__sched_of(out->priv.loop)->ops->timer_cancel(&w->timer);
	proa_future_cancel(w->in);
}

int proa_future_with_timeout(struct proa_future *out, struct proa_future *in,
			     uint64_t timeout_ns)
{
	struct proa__sched *s;
	struct wt *w;
	int ret;

	if (!out || !in || in == out || in->priv.loop != out->priv.loop)
		return -EINVAL;
	s = proa__sched_of(out->priv.loop);
	PROA__CHECK_THREAD(s);
	if (out->priv.state != PROA_FUTURE_PENDING || out->priv.canceller)
		return -EBUSY;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->out = out;
	w->in = in;
	/* The timer first: it cannot fire before we return, and undoing it
	 * is certain, whereas a callback queued on a done input cannot be
	 * taken back.  A done input still resolves @out through that
	 * callback, which disarms the timer. */
	ret = s->ops->timer_start(s, &w->timer, timeout_ns, wt_expired, w);
	if (ret < 0) {
		free(w);
		return ret;
	}
	ret = proa__future_add_waiter(in, wt_in_done, w);
	if (ret < 0) {
		s->ops->timer_cancel(&w->timer);
		free(w);
		return ret;
	}
	proa_future_set_canceller(out, wt_cancel, w);
	return 0;
}
