/* SPDX-License-Identifier: MIT */
/*
 * proa-inetd - a tiny supervisor: it listens on TCP and, for every
 * connection, runs a command whose standard input, output and error are
 * the connection (inetd's "nowait" services, ucspi-tcp's tcpserver).
 * Built on the public headers only: the accept is a proa_op_accept(), the
 * command a proa_spawn() with the socket as PROA_STDIO_FD, its exit a
 * completion on the same loop, and SIGTERM a signal watch.
 *
 *   proa-inetd [--host H] [--port N] [--max-children N] [--grace SECS]
 *              -- COMMAND [ARGS...]
 *
 * Once listening it prints exactly one line, "listening on HOST:PORT",
 * with the port really bound.  The command gets the environment of
 * proa-inetd plus PROTO=TCP, TCPREMOTEIP, TCPREMOTEPORT and TCPLOCALPORT
 * (tcpserver's names).
 *
 * --max-children bounds the commands running at once: at the bound no
 * connection is accepted (they wait in the listen backlog) until one
 * exits.  SIGTERM or SIGINT drains: the listener closes at once (new
 * connections are refused), running commands may finish; after --grace
 * seconds those still running get SIGTERM, and SIGKILL 2 s later.  A
 * second signal kills them at once.  Then a summary goes to stderr and
 * the exit status is 0.  Each command runs in a session of its own (so a
 * terminal's ^C reaches inetd only), and those signals go to its whole
 * process group: what it started goes with it.  It gets no descriptor of
 * inetd's but the connection.
 *
 * A command that cannot be started (no such file, not executable) is
 * reported on stderr with the reason proa_spawn() gives, and its
 * connection is closed.
 *
 * One loop, one thread: a supervisor waits on children, not on CPU.
 *
 * Exit: 0 after a drain, 1 on a runtime failure (cannot listen), 2 for bad
 * arguments.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <proa.h>

#define PROG "proa-inetd"
#define MS 1000000ull
#define KILL_AFTER_TERM_NS (2000ull * MS)

struct child {
	struct proa_link link; /* on inetd.children */
	struct proa_process *p;
	struct inetd *d;
};

struct inetd {
	struct proa_loop *loop;
	char **argv; /* the command */
	int lfd;
	uint16_t port;
	struct proa_op accept_op;
	struct sockaddr_storage peer;
	unsigned peerlen;
	struct proa_timer retry; /* accept again after EMFILE and the like */
	/* a connection whose command could not start for want of
	 * descriptors, processes or memory: started again when @retry
	 * fires, and nothing more is accepted meanwhile (-1: none) */
	int held_fd;
	unsigned held_tries; /* retries of @held_fd so far */
	unsigned max_children;
	unsigned running;
	struct proa_link children;
	bool draining;
	uint64_t grace_ns;
	struct proa_timer grace;
	bool termed; /* the grace ran out: SIGTERM sent */
	struct proa_signal sig[2];
	uint64_t accepted, spawn_failed, exited_ok, exited_bad;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " [--host H] [--port N] [--max-children N] "
		"[--grace SECS]\n"
		"                  -- COMMAND [ARGS...]\n"
		"\n"
		"Listen on TCP and run COMMAND for every connection, with the\n"
		"connection as its standard input, output and error.\n"
		"\n"
		"  -H, --host H           IPv4 or IPv6 address (127.0.0.1)\n"
		"  -p, --port N           port (0: any free one)\n"
		"  -m, --max-children N   commands running at once (64)\n"
		"  -g, --grace SECS       after SIGTERM, how long running "
		"commands\n"
		"                         may finish before they are "
		"killed (10)\n"
		"  -h, --help             this text\n"
		"\n"
		"Prints \"listening on HOST:PORT\" once ready.  SIGTERM or "
		"SIGINT\n"
		"stops accepting and waits for the commands.  Exit: 0 ok, 1 "
		"runtime\nfailure, 2 bad arguments.\n");
}

static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > max || s[0] == '-')
		return false;
	*out = v;
	return true;
}

/* ---- the listening socket --------------------------------------------- */

static bool is_ip(const char *s)
{
	struct in6_addr a;

	return inet_pton(AF_INET, s, &a) == 1 ||
	       inet_pton(AF_INET6, s, &a) == 1;
}

static int listen_on(const char *host, uint16_t port, uint16_t *bound)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	int fd, one = 1;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
		len = sizeof(*in4);
	} else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		len = sizeof(*in6);
	} else {
		fprintf(stderr, PROG ": --host %s: not an IP address\n", host);
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 128) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	*bound =
	    ntohs(ss.ss_family == AF_INET ? in4->sin_port : in6->sin6_port);
	return fd;
}

/* ---- children ---------------------------------------------------------- */

static void arm_accept(struct inetd *d);
static void finish_if_drained(struct inetd *d);

static void child_exit(struct proa_process *p, int code, int sig, void *arg)
{
	struct child *c = arg;
	struct inetd *d = c->d;

	if (code == 0)
		d->exited_ok++;
	else
		d->exited_bad++;
	(void)sig;
	proa_list_del(&c->link);
	proa_process_close(p);
	free(c);
	d->running--;
	if (d->draining)
		finish_if_drained(d);
	else
		arm_accept(d);
}

static void peer_words(const struct sockaddr_storage *ss, char *ip,
		       size_t iplen, unsigned *port)
{
	const struct sockaddr_in *in4 = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;

	*port = 0;
	snprintf(ip, iplen, "?");
	if (ss->ss_family == AF_INET) {
		inet_ntop(AF_INET, &in4->sin_addr, ip, (socklen_t)iplen);
		*port = ntohs(in4->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, (socklen_t)iplen);
		*port = ntohs(in6->sin6_port);
	}
}

static bool env_ours(const char *e)
{
	return strncmp(e, "PROTO=", 6) == 0 ||
	       strncmp(e, "TCPREMOTE", 9) == 0 ||
	       strncmp(e, "TCPLOCAL", 8) == 0;
}

/* A shortage that passes (the command can start once others exit). */
static bool shortage(int err)
{
	return err == -EMFILE || err == -ENFILE || err == -ENOMEM ||
	       err == -EAGAIN || err == -ENOBUFS;
}

/* Run the command on connection @fd (its peer in d->peer): 0, with @fd
 * closed (the command has its copies, or it could not start for good);
 * or a shortage() error, with @fd still the caller's, to try again. */
static int serve(struct inetd *d, int fd)
{
	char ip[INET6_ADDRSTRLEN], e_ip[80], e_port[40], e_lport[40];
	struct proa_spawn_opts o;
	struct child *c;
	size_t n = 0, i, k = 0;
	char **envp;
	unsigned port;
	int ret, fl;

	/* The socket is the command's stdio: a blocking one, as a program
	 * reading its stdin expects (the flag is the open file's, shared). */
	fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	peer_words(&d->peer, ip, sizeof(ip), &port);
	snprintf(e_ip, sizeof(e_ip), "TCPREMOTEIP=%s", ip);
	snprintf(e_port, sizeof(e_port), "TCPREMOTEPORT=%u", port);
	snprintf(e_lport, sizeof(e_lport), "TCPLOCALPORT=%u", d->port);
	while (environ && environ[n])
		n++;
	envp = calloc(n + 5, sizeof(*envp));
	c = calloc(1, sizeof(*c));
	if (!envp || !c) {
		free(c);
		free(envp);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++)
		if (!env_ours(environ[i]))
			envp[k++] = environ[i];
	envp[k++] = "PROTO=TCP";
	envp[k++] = e_ip;
	envp[k++] = e_port;
	envp[k++] = e_lport;

	memset(&o, 0, sizeof(o));
	/* A session of its own: the terminal's ^C and a supervisor's kill of
	 * our group reach inetd alone, which then grants the grace; and the
	 * command's own children share its group, so the drain's signals
	 * reach them too.  No descriptor of ours but the socket goes along:
	 * what inetd inherited (a launcher's pipe, a secret) is not a
	 * network client's business. */
	o.flags = PROA_SPAWN_SETSID | PROA_SPAWN_CLOSE_FDS;
	o.argv = d->argv;
	o.envp = envp;
	for (i = 0; i < 3; i++) {
		o.stdio[i].kind = PROA_STDIO_FD;
		o.stdio[i].fd = fd;
	}
	o.on_exit = child_exit;
	o.arg = c;
	ret = proa_spawn(&c->p, d->loop, &o);
	if (shortage(ret)) {
		free(c);
		free(envp);
		return ret;
	}
	if (ret < 0) {
		d->spawn_failed++;
		fprintf(stderr, PROG ": cannot run %s for %s:%u: %s\n",
			d->argv[0], ip, port, proa_strerror(ret));
		goto out;
	}
	c->d = d;
	proa_list_add_tail(&d->children, &c->link);
	d->running++;
	c = NULL;
out:
	free(c);
	free(envp);
	close(fd); /* the child has its copies */
	return 0;
}

/* ---- accepting ------------------------------------------------------- */

static void retry_accept(void *arg);

/* How long a held connection waits while no command runs (so none will
 * exit and give back what was short): 50 retries, 5 s. */
#define HOLD_TRIES_IDLE 50

/* Out of descriptors, processes or memory for @fd's command: keep the
 * connection and stop accepting for a while (the backlog keeps the
 * others), rather than take and drop every waiting client.  Said once per
 * connection held, not at every retry. */
static void hold(struct inetd *d, int fd, int err)
{
	if (d->held_tries == 0)
		fprintf(stderr,
			PROG
			": cannot start a command now (%s); the connection "
			"waits, accepting pauses\n",
			proa_strerror(err));
	d->held_fd = fd;
	proa_loop_call_later(d->loop, &d->retry, 100 * MS, retry_accept, d);
}

static void retry_accept(void *arg)
{
	struct inetd *d = arg;
	int fd = d->held_fd, ret;

	if (fd >= 0) {
		d->held_fd = -1;
		ret = serve(d, fd);
		if (ret < 0 && ++d->held_tries >= HOLD_TRIES_IDLE &&
		    d->running == 0) {
			/* Nothing runs, so nothing will give back what is
			 * short: the shortage is the process's own (a low
			 * RLIMIT_NOFILE, RLIMIT_NPROC) and waiting longer
			 * would hold the client and the backlog for ever. */
			fprintf(stderr,
				PROG ": cannot start a command for 5 s with "
				     "none running (%s); connection closed\n",
				proa_strerror(ret));
			close(fd);
			d->spawn_failed++;
		} else if (ret < 0) {
			hold(d, fd, ret);
			return;
		}
		d->held_tries = 0;
	}
	arm_accept(d);
}

static void on_accept(struct proa_op *op)
{
	struct inetd *d = op->data;
	int res = op->res, ret;

	if (res >= 0) {
		if (d->draining) {
			close(res);
			finish_if_drained(d);
			return;
		}
		d->accepted++;
		ret = serve(d, res);
		if (ret < 0)
			hold(d, res, ret);
		else
			arm_accept(d);
		return;
	}
	if (d->draining) { /* the cancel of the drain, or a late error */
		finish_if_drained(d);
		return;
	}
	fprintf(stderr, PROG ": accept: %s\n", proa_strerror(res));
	/* Out of descriptors or memory: try again shortly rather than spin;
	 * a connection reset before the accept: at once. */
	if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS ||
	    res == -ENOMEM)
		proa_loop_call_later(d->loop, &d->retry, 100 * MS, retry_accept,
				     d);
	else
		arm_accept(d);
}

/* One accept in flight while below the bound, none at it: connections
 * beyond the bound wait in the kernel's backlog. */
static void arm_accept(struct inetd *d)
{
	int ret;

	if (d->draining || d->lfd < 0 || d->running >= d->max_children ||
	    d->held_fd >= 0 || !proa_op_is_idle(&d->accept_op) ||
	    proa_timer_is_active(&d->retry))
		return;
	d->peerlen = sizeof(d->peer);
	ret = proa_op_accept(d->loop, &d->accept_op, d->lfd,
			     (struct sockaddr *)&d->peer, &d->peerlen, 0);
	if (ret < 0) {
		fprintf(stderr, PROG ": accept: %s\n", proa_strerror(ret));
		proa_loop_call_later(d->loop, &d->retry, 100 * MS, retry_accept,
				     d);
	}
}

/* ---- draining --------------------------------------------------------- */

/* Each running command and what it started: its process group (it leads
 * one, PROA_SPAWN_SETSID).  The command is not reaped yet, so its number
 * cannot name another group.  Processes that left the group, or that a
 * command left behind when it exited, are not followed. */
static void kill_all(struct inetd *d, int sig)
{
	struct proa_process *p;
	struct proa_link *l;

	for (l = d->children.next; l != &d->children; l = l->next) {
		p = proa_container_of(l, struct child, link)->p;
		if (kill(-proa_process_pid(p), sig) < 0)
			proa_process_kill(p, sig);
	}
}

static void on_grace(void *arg)
{
	struct inetd *d = arg;

	if (!d->termed) {
		fprintf(stderr, PROG ": grace over: SIGTERM to %u\n",
			d->running);
		d->termed = true;
		kill_all(d, SIGTERM);
		proa_loop_call_later(d->loop, &d->grace, KILL_AFTER_TERM_NS,
				     on_grace, d);
	} else {
		fprintf(stderr, PROG ": SIGKILL to %u\n", d->running);
		kill_all(d, SIGKILL);
	}
}

/* Once the listener's accept is back and no command runs, nothing of
 * ours is left on the loop: proa_loop_run() returns. */
static void finish_if_drained(struct inetd *d)
{
	if (!proa_op_is_idle(&d->accept_op))
		return;
	if (d->lfd >= 0) {
		close(d->lfd);
		d->lfd = -1;
	}
	if (d->running > 0)
		return;
	proa_timer_cancel(&d->grace);
	proa_signal_stop(&d->sig[0]);
	proa_signal_stop(&d->sig[1]);
}

static void on_signal(struct proa_signal *s)
{
	struct inetd *d = s->data;

	if (d->draining) {
		fprintf(stderr, PROG ": second signal: SIGKILL to %u\n",
			d->running);
		kill_all(d, SIGKILL);
		return;
	}
	d->draining = true;
	fprintf(stderr, PROG ": draining, %u running\n", d->running);
	proa_timer_cancel(&d->retry);
	if (d->held_fd >= 0) { /* never started: closed as the backlog is */
		close(d->held_fd);
		d->held_fd = -1;
	}
	if (!proa_op_is_idle(&d->accept_op))
		proa_op_cancel(&d->accept_op);
	/* With the accept back, the listener closes now: connections are
	 * refused from here on (else on_accept() closes it). */
	finish_if_drained(d);
	if (d->running > 0 && d->grace_ns > 0)
		proa_loop_call_later(d->loop, &d->grace, d->grace_ns, on_grace,
				     d);
	else if (d->running > 0)
		on_grace(d);
}

/* ---- main ------------------------------------------------------------ */

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"host", required_argument, NULL, 'H'},
	    {"port", required_argument, NULL, 'p'},
	    {"max-children", required_argument, NULL, 'm'},
	    {"grace", required_argument, NULL, 'g'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *host = "127.0.0.1";
	struct inetd d;
	unsigned long v;
	uint16_t port = 0;
	sigset_t set;
	int c, ret;

	memset(&d, 0, sizeof(d));
	d.max_children = 64;
	d.grace_ns = 10000 * MS;
	d.lfd = -1;
	d.held_fd = -1;
	proa_list_init(&d.children);
	/* NOLINTNEXTLINE(concurrency-mt-unsafe): before any thread */
	while ((c = getopt_long(argc, argv, "+H:p:m:g:h", opts, NULL)) != -1) {
		switch (c) {
		case 'H':
			if (!is_ip(optarg)) {
				fprintf(stderr,
					PROG ": bad --host %s: not an IPv4 or "
					     "IPv6 address\n",
					optarg);
				return 2;
			}
			host = optarg;
			break;
		case 'p':
			if (!parse_uint(optarg, 65535, &v)) {
				fprintf(stderr, PROG ": bad --port %s\n",
					optarg);
				return 2;
			}
			port = (uint16_t)v;
			break;
		case 'm':
			if (!parse_uint(optarg, 100000, &v) || v == 0) {
				fprintf(stderr,
					PROG ": bad --max-children %s\n",
					optarg);
				return 2;
			}
			d.max_children = (unsigned)v;
			break;
		case 'g':
			if (!parse_uint(optarg, 86400, &v)) {
				fprintf(stderr, PROG ": bad --grace %s\n",
					optarg);
				return 2;
			}
			d.grace_ns = v * 1000 * MS;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, PROG ": no command (put it after --)\n");
		usage(stderr);
		return 2;
	}
	d.argv = argv + optind;

	/* Blocked before any thread exists, so they reach the loop's
	 * signalfd; the commands start with an empty mask and default
	 * dispositions (proa_spawn() resets both). */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	ret = proa_loop_new(&d.loop, NULL);
	if (ret < 0) {
		fprintf(stderr, PROG ": no loop: %s\n", proa_strerror(ret));
		return 1;
	}
	ret = listen_on(host, port, &d.port);
	if (ret < 0) {
		fprintf(stderr, PROG ": cannot listen on %s:%u: %s\n", host,
			port, proa_strerror(ret));
		proa_loop_free(d.loop);
		return 1;
	}
	d.lfd = ret;
	proa_op_init(&d.accept_op, on_accept, &d);
	if (proa_signal_start(d.loop, &d.sig[0], SIGTERM, on_signal, &d) < 0 ||
	    proa_signal_start(d.loop, &d.sig[1], SIGINT, on_signal, &d) < 0) {
		fprintf(stderr, PROG ": cannot watch signals\n");
		return 1;
	}
	arm_accept(&d);
	printf(strchr(host, ':') ? "listening on [%s]:%u\n"
				 : "listening on %s:%u\n",
	       host, d.port);
	fflush(stdout);

	ret = proa_loop_run(d.loop, PROA_RUN_DEFAULT);
	if (ret < 0)
		fprintf(stderr, PROG ": loop: %s\n", proa_strerror(ret));
	fprintf(stderr,
		PROG ": %llu connections, %llu commands exited 0, %llu "
		     "otherwise, %llu could not start\n",
		(unsigned long long)d.accepted, (unsigned long long)d.exited_ok,
		(unsigned long long)d.exited_bad,
		(unsigned long long)d.spawn_failed);
	ret = proa_loop_free(d.loop);
	if (ret < 0) {
		fprintf(stderr, PROG ": close: %s\n", proa_strerror(ret));
		return 1;
	}
	return 0;
}
