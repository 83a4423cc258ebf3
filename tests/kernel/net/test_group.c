/* SPDX-License-Identifier: MIT */
/*
 * tests/kernel/net/test_group.c - loop groups: 1,000 connections spread
 * over the group's loops, by SO_REUSEPORT and by handoff from one
 * acceptor; each connection echoes one message; the group shuts down with
 * connections still open (they are aborted) and leaves no thread, loop or
 * descriptor behind.  Runs under TSan too (label thread).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <stdatomic.h>
#include <unistd.h>

#include "proa_test.h"

#define NCONN 1000
#define NLOOPS 4

/* ---- the server side: runs on the group's loop threads ---------------- */

static atomic_uint srv_made, srv_lost;

struct echo {
	struct proa_protocol p;
	struct proa_transport *t;
};

static void e_made(struct proa_protocol *p, struct proa_transport *t)
{
	proa_container_of(p, struct echo, p)->t = t;
	atomic_fetch_add(&srv_made, 1);
}

static void e_data(struct proa_protocol *p, const void *data, size_t len)
{
	struct echo *e = proa_container_of(p, struct echo, p);

	if (proa_transport_write(e->t, data, len) < 0)
		proa_transport_abort(e->t);
}

static void e_lost(struct proa_protocol *p, int err)
{
	(void)err;
	free(proa_container_of(p, struct echo, p));
	atomic_fetch_add(&srv_lost, 1);
}

static const struct proa_protocol_ops echo_ops = {
    .connection_made = e_made,
    .data_received = e_data,
    .connection_lost = e_lost,
};

static struct proa_protocol *echo_make(void *arg, struct proa_transport *t)
{
	struct echo *e = calloc(1, sizeof(*e));

	(void)arg;
	(void)t;
	if (!e)
		return NULL;
	e->p.ops = &echo_ops;
	return &e->p;
}

/* ---- the client side: the test thread's own loop ------------------------ */

struct client {
	struct proa_protocol p;
	struct proa_transport *t;
	size_t rx;
	bool lost;
	int err;
};

static void c_made(struct proa_protocol *p, struct proa_transport *t)
{
	proa_container_of(p, struct client, p)->t = t;
}

static void c_data(struct proa_protocol *p, const void *data, size_t len)
{
	(void)data;
	proa_container_of(p, struct client, p)->rx += len;
}

static void c_lost(struct proa_protocol *p, int err)
{
	struct client *c = proa_container_of(p, struct client, p);

	c->lost = true;
	c->err = err;
}

static const struct proa_protocol_ops client_ops = {
    .connection_made = c_made,
    .data_received = c_data,
    .connection_lost = c_lost,
};

static struct proa_protocol *client_make(void *arg, struct proa_transport *t)
{
	struct client *c = arg;

	(void)t;
	return &c->p;
}

static void run_group(enum proa_group_mode mode, bool close_first)
{
	struct proa_loop_group_options go = {.nloops = NLOOPS};
	struct proa_loop_group *g = NULL;
	int fds = proa_test_fds(), threads = proa_test_threads();
	struct proa_loop *loop = proa_test_loop_new();
	static struct proa_future fut[NCONN];
	static struct client cl[NCONN];
	uint64_t total = 0, per;
	unsigned i, done, lost;
	uint16_t port;

	atomic_store(&srv_made, 0);
	atomic_store(&srv_lost, 0);
	memset(cl, 0, sizeof(cl));
	assert_int_equal(proa_loop_group_new(&g, &go), 0);
	assert_int_equal(proa_loop_group_size(g), NLOOPS);
	assert_int_equal(proa_loop_group_listen(g, "127.0.0.1", 0, mode, NULL,
						echo_make, NULL),
			 0);
	assert_int_equal(proa_loop_group_listen(g, "127.0.0.1", 0, mode, NULL,
						echo_make, NULL),
			 -EBUSY);
	port = proa_loop_group_port(g);
	assert_true(port != 0);
	for (i = 0; i < NCONN; i++) {
		cl[i].p.ops = &client_ops;
		proa_future_init(&fut[i], loop);
		assert_int_equal(proa_tcp_connect(loop, "127.0.0.1", port, NULL,
						  client_make, &cl[i], &fut[i]),
				 0);
	}
	do {
		assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
		for (done = 0, i = 0; i < NCONN; i++)
			done += proa_future_is_done(&fut[i]);
	} while (done < NCONN);
	for (i = 0; i < NCONN; i++) {
		assert_int_equal(proa_future_result(&fut[i], NULL), 0);
		assert_int_equal(proa_future_fini(&fut[i]), 0);
		assert_int_equal(
		    proa_transport_write(cl[i].t, "0123456789", 10), 0);
	}
	do {
		assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
		for (done = 0, i = 0; i < NCONN; i++)
			done += cl[i].rx == 10;
	} while (done < NCONN);
	for (i = 0; i < NLOOPS; i++) {
		per = proa_loop_group_accepted(g, i);
		print_message("loop %u (cpu %d): %llu connections\n", i,
			      proa_loop_group_cpu(g, i),
			      (unsigned long long)per);
		/* Spread: every loop serves some (for handoff, exactly its
		 * turn; for SO_REUSEPORT, by hash). */
		if (mode == PROA_GROUP_HANDOFF)
			assert_int_equal(per, NCONN / NLOOPS);
		else
			assert_true(per > 0);
		total += per;
	}
	assert_int_equal(total, NCONN);
	assert_int_equal(atomic_load(&srv_made), NCONN);
	if (close_first) {
		/* The clients close: every server side sees EOF. */
		for (i = 0; i < NCONN; i++)
			assert_int_equal(proa_transport_close(cl[i].t), 0);
		do {
			assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
			for (lost = 0, i = 0; i < NCONN; i++)
				lost += cl[i].lost;
		} while (lost < NCONN);
		while (atomic_load(&srv_lost) < NCONN)
			assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	}
	/* Shut down with whatever is still open: aborted, then joined. */
	assert_int_equal(proa_loop_group_free(g), 0);
	assert_int_equal(atomic_load(&srv_lost), NCONN);
	if (!close_first) {
		do {
			assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
			for (lost = 0, i = 0; i < NCONN; i++)
				lost += cl[i].lost;
		} while (lost < NCONN);
	}
	proa_test_loop_close(loop);
	assert_int_equal(proa_test_fds(), fds);
	for (i = 0; i < 5000 && proa_test_threads() > threads; i++)
		usleep(1000); /* the kernel reaps joined threads late */
	assert_true(proa_test_threads() <= threads);
}

static void test_reuseport(void **state)
{
	(void)state;
	run_group(PROA_GROUP_REUSEPORT, true);
}

static void test_handoff(void **state)
{
	(void)state;
	run_group(PROA_GROUP_HANDOFF, true);
}

static void test_shutdown_with_open_connections(void **state)
{
	(void)state;
	run_group(PROA_GROUP_HANDOFF, false);
	run_group(PROA_GROUP_REUSEPORT, false);
}

static void test_bad_input(void **state)
{
	struct proa_loop_group *g = NULL;
	struct proa_loop_group_options go = {.nloops = 2, .no_pin = true};

	(void)state;
	assert_int_equal(proa_loop_group_new(NULL, &go), -EINVAL);
	assert_int_equal(proa_loop_group_new(&g, &go), 0);
	assert_int_equal(proa_loop_group_cpu(g, 0), -1);
	assert_null(proa_loop_group_loop(g, 2));
	assert_int_equal(
	    proa_loop_group_listen(g, "127.0.0.1", 0, 7, NULL, echo_make, NULL),
	    -EINVAL);
	assert_int_equal(proa_loop_group_listen(g, "not-numeric", 0,
						PROA_GROUP_REUSEPORT, NULL,
						echo_make, NULL),
			 -EINVAL);
	assert_int_equal(proa_loop_group_listen(g, "127.0.0.1", 0,
						PROA_GROUP_REUSEPORT, NULL,
						NULL, NULL),
			 -EINVAL);
	assert_int_equal(proa_loop_group_free(g), 0);
	assert_int_equal(proa_loop_group_free(NULL), 0);
}

static void *nothing(void *arg)
{
	return arg;
}

int main(void)
{
	pthread_t th;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reuseport),
	    cmocka_unit_test(test_handoff),
	    cmocka_unit_test(test_shutdown_with_open_connections),
	    cmocka_unit_test(test_bad_input),
	};

	proa_test_require_uring();
	/* Sanitizers start a helper thread with the first pthread_create:
	 * let that happen before any test counts threads. */
	if (pthread_create(&th, NULL, nothing, NULL) == 0)
		pthread_join(th, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
