/* SPDX-License-Identifier: MIT */
/*
 * tests/kernel/net/test_tcp_bufclass.c - the two classes of receive
 * buffers (proa_net_set_stream_buffers()): a connection that streams
 * moves to the big buffers and one that goes back to small messages
 * moves back; data_received never shows more than the shared buffer
 * size; a pause in the middle of a big buffer holds the rest, in order;
 * big buffers lent to an echo's sends go back once sent; a big class that
 * runs dry hands over to the shared ring and loses nothing; and every
 * buffer of both rings is back in its ring before the loop closes.
 *
 * The buffer rings are real on io_uring and emulated on the epoll
 * backend: the same assertions hold on both.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "tcp_support.h"

/* Whether @t receives from the big class now. */
static bool is_big(struct proa_transport *t)
{
	return proa_container_of(t, struct proa__sock, base)->big;
}

/* Close both ends, check that every buffer is back, close the loop. */
static void pair_close(struct pair *p)
{
	assert_res(proa_transport_close(p->c->t), 0);
	DRIVE(p->loop, p->c->lost && p->sv->lost);
	assert_all_back(p->loop);
	pair_free(p);
}

/* 4 MiB in 64 KiB writes: the server's connection moves to the big
 * class (some receive brings more than a shared buffer holds), yet no
 * data_received is bigger than the shared 16 KiB.  Then small messages
 * one at a time: after a run of them it moves back.  Bytes exact
 * throughout. */
static void test_stream_then_small(void **state)
{
	struct pair p;
	struct pump pu = {.total = 4u << 20, .piece = 65536};
	uint64_t promoted;
	unsigned i;

	(void)state;
	pair_open(&p, proa_test_loop_new(), P_VERIFY, 0);
	pu.pe = p.c;
	pump_until(p.loop, &pu, p.sv, pu.total);
	assert_int_equal(p.sv->bad, 0);
	assert_true(p.nl->promoted >= 1);
	assert_non_null(p.nl->big);
	assert_true(p.nl->rx_max > 16384);
	assert_true(p.sv->max_len <= 16384);
	/* Small messages, each waited for: one receive each. */
	for (i = 0; i < 20; i++) {
		pu.total += 100;
		pu.piece = 100;
		pump_until(p.loop, &pu, p.sv, pu.total);
	}
	assert_int_equal(p.sv->bad, 0);
	assert_false(is_big(p.sv->t));
	assert_true(p.nl->demoted >= 1);
	/* Streaming again moves it again. */
	promoted = p.nl->promoted;
	pu.total += 1u << 20;
	pu.piece = 65536;
	pump_until(p.loop, &pu, p.sv, pu.total);
	assert_int_equal(p.sv->bad, 0);
	assert_true(p.nl->promoted > promoted);
	pair_close(&p);
}

/* A streaming connection whose consumer starts pausing after every
 * data_received: the big buffer being shown is held from the piece that
 * paused, and shown after resume, in order; the connection goes back to
 * the shared ring (a paused transport holds one shared buffer at most
 * from then on); no data_received while paused. */
static void test_pause_inside_big_buffer(void **state)
{
	struct pair p;
	struct pump pu = {.total = 1u << 20, .piece = 65536};

	(void)state;
	pair_open(&p, proa_test_loop_new(), P_VERIFY, 0);
	pu.pe = p.c;
	pump_until(p.loop, &pu, p.sv, pu.total);
	assert_true(is_big(p.sv->t));
	p.sv->flags |= P_PAUSE_EACH;
	pu.total += 4u << 20;
	pump_until(p.loop, &pu, p.sv, pu.total);
	assert_false(is_big(p.sv->t));
	assert_int_equal(p.sv->bad, 0);
	assert_int_equal(p.sv->rx_while_paused, 0);
	assert_true(p.nl->promoted >= 1 && p.nl->demoted >= 1);
	assert_true(p.nl->rx_max > 16384);
	assert_true(p.sv->max_len <= 16384);
	pair_close(&p);
}

/* An echo: the server writes back each piece of a big buffer, sent from
 * the buffer itself: the pieces of one buffer make one loan that grows,
 * so there are fewer loans than data_received calls once a buffer was
 * shown in pieces; once everything is echoed, every buffer is back in its
 * ring while the connection is still open. */
static void test_echo_lends_big_buffers(void **state)
{
	struct pair p;
	struct pump pu = {.total = 8u << 20, .piece = 65536};

	(void)state;
	pair_open(&p, proa_test_loop_new(), P_ECHO, P_VERIFY);
	pu.pe = p.c;
	pump_until(p.loop, &pu, p.c, pu.total);
	assert_int_equal(p.c->bad, 0);
	assert_true(p.nl->promoted >= 1);
	assert_true(p.nl->lent > 0);
	assert_true(p.nl->rx_max > 16384);
	assert_true(p.nl->lent < p.sv->data_calls);
	DRIVE(p.loop, proa_transport_write_buffer_size(p.sv->t) == 0 &&
			  proa_transport_write_buffer_size(p.c->t) == 0);
	assert_all_back(p.loop);
	pair_close(&p);
}

/* Reset mid-stream: an echo whose peer stops reading keeps big buffers
 * lent to writes that cannot leave; the peer then aborts.  The server's
 * connection is lost with the reset, and every lent buffer is back in its
 * ring: none stays held for a write that will never be sent. */
static void test_reset_with_lent_big_buffers(void **state)
{
	struct pair p;
	struct pump pu = {.total = 3u << 20, .piece = 65536};
	uint64_t lent;

	(void)state;
	pair_open(&p, proa_test_loop_new(), P_ECHO, 0);
	pu.pe = p.c;
	assert_res(proa_transport_pause_reading(p.c->t), 0);
	lent = p.nl->lent;
	pump_until(p.loop, &pu, p.sv, pu.total);
	assert_true(p.nl->promoted >= 1);
	assert_true(p.nl->lent > lent);
	assert_true(proa_transport_write_buffer_size(p.sv->t) > 0);
	assert_res(proa_transport_abort(p.c->t), 0);
	DRIVE(p.loop, p.c->lost && p.sv->lost);
	assert_true(p.sv->err < 0);
	assert_all_back(p.loop);
	pair_free(&p);
}

/* A big class of one buffer and eight connections streaming at once:
 * the big ring runs dry, the connections it failed go back to the shared
 * ring, and every byte arrives, in order, on every connection. */
static void test_big_class_runs_dry(void **state)
{
	enum { N = 8 };
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = P_VERIFY}, cf = {.flags = 0};
	struct proa_server *s;
	struct peer *c[N], *pe;
	struct pump pu[N];
	struct proa__netloop *nl;
	uint64_t total = 2u << 20;
	bool done;
	unsigned i;

	(void)state;
	assert_res(proa_net_set_stream_buffers(loop, 3, 65536), -EINVAL);
	assert_res(proa_net_set_stream_buffers(loop, 1, 65536), 0);
	s = listen_local(loop, NULL, &sf);
	assert_res(proa_net_set_stream_buffers(loop, 2, 65536), -EBUSY);
	for (i = 0; i < N; i++) {
		c[i] = connect_local(loop, proa_server_port(s), NULL, &cf);
		pu[i] =
		    (struct pump){.pe = c[i], .total = total, .piece = 65536};
	}
	DRIVE(loop, sf.made == N && farm_lost(&sf) == 0);
	nl = proa__netloop_peek(loop);
	do {
		for (i = 0; i < N; i++)
			pump_more(&pu[i]);
		assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
		done = true;
		for (pe = sf.peers; pe; pe = pe->next) {
			assert_false(pe->lost);
			done = done && pe->rx == total;
		}
	} while (!done);
	for (pe = sf.peers; pe; pe = pe->next) {
		assert_int_equal(pe->bad, 0);
		assert_int_equal(pe->rx_while_paused, 0);
		assert_true(pe->max_len <= 16384);
	}
	assert_int_equal(proa_buf_ring_nbufs(nl->big), 1);
	assert_true(nl->promoted > 0);
	/* the big ring did run dry (else this test proves nothing) */
	assert_true(nl->enobufs > 0 && nl->demoted > 0);
	for (i = 0; i < N; i++)
		assert_res(proa_transport_close(c[i]->t), 0);
	DRIVE(loop, farm_lost(&cf) == N && farm_lost(&sf) == N);
	assert_all_back(loop);
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

/* Turned off: a streaming connection stays on the shared ring. */
static void test_big_class_off(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct pair p;
	struct pump pu = {.total = 2u << 20, .piece = 65536};

	(void)state;
	assert_res(proa_net_set_stream_buffers(loop, 0, 0), 0);
	pair_open(&p, loop, P_VERIFY, 0);
	pu.pe = p.c;
	pump_until(loop, &pu, p.sv, pu.total);
	assert_int_equal(p.sv->bad, 0);
	assert_int_equal(p.nl->promoted, 0);
	assert_null(p.nl->big);
	assert_true(p.nl->rx_max <= 16384);
	pair_close(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_stream_then_small, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_pause_inside_big_buffer, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_echo_lends_big_buffers, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_reset_with_lent_big_buffers,
					    setup, teardown_check),
	    cmocka_unit_test_setup_teardown(test_big_class_runs_dry, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_big_class_off, setup,
					    teardown_check),
	};

	proa_test_require_uring();
	proa_test_filter_from_env();
	return cmocka_run_group_tests_name("net.tcp_bufclass", tests, NULL,
					   NULL);
}
