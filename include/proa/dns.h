/* SPDX-License-Identifier: MIT */
/*
 * proa/dns.h - name resolution: proa_getaddrinfo() and proa_getnameinfo().
 *
 * Two resolvers stand behind proa_getaddrinfo():
 *
 *   c-ares  (where proa was built with it) on the loop thread: its sockets
 *           are fd watches (proa/watch.h) and its timeouts a proa timer,
 *           one channel per loop, made on the loop's first lookup.  A
 *           lookup holds no thread, and cancelling it ends it at once.
 *   pool    getaddrinfo(3) on the DNS lane of the loop's default pool
 *           (proa/pool.h): a worker per lookup in progress, and a lookup
 *           that has started cannot be taken back (its result is dropped).
 *
 * The default is c-ares where it is built in and the system's name service
 * is what c-ares reads itself: the "hosts:" line of /etc/nsswitch.conf
 * names only "files" and "dns" (or there is no such line).  Any other
 * source (mdns, myhostname, systemd-resolved's "resolve", LDAP ...) is
 * reachable only through glibc, so the pool serves those systems.  The
 * environment variable PROA_RESOLVER=cares|pool overrides the choice for the
 * process, and proa_dns_configure() for one loop.  Numeric addresses,
 * lookups without a host, and "localhost" names (RFC 6761) always go to
 * the pool path, which sends no query for them (and answers localhost
 * names with loopback when the system does not).
 */
#ifndef PROA_DNS_H
#define PROA_DNS_H

#include <sys/socket.h>

#include "base.h"
#include "future.h"
#include "loop.h"

#ifdef __cplusplus
extern "C" {
#endif

struct addrinfo;

enum proa_resolver {
	PROA_RESOLVER_AUTO = 0, /* PROA_RESOLVER, else the rule above */
	PROA_RESOLVER_CARES,	/* c-ares; -EOPNOTSUPP if not built in */
	PROA_RESOLVER_POOL,	/* getaddrinfo(3) on the pool's DNS lane */
};

/*
 * struct proa_dns_options - a loop's resolver settings.  Zero fields keep
 * the defaults.
 */
struct proa_dns_options {
	enum proa_resolver resolver;
	/* c-ares only: servers as "host[:port],..."
	 * (ares_set_servers_ports_csv: "127.0.0.1:5353,[::1]:53"), instead of
	 * /etc/resolv.conf's. */
	const char *servers;
	/* c-ares only: the first try's timeout (c-ares doubles it per
	 * round), and tries per server.  0: c-ares's (or resolv.conf's). */
	unsigned timeout_ms;
	unsigned tries;
	/* Must be zero. */
	uint64_t reserved[2];
};

/**
 * proa_dns_configure() - set @loop's resolver.
 * @opts: copied; NULL restores the defaults.
 *
 * Settings for c-ares apply to the next lookup: the loop's channel is made
 * again, so they may change only while no c-ares lookup is in flight.
 *
 * Return: 0; -EINVAL (unknown resolver, reserved fields not zero, servers
 *         c-ares cannot parse); -EOPNOTSUPP if c-ares is asked for and not
 *         built in; -EBUSY while c-ares lookups are in flight; -ENOMEM.
 * Thread: loop.
 */
PROA_API int proa_dns_configure(struct proa_loop *loop,
				const struct proa_dns_options *opts);

/**
 * proa_dns_resolver() - the resolver proa_getaddrinfo() uses on @loop for
 * a name that is not a localhost name: PROA_RESOLVER_CARES or
 * PROA_RESOLVER_POOL.
 * Thread: loop.
 */
PROA_API enum proa_resolver proa_dns_resolver(struct proa_loop *loop);

/**
 * proa_getaddrinfo() - getaddrinfo(3) of @host and @service, on @loop's
 * resolver (see above).  The strings and @hints are copied.
 *
 * @fut resolves with 0 and the list as its value (free it with
 * proa_freeaddrinfo()), or with an error: PROA_ENONAME (the name or
 * service does not resolve), -EAGAIN (temporary failure: a server that
 * does not answer or refuses; try again), PROA_EDNSFAIL (the resolver
 * failed), -EAFNOSUPPORT, -ESOCKTNOSUPPORT, -EINVAL (bad hints), -ENOMEM,
 * or the -errno of a system error.  proa_future_cancel() on a c-ares lookup
 * resolves @fut with -ECANCELED at once; on the pool, a lookup not yet
 * started is dropped, one started runs to its end and its result is freed.
 *
 * Return: 0; -EINVAL if both @host and @service are NULL or @fut is not a
 *         pending future of @loop; -EBUSY if @fut already has work; -ENOMEM;
 *         the errors of proa_pool_submit() on the pool path.
 * Thread: loop.
 */
PROA_API int proa_getaddrinfo(struct proa_loop *loop, const char *host,
			      const char *service, const struct addrinfo *hints,
			      struct proa_future *fut);

/**
 * proa_freeaddrinfo() - free a list from proa_getaddrinfo(); NULL is fine.
 * Thread: any.
 */
PROA_API void proa_freeaddrinfo(struct addrinfo *ai);

/* The value of a proa_getnameinfo() future; free() it. */
struct proa_nameinfo {
	char host[1025]; /* NI_MAXHOST */
	char serv[32];	 /* NI_MAXSERV */
};

/**
 * proa_getnameinfo() - getnameinfo(3) of @sa with @flags (NI_*), on the DNS
 * lane of @loop's default pool.  @sa is copied.
 *
 * @fut resolves with 0 and a struct proa_nameinfo as its value (free() it),
 * or with an error as proa_getaddrinfo()'s.
 *
 * Return: 0; -EINVAL (NULL @sa or @fut, @salen larger than a
 *         struct sockaddr_storage); the errors of proa_pool_submit().
 * Thread: loop.
 */
PROA_API int proa_getnameinfo(struct proa_loop *loop, const struct sockaddr *sa,
			      socklen_t salen, int flags,
			      struct proa_future *fut);

#ifdef __cplusplus
}
#endif

#endif /* PROA_DNS_H */
