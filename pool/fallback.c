/* SPDX-License-Identifier: MIT */
/*
 * pool/fallback.c - file operations on the file lane: those this kernel's
 * io_uring lacks (the probe said so: proa_loop_feature() is false for
 * them), and those it refused at run time with -EOPNOTSUPP.  The op keeps
 * its contract: INFLIGHT until its one completion, the callback on the
 * loop thread, cancel until a worker starts it.  The loop reaches this as
 * its executor, handed to it by proa_loop_new() at the end of this file.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pool_int.h"

/* Thread: worker.  The same call the SQE would have made. */
static int32_t file_job(void *arg, void **value)
{
	struct proa_op *op = arg;
	int fd = op->priv.fd;
	ssize_t r;

	(void)value;
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
			  op->priv.u.addr2);
		break;
	default:
		return -EOPNOTSUPP;
	}
	if (r < 0)
		return -errno;
	return r > INT32_MAX ? INT32_MAX : (int32_t)r;
}

static int fallback_submit(struct proa_loop *loop, struct proa_op *op)
{
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
	/* While the op is pooled its ring link is unused: it points at its
	 * job, for cancel. */
	op->priv.link.next = &j->link;
	op->priv.iflags |= PROA__OPF_POOLED;
	op->priv.state = PROA_OP_INFLIGHT;
	return 0;
}

static int fallback_cancel(struct proa_op *op)
{
	struct proa__pool_job *j =
	    proa_container_of(op->priv.link.next, struct proa__pool_job, link);

	if (op->priv.iflags & PROA__OPF_CANCEL_REQ)
		return -EALREADY;
	op->priv.iflags |= PROA__OPF_CANCEL_REQ;
	/* Started: it cannot be stopped, and completes with its result. */
	proa__pool_job_cancel(j);
	return 0;
}

static const struct proa__executor file_lane = {
    .submit = fallback_submit,
    .cancel = fallback_cancel,
};

/* Here, not in proactor/, so that the loop is handed the pool's file lane
 * without calling up to it (proactor_int.h, "the executor"). */
int proa_loop_new(struct proa_loop **out, const struct proa_loop_opts *opts)
{
	return proa__loop_new(out, opts, &file_lane);
}
