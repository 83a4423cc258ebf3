/* SPDX-License-Identifier: MIT */
/*
 * test_http_chunked - the chunked-body decoder (http_chunked_parse() in
 * apps/httpd/http_parse.c): a table of bodies, each with the outcome it
 * must get (the body, where the decoder stopped, the error), checked fed
 * whole, cut in two at every position, and byte by byte; then the limits
 * at their boundaries and the calls after the end.
 *
 * The first cases are the framing defects of the decoder that lived in
 * httpd.c's body_eat(): a bare CR in the chunk-size line or extension was
 * accepted, "5;a" LF was refused or accepted depending on where the read
 * ended, and BWS before ';' was refused.
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

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define R(s) s, sizeof(s) - 1

struct chunk_case {
	const char *raw;
	size_t len;
	int ret;	  /* OK, INCOMPLETE or an error */
	size_t at;	  /* OK: the body's end; error: the bad byte */
	const char *body; /* the chunk data, concatenated */
	const char *why;
};

/* "5" CRLF "hello" CRLF "0" CRLF CRLF, with a pipelined request after */
#define HELLO "5\r\nhello\r\n0\r\n\r\n"
#define NEXT "GET / HTTP/1.1\r\n"

static const struct chunk_case cases[] = {
    /* the defects of the old decoder */
    {R("5\r\r\nhello\r\n0\r\n\r\n"), HTTP_PARSE_EEOL, 2, "",
     "bare CR after the chunk-size"},
    {R("5\rx\r\nhello\r\n0\r\n\r\n"), HTTP_PARSE_EEOL, 2, "",
     "bare CR inside the chunk-size line"},
    {R("5;a\rb\r\nhello\r\n0\r\n\r\n"), HTTP_PARSE_EEOL, 4, "",
     "bare CR in a chunk extension"},
    {R("5;a=\"x\ry\"\r\nhello\r\n0\r\n\r\n"), HTTP_PARSE_ECHUNKEXT, 6, "",
     "bare CR in a quoted extension value"},
    {R("5;a\nhello\r\n0\r\n\r\n"), HTTP_PARSE_EEOL, 3, "",
     "bare LF after an extension"},
    {R("5\nhello\r\n0\r\n\r\n"), HTTP_PARSE_EEOL, 1, "",
     "bare LF after the chunk-size"},
    {R("5 ;a\r\nhello\r\n0\r\n\r\n"), HTTP_PARSE_OK, 18, "hello",
     "BWS before ';'"},
    {R("5\t \t;a\r\nhello\r\n0\r\n\r\n"), HTTP_PARSE_OK, 20, "hello",
     "tabs and spaces before ';'"},
    /* valid */
    {R(HELLO), HTTP_PARSE_OK, 15, "hello", "one chunk"},
    {R(HELLO NEXT), HTTP_PARSE_OK, 15, "hello", "a request follows"},
    {R("0\r\n\r\n"), HTTP_PARSE_OK, 5, "", "empty body"},
    {R("000\r\n\r\n"), HTTP_PARSE_OK, 7, "", "empty body, zeros"},
    {R("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), HTTP_PARSE_OK, 26,
     "hello world", "two chunks"},
    {R("A\r\n0123456789\r\n0\r\n\r\n"), HTTP_PARSE_OK, 20, "0123456789",
     "upper-case hex"},
    {R("00000a\r\n0123456789\r\n0\r\n\r\n"), HTTP_PARSE_OK, 25, "0123456789",
     "leading zeros"},
    {R("3;x=y\r\nabc\r\n0\r\n\r\n"), HTTP_PARSE_OK, 17, "abc",
     "token extension value"},
    {R("3;x\r\nabc\r\n0;last\r\n\r\n"), HTTP_PARSE_OK, 20, "abc",
     "extension without a value, on the last chunk too"},
    {R("3 ; x = y ; z\r\nabc\r\n0\r\n\r\n"), HTTP_PARSE_OK, 25, "abc",
     "BWS around ';' and '='"},
    {R("3;x=\"a b;\\\"c\"\r\nabc\r\n0\r\n\r\n"), HTTP_PARSE_OK, 25, "abc",
     "quoted-string value with a quoted-pair"},
    {R("3;x=\"\" ;y\r\nabc\r\n0\r\n\r\n"), HTTP_PARSE_OK, 21, "abc",
     "empty quoted-string, then BWS and another"},
    {R("3;a;b=1;c\r\nabc\r\n0\r\n\r\n"), HTTP_PARSE_OK, 21, "abc",
     "several extensions"},
    {R("3\r\na\r\n\r\n0\r\n\r\n"), HTTP_PARSE_OK, 13, "a\r\n",
     "CRLF inside the data is data"},
    {R("1\r\n\x01\r\n0\r\n\r\n"), HTTP_PARSE_OK, 11, "\x01",
     "any byte is data"},
    {R("0\r\nX-A: 1\r\nx-b:\t two \r\n\r\n"), HTTP_PARSE_OK, 25, "",
     "trailers"},
    {R("0\r\nX-E:\r\n\r\n" NEXT), HTTP_PARSE_OK, 11, "",
     "empty trailer value, a request follows"},
    {R("0\r\nX-O: caf\xc3\xa9\r\n\r\n"), HTTP_PARSE_OK, 17, "",
     "obs-text in a trailer value"},
    /* incomplete */
    {R(""), HTTP_PARSE_INCOMPLETE, 0, "", "nothing yet"},
    {R("5\r\nhel"), HTTP_PARSE_INCOMPLETE, 6, "hel", "in the data"},
    {R("5\r\nhello\r\n0\r\n"), HTTP_PARSE_INCOMPLETE, 13, "hello",
     "before the trailers"},
    {R("5\r\nhello\r\n0\r\nX: 1\r\n\r"), HTTP_PARSE_INCOMPLETE, 20, "hello",
     "before the final LF"},
    /* the chunk-size */
    {R("\r\n\r\n"), HTTP_PARSE_ECHUNKSIZE, 0, "", "no chunk-size"},
    {R(" 5\r\nhello\r\n0\r\n\r\n"), HTTP_PARSE_ECHUNKSIZE, 0, "",
     "leading space"},
    {R("\t5\r\nhello\r\n0\r\n\r\n"), HTTP_PARSE_ECHUNKSIZE, 0, "",
     "leading tab"},
    {R("5 5\r\n"), HTTP_PARSE_ECHUNKEXT, 2, "", "space inside the hex"},
    {R("5 \r\nhello\r\n0\r\n\r\n"), HTTP_PARSE_ECHUNKEXT, 2, "",
     "trailing space, no extension"},
    {R("+5\r\n"), HTTP_PARSE_ECHUNKSIZE, 0, "", "sign"},
    {R("0x5\r\n"), HTTP_PARSE_ECHUNKSIZE, 1, "", "0x"},
    {R("5g\r\n"), HTTP_PARSE_ECHUNKSIZE, 1, "", "non-hex digit"},
    {R(";a\r\n"), HTTP_PARSE_ECHUNKSIZE, 0, "", "extension, no size"},
    {R("\n"), HTTP_PARSE_EEOL, 0, "", "bare LF alone"},
    /* extensions */
    {R("5;\r\n"), HTTP_PARSE_ECHUNKEXT, 2, "", "empty extension name"},
    {R("5;=b\r\n"), HTTP_PARSE_ECHUNKEXT, 2, "", "no extension name"},
    {R("5;a=\r\n"), HTTP_PARSE_ECHUNKEXT, 4, "", "empty value"},
    {R("5;a \r\n"), HTTP_PARSE_ECHUNKEXT, 4, "", "trailing BWS"},
    {R("5;a=b \r\n"), HTTP_PARSE_ECHUNKEXT, 6, "", "trailing BWS, value"},
    {R("5;a b\r\n"), HTTP_PARSE_ECHUNKEXT, 4, "", "two names"},
    {R("5;a=b c\r\n"), HTTP_PARSE_ECHUNKEXT, 6, "", "two values"},
    {R("5;a=\"b\r\n"), HTTP_PARSE_ECHUNKEXT, 6, "", "unterminated quote"},
    {R("5;a=\"b\"c\r\n"), HTTP_PARSE_ECHUNKEXT, 7, "",
     "a byte after the quote"},
    {R("5;a=\"\\\x01\"\r\n"), HTTP_PARSE_ECHUNKEXT, 6, "",
     "CTL in a quoted-pair"},
    {R("5;a\x01\r\n"), HTTP_PARSE_ECHUNKEXT, 3, "", "CTL in a name"},
    {R("5;a\x00\r\n"), HTTP_PARSE_ECHUNKEXT, 3, "", "NUL in a name"},
    {R("5;a=b\x7f\r\n"), HTTP_PARSE_ECHUNKEXT, 5, "", "DEL in a value"},
    {R("5;a=b\nhello"), HTTP_PARSE_EEOL, 5, "", "bare LF after a value"},
    {R("5;a=\"b\"\nhello"), HTTP_PARSE_EEOL, 7, "",
     "bare LF after a quoted value"},
    /* the CRLF after the data */
    {R("5\r\nhelloX\r\n"), HTTP_PARSE_ECHUNKDATA, 8, "hello",
     "data longer than the size"},
    {R("5\r\nhello\n0\r\n\r\n"), HTTP_PARSE_EEOL, 8, "hello",
     "bare LF after the data"},
    {R("5\r\nhello\rX"), HTTP_PARSE_EEOL, 9, "hello", "bare CR after the data"},
    /* trailers, like header lines */
    {R("0\r\n\n"), HTTP_PARSE_EEOL, 3, "", "bare LF for the final CRLF"},
    {R("0\r\n\rX"), HTTP_PARSE_EEOL, 4, "", "bare CR for the final CRLF"},
    {R("0\r\nX: 1\n\r\n"), HTTP_PARSE_EEOL, 7, "", "bare LF after a trailer"},
    {R("0\r\nX: 1\rY\r\n\r\n"), HTTP_PARSE_EEOL, 8, "", "bare CR in a trailer"},
    {R("0\r\nX: 1\r\n folded\r\n\r\n"), HTTP_PARSE_EOBSFOLD, 9, "", "obs-fold"},
    {R("0\r\n\tX: 1\r\n\r\n"), HTTP_PARSE_EOBSFOLD, 3, "", "whitespace first"},
    {R("0\r\nX : 1\r\n\r\n"), HTTP_PARSE_EWSCOLON, 4, "",
     "whitespace before the colon"},
    {R("0\r\n: 1\r\n\r\n"), HTTP_PARSE_EHEADER, 3, "", "empty name"},
    {R("0\r\nX\r\n\r\n"), HTTP_PARSE_EHEADER, 4, "", "no colon"},
    {R("0\r\nX\x01: 1\r\n\r\n"), HTTP_PARSE_ECTL, 4, "", "CTL in a name"},
    {R("0\r\nX: a\x00b\r\n\r\n"), HTTP_PARSE_ECTL, 7, "", "NUL in a value"},
    {R("0\r\nX: a\x7f\r\n\r\n"), HTTP_PARSE_ECTL, 7, "", "DEL in a value"},
    {R("0\r\n(: 1\r\n\r\n"), HTTP_PARSE_EHEADER, 3, "", "name not a token"},
};

struct outcome {
	int ret;
	size_t at;
	size_t body_len;
	uint64_t hash; /* FNV-1a of the whole body */
	char body[64]; /* its first bytes */
};

static void add_body(struct outcome *o, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (o->body_len < sizeof(o->body))
			o->body[o->body_len] = p[i];
		o->body_len++;
		o->hash = (o->hash ^ (unsigned char)p[i]) * 0x100000001b3ull;
	}
}

/*
 * Decode @raw[0..len) given in pieces cut at @cuts[0..ncuts) (ascending),
 * each piece in an exact-size heap copy so ASan sees any overread, with
 * the limit @max.  Stops at the first result that is not INCOMPLETE.
 */
static void decode_cut(const char *raw, size_t len, const size_t *cuts,
		       size_t ncuts, uint64_t max, struct outcome *o)
{
	struct http_chunked d;
	size_t start = 0;
	size_t k;

	memset(o, 0, sizeof(*o));
	o->ret = HTTP_PARSE_INCOMPLETE;
	o->hash = 0xcbf29ce484222325ull;
	http_chunked_init(&d, max);
	for (k = 0; k <= ncuts && o->ret == HTTP_PARSE_INCOMPLETE; k++) {
		size_t end = k < ncuts ? cuts[k] : len;
		size_t n = end - start;
		char *b = malloc(n ? n : 1);
		size_t off = 0;

		assert_non_null(b);
		memcpy(b, raw + start, n);
		do {
			struct http_span data;
			size_t used = (size_t)-1;

			o->ret = http_chunked_parse(&d, b + off, n - off, &used,
						    &data);
			assert_true(used <= n - off);
			if (data.len) {
				assert_true(data.ptr >= b + off);
				assert_true(data.ptr + data.len <=
					    b + off + used);
				add_body(o, data.ptr, data.len);
			} else {
				assert_null(data.ptr);
			}
			off += used;
			o->at = start + off;
			/* INCOMPLETE short of the end: a run was delivered */
			if (o->ret == HTTP_PARSE_INCOMPLETE && off < n)
				assert_true(data.len > 0);
		} while (o->ret == HTTP_PARSE_INCOMPLETE && off < n);
		free(b);
		start = end;
	}
}

static void decode_whole(const char *raw, size_t len, uint64_t max,
			 struct outcome *o)
{
	decode_cut(raw, len, NULL, 0, max, o);
}

static void assert_same(const struct outcome *a, const struct outcome *b,
			const char *what, size_t i, size_t cut)
{
	if (a->ret != b->ret || a->at != b->at || a->body_len != b->body_len ||
	    a->hash != b->hash)
		fail_msg("case %zu (%s) %s %zu: %s at %zu (%zu body bytes), "
			 "whole: %s at %zu (%zu)",
			 i, cases[i].why, what, cut,
			 http_parse_strerror(b->ret), b->at, b->body_len,
			 http_parse_strerror(a->ret), a->at, a->body_len);
}

static void test_chunked_table_whole_gives_expected(void **state)
{
	size_t bad = 0;
	size_t i;

	(void)state;
	for (i = 0; i < N(cases); i++) {
		const struct chunk_case *c = &cases[i];
		struct outcome o;

		decode_whole(c->raw, c->len, UINT64_MAX, &o);
		if (o.ret == c->ret && o.at == c->at &&
		    o.body_len == strlen(c->body) &&
		    memcmp(o.body, c->body, o.body_len) == 0)
			continue;
		print_error("case %zu (%s): %s at %zu, %zu body bytes; want %s "
			    "at %zu, %zu\n",
			    i, c->why, http_parse_strerror(o.ret), o.at,
			    o.body_len, http_parse_strerror(c->ret), c->at,
			    strlen(c->body));
		bad++;
	}
	assert_int_equal(bad, 0);
}

static void test_chunked_every_cut_in_two_same_as_whole(void **state)
{
	size_t i;
	size_t k;

	(void)state;
	for (i = 0; i < N(cases); i++) {
		struct outcome whole;
		struct outcome o;

		decode_whole(cases[i].raw, cases[i].len, UINT64_MAX, &whole);
		for (k = 0; k <= cases[i].len; k++) {
			decode_cut(cases[i].raw, cases[i].len, &k, 1,
				   UINT64_MAX, &o);
			assert_same(&whole, &o, "cut at", i, k);
		}
	}
}

static void test_chunked_byte_by_byte_same_as_whole(void **state)
{
	size_t cuts[128];
	size_t i;
	size_t k;

	(void)state;
	for (k = 0; k < N(cuts); k++)
		cuts[k] = k + 1;
	for (i = 0; i < N(cases); i++) {
		struct outcome whole;
		struct outcome o;
		size_t n = cases[i].len;

		assert_true(n <= N(cuts));
		decode_whole(cases[i].raw, n, UINT64_MAX, &whole);
		decode_cut(cases[i].raw, n, cuts, n ? n - 1 : 0, UINT64_MAX,
			   &o);
		assert_same(&whole, &o, "byte by byte, pieces", i, n);
	}
}

/*
 * The three defects, as plain accept / refuse, so this test reads the
 * same against any decoder behind the API: a bare CR is refused, bare LF
 * is refused wherever the read ends, BWS before ';' is accepted.
 */
static void test_chunked_rfc9112_framing_defects(void **state)
{
	static const char bare_cr[] = "5\r\r\nhello\r\n0\r\n\r\n";
	static const char ext_cr[] = "5;a\rb\r\nhello\r\n0\r\n\r\n";
	static const char bare_lf[] = "5;a\nhello\r\n0\r\n\r\n";
	static const char bws[] = "5 ;a\r\nhello\r\n0\r\n\r\n";
	size_t cut = 3; /* the LF starts the second read */
	struct outcome o;

	(void)state;
	decode_whole(R(bare_cr), UINT64_MAX, &o);
	assert_true(o.ret < 0);
	decode_whole(R(ext_cr), UINT64_MAX, &o);
	assert_true(o.ret < 0);
	decode_whole(R(bare_lf), UINT64_MAX, &o);
	assert_true(o.ret < 0);
	decode_cut(R(bare_lf), &cut, 1, UINT64_MAX, &o);
	assert_true(o.ret < 0);
	decode_whole(R(bws), UINT64_MAX, &o);
	assert_int_equal(o.ret, HTTP_PARSE_OK);
	assert_int_equal(o.body_len, 5);
}

/* Copy @s without its NUL (the buffers here are byte strings). */
static size_t put(char *dst, const char *s)
{
	size_t n = strlen(s);
	size_t i;

	for (i = 0; i < n; i++)
		dst[i] = s[i];
	return n;
}

/* "<size>" CRLF, size bytes of 'x', CRLF "0" CRLF CRLF into @buf. */
static size_t make_body(char *buf, size_t cap, const char *size_line,
			size_t size)
{
	size_t n = strlen(size_line);

	assert_true(n + size + 9 <= cap);
	n = put(buf, size_line);
	n += put(buf + n, "\r\n");
	memset(buf + n, 'x', size);
	n += size;
	return n + put(buf + n, "\r\n0\r\n\r\n");
}

static void test_chunked_max_body_at_its_boundary(void **state)
{
	char buf[128];
	struct outcome o;
	size_t n;

	(void)state;
	n = make_body(buf, sizeof(buf), "10", 16);
	decode_whole(buf, n, 16, &o);
	assert_int_equal(o.ret, HTTP_PARSE_OK);
	assert_int_equal(o.at, n);
	decode_whole(buf, n, 15, &o);
	assert_int_equal(o.ret, HTTP_PARSE_EBODYLONG);
	assert_int_equal(o.at, 1); /* the digit that passes it */
	/* the sum of the chunks counts, not each */
	decode_whole(R("8\r\nxxxxxxxx\r\n8\r\nxxxxxxxx\r\n1\r\n"), 16, &o);
	assert_int_equal(o.ret, HTTP_PARSE_EBODYLONG);
	assert_int_equal(o.at, 26);
	decode_whole(R("0\r\n\r\n"), 0, &o);
	assert_int_equal(o.ret, HTTP_PARSE_OK);
	decode_whole(R("1\r\n"), 0, &o);
	assert_int_equal(o.ret, HTTP_PARSE_EBODYLONG);
	assert_int_equal(http_parse_status(HTTP_PARSE_EBODYLONG), 413);
}

static void test_chunked_size_over_64_bits_refused(void **state)
{
	struct outcome o;

	(void)state;
	/* 16 digits fit (the size is refused later, by max_body) */
	decode_whole(R("ffffffffffffffff\r\n"), UINT64_MAX, &o);
	assert_int_equal(o.ret, HTTP_PARSE_INCOMPLETE);
	decode_whole(R("0000ffffffffffffffff\r\n"), UINT64_MAX, &o);
	assert_int_equal(o.ret, HTTP_PARSE_INCOMPLETE);
	decode_whole(R("10000000000000000\r\n"), UINT64_MAX, &o);
	assert_int_equal(o.ret, HTTP_PARSE_ECHUNKBIG);
	assert_int_equal(o.at, 16);
	decode_whole(R("ffffffffffffffff0\r\n"), UINT64_MAX, &o);
	assert_int_equal(o.ret, HTTP_PARSE_ECHUNKBIG);
	assert_int_equal(o.at, 16);
}

/* A size line of exactly @n bytes: "1;" then 'a's. */
static char *size_line(size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memcpy(s, "1;", 2);
	memset(s + 2, 'a', n - 2);
	s[n] = '\0';
	return s;
}

static void test_chunked_line_and_trailer_limits(void **state)
{
	static char buf[HTTP_CHUNK_TRAILER_MAX + 64];
	struct outcome o;
	char *s;
	size_t n;

	(void)state;
	s = size_line(HTTP_CHUNK_LINE_MAX);
	n = make_body(buf, sizeof(buf), s, 1);
	decode_whole(buf, n, UINT64_MAX, &o);
	assert_int_equal(o.ret, HTTP_PARSE_OK);
	free(s);
	s = size_line(HTTP_CHUNK_LINE_MAX + 1);
	n = make_body(buf, sizeof(buf), s, 1);
	decode_whole(buf, n, UINT64_MAX, &o);
	assert_int_equal(o.ret, HTTP_PARSE_ECHUNKLONG);
	assert_int_equal(o.at, HTTP_CHUNK_LINE_MAX);
	free(s);
	/* leading zeros count against the line too */
	memset(buf, '0', HTTP_CHUNK_LINE_MAX + 1);
	decode_whole(buf, HTTP_CHUNK_LINE_MAX + 1, UINT64_MAX, &o);
	assert_int_equal(o.ret, HTTP_PARSE_ECHUNKLONG);

	/* a trailer section of exactly HTTP_CHUNK_TRAILER_MAX bytes */
	n = HTTP_CHUNK_TRAILER_MAX - 2 - 2;
	put(buf, "0\r\nX:");
	memset(buf + 5, 'v', n - 2);
	put(buf + 3 + n, "\r\n\r\n");
	decode_whole(buf, 3 + n + 4, UINT64_MAX, &o);
	assert_int_equal(o.ret, HTTP_PARSE_OK);
	assert_int_equal(o.at, 3 + HTTP_CHUNK_TRAILER_MAX);
	buf[3 + n] = 'v';
	put(buf + 3 + n + 1, "\r\n\r\n");
	decode_whole(buf, 3 + n + 5, UINT64_MAX, &o);
	assert_int_equal(o.ret, HTTP_PARSE_ETRAILERLONG);
	assert_int_equal(o.at, 3 + HTTP_CHUNK_TRAILER_MAX);
}

/* Framing past max_body + HTTP_CHUNK_SLACK: one-byte chunks, 5 bytes of
 * framing each, with a small max_body. */
static void test_chunked_framing_bounded_by_slack(void **state)
{
	size_t chunks = HTTP_CHUNK_SLACK / 5 + 16;
	size_t len = chunks * 6;
	char *buf = malloc(len);
	struct outcome o;
	size_t i;

	(void)state;
	assert_non_null(buf);
	for (i = 0; i < chunks; i++)
		put(buf + 6 * i, "1\r\nx\r\n");
	decode_whole(buf, len, UINT64_MAX, &o);
	assert_int_equal(o.ret, HTTP_PARSE_INCOMPLETE);
	decode_whole(buf, len, chunks, &o);
	assert_int_equal(o.ret, HTTP_PARSE_EBODYLONG);
	free(buf);
}

static void test_chunked_after_end_or_error_nothing_more(void **state)
{
	struct http_chunked d;
	struct http_span data;
	size_t used;

	(void)state;
	http_chunked_init(&d, 100);
	assert_int_equal(
	    http_chunked_parse(&d, R("0\r\n\r\nGET"), &used, &data),
	    HTTP_PARSE_OK);
	assert_int_equal(used, 5);
	assert_int_equal(http_chunked_parse(&d, R("GET"), &used, &data),
			 HTTP_PARSE_OK);
	assert_int_equal(used, 0);
	assert_null(data.ptr);

	http_chunked_init(&d, 100);
	assert_int_equal(http_chunked_parse(&d, R("5\r\r"), &used, &data),
			 HTTP_PARSE_EEOL);
	assert_int_equal(used, 2);
	assert_int_equal(http_chunked_parse(&d, R("\nhello"), &used, &data),
			 HTTP_PARSE_EEOL);
	assert_int_equal(used, 0);
	assert_null(data.ptr);

	/* a run of data per call: the second begins the next call */
	http_chunked_init(&d, 100);
	assert_int_equal(
	    http_chunked_parse(&d, R("1\r\na\r\n1\r\nb\r\n"), &used, &data),
	    HTTP_PARSE_INCOMPLETE);
	assert_int_equal(used, 9);
	assert_int_equal(data.len, 1);
	assert_int_equal(data.ptr[0], 'a');
}

static void test_chunked_errors_have_status_and_text(void **state)
{
	int e;

	(void)state;
	for (e = HTTP_PARSE_EBODYLONG; e <= HTTP_PARSE_INCOMPLETE; e++)
		assert_string_not_equal(http_parse_strerror(e),
					"unknown error");
	for (e = HTTP_PARSE_ETRAILERLONG; e <= HTTP_PARSE_ECHUNKSIZE; e++)
		assert_int_equal(http_parse_status(e), 400);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_chunked_table_whole_gives_expected),
	    cmocka_unit_test(test_chunked_every_cut_in_two_same_as_whole),
	    cmocka_unit_test(test_chunked_byte_by_byte_same_as_whole),
	    cmocka_unit_test(test_chunked_rfc9112_framing_defects),
	    cmocka_unit_test(test_chunked_max_body_at_its_boundary),
	    cmocka_unit_test(test_chunked_size_over_64_bits_refused),
	    cmocka_unit_test(test_chunked_line_and_trailer_limits),
	    cmocka_unit_test(test_chunked_framing_bounded_by_slack),
	    cmocka_unit_test(test_chunked_after_end_or_error_nothing_more),
	    cmocka_unit_test(test_chunked_errors_have_status_and_text),
	};

	return cmocka_run_group_tests_name("http.chunked", tests, NULL, NULL);
}
