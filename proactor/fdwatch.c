/* SPDX-License-Identifier: MIT */
/*
 * proactor/fdwatch.c - level-triggered readiness watches on foreign
 * descriptors (proa/watch.h), built on the poll operation of both backends.
 *
 * A multishot poll reports changes, not states: io_uring posts a CQE when
 * the file's wait queue is woken, and the epoll backend is edge-triggered.
 * A watch turns that into "runs while the condition holds" by asking the
 * file itself after each callback (poll(2) with no timeout, one system
 * call): if the condition still holds, the watch queues itself to run again
 * in the next iteration, exactly as a level-triggered epoll would report it
 * again in its next wait.  Where the kernel has no multishot poll
 * (-EINVAL on the first arm, kernels before 5.13), each callback re-arms a
 * one-shot poll, which looks at the state when it is armed and so is
 * level-triggered by itself.
 *
 * Changing the events of an armed watch cancels its poll and arms a new one
 * when the old one's final completion is in.  A closed watch is freed when
 * its poll is idle, its requeue handle is not scheduled and no callback of
 * it is on the stack.
 *
 * Thread: loop, everything.
 */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "proa/watch.h"
#include "proactor_int.h"

#define WATCH_EVENTS                                                           \
	(PROA_WATCH_READABLE | PROA_WATCH_PRIORITY | PROA_WATCH_WRITABLE)
/* Always reported, as poll(2) does. */
#define WATCH_ALWAYS (POLLERR | POLLHUP)

_Static_assert(PROA_WATCH_READABLE == POLLIN, "PROA_WATCH_READABLE");
_Static_assert(PROA_WATCH_PRIORITY == POLLPRI, "PROA_WATCH_PRIORITY");
_Static_assert(PROA_WATCH_WRITABLE == POLLOUT, "PROA_WATCH_WRITABLE");

struct proa_fd_watch {
	struct proa_loop *loop;
	int fd;
	unsigned events; /* wanted; 0: stopped */
	unsigned armed;	 /* events of the poll in flight; 0: idle */
	proa_fd_watch_fn cb;
	void *arg;
	struct proa_op op;
	struct proa_handle again; /* runs the callback again (level) */
	uint64_t iter;		  /* the loop iteration of the last run */
	unsigned in_cb;		  /* callbacks of this watch on the stack */
	bool cancelling;	  /* the poll in flight was asked to stop */
	bool oneshot;		  /* no multishot poll: re-arm each time */
	bool seen;		  /* the poll has reported once */
	bool closed;
	dev_t dev; /* the file watched, for the debug check */
	ino_t ino;
};

static void on_poll(struct proa_op *op);

/*
 * Debug mode: the descriptor of an armed watch must still be the file it
 * was when the watch started.  A descriptor closed under the watch is a
 * bug that otherwise shows as a watch that never fires again (the kernel
 * polls the old file) or fires for a stranger's file under the same number.
 */
static void check_fd(struct proa_fd_watch *w, const char *where)
{
	struct stat st;

	if (proa__likely(!w->loop->sched.debug))
		return;
	if (fstat(w->fd, &st) == 0 && st.st_dev == w->dev &&
	    st.st_ino == w->ino)
		return;
	proa__log(PROA_LOG_ERROR,
		  "%s: descriptor %d was closed (or replaced) under an armed "
		  "fd watch; stop the watch before closing the descriptor",
		  where, w->fd);
	abort(); /* debug mode: the caller broke the documented rule */
}

static void settle(struct proa_fd_watch *w)
{
	if (w->closed && !w->in_cb && proa_op_is_idle(&w->op) &&
	    proa_handle_is_idle(&w->again))
		free(w);
}

static int arm(struct proa_fd_watch *w)
{
	int ret;

	if (!w->events || !proa_op_is_idle(&w->op))
		return 0;
	ret = proa_op_poll(w->loop, &w->op, w->fd, w->events,
			   w->oneshot ? 0 : PROA_POLL_MULTISHOT);
	if (ret < 0)
		return ret;
	w->armed = w->events;
	w->cancelling = false;
	return 0;
}

static void run_cb(struct proa_fd_watch *w, int revents)
{
	w->iter = w->loop->stats.iterations;
	w->in_cb++;
	w->cb(w, w->fd, revents, w->arg);
	w->in_cb--;
}

/* The watch failed (@err < 0): stopped, and its callback told. */
static void fail(struct proa_fd_watch *w, int err)
{
	w->events = 0;
	proa_handle_cancel(&w->again);
	run_cb(w, err);
}

static void run_again(void *arg);

/* Multishot: whether the condition still holds after a callback. */
static void recheck(struct proa_fd_watch *w)
{
	struct pollfd pfd = {.fd = w->fd, .events = (short)w->events};

	if (w->closed || !w->events || w->oneshot ||
	    !proa_handle_is_idle(&w->again))
		return;
	if (poll(&pfd, 1, 0) <= 0)
		return;
	if (pfd.revents & (w->events | WATCH_ALWAYS | POLLNVAL))
		proa_loop_call_soon(w->loop, &w->again, run_again, w);
}

static void deliver(struct proa_fd_watch *w, unsigned revents)
{
	revents &= w->events | WATCH_ALWAYS;
	if (w->closed || !revents)
		return;
	/* This report is newer than a queued one. */
	proa_handle_cancel(&w->again);
	check_fd(w, "proa_fd_watch");
	run_cb(w, (int)revents);
	recheck(w);
}

/* The condition held after the last callback: look again, and run. */
static void run_again(void *arg)
{
	struct proa_fd_watch *w = arg;
	struct pollfd pfd = {.fd = w->fd, .events = (short)w->events};

	if (!w->closed && w->events && w->iter == w->loop->stats.iterations) {
		/* Queued by a run from this iteration's completions, so the
		 * drain took it at once: once per iteration is the level
		 * rule (the drain is over, so this goes to the next one). */
		proa_loop_call_soon(w->loop, &w->again, run_again, w);
		return;
	}
	if (!w->closed && w->events) {
		if (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLNVAL))
			fail(w, -EBADF);
		else if (pfd.revents)
			deliver(w, (unsigned)pfd.revents);
	}
	settle(w);
}

static void on_poll(struct proa_op *op)
{
	struct proa_fd_watch *w =
	    proa_container_of(op, struct proa_fd_watch, op);
	bool more = op->flags & PROA_OP_F_MORE;
	int res = op->res;
	int ret;

	if (!more) {
		w->armed = 0;
		w->cancelling = false;
	}
	if (res >= 0) {
		w->seen = true;
		deliver(w, (unsigned)res);
	} else if (res == -EINVAL && !w->oneshot && !w->seen) {
		/* IORING_POLL_ADD_MULTI unknown (before 5.13): one-shot. */
		atomic_store_explicit(&proa__poll_no_multishot, true,
				      memory_order_relaxed);
		w->oneshot = true;
	} else if (res != -ECANCELED && !w->closed && w->events) {
		fail(w, res);
	}
	if (!more && !w->closed && w->events) {
		ret = arm(w);
		if (ret < 0)
			fail(w, ret);
	}
	settle(w);
}

int proa_fd_watch_start(struct proa_fd_watch **out, struct proa_loop *loop,
			int fd, unsigned events, proa_fd_watch_fn cb, void *arg)
{
	struct proa_fd_watch *w;
	struct stat st;
	int ret;

	if (!out || !loop || !cb || fd < 0 || (events & ~WATCH_EVENTS))
		return -EINVAL;
	PROA__LOOP_CHECK(loop);
	if (loop->closed)
		return PROA_ECLOSED;
	if (fstat(fd, &st) < 0)
		return -EBADF;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->loop = loop;
	w->fd = fd;
	w->events = events;
	w->cb = cb;
	w->arg = arg;
	w->op.cb = on_poll;
	w->dev = st.st_dev;
	w->ino = st.st_ino;
	w->oneshot = atomic_load_explicit(&proa__poll_no_multishot,
					  memory_order_relaxed);
	ret = arm(w);
	if (ret < 0) {
		free(w);
		return ret;
	}
	*out = w;
	return 0;
}

int proa_fd_watch_set(struct proa_fd_watch *w, unsigned events)
{
	if (!w || (events & ~WATCH_EVENTS) || w->closed)
		return -EINVAL;
	PROA__LOOP_CHECK(w->loop);
	if (w->events && !events)
		check_fd(w, "proa_fd_watch_stop");
	w->events = events;
	if (!events)
		proa_handle_cancel(&w->again);
	if (!proa_op_is_idle(&w->op)) {
		/* Re-armed with the new events by on_poll() once the old
		 * poll's final completion is in. */
		if (w->armed != events && !w->cancelling) {
			w->cancelling = true;
			proa_op_cancel(&w->op);
		}
		return 0;
	}
	return arm(w);
}

unsigned proa_fd_watch_events(const struct proa_fd_watch *w)
{
	return w ? w->events : 0;
}

int proa_fd_watch_stop(struct proa_fd_watch *w)
{
	return proa_fd_watch_set(w, 0);
}

void proa_fd_watch_close(struct proa_fd_watch *w)
{
	if (!w || w->closed)
		return;
	proa_fd_watch_set(w, 0);
	w->closed = true;
	settle(w);
}
