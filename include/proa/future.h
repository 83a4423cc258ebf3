/* SPDX-License-Identifier: MIT */
/*
 * proa/future.h - futures: the result of something that happens once
 * (an operation, a connect, a pool job), delivered to done-callbacks on the
 * loop thread.
 *
 *   PENDING --set_result / bound op completes--> DONE
 *   PENDING --cancel (no canceller) / result is -ECANCELED--> CANCELLED
 *   PENDING --cancel (canceller)--> PENDING, cancel requested
 *             --(the operation ends)--> CANCELLED, or DONE if it won the race
 *
 * A future resolves exactly once.  Its done-callbacks then run in the order
 * they were added, in a later drain of the loop: never inside the call that
 * resolved the future, and never inside proa_future_add_done_callback(), also
 * when the future is already done.  Callbacks added while the future's
 * callbacks run wait for the next iteration.
 *
 * Futures are caller-owned.  Initialise with proa_future_init(), release
 * with proa_future_fini() once done and its callbacks have run.
 */
#ifndef PROA_FUTURE_H
#define PROA_FUTURE_H

#include "base.h"
#include "loop.h"

#ifdef __cplusplus
extern "C" {
#endif

struct proa_op;
struct proa_future;

typedef void (*proa_future_fn)(struct proa_future *fut, void *arg);
typedef void (*proa_future_cancel_fn)(struct proa_future *fut, void *arg);

enum proa_future_state {
	PROA_FUTURE_PENDING = 0,
	PROA_FUTURE_DONE,
	PROA_FUTURE_CANCELLED,
};

struct proa__future_cb;

struct proa__future_priv {
	struct proa_handle run;	   /* runs the done-callbacks */
	struct proa__mpsc_node ts; /* set_result_threadsafe */
	struct proa_loop *loop;
	void *value;
	int32_t res;
	uint8_t state;
	uint8_t flags;
	uint16_t ts_state;
	uint32_t nsched; /* callbacks of this future on the ready list */
	int32_t ts_res;
	void *ts_value;
	proa_future_fn fn0;
	void *arg0;
	struct proa__future_cb *more;
	struct proa__future_cb **more_tail;
	proa_future_cancel_fn canceller;
	void *canceller_arg;
	const char *name;
};

struct proa_future {
	struct proa__future_priv priv;
};

/**
 * proa_future_init() - make @fut a pending future of @loop.
 * Thread: loop.
 */
PROA_API void proa_future_init(struct proa_future *fut, struct proa_loop *loop);

/**
 * proa_future_fini() - release @fut.
 *
 * In debug mode, a future that failed and whose result nobody read (with
 * proa_future_result()) is logged here.
 *
 * Return: 0; -EBUSY if @fut is pending with a canceller, is an input a
 *         combinator still waits for, has a bound operation in flight,
 *         has callbacks waiting to run, or has a threadsafe result on its
 *         way (then nothing is released).
 * Thread: loop.
 */
PROA_API int proa_future_fini(struct proa_future *fut);

/**
 * proa_future_set_name() - a name for log lines about @fut (borrowed).
 * Thread: loop.
 */
PROA_API void proa_future_set_name(struct proa_future *fut, const char *name);

/**
 * proa_future_add_done_callback() - call @fn(@fut, @arg) once @fut is done.
 *
 * Never runs @fn before returning, also if @fut is already done: then @fn
 * is scheduled for the next drain.  The first callback is stored in the
 * future; later ones take a small allocation.
 *
 * Return: 0; -EINVAL if @fn is NULL; -ENOMEM; PROA_ECLOSED if the loop
 *         is closed (nothing would run @fn).
 * Thread: loop.
 */
PROA_API int proa_future_add_done_callback(struct proa_future *fut,
					   proa_future_fn fn, void *arg);

/**
 * proa_future_remove_done_callback() - remove callbacks equal to (@fn, @arg)
 * that have not been scheduled yet.
 *
 * Return: how many were removed.
 * Thread: loop.
 */
PROA_API int proa_future_remove_done_callback(struct proa_future *fut,
					      proa_future_fn fn, void *arg);

/**
 * proa_future_set_result() - resolve @fut with @res (>= 0 or -errno) and an
 * optional @value.  A @res of -ECANCELED resolves it as cancelled.
 *
 * A future with a canceller (a bound operation in flight, a combinator's
 * output, a pool job, a connect) is the work's to resolve: it still holds
 * @fut, so a result from another hand is refused.  Use
 * proa_future_cancel() to end it early.
 *
 * Return: 0; -EALREADY if @fut is already done; -EBUSY if @fut has a
 *         canceller; PROA_ECLOSED if the loop is closed.
 * Thread: loop.
 */
PROA_API int proa_future_set_result(struct proa_future *fut, int32_t res,
				    void *value);

/**
 * proa_future_set_result_threadsafe() - proa_future_set_result() from any
 * thread.
 *
 * The result reaches @fut on the loop thread, where it is dropped if @fut
 * was cancelled meanwhile, or has a canceller (see above; logged in debug
 * mode).  @fut must stay valid until then:
 * proa_future_fini() returns -EBUSY while the result is on its way.
 *
 * Return: 0; -EALREADY if a threadsafe result was already posted;
 *         PROA_ECLOSED if the loop is closed; -ESHUTDOWN after
 *         proa_loop_shutdown().
 * Thread: any.
 */
PROA_API int proa_future_set_result_threadsafe(struct proa_future *fut,
					       int32_t res, void *value);

/**
 * proa_future_cancel() - cancel @fut.
 *
 * Without a canceller @fut becomes CANCELLED at once (its callbacks run
 * later).  With one (a bound operation, a combinator, a pool job) the
 * cancellation is requested and @fut resolves when the work underneath
 * ends: CANCELLED, or DONE with the result that won the race.
 *
 * Return: 0 if cancelled or requested (also when already requested);
 *         -EALREADY if @fut is done; PROA_ECLOSED if the loop is closed.
 * Thread: loop.
 */
PROA_API int proa_future_cancel(struct proa_future *fut);

/**
 * proa_future_result() - the result of @fut, marking it as read.
 * @value: receives the value, if not NULL.
 *
 * Return: the result (>= 0, or -errno; -ECANCELED if cancelled), or
 *         PROA_EPENDING if @fut is not done.
 * Thread: loop.
 */
PROA_API int proa_future_result(struct proa_future *fut, void **value);

/**
 * proa_future_state() - PENDING, DONE or CANCELLED.
 * Thread: loop.
 */
PROA_API enum proa_future_state
proa_future_state(const struct proa_future *fut);

/**
 * proa_future_is_done() - DONE or CANCELLED.
 * Thread: loop.
 */
PROA_API bool proa_future_is_done(const struct proa_future *fut);

/**
 * proa_future_set_canceller() - for code that builds futures: @fn(@fut,
 * @arg) is called (once) by proa_future_cancel() while @fut is pending, to
 * stop the work underneath, which then resolves @fut.  NULL clears it; the
 * work clears it before it resolves @fut itself.  Ignored (and logged)
 * while an operation bound to @fut is in flight.
 * Thread: loop.
 */
PROA_API void proa_future_set_canceller(struct proa_future *fut,
					proa_future_cancel_fn fn, void *arg);

/**
 * proa_future_bind_op() - make @fut the completion of @op.
 *
 * Sets @op->cb and @op->data: when @op's final completion arrives, @fut is
 * resolved with @op->res (CANCELLED if that is -ECANCELED), and
 * proa_future_cancel(@fut) calls proa_op_cancel(@op).  Submit @op after
 * this call; if the submission fails, @fut stays pending: resolve or
 * release it yourself.
 *
 * Return: 0; -EBUSY if @op is not idle or @fut is not pending.
 * Thread: loop.
 */
PROA_API int proa_future_bind_op(struct proa_future *fut, struct proa_op *op);

/**
 * proa_future_all() - @out resolves when every future in @futs is done.
 * @out:  an initialised pending future of the same loop.
 * @futs: @n futures of the loop; the array is copied, the futures are
 *        borrowed until @out resolves.
 *
 * @out's result is 0 if all succeeded, else the result of the failed input
 * with the lowest index.  Cancelling @out cancels the inputs still pending;
 * @out then ends CANCELLED if any input ended so.  @out is the
 * combinator's to resolve (proa_future_set_result() on it is -EBUSY), and
 * an input it waits for cannot be released (proa_future_fini() is -EBUSY).
 *
 * Return: 0; -EINVAL for @n == 0, NULLs or futures of another loop;
 *         -EBUSY if @out is not pending; -ENOMEM.
 * Thread: loop.
 */
PROA_API int proa_future_all(struct proa_future *out,
			     struct proa_future *const *futs, size_t n);

/**
 * proa_future_any() - @out resolves when the first future in @futs is done.
 *
 * @out's result is the index of that future; the others keep running, and
 * are no longer borrowed.  Cancelling @out cancels the inputs still
 * pending: @out ends CANCELLED if the first to end was cancelled.
 * Arguments, return and ownership as proa_future_all().
 * Thread: loop.
 */
PROA_API int proa_future_any(struct proa_future *out,
			     struct proa_future *const *futs, size_t n);

/**
 * proa_future_with_timeout() - @out gets @in's result, or -ETIMEDOUT if @in
 * is not done within @timeout_ns.
 *
 * On timeout @in is cancelled and @out resolves once @in has ended (so a
 * bound operation's buffers are free when @out's callbacks run): with
 * -ETIMEDOUT if @in ended cancelled, else with the result that won the
 * race.  Cancelling @out before the deadline cancels @in and disarms the
 * timer: @out then ends as @in does, CANCELLED however long @in takes.
 * Ownership as proa_future_all().
 *
 * Return: 0; -EINVAL, -EBUSY, -ENOMEM as proa_future_all().
 * Thread: loop.
 */
PROA_API int proa_future_with_timeout(struct proa_future *out,
				      struct proa_future *in,
				      uint64_t timeout_ns);

#ifdef __cplusplus
}
#endif

#endif /* PROA_FUTURE_H */
