/* SPDX-License-Identifier: MIT */
/*
 * File and metadata operations: openat2 (RESOLVE_*), fallocate, ftruncate,
 * mkdirat, renameat2, linkat, symlinkat, unlinkat, getdents and
 * copy_file_range, each checked against what the file system shows
 * afterwards.  Every case runs twice: on the loop as it comes (io_uring
 * opcodes where the kernel has them) and on a loop whose probe hides the
 * file opcodes, so that the pool's file lane runs them on io_uring too;
 * every op also checks that it went where proa_loop_feature() says (the
 * file lane counts one more job exactly when the opcode is missing).
 * Bad input: paths over PATH_MAX, RESOLVE_BENEATH escapes, O_DIRECT where
 * the file system refuses it, and arguments refused before queueing.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proa_test.h"
#include "ring/ring_int.h"

/* The file opcodes a "hidden" loop lacks: the new ones and the older
 * openat, close, statx and fsync these cases use around them. */
static uint64_t hide_file_ops =
    (1ull << PROA_FEAT_OP_OPENAT2) | (1ull << PROA_FEAT_OP_FALLOCATE) |
    (1ull << PROA_FEAT_OP_FTRUNCATE) | (1ull << PROA_FEAT_OP_UNLINKAT) |
    (1ull << PROA_FEAT_OP_RENAMEAT) | (1ull << PROA_FEAT_OP_MKDIRAT) |
    (1ull << PROA_FEAT_OP_SYMLINKAT) | (1ull << PROA_FEAT_OP_LINKAT) |
    (1ull << PROA_FEAT_OP_OPENAT) | (1ull << PROA_FEAT_OP_CLOSE) |
    (1ull << PROA_FEAT_OP_STATX) | (1ull << PROA_FEAT_OP_FSYNC);

static uint64_t as_probed = 0;

/* A feature no loop has: getdents and copy_file_range, always away. */
#define LANE_ONLY PROA_FEAT__COUNT

/* ---- helpers ----------------------------------------------------------- */

struct done {
	unsigned calls;
	int32_t res;
	pthread_t thread;
};

static void done_cb(struct proa_op *op)
{
	struct done *d = op->data;

	d->thread = pthread_self();
	d->calls++;
	d->res = op->res;
}

static void never_cb(struct proa_op *op)
{
	(*(unsigned *)op->data)++;
}

/* The loop a case runs on: as probed, or with the file opcodes hidden
 * (*state says which). */
static struct proa_loop *loop_for(void **state)
{
	struct proa_loop *loop;
	uint64_t hide = *(const uint64_t *)*state;
	enum proa_feature f;

	proa__ring_faults.hide_features = hide;
	loop = proa_test_loop_new();
	proa__ring_faults.hide_features = 0;
	for (f = 0; f < PROA_FEAT__COUNT; f++) {
		if ((hide >> f) & 1)
			assert_false(proa_loop_feature(loop, f));
	}
	return loop;
}

/* Jobs the default pool's file lane has finished. */
static uint64_t lane_done(struct proa_loop *loop)
{
	struct proa_pool *pool;
	struct proa_pool_stats st;

	assert_res(proa_pool_default(&pool, loop), 0);
	assert_res(proa_pool_stats(pool, &st), 0);
	return st.lanes[PROA_LANE_FILE].completed;
}

static bool goes_away(struct proa_loop *loop, enum proa_feature feat)
{
	return feat == LANE_ONLY || !proa_loop_feature(loop, feat);
}

static int32_t finish(struct proa_loop *loop, struct proa_op *op,
		      struct done *d)
{
	proa_test_drive_op(loop, op, 100000);
	assert_int_equal(d->calls, 1);
	assert_true(pthread_equal(d->thread, pthread_self()));
	return d->res;
}

/*
 * Submit @call (which uses op_) for @feat, wait for its one completion and
 * return op->res; the file lane must have run it exactly when the loop
 * lacks @feat.
 */
#define RUN(loop, feat, call)                                                  \
	({                                                                     \
		struct proa_op op_;                                            \
		struct done d_ = {0};                                          \
		uint64_t before_ = lane_done(loop);                            \
		int32_t res_;                                                  \
		proa_op_init(&op_, done_cb, &d_);                              \
		assert_res(call, 0);                                           \
		res_ = finish((loop), &op_, &d_);                              \
		assert_int_equal(lane_done(loop) - before_,                    \
				 goes_away((loop), (feat)) ? 1 : 0);           \
		res_;                                                          \
	})

static char tmpdir[] = "/tmp/proa-meta-XXXXXX";

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

/* A fresh, empty directory under tmpdir, open; its name in @name. */
static int fresh_dir(char *name, size_t len, const char *leaf)
{
	int dfd;

	snprintf(name, len, "%s/%s", tmpdir, leaf);
	assert_int_equal(mkdir(name, 0700), 0);
	dfd = open(name, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	assert_true(dfd >= 0);
	return dfd;
}

static void fill_random(unsigned char *buf, size_t len, uint32_t seed)
{
	size_t i;

	for (i = 0; i < len; i++) {
		seed = seed * 1664525u + 1013904223u;
		buf[i] = (unsigned char)(seed >> 24);
	}
}

/* ---- openat2 ------------------------------------------------------------ */

static void test_openat2_resolve_flags_hold(void **state)
{
	struct proa_loop *loop = loop_for(state);
	struct proa_open_how how = {.flags = O_RDWR | O_CREAT | O_EXCL,
				    .mode = 0640};
	char dir[sizeof(tmpdir) + 16];
	int dfd = fresh_dir(dir, sizeof(dir), "o2"), fd, before;
	struct stat st;

	before = proa_test_fds();
	fd = RUN(loop, PROA_FEAT_OP_OPENAT2,
		 proa_op_openat2(loop, &op_, dfd, "f", &how));
	assert_true(fd >= 0);
	/* O_CLOEXEC is added; the mode is the one asked for. */
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(fstat(fd, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 0600, 0600);
	assert_res(RUN(loop, PROA_FEAT_OP_CLOSE, proa_op_close(loop, &op_, fd)),
		   0);
	assert_res(RUN(loop, PROA_FEAT_OP_OPENAT2,
		       proa_op_openat2(loop, &op_, dfd, "f", &how)),
		   -EEXIST);

	/* Beneath: a name inside opens; "..", an absolute path and a
	 * symlink that points out are -EXDEV. */
	how = (struct proa_open_how){.flags = O_RDONLY,
				     .resolve = PROA_RESOLVE_BENEATH};
	fd = RUN(loop, PROA_FEAT_OP_OPENAT2,
		 proa_op_openat2(loop, &op_, dfd, "f", &how));
	assert_true(fd >= 0);
	close(fd);
	assert_res(RUN(loop, PROA_FEAT_OP_OPENAT2,
		       proa_op_openat2(loop, &op_, dfd, "../o2/f", &how)),
		   -EXDEV);
	assert_res(RUN(loop, PROA_FEAT_OP_OPENAT2,
		       proa_op_openat2(loop, &op_, dfd, "/etc/passwd", &how)),
		   -EXDEV);
	assert_int_equal(symlinkat("/etc/passwd", dfd, "out"), 0);
	assert_int_equal(symlinkat("f", dfd, "in"), 0);
	assert_res(RUN(loop, PROA_FEAT_OP_OPENAT2,
		       proa_op_openat2(loop, &op_, dfd, "out", &how)),
		   -EXDEV);
	/* A symlink that stays inside is fine beneath ... */
	fd = RUN(loop, PROA_FEAT_OP_OPENAT2,
		 proa_op_openat2(loop, &op_, dfd, "in", &how));
	assert_true(fd >= 0);
	close(fd);
	/* ... and refused with NO_SYMLINKS. */
	how.resolve = PROA_RESOLVE_NO_SYMLINKS;
	assert_res(RUN(loop, PROA_FEAT_OP_OPENAT2,
		       proa_op_openat2(loop, &op_, dfd, "in", &how)),
		   -ELOOP);
	/* IN_ROOT: "/f" is the directory's own f. */
	how.resolve = PROA_RESOLVE_IN_ROOT;
	fd = RUN(loop, PROA_FEAT_OP_OPENAT2,
		 proa_op_openat2(loop, &op_, dfd, "/f", &how));
	assert_true(fd >= 0);
	close(fd);

	/* What openat2(2) refuses arrives in res, the same on both paths:
	 * a mode without O_CREAT, an unknown resolve bit. */
	how = (struct proa_open_how){.flags = O_RDONLY, .mode = 0600};
	assert_res(RUN(loop, PROA_FEAT_OP_OPENAT2,
		       proa_op_openat2(loop, &op_, dfd, "f", &how)),
		   -EINVAL);
	how = (struct proa_open_how){.flags = O_RDONLY, .resolve = 1u << 20};
	assert_res(RUN(loop, PROA_FEAT_OP_OPENAT2,
		       proa_op_openat2(loop, &op_, dfd, "f", &how)),
		   -EINVAL);
	/* A missing file. */
	how = (struct proa_open_how){.flags = O_RDONLY};
	assert_res(RUN(loop, PROA_FEAT_OP_OPENAT2,
		       proa_op_openat2(loop, &op_, dfd, "missing", &how)),
		   -ENOENT);

	assert_int_equal(proa_test_fds(), before);
	assert_int_equal(unlinkat(dfd, "out", 0), 0);
	assert_int_equal(unlinkat(dfd, "in", 0), 0);
	assert_int_equal(unlinkat(dfd, "f", 0), 0);
	close(dfd);
	assert_int_equal(rmdir(dir), 0);
	proa_test_loop_close(loop);
}

/*
 * Many openat2 at once through a 4-entry SQ, each with its own resolve
 * flags, from one struct proa_open_how changed after every call: each
 * result must be its own how's (the how is read during the call, and the
 * io_uring backend's per-slot copy is not shared between SQEs in flight).
 */
#define MANY 64

static void test_openat2_many_in_flight_keep_their_own_how(void **state)
{
	struct proa_loop_opts opts = {.sq_entries = 4};
	uint64_t hide = *(const uint64_t *)*state;
	struct proa_open_how how;
	struct proa_loop *loop;
	struct proa_op op[MANY];
	struct done d[MANY];
	char dir[sizeof(tmpdir) + 16];
	int dfd = fresh_dir(dir, sizeof(dir), "many"), fd, i, before;

	proa__ring_faults.hide_features = hide;
	loop = proa_test_loop_new_opts(&opts);
	proa__ring_faults.hide_features = 0;
	before = proa_test_fds();
	fd = openat(dfd, "f", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(symlinkat("f", dfd, "in"), 0);
	/* Run once, so that the ring is enabled and a full SQ is flushed
	 * while the calls are made. */
	assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	for (i = 0; i < MANY; i++) {
		const char *path = i % 3 == 0	? "in"
				   : i % 3 == 1 ? "../x"
						: "f";

		how = (struct proa_open_how){.flags = O_RDONLY};
		how.resolve = i % 3 == 0 ? PROA_RESOLVE_NO_SYMLINKS
					 : PROA_RESOLVE_BENEATH;
		d[i] = (struct done){0};
		proa_op_init(&op[i], done_cb, &d[i]);
		assert_res(proa_op_openat2(loop, &op[i], dfd, path, &how), 0);
		/* Scribbled on at once: the op must not have kept it. */
		how.resolve = 0;
		how.flags = O_WRONLY | O_CREAT | O_TRUNC;
	}
	for (i = 0; i < MANY; i++) {
		int32_t res = finish(loop, &op[i], &d[i]);

		if (i % 3 == 0)
			assert_res(res, -ELOOP);
		else if (i % 3 == 1)
			assert_res(res, -EXDEV);
		else {
			assert_true(res >= 0);
			assert_int_equal(fcntl(res, F_GETFL) & O_ACCMODE,
					 O_RDONLY);
			close(res);
		}
	}
	assert_int_equal(proa_test_fds(), before);
	assert_int_equal(unlinkat(dfd, "in", 0), 0);
	assert_int_equal(unlinkat(dfd, "f", 0), 0);
	close(dfd);
	assert_int_equal(rmdir(dir), 0);
	proa_test_loop_close(loop);
}

/* ---- fallocate, ftruncate ---------------------------------------------- */

static void test_fallocate_and_ftruncate_set_the_size(void **state)
{
	struct proa_loop *loop = loop_for(state);
	char path[sizeof(tmpdir) + 16];
	struct stat st;
	int fd, ro;

	fd = open(tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_res(RUN(loop, PROA_FEAT_OP_FALLOCATE,
		       proa_op_fallocate(loop, &op_, fd, 0, 0, 1 << 20)),
		   0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, 1 << 20);
	assert_true(st.st_blocks * 512 >= 1 << 20);
	assert_res(RUN(loop, PROA_FEAT_OP_FSYNC,
		       proa_op_fsync(loop, &op_, fd, PROA_FSYNC_DATASYNC)),
		   0);
	assert_res(
	    RUN(loop, PROA_FEAT_OP_FSYNC, proa_op_fsync(loop, &op_, fd, 0)), 0);
	/* KEEP_SIZE reserves past the end without moving it. */
	assert_res(RUN(loop, PROA_FEAT_OP_FALLOCATE,
		       proa_op_fallocate(loop, &op_, fd, FALLOC_FL_KEEP_SIZE,
					 1 << 20, 1 << 20)),
		   0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, 1 << 20);

	assert_res(RUN(loop, PROA_FEAT_OP_FTRUNCATE,
		       proa_op_ftruncate(loop, &op_, fd, 100)),
		   0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, 100);
	assert_res(RUN(loop, PROA_FEAT_OP_FTRUNCATE,
		       proa_op_ftruncate(loop, &op_, fd, 5000)),
		   0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, 5000);
	assert_res(RUN(loop, PROA_FEAT_OP_FTRUNCATE,
		       proa_op_ftruncate(loop, &op_, fd, 0)),
		   0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, 0);

	/* Not open for writing: both calls say so in res. */
	snprintf(path, sizeof(path), "%s/ro", tmpdir);
	ro = open(path, O_CREAT | O_RDONLY | O_CLOEXEC, 0600);
	assert_true(ro >= 0);
	assert_res(RUN(loop, PROA_FEAT_OP_FTRUNCATE,
		       proa_op_ftruncate(loop, &op_, ro, 10)),
		   -EINVAL);
	assert_res(RUN(loop, PROA_FEAT_OP_FALLOCATE,
		       proa_op_fallocate(loop, &op_, ro, 0, 0, 10)),
		   -EBADF);
	close(ro);
	assert_int_equal(unlink(path), 0);
	close(fd);
	proa_test_loop_close(loop);
}

/* ---- mkdirat, linkat, symlinkat, renameat2, unlinkat ------------------- */

static void test_namespace_ops_change_the_tree(void **state)
{
	struct proa_loop *loop = loop_for(state);
	char dir[sizeof(tmpdir) + 16], target[16];
	int dfd = fresh_dir(dir, sizeof(dir), "ns"), fd;
	struct stat st;
	ssize_t n;

	assert_res(RUN(loop, PROA_FEAT_OP_MKDIRAT,
		       proa_op_mkdirat(loop, &op_, dfd, "sub", 0700)),
		   0);
	assert_int_equal(fstatat(dfd, "sub", &st, 0), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_res(RUN(loop, PROA_FEAT_OP_MKDIRAT,
		       proa_op_mkdirat(loop, &op_, dfd, "sub", 0700)),
		   -EEXIST);

	fd = openat(dfd, "a", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "abc", 3), 3);
	close(fd);

	/* A hard link: two names, one inode. */
	assert_res(RUN(loop, PROA_FEAT_OP_LINKAT,
		       proa_op_linkat(loop, &op_, dfd, "a", dfd, "b", 0)),
		   0);
	assert_int_equal(fstatat(dfd, "a", &st, 0), 0);
	assert_int_equal(st.st_nlink, 2);
	assert_res(RUN(loop, PROA_FEAT_OP_LINKAT,
		       proa_op_linkat(loop, &op_, dfd, "a", dfd, "b", 0)),
		   -EEXIST);

	/* A symlink to a relative target. */
	assert_res(RUN(loop, PROA_FEAT_OP_SYMLINKAT,
		       proa_op_symlinkat(loop, &op_, "a", dfd, "s")),
		   0);
	n = readlinkat(dfd, "s", target, sizeof(target));
	assert_int_equal(n, 1);
	assert_memory_equal(target, "a", 1);

	/* Rename: b to sub/c; NOREPLACE refuses an existing name;
	 * EXCHANGE swaps a and s. */
	assert_res(
	    RUN(loop, PROA_FEAT_OP_RENAMEAT,
		proa_op_renameat2(loop, &op_, dfd, "b", dfd, "sub/c", 0)),
	    0);
	assert_int_equal(fstatat(dfd, "b", &st, 0), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(fstatat(dfd, "sub/c", &st, 0), 0);
	assert_int_equal(st.st_size, 3);
	assert_res(RUN(loop, PROA_FEAT_OP_RENAMEAT,
		       proa_op_renameat2(loop, &op_, dfd, "sub/c", dfd, "a",
					 RENAME_NOREPLACE)),
		   -EEXIST);
	assert_res(RUN(loop, PROA_FEAT_OP_RENAMEAT,
		       proa_op_renameat2(loop, &op_, dfd, "a", dfd, "s",
					 RENAME_EXCHANGE)),
		   0);
	assert_int_equal(fstatat(dfd, "a", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(fstatat(dfd, "s", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISREG(st.st_mode));

	/* Unlink: a directory needs AT_REMOVEDIR, and must be empty. */
	assert_res(RUN(loop, PROA_FEAT_OP_UNLINKAT,
		       proa_op_unlinkat(loop, &op_, dfd, "sub", 0)),
		   -EISDIR);
	assert_res(RUN(loop, PROA_FEAT_OP_UNLINKAT,
		       proa_op_unlinkat(loop, &op_, dfd, "sub", AT_REMOVEDIR)),
		   -ENOTEMPTY);
	assert_res(RUN(loop, PROA_FEAT_OP_UNLINKAT,
		       proa_op_unlinkat(loop, &op_, dfd, "sub/c", 0)),
		   0);
	assert_res(RUN(loop, PROA_FEAT_OP_UNLINKAT,
		       proa_op_unlinkat(loop, &op_, dfd, "sub", AT_REMOVEDIR)),
		   0);
	assert_res(RUN(loop, PROA_FEAT_OP_UNLINKAT,
		       proa_op_unlinkat(loop, &op_, dfd, "a", 0)),
		   0);
	assert_res(RUN(loop, PROA_FEAT_OP_UNLINKAT,
		       proa_op_unlinkat(loop, &op_, dfd, "s", 0)),
		   0);
	assert_res(RUN(loop, PROA_FEAT_OP_UNLINKAT,
		       proa_op_unlinkat(loop, &op_, dfd, "s", 0)),
		   -ENOENT);
	/* Relative to AT_FDCWD, with an absolute path. */
	assert_res(
	    RUN(loop, PROA_FEAT_OP_UNLINKAT,
		proa_op_unlinkat(loop, &op_, AT_FDCWD, dir, AT_REMOVEDIR)),
	    0);
	close(dfd);
	proa_test_loop_close(loop);
}

/* ---- getdents ----------------------------------------------------------- */

#define NFILES 300

static void test_getdents_lists_every_entry_once(void **state)
{
	struct proa_loop *loop = loop_for(state);
	char dir[sizeof(tmpdir) + 16], name[32], buf[1024], tiny[8];
	unsigned char seen[NFILES] = {0};
	int dfd = fresh_dir(dir, sizeof(dir), "gd"), fd, i, total = 0,
	    calls = 0;
	int32_t n;

	for (i = 0; i < NFILES; i++) {
		snprintf(name, sizeof(name), "file-%03d", i);
		fd = openat(dfd, name, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
		assert_true(fd >= 0);
		close(fd);
	}
	/* A buffer too small for one record: getdents64(2)'s -EINVAL. */
	assert_res(RUN(loop, LANE_ONLY,
		       proa_op_getdents(loop, &op_, dfd, tiny, sizeof(tiny))),
		   -EINVAL);
	/* Small reads, so that it takes many calls. */
	while ((n = RUN(loop, LANE_ONLY,
			proa_op_getdents(loop, &op_, dfd, buf, sizeof(buf)))) >
	       0) {
		int32_t pos = 0;

		calls++;
		while (pos < n) {
			struct dirent64 *e = (struct dirent64 *)(buf + pos);

			assert_true(e->d_reclen > 0);
			pos += e->d_reclen;
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			assert_int_equal(sscanf(e->d_name, "file-%d", &i), 1);
			assert_true(i >= 0 && i < NFILES);
			assert_int_equal(seen[i], 0);
			assert_int_equal(e->d_type, DT_REG);
			seen[i] = 1;
			total++;
		}
		assert_int_equal(pos, n);
	}
	assert_res(n, 0);
	assert_int_equal(total, NFILES);
	assert_true(calls > 1);

	/* A file is not a directory. */
	fd = openat(dfd, "file-000", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_res(RUN(loop, LANE_ONLY,
		       proa_op_getdents(loop, &op_, fd, buf, sizeof(buf))),
		   -ENOTDIR);
	close(fd);
	for (i = 0; i < NFILES; i++) {
		snprintf(name, sizeof(name), "file-%03d", i);
		assert_int_equal(unlinkat(dfd, name, 0), 0);
	}
	close(dfd);
	assert_int_equal(rmdir(dir), 0);
	proa_test_loop_close(loop);
}

/* ---- copy_file_range ---------------------------------------------------- */

#define CFR_LEN ((size_t)256 * 1024)

static void test_copy_file_range_is_byte_for_byte(void **state)
{
	struct proa_loop *loop = loop_for(state);
	unsigned char *src = malloc(CFR_LEN), *back = calloc(1, CFR_LEN);
	int in = open(tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	int out = open(tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	int32_t res;
	size_t done;

	assert_non_null(src);
	assert_non_null(back);
	assert_true(in >= 0 && out >= 0);
	fill_random(src, CFR_LEN, 7);
	assert_int_equal(pwrite(in, src, CFR_LEN, 0), CFR_LEN);
	/* At explicit offsets: into out shifted by 100 bytes. */
	for (done = 0; done < CFR_LEN; done += (size_t)res) {
		res = RUN(loop, LANE_ONLY,
			  proa_op_copy_file_range(loop, &op_, in, (int64_t)done,
						  out, (int64_t)done + 100,
						  CFR_LEN - done, 0));
		assert_true(res > 0);
	}
	assert_int_equal(pread(out, back, CFR_LEN, 100), CFR_LEN);
	assert_memory_equal(src, back, CFR_LEN);
	/* Explicit offsets leave the positions alone. */
	assert_int_equal(lseek(in, 0, SEEK_CUR), 0);
	assert_int_equal(lseek(out, 0, SEEK_CUR), 0);
	/* At the positions (-1): they move. */
	assert_int_equal(lseek(in, 1000, SEEK_SET), 1000);
	res = RUN(loop, LANE_ONLY,
		  proa_op_copy_file_range(loop, &op_, in, -1, out, -1, 500, 0));
	assert_int_equal(res, 500);
	assert_int_equal(lseek(in, 0, SEEK_CUR), 1500);
	assert_int_equal(lseek(out, 0, SEEK_CUR), 500);
	assert_int_equal(pread(out, back, 500, 0), 500);
	assert_memory_equal(back, src + 1000, 500);
	/* At the end of the input: 0. */
	assert_res(RUN(loop, LANE_ONLY,
		       proa_op_copy_file_range(loop, &op_, in, CFR_LEN, out, 0,
					       10, 0)),
		   0);
	close(in);
	close(out);
	free(src);
	free(back);
	proa_test_loop_close(loop);
}

/* ---- bad input ---------------------------------------------------------- */

/* A path of PATH_MAX bytes and more, in components short enough for
 * NAME_MAX, so that only its total length is wrong. */
static char *long_path(void)
{
	size_t len = PATH_MAX + 64, i;
	char *p = malloc(len + 1);

	assert_non_null(p);
	for (i = 0; i < len; i++)
		p[i] = (i % 100 == 99) ? '/' : 'd';
	p[len] = '\0';
	return p;
}

static void test_paths_over_path_max_are_enametoolong(void **state)
{
	struct proa_loop *loop = loop_for(state);
	struct proa_open_how how = {.flags = O_RDONLY};
	char *lp = long_path(), old[sizeof(tmpdir) + 8];
	struct statx stx;
	int before = proa_test_fds(), fd;

	assert_res(RUN(loop, PROA_FEAT_OP_OPENAT,
		       proa_op_openat(loop, &op_, AT_FDCWD, lp, O_RDONLY, 0)),
		   -ENAMETOOLONG);
	assert_res(RUN(loop, PROA_FEAT_OP_OPENAT2,
		       proa_op_openat2(loop, &op_, AT_FDCWD, lp, &how)),
		   -ENAMETOOLONG);
	assert_res(
	    RUN(loop, PROA_FEAT_OP_STATX,
		proa_op_statx(loop, &op_, AT_FDCWD, lp, 0, STATX_SIZE, &stx)),
	    -ENAMETOOLONG);
	assert_res(RUN(loop, PROA_FEAT_OP_UNLINKAT,
		       proa_op_unlinkat(loop, &op_, AT_FDCWD, lp, 0)),
		   -ENAMETOOLONG);
	assert_res(RUN(loop, PROA_FEAT_OP_MKDIRAT,
		       proa_op_mkdirat(loop, &op_, AT_FDCWD, lp, 0700)),
		   -ENAMETOOLONG);
	assert_res(
	    RUN(loop, PROA_FEAT_OP_RENAMEAT,
		proa_op_renameat2(loop, &op_, AT_FDCWD, lp, AT_FDCWD, "x", 0)),
	    -ENAMETOOLONG);
	/* A missing old name too: linkat(2) would look it up first and say
	 * -ENOENT, io_uring copies both names first; the file lane gives
	 * io_uring's answer. */
	assert_res(RUN(loop, PROA_FEAT_OP_LINKAT,
		       proa_op_linkat(loop, &op_, AT_FDCWD, "missing", AT_FDCWD,
				      lp, 0)),
		   -ENAMETOOLONG);
	/* An existing old name. */
	snprintf(old, sizeof(old), "%s/x", tmpdir);
	fd = open(old, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_res(
	    RUN(loop, PROA_FEAT_OP_LINKAT,
		proa_op_linkat(loop, &op_, AT_FDCWD, old, AT_FDCWD, lp, 0)),
	    -ENAMETOOLONG);
	assert_int_equal(unlink(old), 0);
	assert_res(RUN(loop, PROA_FEAT_OP_SYMLINKAT,
		       proa_op_symlinkat(loop, &op_, "x", AT_FDCWD, lp)),
		   -ENAMETOOLONG);
	/* Exactly PATH_MAX bytes (no room for the NUL) is too long too;
	 * one less reaches the file system. */
	lp[PATH_MAX] = '\0';
	assert_res(RUN(loop, PROA_FEAT_OP_MKDIRAT,
		       proa_op_mkdirat(loop, &op_, AT_FDCWD, lp, 0700)),
		   -ENAMETOOLONG);
	lp[PATH_MAX - 1] = '\0';
	assert_res(RUN(loop, PROA_FEAT_OP_MKDIRAT,
		       proa_op_mkdirat(loop, &op_, AT_FDCWD, lp, 0700)),
		   -ENOENT);
	assert_int_equal(proa_test_fds(), before);
	free(lp);
	proa_test_loop_close(loop);
}

/* The first of these files whose file system refuses O_DIRECT with
 * EINVAL (tmpfs did before Linux 6.6; procfs does), as plain open(2)
 * finds; NULL if every one takes it. */
static const char *odirect_refused(char *shm, size_t len)
{
	static const char *const others[] = {"/proc/self/status",
					     "/proc/version"};
	int fd, i;

	snprintf(shm, len, "/dev/shm/proa-meta-%d", (int)getpid());
	fd = open(shm, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0) {
		close(fd);
		fd = open(shm, O_RDONLY | O_DIRECT | O_CLOEXEC);
		if (fd < 0 && errno == EINVAL)
			return shm;
		if (fd >= 0)
			close(fd);
		unlink(shm);
	}
	for (i = 0; i < 2; i++) {
		fd = open(others[i], O_RDONLY | O_DIRECT | O_CLOEXEC);
		if (fd < 0 && errno == EINVAL)
			return others[i];
		if (fd >= 0)
			close(fd);
	}
	return NULL;
}

static void test_refused_o_direct_and_escapes_are_clear_errors(void **state)
{
	struct proa_loop *loop = loop_for(state);
	struct proa_open_how how = {.flags = O_RDONLY | O_DIRECT};
	char shm[64];
	const char *path = odirect_refused(shm, sizeof(shm));
	int before = proa_test_fds(), dfd;

	if (path) {
		print_message("O_DIRECT refused on %s\n", path);
		assert_res(RUN(loop, PROA_FEAT_OP_OPENAT,
			       proa_op_openat(loop, &op_, AT_FDCWD, path,
					      O_RDONLY | O_DIRECT, 0)),
			   -EINVAL);
		assert_res(
		    RUN(loop, PROA_FEAT_OP_OPENAT2,
			proa_op_openat2(loop, &op_, AT_FDCWD, path, &how)),
		    -EINVAL);
		if (path == shm)
			assert_int_equal(unlink(shm), 0);
	} else {
		print_message("no file system here refuses O_DIRECT\n");
	}
	/* Escapes from a directory under RESOLVE_BENEATH. */
	dfd = open(tmpdir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	assert_true(dfd >= 0);
	how = (struct proa_open_how){.flags = O_RDONLY,
				     .resolve = PROA_RESOLVE_BENEATH};
	assert_res(RUN(loop, PROA_FEAT_OP_OPENAT2,
		       proa_op_openat2(loop, &op_, dfd, "..", &how)),
		   -EXDEV);
	assert_res(RUN(loop, PROA_FEAT_OP_OPENAT2,
		       proa_op_openat2(loop, &op_, dfd, "/", &how)),
		   -EXDEV);
	close(dfd);
	assert_int_equal(proa_test_fds(), before);
	proa_test_loop_close(loop);
	if (!path)
		skip();
}

static void test_bad_arguments_are_refused_before_queueing(void **state)
{
	struct proa_loop *loop = loop_for(state);
	struct proa_open_how how = {.flags = O_RDONLY};
	struct proa_open_how wide = {.flags = 1ull << 40};
	struct proa_open_how wide_mode = {.flags = O_CREAT, .mode = 1ull << 33};
	struct proa_op op;
	unsigned runs = 0;
	char buf[64];
	struct {
		const char *what;
		int ret;
		int want;
	} cases[40];
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

	CASE(-EINVAL, proa_op_openat2(loop, &op, AT_FDCWD, NULL, &how));
	CASE(-EINVAL, proa_op_openat2(loop, &op, AT_FDCWD, "x", NULL));
	CASE(-EINVAL, proa_op_openat2(loop, &op, AT_FDCWD, "x", &wide));
	CASE(-EINVAL, proa_op_openat2(loop, &op, AT_FDCWD, "x", &wide_mode));
	CASE(-EBADF, proa_op_openat2(loop, &op, -5, "x", &how));
	CASE(-EBADF, proa_op_fallocate(loop, &op, -1, 0, 0, 1));
	CASE(-EINVAL, proa_op_fallocate(loop, &op, 0, 0, -1, 1));
	CASE(-EINVAL, proa_op_fallocate(loop, &op, 0, 0, 0, 0));
	CASE(-EBADF, proa_op_ftruncate(loop, &op, -1, 0));
	CASE(-EINVAL, proa_op_ftruncate(loop, &op, 0, -1));
	CASE(-EINVAL, proa_op_unlinkat(loop, &op, AT_FDCWD, NULL, 0));
	CASE(-EINVAL, proa_op_unlinkat(loop, &op, AT_FDCWD, "x", 0x1));
	CASE(-EBADF, proa_op_unlinkat(loop, &op, -2, "x", 0));
	CASE(-EINVAL,
	     proa_op_renameat2(loop, &op, AT_FDCWD, NULL, AT_FDCWD, "y", 0));
	CASE(-EINVAL,
	     proa_op_renameat2(loop, &op, AT_FDCWD, "x", AT_FDCWD, NULL, 0));
	CASE(-EBADF, proa_op_renameat2(loop, &op, AT_FDCWD, "x", -3, "y", 0));
	CASE(-EINVAL, proa_op_mkdirat(loop, &op, AT_FDCWD, NULL, 0700));
	CASE(-EBADF, proa_op_mkdirat(loop, &op, -7, "x", 0700));
	CASE(-EINVAL, proa_op_symlinkat(loop, &op, NULL, AT_FDCWD, "y"));
	CASE(-EINVAL, proa_op_symlinkat(loop, &op, "x", AT_FDCWD, NULL));
	CASE(-EBADF, proa_op_symlinkat(loop, &op, "x", -1, "y"));
	CASE(-EINVAL,
	     proa_op_linkat(loop, &op, AT_FDCWD, NULL, AT_FDCWD, "y", 0));
	CASE(-EBADF, proa_op_linkat(loop, &op, -4, "x", AT_FDCWD, "y", 0));
	CASE(-EBADF, proa_op_getdents(loop, &op, -1, buf, sizeof(buf)));
	CASE(-EINVAL, proa_op_getdents(loop, &op, 0, NULL, sizeof(buf)));
	CASE(-EINVAL,
	     proa_op_getdents(loop, &op, 0, buf, (size_t)INT32_MAX + 1));
	CASE(-EBADF, proa_op_copy_file_range(loop, &op, -1, 0, 1, 0, 1, 0));
	CASE(-EBADF, proa_op_copy_file_range(loop, &op, 0, 0, -1, 0, 1, 0));
	CASE(-EINVAL, proa_op_copy_file_range(loop, &op, 0, -2, 1, 0, 1, 0));
	CASE(-EINVAL, proa_op_copy_file_range(loop, &op, 0, 0, 1, -2, 1, 0));
	CASE(-EINVAL, proa_op_copy_file_range(loop, &op, 0, 0, 1, 0,
					      (size_t)INT32_MAX + 1, 0));
	CASE(-EINVAL, proa_op_copy_file_range(loop, &op, 0, 0, 1, 0, 1, 1));
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
	assert_res(proa_loop_run(loop, PROA_RUN_NOWAIT), 0);
	assert_int_equal(runs, 0);
	proa_test_loop_close(loop);
}

static void test_new_ops_after_close_are_refused(void **state)
{
	struct proa_loop *loop = loop_for(state);
	struct proa_open_how how = {.flags = O_RDONLY};
	struct proa_op op;
	unsigned runs = 0;
	char buf[64];

	assert_res(proa_loop_close(loop), 0);
	proa_op_init(&op, never_cb, &runs);
	assert_res(proa_op_openat2(loop, &op, AT_FDCWD, "/", &how),
		   PROA_ECLOSED);
	assert_res(proa_op_ftruncate(loop, &op, 0, 0), PROA_ECLOSED);
	assert_res(proa_op_unlinkat(loop, &op, AT_FDCWD, "x", 0), PROA_ECLOSED);
	assert_res(proa_op_getdents(loop, &op, 0, buf, sizeof(buf)),
		   PROA_ECLOSED);
	assert_true(proa_op_is_idle(&op));
	assert_int_equal(runs, 0);
	assert_res(proa_loop_free(loop), 0);
}

/* Cancel reaches an op queued on the file lane before it runs: the four
 * file workers are held by reads of empty pipes, so a getdents waits in
 * the lane's queue and comes back -ECANCELED. */
static void test_queued_lane_op_is_cancelled(void **state)
{
	struct proa_loop *loop;
	struct proa_pool *pool;
	struct proa_pool_stats st;
	struct proa_op reads[8], gd;
	struct done rd[8], gdd = {0};
	char rbuf[8], buf[512];
	int p[8][2], i, nworkers, dfd;

	/* Pipe reads go to the lane only where read is missing (the epoll
	 * backend reads pipes by readiness): hide it on either backend. */
	proa__ring_faults.hide_features = 1ull << PROA_FEAT_OP_READ;
	loop = proa_test_loop_new();
	proa__ring_faults.hide_features = 0;
	assert_res(proa_pool_default(&pool, loop), 0);
	assert_res(proa_pool_stats(pool, &st), 0);
	nworkers = (int)st.lanes[PROA_LANE_FILE].max_threads;
	assert_true(nworkers > 0 && nworkers <= 8);
	for (i = 0; i < nworkers; i++) {
		assert_int_equal(pipe2(p[i], O_CLOEXEC), 0);
		rd[i] = (struct done){0};
		proa_op_init(&reads[i], done_cb, &rd[i]);
		assert_res(
		    proa_op_read(loop, &reads[i], p[i][0], &rbuf[i], 1, -1), 0);
	}
	dfd = open(tmpdir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	assert_true(dfd >= 0);
	proa_op_init(&gd, done_cb, &gdd);
	assert_res(proa_op_getdents(loop, &gd, dfd, buf, sizeof(buf)), 0);
	assert_int_equal(proa_loop_run(loop, PROA_RUN_NOWAIT), 1);
	assert_res(proa_op_cancel(&gd), 0);
	assert_int_equal(gdd.calls, 0);
	assert_res(finish(loop, &gd, &gdd), -ECANCELED);
	for (i = 0; i < nworkers; i++)
		assert_int_equal(write(p[i][1], "a", 1), 1);
	for (i = 0; i < nworkers; i++) {
		assert_int_equal(finish(loop, &reads[i], &rd[i]), 1);
		close(p[i][0]);
		close(p[i][1]);
	}
	close(dfd);
	proa_test_loop_close(loop);
	(void)state;
}

#define BOTH(f)                                                                \
	cmocka_unit_test_prestate(f, (void *)&as_probed),                      \
	    cmocka_unit_test_prestate(f, (void *)&hide_file_ops)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    BOTH(test_openat2_resolve_flags_hold),
	    BOTH(test_openat2_many_in_flight_keep_their_own_how),
	    BOTH(test_fallocate_and_ftruncate_set_the_size),
	    BOTH(test_namespace_ops_change_the_tree),
	    BOTH(test_getdents_lists_every_entry_once),
	    BOTH(test_copy_file_range_is_byte_for_byte),
	    BOTH(test_paths_over_path_max_are_enametoolong),
	    BOTH(test_refused_o_direct_and_escapes_are_clear_errors),
	    BOTH(test_bad_arguments_are_refused_before_queueing),
	    BOTH(test_new_ops_after_close_are_refused),
	    cmocka_unit_test(test_queued_lane_op_is_cancelled),
	};

	proa_test_require_uring();
	return cmocka_run_group_tests_name("files.meta", tests, setup_dir,
					   teardown_dir);
}
