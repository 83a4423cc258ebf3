/* SPDX-License-Identifier: MIT */
/*
 * proactor/signal.c - POSIX signals as loop callbacks, through a signalfd.
 *
 * The signalfd is polled by an internal op and read with read(2) on the
 * loop thread: signalfd hands out the signals pending for the *reading*
 * thread, so the read must not happen on a kernel worker.  No code ever
 * runs in signal context.
 *
 * A signal mask belongs to a thread, and several loops may run on one
 * thread, so the blocking is counted per thread (tl_watchers): a signal is
 * blocked when the first loop of the thread watches it and unblocked, if
 * proa blocked it, when the last one stops.  A loop's watches count in the
 * thread that started its first watch; a loop made and set up on one
 * thread and run on another counts them again in its owner at the first
 * run, and the setting-up thread keeps them blocked (loop.h says so).
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proactor_int.h"

/* Per thread: the loops watching each signal here, and whether proa
 * blocked it (it was not blocked before the first of them). */
static _Thread_local unsigned tl_watchers[NSIG];
static _Thread_local bool tl_blocked[NSIG];

static void thread_hold(int signo)
{
	sigset_t one, old;

	if (tl_watchers[signo]++ > 0)
		return;
	sigemptyset(&one);
	sigaddset(&one, signo);
	pthread_sigmask(SIG_BLOCK, &one, &old);
	tl_blocked[signo] = !sigismember(&old, signo);
}

static void thread_release(int signo)
{
	static const struct timespec zero = {0, 0};
	sigset_t one;

	if (--tl_watchers[signo] > 0 || !tl_blocked[signo])
		return;
	tl_blocked[signo] = false;
	sigemptyset(&one);
	sigaddset(&one, signo);
	/* An instance that arrived while watched and was not read yet would
	 * meet the default action (often death) the moment it is
	 * unblocked: it was the watch's, and the watch is gone. */
	for (;;) {
		int got = sigtimedwait(&one, NULL, &zero);

		if (got != signo && !(got < 0 && errno == EINTR))
			break;
	}
	pthread_sigmask(SIG_UNBLOCK, &one, NULL);
}

/* Whether this thread's counts hold @loop's watches. */
static bool counted_here(const struct proa_loop *loop)
{
	return loop->sig_thread_set &&
	       pthread_equal(loop->sig_thread, pthread_self());
}

static void sig_op_done(struct proa_op *op);

void proa__signals_init(struct proa_loop *loop)
{
	sigemptyset(&loop->sig_mask);
	loop->sig_thread_set = false;
	proa_list_init(&loop->signals);
	proa_op_init(&loop->sig_op, sig_op_done, loop);
	loop->sig_op.priv.iflags = PROA__OPF_INTERNAL;
}

bool proa__signals_active(const struct proa_loop *loop)
{
	return !proa_list_empty(&loop->signals);
}

void proa__signals_first_run(struct proa_loop *loop)
{
	int signo;

	if (counted_here(loop))
		return;
	/* Set up on another thread: count (and block) here as well. */
	for (signo = 1; signo < NSIG; signo++) {
		if (sigismember(&loop->sig_mask, signo) == 1)
			thread_hold(signo);
	}
	loop->sig_thread = pthread_self();
	loop->sig_thread_set = true;
}

void proa__signals_after_fork(struct proa_loop *loop)
{
	int signo;

	/* The child is a copy of the forking thread: its counts, its mask. */
	if (!counted_here(loop))
		return;
	for (signo = 1; signo < NSIG; signo++) {
		if (sigismember(&loop->sig_mask, signo) == 1)
			thread_release(signo);
	}
	sigemptyset(&loop->sig_mask);
}

void proa__signals_exit(struct proa_loop *loop)
{
	if (loop->sig_fd >= 0)
		close(loop->sig_fd);
	loop->sig_fd = -1;
}

static void dispatch(struct proa_loop *loop, int signo)
{
	struct proa_signal *sig;
	struct proa_link *l;

	/* The cursor survives proa_signal_stop() of any watch, including
	 * the next one, from inside a callback. */
	for (l = loop->signals.next; l != &loop->signals;
	     l = loop->sig_cursor) {
		loop->sig_cursor = l->next;
		sig = proa_container_of(l, struct proa_signal, priv.link);
		if (sig->signo == signo)
			sig->fn(sig);
	}
	loop->sig_cursor = NULL;
}

static int arm(struct proa_loop *loop)
{
	return proa_op_poll(loop, &loop->sig_op, loop->sig_fd, POLLIN, 0);
}

static void sig_op_done(struct proa_op *op)
{
	struct proa_loop *loop = op->data;
	struct signalfd_siginfo si[8];
	ssize_t n;
	size_t i;
	int ret;

	if (op->res < 0 && op->res != -ECANCELED)
		proa__log(PROA_LOG_ERROR, "loop %p: signalfd poll: %s",
			  (void *)loop, proa_strerror(op->res));
	for (;;) {
		n = read(loop->sig_fd, si, sizeof(si));
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			break;
		}
		for (i = 0; i < (size_t)n / sizeof(si[0]); i++)
			dispatch(loop, (int)si[i].ssi_signo);
	}
	if (proa_list_empty(&loop->signals) || proa__gate_closed(loop) ||
	    !proa_op_is_idle(op))
		return;
	ret = arm(loop);
	if (ret < 0)
		proa__log(PROA_LOG_ERROR,
			  "loop %p: cannot re-arm the signal watch: %s",
			  (void *)loop, proa_strerror(ret));
}

static bool watched_by_others(struct proa_loop *loop, int signo)
{
	struct proa_link *l;

	for (l = loop->signals.next; l != &loop->signals; l = l->next) {
		if (proa_container_of(l, struct proa_signal, priv.link)
			->signo == signo)
			return true;
	}
	return false;
}

/* Add @signo to the watched set: block it, and update the signalfd. */
static int watch(struct proa_loop *loop, int signo)
{
	int fd;

	if (!loop->sig_thread_set) {
		loop->sig_thread = pthread_self();
		loop->sig_thread_set = true;
	}
	if (counted_here(loop))
		thread_hold(signo);
	sigaddset(&loop->sig_mask, signo);
	fd =
	    signalfd(loop->sig_fd, &loop->sig_mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0) {
		fd = -errno;
		sigdelset(&loop->sig_mask, signo);
		if (counted_here(loop))
			thread_release(signo);
		return fd;
	}
	loop->sig_fd = fd;
	return 0;
}

static void unwatch(struct proa_loop *loop, int signo)
{
	sigdelset(&loop->sig_mask, signo);
	if (loop->sig_fd >= 0)
		signalfd(loop->sig_fd, &loop->sig_mask,
			 SFD_NONBLOCK | SFD_CLOEXEC);
	if (counted_here(loop))
		thread_release(signo);
}

int proa_signal_start(struct proa_loop *loop, struct proa_signal *sig,
		      int signo, proa_signal_fn fn, void *data)
{
	bool fresh;
	int ret;

	if (!loop || !sig || !fn || signo <= 0 || signo >= NSIG ||
	    signo == SIGKILL || signo == SIGSTOP)
		return -EINVAL;
	PROA__LOOP_CHECK(loop);
	if (loop->closed)
		return PROA_ECLOSED;
	if (sig->priv.loop)
		return -EBUSY;
	fresh = !sigismember(&loop->sig_mask, signo);
	if (fresh) {
		ret = watch(loop, signo);
		if (ret < 0)
			return ret;
	}
	if (proa_op_is_idle(&loop->sig_op)) {
		ret = arm(loop);
		if (ret < 0) {
			if (fresh)
				unwatch(loop, signo);
			return ret;
		}
	}
	sig->fn = fn;
	sig->data = data;
	sig->signo = signo;
	sig->priv.loop = loop;
	proa_list_add_tail(&loop->signals, &sig->priv.link);
	return 0;
}

int proa_signal_stop(struct proa_signal *sig)
{
	struct proa_loop *loop;

	if (!sig)
		return -EINVAL;
	loop = sig->priv.loop;
	if (!loop)
		return -ENOENT;
	PROA__LOOP_CHECK(loop);
	if (loop->sig_cursor == &sig->priv.link)
		loop->sig_cursor = sig->priv.link.next;
	proa_list_del(&sig->priv.link);
	sig->priv.loop = NULL;
	if (!watched_by_others(loop, sig->signo))
		unwatch(loop, sig->signo);
	if (proa_list_empty(&loop->signals))
		proa_op_cancel(&loop->sig_op);
	return 0;
}
