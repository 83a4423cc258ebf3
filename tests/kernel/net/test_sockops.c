/* SPDX-License-Identifier: MIT */
/*
 * tests/kernel/net/test_sockops.c - the socket operations and the
 * provided-buffer rings of proa/op.h, at the op level, on socketpairs and
 * loopback TCP/UDP sockets: accept (single-shot with the peer's address,
 * multishot until cancelled, multishot with the feature hidden), connect
 * (listening and refused), send/recv (and -EPIPE with no SIGPIPE),
 * recv_select single-shot and multishot (buffer ids, available(), put,
 * -ENOBUFS without losing data, free while in flight), recvmsg_select on
 * UDP (address, payload, truncation), sendmsg/recvmsg with iovecs,
 * shutdown, and bad input refused before anything is queued.
 *
 * Cases that need a feature this kernel lacks say so and return; the rest
 * still run.  The loop is driven one iteration at a time with an iteration
 * bound, never with sleeps.  Every case checks that no descriptor leaked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "proa_test.h"
#include "ring/ring_int.h"

#define MAX_ITER 100000u
#define MAXREC 32

/* ---- helpers ----------------------------------------------------------------
 */

/* Every completion of one op, in order. */
struct rec {
	unsigned n;	/* all completions */
	unsigned more;	/* with PROA_OP_F_MORE */
	unsigned final; /* without it */
	int32_t res[MAXREC];
	uint32_t flags[MAXREC];
};

static void rec_cb(struct proa_op *op)
{
	struct rec *r = op->data;

	if (r->n < MAXREC) {
		r->res[r->n] = op->res;
		r->flags[r->n] = op->flags;
	}
	r->n++;
	if (op->flags & PROA_OP_F_MORE)
		r->more++;
	else
		r->final++;
}

/* Iterate until @expr holds (proa_test.h). */
#define DRIVE(loop, expr) PROA_TEST_DRIVE(loop, expr, MAX_ITER)

/* Wait for @op's final completion (exactly one) and return its result. */
static int32_t finish(struct proa_loop *loop, struct proa_op *op, struct rec *r)
{
	proa_test_drive_op(loop, op, MAX_ITER);
	assert_int_equal(r->final, 1);
	assert_true(r->n >= 1 && r->n <= MAXREC);
	assert_false(r->flags[r->n - 1] & PROA_OP_F_MORE);
	return r->res[r->n - 1];
}

/* Submit a single-shot @call on op_ and return its result. */
#define SYNC(loop, r, call)                                                    \
	({                                                                     \
		struct proa_op op_;                                            \
		*(r) = (struct rec){0};                                        \
		proa_op_init(&op_, rec_cb, (r));                               \
		assert_res(call, 0);                                           \
		finish((loop), &op_, (r));                                     \
	})

/* Whether @loop has @f; if not, say which test is skipped and why. */
static bool need(struct proa_loop *loop, enum proa_feature f, const char *test)
{
	if (proa_loop_feature(loop, f))
		return true;
	print_message("skipped %s: this kernel lacks %s\n", test,
		      proa_feature_name(f));
	return false;
}

static void stream_pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
}

/* A socket of @type bound to 127.0.0.1 on a port the kernel picks, which
 * lands in @sa. */
static int bound_socket(int type, struct sockaddr_in *sa)
{
	socklen_t len = sizeof(*sa);
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)sa, sizeof(*sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)sa, &len), 0);
	assert_int_equal(len, sizeof(*sa));
	return fd;
}

static int tcp_listener(struct sockaddr_in *sa)
{
	int fd = bound_socket(SOCK_STREAM, sa);

	assert_int_equal(listen(fd, 16), 0);
	return fd;
}

/* A blocking connect to a loopback listener: done once the handshake is,
 * before anyone accepts. */
static int tcp_connect(const struct sockaddr_in *sa)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (const struct sockaddr *)sa, sizeof(*sa)),
			 0);
	return fd;
}

static in_port_t local_port(int fd)
{
	struct sockaddr_in sa = {0};
	socklen_t len = sizeof(sa);

	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	return sa.sin_port;
}

/* The descriptors accept hands out: non-blocking and close-on-exec. */
static void assert_nonblock_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFL), fd_fl = fcntl(fd, F_GETFD);

	assert_true(fl >= 0 && fd_fl >= 0);
	assert_true(fl & O_NONBLOCK);
	assert_true(fd_fl & FD_CLOEXEC);
}

static void fill_pattern(unsigned char *buf, size_t len, unsigned seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] =
		    (unsigned char)(i * 131u + (size_t)seed * 7u + (i >> 8));
}

/* ---- bad input
 * ---------------------------------------------------------------
 */

static void never_cb(struct proa_op *op)
{
	(*(unsigned *)op->data)++;
}

static void test_bad_input_is_refused_before_queueing(void **state)
{
	int before = proa_test_fds();
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_loop *other = proa_test_loop_new();
	struct proa_buf_ring *br = NULL, *obr = NULL, *nbr = NULL;
	struct proa_op op, busy;
	struct rec brec = {0};
	struct sockaddr_in sa, lsa;
	unsigned alen = sizeof(sa), runs = 0;
	struct msghdr msg, nmsg;
	struct proa_recvmsg_out out;
	char buf[64];
	int sv[2], lfd;
	bool rings = proa_loop_feature(loop, PROA_FEAT_BUF_RING);
	bool mshot = proa_loop_feature(loop, PROA_FEAT_RECV_MULTISHOT);
	struct {
		const char *what;
		int ret;
		int want;
	} cases[64];
	size_t n = 0, i;

	stream_pair(sv);
	lfd = tcp_listener(&lsa);
	memset(&sa, 0, sizeof(sa));
	memset(&msg, 0, sizeof(msg));
	memset(&nmsg, 0, sizeof(nmsg));
	nmsg.msg_namelen = sizeof(struct sockaddr_in);
	memset(buf, 0, sizeof(buf));
	if (rings) {
		assert_res(proa_buf_ring_new(&br, loop, 4, 64), 0);
		assert_res(proa_buf_ring_new(&obr, other, 4, 64), 0);
	} else {
		print_message("skipped the buffer-ring cases: this kernel "
			      "lacks BUF_RING\n");
	}

#define CASE(want_, call_)                                                     \
	do {                                                                   \
		assert_true(n < sizeof(cases) / sizeof(cases[0]));             \
		proa_op_init(&op, never_cb, &runs);                            \
		cases[n].what = #call_;                                        \
		cases[n].ret = (call_);                                        \
		cases[n].want = (want_);                                       \
		assert_true(proa_op_is_idle(&op));                             \
		n++;                                                           \
	} while (0)

	/* Negative descriptors. */
	CASE(-EBADF, proa_op_accept(loop, &op, -1, NULL, NULL, 0));
	CASE(-EBADF, proa_op_connect(loop, &op, -1, (struct sockaddr *)&lsa,
				     sizeof(lsa)));
	CASE(-EBADF, proa_op_recv(loop, &op, -1, buf, sizeof(buf), 0));
	CASE(-EBADF, proa_op_send(loop, &op, -2, buf, 1, 0));
	CASE(-EBADF, proa_op_sendmsg(loop, &op, -1, &msg, 0));
	CASE(-EBADF, proa_op_recvmsg(loop, &op, -1, &msg, 0));
	CASE(-EBADF, proa_op_shutdown(loop, &op, -1, SHUT_WR));
	/* accept. */
	CASE(-EINVAL,
	     proa_op_accept(loop, &op, lfd, (struct sockaddr *)&sa, NULL, 0));
	CASE(-EINVAL, proa_op_accept(loop, &op, lfd, (struct sockaddr *)&sa,
				     &alen, PROA_ACCEPT_MULTISHOT));
	CASE(-EINVAL, proa_op_accept(loop, &op, lfd, NULL, NULL, 0x10));
	/* connect. */
	CASE(-EINVAL, proa_op_connect(loop, &op, sv[0], NULL, sizeof(lsa)));
	CASE(-EINVAL,
	     proa_op_connect(loop, &op, sv[0], (struct sockaddr *)&lsa, 0));
	/* recv, send, sendmsg, recvmsg, shutdown. */
	CASE(-EINVAL, proa_op_recv(loop, &op, sv[0], NULL, 8, 0));
	CASE(-EINVAL, proa_op_send(loop, &op, sv[0], NULL, 8, 0));
	CASE(-EINVAL, proa_op_sendmsg(loop, &op, sv[0], NULL, 0));
	CASE(-EINVAL, proa_op_recvmsg(loop, &op, sv[0], NULL, 0));
	CASE(-EINVAL, proa_op_shutdown(loop, &op, sv[0], 99));
	/* splice: checked where the loop has it, refused where not. */
	if (proa_loop_feature(loop, PROA_FEAT_OP_SPLICE)) {
		CASE(-EBADF, proa_op_splice(loop, &op, -1, 0, sv[0], -1, 1, 0));
		CASE(-EBADF, proa_op_splice(loop, &op, sv[0], -1, -1, 0, 1, 0));
		CASE(-EINVAL,
		     proa_op_splice(loop, &op, sv[0], -2, sv[1], -1, 1, 0));
		CASE(-EINVAL,
		     proa_op_splice(loop, &op, sv[0], -1, sv[1], -2, 1, 0));
		CASE(-EINVAL, proa_op_splice(loop, &op, sv[0], -1, sv[1], -1,
					     (size_t)INT32_MAX + 1, 0));
		CASE(-EINVAL,
		     proa_op_splice(loop, &op, sv[0], -1, sv[1], -1, 1, 0x100));
	} else {
		CASE(-EOPNOTSUPP,
		     proa_op_splice(loop, &op, sv[0], -1, sv[1], -1, 1, 0));
	}
	/* Buffer rings: sizes are checked before the feature. */
	CASE(-EINVAL, proa_buf_ring_new(&nbr, loop, 0, 64));
	CASE(-EINVAL, proa_buf_ring_new(&nbr, loop, 3, 64));
	CASE(-EINVAL, proa_buf_ring_new(&nbr, loop, 65536, 64));
	CASE(-EINVAL, proa_buf_ring_new(&nbr, loop, 4, 0));
	/* A datagram too short for its header and the address room. */
	CASE(-EINVAL, proa_recvmsg_parse(&nmsg, buf, 8, &out));
	CASE(-EINVAL, proa_recvmsg_parse(&nmsg, buf, 16, &out));
	if (rings) {
		CASE(-EBADF, proa_op_recv_select(loop, &op, -1, br, 0));
		CASE(-EINVAL, proa_op_recv_select(loop, &op, sv[0], NULL, 0));
		CASE(-EINVAL, proa_op_recv_select(loop, &op, sv[0], obr, 0));
		CASE(-EINVAL, proa_op_recv_select(loop, &op, sv[0], br, 0x10));
		/* POLL_FIRST is for a one-shot receive only. */
		CASE(-EINVAL, proa_op_recv_select(loop, &op, sv[0], br,
						  PROA_RECV_MULTISHOT |
						      PROA_RECV_POLL_FIRST));
		CASE(-EINVAL, proa_buf_ring_put(br, 4));
		CASE(-EINVAL, proa_buf_ring_put(br, UINT_MAX));
		/* Every buffer is in the ring after new: a put is a
		 * double put. */
		CASE(-EALREADY, proa_buf_ring_put(br, 0));
		CASE(-EALREADY, proa_buf_ring_put(br, 3));
	}
	if (rings && mshot) {
		CASE(-EBADF, proa_op_recvmsg_select(loop, &op, -1, &nmsg, br));
		CASE(-EINVAL,
		     proa_op_recvmsg_select(loop, &op, sv[0], NULL, br));
		CASE(-EINVAL,
		     proa_op_recvmsg_select(loop, &op, sv[0], &nmsg, NULL));
		CASE(-EINVAL,
		     proa_op_recvmsg_select(loop, &op, sv[0], &nmsg, obr));
	}
	/* An op in flight: a recv on a socket with nothing to read. */
	proa_op_init(&busy, rec_cb, &brec);
	assert_res(proa_op_recv(loop, &busy, sv[0], buf, sizeof(buf), 0), 0);
	cases[n].what = "proa_op_recv(busy)";
	cases[n].ret = proa_op_recv(loop, &busy, sv[0], buf, 1, 0);
	cases[n++].want = -EBUSY;
	cases[n].what = "proa_op_send(busy)";
	cases[n].ret = proa_op_send(loop, &busy, sv[0], buf, 1, 0);
	cases[n++].want = -EBUSY;
	cases[n].what = "proa_op_accept(busy)";
	cases[n].ret = proa_op_accept(loop, &busy, lfd, NULL, NULL, 0);
	cases[n++].want = -EBUSY;
	cases[n].what = "proa_op_shutdown(busy)";
	cases[n].ret = proa_op_shutdown(loop, &busy, sv[0], SHUT_WR);
	cases[n++].want = -EBUSY;
	if (rings) {
		cases[n].what = "proa_op_recv_select(busy)";
		cases[n].ret = proa_op_recv_select(loop, &busy, sv[0], br, 0);
		cases[n++].want = -EBUSY;
	}
#undef CASE

	for (i = 0; i < n; i++) {
		if (cases[i].ret != cases[i].want)
			print_error("%s: returned %d (%s), want %d (%s)\n",
				    cases[i].what, cases[i].ret,
				    proa_strerror(cases[i].ret), cases[i].want,
				    proa_strerror(cases[i].want));
	}
	for (i = 0; i < n; i++)
		assert_int_equal(cases[i].ret, cases[i].want);
	assert_null(nbr);
	/* The refusals left the busy op as it was. */
	assert_int_equal(proa_op_state(&busy), PROA_OP_INFLIGHT);
	assert_int_equal(proa_loop_run(loop, PROA_RUN_NOWAIT), 1);
	assert_int_equal(brec.n, 0);
	if (rings)
		assert_int_equal(proa_buf_ring_available(br), 4);
	assert_res(proa_op_cancel(&busy), 0);
	assert_res(finish(loop, &busy, &brec), -ECANCELED);
	assert_res(proa_loop_run(loop, PROA_RUN_NOWAIT), 0);
	assert_int_equal(runs, 0);

	assert_res(proa_buf_ring_free(br), 0);
	assert_res(proa_buf_ring_free(obr), 0);
	assert_res(proa_buf_ring_free(NULL), 0);
	close(sv[0]);
	close(sv[1]);
	close(lfd);
	proa_test_loop_close(other);
	proa_test_loop_close(loop);
	assert_int_equal(proa_test_fds(), before);
	(void)state;
}

/* ---- accept
 * --------------------------------------------------------------------
 */

static void test_accept_single_shot_with_address(void **state)
{
	int before = proa_test_fds();
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_op op;
	struct rec r = {0};
	struct sockaddr_in lsa, peer;
	unsigned plen = sizeof(peer);
	int lfd = tcp_listener(&lsa), cfd, afd;
	char buf[8];

	memset(&peer, 0, sizeof(peer));
	proa_op_init(&op, rec_cb, &r);
	assert_res(
	    proa_op_accept(loop, &op, lfd, (struct sockaddr *)&peer, &plen, 0),
	    0);
	/* Nobody has connected yet: it waits. */
	assert_int_equal(proa_loop_run(loop, PROA_RUN_NOWAIT), 1);
	assert_int_equal(r.n, 0);
	cfd = tcp_connect(&lsa);
	afd = finish(loop, &op, &r);
	assert_true(afd >= 0);
	assert_int_equal(r.n, 1);
	assert_false(r.flags[0] & PROA_OP_F_MORE);
	/* The address is the peer's. */
	assert_int_equal(plen, sizeof(peer));
	assert_int_equal(peer.sin_family, AF_INET);
	assert_int_equal(peer.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
	assert_int_equal(peer.sin_port, local_port(cfd));
	assert_nonblock_cloexec(afd);
	/* And it is connected to it. */
	assert_int_equal(write(cfd, "hi", 2), 2);
	assert_int_equal(
	    SYNC(loop, &r, proa_op_recv(loop, &op_, afd, buf, sizeof(buf), 0)),
	    2);
	assert_memory_equal(buf, "hi", 2);

	/* Without an address too. */
	close(afd);
	close(cfd);
	cfd = tcp_connect(&lsa);
	afd = SYNC(loop, &r, proa_op_accept(loop, &op_, lfd, NULL, NULL, 0));
	assert_true(afd >= 0);
	assert_nonblock_cloexec(afd);
	close(afd);
	close(cfd);
	close(lfd);
	proa_test_loop_close(loop);
	assert_int_equal(proa_test_fds(), before);
	(void)state;
}

static void test_accept_multishot_until_cancel(void **state)
{
	int before = proa_test_fds();
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_op op;
	struct rec r = {0};
	struct sockaddr_in lsa;
	int lfd, cfd[3], i;

	if (!need(loop, PROA_FEAT_ACCEPT_MULTISHOT, __func__)) {
		proa_test_loop_close(loop);
		return;
	}
	lfd = tcp_listener(&lsa);
	proa_op_init(&op, rec_cb, &r);
	assert_res(
	    proa_op_accept(loop, &op, lfd, NULL, NULL, PROA_ACCEPT_MULTISHOT),
	    0);
	assert_int_equal(proa_loop_run(loop, PROA_RUN_NOWAIT), 1);
	assert_int_equal(r.n, 0);
	for (i = 0; i < 3; i++) {
		cfd[i] = tcp_connect(&lsa);
		DRIVE(loop, r.n >= (unsigned)i + 1);
		assert_int_equal(r.n, (unsigned)i + 1);
		assert_true(r.flags[i] & PROA_OP_F_MORE);
		assert_true(r.res[i] >= 0);
		assert_nonblock_cloexec(r.res[i]);
		assert_false(proa_op_is_idle(&op));
	}
	assert_int_equal(r.more, 3);
	assert_int_equal(r.final, 0);
	/* Three different descriptors. */
	assert_true(r.res[0] != r.res[1] && r.res[1] != r.res[2] &&
		    r.res[0] != r.res[2]);
	assert_res(proa_op_cancel(&op), 0);
	assert_res(proa_op_cancel(&op), -EALREADY);
	assert_res(finish(loop, &op, &r), -ECANCELED);
	assert_int_equal(r.n, 4);
	assert_int_equal(r.more, 3);
	assert_res(proa_op_cancel(&op), -ENOENT);
	for (i = 0; i < 3; i++) {
		close(r.res[i]);
		close(cfd[i]);
	}
	close(lfd);
	proa_test_loop_close(loop);
	assert_int_equal(proa_test_fds(), before);
	(void)state;
}

static void test_accept_multishot_hidden_is_eopnotsupp(void **state)
{
	int before = proa_test_fds();
	struct proa_loop *loop;
	struct proa_op op;
	struct rec r = {0};
	struct sockaddr_in lsa;
	unsigned runs = 0;
	int lfd, cfd, afd;

	proa__ring_faults.hide_features = 1ull << PROA_FEAT_ACCEPT_MULTISHOT;
	loop = proa_test_loop_new();
	proa__ring_faults.hide_features = 0;
	assert_false(proa_loop_feature(loop, PROA_FEAT_ACCEPT_MULTISHOT));
	lfd = tcp_listener(&lsa);
	proa_op_init(&op, never_cb, &runs);
	assert_res(
	    proa_op_accept(loop, &op, lfd, NULL, NULL, PROA_ACCEPT_MULTISHOT),
	    -EOPNOTSUPP);
	assert_true(proa_op_is_idle(&op));
	assert_res(proa_loop_run(loop, PROA_RUN_NOWAIT), 0);
	assert_int_equal(runs, 0);
	/* Single-shot accept still works. */
	cfd = tcp_connect(&lsa);
	afd = SYNC(loop, &r, proa_op_accept(loop, &op_, lfd, NULL, NULL, 0));
	assert_true(afd >= 0);
	assert_nonblock_cloexec(afd);
	close(afd);
	close(cfd);
	close(lfd);
	proa_test_loop_close(loop);
	assert_int_equal(proa_test_fds(), before);
	(void)state;
}

/* ---- connect
 * -------------------------------------------------------------------
 */

static void test_connect_listening_and_refused(void **state)
{
	int before = proa_test_fds();
	struct proa_loop *loop = proa_test_loop_new();
	struct rec r;
	struct sockaddr_in lsa, csa;
	int lfd = tcp_listener(&lsa), fd, afd, closed;
	char c;

	/* To a listener: 0, and the connection is there to accept. */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_res(SYNC(loop, &r,
			proa_op_connect(loop, &op_, fd, (struct sockaddr *)&lsa,
					sizeof(lsa))),
		   0);
	afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(afd >= 0);
	assert_int_equal(write(afd, "x", 1), 1);
	assert_int_equal(read(fd, &c, 1), 1);
	assert_int_equal(c, 'x');
	close(afd);
	close(fd);

	/* To a port bound but not listening (held, so nobody else takes
	 * it): refused. */
	closed = bound_socket(SOCK_STREAM, &csa);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_true(fd >= 0);
	assert_res(SYNC(loop, &r,
			proa_op_connect(loop, &op_, fd, (struct sockaddr *)&csa,
					sizeof(csa))),
		   -ECONNREFUSED);
	close(fd);
	close(closed);
	close(lfd);
	proa_test_loop_close(loop);
	assert_int_equal(proa_test_fds(), before);
	(void)state;
}

/* ---- send, recv
 * ---------------------------------------------------------------
 */

static void test_send_recv_over_socketpair(void **state)
{
	int before = proa_test_fds();
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_op rop, sop;
	struct rec r = {0}, s = {0};
	unsigned char src[4096], dst[4096];
	char buf[32];
	size_t got;
	int sv[2];
	int32_t res;

	stream_pair(sv);
	/* A recv waiting for data that a send brings. */
	proa_op_init(&rop, rec_cb, &r);
	assert_res(proa_op_recv(loop, &rop, sv[1], buf, sizeof(buf), 0), 0);
	assert_int_equal(proa_loop_run(loop, PROA_RUN_NOWAIT), 1);
	assert_int_equal(r.n, 0);
	proa_op_init(&sop, rec_cb, &s);
	assert_res(proa_op_send(loop, &sop, sv[0], "hello world", 11, 0), 0);
	assert_int_equal(finish(loop, &sop, &s), 11);
	assert_int_equal(finish(loop, &rop, &r), 11);
	assert_memory_equal(buf, "hello world", 11);

	/* Larger, both ways, byte for byte. */
	fill_pattern(src, sizeof(src), 1);
	assert_int_equal(
	    SYNC(loop, &s,
		 proa_op_send(loop, &op_, sv[1], src, sizeof(src), 0)),
	    (int)sizeof(src));
	for (got = 0; got < sizeof(dst); got += (size_t)res) {
		res = SYNC(loop, &r,
			   proa_op_recv(loop, &op_, sv[0], dst + got,
					sizeof(dst) - got, 0));
		assert_true(res > 0);
	}
	assert_memory_equal(src, dst, sizeof(src));
	/* MSG_PEEK goes through: the same bytes twice. */
	assert_int_equal(write(sv[0], "peek", 4), 4);
	assert_int_equal(
	    SYNC(loop, &r, proa_op_recv(loop, &op_, sv[1], buf, 4, MSG_PEEK)),
	    4);
	assert_int_equal(
	    SYNC(loop, &r, proa_op_recv(loop, &op_, sv[1], buf, 4, 0)), 4);
	assert_memory_equal(buf, "peek", 4);
	/* The peer closed: 0. */
	close(sv[0]);
	assert_res(SYNC(loop, &r,
			proa_op_recv(loop, &op_, sv[1], buf, sizeof(buf), 0)),
		   0);
	close(sv[1]);
	proa_test_loop_close(loop);
	assert_int_equal(proa_test_fds(), before);
	(void)state;
}

static void test_send_to_closed_peer_is_epipe_without_sigpipe(void **state)
{
	int before = proa_test_fds();
	struct proa_loop *loop = proa_test_loop_new();
	struct sigaction dfl, old;
	sigset_t pipe_set, old_mask, pending;
	struct msghdr msg;
	struct iovec iov = {(void *)"x", 1};
	struct rec r;
	int sv[2];

	/* A SIGPIPE would kill the process. */
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	assert_int_equal(sigaction(SIGPIPE, &dfl, &old), 0);
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	assert_int_equal(pthread_sigmask(SIG_UNBLOCK, &pipe_set, &old_mask), 0);

	stream_pair(sv);
	close(sv[1]);
	assert_res(SYNC(loop, &r, proa_op_send(loop, &op_, sv[0], "abc", 3, 0)),
		   -EPIPE);
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	assert_res(SYNC(loop, &r, proa_op_sendmsg(loop, &op_, sv[0], &msg, 0)),
		   -EPIPE);
	/* Still alive, and nothing pending either. */
	assert_int_equal(sigpending(&pending), 0);
	assert_false(sigismember(&pending, SIGPIPE));
	close(sv[0]);

	assert_int_equal(pthread_sigmask(SIG_SETMASK, &old_mask, NULL), 0);
	assert_int_equal(sigaction(SIGPIPE, &old, NULL), 0);
	proa_test_loop_close(loop);
	assert_int_equal(proa_test_fds(), before);
	(void)state;
}

/* ---- recv_select
 * --------------------------------------------------------------
 */

static void test_recv_select_single_shot(void **state)
{
	int before = proa_test_fds();
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_buf_ring *br = NULL;
	struct proa_op op;
	struct rec r = {0};
	unsigned id, id2;
	int sv[2];

	if (!need(loop, PROA_FEAT_BUF_RING, __func__)) {
		proa_test_loop_close(loop);
		return;
	}
	stream_pair(sv);
	assert_res(proa_buf_ring_new(&br, loop, 4, 100), 0);
	assert_non_null(br);
	/* Rounded up to 64. */
	assert_int_equal(proa_buf_ring_bufsize(br), 128);
	assert_int_equal(proa_buf_ring_available(br), 4);
	assert_null(proa_buf_ring_buf(br, 4));
	assert_non_null(proa_buf_ring_buf(br, 3));

	/* An idle socket holds no buffer. */
	proa_op_init(&op, rec_cb, &r);
	assert_res(proa_op_recv_select(loop, &op, sv[0], br, 0), 0);
	assert_int_equal(proa_loop_run(loop, PROA_RUN_NOWAIT), 1);
	assert_int_equal(r.n, 0);
	assert_int_equal(proa_buf_ring_available(br), 4);
	assert_int_equal(write(sv[1], "ping", 4), 4);
	assert_int_equal(finish(loop, &op, &r), 4);
	assert_true(r.flags[0] & PROA_OP_F_BUFFER);
	id = proa_op_buffer_id(&op);
	assert_true(id < 4);
	assert_memory_equal(proa_buf_ring_buf(br, id), "ping", 4);
	/* Held while the caller has it. */
	assert_int_equal(proa_buf_ring_available(br), 3);
	/* A second one takes another buffer. */
	r = (struct rec){0};
	assert_int_equal(write(sv[1], "pong!", 5), 5);
	assert_res(proa_op_recv_select(loop, &op, sv[0], br, 0), 0);
	assert_int_equal(finish(loop, &op, &r), 5);
	assert_true(r.flags[0] & PROA_OP_F_BUFFER);
	id2 = proa_op_buffer_id(&op);
	assert_true(id2 < 4 && id2 != id);
	assert_memory_equal(proa_buf_ring_buf(br, id2), "pong!", 5);
	assert_memory_equal(proa_buf_ring_buf(br, id), "ping", 4);
	assert_int_equal(proa_buf_ring_available(br), 2);
	/* Back after put, once. */
	assert_res(proa_buf_ring_put(br, id), 0);
	assert_res(proa_buf_ring_put(br, id), -EALREADY);
	assert_res(proa_buf_ring_put(br, id2), 0);
	assert_int_equal(proa_buf_ring_available(br), 4);
	/* POLL_FIRST: waits on an empty socket, and still takes data that
	 * was there before it was asked. */
	r = (struct rec){0};
	assert_int_equal(
	    proa_op_recv_select(loop, &op, sv[0], br, PROA_RECV_POLL_FIRST), 0);
	assert_int_equal(proa_loop_run(loop, PROA_RUN_NOWAIT), 1);
	assert_int_equal(r.n, 0);
	assert_int_equal(write(sv[1], "first", 5), 5);
	assert_int_equal(finish(loop, &op, &r), 5);
	assert_memory_equal(proa_buf_ring_buf(br, proa_op_buffer_id(&op)),
			    "first", 5);
	assert_int_equal(proa_buf_ring_put(br, proa_op_buffer_id(&op)), 0);
	r = (struct rec){0};
	assert_int_equal(write(sv[1], "ready", 5), 5);
	assert_int_equal(
	    proa_op_recv_select(loop, &op, sv[0], br, PROA_RECV_POLL_FIRST), 0);
	assert_int_equal(finish(loop, &op, &r), 5);
	assert_memory_equal(proa_buf_ring_buf(br, proa_op_buffer_id(&op)),
			    "ready", 5);
	assert_int_equal(proa_buf_ring_put(br, proa_op_buffer_id(&op)), 0);

	/* EOF: 0, and no buffer is taken. */
	close(sv[1]);
	r = (struct rec){0};
	assert_res(proa_op_recv_select(loop, &op, sv[0], br, 0), 0);
	assert_res(finish(loop, &op, &r), 0);
	if (r.flags[0] & PROA_OP_F_BUFFER)
		assert_res(proa_buf_ring_put(br, proa_op_buffer_id(&op)), 0);
	assert_int_equal(proa_buf_ring_available(br), 4);
	assert_res(proa_buf_ring_free(br), 0);
	close(sv[0]);
	proa_test_loop_close(loop);
	assert_int_equal(proa_test_fds(), before);
	(void)state;
}

static void test_recv_select_multishot(void **state)
{
	int before = proa_test_fds();
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_buf_ring *br = NULL;
	struct proa_op op;
	struct rec r = {0};
	char msg[16];
	unsigned id, i;
	int sv[2], len;

	if (!need(loop, PROA_FEAT_BUF_RING, __func__) ||
	    !need(loop, PROA_FEAT_RECV_MULTISHOT, __func__)) {
		proa_test_loop_close(loop);
		return;
	}
	stream_pair(sv);
	assert_res(proa_buf_ring_new(&br, loop, 4, 64), 0);
	proa_op_init(&op, rec_cb, &r);
	assert_res(
	    proa_op_recv_select(loop, &op, sv[0], br, PROA_RECV_MULTISHOT), 0);
	assert_int_equal(proa_loop_run(loop, PROA_RUN_NOWAIT), 1);
	assert_int_equal(r.n, 0);
	for (i = 0; i < 5; i++) {
		len = snprintf(msg, sizeof(msg), "message-%u", i);
		assert_int_equal(write(sv[1], msg, (size_t)len), len);
		DRIVE(loop, r.n >= i + 1);
		assert_int_equal(r.n, i + 1);
		assert_int_equal(r.res[i], len);
		assert_true(r.flags[i] & PROA_OP_F_MORE);
		assert_true(r.flags[i] & PROA_OP_F_BUFFER);
		assert_false(proa_op_is_idle(&op));
		/* op->flags is this completion's. */
		id = proa_op_buffer_id(&op);
		assert_int_equal(id, r.flags[i] >> 16);
		assert_true(id < 4);
		assert_memory_equal(proa_buf_ring_buf(br, id), msg,
				    (size_t)len);
		assert_int_equal(proa_buf_ring_available(br), 3);
		assert_res(proa_buf_ring_put(br, id), 0);
		assert_int_equal(proa_buf_ring_available(br), 4);
	}
	/* Still multishot: freeing the ring is refused. */
	assert_res(proa_buf_ring_free(br), -EBUSY);
	/* The peer's EOF ends it: a final completion of 0. */
	close(sv[1]);
	assert_res(finish(loop, &op, &r), 0);
	assert_int_equal(r.more, 5);
	if (r.flags[r.n - 1] & PROA_OP_F_BUFFER)
		assert_res(proa_buf_ring_put(br, r.flags[r.n - 1] >> 16), 0);
	assert_int_equal(proa_buf_ring_available(br), 4);

	/* And cancel ends another one without F_MORE. */
	r = (struct rec){0};
	close(sv[0]);
	stream_pair(sv);
	assert_res(
	    proa_op_recv_select(loop, &op, sv[0], br, PROA_RECV_MULTISHOT), 0);
	assert_int_equal(proa_loop_run(loop, PROA_RUN_NOWAIT), 1);
	assert_res(proa_op_cancel(&op), 0);
	assert_res(finish(loop, &op, &r), -ECANCELED);
	assert_int_equal(r.n, 1);
	assert_false(r.flags[0] & PROA_OP_F_BUFFER);
	assert_int_equal(proa_buf_ring_available(br), 4);
	assert_res(proa_buf_ring_free(br), 0);
	close(sv[0]);
	close(sv[1]);
	proa_test_loop_close(loop);
	assert_int_equal(proa_test_fds(), before);
	(void)state;
}

/* Take every buffer the completions in @r used, in order, into @out at
 * *@got, and give the buffers back. */
static void collect(struct proa_buf_ring *br, const struct rec *r,
		    unsigned from, unsigned char *out, size_t cap, size_t *got)
{
	unsigned i, id;

	for (i = from; i < r->n && i < MAXREC; i++) {
		if (!(r->flags[i] & PROA_OP_F_BUFFER))
			continue;
		id = r->flags[i] >> 16;
		assert_true(r->res[i] >= 0);
		assert_true(*got + (size_t)r->res[i] <= cap);
		memcpy(out + *got, proa_buf_ring_buf(br, id),
		       (size_t)r->res[i]);
		*got += (size_t)r->res[i];
		assert_res(proa_buf_ring_put(br, id), 0);
	}
}

static void test_recv_select_exhaustion_enobufs_loses_nothing(void **state)
{
	int before = proa_test_fds();
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_buf_ring *br = NULL;
	struct proa_op op;
	struct rec r = {0};
	unsigned char src[192], dst[192];
	size_t got = 0;
	unsigned seen;
	int sv[2], i;

	if (!need(loop, PROA_FEAT_BUF_RING, __func__) ||
	    !need(loop, PROA_FEAT_RECV_MULTISHOT, __func__)) {
		proa_test_loop_close(loop);
		return;
	}
	stream_pair(sv);
	assert_res(proa_buf_ring_new(&br, loop, 2, 64), 0);
	assert_int_equal(proa_buf_ring_bufsize(br), 64);
	/* Three buffers' worth waits before the loop runs. */
	fill_pattern(src, sizeof(src), 5);
	for (i = 0; i < 3; i++)
		assert_int_equal(write(sv[1], src + (size_t)i * 64, 64), 64);
	proa_op_init(&op, rec_cb, &r);
	assert_res(
	    proa_op_recv_select(loop, &op, sv[0], br, PROA_RECV_MULTISHOT), 0);
	assert_res(finish(loop, &op, &r), -ENOBUFS);
	/* Both buffers were filled, with F_MORE; the end took none. */
	assert_int_equal(r.more, 2);
	assert_int_equal(r.n, 3);
	for (i = 0; i < 2; i++) {
		assert_int_equal(r.res[i], 64);
		assert_true(r.flags[i] & PROA_OP_F_BUFFER);
	}
	assert_false(r.flags[2] & PROA_OP_F_BUFFER);
	assert_int_equal(proa_buf_ring_available(br), 0);
	collect(br, &r, 0, dst, sizeof(dst), &got);
	assert_int_equal(got, 128);
	assert_int_equal(proa_buf_ring_available(br), 2);

	/* Resubmitted: the rest, in order; the peer's EOF ends it. */
	r = (struct rec){0};
	assert_res(
	    proa_op_recv_select(loop, &op, sv[0], br, PROA_RECV_MULTISHOT), 0);
	while (got < sizeof(src)) {
		seen = r.n;
		DRIVE(loop, r.n > seen);
		assert_true(r.flags[r.n - 1] & PROA_OP_F_MORE);
		collect(br, &r, seen, dst, sizeof(dst), &got);
	}
	assert_int_equal(got, sizeof(src));
	assert_memory_equal(src, dst, sizeof(src));
	close(sv[1]);
	assert_res(finish(loop, &op, &r), 0);
	assert_int_equal(proa_buf_ring_available(br) +
			     ((r.flags[r.n - 1] & PROA_OP_F_BUFFER) ? 1u : 0u),
			 2);
	assert_res(proa_buf_ring_free(br), 0);
	close(sv[0]);
	proa_test_loop_close(loop);
	assert_int_equal(proa_test_fds(), before);
	(void)state;
}

static void test_buf_ring_free_refused_while_in_flight(void **state)
{
	int before = proa_test_fds();
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_buf_ring *br = NULL;
	struct proa_op op;
	struct rec r = {0};
	int sv[2];

	if (!need(loop, PROA_FEAT_BUF_RING, __func__)) {
		proa_test_loop_close(loop);
		return;
	}
	stream_pair(sv);
	assert_res(proa_buf_ring_new(&br, loop, 8, 64), 0);
	proa_op_init(&op, rec_cb, &r);
	assert_res(proa_op_recv_select(loop, &op, sv[0], br, 0), 0);
	/* Before the kernel saw it, and after. */
	assert_res(proa_buf_ring_free(br), -EBUSY);
	assert_int_equal(proa_loop_run(loop, PROA_RUN_NOWAIT), 1);
	assert_res(proa_buf_ring_free(br), -EBUSY);
	assert_res(proa_op_cancel(&op), 0);
	assert_res(proa_buf_ring_free(br), -EBUSY);
	assert_res(finish(loop, &op, &r), -ECANCELED);
	assert_res(proa_buf_ring_free(br), 0);

	/* A ring freed with data completed in it, then a new one: the group
	 * id is reused and works. */
	assert_res(proa_buf_ring_new(&br, loop, 2, 64), 0);
	r = (struct rec){0};
	assert_int_equal(write(sv[1], "z", 1), 1);
	assert_res(proa_op_recv_select(loop, &op, sv[0], br, 0), 0);
	assert_res(proa_buf_ring_free(br), -EBUSY);
	assert_int_equal(finish(loop, &op, &r), 1);
	assert_true(r.flags[0] & PROA_OP_F_BUFFER);
	assert_memory_equal(proa_buf_ring_buf(br, proa_op_buffer_id(&op)), "z",
			    1);
	/* A buffer still held does not keep the ring. */
	assert_res(proa_buf_ring_free(br), 0);
	close(sv[0]);
	close(sv[1]);
	proa_test_loop_close(loop);
	assert_int_equal(proa_test_fds(), before);
	(void)state;
}

static void test_buf_ring_left_allocated_is_freed_by_loop(void **state)
{
	int before = proa_test_fds();
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_buf_ring *a = NULL, *b = NULL;
	struct proa_op op;
	struct rec r = {0};
	int sv[2];

	if (!need(loop, PROA_FEAT_BUF_RING, __func__)) {
		proa_test_loop_close(loop);
		return;
	}
	stream_pair(sv);
	assert_res(proa_buf_ring_new(&a, loop, 16, 4096), 0);
	assert_res(proa_buf_ring_new(&b, loop, 1, 64), 0);
	/* Use one, keeping its buffer. */
	assert_int_equal(write(sv[1], "kept", 4), 4);
	proa_op_init(&op, rec_cb, &r);
	assert_res(proa_op_recv_select(loop, &op, sv[0], b, 0), 0);
	assert_int_equal(finish(loop, &op, &r), 4);
	assert_int_equal(proa_buf_ring_available(b), 0);
	close(sv[0]);
	close(sv[1]);
	/* Neither is freed here: the loop does it (ASan checks). */
	proa_test_loop_close(loop);
	assert_int_equal(proa_test_fds(), before);
	(void)state;
}

/* ---- recvmsg_select --------------------------------------------------------
 */

static void check_datagram(struct proa_buf_ring *br, const struct msghdr *m,
			   const struct rec *r, unsigned i, in_port_t port,
			   const void *want, size_t truelen, size_t room)
{
	struct proa_recvmsg_out out;
	const struct sockaddr_in *sin;
	unsigned id = r->flags[i] >> 16;
	size_t present = truelen < room ? truelen : room;

	assert_true(r->flags[i] & PROA_OP_F_MORE);
	assert_true(r->flags[i] & PROA_OP_F_BUFFER);
	assert_true(r->res[i] > 0);
	assert_res(proa_recvmsg_parse(m, proa_buf_ring_buf(br, id),
				      (size_t)r->res[i], &out),
		   0);
	assert_non_null(out.name);
	assert_int_equal(out.namelen, sizeof(struct sockaddr_in));
	sin = (const struct sockaddr_in *)out.name;
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(sin->sin_port, port);
	assert_int_equal(sin->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
	assert_int_equal(out.payloadlen, present);
	assert_memory_equal(out.payload, want, present);
	if (truelen > room) {
		if (out.truelen != truelen)
			print_error("datagram of %zu bytes cut to %zu: truelen "
				    "is %zu, flags %#x\n",
				    truelen, present, out.truelen,
				    (unsigned)out.flags);
		assert_true(out.flags & MSG_TRUNC);
		assert_true(out.payloadlen < out.truelen);
		assert_int_equal(out.truelen, truelen);
	} else {
		assert_false(out.flags & MSG_TRUNC);
		assert_int_equal(out.truelen, truelen);
	}
	assert_res(proa_buf_ring_put(br, id), 0);
}

static void test_recvmsg_select_udp_name_payload_trunc(void **state)
{
	int before = proa_test_fds();
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_buf_ring *br = NULL;
	struct proa_op op;
	struct rec r = {0};
	struct sockaddr_in rsa, ssa;
	struct msghdr m;
	unsigned char big[300];
	size_t room;
	int rfd, sfd;

	if (!need(loop, PROA_FEAT_BUF_RING, __func__) ||
	    !need(loop, PROA_FEAT_RECV_MULTISHOT, __func__)) {
		proa_test_loop_close(loop);
		return;
	}
	rfd = bound_socket(SOCK_DGRAM, &rsa);
	sfd = bound_socket(SOCK_DGRAM, &ssa);
	assert_res(proa_buf_ring_new(&br, loop, 4, 128), 0);
	memset(&m, 0, sizeof(m));
	m.msg_namelen = sizeof(struct sockaddr_in);
	/* What a buffer has left for the payload after the kernel's header
	 * (io_uring_recvmsg_out, 16 bytes) and the address room. */
	room = proa_buf_ring_bufsize(br) - 16 - sizeof(struct sockaddr_in);
	proa_op_init(&op, rec_cb, &r);
	assert_res(proa_op_recvmsg_select(loop, &op, rfd, &m, br), 0);
	assert_int_equal(proa_loop_run(loop, PROA_RUN_NOWAIT), 1);
	assert_int_equal(r.n, 0);

	assert_int_equal(
	    sendto(sfd, "first", 5, 0, (struct sockaddr *)&rsa, sizeof(rsa)),
	    5);
	assert_int_equal(
	    sendto(sfd, "second!", 7, 0, (struct sockaddr *)&rsa, sizeof(rsa)),
	    7);
	DRIVE(loop, r.n >= 2);
	assert_int_equal(proa_buf_ring_available(br), 2);
	check_datagram(br, &m, &r, 0, ssa.sin_port, "first", 5, room);
	check_datagram(br, &m, &r, 1, ssa.sin_port, "second!", 7, room);
	assert_int_equal(proa_buf_ring_available(br), 4);

	/* Bigger than the buffer: cut, and said so. */
	fill_pattern(big, sizeof(big), 9);
	assert_int_equal(sendto(sfd, big, sizeof(big), 0,
				(struct sockaddr *)&rsa, sizeof(rsa)),
			 (ssize_t)sizeof(big));
	DRIVE(loop, r.n >= 3);
	check_datagram(br, &m, &r, 2, ssa.sin_port, big, sizeof(big), room);
	/* And the next one is whole again. */
	assert_int_equal(
	    sendto(sfd, "after", 5, 0, (struct sockaddr *)&rsa, sizeof(rsa)),
	    5);
	DRIVE(loop, r.n >= 4);
	check_datagram(br, &m, &r, 3, ssa.sin_port, "after", 5, room);

	assert_res(proa_buf_ring_free(br), -EBUSY);
	assert_res(proa_op_cancel(&op), 0);
	assert_res(finish(loop, &op, &r), -ECANCELED);
	assert_int_equal(r.more, 4);
	assert_int_equal(proa_buf_ring_available(br), 4);
	assert_res(proa_buf_ring_free(br), 0);
	close(rfd);
	close(sfd);
	proa_test_loop_close(loop);
	assert_int_equal(proa_test_fds(), before);
	(void)state;
}

/* ---- sendmsg, recvmsg, shutdown ---------------------------------------------
 */

static void test_sendmsg_gathers_recvmsg_scatters(void **state)
{
	int before = proa_test_fds();
	struct proa_loop *loop = proa_test_loop_new();
	struct iovec wv[3] = {
	    {(void *)"one-", 4}, {(void *)"two-", 4}, {(void *)"three", 5}};
	char a[4], b[16], buf[32];
	struct iovec rv[2] = {{a, sizeof(a)}, {b, sizeof(b)}};
	struct msghdr msg;
	struct rec r;
	int sv[2];

	stream_pair(sv);
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = wv;
	msg.msg_iovlen = 3;
	assert_int_equal(
	    SYNC(loop, &r, proa_op_sendmsg(loop, &op_, sv[0], &msg, 0)), 13);
	assert_int_equal(read(sv[1], buf, sizeof(buf)), 13);
	assert_memory_equal(buf, "one-two-three", 13);

	assert_int_equal(write(sv[1], "0123456789", 10), 10);
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = rv;
	msg.msg_iovlen = 2;
	assert_int_equal(
	    SYNC(loop, &r, proa_op_recvmsg(loop, &op_, sv[0], &msg, 0)), 10);
	assert_memory_equal(a, "0123", 4);
	assert_memory_equal(b, "456789", 6);
	assert_false(msg.msg_flags & MSG_TRUNC);

	/* No iovecs: nothing moves, and that is not an error. */
	memset(&msg, 0, sizeof(msg));
	assert_res(SYNC(loop, &r, proa_op_sendmsg(loop, &op_, sv[0], &msg, 0)),
		   0);
	close(sv[0]);
	close(sv[1]);
	proa_test_loop_close(loop);
	assert_int_equal(proa_test_fds(), before);
	(void)state;
}

static void test_shutdown_wr_peer_reads_eof(void **state)
{
	int before = proa_test_fds();
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_op rop;
	struct rec r, pr = {0};
	char buf[16];
	int sv[2];

	stream_pair(sv);
	/* The peer waits in a recv; the shutdown wakes it with EOF after the
	 * data already sent. */
	assert_int_equal(write(sv[0], "last", 4), 4);
	assert_int_equal(read(sv[1], buf, 4), 4);
	proa_op_init(&rop, rec_cb, &pr);
	assert_res(proa_op_recv(loop, &rop, sv[1], buf, sizeof(buf), 0), 0);
	assert_int_equal(proa_loop_run(loop, PROA_RUN_NOWAIT), 1);
	assert_int_equal(pr.n, 0);
	assert_res(SYNC(loop, &r, proa_op_shutdown(loop, &op_, sv[0], SHUT_WR)),
		   0);
	assert_res(finish(loop, &rop, &pr), 0);
	/* Only one way: the other direction still works. */
	assert_int_equal(write(sv[1], "back", 4), 4);
	assert_int_equal(
	    SYNC(loop, &r,
		 proa_op_recv(loop, &op_, sv[0], buf, sizeof(buf), 0)),
	    4);
	assert_memory_equal(buf, "back", 4);
	/* And writing on the shut side fails (no SIGPIPE: MSG_NOSIGNAL). */
	assert_res(SYNC(loop, &r, proa_op_send(loop, &op_, sv[0], "x", 1, 0)),
		   -EPIPE);
	close(sv[0]);
	close(sv[1]);
	proa_test_loop_close(loop);
	assert_int_equal(proa_test_fds(), before);
	(void)state;
}

/* ---- zero-copy send ---------------------------------------------------- */

/*
 * The zero-copy contract's record: the callback frees the buffer at the
 * notification, and not before (ASan sees a kernel read of freed memory
 * only through the peer's bytes, which are checked).  The op stays busy
 * between the two callbacks.
 */
struct zc_rec {
	struct rec r;
	unsigned char *buf;
	bool busy_after_first; /* the op was not idle in the first call */
};

static void zc_cb(struct proa_op *op)
{
	struct zc_rec *z = op->data;

	rec_cb(op);
	if (op->flags & PROA_OP_F_MORE)
		z->busy_after_first = !proa_op_is_idle(op);
	if (op->flags & PROA_OP_F_NOTIF) {
		free(z->buf);
		z->buf = NULL;
	}
}

static void test_sendmsg_zc_notifies_before_the_buffer_is_freed(void **state)
{
	int before = proa_test_fds();
	struct proa_loop *loop = proa_test_loop_new();
	const size_t len = (size_t)256 * 1024;
	unsigned char *want = malloc(len), *got = malloc(len);
	struct zc_rec z = {0};
	struct sockaddr_in sa;
	struct iovec iov[2];
	struct msghdr msg;
	struct proa_op op;
	size_t have = 0;
	ssize_t n;
	int lfd, cfd, afd;

	assert_non_null(want);
	assert_non_null(got);
	lfd = tcp_listener(&sa);
	cfd = tcp_connect(&sa);
	afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(afd >= 0);
	z.buf = malloc(len);
	assert_non_null(z.buf);
	fill_pattern(want, len, 5);
	memcpy(z.buf, want, len);
	memset(&msg, 0, sizeof(msg));
	iov[0] = (struct iovec){z.buf, len / 2};
	iov[1] = (struct iovec){z.buf + len / 2, len - len / 2};
	msg.msg_iov = iov;
	msg.msg_iovlen = 2;
	proa_op_init(&op, zc_cb, &z);
	if (!proa_loop_feature(loop, PROA_FEAT_OP_SENDMSG_ZC)) {
		/* The epoll backend, or an old kernel: refused at once. */
		assert_res(proa_op_sendmsg_zc(loop, &op, cfd, &msg, 0),
			   -EOPNOTSUPP);
		assert_true(proa_op_is_idle(&op));
		free(z.buf);
		goto out;
	}
	assert_res(proa_op_sendmsg_zc(loop, &op, cfd, &msg, 0), 0);
	/* The iovecs are the caller's again after the first callback. */
	DRIVE(loop, z.r.n >= 1);
	assert_true(z.r.flags[0] & PROA_OP_F_MORE);
	assert_false(z.r.flags[0] & PROA_OP_F_NOTIF);
	assert_true(z.r.res[0] > 0 && (size_t)z.r.res[0] <= len);
	memset(iov, 0, sizeof(iov));
	/* The peer reads while the notification may still be owed: the
	 * kernel still has the bytes, and they arrive intact. */
	while (have < (size_t)z.r.res[0]) {
		n = recv(afd, got + have, (size_t)z.r.res[0] - have,
			 MSG_DONTWAIT);
		if (n < 0) {
			assert_int_equal(errno, EAGAIN);
			assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
			continue;
		}
		assert_true(n > 0);
		have += (size_t)n;
	}
	assert_memory_equal(got, want, have);
	proa_test_drive_op(loop, &op, MAX_ITER);
	/* Exactly two calls: the send, then the notification, last. */
	assert_int_equal(z.r.n, 2);
	assert_int_equal(z.r.final, 1);
	assert_true(z.r.flags[1] & PROA_OP_F_NOTIF);
	assert_false(z.r.flags[1] & PROA_OP_F_MORE);
	assert_int_equal(z.r.res[1], 0);
	assert_null(z.buf); /* freed in the notification's callback */
	/* Loopback hands the receiver a copy: the kernel says so where it
	 * can (this is why net/ stops zero-copy on such a connection). */
	if (proa_loop_feature(loop, PROA_FEAT_SEND_ZC_REPORT))
		assert_true(z.r.flags[1] & PROA_OP_F_ZC_COPIED);
	assert_true(z.busy_after_first);
out:
	close(afd);
	close(cfd);
	close(lfd);
	free(want);
	free(got);
	proa_test_loop_close(loop);
	assert_int_equal(proa_test_fds(), before);
	(void)state;
}

static void test_sendmsg_zc_refusals(void **state)
{
	int before = proa_test_fds();
	struct proa_loop *loop;
	struct iovec iov = {(void *)"unix", 4};
	struct msghdr msg;
	struct proa_op op;
	struct rec r = {0};
	unsigned runs = 0;
	int sv[2];

	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	stream_pair(sv);
	/* Hidden by the probe: refused before anything is queued. */
	proa__ring_faults.hide_features = 1ull << PROA_FEAT_OP_SENDMSG_ZC;
	loop = proa_test_loop_new();
	proa__ring_faults.hide_features = 0;
	assert_false(proa_loop_feature(loop, PROA_FEAT_OP_SENDMSG_ZC));
	proa_op_init(&op, never_cb, &runs);
	assert_res(proa_op_sendmsg_zc(loop, &op, sv[0], &msg, 0), -EOPNOTSUPP);
	assert_true(proa_op_is_idle(&op));
	assert_res(proa_loop_run(loop, PROA_RUN_NOWAIT), 0);
	assert_int_equal(runs, 0);
	proa_test_loop_close(loop);

	loop = proa_test_loop_new();
	if (proa_loop_feature(loop, PROA_FEAT_OP_SENDMSG_ZC)) {
		assert_res(proa_op_sendmsg_zc(loop, &op, -1, &msg, 0), -EBADF);
		assert_res(proa_op_sendmsg_zc(loop, &op, sv[0], NULL, 0),
			   -EINVAL);
		assert_int_equal(runs, 0);
		/* A UNIX socket cannot: the send fails, and the bytes were
		 * not sent.  The kernel may still owe a notification (this
		 * one does): then it comes, last. */
		SYNC(loop, &r, proa_op_sendmsg_zc(loop, &op_, sv[0], &msg, 0));
		assert_res(r.res[0], -EOPNOTSUPP);
		assert_int_equal(r.n, r.flags[0] & PROA_OP_F_MORE ? 2 : 1);
		if (r.n == 2)
			assert_true(r.flags[1] & PROA_OP_F_NOTIF);
		assert_int_equal(recv(sv[1], &runs, sizeof(runs), MSG_DONTWAIT),
				 -1);
		assert_int_equal(errno, EAGAIN);
	}
	close(sv[0]);
	close(sv[1]);
	proa_test_loop_close(loop);
	assert_int_equal(proa_test_fds(), before);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bad_input_is_refused_before_queueing),
	    cmocka_unit_test(test_accept_single_shot_with_address),
	    cmocka_unit_test(test_accept_multishot_until_cancel),
	    cmocka_unit_test(test_accept_multishot_hidden_is_eopnotsupp),
	    cmocka_unit_test(test_connect_listening_and_refused),
	    cmocka_unit_test(test_send_recv_over_socketpair),
	    cmocka_unit_test(test_send_to_closed_peer_is_epipe_without_sigpipe),
	    cmocka_unit_test(test_recv_select_single_shot),
	    cmocka_unit_test(test_recv_select_multishot),
	    cmocka_unit_test(test_recv_select_exhaustion_enobufs_loses_nothing),
	    cmocka_unit_test(test_buf_ring_free_refused_while_in_flight),
	    cmocka_unit_test(test_buf_ring_left_allocated_is_freed_by_loop),
	    cmocka_unit_test(test_recvmsg_select_udp_name_payload_trunc),
	    cmocka_unit_test(test_sendmsg_gathers_recvmsg_scatters),
	    cmocka_unit_test(test_shutdown_wr_peer_reads_eof),
	    cmocka_unit_test(
		test_sendmsg_zc_notifies_before_the_buffer_is_freed),
	    cmocka_unit_test(test_sendmsg_zc_refusals),
	};

	proa_test_require_uring();
	return cmocka_run_group_tests_name("net.sockops", tests, NULL, NULL);
}
