/* SPDX-License-Identifier: MIT */
/*
 * tests/kernel/ring/test_backend.c - choosing the backend: PROA_BACKEND and
 * proa_loop_opts.backend; auto falls back to epoll when io_uring is refused
 * (EPERM, ENOSYS, EINVAL) and says why, but not on resource errors; in a
 * child whose seccomp filter refuses io_uring_setup, the loop comes up on
 * epoll and a TCP echo through net/ works; with epoll chosen, a child whose
 * filter kills it on any io_uring system call survives a round trip.
 * Then what only the epoll backend can get wrong: descriptors in blocking
 * mode, numbers closed with close(2) and reused, proa_op_close() forgetting
 * a registration, regular files sent to the pool, the emulated buffer ring
 * running dry, multishot poll, timeouts of its own heap.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <poll.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proa_test.h"
#include "ring/ring_int.h"

#define ECHO_BYTES ((size_t)256 * 1024)

static struct proa_loop *loop_on(enum proa_backend b)
{
	struct proa_loop_opts o = {.backend = b};
	struct proa_loop *loop = NULL;

	assert_res(proa_loop_new(&loop, &o), 0);
	return loop;
}

static void test_epoll_chosen_by_option(void **state)
{
	struct proa_loop *loop = loop_on(PROA_BACKEND_EPOLL);
	char desc[4096];

	assert_string_equal(proa_loop_backend(loop), "epoll");
	assert_true(proa_loop_describe(loop, desc, sizeof(desc)) > 0);
	assert_non_null(strstr(desc, "backend: epoll"));
	assert_null(strstr(desc, "fallback:"));
	/* No kernel ring: nothing of io_uring is claimed. */
	assert_false(proa_loop_feature(loop, PROA_FEAT_MSG_RING));
	assert_false(proa_loop_feature(loop, PROA_FEAT_DEFER_TASKRUN));
	/* File calls the pool does instead. */
	assert_false(proa_loop_feature(loop, PROA_FEAT_OP_OPENAT));
	assert_true(proa_loop_feature(loop, PROA_FEAT_OP_RECV));
	assert_true(proa_loop_feature(loop, PROA_FEAT_BUF_RING));
	proa_test_loop_close(loop);
	(void)state;
}

static void test_env_chooses_and_option_wins(void **state)
{
	const char *old = proa_test_getenv("PROA_BACKEND");
	char *saved = old ? strdup(old) : NULL;
	struct proa_loop *loop = NULL;

	proa_test_setenv("PROA_BACKEND", "epoll");
	loop = proa_test_loop_new();
	assert_string_equal(proa_loop_backend(loop), "epoll");
	proa_test_loop_close(loop);
	proa_test_setenv("PROA_BACKEND", "bogus");
	assert_res(proa_loop_new(&loop, NULL), -EINVAL);
	/* An option that is set is not overridden by the environment. */
	loop = loop_on(PROA_BACKEND_EPOLL);
	assert_string_equal(proa_loop_backend(loop), "epoll");
	proa_test_loop_close(loop);
	if (saved) {
		proa_test_setenv("PROA_BACKEND", saved);
		free(saved);
	} else {
		proa_test_unsetenv("PROA_BACKEND");
	}
	(void)state;
}

static void test_bad_backend_option_is_einval(void **state)
{
	struct proa_loop_opts o = {.backend = (enum proa_backend)7};
	struct proa_loop *loop = NULL;

	assert_res(proa_loop_new(&loop, &o), -EINVAL);
	assert_null(loop);
	(void)state;
}

/* The setup fault stands in for the kernel: refusals fall back on auto
 * and fail on io_uring; resource errors fail on both. */
static void test_auto_falls_back_only_on_refusal(void **state)
{
	/* NOLINTNEXTLINE(clang-analyzer-optin.performance.Padding) */
	static const struct {
		int err;
		const char *word;
		bool fallback;
	} cases[] = {
	    {EPERM, "EPERM", true},    {ENOSYS, "ENOSYS", true},
	    {EINVAL, "EINVAL", true},  {ENOMEM, "ENOMEM", false},
	    {EMFILE, "EMFILE", false},
	};
	struct proa_loop *loop;
	char desc[4096];
	int fds = proa_test_fds();
	unsigned i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		proa__ring_faults.setup_errno = cases[i].err;
		loop = NULL;
		{
			struct proa_loop_opts o = {.backend =
						       PROA_BACKEND_IO_URING};
			assert_int_equal(proa_loop_new(&loop, &o),
					 -cases[i].err);
			assert_null(loop);
		}
		{
			struct proa_loop_opts o = {.backend =
						       PROA_BACKEND_AUTO};
			int ret;

			/* Not the environment's choice: auto, explicitly. */
			proa_test_unsetenv("PROA_BACKEND");
			ret = proa_loop_new(&loop, &o);
			if (!cases[i].fallback) {
				assert_int_equal(ret, -cases[i].err);
				assert_null(loop);
				continue;
			}
			assert_res(ret, 0);
		}
		proa__ring_faults.setup_errno = 0;
		assert_string_equal(proa_loop_backend(loop), "epoll");
		assert_true(proa_loop_describe(loop, desc, sizeof(desc)) > 0);
		assert_non_null(strstr(desc, "fallback: io_uring_setup"));
		assert_non_null(strstr(desc, cases[i].word));
		proa_test_loop_close(loop);
	}
	proa__ring_faults.setup_errno = 0;
	assert_int_equal(proa_test_fds(), fds);
	(void)state;
}

/* ---- a TCP echo through net/, checked without cmocka (in children) ---- */

struct echo_peer {
	struct proa_protocol p;
	struct proa_transport *t;
	bool server, lost;
	size_t rx, bad;
};

static uint8_t pat(size_t i)
{
	return proa_test_pattern(i);
}

static void e_made(struct proa_protocol *p, struct proa_transport *t)
{
	struct echo_peer *e = proa_container_of(p, struct echo_peer, p);
	static uint8_t buf[ECHO_BYTES];
	size_t i;

	e->t = t;
	if (e->server)
		return;
	for (i = 0; i < ECHO_BYTES; i++)
		buf[i] = pat(i);
	if (proa_transport_write(t, buf, ECHO_BYTES) != 0)
		e->bad++;
}

static void e_data(struct proa_protocol *p, const void *data, size_t len)
{
	struct echo_peer *e = proa_container_of(p, struct echo_peer, p);
	const uint8_t *b = data;
	size_t i;

	if (e->server) {
		if (proa_transport_write(e->t, data, len) != 0)
			e->bad++;
		return;
	}
	for (i = 0; i < len; i++)
		e->bad += b[i] != pat(e->rx + i);
	e->rx += len;
	if (e->rx == ECHO_BYTES)
		proa_transport_close(e->t);
}

static void e_lost(struct proa_protocol *p, int err)
{
	struct echo_peer *e = proa_container_of(p, struct echo_peer, p);

	e->lost = true;
	(void)err;
}

static const struct proa_protocol_ops echo_ops = {
    .connection_made = e_made,
    .data_received = e_data,
    .connection_lost = e_lost,
};

static struct echo_peer g_server_peer = {.p = {&echo_ops}, .server = true};
static struct echo_peer g_client = {.p = {&echo_ops}};

static struct proa_protocol *server_make(void *arg, struct proa_transport *t)
{
	(void)arg;
	(void)t;
	return &g_server_peer.p;
}

static struct proa_protocol *client_make(void *arg, struct proa_transport *t)
{
	(void)arg;
	(void)t;
	return &g_client.p;
}

static bool drive(struct proa_loop *loop, const bool *flag)
{
	unsigned i;

	for (i = 0; i < 1000000 && !*flag; i++) {
		if (proa_loop_run(loop, PROA_RUN_ONCE) < 0)
			return false;
	}
	return *flag;
}

/* 0, or a code saying which step failed. */
static int echo_round_trip(struct proa_loop *loop)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	struct proa_future cf, done;
	struct proa_server *s = NULL;
	void *v = NULL;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (proa_tcp_listen_addr(&s, loop, (struct sockaddr *)&a, sizeof(a),
				 NULL, server_make, NULL) != 0)
		return 30;
	proa_future_init(&cf, loop);
	if (proa_tcp_connect(loop, "127.0.0.1", proa_server_port(s), NULL,
			     client_make, NULL, &cf) != 0)
		return 31;
	if (proa_loop_run_until_complete(loop, &cf) != 0 ||
	    proa_future_result(&cf, &v) != 0 || !v)
		return 32;
	proa_future_fini(&cf);
	if (!drive(loop, &g_client.lost) || !drive(loop, &g_server_peer.lost))
		return 33;
	if (g_client.rx != ECHO_BYTES || g_client.bad || g_server_peer.bad)
		return 34;
	proa_future_init(&done, loop);
	if (proa_server_close(s, &done) != 0 ||
	    proa_loop_run_until_complete(loop, &done) != 0)
		return 35;
	proa_future_fini(&done);
	if (proa_loop_run(loop, PROA_RUN_DEFAULT) != 0)
		return 36;
	if (proa_loop_free(loop) != 0)
		return 37;
	return 0;
}

static int install_filter(int nr_lo, int nr_hi, unsigned action)
{
	/* nr in [nr_lo, nr_hi] gets @action; everything else is allowed. */
	struct sock_filter f[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		     offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, (unsigned)nr_lo, 0, 2),
	    BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, (unsigned)nr_hi, 1, 0),
	    BPF_STMT(BPF_RET | BPF_K, action),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
		return -1;
	return 0;
}

/* In a child: io_uring_setup fails with @err; auto must land on epoll,
 * say why, and carry a TCP echo. */
static int child_refused(int err, const char *word)
{
	struct proa_loop *loop = NULL;
	char desc[4096];

	if (install_filter(__NR_io_uring_setup, __NR_io_uring_setup,
			   SECCOMP_RET_ERRNO |
			       ((unsigned)err & SECCOMP_RET_DATA)) != 0)
		return 10;
	proa_test_unsetenv("PROA_BACKEND");
	if (proa_loop_new(&loop, NULL) != 0 || !loop)
		return 11;
	if (strcmp(proa_loop_backend(loop), "epoll") != 0)
		return 12;
	if (proa_loop_describe(loop, desc, sizeof(desc)) <= 0 ||
	    !strstr(desc, "fallback: io_uring_setup") || !strstr(desc, word))
		return 13;
	if (err == EPERM && !strstr(desc, "seccomp"))
		return 14;
	return echo_round_trip(loop);
}

/* In a child: any io_uring system call (setup, enter, register: 425-427)
 * kills the process.  With epoll chosen, none may be made. */
static int child_no_io_uring_calls(void)
{
	struct proa_loop_opts o = {.backend = PROA_BACKEND_EPOLL};
	struct proa_loop *loop = NULL;

	if (install_filter(__NR_io_uring_setup, __NR_io_uring_register,
			   SECCOMP_RET_KILL_PROCESS) != 0)
		return 10;
	if (proa_loop_new(&loop, &o) != 0 || !loop)
		return 11;
	return echo_round_trip(loop);
}

static int wait_child(pid_t pid)
{
	int status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status)) {
		fprintf(stderr, "child killed by signal %d\n",
			WTERMSIG(status));
		return -WTERMSIG(status);
	}
	return WEXITSTATUS(status);
}

static void test_seccomp_refusal_falls_back_to_epoll(void **state)
{
	static const int errs[] = {EPERM, ENOSYS};
	static const char *const words[] = {"EPERM", "ENOSYS"};
	pid_t pid;
	int i;

	for (i = 0; i < 2; i++) {
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			_exit(child_refused(errs[i], words[i]));
		assert_int_equal(wait_child(pid), 0);
	}
	(void)state;
}

static void test_epoll_makes_no_io_uring_call(void **state)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child_no_io_uring_calls());
	assert_int_equal(wait_child(pid), 0);
	(void)state;
}

/* ---- the epoll backend's own hazards -------------------------------- */

struct rec {
	unsigned calls, more;
	int32_t res;
	uint32_t flags;
	bool done;
};

static void rec_cb(struct proa_op *op)
{
	struct rec *r = op->data;

	r->calls++;
	r->res = op->res;
	r->flags = op->flags;
	if (op->flags & PROA_OP_F_MORE)
		r->more++;
	else
		r->done = true;
}

static void tick(void *arg)
{
	(void)arg;
}

/*
 * Iterate until @expr holds, for at most 5 s: a 10 ms repeating timer
 * makes each blocking iteration return, so an op that never completes (a
 * lost registration) fails the test instead of hanging it.
 */
#define DRIVE(loop, expr)                                                      \
	do {                                                                   \
		struct proa_timer t__ = {0};                                   \
		uint64_t end__ = proa_test_now_ns() + 5000000000u;             \
		assert_int_equal(proa_timer_start((loop), &t__, 10000000u,     \
						  10000000u, tick, NULL),      \
				 0);                                           \
		while (!(expr) && proa_test_now_ns() < end__)                  \
			assert_true(proa_loop_run((loop), PROA_RUN_ONCE) >=    \
				    0);                                        \
		proa_timer_cancel(&t__);                                       \
		assert_true(expr);                                             \
	} while (0)

/* Idle iterations that must not complete anything: the op is waiting. */
static void spin(struct proa_loop *loop, unsigned n)
{
	while (n--)
		assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
}

/* A pipe left in blocking mode: the backend must not block the loop on
 * it, and the read completes once data comes. */
static void test_epoll_blocking_pipe_read(void **state)
{
	struct proa_loop *loop = loop_on(PROA_BACKEND_EPOLL);
	int threads = proa_test_threads();
	struct rec r = {0};
	struct proa_op op;
	char buf[8] = {0};
	int p[2];

	assert_int_equal(pipe(p), 0);
	proa_op_init(&op, rec_cb, &r);
	assert_res(proa_op_read(loop, &op, p[0], buf, sizeof(buf), -1), 0);
	spin(loop, 5);
	assert_int_equal(r.calls, 0);
	assert_int_equal(write(p[1], "pipe", 4), 4);
	DRIVE(loop, r.done);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.res, 4);
	assert_memory_equal(buf, "pipe", 4);
	/* Done by readiness on the loop thread: no pool started. */
	assert_int_equal(proa_test_threads(), threads);
	close(p[0]);
	close(p[1]);
	proa_test_loop_close(loop);
	(void)state;
}

/* A read waits on a pipe whose descriptor is then closed under it
 * (against the close rule: a process closed with a read on its stdout
 * pipe), and the number comes back as another pipe: the stale read ends
 * (-EBADF) when the number is next used, and the new pipe's bytes go to
 * the new read only. */
static void test_epoll_reused_number_ends_stale_waiters(void **state)
{
	struct proa_loop *loop = loop_on(PROA_BACKEND_EPOLL);
	struct rec old = {0}, now = {0};
	struct proa_op oop, nop;
	char obuf[8] = {0}, nbuf[8] = {0};
	int a[2], b[2];

	assert_int_equal(pipe(a), 0);
	proa_op_init(&oop, rec_cb, &old);
	assert_res(proa_op_read(loop, &oop, a[0], obuf, sizeof(obuf), -1), 0);
	spin(loop, 3);
	assert_int_equal(old.calls, 0);
	assert_int_equal(pipe(b), 0);
	/* a[0]'s number now names b's read end; a's pipe is gone */
	assert_int_equal(dup2(b[0], a[0]), a[0]);
	close(b[0]);
	close(a[1]);
	proa_op_init(&nop, rec_cb, &now);
	assert_res(proa_op_read(loop, &nop, a[0], nbuf, sizeof(nbuf), -1), 0);
	assert_int_equal(write(b[1], "NEW", 3), 3);
	DRIVE(loop, old.done && now.done);
	assert_int_equal(old.calls, 1);
	assert_int_equal(old.res, -EBADF);
	assert_memory_equal(obuf, "\0\0\0", 3);
	assert_int_equal(now.calls, 1);
	assert_int_equal(now.res, 3);
	assert_memory_equal(nbuf, "NEW", 3);
	close(a[0]);
	close(b[1]);
	proa_test_loop_close(loop);
	(void)state;
}

static void recv_round(struct proa_loop *loop, int rfd, int wfd,
		       const char *msg)
{
	struct rec r = {0};
	struct proa_op op;
	char buf[32] = {0};
	size_t n = strlen(msg);

	proa_op_init(&op, rec_cb, &r);
	assert_res(proa_op_recv(loop, &op, rfd, buf, sizeof(buf), 0), 0);
	spin(loop, 3);
	assert_int_equal(r.calls, 0);
	assert_int_equal(write(wfd, msg, n), (ssize_t)n);
	DRIVE(loop, r.done);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.res, (int32_t)n);
	assert_memory_equal(buf, msg, n);
}

/* A number closed with close(2) behind the backend's back and reused by
 * another socket (blocking, this time) must be registered again. */
static void test_epoll_fd_reused_after_raw_close(void **state)
{
	struct proa_loop *loop = loop_on(PROA_BACKEND_EPOLL);
	int a[2], b[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
	recv_round(loop, a[0], a[1], "first");
	close(a[0]);
	close(a[1]);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
	/* The lowest free numbers: the same ones. */
	assert_int_equal(b[0], a[0]);
	recv_round(loop, b[0], b[1], "second");
	close(b[0]);
	close(b[1]);
	proa_test_loop_close(loop);
	(void)state;
}

/* Cancel completes a waiting op once with -ECANCELED; proa_op_close()
 * forgets the registration, and the number works again after reuse. */
static void test_epoll_cancel_and_close_op(void **state)
{
	struct proa_loop *loop = loop_on(PROA_BACKEND_EPOLL);
	struct rec r = {0}, c = {0};
	struct proa_op op, cop;
	char buf[8];
	int a[2], b[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
	proa_op_init(&op, rec_cb, &r);
	assert_res(proa_op_recv(loop, &op, a[0], buf, sizeof(buf), 0), 0);
	spin(loop, 3);
	assert_res(proa_op_cancel(&op), 0);
	assert_res(proa_op_cancel(&op), -EALREADY);
	DRIVE(loop, r.done);
	spin(loop, 3);
	assert_int_equal(r.calls, 1);
	assert_res(r.res, -ECANCELED);
	assert_res(proa_op_cancel(&op), -ENOENT);
	proa_op_init(&cop, rec_cb, &c);
	assert_res(proa_op_close(loop, &cop, a[0]), 0);
	DRIVE(loop, c.done);
	assert_res(c.res, 0);
	close(a[1]);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
	assert_int_equal(b[0], a[0]);
	recv_round(loop, b[0], b[1], "again");
	close(b[0]);
	close(b[1]);
	proa_test_loop_close(loop);
	(void)state;
}

/* A regular file does not poll: its read runs on the pool, whose threads
 * start for it (a pipe's read did not start them). */
static void test_epoll_regular_file_read_goes_to_pool(void **state)
{
	struct proa_loop *loop = loop_on(PROA_BACKEND_EPOLL);
	int threads = proa_test_threads();
	char path[] = "/tmp/proa-backend-XXXXXX";
	struct rec r = {0};
	struct proa_op op;
	char buf[16] = {0};
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, "0123456789", 10), 10);
	proa_op_init(&op, rec_cb, &r);
	assert_res(proa_op_read(loop, &op, fd, buf, 4, 3), 0);
	DRIVE(loop, r.done);
	assert_int_equal(r.res, 4);
	assert_memory_equal(buf, "3456", 4);
	assert_true(proa_test_threads() > threads);
	close(fd);
	proa_test_loop_close(loop);
	(void)state;
}

/* The emulated buffer ring: a multishot receive takes a buffer per
 * arrival and ends with -ENOBUFS when none is left; the data stays in the
 * socket. */
static void test_epoll_buffer_ring_runs_dry(void **state)
{
	struct proa_loop *loop = loop_on(PROA_BACKEND_EPOLL);
	struct proa_buf_ring *br;
	struct rec r = {0};
	struct proa_op op;
	char rest[8] = {0};
	int a[2];

	assert_res(proa_buf_ring_new(&br, loop, 1, 64), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
	proa_op_init(&op, rec_cb, &r);
	assert_res(
	    proa_op_recv_select(loop, &op, a[0], br, PROA_RECV_MULTISHOT), 0);
	spin(loop, 3);
	assert_int_equal(r.calls, 0);
	assert_int_equal(write(a[1], "one", 3), 3);
	DRIVE(loop, r.calls == 1);
	assert_true(r.flags & PROA_OP_F_MORE);
	assert_true(r.flags & PROA_OP_F_BUFFER);
	assert_int_equal(r.res, 3);
	assert_memory_equal(proa_buf_ring_buf(br, proa_op_buffer_id(&op)),
			    "one", 3);
	assert_int_equal(proa_buf_ring_available(br), 0);
	assert_int_equal(write(a[1], "two", 3), 3);
	DRIVE(loop, r.done);
	assert_int_equal(r.calls, 2);
	assert_res(r.res, -ENOBUFS);
	assert_int_equal(read(a[0], rest, sizeof(rest)), 3);
	assert_memory_equal(rest, "two", 3);
	assert_res(proa_buf_ring_put(br, 0), 0);
	assert_res(proa_buf_ring_put(br, 0), -EALREADY);
	assert_res(proa_buf_ring_free(br), 0);
	close(a[0]);
	close(a[1]);
	proa_test_loop_close(loop);
	(void)state;
}

/* Multishot poll: one completion per readiness change, with MORE, until
 * cancelled; then a last one without it. */
static void test_epoll_multishot_poll(void **state)
{
	struct proa_loop *loop = loop_on(PROA_BACKEND_EPOLL);
	struct rec r = {0};
	struct proa_op op;
	char c;
	int p[2];

	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	proa_op_init(&op, rec_cb, &r);
	assert_res(proa_op_poll(loop, &op, p[0], POLLIN, PROA_POLL_MULTISHOT),
		   0);
	spin(loop, 3);
	assert_int_equal(r.calls, 0);
	assert_int_equal(write(p[1], "x", 1), 1);
	DRIVE(loop, r.more == 1);
	assert_true(r.res & POLLIN);
	assert_int_equal(read(p[0], &c, 1), 1);
	assert_int_equal(write(p[1], "y", 1), 1);
	DRIVE(loop, r.more == 2);
	assert_int_equal(read(p[0], &c, 1), 1);
	assert_res(proa_op_cancel(&op), 0);
	DRIVE(loop, r.done);
	assert_int_equal(r.calls, 3);
	assert_res(r.res, -ECANCELED);
	close(p[0]);
	close(p[1]);
	proa_test_loop_close(loop);
	(void)state;
}

/* Timeouts from the backend's heap: in deadline order, never early; a
 * cancelled one completes once with -ECANCELED. */
static void test_epoll_timeouts(void **state)
{
	static const uint64_t ms[] = {30, 10, 20, 15};
	struct proa_loop *loop = loop_on(PROA_BACKEND_EPOLL);
	struct rec r[4] = {{0}};
	struct proa_op op[4];
	uint64_t t0 = proa_test_now_ns();
	unsigned i;

	for (i = 0; i < 4; i++) {
		proa_op_init(&op[i], rec_cb, &r[i]);
		assert_res(proa_op_timeout(loop, &op[i], ms[i] * 1000000u), 0);
	}
	assert_res(proa_op_cancel(&op[3]), 0);
	DRIVE(loop, r[1].done);
	assert_true(proa_test_now_ns() - t0 >= 10000000u);
	assert_false(r[2].done);
	assert_false(r[0].done);
	assert_true(r[3].done);
	assert_res(r[3].res, -ECANCELED);
	DRIVE(loop, r[2].done);
	assert_true(proa_test_now_ns() - t0 >= 20000000u);
	assert_false(r[0].done);
	DRIVE(loop, r[0].done);
	assert_true(proa_test_now_ns() - t0 >= 30000000u);
	for (i = 0; i < 3; i++) {
		assert_res(r[i].res, -ETIME);
		assert_int_equal(r[i].calls, 1);
	}
	proa_test_loop_close(loop);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_epoll_chosen_by_option),
	    cmocka_unit_test(test_env_chooses_and_option_wins),
	    cmocka_unit_test(test_bad_backend_option_is_einval),
	    cmocka_unit_test(test_auto_falls_back_only_on_refusal),
	    cmocka_unit_test(test_seccomp_refusal_falls_back_to_epoll),
	    cmocka_unit_test(test_epoll_makes_no_io_uring_call),
	    cmocka_unit_test(test_epoll_blocking_pipe_read),
	    cmocka_unit_test(test_epoll_fd_reused_after_raw_close),
	    cmocka_unit_test(test_epoll_cancel_and_close_op),
	    cmocka_unit_test(test_epoll_regular_file_read_goes_to_pool),
	    cmocka_unit_test(test_epoll_buffer_ring_runs_dry),
	    cmocka_unit_test(test_epoll_multishot_poll),
	    cmocka_unit_test(test_epoll_timeouts),
	    cmocka_unit_test(test_epoll_reused_number_ends_stale_waiters),
	};

	return cmocka_run_group_tests_name("ring.backend", tests, NULL, NULL);
}
