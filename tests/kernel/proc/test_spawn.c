/* SPDX-License-Identifier: MIT */
/*
 * proc/: child processes (proa/process.h) on both backends.  Every case
 * closes its loop (nothing in flight), and the teardown checks that no
 * descriptor and no child is left: waitid(P_ALL, WNOHANG | __WALL) finds
 * nothing to reap (ECHILD), so no zombie either.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proa_test.h"
#include "proa/process.h"
#include "ring/ring_int.h"

#define DRIVE_NS (20ull * 1000000000ull)

/* The fork case forks while pool threads of the parent's loop run (the
 * epoll backend offloads to them), and its child makes a loop of its own,
 * with threads: glibc allows that, and it is the case under test; TSan
 * refuses it by default.  Read only by TSan builds (the CMakeLists
 * exports it to the runtime). */
__attribute__((visibility("default"))) const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
	return "die_after_fork=0";
}

struct exit_rec {
	bool done;
	int code;
	int sig;
	int calls;
	bool close_inside;
};

static void on_exit_rec(struct proa_process *p, int code, int sig, void *arg)
{
	struct exit_rec *r = arg;

	r->done = true;
	r->code = code;
	r->sig = sig;
	r->calls++;
	if (r->close_inside)
		assert_res(proa_process_close(p), 0);
}

/* No child of ours is left, running or zombie. */
static void assert_no_child(void)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	assert_int_equal(waitid(P_ALL, 0, &si, WEXITED | WNOHANG | __WALL), -1);
	assert_int_equal(errno, ECHILD);
}

static int teardown(void **state)
{
	assert_no_child();
	return proa_test_fds_check(state);
}

/* Spawn @argv with @o's stdio (or inherited), on_exit into @r. */
static struct proa_process *spawn(struct proa_loop *loop, char *const *argv,
				  struct proa_spawn_opts *o, struct exit_rec *r)
{
	struct proa_spawn_opts def = {0};
	struct proa_process *p = NULL;

	if (!o)
		o = &def;
	o->argv = argv;
	o->on_exit = on_exit_rec;
	o->arg = r;
	assert_res(proa_spawn(&p, loop, o), 0);
	assert_non_null(p);
	return p;
}

/* Read @fd through the loop until EOF. */
static size_t read_all(struct proa_loop *loop, int fd, char *buf, size_t cap)
{
	struct proa_op op;
	size_t n = 0;

	for (;;) {
		proa_op_init(&op, (proa_op_fn)proa_test_nop, NULL);
		assert_res(
		    proa_op_read(loop, &op, fd, buf + n, cap - 1 - n, -1), 0);
		PROA_TEST_DRIVE_NS(loop, proa_op_is_idle(&op), DRIVE_NS);
		assert_true(op.res >= 0);
		if (op.res == 0)
			break;
		n += (size_t)op.res;
	}
	buf[n] = '\0';
	return n;
}

/* Run @argv with stdout as a pipe; its output into @buf; wait for exit. */
static void run_capture(struct proa_loop *loop, char *const *argv,
			struct proa_spawn_opts *o, char *buf, size_t cap,
			struct exit_rec *r)
{
	struct proa_process *p;
	int fd;

	o->stdio[1].kind = PROA_STDIO_PIPE;
	p = spawn(loop, argv, o, r);
	fd = proa_process_take_stdio(p, 1);
	assert_true(fd >= 0);
	read_all(loop, fd, buf, cap);
	close(fd);
	PROA_TEST_DRIVE_NS(loop, r->done, DRIVE_NS);
	assert_res(proa_process_close(p), 0);
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
}

static void test_spawn_exit_code_reported(void **state)
{
	char *argv[] = {"/bin/sh", "-c", "exit 3", NULL};
	struct proa_loop *loop = proa_test_loop_new();
	struct exit_rec r = {0};
	struct proa_future fut;
	struct proa_process *p;
	int code = 0, sig = -1;

	(void)state;
	p = spawn(loop, argv, NULL, &r);
	assert_true(proa_process_pid(p) > 0);
	assert_true(proa_process_pidfd(p) >= 0);
	assert_res(proa_process_status(p, &code, &sig), PROA_EPENDING);
	proa_future_init(&fut, loop);
	assert_res(proa_process_wait(p, &fut), 0);
	PROA_TEST_DRIVE_NS(loop, r.done && proa_future_is_done(&fut), DRIVE_NS);
	assert_int_equal(r.code, 3);
	assert_int_equal(r.sig, 0);
	assert_int_equal(r.calls, 1);
	int st = proa_future_result(&fut, NULL);
	assert_true(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 3);
	assert_res(proa_process_status(p, &code, &sig), 0);
	assert_int_equal(code, 3);
	assert_int_equal(sig, 0);
	/* A wait after the exit resolves at once. */
	assert_res(proa_future_fini(&fut), 0);
	proa_future_init(&fut, loop);
	assert_res(proa_process_wait(p, &fut), 0);
	assert_true(proa_future_is_done(&fut));
	assert_true(WEXITSTATUS(proa_future_result(&fut, NULL)) == 3);
	assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	assert_res(proa_future_fini(&fut), 0);
	assert_res(proa_process_close(p), 0);
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	proa_test_loop_close(loop);
}

static void test_spawn_signal_reported(void **state)
{
	char *argv[] = {"/bin/sh", "-c", "kill -TERM $$; sleep 10", NULL};
	struct proa_loop *loop = proa_test_loop_new();
	struct exit_rec r = {0};
	struct proa_process *p;

	(void)state;
	p = spawn(loop, argv, NULL, &r);
	PROA_TEST_DRIVE_NS(loop, r.done, DRIVE_NS);
	assert_int_equal(r.code, -1);
	assert_int_equal(r.sig, SIGTERM);
	assert_res(proa_process_close(p), 0);
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	proa_test_loop_close(loop);
}

static void test_spawn_missing_program_is_enoent(void **state)
{
	char *abs[] = {"/nonexistent/proa-no-such-program", NULL};
	char *name[] = {"proa-no-such-program", NULL};
	struct proa_spawn_opts o = {0};
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_process *p = NULL;

	(void)state;
	o.argv = abs;
	assert_res(proa_spawn(&p, loop, &o), -ENOENT);
	assert_null(p);
	o.argv = name;
	assert_res(proa_spawn(&p, loop, &o), -ENOENT);
	assert_null(p);
	/* The child's errno from chdir, before exec. */
	o.argv = (char **)(char *[]){"/bin/true", NULL};
	o.cwd = "/nonexistent/dir";
	assert_res(proa_spawn(&p, loop, &o), -ENOENT);
	o.cwd = "/bin/true";
	assert_res(proa_spawn(&p, loop, &o), -ENOTDIR);
	assert_no_child();
	proa_test_loop_close(loop);
}

static void test_spawn_not_executable_is_eacces(void **state)
{
	char path[] = "/tmp/proa-spawn-XXXXXX";
	struct proa_spawn_opts o = {0};
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_process *p = NULL;
	char *argv[] = {path, NULL};
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "#!/bin/sh\nexit 0\n", 17), 17);
	close(fd);
	assert_int_equal(chmod(path, 0644), 0);
	o.argv = argv;
	assert_res(proa_spawn(&p, loop, &o), -EACCES);
	assert_null(p);
	assert_no_child();
	unlink(path);
	proa_test_loop_close(loop);
}

static void test_spawn_bad_arguments_refused(void **state)
{
	char *argv[] = {"/bin/true", NULL};
	char *empty[] = {NULL};
	struct proa_spawn_opts o = {0};
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_process *p = NULL;

	(void)state;
	assert_res(proa_spawn(&p, loop, NULL), -EINVAL);
	assert_res(proa_spawn(&p, loop, &o), -EINVAL);
	o.argv = empty;
	assert_res(proa_spawn(&p, loop, &o), -EINVAL);
	o.argv = argv;
	o.reserved[2] = 1;
	assert_res(proa_spawn(&p, loop, &o), -EINVAL);
	o.reserved[2] = 0;
	o.stdio[1].kind = PROA_STDIO_FD;
	o.stdio[1].fd = -1;
	assert_res(proa_spawn(&p, loop, &o), -EBADF);
	o.stdio[1].kind = (enum proa_stdio_kind)42;
	assert_res(proa_spawn(&p, loop, &o), -EINVAL);
	assert_null(p);
	proa_test_loop_close(loop);
}

static void test_spawn_kill_running_then_exited(void **state)
{
	char *argv[] = {"/bin/sleep", "100", NULL};
	struct proa_loop *loop = proa_test_loop_new();
	struct exit_rec r = {0};
	struct proa_process *p;

	(void)state;
	p = spawn(loop, argv, NULL, &r);
	assert_res(proa_process_kill(p, 0), 0);
	assert_res(proa_process_kill(p, -1), -EINVAL);
	assert_res(proa_process_kill(p, SIGTERM), 0);
	PROA_TEST_DRIVE_NS(loop, r.done, DRIVE_NS);
	assert_int_equal(r.sig, SIGTERM);
	/* Gone: no signal can reach another process under that pid. */
	assert_res(proa_process_kill(p, SIGTERM), -ESRCH);
	assert_res(proa_process_kill(p, 0), -ESRCH);
	assert_int_equal(proa_process_pidfd(p), -1);
	assert_res(proa_process_close(p), 0);
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	proa_test_loop_close(loop);
}

/* A child that exited before the loop noticed: kill is 0 (the kernel
 * drops it on the zombie), the exit still arrives once. */
static void test_spawn_kill_exited_not_yet_delivered(void **state)
{
	char *argv[] = {"/bin/true", NULL};
	struct proa_loop *loop = proa_test_loop_new();
	struct exit_rec r = {0};
	struct proa_process *p;
	siginfo_t si;

	(void)state;
	p = spawn(loop, argv, NULL, &r);
	/* Wait for the zombie without reaping it. */
	memset(&si, 0, sizeof(si));
	assert_int_equal(waitid(P_PID, (id_t)proa_process_pid(p), &si,
				WEXITED | WNOWAIT | __WALL),
			 0);
	assert_res(proa_process_kill(p, SIGKILL), 0);
	PROA_TEST_DRIVE_NS(loop, r.done, DRIVE_NS);
	assert_int_equal(r.code, 0);
	assert_int_equal(r.sig, 0);
	assert_res(proa_process_kill(p, SIGKILL), -ESRCH);
	assert_res(proa_process_close(p), 0);
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	assert_int_equal(r.calls, 1);
	proa_test_loop_close(loop);
}

static void test_spawn_cwd_env_and_path_lookup(void **state)
{
	char *pwd[] = {"pwd", NULL};
	char *env[] = {"/bin/sh", "-c", "echo \"$PROA_X:$HOME\"", NULL};
	char *envp[] = {"PROA_X=hello world", "HOME=/nowhere", NULL};
	char dir[] = "/tmp/proa-cwd-XXXXXX";
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_spawn_opts o = {0};
	struct exit_rec r = {0};
	char buf[256], want[300];

	(void)state;
	assert_non_null(mkdtemp(dir));
	o.cwd = dir;
	run_capture(loop, pwd, &o, buf, sizeof(buf), &r);
	snprintf(want, sizeof(want), "%s\n", dir);
	assert_string_equal(buf, want);
	assert_int_equal(r.code, 0);

	memset(&o, 0, sizeof(o));
	memset(&r, 0, sizeof(r));
	o.envp = envp;
	run_capture(loop, env, &o, buf, sizeof(buf), &r);
	assert_string_equal(buf, "hello world:/nowhere\n");
	assert_int_equal(rmdir(dir), 0);
	proa_test_loop_close(loop);
}

static void test_spawn_stdio_pipes_devnull_and_fd(void **state)
{
	char *cat[] = {"/bin/cat", NULL};
	char *both[] = {"/bin/sh", "-c", "cat; echo out; echo err >&2", NULL};
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_spawn_opts o = {0};
	struct exit_rec r = {0};
	struct proa_process *p;
	char buf[256];
	int sv[2], in, out;

	(void)state;
	/* stdin and stdout pipes: what goes in comes out; closing stdin is
	 * the child's EOF. */
	o.stdio[0].kind = PROA_STDIO_PIPE;
	o.stdio[1].kind = PROA_STDIO_PIPE;
	p = spawn(loop, cat, &o, &r);
	assert_int_equal(proa_process_stdio_fd(p, 2), -1);
	assert_res(proa_process_take_stdio(p, 2), -EBADF);
	assert_res(proa_process_take_stdio(p, 3), -EINVAL);
	in = proa_process_take_stdio(p, 0);
	out = proa_process_take_stdio(p, 1);
	assert_true(in >= 0 && out >= 0);
	assert_int_equal(fcntl(in, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	assert_int_equal(write(in, "hello\n", 6), 6);
	close(in);
	read_all(loop, out, buf, sizeof(buf));
	close(out);
	assert_string_equal(buf, "hello\n");
	PROA_TEST_DRIVE_NS(loop, r.done, DRIVE_NS);
	assert_int_equal(r.code, 0);
	assert_res(proa_process_close(p), 0);

	/* stdin from /dev/null, stdout and stderr into one socket. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	memset(&o, 0, sizeof(o));
	memset(&r, 0, sizeof(r));
	o.stdio[0].kind = PROA_STDIO_DEVNULL;
	o.stdio[1].kind = PROA_STDIO_FD;
	o.stdio[1].fd = sv[1];
	o.stdio[2].kind = PROA_STDIO_FD;
	o.stdio[2].fd = sv[1];
	p = spawn(loop, both, &o, &r);
	close(sv[1]);
	read_all(loop, sv[0], buf, sizeof(buf));
	close(sv[0]);
	assert_string_equal(buf, "out\nerr\n");
	PROA_TEST_DRIVE_NS(loop, r.done, DRIVE_NS);
	assert_int_equal(r.code, 0);
	assert_res(proa_process_close(p), 0);
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	proa_test_loop_close(loop);
}

/* Descriptors 0 and 1 swapped: neither dup2 may clobber the other's
 * source. */
static void test_spawn_stdio_swapped_low_fds(void **state)
{
	char *argv[] = {"/bin/sh", "-c", "echo to1; echo to0 >&0", NULL};
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_spawn_opts o = {0};
	struct exit_rec r = {0};
	int a[2], b[2], save0, save1;
	char buf[64];

	(void)state;
	assert_int_equal(pipe2(a, O_CLOEXEC), 0);
	assert_int_equal(pipe2(b, O_CLOEXEC), 0);
	/* Our own 0 and 1 become the write ends of a and b. */
	save0 = fcntl(0, F_DUPFD_CLOEXEC, 3);
	save1 = fcntl(1, F_DUPFD_CLOEXEC, 3);
	assert_true(save0 >= 0 && save1 >= 0);
	assert_int_equal(dup2(a[1], 0), 0);
	assert_int_equal(dup2(b[1], 1), 1);
	close(a[1]);
	close(b[1]);
	o.stdio[0].kind = PROA_STDIO_FD;
	o.stdio[0].fd = 1; /* b */
	o.stdio[1].kind = PROA_STDIO_FD;
	o.stdio[1].fd = 0; /* a */
	struct proa_process *p = spawn(loop, argv, &o, &r);
	dup2(save0, 0);
	dup2(save1, 1);
	close(save0);
	close(save1);
	read_all(loop, a[0], buf, sizeof(buf));
	assert_string_equal(buf, "to1\n");
	read_all(loop, b[0], buf, sizeof(buf));
	assert_string_equal(buf, "to0\n");
	close(a[0]);
	close(b[0]);
	PROA_TEST_DRIVE_NS(loop, r.done, DRIVE_NS);
	assert_res(proa_process_close(p), 0);
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	proa_test_loop_close(loop);
}

/* New session, new process group: fields 5 and 6 of /proc/PID/stat. */
static void test_spawn_session_and_group(void **state)
{
	char *argv[] = {"/bin/sh", "-c",
			"read -r a b c d e f rest < /proc/$$/stat; echo $e $f",
			NULL};
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_spawn_opts o = {0};
	struct exit_rec r = {0};
	char buf[64], want[64];
	struct proa_process *p;
	int fd;

	(void)state;
	o.flags = PROA_SPAWN_SETSID;
	o.stdio[1].kind = PROA_STDIO_PIPE;
	p = spawn(loop, argv, &o, &r);
	fd = proa_process_take_stdio(p, 1);
	read_all(loop, fd, buf, sizeof(buf));
	close(fd);
	snprintf(want, sizeof(want), "%d %d\n", (int)proa_process_pid(p),
		 (int)proa_process_pid(p));
	assert_string_equal(buf, want);
	PROA_TEST_DRIVE_NS(loop, r.done, DRIVE_NS);
	assert_res(proa_process_close(p), 0);

	memset(&r, 0, sizeof(r));
	o.flags = PROA_SPAWN_SETPGID;
	o.pgid = 0;
	p = spawn(loop, argv, &o, &r);
	fd = proa_process_take_stdio(p, 1);
	read_all(loop, fd, buf, sizeof(buf));
	close(fd);
	snprintf(want, sizeof(want), "%d %d\n", (int)proa_process_pid(p),
		 (int)getsid(0));
	assert_string_equal(buf, want);
	PROA_TEST_DRIVE_NS(loop, r.done, DRIVE_NS);
	assert_res(proa_process_close(p), 0);
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	proa_test_loop_close(loop);
}

static void test_spawn_uid_where_permitted(void **state)
{
	char *argv[] = {"/usr/bin/id", "-u", NULL};
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_spawn_opts o = {0};
	struct exit_rec r = {0};
	struct proa_process *p = NULL;
	char buf[64];

	(void)state;
	o.flags = PROA_SPAWN_SETUID | PROA_SPAWN_SETGID;
	if (geteuid() != 0) {
		o.uid = 0;
		o.gid = 0;
		o.argv = argv;
		assert_res(proa_spawn(&p, loop, &o), -EPERM);
		assert_null(p);
	} else {
		o.uid = 65534;
		o.gid = 65534;
		run_capture(loop, argv, &o, buf, sizeof(buf), &r);
		assert_string_equal(buf, "65534\n");
	}
	proa_test_loop_close(loop);
}

/* Closing a running child kills and reaps it; its exit is not told. */
static void test_spawn_close_running_kills_and_reaps(void **state)
{
	char *argv[] = {"/bin/sleep", "100", NULL};
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_spawn_opts o = {0};
	struct exit_rec r = {0};
	struct proa_future fut, in, out;
	struct proa_future *ins[1] = {&in};
	struct proa_process *p;

	(void)state;
	o.stdio[0].kind = PROA_STDIO_PIPE;
	p = spawn(loop, argv, &o, &r);
	/* Another piece of work's future (a combinator's output) is not
	 * taken over: its owner could release it under that work. */
	proa_future_init(&in, loop);
	proa_future_init(&out, loop);
	assert_res(proa_future_any(&out, ins, 1), 0);
	assert_res(proa_process_wait(p, &out), -EBUSY);
	proa_future_init(&fut, loop);
	assert_res(proa_process_wait(p, &fut), 0);
	assert_res(proa_process_wait(p, &fut), -EBUSY);
	assert_res(proa_process_close(p), 0);
	assert_true(proa_future_is_done(&fut));
	assert_res(proa_future_result(&fut, NULL), -ECANCELED);
	assert_res(proa_loop_close(loop), -EBUSY);
	assert_res(proa_future_set_result(&in, 0, NULL), 0);
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	assert_false(r.done);
	assert_res(proa_future_result(&out, NULL), 0);
	assert_res(proa_future_fini(&fut), 0);
	assert_res(proa_future_fini(&in), 0);
	assert_res(proa_future_fini(&out), 0);
	proa_test_loop_close(loop);
}

/* A loop wound down with a child running: cancel_all kills and reaps it,
 * and the exit (SIGKILL) is told. */
static void test_spawn_loop_close_with_child_running(void **state)
{
	char *argv[] = {"/bin/sleep", "100", NULL};
	struct proa_loop *loop = proa_test_loop_new();
	struct exit_rec r = {0};
	struct proa_process *p;

	(void)state;
	p = spawn(loop, argv, NULL, &r);
	assert_res(proa_loop_run(loop, PROA_RUN_NOWAIT), 1);
	assert_res(proa_loop_close(loop), -EBUSY);
	assert_true(proa_loop_cancel_all(loop) >= 1);
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	assert_true(r.done);
	assert_int_equal(r.sig, SIGKILL);
	assert_res(proa_process_close(p), 0);
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	proa_test_loop_close(loop);
}

/* Cancelling a wait stops the wait, not the child. */
static void test_spawn_wait_cancel_keeps_child(void **state)
{
	char *argv[] = {"/bin/sh", "-c", "read x; exit 7", NULL};
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_spawn_opts o = {0};
	struct exit_rec r = {0};
	struct proa_future fut;
	struct proa_process *p;
	int in;

	(void)state;
	o.stdio[0].kind = PROA_STDIO_PIPE;
	p = spawn(loop, argv, &o, &r);
	proa_future_init(&fut, loop);
	assert_res(proa_process_wait(p, &fut), 0);
	assert_res(proa_future_cancel(&fut), 0);
	assert_true(proa_future_is_done(&fut));
	assert_res(proa_future_result(&fut, NULL), -ECANCELED);
	in = proa_process_take_stdio(p, 0);
	assert_int_equal(write(in, "go\n", 3), 3);
	close(in);
	r.close_inside = true;
	PROA_TEST_DRIVE_NS(loop, r.done, DRIVE_NS);
	assert_int_equal(r.code, 7);
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	assert_res(proa_future_fini(&fut), 0);
	proa_test_loop_close(loop);
}

struct many {
	struct proa_loop *loop;
	unsigned started, done, failed, target, width;
};

static void start_more(struct many *m);

static void many_exit(struct proa_process *p, int code, int sig, void *arg)
{
	struct many *m = arg;

	m->done++;
	if (code != 0 || sig != 0)
		m->failed++;
	proa_process_close(p);
	start_more(m);
}

static void start_more(struct many *m)
{
	static char *argv[] = {"/bin/true", NULL};
	struct proa_spawn_opts o = {0};
	struct proa_process *p;

	o.argv = argv;
	o.on_exit = many_exit;
	o.arg = m;
	o.stdio[0].kind = PROA_STDIO_DEVNULL;
	while (m->started < m->target && m->started - m->done < m->width) {
		assert_res(proa_spawn(&p, m->loop, &o), 0);
		m->started++;
	}
}

static void run_many(struct proa_loop *loop, unsigned n, unsigned width)
{
	struct many m = {.loop = loop, .target = n, .width = width};

	start_more(&m);
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	assert_int_equal(m.done, n);
	assert_int_equal(m.failed, 0);
}

/* 1,000 short children, 100 at a time: every exit told once, no zombie,
 * no descriptor left (the teardown counts /proc/self/fd). */
static void test_spawn_thousand_children_no_leak(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();

	(void)state;
	run_many(loop, 1000, 100);
	assert_no_child();
	proa_test_loop_close(loop);
}

/* Children in state Z whose parent is us, read from /proc: the zombie
 * check by name, beside waitid()'s. */
static int zombies_of_ours(void)
{
	char path[300], buf[512], *p;
	struct dirent *e;
	DIR *d = opendir("/proc");
	int n = 0, fd;
	ssize_t len;
	long ppid;
	char st;

	assert_non_null(d);
	/* readdir(): this stream is this thread's alone. */
	while ((e = readdir(d)) != NULL) { /* NOLINT(concurrency-mt-unsafe) */
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue; /* gone meanwhile */
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = 0;
		/* "pid (comm) S ppid ...": comm may hold spaces and ')' */
		p = strrchr(buf, ')');
		if (p && sscanf(p + 1, " %c %ld", &st, &ppid) == 2 &&
		    ppid == (long)getpid() && st == 'Z')
			n++;
	}
	closedir(d);
	return n;
}

struct herd {
	struct proa_process *p[1000];
	unsigned exited, failed;
};

static void herd_exit(struct proa_process *p, int code, int sig, void *arg)
{
	struct herd *h = arg;

	(void)p;
	h->exited++;
	if (code != 0 || sig != 0)
		h->failed++;
}

/* 1,000 children running at once: all are spawned before the loop runs
 * (1,000 pidfds open together), every exit is told once, and then no
 * zombie is left (by /proc and by waitid()) and no descriptor (the
 * teardown counts /proc/self/fd against the count before). */
static void test_spawn_thousand_at_once_no_zombie(void **state)
{
	static char *argv[] = {"/bin/sh", "-c", "read x", NULL};
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_spawn_opts o = {0};
	struct herd *h = calloc(1, sizeof(*h));
	char why[256];
	int fds0, in[2];
	unsigned i;

	(void)state;
	assert_non_null(h);
	if (!proa_test_raise_nofile(4096, why, sizeof(why)))
		skip();
	/* They all block on one pipe until it closes, so all 1,000 exist
	 * at the same time. */
	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	fds0 = proa_test_fds();
	o.argv = argv;
	o.on_exit = herd_exit;
	o.arg = h;
	o.stdio[0].kind = PROA_STDIO_FD;
	o.stdio[0].fd = in[0];
	for (i = 0; i < 1000; i++)
		assert_res(proa_spawn(&h->p[i], loop, &o), 0);
	assert_int_equal(proa_test_fds(), fds0 + 1000); /* a pidfd each */
	assert_res(proa_loop_run(loop, PROA_RUN_NOWAIT), 1);
	assert_int_equal(h->exited, 0);
	close(in[0]);
	close(in[1]); /* EOF: every "read" returns 1 */
	PROA_TEST_DRIVE_NS(loop, h->exited == 1000, DRIVE_NS);
	assert_int_equal(h->failed, 1000);
	for (i = 0; i < 1000; i++) {
		int code = 0, sig = -1;

		assert_res(proa_process_status(h->p[i], &code, &sig), 0);
		assert_int_equal(code, 1);
		assert_int_equal(sig, 0);
		assert_res(proa_process_kill(h->p[i], SIGTERM), -ESRCH);
		assert_res(proa_process_close(h->p[i]), 0);
	}
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	assert_int_equal(zombies_of_ours(), 0);
	assert_no_child();
	proa_test_loop_close(loop);
	free(h);
}

/* The pidfd poll path on io_uring too, with OP_WAITID hidden. */
static void test_spawn_without_waitid_polls_the_pidfd(void **state)
{
	char *argv[] = {"/bin/sh", "-c", "exit 5", NULL};
	struct proa_loop *loop;
	struct exit_rec r = {0};
	struct proa_process *p;

	(void)state;
	proa__ring_faults.hide_features = 1ull << PROA_FEAT_OP_WAITID;
	loop = proa_test_loop_new();
	proa__ring_faults.hide_features = 0;
	assert_false(proa_loop_feature(loop, PROA_FEAT_OP_WAITID));
	p = spawn(loop, argv, NULL, &r);
	PROA_TEST_DRIVE_NS(loop, r.done, DRIVE_NS);
	assert_int_equal(r.code, 5);
	assert_res(proa_process_close(p), 0);
	run_many(loop, 100, 20);
	/* And a child killed while the loop winds down. */
	/* Not "sh -c 'sleep 100'": a shell killed after its fork leaves the
	 * sleep behind, holding our stdout (ctest waits for it to close). */
	memset(&r, 0, sizeof(r));
	argv[0] = "/bin/sleep";
	argv[1] = "100";
	argv[2] = NULL;
	p = spawn(loop, argv, NULL, &r);
	assert_true(proa_loop_cancel_all(loop) >= 1);
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	assert_int_equal(r.sig, SIGKILL);
	assert_res(proa_process_close(p), 0);
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	proa_test_loop_close(loop);
}

static void *thread_spawner(void *arg)
{
	struct proa_loop *loop = NULL;

	(void)arg;
	if (proa_loop_new(&loop, NULL) < 0)
		return (void *)1;
	run_many(loop, 200, 20);
	return proa_loop_free(loop) == 0 ? NULL : (void *)1;
}

/* Two threads, each with its loop, spawning at once: a vfork child shares
 * memory with threads that keep running. */
static void test_spawn_from_two_threads(void **state)
{
	pthread_t t[2];
	void *ret;

	(void)state;
	for (int i = 0; i < 2; i++)
		assert_int_equal(
		    pthread_create(&t[i], NULL, thread_spawner, NULL), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pthread_join(t[i], &ret), 0);
		assert_null(ret);
	}
}

/* fork(): the child leaves the parent's loop alone (only _exit here) and
 * may start fresh with a loop of its own; the parent's loop and child
 * process are unharmed. */
static void test_spawn_fork_child_starts_fresh(void **state)
{
	char *argv[] = {"/bin/sh", "-c", "read x; exit 4", NULL};
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_spawn_opts o = {0};
	struct exit_rec r = {0};
	struct proa_process *p;
	pid_t pid;
	int st = 0, in;

	(void)state;
	o.stdio[0].kind = PROA_STDIO_PIPE;
	p = spawn(loop, argv, &o, &r);
	assert_res(proa_loop_run(loop, PROA_RUN_NOWAIT), 1);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct proa_loop *fresh = NULL;
		struct exit_rec fr = {0};
		struct proa_spawn_opts fo = {0};
		struct proa_process *fp = NULL;
		char *targv[] = {"/bin/sh", "-c", "exit 9", NULL};

		/* Nothing of @loop; a new loop works. */
		if (proa_loop_new(&fresh, NULL) < 0)
			_exit(10);
		fo.argv = targv;
		fo.on_exit = on_exit_rec;
		fo.arg = &fr;
		if (proa_spawn(&fp, fresh, &fo) < 0)
			_exit(11);
		while (!fr.done)
			if (proa_loop_run(fresh, PROA_RUN_ONCE) < 0)
				_exit(12);
		proa_process_close(fp);
		proa_loop_run(fresh, PROA_RUN_DEFAULT);
		if (fr.code != 9 || proa_loop_free(fresh) != 0)
			_exit(13);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	in = proa_process_take_stdio(p, 0);
	assert_int_equal(write(in, "x\n", 2), 2);
	close(in);
	PROA_TEST_DRIVE_NS(loop, r.done, DRIVE_NS);
	assert_int_equal(r.code, 4);
	assert_res(proa_process_close(p), 0);
	assert_res(proa_loop_run(loop, PROA_RUN_DEFAULT), 0);
	proa_test_loop_close(loop);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, proa_test_fds_setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_spawn_exit_code_reported),
	    T(test_spawn_signal_reported),
	    T(test_spawn_missing_program_is_enoent),
	    T(test_spawn_not_executable_is_eacces),
	    T(test_spawn_bad_arguments_refused),
	    T(test_spawn_kill_running_then_exited),
	    T(test_spawn_kill_exited_not_yet_delivered),
	    T(test_spawn_cwd_env_and_path_lookup),
	    T(test_spawn_stdio_pipes_devnull_and_fd),
	    T(test_spawn_stdio_swapped_low_fds),
	    T(test_spawn_session_and_group),
	    T(test_spawn_uid_where_permitted),
	    T(test_spawn_close_running_kills_and_reaps),
	    T(test_spawn_loop_close_with_child_running),
	    T(test_spawn_wait_cancel_keeps_child),
	    T(test_spawn_thousand_children_no_leak),
	    T(test_spawn_thousand_at_once_no_zombie),
	    T(test_spawn_without_waitid_polls_the_pidfd),
	    T(test_spawn_from_two_threads),
	    T(test_spawn_fork_child_starts_fresh),
	};
#undef T

	proa_test_require_uring();
	return cmocka_run_group_tests_name("proc.spawn", tests, NULL, NULL);
}
