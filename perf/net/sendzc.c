/* SPDX-License-Identifier: MIT */
/*
 * perf/net/sendzc.c - where zero-copy sends pay on this machine: one TCP
 * connection over loopback (or to HOST:PORT, a sink such as `nc -l >
 * /dev/null` on another machine), a sender on io_uring pinned to CPU 1,
 * sending @mib MiB in sends of each size with IORING_OP_SEND and with
 * IORING_OP_SEND_ZC (the kernel asked to report whether it copied).  The
 * sender keeps one send in flight and up to 60 notifications owed, over
 * 64 rotating buffers, as a zero-copy user must (a buffer is reused only
 * after its notification).  Over loopback a thread on CPU 0 reads and
 * discards.
 *
 * Usage: sendzc [--mib N] [--to HOST:PORT] [SIZE...]
 *        (default 1024 MiB; sizes 4096 16384 65536 262144 1048576)
 * Prints a table: size, MiB/s and sender CPU us per send for each, the
 * ratio zero-copy/plain, and how many notifications said "copied".
 * Never fails because of speed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Linux 6.2; liburing 2.3's headers are 6.1's. */
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

#define NBUF 64
#define MAX_OWED 60

struct result {
	double mib_s, cpu_us_per_send;
	unsigned long sends, notifs, copied;
};

static void pin(int cpu)
{
	cpu_set_t s;

	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	sched_setaffinity(0, sizeof(s), &s); /* best effort: 1 CPU is fine */
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double thread_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_THREAD, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void die(const char *what, int err)
{
	/* NOLINTNEXTLINE(concurrency-mt-unsafe): one thread sends */
	fprintf(stderr, "sendzc: %s: %s\n", what, strerror(err));
	exit(1); /* NOLINT(concurrency-mt-unsafe): a benchmark gives up */
}

static void *sink_main(void *arg)
{
	static char buf[1 << 20];
	int fd = (int)(long)arg;

	pin(0);
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	return NULL;
}

/* A connected pair over loopback (the sink thread reads *@rfd), or a
 * connection to @to. */
static int connect_to(const char *to, int *rfd)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int ls, fd;
	char host[64];
	unsigned port;

	*rfd = -1;
	if (to) {
		if (sscanf(to, "%63[^:]:%u", host, &port) != 2 ||
		    inet_pton(AF_INET, host, &a.sin_addr) != 1 ||
		    port > 65535) {
			fprintf(stderr, "sendzc: --to IPV4:PORT\n");
			exit(2); /* NOLINT(concurrency-mt-unsafe): usage */
		}
		a.sin_port = htons((uint16_t)port);
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (void *)&a, sizeof(a)) < 0)
			die("connect", errno);
		return fd;
	}
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ls < 0 || bind(ls, (void *)&a, sizeof(a)) < 0 ||
	    listen(ls, 1) < 0 || getsockname(ls, (void *)&a, &len) < 0)
		die("listen", errno);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (void *)&a, sizeof(a)) < 0)
		die("connect", errno);
	*rfd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	if (*rfd < 0)
		die("accept", errno);
	close(ls);
	return fd;
}

static struct result run(const char *to, size_t size, bool zc, uint64_t bytes)
{
	struct result r = {0};
	struct io_uring ring;
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	unsigned char *buf;
	uint64_t sent = 0;
	unsigned owed = 0, k = 0, head, seen;
	bool sending = false;
	double t0, c0;
	pthread_t sink;
	int fd, rfd, ret;

	fd = connect_to(to, &rfd);
	if (rfd >= 0 &&
	    pthread_create(&sink, NULL, sink_main, (void *)(long)rfd) != 0)
		die("pthread_create", EAGAIN);
	ret = io_uring_queue_init(
	    64, &ring, IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN);
	if (ret < 0)
		die("io_uring_queue_init", -ret);
	buf = aligned_alloc(4096, size * NBUF);
	if (!buf)
		die("aligned_alloc", ENOMEM);
	memset(buf, 'z', size * NBUF);
	t0 = now_s();
	c0 = thread_cpu_s();
	while (sent < bytes || sending || owed > 0) {
		if (sent < bytes && !sending && owed < MAX_OWED) {
			sqe = io_uring_get_sqe(&ring);
			if (zc) {
				io_uring_prep_send_zc(sqe, fd,
						      buf + (k++ % NBUF) * size,
						      size, 0, 0);
				sqe->ioprio |= IORING_SEND_ZC_REPORT_USAGE;
			} else {
				io_uring_prep_send(sqe, fd,
						   buf + (k++ % NBUF) * size,
						   size, 0);
			}
			sending = true;
			r.sends++;
		}
		ret = io_uring_submit_and_wait(&ring, 1);
		if (ret < 0 && ret != -EINTR)
			die("io_uring_submit_and_wait", -ret);
		seen = 0;
		io_uring_for_each_cqe(&ring, head, cqe)
		{
			seen++;
			if (cqe->flags & IORING_CQE_F_NOTIF) {
				r.notifs++;
				owed--;
				if ((uint32_t)cqe->res &
				    IORING_NOTIF_USAGE_ZC_COPIED)
					r.copied++;
				continue;
			}
			if (cqe->res < 0)
				die("send", -cqe->res);
			sent += (uint64_t)cqe->res;
			sending = false;
			if (cqe->flags & IORING_CQE_F_MORE)
				owed++;
		}
		io_uring_cq_advance(&ring, seen);
	}
	r.cpu_us_per_send = (thread_cpu_s() - c0) * 1e6 / (double)r.sends;
	r.mib_s = (double)sent / (now_s() - t0) / 1048576.0;
	shutdown(fd, SHUT_WR);
	if (rfd >= 0) {
		pthread_join(sink, NULL);
		close(rfd);
	}
	close(fd);
	io_uring_queue_exit(&ring);
	free(buf);
	return r;
}

int main(int argc, char **argv)
{
	static const size_t dflt[] = {4096, 16384, 65536, 262144, 1048576};
	size_t sizes[32], nsizes = 0, i;
	uint64_t mib = 1024;
	const char *to = NULL;
	struct result p, z;
	int a;

	for (a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--mib") && a + 1 < argc) {
			mib = strtoull(argv[++a], NULL, 10);
		} else if (!strcmp(argv[a], "--to") && a + 1 < argc) {
			to = argv[++a];
		} else if (argv[a][0] != '-' && nsizes < 32 &&
			   strtoull(argv[a], NULL, 10) > 0) {
			sizes[nsizes++] = strtoull(argv[a], NULL, 10);
		} else {
			fprintf(stderr, "usage: sendzc [--mib N] [--to "
					"HOST:PORT] [SIZE...]\n");
			return 2;
		}
	}
	if (mib == 0) {
		fprintf(stderr, "sendzc: --mib: at least 1\n");
		return 2;
	}
	if (nsizes == 0) {
		memcpy(sizes, dflt, sizeof(dflt));
		nsizes = sizeof(dflt) / sizeof(dflt[0]);
	}
	pin(1);
	printf("%-9s %12s %12s %12s %12s %7s %14s\n", "size", "send MiB/s",
	       "us/send", "zc MiB/s", "us/send", "zc/send", "copied/notifs");
	for (i = 0; i < nsizes; i++) {
		p = run(to, sizes[i], false, mib << 20);
		z = run(to, sizes[i], true, mib << 20);
		printf("%-9zu %12.0f %12.2f %12.0f %12.2f %6.2fx %7lu/%lu\n",
		       sizes[i], p.mib_s, p.cpu_us_per_send, z.mib_s,
		       z.cpu_us_per_send, z.mib_s / p.mib_s, z.copied,
		       z.notifs);
	}
	return 0;
}
