/* SPDX-License-Identifier: MIT */
/*
 * test_http_diff - differential test of the proa-httpd request parser
 * against libhttp-parser 2.9 (Debian's libhttp-parser-dev) as an oracle.
 *
 * Corpus: the valid and bad tables of test_http_parse.c, and generated
 * variants from a seeded PRNG (random methods in random case, targets,
 * header names, values and known fields, and random bad bytes inserted
 * or substituted).  Both parsers see each input; "accepts" means:
 *   ours:        HTTP_PARSE_OK with a known method (an UNKNOWN token is
 *                answered 501 by the server, as http-parser rejects it);
 *   http-parser: on_headers_complete ran (no error before the head end).
 * When both accept, method, version, keep-alive, Content-Length and
 * chunked must agree as well.
 *
 * http-parser is more lenient than we are in documented places and
 * checks target syntax we leave to the server.  Each disagreement must
 * match one of the explicit exceptions in explain() below; each one is
 * counted and printed, and any unexplained disagreement fails the test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* Both headers name an "enum http_method"; rename http-parser's. */
#define http_method hp_http_method
#include <http_parser.h>
#undef http_method

#define HTTP_CORPUS_ONLY
/* The corpus of valid and bad requests, shared with that test. */
#include "test_http_parse.c" /* NOLINT(bugprone-suspicious-include) */

#define N(a) (sizeof(a) / sizeof((a)[0]))

struct hp_result {
	bool accepted;
	enum http_errno err;
	const char *method;
	int version;
	bool keep_alive;
	int64_t content_length;
	uint64_t cl_raw;
	bool chunked;
};

static int on_headers_complete(http_parser *p)
{
	struct hp_result *r = p->data;

	if (r->accepted)
		return 0; /* a pipelined second request */
	r->accepted = true;
	r->method = http_method_str(p->method);
	r->version = p->http_major * 10 + p->http_minor;
	r->keep_alive = http_should_keep_alive(p);
	r->cl_raw = p->content_length;
	r->content_length =
	    p->content_length == ULLONG_MAX ? -1 : (int64_t)p->content_length;
	r->chunked = (p->flags & F_CHUNKED) != 0;
	return 0;
}

static void hp_parse(const char *buf, size_t len, struct hp_result *r)
{
	http_parser_settings settings;
	http_parser p;

	memset(r, 0, sizeof(*r));
	http_parser_settings_init(&settings);
	settings.on_headers_complete = on_headers_complete;
	http_parser_init(&p, HTTP_REQUEST);
	p.data = r;
	http_parser_execute(&p, &settings, buf, len);
	r->err = HTTP_PARSER_ERRNO(&p);
	/* it may refuse after on_headers_complete (Transfer-Encoding) */
	if (r->err != HPE_OK)
		r->accepted = false;
}

static bool has_lax_target_byte(const char *b, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)b[i] >= 0x7f || b[i] == '\t' || b[i] == '\f')
			return true;
	return false;
}

/* A bare LF, or a CR not followed by LF, anywhere in @b. */
static bool has_bare_eol(const char *b, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (b[i] == '\n' && (i == 0 || b[i - 1] != '\r'))
			return true;
		if (b[i] == '\r' && (i + 1 == len || b[i + 1] != '\n'))
			return true;
	}
	return false;
}

/* The request line, up to its first CR or LF. */
static size_t reqline_len(const char *b, size_t len)
{
	size_t i;

	for (i = 0; i < len && b[i] != '\r' && b[i] != '\n'; i++)
		;
	return i;
}

/* The first CTL (not HTAB, CR, LF) or DEL opens a field value. */
static bool ctl_opens_value(const char *b, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)b[i];

		if ((c < 0x20 && c != '\t' && c != '\r' && c != '\n') ||
		    c == 0x7f)
			break;
	}
	if (i == len)
		return false;
	while (i > 0 && (b[i - 1] == ' ' || b[i - 1] == '\t'))
		i--;
	return i > 0 && b[i - 1] == ':';
}

/* A field name (before the first colon of a line) containing SP. */
static bool sp_in_name(const char *b, size_t len)
{
	size_t i = 0;

	while (i < len) {
		const char *nl = memchr(b + i, '\n', len - i);
		size_t ls = nl ? (size_t)(nl - b) + 1 : len;
		size_t k;

		for (k = ls; k < len && b[k] != ':' && b[k] != '\n'; k++)
			if (b[k] == ' ' && k > ls)
				return true;
		i = ls;
	}
	return false;
}

/* The version after the second SP starts with 'H' but not "HTTP/". */
static bool lax_version(const char *b, size_t len)
{
	const char *sp1 = memchr(b, ' ', len);
	const char *sp2;
	size_t o;

	if (!sp1)
		return false;
	sp2 = memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - b));
	if (!sp2)
		return false;
	o = (size_t)(sp2 + 1 - b);
	return o + 5 <= len && b[o] == 'H' && memcmp(b + o, "HTTP/", 5) != 0;
}

enum {
	X_HOST,
	X_EOL,
	X_OBSFOLD,
	X_VERSION,
	X_VERSION_SYNTAX,
	X_HTTP09,
	X_TE10,
	X_TE,
	X_DUP,
	X_CL64,
	X_LIMITS,
	X_TARGET,
	X_TARGET_BYTES,
	X_REQLINE,
	X_SP_IN_NAME,
	X_CTL_FIRST,
	X_CONN_BOTH,
	X_NEXCEPT
};

static const char *const x_names[X_NEXCEPT] = {
    [X_HOST] = "Host missing/duplicate/invalid: http-parser has no Host "
	       "rules",
    [X_EOL] = "bare LF or bare CR: http-parser (built non-strict) accepts "
	      "them as line ends",
    [X_OBSFOLD] = "obs-fold: http-parser joins folded lines",
    [X_VERSION] = "HTTP/x.y other than 1.0/1.1: http-parser accepts any "
		  "single digits",
    [X_VERSION_SYNTAX] = "version not \"HTTP/\": non-strict http-parser "
			 "checks only the 'H' (STRICT_CHECK is a no-op)",
    [X_HTTP09] = "request line without a version: http-parser takes it "
		 "as HTTP/0.9",
    [X_TE10] = "Transfer-Encoding in HTTP/1.0: http-parser accepts it",
    [X_TE] = "Transfer-Encoding list form (duplicate line, chunked twice, "
	     "parameters, empty element): http-parser is lenient",
    [X_DUP] = "duplicate Range / If-Modified-Since: http-parser has no "
	      "singleton rules",
    [X_CL64] = "Content-Length above INT64_MAX: http-parser allows up to "
	       "ULLONG_MAX - 1",
    [X_LIMITS] = "our 414/431 limits are tighter than http-parser's 80 KiB",
    [X_TARGET] = "target form (http-parser parses the URL; we leave it to "
		 "the server)",
    [X_TARGET_BYTES] = "HTAB, DEL or bytes >= 0x80 in the target: "
		       "non-strict http-parser accepts them",
    [X_REQLINE] = "request-line whitespace: http-parser skips extra SP "
		  "between parts",
    [X_SP_IN_NAME] = "SP in/after a field name: non-strict http-parser "
		     "counts SP as a token byte",
    [X_CTL_FIRST] = "CTL/NUL/DEL as the first byte of a field value: "
		    "http-parser checks only later bytes",
    [X_CONN_BOTH] = "Connection with both close and keep-alive in "
		    "HTTP/1.0: close wins for us, keep-alive for http-parser",
};

static unsigned x_count[X_NEXCEPT];

/*
 * The one place where disagreement is allowed: return which documented
 * difference explains it, or -1.  @ours is our return value and @req our
 * result, @hp the oracle's.
 */
static int explain(const char *b, size_t len, int ours,
		   const struct http_request *req, const struct hp_result *hp)
{
	size_t rl = reqline_len(b, len);

	if (ours == HTTP_PARSE_OK && hp->accepted) {
		/* both accept, a field differs */
		if (req->version == 10 && hp->keep_alive && !req->keep_alive &&
		    memmem(b, len, "close", 5) &&
		    (memmem(b, len, "keep-alive", 10) ||
		     memmem(b, len, "Keep-Alive", 10)))
			return X_CONN_BOTH;
		return -1;
	}
	if (ours == HTTP_PARSE_OK || ours == HTTP_PARSE_INCOMPLETE) {
		/* we accept (or wait), http-parser refused */
		if (hp->err == HPE_INVALID_URL || hp->err == HPE_INVALID_HOST)
			return X_TARGET;
		return -1;
	}
	if (!hp->accepted)
		return -1; /* both refuse: not a disagreement */
	/* we refused, http-parser accepted */
	switch (ours) {
	case HTTP_PARSE_EHOST:
		return X_HOST;
	case HTTP_PARSE_EEOL:
		return has_bare_eol(b, len) ? X_EOL : -1;
	case HTTP_PARSE_EOBSFOLD:
		return X_OBSFOLD;
	case HTTP_PARSE_EVERSION:
		return X_VERSION;
	case HTTP_PARSE_EDUP:
		return X_DUP;
	case HTTP_PARSE_ECLBAD:
		return hp->cl_raw > INT64_MAX && hp->cl_raw != ULLONG_MAX
			   ? X_CL64
			   : -1;
	case HTTP_PARSE_ETE:
		if (memmem(b, rl, "HTTP/1.0", 8))
			return X_TE10;
		return X_TE;
	case HTTP_PARSE_ETARGET:
		return has_lax_target_byte(b, rl) ? X_TARGET_BYTES : -1;
	case HTTP_PARSE_EREQLINE:
		if (hp->version == 9)
			return X_HTTP09;
		if (lax_version(b, len))
			return X_VERSION_SYNTAX;
		return memmem(b, rl, "  ", 2) ? X_REQLINE : -1;
	case HTTP_PARSE_EWSCOLON:
		return sp_in_name(b, len) ? X_SP_IN_NAME : -1;
	case HTTP_PARSE_ECTL:
		return ctl_opens_value(b, len) ? X_CTL_FIRST : -1;
	case HTTP_PARSE_ETARGETLONG:
	case HTTP_PARSE_ELINELONG:
	case HTTP_PARSE_EHEADLONG:
	case HTTP_PARSE_ETOOMANY:
		return X_LIMITS;
	default:
		return -1;
	}
}

static bool ours_accepts(int ret, const struct http_request *req)
{
	return ret == HTTP_PARSE_OK && req->method != HTTP_METHOD_UNKNOWN;
}

static bool fields_agree(const struct http_request *req,
			 const struct hp_result *hp)
{
	return req->method_name.len == strlen(hp->method) &&
	       !memcmp(req->method_name.ptr, hp->method,
		       req->method_name.len) &&
	       req->version == hp->version &&
	       req->keep_alive == hp->keep_alive &&
	       req->content_length == hp->content_length &&
	       req->chunked == hp->chunked;
}

static void dump(const char *tag, const char *b, size_t len)
{
	size_t i;

	fprintf(stderr, "%s: \"", tag);
	for (i = 0; i < len && i < 300; i++) {
		unsigned char c = (unsigned char)b[i];

		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			fputc(c, stderr);
		else
			fprintf(stderr, "\\x%02x", c);
	}
	fprintf(stderr, "%s\"\n", i < len ? "..." : "");
}

static unsigned n_agree;
static unsigned n_unexplained;

static void compare(const char *b, size_t len)
{
	static struct http_request req;
	struct hp_result hp;
	size_t consumed = len;
	int ret = http_parse_request(b, len, NULL, &req, &consumed);
	bool ours;
	int x;

	/* what follows our head (a pipelined request) is not compared */
	hp_parse(b, ret == HTTP_PARSE_OK ? consumed : len, &hp);
	ours = ours_accepts(ret, &req);
	if (ours == hp.accepted && (!ours || fields_agree(&req, &hp))) {
		n_agree++;
		return;
	}
	if (!ours && !hp.accepted && ret != HTTP_PARSE_INCOMPLETE) {
		n_agree++; /* both refuse; with UNKNOWN methods too */
		return;
	}
	if (ret == HTTP_PARSE_INCOMPLETE && !hp.accepted && hp.err == HPE_OK) {
		n_agree++; /* both wait for more */
		return;
	}
	x = explain(b, len, ret, &req, &hp);
	if (x >= 0) {
		x_count[x]++;
		return;
	}
	n_unexplained++;
	fprintf(stderr, "unexplained: ours %s (%s), http-parser %s (%s)\n",
		ours ? "accepts" : "refuses", http_parse_strerror(ret),
		hp.accepted ? "accepts" : "refuses", http_errno_name(hp.err));
	dump("  input", b, len);
}

/* xorshift64*: the corpus is the same on every run. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32) % n;
}

static void put(char *b, size_t *o, const char *s)
{
	size_t n = strlen(s);

	/* Bytes of a request: no terminating NUL. */
	memcpy(b + *o, s, n); /* NOLINT(bugprone-not-null-terminated-result) */
	*o += n;
}

static void put_rand(char *b, size_t *o, const char *set, size_t n)
{
	size_t k = strlen(set);

	while (n--)
		b[(*o)++] = set[rnd((uint32_t)k)];
}

static void put_case(char *b, size_t *o, const char *s, bool mix)
{
	while (*s) {
		char c = *s++;

		if (mix && rnd(2))
			c = (char)(c ^ 0x20);
		b[(*o)++] = c;
	}
}

#define GEN_MAX 4096

static size_t generate(char *b)
{
	static const char *const methods[] = {"GET",   "HEAD",	 "POST",
					      "PUT",   "DELETE", "OPTIONS",
					      "PATCH", "TRACE"};
	static const char *const known[] = {
	    "Connection: close",
	    "Connection: keep-alive",
	    "Connection: upgrade, close",
	    "Content-Length: 12",
	    "Content-Length: 0",
	    "Transfer-Encoding: chunked",
	    "Range: bytes=1-2",
	    "If-None-Match: \"x\"",
	    "If-Modified-Since: Sat, 29 Oct 1994 19:43:31 GMT",
	    "Expect: 100-continue",
	    "Accept: */*",
	    "User-Agent: t/1"};
	static const char *const bad[] = {"\0",	  "\x01",  "\x7f", "\r",
					  "\n",	  " ",	   "\t",   ":",
					  "\x80", "\r\n ", "\r\n", "\xff"};
	size_t o = 0;
	size_t nh = rnd(8);
	size_t i;
	bool mix = rnd(4) == 0;

	put_case(b, &o, methods[rnd(N(methods))], mix && rnd(2));
	put(b, &o, " /");
	put_rand(b, &o, "abcxyz0189/._-~?=&%", rnd(20));
	put(b, &o, rnd(5) ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n");
	if (rnd(8))
		put(b, &o, rnd(2) ? "Host: example.com\r\n" : "Host: h:81\r\n");
	for (i = 0; i < nh; i++) {
		if (rnd(2)) {
			put_case(b, &o, known[rnd(N(known))], mix);
		} else {
			put_rand(b, &o, "abcdefghXYZ-019_!#", 1 + rnd(12));
			put(b, &o, ":");
			put_rand(b, &o, " ", rnd(2));
			put_rand(b, &o, "abcdefgh 012\"/=,;()\t~", rnd(30));
		}
		put(b, &o, "\r\n");
	}
	put(b, &o, "\r\n");
	if (rnd(2)) {
		size_t at = rnd((uint32_t)o);
		const char *s = bad[rnd(N(bad))];
		size_t n = *s ? strlen(s) : 1;

		if (rnd(2)) { /* insert */
			memmove(b + at + n, b + at, o - at);
			o += n;
		} else if (at + n > o) {
			o = at + n;
		}
		/* NOLINTNEXTLINE(bugprone-not-null-terminated-result) */
		memcpy(b + at, s, n);
	}
	return o;
}

static void test_diff(void **state)
{
	char *b = malloc(GEN_MAX);
	size_t i;
	int x;

	assert_non_null(b);
	for (i = 0; i < N(valid_cases); i++)
		compare(valid_cases[i].raw, valid_cases[i].len);
	for (i = 0; i < N(bad_cases); i++)
		compare(bad_cases[i].raw, bad_cases[i].len);
	for (i = 0; i < 1000; i++)
		compare(b, generate(b));
	free(b);

	fprintf(stderr, "agree: %u\n", n_agree);
	for (x = 0; x < X_NEXCEPT; x++)
		if (x_count[x])
			fprintf(stderr, "exception x%u: %s\n", x_count[x],
				x_names[x]);
	assert_int_equal(n_unexplained, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_diff),
	};

	return cmocka_run_group_tests_name("http.diff", tests, NULL, NULL);
}
