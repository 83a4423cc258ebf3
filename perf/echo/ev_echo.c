/* SPDX-License-Identifier: MIT */
/*
 * perf/echo/ev_echo.c - echo-libevent: the libevent 2.1 peer.
 *
 * The idiomatic bufferevent echo: an evconnlistener on the shared
 * listening socket, one socket bufferevent per connection, and a read
 * callback that moves the whole input buffer to the output buffer with
 * evbuffer_add_buffer().  libevent writes it out when the socket is
 * writable.  EOF or an error frees the bufferevent (and closes the fd).
 */
#include <signal.h>
#include <stdio.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "echo_common.h"

static void on_read(struct bufferevent *bev, void *arg)
{
	(void)arg;
	evbuffer_add_buffer(bufferevent_get_output(bev),
			    bufferevent_get_input(bev));
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		bufferevent_free(bev);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd,
		      struct sockaddr *sa, int salen, void *arg)
{
	struct event_base *base = evconnlistener_get_base(l);
	struct bufferevent *bev;

	(void)sa;
	(void)salen;
	(void)arg;
	echo_nodelay(fd);
	bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!bev) {
		evutil_closesocket(fd);
		return;
	}
	bufferevent_setcb(bev, on_read, NULL, on_event, NULL);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	event_base_loopbreak(arg);
}

int main(int argc, char **argv)
{
	struct evconnlistener *l;
	struct event_base *base;
	struct echo_args args;
	struct event *sigint;
	struct event *sigterm;
	int lfd;

	echo_parse_args(&args, argc, argv, "echo-libevent",
			"Single-threaded libevent 2.1 bufferevent TCP echo "
			"server.");
	signal(SIGPIPE, SIG_IGN);
	lfd = echo_listen(&args, "echo-libevent");
	base = event_base_new();
	if (!base) {
		fprintf(stderr, "echo-libevent: event_base_new failed\n");
		return 1;
	}
	l = evconnlistener_new(base, on_accept, NULL, LEV_OPT_CLOSE_ON_FREE,
			       SOMAXCONN, lfd);
	sigint = evsignal_new(base, SIGINT, on_signal, base);
	sigterm = evsignal_new(base, SIGTERM, on_signal, base);
	if (!l || !sigint || !sigterm || evsignal_add(sigint, NULL) < 0 ||
	    evsignal_add(sigterm, NULL) < 0) {
		fprintf(stderr, "echo-libevent: setup failed\n");
		return 1;
	}
	echo_announce(lfd, &args);
	if (event_base_dispatch(base) < 0) {
		fprintf(stderr, "echo-libevent: event_base_dispatch failed\n");
		return 1;
	}
	return 0;
}
