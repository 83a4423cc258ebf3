/* SPDX-License-Identifier: MIT */
/*
 * completion/log.c - proa's log lines: to stderr, or to a hook the
 * application installs with proa_set_log_fn().  Logging is rare (debug
 * findings, kernel trouble), so a mutex around the hook is fine.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "completion_int.h"
#include "mutex.h"

static struct proa__mutex log_mu = PROA__MUTEX_INITIALIZER;
static proa_log_fn log_fn PROA_GUARDED_BY(log_mu);
static void *log_arg PROA_GUARDED_BY(log_mu);

/* fork(): a thread that was logging when another forked would leave
 * log_mu locked for good in the child; fork waits for the line instead.
 * The child's thread is the one that took the lock in fork_prepare(). */
static void fork_prepare(void) PROA_NO_TSA
{
	proa__mutex_lock(&log_mu);
}

static void fork_done(void) PROA_NO_TSA
{
	proa__mutex_unlock(&log_mu);
}

__attribute__((constructor)) static void log_atfork(void)
{
	pthread_atfork(fork_prepare, fork_done, fork_done);
}

void proa_set_log_fn(proa_log_fn fn, void *arg)
{
	proa__mutex_lock(&log_mu);
	log_fn = fn;
	log_arg = arg;
	proa__mutex_unlock(&log_mu);
}

static const char *level_name(enum proa_log_level level)
{
	switch (level) {
	case PROA_LOG_ERROR:
		return "error";
	case PROA_LOG_WARN:
		return "warning";
	case PROA_LOG_INFO:
		return "info";
	case PROA_LOG_DEBUG:
		return "debug";
	}
	return "?";
}

int proa__appendf(char *buf, size_t len, size_t *used, const char *fmt, ...)
{
	char scratch[1], *dst = scratch;
	size_t room = 0;
	va_list ap;
	int n;

	if (buf && *used < len) {
		dst = buf + *used;
		room = len - *used;
	}
	va_start(ap, fmt);
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): false alarm */
	n = vsnprintf(dst, room, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	*used += (size_t)n;
	return 0;
}

/* Debug lines reach stderr only with PROA_DEBUG set (not "0"): a peer
 * that fails TLS handshakes on purpose must not be able to fill a
 * server's stderr.  A hook of proa_set_log_fn() gets every line. */
static bool debug_env(void)
{
	static int on = -1;
	const char *e;

	if (__atomic_load_n(&on, __ATOMIC_RELAXED) < 0) {
		/* NOLINTNEXTLINE(concurrency-mt-unsafe): read-only env */
		e = getenv("PROA_DEBUG");
		__atomic_store_n(&on, e && *e && strcmp(e, "0") != 0,
				 __ATOMIC_RELAXED);
	}
	return __atomic_load_n(&on, __ATOMIC_RELAXED) > 0;
}

void proa__log(enum proa_log_level level, const char *fmt, ...)
{
	char msg[1024];
	proa_log_fn fn;
	void *arg;
	va_list ap;

	va_start(ap, fmt);
	/* clang-analyzer 14 misreads va_start here; the NOLINT covers it. */
	/* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized) */
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	/* The hook runs under the lock so that proa_set_log_fn() returning
	 * means the old hook is no longer running. */
	proa__mutex_lock(&log_mu);
	fn = log_fn;
	arg = log_arg;
	if (fn)
		fn(arg, level, msg);
	else if (level != PROA_LOG_DEBUG || debug_env())
		fprintf(stderr, "proa: %s: %s\n", level_name(level), msg);
	proa__mutex_unlock(&log_mu);
}

void proa__describe_addr(const void *addr, char *buf, size_t len)
{
	Dl_info info;

	if (dladdr(addr, &info) && info.dli_sname) {
		snprintf(buf, len, "%s+%#lx", info.dli_sname,
			 (unsigned long)((const char *)addr -
					 (const char *)info.dli_saddr));
		return;
	}
	if (dladdr(addr, &info) && info.dli_fname) {
		snprintf(buf, len, "%p (%s+%#lx)", addr, info.dli_fname,
			 (unsigned long)((const char *)addr -
					 (const char *)info.dli_fbase));
		return;
	}
	snprintf(buf, len, "%p", addr);
}
