/* SPDX-License-Identifier: MIT */
/*
 * tests/kernel/net/test_stream.c - buffered streams (proa_stream_*) on
 * loopback with real sockets: read_exactly of a 1 MiB message written in
 * odd pieces, read_until lines whole and split, EOF in the middle of a
 * read (PROA_EINCOMPLETE), -EMSGSIZE with the bytes kept, the limit
 * pausing reading under a 4 MiB sender, -EBUSY for a second read, cancel,
 * drain, a reset under a pending read, and the stream's lifetime (freed
 * after connection_lost, or held and freed by proa_stream_free).
 *
 * The server's factory makes streams, usually wrapped in a "spy" protocol
 * that forwards every callback to the stream and counts what it passed
 * on, so a test can tell how much the stream holds.  Clients are plain
 * proa transports, raw sockets where a test needs a reset, or streams.
 * No sleeps: the loop is driven one iteration at a time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/net_int.h"
#include "proa_test.h"

#define MAX_ITER 20000000u

/* Iterate until @expr holds (proa_test.h). */
#define DRIVE(loop, expr) PROA_TEST_DRIVE(loop, expr, MAX_ITER)

#define pat proa_test_pattern

/* ---- the server side: streams, each behind a spy ------------------------- */

struct spy {
	struct proa_protocol p;
	struct proa_stream *s;
	struct proa_transport *t;
	bool made, lost;
	int err;
	uint64_t rx;	 /* bytes passed on to the stream */
	unsigned paused; /* data_received after which reading was paused */
	struct spy *next;
};

static struct spy *spy_of(struct proa_protocol *p)
{
	return proa_container_of(p, struct spy, p);
}

static struct proa_protocol *inner(struct spy *sp)
{
	return proa_stream_protocol(sp->s);
}

static void spy_made(struct proa_protocol *p, struct proa_transport *t)
{
	struct spy *sp = spy_of(p);

	sp->made = true;
	sp->t = t;
	inner(sp)->ops->connection_made(inner(sp), t);
}

static void spy_data(struct proa_protocol *p, const void *d, size_t len)
{
	struct spy *sp = spy_of(p);

	sp->rx += len;
	inner(sp)->ops->data_received(inner(sp), d, len);
	if (!proa_transport_is_reading(sp->t))
		sp->paused++;
}

static bool spy_eof(struct proa_protocol *p)
{
	struct spy *sp = spy_of(p);

	return inner(sp)->ops->eof_received(inner(sp));
}

static void spy_lost(struct proa_protocol *p, int err)
{
	struct spy *sp = spy_of(p);

	assert_false(sp->lost);
	inner(sp)->ops->connection_lost(inner(sp), err);
	sp->lost = true;
	sp->err = err;
	sp->t = NULL;
}

static void spy_pause_w(struct proa_protocol *p)
{
	struct spy *sp = spy_of(p);

	inner(sp)->ops->pause_writing(inner(sp));
}

static void spy_resume_w(struct proa_protocol *p)
{
	struct spy *sp = spy_of(p);

	inner(sp)->ops->resume_writing(inner(sp));
}

static const struct proa_protocol_ops spy_ops = {
    .connection_made = spy_made,
    .data_received = spy_data,
    .eof_received = spy_eof,
    .connection_lost = spy_lost,
    .pause_writing = spy_pause_w,
    .resume_writing = spy_resume_w,
};

/* A server factory's argument. @bare: return the stream itself, with no
 * spy (its record still lists the stream, but sees no callback). */
struct sfarm {
	size_t limit;
	bool hold;
	bool bare;
	unsigned made;
	struct spy *spies;
};

static struct proa_protocol *sfarm_make(void *arg, struct proa_transport *t)
{
	struct sfarm *f = arg;
	struct spy *sp = calloc(1, sizeof(*sp));

	(void)t;
	assert_non_null(sp);
	assert_res(proa_stream_new(&sp->s, f->limit), 0);
	if (f->hold)
		proa_stream_hold(sp->s);
	sp->p.ops = &spy_ops;
	sp->next = f->spies;
	f->spies = sp;
	f->made++;
	return f->bare ? proa_stream_protocol(sp->s) : &sp->p;
}

static void sfarm_free(struct sfarm *f)
{
	struct spy *sp;

	while ((sp = f->spies) != NULL) {
		f->spies = sp->next;
		free(sp);
	}
}

/* ---- the client side: a plain transport --------------------------------- */

struct peer {
	struct proa_protocol p;
	struct proa_transport *t;
	bool made, lost, eof, wpaused;
	int err;
	uint8_t *rx; /* everything received */
	size_t rxlen;
};

static struct peer *peer_of(struct proa_protocol *p)
{
	return proa_container_of(p, struct peer, p);
}

static void p_made(struct proa_protocol *p, struct proa_transport *t)
{
	peer_of(p)->made = true;
	peer_of(p)->t = t;
}

static void p_data(struct proa_protocol *p, const void *d, size_t len)
{
	struct peer *pe = peer_of(p);

	pe->rx = realloc(pe->rx, pe->rxlen + len);
	assert_non_null(pe->rx);
	memcpy(pe->rx + pe->rxlen, d, len);
	pe->rxlen += len;
}

static bool p_eof(struct proa_protocol *p)
{
	peer_of(p)->eof = true;
	return false;
}

static void p_lost(struct proa_protocol *p, int err)
{
	struct peer *pe = peer_of(p);

	assert_false(pe->lost);
	pe->lost = true;
	pe->err = err;
	pe->t = NULL;
}

static void p_pause_w(struct proa_protocol *p)
{
	peer_of(p)->wpaused = true;
}

static void p_resume_w(struct proa_protocol *p)
{
	peer_of(p)->wpaused = false;
}

static const struct proa_protocol_ops peer_ops = {
    .connection_made = p_made,
    .data_received = p_data,
    .eof_received = p_eof,
    .connection_lost = p_lost,
    .pause_writing = p_pause_w,
    .resume_writing = p_resume_w,
};

static struct proa_protocol *peer_make(void *arg, struct proa_transport *t)
{
	(void)t;
	return &((struct peer *)arg)->p;
}

static struct proa_protocol *stream_make(void *arg, struct proa_transport *t)
{
	(void)t;
	return proa_stream_protocol(arg);
}

/* ---- helpers ------------------------------------------------------------ */

static struct proa_server *listen_local(struct proa_loop *loop,
					const struct proa_server_options *opt,
					struct sfarm *f)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	struct proa_server *s = NULL;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_res(proa_tcp_listen_addr(&s, loop, (struct sockaddr *)&a,
					sizeof(a), opt, sfarm_make, f),
		   0);
	assert_non_null(s);
	return s;
}

static void close_server(struct proa_loop *loop, struct proa_server *s)
{
	struct proa_future done;

	proa_future_init(&done, loop);
	assert_res(proa_server_close(s, &done), 0);
	DRIVE(loop, proa_future_is_done(&done));
	assert_res(proa_future_result(&done, NULL), 0);
	assert_res(proa_future_fini(&done), 0);
}

/* Connect with @factory(@arg) and wait; return the transport. */
static struct proa_transport *
connect_with(struct proa_loop *loop, uint16_t port,
	     const struct proa_connect_options *opt,
	     proa_protocol_factory factory, void *arg)
{
	struct proa_future fut;
	void *v = NULL;

	proa_future_init(&fut, loop);
	assert_res(
	    proa_tcp_connect(loop, "127.0.0.1", port, opt, factory, arg, &fut),
	    0);
	DRIVE(loop, proa_future_is_done(&fut));
	assert_res(proa_future_result(&fut, &v), 0);
	assert_non_null(v);
	assert_res(proa_future_fini(&fut), 0);
	return v;
}

/* A plain proa client, connected; and the server's spy for it. */
static struct spy *pair(struct proa_loop *loop, struct proa_server *s,
			struct sfarm *sf, struct peer *c)
{
	struct spy *before = sf->spies;

	memset(c, 0, sizeof(*c));
	c->p.ops = &peer_ops;
	connect_with(loop, proa_server_port(s), NULL, peer_make, c);
	assert_true(c->made);
	DRIVE(loop, sf->spies != before && (sf->bare || sf->spies->made));
	return sf->spies;
}

/* A raw blocking socket connected to @port (accept happens later, on the
 * loop: the kernel completes the handshake from the backlog). */
static int raw_connect(uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons(port);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static void raw_reset(int fd)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)),
			 0);
	close(fd);
}

/* Wait for @fut, return its result and release it. */
static int wait_fut(struct proa_loop *loop, struct proa_future *fut)
{
	int res;

	DRIVE(loop, proa_future_is_done(fut));
	res = proa_future_result(fut, NULL);
	assert_res(proa_future_fini(fut), 0);
	return res;
}

/* The server closes its stream and both ends go. */
static void close_both(struct proa_loop *loop, struct spy *sp, struct peer *c)
{
	assert_res(proa_stream_close(sp->s), 0);
	DRIVE(loop, sp->lost && c->lost);
}

#define setup proa_test_fds_setup
#define teardown_check proa_test_fds_check

/* ---- tests -------------------------------------------------------------- */

/* 1 MiB written in odd pieces arrives whole and byte-exact in one
 * read_exactly, through a stream whose limit is 64 KiB. */
static void test_stream_read_exactly_1mib_byte_exact(void **state)
{
	static const size_t pieces[] = {1, 3, 7, 4093, 65537, 13, 1021, 250000};
	struct proa_loop *loop = proa_test_loop_new();
	struct sfarm sf = {.limit = 0};
	struct proa_server *s = listen_local(loop, NULL, &sf);
	const size_t total = 1u << 20;
	uint8_t *msg = malloc(total), *got = calloc(1, total);
	struct proa_future fut;
	struct peer c;
	struct spy *sp;
	size_t off = 0, k, n = 0, i;

	(void)state;
	assert_non_null(msg);
	assert_non_null(got);
	for (i = 0; i < total; i++)
		msg[i] = pat(i);
	sp = pair(loop, s, &sf, &c);
	proa_future_init(&fut, loop);
	assert_res(proa_stream_read_exactly(sp->s, got, total, &n, &fut), 0);
	for (i = 0; off < total; i++) {
		k = pieces[i % (sizeof(pieces) / sizeof(pieces[0]))];
		if (k > total - off)
			k = total - off;
		assert_res(proa_transport_write(c.t, msg + off, k), 0);
		off += k;
		/* a few pieces per iteration, so they travel apart */
		if (i % 3 == 0)
			assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	}
	assert_int_equal(wait_fut(loop, &fut), (int)total);
	assert_int_equal(n, total);
	assert_memory_equal(got, msg, total);
	assert_false(proa_stream_at_eof(sp->s));
	close_both(loop, sp, &c);
	assert_res(c.err, 0);
	close_server(loop, s);
	proa_test_loop_close(loop);
	sfarm_free(&sf);
	free(msg);
	free(got);
	free(c.rx);
}

/* Lines: several in one segment, then one split across segments (the
 * delimiter itself cut in two), read with read_until. */
static void test_stream_read_until_lines(void **state)
{
	static const char *const want[] = {"a\r\n", "bb\r\n", "ccc\r\n",
					   "split line\r\n", "tail\r\n"};
	struct proa_loop *loop = proa_test_loop_new();
	struct sfarm sf = {.limit = 0};
	struct proa_server *s = listen_local(loop, NULL, &sf);
	struct proa_future fut;
	struct peer c;
	struct spy *sp;
	char line[64];
	size_t n = 99;
	unsigned i;
	uint64_t rx;

	(void)state;
	sp = pair(loop, s, &sf, &c);
	assert_res(proa_transport_write(c.t, "a\r\nbb\r\nccc\r\n", 12), 0);
	DRIVE(loop, sp->rx == 12);
	for (i = 0; i < 3; i++) {
		proa_future_init(&fut, loop);
		assert_res(proa_stream_read_until(sp->s, "\r\n", 2, line,
						  sizeof(line), &n, &fut),
			   0);
		assert_int_equal(wait_fut(loop, &fut), (int)strlen(want[i]));
		assert_int_equal(n, strlen(want[i]));
		assert_memory_equal(line, want[i], n);
	}
	/* pending first, then the line comes in three segments */
	proa_future_init(&fut, loop);
	assert_res(proa_stream_read_until(sp->s, "\r\n", 2, line, sizeof(line),
					  &n, &fut),
		   0);
	rx = sp->rx;
	assert_res(proa_transport_write(c.t, "split", 5), 0);
	DRIVE(loop, sp->rx == rx + 5);
	assert_res(proa_transport_write(c.t, " line\r", 6), 0);
	DRIVE(loop, sp->rx == rx + 11);
	assert_false(proa_future_is_done(&fut));
	assert_res(proa_transport_write(c.t, "\ntail\r\n", 7), 0);
	assert_int_equal(wait_fut(loop, &fut), (int)strlen(want[3]));
	assert_memory_equal(line, want[3], n);
	proa_future_init(&fut, loop);
	assert_res(proa_stream_read_until(sp->s, "\r\n", 2, line, sizeof(line),
					  &n, &fut),
		   0);
	assert_int_equal(wait_fut(loop, &fut), (int)strlen(want[4]));
	assert_memory_equal(line, want[4], n);
	close_both(loop, sp, &c);
	close_server(loop, s);
	proa_test_loop_close(loop);
	sfarm_free(&sf);
	free(c.rx);
}

/* Acceptance: "read-exactly hit by EOF".  The peer sends 10 bytes and
 * closes; read_exactly(100) ends with PROA_EINCOMPLETE, the 10 bytes in
 * the buffer and *got == 10; later reads say EOF. */
static void test_stream_read_exactly_eof_incomplete(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct sfarm sf = {.limit = 0};
	struct proa_server *s = listen_local(loop, NULL, &sf);
	struct proa_future fut;
	uint8_t buf[100];
	struct peer c;
	struct spy *sp;
	size_t n = 0;

	(void)state;
	sp = pair(loop, s, &sf, &c);
	memset(buf, 0xee, sizeof(buf));
	proa_future_init(&fut, loop);
	assert_res(proa_stream_read_exactly(sp->s, buf, sizeof(buf), &n, &fut),
		   0);
	assert_res(proa_transport_write(c.t, "0123456789", 10), 0);
	assert_res(proa_transport_close(c.t), 0);
	assert_res(wait_fut(loop, &fut), PROA_EINCOMPLETE);
	assert_int_equal(n, 10);
	assert_memory_equal(buf, "0123456789", 10);
	assert_int_equal(buf[10], 0xee);
	assert_true(proa_stream_at_eof(sp->s));
	/* later reads: EOF at once, nothing hangs */
	proa_future_init(&fut, loop);
	assert_res(proa_stream_read(sp->s, buf, sizeof(buf), &fut), 0);
	assert_res(wait_fut(loop, &fut), 0);
	proa_future_init(&fut, loop);
	n = 77;
	assert_res(proa_stream_read_exactly(sp->s, buf, 5, &n, &fut), 0);
	assert_res(wait_fut(loop, &fut), PROA_EINCOMPLETE);
	assert_int_equal(n, 0);
	/* the write side stayed open after EOF (half-close) */
	assert_false(sp->lost);
	assert_int_equal(proa_transport_state(proa_stream_transport(sp->s)),
			 PROA_TS_HALF_PEER);
	close_both(loop, sp, &c);
	assert_res(sp->err, 0);
	close_server(loop, s);
	proa_test_loop_close(loop);
	sfarm_free(&sf);
	free(c.rx);
}

/* No delimiter within the limit: -EMSGSIZE, nothing consumed; also with
 * a caller's buffer smaller than the limit.  And read_until at EOF. */
static void test_stream_read_until_emsgsize_keeps_bytes(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct sfarm sf = {.limit = 1024};
	struct proa_server *s = listen_local(loop, NULL, &sf);
	uint8_t msg[2000], got[2000], small[16];
	struct proa_future fut;
	struct peer c;
	struct spy *sp;
	size_t n = 0, i;

	(void)state;
	for (i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)('a' + i % 26);
	sp = pair(loop, s, &sf, &c);
	/* a small cap: the window is 16 bytes */
	assert_res(proa_transport_write(c.t, msg, 100), 0);
	DRIVE(loop, sp->rx == 100);
	proa_future_init(&fut, loop);
	assert_res(proa_stream_read_until(sp->s, "\n", 1, small, sizeof(small),
					  &n, &fut),
		   0);
	assert_res(wait_fut(loop, &fut), -EMSGSIZE);
	assert_int_equal(n, 0);
	/* pending, then more than the limit arrives without a delimiter */
	proa_future_init(&fut, loop);
	assert_res(
	    proa_stream_read_until(sp->s, "\n", 1, got, sizeof(got), &n, &fut),
	    0);
	assert_res(proa_transport_write(c.t, msg + 100, 1900), 0);
	assert_res(wait_fut(loop, &fut), -EMSGSIZE);
	assert_int_equal(n, 0);
	/* every byte is still there, in order */
	DRIVE(loop, sp->rx == 2000);
	proa_future_init(&fut, loop);
	assert_res(proa_stream_read_exactly(sp->s, got, sizeof(got), &n, &fut),
		   0);
	assert_int_equal(wait_fut(loop, &fut), (int)sizeof(got));
	assert_memory_equal(got, msg, sizeof(got));
	/* EOF before the delimiter: the partial bytes, PROA_EINCOMPLETE */
	assert_res(proa_transport_write(c.t, "no end", 6), 0);
	assert_res(proa_transport_close(c.t), 0);
	proa_future_init(&fut, loop);
	assert_res(proa_stream_read_until(sp->s, "\r\n", 2, got, sizeof(got),
					  &n, &fut),
		   0);
	assert_res(wait_fut(loop, &fut), PROA_EINCOMPLETE);
	assert_int_equal(n, 6);
	assert_memory_equal(got, "no end", 6);
	assert_true(proa_stream_at_eof(sp->s));
	close_both(loop, sp, &c);
	close_server(loop, s);
	proa_test_loop_close(loop);
	sfarm_free(&sf);
	free(c.rx);
}

/* A 4 MiB sender, a reader that takes 10,000 bytes at a time: reading
 * pauses at the limit, the buffer stays near it, and all of it arrives. */
static void test_stream_limit_pauses_reading(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	const size_t limit = (size_t)64 * 1024;
	struct sfarm sf = {.limit = limit};
	/* the default ring, 16 KiB buffers: the stream may pass its limit by
	 * the one piece that crossed it */
	int rb = 0;
	struct proa_server *s = listen_local(loop, NULL, &sf);
	const uint64_t total = 4u << 20;
	uint8_t piece[65536], got[10000];
	uint64_t sent = 0, consumed = 0, most = 0, bad = 0;
	struct proa_future fut;
	bool pending = false;
	struct peer c;
	struct spy *sp;
	size_t k, i;
	int res;

	(void)state;
	assert_int_equal(rb, 0);
	sp = pair(loop, s, &sf, &c);
	/* the peer fills the buffer with nobody reading: reading pauses */
	while (sp->paused == 0) {
		while (sent < total && !c.wpaused) {
			k = sizeof(piece);
			for (i = 0; i < k; i++)
				piece[i] = pat(sent + i);
			assert_res(proa_transport_write(c.t, piece, k), 0);
			sent += k;
		}
		assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
	}
	while (consumed < total) {
		while (sent < total && !c.wpaused) {
			k = sizeof(piece);
			if (k > total - sent)
				k = (size_t)(total - sent);
			for (i = 0; i < k; i++)
				piece[i] = pat(sent + i);
			assert_res(proa_transport_write(c.t, piece, k), 0);
			sent += k;
		}
		if (!pending) {
			proa_future_init(&fut, loop);
			assert_res(
			    proa_stream_read(sp->s, got, sizeof(got), &fut), 0);
			pending = true;
		}
		/* a read served from the buffer is done already: nothing
		 * may wake a blocking iteration then */
		if (!proa_future_is_done(&fut))
			assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
		if (sp->rx - consumed > most)
			most = sp->rx - consumed;
		if (proa_future_is_done(&fut)) {
			res = proa_future_result(&fut, NULL);
			assert_true(res > 0);
			assert_res(proa_future_fini(&fut), 0);
			pending = false;
			for (i = 0; i < (size_t)res; i++)
				bad += got[i] != pat(consumed + i);
			consumed += (uint64_t)res;
		}
		assert_false(sp->lost);
	}
	assert_int_equal(consumed, total);
	assert_int_equal(bad, 0);
	assert_true(sp->paused > 0);
	/* The stream pauses at the limit; what the transport received after
	 * that is held back and handed over a buffer at a time. */
	assert_true(most >= limit);
	assert_true(most <= limit + 16384);
	close_both(loop, sp, &c);
	close_server(loop, s);
	proa_test_loop_close(loop);
	sfarm_free(&sf);
	free(c.rx);
}

/* One read at a time: a second one is -EBUSY at once and leaves its
 * future alone; bad arguments are -EINVAL. */
static void test_stream_second_read_ebusy(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct sfarm sf = {.limit = 0};
	struct proa_server *s = listen_local(loop, NULL, &sf);
	struct proa_future fut, f2;
	uint8_t buf[8], b2[8];
	struct peer c;
	struct spy *sp;
	size_t n = 0, n2 = 42;

	(void)state;
	sp = pair(loop, s, &sf, &c);
	proa_future_init(&fut, loop);
	proa_future_init(&f2, loop);
	assert_res(proa_stream_read_exactly(sp->s, buf, 0, &n, NULL), -EINVAL);
	assert_res(proa_stream_read_until(sp->s, "", 0, buf, 8, &n, &f2),
		   -EINVAL);
	assert_res(proa_stream_read_exactly(sp->s, buf, 4, &n, &fut), 0);
	assert_res(proa_stream_read_exactly(sp->s, b2, 4, &n2, &f2), -EBUSY);
	assert_res(proa_stream_read_until(sp->s, "\n", 1, b2, 8, &n2, &f2),
		   -EBUSY);
	assert_res(proa_stream_read(sp->s, b2, 8, &f2), -EBUSY);
	assert_int_equal(n2, 42);
	assert_int_equal(proa_future_state(&f2), PROA_FUTURE_PENDING);
	assert_res(proa_future_fini(&f2), 0);
	/* a future already done is refused too */
	proa_future_init(&f2, loop);
	assert_res(proa_future_set_result(&f2, 0, NULL), 0);
	assert_res(proa_stream_drain(sp->s, &f2), -EINVAL);
	assert_res(wait_fut(loop, &f2), 0);
	/* and one that is another piece of work's (a combinator's output,
	 * which it would write into after its owner released it), for a
	 * read, a drain and a server's close */
	{
		struct proa_future in, out;
		struct proa_future *ins[1] = {&in};

		proa_future_init(&in, loop);
		proa_future_init(&out, loop);
		assert_res(proa_future_any(&out, ins, 1), 0);
		assert_res(proa_stream_read(sp->s, b2, 8, &out), -EBUSY);
		assert_res(proa_stream_drain(sp->s, &out), -EBUSY);
		assert_res(proa_server_close(s, &out), -EBUSY);
		assert_res(proa_future_set_result(&in, 0, NULL), 0);
		assert_res(wait_fut(loop, &out), 0);
		assert_res(proa_future_fini(&in), 0);
	}
	/* the first read goes on */
	assert_res(proa_transport_write(c.t, "abcdef", 6), 0);
	assert_int_equal(wait_fut(loop, &fut), 4);
	assert_memory_equal(buf, "abcd", 4);
	/* already buffered: resolves through set_result, callbacks later */
	proa_future_init(&fut, loop);
	assert_res(proa_stream_read(sp->s, buf, sizeof(buf), &fut), 0);
	assert_true(proa_future_is_done(&fut));
	assert_int_equal(wait_fut(loop, &fut), 2);
	assert_memory_equal(buf, "ef", 2);
	close_both(loop, sp, &c);
	close_server(loop, s);
	proa_test_loop_close(loop);
	sfarm_free(&sf);
	free(c.rx);
}

static void count_cb(struct proa_future *fut, void *arg)
{
	(void)fut;
	++*(unsigned *)arg;
}

/* Cancelling a pending read: -ECANCELED, the stream forgets it, and the
 * bytes a read_exactly had taken are given back. */
static void test_stream_cancel_pending_read(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct sfarm sf = {.limit = 0};
	struct proa_server *s = listen_local(loop, NULL, &sf);
	struct proa_future fut;
	uint8_t buf[100];
	unsigned calls = 0;
	struct peer c;
	struct spy *sp;
	size_t n = 0;

	(void)state;
	sp = pair(loop, s, &sf, &c);
	proa_future_init(&fut, loop);
	assert_res(proa_stream_read_exactly(sp->s, buf, sizeof(buf), &n, &fut),
		   0);
	assert_res(proa_future_add_done_callback(&fut, count_cb, &calls), 0);
	assert_res(proa_transport_write(c.t, "0123456789", 10), 0);
	DRIVE(loop, sp->rx == 10);
	assert_false(proa_future_is_done(&fut));
	assert_res(proa_future_cancel(&fut), 0);
	assert_int_equal(calls, 0); /* never inside the call */
	assert_int_equal(proa_future_state(&fut), PROA_FUTURE_CANCELLED);
	DRIVE(loop, calls == 1);
	assert_res(wait_fut(loop, &fut), -ECANCELED);
	assert_int_equal(n, 0);
	/* a new read works, and gets the 10 bytes back */
	proa_future_init(&fut, loop);
	assert_res(proa_stream_read_exactly(sp->s, buf, 12, &n, &fut), 0);
	assert_res(proa_transport_write(c.t, "ab", 2), 0);
	assert_int_equal(wait_fut(loop, &fut), 12);
	assert_memory_equal(buf, "0123456789ab", 12);
	/* a pending read_until and read cancel the same way */
	proa_future_init(&fut, loop);
	assert_res(
	    proa_stream_read_until(sp->s, "\n", 1, buf, sizeof(buf), &n, &fut),
	    0);
	assert_res(proa_future_cancel(&fut), 0);
	assert_res(wait_fut(loop, &fut), -ECANCELED);
	proa_future_init(&fut, loop);
	assert_res(proa_stream_read(sp->s, buf, sizeof(buf), &fut), 0);
	assert_res(proa_future_cancel(&fut), 0);
	assert_res(wait_fut(loop, &fut), -ECANCELED);
	close_both(loop, sp, &c);
	close_server(loop, s);
	proa_test_loop_close(loop);
	sfarm_free(&sf);
	free(c.rx);
}

struct drain_probe {
	struct proa_stream *s;
	size_t at_done; /* write buffer when the drain's callback ran */
	bool done;
};

static void drain_cb(struct proa_future *fut, void *arg)
{
	struct drain_probe *d = arg;

	(void)fut;
	d->at_done =
	    proa_transport_write_buffer_size(proa_stream_transport(d->s));
	d->done = true;
}

/* drain: at once when the buffer is empty; between the water marks (no
 * pause_writing) and above them (a client that does not read) it waits
 * for the low mark; a second one is -EBUSY; and the connection's error
 * when it is lost first. */
static void test_stream_drain(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct sfarm sf = {.limit = 0};
	struct proa_server_options so = {
	    .transport = {.write_high = (size_t)64 * 1024,
			  .write_low = (size_t)16 * 1024,
			  .sndbuf = 4096}};
	struct proa_server *s = listen_local(loop, &so, &sf);
	static uint8_t chunk[1 << 16];
	const unsigned nchunks = 128; /* 8 MiB: more than loopback holds */
	struct drain_probe d = {0};
	struct proa_future fut, f2;
	struct peer c;
	struct spy *sp;
	unsigned i;

	(void)state;
	sp = pair(loop, s, &sf, &c);
	d.s = sp->s;
	proa_future_init(&fut, loop);
	assert_res(proa_stream_drain(sp->s, &fut), 0);
	assert_true(proa_future_is_done(&fut));
	assert_res(wait_fut(loop, &fut), 0);

	/* between the marks: 30 KiB, drained at once in this iteration */
	assert_res(proa_stream_write(sp->s, chunk, (size_t)30 * 1024), 0);
	proa_future_init(&fut, loop);
	assert_res(proa_stream_drain(sp->s, &fut), 0);
	assert_false(proa_future_is_done(&fut));
	assert_res(proa_future_add_done_callback(&fut, drain_cb, &d), 0);
	DRIVE(loop, d.done);
	assert_true(d.at_done <= (size_t)16 * 1024);
	assert_res(wait_fut(loop, &fut), 0);
	DRIVE(loop, c.rxlen == (size_t)30 * 1024);

	/* above the high mark, the client not reading */
	assert_res(proa_transport_pause_reading(c.t), 0);
	for (i = 0; i < nchunks; i++)
		assert_res(proa_stream_write(sp->s, chunk, sizeof(chunk)), 0);
	d.done = false;
	proa_future_init(&fut, loop);
	proa_future_init(&f2, loop);
	assert_res(proa_stream_drain(sp->s, &fut), 0);
	assert_res(proa_stream_drain(sp->s, &f2), -EBUSY);
	assert_res(proa_future_fini(&f2), 0);
	assert_res(proa_future_add_done_callback(&fut, drain_cb, &d), 0);
	for (i = 0; i < 200; i++)
		assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	assert_false(d.done);
	assert_res(proa_transport_resume_reading(c.t), 0);
	DRIVE(loop, d.done);
	assert_true(d.at_done <= (size_t)16 * 1024);
	assert_res(wait_fut(loop, &fut), 0);
	DRIVE(loop, c.rxlen == (size_t)30 * 1024 + nchunks * sizeof(chunk));

	/* lost before the low mark: the drain gets the error */
	assert_res(proa_transport_pause_reading(c.t), 0);
	for (i = 0; i < nchunks; i++)
		assert_res(proa_stream_write(sp->s, chunk, sizeof(chunk)), 0);
	proa_future_init(&fut, loop);
	assert_res(proa_stream_drain(sp->s, &fut), 0);
	for (i = 0; i < 100; i++)
		assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	assert_false(proa_future_is_done(&fut));
	/* unread data at close(2): the kernel resets the connection */
	proa_transport_abort(c.t);
	DRIVE(loop, proa_future_is_done(&fut));
	{
		int res = wait_fut(loop, &fut);

		assert_true(res == -ECONNRESET || res == -EPIPE);
	}
	DRIVE(loop, sp->lost && c.lost);
	assert_true(sp->err == -ECONNRESET || sp->err == -EPIPE);
	close_server(loop, s);
	proa_test_loop_close(loop);
	sfarm_free(&sf);
	free(c.rx);
}

/* A reset while a read_exactly waits: the error, with the partial count;
 * the stream (not held) is freed after connection_lost. */
static void test_stream_reset_fails_pending_read(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct sfarm sf = {.limit = 0};
	struct proa_server *s = listen_local(loop, NULL, &sf);
	struct proa_server_stats st;
	struct proa_future fut;
	uint8_t buf[100];
	struct spy *sp;
	size_t n = 0;
	int fd, res;

	(void)state;
	fd = raw_connect(proa_server_port(s));
	DRIVE(loop, sf.spies && sf.spies->made);
	sp = sf.spies;
	proa_future_init(&fut, loop);
	assert_res(proa_stream_read_exactly(sp->s, buf, sizeof(buf), &n, &fut),
		   0);
	assert_int_equal(write(fd, "0123", 4), 4);
	DRIVE(loop, sp->rx == 4);
	raw_reset(fd);
	res = wait_fut(loop, &fut);
	assert_res(res, -ECONNRESET);
	assert_int_equal(n, 4);
	assert_memory_equal(buf, "0123", 4);
	assert_true(sp->lost);
	assert_res(sp->err, -ECONNRESET);
	assert_res(proa_server_stats(s, &st), 0);
	assert_int_equal(st.active, 0);
	/* sp->s is gone now: ASan would see a use or a leak */
	close_server(loop, s);
	proa_test_loop_close(loop);
	sfarm_free(&sf);
}

/* Lifetimes: a bare stream (no spy, not held) freed after a clean close;
 * a held stream read after connection_lost, then freed; a held stream
 * freed while live (its pending read fails, the transport is aborted);
 * a stream whose connect failed, freed. */
static void test_stream_lifetime_hold_free(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct sfarm bare = {.bare = true}, held = {.hold = true};
	struct proa_server *s1 = listen_local(loop, NULL, &bare);
	struct proa_server *s2 = listen_local(loop, NULL, &held);
	struct proa_server_stats st;
	struct proa_future fut;
	struct proa_stream *cs;
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof(a);
	struct peer c;
	struct spy *sp;
	uint8_t buf[16];
	size_t n = 0;
	int lfd;

	(void)state;
	/* bare, not held: EOF read, close, freed at connection_lost */
	sp = pair(loop, s1, &bare, &c);
	assert_res(proa_transport_write(c.t, "hi", 2), 0);
	assert_res(proa_transport_close(c.t), 0);
	proa_future_init(&fut, loop);
	assert_res(proa_stream_read_exactly(sp->s, buf, sizeof(buf), &n, &fut),
		   0);
	assert_res(wait_fut(loop, &fut), PROA_EINCOMPLETE);
	assert_int_equal(n, 2);
	assert_res(proa_stream_close(sp->s), 0);
	DRIVE(loop, (proa_server_stats(s1, &st), st.active == 0));
	DRIVE(loop, c.lost);
	free(c.rx);

	/* held: still readable after connection_lost, then freed */
	sp = pair(loop, s2, &held, &c);
	assert_res(proa_transport_write(c.t, "abc", 3), 0);
	assert_res(proa_transport_close(c.t), 0);
	DRIVE(loop, c.lost && sp->rx == 3);
	assert_res(proa_stream_close(sp->s), 0);
	DRIVE(loop, sp->lost);
	assert_null(proa_stream_transport(sp->s));
	assert_res(proa_stream_write(sp->s, "x", 1), -EPIPE);
	assert_false(proa_stream_at_eof(sp->s));
	proa_future_init(&fut, loop);
	assert_res(proa_stream_read(sp->s, buf, sizeof(buf), &fut), 0);
	assert_int_equal(wait_fut(loop, &fut), 3);
	assert_memory_equal(buf, "abc", 3);
	assert_true(proa_stream_at_eof(sp->s));
	proa_future_init(&fut, loop);
	assert_res(proa_stream_drain(sp->s, &fut), 0);
	assert_res(wait_fut(loop, &fut), 0);
	proa_stream_free(sp->s);
	free(c.rx);

	/* held, freed while live with a read pending */
	sp = pair(loop, s2, &held, &c);
	proa_future_init(&fut, loop);
	assert_res(proa_stream_read(sp->s, buf, sizeof(buf), &fut), 0);
	proa_stream_free(sp->s);
	assert_res(wait_fut(loop, &fut), -ECONNABORTED);
	DRIVE(loop, sp->lost && c.lost);
	assert_res(sp->err, -ECONNABORTED);
	free(c.rx);

	/* a stream as the client: request, answer by read_until */
	assert_res(proa_stream_new(&cs, 0), 0);
	proa_stream_hold(cs);
	assert_res(proa_stream_read(cs, buf, 4, NULL), -EINVAL);
	connect_with(loop, proa_server_port(s2), NULL, stream_make, cs);
	DRIVE(loop, held.spies != sp && held.spies->made);
	sp = held.spies;
	assert_res(proa_stream_write(cs, "ping\n", 5), 0);
	proa_future_init(&fut, loop);
	assert_res(
	    proa_stream_read_until(sp->s, "\n", 1, buf, sizeof(buf), &n, &fut),
	    0);
	assert_int_equal(wait_fut(loop, &fut), 5);
	assert_res(proa_stream_write(sp->s, "pong\n", 5), 0);
	proa_future_init(&fut, loop);
	assert_res(
	    proa_stream_read_until(cs, "\n", 1, buf, sizeof(buf), &n, &fut), 0);
	assert_int_equal(wait_fut(loop, &fut), 5);
	assert_memory_equal(buf, "pong\n", 5);
	assert_res(proa_stream_close(cs), 0);
	DRIVE(loop,
	      proa_stream_transport(cs) == NULL && proa_stream_at_eof(sp->s));
	proa_stream_free(cs);
	assert_res(proa_stream_close(sp->s), 0);
	DRIVE(loop, sp->lost);
	proa_stream_free(sp->s);

	/* a connect that fails: the stream never connected, free it */
	assert_res(proa_stream_new(&cs, 0), 0);
	proa_future_init(&fut, loop);
	assert_res(proa_stream_read(cs, buf, 4, &fut), -ENOTCONN);
	assert_res(proa_stream_write(cs, "x", 1), -ENOTCONN);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
	close(lfd); /* nobody listens there */
	assert_res(proa_tcp_connect(loop, "127.0.0.1", ntohs(a.sin_port), NULL,
				    stream_make, cs, &fut),
		   0);
	assert_res(wait_fut(loop, &fut), -ECONNREFUSED);
	proa_stream_free(cs);

	close_server(loop, s1);
	close_server(loop, s2);
	proa_test_loop_close(loop);
	sfarm_free(&bare);
	sfarm_free(&held);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
		test_stream_read_exactly_1mib_byte_exact, setup,
		teardown_check),
	    cmocka_unit_test_setup_teardown(test_stream_read_until_lines, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(
		test_stream_read_exactly_eof_incomplete, setup, teardown_check),
	    cmocka_unit_test_setup_teardown(
		test_stream_read_until_emsgsize_keeps_bytes, setup,
		teardown_check),
	    cmocka_unit_test_setup_teardown(test_stream_limit_pauses_reading,
					    setup, teardown_check),
	    cmocka_unit_test_setup_teardown(test_stream_second_read_ebusy,
					    setup, teardown_check),
	    cmocka_unit_test_setup_teardown(test_stream_cancel_pending_read,
					    setup, teardown_check),
	    cmocka_unit_test_setup_teardown(test_stream_drain, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(
		test_stream_reset_fails_pending_read, setup, teardown_check),
	    cmocka_unit_test_setup_teardown(test_stream_lifetime_hold_free,
					    setup, teardown_check),
	};

	proa_test_require_uring();
	proa_test_filter_from_env();
	return cmocka_run_group_tests_name("net.stream", tests, NULL, NULL);
}
