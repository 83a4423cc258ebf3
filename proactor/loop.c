/* SPDX-License-Identifier: MIT */
/*
 * proactor/loop.c - the event loop: creation, run modes, the iteration, the
 * ready list (call_soon), close.
 *
 * One iteration (iterate()):
 *   1. submit what is queued and wait - not at all if anything is ready,
 *      until the next timer, or until woken;
 *   2. reap completions and run their op callbacks;
 *   3. move due timers and the cross-thread items queued so far to the
 *      ready list;
 *   4. run the ready list as it stands now; what those callbacks schedule
 *      waits for the next iteration, after the next poll (Tornado's order;
 *      docs/architecture.md rule 4), so nothing that reschedules itself
 *      can starve I/O.
 * Callbacks run in steps 2 and 4 only, always on the loop thread, never
 * inside the call that scheduled them.  Op completions are dispatched as
 * they are reaped rather than queued again, because a multishot op can
 * deliver several CQEs in one batch and each must reach its callback.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "proactor_int.h"

/* proactor_int.h: set once a kernel refused a multishot poll. */
atomic_bool proa__poll_no_multishot;

static _Thread_local struct proa_loop *tl_current;

/* The fork generation (proactor_int.h). */
atomic_uint proa__fork_gen;

static void fork_child(void)
{
	atomic_fetch_add_explicit(&proa__fork_gen, 1, memory_order_relaxed);
	/* A fork from inside a callback: the child is not running the
	 * parent's loop, and must be able to run one of its own. */
	tl_current = NULL;
}

__attribute__((constructor)) static void loop_atfork(void)
{
	pthread_atfork(NULL, NULL, fork_child);
}

/* ---- the scheduler interface (completion/ reaches the loop through it) -- */

static void sched_call_soon(struct proa__sched *s, struct proa_handle *h)
{
	struct proa_loop *loop = (struct proa_loop *)(void *)s;

	h->priv.loop = loop;
	proa__call_soon(loop, h);
}

static int sched_timer_start(struct proa__sched *s, struct proa_timer *t,
			     uint64_t delay_ns, proa_callback_fn fn, void *arg)
{
	return proa_loop_call_later((struct proa_loop *)(void *)s, t, delay_ns,
				    fn, arg);
}

static const struct proa__sched_ops sched_ops = {
    .call_soon = sched_call_soon,
    .post = proa__post,
    .timer_start = sched_timer_start,
    .timer_cancel = proa_timer_cancel,
    .op_cancel = proa_op_cancel,
    .check_thread = proa__check_thread,
};

_Static_assert(offsetof(struct proa_loop, sched) == 0,
	       "completion/ finds the scheduler at the start of the loop");

/* ---- creation ---------------------------------------------------------- */

/* getenv() races only a concurrent setenv(), which POSIX leaves to the
 * application; the environment is read once, when a loop is made. */
static int env_ring_mode(enum proa_ring_mode *mode)
{
	const char *v = getenv("PROA_RING"); /* NOLINT(concurrency-mt-unsafe) */

	if (!v || !*v || strcasecmp(v, "auto") == 0)
		return 0;
	if (strcasecmp(v, "defer") == 0)
		*mode = PROA_RING_DEFER_TASKRUN;
	else if (strcasecmp(v, "coop") == 0)
		*mode = PROA_RING_COOP_TASKRUN;
	else if (strcasecmp(v, "plain") == 0)
		*mode = PROA_RING_PLAIN;
	else {
		proa__log(PROA_LOG_ERROR,
			  "PROA_RING=%s: expected auto, defer, coop or plain",
			  v);
		return -EINVAL;
	}
	return 0;
}

static int env_backend(enum proa_backend *b)
{
	const char *v =
	    getenv("PROA_BACKEND"); /* NOLINT(concurrency-mt-unsafe) */

	if (!v || !*v || strcasecmp(v, "auto") == 0)
		return 0;
	if (strcasecmp(v, "io_uring") == 0 || strcasecmp(v, "uring") == 0)
		*b = PROA_BACKEND_IO_URING;
	else if (strcasecmp(v, "epoll") == 0)
		*b = PROA_BACKEND_EPOLL;
	else {
		proa__log(PROA_LOG_ERROR,
			  "PROA_BACKEND=%s: expected auto, io_uring or epoll",
			  v);
		return -EINVAL;
	}
	return 0;
}

/* The most a drain is held back for gathering (threadsafe.c). */
#define POST_GATHER_MAX_NS 1000000
#define POST_GATHER_DEFAULT_NS 4000

/* PROA_POST_GATHER_NS: a decimal count of ns, 0 to turn gathering off. */
static int env_post_gather(int64_t *ns)
{
	const char *v =
	    getenv("PROA_POST_GATHER_NS"); /* NOLINT(concurrency-mt-unsafe) */
	unsigned long long n;
	char *end;

	if (!v || !*v)
		return 0;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (*v < '0' || *v > '9' || *end || errno || n > POST_GATHER_MAX_NS) {
		proa__log(PROA_LOG_ERROR,
			  "PROA_POST_GATHER_NS=%s: expected 0 (off) to %d ns",
			  v, POST_GATHER_MAX_NS);
		return -EINVAL;
	}
	*ns = n ? (int64_t)n : -1;
	return 0;
}

static bool env_debug(void)
{
	const char *v =
	    getenv("PROA_DEBUG"); /* NOLINT(concurrency-mt-unsafe) */

	return v && *v && strcmp(v, "0") != 0;
}

static int resolve_opts(const struct proa_loop_opts *opts,
			struct proa__ring_params *p, bool *debug,
			uint64_t *slow_ns, uint64_t *gather_ns)
{
	struct proa_loop_opts o = {0};
	int ret;

	if (opts)
		o = *opts;
	if ((unsigned)o.ring_mode > PROA_RING_PLAIN ||
	    (unsigned)o.backend > PROA_BACKEND_EPOLL)
		return -EINVAL;
	if (o.backend == PROA_BACKEND_AUTO) {
		ret = env_backend(&o.backend);
		if (ret < 0)
			return ret;
	}
	if (o.ring_mode == PROA_RING_AUTO) {
		ret = env_ring_mode(&o.ring_mode);
		if (ret < 0)
			return ret;
	}
	if (o.post_gather_ns > POST_GATHER_MAX_NS)
		return -EINVAL;
	if (o.post_gather_ns == 0) {
		ret = env_post_gather(&o.post_gather_ns);
		if (ret < 0)
			return ret;
	}
	if (o.sq_entries == 0)
		o.sq_entries = 256;
	if (o.cq_entries == 0)
		o.cq_entries = 16 * o.sq_entries;
	/* The kernel's limits: 32768 SQ entries, twice that for the CQ. */
	if (o.sq_entries > 32768 || o.cq_entries > 65536 ||
	    o.cq_entries < o.sq_entries)
		return -EINVAL;
	p->sq_entries = o.sq_entries;
	p->cq_entries = o.cq_entries;
	p->mode = o.ring_mode; /* meaningless on epoll: ignored there */
	p->backend = o.backend;
	*debug = o.debug > 0 || (o.debug == 0 && env_debug());
	*slow_ns = (uint64_t)(o.slow_callback_ms ? o.slow_callback_ms : 100) *
		   1000000u;
	/* One CPU: the producer cannot run while the loop waits for it. */
	if (o.post_gather_ns < 0 || sysconf(_SC_NPROCESSORS_ONLN) < 2)
		*gather_ns = 0;
	else
		*gather_ns = o.post_gather_ns ? (uint64_t)o.post_gather_ns
					      : POST_GATHER_DEFAULT_NS;
	return 0;
}

/* The public proa_loop_new() is pool/'s: it hands over the executor. */
int proa__loop_new(struct proa_loop **out, const struct proa_loop_opts *opts,
		   const struct proa__executor *exec)
{
	struct proa__ring_params params;
	struct proa_loop *loop;
	char reason[256] = "";
	size_t size;
	uint64_t slow_ns, gather_ns;
	bool debug;
	int ret;

	if (!out || (opts && !PROA__RESERVED_ZERO(opts)))
		return -EINVAL;
	ret = resolve_opts(opts, &params, &debug, &slow_ns, &gather_ns);
	if (ret < 0)
		return ret;
	/* The queue's cache-line alignment is part of the type. */
	size = (sizeof(*loop) + PROA__CACHELINE - 1) &
	       ~(size_t)(PROA__CACHELINE - 1);
	loop = aligned_alloc(PROA__CACHELINE, size);
	if (!loop)
		return -ENOMEM;
	memset(loop, 0, size);
	loop->sched.ops = &sched_ops;
	loop->sched.debug = debug;
	loop->slow_ns = slow_ns;
	loop->gather_ns = gather_ns;
	loop->q.fork_gen =
	    atomic_load_explicit(&proa__fork_gen, memory_order_relaxed);
	loop->wake_fd = -1;
	loop->sig_fd = -1;
	proa_list_init(&loop->ready);
	proa_list_init(&loop->hooks);
	proa__iter_hooks_init(loop);
	proa__mpsc_init(&loop->q);
	proa__signals_init(loop);
	ret = proa__ring_new(&loop->ring, &params, reason, sizeof(reason));
	if (ret < 0) {
		if (debug)
			proa__log(PROA_LOG_INFO, "no loop: %s", reason);
		goto err_free_loop;
	}
	proa__ring_set_executor(loop->ring, exec);
	ret = proa__wake_init(loop);
	if (ret < 0)
		goto err_ring_free;
	loop->now = proa__now();
	*out = loop;
	return 0;
err_ring_free:
	proa__ring_free(loop->ring);
err_free_loop:
	free(loop);
	return ret;
}

/* ---- the ready list ------------------------------------------------------ */

void proa__call_soon(struct proa_loop *loop, struct proa_handle *h)
{
	/* Release: a producer polling proa_handle_is_idle() elsewhere. */
	proa__atomic_store(&h->priv.state, PROA__H_READY, PROA__RELEASE);
	proa_list_add_tail(&loop->ready, &h->priv.link);
}

static struct proa_handle *alloc_handle(struct proa_loop *loop)
{
	struct proa_handle *h = loop->free_handles;

	if (h) {
		loop->free_handles = h->arg;
		loop->nfree--;
	} else {
		h = malloc(sizeof(*h));
		if (!h)
			return NULL;
	}
	memset(h, 0, sizeof(*h));
	h->priv.flags = PROA__HF_ALLOC;
	return h;
}

/* Handles go back to the cache; trim_handles() gives the excess back to
 * malloc after the drain, so nothing is freed while a batch is walked. */
static void recycle_handle(struct proa_loop *loop, struct proa_handle *h)
{
	h->arg = loop->free_handles;
	loop->free_handles = h;
	loop->nfree++;
}

static void trim_handles(struct proa_loop *loop, unsigned keep)
{
	struct proa_handle *h;

	while (loop->nfree > keep) {
		h = loop->free_handles;
		loop->free_handles = h->arg;
		loop->nfree--;
		free(h);
	}
}

int proa_loop_call_soon(struct proa_loop *loop, struct proa_handle *h,
			proa_callback_fn fn, void *arg)
{
	if (!loop || !fn)
		return -EINVAL;
	PROA__LOOP_CHECK(loop);
	if (loop->closed)
		return PROA_ECLOSED;
	if (!h) {
		h = alloc_handle(loop);
		if (!h)
			return -ENOMEM;
	} else {
		if (proa__atomic_load(&h->priv.state, PROA__ACQUIRE) !=
		    PROA__H_IDLE)
			return -EBUSY;
		if (h->priv.flags & PROA__HF_TIMER)
			return -EINVAL; /* a timer's handle: use the timer */
		h->priv.flags = 0;
	}
	h->fn = fn;
	h->arg = arg;
	h->priv.loop = loop;
	proa__call_soon(loop, h);
	return 0;
}

int proa_handle_cancel(struct proa_handle *h)
{
	struct proa_loop *loop;
	uint32_t state;

	if (!h)
		return -EINVAL;
	loop = h->priv.loop;
	state = proa__atomic_load(&h->priv.state, PROA__ACQUIRE);
	if (state == PROA__H_IDLE || !loop)
		return -ENOENT;
	PROA__LOOP_CHECK(loop);
	if (state == PROA__H_POSTED)
		return -EBUSY;
	if (h->priv.flags & PROA__HF_TIMER)
		return proa_timer_cancel(
		    proa_container_of(h, struct proa_timer, handle));
	proa_list_del(&h->priv.link);
	proa__atomic_store(&h->priv.state, PROA__H_IDLE, PROA__RELEASE);
	if (h->priv.flags & PROA__HF_ALLOC)
		recycle_handle(loop, h);
	return 0;
}

bool proa_handle_is_idle(const struct proa_handle *h)
{
	return proa__atomic_load(&h->priv.state, PROA__ACQUIRE) == PROA__H_IDLE;
}

/* Run the handles that are ready now, in order (step 4). */
static void run_ready(struct proa_loop *loop)
{
	struct proa_link batch;
	struct proa_handle *h;
	proa_callback_fn fn;
	uint32_t flags;
	void *arg;

	proa_list_init(&batch);
	proa__list_splice_tail(&loop->ready, &batch);
	loop->draining = &batch;
	while (!proa_list_empty(&batch)) {
		h = proa_container_of(batch.next, struct proa_handle,
				      priv.link);
		proa_list_del(&h->priv.link);
		/* Everything the run needs is read before the handle is
		 * published idle: from that store on, another thread may post
		 * it again and rewrite it (call_soon_threadsafe). */
		fn = h->fn;
		arg = h->arg;
		flags = h->priv.flags;
		if (flags & PROA__HF_TIMER) {
			proa__timer_before_run(
			    loop,
			    proa_container_of(h, struct proa_timer, handle));
		} else {
			/* Idle before it runs: the callback may reuse it. */
			proa__atomic_store(&h->priv.state, PROA__H_IDLE,
					   PROA__RELEASE);
			if (flags & PROA__HF_ALLOC)
				recycle_handle(loop, h);
		}
		proa__run_callback(loop, fn, arg);
	}
	loop->draining = NULL;
	trim_handles(loop, PROA__HANDLE_CACHE);
}

/* Reap and dispatch completions (step 2), at most a CQ's worth, so that a
 * storm of completions cannot hold the rest of the iteration back. */
static void dispatch_completions(struct proa_loop *loop)
{
	unsigned budget = 65536, n, i;
	struct proa__cqe *c;

	do {
		n = proa__ring_reap(loop->ring, loop->batch, PROA__BATCH);
		for (i = 0; i < n; i++) {
			c = &loop->batch[i];
			proa__ring_complete(loop->ring, c->op, c->flags);
			c->op->res = c->res;
			c->op->flags = c->flags;
			proa__run_op_callback(loop, c->op);
		}
		budget -= n < budget ? n : budget;
	} while (n == PROA__BATCH && budget > 0);
}

/* ---- liveness and the iteration --------------------------------------- */

/* Whether the loop holds anything alive: user ops queued or in flight,
 * armed timers, ready handles, posted items, references, watched
 * signals.  The one test for "keep running" (the run modes, the
 * threadsafe queue) and for "refuse to close" (proa_loop_close()). */
bool proa__loop_alive(struct proa_loop *loop)
{
	return proa__ring_nr_user(loop->ring) > 0 || loop->timers_active > 0 ||
	       !proa_list_empty(&loop->ready) || !proa__mpsc_empty(&loop->q) ||
	       /* seq_cst: pairs with proa_loop_unref() (threadsafe.c) */
	       atomic_load_explicit(&loop->refs, memory_order_seq_cst) > 0 ||
	       proa__signals_active(loop);
}

static int64_t compute_timeout(struct proa_loop *loop, enum proa_run_mode mode)
{
	if (mode == PROA_RUN_NOWAIT)
		return 0;
	if (!proa_list_empty(&loop->ready) ||
	    atomic_load_explicit(&loop->stop, memory_order_acquire) ||
	    proa__ring_has_pending(loop->ring) || !proa__mpsc_empty(&loop->q))
		return 0;
	if ((mode == PROA_RUN_DEFAULT || mode == PROA_RUN_ONCE) &&
	    !proa__loop_alive(loop))
		return 0;
	loop->now = proa__now();
	return proa__timers_timeout(loop);
}

/* ---- hooks of the layers above ---------------------------------------- */

void proa__loop_hook_add(struct proa_loop *loop, struct proa__loop_hook *h)
{
	proa_list_add_tail(&loop->hooks, &h->link);
}

void proa__loop_hook_del(struct proa__loop_hook *h)
{
	proa_list_del(&h->link);
}

struct proa__loop_hook *proa__loop_hook_find(struct proa_loop *loop,
					     const void *key)
{
	struct proa__loop_hook *h;
	struct proa_link *l;

	/* A handful at most: net/'s, the default pool's, one per other
	 * pool the loop submits to. */
	for (l = loop->hooks.next; l != &loop->hooks; l = l->next) {
		h = proa_container_of(l, struct proa__loop_hook, link);
		if (h->key == key)
			return h;
	}
	return NULL;
}

bool proa__loop_on_owner_thread(struct proa_loop *loop)
{
	/* Acquire: pairs with the release in run() that publishes owner. */
	return atomic_load_explicit(&loop->owned, memory_order_acquire) &&
	       pthread_equal(loop->owner, pthread_self());
}

static void run_flush_hooks(struct proa_loop *loop)
{
	struct proa_link *l;

	for (l = loop->hooks.next; l != &loop->hooks; l = l->next)
		proa_container_of(l, struct proa__loop_hook, link)
		    ->flush(proa_container_of(l, struct proa__loop_hook, link));
}

static void run_close_hooks(struct proa_loop *loop)
{
	struct proa__loop_hook *h;

	while (!proa_list_empty(&loop->hooks)) {
		h = proa_container_of(loop->hooks.next, struct proa__loop_hook,
				      link);
		h->close(h); /* unlinks it */
	}
}

static int iterate(struct proa_loop *loop, enum proa_run_mode mode)
{
	int64_t timeout;
	bool slept = false;
	int ret;

	/* Work gathered outside a run (or by the last ONCE) leaves before
	 * the loop decides whether it may sleep. */
	if (!proa_list_empty(&loop->hooks))
		run_flush_hooks(loop);
	/* After the layers' flush, so a prepare hook sees their batch gone;
	 * before the timeout, so work it schedules keeps the loop awake. */
	proa__iter_hooks_run(loop, PROA_HOOK_PREPARE);
	timeout = compute_timeout(loop, mode);

	if (timeout != 0) {
		slept = proa__sleep_begin(loop, mode != PROA_RUN_FOREVER);
		if (!slept)
			timeout = 0;
	}
	ret = proa__ring_wait(loop->ring, timeout);
	if (slept)
		proa__sleep_end(loop);
	loop->stats.iterations++;
	if (ret < 0)
		return ret;
	loop->now = proa__now();
	dispatch_completions(loop);
	proa__iter_hooks_run(loop, PROA_HOOK_CHECK);
	proa__timers_run_due(loop);
	proa__threadsafe_drain(loop);
	run_ready(loop);
	if (!proa_list_empty(&loop->hooks))
		run_flush_hooks(loop);
	return 0;
}

static bool future_settled(const struct proa_future *fut)
{
	return fut->priv.state != PROA_FUTURE_PENDING && fut->priv.nsched == 0;
}

static int run(struct proa_loop *loop, enum proa_run_mode mode,
	       const struct proa_future *fut)
{
	pthread_t self = pthread_self();
	int ret;

	if (!loop)
		return -EINVAL;
	if (loop->closed)
		return PROA_ECLOSED;
	if (proa__loop_is_parents(loop)) {
		/* Reaping would take the parent's completions.  Debug mode
		 * stops here with a message. */
		if (loop->sched.debug)
			proa__check_thread(&loop->sched, "proa_loop_run");
		return -EPERM;
	}
	if (tl_current)
		return -EBUSY;
	if (atomic_load_explicit(&loop->owned, memory_order_acquire)) {
		if (!pthread_equal(loop->owner, self))
			return -EPERM;
	} else {
		ret = proa__ring_enable(loop->ring);
		if (ret < 0)
			return ret;
		loop->owner = self;
		loop->owner_tid = gettid();
		/* Signals first: once the loop is seen owned, a signal sent
		 * to its thread must already be blocked there. */
		proa__signals_first_run(loop);
		atomic_store_explicit(&loop->owned, true, memory_order_release);
	}
	tl_current = loop;
	loop->running = true;
	for (;;) {
		if (fut && future_settled(fut)) {
			ret = 0;
			break;
		}
		ret = iterate(loop, fut ? PROA_RUN_FOREVER : mode);
		if (ret < 0)
			break;
		if (atomic_exchange_explicit(&loop->stop, false,
					     memory_order_acq_rel)) {
			ret = fut && !future_settled(fut) ? -EINTR : 0;
			break;
		}
		if (fut)
			continue;
		if (mode == PROA_RUN_ONCE || mode == PROA_RUN_NOWAIT) {
			ret = proa__loop_alive(loop) ? 1 : 0;
			break;
		}
		if (mode == PROA_RUN_DEFAULT && !proa__loop_alive(loop)) {
			ret = 0;
			break;
		}
	}
	loop->running = false;
	tl_current = NULL;
	return ret;
}

int proa_loop_run(struct proa_loop *loop, enum proa_run_mode mode)
{
	if ((unsigned)mode > PROA_RUN_FOREVER)
		return -EINVAL;
	return run(loop, mode, NULL);
}

int proa_loop_run_once(struct proa_loop *loop)
{
	return run(loop, PROA_RUN_ONCE, NULL);
}

int proa_loop_run_until_complete(struct proa_loop *loop,
				 struct proa_future *fut)
{
	if (!loop || !fut)
		return -EINVAL;
	if (fut->priv.loop != loop)
		return -EINVAL;
	return run(loop, PROA_RUN_FOREVER, fut);
}

void proa_loop_stop(struct proa_loop *loop)
{
	PROA__LOOP_CHECK(loop);
	atomic_store_explicit(&loop->stop, true, memory_order_release);
}

struct proa_loop *proa_loop_current(void)
{
	return tl_current;
}

uint64_t proa_loop_time(const struct proa_loop *loop)
{
	/* The check only reads the loop; the cast fits its signature. */
	PROA__LOOP_CHECK((struct proa_loop *)loop);
	return loop->now;
}

uint64_t proa_loop_update_time(struct proa_loop *loop)
{
	PROA__LOOP_CHECK(loop);
	loop->now = proa__now();
	return loop->now;
}

void proa_loop_ref(struct proa_loop *loop)
{
	if (proa__unlikely(proa__loop_is_parents(loop))) {
		proa__forked(loop, __func__);
		return;
	}
	atomic_fetch_add_explicit(&loop->refs, 1, memory_order_acq_rel);
}

/* A negative count would keep the loop "referenced" for as long as the
 * matching refs it swallows: the loop would never again run down or close
 * when it should.  Debug mode stops the program at the bug. */
static void unref_unmatched(struct proa_loop *loop)
{
#ifdef PROA_DEBUG_CHECKS
	if (loop->sched.debug) {
		proa__log(PROA_LOG_ERROR,
			  "proa_loop_unref() on loop %p without a matching "
			  "proa_loop_ref()",
			  (void *)loop);
		abort();
	}
#endif
	if (!atomic_exchange_explicit(&loop->unref_warned, true,
				      memory_order_relaxed))
		proa__log(PROA_LOG_WARN,
			  "loop %p: proa_loop_unref() without a matching "
			  "proa_loop_ref(), ignored (logged once)",
			  (void *)loop);
}

void proa_loop_unref(struct proa_loop *loop)
{
	int v;

	if (proa__unlikely(proa__loop_is_parents(loop))) {
		proa__forked(loop, __func__);
		return;
	}
	v = atomic_load_explicit(&loop->refs, memory_order_seq_cst);

	/* Never below zero.  seq_cst pairs with the liveness check in
	 * proa__sleep_begin(), as the plain decrement did. */
	do {
		if (proa__unlikely(v <= 0)) {
			unref_unmatched(loop);
			return;
		}
	} while (!atomic_compare_exchange_weak_explicit(&loop->refs, &v, v - 1,
							memory_order_seq_cst,
							memory_order_seq_cst));
	/* The last reference gone may end a PROA_RUN_DEFAULT run that is
	 * asleep with nothing else to do: wake it to notice. */
	if (v == 1 && proa__gate_enter(loop)) {
		proa__wake(loop);
		proa__gate_leave(loop);
	}
}

static void cancel_one(struct proa_op *op, void *arg)
{
	int *n = arg;

	if (op->priv.iflags & PROA__OPF_INTERNAL)
		return;
	if (proa_op_cancel(op) == 0)
		(*n)++;
}

int proa_loop_cancel_all(struct proa_loop *loop)
{
	int n = 0;

	PROA__LOOP_CHECK(loop);
	if (loop->closed)
		return PROA_ECLOSED;
	proa__ring_for_each(loop->ring, cancel_one, &n);
	proa__timer_cancel_all(loop);
	for (struct proa_link *l = loop->hooks.next; l != &loop->hooks;
	     l = l->next) {
		struct proa__loop_hook *h =
		    proa_container_of(l, struct proa__loop_hook, link);

		if (h->cancel_all)
			n += h->cancel_all(h);
	}
	return n;
}

/* ---- close ----------------------------------------------------------- */

/* Cancel the loop's own ops and wait for their completions, so that no CQE
 * can still be written into the loop's memory after the ring is gone. */
static int drain_internal(struct proa_loop *loop)
{
	int ret;

	proa_op_cancel(&loop->wake_op);
	proa_op_cancel(&loop->sig_op);
	if (!atomic_load_explicit(&loop->owned, memory_order_acquire))
		return 0; /* never enabled: the kernel never saw them */
	while (!proa_op_is_idle(&loop->wake_op) ||
	       !proa_op_is_idle(&loop->sig_op)) {
		ret = proa__ring_wait(loop->ring, -1);
		if (ret < 0)
			return ret;
		dispatch_completions(loop);
	}
	return 0;
}

int proa_loop_close(struct proa_loop *loop)
{
	int ret;

	if (!loop)
		return -EINVAL;
	if (loop->closed)
		return PROA_ECLOSED;
	PROA__LOOP_CHECK(loop);
	if (proa__loop_is_parents(loop))
		return -EPERM; /* cancels would reach the parent's ring */
	if (atomic_load_explicit(&loop->owned, memory_order_acquire) &&
	    !pthread_equal(loop->owner, pthread_self()))
		return -EPERM;
	if (loop->running || tl_current)
		return -EBUSY;
	/* Anything that would keep a run going also keeps the loop open. */
	if (proa__loop_alive(loop)) {
		if (loop->sched.debug)
			proa__list_inflight(loop, "proa_loop_close() refused");
		return -EBUSY;
	}
	/* Every check that can refuse comes before anything is undone: a
	 * refused close must leave the loop as it was.  The gate is the last
	 * check - an item may have been posted since the liveness test - and
	 * only then do the hooks close (the default pool goes here: nothing
	 * of it is in flight, and nothing can now be posted). */
	ret = proa__gate_close(loop);
	if (ret < 0)
		return ret;
	run_close_hooks(loop);
	proa__iter_hooks_stop_all(loop);
	ret = drain_internal(loop);
	if (ret < 0) {
		proa__gate_reopen(loop);
		return ret;
	}
	proa__ring_free(loop->ring);
	loop->ring = NULL;
	close(loop->wake_fd);
	loop->wake_fd = -1;
	proa__signals_exit(loop);
	trim_handles(loop, 0);
	loop->closed = true;
	loop->sched.closed = true;
	return 0;
}

int proa_loop_discard_after_fork(struct proa_loop *loop)
{
	if (!loop)
		return -EINVAL;
	/* No thread check: the child's one thread may not be the owner.
	 * Nothing here touches what the parent shares with the child (the
	 * ring's memory, the epoll instance, the queue's atomics): the
	 * loop's own descriptors are closed and its memory freed. */
	if (!loop->closed) {
		proa__ring_forget(loop->ring);
		loop->ring = NULL;
		if (loop->wake_fd >= 0)
			close(loop->wake_fd);
		loop->wake_fd = -1;
		proa__signals_exit(loop);
		proa__signals_after_fork(loop);
		trim_handles(loop, 0);
	}
	free(loop);
	return 0;
}

int proa_loop_free(struct proa_loop *loop)
{
	int ret;

	if (!loop)
		return 0;
	if (!loop->closed) {
		ret = proa_loop_close(loop);
		if (ret < 0)
			return ret;
	}
	free(loop);
	return 0;
}

/* ---- what the loop knows about itself ------------------------------------ */

int proa_loop_stats(struct proa_loop *loop, struct proa_loop_stats *out)
{
	struct proa__ring_stats rs;

	if (!loop || !out)
		return -EINVAL;
	PROA__LOOP_CHECK(loop);
	*out = loop->stats;
	out->wakeups_sent =
	    atomic_load_explicit(&loop->wakeups_sent, memory_order_relaxed);
	out->timers_active = loop->timers_active;
	if (loop->ring) {
		proa__ring_get_stats(loop->ring, &rs);
		out->submissions = rs.submissions;
		out->completions = rs.completions;
		out->enters = rs.enters;
		out->sq_full = rs.sq_full;
		out->cq_overflows = rs.cq_overflows;
		out->cq_dropped = rs.cq_dropped;
		out->ops_inflight = proa__ring_nr_user(loop->ring);
	}
	return 0;
}

bool proa_loop_feature(const struct proa_loop *loop, enum proa_feature f)
{
	return loop && loop->ring && proa__ring_feature(loop->ring, f);
}

const char *proa_loop_backend(const struct proa_loop *loop)
{
	if (!loop || !loop->ring)
		return "none";
	return proa__ring_backend(loop->ring);
}

int proa_loop_describe(const struct proa_loop *loop, char *buf, size_t len)
{
	if (!loop || !loop->ring || (!buf && len))
		return -EINVAL;
	return proa__ring_describe(loop->ring, buf, len);
}

int proa_io_uring_probe(char *reason, size_t len)
{
	return proa__ring_probe(reason, len);
}

void proa_loop_set_debug(struct proa_loop *loop, bool on)
{
	PROA__LOOP_CHECK(loop);
	loop->sched.debug = on;
}

bool proa_loop_is_debug(const struct proa_loop *loop)
{
	return loop->sched.debug;
}
