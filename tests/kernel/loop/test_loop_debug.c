/* SPDX-License-Identifier: MIT */
/*
 * Debug mode (PROA_DEBUG=1 or proa_loop_opts.debug): a loop-only call from
 * the wrong thread aborts with a message naming the function and both
 * threads; slow callbacks are logged; close lists what is still in flight.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proa_test.h"

static void nothing(void *arg)
{
	(void)arg;
}

static void nothing_op(struct proa_op *op)
{
	(void)op;
}

enum intrusion {
	CALL_SOON,
	TIMER_START,
	OP_NOP,
	FUTURE_INIT,
	TCP_LISTEN,
	TCP_CONNECT,
	STREAM_READ,
	LOOP_TIME,
};

struct intruder {
	struct proa_loop *loop;
	enum intrusion what;
	struct proa_stream *stream; /* STREAM_READ: connected by the owner */
	struct proa_future *fut;    /* initialised by the owner */
};

static struct proa_protocol *new_stream(void *arg, struct proa_transport *t)
{
	struct proa_stream *s;

	(void)arg;
	(void)t;
	return proa_stream_new(&s, 0) == 0 ? proa_stream_protocol(s) : NULL;
}

static struct proa_protocol *given_stream(void *arg, struct proa_transport *t)
{
	(void)t;
	return proa_stream_protocol(arg);
}

static void *intrude(void *arg)
{
	struct intruder *in = arg;
	struct proa_handle h = {0};
	struct proa_timer t = {0};
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct proa_server *srv;
	struct proa_future fut;
	struct proa_op op;
	char buf[8];

	pthread_setname_np(pthread_self(), "intruder");
	switch (in->what) {
	case CALL_SOON:
		proa_loop_call_soon(in->loop, &h, nothing, NULL);
		break;
	case TIMER_START:
		proa_loop_call_later(in->loop, &t, 1000, nothing, NULL);
		break;
	case OP_NOP:
		proa_op_init(&op, nothing_op, NULL);
		proa_op_nop(in->loop, &op);
		break;
	case FUTURE_INIT:
		proa_future_init(&fut, in->loop);
		break;
	case TCP_LISTEN:
		proa_tcp_listen_addr(&srv, in->loop, (struct sockaddr *)&a,
				     sizeof(a), NULL, new_stream, NULL);
		break;
	case TCP_CONNECT:
		proa_tcp_connect(in->loop, "127.0.0.1", 9, NULL, new_stream,
				 NULL, in->fut);
		break;
	case STREAM_READ:
		proa_stream_read(in->stream, buf, sizeof(buf), in->fut);
		break;
	case LOOP_TIME:
		/* Its iteration clock is the loop thread's to sample. */
		(void)proa_loop_time(in->loop);
		break;
	}
	return NULL; /* not reached in debug mode */
}

/* The owner connects a stream to a server of its own loop, for an intruder
 * to read from. */
static int connect_stream(struct intruder *in)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct proa_server *srv;
	struct proa_future fut;

	if (proa_tcp_listen_addr(&srv, in->loop, (struct sockaddr *)&a,
				 sizeof(a), NULL, new_stream, NULL) != 0 ||
	    proa_stream_new(&in->stream, 0) != 0)
		return -1;
	proa_future_init(&fut, in->loop);
	if (proa_tcp_connect(in->loop, "127.0.0.1", proa_server_port(srv), NULL,
			     given_stream, in->stream, &fut) != 0 ||
	    proa_loop_run_until_complete(in->loop, &fut) != 0)
		return -1;
	return proa_future_result(&fut, NULL);
}

/* The child: bind a debug loop to its main thread, then call @what from
 * another thread.  Expected: abort with the message on stderr. */
static void child(enum intrusion what, int err_fd)
{
	struct proa_loop_opts opts = {.debug = 1};
	struct intruder in = {.what = what};
	pthread_t th;

	dup2(err_fd, STDERR_FILENO);
	pthread_setname_np(pthread_self(), "owner");
	struct proa_future fut;

	if (proa_loop_new(&in.loop, &opts) != 0 ||
	    proa_loop_run(in.loop, PROA_RUN_NOWAIT) != 0)
		_exit(10);
	if (what == STREAM_READ && connect_stream(&in) != 0)
		_exit(12);
	proa_future_init(&fut, in.loop);
	in.fut = &fut;
	pthread_create(&th, NULL, intrude, &in);
	pthread_join(th, NULL);
	_exit(11); /* the intrusion went unnoticed */
}

static void test_wrong_thread_call_aborts_naming_both_threads(void **state)
{
	static const struct {
		enum intrusion what;
		const char *func;
	} cases[] = {
	    {CALL_SOON, "proa_loop_call_soon()"},
	    {TIMER_START, "proa_loop_call_later()"},
	    {OP_NOP, "proa_op_nop()"},
	    {FUTURE_INIT, "proa_future_init()"},
	    /* Entry points whose checks live in shared helpers (they were
	     * named check_common(), start() and read_check()). */
	    {TCP_LISTEN, "proa_tcp_listen_addr()"},
	    {TCP_CONNECT, "proa_tcp_connect()"},
	    {STREAM_READ, "proa_stream_read()"},
	    {LOOP_TIME, "proa_loop_time()"},
	};
	char out[4096];
	unsigned i;
	ssize_t n;
	int p[2], status;
	pid_t pid;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(pipe2(p, O_CLOEXEC), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			child(cases[i].what, p[1]);
		close(p[1]);
		n = read(p[0], out, sizeof(out) - 1);
		close(p[0]);
		assert_true(n > 0);
		out[n] = '\0';
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status));
		assert_int_equal(WTERMSIG(status), SIGABRT);
		assert_non_null(strstr(out, cases[i].func));
		assert_non_null(strstr(out, "(intruder)"));
		assert_non_null(strstr(out, "belongs to thread"));
		assert_non_null(strstr(out, "(owner)"));
	}
	(void)state;
}

/* Debug mode: an unref without a ref stops the program at the bug (without
 * debug mode it is ignored: test_loop_basic). */
static void test_unmatched_unref_aborts_in_debug_mode(void **state)
{
	struct proa_loop_opts opts = {.debug = 1};
	struct proa_loop *loop;
	char out[4096];
	ssize_t n;
	int p[2], status;
	pid_t pid;

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(p[1], STDERR_FILENO);
		if (proa_loop_new(&loop, &opts) != 0)
			_exit(10);
		proa_loop_ref(loop);
		proa_loop_unref(loop);
		proa_loop_unref(loop);
		_exit(11); /* went unnoticed */
	}
	close(p[1]);
	n = read(p[0], out, sizeof(out) - 1);
	close(p[0]);
	assert_true(n > 0);
	out[n] = '\0';
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
	assert_non_null(strstr(out, "proa_loop_unref()"));
	assert_non_null(strstr(out, "without a matching"));
	(void)state;
}

static void slow(void *arg)
{
	struct timespec ts;
	uint64_t t0, t;

	(void)arg;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	t0 = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	do { /* the slowness under test, not a synchronisation */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		t = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	} while (t - t0 < 30000000);
}

static void test_slow_callback_is_logged_in_debug_mode_only(void **state)
{
	struct proa_loop_opts opts = {.debug = 1, .slow_callback_ms = 10};
	struct proa_test_log log;
	struct proa_loop *loop;
	struct proa_handle h = {0};
	int pass;

	for (pass = 0; pass < 2; pass++) {
		opts.debug = pass == 0 ? 1 : -1;
		loop = proa_test_loop_new_opts(&opts);
		proa_test_log_start(&log);
		assert_res(proa_loop_call_soon(loop, &h, slow, NULL), 0);
		assert_res(proa_loop_call_soon(loop, NULL, nothing, NULL), 0);
		assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
		if (pass == 0) {
			assert_true(proa_test_log_has(&log, "took"));
			assert_int_equal(log.lines, 1); /* not the fast one */
		} else {
			assert_int_equal(log.lines, 0);
		}
		proa_test_log_stop(&log);
		proa_test_loop_close(loop);
	}
	(void)state;
}

static void test_close_lists_operations_in_flight(void **state)
{
	struct proa_loop_opts opts = {.debug = 1};
	struct proa_loop *loop = proa_test_loop_new_opts(&opts);
	struct proa_test_log log;
	struct proa_op op;
	char c, want[64];
	int p[2];

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	proa_op_init(&op, nothing_op, NULL);
	assert_res(proa_op_read(loop, &op, p[0], &c, 1, -1), 0);
	assert_int_equal(proa_loop_run(loop, PROA_RUN_NOWAIT), 1);
	proa_test_log_start(&log);
	assert_res(proa_loop_close(loop), -EBUSY);
	snprintf(want, sizeof(want), "read fd %d, in flight", p[0]);
	assert_true(proa_test_log_has(&log, want));
	assert_true(proa_test_log_has(&log, "1 operations"));
	proa_test_log_stop(&log);
	assert_res(proa_op_cancel(&op), 0);
	proa_test_drive_op(loop, &op, 100);
	close(p[0]);
	close(p[1]);
	proa_test_loop_close(loop);
	(void)state;
}

static void test_proa_debug_env_turns_debug_on(void **state)
{
	struct proa_loop_opts off = {.debug = -1};
	struct proa_loop *loop;

	proa_test_setenv("PROA_DEBUG", "1");
	loop = proa_test_loop_new();
	assert_true(proa_loop_is_debug(loop));
	proa_test_loop_close(loop);
	loop = proa_test_loop_new_opts(&off);
	assert_false(proa_loop_is_debug(loop));
	proa_test_loop_close(loop);
	proa_test_setenv("PROA_DEBUG", "0");
	loop = proa_test_loop_new();
	assert_false(proa_loop_is_debug(loop));
	proa_loop_set_debug(loop, true);
	assert_true(proa_loop_is_debug(loop));
	proa_test_loop_close(loop);
	proa_test_unsetenv("PROA_DEBUG");
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_wrong_thread_call_aborts_naming_both_threads),
	    cmocka_unit_test(test_unmatched_unref_aborts_in_debug_mode),
	    cmocka_unit_test(test_slow_callback_is_logged_in_debug_mode_only),
	    cmocka_unit_test(test_close_lists_operations_in_flight),
	    cmocka_unit_test(test_proa_debug_env_turns_debug_on),
	};

	proa_test_require_uring();
	return cmocka_run_group_tests_name("loop.debug", tests, NULL, NULL);
}
