/* SPDX-License-Identifier: MIT */
/*
 * proa-echo - an echo server over TCP, UNIX stream sockets and UDP, built
 * on the public headers only.  The load generator that measures it (and
 * the peers in perf/) is perf/echo/echo_load.c; tests talk to it with
 * tests/integration/echo/echo_client.py.
 *
 * Server: every byte a connection sends comes back on it (every datagram
 * goes back to its sender).  One loop by default; --loops N serves the
 * address from a loop group, one SO_REUSEPORT listener per loop, or one
 * acceptor handing connections out (--handoff).  Once listening it prints
 * exactly one line, "listening on HOST:PORT" or "listening on unix:PATH",
 * with the port really bound.  SIGINT or SIGTERM closes the listener,
 * closes the connections (aborting those that have not drained within
 * SHUTDOWN_GRACE_NS; a loop group does this with
 * proa_loop_group_shutdown()), prints a summary to stderr and exits 0.
 *
 * It does not allocate per message: it writes what it received straight
 * back (the transport copies it).  What a connection may hold is bounded:
 * a peer that does not read its echo stops being read (the transport's
 * water marks), and is cut after --write-timeout; a silent one is closed
 * after --idle-timeout; each loop serves at most --max-conns.
 *
 * TLS (TCP only) with --tls CERT KEY.  A failed handshake is logged by
 * proa only with PROA_DEBUG set.
 *
 * --stdio echoes standard input to standard output instead, through one
 * pipe transport (proa_pipe_open(): a pipe, a file, a tty), and exits at
 * EOF once everything is written: `proa-echo --stdio < in > out` copies.
 *
 * Exit: 0 on success, 1 on a runtime failure (cannot listen), 2 for bad
 * arguments.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <proa.h>

#define PROG "proa-echo"

/* How long connections may take to drain once the server is told to stop. */
#define SHUTDOWN_GRACE_NS 3000000000ull
#define MAX_LOOPS 1024u

/* ---- configuration ----------------------------------------------------- */

struct config {
	const char *host;
	uint16_t port;
	bool host_set;
	bool port_set;
	const char *unix_path;
	bool udp;
	unsigned loops;
	bool reuseport;
	bool handoff;
	bool stdio;
	const char *tls_cert; /* --tls CERT KEY */
	const char *tls_key;
	struct proa_tls_context *tls; /* made from the above in main() */
	/* Every connection's bounds (stream sockets): --idle-timeout,
	 * --write-timeout in ms, 0 for none; --max-conns per loop. */
	uint64_t idle_ms, write_ms;
	unsigned max_conns;
};

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: proa-echo [--server] [--host H] [--port N] [--unix "
	    "PATH] [--udp]\n"
	    "                 [--loops N [--handoff]] [--reuseport] "
	    "[--tls CERT KEY]\n"
	    "                 [--idle-timeout MS] [--write-timeout MS] "
	    "[--max-conns N]\n"
	    "\n"
	    "An echo server over TCP, UNIX stream sockets or UDP.  The "
	    "load\n"
	    "generator that measures it is echo-load (perf/echo/).\n"
	    "\n"
	    "  -s, --server         serve (the only role; accepted for "
	    "scripts)\n"
	    "  -H, --host H         address or name (127.0.0.1; \"\" for "
	    "every\n"
	    "                       interface)\n"
	    "  -p, --port N         port (7007; 0 lets the kernel pick)\n"
	    "  -u, --unix PATH      UNIX stream socket instead (@name: "
	    "abstract)\n"
	    "  -U, --udp            UDP instead of TCP\n"
	    "  -l, --loops N        loops, one thread each (1)\n"
	    "      --handoff        with --loops: one acceptor hands "
	    "connections\n"
	    "                       to the loops (default: SO_REUSEPORT "
	    "per loop)\n"
	    "  -r, --reuseport      set SO_REUSEPORT on the listener\n"
	    "      --stdio          echo stdin to stdout, exit at EOF\n"
	    "      --tls CERT KEY   TLS with this PEM certificate and key "
	    "(TCP)\n"
	    "      --idle-timeout MS\n"
	    "                       close a connection silent this long "
	    "(300000;\n"
	    "                       0: never)\n"
	    "      --write-timeout MS\n"
	    "                       cut a peer that takes none of its echo "
	    "this long\n"
	    "                       (60000; 0: never)\n"
	    "      --max-conns N    connections per loop (65536); over it a "
	    "new one\n"
	    "                       is accepted and closed at once\n"
	    "  -h, --help           this text\n"
	    "\n"
	    "It prints \"listening on HOST:PORT\" (or \"listening on "
	    "unix:PATH\")\n"
	    "once ready and stops cleanly on SIGINT or SIGTERM.  Exit: 0 ok, "
	    "1 failure,\n"
	    "2 bad arguments.\n");
}

/* Print a one-line usage error; returns false for the caller to pass on. */
static bool bad_usage(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static bool bad_usage(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	/* va_start above: the analyzer misses it (a false positive) */
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized) */
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("; try --help\n", stderr);
	return false;
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void fail(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	/* va_start above: the analyzer misses it (a false positive) */
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized) */
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static bool parse_uint(const char *opt, const char *s, uint64_t min,
		       uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	errno = 0;
	if (*s < '0' || *s > '9')
		return bad_usage("%s: bad value '%s'", opt, s);
	v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return bad_usage("%s: bad value '%s' (%llu to %llu)", opt, s,
				 (unsigned long long)min,
				 (unsigned long long)max);
	*out = v;
	return true;
}

enum {
	OPT_HANDOFF = 256,
	OPT_TLS,
	OPT_STDIO,
	OPT_IDLE,
	OPT_WRITE,
	OPT_MAXCONN,
};

static const struct option long_opts[] = {
    {"server", no_argument, NULL, 's'},
    {"client", no_argument, NULL, 'c'},
    {"host", required_argument, NULL, 'H'},
    {"port", required_argument, NULL, 'p'},
    {"unix", required_argument, NULL, 'u'},
    {"udp", no_argument, NULL, 'U'},
    {"loops", required_argument, NULL, 'l'},
    {"handoff", no_argument, NULL, OPT_HANDOFF},
    {"reuseport", no_argument, NULL, 'r'},
    {"tls", no_argument, NULL, OPT_TLS},
    {"stdio", no_argument, NULL, OPT_STDIO},
    {"idle-timeout", required_argument, NULL, OPT_IDLE},
    {"write-timeout", required_argument, NULL, OPT_WRITE},
    {"max-conns", required_argument, NULL, OPT_MAXCONN},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static bool check_config(const struct config *cfg)
{
	if (cfg->unix_path && cfg->udp)
		return bad_usage("--unix and --udp exclude each other");
	if (cfg->unix_path && (cfg->host_set || cfg->port_set))
		return bad_usage("--unix excludes --host and --port");
	if (cfg->unix_path && !*cfg->unix_path)
		return bad_usage("--unix: empty path");
	if (cfg->handoff && cfg->loops < 2)
		return bad_usage("--handoff needs --loops 2 or more");
	if (cfg->loops > 1 && (cfg->unix_path || cfg->udp))
		return bad_usage("--loops serves TCP only");
	if (cfg->tls_cert && (cfg->udp || cfg->unix_path))
		return bad_usage("--tls is for TCP");
	if (cfg->stdio && (cfg->udp || cfg->unix_path || cfg->tls_cert ||
			   cfg->loops > 1 || cfg->host_set || cfg->port_set))
		return bad_usage("--stdio takes no other option");
	return true;
}

/* One option; false after a usage error. */
static bool parse_opt(struct config *cfg, int ch, const char *arg)
{
	uint64_t v = 0;
	bool ok = true;

	switch (ch) {
	case 's':
		return true;
	case 'c':
		return bad_usage("--client is gone: the load generator is "
				 "echo-load (perf/echo/echo_load.c)");
	case 'H':
		cfg->host = arg;
		cfg->host_set = true;
		return true;
	case 'p':
		ok = parse_uint("--port", arg, 0, 65535, &v);
		cfg->port = (uint16_t)v;
		cfg->port_set = true;
		return ok;
	case 'u':
		cfg->unix_path = arg;
		return true;
	case 'U':
		cfg->udp = true;
		return true;
	case 'l':
		ok = parse_uint("--loops", arg, 1, MAX_LOOPS, &v);
		cfg->loops = (unsigned)v;
		return ok;
	case OPT_HANDOFF:
		cfg->handoff = true;
		return true;
	case OPT_STDIO:
		cfg->stdio = true;
		return true;
	case OPT_IDLE:
		return parse_uint("--idle-timeout", arg, 0, UINT32_MAX,
				  &cfg->idle_ms);
	case OPT_WRITE:
		return parse_uint("--write-timeout", arg, 0, UINT32_MAX,
				  &cfg->write_ms);
	case OPT_MAXCONN:
		ok = parse_uint("--max-conns", arg, 1, 1000000, &v);
		cfg->max_conns = (unsigned)v;
		return ok;
	case 'r':
		cfg->reuseport = true;
		return true;
	default:
		return false;
	}
}

/*
 * Return: 0 to run, 1 after --help (exit 0), 2 after a usage error
 * (exit 2).
 */
static int parse_args(struct config *cfg, int argc, char **argv)
{
	int ch;

	*cfg = (struct config){
	    .host = "127.0.0.1",
	    .port = 7007,
	    .loops = 1,
	    .idle_ms = 300000,
	    .write_ms = 60000,
	    .max_conns = 65536,
	};
	opterr = 0;
	/* Single-threaded here; getopt's static state is fine. */
	/* NOLINTNEXTLINE(concurrency-mt-unsafe) */
	while ((ch = getopt_long(argc, argv, ":scH:p:u:Ul:rh", long_opts,
				 NULL)) != -1) {
		const char *arg = argv[optind - 1];

		if (ch == 'h') {
			usage(stdout);
			return 1;
		}
		if (ch == ':') {
			bad_usage("%s needs a value", arg);
			return 2;
		}
		if (ch == '?') {
			if (strncmp(arg, "--", 2) != 0 && optopt)
				bad_usage("unknown option '-%c'", optopt);
			else
				bad_usage("unknown option or bad use of '%s'",
					  arg);
			return 2;
		}
		/* --tls CERT KEY: the two words after it */
		if (ch == OPT_TLS) {
			if (optind + 1 >= argc || argv[optind][0] == '-' ||
			    argv[optind + 1][0] == '-') {
				bad_usage("--tls needs CERT and KEY");
				return 2;
			}
			cfg->tls_cert = argv[optind++];
			cfg->tls_key = argv[optind++];
			continue;
		}
		if (!parse_opt(cfg, ch, optarg))
			return 2;
	}
	if (optind < argc) {
		bad_usage("unexpected argument '%s'", argv[optind]);
		return 2;
	}
	if (!check_config(cfg))
		return 2;
	return 0;
}

/* The TLS context the options ask for; false (after saying why) if it
 * cannot be made. */
static bool make_tls(struct config *cfg)
{
	struct proa_tls_options o = {0};
	char err[512];
	int ret;

	if (!cfg->tls_cert)
		return true;
	o.cert_file = cfg->tls_cert;
	o.key_file = cfg->tls_key;
	ret = proa_tls_context_new(&cfg->tls, PROA_TLS_SERVER, &o, err,
				   sizeof(err));
	if (ret < 0) {
		fail("TLS: %s", err);
		return false;
	}
	return true;
}

/* ---- helpers ----------------------------------------------------------- */

/* "HOST:PORT", with IPv6 literals in brackets, or "unix:PATH". */
static void format_target(char *buf, size_t len, const struct config *cfg,
			  uint16_t port)
{
	if (cfg->unix_path)
		snprintf(buf, len, "unix:%s", cfg->unix_path);
	else if (!*cfg->host)
		snprintf(buf, len, "*:%u", (unsigned)port);
	else if (strchr(cfg->host, ':'))
		snprintf(buf, len, "[%s]:%u", cfg->host, (unsigned)port);
	else
		snprintf(buf, len, "%s:%u", cfg->host, (unsigned)port);
}

/* A UDP address for @host:@port, resolved once at start-up (blocking is
 * fine there).  @host "" is the wildcard. */
static int resolve_udp(const char *host, uint16_t port,
		       struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints = {
	    .ai_socktype = SOCK_DGRAM,
	    .ai_flags = AI_NUMERICSERV | AI_PASSIVE,
	};
	struct addrinfo *res;
	char serv[8];
	int ret;

	snprintf(serv, sizeof(serv), "%u", (unsigned)port);
	ret = getaddrinfo(*host ? host : NULL, serv, &hints, &res);
	if (ret == EAI_SYSTEM)
		return errno ? -errno : PROA_EDNSFAIL;
	if (ret)
		return ret == EAI_NONAME ? PROA_ENONAME : PROA_EDNSFAIL;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static uint16_t sockaddr_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return 0;
}

/* SIGINT and SIGTERM are blocked before any thread exists, so that they
 * reach the loop's signalfd (or the group's sigwait) and nothing else. */
static void block_stop_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static int new_loop(struct proa_loop **out)
{
	int ret = proa_loop_new(out, NULL);

	if (ret < 0)
		fail("cannot create a loop: %s", proa_strerror(ret));
	return ret;
}

/* Run @loop until nothing is left, then close and free it. */
/* Run @loop until it has nothing left, then close and free it; with
 * @stats, what the loop counted is printed first (how many system calls
 * served how many completions: the number the benchmarks are about). */
static int finish_loop_stats(struct proa_loop *loop, bool stats)
{
	struct proa_loop_stats st;
	int ret = proa_loop_run(loop, PROA_RUN_DEFAULT);

	if (ret < 0) {
		fail("loop: %s", proa_strerror(ret));
		return ret;
	}
	if (stats && proa_loop_stats(loop, &st) == 0)
		fprintf(stderr,
			PROG ": loop: %llu iterations, %llu io_uring_enter, "
			     "%llu submissions, %llu completions\n",
			(unsigned long long)st.iterations,
			(unsigned long long)st.enters,
			(unsigned long long)st.submissions,
			(unsigned long long)st.completions);
	ret = proa_loop_close(loop);
	if (ret < 0) {
		fail("closing the loop: %s", proa_strerror(ret));
		return ret;
	}
	proa_loop_free(loop);
	return 0;
}

static int finish_loop(struct proa_loop *loop)
{
	return finish_loop_stats(loop, false);
}

/* ---- server ------------------------------------------------------------ */

/*
 * What one loop of the server owns; only that loop's thread touches it,
 * except that the main thread reads the counters after the loops are
 * joined.
 */
struct shard {
	struct echo_server *srv;
	struct proa_loop *loop;
	unsigned idx; /* in the loop group */
	struct proa_link conns;
	unsigned nconns;
	bool closing;
	bool drained;
	uint64_t served;
	uint64_t bytes;
	struct proa_timer grace; /* single loop: aborts the stragglers */
	struct proa_datagram_protocol udp; /* single loop: the UDP echo */
} __attribute__((aligned(64)));

struct echo_server {
	const struct config *cfg;
	struct shard *shards;
	unsigned nshards;
	/* single loop */
	struct proa_server *server;
	struct proa_udp *udp;
	struct proa_signal sig[2];
	bool stopping;
	/* loop group: set before it listens, read-only after */
	struct proa_loop_group *group;
};

struct echo_conn {
	struct proa_protocol proto;
	struct proa_transport *t;
	struct shard *sh;
	struct proa_link link;
};

static void shard_check_drained(struct shard *sh)
{
	struct echo_server *srv = sh->srv;

	if (!sh->closing || sh->nconns || sh->drained)
		return;
	sh->drained = true;
	if (proa_timer_is_active(&sh->grace))
		proa_timer_cancel(&sh->grace);
	if (srv->group)
		proa_loop_group_drained(srv->group, sh->idx);
}

static struct echo_conn *conn_of(struct proa_protocol *p)
{
	return proa_container_of(p, struct echo_conn, proto);
}

static void echo_data(struct proa_protocol *p, const void *data, size_t len)
{
	struct echo_conn *c = conn_of(p);
	int ret = proa_transport_write(c->t, data, len);

	if (ret == 0)
		c->sh->bytes += len;
	else if (ret != -EPIPE)
		proa_transport_abort(c->t);
}

static bool echo_eof(struct proa_protocol *p)
{
	(void)p;
	return false;
}

/* The peer sends faster than it reads: stop reading until our echoes have
 * drained, so that the write buffer stays bounded. */
static void echo_pause(struct proa_protocol *p)
{
	proa_transport_pause_reading(conn_of(p)->t);
}

static void echo_resume(struct proa_protocol *p)
{
	proa_transport_resume_reading(conn_of(p)->t);
}

static void echo_lost(struct proa_protocol *p, int err)
{
	struct echo_conn *c = conn_of(p);
	struct shard *sh = c->sh;

	(void)err;
	proa_list_del(&c->link);
	sh->nconns--;
	free(c);
	shard_check_drained(sh);
}

static const struct proa_protocol_ops echo_ops = {
    .data_received = echo_data,
    .eof_received = echo_eof,
    .connection_lost = echo_lost,
    .pause_writing = echo_pause,
    .resume_writing = echo_resume,
};

static struct shard *shard_of(struct echo_server *srv, struct proa_loop *loop)
{
	for (unsigned i = 0; i < srv->nshards; i++)
		if (srv->shards[i].loop == loop)
			return &srv->shards[i];
	return NULL;
}

/* Called on the loop that owns @t.  One allocation per connection. */
static struct proa_protocol *echo_factory(void *arg, struct proa_transport *t)
{
	struct shard *sh = shard_of(arg, proa_transport_loop(t));
	struct echo_conn *c;

	if (!sh || sh->closing)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->proto.ops = &echo_ops;
	c->t = t;
	c->sh = sh;
	proa_list_add_tail(&sh->conns, &c->link);
	sh->nconns++;
	sh->served++;
	return &c->proto;
}

static void shard_abort_all(void *arg)
{
	struct shard *sh = arg;
	struct proa_link *l;

	for (l = sh->conns.next; l != &sh->conns; l = l->next)
		proa_transport_abort(
		    proa_container_of(l, struct echo_conn, link)->t);
}

/* On the shard's loop: close every connection (connection_lost follows
 * for each, later); report drained at once if there are none. */
static void shard_close_all(void *arg)
{
	struct shard *sh = arg;
	struct proa_link *l;

	sh->closing = true;
	for (l = sh->conns.next; l != &sh->conns; l = l->next)
		proa_transport_close(
		    proa_container_of(l, struct echo_conn, link)->t);
	shard_check_drained(sh);
}

/* The loop group's drain function, on loop @i. */
static void shard_drain(struct proa_loop_group *g, unsigned i, void *arg)
{
	struct echo_server *srv = arg;

	(void)g;
	shard_close_all(&srv->shards[i]);
}

static void udp_echo(struct proa_datagram_protocol *p, const void *data,
		     size_t len, const struct sockaddr *from, socklen_t fromlen)
{
	struct shard *sh = proa_container_of(p, struct shard, udp);

	/* -EAGAIN (the send queue is full) drops the echo, as a router
	 * would; the client resends. */
	if (proa_udp_sendto(sh->srv->udp, data, len, from, fromlen) == 0) {
		sh->served++;
		sh->bytes += len;
	}
}

static void udp_closed(struct proa_datagram_protocol *p, int err)
{
	struct shard *sh = proa_container_of(p, struct shard, udp);

	(void)err;
	sh->srv->udp = NULL;
}

/* Errors (an ICMP error for one client) leave the endpoint open: none
 * is worth a word. */
static const struct proa_datagram_protocol_ops udp_echo_ops = {
    .datagram_received = udp_echo,
    .connection_lost = udp_closed,
};

/* Single loop: stop listening, close the connections, abort those still
 * open after the grace period; the loop then runs out of work. */
static void server_shutdown(struct echo_server *srv)
{
	struct shard *sh = &srv->shards[0];

	if (srv->stopping)
		return;
	srv->stopping = true;
	proa_signal_stop(&srv->sig[0]);
	proa_signal_stop(&srv->sig[1]);
	if (srv->server)
		proa_server_close(srv->server, NULL);
	srv->server = NULL;
	if (srv->udp)
		proa_udp_close(srv->udp);
	shard_close_all(sh);
	if (!sh->drained)
		proa_timer_start(sh->loop, &sh->grace, SHUTDOWN_GRACE_NS, 0,
				 shard_abort_all, sh);
}

static void server_stop(struct proa_signal *sig)
{
	server_shutdown(sig->data);
}

/* A listener's options: every connection bounded in time and number. */
static struct proa_server_options server_opts(const struct config *cfg)
{
	return (struct proa_server_options){
	    .reuse_port = cfg->reuseport,
	    .tls = cfg->tls,
	    .max_connections = cfg->max_conns,
	    .transport = {.idle_timeout_ns = cfg->idle_ms * 1000000,
			  .write_timeout_ns = cfg->write_ms * 1000000}};
}

static int server_listen_one(struct echo_server *srv, struct proa_loop *loop,
			     uint16_t *port)
{
	const struct config *cfg = srv->cfg;
	struct proa_server_options opt = server_opts(cfg);
	struct proa_future fut;
	void *val = NULL;
	int ret;

	if (cfg->unix_path)
		return proa_unix_listen(&srv->server, loop, cfg->unix_path,
					&opt, echo_factory, srv);
	proa_future_init(&fut, loop);
	ret = proa_tcp_listen(loop, cfg->host, cfg->port, &opt, echo_factory,
			      srv, &fut);
	if (ret < 0) {
		proa_future_fini(&fut);
		return ret;
	}
	ret = proa_loop_run_until_complete(loop, &fut);
	if (ret == 0)
		ret = proa_future_result(&fut, &val);
	proa_future_fini(&fut);
	if (ret < 0)
		return ret;
	srv->server = val;
	*port = proa_server_port(srv->server);
	return 0;
}

static int server_bind_udp(struct echo_server *srv, struct proa_loop *loop,
			   uint16_t *port)
{
	const struct config *cfg = srv->cfg;
	struct proa_udp_options opt = {.reuse_port = cfg->reuseport};
	struct sockaddr_storage ss;
	socklen_t len = 0;
	int ret;

	ret = resolve_udp(cfg->host, cfg->port, &ss, &len);
	if (ret < 0)
		return ret;
	srv->shards[0].udp.ops = &udp_echo_ops;
	ret = proa_udp_bind(&srv->udp, loop, (struct sockaddr *)&ss, len, &opt,
			    &srv->shards[0].udp);
	if (ret < 0)
		return ret;
	len = sizeof(ss);
	ret = proa_udp_sockname(srv->udp, &ss, &len);
	if (ret == 0)
		*port = sockaddr_port(&ss);
	return ret;
}

static void print_listening(const struct config *cfg, uint16_t port)
{
	char target[300];

	format_target(target, sizeof(target), cfg, port);
	printf("listening on %s\n", target);
	fflush(stdout);
}

static void print_summary(const struct echo_server *srv)
{
	uint64_t served = 0;
	uint64_t bytes = 0;

	for (unsigned i = 0; i < srv->nshards; i++) {
		served += srv->shards[i].served;
		bytes += srv->shards[i].bytes;
	}
	fprintf(stderr, PROG ": served %llu %s, echoed %llu bytes\n",
		(unsigned long long)served,
		srv->cfg->udp ? "datagrams" : "connections",
		(unsigned long long)bytes);
}

static int run_server_loop(struct echo_server *srv)
{
	const struct config *cfg = srv->cfg;
	struct shard *sh = &srv->shards[0];
	struct proa_loop *loop;
	char target[300];
	uint16_t port = 0;
	int ret;

	ret = new_loop(&loop);
	if (ret < 0)
		return 1;
	sh->loop = loop;
	if (cfg->udp)
		ret = server_bind_udp(srv, loop, &port);
	else
		ret = server_listen_one(srv, loop, &port);
	if (ret < 0) {
		format_target(target, sizeof(target), cfg, cfg->port);
		fail("cannot listen on %s: %s", target, proa_strerror(ret));
		if (srv->udp)
			proa_udp_close(srv->udp);
		finish_loop(loop);
		return 1;
	}
	ret = proa_signal_start(loop, &srv->sig[0], SIGINT, server_stop, srv);
	if (ret == 0)
		ret = proa_signal_start(loop, &srv->sig[1], SIGTERM,
					server_stop, srv);
	if (ret < 0) {
		fail("cannot watch signals: %s", proa_strerror(ret));
		server_shutdown(srv);
		finish_loop(loop);
		return 1;
	}
	print_listening(cfg, port);
	if (finish_loop_stats(loop, true) < 0)
		return 1;
	print_summary(srv);
	return 0;
}

static int run_server_group(struct echo_server *srv, const sigset_t *sigs)
{
	const struct config *cfg = srv->cfg;
	struct proa_loop_group_options gopt = {.nloops = cfg->loops};
	struct proa_server_options opt = server_opts(cfg);
	struct proa_loop_group *g;
	char target[300];
	uint16_t port;
	int ret;
	int signo;

	ret = proa_loop_group_new(&g, &gopt);
	if (ret < 0) {
		fail("cannot start %u loops: %s", cfg->loops,
		     proa_strerror(ret));
		return 1;
	}
	srv->nshards = proa_loop_group_size(g);
	srv->group = g;
	for (unsigned i = 0; i < srv->nshards; i++) {
		srv->shards[i].loop = proa_loop_group_loop(g, i);
		srv->shards[i].idx = i;
		srv->shards[i].srv = srv;
		proa_list_init(&srv->shards[i].conns);
	}
	ret = proa_loop_group_listen(
	    g, *cfg->host ? cfg->host : NULL, cfg->port,
	    cfg->handoff ? PROA_GROUP_HANDOFF : PROA_GROUP_REUSEPORT, &opt,
	    echo_factory, srv);
	if (ret < 0) {
		format_target(target, sizeof(target), cfg, cfg->port);
		fail("cannot listen on %s: %s", target, proa_strerror(ret));
		proa_loop_group_free(g);
		return 1;
	}
	port = proa_loop_group_port(g);
	print_listening(cfg, port ? port : cfg->port);
	do
		ret = sigwait(sigs, &signo);
	while (ret == EINTR);
	/* Stops accepting, closes the connections, aborts what did not
	 * drain in time, joins the loops: the counters are ours after it. */
	ret = proa_loop_group_shutdown(g, SHUTDOWN_GRACE_NS, shard_drain, srv);
	if (ret > 0)
		fprintf(stderr,
			PROG ": %d loop(s) had connections left after %llu "
			     "ms: aborted\n",
			ret, (unsigned long long)(SHUTDOWN_GRACE_NS / 1000000));
	ret = proa_loop_group_free(g);
	if (ret < 0) {
		fail("stopping the loops: %s", proa_strerror(ret));
		return 1;
	}
	print_summary(srv);
	return 0;
}

static int run_server(const struct config *cfg, const sigset_t *sigs)
{
	struct echo_server srv = {.cfg = cfg, .nshards = 1};
	int ret;

	/* --loops is 1 or more; the analyzer cannot see parse_args() */
	srv.shards = calloc(cfg->loops ? cfg->loops : 1, sizeof(*srv.shards));
	if (!srv.shards) {
		fail("out of memory");
		return 1;
	}
	srv.shards[0].srv = &srv;
	proa_list_init(&srv.shards[0].conns);
	if (cfg->loops > 1)
		ret = run_server_group(&srv, sigs);
	else
		ret = run_server_loop(&srv);
	free(srv.shards);
	return ret;
}

/* ---- --stdio ------------------------------------------------------------ */

struct stdio_echo {
	struct proa_protocol p;
	struct proa_transport *t;
	int err;
};

static void stdio_data(struct proa_protocol *p, const void *data, size_t len)
{
	struct stdio_echo *e = proa_container_of(p, struct stdio_echo, p);
	int ret = proa_transport_write(e->t, data, len);

	if (ret < 0) {
		e->err = ret;
		proa_transport_abort(e->t);
	}
}

static void stdio_lost(struct proa_protocol *p, int err)
{
	struct stdio_echo *e = proa_container_of(p, struct stdio_echo, p);

	if (err && !e->err)
		e->err = err;
}

/* A slow stdout: stop reading stdin until it catches up, so memory stays
 * bounded by the water marks whatever the input. */
static void stdio_pause(struct proa_protocol *p)
{
	proa_transport_pause_reading(
	    proa_container_of(p, struct stdio_echo, p)->t);
}

static void stdio_resume(struct proa_protocol *p)
{
	proa_transport_resume_reading(
	    proa_container_of(p, struct stdio_echo, p)->t);
}

static const struct proa_protocol_ops stdio_ops = {
    .data_received = stdio_data,
    .connection_lost = stdio_lost,
    .pause_writing = stdio_pause,
    .resume_writing = stdio_resume,
    /* eof_received NULL: at EOF the transport flushes, then closes */
};

static int run_stdio(void)
{
	struct stdio_echo e = {.p.ops = &stdio_ops};
	struct proa_loop *loop;
	int ret;

	/* A reader of stdout that goes away must not kill us silently. */
	signal(SIGPIPE, SIG_IGN);
	if (new_loop(&loop) < 0)
		return 1;
	ret =
	    proa_pipe_open(&e.t, loop, STDIN_FILENO, STDOUT_FILENO, NULL, &e.p);
	if (ret < 0) {
		fail("cannot open stdin/stdout: %s", proa_strerror(ret));
		finish_loop(loop);
		return 1;
	}
	if (finish_loop(loop) < 0)
		return 1;
	if (e.err) {
		fail("stdio: %s", proa_strerror(e.err));
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct config cfg;
	sigset_t sigs;
	int ret;

	switch (parse_args(&cfg, argc, argv)) {
	case 0:
		break;
	case 1:
		return 0;
	default:
		return 2;
	}
	if (cfg.stdio)
		return run_stdio();
	if (!make_tls(&cfg))
		return 1;
	block_stop_signals(&sigs);
	ret = run_server(&cfg, &sigs);
	proa_tls_context_free(cfg.tls);
	return ret;
}
