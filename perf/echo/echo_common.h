/* SPDX-License-Identifier: MIT */
/*
 * perf/echo: what the three peer echo servers share -- their command line
 * and their listening socket, so that epoll, libuv and libevent start from
 * exactly the same socket.
 */
#ifndef PROA_PERF_ECHO_COMMON_H
#define PROA_PERF_ECHO_COMMON_H

#define ECHO_BUF_SIZE (64 * 1024)

struct echo_args {
	const char *host;
	const char *port;
};

/*
 * Parse "--host H --port N --help".  Prints the usage and exits 0 on
 * --help; prints a message and exits 2 on a bad argument.
 */
void echo_parse_args(struct echo_args *a, int argc, char **argv,
		     const char *prog, const char *what);

/*
 * A non-blocking, close-on-exec listening TCP socket bound to host:port
 * (SO_REUSEADDR, backlog SOMAXCONN).  Returns the fd, or exits 1 with a
 * message.
 */
int echo_listen(const struct echo_args *a, const char *prog);

/* Prints "listening on HOST:PORT" (the bound port) to stdout and flushes. */
void echo_announce(int fd, const struct echo_args *a);

/* TCP_NODELAY on an accepted socket; errors are ignored. */
void echo_nodelay(int fd);

#endif /* PROA_PERF_ECHO_COMMON_H */
