/* SPDX-License-Identifier: MIT */
/*
 * net/netloop.c - what every socket of a loop shares: one provided-buffer
 * ring to receive into (so that an idle connection holds no read buffer),
 * a cache of write chunks (no allocation per write in a steady state), and
 * a loop hook that, once per iteration, encrypts what TLS transports
 * gathered, hands every transport's gathered writes to the kernel and
 * re-arms receives that found the ring empty.
 * Also the address helpers of net/.
 *
 * Thread: loop, everything.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/un.h>
#include <unistd.h>

#include "net_int.h"

#define DEFAULT_NBUFS 512
#define DEFAULT_BUFSIZE 16384
/*
 * The big class: a connection whose receive fills a whole buffer of the
 * shared ring streams, and moves to buffers of this size, so that a
 * 64 KiB message arrives in one completion rather than four (each one a
 * CQE, a data_received and, for an echo or a proxy, a send).  Its ring
 * has one buffer for every BIG_SHARE of the shared ring's: with the
 * defaults, 256 x 64 KiB, 16 MiB of address space, touched only as
 * streaming connections use it.  An idle connection holds no buffer of
 * either class.  Why that many: 256 connections echoing 64 KiB each have
 * 16 MiB arriving at once; with 64 big buffers the ring ran dry on one
 * message in six and connections went back and forth between the
 * classes (33.2k msgs/s against 41.2k with 256, medians of 3 interleaved
 * rounds; 16 connections did not differ).
 */
#define DEFAULT_BIG_BUFSIZE 65536
#define BIG_SHARE 2
#define BIG_MIN_NBUFS 16

/* The key of net/'s hook on a loop (proa__loop_hook_find()). */
static const char netloop_key;

static void netloop_flush(struct proa__loop_hook *h)
{
	struct proa__netloop *nl =
	    proa_container_of(h, struct proa__netloop, hook);

	if (!proa_list_empty(&nl->starved))
		nl->feed(nl);
	/* First: the records it makes are writes for @dirty. */
	if (!proa_list_empty(&nl->sealing))
		nl->seal(nl);
	if (!proa_list_empty(&nl->dirty))
		nl->flush(nl);
}

/* At proa_loop_close(): no socket op is in flight (the loop checked), so
 * the ring's buffers are ours again. */
static void netloop_close(struct proa__loop_hook *h)
{
	struct proa__netloop *nl =
	    proa_container_of(h, struct proa__netloop, hook);
	struct proa__chunk *c;

	proa__loop_hook_del(h);
	if (nl->br && proa_buf_ring_free(nl->br) < 0)
		proa__log(PROA_LOG_ERROR, "net: buffer ring still in use");
	if (nl->big && proa_buf_ring_free(nl->big) < 0)
		proa__log(PROA_LOG_ERROR, "net: big buffer ring still in use");
	free(nl->refs);
	free(nl->big_refs);
	while ((c = nl->free_chunks) != NULL) {
		nl->free_chunks = c->next;
		free(c);
	}
	while ((c = nl->free_refs) != NULL) {
		nl->free_refs = c->next;
		free(c);
	}
	while (nl->free_pipes) {
		struct proa__pipe *p = nl->free_pipes;

		nl->free_pipes = p->next;
		close(p->rd);
		close(p->wr);
		free(p);
	}
	free(nl);
}

static struct proa__netloop *netloop_new(struct proa_loop *loop)
{
	struct proa__netloop *nl = calloc(1, sizeof(*nl));

	if (!nl)
		return NULL;
	nl->loop = loop;
	nl->nbufs = DEFAULT_NBUFS;
	nl->bufsize = DEFAULT_BUFSIZE;
	nl->big_bufsize = DEFAULT_BIG_BUFSIZE;
	nl->cur_bid = -1;
	proa_list_init(&nl->starved);
	proa_list_init(&nl->dirty);
	proa_list_init(&nl->sealing);
	proa_list_init(&nl->all);
	nl->hook.key = &netloop_key;
	nl->hook.flush = netloop_flush;
	nl->hook.close = netloop_close;
	proa__loop_hook_add(loop, &nl->hook);
	return nl;
}

struct proa__netloop *proa__netloop_peek(struct proa_loop *loop)
{
	struct proa__loop_hook *h = proa__loop_hook_find(loop, &netloop_key);

	return h ? proa_container_of(h, struct proa__netloop, hook) : NULL;
}

struct proa__netloop *proa__netloop_get(struct proa_loop *loop)
{
	struct proa__netloop *nl = proa__netloop_peek(loop);

	if (!nl && !(nl = netloop_new(loop)))
		return NULL;
	if (nl->started)
		return nl;
	/* The first socket fixes the sizes.  Without a ring (an old kernel,
	 * or the epoll backend) every transport reads into its own buffer. */
	if (proa_loop_feature(loop, PROA_FEAT_BUF_RING) &&
	    (nl->refs = calloc(nl->nbufs, sizeof(*nl->refs))) &&
	    proa_buf_ring_new(&nl->br, loop, nl->nbufs, nl->bufsize) == 0)
		nl->multishot =
		    proa_loop_feature(loop, PROA_FEAT_RECV_MULTISHOT);
	if (!nl->br) {
		free(nl->refs);
		nl->refs = NULL;
	}
	nl->started = true;
	return nl;
}

struct proa_buf_ring *proa__netloop_big(struct proa__netloop *nl)
{
	unsigned n = nl->big_nbufs;
	int ret;

	if (nl->big || nl->big_failed)
		return nl->big;
	if (!nl->br || nl->big_bufsize <= nl->bufsize) {
		nl->big_failed = true; /* none, or turned off */
		return NULL;
	}
	if (n == 0)
		n = nl->nbufs / BIG_SHARE < BIG_MIN_NBUFS
			? BIG_MIN_NBUFS
			: nl->nbufs / BIG_SHARE;
	nl->big_refs = calloc(n, sizeof(*nl->big_refs));
	ret = nl->big_refs
		  ? proa_buf_ring_new(&nl->big, nl->loop, n, nl->big_bufsize)
		  : -ENOMEM;
	if (ret < 0) {
		free(nl->big_refs);
		nl->big_refs = NULL;
		/* Registration refused (RLIMIT_MEMLOCK, memory): streaming
		 * connections go on with the shared ring, as before. */
		proa__log(PROA_LOG_DEBUG, "net: no big buffer class: %s",
			  proa_strerror(ret));
		nl->big = NULL;
		nl->big_failed = true;
	}
	return nl->big;
}

void proa__netloop_buf_hold(struct proa__netloop *nl, int32_t bid)
{
	if (bid & PROA__BID_BIG)
		nl->big_refs[bid & ~PROA__BID_BIG]++;
	else
		nl->refs[bid]++;
}

void proa__netloop_buf_put(struct proa__netloop *nl, int32_t bid)
{
	if (bid & PROA__BID_BIG) {
		bid &= ~PROA__BID_BIG;
		if (--nl->big_refs[bid] == 0)
			proa_buf_ring_put(nl->big, (unsigned)bid);
	} else if (--nl->refs[bid] == 0) {
		proa_buf_ring_put(nl->br, (unsigned)bid);
	}
}

/* The netloop of @loop for the setters, which may only run before its
 * first socket fixes the sizes. */
static int netloop_unstarted(struct proa_loop *loop, struct proa__netloop **out)
{
	struct proa__netloop *nl;

	PROA__LOOP_CHECK(loop);
	if (loop->closed)
		return PROA_ECLOSED;
	nl = proa__netloop_peek(loop);
	if (!nl && !(nl = netloop_new(loop)))
		return -ENOMEM;
	if (nl->started)
		return -EBUSY;
	*out = nl;
	return 0;
}

int proa_net_set_buffers(struct proa_loop *loop, unsigned nbufs, size_t bufsize)
{
	struct proa__netloop *nl;
	int ret;

	if (!loop || nbufs == 0 || nbufs > 32768 || (nbufs & (nbufs - 1)) ||
	    bufsize < 64 || bufsize > (1u << 30))
		return -EINVAL;
	ret = netloop_unstarted(loop, &nl);
	if (ret < 0)
		return ret;
	nl->nbufs = nbufs;
	nl->bufsize = bufsize;
	return 0;
}

struct proa__chunk *proa__chunk_get(struct proa__netloop *nl)
{
	struct proa__chunk *c = nl->free_chunks;

	/* One size only: a big write takes several chunks (gathered into one
	 * sendmsg) rather than one odd-sized allocation, which the cache
	 * could not keep and which cost a page fault per page each time
	 * (measured: 10% of the server's CPU echoing 64 KiB messages). */
	if (c) {
		nl->free_chunks = c->next;
		nl->nfree--;
	} else {
		c = malloc(sizeof(*c) + PROA__CHUNK_SIZE);
		if (!c)
			return NULL;
		c->cap = PROA__CHUNK_SIZE;
	}
	c->base = c->data;
	c->bid = -1;
	c->zc_pins = 0;
	c->zc_dropped = false;
	c->fds = NULL;
	c->next = NULL;
	c->head = 0;
	c->tail = 0;
	return c;
}

/* A chunk header (no data) pointing at @len bytes at @p. */
static struct proa__chunk *chunk_ref(struct proa__netloop *nl, const void *p,
				     size_t len)
{
	struct proa__chunk *c = nl->free_refs;

	if (c) {
		nl->free_refs = c->next;
		nl->nfree_refs--;
	} else if (!(c = malloc(sizeof(*c)))) {
		return NULL;
	}
	c->next = NULL;
	c->fds = NULL;
	c->zc_pins = 0;
	c->zc_dropped = false;
	c->base = (unsigned char *)p;
	c->head = 0;
	c->tail = (uint32_t)len;
	c->cap = (uint32_t)len; /* full: later writes never append here */
	c->release = NULL;
	c->release_arg = NULL;
	return c;
}

struct proa__chunk *proa__chunk_lend(struct proa__netloop *nl, int32_t bid,
				     const void *p, size_t len)
{
	struct proa__chunk *c = chunk_ref(nl, p, len);

	if (c)
		c->bid = bid;
	return c;
}

struct proa__chunk *proa__chunk_external(struct proa__netloop *nl,
					 const void *p, size_t len,
					 void (*release)(void *arg), void *arg)
{
	struct proa__chunk *c = chunk_ref(nl, p, len);

	if (c) {
		c->bid = PROA__CHUNK_EXTERNAL;
		c->release = release;
		c->release_arg = arg;
	}
	return c;
}

struct proa__chunk *proa__chunk_file(struct proa__netloop *nl, int fd,
				     uint64_t off, size_t len,
				     void (*release)(void *arg), void *arg)
{
	struct proa__chunk *c = chunk_ref(nl, NULL, len);

	if (c) {
		c->bid = PROA__CHUNK_FILE;
		c->fd = fd;
		c->foff = off;
		c->release = release;
		c->release_arg = arg;
	}
	return c;
}

void proa__fdmsg_free(struct proa__fdmsg *m)
{
	int fd;
	unsigned i;

	if (!m)
		return;
	for (i = 0; i < m->n; i++) {
		memcpy(&fd, CMSG_DATA(m->ctl) + i * sizeof(int), sizeof(fd));
		close(fd);
	}
	free(m);
}

void proa__chunk_unpin(struct proa__netloop *nl, struct proa__chunk *c)
{
	if (--c->zc_pins == 0 && c->zc_dropped) {
		c->zc_dropped = false;
		proa__chunk_put(nl, c);
	}
}

void proa__chunk_put(struct proa__netloop *nl, struct proa__chunk *c)
{
	/* The kernel still sends from it (a zero-copy send): the memory, a
	 * lent ring buffer or the caller's, stays until the notification. */
	if (c->zc_pins > 0) {
		c->zc_dropped = true;
		return;
	}
	proa__fdmsg_free(c->fds);
	c->fds = NULL;
	if (c->bid >= 0 || c->bid == PROA__CHUNK_EXTERNAL ||
	    c->bid == PROA__CHUNK_FILE) {
		if (c->bid >= 0)
			proa__netloop_buf_put(nl, c->bid);
		else
			c->release(c->release_arg);
		if (nl->nfree_refs < PROA__CHUNK_CACHE) {
			c->next = nl->free_refs;
			nl->free_refs = c;
			nl->nfree_refs++;
		} else {
			free(c);
		}
		return;
	}
	/* A bounded cache: a burst of big writes must not pin its memory
	 * for ever. */
	if (nl->nfree < PROA__CHUNK_CACHE) {
		c->next = nl->free_chunks;
		nl->free_chunks = c;
		nl->nfree++;
		return;
	}
	free(c);
}

/*
 * 1 MiB pipes: one file -> pipe -> socket round moves that much, and each
 * splice is a hand-off to io_uring's workers, so a 64 KiB pipe (the
 * default) costs 16 rounds per MiB.  Measured (one sender on CPU 1, 1 MiB
 * cached file over loopback, sender CPU per file): 64 KiB 443 us, 256 KiB
 * 226 us, 1 MiB 200 us; send() from a mapping 333 us.  In proa-httpd
 * (perf/http/run-http, 1 MiB files, 16 connections) 1 MiB pipes took the
 * server from 221 to 122 us per request.  Pipe sizes count against the
 * user's pipe-user-pages-soft (64 MiB, i.e. 64 such pipes in use at once,
 * by default; root is exempt); past it the kernel refuses the resize and
 * the pipe keeps its default size: slower, still correct.
 * Non-blocking both ends: a splice never parks one of the kernel's workers
 * on a full or empty pipe.
 */
struct proa__pipe *proa__pipe_get(struct proa__netloop *nl)
{
	struct proa__pipe *p = nl->free_pipes;
	int fds[2], cap;

	if (p) {
		nl->free_pipes = p->next;
		nl->nfree_pipes--;
		p->next = NULL;
		return p;
	}
	p = malloc(sizeof(*p));
	if (!p) {
		errno = ENOMEM;
		return NULL;
	}
	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) {
		int err = errno;

		free(p);
		errno = err;
		return NULL;
	}
	(void)fcntl(fds[1], F_SETPIPE_SZ, (int)PROA__PIPE_SIZE);
	cap = fcntl(fds[1], F_GETPIPE_SZ);
	*p = (struct proa__pipe){
	    .rd = fds[0], .wr = fds[1], .cap = cap > 0 ? (uint32_t)cap : 4096u};
	return p;
}

/*
 * A pipe goes back to the cache only if it is provably empty: its caller's
 * accounting says so (@clean) and the kernel agrees (FIONREAD).  Bytes
 * left in a reused pipe would be the head of another connection's
 * response (a splice that completed during teardown once did exactly
 * that), so on any doubt the pipe is closed and the next one made anew:
 * a pipe2() is cheap, a leak of one client's data to another is not.
 */
void proa__pipe_put(struct proa__netloop *nl, struct proa__pipe *p, bool clean)
{
	int n = -1;

	if (clean && nl->nfree_pipes < PROA__PIPE_CACHE &&
	    ioctl(p->rd, FIONREAD, &n) == 0 && n == 0) {
		p->next = nl->free_pipes;
		nl->free_pipes = p;
		nl->nfree_pipes++;
		return;
	}
	close(p->rd);
	close(p->wr);
	free(p);
}

/* ---- addresses and socket options --------------------------------------- */

int proa__parse_numeric(const char *host, uint16_t port,
			struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	char buf[INET6_ADDRSTRLEN + 2];
	size_t n;

	memset(ss, 0, sizeof(*ss));
	if (!host)
		return -EINVAL;
	n = strlen(host);
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		if (n - 2 >= sizeof(buf))
			return -EINVAL;
		memcpy(buf, host + 1, n - 2);
		buf[n - 2] = '\0';
		host = buf;
	}
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
		*len = sizeof(*in4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*len = sizeof(*in6);
		return 0;
	}
	return -EINVAL;
}

int proa__unix_addr(const char *path, struct sockaddr_storage *ss,
		    socklen_t *len)
{
	struct sockaddr_un *un = (struct sockaddr_un *)ss;
	size_t n;

	if (!path || !path[0])
		return -EINVAL;
	n = strlen(path);
	/* A path must keep its NUL; an abstract name has none. */
	if (path[0] == '@' ? n > sizeof(un->sun_path)
			   : n >= sizeof(un->sun_path))
		return -ENAMETOOLONG;
	memset(ss, 0, sizeof(*ss));
	un->sun_family = AF_UNIX;
	memcpy(un->sun_path, path, n);
	if (path[0] == '@') {
		un->sun_path[0] = '\0';
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else {
		*len =
		    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	}
	return 0;
}

void proa__sock_tune(int fd, int family,
		     const struct proa_transport_options *opt)
{
	int one = 1;

	if (family == AF_INET || family == AF_INET6) {
		if (!opt || opt->no_delay >= 0)
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
				   sizeof(one));
	}
	if (opt && opt->rcvbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &opt->rcvbuf,
			   sizeof(opt->rcvbuf));
	if (opt && opt->sndbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &opt->sndbuf,
			   sizeof(opt->sndbuf));
}

int proa_net_set_send_zc(struct proa_loop *loop, size_t min_bytes)
{
	struct proa__netloop *nl;

	if (!loop)
		return -EINVAL;
	PROA__LOOP_CHECK(loop);
	if (loop->closed)
		return PROA_ECLOSED;
	if (min_bytes > 0 && !proa_loop_feature(loop, PROA_FEAT_OP_SENDMSG_ZC))
		return -EOPNOTSUPP;
	/* Not proa__netloop_get(): that would fix the buffer sizes. */
	nl = proa__netloop_peek(loop);
	if (!nl && !(nl = netloop_new(loop)))
		return -ENOMEM;
	nl->zc_min = min_bytes;
	return 0;
}

int proa_net_set_stream_buffers(struct proa_loop *loop, unsigned nbufs,
				size_t bufsize)
{
	struct proa__netloop *nl;
	int ret;

	if (!loop || nbufs > 32768 || (nbufs & (nbufs - 1)) ||
	    (nbufs > 0 && (bufsize < 64 || bufsize > (1u << 30))))
		return -EINVAL;
	ret = netloop_unstarted(loop, &nl);
	if (ret < 0)
		return ret;
	nl->big_nbufs = nbufs;
	nl->big_bufsize = nbufs ? bufsize : 0;
	return 0;
}
