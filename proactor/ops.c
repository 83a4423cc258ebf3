/* SPDX-License-Identifier: MIT */
/*
 * proactor/ops.c - the public submitting calls of proa/op.h: argument checks,
 * then the ring.  Cheap misuse is refused here, before anything is queued,
 * so that on error the callback never runs (the proactor contract);
 * everything the kernel finds arrives in op->res instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "proactor_int.h"

static int begin_as(struct proa_loop *loop, struct proa_op *op,
		    enum proa__op_kind kind, enum proa_feature feat,
		    const char *func)
{
	if (!loop || !op || !op->cb)
		return -EINVAL;
	PROA__LOOP_CHECK_AS(loop, func);
	if (loop->closed)
		return PROA_ECLOSED;
	if (op->priv.state != PROA_OP_IDLE)
		return -EBUSY;
	op->priv.iflags &= PROA__OPF_INTERNAL;
	op->priv.kind = (uint8_t)kind;
	if (!proa__ring_feature(loop->ring, feat)) {
		/* A file call the ring lacks runs on the executor instead;
		 * the loop's own ops never do. */
		if (!proa__op_is_file(op))
			return -EOPNOTSUPP;
		op->priv.iflags |= PROA__OPF_AWAY;
	}
	op->priv.loop = loop;
	op->res = 0;
	op->flags = 0;
	return 0;
}

/* Every public submitting call starts here, under its own name. */
#define begin(loop, op, kind, feat) begin_as(loop, op, kind, feat, __func__)

static int submit(struct proa_loop *loop, struct proa_op *op)
{
	/* The epoll backend reads pipes and sockets by readiness but sends
	 * regular files to the pool: it is asked once the fd is known. */
	if (!(op->priv.iflags & PROA__OPF_AWAY) && proa__op_is_file(op) &&
	    proa__ring_offload(loop->ring, op))
		op->priv.iflags |= PROA__OPF_AWAY;
	if (proa__unlikely(op->priv.iflags & PROA__OPF_AWAY))
		return proa__exec_submit(loop->ring, op);
	return proa__ring_submit(loop->ring, op);
}

/* The fd of an op that may name a registered-file slot
 * (PROA_FIXED_FD()): the slot's, or a plain descriptor. */
static int set_fd(struct proa_loop *loop, struct proa_op *op, int fd)
{
	int ret;

	if (proa_fd_is_fixed(fd)) {
		ret = proa__ring_file_use(loop->ring, op, proa_fd_slot(fd));
		if (ret < 0)
			return ret;
		/* A slot of the kernel's table has no descriptor a pool
		 * thread could use. */
		if ((op->priv.iflags & PROA__OPF_FIXED_FILE) &&
		    (op->priv.iflags & PROA__OPF_AWAY))
			return -EOPNOTSUPP;
		return 0;
	}
	if (fd < 0)
		return -EBADF;
	op->priv.fd = fd;
	return 0;
}

static int check_rw(const void *buf, size_t len, int64_t off)
{
	if ((!buf && len > 0) || len > INT32_MAX || off < -1)
		return -EINVAL;
	return 0;
}

int proa_op_nop(struct proa_loop *loop, struct proa_op *op)
{
	int ret = begin(loop, op, PROA__OP_NOP, PROA_FEAT_OP_NOP);

	return ret < 0 ? ret : submit(loop, op);
}

int proa_op_timeout(struct proa_loop *loop, struct proa_op *op, uint64_t ns)
{
	int ret = begin(loop, op, PROA__OP_TIMEOUT, PROA_FEAT_OP_TIMEOUT);

	if (ret < 0)
		return ret;
	op->priv.timeout_ns = ns;
	return submit(loop, op);
}

/* read, write, recv, send: one buffer; @extra is recv/send's flags. */
static int rw(struct proa_loop *loop, struct proa_op *op, int fd,
	      const void *buf, size_t len, int64_t off, uint32_t extra,
	      enum proa__op_kind kind, enum proa_feature feat, const char *func)
{
	int ret = begin_as(loop, op, kind, feat, func);

	if (ret < 0)
		return ret;
	ret = set_fd(loop, op, fd);
	if (ret < 0)
		return ret;
	ret = check_rw(buf, len, off);
	if (ret < 0)
		return ret;
	op->priv.addr = buf;
	op->priv.len = (uint32_t)len;
	op->priv.off = (uint64_t)off; /* -1: the file position */
	op->priv.extra = extra;
	return submit(loop, op);
}

int proa_op_read(struct proa_loop *loop, struct proa_op *op, int fd, void *buf,
		 size_t len, int64_t off)
{
	return rw(loop, op, fd, buf, len, off, 0, PROA__OP_READ,
		  PROA_FEAT_OP_READ, __func__);
}

int proa_op_write(struct proa_loop *loop, struct proa_op *op, int fd,
		  const void *buf, size_t len, int64_t off)
{
	return rw(loop, op, fd, buf, len, off, 0, PROA__OP_WRITE,
		  PROA_FEAT_OP_WRITE, __func__);
}

/* read_fixed, write_fixed: a read or write that names its registered
 * buffer.  The kind stays read or write, so that the epoll backend and
 * the file lane make the plain call into the same memory; the io_uring
 * backend turns it into READ_FIXED/WRITE_FIXED while the buffers are the
 * kernel's. */
static int rw_fixed(struct proa_loop *loop, struct proa_op *op, int fd,
		    const void *buf, size_t len, int64_t off, unsigned index,
		    enum proa__op_kind kind, enum proa_feature feat,
		    const char *func)
{
	int ret = begin_as(loop, op, kind, feat, func);

	if (ret < 0)
		return ret;
	ret = set_fd(loop, op, fd);
	if (ret < 0)
		return ret;
	ret = check_rw(buf, len, off);
	if (ret < 0)
		return ret;
	if (!proa__ring_buf_fits(loop->ring, index, buf, len))
		return -EINVAL;
	op->priv.addr = buf;
	op->priv.len = (uint32_t)len;
	op->priv.off = (uint64_t)off;
	op->priv.extra = index;
	op->priv.iflags |= PROA__OPF_FIXED_BUF;
	return submit(loop, op);
}

int proa_op_read_fixed(struct proa_loop *loop, struct proa_op *op, int fd,
		       void *buf, size_t len, int64_t off, unsigned index)
{
	return rw_fixed(loop, op, fd, buf, len, off, index, PROA__OP_READ,
			PROA_FEAT_OP_READ, __func__);
}

int proa_op_write_fixed(struct proa_loop *loop, struct proa_op *op, int fd,
			const void *buf, size_t len, int64_t off,
			unsigned index)
{
	return rw_fixed(loop, op, fd, buf, len, off, index, PROA__OP_WRITE,
			PROA_FEAT_OP_WRITE, __func__);
}

/* ---- registered files and buffers --------------------------------------- */

int proa_loop_register_fd(struct proa_loop *loop, int fd)
{
	if (!loop)
		return -EINVAL;
	PROA__LOOP_CHECK(loop);
	if (loop->closed)
		return PROA_ECLOSED;
	if (fd < 0)
		return -EBADF;
	return proa__ring_file_add(loop->ring, fd);
}

int proa_loop_unregister_fd(struct proa_loop *loop, unsigned slot)
{
	if (!loop)
		return -EINVAL;
	PROA__LOOP_CHECK(loop);
	/* The table went with the ring. */
	if (loop->closed)
		return PROA_ECLOSED;
	return proa__ring_file_del(loop->ring, slot);
}

int proa_loop_register_buffers(struct proa_loop *loop, const struct iovec *iov,
			       unsigned nr)
{
	if (!loop)
		return -EINVAL;
	PROA__LOOP_CHECK(loop);
	if (loop->closed)
		return PROA_ECLOSED;
	return proa__ring_bufs_add(loop->ring, iov, nr);
}

int proa_loop_unregister_buffers(struct proa_loop *loop)
{
	if (!loop)
		return -EINVAL;
	PROA__LOOP_CHECK(loop);
	if (loop->closed)
		return PROA_ECLOSED;
	return proa__ring_bufs_del(loop->ring);
}

static int rwv(struct proa_loop *loop, struct proa_op *op, int fd,
	       const struct iovec *iov, int iovcnt, int64_t off,
	       enum proa__op_kind kind, enum proa_feature feat,
	       const char *func)
{
	int ret = begin_as(loop, op, kind, feat, func);

	if (ret < 0)
		return ret;
	ret = set_fd(loop, op, fd);
	if (ret < 0)
		return ret;
	/* More than IOV_MAX is EINVAL from the kernel too (libuv ef6a9a6). */
	if (iovcnt < 0 || iovcnt > IOV_MAX || (!iov && iovcnt > 0) || off < -1)
		return -EINVAL;
	op->priv.addr = iov;
	op->priv.len = (uint32_t)iovcnt;
	op->priv.off = (uint64_t)off;
	return submit(loop, op);
}

int proa_op_readv(struct proa_loop *loop, struct proa_op *op, int fd,
		  const struct iovec *iov, int iovcnt, int64_t off)
{
	return rwv(loop, op, fd, iov, iovcnt, off, PROA__OP_READV,
		   PROA_FEAT_OP_READV, __func__);
}

int proa_op_writev(struct proa_loop *loop, struct proa_op *op, int fd,
		   const struct iovec *iov, int iovcnt, int64_t off)
{
	return rwv(loop, op, fd, iov, iovcnt, off, PROA__OP_WRITEV,
		   PROA_FEAT_OP_WRITEV, __func__);
}

int proa_op_fsync(struct proa_loop *loop, struct proa_op *op, int fd,
		  unsigned flags)
{
	int ret = begin(loop, op, PROA__OP_FSYNC, PROA_FEAT_OP_FSYNC);

	if (ret < 0)
		return ret;
	ret = set_fd(loop, op, fd);
	if (ret < 0)
		return ret;
	if (flags & ~PROA_FSYNC_DATASYNC)
		return -EINVAL;
	op->priv.extra = flags;
	return submit(loop, op);
}

int proa_op_openat(struct proa_loop *loop, struct proa_op *op, int dirfd,
		   const char *path, int flags, unsigned mode)
{
	int ret = begin(loop, op, PROA__OP_OPENAT, PROA_FEAT_OP_OPENAT);

	if (ret < 0)
		return ret;
	if (!path)
		return -EINVAL;
	if (dirfd < 0 && dirfd != AT_FDCWD)
		return -EBADF;
	op->priv.fd = dirfd;
	op->priv.addr = path;
	op->priv.extra = (uint32_t)(flags | O_CLOEXEC);
	op->priv.len = mode;
	return submit(loop, op);
}

int proa_op_close(struct proa_loop *loop, struct proa_op *op, int fd)
{
	int ret = begin(loop, op, PROA__OP_CLOSE, PROA_FEAT_OP_CLOSE);

	if (ret < 0)
		return ret;
	if (fd < 0)
		return -EBADF;
	op->priv.fd = fd;
	return submit(loop, op);
}

int proa_op_statx(struct proa_loop *loop, struct proa_op *op, int dirfd,
		  const char *path, int flags, unsigned mask, struct statx *buf)
{
	int ret = begin(loop, op, PROA__OP_STATX, PROA_FEAT_OP_STATX);

	if (ret < 0)
		return ret;
	if (!path || !buf)
		return -EINVAL;
	if (dirfd < 0 && dirfd != AT_FDCWD)
		return -EBADF;
	op->priv.fd = dirfd;
	op->priv.addr = path;
	op->priv.len = (uint32_t)flags;
	op->priv.extra = mask;
	op->priv.addr2 = buf;
	return submit(loop, op);
}

static bool bad_dirfd(int dirfd)
{
	return dirfd < 0 && dirfd != AT_FDCWD;
}

int proa_op_openat2(struct proa_loop *loop, struct proa_op *op, int dirfd,
		    const char *path, const struct proa_open_how *how)
{
	int ret = begin(loop, op, PROA__OP_OPENAT2, PROA_FEAT_OP_OPENAT2);

	if (ret < 0)
		return ret;
	if (!path || !how)
		return -EINVAL;
	if (bad_dirfd(dirfd))
		return -EBADF;
	/* No open flag or mode needs more than 32 bits (openat2(2) says
	 * EINVAL for those too), so the op keeps them in its 32-bit
	 * fields; the backend builds the kernel's struct from them. */
	if (how->flags > UINT32_MAX || how->mode > UINT32_MAX)
		return -EINVAL;
	op->priv.fd = dirfd;
	op->priv.addr = path;
	op->priv.extra = (uint32_t)how->flags | (uint32_t)O_CLOEXEC;
	op->priv.len = (uint32_t)how->mode;
	op->priv.off = how->resolve;
	return submit(loop, op);
}

int proa_op_fallocate(struct proa_loop *loop, struct proa_op *op, int fd,
		      int mode, int64_t off, int64_t len)
{
	int ret = begin(loop, op, PROA__OP_FALLOCATE, PROA_FEAT_OP_FALLOCATE);

	if (ret < 0)
		return ret;
	if (fd < 0)
		return -EBADF;
	if (off < 0 || len <= 0)
		return -EINVAL;
	op->priv.fd = fd;
	op->priv.extra = (uint32_t)mode;
	op->priv.off = (uint64_t)off;
	op->priv.arg64 = (uint64_t)len;
	return submit(loop, op);
}

int proa_op_ftruncate(struct proa_loop *loop, struct proa_op *op, int fd,
		      int64_t len)
{
	int ret = begin(loop, op, PROA__OP_FTRUNCATE, PROA_FEAT_OP_FTRUNCATE);

	if (ret < 0)
		return ret;
	if (fd < 0)
		return -EBADF;
	if (len < 0)
		return -EINVAL;
	op->priv.fd = fd;
	op->priv.off = (uint64_t)len;
	return submit(loop, op);
}

int proa_op_unlinkat(struct proa_loop *loop, struct proa_op *op, int dirfd,
		     const char *path, int flags)
{
	int ret = begin(loop, op, PROA__OP_UNLINKAT, PROA_FEAT_OP_UNLINKAT);

	if (ret < 0)
		return ret;
	if (!path || (flags & ~AT_REMOVEDIR))
		return -EINVAL;
	if (bad_dirfd(dirfd))
		return -EBADF;
	op->priv.fd = dirfd;
	op->priv.addr = path;
	op->priv.extra = (uint32_t)flags;
	return submit(loop, op);
}

/* rename and link: two directories, two paths. */
static int two_paths(struct proa_loop *loop, struct proa_op *op, int olddirfd,
		     const char *oldpath, int newdirfd, const char *newpath,
		     uint32_t flags, enum proa__op_kind kind,
		     enum proa_feature feat, const char *func)
{
	int ret = begin_as(loop, op, kind, feat, func);

	if (ret < 0)
		return ret;
	if (!oldpath || !newpath)
		return -EINVAL;
	if (bad_dirfd(olddirfd) || bad_dirfd(newdirfd))
		return -EBADF;
	op->priv.fd = olddirfd;
	op->priv.addr = oldpath;
	op->priv.len = (uint32_t)newdirfd;
	op->priv.addr2 = (void *)newpath;
	op->priv.extra = flags;
	return submit(loop, op);
}

int proa_op_renameat2(struct proa_loop *loop, struct proa_op *op, int olddirfd,
		      const char *oldpath, int newdirfd, const char *newpath,
		      unsigned flags)
{
	return two_paths(loop, op, olddirfd, oldpath, newdirfd, newpath, flags,
			 PROA__OP_RENAMEAT, PROA_FEAT_OP_RENAMEAT, __func__);
}

int proa_op_linkat(struct proa_loop *loop, struct proa_op *op, int olddirfd,
		   const char *oldpath, int newdirfd, const char *newpath,
		   int flags)
{
	return two_paths(loop, op, olddirfd, oldpath, newdirfd, newpath,
			 (uint32_t)flags, PROA__OP_LINKAT, PROA_FEAT_OP_LINKAT,
			 __func__);
}

int proa_op_mkdirat(struct proa_loop *loop, struct proa_op *op, int dirfd,
		    const char *path, unsigned mode)
{
	int ret = begin(loop, op, PROA__OP_MKDIRAT, PROA_FEAT_OP_MKDIRAT);

	if (ret < 0)
		return ret;
	if (!path)
		return -EINVAL;
	if (bad_dirfd(dirfd))
		return -EBADF;
	op->priv.fd = dirfd;
	op->priv.addr = path;
	op->priv.len = mode;
	return submit(loop, op);
}

int proa_op_symlinkat(struct proa_loop *loop, struct proa_op *op,
		      const char *target, int newdirfd, const char *linkpath)
{
	int ret = begin(loop, op, PROA__OP_SYMLINKAT, PROA_FEAT_OP_SYMLINKAT);

	if (ret < 0)
		return ret;
	if (!target || !linkpath)
		return -EINVAL;
	if (bad_dirfd(newdirfd))
		return -EBADF;
	op->priv.fd = newdirfd;
	op->priv.addr = target;
	op->priv.addr2 = (void *)linkpath;
	return submit(loop, op);
}

/* No io_uring opcode: PROA_FEAT__COUNT is a feature no ring has, so
 * begin() sends these to the executor. */
int proa_op_getdents(struct proa_loop *loop, struct proa_op *op, int dirfd,
		     void *buf, size_t len)
{
	int ret = begin(loop, op, PROA__OP_GETDENTS, PROA_FEAT__COUNT);

	if (ret < 0)
		return ret;
	if (dirfd < 0)
		return -EBADF;
	if (!buf || len > INT32_MAX)
		return -EINVAL;
	op->priv.fd = dirfd;
	op->priv.addr = buf;
	op->priv.len = (uint32_t)len;
	return submit(loop, op);
}

int proa_op_copy_file_range(struct proa_loop *loop, struct proa_op *op,
			    int fd_in, int64_t off_in, int fd_out,
			    int64_t off_out, size_t len, unsigned flags)
{
	int ret = begin(loop, op, PROA__OP_COPY_FILE_RANGE, PROA_FEAT__COUNT);

	if (ret < 0)
		return ret;
	if (fd_in < 0 || fd_out < 0)
		return -EBADF;
	if (len > INT32_MAX || off_in < -1 || off_out < -1 || flags != 0)
		return -EINVAL;
	op->priv.fd = fd_in;
	op->priv.off = (uint64_t)off_in;
	op->priv.extra = (uint32_t)fd_out;
	op->priv.arg64 = (uint64_t)off_out;
	op->priv.len = (uint32_t)len;
	return submit(loop, op);
}

int proa_op_poll(struct proa_loop *loop, struct proa_op *op, int fd,
		 unsigned events, unsigned flags)
{
	int ret = begin(loop, op, PROA__OP_POLL, PROA_FEAT_OP_POLL);

	if (ret < 0)
		return ret;
	if (fd < 0)
		return -EBADF;
	if (events == 0 || (flags & ~PROA_POLL_MULTISHOT))
		return -EINVAL;
	op->priv.fd = fd;
	op->priv.extra = events;
	if (flags & PROA_POLL_MULTISHOT)
		op->priv.iflags |= PROA__OPF_MULTISHOT;
	return submit(loop, op);
}

int proa_op_cancel(struct proa_op *op)
{
	struct proa_loop *loop;

	if (!op)
		return -EINVAL;
	if (op->priv.state == PROA_OP_IDLE)
		return -ENOENT;
	loop = op->priv.loop;
	PROA__LOOP_CHECK(loop);
	return proa__ring_cancel(loop->ring, op);
}

/* ---- sockets ------------------------------------------------------------ */

int proa_op_accept(struct proa_loop *loop, struct proa_op *op, int fd,
		   struct sockaddr *addr, unsigned *addrlen, unsigned flags)
{
	bool multi = flags & PROA_ACCEPT_MULTISHOT;
	int ret = begin(loop, op, PROA__OP_ACCEPT, PROA_FEAT_OP_ACCEPT);

	if (ret < 0)
		return ret;
	if (fd < 0)
		return -EBADF;
	if ((flags & ~PROA_ACCEPT_MULTISHOT) || (addr && !addrlen) ||
	    (addr && multi))
		return -EINVAL;
	if (multi &&
	    !proa__ring_feature(loop->ring, PROA_FEAT_ACCEPT_MULTISHOT))
		return -EOPNOTSUPP;
	op->priv.fd = fd;
	op->priv.addr = addr;
	op->priv.addr2 = addrlen;
	op->priv.extra = SOCK_NONBLOCK | SOCK_CLOEXEC;
	if (multi)
		op->priv.iflags |= PROA__OPF_MULTISHOT;
	return submit(loop, op);
}

int proa_op_connect(struct proa_loop *loop, struct proa_op *op, int fd,
		    const struct sockaddr *addr, unsigned addrlen)
{
	int ret = begin(loop, op, PROA__OP_CONNECT, PROA_FEAT_OP_CONNECT);

	if (ret < 0)
		return ret;
	if (fd < 0)
		return -EBADF;
	if (!addr || addrlen == 0)
		return -EINVAL;
	op->priv.fd = fd;
	op->priv.addr = addr;
	op->priv.len = addrlen;
	return submit(loop, op);
}

int proa_op_recv(struct proa_loop *loop, struct proa_op *op, int fd, void *buf,
		 size_t len, int msg_flags)
{
	return rw(loop, op, fd, buf, len, 0, (uint32_t)msg_flags, PROA__OP_RECV,
		  PROA_FEAT_OP_RECV, __func__);
}

int proa_op_recv_select(struct proa_loop *loop, struct proa_op *op, int fd,
			struct proa_buf_ring *br, unsigned flags)
{
	int ret = begin(loop, op, PROA__OP_RECV_SELECT, PROA_FEAT_BUF_RING);

	if (ret < 0)
		return ret;
	if (fd < 0)
		return -EBADF;
	if (!br || proa__buf_ring_owner(br) != loop->ring ||
	    (flags & ~(PROA_RECV_MULTISHOT | PROA_RECV_POLL_FIRST)) ||
	    (flags & PROA_RECV_MULTISHOT && flags & PROA_RECV_POLL_FIRST))
		return -EINVAL;
	if ((flags & PROA_RECV_MULTISHOT) &&
	    !proa__ring_feature(loop->ring, PROA_FEAT_RECV_MULTISHOT))
		return -EOPNOTSUPP;
	op->priv.fd = fd;
	op->priv.addr2 = br;
	if (flags & PROA_RECV_MULTISHOT)
		op->priv.iflags |= PROA__OPF_MULTISHOT;
	if (flags & PROA_RECV_POLL_FIRST)
		op->priv.iflags |= PROA__OPF_POLL_FIRST;
	return submit(loop, op);
}

int proa_op_recvmsg_select(struct proa_loop *loop, struct proa_op *op, int fd,
			   struct msghdr *msg, struct proa_buf_ring *br)
{
	int ret =
	    begin(loop, op, PROA__OP_RECVMSG_SELECT, PROA_FEAT_RECV_MULTISHOT);

	if (ret < 0)
		return ret;
	if (fd < 0)
		return -EBADF;
	if (!msg || !br || proa__buf_ring_owner(br) != loop->ring)
		return -EINVAL;
	op->priv.fd = fd;
	op->priv.addr = msg;
	op->priv.addr2 = br;
	op->priv.iflags |= PROA__OPF_MULTISHOT;
	return submit(loop, op);
}

int proa_op_send(struct proa_loop *loop, struct proa_op *op, int fd,
		 const void *buf, size_t len, int msg_flags)
{
	return rw(loop, op, fd, buf, len, 0,
		  (uint32_t)(msg_flags | MSG_NOSIGNAL), PROA__OP_SEND,
		  PROA_FEAT_OP_SEND, __func__);
}

static int msg_op(struct proa_loop *loop, struct proa_op *op, int fd,
		  const struct msghdr *msg, int msg_flags,
		  enum proa__op_kind kind, enum proa_feature feat,
		  const char *func)
{
	int ret = begin_as(loop, op, kind, feat, func);

	if (ret < 0)
		return ret;
	if (fd < 0)
		return -EBADF;
	if (!msg || msg->msg_iovlen > IOV_MAX ||
	    (!msg->msg_iov && msg->msg_iovlen > 0))
		return -EINVAL;
	op->priv.fd = fd;
	op->priv.addr = msg;
	op->priv.extra = (uint32_t)msg_flags;
	return submit(loop, op);
}

int proa_op_sendmsg(struct proa_loop *loop, struct proa_op *op, int fd,
		    const struct msghdr *msg, int msg_flags)
{
	return msg_op(loop, op, fd, msg, msg_flags | MSG_NOSIGNAL,
		      PROA__OP_SENDMSG, PROA_FEAT_OP_SENDMSG, __func__);
}

int proa_op_sendmsg_zc(struct proa_loop *loop, struct proa_op *op, int fd,
		       const struct msghdr *msg, int msg_flags)
{
	return msg_op(loop, op, fd, msg, msg_flags | MSG_NOSIGNAL,
		      PROA__OP_SENDMSG_ZC, PROA_FEAT_OP_SENDMSG_ZC, __func__);
}

int proa_op_recvmsg(struct proa_loop *loop, struct proa_op *op, int fd,
		    struct msghdr *msg, int msg_flags)
{
	return msg_op(loop, op, fd, msg, msg_flags, PROA__OP_RECVMSG,
		      PROA_FEAT_OP_RECVMSG, __func__);
}

int proa_op_splice(struct proa_loop *loop, struct proa_op *op, int fd_in,
		   int64_t off_in, int fd_out, int64_t off_out, size_t len,
		   unsigned flags)
{
	const unsigned known =
	    SPLICE_F_MOVE | SPLICE_F_NONBLOCK | SPLICE_F_MORE | SPLICE_F_GIFT;
	int ret = begin(loop, op, PROA__OP_SPLICE, PROA_FEAT_OP_SPLICE);

	if (ret < 0)
		return ret;
	if (fd_in < 0 || fd_out < 0)
		return -EBADF;
	if (len > INT32_MAX || off_in < -1 || off_out < -1 || (flags & ~known))
		return -EINVAL;
	op->priv.fd = fd_in;
	op->priv.off = (uint64_t)off_in;
	op->priv.len = (uint32_t)len;
	op->priv.u.splice.off_out = off_out;
	op->priv.u.splice.fd_out = fd_out;
	op->priv.u.splice.flags = flags;
	return submit(loop, op);
}

int proa__op_waitid(struct proa_loop *loop, struct proa_op *op, int pidfd,
		    void *info, int options)
{
	int ret = begin(loop, op, PROA__OP_WAITID, PROA_FEAT_OP_WAITID);

	if (ret < 0)
		return ret;
	if (pidfd < 0)
		return -EBADF;
	if (!info)
		return -EINVAL;
	op->priv.fd = pidfd;
	op->priv.addr = info;
	op->priv.extra = (uint32_t)options;
	return submit(loop, op);
}

int proa_op_shutdown(struct proa_loop *loop, struct proa_op *op, int fd,
		     int how)
{
	int ret = begin(loop, op, PROA__OP_SHUTDOWN, PROA_FEAT_OP_SHUTDOWN);

	if (ret < 0)
		return ret;
	if (fd < 0)
		return -EBADF;
	if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
		return -EINVAL;
	op->priv.fd = fd;
	op->priv.extra = (uint32_t)how;
	return submit(loop, op);
}
