/* SPDX-License-Identifier: MIT */
/*
 * tests/kernel/net/test_tcp_sendfile.c - sendfile: file ranges in
 * order with copied and referenced writes through a small send buffer,
 * flushed on close, sent from a mapping when no descriptor is left for
 * the pipe (EMFILE), released once on abort; what sendfile refuses before
 * queueing anything, a file that shrinks after the call, and sendfile_sized
 * told a size the file has or has not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "tcp_support.h"

/* An unlinked regular file whose byte i is pat(i). */
static int pat_file(size_t len)
{
	char path[] = "/tmp/proa-sendfile-XXXXXX";
	uint8_t *b = pat_buf(0, len);
	int fd = mkstemp(path);
	size_t done = 0;
	ssize_t n;

	assert_true(fd >= 0);
	assert_int_equal(unlink(path), 0);
	while (done < len) {
		n = write(fd, b + done, len - done);
		assert_true(n > 0);
		done += (size_t)n;
	}
	free(b);
	return fd;
}

/* Whether sendfile queued its bytes as a file chunk (spliced) or, where
 * the loop cannot splice, as a mapping (an external chunk). */
static void check_sendfile_chunk(struct proa_loop *loop,
				 struct proa_transport *t)
{
	assert_non_null(proa__sock_of(t)->wtail);
	assert_int_equal(proa__sock_of(t)->wtail->bid,
			 proa_loop_feature(loop, PROA_FEAT_OP_SPLICE)
			     ? PROA__CHUNK_FILE
			     : PROA__CHUNK_EXTERNAL);
}

/*
 * Copied writes, write_ref and sendfile ranges (odd offsets, 1 byte, one
 * of several pipe-fulls, 8 MiB in all) interleave through a 4 KiB
 * SO_SNDBUF: the peer gets pat(0..total) exactly, each release runs once,
 * in order, once the transport holds none of its bytes, and the pipe is
 * handed back once no file is queued.  Closing after it flushes all.
 */
static void test_sendfile_mixed_order(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0}, cf = {.flags = P_VERIFY};
	struct proa_server_options so = {.transport.sndbuf = 4096};
	struct proa_server *s = listen_local(loop, &so, &sf);
	struct peer *c = connect_local(loop, proa_server_port(s), NULL, &cf);
	const size_t total = (8u << 20) + 12345;
	/* stream pieces: 'c' copied, 'f' sendfile, 'r' write_ref */
	static const struct {
		char kind;
		size_t len;
	} piece[] = {{'c', 1000},   {'f', 4u << 20}, {'c', 5},
		     {'f', 1},	    {'r', 70000},    {'f', 3},
		     {'f', 300001}, {'c', 16384},    {'f', 0}};
	enum { N = sizeof(piece) / sizeof(piece[0]) };
	struct wref r[N + 1];
	int fd = pat_file(total);
	uint64_t off = 0;
	struct peer *sv;
	unsigned k, nr = 0, prev;

	(void)state;
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	memset(r, 0, sizeof(r));
	for (k = 0; k <= N; k++) {
		/* the last piece: the rest of the file */
		size_t len = k < N ? piece[k].len : total - off;
		char kind = (char)(k < N ? piece[k].kind : 'f');

		if (kind == 'c') {
			write_pat(sv->t, off, len);
		} else {
			/* a length of 0 is released from the ready queue,
			 * maybe with a send in flight: no op check */
			r[nr].t = len > 0 ? sv->t : NULL;
			r[nr].rx = c;
			if (kind == 'r') {
				r[nr].base = off;
				r[nr].len = len;
				r[nr].buf = pat_buf(off, len);
				assert_res(proa_transport_write_ref(
					       sv->t, r[nr].buf, len,
					       wref_release, &r[nr]),
					   0);
			} else {
				assert_res(proa_transport_sendfile(
					       sv->t, fd, off, len,
					       wref_release, &r[nr]),
					   0);
				if (len > 0)
					check_sendfile_chunk(loop, sv->t);
			}
			assert_int_equal(r[nr].calls, 0); /* not inside */
			nr++;
		}
		off += len;
		if (k % 2)
			assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	}
	assert_int_equal(off, total);
	DRIVE(loop, c->rx == total);
	assert_int_equal(c->bad, 0);
	for (k = 0, prev = 0; k < nr; k++) {
		DRIVE(loop, r[k].calls > 0);
		assert_int_equal(r[k].calls, 1);
		assert_true(r[k].len == 0 || r[k].intact);
		/* in order; an empty one has nothing to wait for */
		if (!r[k].t)
			continue;
		assert_true(prev < r[k].seq);
		prev = r[k].seq;
	}
	assert_int_equal(r[nr - 1].wbuf_at_release, 0);
	assert_null(proa__sock_of(sv->t)->pipe); /* back in the loop's cache */
	assert_int_equal(proa__sock_of(sv->t)->piped, 0);
	assert_res(proa_transport_close(sv->t), 0);
	DRIVE(loop, c->lost && sv->lost);
	assert_res(sv->err, 0);
	assert_int_equal(c->rx, total);
	for (k = 0; k < nr; k++) {
		assert_int_equal(r[k].calls, 1);
		assert_true(r[k].seq < sv->lost_seq);
		free(r[k].buf);
	}
	close(fd);
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

/* close() right after sendfile: all of it is sent, released, then
 * connection_lost(0) and the peer's EOF. */
static void test_sendfile_close_flushes(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0}, cf = {.flags = P_VERIFY};
	struct proa_server_options so = {.transport.sndbuf = 4096};
	struct proa_server *s = listen_local(loop, &so, &sf);
	struct peer *c = connect_local(loop, proa_server_port(s), NULL, &cf);
	const size_t len = 3u << 20;
	int fd = pat_file(len);
	struct wref r = {.len = 0};
	struct peer *sv;

	(void)state;
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	r.t = sv->t;
	assert_res(proa_transport_sendfile(sv->t, fd, 0, len, wref_release, &r),
		   0);
	assert_int_equal(proa_transport_write_buffer_size(sv->t), len);
	assert_res(proa_transport_close(sv->t), 0);
	assert_int_equal(r.calls, 0);
	DRIVE(loop, sv->lost && c->lost);
	assert_res(sv->err, 0);
	assert_int_equal(c->rx, len);
	assert_int_equal(c->bad, 0);
	assert_int_equal(r.calls, 1);
	assert_true(r.seq < sv->lost_seq);
	close(fd);
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

/*
 * No descriptor left when the file's turn comes (EMFILE): splicing needs
 * a pipe, two descriptors, and the bytes queued before the file (a
 * response head) must not go out without it.  The file is sent from a
 * mapping instead: whole, released once, the connection kept.
 */
static void test_sendfile_without_descriptors(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0}, cf = {.flags = P_VERIFY};
	struct proa_server_options so = {.transport.sndbuf = 4096};
	struct proa_server *s = listen_local(loop, &so, &sf);
	struct peer *c = connect_local(loop, proa_server_port(s), NULL, &cf);
	const size_t len = 1u << 20;
	int fd = pat_file(len);
	struct wref r = {.len = 0};
	struct rlimit old, low;
	struct peer *sv;
	int lowest;

	(void)state;
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	r.t = sv->t;
	/* The lowest free descriptor becomes the limit: none can be had. */
	lowest = dup(0);
	assert_true(lowest >= 0);
	close(lowest);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)lowest;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	assert_true(dup(0) < 0 && errno == EMFILE);
	assert_res(proa_transport_sendfile(sv->t, fd, 0, len, wref_release, &r),
		   0);
	DRIVE(loop, c->rx == len || sv->lost);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_false(sv->lost);
	assert_int_equal(c->rx, len);
	assert_int_equal(c->bad, 0);
	DRIVE(loop, r.calls == 1);
	assert_res(proa_transport_close(sv->t), 0);
	DRIVE(loop, sv->lost && c->lost);
	assert_res(sv->err, 0);
	assert_int_equal(r.calls, 1);
	close(fd);
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

/* abort() while a file is being sent to a peer that reads nothing (the
 * pipe holds bytes, a splice or its poll is in flight): released once,
 * not inside abort, before connection_lost(-ECONNABORTED); what the peer
 * got is the file's bytes. */
static void test_sendfile_abort(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0}, cf = {.flags = P_VERIFY};
	struct proa_server_options so = {.transport.sndbuf = 4096};
	struct proa_connect_options co = {.transport.rcvbuf = 4096};
	struct proa_server *s = listen_local(loop, &so, &sf);
	struct peer *c = connect_local(loop, proa_server_port(s), &co, &cf);
	const size_t len = 4u << 20;
	int fd = pat_file(len);
	struct wref r = {.len = 0};
	struct peer *sv;
	unsigned i;

	(void)state;
	assert_res(proa_transport_pause_reading(c->t), 0);
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	r.t = sv->t;
	assert_res(proa_transport_sendfile(sv->t, fd, 0, len, wref_release, &r),
		   0);
	for (i = 0; i < 100; i++)
		assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	DRIVE(loop, !proa_op_is_idle(&proa__sock_of(sv->t)->wop));
	assert_int_equal(r.calls, 0);
	assert_true(proa_transport_write_buffer_size(sv->t) > 0);
	proa_transport_abort(sv->t);
	assert_int_equal(r.calls, 0);
	assert_false(sv->lost);
	DRIVE(loop, sv->lost);
	assert_res(sv->err, -ECONNABORTED);
	assert_int_equal(r.calls, 1);
	assert_true(r.seq < sv->lost_seq);
	assert_res(proa_transport_resume_reading(c->t), 0);
	DRIVE(loop, c->lost);
	assert_int_equal(c->bad, 0);
	assert_true(c->rx < len);
	close(fd);
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

/* What sendfile refuses, before queueing anything (the release never
 * runs); a file that shrinks after the call ends the connection with
 * -ENODATA where it is spliced (a mapping would fault instead, so the
 * fallback is checked to be one). */
static void test_sendfile_errors(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0}, cf = {.flags = 0};
	struct proa_server *s = listen_local(loop, NULL, &sf);
	struct peer *c = connect_local(loop, proa_server_port(s), NULL, &cf);
	struct wref bad = {.len = 0}, z = {.len = 0}, tr = {.len = 0};
	int fd = pat_file(1u << 20), p[2];
	struct peer *sv;

	(void)state;
	assert_int_equal(pipe(p), 0);
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	assert_res(proa_transport_sendfile(sv->t, -1, 0, 1, wref_release, &bad),
		   -EBADF);
	assert_res(
	    proa_transport_sendfile(sv->t, p[0], 0, 1, wref_release, &bad),
	    -EINVAL); /* not a regular file */
	assert_res(
	    proa_transport_sendfile(sv->t, fd, 1u << 20, 1, wref_release, &bad),
	    -EINVAL); /* past the end */
	assert_res(proa_transport_sendfile(sv->t, fd, (1u << 20) + 1, 0,
					   wref_release, &bad),
		   -EINVAL);
	assert_res(proa_transport_sendfile(sv->t, fd, 0, 1, NULL, &bad),
		   -EINVAL);
	assert_res(proa_transport_sendfile(NULL, fd, 0, 1, wref_release, &bad),
		   -EINVAL);
	assert_res(proa_transport_sendfile(sv->t, fd, 0, (size_t)UINT32_MAX + 1,
					   wref_release, &bad),
		   -EINVAL);
	assert_int_equal(proa_transport_write_buffer_size(sv->t), 0);
	/* length 0 at the end: accepted, released once, nothing sent */
	assert_res(
	    proa_transport_sendfile(sv->t, fd, 1u << 20, 0, wref_release, &z),
	    0);
	DRIVE(loop, z.calls > 0);
	/* the file shrinks after the call */
	tr.t = sv->t;
	assert_res(
	    proa_transport_sendfile(sv->t, fd, 0, 1u << 20, wref_release, &tr),
	    0);
	check_sendfile_chunk(loop, sv->t);
	if (proa_loop_feature(loop, PROA_FEAT_OP_SPLICE)) {
		assert_int_equal(ftruncate(fd, 4096), 0);
		DRIVE(loop, sv->lost);
		assert_res(sv->err, -ENODATA);
		assert_int_equal(tr.calls, 1);
		assert_true(tr.seq < sv->lost_seq);
		DRIVE(loop, c->lost);
		assert_true(c->rx <= 4096);
	} else {
		DRIVE(loop, tr.calls > 0);
		assert_res(proa_transport_close(sv->t), 0);
		DRIVE(loop, sv->lost && c->lost);
		assert_int_equal(c->rx, 1u << 20);
	}
	/* closing: refused */
	c = connect_local(loop, proa_server_port(s), NULL, &cf);
	proa_transport_abort(c->t);
	assert_res(proa_transport_sendfile(c->t, fd, 0, 1, wref_release, &bad),
		   -EPIPE);
	DRIVE(loop, c->lost && farm_lost(&sf) == 2);
	assert_int_equal(bad.calls, 0);
	assert_int_equal(z.calls, 1);
	assert_int_equal(tr.calls, 1);
	close(p[0]);
	close(p[1]);
	close(fd);
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

/*
 * sendfile_sized: the range is checked against the size the caller gives
 * (no fstat on the loop).  A true size sends the file whole; a range past
 * the given size is refused before anything is queued; a size larger
 * than the file ends the connection with -ENODATA where it is spliced,
 * and is refused where it would be mapped (the mapping is checked against
 * the file, never read past its end).
 */
static void test_sendfile_sized(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct farm sf = {.flags = 0}, cf = {.flags = P_VERIFY};
	struct proa_server *s = listen_local(loop, NULL, &sf);
	struct peer *c = connect_local(loop, proa_server_port(s), NULL, &cf);
	const size_t len = 1u << 20;
	int fd = pat_file(len), small = pat_file(4096);
	struct wref r = {.len = 0}, bad = {.len = 0}, lie = {.len = 0};
	struct peer *sv;
	int ret;

	(void)state;
	DRIVE(loop, sf.peers && sf.peers->made);
	sv = sf.peers;
	assert_res(proa_transport_sendfile_sized(sv->t, -1, 0, 1, 1,
						 wref_release, &bad),
		   -EBADF);
	assert_res(proa_transport_sendfile_sized(sv->t, fd, 0, 4097, 4096,
						 wref_release, &bad),
		   -EINVAL);
	assert_res(proa_transport_sendfile_sized(sv->t, fd, 4097, 0, 4096,
						 wref_release, &bad),
		   -EINVAL);
	assert_res(
	    proa_transport_sendfile_sized(sv->t, fd, 0, 1, 1, NULL, &bad),
	    -EINVAL);
	assert_res(proa_transport_sendfile_sized(NULL, fd, 0, 1, 1,
						 wref_release, &bad),
		   -EINVAL);
	assert_int_equal(proa_transport_write_buffer_size(sv->t), 0);
	/* the true size: the whole file, released once */
	r.t = sv->t;
	assert_res(proa_transport_sendfile_sized(sv->t, fd, 0, len, len,
						 wref_release, &r),
		   0);
	check_sendfile_chunk(loop, sv->t);
	DRIVE(loop, r.calls > 0 && c->rx == len);
	assert_int_equal(c->bad, 0);
	assert_false(sv->lost);
	/* a size larger than the file; its bytes still verify: pat(i +
	 * 2^20) == pat(i) */
	lie.t = sv->t;
	ret = proa_transport_sendfile_sized(sv->t, small, 0, len, len,
					    wref_release, &lie);
	if (proa_loop_feature(loop, PROA_FEAT_OP_SPLICE)) {
		assert_res(ret, 0);
		DRIVE(loop, sv->lost);
		assert_res(sv->err, -ENODATA);
		assert_int_equal(lie.calls, 1);
		assert_true(lie.seq < sv->lost_seq);
		DRIVE(loop, c->lost);
		assert_true(c->rx <= len + 4096);
	} else {
		assert_res(ret, -EINVAL);
		assert_int_equal(proa_transport_write_buffer_size(sv->t), 0);
		assert_res(proa_transport_close(sv->t), 0);
		DRIVE(loop, sv->lost && c->lost);
		assert_int_equal(lie.calls, 0);
		assert_int_equal(c->rx, len);
	}
	assert_int_equal(c->bad, 0);
	assert_int_equal(bad.calls, 0);
	assert_int_equal(r.calls, 1);
	close(fd);
	close(small);
	close_server(loop, s);
	proa_test_loop_close(loop);
	farm_free(&sf);
	farm_free(&cf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_sendfile_mixed_order, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_sendfile_close_flushes, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_sendfile_without_descriptors,
					    setup, teardown_check),
	    cmocka_unit_test_setup_teardown(test_sendfile_abort, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_sendfile_errors, setup,
					    teardown_check),
	    cmocka_unit_test_setup_teardown(test_sendfile_sized, setup,
					    teardown_check),
	};

	proa_test_require_uring();
	proa_test_filter_from_env();
	return cmocka_run_group_tests_name("net.tcp_sendfile", tests, NULL,
					   NULL);
}
