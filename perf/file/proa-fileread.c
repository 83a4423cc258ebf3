/* SPDX-License-Identifier: MIT */
/*
 * perf/file/proa-fileread.c - random reads from one file through a proa
 * loop, the proa side of perf/file/run-file (fio's randread job, on proa):
 *
 *   proa-fileread --file PATH [--bs 4096] [--qd 32] [--seconds 3]
 *                 [--warmup 0.5] [--direct] [--fixed] [--batch 1]
 *
 * Keeps --qd reads of --bs bytes in flight with proa_op_read() at random
 * --bs-aligned offsets (fixed-seed xorshift) over the whole file; every
 * completion checks its byte count and resubmits its op at a new offset.
 * After --warmup seconds the counters restart, and after --seconds more no
 * read is resubmitted; the loop runs until the last one completes.
 *
 * --fixed registers the file (proa_loop_register_fd(), the reads name its
 * slot) and the --qd buffers as one registered buffer
 * (proa_loop_register_buffers(), reads with proa_op_read_fixed()): what
 * fio's io_uring engine does with registerfiles=1 fixedbufs=1.  A
 * registration the kernel refuses (RLIMIT_MEMLOCK) is an error, exit 1.
 *
 * --batch N holds completed reads until N are ready and resubmits them
 * together, as fio's iodepth_batch_submit=N (run-file gives both 16 from
 * QD 16).  1, the default, resubmits each in its callback.
 *
 * Prints one JSON line on stdout:
 *   {"backend":"io_uring","bs":4096,"qd":32,"direct":0,"reads":N,
 *    "seconds":S,"iops":X,"usr_us_per_read":U,"sys_us_per_read":Y,
 *    "cpu_us_per_read":U+Y,"enters_per_read":E,"fixed":F,
 *    "kernel_files":K,"kernel_bufs":B}
 * kernel_files/kernel_bufs: whether the kernel holds the registration
 * (PROA_FEAT_REG_FILES/_BUFFERS); 0 with --fixed means emulated.
 * CPU time is getrusage(RUSAGE_SELF) over the measured interval: every
 * thread of the process, so the pool's workers too on the epoll backend
 * (PROA_BACKEND=epoll), where file reads go to the thread pool.
 * Exit status: 0; 1 on a failed or short read or a setup error; 2 usage.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "proa.h"

struct slot;

struct reader {
	struct proa_loop *loop;
	int fd; /* or PROA_FIXED_FD(slot) with --fixed */
	int fixed;
	size_t bs;
	uint64_t blocks; /* file size / bs */
	uint64_t rng;
	uint64_t t_measure; /* ns: counting starts */
	uint64_t t_end;	    /* ns: no more resubmits */
	uint64_t dur_ns;    /* measured interval */
	uint64_t reads;	    /* completed since t_measure */
	uint64_t enters0;
	struct rusage ru0;
	int measuring;
	int failed;
	int inflight;
	unsigned batch;	    /* --batch */
	unsigned nheld;	    /* completed slots waiting for a batch */
	unsigned *held;	    /* [batch]: their indices in slots */
	struct slot *slots; /* [qd] */
};

struct slot {
	struct proa_op op;
	struct reader *r;
	void *buf;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t next_block(struct reader *r)
{
	uint64_t x = r->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	r->rng = x;
	return x % r->blocks;
}

static int submit(struct slot *s)
{
	struct reader *r = s->r;
	int64_t off = (int64_t)(next_block(r) * r->bs);
	int ret =
	    r->fixed ? proa_op_read_fixed(r->loop, &s->op, r->fd, s->buf, r->bs,
					  off, 0)
		     : proa_op_read(r->loop, &s->op, r->fd, s->buf, r->bs, off);

	if (ret < 0) {
		fprintf(stderr, "proa-fileread: proa_op_read%s: %s\n",
			r->fixed ? "_fixed" : "", strerror(-ret));
		r->failed = 1;
		return ret;
	}
	r->inflight++;
	return 0;
}

static void start_measuring(struct reader *r)
{
	struct proa_loop_stats st;

	r->measuring = 1;
	r->reads = 0;
	getrusage(RUSAGE_SELF, &r->ru0);
	if (proa_loop_stats(r->loop, &st) == 0)
		r->enters0 = st.enters;
}

static void on_read(struct proa_op *op)
{
	struct slot *s = proa_container_of(op, struct slot, op);
	struct reader *r = s->r;
	uint64_t t;

	r->inflight--;
	if (op->res != (int32_t)r->bs) {
		if (!r->failed)
			fprintf(stderr,
				"proa-fileread: read returned %d (%s), "
				"expected %zu\n",
				op->res,
				op->res < 0 ? strerror(-op->res) : "short",
				r->bs);
		r->failed = 1;
		return;
	}
	if (r->failed)
		return;
	t = proa_loop_time(r->loop);
	if (!r->measuring && t >= r->t_measure) {
		start_measuring(r);
		r->t_measure = now_ns();
		r->t_end = r->t_measure + r->dur_ns;
	}
	if (r->measuring)
		r->reads++;
	if (t >= r->t_end)
		return;
	if (r->batch <= 1) {
		submit(s);
		return;
	}
	/* --batch: hold completed slots until a batch is ready, then
	 * submit it at once (one io_uring_enter, one plug of the block
	 * layer), as fio's iodepth_batch_submit does. */
	r->held[r->nheld++] = (unsigned)(s - r->slots);
	if (r->nheld >= r->batch) {
		for (unsigned i = 0; i < r->nheld; i++)
			submit(&r->slots[r->held[i]]);
		r->nheld = 0;
	}
}

static double tv_us(struct timeval a, struct timeval b)
{
	return (double)(b.tv_sec - a.tv_sec) * 1e6 +
	       (double)(b.tv_usec - a.tv_usec);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: proa-fileread --file PATH [--bs N] [--qd N] "
		   "[--seconds S] [--warmup S] [--direct] [--fixed] "
		   "[--batch N]\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"file", required_argument, NULL, 'f'},
	    {"bs", required_argument, NULL, 'b'},
	    {"qd", required_argument, NULL, 'q'},
	    {"seconds", required_argument, NULL, 's'},
	    {"warmup", required_argument, NULL, 'w'},
	    {"direct", no_argument, NULL, 'd'},
	    {"fixed", no_argument, NULL, 'x'},
	    {"batch", required_argument, NULL, 'B'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *path = NULL;
	long bs = 4096, qd = 32, batch = 1;
	double seconds = 3, warmup = 0.5;
	int direct = 0, fixed = 0, c;
	unsigned char *mem;
	int file_fd;
	struct reader r;
	struct slot *slots;
	struct stat st;
	struct rusage ru1;
	struct proa_loop_stats ls;
	uint64_t t_stop, enters = 0;
	double secs, usr, sys;
	int ret;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			path = optarg;
			break;
		case 'b':
			bs = strtol(optarg, NULL, 10);
			break;
		case 'q':
			qd = strtol(optarg, NULL, 10);
			break;
		case 's':
			seconds = strtod(optarg, NULL);
			break;
		case 'w':
			warmup = strtod(optarg, NULL);
			break;
		case 'd':
			direct = 1;
			break;
		case 'x':
			fixed = 1;
			break;
		case 'B':
			batch = strtol(optarg, NULL, 10);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!path || optind != argc || bs < 512 || bs > (1 << 24) || qd < 1 ||
	    qd > 4096 || !(seconds > 0) || warmup < 0 || batch < 1 ||
	    batch > qd) {
		usage(stderr);
		return 2;
	}

	memset(&r, 0, sizeof(r));
	r.bs = (size_t)bs;
	r.batch = (unsigned)batch;
	r.rng = 0x9E3779B97F4A7C15ull;
	r.fd = open(path, O_RDONLY | O_CLOEXEC | (direct ? O_DIRECT : 0));
	if (r.fd < 0) {
		fprintf(stderr, "proa-fileread: open %s%s: %s\n", path,
			direct ? " (O_DIRECT)" : "", strerror(errno));
		return 1;
	}
	if (fstat(r.fd, &st) < 0 || st.st_size < bs) {
		fprintf(stderr, "proa-fileread: %s: smaller than one block\n",
			path);
		return 1;
	}
	r.blocks = (uint64_t)st.st_size / (uint64_t)bs;
	ret = proa_loop_new(&r.loop, NULL);
	if (ret < 0) {
		fprintf(stderr, "proa-fileread: proa_loop_new: %s\n",
			strerror(-ret));
		return 1;
	}
	slots = calloc((size_t)qd, sizeof(*slots));
	r.slots = slots;
	r.held = calloc((size_t)batch, sizeof(*r.held));
	/* One region for every slot's buffer, so that --fixed registers
	 * one buffer, as fio does. */
	if (!slots || !r.held ||
	    posix_memalign((void **)&mem, 4096, (size_t)qd * (size_t)bs) != 0) {
		fprintf(stderr, "proa-fileread: out of memory\n");
		free(slots);
		free(r.held);
		return 1;
	}
	memset(mem, 0, (size_t)qd * (size_t)bs); /* fault it in */
	for (long i = 0; i < qd; i++) {
		slots[i].r = &r;
		proa_op_init(&slots[i].op, on_read, NULL);
		slots[i].buf = mem + (size_t)i * (size_t)bs;
	}
	file_fd = r.fd;
	if (fixed) {
		struct iovec iov = {mem, (size_t)qd * (size_t)bs};

		ret = proa_loop_register_buffers(r.loop, &iov, 1);
		if (ret < 0) {
			fprintf(stderr,
				"proa-fileread: proa_loop_register_buffers "
				"(%zu bytes): %s%s\n",
				iov.iov_len, strerror(-ret),
				ret == -ENOMEM ? " (RLIMIT_MEMLOCK?)" : "");
			return 1;
		}
		ret = proa_loop_register_fd(r.loop, file_fd);
		if (ret < 0) {
			fprintf(stderr,
				"proa-fileread: proa_loop_register_fd: %s\n",
				strerror(-ret));
			return 1;
		}
		r.fd = PROA_FIXED_FD(ret);
		r.fixed = 1;
	}

	r.dur_ns = (uint64_t)(seconds * 1e9);
	r.t_measure = proa_loop_update_time(r.loop) + (uint64_t)(warmup * 1e9);
	r.t_end = r.t_measure + r.dur_ns;
	if (warmup == 0) {
		start_measuring(&r);
		r.t_measure = now_ns();
		r.t_end = r.t_measure + r.dur_ns;
	}
	for (long i = 0; i < qd; i++)
		if (submit(&slots[i]) < 0)
			break;
	ret = proa_loop_run(r.loop, PROA_RUN_DEFAULT);
	t_stop = now_ns();
	getrusage(RUSAGE_SELF, &ru1);
	if (ret < 0) {
		fprintf(stderr, "proa-fileread: proa_loop_run: %s\n",
			strerror(-ret));
		return 1;
	}
	if (proa_loop_stats(r.loop, &ls) == 0)
		enters = ls.enters - r.enters0;
	if (r.failed || !r.measuring || r.reads == 0) {
		if (!r.failed)
			fprintf(stderr, "proa-fileread: no reads measured\n");
		return 1;
	}
	secs = (double)(t_stop - r.t_measure) / 1e9;
	usr = tv_us(r.ru0.ru_utime, ru1.ru_utime);
	sys = tv_us(r.ru0.ru_stime, ru1.ru_stime);
	printf("{\"backend\":\"%s\",\"bs\":%ld,\"qd\":%ld,\"direct\":%d,"
	       "\"reads\":%llu,\"seconds\":%.3f,\"iops\":%.1f,"
	       "\"usr_us_per_read\":%.4f,\"sys_us_per_read\":%.4f,"
	       "\"cpu_us_per_read\":%.4f,\"enters_per_read\":%.4f,"
	       "\"fixed\":%d,\"kernel_files\":%d,\"kernel_bufs\":%d}\n",
	       proa_loop_backend(r.loop), bs, qd, direct,
	       (unsigned long long)r.reads, secs, (double)r.reads / secs,
	       usr / (double)r.reads, sys / (double)r.reads,
	       (usr + sys) / (double)r.reads, (double)enters / (double)r.reads,
	       fixed, proa_loop_feature(r.loop, PROA_FEAT_REG_FILES),
	       proa_loop_feature(r.loop, PROA_FEAT_REG_BUFFERS));
	if (fixed) {
		proa_loop_unregister_fd(r.loop, proa_fd_slot(r.fd));
		proa_loop_unregister_buffers(r.loop);
	}
	free(slots);
	free(r.held);
	free(mem);
	close(file_fd);
	ret = proa_loop_free(r.loop);
	if (ret < 0) {
		fprintf(stderr, "proa-fileread: proa_loop_free: %s\n",
			strerror(-ret));
		return 1;
	}
	return 0;
}
