/* SPDX-License-Identifier: MIT */
/*
 * fuzz_http_chunked - libFuzzer target for proa-httpd's chunked-body
 * decoder (http_chunked_parse() in apps/httpd/http_parse.c).
 *
 * Input: two bytes choosing the cut, one choosing max_body, then the body
 * bytes.  Each body is decoded whole, cut in two at the chosen point, and
 * (when short) one byte at a time; the outcome - result, offset where the
 * decoder stopped, body length and a hash of the body - must be the same
 * every way, or the target aborts.  Along the way: every call consumes at
 * most what it was given, its data lies inside what it consumed, the
 * body never passes max_body, and the result is OK, INCOMPLETE or an
 * error with a status and a text.
 *
 * Each piece is an exact-size heap copy, so ASan catches a read past it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct outcome {
	int ret;
	size_t at;
	uint64_t body_len;
	uint64_t hash;
};

static void check(bool ok)
{
	if (!ok)
		abort();
}

/* Feed one piece; false once the decoder stopped (OK or an error). */
static bool feed(struct http_chunked *d, const uint8_t *p, size_t n,
		 size_t start, uint64_t max, struct outcome *o)
{
	char *b = malloc(n ? n : 1);
	size_t off = 0;
	size_t i;

	check(b != NULL);
	memcpy(b, p, n);
	do {
		struct http_span sp;
		size_t used = (size_t)-1;

		o->ret = http_chunked_parse(d, b + off, n - off, &used, &sp);
		check(used <= n - off);
		check(o->ret == HTTP_PARSE_OK ||
		      o->ret == HTTP_PARSE_INCOMPLETE ||
		      (o->ret < 0 && http_parse_status(o->ret) >= 400));
		check(http_parse_strerror(o->ret) != NULL);
		if (sp.len) {
			check(sp.ptr >= b + off &&
			      sp.ptr + sp.len <= b + off + used);
			for (i = 0; i < sp.len; i++)
				o->hash = (o->hash ^ (unsigned char)sp.ptr[i]) *
					  0x100000001b3ull;
			o->body_len += sp.len;
			check(o->body_len <= max);
		} else {
			check(sp.ptr == NULL);
		}
		/* INCOMPLETE short of the end only after a run of data */
		check(o->ret != HTTP_PARSE_INCOMPLETE || used == n - off ||
		      sp.len > 0);
		off += used;
		o->at = start + off;
	} while (o->ret == HTTP_PARSE_INCOMPLETE && off < n);
	free(b);
	return o->ret == HTTP_PARSE_INCOMPLETE;
}

static void decode(const uint8_t *p, size_t len, size_t cut, size_t step,
		   uint64_t max, struct outcome *o)
{
	struct http_chunked d;
	size_t k;

	memset(o, 0, sizeof(*o));
	o->ret = HTTP_PARSE_INCOMPLETE;
	o->hash = 0xcbf29ce484222325ull;
	http_chunked_init(&d, max);
	if (step) {
		for (k = 0; k < len; k += step)
			if (!feed(&d, p + k, len - k < step ? len - k : step, k,
				  max, o))
				break;
		return;
	}
	if (feed(&d, p, cut, 0, max, o))
		feed(&d, p + cut, len - cut, cut, max, o);
}

static void check_same(const struct outcome *a, const struct outcome *b)
{
	check(a->ret == b->ret);
	check(a->at == b->at);
	check(a->body_len == b->body_len);
	check(a->hash == b->hash);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outcome whole;
	struct outcome o;
	uint64_t max;
	size_t cut;

	if (size < 3)
		return 0;
	cut = (size_t)data[0] | (size_t)data[1] << 8;
	/* small limits reach EBODYLONG and the framing slack */
	max = data[2] == 0xff ? UINT64_MAX : (uint64_t)data[2] * 4;
	data += 3;
	size -= 3;
	cut %= size + 1;

	decode(data, size, size, 0, max, &whole);
	check(whole.at <= size);
	check(whole.ret != HTTP_PARSE_INCOMPLETE || whole.at == size);
	decode(data, size, cut, 0, max, &o);
	check_same(&whole, &o);
	if (size <= 512) {
		decode(data, size, 0, 1, max, &o);
		check_same(&whole, &o);
	}
	return 0;
}
