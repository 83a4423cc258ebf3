/* SPDX-License-Identifier: MIT */
/*
 * tests/kernel/net/test_tcp_options.c - server options and the rest
 * of the transport API: the backlog and SO_REUSEADDR reaching the
 * listener, writev and sockname/peername, and set_write_buffer_limits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "tcp_support.h"

/* The listening descriptor of @s's listener @i: there is no accessor, so
 * it is found among this process's descriptors by its bound address. */
static int server_fd(const struct proa_server *s, unsigned i)
{
	struct sockaddr_storage want, got;
	socklen_t wlen, glen, vlen;
	struct dirent *e;
	int fd, v, found = -1;
	DIR *d;

	assert_res(proa_server_sockname(s, i, &want, &wlen), 0);
	d = opendir("/proc/self/fd");
	assert_non_null(d);
	/* readdir(): this stream is this thread's alone. */
	while ((e = readdir(d)) != NULL) { /* NOLINT(concurrency-mt-unsafe) */
		if (e->d_name[0] == '.')
			continue;
		fd = atoi(e->d_name);
		vlen = sizeof(v);
		glen = sizeof(got);
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &vlen) == 0 &&
		    v && getsockname(fd, (struct sockaddr *)&got, &glen) == 0 &&
		    glen == wlen && memcmp(&got, &want, wlen) == 0) {
			assert_int_equal(found, -1); /* one socket only */
			found = fd;
		}
	}
	closedir(d);
	assert_true(found >= 0);
	return found;
}

static int sockopt_int(int fd, int level, int name)
{
	socklen_t len;
	int v = -1;

	len = sizeof(v);
	assert_int_equal(getsockopt(fd, level, name, &v, &len), 0);
	return v;
}

/* listen(2)'s backlog as the kernel holds it: for a listening socket,
 * TCP_INFO's tcpi_sacked is sk_max_ack_backlog (what ss -l shows). */
static int listen_backlog(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
	assert_int_equal(ti.tcpi_state, TCP_LISTEN);
	return (int)ti.tcpi_sacked;
}

/* The kernel caps every backlog at net.core.somaxconn. */
static int capped_backlog(int backlog)
{
	FILE *f = fopen("/proc/sys/net/core/somaxconn", "r");
	int max = 0;

	assert_non_null(f);
	assert_int_equal(fscanf(f, "%d", &max), 1);
	fclose(f);
	return backlog < max ? backlog : max;
}

/*
 * Server options: the backlog reaches listen(2) (511 by default);
 * SO_REUSEADDR is on by default, so a server can listen again on a port
 * that a connection it closed first still holds in TIME_WAIT; with
 * no_reuse_addr it is off, and that listen is -EADDRINUSE.
 */
static void test_server_options(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = P_ECHO}, cf = {.flags = 0};
	struct proa_server_options so = {.backlog = 7};
	struct proa_server_options nr = {.no_reuse_addr = true};
	struct sockaddr_in a = {.sin_family = AF_INET};
	struct proa_server *s = listen_local(loop, NULL, &sf);
	uint16_t port = proa_server_port(s);
	struct peer *c, *sv;
	int fd;

	(void)state;
	fd = server_fd(s, 0);
	assert_int_equal(listen_backlog(fd), capped_backlog(511));
	assert_int_equal(sockopt_int(fd, SOL_SOCKET, SO_REUSEADDR), 1);
	assert_int_equal(sockopt_int(fd, SOL_SOCKET, SO_REUSEPORT), 0);
	/* the server closes first: its end stays in TIME_WAIT on @port */
	c = connect_local(loop, port, NULL, &cf);
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	assert_res(proa_transport_close(sv->t), 0);
	DRIVE(loop, sv->lost && c->lost);
	assert_res(sv->err, 0);
	close_server(loop, s);
	/* without SO_REUSEADDR the port is taken (else this proves nothing) */
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons(port);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), -1);
	assert_int_equal(errno, EADDRINUSE);
	close(fd);
	assert_res(proa_tcp_listen_addr(&s, loop, (struct sockaddr *)&a,
					sizeof(a), &nr, farm_make, &sf),
		   -EADDRINUSE);
	/* the default binds over it, with the backlog asked for */
	s = NULL;
	assert_res(proa_tcp_listen_addr(&s, loop, (struct sockaddr *)&a,
					sizeof(a), &so, farm_make, &sf),
		   0);
	assert_int_equal(proa_server_port(s), port);
	fd = server_fd(s, 0);
	assert_int_equal(listen_backlog(fd), capped_backlog(7));
	assert_int_equal(sockopt_int(fd, SOL_SOCKET, SO_REUSEADDR), 1);
	c = connect_local(loop, port, NULL, &cf);
	assert_res(proa_transport_write(c->t, "again", 5), 0);
	DRIVE(loop, c->rx == 5);
	assert_res(proa_transport_close(c->t), 0);
	DRIVE(loop, c->lost && sf.peers->lost);
	close_server(loop, s);
	/* no_reuse_addr: the option is off on the listening socket */
	s = listen_local(loop, &nr, &sf);
	assert_int_equal(sockopt_int(server_fd(s, 0), SOL_SOCKET, SO_REUSEADDR),
			 0);
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

/*
 * writev: pieces of many sizes, among them an empty one and a NULL one of
 * length 0, and more pieces than one sendmsg gathers, arrive whole and in
 * order; a NULL base with a length is refused with nothing queued; after
 * close, -EPIPE.  sockname: the server side's port is the server's, the
 * client side's is what the server sees as its peer.
 */
static void test_writev_sockname(void **state)
{
	static const size_t sizes[] = {1,     0, 0, 16383, 2,	 16384,
				       30000, 0, 7, 16385, 4096, 3};
	enum { N = sizeof(sizes) / sizeof(sizes[0]), MANY = 70 };
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = P_VERIFY}, cf = {.flags = 0};
	struct proa_server *s = listen_local(loop, NULL, &sf);
	struct peer *c = connect_local(loop, proa_server_port(s), NULL, &cf);
	const size_t cap = 1u << 18;
	uint8_t *b = pat_buf(0, cap);
	struct iovec iov[MANY];
	struct sockaddr_storage ss, peer;
	socklen_t len, plen;
	uint64_t off = 0;
	struct peer *sv;
	unsigned k;

	(void)state;
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	/* the second zero-length piece has no base at all */
	for (k = 0; k < N; k++) {
		iov[k].iov_base = sizes[k] == 0 && k % 2 == 0 ? NULL : b + off;
		iov[k].iov_len = sizes[k];
		off += sizes[k];
	}
	assert_null(iov[2].iov_base);
	assert_non_null(iov[1].iov_base);
	assert_int_equal(iov[1].iov_len, 0);
	assert_res(proa_transport_writev(c->t, iov, N), 0);
	assert_int_equal(proa_transport_write_buffer_size(c->t), off);
	/* refused whole: nothing of the good pieces before it is queued */
	iov[0].iov_base = b + off;
	iov[0].iov_len = 10;
	iov[1].iov_base = NULL;
	iov[1].iov_len = 5;
	assert_res(proa_transport_writev(c->t, iov, 2), -EINVAL);
	assert_res(proa_transport_writev(c->t, iov, -1), -EINVAL);
	assert_res(proa_transport_writev(c->t, NULL, 1), -EINVAL);
	assert_res(proa_transport_writev(c->t, iov, 0), 0);
	assert_int_equal(proa_transport_write_buffer_size(c->t), off);
	/* more pieces than one sendmsg takes (PROA__SEND_IOV) */
	for (k = 0; k < MANY; k++) {
		iov[k].iov_base = b + off;
		iov[k].iov_len = 1 + k * 37;
		off += iov[k].iov_len;
	}
	assert_true(off <= cap);
	assert_res(proa_transport_writev(c->t, iov, MANY), 0);
	DRIVE(loop, sv->rx == off);
	assert_int_equal(sv->bad, 0);
	/* addresses */
	assert_res(proa_transport_sockname(sv->t, &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(len, sizeof(struct sockaddr_in));
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port),
			 proa_server_port(s));
	assert_int_equal(ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr),
			 INADDR_LOOPBACK);
	assert_res(proa_transport_sockname(c->t, &ss, &len), 0);
	assert_res(proa_transport_peername(sv->t, &peer, &plen), 0);
	assert_int_equal(len, plen);
	assert_memory_equal(&ss, &peer, len);
	assert_true(ntohs(((struct sockaddr_in *)&ss)->sin_port) !=
		    proa_server_port(s));
	assert_res(proa_transport_sockname(c->t, NULL, &len), -EINVAL);
	assert_res(proa_transport_close(c->t), 0);
	assert_res(proa_transport_writev(c->t, iov, 1), -EPIPE);
	DRIVE(loop, c->lost && sv->lost);
	assert_int_equal(sv->rx, off);
	free(b);
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

/*
 * set_write_buffer_limits against a peer that reads nothing: low > high
 * is -EINVAL and changes nothing; the marks set are the ones used (no
 * pause at the default 64 KiB, a pause past the new high); raising them
 * while paused resumes writing at once (the buffer is under the new low
 * though nothing was sent), lowering them pauses it again.
 */
static void test_write_limits(void **state)
{
	const size_t kib = 1024;
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0};
	struct proa_server_options so = {.transport.sndbuf = 4096};
	struct proa_server *s = listen_local(loop, &so, &sf);
	struct raw r = {.port = proa_server_port(s)};
	struct proa_transport *t;
	struct peer *sv;
	unsigned i;

	(void)state;
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	assert_int_equal(pthread_create(&r.th, NULL, raw_slow_main, &r), 0);
	DRIVE_NS(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	t = sv->t;
	assert_res(
	    proa_transport_set_write_buffer_limits(t, 256 * kib, 64 * kib), 0);
	assert_res(proa_transport_set_write_buffer_limits(t, 1000, 2000),
		   -EINVAL);
	assert_int_equal(proa__sock_of(t)->high, 256 * kib);
	assert_int_equal(proa__sock_of(t)->low, 64 * kib);
	write_pat(t, 0, 200 * kib);
	for (i = 0; i < 100; i++)
		assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	DRIVE_NS(loop, !proa_op_is_idle(&proa__sock_of(t)->wop));
	/* over the default high, under the one set: no pause */
	assert_true(proa_transport_write_buffer_size(t) > 64 * kib);
	assert_int_equal(sv->pauses, 0);
	write_pat(t, 200 * kib, 200 * kib);
	DRIVE_NS(loop, sv->pauses == 1);
	assert_true(sv->buf_at_pause > 256 * kib);
	print_message("paused at %zu bytes buffered\n", sv->buf_at_pause);
	/* raised over what is buffered: resume, with nothing sent */
	assert_res(
	    proa_transport_set_write_buffer_limits(t, 1024 * kib, 512 * kib),
	    0);
	assert_int_equal(sv->resumes, 0); /* never inside the call */
	DRIVE_NS(loop, sv->resumes == 1);
	assert_true(sv->buf_at_resume > 128 * kib);
	/* lowered under it: pause again at the new high */
	assert_res(
	    proa_transport_set_write_buffer_limits(t, 128 * kib, 32 * kib), 0);
	DRIVE_NS(loop, sv->pauses == 2);
	assert_true(sv->buf_at_pause > 128 * kib);
	/* the peer reads: resume at the new low */
	raw_set_step(&r, 1);
	DRIVE_NS(loop, sv->resumes == 2);
	assert_true(sv->buf_at_resume <= 32 * kib);
	assert_res(proa_transport_close(t), 0);
	DRIVE_NS(loop, sv->lost);
	assert_res(sv->err, 0);
	pthread_join(r.th, NULL);
	assert_true(r.eof);
	assert_int_equal(r.got, 400 * kib);
	assert_int_equal(r.bad, 0);
	close_server(loop, s);
	proa_test_loop_close(loop);
	pthread_mutex_destroy(&r.mu);
	pthread_cond_destroy(&r.cv);
	farm_free(&sf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_server_options, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_writev_sockname, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_write_limits, setup,
					    teardown_check),
	};

	proa_test_require_uring();
	proa_test_filter_from_env();
	return cmocka_run_group_tests_name("net.tcp_options", tests, NULL,
					   NULL);
}
