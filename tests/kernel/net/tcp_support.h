/* SPDX-License-Identifier: MIT */
/*
 * tests/kernel/net/tcp_support.h - what the test_tcp_*.c files share:
 * a configurable test protocol (echo, flow control, bytes checked against
 * pat(), a slow consumer) whose factory, a farm, keeps every peer it made;
 * listening, connecting and closing on loopback; a pump that writes pat()
 * and respects pause_writing; a raw peer on a thread; and the release
 * record of write_ref and sendfile.
 *
 * Peers are proa transports where that is enough, and plain blocking
 * sockets on a second thread where the test needs a peer that misbehaves
 * (resets, reads slowly); threads hand over with pthread condition
 * variables, never sleeps.
 *
 * Include after <cmocka.h>.  The functions are static inline, so a file
 * that uses some of them builds without unused-function warnings.
 */
#ifndef TCP_SUPPORT_H
#define TCP_SUPPORT_H

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
	size_t max_len;	   /* the biggest data_received */
	unsigned lost_seq; /* ++order_seq at connection_lost */
	/* runs first in connection_lost, while pe->t is still valid */
	void (*on_lost)(struct peer *pe);
	struct proa_handle resume_h;
	struct peer *next; /* every peer a factory made */
};

/* Orders events across callbacks: connection_lost, write_ref releases. */
static unsigned order_seq;

static inline struct peer *peer_of(struct proa_protocol *p)
{
	return proa_container_of(p, struct peer, p);
}

static inline void p_made(struct proa_protocol *p, struct proa_transport *t)
{
	struct peer *pe = peer_of(p);

	pe->made = true;
	pe->t = t;
	pe->fd = proa_transport_fd(t);
}

static inline void p_resume(void *arg)
{
	struct peer *pe = arg;

	if (pe->lost || !pe->reading_paused)
		return;
	pe->reading_paused = false;
	assert_res(proa_transport_resume_reading(pe->t), 0);
}

static inline void p_data(struct proa_protocol *p, const void *data, size_t len)
{
	struct peer *pe = peer_of(p);
	const uint8_t *b = data;
	size_t i;

	assert_true(len > 0);
	pe->data_calls++;
	if (len > pe->max_len)
		pe->max_len = len;
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

static inline bool p_eof(struct proa_protocol *p)
{
	struct peer *pe = peer_of(p);

	pe->eof = true;
	return pe->flags & P_KEEP_ON_EOF;
}

static inline void p_lost(struct proa_protocol *p, int err)
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

static inline void p_pause_w(struct proa_protocol *p)
{
	struct peer *pe = peer_of(p);

	pe->pauses++;
	pe->wpaused = true;
	pe->buf_at_pause = proa_transport_write_buffer_size(pe->t);
	if (pe->flags & P_FLOW)
		assert_res(proa_transport_pause_reading(pe->t), 0);
}

static inline void p_resume_w(struct proa_protocol *p)
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

static inline struct proa_protocol *farm_make(void *arg,
					      struct proa_transport *t)
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

static inline void farm_free(struct farm *f)
{
	struct peer *pe;

	while ((pe = f->peers) != NULL) {
		f->peers = pe->next;
		free(pe);
	}
}

static inline unsigned farm_lost(const struct farm *f)
{
	const struct peer *pe;
	unsigned n = 0;

	for (pe = f->peers; pe; pe = pe->next)
		n += pe->lost;
	return n;
}

/* ---- helpers ------------------------------------------------------------ */

static inline struct proa_server *
listen_local(struct proa_loop *loop, const struct proa_server_options *opt,
	     struct farm *f)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	struct proa_server *s = NULL;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_res(proa_tcp_listen_addr(&s, loop, (struct sockaddr *)&a,
					sizeof(a), opt, farm_make, f),
		   0);
	assert_non_null(s);
	assert_true(proa_server_port(s) != 0);
	return s;
}

/* Connect a proa client to @host:@port and wait for it. */
static inline struct peer *connect_host(struct proa_loop *loop,
					const char *host, uint16_t port,
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
static inline struct peer *connect_local(struct proa_loop *loop, uint16_t port,
					 const struct proa_connect_options *opt,
					 struct farm *f)
{
	return connect_host(loop, "127.0.0.1", port, opt, f);
}

static inline void close_server(struct proa_loop *loop, struct proa_server *s)
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

static inline void pump_more(struct pump *pu)
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

/* Drive until @pe has @n bytes, writing @pu meanwhile. */
static inline void pump_until(struct proa_loop *loop, struct pump *pu,
			      struct peer *pe, uint64_t n)
{
	while (pe->rx < n) {
		pump_more(pu);
		assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
		assert_false(pe->lost);
	}
}

/* Every buffer of both receive classes is in its ring: nothing still
 * held by a delivery or a write, and nothing lost. */
static inline void assert_all_back(struct proa_loop *loop)
{
	struct proa__netloop *nl = proa__netloop_peek(loop);

	assert_non_null(nl);
	if (nl->br)
		assert_int_equal(proa_buf_ring_available(nl->br),
				 proa_buf_ring_nbufs(nl->br));
	if (nl->big)
		assert_int_equal(proa_buf_ring_available(nl->big),
				 proa_buf_ring_nbufs(nl->big));
}

/* A server and one client connected to it, on @loop. */
struct pair {
	struct proa_loop *loop;
	struct farm sf, cf;
	struct proa_server *s;
	struct peer *c, *sv;
	struct proa__netloop *nl;
};

static inline void pair_open(struct pair *p, struct proa_loop *loop,
			     unsigned sflags, unsigned cflags)
{
	*p = (struct pair){
	    .loop = loop, .sf = {.flags = sflags}, .cf = {.flags = cflags}};
	p->s = listen_local(loop, NULL, &p->sf);
	p->c = connect_local(loop, proa_server_port(p->s), NULL, &p->cf);
	DRIVE(loop, p->sf.peers && p->sf.peers->made);
	p->sv = p->sf.peers;
	p->nl = proa__netloop_peek(loop);
}

/* The server gone, the loop closed, the peers freed (both ends lost). */
static inline void pair_free(struct pair *p)
{
	close_server(p->loop, p->s);
	proa_test_loop_close(p->loop);
	farm_free(&p->sf);
	farm_free(&p->cf);
}

#define setup proa_test_fds_setup
#define teardown_check proa_test_fds_check

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

static inline void raw_wait_step(struct raw *r, int step)
{
	pthread_mutex_lock(&r->mu);
	while (r->step < step)
		pthread_cond_wait(&r->cv, &r->mu);
	pthread_mutex_unlock(&r->mu);
}

static inline void raw_set_step(struct raw *r, int step)
{
	pthread_mutex_lock(&r->mu);
	r->step = step;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

/* @rcvbuf > 0: SO_RCVBUF, set before connecting (shrinking a window
 * afterwards can stall the peer on zero-window probes). */
static inline int raw_connect_buf(uint16_t port, int rcvbuf)
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

static inline int raw_connect(uint16_t port)
{
	return raw_connect_buf(port, 0);
}

/* Connect, wait for step 1, then reset the connection (SO_LINGER 0). */
static inline void *raw_reset_main(void *arg)
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

/* Read nothing until step 1, then everything until EOF. */
static inline void *raw_slow_main(void *arg)
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

static inline void wref_release(void *arg)
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
		assert_true(proa_op_is_idle(&proa__sock_of(r->t)->wop));
		r->wbuf_at_release = proa_transport_write_buffer_size(r->t);
	}
	if (r->rx)
		r->rx_at_release = r->rx->rx;
	for (i = 0; i < r->len; i++)
		r->buf[i] = (uint8_t)~pat(r->base + i);
}

static inline uint8_t *pat_buf(uint64_t base, size_t len)
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
static inline void write_pat(struct proa_transport *t, uint64_t base,
			     size_t len)
{
	static uint8_t buf[1 << 18];
	size_t i;

	assert_true(len <= sizeof(buf));
	for (i = 0; i < len; i++)
		buf[i] = pat(base + i);
	assert_res(proa_transport_write(t, buf, len), 0);
	memset(buf, 0, len);
}

#endif /* TCP_SUPPORT_H */
