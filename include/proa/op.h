/* SPDX-License-Identifier: MIT */
/*
 * proa/op.h - caller-owned operation records and the operations of the ring.
 *
 * The proactor contract: a submitting call either fails now (a negative
 * return, and then @op->cb never runs) or returns 0, and then @op->cb runs
 * exactly once for a single-shot operation - later, on the loop thread,
 * never inside the submitting call.  A multishot operation (poll with
 * PROA_POLL_MULTISHOT) calls @op->cb once per event with PROA_OP_F_MORE set,
 * and a last time without it; so does a zero-copy send (its last call is
 * the notification that the bytes are free).
 *
 * Buffers, iovecs, paths and result structures passed to an operation are
 * borrowed, never copied: they belong to the kernel until @op->cb runs with
 * PROA_OP_F_MORE clear - also after proa_op_cancel().
 *
 * Operation states (@op->priv.state, written by the library's ring alone):
 *
 *   IDLE --submit--> QUEUED --(SQE written)--> INFLIGHT --(final CQE)--> IDLE
 *     |                 ^ (SQ full and it cannot be flushed: waits in line)
 *     +--submit (SQ has room)------------------------> INFLIGHT
 *     +--submit (a file op run on a pool thread)------> INFLIGHT
 *
 * A file operation the kernel cannot do (see proa_loop_feature()), and a
 * regular file's on the epoll backend, runs on the default pool's file
 * lane instead, with the same contract; its callback runs in the loop
 * iteration after the worker's result reached the loop.  The op becomes
 * IDLE just before its final callback runs, so it may be resubmitted or
 * freed inside that callback.  It must not be freed, moved or resubmitted
 * in any other state.
 */
#ifndef PROA_OP_H
#define PROA_OP_H

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

struct iovec;
struct msghdr;
struct sockaddr;
struct statx;
struct proa_buf_ring;

struct proa_op;
typedef void (*proa_op_fn)(struct proa_op *op);

enum proa_op_state {
	PROA_OP_IDLE = 0,
	PROA_OP_QUEUED,
	PROA_OP_INFLIGHT,
};

/* More completions of this multishot operation will follow. */
#define PROA_OP_F_MORE (1U << 0)
/* The completion used a buffer of a proa_buf_ring: proa_op_buffer_id(). */
#define PROA_OP_F_BUFFER (1U << 1)
/* recv: more data was waiting in the socket when this one completed. */
#define PROA_OP_F_SOCK_NONEMPTY (1U << 2)
/* proa_op_sendmsg_zc(): the notification - the kernel is done with the
 * bytes; and with it, the kernel copied them after all. */
#define PROA_OP_F_NOTIF (1U << 3)
#define PROA_OP_F_ZC_COPIED (1U << 4)

/* Flags for proa_op_accept() and proa_op_recv_select(). */
#define PROA_ACCEPT_MULTISHOT (1U << 0)
#define PROA_RECV_MULTISHOT (1U << 0)
/* recv_select, one-shot: wait for data before trying to receive, for a
 * socket that is known to be empty (a request/response peer that was just
 * answered): saves the first, failing, attempt. */
#define PROA_RECV_POLL_FIRST (1U << 1)

/* Flags for proa_op_poll(). */
#define PROA_POLL_MULTISHOT (1U << 0)

/* Flags for proa_op_fsync(). */
#define PROA_FSYNC_DATASYNC (1U << 0)

/* The kernel's struct __kernel_timespec, without including kernel headers. */
struct proa__timespec {
	int64_t tv_sec;
	long long tv_nsec;
};

/* proa_op_splice()'s arguments beyond fd (in), off (in) and len. */
struct proa__op_splice {
	int64_t off_out; /* -1: a pipe or a socket */
	int32_t fd_out;
	uint32_t flags; /* SPLICE_F_* */
};

/*
 * What the one running an op keeps in it while it is not idle: the
 * backend (ring/uring.c, ring/epoll.c) or the executor that has it on a
 * thread (pool/fallback.c).  Never an argument: written only by its
 * owner, and meaningless once the op is idle again.
 */
union proa__op_be {
	struct {
		/* timeout: the timespec the SQE points at, made from
		 * timeout_ns when the op is issued */
		struct proa__timespec ts;
	} uring;
	struct {
		uint32_t heap_idx; /* timeout: its place in the heap */
		uint32_t progress; /* recv/send with MSG_WAITALL: bytes */
		uint8_t phase;	   /* connect: 0 before connect(2), 1 in
				    * progress */
	} ep;
	struct {
		void *job; /* the executor's record of the op */
	} exec;
};

/*
 * Private: the library's while the op is not idle.  @state is written by
 * ring/ alone (ring/ring.c), the life cycle's one owner.  The arguments
 * are written by the submitting call (proactor/ops.c) and only read after.
 */
struct proa__op_priv {
	struct proa_link link; /* on one of ring.c's lists while not idle */
	struct proa_loop *loop;
	uint8_t state; /* enum proa_op_state */
	uint8_t kind;
	uint16_t iflags;
	int32_t fd;
	uint32_t len;
	uint32_t extra;		     /* the kind's flags, events, mask or how */
	union {			     /* no kind takes two of these */
		uint64_t off;	     /* read, write, readv, writev, splice
				      * and copy_file_range (in): the
				      * offset, or -1; fallocate: the
				      * offset; ftruncate: the length;
				      * openat2: the resolve flags */
		void *addr2;	     /* accept: addrlen; statx: the buffer;
				      * recv(msg)_select: the buffer ring;
				      * rename, link, symlink: the new path */
		uint64_t timeout_ns; /* timeout */
	};
	union {
		const void *addr;
		uint64_t arg64; /* fallocate: the length; copy_file_range:
				 * the output offset, or -1 */
	};
	union {
		struct proa__op_splice splice; /* splice */
		union proa__op_be be;	       /* every other kind */
	} u;
};

/*
 * struct proa_op - one operation.  Zero it (or call proa_op_init()) before
 * first use; set @cb and @data before submitting.
 */
struct proa_op {
	/* public: set before submit, read in the callback */
	proa_op_fn cb;
	void *data;
	int32_t res;	/* bytes/count >= 0, or -errno, as a CQE's res */
	uint32_t flags; /* PROA_OP_F_*, written by the library */
	/* private: owned by the library while the op is not idle */
	struct proa__op_priv priv;
};

/**
 * proa_op_init() - zero @op and set its callback.
 * Thread: any (the op is not shared yet).
 */
PROA_API void proa_op_init(struct proa_op *op, proa_op_fn cb, void *data);

/**
 * proa_op_is_idle() - whether @op may be submitted, reused or freed.
 * Thread: loop.
 */
PROA_API bool proa_op_is_idle(const struct proa_op *op);

/**
 * proa_op_state() - the state of @op (see the diagram above).
 * Thread: loop.
 */
PROA_API enum proa_op_state proa_op_state(const struct proa_op *op);

/*
 * The submitting calls below share these rules.
 *
 * Return: 0 if queued; -EBUSY if @op is not idle; -EINVAL for a NULL @op,
 *         @op->cb or @loop, or another argument the call documents as
 *         invalid; -EBADF for a negative fd; -EOPNOTSUPP if this kernel's
 *         io_uring lacks the operation (see proa_loop_feature());
 *         PROA_ECLOSED after proa_loop_close().  Errors the kernel finds (a
 *         closed fd, a missing file) arrive in @op->res instead.
 * Thread: loop.
 */

/** proa_op_nop() - an operation that completes with 0. */
PROA_API int proa_op_nop(struct proa_loop *loop, struct proa_op *op);

/**
 * proa_op_timeout() - complete after @ns nanoseconds (CLOCK_MONOTONIC) with
 * @op->res = -ETIME, or -ECANCELED if cancelled first.
 */
PROA_API int proa_op_timeout(struct proa_loop *loop, struct proa_op *op,
			     uint64_t ns);

/**
 * proa_op_read() - read up to @len bytes of @fd at offset @off into @buf.
 * @off: file offset, or -1 for the file's current position (pipes,
 *       sockets, and files read sequentially).
 * @len: at most INT32_MAX; 0 is allowed and completes with 0.
 *
 * @op->res is the byte count, which may be short, or -errno.
 * -EINVAL: @buf is NULL with @len > 0, @len > INT32_MAX, or @off < -1.
 */
PROA_API int proa_op_read(struct proa_loop *loop, struct proa_op *op, int fd,
			  void *buf, size_t len, int64_t off);

/** proa_op_write() - write @len bytes of @buf to @fd at @off; see read. */
PROA_API int proa_op_write(struct proa_loop *loop, struct proa_op *op, int fd,
			   const void *buf, size_t len, int64_t off);

/**
 * proa_op_readv() - scatter read into @iovcnt buffers.
 * -EINVAL: @iov NULL with @iovcnt > 0, @iovcnt < 0 or > IOV_MAX.
 * The iovec array and the buffers are borrowed until the callback.
 */
PROA_API int proa_op_readv(struct proa_loop *loop, struct proa_op *op, int fd,
			   const struct iovec *iov, int iovcnt, int64_t off);

/** proa_op_writev() - gather write; see proa_op_readv(). */
PROA_API int proa_op_writev(struct proa_loop *loop, struct proa_op *op, int fd,
			    const struct iovec *iov, int iovcnt, int64_t off);

/**
 * proa_op_fsync() - flush @fd to storage; @flags: 0 or PROA_FSYNC_DATASYNC.
 * -EINVAL: unknown @flags.
 */
PROA_API int proa_op_fsync(struct proa_loop *loop, struct proa_op *op, int fd,
			   unsigned flags);

/**
 * proa_op_openat() - open @path relative to @dirfd (AT_FDCWD allowed).
 * @flags, @mode: as open(2); O_CLOEXEC is always added.
 *
 * @op->res is the new file descriptor or -errno.
 * -EINVAL: @path is NULL.  -EBADF: @dirfd < 0 and not AT_FDCWD.
 */
PROA_API int proa_op_openat(struct proa_loop *loop, struct proa_op *op,
			    int dirfd, const char *path, int flags,
			    unsigned mode);

/**
 * proa_op_close() - close @fd.
 *
 * The caller must have no other operation in flight on @fd
 * (docs/architecture.md rule 6); the network layer enforces that for its
 * sockets.
 */
PROA_API int proa_op_close(struct proa_loop *loop, struct proa_op *op, int fd);

/**
 * proa_op_statx() - statx(2) of @path relative to @dirfd into @buf.
 * -EINVAL: @path or @buf NULL.
 */
PROA_API int proa_op_statx(struct proa_loop *loop, struct proa_op *op,
			   int dirfd, const char *path, int flags,
			   unsigned mask, struct statx *buf);

/*
 * File and metadata operations beyond open, close and stat.  Each is an
 * io_uring opcode where the kernel has it (PROA_FEAT_OP_* below, see
 * proa_loop_feature()) and a call on the default pool's file lane where it
 * does not, and on the epoll backend; getdents and copy_file_range have
 * no opcode and always run there.  Either way the contract is the one
 * above, and @op->res is what the system call of the same name returns:
 * 0 (or the documented count) or -errno.  Paths are borrowed until the
 * callback; a path longer than PATH_MAX completes with -ENAMETOOLONG.
 */

/* openat2(2)'s struct open_how, field for field (the kernel headers are
 * not included here). */
struct proa_open_how {
	uint64_t flags;	  /* O_* as open(2); O_CLOEXEC is always added */
	uint64_t mode;	  /* with O_CREAT or O_TMPFILE, else 0 */
	uint64_t resolve; /* PROA_RESOLVE_* */
};

/* openat2(2)'s RESOLVE_* flags, with the kernel's values. */
#define PROA_RESOLVE_NO_XDEV 0x01U
#define PROA_RESOLVE_NO_MAGICLINKS 0x02U
#define PROA_RESOLVE_NO_SYMLINKS 0x04U
#define PROA_RESOLVE_BENEATH 0x08U
#define PROA_RESOLVE_IN_ROOT 0x10U
#define PROA_RESOLVE_CACHED 0x20U

/**
 * proa_op_openat2() - openat2(2): open @path relative to @dirfd
 * (AT_FDCWD allowed) as @how says (PROA_FEAT_OP_OPENAT2).
 * @how: read during the call, not kept; O_CLOEXEC is added to its flags.
 *
 * @op->res is the new file descriptor or -errno, as openat2(2): -EXDEV
 * when @path leaves @dirfd under PROA_RESOLVE_BENEATH (an absolute path,
 * "..", a symlink out), -ELOOP for a symlink PROA_RESOLVE_NO_SYMLINKS
 * refuses, -EAGAIN under PROA_RESOLVE_CACHED when the lookup would have to
 * wait for the disk, -EINVAL for O_DIRECT on a file system that refuses
 * it and for flags, mode or resolve bits openat2(2) refuses.
 * -EINVAL: @path or @how NULL, or @how->flags or @how->mode beyond 32
 * bits (no open flag or mode is).  -EBADF: @dirfd < 0 and not AT_FDCWD.
 */
PROA_API int proa_op_openat2(struct proa_loop *loop, struct proa_op *op,
			     int dirfd, const char *path,
			     const struct proa_open_how *how);

/**
 * proa_op_fallocate() - fallocate(2) @fd: @mode (0, or FALLOC_FL_*) over
 * @len bytes from @off (PROA_FEAT_OP_FALLOCATE).
 * -EINVAL: @off < 0 or @len <= 0.
 */
PROA_API int proa_op_fallocate(struct proa_loop *loop, struct proa_op *op,
			       int fd, int mode, int64_t off, int64_t len);

/**
 * proa_op_ftruncate() - ftruncate(2) @fd to @len bytes
 * (PROA_FEAT_OP_FTRUNCATE: Linux 6.9; the file lane before).
 * -EINVAL: @len < 0.
 */
PROA_API int proa_op_ftruncate(struct proa_loop *loop, struct proa_op *op,
			       int fd, int64_t len);

/**
 * proa_op_unlinkat() - unlinkat(2) @path relative to @dirfd; @flags 0 or
 * AT_REMOVEDIR (PROA_FEAT_OP_UNLINKAT).
 * -EINVAL: @path NULL, other @flags.  -EBADF: @dirfd < 0, not AT_FDCWD.
 */
PROA_API int proa_op_unlinkat(struct proa_loop *loop, struct proa_op *op,
			      int dirfd, const char *path, int flags);

/**
 * proa_op_renameat2() - renameat2(2) @oldpath (relative to @olddirfd) to
 * @newpath (relative to @newdirfd); @flags 0 or RENAME_NOREPLACE,
 * RENAME_EXCHANGE, RENAME_WHITEOUT (PROA_FEAT_OP_RENAMEAT).
 * -EINVAL: a path NULL.  -EBADF: a dirfd < 0 and not AT_FDCWD.
 */
PROA_API int proa_op_renameat2(struct proa_loop *loop, struct proa_op *op,
			       int olddirfd, const char *oldpath, int newdirfd,
			       const char *newpath, unsigned flags);

/**
 * proa_op_mkdirat() - mkdirat(2) @path relative to @dirfd with @mode
 * (PROA_FEAT_OP_MKDIRAT).
 * -EINVAL: @path NULL.  -EBADF: @dirfd < 0 and not AT_FDCWD.
 */
PROA_API int proa_op_mkdirat(struct proa_loop *loop, struct proa_op *op,
			     int dirfd, const char *path, unsigned mode);

/**
 * proa_op_symlinkat() - symlinkat(2): a symbolic link @linkpath (relative
 * to @newdirfd) that points at @target (PROA_FEAT_OP_SYMLINKAT).
 * -EINVAL: @target or @linkpath NULL.  -EBADF: @newdirfd < 0 and not
 * AT_FDCWD.
 */
PROA_API int proa_op_symlinkat(struct proa_loop *loop, struct proa_op *op,
			       const char *target, int newdirfd,
			       const char *linkpath);

/**
 * proa_op_linkat() - linkat(2): a hard link @newpath (relative to
 * @newdirfd) to @oldpath (relative to @olddirfd); @flags 0,
 * AT_SYMLINK_FOLLOW, AT_EMPTY_PATH (PROA_FEAT_OP_LINKAT).
 * -EINVAL: a path NULL.  -EBADF: a dirfd < 0 and not AT_FDCWD.
 */
PROA_API int proa_op_linkat(struct proa_loop *loop, struct proa_op *op,
			    int olddirfd, const char *oldpath, int newdirfd,
			    const char *newpath, int flags);

/**
 * proa_op_getdents() - read directory entries of @dirfd (open with
 * O_DIRECTORY) into @buf, from the descriptor's position: getdents64(2),
 * always on the file lane (io_uring has no such opcode).
 * @buf: borrowed until the callback; it fills with struct dirent64
 *       records (<dirent.h>), each d_reclen bytes long.
 * @len: at most INT32_MAX; getdents64(2) wants room for one record at
 *       least (-EINVAL in @op->res otherwise).
 *
 * @op->res is the byte count, 0 at the end of the directory, or -errno
 * (-ENOTDIR for a file).  Two getdents on one descriptor at once share its
 * position: keep one in flight.
 * -EINVAL: @buf NULL or @len > INT32_MAX.  -EBADF: @dirfd < 0.
 */
PROA_API int proa_op_getdents(struct proa_loop *loop, struct proa_op *op,
			      int dirfd, void *buf, size_t len);

/**
 * proa_op_copy_file_range() - copy_file_range(2): up to @len bytes of
 * @fd_in at @off_in to @fd_out at @off_out inside the kernel, always on
 * the file lane (io_uring has no such opcode).
 * @off_in, @off_out: offsets, or -1 for the descriptor's position (which
 *       then moves).
 * @flags: 0 (copy_file_range(2) takes no flags yet).
 *
 * @op->res is the byte count, which may be short (0 at the end of
 * @fd_in), or -errno.
 * -EINVAL: @len > INT32_MAX, an offset < -1, @flags not 0.  -EBADF: an
 * fd < 0.
 */
PROA_API int proa_op_copy_file_range(struct proa_loop *loop, struct proa_op *op,
				     int fd_in, int64_t off_in, int fd_out,
				     int64_t off_out, size_t len,
				     unsigned flags);

/**
 * proa_op_poll() - wait until @fd is ready for @events (POLLIN, POLLOUT,
 * ...).  @op->res is the ready mask or -errno.  With PROA_POLL_MULTISHOT in
 * @flags the op reports every readiness change with PROA_OP_F_MORE until it
 * is cancelled or fails.
 * -EINVAL: @events is 0 or @flags unknown.
 */
PROA_API int proa_op_poll(struct proa_loop *loop, struct proa_op *op, int fd,
			  unsigned events, unsigned flags);

/*
 * Sockets.  The descriptor must be non-blocking or not: io_uring does not
 * care, and the epoll backend makes its own sockets non-blocking.  Sends
 * always add MSG_NOSIGNAL: a peer that went away is -EPIPE in @op->res,
 * never a SIGPIPE.
 */

/**
 * proa_op_accept() - accept a connection on the listening socket @fd.
 * @addr, @addrlen: where the peer's address goes (both NULL: not wanted);
 *       *@addrlen is the size of @addr on entry, as for accept4(2).
 * @flags: 0 or PROA_ACCEPT_MULTISHOT: one completion per connection, with
 *       PROA_OP_F_MORE, until cancelled or an error ends it (then @addr
 *       must be NULL: one address buffer cannot serve many completions).
 *
 * @op->res is the new descriptor (SOCK_NONBLOCK | SOCK_CLOEXEC) or -errno.
 * -EINVAL: @addr without @addrlen, or @addr with PROA_ACCEPT_MULTISHOT,
 *  or unknown @flags.  -EOPNOTSUPP: PROA_ACCEPT_MULTISHOT on a kernel
 *  without it (PROA_FEAT_ACCEPT_MULTISHOT).
 */
PROA_API int proa_op_accept(struct proa_loop *loop, struct proa_op *op, int fd,
			    struct sockaddr *addr, unsigned *addrlen,
			    unsigned flags);

/**
 * proa_op_connect() - connect @fd to @addr (@addrlen bytes, borrowed until
 * the callback).  @op->res is 0 or -errno (-ECONNREFUSED, -ENETUNREACH...).
 * -EINVAL: @addr NULL or @addrlen 0.
 */
PROA_API int proa_op_connect(struct proa_loop *loop, struct proa_op *op, int fd,
			     const struct sockaddr *addr, unsigned addrlen);

/**
 * proa_op_recv() - receive up to @len bytes into @buf; @msg_flags as
 * recv(2).  @op->res is the byte count (0: the peer shut its side) or
 * -errno.
 */
PROA_API int proa_op_recv(struct proa_loop *loop, struct proa_op *op, int fd,
			  void *buf, size_t len, int msg_flags);

/**
 * proa_op_recv_select() - receive into a buffer the kernel picks from @br
 * when data arrives, so that an idle socket holds no buffer.
 * @flags: 0 or PROA_RECV_MULTISHOT (one completion per arrival, with
 *       PROA_OP_F_MORE, until an error, EOF or cancel ends it), or
 *       PROA_RECV_POLL_FIRST for a one-shot receive on a socket that is
 *       probably empty (io_uring's IORING_RECVSEND_POLL_FIRST: no first
 *       attempt; on epoll, where every receive waits for readiness
 *       anyway, it changes nothing).
 *
 * A completion with data has PROA_OP_F_BUFFER set: the bytes are at
 * proa_buf_ring_buf(@br, proa_op_buffer_id(@op)), @op->res of them, and the
 * buffer is the caller's until it gives it back with proa_buf_ring_put().
 * -ENOBUFS in @op->res: @br was empty; nothing was lost (the data waits
 * in the socket): give buffers back and submit again.
 * -EOPNOTSUPP: the kernel has no provided-buffer rings, or no multishot
 *  receive for PROA_RECV_MULTISHOT (PROA_FEAT_BUF_RING,
 *  PROA_FEAT_RECV_MULTISHOT).  -EINVAL: @br of another loop, or @flags.
 */
PROA_API int proa_op_recv_select(struct proa_loop *loop, struct proa_op *op,
				 int fd, struct proa_buf_ring *br,
				 unsigned flags);

/**
 * proa_op_send() - send @len bytes of @buf; @msg_flags as send(2), plus
 * MSG_NOSIGNAL.  @op->res is the byte count, which may be short, or -errno.
 */
PROA_API int proa_op_send(struct proa_loop *loop, struct proa_op *op, int fd,
			  const void *buf, size_t len, int msg_flags);

/**
 * proa_op_sendmsg() / proa_op_recvmsg() - sendmsg(2) and recvmsg(2); the
 * msghdr, its iovecs, name and control buffers are borrowed until the
 * callback.  sendmsg adds MSG_NOSIGNAL.  -EINVAL: @msg NULL.
 */
PROA_API int proa_op_sendmsg(struct proa_loop *loop, struct proa_op *op, int fd,
			     const struct msghdr *msg, int msg_flags);
PROA_API int proa_op_recvmsg(struct proa_loop *loop, struct proa_op *op, int fd,
			     struct msghdr *msg, int msg_flags);

/**
 * proa_op_sendmsg_zc() - sendmsg(2) without copying the bytes: the kernel
 * sends from the pages of @msg's iovecs (IORING_OP_SENDMSG_ZC).  The
 * callback runs twice when the send took the bytes: first with
 * PROA_OP_F_MORE and @op->res the byte count (the msghdr and the iovec
 * array are the caller's again), then with PROA_OP_F_NOTIF once the kernel
 * is done with the bytes themselves - for TCP, when the peer acknowledged
 * them - and only then may they be changed or freed.  The first callback
 * may carry an error (-EOPNOTSUPP for a socket that cannot, AF_UNIX) and
 * still have PROA_OP_F_MORE: the notification follows whenever it is set,
 * and only then.
 * The notification has @op->res 0 and, where the kernel reports it
 * (PROA_FEAT_SEND_ZC_REPORT), PROA_OP_F_ZC_COPIED if it had to copy after
 * all (loopback, a device that cannot gather): zero-copy then costs more
 * than a plain sendmsg.  Adds MSG_NOSIGNAL.  -EOPNOTSUPP where the ring
 * has no such op (PROA_FEAT_OP_SENDMSG_ZC; never on the epoll backend).
 */
PROA_API int proa_op_sendmsg_zc(struct proa_loop *loop, struct proa_op *op,
				int fd, const struct msghdr *msg,
				int msg_flags);

/**
 * proa_op_recvmsg_select() - multishot recvmsg(2) into buffers of @br, for
 * datagram sockets: each completion is one datagram, laid out in the
 * buffer as the kernel's io_uring_recvmsg_out; proa_recvmsg_parse() finds
 * the address and the payload.  @msg gives only the room to reserve:
 * msg_namelen for the address, msg_controllen for ancillary data (the
 * rest is ignored); it is borrowed until the final completion.
 * -ENOBUFS ends it when @br is empty (the datagrams wait in the socket).
 * -EOPNOTSUPP without PROA_FEAT_RECV_MULTISHOT.
 */
PROA_API int proa_op_recvmsg_select(struct proa_loop *loop, struct proa_op *op,
				    int fd, struct msghdr *msg,
				    struct proa_buf_ring *br);

/* One datagram of proa_op_recvmsg_select(). */
struct proa_recvmsg_out {
	const struct sockaddr *name; /* NULL if none */
	unsigned namelen;	     /* its length (at most msg_namelen) */
	const void *control;
	unsigned controllen;
	const void *payload;
	size_t payloadlen; /* bytes present in the buffer */
	size_t truelen;	   /* the datagram's length (> payloadlen: cut) */
	int flags;	   /* MSG_TRUNC, MSG_CTRUNC */
};

/**
 * proa_recvmsg_parse() - read the datagram in @buf (the @len bytes of the
 * completion) of a proa_op_recvmsg_select() made with @msg.
 * Return: 0, or -EINVAL if @len cannot hold the header.
 */
PROA_API int proa_recvmsg_parse(const struct msghdr *msg, const void *buf,
				size_t len, struct proa_recvmsg_out *out);

/**
 * proa_op_shutdown() - shutdown(2) @fd: @how is SHUT_RD, SHUT_WR or
 * SHUT_RDWR (-EINVAL otherwise).
 */
PROA_API int proa_op_shutdown(struct proa_loop *loop, struct proa_op *op,
			      int fd, int how);

/**
 * proa_op_splice() - move up to @len bytes from @fd_in to @fd_out inside
 * the kernel (splice(2)); one of the two must be a pipe.  A file's bytes go
 * to a socket as references to its page cache, never copied: file to pipe,
 * then pipe to socket.
 * @off_in, @off_out: the offset in a file, or -1 for a pipe or a socket.
 * @flags: SPLICE_F_MOVE, SPLICE_F_NONBLOCK, SPLICE_F_MORE.
 *
 * res: the bytes moved, 0 at the end of the input, or -errno; -EAGAIN
 * when a non-blocking socket or pipe is full (wait with proa_op_poll()).
 * io_uring runs every splice in its kernel workers (io-wq), so each costs
 * a hand-off there: worth it for big transfers, not for a few KiB.
 *
 * Return: 0; -EBADF; -EINVAL (@len over INT32_MAX, an offset below -1,
 *         unknown @flags); -EOPNOTSUPP where the backend has no splice
 *         (the epoll backend, or a kernel without IORING_OP_SPLICE:
 *         PROA_FEAT_OP_SPLICE).
 * Thread: loop.
 */
PROA_API int proa_op_splice(struct proa_loop *loop, struct proa_op *op,
			    int fd_in, int64_t off_in, int fd_out,
			    int64_t off_out, size_t len, unsigned flags);

/*
 * Registered files.  proa_loop_register_fd() puts a reference to an open
 * file in a slot of the loop's table; an op then names the slot instead of
 * a descriptor with PROA_FIXED_FD(slot) as its fd, and io_uring skips the
 * descriptor lookup and file reference of every submission
 * (IOSQE_FIXED_FILE).  The ops that take one: read, write, readv, writev,
 * fsync, read_fixed, write_fixed, recv and send; any other op refuses it
 * with -EBADF.  A slot not in use is -EBADF at submit.
 *
 * The slot holds its own reference: the caller may close its descriptor
 * once registered.  With the kernel's table (PROA_FEAT_REG_FILES) the
 * kernel holds it; on the epoll backend, or a kernel without the table,
 * the loop keeps a duplicate descriptor (one more fd per slot) and the
 * ops use it as a plain fd - same contract, no saving.  An op on a slot
 * of the kernel's table never moves to the pool's file lane: where the
 * kernel refuses the call (-EOPNOTSUPP) that is the result.
 */

/* The fd argument that names slot @slot (0 .. 2^24-1) of the loop's
 * registered-file table: a negative number no descriptor can be. */
#define PROA_FIXED_FD(slot) ((int)(-0x7fffffff - 1 + (int)(slot)))

/** proa_fd_is_fixed() - whether @fd is a PROA_FIXED_FD() slot.
 * Thread: any. */
static inline bool proa_fd_is_fixed(int fd)
{
	return fd < -0x7fffffff - 1 + (1 << 24);
}

/** proa_fd_slot() - the slot of a PROA_FIXED_FD() @fd.  Thread: any. */
static inline unsigned proa_fd_slot(int fd)
{
	return (unsigned)(fd - (-0x7fffffff - 1));
}

/**
 * proa_loop_register_fd() - put a reference to @fd's open file in the
 * lowest free slot of @loop's registered-file table (made on first use:
 * up to 4096 slots, at most RLIMIT_NOFILE; a sparse table in the kernel,
 * IORING_REGISTER_FILES2, filled with IORING_REGISTER_FILES_UPDATE).
 *
 * Return: the slot (>= 0; pass PROA_FIXED_FD(slot) to ops); -EBADF if
 *         @fd is not open; -ENOSPC when the table is full; -ENOMEM,
 *         -EMFILE; -EINVAL for a NULL @loop; PROA_ECLOSED.
 * Thread: loop.
 */
PROA_API int proa_loop_register_fd(struct proa_loop *loop, int fd);

/**
 * proa_loop_unregister_fd() - empty @slot, dropping the table's
 * reference to the file (the caller's own descriptor, if still open, is
 * not touched).
 *
 * Return: 0; -EBADF if @slot is not in use; -EBUSY while an op on the
 *         slot is queued or in flight (it could still use the file);
 *         -EINVAL for a NULL @loop; PROA_ECLOSED after
 *         proa_loop_close(), which empties every slot.
 * Thread: loop.
 */
PROA_API int proa_loop_unregister_fd(struct proa_loop *loop, unsigned slot);

/*
 * Registered buffers.  proa_loop_register_buffers() pins the caller's
 * buffers once (IORING_REGISTER_BUFFERS), so that proa_op_read_fixed()
 * and proa_op_write_fixed() into them skip the page pinning of every
 * submission (IORING_OP_READ_FIXED/WRITE_FIXED): the way to O_DIRECT
 * reads at the device's speed.  O_DIRECT wants the buffer, offset and
 * length aligned to the device's logical block (statx's
 * stx_dio_mem_align/stx_dio_offset_align; 4096 is always enough).
 *
 * Where registration is refused, it says so and registers nothing:
 * -ENOMEM when the pages would exceed RLIMIT_MEMLOCK (a process without
 * CAP_IPC_LOCK is charged for them) or memory is short.  The caller
 * decides what to do; plain proa_op_read() into the same memory always
 * works.  Where the kernel has no fixed-buffer ops (PROA_FEAT_REG_BUFFERS
 * false) and on the epoll backend, registration only records the
 * buffers and the _fixed ops are plain reads and writes: the same
 * contract, none of the saving.
 */

/**
 * proa_loop_register_buffers() - register @nr buffers (1..16384, each
 * 1 byte..1 GiB) with @loop.  @iov is copied; the memory it points at is
 * borrowed until proa_loop_unregister_buffers() or proa_loop_close().
 *
 * Return: 0; -EBUSY if buffers are registered already (unregister
 *         first); -EINVAL for bad @iov, @nr or @loop; -ENOMEM (also over
 *         RLIMIT_MEMLOCK, logged at WARN), -EFAULT (memory the kernel
 *         cannot pin: file-backed or not mapped); PROA_ECLOSED.
 * Thread: loop.
 */
PROA_API int proa_loop_register_buffers(struct proa_loop *loop,
					const struct iovec *iov, unsigned nr);

/**
 * proa_loop_unregister_buffers() - unregister the loop's buffers.
 * Return: 0; -ENXIO if none are registered; -EBUSY while a _fixed op is
 *         queued or in flight; -EINVAL for a NULL @loop; PROA_ECLOSED
 *         after proa_loop_close(), which unregisters them.
 * Thread: loop.
 */
PROA_API int proa_loop_unregister_buffers(struct proa_loop *loop);

/**
 * proa_op_read_fixed() - proa_op_read() into registered buffer @index:
 * [@buf, @buf + @len) must lie inside it (-EINVAL otherwise, or when no
 * buffers are registered).  @fd may be a PROA_FIXED_FD() slot.
 */
PROA_API int proa_op_read_fixed(struct proa_loop *loop, struct proa_op *op,
				int fd, void *buf, size_t len, int64_t off,
				unsigned index);

/** proa_op_write_fixed() - proa_op_write() from registered buffer @index;
 * see proa_op_read_fixed(). */
PROA_API int proa_op_write_fixed(struct proa_loop *loop, struct proa_op *op,
				 int fd, const void *buf, size_t len,
				 int64_t off, unsigned index);

/*
 * Provided-buffer rings: @nbufs buffers of @bufsize bytes that the kernel
 * hands out to proa_op_recv_select() as data arrives (io_uring's
 * IORING_REGISTER_PBUF_RING).  One ring can serve every socket of a loop.
 * Thread: loop, all of them.
 */

/**
 * proa_buf_ring_new() - make a ring of @nbufs (a power of two, 1..32768)
 * buffers of @bufsize bytes (1..1 GiB, rounded up to 64) for @loop.
 * Return: 0; -EINVAL for bad sizes; -EOPNOTSUPP without
 *         PROA_FEAT_BUF_RING; -ENOMEM; -ENOSPC when the loop has 65536
 *         rings; PROA_ECLOSED.
 */
PROA_API int proa_buf_ring_new(struct proa_buf_ring **out,
			       struct proa_loop *loop, unsigned nbufs,
			       size_t bufsize);

/**
 * proa_buf_ring_free() - unregister and free @br.
 * Return: 0; -EBUSY while an op that selects from @br is in flight (it
 *         could still write into the buffers).  NULL is a no-op.
 *         Rings still allocated at proa_loop_close() are freed
 *         there: their pointers are dead after it.
 */
PROA_API int proa_buf_ring_free(struct proa_buf_ring *br);

/** proa_buf_ring_buf() - the memory of buffer @id (NULL if out of range). */
PROA_API void *proa_buf_ring_buf(const struct proa_buf_ring *br, unsigned id);

/** proa_buf_ring_bufsize() - the size of each buffer. */
PROA_API size_t proa_buf_ring_bufsize(const struct proa_buf_ring *br);

/** proa_buf_ring_nbufs() - how many buffers the ring has in all. */
PROA_API unsigned proa_buf_ring_nbufs(const struct proa_buf_ring *br);

/**
 * proa_buf_ring_put() - give buffer @id back to the kernel.
 * Return: 0; -EINVAL for an @id out of range; -EALREADY if the ring holds
 *         it already (a double put would hand one buffer out twice).
 */
PROA_API int proa_buf_ring_put(struct proa_buf_ring *br, unsigned id);

/** proa_buf_ring_available() - buffers the kernel can hand out now. */
PROA_API unsigned proa_buf_ring_available(const struct proa_buf_ring *br);

/** proa_op_buffer_id() - the buffer a completion used (PROA_OP_F_BUFFER). */
static inline unsigned proa_op_buffer_id(const struct proa_op *op)
{
	return op->flags >> 16;
}

/**
 * proa_op_cancel() - ask for @op to be cancelled.
 *
 * Asynchronous (IORING_OP_ASYNC_CANCEL): @op still completes exactly once,
 * with -ECANCELED or with its real result if it won the race; its buffers
 * stay borrowed until then.  An op still waiting for SQ space completes
 * with -ECANCELED in the next iteration.
 *
 * Return: 0 if the request is on its way; -EALREADY if one already is;
 *         -ENOENT if @op is idle.
 * Thread: loop.
 */
PROA_API int proa_op_cancel(struct proa_op *op);

#ifdef __cplusplus
}
#endif

#endif /* PROA_OP_H */
