/* SPDX-License-Identifier: MIT */
/*
 * dns/cares.c - proa_getaddrinfo() on c-ares, on the loop thread.
 *
 * One channel per loop, made on its first c-ares lookup with the loop's
 * settings (proa_dns_configure()).  c-ares says which of its sockets it
 * wants to read or write through its socket-state callback; each such
 * socket gets an fd watch (proa/watch.h), whose callback hands the socket
 * to ares_process_fd().  c-ares's retransmissions and timeouts run on one
 * proa timer, re-armed to ares_timeout() after every call into c-ares.
 * With no lookup left, c-ares closes its sockets (no ARES_FLAG_STAYOPEN),
 * their watches close, the timer is cancelled, and the loop holds nothing.
 *
 * Cancel: c-ares 1.18 has no per-query cancel, only ares_cancel() of the
 * whole channel.  So a cancelled lookup's future resolves with -ECANCELED
 * at once and the lookup is detached: its c-ares query runs on (its answer
 * is dropped), until no lookup of the channel is wanted any more, when
 * ares_cancel() ends them all - in a handle of its own, never inside a
 * c-ares callback or a canceller that may run in one.
 *
 * Thread: loop, everything.
 */
#include <ares.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "dns_int.h"

struct cares_sock {
	struct cares_sock *next;
	struct proa__cares *c;
	int fd;
	struct proa_fd_watch *w;
};

struct proa__cares {
	struct proa__dns_loop *dl;
	ares_channel ch;
	struct proa_timer timer;   /* ares_timeout() */
	struct proa_handle cancel; /* ares_cancel(), once nothing is wanted */
	struct cares_sock *socks;
	unsigned inflight; /* lookups c-ares has, cancelled ones included */
	unsigned wanted;   /* of those, not cancelled */
	bool end_all;	   /* @cancel ends wanted lookups too (cancel_all) */
};

struct cares_req {
	struct proa__cares *c;
	struct proa_future *fut; /* NULL once cancelled */
	int socktype;		 /* from the hints */
	int protocol;
	bool canonname;
};

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static int lib_status;

/* ares_library_init() is not thread-safe before c-ares 1.23: once. */
static void lib_init(void)
{
	lib_status = ares_library_init(ARES_LIB_INIT_ALL);
}

/* ---- c-ares's sockets and timeouts -------------------------------------- */

static void update_timer(struct proa__cares *c);

static void on_ready(struct proa_fd_watch *w, int fd, int revents, void *arg)
{
	struct cares_sock *s = arg;
	struct proa__cares *c = s->c;
	ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;

	(void)w;
	/* An error or hang-up is c-ares's to find, by reading. */
	if (revents < 0 || (revents & (POLLIN | POLLERR | POLLHUP)))
		rfd = fd;
	if (revents > 0 && (revents & POLLOUT))
		wfd = fd;
	/* May close @s's socket, and so free @s (sock_state()). */
	ares_process_fd(c->ch, rfd, wfd);
	update_timer(c);
}

/* c-ares's socket-state callback: @fd wants reading and/or writing, or
 * (both 0) is about to be closed. */
static void sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct proa__cares *c = data;
	struct cares_sock **pp, *s;
	unsigned events = (readable ? PROA_WATCH_READABLE : 0) |
			  (writable ? PROA_WATCH_WRITABLE : 0);
	int ret;

	for (pp = &c->socks; *pp && (*pp)->fd != fd; pp = &(*pp)->next)
		;
	s = *pp;
	if (!events) {
		if (s) {
			*pp = s->next;
			proa_fd_watch_close(s->w);
			free(s);
		}
		return;
	}
	if (s) {
		ret = proa_fd_watch_set(s->w, events);
	} else {
		s = calloc(1, sizeof(*s));
		if (!s) {
			ret = -ENOMEM;
			goto err;
		}
		s->c = c;
		s->fd = fd;
		ret = proa_fd_watch_start(&s->w, c->dl->loop, fd, events,
					  on_ready, s);
		if (ret < 0) {
			free(s);
			goto err;
		}
		s->next = c->socks;
		c->socks = s;
	}
	if (ret == 0)
		return;
err:
	/* The lookup on this socket ends by its timeout. */
	proa__log(PROA_LOG_ERROR, "dns: cannot watch c-ares socket %d: %s",
		  (int)fd, proa_strerror(ret));
}

static void on_timer(void *arg)
{
	struct proa__cares *c = arg;

	ares_process_fd(c->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	update_timer(c);
}

/* After every call into c-ares: the timer at c-ares's next deadline, or
 * off when nothing is in flight. */
static void update_timer(struct proa__cares *c)
{
	struct timeval tv, *tvp;
	uint64_t ns;

	if (proa_timer_is_active(&c->timer))
		proa_timer_cancel(&c->timer);
	if (!c->inflight)
		return;
	tvp = ares_timeout(c->ch, NULL, &tv);
	if (!tvp)
		return;
	ns = (uint64_t)tvp->tv_sec * 1000000000u +
	     (uint64_t)tvp->tv_usec * 1000u;
	proa_loop_call_later(c->dl->loop, &c->timer, ns, on_timer, c);
}

/* ---- the channel -------------------------------------------------------- */

static int status_to_res(int status)
{
	switch (status) {
	case ARES_SUCCESS:
		return 0;
	case ARES_ENOTFOUND:
	case ARES_ENODATA:
	case ARES_ENONAME:
	case ARES_ESERVICE:
	case ARES_EBADNAME:
		return PROA_ENONAME;
	case ARES_ETIMEOUT:
	case ARES_ECONNREFUSED:
	case ARES_ESERVFAIL:
	case ARES_EREFUSED:
		return -EAGAIN;
	case ARES_ENOMEM:
		return -ENOMEM;
	case ARES_EBADFAMILY:
	case ARES_ENOTIMP: /* 1.18: a family it cannot look up */
		return -EAFNOSUPPORT;
	case ARES_EBADFLAGS:
	case ARES_EBADHINTS:
		return -EINVAL;
	case ARES_ECANCELLED:
	case ARES_EDESTRUCTION:
		return -ECANCELED;
	default:
		return PROA_EDNSFAIL;
	}
}

static int channel_init(ares_channel *ch, const struct proa_dns_options *o,
			void *state_data)
{
	struct ares_options ao;
	int mask = 0, rc;

	memset(&ao, 0, sizeof(ao));
	if (state_data) {
		ao.sock_state_cb = sock_state;
		ao.sock_state_cb_data = state_data;
		mask |= ARES_OPT_SOCK_STATE_CB;
	}
	if (o && o->timeout_ms) {
		ao.timeout = (int)o->timeout_ms;
		mask |= ARES_OPT_TIMEOUTMS;
	}
	if (o && o->tries) {
		ao.tries = (int)o->tries;
		mask |= ARES_OPT_TRIES;
	}
	pthread_once(&lib_once, lib_init);
	if (lib_status != ARES_SUCCESS)
		return status_to_res(lib_status);
	rc = ares_init_options(ch, &ao, mask);
	if (rc != ARES_SUCCESS)
		return status_to_res(rc);
	if (o && o->servers) {
		rc = ares_set_servers_ports_csv(*ch, o->servers);
		if (rc != ARES_SUCCESS) {
			ares_destroy(*ch);
			return rc == ARES_ENOMEM ? -ENOMEM : -EINVAL;
		}
	}
	return 0;
}

bool proa__cares_servers_ok(const char *csv)
{
	struct proa_dns_options o = {.servers = csv};
	ares_channel ch;

	if (channel_init(&ch, &o, NULL) < 0)
		return false;
	ares_destroy(ch);
	return true;
}

static struct proa__cares *channel_get(struct proa__dns_loop *dl, int *err)
{
	struct proa__cares *c = dl->cares;

	if (c)
		return c;
	c = calloc(1, sizeof(*c));
	if (!c) {
		*err = -ENOMEM;
		return NULL;
	}
	c->dl = dl;
	*err = channel_init(&c->ch, &dl->opts, c);
	if (*err < 0) {
		free(c);
		return NULL;
	}
	dl->cares = c;
	return c;
}

unsigned proa__cares_inflight(const struct proa__dns_loop *dl)
{
	return dl->cares ? dl->cares->inflight : 0;
}

void proa__cares_free(struct proa__dns_loop *dl)
{
	struct proa__cares *c = dl->cares;

	if (!c)
		return;
	/* Nothing in flight, so c-ares has no socket open and calls no
	 * callback. */
	ares_destroy(c->ch);
	if (proa_timer_is_active(&c->timer))
		proa_timer_cancel(&c->timer);
	proa_handle_cancel(&c->cancel);
	free(c);
	dl->cares = NULL;
}

/* ---- lookups ------------------------------------------------------------ */

/*
 * c-ares's list as a struct addrinfo list that freeaddrinfo(3) frees: glibc
 * frees each node and its ai_canonname, and keeps ai_addr inside the node,
 * so each node here is one allocation with its address behind it.  Without
 * a socket type in the hints, each address comes as stream and datagram,
 * as getaddrinfo(3) gives them (without its raw sockets).
 */
static int convert(const struct cares_req *req, const struct ares_addrinfo *in,
		   struct addrinfo **out)
{
	static const int kinds[][2] = {{SOCK_STREAM, IPPROTO_TCP},
				       {SOCK_DGRAM, IPPROTO_UDP}};
	struct addrinfo *head = NULL, **tail = &head, *ai;
	const struct ares_addrinfo_node *n;
	unsigned k, nk;

	for (n = in->nodes; n; n = n->ai_next) {
		nk = req->socktype || n->ai_socktype ? 1 : 2;
		for (k = 0; k < nk; k++) {
			ai = calloc(1, sizeof(*ai) + n->ai_addrlen);
			if (!ai)
				goto err;
			ai->ai_family = n->ai_family;
			ai->ai_socktype = n->ai_socktype;
			ai->ai_protocol = n->ai_protocol;
			if (nk == 2) {
				ai->ai_socktype = kinds[k][0];
				ai->ai_protocol = kinds[k][1];
			} else if (!ai->ai_socktype) {
				ai->ai_socktype = req->socktype;
				ai->ai_protocol = req->protocol;
			}
			ai->ai_addrlen = n->ai_addrlen;
			ai->ai_addr = (struct sockaddr *)(ai + 1);
			memcpy(ai->ai_addr, n->ai_addr, n->ai_addrlen);
			*tail = ai;
			tail = &ai->ai_next;
		}
	}
	if (!head)
		return PROA_ENONAME;
	if (req->canonname && in->name) {
		head->ai_canonname = strdup(in->name);
		if (!head->ai_canonname)
			goto err;
	}
	*out = head;
	return 0;
err:
	if (head)
		freeaddrinfo(head);
	return -ENOMEM;
}

/* c-ares's callback: in ares_getaddrinfo() itself (numeric hosts,
 * /etc/hosts), in ares_process_fd(), or in ares_cancel()/ares_destroy(). */
static void on_result(void *arg, int status, int timeouts,
		      struct ares_addrinfo *res)
{
	struct cares_req *req = arg;
	struct proa__cares *c = req->c;
	struct addrinfo *ai = NULL;
	int32_t ret;

	(void)timeouts;
	c->inflight--;
	if (req->fut) {
		c->wanted--;
		ret = status_to_res(status);
		if (ret == 0)
			ret = convert(req, res, &ai);
		proa_future_set_canceller(req->fut, NULL, NULL);
		proa__future_resolve(req->fut, ret, ret == 0 ? ai : NULL);
	}
	if (res)
		ares_freeaddrinfo(res);
	free(req);
}

static void cancel_all(void *arg)
{
	struct proa__cares *c = arg;
	const bool every = c->end_all;

	c->end_all = false;
	if ((c->wanted && !every) || !c->inflight)
		return;
	/* Their futures resolve with -ECANCELED (on_result); c-ares closes
	 * its sockets, and so their watches close. */
	ares_cancel(c->ch);
	update_timer(c);
}

unsigned proa__cares_cancel_all(struct proa__dns_loop *dl)
{
	struct proa__cares *c = dl->cares;

	if (!c || !c->inflight)
		return 0;
	c->end_all = true;
	if (proa_handle_is_idle(&c->cancel))
		proa_loop_call_soon(dl->loop, &c->cancel, cancel_all, c);
	return c->wanted;
}

static void on_cancel(struct proa_future *fut, void *arg)
{
	struct cares_req *req = arg;
	struct proa__cares *c = req->c;

	req->fut = NULL;
	c->wanted--;
	proa_future_set_canceller(fut, NULL, NULL);
	proa__future_resolve(fut, -ECANCELED, NULL);
	if (!c->wanted && proa_handle_is_idle(&c->cancel))
		proa_loop_call_soon(c->dl->loop, &c->cancel, cancel_all, c);
}

static int ai_flags_to_ares(int f)
{
	return (f & AI_CANONNAME ? ARES_AI_CANONNAME : 0) |
	       (f & AI_NUMERICHOST ? ARES_AI_NUMERICHOST : 0) |
	       (f & AI_PASSIVE ? ARES_AI_PASSIVE : 0) |
	       (f & AI_NUMERICSERV ? ARES_AI_NUMERICSERV : 0) |
	       (f & AI_V4MAPPED ? ARES_AI_V4MAPPED : 0) |
	       (f & AI_ALL ? ARES_AI_ALL : 0) |
	       (f & AI_ADDRCONFIG ? ARES_AI_ADDRCONFIG : 0);
}

int proa__cares_getaddrinfo(struct proa__dns_loop *dl, const char *host,
			    const char *service, const struct addrinfo *hints,
			    struct proa_future *fut)
{
	struct ares_addrinfo_hints ah = {0};
	struct cares_req *req;
	struct proa__cares *c;
	int ret;

	if (hints) {
		/* A bad family comes back from c-ares as EBADFAMILY. */
		ah.ai_flags = ai_flags_to_ares(hints->ai_flags);
		ah.ai_family = hints->ai_family;
		ah.ai_socktype = hints->ai_socktype;
		ah.ai_protocol = hints->ai_protocol;
	} else {
		ah.ai_flags = ARES_AI_V4MAPPED | ARES_AI_ADDRCONFIG;
	}
	c = channel_get(dl, &ret);
	if (!c)
		return ret;
	req = calloc(1, sizeof(*req));
	if (!req)
		return -ENOMEM;
	req->c = c;
	req->fut = fut;
	req->socktype = ah.ai_socktype;
	req->protocol = ah.ai_protocol;
	req->canonname = ah.ai_flags & ARES_AI_CANONNAME;
	c->inflight++;
	c->wanted++;
	proa_future_set_canceller(fut, on_cancel, req);
	/* May call on_result() before it returns; @req is not touched
	 * after. */
	ares_getaddrinfo(c->ch, host, service, &ah, on_result, req);
	update_timer(c);
	return 0;
}
