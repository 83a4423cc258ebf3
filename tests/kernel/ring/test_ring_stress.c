/* SPDX-License-Identifier: MIT */
/*
 * The ring under pressure (docs/reliability.md P1-P5, P11): a 4-entry SQ
 * running 10k operations, a 16-entry CQ overflowed by 10k completions, cancel
 * racing completion 10k times, io_uring_enter failing with EBUSY/EAGAIN/EINTR,
 * SQEs refused, a 1 ms SIGALRM storm, and io_uring set-up refused (by the fault
 * hook, and for real by a seccomp filter in a child process).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proa_test.h"
#include "ring/ring_int.h"

/* These tests are about io_uring itself: never the epoll fallback. */
static const struct proa_loop_opts uring_only = {
    .backend = PROA_BACKEND_IO_URING,
};

static void reset_faults(void)
{
	memset(&proa__ring_faults, 0, sizeof(proa__ring_faults));
}

/* ---- many ops from one callback ---------------------------------------------
 */

struct storm {
	struct proa_loop *loop;
	struct proa_op *ops;
	unsigned n;
	unsigned *runs; /* per op */
	unsigned done;
	int bad_res;
	struct proa_handle h;
};

static void storm_op_cb(struct proa_op *op)
{
	struct storm *s = op->data;

	if (op->res != 0)
		s->bad_res++;
	s->runs[op - s->ops]++;
	s->done++;
}

static void storm_submit(void *arg)
{
	struct storm *s = arg;
	unsigned i;

	/* All at once, from one callback, without returning to the loop. */
	for (i = 0; i < s->n; i++) {
		proa_op_init(&s->ops[i], storm_op_cb, s);
		assert_res(proa_op_nop(s->loop, &s->ops[i]), 0);
	}
}

static void run_storm(const struct proa_loop_opts *opts, unsigned n,
		      struct proa_loop_stats *st)
{
	struct storm s = {.n = n};
	unsigned i;

	s.loop = proa_test_loop_new_opts(opts);
	s.ops = calloc(n, sizeof(*s.ops));
	s.runs = calloc(n, sizeof(*s.runs));
	assert_res(proa_loop_call_soon(s.loop, &s.h, storm_submit, &s), 0);
	assert_res(proa_loop_run(s.loop, PROA_RUN_DEFAULT), 0);
	assert_int_equal(s.done, n);
	assert_int_equal(s.bad_res, 0);
	for (i = 0; i < n; i++)
		assert_int_equal(s.runs[i], 1);
	assert_res(proa_loop_stats(s.loop, st), 0);
	assert_int_equal(st->cq_dropped, 0);
	free(s.ops);
	free(s.runs);
	proa_test_loop_close(s.loop);
}

static void test_sq_of_4_entries_runs_10k_ops(void **state)
{
	struct proa_loop_opts opts = {.sq_entries = 4};
	struct proa_loop_stats st;

	run_storm(&opts, 10000, &st);
	/* The SQ filled and was flushed and refilled from the callback. */
	assert_true(st.sq_full >= 10000 / 4 - 1);
	(void)state;
}

static void test_small_cq_overflowed_by_10k_loses_nothing(void **state)
{
	struct proa_loop_opts opts = {.sq_entries = 8, .cq_entries = 16};
	struct proa_loop_stats st;

	run_storm(&opts, 10000, &st);
	/* 10k completions into a 16-entry CQ: the kernel held them back
	 * (NODROP) and the loop flushed them in. */
	assert_true(st.cq_overflows > 0);
	assert_true(st.completions >= 10000);
	(void)state;
}

/* Writes stay in order through a full SQ (queued ops wait in line). */
struct ordered {
	struct proa_loop *loop;
	int fd;
	struct proa_op ops[500];
	uint64_t vals[500];
	unsigned done;
	int bad;
	struct proa_handle h;
};

static void ordered_cb(struct proa_op *op)
{
	struct ordered *o = op->data;

	if (op->res != 8)
		o->bad++;
	o->done++;
}

static void ordered_submit(void *arg)
{
	struct ordered *o = arg;
	int i;

	for (i = 0; i < 500; i++) {
		o->vals[i] = (uint64_t)i;
		proa_op_init(&o->ops[i], ordered_cb, o);
		assert_res(proa_op_write(o->loop, &o->ops[i], o->fd,
					 &o->vals[i], 8, -1),
			   0);
	}
}

static void test_full_sq_keeps_write_order(void **state)
{
	struct proa_loop_opts opts = {.sq_entries = 4};
	struct ordered o = {0};
	uint64_t got[500];
	int p[2], i;

	o.loop = proa_test_loop_new_opts(&opts);
	/* 4000 bytes: below the pipe's capacity, so no write waits. */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	o.fd = p[1];
	assert_res(proa_loop_call_soon(o.loop, &o.h, ordered_submit, &o), 0);
	assert_res(proa_loop_run(o.loop, PROA_RUN_DEFAULT), 0);
	assert_int_equal(o.done, 500);
	assert_int_equal(o.bad, 0);
	assert_int_equal(read(p[0], got, sizeof(got)), (ssize_t)sizeof(got));
	for (i = 0; i < 500; i++)
		assert_int_equal(got[i], (uint64_t)i);
	close(p[0]);
	close(p[1]);
	proa_test_loop_close(o.loop);
	(void)state;
}

/* ---- cancel racing completion
 * ------------------------------------------------ */

struct race {
	int calls;
	int res;
};

static void race_cb(struct proa_op *op)
{
	struct race *r = op->data;

	r->calls++;
	r->res = op->res;
}

static void test_cancel_racing_completion_10k_resolves_once(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_op op;
	struct race r;
	int sv[2], i, cancel_ret, got_data = 0, got_cancel = 0;
	char in, left;
	bool wrote;

	assert_int_equal(socketpair(AF_UNIX,
				    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
				    0, sv),
			 0);
	for (i = 0; i < 10000; i++) {
		r = (struct race){0};
		proa_op_init(&op, race_cb, &r);
		assert_res(proa_op_read(loop, &op, sv[0], &in, 1, -1), 0);
		/* Let the read reach the kernel before the race, half the
		 * time; the other half it races from the SQ. */
		if (i & 2)
			assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
		wrote = i & 1;
		if (wrote)
			assert_int_equal(write(sv[1], "x", 1), 1);
		cancel_ret = proa_op_cancel(&op);
		assert_true(cancel_ret == 0 || cancel_ret == -ENOENT);
		proa_test_drive_op(loop, &op, 1000);
		assert_int_equal(r.calls, 1);
		if (r.res == 1) {
			assert_true(wrote);
			got_data++;
		} else {
			assert_res(r.res, -ECANCELED);
			got_cancel++;
			/* The byte was not consumed by the cancelled read. */
			if (wrote)
				assert_int_equal(read(sv[0], &left, 1), 1);
		}
		assert_int_equal(read(sv[0], &left, 1), -1);
		assert_int_equal(errno, EAGAIN);
	}
	/* Both outcomes happen (a cancelled read with no data always
	 * ends cancelled). */
	assert_true(got_cancel >= 5000);
	print_message("data won %d times, cancel %d times\n", got_data,
		      got_cancel);
	close(sv[0]);
	close(sv[1]);
	proa_test_loop_close(loop);
	(void)state;
}

/* ---- injected io_uring_enter and SQE failures
 * ---------------------------------- */

static void test_enter_failing_ebusy_eagain_eintr_is_survived(void **state)
{
	static const int errs[] = {EBUSY, EAGAIN, EINTR};
	struct proa_loop_stats st;
	unsigned i;

	for (i = 0; i < 3; i++) {
		reset_faults();
		proa__ring_faults.enter_errno = errs[i];
		proa__ring_faults.enter_fail_count = 3;
		run_storm(NULL, 100, &st);
		assert_int_equal(proa__ring_faults.enter_fail_count, 0);
	}
	reset_faults();
	(void)state;
}

static void test_sqe_refused_three_times_is_flushed_and_retried(void **state)
{
	struct proa_loop_stats st;
	struct proa_loop *loop;

	/* Make the loop first: its own wake-up read takes an SQE too. */
	loop = proa_test_loop_new();
	proa_test_loop_close(loop);
	reset_faults();
	proa__ring_faults.get_sqe_fail_mask = (1u << 3) | (1u << 5) | (1u << 9);
	run_storm(NULL, 64, &st);
	assert_true(proa__ring_faults.get_sqe_calls > 9);
	reset_faults();
	(void)state;
}

static void test_enter_failing_hard_is_reported_by_run(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_test_log log;
	struct race r = {0};
	struct proa_op op;

	/* The first run submits the loop's own wake-up read. */
	assert_res(proa_loop_run(loop, PROA_RUN_NOWAIT), 0);
	reset_faults();
	proa__ring_faults.enter_errno = EFAULT;
	proa__ring_faults.enter_fail_count = 1;
	proa_test_log_start(&log);
	/* Nothing to submit or wait for: no enter, so no failure yet. */
	assert_res(proa_loop_run(loop, PROA_RUN_NOWAIT), 0);
	assert_int_equal(proa__ring_faults.enter_fail_count, 1);
	proa_op_init(&op, race_cb, &r);
	assert_res(proa_op_nop(loop, &op), 0);
	assert_res(proa_loop_run(loop, PROA_RUN_NOWAIT), -EFAULT);
	assert_true(proa_test_log_has(&log, "io_uring_enter"));
	assert_int_equal(r.calls, 0);
	/* The op was not lost: the next run submits it. */
	reset_faults();
	proa_test_drive_op(loop, &op, 100);
	assert_int_equal(r.calls, 1);
	assert_res(r.res, 0);
	proa_test_log_stop(&log);
	proa_test_loop_close(loop);
	(void)state;
}

/* ---- a SIGALRM storm
 * ----------------------------------------------------------- */

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

struct tick {
	struct proa_timer t;
	uint64_t due;
	uint64_t late;
	int fired;
};

static void tick_cb(void *arg)
{
	struct tick *k = arg;

	k->late = proa_test_now_ns() - k->due;
	k->fired++;
}

static void stop_cb(void *arg)
{
	proa_loop_stop(arg);
}

static void idle_read_cb(struct proa_op *op)
{
	assert_res(op->res, -ECANCELED);
}

static void test_sigalrm_storm_surfaces_no_error(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct sigaction sa = {0}, old;
	struct itimerval it = {{0, 1000}, {0, 1000}}, off = {{0, 0}, {0, 0}};
	static const uint64_t delays[] = {5000000, 50000000, 500000000};
	struct tick ticks[3];
	struct proa_timer end = {0};
	struct proa_op rd;
	char c;
	int p[2], i;

	memset(ticks, 0, sizeof(ticks));
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	proa_op_init(&rd, idle_read_cb, NULL);
	assert_res(proa_op_read(loop, &rd, p[0], &c, 1, -1), 0);
	/* No SA_RESTART: every alarm interrupts io_uring_enter. */
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
	alarms = 0;
	for (i = 0; i < 3; i++) {
		ticks[i].due = proa_test_now_ns() + delays[i];
		assert_res(proa_loop_call_later(loop, &ticks[i].t, delays[i],
						tick_cb, &ticks[i]),
			   0);
	}
	assert_res(proa_loop_call_later(loop, &end, 700000000, stop_cb, loop),
		   0);
	assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
	assert_res(proa_loop_run(loop, PROA_RUN_FOREVER), 0);
	assert_int_equal(setitimer(ITIMER_REAL, &off, NULL), 0);
	assert_int_equal(sigaction(SIGALRM, &old, NULL), 0);
	for (i = 0; i < 3; i++) {
		assert_int_equal(ticks[i].fired, 1);
		assert_true(ticks[i].late < 50000000);
	}
	assert_true(alarms > 100);
	print_message("%d alarms; lateness %llu/%llu/%llu us\n", (int)alarms,
		      (unsigned long long)ticks[0].late / 1000,
		      (unsigned long long)ticks[1].late / 1000,
		      (unsigned long long)ticks[2].late / 1000);
	assert_res(proa_op_cancel(&rd), 0);
	proa_test_drive_op(loop, &rd, 100);
	close(p[0]);
	close(p[1]);
	proa_test_loop_close(loop);
	(void)state;
}

/* ---- io_uring refused
 * ------------------------------------------------------------ */

static void test_setup_refused_gives_errno_and_reason(void **state)
{
	static const struct {
		int err;
		const char *word;
	} cases[] = {
	    {EPERM, "EPERM"},
	    {ENOSYS, "ENOSYS"},
	    {EINVAL, "EINVAL"},
	    {ENOMEM, "ENOMEM"},
	};
	struct proa_loop *loop = (struct proa_loop *)&loop;
	char why[256];
	int fds = proa_test_fds();
	unsigned i;

	for (i = 0; i < 4; i++) {
		reset_faults();
		proa__ring_faults.setup_errno = cases[i].err;
		/* io_uring chosen: auto would fall back (test_backend.c). */
		assert_int_equal(proa_loop_new(&loop, &uring_only),
				 -cases[i].err);
		assert_ptr_equal(loop, (struct proa_loop *)&loop);
		assert_int_equal(proa_io_uring_probe(why, sizeof(why)),
				 -cases[i].err);
		assert_non_null(strstr(why, cases[i].word));
		assert_int_equal(proa_test_fds(), fds);
	}
	reset_faults();
	assert_res(proa_io_uring_probe(why, sizeof(why)), 0);
	(void)state;
}

/* In a child: a seccomp filter makes io_uring_setup fail with @err, as
 * Docker's default profile does; proa must say so, in words. */
static int child_under_seccomp(int err, const char *word)
{
	struct sock_filter f[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		     offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K,
		     SECCOMP_RET_ERRNO | ((unsigned)err & SECCOMP_RET_DATA)),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = 4, .filter = f};
	struct proa_loop *loop = NULL;
	char why[256];

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
		return 10;
	if (proa_io_uring_probe(why, sizeof(why)) != -err)
		return 11;
	if (!strstr(why, word))
		return 12;
	if (err == EPERM && !strstr(why, "seccomp"))
		return 13;
	if (proa_loop_new(&loop, &uring_only) != -err || loop)
		return 14;
	return 0;
}

static void test_seccomp_refusal_is_named(void **state)
{
	static const int errs[] = {EPERM, ENOSYS};
	static const char *const words[] = {"EPERM", "ENOSYS"};
	int i, status;
	pid_t pid;

	for (i = 0; i < 2; i++) {
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			_exit(child_under_seccomp(errs[i], words[i]));
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	(void)state;
}

static void test_each_ring_mode_can_be_chosen(void **state)
{
	static const struct {
		enum proa_ring_mode mode;
		enum proa_feature feat;
	} modes[] = {
	    {PROA_RING_DEFER_TASKRUN, PROA_FEAT_DEFER_TASKRUN},
	    {PROA_RING_COOP_TASKRUN, PROA_FEAT_COOP_TASKRUN},
	    {PROA_RING_PLAIN, PROA_FEAT__COUNT},
	};
	struct proa_loop_opts opts = {0};
	struct proa_loop_stats st;
	struct proa_loop *loop;
	unsigned i;

	for (i = 0; i < 3; i++) {
		opts.ring_mode = modes[i].mode;
		loop = NULL;
		if (proa_loop_new(&loop, &opts) == -EINVAL) {
			print_message("ring mode %d not accepted here\n",
				      modes[i].mode);
			continue;
		}
		assert_non_null(loop);
		if (modes[i].feat != PROA_FEAT__COUNT)
			assert_true(proa_loop_feature(loop, modes[i].feat));
		else
			assert_false(
			    proa_loop_feature(loop, PROA_FEAT_DEFER_TASKRUN) ||
			    proa_loop_feature(loop, PROA_FEAT_COOP_TASKRUN));
		proa_test_loop_close(loop);
		run_storm(&opts, 1000, &st);
	}
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sq_of_4_entries_runs_10k_ops),
	    cmocka_unit_test(test_small_cq_overflowed_by_10k_loses_nothing),
	    cmocka_unit_test(test_full_sq_keeps_write_order),
	    cmocka_unit_test(test_cancel_racing_completion_10k_resolves_once),
	    cmocka_unit_test(test_enter_failing_ebusy_eagain_eintr_is_survived),
	    cmocka_unit_test(
		test_sqe_refused_three_times_is_flushed_and_retried),
	    cmocka_unit_test(test_enter_failing_hard_is_reported_by_run),
	    cmocka_unit_test(test_sigalrm_storm_surfaces_no_error),
	    cmocka_unit_test(test_setup_refused_gives_errno_and_reason),
	    cmocka_unit_test(test_seccomp_refusal_is_named),
	    cmocka_unit_test(test_each_ring_mode_can_be_chosen),
	};

	proa_test_require_io_uring_backend();
	return cmocka_run_group_tests_name("ring.stress", tests, NULL, NULL);
}
