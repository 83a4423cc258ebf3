/* SPDX-License-Identifier: MIT */
/*
 * pool/dns.c - getaddrinfo(3) on the DNS lane, so that a slow or dead
 * resolver holds a DNS worker, never the loop or a file call: the pool path
 * of proa_getaddrinfo() (dns/, which picks between it and c-ares).
 */
#include <errno.h>
#include <netdb.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>

#include "pool_int.h"

struct dns_req {
	struct addrinfo hints;
	bool has_hints;
	const char *host;
	const char *service;
	char strings[]; /* host and service, copied */
};

/* getaddrinfo's EAI_* codes as proa results. */
int32_t proa__gai_to_res(int rc, int saved_errno)
{
	switch (rc) {
	case EAI_NONAME:
#ifdef EAI_NODATA
	case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
	case EAI_ADDRFAMILY:
#endif
	case EAI_SERVICE:
		return PROA_ENONAME;
	case EAI_AGAIN:
		return -EAGAIN;
	case EAI_MEMORY:
		return -ENOMEM;
	case EAI_FAMILY:
		return -EAFNOSUPPORT;
	case EAI_SOCKTYPE:
		return -ESOCKTNOSUPPORT;
	case EAI_BADFLAGS:
		return -EINVAL;
	case EAI_OVERFLOW:
		return -EOVERFLOW;
	case EAI_SYSTEM:
		return saved_errno > 0 ? -saved_errno : PROA_EDNSFAIL;
	default:
		return PROA_EDNSFAIL;
	}
}

/* "localhost" and "*.localhost" (RFC 6761 section 6.3). */
bool proa__dns_is_localhost(const char *host)
{
	size_t n = host ? strlen(host) : 0;

	if (n && host[n - 1] == '.')
		n--; /* the root label */
	if (n == 9)
		return strncasecmp(host, "localhost", 9) == 0;
	return n > 10 && strncasecmp(host + n - 10, ".localhost", 10) == 0;
}

/*
 * RFC 6761 says localhost names are loopback and never go to a resolver;
 * glibc leaves that to /etc/hosts, which minimal containers lack.  When
 * the system does not answer, answer with the loopback addresses of the
 * families asked for, IPv4 first (glibc's freeaddrinfo() frees a chained
 * list node by node, so two lists can be joined).
 */
static int loopback_answer(const struct dns_req *req, struct addrinfo **res)
{
	struct addrinfo hints = req->hints, *v4 = NULL, *v6 = NULL, *p;
	int family = req->has_hints ? req->hints.ai_family : AF_UNSPEC;
	int rc4 = EAI_NONAME, rc6 = EAI_NONAME;

	if (!req->has_hints)
		hints.ai_flags = AI_V4MAPPED | AI_ADDRCONFIG;
	hints.ai_flags =
	    (hints.ai_flags & ~(AI_CANONNAME | AI_ADDRCONFIG)) | AI_NUMERICHOST;
	if (family == AF_UNSPEC || family == AF_INET) {
		hints.ai_family = AF_INET;
		rc4 = getaddrinfo("127.0.0.1", req->service, &hints, &v4);
	}
	if (family == AF_UNSPEC || family == AF_INET6) {
		hints.ai_family = AF_INET6;
		rc6 = getaddrinfo("::1", req->service, &hints, &v6);
	}
	if (rc4 != 0 && rc6 != 0)
		return family == AF_UNSPEC || family == AF_INET ? rc4 : rc6;
	if (rc4 != 0)
		v4 = NULL;
	if (rc6 != 0)
		v6 = NULL;
	if (!v4) {
		*res = v6;
		return 0;
	}
	for (p = v4; p->ai_next; p = p->ai_next)
		;
	p->ai_next = v6;
	*res = v4;
	return 0;
}

/* Thread: worker. */
static int32_t dns_job(void *arg, void **value)
{
	struct dns_req *req = arg;
	struct addrinfo *res = NULL;
	int rc;

	errno = 0;
	rc = getaddrinfo(req->host, req->service,
			 req->has_hints ? &req->hints : NULL, &res);
	if ((rc == EAI_NONAME || rc == EAI_AGAIN || rc == EAI_FAIL
#ifdef EAI_NODATA
	     || rc == EAI_NODATA
#endif
#ifdef EAI_ADDRFAMILY
	     || rc == EAI_ADDRFAMILY
#endif
	     ) &&
	    proa__dns_is_localhost(req->host))
		rc = loopback_answer(req, &res);
	rc = rc == 0 ? 0 : proa__gai_to_res(rc, errno);
	free(req);
	if (rc < 0)
		return rc;
	*value = res;
	return 0;
}

int proa__pool_getaddrinfo(struct proa_loop *loop, const char *host,
			   const char *service, const struct addrinfo *hints,
			   struct proa_future *fut)
{
	size_t hl = host ? strlen(host) + 1 : 0;
	size_t sl = service ? strlen(service) + 1 : 0;
	struct proa_pool *pool;
	struct dns_req *req;
	int ret;

	if (!loop || !fut || (!host && !service))
		return -EINVAL;
	PROA__LOOP_CHECK(loop);
	if (fut->priv.loop != loop)
		return -EINVAL;
	if (!proa__future_free(fut))
		return -EBUSY;
	ret = proa_pool_default(&pool, loop);
	if (ret < 0)
		return ret;
	req = calloc(1, sizeof(*req) + hl + sl);
	if (!req)
		return -ENOMEM;
	if (hints) {
		/* Only the fields getaddrinfo reads from hints. */
		req->hints.ai_flags = hints->ai_flags;
		req->hints.ai_family = hints->ai_family;
		req->hints.ai_socktype = hints->ai_socktype;
		req->hints.ai_protocol = hints->ai_protocol;
		req->has_hints = true;
	}
	if (host) {
		memcpy(req->strings, host, hl);
		req->host = req->strings;
	}
	if (service) {
		memcpy(req->strings + hl, service, sl);
		req->service = req->strings + hl;
	}
	ret = proa__pool_submit(pool, loop, PROA_LANE_DNS, dns_job, req, free,
				fut, NULL, 0, NULL);
	if (ret < 0)
		free(req);
	return ret;
}
