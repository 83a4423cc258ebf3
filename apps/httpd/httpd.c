/* SPDX-License-Identifier: MIT */
/*
 * proa-httpd - a static file server on proa.
 *
 *   proa-httpd [options] [DIR]      serve DIR (default: .) on 127.0.0.1:8080
 *
 * One loop per --loops, each pinned to a CPU by the loop group and
 * listening with SO_REUSEPORT (between these loops only: another process
 * on the port is refused); a connection lives on one loop from accept
 * to close, with that loop's open-file cache and access log: nothing is
 * shared between loops, no lock on the request path.
 *
 * A connection is a proa protocol.  Bytes go into the connection's input
 * buffer; complete request heads are parsed (http_parse.c, strict) and
 * answered in order, so pipelined requests are answered one after the
 * other.  A file of at most FILE_CACHE_DATA_MAX bytes is answered from
 * the cache's memory in one write; a bigger one is spliced from the
 * file (proa_transport_sendfile: no copy on our side at all), or, where
 * the loop cannot splice, sent from a mapping; under TLS it is read with
 * proa_op_read() into the connection's buffers and written piece by
 * piece, at the pace the peer takes it (the transport's water marks).
 * --send-path picks one way for every body, to measure them against
 * each other (see send_body()).
 *
 * Threads: main() parses options, starts the group and waits for
 * SIGINT/SIGTERM in sigwait(); everything else runs on the loops' threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <grp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <proa.h>
#include <proa/net.h>
#include <proa/tls.h>

#include "files.h"
#include "http_parse.h"
#include "http_util.h"

/*
 * What one connection may hold in user memory, so that a client that
 * pipelines and never reads costs a bound (docs/httpd.md has the table):
 * the input buffer (IN_CAP), and copied response bytes: the server stops
 * answering pipelined requests once the write buffer is over WRITE_HIGH,
 * so it holds at most WRITE_HIGH plus one response's copied part (a head
 * of at most 1 KiB and a body under REF_MIN) in 16 KiB chunks: two
 * chunks.  Bodies of REF_MIN and more are sent by reference to the file
 * cache or the page cache, which connections share.  32 KiB + 2 x 16 KiB
 * = 64 KiB, plus the connection's own struct.
 */
#define IN_CAP                                                                 \
	((size_t)32 * 1024) /* input buffer: a 16 KiB head and room to read */
#define IN_ROOM                                                                \
	((size_t)16 * 1024) /* pause reading below this much free room */
#define IN_FREE_MAX 64	    /* input buffers a loop keeps for reuse */
#define FBUF_SIZE ((size_t)128 * 1024) /* one read of a big file */
/* Bodies from the cache at least this big are sent from the cache's
 * memory (write_ref) rather than copied into the write buffer. */
#define REF_MIN ((uint64_t)8 * 1024)
#define WRITE_HIGH ((size_t)16 * 1024) /* the transports' high mark */
#define WRITE_LOW ((size_t)4 * 1024)   /* and their low mark */
#define MAX_LOOPS 256
/* Lookups one request needs at most: a directory, its index, its listing. */
#define GIVEN_MAX 3
#define LOG_BUF ((size_t)64 * 1024)
#define SHUTDOWN_GRACE_S 30

/*
 * How a body bigger than REF_MIN leaves (--send-path).  Measured with
 * perf/http/run-http --servers proa,proa-map,proa-read,nginx (wrk on CPU
 * 0, server on CPU 1, 1 MiB file, 16 connections, medians of 3), server
 * CPU per request: read + send 578 us (two copies), map + send 211-271
 * us (the socket's copy), splice 122 us, nginx's sendfile 161 us;
 * requests/s within noise of each other (wrk's receive, on one core, is
 * the limit).  So splice is the default for what the cache does not
 * hold.  Files of up to 64 KiB are in memory already, and one sendmsg
 * sends them with their head; spliced (--send-path splice) they cost the
 * same at 16 and 64 connections (22.5 against 22.0, 21.1 against 21.4
 * us) and more at one (44.7 against 31.7 us): each splice is a hand-off
 * to io_uring's kernel workers, which only pays for itself on big files.
 * sendfile on our pool was not built: it would add a cross-thread wake-up (~70
 * us here) per piece to the same page-cache references that splice hands the
 * socket.
 */
enum send_path {
	SEND_AUTO,   /* cache's copy up to 64 KiB, then splice (or map) */
	SEND_SPLICE, /* every such body spliced from the file */
	SEND_MAP,    /* the cache's copy, else a mapping */
	SEND_READ,   /* read into the connection's buffers, then sent */
};

struct config {
	const char *root;
	const char *host;
	uint16_t port;
	unsigned loops;
	unsigned max_conns;
	uint64_t header_timeout_ns;
	uint64_t body_timeout_ns;
	uint64_t idle_timeout_ns;
	uint64_t write_timeout_ns;
	uint64_t body_max;
	const char *tls_cert, *tls_key;
	const char *access_log;
	const char *user; /* --user: drop root for this user after binding */
	bool quiet;
	bool list; /* --list: a directory without an index is listed */
	enum send_path send_path;
};

struct server;

/* The access log of one loop: lines gather in one buffer while the other
 * is being written with proa_op_write(), so the loop never waits for the
 * disk.  When both are full, lines are dropped and counted. */
struct access_log {
	int fd;
	char *buf[2];
	size_t len[2];
	int cur; /* the buffer lines go to */
	bool writing;
	struct proa_op op;
	struct proa_timer flush_timer;
	uint64_t dropped;
};

struct shard {
	struct server *srv;
	struct proa_loop *loop;
	struct proa_link conns;
	unsigned nconns;
	struct file_cache cache;
	struct access_log log;
	char date[30];
	time_t date_t;
	bool draining;
	bool drained;
	unsigned idx;		  /* in the loop group */
	enum send_path send_path; /* --send-path, as this loop can */
	struct proa_handle warm_h;
	sem_t *warmed;
	/* input buffers not in use: a connection holds one only while it
	 * has bytes it could not answer yet, so an idle one holds none */
	void *free_in;
	unsigned nfree_in;
	uint64_t requests, responses_by_class[6];
};

struct server {
	struct config cfg;
	struct proa_tls_context *tls;
	int rootfd;
	int logfd;
	unsigned nshards;
	struct shard *shards;
	struct proa_loop_group *group; /* set before it listens */
};

enum conn_state {
	C_HEAD,	   /* waiting for (the rest of) a request head */
	C_FILE,	   /* a request waits for its file's lookup (fw) */
	C_SENDING, /* a file body going out through reads */
	C_LINGER,  /* answered and shut for writing: input drained, dropped */
	C_CLOSING, /* closed: everything else is dropped */
};

enum timer_mode {
	T_NONE,
	T_HEADER,  /* a request head has started (or the connection is new) */
	T_IDLE,	   /* keep-alive, between requests */
	T_BODY,	   /* a request body being read: restarted by each read */
	T_LINGER,  /* lingering close */
	T_FILE,	   /* a file lookup: as long as a head may take, then 503 */
	T_SENDING, /* all asked is answered, not all sent: T_IDLE after */
};

/* How often a connection whose answers are still leaving looks whether
 * they have left, to start its keep-alive wait from there (a reader that
 * takes nothing is the transport's write timeout's). */
#define SENDING_CHECK_NS 1000000000ull

/* How long, and how many bytes, a lingering close reads before it gives
 * up and closes anyway. */
#define LINGER_NS 2000000000ull
#define LINGER_MAX ((uint64_t)1024 * 1024)

enum body_state {
	B_NONE,
	B_LENGTH,  /* body_left bytes of Content-Length */
	B_CHUNKED, /* the decoder in conn.chunk */
};

struct conn {
	struct proa_protocol proto;
	struct proa_link link;
	struct shard *sh;
	struct proa_transport *t;
	enum conn_state state;
	bool close_after; /* close once the current response is out */
	bool eof_in;	  /* the client sent all it will: answer, then close */
	bool reading_paused;
	bool writing_paused;
	bool lost; /* connection_lost ran; freed when the read ends */
	enum body_state body;
	uint64_t body_left, body_seen;
	struct http_chunked chunk;
	enum timer_mode tmode;
	struct proa_timer timer;
	/* input */
	char *in;
	size_t in_off, in_len; /* unread bytes: in[in_off, in_off + in_len) */
	/* a file response in progress */
	struct fentry *fe;
	uint64_t f_off, f_left;
	struct fslot {
		struct conn *c;
		char *buf;
		bool busy; /* being read into, or lent to the transport */
	} slot[2];
	struct fslot *rd_slot; /* the one being read into: a read in flight */
	unsigned lent;	       /* slots the transport holds */
	struct proa_op rd;
	/* A request whose file is being looked up: the waiter, and what
	 * lookups of this request have found so far (the request is parsed
	 * again when one ends, and takes these instead of asking again). */
	struct file_waiter fw;
	struct given {
		char *path; /* NULL: unused */
		enum file_result fr;
		struct fentry *fe; /* FILE_OK: one reference */
	} given[GIVEN_MAX];
	/* for the access log */
	char peer[48];
	unsigned requests;
};

static const char *prog = "proa-httpd";
static const struct http_limits limits = HTTP_LIMITS_DEFAULT;

static void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "%s: ", prog);
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized) */
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ---- small helpers ----------------------------------------------------- */

struct out {
	char *p;
	size_t len, cap;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->len + n > o->cap)
		n = o->cap - o->len; /* never: the header buffer is sized */
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void putu(struct out *o, uint64_t v)
{
	char tmp[24];
	int n = 0;

	do
		tmp[sizeof(tmp) - 1 - n++] = (char)('0' + v % 10);
	while ((v /= 10) && n < 20);
	put(o, tmp + sizeof(tmp) - n, (size_t)n);
}

static const char *shard_date(struct shard *sh)
{
	time_t now = time(NULL);

	if (now != sh->date_t) {
		sh->date_t = now;
		http_date_format(now, sh->date);
	}
	return sh->date;
}

/* ---- access log -------------------------------------------------------- */

static void log_flush(struct shard *sh);
static void shard_check_drained(struct shard *sh);

static void log_written(struct proa_op *op)
{
	struct access_log *lg = proa_container_of(op, struct access_log, op);
	struct shard *sh = proa_container_of(lg, struct shard, log);
	int done = 1 - lg->cur;

	/* A short or failed write loses that much of the log, never the
	 * server: say so once in a while through the dropped counter. */
	if (op->res < 0 || (size_t)op->res < lg->len[done])
		lg->dropped++;
	lg->len[done] = 0;
	lg->writing = false;
	if (lg->len[lg->cur] >= LOG_BUF / 2 || sh->draining)
		log_flush(sh);
	if (sh->draining)
		shard_check_drained(sh);
}

static void log_flush(struct shard *sh)
{
	struct access_log *lg = &sh->log;
	int b = lg->cur;

	if (lg->writing || lg->len[b] == 0)
		return;
	proa_op_init(&lg->op, log_written, NULL);
	if (proa_op_write(sh->loop, &lg->op, lg->fd, lg->buf[b], lg->len[b],
			  -1) < 0) {
		lg->dropped++;
		lg->len[b] = 0;
		return;
	}
	lg->writing = true;
	lg->cur = 1 - b;
}

static void log_tick(void *arg)
{
	log_flush(arg);
}

static void log_request(struct conn *c, const struct http_request *req,
			int status, uint64_t bytes)
{
	struct access_log *lg = &c->sh->log;
	char line[2048], method[64] = "-", target[1600] = "-";
	int n;

	if (lg->fd < 0)
		return;
	if (!proa_timer_is_active(&lg->flush_timer))
		proa_timer_start(c->sh->loop, &lg->flush_timer, 1000000000ull,
				 1000000000ull, log_tick, c->sh);
	/* Escaped as nginx does ('"' is \x22): a target may hold '"' and
	 * '\\', which would end the quoted field early and let a client
	 * forge what looks like more fields of the line. */
	if (req) {
		http_log_escape(method, sizeof(method), req->method_name.ptr,
				req->method_name.len);
		http_log_escape(target, sizeof(target), req->target.ptr,
				req->target.len > 400 ? 400 : req->target.len);
	}
	n = snprintf(line, sizeof(line),
		     "%s [%s] \"%s %s HTTP/%d.%d\" %d %" PRIu64 "\n", c->peer,
		     shard_date(c->sh), method, target,
		     req ? req->version / 10 : 1, req ? req->version % 10 : 1,
		     status, bytes);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	if (lg->len[lg->cur] + (size_t)n > LOG_BUF) {
		log_flush(c->sh);
		if (lg->len[lg->cur] + (size_t)n > LOG_BUF) {
			lg->dropped++;
			return;
		}
	}
	memcpy(lg->buf[lg->cur] + lg->len[lg->cur], line, (size_t)n);
	lg->len[lg->cur] += (size_t)n;
	if (lg->len[lg->cur] >= LOG_BUF / 2)
		log_flush(c->sh);
}

/* ---- connections ------------------------------------------------------- */

static void conn_process(struct conn *c);
static void send_file_next(struct conn *c);

static void timer_fired(void *arg);

static void timer_set(struct conn *c, enum timer_mode mode)
{
	struct server *srv = c->sh->srv;
	uint64_t ns = mode == T_HEADER || mode == T_FILE
			  ? srv->cfg.header_timeout_ns
		      : mode == T_IDLE	  ? srv->cfg.idle_timeout_ns
		      : mode == T_BODY	  ? srv->cfg.body_timeout_ns
		      : mode == T_SENDING ? SENDING_CHECK_NS
					  : LINGER_NS;

	if (c->tmode == mode && proa_timer_is_active(&c->timer))
		return;
	proa_timer_cancel(&c->timer);
	c->tmode = mode;
	if (mode != T_NONE && ns)
		proa_loop_call_later(c->sh->loop, &c->timer, ns, timer_fired,
				     c);
}

static void conn_close(struct conn *c)
{
	if (c->state == C_CLOSING)
		return;
	c->state = C_CLOSING;
	timer_set(c, T_NONE);
	proa_transport_close(c->t);
}

/*
 * Close after a response we chose to end the connection with.  Closing
 * with unread input makes the kernel send RST, and an RST can reach the
 * client before it has read our response, which it then loses (a 400
 * for a request it is still sending).  So, as nginx's lingering close:
 * shut our side after the response (the transport flushes first), read
 * and drop what still comes for a while, then close.
 */
static void conn_linger(struct conn *c)
{
	if (c->state == C_CLOSING || c->state == C_LINGER)
		return;
	if (!proa_transport_can_write_eof(c->t) ||
	    proa_transport_write_eof(c->t) < 0) {
		conn_close(c);
		return;
	}
	c->state = C_LINGER;
	c->body = B_NONE;
	c->body_seen = 0;
	timer_set(c, T_LINGER);
	if (c->reading_paused) {
		c->reading_paused = false;
		proa_transport_resume_reading(c->t);
	}
}

static void conn_abort(struct conn *c)
{
	c->state = C_CLOSING;
	timer_set(c, T_NONE);
	proa_transport_abort(c->t);
}

/* Write a whole response head (and a body in memory); false when the
 * transport refused it (the connection is going away). */
static bool conn_write(struct conn *c, const struct iovec *iov, int n)
{
	if (proa_transport_writev(c->t, iov, n) < 0) {
		conn_abort(c);
		return false;
	}
	return true;
}

static void head_start(struct out *o, struct conn *c, int status)
{
	puts_(o, "HTTP/1.1 ");
	putu(o, (uint64_t)status);
	put(o, " ", 1);
	puts_(o, http_reason(status));
	puts_(o, "\r\nServer: proa-httpd\r\nDate: ");
	put(o, shard_date(c->sh), 29);
	puts_(o, "\r\n");
}

static void head_end(struct out *o, struct conn *c, bool v10_keep_alive)
{
	if (c->close_after)
		puts_(o, "Connection: close\r\n");
	else if (v10_keep_alive)
		puts_(o, "Connection: keep-alive\r\n");
	puts_(o, "\r\n");
}

static void count_status(struct conn *c, int status)
{
	int k = status / 100;

	c->sh->responses_by_class[k >= 1 && k <= 5 ? k : 0]++;
}

/*
 * An error or a redirect: a small HTML body (none for HEAD).  @close: the
 * request cannot be framed or trusted, so the connection ends after it.
 */
static void respond_simple(struct conn *c, const struct http_request *req,
			   int status, bool close, const char *extra)
{
	/* @extra (a Location can be 12 KiB) goes as it is, between the
	 * fixed head and its end, which have room enough. */
	char hbuf[320], tail[64], body[160];
	struct out o = {hbuf, 0, sizeof(hbuf)}, t = {tail, 0, sizeof(tail)};
	struct iovec iov[4];
	int blen, n = 0;
	bool head = req && req->method == HTTP_METHOD_HEAD;

	if (close)
		c->close_after = true;
	blen =
	    snprintf(body, sizeof(body),
		     "<html><head><title>%d %s</title></head><body><h1>%d "
		     "%s</h1></body></html>\n",
		     status, http_reason(status), status, http_reason(status));
	if (status == 304)
		blen = 0;
	head_start(&o, c, status);
	if (blen) {
		puts_(&o, "Content-Type: text/html; charset=utf-8\r\n");
		puts_(&o, "Content-Length: ");
		putu(&o, (uint64_t)blen);
		puts_(&o, "\r\n");
	}
	head_end(&t, c, req && req->version == 10 && req->keep_alive);
	iov[n++] = (struct iovec){hbuf, o.len};
	if (extra)
		iov[n++] = (struct iovec){(void *)extra, strlen(extra)};
	iov[n++] = (struct iovec){tail, t.len};
	if (!head && blen)
		iov[n++] = (struct iovec){body, (size_t)blen};
	count_status(c, status);
	log_request(c, req, status, head ? 0 : (uint64_t)blen);
	if (!conn_write(c, iov, n))
		return;
	if (c->close_after)
		conn_linger(c);
}

/* After a response is complete: next request, or close, or wait. */
static void response_done(struct conn *c)
{
	if (c->state == C_CLOSING)
		return;
	if (c->close_after || c->sh->draining) {
		conn_linger(c);
		return;
	}
	c->state = C_HEAD;
}

static void file_done(struct conn *c)
{
	if (c->fe) {
		file_cache_release(&c->sh->cache, c->fe);
		c->fe = NULL;
	}
}

/* Discard request-body bytes from @p[0..n); returns how many were eaten.
 * On a malformed chunked body, the connection is aborted and n returned. */
static size_t body_eat(struct conn *c, const char *p, size_t n)
{
	size_t i = 0;

	if (c->body == B_LENGTH) {
		i = n < c->body_left ? n : (size_t)c->body_left;
		c->body_left -= i;
		if (c->body_left == 0)
			c->body = B_NONE;
		return i;
	}
	while (i < n && c->body == B_CHUNKED) {
		struct http_span data;
		size_t used;
		int ret;

		ret = http_chunked_parse(&c->chunk, p + i, n - i, &used, &data);
		if (ret < 0)
			goto bad;
		i += used;
		if (ret == HTTP_PARSE_OK)
			c->body = B_NONE;
	}
	return i;
bad:
	/* The response was sent already: there is no way to say 400 now,
	 * and the stream cannot be framed any more. */
	c->body = B_NONE;
	c->close_after = true;
	if (c->state == C_HEAD)
		conn_linger(c);
	return n;
}

static void file_ref_release(void *arg)
{
	struct fentry *fe = arg;

	file_cache_release(fe->cache, fe);
}

/*
 * A body spliced from the file: the socket takes the page cache's pages,
 * nothing is copied on our side (proa_transport_sendfile_sized).  Measured on
 * the way in (perf/http/run-http, --send-path): see the note at
 * enum send_path.  One reference to @fe per piece (a piece is at most
 * 1 GiB); the caller's reference is dropped here.
 */
static void send_spliced(struct conn *c, struct fentry *fe, uint64_t off,
			 uint64_t len)
{
	const uint64_t piece_max = (uint64_t)1 << 30;

	while (len > 0) {
		uint64_t n = len < piece_max ? len : piece_max;

		file_cache_hold(fe);
		/* The size the lookup's statx saw (on the pool): an fstat
		 * here would touch the file system on the loop thread. */
		if (proa_transport_sendfile_sized(c->t, fe->fd, off, (size_t)n,
						  fe->size, file_ref_release,
						  fe) < 0) {
			/* The file shrank since it was checked: the head
			 * promised bytes that cannot come. */
			file_cache_release(&c->sh->cache, fe);
			file_cache_release(&c->sh->cache, fe);
			conn_abort(c);
			return;
		}
		off += n;
		len -= n;
	}
	file_cache_release(&c->sh->cache, fe);
	response_done(c);
}

/*
 * Expect (RFC 9110 10.1.1), once the body, if any, is set to be read:
 * "100-continue" with a body to read gets "100 Continue" now, before the
 * final answer, so a client that waits for it sends its body (which is
 * then read and dropped, and the connection goes on).  A body refused
 * (413) never gets here; nor a request without one, whose framing says
 * there is nothing to wait for.  Any other expectation: 417.  HTTP/1.0
 * has no Expect: ignored.  False when the request was answered.
 */
static bool expect(struct conn *c, const struct http_request *req)
{
	static const struct iovec cont = {"HTTP/1.1 100 Continue\r\n\r\n", 25};
	bool ok = true;

	if (!req->expect.ptr || req->version < 11)
		return true;
	for (size_t i = 0; i < req->nheaders; i++) {
		const struct http_header *h = &req->headers[i];

		if (h->name_len == 6 &&
		    strncasecmp(h->name, "Expect", 6) == 0 &&
		    !http_expect_ok(h->value, h->value_len))
			ok = false;
	}
	if (!ok) {
		respond_simple(c, req, 417, false, NULL);
		return false;
	}
	if (c->body != B_NONE && !conn_write(c, &cont, 1))
		return false;
	return true;
}

static void given_clear(struct conn *c)
{
	for (int i = 0; i < GIVEN_MAX; i++) {
		struct given *g = &c->given[i];

		if (!g->path)
			continue;
		if (g->fr == FILE_OK)
			file_cache_release(&c->sh->cache, g->fe);
		free(g->path);
		g->path = NULL;
	}
}

/*
 * The file at @path for the request being parsed: what an earlier lookup
 * of this request found, or the cache's answer, or FILE_PENDING (then the
 * connection waits in C_FILE, under the T_FILE timer).
 */
static enum file_result resolve(struct conn *c, const char *path,
				struct fentry **fe, bool list)
{
	size_t n = strlen(path);
	enum file_result fr;

	for (int i = 0; i < GIVEN_MAX; i++) {
		struct given *g = &c->given[i];

		/* A listing's key is its directory's path and a '/'. */
		if (g->path && strncmp(g->path, path, n) == 0 &&
		    strcmp(g->path + n, list ? "/" : "") == 0) {
			if (g->fr == FILE_OK) {
				file_cache_hold(g->fe);
				*fe = g->fe;
			}
			return g->fr;
		}
	}
	fr = list ? file_cache_list(&c->sh->cache, path, &c->fw)
		  : file_cache_lookup(&c->sh->cache, path,
				      proa_loop_time(c->sh->loop), fe, &c->fw);
	if (fr == FILE_PENDING) {
		c->state = C_FILE;
		timer_set(c, T_FILE);
	}
	return fr;
}

/* A lookup this connection waited for ended: keep what it found and parse
 * the request again. */
static void lookup_done(struct file_waiter *w, const char *path,
			enum file_result fr, struct fentry *fe)
{
	struct conn *c = proa_container_of(w, struct conn, fw);
	struct given *g;

	for (g = c->given; g < c->given + GIVEN_MAX && g->path; g++)
		;
	if (g == c->given + GIVEN_MAX) { /* cannot happen: GIVEN_MAX */
		given_clear(c);
		g = c->given;
	}
	c->state = C_HEAD;
	timer_set(c, T_NONE);
	if (!(g->path = strdup(path))) {
		if (fe)
			file_cache_release(&c->sh->cache, fe);
		respond_simple(c, NULL, 503, true, "Retry-After: 1\r\n");
		return;
	}
	g->fr = fr;
	g->fe = fe;
	conn_process(c);
}

/*
 * The file a GET or HEAD of @path answers with, as FILE_* (the index for
 * a directory named with its slash), or FILE_PENDING.
 */
static enum file_result target_file(struct conn *c, char *path, bool dir,
				    struct fentry **fe)
{
	enum file_result fr = resolve(c, path, fe, false);

	if (fr == FILE_IS_DIR && dir) {
		size_t n = strlen(path);

		memcpy(path + n, n ? "/index.html" : "index.html", n ? 12 : 11);
		fr = resolve(c, path, fe, false);
		if (fr == FILE_NOT_FOUND && c->sh->srv->cfg.list) {
			path[n] = '\0';
			fr = resolve(c, path, fe, true);
		} else if (fr == FILE_NOT_FOUND || fr == FILE_IS_DIR) {
			fr = FILE_FORBIDDEN; /* no listing */
		}
	} else if (fr == FILE_OK && dir) {
		/* "/file.txt/" names no file. */
		file_cache_release(&c->sh->cache, *fe);
		fr = FILE_NOT_FOUND;
	}
	return fr;
}

/* If-Match (any of its field lines, by the strong comparison), else a valid
 * If-Unmodified-Since, against @fe: false when the precondition fails. */
static bool precondition_holds(const struct http_request *req,
			       const struct fentry *fe)
{
	const struct http_header *ius = NULL;
	bool if_match = false, matched = false;
	time_t t;

	for (size_t i = 0; i < req->nheaders; i++) {
		const struct http_header *h = &req->headers[i];

		if (h->name_len == 8 &&
		    strncasecmp(h->name, "If-Match", 8) == 0) {
			if_match = true;
			matched = matched ||
				  http_etag_match_strong(h->value, h->value_len,
							 fe->etag);
		} else if (h->name_len == 19 &&
			   strncasecmp(h->name, "If-Unmodified-Since", 19) ==
			       0 &&
			   !ius) {
			ius = h;
		}
	}
	if (if_match)
		return matched;
	/* An invalid date is ignored (13.1.4). */
	if (ius && http_date_parse(ius->value, ius->value_len, &t))
		return fe->mtime_sec <= t;
	return true;
}

/*
 * Answer a parsed request.  False when it must wait for a file lookup:
 * then nothing was said or counted, and the request is parsed again from
 * its first byte when the lookup ends.
 */
static bool handle_request(struct conn *c, const struct http_request *req)
{
	struct server *srv = c->sh->srv;
	char path[HTTP_PATH_MAX + 1 + 16];
	char hbuf[1024];
	struct out o = {hbuf, 0, sizeof(hbuf)};
	struct fentry *fe = NULL;
	enum file_result fr = FILE_NOT_FOUND;
	bool dir = false, head = req->method == HTTP_METHOD_HEAD;
	bool v10ka = req->version == 10 && req->keep_alive;
	uint64_t first = 0, last = 0, len;
	int status, ret = 0;

	/* The file first, before anything is said or counted. */
	if ((req->method == HTTP_METHOD_GET ||
	     req->method == HTTP_METHOD_HEAD) &&
	    !req->te_other &&
	    req->content_length <= (int64_t)srv->cfg.body_max) {
		ret = http_target_path(req->target.ptr, req->target.len, path,
				       &dir);
		if (!ret) {
			fr = target_file(c, path, dir, &fe);
			if (fr == FILE_PENDING)
				return false;
		}
	}
	given_clear(c);
	c->sh->requests++;
	c->requests++;
	if (!req->keep_alive)
		c->close_after = true;
	if (req->method == HTTP_METHOD_UNKNOWN || req->te_other) {
		respond_simple(c, req, 501, true, NULL);
		return true;
	}
	/* The body, if any, is read and thrown away after the response;
	 * over the limit, it is refused and the connection closed. */
	if (req->content_length > 0 || req->chunked) {
		if (req->content_length > (int64_t)srv->cfg.body_max) {
			respond_simple(c, req, 413, true, NULL);
			return true;
		}
		if (req->chunked) {
			c->body = B_CHUNKED;
			http_chunked_init(&c->chunk, srv->cfg.body_max);
		} else {
			c->body = B_LENGTH;
			c->body_left = (uint64_t)req->content_length;
		}
	}
	if (!expect(c, req)) {
		if (fr == FILE_OK)
			file_cache_release(&c->sh->cache, fe);
		return true;
	}
	if (req->method != HTTP_METHOD_GET && req->method != HTTP_METHOD_HEAD) {
		respond_simple(c, req, 405, false, "Allow: GET, HEAD\r\n");
		return true;
	}
	if (ret) {
		respond_simple(c, req, ret, ret == 400, NULL);
		return true;
	}
	if (fr == FILE_IS_DIR) {
		/* Only without the slash: target_file() took the index.
		 * The query goes along as it came (the parser let through
		 * only visible ASCII). */
		const char *q = memchr(req->target.ptr, '?', req->target.len);
		size_t qlen =
		    q ? req->target.len - (size_t)(q - req->target.ptr) : 0;
		size_t n = strlen(path);
		/* Relative links in the index need the slash.  The
		 * path is decoded: encode it again, or a %0d%0a in
		 * the target would split the response. */
		static const char hex[] = "0123456789ABCDEF";
		static const char pre[] = "Location: /";
		char *loc = malloc(sizeof(pre) + 3 * n + qlen + 4);
		size_t k = sizeof(pre) - 1;

		if (!loc) {
			respond_simple(c, req, 503, false,
				       "Retry-After: 1\r\n");
			return true;
		}
		memcpy(loc, pre, k);
		for (size_t i = 0; i < n; i++) {
			unsigned char ch = (unsigned char)path[i];

			if ((ch >= 'a' && ch <= 'z') ||
			    (ch >= 'A' && ch <= 'Z') ||
			    (ch >= '0' && ch <= '9') ||
			    (ch && strchr("/-._~", ch))) {
				loc[k++] = (char)ch;
			} else {
				loc[k++] = '%';
				loc[k++] = hex[ch >> 4];
				loc[k++] = hex[ch & 15];
			}
		}
		loc[k++] = '/';
		if (qlen)
			memcpy(loc + k, q, qlen);
		k += qlen;
		memcpy(loc + k, "\r\n", 3);
		respond_simple(c, req, 301, false, loc);
		free(loc); /* the transport has copied it */
		return true;
	}
	switch (fr) {
	case FILE_OK:
		break;
	case FILE_NOT_FOUND:
		respond_simple(c, req, 404, false, NULL);
		return true;
	case FILE_TOO_LONG:
		respond_simple(c, req, 414, false, NULL);
		return true;
	case FILE_UNAVAILABLE:
		respond_simple(c, req, 503, false, "Retry-After: 1\r\n");
		return true;
	default:
		respond_simple(c, req, 403, false, NULL);
		return true;
	}

	/* Conditional requests, in RFC 9110 13.2.2's order.  First the
	 * preconditions that protect a client from a representation that
	 * changed (a download resumed with Range): If-Match, else
	 * If-Unmodified-Since; one that fails is 412, never the file. */
	if (!precondition_holds(req, fe)) {
		file_cache_release(&c->sh->cache, fe);
		respond_simple(c, req, 412, false, NULL);
		return true;
	}
	/* Then If-None-Match, which wins over If-Modified-Since. */
	bool not_modified = false;
	if (req->if_none_match.ptr) {
		for (size_t i = 0; i < req->nheaders; i++) {
			const struct http_header *h = &req->headers[i];

			if (h->name_len == 13 &&
			    strncasecmp(h->name, "If-None-Match", 13) == 0 &&
			    http_etag_match(h->value, h->value_len, fe->etag))
				not_modified = true;
		}
	} else if (req->if_modified_since.ptr) {
		time_t ims;

		if (http_date_parse(req->if_modified_since.ptr,
				    req->if_modified_since.len, &ims) &&
		    fe->mtime_sec <= ims)
			not_modified = true;
	}
	status = 200;
	len = fe->size;
	if (!not_modified && req->range.ptr) {
		bool use_range = true;

		/* If-Range: the range only if the representation is the one
		 * the client has (a strong ETag or the exact date). */
		for (size_t i = 0; i < req->nheaders; i++) {
			const struct http_header *h = &req->headers[i];

			if (h->name_len == 8 &&
			    strncasecmp(h->name, "If-Range", 8) == 0)
				use_range =
				    (h->value_len == strlen(fe->etag) &&
				     memcmp(h->value, fe->etag, h->value_len) ==
					 0) ||
				    (h->value_len == 29 &&
				     memcmp(h->value, fe->lastmod, 29) == 0);
		}
		if (use_range) {
			switch (http_range(req->range.ptr, req->range.len,
					   fe->size, &first, &last)) {
			case HTTP_RANGE_OK:
				status = 206;
				len = last - first + 1;
				break;
			case HTTP_RANGE_UNSAT: {
				char cr[64];

				snprintf(cr, sizeof(cr),
					 "Content-Range: bytes */%" PRIu64
					 "\r\n",
					 fe->size);
				file_cache_release(&c->sh->cache, fe);
				respond_simple(c, req, 416, false, cr);
				return true;
			}
			default:
				break;
			}
		}
	}
	if (not_modified)
		status = 304;
	head_start(&o, c, status);
	if (status != 304) {
		puts_(&o, "Content-Type: ");
		puts_(&o, fe->mime);
		puts_(&o, "\r\nContent-Length: ");
		putu(&o, len);
		puts_(&o, "\r\n");
	}
	if (status == 206) {
		puts_(&o, "Content-Range: bytes ");
		putu(&o, first);
		put(&o, "-", 1);
		putu(&o, last);
		put(&o, "/", 1);
		putu(&o, fe->size);
		puts_(&o, "\r\n");
	}
	puts_(&o, "Last-Modified: ");
	put(&o, fe->lastmod, 29);
	puts_(&o, "\r\nETag: ");
	puts_(&o, fe->etag);
	puts_(&o, "\r\nAccept-Ranges: bytes\r\n");
	if (c->sh->draining)
		c->close_after = true;
	head_end(&o, c, v10ka);
	count_status(c, status);
	bool body = !head && status != 304 && len > 0;
	log_request(c, req, status, body ? len : 0);

	if (!body || (fe->data && len < REF_MIN)) {
		struct iovec iov[2] = {{hbuf, o.len},
				       {fe->data + first, (size_t)len}};
		bool ok = conn_write(c, iov, body ? 2 : 1);

		file_cache_release(&c->sh->cache, fe);
		if (ok)
			response_done(c);
		return true;
	}
	struct iovec iov = {hbuf, o.len};
	if (!conn_write(c, &iov, 1)) {
		file_cache_release(&c->sh->cache, fe);
		return true;
	}
	enum send_path sp = c->sh->send_path;
	/* A listing is a page in memory, with no file behind it. */
	if (fe->listing)
		sp = SEND_MAP;
	if (sp == SEND_SPLICE || (sp == SEND_AUTO && !fe->data)) {
		send_spliced(c, fe, first, len);
		return true;
	}
	/* TLS encrypts in user space: it would touch a mapping, which a
	 * truncated file turns into SIGBUS, so TLS reads instead. */
	if ((fe->data && sp != SEND_READ) ||
	    (fe->map && sp == SEND_MAP && !c->sh->srv->tls)) {
		/* Sent from the cache's copy or the mapping: the reference
		 * taken above is the transport's until it has sent it. */
		if (proa_transport_write_ref(
			c->t, (fe->data ? fe->data : fe->map) + first,
			(size_t)len, file_ref_release, fe) < 0) {
			file_cache_release(&c->sh->cache, fe);
			conn_abort(c);
			return true;
		}
		response_done(c);
		return true;
	}
	/* A big file: a read at a time into two buffers, each sent from
	 * where it was read while the other fills. */
	for (int i = 0; i < 2; i++) {
		if (!c->slot[i].buf && !(c->slot[i].buf = malloc(FBUF_SIZE))) {
			file_cache_release(&c->sh->cache, fe);
			conn_abort(c);
			return true;
		}
		c->slot[i].c = c;
	}
	c->fe = fe;
	c->f_off = first;
	c->f_left = len;
	c->state = C_SENDING;
	send_file_next(c);
	return true;
}

static void conn_free(struct conn *c)
{
	file_waiter_cancel(&c->fw);
	given_clear(c);
	free(c->in);
	free(c->slot[0].buf);
	free(c->slot[1].buf);
	free(c);
}

/* Whether nothing of ours is in flight any more, so that a connection
 * already lost can be freed. */
static bool conn_quiet(const struct conn *c)
{
	return !c->rd_slot && c->lent == 0;
}

static void slot_release(void *arg)
{
	struct fslot *sl = arg;
	struct conn *c = sl->c;

	sl->busy = false;
	c->lent--;
	if (c->lost) {
		if (conn_quiet(c))
			conn_free(c);
		return;
	}
	if (c->state == C_SENDING)
		send_file_next(c);
}

static void file_read_done(struct proa_op *op)
{
	struct conn *c = proa_container_of(op, struct conn, rd);
	struct fslot *sl = c->rd_slot;

	c->rd_slot = NULL;
	sl->busy = false;
	if (c->lost) {
		file_done(c);
		if (conn_quiet(c))
			conn_free(c);
		return;
	}
	if (c->state != C_SENDING) {
		file_done(c);
		return;
	}
	if (op->res <= 0) {
		/* The file shrank or failed under us: the promised length
		 * cannot be kept, so the peer must see the cut. */
		file_done(c);
		conn_abort(c);
		return;
	}
	if (proa_transport_write_ref(c->t, sl->buf, (size_t)op->res,
				     slot_release, sl) < 0) {
		file_done(c);
		conn_abort(c);
		return;
	}
	sl->busy = true;
	c->lent++;
	c->f_off += (uint64_t)op->res;
	c->f_left -= (uint64_t)op->res;
	send_file_next(c);
}

/* Read the next piece of the file unless the peer is behind. */
static void send_file_next(struct conn *c)
{
	size_t n;

	if (c->f_left == 0) {
		/* All queued: the next response may queue behind it while
		 * the transport still sends from the slots. */
		file_done(c);
		response_done(c);
		if (c->state == C_HEAD)
			conn_process(c);
		return;
	}
	if (c->writing_paused || c->rd_slot)
		return;
	struct fslot *sl = !c->slot[0].busy   ? &c->slot[0]
			   : !c->slot[1].busy ? &c->slot[1]
					      : NULL;
	if (!sl)
		return; /* slot_release() calls again */
	n = c->f_left < FBUF_SIZE ? (size_t)c->f_left : FBUF_SIZE;
	proa_op_init(&c->rd, file_read_done, NULL);
	if (proa_op_read(c->sh->loop, &c->rd, c->fe->fd, sl->buf, n,
			 (int64_t)c->f_off) < 0) {
		file_done(c);
		conn_abort(c);
		return;
	}
	sl->busy = true;
	c->rd_slot = sl;
}

static void timer_fired(void *arg)
{
	struct conn *c = arg;

	if (c->state == C_CLOSING)
		return;
	if (c->state == C_LINGER) {
		c->tmode = T_NONE;
		conn_close(c);
		return;
	}
	if (c->tmode == T_FILE) {
		/* The file lane is stuck (a hung file system): say so rather
		 * than hold the connection; cached files are still served. */
		file_waiter_cancel(&c->fw);
		given_clear(c);
		c->tmode = T_NONE;
		c->state = C_HEAD;
		respond_simple(c, NULL, 503, true, "Retry-After: 1\r\n");
		return;
	}
	if (c->tmode == T_SENDING) {
		c->tmode = T_NONE;
		timer_set(c, proa_transport_write_buffer_size(c->t) > 0
				 ? T_SENDING
				 : T_IDLE);
		return;
	}
	if (c->tmode == T_HEADER && c->in_len > 0) {
		/* A head started and did not finish in time (slowloris). */
		c->tmode = T_NONE;
		respond_simple(c, NULL, 408, true, NULL);
		return;
	}
	c->tmode = T_NONE;
	conn_close(c);
}

/* Parse and answer what the input holds, in order. */
/* The connection's input buffer, taken from the shard's free list. */
static bool in_reserve(struct conn *c)
{
	struct shard *sh = c->sh;

	if (c->in)
		return true;
	if (sh->free_in) {
		c->in = sh->free_in;
		memcpy(&sh->free_in, c->in, sizeof(void *));
		sh->nfree_in--;
	} else {
		c->in = malloc(IN_CAP);
	}
	c->in_off = 0;
	return c->in != NULL;
}

static void in_put(struct shard *sh, char *buf)
{
	if (sh->nfree_in >= IN_FREE_MAX) {
		free(buf);
		return;
	}
	memcpy(buf, &sh->free_in, sizeof(void *));
	sh->free_in = buf;
	sh->nfree_in++;
}

/*
 * Parse and answer the requests in @p[0..@n) - all the unread input - in
 * order, until one needs more bytes or a response must finish first.
 * Return: the bytes used (all of them once the connection is closing).
 */
static size_t process_bytes(struct conn *c, const char *p, size_t n)
{
	size_t used = 0;

	while (c->state == C_HEAD) {
		struct http_request req;
		size_t consumed;
		int ret;

		/* A body is discarded whatever the write side does: a client
		 * that sends all of a request before it reads would wait for
		 * us while we waited for it. */
		if (c->body != B_NONE) {
			used += body_eat(c, p + used, n - used);
			if (c->body != B_NONE && c->state == C_HEAD) {
				/* More body to come: each read restarts the
				 * wait, as nginx's client_body_timeout. */
				proa_timer_cancel(&c->timer);
				timer_set(c, T_BODY);
			}
			if (c->body != B_NONE || c->state != C_HEAD)
				break;
		}
		/* A peer that pipelines faster than it reads gets no more
		 * answers queued until the write buffer drains. */
		if ((c->writing_paused ||
		     proa_transport_write_buffer_size(c->t) > WRITE_HIGH) &&
		    used < n)
			break;
		if (used == n) {
			/* All answered: a client that has sent its last
			 * request gets the answers, then the close. */
			if (c->sh->draining || c->eof_in) {
				conn_close(c);
				break;
			}
			/* The keep-alive wait starts once the answers have
			 * left, not while a big one is still going out. */
			timer_set(c, proa_transport_write_buffer_size(c->t) > 0
					 ? T_SENDING
					 : T_IDLE);
			break;
		}
		ret = http_parse_request(p + used, n - used, &limits, &req,
					 &consumed);
		if (ret == HTTP_PARSE_INCOMPLETE) {
			if (c->eof_in) {
				/* The rest of this head will never come. */
				conn_close(c);
				break;
			}
			timer_set(c, T_HEADER);
			break;
		}
		if (ret < 0) {
			respond_simple(c, NULL, http_parse_status(ret), true,
				       NULL);
			break;
		}
		timer_set(c, T_NONE);
		if (!handle_request(c, &req))
			break; /* C_FILE: parsed again when the file is known */
		used += consumed;
	}
	if (c->state == C_CLOSING || c->state == C_LINGER)
		return n;
	return used;
}

/* After input was used: give an empty buffer back, keep the rest at the
 * front, and pause reading when there is no room for another read. */
static void in_settle(struct conn *c)
{
	size_t room;

	if (c->in && c->in_len == 0) {
		in_put(c->sh, c->in);
		c->in = NULL;
		c->in_off = 0;
	} else if (c->in && c->in_off > 0 &&
		   c->in_off + c->in_len > IN_CAP / 2) {
		memmove(c->in, c->in + c->in_off, c->in_len);
		c->in_off = 0;
	}
	if (c->state == C_CLOSING || c->state == C_LINGER)
		return;
	room = IN_CAP - (c->in ? c->in_off + c->in_len : 0);
	if (room < IN_ROOM && !c->reading_paused) {
		c->reading_paused = true;
		proa_transport_pause_reading(c->t);
	} else if (room >= IN_ROOM && c->reading_paused) {
		c->reading_paused = false;
		proa_transport_resume_reading(c->t);
	}
}

/* Go on with the buffered input (after a response finished). */
static void conn_process(struct conn *c)
{
	size_t k = process_bytes(c, c->in ? c->in + c->in_off : "", c->in_len);

	c->in_off += k;
	c->in_len -= k;
	in_settle(c);
}

static void conn_made(struct proa_protocol *p, struct proa_transport *t)
{
	struct conn *c = proa_container_of(p, struct conn, proto);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	c->t = t;
	strcpy(c->peer, "-");
	if (proa_transport_peername(t, &ss, &sl) == 0) {
		if (ss.ss_family == AF_INET)
			inet_ntop(AF_INET,
				  &((struct sockaddr_in *)&ss)->sin_addr,
				  c->peer, sizeof(c->peer));
		else if (ss.ss_family == AF_INET6)
			inet_ntop(AF_INET6,
				  &((struct sockaddr_in6 *)&ss)->sin6_addr,
				  c->peer, sizeof(c->peer));
	}
	timer_set(c, T_HEADER);
}

static void conn_data(struct proa_protocol *p, const void *data, size_t len)
{
	struct conn *c = proa_container_of(p, struct conn, proto);
	const char *d = data;

	if (c->state == C_CLOSING)
		return;
	if (c->state == C_LINGER) {
		c->body_seen += len;
		if (c->body_seen > LINGER_MAX)
			conn_close(c);
		return;
	}
	if (c->tmode == T_IDLE || c->tmode == T_SENDING)
		timer_set(c, T_HEADER);
	else if (c->tmode == T_BODY) {
		proa_timer_cancel(&c->timer); /* progress: wait afresh */
		timer_set(c, T_BODY);
	}
	/* Nothing held back: parse the bytes where they are, and keep only
	 * what cannot be answered yet. */
	if (c->in_len == 0 && c->state == C_HEAD) {
		size_t k = process_bytes(c, d, len);

		d += k;
		len -= k;
		if (len == 0) {
			in_settle(c);
			return;
		}
	}
	if (!in_reserve(c)) {
		conn_abort(c);
		return;
	}
	if (c->in_off + c->in_len + len > IN_CAP) {
		memmove(c->in, c->in + c->in_off, c->in_len);
		c->in_off = 0;
	}
	if (c->in_len + len > IN_CAP) {
		/* Only a peer that ignores flow control gets here (reading
		 * pauses with IN_ROOM left): refuse rather than lose bytes. */
		respond_simple(c, NULL, 431, true, NULL);
		return;
	}
	memcpy(c->in + c->in_off + c->in_len, d, len);
	c->in_len += len;
	conn_process(c);
}

static bool conn_eof(struct proa_protocol *p)
{
	struct conn *c = proa_container_of(p, struct conn, proto);

	if (c->state == C_LINGER)
		return false; /* all read: close now */
	/* The client is done sending; answer every request it sent, then
	 * close (a half-closed client still reads: "curl | head" style).
	 * process_bytes() closes once the input holds no whole request. */
	c->eof_in = true;
	if (c->state == C_HEAD && c->body != B_NONE)
		return false; /* a body cut short: nothing more to answer */
	if (c->state == C_HEAD && !c->writing_paused &&
	    proa_transport_write_buffer_size(c->t) <= WRITE_HIGH)
		return false; /* what is buffered is all answered, or half a
				 head: the answers flush, then the close */
	return true;
}

static void conn_lost(struct proa_protocol *p, int err)
{
	struct conn *c = proa_container_of(p, struct conn, proto);
	struct shard *sh = c->sh;

	(void)err;
	proa_timer_cancel(&c->timer);
	proa_list_del(&c->link);
	sh->nconns--;
	c->t = NULL;
	c->state = C_CLOSING;
	file_waiter_cancel(&c->fw);
	/* The transport gave back what it held before this call; a read may
	 * still be writing into a slot: free when it completes. */
	if (!conn_quiet(c)) {
		c->lost = true;
		if (c->rd_slot)
			proa_op_cancel(&c->rd);
	} else {
		file_done(c);
		conn_free(c);
	}
	if (sh->draining)
		shard_check_drained(sh);
}

static void conn_pause_writing(struct proa_protocol *p)
{
	proa_container_of(p, struct conn, proto)->writing_paused = true;
}

static void conn_resume_writing(struct proa_protocol *p)
{
	struct conn *c = proa_container_of(p, struct conn, proto);

	c->writing_paused = false;
	if (c->state == C_SENDING)
		send_file_next(c);
	else if (c->state == C_HEAD && c->in_len > 0)
		conn_process(c);
}

static const struct proa_protocol_ops conn_ops = {
    .connection_made = conn_made,
    .data_received = conn_data,
    .eof_received = conn_eof,
    .connection_lost = conn_lost,
    .pause_writing = conn_pause_writing,
    .resume_writing = conn_resume_writing,
};

static struct shard *shard_of(struct server *srv, struct proa_loop *loop)
{
	for (unsigned i = 0; i < srv->nshards; i++)
		if (srv->shards[i].loop == loop)
			return &srv->shards[i];
	return NULL;
}

static struct proa_protocol *conn_factory(void *arg, struct proa_transport *t)
{
	struct server *srv = arg;
	struct shard *sh = shard_of(srv, proa_transport_loop(t));
	struct conn *c;

	if (!sh || sh->draining)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL; /* refused: closed at once */
	c->proto.ops = &conn_ops;
	c->sh = sh;
	c->fw.done = lookup_done;
	proa_list_add_tail(&sh->conns, &c->link);
	sh->nconns++;
	return &c->proto;
}

/* ---- shutdown ---------------------------------------------------------- */

static void shard_check_drained(struct shard *sh)
{
	struct server *srv = sh->srv;

	/* A lookup in flight holds an io_uring op or a pool job, which the
	 * loop cannot close under: wait for it too (file_cache.idle calls
	 * again). */
	if (sh->drained || sh->nconns > 0 || sh->cache.nlookups > 0)
		return;
	if (sh->log.fd >= 0) {
		log_flush(sh);
		if (sh->log.writing || sh->log.len[sh->log.cur] > 0)
			return; /* log_written() calls again */
		proa_timer_cancel(&sh->log.flush_timer);
	}
	sh->drained = true;
	proa_loop_group_drained(srv->group, sh->idx);
}

/*
 * On the shard's loop, before the server says it is ready: make the
 * loop's pool now, so that the first cache miss does not pay for it on
 * the loop thread (placing the workers reads the CPU topology from /sys
 * and /proc).  Without a pool, lookups that need it (all of them on epoll,
 * listings everywhere) answer 503; the server still runs.
 */
static void shard_warm(void *arg)
{
	struct shard *sh = arg;
	struct proa_pool *pool;
	int ret = proa_pool_default(&pool, sh->loop);

	if (ret < 0)
		fprintf(stderr, "%s: no thread pool for file lookups: %s\n",
			prog, proa_strerror(ret));
	sem_post(sh->warmed);
}

static void cache_idle(void *arg)
{
	struct shard *sh = arg;

	if (sh->draining)
		shard_check_drained(sh);
}

/* The loop group's drain function, on loop @i (its listener is closed
 * already): stop taking requests, close idle connections, let the others
 * finish the response they are sending. */
static void shard_drain(struct proa_loop_group *g, unsigned i, void *arg)
{
	struct server *srv = arg;
	struct shard *sh = &srv->shards[i];
	struct proa_link *l, *next;

	(void)g;
	sh->draining = true;
	file_cache_close_soon(&sh->cache);
	for (l = sh->conns.next; l != &sh->conns; l = next) {
		struct conn *c = proa_container_of(l, struct conn, link);

		next = l->next;
		c->close_after = true;
		if (c->state == C_HEAD)
			conn_close(c);
	}
	shard_check_drained(sh);
}

/* ---- options and main --------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: proa-httpd [options] [DIR] [options]\n"
		"Serve the files under DIR (default: the current directory) "
		"over HTTP/1.1.\n"
		"\n"
		"  --host HOST           address or name to listen on "
		"(127.0.0.1; 0.0.0.0 or ::\n"
		"                        for all; a name: its first address "
		"that binds)\n"
		"  --port PORT           port (8080; 0: any free port)\n"
		"  --loops N             loops, one per CPU, SO_REUSEPORT "
		"(1)\n"
		"  --max-conns N         connections per loop; over it, new "
		"ones are\n"
		"                        accepted and closed at once (10000; "
		"0: no cap)\n"
		"  --header-timeout MS   a request head (and a TLS handshake) "
		"must arrive\n"
		"                        within this (10000): 408\n"
		"  --body-timeout MS     a request body's next bytes must "
		"arrive within\n"
		"                        this (10000), or the connection is "
		"closed\n"
		"  --idle-timeout MS     keep-alive connections idle this long "
		"are closed (15000)\n"
		"  --write-timeout MS    a reader taking nothing this long is "
		"cut off (30000)\n"
		"  --body-max BYTES      largest request body read and "
		"discarded (1048576): 413\n"
		"  --tls CERT KEY        serve HTTPS with this PEM certificate "
		"and key\n"
		"  --access-log FILE     append one line per request (off)\n"
		"  --send-path WAY       how bodies over 8 KiB leave: auto "
		"(files up to 64 KiB\n"
		"                        from memory, bigger ones spliced), "
		"splice, map or\n"
		"                        read (to compare them; TLS always "
		"reads)\n"
		"  --user NAME           once listening, drop root for "
		"NAME's uid, gid and\n"
		"                        groups (as root, files only other "
		"users may read are\n"
		"                        served: mode o+r, in directories "
		"o+x)\n"
		"  --list, --no-list     list a directory that has no "
		"index.html (names\n"
		"                        starting with '.' left out), or "
		"answer 403 (the\n"
		"                        default; ./run.sh lists)\n"
		"  --quiet               print nothing but errors\n"
		"  -h, --help            this text\n"
		"\n"
		"Prints \"serving DIR at http://HOST:PORT/\" once listening; "
		"SIGINT or SIGTERM\n"
		"finish the responses in flight, then exit 0.\n"
		"\n"
		"Started by systemd socket activation (LISTEN_PID and "
		"LISTEN_FDS, one\n"
		"socket), it serves the socket it was given, TCP or UNIX, and "
		"--host and\n"
		"--port are not used.\n");
}

static bool bad_usage(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "%s: ", prog);
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized) */
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\ntry '%s --help'\n", prog);
	va_end(ap);
	return false;
}

static bool parse_u64(const char *opt, const char *s, uint64_t min,
		      uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	if (!s || !*s || *s == '-')
		return bad_usage("%s: bad value '%s'", opt, s ? s : "");
	v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return bad_usage("%s: bad value '%s' (%llu to %llu)", opt, s,
				 (unsigned long long)min,
				 (unsigned long long)max);
	*out = v;
	return true;
}

static bool parse_args(int argc, char **argv, struct config *cfg)
{
	enum {
		O_HOST = 256,
		O_PORT,
		O_LOOPS,
		O_MAXC,
		O_HT,
		O_BT,
		O_IT,
		O_WT,
		O_BODY,
		O_TLS,
		O_LOG,
		O_SEND,
		O_USER,
		O_LIST,
		O_NOLIST,
		O_QUIET
	};
	static const struct option opts[] = {
	    {"host", required_argument, NULL, O_HOST},
	    {"port", required_argument, NULL, O_PORT},
	    {"loops", required_argument, NULL, O_LOOPS},
	    {"max-conns", required_argument, NULL, O_MAXC},
	    {"header-timeout", required_argument, NULL, O_HT},
	    {"body-timeout", required_argument, NULL, O_BT},
	    {"idle-timeout", required_argument, NULL, O_IT},
	    {"write-timeout", required_argument, NULL, O_WT},
	    {"body-max", required_argument, NULL, O_BODY},
	    {"tls", required_argument, NULL, O_TLS},
	    {"access-log", required_argument, NULL, O_LOG},
	    {"send-path", required_argument, NULL, O_SEND},
	    {"user", required_argument, NULL, O_USER},
	    {"list", no_argument, NULL, O_LIST},
	    {"no-list", no_argument, NULL, O_NOLIST},
	    {"quiet", no_argument, NULL, O_QUIET},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	uint64_t v = 0;
	int ch;

	*cfg = (struct config){
	    .root = ".",
	    .host = "127.0.0.1",
	    .port = 8080,
	    .loops = 1,
	    .max_conns = 10000,
	    .header_timeout_ns = 10000000000ull,
	    .body_timeout_ns = 10000000000ull,
	    .idle_timeout_ns = 15000000000ull,
	    .write_timeout_ns = 30000000000ull,
	    .body_max = 1048576,
	};
	opterr = 0;
	/* No '+': GNU getopt permutes, so options may follow DIR as the
	 * README writes it ("[DIR] [--port N]").  The leading ':' makes a
	 * missing value ':' rather than '?' (unknown option). */
	/* NOLINTNEXTLINE(concurrency-mt-unsafe): main, before any thread */
	while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (ch) {
		case O_HOST:
			if (!*optarg)
				return bad_usage("--host: empty");
			cfg->host = optarg;
			break;
		case O_PORT:
			if (!parse_u64("--port", optarg, 0, 65535, &v))
				return false;
			cfg->port = (uint16_t)v;
			break;
		case O_LOOPS:
			if (!parse_u64("--loops", optarg, 1, MAX_LOOPS, &v))
				return false;
			cfg->loops = (unsigned)v;
			break;
		case O_MAXC:
			if (!parse_u64("--max-conns", optarg, 0, 1000000, &v))
				return false;
			cfg->max_conns = (unsigned)v;
			break;
		case O_HT:
		case O_BT:
		case O_IT:
		case O_WT:
			if (!parse_u64(ch == O_HT   ? "--header-timeout"
				       : ch == O_BT ? "--body-timeout"
				       : ch == O_IT ? "--idle-timeout"
						    : "--write-timeout",
				       optarg, 1, 86400000ull, &v))
				return false;
			v *= 1000000ull;
			if (ch == O_HT)
				cfg->header_timeout_ns = v;
			else if (ch == O_BT)
				cfg->body_timeout_ns = v;
			else if (ch == O_IT)
				cfg->idle_timeout_ns = v;
			else
				cfg->write_timeout_ns = v;
			break;
		case O_BODY:
			if (!parse_u64("--body-max", optarg, 0,
				       UINT64_C(1) << 40, &v))
				return false;
			cfg->body_max = v;
			break;
		case O_TLS:
			if (optind >= argc || argv[optind][0] == '-')
				return bad_usage("--tls needs CERT and KEY");
			cfg->tls_cert = optarg;
			cfg->tls_key = argv[optind++];
			break;
		case O_LOG:
			cfg->access_log = optarg;
			break;
		case O_SEND:
			if (!strcmp(optarg, "auto"))
				cfg->send_path = SEND_AUTO;
			else if (!strcmp(optarg, "splice"))
				cfg->send_path = SEND_SPLICE;
			else if (!strcmp(optarg, "map"))
				cfg->send_path = SEND_MAP;
			else if (!strcmp(optarg, "read"))
				cfg->send_path = SEND_READ;
			else
				return bad_usage("--send-path: '%s' is not "
						 "auto, splice, map or read",
						 optarg);
			break;
		case O_USER:
			if (!*optarg)
				return bad_usage("--user: empty");
			cfg->user = optarg;
			break;
		case O_LIST:
			cfg->list = true;
			break;
		case O_NOLIST:
			cfg->list = false;
			break;
		case O_QUIET:
			cfg->quiet = true;
			break;
		case 'h':
			usage(stdout);
			exit(0); /* NOLINT(concurrency-mt-unsafe) */
		case ':':
			return bad_usage("%s needs a value", argv[optind - 1]);
		default:
			return bad_usage("unknown option '%s'",
					 argv[optind - 1]);
		}
	}
	if (optind < argc)
		cfg->root = argv[optind++];
	if (optind < argc)
		return bad_usage("one directory only ('%s' is extra)",
				 argv[optind]);
	return true;
}

static int shards_init(struct server *srv, struct proa_loop_group *g)
{
	srv->nshards = proa_loop_group_size(g);
	srv->group = g;
	srv->shards = calloc(srv->nshards, sizeof(*srv->shards));
	if (!srv->shards)
		return -ENOMEM;
	for (unsigned i = 0; i < srv->nshards; i++) {
		struct shard *sh = &srv->shards[i];

		sh->srv = srv;
		sh->idx = i;
		sh->loop = proa_loop_group_loop(g, i);
		proa_list_init(&sh->conns);
		sh->log.fd = srv->logfd;
		if (file_cache_init(&sh->cache, sh->loop, srv->rootfd, 4096,
				    64u << 20) < 0)
			return -ENOMEM;
		sh->cache.idle = cache_idle;
		sh->cache.idle_arg = sh;
		sh->send_path = srv->cfg.send_path;
		if (srv->tls && (sh->send_path == SEND_SPLICE ||
				 sh->send_path == SEND_MAP)) {
			fail("--send-path splice or map: not with --tls, "
			     "which encrypts from its own reads");
			return -EINVAL;
		}
		if (sh->send_path == SEND_SPLICE &&
		    !proa_loop_feature(sh->loop, PROA_FEAT_OP_SPLICE)) {
			fail("--send-path splice: this loop cannot splice "
			     "(backend %s)",
			     proa_loop_backend(sh->loop));
			return -EINVAL;
		}
		if (srv->tls) {
			/* TLS copies what it encrypts: the cache's copy
			 * for small files, reads for the rest. */
			if (sh->send_path == SEND_AUTO)
				sh->send_path = SEND_MAP;
		} else if (sh->send_path == SEND_AUTO &&
			   !proa_loop_feature(sh->loop, PROA_FEAT_OP_SPLICE)) {
			sh->send_path = SEND_MAP;
		}
		sh->cache.map_files = sh->send_path == SEND_MAP && !srv->tls;
		if (srv->logfd >= 0) {
			sh->log.buf[0] = malloc(LOG_BUF);
			sh->log.buf[1] = malloc(LOG_BUF);
			if (!sh->log.buf[0] || !sh->log.buf[1])
				return -ENOMEM;
		}
	}
	return 0;
}

/* Run shard_warm() on every loop and wait for them (10 s at most). */
static bool warm_shards(struct server *srv)
{
	struct timespec deadline;
	unsigned posted = 0;
	sem_t warmed;

	if (sem_init(&warmed, 0, 0) < 0) {
		fail("sem_init: %s", proa_strerror(-errno));
		return false;
	}
	for (unsigned i = 0; i < srv->nshards; i++) {
		struct shard *sh = &srv->shards[i];

		sh->warmed = &warmed;
		if (proa_loop_call_soon_threadsafe(sh->loop, &sh->warm_h,
						   shard_warm, sh) == 0)
			posted++;
	}
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 10;
	for (unsigned i = 0; i < posted; i++) {
		while (sem_timedwait(&warmed, &deadline) < 0) {
			if (errno == EINTR)
				continue;
			fail("the loops did not start in 10 s");
			/* The posts still to come would find it gone. */
			_exit(1);
		}
	}
	sem_destroy(&warmed);
	return posted == srv->nshards;
}

static void shards_free(struct server *srv)
{
	for (unsigned i = 0; srv->shards && i < srv->nshards; i++) {
		struct shard *sh = &srv->shards[i];

		/* What the loop could not write before it stopped. */
		for (int b = 0; b < 2 && srv->logfd >= 0; b++) {
			int k = (sh->log.cur + 1 + b) % 2;

			if (sh->log.len[k] && write(srv->logfd, sh->log.buf[k],
						    sh->log.len[k]) < 0)
				sh->log.dropped++;
		}
		file_cache_destroy(&sh->cache);
		free(sh->log.buf[0]);
		free(sh->log.buf[1]);
		while (sh->free_in) {
			void *next;

			memcpy(&next, sh->free_in, sizeof(void *));
			free(sh->free_in);
			sh->free_in = next;
		}
	}
	free(srv->shards);
}

static void print_summary(const struct server *srv)
{
	uint64_t req = 0, by[6] = {0}, dropped = 0, hits = 0, misses = 0;

	for (unsigned i = 0; i < srv->nshards; i++) {
		const struct shard *sh = &srv->shards[i];

		req += sh->requests;
		for (int k = 0; k < 6; k++)
			by[k] += sh->responses_by_class[k];
		dropped += sh->log.dropped;
		hits += sh->cache.hits;
		misses += sh->cache.misses;
	}
	fprintf(stderr,
		"%s: %" PRIu64 " requests (2xx %" PRIu64 ", 3xx %" PRIu64
		", 4xx %" PRIu64 ", 5xx %" PRIu64 "), file cache %" PRIu64
		" hits %" PRIu64 " misses\n",
		prog, req, by[2], by[3], by[4], by[5], hits, misses);
	if (dropped)
		fprintf(stderr, "%s: access log: %" PRIu64 " lines lost\n",
			prog, dropped);
}

/*
 * Listen on --host: a name is resolved here, once, before any request
 * (the group binds numeric addresses only), and the first address that
 * can be bound is the one served, as a client tries them in turn.  The
 * address served goes to @host, numeric.  False after saying why.
 */
/*
 * --host as the library resolves names (proa_getaddrinfo(): "localhost"
 * is loopback even where /etc/hosts is missing, RFC 6761), on a loop of
 * main()'s own for the length of the call.
 */
static int resolve_host(const char *name, struct addrinfo **res)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE};
	struct proa_loop *loop = NULL;
	struct proa_future fut;
	void *v = NULL;
	int ret;

	ret = proa_loop_new(&loop, NULL);
	if (ret < 0)
		return ret;
	proa_future_init(&fut, loop);
	ret = proa_getaddrinfo(loop, name, NULL, &hints, &fut);
	if (ret == 0)
		ret = proa_loop_run_until_complete(loop, &fut);
	if (ret == 0)
		ret = proa_future_result(&fut, &v);
	proa_future_fini(&fut);
	/* A lookup that failed may leave the resolver's other query (A or
	 * AAAA) in flight: wind it down, or the close is refused and the
	 * loop leaks. */
	proa_loop_cancel_all(loop);
	proa_loop_run(loop, PROA_RUN_DEFAULT);
	if (proa_loop_free(loop) < 0)
		fail("cannot close the resolver's loop");
	*res = v;
	return ret;
}

static bool listen_host(struct proa_loop_group *g, const struct config *cfg,
			const struct proa_server_options *sopt,
			struct server *srv, char *host, size_t hostlen)
{
	struct addrinfo *res = NULL, *a;
	int ret, first_err = 0;
	bool ok;

	ret = resolve_host(cfg->host, &res);
	if (ret < 0) {
		fail("cannot resolve --host '%s': %s", cfg->host,
		     proa_strerror(ret));
		return false;
	}
	for (a = res; a; a = a->ai_next) {
		if ((a->ai_family != AF_INET && a->ai_family != AF_INET6) ||
		    getnameinfo(a->ai_addr, a->ai_addrlen, host,
				(socklen_t)hostlen, NULL, 0, NI_NUMERICHOST))
			continue;
		ret = proa_loop_group_listen(g, host, cfg->port,
					     PROA_GROUP_REUSEPORT, sopt,
					     conn_factory, srv);
		if (ret == 0)
			break;
		/* The first address's error is the one worth telling. */
		if (!first_err)
			first_err = ret;
	}
	ok = a != NULL;
	proa_freeaddrinfo(res);
	if (ok)
		return true;
	fail("cannot listen on %s port %u: %s", cfg->host, (unsigned)cfg->port,
	     first_err ? proa_strerror(first_err) : "no usable address");
	return false;
}

/*
 * Serve the socket a service manager passed (LISTEN_FDS), on every loop.
 * Its address goes to @host, numeric ("unix:PATH" for a UNIX socket),
 * and *@port.  False after saying why.
 */
static bool listen_passed(struct proa_loop_group *g, int fd,
			  const struct proa_server_options *sopt,
			  struct server *srv, char *host, size_t hostlen)
{
	struct sockaddr_storage ss = {0};
	socklen_t len = sizeof(ss);
	int ret;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		ret = -errno;
	else
		ret = proa_loop_group_listen_fd(g, fd, PROA_GROUP_REUSEPORT,
						sopt, conn_factory, srv);
	if (ret < 0) {
		fail("cannot serve the socket passed in LISTEN_FDS (fd %d): %s",
		     fd, proa_strerror(ret));
		return false;
	}
	if (ss.ss_family == AF_UNIX)
		snprintf(host, hostlen, "unix:%s",
			 ((struct sockaddr_un *)&ss)->sun_path);
	else if (getnameinfo((struct sockaddr *)&ss, len, host,
			     (socklen_t)hostlen, NULL, 0, NI_NUMERICHOST))
		snprintf(host, hostlen, "?");
	return true;
}

/* Who --user is: looked up before any thread exists (NSS may load
 * modules), used after binding by drop_root(). */
struct user_ids {
	uid_t uid;
	gid_t gid;
	gid_t groups[64];
	int ngroups;
};

static bool user_lookup(const char *name, struct user_ids *u)
{
	/* NOLINTNEXTLINE(concurrency-mt-unsafe): main, before any thread */
	struct passwd *pw = getpwnam(name);

	if (!pw)
		return bad_usage("--user: no user '%s'", name);
	u->uid = pw->pw_uid;
	u->gid = pw->pw_gid;
	u->ngroups = (int)(sizeof(u->groups) / sizeof(u->groups[0]));
	if (getgrouplist(name, pw->pw_gid, u->groups, &u->ngroups) < 0)
		return bad_usage("--user: '%s' is in more than %zu groups",
				 name,
				 sizeof(u->groups) / sizeof(u->groups[0]));
	return true;
}

/*
 * Become --user once the port is bound (it may be below 1024) and the
 * root, log and key are open.  glibc applies setgroups/setgid/setuid to
 * every thread of the process, the loops' included.  Groups first:
 * after setuid() nothing else may be changed.  False after saying why:
 * the server must not go on as root when asked not to.
 */
static bool drop_root(const char *name, const struct user_ids *u)
{
	if (setgroups((size_t)u->ngroups, u->groups) < 0 ||
	    setgid(u->gid) < 0 || setuid(u->uid) < 0) {
		/* NOLINTNEXTLINE(concurrency-mt-unsafe): one caller */
		fail("--user %s: %s", name, strerror(errno));
		return false;
	}
	if (getuid() != u->uid || geteuid() != u->uid || getegid() != u->gid ||
	    (u->uid != 0 && setuid(0) == 0)) {
		fail("--user %s: privileges were not dropped", name);
		return false;
	}
	return true;
}

int main(int argc, char **argv)
{
	struct server srv = {.rootfd = -1, .logfd = -1};
	struct config *cfg = &srv.cfg;
	struct proa_loop_group_options gopt = {0};
	struct proa_server_options sopt = {0};
	struct proa_loop_group *g = NULL;
	char rootpath[PATH_MAX], host[NI_MAXHOST];
	struct user_ids user = {0};
	sigset_t sigs;
	int ret, signo, status = 1, passed_fd = -1;

	if (!parse_args(argc, argv, cfg))
		return 2;
	/* Before any thread: it reads and cleans the environment. */
	ret = proa_listen_fds(1);
	if (ret < 0) {
		fail("socket activation (LISTEN_PID, LISTEN_FDS): %s",
		     proa_strerror(ret));
		return 1;
	}
	if (ret > 1) {
		fail("socket activation passed %d sockets; proa-httpd serves "
		     "one",
		     ret);
		return 1;
	}
	if (ret == 1)
		passed_fd = PROA_LISTEN_FDS_START;
	files_fault_from_env();
	if (cfg->user && !user_lookup(cfg->user, &user))
		return 2;
	ret = files_root_open(cfg->root, &srv.rootfd);
	if (ret < 0) {
		fail("cannot serve '%s': %s", cfg->root,
		     ret == -ENOSYS
			 ? "this kernel has no openat2 (Linux 5.6+)"
			 : strerror(-ret)); /* NOLINT(concurrency-mt-unsafe) */
		return 1;
	}
	if (!realpath(cfg->root, rootpath))
		snprintf(rootpath, sizeof(rootpath), "%s", cfg->root);
	if (cfg->access_log) {
		srv.logfd =
		    open(cfg->access_log,
			 O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (srv.logfd < 0) {
			/* NOLINTNEXTLINE(concurrency-mt-unsafe): one thread */
			const char *why = strerror(errno);

			fail("cannot open access log '%s': %s", cfg->access_log,
			     why);
			goto out;
		}
	}
	if (cfg->tls_cert) {
		struct proa_tls_options to = {.cert_file = cfg->tls_cert,
					      .key_file = cfg->tls_key,
					      .alpn = "http/1.1"};
		char err[512];

		ret = proa_tls_context_new(&srv.tls, PROA_TLS_SERVER, &to, err,
					   sizeof(err));
		if (ret < 0) {
			fail("TLS: %s", err);
			goto out;
		}
	}

	/* Blocked before any thread exists, so that only sigwait() below
	 * sees them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	gopt.nloops = cfg->loops;
	ret = proa_loop_group_new(&g, &gopt);
	if (ret < 0) {
		fail("cannot start %u loops: %s", cfg->loops,
		     proa_strerror(ret));
		goto out;
	}
	ret = shards_init(&srv, g);
	if (ret < 0) {
		if (ret == -ENOMEM)
			fail("out of memory");
		goto out;
	}
	sopt.tls = srv.tls;
	/* A handshake is a request head's wait: a client that sends nothing
	 * or half a ClientHello must not hold a slot longer than one that
	 * sends half a head. */
	sopt.tls_handshake_timeout_ns = cfg->header_timeout_ns;
	/* Not sopt.reuse_port: the group shares the port between its own
	 * loops only, so a second server on it fails (EADDRINUSE) rather
	 * than taking part of this one's connections. */
	sopt.max_connections = cfg->max_conns;
	sopt.transport.idle_timeout_ns = 0; /* ours: header and idle */
	sopt.transport.write_timeout_ns = cfg->write_timeout_ns;
	sopt.transport.write_high = WRITE_HIGH;
	sopt.transport.write_low = WRITE_LOW;
	/* The bound on input held per connection (see IN_CAP). */
	sopt.transport.recv_oneshot = true;
	if (!warm_shards(&srv))
		goto out;
	if (passed_fd >= 0
		? !listen_passed(g, passed_fd, &sopt, &srv, host, sizeof(host))
		: !listen_host(g, cfg, &sopt, &srv, host, sizeof(host)))
		goto out;
	if (cfg->user && !drop_root(cfg->user, &user))
		goto out;
	if (!cfg->quiet && strncmp(host, "unix:", 5) == 0) {
		printf("%s: serving %s at %s (UNIX socket)\n", prog, rootpath,
		       host);
		fflush(stdout);
	} else if (!cfg->quiet) {
		bool v6 = strchr(host, ':') != NULL;

		printf("%s: serving %s at %s://%s%s%s:%u/\n", prog, rootpath,
		       srv.tls ? "https" : "http", v6 ? "[" : "", host,
		       v6 ? "]" : "", (unsigned)proa_loop_group_port(g));
		fflush(stdout);
	}
	do
		ret = sigwait(&sigs, &signo);
	while (ret == EINTR);
	/* Stops accepting on every loop, lets the requests under way finish,
	 * aborts what did not drain in time, joins the loops: their shards
	 * are ours after it. */
	ret = proa_loop_group_shutdown(g, SHUTDOWN_GRACE_S * 1000000000ull,
				       shard_drain, &srv);
	if (ret > 0)
		fprintf(stderr,
			"%s: %d loop(s) still busy after %u s: aborted\n", prog,
			ret, SHUTDOWN_GRACE_S);
	ret = proa_loop_group_free(g);
	g = NULL;
	if (ret < 0) {
		fail("stopping the loops: %s", proa_strerror(ret));
		goto out;
	}
	if (!cfg->quiet)
		print_summary(&srv);
	status = 0;
out:
	if (g)
		proa_loop_group_free(g);
	shards_free(&srv);
	proa_tls_context_free(srv.tls);
	if (srv.logfd >= 0)
		close(srv.logfd);
	if (srv.rootfd >= 0)
		close(srv.rootfd);
	return status;
}
