/* SPDX-License-Identifier: MIT */
/*
 * net/server.c - listening sockets: bind, listen, multishot accept (re-armed
 * when the kernel ends it), a transport per connection through the
 * protocol factory, and the resource errors of accept (EMFILE, ENFILE,
 * ENOBUFS, ENOMEM) answered with a pause and a retry instead of a busy
 * loop.  proa_tcp_listen() resolves names on the pool first.
 *
 * A server is freed once it is closed and its last connection is gone
 * (transports point back at it for the counts).
 *
 * Thread: loop, everything.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "net_int.h"
#include "proa/pool.h"

#define DEFAULT_BACKLOG 511
#define DEFAULT_RETRY_NS (UINT64_C(100) * 1000 * 1000)
#define MAX_LISTENERS 16

struct listener {
	struct proa_server *s;
	int fd;
	bool multishot;
	bool paused; /* a resource error: retry after a pause */
	bool open;
	struct proa_op aop;
	struct proa_timer retry;
	struct sockaddr_storage addr;
	socklen_t addrlen;
};

struct proa_server {
	struct proa_loop *loop;
	proa_protocol_factory factory;
	void *arg;
	struct proa_server_options opt;
	bool closing;
	bool in_close;	/* proa_server_close() is running: do not free */
	unsigned nopen; /* listeners not yet closed */
	struct proa_future *done;
	char *unix_path; /* to unlink at close */
	struct proa_server_stats stats;
	struct proa__conn_owner owner; /* told when a connection is gone */
	proa__handoff_fn handoff;      /* loop groups: another loop serves */
	void *handoff_arg;
	unsigned n;
	struct listener ls[MAX_LISTENERS];
};

static void arm(struct listener *l);

static void maybe_free(struct proa_server *s)
{
	if (s->closing && !s->in_close && s->nopen == 0 &&
	    s->stats.active == 0) {
		free(s->unix_path);
		free(s);
	}
}

/* One of the server's connections is gone (its transport freed). */
static void conn_gone(struct proa__conn_owner *o)
{
	struct proa_server *s = proa_container_of(o, struct proa_server, owner);

	s->stats.active--;
	maybe_free(s);
}

static void listener_closed(struct listener *l)
{
	struct proa_server *s = l->s;

	if (!l->open)
		return;
	l->open = false;
	close(l->fd); /* nothing is in flight on it */
	if (--s->nopen > 0)
		return;
	if (s->unix_path)
		unlink(s->unix_path);
	if (s->done)
		proa_future_set_result(s->done, 0, NULL);
	maybe_free(s);
}

static bool resource_error(int err)
{
	return err == -EMFILE || err == -ENFILE || err == -ENOBUFS ||
	       err == -ENOMEM;
}

static void retry_fire(void *arg)
{
	struct listener *l = arg;

	l->paused = false;
	arm(l);
}

int proa__serve_accepted(struct proa_loop *loop, int fd,
			 const struct proa_server_options *o,
			 proa_protocol_factory factory, void *arg,
			 struct proa__conn_owner *owner)
{
	struct proa__tls_args ta = {
	    .ctx = o->tls,
	    .server = true,
	    .timeout_ns = o->tls_handshake_timeout_ns,
	};

	if (o->tls)
		return proa__tls_open(loop, fd, &ta, &o->transport, factory,
				      arg, owner);
	return proa__transport_open(loop, fd, &o->transport, factory, arg,
				    owner, NULL);
}

static void new_connection(struct listener *l, int fd)
{
	struct proa_server *s = l->s;
	int ret;

	if (s->opt.max_connections &&
	    s->stats.active >= s->opt.max_connections) {
		/* Over the cap: accepted and closed at once, so that the
		 * backlog does not fill with connections nobody serves. */
		close(fd);
		s->stats.refused++;
		return;
	}
	proa__sock_tune(fd, l->addr.ss_family, &s->opt.transport);
	if (s->handoff) {
		if (s->handoff(s->handoff_arg, fd) == 0)
			s->stats.accepted++;
		else
			s->stats.refused++;
		return;
	}
	s->stats.active++;
	ret = proa__serve_accepted(s->loop, fd, &s->opt, s->factory, s->arg,
				   &s->owner);
	if (ret < 0) {
		s->stats.active--;
		s->stats.refused++;
		return;
	}
	s->stats.accepted++;
}

static void accept_done(struct proa_op *op)
{
	struct listener *l = op->data;
	struct proa_server *s = l->s;
	bool more = op->flags & PROA_OP_F_MORE;

	if (op->res >= 0) {
		if (s->closing)
			close(op->res);
		else
			new_connection(l, op->res);
	} else if (resource_error(op->res)) {
		/* Out of descriptors or memory: the connection stays in the
		 * backlog.  Pause rather than spin on the same error. */
		if (!l->paused) {
			l->paused = true;
			s->stats.accept_pause++;
			proa__log(PROA_LOG_WARN,
				  "accept: %s; pausing the listener for %llu "
				  "ms",
				  proa_strerror(op->res),
				  (unsigned long long)(s->opt.accept_retry_ns /
						       1000000));
		}
		if (more)
			proa_op_cancel(op);
	} else if (op->res == -EINVAL && l->multishot && !more &&
		   s->stats.accepted == 0 && !s->closing) {
		/* A kernel that knows the opcode but not the flag. */
		l->multishot = false;
	} else if (op->res != -ECANCELED && op->res != -ECONNABORTED &&
		   op->res != -EAGAIN && op->res != -EINTR &&
		   op->res != -EPROTO && op->res != -EPERM) {
		proa__log(PROA_LOG_ERROR, "accept: %s", proa_strerror(op->res));
		if (!l->paused) {
			l->paused = true;
			s->stats.accept_pause++;
		}
	}
	if (more)
		return;
	if (s->closing) {
		listener_closed(l);
	} else if (l->paused) {
		proa_loop_call_later(s->loop, &l->retry, s->opt.accept_retry_ns,
				     retry_fire, l);
	} else {
		if (l->multishot)
			s->stats.rearmed++;
		arm(l);
	}
}

static void arm(struct listener *l)
{
	struct proa_server *s = l->s;
	int ret;

	if (s->closing || !proa_op_is_idle(&l->aop))
		return;
	ret = proa_op_accept(s->loop, &l->aop, l->fd, NULL, NULL,
			     l->multishot ? PROA_ACCEPT_MULTISHOT : 0);
	if (ret < 0) {
		proa__log(PROA_LOG_ERROR, "accept: cannot submit: %s",
			  proa_strerror(ret));
		l->paused = true;
		s->stats.accept_pause++;
		proa_loop_call_later(s->loop, &l->retry, s->opt.accept_retry_ns,
				     retry_fire, l);
	}
}

static struct proa_server *server_new(struct proa_loop *loop,
				      const struct proa_server_options *opt,
				      proa_protocol_factory factory, void *arg)
{
	struct proa_server *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->loop = loop;
	s->owner.gone = conn_gone;
	s->factory = factory;
	s->arg = arg;
	if (opt)
		s->opt = *opt;
	if (s->opt.backlog <= 0)
		s->opt.backlog = DEFAULT_BACKLOG;
	if (!s->opt.accept_retry_ns)
		s->opt.accept_retry_ns = DEFAULT_RETRY_NS;
	return s;
}

static uint16_t port_of(const struct sockaddr *addr)
{
	if (addr->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)addr)->sin_port);
	if (addr->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)addr)->sin6_port);
	return 0;
}

/*
 * reuse_port_exclusive: whether anyone listens on @addr already.  The
 * kernel lets a SO_REUSEPORT socket join a port when every socket there
 * has SO_REUSEPORT and the same effective uid - so a second copy of the
 * same server, run by the same user (root, typically), joins the first
 * and takes part of its connections instead of failing.  SO_REUSEPORT
 * itself cannot tell "my other loops" from "another process", and a
 * first listener bound without it would keep our own loops out too.  So
 * we ask first with a plain bind (SO_REUSEADDR as the listener has it,
 * no SO_REUSEPORT): it fails with EADDRINUSE when any socket listens
 * there, whatever its options or owner, and passes over TIME_WAIT
 * leftovers as the real bind does.  The probe is closed at once (never
 * listened on, it leaves nothing behind) and the listener bound with
 * SO_REUSEPORT for our later listeners to join.
 *
 * Two such servers started in the same instant can both pass the probe
 * before either binds; closing that window takes a lock outside the
 * socket layer, which is more than a port check is worth here.
 */
static int port_taken(const struct proa_server *s, const struct sockaddr *addr,
		      socklen_t len, bool v6only)
{
	int one = 1, fd, ret = 0;

	if (port_of(addr) == 0)
		return 0; /* the kernel picks a port nobody holds */
	fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (!s->opt.no_reuse_addr)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (addr->sa_family == AF_INET6 && v6only)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, addr, len) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* Make the listening socket @fd listener s->n; on failure @fd is left
 * open, as it was. */
static int adopt_listener(struct proa_server *s, int fd)
{
	struct listener *l = &s->ls[s->n];

	if (s->n >= MAX_LISTENERS)
		return -ENOSPC;
	memset(l, 0, sizeof(*l));
	l->addrlen = sizeof(l->addr);
	if (getsockname(fd, (struct sockaddr *)&l->addr, &l->addrlen) < 0)
		return -errno;
	l->s = s;
	l->fd = fd;
	l->open = true;
	l->multishot = proa_loop_feature(s->loop, PROA_FEAT_ACCEPT_MULTISHOT);
	proa_op_init(&l->aop, accept_done, l);
	s->n++;
	s->nopen++;
	return 0;
}

/* Make listener s->n for @addr; on failure nothing of it is left. */
static int add_listener(struct proa_server *s, const struct sockaddr *addr,
			socklen_t len, bool v6only)
{
	int one = 1, fd, ret;

	if (s->n >= MAX_LISTENERS)
		return -ENOSPC;
	if (s->opt.reuse_port && s->opt.reuse_port_exclusive &&
	    addr->sa_family != AF_UNIX) {
		ret = port_taken(s, addr, len, v6only);
		if (ret < 0)
			return ret;
	}
	fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0)
		return -errno;
	if (addr->sa_family != AF_UNIX) {
		if (!s->opt.no_reuse_addr)
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
				   sizeof(one));
		if (addr->sa_family == AF_INET6 && v6only)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
				   sizeof(one));
	}
	if (s->opt.reuse_port &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto fail;
	if (bind(fd, addr, len) < 0 || listen(fd, s->opt.backlog) < 0)
		goto fail;
	ret = adopt_listener(s, fd);
	if (ret < 0)
		close(fd);
	return ret;
fail:
	ret = -errno;
	close(fd);
	return ret;
}

static void start(struct proa_server *s)
{
	unsigned i;

	for (i = 0; i < s->n; i++)
		arm(&s->ls[i]);
}

/* Undo a server none of whose listeners has an op yet. */
static void discard(struct proa_server *s)
{
	unsigned i;

	for (i = 0; i < s->n; i++)
		close(s->ls[i].fd);
	free(s->unix_path);
	free(s);
}

/* @func: the public function called, for the wrong-thread message. */
static int check_common(struct proa_loop *loop, proa_protocol_factory factory,
			const struct proa_server_options *opt, const char *func)
{
	if (!loop || !factory ||
	    (opt && (!PROA__RESERVED_ZERO(opt) ||
		     !PROA__RESERVED_ZERO(&opt->transport))))
		return -EINVAL;
	PROA__LOOP_CHECK_AS(loop, func);
	if (loop->closed)
		return PROA_ECLOSED;
	return proa__netloop_get(loop) ? 0 : -ENOMEM;
}

int proa_tcp_listen_addr(struct proa_server **out, struct proa_loop *loop,
			 const struct sockaddr *addr, socklen_t addrlen,
			 const struct proa_server_options *opt,
			 proa_protocol_factory factory, void *arg)
{
	struct proa_server *s;
	int ret = check_common(loop, factory, opt, __func__);

	if (ret < 0)
		return ret;
	if (!addr || !out ||
	    (addr->sa_family != AF_INET && addr->sa_family != AF_INET6))
		return -EINVAL;
	s = server_new(loop, opt, factory, arg);
	if (!s)
		return -ENOMEM;
	ret = add_listener(s, addr, addrlen, false);
	if (ret < 0) {
		discard(s);
		return ret;
	}
	start(s);
	*out = s;
	return 0;
}

int proa_unix_listen(struct proa_server **out, struct proa_loop *loop,
		     const char *path, const struct proa_server_options *opt,
		     proa_protocol_factory factory, void *arg)
{
	struct sockaddr_storage ss;
	struct proa_server *s;
	socklen_t len;
	int ret = check_common(loop, factory, opt, __func__);

	if (ret < 0)
		return ret;
	if (!out)
		return -EINVAL;
	ret = proa__unix_addr(path, &ss, &len);
	if (ret < 0)
		return ret;
	s = server_new(loop, opt, factory, arg);
	if (!s)
		return -ENOMEM;
	if (path[0] != '@' && !(s->unix_path = strdup(path))) {
		discard(s);
		return -ENOMEM;
	}
	ret = add_listener(s, (struct sockaddr *)&ss, len, false);
	if (ret < 0) {
		/* Not ours to unlink: the file was there, or not made. */
		free(s->unix_path);
		s->unix_path = NULL;
		discard(s);
		return ret;
	}
	start(s);
	*out = s;
	return 0;
}

int proa_server_from_fd(struct proa_server **out, struct proa_loop *loop,
			int fd, const struct proa_server_options *opt,
			proa_protocol_factory factory, void *arg)
{
	struct proa_server *s;
	int ret = check_common(loop, factory, opt, __func__);

	if (ret < 0)
		return ret;
	if (!out)
		return -EINVAL;
	if (fd < 0)
		return -EBADF;
	/* Only a socket that listens already: it was bound and its backlog
	 * set by whoever made it (systemd, a parent process). */
	ret = proa__stream_socket_listens(fd);
	if (ret <= 0)
		return ret < 0 ? ret : -EINVAL;
	ret = proa__fd_adopt_flags(fd);
	if (ret < 0)
		return ret;
	s = server_new(loop, opt, factory, arg);
	if (!s)
		return -ENOMEM;
	ret = adopt_listener(s, fd);
	if (ret < 0) {
		free(s);
		return ret;
	}
	start(s);
	*out = s;
	return 0;
}

/* Listeners for every address of @ai (deduplicated); with port 0, the
 * later ones take the port the kernel gave the first. */
static int listen_all(struct proa_server *s, const struct addrinfo *ai)
{
	const struct addrinfo *a, *b;
	struct sockaddr_storage ss;
	bool v4 = false, v6 = false, dup;
	uint16_t port = 0;
	int ret;

	for (a = ai; a; a = a->ai_next) {
		v4 |= a->ai_family == AF_INET;
		v6 |= a->ai_family == AF_INET6;
	}
	for (a = ai; a; a = a->ai_next) {
		if (a->ai_family != AF_INET && a->ai_family != AF_INET6)
			continue;
		dup = false;
		for (b = ai; b != a; b = b->ai_next)
			dup |=
			    b->ai_addrlen == a->ai_addrlen &&
			    memcmp(b->ai_addr, a->ai_addr, a->ai_addrlen) == 0;
		if (dup)
			continue;
		memcpy(&ss, a->ai_addr, a->ai_addrlen);
		if (port) {
			if (ss.ss_family == AF_INET)
				((struct sockaddr_in *)&ss)->sin_port =
				    htons(port);
			else
				((struct sockaddr_in6 *)&ss)->sin6_port =
				    htons(port);
		}
		ret = add_listener(s, (struct sockaddr *)&ss, a->ai_addrlen,
				   v4 && v6);
		if (ret < 0)
			return ret;
		if (!port)
			port = proa_server_port(s);
	}
	return s->n > 0 ? 0 : -EADDRNOTAVAIL;
}

struct listen_req {
	struct proa_loop *loop;
	struct proa_future *fut;
	struct proa_future dns;
	struct proa_server *s;
	bool cancelled;
};

static void listen_resolved(struct proa_future *dns, void *arg)
{
	struct listen_req *r = arg;
	struct addrinfo *ai = NULL;
	int res = proa_future_result(dns, (void **)&ai);

	if (r->cancelled)
		res = -ECANCELED;
	if (res == 0)
		res = listen_all(r->s, ai);
	proa_freeaddrinfo(ai);
	proa_future_fini(dns);
	proa_future_set_canceller(r->fut, NULL, NULL);
	if (res < 0) {
		discard(r->s);
		proa_future_set_result(r->fut, res, NULL);
	} else {
		start(r->s);
		proa_future_set_result(r->fut, 0, r->s);
	}
	free(r);
}

static void listen_cancel(struct proa_future *fut, void *arg)
{
	struct listen_req *r = arg;

	(void)fut;
	r->cancelled = true;
	proa_future_cancel(&r->dns);
}

int proa_tcp_listen(struct proa_loop *loop, const char *host, uint16_t port,
		    const struct proa_server_options *opt,
		    proa_protocol_factory factory, void *arg,
		    struct proa_future *fut)
{
	struct addrinfo hints, a4, a6, *ai;
	struct sockaddr_in in4;
	struct sockaddr_in6 in6;
	struct sockaddr_storage ss;
	struct listen_req *r;
	struct proa_server *s;
	char service[8];
	socklen_t len;
	int family = opt ? opt->family : AF_UNSPEC;
	int ret = check_common(loop, factory, opt, __func__);

	if (ret < 0)
		return ret;
	if (!fut || fut->priv.loop != loop ||
	    (family != AF_UNSPEC && family != AF_INET && family != AF_INET6))
		return -EINVAL;
	if (!proa__future_free(fut))
		return -EBUSY;
	s = server_new(loop, opt, factory, arg);
	if (!s)
		return -ENOMEM;
	if (!host || !host[0] ||
	    proa__parse_numeric(host, port, &ss, &len) == 0) {
		/* No lookup: listen now, report through the future. */
		memset(&a4, 0, sizeof(a4));
		memset(&a6, 0, sizeof(a6));
		if (!host || !host[0]) {
			memset(&in4, 0, sizeof(in4));
			in4.sin_family = AF_INET;
			in4.sin_port = htons(port);
			memset(&in6, 0, sizeof(in6));
			in6.sin6_family = AF_INET6;
			in6.sin6_port = htons(port);
			in6.sin6_addr = in6addr_any;
			a4.ai_family = AF_INET;
			a4.ai_addr = (struct sockaddr *)&in4;
			a4.ai_addrlen = sizeof(in4);
			a6.ai_family = AF_INET6;
			a6.ai_addr = (struct sockaddr *)&in6;
			a6.ai_addrlen = sizeof(in6);
			if (family == AF_INET6)
				ai = &a6;
			else
				ai = &a4;
			if (family == AF_UNSPEC)
				a4.ai_next = &a6;
		} else {
			a4.ai_family = ss.ss_family;
			a4.ai_addr = (struct sockaddr *)&ss;
			a4.ai_addrlen = len;
			ai = &a4;
		}
		ret = listen_all(s, ai);
		if (ret < 0) {
			discard(s);
			return proa_future_set_result(fut, ret, NULL) < 0 ? ret
									  : 0;
		}
		start(s);
		proa_future_set_result(fut, 0, s);
		return 0;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		discard(s);
		return -ENOMEM;
	}
	r->loop = loop;
	r->fut = fut;
	r->s = s;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(service, sizeof(service), "%u", port);
	proa_future_init(&r->dns, loop);
	ret = proa_getaddrinfo(loop, host, service, &hints, &r->dns);
	if (ret == 0)
		ret =
		    proa_future_add_done_callback(&r->dns, listen_resolved, r);
	if (ret < 0) {
		proa_future_fini(&r->dns);
		free(r);
		discard(s);
		return ret;
	}
	proa_future_set_canceller(fut, listen_cancel, r);
	return 0;
}

void proa__server_set_handoff(struct proa_server *s, proa__handoff_fn fn,
			      void *arg)
{
	s->handoff = fn;
	s->handoff_arg = arg;
}

unsigned proa_server_nsockets(const struct proa_server *s)
{
	return s ? s->n : 0;
}

int proa_server_sockname(const struct proa_server *s, unsigned i,
			 struct sockaddr_storage *addr, socklen_t *len)
{
	if (!s || !addr || !len)
		return -EINVAL;
	if (i >= s->n)
		return -ENOENT;
	memcpy(addr, &s->ls[i].addr, s->ls[i].addrlen);
	*len = s->ls[i].addrlen;
	return 0;
}

uint16_t proa_server_port(const struct proa_server *s)
{
	const struct sockaddr_storage *a;

	if (!s || s->n == 0)
		return 0;
	a = &s->ls[0].addr;
	if (a->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)a)->sin_port);
	if (a->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
	return 0;
}

int proa_server_stats(const struct proa_server *s,
		      struct proa_server_stats *out)
{
	if (!s || !out)
		return -EINVAL;
	*out = s->stats;
	return 0;
}

int proa_server_close(struct proa_server *s, struct proa_future *done)
{
	struct listener *l;
	unsigned i;

	if (!s)
		return -EINVAL;
	PROA__LOOP_CHECK(s->loop);
	if (done && (done->priv.loop != s->loop || proa_future_is_done(done)))
		return -EINVAL;
	/* Another piece of work's future: set_result() would be refused at
	 * the end, and @done never resolve. */
	if (done && !proa__future_free(done))
		return -EBUSY;
	if (s->closing)
		return -EALREADY;
	s->closing = true;
	s->done = done;
	for (i = 0; i < s->n; i++) {
		l = &s->ls[i];
		proa_timer_cancel(&l->retry);
		if (!proa_op_is_idle(&l->aop))
			proa_op_cancel(&l->aop); /* accept_done closes it */
	}
	/* Listeners with nothing in flight close now; @s may be freed only
	 * once this loop is done with it. */
	s->in_close = true;
	for (i = 0; i < s->n; i++) {
		if (proa_op_is_idle(&s->ls[i].aop))
			listener_closed(&s->ls[i]);
	}
	s->in_close = false;
	maybe_free(s);
	return 0;
}
