/* SPDX-License-Identifier: MIT */
/*
 * tests/kernel/net/test_pipe.c - transports on descriptors proa did not
 * make: pipes (duplex pairs, read-only and write-only ends, EOF and
 * write_eof), a child's stdin that is never read (water marks, then the
 * kill), a pty as stdin/stdout, a socket made elsewhere and a listening
 * socket handed over (proa_transport_from_fd, proa_server_from_fd).
 *
 * Every case counts the process's descriptors before and after
 * (setup/teardown_check) and closes its loop with nothing left in flight.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdlib.h>
#include <sys/wait.h>
#include <termios.h>

#include "proa/process.h"
#include "tcp_support.h"

/* A peer of tcp_support.h connected to a pipe transport on @rfd/@wfd. */
static struct peer *pipe_peer(struct proa_loop *loop, int rfd, int wfd,
			      const struct proa_transport_options *opt,
			      unsigned flags)
{
	struct peer *pe = calloc(1, sizeof(*pe));
	struct proa_transport *t = NULL;

	assert_non_null(pe);
	pe->p.ops = &peer_ops;
	pe->flags = flags;
	assert_res(proa_pipe_open(&t, loop, rfd, wfd, opt, &pe->p), 0);
	assert_true(pe->made);
	assert_ptr_equal(pe->t, t);
	return pe;
}

/* Wait until both peers are gone: both must have ended cleanly, each
 * having seen EOF or not as said; then free them. */
static void both_end_clean(struct proa_loop *loop, struct peer *a, bool a_eof,
			   struct peer *b, bool b_eof)
{
	DRIVE_NS(loop, a->lost && b->lost);
	assert_res(a->err, 0);
	assert_res(b->err, 0);
	assert_int_equal(a->eof, a_eof);
	assert_int_equal(b->eof, b_eof);
	free(a);
	free(b);
}

/* Two pipes make a duplex pair: A writes 1 MiB, B echoes it, A checks
 * every byte; then A's write_eof reaches B as EOF, B closes, and its
 * closing reaches A as EOF: both end cleanly. */
static void test_pipe_duplex_round_trip(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	const uint64_t total = 1u << 20;
	struct peer *a, *b;
	int ab[2], ba[2];
	uint64_t off;

	(void)state;
	assert_int_equal(pipe2(ab, O_CLOEXEC), 0);
	assert_int_equal(pipe2(ba, O_CLOEXEC), 0);
	a = pipe_peer(loop, ba[0], ab[1], NULL, P_VERIFY);
	b = pipe_peer(loop, ab[0], ba[1], NULL, P_ECHO);
	assert_int_equal(proa_transport_fd(a->t), ba[0]);
	assert_true(proa_transport_can_write_eof(a->t));
	for (off = 0; off < total; off += 65536)
		write_pat(a->t, off, 65536);
	DRIVE_NS(loop, a->rx == total);
	assert_int_equal(a->bad, 0);
	assert_int_equal(b->rx, total);
	assert_res(proa_transport_write_eof(a->t), 0);
	assert_res(proa_transport_write(a->t, "x", 1), -EPIPE);
	assert_int_equal(proa_transport_state(a->t), PROA_TS_HALF_LOCAL);
	both_end_clean(loop, a, true, b, true);
	proa_test_loop_close(loop);
}

/* A new pipe: *@w a write-only transport on its write end, *@r a
 * read-only one (with @rflags) on its read end. */
static void one_way_pair(struct proa_loop *loop, struct peer **w,
			 struct peer **r, unsigned rflags)
{
	int p[2];

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	*w = pipe_peer(loop, -1, p[1], NULL, 0);
	*r = pipe_peer(loop, p[0], -1, NULL, rflags);
}

/* Non-blocking ends move every byte.  Where io_uring answers -EAGAIN on
 * them instead of waiting, the transport polls for input and for room
 * (6.18 waits by itself, so there this is the plain path). */
static void test_pipe_nonblocking_ends(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct peer *w, *r;
	uint64_t off;
	int p[2];

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	r = pipe_peer(loop, p[0], -1, NULL, P_VERIFY);
	w = pipe_peer(loop, -1, p[1], NULL, 0);
	/* the reader waits first (nothing there yet) */
	assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	for (off = 0; off < 1000000; off += 100000)
		write_pat(w->t, off, 100000); /* far more than the pipe */
	assert_res(proa_transport_close(w->t), 0);
	DRIVE_NS(loop, w->lost && r->lost);
	assert_int_equal(r->rx, 1000000);
	assert_int_equal(r->bad, 0);
	assert_res(w->err, 0);
	assert_res(r->err, 0);
	free(w);
	free(r);
	proa_test_loop_close(loop);
}

/* A write-only end and a read-only end: the writer ends after write_eof,
 * the reader gets the bytes, then EOF, then closes itself (even though
 * its protocol asked to keep the connection: it has no write side). */
static void test_pipe_one_way_eof(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct peer *w, *r;

	(void)state;
	one_way_pair(loop, &w, &r, P_KEEP_ON_EOF);
	assert_false(proa_transport_can_write_eof(r->t));
	assert_res(proa_transport_write(r->t, "x", 1), -EPIPE);
	assert_res(proa_transport_write_eof(r->t), -EOPNOTSUPP);
	assert_true(proa_transport_can_write_eof(w->t));
	assert_false(proa_transport_is_reading(w->t));
	/* one byte alone: a read of 1 is data like any other */
	assert_res(proa_transport_write(w->t, "h", 1), 0);
	DRIVE_NS(loop, r->rx == 1);
	assert_res(proa_transport_write(w->t, "ello", 4), 0);
	assert_res(proa_transport_write_eof(w->t), 0);
	assert_res(proa_transport_write(w->t, "x", 1), -EPIPE);
	assert_res(proa_transport_write_eof(w->t), -EPIPE);
	DRIVE_NS(loop, r->rx == 5);
	both_end_clean(loop, w, false, r, true);
	proa_test_loop_close(loop);
}

/* A reader that pauses after every piece (pause_reading, resume from the
 * ready queue) still gets every byte in order; idle timeouts apply to
 * pipes as to sockets. */
static void test_pipe_pause_reading_and_idle(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_transport_options idle = {.idle_timeout_ns = 20000000};
	struct peer *w, *r;
	uint64_t off;
	int p[2];

	(void)state;
	one_way_pair(loop, &w, &r, P_VERIFY | P_PAUSE_EACH);
	for (off = 0; off < 500000; off += 50000)
		write_pat(w->t, off, 50000);
	DRIVE_NS(loop, r->rx == 500000);
	assert_int_equal(r->bad, 0);
	assert_true(r->data_calls >= 500000 / 65536);
	assert_res(proa_transport_close(w->t), 0);
	DRIVE_NS(loop, w->lost && r->lost);
	assert_res(r->err, 0);
	free(w);
	free(r);

	/* nothing arrives: the idle timer ends the reader */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	r = pipe_peer(loop, p[0], -1, &idle, 0);
	DRIVE_NS(loop, r->lost);
	assert_res(r->err, -ETIMEDOUT);
	close(p[1]);
	free(r);
	proa_test_loop_close(loop);
}

/* A write-only end learns that its reader went away without writing:
 * with nothing buffered, a clean end. */
static void test_pipe_reader_gone(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct peer *w;
	int p[2];

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	w = pipe_peer(loop, -1, p[1], NULL, 0);
	assert_res(proa_transport_write(w->t, "abc", 3), 0);
	DRIVE_NS(loop, proa_transport_write_buffer_size(w->t) == 0);
	assert_false(w->lost);
	close(p[0]);
	DRIVE_NS(loop, w->lost);
	assert_res(w->err, 0);
	free(w);
	proa_test_loop_close(loop);
}

/* Close on both kinds of end with bytes still buffered: the write end
 * flushes before it closes; a read end closed by its owner does not wait
 * for EOF. */
static void test_pipe_close_flushes(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct peer *w, *r;
	int p[2];

	(void)state;
	one_way_pair(loop, &w, &r, P_VERIFY);
	write_pat(w->t, 0, 200000); /* more than the pipe holds */
	assert_res(proa_transport_close(w->t), 0);
	assert_res(proa_transport_close(w->t), 0); /* twice is harmless */
	DRIVE_NS(loop, r->rx == 200000);
	assert_int_equal(r->bad, 0);
	both_end_clean(loop, w, false, r, true);

	/* abort with a write stuck on a full pipe (nobody reads) */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	w = pipe_peer(loop, -1, p[1], NULL, 0);
	write_pat(w->t, 0, 200000);
	DRIVE_NS(loop,
		 !proa_op_is_idle(
		     &proa_container_of(w->t, struct proa__sock, base)->wop));
	assert_res(proa_transport_abort(w->t), 0);
	DRIVE_NS(loop, w->lost);
	assert_res(w->err, -ECONNABORTED);
	close(p[0]);
	free(w);

	/* a reader closed by its owner, the writer still open */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	r = pipe_peer(loop, p[0], -1, NULL, 0);
	assert_res(proa_transport_close(r->t), 0);
	DRIVE_NS(loop, r->lost);
	assert_res(r->err, 0);
	assert_false(r->eof);
	close(p[1]);
	free(r);
	proa_test_loop_close(loop);
}

/* ---- a child that never reads its stdin ---------------------------------- */

/* Writes pat() in 64 KiB pieces while the buffer is at or under the high
 * mark, as a protocol that honours flow control does; resume_writing
 * brings it back. */
struct feeder {
	struct peer pe;
	uint64_t sent, total;
	size_t high;
	size_t max_buf;
	unsigned writes_refused;
};

static void feed_more(struct feeder *f)
{
	size_t n, wb;

	while (f->sent < f->total && !f->pe.lost &&
	       proa_transport_write_buffer_size(f->pe.t) <= f->high) {
		n = 65536;
		if (n > f->total - f->sent)
			n = (size_t)(f->total - f->sent);
		write_pat(f->pe.t, f->sent, n);
		f->sent += n;
		wb = proa_transport_write_buffer_size(f->pe.t);
		if (wb > f->max_buf)
			f->max_buf = wb;
	}
}

static void feeder_resume(struct proa_protocol *p)
{
	struct feeder *f = proa_container_of(p, struct feeder, pe.p);

	p_resume_w(p);
	feed_more(f);
}

static const struct proa_protocol_ops feeder_ops = {
    .connection_made = p_made,
    .data_received = p_data,
    .connection_lost = p_lost,
    .pause_writing = p_pause_w,
    .resume_writing = feeder_resume,
};

struct exit_rec {
	bool done;
	int code, sig;
};

static void on_exit_cb(struct proa_process *p, int code, int sig, void *arg)
{
	struct exit_rec *e = arg;

	(void)p;
	e->done = true;
	e->code = code;
	e->sig = sig;
}

/* 64 MiB for a child that never reads: pause_writing comes, the buffer
 * stays within a piece of the high mark, nothing is lost in between;
 * killing the child ends the transport with connection_lost(-EPIPE) and
 * nothing left behind. */
static void test_pipe_child_never_reads(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	char *argv[] = {"sleep", "100", NULL};
	struct proa_spawn_opts so = {.argv = argv};
	struct proa_transport_options to = {.write_high = (size_t)256 * 1024};
	struct proa_transport *t = NULL;
	struct proa_process *proc = NULL;
	struct exit_rec ex = {0};
	struct feeder f = {.total = 64u << 20, .high = (size_t)256 * 1024};
	unsigned i;

	(void)state;
	so.stdio[0].kind = PROA_STDIO_PIPE;
	so.on_exit = on_exit_cb;
	so.arg = &ex;
	assert_res(proa_spawn(&proc, loop, &so), 0);
	f.pe.p.ops = &feeder_ops;
	assert_res(proa_process_stdio_transport(&t, proc, 1, &to, &f.pe.p),
		   -EBADF); /* no pipe there */
	assert_false(f.pe.made);
	assert_res(proa_process_stdio_transport(&t, proc, 0, &to, &f.pe.p), 0);
	assert_true(f.pe.made);
	assert_int_equal(proa_process_stdio_fd(proc, 0), -1);
	feed_more(&f);
	DRIVE_NS(loop, f.pe.pauses > 0);
	/* Let the loop run for a while: the child reads nothing, so no
	 * resume comes and the feeder stays put. */
	for (i = 0; i < 50; i++) {
		struct proa_timer tm;

		memset(&tm, 0, sizeof(tm));
		assert_res(proa_loop_call_later(loop, &tm, 1000000,
						proa_test_nop, NULL),
			   0);
		assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
		proa_timer_cancel(&tm);
	}
	assert_int_equal(f.pe.resumes, 0);
	assert_true(f.sent < f.total);
	assert_true(f.max_buf <= f.high + 65536);
	assert_true(f.pe.wpaused);
	assert_false(f.pe.lost);
	assert_res(proa_process_kill(proc, SIGKILL), 0);
	DRIVE_NS(loop, f.pe.lost && ex.done);
	assert_res(f.pe.err, -EPIPE);
	assert_int_equal(ex.sig, SIGKILL);
	assert_res(proa_process_close(proc), 0);
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	proa_test_loop_close(loop);
}

/* A child's stdout read through a transport: `echo` writes a line and
 * exits; the transport gets the line, then EOF, then ends cleanly. */
static void test_pipe_child_stdout(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	char *argv[] = {"echo", "hello from the child", NULL};
	struct proa_spawn_opts so = {.argv = argv};
	struct proa_transport *t = NULL;
	struct proa_process *proc = NULL;
	struct exit_rec ex = {0};
	struct peer pe = {.p.ops = &peer_ops};

	(void)state;
	so.stdio[1].kind = PROA_STDIO_PIPE;
	so.on_exit = on_exit_cb;
	so.arg = &ex;
	assert_res(proa_spawn(&proc, loop, &so), 0);
	assert_res(proa_process_stdio_transport(&t, proc, 1, NULL, &pe.p), 0);
	DRIVE_NS(loop, pe.lost && ex.done);
	assert_int_equal(pe.rx, strlen("hello from the child\n"));
	assert_true(pe.eof);
	assert_res(pe.err, 0);
	assert_int_equal(ex.code, 0);
	assert_res(proa_process_close(proc), 0);
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	proa_test_loop_close(loop);
}

/* ---- a pty ------------------------------------------------------------ */

struct rec {
	struct peer pe;
	char buf[64];
	size_t len;
};

static void rec_data(struct proa_protocol *p, const void *data, size_t len)
{
	struct rec *r = proa_container_of(p, struct rec, pe.p);

	assert_true(r->len + len <= sizeof(r->buf));
	memcpy(r->buf + r->len, data, len);
	r->len += len;
	r->pe.rx += len;
}

static const struct proa_protocol_ops rec_ops = {
    .connection_made = p_made,
    .data_received = rec_data,
    .eof_received = p_eof,
    .connection_lost = p_lost,
};

/* The slave side of a pty as a program's stdin/stdout (a read end and a
 * write end of its own, dup'd), the master as one descriptor both ways:
 * bytes cross in raw mode; the master cannot half-close; closing the
 * slave reads as EOF on the master (EIO from the kernel). */
static void test_pipe_pty(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct rec m = {.pe.p.ops = &rec_ops}, s = {.pe.p.ops = &rec_ops};
	struct proa_transport *mt = NULL, *st = NULL;
	struct termios tio;
	int master, slave, slave_w;
	char name[64];

	(void)state;
	master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0) {
		proa_test_loop_close(loop);
		skip();
	}
	assert_int_equal(grantpt(master), 0);
	assert_int_equal(unlockpt(master), 0);
	assert_int_equal(ptsname_r(master, name, sizeof(name)), 0);
	slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	assert_true(slave >= 0);
	/* Raw: no echo, no line editing, bytes as they are. */
	assert_int_equal(tcgetattr(slave, &tio), 0);
	cfmakeraw(&tio);
	assert_int_equal(tcsetattr(slave, TCSANOW, &tio), 0);
	slave_w = fcntl(slave, F_DUPFD_CLOEXEC, 0);
	assert_true(slave_w >= 0);
	assert_res(proa_pipe_open(&mt, loop, master, master, NULL, &m.pe.p), 0);
	assert_res(proa_pipe_open(&st, loop, slave, slave_w, NULL, &s.pe.p), 0);
	assert_false(proa_transport_can_write_eof(mt));
	assert_res(proa_transport_write_eof(mt), -EOPNOTSUPP);
	assert_true(proa_transport_can_write_eof(st));
	assert_res(proa_transport_write(mt, "ping", 4), 0);
	DRIVE_NS(loop, s.len == 4);
	assert_memory_equal(s.buf, "ping", 4);
	assert_res(proa_transport_write(st, "pong!", 5), 0);
	DRIVE_NS(loop, m.len == 5);
	assert_memory_equal(m.buf, "pong!", 5);
	assert_res(proa_transport_close(st), 0);
	DRIVE_NS(loop, s.pe.lost && m.pe.lost);
	assert_res(s.pe.err, 0);
	assert_true(m.pe.eof);
	assert_res(m.pe.err, 0);
	proa_test_loop_close(loop);
}

/* ---- sockets made elsewhere --------------------------------------------- */

/* Both ends of a socketpair made transports: a round trip, then a
 * half-close by shutdown; what cannot be adopted is refused and left to
 * the caller. */
static void test_transport_from_fd(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct peer *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	struct proa_transport *t = NULL;
	struct peer peer0 = {.p.ops = &peer_ops};
	int sp[2], p[2], l;

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	*a = (struct peer){.p.ops = &peer_ops, .flags = P_VERIFY};
	*b = (struct peer){.p.ops = &peer_ops, .flags = P_ECHO};
	/* blocking and inheritable: adoption makes them neither */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	assert_res(proa_transport_from_fd(&t, loop, sp[0], NULL, &a->p), 0);
	assert_ptr_equal(a->t, t);
	assert_res(proa_transport_from_fd(&t, loop, sp[1], NULL, &b->p), 0);
	assert_true(fcntl(sp[0], F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(sp[1], F_GETFD) & FD_CLOEXEC);
	write_pat(a->t, 0, 100000);
	DRIVE_NS(loop, a->rx == 100000);
	assert_int_equal(a->bad, 0);
	assert_res(proa_transport_write_eof(a->t), 0);
	both_end_clean(loop, a, true, b, true);

	/* refused: a pipe, a listening socket, a datagram socket */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_res(proa_transport_from_fd(&t, loop, p[0], NULL, &peer0.p),
		   -ENOTSOCK);
	assert_int_equal(fcntl(p[0], F_GETFD) >= 0, 1);
	close(p[0]);
	close(p[1]);
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(l >= 0);
	assert_int_equal(listen(l, 1), 0);
	assert_res(proa_transport_from_fd(&t, loop, l, NULL, &peer0.p),
		   -EINVAL);
	close(l);
	l = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_res(proa_transport_from_fd(&t, loop, l, NULL, &peer0.p),
		   -EINVAL);
	close(l);
	assert_res(proa_transport_from_fd(&t, loop, -1, NULL, &peer0.p),
		   -EBADF);
	assert_false(peer0.made);
	proa_test_loop_close(loop);
}

static void set_flag(void *arg)
{
	*(bool *)arg = true;
}

/* A connected TCP pair on loopback in @sp (for the test below). */
static void tcp_pair(int sp[2])
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(l >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&a, &len), 0);
	sp[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(sp[0] >= 0);
	assert_int_equal(connect(sp[0], (struct sockaddr *)&a, sizeof(a)), 0);
	sp[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	assert_true(sp[1] >= 0);
	close(l);
}

/* A socket whose peer shuts its write side while our send waits for room:
 * io_uring answers that send -EAGAIN (the peer's shutdown woke its wait,
 * and there is still no room), which once ended the connection and lost
 * the bytes; and a poll for room then came back at once, over and over,
 * for as long as the peer did not read.  Now the transport waits for room
 * without spinning and delivers every byte.  @tcp: a TCP pair on
 * loopback, else a UNIX socketpair. */
static void peer_half_closes_while_full(bool tcp)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct peer *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	const uint64_t total = 16u << 20; /* far more than the sockets hold */
	struct proa_loop_stats st0, st1;
	struct proa_transport *t = NULL;
	struct proa_timer tm = {0};
	bool waited = false;
	uint64_t off;
	int sp[2];

	assert_non_null(a);
	assert_non_null(b);
	*a = (struct peer){.p.ops = &peer_ops, .flags = P_KEEP_ON_EOF};
	*b = (struct peer){.p.ops = &peer_ops, .flags = P_VERIFY};
	if (tcp)
		tcp_pair(sp);
	else
		assert_int_equal(
		    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	assert_res(proa_transport_from_fd(&t, loop, sp[0], NULL, &a->p), 0);
	assert_res(proa_transport_from_fd(&t, loop, sp[1], NULL, &b->p), 0);
	assert_res(proa_transport_pause_reading(b->t), 0);
	for (off = 0; off < total; off += 65536)
		write_pat(a->t, off, 65536);
	/* The sockets fill; the rest waits in A's buffer. */
	DRIVE_NS(loop, proa_transport_write_buffer_size(a->t) < total);
	assert_res(proa_transport_write_eof(b->t), 0);
	DRIVE_NS(loop, a->eof);
	/* 20 ms with the socket full and its peer half-closed: a few
	 * iterations, not one per poll that returns at once. */
	assert_res(proa_loop_stats(loop, &st0), 0);
	assert_res(proa_loop_call_later(loop, &tm, UINT64_C(20000000), set_flag,
					&waited),
		   0);
	DRIVE_NS(loop, waited);
	assert_res(proa_loop_stats(loop, &st1), 0);
	assert_true(st1.iterations - st0.iterations < 20);
	assert_false(a->lost);
	assert_true(proa_transport_write_buffer_size(a->t) > 0);
	/* B reads: every byte arrives, in order, then A's close as EOF. */
	assert_res(proa_transport_resume_reading(b->t), 0);
	DRIVE_NS(loop, b->rx == total);
	assert_int_equal(b->bad, 0);
	assert_res(proa_transport_close(a->t), 0);
	both_end_clean(loop, a, true, b, true);
	proa_test_loop_close(loop);
}

static void test_unix_peer_half_closes_while_full(void **state)
{
	(void)state;
	peer_half_closes_while_full(false);
}

static void test_tcp_peer_half_closes_while_full(void **state)
{
	(void)state;
	peer_half_closes_while_full(true);
}

/* A listening socket made by "someone else" (here: by hand, as systemd
 * would hand it over): proa serves on it; connections echo. */
static void test_server_from_fd(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof(a);
	struct farm sf = {.flags = P_ECHO}, cf = {.flags = P_VERIFY};
	struct proa_server *s = NULL;
	struct peer *c;
	int l, sp[2];

	(void)state;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(l >= 0);
	assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&a, &alen), 0);
	/* not listening yet: refused, left open */
	assert_res(proa_server_from_fd(&s, loop, l, NULL, farm_make, &sf),
		   -EINVAL);
	assert_int_equal(listen(l, 16), 0);
	assert_res(proa_server_from_fd(&s, loop, l, NULL, farm_make, &sf), 0);
	assert_int_equal(proa_server_port(s), ntohs(a.sin_port));
	c = connect_local(loop, ntohs(a.sin_port), NULL, &cf);
	write_pat(c->t, 0, 50000);
	DRIVE_NS(loop, c->rx == 50000);
	assert_int_equal(c->bad, 0);
	assert_res(proa_transport_close(c->t), 0);
	DRIVE_NS(loop, c->lost && sf.peers && sf.peers->lost);
	close_server(loop, s);
	/* a connected socket is a transport's, not a server's */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	assert_res(proa_server_from_fd(&s, loop, sp[0], NULL, farm_make, &sf),
		   -EINVAL);
	close(sp[0]);
	close(sp[1]);
	farm_free(&sf);
	farm_free(&cf);
	proa_test_loop_close(loop);
}

/* ---- passing descriptors ------------------------------------------------ */

/* Receives descriptors: takes them in data_received and notes how many
 * bytes had arrived by then. */
struct fdpeer {
	struct peer pe;
	bool leave; /* leave them queued (closed with the transport) */
	int fds[8];
	uint64_t at[8]; /* pe.rx when fds[i] was taken, this piece included */
	unsigned nfds;
};

static void fdp_made(struct proa_protocol *p, struct proa_transport *t)
{
	p_made(p, t);
	assert_res(proa_transport_recv_fds(t), 0);
}

static void fdp_data(struct proa_protocol *p, const void *data, size_t len)
{
	struct fdpeer *f = proa_container_of(p, struct fdpeer, pe.p);
	int fd;

	p_data(p, data, len);
	while (!f->leave && (fd = proa_transport_take_fd(f->pe.t)) >= 0) {
		assert_true(f->nfds < 8);
		assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
		f->at[f->nfds] = f->pe.rx;
		f->fds[f->nfds++] = fd;
	}
}

static const struct proa_protocol_ops fdpeer_ops = {
    .connection_made = fdp_made,
    .data_received = fdp_data,
    .eof_received = p_eof,
    .connection_lost = p_lost,
};

/* Descriptors cross a UNIX socket with the byte they were written with,
 * in order with the writes around them; they work on the other side; the
 * sender's copies are its own to close at once; descriptors nobody takes
 * are closed with the transport; other kinds refuse. */
static void test_scm_rights_round_trip(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct peer tx = {.p.ops = &peer_ops};
	struct fdpeer rx = {.pe.p.ops = &fdpeer_ops};
	struct proa_transport *t = NULL;
	int sp[2], p1[2], p2[2], two[2];
	char c = 0;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	assert_res(proa_transport_from_fd(&t, loop, sp[0], NULL, &tx.p), 0);
	assert_res(proa_transport_from_fd(&t, loop, sp[1], NULL, &rx.pe.p), 0);
	assert_res(proa_transport_take_fd(tx.t), -EOPNOTSUPP);
	assert_int_equal(pipe2(p1, O_CLOEXEC), 0);
	assert_int_equal(pipe2(p2, O_CLOEXEC), 0);
	assert_res(proa_transport_write(tx.t, "aaa", 3), 0);
	assert_res(proa_transport_write_fds(tx.t, "b", 1, &p1[0], 1), 0);
	two[0] = p2[0];
	two[1] = p2[1];
	assert_res(proa_transport_write_fds(tx.t, "cc", 2, two, 2), 0);
	assert_res(proa_transport_write(tx.t, "dddd", 4), 0);
	/* the sender's own copies: closed now, the transport sends dups */
	close(p1[0]);
	close(p2[0]);
	close(p2[1]);
	assert_res(proa_transport_write_fds(tx.t, "x", 0, &p1[1], 1), -EINVAL);
	assert_res(proa_transport_write_fds(tx.t, "x", 1, &p1[1], 0), -EINVAL);
	assert_res(proa_transport_write_fds(tx.t, "x", 1, &p2[0], 1), -EBADF);
	DRIVE_NS(loop, rx.pe.rx == 10);
	assert_int_equal(rx.nfds, 3);
	/* with their bytes: none before "b", the pair by the end of "cc" */
	assert_true(rx.at[0] >= 4);
	assert_true(rx.at[1] >= 6 && rx.at[2] >= 6);
	/* they work: p1's read end came over, p2's both ends */
	assert_int_equal(write(p1[1], "!", 1), 1);
	assert_int_equal(read(rx.fds[0], &c, 1), 1);
	assert_int_equal(c, '!');
	assert_int_equal(write(rx.fds[2], "?", 1), 1);
	assert_int_equal(read(rx.fds[1], &c, 1), 1);
	assert_int_equal(c, '?');
	close(p1[1]);
	for (unsigned i = 0; i < rx.nfds; i++)
		close(rx.fds[i]);

	/* descriptors left in the queue are closed with the transport */
	rx.leave = true;
	assert_int_equal(pipe2(p1, O_CLOEXEC), 0);
	assert_res(proa_transport_write_fds(tx.t, "e", 1, p1, 2), 0);
	close(p1[0]);
	close(p1[1]);
	DRIVE_NS(loop, rx.pe.rx == 11);
	assert_res(proa_transport_close(tx.t), 0);
	DRIVE_NS(loop, tx.lost && rx.pe.lost);
	assert_res(tx.err, 0);
	assert_res(rx.pe.err, 0);
	proa_test_loop_close(loop);
}

/* Takes every descriptor waiting on @t, closing each; how many so far. */
static unsigned take_all(struct proa_transport *t, unsigned *taken)
{
	int fd;

	while ((fd = proa_transport_take_fd(t)) >= 0) {
		close(fd);
		(*taken)++;
	}
	return *taken;
}

/* A peer that sends descriptors faster than they are taken cannot make the
 * receiver hold more than PROA_TRANSPORT_FDS_QUEUED of them (it held all it
 * was sent, 969 in the audit that found it, up to the process's limit):
 * the receive stops, the peer waits, and taking some lets the rest come,
 * none lost. */
static void test_scm_rights_queue_is_bounded(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct peer tx = {.p.ops = &peer_ops};
	struct fdpeer rx = {.pe.p.ops = &fdpeer_ops, .leave = true};
	struct proa_transport *t = NULL;
	struct proa_timer window;
	const unsigned msgs = 20, per = PROA_TRANSPORT_FDS_MAX;
	const unsigned held = PROA_TRANSPORT_FDS_QUEUED / per;
	int sp[2], p[2], fds[PROA_TRANSPORT_FDS_MAX];
	unsigned i, taken = 0;
	bool passed = false;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	assert_res(proa_transport_from_fd(&t, loop, sp[0], NULL, &tx.p), 0);
	assert_res(proa_transport_from_fd(&t, loop, sp[1], NULL, &rx.pe.p), 0);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	for (i = 0; i < per; i++)
		fds[i] = p[0];
	for (i = 0; i < msgs; i++)
		assert_res(proa_transport_write_fds(tx.t, "m", 1, fds, per), 0);
	close(p[0]);
	close(p[1]);
	/* A message's descriptors come with its byte: bytes count them. */
	DRIVE_NS(loop, rx.pe.rx == held);
	/* Nothing more comes while the queue is full (a 100 ms window). */
	memset(&window, 0, sizeof(window));
	assert_res(
	    proa_loop_call_later(loop, &window, 100000000, set_flag, &passed),
	    0);
	DRIVE_NS(loop, passed);
	assert_int_equal(rx.pe.rx, held);
	/* Room for one message: one more comes. */
	for (i = 0; i < per; i++) {
		int fd = proa_transport_take_fd(rx.pe.t);

		assert_true(fd >= 0);
		close(fd);
		taken++;
	}
	DRIVE_NS(loop, rx.pe.rx == held + 1);
	/* Taken as they come, all arrive. */
	DRIVE_NS(loop, take_all(rx.pe.t, &taken) == msgs * per);
	assert_int_equal(rx.pe.rx, msgs);
	assert_res(proa_transport_close(tx.t), 0);
	DRIVE_NS(loop, tx.lost && rx.pe.lost);
	assert_res(tx.err, 0);
	assert_res(rx.pe.err, 0);
	proa_test_loop_close(loop);
}

/* Transports that are not UNIX sockets refuse to pass descriptors. */
static void test_scm_rights_refused(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {0}, cf = {0};
	struct proa_server *s = listen_local(loop, NULL, &sf);
	struct peer *c = connect_local(loop, proa_server_port(s), NULL, &cf);
	struct peer *w, *r;
	int fd = 0;

	(void)state;
	assert_res(proa_transport_write_fds(c->t, "x", 1, &fd, 1), -EOPNOTSUPP);
	assert_res(proa_transport_recv_fds(c->t), -EOPNOTSUPP);
	assert_res(proa_transport_take_fd(c->t), -EOPNOTSUPP);
	one_way_pair(loop, &w, &r, 0);
	assert_res(proa_transport_write_fds(w->t, "x", 1, &fd, 1), -EOPNOTSUPP);
	assert_res(proa_transport_recv_fds(r->t), -EOPNOTSUPP);
	assert_res(proa_transport_close(w->t), 0);
	DRIVE_NS(loop, w->lost && r->lost);
	free(w);
	free(r);
	assert_res(proa_transport_close(c->t), 0);
	DRIVE_NS(loop, c->lost && sf.peers && sf.peers->lost);
	close_server(loop, s);
	farm_free(&sf);
	farm_free(&cf);
	proa_test_loop_close(loop);
}

/* ---- proa_listen_fds ---------------------------------------------------- */

/* Descriptors 3..5 as the test found them, put back afterwards. */
struct saved_fds {
	int copy[3];
};

static void save_low_fds(struct saved_fds *sv)
{
	int i;

	for (i = 0; i < 3; i++) {
		sv->copy[i] = fcntl(3 + i, F_GETFD) >= 0
				  ? fcntl(3 + i, F_DUPFD_CLOEXEC, 100)
				  : -1;
		close(3 + i);
	}
}

static void restore_low_fds(struct saved_fds *sv)
{
	int i;

	for (i = 0; i < 3; i++) {
		close(3 + i);
		if (sv->copy[i] >= 0) {
			assert_int_equal(dup2(sv->copy[i], 3 + i), 3 + i);
			close(sv->copy[i]);
		}
	}
}

static bool cloexec(int fd)
{
	return (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0;
}

static void set_listen_env(const char *pid, const char *n)
{
	char me[32];

	if (!pid) {
		snprintf(me, sizeof(me), "%ld", (long)getpid());
		pid = me;
	}
	assert_int_equal(proa_test_setenv("LISTEN_PID", pid), 0);
	assert_int_equal(proa_test_setenv("LISTEN_FDS", n), 0);
	assert_int_equal(proa_test_setenv("LISTEN_FDNAMES", "web:admin"), 0);
}

/*
 * sd_listen_fds(3)'s protocol: only for the process LISTEN_PID names,
 * descriptors from 3 on made close-on-exec, the environment cleaned when
 * asked, and malformed numbers or a counted descriptor that is not open
 * refused.
 */
static void test_listen_fds(void **state)
{
	struct saved_fds sv;
	char other[32];
	int s, fds = proa_test_fds();

	(void)state;
	save_low_fds(&sv);
	/* Above 5 first: the socket would otherwise be made as 3 itself. */
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(s >= 0);
	s = fcntl(s, F_DUPFD_CLOEXEC, 10);
	assert_true(s >= 10);
	assert_int_equal(close(3), 0);
	assert_int_equal(dup2(s, 3), 3); /* dup2 leaves FD_CLOEXEC off */
	assert_int_equal(dup2(s, 4), 4);
	assert_int_equal(close(s), 0);

	proa_test_unsetenv("LISTEN_PID");
	proa_test_unsetenv("LISTEN_FDS");
	assert_res(proa_listen_fds(1), 0);

	/* A parent's variables, inherited: not ours, kept when asked to. */
	snprintf(other, sizeof(other), "%ld", (long)getpid() + 1);
	set_listen_env(other, "2");
	assert_res(proa_listen_fds(0), 0);
	assert_non_null(proa_test_getenv("LISTEN_FDS"));
	assert_false(cloexec(3));

	set_listen_env(NULL, "0");
	assert_res(proa_listen_fds(0), 0);
	set_listen_env(NULL, "2x");
	assert_res(proa_listen_fds(0), -EINVAL);
	set_listen_env(NULL, "99999999999999999999");
	assert_res(proa_listen_fds(0), -EINVAL);
	set_listen_env("", "2");
	assert_res(proa_listen_fds(0), -EINVAL);
	set_listen_env(NULL, "-1");
	assert_res(proa_listen_fds(0), -EINVAL);
	set_listen_env(NULL, "3"); /* descriptor 5 is not open */
	assert_res(proa_listen_fds(0), -EBADF);

	set_listen_env(NULL, "2");
	assert_res(proa_listen_fds(1), 2);
	assert_true(cloexec(3));
	assert_true(cloexec(4));
	assert_null(proa_test_getenv("LISTEN_PID"));
	assert_null(proa_test_getenv("LISTEN_FDS"));
	assert_null(proa_test_getenv("LISTEN_FDNAMES"));
	/* Once taken, a second call finds nothing. */
	assert_res(proa_listen_fds(1), 0);

	restore_low_fds(&sv);
	assert_int_equal(proa_test_fds(), fds);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_pipe_duplex_round_trip, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_pipe_one_way_eof, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_pipe_nonblocking_ends, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_pipe_pause_reading_and_idle,
					    setup, teardown_check),
	    cmocka_unit_test_setup_teardown(test_pipe_reader_gone, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_pipe_close_flushes, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_pipe_child_never_reads, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_pipe_child_stdout, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_pipe_pty, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_transport_from_fd, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(
		test_unix_peer_half_closes_while_full, setup, teardown_check),
	    cmocka_unit_test_setup_teardown(
		test_tcp_peer_half_closes_while_full, setup, teardown_check),
	    cmocka_unit_test(test_listen_fds),
	    cmocka_unit_test_setup_teardown(test_server_from_fd, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_scm_rights_round_trip, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_scm_rights_queue_is_bounded,
					    setup, teardown_check),
	    cmocka_unit_test_setup_teardown(test_scm_rights_refused, setup,
					    teardown_check),
	};

	/* Writing to a pipe nobody reads raises SIGPIPE (proa/net.h). */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("net.pipe", tests, NULL, NULL);
}
