/* SPDX-License-Identifier: MIT */
/*
 * test_http_parse - the request-head parser (apps/httpd/http_parse.c):
 * a table of valid heads and the fields they must yield, a table of
 * malformed and smuggling heads and the status each must get, limits at
 * their boundaries, pipelining, and feeding every head one byte at a time.
 *
 * test_http_diff.c includes this file with HTTP_CORPUS_ONLY defined to
 * reuse the two tables (valid_cases, bad_cases) as its corpus.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "http_parse.h"

#define R(s) s, sizeof(s) - 1

/* Fields in reading order: a table of five cases. */
struct valid_case { /* NOLINT(clang-analyzer-optin.performance.Padding) */
	const char *raw;
	size_t len;
	enum http_method method;
	int version;
	bool keep_alive;
	int64_t content_length;
	bool chunked;
	size_t nheaders;
	const char *host; /* NULL: no Host */
};

struct bad_case {
	const char *raw;
	size_t len;
	int status;
	const char *why;
};

#define H11 "Host: a\r\n"

static const struct valid_case valid_cases[] = {
    {R("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), HTTP_METHOD_GET, 11, true, -1,
     false, 1, "a"},
    {R("HEAD /x HTTP/1.0\r\n\r\n"), HTTP_METHOD_HEAD, 10, false, -1, false, 0,
     NULL},
    {R("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), HTTP_METHOD_GET, 10,
     true, -1, false, 1, NULL},
    {R("GET / HTTP/1.0\r\nConnection: Keep-Alive, close\r\n\r\n"),
     HTTP_METHOD_GET, 10, false, -1, false, 1, NULL},
    {R("GET / HTTP/1.1\r\n" H11 "Connection: close\r\n\r\n"), HTTP_METHOD_GET,
     11, false, -1, false, 2, "a"},
    {R("GET / HTTP/1.1\r\n" H11 "Connection: Upgrade,  CLOSE \r\n\r\n"),
     HTTP_METHOD_GET, 11, false, -1, false, 2, "a"},
    {R("GET / HTTP/1.1\r\n" H11 "Connection: keep-alive\r\n"
       "Connection: TE\r\n\r\n"),
     HTTP_METHOD_GET, 11, true, -1, false, 3, "a"},
    {R("GET /a/b.html?q=1 HTTP/1.1\r\nhOsT: example.com:8080\r\n"
       "Range: bytes=0-99\r\nIf-None-Match: \"abc\", W/\"d\"\r\n"
       "If-Modified-Since: Sat, 29 Oct 1994 19:43:31 GMT\r\n\r\n"),
     HTTP_METHOD_GET, 11, true, -1, false, 4, "example.com:8080"},
    {R("GET / HTTP/1.1\r\nHost: [::1]:80\r\nUser-Agent: curl/8.0\r\n"
       "Accept: */*\r\nAccept-Encoding: gzip, br\r\n"
       "Accept-Language: en\r\nCache-Control: no-cache\r\n"
       "Cookie: a=b; c=d\r\nDNT: 1\r\nPragma: no-cache\r\n"
       "Referer: http://x/\r\nUpgrade-Insecure-Requests: 1\r\n"
       "X-Forwarded-For: 10.0.0.1\r\nX-A: 1\r\nX-B: 2\r\nX-C: 3\r\n"
       "X-D: 4\r\nX-E: 5\r\nX-F: 6\r\nX-G: 7\r\nX-H: 8\r\n\r\n"),
     HTTP_METHOD_GET, 11, true, -1, false, 20, "[::1]:80"},
    {R("\r\n\r\nGET / HTTP/1.1\r\n" H11 "\r\n"), HTTP_METHOD_GET, 11, true, -1,
     false, 1, "a"},
    {R("POST /f HTTP/1.1\r\n" H11 "Content-Length: 5\r\n\r\n"),
     HTTP_METHOD_POST, 11, true, 5, false, 2, "a"},
    {R("PUT /f HTTP/1.1\r\n" H11 "Content-Length: 0\r\n\r\n"), HTTP_METHOD_PUT,
     11, true, 0, false, 2, "a"},
    {R("POST /f HTTP/1.1\r\n" H11
       "Content-Length: 9223372036854775807\r\n\r\n"),
     HTTP_METHOD_POST, 11, true, INT64_MAX, false, 2, "a"},
    {R("POST /f HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n\r\n"),
     HTTP_METHOD_POST, 11, true, -1, true, 2, "a"},
    {R("POST /f HTTP/1.1\r\n" H11 "Transfer-Encoding: gzip, Chunked\r\n"
       "\r\n"),
     HTTP_METHOD_POST, 11, true, -1, true, 2, "a"},
    {R("FOO / HTTP/1.1\r\n" H11 "\r\n"), HTTP_METHOD_UNKNOWN, 11, true, -1,
     false, 1, "a"},
    {R("DELETE /x HTTP/1.1\r\n" H11 "X-Empty:\r\nX-Sp:   \r\n\r\n"),
     HTTP_METHOD_DELETE, 11, true, -1, false, 3, "a"},
    {R("GET / HTTP/1.1\r\n" H11 "X-T:\ta\tb \xff\xfe \r\n\r\n"),
     HTTP_METHOD_GET, 11, true, -1, false, 2, "a"},
    {R("OPTIONS * HTTP/1.1\r\n" H11 "\r\n"), HTTP_METHOD_OPTIONS, 11, true, -1,
     false, 1, "a"},
    {R("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n"),
     HTTP_METHOD_CONNECT, 11, true, -1, false, 1, "a.example:443"},
    {R("PATCH /p HTTP/1.1\r\n" H11 "Expect: 100-continue\r\n"
       "Content-Length: 3\r\n\r\n"),
     HTTP_METHOD_PATCH, 11, true, 3, false, 3, "a"},
    {R("TRACE / HTTP/1.1\r\nHost:\r\n\r\n"), HTTP_METHOD_TRACE, 11, true, -1,
     false, 1, ""},
    {R("GET http://a.example/b?c=d HTTP/1.1\r\nHost: a.example\r\n\r\n"),
     HTTP_METHOD_GET, 11, true, -1, false, 1, "a.example"},
    {R("GET /%7e~!$&'()*+,;=:@[] HTTP/1.1\r\n" H11
       "X!#$%&'*+-.^_`|~: v\r\n\r\n"),
     HTTP_METHOD_GET, 11, true, -1, false, 2, "a"},
};

static const struct bad_case bad_cases[] = {
    /* smuggling: framing */
    {R("POST / HTTP/1.1\r\n" H11 "Content-Length: 5\r\n"
       "Transfer-Encoding: chunked\r\n\r\n"),
     400, "CL+TE"},
    {R("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n"
       "Content-Length: 5\r\n\r\n"),
     400, "TE+CL"},
    {R("POST / HTTP/1.1\r\n" H11 "Content-Length: 5\r\n"
       "Content-Length: 5\r\n\r\n"),
     400, "CL,CL equal"},
    {R("POST / HTTP/1.1\r\n" H11 "Content-Length: 5\r\n"
       "Content-Length: 6\r\n\r\n"),
     400, "CL,CL different"},
    {R("POST / HTTP/1.1\r\n" H11 "Content-Length: 5, 5\r\n\r\n"), 400,
     "CL list"},
    {R("POST / HTTP/1.1\r\n" H11 "Content-Length: +5\r\n\r\n"), 400,
     "CL sign +"},
    {R("POST / HTTP/1.1\r\n" H11 "Content-Length: -5\r\n\r\n"), 400,
     "CL sign -"},
    {R("POST / HTTP/1.1\r\n" H11 "Content-Length: 5 5\r\n\r\n"), 400,
     "CL inner space"},
    {R("POST / HTTP/1.1\r\n" H11 "Content-Length: 0x5\r\n\r\n"), 400, "CL hex"},
    {R("POST / HTTP/1.1\r\n" H11 "Content-Length:\r\n\r\n"), 400, "CL empty"},
    {R("POST / HTTP/1.1\r\n" H11 "Content-Length: 9223372036854775808\r\n\r\n"),
     400, "CL int64 overflow"},
    {R("POST / HTTP/1.1\r\n" H11
       "Content-Length: 99999999999999999999999\r\n\r\n"),
     400, "CL overflow"},
    {R("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: gzip\r\n\r\n"), 400,
     "TE gzip"},
    {R("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked, gzip\r\n"
       "\r\n"),
     400, "TE chunked not final"},
    {R("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked, chunked\r\n\r\n"),
     400, "TE chunked twice"},
    {R("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked;q=1\r\n"
       "\r\n"),
     400, "TE with parameter"},
    {R("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: , chunked\r\n\r\n"), 400,
     "TE empty element"},
    {R("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n"
       "Transfer-Encoding: chunked\r\n\r\n"),
     400, "TE twice"},
    {R("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: xchunked\r\n\r\n"), 400,
     "TE xchunked"},
    {R("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400,
     "TE in HTTP/1.0"},
    /* field syntax */
    {R("GET / HTTP/1.1\r\n" H11 "X: a\r\n b\r\n\r\n"), 400, "obs-fold"},
    {R("GET / HTTP/1.1\r\n" H11 "X: a\r\n\tb\r\n\r\n"), 400, "obs-fold HTAB"},
    {R("GET / HTTP/1.1\r\n " H11 "\r\n"), 400, "first line folded"},
    {R("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), 400, "SP before colon"},
    {R("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"), 400, "HTAB before colon"},
    {R("GET / HTTP/1.1\r\n" H11 ": a\r\n\r\n"), 400, "empty name"},
    {R("GET / HTTP/1.1\r\n" H11 "Foo\r\n\r\n"), 400, "no colon"},
    {R("GET / HTTP/1.1\r\n" H11 "F(o): a\r\n\r\n"), 400, "bad name char"},
    {R("GET / HTTP/1.1\r\n" H11 "X: a\x01"
       "b\r\n\r\n"),
     400, "CTL in value"},
    {R("GET / HTTP/1.1\r\n" H11 "X: a\x7f"
       "b\r\n\r\n"),
     400, "DEL in value"},
    {R("GET / HTTP/1.1\r\n" H11 "X: a\x1b[0m\r\n\r\n"), 400, "ESC in value"},
    {R("GET / HTTP/1.1\r\n" H11 "X: a\0b\r\n\r\n"), 400, "NUL in value"},
    {R("GET / HTTP/1.1\r\n" H11 "X\0: a\r\n\r\n"), 400, "NUL in name"},
    {R("GET /\0 HTTP/1.1\r\n" H11 "\r\n"), 400, "NUL in target"},
    {R("G\0T / HTTP/1.1\r\n" H11 "\r\n"), 400, "NUL in method"},
    {R("GET / HTTP/1.1\r\n" H11 "X: a\rb\r\n\r\n"), 400, "bare CR in value"},
    {R("GET / HTTP/1.1\r\n" H11 "X: a\r\r\n\r\n"), 400, "CR CR LF"},
    {R("GET / HTTP/1.1\r\n" H11 "X: a\nY: b\r\n\r\n"), 400, "bare LF in value"},
    {R("GET / HTTP/1.1\n" H11 "\r\n"), 400, "bare LF request line"},
    {R("GET / HTTP/1.1\r\nHost: a\n\n"), 400, "bare LF everywhere"},
    {R("GET / HTTP/1.1\r\n" H11 "\n"), 400, "bare LF final line"},
    {R("GET / HTTP/1.1\r\n" H11 "\rX"), 400, "bare CR final line"},
    {R("GET / HTTP/1.1\r" H11 "\r\n"), 400, "bare CR request line"},
    /* Host */
    {R("GET / HTTP/1.1\r\n\r\n"), 400, "missing Host in 1.1"},
    {R("GET / HTTP/1.1\r\nX: y\r\n\r\n"), 400, "missing Host, others"},
    {R("GET / HTTP/1.1\r\n" H11 "Host: b\r\n\r\n"), 400, "two Hosts"},
    {R("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), 400, "Host with SP"},
    {R("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), 400, "Host with /"},
    {R("GET / HTTP/1.1\r\nHost: a@b\r\n\r\n"), 400, "Host with @"},
    {R("GET / HTTP/1.1\r\n" H11 "Range: bytes=0-1\r\n"
       "Range: bytes=2-3\r\n\r\n"),
     400, "two Ranges"},
    /* request line */
    {R("GET / HTTP/2.0\r\n" H11 "\r\n"), 505, "HTTP/2.0"},
    {R("GET / HTTP/1.2\r\n" H11 "\r\n"), 505, "HTTP/1.2"},
    {R("GET / HTTP/0.9\r\n\r\n"), 505, "HTTP/0.9"},
    {R("GET / HTTP/3.1\r\n" H11 "\r\n"), 505, "HTTP/3.1"},
    {R("GET / http/1.1\r\n" H11 "\r\n"), 400, "lower-case http"},
    {R("GET / HTTP/1.10\r\n" H11 "\r\n"), 400, "HTTP/1.10"},
    {R("GET / HTTP/11\r\n" H11 "\r\n"), 400, "HTTP/11"},
    {R("GET / HTTP/1.1 \r\n" H11 "\r\n"), 400, "SP after version"},
    {R("GET /\r\n" H11 "\r\n"), 400, "no version"},
    {R("GET  / HTTP/1.1\r\n" H11 "\r\n"), 400, "two SPs"},
    {R("GET / x HTTP/1.1\r\n" H11 "\r\n"), 400, "SP in target"},
    {R(" GET / HTTP/1.1\r\n" H11 "\r\n"), 400, "leading SP"},
    {R("GET\t/ HTTP/1.1\r\n" H11 "\r\n"), 400, "HTAB separator"},
    {R("G@T / HTTP/1.1\r\n" H11 "\r\n"), 400, "bad method char"},
    {R("GET /\x7f HTTP/1.1\r\n" H11 "\r\n"), 400, "DEL in target"},
    {R("GET /\xc3\xa9 HTTP/1.1\r\n" H11 "\r\n"), 400, "non-ASCII in target"},
    {R("GET /\x01 HTTP/1.1\r\n" H11 "\r\n"), 400, "CTL in target"},
    {R("\r\r\nGET / HTTP/1.1\r\n" H11 "\r\n"), 400, "leading bare CR"},
    {R("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), 400, "TLS ClientHello"},
};

#ifndef HTTP_CORPUS_ONLY

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Parse from an exact-size heap copy, so ASan sees any overread. */
static int parse_copy(const char *raw, size_t len,
		      const struct http_limits *lim, struct http_request *req,
		      size_t *consumed, char **copy)
{
	char *b = malloc(len ? len : 1);

	assert_non_null(b);
	memcpy(b, raw, len);
	*copy = b;
	return http_parse_request(b, len, lim, req, consumed);
}

static void check_header_ptrs(const struct http_request *req, const char *b,
			      size_t consumed)
{
	size_t i;

	for (i = 0; i < req->nheaders; i++) {
		const struct http_header *h = &req->headers[i];

		assert_true(h->name >= b);
		assert_true(h->name + h->name_len <= b + consumed);
		assert_true(h->value >= b);
		assert_true(h->value + h->value_len <= b + consumed);
	}
}

/*
 * Every prefix of @raw[0..len) parses INCOMPLETE or gives @want; when
 * @want is OK, exactly the prefixes shorter than @want_consumed are
 * INCOMPLETE.
 */
static void check_prefixes(const char *raw, size_t len,
			   const struct http_limits *lim, int want,
			   size_t want_consumed)
{
	struct http_request *req = malloc(sizeof(*req));
	size_t k;

	assert_non_null(req);
	for (k = 0; k < len; k++) {
		size_t consumed = (size_t)-1;
		char *b;
		int ret = parse_copy(raw, k, lim, req, &consumed, &b);

		if (want == HTTP_PARSE_OK && k < want_consumed) {
			if (ret != HTTP_PARSE_INCOMPLETE)
				fail_msg("prefix %zu/%zu: %s", k, len,
					 http_parse_strerror(ret));
		} else if (ret != HTTP_PARSE_INCOMPLETE && ret != want) {
			fail_msg("prefix %zu/%zu: %s, whole: %s", k, len,
				 http_parse_strerror(ret),
				 http_parse_strerror(want));
		}
		if (ret == HTTP_PARSE_OK)
			assert_int_equal(consumed, want_consumed);
		free(b);
	}
	free(req);
}

static void test_valid(void **state)
{
	struct http_request *req = malloc(sizeof(*req));
	size_t i;

	assert_non_null(req);
	for (i = 0; i < N(valid_cases); i++) {
		const struct valid_case *c = &valid_cases[i];
		size_t consumed = 0;
		char *b;
		int ret = parse_copy(c->raw, c->len, NULL, req, &consumed, &b);

		if (ret != HTTP_PARSE_OK)
			fail_msg("valid case %zu: %s", i,
				 http_parse_strerror(ret));
		assert_int_equal(consumed, c->len);
		assert_int_equal(req->method, c->method);
		assert_int_equal(req->version, c->version);
		assert_int_equal(req->keep_alive, c->keep_alive);
		assert_int_equal(req->content_length, c->content_length);
		assert_int_equal(req->chunked, c->chunked);
		assert_int_equal(req->nheaders, c->nheaders);
		if (c->host) {
			assert_non_null(req->host.ptr);
			assert_int_equal(req->host.len, strlen(c->host));
			assert_memory_equal(req->host.ptr, c->host,
					    req->host.len);
		} else {
			assert_null(req->host.ptr);
		}
		assert_true(req->target.ptr > b &&
			    req->target.ptr + req->target.len < b + c->len);
		check_header_ptrs(req, b, consumed);
		free(b);
	}
	free(req);
}

static bool span_is(struct http_span sp, const char *s)
{
	return sp.ptr && sp.len == strlen(s) && !memcmp(sp.ptr, s, sp.len);
}

static void test_fields(void **state)
{
	static const char raw[] =
	    "GET /a/b.html?q=1 HTTP/1.1\r\nhOsT: example.com:8080\r\n"
	    "Range:  bytes=0-99 \r\nIf-None-Match: \"abc\"\r\n"
	    "If-None-Match: W/\"d\"\r\n"
	    "If-Modified-Since: Sat, 29 Oct 1994 19:43:31 GMT\r\n"
	    "Expect: 100-Continue\r\nX-Empty:\r\n\r\n";
	struct http_request req;
	size_t consumed;

	assert_int_equal(
	    http_parse_request(raw, sizeof(raw) - 1, NULL, &req, &consumed),
	    HTTP_PARSE_OK);
	assert_true(span_is(req.method_name, "GET"));
	assert_true(span_is(req.target, "/a/b.html?q=1"));
	assert_true(span_is(req.range, "bytes=0-99"));
	assert_true(span_is(req.if_none_match, "\"abc\""));
	assert_true(
	    span_is(req.if_modified_since, "Sat, 29 Oct 1994 19:43:31 GMT"));
	assert_true(span_is(req.expect, "100-Continue"));
	assert_true(req.expect_continue);
	assert_int_equal(req.nheaders, 7);
	assert_int_equal(req.headers[0].name_len, 4);
	assert_memory_equal(req.headers[0].name, "hOsT", 4);
	assert_int_equal(req.headers[6].value_len, 0);
	assert_false(req.chunked);
	assert_false(req.te_other);

	static const char te[] = "POST / HTTP/1.1\r\nHost: a\r\n"
				 "Transfer-Encoding: gzip , chunked\r\n\r\n";
	assert_int_equal(
	    http_parse_request(te, sizeof(te) - 1, NULL, &req, &consumed),
	    HTTP_PARSE_OK);
	assert_true(req.chunked);
	assert_true(req.te_other);

	static const char unk[] = "get / HTTP/1.0\r\n\r\n";
	assert_int_equal(
	    http_parse_request(unk, sizeof(unk) - 1, NULL, &req, &consumed),
	    HTTP_PARSE_OK);
	assert_int_equal(req.method, HTTP_METHOD_UNKNOWN);
	assert_true(span_is(req.method_name, "get"));
}

static void test_bad(void **state)
{
	struct http_request *req = malloc(sizeof(*req));
	size_t i;

	assert_non_null(req);
	for (i = 0; i < N(bad_cases); i++) {
		const struct bad_case *c = &bad_cases[i];
		size_t consumed = 12345;
		char *b;
		int ret = parse_copy(c->raw, c->len, NULL, req, &consumed, &b);

		if (ret >= 0 || http_parse_status(ret) != c->status)
			fail_msg("bad case %zu (%s): got %d (%s), want %d", i,
				 c->why, http_parse_status(ret),
				 http_parse_strerror(ret), c->status);
		assert_int_equal(consumed, 12345);
		free(b);
	}
	free(req);
}

/* Every valid head fed one byte at a time; every bad head likewise. */
static void test_incremental(void **state)
{
	size_t i;

	for (i = 0; i < N(valid_cases); i++)
		check_prefixes(valid_cases[i].raw, valid_cases[i].len, NULL,
			       HTTP_PARSE_OK, valid_cases[i].len);
	for (i = 0; i < N(bad_cases); i++) {
		struct http_request req;
		size_t consumed;
		int want = http_parse_request(
		    bad_cases[i].raw, bad_cases[i].len, NULL, &req, &consumed);

		check_prefixes(bad_cases[i].raw, bad_cases[i].len, NULL, want,
			       0);
	}
}

static void test_pipelined(void **state)
{
	static const char raw[] = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
				  "HEAD /2 HTTP/1.0\r\nConnection: keep-alive"
				  "\r\n\r\nGET /3 HTTP/1.1\r\nHo";
	struct http_request req;
	size_t len = sizeof(raw) - 1;
	size_t off = 0;
	size_t consumed;

	assert_int_equal(http_parse_request(raw, len, NULL, &req, &consumed),
			 HTTP_PARSE_OK);
	assert_true(consumed < len);
	assert_true(span_is(req.target, "/1"));
	off += consumed;
	assert_int_equal(
	    http_parse_request(raw + off, len - off, NULL, &req, &consumed),
	    HTTP_PARSE_OK);
	assert_int_equal(req.method, HTTP_METHOD_HEAD);
	assert_true(span_is(req.target, "/2"));
	assert_true(req.keep_alive);
	off += consumed;
	assert_int_equal(
	    http_parse_request(raw + off, len - off, NULL, &req, &consumed),
	    HTTP_PARSE_INCOMPLETE);
}

/* A head built of @n field lines "X-<i>: <vlen x 'v'>" and a target. */
static char *build(size_t target_len, size_t n, size_t vlen, size_t *len)
{
	size_t cap = 64 + target_len + n * (vlen + 32);
	char *b = malloc(cap);
	size_t o;
	size_t i;

	assert_non_null(b);
	o = (size_t)sprintf(b, "GET /");
	memset(b + o, 'a', target_len - 1);
	o += target_len - 1;
	o += (size_t)sprintf(b + o, " HTTP/1.1\r\nHost: a\r\n");
	for (i = 0; i < n; i++) {
		o += (size_t)sprintf(b + o, "X-%zu: ", i);
		memset(b + o, 'v', vlen);
		o += vlen;
		o += (size_t)sprintf(b + o, "\r\n");
	}
	o += (size_t)sprintf(b + o, "\r\n");
	assert_true(o < cap);
	*len = o;
	return b;
}

static int parse_built(size_t target_len, size_t n, size_t vlen,
		       const struct http_limits *lim)
{
	struct http_request req;
	size_t consumed;
	size_t len;
	char *b = build(target_len, n, vlen, &len);
	int ret = http_parse_request(b, len, lim, &req, &consumed);

	free(b);
	return ret;
}

static void test_limits(void **state)
{
	struct http_limits small = {32, 256, 4};
	char *b;
	size_t len;

	/* defaults: target 8200 -> 414; 8 KiB header -> 431; 100 headers
	 * (Host + 99) ok, 101 -> 431; head over 16 KiB -> 431 */
	assert_int_equal(http_parse_status(parse_built(8200, 0, 0, NULL)), 414);
	assert_int_equal(parse_built(8000, 0, 0, NULL), HTTP_PARSE_OK);
	assert_int_equal(http_parse_status(parse_built(1, 1, 8200, NULL)), 431);
	assert_int_equal(parse_built(1, 99, 1, NULL), HTTP_PARSE_OK);
	assert_int_equal(http_parse_status(parse_built(1, 100, 1, NULL)), 431);
	assert_int_equal(parse_built(1, 3, 5000, NULL), HTTP_PARSE_OK);
	assert_int_equal(parse_built(1, 4, 5000, NULL), HTTP_PARSE_EHEADLONG);

	/* boundaries: "GET /aaa HTTP/1.1" is 13 + target bytes long */
	assert_int_equal(parse_built(32 - 13, 0, 0, &small), HTTP_PARSE_OK);
	assert_int_equal(parse_built(33 - 13, 0, 0, &small),
			 HTTP_PARSE_ETARGETLONG);
	/* "X-0: " is 5 bytes */
	assert_int_equal(parse_built(1, 1, 27, &small), HTTP_PARSE_OK);
	assert_int_equal(parse_built(1, 1, 28, &small), HTTP_PARSE_ELINELONG);
	assert_int_equal(parse_built(1, 3, 1, &small), HTTP_PARSE_OK);
	assert_int_equal(parse_built(1, 4, 1, &small), HTTP_PARSE_ETOOMANY);
	/* max_headers above the array size is capped */
	small.max_headers = 1000;
	small.max_line = 8192;
	small.max_head = 1 << 20;
	assert_int_equal(parse_built(1, 100, 1, &small), HTTP_PARSE_ETOOMANY);

	/* head exactly max_head bytes is fine, one more is not */
	b = build(1, 2, 10, &len);
	small = (struct http_limits){64, len, 10};
	{
		struct http_request req;
		size_t consumed;

		assert_int_equal(
		    http_parse_request(b, len, &small, &req, &consumed),
		    HTTP_PARSE_OK);
		small.max_head = len - 1;
		assert_int_equal(
		    http_parse_request(b, len, &small, &req, &consumed),
		    HTTP_PARSE_EHEADLONG);
		/* and without the last byte it is already known too long */
		assert_int_equal(
		    http_parse_request(b, len - 1, &small, &req, &consumed),
		    HTTP_PARSE_EHEADLONG);
		assert_int_equal(
		    http_parse_request(b, len - 2, &small, &req, &consumed),
		    HTTP_PARSE_INCOMPLETE);
	}
	check_prefixes(b, len, &small, HTTP_PARSE_EHEADLONG, 0);
	free(b);
	/* an unterminated huge line is refused before the head is complete */
	b = build(9000, 0, 0, &len);
	check_prefixes(b, 8300, NULL, HTTP_PARSE_ETARGETLONG, 0);
	free(b);
}

static void test_misc(void **state)
{
	struct http_request req;
	size_t consumed;
	int e;

	assert_int_equal(http_parse_request(NULL, 0, NULL, &req, &consumed),
			 HTTP_PARSE_INCOMPLETE);
	assert_int_equal(http_parse_request("x", 1, NULL, NULL, &consumed),
			 HTTP_PARSE_EINVAL);
	assert_int_equal(http_parse_status(HTTP_PARSE_OK), 0);
	assert_int_equal(http_parse_status(HTTP_PARSE_INCOMPLETE), 0);
	assert_int_equal(http_parse_status(HTTP_PARSE_EVERSION), 505);
	for (e = HTTP_PARSE_EVERSION; e <= HTTP_PARSE_INCOMPLETE; e++)
		assert_string_not_equal(http_parse_strerror(e),
					"unknown error");
	assert_string_equal(http_parse_strerror(-1000), "unknown error");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid),
	    cmocka_unit_test(test_fields),
	    cmocka_unit_test(test_bad),
	    cmocka_unit_test(test_incremental),
	    cmocka_unit_test(test_pipelined),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_misc),
	};

	return cmocka_run_group_tests_name("http.parse", tests, NULL, NULL);
}

#endif /* HTTP_CORPUS_ONLY */
