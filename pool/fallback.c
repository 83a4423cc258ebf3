/* SPDX-License-Identifier: MIT */
/*
 * pool/fallback.c - file operations on the file lane: those this kernel's
 * io_uring lacks (the probe said so: proa_loop_feature() is false for
 * them), and those it refused at run time with -EOPNOTSUPP, and on the
 * epoll backend regular files.  This is the ring's executor
 * (ring/ring_int.h), handed to it by proa_loop_new() at the end of this
 * file: the ring keeps the op's life (INFLIGHT and "away" while here, the
 * callback after the ring reaps it); this file only runs the call on a
 * worker and hands the result back with proa__exec_complete().  Cancel
 * stops a job until a worker starts it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pool_int.h"

/* Thread: worker.  openat2(2) from the fields proactor/ops.c filled
 * (glibc 2.36 has no wrapper). */
static long do_openat2(const struct proa__op_priv *p)
{
	struct open_how how = {
	    .flags = p->extra,
	    .mode = p->len,
	    .resolve = p->off,
	};

	return syscall(SYS_openat2, p->fd, p->addr, &how, sizeof(how));
}

/* Thread: worker.  copy_file_range(2); an offset of -1 means the
 * descriptor's position, as a NULL offset pointer does. */
static ssize_t do_copy_file_range(const struct proa__op_priv *p)
{
	off64_t in = (off64_t)p->off, out = (off64_t)p->arg64;

	return copy_file_range(p->fd, p->off == UINT64_MAX ? NULL : &in,
			       (int)p->extra,
			       p->arg64 == UINT64_MAX ? NULL : &out, p->len, 0);
}

static bool too_long(const void *path)
{
	return strnlen(path, PATH_MAX) >= PATH_MAX;
}

/*
 * Thread: worker.  io_uring's prep copies every path of an op before it
 * looks anything up, so a path of PATH_MAX bytes or more is -ENAMETOOLONG
 * whatever else is wrong; linkat(2) looks its old path up before it copies
 * the new one (a missing old name would be -ENOENT).  Checking first
 * gives the file lane io_uring's answer.
 */
static bool paths_too_long(const struct proa__op_priv *p)
{
	switch (p->kind) {
	case PROA__OP_OPENAT:
	case PROA__OP_STATX:
	case PROA__OP_OPENAT2:
	case PROA__OP_UNLINKAT:
	case PROA__OP_MKDIRAT:
		return too_long(p->addr);
	case PROA__OP_RENAMEAT:
	case PROA__OP_SYMLINKAT:
	case PROA__OP_LINKAT:
		return too_long(p->addr) || too_long(p->addr2);
	default:
		return false;
	}
}

/* Thread: worker.  The same call the SQE would have made, or for getdents
 * and copy_file_range, which have no opcode, the only one. */
static int32_t file_job(void *arg, void **value)
{
	struct proa_op *op = arg;
	const struct proa__op_priv *p = &op->priv;
	int fd = op->priv.fd;
	ssize_t r;

	(void)value;
	if (paths_too_long(p))
		return -ENAMETOOLONG;
	switch (op->priv.kind) {
	case PROA__OP_READ:
	case PROA__OP_WRITE:
	case PROA__OP_READV:
	case PROA__OP_WRITEV:
		r = proa__file_rw(op);
		break;
	case PROA__OP_FSYNC:
		r = op->priv.extra & PROA_FSYNC_DATASYNC ? fdatasync(fd)
							 : fsync(fd);
		break;
	case PROA__OP_OPENAT:
		r = openat(fd, op->priv.addr, (int)op->priv.extra,
			   (mode_t)op->priv.len);
		break;
	case PROA__OP_CLOSE:
		r = close(fd);
		break;
	case PROA__OP_STATX:
		r = statx(fd, op->priv.addr, (int)op->priv.len, op->priv.extra,
			  op->priv.addr2);
		break;
	case PROA__OP_OPENAT2:
		r = do_openat2(p);
		break;
	case PROA__OP_FALLOCATE:
		r = fallocate(fd, (int)p->extra, (off_t)p->off,
			      (off_t)p->arg64);
		break;
	case PROA__OP_FTRUNCATE:
		r = ftruncate(fd, (off_t)p->off);
		break;
	case PROA__OP_UNLINKAT:
		r = unlinkat(fd, p->addr, (int)p->extra);
		break;
	case PROA__OP_RENAMEAT:
		r = renameat2(fd, p->addr, (int)p->len, p->addr2, p->extra);
		break;
	case PROA__OP_MKDIRAT:
		r = mkdirat(fd, p->addr, (mode_t)p->len);
		break;
	case PROA__OP_SYMLINKAT:
		r = symlinkat(p->addr, fd, p->addr2);
		break;
	case PROA__OP_LINKAT:
		r = linkat(fd, p->addr, (int)p->len, p->addr2, (int)p->extra);
		break;
	case PROA__OP_GETDENTS:
		r = getdents64(fd, (void *)p->addr, p->len);
		break;
	case PROA__OP_COPY_FILE_RANGE:
		r = do_copy_file_range(p);
		break;
	default:
		return -EOPNOTSUPP;
	}
	if (r < 0)
		return -errno;
	return r > INT32_MAX ? INT32_MAX : (int32_t)r;
}

/* Loop thread: the ring made @op INFLIGHT and put it away; start it. */
static int file_submit(struct proa__ring *r, struct proa_op *op)
{
	struct proa_loop *loop = op->priv.loop;
	struct proa__pool_job *j;
	struct proa_pool *pool;
	int ret;

	ret = proa_pool_default(&pool, loop);
	if (ret < 0)
		return ret;
	ret = proa__pool_submit(pool, loop, PROA_LANE_FILE, file_job, op, NULL,
				NULL, op, 0, &j);
	if (ret < 0)
		return ret;
	j->ring = r; /* where the op comes home (job_deliver()) */
	op->priv.u.be.exec.job = j;
	return 0;
}

/* Loop thread.  A started job cannot be stopped: it comes home with its
 * result; one not started comes home with -ECANCELED, later. */
static void file_cancel(struct proa__ring *r, struct proa_op *op)
{
	(void)r;
	proa__pool_job_cancel(op->priv.u.be.exec.job);
}

static const struct proa__executor file_lane = {
    .submit = file_submit,
    .cancel = file_cancel,
};

/* Here, not in proactor/, so that the loop is handed the pool's file lane
 * without calling up to it (ring_int.h, "the executor"). */
int proa_loop_new(struct proa_loop **out, const struct proa_loop_opts *opts)
{
	return proa__loop_new(out, opts, &file_lane);
}
