/* SPDX-License-Identifier: MIT */
/*
 * fuzz_http_parse - libFuzzer target for the proa-httpd request-head
 * parser (apps/httpd/http_parse.c).  For each input, with the default
 * limits and with small ones that make every limit reachable:
 *
 *   - the result is OK, INCOMPLETE or an error with a status and a text;
 *   - on OK, *consumed <= len and every pointer stored in the request
 *     (method, target, header names and values, the interpreted spans)
 *     lies inside the head; parsing just the head gives OK again with the
 *     same *consumed;
 *   - a prefix gives INCOMPLETE or the same result as the whole (every
 *     prefix for short inputs, a sample of them for long ones).
 *
 * Each parse reads from an exact-size heap copy, so ASan catches a read
 * past buf + len.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct http_request req;

static void check(bool ok)
{
	if (!ok)
		abort();
}

static void check_span(const char *p, size_t n, const char *b, size_t c)
{
	if (!p)
		return;
	check(p >= b && p + n <= b + c);
}

static int parse(const uint8_t *data, size_t len, const struct http_limits *lim,
		 size_t *consumed)
{
	char *b = malloc(len ? len : 1);
	size_t i;
	int ret;

	check(b != NULL);
	memcpy(b, data, len);
	*consumed = (size_t)-1;
	ret = http_parse_request(b, len, lim, &req, consumed);
	check(ret == HTTP_PARSE_OK || ret == HTTP_PARSE_INCOMPLETE ||
	      (ret < 0 && http_parse_status(ret) >= 400));
	check(http_parse_strerror(ret) != NULL);
	if (ret == HTTP_PARSE_OK) {
		size_t c = *consumed;

		check(c <= len && c >= 4);
		check(!memcmp(b + c - 4, "\r\n\r\n", 4));
		check(req.version == 10 || req.version == 11);
		check(req.nheaders <= HTTP_MAX_HEADERS);
		check(req.content_length >= -1);
		check(!(req.chunked && req.content_length >= 0));
		check_span(req.method_name.ptr, req.method_name.len, b, c);
		check_span(req.target.ptr, req.target.len, b, c);
		check_span(req.host.ptr, req.host.len, b, c);
		check_span(req.range.ptr, req.range.len, b, c);
		check_span(req.expect.ptr, req.expect.len, b, c);
		check_span(req.if_none_match.ptr, req.if_none_match.len, b, c);
		check_span(req.if_modified_since.ptr, req.if_modified_since.len,
			   b, c);
		for (i = 0; i < req.nheaders; i++) {
			check(req.headers[i].name_len > 0);
			check_span(req.headers[i].name, req.headers[i].name_len,
				   b, c);
			check_span(req.headers[i].value,
				   req.headers[i].value_len, b, c);
		}
	} else {
		check(*consumed == (size_t)-1);
	}
	free(b);
	return ret;
}

static void run(const uint8_t *data, size_t size, const struct http_limits *lim)
{
	size_t consumed;
	size_t pc;
	size_t step;
	size_t k;
	int want = parse(data, size, lim, &consumed);

	if (want == HTTP_PARSE_OK) {
		check(parse(data, consumed, lim, &pc) == HTTP_PARSE_OK);
		check(pc == consumed);
	}
	step = size <= 256 ? 1 : size / 128;
	for (k = 0; k < size; k += step) {
		int ret = parse(data, k, lim, &pc);

		if (want == HTTP_PARSE_OK && k < consumed)
			check(ret == HTTP_PARSE_INCOMPLETE);
		else
			check(ret == HTTP_PARSE_INCOMPLETE || ret == want);
		if (ret == HTTP_PARSE_OK)
			check(pc == consumed);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct http_limits small = {24, 160, 4};

	run(data, size, NULL);
	run(data, size, &small);
	return 0;
}
