/* SPDX-License-Identifier: MIT */
/*
 * tests/kernel/net/test_tcp_sendzc.c - zero-copy sends of the socket
 * transport (proa_net_set_send_zc()): bytes arrive exact both ways of an
 * echo whose writes leave without a copy, from write chunks and from lent
 * receive buffers; every chunk and buffer waits for its notification and
 * then goes back (both rings full again, the notifications all in); a
 * write_ref buffer is released only after the notification of every
 * zero-copy send made from it; a peer's reset with zero-copy sends in
 * flight loses nothing and leaks nothing; a connection over loopback,
 * where the kernel reports that it copied, stops after its trial send; a
 * UNIX socket, which cannot, falls back to plain sends and loses nothing.
 *
 * Loopback always copies, so the cases that need zero-copy to go on set
 * the netloop's test switch zc_keep_copied (the path a device that sends
 * from the pages takes).  On the epoll backend, which has no zero-copy
 * send, proa_net_set_send_zc() is -EOPNOTSUPP and every case checks that
 * the same traffic goes by plain sends, intact.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "tcp_support.h"

#define ZC_MIN 4096

/* Turn zero-copy on for @loop (kept on over loopback if @keep); false
 * where the loop has none (the epoll backend), which the call says. */
static bool zc_on(struct proa_loop *loop, bool keep)
{
	int ret = proa_net_set_send_zc(loop, ZC_MIN);

	if (!proa_loop_feature(loop, PROA_FEAT_OP_SENDMSG_ZC)) {
		assert_res(ret, -EOPNOTSUPP);
		return false;
	}
	assert_res(ret, 0);
	proa__netloop_peek(loop)->zc_keep_copied = keep;
	return true;
}

/* Every notification in, every buffer back, both ends closed, the loop
 * closed. */
static void pair_close(struct pair *p)
{
	DRIVE(p->loop, p->nl->zc_notifs == p->nl->zc_sends);
	assert_res(proa_transport_close(p->c->t), 0);
	DRIVE(p->loop, p->c->lost && p->sv->lost);
	assert_int_equal(p->nl->zc_notifs, p->nl->zc_sends);
	assert_all_back(p->loop);
	pair_free(p);
}

/* 8 MiB through an echo, every write zero-copy where it can be: from the
 * client's write chunks, and from the receive buffers the server's echo
 * lends.  Bytes exact; the chunks and buffers came back. */
static void test_echo_zero_copy_both_ways(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct pump pu = {.total = 8u << 20, .piece = 65536};
	struct pair p;
	bool zc = zc_on(loop, true);

	(void)state;
	pair_open(&p, loop, P_ECHO, P_VERIFY);
	pu.pe = p.c;
	pump_until(loop, &pu, p.c, pu.total);
	assert_int_equal(p.c->bad, 0);
	DRIVE(loop, proa_transport_write_buffer_size(p.sv->t) == 0 &&
			proa_transport_write_buffer_size(p.c->t) == 0);
	if (zc) {
		/* Both ends went on after their trials (a loopback send
		 * moves up to 1 MiB: about 16 sends in all). */
		assert_true(p.nl->zc_sends > 2);
		assert_true(p.nl->lent > 0);
	} else {
		assert_int_equal(p.nl->zc_sends, 0);
	}
	pair_close(&p);
}

/* Over loopback the kernel copies, and says so: the connection makes one
 * trial zero-copy send and plain ones from then on.  Bytes exact. */
static void test_loopback_stops_after_the_trial(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct pump pu = {.total = 4u << 20, .piece = 65536};
	struct pair p;
	bool zc = zc_on(loop, false);

	(void)state;
	pair_open(&p, loop, P_VERIFY, 0);
	pu.pe = p.c;
	pump_until(loop, &pu, p.sv, pu.total);
	assert_int_equal(p.sv->bad, 0);
	DRIVE(loop, p.nl->zc_notifs == p.nl->zc_sends);
	if (zc && proa_loop_feature(loop, PROA_FEAT_SEND_ZC_REPORT)) {
		assert_int_equal(p.nl->zc_sends, 1);
		assert_int_equal(p.nl->zc_copied, 1);
	} else if (zc) {
		/* No report from this kernel: it goes on. */
		assert_true(p.nl->zc_sends > 1);
	} else {
		assert_int_equal(p.nl->zc_sends, 0);
	}
	pair_close(&p);
}

/* A write_ref buffer: released once, intact, and only after every
 * zero-copy send made from it was notified. */
struct zref {
	struct wref w;
	struct proa__netloop *nl;
	uint64_t sends_at_release, notifs_at_release;
};

static void zref_release(void *arg)
{
	struct zref *z = arg;

	z->sends_at_release = z->nl->zc_sends;
	z->notifs_at_release = z->nl->zc_notifs;
	wref_release(&z->w);
}

static void test_write_ref_released_after_notification(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	const size_t len = 1u << 20;
	struct zref z = {0};
	struct pair p;
	bool zc = zc_on(loop, true);

	(void)state;
	pair_open(&p, loop, P_VERIFY, 0);
	z.nl = p.nl;
	z.w = (struct wref){
	    .t = p.c->t, .buf = pat_buf(0, len), .len = len, .rx = p.sv};
	assert_res(
	    proa_transport_write_ref(p.c->t, z.w.buf, len, zref_release, &z),
	    0);
	DRIVE(loop, z.w.calls == 1 && p.sv->rx == len);
	assert_int_equal(p.sv->bad, 0);
	assert_true(z.w.intact);
	if (zc)
		assert_true(z.sends_at_release >= 1);
	assert_int_equal(z.notifs_at_release, z.sends_at_release);
	free(z.w.buf);
	pair_close(&p);
}

/* The server echoes into a client that does not read, so its zero-copy
 * sends and lent buffers pile up; the client aborts.  Both ends are lost,
 * every notification comes in, every buffer is back. */
static void test_reset_with_zero_copy_in_flight(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct pump pu = {.total = 3u << 20, .piece = 65536};
	struct pair p;
	bool zc = zc_on(loop, true);

	(void)state;
	pair_open(&p, loop, P_ECHO, 0);
	pu.pe = p.c;
	assert_res(proa_transport_pause_reading(p.c->t), 0);
	pump_until(loop, &pu, p.sv, pu.total);
	assert_true(proa_transport_write_buffer_size(p.sv->t) > 0);
	if (zc)
		assert_true(p.nl->zc_sends > 0);
	assert_res(proa_transport_abort(p.c->t), 0);
	DRIVE(loop, p.c->lost && p.sv->lost);
	assert_true(p.sv->err < 0);
	DRIVE(loop, p.nl->zc_notifs == p.nl->zc_sends);
	assert_all_back(loop);
	pair_free(&p);
}

/*
 * A peer that stops reading (a 4 KiB window): the server's zero-copy sends
 * fill the socket and sit unacknowledged, pinning their chunks, until the
 * write timeout ends the connection.  The kernel lets go of them within
 * seconds - a socket closed with unsent data would otherwise linger as an
 * orphan, probing the shut window for minutes, with our memory pinned and
 * proa_loop_close() refused all that time - and every chunk and buffer
 * comes back.
 */
static void test_stalled_peer_timeout_releases_pinned_memory(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0};
	struct proa__netloop *nl;
	struct proa_server *s;
	struct peer *sv;
	struct pump pu;
	bool zc = zc_on(loop, true);
	int fd;

	(void)state;
	s = listen_local(loop, NULL, &sf);
	fd = raw_connect_buf(proa_server_port(s), 4096);
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	nl = proa__netloop_peek(loop);
	assert_res(proa_transport_set_timeouts(sv->t, 0, 200000000), 0);
	pu = (struct pump){.pe = sv, .total = 64u << 20, .piece = 65536};
	while (!sv->lost) {
		pump_more(&pu);
		assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
	}
	assert_int_equal(sv->err, -ETIMEDOUT);
	if (zc)
		assert_true(nl->zc_sends >= 1);
	DRIVE_NS(loop, nl->zc_notifs == nl->zc_sends);
	assert_all_back(loop);
	close(fd);
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
}

/* A UNIX socket cannot send without a copy: the first try fails, nothing
 * of it is lost, and the connection sends plainly from then on. */
static void test_unix_socket_falls_back(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct peer a = {.flags = 0}, b = {.flags = P_VERIFY};
	struct pump pu = {.pe = &a, .total = 2u << 20, .piece = 65536};
	struct proa__netloop *nl;
	int sv[2];

	(void)state;
	zc_on(loop, true);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	a.p.ops = &peer_ops;
	b.p.ops = &peer_ops;
	assert_res(proa_transport_from_fd(&a.t, loop, sv[0], NULL, &a.p), 0);
	assert_res(proa_transport_from_fd(&b.t, loop, sv[1], NULL, &b.p), 0);
	nl = proa__netloop_peek(loop);
	pump_until(loop, &pu, &b, pu.total);
	assert_int_equal(b.bad, 0);
	DRIVE(loop, nl->zc_notifs == nl->zc_sends);
	/* At most the one try: the socket said it cannot. */
	assert_true(nl->zc_sends <= 1);
	assert_res(proa_transport_close(a.t), 0);
	DRIVE(loop, a.lost && b.lost);
	assert_all_back(loop);
	proa_test_loop_close(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_echo_zero_copy_both_ways,
					    setup, teardown_check),
	    cmocka_unit_test_setup_teardown(test_loopback_stops_after_the_trial,
					    setup, teardown_check),
	    cmocka_unit_test_setup_teardown(
		test_write_ref_released_after_notification, setup,
		teardown_check),
	    cmocka_unit_test_setup_teardown(test_reset_with_zero_copy_in_flight,
					    setup, teardown_check),
	    cmocka_unit_test_setup_teardown(
		test_stalled_peer_timeout_releases_pinned_memory, setup,
		teardown_check),
	    cmocka_unit_test_setup_teardown(test_unix_socket_falls_back, setup,
					    teardown_check),
	};

	proa_test_require_uring();
	proa_test_filter_from_env();
	return cmocka_run_group_tests_name("net.tcp_sendzc", tests, NULL, NULL);
}
