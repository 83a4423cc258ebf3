/* SPDX-License-Identifier: MIT */
/*
 * http_parse.h - strict, bounded, allocation-free HTTP/1.x request-head
 * parser and chunked-body decoder for proa-httpd.  Plain C11 + libc: no
 * dependency on the rest of proa, so it can be unit-tested and fuzzed
 * alone.  The chunked decoder's rules are with its declarations, below.
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

/* The value of hex digit @c, or -1: for chunk sizes and %XX escapes. */
static inline int http_hex_val(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

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
	/* chunked bodies (http_chunked_parse()): 400 */
	HTTP_PARSE_ECHUNKSIZE = -21,   /* missing or non-hex chunk-size */
	HTTP_PARSE_ECHUNKBIG = -22,    /* chunk-size over 64 bits */
	HTTP_PARSE_ECHUNKEXT = -23,    /* malformed chunk extension */
	HTTP_PARSE_ECHUNKLONG = -24,   /* chunk line over HTTP_CHUNK_LINE_MAX */
	HTTP_PARSE_ECHUNKDATA = -25,   /* chunk data not followed by CRLF */
	HTTP_PARSE_ETRAILERLONG = -26, /* over HTTP_CHUNK_TRAILER_MAX */
	/* 413 */
	HTTP_PARSE_EBODYLONG = -27, /* over max_body (+ HTTP_CHUNK_SLACK) */
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

/*
 * Chunked transfer coding (RFC 9112 7.1), decoded incrementally: the
 * bytes may be cut anywhere, and every cut gives the same body, the same
 * end and the same error at the same offset as the whole input.  As for
 * heads, no leniency:
 *   - Every line ends in CRLF.  A bare LF, or a CR not followed by LF, is
 *     HTTP_PARSE_EEOL wherever it is (size line, extension, after the
 *     data, trailer).
 *   - chunk-size is 1*HEXDIG, first on its line: leading whitespace, a
 *     sign, "0x" or whitespace between digits is refused.  Leading zeros
 *     are fine; a value over 64 bits is HTTP_PARSE_ECHUNKBIG.
 *   - chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ), name a
 *     token, value a token or a quoted-string: spaces and tabs before
 *     ';' and around '=' are accepted, as the grammar allows; trailing
 *     whitespace before CRLF is not (it is not in the grammar).  The whole
 *     chunk-size line is at most HTTP_CHUNK_LINE_MAX bytes without CRLF.
 *   - The trailer section is parsed like field lines in a head (no
 *     obs-fold, no whitespace before the colon, no CTL in a value, same
 *     error codes) and ignored; with its final CRLF it is at most
 *     HTTP_CHUNK_TRAILER_MAX bytes.
 *   - The chunk sizes add up to at most max_body, checked at the digit
 *     that passes it; the framing (size lines, CRLFs, trailers) may add
 *     HTTP_CHUNK_SLACK bytes on top, so a stream of tiny chunks is
 *     bounded too.  Both are HTTP_PARSE_EBODYLONG.
 */
#define HTTP_CHUNK_LINE_MAX 4096
#define HTTP_CHUNK_TRAILER_MAX 8192
#define HTTP_CHUNK_SLACK 65536

/*
 * Where the decoder is.  Each state but DATA takes one byte at a time; a
 * byte with no arrow out of its state, or a limit passed, goes to ERROR.
 * DONE and ERROR are final.  "SP" is a space or a tab.
 *
 *   SIZE_START -HEX-> SIZE -CR-> SIZE_LF -LF, size > 0-> DATA
 *        ^            |             ^   \                 | size bytes
 *        |       ';', SP            |    LF, size 0       v
 *        |            v             |     v            DATA_CR
 *        |          EXT_* ----CR----+   TRAILER_START     | CR
 *        |                                                v
 *        +-----------------------LF-------------------- DATA_LF
 *
 * Extensions (RFC 9112 7.1.1: BWS before ';' and around '='):
 *   SIZE -SP-> EXT_BWS -';'-> EXT_NAME_START -tchar-> EXT_NAME
 *   SIZE -';'-> EXT_NAME_START                (EXT_NAME_START: SP stays)
 *   EXT_NAME -SP-> EXT_NAME_BWS -'='-> EXT_VAL_START (SP stays)
 *   EXT_NAME -'='-> EXT_VAL_START -tchar-> EXT_TOKEN
 *                   EXT_VAL_START -'"'-> EXT_QSTR -'"'-> EXT_QEND
 *                   EXT_QSTR -'\'-> EXT_QPAIR -HTAB/SP/VCHAR/obs-text->
 *                   EXT_QSTR
 *   EXT_NAME, EXT_NAME_BWS, EXT_TOKEN, EXT_QEND -';'-> EXT_NAME_START
 *   EXT_TOKEN, EXT_QEND -SP-> EXT_BWS
 *   EXT_NAME, EXT_TOKEN, EXT_QEND -CR-> SIZE_LF
 *
 * Trailers:
 *   TRAILER_START -CR-> END_LF -LF-> DONE
 *   TRAILER_START -tchar-> TRAILER_NAME -':'-> TRAILER_VALUE -CR->
 *   TRAILER_LF -LF-> TRAILER_START
 */
enum http_chunk_state {
	HTTP_CHUNK_SIZE_START,	   /* the first hex digit of a chunk-size */
	HTTP_CHUNK_SIZE,	   /* more hex digits */
	HTTP_CHUNK_EXT_BWS,	   /* whitespace, which only ';' may follow */
	HTTP_CHUNK_EXT_NAME_START, /* after ';': BWS, then a token */
	HTTP_CHUNK_EXT_NAME,
	HTTP_CHUNK_EXT_NAME_BWS,  /* whitespace after a name: '=' or ';' */
	HTTP_CHUNK_EXT_VAL_START, /* after '=': BWS, then token or '"' */
	HTTP_CHUNK_EXT_TOKEN,
	HTTP_CHUNK_EXT_QSTR,
	HTTP_CHUNK_EXT_QPAIR, /* the byte after a backslash */
	HTTP_CHUNK_EXT_QEND,  /* after the closing quote */
	HTTP_CHUNK_SIZE_LF,   /* the LF ending the chunk-size line */
	HTTP_CHUNK_DATA,      /* left bytes of chunk data */
	HTTP_CHUNK_DATA_CR,   /* the CRLF after the data */
	HTTP_CHUNK_DATA_LF,
	HTTP_CHUNK_TRAILER_START, /* a trailer line, or the final CRLF */
	HTTP_CHUNK_TRAILER_NAME,
	HTTP_CHUNK_TRAILER_VALUE,
	HTTP_CHUNK_TRAILER_LF,
	HTTP_CHUNK_END_LF, /* the LF of the final CRLF */
	HTTP_CHUNK_DONE,
	HTTP_CHUNK_ERROR,
};

/* A chunked-body decoder; plain data, set up by http_chunked_init(). */
struct http_chunked {
	enum http_chunk_state state;
	int err;	   /* the error, in HTTP_CHUNK_ERROR */
	uint64_t left;	   /* chunk-size being read, then data bytes left */
	uint64_t body;	   /* chunk sizes so far (of whole size lines) */
	uint64_t max_body; /* limit on body */
	uint64_t framing;  /* bytes that were not chunk data */
	size_t line;	   /* bytes in this size line or trailer section */
};

/**
 * http_chunked_init() - start decoding a chunked body.
 * @d:        caller-owned decoder.
 * @max_body: the largest sum of chunk sizes accepted (0: only an empty
 *            body).
 * Thread: any.
 */
void http_chunked_init(struct http_chunked *d, uint64_t max_body);

/**
 * http_chunked_parse() - feed the next bytes of a chunked body.
 * @d:        the decoder.
 * @buf:      the next bytes, any number, cut anywhere; not kept.
 * @len:      their number.  Never read past @buf + @len.
 * @consumed: always set: the bytes of @buf this call used.  On
 *            HTTP_PARSE_OK what follows the body (a pipelined request)
 *            starts at @buf + *@consumed; on an error it is the offset of
 *            the byte found invalid (or that passed a limit).
 * @data:     always set: the chunk data among the consumed bytes, a span
 *            of @buf (ptr NULL, len 0 when none).  One call delivers at
 *            most one run of data: it stops when the next run would
 *            begin, so *@consumed may be less than @len with
 *            HTTP_PARSE_INCOMPLETE; call again with the rest.
 *
 * Return: HTTP_PARSE_OK once the final CRLF (after the trailers) was
 *         consumed, and again on every later call, with nothing
 *         consumed; HTTP_PARSE_INCOMPLETE when more is needed; or a
 *         negative HTTP_PARSE_E*, which later calls return again.
 * Thread: any, for distinct decoders.
 */
int http_chunked_parse(struct http_chunked *d, const char *buf, size_t len,
		       size_t *consumed, struct http_span *data);

/**
 * http_parse_status() - the HTTP status to answer for a parse error.
 * Return: 400, 413, 414, 431, 505 (500 for HTTP_PARSE_EINVAL), or 0 for
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
