/* SPDX-License-Identifier: MIT */
/*
 * net/pipe.c - transports on descriptors proa did not make: pipes, FIFOs,
 * ttys and character devices (the pipe kind, sock.c), and stream sockets
 * made or accepted elsewhere (the socket kind).  The checks live here; the
 * machines are sock.c's.
 *
 * Thread: loop, everything, except proa_listen_fds(): the program's main
 * thread, before it starts others (it reads and changes the environment).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net_int.h"

/* What every constructor here checks; @func names the public call for the
 * wrong-thread message. */
static int check_common(struct proa_transport **out, struct proa_loop *loop,
			const struct proa_transport_options *opt,
			const struct proa_protocol *proto, const char *func)
{
	if (!out || !loop || !proto || !proto->ops ||
	    !proto->ops->data_received || (opt && !PROA__RESERVED_ZERO(opt)))
		return -EINVAL;
	PROA__LOOP_CHECK_AS(loop, func);
	if (loop->closed)
		return PROA_ECLOSED;
	return proa__netloop_get(loop) ? 0 : -ENOMEM;
}

/* A descriptor a pipe transport can read or write sequentially: not a
 * directory (the rest - FIFO, tty, character device, socket, even a
 * regular file read to its end - read(2) and write(2) take). */
static int pipe_end_ok(int fd)
{
	struct stat st;

	if (fd == -1)
		return 0;
	if (fd < 0 || fstat(fd, &st) < 0)
		return -EBADF;
	return S_ISDIR(st.st_mode) ? -EINVAL : 0;
}

int proa_pipe_open(struct proa_transport **out, struct proa_loop *loop, int rfd,
		   int wfd, const struct proa_transport_options *opt,
		   struct proa_protocol *proto)
{
	int ret = check_common(out, loop, opt, proto, __func__);

	if (ret < 0)
		return ret;
	if (rfd == -1 && wfd == -1)
		return -EINVAL;
	ret = pipe_end_ok(rfd);
	if (ret == 0 && wfd != rfd)
		ret = pipe_end_ok(wfd);
	if (ret < 0)
		return ret;
	return proa__transport_adopt(loop, rfd, wfd, true, opt, proto, out);
}

/* Whether @fd is a stream socket that listens (1), or is not listening
 * (0); -errno (-ENOTSOCK, -EINVAL for another socket type). */
int proa__stream_socket_listens(int fd)
{
	socklen_t len = sizeof(int);
	int type = 0, acc = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		return -errno;
	if (type != SOCK_STREAM)
		return -EINVAL;
	len = sizeof(acc);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) < 0)
		return -errno;
	return acc != 0;
}

/* O_NONBLOCK and FD_CLOEXEC, as on the sockets proa makes itself. */
int proa__fd_adopt_flags(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	fl = fcntl(fd, F_GETFD);
	if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)
		return -errno;
	return 0;
}

int proa_transport_from_fd(struct proa_transport **out, struct proa_loop *loop,
			   int fd, const struct proa_transport_options *opt,
			   struct proa_protocol *proto)
{
	struct sockaddr_storage ss = {0};
	socklen_t len = sizeof(ss);
	int ret = check_common(out, loop, opt, proto, __func__);

	if (ret < 0)
		return ret;
	if (fd < 0)
		return -EBADF;
	ret = proa__stream_socket_listens(fd);
	if (ret != 0)
		return ret < 0 ? ret : -EINVAL; /* a listener: a server's */
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	ret = proa__fd_adopt_flags(fd);
	if (ret < 0)
		return ret;
	proa__sock_tune(fd, ss.ss_family, opt);
	return proa__transport_adopt(loop, fd, fd, false, opt, proto, out);
}

/* A whole unsigned decimal number no greater than @max, or -EINVAL. */
static long env_number(const char *s, long max)
{
	long v = 0;

	if (!s || !*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (max - (*s - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (*s - '0');
	}
	return v;
}

static void listen_env_unset(void)
{
	/* NOLINTBEGIN(concurrency-mt-unsafe): documented as main's call */
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	/* NOLINTEND(concurrency-mt-unsafe) */
}

/*
 * The protocol of sd_listen_fds(3): LISTEN_PID names the process the
 * descriptors are for (a variable inherited by a child that is not it
 * must not make the child take them), LISTEN_FDS how many there are from
 * descriptor 3 on.  They are made close-on-exec at once, so that a
 * command the program runs does not inherit its listeners.
 */
int proa_listen_fds(int unset_environment)
{
	/* NOLINTBEGIN(concurrency-mt-unsafe): documented as main's call */
	const char *spid = getenv("LISTEN_PID");
	const char *sfds = getenv("LISTEN_FDS");
	/* NOLINTEND(concurrency-mt-unsafe) */
	long pid, n, fd;
	int fl, ret;

	if (!spid || !sfds) {
		ret = 0;
		goto out;
	}
	pid = env_number(spid, INT_MAX);
	n = env_number(sfds, INT_MAX - PROA_LISTEN_FDS_START);
	if (pid <= 0 || n < 0) {
		ret = -EINVAL;
		goto out;
	}
	if ((pid_t)pid != getpid()) {
		ret = 0; /* someone else's */
		goto out;
	}
	for (fd = PROA_LISTEN_FDS_START; fd < PROA_LISTEN_FDS_START + n; fd++) {
		fl = fcntl((int)fd, F_GETFD);
		if (fl < 0 || (!(fl & FD_CLOEXEC) &&
			       fcntl((int)fd, F_SETFD, fl | FD_CLOEXEC) < 0)) {
			ret = -errno;
			goto out;
		}
	}
	ret = (int)n;
out:
	if (unset_environment)
		listen_env_unset();
	return ret;
}
