/* SPDX-License-Identifier: MIT */
/*
 * tests/kernel/net/test_tcp_listen.c - listening and connecting by
 * name: UNIX sockets on a path and on an abstract name, proa_tcp_listen()
 * with a host name and port 0, IPv6 loopback where the host has one, and a
 * client connecting to "localhost".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "tcp_support.h"

/* UNIX sockets, a path and an abstract name; a path already there is
 * EADDRINUSE and is left alone; the path goes when the server closes. */
static void test_unix(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = P_ECHO}, cf = {.flags = P_VERIFY};
	char path[64], abstract[64];
	const char *names[2] = {path, abstract};
	struct proa_server *s, *s2;
	struct proa_future fut;
	struct pump pu = {.total = 1u << 20, .piece = 4096};
	struct peer *c;
	unsigned k;

	(void)state;
	snprintf(path, sizeof(path), "/tmp/proa-test-%d.sock", (int)getpid());
	snprintf(abstract, sizeof(abstract), "@proa-test-%d", (int)getpid());
	unlink(path);
	for (k = 0; k < 2; k++) {
		assert_res(
		    proa_unix_listen(&s, loop, names[k], NULL, farm_make, &sf),
		    0);
		assert_int_equal(proa_server_port(s), 0);
		assert_res(
		    proa_unix_listen(&s2, loop, names[k], NULL, farm_make, &sf),
		    -EADDRINUSE);
		proa_future_init(&fut, loop);
		assert_res(proa_unix_connect(loop, names[k], NULL, farm_make,
					     &cf, &fut),
			   0);
		DRIVE(loop, proa_future_is_done(&fut));
		assert_res(proa_future_result(&fut, NULL), 0);
		assert_res(proa_future_fini(&fut), 0);
		c = cf.peers;
		pu.pe = c;
		pu.sent = 0;
		while (c->rx < pu.total) {
			pump_more(&pu);
			assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
		}
		assert_int_equal(c->bad, 0);
		assert_res(proa_transport_close(c->t), 0);
		DRIVE(loop, c->lost && sf.peers->lost);
		close_server(loop, s);
	}
	assert_int_equal(access(path, F_OK), -1);
	/* too long a path */
	memset(path, 'a', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	{
		char longp[200];

		memset(longp, 'a', sizeof(longp) - 1);
		longp[sizeof(longp) - 1] = '\0';
		assert_res(
		    proa_unix_listen(&s, loop, longp, NULL, farm_make, &sf),
		    -ENAMETOOLONG);
	}
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

/* proa_tcp_listen() with a name (on the pool) and with port 0 reports the
 * bound port; where the host has an IPv6 loopback, a server on ::1 serves
 * a client over IPv6; a client connects by name ("localhost") to a server
 * on 127.0.0.1. */
static void test_listen_names(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = P_ECHO}, cf = {.flags = 0};
	struct proa_future fut;
	struct proa_server *s = NULL;
	struct sockaddr_storage ss;
	socklen_t len;
	struct peer *c;
	unsigned i;

	(void)state;
	proa_future_init(&fut, loop);
	assert_res(
	    proa_tcp_listen(loop, "localhost", 0, NULL, farm_make, &sf, &fut),
	    0);
	DRIVE(loop, proa_future_is_done(&fut));
	assert_res(proa_future_result(&fut, (void **)&s), 0);
	assert_res(proa_future_fini(&fut), 0);
	assert_true(proa_server_nsockets(s) >= 1);
	for (i = 0; i < proa_server_nsockets(s); i++) {
		assert_res(proa_server_sockname(s, i, &ss, &len), 0);
		assert_true(ss.ss_family == AF_INET ||
			    ss.ss_family == AF_INET6);
	}
	assert_res(proa_server_sockname(s, 99, &ss, &len), -ENOENT);
	c = connect_local(loop, proa_server_port(s), NULL, &cf);
	assert_res(proa_transport_write(c->t, "abc", 3), 0);
	DRIVE(loop, c->rx == 3);
	assert_res(proa_transport_peername(c->t, &ss, &len), 0);
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port),
			 proa_server_port(s));
	assert_res(proa_transport_close(c->t), 0);
	DRIVE(loop, c->lost && sf.peers->lost);
	close_server(loop, s);

	/* numeric IPv6, port 0 */
	proa_future_init(&fut, loop);
	assert_res(proa_tcp_listen(loop, "::1", 0, NULL, farm_make, &sf, &fut),
		   0);
	DRIVE(loop, proa_future_is_done(&fut));
	if (proa_test_have_ipv6()) {
		assert_res(proa_future_result(&fut, (void **)&s), 0);
		assert_res(proa_future_fini(&fut), 0);
		assert_true(proa_server_port(s) != 0);
		assert_int_equal(proa_server_nsockets(s), 1);
		assert_res(proa_server_sockname(s, 0, &ss, &len), 0);
		assert_int_equal(ss.ss_family, AF_INET6);
		c = connect_host(loop, "::1", proa_server_port(s), NULL, &cf);
		assert_res(proa_transport_write(c->t, "v6!", 3), 0);
		DRIVE(loop, c->rx == 3);
		assert_res(proa_transport_peername(c->t, &ss, &len), 0);
		assert_int_equal(ss.ss_family, AF_INET6);
		assert_true(IN6_IS_ADDR_LOOPBACK(
		    &((struct sockaddr_in6 *)&ss)->sin6_addr));
		assert_int_equal(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port),
				 proa_server_port(s));
		assert_int_equal(sf.peers->rx, 3);
		assert_res(proa_transport_close(c->t), 0);
		DRIVE(loop, c->lost && sf.peers->lost);
		assert_res(c->err, 0);
		close_server(loop, s);
	} else {
		/* No IPv6 here: the listen must say so, not pretend. */
		assert_true(proa_future_result(&fut, NULL) < 0);
		assert_res(proa_future_fini(&fut), 0);
		print_message("no IPv6 loopback: ::1 not tested\n");
	}

	/* a client by name, to a server on 127.0.0.1 only: whatever order
	 * the name's addresses come in, the one that answers is used */
	s = listen_local(loop, NULL, &sf);
	c = connect_host(loop, "localhost", proa_server_port(s), NULL, &cf);
	assert_res(proa_transport_write(c->t, "byname", 6), 0);
	DRIVE(loop, c->rx == 6);
	assert_res(proa_transport_peername(c->t, &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr),
			 INADDR_LOOPBACK);
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port),
			 proa_server_port(s));
	assert_res(proa_transport_close(c->t), 0);
	DRIVE(loop, c->lost && sf.peers->lost);
	assert_res(c->err, 0);
	close_server(loop, s);

	/* a name that does not resolve */
	proa_future_init(&fut, loop);
	assert_res(proa_tcp_listen(loop, "no-such-host.invalid", 0, NULL,
				   farm_make, &sf, &fut),
		   0);
	DRIVE(loop, proa_future_is_done(&fut));
	assert_true(proa_future_result(&fut, NULL) < 0);
	assert_res(proa_future_fini(&fut), 0);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_unix, setup, teardown_check),
	    cmocka_unit_test_setup_teardown(test_listen_names, setup,
					    teardown_check),
	};

	proa_test_require_uring();
	proa_test_filter_from_env();
	return cmocka_run_group_tests_name("net.tcp_listen", tests, NULL, NULL);
}
