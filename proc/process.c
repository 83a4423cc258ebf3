/* SPDX-License-Identifier: MIT */
/*
 * proc/process.c - child processes on the loop (proa/process.h).
 *
 * A process holds one op, reused through its life:
 *
 *   WAITING: IORING_OP_WAITID on the pidfd (PROA_FEAT_OP_WAITID), or a poll
 *            of the pidfd for POLLIN (the child exited) followed by
 *            waitid(P_PIDFD, WNOHANG) in the callback, where the ring has
 *            no waitid (the epoll backend, kernels before 6.7).
 *   CLOSING: the child is reaped; the pidfd closes through the loop
 *            (proa_op_close), so that the epoll backend forgets its entry:
 *            before Linux 6.9 every pidfd has the same inode, and a number
 *            closed behind its back and reused by the next child's pidfd
 *            would look like the same, still registered, file.
 *   DONE:    nothing in flight; freed here if the user closed it.
 *
 * The op is a user op, so proa_loop_close() refuses while a child is not
 * reaped, and proa_loop_cancel_all() reaches it: a wait cancelled that way
 * kills the child (SIGKILL through the pidfd) and waits again, so a loop
 * wound down leaves no zombie.  proa_process_close() on a running child
 * does the same, without telling anyone.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proa/net.h"
#include "proa/process.h"
#include "proactor/proactor_int.h"
#include "proc/proc_int.h"

enum proc_state {
	PROC_WAITING = 0,
	PROC_CLOSING,
	PROC_DONE,
};

struct proa_process {
	struct proa_loop *loop;
	struct proa_op op;
	siginfo_t info; /* the kernel's until op's callback (waitid) */
	pid_t pid;
	int pidfd;
	int stdio[3]; /* the parent's pipe ends, or -1 */
	uint8_t state;
	bool closed;  /* proa_process_close() was called */
	bool exited;  /* the exit was reaped (or waiting failed) */
	bool waitid;  /* op is IORING_OP_WAITID, not a poll */
	int wait_res; /* 0, or -errno of a failed wait */
	int status;   /* wait status, as waitpid(2) */
	proa_process_exit_fn on_exit;
	void *arg;
	struct proa_future *waiter;
};

/* The options every wait of ours uses: exit only, and __WALL because the
 * children have no exit signal (spawn_child.c). */
#define WAIT_OPTS (WEXITED | __WALL)

static int pidfd_kill(int pidfd, int sig)
{
	return syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0 ? -errno
								       : 0;
}

/* Reap a child that is sure to end now (exec failed; or killed with
 * SIGKILL when the loop cannot wait for it), blocking. */
static void reap_blocking(int pidfd, siginfo_t *info)
{
	memset(info, 0, sizeof(*info));
	while (waitid(P_PIDFD, (id_t)pidfd, info, WAIT_OPTS) < 0 &&
	       errno == EINTR)
		;
}

static int arm_wait(struct proa_process *p)
{
	memset(&p->info, 0, sizeof(p->info));
	p->waitid = proa_loop_feature(p->loop, PROA_FEAT_OP_WAITID);
	if (p->waitid)
		return proa__op_waitid(p->loop, &p->op, p->pidfd, &p->info,
				       WAIT_OPTS);
	return proa_op_poll(p->loop, &p->op, p->pidfd, POLLIN, 0);
}

static int status_of(const siginfo_t *si)
{
	switch (si->si_code) {
	case CLD_EXITED:
		return (si->si_status & 0xff) << 8;
	case CLD_DUMPED:
		return (si->si_status & 0x7f) | 0x80;
	default: /* CLD_KILLED */
		return si->si_status & 0x7f;
	}
}

static void close_stdio(struct proa_process *p)
{
	for (int i = 0; i < 3; i++) {
		if (p->stdio[i] >= 0)
			close(p->stdio[i]);
		p->stdio[i] = -1;
	}
}

static void wait_cancel(struct proa_future *fut, void *arg)
{
	struct proa_process *p = arg;

	p->waiter = NULL;
	proa_future_set_canceller(fut, NULL, NULL);
	proa_future_set_result(fut, -ECANCELED, NULL);
}

static int result_of(const struct proa_process *p)
{
	return p->wait_res < 0 ? p->wait_res : p->status;
}

/* The pidfd's close completed (or could not be sent to the loop). */
static void closed_fd(struct proa_process *p)
{
	p->pidfd = -1;
	p->state = PROC_DONE;
	if (p->closed)
		free(p);
}

static void start_close(struct proa_process *p)
{
	p->state = PROC_CLOSING;
	if (proa_op_close(p->loop, &p->op, p->pidfd) < 0) {
		close(p->pidfd);
		closed_fd(p);
	}
}

/* The child is reaped (or waiting failed with @res): record it, close the
 * pidfd, tell the user.  @p may be freed when this returns. */
static void exited(struct proa_process *p, int res)
{
	proa_process_exit_fn fn = p->on_exit;
	void *arg = p->arg;
	bool tell = !p->closed && fn;
	int code = -1;
	int sig = 0;

	p->exited = true;
	p->wait_res = res < 0 ? res : 0;
	if (res >= 0) {
		p->status = status_of(&p->info);
		if (WIFEXITED(p->status))
			code = WEXITSTATUS(p->status);
		else
			sig = WTERMSIG(p->status);
	}
	if (p->waiter) {
		struct proa_future *fut = p->waiter;

		p->waiter = NULL;
		proa_future_set_canceller(fut, NULL, NULL);
		proa_future_set_result(fut, result_of(p), NULL);
	}
	/* Before the callback, which may close @p (freed at once if the
	 * close below could not be queued). */
	start_close(p);
	if (tell)
		fn(p, code, sig, arg);
}

static void op_done(struct proa_op *op)
{
	struct proa_process *p = proa_container_of(op, struct proa_process, op);
	int res = op->res;

	if (p->state == PROC_CLOSING) {
		/* A close cancelled before it reached the kernel did not
		 * happen: send it again. */
		if (res == -ECANCELED &&
		    proa_op_close(p->loop, op, p->pidfd) == 0)
			return;
		if (res == -ECANCELED)
			close(p->pidfd);
		closed_fd(p);
		return;
	}
	if (res == -ECANCELED) {
		/* proa_loop_cancel_all(): the loop is winding down and must
		 * not leave the child behind.  Kill it and wait again. */
		pidfd_kill(p->pidfd, SIGKILL);
		if (arm_wait(p) == 0)
			return;
		reap_blocking(p->pidfd, &p->info);
		exited(p, 0);
		return;
	}
	if (!p->waitid && res >= 0) {
		/* The pidfd polled readable: the child has exited. */
		memset(&p->info, 0, sizeof(p->info));
		res = waitid(P_PIDFD, (id_t)p->pidfd, &p->info,
			     WAIT_OPTS | WNOHANG) < 0
			  ? -errno
			  : 0;
	}
	if (res == 0 && p->info.si_pid == 0) {
		/* Not exited after all (WNOHANG found nothing): wait on. */
		res = arm_wait(p);
		if (res == 0)
			return;
	}
	exited(p, res);
}

static int check_opts(const struct proa_spawn_opts *o)
{
	if (!o->argv || !o->argv[0])
		return -EINVAL;
	for (size_t i = 0; i < sizeof(o->reserved) / sizeof(o->reserved[0]);
	     i++) {
		if (o->reserved[i])
			return -EINVAL;
	}
	if (o->flags &
	    ~(PROA_SPAWN_SETSID | PROA_SPAWN_SETPGID | PROA_SPAWN_SETUID |
	      PROA_SPAWN_SETGID | PROA_SPAWN_CLOSE_FDS))
		return -EINVAL;
	for (int i = 0; i < 3; i++) {
		switch (o->stdio[i].kind) {
		case PROA_STDIO_INHERIT:
		case PROA_STDIO_PIPE:
		case PROA_STDIO_DEVNULL:
			break;
		case PROA_STDIO_FD:
			if (o->stdio[i].fd < 0)
				return -EBADF;
			break;
		default:
			return -EINVAL;
		}
	}
	return 0;
}

/* The PATH the child's program is looked up in: @envp's, else ours. */
static const char *search_path(char *const *envp)
{
	const char *path;

	if (envp) {
		for (char *const *e = envp; *e; e++) {
			if (strncmp(*e, "PATH=", 5) == 0)
				return *e + 5;
		}
	}
	/* Read-only, as execvp(3) does; proa never calls setenv. */
	path = getenv("PATH"); /* NOLINT(concurrency-mt-unsafe) */
	return path ? path : "/bin:/usr/bin";
}

/*
 * The execve candidates, in one allocation: @file itself if it has a '/',
 * else each directory of the PATH joined with it ("" is the current
 * directory), as execvp(3).  The child walks the list without allocating.
 */
static const char **exec_candidates(const char *file, char *const *envp)
{
	const char *path = search_path(envp);
	size_t flen = strlen(file);
	size_t n = 1;
	const char **v;
	char *s;

	if (strchr(file, '/') || !*file) {
		v = malloc(2 * sizeof(*v));
		if (v) {
			v[0] = file;
			v[1] = NULL;
		}
		return v;
	}
	for (const char *c = path; *c; c++)
		n += *c == ':';
	v = malloc((n + 1) * sizeof(*v) + strlen(path) + n * (flen + 3));
	if (!v)
		return NULL;
	s = (char *)(v + n + 1);
	n = 0;
	for (const char *d = path;; d++) {
		const char *end = strchrnul(d, ':');
		size_t dlen = (size_t)(end - d);

		v[n++] = s;
		if (dlen == 0) {
			*s++ = '.';
		} else {
			memcpy(s, d, dlen);
			s += dlen;
		}
		*s++ = '/';
		memcpy(s, file, flen + 1);
		s += flen + 1;
		d = end;
		if (!*d)
			break;
	}
	v[n] = NULL;
	return v;
}

/* The descriptors of the child's slots; the parent's pipe ends go to @p.
 * @close_after: what the parent closes once the child has them. */
static int prepare_stdio(struct proa_process *p,
			 const struct proa_spawn_opts *o,
			 struct proa__spawn_args *a, int close_after[4])
{
	int devnull = -1;
	int fds[2];

	for (int i = 0; i < 3; i++) {
		a->stdio[i] = -1;
		switch (o->stdio[i].kind) {
		case PROA_STDIO_FD:
			a->stdio[i] = o->stdio[i].fd;
			break;
		case PROA_STDIO_DEVNULL:
			if (devnull < 0) {
				devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
				if (devnull < 0)
					return -errno;
				close_after[3] = devnull;
			}
			a->stdio[i] = devnull;
			break;
		case PROA_STDIO_PIPE:
			if (pipe2(fds, O_CLOEXEC) < 0)
				return -errno;
			/* Slot 0 is the child's stdin: it reads. */
			a->stdio[i] = fds[i == 0 ? 0 : 1];
			p->stdio[i] = fds[i == 0 ? 1 : 0];
			close_after[i] = a->stdio[i];
			break;
		default:
			break;
		}
	}
	return 0;
}

int proa_spawn(struct proa_process **out, struct proa_loop *loop,
	       const struct proa_spawn_opts *opts)
{
	struct proa__spawn_args a = {0};
	int close_after[4] = {-1, -1, -1, -1};
	struct proa_process *p;
	const char **paths = NULL;
	int ret;

	if (!out || !loop || !opts)
		return -EINVAL;
	PROA__LOOP_CHECK_AS(loop, __func__);
	if (loop->closed)
		return PROA_ECLOSED;
	ret = check_opts(opts);
	if (ret < 0)
		return ret;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->loop = loop;
	p->pidfd = -1;
	for (int i = 0; i < 3; i++)
		p->stdio[i] = -1;
	ret = prepare_stdio(p, opts, &a, close_after);
	if (ret < 0)
		goto err_close;
	paths = exec_candidates(opts->file ? opts->file : opts->argv[0],
				opts->envp);
	if (!paths) {
		ret = -ENOMEM;
		goto err_close;
	}
	a.paths = paths;
	a.argv = opts->argv;
	a.envp = opts->envp ? opts->envp : environ;
	a.cwd = opts->cwd;
	a.flags = opts->flags;
	a.pgid = opts->pgid;
	a.uid = opts->uid;
	a.gid = opts->gid;
	ret = proa__spawn_clone(&a, &p->pidfd);
	if (ret < 0)
		goto err_close;
	p->pid = ret;
	if (a.err) {
		/* The child never ran the program and has exited (vfork
		 * returned): reap it here, so that no zombie is left. */
		reap_blocking(p->pidfd, &p->info);
		ret = -a.err;
		goto err_close;
	}
	proa_op_init(&p->op, op_done, p);
	ret = arm_wait(p);
	if (ret < 0) {
		pidfd_kill(p->pidfd, SIGKILL);
		reap_blocking(p->pidfd, &p->info);
		goto err_close;
	}
	for (int i = 0; i < 4; i++) {
		if (close_after[i] >= 0)
			close(close_after[i]);
	}
	free(paths);
	p->on_exit = opts->on_exit;
	p->arg = opts->arg;
	*out = p;
	return 0;
err_close:
	for (int i = 0; i < 4; i++) {
		if (close_after[i] >= 0)
			close(close_after[i]);
	}
	if (p->pidfd >= 0)
		close(p->pidfd);
	close_stdio(p);
	free(paths);
	free(p);
	return ret;
}

pid_t proa_process_pid(const struct proa_process *p)
{
	return p ? p->pid : -1;
}

int proa_process_pidfd(const struct proa_process *p)
{
	return p && !p->exited ? p->pidfd : -1;
}

int proa_process_stdio_fd(const struct proa_process *p, int i)
{
	if (!p || i < 0 || i > 2)
		return -1;
	return p->stdio[i];
}

/* The parent's end of pipe @i, still the process's; -EINVAL, -EBADF.
 * @func: the public call, for the wrong-thread message. */
static int stdio_slot(struct proa_process *p, int i, const char *func)
{
	if (!p || i < 0 || i > 2)
		return -EINVAL;
	PROA__LOOP_CHECK_AS(p->loop, func);
	return p->stdio[i] < 0 ? -EBADF : p->stdio[i];
}

int proa_process_take_stdio(struct proa_process *p, int i)
{
	int fd = stdio_slot(p, i, __func__);

	if (fd >= 0)
		p->stdio[i] = -1;
	return fd;
}

int proa_process_stdio_transport(struct proa_transport **out,
				 struct proa_process *p, int i,
				 const struct proa_transport_options *opt,
				 struct proa_protocol *proto)
{
	int fd = stdio_slot(p, i, __func__), ret;

	if (fd < 0)
		return fd;
	/* Slot 0 is the child's stdin: we write; 1 and 2 we read. */
	ret = proa_pipe_open(out, p->loop, i == 0 ? -1 : fd, i == 0 ? fd : -1,
			     opt, proto);
	if (ret == 0)
		p->stdio[i] = -1; /* the transport's now */
	return ret;
}

int proa_process_kill(struct proa_process *p, int sig)
{
	if (!p || sig < 0 || sig >= 65)
		return -EINVAL;
	PROA__LOOP_CHECK_AS(p->loop, __func__);
	if (p->exited)
		return -ESRCH;
	return pidfd_kill(p->pidfd, sig);
}

int proa_process_status(const struct proa_process *p, int *exit_code,
			int *term_signal)
{
	if (!p)
		return -EINVAL;
	if (!p->exited)
		return PROA_EPENDING;
	if (p->wait_res < 0)
		return p->wait_res;
	if (exit_code)
		*exit_code = WIFEXITED(p->status) ? WEXITSTATUS(p->status) : -1;
	if (term_signal)
		*term_signal = WIFSIGNALED(p->status) ? WTERMSIG(p->status) : 0;
	return 0;
}

int proa_process_wait(struct proa_process *p, struct proa_future *fut)
{
	if (!p || !fut || fut->priv.loop != p->loop)
		return -EINVAL;
	PROA__LOOP_CHECK_AS(p->loop, __func__);
	/* A future with a canceller is another piece of work's: taking it
	 * over would leave that work pointing at it. */
	if (p->waiter || !proa__future_free(fut))
		return -EBUSY;
	if (p->exited)
		return proa_future_set_result(fut, result_of(p), NULL);
	p->waiter = fut;
	proa_future_set_canceller(fut, wait_cancel, p);
	return 0;
}

int proa_process_close(struct proa_process *p)
{
	if (!p)
		return -EINVAL;
	PROA__LOOP_CHECK_AS(p->loop, __func__);
	p->closed = true;
	close_stdio(p);
	if (p->waiter)
		wait_cancel(p->waiter, p);
	switch (p->state) {
	case PROC_WAITING:
		/* Never detached: killed, and reaped when the wait ends. */
		pidfd_kill(p->pidfd, SIGKILL);
		break;
	case PROC_CLOSING:
		break; /* freed when the pidfd's close completes */
	default:
		free(p);
		break;
	}
	return 0;
}
