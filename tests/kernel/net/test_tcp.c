/* SPDX-License-Identifier: MIT */
/*
 * tests/kernel/net/test_tcp.c - TCP and UNIX transports, servers and
 * clients on loopback with real sockets: byte-exact echo through a small
 * send buffer, 1,000 connections, half-close both ways, a peer's reset in
 * mid-write, water marks, paused reading, provided-buffer exhaustion,
 * close with operations in flight, EMFILE on accept, refused and timed-out
 * connects, idle and write timeouts; write_ref (caller memory sent without
 * a copy, released exactly once: sent, closed, aborted, reset).
 *
 * Peers are proa transports where that is enough, and plain blocking
 * sockets on a second thread where the test needs a peer that misbehaves
 * (resets, reads slowly); threads hand over with pthread condition
 * variables, never sleeps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "net/net_int.h"
#include "proa_test.h"
#include "ring/ring_int.h"

#define MAX_ITER 20000000u

/* Iterate until @expr holds (proa_test.h). */
#define DRIVE(loop, expr) PROA_TEST_DRIVE(loop, expr, MAX_ITER)

/* The same, bounded in time: for waits on many connections, where a
 * connection nobody serves would keep each iteration asleep. */
#define WAIT_NS (UINT64_C(30) * 1000000000)
#define DRIVE_NS(loop, expr) PROA_TEST_DRIVE_NS(loop, expr, WAIT_NS)

/* 1,000 connections hold 2,000 descriptors, and the loop some more. */
#define THOUSAND_FDS 2100
static bool nofile_ok;
static char nofile_why[256];

#define pat proa_test_pattern

/* ---- a configurable test protocol --------------------------------------- */

enum {
	P_ECHO = 1 << 0, /* write back what arrives */
	P_FLOW = 1 << 1, /* echo: pause reading while writing is paused */
	P_KEEP_ON_EOF = 1 << 2, /* eof_received returns true */
	P_VERIFY = 1 << 3,	/* check bytes against pat() */
	P_PAUSE_EACH = 1 << 4,	/* pause reading after each data_received */
};

struct peer {
	struct proa_protocol p;
	struct proa_transport *t;
	unsigned flags;
	bool made, lost, eof, wpaused;
	int err;
	int fd;
	unsigned pauses, resumes;
	size_t buf_at_pause, buf_at_resume;
	uint64_t rx, bad;
	uint64_t rx_while_paused;
	bool reading_paused;
	bool ops_idle_at_lost; /* lost_ops_idle() ran */
	unsigned data_calls;
	unsigned lost_seq; /* ++order_seq at connection_lost */
	/* runs first in connection_lost, while pe->t is still valid */
	void (*on_lost)(struct peer *pe);
	struct proa_handle resume_h;
	struct peer *next; /* every peer a factory made */
};

/* Orders events across callbacks: connection_lost, write_ref releases. */
static unsigned order_seq;

static struct peer *peer_of(struct proa_protocol *p)
{
	return proa_container_of(p, struct peer, p);
}

static void p_made(struct proa_protocol *p, struct proa_transport *t)
{
	struct peer *pe = peer_of(p);

	pe->made = true;
	pe->t = t;
	pe->fd = proa_transport_fd(t);
}

static void p_resume(void *arg)
{
	struct peer *pe = arg;

	if (pe->lost || !pe->reading_paused)
		return;
	pe->reading_paused = false;
	assert_res(proa_transport_resume_reading(pe->t), 0);
}

static void p_data(struct proa_protocol *p, const void *data, size_t len)
{
	struct peer *pe = peer_of(p);
	const uint8_t *b = data;
	size_t i;

	assert_true(len > 0);
	pe->data_calls++;
	if (pe->reading_paused)
		pe->rx_while_paused += len;
	if (pe->flags & P_VERIFY) {
		for (i = 0; i < len; i++)
			pe->bad += b[i] != pat(pe->rx + i);
	}
	pe->rx += len;
	if (pe->flags & P_ECHO)
		assert_res(proa_transport_write(pe->t, data, len), 0);
	if (pe->flags & P_PAUSE_EACH) {
		/* A slow consumer: take one piece per iteration. */
		pe->reading_paused = true;
		assert_res(proa_transport_pause_reading(pe->t), 0);
		assert_res(proa_loop_call_soon(proa_transport_loop(pe->t),
					       &pe->resume_h, p_resume, pe),
			   0);
	}
}

static bool p_eof(struct proa_protocol *p)
{
	struct peer *pe = peer_of(p);

	pe->eof = true;
	return pe->flags & P_KEEP_ON_EOF;
}

static void p_lost(struct proa_protocol *p, int err)
{
	struct peer *pe = peer_of(p);

	assert_false(pe->lost);
	if (pe->on_lost)
		pe->on_lost(pe);
	pe->lost = true;
	pe->lost_seq = ++order_seq;
	pe->err = err;
	pe->t = NULL;
}

static void p_pause_w(struct proa_protocol *p)
{
	struct peer *pe = peer_of(p);

	pe->pauses++;
	pe->wpaused = true;
	pe->buf_at_pause = proa_transport_write_buffer_size(pe->t);
	if (pe->flags & P_FLOW)
		assert_res(proa_transport_pause_reading(pe->t), 0);
}

static void p_resume_w(struct proa_protocol *p)
{
	struct peer *pe = peer_of(p);

	pe->resumes++;
	pe->wpaused = false;
	pe->buf_at_resume = proa_transport_write_buffer_size(pe->t);
	if (pe->flags & P_FLOW)
		assert_res(proa_transport_resume_reading(pe->t), 0);
}

static const struct proa_protocol_ops peer_ops = {
    .connection_made = p_made,
    .data_received = p_data,
    .eof_received = p_eof,
    .connection_lost = p_lost,
    .pause_writing = p_pause_w,
    .resume_writing = p_resume_w,
};

/* A factory's argument: the flags of the peers it makes, and their list. */
struct farm {
	unsigned flags;
	unsigned made;
	struct peer *peers;
};

static struct proa_protocol *farm_make(void *arg, struct proa_transport *t)
{
	struct farm *f = arg;
	struct peer *pe = calloc(1, sizeof(*pe));

	(void)t;
	assert_non_null(pe);
	pe->p.ops = &peer_ops;
	pe->flags = f->flags;
	pe->next = f->peers;
	f->peers = pe;
	f->made++;
	return &pe->p;
}

static void farm_free(struct farm *f)
{
	struct peer *pe;

	while ((pe = f->peers) != NULL) {
		f->peers = pe->next;
		free(pe);
	}
}

static unsigned farm_lost(const struct farm *f)
{
	const struct peer *pe;
	unsigned n = 0;

	for (pe = f->peers; pe; pe = pe->next)
		n += pe->lost;
	return n;
}

/* ---- helpers ------------------------------------------------------------ */

static struct proa_server *listen_local(struct proa_loop *loop,
					const struct proa_server_options *opt,
					struct farm *f)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	struct proa_server *s = NULL;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_res(proa_tcp_listen_addr(loop, (struct sockaddr *)&a, sizeof(a),
					opt, farm_make, f, &s),
		   0);
	assert_non_null(s);
	assert_true(proa_server_port(s) != 0);
	return s;
}

/* Connect a proa client to @host:@port and wait for it. */
static struct peer *connect_host(struct proa_loop *loop, const char *host,
				 uint16_t port,
				 const struct proa_connect_options *opt,
				 struct farm *f)
{
	struct proa_future fut;
	void *v = NULL;

	proa_future_init(&fut, loop);
	assert_res(proa_tcp_connect(loop, host, port, opt, farm_make, f, &fut),
		   0);
	DRIVE(loop, proa_future_is_done(&fut));
	assert_res(proa_future_result(&fut, &v), 0);
	assert_non_null(v);
	assert_res(proa_future_fini(&fut), 0);
	assert_true(f->peers->made);
	assert_ptr_equal(f->peers->t, v);
	return f->peers;
}

/* Connect a proa client to 127.0.0.1:@port and wait for it. */
static struct peer *connect_local(struct proa_loop *loop, uint16_t port,
				  const struct proa_connect_options *opt,
				  struct farm *f)
{
	return connect_host(loop, "127.0.0.1", port, opt, f);
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

/* Write @total bytes of pat() in pieces, respecting pause_writing. */
struct pump {
	struct peer *pe;
	uint64_t sent, total;
	size_t piece;
};

static void pump_more(struct pump *pu)
{
	uint8_t buf[65536];
	size_t n, i;

	while (pu->sent < pu->total && !pu->pe->wpaused && !pu->pe->lost) {
		n = pu->piece;
		if (n > pu->total - pu->sent)
			n = (size_t)(pu->total - pu->sent);
		for (i = 0; i < n; i++)
			buf[i] = pat(pu->sent + i);
		assert_res(proa_transport_write(pu->pe->t, buf, n), 0);
		pu->sent += n;
	}
}

#define setup proa_test_fds_setup
#define teardown_check proa_test_fds_check

/* ---- tests -------------------------------------------------------------- */

/* 64 MiB through a 4 KiB SO_SNDBUF both ways, echoed, byte-exact, with
 * flow control on the echo side. */
static void test_echo_64mib(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = P_ECHO | P_FLOW}, cf = {.flags = P_VERIFY};
	struct proa_server_options so = {.transport.sndbuf = 4096};
	struct proa_connect_options co = {.transport.sndbuf = 4096};
	struct proa_server *s = listen_local(loop, &so, &sf);
	struct peer *c = connect_local(loop, proa_server_port(s), &co, &cf);
	struct pump pu = {.pe = c, .total = 64u << 20, .piece = 65536};

	(void)state;
	while (c->rx < pu.total) {
		pump_more(&pu);
		assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
		assert_false(c->lost);
	}
	assert_int_equal(c->rx, pu.total);
	assert_int_equal(c->bad, 0);
	assert_true(c->pauses > 0 || sf.peers->pauses > 0);
	assert_res(proa_transport_close(c->t), 0);
	DRIVE(loop, c->lost && sf.peers->lost);
	assert_res(c->err, 0);
	assert_res(sf.peers->err, 0);
	assert_int_equal(sf.peers->rx, pu.total);
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

static unsigned futures_done(const struct proa_future *fut, unsigned n)
{
	unsigned i, done = 0;

	for (i = 0; i < n; i++)
		done += proa_future_is_done(&fut[i]);
	return done;
}

/* Peers of @f that received at least @len bytes. */
static unsigned farm_got(const struct farm *f, uint64_t len)
{
	const struct peer *pe;
	unsigned n = 0;

	for (pe = f->peers; pe; pe = pe->next)
		n += pe->rx >= len;
	return n;
}

/* 1,000 concurrent connections, each echoing its own message.  Every wait
 * is bounded in time: short of descriptors (RLIMIT_NOFILE, see main()),
 * accepts fail and connections wait in the backlog, and the test must
 * fail, not hang. */
static void test_thousand(void **state)
{
	struct proa_loop *loop;
	struct farm sf = {.flags = P_ECHO}, cf = {.flags = 0};
	struct proa_server *s;
	struct proa_future fut[1000];
	struct proa_server_stats st;
	struct peer *pe;
	unsigned i;
	char msg[32];

	(void)state;
	if (!nofile_ok)
		fail_msg("%s", nofile_why);
	loop = proa_test_loop_new();
	s = listen_local(loop, NULL, &sf);
	for (i = 0; i < 1000; i++) {
		proa_future_init(&fut[i], loop);
		assert_res(proa_tcp_connect(loop, "127.0.0.1",
					    proa_server_port(s), NULL,
					    farm_make, &cf, &fut[i]),
			   0);
	}
	DRIVE_NS(loop, futures_done(fut, 1000) == 1000);
	for (i = 0; i < 1000; i++) {
		assert_res(proa_future_result(&fut[i], NULL), 0);
		assert_res(proa_future_fini(&fut[i]), 0);
	}
	assert_int_equal(cf.made, 1000);
	for (pe = cf.peers; pe; pe = pe->next) {
		snprintf(msg, sizeof(msg), "hello %06d", pe->fd);
		assert_res(proa_transport_write(pe->t, msg, strlen(msg)), 0);
	}
	DRIVE_NS(loop, farm_got(&cf, 12) == 1000);
	assert_res(proa_server_stats(s, &st), 0);
	assert_int_equal(st.accepted, 1000);
	assert_int_equal(st.active, 1000);
	for (pe = cf.peers; pe; pe = pe->next)
		assert_res(proa_transport_close(pe->t), 0);
	DRIVE_NS(loop, farm_lost(&cf) == 1000 && farm_lost(&sf) == 1000);
	for (pe = sf.peers; pe; pe = pe->next)
		assert_res(pe->err, 0);
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

/* The client half-closes; the server keeps writing after EOF, then
 * closes; and the other way round. */
static void test_half_close(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = P_KEEP_ON_EOF},
		    cf = {.flags = P_KEEP_ON_EOF};
	struct proa_server *s = listen_local(loop, NULL, &sf);
	struct peer *c = connect_local(loop, proa_server_port(s), NULL, &cf);
	struct peer *sv;

	(void)state;
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	assert_true(proa_transport_can_write_eof(c->t));
	/* client -> server, then EOF */
	assert_res(proa_transport_write(c->t, "ping", 4), 0);
	assert_res(proa_transport_write_eof(c->t), 0);
	assert_res(proa_transport_write(c->t, "x", 1), -EPIPE);
	assert_int_equal(proa_transport_state(c->t), PROA_TS_HALF_LOCAL);
	DRIVE(loop, sv->eof);
	assert_int_equal(sv->rx, 4);
	assert_int_equal(proa_transport_state(sv->t), PROA_TS_HALF_PEER);
	/* the server still writes after the peer's EOF */
	assert_res(proa_transport_write(sv->t, "pong!", 5), 0);
	DRIVE(loop, c->rx == 5);
	assert_false(c->lost);
	assert_res(proa_transport_close(sv->t), 0);
	DRIVE(loop, c->lost && sv->lost);
	assert_true(c->eof);
	assert_res(c->err, 0);
	assert_res(sv->err, 0);

	/* server -> client, then EOF; the client answers after EOF */
	c = connect_local(loop, proa_server_port(s), NULL, &cf);
	DRIVE(loop, sf.peers != sv && sf.peers->made);
	sv = sf.peers;
	assert_res(proa_transport_write(sv->t, "hello", 5), 0);
	assert_res(proa_transport_write_eof(sv->t), 0);
	DRIVE(loop, c->eof);
	assert_int_equal(c->rx, 5);
	assert_res(proa_transport_write(c->t, "bye", 3), 0);
	assert_res(proa_transport_close(c->t), 0);
	DRIVE(loop, c->lost && sv->lost);
	assert_int_equal(sv->rx, 3);
	assert_true(sv->eof);
	assert_res(c->err, 0);
	assert_res(sv->err, 0);
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

/* ---- a raw peer on a thread --------------------------------------------- */

struct raw {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint16_t port;
	int step; /* loop thread -> raw thread */
	int done; /* raw thread -> loop thread (polled) */
	uint64_t got, bad;
	bool eof;
};

static void raw_wait_step(struct raw *r, int step)
{
	pthread_mutex_lock(&r->mu);
	while (r->step < step)
		pthread_cond_wait(&r->cv, &r->mu);
	pthread_mutex_unlock(&r->mu);
}

static void raw_set_step(struct raw *r, int step)
{
	pthread_mutex_lock(&r->mu);
	r->step = step;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

/* @rcvbuf > 0: SO_RCVBUF, set before connecting (shrinking a window
 * afterwards can stall the peer on zero-window probes). */
static int raw_connect_buf(uint16_t port, int rcvbuf)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd >= 0 && rcvbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons(port);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int raw_connect(uint16_t port)
{
	return raw_connect_buf(port, 0);
}

/* Connect, wait for step 1, then reset the connection (SO_LINGER 0). */
static void *raw_reset_main(void *arg)
{
	struct raw *r = arg;
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	int fd = raw_connect(r->port);

	if (fd < 0)
		abort();
	raw_wait_step(r, 1);
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
	__atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static struct sigaction old_pipe;

/* A peer resets while the server writes: connection_lost with ECONNRESET
 * or EPIPE, and no SIGPIPE (default disposition kills the test). */
static void test_reset_mid_write(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0};
	struct proa_server *s = listen_local(loop, NULL, &sf);
	struct raw r = {.port = proa_server_port(s)};
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	static uint8_t chunk[1 << 16];
	struct peer *sv;

	(void)state;
	sigaction(SIGPIPE, &dfl, &old_pipe);
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	assert_int_equal(pthread_create(&r.th, NULL, raw_reset_main, &r), 0);
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	/* More than the socket buffers hold: sends stay in flight. */
	while (proa_transport_write_buffer_size(sv->t) < (8u << 20))
		assert_res(proa_transport_write(sv->t, chunk, sizeof(chunk)),
			   0);
	assert_int_equal(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0, 1);
	raw_set_step(&r, 1);
	DRIVE(loop, sv->lost);
	assert_true(sv->err == -ECONNRESET || sv->err == -EPIPE);
	pthread_join(r.th, NULL);
	sigaction(SIGPIPE, &old_pipe, NULL);
	close_server(loop, s);
	proa_test_loop_close(loop);
	pthread_mutex_destroy(&r.mu);
	pthread_cond_destroy(&r.cv);
	farm_free(&sf);
}

/* Read nothing until step 1, then everything until EOF. */
static void *raw_slow_main(void *arg)
{
	struct raw *r = arg;
	uint8_t buf[65536];
	ssize_t n, i;
	int fd = raw_connect_buf(r->port, 4096);

	if (fd < 0)
		abort();
	raw_wait_step(r, 1);
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (i = 0; i < n; i++)
			r->bad += buf[i] != pat(r->got + (uint64_t)i);
		r->got += (uint64_t)n;
	}
	r->eof = n == 0;
	close(fd);
	__atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* A slow reader: pause_writing once the buffer passes the high mark,
 * resume_writing once it is back at the low one; then close with the
 * buffer still full flushes it all before the peer sees EOF. */
static void test_water_marks(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0};
	struct proa_server_options so = {.transport = {.write_high = 256 * 1024,
						       .write_low = 32 * 1024,
						       .sndbuf = 4096}};
	struct proa_server *s = listen_local(loop, &so, &sf);
	struct raw r = {.port = proa_server_port(s)};
	struct pump pu = {.total = 4u << 20, .piece = 8192};
	struct peer *sv;
	int fd;

	(void)state;
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	assert_int_equal(pthread_create(&r.th, NULL, raw_slow_main, &r), 0);
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	pu.pe = sv;
	pump_more(&pu);
	/* pause_writing comes from the ready queue, not inside write. */
	assert_int_equal(sv->pauses, 0);
	DRIVE(loop, sv->pauses == 1);
	assert_true(sv->buf_at_pause > 256 * 1024);
	raw_set_step(&r, 1);
	DRIVE(loop, sv->resumes == 1);
	assert_true(sv->buf_at_resume <= 32 * 1024);
	while (pu.sent < pu.total) {
		pump_more(&pu);
		assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
	}
	/* close with the send in flight and the receive armed */
	fd = sv->fd;
	assert_res(proa_transport_close(sv->t), 0);
	assert_true(proa_transport_is_closing(sv->t));
	/* fd not reused while operations on it are in flight */
	{
		int probe = dup(0);

		assert_true(probe != fd);
		close(probe);
	}
	DRIVE(loop, sv->lost);
	assert_res(sv->err, 0);
	pthread_join(r.th, NULL);
	assert_true(r.eof);
	assert_int_equal(r.got, pu.total);
	assert_int_equal(r.bad, 0);
	close_server(loop, s);
	proa_test_loop_close(loop);
	pthread_mutex_destroy(&r.mu);
	pthread_cond_destroy(&r.cv);
	farm_free(&sf);
}

/* connection_lost of test_close_inflight: every operation on the socket
 * has ended, and the descriptor is closed (by us, not leaked). */
static void lost_ops_idle(struct peer *pe)
{
	assert_true(proa_op_is_idle(&pe->t->rop));
	assert_true(proa_op_is_idle(&pe->t->wop));
	assert_true(proa_op_is_idle(&pe->t->xop));
	assert_int_equal(fcntl(pe->fd, F_GETFD), -1);
	pe->ops_idle_at_lost = true;
}

/* Descriptor @fd is still open, and no new descriptor can take its
 * number (the probes are closed at once). */
static void check_fd_held(int fd)
{
	int sfd, dfd;

	assert_true(fcntl(fd, F_GETFD) != -1);
	sfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(sfd >= 0);
	dfd = dup(sfd);
	assert_true(dfd >= 0);
	assert_true(sfd != fd);
	assert_true(dfd != fd);
	close(dfd);
	close(sfd);
}

/* For DRIVE_NS: the receive has ended; until then, nothing is lost and
 * the descriptor is held (checked once per iteration). */
static bool rop_ended_fd_held(const struct peer *sv, int fd)
{
	assert_false(sv->lost);
	check_fd_held(fd);
	return proa_op_is_idle(&sv->t->rop);
}

/* For DRIVE_NS: connection_lost ran; until then the descriptor is held. */
static bool lost_or_fd_held(const struct peer *sv, int fd)
{
	if (sv->lost)
		return true;
	check_fd_held(fd);
	return false;
}

/*
 * The close rule (docs/architecture.md rule 6): close() with a receive
 * and a send in flight (the peer reads nothing; small buffers both ends)
 * keeps the descriptor open, and its number taken, on every iteration until
 * connection_lost - which finds every operation ended and the descriptor
 * closed.  The close is graceful: once the peer reads again, it gets every
 * byte and then EOF.
 */
static void test_close_inflight(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0};
	struct proa_server_options so = {.transport.sndbuf = 4096};
	struct proa_server *s = listen_local(loop, &so, &sf);
	struct raw r = {.port = proa_server_port(s)};
	struct pump pu = {.total = 4u << 20, .piece = 65536};
	struct peer *sv;
	unsigned long i;
	int fd;

	(void)state;
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	assert_int_equal(pthread_create(&r.th, NULL, raw_slow_main, &r), 0);
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	pu.pe = sv;
	pump_more(&pu);
	assert_int_equal(pu.sent, pu.total);
	for (i = 0; i < 100; i++)
		assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	DRIVE(loop, !proa_op_is_idle(&sv->t->wop));
	/* a send stuck in flight, the receive armed */
	assert_false(proa_op_is_idle(&sv->t->wop));
	assert_false(proa_op_is_idle(&sv->t->rop));
	assert_true(proa_transport_write_buffer_size(sv->t) > 0);
	fd = sv->fd;
	assert_int_equal(proa_transport_fd(sv->t), fd);
	sv->on_lost = lost_ops_idle;
	assert_res(proa_transport_close(sv->t), 0);
	assert_false(sv->lost); /* never inside the call */
	check_fd_held(fd);
	/* The receive is cancelled; the send waits for the peer. */
	DRIVE_NS(loop, rop_ended_fd_held(sv, fd));
	for (i = 0; i < 100; i++) {
		assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
		assert_false(sv->lost);
		check_fd_held(fd);
	}
	assert_false(proa_op_is_idle(&sv->t->wop));
	raw_set_step(&r, 1);
	DRIVE_NS(loop, lost_or_fd_held(sv, fd));
	assert_true(sv->ops_idle_at_lost);
	assert_res(sv->err, 0);
	pthread_join(r.th, NULL);
	assert_true(r.eof);
	assert_int_equal(r.got, pu.total);
	assert_int_equal(r.bad, 0);
	close_server(loop, s);
	proa_test_loop_close(loop);
	pthread_mutex_destroy(&r.mu);
	pthread_cond_destroy(&r.cv);
	farm_free(&sf);
}

/* While reading is paused no data_received runs; resume delivers it all,
 * in order. */
static void test_pause_reading(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = P_VERIFY}, cf = {.flags = 0};
	struct proa_server *s = listen_local(loop, NULL, &sf);
	struct peer *c = connect_local(loop, proa_server_port(s), NULL, &cf);
	struct pump pu = {.pe = c, .total = 1u << 20, .piece = 16384};
	struct peer *sv;
	unsigned calls, i;

	(void)state;
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	assert_res(proa_transport_pause_reading(sv->t), 0);
	assert_false(proa_transport_is_reading(sv->t));
	sv->reading_paused = true;
	pump_more(&pu);
	calls = sv->data_calls;
	for (i = 0; i < 2000; i++)
		assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	assert_int_equal(sv->data_calls, calls);
	assert_int_equal(sv->rx_while_paused, 0);
	sv->reading_paused = false;
	assert_res(proa_transport_resume_reading(sv->t), 0);
	while (sv->rx < pu.total) {
		pump_more(&pu);
		assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
	}
	assert_int_equal(sv->bad, 0);
	assert_res(proa_transport_close(c->t), 0);
	DRIVE(loop, c->lost && sv->lost);
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

/* Two receive buffers for the whole loop, a fast sender and a consumer
 * that takes one piece per iteration: the ring runs dry again and again,
 * and nothing is lost or reordered. */
static void test_buffer_exhaustion(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = P_VERIFY | P_PAUSE_EACH}, cf = {.flags = 0};
	struct proa_server *s;
	struct peer *c, *sv;
	struct pump pu = {.total = 8u << 20, .piece = 65536};

	(void)state;
	assert_res(proa_net_set_buffers(loop, 2, 4096), 0);
	s = listen_local(loop, NULL, &sf);
	assert_res(proa_net_set_buffers(loop, 4, 4096), -EBUSY);
	c = connect_local(loop, proa_server_port(s), NULL, &cf);
	pu.pe = c;
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	while (sv->rx < pu.total) {
		pump_more(&pu);
		assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
		assert_false(sv->lost);
	}
	assert_int_equal(sv->bad, 0);
	assert_int_equal(sv->rx_while_paused, 0);
	/* the ring did run dry (else this test proves nothing) */
	assert_true(
	    proa_container_of(loop->net, struct proa__netloop, hook)->enobufs >
	    0);
	assert_res(proa_transport_close(c->t), 0);
	DRIVE(loop, c->lost && sv->lost);
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

/* abort() with a send in flight: connection_lost(-ECONNABORTED) after
 * the operations ended; the peer sees the connection end. */
static void test_abort_inflight(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0}, cf = {.flags = 0};
	struct proa_server_options so = {.transport.sndbuf = 4096};
	struct proa_server *s = listen_local(loop, &so, &sf);
	struct peer *c = connect_local(loop, proa_server_port(s), NULL, &cf);
	static uint8_t chunk[1 << 16];
	struct peer *sv;
	unsigned i;

	(void)state;
	assert_res(proa_transport_pause_reading(c->t), 0);
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	for (i = 0; i < 64; i++)
		assert_res(proa_transport_write(sv->t, chunk, sizeof(chunk)),
			   0);
	for (i = 0; i < 100; i++)
		assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	assert_false(proa_op_is_idle(&sv->t->wop));
	assert_false(proa_op_is_idle(&sv->t->rop));
	proa_transport_abort(sv->t);
	assert_false(sv->lost); /* never inside the call */
	assert_res(proa_transport_write(sv->t, "x", 1), -EPIPE);
	DRIVE(loop, sv->lost);
	assert_res(sv->err, -ECONNABORTED);
	assert_res(proa_transport_resume_reading(c->t), 0);
	DRIVE(loop, c->lost);
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

/* EMFILE on accept: the listener pauses, retries, and serves everyone
 * once descriptors are back.  While paused it does not spin: over a
 * stretch of retries, no more accept attempts than the retry interval
 * allows (one per interval, plus the ones at the edges), and a few loop
 * iterations per attempt, not thousands. */
static void test_emfile(void **state)
{
	const uint64_t retry_ns = 5000000;
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = P_ECHO};
	struct proa_server_options so = {.accept_retry_ns = retry_ns};
	struct proa_server *s = listen_local(loop, &so, &sf);
	struct proa_server_stats st, st0;
	struct proa_loop_stats ls, ls0;
	uint64_t t0, elapsed, retries, iters, allowed;
	struct rlimit old, low;
	int fds[8], i;
	char b[4];

	(void)state;
	for (i = 0; i < 8; i++) {
		fds[i] = raw_connect(proa_server_port(s));
		assert_true(fds[i] >= 0);
	}
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)proa_test_fds() + 1;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	DRIVE(loop, (proa_server_stats(s, &st), st.accept_pause > 0));
	assert_true(st.accepted < 8);
	/* Still short of descriptors: each retry fails and pauses again
	 * (accept_pause counts them).  Watch 20 of them, or 2 s. */
	assert_res(proa_server_stats(s, &st0), 0);
	assert_res(proa_loop_stats(loop, &ls0), 0);
	t0 = proa_test_now_ns();
	DRIVE_NS(loop, (proa_server_stats(s, &st),
			st.accept_pause - st0.accept_pause >= 20 ||
			    proa_test_now_ns() - t0 >= UINT64_C(2000000000)));
	elapsed = proa_test_now_ns() - t0;
	assert_res(proa_loop_stats(loop, &ls), 0);
	retries = st.accept_pause - st0.accept_pause;
	iters = ls.iterations - ls0.iterations;
	allowed = elapsed / retry_ns + 2;
	print_message("paused listener: %llu retries, %llu iterations in "
		      "%llu us\n",
		      (unsigned long long)retries, (unsigned long long)iters,
		      (unsigned long long)(elapsed / 1000));
	assert_true(retries >= 1); /* it does retry */
	assert_true(retries <= allowed);
	assert_true(iters <= 8 * allowed);
	assert_int_equal(st.accepted, st0.accepted);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	DRIVE(loop, (proa_server_stats(s, &st), st.accepted == 8));
	assert_int_equal(sf.made, 8);
	for (i = 0; i < 8; i++) {
		assert_int_equal(write(fds[i], "abc", 3), 3);
		/* DRIVE evaluates its condition twice: peek, then read */
		DRIVE(loop, recv(fds[i], b, 3, MSG_DONTWAIT | MSG_PEEK) == 3);
		assert_int_equal(recv(fds[i], b, 3, 0), 3);
		assert_memory_equal(b, "abc", 3);
		close(fds[i]);
	}
	DRIVE(loop, farm_lost(&sf) == 8);
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
}

static void connect_expect(struct proa_loop *loop, const char *host,
			   uint16_t port, uint64_t timeout_ns, int want)
{
	struct proa_connect_options co = {.timeout_ns = timeout_ns};
	struct farm cf = {.flags = 0};
	struct proa_future fut;

	proa_future_init(&fut, loop);
	assert_res(
	    proa_tcp_connect(loop, host, port, &co, farm_make, &cf, &fut), 0);
	DRIVE(loop, proa_future_is_done(&fut));
	assert_int_equal(proa_future_result(&fut, NULL), want);
	assert_res(proa_future_fini(&fut), 0);
	assert_int_equal(cf.made, 0);
}

/* What a plain non-blocking connect() to @host:@port says at once:
 * -errno, or 0 when it is under way (the host has a route there). */
static int plain_connect(const char *host, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, ret = 0;

	assert_res(proa__parse_numeric(host, port, &ss, &len), 0);
	fd =
	    socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&ss, len) < 0 &&
	    errno != EINPROGRESS)
		ret = -errno;
	close(fd);
	return ret;
}

/* A closed port refuses; a listener whose backlog is full lets the
 * connect hang until the timeout; an unreachable address fails at once
 * with the kernel's own code. */
static void test_connect_errors(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int lfd, c1, c2, ret;
	uint64_t t0;

	(void)state;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
	close(lfd); /* nobody listens there now */
	connect_expect(loop, "127.0.0.1", ntohs(a.sin_port), 0, -ECONNREFUSED);

	/* backlog 0 holds one connection; the next SYNs are dropped */
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	a.sin_port = 0;
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lfd, 0), 0);
	len = sizeof(a);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
	c1 = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	c2 = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	connect(c1, (struct sockaddr *)&a, sizeof(a));
	connect(c2, (struct sockaddr *)&a, sizeof(a));
	t0 = proa_test_now_ns();
	connect_expect(loop, "127.0.0.1", ntohs(a.sin_port), 200000000,
		       -ETIMEDOUT);
	assert_true(proa_test_now_ns() - t0 >= 200000000);
	close(c1);
	close(c2);
	close(lfd);

	/*
	 * Unreachable, whatever the routing table: TCP to a multicast
	 * address is -ENETUNREACH in the kernel's connect (tcp_v4_connect
	 * refuses a multicast route, tcp_v6_connect a multicast address).
	 * A plain connect() says first what this kernel gives; the future
	 * must end with that same code.
	 */
	ret = plain_connect("224.0.0.1", 9);
	assert_true(ret == -ENETUNREACH || ret == -EHOSTUNREACH);
	connect_expect(loop, "224.0.0.1", 9, 0, ret);
	if (proa_test_have_ipv6()) {
		ret = plain_connect("ff02::1", 9);
		assert_true(ret == -ENETUNREACH || ret == -EHOSTUNREACH);
		connect_expect(loop, "ff02::1", 9, 0, ret);
	}
	/* A documentation address (RFC 3849) fails at once only where there
	 * is no IPv6 route to it; where there is one, a SYN leaves and only
	 * a timeout would be certain, so the multicast cases stand in. */
	ret = plain_connect("2001:db8::1", 9);
	if (ret < 0)
		connect_expect(loop, "2001:db8::1", 9, 0, ret);
	else
		print_message("2001:db8::1 is routed on this host: its "
			      "connect would not fail at once (multicast "
			      "cases cover -ENETUNREACH)\n");

	/* bad input, refused before anything starts */
	{
		struct proa_future f;

		proa_future_init(&f, loop);
		assert_res(
		    proa_tcp_connect(loop, "", 1, NULL, farm_make, NULL, &f),
		    -EINVAL);
		assert_res(proa_tcp_connect(loop, "127.0.0.1", 1, NULL, NULL,
					    NULL, &f),
			   -EINVAL);
		assert_res(proa_future_fini(&f), 0);
	}
	proa_test_loop_close(loop);
}

/* Idle timeout ends a silent connection; a write timeout ends one whose
 * peer stopped reading. */
static void test_timeouts(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0}, cf = {.flags = 0};
	struct proa_server_options so = {.transport.idle_timeout_ns = 50000000};
	struct proa_server *s = listen_local(loop, &so, &sf);
	struct peer *c = connect_local(loop, proa_server_port(s), NULL, &cf);
	static uint8_t chunk[1 << 16];
	struct peer *sv;
	uint64_t t0 = proa_test_now_ns();
	unsigned i;

	(void)state;
	DRIVE(loop, sf.peers && sf.peers->lost);
	assert_res(sf.peers->err, -ETIMEDOUT);
	assert_true(proa_test_now_ns() - t0 >= 50000000);
	DRIVE(loop, c->lost);

	c = connect_local(loop, proa_server_port(s), NULL, &cf);
	DRIVE(loop, sf.peers->made && !sf.peers->lost);
	sv = sf.peers;
	assert_res(proa_transport_set_timeouts(sv->t, 0, 50000000), 0);
	assert_res(proa_transport_pause_reading(c->t), 0);
	for (i = 0; i < 256; i++)
		assert_res(proa_transport_write(sv->t, chunk, sizeof(chunk)),
			   0);
	DRIVE(loop, sv->lost);
	assert_res(sv->err, -ETIMEDOUT);
	assert_res(proa_transport_resume_reading(c->t), 0);
	DRIVE(loop, c->lost);
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

/* UNIX sockets, a path and an abstract name; a path already there is
 * EADDRINUSE and is left alone; the path goes when the server closes. */
static void test_unix(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = P_ECHO}, cf = {.flags = P_VERIFY};
	char path[64], abstract[64];
	const char *names[2] = {path, abstract};
	struct proa_server *s, *s2;
	struct proa_future fut;
	struct pump pu = {.total = 1u << 20, .piece = 4096};
	struct peer *c;
	unsigned k;

	(void)state;
	snprintf(path, sizeof(path), "/tmp/proa-test-%d.sock", (int)getpid());
	snprintf(abstract, sizeof(abstract), "@proa-test-%d", (int)getpid());
	unlink(path);
	for (k = 0; k < 2; k++) {
		assert_res(
		    proa_unix_listen(loop, names[k], NULL, farm_make, &sf, &s),
		    0);
		assert_int_equal(proa_server_port(s), 0);
		assert_res(
		    proa_unix_listen(loop, names[k], NULL, farm_make, &sf, &s2),
		    -EADDRINUSE);
		proa_future_init(&fut, loop);
		assert_res(proa_unix_connect(loop, names[k], NULL, farm_make,
					     &cf, &fut),
			   0);
		DRIVE(loop, proa_future_is_done(&fut));
		assert_res(proa_future_result(&fut, NULL), 0);
		assert_res(proa_future_fini(&fut), 0);
		c = cf.peers;
		pu.pe = c;
		pu.sent = 0;
		while (c->rx < pu.total) {
			pump_more(&pu);
			assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
		}
		assert_int_equal(c->bad, 0);
		assert_res(proa_transport_close(c->t), 0);
		DRIVE(loop, c->lost && sf.peers->lost);
		close_server(loop, s);
	}
	assert_int_equal(access(path, F_OK), -1);
	/* too long a path */
	memset(path, 'a', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	{
		char longp[200];

		memset(longp, 'a', sizeof(longp) - 1);
		longp[sizeof(longp) - 1] = '\0';
		assert_res(
		    proa_unix_listen(loop, longp, NULL, farm_make, &sf, &s),
		    -ENAMETOOLONG);
	}
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

/* proa_tcp_listen() with a name (on the pool) and with port 0 reports the
 * bound port; where the host has an IPv6 loopback, a server on ::1 serves
 * a client over IPv6; a client connects by name ("localhost") to a server
 * on 127.0.0.1. */
static void test_listen_names(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = P_ECHO}, cf = {.flags = 0};
	struct proa_future fut;
	struct proa_server *s = NULL;
	struct sockaddr_storage ss;
	socklen_t len;
	struct peer *c;
	unsigned i;

	(void)state;
	proa_future_init(&fut, loop);
	assert_res(
	    proa_tcp_listen(loop, "localhost", 0, NULL, farm_make, &sf, &fut),
	    0);
	DRIVE(loop, proa_future_is_done(&fut));
	assert_res(proa_future_result(&fut, (void **)&s), 0);
	assert_res(proa_future_fini(&fut), 0);
	assert_true(proa_server_nsockets(s) >= 1);
	for (i = 0; i < proa_server_nsockets(s); i++) {
		assert_res(proa_server_sockname(s, i, &ss, &len), 0);
		assert_true(ss.ss_family == AF_INET ||
			    ss.ss_family == AF_INET6);
	}
	assert_res(proa_server_sockname(s, 99, &ss, &len), -ENOENT);
	c = connect_local(loop, proa_server_port(s), NULL, &cf);
	assert_res(proa_transport_write(c->t, "abc", 3), 0);
	DRIVE(loop, c->rx == 3);
	assert_res(proa_transport_peername(c->t, &ss, &len), 0);
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port),
			 proa_server_port(s));
	assert_res(proa_transport_close(c->t), 0);
	DRIVE(loop, c->lost && sf.peers->lost);
	close_server(loop, s);

	/* numeric IPv6, port 0 */
	proa_future_init(&fut, loop);
	assert_res(proa_tcp_listen(loop, "::1", 0, NULL, farm_make, &sf, &fut),
		   0);
	DRIVE(loop, proa_future_is_done(&fut));
	if (proa_test_have_ipv6()) {
		assert_res(proa_future_result(&fut, (void **)&s), 0);
		assert_res(proa_future_fini(&fut), 0);
		assert_true(proa_server_port(s) != 0);
		assert_int_equal(proa_server_nsockets(s), 1);
		assert_res(proa_server_sockname(s, 0, &ss, &len), 0);
		assert_int_equal(ss.ss_family, AF_INET6);
		c = connect_host(loop, "::1", proa_server_port(s), NULL, &cf);
		assert_res(proa_transport_write(c->t, "v6!", 3), 0);
		DRIVE(loop, c->rx == 3);
		assert_res(proa_transport_peername(c->t, &ss, &len), 0);
		assert_int_equal(ss.ss_family, AF_INET6);
		assert_true(IN6_IS_ADDR_LOOPBACK(
		    &((struct sockaddr_in6 *)&ss)->sin6_addr));
		assert_int_equal(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port),
				 proa_server_port(s));
		assert_int_equal(sf.peers->rx, 3);
		assert_res(proa_transport_close(c->t), 0);
		DRIVE(loop, c->lost && sf.peers->lost);
		assert_res(c->err, 0);
		close_server(loop, s);
	} else {
		/* No IPv6 here: the listen must say so, not pretend. */
		assert_true(proa_future_result(&fut, NULL) < 0);
		assert_res(proa_future_fini(&fut), 0);
		print_message("no IPv6 loopback: ::1 not tested\n");
	}

	/* a client by name, to a server on 127.0.0.1 only: whatever order
	 * the name's addresses come in, the one that answers is used */
	s = listen_local(loop, NULL, &sf);
	c = connect_host(loop, "localhost", proa_server_port(s), NULL, &cf);
	assert_res(proa_transport_write(c->t, "byname", 6), 0);
	DRIVE(loop, c->rx == 6);
	assert_res(proa_transport_peername(c->t, &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr),
			 INADDR_LOOPBACK);
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port),
			 proa_server_port(s));
	assert_res(proa_transport_close(c->t), 0);
	DRIVE(loop, c->lost && sf.peers->lost);
	assert_res(c->err, 0);
	close_server(loop, s);

	/* a name that does not resolve */
	proa_future_init(&fut, loop);
	assert_res(proa_tcp_listen(loop, "no-such-host.invalid", 0, NULL,
				   farm_make, &sf, &fut),
		   0);
	DRIVE(loop, proa_future_is_done(&fut));
	assert_true(proa_future_result(&fut, NULL) < 0);
	assert_res(proa_future_fini(&fut), 0);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

/* ---- a proxy: bytes received on one connection written to another ------ */

struct half {
	struct proa_protocol p;
	struct proa_transport *t;
	struct half *other; /* where what arrives goes */
	bool lost;
	uint64_t fwd;
	struct proa_future up; /* the front's connect to the backend */
	uint16_t backend;
	struct half *back; /* the front's backend half (its own memory) */
};

static void h_made(struct proa_protocol *p, struct proa_transport *t)
{
	proa_container_of(p, struct half, p)->t = t;
}

static void h_data(struct proa_protocol *p, const void *data, size_t len)
{
	struct half *h = proa_container_of(p, struct half, p);

	h->fwd += len;
	/* The ring buffer is lent to the other connection's send. */
	assert_res(proa_transport_write(h->other->t, data, len), 0);
}

static void h_lost(struct proa_protocol *p, int err)
{
	struct half *h = proa_container_of(p, struct half, p);

	(void)err;
	h->lost = true;
	if (h->other && h->other->t && !h->other->lost)
		proa_transport_close(h->other->t);
}

static const struct proa_protocol_ops half_ops = {
    .connection_made = h_made,
    .data_received = h_data,
    .connection_lost = h_lost,
};

static struct proa_protocol *back_make(void *arg, struct proa_transport *t)
{
	(void)t;
	return &((struct half *)arg)->p;
}

/* The front end reads nothing until its backend is connected. */
static void front_made(struct proa_protocol *p, struct proa_transport *t)
{
	struct half *h = proa_container_of(p, struct half, p);

	h->t = t;
	assert_res(proa_transport_pause_reading(t), 0);
	proa_future_init(&h->up, proa_transport_loop(t));
	assert_res(proa_tcp_connect(proa_transport_loop(t), "127.0.0.1",
				    h->backend, NULL, back_make, h->back,
				    &h->up),
		   0);
}

static const struct proa_protocol_ops front_ops = {
    .connection_made = front_made,
    .data_received = h_data,
    .connection_lost = h_lost,
};

static struct half *the_front;

static struct proa_protocol *front_make(void *arg, struct proa_transport *t)
{
	struct half *f = calloc(1, sizeof(*f)), *b = calloc(1, sizeof(*b));

	(void)t;
	assert_non_null(f);
	assert_non_null(b);
	f->p.ops = &front_ops;
	b->p.ops = &half_ops;
	f->backend = *(uint16_t *)arg;
	f->back = b;
	f->other = b;
	b->other = f;
	the_front = f;
	return &f->p;
}

/* client -> proxy -> echo server -> proxy -> client, 8 MiB byte-exact:
 * the proxy forwards from ring buffers without copying. */
static void test_proxy(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm ef = {.flags = P_ECHO}, cf = {.flags = P_VERIFY};
	struct proa_server *echo = listen_local(loop, NULL, &ef);
	uint16_t eport = proa_server_port(echo);
	struct sockaddr_in a = {.sin_family = AF_INET};
	struct proa_server *proxy = NULL;
	struct pump pu = {.total = 8u << 20, .piece = 65536};
	struct peer *c;
	struct half *f;

	(void)state;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_res(proa_tcp_listen_addr(loop, (struct sockaddr *)&a, sizeof(a),
					NULL, front_make, &eport, &proxy),
		   0);
	c = connect_local(loop, proa_server_port(proxy), NULL, &cf);
	DRIVE(loop, the_front && proa_future_is_done(&the_front->up));
	f = the_front;
	assert_res(proa_future_result(&f->up, NULL), 0);
	assert_res(proa_future_fini(&f->up), 0);
	assert_res(proa_transport_resume_reading(f->t), 0);
	pu.pe = c;
	while (c->rx < pu.total) {
		pump_more(&pu);
		assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
		assert_false(c->lost);
	}
	assert_int_equal(c->bad, 0);
	assert_int_equal(f->fwd, pu.total);
	assert_int_equal(f->back->fwd, pu.total);
	/* forwarded from ring buffers, not copied */
	assert_true(
	    proa_container_of(loop->net, struct proa__netloop, hook)->lent > 0);
	assert_res(proa_transport_close(c->t), 0);
	DRIVE(loop, c->lost && f->lost && f->back->lost && ef.peers->lost);
	close_server(loop, proxy);
	close_server(loop, echo);
	proa_test_loop_close(loop);
	free(f->back);
	free(f);
	the_front = NULL;
	farm_free(&ef);
	farm_free(&cf);
}

/* The single-shot receive path, without multishot or buffer rings. */
static void test_echo_without_features(void **state)
{
	static const uint64_t hide[] = {
	    1ull << PROA_FEAT_RECV_MULTISHOT,
	    (1ull << PROA_FEAT_BUF_RING) | (1ull << PROA_FEAT_RECV_MULTISHOT),
	    1ull << PROA_FEAT_ACCEPT_MULTISHOT,
	};
	unsigned k;

	(void)state;
	for (k = 0; k < sizeof(hide) / sizeof(hide[0]); k++) {
		struct proa_loop *loop;
		struct farm sf = {.flags = P_ECHO | P_FLOW},
			    cf = {.flags = P_VERIFY};
		struct proa_server *s;
		struct peer *c;
		struct pump pu = {.total = 4u << 20, .piece = 65536};

		proa__ring_faults.hide_features = hide[k];
		loop = proa_test_loop_new();
		proa__ring_faults.hide_features = 0;
		s = listen_local(loop, NULL, &sf);
		c = connect_local(loop, proa_server_port(s), NULL, &cf);
		pu.pe = c;
		while (c->rx < pu.total) {
			pump_more(&pu);
			assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
		}
		assert_int_equal(c->bad, 0);
		assert_res(proa_transport_close(c->t), 0);
		DRIVE(loop, c->lost && sf.peers->lost);
		close_server(loop, s);
		proa_test_loop_close(loop);
		farm_free(&sf);
		farm_free(&cf);
	}
}

/* ---- write_ref ---------------------------------------------------------- */

/*
 * The release side of a write_ref: counts the calls, records their order,
 * checks that the memory was still what was queued (nothing wrote into
 * it) and that no send of the transport is in flight (the kernel is done
 * with it), then poisons it - every byte becomes ~pat(), so a byte sent
 * from it after release reaches the peer as a mismatch.
 */
struct wref {
	struct proa_transport *t; /* the sender, or NULL: no op check */
	uint8_t *buf;
	size_t len;
	uint64_t base;	       /* the stream offset of buf[0] */
	const struct peer *rx; /* the receiver, or NULL */
	unsigned calls;
	unsigned seq; /* ++order_seq at the release */
	bool intact;
	size_t wbuf_at_release;
	uint64_t rx_at_release;
};

static void wref_release(void *arg)
{
	struct wref *r = arg;
	size_t i;

	r->calls++;
	r->seq = ++order_seq;
	r->intact = true;
	for (i = 0; i < r->len; i++) {
		if (r->buf[i] != pat(r->base + i)) {
			r->intact = false;
			break;
		}
	}
	if (r->t) {
		/* The kernel no longer reads the memory: no send in flight,
		 * and the transport has let go of it. */
		assert_true(proa_op_is_idle(&r->t->wop));
		r->wbuf_at_release = proa_transport_write_buffer_size(r->t);
	}
	if (r->rx)
		r->rx_at_release = r->rx->rx;
	for (i = 0; i < r->len; i++)
		r->buf[i] = (uint8_t)~pat(r->base + i);
}

static uint8_t *pat_buf(uint64_t base, size_t len)
{
	uint8_t *b = malloc(len ? len : 1);
	size_t i;

	assert_non_null(b);
	for (i = 0; i < len; i++)
		b[i] = pat(base + i);
	return b;
}

/* A copied write of pat(@base...) from a stack buffer that is overwritten
 * right after the call (the write must have copied it). */
static void write_pat(struct proa_transport *t, uint64_t base, size_t len)
{
	static uint8_t buf[1 << 18];
	size_t i;

	assert_true(len <= sizeof(buf));
	for (i = 0; i < len; i++)
		buf[i] = pat(base + i);
	assert_res(proa_transport_write(t, buf, len), 0);
	memset(buf, 0, len);
}

/* 8 MiB from one malloc'd buffer through a 4 KiB SO_SNDBUF (hundreds of
 * short sends): no copy, release exactly once, never inside the call,
 * only once the transport holds none of the bytes; the memory is poisoned
 * at release, and the peer still gets the original pattern, every byte -
 * nothing was sent from it afterwards. */
static void test_write_ref_8mib(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0}, cf = {.flags = P_VERIFY};
	struct proa_server_options so = {.transport.sndbuf = 4096};
	struct proa_server *s = listen_local(loop, &so, &sf);
	struct peer *c = connect_local(loop, proa_server_port(s), NULL, &cf);
	const size_t total = 8u << 20;
	struct wref r = {.len = total, .rx = c};
	struct peer *sv;
	unsigned i;

	(void)state;
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	r.t = sv->t;
	r.buf = pat_buf(0, total);
	assert_res(
	    proa_transport_write_ref(sv->t, r.buf, total, wref_release, &r), 0);
	assert_int_equal(r.calls, 0); /* never inside the call */
	/* counted in the write buffer like any write */
	assert_int_equal(proa_transport_write_buffer_size(sv->t), total);
	while (c->rx < total) {
		assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
		assert_false(c->lost);
		assert_false(sv->lost);
		assert_true(r.calls <= 1);
		if (r.calls == 0)
			assert_true(proa_transport_write_buffer_size(sv->t) >
				    0);
	}
	DRIVE(loop, r.calls == 1);
	assert_int_equal(c->rx, total);
	assert_int_equal(c->bad, 0); /* the original bytes, all of them */
	assert_true(r.intact);
	assert_int_equal(r.wbuf_at_release, 0);
	print_message("release ran with %llu of %zu bytes read by the peer\n",
		      (unsigned long long)r.rx_at_release, total);
	for (i = 0; i < 1000; i++)
		assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	assert_int_equal(r.calls, 1);
	assert_res(proa_transport_close(c->t), 0);
	DRIVE(loop, c->lost && sv->lost);
	assert_res(sv->err, 0);
	assert_int_equal(r.calls, 1);
	assert_true(r.seq < sv->lost_seq);
	free(r.buf);
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

/* Copied and referenced writes interleave, in order: "A" (copied), "B..."
 * (write_ref), "C" (copied), then pieces of many sizes (around a chunk's
 * size, past the 64-piece gather), sometimes with a send in flight.  A
 * copied write never lands in a referenced buffer. */
static void test_write_ref_mixed_order(void **state)
{
	static const size_t ref_len[] = {100000, 1,	7,     4096,  16383,
					 16384,	 16385, 65536, 200000};
	static const size_t cp_len[] = {1,     1, 300,	 16000, 16384,
					20000, 5, 70000, 1};
	enum { N = sizeof(ref_len) / sizeof(ref_len[0]) };
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0}, cf = {.flags = P_VERIFY};
	struct proa_server *s = listen_local(loop, NULL, &sf);
	struct peer *c = connect_local(loop, proa_server_port(s), NULL, &cf);
	struct wref r[N];
	struct peer *sv;
	uint64_t off = 0;
	unsigned k;

	(void)state;
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	memset(r, 0, sizeof(r));
	for (k = 0; k < N; k++) {
		write_pat(sv->t, off, cp_len[k]);
		off += cp_len[k];
		r[k].t = sv->t;
		r[k].base = off;
		r[k].len = ref_len[k];
		r[k].buf = pat_buf(off, ref_len[k]);
		assert_res(proa_transport_write_ref(sv->t, r[k].buf, r[k].len,
						    wref_release, &r[k]),
			   0);
		off += ref_len[k];
		if (k == 0) {
			write_pat(sv->t, off, 1); /* "C" */
			off += 1;
		}
		if (k % 2)
			assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	}
	write_pat(sv->t, off, 3);
	off += 3;
	DRIVE(loop, c->rx == off);
	assert_int_equal(c->bad, 0);
	for (k = 0; k < N; k++) {
		DRIVE(loop, r[k].calls > 0);
		assert_int_equal(r[k].calls, 1);
		assert_true(r[k].intact);
		if (k > 0)
			assert_true(r[k - 1].seq < r[k].seq); /* in order */
	}
	assert_res(proa_transport_close(sv->t), 0);
	DRIVE(loop, c->lost && sv->lost);
	assert_int_equal(c->rx, off);
	for (k = 0; k < N; k++) {
		assert_int_equal(r[k].calls, 1);
		free(r[k].buf);
	}
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

/* close() with references queued: they are sent, released, and then
 * connection_lost(0). */
static void test_write_ref_close_flushes(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0}, cf = {.flags = P_VERIFY};
	struct proa_server_options so = {.transport.sndbuf = 4096};
	struct proa_server *s = listen_local(loop, &so, &sf);
	struct peer *c = connect_local(loop, proa_server_port(s), NULL, &cf);
	const size_t len = 1u << 20;
	struct wref r = {.len = len};
	struct peer *sv;

	(void)state;
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	r.t = sv->t;
	r.buf = pat_buf(0, len);
	assert_res(
	    proa_transport_write_ref(sv->t, r.buf, len, wref_release, &r), 0);
	assert_res(proa_transport_close(sv->t), 0);
	assert_int_equal(r.calls, 0);
	DRIVE(loop, sv->lost && c->lost);
	assert_res(sv->err, 0);
	assert_int_equal(c->rx, len);
	assert_int_equal(c->bad, 0);
	assert_int_equal(r.calls, 1);
	assert_true(r.intact);
	assert_true(r.seq < sv->lost_seq);
	free(r.buf);
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

/* abort() with references queued against a peer that does not read
 * (small buffers both ends, so the bytes stay queued and a send stays in
 * flight): each release runs exactly once, not inside abort, once the
 * send is over, and before connection_lost; what the peer did get is the
 * original pattern. */
static void test_write_ref_abort(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0}, cf = {.flags = P_VERIFY};
	struct proa_server_options so = {.transport.sndbuf = 4096};
	struct proa_connect_options co = {.transport.rcvbuf = 4096};
	struct proa_server *s = listen_local(loop, &so, &sf);
	struct peer *c = connect_local(loop, proa_server_port(s), &co, &cf);
	struct wref r1 = {.base = 65536, .len = 4u << 20};
	struct wref r2 = {.base = 65536 + (4u << 20), .len = 1000};
	struct peer *sv;
	unsigned i;

	(void)state;
	assert_res(proa_transport_pause_reading(c->t), 0);
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	r1.t = r2.t = sv->t;
	r1.buf = pat_buf(r1.base, r1.len);
	r2.buf = pat_buf(r2.base, r2.len);
	write_pat(sv->t, 0, 65536);
	assert_res(
	    proa_transport_write_ref(sv->t, r1.buf, r1.len, wref_release, &r1),
	    0);
	assert_res(
	    proa_transport_write_ref(sv->t, r2.buf, r2.len, wref_release, &r2),
	    0);
	write_pat(sv->t, r2.base + r2.len, 100);
	for (i = 0; i < 100; i++)
		assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	/* stuck: the peer reads nothing */
	assert_int_equal(r1.calls, 0);
	assert_int_equal(r2.calls, 0);
	assert_true(proa_transport_write_buffer_size(sv->t) > r2.len);
	assert_false(proa_op_is_idle(&sv->t->wop));
	proa_transport_abort(sv->t);
	assert_int_equal(r1.calls, 0); /* a send is in flight */
	assert_int_equal(r2.calls, 0);
	assert_false(sv->lost);
	assert_res(proa_transport_write_ref(sv->t, "x", 1, wref_release, &r1),
		   -EPIPE);
	DRIVE(loop, sv->lost);
	assert_res(sv->err, -ECONNABORTED);
	assert_int_equal(r1.calls, 1);
	assert_int_equal(r2.calls, 1);
	assert_true(r1.intact);
	assert_true(r2.intact);
	assert_true(r1.seq < sv->lost_seq);
	assert_true(r2.seq < sv->lost_seq);
	assert_res(proa_transport_resume_reading(c->t), 0);
	DRIVE(loop, c->lost);
	assert_int_equal(c->bad, 0);
	assert_true(c->rx < r2.base + r2.len);
	for (i = 0; i < 100; i++)
		assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	assert_int_equal(r1.calls, 1);
	assert_int_equal(r2.calls, 1);
	free(r1.buf);
	free(r2.buf);
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

/* A failure (the peer resets) with a reference queued: released exactly
 * once, before connection_lost(ECONNRESET or EPIPE). */
static void test_write_ref_reset(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0};
	struct proa_server *s = listen_local(loop, NULL, &sf);
	struct raw r = {.port = proa_server_port(s)};
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	struct wref w = {.len = 16u << 20};
	struct peer *sv;

	(void)state;
	sigaction(SIGPIPE, &dfl, &old_pipe);
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	assert_int_equal(pthread_create(&r.th, NULL, raw_reset_main, &r), 0);
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	w.t = sv->t;
	w.buf = pat_buf(0, w.len);
	assert_res(
	    proa_transport_write_ref(sv->t, w.buf, w.len, wref_release, &w), 0);
	assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	assert_int_equal(w.calls, 0);
	raw_set_step(&r, 1);
	DRIVE(loop, sv->lost);
	assert_true(sv->err == -ECONNRESET || sv->err == -EPIPE);
	assert_int_equal(w.calls, 1);
	assert_true(w.intact);
	assert_true(w.seq < sv->lost_seq);
	pthread_join(r.th, NULL);
	sigaction(SIGPIPE, &old_pipe, NULL);
	close_server(loop, s);
	proa_test_loop_close(loop);
	assert_int_equal(w.calls, 1);
	free(w.buf);
	pthread_mutex_destroy(&r.mu);
	pthread_cond_destroy(&r.cv);
	farm_free(&sf);
}

/* Refused calls never release: a NULL release or transport, NULL data
 * with a length, a length over 4 GiB (-EINVAL); after write_eof, close
 * or abort (-EPIPE). */
static void test_write_ref_errors(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0}, cf = {.flags = 0};
	struct proa_server *s = listen_local(loop, NULL, &sf);
	struct peer *c = connect_local(loop, proa_server_port(s), NULL, &cf);
	static uint8_t data[16];
	struct wref r = {.buf = data};
	struct peer *sv;
	unsigned i;

	(void)state;
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	assert_res(
	    proa_transport_write_ref(sv->t, data, sizeof(data), NULL, &r),
	    -EINVAL);
	assert_res(proa_transport_write_ref(sv->t, NULL, 5, wref_release, &r),
		   -EINVAL);
	assert_res(proa_transport_write_ref(NULL, data, sizeof(data),
					    wref_release, &r),
		   -EINVAL);
	if (SIZE_MAX > UINT32_MAX)
		assert_res(proa_transport_write_ref(sv->t, data,
						    (size_t)UINT32_MAX + 1,
						    wref_release, &r),
			   -EINVAL);
	assert_int_equal(proa_transport_write_buffer_size(sv->t), 0);
	/* after write_eof (the client's side) */
	assert_res(proa_transport_write_eof(c->t), 0);
	assert_res(proa_transport_write_ref(c->t, data, sizeof(data),
					    wref_release, &r),
		   -EPIPE);
	DRIVE(loop, sv->eof && c->lost && sv->lost);
	/* after close */
	c = connect_local(loop, proa_server_port(s), NULL, &cf);
	DRIVE(loop, sf.peers != sv && sf.peers->made);
	sv = sf.peers;
	assert_res(proa_transport_close(sv->t), 0);
	assert_res(proa_transport_write_ref(sv->t, data, sizeof(data),
					    wref_release, &r),
		   -EPIPE);
	assert_res(proa_transport_write_ref(sv->t, data, 0, wref_release, &r),
		   -EPIPE);
	DRIVE(loop, sv->lost && c->lost);
	/* after abort */
	c = connect_local(loop, proa_server_port(s), NULL, &cf);
	proa_transport_abort(c->t);
	assert_res(proa_transport_write_ref(c->t, data, sizeof(data),
					    wref_release, &r),
		   -EPIPE);
	DRIVE(loop, c->lost && farm_lost(&sf) == 3);
	for (i = 0; i < 1000; i++)
		assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	assert_int_equal(r.calls, 0);
	close_server(loop, s);
	proa_test_loop_close(loop);
	assert_int_equal(r.calls, 0);
	farm_free(&sf);
	farm_free(&cf);
}

/* A length of 0 (with or without a pointer) is accepted and released
 * once, later, from the loop; also when the transport is aborted right
 * after, and then before connection_lost. */
static void test_write_ref_empty(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0}, cf = {.flags = 0};
	struct proa_server *s = listen_local(loop, NULL, &sf);
	struct peer *c = connect_local(loop, proa_server_port(s), NULL, &cf);
	static uint8_t data[1];
	struct wref r = {.buf = data}, rn = {.buf = NULL}, ra = {.buf = NULL};
	struct peer *sv;
	unsigned i;

	(void)state;
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	r.t = sv->t;
	assert_res(proa_transport_write_ref(sv->t, data, 0, wref_release, &r),
		   0);
	assert_int_equal(r.calls, 0);
	assert_res(proa_transport_write_ref(sv->t, NULL, 0, wref_release, &rn),
		   0);
	assert_int_equal(rn.calls, 0);
	assert_int_equal(proa_transport_write_buffer_size(sv->t), 0);
	DRIVE(loop, r.calls > 0 && rn.calls > 0);
	for (i = 0; i < 1000; i++)
		assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	assert_int_equal(r.calls, 1);
	assert_int_equal(rn.calls, 1);
	assert_true(r.seq < rn.seq); /* in the order queued */
	assert_int_equal(c->rx, 0);
	/* queued, then abort at once */
	assert_res(proa_transport_write_ref(sv->t, NULL, 0, wref_release, &ra),
		   0);
	proa_transport_abort(sv->t);
	assert_int_equal(ra.calls, 0);
	DRIVE(loop, sv->lost && c->lost);
	assert_int_equal(ra.calls, 1);
	assert_true(ra.seq < sv->lost_seq);
	close_server(loop, s);
	proa_test_loop_close(loop);
	assert_int_equal(r.calls, 1);
	assert_int_equal(rn.calls, 1);
	assert_int_equal(ra.calls, 1);
	farm_free(&sf);
	farm_free(&cf);
}

/* ---- sendfile ----------------------------------------------------------- */

/* An unlinked regular file whose byte i is pat(i). */
static int pat_file(size_t len)
{
	char path[] = "/tmp/proa-sendfile-XXXXXX";
	uint8_t *b = pat_buf(0, len);
	int fd = mkstemp(path);
	size_t done = 0;
	ssize_t n;

	assert_true(fd >= 0);
	assert_int_equal(unlink(path), 0);
	while (done < len) {
		n = write(fd, b + done, len - done);
		assert_true(n > 0);
		done += (size_t)n;
	}
	free(b);
	return fd;
}

/* Whether sendfile queued its bytes as a file chunk (spliced) or, where
 * the loop cannot splice, as a mapping (an external chunk). */
static void check_sendfile_chunk(struct proa_loop *loop,
				 struct proa_transport *t)
{
	assert_non_null(t->wtail);
	assert_int_equal(t->wtail->bid,
			 proa_loop_feature(loop, PROA_FEAT_OP_SPLICE)
			     ? PROA__CHUNK_FILE
			     : PROA__CHUNK_EXTERNAL);
}

/*
 * Copied writes, write_ref and sendfile ranges (odd offsets, 1 byte, one
 * of several pipe-fulls, 8 MiB in all) interleave through a 4 KiB
 * SO_SNDBUF: the peer gets pat(0..total) exactly, each release runs once,
 * in order, once the transport holds none of its bytes, and the pipe is
 * handed back once no file is queued.  Closing after it flushes all.
 */
static void test_sendfile_mixed_order(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0}, cf = {.flags = P_VERIFY};
	struct proa_server_options so = {.transport.sndbuf = 4096};
	struct proa_server *s = listen_local(loop, &so, &sf);
	struct peer *c = connect_local(loop, proa_server_port(s), NULL, &cf);
	const size_t total = (8u << 20) + 12345;
	/* stream pieces: 'c' copied, 'f' sendfile, 'r' write_ref */
	static const struct {
		char kind;
		size_t len;
	} piece[] = {{'c', 1000},   {'f', 4u << 20}, {'c', 5},
		     {'f', 1},	    {'r', 70000},    {'f', 3},
		     {'f', 300001}, {'c', 16384},    {'f', 0}};
	enum { N = sizeof(piece) / sizeof(piece[0]) };
	struct wref r[N + 1];
	int fd = pat_file(total);
	uint64_t off = 0;
	struct peer *sv;
	unsigned k, nr = 0, prev;

	(void)state;
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	memset(r, 0, sizeof(r));
	for (k = 0; k <= N; k++) {
		/* the last piece: the rest of the file */
		size_t len = k < N ? piece[k].len : total - off;
		char kind = k < N ? piece[k].kind : 'f';

		if (kind == 'c') {
			write_pat(sv->t, off, len);
		} else {
			/* a length of 0 is released from the ready queue,
			 * maybe with a send in flight: no op check */
			r[nr].t = len > 0 ? sv->t : NULL;
			r[nr].rx = c;
			if (kind == 'r') {
				r[nr].base = off;
				r[nr].len = len;
				r[nr].buf = pat_buf(off, len);
				assert_res(proa_transport_write_ref(
					       sv->t, r[nr].buf, len,
					       wref_release, &r[nr]),
					   0);
			} else {
				assert_res(proa_transport_sendfile(
					       sv->t, fd, off, len,
					       wref_release, &r[nr]),
					   0);
				if (len > 0)
					check_sendfile_chunk(loop, sv->t);
			}
			assert_int_equal(r[nr].calls, 0); /* not inside */
			nr++;
		}
		off += len;
		if (k % 2)
			assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	}
	assert_int_equal(off, total);
	DRIVE(loop, c->rx == total);
	assert_int_equal(c->bad, 0);
	for (k = 0, prev = 0; k < nr; k++) {
		DRIVE(loop, r[k].calls > 0);
		assert_int_equal(r[k].calls, 1);
		assert_true(r[k].len == 0 || r[k].intact);
		/* in order; an empty one has nothing to wait for */
		if (!r[k].t)
			continue;
		assert_true(prev < r[k].seq);
		prev = r[k].seq;
	}
	assert_int_equal(r[nr - 1].wbuf_at_release, 0);
	assert_null(sv->t->pipe); /* back in the loop's cache */
	assert_int_equal(sv->t->piped, 0);
	assert_res(proa_transport_close(sv->t), 0);
	DRIVE(loop, c->lost && sv->lost);
	assert_res(sv->err, 0);
	assert_int_equal(c->rx, total);
	for (k = 0; k < nr; k++) {
		assert_int_equal(r[k].calls, 1);
		assert_true(r[k].seq < sv->lost_seq);
		free(r[k].buf);
	}
	close(fd);
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

/* close() right after sendfile: all of it is sent, released, then
 * connection_lost(0) and the peer's EOF. */
static void test_sendfile_close_flushes(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0}, cf = {.flags = P_VERIFY};
	struct proa_server_options so = {.transport.sndbuf = 4096};
	struct proa_server *s = listen_local(loop, &so, &sf);
	struct peer *c = connect_local(loop, proa_server_port(s), NULL, &cf);
	const size_t len = 3u << 20;
	int fd = pat_file(len);
	struct wref r = {.len = 0};
	struct peer *sv;

	(void)state;
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	r.t = sv->t;
	assert_res(proa_transport_sendfile(sv->t, fd, 0, len, wref_release, &r),
		   0);
	assert_int_equal(proa_transport_write_buffer_size(sv->t), len);
	assert_res(proa_transport_close(sv->t), 0);
	assert_int_equal(r.calls, 0);
	DRIVE(loop, sv->lost && c->lost);
	assert_res(sv->err, 0);
	assert_int_equal(c->rx, len);
	assert_int_equal(c->bad, 0);
	assert_int_equal(r.calls, 1);
	assert_true(r.seq < sv->lost_seq);
	close(fd);
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

/*
 * No descriptor left when the file's turn comes (EMFILE): splicing needs
 * a pipe, two descriptors, and the bytes queued before the file (a
 * response head) must not go out without it.  The file is sent from a
 * mapping instead: whole, released once, the connection kept.
 */
static void test_sendfile_without_descriptors(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0}, cf = {.flags = P_VERIFY};
	struct proa_server_options so = {.transport.sndbuf = 4096};
	struct proa_server *s = listen_local(loop, &so, &sf);
	struct peer *c = connect_local(loop, proa_server_port(s), NULL, &cf);
	const size_t len = 1u << 20;
	int fd = pat_file(len);
	struct wref r = {.len = 0};
	struct rlimit old, low;
	struct peer *sv;
	int lowest;

	(void)state;
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	r.t = sv->t;
	/* The lowest free descriptor becomes the limit: none can be had. */
	lowest = dup(0);
	assert_true(lowest >= 0);
	close(lowest);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)lowest;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	assert_true(dup(0) < 0 && errno == EMFILE);
	assert_res(proa_transport_sendfile(sv->t, fd, 0, len, wref_release, &r),
		   0);
	DRIVE(loop, c->rx == len || sv->lost);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_false(sv->lost);
	assert_int_equal(c->rx, len);
	assert_int_equal(c->bad, 0);
	DRIVE(loop, r.calls == 1);
	assert_res(proa_transport_close(sv->t), 0);
	DRIVE(loop, sv->lost && c->lost);
	assert_res(sv->err, 0);
	assert_int_equal(r.calls, 1);
	close(fd);
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

/* abort() while a file is being sent to a peer that reads nothing (the
 * pipe holds bytes, a splice or its poll is in flight): released once,
 * not inside abort, before connection_lost(-ECONNABORTED); what the peer
 * got is the file's bytes. */
static void test_sendfile_abort(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0}, cf = {.flags = P_VERIFY};
	struct proa_server_options so = {.transport.sndbuf = 4096};
	struct proa_connect_options co = {.transport.rcvbuf = 4096};
	struct proa_server *s = listen_local(loop, &so, &sf);
	struct peer *c = connect_local(loop, proa_server_port(s), &co, &cf);
	const size_t len = 4u << 20;
	int fd = pat_file(len);
	struct wref r = {.len = 0};
	struct peer *sv;
	unsigned i;

	(void)state;
	assert_res(proa_transport_pause_reading(c->t), 0);
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	r.t = sv->t;
	assert_res(proa_transport_sendfile(sv->t, fd, 0, len, wref_release, &r),
		   0);
	for (i = 0; i < 100; i++)
		assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	DRIVE(loop, !proa_op_is_idle(&sv->t->wop));
	assert_int_equal(r.calls, 0);
	assert_true(proa_transport_write_buffer_size(sv->t) > 0);
	proa_transport_abort(sv->t);
	assert_int_equal(r.calls, 0);
	assert_false(sv->lost);
	DRIVE(loop, sv->lost);
	assert_res(sv->err, -ECONNABORTED);
	assert_int_equal(r.calls, 1);
	assert_true(r.seq < sv->lost_seq);
	assert_res(proa_transport_resume_reading(c->t), 0);
	DRIVE(loop, c->lost);
	assert_int_equal(c->bad, 0);
	assert_true(c->rx < len);
	close(fd);
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

/* What sendfile refuses, before queueing anything (the release never
 * runs); a file that shrinks after the call ends the connection with
 * -ENODATA where it is spliced (a mapping would fault instead, so the
 * fallback is checked to be one). */
static void test_sendfile_errors(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0}, cf = {.flags = 0};
	struct proa_server *s = listen_local(loop, NULL, &sf);
	struct peer *c = connect_local(loop, proa_server_port(s), NULL, &cf);
	struct wref bad = {.len = 0}, z = {.len = 0}, tr = {.len = 0};
	int fd = pat_file(1u << 20), p[2];
	struct peer *sv;

	(void)state;
	assert_int_equal(pipe(p), 0);
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	assert_res(proa_transport_sendfile(sv->t, -1, 0, 1, wref_release, &bad),
		   -EBADF);
	assert_res(
	    proa_transport_sendfile(sv->t, p[0], 0, 1, wref_release, &bad),
	    -EINVAL); /* not a regular file */
	assert_res(
	    proa_transport_sendfile(sv->t, fd, 1u << 20, 1, wref_release, &bad),
	    -EINVAL); /* past the end */
	assert_res(proa_transport_sendfile(sv->t, fd, (1u << 20) + 1, 0,
					   wref_release, &bad),
		   -EINVAL);
	assert_res(proa_transport_sendfile(sv->t, fd, 0, 1, NULL, &bad),
		   -EINVAL);
	assert_res(proa_transport_sendfile(NULL, fd, 0, 1, wref_release, &bad),
		   -EINVAL);
	assert_res(proa_transport_sendfile(sv->t, fd, 0, (size_t)UINT32_MAX + 1,
					   wref_release, &bad),
		   -EINVAL);
	assert_int_equal(proa_transport_write_buffer_size(sv->t), 0);
	/* length 0 at the end: accepted, released once, nothing sent */
	assert_res(
	    proa_transport_sendfile(sv->t, fd, 1u << 20, 0, wref_release, &z),
	    0);
	DRIVE(loop, z.calls > 0);
	/* the file shrinks after the call */
	tr.t = sv->t;
	assert_res(
	    proa_transport_sendfile(sv->t, fd, 0, 1u << 20, wref_release, &tr),
	    0);
	check_sendfile_chunk(loop, sv->t);
	if (proa_loop_feature(loop, PROA_FEAT_OP_SPLICE)) {
		assert_int_equal(ftruncate(fd, 4096), 0);
		DRIVE(loop, sv->lost);
		assert_res(sv->err, -ENODATA);
		assert_int_equal(tr.calls, 1);
		assert_true(tr.seq < sv->lost_seq);
		DRIVE(loop, c->lost);
		assert_true(c->rx <= 4096);
	} else {
		DRIVE(loop, tr.calls > 0);
		assert_res(proa_transport_close(sv->t), 0);
		DRIVE(loop, sv->lost && c->lost);
		assert_int_equal(c->rx, 1u << 20);
	}
	/* closing: refused */
	c = connect_local(loop, proa_server_port(s), NULL, &cf);
	proa_transport_abort(c->t);
	assert_res(proa_transport_sendfile(c->t, fd, 0, 1, wref_release, &bad),
		   -EPIPE);
	DRIVE(loop, c->lost && farm_lost(&sf) == 2);
	assert_int_equal(bad.calls, 0);
	assert_int_equal(z.calls, 1);
	assert_int_equal(tr.calls, 1);
	close(p[0]);
	close(p[1]);
	close(fd);
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

/* ---- options and the rest of the transport API -------------------------- */

/* The listening descriptor of @s's listener @i: there is no accessor, so
 * it is found among this process's descriptors by its bound address. */
static int server_fd(const struct proa_server *s, unsigned i)
{
	struct sockaddr_storage want, got;
	socklen_t wlen, glen, vlen;
	struct dirent *e;
	int fd, v, found = -1;
	DIR *d;

	assert_res(proa_server_sockname(s, i, &want, &wlen), 0);
	d = opendir("/proc/self/fd");
	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		fd = atoi(e->d_name);
		vlen = sizeof(v);
		glen = sizeof(got);
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &vlen) == 0 &&
		    v && getsockname(fd, (struct sockaddr *)&got, &glen) == 0 &&
		    glen == wlen && memcmp(&got, &want, wlen) == 0) {
			assert_int_equal(found, -1); /* one socket only */
			found = fd;
		}
	}
	closedir(d);
	assert_true(found >= 0);
	return found;
}

static int sockopt_int(int fd, int level, int name)
{
	socklen_t len;
	int v = -1;

	len = sizeof(v);
	assert_int_equal(getsockopt(fd, level, name, &v, &len), 0);
	return v;
}

/* listen(2)'s backlog as the kernel holds it: for a listening socket,
 * TCP_INFO's tcpi_sacked is sk_max_ack_backlog (what ss -l shows). */
static int listen_backlog(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
	assert_int_equal(ti.tcpi_state, TCP_LISTEN);
	return (int)ti.tcpi_sacked;
}

/* The kernel caps every backlog at net.core.somaxconn. */
static int capped_backlog(int backlog)
{
	FILE *f = fopen("/proc/sys/net/core/somaxconn", "r");
	int max = 0;

	assert_non_null(f);
	assert_int_equal(fscanf(f, "%d", &max), 1);
	fclose(f);
	return backlog < max ? backlog : max;
}

/*
 * Server options: the backlog reaches listen(2) (511 by default);
 * SO_REUSEADDR is on by default, so a server can listen again on a port
 * that a connection it closed first still holds in TIME_WAIT; with
 * no_reuse_addr it is off, and that listen is -EADDRINUSE.
 */
static void test_server_options(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = P_ECHO}, cf = {.flags = 0};
	struct proa_server_options so = {.backlog = 7};
	struct proa_server_options nr = {.no_reuse_addr = true};
	struct sockaddr_in a = {.sin_family = AF_INET};
	struct proa_server *s = listen_local(loop, NULL, &sf);
	uint16_t port = proa_server_port(s);
	struct peer *c, *sv;
	int fd;

	(void)state;
	fd = server_fd(s, 0);
	assert_int_equal(listen_backlog(fd), capped_backlog(511));
	assert_int_equal(sockopt_int(fd, SOL_SOCKET, SO_REUSEADDR), 1);
	assert_int_equal(sockopt_int(fd, SOL_SOCKET, SO_REUSEPORT), 0);
	/* the server closes first: its end stays in TIME_WAIT on @port */
	c = connect_local(loop, port, NULL, &cf);
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	assert_res(proa_transport_close(sv->t), 0);
	DRIVE(loop, sv->lost && c->lost);
	assert_res(sv->err, 0);
	close_server(loop, s);
	/* without SO_REUSEADDR the port is taken (else this proves nothing) */
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons(port);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), -1);
	assert_int_equal(errno, EADDRINUSE);
	close(fd);
	assert_res(proa_tcp_listen_addr(loop, (struct sockaddr *)&a, sizeof(a),
					&nr, farm_make, &sf, &s),
		   -EADDRINUSE);
	/* the default binds over it, with the backlog asked for */
	s = NULL;
	assert_res(proa_tcp_listen_addr(loop, (struct sockaddr *)&a, sizeof(a),
					&so, farm_make, &sf, &s),
		   0);
	assert_int_equal(proa_server_port(s), port);
	fd = server_fd(s, 0);
	assert_int_equal(listen_backlog(fd), capped_backlog(7));
	assert_int_equal(sockopt_int(fd, SOL_SOCKET, SO_REUSEADDR), 1);
	c = connect_local(loop, port, NULL, &cf);
	assert_res(proa_transport_write(c->t, "again", 5), 0);
	DRIVE(loop, c->rx == 5);
	assert_res(proa_transport_close(c->t), 0);
	DRIVE(loop, c->lost && sf.peers->lost);
	close_server(loop, s);
	/* no_reuse_addr: the option is off on the listening socket */
	s = listen_local(loop, &nr, &sf);
	assert_int_equal(sockopt_int(server_fd(s, 0), SOL_SOCKET, SO_REUSEADDR),
			 0);
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

/*
 * writev: pieces of many sizes, among them an empty one and a NULL one of
 * length 0, and more pieces than one sendmsg gathers, arrive whole and in
 * order; a NULL base with a length is refused with nothing queued; after
 * close, -EPIPE.  sockname: the server side's port is the server's, the
 * client side's is what the server sees as its peer.
 */
static void test_writev_sockname(void **state)
{
	static const size_t sizes[] = {1,     0, 0, 16383, 2,	 16384,
				       30000, 0, 7, 16385, 4096, 3};
	enum { N = sizeof(sizes) / sizeof(sizes[0]), MANY = 70 };
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = P_VERIFY}, cf = {.flags = 0};
	struct proa_server *s = listen_local(loop, NULL, &sf);
	struct peer *c = connect_local(loop, proa_server_port(s), NULL, &cf);
	const size_t cap = 1u << 18;
	uint8_t *b = pat_buf(0, cap);
	struct iovec iov[MANY];
	struct sockaddr_storage ss, peer;
	socklen_t len, plen;
	uint64_t off = 0;
	struct peer *sv;
	unsigned k;

	(void)state;
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	/* the second zero-length piece has no base at all */
	for (k = 0; k < N; k++) {
		iov[k].iov_base = sizes[k] == 0 && k % 2 == 0 ? NULL : b + off;
		iov[k].iov_len = sizes[k];
		off += sizes[k];
	}
	assert_null(iov[2].iov_base);
	assert_non_null(iov[1].iov_base);
	assert_int_equal(iov[1].iov_len, 0);
	assert_res(proa_transport_writev(c->t, iov, N), 0);
	assert_int_equal(proa_transport_write_buffer_size(c->t), off);
	/* refused whole: nothing of the good pieces before it is queued */
	iov[0].iov_base = b + off;
	iov[0].iov_len = 10;
	iov[1].iov_base = NULL;
	iov[1].iov_len = 5;
	assert_res(proa_transport_writev(c->t, iov, 2), -EINVAL);
	assert_res(proa_transport_writev(c->t, iov, -1), -EINVAL);
	assert_res(proa_transport_writev(c->t, NULL, 1), -EINVAL);
	assert_res(proa_transport_writev(c->t, iov, 0), 0);
	assert_int_equal(proa_transport_write_buffer_size(c->t), off);
	/* more pieces than one sendmsg takes (PROA__SEND_IOV) */
	for (k = 0; k < MANY; k++) {
		iov[k].iov_base = b + off;
		iov[k].iov_len = 1 + k * 37;
		off += iov[k].iov_len;
	}
	assert_true(off <= cap);
	assert_res(proa_transport_writev(c->t, iov, MANY), 0);
	DRIVE(loop, sv->rx == off);
	assert_int_equal(sv->bad, 0);
	/* addresses */
	assert_res(proa_transport_sockname(sv->t, &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(len, sizeof(struct sockaddr_in));
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port),
			 proa_server_port(s));
	assert_int_equal(ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr),
			 INADDR_LOOPBACK);
	assert_res(proa_transport_sockname(c->t, &ss, &len), 0);
	assert_res(proa_transport_peername(sv->t, &peer, &plen), 0);
	assert_int_equal(len, plen);
	assert_memory_equal(&ss, &peer, len);
	assert_true(ntohs(((struct sockaddr_in *)&ss)->sin_port) !=
		    proa_server_port(s));
	assert_res(proa_transport_sockname(c->t, NULL, &len), -EINVAL);
	assert_res(proa_transport_close(c->t), 0);
	assert_res(proa_transport_writev(c->t, iov, 1), -EPIPE);
	DRIVE(loop, c->lost && sv->lost);
	assert_int_equal(sv->rx, off);
	free(b);
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

/*
 * set_write_buffer_limits against a peer that reads nothing: low > high
 * is -EINVAL and changes nothing; the marks set are the ones used (no
 * pause at the default 64 KiB, a pause past the new high); raising them
 * while paused resumes writing at once (the buffer is under the new low
 * though nothing was sent), lowering them pauses it again.
 */
static void test_write_limits(void **state)
{
	const size_t kib = 1024;
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0};
	struct proa_server_options so = {.transport.sndbuf = 4096};
	struct proa_server *s = listen_local(loop, &so, &sf);
	struct raw r = {.port = proa_server_port(s)};
	struct proa_transport *t;
	struct peer *sv;
	unsigned i;

	(void)state;
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	assert_int_equal(pthread_create(&r.th, NULL, raw_slow_main, &r), 0);
	DRIVE_NS(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	t = sv->t;
	assert_res(
	    proa_transport_set_write_buffer_limits(t, 256 * kib, 64 * kib), 0);
	assert_res(proa_transport_set_write_buffer_limits(t, 1000, 2000),
		   -EINVAL);
	assert_int_equal(t->high, 256 * kib);
	assert_int_equal(t->low, 64 * kib);
	write_pat(t, 0, 200 * kib);
	for (i = 0; i < 100; i++)
		assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	DRIVE_NS(loop, !proa_op_is_idle(&t->wop));
	/* over the default high, under the one set: no pause */
	assert_true(proa_transport_write_buffer_size(t) > 64 * kib);
	assert_int_equal(sv->pauses, 0);
	write_pat(t, 200 * kib, 200 * kib);
	DRIVE_NS(loop, sv->pauses == 1);
	assert_true(sv->buf_at_pause > 256 * kib);
	print_message("paused at %zu bytes buffered\n", sv->buf_at_pause);
	/* raised over what is buffered: resume, with nothing sent */
	assert_res(
	    proa_transport_set_write_buffer_limits(t, 1024 * kib, 512 * kib),
	    0);
	assert_int_equal(sv->resumes, 0); /* never inside the call */
	DRIVE_NS(loop, sv->resumes == 1);
	assert_true(sv->buf_at_resume > 128 * kib);
	/* lowered under it: pause again at the new high */
	assert_res(
	    proa_transport_set_write_buffer_limits(t, 128 * kib, 32 * kib), 0);
	DRIVE_NS(loop, sv->pauses == 2);
	assert_true(sv->buf_at_pause > 128 * kib);
	/* the peer reads: resume at the new low */
	raw_set_step(&r, 1);
	DRIVE_NS(loop, sv->resumes == 2);
	assert_true(sv->buf_at_resume <= 32 * kib);
	assert_res(proa_transport_close(t), 0);
	DRIVE_NS(loop, sv->lost);
	assert_res(sv->err, 0);
	pthread_join(r.th, NULL);
	assert_true(r.eof);
	assert_int_equal(r.got, 400 * kib);
	assert_int_equal(r.bad, 0);
	close_server(loop, s);
	proa_test_loop_close(loop);
	pthread_mutex_destroy(&r.mu);
	pthread_cond_destroy(&r.cv);
	farm_free(&sf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_echo_64mib, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_thousand, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_half_close, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_reset_mid_write, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_water_marks, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_close_inflight, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_pause_reading, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_buffer_exhaustion, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_abort_inflight, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_emfile, setup, teardown_check),
	    cmocka_unit_test_setup_teardown(test_connect_errors, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_timeouts, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_unix, setup, teardown_check),
	    cmocka_unit_test_setup_teardown(test_listen_names, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_server_options, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_writev_sockname, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_write_limits, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_echo_without_features, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_proxy, setup, teardown_check),
	    cmocka_unit_test_setup_teardown(test_write_ref_8mib, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_write_ref_mixed_order, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_write_ref_close_flushes, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_write_ref_abort, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_write_ref_reset, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_write_ref_errors, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_sendfile_mixed_order, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_sendfile_close_flushes, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_sendfile_without_descriptors,
					    setup, teardown_check),
	    cmocka_unit_test_setup_teardown(test_sendfile_abort, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_sendfile_errors, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_write_ref_empty, setup,
					    teardown_check),
	};

	proa_test_require_uring();
	/* test_thousand fails at once, saying why, if the descriptors it
	 * needs cannot be had (it would otherwise wait on a backlog that
	 * accept cannot drain). */
	nofile_ok = proa_test_raise_nofile(THOUSAND_FDS, nofile_why,
					   sizeof(nofile_why));
	if (!nofile_ok)
		fprintf(stderr, "test_tcp: %s\n", nofile_why);
	/* PROA_TEST_FILTER=test_name runs one test (debugging). */
	if (getenv("PROA_TEST_FILTER"))
		cmocka_set_test_filter(getenv("PROA_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
