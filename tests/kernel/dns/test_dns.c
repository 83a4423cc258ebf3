/* SPDX-License-Identifier: MIT */
/*
 * proa_getaddrinfo() on c-ares against a DNS stub the test runs itself on
 * 127.0.0.1 (UDP, on the same loop, through an fd watch), so no query
 * leaves the machine: A and AAAA answers, NXDOMAIN, a name without AAAA, a
 * name the stub never answers (timeout, cancel mid-query, loop close with a
 * query in flight), many lookups at once holding no thread; the pool path
 * forced by proa_dns_configure() and by PROA_RESOLVER; proa_getnameinfo();
 * bad settings.  Every case closes its loop and leaves no descriptor open.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proa_test.h"

/* ---- the stub ------------------------------------------------------------
 *
 * Names (under .test):
 *   a.test       A 192.0.2.1, AAAA 2001:db8::1
 *   v4.test      A 192.0.2.4, no AAAA (NOERROR, no answer)
 *   silent.test  never answered
 *   anything else: NXDOMAIN
 */
struct stub {
	int fd;
	uint16_t port;
	struct proa_fd_watch *w;
	unsigned queries;
	unsigned silent; /* queries for silent.test */
	char servers[64];
};

/* The question's name as a dotted string; its end in @end. */
static bool qname(const uint8_t *msg, size_t len, char *out, size_t outlen,
		  size_t *end)
{
	size_t off = 12, o = 0;

	while (off < len && msg[off]) {
		size_t l = msg[off++];

		if (l > 63 || off + l > len || o + l + 2 > outlen)
			return false;
		if (o)
			out[o++] = '.';
		memcpy(out + o, msg + off, l);
		o += l;
		off += l;
	}
	if (off + 5 > len)
		return false;
	out[o] = '\0';
	*end = off + 5; /* the root label, QTYPE, QCLASS */
	return true;
}

static size_t put_rr(uint8_t *p, uint16_t type, const void *rdata,
		     uint16_t rdlen)
{
	static const uint8_t head[] = {0xc0, 12}; /* the question's name */

	memcpy(p, head, 2);
	p[2] = (uint8_t)(type >> 8);
	p[3] = (uint8_t)type;
	p[4] = 0;
	p[5] = 1; /* IN */
	p[6] = p[7] = p[8] = 0;
	p[9] = 60; /* TTL */
	p[10] = (uint8_t)(rdlen >> 8);
	p[11] = (uint8_t)rdlen;
	memcpy(p + 12, rdata, rdlen);
	return 12u + rdlen;
}

static void stub_cb(struct proa_fd_watch *w, int fd, int revents, void *arg)
{
	struct stub *st = arg;
	uint8_t q[512], r[1024];
	struct sockaddr_storage from;
	socklen_t fl = sizeof(from);
	char name[256];
	size_t end, n;
	ssize_t len;
	uint16_t type;
	uint8_t a4[4], a6[16];
	unsigned ancount = 0, rcode = 0;

	(void)w;
	assert_true(revents > 0);
	len = recvfrom(fd, q, sizeof(q), MSG_DONTWAIT, (struct sockaddr *)&from,
		       &fl);
	if (len < 0)
		return;
	st->queries++;
	if (proa_test_getenv("STUB_DEBUG"))
		fprintf(stderr, "stub: query %zd bytes\n", len);
	if (len < 12 || !qname(q, (size_t)len, name, sizeof(name), &end))
		return;
	type = (uint16_t)(q[end - 4] << 8 | q[end - 3]);
	if (proa_test_getenv("STUB_DEBUG"))
		fprintf(stderr, "stub: %s type %u\n", name, type);
	if (strcasecmp(name, "silent.test") == 0) {
		st->silent++;
		return;
	}
	memcpy(r, q, end);
	n = end;
	if (strcasecmp(name, "a.test") == 0 && type == 1) {
		inet_pton(AF_INET, "192.0.2.1", a4);
		n += put_rr(r + n, 1, a4, 4);
		ancount = 1;
	} else if (strcasecmp(name, "a.test") == 0 && type == 28) {
		inet_pton(AF_INET6, "2001:db8::1", a6);
		n += put_rr(r + n, 28, a6, 16);
		ancount = 1;
	} else if (strcasecmp(name, "v4.test") == 0 && type == 1) {
		inet_pton(AF_INET, "192.0.2.4", a4);
		n += put_rr(r + n, 1, a4, 4);
		ancount = 1;
	} else if (strcasecmp(name, "v4.test") != 0) {
		rcode = 3; /* NXDOMAIN */
	}
	r[2] = (uint8_t)(0x80 | (q[2] & 0x01)); /* QR, RD copied */
	r[3] = (uint8_t)(0x80 | rcode);		/* RA */
	r[4] = 0;
	r[5] = 1; /* QDCOUNT */
	r[6] = 0;
	r[7] = (uint8_t)ancount;
	memset(r + 8, 0, 4);
	assert_int_equal(sendto(fd, r, n, 0, (struct sockaddr *)&from, fl),
			 (ssize_t)n);
}

static void stub_start(struct stub *st, struct proa_loop *loop)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sin);

	memset(st, 0, sizeof(*st));
	st->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(st->fd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(st->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(st->fd, (struct sockaddr *)&sin, &sl), 0);
	st->port = ntohs(sin.sin_port);
	snprintf(st->servers, sizeof(st->servers), "127.0.0.1:%u",
		 (unsigned)st->port);
	assert_res(proa_fd_watch_start(&st->w, loop, st->fd,
				       PROA_WATCH_READABLE, stub_cb, st),
		   0);
}

static void stub_stop(struct stub *st)
{
	proa_fd_watch_close(st->w);
	close(st->fd);
}

/* ---- helpers ------------------------------------------------------------- */

struct fix {
	struct proa_loop *loop;
	struct stub st;
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	struct proa_dns_options o = {
	    .resolver = PROA_RESOLVER_CARES, .timeout_ms = 2000, .tries = 1};

	proa_test_fds_setup(state);
	f->loop = proa_test_loop_new();
	stub_start(&f->st, f->loop);
	o.servers = f->st.servers;
	assert_res(proa_dns_configure(f->loop, &o), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	stub_stop(&f->st);
	/* Watches end asynchronously: the loop runs until it holds nothing,
	 * so a lookup or socket left behind would hang here (ctest's
	 * timeout) or fail the close. */
	assert_res(proa_loop_run(f->loop, PROA_RUN_DEFAULT), 0);
	proa_test_loop_close(f->loop);
	free(f);
	return proa_test_fds_check(state);
}

/* Run until the stub has no watch-driven work left, then the lookup. */
static int lookup(struct fix *f, const char *host, const char *service,
		  int family, struct addrinfo **out)
{
	struct addrinfo hints = {.ai_family = family,
				 .ai_socktype = SOCK_STREAM};
	struct proa_future fut;
	void *value = NULL;
	int res;

	proa_future_init(&fut, f->loop);
	assert_res(proa_getaddrinfo(f->loop, host, service, &hints, &fut), 0);
	PROA_TEST_DRIVE_NS(f->loop, proa_future_is_done(&fut), 10000000000ull);
	res = proa_future_result(&fut, &value);
	assert_res(proa_future_fini(&fut), 0);
	*out = value;
	if (res < 0)
		assert_null(value);
	return res;
}

static bool has_addr(const struct addrinfo *ai, int family, const char *addr,
		     uint16_t port)
{
	uint8_t want[16];

	assert_int_equal(inet_pton(family, addr, want), 1);
	for (; ai; ai = ai->ai_next) {
		if (ai->ai_family != family)
			continue;
		assert_int_equal(ai->ai_socktype, SOCK_STREAM);
		if (family == AF_INET) {
			const struct sockaddr_in *s = (void *)ai->ai_addr;

			if (!memcmp(&s->sin_addr, want, 4) &&
			    s->sin_port == htons(port))
				return true;
		} else {
			const struct sockaddr_in6 *s = (void *)ai->ai_addr;

			if (!memcmp(&s->sin6_addr, want, 16) &&
			    s->sin6_port == htons(port))
				return true;
		}
	}
	return false;
}

/* ---- cases --------------------------------------------------------------- */

static void test_dns_cares_answers_a_and_aaaa(void **state)
{
	struct fix *f = *state;
	struct addrinfo *ai;

	assert_int_equal(proa_dns_resolver(f->loop), PROA_RESOLVER_CARES);
	assert_res(lookup(f, "a.test", "80", AF_UNSPEC, &ai), 0);
	assert_true(has_addr(ai, AF_INET, "192.0.2.1", 80));
	assert_true(has_addr(ai, AF_INET6, "2001:db8::1", 80));
	proa_freeaddrinfo(ai);
	assert_res(lookup(f, "A.Test", "443", AF_INET, &ai), 0);
	assert_true(has_addr(ai, AF_INET, "192.0.2.1", 443));
	assert_null(ai->ai_next);
	proa_freeaddrinfo(ai);
	assert_true(f->st.queries >= 3);
}

static void test_dns_cares_nxdomain_and_nodata(void **state)
{
	struct fix *f = *state;
	struct addrinfo *ai;

	assert_res(lookup(f, "nope.test", "80", AF_UNSPEC, &ai), PROA_ENONAME);
	assert_res(lookup(f, "v4.test", "80", AF_INET6, &ai), PROA_ENONAME);
	assert_res(lookup(f, "v4.test", "80", AF_INET, &ai), 0);
	assert_true(has_addr(ai, AF_INET, "192.0.2.4", 80));
	proa_freeaddrinfo(ai);
	/* Numeric hosts never reach the stub. */
	f->st.queries = 0;
	assert_res(lookup(f, "192.0.2.9", "7", AF_UNSPEC, &ai), 0);
	assert_true(has_addr(ai, AF_INET, "192.0.2.9", 7));
	proa_freeaddrinfo(ai);
	assert_int_equal(f->st.queries, 0);
	assert_res(lookup(f, "a.test", "80", 12345, &ai), -EAFNOSUPPORT);
}

static void test_dns_cares_timeout_is_eagain(void **state)
{
	struct fix *f = *state;
	struct proa_dns_options o = {.resolver = PROA_RESOLVER_CARES,
				     .servers = f->st.servers,
				     .timeout_ms = 100,
				     .tries = 1};
	struct addrinfo *ai;
	uint64_t t0 = proa_test_now_ns();

	assert_res(proa_dns_configure(f->loop, &o), 0);
	assert_res(lookup(f, "silent.test", "80", AF_INET, &ai), -EAGAIN);
	assert_true(f->st.silent >= 1);
	/* c-ares's timer fired: well under the default 2 s */
	assert_true(proa_test_now_ns() - t0 < 1500000000ull);
}

/* A lookup of silent.test, started and at the stub, unanswered. */
static void silent_lookup(struct fix *f, struct proa_future *fut,
			  const char *service)
{
	proa_future_init(fut, f->loop);
	assert_res(proa_getaddrinfo(f->loop, "silent.test", service, NULL, fut),
		   0);
	PROA_TEST_DRIVE_NS(f->loop, f->st.silent >= 1, 5000000000ull);
	assert_false(proa_future_is_done(fut));
}

static void test_dns_cares_cancel_mid_query(void **state)
{
	struct fix *f = *state;
	struct proa_future fut;
	uint64_t t0;

	silent_lookup(f, &fut, "80");
	t0 = proa_test_now_ns();
	assert_res(proa_future_cancel(&fut), 0);
	/* Resolved at once, not at the 2 s timeout. */
	assert_true(proa_future_is_done(&fut));
	assert_res(proa_future_result(&fut, NULL), -ECANCELED);
	assert_res(proa_future_fini(&fut), 0);
	/* c-ares's query ends too: its socket closes, the timer goes, and
	 * the loop is left with the stub alone. */
	stub_stop(&f->st);
	assert_res(proa_loop_run(f->loop, PROA_RUN_DEFAULT), 0);
	assert_true(proa_test_now_ns() - t0 < 1000000000ull);
	stub_start(&f->st, f->loop); /* for the teardown */
}

/* proa_loop_cancel_all(), as loop.h says to wind a loop down: a c-ares
 * lookup waiting on a server that does not answer ends with -ECANCELED
 * and the run returns.  It waits on a watch and a timer, not an op, and
 * cancel_all disarms the timer: without the DNS layer's part the lookup
 * never ended and the run never returned. */
static void test_dns_cancel_all_ends_cares_lookups(void **state)
{
	struct fix *f = *state;
	struct proa_future fut;
	uint64_t t0;

	silent_lookup(f, &fut, "80");
	stub_stop(&f->st);
	t0 = proa_test_now_ns();
	assert_true(proa_loop_cancel_all(f->loop) >= 1);
	PROA_TEST_DRIVE_NS(f->loop, proa_future_is_done(&fut), 5000000000ull);
	assert_res(proa_future_result(&fut, NULL), -ECANCELED);
	assert_res(proa_future_fini(&fut), 0);
	assert_res(proa_loop_run(f->loop, PROA_RUN_DEFAULT), 0);
	assert_true(proa_test_now_ns() - t0 < 1000000000ull);
	stub_start(&f->st, f->loop); /* for the teardown */
}

static void test_dns_loop_close_waits_for_query_in_flight(void **state)
{
	struct fix *f = *state;
	struct proa_future fut;

	silent_lookup(f, &fut, NULL);
	stub_stop(&f->st);
	/* The lookup holds the loop open, like any operation... */
	assert_res(proa_loop_close(f->loop), -EBUSY);
	/* ... and a second configure cannot pull the channel away. */
	assert_res(proa_dns_configure(f->loop, NULL), -EBUSY);
	assert_res(proa_future_cancel(&fut), 0);
	assert_res(proa_loop_run(f->loop, PROA_RUN_DEFAULT), 0);
	assert_res(proa_future_result(&fut, NULL), -ECANCELED);
	assert_res(proa_future_fini(&fut), 0);
	assert_res(proa_loop_close(f->loop), 0);
	assert_res(proa_loop_free(f->loop), 0);
	f->loop = proa_test_loop_new();
	stub_start(&f->st, f->loop); /* for the teardown */
}

#define MANY 64

static void test_dns_cares_many_lookups_hold_no_thread(void **state)
{
	struct fix *f = *state;
	struct proa_future *futs = calloc(MANY, sizeof(*futs));
	int threads = proa_test_threads();
	unsigned done = 0;
	void *value;
	int i;

	assert_non_null(futs);
	for (i = 0; i < MANY; i++) {
		proa_future_init(&futs[i], f->loop);
		assert_res(proa_getaddrinfo(f->loop,
					    i % 2 ? "a.test" : "silent.test",
					    "80", NULL, &futs[i]),
			   0);
	}
	PROA_TEST_DRIVE_NS(f->loop, f->st.silent >= MANY / 2, 5000000000ull);
	/* Half answered, half waiting at the stub: no thread for any. */
	assert_int_equal(proa_test_threads(), threads);
	for (i = 0; i < MANY; i++) {
		if (i % 2 == 0) {
			assert_res(proa_future_cancel(&futs[i]), 0);
			continue;
		}
		PROA_TEST_DRIVE_NS(f->loop, proa_future_is_done(&futs[i]),
				   5000000000ull);
		assert_res(proa_future_result(&futs[i], &value), 0);
		proa_freeaddrinfo(value);
		done++;
	}
	assert_int_equal(done, MANY / 2);
	for (i = 0; i < MANY; i++)
		assert_res(proa_future_fini(&futs[i]), 0);
	free(futs);
}

static void test_dns_pool_path_forced(void **state)
{
	struct fix *f = *state;
	struct proa_dns_options o = {.resolver = PROA_RESOLVER_POOL};
	struct addrinfo *ai;

	assert_res(proa_dns_configure(f->loop, &o), 0);
	assert_int_equal(proa_dns_resolver(f->loop), PROA_RESOLVER_POOL);
	f->st.queries = 0;
	assert_res(lookup(f, "192.0.2.9", "7", AF_INET, &ai), 0);
	assert_true(has_addr(ai, AF_INET, "192.0.2.9", 7));
	proa_freeaddrinfo(ai);
	/* localhost names go to the pool on either path */
	assert_res(lookup(f, "localhost", "80", AF_INET, &ai), 0);
	assert_true(has_addr(ai, AF_INET, "127.0.0.1", 80));
	proa_freeaddrinfo(ai);
	assert_int_equal(f->st.queries, 0);

	/* The environment, for loops left on AUTO. */
	assert_res(proa_dns_configure(f->loop, NULL), 0);
	proa_test_setenv("PROA_RESOLVER", "pool");
	assert_int_equal(proa_dns_resolver(f->loop), PROA_RESOLVER_POOL);
	proa_test_setenv("PROA_RESOLVER", "cares");
	assert_int_equal(proa_dns_resolver(f->loop), PROA_RESOLVER_CARES);
	proa_test_unsetenv("PROA_RESOLVER");
}

static void test_dns_getnameinfo_on_pool(void **state)
{
	struct fix *f = *state;
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_port = htons(8080)};
	struct proa_nameinfo *ni = NULL;
	struct proa_future fut;

	sin.sin_addr.s_addr = htonl(0xc0000207);
	proa_future_init(&fut, f->loop);
	assert_res(proa_getnameinfo(f->loop, (struct sockaddr *)&sin,
				    sizeof(sin),
				    NI_NUMERICHOST | NI_NUMERICSERV, &fut),
		   0);
	assert_res(proa_loop_run_until_complete(f->loop, &fut), 0);
	assert_res(proa_future_result(&fut, (void **)&ni), 0);
	assert_string_equal(ni->host, "192.0.2.7");
	assert_string_equal(ni->serv, "8080");
	free(ni);
	assert_res(proa_future_fini(&fut), 0);
	proa_future_init(&fut, f->loop);
	assert_res(proa_getnameinfo(f->loop, NULL, 0, 0, &fut), -EINVAL);
	assert_res(
	    proa_getnameinfo(f->loop, (struct sockaddr *)&sin, 4096, 0, &fut),
	    -EINVAL);
	assert_res(proa_future_fini(&fut), 0);
}

static void test_dns_configure_bad_input(void **state)
{
	struct fix *f = *state;
	struct proa_dns_options o = {.servers = "not a server list["};

	assert_res(proa_dns_configure(f->loop, &o), -EINVAL);
	o.servers = NULL;
	o.reserved[1] = 1;
	assert_res(proa_dns_configure(f->loop, &o), -EINVAL);
	o.reserved[1] = 0;
	o.resolver = (enum proa_resolver)7;
	assert_res(proa_dns_configure(f->loop, &o), -EINVAL);
	assert_res(proa_dns_configure(NULL, NULL), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_dns_cares_answers_a_and_aaaa,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dns_cares_nxdomain_and_nodata,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dns_cares_timeout_is_eagain,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dns_cares_cancel_mid_query,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_dns_cancel_all_ends_cares_lookups, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_dns_loop_close_waits_for_query_in_flight, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_dns_cares_many_lookups_hold_no_thread, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dns_pool_path_forced, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_dns_getnameinfo_on_pool, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_dns_configure_bad_input, setup,
					    teardown),
	};

	return cmocka_run_group_tests_name("dns.resolve", tests, NULL, NULL);
}
