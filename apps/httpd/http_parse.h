/* SPDX-License-Identifier: MIT */
/*
 * http_parse.h - strict, bounded, allocation-free HTTP/1.x request-head
 * parser for proa-httpd.  Plain C11 + libc: no dependency on the rest of
 * proa, so it can be unit-tested and fuzzed alone.
 *
 * Decisions (RFC 9112 allows leniency in several places; we take none of
 * it, because every lenient reading is a request-smuggling seam):
 *   - Line endings are CRLF only.  A bare LF or a CR not followed by LF is
 *     400.  Empty lines (CRLF only) before the request line are skipped
 *     (RFC 9112 2.2) and count towards max_head and *consumed.
 *   - The method is a token, matched case-sensitively.  A valid token that
 *     is not a known method parses as HTTP_METHOD_UNKNOWN (the server
 *     answers 501); an invalid token is 400.
 *   - The target is 1*(VCHAR): CTL, SP, DEL and bytes >= 0x80 are 400.  Its
 *     form and percent-encoding are the server's business.
 *   - The version is exactly "HTTP/" DIGIT "." DIGIT; 1.0 and 1.1 are
 *     accepted, every other version (0.9, 1.2, 2.0...) is 505.
 *   - obs-fold (a field line starting with SP/HTAB), whitespace between a
 *     field name and its colon, an empty name, CTLs (other than HTAB) or
 *     NUL in a value are 400.  obs-text (0x80-0xff) is allowed in values.
 *   - Content-Length is 1*DIGIT fitting in int64_t; a sign, inner space, a
 *     list ("5, 5") or a duplicate line -- even with an equal value -- is
 *     400.
 *   - Transfer-Encoding: one field line, a list of plain tokens (no
 *     parameters, no empty elements) whose final element is "chunked" and
 *     in which "chunked" appears once; anything else is 400, as is
 *     Transfer-Encoding with Content-Length, or in an HTTP/1.0 request.
 *     Codings before "chunked" set @te_other (the server answers 501).
 *   - Host: required in HTTP/1.1; more than one, or a value with a byte
 *     outside reg-name / IP-literal / port characters, is 400.
 *   - Range and If-Modified-Since are singletons: a duplicate is 400.
 *     If-None-Match, Expect and Connection are lists that may recur: the
 *     span points to the first line; walk headers[] for all of them.
 *   - Limits: the request line and each field line (without CRLF) are at
 *     most max_line bytes (over: 414 while in the target or version, 400
 *     in the method, 431 for a field line); the whole head, through the
 *     final CRLF, is at most max_head bytes (431); at most max_headers
 *     field lines (431).
 *
 * Errors are reported at the first byte that makes the head invalid, so
 * a prefix of any input gives either HTTP_PARSE_INCOMPLETE or the same
 * result as the whole input.
 */
#ifndef HTTP_PARSE_H
#define HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HTTP_MAX_HEADERS 100 /* size of http_request.headers[] */

struct http_limits {
	size_t max_line;    /* request line or field line, without CRLF */
	size_t max_head;    /* the whole head, through the final CRLF */
	size_t max_headers; /* field lines; capped at HTTP_MAX_HEADERS */
};

/* 8 KiB line, 16 KiB head, 100 field lines.  A zero field means this. */
#define HTTP_LIMITS_DEFAULT                                                    \
	{                                                                      \
		8192, 16384, HTTP_MAX_HEADERS                                  \
	}

enum http_method {
	HTTP_METHOD_UNKNOWN = 0, /* a valid token; see method_name */
	HTTP_METHOD_GET,
	HTTP_METHOD_HEAD,
	HTTP_METHOD_POST,
	HTTP_METHOD_PUT,
	HTTP_METHOD_DELETE,
	HTTP_METHOD_OPTIONS,
	HTTP_METHOD_TRACE,
	HTTP_METHOD_CONNECT,
	HTTP_METHOD_PATCH,
};

/* A byte range in the caller's buffer; ptr is NULL when absent. */
struct http_span {
	const char *ptr;
	size_t len;
};

struct http_header {
	const char *name; /* as sent; compare case-insensitively */
	size_t name_len;
	const char *value; /* leading and trailing OWS removed */
	size_t value_len;
};

struct http_request {
	enum http_method method;
	struct http_span method_name; /* the token, for any method */
	struct http_span target;      /* raw, not decoded */
	int version;		      /* 10 or 11 */
	size_t nheaders;
	struct http_header headers[HTTP_MAX_HEADERS];
	/* interpreted fields */
	int64_t content_length; /* -1 when absent */
	bool chunked;		/* Transfer-Encoding ends in chunked */
	bool te_other;		/* ... and has codings before it */
	bool keep_alive;	/* from version and Connection tokens */
	bool expect_continue;	/* Expect: 100-continue */
	struct http_span host;	/* ptr NULL: no Host line */
	struct http_span range;
	struct http_span if_none_match;
	struct http_span if_modified_since;
	struct http_span expect;
};

enum {
	HTTP_PARSE_OK = 0,
	HTTP_PARSE_INCOMPLETE = 1,
	/* 400 */
	HTTP_PARSE_EMETHOD = -1,  /* invalid or overlong method token */
	HTTP_PARSE_EREQLINE = -2, /* malformed request line */
	HTTP_PARSE_ETARGET = -3,  /* invalid byte in the target */
	HTTP_PARSE_EEOL = -4,	  /* bare CR or bare LF */
	HTTP_PARSE_EHEADER = -5,  /* malformed field line, empty name */
	HTTP_PARSE_EWSCOLON = -6, /* whitespace before the colon */
	HTTP_PARSE_EOBSFOLD = -7, /* line folding */
	HTTP_PARSE_ECTL = -8,	  /* CTL or NUL in a name or value */
	HTTP_PARSE_ECLBAD = -9,	  /* invalid Content-Length */
	HTTP_PARSE_ECLDUP = -10,  /* duplicate Content-Length */
	HTTP_PARSE_ECLTE = -11,	  /* Content-Length and Transfer-Encoding */
	HTTP_PARSE_ETE = -12,	  /* unacceptable Transfer-Encoding */
	HTTP_PARSE_EHOST = -13,	  /* missing, duplicate or invalid Host */
	HTTP_PARSE_EDUP = -14,	  /* duplicate Range / If-Modified-Since */
	HTTP_PARSE_EINVAL = -15,  /* NULL argument (status 500) */
	/* 414 */
	HTTP_PARSE_ETARGETLONG = -16,
	/* 431 */
	HTTP_PARSE_ELINELONG = -17, /* a field line over max_line */
	HTTP_PARSE_EHEADLONG = -18, /* the head over max_head */
	HTTP_PARSE_ETOOMANY = -19,  /* more than max_headers lines */
	/* 505 */
	HTTP_PARSE_EVERSION = -20,
};

/**
 * http_parse_request() - parse the request head at the start of @buf.
 * @buf:      the bytes received so far; borrowed: every pointer stored in
 *            @req points into it, and is valid as long as @buf is.
 * @len:      their number.  Never read past @buf + @len.
 * @lim:      limits, or NULL for HTTP_LIMITS_DEFAULT.
 * @req:      filled on HTTP_PARSE_OK; clobbered otherwise.
 * @consumed: on HTTP_PARSE_OK, the head's length through CRLFCRLF; what
 *            follows (a body, a pipelined request) starts at @buf +
 *            *@consumed.  Untouched otherwise.
 *
 * Stateless: it parses from the start on each call, so when more bytes
 * arrive the caller calls it again on the whole buffer.  O(@len), and
 * never more than max_head bytes are read.  No allocation.
 *
 * Return: HTTP_PARSE_OK; HTTP_PARSE_INCOMPLETE when the head is valid so
 *         far, not finished and within the limits; or a negative
 *         HTTP_PARSE_E* (see http_parse_status()).
 * Thread: any (no shared state).
 */
int http_parse_request(const char *buf, size_t len,
		       const struct http_limits *lim, struct http_request *req,
		       size_t *consumed);

/**
 * http_parse_status() - the HTTP status to answer for a parse error.
 * Return: 400, 414, 431, 505 (500 for HTTP_PARSE_EINVAL), or 0 for
 *         HTTP_PARSE_OK / HTTP_PARSE_INCOMPLETE.
 * Thread: any.
 */
int http_parse_status(int err);

/**
 * http_parse_strerror() - a static, human-readable text for @err.
 * Thread: any.
 */
const char *http_parse_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* HTTP_PARSE_H */
