/* SPDX-License-Identifier: MIT */
/*
 * tests/kernel/net/test_tls.c - the TLS transport on loopback: proa client
 * and server echo 64 MiB byte-exact; a client refuses a wrong host name,
 * an unknown CA and an expired certificate, naming the reason; an empty
 * host name with verification on is refused; an abort without
 * close_notify is PROA_ETRUNCATED, a close is a clean end; a peer that
 * sends nothing is cut off by the handshake timeout and a garbage
 * ClientHello is closed, while the server goes on serving; write_ref
 * copies and releases once, never inside the call.
 *
 * Certificates come from scripts/make-test-certs.sh (the tls_certs
 * fixture), in $PROA_TEST_CERTS.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "proa_test.h"

#define MAX_ITER 20000000u
#define DRIVE(loop, expr) PROA_TEST_DRIVE(loop, expr, MAX_ITER)
#define setup proa_test_fds_setup
#define teardown_check proa_test_fds_check

static char certs[512];

static const char *cert(const char *name)
{
	static char path[8][600];
	static unsigned k;
	char *p = path[k++ % 8];

	snprintf(p, 600, "%s/%s", certs, name);
	return p;
}

/* ---- a protocol for both sides ------------------------------------------ */

struct side {
	struct proa_protocol p;
	struct proa_transport *t;
	bool echo, verify, made, lost, eof;
	bool keep; /* eof_received returns true: go on writing */
	int err;
	uint64_t rx, bad;
	char head[64]; /* the first bytes received */
};

static void s_made(struct proa_protocol *p, struct proa_transport *t)
{
	struct side *s = proa_container_of(p, struct side, p);

	s->made = true;
	s->t = t;
}

static void s_data(struct proa_protocol *p, const void *data, size_t len)
{
	struct side *s = proa_container_of(p, struct side, p);
	const uint8_t *b = data;
	size_t i;

	if (s->verify) {
		for (i = 0; i < len; i++)
			s->bad += b[i] != proa_test_pattern(s->rx + i);
	}
	for (i = 0; i < len && s->rx + i < sizeof(s->head); i++)
		s->head[s->rx + i] = (char)b[i];
	s->rx += len;
	if (s->echo)
		assert_res(proa_transport_write(s->t, data, len), 0);
}

static bool s_eof(struct proa_protocol *p)
{
	struct side *s = proa_container_of(p, struct side, p);

	s->eof = true;
	return s->keep;
}

static void s_lost(struct proa_protocol *p, int err)
{
	struct side *s = proa_container_of(p, struct side, p);

	s->lost = true;
	s->err = err;
	s->t = NULL;
}

static const struct proa_protocol_ops side_ops = {
    .connection_made = s_made,
    .data_received = s_data,
    .eof_received = s_eof,
    .connection_lost = s_lost,
};

/* The server's sides, one per connection, kept for the checks. */
struct farm {
	struct side sides[16];
	unsigned n;
	bool keep; /* each side's */
};

static struct proa_protocol *farm_make(void *arg, struct proa_transport *t)
{
	struct farm *f = arg;
	struct side *s = &f->sides[f->n++];

	(void)t;
	assert_true(f->n <= 16);
	memset(s, 0, sizeof(*s));
	s->p.ops = &side_ops;
	s->echo = true;
	s->keep = f->keep;
	return &s->p;
}

static struct proa_protocol *one_make(void *arg, struct proa_transport *t)
{
	(void)t;
	return &((struct side *)arg)->p;
}

static struct proa_tls_context *server_ctx(const char *crt, const char *key)
{
	struct proa_tls_options o = {.cert_file = cert(crt),
				     .key_file = cert(key)};
	struct proa_tls_context *ctx = NULL;
	char err[256];

	assert_res(
	    proa_tls_context_new(&ctx, PROA_TLS_SERVER, &o, err, sizeof(err)),
	    0);
	return ctx;
}

static struct proa_tls_context *client_ctx(bool with_ca)
{
	struct proa_tls_options o = {.ca_file =
					 with_ca ? cert("ca.pem") : NULL};
	struct proa_tls_context *ctx = NULL;
	char err[256];

	assert_res(
	    proa_tls_context_new(&ctx, PROA_TLS_CLIENT, &o, err, sizeof(err)),
	    0);
	return ctx;
}

static struct proa_server *tls_listen(struct proa_loop *loop,
				      struct proa_tls_context *ctx,
				      struct farm *f, uint64_t hs_ns)
{
	struct proa_server_options so = {.tls = ctx,
					 .tls_handshake_timeout_ns = hs_ns};
	struct sockaddr_in a = {.sin_family = AF_INET};
	struct proa_server *s = NULL;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_res(proa_tcp_listen_addr(&s, loop, (struct sockaddr *)&a,
					sizeof(a), &so, farm_make, f),
		   0);
	return s;
}

/* Connect with TLS; the future's result (0 or the error). */
static int tls_connect(struct proa_loop *loop, uint16_t port,
		       struct proa_tls_context *ctx, const char *name,
		       struct side *c,
		       char *err, /* NOLINT(readability-non-const-parameter) */
		       size_t errlen)
{
	struct proa_connect_options co = {.tls = ctx,
					  .server_hostname = name,
					  .tls_error = err,
					  .tls_error_len = errlen};
	struct proa_future fut;
	void *v = NULL;
	int res;

	memset(c, 0, sizeof(*c));
	c->p.ops = &side_ops;
	c->verify = true;
	proa_future_init(&fut, loop);
	res = proa_tcp_connect(loop, "127.0.0.1", port, &co, one_make, c, &fut);
	if (res < 0) {
		assert_res(proa_future_fini(&fut), 0);
		return res;
	}
	DRIVE(loop, proa_future_is_done(&fut));
	res = proa_future_result(&fut, &v);
	assert_res(proa_future_fini(&fut), 0);
	if (res == 0) {
		assert_true(c->made);
		assert_ptr_equal(v, c->t);
	} else {
		assert_false(c->made);
	}
	return res;
}

static void close_server(struct proa_loop *loop, struct proa_server *s)
{
	struct proa_future done;

	proa_future_init(&done, loop);
	assert_res(proa_server_close(s, &done), 0);
	DRIVE(loop, proa_future_is_done(&done));
	assert_res(proa_future_fini(&done), 0);
}

/* A peer that asks for KeyUpdates without end and reads nothing: each is
 * answered with a record of the transport's own, no write of the user's.
 * The server's buffer stays bounded (its high mark, 16 KiB of its own
 * records, one receive's worth): reading from that socket stops. */
static void test_tls_key_update_flood_is_bounded(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_tls_context *sctx = server_ctx("server.pem", "server.key");
	struct proa_tls_context *cctx = client_ctx(true);
	struct proa_server_options so = {.tls = sctx,
					 .transport = {.sndbuf = 4096}};
	struct proa_connect_options co = {.tls = cctx,
					  .server_hostname = "localhost",
					  .transport = {.rcvbuf = 4096}};
	struct sockaddr_in a = {.sin_family = AF_INET};
	struct proa_server *s = NULL;
	struct farm f = {.n = 0};
	struct proa_future fut;
	size_t most = 0, w;
	struct side c;
	unsigned i;

	(void)state;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_res(proa_tcp_listen_addr(&s, loop, (struct sockaddr *)&a,
					sizeof(a), &so, farm_make, &f),
		   0);
	memset(&c, 0, sizeof(c));
	c.p.ops = &side_ops;
	proa_future_init(&fut, loop);
	assert_res(proa_tcp_connect(loop, "127.0.0.1", proa_server_port(s), &co,
				    one_make, &c, &fut),
		   0);
	DRIVE(loop, proa_future_is_done(&fut) && f.n == 1);
	assert_res(proa_future_result(&fut, NULL), 0);
	assert_res(proa_future_fini(&fut), 0);
	assert_res(proa_transport_pause_reading(c.t), 0);
	/* 40,000 answers of about 28 bytes: 1.1 MB if all were taken. */
	for (i = 0; i < 40000; i++) {
		assert_res(proa_tls_key_update(c.t, true), 0);
		if (i % 64 == 0)
			assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
		w = proa_transport_write_buffer_size(f.sides[0].t);
		most = w > most ? w : most;
	}
	for (i = 0; i < 2000; i++) {
		assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
		w = proa_transport_write_buffer_size(f.sides[0].t);
		most = w > most ? w : most;
	}
	print_message("server's write buffer at most %zu bytes\n", most);
	assert_true(most < (size_t)320 * 1024);
	assert_false(f.sides[0].lost);
	/* The peer reads again: the server's answers drain, it reads the
	 * rest, and both end cleanly. */
	assert_res(proa_transport_resume_reading(c.t), 0);
	DRIVE(loop, proa_transport_write_buffer_size(f.sides[0].t) == 0 &&
			proa_transport_write_buffer_size(c.t) == 0);
	assert_res(proa_transport_close(c.t), 0);
	DRIVE(loop, c.lost && f.sides[0].lost);
	assert_res(c.err, 0);
	close_server(loop, s);
	proa_tls_context_free(sctx);
	proa_tls_context_free(cctx);
	proa_test_loop_close(loop);
}

/* 64 MiB through TLS both ways, byte-exact; close ends both cleanly. */
static void test_tls_echo(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_tls_context *sctx = server_ctx("server.pem", "server.key");
	struct proa_tls_context *cctx = client_ctx(true);
	struct farm f = {.n = 0};
	struct proa_server *s = tls_listen(loop, sctx, &f, 0);
	static uint8_t buf[65536];
	uint64_t sent = 0, total = 64u << 20;
	struct side c;
	char err[256] = "";
	size_t i;

	(void)state;
	assert_res(tls_connect(loop, proa_server_port(s), cctx, "localhost", &c,
			       err, sizeof(err)),
		   0);
	assert_string_equal(proa_tls_version(c.t), "TLSv1.3");
	assert_null(proa_tls_version(NULL));
	assert_false(proa_transport_can_write_eof(c.t));
	assert_res(proa_transport_write_eof(c.t), -EOPNOTSUPP);
	while (c.rx < total) {
		while (sent < total &&
		       proa_transport_write_buffer_size(c.t) < (1u << 20)) {
			for (i = 0; i < sizeof(buf); i++)
				buf[i] = proa_test_pattern(sent + i);
			assert_res(proa_transport_write(c.t, buf, sizeof(buf)),
				   0);
			sent += sizeof(buf);
		}
		assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
		assert_false(c.lost);
	}
	assert_int_equal(c.bad, 0);
	/* TLS 1.3 key updates, ours and the peer's (OpenSSL's rule: the
	 * answer to a KeyUpdate leaves with the next flush), then more data
	 * both ways under the new keys */
	assert_res(proa_tls_key_update(c.t, true), 0);
	assert_res(proa_tls_key_update(f.sides[0].t, false), 0);
	assert_res(proa_tls_key_update(NULL, false), -EINVAL);
	for (i = 0; i < sizeof(buf); i++)
		buf[i] = proa_test_pattern(sent + i);
	assert_res(proa_transport_write(c.t, buf, sizeof(buf)), 0);
	sent += sizeof(buf);
	DRIVE(loop, c.rx == sent);
	assert_int_equal(c.bad, 0);
	assert_false(c.lost);
	assert_res(proa_transport_close(c.t), 0);
	DRIVE(loop, c.lost && f.sides[0].lost);
	assert_res(c.err, 0);
	assert_res(f.sides[0].err, 0);
	assert_true(f.sides[0].eof); /* close_notify arrived first */
	close_server(loop, s);
	proa_test_loop_close(loop);
	proa_tls_context_free(sctx);
	proa_tls_context_free(cctx);
}

/* A client refuses a wrong name, an unknown CA and an expired
 * certificate, and says which; an empty name is refused before
 * anything starts.  The server serves the next client. */
static void test_tls_verify_errors(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_tls_context *good = server_ctx("server.pem", "server.key");
	struct proa_tls_context *old = server_ctx("expired.pem", "expired.key");
	struct proa_tls_context *cctx = client_ctx(true);
	struct proa_tls_context *sys = client_ctx(false);
	struct farm f = {.n = 0}, g = {.n = 0};
	struct proa_server *s = tls_listen(loop, good, &f, 0);
	struct proa_server *e = tls_listen(loop, old, &g, 0);
	uint16_t port = proa_server_port(s);
	struct side c;
	char err[256];

	(void)state;
	err[0] = '\0';
	assert_res(tls_connect(loop, port, cctx, "wrong.example", &c, err,
			       sizeof(err)),
		   PROA_ETLSVERIFY);
	print_message("wrong host: %s\n", err);
	assert_non_null(strstr(err, "hostname mismatch"));
	err[0] = '\0';
	assert_res(
	    tls_connect(loop, port, sys, "localhost", &c, err, sizeof(err)),
	    PROA_ETLSVERIFY);
	print_message("unknown CA: %s\n", err);
	assert_non_null(strstr(err, "local issuer"));
	err[0] = '\0';
	assert_res(tls_connect(loop, proa_server_port(e), cctx, "localhost", &c,
			       err, sizeof(err)),
		   PROA_ETLSVERIFY);
	print_message("expired: %s\n", err);
	assert_non_null(strstr(err, "expired"));
	assert_res(tls_connect(loop, port, cctx, "", &c, err, sizeof(err)),
		   -EINVAL);
	/* nothing of the server's protocol ran for the refused ones */
	assert_int_equal(f.n, 0);
	assert_res(
	    tls_connect(loop, port, cctx, "localhost", &c, err, sizeof(err)),
	    0);
	assert_res(proa_transport_write(c.t, "hi", 2), 0);
	DRIVE(loop, f.n == 1 && f.sides[0].rx == 2);
	assert_res(proa_transport_close(c.t), 0);
	DRIVE(loop, c.lost && f.sides[0].lost);
	close_server(loop, s);
	close_server(loop, e);
	proa_test_loop_close(loop);
	proa_tls_context_free(good);
	proa_tls_context_free(old);
	proa_tls_context_free(cctx);
	proa_tls_context_free(sys);
}

/* A second connection to the same name resumes the first's session;
 * ALPN is what both offered. */
static void test_tls_resume_alpn(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_tls_options so = {.cert_file = cert("server.pem"),
				      .key_file = cert("server.key"),
				      .alpn = "h2,http/1.1"};
	struct proa_tls_options co = {.ca_file = cert("ca.pem"),
				      .alpn = "http/1.1"};
	struct proa_tls_context *sctx = NULL, *cctx = NULL;
	struct farm f = {.n = 0};
	struct proa_server *s;
	struct side c;
	char err[256];
	const char *p;
	size_t len;
	unsigned k;

	(void)state;
	assert_res(
	    proa_tls_context_new(&sctx, PROA_TLS_SERVER, &so, err, sizeof(err)),
	    0);
	assert_res(
	    proa_tls_context_new(&cctx, PROA_TLS_CLIENT, &co, err, sizeof(err)),
	    0);
	s = tls_listen(loop, sctx, &f, 0);
	for (k = 0; k < 2; k++) {
		assert_res(tls_connect(loop, proa_server_port(s), cctx,
				       "localhost", &c, err, sizeof(err)),
			   0);
		p = proa_tls_alpn(c.t, &len);
		assert_non_null(p);
		assert_int_equal(len, 8);
		assert_memory_equal(p, "http/1.1", 8);
		/* TLS 1.3 tickets come after the handshake: exchange data
		 * so that the first session is kept before it closes */
		assert_res(proa_transport_write(c.t, "ping", 4), 0);
		DRIVE(loop, c.rx == 4);
		assert_int_equal(proa_tls_session_reused(c.t), k == 1);
		assert_res(proa_transport_close(c.t), 0);
		DRIVE(loop, c.lost && f.sides[k].lost);
	}
	close_server(loop, s);
	proa_test_loop_close(loop);
	proa_tls_context_free(sctx);
	proa_tls_context_free(cctx);
}

/* The server aborts: no close_notify, the client sees PROA_ETRUNCATED,
 * not a clean end. */
static void test_tls_truncation(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_tls_context *sctx = server_ctx("server.pem", "server.key");
	struct proa_tls_context *cctx = client_ctx(true);
	struct farm f = {.n = 0};
	struct proa_server *s = tls_listen(loop, sctx, &f, 0);
	struct side c;
	char err[256];

	(void)state;
	assert_res(tls_connect(loop, proa_server_port(s), cctx, "localhost", &c,
			       err, sizeof(err)),
		   0);
	assert_res(proa_transport_write(c.t, "x", 1), 0);
	DRIVE(loop, f.n == 1 && f.sides[0].rx == 1);
	proa_transport_abort(f.sides[0].t);
	DRIVE(loop, c.lost && f.sides[0].lost);
	assert_res(c.err, PROA_ETRUNCATED);
	assert_false(c.eof);
	assert_res(f.sides[0].err, -ECONNABORTED);
	close_server(loop, s);
	proa_test_loop_close(loop);
	proa_tls_context_free(sctx);
	proa_tls_context_free(cctx);
}

static int raw_connect(uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons(port);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

/* Whether the server has closed @fd's connection (EOF or a reset). */
static bool closed_by_peer(int fd)
{
	char b[64];
	ssize_t n = recv(fd, b, sizeof(b), MSG_DONTWAIT | MSG_PEEK);

	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

/* ---- half-close: a raw OpenSSL client ------------------------------------
 */

/* Sends "ping", then its close_notify (and with @fin a FIN behind it),
 * and reads on until the server's close_notify. */
struct halfc {
	uint16_t port;
	int max_version; /* TLS1_2_VERSION or TLS1_3_VERSION */
	bool fin;
	size_t got;   /* after the echoed "ping" */
	uint64_t bad; /* bytes not the pattern */
	int end;      /* 0: the server's close_notify; else SSL's error */
};

static void *halfc_main(void *arg)
{
	struct halfc *h = arg;
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	struct timeval tv = {.tv_sec = 20};
	unsigned char buf[16384];
	size_t seen = 0;
	SSL *ssl;
	int fd, n;

	h->end = -1;
	SSL_CTX_set_max_proto_version(ctx, h->max_version);
	fd = raw_connect(h->port);
	/* A bound on every wait: a server that never answers fails the
	 * test instead of hanging it. */
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1 || SSL_write(ssl, "ping", 4) != 4)
		goto out;
	(void)SSL_shutdown(ssl); /* close_notify: 0, ours sent */
	if (h->fin)
		(void)shutdown(fd, SHUT_WR);
	for (;;) {
		n = SSL_read(ssl, buf, (int)sizeof(buf));
		if (n <= 0) {
			n = SSL_get_error(ssl, n);
			h->end = n == SSL_ERROR_ZERO_RETURN ? 0 : n;
			break;
		}
		for (int i = 0; i < n; i++, seen++) {
			if (seen >= 4)
				h->bad += buf[i] != proa_test_pattern(seen - 4);
		}
	}
	h->got = seen >= 4 ? seen - 4 : 0;
out:
	SSL_free(ssl);
	close(fd);
	SSL_CTX_free(ctx);
	return NULL;
}

/* The client's close_notify ends its data only.  On TLS 1.3 a protocol
 * whose eof_received returns true is HALF_PEER and writes on (200 KB
 * here, after the echo), and close() sends our close_notify; with the
 * client's FIN behind its close_notify too.  On TLS 1.2 the connection
 * closes at once, as RFC 5246 says, whatever eof_received returns. */
static void tls_half_close(int max_version, bool fin)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_tls_context *sctx = server_ctx("server.pem", "server.key");
	struct farm f = {.n = 0, .keep = true};
	struct proa_server *s = tls_listen(loop, sctx, &f, 0);
	struct halfc h = {.port = proa_server_port(s),
			  .max_version = max_version,
			  .fin = fin};
	const size_t len = 200000;
	struct side *sv;
	pthread_t th;

	assert_int_equal(pthread_create(&th, NULL, halfc_main, &h), 0);
	DRIVE(loop, f.n == 1 && f.sides[0].eof);
	sv = &f.sides[0];
	assert_int_equal(sv->rx, 4);
	if (max_version == TLS1_3_VERSION) {
		uint8_t *b = malloc(len);

		assert_non_null(b);
		assert_int_equal(proa_transport_state(sv->t),
				 PROA_TS_HALF_PEER);
		assert_false(proa_transport_is_reading(sv->t));
		for (size_t i = 0; i < len; i++)
			b[i] = proa_test_pattern(i);
		assert_res(proa_transport_write(sv->t, b, len), 0);
		free(b);
		assert_res(proa_transport_close(sv->t), 0);
	}
	DRIVE(loop, sv->lost);
	assert_res(sv->err, 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(h.end, 0); /* the server's close_notify */
	assert_int_equal(h.got, max_version == TLS1_3_VERSION ? len : 0);
	assert_int_equal(h.bad, 0);
	close_server(loop, s);
	proa_tls_context_free(sctx);
	proa_test_loop_close(loop);
}

static void test_tls_half_close(void **state)
{
	(void)state;
	tls_half_close(TLS1_3_VERSION, false);
	tls_half_close(TLS1_3_VERSION, true);
	tls_half_close(TLS1_2_VERSION, false);
	tls_half_close(TLS1_2_VERSION, true);
}

/* A peer that sends nothing is cut off by the handshake timeout; one that
 * sends garbage is closed at once; the server serves the next client. */
static void test_tls_bad_peers(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_tls_context *sctx = server_ctx("server.pem", "server.key");
	struct proa_tls_context *cctx = client_ctx(true);
	struct farm f = {.n = 0};
	struct proa_server *s = tls_listen(loop, sctx, &f, 100000000);
	uint16_t port = proa_server_port(s);
	uint64_t t0 = proa_test_now_ns();
	int silent = raw_connect(port), junk = raw_connect(port);
	struct side c;
	char err[256];

	(void)state;
	assert_int_equal(write(junk, "GET / HTTP/1.0\r\n\r\n", 18), 18);
	/* both are closed by the server: read returns 0 (or a reset) */
	DRIVE(loop, closed_by_peer(junk));
	DRIVE(loop, closed_by_peer(silent));
	assert_true(proa_test_now_ns() - t0 >= 100000000);
	close(junk);
	close(silent);
	assert_int_equal(f.n, 0);
	assert_res(
	    tls_connect(loop, port, cctx, "localhost", &c, err, sizeof(err)),
	    0);
	assert_res(proa_transport_close(c.t), 0);
	DRIVE(loop, c.lost && f.n == 1 && f.sides[0].lost);
	close_server(loop, s);
	proa_test_loop_close(loop);
	proa_tls_context_free(sctx);
	proa_tls_context_free(cctx);
}

/* STARTTLS: a clear connection, a "STARTTLS" line and its answer, then
 * both ends upgrade and the same protocols go on over TLS. */
struct starttls {
	struct proa_protocol p;
	struct proa_transport *t;
	struct proa_tls_context *ctx;
	bool server;
	struct proa_future up;
	bool upgraded, lost;
	int err;
	char got[64];
	size_t n;
};

static void st_made(struct proa_protocol *p, struct proa_transport *t)
{
	struct starttls *s = proa_container_of(p, struct starttls, p);

	s->t = t;
	if (!s->server)
		assert_res(proa_transport_write(t, "STARTTLS\n", 9), 0);
}

static void st_data(struct proa_protocol *p, const void *data, size_t len)
{
	struct starttls *s = proa_container_of(p, struct starttls, p);
	char err[128];

	assert_true(s->n + len < sizeof(s->got));
	memcpy(s->got + s->n, data, len);
	s->n += len;
	if (s->upgraded || !memchr(s->got, '\n', s->n))
		return;
	s->n = 0;
	s->upgraded = true;
	proa_future_init(&s->up, proa_transport_loop(s->t));
	if (s->server) {
		/* answer in clear, then upgrade, in this one callback */
		assert_res(proa_transport_write(s->t, "GO\n", 3), 0);
		assert_res(proa_transport_start_tls(s->t, s->ctx, true, NULL, 0,
						    NULL, 0, &s->up),
			   0);
		/* A second "STARTTLS" on the way: refused, the first goes
		 * on (a second state took the socket over from the first,
		 * whose timer later aborted the freed socket). */
		struct proa_future again;

		proa_future_init(&again, proa_transport_loop(s->t));
		assert_res(proa_transport_start_tls(s->t, s->ctx, true, NULL, 0,
						    NULL, 0, &again),
			   -EBUSY);
		assert_res(proa_future_fini(&again), 0);
	} else {
		assert_res(proa_transport_start_tls(s->t, s->ctx, false,
						    "localhost", 0, err,
						    sizeof(err), &s->up),
			   0);
	}
}

static void st_lost(struct proa_protocol *p, int err)
{
	struct starttls *s = proa_container_of(p, struct starttls, p);

	s->lost = true;
	s->err = err;
}

static const struct proa_protocol_ops st_ops = {
    .connection_made = st_made,
    .data_received = st_data,
    .connection_lost = st_lost,
};

static struct proa_protocol *st_make(void *arg, struct proa_transport *t)
{
	(void)t;
	return &((struct starttls *)arg)->p;
}

static void test_start_tls(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct starttls sv = {.p.ops = &st_ops, .server = true},
			cl = {.p.ops = &st_ops};
	struct sockaddr_in a = {.sin_family = AF_INET};
	struct proa_server *s = NULL;
	struct proa_future fut;
	struct proa_transport *ct, *st;

	(void)state;
	sv.ctx = server_ctx("server.pem", "server.key");
	cl.ctx = client_ctx(true);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_res(proa_tcp_listen_addr(&s, loop, (struct sockaddr *)&a,
					sizeof(a), NULL, st_make, &sv),
		   0);
	proa_future_init(&fut, loop);
	assert_res(proa_tcp_connect(loop, "127.0.0.1", proa_server_port(s),
				    NULL, st_make, &cl, &fut),
		   0);
	DRIVE(loop, proa_future_is_done(&fut));
	assert_res(proa_future_result(&fut, NULL), 0);
	assert_res(proa_future_fini(&fut), 0);
	DRIVE(loop, sv.upgraded && cl.upgraded && proa_future_is_done(&sv.up) &&
			proa_future_is_done(&cl.up));
	assert_res(proa_future_result(&sv.up, (void **)&st), 0);
	assert_res(proa_future_result(&cl.up, (void **)&ct), 0);
	assert_res(proa_future_fini(&sv.up), 0);
	assert_res(proa_future_fini(&cl.up), 0);
	assert_false(proa_transport_can_write_eof(ct));
	/* the same protocols, now over TLS */
	sv.t = st;
	cl.t = ct;
	assert_res(proa_transport_write(ct, "secret\n", 7), 0);
	DRIVE(loop, sv.n == 7);
	assert_memory_equal(sv.got, "secret\n", 7);
	assert_res(proa_transport_close(ct), 0);
	DRIVE(loop, sv.lost && cl.lost);
	assert_res(cl.err, 0);
	close_server(loop, s);
	proa_test_loop_close(loop);
	proa_tls_context_free(sv.ctx);
	proa_tls_context_free(cl.ctx);
}

/* ---- real peers: openssl s_client against the proa server ------------- */

struct child {
	pid_t pid;
	int in;	 /* its stdin */
	int out; /* its stdout and stderr */
	char got[8192];
	size_t n;
	bool eof;
	struct proa_op poll; /* the loop wakes when the child prints */
};

static void child_polled(struct proa_op *op)
{
	(void)op;
}

static bool have_openssl(void)
{
	/* Asked before any thread of the test starts. */
	/* NOLINTNEXTLINE(concurrency-mt-unsafe) */
	return system("openssl version >/dev/null 2>&1") == 0;
}

/* Start openssl with @argv (NULL-terminated), pipes on both ends. */
static void spawn(struct child *c, char *const argv[])
{
	int in[2], out[2];

	memset(c, 0, sizeof(*c));
	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	c->pid = fork();
	assert_true(c->pid >= 0);
	if (c->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(out[1], 2);
		execvp("openssl", argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	c->in = in[1];
	c->out = out[0];
	fcntl(c->out, F_SETFL, O_NONBLOCK);
}

/* Take what the child printed so far (sets @eof when it closed stdout). */
static void child_read(struct child *c)
{
	ssize_t n = 0;

	while (c->n < sizeof(c->got) - 1 &&
	       (n = read(c->out, c->got + c->n, sizeof(c->got) - 1 - c->n)) > 0)
		c->n += (size_t)n;
	c->got[c->n] = '\0';
	if (n == 0)
		c->eof = true;
}

/* One loop iteration that also wakes when the child prints (a poll op on
 * its stdout): the server and the child both make progress, no sleeps. */
static void child_step(struct proa_loop *loop, struct child *c)
{
	if (!c->eof && proa_op_is_idle(&c->poll)) {
		proa_op_init(&c->poll, child_polled, c);
		assert_res(proa_op_poll(loop, &c->poll, c->out, POLLIN, 0), 0);
	}
	assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
	child_read(c);
}

/* Run the loop until the child exits; its exit status. */
static int child_wait(struct proa_loop *loop, struct child *c)
{
	int st = 0, i;

	if (c->in >= 0)
		close(c->in);
	c->in = -1;
	for (i = 0; i < 100000 && !c->eof; i++)
		child_step(loop, c);
	assert_true(c->eof);
	if (!proa_op_is_idle(&c->poll))
		proa_op_cancel(&c->poll);
	proa_test_drive_op(loop, &c->poll, 100000);
	/* stdout closed: it is exiting */
	assert_int_equal(waitpid(c->pid, &st, 0), c->pid);
	close(c->out);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* openssl s_client, TLS 1.2 and 1.3, verifying against the test CA: a
 * line goes through the proa TLS echo server and comes back. */
static void test_tls_s_client(void **state)
{
	static const char *const versions[] = {"-tls1_2", "-tls1_3"};
	struct proa_loop *loop;
	struct proa_tls_context *sctx;
	struct proa_server *s;
	struct farm f = {.n = 0};
	struct child ch;
	char addr[64], ca[600];
	unsigned k, i;
	int rc;

	(void)state;
	if (!have_openssl()) {
		print_message("no openssl command: skipped\n");
		skip();
	}
	loop = proa_test_loop_new();
	sctx = server_ctx("server.pem", "server.key");
	s = tls_listen(loop, sctx, &f, 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", proa_server_port(s));
	snprintf(ca, sizeof(ca), "%s", cert("ca.pem"));
	for (k = 0; k < 2; k++) {
		char *argv[] = {"openssl",
				"s_client",
				"-connect",
				addr,
				"-CAfile",
				ca,
				"-servername",
				"localhost",
				"-verify_hostname",
				"localhost",
				"-verify_return_error",
				(char *)versions[k],
				"-quiet",
				"-ign_eof",
				NULL};

		spawn(&ch, argv);
		assert_int_equal(write(ch.in, "hello proa\n", 11), 11);
		for (i = 0; i < 100000 && !strstr(ch.got, "hello proa"); i++)
			child_step(loop, &ch);
		assert_non_null(strstr(ch.got, "hello proa"));
		/* the server ends it: close_notify, then s_client exits 0 */
		assert_int_equal(f.n, k + 1);
		assert_res(proa_transport_close(f.sides[k].t), 0);
		rc = child_wait(loop, &ch);
		print_message("s_client %s: exit %d\n", versions[k], rc);
		assert_int_equal(rc, 0);
		DRIVE(loop, f.sides[k].lost);
		assert_res(f.sides[k].err, 0);
	}

	/* a TLS 1.1-only client is refused (it must offer 1.1 at all: a
	 * security level that allows it) and calls nothing of ours */
	{
		char *argv[] = {
		    "openssl", "s_client", "-connect",		 addr,
		    "-tls1_1", "-cipher",  "DEFAULT@SECLEVEL=0", NULL};

		spawn(&ch, argv);
		rc = child_wait(loop, &ch);
		print_message("s_client -tls1_1: exit %d\n", rc);
		assert_true(rc != 0);
		assert_int_equal(f.n, 2);
	}

	/* renegotiation: s_client's "R" command; the server cuts it off */
	{
		char *argv[] = {
		    "openssl", "s_client",    "-connect",  addr, "-CAfile", ca,
		    "-tls1_2", "-servername", "localhost", NULL};

		spawn(&ch, argv);
		for (i = 0; i < 100000 && f.n < 3; i++)
			child_step(loop, &ch);
		assert_int_equal(f.n, 3);
		assert_int_equal(write(ch.in, "R\n", 2), 2);
		for (i = 0; i < 100000 && !f.sides[2].lost; i++)
			child_step(loop, &ch);
		assert_true(f.sides[2].lost);
		assert_res(f.sides[2].err, PROA_ETLS);
		child_wait(loop, &ch);
	}
	close_server(loop, s);
	proa_test_loop_close(loop);
	proa_tls_context_free(sctx);
}

/* The proa client against openssl s_server (-rev: each line comes back
 * reversed), TLS 1.2 and 1.3, verifying it with the test CA. */
static void test_tls_s_server(void **state)
{
	static const char *const versions[] = {"-tls1_2", "-tls1_3"};
	struct proa_loop *loop;
	struct proa_tls_context *cctx;
	struct child ch;
	struct side c;
	char crt[600], key[600], err[256], *p;
	unsigned k, i;
	uint16_t port;

	(void)state;
	if (!have_openssl()) {
		print_message("no openssl command: skipped\n");
		skip();
	}
	loop = proa_test_loop_new();
	cctx = client_ctx(true);
	snprintf(crt, sizeof(crt), "%s", cert("server.pem"));
	snprintf(key, sizeof(key), "%s", cert("server.key"));
	for (k = 0; k < 2; k++) {
		char *argv[] = {"openssl", "s_server",
				"-accept", "0",
				"-cert",   crt,
				"-key",	   key,
				"-rev",	   (char *)versions[k],
				NULL};

		spawn(&ch, argv);
		for (i = 0; i < 100000 && !strstr(ch.got, "ACCEPT"); i++)
			child_step(loop, &ch);
		p = strstr(ch.got, "ACCEPT");
		assert_non_null(p);
		for (i = 0; i < 100000 && !strchr(p, '\n'); i++)
			child_step(loop, &ch);
		p = strrchr(p, ':');
		assert_non_null(p);
		port = (uint16_t)atoi(p + 1);
		assert_true(port > 0);
		assert_res(tls_connect(loop, port, cctx, "localhost", &c, err,
				       sizeof(err)),
			   0);
		assert_string_equal(proa_tls_version(c.t),
				    k == 0 ? "TLSv1.2" : "TLSv1.3");
		c.verify = false;
		assert_res(proa_transport_write(c.t, "hello\n", 6), 0);
		DRIVE(loop, c.rx >= 6);
		assert_memory_equal(c.head, "olleh\n", 6);
		assert_res(proa_transport_close(c.t), 0);
		DRIVE(loop, c.lost);
		kill(ch.pid, SIGTERM);
		child_wait(loop, &ch);
	}
	proa_test_loop_close(loop);
	proa_tls_context_free(cctx);
}

/* The release side of a write_ref on TLS: counts the calls, notes
 * whether connection_lost had run, checks the memory was unchanged, then
 * poisons it (~pattern): TLS copies inside the call, so the peer must
 * still get the original bytes. */
struct tls_ref {
	uint8_t *buf;
	size_t len;
	uint64_t base;
	const struct side *owner;
	unsigned calls;
	bool intact, lost_before;
};

static void tls_ref_release(void *arg)
{
	struct tls_ref *r = arg;
	size_t i;

	r->calls++;
	r->lost_before = r->owner && r->owner->lost;
	r->intact = true;
	for (i = 0; i < r->len; i++) {
		if (r->buf[i] != proa_test_pattern(r->base + i)) {
			r->intact = false;
			break;
		}
	}
	for (i = 0; i < r->len; i++)
		r->buf[i] = (uint8_t)~proa_test_pattern(r->base + i);
}

/* write_ref over TLS, between copied writes: the bytes arrive in order,
 * byte-exact, and are echoed back; release runs once, never inside the
 * call; refused calls (NULL release, after close) never release; a
 * release pending at abort runs before connection_lost. */
static void test_tls_write_ref(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_tls_context *sctx = server_ctx("server.pem", "server.key");
	struct proa_tls_context *cctx = client_ctx(true);
	struct farm f = {.n = 0};
	struct proa_server *s = tls_listen(loop, sctx, &f, 0);
	const size_t head = 1000, len = 1u << 20;
	struct tls_ref r = {.base = head, .len = len}, z = {.buf = NULL};
	struct tls_ref a = {.base = 0, .len = 4096}, bad = {.buf = NULL};
	uint8_t first[1000], last[1000];
	uint64_t total = head + len + sizeof(last);
	struct side c;
	char err[256] = "";
	unsigned i;

	(void)state;
	assert_res(tls_connect(loop, proa_server_port(s), cctx, "localhost", &c,
			       err, sizeof(err)),
		   0);
	DRIVE(loop, f.n == 1 && f.sides[0].made);
	f.sides[0].verify = true;
	r.owner = &c;
	r.buf = malloc(len);
	assert_non_null(r.buf);
	for (i = 0; i < len; i++)
		r.buf[i] = proa_test_pattern(head + i);
	for (i = 0; i < sizeof(first); i++)
		first[i] = proa_test_pattern(i);
	for (i = 0; i < sizeof(last); i++)
		last[i] = proa_test_pattern(head + len + i);
	assert_res(proa_transport_write_ref(c.t, r.buf, len, NULL, &bad),
		   -EINVAL);
	assert_res(proa_transport_write(c.t, first, sizeof(first)), 0);
	assert_res(
	    proa_transport_write_ref(c.t, r.buf, len, tls_ref_release, &r), 0);
	assert_int_equal(r.calls, 0); /* never inside the call */
	assert_res(proa_transport_write(c.t, last, sizeof(last)), 0);
	assert_res(proa_transport_write_ref(c.t, NULL, 0, tls_ref_release, &z),
		   0);
	assert_int_equal(z.calls, 0);
	/* the server verifies; its echo comes back and the client verifies */
	DRIVE(loop, f.sides[0].rx == total && c.rx == total && r.calls > 0 &&
			z.calls > 0);
	assert_int_equal(f.sides[0].bad, 0);
	assert_int_equal(c.bad, 0);
	for (i = 0; i < 1000; i++)
		assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	assert_int_equal(r.calls, 1);
	assert_int_equal(z.calls, 1);
	assert_true(r.intact);
	assert_false(r.lost_before);
	/* a release pending at abort runs before connection_lost */
	a.owner = &f.sides[0];
	a.buf = malloc(a.len);
	assert_non_null(a.buf);
	for (i = 0; i < a.len; i++)
		a.buf[i] = proa_test_pattern(i);
	assert_res(proa_transport_write_ref(f.sides[0].t, a.buf, a.len,
					    tls_ref_release, &a),
		   0);
	proa_transport_abort(f.sides[0].t);
	assert_int_equal(a.calls, 0);
	DRIVE(loop, c.lost && f.sides[0].lost);
	assert_int_equal(a.calls, 1);
	assert_true(a.intact);
	assert_false(a.lost_before);
	/* after close: -EPIPE, never released */
	assert_res(tls_connect(loop, proa_server_port(s), cctx, "localhost", &c,
			       err, sizeof(err)),
		   0);
	assert_res(proa_transport_close(c.t), 0);
	assert_res(
	    proa_transport_write_ref(c.t, r.buf, len, tls_ref_release, &bad),
	    -EPIPE);
	assert_res(
	    proa_transport_write_ref(c.t, NULL, 0, tls_ref_release, &bad),
	    -EPIPE);
	DRIVE(loop, c.lost && f.n == 2 && f.sides[1].lost);
	for (i = 0; i < 1000; i++)
		assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	assert_int_equal(bad.calls, 0);
	close_server(loop, s);
	proa_test_loop_close(loop);
	assert_int_equal(r.calls, 1);
	assert_int_equal(a.calls, 1);
	assert_int_equal(bad.calls, 0);
	free(r.buf);
	free(a.buf);
	proa_tls_context_free(sctx);
	proa_tls_context_free(cctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_tls_echo, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_tls_verify_errors, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_tls_half_close, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_tls_truncation, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_tls_bad_peers, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_start_tls, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_tls_resume_alpn, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_tls_s_client, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_tls_s_server, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_tls_write_ref, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(
		test_tls_key_update_flood_is_bounded, setup, teardown_check),
	};
	const char *dir = proa_test_getenv("PROA_TEST_CERTS");

	proa_test_require_uring();
	if (!dir) {
		fprintf(stderr, "PROA_TEST_CERTS is not set (the tls_certs "
				"fixture makes the certificates)\n");
		return 1;
	}
	snprintf(certs, sizeof(certs), "%s", dir);
	return cmocka_run_group_tests_name("net.tls", tests, NULL, NULL);
}
