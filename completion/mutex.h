/* SPDX-License-Identifier: MIT */
/*
 * completion/mutex.h - a pthread mutex that Clang's thread-safety analysis
 * understands: globals and functions annotated with PROA_GUARDED_BY(mu),
 * PROA_REQUIRES(mu) etc. are checked under clang -Wthread-safety.
 */
#ifndef PROA_MUTEX_H
#define PROA_MUTEX_H

#include <pthread.h>

#include "annot.h"

struct PROA_CAPABILITY("mutex") proa__mutex {
	pthread_mutex_t m;
};

#define PROA__MUTEX_INITIALIZER                                                \
	{                                                                      \
		PTHREAD_MUTEX_INITIALIZER                                      \
	}

static inline void proa__mutex_lock(struct proa__mutex *mu) PROA_ACQUIRE(mu);
static inline void proa__mutex_unlock(struct proa__mutex *mu) PROA_RELEASE(mu);

/* The analysis cannot see through pthread: these two are the trust base. */
static inline void proa__mutex_lock(struct proa__mutex *mu) PROA_NO_TSA
{
	pthread_mutex_lock(&mu->m);
}

static inline void proa__mutex_unlock(struct proa__mutex *mu) PROA_NO_TSA
{
	pthread_mutex_unlock(&mu->m);
}

#endif /* PROA_MUTEX_H */
