/* SPDX-License-Identifier: MIT */
/*
 * net/tls_ctx.c - TLS contexts: an OpenSSL SSL_CTX with safe defaults,
 * certificates loaded with errors in words, ALPN, SNI certificates and the
 * session cache.  The TLS transport (issue 5, later) makes its SSL objects
 * from these.
 *
 * Every entry point empties OpenSSL's error queue of the calling thread
 * before and after its work, so a failure here never leaks into an
 * unrelated SSL_get_error() later, and keeps the caller's errno.
 *
 * Thread: see proa/tls.h - set up on one thread, then immutable and
 * shared; the reference count is atomic.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/proverr.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "net_int.h"
#include "proa/tls.h"

/* The session id context: resumed sessions must come from a proa server. */
static const unsigned char sid_ctx[] = "proa-tls";

struct sni_cert {
	char *name;    /* lower case; for a wildcard, the ".example.org" */
	bool wildcard; /* "*.example.org" */
	SSL_CTX *ssl;
};

/* A client's sessions, by server name, for resumption: OpenSSL's client
 * cache only stores them, the lookup is ours. */
#define CLIENT_SESSIONS 64

struct client_session {
	char *name;
	SSL_SESSION *sess;
};

struct proa_tls_context {
	unsigned refs; /* __atomic */
	/* the context is shared by loops: its session table is locked */
	pthread_mutex_t sess_mu;
	struct client_session sessions[CLIENT_SESSIONS];
	unsigned next_session;
	enum proa_tls_role role;
	int min_version; /* TLS1_2_VERSION or TLS1_3_VERSION */
	bool no_session_cache;
	SSL_CTX *ssl;
	unsigned char *alpn; /* wire format: length-prefixed names */
	size_t alpn_len;
	struct sni_cert *sni;
	size_t nsni;
};

static int new_session_cb(SSL *ssl, SSL_SESSION *sess);

/* What the password callback sees while a key is loaded. */
struct passwd {
	const char *password;
	bool asked;
};

__attribute__((format(printf, 3, 4))) static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	/* va_start above: the analyzer misses it (a false positive) */
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized) */
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* The reason of OpenSSL's last error in words (never NULL). */
static const char *ssl_reason(void)
{
	const char *s = ERR_reason_error_string(ERR_peek_last_error());

	return s ? s : "unknown OpenSSL error";
}

/* OpenSSL's error queue, taken off for inspection (the newest last). */
struct ssl_errors {
	unsigned long code[16];
	int n;
};

static void ssl_errors_take(struct ssl_errors *q)
{
	unsigned long e;

	q->n = 0;
	while ((e = ERR_get_error()) != 0)
		if (q->n < 16)
			q->code[q->n++] = e;
}

static bool ssl_errors_has(const struct ssl_errors *q, int lib, int reason)
{
	int i;

	for (i = 0; i < q->n; i++)
		if (ERR_GET_LIB(q->code[i]) == lib &&
		    ERR_GET_REASON(q->code[i]) == reason)
			return true;
	return false;
}

static const char *ssl_errors_reason(const struct ssl_errors *q)
{
	const char *s = NULL;

	if (q->n)
		s = ERR_reason_error_string(q->code[q->n - 1]);
	return s ? s : "unknown OpenSSL error";
}

static bool ssl_out_of_memory(void)
{
	return ERR_GET_REASON(ERR_peek_last_error()) == ERR_R_MALLOC_FAILURE;
}

static int path_error(const char *what, const char *path, int e, char *err,
		      size_t errlen)
{
	char buf[128];

	set_err(err, errlen, "%s %s: %s", what, path,
		strerror_r(e, buf, sizeof(buf)));
	switch (e) {
	case ENOENT:
	case ENOTDIR:
		return -ENOENT;
	case EACCES:
	case EPERM:
		return -EACCES;
	case ENOMEM:
		return -ENOMEM;
	default:
		return -EINVAL;
	}
}

/*
 * Can @path be read as a file (or a directory, if @dir)?  0, or the
 * negative errno with the message in @err; errno is changed (the public
 * entry points restore it).
 */
static int check_path(const char *what, const char *path, bool dir, char *err,
		      size_t errlen)
{
	struct stat st;

	if (!*path) {
		set_err(err, errlen, "%s: empty path", what);
		return -EINVAL;
	}
	if (stat(path, &st) != 0)
		return path_error(what, path, errno, err, errlen);
	if (dir != !!S_ISDIR(st.st_mode)) {
		set_err(err, errlen, "%s %s: %s", what, path,
			dir ? "not a directory" : "is a directory");
		return -EINVAL;
	}
	if (access(path, dir ? R_OK | X_OK : R_OK) != 0)
		return path_error(what, path, errno, err, errlen);
	return 0;
}

/*
 * OpenSSL asks for the key's password here.  Never prompt: no password
 * given means the key cannot be decrypted.
 */
static int passwd_cb(char *buf, int size, int rwflag, void *userdata)
{
	struct passwd *pw = userdata;
	size_t len;

	if (!pw)
		return -1;
	pw->asked = true;
	if (!pw->password)
		return -1;
	len = strlen(pw->password);
	if (len > (size_t)size)
		return -1;
	memcpy(buf, pw->password, len);
	return (int)len;
}

static bool bad_password_error(const struct ssl_errors *q)
{
	return ssl_errors_has(q, ERR_LIB_PEM, PEM_R_BAD_DECRYPT) ||
	       ssl_errors_has(q, ERR_LIB_EVP, EVP_R_BAD_DECRYPT) ||
	       ssl_errors_has(q, ERR_LIB_PROV, PROV_R_BAD_DECRYPT) ||
	       ssl_errors_has(q, ERR_LIB_PEM, PEM_R_BAD_PASSWORD_READ);
}

static bool key_mismatch_error(const struct ssl_errors *q)
{
	return ssl_errors_has(q, ERR_LIB_X509, X509_R_KEY_VALUES_MISMATCH) ||
	       ssl_errors_has(q, ERR_LIB_X509, X509_R_KEY_TYPE_MISMATCH);
}

/* Load a certificate chain and its key into @ssl; 0 or a negative errno. */
static int load_cert_key(SSL_CTX *ssl, const char *cert_file,
			 const char *key_file, const char *password, char *err,
			 size_t errlen)
{
	struct passwd pw = {.password = password};
	int ret;

	ret = check_path("certificate file", cert_file, false, err, errlen);
	if (ret)
		return ret;
	ret = check_path("key file", key_file, false, err, errlen);
	if (ret)
		return ret;

	SSL_CTX_set_default_passwd_cb(ssl, passwd_cb);
	SSL_CTX_set_default_passwd_cb_userdata(ssl, &pw);
	if (SSL_CTX_use_certificate_chain_file(ssl, cert_file) != 1) {
		ret = ssl_out_of_memory() ? -ENOMEM : -EPROTO;
		set_err(err, errlen, "certificate file %s: %s", cert_file,
			ssl_reason());
		goto out;
	}
	pw.asked = false;
	if (SSL_CTX_use_PrivateKey_file(ssl, key_file, SSL_FILETYPE_PEM) != 1) {
		struct ssl_errors q;

		ssl_errors_take(&q);
		if (key_mismatch_error(&q)) {
			ret = -EKEYREJECTED;
			set_err(err, errlen,
				"private key %s does not match the "
				"certificate %s",
				key_file, cert_file);
		} else if (pw.asked && !password) {
			ret = -EACCES;
			set_err(err, errlen,
				"key file %s is encrypted and no password "
				"was given",
				key_file);
		} else if (pw.asked || bad_password_error(&q)) {
			ret = -EACCES;
			set_err(err, errlen, "wrong password for key file %s",
				key_file);
		} else {
			ret = -EPROTO;
			set_err(err, errlen, "key file %s: %s", key_file,
				ssl_errors_reason(&q));
		}
		goto out;
	}
	if (SSL_CTX_check_private_key(ssl) != 1) {
		ret = -EKEYREJECTED;
		set_err(err, errlen,
			"private key %s does not match the certificate %s",
			key_file, cert_file);
		goto out;
	}
	ret = 0;
out:
	/* The password lives on the caller's stack: forget it. */
	SSL_CTX_set_default_passwd_cb_userdata(ssl, NULL);
	return ret;
}

/*
 * "h2,http/1.1" -> "\x02h2\x08http/1.1".  0 or -EINVAL (an empty or
 * too long entry) / -ENOMEM.
 */
static int alpn_encode(const char *list, unsigned char **out, size_t *outlen,
		       char *err, size_t errlen)
{
	size_t n = strlen(list);
	unsigned char *w;
	const char *p = list;
	size_t pos = 0;

	/* Each entry gains a length byte and loses its comma: n + 1. */
	w = malloc(n + 1);
	if (!w) {
		set_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		if (len == 0 || len > 255) {
			free(w);
			set_err(err, errlen,
				"ALPN list \"%.64s%s\": %s protocol name", list,
				n > 64 ? "..." : "",
				len ? "a too long (over 255 bytes)"
				    : "an empty");
			return -EINVAL;
		}
		w[pos++] = (unsigned char)len;
		/* ALPN's wire format: length-prefixed, no NUL */
		/* NOLINTNEXTLINE(bugprone-not-null-terminated-result) */
		memcpy(w + pos, p, len);
		pos += len;
		if (!comma)
			break;
		p = comma + 1;
	}
	*out = w;
	*outlen = pos;
	return 0;
}

/* Servers: the first protocol of our list that the client offers. */
static int alpn_select_cb(SSL *s, const unsigned char **out,
			  unsigned char *outlen, const unsigned char *in,
			  unsigned int inlen, void *arg)
{
	struct proa_tls_context *ctx = arg;
	unsigned char *sel;

	if (SSL_select_next_proto(&sel, outlen, ctx->alpn,
				  (unsigned int)ctx->alpn_len, in,
				  inlen) != OPENSSL_NPN_NEGOTIATED)
		/* RFC 7301 3.2: no_application_protocol. */
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

static const struct sni_cert *sni_find(const struct proa_tls_context *ctx,
				       const char *name)
{
	const char *dot = strchr(name, '.');
	size_t i;

	for (i = 0; i < ctx->nsni; i++)
		if (!ctx->sni[i].wildcard &&
		    !strcasecmp(ctx->sni[i].name, name))
			return &ctx->sni[i];
	if (!dot || dot == name)
		return NULL;
	for (i = 0; i < ctx->nsni; i++)
		if (ctx->sni[i].wildcard && !strcasecmp(ctx->sni[i].name, dot))
			return &ctx->sni[i];
	return NULL;
}

/* Servers: switch to the certificate added for the name the client sent. */
static int servername_cb(SSL *s, int *alert, void *arg)
{
	struct proa_tls_context *ctx = arg;
	const char *name = SSL_get_servername(s, TLSEXT_NAMETYPE_host_name);
	const struct sni_cert *c;

	if (!name)
		return SSL_TLSEXT_ERR_NOACK;
	c = sni_find(ctx, name);
	if (c && SSL_set_SSL_CTX(s, c->ssl) != c->ssl) {
		*alert = SSL_AD_INTERNAL_ERROR;
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	}
	return SSL_TLSEXT_ERR_OK;
}

/*
 * A new SSL_CTX with the context's settings: versions, options, session
 * cache, ALPN.  Certificates and verification are the caller's.
 */
static int ssl_ctx_make(struct proa_tls_context *ctx, SSL_CTX **out, char *err,
			size_t errlen)
{
	bool server = ctx->role == PROA_TLS_SERVER;
	SSL_CTX *ssl;
	uint64_t ops;

	ssl = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (!ssl) {
		set_err(err, errlen, "SSL_CTX_new: %s", ssl_reason());
		return ssl_out_of_memory() ? -ENOMEM : -EPROTO;
	}
	if (SSL_CTX_set_min_proto_version(ssl, ctx->min_version) != 1) {
		set_err(err, errlen, "minimum TLS version: %s", ssl_reason());
		goto err_free;
	}
	ops = SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION;
	if (server)
		ops |= SSL_OP_CIPHER_SERVER_PREFERENCE;
	if (ctx->no_session_cache)
		ops |= SSL_OP_NO_TICKET;
	SSL_CTX_set_options(ssl, ops);
	/*
	 * No SSL_MODE_ENABLE_PARTIAL_WRITE: a short write is retried with
	 * the same buffer, as OpenSSL asks.
	 */
	SSL_CTX_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
	/* Never prompt on the terminal for a password. */
	SSL_CTX_set_default_passwd_cb(ssl, passwd_cb);
	SSL_CTX_set_default_passwd_cb_userdata(ssl, NULL);

	if (ctx->no_session_cache) {
		SSL_CTX_set_session_cache_mode(ssl, SSL_SESS_CACHE_OFF);
		if (server)
			SSL_CTX_set_num_tickets(ssl, 0);
	} else {
		SSL_CTX_set_session_cache_mode(ssl,
					       server ? SSL_SESS_CACHE_SERVER
						      : SSL_SESS_CACHE_CLIENT);
		if (!server) {
			SSL_CTX_set_app_data(ssl, ctx);
			SSL_CTX_sess_set_new_cb(ssl, new_session_cb);
		}
	}
	if (server && SSL_CTX_set_session_id_context(
			  ssl, sid_ctx, sizeof(sid_ctx) - 1) != 1) {
		set_err(err, errlen, "session id context: %s", ssl_reason());
		goto err_free;
	}

	if (ctx->alpn) {
		if (server) {
			SSL_CTX_set_alpn_select_cb(ssl, alpn_select_cb, ctx);
		} else if (SSL_CTX_set_alpn_protos(
			       ssl, ctx->alpn, (unsigned int)ctx->alpn_len) !=
			   0) {
			/* Note: 0 is success for this one. */
			set_err(err, errlen, "ALPN: %s", ssl_reason());
			goto err_free;
		}
	}
	*out = ssl;
	return 0;
err_free:
	SSL_CTX_free(ssl);
	return ssl_out_of_memory() ? -ENOMEM : -EPROTO;
}

/* Clients: verification on (or explicitly off) and its roots. */
static int setup_verify(struct proa_tls_context *ctx,
			const struct proa_tls_options *opt, char *err,
			size_t errlen)
{
	int ret;

	if (opt->ca_file) {
		ret = check_path("CA file", opt->ca_file, false, err, errlen);
		if (ret)
			return ret;
	}
	if (opt->ca_dir) {
		ret =
		    check_path("CA directory", opt->ca_dir, true, err, errlen);
		if (ret)
			return ret;
	}
	if (opt->ca_file || opt->ca_dir) {
		if (SSL_CTX_load_verify_locations(ctx->ssl, opt->ca_file,
						  opt->ca_dir) != 1) {
			set_err(err, errlen, "CA %s %s: %s",
				opt->ca_file ? "file" : "directory",
				opt->ca_file ? opt->ca_file : opt->ca_dir,
				ssl_reason());
			return ssl_out_of_memory() ? -ENOMEM : -EPROTO;
		}
	} else if (ctx->role == PROA_TLS_CLIENT && !opt->no_verify &&
		   SSL_CTX_set_default_verify_paths(ctx->ssl) != 1) {
		set_err(err, errlen, "system certificate store: %s",
			ssl_reason());
		return ssl_out_of_memory() ? -ENOMEM : -EPROTO;
	}
	if (ctx->role == PROA_TLS_CLIENT)
		SSL_CTX_set_verify(
		    ctx->ssl,
		    opt->no_verify ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
	return 0;
}

/* A client got a session (TLS 1.3: a ticket, after the handshake): keep
 * the newest per server name. */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct proa_tls_context *ctx =
	    SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	struct client_session *slot = NULL;
	unsigned i;

	if (!ctx || !name)
		return 0; /* not kept: OpenSSL frees it */
	pthread_mutex_lock(&ctx->sess_mu);
	for (i = 0; i < CLIENT_SESSIONS; i++) {
		if (ctx->sessions[i].name &&
		    strcmp(ctx->sessions[i].name, name) == 0) {
			slot = &ctx->sessions[i];
			break;
		}
	}
	if (!slot) {
		slot = &ctx->sessions[ctx->next_session++ % CLIENT_SESSIONS];
		free(slot->name);
		slot->name = strdup(name);
	}
	SSL_SESSION_free(slot->sess);
	slot->sess = slot->name ? sess : NULL;
	pthread_mutex_unlock(&ctx->sess_mu);
	return slot->sess ? 1 : 0; /* 1: the reference is ours now */
}

void proa__tls_context_resume(struct proa_tls_context *ctx, void *ssl,
			      const char *name)
{
	unsigned i;

	if (!name || ctx->no_session_cache)
		return;
	pthread_mutex_lock(&ctx->sess_mu);
	for (i = 0; i < CLIENT_SESSIONS; i++) {
		if (ctx->sessions[i].name && ctx->sessions[i].sess &&
		    strcmp(ctx->sessions[i].name, name) == 0) {
			SSL_set_session(ssl, ctx->sessions[i].sess);
			break;
		}
	}
	pthread_mutex_unlock(&ctx->sess_mu);
}

static void context_destroy(struct proa_tls_context *ctx)
{
	size_t i;

	for (i = 0; i < CLIENT_SESSIONS; i++) {
		free(ctx->sessions[i].name);
		SSL_SESSION_free(ctx->sessions[i].sess);
	}
	pthread_mutex_destroy(&ctx->sess_mu);
	for (i = 0; i < ctx->nsni; i++) {
		SSL_CTX_free(ctx->sni[i].ssl);
		free(ctx->sni[i].name);
	}
	free(ctx->sni);
	SSL_CTX_free(ctx->ssl);
	free(ctx->alpn);
	free(ctx);
}

static int check_options(enum proa_tls_role role,
			 const struct proa_tls_options *opt, int *min_version,
			 char *err, size_t errlen)
{
	if (role != PROA_TLS_CLIENT && role != PROA_TLS_SERVER) {
		set_err(err, errlen, "unknown TLS role %d", (int)role);
		return -EINVAL;
	}
	switch (opt->min_version) {
	case 0:
	case PROA_TLS_1_2:
		*min_version = TLS1_2_VERSION;
		break;
	case PROA_TLS_1_3:
		*min_version = TLS1_3_VERSION;
		break;
	default:
		set_err(err, errlen,
			"minimum TLS version 0x%04x: not TLS 1.2 or 1.3",
			(unsigned)opt->min_version);
		return -EINVAL;
	}
	if (role == PROA_TLS_SERVER && (!opt->cert_file || !opt->key_file)) {
		set_err(err, errlen,
			"a TLS server needs a certificate and a key file");
		return -EINVAL;
	}
	if (!opt->cert_file != !opt->key_file) {
		set_err(err, errlen,
			"a certificate file needs a key file, and the other "
			"way round");
		return -EINVAL;
	}
	if (role == PROA_TLS_SERVER && opt->no_verify) {
		set_err(err, errlen, "no_verify is for TLS clients");
		return -EINVAL;
	}
	return 0;
}

static int context_new(struct proa_tls_context **out, enum proa_tls_role role,
		       const struct proa_tls_options *opt, char *err,
		       size_t errlen)
{
	struct proa_tls_context *ctx;
	int min_version;
	int ret;

	ret = check_options(role, opt, &min_version, err, errlen);
	if (ret)
		return ret;
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx) {
		set_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ctx->refs = 1;
	pthread_mutex_init(&ctx->sess_mu, NULL);
	ctx->role = role;
	ctx->min_version = min_version;
	ctx->no_session_cache = opt->no_session_cache;
	if (opt->alpn) {
		ret = alpn_encode(opt->alpn, &ctx->alpn, &ctx->alpn_len, err,
				  errlen);
		if (ret)
			goto err_free;
	}
	ret = ssl_ctx_make(ctx, &ctx->ssl, err, errlen);
	if (ret)
		goto err_free;
	ret = setup_verify(ctx, opt, err, errlen);
	if (ret)
		goto err_free;
	if (opt->cert_file) {
		ret = load_cert_key(ctx->ssl, opt->cert_file, opt->key_file,
				    opt->key_password, err, errlen);
		if (ret)
			goto err_free;
	}
	if (role == PROA_TLS_SERVER) {
		SSL_CTX_set_tlsext_servername_callback(ctx->ssl, servername_cb);
		SSL_CTX_set_tlsext_servername_arg(ctx->ssl, ctx);
	}
	*out = ctx;
	return 0;
err_free:
	context_destroy(ctx);
	return ret;
}

int proa_tls_context_new(struct proa_tls_context **out, enum proa_tls_role role,
			 const struct proa_tls_options *opt, char *err,
			 size_t errlen)
{
	static const struct proa_tls_options defaults;
	int saved = errno;
	int ret;

	set_err(err, errlen, "%s", "");
	if (!out) {
		set_err(err, errlen, "no place for the context");
		return -EINVAL;
	}
	if (opt && !PROA__RESERVED_ZERO(opt)) {
		set_err(err, errlen, "reserved option fields are not zero");
		return -EINVAL;
	}
	*out = NULL;
	ERR_clear_error();
	ret = context_new(out, role, opt ? opt : &defaults, err, errlen);
	ERR_clear_error();
	errno = saved;
	return ret;
}

/* "*.Example.org" -> ".example.org", wildcard; "a.b" -> "a.b". */
static int sni_name(const char *name, char **out, bool *wildcard, char *err,
		    size_t errlen)
{
	const char *p = name;
	char *s;
	size_t i;

	*wildcard = name[0] == '*' && name[1] == '.';
	if (*wildcard)
		p++;
	if (!*p || strlen(p) > 253 || strchr(p + (*wildcard ? 1 : 0), '*') ||
	    (*wildcard && !p[1])) {
		set_err(err, errlen, "SNI name \"%.64s\": not a host name",
			name);
		return -EINVAL;
	}
	s = strdup(p);
	if (!s) {
		set_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (i = 0; s[i]; i++)
		if (s[i] >= 'A' && s[i] <= 'Z')
			s[i] = (char)(s[i] - 'A' + 'a');
	*out = s;
	return 0;
}

static int add_sni(struct proa_tls_context *ctx, const char *name,
		   const char *cert_file, const char *key_file,
		   const char *key_password, char *err, size_t errlen)
{
	struct sni_cert c = {0};
	struct sni_cert *v;
	size_t i;
	int ret;

	if (ctx->role != PROA_TLS_SERVER) {
		set_err(err, errlen, "SNI certificates are for TLS servers");
		return -EINVAL;
	}
	if (!name || !cert_file || !key_file) {
		set_err(err, errlen,
			"SNI needs a name, a certificate and a key file");
		return -EINVAL;
	}
	ret = sni_name(name, &c.name, &c.wildcard, err, errlen);
	if (ret)
		return ret;
	for (i = 0; i < ctx->nsni; i++) {
		if (ctx->sni[i].wildcard == c.wildcard &&
		    !strcmp(ctx->sni[i].name, c.name)) {
			set_err(err, errlen, "SNI name %s: added twice", name);
			ret = -EINVAL;
			goto err_free;
		}
	}
	ret = ssl_ctx_make(ctx, &c.ssl, err, errlen);
	if (ret)
		goto err_free;
	ret = load_cert_key(c.ssl, cert_file, key_file, key_password, err,
			    errlen);
	if (ret)
		goto err_free;
	v = realloc(ctx->sni, (ctx->nsni + 1) * sizeof(*v));
	if (!v) {
		set_err(err, errlen, "out of memory");
		ret = -ENOMEM;
		goto err_free;
	}
	v[ctx->nsni++] = c;
	ctx->sni = v;
	return 0;
err_free:
	SSL_CTX_free(c.ssl);
	free(c.name);
	return ret;
}

int proa_tls_context_add_sni(struct proa_tls_context *ctx, const char *name,
			     const char *cert_file, const char *key_file,
			     const char *key_password, char *err, size_t errlen)
{
	int saved = errno;
	int ret;

	set_err(err, errlen, "%s", "");
	if (!ctx) {
		set_err(err, errlen, "no TLS context");
		return -EINVAL;
	}
	ERR_clear_error();
	ret =
	    add_sni(ctx, name, cert_file, key_file, key_password, err, errlen);
	ERR_clear_error();
	errno = saved;
	return ret;
}

struct proa_tls_context *proa_tls_context_ref(struct proa_tls_context *ctx)
{
	__atomic_fetch_add(&ctx->refs, 1, __ATOMIC_RELAXED);
	return ctx;
}

void proa_tls_context_free(struct proa_tls_context *ctx)
{
	if (!ctx)
		return;
	if (__atomic_sub_fetch(&ctx->refs, 1, __ATOMIC_ACQ_REL) == 0)
		context_destroy(ctx);
}

void *proa_tls_context_ssl_ctx(struct proa_tls_context *ctx)
{
	return ctx->ssl;
}
