/* SPDX-License-Identifier: MIT */
/*
 * net/tls.c - TLS as a transport over a socket transport, with OpenSSL
 * memory BIOs: ciphertext moves through the socket transport (its ring
 * buffers, its write chunks, its completions), and OpenSSL only turns
 * bytes into bytes.  So every callback still runs on the loop thread, and
 * the socket's water marks, timeouts and close rule hold unchanged.
 *
 *   user protocol  <- data_received(plaintext) --+
 *   TLS transport (vt = tls_vt) -- SSL_write -> net_out BIO -> socket
 *   socket transport -- data_received(ciphertext) -> net_in BIO -> SSL_read
 *
 * The TLS transport is a kind of transport (net_int.h): its base is what
 * the user holds, and its calls about buffers, timeouts and addresses go
 * to the socket transport underneath.
 *
 * The user's factory is called, and connection_made, once the handshake
 * is done; a client's connect future resolves then.  A handshake that
 * fails or times out closes the socket and calls nothing of the user's
 * (a client's future gets PROA_ETLS, PROA_ETLSVERIFY or -ETIMEDOUT).
 *
 * Ends: close() sends close_notify, then closes the socket gracefully;
 * a peer's close_notify is eof_received, then a clean close - unless the
 * protocol's eof_received returns true on TLS 1.3, which lets the side
 * that did not close go on writing (RFC 8446 6.1): then the transport is
 * HALF_PEER until close() sends our close_notify.  TLS 1.2 (RFC 5246
 * 7.2.1: answer close_notify at once, dropping pending writes) always
 * closes.  EOF without close_notify is connection_lost(PROA_ETRUNCATED).
 * Renegotiation (TLS 1.2) is refused by the context and a peer that tries
 * it is cut off.
 *
 * States (enum tls_state; the public state each one shows in brackets):
 *
 *   HANDSHAKE [OPEN] --handshake done, the user's protocol made--> OPEN
 *   OPEN --the peer's close_notify, eof_received true, TLS 1.3-->
 *        HALF_PEER [HALF_PEER]: writes go on, the socket is not read
 *   OPEN/HALF_PEER --close(), or the peer's close_notify--> CLOSING [CLOSING]
 *        close_notify queued, flushed by the socket transport, which
 *        then shuts its write side and closes (the socket's CLOSING)
 *   HANDSHAKE/OPEN/CLOSING --handshake or record error, timeout, abort,
 *        a refused renegotiation--> FAILED [TEARDOWN]
 *        an alert, if OpenSSL queued one, is sent and the socket closed;
 *        otherwise the socket is aborted
 *   any --the socket's connection_lost--> CLOSED [CLOSED]
 *        the user's connection_lost (if it was made), then freed
 *
 * Writes are gathered: small writes of one iteration are copied into one
 * buffer of up to a record's worth (SEAL_MAX) and encrypted together by
 * the netloop's hook at the end of the iteration (seal_all()), so that a
 * pipeline of small answers becomes a few full records, not one record -
 * header, AEAD pass and tag - per write.  A write that would overflow the
 * buffer seals it first; one of SEAL_MAX or more is encrypted at once, and
 * so is everything gathered once it and the socket's buffer are over the
 * socket's high mark (seal_if_over_high()).
 * close() seals what was gathered before close_notify; abort and failure
 * drop it, as they drop the socket's queue.  The gathered bytes count in
 * the write buffer size.
 *
 * OpenSSL's rules: the error queue is cleared before each call; SSL_write
 * without partial writes always takes all of a write (memory BIOs never
 * block), so there is no retry-with-the-same-buffer state to keep.
 *
 * Thread: loop, everything.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "net_int.h"
#include "proa/tls.h"

#define DEFAULT_HS_TIMEOUT_NS (UINT64_C(60) * 1000 * 1000 * 1000)
/* Gathered plaintext: one full TLS record. */
#define SEAL_MAX 16384

enum tls_state {
	TLS_HANDSHAKE = 0,
	TLS_OPEN,
	TLS_HALF_PEER, /* the peer's close_notify, kept open: writing only */
	TLS_CLOSING,
	TLS_FAILED,
	TLS_CLOSED,
};

struct tls {
	struct proa_transport outer; /* first: what the user sees */
	uint8_t st;		     /* enum tls_state */
	struct proa_protocol inner_p;
	struct proa_transport *inner;
	struct proa_tls_context *ctx;
	SSL *ssl;
	BIO *net_in;  /* ciphertext from the socket, for SSL_read */
	BIO *net_out; /* ciphertext from SSL_write, for the socket */
	proa_protocol_factory factory;
	void *arg;
	struct proa_future *fut; /* client: resolves after the handshake */
	char *errbuf;
	size_t errlen;
	bool server;
	bool upgrade; /* start_tls: the protocol is connected already */
	bool paused;  /* the user paused reading */
	bool held;    /* the socket's write buffer is over its high mark */
	bool choked;  /* ... and our own records filled it more: no reading */
	size_t own;   /* bytes of our own records written while @held */
	bool in_pump; /* pump() is running (re-entry from callbacks) */
	bool reneg;   /* the peer started a renegotiation: FAILED next */
	int err;      /* connection_lost's */
	struct proa_timer hs_timer;
	struct proa_handle resume;
	/* Writes gathered this iteration: SEAL_MAX bytes while any are
	 * gathered, NULL otherwise (an idle connection holds none).  On
	 * nl->sealing exactly while @plen > 0. */
	unsigned char *pend;
	size_t plen;
	struct proa__netloop *nl; /* set at the first gathered write */
	struct proa_link seal_link;
};

static struct tls *of_outer(const struct proa_transport *t)
{
	return proa_container_of(t, struct tls, outer);
}

static const enum proa_transport_state shown[] = {
    [TLS_HANDSHAKE] = PROA_TS_OPEN, /* nobody holds it yet */
    [TLS_OPEN] = PROA_TS_OPEN,	     [TLS_HALF_PEER] = PROA_TS_HALF_PEER,
    [TLS_CLOSING] = PROA_TS_CLOSING, [TLS_FAILED] = PROA_TS_TEARDOWN,
    [TLS_CLOSED] = PROA_TS_CLOSED,
};

/* Every transition, with the public state it shows (traced). */
static void set_st(struct tls *x, enum tls_state st)
{
	x->st = (uint8_t)st;
	if (x->outer.state != shown[st])
		proa__transport_set_state(&x->outer, shown[st]);
}

static struct tls *of_inner(struct proa_protocol *p)
{
	return proa_container_of(p, struct tls, inner_p);
}

/* Say why the handshake failed, in words, for the client's caller. */
static int handshake_error(struct tls *x)
{
	long v = SSL_get_verify_result(x->ssl);
	unsigned long e = ERR_peek_last_error();
	char why[256];
	int ret;

	if (!x->server && v != X509_V_OK) {
		snprintf(why, sizeof(why), "certificate verify failed: %s",
			 X509_verify_cert_error_string(v));
		ret = PROA_ETLSVERIFY;
	} else {
		snprintf(why, sizeof(why), "TLS handshake failed: %s",
			 e ? ERR_reason_error_string(e) : "connection closed");
		ret = PROA_ETLS;
	}
	if (x->errbuf && x->errlen)
		snprintf(x->errbuf, x->errlen, "%s", why);
	proa__log(PROA_LOG_DEBUG, "tls %p: %s", (void *)x, why);
	ERR_clear_error();
	return ret;
}

static int flush_out(struct tls *x);

/* Forget the gathered plaintext (abort, failure, the end). */
static void drop_gathered(struct tls *x)
{
	if (x->plen > 0)
		proa_list_del(&x->seal_link);
	free(x->pend);
	x->pend = NULL;
	x->plen = 0;
}

/* The handshake or the protocol failed and OpenSSL queued an alert: send
 * it, then close (an abort would drop it and the peer would see a bare
 * EOF). */
static void fail_alert(struct tls *x, int err)
{
	if (x->err == 0)
		x->err = err;
	if (x->st >= TLS_FAILED || !x->inner)
		return;
	set_st(x, TLS_FAILED);
	if (flush_out(x) < 0 || proa_transport_close(x->inner) < 0)
		proa_transport_abort(x->inner);
}

static void fail(struct tls *x, int err)
{
	if (x->err == 0)
		x->err = err;
	drop_gathered(x);
	if (x->st < TLS_FAILED)
		set_st(x, TLS_FAILED);
	if (x->inner)
		proa_transport_abort(x->inner);
}

static int seal(struct tls *x);

/*
 * Gathered bytes stay gathered only while they and the socket's buffer
 * are under its high mark.  Beyond it they are sealed at once, so the
 * socket's own buffer crosses the mark and owes the protocol its
 * pause_writing and resume_writing: a protocol that saw
 * write_buffer_size() over the mark waits for that resume (proa-httpd
 * stops answering a pipeline there), and it must come.
 */
static int seal_if_over_high(struct tls *x)
{
	size_t high, low;

	if (x->plen == 0 || !x->inner)
		return 0;
	proa__transport_limits(x->inner, &high, &low);
	if (x->plen + proa_transport_write_buffer_size(x->inner) <= high)
		return 0;
	return seal(x);
}

/* Move what OpenSSL wrote to the socket transport. */
static int flush_out(struct tls *x)
{
	unsigned char buf[16384];
	int n, ret;

	while ((n = BIO_read(x->net_out, buf, (int)sizeof(buf))) > 0) {
		ret = proa_transport_write(x->inner, buf, (size_t)n);
		if (ret < 0)
			return ret;
	}
	return seal_if_over_high(x);
}

static void handshake_done(struct tls *x)
{
	struct proa_protocol *p;

	set_st(x, TLS_OPEN);
	proa_timer_cancel(&x->hs_timer);
	p = x->factory(x->arg, &x->outer);
	if (!p || !p->ops || !p->ops->data_received) {
		fail(x, -ECONNREFUSED);
		return;
	}
	x->outer.proto = p;
	x->outer.made = true;
	if (p->ops->connection_made && !x->upgrade)
		p->ops->connection_made(p, &x->outer);
	if (x->fut) {
		proa_future_set_canceller(x->fut, NULL, NULL);
		proa_future_set_result(x->fut, 0, &x->outer);
		x->fut = NULL;
	}
}

static void close_outer(struct tls *x);

/* Bytes of our own records written while the socket's buffer is over its
 * high mark, past which reading from the socket stops until it drains. */
#define OWN_MAX ((size_t)16384)

/*
 * Records read can make OpenSSL write records of its own, with no write of
 * the user's: a KeyUpdate that asks for one back, an alert.  A peer that
 * sent those without end and never read grew the socket's buffer without
 * bound (about 28 bytes per KeyUpdate), the user having no write to hold
 * back.  So while the buffer is over its high mark (@held), what OpenSSL
 * has just written on its own is counted, and past OWN_MAX the socket is
 * not read until the buffer is back under its low mark (in_resume()).
 * Only our own records count: a peer that streams data while we stream
 * ours is read on, as before, or two such peers would wait on each other.
 */
static void choke_if_own(struct tls *x)
{
	x->own += (size_t)BIO_ctrl_pending(x->net_out);
	if (x->own > OWN_MAX && !x->choked) {
		x->choked = true;
		(void)proa_transport_pause_reading(x->inner);
	}
}

/*
 * The peer's close_notify: a clean end of its data.  A protocol that wants
 * to go on writing (eof_received true) may on TLS 1.3, where close_notify
 * closes one direction only; the socket is not read from then on: nothing
 * valid can follow, and what does stays in the kernel instead of growing
 * OpenSSL's buffer.  TLS 1.2 closes, as RFC 5246 says.
 */
static void peer_closed(struct tls *x)
{
	const struct proa_protocol_ops *ops = x->outer.proto->ops;
	bool keep = ops->eof_received && ops->eof_received(x->outer.proto);

	if (x->st != TLS_OPEN)
		return; /* eof_received closed or aborted it */
	if (keep && SSL_version(x->ssl) >= TLS1_3_VERSION) {
		set_st(x, TLS_HALF_PEER);
		proa_handle_cancel(&x->resume);
		(void)proa_transport_pause_reading(x->inner);
		return;
	}
	close_outer(x);
}

/* Run OpenSSL on what came in: the handshake, then records. */
static void pump(struct tls *x)
{
	unsigned char buf[16384];
	int n, e;

	if (x->in_pump || x->st >= TLS_FAILED)
		return;
	x->in_pump = true;
	if (x->st == TLS_HANDSHAKE) {
		ERR_clear_error();
		n = SSL_do_handshake(x->ssl);
		if (flush_out(x) < 0) {
			fail(x, -EPIPE);
			goto out;
		}
		if (n != 1) {
			e = SSL_get_error(x->ssl, n);
			if (e != SSL_ERROR_WANT_READ)
				fail_alert(x, handshake_error(x));
			goto out;
		}
		handshake_done(x);
	}
	while (!x->paused && x->st == TLS_OPEN) {
		ERR_clear_error();
		n = SSL_read(x->ssl, buf, (int)sizeof(buf));
		if (x->reneg) {
			proa__log(PROA_LOG_DEBUG,
				  "tls %p: peer tried to renegotiate",
				  (void *)x);
			fail_alert(x, PROA_ETLS);
			goto out;
		}
		if (n > 0) {
			x->outer.proto->ops->data_received(x->outer.proto, buf,
							   (size_t)n);
			continue;
		}
		e = SSL_get_error(x->ssl, n);
		/* Post-handshake messages (tickets, key updates) may need
		 * an answer. */
		if (x->held)
			choke_if_own(x);
		if (flush_out(x) < 0) {
			fail(x, -EPIPE);
			goto out;
		}
		if (e == SSL_ERROR_WANT_READ)
			break;
		if (e == SSL_ERROR_ZERO_RETURN) {
			peer_closed(x);
			break;
		}
		fail_alert(x, PROA_ETLS);
		break;
	}
out:
	x->in_pump = false;
}

/* ---- the socket transport's protocol ------------------------------------ */

static void in_made(struct proa_protocol *p, struct proa_transport *t)
{
	struct tls *x = of_inner(p);

	x->inner = t;
	if (!x->server)
		pump(x); /* the ClientHello */
}

static void in_data(struct proa_protocol *p, const void *data, size_t len)
{
	struct tls *x = of_inner(p);

	if (BIO_write(x->net_in, data, (int)len) != (int)len) {
		fail(x, -ENOMEM);
		return;
	}
	pump(x);
}

static bool in_eof(struct proa_protocol *p)
{
	struct tls *x = of_inner(p);

	/* The last records may have come with the FIN. */
	pump(x);
	if (x->st == TLS_HALF_PEER)
		return true; /* their close_notify came with it: write on */
	if (x->st == TLS_HANDSHAKE)
		x->err = x->err ? x->err : handshake_error(x);
	else if (!(SSL_get_shutdown(x->ssl) & SSL_RECEIVED_SHUTDOWN))
		x->err = x->err ? x->err : PROA_ETRUNCATED;
	return false; /* the socket closes; connection_lost follows */
}

static void in_lost(struct proa_protocol *p, int err)
{
	struct tls *x = of_inner(p);
	struct proa_protocol *up = x->outer.proto;
	int e = x->err ? x->err : err;

	x->inner = NULL;
	drop_gathered(x);
	set_st(x, TLS_CLOSED);
	proa_timer_cancel(&x->hs_timer);
	proa_handle_cancel(&x->resume);
	if (x->fut) {
		proa_future_set_canceller(x->fut, NULL, NULL);
		proa_future_set_result(x->fut, e ? e : PROA_ETLS, NULL);
	}
	if (x->outer.made && up->ops->connection_lost)
		up->ops->connection_lost(up, e);
	SSL_free(x->ssl); /* frees both BIOs */
	proa_tls_context_free(x->ctx);
	free(x);
}

static void in_pause(struct proa_protocol *p)
{
	struct tls *x = of_inner(p);

	x->held = true;
	x->own = 0;
	if (x->outer.made && x->outer.proto->ops->pause_writing)
		x->outer.proto->ops->pause_writing(x->outer.proto);
}

static void in_resume(struct proa_protocol *p)
{
	struct tls *x = of_inner(p);

	x->held = false;
	if (x->choked) {
		x->choked = false;
		if (!x->paused && x->st == TLS_OPEN)
			(void)proa_transport_resume_reading(x->inner);
	}
	if (x->outer.made && x->outer.proto->ops->resume_writing)
		x->outer.proto->ops->resume_writing(x->outer.proto);
}

static const struct proa_protocol_ops inner_ops = {
    .connection_made = in_made,
    .data_received = in_data,
    .eof_received = in_eof,
    .connection_lost = in_lost,
    .pause_writing = in_pause,
    .resume_writing = in_resume,
};

static struct proa_protocol *inner_factory(void *arg, struct proa_transport *t)
{
	(void)t;
	return &((struct tls *)arg)->inner_p;
}

/* ---- the transport the user sees ---------------------------------------- */

/* Encrypt @len bytes (records of up to 16 KiB) and hand them to the
 * socket. */
static int encrypt_out(struct tls *x, const void *data, size_t len)
{
	ERR_clear_error();
	if (SSL_write(x->ssl, data, (int)len) != (int)len) {
		fail(x, PROA_ETLS);
		return PROA_ETLS;
	}
	return flush_out(x);
}

/* Encrypt what was gathered; the buffer stays for more. */
static int seal(struct tls *x)
{
	size_t n = x->plen;

	if (n == 0)
		return 0;
	proa_list_del(&x->seal_link);
	x->plen = 0;
	return encrypt_out(x, x->pend, n);
}

/* The netloop's hook, at the end of each iteration: every transport's
 * gathered writes become records, and the buffers go back to malloc. */
static void seal_all(struct proa__netloop *nl)
{
	struct tls *x;
	int ret;

	while (!proa_list_empty(&nl->sealing)) {
		x = proa_container_of(nl->sealing.next, struct tls, seal_link);
		ret = seal(x);
		free(x->pend);
		x->pend = NULL;
		/* No caller to tell: the connection fails (an abort; its
		 * connection_lost comes later, never inside). */
		if (ret < 0 && x->st < TLS_FAILED)
			fail(x, ret);
	}
}

/* Copy @len bytes (at most what is left of SEAL_MAX) after the gathered
 * ones, and be sealed at the end of the iteration. */
static int gather(struct tls *x, const void *data, size_t len)
{
	if (!x->nl && (x->nl = proa__netloop_peek(x->outer.loop)) != NULL)
		x->nl->seal = seal_all;
	if (!x->nl) /* cannot be: the socket underneath made it */
		return encrypt_out(x, data, len);
	if (!x->pend && !(x->pend = malloc(SEAL_MAX)))
		return -ENOMEM;
	if (x->plen == 0)
		proa_list_add_tail(&x->nl->sealing, &x->seal_link);
	memcpy(x->pend + x->plen, data, len);
	x->plen += len;
	return seal_if_over_high(x);
}

static int t_write(struct proa_transport *t, const void *data, size_t len)
{
	struct tls *x = of_outer(t);
	int ret;

	if (!data && len > 0)
		return -EINVAL;
	if (x->st != TLS_OPEN && x->st != TLS_HALF_PEER)
		return -EPIPE;
	if (len == 0)
		return 0;
	if (len > INT32_MAX)
		return -EINVAL;
	if (x->plen + len <= SEAL_MAX)
		return gather(x, data, len);
	/* What was gathered goes first. */
	ret = seal(x);
	if (ret < 0)
		return ret;
	if (len < SEAL_MAX)
		return gather(x, data, len);
	return encrypt_out(x, data, len);
}

static int t_write_eof(struct proa_transport *t)
{
	(void)t;
	/* Our close_notify would end both directions on TLS 1.2, and the
	 * version is not the caller's to know: close() ends ours. */
	return -EOPNOTSUPP;
}

static bool t_can_write_eof(const struct proa_transport *t)
{
	(void)t;
	return false;
}

static void close_outer(struct tls *x)
{
	if (x->st >= TLS_CLOSING)
		return;
	/* The gathered writes go before close_notify (a failure here is
	 * the socket's, which then ends the connection anyway). */
	(void)seal(x);
	if (x->st >= TLS_FAILED)
		return;
	set_st(x, TLS_CLOSING);
	ERR_clear_error();
	SSL_shutdown(x->ssl); /* queues close_notify */
	flush_out(x);
	proa_transport_close(x->inner); /* sent, then the socket closes */
}

static int t_close(struct proa_transport *t)
{
	close_outer(of_outer(t));
	return 0;
}

static int t_abort(struct proa_transport *t)
{
	fail(of_outer(t), -ECONNABORTED);
	return 0;
}

static int t_pause_reading(struct proa_transport *t)
{
	struct tls *x = of_outer(t);

	if (x->st >= TLS_CLOSING)
		return -EPIPE;
	x->paused = true;
	proa_handle_cancel(&x->resume);
	if (x->st == TLS_HALF_PEER)
		return 0; /* the socket is not read any more */
	return proa_transport_pause_reading(x->inner);
}

static void resume_run(void *arg)
{
	pump(arg);
}

static int t_resume_reading(struct proa_transport *t)
{
	struct tls *x = of_outer(t);

	if (x->st >= TLS_CLOSING)
		return -EPIPE;
	if (!x->paused)
		return 0;
	x->paused = false;
	if (x->st == TLS_HALF_PEER)
		return 0; /* nothing more to read: the socket stays paused */
	/* Records OpenSSL already holds are read from the ready queue,
	 * never inside this call. */
	proa_loop_call_soon(t->loop, &x->resume, resume_run, x);
	if (x->choked)
		return 0; /* until the socket's buffer drains (in_resume) */
	return proa_transport_resume_reading(x->inner);
}

static bool t_is_reading(const struct proa_transport *t)
{
	const struct tls *x = proa_container_of(t, const struct tls, outer);

	return !x->paused && x->st == TLS_OPEN;
}

/* Each piece is gathered (or encrypted) as a write of its own. */
static int t_writev(struct proa_transport *t, const struct iovec *iov,
		    int iovcnt)
{
	int i, ret;

	for (i = 0; i < iovcnt; i++) {
		ret = t_write(t, iov[i].iov_base, iov[i].iov_len);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int t_write_ref(struct proa_transport *t, const void *data, size_t len,
		       void (*release)(void *arg), void *arg)
{
	return proa__transport_write_ref_copy(t, data, len, release, arg);
}

/* Nothing splices into OpenSSL: it encrypts from a mapping. */
static int t_sendfile(struct proa_transport *t, int fd, uint64_t off,
		      size_t len, void (*release)(void *arg), void *arg)
{
	if (len == 0)
		return proa__transport_write_ref_copy(t, "", 0, release, arg);
	return proa__transport_sendfile_mapped(t, fd, off, len, release, arg);
}

/* Buffers, timeouts and the descriptor are the socket's (NULL once it is
 * gone: the public calls answer as for NULL). */
static size_t t_write_buffer_size(const struct proa_transport *t)
{
	const struct tls *x = of_outer(t);

	/* Plaintext gathered and not yet sealed counts, as plaintext. */
	return x->plen + proa_transport_write_buffer_size(x->inner);
}

static int t_set_limits(struct proa_transport *t, size_t high, size_t low)
{
	return proa_transport_set_write_buffer_limits(of_outer(t)->inner, high,
						      low);
}

static void t_limits(const struct proa_transport *t, size_t *high, size_t *low)
{
	proa__transport_limits(of_outer(t)->inner, high, low);
}

static int t_set_timeouts(struct proa_transport *t, uint64_t idle_ns,
			  uint64_t write_ns)
{
	return proa_transport_set_timeouts(of_outer(t)->inner, idle_ns,
					   write_ns);
}

static int t_fd(const struct proa_transport *t)
{
	return proa_transport_fd(of_outer(t)->inner);
}

static const struct proa__transport_vt tls_vt = {
    .name = "tls",
    .write = t_write,
    .writev = t_writev,
    .write_ref = t_write_ref,
    .sendfile = t_sendfile,
    .write_eof = t_write_eof,
    .can_write_eof = t_can_write_eof,
    .close = t_close,
    .abort = t_abort,
    .pause_reading = t_pause_reading,
    .resume_reading = t_resume_reading,
    .is_reading = t_is_reading,
    .write_buffer_size = t_write_buffer_size,
    .set_limits = t_set_limits,
    .limits = t_limits,
    .set_timeouts = t_set_timeouts,
    .fd = t_fd,
};

/* ---- starting ----------------------------------------------------------- */

static void hs_timeout(void *arg)
{
	struct tls *x = arg;

	if (x->errbuf && x->errlen)
		snprintf(x->errbuf, x->errlen, "TLS handshake timed out");
	proa__log(PROA_LOG_DEBUG, "tls %p: handshake timed out", (void *)x);
	fail(x, -ETIMEDOUT);
}

static void fut_cancel(struct proa_future *fut, void *arg)
{
	(void)fut;
	fail(arg, -ECANCELED);
}

static bool is_ip(const char *s)
{
	struct sockaddr_storage ss;
	socklen_t len;

	return proa__parse_numeric(s, 0, &ss, &len) == 0;
}

bool proa__tls_verifies(struct proa_tls_context *ctx)
{
	return SSL_CTX_get_verify_mode(proa_tls_context_ssl_ctx(ctx)) &
	       SSL_VERIFY_PEER;
}

/* Info callback: a handshake starting after the first one is a TLS 1.2
 * renegotiation (TLS 1.3 has none; its post-handshake messages do not
 * count). */
static void info_cb(const SSL *ssl, int where, int ret)
{
	struct tls *x = SSL_get_app_data(ssl);

	(void)ret;
	if ((where & SSL_CB_HANDSHAKE_START) && x && x->st != TLS_HANDSHAKE &&
	    SSL_version(ssl) < TLS1_3_VERSION)
		x->reneg = true;
}

/* A TLS state for @loop, not attached to a socket yet; NULL on failure. */
static struct tls *tls_new(struct proa_loop *loop,
			   const struct proa__tls_args *a,
			   proa_protocol_factory factory, void *arg)
{
	struct tls *x = calloc(1, sizeof(*x));
	SSL_CTX *sctx = a->ctx ? proa_tls_context_ssl_ctx(a->ctx) : NULL;

	if (!x || !sctx)
		goto fail;
	ERR_clear_error();
	x->ssl = SSL_new(sctx);
	x->net_in = BIO_new(BIO_s_mem());
	x->net_out = BIO_new(BIO_s_mem());
	if (!x->ssl || !x->net_in || !x->net_out) {
		BIO_free(x->net_in);
		BIO_free(x->net_out);
		goto fail;
	}
	/* An empty read BIO means "wait for data", not EOF. */
	BIO_set_mem_eof_return(x->net_in, -1);
	SSL_set_bio(x->ssl, x->net_in, x->net_out);
	SSL_set_app_data(x->ssl, x);
	SSL_set_info_callback(x->ssl, info_cb);
	if (a->server) {
		SSL_set_accept_state(x->ssl);
	} else {
		SSL_set_connect_state(x->ssl);
		if (a->hostname && a->hostname[0] && !is_ip(a->hostname)) {
			/* SNI carries names only; an address is checked
			 * against the certificate's IP entries. */
			SSL_set_tlsext_host_name(x->ssl, a->hostname);
			if (SSL_get_verify_mode(x->ssl) & SSL_VERIFY_PEER)
				SSL_set1_host(x->ssl, a->hostname);
			proa__tls_context_resume(a->ctx, x->ssl, a->hostname);
		} else if (a->hostname && a->hostname[0] &&
			   (SSL_get_verify_mode(x->ssl) & SSL_VERIFY_PEER)) {
			X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(x->ssl),
						      a->hostname);
		}
	}
	x->ctx = proa_tls_context_ref(a->ctx);
	x->server = a->server;
	x->factory = factory;
	x->arg = arg;
	x->fut = a->fut;
	x->errbuf = a->errbuf;
	x->errlen = a->errlen;
	x->inner_p.ops = &inner_ops;
	x->outer.vt = &tls_vt;
	x->outer.loop = loop;
	x->outer.state = PROA_TS_OPEN;
	x->st = TLS_HANDSHAKE;
	proa_loop_call_later(loop, &x->hs_timer,
			     a->timeout_ns ? a->timeout_ns
					   : DEFAULT_HS_TIMEOUT_NS,
			     hs_timeout, x);
	if (x->fut)
		proa_future_set_canceller(x->fut, fut_cancel, x);
	return x;
fail:
	if (x)
		SSL_free(x->ssl);
	free(x);
	ERR_clear_error();
	return NULL;
}

/* Undo tls_new() for a TLS state no socket ever carried. */
static void tls_discard(struct tls *x)
{
	proa_timer_cancel(&x->hs_timer);
	if (x->fut)
		proa_future_set_canceller(x->fut, NULL, NULL);
	SSL_free(x->ssl);
	proa_tls_context_free(x->ctx);
	free(x);
}

int proa__tls_open(struct proa_loop *loop, int fd,
		   const struct proa__tls_args *a,
		   const struct proa_transport_options *topt,
		   proa_protocol_factory factory, void *arg,
		   struct proa__conn_owner *owner)
{
	struct tls *x = tls_new(loop, a, factory, arg);
	int ret;

	if (!x) {
		close(fd);
		return -ENOMEM;
	}
	/* The socket transport calls in_made, which starts a client's
	 * handshake; from then on in_lost frees @x. */
	ret =
	    proa__transport_open(loop, fd, topt, inner_factory, x, owner, NULL);
	if (ret < 0) {
		/* @fd is closed; nothing of the user's was called. */
		tls_discard(x);
		return ret;
	}
	return 0;
}

/* ---- start_tls ---------------------------------------------------------- */

static struct proa_protocol *same_protocol(void *arg, struct proa_transport *t)
{
	(void)t;
	return arg;
}

/* @err is written later, by the handshake (tidy cannot see that). */
int proa_transport_start_tls(
    struct proa_transport *t, struct proa_tls_context *ctx, bool server_side,
    const char *server_hostname, uint64_t timeout_ns,
    char *err, // NOLINT(readability-non-const-parameter)
    size_t errlen, struct proa_future *fut)
{
	struct proa__tls_args a = {
	    .ctx = ctx,
	    .server = server_side,
	    .hostname = server_hostname,
	    .timeout_ns = timeout_ns,
	    .errbuf = err,
	    .errlen = errlen,
	    .fut = fut,
	};
	struct tls *x;

	if (!t || !ctx || !fut || fut->priv.loop != t->loop)
		return -EINVAL;
	PROA__LOOP_CHECK(t->loop);
	if (!proa__future_free(fut))
		return -EBUSY;
	/* A socket transport, open both ways.  Bytes still waiting to be
	 * sent in clear go first: TLS records queue behind them (a server
	 * answers "go ahead", then upgrades, in one callback). */
	if (!proa__sock_of(t) || t->state != PROA_TS_OPEN)
		return -EINVAL;
	/* Upgraded already: a second TLS state would take the socket over
	 * from the first, whose timer would then abort a freed socket (a
	 * STARTTLS server that upgrades on every "STARTTLS" line). */
	if (t->proto && t->proto->ops == &inner_ops)
		return -EBUSY;
	if (!server_side && (!server_hostname || !server_hostname[0]) &&
	    proa__tls_verifies(ctx))
		return -EINVAL;
	x = tls_new(t->loop, &a, same_protocol, t->proto);
	if (!x)
		return -ENOMEM;
	x->upgrade = true;
	x->inner = t;
	proa_transport_set_protocol(t, &x->inner_p);
	if (!server_side)
		pump(x);
	return 0;
}

/* ---- what a TLS transport knows ------------------------------------------ */

static struct tls *tls_of(const struct proa_transport *t)
{
	return t && t->vt == &tls_vt ? of_outer(t) : NULL;
}

bool proa_tls_session_reused(const struct proa_transport *t)
{
	struct tls *x = tls_of(t);

	return x && x->outer.made && SSL_session_reused(x->ssl);
}

const char *proa_tls_alpn(const struct proa_transport *t, size_t *len)
{
	struct tls *x = tls_of(t);
	const unsigned char *p = NULL;
	unsigned n = 0;

	if (x && x->outer.made)
		SSL_get0_alpn_selected(x->ssl, &p, &n);
	if (len)
		*len = n;
	return n ? (const char *)p : NULL;
}

const char *proa_tls_version(const struct proa_transport *t)
{
	struct tls *x = tls_of(t);

	return x && x->outer.made ? SSL_get_version(x->ssl) : NULL;
}

int proa_tls_key_update(struct proa_transport *t, bool peer_too)
{
	struct tls *x = tls_of(t);
	int ret;

	if (!x)
		return -EINVAL;
	PROA__LOOP_CHECK(t->loop);
	if (x->st != TLS_OPEN)
		return -EPIPE;
	if (SSL_version(x->ssl) < TLS1_3_VERSION)
		return -EOPNOTSUPP;
	/* What was written before the call leaves under the old keys. */
	ret = seal(x);
	if (ret < 0)
		return ret;
	ERR_clear_error();
	/* Queued by OpenSSL; SSL_do_handshake sends it now. */
	if (SSL_key_update(x->ssl, peer_too
				       ? SSL_KEY_UPDATE_REQUESTED
				       : SSL_KEY_UPDATE_NOT_REQUESTED) != 1 ||
	    SSL_do_handshake(x->ssl) != 1) {
		ERR_clear_error();
		return PROA_ETLS;
	}
	return flush_out(x);
}
