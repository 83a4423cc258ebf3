/* SPDX-License-Identifier: MIT */
/*
 * tests/kernel/net/test_udp.c - UDP endpoints on loopback with real
 * sockets: bind to port 0 and getsockname, 64 KiB-class datagrams
 * byte-exact, 1,000 small datagrams counted and in order, echo to the
 * sender's address, connected endpoints (EISCONN, EDESTADDRREQ), size and
 * queue limits, ICMP port unreachable as error_received(-ECONNREFUSED),
 * close with operations in flight, close from a callback, and winding down
 * with proa_loop_cancel_all().
 *
 * Every case runs twice: in group "udp.multishot" with the loop's probed
 * features (multishot recvmsg into a buffer ring where the kernel has it),
 * and in group "udp.single" with PROA_FEAT_RECV_MULTISHOT hidden, which
 * forces the single-shot recvmsg path.  The loop is driven one iteration
 * at a time with an iteration bound, never with sleeps; the senders wait
 * for echoes in bounded windows so that nothing can be dropped.
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

#include "proa_test.h"
#include "ring/ring_int.h"

#define MAX_ITER 2000000u

/* Iterate until @expr holds (proa_test.h). */
#define DRIVE(loop, expr) PROA_TEST_DRIVE(loop, expr, MAX_ITER)

/* The features hidden for loops of the group that runs (see main). */
static uint64_t g_hide;

static struct proa_loop *new_loop(void)
{
	struct proa_loop *loop;

	proa__ring_faults.hide_features = g_hide;
	loop = proa_test_loop_new();
	proa__ring_faults.hide_features = 0;
	if (g_hide & (1ull << PROA_FEAT_RECV_MULTISHOT))
		assert_false(proa_loop_feature(loop, PROA_FEAT_RECV_MULTISHOT));
	return loop;
}

static uint8_t pat(size_t i, unsigned seed)
{
	return (uint8_t)(i * 131u + (i >> 11) + (size_t)seed * 7u);
}

/* ---- a configurable endpoint --------------------------------------------
 */

enum {
	E_ECHO = 1 << 0,     /* send each datagram back to its sender */
	E_SEQ = 1 << 1,	     /* datagrams start with a u32 sequence number */
	E_KEEP = 1 << 2,     /* keep a copy of the last datagram */
	E_CLOSE_RX = 1 << 3, /* close the endpoint from datagram_received */
};

struct ep {
	struct proa_datagram_protocol p;
	struct proa_udp *u;
	unsigned made;
	unsigned flags;
	unsigned rx;
	size_t rx_bytes;
	uint32_t next_seq;
	unsigned bad_seq;
	unsigned errors;
	int last_err;
	unsigned closed;
	int lost_err;
	bool in_close; /* inside proa_udp_close() */
	bool closed_early;
	unsigned char *last;
	size_t last_len;
	struct sockaddr_storage last_from;
	socklen_t last_fromlen;
	/* Set: error_received sends the u32 @err_seq (then increments it)
	 * there, from inside the callback. */
	const struct sockaddr_storage *err_to;
	socklen_t err_tolen;
	uint32_t err_seq;
};

static struct ep *ep_of(struct proa_datagram_protocol *p)
{
	return proa_container_of(p, struct ep, p);
}

static void on_made(struct proa_datagram_protocol *p, struct proa_udp *u)
{
	struct ep *e = ep_of(p);

	assert_ptr_equal(u, e->u);
	assert_int_equal(e->closed, 0);
	e->made++;
	assert_int_equal(e->made, 1);
}

static void on_dgram(struct proa_datagram_protocol *p, const void *data,
		     size_t len, const struct sockaddr *from, socklen_t fromlen)
{
	struct ep *e = ep_of(p);
	struct proa_udp *u = e->u;

	assert_int_equal(e->made, 1); /* connection_made came first */
	e->rx++;
	e->rx_bytes += len;
	if (e->flags & E_SEQ) {
		uint32_t seq;

		assert_true(len >= sizeof(seq));
		memcpy(&seq, data, sizeof(seq));
		if (seq != e->next_seq)
			e->bad_seq++;
		e->next_seq = seq + 1;
	}
	if (e->flags & E_KEEP) {
		free(e->last);
		e->last = malloc(len ? len : 1);
		assert_non_null(e->last);
		memcpy(e->last, data, len);
		e->last_len = len;
	}
	assert_non_null(from);
	assert_true(fromlen <= sizeof(e->last_from));
	memcpy(&e->last_from, from, fromlen);
	e->last_fromlen = fromlen;
	if (e->flags & E_ECHO)
		assert_res(proa_udp_sendto(u, data, len, from, fromlen), 0);
	if (e->flags & E_CLOSE_RX) {
		e->in_close = true;
		assert_res(proa_udp_close(u), 0);
		e->in_close = false;
	}
}

static void on_error(struct proa_datagram_protocol *p, int err)
{
	struct ep *e = ep_of(p);
	struct proa_udp *u = e->u;

	assert_int_equal(e->made, 1);
	e->errors++;
	e->last_err = err;
	if (e->err_to) {
		assert_res(proa_udp_sendto(u, &e->err_seq, sizeof(e->err_seq),
					   (const struct sockaddr *)e->err_to,
					   e->err_tolen),
			   0);
		e->err_seq++;
	}
}

static void on_closed(struct proa_datagram_protocol *p, int err)
{
	struct ep *e = ep_of(p);

	assert_int_equal(e->made, 1); /* connection_made came first */
	if (e->in_close)
		e->closed_early = true;
	e->closed++;
	e->lost_err = err;
}

static const struct proa_datagram_protocol_ops ep_ops = {
    .connection_made = on_made,
    .datagram_received = on_dgram,
    .error_received = on_error,
    .connection_lost = on_closed,
};

/* @e's protocol, ready to pass to proa_udp_bind. */
static struct proa_datagram_protocol *ep_p(struct ep *e)
{
	e->p.ops = &ep_ops;
	return &e->p;
}

static void sa_local(struct sockaddr_storage *ss, socklen_t *len, int family,
		     uint16_t port)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		*len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		sin6->sin6_addr = in6addr_loopback;
		*len = sizeof(*sin6);
	}
}

static uint16_t sa_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

/* Bind @e on the loopback of @family, port 0, with @opt; returns the
 * error of proa_udp_bind. */
static int ep_bind_opt(struct proa_loop *loop, struct ep *e, int family,
		       unsigned flags, const struct proa_udp_options *opt)
{
	struct sockaddr_storage ss;
	socklen_t len;

	memset(e, 0, sizeof(*e));
	e->flags = flags;
	sa_local(&ss, &len, family, 0);
	return proa_udp_bind(&e->u, loop, (struct sockaddr *)&ss, len, opt,
			     ep_p(e));
}

static void ep_bind(struct proa_loop *loop, struct ep *e, int family,
		    unsigned flags)
{
	assert_res(ep_bind_opt(loop, e, family, flags, NULL), 0);
	assert_non_null(e->u);
}

/* Where @e can be reached: its bound address. */
static void ep_addr(struct ep *e, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	assert_res(proa_udp_sockname(e->u, ss, len), 0);
	assert_int_not_equal(sa_port(ss), 0);
}

static void ep_close(struct proa_loop *loop, struct ep *e)
{
	e->in_close = true;
	assert_res(proa_udp_close(e->u), 0);
	e->in_close = false;
	assert_int_equal(e->closed, 0); /* never inside close */
	DRIVE(loop, e->closed > 0);
	assert_int_equal(e->closed, 1);
	assert_int_equal(e->lost_err, 0);
	assert_false(e->closed_early);
	free(e->last);
	e->last = NULL;
}

/* ---- cases ----------------------------------------------------------------
 */

static void test_udp_bind_port0_sockname_reports_port(void **state)
{
	static const int fams[] = {AF_INET, AF_INET6};
	struct proa_loop *loop = new_loop();
	int fds = proa_test_fds();
	unsigned k;

	(void)state;
	for (k = 0; k < 2; k++) {
		struct sockaddr_storage ss, fd_ss;
		socklen_t len = 0;
		socklen_t fd_len = sizeof(fd_ss);
		struct ep e;
		int fd;

		if (fams[k] == AF_INET6 && !proa_test_have_ipv6()) {
			fprintf(stderr, "no IPv6 loopback: ::1 not tested\n");
			continue;
		}
		ep_bind(loop, &e, fams[k], 0);
		memset(&ss, 0, sizeof(ss));
		assert_res(proa_udp_sockname(e.u, &ss, &len), 0);
		assert_int_equal(ss.ss_family, fams[k]);
		assert_int_equal(len, fams[k] == AF_INET
					  ? sizeof(struct sockaddr_in)
					  : sizeof(struct sockaddr_in6));
		assert_int_not_equal(sa_port(&ss), 0);
		/* The port is the socket's: getsockname on the fd agrees. */
		fd = proa_udp_fd(e.u);
		assert_true(fd >= 0);
		memset(&fd_ss, 0, sizeof(fd_ss));
		assert_int_equal(
		    getsockname(fd, (struct sockaddr *)&fd_ss, &fd_len), 0);
		assert_int_equal(sa_port(&fd_ss), sa_port(&ss));
		assert_int_equal(proa_udp_queued(e.u), 0);
		ep_close(loop, &e);
	}
	assert_int_equal(proa_test_fds(), fds);
	proa_test_loop_close(loop);
}

static void test_udp_bad_arguments_return_einval(void **state)
{
	struct proa_loop *loop = new_loop();
	static const struct proa_datagram_protocol_ops no_rx_ops = {
	    .connection_lost = on_closed};
	struct proa_datagram_protocol no_rx = {.ops = &no_rx_ops};
	struct proa_datagram_protocol no_ops = {.ops = NULL};
	struct sockaddr_storage ss, busy;
	struct sockaddr_in6 short6;
	socklen_t len, blen;
	struct proa_udp *u = NULL;
	int fds = proa_test_fds();
	struct ep e, other;
	int ret;

	(void)state;
	sa_local(&ss, &len, AF_INET, 0);
	memset(&e, 0, sizeof(e));
	assert_res(proa_udp_bind(&u, NULL, (struct sockaddr *)&ss, len, NULL,
				 ep_p(&e)),
		   -EINVAL);
	assert_res(
	    proa_udp_bind(&u, loop, (struct sockaddr *)&ss, len, NULL, NULL),
	    -EINVAL);
	assert_res(
	    proa_udp_bind(&u, loop, (struct sockaddr *)&ss, len, NULL, &no_ops),
	    -EINVAL);
	assert_res(
	    proa_udp_bind(&u, loop, (struct sockaddr *)&ss, len, NULL, &no_rx),
	    -EINVAL);
	assert_res(proa_udp_bind(NULL, loop, (struct sockaddr *)&ss, len, NULL,
				 ep_p(&e)),
		   -EINVAL);
	/* Neither a local nor a remote address. */
	assert_res(proa_udp_bind(&u, loop, NULL, 0, NULL, ep_p(&e)), -EINVAL);
	/* A sockaddr too short for its family. */
	memset(&short6, 0, sizeof(short6));
	short6.sin6_family = AF_INET6;
	assert_res(proa_udp_bind(&u, loop, (struct sockaddr *)&short6,
				 sizeof(struct sockaddr_in), NULL, ep_p(&e)),
		   -EINVAL);
	assert_null(u);
	assert_res(proa_udp_sendto(NULL, "x", 1, NULL, 0), -EINVAL);
	assert_res(proa_udp_sockname(NULL, &ss, &len), -EINVAL);
	assert_res(proa_udp_fd(NULL), -EINVAL);
	assert_int_equal(proa_udp_queued(NULL), 0);
	assert_res(proa_udp_close(NULL), -EINVAL);

	/* A setup error (the port is taken) is returned and leaves no
	 * descriptor open. */
	ep_bind(loop, &other, AF_INET, 0);
	ep_addr(&other, &busy, &blen);
	memset(&e, 0, sizeof(e));
	ret = proa_udp_bind(&e.u, loop, (struct sockaddr *)&busy, blen, NULL,
			    ep_p(&e));
	assert_res(ret, -EADDRINUSE);
	assert_null(e.u);
	assert_res(proa_udp_sendto(other.u, NULL, 1, NULL, 0), -EINVAL);
	ep_close(loop, &other);
	assert_int_equal(proa_test_fds(), fds);
	proa_test_loop_close(loop);
}

/* Send @len bytes (pattern @seed) from @c to @s and wait for the echo. */
static void echo_one(struct proa_loop *loop, struct ep *c, struct ep *s,
		     const struct sockaddr_storage *to, socklen_t tolen,
		     unsigned char *buf, size_t len, unsigned seed)
{
	unsigned want = c->rx + 1;
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = pat(i, seed);
	assert_res(
	    proa_udp_sendto(c->u, buf, len, (const struct sockaddr *)to, tolen),
	    0);
	DRIVE(loop, c->rx == want);
	assert_int_equal(c->last_len, len);
	assert_memory_equal(c->last, buf, len);
	(void)s;
}

static void large_datagrams(int family, size_t max)
{
	struct proa_loop *loop = new_loop();
	struct sockaddr_storage sa;
	socklen_t slen;
	unsigned char *buf = malloc(max);
	struct ep s, c;

	assert_non_null(buf);
	ep_bind(loop, &s, family, E_ECHO | E_KEEP);
	ep_bind(loop, &c, family, E_KEEP);
	ep_addr(&s, &sa, &slen);
	/* The largest, some sizes around 64 KiB, and the smallest. */
	echo_one(loop, &c, &s, &sa, slen, buf, max, 1);
	echo_one(loop, &c, &s, &sa, slen, buf, max - 1, 2);
	echo_one(loop, &c, &s, &sa, slen, buf, 65000, 3);
	echo_one(loop, &c, &s, &sa, slen, buf, 1, 4);
	echo_one(loop, &c, &s, &sa, slen, buf, 0, 5);
	echo_one(loop, &c, &s, &sa, slen, buf, max, 6);
	assert_int_equal(s.rx, 6);
	assert_memory_equal(s.last, buf, max);
	assert_int_equal(s.errors, 0);
	assert_int_equal(c.errors, 0);
	/* One byte more than the protocol carries is refused at once. */
	assert_res(
	    proa_udp_sendto(c.u, buf, max + 1, (struct sockaddr *)&sa, slen),
	    -EMSGSIZE);
	ep_close(loop, &c);
	ep_close(loop, &s);
	free(buf);
	proa_test_loop_close(loop);
}

static void test_udp_large_datagrams_arrive_whole(void **state)
{
	(void)state;
	large_datagrams(AF_INET, 65507);
	if (proa_test_have_ipv6())
		large_datagrams(AF_INET6, 65527);
}

/* 1000 small datagrams, in windows of 50 that wait for their echoes. */
static void test_udp_thousand_small_in_order(void **state)
{
	struct proa_loop *loop = new_loop();
	struct sockaddr_storage sa;
	socklen_t slen;
	struct ep s, c;
	uint32_t seq = 0;
	unsigned char buf[64];

	(void)state;
	ep_bind(loop, &s, AF_INET, E_ECHO | E_SEQ);
	ep_bind(loop, &c, AF_INET, E_SEQ);
	ep_addr(&s, &sa, &slen);
	memset(buf, 0xab, sizeof(buf));
	while (seq < 1000) {
		unsigned i;

		for (i = 0; i < 50; i++, seq++) {
			memcpy(buf, &seq, sizeof(seq));
			assert_res(proa_udp_sendto(c.u, buf, 16 + seq % 48,
						   (struct sockaddr *)&sa,
						   slen),
				   0);
		}
		DRIVE(loop, c.rx == seq);
	}
	assert_int_equal(s.rx, 1000);
	assert_int_equal(c.rx, 1000);
	assert_int_equal(s.bad_seq, 0);
	assert_int_equal(c.bad_seq, 0);
	assert_int_equal(s.errors + c.errors, 0);
	DRIVE(loop, proa_udp_queued(s.u) == 0 && proa_udp_queued(c.u) == 0);
	ep_close(loop, &c);
	ep_close(loop, &s);
	proa_test_loop_close(loop);
}

/*
 * A burst that waits in the socket before the loop runs: more datagrams
 * than the endpoint's ring has buffers (multishot ends with -ENOBUFS and
 * is re-armed) or than one single-shot receive takes.  A plain socket
 * sends them, all before the first iteration; the receive buffer holds
 * them all, so none can be dropped.
 */
static void test_udp_burst_larger_than_ring_arrives_in_order(void **state)
{
	struct proa_loop *loop = new_loop();
	struct proa_udp_options opt;
	struct sockaddr_storage sa;
	socklen_t slen;
	unsigned char buf[32];
	uint32_t seq;
	struct ep s;
	int fd;

	(void)state;
	memset(&opt, 0, sizeof(opt));
	opt.rcvbuf = 1 << 20;
	assert_res(ep_bind_opt(loop, &s, AF_INET, E_SEQ, &opt), 0);
	ep_addr(&s, &sa, &slen);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	memset(buf, 0x5a, sizeof(buf));
	for (seq = 0; seq < 200; seq++) {
		memcpy(buf, &seq, sizeof(seq));
		assert_int_equal(sendto(fd, buf, sizeof(buf), 0,
					(struct sockaddr *)&sa, slen),
				 (ssize_t)sizeof(buf));
	}
	DRIVE(loop, s.rx == 200);
	assert_int_equal(s.bad_seq, 0);
	assert_int_equal(s.errors, 0);
	/* And it still receives afterwards. */
	assert_int_equal(sendto(fd, buf, 4, 0, (struct sockaddr *)&sa, slen),
			 4);
	DRIVE(loop, s.rx == 201);
	close(fd);
	ep_close(loop, &s);
	proa_test_loop_close(loop);
}

/* The server answers to the address the datagram came from. */
static void test_udp_echo_reaches_sender_address(void **state)
{
	struct proa_loop *loop = new_loop();
	struct sockaddr_storage sa, ca;
	socklen_t slen, clen;
	struct ep s, c;

	(void)state;
	ep_bind(loop, &s, AF_INET, E_ECHO | E_KEEP);
	ep_bind(loop, &c, AF_INET, E_KEEP);
	ep_addr(&s, &sa, &slen);
	ep_addr(&c, &ca, &clen);
	assert_res(
	    proa_udp_sendto(c.u, "hello", 5, (struct sockaddr *)&sa, slen), 0);
	DRIVE(loop, c.rx == 1);
	assert_int_equal(c.last_len, 5);
	assert_memory_equal(c.last, "hello", 5);
	/* The server saw the client's address, and the answer came from
	 * the server's. */
	assert_int_equal(s.last_fromlen, clen);
	assert_int_equal(sa_port(&s.last_from), sa_port(&ca));
	assert_int_equal(c.last_fromlen, slen);
	assert_int_equal(sa_port(&c.last_from), sa_port(&sa));
	ep_close(loop, &c);
	ep_close(loop, &s);
	proa_test_loop_close(loop);
}

static void test_udp_connected_endpoint_sends_without_address(void **state)
{
	struct proa_loop *loop = new_loop();
	struct proa_udp_options opt;
	struct sockaddr_storage sa, ca;
	socklen_t slen, clen;
	struct ep s, c;

	(void)state;
	ep_bind(loop, &s, AF_INET, E_ECHO | E_KEEP);
	ep_addr(&s, &sa, &slen);
	/* No local address: the kernel binds it on connect. */
	memset(&opt, 0, sizeof(opt));
	opt.remote = (struct sockaddr *)&sa;
	opt.remote_len = slen;
	memset(&c, 0, sizeof(c));
	c.flags = E_KEEP;
	assert_res(proa_udp_bind(&c.u, loop, NULL, 0, &opt, ep_p(&c)), 0);
	ep_addr(&c, &ca, &clen);
	assert_res(proa_udp_sendto(c.u, "ping", 4, NULL, 0), 0);
	DRIVE(loop, c.rx == 1);
	assert_memory_equal(c.last, "ping", 4);
	assert_int_equal(sa_port(&s.last_from), sa_port(&ca));
	/* An address on a connected endpoint is refused. */
	assert_res(proa_udp_sendto(c.u, "x", 1, (struct sockaddr *)&sa, slen),
		   -EISCONN);
	/* No address on an unconnected one, too. */
	assert_res(proa_udp_sendto(s.u, "x", 1, NULL, 0), -EDESTADDRREQ);
	ep_close(loop, &c);
	ep_close(loop, &s);
	proa_test_loop_close(loop);
}

static void test_udp_oversize_returns_emsgsize(void **state)
{
	struct proa_loop *loop = new_loop();
	struct sockaddr_storage sa;
	socklen_t slen;
	static unsigned char big[70000];
	struct ep s;

	(void)state;
	ep_bind(loop, &s, AF_INET, 0);
	ep_addr(&s, &sa, &slen);
	assert_res(proa_udp_sendto(s.u, big, sizeof(big),
				   (struct sockaddr *)&sa, slen),
		   -EMSGSIZE);
	assert_int_equal(proa_udp_queued(s.u), 0);
	ep_close(loop, &s);
	assert_int_equal(s.rx, 0);
	proa_test_loop_close(loop);
}

static void test_udp_max_queued_returns_eagain(void **state)
{
	struct proa_loop *loop = new_loop();
	struct proa_udp_options opt;
	struct sockaddr_storage sa;
	socklen_t slen;
	unsigned char buf[600];
	struct ep s, c;

	(void)state;
	memset(buf, 1, sizeof(buf));
	ep_bind(loop, &s, AF_INET, 0);
	ep_addr(&s, &sa, &slen);
	memset(&opt, 0, sizeof(opt));
	opt.max_queued = 1000;
	assert_res(ep_bind_opt(loop, &c, AF_INET, 0, &opt), 0);
	assert_res(proa_udp_sendto(c.u, buf, 600, (struct sockaddr *)&sa, slen),
		   0);
	assert_int_equal(proa_udp_queued(c.u), 600);
	assert_res(proa_udp_sendto(c.u, buf, 600, (struct sockaddr *)&sa, slen),
		   -EAGAIN);
	assert_res(proa_udp_sendto(c.u, buf, 400, (struct sockaddr *)&sa, slen),
		   0);
	assert_int_equal(proa_udp_queued(c.u), 1000);
	assert_res(proa_udp_sendto(c.u, buf, 1, (struct sockaddr *)&sa, slen),
		   -EAGAIN);
	/* Once they have left, there is room again. */
	DRIVE(loop, proa_udp_queued(c.u) == 0 && s.rx == 2);
	assert_int_equal(s.rx_bytes, 1000);
	assert_res(proa_udp_sendto(c.u, buf, 600, (struct sockaddr *)&sa, slen),
		   0);
	DRIVE(loop, s.rx == 3);
	ep_close(loop, &c);
	ep_close(loop, &s);
	proa_test_loop_close(loop);
}

/* A send the kernel refuses is reported; the queue goes on in order, also
 * with a datagram sent from inside error_received (it goes last). */
static void test_udp_failed_send_reports_and_continues(void **state)
{
	struct proa_loop *loop = new_loop();
	struct sockaddr_storage sa;
	struct sockaddr_in6 v6;
	socklen_t slen;
	uint32_t seq;
	struct ep s, c;

	(void)state;
	ep_bind(loop, &s, AF_INET, E_SEQ);
	ep_bind(loop, &c, AF_INET, 0);
	ep_addr(&s, &sa, &slen);
	/* An IPv6 destination on an IPv4 socket: -EAFNOSUPPORT. */
	memset(&v6, 0, sizeof(v6));
	v6.sin6_family = AF_INET6;
	v6.sin6_port = htons(9);
	v6.sin6_addr = in6addr_loopback;
	seq = 0;
	assert_res(proa_udp_sendto(c.u, &seq, sizeof(seq),
				   (struct sockaddr *)&sa, slen),
		   0);
	assert_res(
	    proa_udp_sendto(c.u, "bad", 3, (struct sockaddr *)&v6, sizeof(v6)),
	    0);
	seq = 1;
	assert_res(proa_udp_sendto(c.u, &seq, sizeof(seq),
				   (struct sockaddr *)&sa, slen),
		   0);
	c.err_to = &sa;
	c.err_tolen = slen;
	c.err_seq = 2;
	DRIVE(loop, s.rx == 3 && c.errors == 1);
	assert_res(c.last_err, -EAFNOSUPPORT);
	assert_int_equal(s.bad_seq, 0);
	assert_int_equal(proa_udp_queued(c.u), 0);
	ep_close(loop, &c);
	ep_close(loop, &s);
	proa_test_loop_close(loop);
}

/* A port that nobody listens on: bound, read, closed. */
static void closed_port(struct sockaddr_storage *ss, socklen_t *len)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	sa_local(ss, len, AF_INET, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)ss, *len), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)ss, len), 0);
	close(fd);
}

static void test_udp_icmp_unreachable_reports_econnrefused(void **state)
{
	struct proa_loop *loop = new_loop();
	struct proa_udp_options opt;
	struct sockaddr_storage dead, local;
	socklen_t dlen, llen;
	unsigned i;
	struct ep c;

	(void)state;
	closed_port(&dead, &dlen);
	sa_local(&local, &llen, AF_INET, 0);
	memset(&opt, 0, sizeof(opt));
	opt.remote = (struct sockaddr *)&dead;
	opt.remote_len = dlen;
	memset(&c, 0, sizeof(c));
	assert_res(proa_udp_bind(&c.u, loop, (struct sockaddr *)&local, llen,
				 &opt, ep_p(&c)),
		   0);
	/* The ICMP error reaches the armed receive (or the next send): send
	 * again whenever the last one has left, until it is reported. */
	for (i = 0; i < 100000 && c.errors == 0; i++) {
		if (proa_udp_queued(c.u) == 0)
			assert_res(proa_udp_sendto(c.u, "?", 1, NULL, 0), 0);
		assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
	}
	assert_true(c.errors > 0);
	assert_res(c.last_err, -ECONNREFUSED);
	/* Receiving goes on after it: the endpoint still works. */
	assert_int_equal(c.closed, 0);
	ep_close(loop, &c);
	assert_int_equal(c.rx, 0);
	proa_test_loop_close(loop);
}

/* Close with a receive and a send in flight and datagrams queued. */
static void test_udp_close_inflight_calls_closed_once(void **state)
{
	struct proa_loop *loop = new_loop();
	struct sockaddr_storage sa;
	socklen_t slen;
	unsigned char buf[1000];
	int fds = proa_test_fds();
	struct ep s, c;
	unsigned i;

	(void)state;
	memset(buf, 7, sizeof(buf));
	ep_bind(loop, &s, AF_INET, 0);
	ep_bind(loop, &c, AF_INET, 0);
	ep_addr(&s, &sa, &slen);
	/* Let both receives reach the kernel. */
	assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	/* More than the sends that may be in flight at once (64): the rest
	 * waits in the queue. */
	for (i = 0; i < 100; i++)
		assert_res(proa_udp_sendto(c.u, buf, sizeof(buf),
					   (struct sockaddr *)&sa, slen),
			   0);
	assert_int_equal(proa_udp_queued(c.u), 100 * sizeof(buf));
	c.in_close = true;
	assert_res(proa_udp_close(c.u), 0);
	c.in_close = false;
	assert_res(proa_udp_close(c.u), -EALREADY);
	assert_res(proa_udp_sendto(c.u, buf, 1, (struct sockaddr *)&sa, slen),
		   -EPIPE);
	assert_int_equal(c.closed, 0);
	/* What waited in the queue was dropped at once; what is in flight
	 * stays until its completion. */
	assert_int_equal(proa_udp_queued(c.u), 64 * sizeof(buf));
	DRIVE(loop, c.closed > 0);
	assert_int_equal(c.closed, 1);
	assert_false(c.closed_early);
	assert_true(s.rx <= 64);
	/* A few more iterations: closed() is not called again. */
	for (i = 0; i < 3; i++)
		assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	assert_int_equal(c.closed, 1);

	/* And the server, receive only. */
	ep_close(loop, &s);
	assert_int_equal(proa_test_fds(), fds);
	proa_test_loop_close(loop);
}

/* proa_udp_close() from datagram_received: closed() still comes later. */
static void test_udp_close_from_callback(void **state)
{
	struct proa_loop *loop = new_loop();
	struct sockaddr_storage sa;
	socklen_t slen;
	int fds = proa_test_fds();
	struct ep s, c;
	unsigned i;

	(void)state;
	ep_bind(loop, &s, AF_INET, E_CLOSE_RX);
	ep_bind(loop, &c, AF_INET, 0);
	ep_addr(&s, &sa, &slen);
	for (i = 0; i < 5; i++)
		assert_res(proa_udp_sendto(c.u, "abc", 3,
					   (struct sockaddr *)&sa, slen),
			   0);
	DRIVE(loop, s.closed > 0);
	/* Nothing is delivered once it is closing. */
	assert_int_equal(s.rx, 1);
	assert_int_equal(s.closed, 1);
	assert_false(s.closed_early);
	ep_close(loop, &c);
	assert_int_equal(proa_test_fds(), fds);
	proa_test_loop_close(loop);
}

/* proa_loop_cancel_all() winds open endpoints down: they close. */
static void test_udp_cancel_all_closes_endpoints(void **state)
{
	struct proa_loop *loop = new_loop();
	int fds = proa_test_fds();
	struct ep s;

	(void)state;
	ep_bind(loop, &s, AF_INET, 0);
	assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	assert_true(proa_loop_cancel_all(loop) >= 1);
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	assert_int_equal(s.closed, 1);
	assert_res(s.lost_err, -ECANCELED);
	assert_int_equal(proa_test_fds(), fds);
	proa_test_loop_close(loop);
}

/*
 * connection_made is the first callback and connection_lost the last,
 * whatever happens before the loop runs: a datagram sent to an endpoint
 * (and from one) before either has been told, an endpoint closed before
 * it was told.  The protocol callbacks assert the order (on_made,
 * on_dgram, on_closed).
 */
static void test_udp_made_first_lost_last(void **state)
{
	struct proa_loop *loop = new_loop();
	struct sockaddr_storage sa;
	socklen_t slen;
	int fds = proa_test_fds();
	struct ep s, c, x;

	(void)state;
	ep_bind(loop, &s, AF_INET, E_KEEP);
	ep_bind(loop, &c, AF_INET, 0);
	ep_bind(loop, &x, AF_INET, 0);
	assert_int_equal(s.made + c.made + x.made, 0); /* never inside bind */
	ep_addr(&s, &sa, &slen);
	assert_res(
	    proa_udp_sendto(c.u, "early", 5, (struct sockaddr *)&sa, slen), 0);
	x.in_close = true;
	assert_res(proa_udp_close(x.u), 0);
	x.in_close = false;
	assert_int_equal(x.made + x.closed, 0);
	DRIVE(loop, s.rx == 1 && x.closed == 1);
	assert_memory_equal(s.last, "early", 5);
	assert_int_equal(s.made, 1);
	assert_int_equal(c.made, 1);
	assert_int_equal(x.made, 1);
	assert_res(x.lost_err, 0);
	assert_false(x.closed_early);
	ep_close(loop, &c);
	ep_close(loop, &s);
	assert_int_equal(proa_test_fds(), fds);
	proa_test_loop_close(loop);
}

/* SO_REUSEPORT: two endpoints share a port; options reach the socket. */
static void test_udp_options_apply(void **state)
{
	struct proa_loop *loop = new_loop();
	struct proa_udp_options opt;
	struct sockaddr_storage sa;
	socklen_t slen;
	struct ep a, b;
	int val;
	socklen_t vlen = sizeof(val);

	(void)state;
	memset(&opt, 0, sizeof(opt));
	opt.reuse_addr = true;
	opt.reuse_port = true;
	opt.broadcast = true;
	opt.rcvbuf = 65536;
	assert_res(ep_bind_opt(loop, &a, AF_INET, 0, &opt), 0);
	ep_addr(&a, &sa, &slen);
	memset(&b, 0, sizeof(b));
	assert_res(proa_udp_bind(&b.u, loop, (struct sockaddr *)&sa, slen, &opt,
				 ep_p(&b)),
		   0);
	assert_int_equal(
	    getsockopt(proa_udp_fd(a.u), SOL_SOCKET, SO_BROADCAST, &val, &vlen),
	    0);
	assert_int_equal(val, 1);
	ep_close(loop, &b);
	ep_close(loop, &a);
	proa_test_loop_close(loop);
}

static int group_multishot(void **state)
{
	(void)state;
	g_hide = 0;
	return 0;
}

static int group_single(void **state)
{
	(void)state;
	g_hide = 1ull << PROA_FEAT_RECV_MULTISHOT;
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_udp_bind_port0_sockname_reports_port),
	    cmocka_unit_test(test_udp_bad_arguments_return_einval),
	    cmocka_unit_test(test_udp_large_datagrams_arrive_whole),
	    cmocka_unit_test(test_udp_thousand_small_in_order),
	    cmocka_unit_test(test_udp_burst_larger_than_ring_arrives_in_order),
	    cmocka_unit_test(test_udp_echo_reaches_sender_address),
	    cmocka_unit_test(test_udp_connected_endpoint_sends_without_address),
	    cmocka_unit_test(test_udp_oversize_returns_emsgsize),
	    cmocka_unit_test(test_udp_max_queued_returns_eagain),
	    cmocka_unit_test(test_udp_failed_send_reports_and_continues),
	    cmocka_unit_test(test_udp_icmp_unreachable_reports_econnrefused),
	    cmocka_unit_test(test_udp_close_inflight_calls_closed_once),
	    cmocka_unit_test(test_udp_close_from_callback),
	    cmocka_unit_test(test_udp_cancel_all_closes_endpoints),
	    cmocka_unit_test(test_udp_made_first_lost_last),
	    cmocka_unit_test(test_udp_options_apply),
	};
	int failed;

	proa_test_require_uring();
	{
		struct proa_loop *loop = proa_test_loop_new();

		fprintf(
		    stderr, "RECV_MULTISHOT: %s, BUF_RING: %s\n",
		    proa_loop_feature(loop, PROA_FEAT_RECV_MULTISHOT) ? "yes"
								      : "no",
		    proa_loop_feature(loop, PROA_FEAT_BUF_RING) ? "yes" : "no");
		proa_test_loop_close(loop);
	}
	failed = cmocka_run_group_tests_name("udp.multishot", tests,
					     group_multishot, NULL);
	failed += cmocka_run_group_tests_name("udp.single", tests, group_single,
					      NULL);
	return failed ? 1 : 0;
}
