/* SPDX-License-Identifier: MIT */
/*
 * net/group.c - loop groups: N loops, each run by its own thread, pinned
 * one per core (hwloc, the pool's SPREAD placement), serving one address.
 *
 *   PROA_GROUP_REUSEPORT  every loop has its own SO_REUSEPORT listener;
 *                         the kernel spreads connections by hash; the
 *                         first checks that nobody else listens there
 *   PROA_GROUP_HANDOFF    loop 0 accepts and hands each socket to the
 *                         next loop in turn with call_soon_threadsafe
 *                         (whose wake-up is the target's eventfd); the
 *                         target serves it as a server would: its own
 *                         cap of connections, TLS if the options say so
 *
 * A socket someone else made (systemd's LISTEN_FDS, a parent process:
 * proa_loop_group_listen_fd) is one listener, not one per loop: with
 * REUSEPORT every loop accepts from it through a descriptor of its own
 * (dup), and the kernel wakes one waiting loop per connection; with
 * HANDOFF loop 0 accepts from it as above.
 *
 * Control (listen, shutdown) reaches a loop as a call_soon_threadsafe item
 * and the calling thread waits for its answer; nothing of a loop is
 * touched from another thread.
 *
 * A graceful shutdown (proa_loop_group_shutdown) has two phases:
 *
 *   drain   every loop at once: close its listener, call the app's drain
 *           function; each loop reports proa_loop_group_drained() when
 *           its connections are done, and the caller waits for all of
 *           them or for the deadline, whichever comes first
 *   stop    one loop after the other (the acceptor first): abort what is
 *           still open, stop, run until nothing is left, close; join
 *
 * A loop's thread runs it until the group stops it (gloop_main), so a
 * proa_loop_stop() from elsewhere cannot leave a closed loop behind that
 * a control call would post to and wait for in vain.
 *
 * Locks: ctl_lock before mu.
 *
 * Thread: the public functions are called from any thread that is not one
 * of the group's loops (they wait for those loops); the rest of this file
 * runs on the loop threads, each on its own loop's data.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "net_int.h"
#include "pool/pool_int.h"
#include "proa/tls.h"

struct gloop {
	struct proa_loop_group *g;
	unsigned idx;
	struct proa_loop *loop;
	pthread_t th;
	bool started;
	int cpu; /* first CPU of its set, -1: not pinned */
	cpu_set_t cpus;
	atomic_uint_fast64_t accepted;
	bool joined; /* control caller's, under ctl_lock */
	int lfd; /* adopted listener: this loop's dup, until its server has it
		  */
	/* loop thread only */
	struct proa_server *server;
	bool stopping;
	bool draining; /* a shutdown's drain phase has reached this loop */
	bool drained;  /* ... and the loop has reported it done */
	struct proa_handle ctl;
	struct proa_handle drain_h;
	int close_ret; /* proa_loop_close() on the way out */
	/* handoff: the connections this loop serves, told when one is gone */
	struct proa__conn_owner owner;
	unsigned active;
};

struct proa_loop_group {
	unsigned n;
	struct gloop *gl;
	/* one control call at a time, waited for under @mu */
	pthread_mutex_t ctl_lock; /* serialises control calls */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool ctl_done;
	int ctl_ret;
	/* shutdown: @drain and @drain_arg are written before the drain
	 * posts (which publish them); @ndrained is guarded by @mu */
	atomic_bool shut;
	proa_group_drain_fn drain;
	void *drain_arg;
	unsigned ndrained;
	pthread_cond_t drain_cv; /* CLOCK_MONOTONIC, for the deadline */
	/* listening: written before the first listen post, read-only after */
	proa_protocol_factory factory;
	void *arg;
	struct proa_server_options opt;
	enum proa_group_mode mode;
	bool shared; /* the caller asked for reuse_port: others may join */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	atomic_uint port;
	atomic_uint next; /* handoff: round robin */
	bool listening;
	bool adopted; /* listen_fd: each loop serves its gl->lfd */
};

/* The group loop this thread runs, or NULL: which loop a call comes from. */
static _Thread_local struct gloop *cur_gloop;

/* A socket on its way to another loop. */
struct handoff {
	struct proa_handle h;
	struct gloop *to;
	int fd;
};

static void *gloop_main(void *arg)
{
	struct gloop *gl = arg;

	int ret;

	cur_gloop = gl;
	if (gl->cpu >= 0)
		pthread_setaffinity_np(pthread_self(), sizeof(gl->cpus),
				       &gl->cpus);
	/* Until stop_here(): a proa_loop_stop() by the application does
	 * not end the thread. */
	do
		ret = proa_loop_run(gl->loop, PROA_RUN_FOREVER);
	while (ret == 0 && !gl->stopping);
	/* Stopped: let what the shutdown started (aborts, closes) finish. */
	proa_loop_run(gl->loop, PROA_RUN_DEFAULT);
	gl->close_ret = proa_loop_close(gl->loop);
	if (gl->close_ret < 0)
		proa__log(PROA_LOG_ERROR, "loop group: loop %u: close: %s",
			  gl->idx, proa_strerror(gl->close_ret));
	return NULL;
}

/* Answer the control call in flight (loop thread). */
static void ctl_answer(struct proa_loop_group *g, int ret)
{
	pthread_mutex_lock(&g->mu);
	g->ctl_ret = ret;
	g->ctl_done = true;
	pthread_cond_signal(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

/* Run @fn on loop @i and wait for its answer (caller's thread, holding
 * ctl_lock). */
static int ctl_locked(struct proa_loop_group *g, unsigned i,
		      proa_callback_fn fn)
{
	struct gloop *gl = &g->gl[i];
	int ret;

	g->ctl_done = false;
	ret = proa_loop_call_soon_threadsafe(gl->loop, &gl->ctl, fn, gl);
	if (ret == 0) {
		pthread_mutex_lock(&g->mu);
		while (!g->ctl_done)
			pthread_cond_wait(&g->cv, &g->mu);
		ret = g->ctl_ret;
		pthread_mutex_unlock(&g->mu);
	}
	return ret;
}

static struct proa_protocol *counted(void *arg, struct proa_transport *t)
{
	struct gloop *gl = arg;
	struct proa_protocol *p = gl->g->factory(gl->g->arg, t);

	if (p)
		atomic_fetch_add_explicit(&gl->accepted, 1,
					  memory_order_relaxed);
	return p;
}

/* ---- handoff ------------------------------------------------------------ */

static void handoff_gone(struct proa__conn_owner *o)
{
	proa_container_of(o, struct gloop, owner)->active--;
}

/*
 * On @gl's loop: serve the socket @fd handed to it, as a server serves
 * what it accepts (server.c, new_connection()): over the options' cap of
 * connections (per loop, as each REUSEPORT loop's server counts its own)
 * it is closed at once, and with a TLS context it is TLS.
 */
static void serve_handed(struct gloop *gl, int fd)
{
	const struct proa_server_options *o = &gl->g->opt;

	/* Draining: this loop takes no new connection. */
	if (gl->stopping || gl->draining ||
	    (o->max_connections && gl->active >= o->max_connections)) {
		close(fd);
		return;
	}
	gl->active++;
	if (proa__serve_accepted(gl->loop, fd, o, counted, gl, &gl->owner) < 0)
		gl->active--; /* @fd is closed */
}

static void handoff_run(void *arg)
{
	struct handoff *h = arg;

	serve_handed(h->to, h->fd);
	free(h);
}

/* On loop 0, for each accepted socket. */
static int handoff(void *arg, int fd)
{
	struct proa_loop_group *g = arg;
	unsigned i =
	    atomic_fetch_add_explicit(&g->next, 1, memory_order_relaxed) % g->n;
	struct handoff *h;
	int ret;

	if (i == 0) {
		serve_handed(&g->gl[0], fd);
		return 0;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		close(fd);
		return -ENOMEM;
	}
	h->to = &g->gl[i];
	h->fd = fd;
	ret =
	    proa_loop_call_soon_threadsafe(h->to->loop, &h->h, handoff_run, h);
	if (ret < 0) {
		close(fd);
		free(h);
	}
	return ret;
}

/* ---- control calls (loop threads) ------------------------------------- */

static void listen_here(void *arg)
{
	struct gloop *gl = arg;
	struct proa_loop_group *g = gl->g;
	struct sockaddr_storage ss = g->addr;
	struct proa_server_options opt;
	uint16_t port = (uint16_t)atomic_load(&g->port);
	int ret;

	if (g->adopted) {
		ret = proa_server_from_fd(&gl->server, gl->loop, gl->lfd,
					  &g->opt, counted, gl);
		if (ret == 0) {
			gl->lfd = -1; /* the server's now */
			atomic_store(&g->port, proa_server_port(gl->server));
			if (g->mode == PROA_GROUP_HANDOFF)
				proa__server_set_handoff(gl->server, handoff,
							 g);
		}
		ctl_answer(g, ret);
		return;
	}
	/* Loops after the first take the port the first was given. */
	if (ss.ss_family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
	/* The first listener makes sure the port is nobody else's; the
	 * others join it by SO_REUSEPORT (see port_taken() in server.c). */
	opt = g->opt;
	opt.reuse_port_exclusive = gl->idx == 0 && !g->shared;
	ret =
	    proa_tcp_listen_addr(&gl->server, gl->loop, (struct sockaddr *)&ss,
				 g->addrlen, &opt, counted, gl);
	if (ret == 0) {
		atomic_store(&g->port, proa_server_port(gl->server));
		if (g->mode == PROA_GROUP_HANDOFF)
			proa__server_set_handoff(gl->server, handoff, g);
	}
	ctl_answer(g, ret);
}

static void stop_here(void *arg)
{
	struct gloop *gl = arg;
	struct proa__netloop *nl;
	struct proa_link *l, *next;

	gl->stopping = true;
	if (gl->server) {
		proa_server_close(gl->server, NULL);
		gl->server = NULL;
	}
	/* Abort what is open: the loop then drains in gloop_main. */
	nl = proa__netloop_peek(gl->loop);
	if (nl) {
		for (l = nl->all.next; l != &nl->all; l = next) {
			next = l->next;
			proa_transport_abort(
			    &proa_container_of(l, struct proa__sock, link)
				 ->base);
		}
	}
	proa_loop_stop(gl->loop);
	ctl_answer(gl->g, 0);
}

/* One more loop has drained (any thread). */
static void count_drained(struct proa_loop_group *g)
{
	pthread_mutex_lock(&g->mu);
	g->ndrained++;
	pthread_cond_broadcast(&g->drain_cv);
	pthread_mutex_unlock(&g->mu);
}

/* The drain phase on one loop: stop accepting, then the app's part. */
static void drain_here(void *arg)
{
	struct gloop *gl = arg;
	struct proa_loop_group *g = gl->g;

	gl->draining = true;
	if (gl->server) {
		proa_server_close(gl->server, NULL);
		gl->server = NULL;
	}
	if (g->drain)
		g->drain(g, gl->idx, g->drain_arg);
	else
		proa_loop_group_drained(g, gl->idx);
}

static void close_server_here(void *arg)
{
	struct gloop *gl = arg;

	if (gl->server) {
		proa_server_close(gl->server, NULL);
		gl->server = NULL;
	}
	ctl_answer(gl->g, 0);
}

/* ---- the public side ---------------------------------------------------- */

static int pick_cpus(struct proa_loop_group *g, bool no_pin)
{
	struct proa__place pl;
	unsigned i, k, cpu;
	int ret;

	for (i = 0; i < g->n; i++)
		g->gl[i].cpu = -1;
	if (no_pin)
		return 0;
	ret = proa__place_init(&pl, PROA_PLACE_SPREAD);
	if (ret < 0)
		return ret;
	for (i = 0; i < g->n; i++) {
		struct gloop *gl = &g->gl[i];

		if (pl.bound) {
			gl->cpus = pl.slots[i % pl.nslots];
		} else {
			/* No topology: the process's CPUs, one each, in
			 * turn. */
			k = i % (unsigned)CPU_COUNT(&pl.allowed);
			CPU_ZERO(&gl->cpus);
			for (cpu = 0; cpu < CPU_SETSIZE; cpu++) {
				if (CPU_ISSET(cpu, &pl.allowed) && k-- == 0) {
					CPU_SET(cpu, &gl->cpus);
					break;
				}
			}
		}
		for (cpu = 0; cpu < CPU_SETSIZE; cpu++) {
			if (CPU_ISSET(cpu, &gl->cpus)) {
				gl->cpu = (int)cpu;
				break;
			}
		}
	}
	proa__place_fini(&pl);
	return 0;
}

/* Stop every loop and join its thread, the acceptor first, so that no
 * socket is handed to a loop that is already gone (caller's thread,
 * holding ctl_lock).  A loop stopped before is not stopped again. */
static void stop_all_locked(struct proa_loop_group *g)
{
	unsigned i;

	for (i = 0; i < g->n; i++) {
		struct gloop *gl = &g->gl[i];

		if (!gl->started || gl->joined)
			continue;
		ctl_locked(g, i, stop_here);
		pthread_join(gl->th, NULL);
		gl->joined = true;
	}
}

/* Whether the calling thread runs a loop of @g. */
static bool on_loop_of(const struct proa_loop_group *g)
{
	return cur_gloop && cur_gloop->g == g;
}

int proa_loop_group_free(struct proa_loop_group *g)
{
	unsigned i;
	int ret = 0;

	if (!g)
		return 0;
	if (on_loop_of(g))
		return -EDEADLK;
	pthread_mutex_lock(&g->ctl_lock);
	stop_all_locked(g);
	pthread_mutex_unlock(&g->ctl_lock);
	for (i = 0; i < g->n; i++) {
		struct gloop *gl = &g->gl[i];

		if (gl->started) {
			if (gl->close_ret < 0 && ret == 0)
				ret = gl->close_ret;
		} else if (gl->loop) {
			proa_loop_close(gl->loop);
		}
		if (gl->loop)
			proa_loop_free(gl->loop);
	}
	pthread_mutex_destroy(&g->ctl_lock);
	pthread_mutex_destroy(&g->mu);
	pthread_cond_destroy(&g->cv);
	pthread_cond_destroy(&g->drain_cv);
	proa_tls_context_free(g->opt.tls);
	free(g->gl);
	free(g);
	return ret;
}

int proa_loop_group_new(struct proa_loop_group **out,
			const struct proa_loop_group_options *opt)
{
	struct proa_loop_group *g;
	cpu_set_t allowed;
	pthread_condattr_t ca;
	sigset_t all, old;
	unsigned i, n = opt ? opt->nloops : 0;
	int ret;

	if (!out || (opt && !PROA__RESERVED_ZERO(opt)))
		return -EINVAL;
	if (n == 0) {
		if (sched_getaffinity(getpid(), sizeof(allowed), &allowed) < 0)
			return -errno;
		n = (unsigned)CPU_COUNT(&allowed);
	}
	if (n > 1024)
		return -EINVAL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->gl = calloc(n, sizeof(*g->gl));
	if (!g->gl) {
		free(g);
		return -ENOMEM;
	}
	g->n = n;
	pthread_mutex_init(&g->ctl_lock, NULL);
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g->drain_cv, &ca);
	pthread_condattr_destroy(&ca);
	ret = pick_cpus(g, opt && opt->no_pin);
	for (i = 0; ret == 0 && i < n; i++) {
		g->gl[i].g = g;
		g->gl[i].idx = i;
		g->gl[i].owner.gone = handoff_gone;
		ret = proa_loop_new(&g->gl[i].loop, NULL);
	}
	/* Loop threads take no signals: the application's own thread
	 * (sigwait, or a loop of its own) does. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; ret == 0 && i < n; i++) {
		ret =
		    -pthread_create(&g->gl[i].th, NULL, gloop_main, &g->gl[i]);
		g->gl[i].started = ret == 0;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret < 0) {
		proa_loop_group_free(g);
		return ret;
	}
	*out = g;
	return 0;
}

unsigned proa_loop_group_size(const struct proa_loop_group *g)
{
	return g ? g->n : 0;
}

struct proa_loop *proa_loop_group_loop(struct proa_loop_group *g, unsigned i)
{
	return g && i < g->n ? g->gl[i].loop : NULL;
}

int proa_loop_group_cpu(const struct proa_loop_group *g, unsigned i)
{
	return g && i < g->n ? g->gl[i].cpu : -1;
}

uint64_t proa_loop_group_accepted(const struct proa_loop_group *g, unsigned i)
{
	if (!g || i >= g->n)
		return 0;
	return atomic_load_explicit(&g->gl[i].accepted, memory_order_relaxed);
}

uint16_t proa_loop_group_port(const struct proa_loop_group *g)
{
	return g ? (uint16_t)atomic_load(&g->port) : 0;
}

/* What both listens check, from the caller's thread. */
static int listen_check(struct proa_loop_group *g, enum proa_group_mode mode,
			const struct proa_server_options *opt,
			proa_protocol_factory factory)
{
	if (!g || !factory ||
	    (mode != PROA_GROUP_REUSEPORT && mode != PROA_GROUP_HANDOFF) ||
	    (opt && (!PROA__RESERVED_ZERO(opt) ||
		     !PROA__RESERVED_ZERO(&opt->transport))))
		return -EINVAL;
	if (on_loop_of(g))
		return -EDEADLK;
	return 0;
}

/* Takes ctl_lock for the whole listen, so that two listens at once (or a
 * listen and a shutdown) cannot both find the group idle.  Returns with
 * the lock held on success only. */
static int listen_begin(struct proa_loop_group *g)
{
	pthread_mutex_lock(&g->ctl_lock);
	if (atomic_load(&g->shut) || g->listening) {
		pthread_mutex_unlock(&g->ctl_lock);
		return atomic_load(&g->shut) ? -ESHUTDOWN : -EBUSY;
	}
	return 0;
}

/* What both listens keep for the loops (read there after the post). */
static void listen_take(struct proa_loop_group *g, enum proa_group_mode mode,
			const struct proa_server_options *opt,
			proa_protocol_factory factory, void *arg)
{
	g->factory = factory;
	g->arg = arg;
	g->mode = mode;
	/* Not an earlier call's.  The TLS context is held while the group
	 * may serve: a socket handed to a loop is opened there after loop
	 * 0's server may have closed. */
	proa_tls_context_free(g->opt.tls);
	memset(&g->opt, 0, sizeof(g->opt));
	if (opt)
		g->opt = *opt;
	if (g->opt.tls)
		proa_tls_context_ref(g->opt.tls);
}

int proa_loop_group_listen(struct proa_loop_group *g, const char *host,
			   uint16_t port, enum proa_group_mode mode,
			   const struct proa_server_options *opt,
			   proa_protocol_factory factory, void *arg)
{
	unsigned i, k;
	int ret = listen_check(g, mode, opt, factory);

	if (ret < 0)
		return ret;
	ret = listen_begin(g);
	if (ret < 0)
		return ret;
	if (proa__parse_numeric(host && host[0] ? host : "0.0.0.0", port,
				&g->addr, &g->addrlen) < 0) {
		pthread_mutex_unlock(&g->ctl_lock);
		return -EINVAL;
	}
	listen_take(g, mode, opt, factory, arg);
	/* The caller's reuse_port: share with other processes too. */
	g->shared = g->opt.reuse_port;
	g->opt.reuse_port = mode == PROA_GROUP_REUSEPORT || g->opt.reuse_port;
	atomic_store(&g->port, port);
	k = mode == PROA_GROUP_HANDOFF ? 1 : g->n;
	for (i = 0; i < k; i++) {
		ret = ctl_locked(g, i, listen_here);
		if (ret < 0) {
			while (i-- > 0)
				ctl_locked(g, i, close_server_here);
			pthread_mutex_unlock(&g->ctl_lock);
			return ret;
		}
	}
	g->listening = true;
	pthread_mutex_unlock(&g->ctl_lock);
	return 0;
}

/*
 * Each loop gets a descriptor of its own for the one socket, so that each
 * server owns and closes what it was given, and a failure half-way closes
 * only dups: the caller's @fd is closed on success alone.
 */
int proa_loop_group_listen_fd(struct proa_loop_group *g, int fd,
			      enum proa_group_mode mode,
			      const struct proa_server_options *opt,
			      proa_protocol_factory factory, void *arg)
{
	unsigned i, k;
	int ret = listen_check(g, mode, opt, factory);

	if (ret < 0)
		return ret;
	if (fd < 0)
		return -EBADF;
	ret = proa__stream_socket_listens(fd);
	if (ret <= 0)
		return ret < 0 ? ret : -EINVAL;
	ret = listen_begin(g);
	if (ret < 0)
		return ret;
	listen_take(g, mode, opt, factory, arg);
	g->shared = false;
	g->adopted = true;
	k = mode == PROA_GROUP_HANDOFF ? 1 : g->n;
	for (i = 0; i < k; i++) {
		g->gl[i].lfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		ret = g->gl[i].lfd < 0 ? -errno : ctl_locked(g, i, listen_here);
		if (ret < 0)
			break;
	}
	if (ret < 0) {
		if (g->gl[i].lfd >= 0)
			close(g->gl[i].lfd); /* its server was not made */
		g->gl[i].lfd = -1;
		while (i-- > 0)
			ctl_locked(g, i, close_server_here);
		g->adopted = false;
		atomic_store(&g->port, 0);
		pthread_mutex_unlock(&g->ctl_lock);
		return ret;
	}
	close(fd);
	g->listening = true;
	pthread_mutex_unlock(&g->ctl_lock);
	return 0;
}

/*
 * The drain phase posts to every loop and waits for their reports or the
 * deadline; the stop phase aborts and joins.  ctl_lock is held throughout,
 * so a second shutdown (or a listen) waits for this one to end.
 */
int proa_loop_group_shutdown(struct proa_loop_group *g, uint64_t grace_ns,
			     proa_group_drain_fn drain, void *arg)
{
	struct timespec deadline;
	unsigned i, late;
	int ret = 0;

	if (!g)
		return -EINVAL;
	if (on_loop_of(g))
		return -EDEADLK;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += (time_t)(grace_ns / 1000000000u);
	deadline.tv_nsec += (long)(grace_ns % 1000000000u);
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&g->ctl_lock);
	if (atomic_load(&g->shut)) {
		pthread_mutex_unlock(&g->ctl_lock);
		return 0;
	}
	atomic_store(&g->shut, true);
	g->drain = drain;
	g->drain_arg = arg;
	for (i = 0; i < g->n; i++) {
		struct gloop *gl = &g->gl[i];

		/* A loop that cannot be reached has nothing to drain. */
		if (!gl->started || gl->joined ||
		    proa_loop_call_soon_threadsafe(gl->loop, &gl->drain_h,
						   drain_here, gl) < 0)
			count_drained(g);
	}
	pthread_mutex_lock(&g->mu);
	while (g->ndrained < g->n && ret == 0)
		ret = pthread_cond_timedwait(&g->drain_cv, &g->mu, &deadline);
	late = g->ndrained < g->n ? g->n - g->ndrained : 0;
	pthread_mutex_unlock(&g->mu);
	stop_all_locked(g);
	pthread_mutex_unlock(&g->ctl_lock);
	return (int)late;
}

int proa_loop_group_drained(struct proa_loop_group *g, unsigned i)
{
	struct gloop *gl;

	if (!g || i >= g->n)
		return -EINVAL;
	gl = &g->gl[i];
	if (cur_gloop != gl)
		return -EPERM;
	if (!gl->draining)
		return -EINVAL;
	if (gl->drained)
		return -EALREADY;
	gl->drained = true;
	count_drained(g);
	return 0;
}
