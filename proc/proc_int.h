/* SPDX-License-Identifier: MIT */
/*
 * proc/proc_int.h - private to proc/: what process.c asks of the clone
 * wrapper in spawn_child.c.
 */
#ifndef PROA_PROC_INT_H
#define PROA_PROC_INT_H

#include <sys/types.h>

/*
 * What the child does between clone and execve, all prepared by the parent
 * so that the child allocates nothing and takes no lock.
 */
struct proa__spawn_args {
	const char *const *paths; /* execve candidates, NULL-terminated */
	char *const *argv;
	char *const *envp;
	const char *cwd; /* or NULL */
	int stdio[3];	 /* the descriptor to become 0, 1, 2, or -1: keep */
	unsigned flags;	 /* PROA_SPAWN_* */
	pid_t pgid;
	uid_t uid;
	gid_t gid;
	/* Written by the child before it exits, if it could not exec: its
	 * errno (positive).  The parent reads it after clone returns
	 * (CLONE_VFORK: the child has exec'd or exited by then). */
	int err;
};

/*
 * Clone the child (CLONE_VM | CLONE_VFORK | CLONE_PIDFD, no exit signal)
 * with every signal blocked in the calling thread meanwhile, and wait until
 * it has exec'd or failed.  Return: the pid, with *@pidfd set; or -errno
 * from clone (then there is no child).  @a->err says whether exec worked.
 */
pid_t proa__spawn_clone(struct proa__spawn_args *a, int *pidfd);

#endif /* PROA_PROC_INT_H */
