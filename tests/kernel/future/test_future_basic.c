/* SPDX-License-Identifier: MIT */
/*
 * Futures: done-callbacks (never inline, FIFO, removal, re-entrancy),
 * resolution exactly once, cancel with and without a canceller, futures
 * bound to operations (cancel racing completion 10k times), results posted
 * from other threads, the debug log of errors nobody read, and the
 * combinators all / any / with-timeout.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proa_test.h"

/* ---- recording done-callbacks ----------------------------------------------
 */

struct rec {
	int order[256];
	unsigned n;
	struct proa_future *fut[256];
	pthread_t thread[256];
};

struct tag {
	struct rec *rec;
	int id;
};

static void rec_cb(struct proa_future *fut, void *arg)
{
	struct tag *t = arg;
	struct rec *r = t->rec;

	assert_true(r->n < 256);
	r->order[r->n] = t->id;
	r->fut[r->n] = fut;
	r->thread[r->n] = pthread_self();
	r->n++;
}

static void count_cb(struct proa_future *fut, void *arg)
{
	(void)fut;
	(*(unsigned *)arg)++;
}

/* ---- done-callbacks --------------------------------------------------------
 */

static void test_callback_on_done_future_runs_later_not_inline(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_future fut;
	struct rec r = {0};
	struct tag t = {&r, 7};

	proa_future_init(&fut, loop);
	assert_res(proa_future_set_result(&fut, 3, NULL), 0);
	assert_res(proa_future_add_done_callback(&fut, rec_cb, &t), 0);
	assert_int_equal(r.n, 0);
	/* Resolving does not run callbacks inline either. */
	assert_res(proa_loop_run(loop, PROA_RUN_NOWAIT), 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.order[0], 7);
	assert_ptr_equal(r.fut[0], &fut);
	assert_true(pthread_equal(r.thread[0], pthread_self()));
	assert_res(proa_future_fini(&fut), 0);
	proa_test_loop_close(loop);
	(void)state;
}

static void test_callbacks_run_in_the_order_added(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_future fut;
	struct rec r = {0};
	struct tag t[8];
	int i;

	proa_future_init(&fut, loop);
	for (i = 0; i < 5; i++) {
		t[i] = (struct tag){&r, i};
		assert_res(proa_future_add_done_callback(&fut, rec_cb, &t[i]),
			   0);
	}
	assert_res(proa_future_set_result(&fut, 0, NULL), 0);
	assert_int_equal(r.n, 0);
	/* Added after resolution, before the first ones ran: still after
	 * them. */
	for (i = 5; i < 8; i++) {
		t[i] = (struct tag){&r, i};
		assert_res(proa_future_add_done_callback(&fut, rec_cb, &t[i]),
			   0);
	}
	assert_res(proa_future_fini(&fut), -EBUSY);
	assert_res(proa_loop_run(loop, PROA_RUN_NOWAIT), 0);
	assert_int_equal(r.n, 8);
	for (i = 0; i < 8; i++)
		assert_int_equal(r.order[i], i);
	assert_res(proa_future_fini(&fut), 0);
	proa_test_loop_close(loop);
	(void)state;
}

static void test_remove_done_callback(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_future fut;
	struct rec r = {0};
	struct tag a = {&r, 1}, b = {&r, 2}, c = {&r, 3};

	proa_future_init(&fut, loop);
	assert_res(proa_future_add_done_callback(&fut, rec_cb, &a), 0);
	assert_res(proa_future_add_done_callback(&fut, rec_cb, &b), 0);
	assert_res(proa_future_add_done_callback(&fut, rec_cb, &a), 0);
	assert_res(proa_future_add_done_callback(&fut, rec_cb, &c), 0);
	/* Both copies of (rec_cb, &a) go; an absent pair removes nothing. */
	assert_int_equal(proa_future_remove_done_callback(&fut, rec_cb, &a), 2);
	assert_res(proa_future_remove_done_callback(&fut, rec_cb, &a), 0);
	assert_res(proa_future_remove_done_callback(&fut, count_cb, &b), 0);
	/* Removing the last keeps the tail right for the next add. */
	assert_int_equal(proa_future_remove_done_callback(&fut, rec_cb, &c), 1);
	assert_res(proa_future_add_done_callback(&fut, rec_cb, &c), 0);
	assert_res(proa_future_set_result(&fut, 0, NULL), 0);
	/* Once scheduled, a callback is no longer the future's to remove. */
	assert_res(proa_future_remove_done_callback(&fut, rec_cb, &b), 0);
	assert_res(proa_loop_run(loop, PROA_RUN_NOWAIT), 0);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.order[0], 2);
	assert_int_equal(r.order[1], 3);
	assert_res(proa_future_fini(&fut), 0);
	proa_test_loop_close(loop);
	(void)state;
}

/* 64 callbacks, each adding another: the new ones wait for the next
 * iteration (only what was ready when an iteration began runs in it). */
struct reent {
	struct proa_future *fut;
	unsigned first, second;
};

static void reent_second(struct proa_future *fut, void *arg)
{
	struct reent *re = arg;

	(void)fut;
	re->second++;
}

static void reent_first(struct proa_future *fut, void *arg)
{
	struct reent *re = arg;

	re->first++;
	assert_res(proa_future_add_done_callback(fut, reent_second, re), 0);
	/* Resolving again from a callback is refused, not re-run. */
	assert_res(proa_future_set_result(fut, 9, NULL), -EALREADY);
	assert_res(proa_future_cancel(fut), -EALREADY);
	assert_int_equal(re->second, 0);
}

static void test_reentrant_callbacks_wait_for_next_iteration(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_future fut;
	struct reent re = {&fut, 0, 0};
	int i;

	proa_future_init(&fut, loop);
	for (i = 0; i < 64; i++)
		assert_res(
		    proa_future_add_done_callback(&fut, reent_first, &re), 0);
	assert_res(proa_future_set_result(&fut, 1, NULL), 0);
	assert_int_equal(proa_loop_run(loop, PROA_RUN_NOWAIT), 1);
	assert_int_equal(re.first, 64);
	assert_int_equal(re.second, 0);
	assert_res(proa_loop_run(loop, PROA_RUN_NOWAIT), 0);
	assert_int_equal(re.second, 64);
	assert_int_equal(proa_future_result(&fut, NULL), 1);
	assert_res(proa_future_fini(&fut), 0);
	proa_test_loop_close(loop);
	(void)state;
}

/* A callback may release its own future once it is the last to run. */
static void fini_self(struct proa_future *fut, void *arg)
{
	(*(unsigned *)arg)++;
	assert_res(proa_future_fini(fut), 0);
}

static void test_last_callback_may_release_its_future(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_future *fut = malloc(sizeof(*fut));
	unsigned runs = 0;

	assert_non_null(fut);
	proa_future_init(fut, loop);
	assert_res(proa_future_add_done_callback(fut, fini_self, &runs), 0);
	assert_res(proa_future_set_result(fut, 0, NULL), 0);
	assert_res(proa_loop_run(loop, PROA_RUN_NOWAIT), 0);
	assert_int_equal(runs, 1);
	free(fut); /* ASan: nothing touches it after fini */
	proa_test_loop_close(loop);
	(void)state;
}

/* ---- results and states ----------------------------------------------------
 */

static void test_result_states_and_set_result_twice(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_future fut;
	int payload = 5;
	void *value = NULL;

	proa_future_init(&fut, loop);
	assert_int_equal(proa_future_state(&fut), PROA_FUTURE_PENDING);
	assert_false(proa_future_is_done(&fut));
	assert_res(proa_future_result(&fut, &value), PROA_EPENDING);
	assert_null(value);
	assert_res(proa_future_set_result(&fut, 42, &payload), 0);
	assert_res(proa_future_set_result(&fut, 43, NULL), -EALREADY);
	assert_res(proa_future_set_result(&fut, -ECANCELED, NULL), -EALREADY);
	assert_res(proa_future_cancel(&fut), -EALREADY);
	assert_int_equal(proa_future_state(&fut), PROA_FUTURE_DONE);
	assert_true(proa_future_is_done(&fut));
	assert_int_equal(proa_future_result(&fut, &value), 42);
	assert_ptr_equal(value, &payload);
	assert_int_equal(proa_future_result(&fut, NULL), 42);
	assert_res(proa_future_fini(&fut), 0);

	/* An error result is DONE; -ECANCELED is CANCELLED. */
	proa_future_init(&fut, loop);
	assert_res(proa_future_set_result(&fut, -EIO, NULL), 0);
	assert_int_equal(proa_future_state(&fut), PROA_FUTURE_DONE);
	assert_res(proa_future_result(&fut, NULL), -EIO);
	assert_res(proa_future_fini(&fut), 0);
	proa_future_init(&fut, loop);
	assert_res(proa_future_set_result(&fut, -ECANCELED, NULL), 0);
	assert_int_equal(proa_future_state(&fut), PROA_FUTURE_CANCELLED);
	assert_res(proa_future_result(&fut, NULL), -ECANCELED);
	assert_res(proa_future_fini(&fut), 0);
	proa_test_loop_close(loop);
	(void)state;
}

static void test_bad_arguments(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_future fut, done;
	struct proa_op op;

	proa_future_init(&fut, loop);
	proa_future_init(&done, loop);
	assert_res(proa_future_add_done_callback(&fut, NULL, NULL), -EINVAL);
	assert_res(proa_future_bind_op(&fut, NULL), -EINVAL);
	assert_res(proa_future_set_result(&done, 0, NULL), 0);
	proa_op_init(&op, NULL, NULL);
	assert_res(proa_future_bind_op(&done, &op), -EBUSY);
	assert_res(proa_future_fini(&done), 0);
	assert_res(proa_future_fini(&fut), 0);
	proa_test_loop_close(loop);
	(void)state;
}

/* ---- cancel ----------------------------------------------------------------
 */

static void test_cancel_without_canceller_is_immediate(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_future fut;
	unsigned runs = 0;

	proa_future_init(&fut, loop);
	assert_res(proa_future_add_done_callback(&fut, count_cb, &runs), 0);
	assert_res(proa_future_cancel(&fut), 0);
	assert_int_equal(proa_future_state(&fut), PROA_FUTURE_CANCELLED);
	assert_res(proa_future_result(&fut, NULL), -ECANCELED);
	assert_int_equal(runs, 0);
	assert_res(proa_future_cancel(&fut), -EALREADY);
	assert_res(proa_future_set_result(&fut, 1, NULL), -EALREADY);
	assert_res(proa_loop_run(loop, PROA_RUN_NOWAIT), 0);
	assert_int_equal(runs, 1);
	assert_res(proa_future_fini(&fut), 0);
	proa_test_loop_close(loop);
	(void)state;
}

struct canceller {
	unsigned calls;
	struct proa_future *seen;
};

static void canceller_fn(struct proa_future *fut, void *arg)
{
	struct canceller *c = arg;

	c->calls++;
	c->seen = fut;
}

static void test_cancel_with_canceller_waits_for_the_work(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_future fut;
	struct canceller c = {0};

	/* The work wins the race: DONE with its result. */
	proa_future_init(&fut, loop);
	proa_future_set_canceller(&fut, canceller_fn, &c);
	assert_res(proa_future_cancel(&fut), 0);
	assert_int_equal(c.calls, 1);
	assert_ptr_equal(c.seen, &fut);
	assert_int_equal(proa_future_state(&fut), PROA_FUTURE_PENDING);
	/* Requested once; asking again does not call it again. */
	assert_res(proa_future_cancel(&fut), 0);
	assert_int_equal(c.calls, 1);
	/* Pending with a canceller: the work may still touch it, so it is
	 * neither released nor resolved by another hand. */
	assert_res(proa_future_fini(&fut), -EBUSY);
	assert_res(proa_future_set_result(&fut, 17, NULL), -EBUSY);
	assert_int_equal(proa_future_state(&fut), PROA_FUTURE_PENDING);
	/* The work lets go of it, then resolves it. */
	proa_future_set_canceller(&fut, NULL, NULL);
	assert_res(proa_future_set_result(&fut, 17, NULL), 0);
	assert_int_equal(proa_future_state(&fut), PROA_FUTURE_DONE);
	assert_int_equal(proa_future_result(&fut, NULL), 17);
	assert_res(proa_future_cancel(&fut), -EALREADY);
	assert_int_equal(c.calls, 1);
	assert_res(proa_future_fini(&fut), 0);

	/* The cancel wins: CANCELLED. */
	c = (struct canceller){0};
	proa_future_init(&fut, loop);
	proa_future_set_canceller(&fut, canceller_fn, &c);
	assert_res(proa_future_cancel(&fut), 0);
	proa_future_set_canceller(&fut, NULL, NULL);
	assert_res(proa_future_set_result(&fut, -ECANCELED, NULL), 0);
	assert_int_equal(proa_future_state(&fut), PROA_FUTURE_CANCELLED);
	assert_res(proa_future_fini(&fut), 0);

	/* A cleared canceller is not called and no longer holds fini. */
	c = (struct canceller){0};
	proa_future_init(&fut, loop);
	proa_future_set_canceller(&fut, canceller_fn, &c);
	proa_future_set_canceller(&fut, NULL, &c);
	assert_res(proa_future_fini(&fut), 0);
	proa_future_init(&fut, loop);
	proa_future_set_canceller(&fut, canceller_fn, &c);
	proa_future_set_canceller(&fut, NULL, NULL);
	assert_res(proa_future_cancel(&fut), 0);
	assert_int_equal(c.calls, 0);
	assert_int_equal(proa_future_state(&fut), PROA_FUTURE_CANCELLED);
	assert_res(proa_future_fini(&fut), 0);
	proa_test_loop_close(loop);
	(void)state;
}

/* ---- futures bound to operations ------------------------------------------
 */

static void test_bound_nop_resolves_with_its_result(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_future fut, other;
	struct proa_op op;
	unsigned runs = 0;

	proa_future_init(&fut, loop);
	proa_future_init(&other, loop);
	proa_op_init(&op, NULL, NULL);
	assert_res(proa_future_bind_op(&fut, &op), 0);
	assert_res(proa_future_add_done_callback(&fut, count_cb, &runs), 0);
	assert_res(proa_op_nop(loop, &op), 0);
	/* In flight: neither rebinding nor releasing is allowed. */
	assert_res(proa_future_bind_op(&other, &op), -EBUSY);
	assert_res(proa_future_fini(&fut), -EBUSY);
	assert_res(proa_loop_run_until_complete(loop, &fut), 0);
	assert_res(proa_future_result(&fut, NULL), 0);
	assert_true(proa_op_is_idle(&op));
	/* Resolved at the completion, its callback ran in the same
	 * iteration's drain; nothing is left. */
	assert_int_equal(runs, 1);
	assert_res(proa_loop_run(loop, PROA_RUN_NOWAIT), 0);
	assert_int_equal(runs, 1);
	assert_res(proa_future_fini(&fut), 0);
	assert_res(proa_future_fini(&other), 0);
	proa_test_loop_close(loop);
	(void)state;
}

/* @fut bound to a read of @fd into @buf, submitted and in flight. */
static void bound_read_in_flight(struct proa_loop *loop,
				 struct proa_future *fut, struct proa_op *op,
				 int fd, char *buf, size_t len)
{
	proa_future_init(fut, loop);
	proa_op_init(op, NULL, NULL);
	assert_res(proa_future_bind_op(fut, op), 0);
	assert_res(proa_op_read(loop, op, fd, buf, len, -1), 0);
	assert_int_equal(proa_loop_run(loop, PROA_RUN_NOWAIT), 1);
}

/* Run until @fut, bound to @op, ends with @want; then @op is idle and
 * @fut is released. */
static void bound_read_ends(struct proa_loop *loop, struct proa_future *fut,
			    struct proa_op *op, int want)
{
	assert_res(proa_loop_run_until_complete(loop, fut), 0);
	assert_res(proa_future_result(fut, NULL), want);
	assert_true(proa_op_is_idle(op));
	assert_res(proa_future_fini(fut), 0);
}

static void test_bound_read_completes_or_is_cancelled(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_future fut;
	struct proa_op op;
	int p[2];
	char buf[8] = {0};

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);

	/* Data arrives: the future carries the byte count. */
	bound_read_in_flight(loop, &fut, &op, p[0], buf, sizeof(buf));
	assert_false(proa_future_is_done(&fut));
	assert_int_equal(write(p[1], "abc", 3), 3);
	bound_read_ends(loop, &fut, &op, 3);
	assert_memory_equal(buf, "abc", 3);

	/* Nothing arrives: cancelling the future cancels the read. */
	bound_read_in_flight(loop, &fut, &op, p[0], buf, sizeof(buf));
	assert_res(proa_future_cancel(&fut), 0);
	assert_int_equal(proa_future_state(&fut), PROA_FUTURE_PENDING);
	bound_read_ends(loop, &fut, &op, -ECANCELED);

	close(p[0]);
	close(p[1]);
	proa_test_loop_close(loop);
	(void)state;
}

static void test_bound_op_never_submitted(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_future fut;
	struct proa_op op;

	/* A failed submission leaves the future pending and releasable. */
	proa_future_init(&fut, loop);
	proa_op_init(&op, NULL, NULL);
	assert_res(proa_future_bind_op(&fut, &op), 0);
	assert_res(proa_future_fini(&fut), 0);

	/* Cancelled before submission: nothing else would resolve it. */
	proa_future_init(&fut, loop);
	proa_op_init(&op, NULL, NULL);
	assert_res(proa_future_bind_op(&fut, &op), 0);
	assert_res(proa_future_cancel(&fut), 0);
	assert_int_equal(proa_future_state(&fut), PROA_FUTURE_CANCELLED);
	assert_res(proa_future_fini(&fut), 0);
	proa_test_loop_close(loop);
	(void)state;
}

/* A bound op in flight holds its future: a result from the owner (or from
 * another thread) is refused, and the future cannot be released until the
 * op's completion is in (ASan: the completion used to resolve a future
 * already released). */
static void test_bound_op_in_flight_holds_its_future(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_future fut;
	struct proa_op op;
	int p[2];
	char buf[4];

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	bound_read_in_flight(loop, &fut, &op, p[0], buf, sizeof(buf));
	assert_res(proa_future_set_result(&fut, 7, NULL), -EBUSY);
	assert_res(proa_future_fini(&fut), -EBUSY);
	/* Clearing the canceller does not drop the bond either. */
	proa_future_set_canceller(&fut, NULL, NULL);
	assert_res(proa_future_fini(&fut), -EBUSY);
	/* A threadsafe result is dropped: the op's own result wins. */
	assert_res(proa_future_set_result_threadsafe(&fut, 9, NULL), 0);
	assert_int_equal(proa_loop_run(loop, PROA_RUN_NOWAIT), 1);
	assert_false(proa_future_is_done(&fut));
	assert_int_equal(write(p[1], "xy", 2), 2);
	bound_read_ends(loop, &fut, &op, 2);
	close(p[0]);
	close(p[1]);
	proa_test_loop_close(loop);
	(void)state;
}

/* After close nothing runs: a future of the loop takes no result, no
 * callback and no cancel, and it can still be released. */
static void test_future_of_a_closed_loop_refuses_and_releases(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_future fut;
	unsigned n = 0;

	proa_future_init(&fut, loop);
	assert_res(proa_future_add_done_callback(&fut, count_cb, &n), 0);
	assert_res(proa_future_add_done_callback(&fut, count_cb, &n), 0);
	assert_res(proa_loop_close(loop), 0);
	assert_res(proa_future_set_result(&fut, 1, NULL), PROA_ECLOSED);
	assert_res(proa_future_add_done_callback(&fut, count_cb, &n),
		   PROA_ECLOSED);
	assert_res(proa_future_cancel(&fut), PROA_ECLOSED);
	assert_false(proa_future_is_done(&fut));
	/* The callbacks' nodes go with it (LeakSanitizer). */
	assert_res(proa_future_fini(&fut), 0);
	assert_int_equal(n, 0);
	assert_res(proa_loop_free(loop), 0);
	(void)state;
}

/* Cancel racing completion: every future resolves exactly once, with the
 * read's byte or -ECANCELED, and a cancelled read consumed nothing. */
static void test_cancel_racing_completion_10k_via_futures(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_future fut;
	struct proa_op op;
	unsigned runs;
	int sv[2], i, res, got_data = 0, got_cancel = 0;
	char in, left;
	bool wrote;

	assert_int_equal(socketpair(AF_UNIX,
				    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
				    0, sv),
			 0);
	for (i = 0; i < 10000; i++) {
		runs = 0;
		proa_future_init(&fut, loop);
		proa_op_init(&op, NULL, NULL);
		assert_res(proa_future_bind_op(&fut, &op), 0);
		assert_res(proa_future_add_done_callback(&fut, count_cb, &runs),
			   0);
		assert_res(proa_op_read(loop, &op, sv[0], &in, 1, -1), 0);
		/* Half the time the read reaches the kernel first; the
		 * other half the cancel meets it still in the SQ. */
		if (i & 2)
			assert_int_equal(proa_loop_run(loop, PROA_RUN_NOWAIT),
					 1);
		wrote = i & 1;
		if (wrote)
			assert_int_equal(write(sv[1], "x", 1), 1);
		assert_res(proa_future_cancel(&fut), 0);
		assert_res(proa_loop_run_until_complete(loop, &fut), 0);
		/* Its callback, then nothing more. */
		assert_res(proa_loop_run(loop, PROA_RUN_NOWAIT), 0);
		assert_res(proa_loop_run(loop, PROA_RUN_NOWAIT), 0);
		assert_int_equal(runs, 1);
		res = proa_future_result(&fut, NULL);
		if (res == 1) {
			assert_true(wrote);
			assert_int_equal(proa_future_state(&fut),
					 PROA_FUTURE_DONE);
			got_data++;
		} else {
			assert_res(res, -ECANCELED);
			assert_int_equal(proa_future_state(&fut),
					 PROA_FUTURE_CANCELLED);
			got_cancel++;
			if (wrote)
				assert_int_equal(read(sv[0], &left, 1), 1);
		}
		assert_int_equal(read(sv[0], &left, 1), -1);
		assert_int_equal(errno, EAGAIN);
		assert_res(proa_future_fini(&fut), 0);
	}
	/* A read with no data can only end cancelled. */
	assert_true(got_cancel >= 5000);
	print_message("data won %d times, cancel %d times\n", got_data,
		      got_cancel);
	close(sv[0]);
	close(sv[1]);
	proa_test_loop_close(loop);
	(void)state;
}

/* ---- results from other threads -------------------------------------------
 */

static void test_threadsafe_result_from_the_loop_thread(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_future fut;
	struct rec r = {0};
	struct tag t = {&r, 1};
	int payload;
	void *value = NULL;

	proa_future_init(&fut, loop);
	assert_res(proa_future_add_done_callback(&fut, rec_cb, &t), 0);
	assert_res(proa_future_set_result_threadsafe(&fut, 11, &payload), 0);
	/* It travels through the queue: not resolved yet, one per future,
	 * and the future must stay until it lands. */
	assert_false(proa_future_is_done(&fut));
	assert_res(proa_future_set_result_threadsafe(&fut, 12, NULL),
		   -EALREADY);
	assert_res(proa_future_fini(&fut), -EBUSY);
	assert_res(proa_loop_run_until_complete(loop, &fut), 0);
	assert_int_equal(proa_future_result(&fut, &value), 11);
	assert_ptr_equal(value, &payload);
	assert_res(proa_loop_run(loop, PROA_RUN_NOWAIT), 0);
	assert_int_equal(r.n, 1);
	assert_res(proa_future_set_result_threadsafe(&fut, 13, NULL),
		   -EALREADY);
	assert_res(proa_future_fini(&fut), 0);

	/* Cancelled while the result travels: the result is dropped. */
	proa_future_init(&fut, loop);
	assert_res(proa_future_set_result_threadsafe(&fut, 5, NULL), 0);
	assert_res(proa_future_cancel(&fut), 0);
	assert_res(proa_future_fini(&fut), -EBUSY);
	assert_res(proa_loop_run(loop, PROA_RUN_NOWAIT), 0);
	assert_int_equal(proa_future_state(&fut), PROA_FUTURE_CANCELLED);
	assert_res(proa_future_result(&fut, NULL), -ECANCELED);
	assert_res(proa_future_fini(&fut), 0);
	proa_test_loop_close(loop);
	(void)state;
}

#define NTS 64

struct ts_ctx {
	struct proa_future futs[NTS];
	atomic_int failures;
	atomic_int second_refused;
};

static void *ts_producer(void *arg)
{
	struct ts_ctx *c = arg;
	int i;

	for (i = 0; i < NTS; i++) {
		if (proa_future_set_result_threadsafe(&c->futs[i], i, c) != 0)
			atomic_fetch_add(&c->failures, 1);
		if (proa_future_set_result_threadsafe(&c->futs[i], -1, NULL) ==
		    -EALREADY)
			atomic_fetch_add(&c->second_refused, 1);
	}
	return NULL;
}

static void test_threadsafe_results_from_another_thread(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct ts_ctx *c = calloc(1, sizeof(*c));
	struct proa_future all;
	struct proa_future *ptrs[NTS];
	struct rec *r = calloc(1, sizeof(*r));
	struct tag tags[NTS];
	pthread_t th;
	void *value;
	int i;

	assert_non_null(c);
	assert_non_null(r);
	for (i = 0; i < NTS; i++) {
		proa_future_init(&c->futs[i], loop);
		tags[i] = (struct tag){r, i};
		assert_res(proa_future_add_done_callback(&c->futs[i], rec_cb,
							 &tags[i]),
			   0);
		ptrs[i] = &c->futs[i];
	}
	proa_future_init(&all, loop);
	assert_res(proa_future_all(&all, ptrs, NTS), 0);
	/* Let the loop fall asleep first, so some results wake it. */
	assert_int_equal(pthread_create(&th, NULL, ts_producer, c), 0);
	assert_res(proa_loop_run_until_complete(loop, &all), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(atomic_load(&c->failures), 0);
	assert_int_equal(atomic_load(&c->second_refused), NTS);
	assert_res(proa_future_result(&all, NULL), 0);
	assert_res(proa_loop_run(loop, PROA_RUN_NOWAIT), 0);
	assert_int_equal(r->n, NTS);
	for (i = 0; i < NTS; i++) {
		/* On the loop thread, each with its own result. */
		assert_true(pthread_equal(r->thread[i], pthread_self()));
		assert_int_equal(proa_future_result(&c->futs[i], &value), i);
		assert_ptr_equal(value, c);
	}
	for (i = 0; i < NTS; i++)
		assert_res(proa_future_fini(&c->futs[i]), 0);
	assert_res(proa_future_fini(&all), 0);
	free(r);
	free(c);
	proa_test_loop_close(loop);
	(void)state;
}

static void test_threadsafe_result_after_close_is_refused(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_future fut;

	proa_future_init(&fut, loop);
	assert_res(proa_future_fini(&fut), 0);
	assert_res(proa_loop_close(loop), 0);
	/* The future's memory is still there; the loop is closed. */
	proa_future_init(&fut, loop);
	assert_res(proa_future_set_result_threadsafe(&fut, 1, NULL),
		   PROA_ECLOSED);
	/* Refused, so another try is refused the same way, not -EALREADY. */
	assert_res(proa_future_set_result_threadsafe(&fut, 1, NULL),
		   PROA_ECLOSED);
	assert_res(proa_loop_free(loop), 0);
	(void)state;
}

/* ---- debug mode: errors nobody read ----------------------------------------
 */

static void test_debug_logs_an_error_nobody_read(void **state)
{
	struct proa_loop_opts opts = {.debug = 1};
	struct proa_loop *loop = proa_test_loop_new_opts(&opts);
	struct proa_test_log log;
	struct proa_future fut;

	proa_test_log_start(&log);
	/* Read: not logged. */
	proa_future_init(&fut, loop);
	proa_future_set_name(&fut, "read-one");
	assert_res(proa_future_set_result(&fut, -EIO, NULL), 0);
	assert_res(proa_future_result(&fut, NULL), -EIO);
	assert_res(proa_future_fini(&fut), 0);
	assert_false(proa_test_log_has(&log, "nobody read"));
	/* Success unread: not logged either. */
	proa_future_init(&fut, loop);
	assert_res(proa_future_set_result(&fut, 3, NULL), 0);
	assert_res(proa_future_fini(&fut), 0);
	assert_false(proa_test_log_has(&log, "nobody read"));
	/* Failure unread: logged with its name and error. */
	proa_future_init(&fut, loop);
	proa_future_set_name(&fut, "lost-one");
	assert_res(proa_future_set_result(&fut, -ECONNREFUSED, NULL), 0);
	assert_res(proa_future_fini(&fut), 0);
	assert_true(proa_test_log_has(&log, "nobody read"));
	assert_true(proa_test_log_has(&log, "'lost-one'"));
	assert_true(proa_test_log_has(&log, "refused"));
	assert_false(proa_test_log_has(&log, "read-one"));
	proa_test_log_stop(&log);
	proa_test_loop_close(loop);
	(void)state;
}

/* ---- combinators -----------------------------------------------------------
 */

static void test_all_waits_for_every_input(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_future f[3], out;
	struct proa_future *ptrs[3] = {&f[0], &f[1], &f[2]};
	int i;

	for (i = 0; i < 3; i++)
		proa_future_init(&f[i], loop);
	proa_future_init(&out, loop);
	assert_res(proa_future_all(&out, ptrs, 3), 0);
	assert_res(proa_future_set_result(&f[2], 0, NULL), 0);
	assert_res(proa_future_set_result(&f[0], 5, NULL), 0);
	assert_res(proa_loop_run(loop, PROA_RUN_NOWAIT), 0);
	assert_false(proa_future_is_done(&out));
	assert_res(proa_future_set_result(&f[1], 7, NULL), 0);
	assert_res(proa_loop_run_until_complete(loop, &out), 0);
	assert_res(proa_future_result(&out, NULL), 0);
	for (i = 0; i < 3; i++)
		assert_res(proa_future_fini(&f[i]), 0);
	assert_res(proa_future_fini(&out), 0);

	/* Failures: the lowest index wins, whatever the order. */
	for (i = 0; i < 3; i++)
		proa_future_init(&f[i], loop);
	proa_future_init(&out, loop);
	assert_res(proa_future_all(&out, ptrs, 3), 0);
	assert_res(proa_future_set_result(&f[2], -EIO, NULL), 0);
	assert_res(proa_future_set_result(&f[0], 1, NULL), 0);
	assert_res(proa_future_set_result(&f[1], -EPIPE, NULL), 0);
	assert_res(proa_loop_run_until_complete(loop, &out), 0);
	assert_res(proa_future_result(&out, NULL), -EPIPE);
	for (i = 0; i < 3; i++)
		assert_res(proa_future_fini(&f[i]), 0);
	assert_res(proa_future_fini(&out), 0);

	/* Already done inputs count too. */
	for (i = 0; i < 3; i++) {
		proa_future_init(&f[i], loop);
		assert_res(proa_future_set_result(&f[i], i, NULL), 0);
	}
	proa_future_init(&out, loop);
	assert_res(proa_future_all(&out, ptrs, 3), 0);
	assert_false(proa_future_is_done(&out));
	assert_res(proa_loop_run_until_complete(loop, &out), 0);
	assert_res(proa_future_result(&out, NULL), 0);
	for (i = 0; i < 3; i++)
		assert_res(proa_future_fini(&f[i]), 0);
	assert_res(proa_future_fini(&out), 0);
	proa_test_loop_close(loop);
	(void)state;
}

static void test_cancelling_all_cancels_pending_inputs(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_future f[2], out;
	struct proa_future *ptrs[2] = {&f[0], &f[1]};

	proa_future_init(&f[0], loop);
	proa_future_init(&f[1], loop);
	proa_future_init(&out, loop);
	assert_res(proa_future_set_result(&f[0], 4, NULL), 0);
	assert_res(proa_future_all(&out, ptrs, 2), 0);
	assert_res(proa_future_cancel(&out), 0);
	assert_int_equal(proa_future_state(&f[0]), PROA_FUTURE_DONE);
	assert_int_equal(proa_future_state(&f[1]), PROA_FUTURE_CANCELLED);
	assert_res(proa_loop_run_until_complete(loop, &out), 0);
	assert_int_equal(proa_future_state(&out), PROA_FUTURE_CANCELLED);
	assert_res(proa_future_result(&out, NULL), -ECANCELED);
	assert_res(proa_future_fini(&f[0]), 0);
	assert_res(proa_future_fini(&f[1]), 0);
	assert_res(proa_future_fini(&out), 0);
	proa_test_loop_close(loop);
	(void)state;
}

/* any: out says which input came first; out may be released at once while
 * the other inputs keep running and finish later. */
static void release_out(struct proa_future *out, void *arg)
{
	(*(int *)arg) = proa_future_result(out, NULL);
	assert_res(proa_future_fini(out), 0);
	free(out);
}

static void test_any_takes_the_first_and_leaves_the_rest(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_future f[3];
	struct proa_future *ptrs[3] = {&f[0], &f[1], &f[2]};
	struct proa_future *out = malloc(sizeof(*out));
	int first = -100, i;

	assert_non_null(out);
	for (i = 0; i < 3; i++)
		proa_future_init(&f[i], loop);
	proa_future_init(out, loop);
	assert_res(proa_future_any(out, ptrs, 3), 0);
	assert_res(proa_future_add_done_callback(out, release_out, &first), 0);
	assert_res(proa_future_set_result(&f[1], -EIO, NULL), 0);
	assert_int_equal(proa_loop_run(loop, PROA_RUN_NOWAIT), 1);
	assert_res(proa_loop_run(loop, PROA_RUN_NOWAIT), 0);
	assert_int_equal(first, 1);
	/* The others were not cancelled, and finishing them after @out is
	 * gone touches nothing freed (ASan). */
	assert_int_equal(proa_future_state(&f[0]), PROA_FUTURE_PENDING);
	assert_res(proa_future_set_result(&f[0], 1, NULL), 0);
	assert_res(proa_future_set_result(&f[2], 2, NULL), 0);
	assert_res(proa_loop_run(loop, PROA_RUN_NOWAIT), 0);
	assert_res(proa_future_result(&f[1], NULL), -EIO);
	for (i = 0; i < 3; i++)
		assert_res(proa_future_fini(&f[i]), 0);
	proa_test_loop_close(loop);
	(void)state;
}

/* any: once @out has resolved the inputs are no longer borrowed, so the
 * losers may be released while still pending.  The state block must go
 * with the last report it still waits for (LeakSanitizer: it leaked, as
 * it kept waiting for the released losers).  Two inputs finish in one
 * iteration, so one loser's report is already queued when @out resolves. */
static void test_any_losers_released_while_pending_free_everything(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_future f[4], out;
	struct proa_future *ptrs[4] = {&f[0], &f[1], &f[2], &f[3]};
	int i;

	for (i = 0; i < 4; i++)
		proa_future_init(&f[i], loop);
	proa_future_init(&out, loop);
	assert_res(proa_future_any(&out, ptrs, 4), 0);
	assert_res(proa_future_set_result(&f[1], 1, NULL), 0);
	assert_res(proa_future_set_result(&f[2], 2, NULL), 0);
	assert_res(proa_loop_run_until_complete(loop, &out), 0);
	assert_int_equal(proa_future_result(&out, NULL), 1);
	assert_res(proa_future_fini(&out), 0);
	/* The pending losers go first, then the rest runs down. */
	assert_int_equal(proa_future_state(&f[0]), PROA_FUTURE_PENDING);
	assert_res(proa_future_fini(&f[0]), 0);
	assert_res(proa_future_fini(&f[3]), 0);
	while (proa_loop_run(loop, PROA_RUN_NOWAIT) > 0)
		;
	assert_res(proa_future_fini(&f[1]), 0);
	assert_res(proa_future_fini(&f[2]), 0);
	proa_test_loop_close(loop);
	(void)state;
}

static void test_with_timeout(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_future in, out;
	struct proa_op op;
	uint64_t t0, el;
	int p[2];
	char buf[4];
	int payload;
	void *value = NULL;

	/* In time: @out carries @in's result and value. */
	proa_future_init(&in, loop);
	proa_future_init(&out, loop);
	assert_res(proa_future_with_timeout(&out, &in, 5000000000ull), 0);
	assert_res(proa_future_set_result(&in, 8, &payload), 0);
	assert_res(proa_loop_run_until_complete(loop, &out), 0);
	assert_int_equal(proa_future_result(&out, &value), 8);
	assert_ptr_equal(value, &payload);
	assert_res(proa_future_fini(&in), 0);
	assert_res(proa_future_fini(&out), 0);

	/* Too late: -ETIMEDOUT, not early, and the read underneath has
	 * ended (its buffer is free) by the time @out resolves. */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	proa_future_init(&in, loop);
	proa_future_init(&out, loop);
	proa_op_init(&op, NULL, NULL);
	assert_res(proa_future_bind_op(&in, &op), 0);
	assert_res(proa_op_read(loop, &op, p[0], buf, sizeof(buf), -1), 0);
	t0 = proa_test_now_ns();
	assert_res(proa_future_with_timeout(&out, &in, 20000000), 0);
	assert_res(proa_loop_run_until_complete(loop, &out), 0);
	el = proa_test_now_ns() - t0;
	assert_true(el >= 20000000);
	assert_res(proa_future_result(&out, NULL), -ETIMEDOUT);
	assert_true(proa_op_is_idle(&op));
	assert_int_equal(proa_future_state(&in), PROA_FUTURE_CANCELLED);
	assert_res(proa_future_fini(&in), 0);
	assert_res(proa_future_fini(&out), 0);

	/* Cancelling @out cancels @in: -ECANCELED, not -ETIMEDOUT. */
	proa_future_init(&in, loop);
	proa_future_init(&out, loop);
	assert_res(proa_future_with_timeout(&out, &in, 5000000000ull), 0);
	assert_res(proa_future_cancel(&out), 0);
	assert_int_equal(proa_future_state(&in), PROA_FUTURE_CANCELLED);
	assert_res(proa_loop_run_until_complete(loop, &out), 0);
	assert_res(proa_future_result(&out, NULL), -ECANCELED);
	assert_res(proa_future_fini(&in), 0);
	assert_res(proa_future_fini(&out), 0);

	/* Zero timeout on a done input: the input's result, not a
	 * timeout. */
	proa_future_init(&in, loop);
	proa_future_init(&out, loop);
	assert_res(proa_future_set_result(&in, 2, NULL), 0);
	assert_res(proa_future_with_timeout(&out, &in, 0), 0);
	assert_res(proa_loop_run_until_complete(loop, &out), 0);
	assert_int_equal(proa_future_result(&out, NULL), 2);
	assert_res(proa_future_fini(&in), 0);
	assert_res(proa_future_fini(&out), 0);
	close(p[0]);
	close(p[1]);
	proa_test_loop_close(loop);
	(void)state;
}

/* A canceller that takes a while: the work ends 30 ms after it is asked. */
struct slow_work {
	struct proa_future *fut;
	struct proa_timer timer;
	struct proa_loop *loop;
};

static void slow_work_ends(void *arg)
{
	struct slow_work *w = arg;

	proa_future_set_canceller(w->fut, NULL, NULL);
	assert_res(proa_future_set_result(w->fut, -ECANCELED, NULL), 0);
}

static void slow_work_cancel(struct proa_future *fut, void *arg)
{
	struct slow_work *w = arg;

	(void)fut;
	assert_res(proa_loop_call_later(w->loop, &w->timer, 30000000,
					slow_work_ends, w),
		   0);
}

/* The combinators own @out and wait for their inputs: the owner cannot
 * resolve @out under them, nor release an input they wait for (both used
 * to leave the combinator writing into released memory). */
static void test_combinators_own_out_and_inputs(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_future a, b, out;
	struct proa_future *ptrs[2] = {&a, &b};
	int kind;

	for (kind = 0; kind < 3; kind++) {
		proa_future_init(&a, loop);
		proa_future_init(&b, loop);
		proa_future_init(&out, loop);
		if (kind == 0)
			assert_res(proa_future_all(&out, ptrs, 2), 0);
		else if (kind == 1)
			assert_res(proa_future_any(&out, ptrs, 2), 0);
		else
			assert_res(
			    proa_future_with_timeout(&out, &a, 5000000000ull),
			    0);
		assert_res(proa_future_set_result(&out, 3, NULL), -EBUSY);
		assert_res(proa_future_fini(&out), -EBUSY);
		assert_res(proa_future_fini(&a), -EBUSY);
		if (kind != 2)
			assert_res(proa_future_fini(&b), -EBUSY);
		assert_res(proa_future_set_result(&a, 1, NULL), 0);
		assert_res(proa_future_set_result(&b, 2, NULL), 0);
		assert_res(proa_loop_run_until_complete(loop, &out), 0);
		assert_res(proa_future_result(&out, NULL), kind == 2 ? 1 : 0);
		while (proa_loop_run(loop, PROA_RUN_NOWAIT) > 0)
			;
		assert_res(proa_future_fini(&a), 0);
		assert_res(proa_future_fini(&b), 0);
		assert_res(proa_future_fini(&out), 0);
	}
	proa_test_loop_close(loop);
	(void)state;
}

/* Cancelling @out ends it CANCELLED: any() does not report input 0 as the
 * winner, all() does not give an earlier input's error, and with_timeout()
 * does not call it a timeout when the input takes longer to wind down
 * than the deadline. */
static void test_cancelled_combinators_end_cancelled(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_future f[2], out, in;
	struct proa_future *ptrs[2] = {&f[0], &f[1]};
	struct slow_work w = {.fut = &in, .loop = loop};
	int i;

	for (i = 0; i < 2; i++)
		proa_future_init(&f[i], loop);
	proa_future_init(&out, loop);
	assert_res(proa_future_any(&out, ptrs, 2), 0);
	assert_res(proa_future_cancel(&out), 0);
	assert_res(proa_loop_run_until_complete(loop, &out), 0);
	assert_int_equal(proa_future_state(&out), PROA_FUTURE_CANCELLED);
	assert_res(proa_future_result(&out, NULL), -ECANCELED);
	for (i = 0; i < 2; i++)
		assert_res(proa_future_fini(&f[i]), 0);
	assert_res(proa_future_fini(&out), 0);

	/* all(): input 0 failed before the cancel, input 1 is cancelled. */
	for (i = 0; i < 2; i++)
		proa_future_init(&f[i], loop);
	proa_future_init(&out, loop);
	assert_res(proa_future_set_result(&f[0], -EIO, NULL), 0);
	assert_res(proa_future_all(&out, ptrs, 2), 0);
	assert_res(proa_future_cancel(&out), 0);
	assert_res(proa_loop_run_until_complete(loop, &out), 0);
	assert_int_equal(proa_future_state(&out), PROA_FUTURE_CANCELLED);
	assert_res(proa_future_result(&f[0], NULL), -EIO);
	for (i = 0; i < 2; i++)
		assert_res(proa_future_fini(&f[i]), 0);
	assert_res(proa_future_fini(&out), 0);

	/* with_timeout(): deadline 10 ms, the input's cancel takes 30. */
	proa_future_init(&in, loop);
	proa_future_set_canceller(&in, slow_work_cancel, &w);
	proa_future_init(&out, loop);
	assert_res(proa_future_with_timeout(&out, &in, 10000000), 0);
	assert_res(proa_future_cancel(&out), 0);
	assert_res(proa_loop_run_until_complete(loop, &out), 0);
	assert_int_equal(proa_future_state(&out), PROA_FUTURE_CANCELLED);
	assert_res(proa_future_result(&out, NULL), -ECANCELED);
	assert_res(proa_future_fini(&in), 0);
	assert_res(proa_future_fini(&out), 0);
	proa_test_loop_close(loop);
	(void)state;
}

static void test_combinators_refuse_bad_input(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_loop *other = proa_test_loop_new();
	struct proa_future a, b, out, foreign;
	struct proa_future *ok[2] = {&a, &b};
	struct proa_future *with_null[2] = {&a, NULL};
	struct proa_future *with_foreign[2] = {&a, &foreign};
	struct proa_future *with_out[2] = {&a, &out};

	proa_future_init(&a, loop);
	proa_future_init(&b, loop);
	proa_future_init(&out, loop);
	proa_future_init(&foreign, other);
	assert_res(proa_future_all(&out, ok, 0), -EINVAL);
	assert_res(proa_future_any(&out, NULL, 2), -EINVAL);
	assert_res(proa_future_all(NULL, ok, 2), -EINVAL);
	assert_res(proa_future_all(&out, with_null, 2), -EINVAL);
	assert_res(proa_future_any(&out, with_foreign, 2), -EINVAL);
	assert_res(proa_future_all(&out, with_out, 2), -EINVAL);
	assert_res(proa_future_with_timeout(&out, &out, 1), -EINVAL);
	assert_res(proa_future_with_timeout(&out, &foreign, 1), -EINVAL);
	assert_res(proa_future_with_timeout(NULL, &a, 1), -EINVAL);
	/* @out already in use. */
	assert_res(proa_future_all(&out, ok, 2), 0);
	assert_res(proa_future_any(&out, ok, 2), -EBUSY);
	assert_res(proa_future_with_timeout(&out, &a, 1), -EBUSY);
	/* Nothing was attached by the refusals: one callback each. */
	assert_res(proa_future_set_result(&a, 0, NULL), 0);
	assert_res(proa_future_set_result(&b, 0, NULL), 0);
	assert_res(proa_loop_run_until_complete(loop, &out), 0);
	assert_res(proa_future_result(&out, NULL), 0);
	assert_res(proa_future_all(&out, ok, 2), -EBUSY);
	assert_res(proa_future_fini(&a), 0);
	assert_res(proa_future_fini(&b), 0);
	assert_res(proa_future_fini(&out), 0);
	assert_res(proa_future_fini(&foreign), 0);
	proa_test_loop_close(other);
	proa_test_loop_close(loop);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(
		test_callback_on_done_future_runs_later_not_inline),
	    cmocka_unit_test(test_callbacks_run_in_the_order_added),
	    cmocka_unit_test(test_remove_done_callback),
	    cmocka_unit_test(test_reentrant_callbacks_wait_for_next_iteration),
	    cmocka_unit_test(test_last_callback_may_release_its_future),
	    cmocka_unit_test(test_result_states_and_set_result_twice),
	    cmocka_unit_test(test_bad_arguments),
	    cmocka_unit_test(test_cancel_without_canceller_is_immediate),
	    cmocka_unit_test(test_cancel_with_canceller_waits_for_the_work),
	    cmocka_unit_test(test_bound_nop_resolves_with_its_result),
	    cmocka_unit_test(test_bound_read_completes_or_is_cancelled),
	    cmocka_unit_test(test_bound_op_never_submitted),
	    cmocka_unit_test(test_bound_op_in_flight_holds_its_future),
	    cmocka_unit_test(test_future_of_a_closed_loop_refuses_and_releases),
	    cmocka_unit_test(test_cancel_racing_completion_10k_via_futures),
	    cmocka_unit_test(test_threadsafe_result_from_the_loop_thread),
	    cmocka_unit_test(test_threadsafe_results_from_another_thread),
	    cmocka_unit_test(test_threadsafe_result_after_close_is_refused),
	    cmocka_unit_test(test_debug_logs_an_error_nobody_read),
	    cmocka_unit_test(test_all_waits_for_every_input),
	    cmocka_unit_test(test_cancelling_all_cancels_pending_inputs),
	    cmocka_unit_test(test_any_takes_the_first_and_leaves_the_rest),
	    cmocka_unit_test(
		test_any_losers_released_while_pending_free_everything),
	    cmocka_unit_test(test_with_timeout),
	    cmocka_unit_test(test_combinators_own_out_and_inputs),
	    cmocka_unit_test(test_cancelled_combinators_end_cancelled),
	    cmocka_unit_test(test_combinators_refuse_bad_input),
	};

	proa_test_require_uring();
	return cmocka_run_group_tests_name("future.basic", tests, NULL, NULL);
}
