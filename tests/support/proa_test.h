/* SPDX-License-Identifier: MIT */
/*
 * tests/support/proa_test.h - what every proa test shares.
 *
 *  - proa_test_require_uring(): a binary that needs io_uring exits 77
 *    (ctest: skipped) with the reason when this system refuses it;
 *  - proa_test_loop_new() / proa_test_loop_close(): every loop a test makes
 *    is closed with proa_loop_close() == 0 (nothing leaked: no op, timer,
 *    handle or reference left) and freed;
 *  - proa_test_fds() / proa_test_threads(): count descriptors and threads,
 *    so tests can assert that nothing was left behind;
 *  - drive helpers that run the loop one iteration at a time until a
 *    condition holds, with an iteration or a time bound instead of sleeps;
 *  - proa_test_tid() / proa_test_thread_in_wait(): whether a loop's thread
 *    is blocked in its wait, for tests that count wake-ups;
 *  - proa_test_have_ipv6() and proa_test_raise_nofile(): what the machine
 *    offers (an IPv6 loopback, enough descriptors), asked once;
 *  - a log capture for tests that assert on debug-mode log lines;
 *  - assert_res(): a proa result (0 or -errno) compared with the one
 *    wanted, and on a mismatch both said in words with proa_strerror().
 *
 * Include after <cmocka.h> (which needs <stdarg.h>, <stddef.h>, <setjmp.h>).
 */
#ifndef PROA_TEST_H
#define PROA_TEST_H

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "proa.h"

/*
 * How a proa result reads, into @buf: " (words)" with what proa_strerror()
 * says of 0 or a negative code; nothing for a count (proa_strerror() would
 * call it unknown).
 */
static inline const char *proa_test_res_words(long long v, char *buf,
					      size_t len)
{
	buf[0] = '\0';
	if (v <= 0 && v >= INT_MIN)
		snprintf(buf, len, " (%s)", proa_strerror((int)v));
	return buf;
}

static inline void proa_test_assert_res(long long got, long long want,
					const char *expr, const char *file,
					int line)
{
	char g[80], w[80];

	if (got == want)
		return;
	print_error("%s: got %lld%s, want %lld%s\n", expr, got,
		    proa_test_res_words(got, g, sizeof(g)), want,
		    proa_test_res_words(want, w, sizeof(w)));
	_fail(file, line);
}

/*
 * assert_res() - @actual, a proa result (a function's return, op->res, a
 * future's result: 0 or -errno, PROA_E*), must equal @expected.  Where
 * assert_int_equal() prints -EBUSY as 0xfffffffffffffff0, this prints
 * "proa_loop_close(loop): got -16 (Device or resource busy), want 0
 * (Success)" at the caller's file and line.  Each argument is evaluated
 * once.  Counts and sizes stay with assert_int_equal().
 */
#define assert_res(actual, expected)                                           \
	proa_test_assert_res((long long)(actual), (long long)(expected),       \
			     #actual, __FILE__, __LINE__)

/* CLOCK_MONOTONIC in nanoseconds: the loop's clock. */
static inline uint64_t proa_test_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * The environment, for tests.  A test reads and sets it only while no
 * thread of its own runs and no loop or pool thread of the library reads
 * it (the library reads PATH and PROA_RESOLVER on the loop's thread, which
 * is the test's); these are the only calls clang-tidy is told to let by.
 */
static inline const char *proa_test_getenv(const char *name)
{
	return getenv(name); /* NOLINT(concurrency-mt-unsafe) */
}

/* setenv(@name, @value, 1): 0, or -1 with errno. */
static inline int proa_test_setenv(const char *name, const char *value)
{
	return setenv(name, value, 1); /* NOLINT(concurrency-mt-unsafe) */
}

static inline int proa_test_unsetenv(const char *name)
{
	return unsetenv(name); /* NOLINT(concurrency-mt-unsafe) */
}

/* PROA_TEST_FILTER=test_name runs one test of the binary (debugging).
 * From main(), before the group runs. */
static inline void proa_test_filter_from_env(void)
{
	const char *f = proa_test_getenv("PROA_TEST_FILTER");

	if (f)
		cmocka_set_test_filter(f);
}

/* Whether PROA_BACKEND asks for @name (case as the library reads it). */
static inline bool proa_test_env_backend_is(const char *name)
{
	const char *v = proa_test_getenv("PROA_BACKEND");

	return v && strcasecmp(v, name) == 0;
}

/*
 * A binary that needs a loop.  Under PROA_BACKEND=epoll nothing is needed
 * (and io_uring is not even probed: such runs make no io_uring call).
 * Where io_uring is refused, PROA_BACKEND=auto (the default) runs the
 * tests on epoll; only a run that asked for io_uring by name is skipped
 * (exit 77, ctest: skipped), with the reason.
 */
static inline void proa_test_require_uring(void)
{
	char why[256];
	int ret;

	if (!proa_test_env_backend_is("io_uring"))
		return;
	ret = proa_io_uring_probe(why, sizeof(why));
	if (ret == -ENOSYS || ret == -EPERM || ret == -EINVAL) {
		fprintf(stderr, "skipped: %s\n", why);
		exit(77);
	}
}

/*
 * A binary about io_uring itself (set-up flags, io_uring_enter faults):
 * skipped where io_uring is refused or when PROA_BACKEND=epoll is asked
 * for; otherwise its loops are made on io_uring whatever the environment.
 */
static inline void proa_test_require_io_uring_backend(void)
{
	char why[256];
	int ret;

	if (proa_test_env_backend_is("epoll")) {
		fprintf(stderr, "skipped: PROA_BACKEND=epoll, and this test "
				"is about io_uring itself\n");
		exit(77);
	}
	ret = proa_io_uring_probe(why, sizeof(why));
	if (ret == -ENOSYS || ret == -EPERM || ret == -EINVAL) {
		fprintf(stderr, "skipped: %s\n", why);
		exit(77);
	}
	proa_test_setenv("PROA_BACKEND", "io_uring");
}

/* The backend a loop made with default options is expected to be on. */
static inline const char *proa_test_expected_backend(void)
{
	if (proa_test_env_backend_is("epoll"))
		return "epoll";
	if (proa_test_env_backend_is("io_uring"))
		return "io_uring";
	return proa_io_uring_probe(NULL, 0) == 0 ? "io_uring" : "epoll";
}

static inline int proa_test_count_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.')
			n++;
	}
	closedir(d);
	return n;
}

/* Open descriptors of this process (the count's own DIR fd excluded). */
static inline int proa_test_fds(void)
{
	return proa_test_count_dir("/proc/self/fd") - 1;
}

static inline int proa_test_threads(void)
{
	return proa_test_count_dir("/proc/self/task");
}

static inline pid_t proa_test_tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/*
 * Whether thread @tid of this process is blocked in a loop's wait
 * (io_uring_enter() or an epoll wait), from /proc/self/task/TID/syscall:
 * "running" while it runs, the number of the system call it is blocked in
 * otherwise.  A loop's sleep flag says the loop is about to block, not that
 * it has: a post made in between is caught by the loop's own re-check, and
 * no wake-up is sent (rightly).  A test that counts wake-ups therefore
 * waits for this as well.
 */
static inline bool proa_test_thread_in_wait(pid_t tid)
{
	char path[64], buf[64];
	long nr;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
	f = fopen(path, "re");
	if (!f) {
		int err = errno;

		/* No such thread (yet): not in its wait.  Anything else means
		 * this system cannot say, and a test would wait for ever. */
		snprintf(path, sizeof(path), "/proc/self/task/%d", (int)tid);
		if (access(path, F_OK) != 0)
			return false;
		fprintf(stderr, "%s/syscall: %s\n", path, strerror(err));
		abort();
	}
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	if (sscanf(buf, "%ld", &nr) != 1)
		return false; /* "running" */
	if (nr == SYS_io_uring_enter || nr == SYS_epoll_pwait)
		return true;
#ifdef SYS_epoll_wait
	if (nr == SYS_epoll_wait)
		return true;
#endif
#ifdef SYS_epoll_pwait2
	if (nr == SYS_epoll_pwait2)
		return true;
#endif
	return false;
}

static inline struct proa_loop *
proa_test_loop_new_opts(const struct proa_loop_opts *opts)
{
	struct proa_loop *loop = NULL;

	assert_res(proa_loop_new(&loop, opts), 0);
	assert_non_null(loop);
	return loop;
}

static inline struct proa_loop *proa_test_loop_new(void)
{
	return proa_test_loop_new_opts(NULL);
}

static inline void proa_test_loop_close(struct proa_loop *loop)
{
	assert_res(proa_loop_close(loop), 0);
	assert_res(proa_loop_free(loop), 0);
}

/* Run single iterations until *flag is true; fail after @max of them. */
static inline void proa_test_drive_flag(struct proa_loop *loop,
					const volatile bool *flag, unsigned max)
{
	unsigned i;

	for (i = 0; i < max && !*flag; i++)
		assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
	assert_true(*flag);
}

/* Run single iterations until @op is idle again. */
static inline void proa_test_drive_op(struct proa_loop *loop,
				      struct proa_op *op, unsigned max)
{
	unsigned i;

	for (i = 0; i < max && !proa_op_is_idle(op); i++)
		assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
	assert_true(proa_op_is_idle(op));
}

/*
 * Iterate until @expr holds; fail after @max iterations.  @expr is
 * evaluated once more after the loop, for the assertion: keep it free of
 * side effects (peek, then read).
 */
#define PROA_TEST_DRIVE(loop, expr, max)                                       \
	do {                                                                   \
		unsigned long i__;                                             \
		for (i__ = 0; i__ < (max) && !(expr); i__++)                   \
			assert_true(proa_loop_run((loop), PROA_RUN_ONCE) >=    \
				    0);                                        \
		assert_true(expr);                                             \
	} while (0)

static inline void proa_test_nop(void *arg)
{
	(void)arg;
}

/*
 * Iterate until @expr holds; fail once @max_ns of wall time have passed.
 * A timer at the deadline wakes a loop that would otherwise sleep on
 * operations that never complete (connections nobody serves), so a wait
 * for many peers fails in bounded time instead of hanging.  The loop must
 * be one the caller may run (its own thread).  @expr is evaluated once
 * more for the assertion: keep it free of side effects.
 */
#define PROA_TEST_DRIVE_NS(loop, expr, max_ns)                                 \
	do {                                                                   \
		struct proa_timer t__;                                         \
		uint64_t end__ = proa_test_now_ns() + (max_ns);                \
		memset(&t__, 0, sizeof(t__));                                  \
		/* the loop's clock is CLOCK_MONOTONIC: fires at end__ */      \
		assert_int_equal(proa_loop_call_at((loop), &t__, end__,        \
						   proa_test_nop, NULL),       \
				 0);                                           \
		while (!(expr) && proa_test_now_ns() < end__)                  \
			assert_true(proa_loop_run((loop), PROA_RUN_ONCE) >=    \
				    0);                                        \
		if (proa_timer_is_active(&t__))                                \
			proa_timer_cancel(&t__);                               \
		assert_true(expr);                                             \
	} while (0)

/* The byte at offset @i of a test stream: checks order and content. */
static inline uint8_t proa_test_pattern(uint64_t i)
{
	return (uint8_t)(i * 131u + (i >> 11));
}

/* Whether this system has an IPv6 loopback to bind (a container may run
 * with IPv6 off); where it has, tests of ::1 must pass. */
static inline bool proa_test_have_ipv6(void)
{
	struct sockaddr_in6 a = {.sin6_family = AF_INET6};
	int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (fd < 0)
		return false;
	a.sin6_addr = in6addr_loopback;
	ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

/*
 * Raise the soft RLIMIT_NOFILE for a test that opens @need descriptors:
 * to 8192 (or @need, if more), never above the hard limit and never
 * lower than it was.  Return: true if @need are allowed now; false with
 * the reason in @why (the hard limit is too low: only root raises it).
 */
static inline bool proa_test_raise_nofile(rlim_t need, char *why, size_t len)
{
	struct rlimit rl;
	rlim_t want = need > 8192 ? need : 8192;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		snprintf(why, len, "getrlimit(RLIMIT_NOFILE): %s",
			 strerror(errno));
		return false;
	}
	if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max)
		want = rl.rlim_max;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
		rl.rlim_cur = want;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
			snprintf(why, len, "setrlimit(RLIMIT_NOFILE, %llu): %s",
				 (unsigned long long)want, strerror(errno));
			return false;
		}
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		snprintf(why, len,
			 "RLIMIT_NOFILE is %llu (hard limit %llu) but %llu "
			 "descriptors are needed: raise the hard limit "
			 "(ulimit -Hn, as root) to run this test",
			 (unsigned long long)rl.rlim_cur,
			 (unsigned long long)rl.rlim_max,
			 (unsigned long long)need);
		return false;
	}
	return true;
}

/* cmocka setup/teardown pair: the test leaves no descriptor open (the
 * teardown lists those it left, to say which). */
static int proa_test_fds_base;

static inline int proa_test_fds_setup(void **state)
{
	(void)state;
	proa_test_fds_base = proa_test_fds();
	return 0;
}

static inline int proa_test_fds_check(void **state)
{
	char cmd[64];

	(void)state;
	if (proa_test_fds() != proa_test_fds_base) {
		snprintf(cmd, sizeof(cmd), "ls -l /proc/%d/fd >&2",
			 (int)getpid());
		if (system(cmd) != 0)
			fprintf(stderr, "(could not list descriptors)\n");
	}
	assert_int_equal(proa_test_fds(), proa_test_fds_base);
	return 0;
}

/* ---- log capture ----------------------------------------------------------
 */

struct proa_test_log {
	pthread_mutex_t mu;
	char text[16384];
	size_t len;
	unsigned lines;
};

static inline void proa_test_log_fn(void *arg, enum proa_log_level level,
				    const char *msg)
{
	struct proa_test_log *log = arg;
	int n;

	(void)level;
	pthread_mutex_lock(&log->mu);
	n = snprintf(log->text + log->len, sizeof(log->text) - log->len, "%s\n",
		     msg);
	if (n > 0)
		log->len += (size_t)n < sizeof(log->text) - log->len
				? (size_t)n
				: sizeof(log->text) - log->len - 1;
	log->lines++;
	pthread_mutex_unlock(&log->mu);
}

static inline void proa_test_log_start(struct proa_test_log *log)
{
	memset(log, 0, sizeof(*log));
	pthread_mutex_init(&log->mu, NULL);
	proa_set_log_fn(proa_test_log_fn, log);
}

static inline void proa_test_log_stop(struct proa_test_log *log)
{
	proa_set_log_fn(NULL, NULL);
	pthread_mutex_destroy(&log->mu);
}

static inline bool proa_test_log_has(struct proa_test_log *log,
				     const char *needle)
{
	bool found;

	pthread_mutex_lock(&log->mu);
	found = strstr(log->text, needle) != NULL;
	pthread_mutex_unlock(&log->mu);
	return found;
}

#endif /* PROA_TEST_H */
