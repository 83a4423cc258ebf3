/* SPDX-License-Identifier: MIT */
/*
 * http_util.h - the pure pieces of proa-httpd that turn a parsed request
 * into a file and a response: the target to a safe relative path, Range,
 * entity tags, HTTP dates, media types, reason phrases.  Plain C11 + libc,
 * no state, no allocation, so each is unit-tested alone.
 *
 * Thread: any, every function (no shared state).
 */
#ifndef HTTP_UTIL_H
#define HTTP_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Longest relative path http_target_path() produces (without the NUL). */
#define HTTP_PATH_MAX 4095

/**
 * http_target_path() - the file a request target names, as a path
 * relative to the served root.
 * @target, @len: the raw request target (origin-form "/a/b?q", or
 *        absolute-form "http://host/a/b"); the query is dropped.
 * @out:  at least HTTP_PATH_MAX + 1 bytes: the decoded path without a
 *        leading '/', "." segments and repeated slashes removed ("" for
 *        the root).  A trailing slash is kept off but reported.
 * @dir:  set when the target ends in '/' or in a "." segment (a
 *        directory was asked for: "/." is the root).
 *
 * Percent-decoding is done once: "%2e%2e" is "..", and a "%25" stays a
 * literal '%' that is never decoded again.
 *
 * Return: 0; 400 for a target that is not a path ("*", no leading '/'),
 *         a bad percent escape, or a NUL (literal or %00); 403 for a ".."
 *         segment, however it was spelt; 414 when the decoded path is
 *         longer than HTTP_PATH_MAX.
 */
int http_target_path(const char *target, size_t len, char *out, bool *dir);

enum http_range_result {
	HTTP_RANGE_NONE,    /* no usable Range: answer 200 with everything */
	HTTP_RANGE_OK,	    /* one satisfiable range: 206 */
	HTTP_RANGE_UNSAT,   /* no range overlaps the file: 416 */
	HTTP_RANGE_MULTI,   /* several ranges: answered 200 with everything */
	HTTP_RANGE_INVALID, /* malformed: ignored (RFC 9110 14.2), 200 */
};

/**
 * http_range() - interpret a Range value for a representation of @size
 * bytes: "bytes=a-b", "bytes=a-", "bytes=-n" (case-insensitive unit,
 * optional whitespace around commas).  On HTTP_RANGE_OK, [*@first,
 * *@last] are the bytes to send, @last clipped to @size - 1.
 *
 * As nginx: a well-formed range that starts past the end (or a suffix
 * of 0) is HTTP_RANGE_UNSAT, and so is a number that does not fit in 64
 * bits, wherever it is; a malformed value (other unit, no dash, last <
 * first, junk) is HTTP_RANGE_INVALID, which RFC 9110 14.2 lets the
 * server ignore.  Unlike nginx, and as RFC 9110 14.1.1 says, a suffix of
 * non-zero length is satisfiable even when @size is 0: that is
 * HTTP_RANGE_NONE (answer 200 with the empty file), since no
 * Content-Range can state an empty range.
 */
enum http_range_result http_range(const char *v, size_t len, uint64_t size,
				  uint64_t *first, uint64_t *last);

/**
 * http_expect_ok() - whether an Expect field value @v (one line's; a
 * list) asks only for "100-continue" (case-insensitive, empty elements
 * and whitespace allowed).  Anything else is an expectation the server
 * cannot meet: 417 (RFC 9110 10.1.1).
 */
bool http_expect_ok(const char *v, size_t len);

/**
 * http_log_escape() - @src[0..@len) made safe for a quoted field of a log
 * line, as nginx's escape=default: '"', '\\', control bytes and bytes
 * from 0x7f as "\xHH", so that no field can end early or a line split.
 * @dst: @cap bytes; the result is cut before an escape that does not fit,
 *       and NUL-terminated (@cap > 0).
 * Return: the bytes written, without the NUL.
 */
size_t http_log_escape(char *dst, size_t cap, const char *src, size_t len);

/**
 * http_etag_match() - whether an If-None-Match list @v (one field line's
 * value) matches @etag (a strong tag with its quotes) by the weak
 * comparison: "*" matches, W/"x" matches "x".  A malformed list matches
 * nothing.
 */
bool http_etag_match(const char *v, size_t len, const char *etag);

/**
 * http_etag_match_strong() - the same for an If-Match list, by the strong
 * comparison: a weak tag (W/"x") matches nothing.
 */
bool http_etag_match_strong(const char *v, size_t len, const char *etag);

/**
 * http_date_parse() - an HTTP-date: IMF-fixdate ("Sun, 06 Nov 1994
 * 08:49:37 GMT"), and the obsolete RFC 850 and asctime forms.
 * Return: true and *@out, or false for anything else.
 */
bool http_date_parse(const char *s, size_t len, time_t *out);

/** http_date_format() - IMF-fixdate of @t into @out (30 bytes, with NUL);
 * returns 29. */
size_t http_date_format(time_t t, char out[30]);

/** http_mime_type() - the Content-Type for a path, by its extension. */
const char *http_mime_type(const char *path, size_t len);

/** http_reason() - the reason phrase of @status ("Unknown" otherwise). */
const char *http_reason(int status);

#ifdef __cplusplus
}
#endif

#endif /* HTTP_UTIL_H */
