/* SPDX-License-Identifier: MIT */
/*
 * tests/kernel/net/test_tcp_errors.c - TCP failures that proa
 * survives: EMFILE on accept (the listener pauses and retries without
 * spinning), refused and timed-out connects, idle and write timeouts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "tcp_support.h"

/* EMFILE on accept: the listener pauses, retries, and serves everyone
 * once descriptors are back.  While paused it does not spin: over a
 * stretch of retries, no more accept attempts than the retry interval
 * allows (one per interval, plus the ones at the edges), and a few loop
 * iterations per attempt, not thousands. */
static void test_emfile(void **state)
{
	const uint64_t retry_ns = 5000000;
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = P_ECHO};
	struct proa_server_options so = {.accept_retry_ns = retry_ns};
	struct proa_server *s = listen_local(loop, &so, &sf);
	struct proa_server_stats st, st0;
	struct proa_loop_stats ls, ls0;
	uint64_t t0, elapsed, retries, iters, allowed;
	struct rlimit old, low;
	int fds[8], i;
	char b[4];

	(void)state;
	for (i = 0; i < 8; i++) {
		fds[i] = raw_connect(proa_server_port(s));
		assert_true(fds[i] >= 0);
	}
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)proa_test_fds() + 1;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	DRIVE(loop, (proa_server_stats(s, &st), st.accept_pause > 0));
	assert_true(st.accepted < 8);
	/* Still short of descriptors: each retry fails and pauses again
	 * (accept_pause counts them).  Watch 20 of them, or 2 s. */
	assert_res(proa_server_stats(s, &st0), 0);
	assert_res(proa_loop_stats(loop, &ls0), 0);
	t0 = proa_test_now_ns();
	DRIVE_NS(loop, (proa_server_stats(s, &st),
			st.accept_pause - st0.accept_pause >= 20 ||
			    proa_test_now_ns() - t0 >= UINT64_C(2000000000)));
	elapsed = proa_test_now_ns() - t0;
	assert_res(proa_loop_stats(loop, &ls), 0);
	retries = st.accept_pause - st0.accept_pause;
	iters = ls.iterations - ls0.iterations;
	allowed = elapsed / retry_ns + 2;
	print_message("paused listener: %llu retries, %llu iterations in "
		      "%llu us\n",
		      (unsigned long long)retries, (unsigned long long)iters,
		      (unsigned long long)(elapsed / 1000));
	assert_true(retries >= 1); /* it does retry */
	assert_true(retries <= allowed);
	assert_true(iters <= 8 * allowed);
	assert_int_equal(st.accepted, st0.accepted);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	DRIVE(loop, (proa_server_stats(s, &st), st.accepted == 8));
	assert_int_equal(sf.made, 8);
	for (i = 0; i < 8; i++) {
		assert_int_equal(write(fds[i], "abc", 3), 3);
		/* DRIVE evaluates its condition twice: peek, then read */
		DRIVE(loop, recv(fds[i], b, 3, MSG_DONTWAIT | MSG_PEEK) == 3);
		assert_int_equal(recv(fds[i], b, 3, 0), 3);
		assert_memory_equal(b, "abc", 3);
		close(fds[i]);
	}
	DRIVE(loop, farm_lost(&sf) == 8);
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
}

static void connect_expect(struct proa_loop *loop, const char *host,
			   uint16_t port, uint64_t timeout_ns, int want)
{
	struct proa_connect_options co = {.timeout_ns = timeout_ns};
	struct farm cf = {.flags = 0};
	struct proa_future fut;

	proa_future_init(&fut, loop);
	assert_res(
	    proa_tcp_connect(loop, host, port, &co, farm_make, &cf, &fut), 0);
	DRIVE(loop, proa_future_is_done(&fut));
	assert_int_equal(proa_future_result(&fut, NULL), want);
	assert_res(proa_future_fini(&fut), 0);
	assert_int_equal(cf.made, 0);
}

/* What a plain non-blocking connect() to @host:@port says at once:
 * -errno, or 0 when it is under way (the host has a route there). */
static int plain_connect(const char *host, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, ret = 0;

	assert_res(proa__parse_numeric(host, port, &ss, &len), 0);
	fd =
	    socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&ss, len) < 0 &&
	    errno != EINPROGRESS)
		ret = -errno;
	close(fd);
	return ret;
}

/* A closed port refuses; a listener whose backlog is full lets the
 * connect hang until the timeout; an unreachable address fails at once
 * with the kernel's own code. */
static void test_connect_errors(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int lfd, c1, c2, ret;
	uint64_t t0;

	(void)state;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
	close(lfd); /* nobody listens there now */
	connect_expect(loop, "127.0.0.1", ntohs(a.sin_port), 0, -ECONNREFUSED);

	/* backlog 0 holds one connection; the next SYNs are dropped */
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	a.sin_port = 0;
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lfd, 0), 0);
	len = sizeof(a);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
	c1 = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	c2 = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* Non-blocking: in progress, or (loopback) done at once. */
	if (connect(c1, (struct sockaddr *)&a, sizeof(a)) < 0)
		assert_int_equal(errno, EINPROGRESS);
	if (connect(c2, (struct sockaddr *)&a, sizeof(a)) < 0)
		assert_int_equal(errno, EINPROGRESS);
	t0 = proa_test_now_ns();
	connect_expect(loop, "127.0.0.1", ntohs(a.sin_port), 200000000,
		       -ETIMEDOUT);
	assert_true(proa_test_now_ns() - t0 >= 200000000);
	close(c1);
	close(c2);
	close(lfd);

	/*
	 * Unreachable, whatever the routing table: TCP to a multicast
	 * address is -ENETUNREACH in the kernel's connect (tcp_v4_connect
	 * refuses a multicast route, tcp_v6_connect a multicast address).
	 * A plain connect() says first what this kernel gives; the future
	 * must end with that same code.
	 */
	ret = plain_connect("224.0.0.1", 9);
	assert_true(ret == -ENETUNREACH || ret == -EHOSTUNREACH);
	connect_expect(loop, "224.0.0.1", 9, 0, ret);
	if (proa_test_have_ipv6()) {
		ret = plain_connect("ff02::1", 9);
		assert_true(ret == -ENETUNREACH || ret == -EHOSTUNREACH);
		connect_expect(loop, "ff02::1", 9, 0, ret);
	}
	/* A documentation address (RFC 3849) fails at once only where there
	 * is no IPv6 route to it; where there is one, a SYN leaves and only
	 * a timeout would be certain, so the multicast cases stand in. */
	ret = plain_connect("2001:db8::1", 9);
	if (ret < 0)
		connect_expect(loop, "2001:db8::1", 9, 0, ret);
	else
		print_message("2001:db8::1 is routed on this host: its "
			      "connect would not fail at once (multicast "
			      "cases cover -ENETUNREACH)\n");

	/* bad input, refused before anything starts */
	{
		struct proa_future f;

		proa_future_init(&f, loop);
		assert_res(
		    proa_tcp_connect(loop, "", 1, NULL, farm_make, NULL, &f),
		    -EINVAL);
		assert_res(proa_tcp_connect(loop, "127.0.0.1", 1, NULL, NULL,
					    NULL, &f),
			   -EINVAL);
		assert_res(proa_future_fini(&f), 0);
	}
	proa_test_loop_close(loop);
}

/* Idle timeout ends a silent connection; a write timeout ends one whose
 * peer stopped reading. */
static void test_timeouts(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0}, cf = {.flags = 0};
	struct proa_server_options so = {.transport.idle_timeout_ns = 50000000};
	struct proa_server *s = listen_local(loop, &so, &sf);
	static uint8_t chunk[1 << 16];
	struct peer *sv, *c;
	/* Before the connect: connect_local() runs the loop until the client
	 * is up, and the server may accept (and start its idle timer) inside
	 * it.  A clock read after it let a slow run (ASan, epoll) see the
	 * timeout "early" against a t0 taken after the timer started. */
	uint64_t t0 = proa_test_now_ns();
	unsigned i;

	(void)state;
	c = connect_local(loop, proa_server_port(s), NULL, &cf);
	DRIVE(loop, sf.peers && sf.peers->lost);
	assert_res(sf.peers->err, -ETIMEDOUT);
	assert_true(proa_test_now_ns() - t0 >= 50000000);
	DRIVE(loop, c->lost);

	c = connect_local(loop, proa_server_port(s), NULL, &cf);
	DRIVE(loop, sf.peers->made && !sf.peers->lost);
	sv = sf.peers;
	assert_res(proa_transport_set_timeouts(sv->t, 0, 50000000), 0);
	assert_res(proa_transport_pause_reading(c->t), 0);
	for (i = 0; i < 256; i++)
		assert_res(proa_transport_write(sv->t, chunk, sizeof(chunk)),
			   0);
	DRIVE(loop, sv->lost);
	assert_res(sv->err, -ETIMEDOUT);
	assert_res(proa_transport_resume_reading(c->t), 0);
	DRIVE(loop, c->lost);

	/* The write timer stays armed after a flush (it is not re-armed per
	 * message).  A write that drains keeps a connection open past the
	 * timeout; a stall that starts 30 ms into the timer's 50 is still
	 * given 50 ms from its start, then cut. */
	c = connect_local(loop, proa_server_port(s), NULL, &cf);
	DRIVE(loop, sf.peers != sv && sf.peers->made);
	sv = sf.peers;
	assert_res(proa_transport_set_timeouts(sv->t, 0, 50000000), 0);
	assert_res(proa_transport_write(sv->t, chunk, 1000), 0);
	DRIVE(loop, c->rx == 1000);
	t0 = proa_test_now_ns();
	while (proa_test_now_ns() - t0 < 120000000)
		assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	assert_false(sv->lost); /* nothing waited: no timeout */
	assert_res(proa_transport_write(sv->t, chunk, 1000), 0);
	DRIVE(loop, c->rx == 2000);
	t0 = proa_test_now_ns();
	while (proa_test_now_ns() - t0 < 30000000)
		assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	assert_res(proa_transport_pause_reading(c->t), 0);
	t0 = proa_test_now_ns();
	for (i = 0; i < 256; i++)
		assert_res(proa_transport_write(sv->t, chunk, sizeof(chunk)),
			   0);
	DRIVE(loop, sv->lost);
	assert_res(sv->err, -ETIMEDOUT);
	assert_true(proa_test_now_ns() - t0 >= 50000000);
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
	    cmocka_unit_test_setup_teardown(test_emfile, setup, teardown_check),
	    cmocka_unit_test_setup_teardown(test_connect_errors, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_timeouts, setup,
					    teardown_check),
	};

	proa_test_require_uring();
	proa_test_filter_from_env();
	return cmocka_run_group_tests_name("net.tcp_errors", tests, NULL, NULL);
}
