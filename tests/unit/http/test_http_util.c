/* SPDX-License-Identifier: MIT */
/*
 * test_http_util - proa-httpd's pure helpers (apps/httpd/http_util.c):
 * request targets to safe relative paths (traversal in every spelling),
 * Range, If-None-Match, HTTP dates both ways, media types.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "http_util.h"

#define R2(s) s, sizeof(s) - 1

/* Fields in reading order: a table of test cases. */
struct path_case { /* NOLINT(clang-analyzer-optin.performance.Padding) */
	const char *target;
	int status;
	const char *path; /* when status is 0 */
	bool dir;
};

static const struct path_case path_cases[] = {
    {"/", 0, "", true},
    {"/index.html", 0, "index.html", false},
    {"/a/b/c.txt", 0, "a/b/c.txt", false},
    {"/a/b/", 0, "a/b", true},
    {"//a///b", 0, "a/b", false},
    {"/./a/./b/.", 0, "a/b", true},
    {"/.", 0, "", true},
    {"/%2e", 0, "", true},
    {"/%2E?x", 0, "", true},
    {"/a/%2e", 0, "a", true},
    {"/a/.b", 0, "a/.b", false},
    {"/a?x=/../../etc", 0, "a", false},
    {"/a#frag", 0, "a", false},
    {"/%61%62c", 0, "abc", false},
    {"/a%20b", 0, "a b", false},
    {"/%25", 0, "%", false},
    {"/%252e%252e/x", 0, "%2e%2e/x", false},
    {"/...", 0, "...", false},
    {"/..a", 0, "..a", false},
    {"/a..", 0, "a..", false},
    {"http://host/a/b", 0, "a/b", false},
    {"HTTPS://host:443/", 0, "", true},
    {"/..", 403, NULL, false},
    {"/../etc/passwd", 403, NULL, false},
    {"/a/../../b", 403, NULL, false},
    {"/a/../b", 403, NULL, false},
    {"/%2e%2e/x", 403, NULL, false},
    {"/%2E%2e/x", 403, NULL, false},
    {"/.%2e", 403, NULL, false},
    {"/a/%2e./b", 403, NULL, false},
    {"/a%2f..%2fb", 400, NULL, false},
    {"/a%00b", 400, NULL, false},
    {"/a%", 400, NULL, false},
    {"/a%4", 400, NULL, false},
    {"/a%zz", 400, NULL, false},
    {"*", 400, NULL, false},
    {"a/b", 400, NULL, false},
    {"", 400, NULL, false},
    {"http://host", 400, NULL, false},
    {"http://host?x", 400, NULL, false},
};

static void test_target_path(void **state)
{
	char out[HTTP_PATH_MAX + 1];
	bool dir;

	(void)state;
	for (size_t i = 0; i < sizeof(path_cases) / sizeof(path_cases[0]);
	     i++) {
		const struct path_case *c = &path_cases[i];
		int ret =
		    http_target_path(c->target, strlen(c->target), out, &dir);

		if (ret != c->status)
			fail_msg("'%s': %d, want %d", c->target, ret,
				 c->status);
		if (ret == 0) {
			if (strcmp(out, c->path) != 0 || dir != c->dir)
				fail_msg("'%s': '%s' dir %d, want '%s' dir %d",
					 c->target, out, dir, c->path, c->dir);
		}
	}
}

static void test_target_path_long(void **state)
{
	static char t[HTTP_PATH_MAX + 10], out[HTTP_PATH_MAX + 1];
	bool dir;

	(void)state;
	t[0] = '/';
	memset(t + 1, 'a', HTTP_PATH_MAX);
	assert_int_equal(http_target_path(t, HTTP_PATH_MAX + 1, out, &dir), 0);
	assert_int_equal(strlen(out), HTTP_PATH_MAX);
	t[HTTP_PATH_MAX + 1] = 'a';
	assert_int_equal(http_target_path(t, HTTP_PATH_MAX + 2, out, &dir),
			 414);
	/* Escapes decode to fewer bytes: the limit is on the decoded path. */
	memset(t + 1, 'a', HTTP_PATH_MAX - 3);
	/* A target is given with its length: no NUL after the escape. */
	/* NOLINTNEXTLINE(bugprone-not-null-terminated-result) */
	memcpy(t + HTTP_PATH_MAX - 2, "%41", 3);
	assert_int_equal(http_target_path(t, HTTP_PATH_MAX + 1, out, &dir), 0);
	assert_int_equal(strlen(out), HTTP_PATH_MAX - 2);
}

struct range_case {
	const char *v;
	uint64_t size;
	enum http_range_result r;
	uint64_t first, last;
};

static const struct range_case range_cases[] = {
    {"bytes=0-0", 10, HTTP_RANGE_OK, 0, 0},
    {"bytes=2-5", 10, HTTP_RANGE_OK, 2, 5},
    {"bytes=2-", 10, HTTP_RANGE_OK, 2, 9},
    {"bytes=2-100", 10, HTTP_RANGE_OK, 2, 9},
    {"bytes=-3", 10, HTTP_RANGE_OK, 7, 9},
    {"bytes=-30", 10, HTTP_RANGE_OK, 0, 9},
    {"Bytes=1-1", 10, HTTP_RANGE_OK, 1, 1},
    {"bytes= 1-2 ", 10, HTTP_RANGE_OK, 1, 2},
    {"bytes=10-", 10, HTTP_RANGE_UNSAT, 0, 0},
    {"bytes=10-20", 10, HTTP_RANGE_UNSAT, 0, 0},
    {"bytes=-0", 10, HTTP_RANGE_UNSAT, 0, 0},
    {"bytes=0-", 0, HTTP_RANGE_UNSAT, 0, 0},
    /* RFC 9110 14.1.1: a non-zero suffix is satisfiable even then, and
     * the answer is the whole (empty) file */
    {"bytes=-5", 0, HTTP_RANGE_NONE, 0, 0},
    {"bytes=-1", 0, HTTP_RANGE_NONE, 0, 0},
    {"bytes=-0", 0, HTTP_RANGE_UNSAT, 0, 0},
    {"bytes=-1,-2", 0, HTTP_RANGE_MULTI, 0, 0},
    {"bytes=0-1,3-4", 10, HTTP_RANGE_MULTI, 0, 0},
    {"bytes=0-1, 20-30", 10, HTTP_RANGE_MULTI, 0, 0},
    {"bytes=20-30,40-50", 10, HTTP_RANGE_UNSAT, 0, 0},
    {"bytes=5-2", 10, HTTP_RANGE_INVALID, 0, 0},
    {"bytes=-", 10, HTTP_RANGE_INVALID, 0, 0},
    {"bytes=a-b", 10, HTTP_RANGE_INVALID, 0, 0},
    {"bytes=1-2,", 10, HTTP_RANGE_INVALID, 0, 0},
    {"items=1-2", 10, HTTP_RANGE_INVALID, 0, 0},
    {"bytes=1", 10, HTTP_RANGE_INVALID, 0, 0},
    /* past 2^64 - 1: unsatisfiable (nginx), not ignored */
    {"bytes=99999999999999999999-", 10, HTTP_RANGE_UNSAT, 0, 0},
    {"bytes=18446744073709551616-", 10, HTTP_RANGE_UNSAT, 0, 0},
    {"bytes=0-18446744073709551616", 10, HTTP_RANGE_UNSAT, 0, 0},
    {"bytes=-99999999999999999999", 10, HTTP_RANGE_UNSAT, 0, 0},
    {"bytes=99999999999999999999", 10, HTTP_RANGE_UNSAT, 0, 0},
    {"bytes=0-1,99999999999999999999-", 10, HTTP_RANGE_UNSAT, 0, 0},
    /* 19 and 20 digits that fit */
    {"bytes=18446744073709551615-", 10, HTTP_RANGE_UNSAT, 0, 0},
    {"bytes=0000000000000000002-6", 10, HTTP_RANGE_OK, 2, 6},
    {"bytes=2-18446744073709551615", 10, HTTP_RANGE_OK, 2, 9},
    {"bytes=-18446744073709551615", 10, HTTP_RANGE_OK, 0, 9},
};

static void test_range(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(range_cases) / sizeof(range_cases[0]);
	     i++) {
		const struct range_case *c = &range_cases[i];
		uint64_t f = 77, l = 77;
		enum http_range_result r =
		    http_range(c->v, strlen(c->v), c->size, &f, &l);

		if (r != c->r)
			fail_msg("'%s' size %llu: %d, want %d", c->v,
				 (unsigned long long)c->size, r, c->r);
		if (r == HTTP_RANGE_OK && (f != c->first || l != c->last))
			fail_msg("'%s': %llu-%llu, want %llu-%llu", c->v,
				 (unsigned long long)f, (unsigned long long)l,
				 (unsigned long long)c->first,
				 (unsigned long long)c->last);
	}
}

static void test_expect(void **state)
{
	(void)state;
	assert_true(http_expect_ok(R2("100-continue")));
	assert_true(http_expect_ok(R2("100-Continue")));
	assert_true(http_expect_ok(R2(" 100-continue , ,100-CONTINUE ")));
	assert_true(http_expect_ok(R2("")));
	assert_false(http_expect_ok(R2("teapot")));
	assert_false(http_expect_ok(R2("100-continue, x=y")));
	assert_false(http_expect_ok(R2("100-continuex")));
	assert_false(http_expect_ok(R2("100-continue;a=b")));
	assert_false(http_expect_ok(R2("100-contin")));
}

static void test_log_escape(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(http_log_escape(out, sizeof(out), R2("/a b?c=d")), 8);
	assert_string_equal(out, "/a b?c=d");
	http_log_escape(out, sizeof(out), R2("/q\"\\x\""));
	assert_string_equal(out, "/q\\x22\\x5Cx\\x22");
	http_log_escape(out, sizeof(out), R2("a\r\n\x01\x7f\xff\tz"));
	assert_string_equal(out, "a\\x0D\\x0A\\x01\\x7F\\xFF\\x09z");
	/* cut before an escape that does not fit, never inside one */
	assert_int_equal(http_log_escape(out, 6, R2("ab\"cd")), 2);
	assert_string_equal(out, "ab");
	assert_int_equal(http_log_escape(out, 7, R2("ab\"cd")), 6);
	assert_string_equal(out, "ab\\x22");
	assert_int_equal(http_log_escape(out, 1, R2("abc")), 0);
	assert_string_equal(out, "");
}

static void test_etag(void **state)
{
	const char *e = "\"abc\"";
#define M(v) http_etag_match(v, strlen(v), e)
	(void)state;
	assert_true(M("\"abc\""));
	assert_true(M("W/\"abc\""));
	assert_true(M("*"));
	assert_true(M(" \"x\", \"abc\" "));
	assert_true(M("\"x\",W/\"abc\""));
	assert_false(M("\"abcd\""));
	assert_false(M("\"ab\""));
	assert_false(M("abc"));
	assert_false(M("\"abc"));
	assert_false(M(""));
	assert_false(M("*, \"abc\""));
	assert_false(M("\"x\" \"abc\""));
#undef M
#define S(v) http_etag_match_strong(v, strlen(v), e)
	/* If-Match: the strong comparison; a weak tag matches nothing */
	assert_true(S("\"abc\""));
	assert_true(S("*"));
	assert_true(S("W/\"x\", \"abc\""));
	assert_false(S("W/\"abc\""));
	assert_false(S("\"abcd\""));
	assert_false(S(""));
#undef S
}

static void test_dates(void **state)
{
	char buf[30];
	time_t t;

	(void)state;
	assert_int_equal(http_date_format(784111777, buf), 29);
	assert_string_equal(buf, "Sun, 06 Nov 1994 08:49:37 GMT");
	assert_true(http_date_parse(buf, 29, &t));
	assert_int_equal(t, 784111777);
	assert_true(http_date_parse(R2("Sunday, 06-Nov-94 08:49:37 GMT"), &t));
	assert_int_equal(t, 784111777);
	assert_true(http_date_parse(R2("Sun Nov  6 08:49:37 1994"), &t));
	assert_int_equal(t, 784111777);
	http_date_format(0, buf);
	assert_string_equal(buf, "Thu, 01 Jan 1970 00:00:00 GMT");
	http_date_format(951782400, buf); /* a leap day */
	assert_string_equal(buf, "Tue, 29 Feb 2000 00:00:00 GMT");
	assert_true(http_date_parse(buf, 29, &t));
	assert_int_equal(t, 951782400);
	/* every day for 200 years round-trips */
	for (time_t d = 0; d < 73050; d += 7) {
		time_t in = d * 86400 + 3723, out;

		http_date_format(in, buf);
		assert_true(http_date_parse(buf, 29, &out));
		assert_int_equal(in, out);
	}
	assert_false(http_date_parse(R2("Sun, 06 Nov 1994 08:49:37 UTC"), &t));
	assert_false(http_date_parse(R2("Sun, 31 Feb 1994 08:49:37 GMT"), &t));
	assert_false(http_date_parse(R2("Sun, 06 Foo 1994 08:49:37 GMT"), &t));
	assert_false(http_date_parse(R2("Sun, 06 Nov 1994 24:49:37 GMT"), &t));
	assert_false(http_date_parse(R2("yesterday"), &t));
	assert_false(http_date_parse(R2(""), &t));
}

static void test_mime(void **state)
{
#define T(p) http_mime_type(p, strlen(p))
	(void)state;
	assert_string_equal(T("a/index.html"), "text/html; charset=utf-8");
	assert_string_equal(T("x.CSS"), "text/css; charset=utf-8");
	assert_string_equal(T("x.png"), "image/png");
	assert_string_equal(T("x.tar.gz"), "application/gzip");
	assert_string_equal(T("x.unknown"), "application/octet-stream");
	assert_string_equal(T("a.d/noext"), "application/octet-stream");
	assert_string_equal(T("html"), "application/octet-stream");
	assert_string_equal(T(""), "application/octet-stream");
#undef T
	assert_string_equal(http_reason(416), "Range Not Satisfiable");
	assert_string_equal(http_reason(999), "Unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_target_path),
	    cmocka_unit_test(test_target_path_long),
	    cmocka_unit_test(test_range),
	    cmocka_unit_test(test_expect),
	    cmocka_unit_test(test_log_escape),
	    cmocka_unit_test(test_etag),
	    cmocka_unit_test(test_dates),
	    cmocka_unit_test(test_mime),
	};

	return cmocka_run_group_tests_name("http.util", tests, NULL, NULL);
}
