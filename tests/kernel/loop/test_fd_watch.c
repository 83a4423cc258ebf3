/* SPDX-License-Identifier: MIT */
/*
 * Foreign fd watches (proa/watch.h): level-triggered redelivery while data
 * remains, set() switching events, stop and close inside the callback, pipe
 * EOF (POLLHUP), a socket whose peer closes, many watches at once, close of
 * the loop refused while a watch is armed, bad input, and the debug-mode
 * abort when the descriptor is closed under an armed watch.  Every case
 * closes its loop and leaves no descriptor open.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proa_test.h"
#include "proactor/proactor_int.h"

struct rec {
	struct proa_fd_watch *w;
	int fd;
	int runs;
	int last;
	uint64_t iter_seen[16]; /* loop iteration of each run */
	int read_per_run;	/* bytes read per callback; 0: none */
	int total;		/* bytes read */
	bool eof;
	bool stop_in_cb;
	bool close_in_cb;
	unsigned switch_to; /* set() to this in the callback, once */
	struct proa_loop *loop;
};

static uint64_t iterations(struct proa_loop *loop)
{
	struct proa_loop_stats st;

	assert_res(proa_loop_stats(loop, &st), 0);
	return st.iterations;
}

static void watch_cb(struct proa_fd_watch *w, int fd, int revents, void *arg)
{
	struct rec *r = arg;
	char buf[64];
	ssize_t n;

	assert_ptr_equal(w, r->w);
	assert_int_equal(fd, r->fd);
	if (r->runs < 16)
		r->iter_seen[r->runs] = iterations(r->loop);
	r->runs++;
	r->last = revents;
	if (r->read_per_run && (revents & (POLLIN | POLLHUP))) {
		n = read(fd, buf, (size_t)r->read_per_run);
		if (n == 0)
			r->eof = true;
		if (n > 0)
			r->total += (int)n;
	}
	if (r->switch_to) {
		assert_res(proa_fd_watch_set(w, r->switch_to), 0);
		r->switch_to = 0;
	}
	if (r->stop_in_cb)
		assert_res(proa_fd_watch_stop(w), 0);
	if (r->close_in_cb) {
		proa_fd_watch_close(w);
		r->w = NULL;
	}
}

/* A few iterations that must not block (nothing may be pending). */
static void spin(struct proa_loop *loop, int n)
{
	while (n-- > 0)
		assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
}

/* Close a watch and the loop: the watch's poll must finish first. */
static void close_all(struct proa_loop *loop, struct proa_fd_watch *w)
{
	proa_fd_watch_close(w);
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	proa_test_loop_close(loop);
}

static void test_watch_level_triggered_runs_while_data_remains(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct rec r = {.loop = loop, .read_per_run = 1};
	int p[2];

	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	r.fd = p[0];
	assert_res(proa_fd_watch_start(&r.w, loop, p[0], PROA_WATCH_READABLE,
				       watch_cb, &r),
		   0);
	assert_int_equal(proa_fd_watch_events(r.w), PROA_WATCH_READABLE);
	assert_int_equal(write(p[1], "abc", 3), 3);
	/* One byte per callback: an edge-triggered watch would stop after
	 * the first; this one comes back while bytes remain. */
	PROA_TEST_DRIVE(loop, r.total == 3, 100);
	assert_int_equal(r.runs, 3);
	assert_true(r.last & POLLIN);
	/* Once per iteration, as a level-triggered epoll would report. */
	assert_true(r.iter_seen[1] > r.iter_seen[0]);
	assert_true(r.iter_seen[2] > r.iter_seen[1]);
	/* Empty: no more callbacks. */
	spin(loop, 5);
	assert_int_equal(r.runs, 3);
	/* New data: the watch is still armed. */
	assert_int_equal(write(p[1], "d", 1), 1);
	PROA_TEST_DRIVE(loop, r.total == 4, 100);
	close_all(loop, r.w);
	close(p[0]);
	close(p[1]);
	(void)state;
}

/* A watch leaves the descriptor's flags as its owner set them: the epoll
 * backend made a blocking pipe non-blocking for good (the flag is the open
 * file's, shared with every copy, other processes' included). */
static void test_watch_leaves_the_file_flags_alone(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct rec r = {.loop = loop, .read_per_run = 1};
	int p[2];

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	r.fd = p[0];
	assert_res(proa_fd_watch_start(&r.w, loop, p[0], PROA_WATCH_READABLE,
				       watch_cb, &r),
		   0);
	assert_int_equal(write(p[1], "a", 1), 1);
	PROA_TEST_DRIVE(loop, r.total == 1, 100);
	assert_false(fcntl(p[0], F_GETFL) & O_NONBLOCK);
	close_all(loop, r.w);
	assert_false(fcntl(p[0], F_GETFL) & O_NONBLOCK);
	close(p[0]);
	close(p[1]);
	(void)state;
}

static void test_watch_set_switches_events(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct rec r = {.loop = loop, .read_per_run = 8};
	int sv[2];

	assert_int_equal(
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	r.fd = sv[0];
	assert_res(proa_fd_watch_start(&r.w, loop, sv[0], PROA_WATCH_READABLE,
				       watch_cb, &r),
		   0);
	spin(loop, 3);
	assert_int_equal(r.runs, 0); /* nothing to read */
	/* Writable holds at once; the callback switches back to readable. */
	r.switch_to = PROA_WATCH_READABLE;
	assert_res(proa_fd_watch_set(r.w, PROA_WATCH_WRITABLE), 0);
	PROA_TEST_DRIVE(loop, r.runs == 1, 100);
	assert_true(r.last & POLLOUT);
	assert_false(r.last & POLLIN);
	/* Writable still holds, but the watch no longer asks for it. */
	spin(loop, 5);
	assert_int_equal(r.runs, 1);
	assert_int_equal(write(sv[1], "xy", 2), 2);
	PROA_TEST_DRIVE(loop, r.total == 2, 100);
	assert_int_equal(r.runs, 2);
	assert_int_equal(r.last & (POLLIN | POLLOUT), POLLIN);
	/* Both at once, and a no-op set. */
	assert_res(
	    proa_fd_watch_set(r.w, PROA_WATCH_READABLE | PROA_WATCH_WRITABLE),
	    0);
	assert_res(
	    proa_fd_watch_set(r.w, PROA_WATCH_READABLE | PROA_WATCH_WRITABLE),
	    0);
	r.stop_in_cb = true;
	PROA_TEST_DRIVE(loop, r.runs == 3, 100);
	assert_true(r.last & POLLOUT);
	assert_res(proa_fd_watch_set(r.w, 0x100), -EINVAL);
	close_all(loop, r.w);
	close(sv[0]);
	close(sv[1]);
	(void)state;
}

static void test_watch_stop_in_callback_ends_delivery(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct rec r = {.loop = loop, .stop_in_cb = true};
	int p[2];

	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	r.fd = p[0];
	assert_int_equal(write(p[1], "abc", 3), 3);
	assert_res(proa_fd_watch_start(&r.w, loop, p[0], PROA_WATCH_READABLE,
				       watch_cb, &r),
		   0);
	assert_int_equal(r.runs, 0); /* never inside start */
	PROA_TEST_DRIVE(loop, r.runs == 1, 100);
	assert_int_equal(proa_fd_watch_events(r.w), 0);
	/* Data remains, but the watch is stopped: the loop has nothing left
	 * to wait for once the poll's cancellation is in. */
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	assert_int_equal(r.runs, 1);
	/* Re-armed: the data is still there. */
	r.stop_in_cb = false;
	r.close_in_cb = true;
	assert_res(proa_fd_watch_set(r.w, PROA_WATCH_READABLE), 0);
	PROA_TEST_DRIVE(loop, r.runs == 2, 100);
	assert_null(r.w);
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	proa_test_loop_close(loop);
	close(p[0]);
	close(p[1]);
	(void)state;
}

static void test_watch_pipe_eof_reports_hup(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct rec r = {.loop = loop, .read_per_run = 16};
	int p[2];

	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	r.fd = p[0];
	assert_res(proa_fd_watch_start(&r.w, loop, p[0], PROA_WATCH_READABLE,
				       watch_cb, &r),
		   0);
	assert_int_equal(write(p[1], "last", 4), 4);
	close(p[1]);
	PROA_TEST_DRIVE(loop, r.eof, 100);
	assert_int_equal(r.total, 4);
	assert_true(r.last & POLLHUP);
	/* HUP holds for ever: the watch keeps reporting it until stopped. */
	r.stop_in_cb = true;
	PROA_TEST_DRIVE(loop, proa_fd_watch_events(r.w) == 0, 100);
	close_all(loop, r.w);
	close(p[0]);
	(void)state;
}

static void test_watch_peer_close_wakes_reader(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct rec r = {.loop = loop, .read_per_run = 16, .close_in_cb = true};
	int sv[2];

	assert_int_equal(
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	r.fd = sv[0];
	assert_res(proa_fd_watch_start(&r.w, loop, sv[0], PROA_WATCH_READABLE,
				       watch_cb, &r),
		   0);
	spin(loop, 2);
	assert_int_equal(r.runs, 0);
	close(sv[1]);
	PROA_TEST_DRIVE(loop, r.runs == 1, 100);
	assert_true(r.eof);
	assert_true(r.last & (POLLIN | POLLHUP));
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	proa_test_loop_close(loop);
	close(sv[0]);
	(void)state;
}

#define MANY 256

static void test_watch_many_watches_each_fire_once_per_write(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct rec *r = calloc(MANY, sizeof(*r));
	int(*sv)[2] = calloc(MANY, sizeof(*sv));
	int i, total;

	assert_non_null(r);
	assert_non_null(sv);
	for (i = 0; i < MANY; i++) {
		assert_int_equal(
		    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv[i]),
		    0);
		r[i].loop = loop;
		r[i].fd = sv[i][0];
		r[i].read_per_run = 64;
		assert_res(proa_fd_watch_start(&r[i].w, loop, sv[i][0],
					       PROA_WATCH_READABLE, watch_cb,
					       &r[i]),
			   0);
	}
	for (i = 0; i < MANY; i += 2)
		assert_int_equal(write(sv[i][1], "z", 1), 1);
	for (int k = 0; k < 100; k++) {
		total = 0;
		for (i = 0; i < MANY; i++)
			total += r[i].total;
		if (total == MANY / 2)
			break;
		assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
	}
	spin(loop, 3);
	for (i = 0; i < MANY; i++) {
		assert_int_equal(r[i].runs, i % 2 == 0 ? 1 : 0);
		proa_fd_watch_close(r[i].w);
	}
	/* Closing is asynchronous: the loop refuses until the polls end. */
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	proa_test_loop_close(loop);
	for (i = 0; i < MANY; i++) {
		close(sv[i][0]);
		close(sv[i][1]);
	}
	free(sv);
	free(r);
	(void)state;
}

static void test_watch_armed_keeps_loop_open(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct rec r = {.loop = loop};
	struct proa_fd_watch *stopped = NULL;
	int p[2];

	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	r.fd = p[0];
	assert_res(proa_fd_watch_start(&r.w, loop, p[0], PROA_WATCH_READABLE,
				       watch_cb, &r),
		   0);
	/* A stopped watch holds nothing in flight. */
	assert_res(proa_fd_watch_start(&stopped, loop, p[1], 0, watch_cb, &r),
		   0);
	assert_res(proa_loop_close(loop), -EBUSY);
	assert_res(proa_fd_watch_stop(r.w), 0);
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	proa_fd_watch_close(stopped);
	close_all(loop, r.w);
	assert_int_equal(r.runs, 0);
	close(p[0]);
	close(p[1]);
	(void)state;
}

static void test_watch_bad_input(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_fd_watch *w = NULL;
	struct rec r = {.loop = loop};
	int p[2];

	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	assert_res(proa_fd_watch_start(NULL, loop, p[0], PROA_WATCH_READABLE,
				       watch_cb, &r),
		   -EINVAL);
	assert_res(proa_fd_watch_start(&w, NULL, p[0], PROA_WATCH_READABLE,
				       watch_cb, &r),
		   -EINVAL);
	assert_res(
	    proa_fd_watch_start(&w, loop, p[0], PROA_WATCH_READABLE, NULL, &r),
	    -EINVAL);
	assert_res(proa_fd_watch_start(&w, loop, -1, PROA_WATCH_READABLE,
				       watch_cb, &r),
		   -EINVAL);
	assert_res(proa_fd_watch_start(&w, loop, p[0], 0x8000, watch_cb, &r),
		   -EINVAL);
	close(p[1]);
	assert_res(proa_fd_watch_start(&w, loop, p[1], PROA_WATCH_READABLE,
				       watch_cb, &r),
		   -EBADF);
	assert_null(w);
	assert_res(proa_fd_watch_set(NULL, 0), -EINVAL);
	assert_int_equal(proa_fd_watch_events(NULL), 0);
	proa_fd_watch_close(NULL);
	proa_test_loop_close(loop);
	close(p[0]);
	(void)state;
}

/* Debug mode: a descriptor closed under an armed watch aborts, saying
 * why, at the next callback or at stop.  In a child, which makes its own
 * loop. */
static void test_watch_debug_aborts_on_fd_closed_under_it(void **state)
{
	int status;
	pid_t pid;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct proa_loop_opts o = {.debug = 1};
		struct proa_loop *loop = NULL;
		struct proa_fd_watch *w = NULL;
		struct rec r = {0};
		int p[2];

		if (proa_loop_new(&loop, &o) < 0 || pipe2(p, O_CLOEXEC) < 0)
			_exit(2);
		r.loop = loop;
		r.fd = p[0];
		if (proa_fd_watch_start(&w, loop, p[0], PROA_WATCH_READABLE,
					watch_cb, &r) < 0)
			_exit(3);
		r.w = w;
		close(p[0]); /* the bug */
		close(2);    /* keep the expected message out of the log */
		proa_fd_watch_stop(w);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
	(void)state;
}

/* The same cases on one-shot polls re-armed per callback, the path of
 * kernels without multishot poll. */
static int oneshot_setup(void **state)
{
	atomic_store(&proa__poll_no_multishot, true);
	return proa_test_fds_setup(state);
}

static int oneshot_teardown(void **state)
{
	atomic_store(&proa__poll_no_multishot, false);
	return proa_test_fds_check(state);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
		test_watch_level_triggered_runs_while_data_remains,
		proa_test_fds_setup, proa_test_fds_check),
	    cmocka_unit_test_setup_teardown(
		test_watch_leaves_the_file_flags_alone, proa_test_fds_setup,
		proa_test_fds_check),
	    cmocka_unit_test_setup_teardown(test_watch_set_switches_events,
					    proa_test_fds_setup,
					    proa_test_fds_check),
	    cmocka_unit_test_setup_teardown(
		test_watch_stop_in_callback_ends_delivery, proa_test_fds_setup,
		proa_test_fds_check),
	    cmocka_unit_test_setup_teardown(test_watch_pipe_eof_reports_hup,
					    proa_test_fds_setup,
					    proa_test_fds_check),
	    cmocka_unit_test_setup_teardown(test_watch_peer_close_wakes_reader,
					    proa_test_fds_setup,
					    proa_test_fds_check),
	    cmocka_unit_test_setup_teardown(
		test_watch_many_watches_each_fire_once_per_write,
		proa_test_fds_setup, proa_test_fds_check),
	    cmocka_unit_test_setup_teardown(test_watch_armed_keeps_loop_open,
					    proa_test_fds_setup,
					    proa_test_fds_check),
	    cmocka_unit_test_setup_teardown(
		test_watch_bad_input, proa_test_fds_setup, proa_test_fds_check),
	    cmocka_unit_test(test_watch_debug_aborts_on_fd_closed_under_it),
	    cmocka_unit_test_setup_teardown(
		test_watch_level_triggered_runs_while_data_remains,
		oneshot_setup, oneshot_teardown),
	    cmocka_unit_test_setup_teardown(test_watch_set_switches_events,
					    oneshot_setup, oneshot_teardown),
	    cmocka_unit_test_setup_teardown(
		test_watch_stop_in_callback_ends_delivery, oneshot_setup,
		oneshot_teardown),
	    cmocka_unit_test_setup_teardown(test_watch_pipe_eof_reports_hup,
					    oneshot_setup, oneshot_teardown),
	};

	return cmocka_run_group_tests_name("loop.fd_watch", tests, NULL, NULL);
}
