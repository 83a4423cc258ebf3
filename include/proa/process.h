/* SPDX-License-Identifier: MIT */
/*
 * proa/process.h - child processes: spawn, signal, wait for the exit as a
 * callback or a future, on the loop thread.
 *
 * A child is started with clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD) and
 * held by its pidfd: signals go through pidfd_send_signal(), so a pid the
 * kernel gave to another process meanwhile is never hit.  Its exit arrives
 * as a completion - IORING_OP_WAITID where the kernel has it, else a poll
 * on the pidfd followed by waitid(P_PIDFD) - never through SIGCHLD (the
 * children are made with no exit signal at all, so a SIGCHLD handler or a
 * waitpid(-1) of the application neither sees nor steals them) and never
 * through a reaper thread.  No path leaves a zombie: a failed exec is
 * reaped inside proa_spawn(), a closed process is killed and reaped by the
 * loop, and proa_loop_cancel_all() kills and reaps what is still running.
 * docs/processes.md has the whole contract, fork() included.
 *
 * Process states:
 *
 *   proa_spawn() --> RUNNING --(exit reaped)--> EXITED: on_exit, futures
 *   RUNNING --proa_process_close()--> SIGKILL; reaped by the loop, freed
 *   RUNNING --proa_loop_cancel_all()--> SIGKILL --> EXITED (signal 9)
 *   EXITED --proa_process_close()--> freed (once the pidfd is closed)
 *
 * Every function is "Thread: loop" of the loop the process was spawned on.
 */
#ifndef PROA_PROCESS_H
#define PROA_PROCESS_H

#include <sys/types.h>

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

struct proa_future;
struct proa_protocol;
struct proa_transport;
struct proa_transport_options;

/* A child process.  Opaque: made by proa_spawn(), freed by
 * proa_process_close(). */
struct proa_process;

/* What one of the child's descriptors 0, 1, 2 is. */
enum proa_stdio_kind {
	PROA_STDIO_INHERIT = 0, /* the parent's descriptor of that number */
	PROA_STDIO_PIPE,	/* a new pipe; the parent's end: stdio_fd() */
	PROA_STDIO_DEVNULL,	/* /dev/null, opened read-write */
	PROA_STDIO_FD,		/* the descriptor @fd (the same for several
				 * slots is fine: a socket as 0, 1 and 2) */
};

struct proa_stdio {
	enum proa_stdio_kind kind;
	int fd; /* PROA_STDIO_FD: borrowed for the call only */
};

/* proa_spawn_opts.flags */
#define PROA_SPAWN_SETSID (1U << 0)  /* a new session (setsid(2)) */
#define PROA_SPAWN_SETPGID (1U << 1) /* process group @pgid (0: its own) */
#define PROA_SPAWN_SETUID (1U << 2)  /* setuid(@uid) */
#define PROA_SPAWN_SETGID (1U << 3)  /* setgid(@gid), no supplementary */
/* Close every descriptor above 2 in the child, also those the parent
 * made without O_CLOEXEC (close_range(2); Linux 5.11). */
#define PROA_SPAWN_CLOSE_FDS (1U << 4)

/*
 * proa_process_exit_fn - the child was reaped.  @exit_code is its exit
 * status (0..255) if it exited, else -1; @term_signal the signal that ended
 * it, else 0.  Runs once, on the loop thread, unless the process was closed
 * first; the process may be closed inside.
 */
typedef void (*proa_process_exit_fn)(struct proa_process *p, int exit_code,
				     int term_signal, void *arg);

/*
 * struct proa_spawn_opts - what proa_spawn() runs and how; zero what you do
 * not use.  Everything is borrowed for the call only.
 */
struct proa_spawn_opts {
	/* The program: a path, or a name without '/' looked up in the PATH
	 * of @envp (or of the parent's environment if @envp has none; the
	 * default path if neither has).  NULL: argv[0]. */
	const char *file;
	char *const *argv; /* NULL-terminated, argv[0] present; required */
	char *const *envp; /* NULL-terminated; NULL: the parent's environ */
	const char *cwd;   /* NULL: the parent's */
	struct proa_stdio stdio[3];
	unsigned flags;		      /* PROA_SPAWN_* */
	pid_t pgid;		      /* with PROA_SPAWN_SETPGID */
	uid_t uid;		      /* with PROA_SPAWN_SETUID */
	gid_t gid;		      /* with PROA_SPAWN_SETGID */
	proa_process_exit_fn on_exit; /* may be NULL */
	void *arg;		      /* for @on_exit */
	/* Must be zero: room for fields a later 0.x adds without changing
	 * the size (README, "ABI"); nonzero is -EINVAL. */
	uint64_t reserved[4];
};

/**
 * proa_spawn() - start a child process.
 * @out:  receives the process; untouched on error.
 * @loop: the loop its exit is delivered on.
 * @opts: what to run (borrowed for the call).
 *
 * The calling thread waits until the child has called execve(2) (or failed
 * to): tens to hundreds of microseconds, the time of a vfork.  Between
 * clone and execve the child makes raw system calls only, in this order:
 * setsid/setpgid, descriptors 0-2 put in place, chdir, setgroups/setgid/
 * setuid, every signal handler back to SIG_DFL and the signal mask
 * emptied, close_range, execve.  The parent's descriptors are inherited
 * unless they are O_CLOEXEC (or PROA_SPAWN_CLOSE_FDS).
 *
 * If any of these fails, the child's errno is returned (-ENOENT for a
 * missing program, -EACCES for one not executable, -ENOTDIR for a bad
 * @cwd, -EPERM for a uid change not permitted, ...) and the child, which
 * never ran the program, has been reaped: no zombie, no descriptor left.
 *
 * Pipes (PROA_STDIO_PIPE): both ends are in blocking mode, as pipe2(2)
 * makes them, and the parent's is O_CLOEXEC.  Leave it so for the loop's
 * operations: io_uring waits for a blocking pipe without blocking the loop
 * (some kernels answer -EAGAIN on an O_NONBLOCK one; 6.x waits there too),
 * and the epoll backend makes it non-blocking itself.  The parent's end
 * belongs to the process until taken with proa_process_take_stdio() or
 * wrapped with proa_process_stdio_transport() (it is closed by
 * proa_process_close() otherwise).  Slot 0 is the write end (the child's
 * stdin), 1 and 2 read ends.
 *
 * Return: 0; -EINVAL (NULL arguments, no argv[0], nonzero reserved, bad
 *         stdio kind or negative fd); the child's errno as above;
 *         -ENOMEM, -EMFILE, -EAGAIN (fork limits) from the parent's side;
 *         PROA_ECLOSED after proa_loop_close().
 * Thread: loop.
 */
PROA_API int proa_spawn(struct proa_process **out, struct proa_loop *loop,
			const struct proa_spawn_opts *opts);

/**
 * proa_process_pid() - the child's process id (stays the same after exit).
 * Thread: loop.
 */
PROA_API pid_t proa_process_pid(const struct proa_process *p);

/**
 * proa_process_pidfd() - the child's pidfd, owned by the process; -1 once
 * the child has been reaped.  For poll or pidfd_getfd(); do not close it,
 * and do not waitid() on it: the loop reaps the child.
 * Thread: loop.
 */
PROA_API int proa_process_pidfd(const struct proa_process *p);

/**
 * proa_process_stdio_fd() - the parent's end of pipe @i (0, 1, 2), or -1 if
 * slot @i is not a pipe or was taken.  Still owned by the process, which
 * closes it in proa_process_close(): operations on it end before then.
 * Thread: loop.
 */
PROA_API int proa_process_stdio_fd(const struct proa_process *p, int i);

/**
 * proa_process_take_stdio() - take the parent's end of pipe @i: from now on
 * the caller closes it (close it to give the child EOF on its stdin).
 * Return: the descriptor, or -EBADF if there is none (taken already, or
 *         not a pipe), -EINVAL for @i outside 0..2.
 * Thread: loop.
 */
PROA_API int proa_process_take_stdio(struct proa_process *p, int i);

/**
 * proa_process_stdio_transport() - the parent's end of pipe @i as a pipe
 * transport (proa_pipe_open(), proa/net.h): slot 0, the child's stdin, a
 * write-only one; 1 and 2 read-only ones.  The transport owns the
 * descriptor from then on (as after proa_process_take_stdio()), and
 * outlives the process if need be: closing the process does not close it.
 * Killing the child ends a transport writing to its stdin at the next
 * write (connection_lost(-EPIPE); see proa_pipe_open() on SIGPIPE) and
 * one reading its stdout with EOF once every holder of the pipe's write
 * end is gone.
 * @opt, @proto: as proa_pipe_open()'s; connection_made runs inside.
 * Return: 0 and *@out; -EBADF if slot @i has no pipe (or it was taken);
 *         -EINVAL; proa_pipe_open()'s errors, and then the descriptor is
 *         still the process's.
 * Thread: loop.
 */
PROA_API int proa_process_stdio_transport(
    struct proa_transport **out, struct proa_process *p, int i,
    const struct proa_transport_options *opt, struct proa_protocol *proto);

/**
 * proa_process_kill() - send @sig to the child through its pidfd.
 * Return: 0 (also for a child that has exited but whose exit the loop has
 *         not delivered yet: the kernel drops the signal); -ESRCH once the
 *         exit was delivered (the process is gone); -EINVAL for a bad
 *         signal; -EPERM.
 * Thread: loop.
 */
PROA_API int proa_process_kill(struct proa_process *p, int sig);

/**
 * proa_process_status() - how the child ended, once it has.
 * @exit_code, @term_signal: as proa_process_exit_fn (may be NULL).
 * Return: 0 if it exited (its exit was delivered); PROA_EPENDING while it
 *         runs; the -errno of a wait that failed (-ECHILD: someone else
 *         reaped it).
 * Thread: loop.
 */
PROA_API int proa_process_status(const struct proa_process *p, int *exit_code,
				 int *term_signal);

/**
 * proa_process_wait() - resolve @fut when the child exits.
 * @fut: an initialised pending future of the process's loop.
 *
 * @fut's result is the wait status as waitpid(2) gives it (>= 0: use
 * WIFEXITED(), WEXITSTATUS(), WIFSIGNALED(), WTERMSIG() on it), or -errno
 * if waiting failed.  A process already exited resolves @fut at once (its
 * callbacks run later, as always).  Cancelling @fut stops the wait, not the
 * child.  proa_process_close() cancels a future still waiting.
 *
 * Return: 0; -EBUSY if a future is already waiting, @fut is not pending
 *         or has a canceller (another piece of work's, as a combinator's
 *         output); -EINVAL for NULLs or a future of another loop.
 * Thread: loop.
 */
PROA_API int proa_process_wait(struct proa_process *p, struct proa_future *fut);

/**
 * proa_process_close() - let go of @p.
 *
 * Closes the pipe ends not taken and cancels a waiting future; on_exit
 * will not run any more.  An operation of the caller's on a pipe end not
 * taken (proa_process_stdio_fd()) must be over or cancelled first: as for
 * any descriptor, it is not closed under an operation (docs/architecture.md,
 * rule 6).  Take the end, or wrap it in a transport, to keep reading
 * after the close.  A child still running is sent SIGKILL and reaped
 * by the loop (its exit is not reported): closing never detaches a child
 * and never leaves a zombie.  The memory is freed once the child is reaped
 * and its pidfd closed, so proa_loop_close() returns -EBUSY until the loop
 * has run that far (proa_loop_run(PROA_RUN_DEFAULT) returns then).
 *
 * Return: 0, or -EINVAL for NULL.  @p must not be used afterwards.
 * Thread: loop.
 */
PROA_API int proa_process_close(struct proa_process *p);

#ifdef __cplusplus
}
#endif

#endif /* PROA_PROCESS_H */
