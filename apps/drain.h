/* SPDX-License-Identifier: MIT */
/*
 * apps/drain.h - how a program waits for its loops to drain at shutdown:
 * each of @total loops reports once (from its own thread) when its
 * connections are gone, and main() waits for all of them, or for a grace
 * period, before it frees the loop group.  Shared by proa-echo and
 * proa-httpd.
 *
 * Thread: app_drain_done() any; the others the thread that owns @d.
 */
#ifndef PROA_APPS_DRAIN_H
#define PROA_APPS_DRAIN_H

#include <pthread.h>
#include <time.h>

struct app_drain {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	unsigned done, total;
};

static inline void app_drain_init(struct app_drain *d, unsigned total)
{
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cond, NULL);
	d->done = 0;
	d->total = total;
}

static inline void app_drain_destroy(struct app_drain *d)
{
	pthread_cond_destroy(&d->cond);
	pthread_mutex_destroy(&d->mu);
}

/* One loop has drained (or will never report: its message failed). */
static inline void app_drain_done(struct app_drain *d)
{
	pthread_mutex_lock(&d->mu);
	d->done++;
	pthread_cond_signal(&d->cond);
	pthread_mutex_unlock(&d->mu);
}

/* Wait until every loop has reported, or @grace_s seconds. */
static inline void app_drain_wait(struct app_drain *d, unsigned grace_s)
{
	struct timespec deadline;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += (time_t)grace_s;
	pthread_mutex_lock(&d->mu);
	while (d->done < d->total)
		if (pthread_cond_timedwait(&d->cond, &d->mu, &deadline))
			break;
	pthread_mutex_unlock(&d->mu);
}

#endif /* PROA_APPS_DRAIN_H */
