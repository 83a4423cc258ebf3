/* SPDX-License-Identifier: MIT */
/*
 * proactor/debug.c - debug mode: the wrong-thread check, slow callbacks,
 * and the list of what keeps a loop busy.  Debug mode is PROA_DEBUG=1 or
 * proa_loop_opts.debug; the checks compile in with PROA_DEBUG_CHECKS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proactor_int.h"

static void thread_name(pthread_t t, char *buf, size_t len)
{
	if (pthread_getname_np(t, buf, len) != 0)
		snprintf(buf, len, "?");
}

void proa__forked(struct proa_loop *loop, const char *func)
{
	if (!loop->sched.debug)
		return;
	proa__log(PROA_LOG_ERROR,
		  "%s() called in a child of fork() on loop %p of the "
		  "parent; the child may only call "
		  "proa_loop_discard_after_fork() on it",
		  func, (void *)loop);
	abort();
}

void proa__check_thread(struct proa__sched *s, const char *func)
{
	struct proa_loop *loop = (struct proa_loop *)(void *)s;
	char me[32], owner[32];

	if (proa__loop_is_parents(loop))
		proa__forked(loop, func);
	/* Any one thread may use the loop before its first run. */
	if (!atomic_load_explicit(&loop->owned, memory_order_acquire))
		return;
	if (pthread_equal(loop->owner, pthread_self()))
		return;
	thread_name(pthread_self(), me, sizeof(me));
	thread_name(loop->owner, owner, sizeof(owner));
	proa__log(PROA_LOG_ERROR,
		  "%s() called on thread %d (%s), but loop %p belongs to "
		  "thread %d (%s); only the _threadsafe calls may cross "
		  "threads",
		  func, (int)gettid(), me, (void *)loop, (int)loop->owner_tid,
		  owner);
	/* Debug mode turns misuse that would corrupt the loop into a stop
	 * with a message, by request (docs/architecture.md rule 2). */
	abort();
}

void proa__run_timed(struct proa_loop *loop, proa_callback_fn fn, void *arg,
		     struct proa_op *op)
{
	uint64_t t0 = proa__now(), dt;
	char name[128];
	const void *addr = op ? (const void *)op->cb : (const void *)fn;

	if (op)
		op->cb(op);
	else
		fn(arg);
	dt = proa__now() - t0;
	if (dt < loop->slow_ns)
		return;
	proa__describe_addr(addr, name, sizeof(name));
	proa__log(PROA_LOG_WARN, "loop %p: %s callback %s took %.1f ms",
		  (void *)loop, op ? proa__op_kind_name(op->priv.kind) : "a",
		  name, (double)dt / 1e6);
}

struct list_ctx {
	unsigned n;
};

static void list_one(struct proa_op *op, void *arg)
{
	static const char *const states[] = {"idle", "queued", "in flight"};
	struct list_ctx *ctx = arg;
	char cb[128];

	if (op->priv.iflags & PROA__OPF_INTERNAL)
		return;
	ctx->n++;
	proa__describe_addr((const void *)op->cb, cb, sizeof(cb));
	proa__log(
	    PROA_LOG_WARN, "  op %p: %s fd %d, %s%s, callback %s", (void *)op,
	    proa__op_kind_name(op->priv.kind), op->priv.fd,
	    states[op->priv.state % 3],
	    (op->priv.iflags & PROA__OPF_CANCEL_REQ) ? ", cancelling" : "", cb);
}

void proa__list_inflight(struct proa_loop *loop, const char *why)
{
	struct list_ctx ctx = {0};

	proa__log(PROA_LOG_WARN,
		  "loop %p: %s: %u operations, %llu timers, %s ready "
		  "callbacks, %s cross-thread items, %d references, %s "
		  "signal watches",
		  (void *)loop, why, proa__ring_nr_user(loop->ring),
		  (unsigned long long)loop->timers_active,
		  proa_list_empty(&loop->ready) ? "no" : "some",
		  proa__mpsc_empty(&loop->q) ? "no" : "some",
		  atomic_load(&loop->refs),
		  proa_list_empty(&loop->signals) ? "no" : "some");
	proa__ring_for_each(loop->ring, list_one, &ctx);
}
