/* SPDX-License-Identifier: MIT */
/*
 * completion/future.c - futures and their done-callbacks.
 *
 * When a future resolves, each done-callback is moved to the loop's ready
 * list as an entry of its own, as asyncio does: the first callback through
 * the handle embedded in the future (no allocation), later ones through the
 * node that was allocated when they were added.  After that the future holds
 * no list, so a callback may release the future when it is the last one to
 * run (priv.nsched says how many are still
 * queued), and remove_done_callback() after resolution finds nothing,
 * as in asyncio.
 *
 * A callback added to a done future is scheduled at once, behind the ones
 * already queued: FIFO order holds, and it never runs inside the add call
 * (docs/architecture.md rule 3; Tulip's "nastiest" bug).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "completion_int.h"

/* fut->priv.flags */
#define FF_RETRIEVED (1U << 0) /* proa_future_result() was called */
#define FF_CANCEL_REQ (1U << 1)
#define FF_OP_BOUND (1U << 2)	/* canceller_arg is a struct proa_op */
#define FF_FN0_WAITER (1U << 3) /* fn0 is a combinator's (add_waiter) */

/* fut->priv.ts_state: the threadsafe result's journey */
enum { TS_NONE = 0, TS_POSTED, TS_DELIVERED };

struct proa__future_cb {
	struct proa_handle h;
	struct proa__future_cb *next;
	struct proa_future *fut;
	proa_future_fn fn;
	void *arg;
	bool waiter; /* a combinator's (proa__future_add_waiter()) */
};

static uint32_t nsched(const struct proa_future *fut)
{
	return fut->priv.nsched;
}

static void nsched_add(struct proa_future *fut, int d)
{
	fut->priv.nsched = (uint32_t)((int64_t)fut->priv.nsched + d);
}

static struct proa__sched *sched(const struct proa_future *fut)
{
	return proa__sched_of(fut->priv.loop);
}

static void run_first(void *arg)
{
	struct proa_future *fut = arg;
	proa_future_fn fn = fut->priv.fn0;
	void *fn_arg = fut->priv.arg0;

	fut->priv.fn0 = NULL;
	fut->priv.arg0 = NULL;
	fut->priv.flags &= (uint8_t)~FF_FN0_WAITER;
	nsched_add(fut, -1);
	fn(fut, fn_arg);
}

static void run_extra(void *arg)
{
	struct proa__future_cb *cb = arg;
	struct proa_future *fut = cb->fut;
	proa_future_fn fn = cb->fn;
	void *fn_arg = cb->arg;

	free(cb);
	nsched_add(fut, -1);
	fn(fut, fn_arg);
}

static void schedule_first(struct proa_future *fut)
{
	struct proa__sched *s = sched(fut);

	nsched_add(fut, 1);
	fut->priv.run.fn = run_first;
	fut->priv.run.arg = fut;
	s->ops->call_soon(s, &fut->priv.run);
}

static void schedule_extra(struct proa_future *fut, struct proa__future_cb *cb)
{
	struct proa__sched *s = sched(fut);

	nsched_add(fut, 1);
	s->ops->call_soon(s, &cb->h);
}

/* Move every waiting callback to the ready list, in the order added. */
static void schedule_all(struct proa_future *fut)
{
	struct proa__future_cb *cb;

	/* A closed loop runs nothing: the callbacks stay with the future,
	 * and proa_future_fini() frees them. */
	if (sched(fut)->closed)
		return;
	if (fut->priv.fn0 && fut->priv.run.priv.state == PROA__H_IDLE)
		schedule_first(fut);
	while ((cb = fut->priv.more) != NULL) {
		fut->priv.more = cb->next;
		schedule_extra(fut, cb);
	}
	fut->priv.more_tail = &fut->priv.more;
}

static void resolve(struct proa_future *fut, int32_t res, void *value)
{
	fut->priv.res = res;
	fut->priv.value = value;
	fut->priv.state =
	    res == -ECANCELED ? PROA_FUTURE_CANCELLED : PROA_FUTURE_DONE;
	/* The work underneath has ended: nothing is left to cancel. */
	fut->priv.canceller = NULL;
	fut->priv.canceller_arg = NULL;
	fut->priv.flags &= (uint8_t)~FF_OP_BOUND;
	schedule_all(fut);
}

void proa_future_init(struct proa_future *fut, struct proa_loop *loop)
{
	PROA__CHECK_THREAD(proa__sched_of(loop));
	memset(fut, 0, sizeof(*fut));
	fut->priv.loop = loop;
	fut->priv.more_tail = &fut->priv.more;
	fut->priv.run.priv.flags = PROA__HF_FUTURE;
	fut->priv.ts.run = proa__future_ts_run;
}

void proa_future_set_name(struct proa_future *fut, const char *name)
{
	fut->priv.name = name;
}

/* Whether work underneath holds @fut until it resolves it: a canceller is
 * set, and it is not a bound op that was never submitted. */
static bool held(const struct proa_future *fut)
{
	if (!fut->priv.canceller)
		return false;
	return !(fut->priv.flags & FF_OP_BOUND) ||
	       !proa_op_is_idle(fut->priv.canceller_arg);
}

/* Whether a combinator waits for @fut: it holds a pointer to @fut until
 * @fut reports to it, so @fut may not be released before. */
static bool combinator_waits(const struct proa_future *fut)
{
	const struct proa__future_cb *cb;

	if (fut->priv.fn0 && (fut->priv.flags & FF_FN0_WAITER))
		return true;
	for (cb = fut->priv.more; cb; cb = cb->next) {
		if (cb->waiter)
			return true;
	}
	return false;
}

int proa_future_fini(struct proa_future *fut)
{
	struct proa__sched *s = sched(fut);
	struct proa__future_cb *cb;

	PROA__CHECK_THREAD(s);
	if (fut->priv.run.priv.state != PROA__H_IDLE || nsched(fut) > 0)
		return -EBUSY;
	if (proa__atomic_load(&fut->priv.ts_state, PROA__ACQUIRE) == TS_POSTED)
		return -EBUSY;
	/* A bound op that never got submitted holds nothing; one in flight
	 * still points at @fut, whatever the future's state. */
	if ((fut->priv.flags & FF_OP_BOUND) &&
	    !proa_op_is_idle(fut->priv.canceller_arg))
		return -EBUSY;
	if (fut->priv.state == PROA_FUTURE_PENDING &&
	    (held(fut) || combinator_waits(fut)))
		return -EBUSY;
	if (s->debug && fut->priv.state == PROA_FUTURE_DONE &&
	    fut->priv.res < 0 && !(fut->priv.flags & FF_RETRIEVED)) {
		proa__log(PROA_LOG_WARN,
			  "future %p%s%s%s released with an error nobody "
			  "read: %s (%d)",
			  (void *)fut, fut->priv.name ? " '" : "",
			  fut->priv.name ? fut->priv.name : "",
			  fut->priv.name ? "'" : "",
			  proa_strerror(fut->priv.res), fut->priv.res);
	}
	while ((cb = fut->priv.more) != NULL) {
		fut->priv.more = cb->next;
		free(cb);
	}
	memset(fut, 0, sizeof(*fut));
	return 0;
}

static int add_cb(struct proa_future *fut, proa_future_fn fn, void *arg,
		  bool waiter)
{
	struct proa__future_cb *cb;
	bool done;

	if (!fn)
		return -EINVAL;
	if (sched(fut)->closed)
		return PROA_ECLOSED;
	done = fut->priv.state != PROA_FUTURE_PENDING;
	/* The inline slot keeps FIFO order only if nothing waits behind it
	 * and, once done, only if its previous occupant has run. */
	if (!fut->priv.fn0 && !fut->priv.more &&
	    fut->priv.run.priv.state == PROA__H_IDLE) {
		fut->priv.fn0 = fn;
		fut->priv.arg0 = arg;
		if (waiter)
			fut->priv.flags |= FF_FN0_WAITER;
		if (done)
			schedule_first(fut);
		return 0;
	}
	cb = calloc(1, sizeof(*cb));
	if (!cb)
		return -ENOMEM;
	cb->h.fn = run_extra;
	cb->h.arg = cb;
	cb->fut = fut;
	cb->fn = fn;
	cb->arg = arg;
	cb->waiter = waiter;
	if (done) {
		schedule_extra(fut, cb);
		return 0;
	}
	*fut->priv.more_tail = cb;
	fut->priv.more_tail = &cb->next;
	return 0;
}

int proa_future_add_done_callback(struct proa_future *fut, proa_future_fn fn,
				  void *arg)
{
	PROA__CHECK_THREAD(sched(fut));
	return add_cb(fut, fn, arg, false);
}

int proa__future_add_waiter(struct proa_future *fut, proa_future_fn fn,
			    void *arg)
{
	return add_cb(fut, fn, arg, true);
}

int proa_future_remove_done_callback(struct proa_future *fut, proa_future_fn fn,
				     void *arg)
{
	struct proa__future_cb **pp, *cb;
	int n = 0;

	PROA__CHECK_THREAD(sched(fut));
	/* A scheduled first callback is no longer the future's to remove. */
	if (fut->priv.fn0 == fn && fut->priv.arg0 == arg &&
	    fut->priv.run.priv.state == PROA__H_IDLE) {
		fut->priv.fn0 = NULL;
		fut->priv.arg0 = NULL;
		fut->priv.flags &= (uint8_t)~FF_FN0_WAITER;
		n++;
	}
	pp = &fut->priv.more;
	while ((cb = *pp) != NULL) {
		if (cb->fn == fn && cb->arg == arg) {
			*pp = cb->next;
			free(cb);
			n++;
			continue;
		}
		pp = &cb->next;
	}
	fut->priv.more_tail = pp;
	return n;
}

int proa_future_set_result(struct proa_future *fut, int32_t res, void *value)
{
	PROA__CHECK_THREAD(sched(fut));
	if (fut->priv.state != PROA_FUTURE_PENDING)
		return -EALREADY;
	if (sched(fut)->closed)
		return PROA_ECLOSED;
	/* The work underneath holds @fut until it resolves it: a result
	 * from another hand would let the owner release @fut under it. */
	if (held(fut))
		return -EBUSY;
	resolve(fut, res, value);
	return 0;
}

int proa_future_set_result_threadsafe(struct proa_future *fut, int32_t res,
				      void *value)
{
	struct proa__sched *s = sched(fut);
	int ret;

	if (!proa__atomic_cas_u16(&fut->priv.ts_state, TS_NONE, TS_POSTED))
		return -EALREADY;
	/* Published by the queue's release in post(); read after the loop's
	 * acquire in proa__future_ts_run(). */
	fut->priv.ts_res = res;
	fut->priv.ts_value = value;
	ret = s->ops->post(s, &fut->priv.ts);
	if (ret < 0)
		proa__atomic_store(&fut->priv.ts_state, TS_NONE, PROA__RELEASE);
	return ret;
}

void proa__future_ts_run(struct proa__mpsc_node *node)
{
	struct proa_future *fut =
	    proa_container_of(node, struct proa_future, priv.ts);

	if (fut->priv.state == PROA_FUTURE_PENDING && !held(fut)) {
		resolve(fut, fut->priv.ts_res, fut->priv.ts_value);
	} else if (sched(fut)->debug) {
		proa__log(PROA_LOG_DEBUG,
			  "future %p: threadsafe result %d dropped, the "
			  "future was %s",
			  (void *)fut, fut->priv.ts_res,
			  fut->priv.state == PROA_FUTURE_PENDING
			      ? "the work of another (it has a canceller)"
			      : "already done");
	}
	/* Last touch of the future on this path: fini may proceed now. */
	proa__atomic_store(&fut->priv.ts_state, TS_DELIVERED, PROA__RELEASE);
}

int proa_future_cancel(struct proa_future *fut)
{
	PROA__CHECK_THREAD(sched(fut));
	if (fut->priv.state != PROA_FUTURE_PENDING)
		return -EALREADY;
	if (sched(fut)->closed)
		return PROA_ECLOSED;
	if (fut->priv.flags & FF_CANCEL_REQ)
		return 0;
	fut->priv.flags |= FF_CANCEL_REQ;
	if (fut->priv.canceller) {
		/* The work underneath resolves the future when it ends. */
		fut->priv.canceller(fut, fut->priv.canceller_arg);
		return 0;
	}
	resolve(fut, -ECANCELED, NULL);
	return 0;
}

int proa_future_result(struct proa_future *fut, void **value)
{
	PROA__CHECK_THREAD(sched(fut));
	if (fut->priv.state == PROA_FUTURE_PENDING)
		return PROA_EPENDING;
	fut->priv.flags |= FF_RETRIEVED;
	if (value)
		*value = fut->priv.value;
	return fut->priv.res;
}

enum proa_future_state proa_future_state(const struct proa_future *fut)
{
	return (enum proa_future_state)fut->priv.state;
}

bool proa_future_is_done(const struct proa_future *fut)
{
	return fut->priv.state != PROA_FUTURE_PENDING;
}

void proa_future_set_canceller(struct proa_future *fut,
			       proa_future_cancel_fn fn, void *arg)
{
	PROA__CHECK_THREAD(sched(fut));
	if ((fut->priv.flags & FF_OP_BOUND) &&
	    !proa_op_is_idle(fut->priv.canceller_arg)) {
		/* The op's completion will still resolve @fut: dropping the
		 * bond would let @fut be released under it. */
		proa__log(PROA_LOG_ERROR,
			  "proa_future_set_canceller(): future %p has an "
			  "operation in flight bound to it; left as it is",
			  (void *)fut);
		return;
	}
	fut->priv.canceller = fn;
	fut->priv.canceller_arg = fn ? arg : NULL;
	fut->priv.flags &= (uint8_t)~FF_OP_BOUND;
}

static void bound_op_done(struct proa_op *op)
{
	struct proa_future *fut = op->data;

	/* Only the final completion resolves: a future happens once. */
	if (op->flags & PROA_OP_F_MORE)
		return;
	if (fut->priv.state == PROA_FUTURE_PENDING)
		resolve(fut, op->res, NULL);
}

static void bound_op_cancel(struct proa_future *fut, void *arg)
{
	struct proa_op *op = arg;

	if (!proa_op_is_idle(op)) {
		sched(fut)->ops->op_cancel(op);
		return;
	}
	/* Bound but never submitted: nothing will resolve it but us. */
	resolve(fut, -ECANCELED, NULL);
}

int proa_future_bind_op(struct proa_future *fut, struct proa_op *op)
{
	PROA__CHECK_THREAD(sched(fut));
	if (!op)
		return -EINVAL;
	if (!proa_op_is_idle(op) || fut->priv.state != PROA_FUTURE_PENDING)
		return -EBUSY;
	op->cb = bound_op_done;
	op->data = fut;
	fut->priv.canceller = bound_op_cancel;
	fut->priv.canceller_arg = op;
	fut->priv.flags |= FF_OP_BOUND;
	return 0;
}

void proa__future_resolve(struct proa_future *fut, int32_t res, void *value)
{
	if (fut->priv.state == PROA_FUTURE_PENDING)
		resolve(fut, res, value);
}
