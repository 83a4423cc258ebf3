/* SPDX-License-Identifier: MIT */
/*
 * tests/kernel/net/test_tls_ctx.c - TLS contexts (issue 5, first part):
 * certificate and key loading with the errors named (missing file, wrong
 * or missing password, a key that does not match), client roots, ALPN
 * lists, the safe defaults, and, through in-memory handshakes (two SSL
 * objects joined by a BIO pair, no loop and no socket): SNI certificate
 * selection, ALPN negotiation, verification (host name, expiry, unknown
 * CA) and session resumption.
 *
 * The certificates come from scripts/make-test-certs.sh, run by the ctest
 * fixture tls_certs into the directory named by PROA_TEST_CERTS.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <limits.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "proa_test.h"

static const char *g_dir;

/* The path of certificate file @name (a static buffer per call slot). */
static const char *cert(const char *name)
{
	static char buf[8][PATH_MAX];
	static unsigned slot;
	char *p = buf[slot++ % 8];

	snprintf(p, PATH_MAX, "%s/%s", g_dir, name);
	return p;
}

static struct proa_tls_context *server_ctx(const char *pem, const char *key,
					   const char *alpn)
{
	struct proa_tls_options opt = {
	    .cert_file = cert(pem),
	    .key_file = cert(key),
	    .alpn = alpn,
	};
	struct proa_tls_context *ctx = NULL;
	char err[256];

	assert_res(
	    proa_tls_context_new(&ctx, PROA_TLS_SERVER, &opt, err, sizeof(err)),
	    0);
	assert_string_equal(err, "");
	return ctx;
}

static struct proa_tls_context *client_ctx(bool ca, const char *alpn)
{
	struct proa_tls_options opt = {
	    .ca_file = ca ? cert("ca.pem") : NULL,
	    .alpn = alpn,
	};
	struct proa_tls_context *ctx = NULL;
	char err[256];

	assert_res(
	    proa_tls_context_new(&ctx, PROA_TLS_CLIENT, &opt, err, sizeof(err)),
	    0);
	return ctx;
}

static int new_with(enum proa_tls_role role, const struct proa_tls_options *opt,
		    char *err, size_t errlen)
{
	struct proa_tls_context *ctx = NULL;
	int ret = proa_tls_context_new(&ctx, role, opt, err, errlen);

	/* Failures leave nothing behind: no context, no OpenSSL error. */
	assert_int_equal(ERR_peek_error(), 0);
	if (ret) {
		assert_null(ctx);
		assert_true(err[0] != '\0');
	}
	proa_tls_context_free(ctx);
	return ret;
}

/* ---- loading ---------------------------------------------------------- */

static void test_server_good(void **state)
{
	struct proa_tls_context *ctx =
	    server_ctx("server.pem", "server.key", NULL);

	assert_non_null(proa_tls_context_ssl_ctx(ctx));
	proa_tls_context_free(ctx);
}

static void test_server_missing_cert(void **state)
{
	struct proa_tls_options opt = {
	    .cert_file = cert("nope.pem"),
	    .key_file = cert("server.key"),
	};
	char err[256];

	errno = 1234;
	assert_res(new_with(PROA_TLS_SERVER, &opt, err, sizeof(err)), -ENOENT);
	assert_int_equal(errno, 1234);
	assert_non_null(strstr(err, opt.cert_file));
	assert_non_null(strstr(err, "No such file or directory"));

	opt.cert_file = cert("server.pem");
	opt.key_file = cert("nope.key");
	assert_res(new_with(PROA_TLS_SERVER, &opt, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, opt.key_file));
}

static void test_server_bad_options(void **state)
{
	struct proa_tls_options opt = {.cert_file = cert("server.pem")};
	struct proa_tls_context *ctx = NULL;
	char err[256];

	/* A server without certificate, or without key. */
	assert_res(
	    proa_tls_context_new(&ctx, PROA_TLS_SERVER, NULL, err, sizeof(err)),
	    -EINVAL);
	assert_null(ctx);
	assert_res(new_with(PROA_TLS_SERVER, &opt, err, sizeof(err)), -EINVAL);
	/* Unknown version, unknown role; err may be NULL. */
	opt.key_file = cert("server.key");
	opt.min_version = 0x0302;
	assert_res(new_with(PROA_TLS_SERVER, &opt, err, sizeof(err)), -EINVAL);
	assert_res(
	    proa_tls_context_new(&ctx, (enum proa_tls_role)7, NULL, NULL, 0),
	    -EINVAL);
	/* A file that is not PEM. */
	opt.min_version = 0;
	opt.cert_file = cert("ca.key");
	assert_res(new_with(PROA_TLS_SERVER, &opt, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, opt.cert_file));
}

static void test_encrypted_key(void **state)
{
	struct proa_tls_options opt = {
	    .cert_file = cert("server.pem"),
	    .key_file = cert("server-enc.key"),
	    .key_password = "secret",
	};
	char err[256];

	assert_res(new_with(PROA_TLS_SERVER, &opt, err, sizeof(err)), 0);

	opt.key_password = "wrong";
	assert_res(new_with(PROA_TLS_SERVER, &opt, err, sizeof(err)), -EACCES);
	assert_non_null(strstr(err, "wrong password"));
	assert_non_null(strstr(err, opt.key_file));

	/* No password: refused, never a prompt on the terminal. */
	opt.key_password = NULL;
	assert_res(new_with(PROA_TLS_SERVER, &opt, err, sizeof(err)), -EACCES);
	assert_non_null(strstr(err, "no password"));

	/* A password for a key that has none is harmless. */
	opt.key_file = cert("server.key");
	opt.key_password = "secret";
	assert_res(new_with(PROA_TLS_SERVER, &opt, err, sizeof(err)), 0);
}

static void test_key_mismatch(void **state)
{
	struct proa_tls_options opt = {
	    .cert_file = cert("server.pem"),
	    .key_file = cert("other.key"),
	};
	char err[256];

	assert_res(new_with(PROA_TLS_SERVER, &opt, err, sizeof(err)),
		   -EKEYREJECTED);
	assert_non_null(strstr(err, "does not match"));
}

static void test_client_roots(void **state)
{
	struct proa_tls_options opt = {0};
	char err[256];

	/* The system store. */
	assert_res(new_with(PROA_TLS_CLIENT, &opt, err, sizeof(err)), 0);
	assert_res(new_with(PROA_TLS_CLIENT, NULL, err, sizeof(err)), 0);

	opt.ca_file = cert("ca.pem");
	assert_res(new_with(PROA_TLS_CLIENT, &opt, err, sizeof(err)), 0);
	opt.ca_file = cert("missing-ca.pem");
	assert_res(new_with(PROA_TLS_CLIENT, &opt, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, opt.ca_file));

	opt.ca_file = NULL;
	opt.ca_dir = g_dir;
	assert_res(new_with(PROA_TLS_CLIENT, &opt, err, sizeof(err)), 0);
	opt.ca_dir = cert("missing-dir");
	assert_res(new_with(PROA_TLS_CLIENT, &opt, err, sizeof(err)), -ENOENT);
	opt.ca_dir = cert("ca.pem");
	assert_res(new_with(PROA_TLS_CLIENT, &opt, err, sizeof(err)), -EINVAL);
}

static void test_alpn_lists(void **state)
{
	struct proa_tls_options opt = {.alpn = "h2,http/1.1"};
	static const char *const bad[] = {"", ",h2", "h2,", "h2,,http/1.1"};
	char big[300 + 4];
	char err[256];
	size_t i;

	assert_res(new_with(PROA_TLS_CLIENT, &opt, err, sizeof(err)), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		opt.alpn = bad[i];
		assert_res(new_with(PROA_TLS_CLIENT, &opt, err, sizeof(err)),
			   -EINVAL);
		assert_non_null(strstr(err, "empty"));
	}
	memcpy(big, "h2,", 3);
	memset(big + 3, 'x', 300);
	big[303] = '\0';
	opt.alpn = big;
	assert_res(new_with(PROA_TLS_CLIENT, &opt, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "too long"));
	/* 255 bytes is the limit, and allowed. */
	big[3 + 255] = '\0';
	assert_res(new_with(PROA_TLS_CLIENT, &opt, err, sizeof(err)), 0);
}

/* ---- defaults ---------------------------------------------------------- */

static void test_defaults(void **state)
{
	struct proa_tls_context *c = client_ctx(false, NULL);
	struct proa_tls_context *s =
	    server_ctx("server.pem", "server.key", NULL);
	SSL_CTX *cs = proa_tls_context_ssl_ctx(c);
	SSL_CTX *ss = proa_tls_context_ssl_ctx(s);

	assert_int_equal(SSL_CTX_get_min_proto_version(cs), TLS1_2_VERSION);
	assert_int_equal(SSL_CTX_get_min_proto_version(ss), TLS1_2_VERSION);
	assert_true(SSL_CTX_get_options(cs) & SSL_OP_NO_COMPRESSION);
	assert_true(SSL_CTX_get_options(cs) & SSL_OP_NO_RENEGOTIATION);
	assert_true(SSL_CTX_get_options(ss) & SSL_OP_NO_COMPRESSION);
	assert_true(SSL_CTX_get_options(ss) & SSL_OP_NO_RENEGOTIATION);
	assert_true(SSL_CTX_get_options(ss) & SSL_OP_CIPHER_SERVER_PREFERENCE);
	assert_false(SSL_CTX_get_options(ss) & SSL_OP_NO_TICKET);
	assert_int_equal(SSL_CTX_get_verify_mode(cs), SSL_VERIFY_PEER);
	assert_false(SSL_CTX_get_mode(cs) & SSL_MODE_ENABLE_PARTIAL_WRITE);
	assert_true(SSL_CTX_get_mode(cs) & SSL_MODE_RELEASE_BUFFERS);
	assert_int_equal(SSL_CTX_get_session_cache_mode(ss),
			 SSL_SESS_CACHE_SERVER);
	assert_int_equal(SSL_CTX_get_session_cache_mode(cs),
			 SSL_SESS_CACHE_CLIENT);

	/* The caller's reference and a transport's. */
	assert_ptr_equal(proa_tls_context_ref(c), c);
	proa_tls_context_free(c);
	assert_ptr_equal(proa_tls_context_ssl_ctx(c), cs);
	proa_tls_context_free(c);
	proa_tls_context_free(s);
	proa_tls_context_free(NULL);
}

static void test_options(void **state)
{
	struct proa_tls_options opt = {
	    .min_version = PROA_TLS_1_3,
	    .no_verify = true,
	    .no_session_cache = true,
	};
	struct proa_tls_context *ctx = NULL;
	char err[256];
	SSL_CTX *ssl;

	assert_res(
	    proa_tls_context_new(&ctx, PROA_TLS_CLIENT, &opt, err, sizeof(err)),
	    0);
	ssl = proa_tls_context_ssl_ctx(ctx);
	assert_int_equal(SSL_CTX_get_min_proto_version(ssl), TLS1_3_VERSION);
	assert_int_equal(SSL_CTX_get_verify_mode(ssl), SSL_VERIFY_NONE);
	assert_int_equal(SSL_CTX_get_session_cache_mode(ssl),
			 SSL_SESS_CACHE_OFF);
	proa_tls_context_free(ctx);

	/* no_verify is a client option. */
	opt.cert_file = cert("server.pem");
	opt.key_file = cert("server.key");
	assert_res(new_with(PROA_TLS_SERVER, &opt, err, sizeof(err)), -EINVAL);
}

/* ---- handshakes in memory --------------------------------------------- */

struct pair {
	SSL *c;
	SSL *s;
};

/*
 * Client and server SSL objects joined by a BIO pair.  @sni: the name the
 * client sends (NULL: none); @host: the name it verifies (NULL: none).
 */
static void pair_new(struct pair *p, struct proa_tls_context *cctx,
		     struct proa_tls_context *sctx, const char *sni,
		     const char *host)
{
	BIO *bc;
	BIO *bs;

	p->c = SSL_new(proa_tls_context_ssl_ctx(cctx));
	p->s = SSL_new(proa_tls_context_ssl_ctx(sctx));
	assert_non_null(p->c);
	assert_non_null(p->s);
	assert_int_equal(BIO_new_bio_pair(&bc, 0, &bs, 0), 1);
	SSL_set_bio(p->c, bc, bc);
	SSL_set_bio(p->s, bs, bs);
	SSL_set_connect_state(p->c);
	SSL_set_accept_state(p->s);
	if (sni)
		assert_int_equal(SSL_set_tlsext_host_name(p->c, sni), 1);
	if (host)
		assert_int_equal(SSL_set1_host(p->c, host), 1);
}

static void pair_free(struct pair *p)
{
	/*
	 * Close cleanly: OpenSSL drops the session of an SSL freed without
	 * close_notify (SSL_free -> ssl_clear_bad_session), so it could not
	 * be resumed.
	 */
	SSL_shutdown(p->c);
	SSL_shutdown(p->s);
	SSL_free(p->c);
	SSL_free(p->s);
	ERR_clear_error();
}

static bool want_more(SSL *ssl, int ret)
{
	int e = SSL_get_error(ssl, ret);

	return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

/* Drive both ends; 0 when both finished, -1 when one failed. */
static int pair_handshake(struct pair *p)
{
	int i;

	for (i = 0; i < 100; i++) {
		int rc = SSL_do_handshake(p->c);
		int rs = SSL_do_handshake(p->s);

		if (rc == 1 && rs == 1)
			return 0;
		if ((rc != 1 && !want_more(p->c, rc)) ||
		    (rs != 1 && !want_more(p->s, rs)))
			return -1;
	}
	return -1;
}

/* The subject CN of the certificate the server presented. */
static void peer_cn(struct pair *p, char *buf, int len)
{
	X509 *x = SSL_get1_peer_certificate(p->c);

	assert_non_null(x);
	assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x),
					      NID_commonName, buf, len) > 0);
	X509_free(x);
}

static void expect_cn(struct proa_tls_context *cctx,
		      struct proa_tls_context *sctx, const char *sni,
		      const char *cn)
{
	struct pair p;
	char buf[128];

	pair_new(&p, cctx, sctx, sni, NULL);
	assert_int_equal(pair_handshake(&p), 0);
	assert_int_equal(SSL_get_verify_result(p.c), X509_V_OK);
	peer_cn(&p, buf, sizeof(buf));
	assert_string_equal(buf, cn);
	pair_free(&p);
}

static void test_sni(void **state)
{
	struct proa_tls_context *s =
	    server_ctx("server.pem", "server.key", NULL);
	struct proa_tls_context *c = client_ctx(true, NULL);
	char err[256];

	assert_res(proa_tls_context_add_sni(
		       s, "wrong.example", cert("wronghost.pem"),
		       cert("wronghost.key"), NULL, err, sizeof(err)),
		   0);
	assert_res(proa_tls_context_add_sni(
		       s, "*.example.org", cert("wildcard.pem"),
		       cert("wildcard.key"), NULL, err, sizeof(err)),
		   0);
	/* Refusals: twice, a bad name, a missing file, a client context. */
	assert_res(proa_tls_context_add_sni(
		       s, "WRONG.example", cert("wronghost.pem"),
		       cert("wronghost.key"), NULL, err, sizeof(err)),
		   -EINVAL);
	assert_res(proa_tls_context_add_sni(s, "a.*.org", cert("wronghost.pem"),
					    cert("wronghost.key"), NULL, err,
					    sizeof(err)),
		   -EINVAL);
	assert_res(proa_tls_context_add_sni(s, "x.test", cert("no.pem"),
					    cert("wronghost.key"), NULL, err,
					    sizeof(err)),
		   -ENOENT);
	assert_res(proa_tls_context_add_sni(s, "x.test", cert("server.pem"),
					    cert("other.key"), NULL, err,
					    sizeof(err)),
		   -EKEYREJECTED);
	assert_res(proa_tls_context_add_sni(c, "x.test", cert("server.pem"),
					    cert("server.key"), NULL, err,
					    sizeof(err)),
		   -EINVAL);
	assert_int_equal(ERR_peek_error(), 0);

	expect_cn(c, s, "wrong.example", "wrong.example");
	expect_cn(c, s, "Wrong.Example", "wrong.example");
	expect_cn(c, s, "a.example.org", "*.example.org");
	/* One label only; unknown names and no SNI get the default. */
	expect_cn(c, s, "a.b.example.org", "localhost");
	expect_cn(c, s, "example.org", "localhost");
	expect_cn(c, s, "unknown.test", "localhost");
	expect_cn(c, s, NULL, "localhost");

	proa_tls_context_free(c);
	proa_tls_context_free(s);
}

static void expect_alpn(const char *server, const char *client,
			const char *want)
{
	struct proa_tls_context *s =
	    server_ctx("server.pem", "server.key", server);
	struct proa_tls_context *c = client_ctx(true, client);
	const unsigned char *sel;
	unsigned len;
	struct pair p;

	/* The SNI certificates negotiate ALPN too. */
	assert_res(
	    proa_tls_context_add_sni(s, "wrong.example", cert("wronghost.pem"),
				     cert("wronghost.key"), NULL, NULL, 0),
	    0);
	pair_new(&p, c, s, "wrong.example", NULL);
	if (!want) {
		assert_int_equal(pair_handshake(&p), -1);
	} else {
		assert_int_equal(pair_handshake(&p), 0);
		SSL_get0_alpn_selected(p.c, &sel, &len);
		assert_int_equal(len, strlen(want));
		assert_memory_equal(sel, want, len);
	}
	pair_free(&p);
	proa_tls_context_free(c);
	proa_tls_context_free(s);
}

static void test_alpn_negotiation(void **state)
{
	expect_alpn("h2,http/1.1", "http/1.1", "http/1.1");
	/* The server's preference wins. */
	expect_alpn("h2,http/1.1", "http/1.1,h2", "h2");
	expect_alpn("h2,http/1.1", NULL, "");
	/* Nothing in common: no_application_protocol. */
	expect_alpn("h2", "http/1.1", NULL);
}

/* A handshake the client must refuse with @verify_err. */
static void expect_refused(struct proa_tls_context *c, const char *pem,
			   const char *key, const char *host, long verify_err)
{
	struct proa_tls_context *s = server_ctx(pem, key, NULL);
	struct pair p;

	pair_new(&p, c, s, host, host);
	assert_int_equal(pair_handshake(&p), -1);
	assert_int_equal(SSL_get_verify_result(p.c), verify_err);
	pair_free(&p);
	proa_tls_context_free(s);
}

static void test_verify(void **state)
{
	struct proa_tls_context *c = client_ctx(true, NULL);
	struct proa_tls_context *sys = client_ctx(false, NULL);
	struct proa_tls_context *s =
	    server_ctx("server.pem", "server.key", NULL);
	struct pair p;

	pair_new(&p, c, s, "localhost", "localhost");
	assert_int_equal(pair_handshake(&p), 0);
	assert_int_equal(SSL_get_verify_result(p.c), X509_V_OK);
	pair_free(&p);

	expect_refused(c, "server.pem", "server.key", "wrong.example",
		       X509_V_ERR_HOSTNAME_MISMATCH);
	expect_refused(c, "wronghost.pem", "wronghost.key", "localhost",
		       X509_V_ERR_HOSTNAME_MISMATCH);
	expect_refused(c, "expired.pem", "expired.key", "localhost",
		       X509_V_ERR_CERT_HAS_EXPIRED);
	/* The system store does not know the test CA. */
	expect_refused(sys, "server.pem", "server.key", "localhost",
		       X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);

	proa_tls_context_free(sys);
	proa_tls_context_free(c);
	proa_tls_context_free(s);
}

/* One full handshake, then one resumed from the ticket or the cache. */
static void resume(int max_version, bool cache, bool want_reused)
{
	struct proa_tls_options opt = {
	    .cert_file = cert("server.pem"),
	    .key_file = cert("server.key"),
	    .no_session_cache = !cache,
	};
	struct proa_tls_context *c = client_ctx(true, NULL);
	struct proa_tls_context *s = NULL;
	SSL_SESSION *sess;
	struct pair p;
	char buf[16];

	assert_res(proa_tls_context_new(&s, PROA_TLS_SERVER, &opt, NULL, 0), 0);
	pair_new(&p, c, s, "localhost", "localhost");
	assert_int_equal(SSL_set_max_proto_version(p.c, max_version), 1);
	assert_int_equal(pair_handshake(&p), 0);
	/* TLS 1.3 tickets come after the handshake: let the client read. */
	assert_int_equal(SSL_read(p.c, buf, sizeof(buf)), -1);
	assert_int_equal(SSL_get_error(p.c, -1), SSL_ERROR_WANT_READ);
	sess = SSL_get1_session(p.c);
	assert_non_null(sess);
	pair_free(&p);

	pair_new(&p, c, s, "localhost", "localhost");
	assert_int_equal(SSL_set_max_proto_version(p.c, max_version), 1);
	assert_int_equal(SSL_set_session(p.c, sess), 1);
	assert_int_equal(pair_handshake(&p), 0);
	assert_int_equal(SSL_session_reused(p.c), want_reused);
	pair_free(&p);
	SSL_SESSION_free(sess);
	proa_tls_context_free(c);
	proa_tls_context_free(s);
}

static void test_resumption(void **state)
{
	resume(TLS1_3_VERSION, true, true);
	resume(TLS1_2_VERSION, true, true);
	resume(TLS1_3_VERSION, false, false);
	resume(TLS1_2_VERSION, false, false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_server_good),
	    cmocka_unit_test(test_server_missing_cert),
	    cmocka_unit_test(test_server_bad_options),
	    cmocka_unit_test(test_encrypted_key),
	    cmocka_unit_test(test_key_mismatch),
	    cmocka_unit_test(test_client_roots),
	    cmocka_unit_test(test_alpn_lists),
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_options),
	    cmocka_unit_test(test_sni),
	    cmocka_unit_test(test_alpn_negotiation),
	    cmocka_unit_test(test_verify),
	    cmocka_unit_test(test_resumption),
	};

	g_dir = proa_test_getenv("PROA_TEST_CERTS");
	if (!g_dir || !*g_dir) {
		fprintf(stderr, "skipped: PROA_TEST_CERTS is not set (run "
				"through ctest, fixture tls_certs)\n");
		return 77;
	}
	return cmocka_run_group_tests_name("tls_ctx", tests, NULL, NULL);
}
