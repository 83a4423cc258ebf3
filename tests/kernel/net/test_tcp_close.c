/* SPDX-License-Identifier: MIT */
/*
 * tests/kernel/net/test_tcp_close.c - how TCP connections end:
 * half-close both ways, a peer's reset in mid-write (no SIGPIPE), close
 * with operations in flight (the descriptor is held until they end), and
 * abort with a send in flight.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "tcp_support.h"

/* The client half-closes; the server keeps writing after EOF, then
 * closes; and the other way round. */
static void test_half_close(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = P_KEEP_ON_EOF},
		    cf = {.flags = P_KEEP_ON_EOF};
	struct proa_server *s = listen_local(loop, NULL, &sf);
	struct peer *c = connect_local(loop, proa_server_port(s), NULL, &cf);
	struct peer *sv;

	(void)state;
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	assert_true(proa_transport_can_write_eof(c->t));
	/* client -> server, then EOF */
	assert_res(proa_transport_write(c->t, "ping", 4), 0);
	assert_res(proa_transport_write_eof(c->t), 0);
	assert_res(proa_transport_write(c->t, "x", 1), -EPIPE);
	assert_int_equal(proa_transport_state(c->t), PROA_TS_HALF_LOCAL);
	DRIVE(loop, sv->eof);
	assert_int_equal(sv->rx, 4);
	assert_int_equal(proa_transport_state(sv->t), PROA_TS_HALF_PEER);
	/* the server still writes after the peer's EOF */
	assert_res(proa_transport_write(sv->t, "pong!", 5), 0);
	DRIVE(loop, c->rx == 5);
	assert_false(c->lost);
	assert_res(proa_transport_close(sv->t), 0);
	DRIVE(loop, c->lost && sv->lost);
	assert_true(c->eof);
	assert_res(c->err, 0);
	assert_res(sv->err, 0);

	/* server -> client, then EOF; the client answers after EOF */
	c = connect_local(loop, proa_server_port(s), NULL, &cf);
	DRIVE(loop, sf.peers != sv && sf.peers->made);
	sv = sf.peers;
	assert_res(proa_transport_write(sv->t, "hello", 5), 0);
	assert_res(proa_transport_write_eof(sv->t), 0);
	DRIVE(loop, c->eof);
	assert_int_equal(c->rx, 5);
	assert_res(proa_transport_write(c->t, "bye", 3), 0);
	assert_res(proa_transport_close(c->t), 0);
	DRIVE(loop, c->lost && sv->lost);
	assert_int_equal(sv->rx, 3);
	assert_true(sv->eof);
	assert_res(c->err, 0);
	assert_res(sv->err, 0);
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

static struct sigaction old_pipe;

/* A peer resets while the server writes: connection_lost with ECONNRESET
 * or EPIPE, and no SIGPIPE (default disposition kills the test). */
static void test_reset_mid_write(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0};
	struct proa_server *s = listen_local(loop, NULL, &sf);
	struct raw r = {.port = proa_server_port(s)};
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	static uint8_t chunk[1 << 16];
	struct peer *sv;

	(void)state;
	sigaction(SIGPIPE, &dfl, &old_pipe);
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	assert_int_equal(pthread_create(&r.th, NULL, raw_reset_main, &r), 0);
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	/* More than the socket buffers hold: sends stay in flight. */
	while (proa_transport_write_buffer_size(sv->t) < (8u << 20))
		assert_res(proa_transport_write(sv->t, chunk, sizeof(chunk)),
			   0);
	assert_int_equal(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0, 1);
	raw_set_step(&r, 1);
	DRIVE(loop, sv->lost);
	assert_true(sv->err == -ECONNRESET || sv->err == -EPIPE);
	pthread_join(r.th, NULL);
	sigaction(SIGPIPE, &old_pipe, NULL);
	close_server(loop, s);
	proa_test_loop_close(loop);
	pthread_mutex_destroy(&r.mu);
	pthread_cond_destroy(&r.cv);
	farm_free(&sf);
}

/* connection_lost of test_close_inflight: every operation on the socket
 * has ended, and the descriptor is closed (by us, not leaked). */
static void lost_ops_idle(struct peer *pe)
{
	assert_true(proa_op_is_idle(&proa__sock_of(pe->t)->rop));
	assert_true(proa_op_is_idle(&proa__sock_of(pe->t)->wop));
	assert_true(proa_op_is_idle(&proa__sock_of(pe->t)->xop));
	assert_int_equal(fcntl(pe->fd, F_GETFD), -1);
	pe->ops_idle_at_lost = true;
}

/* Descriptor @fd is still open, and no new descriptor can take its
 * number (the probes are closed at once). */
static void check_fd_held(int fd)
{
	int sfd, dfd;

	assert_true(fcntl(fd, F_GETFD) != -1);
	sfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(sfd >= 0);
	dfd = dup(sfd);
	assert_true(dfd >= 0);
	assert_true(sfd != fd);
	assert_true(dfd != fd);
	close(dfd);
	close(sfd);
}

/* For DRIVE_NS: the receive has ended; until then, nothing is lost and
 * the descriptor is held (checked once per iteration). */
static bool rop_ended_fd_held(const struct peer *sv, int fd)
{
	assert_false(sv->lost);
	check_fd_held(fd);
	return proa_op_is_idle(&proa__sock_of(sv->t)->rop);
}

/* For DRIVE_NS: connection_lost ran; until then the descriptor is held. */
static bool lost_or_fd_held(const struct peer *sv, int fd)
{
	if (sv->lost)
		return true;
	check_fd_held(fd);
	return false;
}

/*
 * The close rule (docs/architecture.md rule 6): close() with a receive
 * and a send in flight (the peer reads nothing; small buffers both ends)
 * keeps the descriptor open, and its number taken, on every iteration until
 * connection_lost - which finds every operation ended and the descriptor
 * closed.  The close is graceful: once the peer reads again, it gets every
 * byte and then EOF.
 */
static void test_close_inflight(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0};
	struct proa_server_options so = {.transport.sndbuf = 4096};
	struct proa_server *s = listen_local(loop, &so, &sf);
	struct raw r = {.port = proa_server_port(s)};
	struct pump pu = {.total = 4u << 20, .piece = 65536};
	struct peer *sv;
	unsigned long i;
	int fd;

	(void)state;
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	assert_int_equal(pthread_create(&r.th, NULL, raw_slow_main, &r), 0);
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	pu.pe = sv;
	pump_more(&pu);
	assert_int_equal(pu.sent, pu.total);
	for (i = 0; i < 100; i++)
		assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	DRIVE(loop, !proa_op_is_idle(&proa__sock_of(sv->t)->wop));
	/* a send stuck in flight, the receive armed */
	assert_false(proa_op_is_idle(&proa__sock_of(sv->t)->wop));
	assert_false(proa_op_is_idle(&proa__sock_of(sv->t)->rop));
	assert_true(proa_transport_write_buffer_size(sv->t) > 0);
	fd = sv->fd;
	assert_int_equal(proa_transport_fd(sv->t), fd);
	sv->on_lost = lost_ops_idle;
	assert_res(proa_transport_close(sv->t), 0);
	assert_false(sv->lost); /* never inside the call */
	check_fd_held(fd);
	/* The receive is cancelled; the send waits for the peer. */
	DRIVE_NS(loop, rop_ended_fd_held(sv, fd));
	for (i = 0; i < 100; i++) {
		assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
		assert_false(sv->lost);
		check_fd_held(fd);
	}
	assert_false(proa_op_is_idle(&proa__sock_of(sv->t)->wop));
	raw_set_step(&r, 1);
	DRIVE_NS(loop, lost_or_fd_held(sv, fd));
	assert_true(sv->ops_idle_at_lost);
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

/* abort() with a send in flight: connection_lost(-ECONNABORTED) after
 * the operations ended; the peer sees the connection end. */
static void test_abort_inflight(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0}, cf = {.flags = 0};
	struct proa_server_options so = {.transport.sndbuf = 4096};
	struct proa_server *s = listen_local(loop, &so, &sf);
	struct peer *c = connect_local(loop, proa_server_port(s), NULL, &cf);
	static uint8_t chunk[1 << 16];
	struct peer *sv;
	unsigned i;

	(void)state;
	assert_res(proa_transport_pause_reading(c->t), 0);
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	for (i = 0; i < 64; i++)
		assert_res(proa_transport_write(sv->t, chunk, sizeof(chunk)),
			   0);
	for (i = 0; i < 100; i++)
		assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	assert_false(proa_op_is_idle(&proa__sock_of(sv->t)->wop));
	assert_false(proa_op_is_idle(&proa__sock_of(sv->t)->rop));
	proa_transport_abort(sv->t);
	assert_false(sv->lost); /* never inside the call */
	assert_res(proa_transport_write(sv->t, "x", 1), -EPIPE);
	DRIVE(loop, sv->lost);
	assert_res(sv->err, -ECONNABORTED);
	assert_res(proa_transport_resume_reading(c->t), 0);
	DRIVE(loop, c->lost);
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_half_close, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_reset_mid_write, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_close_inflight, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_abort_inflight, setup,
					    teardown_check),
	};

	proa_test_require_uring();
	proa_test_filter_from_env();
	return cmocka_run_group_tests_name("net.tcp_close", tests, NULL, NULL);
}
