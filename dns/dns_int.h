/* SPDX-License-Identifier: MIT */
/*
 * dns/dns_int.h - private to the library: the per-loop state of the
 * resolver (resolve.c) and the c-ares path (cares.c).
 *
 * Thread: loop, everything.
 */
#ifndef PROA_DNS_INT_H
#define PROA_DNS_INT_H

#include "pool/pool_int.h"
#include "proa/dns.h"
#include "proa/watch.h"

struct proa__cares;

/* A loop's resolver: its settings and, once c-ares served a lookup, the
 * c-ares channel.  Made on first use, freed by its hook at loop close. */
struct proa__dns_loop {
	struct proa__loop_hook hook;
	struct proa_loop *loop;
	struct proa_dns_options opts; /* .servers points at @servers */
	char *servers;
	struct proa__cares *cares; /* NULL until the first c-ares lookup */
};

/* @loop's resolver state; made if @create and absent (NULL: -ENOMEM). */
struct proa__dns_loop *proa__dns_loop(struct proa_loop *loop, bool create);

#ifdef PROA_HAVE_CARES
/* ---- cares.c ------------------------------------------------------------ */

/* A lookup on @dl's channel (made now if absent).  @host is not NULL;
 * arguments checked by the caller. */
int proa__cares_getaddrinfo(struct proa__dns_loop *dl, const char *host,
			    const char *service, const struct addrinfo *hints,
			    struct proa_future *fut);
/* Lookups in flight on @dl's channel, cancelled ones included. */
unsigned proa__cares_inflight(const struct proa__dns_loop *dl);

/* proa_loop_cancel_all(): every lookup of the channel ends with
 * -ECANCELED, from a handle (never inside a c-ares callback).  Return:
 * how many were wanted. */
unsigned proa__cares_cancel_all(struct proa__dns_loop *dl);
/* Free the channel (no lookup may be in flight); the next lookup makes a
 * new one with @dl's settings. */
void proa__cares_free(struct proa__dns_loop *dl);
/* Whether c-ares accepts @csv as a server list (made on a scratch
 * channel). */
bool proa__cares_servers_ok(const char *csv);
#endif /* PROA_HAVE_CARES */

#endif /* PROA_DNS_INT_H */
