/* SPDX-License-Identifier: MIT */
/*
 * tests/kernel/net/test_tcp_flow.c - flow control on TCP: water
 * marks against a slow reader (pause_writing, resume_writing), paused
 * reading (no data_received until resumed, then all of it), and
 * provided-buffer exhaustion (two receive buffers, a fast sender, a slow
 * consumer) losing and reordering nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "tcp_support.h"

/* A slow reader: pause_writing once the buffer passes the high mark,
 * resume_writing once it is back at the low one; then close with the
 * buffer still full flushes it all before the peer sees EOF. */
static void test_water_marks(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0};
	struct proa_server_options so = {
	    .transport = {.write_high = (size_t)256 * 1024,
			  .write_low = (size_t)32 * 1024,
			  .sndbuf = 4096}};
	struct proa_server *s = listen_local(loop, &so, &sf);
	struct raw r = {.port = proa_server_port(s)};
	struct pump pu = {.total = 4u << 20, .piece = 8192};
	struct peer *sv;
	int fd;

	(void)state;
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	assert_int_equal(pthread_create(&r.th, NULL, raw_slow_main, &r), 0);
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	pu.pe = sv;
	pump_more(&pu);
	/* pause_writing comes from the ready queue, not inside write. */
	assert_int_equal(sv->pauses, 0);
	DRIVE(loop, sv->pauses == 1);
	assert_true(sv->buf_at_pause > (size_t)256 * 1024);
	raw_set_step(&r, 1);
	DRIVE(loop, sv->resumes == 1);
	assert_true(sv->buf_at_resume <= (size_t)32 * 1024);
	while (pu.sent < pu.total) {
		pump_more(&pu);
		assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
	}
	/* close with the send in flight and the receive armed */
	fd = sv->fd;
	assert_res(proa_transport_close(sv->t), 0);
	assert_true(proa_transport_is_closing(sv->t));
	/* fd not reused while operations on it are in flight */
	{
		int probe = dup(0);

		assert_true(probe != fd);
		close(probe);
	}
	DRIVE(loop, sv->lost);
	assert_res(sv->err, 0);
	pthread_join(r.th, NULL);
	assert_true(r.eof);
	assert_int_equal(r.got, pu.total);
	assert_int_equal(r.bad, 0);
	close_server(loop, s);
	proa_test_loop_close(loop);
	pthread_mutex_destroy(&r.mu);
	pthread_cond_destroy(&r.cv);
	farm_free(&sf);
}

/* While reading is paused no data_received runs; resume delivers it all,
 * in order. */
static void test_pause_reading(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = P_VERIFY}, cf = {.flags = 0};
	struct proa_server *s = listen_local(loop, NULL, &sf);
	struct peer *c = connect_local(loop, proa_server_port(s), NULL, &cf);
	struct pump pu = {.pe = c, .total = 1u << 20, .piece = 16384};
	struct peer *sv;
	unsigned calls, i;

	(void)state;
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	assert_res(proa_transport_pause_reading(sv->t), 0);
	assert_false(proa_transport_is_reading(sv->t));
	sv->reading_paused = true;
	pump_more(&pu);
	calls = sv->data_calls;
	for (i = 0; i < 2000; i++)
		assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	assert_int_equal(sv->data_calls, calls);
	assert_int_equal(sv->rx_while_paused, 0);
	sv->reading_paused = false;
	assert_res(proa_transport_resume_reading(sv->t), 0);
	while (sv->rx < pu.total) {
		pump_more(&pu);
		assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
	}
	assert_int_equal(sv->bad, 0);
	assert_res(proa_transport_close(c->t), 0);
	DRIVE(loop, c->lost && sv->lost);
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

/* Two receive buffers for the whole loop, a fast sender and a consumer
 * that takes one piece per iteration: the ring runs dry again and again,
 * and nothing is lost or reordered. */
static void test_buffer_exhaustion(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = P_VERIFY | P_PAUSE_EACH}, cf = {.flags = 0};
	struct proa_server *s;
	struct peer *c, *sv;
	struct pump pu = {.total = 8u << 20, .piece = 65536};

	(void)state;
	assert_res(proa_net_set_buffers(loop, 2, 4096), 0);
	s = listen_local(loop, NULL, &sf);
	assert_res(proa_net_set_buffers(loop, 4, 4096), -EBUSY);
	c = connect_local(loop, proa_server_port(s), NULL, &cf);
	pu.pe = c;
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	while (sv->rx < pu.total) {
		pump_more(&pu);
		assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
		assert_false(sv->lost);
	}
	assert_int_equal(sv->bad, 0);
	assert_int_equal(sv->rx_while_paused, 0);
	/* the ring did run dry (else this test proves nothing) */
	assert_true(proa__netloop_peek(loop)->enobufs > 0);
	assert_res(proa_transport_close(c->t), 0);
	DRIVE(loop, c->lost && sv->lost);
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_water_marks, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_pause_reading, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_buffer_exhaustion, setup,
					    teardown_check),
	};

	proa_test_require_uring();
	proa_test_filter_from_env();
	return cmocka_run_group_tests_name("net.tcp_flow", tests, NULL, NULL);
}
