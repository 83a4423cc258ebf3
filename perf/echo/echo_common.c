/* SPDX-License-Identifier: MIT */
/*
 * perf/echo/echo_common.c - command line and listening socket of the peer
 * echo servers.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "echo_common.h"

static void usage(FILE *f, const char *prog, const char *what)
{
	fprintf(f,
		"usage: %s [--host H] [--port N]\n"
		"%s\n"
		"  --host H   address to listen on (default 127.0.0.1)\n"
		"  --port N   port to listen on; 0 picks one (default 0)\n"
		"When ready it prints \"listening on HOST:PORT\" to stdout.\n"
		"SIGINT or SIGTERM ends it with status 0.\n",
		prog, what);
}

static int parse_port(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0 || v > 65535)
		return -1;
	return (int)v;
}

void echo_parse_args(struct echo_args *a, int argc, char **argv,
		     const char *prog, const char *what)
{
	a->host = "127.0.0.1";
	a->port = "0";
	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i];

		if (!strcmp(opt, "--help") || !strcmp(opt, "-h")) {
			usage(stdout, prog, what);
			exit(0);
		}
		if (strcmp(opt, "--host") != 0 && strcmp(opt, "--port") != 0) {
			fprintf(stderr, "%s: unknown argument '%s'\n", prog,
				opt);
			goto bad;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "%s: %s needs a value\n", prog, opt);
			goto bad;
		}
		if (!strcmp(opt, "--host")) {
			a->host = argv[++i];
		} else {
			a->port = argv[++i];
			if (parse_port(a->port) < 0) {
				fprintf(stderr,
					"%s: --port: '%s' is not a port "
					"number (0-65535)\n",
					prog, a->port);
				goto bad;
			}
		}
	}
	return;
bad:
	usage(stderr, prog, what);
	exit(2);
}

int echo_listen(const struct echo_args *a, const char *prog)
{
	struct addrinfo hints = {0};
	struct addrinfo *res;
	int one = 1;
	int fd;
	int ret;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	ret = getaddrinfo(a->host, a->port, &hints, &res);
	if (ret) {
		fprintf(stderr, "%s: %s: %s\n", prog, a->host,
			gai_strerror(ret));
		exit(1);
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0)
		goto err;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0)
		goto err;
	if (listen(fd, SOMAXCONN) < 0)
		goto err;
	freeaddrinfo(res);
	return fd;
err:
	fprintf(stderr, "%s: listen on %s:%s: %s\n", prog, a->host, a->port,
		strerror(errno));
	exit(1);
}

void echo_announce(int fd, const struct echo_args *a)
{
	struct sockaddr_storage ss = {0};
	socklen_t len = sizeof(ss);
	int port = 0;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET)
			port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		else if (ss.ss_family == AF_INET6)
			port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	printf("listening on %s:%d\n", a->host, port);
	fflush(stdout);
}

void echo_nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}
