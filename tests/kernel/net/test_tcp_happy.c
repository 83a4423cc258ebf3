/* SPDX-License-Identifier: MIT */
/*
 * tests/kernel/net/test_tcp_happy.c - Happy Eyeballs (RFC 8305) in
 * proa_tcp_connect_addrs(): an address that never answers costs one
 * attempt delay, not the connect's timeout; families are interleaved; the
 * losers are cancelled and their sockets closed; every failure, timeout
 * and cancel resolves the future once and leaks nothing.
 *
 * "Never answers" is a listener whose backlog is full: the kernel drops
 * the SYNs it gets, so a connect to it hangs as one to a dead host does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <netdb.h>
#include <sys/un.h>

#include "tcp_support.h"

/* A listener on @family's loopback whose accept queue is full (backlog 0
 * holds one connection, @filler): later SYNs are dropped. */
struct blackhole {
	int lfd, filler;
	struct sockaddr_storage ss;
	socklen_t len;
};

static void blackhole_open(struct blackhole *b, int family)
{
	memset(b, 0, sizeof(*b));
	b->ss.ss_family = (sa_family_t)family;
	if (family == AF_INET) {
		((struct sockaddr_in *)&b->ss)->sin_addr.s_addr =
		    htonl(INADDR_LOOPBACK);
		b->len = sizeof(struct sockaddr_in);
	} else {
		((struct sockaddr_in6 *)&b->ss)->sin6_addr = in6addr_loopback;
		b->len = sizeof(struct sockaddr_in6);
	}
	b->lfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(b->lfd >= 0);
	assert_int_equal(bind(b->lfd, (struct sockaddr *)&b->ss, b->len), 0);
	assert_int_equal(listen(b->lfd, 0), 0);
	assert_int_equal(
	    getsockname(b->lfd, (struct sockaddr *)&b->ss, &b->len), 0);
	b->filler = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(b->filler, (struct sockaddr *)&b->ss, b->len),
			 0);
}

static void blackhole_close(struct blackhole *b)
{
	close(b->filler);
	close(b->lfd);
}

/* A closed port on 127.0.0.1: refuses at once. */
static void refused_addr(struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *a = (struct sockaddr_in *)ss;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memset(ss, 0, sizeof(*ss));
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	*len = sizeof(*a);
	assert_int_equal(bind(fd, (struct sockaddr *)a, *len), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)a, len), 0);
	close(fd);
}

static void server_addr(struct proa_server *s, int family,
			struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	ss->ss_family = (sa_family_t)family;
	if (family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a->sin_port = htons(proa_server_port(s));
		*len = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_addr = in6addr_loopback;
		a->sin6_port = htons(proa_server_port(s));
		*len = sizeof(*a);
	}
}

static struct proa_server *listen_local6(struct proa_loop *loop, struct farm *f)
{
	struct sockaddr_in6 a = {.sin6_family = AF_INET6};
	struct proa_server *s = NULL;

	a.sin6_addr = in6addr_loopback;
	assert_res(proa_tcp_listen_addr(&s, loop, (struct sockaddr *)&a,
					sizeof(a), NULL, farm_make, f),
		   0);
	return s;
}

/* An addrinfo list over @n addresses, in that order. */
struct alist {
	struct addrinfo ai[4];
};

static const struct addrinfo *alist_make(struct alist *l,
					 struct sockaddr_storage *ss,
					 const socklen_t *len, int n)
{
	memset(l, 0, sizeof(*l));
	for (int i = 0; i < n; i++) {
		l->ai[i].ai_family = ss[i].ss_family;
		l->ai[i].ai_socktype = SOCK_STREAM;
		l->ai[i].ai_addr = (struct sockaddr *)&ss[i];
		l->ai[i].ai_addrlen = len[i];
		l->ai[i].ai_next = i + 1 < n ? &l->ai[i + 1] : NULL;
	}
	return l->ai;
}

static uint64_t ops_inflight(struct proa_loop *loop)
{
	struct proa_loop_stats st;

	assert_res(proa_loop_stats(loop, &st), 0);
	return st.ops_inflight;
}

/* Connect to @list with @co; the future's result, and the time it took. */
static int connect_list(struct proa_loop *loop, const struct addrinfo *list,
			const struct proa_connect_options *co, struct farm *cf,
			uint64_t *took_ns)
{
	struct proa_future fut;
	uint64_t t0 = proa_test_now_ns();
	int res;

	proa_future_init(&fut, loop);
	assert_res(proa_tcp_connect_addrs(loop, list, co, farm_make, cf, &fut),
		   0);
	DRIVE(loop, proa_future_is_done(&fut));
	*took_ns = proa_test_now_ns() - t0;
	res = proa_future_result(&fut, NULL);
	assert_res(proa_future_fini(&fut), 0);
	return res;
}

/* The first address never answers: the second, started one attempt
 * delay later, wins; the hanging attempt is cancelled and its socket
 * closed (the fd check of the teardown says so). */
static void test_first_never_answers(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0}, cf = {.flags = 0};
	struct proa_server *s = listen_local(loop, NULL, &sf);
	struct proa_connect_options co = {.attempt_delay_ns = 100000000};
	struct sockaddr_storage ss[2];
	socklen_t len[2];
	struct blackhole bh;
	struct alist l;
	uint64_t took;

	(void)state;
	blackhole_open(&bh, AF_INET);
	ss[0] = bh.ss;
	len[0] = bh.len;
	server_addr(s, AF_INET, &ss[1], &len[1]);
	assert_res(
	    connect_list(loop, alist_make(&l, ss, len, 2), &co, &cf, &took), 0);
	assert_int_equal(cf.made, 1);
	/* One delay (100 ms), and nowhere near a SYN timeout (~1 s for the
	 * first retransmission, minutes in all). */
	assert_true(took >= 100000000);
	assert_true(took < 900000000);
	DRIVE(loop, sf.made == 1);
	assert_res(proa_transport_close(cf.peers->t), 0);
	DRIVE(loop, farm_lost(&cf) == 1 && farm_lost(&sf) == 1);
	close_server(loop, s);
	proa_test_loop_close(loop);
	blackhole_close(&bh);
	farm_free(&sf);
	farm_free(&cf);
}

/* With attempt_delay_ns UINT64_MAX, one address at a time: a refused
 * one passes the turn at once, a silent one holds it until the timeout. */
static void test_one_at_a_time(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0}, cf = {.flags = 0};
	struct proa_server *s = listen_local(loop, NULL, &sf);
	struct proa_connect_options co = {.attempt_delay_ns = UINT64_MAX,
					  .timeout_ns = 300000000};
	struct sockaddr_storage ss[2];
	socklen_t len[2];
	struct blackhole bh;
	struct alist l;
	uint64_t took;

	(void)state;
	refused_addr(&ss[0], &len[0]);
	server_addr(s, AF_INET, &ss[1], &len[1]);
	assert_res(
	    connect_list(loop, alist_make(&l, ss, len, 2), &co, &cf, &took), 0);
	assert_int_equal(cf.made, 1);
	DRIVE(loop, sf.made == 1);
	assert_res(proa_transport_close(cf.peers->t), 0);
	DRIVE(loop, farm_lost(&cf) == 1 && farm_lost(&sf) == 1);

	blackhole_open(&bh, AF_INET);
	ss[0] = bh.ss;
	len[0] = bh.len;
	assert_res(
	    connect_list(loop, alist_make(&l, ss, len, 2), &co, &cf, &took),
	    -ETIMEDOUT);
	assert_true(took >= 300000000);
	assert_int_equal(cf.made, 1); /* the server was never tried */
	assert_int_equal(sf.made, 1);
	close_server(loop, s);
	proa_test_loop_close(loop);
	blackhole_close(&bh);
	farm_free(&sf);
	farm_free(&cf);
}

/* Families alternate, the first address's first: [v4 refused, v4 A,
 * v6 B] is tried as v4 refused, v6 B, v4 A, so B wins (in list order A
 * would have).  The delay is long, so only a failure moves the turn on. */
static void test_families_interleaved(void **state)
{
	struct proa_loop *loop;
	struct farm af = {.flags = 0}, bf = {.flags = 0}, cf = {.flags = 0};
	struct proa_connect_options co = {.attempt_delay_ns = 10000000000ull};
	struct proa_server *a, *b;
	struct sockaddr_storage ss[3];
	socklen_t len[3];
	struct alist l;
	uint64_t took;

	(void)state;
	if (!proa_test_have_ipv6())
		skip();
	loop = proa_test_loop_new();
	a = listen_local(loop, NULL, &af);
	b = listen_local6(loop, &bf);
	refused_addr(&ss[0], &len[0]);
	server_addr(a, AF_INET, &ss[1], &len[1]);
	server_addr(b, AF_INET6, &ss[2], &len[2]);
	assert_res(
	    connect_list(loop, alist_make(&l, ss, len, 3), &co, &cf, &took), 0);
	DRIVE(loop, bf.made == 1);
	assert_int_equal(af.made, 0);
	assert_res(proa_transport_close(cf.peers->t), 0);
	DRIVE(loop, farm_lost(&cf) == 1 && farm_lost(&bf) == 1);
	close_server(loop, a);
	close_server(loop, b);
	proa_test_loop_close(loop);
	farm_free(&af);
	farm_free(&bf);
	farm_free(&cf);
}

/* Every address fails: the first failure is the answer. */
static void test_all_refuse(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm cf = {.flags = 0};
	struct sockaddr_storage ss[3];
	socklen_t len[3];
	struct alist l;
	uint64_t took;

	(void)state;
	for (int i = 0; i < 3; i++)
		refused_addr(&ss[i], &len[i]);
	assert_res(
	    connect_list(loop, alist_make(&l, ss, len, 3), NULL, &cf, &took),
	    -ECONNREFUSED);
	assert_int_equal(cf.made, 0);
	proa_test_loop_close(loop);
	farm_free(&cf);
}

/* Silent addresses only: the timeout ends every attempt in flight, and a
 * cancel does the same; nothing is left open either way. */
static void test_timeout_and_cancel(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_connect_options co = {.attempt_delay_ns = 50000000,
					  .timeout_ns = 400000000};
	struct farm cf = {.flags = 0};
	struct sockaddr_storage ss[3];
	socklen_t len[3];
	struct blackhole bh[3];
	struct proa_future fut;
	struct alist l;
	uint64_t took;

	(void)state;
	for (int i = 0; i < 3; i++) {
		blackhole_open(&bh[i], AF_INET);
		ss[i] = bh[i].ss;
		len[i] = bh[i].len;
	}
	assert_res(
	    connect_list(loop, alist_make(&l, ss, len, 3), &co, &cf, &took),
	    -ETIMEDOUT);
	assert_true(took >= 400000000);

	co.timeout_ns = 0;
	proa_future_init(&fut, loop);
	assert_res(proa_tcp_connect_addrs(loop, alist_make(&l, ss, len, 3), &co,
					  farm_make, &cf, &fut),
		   0);
	/* All three attempts in flight (one per 50 ms), then cancel. */
	DRIVE(loop, ops_inflight(loop) == 3);
	assert_false(proa_future_is_done(&fut));
	assert_res(proa_future_cancel(&fut), 0);
	DRIVE(loop, proa_future_is_done(&fut));
	assert_res(proa_future_result(&fut, NULL), -ECANCELED);
	assert_res(proa_future_fini(&fut), 0);
	assert_int_equal(cf.made, 0);
	proa_test_loop_close(loop);
	for (int i = 0; i < 3; i++)
		blackhole_close(&bh[i]);
	farm_free(&cf);
}

/* What the call refuses before starting anything. */
static void test_bad_lists(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	struct addrinfo only_unix = {.ai_family = AF_UNIX,
				     .ai_addr = (struct sockaddr *)&un,
				     .ai_addrlen = sizeof(un)};
	struct farm cf = {.flags = 0};
	struct proa_future fut;

	(void)state;
	proa_future_init(&fut, loop);
	assert_res(
	    proa_tcp_connect_addrs(loop, NULL, NULL, farm_make, &cf, &fut),
	    -EINVAL);
	assert_res(proa_tcp_connect_addrs(loop, &only_unix, NULL, farm_make,
					  &cf, &fut),
		   -EINVAL);
	assert_false(proa_future_is_done(&fut));
	assert_res(proa_future_fini(&fut), 0);
	proa_test_loop_close(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_first_never_answers, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_one_at_a_time, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_families_interleaved, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_all_refuse, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_timeout_and_cancel, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_bad_lists, setup,
					    teardown_check),
	};

	proa_test_require_uring();
	proa_test_filter_from_env();
	return cmocka_run_group_tests_name("net.tcp_happy_eyeballs", tests,
					   NULL, NULL);
}
