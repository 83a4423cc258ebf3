/* SPDX-License-Identifier: MIT */
/*
 * perf/echo/uring_echo.c - echo-uring: the raw liburing floor.
 *
 * The tightest io_uring echo server we can write by hand, so that the echo
 * table shows proa against what io_uring itself costs on this kernel, not
 * only against readiness loops.  One thread, one ring:
 *
 * - the ring is set up with SINGLE_ISSUER | DEFER_TASKRUN where the kernel
 *   has them (6.1), else COOP_TASKRUN | TASKRUN_FLAG (5.19), else plain:
 *   each is tried in turn (a runtime probe: the constants are defined here
 *   when liburing's headers are older than the kernel);
 * - one multishot accept, re-armed if the kernel ends it;
 * - receive, chosen with --variant:
 *     pbuf4k, pbuf16k, pbuf64k  one multishot recv per connection on a
 *                               provided-buffer ring of 4/16/64 KiB
 *                               buffers (16 MiB in all); the echo is sent
 *                               straight from the ring buffer, which goes
 *                               back to the ring once sent;
 *     recv                      one plain recv at a time into the
 *                               connection's own 64 KiB buffer, the next
 *                               one once the echo is sent;
 * - sends: at most one in flight per connection (so bytes never reorder);
 *   what arrives meanwhile is queued and leaves in one sendmsg of up to 16
 *   segments; a short send re-sends the rest;
 * - a multishot recv that ends with -ENOBUFS (every buffer is queued for
 *   sending) is re-armed once buffers come back; one that ends for another
 *   reason without an error is re-armed at once;
 * - a connection closes on EOF or an error: shutdown() so that its pending
 *   operations complete, then close() and free once none is left;
 * - io_uring_submit_and_wait() once per iteration: every SQE prepared while
 *   handling the previous batch of completions goes in with the wait.
 *
 * Who calls what: everything runs on the one thread, from main()'s loop.
 *
 * SIGINT/SIGTERM arrive through a signalfd read on the ring and end the
 * loop with status 0.
 */
#include <errno.h>
#include <liburing.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "echo_common.h"

/* Older liburing headers lack the newer setup flags: same values as 6.1. */
#ifndef IORING_SETUP_COOP_TASKRUN
#define IORING_SETUP_COOP_TASKRUN (1U << 8)
#endif
#ifndef IORING_SETUP_TASKRUN_FLAG
#define IORING_SETUP_TASKRUN_FLAG (1U << 9)
#endif
#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif

#define RING_ENTRIES 4096
#define CQ_ENTRIES 32768
#define PBUF_GROUP 1
#define RECV_BUF                                                               \
	((size_t)64 * 1024) /* the recv variant's per-connection buffer */
#define MAX_IOV 16

enum tag { TAG_ACCEPT, TAG_RECV, TAG_SEND, TAG_SIGNAL };

/* Bytes waiting to be sent: part of a ring buffer (bid >= 0) or of the
 * connection's own buffer (bid < 0). */
struct seg {
	char *p;
	uint32_t len;
	int bid;
};

struct conn {
	int fd;
	int recv_armed; /* a recv (multishot or not) is in flight */
	int send_armed; /* a send is in flight */
	int closing;
	int starved; /* on the starved list: re-arm once buffers return */
	struct conn *next_starved;
	/* FIFO of segments: q[head .. head+n) modulo cap. */
	struct seg *q;
	unsigned int head, n, cap;
	unsigned int in_send; /* segments the send in flight covers */
	struct iovec iov[MAX_IOV];
	struct msghdr msg;
	char *own; /* recv variant: the connection's buffer */
};

static struct io_uring ring;
static struct io_uring_buf_ring *br;
static char *pbufs;
static unsigned int pbuf_total = 16u << 20; /* bytes in the buffer ring */
static unsigned int pbuf_size, pbuf_count, pbuf_mask;
static unsigned int recycled; /* buffers added since the last advance */
static unsigned int held;     /* ring buffers held in send queues */
static int use_pbuf;
static struct conn *starved_head;
static int lfd;
static struct signalfd_siginfo siginfo;

static uint64_t ud(void *p, enum tag t)
{
	return (uint64_t)(uintptr_t)p | (uint64_t)t;
}

static struct io_uring_sqe *sqe_get(void)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

	if (!sqe) {
		io_uring_submit(&ring);
		sqe = io_uring_get_sqe(&ring);
	}
	if (!sqe) {
		fprintf(stderr, "echo-uring: no SQE after a submit\n");
		exit(1);
	}
	return sqe;
}

/* Tries the setup flags from the best to none; returns the flags used. */
static unsigned int ring_setup(void)
{
	static const unsigned int tries[] = {
	    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
	    IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
	    0,
	};

	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		struct io_uring_params p = {0};
		int ret;

		p.flags = tries[i] | IORING_SETUP_CQSIZE;
		p.cq_entries = CQ_ENTRIES;
		ret = io_uring_queue_init_params(RING_ENTRIES, &ring, &p);
		if (ret == 0)
			return tries[i];
		if (ret != -EINVAL) {
			fprintf(stderr, "echo-uring: io_uring_queue_init: %s\n",
				strerror(-ret));
			exit(1);
		}
	}
	fprintf(stderr, "echo-uring: io_uring_queue_init: EINVAL\n");
	exit(1);
}

/*
 * The provided-buffer ring: liburing 2.3 has no io_uring_setup_buf_ring(),
 * so map and register it by hand.  0, or -errno (the kernel lacks buffer
 * rings: 5.19).
 */
static int pbuf_setup(unsigned int size)
{
	struct io_uring_buf_reg reg = {0};
	size_t ring_bytes;
	int ret;

	pbuf_size = size;
	pbuf_count = pbuf_total / size;
	pbuf_mask = (unsigned int)io_uring_buf_ring_mask(pbuf_count);
	ring_bytes = pbuf_count * sizeof(struct io_uring_buf);
	br = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE,
		  MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	pbufs = mmap(NULL, pbuf_total, PROT_READ | PROT_WRITE,
		     MAP_ANONYMOUS | MAP_PRIVATE | MAP_POPULATE, -1, 0);
	if (br == MAP_FAILED || pbufs == MAP_FAILED)
		return -ENOMEM;
	reg.ring_addr = (uint64_t)(uintptr_t)br;
	reg.ring_entries = pbuf_count;
	reg.bgid = PBUF_GROUP;
	ret = io_uring_register_buf_ring(&ring, &reg, 0);
	if (ret)
		return ret;
	io_uring_buf_ring_init(br);
	for (unsigned int i = 0; i < pbuf_count; i++)
		io_uring_buf_ring_add(br, pbufs + (size_t)i * size, size,
				      (unsigned short)i, (int)pbuf_mask,
				      (int)i);
	io_uring_buf_ring_advance(br, (int)pbuf_count);
	return 0;
}

static void pbuf_give_back(int bid)
{
	io_uring_buf_ring_add(br, pbufs + (size_t)bid * pbuf_size, pbuf_size,
			      (unsigned short)bid, (int)pbuf_mask,
			      (int)recycled);
	recycled++;
	held--;
}

static void arm_accept(void)
{
	struct io_uring_sqe *sqe = sqe_get();

	io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, ud(NULL, TAG_ACCEPT));
}

static void arm_recv(struct conn *c)
{
	struct io_uring_sqe *sqe = sqe_get();

	if (use_pbuf) {
		io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
		sqe->flags |= IOSQE_BUFFER_SELECT;
		sqe->buf_group = PBUF_GROUP;
	} else {
		io_uring_prep_recv(sqe, c->fd, c->own, RECV_BUF, 0);
	}
	io_uring_sqe_set_data64(sqe, ud(c, TAG_RECV));
	c->recv_armed = 1;
}

/* One send (or sendmsg) of the first MAX_IOV queued segments. */
static void arm_send(struct conn *c)
{
	struct io_uring_sqe *sqe = sqe_get();
	unsigned int k = c->n < MAX_IOV ? c->n : MAX_IOV;

	if (k == 1) {
		struct seg *s = &c->q[c->head];

		io_uring_prep_send(sqe, c->fd, s->p, s->len, MSG_NOSIGNAL);
	} else {
		for (unsigned int i = 0; i < k; i++) {
			struct seg *s = &c->q[(c->head + i) % c->cap];

			c->iov[i].iov_base = s->p;
			c->iov[i].iov_len = s->len;
		}
		memset(&c->msg, 0, sizeof(c->msg));
		c->msg.msg_iov = c->iov;
		c->msg.msg_iovlen = k;
		io_uring_prep_sendmsg(sqe, c->fd, &c->msg, MSG_NOSIGNAL);
	}
	io_uring_sqe_set_data64(sqe, ud(c, TAG_SEND));
	c->send_armed = 1;
	c->in_send = k;
}

/* @p is sent from (an iovec's base: not const). */
static int enqueue(struct conn *c,
		   char *p, /* NOLINT(readability-non-const-parameter) */
		   uint32_t len, int bid)
{
	if (c->n == c->cap) {
		unsigned int cap = c->cap ? c->cap * 2 : 16;
		struct seg *q = malloc(cap * sizeof(*q));

		if (!q)
			return -1;
		for (unsigned int i = 0; i < c->n; i++)
			q[i] = c->q[(c->head + i) % c->cap];
		free(c->q);
		c->q = q;
		c->cap = cap;
		c->head = 0;
	}
	c->q[(c->head + c->n) % c->cap] = (struct seg){p, len, bid};
	c->n++;
	return 0;
}

static void unstarve(struct conn *c)
{
	struct conn **pp = &starved_head;

	while (*pp != c)
		pp = &(*pp)->next_starved;
	*pp = c->next_starved;
	c->starved = 0;
}

static void conn_close(struct conn *c)
{
	if (!c->closing) {
		c->closing = 1;
		/* Ends the recv and any send still in flight. */
		shutdown(c->fd, SHUT_RDWR);
	}
	if (c->starved)
		unstarve(c);
	if (c->recv_armed || c->send_armed)
		return;
	for (; c->n; c->n--, c->head = (c->head + 1) % c->cap)
		if (c->q[c->head].bid >= 0)
			pbuf_give_back(c->q[c->head].bid);
	close(c->fd);
	free(c->q);
	free(c->own);
	free(c);
}

static void on_accept(struct io_uring_cqe *cqe)
{
	struct conn *c;

	if (!(cqe->flags & IORING_CQE_F_MORE))
		arm_accept();
	if (cqe->res < 0) {
		if (cqe->res != -ECONNABORTED && cqe->res != -EINTR)
			fprintf(stderr, "echo-uring: accept: %s\n",
				strerror(-cqe->res));
		return;
	}
	echo_nodelay(cqe->res);
	c = calloc(1, sizeof(*c));
	if (c && !use_pbuf)
		c->own = malloc(RECV_BUF);
	if (!c || (!use_pbuf && !c->own)) {
		free(c);
		close(cqe->res);
		return;
	}
	c->fd = cqe->res;
	arm_recv(c);
}

static void on_recv(struct conn *c, struct io_uring_cqe *cqe)
{
	int more = use_pbuf && (cqe->flags & IORING_CQE_F_MORE);
	int res = cqe->res;

	if (!more)
		c->recv_armed = 0;
	if (res > 0) {
		char *p = c->own;
		int bid = -1;

		if (use_pbuf) {
			bid = (int)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
			p = pbufs + (size_t)bid * pbuf_size;
			held++;
		}
		if (c->closing || enqueue(c, p, (uint32_t)res, bid) < 0) {
			if (bid >= 0)
				pbuf_give_back(bid);
			conn_close(c);
			return;
		}
		if (!c->send_armed)
			arm_send(c);
		/* A multishot recv that stopped on its own is re-armed; a
		 * plain recv waits until its buffer has been sent. */
		if (use_pbuf && !more && !c->closing)
			arm_recv(c);
		return;
	}
	if (res == -ENOBUFS && !c->closing) {
		c->starved = 1;
		c->next_starved = starved_head;
		starved_head = c;
		return;
	}
	conn_close(c); /* EOF, or an error */
}

static void on_send(struct conn *c, struct io_uring_cqe *cqe)
{
	uint32_t left;

	c->send_armed = 0;
	if (cqe->res < 0 || c->closing) {
		conn_close(c);
		return;
	}
	left = (uint32_t)cqe->res;
	/* Drop what went out; a segment sent in part keeps the rest. */
	while (left) {
		struct seg *s = &c->q[c->head];

		if (left < s->len) {
			s->p += left;
			s->len -= left;
			break;
		}
		left -= s->len;
		if (s->bid >= 0)
			pbuf_give_back(s->bid);
		c->head = (c->head + 1) % c->cap;
		c->n--;
	}
	if (c->n)
		arm_send(c);
	else if (!use_pbuf)
		arm_recv(c);
}

/* Re-arms the connections whose recv ran out of buffers. */
static void rearm_starved(void)
{
	while (starved_head) {
		struct conn *c = starved_head;

		starved_head = c->next_starved;
		c->starved = 0;
		arm_recv(c); /* closing ones left the list */
	}
}

static int signal_fd(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -1;
	return signalfd(-1, &set, SFD_CLOEXEC);
}

/* Strips "NAME V" from argv and returns V, or def (echo_parse_args knows
 * the other options). */
static const char *take_opt(int *argc, char **argv, const char *name,
			    const char *def)
{
	const char *v = def;

	for (int i = 1; i < *argc; i++) {
		if (strcmp(argv[i], name) != 0)
			continue;
		if (i + 1 >= *argc) {
			fprintf(stderr, "echo-uring: %s needs a value\n", name);
			exit(2);
		}
		v = argv[i + 1];
		memmove(&argv[i], &argv[i + 2],
			(size_t)(*argc - i - 1) * sizeof(*argv));
		*argc -= 2;
		break;
	}
	return v;
}

int main(int argc, char **argv)
{
	const char *variant = take_opt(&argc, argv, "--variant", "pbuf16k");
	const char *mib = take_opt(&argc, argv, "--pbuf-mib", "16");
	struct io_uring_sqe *sqe;
	struct echo_args args;
	unsigned int flags;
	unsigned int size = 0;
	int sfd;
	int ret;

	echo_parse_args(&args, argc, argv, "echo-uring",
			"Single-threaded raw liburing TCP echo server (the "
			"floor).\n"
			"  --variant V  pbuf4k, pbuf16k (default), pbuf64k: "
			"multishot recv on a ring of\n"
			"               4/16/64 KiB provided buffers; recv: "
			"plain recv into a\n"
			"               per-connection 64 KiB buffer\n"
			"  --pbuf-mib N provided-buffer ring size (default 16; "
			"small rings run\n"
			"               out of buffers: the -ENOBUFS path)");
	pbuf_total = (unsigned int)atoi(mib) << 20;
	if (!strcmp(variant, "pbuf4k"))
		size = 4096;
	else if (!strcmp(variant, "pbuf16k"))
		size = 16384;
	else if (!strcmp(variant, "pbuf64k"))
		size = 65536;
	else if (strcmp(variant, "recv") != 0) {
		fprintf(stderr,
			"echo-uring: --variant: pbuf4k, pbuf16k, "
			"pbuf64k or recv, not '%s'\n",
			variant);
		return 2;
	}
	if (size && (pbuf_total < size || pbuf_total > (1u << 30))) {
		fprintf(stderr, "echo-uring: --pbuf-mib: 1 to 1024\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	lfd = echo_listen(&args, "echo-uring");
	sfd = signal_fd();
	if (sfd < 0) {
		perror("echo-uring: signalfd");
		return 1;
	}
	flags = ring_setup();
	use_pbuf = size != 0;
	if (use_pbuf) {
		ret = pbuf_setup(size);
		if (ret) {
			fprintf(stderr, "echo-uring: buffer ring: %s\n",
				strerror(-ret));
			return 1;
		}
	}
	fprintf(stderr, "echo-uring: variant %s, setup flags %#x\n", variant,
		flags);

	arm_accept();
	sqe = sqe_get();
	io_uring_prep_read(sqe, sfd, &siginfo, sizeof(siginfo), 0);
	io_uring_sqe_set_data64(sqe, ud(NULL, TAG_SIGNAL));
	echo_announce(lfd, &args);

	for (;;) {
		struct io_uring_cqe *cqe;
		unsigned int head;
		unsigned int seen = 0;
		unsigned int back;

		ret = io_uring_submit_and_wait(&ring, 1);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN &&
		    ret != -EBUSY) {
			fprintf(stderr, "echo-uring: submit_and_wait: %s\n",
				strerror(-ret));
			return 1;
		}
		io_uring_for_each_cqe(&ring, head, cqe)
		{
			uint64_t d = cqe->user_data;
			struct conn *c = (struct conn *)(uintptr_t)(d & ~7ull);

			seen++;
			switch ((enum tag)(d & 7)) {
			case TAG_ACCEPT:
				on_accept(cqe);
				break;
			case TAG_RECV:
				on_recv(c, cqe);
				break;
			case TAG_SEND:
				on_send(c, cqe);
				break;
			case TAG_SIGNAL:
				io_uring_queue_exit(&ring);
				return 0;
			}
		}
		io_uring_cq_advance(&ring, seen);
		back = recycled;
		if (recycled) {
			io_uring_buf_ring_advance(br, (int)recycled);
			recycled = 0;
		}
		/* Buffers came back (or none is held, so the ring is full):
		 * starved receives can go again. */
		if (starved_head && (back || held == 0))
			rearm_starved();
	}
}
