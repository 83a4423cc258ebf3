/* SPDX-License-Identifier: MIT */
/*
 * pool/dns.c - proa_getaddrinfo(): getaddrinfo(3) on the DNS lane, so that a
 * slow or dead resolver holds a DNS worker, never the loop or a file call.
 */
#include <errno.h>
#include <netdb.h>
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
static int32_t gai_to_res(int rc, int saved_errno)
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

/* Thread: worker. */
static int32_t dns_job(void *arg, void **value)
{
	struct dns_req *req = arg;
	struct addrinfo *res = NULL;
	int rc;

	errno = 0;
	rc = getaddrinfo(req->host, req->service,
			 req->has_hints ? &req->hints : NULL, &res);
	rc = rc == 0 ? 0 : gai_to_res(rc, errno);
	free(req);
	if (rc < 0)
		return rc;
	*value = res;
	return 0;
}

int proa_getaddrinfo(struct proa_loop *loop, const char *host,
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
	if (fut->priv.state != PROA_FUTURE_PENDING || fut->priv.canceller)
		return -EBUSY;
	ret = proa_pool_default(loop, &pool);
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

void proa_freeaddrinfo(struct addrinfo *ai)
{
	if (ai)
		freeaddrinfo(ai);
}
