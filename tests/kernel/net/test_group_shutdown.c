/* SPDX-License-Identifier: MIT */
/*
 * tests/kernel/net/test_group_shutdown.c - proa_loop_group_shutdown():
 * idle connections are closed, a busy one finishes inside the grace
 * period, one that does not finish is aborted at the deadline; a second
 * shutdown (after, or at the same time) does nothing more; loops the
 * application stopped still drain; the threading rules hold (-EDEADLK
 * from a loop of the group, -EPERM for another loop's report).  Clients
 * are plain blocking sockets on the test thread; every wait is bounded.
 * Runs under TSan too (label thread): the calls cross threads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proa_test.h"

#define NLOOPS 2
#define WAIT_S 10
#define LONG_GRACE_NS (UINT64_C(30) * 1000000000)
#define SHORT_GRACE_NS (UINT64_C(300) * 1000000)

/*
 * The server: a connection that receives 'B' is busy (a request under
 * way) until it receives 'E', which it answers with "done"; once its loop
 * drains, it closes after that answer.  Idle connections are closed by
 * the drain function.  Per-loop state is its loop thread's; the test
 * thread reads it only after the shutdown (the threads are joined).
 */
struct tloop {
	struct proa_link conns;
	unsigned nconns;
	bool draining;
	int report;	 /* proa_loop_group_drained() in the drain call */
	int report_late; /* ... called again from connection_lost() */
};

struct sconn {
	struct proa_protocol p;
	struct proa_transport *t;
	struct tloop *tl;
	unsigned idx;
	struct proa_link link;
	bool busy;
};

static struct proa_loop_group *grp;
static struct tloop tl_of[NLOOPS];

/* What the test thread waits for, under mu. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static unsigned made, busy, drains;
static atomic_uint lost, lost_err;

/* cmocka's asserts jump; on a loop thread they would jump across the
 * loop's frames.  The loops count what went wrong instead, and the
 * teardown asserts the count. */
static atomic_uint oddities;
#define CHECK(x)                                                               \
	do {                                                                   \
		if (!(x)) {                                                    \
			fprintf(stderr, "%s:%d: not %s\n", __FILE__, __LINE__, \
				#x);                                           \
			atomic_fetch_add(&oddities, 1);                        \
		}                                                              \
	} while (0)

static void bump(unsigned *what)
{
	pthread_mutex_lock(&mu);
	(*what)++;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

/* Wait until *what >= n, at most WAIT_S seconds. */
static bool wait_for(const unsigned *what, unsigned n)
{
	struct timespec ts;
	bool ok;
	int ret = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_S;
	pthread_mutex_lock(&mu);
	while (*what < n && ret == 0)
		ret = pthread_cond_timedwait(&cv, &mu, &ts);
	ok = *what >= n;
	pthread_mutex_unlock(&mu);
	return ok;
}

static void s_made(struct proa_protocol *p, struct proa_transport *t)
{
	proa_container_of(p, struct sconn, p)->t = t;
	bump(&made);
}

static void s_data(struct proa_protocol *p, const void *data, size_t len)
{
	struct sconn *c = proa_container_of(p, struct sconn, p);
	const char *b = data;

	for (size_t i = 0; i < len; i++) {
		if (b[i] == 'B' && !c->busy) {
			c->busy = true;
			bump(&busy);
		} else if (b[i] == 'E' && c->busy) {
			c->busy = false;
			CHECK(proa_transport_write(c->t, "done", 4) == 0);
			if (c->tl->draining)
				proa_transport_close(c->t);
		}
	}
}

static void s_lost(struct proa_protocol *p, int err)
{
	struct sconn *c = proa_container_of(p, struct sconn, p);
	struct tloop *tl = c->tl;
	unsigned idx = c->idx;

	proa_list_del(&c->link);
	tl->nconns--;
	free(c);
	atomic_fetch_add(&lost, 1);
	if (err)
		atomic_fetch_add(&lost_err, 1);
	if (tl->draining && tl->nconns == 0)
		tl->report_late = proa_loop_group_drained(grp, idx);
}

static const struct proa_protocol_ops s_ops = {
    .connection_made = s_made,
    .data_received = s_data,
    .connection_lost = s_lost,
};

static unsigned loop_index(struct proa_loop *loop)
{
	for (unsigned i = 0; i < NLOOPS; i++)
		if (proa_loop_group_loop(grp, i) == loop)
			return i;
	CHECK(!"a connection on a loop not of the group");
	return 0;
}

static struct proa_protocol *s_make(void *arg, struct proa_transport *t)
{
	unsigned idx = loop_index(proa_transport_loop(t));
	struct sconn *c = calloc(1, sizeof(*c));

	(void)arg;
	if (!c)
		return NULL;
	c->p.ops = &s_ops;
	c->idx = idx;
	c->tl = &tl_of[idx];
	proa_list_add_tail(&c->tl->conns, &c->link);
	c->tl->nconns++;
	return &c->p;
}

/* The drain function: close the idle connections; the busy ones close
 * after their answer.  Reports at once when nothing is left. */
static void s_drain(struct proa_loop_group *g, unsigned i, void *arg)
{
	struct tloop *tl = &tl_of[i];
	struct proa_link *l, *next;

	CHECK(g == grp);
	CHECK(arg == &tl_of);
	CHECK(!tl->draining);
	/* Another loop's report is refused: only loop i may say i is done. */
	CHECK(proa_loop_group_drained(g, (i + 1) % NLOOPS) == -EPERM);
	tl->draining = true;
	for (l = tl->conns.next; l != &tl->conns; l = next) {
		struct sconn *c = proa_container_of(l, struct sconn, link);

		next = l->next;
		if (!c->busy)
			CHECK(proa_transport_close(c->t) == 0);
	}
	if (tl->nconns == 0)
		tl->report = proa_loop_group_drained(g, i);
	bump(&drains);
}

/* ---- the test thread's side ------------------------------------------- */

static int fds_before;

static int setup(void **state)
{
	struct proa_loop_group_options go = {.nloops = NLOOPS, .no_pin = true};

	(void)state;
	fds_before = proa_test_fds();
	memset(tl_of, 0, sizeof(tl_of));
	for (unsigned i = 0; i < NLOOPS; i++)
		proa_list_init(&tl_of[i].conns);
	made = busy = drains = 0;
	atomic_store(&lost, 0);
	atomic_store(&lost_err, 0);
	atomic_store(&oddities, 0);
	assert_res(proa_loop_group_new(&grp, &go), 0);
	return 0;
}

/* No thread, loop or descriptor left behind; every loop closed clean. */
static int teardown(void **state)
{
	(void)state;
	assert_res(proa_loop_group_free(grp), 0);
	grp = NULL;
	for (unsigned i = 0; i < NLOOPS; i++)
		assert_int_equal(tl_of[i].nconns, 0);
	assert_int_equal(proa_test_fds(), fds_before);
	assert_int_equal(atomic_load(&oddities), 0);
	return 0;
}

static void listen_on(enum proa_group_mode mode)
{
	assert_res(proa_loop_group_listen(grp, "127.0.0.1", 0, mode, NULL,
					  s_make, NULL),
		   0);
}

/* A blocking client connection; its reads give up after WAIT_S. */
static int dial(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	struct timeval tv = {.tv_sec = WAIT_S};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(proa_loop_group_port(grp));
	assert_int_equal(
	    connect(fd, (struct sockaddr *)&sin, (socklen_t)sizeof(sin)), 0);
	assert_int_equal(
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	return fd;
}

/*
 * recv(2) that retries on EINTR: the loops' rings were made on this
 * thread, and io_uring may run their task work here (TIF_NOTIFY_SIGNAL),
 * which interrupts a blocking call without any signal being sent.
 */
static ssize_t recv_retry(int fd, void *buf, size_t len)
{
	ssize_t n;

	do
		n = recv(fd, buf, len, 0);
	while (n < 0 && errno == EINTR);
	return n;
}

static void send_byte(int fd, char b)
{
	ssize_t n;

	do
		n = send(fd, &b, 1, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	assert_int_equal(n, 1);
}

/* The connection ends: EOF (0), or a reset (-ECONNRESET) if @reset_ok. */
static void expect_end(int fd, bool reset_ok)
{
	char b;
	ssize_t n = recv_retry(fd, &b, 1);

	if (n < 0 && reset_ok && errno == ECONNRESET)
		return;
	if (n < 0)
		fail_msg("recv: errno %d", errno);
	assert_int_equal(n, 0);
}

static void expect_done(int fd)
{
	char buf[4];
	size_t got = 0;

	while (got < sizeof(buf)) {
		ssize_t n = recv_retry(fd, buf + got, sizeof(buf) - got);

		assert_true(n > 0);
		got += (size_t)n;
	}
	assert_memory_equal(buf, "done", 4);
}

/* proa_loop_group_shutdown() on its own thread, which blocks. */
struct runner {
	pthread_t th;
	uint64_t grace_ns;
	proa_group_drain_fn drain;
	int ret;
	uint64_t ns; /* how long the call took */
};

static void *run_shutdown(void *arg)
{
	struct runner *r = arg;
	uint64_t t0 = proa_test_now_ns();

	r->ret = proa_loop_group_shutdown(grp, r->grace_ns, r->drain, &tl_of);
	r->ns = proa_test_now_ns() - t0;
	return NULL;
}

static void runner_start(struct runner *r, uint64_t grace_ns,
			 proa_group_drain_fn drain)
{
	r->grace_ns = grace_ns;
	r->drain = drain;
	r->ret = 1234;
	assert_int_equal(pthread_create(&r->th, NULL, run_shutdown, r), 0);
}

static int runner_join(struct runner *r)
{
	assert_int_equal(pthread_join(r->th, NULL), 0);
	return r->ret;
}

/* Idle connections on every loop are closed (EOF, not a reset), and the
 * call returns as soon as every loop has reported, long before the
 * grace period. */
static void idle_closed(enum proa_group_mode mode)
{
	int fd[4];
	struct runner r;

	listen_on(mode);
	for (unsigned i = 0; i < 4; i++)
		fd[i] = dial();
	assert_true(wait_for(&made, 4));
	runner_start(&r, LONG_GRACE_NS, s_drain);
	for (unsigned i = 0; i < 4; i++) {
		expect_end(fd[i], false);
		close(fd[i]);
	}
	assert_res(runner_join(&r), 0);
	assert_true(r.ns < LONG_GRACE_NS / 2);
	assert_int_equal(drains, NLOOPS);
	assert_int_equal(atomic_load(&lost), 4);
	assert_int_equal(atomic_load(&lost_err), 0);
	for (unsigned i = 0; i < NLOOPS; i++) {
		/* handoff: two each; reuseport: the kernel's hash */
		if (mode == PROA_GROUP_HANDOFF)
			assert_int_equal(proa_loop_group_accepted(grp, i), 2);
		assert_res(tl_of[i].report | tl_of[i].report_late, 0);
	}
}

static void test_group_shutdown_idle_connections_closed(void **state)
{
	(void)state;
	idle_closed(PROA_GROUP_HANDOFF);
}

static void test_group_shutdown_idle_connections_closed_reuseport(void **s)
{
	(void)s;
	idle_closed(PROA_GROUP_REUSEPORT);
}

/* A busy connection is let finish: its answer comes after the drain
 * began, then it closes; the idle one beside it closes at once. */
static void test_group_shutdown_busy_connection_finishes(void **state)
{
	struct runner r;
	int fb, fi;

	(void)state;
	listen_on(PROA_GROUP_HANDOFF);
	fb = dial();
	fi = dial();
	assert_true(wait_for(&made, 2));
	send_byte(fb, 'B');
	assert_true(wait_for(&busy, 1));
	runner_start(&r, LONG_GRACE_NS, s_drain);
	assert_true(wait_for(&drains, NLOOPS));
	expect_end(fi, false);
	/* Still open: the request under way completes. */
	send_byte(fb, 'E');
	expect_done(fb);
	expect_end(fb, false);
	assert_res(runner_join(&r), 0);
	assert_true(r.ns < LONG_GRACE_NS / 2);
	assert_int_equal(atomic_load(&lost), 2);
	assert_int_equal(atomic_load(&lost_err), 0);
	close(fb);
	close(fi);
}

/* A connection that does not finish is aborted at the deadline, not
 * before; the call says one loop was late. */
static void test_group_shutdown_stuck_connection_aborted(void **state)
{
	struct runner r;
	int fb;

	(void)state;
	listen_on(PROA_GROUP_REUSEPORT);
	fb = dial();
	assert_true(wait_for(&made, 1));
	send_byte(fb, 'B');
	assert_true(wait_for(&busy, 1));
	runner_start(&r, SHORT_GRACE_NS, s_drain);
	expect_end(fb, true);
	assert_res(runner_join(&r), 1);
	assert_true(r.ns >= SHORT_GRACE_NS);
	assert_int_equal(atomic_load(&lost), 1);
	close(fb);
}

/* Without a drain function everything is aborted at once. */
static void test_group_shutdown_no_drain_aborts(void **state)
{
	struct runner r;
	int fd;

	(void)state;
	listen_on(PROA_GROUP_HANDOFF);
	fd = dial();
	assert_true(wait_for(&made, 1));
	runner_start(&r, LONG_GRACE_NS, NULL);
	expect_end(fd, true);
	assert_res(runner_join(&r), 0);
	assert_true(r.ns < LONG_GRACE_NS / 2);
	assert_int_equal(drains, 0);
	assert_int_equal(atomic_load(&lost), 1);
	close(fd);
}

/* Twice at the same time, then once more: one drain per loop, every call
 * returns once the loops are stopped; listening is over. */
static void test_group_shutdown_twice(void **state)
{
	struct runner a, b;
	int fd;

	(void)state;
	listen_on(PROA_GROUP_REUSEPORT);
	fd = dial();
	assert_true(wait_for(&made, 1));
	runner_start(&a, LONG_GRACE_NS, s_drain);
	runner_start(&b, LONG_GRACE_NS, s_drain);
	expect_end(fd, false);
	assert_res(runner_join(&a), 0);
	assert_res(runner_join(&b), 0);
	assert_int_equal(drains, NLOOPS);
	assert_res(proa_loop_group_shutdown(grp, 0, s_drain, &tl_of), 0);
	assert_int_equal(drains, NLOOPS);
	assert_res(proa_loop_group_listen(grp, "127.0.0.1", 0,
					  PROA_GROUP_REUSEPORT, NULL, s_make,
					  NULL),
		   -ESHUTDOWN);
	close(fd);
}

/* Loops the application stopped (proa_loop_stop_threadsafe) keep being
 * run by their threads: they still serve, and still drain. */
static void test_group_shutdown_after_loops_stopped(void **state)
{
	struct runner r;
	int fd;

	(void)state;
	listen_on(PROA_GROUP_HANDOFF);
	for (unsigned i = 0; i < NLOOPS; i++)
		assert_res(
		    proa_loop_stop_threadsafe(proa_loop_group_loop(grp, i)), 0);
	fd = dial();
	assert_true(wait_for(&made, 1));
	runner_start(&r, LONG_GRACE_NS, s_drain);
	expect_end(fd, false);
	assert_res(runner_join(&r), 0);
	assert_int_equal(drains, NLOOPS);
	close(fd);
}

/* A group that never listened drains at once. */
static void test_group_shutdown_not_listening(void **state)
{
	uint64_t t0 = proa_test_now_ns();

	(void)state;
	assert_res(
	    proa_loop_group_shutdown(grp, LONG_GRACE_NS, s_drain, &tl_of), 0);
	assert_true(proa_test_now_ns() - t0 < LONG_GRACE_NS / 2);
	assert_int_equal(drains, NLOOPS);
}

/* Grace 0: the deadline is the call itself, so a loop may or may not
 * report in time, but every drain function still runs before the stop
 * (both are posted to the loop in that order), and nothing is lost. */
static void test_group_shutdown_zero_grace(void **state)
{
	int fd, ret;

	(void)state;
	listen_on(PROA_GROUP_HANDOFF);
	fd = dial();
	assert_true(wait_for(&made, 1));
	ret = proa_loop_group_shutdown(grp, 0, s_drain, &tl_of);
	assert_true(ret >= 0 && ret <= NLOOPS);
	assert_int_equal(drains, NLOOPS);
	assert_int_equal(atomic_load(&lost), 1);
	expect_end(fd, true);
	close(fd);
}

/* Called from a loop of the group it would wait for itself: -EDEADLK.
 * A report outside a shutdown is -EINVAL; from the wrong thread -EPERM. */
struct from_loop {
	struct proa_handle h;
	int shutdown_ret;
	int drained_ret;
	unsigned done;
};

static void call_from_loop(void *arg)
{
	struct from_loop *f = arg;

	f->shutdown_ret = proa_loop_group_shutdown(grp, 0, NULL, NULL);
	f->drained_ret = proa_loop_group_drained(grp, 0);
	bump(&f->done);
}

static void test_group_shutdown_threading_rules(void **state)
{
	struct from_loop f = {.shutdown_ret = 1, .drained_ret = 1};

	(void)state;
	assert_res(proa_loop_group_shutdown(NULL, 0, NULL, NULL), -EINVAL);
	assert_res(proa_loop_group_drained(NULL, 0), -EINVAL);
	assert_res(proa_loop_group_drained(grp, NLOOPS), -EINVAL);
	assert_res(proa_loop_group_drained(grp, 0), -EPERM);
	assert_res(proa_loop_call_soon_threadsafe(proa_loop_group_loop(grp, 0),
						  &f.h, call_from_loop, &f),
		   0);
	assert_true(wait_for(&f.done, 1));
	pthread_mutex_lock(&mu);
	assert_res(f.shutdown_ret, -EDEADLK);
	assert_res(f.drained_ret, -EINVAL);
	pthread_mutex_unlock(&mu);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
		test_group_shutdown_idle_connections_closed, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_group_shutdown_idle_connections_closed_reuseport, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(
		test_group_shutdown_busy_connection_finishes, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_group_shutdown_stuck_connection_aborted, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_group_shutdown_no_drain_aborts,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_group_shutdown_twice, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(
		test_group_shutdown_after_loops_stopped, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_group_shutdown_not_listening,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_group_shutdown_zero_grace,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_group_shutdown_threading_rules,
					    setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("net.group_shutdown", tests, NULL,
					   NULL);
}
