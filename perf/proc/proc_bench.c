/* SPDX-License-Identifier: MIT */
/*
 * perf/proc/proc_bench.c - child processes and name lookups, proa against
 * its peers (perf/proc/run-proc makes the table).
 *
 *   proc-bench spawn IMPL WIDTH COUNT
 *       IMPL: proa (proa_spawn, exit as a completion), uv (libuv's
 *       uv_spawn, SIGCHLD and waitpid underneath), posix (posix_spawn and
 *       waitpid(-1), no loop).  COUNT runs of /bin/true, stdin /dev/null,
 *       stdout and stderr inherited, WIDTH alive at a time.  WIDTH 1
 *       gives the latency of one spawn+wait; more gives throughput.
 *   proc-bench dns IMPL WIDTH COUNT SERVER
 *       IMPL: cares (proa_getaddrinfo on c-ares) or pool
 *       (proa_getaddrinfo on the pool's DNS lane, getaddrinfo(3)).  COUNT
 *       lookups of distinct names (no cache helps), WIDTH in flight, of
 *       A records, answered by a stub this program runs on a thread at
 *       SERVER (an IPv4 address, port 53).  c-ares is pointed at it with
 *       proa_dns_configure(); getaddrinfo(3) reads /etc/resolv.conf, so
 *       for "pool" run-proc runs this in a mount namespace whose
 *       resolv.conf names SERVER.  No query leaves the machine.
 *
 * Prints one line as proa-bench does:
 *   {"bench":B,"param":"wN","impl":I,"value":V,"unit":U}
 * with B spawn_lat (us per spawn+wait, WIDTH 1) or spawn_tput (per s), or
 * dns_tput (lookups per s); spawn rows first print spawn_cpu: this
 * process's CPU time (user + system, children excluded) per spawn+wait.  Exit
 * 0; 1 if anything failed (a child that did not exit 0, a lookup that did not
 * give 127.0.0.1); 77 if IMPL is not built in.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <proa.h>

#ifdef PROA_PERF_HAVE_UV
#include <uv.h>
#endif

static char *true_argv[] = {"/bin/true", NULL};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct run {
	unsigned width, count;
	unsigned started, done, failed;
};

/* CPU time of this process alone (children excluded), in seconds: the
 * cost of spawning and waiting as the parent pays it, which the other
 * agents of a shared machine disturb less than wall time. */
static double self_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
	       ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) /
		   1e6;
}

static void report(const char *what, const struct run *r, const char *impl,
		   double secs, double cpu)
{
	if (strcmp(what, "spawn") == 0)
		printf("{\"bench\":\"spawn_cpu\",\"param\":\"w%u\",\"impl\":"
		       "\"%s\",\"value\":%.3f,\"unit\":\"us\"}\n",
		       r->width, impl, cpu * 1e6 / r->done);
	if (r->width == 1 && strcmp(what, "spawn") == 0)
		printf("{\"bench\":\"spawn_lat\",\"param\":\"w1\",\"impl\":"
		       "\"%s\",\"value\":%.3f,\"unit\":\"us\"}\n",
		       impl, secs * 1e6 / r->done);
	else
		printf("{\"bench\":\"%s_tput\",\"param\":\"w%u\",\"impl\":"
		       "\"%s\",\"value\":%.3f,\"unit\":\"%s/s\"}\n",
		       what, r->width, impl, r->done / secs,
		       strcmp(what, "spawn") == 0 ? "spawns" : "lookups");
}

/* ---- proa_spawn -------------------------------------------------------- */

struct proa_run {
	struct run r;
	struct proa_loop *loop;
};

static void proa_more(struct proa_run *pr);

static void proa_exited(struct proa_process *p, int code, int sig, void *arg)
{
	struct proa_run *pr = arg;

	pr->r.done++;
	if (code != 0 || sig != 0)
		pr->r.failed++;
	proa_process_close(p);
	proa_more(pr);
}

static void proa_more(struct proa_run *pr)
{
	struct proa_spawn_opts o;
	struct proa_process *p;
	int ret;

	memset(&o, 0, sizeof(o));
	o.argv = true_argv;
	o.stdio[0].kind = PROA_STDIO_DEVNULL;
	o.on_exit = proa_exited;
	o.arg = pr;
	while (pr->r.started < pr->r.count &&
	       pr->r.started - pr->r.done < pr->r.width) {
		ret = proa_spawn(&p, pr->loop, &o);
		if (ret < 0) {
			fprintf(stderr, "proa_spawn: %s\n", proa_strerror(ret));
			_exit(1); /* a benchmark: nothing to clean up */
		}
		pr->r.started++;
	}
}

static int spawn_proa(struct run *r, double *secs)
{
	struct proa_run pr = {.r = *r};
	double t0;
	int ret;

	ret = proa_loop_new(&pr.loop, NULL);
	if (ret < 0) {
		fprintf(stderr, "proa_loop_new: %s\n", proa_strerror(ret));
		return 1;
	}
	t0 = now_s();
	proa_more(&pr);
	ret = proa_loop_run(pr.loop, PROA_RUN_DEFAULT);
	*secs = now_s() - t0;
	*r = pr.r;
	return ret < 0 || proa_loop_free(pr.loop) < 0;
}

/* ---- libuv ------------------------------------------------------------- */

#ifdef PROA_PERF_HAVE_UV
struct uv_run_state {
	struct run r;
	uv_loop_t loop;
};

static void uv_more(struct uv_run_state *u);

static void uv_closed(uv_handle_t *h)
{
	free(h);
}

static void uv_exited(uv_process_t *p, int64_t status, int sig)
{
	struct uv_run_state *u = p->data;

	u->r.done++;
	if (status != 0 || sig != 0)
		u->r.failed++;
	uv_close((uv_handle_t *)p, uv_closed);
	uv_more(u);
}

static void uv_more(struct uv_run_state *u)
{
	uv_process_options_t o;
	uv_stdio_container_t io[3];
	uv_process_t *p;
	int ret;

	memset(&o, 0, sizeof(o));
	memset(io, 0, sizeof(io));
	io[0].flags = UV_IGNORE; /* /dev/null, as PROA_STDIO_DEVNULL */
	io[1].flags = UV_INHERIT_FD;
	io[1].data.fd = 1;
	io[2].flags = UV_INHERIT_FD;
	io[2].data.fd = 2;
	o.file = true_argv[0];
	o.args = true_argv;
	o.exit_cb = uv_exited;
	o.stdio = io;
	o.stdio_count = 3;
	while (u->r.started < u->r.count &&
	       u->r.started - u->r.done < u->r.width) {
		p = calloc(1, sizeof(*p));
		if (!p)
			_exit(1); /* a benchmark: nothing to clean up */
		p->data = u;
		ret = uv_spawn(&u->loop, p, &o);
		if (ret < 0) {
			fprintf(stderr, "uv_spawn: %s\n", uv_strerror(ret));
			_exit(1); /* a benchmark: nothing to clean up */
		}
		u->r.started++;
	}
}

static int spawn_uv(struct run *r, double *secs)
{
	struct uv_run_state *u = calloc(1, sizeof(*u));
	double t0;
	int ret;

	if (!u || uv_loop_init(&u->loop) < 0)
		return 1;
	u->r = *r;
	t0 = now_s();
	uv_more(u);
	uv_run(&u->loop, UV_RUN_DEFAULT);
	*secs = now_s() - t0;
	*r = u->r;
	ret = uv_loop_close(&u->loop) < 0;
	free(u);
	return ret;
}
#else
static int spawn_uv(struct run *r, double *secs)
{
	(void)r;
	(void)secs;
	fprintf(stderr, "proc-bench: built without libuv\n");
	_exit(77); /* a benchmark: nothing to clean up */
}
#endif

/* ---- posix_spawn + waitpid ----------------------------------------------
 */

static int spawn_posix(struct run *r, double *secs)
{
	posix_spawn_file_actions_t fa;
	double t0;
	pid_t pid;
	int st, ret;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	t0 = now_s();
	while (r->done < r->count) {
		while (r->started < r->count &&
		       r->started - r->done < r->width) {
			ret = posix_spawn(&pid, true_argv[0], &fa, NULL,
					  true_argv, environ);
			if (ret != 0) {
				fprintf(stderr, "posix_spawn: %s\n",
					proa_strerror(-ret));
				return 1;
			}
			r->started++;
		}
		pid = waitpid(-1, &st, 0);
		if (pid < 0) {
			perror("waitpid");
			return 1;
		}
		r->done++;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			r->failed++;
	}
	*secs = now_s() - t0;
	posix_spawn_file_actions_destroy(&fa);
	return 0;
}

/* ---- the DNS stub ------------------------------------------------------- */

struct stub {
	int fd;
	pthread_t thread;
};

/* Answer every A query with 127.0.0.1 and anything else with no records;
 * the question section is echoed.  Until the socket is shut down. */
static void *stub_main(void *arg)
{
	struct stub *st = arg;
	unsigned char q[512], a[600];
	struct sockaddr_storage from;
	socklen_t fl;
	ssize_t n;
	size_t qend, len;
	unsigned type;

	for (;;) {
		fl = sizeof(from);
		n = recvfrom(st->fd, q, sizeof(q), 0, (struct sockaddr *)&from,
			     &fl);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 12)
			return NULL; /* shut down (0) or broken */
		qend = 12;
		while (qend < (size_t)n && q[qend] != 0)
			qend += (size_t)q[qend] + 1;
		qend += 5; /* the root label, QTYPE, QCLASS */
		if (qend > (size_t)n)
			continue;
		type = (unsigned)q[qend - 4] << 8 | q[qend - 3];
		memcpy(a, q, qend);
		a[2] = 0x81; /* QR, RD */
		a[3] = 0x80; /* RA, NOERROR */
		a[4] = 0;
		a[5] = 1; /* QDCOUNT */
		a[6] = 0;
		a[7] = type == 1 ? 1 : 0;
		memset(a + 8, 0, 4);
		len = qend;
		if (type == 1) {
			static const unsigned char rr[] = {
			    0xc0, 0x0c, 0, 1, 0,   1, 0, 0,
			    0,	  60,	0, 4, 127, 0, 0, 1};
			memcpy(a + len, rr, sizeof(rr));
			len += sizeof(rr);
		}
		sendto(st->fd, a, len, 0, (struct sockaddr *)&from, fl);
	}
}

static int stub_start(struct stub *st, const char *addr)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(53);
	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
		fprintf(stderr, "proc-bench: bad server %s\n", addr);
		return -1;
	}
	st->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (st->fd < 0 ||
	    bind(st->fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		fprintf(stderr, "proc-bench: stub on %s:53: %s\n", addr,
			proa_strerror(-errno));
		return -1;
	}
	return pthread_create(&st->thread, NULL, stub_main, st) == 0 ? 0 : -1;
}

static void stub_stop(struct stub *st)
{
	shutdown(st->fd, SHUT_RDWR);
	pthread_join(st->thread, NULL);
	close(st->fd);
}

/* ---- lookups ------------------------------------------------------------ */

struct dns_run {
	struct run r;
	struct proa_loop *loop;
	struct proa_future *futs; /* width of them, reused */
	unsigned *busy;		  /* per slot: 0 free, 1 looking up, 2 done */
	struct proa_handle more;  /* dns_more() after the callbacks */
};

static void dns_more_cb(void *arg);

static void dns_more(struct dns_run *d);

static void dns_done(struct proa_future *fut, void *arg)
{
	struct dns_run *d = arg;
	struct addrinfo *ai = NULL;
	int res = proa_future_result(fut, (void **)&ai);
	const struct sockaddr_in *sin;

	d->r.done++;
	sin = ai ? (const struct sockaddr_in *)ai->ai_addr : NULL;
	if (res < 0 || !sin || sin->sin_family != AF_INET ||
	    sin->sin_addr.s_addr != htonl(INADDR_LOOPBACK)) {
		if (d->r.failed++ == 0)
			fprintf(stderr, "lookup: %s\n", proa_strerror(res));
	}
	proa_freeaddrinfo(ai);
	/* Released and reused once its callbacks are over. */
	d->busy[fut - d->futs] = 2;
	if (proa_handle_is_idle(&d->more))
		proa_loop_call_soon(d->loop, &d->more, dns_more_cb, d);
}

static void dns_more_cb(void *arg)
{
	dns_more(arg);
}

static void dns_more(struct dns_run *d)
{
	struct addrinfo hints;
	char name[64];
	unsigned i;
	int ret;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	for (i = 0; i < d->r.width && d->r.started < d->r.count; i++) {
		if (d->busy[i] == 1)
			continue;
		if (d->busy[i] == 2 && proa_future_fini(&d->futs[i]) < 0) {
			fprintf(stderr, "proa_future_fini: busy\n");
			_exit(1); /* a benchmark: nothing to clean up */
		}
		/* Distinct names: no cache on either side helps. */
		snprintf(name, sizeof(name), "h%u.bench.test", d->r.started);
		proa_future_init(&d->futs[i], d->loop);
		ret =
		    proa_getaddrinfo(d->loop, name, "80", &hints, &d->futs[i]);
		if (ret < 0) {
			fprintf(stderr, "proa_getaddrinfo: %s\n",
				proa_strerror(ret));
			_exit(1); /* a benchmark: nothing to clean up */
		}
		proa_future_add_done_callback(&d->futs[i], dns_done, d);
		d->busy[i] = 1;
		d->r.started++;
	}
}

static int dns(struct run *r, const char *impl, const char *server,
	       double *secs)
{
	struct proa_dns_options o;
	struct dns_run d;
	struct stub st;
	char servers[64];
	double t0;
	int ret;

	memset(&o, 0, sizeof(o));
	memset(&d, 0, sizeof(d));
	d.r = *r;
	if (strcmp(impl, "cares") == 0) {
		o.resolver = PROA_RESOLVER_CARES;
		snprintf(servers, sizeof(servers), "%s:53", server);
		o.servers = servers;
	} else if (strcmp(impl, "pool") == 0) {
		o.resolver = PROA_RESOLVER_POOL;
	} else {
		fprintf(stderr, "proc-bench: dns cares|pool\n");
		return 2;
	}
	if (stub_start(&st, server) < 0)
		return 1;
	ret = proa_loop_new(&d.loop, NULL);
	if (ret < 0)
		return 1;
	ret = proa_dns_configure(d.loop, &o);
	if (ret == -EOPNOTSUPP) {
		fprintf(stderr, "proc-bench: no c-ares in this build\n");
		_exit(77); /* a benchmark: nothing to clean up */
	}
	if (ret < 0) {
		fprintf(stderr, "proa_dns_configure: %s\n", proa_strerror(ret));
		return 1;
	}
	d.futs = calloc(r->width, sizeof(*d.futs));
	d.busy = calloc(r->width, sizeof(*d.busy));
	if (!d.futs || !d.busy) {
		free(d.futs);
		free(d.busy);
		return 1;
	}
	t0 = now_s();
	dns_more(&d);
	ret = proa_loop_run(d.loop, PROA_RUN_DEFAULT);
	*secs = now_s() - t0;
	*r = d.r;
	for (unsigned i = 0; i < r->width; i++)
		if (d.busy[i] == 2)
			proa_future_fini(&d.futs[i]);
	stub_stop(&st);
	free(d.futs);
	free(d.busy);
	return ret < 0 || proa_loop_free(d.loop) < 0;
}

int main(int argc, char **argv)
{
	struct run r;
	double secs = 0, cpu0;
	int ret;

	if (argc < 5) {
		fprintf(stderr, "usage: proc-bench spawn proa|uv|posix WIDTH "
				"COUNT\n"
				"       proc-bench dns cares|pool WIDTH COUNT "
				"SERVER\n");
		return 2;
	}
	memset(&r, 0, sizeof(r));
	r.width = (unsigned)atoi(argv[3]);
	r.count = (unsigned)atoi(argv[4]);
	if (r.width == 0 || r.count == 0)
		return 2;
	cpu0 = self_cpu_s();
	if (strcmp(argv[1], "spawn") == 0) {
		if (strcmp(argv[2], "proa") == 0)
			ret = spawn_proa(&r, &secs);
		else if (strcmp(argv[2], "uv") == 0)
			ret = spawn_uv(&r, &secs);
		else if (strcmp(argv[2], "posix") == 0)
			ret = spawn_posix(&r, &secs);
		else
			return 2;
	} else if (strcmp(argv[1], "dns") == 0 && argc >= 6) {
		ret = dns(&r, argv[2], argv[5], &secs);
	} else {
		return 2;
	}
	if (ret != 0)
		return ret;
	if (r.failed || r.done != r.count) {
		fprintf(stderr, "proc-bench: %u of %u failed, %u done\n",
			r.failed, r.count, r.done);
		return 1;
	}
	report(argv[1], &r, argv[2], secs, self_cpu_s() - cpu0);
	return 0;
}
