/* SPDX-License-Identifier: MIT */
/*
 * perf/echo/echo_load.c - echo-load: the one load generator for every echo
 * server (proa's and the peers').
 *
 * One thread, one epoll set.  Every connection keeps `depth` messages of
 * `size` bytes in flight: a message is done when `size` bytes of it have
 * come back, and then the next one is sent.  Every byte that comes back is
 * checked: message k of connection c is the window of a fixed random
 * pattern that starts at shift(c, k), so a lost, repeated, reordered or
 * corrupted byte is caught.  After the warm-up the messages done in
 * `duration` seconds are counted, with the server's CPU time (and its
 * read/write system calls) from /proc/PID when --pid is given.  Then no new
 * message is started and every one in flight must come back (the drain), so
 * a server that drops data fails instead of looking slow.  Prints one JSON
 * line; exits 1 on a wrong echo or a lost connection, 2 on bad arguments.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define PROG "echo-load"
#define SHIFTS 4093 /* prime: distinct windows of the pattern */
#define RBUF_SIZE (256 * 1024)
#define MAX_IOV 1024
#define MAX_EVENTS 256
#define DRAIN_SECS 30.0
#define MAX_SIZE (64L * 1024 * 1024)

struct opts {
	const char *host;
	const char *port;
	long conns;
	long size;
	long depth;
	double warmup;
	double duration;
	long pid; /* 0: none */
};

struct lconn {
	int fd;
	int id;
	bool want_out;	 /* waiting for EPOLLOUT */
	uint64_t sbytes; /* bytes written */
	uint64_t rbytes; /* bytes read back and checked */
};

struct server_sample {
	bool have_cpu;
	bool have_io;
	unsigned long long utime; /* clock ticks */
	unsigned long long stime;
	unsigned long long syscr;
	unsigned long long syscw;
};

static struct opts o;
static unsigned char *pattern;
static unsigned char rbuf[RBUF_SIZE];
static uint64_t done; /* messages completed, all phases */
static bool draining;

static void usage(FILE *f)
{
	fprintf(
	    f, "usage: " PROG " --port N [options]\n"
	       "Drives a TCP echo server and checks every echoed byte.\n"
	       "  --host H          server address (default 127.0.0.1)\n"
	       "  --port N          server port (required)\n"
	       "  --connections N   connections (default 16)\n"
	       "  --size BYTES      message size (default 64)\n"
	       "  --depth N         messages in flight per connection; 1 is\n"
	       "                    ping-pong (default 1)\n"
	       "  --warmup SECS     warm-up before measuring (default 1)\n"
	       "  --duration SECS   measured time (default 3)\n"
	       "  --pid PID         the server's pid: its CPU time (and "
	       "read/write\n"
	       "                    syscalls) over the measured time\n"
	       "Prints one JSON line: connections, size, depth, seconds, "
	       "messages,\n"
	       "msgs_per_s, mbytes_per_s (echoed payload, one way, 10^6 B/s),\n"
	       "server_{cpu,user,sys}_us_per_msg and "
	       "server_rw_syscalls_per_msg\n"
	       "(null without --pid or when unreadable).\n"
	       "Exit status: 0 ok, 1 wrong echo / connection failure, 2 bad "
	       "arguments.\n");
}

__attribute__((format(printf, 1, 2), noreturn)) static void
bad_arg(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(" PROG " --help for usage)\n");
	exit(2);
}

static long parse_long(const char *opt, const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		bad_arg("%s: bad value '%s' (an integer from %ld to %ld)", opt,
			s, min, max);
	return v;
}

static double parse_secs(const char *opt, const char *s, bool zero_ok)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0.0) || v > 1e6 ||
	    (!zero_ok && v == 0.0))
		bad_arg("%s: bad number of seconds '%s'", opt, s);
	return v;
}

static void parse_args(int argc, char **argv)
{
	o.host = "127.0.0.1";
	o.port = NULL;
	o.conns = 16;
	o.size = 64;
	o.depth = 1;
	o.warmup = 1.0;
	o.duration = 3.0;
	o.pid = 0;
	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i];
		const char *val;

		if (!strcmp(opt, "--help") || !strcmp(opt, "-h")) {
			usage(stdout);
			exit(0);
		}
		if (strncmp(opt, "--", 2) != 0)
			bad_arg("unexpected argument '%s'", opt);
		if (i + 1 >= argc)
			bad_arg("%s needs a value", opt);
		val = argv[++i];
		if (!strcmp(opt, "--host"))
			o.host = val;
		else if (!strcmp(opt, "--port") &&
			 parse_long(opt, val, 1, 65535))
			o.port = val;
		else if (!strcmp(opt, "--connections"))
			o.conns = parse_long(opt, val, 1, 1000000);
		else if (!strcmp(opt, "--size"))
			o.size = parse_long(opt, val, 1, MAX_SIZE);
		else if (!strcmp(opt, "--depth"))
			o.depth = parse_long(opt, val, 1, 1000000);
		else if (!strcmp(opt, "--warmup"))
			o.warmup = parse_secs(opt, val, true);
		else if (!strcmp(opt, "--duration"))
			o.duration = parse_secs(opt, val, false);
		else if (!strcmp(opt, "--pid"))
			o.pid = parse_long(opt, val, 1, INT_MAX);
		else
			bad_arg("unknown option '%s'", opt);
	}
	if (!o.port)
		bad_arg("--port is required");
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- the server's CPU time and system calls, from /proc ---------------- */

static bool read_file(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return false;
	n = fread(buf, 1, len - 1, f);
	fclose(f);
	buf[n] = '\0';
	return n > 0;
}

static void sample_server(struct server_sample *s, bool must)
{
	char path[64];
	char buf[4096];
	char *p;
	char *q;

	memset(s, 0, sizeof(*s));
	if (!o.pid)
		return;
	snprintf(path, sizeof(path), "/proc/%ld/stat", o.pid);
	/* Fields after the ")" of comm start at 3; utime is 14, stime 15. */
	if (read_file(path, buf, sizeof(buf)) && (p = strrchr(buf, ')'))) {
		int field = 2;

		p++;
		while (field < 13 && *p) {
			p += strspn(p, " ");
			p += strcspn(p, " ");
			field++;
		}
		if (sscanf(p, "%llu %llu", &s->utime, &s->stime) == 2)
			s->have_cpu = true;
	}
	if (!s->have_cpu && must) {
		fprintf(stderr, PROG ": cannot read %s (is pid %ld running?)\n",
			path, o.pid);
		exit(1);
	}
	snprintf(path, sizeof(path), "/proc/%ld/io", o.pid);
	if (read_file(path, buf, sizeof(buf))) {
		p = strstr(buf, "syscr:");
		q = strstr(buf, "syscw:");
		if (p && q && sscanf(p, "syscr: %llu", &s->syscr) == 1 &&
		    sscanf(q, "syscw: %llu", &s->syscw) == 1)
			s->have_io = true;
	}
}

/* ---- connections ------------------------------------------------------- */

static void make_pattern(void)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;
	size_t len = (size_t)o.size + SHIFTS;

	pattern = malloc(len);
	if (!pattern) {
		fprintf(stderr, PROG ": out of memory\n");
		exit(1);
	}
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		pattern[i] = (unsigned char)(x >> 24);
	}
}

/* Where message k of connection c starts in the pattern. */
static const unsigned char *msg_bytes(const struct lconn *c, uint64_t k)
{
	uint64_t h = (uint64_t)c->id * 2654435761u + k * 40503u;

	return pattern + h % SHIFTS;
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur < (rlim_t)o.conns + 64) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int connect_one(const struct addrinfo *ai)
{
	int one = 1;
	int fd;

	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	while (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		if (errno != EINTR) {
			int e = errno;

			close(fd);
			errno = e;
			return -1;
		}
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

static struct lconn *connect_all(int ep)
{
	struct addrinfo hints = {0};
	struct addrinfo *ai;
	struct lconn *cs;
	int ret;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	ret = getaddrinfo(o.host, o.port, &hints, &ai);
	if (ret) {
		fprintf(stderr, PROG ": %s: %s\n", o.host, gai_strerror(ret));
		exit(1);
	}
	cs = calloc((size_t)o.conns, sizeof(*cs));
	if (!cs) {
		fprintf(stderr, PROG ": out of memory\n");
		exit(1);
	}
	for (long i = 0; i < o.conns; i++) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs[i]};

		cs[i].id = (int)i;
		cs[i].fd = connect_one(ai);
		if (cs[i].fd < 0) {
			fprintf(stderr,
				PROG ": connection %ld of %ld to %s:%s: %s\n",
				i + 1, o.conns, o.host, o.port,
				strerror(errno));
			exit(1);
		}
		if (epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev) < 0) {
			perror(PROG ": epoll_ctl");
			exit(1);
		}
	}
	freeaddrinfo(ai);
	return cs;
}

static void set_out(int ep, struct lconn *c, bool on)
{
	struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0),
				 .data.ptr = c};

	if (c->want_out == on)
		return;
	c->want_out = on;
	if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
		perror(PROG ": epoll_ctl");
		exit(1);
	}
}

/* Writes up to the send limit: depth messages ahead of the echo. */
static void do_send(int ep, struct lconn *c)
{
	uint64_t size = (uint64_t)o.size;
	uint64_t limit = (c->rbytes / size + (uint64_t)o.depth) * size;
	struct iovec iov[MAX_IOV];

	if (draining) /* finish a partly sent message, start no new one */
		limit = (c->sbytes + size - 1) / size * size;
	while (c->sbytes < limit) {
		uint64_t pos = c->sbytes;
		int n = 0;
		ssize_t w;

		while (pos < limit && n < MAX_IOV) {
			uint64_t k = pos / size;
			uint64_t off = pos % size;

			iov[n].iov_base = (void *)(msg_bytes(c, k) + off);
			iov[n].iov_len = size - off;
			pos += size - off;
			n++;
		}
		w = writev(c->fd, iov, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				set_out(ep, c, true);
				return;
			}
			fprintf(stderr,
				PROG ": connection %d: write: %s (server "
				     "closed it?)\n",
				c->id, strerror(errno));
			exit(1);
		}
		c->sbytes += (uint64_t)w;
		if (c->sbytes < pos) {
			set_out(ep, c, true);
			return;
		}
	}
	set_out(ep, c, false);
}

static void mismatch(const struct lconn *c, const unsigned char *got,
		     const unsigned char *want, size_t len)
{
	size_t i = 0;

	while (i < len && got[i] == want[i])
		i++;
	fprintf(stderr,
		PROG ": wrong echo on connection %d: byte %" PRIu64
		     " of the stream (message %" PRIu64 ", offset %" PRIu64
		     ") is 0x%02x, expected 0x%02x\n",
		c->id, c->rbytes + i, (c->rbytes + i) / (uint64_t)o.size,
		(c->rbytes + i) % (uint64_t)o.size, got[i], want[i]);
	exit(1);
}

/* Checks rbuf[0, n) against what was sent and counts finished messages. */
static void check(struct lconn *c, size_t n)
{
	uint64_t size = (uint64_t)o.size;
	size_t at = 0;

	if (c->rbytes + n > c->sbytes) {
		fprintf(stderr,
			PROG ": wrong echo on connection %d: %" PRIu64
			     " bytes back, only %" PRIu64 " sent\n",
			c->id, c->rbytes + n, c->sbytes);
		exit(1);
	}
	while (at < n) {
		uint64_t k = c->rbytes / size;
		uint64_t off = c->rbytes % size;
		size_t m = (size_t)(size - off);
		const unsigned char *want = msg_bytes(c, k) + off;

		if (m > n - at)
			m = n - at;
		if (memcmp(rbuf + at, want, m) != 0)
			mismatch(c, rbuf + at, want, m);
		c->rbytes += m;
		at += m;
		if (c->rbytes % size == 0)
			done++;
	}
}

static void do_recv(int ep, struct lconn *c)
{
	for (;;) {
		ssize_t n = read(c->fd, rbuf, sizeof(rbuf));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			fprintf(stderr, PROG ": connection %d: read: %s\n",
				c->id, strerror(errno));
			exit(1);
		}
		if (n == 0) {
			fprintf(stderr,
				PROG ": connection %d: the server closed it "
				     "after echoing %" PRIu64 " of %" PRIu64
				     " bytes\n",
				c->id, c->rbytes, c->sbytes);
			exit(1);
		}
		check(c, (size_t)n);
		if ((size_t)n < sizeof(rbuf))
			break;
	}
	if (!c->want_out)
		do_send(ep, c);
}

static void on_event(int ep, struct lconn *c, unsigned int events)
{
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		do_recv(ep, c);
	if ((events & EPOLLOUT) && c->want_out)
		do_send(ep, c);
}

static bool all_back(const struct lconn *cs)
{
	for (long i = 0; i < o.conns; i++)
		if (cs[i].rbytes != cs[i].sbytes ||
		    cs[i].sbytes % (uint64_t)o.size)
			return false;
	return true;
}

static void report_stuck(const struct lconn *cs)
{
	long stuck = 0;

	for (long i = 0; i < o.conns; i++) {
		if (cs[i].rbytes == cs[i].sbytes)
			continue;
		if (stuck++ < 5)
			fprintf(stderr,
				PROG ": connection %ld: %" PRIu64
				     " bytes sent, %" PRIu64 " echoed\n",
				i, cs[i].sbytes, cs[i].rbytes);
	}
	fprintf(stderr,
		PROG ": wrong echo: %ld connection(s) still missing bytes %.0f "
		     "s after the end of the run\n",
		stuck, DRAIN_SECS);
	exit(1);
}

static void print_per_msg(const char *name, double v, bool have, bool last)
{
	if (have)
		printf("\"%s\":%.4f%s", name, v, last ? "" : ",");
	else
		printf("\"%s\":null%s", name, last ? "" : ",");
}

int main(int argc, char **argv)
{
	struct epoll_event events[MAX_EVENTS];
	struct server_sample s0;
	struct server_sample s1;
	struct lconn *cs;
	double t_start;
	double t_end;
	double t0 = 0;
	double t1 = 0;
	uint64_t done0 = 0;
	uint64_t msgs = 0;
	int phase = 0; /* 0 warm-up, 1 measuring, 2 draining */
	double tick;
	bool have_cpu;
	bool have_io;
	int ep;

	parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	make_pattern();
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0) {
		perror(PROG ": epoll_create1");
		return 1;
	}
	if (o.pid)
		sample_server(&s0, true); /* fail early on a wrong pid */
	cs = connect_all(ep);
	for (long i = 0; i < o.conns; i++)
		do_send(ep, &cs[i]);

	t_start = now();
	t_end = t_start + o.warmup;
	for (;;) {
		double t = now();
		int timeout;
		int n;

		if (t >= t_end) {
			if (phase == 0) {
				phase = 1;
				sample_server(&s0, true);
				t0 = now();
				done0 = done;
				t_end = t0 + o.duration;
				continue;
			}
			if (phase == 1) {
				t1 = now();
				msgs = done - done0;
				sample_server(&s1, true);
				phase = 2;
				draining = true;
				t_end = t1 + DRAIN_SECS;
				continue;
			}
			report_stuck(cs);
		}
		if (phase == 2 && all_back(cs))
			break;
		timeout = (int)((t_end - t) * 1000.0) + 1;
		n = epoll_wait(ep, events, MAX_EVENTS, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror(PROG ": epoll_wait");
			free(cs);
			return 1;
		}
		for (int i = 0; i < n; i++)
			on_event(ep, events[i].data.ptr, events[i].events);
	}
	for (long i = 0; i < o.conns; i++)
		close(cs[i].fd);
	free(cs);

	tick = (double)sysconf(_SC_CLK_TCK);
	have_cpu = s0.have_cpu && s1.have_cpu && msgs > 0 && tick > 0;
	have_io = s0.have_io && s1.have_io && msgs > 0;
	printf("{\"connections\":%ld,\"size\":%ld,\"depth\":%ld,"
	       "\"seconds\":%.4f,\"messages\":%" PRIu64 ",\"msgs_per_s\":%.1f,"
	       "\"mbytes_per_s\":%.3f,",
	       o.conns, o.size, o.depth, t1 - t0, msgs,
	       (double)msgs / (t1 - t0),
	       (double)msgs * (double)o.size / (t1 - t0) / 1e6);
	print_per_msg(
	    "server_cpu_us_per_msg",
	    have_cpu ? (double)(s1.utime + s1.stime - s0.utime - s0.stime) /
			   tick * 1e6 / (double)msgs
		     : 0,
	    have_cpu, false);
	print_per_msg("server_user_us_per_msg",
		      have_cpu ? (double)(s1.utime - s0.utime) / tick * 1e6 /
				     (double)msgs
			       : 0,
		      have_cpu, false);
	print_per_msg("server_sys_us_per_msg",
		      have_cpu ? (double)(s1.stime - s0.stime) / tick * 1e6 /
				     (double)msgs
			       : 0,
		      have_cpu, false);
	print_per_msg(
	    "server_rw_syscalls_per_msg",
	    have_io ? (double)(s1.syscr + s1.syscw - s0.syscr - s0.syscw) /
			  (double)msgs
		    : 0,
	    have_io, true);
	printf("}\n");
	return 0;
}
