/* SPDX-License-Identifier: MIT */
/*
 * tests/kernel/net/test_tcp_hostile.c - transports against peers that stop
 * half-way, and the per-loop state that connections share:
 *
 *  - a connection torn down while a file range is being spliced through a
 *    cached pipe must not leave bytes in that pipe for the next connection
 *    (one client's file in another's response);
 *  - pause_writing / resume_writing come in pairs even when the write
 *    buffer crosses the high mark and drains again before the pause is
 *    delivered, so a protocol that looked at write_buffer_size() and saw
 *    it above the high mark is always woken (a deep pipeline that hung).
 *
 * Every file served carries a pattern that depends on the file and the
 * offset, so a byte of the wrong file or at the wrong place is caught.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/net_int.h"
#include "proa_test.h"

#define MAX_ITER 20000000u
#define WAIT_NS (UINT64_C(30) * 1000000000)
#define DRIVE_NS(loop, expr) PROA_TEST_DRIVE_NS(loop, expr, WAIT_NS)

/* Bigger than one 1 MiB pipe, so a file goes through it in two rounds. */
#define FILE_LEN ((size_t)1100 * 1024)
#define ROUNDS 120

/* The byte at @off of test file @file (1, 2, ...). */
static uint8_t file_byte(unsigned file, uint64_t off)
{
	return (uint8_t)(proa_test_pattern(off) ^ (file * 0x5bu));
}

static int make_file(unsigned file, size_t len)
{
	char path[] = "/tmp/proa-hostile-XXXXXX";
	uint8_t *buf = malloc(len);
	int fd = mkstemp(path);
	size_t i;

	assert_non_null(buf);
	assert_true(fd >= 0);
	unlink(path);
	for (i = 0; i < len; i++)
		buf[i] = file_byte(file, i);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	free(buf);
	return fd;
}

/* ---- the server: one command byte, one file, then close or abort -------- */

struct fsrv {
	int fd[3]; /* fd[1], fd[2]: the files */
	unsigned made, lost, released;
	unsigned abort_after; /* iterations between sendfile and abort */
	bool wait_pipe;	      /* abort once the pipe holds bytes */
};

struct fconn {
	struct proa_protocol p;
	struct fsrv *srv;
	struct proa_transport *t;
	unsigned countdown;
	struct proa_handle h;
};

static void f_release(void *arg)
{
	((struct fsrv *)arg)->released++;
}

/*
 * Wait (bounded) until the splice file -> pipe has put bytes in the
 * transport's pipe: the abort then comes after the kernel did the work
 * but before the loop saw its completion, as when a client's reset and
 * the splice's completion arrive in one batch.
 */
static void wait_pipe_filled(struct proa_transport *t)
{
	uint64_t end = proa_test_now_ns() + UINT64_C(1000000000);
	int n = 0;

	while (proa__sock_of(t)->pipe && proa_test_now_ns() < end &&
	       ioctl(proa__sock_of(t)->pipe->rd, FIONREAD, &n) == 0 && n == 0)
		;
}

static void f_abort_step(void *arg)
{
	struct fconn *c = arg;

	if (c->countdown-- > 0) {
		assert_int_equal(proa_loop_call_soon(proa_transport_loop(c->t),
						     &c->h, f_abort_step, c),
				 0);
		return;
	}
	if (c->srv->wait_pipe)
		wait_pipe_filled(c->t);
	proa_transport_abort(c->t);
}

static void f_data(struct proa_protocol *p, const void *data, size_t len)
{
	struct fconn *c = proa_container_of(p, struct fconn, p);
	const char *d = data;
	unsigned file = d[0] == 'b' ? 2 : 1;

	assert_int_equal(len, 1);
	assert_int_equal(proa_transport_sendfile(c->t, c->srv->fd[file], 0,
						 FILE_LEN, f_release, c->srv),
			 0);
	if (d[0] == 'x') {
		/* Torn down while the file is on its way: the splice into
		 * the pipe is in flight (or just done) when the abort
		 * cancels it. */
		c->countdown = c->srv->abort_after;
		assert_int_equal(proa_loop_call_soon(proa_transport_loop(c->t),
						     &c->h, f_abort_step, c),
				 0);
	} else {
		assert_int_equal(proa_transport_close(c->t), 0);
	}
}

static void f_made(struct proa_protocol *p, struct proa_transport *t)
{
	struct fconn *c = proa_container_of(p, struct fconn, p);

	c->t = t;
	c->srv->made++;
}

static void f_lost(struct proa_protocol *p, int err)
{
	struct fconn *c = proa_container_of(p, struct fconn, p);

	(void)err;
	c->srv->lost++;
	proa_handle_cancel(&c->h);
	free(c);
}

static const struct proa_protocol_ops fsrv_ops = {
    .connection_made = f_made,
    .data_received = f_data,
    .connection_lost = f_lost,
};

static struct proa_protocol *fsrv_make(void *arg, struct proa_transport *t)
{
	struct fconn *c = calloc(1, sizeof(*c));

	(void)t;
	assert_non_null(c);
	c->p.ops = &fsrv_ops;
	c->srv = arg;
	return &c->p;
}

/* ---- the client: asks for a file and checks every byte ------------------- */

struct fcli {
	struct proa_protocol p;
	struct proa_transport *t;
	char cmd;
	unsigned file;
	uint64_t rx, bad, first_bad;
	bool made, lost;
	int err;
};

static void c_made(struct proa_protocol *p, struct proa_transport *t)
{
	struct fcli *c = proa_container_of(p, struct fcli, p);

	c->t = t;
	c->made = true;
	assert_int_equal(proa_transport_write(t, &c->cmd, 1), 0);
}

static void c_data(struct proa_protocol *p, const void *data, size_t len)
{
	struct fcli *c = proa_container_of(p, struct fcli, p);
	const uint8_t *b = data;
	size_t i;

	for (i = 0; i < len; i++) {
		if (b[i] != file_byte(c->file, c->rx + i) && c->bad++ == 0)
			c->first_bad = c->rx + i;
	}
	c->rx += len;
}

static void c_lost(struct proa_protocol *p, int err)
{
	struct fcli *c = proa_container_of(p, struct fcli, p);

	c->lost = true;
	c->err = err;
	c->t = NULL;
}

static const struct proa_protocol_ops fcli_ops = {
    .connection_made = c_made,
    .data_received = c_data,
    .connection_lost = c_lost,
};

static struct proa_protocol *fcli_make(void *arg, struct proa_transport *t)
{
	(void)t;
	return &((struct fcli *)arg)->p;
}

static void fetch(struct proa_loop *loop, uint16_t port, struct fcli *c)
{
	struct proa_future fut;

	c->p.ops = &fcli_ops;
	proa_future_init(&fut, loop);
	assert_int_equal(
	    proa_tcp_connect(loop, "127.0.0.1", port, NULL, fcli_make, c, &fut),
	    0);
	DRIVE_NS(loop, proa_future_is_done(&fut));
	assert_int_equal(proa_future_result(&fut, NULL), 0);
	assert_int_equal(proa_future_fini(&fut), 0);
	DRIVE_NS(loop, c->lost);
}

/* Every pipe the loop keeps for reuse is empty. */
static void check_cached_pipes(struct proa_loop *loop)
{
	struct proa__netloop *nl = proa__netloop_get(loop);
	struct proa__pipe *p;
	int n;

	for (p = nl->free_pipes; p; p = p->next) {
		assert_int_equal(ioctl(p->rd, FIONREAD, &n), 0);
		if (n != 0)
			fail_msg("a cached pipe holds %d bytes of an earlier "
				 "connection",
				 n);
	}
}

/* Listen on 127.0.0.1, any port; return the port. */
static uint16_t listen_on(struct proa_loop *loop,
			  const struct proa_server_options *opt,
			  proa_protocol_factory make, void *arg,
			  struct proa_server **s)
{
	struct sockaddr_in a = {.sin_family = AF_INET};

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(proa_tcp_listen_addr(s, loop, (struct sockaddr *)&a,
					      sizeof(a), opt, make, arg),
			 0);
	return proa_server_port(*s);
}

static uint16_t listen_here(struct proa_loop *loop, struct fsrv *srv,
			    struct proa_server **s)
{
	return listen_on(loop, NULL, fsrv_make, srv, s);
}

/* A plain non-blocking client socket connecting to 127.0.0.1:@port. */
static int raw_connect(uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	assert_true(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons(port);
	assert_true(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 ||
		    errno == EINPROGRESS);
	return fd;
}

static void close_server(struct proa_loop *loop, struct proa_server *s)
{
	struct proa_future done;

	proa_future_init(&done, loop);
	assert_int_equal(proa_server_close(s, &done), 0);
	DRIVE_NS(loop, proa_future_is_done(&done));
	assert_int_equal(proa_future_result(&done, NULL), 0);
	assert_int_equal(proa_future_fini(&done), 0);
}

/*
 * Rounds of: a connection aborted a few iterations after its sendfile
 * started (the splice file -> pipe in flight, or its completion racing
 * the cancel), then a connection that takes file 2 whole and checks every
 * byte.  Before the fix, a splice that completed during teardown left its
 * bytes in the pipe, the pipe went back to the cache as clean, and the
 * next connection's file began with the aborted one's bytes.
 */
static void test_sendfile_abort_pipe_reuse(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct fsrv srv = {
	    .fd = {-1, make_file(1, FILE_LEN), make_file(2, FILE_LEN)}};
	struct proa_server *s = NULL;
	uint16_t port = listen_here(loop, &srv, &s);
	unsigned i, conns = 0;

	(void)state;
	if (!proa_loop_feature(loop, PROA_FEAT_OP_SPLICE)) {
		/* Without splice there is no pipe: sendfile maps. Still
		 * run the rounds, they must pass as well. */
		print_message("no splice here: the mapped path is tested\n");
	}
	for (i = 0; i < ROUNDS; i++) {
		struct fcli bad = {.cmd = 'x', .file = 1};
		struct fcli good = {.cmd = 'b', .file = 2};

		srv.abort_after = i % 4;
		srv.wait_pipe = i % 2 == 0;
		fetch(loop, port, &bad);
		assert_int_equal(bad.bad, 0);
		check_cached_pipes(loop);
		fetch(loop, port, &good);
		if (good.bad)
			fail_msg(
			    "round %u: %llu of %llu bytes of file 2 wrong, "
			    "the first at offset %llu",
			    i, (unsigned long long)good.bad,
			    (unsigned long long)good.rx,
			    (unsigned long long)good.first_bad);
		assert_int_equal(good.rx, FILE_LEN);
		assert_int_equal(good.err, 0);
		conns += 2;
	}
	DRIVE_NS(loop, srv.lost == conns);
	assert_int_equal(srv.made, conns);
	assert_int_equal(srv.released, conns);
	close_server(loop, s);
	close(srv.fd[1]);
	close(srv.fd[2]);
	proa_test_loop_close(loop);
}

/* A client that reads part of a file and resets (SO_LINGER 0), as a
 * browser that gives up does: the pipe it leaves behind is never reused
 * with bytes in it. */
static void test_sendfile_reset_mid_body(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct fsrv srv = {
	    .fd = {-1, make_file(1, FILE_LEN), make_file(2, FILE_LEN)}};
	struct proa_server *s = NULL;
	uint16_t port = listen_here(loop, &srv, &s);
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	unsigned i, conns = 0;
	static uint8_t buf[65536];

	(void)state;
	for (i = 0; i < 24; i++) {
		struct fcli good = {.cmd = 'b', .file = 2};
		/* How much of the file the client takes before it resets:
		 * across the first pipe's end (1 MiB) and beyond. */
		size_t want = (size_t)1024 * 1024 - 4096 + (size_t)i * 600;
		size_t got = 0;
		int fd = raw_connect(port);
		ssize_t n;

		DRIVE_NS(loop, srv.made == conns + 1);
		assert_int_equal(send(fd, "a", 1, MSG_NOSIGNAL), 1);
		while (got < want) {
			n = recv(fd, buf,
				 want - got < sizeof(buf) ? want - got
							  : sizeof(buf),
				 0);
			if (n > 0) {
				for (ssize_t k = 0; k < n; k++)
					assert_int_equal(buf[k],
							 file_byte(1, got + k));
				got += (size_t)n;
				continue;
			}
			assert_true(n < 0 && errno == EAGAIN);
			assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
		}
		assert_int_equal(
		    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
		close(fd);
		DRIVE_NS(loop, srv.lost == conns + 1);
		check_cached_pipes(loop);
		fetch(loop, port, &good);
		assert_int_equal(good.bad, 0);
		assert_int_equal(good.rx, FILE_LEN);
		conns += 2;
	}
	DRIVE_NS(loop, srv.lost == conns);
	assert_int_equal(srv.released, conns);
	close_server(loop, s);
	close(srv.fd[1]);
	close(srv.fd[2]);
	proa_test_loop_close(loop);
}

/* ---- flow control: every pause_writing is answered ---------------------- */

/*
 * A protocol in the shape of an HTTP server that pipelines: each piece of
 * input is a request; it answers requests while the write buffer is under
 * the high mark and stops otherwise, to go on in resume_writing.
 */
struct pl {
	struct proa_protocol p;
	struct proa_transport *t;
	unsigned pending; /* requests not answered yet */
	unsigned answered, pauses, resumes;
	bool paused, lost;
	size_t high;
};

static void pl_answer(struct pl *c)
{
	static const char resp[300] = {'r'};

	while (c->pending > 0 && !c->paused &&
	       proa_transport_write_buffer_size(c->t) <= c->high) {
		assert_int_equal(proa_transport_write(c->t, resp, sizeof(resp)),
				 0);
		c->pending--;
		c->answered++;
	}
}

static void pl_data(struct proa_protocol *p, const void *data, size_t len)
{
	struct pl *c = proa_container_of(p, struct pl, p);

	(void)data;
	c->pending += (unsigned)len;
	pl_answer(c);
}

static void pl_pause(struct proa_protocol *p)
{
	struct pl *c = proa_container_of(p, struct pl, p);

	assert_false(c->paused);
	c->paused = true;
	c->pauses++;
}

static void pl_resume(struct proa_protocol *p)
{
	struct pl *c = proa_container_of(p, struct pl, p);

	assert_true(c->paused);
	c->paused = false;
	c->resumes++;
	pl_answer(c);
}

static void pl_made(struct proa_protocol *p, struct proa_transport *t)
{
	struct pl *c = proa_container_of(p, struct pl, p);

	c->t = t;
}

static void pl_lost(struct proa_protocol *p, int err)
{
	struct pl *c = proa_container_of(p, struct pl, p);

	(void)err;
	c->lost = true;
	c->t = NULL;
}

static const struct proa_protocol_ops pl_ops = {
    .connection_made = pl_made,
    .data_received = pl_data,
    .connection_lost = pl_lost,
    .pause_writing = pl_pause,
    .resume_writing = pl_resume,
};

static struct proa_protocol *pl_make(void *arg, struct proa_transport *t)
{
	(void)t;
	return &((struct pl *)arg)->p;
}

/*
 * 5,000 one-byte "requests" in one send, answered 300 bytes each while
 * the buffer is at most 4 KiB; the client reads everything.  The buffer
 * goes over the high mark and, the socket taking it all at once, back
 * under the low mark before the pause notice runs: the protocol that
 * stopped on the size must still be told to go on.
 */
static void test_pipeline_pause_resume_pairs(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct pl srv = {.p.ops = &pl_ops, .high = 4096};
	struct proa_server_options so = {.transport.write_high = 4096,
					 .transport.write_low = 1024};
	struct proa_server *s = NULL;
	static char req[5000], buf[65536];
	size_t got = 0, want = sizeof(req) * 300;
	int fd;
	ssize_t n;

	(void)state;
	memset(req, 'g', sizeof(req));
	fd = raw_connect(listen_on(loop, &so, pl_make, &srv, &s));
	DRIVE_NS(loop, srv.t != NULL);
	assert_int_equal(send(fd, req, sizeof(req), MSG_NOSIGNAL),
			 (ssize_t)sizeof(req));
	{
		uint64_t end = proa_test_now_ns() + WAIT_NS;

		while (got < want && proa_test_now_ns() < end) {
			n = recv(fd, buf, sizeof(buf), 0);
			if (n > 0) {
				got += (size_t)n;
				continue;
			}
			assert_true(n < 0 && errno == EAGAIN);
			assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
		}
	}
	if (got != want)
		fail_msg("%zu of %zu bytes came back (%u requests answered, "
			 "%u pauses, %u resumes, buffer %zu): a pause was "
			 "never followed by a resume",
			 got, want, srv.answered, srv.pauses, srv.resumes,
			 proa_transport_write_buffer_size(srv.t));
	assert_int_equal(srv.pauses, srv.resumes);
	close(fd);
	DRIVE_NS(loop, srv.lost);
	close_server(loop, s);
	proa_test_loop_close(loop);
}

/* ---- pause_reading: what a transport holds for a paused protocol -------- */

struct rp {
	struct proa_protocol p;
	struct proa_transport *t;
	uint64_t rx;
	unsigned pauses;
	bool lost, drain;
};

/* Every piece pauses reading: the protocol is always "full". */
static void rp_data(struct proa_protocol *p, const void *data, size_t len)
{
	struct rp *c = proa_container_of(p, struct rp, p);

	(void)data;
	c->rx += len;
	if (c->drain)
		return;
	c->pauses++;
	assert_int_equal(proa_transport_pause_reading(c->t), 0);
}

static void rp_made(struct proa_protocol *p, struct proa_transport *t)
{
	proa_container_of(p, struct rp, p)->t = t;
}

static void rp_lost(struct proa_protocol *p, int err)
{
	struct rp *c = proa_container_of(p, struct rp, p);

	(void)err;
	c->lost = true;
	c->t = NULL;
}

static const struct proa_protocol_ops rp_ops = {
    .connection_made = rp_made,
    .data_received = rp_data,
    .connection_lost = rp_lost,
};

static struct proa_protocol *rp_make(void *arg, struct proa_transport *t)
{
	(void)t;
	return &((struct rp *)arg)->p;
}

/* Pause, let the receive end, and check what the transport holds.  Done
 * also when everything sent has reached the protocol (a receive then
 * waits for bytes that will not come). */
static void rp_settle(struct proa_loop *loop, struct rp *c, size_t max_held,
		      size_t sent)
{
	DRIVE_NS(loop, (c->pauses > 0 &&
			proa_op_is_idle(&proa__sock_of(c->t)->rop)) ||
			   c->rx == sent);
	if (proa__sock_of(c->t)->held_len > max_held)
		fail_msg("%zu bytes held after pause_reading, bound %zu",
			 proa__sock_of(c->t)->held_len, max_held);
}

/* Send what the socket takes now, up to @total in all. */
static void top_up(int fd, size_t *sent, size_t total)
{
	static char buf[1 << 16];
	size_t want;
	ssize_t n;

	memset(buf, 'p', sizeof(buf));
	while (*sent < total) {
		want =
		    total - *sent < sizeof(buf) ? total - *sent : sizeof(buf);
		n = send(fd, buf, want, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n <= 0)
			break; /* the socket buffers are full */
		*sent += (size_t)n;
	}
}

/*
 * A peer that sends 4 MiB, as fast as the socket takes it, to a protocol
 * that pauses after every piece.  With recv_oneshot, each pause leaves at
 * most one receive buffer held; without it the first pause may take a
 * multishot burst, but every later one holds one buffer at most (the
 * transport went one-shot).  Held bytes go to the protocol a piece per
 * resume, and nothing new is received while any are held.
 */
static void run_pause_bound(bool oneshot)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct rp srv = {.p.ops = &rp_ops};
	struct proa_server_options so = {.transport.recv_oneshot = oneshot};
	struct proa_server *s = NULL;
	size_t total = (size_t)4 << 20, sent = 0, bufsize, before;
	unsigned after_burst = 0;
	int fd;

	fd = raw_connect(listen_on(loop, &so, rp_make, &srv, &s));
	DRIVE_NS(loop, srv.t != NULL);
	bufsize = proa__netloop_get(loop)->bufsize;
	/* A first MiB for the burst; the rest only once it is taken, so
	 * that pauses after the burst have bytes to receive too. */
	top_up(fd, &sent, total / 4);
	assert_true(sent > 4 * bufsize);
	rp_settle(loop, &srv, oneshot ? bufsize : sent, sent);
	while (srv.rx < total) {
		before = proa__sock_of(srv.t)->held_len;
		after_burst += before <= bufsize;
		if (before == 0)
			top_up(fd, &sent, total);
		srv.pauses = 0;
		assert_int_equal(proa_transport_resume_reading(srv.t), 0);
		rp_settle(loop, &srv, before > bufsize ? before : bufsize,
			  sent);
	}
	/* The bound was checked on pauses after the burst, not only on it. */
	assert_true(after_burst > 8);
	close(fd);
	srv.drain = true;
	assert_int_equal(proa_transport_resume_reading(srv.t), 0);
	DRIVE_NS(loop, srv.lost);
	close_server(loop, s);
	proa_test_loop_close(loop);
}

static void test_pause_reading_oneshot_bound(void **state)
{
	(void)state;
	run_pause_bound(true);
}

static void test_pause_reading_multishot_then_bound(void **state)
{
	(void)state;
	run_pause_bound(false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_sendfile_abort_pipe_reuse,
					    proa_test_fds_setup,
					    proa_test_fds_check),
	    cmocka_unit_test_setup_teardown(test_sendfile_reset_mid_body,
					    proa_test_fds_setup,
					    proa_test_fds_check),
	    cmocka_unit_test_setup_teardown(test_pipeline_pause_resume_pairs,
					    proa_test_fds_setup,
					    proa_test_fds_check),
	    cmocka_unit_test_setup_teardown(test_pause_reading_oneshot_bound,
					    proa_test_fds_setup,
					    proa_test_fds_check),
	    cmocka_unit_test_setup_teardown(
		test_pause_reading_multishot_then_bound, proa_test_fds_setup,
		proa_test_fds_check),
	};

	proa_test_require_uring();
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("net.tcp_hostile", tests, NULL,
					   NULL);
}
