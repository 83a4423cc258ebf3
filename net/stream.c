/* SPDX-License-Identifier: MIT */
/*
 * net/stream.c - buffered streams (proa/net.h): asyncio's StreamReader
 * and StreamWriter as one protocol.  What arrives is kept in one
 * contiguous buffer; reads are futures that complete from it.
 *
 * Threads: every function here is "Thread: loop" - the thread that runs
 * the stream's loop.  The stream calls no user code: it only resolves
 * futures with proa_future_set_result(), whose callbacks run later from
 * the ready queue, never inside the call that resolved them.
 *
 * Life of a stream:
 *
 *   NEW --connection_made--> LIVE --connection_lost--> LOST
 *   NEW --proa_stream_free--> freed (a connect that failed)
 *   LIVE --proa_stream_free--> abort, freed at connection_lost
 *   LOST: freed at once, unless proa_stream_hold() was called; then
 *         proa_stream_free() frees it, and reads take what is buffered.
 *
 * Whoever does not hold the stream must not touch it once a future of it
 * has failed with a connection error: it may be gone by then.
 *
 * Flow control: reading is paused when @limit bytes are buffered and
 * resumed when reads bring it below @limit / 2, or at once when a read
 * waits for bytes that are not there (else a read_until whose delimiter
 * has not come would wait for ever on a paused socket).  The buffer may
 * pass @limit by one receive buffer at most (proa_net_set_buffers(),
 * 16 KiB by default): the piece that crossed it; what the transport
 * received after the pause it holds back, and hands over a buffer's worth
 * at a time once reading resumes.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net_int.h"
#include "proa/errno.h"

#define DEFAULT_LIMIT ((size_t)64 * 1024)
#define MAX_LIMIT (1u << 30)
#define MIN_CAP 4096u
/* Futures carry an int32_t: no read may promise more than this. */
#define MAX_READ ((size_t)INT32_MAX)

enum read_kind {
	R_NONE = 0,
	R_EXACTLY, /* read_exactly: copy as it comes, until @rn */
	R_UNTIL,   /* read_until: wait for @delim in the buffer */
	R_SOME,	   /* read: anything, at least one byte or EOF */
};

struct proa_stream {
	struct proa_protocol p;
	struct proa_transport *t; /* NULL before connection_made, after lost */
	struct proa_loop *loop;	  /* set by connection_made */
	size_t limit;

	/* Received, not yet read: @len bytes at @buf + @head. */
	unsigned char *buf;
	size_t head, len, cap;

	bool made;     /* connection_made came */
	bool lost;     /* connection_lost came */
	bool eof;      /* no more bytes will arrive (EOF or lost) */
	bool held;     /* proa_stream_hold(): freed by proa_stream_free */
	bool free_req; /* proa_stream_free() while live: free when lost */
	bool rpaused;  /* we paused the transport's reading */
	bool wpaused;  /* between pause_writing and resume_writing */
	int err;       /* the connection's error: every later read fails */

	/* The pending read, if @rkind != R_NONE. */
	enum read_kind rkind;
	struct proa_future *rfut;
	unsigned char *rbuf;
	size_t rn;	   /* exactly: n; until and some: the buffer's cap */
	size_t rdone;	   /* exactly: bytes already copied to @rbuf */
	size_t *rgot;	   /* may be NULL */
	const void *delim; /* until */
	size_t dlen;
	size_t scanned; /* until: bytes searched without a match */

	/* The pending drain, if @dfut.  While it waits and the transport
	 * has not paused our writing, the water marks are lowered to the
	 * low one (@marks_tmp), so that the transport tells us - with
	 * pause_writing / resume_writing - when the buffer is back at it. */
	struct proa_future *dfut;
	bool marks_tmp;
	size_t saved_high, saved_low;
	size_t tmp_high, tmp_low;
	struct proa_handle dcheck;
};

/* ---- the buffer --------------------------------------------------------- */

static unsigned char *data(struct proa_stream *s)
{
	return s->buf + s->head;
}

static void consume(struct proa_stream *s, size_t n)
{
	s->head += n;
	s->len -= n;
	if (s->len == 0)
		s->head = 0;
	if (s->scanned > n)
		s->scanned -= n;
	else
		s->scanned = 0;
}

/* Make room for @need more bytes after the data: compact first, grow
 * (doubling) only if that is not enough. */
static int reserve(struct proa_stream *s, size_t need)
{
	unsigned char *p;
	size_t cap;

	if (s->cap - s->head - s->len >= need)
		return 0;
	if (s->head > 0 && s->cap - s->len >= need) {
		memmove(s->buf, data(s), s->len);
		s->head = 0;
		return 0;
	}
	cap = s->cap ? s->cap : MIN_CAP;
	while (cap < s->len + need)
		cap *= 2;
	if (s->head > 0) {
		memmove(s->buf, data(s), s->len);
		s->head = 0;
	}
	p = realloc(s->buf, cap);
	if (!p)
		return -ENOMEM;
	s->buf = p;
	s->cap = cap;
	return 0;
}

static int append(struct proa_stream *s, const void *src, size_t n)
{
	int ret = reserve(s, n);

	if (ret < 0)
		return ret;
	memcpy(data(s) + s->len, src, n);
	s->len += n;
	return 0;
}

/* Put @n bytes back in front of the buffer (a cancelled read_exactly
 * gives back what it had taken, so that cancelling loses nothing). */
static int unread(struct proa_stream *s, const void *src, size_t n)
{
	int ret;

	if (s->head < n) {
		ret = reserve(s, n);
		if (ret < 0)
			return ret;
		memmove(s->buf + n, data(s), s->len);
		s->head = n;
	}
	s->head -= n;
	s->len += n;
	memcpy(data(s), src, n);
	s->scanned = 0;
	return 0;
}

/* ---- flow control ------------------------------------------------------- */

static void update_flow(struct proa_stream *s)
{
	if (!s->t)
		return;
	if (!s->rpaused && s->len >= s->limit) {
		/* -EPIPE: closing, nothing more will be read anyway. */
		if (proa_transport_pause_reading(s->t) == 0)
			s->rpaused = true;
	} else if (s->rpaused &&
		   (s->len < s->limit / 2 || s->rkind != R_NONE)) {
		s->rpaused = false;
		proa_transport_resume_reading(s->t);
	}
}

/* ---- reads -------------------------------------------------------------- */

/* Forget the pending read, then resolve its future (callbacks deferred). */
static void complete(struct proa_stream *s, int32_t res, size_t got)
{
	struct proa_future *fut = s->rfut;

	if (s->rgot)
		*s->rgot = got;
	s->rkind = R_NONE;
	s->rfut = NULL;
	s->rbuf = NULL;
	s->rgot = NULL;
	s->delim = NULL;
	proa_future_set_canceller(fut, NULL, NULL);
	proa_future_set_result(fut, res, NULL);
}

static void serve_exactly(struct proa_stream *s)
{
	size_t k = s->rn - s->rdone;

	if (s->err) {
		complete(s, s->err, s->rdone);
		return;
	}
	/* Copy as it comes: a message larger than the limit still fits,
	 * and the stream's buffer stays small. */
	if (k > s->len)
		k = s->len;
	if (k > 0) {
		memcpy(s->rbuf + s->rdone, data(s), k);
		consume(s, k);
		s->rdone += k;
	}
	if (s->rdone == s->rn)
		complete(s, (int32_t)s->rn, s->rn);
	else if (s->eof)
		complete(s, PROA_EINCOMPLETE, s->rdone);
}

static void serve_until(struct proa_stream *s)
{
	size_t win = s->rn < s->limit ? s->rn : s->limit;
	size_t end = s->len < win ? s->len : win, from = 0;
	unsigned char *hit = NULL;
	size_t n;

	if (s->err) {
		complete(s, s->err, 0);
		return;
	}
	/* Search only what was not searched yet, less a delimiter's
	 * worth that may straddle the old end. */
	if (s->scanned >= s->dlen)
		from = s->scanned - (s->dlen - 1);
	if (end > from && end - from >= s->dlen)
		hit = memmem(data(s) + from, end - from, s->delim, s->dlen);
	if (hit) {
		n = (size_t)(hit - data(s)) + s->dlen;
		memcpy(s->rbuf, data(s), n);
		consume(s, n);
		complete(s, (int32_t)n, n);
		return;
	}
	s->scanned = end;
	if (s->len >= win) {
		/* Not within the window and never will be: nothing is
		 * consumed, the caller decides what to do with the bytes. */
		complete(s, -EMSGSIZE, 0);
	} else if (s->eof) {
		/* As asyncio's IncompleteReadError: the partial bytes are
		 * the caller's now (s->len < win <= cap). */
		n = s->len;
		if (n > 0) {
			memcpy(s->rbuf, data(s), n);
			consume(s, n);
		}
		complete(s, PROA_EINCOMPLETE, n);
	}
}

static void serve_some(struct proa_stream *s)
{
	size_t k = s->len < s->rn ? s->len : s->rn;

	if (s->err) {
		complete(s, s->err, 0);
	} else if (k > 0) {
		memcpy(s->rbuf, data(s), k);
		consume(s, k);
		complete(s, (int32_t)k, k);
	} else if (s->eof) {
		complete(s, 0, 0);
	}
}

/* Complete the pending read if the buffer, EOF or an error allows, then
 * pause or resume reading to match. */
static void serve(struct proa_stream *s)
{
	switch (s->rkind) {
	case R_EXACTLY:
		serve_exactly(s);
		break;
	case R_UNTIL:
		serve_until(s);
		break;
	case R_SOME:
		serve_some(s);
		break;
	case R_NONE:
		break;
	}
	update_flow(s);
}

/* proa_future_cancel() on the pending read: forget it, give back what a
 * read_exactly had taken, and resolve it as cancelled. */
static void read_cancel(struct proa_future *fut, void *arg)
{
	struct proa_stream *s = arg;
	size_t got = 0;

	if (s->rfut != fut)
		return; /* not ours any more; cannot happen */
	if (s->rkind == R_EXACTLY && s->rdone > 0 &&
	    unread(s, s->rbuf, s->rdone) < 0)
		got = s->rdone; /* no memory to give them back: say so */
	complete(s, -ECANCELED, got);
	update_flow(s);
}

/* Checks shared by the reads; 0 when a read may start.  @func: the public
 * function called, for the wrong-thread message. */
static int read_check(struct proa_stream *s, struct proa_future *fut,
		      const char *func)
{
	if (!s || !fut)
		return -EINVAL;
	if (!s->loop)
		return -ENOTCONN; /* no connection yet: nothing to wait on */
	PROA__LOOP_CHECK_AS(s->loop, func);
	if (s->rkind != R_NONE)
		return -EBUSY;
	if (fut->priv.loop != s->loop || proa_future_is_done(fut))
		return -EINVAL;
	/* Another piece of work's (a combinator's output, a bound op's):
	 * taking it over would leave that work pointing at a future its
	 * owner may release. */
	if (!proa__future_free(fut))
		return -EBUSY;
	return 0;
}

static int read_start(struct proa_stream *s, struct proa_future *fut,
		      enum read_kind kind, void *buf, size_t n, size_t *got)
{
	s->rkind = kind;
	s->rfut = fut;
	s->rbuf = buf;
	s->rn = n;
	s->rdone = 0;
	s->rgot = got;
	s->scanned = 0;
	if (got)
		*got = 0;
	proa_future_set_canceller(fut, read_cancel, s);
	serve(s);
	return 0;
}

int proa_stream_read_exactly(struct proa_stream *s, void *buf, size_t n,
			     size_t *got, struct proa_future *fut)
{
	int ret = read_check(s, fut, __func__);

	if (ret < 0)
		return ret;
	if ((!buf && n > 0) || n > MAX_READ)
		return -EINVAL;
	if (n == 0) {
		if (got)
			*got = 0;
		return proa_future_set_result(fut, 0, NULL);
	}
	return read_start(s, fut, R_EXACTLY, buf, n, got);
}

int proa_stream_read_until(struct proa_stream *s, const void *delim,
			   size_t dlen, void *buf, size_t cap, size_t *got,
			   struct proa_future *fut)
{
	int ret = read_check(s, fut, __func__);

	if (ret < 0)
		return ret;
	if (!delim || dlen == 0 || !buf || cap == 0)
		return -EINVAL;
	s->delim = delim;
	s->dlen = dlen;
	return read_start(s, fut, R_UNTIL, buf, cap < MAX_READ ? cap : MAX_READ,
			  got);
}

int proa_stream_read(struct proa_stream *s, void *buf, size_t cap,
		     struct proa_future *fut)
{
	int ret = read_check(s, fut, __func__);

	if (ret < 0)
		return ret;
	if (!buf && cap > 0)
		return -EINVAL;
	if (cap == 0)
		return proa_future_set_result(fut, 0, NULL);
	return read_start(s, fut, R_SOME, buf, cap < MAX_READ ? cap : MAX_READ,
			  NULL);
}

bool proa_stream_at_eof(const struct proa_stream *s)
{
	return s && s->eof && s->len == 0;
}

/* ---- writing and drain -------------------------------------------------- */

int proa_stream_write(struct proa_stream *s, const void *data, size_t len)
{
	if (!s)
		return -EINVAL;
	if (!s->t)
		return s->lost ? -EPIPE : -ENOTCONN;
	return proa_transport_write(s->t, data, len);
}

int proa_stream_close(struct proa_stream *s)
{
	if (!s)
		return -EINVAL;
	if (!s->t)
		return s->lost ? 0 : -ENOTCONN;
	return proa_transport_close(s->t);
}

/* Put back the water marks the drain lowered, unless someone set others
 * meanwhile. */
static void restore_marks(struct proa_stream *s)
{
	struct proa_transport *t = s->t;
	size_t high, low;

	if (!s->marks_tmp)
		return;
	s->marks_tmp = false;
	proa__transport_limits(t, &high, &low);
	if (t && high == s->tmp_high && low == s->tmp_low)
		proa_transport_set_write_buffer_limits(t, s->saved_high,
						       s->saved_low);
}

static void drain_done(struct proa_stream *s, int32_t res)
{
	struct proa_future *fut = s->dfut;

	s->dfut = NULL;
	proa_handle_cancel(&s->dcheck); /* -ENOENT if idle: fine */
	restore_marks(s);
	proa_future_set_canceller(fut, NULL, NULL);
	proa_future_set_result(fut, res, NULL);
}

/* Runs after the transport's own notification, which the lowered marks
 * queued before this (call_soon is FIFO): if that found the buffer
 * already at the mark, it said nothing, and this is the only word. */
static void drain_check(void *arg)
{
	struct proa_stream *s = arg;
	size_t high, low;

	proa__transport_limits(s->t, &high, &low);
	if (s->dfut && s->t && proa_transport_write_buffer_size(s->t) <= low)
		drain_done(s, 0);
	/* Otherwise the transport paused us: resume_writing comes at the
	 * low mark, or connection_lost comes first. */
}

static void drain_cancel(struct proa_future *fut, void *arg)
{
	struct proa_stream *s = arg;

	if (s->dfut == fut)
		drain_done(s, -ECANCELED);
}

int proa_stream_drain(struct proa_stream *s, struct proa_future *fut)
{
	struct proa_transport *t;
	size_t high, low;

	if (!s || !fut)
		return -EINVAL;
	if (!s->loop)
		return -ENOTCONN;
	PROA__LOOP_CHECK(s->loop);
	if (s->dfut)
		return -EBUSY;
	if (fut->priv.loop != s->loop || proa_future_is_done(fut))
		return -EINVAL;
	if (!proa__future_free(fut)) /* see read_check() */
		return -EBUSY;
	t = s->t;
	if (!t) /* lost: a clean close had flushed everything */
		return proa_future_set_result(fut, s->err, NULL);
	s->dfut = fut;
	proa_future_set_canceller(fut, drain_cancel, s);
	proa__transport_limits(t, &high, &low);
	if (proa_transport_write_buffer_size(t) <= low) {
		drain_done(s, 0);
		return 0;
	}
	if (s->wpaused)
		return 0; /* resume_writing comes at the low mark */
	/* Between the marks the transport would never speak: make the low
	 * mark the high one too, until the drain ends.  High 1 with low 0
	 * where low is 0 (0, 0 would mean the defaults). */
	s->saved_high = high;
	s->saved_low = low;
	proa_transport_set_write_buffer_limits(t, low ? low : 1, low);
	proa__transport_limits(t, &s->tmp_high, &s->tmp_low);
	s->marks_tmp = true;
	if (proa_loop_call_soon(s->loop, &s->dcheck, drain_check, s) < 0)
		drain_done(s, 0); /* loop closing: nothing will be sent */
	return 0;
}

/* ---- the protocol ------------------------------------------------------- */

struct proa_stream *proa_stream_of(struct proa_protocol *p)
{
	return p ? proa_container_of(p, struct proa_stream, p) : NULL;
}

static void on_made(struct proa_protocol *p, struct proa_transport *t)
{
	struct proa_stream *s = proa_stream_of(p);

	/* One stream, one connection: a second one is a caller's bug. */
	assert(!s->made);
	s->made = true;
	s->t = t;
	s->loop = proa_transport_loop(t);
}

static void on_data(struct proa_protocol *p, const void *bytes, size_t len)
{
	struct proa_stream *s = proa_stream_of(p);
	int ret;

	ret = append(s, bytes, len);
	if (ret < 0) {
		/* Dropping bytes would corrupt the stream: end it. */
		s->err = ret;
		proa_transport_abort(s->t);
		return;
	}
	serve(s);
}

static bool on_eof(struct proa_protocol *p)
{
	struct proa_stream *s = proa_stream_of(p);

	s->eof = true;
	serve(s);
	/* Keep our write side open, as asyncio's StreamReaderProtocol: the
	 * reader may still answer; proa_stream_close() ends it. */
	return true;
}

static void stream_release(struct proa_stream *s)
{
	free(s->buf);
	free(s);
}

static void on_lost(struct proa_protocol *p, int err)
{
	struct proa_stream *s = proa_stream_of(p);

	s->t = NULL;
	s->lost = true;
	s->eof = true;
	s->rpaused = false;
	s->wpaused = false;
	s->marks_tmp = false; /* the transport is gone with its marks */
	if (s->err == 0)
		s->err = err;
	if (s->dfut)
		drain_done(s, s->err);
	serve(s);
	if (s->free_req || !s->held)
		stream_release(s);
}

static void on_pause_writing(struct proa_protocol *p)
{
	proa_stream_of(p)->wpaused = true;
}

static void on_resume_writing(struct proa_protocol *p)
{
	struct proa_stream *s = proa_stream_of(p);

	s->wpaused = false;
	if (s->dfut)
		drain_done(s, 0);
}

static const struct proa_protocol_ops stream_ops = {
    .connection_made = on_made,
    .data_received = on_data,
    .eof_received = on_eof,
    .connection_lost = on_lost,
    .pause_writing = on_pause_writing,
    .resume_writing = on_resume_writing,
};

/* ---- life --------------------------------------------------------------- */

int proa_stream_new(struct proa_stream **out, size_t limit)
{
	struct proa_stream *s;

	if (!out || limit > MAX_LIMIT)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->p.ops = &stream_ops;
	s->limit = limit ? limit : DEFAULT_LIMIT;
	*out = s;
	return 0;
}

struct proa_protocol *proa_stream_protocol(struct proa_stream *s)
{
	return s ? &s->p : NULL;
}

struct proa_transport *proa_stream_transport(struct proa_stream *s)
{
	return s ? s->t : NULL;
}

void proa_stream_hold(struct proa_stream *s)
{
	if (s)
		s->held = true;
}

/*
 * Not connected (yet, or any more): free now.  Live: fail what is pending
 * now - the caller's futures must not outlive its interest in the stream -
 * then abort; connection_lost frees it.  Must not be called while a
 * connect that will use the stream is still in flight.
 */
void proa_stream_free(struct proa_stream *s)
{
	if (!s)
		return;
	if (!s->t) {
		stream_release(s);
		return;
	}
	PROA__LOOP_CHECK(s->loop);
	s->free_req = true;
	if (s->err == 0)
		s->err = -ECONNABORTED;
	if (s->dfut)
		drain_done(s, s->err);
	if (s->rkind != R_NONE)
		complete(s, s->err, s->rkind == R_EXACTLY ? s->rdone : 0);
	proa_transport_abort(s->t);
}
