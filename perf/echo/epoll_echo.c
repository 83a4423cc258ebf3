/* SPDX-License-Identifier: MIT */
/*
 * perf/echo/epoll_echo.c - echo-epoll: the hand-written readiness-loop peer.
 *
 * One thread, one epoll set, level-triggered.  The listener is
 * non-blocking and drained with accept4() until EAGAIN.  A readable
 * connection gets one read() into a shared 64 KiB buffer and one write()
 * of what was read; whatever the write leaves is copied to the
 * connection's own buffer, and the connection then waits for EPOLLOUT
 * only (it is not read meanwhile), so no byte is lost or reordered.
 * SIGINT/SIGTERM come in through a signalfd and end the loop.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "echo_common.h"

#define MAX_EVENTS 256

struct conn {
	int fd;
	char *pend;	 /* bytes read but not yet written, or NULL */
	size_t pend_off; /* first unwritten byte of pend */
	size_t pend_len; /* end of pend */
};

/* Tags for the two fds that are not connections. */
static char listener_tag;
static char signal_tag;

static char buf[ECHO_BUF_SIZE];

static void conn_close(struct conn *c)
{
	close(c->fd); /* also removes it from the epoll set */
	free(c->pend);
	free(c);
}

static int watch(int ep, int op, struct conn *c, unsigned int events)
{
	struct epoll_event ev = {.events = events, .data.ptr = c};

	return epoll_ctl(ep, op, c->fd, &ev);
}

static void do_accept(int ep, int lfd)
{
	for (;;) {
		/* Held by epoll's data pointer once watched; conn_close()
		 * frees it. */
		struct conn *c; // NOLINT(clang-analyzer-unix.Malloc)
		int fd;

		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN)
				perror("echo-epoll: accept4");
			return;
		}
		echo_nodelay(fd);
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		if (watch(ep, EPOLL_CTL_ADD, c, EPOLLIN) < 0) {
			perror("echo-epoll: epoll_ctl");
			conn_close(c);
		}
	}
}

/* Writes the pending bytes; 1 if all are out, 0 if some remain, -1 error. */
static int flush_pending(struct conn *c)
{
	while (c->pend_off < c->pend_len) {
		ssize_t n = write(c->fd, c->pend + c->pend_off,
				  c->pend_len - c->pend_off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 0 : -1;
		}
		c->pend_off += (size_t)n;
	}
	free(c->pend);
	c->pend = NULL;
	c->pend_off = 0;
	c->pend_len = 0;
	return 1;
}

/* Keeps buf[off, len) for later and switches the connection to EPOLLOUT. */
static int keep_rest(int ep, struct conn *c, size_t off, size_t len)
{
	c->pend = malloc(len - off);
	if (!c->pend)
		return -1;
	memcpy(c->pend, buf + off, len - off);
	c->pend_off = 0;
	c->pend_len = len - off;
	return watch(ep, EPOLL_CTL_MOD, c, EPOLLOUT);
}

/* Returns -1 when the connection should be closed. */
static int on_readable(int ep, struct conn *c)
{
	ssize_t n;
	ssize_t w;

	do
		n = read(c->fd, buf, sizeof(buf));
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n < 0 && errno == EAGAIN ? 0 : -1;
	do
		w = write(c->fd, buf, (size_t)n);
	while (w < 0 && errno == EINTR);
	if (w < 0) {
		if (errno != EAGAIN)
			return -1;
		w = 0;
	}
	if (w < n)
		return keep_rest(ep, c, (size_t)w, (size_t)n);
	return 0;
}

static int on_writable(int ep, struct conn *c)
{
	int ret = flush_pending(c);

	if (ret <= 0)
		return ret;
	return watch(ep, EPOLL_CTL_MOD, c, EPOLLIN);
}

static int signal_fd(void)
{
	sigset_t set;
	int fd;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -1;
	fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	return fd;
}

int main(int argc, char **argv)
{
	struct epoll_event events[MAX_EVENTS];
	struct epoll_event ev;
	struct echo_args args;
	int ep;
	int lfd;
	int sfd;

	echo_parse_args(&args, argc, argv, "echo-epoll",
			"Single-threaded level-triggered epoll TCP echo "
			"server.");
	signal(SIGPIPE, SIG_IGN);
	lfd = echo_listen(&args, "echo-epoll");
	ep = epoll_create1(EPOLL_CLOEXEC);
	sfd = signal_fd();
	if (ep < 0 || sfd < 0) {
		perror("echo-epoll: setup");
		return 1;
	}
	ev.events = EPOLLIN;
	ev.data.ptr = &listener_tag;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
		goto err_ctl;
	ev.data.ptr = &signal_tag;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev) < 0)
		goto err_ctl;
	echo_announce(lfd, &args);

	for (;;) {
		int n = epoll_wait(ep, events, MAX_EVENTS, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("echo-epoll: epoll_wait");
			return 1;
		}
		for (int i = 0; i < n; i++) {
			void *p = events[i].data.ptr;
			struct conn *c = p;
			int ret;

			if (p == &listener_tag) {
				do_accept(ep, lfd);
				continue;
			}
			if (p == &signal_tag)
				return 0;
			if (c->pend)
				ret = on_writable(ep, c);
			else
				ret = on_readable(ep, c);
			if (ret < 0)
				conn_close(c);
		}
	}
err_ctl:
	perror("echo-epoll: epoll_ctl");
	return 1;
}
