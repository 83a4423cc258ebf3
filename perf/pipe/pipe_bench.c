/* SPDX-License-Identifier: MIT */
/*
 * perf/pipe/pipe_bench.c - pipe throughput: @mib MiB through one pipe
 * inside one loop, a writer transport on the write end and a reader on
 * the read end, on proa (proa_pipe_open(); PROA_BACKEND picks the
 * backend) and on libuv (uv_pipe_open()), with the same shape: 64 KiB
 * writes while the writer's buffer is under 256 KiB, more on
 * resume_writing / write completion; the reader counts bytes.
 *
 * Usage: pipe-bench proa|uv [MIB]   (default 1024)
 * Prints one JSON line: name, bytes, seconds, MiB/s.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <proa.h>
#ifdef PROA_PERF_HAVE_UV
#include <uv.h>
#endif

#define PIECE 65536
#define HIGH ((size_t)256 * 1024)

static unsigned char piece[PIECE];
static uint64_t total, sent, got;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- proa ---------------------------------------------------------------- */

static struct proa_transport *wt;

static void w_more(void)
{
	while (sent < total && proa_transport_write_buffer_size(wt) <= HIGH) {
		if (proa_transport_write(wt, piece, PIECE) < 0)
			abort();
		sent += PIECE;
	}
	if (sent >= total)
		proa_transport_close(wt);
}

static void w_made(struct proa_protocol *p, struct proa_transport *t)
{
	(void)p;
	wt = t;
}

static void w_data(struct proa_protocol *p, const void *d, size_t n)
{
	(void)p;
	(void)d;
	(void)n;
}

static void w_resume(struct proa_protocol *p)
{
	(void)p;
	w_more();
}

static void r_data(struct proa_protocol *p, const void *d, size_t n)
{
	(void)p;
	(void)d;
	got += n;
}

static const struct proa_protocol_ops w_ops = {
    .connection_made = w_made,
    .data_received = w_data,
    .resume_writing = w_resume,
};
static const struct proa_protocol_ops r_ops = {.data_received = r_data};

static int run_proa(void)
{
	struct proa_protocol wp = {.ops = &w_ops}, rp = {.ops = &r_ops};
	struct proa_transport_options o = {.write_high = HIGH};
	struct proa_transport *rt;
	struct proa_loop *loop;
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0 || proa_loop_new(&loop, NULL) < 0)
		return 1;
	if (proa_pipe_open(&rt, loop, p[0], -1, NULL, &rp) < 0 ||
	    proa_pipe_open(&wt, loop, -1, p[1], &o, &wp) < 0)
		return 1;
	w_more();
	if (proa_loop_run(loop, PROA_RUN_DEFAULT) < 0)
		return 1;
	proa_loop_close(loop);
	proa_loop_free(loop);
	return 0;
}

/* ---- libuv --------------------------------------------------------------- */

#ifdef PROA_PERF_HAVE_UV
static uv_pipe_t uw, ur;
static char rbuf[PIECE];

static void uv_more(void);

static void uv_wrote(uv_write_t *req, int status)
{
	free(req);
	if (status < 0)
		abort();
	uv_more();
}

static void uv_more(void)
{
	uv_buf_t b = uv_buf_init((char *)piece, PIECE);
	uv_write_t *req;

	while (sent < total &&
	       uv_stream_get_write_queue_size((uv_stream_t *)&uw) <= HIGH) {
		req = malloc(sizeof(*req));
		if (!req ||
		    uv_write(req, (uv_stream_t *)&uw, &b, 1, uv_wrote) < 0)
			abort();
		sent += PIECE;
	}
	if (sent >= total && !uv_is_closing((uv_handle_t *)&uw) &&
	    uv_stream_get_write_queue_size((uv_stream_t *)&uw) == 0)
		uv_close((uv_handle_t *)&uw, NULL);
}

static void uv_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
	(void)h;
	(void)sz;
	*b = uv_buf_init(rbuf, sizeof(rbuf));
}

static void uv_readcb(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	(void)b;
	if (n > 0)
		got += (uint64_t)n;
	else if (n < 0)
		uv_close((uv_handle_t *)s, NULL);
}

static int run_uv(void)
{
	uv_loop_t *loop = uv_default_loop();
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0)
		return 1;
	uv_pipe_init(loop, &uw, 0);
	uv_pipe_init(loop, &ur, 0);
	if (uv_pipe_open(&uw, p[1]) < 0 || uv_pipe_open(&ur, p[0]) < 0)
		return 1;
	uv_read_start((uv_stream_t *)&ur, uv_alloc, uv_readcb);
	uv_more();
	uv_run(loop, UV_RUN_DEFAULT);
	return uv_loop_close(loop) == 0 ? 0 : 1;
}
#endif /* PROA_PERF_HAVE_UV */

int main(int argc, char **argv)
{
	const char *which = argc > 1 ? argv[1] : "proa";
	uint64_t mib = argc > 2 ? strtoull(argv[2], NULL, 10) : 1024;
	const char *backend;
	char name[64];
	double t0, dt;
	int ret;

	total = mib << 20;
	memset(piece, 'x', sizeof(piece));
	t0 = now_s();
	if (strcmp(which, "proa") == 0) {
		ret = run_proa();
		/* Single-threaded: getenv is safe here. */
		/* NOLINTNEXTLINE(concurrency-mt-unsafe) */
		backend = getenv("PROA_BACKEND");
		snprintf(name, sizeof(name), "pipe/proa/%s",
			 backend ? backend : "default");
#ifdef PROA_PERF_HAVE_UV
	} else if (strcmp(which, "uv") == 0) {
		ret = run_uv();
		snprintf(name, sizeof(name), "pipe/libuv");
#endif
	} else {
		fprintf(stderr, "usage: pipe-bench proa|uv [MIB]\n");
		return 2;
	}
	dt = now_s() - t0;
	if (ret != 0 || got != total) {
		fprintf(stderr, "pipe-bench: failed (got %llu of %llu)\n",
			(unsigned long long)got, (unsigned long long)total);
		return 1;
	}
	printf("{\"name\":\"%s\",\"bytes\":%llu,\"seconds\":%.4f,"
	       "\"mib_per_s\":%.1f}\n",
	       name, (unsigned long long)total, dt, (double)mib / dt);
	return 0;
}
