/* SPDX-License-Identifier: MIT */
/*
 * proa-echo - an echo server and an echo load generator over TCP, UNIX
 * stream sockets and UDP, built on the public headers only.
 *
 * Server: every byte a connection sends comes back on it (every datagram
 * goes back to its sender).  One loop by default; --loops N serves the
 * address from a loop group, one SO_REUSEPORT listener per loop, or one
 * acceptor handing connections out (--handoff).  Once listening it prints
 * exactly one line, "listening on HOST:PORT" or "listening on unix:PATH",
 * with the port really bound.  SIGINT or SIGTERM closes the listener,
 * closes the connections (aborting those that have not drained within
 * SHUTDOWN_GRACE_NS), prints a summary to stderr and exits 0.
 *
 * Client: opens --connections connections (or connected UDP endpoints);
 * once all are up, each keeps --depth messages of --size bytes in flight,
 * and a message is done when --size bytes have come back.  It stops after
 * --duration seconds (a loop timer) or --count messages, and prints one
 * JSON line.  --verify checks every echoed byte against the connection's
 * pattern.  UDP datagrams lost on the way are sent again after
 * UDP_STALL_NS without progress.
 *
 * Neither role allocates per message: the server writes what it received
 * straight back (the transport copies it), the client sends slices of one
 * shared pattern buffer.
 *
 * TLS (TCP only): the server with --tls CERT KEY, the client with --tls
 * (verifying against the system store) or --tls-ca FILE, and --tls-name
 * for the name to verify (default --host).  A failed handshake is one
 * line, "proa-echo: TLS: <why>" (proa's own debug lines show only with
 * PROA_DEBUG set).
 *
 * Exit: 0 on success, 1 on a runtime failure (cannot listen, connect
 * refused, mismatch, connection lost), 2 for bad arguments.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <proa.h>

#include "drain.h"

#define PROG "proa-echo"

/* How long connections may take to drain once the server is told to stop. */
#define SHUTDOWN_GRACE_NS 3000000000ull
/* A connection not established within this long is an error. */
#define CONNECT_TIMEOUT_NS 10000000000ull
/* A UDP endpoint with no datagram back for this long resends. */
#define UDP_STALL_NS 250000000ull
/* The pattern repeats every PATTERN_PERIOD bytes; a prime, so that a shift
 * by any power-of-two message size shows up. */
#define PATTERN_PERIOD 251
#define UDP_MAX_PAYLOAD 65507
#define MAX_CONNECTIONS 1000000u
#define MAX_LOOPS 1024u

/* ---- configuration ----------------------------------------------------- */

enum role {
	ROLE_NONE = 0,
	ROLE_SERVER,
	ROLE_CLIENT,
};

struct config {
	enum role role;
	const char *host;
	uint16_t port;
	bool host_set;
	bool port_set;
	const char *unix_path;
	bool udp;
	unsigned loops;
	bool reuseport;
	bool handoff;
	unsigned connections;
	size_t size;
	unsigned depth;
	double duration;
	uint64_t count;
	bool verify;
	const char *tls_cert; /* server: --tls CERT KEY */
	const char *tls_key;
	bool tls_on;	      /* --tls given (client: the system store) */
	const char *tls_ca;   /* client: --tls-ca FILE */
	const char *tls_name; /* client: --tls-name NAME (default --host) */
	struct proa_tls_context *tls; /* made from the above in main() */
	/* which role-specific options were given, for the checks */
	const char *server_only;
	const char *client_only;
};

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: proa-echo --server [--host H] [--port N] [--unix PATH] "
	    "[--udp]\n"
	    "                 [--loops N [--handoff]] [--reuseport] "
	    "[--tls CERT KEY]\n"
	    "       proa-echo --client [--host H] [--port N] [--unix PATH] "
	    "[--udp]\n"
	    "                 [--connections N] [--size BYTES] [--depth N]\n"
	    "                 [--duration SECS | --count N] [--verify]\n"
	    "                 [--tls | --tls-ca FILE] [--tls-name NAME]\n"
	    "\n"
	    "An echo server, and a load generator that measures it, over "
	    "TCP,\n"
	    "UNIX stream sockets or UDP.\n"
	    "\n"
	    "  -s, --server         echo what arrives\n"
	    "  -c, --client         generate load, print one JSON line\n"
	    "  -H, --host H         address or name (127.0.0.1; \"\" for "
	    "every\n"
	    "                       interface when serving)\n"
	    "  -p, --port N         port (7007; 0 lets the server pick)\n"
	    "  -u, --unix PATH      UNIX stream socket instead (@name: "
	    "abstract)\n"
	    "  -U, --udp            UDP instead of TCP\n"
	    "server:\n"
	    "  -l, --loops N        loops, one thread each (1)\n"
	    "      --handoff        with --loops: one acceptor hands "
	    "connections\n"
	    "                       to the loops (default: SO_REUSEPORT per "
	    "loop)\n"
	    "  -r, --reuseport      set SO_REUSEPORT on the listener\n"
	    "      --tls CERT KEY   TLS with this PEM certificate and key "
	    "(TCP)\n"
	    "client:\n"
	    "  -n, --connections N  connections or UDP endpoints (1)\n"
	    "  -S, --size BYTES     message size (64)\n"
	    "  -d, --depth N        messages in flight per connection (1)\n"
	    "  -t, --duration SECS  run this long, fractions allowed (5)\n"
	    "  -N, --count N        stop after N messages in all instead\n"
	    "  -V, --verify         check every echoed byte\n"
	    "      --tls            TLS, verifying the server against the "
	    "system store (TCP)\n"
	    "      --tls-ca FILE    TLS, verifying the server with this CA "
	    "(TCP)\n"
	    "      --tls-name NAME  with --tls or --tls-ca: the name to "
	    "verify\n"
	    "                       (default: --host)\n"
	    "  -h, --help           this text\n"
	    "\n"
	    "The server prints \"listening on HOST:PORT\" (or "
	    "\"listening on unix:PATH\")\n"
	    "once ready and stops cleanly on SIGINT or SIGTERM.  Exit: 0 ok, 1 "
	    "failure,\n"
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

static bool parse_seconds(const char *opt, const char *s, double *out)
{
	double v;
	char *end;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v <= 0 || v > 1e6)
		return bad_usage("%s: bad value '%s' (seconds > 0)", opt, s);
	*out = v;
	return true;
}

enum {
	OPT_HANDOFF = 256,
	OPT_TLS,
	OPT_TLS_CA,
	OPT_TLS_NAME,
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
    {"connections", required_argument, NULL, 'n'},
    {"size", required_argument, NULL, 'S'},
    {"depth", required_argument, NULL, 'd'},
    {"duration", required_argument, NULL, 't'},
    {"count", required_argument, NULL, 'N'},
    {"verify", no_argument, NULL, 'V'},
    {"tls", no_argument, NULL, OPT_TLS},
    {"tls-ca", required_argument, NULL, OPT_TLS_CA},
    {"tls-name", required_argument, NULL, OPT_TLS_NAME},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static bool set_role(struct config *cfg, enum role r)
{
	if (cfg->role != ROLE_NONE && cfg->role != r)
		return bad_usage("--server and --client exclude each other");
	cfg->role = r;
	return true;
}

static bool check_config(const struct config *cfg)
{
	if (cfg->role == ROLE_NONE)
		return bad_usage("one of --server or --client is needed");
	if (cfg->role == ROLE_SERVER && cfg->client_only)
		return bad_usage("%s is a --client option", cfg->client_only);
	if (cfg->role == ROLE_CLIENT && cfg->server_only)
		return bad_usage("%s is a --server option", cfg->server_only);
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
	if (cfg->role == ROLE_CLIENT && !cfg->unix_path && cfg->port == 0)
		return bad_usage(
		    "--port: the client needs a port other than 0");
	if (cfg->role == ROLE_CLIENT && !cfg->unix_path && !*cfg->host)
		return bad_usage("--host: the client needs a host");
	if (cfg->udp && cfg->size > UDP_MAX_PAYLOAD)
		return bad_usage("--size: a UDP message holds at most %d bytes",
				 UDP_MAX_PAYLOAD);
	return true;
}

/* One option; false after a usage error. */
static bool parse_opt(struct config *cfg, int ch, const char *arg)
{
	uint64_t v = 0;
	bool ok = true;

	switch (ch) {
	case 's':
		return set_role(cfg, ROLE_SERVER);
	case 'c':
		return set_role(cfg, ROLE_CLIENT);
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
		cfg->server_only = "--loops";
		return ok;
	case OPT_HANDOFF:
		cfg->handoff = true;
		cfg->server_only = "--handoff";
		return true;
	case 'r':
		cfg->reuseport = true;
		cfg->server_only = "--reuseport";
		return true;
	case 'n':
		ok = parse_uint("--connections", arg, 1, MAX_CONNECTIONS, &v);
		cfg->connections = (unsigned)v;
		cfg->client_only = "--connections";
		return ok;
	case 'S':
		ok = parse_uint("--size", arg, 1, 1u << 30, &v);
		cfg->size = (size_t)v;
		cfg->client_only = "--size";
		return ok;
	case 'd':
		ok = parse_uint("--depth", arg, 1, 1u << 16, &v);
		cfg->depth = (unsigned)v;
		cfg->client_only = "--depth";
		return ok;
	case 't':
		cfg->client_only = "--duration";
		return parse_seconds("--duration", arg, &cfg->duration);
	case 'N':
		cfg->client_only = "--count";
		return parse_uint("--count", arg, 1, UINT64_MAX, &cfg->count);
	case 'V':
		cfg->verify = true;
		cfg->client_only = "--verify";
		return true;
	case OPT_TLS:
		cfg->tls_on = true;
		return true;
	case OPT_TLS_CA:
		cfg->tls_ca = arg;
		cfg->client_only = "--tls-ca";
		return true;
	case OPT_TLS_NAME:
		cfg->tls_name = arg;
		cfg->client_only = "--tls-name";
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
	    .connections = 1,
	    .size = 64,
	    .depth = 1,
	    .duration = 5.0,
	};
	opterr = 0;
	/* Single-threaded here; getopt's static state is fine. */
	/* NOLINTNEXTLINE(concurrency-mt-unsafe) */
	while ((ch = getopt_long(argc, argv, ":scH:p:u:Ul:rn:S:d:t:N:Vh",
				 long_opts, NULL)) != -1) {
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
		if (!parse_opt(cfg, ch, optarg))
			return 2;
		/* --tls CERT KEY (server) or --tls alone (client): the
		 * words after it, if any, are the certificate and key */
		if (ch == OPT_TLS && optind < argc && argv[optind][0] != '-') {
			if (optind + 1 >= argc || argv[optind + 1][0] == '-') {
				bad_usage("--tls needs CERT and KEY");
				return 2;
			}
			cfg->tls_cert = argv[optind++];
			cfg->tls_key = argv[optind++];
		}
	}
	if (optind < argc) {
		bad_usage("unexpected argument '%s'", argv[optind]);
		return 2;
	}
	if (!check_config(cfg))
		return 2;
	if ((cfg->tls_on || cfg->tls_ca) && (cfg->udp || cfg->unix_path)) {
		bad_usage("--tls and --tls-ca are for TCP");
		return 2;
	}
	if (cfg->role == ROLE_SERVER && cfg->tls_on && !cfg->tls_cert) {
		bad_usage("--tls needs CERT and KEY on the server");
		return 2;
	}
	if (cfg->role == ROLE_CLIENT && cfg->tls_cert) {
		bad_usage("--tls CERT KEY is a --server option (the client "
			  "takes --tls alone or --tls-ca FILE)");
		return 2;
	}
	if (cfg->tls_name && !cfg->tls_on && !cfg->tls_ca) {
		bad_usage("--tls-name goes with --tls or --tls-ca");
		return 2;
	}
	return 0;
}

/* The TLS context the options ask for; false (after saying why) if it
 * cannot be made. */
static bool make_tls(struct config *cfg)
{
	struct proa_tls_options o = {0};
	char err[512];
	int ret;

	if (!cfg->tls_on && !cfg->tls_ca)
		return true;
	o.cert_file = cfg->tls_cert;
	o.key_file = cfg->tls_key;
	o.ca_file = cfg->tls_ca;
	ret = proa_tls_context_new(&cfg->tls,
				   cfg->role == ROLE_SERVER ? PROA_TLS_SERVER
							    : PROA_TLS_CLIENT,
				   &o, err, sizeof(err));
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
 * joined and that @drained is reported under the server's lock.
 */
struct shard {
	struct echo_server *srv;
	struct proa_loop *loop;
	struct proa_link conns;
	unsigned nconns;
	bool closing;
	bool drained;
	uint64_t served;
	uint64_t bytes;
	struct proa_handle close_h; /* group: posted by the main thread */
	struct proa_timer grace;    /* single loop: aborts the stragglers */
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
	/* loop group: shards report when drained */
	struct app_drain drain;
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
	if (srv->nshards > 1)
		app_drain_done(&srv->drain);
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

static int server_listen_one(struct echo_server *srv, struct proa_loop *loop,
			     uint16_t *port)
{
	const struct config *cfg = srv->cfg;
	struct proa_server_options opt = {.reuse_port = cfg->reuseport,
					  .tls = cfg->tls};
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
	struct proa_server_options opt = {.reuse_port = cfg->reuseport,
					  .tls = cfg->tls};
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
	srv->drain.total = srv->nshards;
	for (unsigned i = 0; i < srv->nshards; i++) {
		srv->shards[i].loop = proa_loop_group_loop(g, i);
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
	for (unsigned i = 0; i < srv->nshards; i++) {
		ret = proa_loop_call_soon_threadsafe(
		    srv->shards[i].loop, &srv->shards[i].close_h,
		    shard_close_all, &srv->shards[i]);
		if (ret < 0)
			app_drain_done(&srv->drain);
	}
	app_drain_wait(&srv->drain,
		       (unsigned)(SHUTDOWN_GRACE_NS / 1000000000ull));
	/* Closes the listeners, aborts what did not drain, joins the loops:
	 * the counters are ours to read after it. */
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

	srv.shards = calloc(cfg->loops, sizeof(*srv.shards));
	if (!srv.shards) {
		fail("out of memory");
		return 1;
	}
	srv.shards[0].srv = &srv;
	proa_list_init(&srv.shards[0].conns);
	app_drain_init(&srv.drain, 0);
	if (cfg->loops > 1)
		ret = run_server_group(&srv, sigs);
	else
		ret = run_server_loop(&srv);
	app_drain_destroy(&srv.drain);
	free(srv.shards);
	return ret;
}

/* ---- client ------------------------------------------------------------ */

struct client;

struct client_conn {
	struct proa_protocol proto;
	struct proa_datagram_protocol dp; /* UDP */
	struct client *cl;
	unsigned id;
	bool connecting;	  /* @fut is pending */
	struct proa_future fut;	  /* connect */
	struct proa_transport *t; /* stream: open while not NULL */
	struct proa_udp *u;	  /* UDP: open while not NULL */
	unsigned inflight;	  /* messages sent, not yet back */
	uint64_t tx_off;	  /* stream offset of the next message */
	uint64_t rx_off;	  /* stream bytes received */
	size_t rx_part;		  /* bytes of the current message */
	uint64_t rx_msgs;	  /* UDP: progress, for the stall check */
	uint64_t rx_msgs_seen;
	char tls_error[256]; /* why a TLS handshake failed */
};

struct client {
	const struct config *cfg;
	struct proa_loop *loop;
	struct client_conn *conns;
	unsigned nconns;
	unsigned nconnected;
	unsigned nopen;
	bool started;
	bool stopping;
	int status;	 /* the exit status */
	uint64_t issued; /* messages sent and not given up as lost */
	uint64_t done;	 /* messages back */
	uint64_t lost;	 /* UDP datagrams sent again */
	uint64_t t0;
	uint64_t t1;
	struct proa_timer duration;
	struct proa_timer stall;
	struct proa_signal sig[2];
	/* pattern[i] = i % PATTERN_PERIOD, @size + PATTERN_PERIOD bytes, so
	 * any @size bytes of any phase are one slice of it */
	unsigned char *pattern;
	char target[300];
	struct sockaddr_storage remote;
	socklen_t remote_len;
};

/* Connection @id's stream starts at this phase of the pattern, so that
 * bytes delivered to the wrong connection do not compare equal. */
static size_t conn_phase(const struct client_conn *c, uint64_t off)
{
	return (size_t)(((uint64_t)c->id * 97u + off) % PATTERN_PERIOD);
}

static void client_finish(struct client *cl);

static void client_fail(struct client *cl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void client_fail(struct client *cl, const char *fmt, ...)
{
	va_list ap;

	if (cl->stopping)
		return;
	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	/* va_start above: the analyzer misses it (a false positive) */
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized) */
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	cl->status = 1;
	client_finish(cl);
}

static bool may_issue(const struct client *cl)
{
	return !cl->stopping &&
	       (!cl->cfg->count || cl->issued < cl->cfg->count);
}

static void send_more(struct client_conn *c)
{
	struct client *cl = c->cl;
	size_t size = cl->cfg->size;
	const unsigned char *msg;
	int ret;

	while (c->inflight < cl->cfg->depth && may_issue(cl)) {
		msg = cl->pattern + conn_phase(c, c->tx_off);
		if (c->u)
			ret = proa_udp_sendto(c->u, msg, size, NULL, 0);
		else
			ret = proa_transport_write(c->t, msg, size);
		if (ret == -EAGAIN && c->u)
			return; /* the stall check sends it later */
		if (ret < 0) {
			client_fail(cl, "send to %s: %s", cl->target,
				    proa_strerror(ret));
			return;
		}
		if (!c->u)
			c->tx_off += size;
		c->inflight++;
		cl->issued++;
	}
}

static void message_done(struct client_conn *c)
{
	struct client *cl = c->cl;

	c->inflight--;
	cl->done++;
	if (cl->cfg->count && cl->done >= cl->cfg->count)
		client_finish(cl);
}

/* Compare @len received bytes at stream offset @c->rx_off with the
 * pattern, one slice of at most @size bytes at a time. */
static bool verify_stream(struct client_conn *c, const unsigned char *data,
			  size_t len)
{
	struct client *cl = c->cl;
	uint64_t off = c->rx_off;

	while (len) {
		size_t n = len < cl->cfg->size ? len : cl->cfg->size;

		if (memcmp(data, cl->pattern + conn_phase(c, off), n) != 0) {
			for (size_t i = 0; i < n; i++)
				if (data[i] !=
				    cl->pattern[conn_phase(c, off + i)]) {
					off += i;
					break;
				}
			client_fail(cl,
				    "verify: connection %u: wrong byte at "
				    "offset %llu",
				    c->id, (unsigned long long)off);
			return false;
		}
		data += n;
		off += n;
		len -= n;
	}
	return true;
}

static struct client_conn *cconn_of(struct proa_protocol *p)
{
	return proa_container_of(p, struct client_conn, proto);
}

static void cl_made(struct proa_protocol *p, struct proa_transport *t)
{
	struct client_conn *c = cconn_of(p);

	c->t = t;
	c->cl->nopen++;
}

static void cl_data(struct proa_protocol *p, const void *data, size_t len)
{
	struct client_conn *c = cconn_of(p);
	struct client *cl = c->cl;

	if (cl->stopping)
		return;
	if (cl->cfg->verify && !verify_stream(c, data, len))
		return;
	c->rx_off += len;
	c->rx_part += len;
	while (c->rx_part >= cl->cfg->size && !cl->stopping) {
		c->rx_part -= cl->cfg->size;
		if (!c->inflight) {
			client_fail(cl,
				    "connection %u: more bytes back than "
				    "were sent",
				    c->id);
			return;
		}
		message_done(c);
	}
	send_more(c);
}

static void cl_lost(struct proa_protocol *p, int err)
{
	struct client_conn *c = cconn_of(p);
	struct client *cl = c->cl;

	c->t = NULL;
	cl->nopen--;
	if (err)
		client_fail(cl, "connection to %s lost: %s", cl->target,
			    proa_strerror(err));
	else
		client_fail(cl, "connection to %s closed by the server",
			    cl->target);
}

static const struct proa_protocol_ops client_ops = {
    .connection_made = cl_made,
    .data_received = cl_data,
    .connection_lost = cl_lost,
};

static struct proa_protocol *client_factory(void *arg, struct proa_transport *t)
{
	struct client_conn *c = arg;

	(void)t;
	return &c->proto;
}

static void on_duration(void *arg)
{
	client_finish(arg);
}

/* UDP: a datagram or its echo may be lost; an endpoint that made no
 * progress for a whole period gives up what is in flight and resends. */
static void on_stall_check(void *arg)
{
	struct client *cl = arg;

	for (unsigned i = 0; i < cl->nconns && !cl->stopping; i++) {
		struct client_conn *c = &cl->conns[i];

		if (c->rx_msgs == c->rx_msgs_seen) {
			cl->lost += c->inflight;
			cl->issued -= c->inflight;
			c->inflight = 0;
			send_more(c);
		}
		c->rx_msgs_seen = c->rx_msgs;
	}
}

static void client_start(struct client *cl)
{
	int ret;

	cl->started = true;
	cl->t0 = proa_loop_update_time(cl->loop);
	if (!cl->cfg->count) {
		ret = proa_loop_call_later(cl->loop, &cl->duration,
					   (uint64_t)(cl->cfg->duration * 1e9),
					   on_duration, cl);
		if (ret < 0) {
			client_fail(cl, "timer: %s", proa_strerror(ret));
			return;
		}
	}
	if (cl->cfg->udp) {
		ret = proa_timer_start(cl->loop, &cl->stall, UDP_STALL_NS,
				       UDP_STALL_NS, on_stall_check, cl);
		if (ret < 0) {
			client_fail(cl, "timer: %s", proa_strerror(ret));
			return;
		}
	}
	for (unsigned i = 0; i < cl->nconns && !cl->stopping; i++)
		send_more(&cl->conns[i]);
}

static void on_connected(struct proa_future *fut, void *arg)
{
	struct client_conn *c = arg;
	struct client *cl = c->cl;
	void *val = NULL;
	int ret;

	(void)fut;
	c->connecting = false;
	ret = proa_future_result(&c->fut, &val);
	if (ret < 0) {
		if (ret != -ECANCELED && c->tls_error[0])
			client_fail(cl, "TLS: %s", c->tls_error);
		else if (ret != -ECANCELED)
			client_fail(cl, "connect %s: %s", cl->target,
				    proa_strerror(ret));
		return;
	}
	if (cl->stopping) {
		/* won the race with the cancel */
		if (c->t && !proa_transport_is_closing(c->t))
			proa_transport_close(c->t);
		return;
	}
	if (++cl->nconnected == cl->nconns)
		client_start(cl);
}

static void client_stop(struct proa_signal *sig)
{
	client_finish(sig->data);
}

/* Stop sending, take the time, and close everything; the loop ends once
 * the last connection is gone. */
static void client_finish(struct client *cl)
{
	if (cl->stopping)
		return;
	cl->stopping = true;
	cl->t1 = proa_loop_update_time(cl->loop);
	if (proa_timer_is_active(&cl->duration))
		proa_timer_cancel(&cl->duration);
	if (proa_timer_is_active(&cl->stall))
		proa_timer_cancel(&cl->stall);
	proa_signal_stop(&cl->sig[0]);
	proa_signal_stop(&cl->sig[1]);
	for (unsigned i = 0; i < cl->nconns; i++) {
		struct client_conn *c = &cl->conns[i];

		if (c->connecting)
			proa_future_cancel(&c->fut);
		if (c->t)
			proa_transport_close(c->t);
		if (c->u)
			proa_udp_close(c->u);
	}
}

static void cl_datagram(struct proa_datagram_protocol *p, const void *data,
			size_t len, const struct sockaddr *from,
			socklen_t fromlen)
{
	struct client_conn *c = proa_container_of(p, struct client_conn, dp);
	struct client *cl = c->cl;

	(void)from;
	(void)fromlen;
	if (cl->stopping)
		return;
	if (cl->cfg->verify &&
	    (len != cl->cfg->size ||
	     memcmp(data, cl->pattern + conn_phase(c, 0), len) != 0)) {
		client_fail(cl,
			    "verify: endpoint %u: wrong datagram (%zu bytes)",
			    c->id, len);
		return;
	}
	c->rx_msgs++;
	/* an echo of a datagram already given up as lost does not count */
	if (c->inflight)
		message_done(c);
	send_more(c);
}

static void cl_udp_error(struct proa_datagram_protocol *p, int err)
{
	struct client_conn *c = proa_container_of(p, struct client_conn, dp);

	client_fail(c->cl, "udp %s: %s", c->cl->target, proa_strerror(err));
}

static void cl_udp_closed(struct proa_datagram_protocol *p, int err)
{
	struct client_conn *c = proa_container_of(p, struct client_conn, dp);

	(void)err;
	c->u = NULL;
	c->cl->nopen--;
}

static const struct proa_datagram_protocol_ops client_udp_ops = {
    .datagram_received = cl_datagram,
    .error_received = cl_udp_error,
    .connection_lost = cl_udp_closed,
};

static int client_open(struct client *cl, struct client_conn *c)
{
	const struct config *cfg = cl->cfg;
	struct proa_connect_options copt = {
	    .timeout_ns = CONNECT_TIMEOUT_NS,
	    .tls = cfg->tls,
	    .server_hostname = cfg->tls_name,
	    .tls_error = c->tls_error,
	    .tls_error_len = sizeof(c->tls_error),
	};
	int ret;

	if (cfg->udp) {
		struct proa_udp_options uopt = {
		    .remote = (struct sockaddr *)&cl->remote,
		    .remote_len = cl->remote_len,
		};

		c->dp.ops = &client_udp_ops;
		ret = proa_udp_bind(&c->u, cl->loop, NULL, 0, &uopt, &c->dp);
		if (ret == 0)
			cl->nopen++;
		return ret;
	}
	proa_future_init(&c->fut, cl->loop);
	if (cfg->unix_path)
		ret = proa_unix_connect(cl->loop, cfg->unix_path, &copt,
					client_factory, c, &c->fut);
	else
		ret = proa_tcp_connect(cl->loop, cfg->host, cfg->port, &copt,
				       client_factory, c, &c->fut);
	if (ret == 0)
		ret = proa_future_add_done_callback(&c->fut, on_connected, c);
	if (ret == 0)
		c->connecting = true;
	return ret;
}

static void print_result(const struct client *cl)
{
	const struct config *cfg = cl->cfg;
	double secs = (double)(cl->t1 - cl->t0) / 1e9;
	double rate = secs > 0 ? (double)cl->done / secs : 0;

	printf("{\"connections\":%u,\"size\":%zu,\"depth\":%u,"
	       "\"seconds\":%.6f,\"messages\":%llu,\"msgs_per_s\":%.1f,"
	       "\"mbytes_per_s\":%.3f}\n",
	       cl->nconns, cfg->size, cfg->depth, secs,
	       (unsigned long long)cl->done, rate,
	       rate * (double)cfg->size / 1e6);
	fflush(stdout);
	if (cl->lost)
		fprintf(stderr, PROG ": %llu datagrams lost and sent again\n",
			(unsigned long long)cl->lost);
}

static int run_client(const struct config *cfg)
{
	struct client cl = {.cfg = cfg, .nconns = cfg->connections};
	size_t patlen = cfg->size + PATTERN_PERIOD;
	int ret;

	format_target(cl.target, sizeof(cl.target), cfg, cfg->port);
	if (cfg->udp) {
		ret = resolve_udp(cfg->host, cfg->port, &cl.remote,
				  &cl.remote_len);
		if (ret < 0) {
			fail("udp %s: %s", cl.target, proa_strerror(ret));
			return 1;
		}
	}
	cl.conns = calloc(cl.nconns, sizeof(*cl.conns));
	cl.pattern = malloc(patlen);
	if (!cl.conns || !cl.pattern) {
		fail("out of memory");
		goto out_free;
	}
	for (size_t i = 0; i < patlen; i++)
		cl.pattern[i] = (unsigned char)(i % PATTERN_PERIOD);
	if (new_loop(&cl.loop) < 0)
		goto out_free;
	ret = proa_signal_start(cl.loop, &cl.sig[0], SIGINT, client_stop, &cl);
	if (ret == 0)
		ret = proa_signal_start(cl.loop, &cl.sig[1], SIGTERM,
					client_stop, &cl);
	if (ret < 0)
		client_fail(&cl, "cannot watch signals: %s",
			    proa_strerror(ret));
	for (unsigned i = 0; i < cl.nconns && !cl.stopping; i++) {
		struct client_conn *c = &cl.conns[i];

		c->proto.ops = &client_ops;
		c->cl = &cl;
		c->id = i;
		ret = client_open(&cl, c);
		if (ret < 0)
			client_fail(&cl, "%s %s: %s",
				    cfg->udp ? "udp" : "connect", cl.target,
				    proa_strerror(ret));
	}
	if (cfg->udp && !cl.stopping)
		client_start(&cl);
	ret = proa_loop_run(cl.loop, PROA_RUN_DEFAULT);
	if (ret < 0) {
		fail("loop: %s", proa_strerror(ret));
		cl.status = 1;
	}
	for (unsigned i = 0; i < cl.nconns; i++)
		if (cl.conns[i].cl && !cfg->udp)
			proa_future_fini(&cl.conns[i].fut);
	if (finish_loop(cl.loop) < 0)
		cl.status = 1;
	if (cl.status == 0 && cl.started)
		print_result(&cl);
	free(cl.pattern);
	free(cl.conns);
	return cl.status;
out_free:
	free(cl.pattern);
	free(cl.conns);
	return 1;
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
	if (!make_tls(&cfg))
		return 1;
	block_stop_signals(&sigs);
	ret = cfg.role == ROLE_SERVER ? run_server(&cfg, &sigs)
				      : run_client(&cfg);
	proa_tls_context_free(cfg.tls);
	return ret;
}
