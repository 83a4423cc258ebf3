/* SPDX-License-Identifier: MIT */
/*
 * proactor/threadsafe.c - call_soon_threadsafe: the cross-thread queue, the
 * wake-up, and the gate that lets close() wait out producers.
 *
 * The queue is Vyukov's intrusive MPSC queue: a producer pays one atomic
 * exchange and one store, never a lock; items of one producer keep their
 * order.  The loop takes, each iteration, the items queued when it starts
 * taking (and at most a bounded batch), so producers cannot starve I/O.
 *
 * No lost wake-up (docs/reliability.md P19).  The loop and a producer run a
 * Dekker handshake on q.sleep, every access seq_cst but the loop's AWAKE
 * store (proa__sleep_end() says why it needs no order):
 *   loop:     sleep = SLEEPING; if (queue, stop or liveness changed) don't
 *             block; ... block in the ring ...; sleep = AWAKE
 *   producer: push; if (sleep == SLEEPING && CAS(SLEEPING -> WOKEN)) wake
 * Either the loop sees the item, or the producer sees SLEEPING.  Only the
 * producer whose CAS wins sends a wake-up, so wake-ups coalesce to one per
 * sleep, and a busy loop (AWAKE) costs producers no system call.
 *
 * The wake-up is an eventfd write the loop hears through its own wait (see
 * arm_wake()), from any thread, proa loop threads included.
 *
 * The gate makes close safe against producers racing it (libuv #5058):
 * close() sets PROA__GATE_CLOSED in q.gate, waits until no producer is
 * between its check of that bit and its last touch of the loop, then
 * checks the queue once more.  A producer that checks after the bit is
 * set gets PROA_ECLOSED, so no item is pushed into a closed loop and no
 * write reaches a closed eventfd.
 *
 * Producers pay no locked instruction for the gate.  Each thread that
 * posts owns a record (struct producer_rec, kept on a process-wide list
 * that only grows; a thread's record is recycled when it exits), and a
 * post is
 *   producer: rec->inside = loop; compiler barrier; if (gate & refuse)
 *             leave; push; wake; rec->inside = NULL (release)
 *   close:    gate |= CLOSED; membarrier(PRIVATE_EXPEDITED);
 *             wait while any rec->inside == loop (acquire)
 * This is Dekker's handshake again, made asymmetric: membarrier() runs a
 * full barrier on every CPU that runs a thread of the process (and a
 * thread that is not running went through one when it was switched out),
 * so it stands in for the fence each producer would otherwise need
 * between its store to @inside and its load of the gate.  When
 * membarrier returns, either the producer's store is visible to close
 * (close waits for it), or the producer's load comes after the barrier
 * and sees CLOSED (it refuses without touching anything else).  Never
 * both missed.  Close, shutdown and the first post of a thread are the
 * only places that pay: a system call, on paths that are rare.  Where
 * the kernel has no membarrier (before 4.14, or filtered), producers
 * issue the fence themselves: one fence instead of two locked
 * read-modify-writes.
 *
 * The gate does not take part in the no-lost-wake-up argument above: that
 * rests on the queue's seq_cst exchange and on q.sleep alone, which the
 * producer still does in the same order (push, then look at q.sleep).
 * The gate only brackets them, so that close knows when the last
 * producer that may write the eventfd or touch the ring is done.  A
 * chain is one exchange: for the handshake it is one item.
 *
 * The rare any-thread entries (proa_loop_stop_threadsafe, the last
 * proa_loop_unref) still count themselves in the gate with a locked add
 * (the counted path; also where a thread could get no record), and close
 * waits for both.
 *
 * Producers that never pause keep the queue non-empty, and close() would
 * refuse for ever.  proa_loop_shutdown() sets the shut bit and waits out
 * the producers inside: from then on public posts fail with -ESHUTDOWN,
 * and the loop runs down what was accepted.  Results the library posts
 * for work a loop reference pins (pool jobs) still enter: they are not new
 * work, and the reference keeps the loop from closing until they are in.
 *
 * A chain of items (proa_loop_call_soon_threadsafe_many(); the pool's
 * results, as chains of one) is linked first and pushed with one
 * exchange: the queue and the handshake see it as one item.
 *
 * Gathering.  A producer on another CPU that streams items can fall into
 * step with the loop: each drain finds a few items, takes them right
 * behind the producer, and every item's cache lines (the node, the
 * handle, @prod) cross between the CPUs while both write them.  One
 * producer then ran at 6-20M items/s against 40-65M when the loop lagged
 * by a full batch, and a run fell into either state by chance.  So when
 * items came while a drain was taking its batch (the queue is not empty
 * after it), for the second drain in a row, and the batch was not cut by
 * the cap, the loop opens a window (loop->gather_ns, 4 us by default) and
 * the next drain waits until it has passed, spinning without touching
 * the queue.  The producer runs ahead meanwhile, and the next batch is
 * taken from lines it has left.  Only a streaming producer's items wait,
 * at most one window; a lone post finds the queue empty after its drain,
 * and an iteration busy for longer than the window waits not at all.
 * Nothing here bears on the wake-up handshake: the loop never sleeps
 * while it gathers (the queue is not empty), and it drains after the
 * window as it would have.
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <linux/membarrier.h>
#include <unistd.h>

#include "proactor_int.h"

/* ---- the queue ----------------------------------------------------------- */

void proa__mpsc_init(struct proa__mpsc *q)
{
	q->stub.next = NULL;
	atomic_init(&q->prod, &q->stub);
	atomic_init(&q->gate, 0);
	atomic_init(&q->sleep, PROA__AWAKE);
	q->cons = &q->stub;
	q->stalled = NULL;
}

/* Push @first..@last, already linked (relaxed) through ->next: one
 * exchange for the lot. */
static void push_chain(struct proa__mpsc *q, struct proa__mpsc_node *first,
		       struct proa__mpsc_node *last)
{
	struct proa__mpsc_node *prev;

	proa__atomic_store(&last->next, NULL, PROA__RELAXED);
	/* seq_cst: the handshake's store side for producers (see top). */
	prev = atomic_exchange_explicit(&q->prod, last, memory_order_seq_cst);
	/* Release; pairs with the acquire loads of ->next in pop(), and
	 * publishes the chain's own links stored before it. */
	proa__atomic_store(&prev->next, first, PROA__RELEASE);
}

static void push(struct proa__mpsc *q, struct proa__mpsc_node *n)
{
	push_chain(q, n, n);
}

/* Whether the queue is stalled on a producer between its exchange and its
 * link (pop() saw it, and the link has not come since).  Reads only the
 * stalled node's line, which nothing but that producer writes: the loop
 * that spins on a stall (a producer preempted there, for a time slice)
 * leaves the line of @prod, which every other producer writes, alone. */
static bool stalled(struct proa__mpsc *q)
{
	return q->stalled && q->stalled == q->cons &&
	       !proa__atomic_load(&q->cons->next, PROA__ACQUIRE);
}

/* Loop thread.  NULL when empty, or when a producer is between its exchange
 * and its link; the item is then taken next iteration (the loop does not
 * block meanwhile: proa__mpsc_empty() sees the producer's exchange). */
static struct proa__mpsc_node *pop(struct proa__mpsc *q)
{
	struct proa__mpsc_node *cons = q->cons;
	struct proa__mpsc_node *next =
	    proa__atomic_load(&cons->next, PROA__ACQUIRE);

	q->stalled = NULL;
	if (cons == &q->stub) {
		if (!next)
			return NULL;
		q->cons = next;
		cons = next;
		next = proa__atomic_load(&next->next, PROA__ACQUIRE);
	}
	if (next) {
		q->cons = next;
		return cons;
	}
	if (cons != atomic_load_explicit(&q->prod, memory_order_acquire)) {
		q->stalled = cons;
		return NULL;
	}
	push(q, &q->stub);
	next = proa__atomic_load(&cons->next, PROA__ACQUIRE);
	if (next) {
		q->cons = next;
		return cons;
	}
	/* A producer exchanged after our look at @prod and has not linked
	 * @cons to its node yet. */
	q->stalled = cons;
	return NULL;
}

bool proa__mpsc_empty(struct proa__mpsc *q)
{
	return q->cons == &q->stub &&
	       atomic_load_explicit(&q->prod, memory_order_seq_cst) == &q->stub;
}

/* 4096: a batch's handles (touched again when the ready list runs them)
 * stay in cache; 64 Ki of them did not, and bursts ran at half the rate. */
#define DRAIN_MAX 4096

/* Drains in a row that must leave items behind before the loop gathers:
 * 2 kept one producer's rate (5 alternating rounds against 1) and cut the
 * windows a producer paced at 1-5 us opened by 5-40x; 3 let some runs
 * fall back into step (docs/benchmarks.md, "One producer, gathered"). */
#define GATHER_STREAK 2

/* Gathering (see the top): hold the drain until the window that the last
 * one opened has passed.  A busy wait, bounded by the window: a sleep
 * would cost more than the window itself, and the producer streaming
 * into the queue is on another CPU. */
static void gather_wait(struct proa_loop *loop)
{
	uint64_t t = proa__now(), until = loop->gather_until;

	loop->gather_until = 0;
	if (t >= until)
		return; /* the iteration took longer than the window */
	loop->stats.post_gathers++;
	loop->stats.post_gather_ns += until - t;
	while (proa__now() < until)
		proa__cpu_relax();
}

void proa__threadsafe_drain(struct proa_loop *loop)
{
	struct proa__mpsc *q = &loop->q;
	struct proa__mpsc_node *last, *n;
	unsigned i;

	if (loop->gather_until)
		gather_wait(loop);
	if (proa__mpsc_empty(q) || stalled(q))
		return;
	last = atomic_load_explicit(&q->prod, memory_order_acquire);
	for (i = 0; i < DRAIN_MAX; i++) {
		n = pop(q);
		if (!n)
			break;
		loop->stats.threadsafe++;
		n->run(n);
		/* Only compared: @n may be gone after run. */
		if (n == last)
			break;
	}
	/* Items came while this batch was taken, and the batch was not cut
	 * short by the cap (the loop is then far behind and need not wait).
	 * Twice in a row: a producer streams, right behind the loop.  Give
	 * it a window.  Once alone is mostly a producer catching up after a
	 * pause (its own wake-up's system call, say): a window there costs
	 * the loop CPU and gains nothing.  The run functions only move items
	 * to the ready list (handles, futures' results), so no callback of
	 * the loop's own posted what came. */
	if (!loop->gather_ns || i >= DRAIN_MAX || proa__mpsc_empty(q)) {
		loop->gather_streak = 0;
	} else if (++loop->gather_streak >= GATHER_STREAK) {
		loop->gather_until = proa__now() + loop->gather_ns;
	}
}

/* ---- the gate ----------------------------------------------------------- */

/* One per thread that has posted; see the top for the handshake.  Never
 * freed: close walks the list without a lock, so a record outlives its
 * thread and is handed to the next thread that needs one. */
struct producer_rec {
	/* the loop this thread is posting to, or NULL: written by its
	 * thread, read by close and shutdown */
	_Atomic(struct proa_loop *) inside;
	atomic_bool used;	   /* owned by a live thread */
	struct producer_rec *next; /* set before the record is published */
};

static _Atomic(struct producer_rec *) recs;
static _Thread_local struct producer_rec *tl_rec;
static pthread_once_t recs_once = PTHREAD_ONCE_INIT;
static pthread_key_t recs_key;
/* Set once (recs_once) before any record exists: whether membarrier()
 * stands in for the producers' fence. */
static bool recs_membarrier;

static void rec_release(void *p)
{
	struct producer_rec *r = p;

	tl_rec = NULL;
	atomic_store_explicit(&r->inside, NULL, memory_order_release);
	atomic_store_explicit(&r->used, false, memory_order_release);
}

static long membarrier(int cmd)
{
	return syscall(__NR_membarrier, cmd, 0, 0);
}

static void recs_init(void)
{
	long cmds = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);

	/* Without the key a thread's record would never be recycled; it
	 * still works, it only grows the list. */
	(void)pthread_key_create(&recs_key, rec_release);
	recs_membarrier =
	    cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
	    syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
		    0, 0) == 0;
}

/* This thread's record: recycled, or new.  NULL only without memory. */
static struct producer_rec *rec_claim(void)
{
	struct producer_rec *r;

	pthread_once(&recs_once, recs_init);
	for (r = atomic_load_explicit(&recs, memory_order_acquire); r;
	     r = r->next)
		if (!atomic_load_explicit(&r->used, memory_order_relaxed) &&
		    !atomic_exchange_explicit(&r->used, true,
					      memory_order_acquire))
			goto claimed;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	atomic_init(&r->inside, NULL);
	atomic_init(&r->used, true);
	r->next = atomic_load_explicit(&recs, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(
	    &recs, &r->next, r, memory_order_release, memory_order_relaxed))
		;
claimed:
	(void)pthread_setspecific(recs_key, r);
	tl_rec = r;
	return r;
}

/* The asymmetric barrier: close's side of the handshake (see top). */
static void recs_barrier(void)
{
	pthread_once(&recs_once, recs_init);
	/* seq_cst: the closer's own side, and all it needs without
	 * membarrier (producers then fence themselves). */
	atomic_thread_fence(memory_order_seq_cst);
	if (!recs_membarrier ||
	    membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0)
		return;
	/* Producers count on the barrier.  A child of fork() may have lost
	 * the registration: register again; else the global command, slow
	 * but unregistered, does the same. */
	if (membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0 &&
	    membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0)
		return;
	if (membarrier(MEMBARRIER_CMD_GLOBAL) == 0)
		return;
	proa__log(PROA_LOG_ERROR,
		  "membarrier() failed after it was registered: %s; a "
		  "producer racing close may be missed",
		  proa_strerror(-errno));
}

/* Enter unless one of the @refuse bits is set: 0, or the error of the
 * bit found (closed wins).  The counted path. */
static int gate_enter_unless(struct proa_loop *loop, unsigned refuse)
{
	unsigned v = atomic_fetch_add_explicit(&loop->q.gate, PROA__GATE_ONE,
					       memory_order_seq_cst);

	if (proa__unlikely(v & refuse)) {
		atomic_fetch_sub_explicit(&loop->q.gate, PROA__GATE_ONE,
					  memory_order_release);
		return (v & PROA__GATE_CLOSED) ? PROA_ECLOSED : -ESHUTDOWN;
	}
	return 0;
}

/*
 * A producer's way in: 0 and *@rp = its record (NULL: it was counted in
 * the gate instead), or the error of the refusing bit.  No locked
 * instruction once the thread has its record.
 */
static int producer_enter(struct proa_loop *loop, unsigned refuse,
			  struct producer_rec **rp)
{
	struct producer_rec *r = tl_rec;
	unsigned v;

	if (proa__unlikely(!r)) {
		r = rec_claim();
		if (!r) {
			*rp = NULL;
			return gate_enter_unless(loop, refuse);
		}
	}
	/* Release only orders this thread's earlier posts before it for
	 * close's acquire; the store's visibility to close is what the
	 * barrier below and close's membarrier() provide. */
	atomic_store_explicit(&r->inside, loop, memory_order_release);
	if (recs_membarrier)
		atomic_signal_fence(memory_order_seq_cst);
	else
		atomic_thread_fence(memory_order_seq_cst);
	v = atomic_load_explicit(&loop->q.gate, memory_order_relaxed);
	if (proa__unlikely(v & refuse)) {
		atomic_store_explicit(&r->inside, NULL, memory_order_release);
		return (v & PROA__GATE_CLOSED) ? PROA_ECLOSED : -ESHUTDOWN;
	}
	*rp = r;
	return 0;
}

static void producer_leave(struct proa_loop *loop, struct producer_rec *r)
{
	/* Release: close's acquire of @inside then sees the push and the
	 * wake-up this post made. */
	if (r)
		atomic_store_explicit(&r->inside, NULL, memory_order_release);
	else
		atomic_fetch_sub_explicit(&loop->q.gate, PROA__GATE_ONE,
					  memory_order_release);
}

bool proa__gate_enter(struct proa_loop *loop)
{
	return gate_enter_unless(loop, PROA__GATE_CLOSED) == 0;
}

void proa__gate_leave(struct proa_loop *loop)
{
	atomic_fetch_sub_explicit(&loop->q.gate, PROA__GATE_ONE,
				  memory_order_release);
}

bool proa__gate_closed(struct proa_loop *loop)
{
	return atomic_load_explicit(&loop->q.gate, memory_order_acquire) &
	       PROA__GATE_CLOSED;
}

/* Called after a bit was set in the gate: wait until every producer that
 * may have missed it is out.  Producers inside push and wake, then
 * leave: short. */
static void gate_wait_empty(struct proa_loop *loop)
{
	struct producer_rec *r;

	recs_barrier();
	for (r = atomic_load_explicit(&recs, memory_order_acquire); r;
	     r = r->next)
		while (atomic_load_explicit(&r->inside, memory_order_acquire) ==
		       loop)
			sched_yield();
	while (atomic_load_explicit(&loop->q.gate, memory_order_acquire) >=
	       PROA__GATE_ONE)
		sched_yield();
}

int proa__gate_close(struct proa_loop *loop)
{
	atomic_fetch_or_explicit(&loop->q.gate, PROA__GATE_CLOSED,
				 memory_order_seq_cst);
	gate_wait_empty(loop);
	if (!proa__mpsc_empty(&loop->q)) {
		proa__gate_reopen(loop);
		return -EBUSY;
	}
	return 0;
}

void proa__gate_reopen(struct proa_loop *loop)
{
	atomic_fetch_and_explicit(&loop->q.gate, ~PROA__GATE_CLOSED,
				  memory_order_release);
}

int proa_loop_shutdown(struct proa_loop *loop)
{
	if (!loop)
		return -EINVAL;
	atomic_fetch_or_explicit(&loop->q.gate, PROA__GATE_SHUT,
				 memory_order_seq_cst);
	/* Those that entered before the bit have pushed when they leave:
	 * after this, the queue holds all it will ever get from them. */
	gate_wait_empty(loop);
	return 0;
}

/* ---- sleeping and waking ------------------------------------------------- */

bool proa__sleep_begin(struct proa_loop *loop, bool need_alive)
{
	atomic_store_explicit(&loop->q.sleep, PROA__SLEEPING,
			      memory_order_seq_cst);
	if (!proa__mpsc_empty(&loop->q) ||
	    atomic_load_explicit(&loop->stop, memory_order_seq_cst) ||
	    (need_alive && !proa__loop_alive(loop))) {
		atomic_store_explicit(&loop->q.sleep, PROA__AWAKE,
				      memory_order_seq_cst);
		return false;
	}
	return true;
}

void proa__sleep_end(struct proa_loop *loop)
{
	/* WOKEN or SLEEPING: either way the next sleep starts afresh; a
	 * wake-up still on its way only makes one wait return early.
	 *
	 * A plain store, not an exchange: nothing the loop does next needs
	 * to be ordered after it.  A producer that still sees SLEEPING sends
	 * a wake-up that only ends a later wait early; one that sees AWAKE
	 * sends none, and its item is seen by the drain or, at the latest,
	 * by the re-check after the next SLEEPING store, which follows this
	 * store in the flag's own order (the handshake above).  A locked
	 * exchange on the line the producer's CAS just wrote stalled every
	 * load after it: 22 of 26 alternating rounds of proa-bench wake_rtt
	 * were faster without it (loop-loop p50 -0.8%). */
	atomic_store_explicit(&loop->q.sleep, PROA__AWAKE,
			      memory_order_relaxed);
}

/* Caller is inside the gate, or on the loop thread. */
void proa__wake(struct proa_loop *loop)
{
	unsigned expect = PROA__SLEEPING;
	uint64_t one = 1;
	ssize_t n;

	if (atomic_load_explicit(&loop->q.sleep, memory_order_seq_cst) !=
	    PROA__SLEEPING)
		return;
	if (!atomic_compare_exchange_strong_explicit(
		&loop->q.sleep, &expect, PROA__WOKEN, memory_order_seq_cst,
		memory_order_seq_cst))
		return;
	atomic_fetch_add_explicit(&loop->wakeups_sent, 1, memory_order_relaxed);
	/* The eventfd from every thread, a loop's too: a loop on io_uring
	 * could send IORING_OP_MSG_RING to the target's ring instead, but that
	 * is a system call as well, and its round trip measured slower than
	 * the eventfd's into the target's multishot poll (docs/benchmarks.md,
	 * "Loop to loop through the eventfd"). */
	do {
		n = write(loop->wake_fd, &one, sizeof(one));
	} while (n < 0 && errno == EINTR);
	/* EAGAIN: the counter is saturated, so a wake-up is pending anyway.
	 * Anything else means the loop may sleep on an item: say so. */
	if (n < 0 && errno != EAGAIN)
		proa__log(PROA_LOG_ERROR,
			  "waking loop %p: eventfd write failed: %s",
			  (void *)loop, proa_strerror(-errno));
}

/*
 * How the loop hears a wake-up:
 *  - io_uring: one multishot poll of the eventfd, armed once.  Each write
 *    wakes the eventfd's wait queue, and the poll posts a completion for
 *    it (writes that come together share one); the counter is never read
 *    or reset, as nothing looks at it, and at one write per sleep it cannot
 *    fill up.  So a wake-up costs the loop no submission: a read kept in
 *    flight had to be submitted again after every wake-up, mostly in an
 *    io_uring_enter() of its own (the iteration after a wake-up runs with
 *    a zero timeout whenever a callback scheduled another).
 *  - io_uring before 5.13 (the multishot poll says -EINVAL), epoll: a read
 *    of the eventfd kept in flight; where the ring cannot read (before
 *    5.6) a one-shot poll, and the read here.
 * Never through the pool: a worker blocked on it would be a worker lost.
 */
static int arm_wake(struct proa_loop *loop)
{
	if (loop->wake_multishot)
		return proa_op_poll(loop, &loop->wake_op, loop->wake_fd, POLLIN,
				    PROA_POLL_MULTISHOT);
	if (proa__ring_feature(loop->ring, PROA_FEAT_OP_READ))
		return proa_op_read(loop, &loop->wake_op, loop->wake_fd,
				    &loop->wake_buf, sizeof(loop->wake_buf),
				    -1);
	return proa_op_poll(loop, &loop->wake_op, loop->wake_fd, POLLIN, 0);
}

static void arm_wake_read(struct proa_loop *loop)
{
	int ret = arm_wake(loop);

	if (ret < 0)
		proa__log(PROA_LOG_ERROR,
			  "loop %p: cannot re-arm its wake-up read: %s; "
			  "cross-thread calls may wait for other events",
			  (void *)loop, proa_strerror(ret));
}

void proa__wake_op_done(struct proa_op *op)
{
	struct proa_loop *loop = op->data;

	if (op->res > 0)
		loop->stats.wakeups++;
	/* Polled once: reset the counter ourselves (non-blocking). */
	if (op->res > 0 && op->priv.kind == PROA__OP_POLL &&
	    !loop->wake_multishot &&
	    read(loop->wake_fd, &loop->wake_buf, sizeof(loop->wake_buf)) < 0 &&
	    errno != EAGAIN)
		proa__log(PROA_LOG_ERROR, "loop %p: eventfd read: %s",
			  (void *)loop, proa_strerror(-errno));
	if (op->flags & PROA_OP_F_MORE)
		return; /* the multishot poll stays armed */
	if (proa__gate_closed(loop))
		return; /* closing: drain_internal() is waiting for us */
	if (op->res == -EINVAL && loop->wake_multishot) {
		/* IORING_POLL_ADD_MULTI unknown (before 5.13). */
		atomic_store_explicit(&proa__poll_no_multishot, true,
				      memory_order_relaxed);
		loop->wake_multishot = false;
	} else if (op->res < 0 && op->res != -ECANCELED) {
		proa__log(PROA_LOG_ERROR, "loop %p: wake-up read: %s",
			  (void *)loop, proa_strerror(op->res));
	}
	/* A read or one-shot poll after each wake-up; a multishot poll only
	 * when the kernel ended it (a CQ overflow can). */
	arm_wake_read(loop);
}

int proa__wake_init(struct proa_loop *loop)
{
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	int ret;

	if (fd < 0)
		return -errno;
	loop->wake_fd = fd;
	loop->wake_multishot =
	    strcmp(proa__ring_backend(loop->ring), "io_uring") == 0 &&
	    !atomic_load_explicit(&proa__poll_no_multishot,
				  memory_order_relaxed);
	proa_op_init(&loop->wake_op, proa__wake_op_done, loop);
	loop->wake_op.priv.iflags = PROA__OPF_INTERNAL;
	ret = arm_wake(loop);
	if (ret < 0) {
		close(fd);
		loop->wake_fd = -1;
	}
	return ret;
}

/* ---- the public entry points -------------------------------------------- */

static int post_chain(struct proa_loop *loop, struct proa__mpsc_node *first,
		      struct proa__mpsc_node *last, bool pinned)
{
	struct producer_rec *r;
	int ret;

	/* An item queued in a forked copy would never run, and its wake-up
	 * would go to the parent through the shared eventfd. */
	if (proa__unlikely(proa__loop_is_parents(loop))) {
		proa__forked(loop, "proa_*_threadsafe");
		return PROA_ECLOSED;
	}
	ret = producer_enter(loop,
			     pinned ? PROA__GATE_CLOSED
				    : PROA__GATE_CLOSED | PROA__GATE_SHUT,
			     &r);
	if (ret < 0)
		return ret;
	push_chain(&loop->q, first, last);
	proa__wake(loop);
	producer_leave(loop, r);
	return 0;
}

static int post(struct proa_loop *loop, struct proa__mpsc_node *n, bool pinned)
{
	return post_chain(loop, n, n, pinned);
}

int proa__post(struct proa__sched *s, struct proa__mpsc_node *n)
{
	return post((struct proa_loop *)(void *)s, n, false);
}

static void posted_handle_run(struct proa__mpsc_node *node)
{
	struct proa_handle *h =
	    proa_container_of(node, struct proa_handle, priv.node);

	proa__call_soon(h->priv.loop, h);
}

/* Claim a caller-owned handle: 0, or -EBUSY / -EINVAL with @h untouched.
 * The CAS comes first: two threads posting one handle would corrupt the
 * queue. */
static int claim(struct proa_handle *h)
{
	if (!proa__atomic_cas_u32(&h->priv.state, PROA__H_IDLE, PROA__H_POSTED))
		return -EBUSY;
	if (h->priv.flags & PROA__HF_TIMER) {
		proa__atomic_store(&h->priv.state, PROA__H_IDLE, PROA__RELEASE);
		return -EINVAL;
	}
	h->priv.flags = 0;
	return 0;
}

/*
 * Claim for proa_loop_call_soon_threadsafe_many(): a check and a store, no
 * CAS.  The caller has already written each handle's fn and arg, so two
 * threads posting one handle at once are a data race in the caller
 * whatever this does; what a check can catch - a handle posted again
 * before it ran - it catches.  That leaves the chain one locked
 * instruction: the queue's exchange.
 */
static int claim_owned(struct proa_handle *h)
{
	if (proa__atomic_load(&h->priv.state, PROA__ACQUIRE) != PROA__H_IDLE)
		return -EBUSY;
	if (h->priv.flags & PROA__HF_TIMER)
		return -EINVAL;
	proa__atomic_store(&h->priv.state, PROA__H_POSTED, PROA__RELAXED);
	h->priv.flags = 0;
	return 0;
}

static void unclaim(struct proa_handle *h)
{
	proa__atomic_store(&h->priv.state, PROA__H_IDLE, PROA__RELEASE);
}

static void prepare(struct proa_handle *h, struct proa_loop *loop,
		    proa_callback_fn fn, void *arg)
{
	h->fn = fn;
	h->arg = arg;
	h->priv.loop = loop;
	h->priv.node.run = posted_handle_run;
}

static int call_soon_threadsafe(struct proa_loop *loop, struct proa_handle *h,
				proa_callback_fn fn, void *arg, bool pinned)
{
	bool alloc = false;
	int ret;

	if (!loop || !fn)
		return -EINVAL;
	if (!h) {
		h = calloc(1, sizeof(*h));
		if (!h)
			return -ENOMEM;
		h->priv.flags = PROA__HF_ALLOC;
		h->priv.state = PROA__H_POSTED;
		alloc = true;
	} else {
		ret = claim(h);
		if (ret < 0)
			return ret;
	}
	prepare(h, loop, fn, arg);
	ret = post(loop, &h->priv.node, pinned);
	if (ret < 0) {
		if (alloc)
			free(h);
		else
			unclaim(h);
	}
	return ret;
}

int proa_loop_call_soon_threadsafe_many(struct proa_loop *loop,
					struct proa_handle *const *hs, size_t n)
{
	size_t i, j;
	int ret;

	if (!loop || (n && !hs))
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (!hs[i] || !hs[i]->fn)
			return -EINVAL;
	if (!n)
		return 0;
	for (i = 0; i < n; i++) {
		ret = claim_owned(hs[i]);
		if (ret < 0)
			goto err_unclaim;
		prepare(hs[i], loop, hs[i]->fn, hs[i]->arg);
		/* Relaxed: push_chain()'s release publishes the links. */
		if (i)
			proa__atomic_store(&hs[i - 1]->priv.node.next,
					   &hs[i]->priv.node, PROA__RELAXED);
	}
	ret = post_chain(loop, &hs[0]->priv.node, &hs[n - 1]->priv.node, false);
	if (ret < 0)
		goto err_unclaim;
	return 0;

err_unclaim:
	for (j = 0; j < i; j++)
		unclaim(hs[j]);
	return ret;
}

void proa__ts_chain_add(struct proa__ts_chain *c, struct proa_loop *loop,
			struct proa_handle *h, proa_callback_fn fn, void *arg)
{
	h->priv.flags = 0;
	proa__atomic_store(&h->priv.state, PROA__H_POSTED, PROA__RELAXED);
	prepare(h, loop, fn, arg);
	if (c->n++)
		proa__atomic_store(&c->last->next, &h->priv.node,
				   PROA__RELAXED);
	else
		c->first = &h->priv.node;
	c->loop = loop;
	c->last = &h->priv.node;
}

int proa__ts_chain_post_pinned(struct proa__ts_chain *c)
{
	int ret = 0;

	if (c->n)
		ret = post_chain(c->loop, c->first, c->last, true);
	*c = (struct proa__ts_chain){0};
	return ret;
}

int proa_loop_call_soon_threadsafe(struct proa_loop *loop,
				   struct proa_handle *h, proa_callback_fn fn,
				   void *arg)
{
	return call_soon_threadsafe(loop, h, fn, arg, false);
}

int proa__call_soon_pinned(struct proa_loop *loop, struct proa_handle *h,
			   proa_callback_fn fn, void *arg)
{
	return call_soon_threadsafe(loop, h, fn, arg, true);
}

int proa_loop_stop_threadsafe(struct proa_loop *loop)
{
	if (!loop)
		return -EINVAL;
	if (proa__unlikely(proa__loop_is_parents(loop))) {
		proa__forked(loop, __func__);
		return PROA_ECLOSED;
	}
	if (!proa__gate_enter(loop))
		return PROA_ECLOSED;
	/* seq_cst: the handshake's store side (see top). */
	atomic_store_explicit(&loop->stop, true, memory_order_seq_cst);
	proa__wake(loop);
	proa__gate_leave(loop);
	return 0;
}
