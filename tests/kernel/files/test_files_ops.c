/* SPDX-License-Identifier: MIT */
/*
 * File and descriptor operations through the ring: read/write/readv/writev
 * checked byte for byte against pread/pwrite, pipes at the current
 * position, short and zero-length reads, fsync, openat/close/statx, poll
 * (one-shot and multishot), timeouts, and bad input - refused with the
 * documented -errno before anything is queued, or reported in op->res when
 * only the kernel can tell - without the callback running for a refusal.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "proa_test.h"

/* ---- helpers ----------------------------------------------------------------
 */

struct done {
	unsigned calls;
	unsigned more; /* completions with PROA_OP_F_MORE */
	int32_t res;
	int32_t last_more_res;
	pthread_t thread;
};

static void done_cb(struct proa_op *op)
{
	struct done *d = op->data;

	d->thread = pthread_self();
	if (op->flags & PROA_OP_F_MORE) {
		d->more++;
		d->last_more_res = op->res;
		return;
	}
	d->calls++;
	d->res = op->res;
}

/* Submit with @submit_ret already returned 0; wait for the final
 * completion and return its result. */
static int32_t finish(struct proa_loop *loop, struct proa_op *op,
		      struct done *d)
{
	proa_test_drive_op(loop, op, 100000);
	assert_int_equal(d->calls, 1);
	assert_true(pthread_equal(d->thread, pthread_self()));
	return d->res;
}

#define SYNC(loop, d, call)                                                    \
	({                                                                     \
		struct proa_op op_;                                            \
		*(d) = (struct done){0};                                       \
		proa_op_init(&op_, done_cb, (d));                              \
		assert_res(call, 0);                                           \
		finish((loop), &op_, (d));                                     \
	})

static char tmpdir[] = "/tmp/proa-files-XXXXXX";

static int setup_dir(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
	(void)state;
	return rmdir(tmpdir);
}

/* A fresh, unlinked file to read and write. */
static int temp_file(void)
{
	int fd = open(tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	return fd;
}

static void fill_random(unsigned char *buf, size_t len, uint32_t seed)
{
	size_t i;

	for (i = 0; i < len; i++) {
		seed = seed * 1664525u + 1013904223u;
		buf[i] = (unsigned char)(seed >> 24);
	}
}

#define MIB ((size_t)1024 * 1024)

/* ---- reads and writes against pread/pwrite ---------------------------------
 */

static void test_write_then_pread_is_byte_for_byte(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	unsigned char *src = malloc(MIB), *back = malloc(MIB);
	struct proa_op op[4];
	struct done d[4];
	size_t chunk = MIB / 4, off, got;
	int fd = temp_file(), i;
	int32_t res;

	assert_non_null(src);
	assert_non_null(back);
	fill_random(src, MIB, 1);
	/* Four writes in flight at once, at their own offsets. */
	for (i = 0; i < 4; i++) {
		d[i] = (struct done){0};
		proa_op_init(&op[i], done_cb, &d[i]);
		assert_res(proa_op_write(loop, &op[i], fd,
					 src + (size_t)i * chunk, chunk,
					 (int64_t)((size_t)i * chunk)),
			   0);
	}
	for (i = 0; i < 4; i++) {
		res = finish(loop, &op[i], &d[i]);
		/* A regular file write is not short, but if one ever is,
		 * finish it the plain way and say so. */
		assert_true(res > 0);
		for (off = (size_t)res; off < chunk; off += (size_t)res) {
			print_message("short write %d at chunk %d\n", res, i);
			res =
			    SYNC(loop, &d[i],
				 proa_op_write(
				     loop, &op_, fd,
				     src + (size_t)i * chunk + off, chunk - off,
				     (int64_t)((size_t)i * chunk + off)));
			assert_true(res > 0);
		}
	}
	for (got = 0; got < MIB;) {
		ssize_t n = pread(fd, back + got, MIB - got, (off_t)got);

		assert_true(n > 0);
		got += (size_t)n;
	}
	assert_memory_equal(src, back, MIB);
	close(fd);
	free(src);
	free(back);
	proa_test_loop_close(loop);
	(void)state;
}

static void test_pwrite_then_read_is_byte_for_byte(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	unsigned char *src = malloc(MIB), *back = calloc(1, MIB);
	struct done d;
	size_t got;
	int fd = temp_file();
	int32_t res;

	assert_non_null(src);
	assert_non_null(back);
	fill_random(src, MIB, 2);
	assert_int_equal(pwrite(fd, src, MIB, 0), MIB);
	for (got = 0; got < MIB; got += (size_t)res) {
		res = SYNC(loop, &d,
			   proa_op_read(loop, &op_, fd, back + got, MIB - got,
					(int64_t)got));
		assert_true(res > 0);
	}
	assert_memory_equal(src, back, MIB);
	/* An odd offset and length in the middle. */
	memset(back, 0, 4096);
	res = SYNC(loop, &d, proa_op_read(loop, &op_, fd, back, 3001, 12345));
	assert_int_equal(res, 3001);
	assert_memory_equal(back, src + 12345, 3001);
	close(fd);
	free(src);
	free(back);
	proa_test_loop_close(loop);
	(void)state;
}

static void test_readv_writev_are_byte_for_byte(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	unsigned char src[10000], back[10000], a[1], b[4999], c[5000];
	struct iovec wv[3] = {{src, 1}, {src + 1, 4999}, {src + 5000, 5000}};
	struct iovec rv[3] = {{a, 1}, {b, 4999}, {c, 5000}};
	struct done d;
	int fd = temp_file();

	fill_random(src, sizeof(src), 3);
	assert_int_equal(
	    SYNC(loop, &d, proa_op_writev(loop, &op_, fd, wv, 3, 777)), 10000);
	assert_int_equal(pread(fd, back, sizeof(back), 777), 10000);
	assert_memory_equal(src, back, sizeof(src));
	/* Overwrite part with pwrite, read it back scattered. */
	fill_random(src + 100, 200, 4);
	assert_int_equal(pwrite(fd, src + 100, 200, 777 + 100), 200);
	assert_int_equal(
	    SYNC(loop, &d, proa_op_readv(loop, &op_, fd, rv, 3, 777)), 10000);
	assert_memory_equal(a, src, 1);
	assert_memory_equal(b, src + 1, 4999);
	assert_memory_equal(c, src + 5000, 5000);
	/* No buffers: nothing moves. */
	assert_res(SYNC(loop, &d, proa_op_readv(loop, &op_, fd, NULL, 0, 0)),
		   0);
	close(fd);
	proa_test_loop_close(loop);
	(void)state;
}

static void test_pipe_reads_at_current_position_and_short(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct done d;
	char buf[64];
	int p[2], fd = temp_file();

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(
	    SYNC(loop, &d, proa_op_write(loop, &op_, p[1], "hello", 5, -1)), 5);
	/* A pipe read returns what is there: short. */
	assert_int_equal(
	    SYNC(loop, &d,
		 proa_op_read(loop, &op_, p[0], buf, sizeof(buf), -1)),
	    5);
	assert_memory_equal(buf, "hello", 5);
	/* Writer gone: end of file. */
	close(p[1]);
	assert_res(SYNC(loop, &d,
			proa_op_read(loop, &op_, p[0], buf, sizeof(buf), -1)),
		   0);
	close(p[0]);

	/* A file at -1 moves its position like read(2). */
	assert_int_equal(pwrite(fd, "0123456789", 10, 0), 10);
	assert_int_equal(
	    SYNC(loop, &d, proa_op_read(loop, &op_, fd, buf, 4, -1)), 4);
	assert_int_equal(
	    SYNC(loop, &d, proa_op_read(loop, &op_, fd, buf + 4, 4, -1)), 4);
	assert_memory_equal(buf, "01234567", 8);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 8);
	/* Short at the end of a file, then 0 past it. */
	assert_int_equal(
	    SYNC(loop, &d, proa_op_read(loop, &op_, fd, buf, 100, 7)), 3);
	assert_memory_equal(buf, "789", 3);
	assert_res(SYNC(loop, &d, proa_op_read(loop, &op_, fd, buf, 100, 10)),
		   0);
	/* Zero length is allowed, even with no buffer. */
	assert_res(SYNC(loop, &d, proa_op_read(loop, &op_, fd, NULL, 0, 0)), 0);
	assert_res(SYNC(loop, &d, proa_op_write(loop, &op_, fd, NULL, 0, 0)),
		   0);
	close(fd);
	proa_test_loop_close(loop);
	(void)state;
}

static void test_fsync_and_datasync(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct done d;
	int fd = temp_file();

	assert_int_equal(pwrite(fd, "x", 1, 0), 1);
	assert_res(SYNC(loop, &d, proa_op_fsync(loop, &op_, fd, 0)), 0);
	assert_res(
	    SYNC(loop, &d, proa_op_fsync(loop, &op_, fd, PROA_FSYNC_DATASYNC)),
	    0);
	close(fd);
	proa_test_loop_close(loop);
	(void)state;
}

/* ---- openat, close, statx ---------------------------------------------------
 */

static void test_openat_close_statx(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct done d;
	struct statx stx;
	char path[sizeof(tmpdir) + 16];
	int dirfd, fd, before = proa_test_fds();

	snprintf(path, sizeof(path), "%s/a", tmpdir);
	fd = SYNC(loop, &d,
		  proa_op_openat(loop, &op_, AT_FDCWD, path,
				 O_CREAT | O_EXCL | O_RDWR, 0600));
	assert_true(fd >= 0);
	/* O_CLOEXEC is always added. */
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(write(fd, "12345", 5), 5);
	assert_res(SYNC(loop, &d, proa_op_close(loop, &op_, fd)), 0);
	assert_int_equal(fcntl(fd, F_GETFD), -1);
	assert_int_equal(errno, EBADF);
	/* Exists now: O_EXCL fails in res. */
	assert_res(SYNC(loop, &d,
			proa_op_openat(loop, &op_, AT_FDCWD, path,
				       O_CREAT | O_EXCL | O_RDWR, 0600)),
		   -EEXIST);

	/* Relative to a directory descriptor. */
	dirfd = open(tmpdir, O_DIRECTORY | O_CLOEXEC);
	assert_true(dirfd >= 0);
	memset(&stx, 0, sizeof(stx));
	assert_res(SYNC(loop, &d,
			proa_op_statx(loop, &op_, dirfd, "a", 0,
				      STATX_SIZE | STATX_MODE, &stx)),
		   0);
	assert_true(stx.stx_mask & STATX_SIZE);
	assert_int_equal(stx.stx_size, 5);
	assert_true(S_ISREG(stx.stx_mode));
	fd =
	    SYNC(loop, &d, proa_op_openat(loop, &op_, dirfd, "a", O_RDONLY, 0));
	assert_true(fd >= 0);
	assert_res(SYNC(loop, &d, proa_op_close(loop, &op_, fd)), 0);

	/* Missing files: -ENOENT in res, for both. */
	assert_res(
	    SYNC(loop, &d,
		 proa_op_openat(loop, &op_, dirfd, "missing", O_RDONLY, 0)),
	    -ENOENT);
	assert_res(SYNC(loop, &d,
			proa_op_statx(loop, &op_, dirfd, "missing", 0,
				      STATX_SIZE, &stx)),
		   -ENOENT);
	close(dirfd);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(proa_test_fds(), before);
	proa_test_loop_close(loop);
	(void)state;
}

/* ---- poll
 * -------------------------------------------------------------------- */

static void test_poll_oneshot_and_multishot(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_op op;
	struct done d = {0};
	char buf[8];
	int p[2], i;

	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	/* One-shot: not ready until written. */
	proa_op_init(&op, done_cb, &d);
	assert_res(proa_op_poll(loop, &op, p[0], POLLIN, 0), 0);
	assert_int_equal(proa_loop_run(loop, PROA_RUN_NOWAIT), 1);
	assert_int_equal(d.calls, 0);
	assert_int_equal(write(p[1], "a", 1), 1);
	assert_true(finish(loop, &op, &d) & POLLIN);
	assert_int_equal(read(p[0], buf, sizeof(buf)), 1);

	/* Multishot: one F_MORE completion per readiness, until cancelled;
	 * then exactly one final completion without F_MORE. */
	d = (struct done){0};
	proa_op_init(&op, done_cb, &d);
	assert_res(proa_op_poll(loop, &op, p[0], POLLIN, PROA_POLL_MULTISHOT),
		   0);
	for (i = 1; i <= 3; i++) {
		assert_int_equal(write(p[1], "b", 1), 1);
		while (d.more < (unsigned)i)
			assert_true(proa_loop_run(loop, PROA_RUN_ONCE) >= 0);
		assert_true(d.last_more_res & POLLIN);
		assert_int_equal(read(p[0], buf, sizeof(buf)), 1);
		assert_int_equal(d.calls, 0);
		assert_false(proa_op_is_idle(&op));
	}
	assert_res(proa_op_cancel(&op), 0);
	assert_res(proa_op_cancel(&op), -EALREADY);
	assert_res(finish(loop, &op, &d), -ECANCELED);
	assert_int_equal(d.more, 3);
	assert_res(proa_op_cancel(&op), -ENOENT);
	close(p[0]);
	close(p[1]);
	proa_test_loop_close(loop);
	(void)state;
}

/* ---- timeouts
 * ---------------------------------------------------------------- */

static void test_timeout_op_fires_not_early_or_is_cancelled(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_op op;
	struct done d;
	uint64_t t0 = proa_test_now_ns(), el;

	assert_res(SYNC(loop, &d, proa_op_timeout(loop, &op_, 20000000)),
		   -ETIME);
	el = proa_test_now_ns() - t0;
	assert_true(el >= 20000000);

	d = (struct done){0};
	proa_op_init(&op, done_cb, &d);
	assert_res(proa_op_timeout(loop, &op, 60ull * 1000000000ull), 0);
	assert_int_equal(proa_loop_run(loop, PROA_RUN_NOWAIT), 1);
	t0 = proa_test_now_ns();
	assert_res(proa_op_cancel(&op), 0);
	assert_res(finish(loop, &op, &d), -ECANCELED);
	/* Cancelling did not wait for the deadline. */
	assert_true(proa_test_now_ns() - t0 < 10ull * 1000000000ull);

	/* Cancelled while still queued, before the kernel saw it. */
	d = (struct done){0};
	proa_op_init(&op, done_cb, &d);
	assert_res(proa_op_timeout(loop, &op, 60ull * 1000000000ull), 0);
	assert_res(proa_op_cancel(&op), 0);
	assert_res(finish(loop, &op, &d), -ECANCELED);
	proa_test_loop_close(loop);
	(void)state;
}

/* ---- bad input
 * ---------------------------------------------------------------- */

static void never_cb(struct proa_op *op)
{
	(*(unsigned *)op->data)++;
}

static void test_bad_input_is_refused_before_queueing(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_op op, busy;
	struct statx stx;
	struct iovec iov = {NULL, 0};
	unsigned runs = 0, busy_runs = 0;
	char buf[8];
	int fd = temp_file();
	struct {
		const char *what;
		int ret;
		int want;
	} cases[32];
	size_t n = 0, i;

#define CASE(want_, call_)                                                     \
	do {                                                                   \
		proa_op_init(&op, never_cb, &runs);                            \
		cases[n].what = #call_;                                        \
		cases[n].ret = (call_);                                        \
		cases[n].want = (want_);                                       \
		assert_true(proa_op_is_idle(&op));                             \
		n++;                                                           \
	} while (0)

	CASE(-EBADF, proa_op_read(loop, &op, -1, buf, sizeof(buf), 0));
	CASE(-EBADF, proa_op_write(loop, &op, -3, buf, sizeof(buf), 0));
	CASE(-EBADF, proa_op_fsync(loop, &op, -1, 0));
	CASE(-EBADF, proa_op_close(loop, &op, -1));
	CASE(-EBADF, proa_op_poll(loop, &op, -1, POLLIN, 0));
	CASE(-EBADF, proa_op_openat(loop, &op, -5, "x", O_RDONLY, 0));
	CASE(-EINVAL, proa_op_read(loop, &op, fd, NULL, 8, 0));
	CASE(-EINVAL, proa_op_write(loop, &op, fd, NULL, 8, 0));
	CASE(-EINVAL,
	     proa_op_read(loop, &op, fd, buf, (size_t)INT32_MAX + 1, 0));
	CASE(-EINVAL, proa_op_read(loop, &op, fd, buf, sizeof(buf), -2));
	CASE(-EINVAL, proa_op_readv(loop, &op, fd, NULL, 1, 0));
	CASE(-EINVAL, proa_op_writev(loop, &op, fd, &iov, -1, 0));
	CASE(-EINVAL, proa_op_readv(loop, &op, fd, &iov, IOV_MAX + 1, 0));
	CASE(-EINVAL, proa_op_fsync(loop, &op, fd, 0x80));
	CASE(-EINVAL, proa_op_openat(loop, &op, AT_FDCWD, NULL, O_RDONLY, 0));
	CASE(-EINVAL, proa_op_statx(loop, &op, AT_FDCWD, NULL, 0, 0, &stx));
	CASE(-EINVAL, proa_op_statx(loop, &op, AT_FDCWD, "/", 0, 0, NULL));
	CASE(-EINVAL, proa_op_poll(loop, &op, fd, 0, 0));
	CASE(-EINVAL, proa_op_poll(loop, &op, fd, POLLIN, 0x40));
	CASE(-EINVAL, proa_op_nop(NULL, &op));
	CASE(-EINVAL, proa_op_nop(loop, NULL));
	CASE(-ENOENT, proa_op_cancel(&op));
	/* An op without a callback. */
	proa_op_init(&op, NULL, NULL);
	cases[n].what = "proa_op_nop(loop, &op) with cb NULL";
	cases[n].ret = proa_op_nop(loop, &op);
	cases[n++].want = -EINVAL;
	/* An op already queued. */
	proa_op_init(&busy, never_cb, &busy_runs);
	assert_res(proa_op_nop(loop, &busy), 0);
	cases[n].what = "proa_op_read(busy)";
	cases[n].ret = proa_op_read(loop, &busy, fd, buf, 1, 0);
	cases[n++].want = -EBUSY;
	cases[n].what = "proa_op_timeout(busy)";
	cases[n].ret = proa_op_timeout(loop, &busy, 1);
	cases[n++].want = -EBUSY;
#undef CASE

	for (i = 0; i < n; i++) {
		if (cases[i].ret != cases[i].want)
			print_error("%s: returned %d (%s), want %d (%s)\n",
				    cases[i].what, cases[i].ret,
				    proa_strerror(cases[i].ret), cases[i].want,
				    proa_strerror(cases[i].want));
	}
	for (i = 0; i < n; i++)
		assert_int_equal(cases[i].ret, cases[i].want);
	/* The busy op completes once, as the NOP it was; no refused call
	 * ever reaches a callback. */
	proa_test_drive_op(loop, &busy, 1000);
	assert_int_equal(busy_runs, 1);
	assert_res(busy.res, 0);
	assert_res(proa_loop_run(loop, PROA_RUN_NOWAIT), 0);
	assert_int_equal(runs, 0);
	close(fd);
	proa_test_loop_close(loop);
	(void)state;
}

static void test_kernel_errors_arrive_in_res(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct done d;
	char buf[8];
	int fd = temp_file(), ro, closed;
	char path[sizeof(tmpdir) + 16];

	/* A descriptor number that is not open. */
	closed = dup(fd);
	assert_true(closed >= 0);
	close(closed);
	assert_res(SYNC(loop, &d,
			proa_op_read(loop, &op_, closed, buf, sizeof(buf), 0)),
		   -EBADF);
	assert_res(SYNC(loop, &d, proa_op_fsync(loop, &op_, closed, 0)),
		   -EBADF);
	assert_res(SYNC(loop, &d, proa_op_close(loop, &op_, closed)), -EBADF);
	/* Writing to a read-only descriptor. */
	snprintf(path, sizeof(path), "%s/ro", tmpdir);
	ro = open(path, O_CREAT | O_RDONLY | O_CLOEXEC, 0600);
	assert_true(ro >= 0);
	assert_res(SYNC(loop, &d, proa_op_write(loop, &op_, ro, "x", 1, 0)),
		   -EBADF);
	/* Reading a directory. */
	close(ro);
	ro = open(tmpdir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	assert_true(ro >= 0);
	assert_res(
	    SYNC(loop, &d, proa_op_read(loop, &op_, ro, buf, sizeof(buf), 0)),
	    -EISDIR);
	close(ro);
	assert_int_equal(unlink(path), 0);
	close(fd);
	proa_test_loop_close(loop);
	(void)state;
}

static void test_ops_after_close_are_refused(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_op op;
	struct statx stx;
	unsigned runs = 0;
	char buf[4];

	assert_res(proa_loop_close(loop), 0);
	proa_op_init(&op, never_cb, &runs);
	assert_res(proa_op_write(loop, &op, 1, buf, 1, -1), PROA_ECLOSED);
	assert_res(proa_op_fsync(loop, &op, 1, 0), PROA_ECLOSED);
	assert_res(proa_op_openat(loop, &op, AT_FDCWD, "/", O_RDONLY, 0),
		   PROA_ECLOSED);
	assert_res(proa_op_statx(loop, &op, AT_FDCWD, "/", 0, 0, &stx),
		   PROA_ECLOSED);
	assert_res(proa_op_poll(loop, &op, 0, POLLIN, 0), PROA_ECLOSED);
	assert_res(proa_op_timeout(loop, &op, 1), PROA_ECLOSED);
	assert_true(proa_op_is_idle(&op));
	assert_int_equal(runs, 0);
	assert_res(proa_loop_free(loop), 0);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_write_then_pread_is_byte_for_byte),
	    cmocka_unit_test(test_pwrite_then_read_is_byte_for_byte),
	    cmocka_unit_test(test_readv_writev_are_byte_for_byte),
	    cmocka_unit_test(test_pipe_reads_at_current_position_and_short),
	    cmocka_unit_test(test_fsync_and_datasync),
	    cmocka_unit_test(test_openat_close_statx),
	    cmocka_unit_test(test_poll_oneshot_and_multishot),
	    cmocka_unit_test(test_timeout_op_fires_not_early_or_is_cancelled),
	    cmocka_unit_test(test_bad_input_is_refused_before_queueing),
	    cmocka_unit_test(test_kernel_errors_arrive_in_res),
	    cmocka_unit_test(test_ops_after_close_are_refused),
	};

	proa_test_require_uring();
	return cmocka_run_group_tests_name("files.ops", tests, setup_dir,
					   teardown_dir);
}
