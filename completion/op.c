/* SPDX-License-Identifier: MIT */
/*
 * completion/op.c - the caller-owned operation record: initialisation and
 * state queries.  Submission lives with the loop (proactor/ops.c) and the
 * ring (ring/), which own the transitions.
 */
#include <string.h>

#include "completion_int.h"

void proa_op_init(struct proa_op *op, proa_op_fn cb, void *data)
{
	memset(op, 0, sizeof(*op));
	op->cb = cb;
	op->data = data;
}

bool proa_op_is_idle(const struct proa_op *op)
{
	return op->priv.state == PROA_OP_IDLE;
}

enum proa_op_state proa_op_state(const struct proa_op *op)
{
	return (enum proa_op_state)op->priv.state;
}

const char *proa__op_kind_name(unsigned kind)
{
	static const char *const names[] = {
	    [PROA__OP_NONE] = "none",
	    [PROA__OP_NOP] = "nop",
	    [PROA__OP_TIMEOUT] = "timeout",
	    [PROA__OP_READ] = "read",
	    [PROA__OP_WRITE] = "write",
	    [PROA__OP_READV] = "readv",
	    [PROA__OP_WRITEV] = "writev",
	    [PROA__OP_FSYNC] = "fsync",
	    [PROA__OP_OPENAT] = "openat",
	    [PROA__OP_CLOSE] = "close",
	    [PROA__OP_STATX] = "statx",
	    [PROA__OP_POLL] = "poll",
	    [PROA__OP_ACCEPT] = "accept",
	    [PROA__OP_CONNECT] = "connect",
	    [PROA__OP_RECV] = "recv",
	    [PROA__OP_RECV_SELECT] = "recv_select",
	    [PROA__OP_SEND] = "send",
	    [PROA__OP_SENDMSG] = "sendmsg",
	    [PROA__OP_SENDMSG_ZC] = "sendmsg_zc",
	    [PROA__OP_RECVMSG] = "recvmsg",
	    [PROA__OP_SHUTDOWN] = "shutdown",
	    [PROA__OP_RECVMSG_SELECT] = "recvmsg_select",
	    [PROA__OP_SPLICE] = "splice",
	    [PROA__OP_WAITID] = "waitid",
	    [PROA__OP_OPENAT2] = "openat2",
	    [PROA__OP_FALLOCATE] = "fallocate",
	    [PROA__OP_FTRUNCATE] = "ftruncate",
	    [PROA__OP_UNLINKAT] = "unlinkat",
	    [PROA__OP_RENAMEAT] = "renameat2",
	    [PROA__OP_MKDIRAT] = "mkdirat",
	    [PROA__OP_SYMLINKAT] = "symlinkat",
	    [PROA__OP_LINKAT] = "linkat",
	    [PROA__OP_GETDENTS] = "getdents64",
	    [PROA__OP_COPY_FILE_RANGE] = "copy_file_range",
	};

	if (kind < sizeof(names) / sizeof(names[0]) && names[kind])
		return names[kind];
	return "?";
}
