/* SPDX-License-Identifier: MIT */
/*
 * proa/watch.h - readiness watches on descriptors proa does not own: the
 * sockets of a library that brings its own (c-ares, libpq, ZeroMQ), a
 * pipe, a device.  asyncio's add_reader()/add_writer(), libuv's uv_poll.
 *
 * A watch is level-triggered ("edge-free"): while it is armed for a
 * condition and the condition holds, its callback runs, once per loop
 * iteration, with no need to drain the descriptor first.  It may also run,
 * rarely, when the condition has just ended (readiness is a hint, as with
 * epoll): use non-blocking descriptors.
 *
 *   start --> ARMED (events != 0) --set(0) / stop--> STOPPED --set(ev)--> ARMED
 *   any --close--> (freed once the kernel lets go of it)
 *
 * Underneath: one multishot poll (IORING_OP_POLL_ADD with
 * IORING_POLL_ADD_MULTI) per armed watch on io_uring, a one-shot poll
 * re-armed after each callback where the kernel has no multishot poll,
 * and the epoll registration of the descriptor on the epoll backend.
 *
 * The descriptor stays the caller's: a watch never closes it.  Stop (or
 * close) the watch before closing the descriptor; the kernel would keep
 * polling the old file under the old watch, and a new file given the same
 * number would never be seen.  In debug mode (PROA_DEBUG=1) a watch whose
 * descriptor was closed or replaced under it is logged and aborts: on
 * io_uring when it next fires, on epoll (whose set drops a closed
 * descriptor silently) when it is stopped or closed.
 */
#ifndef PROA_WATCH_H
#define PROA_WATCH_H

#include "base.h"
#include "loop.h"

#ifdef __cplusplus
extern "C" {
#endif

struct proa_fd_watch;

/* Conditions a watch waits for; POLLIN, POLLOUT, POLLPRI of <poll.h>. */
#define PROA_WATCH_READABLE 0x001u /* POLLIN */
#define PROA_WATCH_PRIORITY 0x002u /* POLLPRI */
#define PROA_WATCH_WRITABLE 0x004u /* POLLOUT */

/*
 * The callback of a watch.  @revents is the poll(2) mask that holds
 * (POLLIN, POLLOUT, POLLPRI, and POLLERR and POLLHUP, which are always
 * reported), or a negative errno when the watch failed (-EBADF: the
 * descriptor is not open); a failed watch is stopped before its callback
 * runs.  The callback may call set(), stop() and close() on @w (and on
 * other watches).
 */
typedef void (*proa_fd_watch_fn)(struct proa_fd_watch *w, int fd, int revents,
				 void *arg);

/**
 * proa_fd_watch_start() - watch @fd for @events on @loop.
 * @out:    receives the watch.
 * @loop:   the loop whose thread runs @cb.
 * @fd:     an open descriptor; borrowed, never closed by the watch.
 * @events: PROA_WATCH_* bits; 0 makes a stopped watch.
 * @cb:     called on the loop thread while a condition of @events holds.
 * @arg:    passed to @cb.
 *
 * Return: 0; -EINVAL (NULL @out, @loop or @cb, @fd < 0, unknown bits in
 *         @events); -ENOMEM; -EOPNOTSUPP if the loop cannot poll.  On error
 *         *@out is untouched and @cb never runs.
 * Thread: loop.
 */
PROA_API int proa_fd_watch_start(struct proa_fd_watch **out,
				 struct proa_loop *loop, int fd,
				 unsigned events, proa_fd_watch_fn cb,
				 void *arg);

/**
 * proa_fd_watch_set() - change the conditions of @w to @events (0 stops
 * it; non-zero re-arms a stopped watch).  From the return on, @cb runs
 * only for @events.
 *
 * Return: 0; -EINVAL on unknown bits; -ENOMEM.
 * Thread: loop.
 */
PROA_API int proa_fd_watch_set(struct proa_fd_watch *w, unsigned events);

/**
 * proa_fd_watch_events() - the conditions @w is armed for (0: stopped).
 * Thread: loop.
 */
PROA_API unsigned proa_fd_watch_events(const struct proa_fd_watch *w);

/**
 * proa_fd_watch_stop() - proa_fd_watch_set(@w, 0): the callback does not
 * run again until the watch is re-armed.  The descriptor may be closed as
 * soon as this returns.
 *
 * Return: 0.
 * Thread: loop.
 */
PROA_API int proa_fd_watch_stop(struct proa_fd_watch *w);

/**
 * proa_fd_watch_close() - stop @w and release it.  @w is invalid on
 * return (its memory goes once the kernel has let go of it, which
 * proa_loop_close() waits for: it returns -EBUSY until the loop has run
 * once more).  The descriptor may be closed as soon as this returns.
 * NULL is fine.
 * Thread: loop.
 */
PROA_API void proa_fd_watch_close(struct proa_fd_watch *w);

#ifdef __cplusplus
}
#endif

#endif /* PROA_WATCH_H */
