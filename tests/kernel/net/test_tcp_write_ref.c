/* SPDX-License-Identifier: MIT */
/*
 * tests/kernel/net/test_tcp_write_ref.c - write_ref: caller memory
 * sent without a copy and released exactly once - when sent, on close
 * (after flushing), on abort, on a reset - in order with copied writes;
 * refused calls never release; an empty one is released once, later,
 * from the loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "tcp_support.h"

static struct sigaction old_pipe;

/* 8 MiB from one malloc'd buffer through a 4 KiB SO_SNDBUF (hundreds of
 * short sends): no copy, release exactly once, never inside the call,
 * only once the transport holds none of the bytes; the memory is poisoned
 * at release, and the peer still gets the original pattern, every byte -
 * nothing was sent from it afterwards. */
static void test_write_ref_8mib(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0}, cf = {.flags = P_VERIFY};
	struct proa_server_options so = {.transport.sndbuf = 4096};
	struct proa_server *s = listen_local(loop, &so, &sf);
	struct peer *c = connect_local(loop, proa_server_port(s), NULL, &cf);
	const size_t total = 8u << 20;
	struct wref r = {.len = total, .rx = c};
	struct peer *sv;
	unsigned i;

	(void)state;
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	r.t = sv->t;
	r.buf = pat_buf(0, total);
	assert_res(
	    proa_transport_write_ref(sv->t, r.buf, total, wref_release, &r), 0);
	assert_int_equal(r.calls, 0); /* never inside the call */
	/* counted in the write buffer like any write */
	assert_int_equal(proa_transport_write_buffer_size(sv->t), total);
	while (c->rx < total) {
		assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
		assert_false(c->lost);
		assert_false(sv->lost);
		assert_true(r.calls <= 1);
		if (r.calls == 0)
			assert_true(proa_transport_write_buffer_size(sv->t) >
				    0);
	}
	DRIVE(loop, r.calls == 1);
	assert_int_equal(c->rx, total);
	assert_int_equal(c->bad, 0); /* the original bytes, all of them */
	assert_true(r.intact);
	assert_int_equal(r.wbuf_at_release, 0);
	print_message("release ran with %llu of %zu bytes read by the peer\n",
		      (unsigned long long)r.rx_at_release, total);
	for (i = 0; i < 1000; i++)
		assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	assert_int_equal(r.calls, 1);
	assert_res(proa_transport_close(c->t), 0);
	DRIVE(loop, c->lost && sv->lost);
	assert_res(sv->err, 0);
	assert_int_equal(r.calls, 1);
	assert_true(r.seq < sv->lost_seq);
	free(r.buf);
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

/* Copied and referenced writes interleave, in order: "A" (copied), "B..."
 * (write_ref), "C" (copied), then pieces of many sizes (around a chunk's
 * size, past the 64-piece gather), sometimes with a send in flight.  A
 * copied write never lands in a referenced buffer. */
static void test_write_ref_mixed_order(void **state)
{
	static const size_t ref_len[] = {100000, 1,	7,     4096,  16383,
					 16384,	 16385, 65536, 200000};
	static const size_t cp_len[] = {1,     1, 300,	 16000, 16384,
					20000, 5, 70000, 1};
	enum { N = sizeof(ref_len) / sizeof(ref_len[0]) };
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0}, cf = {.flags = P_VERIFY};
	struct proa_server *s = listen_local(loop, NULL, &sf);
	struct peer *c = connect_local(loop, proa_server_port(s), NULL, &cf);
	struct wref r[N];
	struct peer *sv;
	uint64_t off = 0;
	unsigned k;

	(void)state;
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	memset(r, 0, sizeof(r));
	for (k = 0; k < N; k++) {
		write_pat(sv->t, off, cp_len[k]);
		off += cp_len[k];
		r[k].t = sv->t;
		r[k].base = off;
		r[k].len = ref_len[k];
		r[k].buf = pat_buf(off, ref_len[k]);
		assert_res(proa_transport_write_ref(sv->t, r[k].buf, r[k].len,
						    wref_release, &r[k]),
			   0);
		off += ref_len[k];
		if (k == 0) {
			write_pat(sv->t, off, 1); /* "C" */
			off += 1;
		}
		if (k % 2)
			assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	}
	write_pat(sv->t, off, 3);
	off += 3;
	DRIVE(loop, c->rx == off);
	assert_int_equal(c->bad, 0);
	for (k = 0; k < N; k++) {
		DRIVE(loop, r[k].calls > 0);
		assert_int_equal(r[k].calls, 1);
		assert_true(r[k].intact);
		if (k > 0)
			assert_true(r[k - 1].seq < r[k].seq); /* in order */
	}
	assert_res(proa_transport_close(sv->t), 0);
	DRIVE(loop, c->lost && sv->lost);
	assert_int_equal(c->rx, off);
	for (k = 0; k < N; k++) {
		assert_int_equal(r[k].calls, 1);
		free(r[k].buf);
	}
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

/* close() with references queued: they are sent, released, and then
 * connection_lost(0). */
static void test_write_ref_close_flushes(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0}, cf = {.flags = P_VERIFY};
	struct proa_server_options so = {.transport.sndbuf = 4096};
	struct proa_server *s = listen_local(loop, &so, &sf);
	struct peer *c = connect_local(loop, proa_server_port(s), NULL, &cf);
	const size_t len = 1u << 20;
	struct wref r = {.len = len};
	struct peer *sv;

	(void)state;
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	r.t = sv->t;
	r.buf = pat_buf(0, len);
	assert_res(
	    proa_transport_write_ref(sv->t, r.buf, len, wref_release, &r), 0);
	assert_res(proa_transport_close(sv->t), 0);
	assert_int_equal(r.calls, 0);
	DRIVE(loop, sv->lost && c->lost);
	assert_res(sv->err, 0);
	assert_int_equal(c->rx, len);
	assert_int_equal(c->bad, 0);
	assert_int_equal(r.calls, 1);
	assert_true(r.intact);
	assert_true(r.seq < sv->lost_seq);
	free(r.buf);
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

/* abort() with references queued against a peer that does not read
 * (small buffers both ends, so the bytes stay queued and a send stays in
 * flight): each release runs exactly once, not inside abort, once the
 * send is over, and before connection_lost; what the peer did get is the
 * original pattern. */
static void test_write_ref_abort(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0}, cf = {.flags = P_VERIFY};
	struct proa_server_options so = {.transport.sndbuf = 4096};
	struct proa_connect_options co = {.transport.rcvbuf = 4096};
	struct proa_server *s = listen_local(loop, &so, &sf);
	struct peer *c = connect_local(loop, proa_server_port(s), &co, &cf);
	struct wref r1 = {.base = 65536, .len = 4u << 20};
	struct wref r2 = {.base = 65536 + (4u << 20), .len = 1000};
	struct peer *sv;
	unsigned i;

	(void)state;
	assert_res(proa_transport_pause_reading(c->t), 0);
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	r1.t = r2.t = sv->t;
	r1.buf = pat_buf(r1.base, r1.len);
	r2.buf = pat_buf(r2.base, r2.len);
	write_pat(sv->t, 0, 65536);
	assert_res(
	    proa_transport_write_ref(sv->t, r1.buf, r1.len, wref_release, &r1),
	    0);
	assert_res(
	    proa_transport_write_ref(sv->t, r2.buf, r2.len, wref_release, &r2),
	    0);
	write_pat(sv->t, r2.base + r2.len, 100);
	for (i = 0; i < 100; i++)
		assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	/* stuck: the peer reads nothing */
	assert_int_equal(r1.calls, 0);
	assert_int_equal(r2.calls, 0);
	assert_true(proa_transport_write_buffer_size(sv->t) > r2.len);
	assert_false(proa_op_is_idle(&proa__sock_of(sv->t)->wop));
	proa_transport_abort(sv->t);
	assert_int_equal(r1.calls, 0); /* a send is in flight */
	assert_int_equal(r2.calls, 0);
	assert_false(sv->lost);
	assert_res(proa_transport_write_ref(sv->t, "x", 1, wref_release, &r1),
		   -EPIPE);
	DRIVE(loop, sv->lost);
	assert_res(sv->err, -ECONNABORTED);
	assert_int_equal(r1.calls, 1);
	assert_int_equal(r2.calls, 1);
	assert_true(r1.intact);
	assert_true(r2.intact);
	assert_true(r1.seq < sv->lost_seq);
	assert_true(r2.seq < sv->lost_seq);
	assert_res(proa_transport_resume_reading(c->t), 0);
	DRIVE(loop, c->lost);
	assert_int_equal(c->bad, 0);
	assert_true(c->rx < r2.base + r2.len);
	for (i = 0; i < 100; i++)
		assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	assert_int_equal(r1.calls, 1);
	assert_int_equal(r2.calls, 1);
	free(r1.buf);
	free(r2.buf);
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

/* A failure (the peer resets) with a reference queued: released exactly
 * once, before connection_lost(ECONNRESET or EPIPE). */
static void test_write_ref_reset(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0};
	struct proa_server *s = listen_local(loop, NULL, &sf);
	struct raw r = {.port = proa_server_port(s)};
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	struct wref w = {.len = 16u << 20};
	struct peer *sv;

	(void)state;
	sigaction(SIGPIPE, &dfl, &old_pipe);
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	assert_int_equal(pthread_create(&r.th, NULL, raw_reset_main, &r), 0);
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	w.t = sv->t;
	w.buf = pat_buf(0, w.len);
	assert_res(
	    proa_transport_write_ref(sv->t, w.buf, w.len, wref_release, &w), 0);
	assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	assert_int_equal(w.calls, 0);
	raw_set_step(&r, 1);
	DRIVE(loop, sv->lost);
	assert_true(sv->err == -ECONNRESET || sv->err == -EPIPE);
	assert_int_equal(w.calls, 1);
	assert_true(w.intact);
	assert_true(w.seq < sv->lost_seq);
	pthread_join(r.th, NULL);
	sigaction(SIGPIPE, &old_pipe, NULL);
	close_server(loop, s);
	proa_test_loop_close(loop);
	assert_int_equal(w.calls, 1);
	free(w.buf);
	pthread_mutex_destroy(&r.mu);
	pthread_cond_destroy(&r.cv);
	farm_free(&sf);
}

/* Refused calls never release: a NULL release or transport, NULL data
 * with a length, a length over 4 GiB (-EINVAL); after write_eof, close
 * or abort (-EPIPE). */
static void test_write_ref_errors(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0}, cf = {.flags = 0};
	struct proa_server *s = listen_local(loop, NULL, &sf);
	struct peer *c = connect_local(loop, proa_server_port(s), NULL, &cf);
	static uint8_t data[16];
	struct wref r = {.buf = data};
	struct peer *sv;
	unsigned i;

	(void)state;
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	assert_res(
	    proa_transport_write_ref(sv->t, data, sizeof(data), NULL, &r),
	    -EINVAL);
	assert_res(proa_transport_write_ref(sv->t, NULL, 5, wref_release, &r),
		   -EINVAL);
	assert_res(proa_transport_write_ref(NULL, data, sizeof(data),
					    wref_release, &r),
		   -EINVAL);
	if (SIZE_MAX > UINT32_MAX)
		assert_res(proa_transport_write_ref(sv->t, data,
						    (size_t)UINT32_MAX + 1,
						    wref_release, &r),
			   -EINVAL);
	assert_int_equal(proa_transport_write_buffer_size(sv->t), 0);
	/* after write_eof (the client's side) */
	assert_res(proa_transport_write_eof(c->t), 0);
	assert_res(proa_transport_write_ref(c->t, data, sizeof(data),
					    wref_release, &r),
		   -EPIPE);
	DRIVE(loop, sv->eof && c->lost && sv->lost);
	/* after close */
	c = connect_local(loop, proa_server_port(s), NULL, &cf);
	DRIVE(loop, sf.peers != sv && sf.peers->made);
	sv = sf.peers;
	assert_res(proa_transport_close(sv->t), 0);
	assert_res(proa_transport_write_ref(sv->t, data, sizeof(data),
					    wref_release, &r),
		   -EPIPE);
	assert_res(proa_transport_write_ref(sv->t, data, 0, wref_release, &r),
		   -EPIPE);
	DRIVE(loop, sv->lost && c->lost);
	/* after abort */
	c = connect_local(loop, proa_server_port(s), NULL, &cf);
	proa_transport_abort(c->t);
	assert_res(proa_transport_write_ref(c->t, data, sizeof(data),
					    wref_release, &r),
		   -EPIPE);
	DRIVE(loop, c->lost && farm_lost(&sf) == 3);
	for (i = 0; i < 1000; i++)
		assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	assert_int_equal(r.calls, 0);
	close_server(loop, s);
	proa_test_loop_close(loop);
	assert_int_equal(r.calls, 0);
	farm_free(&sf);
	farm_free(&cf);
}

/* A length of 0 (with or without a pointer) is accepted and released
 * once, later, from the loop; also when the transport is aborted right
 * after, and then before connection_lost. */
static void test_write_ref_empty(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0}, cf = {.flags = 0};
	struct proa_server *s = listen_local(loop, NULL, &sf);
	struct peer *c = connect_local(loop, proa_server_port(s), NULL, &cf);
	static uint8_t data[1];
	struct wref r = {.buf = data}, rn = {.buf = NULL}, ra = {.buf = NULL};
	struct peer *sv;
	unsigned i;

	(void)state;
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	r.t = sv->t;
	assert_res(proa_transport_write_ref(sv->t, data, 0, wref_release, &r),
		   0);
	assert_int_equal(r.calls, 0);
	assert_res(proa_transport_write_ref(sv->t, NULL, 0, wref_release, &rn),
		   0);
	assert_int_equal(rn.calls, 0);
	assert_int_equal(proa_transport_write_buffer_size(sv->t), 0);
	DRIVE(loop, r.calls > 0 && rn.calls > 0);
	for (i = 0; i < 1000; i++)
		assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	assert_int_equal(r.calls, 1);
	assert_int_equal(rn.calls, 1);
	assert_true(r.seq < rn.seq); /* in the order queued */
	assert_int_equal(c->rx, 0);
	/* queued, then abort at once */
	assert_res(proa_transport_write_ref(sv->t, NULL, 0, wref_release, &ra),
		   0);
	proa_transport_abort(sv->t);
	assert_int_equal(ra.calls, 0);
	DRIVE(loop, sv->lost && c->lost);
	assert_int_equal(ra.calls, 1);
	assert_true(ra.seq < sv->lost_seq);
	close_server(loop, s);
	proa_test_loop_close(loop);
	assert_int_equal(r.calls, 1);
	assert_int_equal(rn.calls, 1);
	assert_int_equal(ra.calls, 1);
	farm_free(&sf);
	farm_free(&cf);
}

static void count_release(void *arg)
{
	(*(unsigned *)arg)++;
}

/* Caller memory that faults: a shared mapping of a file cut short after
 * it was mapped (a file server's --send-path map).  The kernel sends
 * nothing of a gather that faults, but the 1000 bytes queued before the
 * reference are good (a whole response, say): they reach the peer, then
 * the connection ends with -EFAULT and the reference is released once. */
static void test_write_ref_fault_keeps_earlier_bytes(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0}, cf = {.flags = P_VERIFY};
	struct proa_server *s = listen_local(loop, NULL, &sf);
	struct peer *c = connect_local(loop, proa_server_port(s), NULL, &cf);
	const size_t len = 8192;
	char path[] = "/tmp/proa-wref-XXXXXX";
	unsigned calls = 0;
	struct peer *sv;
	void *m;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(ftruncate(fd, (off_t)len), 0);
	m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(m != MAP_FAILED);
	assert_int_equal(ftruncate(fd, 0), 0); /* now it faults */
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	write_pat(sv->t, 0, 1000);
	assert_res(
	    proa_transport_write_ref(sv->t, m, len, count_release, &calls), 0);
	DRIVE(loop, sv->lost && c->lost);
	assert_res(sv->err, -EFAULT);
	assert_int_equal(c->rx, 1000);
	assert_int_equal(c->bad, 0);
	assert_int_equal(calls, 1);
	assert_int_equal(munmap(m, len), 0);
	assert_int_equal(close(fd), 0);
	close_server(loop, s);
	proa_test_loop_close(loop);
	assert_int_equal(calls, 1);
	farm_free(&sf);
	farm_free(&cf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_write_ref_8mib, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_write_ref_mixed_order, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_write_ref_close_flushes, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_write_ref_abort, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_write_ref_reset, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_write_ref_errors, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_write_ref_empty, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(
		test_write_ref_fault_keeps_earlier_bytes, setup,
		teardown_check),
	};

	proa_test_require_uring();
	proa_test_filter_from_env();
	return cmocka_run_group_tests_name("net.tcp_write_ref", tests, NULL,
					   NULL);
}
