/* SPDX-License-Identifier: MIT */
/*
 * Registered files and buffers (proa/op.h): ops on a PROA_FIXED_FD() slot
 * after the caller closed its own descriptor, read_fixed/write_fixed byte
 * for byte against pread/pwrite, O_DIRECT into an aligned registered
 * buffer, the -EBUSY rules while an op uses a slot or a buffer, bad input,
 * the emulated table and buffers (the epoll backend, or a kernel without
 * them: hidden here), and registration over RLIMIT_MEMLOCK in a child
 * without CAP_IPC_LOCK.  Every test closes its loop and leaves no
 * descriptor open.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proa_test.h"
#include "ring/ring_int.h"

struct done {
	unsigned calls;
	int32_t res;
};

static void done_cb(struct proa_op *op)
{
	struct done *d = op->data;

	d->calls++;
	d->res = op->res;
}

/* Run a submitted op to its completion; its result. */
static int32_t finish(struct proa_loop *loop, struct proa_op *op,
		      struct done *d)
{
	proa_test_drive_op(loop, op, 100000);
	assert_int_equal(d->calls, 1);
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

/* On the build's disk, not tmpfs: O_DIRECT needs a real file system. */
static char tmpdir[] = "proa-regfiles-XXXXXX";

static int setup(void **state)
{
	if (!mkdtemp(tmpdir))
		return -1;
	return proa_test_fds_setup(state);
}

static int teardown(void **state)
{
	proa_test_fds_check(state);
	return rmdir(tmpdir);
}

static int temp_file(void)
{
	int fd = open(tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	return fd;
}

static void fill(unsigned char *buf, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len; i++) {
		seed = seed * 1664525u + 1013904223u;
		buf[i] = (unsigned char)(seed >> 24);
	}
}

static bool on_uring(void)
{
	return !proa_test_env_backend_is("epoll");
}

/* The backend's table is the kernel's, unless the test hid it. */
static void expect_features(struct proa_loop *loop, bool hidden)
{
	bool uring = strcmp(proa_loop_backend(loop), "io_uring") == 0;

	assert_int_equal(proa_loop_feature(loop, PROA_FEAT_REG_FILES),
			 uring && !hidden);
	assert_int_equal(proa_loop_feature(loop, PROA_FEAT_REG_BUFFERS),
			 uring && !hidden);
}

#define KIB ((size_t)1024)

/* ---- files ------------------------------------------------------------- */

static void files_round_trip(bool hide)
{
	struct proa_loop *loop;
	unsigned char src[16 * KIB], back[16 * KIB];
	struct iovec iov[2];
	struct done d;
	int fd, slot, base;

	if (hide)
		proa__ring_faults.hide_features =
		    (1ull << PROA_FEAT_REG_FILES) |
		    (1ull << PROA_FEAT_REG_BUFFERS);
	loop = proa_test_loop_new();
	proa__ring_faults.hide_features = 0;
	expect_features(loop, hide);
	fd = temp_file();
	/* The loop's descriptors and the file's, less the file's (closed
	 * below). */
	base = proa_test_fds() - 1;
	slot = proa_loop_register_fd(loop, fd);
	assert_true(slot >= 0);
	/* The slot holds its own reference: the caller's fd may go. */
	assert_int_equal(close(fd), 0);
	fill(src, sizeof(src), 7);
	assert_int_equal(SYNC(loop, &d,
			      proa_op_write(loop, &op_, PROA_FIXED_FD(slot),
					    src, 8 * KIB, 0)),
			 8 * KIB);
	iov[0] = (struct iovec){src + 8 * KIB, 4 * KIB};
	iov[1] = (struct iovec){src + 12 * KIB, 4 * KIB};
	assert_int_equal(SYNC(loop, &d,
			      proa_op_writev(loop, &op_, PROA_FIXED_FD(slot),
					     iov, 2, 8 * KIB)),
			 8 * KIB);
	assert_int_equal(SYNC(loop, &d,
			      proa_op_fsync(loop, &op_, PROA_FIXED_FD(slot),
					    PROA_FSYNC_DATASYNC)),
			 0);
	memset(back, 0, sizeof(back));
	assert_int_equal(SYNC(loop, &d,
			      proa_op_read(loop, &op_, PROA_FIXED_FD(slot),
					   back, 4 * KIB, 0)),
			 4 * KIB);
	iov[0] = (struct iovec){back + 4 * KIB, 2 * KIB};
	iov[1] = (struct iovec){back + 6 * KIB, 10 * KIB};
	assert_int_equal(SYNC(loop, &d,
			      proa_op_readv(loop, &op_, PROA_FIXED_FD(slot),
					    iov, 2, 4 * KIB)),
			 12 * KIB);
	assert_memory_equal(src, back, sizeof(src));
	/* The emulated table keeps a descriptor per slot, the kernel's
	 * none. */
	assert_int_equal(proa_test_fds(), base + (hide || !on_uring() ? 1 : 0));
	assert_res(proa_loop_unregister_fd(loop, (unsigned)slot), 0);
	assert_int_equal(proa_test_fds(), base);
	/* Emptied: refused at submit, the callback never runs. */
	{
		struct proa_op op;

		proa_op_init(&op, done_cb, &d);
		d = (struct done){0};
		assert_res(
		    proa_op_read(loop, &op, PROA_FIXED_FD(slot), back, 1, 0),
		    -EBADF);
		assert_res(proa_loop_unregister_fd(loop, (unsigned)slot),
			   -EBADF);
		assert_int_equal(d.calls, 0);
	}
	proa_test_loop_close(loop);
}

static void test_fixed_file_ops_after_the_caller_closed_its_fd(void **state)
{
	(void)state;
	files_round_trip(false);
}

static void test_emulated_table_when_the_kernel_has_none(void **state)
{
	(void)state;
	files_round_trip(true);
}

/* Slots are reused lowest first; a slot outlives nothing it should. */
static void test_slots_lowest_free_and_freed_at_close(void **state)
{
	int fds[3], s[3], base = proa_test_fds();
	struct proa_loop *loop = proa_test_loop_new();

	(void)state;
	for (int i = 0; i < 3; i++) {
		fds[i] = temp_file();
		s[i] = proa_loop_register_fd(loop, fds[i]);
		assert_int_equal(s[i], i);
	}
	assert_res(proa_loop_unregister_fd(loop, 1), 0);
	assert_int_equal(proa_loop_register_fd(loop, fds[1]), 1);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	/* Left registered: proa_loop_close() empties the table. */
	assert_res(proa_loop_close(loop), 0);
	assert_res(proa_loop_unregister_fd(loop, 0), PROA_ECLOSED);
	assert_res(proa_loop_register_fd(loop, 0), PROA_ECLOSED);
	assert_res(proa_loop_unregister_buffers(loop), PROA_ECLOSED);
	assert_res(proa_loop_free(loop), 0);
	assert_int_equal(proa_test_fds(), base);
}

/* How many epoll instances of this process watch descriptor @fd (their
 * /proc/self/fdinfo lists a "tfd:" line per watched fd). */
static int epoll_watching(int fd)
{
	char path[64], link[64], line[256];
	int n = 0;

	for (int e = 0; e < 1024; e++) {
		ssize_t len;
		FILE *f;

		snprintf(path, sizeof(path), "/proc/self/fd/%d", e);
		len = readlink(path, link, sizeof(link) - 1);
		if (len < 0)
			continue;
		link[len] = '\0';
		if (strcmp(link, "anon_inode:[eventpoll]") != 0)
			continue;
		snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", e);
		f = fopen(path, "re");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			int t;

			if (sscanf(line, "tfd: %d", &t) == 1 && t == fd)
				n++;
		}
		fclose(f);
	}
	return n;
}

/* A read on a pipe slot waits for data: its slot cannot be emptied.  On
 * epoll the wait registered the table's duplicate; emptying the slot
 * drops that registration before closing it (a registration outlives a
 * close(2) of a duplicate while the caller's descriptor stays open). */
static void test_unregister_while_in_flight_is_ebusy(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_op op;
	struct done d = {0};
	char buf[8];
	int p[2], slot, dupfd;

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	/* The emulated table's duplicate takes the lowest free number. */
	dupfd = dup(0);
	assert_true(dupfd >= 0);
	close(dupfd);
	slot = proa_loop_register_fd(loop, p[0]);
	assert_true(slot >= 0);
	proa_op_init(&op, done_cb, &d);
	assert_res(
	    proa_op_read(loop, &op, PROA_FIXED_FD(slot), buf, sizeof(buf), -1),
	    0);
	assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	assert_res(proa_loop_unregister_fd(loop, (unsigned)slot), -EBUSY);
	if (!on_uring())
		assert_int_equal(epoll_watching(dupfd), 1);
	assert_int_equal(write(p[1], "hi", 2), 2);
	assert_int_equal(finish(loop, &op, &d), 2);
	assert_memory_equal(buf, "hi", 2);
	assert_res(proa_loop_unregister_fd(loop, (unsigned)slot), 0);
	assert_int_equal(epoll_watching(dupfd), 0);
	close(p[0]);
	close(p[1]);
	proa_test_loop_close(loop);
}

/* A fork child lets go of the loop: the emulated table's duplicate is
 * closed there, and the parent's slot (and its epoll registration, in an
 * instance the child shares) keeps working. */
static void test_fork_child_discards_the_table(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct done d;
	char buf[4];
	int p[2], slot, dupfd, status;
	pid_t pid;

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	dupfd = dup(0);
	assert_true(dupfd >= 0);
	close(dupfd);
	slot = proa_loop_register_fd(loop, p[0]);
	assert_true(slot >= 0);
	assert_int_equal(write(p[1], "ab", 2), 2);
	assert_int_equal(SYNC(loop, &d,
			      proa_op_read(loop, &op_, PROA_FIXED_FD(slot), buf,
					   sizeof(buf), -1)),
			 2);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* exit(): LeakSanitizer checks the child under ASan.  The
		 * child has one thread. */
		/* NOLINTNEXTLINE(concurrency-mt-unsafe) */
		exit(proa_loop_discard_after_fork(loop) == 0 &&
			     fcntl(dupfd, F_GETFD) < 0 && errno == EBADF
			 ? 0
			 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(write(p[1], "cd", 2), 2);
	assert_int_equal(SYNC(loop, &d,
			      proa_op_read(loop, &op_, PROA_FIXED_FD(slot), buf,
					   sizeof(buf), -1)),
			 2);
	assert_memory_equal(buf, "cd", 2);
	assert_res(proa_loop_unregister_fd(loop, (unsigned)slot), 0);
	close(p[0]);
	close(p[1]);
	proa_test_loop_close(loop);
}

static void test_bad_slots_and_ops_that_take_none(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	struct proa_op op;
	struct done d = {0};
	struct statx stx;
	char buf[4];
	int fd = temp_file(), slot;

	(void)state;
	proa_op_init(&op, done_cb, &d);
	assert_res(proa_loop_register_fd(loop, -1), -EBADF);
	assert_res(proa_loop_register_fd(loop, 1 << 29), -EBADF);
	assert_res(proa_loop_register_fd(NULL, fd), -EINVAL);
	assert_res(proa_loop_unregister_fd(loop, 0), -EBADF);
	assert_res(proa_loop_unregister_fd(loop, 1u << 30), -EBADF);
	/* No table yet. */
	assert_res(proa_op_read(loop, &op, PROA_FIXED_FD(0), buf, 1, 0),
		   -EBADF);
	slot = proa_loop_register_fd(loop, fd);
	assert_int_equal(slot, 0);
	assert_res(proa_op_read(loop, &op, PROA_FIXED_FD(1), buf, 1, 0),
		   -EBADF);
	assert_res(
	    proa_op_read(loop, &op, PROA_FIXED_FD((1 << 24) - 1), buf, 1, 0),
	    -EBADF);
	/* Ops that do not take a slot see a negative descriptor. */
	assert_res(proa_op_close(loop, &op, PROA_FIXED_FD(slot)), -EBADF);
	assert_res(proa_op_statx(loop, &op, PROA_FIXED_FD(slot), "x", 0,
				 STATX_BASIC_STATS, &stx),
		   -EBADF);
	assert_res(proa_op_poll(loop, &op, PROA_FIXED_FD(slot), POLLIN, 0),
		   -EBADF);
	assert_int_equal(d.calls, 0);
	assert_true(proa_fd_is_fixed(PROA_FIXED_FD(0)));
	assert_false(proa_fd_is_fixed(-1));
	assert_false(proa_fd_is_fixed(AT_FDCWD));
	assert_int_equal(proa_fd_slot(PROA_FIXED_FD(4095)), 4095);
	close(fd);
	proa_test_loop_close(loop);
}

/* ---- buffers ----------------------------------------------------------- */

static void buffers_round_trip(bool hide)
{
	struct proa_loop *loop;
	unsigned char *mem, *src;
	struct iovec iov[2];
	struct proa_op op;
	struct done d = {0};
	int fd = temp_file(), slot;

	if (hide)
		proa__ring_faults.hide_features = 1ull << PROA_FEAT_REG_BUFFERS;
	loop = proa_test_loop_new();
	proa__ring_faults.hide_features = 0;
	assert_int_equal(posix_memalign((void **)&mem, 4096, 128 * KIB), 0);
	src = malloc(64 * KIB);
	assert_non_null(src);
	fill(src, 64 * KIB, 3);
	memset(mem, 0, 128 * KIB);
	iov[0] = (struct iovec){mem, 64 * KIB};
	iov[1] = (struct iovec){mem + 64 * KIB, 64 * KIB};
	proa_op_init(&op, done_cb, &d);
	/* None registered yet. */
	assert_res(proa_op_read_fixed(loop, &op, fd, mem, 4096, 0, 0), -EINVAL);
	assert_res(proa_loop_unregister_buffers(loop), -ENXIO);
	assert_res(proa_loop_register_buffers(loop, iov, 2), 0);
	assert_res(proa_loop_register_buffers(loop, iov, 2), -EBUSY);
	/* Out of the buffer named, or a buffer that is not there. */
	assert_res(proa_op_read_fixed(loop, &op, fd, mem, 4096, 0, 1), -EINVAL);
	assert_res(
	    proa_op_read_fixed(loop, &op, fd, mem + 60 * KIB, 8 * KIB, 0, 0),
	    -EINVAL);
	assert_res(proa_op_read_fixed(loop, &op, fd, mem, 4096, 0, 2), -EINVAL);
	assert_res(proa_op_write_fixed(loop, &op, fd, mem - 1, 2, 0, 0),
		   -EINVAL);
	assert_int_equal(d.calls, 0);
	/* Write from buffer 1, on a plain fd and on a slot. */
	memcpy(mem + 64 * KIB, src, 64 * KIB);
	assert_int_equal(
	    SYNC(loop, &d,
		 proa_op_write_fixed(loop, &op_, fd, mem + 64 * KIB, 32 * KIB,
				     0, 1)),
	    32 * KIB);
	slot = proa_loop_register_fd(loop, fd);
	assert_true(slot >= 0);
	assert_int_equal(
	    SYNC(loop, &d,
		 proa_op_write_fixed(loop, &op_, PROA_FIXED_FD(slot),
				     mem + 96 * KIB, 32 * KIB, 32 * KIB, 1)),
	    32 * KIB);
	/* Read back into buffer 0 through the slot, in two pieces. */
	assert_int_equal(
	    SYNC(loop, &d,
		 proa_op_read_fixed(loop, &op_, PROA_FIXED_FD(slot), mem,
				    40 * KIB, 0, 0)),
	    40 * KIB);
	assert_int_equal(SYNC(loop, &d,
			      proa_op_read_fixed(loop, &op_, fd, mem + 40 * KIB,
						 24 * KIB, 40 * KIB, 0)),
			 24 * KIB);
	assert_memory_equal(mem, src, 64 * KIB);
	assert_res(proa_loop_unregister_fd(loop, (unsigned)slot), 0);
	assert_res(proa_loop_unregister_buffers(loop), 0);
	/* Gone: refused. */
	assert_res(proa_op_read_fixed(loop, &op, fd, mem, 4096, 0, 0), -EINVAL);
	/* Registered again, left for proa_loop_close(). */
	assert_res(proa_loop_register_buffers(loop, iov, 1), 0);
	proa_test_loop_close(loop);
	close(fd);
	free(mem);
	free(src);
}

static void test_read_write_fixed_byte_for_byte(void **state)
{
	(void)state;
	buffers_round_trip(false);
}

static void test_emulated_buffers_when_the_kernel_has_none(void **state)
{
	(void)state;
	buffers_round_trip(true);
}

static void test_bad_buffer_registrations(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	char buf[64];
	struct iovec iov[2] = {{buf, sizeof(buf)}, {NULL, 8}};

	(void)state;
	assert_res(proa_loop_register_buffers(NULL, iov, 1), -EINVAL);
	assert_res(proa_loop_register_buffers(loop, NULL, 1), -EINVAL);
	assert_res(proa_loop_register_buffers(loop, iov, 0), -EINVAL);
	assert_res(proa_loop_register_buffers(loop, iov, 2), -EINVAL);
	assert_res(proa_loop_register_buffers(loop, iov, 16385), -EINVAL);
	iov[1] = (struct iovec){buf, 0};
	assert_res(proa_loop_register_buffers(loop, iov, 2), -EINVAL);
	assert_res(proa_loop_unregister_buffers(loop), -ENXIO);
	proa_test_loop_close(loop);
}

static void test_unregister_buffers_while_in_flight_is_ebusy(void **state)
{
	struct proa_loop *loop = proa_test_loop_new();
	char buf[64];
	struct iovec iov = {buf, sizeof(buf)};
	struct proa_op op;
	struct done d = {0};
	int p[2];

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_res(proa_loop_register_buffers(loop, &iov, 1), 0);
	proa_op_init(&op, done_cb, &d);
	assert_res(proa_op_read_fixed(loop, &op, p[0], buf, sizeof(buf), -1, 0),
		   0);
	assert_true(proa_loop_run(loop, PROA_RUN_NOWAIT) >= 0);
	assert_res(proa_loop_unregister_buffers(loop), -EBUSY);
	assert_res(proa_op_cancel(&op), 0);
	assert_int_equal(finish(loop, &op, &d), -ECANCELED);
	assert_res(proa_loop_unregister_buffers(loop), 0);
	close(p[0]);
	close(p[1]);
	proa_test_loop_close(loop);
}

/* O_DIRECT into an aligned registered buffer, through a slot: what the
 * file benchmark's fixed rows do. */
static void test_o_direct_read_fixed(void **state)
{
	struct proa_loop *loop;
	unsigned char *mem, *src;
	struct iovec iov;
	struct done d;
	char path[64];
	int fd, dfd, slot;

	(void)state;
	snprintf(path, sizeof(path), "%s/direct", tmpdir);
	fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	src = malloc(256 * KIB);
	assert_non_null(src);
	fill(src, 256 * KIB, 11);
	assert_int_equal(pwrite(fd, src, 256 * KIB, 0), 256 * KIB);
	assert_int_equal(fsync(fd), 0);
	dfd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	unlink(path);
	close(fd);
	if (dfd < 0) {
		/* A file system that refuses O_DIRECT (tmpfs before 6.6). */
		assert_int_equal(errno, EINVAL);
		free(src);
		skip();
	}
	loop = proa_test_loop_new();
	assert_int_equal(posix_memalign((void **)&mem, 4096, 256 * KIB), 0);
	iov = (struct iovec){mem, 256 * KIB};
	assert_res(proa_loop_register_buffers(loop, &iov, 1), 0);
	slot = proa_loop_register_fd(loop, dfd);
	assert_true(slot >= 0);
	close(dfd);
	for (unsigned i = 0; i < 64; i++) {
		/* Backwards, 4 KiB each, into their own places. */
		size_t k = 63 - i;

		assert_int_equal(
		    SYNC(loop, &d,
			 proa_op_read_fixed(loop, &op_, PROA_FIXED_FD(slot),
					    mem + k * 4 * KIB, 4 * KIB,
					    (int64_t)k * 4 * KIB, 0)),
		    4 * KIB);
	}
	assert_memory_equal(mem, src, 256 * KIB);
	/* Misaligned O_DIRECT: the kernel's -EINVAL, in res. */
	assert_int_equal(
	    SYNC(loop, &d,
		 proa_op_read_fixed(loop, &op_, PROA_FIXED_FD(slot), mem + 1,
				    4 * KIB, 0, 0)),
	    -EINVAL);
	assert_res(proa_loop_unregister_fd(loop, (unsigned)slot), 0);
	assert_res(proa_loop_unregister_buffers(loop), 0);
	proa_test_loop_close(loop);
	free(mem);
	free(src);
}

/* ---- RLIMIT_MEMLOCK ------------------------------------------------------
 */

/* Drop CAP_IPC_LOCK from every set, so that pinned pages are charged to
 * RLIMIT_MEMLOCK as for an unprivileged process.  0, or -1. */
static int drop_ipc_lock(void)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct c[2];

	if (syscall(SYS_capget, &h, c) < 0)
		return -1;
	c[0].effective &= ~(1u << CAP_IPC_LOCK);
	c[0].permitted &= ~(1u << CAP_IPC_LOCK);
	c[0].inheritable &= ~(1u << CAP_IPC_LOCK);
	return syscall(SYS_capset, &h, c) < 0 ? -1 : 0;
}

/* In the child: exit 0 when registration over the limit is refused
 * with -ENOMEM (io_uring) or emulated (epoll), and plain I/O into the
 * same memory still works; 10+ for each failure. */
static int memlock_child(void)
{
	/* Room for the ring itself (6.x charges its memory too), not for
	 * the buffer. */
	struct rlimit rl = {1024 * KIB, 1024 * KIB};
	struct proa_loop *loop = NULL;
	struct iovec iov;
	struct proa_op op;
	struct done d = {0};
	unsigned char *mem;
	int fd, ret, p[2];

	if (drop_ipc_lock() < 0 || setrlimit(RLIMIT_MEMLOCK, &rl) < 0)
		return 10;
	/* The ring is made after the drop: the kernel decides at set-up
	 * whether to charge. */
	if (proa_loop_new(&loop, NULL) < 0)
		return 11;
	if (posix_memalign((void **)&mem, 4096, 4096 * KIB))
		return 12;
	memset(mem, 1, 4096 * KIB);
	iov = (struct iovec){mem, 4096 * KIB};
	ret = proa_loop_register_buffers(loop, &iov, 1);
	if (proa_loop_feature(loop, PROA_FEAT_REG_BUFFERS) ? ret != -ENOMEM
							   : ret != 0)
		return 13;
	/* Nothing registered after a refusal: read_fixed says so, a plain
	 * read works. */
	if (pipe2(p, O_CLOEXEC) < 0 || write(p[1], "ok", 2) != 2)
		return 14;
	fd = p[0];
	proa_op_init(&op, done_cb, &d);
	if (ret == -ENOMEM &&
	    (proa_op_read_fixed(loop, &op, fd, mem, 2, -1, 0) != -EINVAL ||
	     proa_loop_unregister_buffers(loop) != -ENXIO))
		return 15;
	if (proa_op_read(loop, &op, fd, mem, 2, -1) != 0)
		return 16;
	while (!proa_op_is_idle(&op))
		if (proa_loop_run(loop, PROA_RUN_ONCE) < 0)
			return 17;
	if (d.res != 2 || memcmp(mem, "ok", 2) != 0)
		return 18;
	if (proa_loop_close(loop) != 0 || proa_loop_free(loop) != 0)
		return 19;
	close(p[0]);
	close(p[1]);
	free(mem);
	return 0;
}

static void test_registration_over_memlock_is_enomem(void **state)
{
	int status;
	pid_t pid;

	(void)state;
	/* exit(), not _exit(): under ASan, LeakSanitizer checks the child
	 * at exit too (a leak is a nonzero status); nothing buffered may
	 * be written twice. */
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		exit(memlock_child()); /* NOLINT(concurrency-mt-unsafe) */
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(
		test_fixed_file_ops_after_the_caller_closed_its_fd),
	    cmocka_unit_test(test_emulated_table_when_the_kernel_has_none),
	    cmocka_unit_test(test_slots_lowest_free_and_freed_at_close),
	    cmocka_unit_test(test_unregister_while_in_flight_is_ebusy),
	    cmocka_unit_test(test_fork_child_discards_the_table),
	    cmocka_unit_test(test_bad_slots_and_ops_that_take_none),
	    cmocka_unit_test(test_read_write_fixed_byte_for_byte),
	    cmocka_unit_test(test_emulated_buffers_when_the_kernel_has_none),
	    cmocka_unit_test(test_bad_buffer_registrations),
	    cmocka_unit_test(test_unregister_buffers_while_in_flight_is_ebusy),
	    cmocka_unit_test(test_o_direct_read_fixed),
	    cmocka_unit_test(test_registration_over_memlock_is_enomem),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
