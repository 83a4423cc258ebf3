/* SPDX-License-Identifier: MIT */
/*
 * proc/spawn_child.c - the clone and what the child runs before execve.
 *
 * The child is made with CLONE_VM | CLONE_VFORK: it runs on a small stack in
 * the parent's frame, in the parent's memory, while the parent thread is
 * suspended until the child execs or exits.  That is what makes spawning
 * cheap (no page tables copied, as posix_spawn does), and it is why the
 * child may do so little:
 *  - only raw system calls (syscall(2)): no malloc, no stdio, no lock, no
 *    libc function that keeps state, since all of that is the parent's;
 *  - no signal handler may run in it (a handler of the parent would run
 *    on the parent's data): the parent blocks every signal around the
 *    clone, and the child sets every handler to SIG_DFL before it empties
 *    the mask;
 *  - it writes one thing to shared memory, @a->err, when it cannot exec.
 * This file is built without sanitizers (proc/CMakeLists.txt): their
 * run-time bookkeeping is per thread, and the child would write the
 * parent thread's.
 *
 * The child is made with exit signal 0 rather than SIGCHLD: nobody gets a
 * SIGCHLD, a SIG_IGN on SIGCHLD does not reap it behind our back, and a
 * waitpid(-1) elsewhere in the program does not see it (it takes __WALL,
 * which process.c passes, to wait for such a child).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "proa/process.h"
#include "proc/proc_int.h"

/* The child's stack: execve runs in the kernel, and the code before it is
 * a few frames of raw calls. */
#define CHILD_STACK 16384

/* The kernel's struct sigaction (x86-64, arm64 and the other
 * asm-generic layouts), for rt_sigaction without libc's wrapper. */
struct ksigaction {
	void (*handler)(int);
	unsigned long flags;
	void (*restorer)(void);
	uint64_t mask;
};

static int fail(struct proa__spawn_args *a, int err)
{
	a->err = err;
	syscall(SYS_exit_group, 127);
	return 127; /* not reached */
}

/* Put the descriptors in place.  A source that is itself 0, 1 or 2 (and
 * not already where it goes) is first copied above 2, so that moving one
 * slot cannot clobber the source of another (0 and 1 swapped, say).  The
 * copies are close-on-exec. */
static int setup_stdio(struct proa__spawn_args *a)
{
	int src[3];
	long r;
	int i;

	for (i = 0; i < 3; i++) {
		src[i] = a->stdio[i];
		if (src[i] >= 0 && src[i] < 3 && src[i] != i) {
			r = syscall(SYS_fcntl, src[i], F_DUPFD_CLOEXEC, 3);
			if (r < 0)
				return errno;
			src[i] = (int)r;
		}
	}
	for (i = 0; i < 3; i++) {
		if (src[i] < 0)
			continue;
		/* dup3 refuses equal descriptors; one already in place only
		 * loses its close-on-exec flag. */
		if (src[i] == i)
			r = syscall(SYS_fcntl, i, F_SETFD, 0);
		else
			r = syscall(SYS_dup3, src[i], i, 0);
		if (r < 0)
			return errno;
	}
	return 0;
}

static int setup_ids(struct proa__spawn_args *a)
{
	if ((a->flags & PROA_SPAWN_SETGID) &&
	    (syscall(SYS_setgroups, 0, NULL) < 0 ||
	     syscall(SYS_setgid, a->gid) < 0))
		return errno;
	/* Raw setuid: glibc's would signal every thread of the "process"
	 * to change theirs, and those are the parent's. */
	if ((a->flags & PROA_SPAWN_SETUID) && syscall(SYS_setuid, a->uid) < 0)
		return errno;
	return 0;
}

/* Every handler to SIG_DFL (exec would do it, but a signal unblocked
 * before exec must not run the parent's handler here), ignored ones
 * too (a child should not inherit SIGPIPE ignored), then an empty mask. */
static void reset_signals(void)
{
	struct ksigaction dfl = {0};
	uint64_t none = 0;
	int sig;

	for (sig = 1; sig < 65; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof(uint64_t));
	}
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof(uint64_t));
}

/* execve each candidate in turn, as execvp(3) searches PATH: a missing
 * file goes on to the next; EACCES is remembered and goes on; any other
 * error stops.  Return: the errno to report. */
static int exec_paths(struct proa__spawn_args *a)
{
	bool eacces = false;
	int err = ENOENT;

	for (const char *const *p = a->paths; *p; p++) {
		syscall(SYS_execve, *p, a->argv, a->envp);
		err = errno;
		if (err == EACCES)
			eacces = true;
		else if (err != ENOENT && err != ENOTDIR && err != ESTALE &&
			 err != ENODEV && err != ETIMEDOUT)
			return err;
	}
	return eacces ? EACCES : err;
}

static int child(void *arg)
{
	struct proa__spawn_args *a = arg;
	int err;

	if ((a->flags & PROA_SPAWN_SETSID) && syscall(SYS_setsid) < 0)
		return fail(a, errno);
	if ((a->flags & PROA_SPAWN_SETPGID) &&
	    syscall(SYS_setpgid, 0, a->pgid) < 0)
		return fail(a, errno);
	err = setup_stdio(a);
	if (err)
		return fail(a, err);
	if (a->cwd && syscall(SYS_chdir, a->cwd) < 0)
		return fail(a, errno);
	err = setup_ids(a);
	if (err)
		return fail(a, err);
	if ((a->flags & PROA_SPAWN_CLOSE_FDS) &&
	    syscall(SYS_close_range, 3, ~0U, 0) < 0)
		return fail(a, errno);
	reset_signals();
	return fail(a, exec_paths(a));
}

pid_t proa__spawn_clone(struct proa__spawn_args *a, int *pidfd)
{
	_Alignas(64) char stack[CHILD_STACK];
	sigset_t all, old;
	pid_t pid;
	int err;

	a->err = 0;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid = clone(child, stack + sizeof(stack),
		    CLONE_VM | CLONE_VFORK | CLONE_PIDFD, a, pidfd);
	err = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return pid < 0 ? -err : pid;
}
