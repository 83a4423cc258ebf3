/* SPDX-License-Identifier: MIT */
/*
 * net/connect.c - client connections: resolve the name (unless numeric),
 * then race the addresses as Happy Eyeballs does (RFC 8305): the families
 * interleaved, a new attempt every 250 ms or as soon as one fails, the
 * first socket to connect wins and the others are cancelled; the winner
 * is wrapped in a transport.  One timer bounds the whole connect, lookup
 * included; cancelling the future stops it.
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

/* Connection attempts in flight at once (RFC 8305 starts one per delay
 * until one succeeds; a long list waits for a slot). */
#define ATTEMPTS_MAX 8
/* RFC 8305's Connection Attempt Delay. */
#define ATTEMPT_DELAY_NS 250000000ull

struct connector;

struct attempt {
	struct connector *c;
	int fd; /* -1: free */
	struct proa_op op;
};

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
	bool done;	     /* the future is resolved (or about to be) */
	char *hostname;	     /* TLS: SNI and the name to verify */
	struct addrinfo *ai; /* from proa_getaddrinfo(), or our copy */
	bool ai_ours;	     /* ai is ours (freed with free_addrs()) */
	struct addrinfo one; /* a numeric or UNIX address */
	struct sockaddr_storage ss;
	/* The addresses in the order they are tried: families interleaved
	 * (RFC 8305 4), the first family first. */
	const struct addrinfo **order;
	size_t naddrs, next;
	unsigned live; /* attempts in flight */
	int err;       /* the first failure, reported if none connects */
	uint64_t delay_ns;
	struct attempt at[ATTEMPTS_MAX];
	struct proa_timer timer; /* the whole connect's timeout */
	struct proa_timer delay; /* the next attempt's start */
};

static void free_addrs(struct addrinfo *ai)
{
	while (ai) {
		struct addrinfo *next = ai->ai_next;

		free(ai->ai_addr);
		free(ai);
		ai = next;
	}
}

/* Everything is over: free once no attempt and no lookup is in flight. */
static void maybe_free(struct connector *c)
{
	if (!c->done || c->live > 0 || c->dns_live)
		return;
	if (c->ai_ours)
		free_addrs(c->ai);
	else
		proa_freeaddrinfo(c->ai);
	free(c->order);
	free(c->hostname);
	free(c);
}

/* Resolve the future (once); attempts still in flight are cancelled and
 * their completions only close their sockets. */
static void finish(struct connector *c, int res, struct proa_transport *t)
{
	c->done = true;
	proa_timer_cancel(&c->timer);
	proa_timer_cancel(&c->delay);
	for (unsigned i = 0; i < ATTEMPTS_MAX; i++)
		if (c->at[i].fd >= 0 && !proa_op_is_idle(&c->at[i].op))
			proa_op_cancel(&c->at[i].op);
	if (c->fut) {
		proa_future_set_canceller(c->fut, NULL, NULL);
		proa_future_set_result(c->fut, res, t);
		c->fut = NULL;
	}
	maybe_free(c);
}

static void start_next(struct connector *c);

static void delay_fire(void *arg)
{
	start_next(arg);
}

/* The winner's socket becomes a transport (the handshake goes on for
 * TLS, and the TLS layer resolves the future from then on). */
static void won(struct connector *c, int fd)
{
	struct proa_transport *t = NULL;
	int ret;

	if (c->opt.tls) {
		struct proa__tls_args ta = {
		    .ctx = c->opt.tls,
		    .hostname = c->hostname,
		    .timeout_ns = c->opt.tls_handshake_timeout_ns,
		    .errbuf = c->opt.tls_error,
		    .errlen = c->opt.tls_error_len,
		    .fut = c->fut,
		};
		struct proa_future *fut = c->fut;

		/* The future is the TLS layer's now: finish() must not touch
		 * it, unless the TLS layer refused it. */
		proa_future_set_canceller(fut, NULL, NULL);
		c->fut = NULL;
		ret = proa__tls_open(c->loop, fd, &ta, &c->opt.transport,
				     c->factory, c->arg, NULL);
		if (ret < 0)
			c->fut = fut;
		finish(c, ret, NULL);
		return;
	}
	ret = proa__transport_open(c->loop, fd, &c->opt.transport, c->factory,
				   c->arg, NULL, &t);
	finish(c, ret, ret == 0 ? t : NULL);
}

static void connect_done(struct proa_op *op)
{
	struct attempt *a = op->data;
	struct connector *c = a->c;
	int fd = a->fd;

	a->fd = -1;
	c->live--;
	if (c->done) {
		close(fd); /* a loser, or the connect was stopped */
		maybe_free(c);
		return;
	}
	if (op->res == 0 && !c->timed_out && !c->cancelled) {
		won(c, fd);
		return;
	}
	close(fd);
	if (c->timed_out || c->cancelled) {
		if (c->live == 0)
			finish(c, c->timed_out ? -ETIMEDOUT : -ECANCELED, NULL);
		return;
	}
	if (c->err == 0)
		c->err = op->res;
	/* A failure starts the next attempt at once (RFC 8305 5). */
	start_next(c);
}

/*
 * Start the next address's attempt (several, if sockets cannot be made
 * for some), and the timer for the one after.  With nothing in flight and
 * nothing left, the connect has failed.
 */
static void start_next(struct connector *c)
{
	proa_timer_cancel(&c->delay);
	while (c->next < c->naddrs) {
		const struct addrinfo *a = c->order[c->next];
		struct attempt *at = NULL;
		int fd, ret;

		for (unsigned i = 0; i < ATTEMPTS_MAX && !at; i++)
			if (c->at[i].fd < 0)
				at = &c->at[i];
		if (!at)
			return; /* every slot busy: a completion calls again */
		c->next++;
		fd = socket(a->ai_family,
			    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			if (c->err == 0)
				c->err = -errno;
			continue;
		}
		proa__sock_tune(fd, a->ai_family, &c->opt.transport);
		at->fd = fd;
		ret = proa_op_connect(c->loop, &at->op, fd, a->ai_addr,
				      a->ai_addrlen);
		if (ret < 0) {
			close(fd);
			at->fd = -1;
			if (c->err == 0)
				c->err = ret;
			continue;
		}
		c->live++;
		if (c->next < c->naddrs && c->delay_ns != UINT64_MAX)
			proa_loop_call_later(c->loop, &c->delay, c->delay_ns,
					     delay_fire, c);
		return;
	}
	if (c->live == 0)
		finish(c, c->err ? c->err : -EHOSTUNREACH, NULL);
}

/* @list in the order to try (RFC 8305 4: alternate the families, the
 * first address's family first), then the first attempt. */
static void try_list(struct connector *c, const struct addrinfo *list)
{
	const struct addrinfo *a, *p, *q;
	size_t n = 0, i = 0;
	int first = list ? list->ai_family : AF_UNSPEC;

	for (a = list; a; a = a->ai_next)
		n++;
	/* an array of pointers into @list */
	c->order = calloc(n ? n : 1, sizeof(const struct addrinfo *));
	if (!c->order) {
		finish(c, -ENOMEM, NULL);
		return;
	}
	/* p walks the first family, q every other; each takes a turn
	 * while both have addresses left. */
	p = q = list;
	while (i < n) {
		while (p && p->ai_family != first)
			p = p->ai_next;
		while (q && q->ai_family == first)
			q = q->ai_next;
		if (p) {
			c->order[i++] = p;
			p = p->ai_next;
		}
		if (q) {
			c->order[i++] = q;
			q = q->ai_next;
		}
	}
	c->naddrs = n;
	c->next = 0;
	start_next(c);
}

static void stop(struct connector *c)
{
	if (c->dns_live) {
		proa_future_cancel(&c->dns);
		return;
	}
	proa_timer_cancel(&c->delay);
	for (unsigned i = 0; i < ATTEMPTS_MAX; i++)
		if (c->at[i].fd >= 0 && !proa_op_is_idle(&c->at[i].op))
			proa_op_cancel(&c->at[i].op);
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
	try_list(c, c->ai);
}

/* A copy of @list's TCP-usable addresses, in its order; NULL with
 * *err set when there is none or memory runs out. */
static struct addrinfo *copy_addrs(const struct addrinfo *list, int *err)
{
	struct addrinfo *head = NULL, **tail = &head;

	*err = -EINVAL;
	for (; list; list = list->ai_next) {
		struct addrinfo *a;

		if ((list->ai_family != AF_INET &&
		     list->ai_family != AF_INET6) ||
		    !list->ai_addr ||
		    list->ai_addrlen > sizeof(struct sockaddr_in6))
			continue;
		a = calloc(1, sizeof(*a));
		if (!a || !(a->ai_addr = malloc(list->ai_addrlen))) {
			free(a);
			free_addrs(head);
			*err = -ENOMEM;
			return NULL;
		}
		a->ai_family = list->ai_family;
		a->ai_socktype = SOCK_STREAM;
		a->ai_addrlen = list->ai_addrlen;
		memcpy(a->ai_addr, list->ai_addr, list->ai_addrlen);
		*tail = a;
		tail = &a->ai_next;
	}
	if (head)
		*err = 0;
	return head;
}

/* @func: the public function called, for the wrong-thread message. */
static int start(struct proa_loop *loop, const char *host, uint16_t port,
		 const char *path, const struct addrinfo *list,
		 const struct proa_connect_options *opt,
		 proa_protocol_factory factory, void *arg,
		 struct proa_future *fut, const char *func)
{
	struct addrinfo hints;
	struct connector *c;
	char service[8];
	socklen_t len;
	int ret;

	if (!loop || !factory || !fut || (!host && !path && !list) ||
	    (opt && (!PROA__RESERVED_ZERO(opt) ||
		     !PROA__RESERVED_ZERO(&opt->transport))))
		return -EINVAL;
	PROA__LOOP_CHECK_AS(loop, func);
	if (loop->closed)
		return PROA_ECLOSED;
	if (fut->priv.loop != loop)
		return -EINVAL;
	if (!proa__future_free(fut))
		return -EBUSY;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->loop = loop;
	c->fut = fut;
	c->factory = factory;
	c->arg = arg;
	for (unsigned i = 0; i < ATTEMPTS_MAX; i++) {
		c->at[i].c = c;
		c->at[i].fd = -1;
		proa_op_init(&c->at[i].op, connect_done, &c->at[i]);
	}
	if (opt)
		c->opt = *opt;
	c->delay_ns = c->opt.attempt_delay_ns ? c->opt.attempt_delay_ns
					      : ATTEMPT_DELAY_NS;
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
	if (list) {
		c->ai = copy_addrs(list, &ret);
		c->ai_ours = true;
	} else if (path) {
		ret = proa__unix_addr(path, &c->ss, &len);
	} else {
		ret = proa__parse_numeric(host, port, &c->ss, &len);
	}
	if ((path || list) && ret < 0) {
		free(c->hostname);
		free(c);
		return ret;
	}
	if (c->opt.timeout_ns)
		proa_loop_call_later(loop, &c->timer, c->opt.timeout_ns,
				     timer_fire, c);
	proa_future_set_canceller(fut, fut_cancel, c);
	if (list) {
		try_list(c, c->ai);
		return 0;
	}
	if (ret == 0) {
		c->one.ai_family = c->ss.ss_family;
		c->one.ai_addr = (struct sockaddr *)&c->ss;
		c->one.ai_addrlen = len;
		try_list(c, &c->one);
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
	return start(loop, host, port, NULL, NULL, opt, factory, arg, fut,
		     __func__);
}

int proa_unix_connect(struct proa_loop *loop, const char *path,
		      const struct proa_connect_options *opt,
		      proa_protocol_factory factory, void *arg,
		      struct proa_future *fut)
{
	if (!path)
		return -EINVAL;
	return start(loop, NULL, 0, path, NULL, opt, factory, arg, fut,
		     __func__);
}

int proa_tcp_connect_addrs(struct proa_loop *loop, const struct addrinfo *list,
			   const struct proa_connect_options *opt,
			   proa_protocol_factory factory, void *arg,
			   struct proa_future *fut)
{
	if (!list)
		return -EINVAL;
	return start(loop, NULL, 0, NULL, list, opt, factory, arg, fut,
		     __func__);
}
