/* SPDX-License-Identifier: MIT */
/*
 * tests/kernel/net/test_tls_gather.c - a TLS transport gathers the small
 * writes of an iteration into full records: 2,000 writes of 10 bytes in
 * one callback reach the peer as at most 3 application-data records (one
 * per write before), byte-exact and in order, and count in the write
 * buffer size meanwhile; writes past the socket's high mark still give
 * the protocol one pause_writing and then one resume_writing; close()
 * sends what was gathered before close_notify; abort drops it.  (The race
 * that sealing over the mark at once closes - the socket's buffer
 * draining between a protocol's look at write_buffer_size() and the
 * seal, so that no pause, and no resume, ever came - needs completions in
 * a given order; proa-httpd's soak, tests/integration/httpd/soak.sh, hung
 * its TLS pipeliners on it.)
 *
 * The peer is OpenSSL itself on a plain socket, driven in this thread
 * between non-blocking loop iterations, counting the records it receives
 * with a message callback.  Certificates: $PROA_TEST_CERTS.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "proa_test.h"

#define STEPS 2000000u
#define setup proa_test_fds_setup
#define teardown_check proa_test_fds_check

/* ---- the server side: writes on command ------------------------------- */

struct srv {
	struct proa_protocol p;
	struct proa_transport *t;
	unsigned pieces; /* writes of @piece bytes per command byte */
	size_t piece;
	size_t high;	  /* the write high mark to set, or 0 */
	size_t wbs_first; /* write_buffer_size() after the first */
	bool close_after, abort_after;
	unsigned pauses, resumes;
	bool made, lost;
	int err;
};

static void s_made(struct proa_protocol *p, struct proa_transport *t)
{
	struct srv *s = proa_container_of(p, struct srv, p);

	s->made = true;
	s->t = t;
	if (s->high)
		assert_res(proa_transport_set_write_buffer_limits(t, s->high,
								  s->high / 4),
			   0);
}

/* Any byte from the peer: the planned writes, all in this callback. */
static void s_data(struct proa_protocol *p, const void *data, size_t len)
{
	struct srv *s = proa_container_of(p, struct srv, p);
	uint8_t buf[4096];
	uint64_t off = 0;
	unsigned i;
	size_t k;

	(void)data;
	(void)len;
	assert_true(s->piece <= sizeof(buf));
	for (i = 0; i < s->pieces; i++) {
		for (k = 0; k < s->piece; k++)
			buf[k] = proa_test_pattern(off + k);
		assert_res(proa_transport_write(s->t, buf, s->piece), 0);
		if (i == 0)
			s->wbs_first = proa_transport_write_buffer_size(s->t);
		off += s->piece;
	}
	if (s->close_after)
		assert_res(proa_transport_close(s->t), 0);
	if (s->abort_after)
		assert_res(proa_transport_abort(s->t), 0);
}

static void s_pause(struct proa_protocol *p)
{
	struct srv *s = proa_container_of(p, struct srv, p);

	assert_int_equal(s->pauses, s->resumes); /* they alternate */
	s->pauses++;
}

static void s_resume(struct proa_protocol *p)
{
	struct srv *s = proa_container_of(p, struct srv, p);

	assert_int_equal(s->pauses, s->resumes + 1);
	s->resumes++;
}

static void s_lost(struct proa_protocol *p, int err)
{
	struct srv *s = proa_container_of(p, struct srv, p);

	s->lost = true;
	s->err = err;
	s->t = NULL;
}

static const struct proa_protocol_ops srv_ops = {
    .connection_made = s_made,
    .data_received = s_data,
    .connection_lost = s_lost,
    .pause_writing = s_pause,
    .resume_writing = s_resume,
};

static struct proa_protocol *srv_make(void *arg, struct proa_transport *t)
{
	(void)t;
	return &((struct srv *)arg)->p;
}

/* ---- the peer: OpenSSL on a plain non-blocking socket ------------------- */

struct peer {
	SSL_CTX *ctx;
	SSL *ssl;
	int fd;
	unsigned app_records; /* application-data records received */
};

static void msg_cb(int write_p, int version, int content_type, const void *buf,
		   size_t len, SSL *ssl, void *arg)
{
	struct peer *pe = arg;

	(void)version;
	(void)ssl;
	/* TLS 1.3 hides the type: the inner one is reported on its own. */
	if (!write_p && content_type == SSL3_RT_INNER_CONTENT_TYPE &&
	    len == 1 && *(const uint8_t *)buf == SSL3_RT_APPLICATION_DATA)
		pe->app_records++;
}

static void peer_connect(struct peer *pe, struct proa_loop *loop, uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	unsigned i;
	int r = 0, e = 0;

	memset(pe, 0, sizeof(*pe));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	pe->ctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(pe->ctx);
	/* 1.3: every record's true type reaches the callback. */
	assert_int_equal(SSL_CTX_set_min_proto_version(pe->ctx, TLS1_3_VERSION),
			 1);
	SSL_CTX_set_verify(pe->ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_msg_callback(pe->ctx, msg_cb);
	SSL_CTX_set_msg_callback_arg(pe->ctx, pe);
	pe->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(pe->fd >= 0);
	assert_int_equal(connect(pe->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(fcntl(pe->fd, F_SETFL, O_NONBLOCK), 0);
	pe->ssl = SSL_new(pe->ctx);
	assert_non_null(pe->ssl);
	assert_int_equal(SSL_set_fd(pe->ssl, pe->fd), 1);
	for (i = 0; i < STEPS; i++) {
		assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
		r = SSL_connect(pe->ssl);
		if (r == 1)
			break;
		e = SSL_get_error(pe->ssl, r);
		assert_true(e == SSL_ERROR_WANT_READ ||
			    e == SSL_ERROR_WANT_WRITE);
	}
	assert_int_equal(r, 1);
}

static void peer_send(struct peer *pe, struct proa_loop *loop)
{
	unsigned i;
	int r = 0;

	for (i = 0; i < STEPS; i++) {
		r = SSL_write(pe->ssl, "g", 1);
		if (r == 1)
			break;
		assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	}
	assert_int_equal(r, 1);
}

/* Read until @want bytes came, checking the pattern, or the stream ended:
 * the bytes read; *@clean: it ended with close_notify. */
static uint64_t peer_read(struct peer *pe, struct proa_loop *loop,
			  uint64_t want, bool to_end, bool *clean)
{
	uint8_t buf[16384];
	uint64_t got = 0;
	unsigned i;
	int r, e, k;

	*clean = false;
	for (i = 0; i < STEPS && (to_end || got < want); i++) {
		r = SSL_read(pe->ssl, buf, (int)sizeof(buf));
		if (r > 0) {
			for (k = 0; k < r; k++)
				assert_int_equal(buf[k],
						 proa_test_pattern(got + k));
			got += (uint64_t)r;
			continue;
		}
		e = SSL_get_error(pe->ssl, r);
		if (e == SSL_ERROR_ZERO_RETURN) {
			*clean = true;
			break;
		}
		if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_SSL)
			break; /* EOF without close_notify, or a reset */
		assert_int_equal(e, SSL_ERROR_WANT_READ);
		assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	}
	ERR_clear_error();
	return got;
}

static void peer_free(struct peer *pe)
{
	SSL_free(pe->ssl);
	SSL_CTX_free(pe->ctx);
	close(pe->fd);
}

/* ---- the cases ----------------------------------------------------------- */

static struct proa_tls_context *server_ctx(void)
{
	/* NOLINTNEXTLINE(concurrency-mt-unsafe): no thread sets it */
	const char *dir = getenv("PROA_TEST_CERTS");
	char crt[600], key[600], err[256];
	struct proa_tls_options o = {.cert_file = crt, .key_file = key};
	struct proa_tls_context *ctx = NULL;

	assert_non_null(dir);
	snprintf(crt, sizeof(crt), "%s/server.pem", dir);
	snprintf(key, sizeof(key), "%s/server.key", dir);
	assert_res(
	    proa_tls_context_new(&ctx, PROA_TLS_SERVER, &o, err, sizeof(err)),
	    0);
	return ctx;
}

struct rig {
	struct proa_loop *loop;
	struct proa_tls_context *ctx;
	struct proa_server *server;
	struct peer pe;
};

static void rig_up(struct rig *g, struct srv *s)
{
	struct proa_server_options so = {0};
	struct sockaddr_in a = {.sin_family = AF_INET};

	g->loop = proa_test_loop_new();
	g->ctx = server_ctx();
	so.tls = g->ctx;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->p.ops = &srv_ops;
	assert_res(proa_tcp_listen_addr(&g->server, g->loop,
					(struct sockaddr *)&a, sizeof(a), &so,
					srv_make, s),
		   0);
	peer_connect(&g->pe, g->loop, proa_server_port(g->server));
	PROA_TEST_DRIVE_NS(g->loop, s->made, 10ull * 1000000000);
}

static void rig_down(struct rig *g, struct srv *s)
{
	struct proa_future done;

	peer_free(&g->pe);
	PROA_TEST_DRIVE_NS(g->loop, s->lost, 10ull * 1000000000);
	proa_future_init(&done, g->loop);
	assert_res(proa_server_close(g->server, &done), 0);
	PROA_TEST_DRIVE_NS(g->loop, proa_future_is_done(&done),
			   10ull * 1000000000);
	assert_res(proa_future_fini(&done), 0);
	proa_test_loop_close(g->loop);
	proa_tls_context_free(g->ctx);
}

/* 2,000 writes of 10 bytes in one callback: at most 3 records. */
static void test_small_writes_become_full_records(void **state)
{
	struct srv s = {.pieces = 2000, .piece = 10};
	struct rig g;
	unsigned before;
	bool clean;

	(void)state;
	rig_up(&g, &s);
	before = g.pe.app_records;
	peer_send(&g.pe, g.loop);
	assert_int_equal(peer_read(&g.pe, g.loop, 20000, false, &clean), 20000);
	print_message("20000 bytes in %u records\n", g.pe.app_records - before);
	/* 16 KiB records: 2; one per write (2000) before gathering. */
	assert_true(g.pe.app_records - before <= 3);
	/* the gathered plaintext counted while it waited */
	assert_true(s.wbs_first >= 10);
	rig_down(&g, &s);
}

/* A high mark of 1 KiB and 200 writes of 100 bytes in one callback: the
 * protocol is paused once, then resumed once as the peer reads. */
static void test_over_the_high_mark_pauses_then_resumes(void **state)
{
	struct srv s = {.pieces = 200, .piece = 100, .high = 1024};
	struct rig g;
	bool clean;

	(void)state;
	rig_up(&g, &s);
	peer_send(&g.pe, g.loop);
	assert_int_equal(peer_read(&g.pe, g.loop, 20000, false, &clean), 20000);
	PROA_TEST_DRIVE_NS(g.loop, s.resumes == 1, 10ull * 1000000000);
	assert_int_equal(s.pauses, 1);
	assert_true(proa_transport_write_buffer_size(s.t) <= 1024 / 4);
	rig_down(&g, &s);
}

/* close() right after gathered writes: the bytes, then close_notify. */
static void test_close_sends_what_was_gathered(void **state)
{
	struct srv s = {.pieces = 30, .piece = 100, .close_after = true};
	struct rig g;
	bool clean;

	(void)state;
	rig_up(&g, &s);
	peer_send(&g.pe, g.loop);
	assert_int_equal(peer_read(&g.pe, g.loop, 0, true, &clean), 3000);
	assert_true(clean);
	PROA_TEST_DRIVE_NS(g.loop, s.lost, 10ull * 1000000000);
	assert_res(s.err, 0);
	rig_down(&g, &s);
}

/* abort() right after gathered writes: none of them leaves, no close_notify,
 * and the buffer is freed (ASan). */
static void test_abort_drops_what_was_gathered(void **state)
{
	struct srv s = {.pieces = 30, .piece = 100, .abort_after = true};
	struct rig g;
	bool clean;

	(void)state;
	rig_up(&g, &s);
	peer_send(&g.pe, g.loop);
	assert_int_equal(peer_read(&g.pe, g.loop, 0, true, &clean), 0);
	assert_false(clean);
	PROA_TEST_DRIVE_NS(g.loop, s.lost, 10ull * 1000000000);
	assert_res(s.err, -ECONNABORTED);
	rig_down(&g, &s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
		test_small_writes_become_full_records, setup, teardown_check),
	    cmocka_unit_test_setup_teardown(
		test_over_the_high_mark_pauses_then_resumes, setup,
		teardown_check),
	    cmocka_unit_test_setup_teardown(test_close_sends_what_was_gathered,
					    setup, teardown_check),
	    cmocka_unit_test_setup_teardown(test_abort_drops_what_was_gathered,
					    setup, teardown_check),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
