/* SPDX-License-Identifier: MIT */
/*
 * tests/kernel/net/test_tcp_echo.c - TCP data arrives whole: 64 MiB
 * echoed byte-exact through a 4 KiB send buffer, 1,000 concurrent
 * connections each echoing its own message, the single-shot receive path
 * without multishot or buffer rings, and 8 MiB through a proxy (one
 * connection's bytes written to another).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "tcp_support.h"

/* 1,000 connections hold 2,000 descriptors, and the loop some more. */
#define THOUSAND_FDS 2100

static bool nofile_ok;
static char nofile_why[256];

/* 64 MiB through a 4 KiB SO_SNDBUF both ways, echoed, byte-exact, with
 * flow control on the echo side. */
static void test_echo_64mib(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = P_ECHO | P_FLOW}, cf = {.flags = P_VERIFY};
	struct proa_server_options so = {.transport.sndbuf = 4096};
	struct proa_connect_options co = {.transport.sndbuf = 4096};
	struct proa_server *s = listen_local(loop, &so, &sf);
	struct peer *c = connect_local(loop, proa_server_port(s), &co, &cf);
	struct pump pu = {.pe = c, .total = 64u << 20, .piece = 65536};

	(void)state;
	while (c->rx < pu.total) {
		pump_more(&pu);
		assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
		assert_false(c->lost);
	}
	assert_int_equal(c->rx, pu.total);
	assert_int_equal(c->bad, 0);
	assert_true(c->pauses > 0 || sf.peers->pauses > 0);
	assert_res(proa_transport_close(c->t), 0);
	DRIVE(loop, c->lost && sf.peers->lost);
	assert_res(c->err, 0);
	assert_res(sf.peers->err, 0);
	assert_int_equal(sf.peers->rx, pu.total);
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

static unsigned futures_done(const struct proa_future *fut, unsigned n)
{
	unsigned i, done = 0;

	for (i = 0; i < n; i++)
		done += proa_future_is_done(&fut[i]);
	return done;
}

/* Peers of @f that received at least @len bytes. */
static unsigned farm_got(const struct farm *f, uint64_t len)
{
	const struct peer *pe;
	unsigned n = 0;

	for (pe = f->peers; pe; pe = pe->next)
		n += pe->rx >= len;
	return n;
}

/* 1,000 concurrent connections, each echoing its own message.  Every wait
 * is bounded in time: short of descriptors (RLIMIT_NOFILE, see main()),
 * accepts fail and connections wait in the backlog, and the test must
 * fail, not hang. */
static void test_thousand(void **state)
{
	struct proa_loop *loop;
	struct farm sf = {.flags = P_ECHO}, cf = {.flags = 0};
	struct proa_server *s;
	struct proa_future fut[1000];
	struct proa_server_stats st;
	struct peer *pe;
	unsigned i;
	char msg[32];

	(void)state;
	if (!nofile_ok)
		fail_msg("%s", nofile_why);
	loop = proa_test_loop_new();
	s = listen_local(loop, NULL, &sf);
	for (i = 0; i < 1000; i++) {
		proa_future_init(&fut[i], loop);
		assert_res(proa_tcp_connect(loop, "127.0.0.1",
					    proa_server_port(s), NULL,
					    farm_make, &cf, &fut[i]),
			   0);
	}
	DRIVE_NS(loop, futures_done(fut, 1000) == 1000);
	for (i = 0; i < 1000; i++) {
		assert_res(proa_future_result(&fut[i], NULL), 0);
		assert_res(proa_future_fini(&fut[i]), 0);
	}
	assert_int_equal(cf.made, 1000);
	for (pe = cf.peers; pe; pe = pe->next) {
		snprintf(msg, sizeof(msg), "hello %06d", pe->fd);
		assert_res(proa_transport_write(pe->t, msg, strlen(msg)), 0);
	}
	DRIVE_NS(loop, farm_got(&cf, 12) == 1000);
	assert_res(proa_server_stats(s, &st), 0);
	assert_int_equal(st.accepted, 1000);
	assert_int_equal(st.active, 1000);
	for (pe = cf.peers; pe; pe = pe->next)
		assert_res(proa_transport_close(pe->t), 0);
	DRIVE_NS(loop, farm_lost(&cf) == 1000 && farm_lost(&sf) == 1000);
	for (pe = sf.peers; pe; pe = pe->next)
		assert_res(pe->err, 0);
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

/* ---- a proxy: bytes received on one connection written to another ------ */

struct half {
	struct proa_protocol p;
	struct proa_transport *t;
	struct half *other; /* where what arrives goes */
	bool lost;
	uint64_t fwd;
	struct proa_future up; /* the front's connect to the backend */
	uint16_t backend;
	struct half *back; /* the front's backend half (its own memory) */
};

static void h_made(struct proa_protocol *p, struct proa_transport *t)
{
	proa_container_of(p, struct half, p)->t = t;
}

static void h_data(struct proa_protocol *p, const void *data, size_t len)
{
	struct half *h = proa_container_of(p, struct half, p);

	h->fwd += len;
	/* The ring buffer is lent to the other connection's send. */
	assert_res(proa_transport_write(h->other->t, data, len), 0);
}

static void h_lost(struct proa_protocol *p, int err)
{
	struct half *h = proa_container_of(p, struct half, p);

	(void)err;
	h->lost = true;
	if (h->other && h->other->t && !h->other->lost)
		proa_transport_close(h->other->t);
}

static const struct proa_protocol_ops half_ops = {
    .connection_made = h_made,
    .data_received = h_data,
    .connection_lost = h_lost,
};

static struct proa_protocol *back_make(void *arg, struct proa_transport *t)
{
	(void)t;
	return &((struct half *)arg)->p;
}

/* The front end reads nothing until its backend is connected. */
static void front_made(struct proa_protocol *p, struct proa_transport *t)
{
	struct half *h = proa_container_of(p, struct half, p);

	h->t = t;
	assert_res(proa_transport_pause_reading(t), 0);
	proa_future_init(&h->up, proa_transport_loop(t));
	assert_res(proa_tcp_connect(proa_transport_loop(t), "127.0.0.1",
				    h->backend, NULL, back_make, h->back,
				    &h->up),
		   0);
}

static const struct proa_protocol_ops front_ops = {
    .connection_made = front_made,
    .data_received = h_data,
    .connection_lost = h_lost,
};

static struct half *the_front;

static struct proa_protocol *front_make(void *arg, struct proa_transport *t)
{
	struct half *f = calloc(1, sizeof(*f)), *b = calloc(1, sizeof(*b));

	(void)t;
	assert_non_null(f);
	assert_non_null(b);
	f->p.ops = &front_ops;
	b->p.ops = &half_ops;
	f->backend = *(uint16_t *)arg;
	f->back = b;
	f->other = b;
	b->other = f;
	the_front = f;
	return &f->p;
}

/* client -> proxy -> echo server -> proxy -> client, 8 MiB byte-exact:
 * the proxy forwards from ring buffers without copying. */
static void test_proxy(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm ef = {.flags = P_ECHO}, cf = {.flags = P_VERIFY};
	struct proa_server *echo = listen_local(loop, NULL, &ef);
	uint16_t eport = proa_server_port(echo);
	struct sockaddr_in a = {.sin_family = AF_INET};
	struct proa_server *proxy = NULL;
	struct pump pu = {.total = 8u << 20, .piece = 65536};
	struct peer *c;
	struct half *f;

	(void)state;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_res(proa_tcp_listen_addr(&proxy, loop, (struct sockaddr *)&a,
					sizeof(a), NULL, front_make, &eport),
		   0);
	c = connect_local(loop, proa_server_port(proxy), NULL, &cf);
	DRIVE(loop, the_front && proa_future_is_done(&the_front->up));
	f = the_front;
	assert_res(proa_future_result(&f->up, NULL), 0);
	assert_res(proa_future_fini(&f->up), 0);
	assert_res(proa_transport_resume_reading(f->t), 0);
	pu.pe = c;
	while (c->rx < pu.total) {
		pump_more(&pu);
		assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
		assert_false(c->lost);
	}
	assert_int_equal(c->bad, 0);
	assert_int_equal(f->fwd, pu.total);
	assert_int_equal(f->back->fwd, pu.total);
	/* forwarded from ring buffers, not copied */
	assert_true(proa__netloop_peek(loop)->lent > 0);
	assert_res(proa_transport_close(c->t), 0);
	DRIVE(loop, c->lost && f->lost && f->back->lost && ef.peers->lost);
	close_server(loop, proxy);
	close_server(loop, echo);
	proa_test_loop_close(loop);
	free(f->back);
	free(f);
	the_front = NULL;
	farm_free(&ef);
	farm_free(&cf);
}

/* The single-shot receive path, without multishot or buffer rings. */
static void test_echo_without_features(void **state)
{
	static const uint64_t hide[] = {
	    1ull << PROA_FEAT_RECV_MULTISHOT,
	    (1ull << PROA_FEAT_BUF_RING) | (1ull << PROA_FEAT_RECV_MULTISHOT),
	    1ull << PROA_FEAT_ACCEPT_MULTISHOT,
	};
	unsigned k;

	(void)state;
	for (k = 0; k < sizeof(hide) / sizeof(hide[0]); k++) {
		struct proa_loop *loop;
		struct farm sf = {.flags = P_ECHO | P_FLOW},
			    cf = {.flags = P_VERIFY};
		struct proa_server *s;
		struct peer *c;
		struct pump pu = {.total = 4u << 20, .piece = 65536};

		proa__ring_faults.hide_features = hide[k];
		loop = proa_test_loop_new();
		proa__ring_faults.hide_features = 0;
		s = listen_local(loop, NULL, &sf);
		c = connect_local(loop, proa_server_port(s), NULL, &cf);
		pu.pe = c;
		while (c->rx < pu.total) {
			pump_more(&pu);
			assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
		}
		assert_int_equal(c->bad, 0);
		assert_res(proa_transport_close(c->t), 0);
		DRIVE(loop, c->lost && sf.peers->lost);
		close_server(loop, s);
		proa_test_loop_close(loop);
		farm_free(&sf);
		farm_free(&cf);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_echo_64mib, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_thousand, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_echo_without_features, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_proxy, setup, teardown_check),
	};

	proa_test_require_uring();
	/* test_thousand fails at once, saying why, if the descriptors it
	 * needs cannot be had (it would otherwise wait on a backlog that
	 * accept cannot drain). */
	nofile_ok = proa_test_raise_nofile(THOUSAND_FDS, nofile_why,
					   sizeof(nofile_why));
	if (!nofile_ok)
		fprintf(stderr, "test_tcp_echo: %s\n", nofile_why);
	proa_test_filter_from_env();
	return cmocka_run_group_tests_name("net.tcp_echo", tests, NULL, NULL);
}
