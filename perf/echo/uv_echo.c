/* SPDX-License-Identifier: MIT */
/*
 * perf/echo/uv_echo.c - echo-libuv: the libuv peer.
 *
 * uv_read_start() with an alloc callback that hands out one 64 KiB buffer
 * per loop: libuv calls alloc, read() and the read callback back to back,
 * and the read callback is done with the buffer when it returns, so one
 * buffer serves every connection.  The callback echoes with uv_try_write()
 * and queues whatever that leaves with uv_write() from a copy; until that
 * write completes the connection is not read (as in echo-epoll).
 * uv_try_write() refuses while a write is queued, so the order is kept.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "echo_common.h"

struct wreq {
	uv_write_t req;
	char data[]; /* the bytes uv_try_write() left */
};

static char buf[ECHO_BUF_SIZE];

/* libuv runs alloc, read() and on_read() back to back, one at a time. */
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	(void)h;
	(void)hint;
	*b = uv_buf_init(buf, sizeof(buf));
}

static void on_close(uv_handle_t *h)
{
	free(h);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);

static void on_write(uv_write_t *req, int status)
{
	uv_stream_t *s = req->handle;

	free(req);
	if (uv_is_closing((uv_handle_t *)s))
		return;
	if (status < 0) {
		uv_close((uv_handle_t *)s, on_close);
		return;
	}
	if (uv_stream_get_write_queue_size(s) == 0)
		uv_read_start(s, on_alloc, on_read);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct wreq *w;
	uv_buf_t wb;
	int n;

	if (nread == 0) /* EAGAIN */
		return;
	if (nread < 0) {
		uv_close((uv_handle_t *)s, on_close);
		return;
	}
	wb = uv_buf_init(b->base, (unsigned int)nread);
	n = uv_try_write(s, &wb, 1);
	if (n == UV_EAGAIN || n == UV_ENOSYS)
		n = 0;
	if (n < 0) {
		uv_close((uv_handle_t *)s, on_close);
		return;
	}
	if (n == nread)
		return;
	w = malloc(sizeof(*w) + (size_t)(nread - n));
	if (!w) {
		uv_close((uv_handle_t *)s, on_close);
		return;
	}
	memcpy(w->data, b->base + n, (size_t)(nread - n));
	wb = uv_buf_init(w->data, (unsigned int)(nread - n));
	if (uv_write(&w->req, s, &wb, 1, on_write) < 0) {
		free(w);
		uv_close((uv_handle_t *)s, on_close);
		return;
	}
	uv_read_stop(s);
}

static void on_connection(uv_stream_t *server, int status)
{
	uv_tcp_t *c;

	if (status < 0) {
		fprintf(stderr, "echo-libuv: accept: %s\n",
			uv_strerror(status));
		return;
	}
	c = malloc(sizeof(*c));
	if (!c)
		return;
	uv_tcp_init(server->loop, c);
	if (uv_accept(server, (uv_stream_t *)c) < 0) {
		uv_close((uv_handle_t *)c, on_close);
		return;
	}
	uv_tcp_nodelay(c, 1);
	uv_read_start((uv_stream_t *)c, on_alloc, on_read);
}

static void on_signal(uv_signal_t *h, int signum)
{
	(void)signum;
	uv_stop(h->loop);
}

int main(int argc, char **argv)
{
	uv_signal_t sigint;
	uv_signal_t sigterm;
	struct echo_args args;
	uv_loop_t *loop = uv_default_loop();
	uv_tcp_t server;
	int lfd;
	int ret;

	echo_parse_args(&args, argc, argv, "echo-libuv",
			"Single-threaded libuv TCP echo server.");
	signal(SIGPIPE, SIG_IGN);
	lfd = echo_listen(&args, "echo-libuv");
	uv_tcp_init(loop, &server);
	ret = uv_tcp_open(&server, lfd);
	if (ret == 0)
		ret =
		    uv_listen((uv_stream_t *)&server, SOMAXCONN, on_connection);
	if (ret < 0) {
		fprintf(stderr, "echo-libuv: listen: %s\n", uv_strerror(ret));
		return 1;
	}
	uv_signal_init(loop, &sigint);
	uv_signal_start(&sigint, on_signal, SIGINT);
	uv_signal_init(loop, &sigterm);
	uv_signal_start(&sigterm, on_signal, SIGTERM);
	echo_announce(lfd, &args);
	uv_run(loop, UV_RUN_DEFAULT);
	return 0;
}
