/* SPDX-License-Identifier: MIT */
/*
 * net/connect.c - client connections: resolve the name on the pool (unless
 * numeric), try each address in turn with a connect operation, and wrap
 * the first socket that connects in a transport.  One timer bounds the
 * whole attempt, lookup included; cancelling the future stops it.
 *
 * Thread: loop, everything.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net_int.h"
#include "proa/pool.h"

struct connector {
	struct proa_loop *loop;
	struct proa_future *fut;
	proa_protocol_factory factory;
	void *arg;
	struct proa_connect_options opt;
	struct proa_future dns;
	bool dns_live;
	bool timed_out;
	bool cancelled;
	char *hostname;	     /* TLS: SNI and the name to verify */
	struct addrinfo *ai; /* from proa_getaddrinfo() */
	struct addrinfo one; /* a numeric or UNIX address */
	const struct addrinfo *cur;
	struct sockaddr_storage ss;
	int fd;
	int err; /* the first failure, reported if none connects */
	struct proa_op cop;
	struct proa_timer timer;
};

static void finish(struct connector *c, int res, struct proa_transport *t)
{
	proa_timer_cancel(&c->timer);
	proa_future_set_canceller(c->fut, NULL, NULL);
	proa_future_set_result(c->fut, res, t);
	proa_freeaddrinfo(c->ai);
	free(c->hostname);
	free(c);
}

static void try_next(struct connector *c);

static void connect_done(struct proa_op *op)
{
	struct connector *c = op->data;
	struct proa_transport *t = NULL;
	int ret;

	if (op->res == 0 && !c->timed_out && !c->cancelled && c->opt.tls) {
		/* The handshake goes on; the TLS layer resolves the future
		 * and answers its cancel from now on. */
		struct proa__tls_args ta = {
		    .ctx = c->opt.tls,
		    .hostname = c->hostname,
		    .timeout_ns = c->opt.tls_handshake_timeout_ns,
		    .errbuf = c->opt.tls_error,
		    .errlen = c->opt.tls_error_len,
		    .fut = c->fut,
		};

		proa_timer_cancel(&c->timer);
		proa_future_set_canceller(c->fut, NULL, NULL);
		ret = proa__tls_open(c->loop, c->fd, &ta, &c->opt.transport,
				     c->factory, c->arg, NULL);
		if (ret < 0) {
			finish(c, ret, NULL);
			return;
		}
		proa_freeaddrinfo(c->ai);
		free(c->hostname);
		free(c);
		return;
	}
	if (op->res == 0 && !c->timed_out && !c->cancelled) {
		ret = proa__transport_open(c->loop, c->fd, &c->opt.transport,
					   c->factory, c->arg, NULL, &t);
		finish(c, ret, ret == 0 ? t : NULL);
		return;
	}
	close(c->fd);
	c->fd = -1;
	if (c->timed_out || c->cancelled) {
		finish(c, c->timed_out ? -ETIMEDOUT : -ECANCELED, NULL);
		return;
	}
	if (c->err == 0)
		c->err = op->res;
	c->cur = c->cur->ai_next;
	try_next(c);
}

static void try_next(struct connector *c)
{
	const struct addrinfo *a;
	int fd, ret;

	for (a = c->cur; a; a = a->ai_next) {
		c->cur = a;
		fd = socket(a->ai_family,
			    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			if (c->err == 0)
				c->err = -errno;
			continue;
		}
		proa__sock_tune(fd, a->ai_family, &c->opt.transport);
		c->fd = fd;
		ret = proa_op_connect(c->loop, &c->cop, fd, a->ai_addr,
				      a->ai_addrlen);
		if (ret == 0)
			return;
		close(fd);
		c->fd = -1;
		if (c->err == 0)
			c->err = ret;
	}
	finish(c, c->err ? c->err : -EHOSTUNREACH, NULL);
}

static void stop(struct connector *c)
{
	if (c->dns_live)
		proa_future_cancel(&c->dns);
	else if (!proa_op_is_idle(&c->cop))
		proa_op_cancel(&c->cop);
}

static void timer_fire(void *arg)
{
	struct connector *c = arg;

	c->timed_out = true;
	stop(c);
}

static void fut_cancel(struct proa_future *fut, void *arg)
{
	struct connector *c = arg;

	(void)fut;
	c->cancelled = true;
	stop(c);
}

static void resolved(struct proa_future *dns, void *arg)
{
	struct connector *c = arg;
	int res = proa_future_result(dns, (void **)&c->ai);

	c->dns_live = false;
	proa_future_fini(dns);
	if (c->timed_out || c->cancelled) {
		finish(c, c->timed_out ? -ETIMEDOUT : -ECANCELED, NULL);
		return;
	}
	if (res < 0) {
		finish(c, res, NULL);
		return;
	}
	c->cur = c->ai;
	try_next(c);
}

/* @func: the public function called, for the wrong-thread message. */
static int start(struct proa_loop *loop, const char *host, uint16_t port,
		 const char *path, const struct proa_connect_options *opt,
		 proa_protocol_factory factory, void *arg,
		 struct proa_future *fut, const char *func)
{
	struct addrinfo hints;
	struct connector *c;
	char service[8];
	socklen_t len;
	int ret;

	if (!loop || !factory || !fut || (!host && !path) ||
	    (opt && (!PROA__RESERVED_ZERO(opt) ||
		     !PROA__RESERVED_ZERO(&opt->transport))))
		return -EINVAL;
	PROA__LOOP_CHECK_AS(loop, func);
	if (loop->closed)
		return PROA_ECLOSED;
	if (fut->priv.loop != loop)
		return -EINVAL;
	if (fut->priv.state != PROA_FUTURE_PENDING || fut->priv.canceller)
		return -EBUSY;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->loop = loop;
	c->fut = fut;
	c->factory = factory;
	c->arg = arg;
	c->fd = -1;
	if (opt)
		c->opt = *opt;
	if (c->opt.tls) {
		/* The name to check the certificate against: never empty
		 * when it is checked (an unchecked name would be accepted
		 * silently). */
		const char *name =
		    c->opt.server_hostname ? c->opt.server_hostname : host;

		if ((!name || !name[0]) && proa__tls_verifies(c->opt.tls)) {
			free(c);
			return -EINVAL;
		}
		if (name && !(c->hostname = strdup(name))) {
			free(c);
			return -ENOMEM;
		}
	}
	proa_op_init(&c->cop, connect_done, c);
	if (path)
		ret = proa__unix_addr(path, &c->ss, &len);
	else
		ret = proa__parse_numeric(host, port, &c->ss, &len);
	if (path && ret < 0) {
		free(c->hostname);
		free(c);
		return ret;
	}
	if (c->opt.timeout_ns)
		proa_loop_call_later(loop, &c->timer, c->opt.timeout_ns,
				     timer_fire, c);
	proa_future_set_canceller(fut, fut_cancel, c);
	if (ret == 0) {
		c->one.ai_family = c->ss.ss_family;
		c->one.ai_addr = (struct sockaddr *)&c->ss;
		c->one.ai_addrlen = len;
		c->cur = &c->one;
		try_next(c);
		return 0;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = c->opt.family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(service, sizeof(service), "%u", port);
	proa_future_init(&c->dns, loop);
	ret = proa_getaddrinfo(loop, host, service, &hints, &c->dns);
	if (ret == 0)
		ret = proa_future_add_done_callback(&c->dns, resolved, c);
	if (ret < 0) {
		proa_future_fini(&c->dns);
		proa_timer_cancel(&c->timer);
		proa_future_set_canceller(fut, NULL, NULL);
		free(c->hostname);
		free(c);
		return ret;
	}
	c->dns_live = true;
	return 0;
}

int proa_tcp_connect(struct proa_loop *loop, const char *host, uint16_t port,
		     const struct proa_connect_options *opt,
		     proa_protocol_factory factory, void *arg,
		     struct proa_future *fut)
{
	if (!host || !host[0])
		return -EINVAL;
	return start(loop, host, port, NULL, opt, factory, arg, fut, __func__);
}

int proa_unix_connect(struct proa_loop *loop, const char *path,
		      const struct proa_connect_options *opt,
		      proa_protocol_factory factory, void *arg,
		      struct proa_future *fut)
{
	if (!path)
		return -EINVAL;
	return start(loop, NULL, 0, path, opt, factory, arg, fut, __func__);
}
