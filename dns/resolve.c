/* SPDX-License-Identifier: MIT */
/*
 * dns/resolve.c - proa_getaddrinfo() picks its resolver (proa/dns.h says
 * the rule); proa_getnameinfo() on the pool's DNS lane; the per-loop
 * resolver state and its settings.
 *
 * Thread: loop, except proa_freeaddrinfo() (any).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns_int.h"

/* ---- the per-loop state ------------------------------------------------- */

static void dns_flush(struct proa__loop_hook *h)
{
	(void)h; /* nothing gathers per iteration */
}

/* At proa_loop_close(): nothing is in flight (an armed watch or timer of
 * the channel would have kept the loop open). */
static void dns_close(struct proa__loop_hook *h)
{
	struct proa__dns_loop *dl =
	    proa_container_of(h, struct proa__dns_loop, hook);

	proa__loop_hook_del(h);
#ifdef PROA_HAVE_CARES
	proa__cares_free(dl);
#endif
	free(dl->servers);
	free(dl);
}

/* proa_loop_cancel_all(): c-ares's lookups wait on fd watches and a timer,
 * not ops, so they are ended here (the pool's lookups are pool jobs, left
 * alone as every job is). */
static int dns_cancel_all(struct proa__loop_hook *h)
{
#ifdef PROA_HAVE_CARES
	return (int)proa__cares_cancel_all(
	    proa_container_of(h, struct proa__dns_loop, hook));
#else
	(void)h;
	return 0;
#endif
}

/* The key of dns/'s hook on a loop: its address is what counts. */
static const char dns_key;

static struct proa__dns_loop *dns_loop_find(struct proa_loop *loop)
{
	struct proa__loop_hook *h = proa__loop_hook_find(loop, &dns_key);

	return h ? proa_container_of(h, struct proa__dns_loop, hook) : NULL;
}

struct proa__dns_loop *proa__dns_loop(struct proa_loop *loop, bool create)
{
	struct proa__dns_loop *dl = dns_loop_find(loop);

	if (dl || !create)
		return dl;
	dl = calloc(1, sizeof(*dl));
	if (!dl)
		return NULL;
	dl->loop = loop;
	dl->hook.key = &dns_key;
	dl->hook.flush = dns_flush;
	dl->hook.close = dns_close;
	dl->hook.cancel_all = dns_cancel_all;
	proa__loop_hook_add(loop, &dl->hook);
	return dl;
}

/* ---- which resolver ----------------------------------------------------- */

#ifdef PROA_HAVE_CARES
static bool nss_plain;
static pthread_once_t nss_once = PTHREAD_ONCE_INIT;

/*
 * Whether /etc/nsswitch.conf's "hosts:" line names only the sources c-ares
 * reads itself: "files" (/etc/hosts) and "dns" (/etc/resolv.conf).  An
 * action in brackets changes what glibc does between them, so it counts as
 * something else.  No file or no line: glibc's default is dns and files.
 */
static void nss_read(void)
{
	char line[512], *p, *tok, *save;
	FILE *f = fopen("/etc/nsswitch.conf", "re");

	nss_plain = true;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		p = line;
		while (isspace((unsigned char)*p))
			p++;
		if (strncmp(p, "hosts:", 6) != 0)
			continue;
		if ((tok = strchr(p, '#')) != NULL)
			*tok = '\0';
		for (tok = strtok_r(p + 6, " \t\r\n", &save); tok;
		     tok = strtok_r(NULL, " \t\r\n", &save)) {
			if (strcmp(tok, "files") != 0 &&
			    strcmp(tok, "dns") != 0)
				nss_plain = false;
		}
		break;
	}
	fclose(f);
}
#endif /* PROA_HAVE_CARES */

static enum proa_resolver resolver_of(struct proa__dns_loop *dl)
{
#ifdef PROA_HAVE_CARES
	const char *env;

	if (dl && dl->opts.resolver != PROA_RESOLVER_AUTO)
		return dl->opts.resolver;
	env = getenv("PROA_RESOLVER"); /* NOLINT(concurrency-mt-unsafe) */
	if (env && strcmp(env, "pool") == 0)
		return PROA_RESOLVER_POOL;
	if (env && strcmp(env, "cares") == 0)
		return PROA_RESOLVER_CARES;
	pthread_once(&nss_once, nss_read);
	return nss_plain ? PROA_RESOLVER_CARES : PROA_RESOLVER_POOL;
#else
	(void)dl;
	return PROA_RESOLVER_POOL;
#endif
}

enum proa_resolver proa_dns_resolver(struct proa_loop *loop)
{
	if (!loop)
		return PROA_RESOLVER_POOL;
	PROA__LOOP_CHECK(loop);
	return resolver_of(proa__dns_loop(loop, false));
}

int proa_dns_configure(struct proa_loop *loop,
		       const struct proa_dns_options *opts)
{
	struct proa_dns_options none = {0};
	struct proa__dns_loop *dl;
	char *servers = NULL;

	if (!loop)
		return -EINVAL;
	PROA__LOOP_CHECK(loop);
	if (!opts)
		opts = &none;
	if (opts->reserved[0] || opts->reserved[1] ||
	    (unsigned)opts->resolver > PROA_RESOLVER_POOL)
		return -EINVAL;
#ifdef PROA_HAVE_CARES
	if (opts->servers && !proa__cares_servers_ok(opts->servers))
		return -EINVAL;
#else
	if (opts->resolver == PROA_RESOLVER_CARES)
		return -EOPNOTSUPP;
#endif
	dl = proa__dns_loop(loop, true);
	if (!dl)
		return -ENOMEM;
#ifdef PROA_HAVE_CARES
	if (proa__cares_inflight(dl))
		return -EBUSY;
	proa__cares_free(dl); /* the next lookup makes it with these */
#endif
	if (opts->servers) {
		servers = strdup(opts->servers);
		if (!servers)
			return -ENOMEM;
	}
	free(dl->servers);
	dl->opts = *opts;
	dl->servers = servers;
	dl->opts.servers = servers;
	return 0;
}

/* ---- proa_getaddrinfo() ------------------------------------------------- */

/* An address, not a name.  c-ares 1.18 sends one asked for in AF_UNSPEC to
 * the servers as a name; getaddrinfo(3) answers it without a query. */
static bool is_numeric(const char *host)
{
	struct in6_addr a;

	return inet_pton(AF_INET, host, &a) == 1 ||
	       inet_pton(AF_INET6, host, &a) == 1;
}

int proa_getaddrinfo(struct proa_loop *loop, const char *host,
		     const char *service, const struct addrinfo *hints,
		     struct proa_future *fut)
{
	struct proa__dns_loop *dl;

	if (!loop || !fut || (!host && !service))
		return -EINVAL;
	PROA__LOOP_CHECK(loop);
	if (fut->priv.loop != loop)
		return -EINVAL;
	if (!proa__future_free(fut))
		return -EBUSY;
	dl = proa__dns_loop(loop, false);
	/* No host (a passive or service-only lookup), addresses, and
	 * localhost names (answered with loopback where the system does
	 * not) stay with getaddrinfo(3): no query leaves for them. */
	if (!host || proa__dns_is_localhost(host) || is_numeric(host) ||
	    resolver_of(dl) == PROA_RESOLVER_POOL)
		return proa__pool_getaddrinfo(loop, host, service, hints, fut);
#ifdef PROA_HAVE_CARES
	if (!dl)
		dl = proa__dns_loop(loop, true);
	if (!dl)
		return -ENOMEM;
	return proa__cares_getaddrinfo(dl, host, service, hints, fut);
#else
	return -EOPNOTSUPP; /* not reached: resolver_of() says pool */
#endif
}

void proa_freeaddrinfo(struct addrinfo *ai)
{
	/* Both paths make lists freeaddrinfo(3) frees: cares.c allocates
	 * each node with its address, as glibc does. */
	if (ai)
		freeaddrinfo(ai);
}

/* ---- proa_getnameinfo() ------------------------------------------------- */

struct ni_req {
	struct sockaddr_storage ss;
	socklen_t len;
	int flags;
};

/* Thread: worker. */
static int32_t ni_job(void *arg, void **value)
{
	struct ni_req *req = arg;
	struct proa_nameinfo *ni = calloc(1, sizeof(*ni));
	int rc;

	if (!ni) {
		free(req);
		return -ENOMEM;
	}
	errno = 0;
	rc = getnameinfo((struct sockaddr *)&req->ss, req->len, ni->host,
			 sizeof(ni->host), ni->serv, sizeof(ni->serv),
			 req->flags);
	free(req);
	if (rc != 0) {
		free(ni);
		return proa__gai_to_res(rc, errno);
	}
	*value = ni;
	return 0;
}

int proa_getnameinfo(struct proa_loop *loop, const struct sockaddr *sa,
		     socklen_t salen, int flags, struct proa_future *fut)
{
	struct proa_pool *pool;
	struct ni_req *req;
	int ret;

	if (!loop || !sa || !fut || salen > sizeof(req->ss))
		return -EINVAL;
	PROA__LOOP_CHECK(loop);
	if (fut->priv.loop != loop)
		return -EINVAL;
	if (!proa__future_free(fut))
		return -EBUSY;
	ret = proa_pool_default(&pool, loop);
	if (ret < 0)
		return ret;
	req = calloc(1, sizeof(*req));
	if (!req)
		return -ENOMEM;
	memcpy(&req->ss, sa, salen);
	req->len = salen;
	req->flags = flags;
	ret = proa__pool_submit(pool, loop, PROA_LANE_DNS, ni_job, req, free,
				fut, NULL, 0, NULL);
	if (ret < 0)
		free(req);
	return ret;
}
