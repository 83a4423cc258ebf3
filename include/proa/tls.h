/* SPDX-License-Identifier: MIT */
/*
 * proa/tls.h - TLS contexts (OpenSSL): the configuration that TLS
 * transports are made from.
 *
 * A context holds the role (client or server), the certificates, the
 * verification roots, ALPN and the session cache, with safe defaults:
 * TLS 1.2 minimum (1.3 preferred), no compression, no renegotiation,
 * clients verify the peer against the system store unless told otherwise.
 * Contexts are reference counted, so a transport can keep the one it was
 * made from after the caller has freed it.
 *
 * A context is set up by the thread that made it (proa_tls_context_new,
 * then proa_tls_context_add_sni) and is immutable afterwards: from then on
 * it may be shared by every loop of every thread.
 *
 * This header does not include OpenSSL; proa_tls_context_ssl_ctx() hands
 * out the SSL_CTX * as a void * for callers that want to go further.
 */
#ifndef PROA_TLS_H
#define PROA_TLS_H

#include <stddef.h>

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A TLS context.  Opaque: created by proa_tls_context_new(). */
struct proa_tls_context;

enum proa_tls_role {
	PROA_TLS_CLIENT,
	PROA_TLS_SERVER,
};

/* Protocol versions for proa_tls_options.min_version (wire values). */
#define PROA_TLS_1_2 0x0303
#define PROA_TLS_1_3 0x0304

/*
 * struct proa_tls_options - how to set a context up; all zero means the
 * defaults.  Strings are copied or read during proa_tls_context_new() and
 * need not outlive the call.
 *
 * cert_file, key_file: PEM certificate chain and private key (servers:
 *              required; clients: optional, a client certificate).
 * key_password: password of an encrypted key_file; NULL for none (proa
 *              never prompts on the terminal).
 * ca_file, ca_dir: verification roots (PEM file, or a c_rehash directory).
 *              Clients with neither use the system store.
 * no_verify:   clients: do not verify the server (explicit opt-out).
 * alpn:        comma-separated protocol list in preference order, e.g.
 *              "h2,http/1.1"; each entry 1..255 bytes.  A server picks the
 *              first of its list that the client offers.
 * min_version: 0 (TLS 1.2), PROA_TLS_1_2 or PROA_TLS_1_3.
 * no_session_cache: turn session resumption off.
 */
struct proa_tls_options {
	const char *cert_file;
	const char *key_file;
	const char *key_password;
	const char *ca_file;
	const char *ca_dir;
	bool no_verify;
	const char *alpn;
	int min_version;
	bool no_session_cache;
	/* Must be zero: room for fields a later 0.x adds without changing
	 * the size (README, "ABI"); nonzero is -EINVAL. */
	uint64_t reserved[4];
};

/*
 * proa_tls_context_new - make a TLS context for @role from @opt (NULL: all
 * defaults; a server then has no certificate and fails with -EINVAL).
 *
 * Returns 0 and stores the context (one reference) in @out, or a negative
 * errno and writes what went wrong in words into @err (@errlen bytes,
 * NUL-terminated; @err may be NULL):
 *   -EINVAL       bad options (unknown role or version, bad ALPN list,
 *                 a server without certificate or key),
 *   -ENOENT       a named file or directory does not exist,
 *   -EACCES       a file cannot be read, or the key password is wrong or
 *                 missing,
 *   -EKEYREJECTED the private key does not match the certificate,
 *   -EPROTO       any other OpenSSL failure (the message names it),
 *   -ENOMEM       out of memory.
 * OpenSSL's error queue of the calling thread is left empty.
 *
 * Thread: any.
 */
PROA_API int proa_tls_context_new(struct proa_tls_context **out,
				  enum proa_tls_role role,
				  const struct proa_tls_options *opt, char *err,
				  size_t errlen);

/*
 * proa_tls_context_add_sni - servers: present @cert_file/@key_file
 * (@key_password as in proa_tls_options) to clients that ask for host
 * @name by SNI.  @name is an exact host name ("www.example.org", matched
 * without regard to case) or a wildcard for one label ("*.example.org"
 * matches "a.example.org", not "example.org" nor "a.b.example.org").
 * Exact names win over wildcards; names that match nothing get the
 * context's default certificate.  The new certificate shares the
 * context's settings (versions, ALPN, session cache).
 *
 * Returns 0 or a negative errno as proa_tls_context_new() does (-EINVAL
 * also for a client context, an empty or bad name, or a name added twice).
 *
 * Thread: the set-up thread, before the context is shared.
 */
PROA_API int proa_tls_context_add_sni(struct proa_tls_context *ctx,
				      const char *name, const char *cert_file,
				      const char *key_file,
				      const char *key_password, char *err,
				      size_t errlen);

/*
 * proa_tls_context_ref - take one more reference on @ctx; returns @ctx.
 *
 * Thread: any (atomic).
 */
PROA_API struct proa_tls_context *
proa_tls_context_ref(struct proa_tls_context *ctx);

/*
 * proa_tls_context_free - drop one reference; the last one frees the
 * context.  NULL is ignored.
 *
 * Thread: any (atomic).
 */
PROA_API void proa_tls_context_free(struct proa_tls_context *ctx);

/*
 * proa_tls_context_ssl_ctx - the context's OpenSSL SSL_CTX *, for callers
 * that need a setting proa does not offer.  Change it only during set-up;
 * proa owns it (do not free it).
 *
 * Thread: any.
 */
PROA_API void *proa_tls_context_ssl_ctx(struct proa_tls_context *ctx);

struct proa_transport;
struct proa_future;

/*
 * proa_transport_start_tls - upgrade the connected socket transport @t to
 * TLS (STARTTLS): @t's protocol carries on over the new TLS transport,
 * without a second connection_made; @fut resolves with that transport
 * once the handshake is done (the old @t must not be used from then on),
 * or with the handshake's error (PROA_ETLS, PROA_ETLSVERIFY with the
 * reason in @err, -ETIMEDOUT after @timeout_ns, 0 meaning 60 s).
 * @server_side: which end of the handshake this is.
 * @server_hostname: a client's name to verify; required while the
 * context verifies.
 *
 * Bytes written in clear before the call are sent before the handshake,
 * so a server can answer "go ahead" and upgrade in one callback; bytes
 * that arrive after the call belong to TLS.
 *
 * Return: 0; -EINVAL (not a socket transport, not open both ways, no
 * name to verify); -EBUSY (@fut in use, or @t is being upgraded already);
 * -ENOMEM.
 *
 * Thread: loop.
 */
PROA_API int proa_transport_start_tls(struct proa_transport *t,
				      struct proa_tls_context *ctx,
				      bool server_side,
				      const char *server_hostname,
				      uint64_t timeout_ns, char *err,
				      size_t errlen, struct proa_future *fut);

/*
 * What a TLS transport negotiated (NULL / false for a transport that is
 * not TLS, or before its handshake): whether the session was resumed
 * (clients offer the last session of the same server name), the ALPN
 * protocol (not NUL-terminated: @len bytes), the version ("TLSv1.3").
 *
 * Thread: loop.
 */
PROA_API bool proa_tls_session_reused(const struct proa_transport *t);

/** proa_tls_alpn() - the ALPN protocol @t negotiated, @len bytes (not
 * NUL-terminated), or NULL with *@len 0 (none, not TLS, no handshake). */
PROA_API const char *proa_tls_alpn(const struct proa_transport *t, size_t *len);

/** proa_tls_version() - the TLS version @t negotiated ("TLSv1.3"), or
 * NULL (not TLS, no handshake). */
PROA_API const char *proa_tls_version(const struct proa_transport *t);

/*
 * proa_tls_key_update - TLS 1.3: send a KeyUpdate now (new traffic keys
 * for what we send), and with @peer_too ask the peer to update its own.
 * A peer's KeyUpdate is answered by the transport by itself.
 *
 * Return: 0; -EINVAL (not a TLS transport); -EPIPE (handshake not done,
 * or closing); -EOPNOTSUPP (TLS 1.2); PROA_ETLS.
 *
 * Thread: loop.
 */
PROA_API int proa_tls_key_update(struct proa_transport *t, bool peer_too);

#ifdef __cplusplus
}
#endif

#endif /* PROA_TLS_H */
