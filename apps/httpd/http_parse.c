/* SPDX-License-Identifier: MIT */
/*
 * http_parse.c - the request-head parser and the chunked-body decoder;
 * the grammar each accepts and why is in http_parse.h.
 *
 * One left-to-right pass over at most max_head bytes.  Every check is made
 * at the byte that decides it (a limit at the first byte past it, a field
 * value when its CRLF arrives, the cross-field rules at the final CRLF),
 * so running out of bytes is INCOMPLETE exactly when no decided error has
 * been seen: a prefix never yields a different error than the whole.
 */
#include "http_parse.h"

#include <string.h>

/* parse_field_line(): the empty line that ends the head was read */
#define END_OF_HEAD 2

struct pstate {
	const char *buf;
	size_t end; /* min(len, max_head): bytes we may look at */
	size_t max_line;
	size_t max_head;
	size_t max_headers;
	struct http_request *req;
	bool seen_cl;
	bool seen_te;
	bool conn_close;
	bool conn_keep_alive;
};

static bool is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* reg-name, IP-literal and port characters (RFC 3986), for Host. */
static bool is_host_char(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("-._~%!$&'()*+,;=:[]", c) != NULL;
}

static char lower(char c)
{
	unsigned char u = (unsigned char)c;

	/* ASCII only, on purpose: header names are tokens. */
	if (u >= 'A' && u <= 'Z')
		u = (unsigned char)(u | 0x20u);
	return (char)u;
}

/* @lit is lower case. */
static bool eq_nocase(const char *p, size_t n, const char *lit)
{
	size_t i;

	if (strlen(lit) != n)
		return false;
	for (i = 0; i < n; i++)
		if (lower(p[i]) != lit[i])
			return false;
	return true;
}

/* Out of bytes: more may come, unless max_head is what stopped us. */
static int out_of_bytes(const struct pstate *s)
{
	return s->end == s->max_head ? HTTP_PARSE_EHEADLONG
				     : HTTP_PARSE_INCOMPLETE;
}

static const struct {
	const char *name;
	enum http_method m;
} methods[] = {
    {"GET", HTTP_METHOD_GET},	    {"HEAD", HTTP_METHOD_HEAD},
    {"POST", HTTP_METHOD_POST},	    {"PUT", HTTP_METHOD_PUT},
    {"DELETE", HTTP_METHOD_DELETE}, {"OPTIONS", HTTP_METHOD_OPTIONS},
    {"TRACE", HTTP_METHOD_TRACE},   {"CONNECT", HTTP_METHOD_CONNECT},
    {"PATCH", HTTP_METHOD_PATCH},
};

static enum http_method method_of(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strlen(methods[i].name) == n &&
		    memcmp(methods[i].name, p, n) == 0)
			return methods[i].m;
	return HTTP_METHOD_UNKNOWN;
}

/*
 * Request line: method SP target SP HTTP/d.d CRLF, starting at *pos.  The
 * byte at offset max_line from the line start may only be the CR.
 */
static int parse_request_line(struct pstate *s, size_t *pos)
{
	static const char proto[] = "HTTP/";
	const unsigned char *b = (const unsigned char *)s->buf;
	struct http_request *req = s->req;
	size_t ls = *pos;
	size_t i = ls;
	size_t ts;
	size_t k;
	int major;
	int minor;

	for (; i < s->end; i++) {
		if (i - ls >= s->max_line)
			return HTTP_PARSE_EMETHOD;
		if (!is_tchar(b[i]))
			break;
	}
	if (i == s->end)
		return out_of_bytes(s);
	if (b[i] != ' ')
		return i == ls || b[i] == '\r' || b[i] == '\n'
			   ? HTTP_PARSE_EREQLINE
			   : HTTP_PARSE_EMETHOD;
	if (i == ls)
		return HTTP_PARSE_EREQLINE;
	req->method_name.ptr = s->buf + ls;
	req->method_name.len = i - ls;
	req->method = method_of(s->buf + ls, i - ls);

	ts = ++i;
	for (; i < s->end; i++) {
		if (i - ls >= s->max_line)
			return HTTP_PARSE_ETARGETLONG;
		if (b[i] <= ' ' || b[i] >= 0x7f)
			break;
	}
	if (i == s->end)
		return out_of_bytes(s);
	if (b[i] != ' ')
		return (b[i] == '\r' || b[i] == '\n') ? HTTP_PARSE_EREQLINE
						      : HTTP_PARSE_ETARGET;
	if (i == ts)
		return HTTP_PARSE_EREQLINE;
	req->target.ptr = s->buf + ts;
	req->target.len = i - ts;
	i++;

	/* "HTTP/" DIGIT "." DIGIT, one byte at a time */
	for (k = 0; k < 8; k++, i++) {
		if (i == s->end)
			return out_of_bytes(s);
		if (i - ls >= s->max_line)
			return HTTP_PARSE_ETARGETLONG;
		if (k < 5 && b[i] != (unsigned char)proto[k])
			return HTTP_PARSE_EREQLINE;
		if ((k == 5 || k == 7) && (b[i] < '0' || b[i] > '9'))
			return HTTP_PARSE_EREQLINE;
		if (k == 6 && b[i] != '.')
			return HTTP_PARSE_EREQLINE;
	}
	major = b[i - 3] - '0';
	minor = b[i - 1] - '0';
	if (i == s->end)
		return out_of_bytes(s);
	if (b[i] != '\r')
		return b[i] == '\n' ? HTTP_PARSE_EEOL : HTTP_PARSE_EREQLINE;
	if (++i == s->end)
		return out_of_bytes(s);
	if (b[i] != '\n')
		return HTTP_PARSE_EEOL;
	i++;
	if (major != 1 || minor > 1)
		return HTTP_PARSE_EVERSION;
	req->version = 10 + minor;
	*pos = i;
	return HTTP_PARSE_OK;
}

static int parse_content_length(struct pstate *s, const struct http_header *h)
{
	int64_t v = 0;
	size_t i;

	if (s->seen_cl)
		return HTTP_PARSE_ECLDUP;
	s->seen_cl = true;
	if (h->value_len == 0)
		return HTTP_PARSE_ECLBAD;
	for (i = 0; i < h->value_len; i++) {
		int d = h->value[i] - '0';

		if (d < 0 || d > 9)
			return HTTP_PARSE_ECLBAD;
		if (v > (INT64_MAX - d) / 10)
			return HTTP_PARSE_ECLBAD;
		v = v * 10 + d;
	}
	s->req->content_length = v;
	return HTTP_PARSE_OK;
}

/*
 * Split a comma list into OWS-trimmed elements: returns the next element
 * at *p (length in *n), or false at the end of the value.
 */
static bool next_elem(const char **p, const char *end, const char **e,
		      size_t *n)
{
	const char *q = *p;
	const char *ee;

	if (q > end)
		return false;
	while (q < end && is_ows((unsigned char)*q))
		q++;
	*e = q;
	while (q < end && *q != ',')
		q++;
	ee = q;
	while (ee > *e && is_ows((unsigned char)ee[-1]))
		ee--;
	*n = (size_t)(ee - *e);
	*p = q + 1; /* past the comma, or one past end: the next call stops */
	return true;
}

static int parse_te(struct pstate *s, const struct http_header *h)
{
	const char *p = h->value;
	const char *end = h->value + h->value_len;
	const char *e;
	size_t n;
	size_t i;
	bool last_chunked = false;

	if (s->seen_te)
		return HTTP_PARSE_ETE;
	s->seen_te = true;
	while (next_elem(&p, end, &e, &n)) {
		if (n == 0 || last_chunked)
			return HTTP_PARSE_ETE;
		for (i = 0; i < n; i++)
			if (!is_tchar((unsigned char)e[i]))
				return HTTP_PARSE_ETE;
		last_chunked = eq_nocase(e, n, "chunked");
		if (!last_chunked)
			s->req->te_other = true;
	}
	if (!last_chunked)
		return HTTP_PARSE_ETE;
	s->req->chunked = true;
	return HTTP_PARSE_OK;
}

static void parse_connection(struct pstate *s, const struct http_header *h)
{
	const char *p = h->value;
	const char *end = h->value + h->value_len;
	const char *e;
	size_t n;

	while (next_elem(&p, end, &e, &n)) {
		if (eq_nocase(e, n, "close"))
			s->conn_close = true;
		else if (eq_nocase(e, n, "keep-alive"))
			s->conn_keep_alive = true;
	}
}

static int set_once(struct http_span *sp, const struct http_header *h,
		    int dup_err)
{
	if (sp->ptr)
		return dup_err;
	sp->ptr = h->value;
	sp->len = h->value_len;
	return HTTP_PARSE_OK;
}

/* The fields we interpret, checked when their line is complete. */
static int interpret(struct pstate *s, const struct http_header *h)
{
	struct http_request *req = s->req;
	size_t i;

	switch (lower(h->name[0])) {
	case 'c':
		if (eq_nocase(h->name, h->name_len, "content-length"))
			return parse_content_length(s, h);
		if (eq_nocase(h->name, h->name_len, "connection"))
			parse_connection(s, h);
		break;
	case 't':
		if (eq_nocase(h->name, h->name_len, "transfer-encoding"))
			return parse_te(s, h);
		break;
	case 'h':
		if (!eq_nocase(h->name, h->name_len, "host"))
			break;
		for (i = 0; i < h->value_len; i++)
			if (!is_host_char((unsigned char)h->value[i]))
				return HTTP_PARSE_EHOST;
		return set_once(&req->host, h, HTTP_PARSE_EHOST);
	case 'r':
		if (eq_nocase(h->name, h->name_len, "range"))
			return set_once(&req->range, h, HTTP_PARSE_EDUP);
		break;
	case 'i':
		if (eq_nocase(h->name, h->name_len, "if-modified-since"))
			return set_once(&req->if_modified_since, h,
					HTTP_PARSE_EDUP);
		if (eq_nocase(h->name, h->name_len, "if-none-match"))
			set_once(&req->if_none_match, h, HTTP_PARSE_OK);
		break;
	case 'e':
		if (eq_nocase(h->name, h->name_len, "expect") &&
		    !req->expect.ptr) {
			set_once(&req->expect, h, HTTP_PARSE_OK);
			req->expect_continue =
			    eq_nocase(h->value, h->value_len, "100-continue");
		}
		break;
	default:
		break;
	}
	return HTTP_PARSE_OK;
}

/* After the final CRLF: the rules that span fields. */
static int finish(struct pstate *s)
{
	struct http_request *req = s->req;

	if (s->seen_cl && s->seen_te)
		return HTTP_PARSE_ECLTE;
	if (s->seen_te && req->version == 10)
		return HTTP_PARSE_ETE;
	if (req->version == 11 && !req->host.ptr)
		return HTTP_PARSE_EHOST;
	if (s->conn_close)
		req->keep_alive = false;
	else
		req->keep_alive = req->version == 11 || s->conn_keep_alive;
	return HTTP_PARSE_OK;
}

/* One field line at *pos, or the empty line that ends the head. */
static int parse_field_line(struct pstate *s, size_t *pos)
{
	const unsigned char *b = (const unsigned char *)s->buf;
	struct http_request *req = s->req;
	struct http_header *h;
	size_t ls = *pos;
	size_t i = ls;
	size_t vs;
	size_t ve;

	if (i == s->end)
		return out_of_bytes(s);
	if (b[i] == '\r') {
		if (++i == s->end)
			return out_of_bytes(s);
		if (b[i] != '\n')
			return HTTP_PARSE_EEOL;
		*pos = i + 1;
		return END_OF_HEAD;
	}
	if (b[i] == '\n')
		return HTTP_PARSE_EEOL;
	if (is_ows(b[i]))
		return HTTP_PARSE_EOBSFOLD;
	if (req->nheaders == s->max_headers)
		return HTTP_PARSE_ETOOMANY;

	for (; i < s->end; i++) {
		if (i - ls >= s->max_line)
			return HTTP_PARSE_ELINELONG;
		if (!is_tchar(b[i]))
			break;
	}
	if (i == s->end)
		return out_of_bytes(s);
	if (b[i] != ':') {
		if (is_ows(b[i]))
			return HTTP_PARSE_EWSCOLON;
		if (b[i] == '\n')
			return HTTP_PARSE_EEOL;
		if (b[i] == '\r')
			return HTTP_PARSE_EHEADER; /* no colon */
		return (b[i] < ' ' || b[i] == 0x7f) ? HTTP_PARSE_ECTL
						    : HTTP_PARSE_EHEADER;
	}
	if (i == ls)
		return HTTP_PARSE_EHEADER;
	h = &req->headers[req->nheaders];
	h->name = s->buf + ls;
	h->name_len = i - ls;
	i++;

	for (; i < s->end && is_ows(b[i]); i++)
		if (i - ls >= s->max_line)
			return HTTP_PARSE_ELINELONG;
	vs = i;
	ve = i;
	for (; i < s->end; i++) {
		if (b[i] == '\r')
			break;
		if (i - ls >= s->max_line)
			return HTTP_PARSE_ELINELONG;
		if (is_ows(b[i]))
			continue;
		if (b[i] < ' ' || b[i] == 0x7f)
			return b[i] == '\n' ? HTTP_PARSE_EEOL : HTTP_PARSE_ECTL;
		ve = i + 1;
	}
	if (i == s->end)
		return out_of_bytes(s);
	if (++i == s->end)
		return out_of_bytes(s);
	if (b[i] != '\n')
		return HTTP_PARSE_EEOL;
	h->value = s->buf + vs;
	h->value_len = ve - vs;
	req->nheaders++;
	*pos = i + 1;
	return interpret(s, h);
}

static size_t or_default(size_t v, size_t def)
{
	return v ? v : def;
}

int http_parse_request(const char *buf, size_t len,
		       const struct http_limits *lim, struct http_request *req,
		       size_t *consumed)
{
	static const struct http_limits def = HTTP_LIMITS_DEFAULT;
	struct pstate s;
	size_t i = 0;
	int ret;

	if ((!buf && len) || !req || !consumed)
		return HTTP_PARSE_EINVAL;
	if (!lim)
		lim = &def;
	memset(&s, 0, sizeof(s));
	s.buf = buf;
	s.max_line = or_default(lim->max_line, def.max_line);
	s.max_head = or_default(lim->max_head, def.max_head);
	s.max_headers = or_default(lim->max_headers, def.max_headers);
	if (s.max_headers > HTTP_MAX_HEADERS)
		s.max_headers = HTTP_MAX_HEADERS;
	s.end = len < s.max_head ? len : s.max_head;
	s.req = req;

	/* only the fields that are read before being written */
	req->nheaders = 0;
	req->content_length = -1;
	req->chunked = false;
	req->te_other = false;
	req->expect_continue = false;
	req->host = req->range = req->if_none_match = (struct http_span){0};
	req->if_modified_since = req->expect = (struct http_span){0};

	/* RFC 9112 2.2: empty lines before the request line */
	while (i < s.end && buf[i] == '\r') {
		if (i + 1 == s.end)
			return out_of_bytes(&s);
		if (buf[i + 1] != '\n')
			return HTTP_PARSE_EEOL;
		i += 2;
	}
	ret = parse_request_line(&s, &i);
	if (ret != HTTP_PARSE_OK)
		return ret;
	while ((ret = parse_field_line(&s, &i)) == HTTP_PARSE_OK)
		;
	if (ret != END_OF_HEAD)
		return ret;
	ret = finish(&s);
	if (ret == HTTP_PARSE_OK)
		*consumed = i;
	return ret;
}

/* ---- chunked bodies ---------------------------------------------------- */

void http_chunked_init(struct http_chunked *d, uint64_t max_body)
{
	memset(d, 0, sizeof(*d));
	d->state = HTTP_CHUNK_SIZE_START;
	d->max_body = max_body;
}

/* qdtext: HTAB, SP, 0x21, 0x23-0x5b, 0x5d-0x7e, obs-text */
static bool is_qdtext(unsigned char c)
{
	return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) ||
	       (c >= 0x5d && c != 0x7f);
}

/* the byte after a backslash: HTAB, SP, VCHAR, obs-text */
static bool is_qpair(unsigned char c)
{
	return c == '\t' || (c >= ' ' && c != 0x7f);
}

static bool is_ctl(unsigned char c)
{
	return c < ' ' || c == 0x7f;
}

static bool in_size_line(enum http_chunk_state st)
{
	return st >= HTTP_CHUNK_SIZE_START && st <= HTTP_CHUNK_EXT_QEND;
}

static bool in_trailers(enum http_chunk_state st)
{
	return st >= HTTP_CHUNK_TRAILER_START && st <= HTTP_CHUNK_END_LF;
}

/* A hex digit of chunk-size: refused at the digit that passes a limit. */
static int size_digit(struct http_chunked *d, int v)
{
	if (d->left > (UINT64_MAX >> 4))
		return HTTP_PARSE_ECHUNKBIG;
	d->left = d->left << 4 | (unsigned)v;
	if (d->left > d->max_body - d->body)
		return HTTP_PARSE_EBODYLONG;
	d->state = HTTP_CHUNK_SIZE;
	return HTTP_PARSE_OK;
}

/* After the name, a token or a quoted value: what may follow it. */
static int ext_next(struct http_chunked *d, unsigned char c, bool bws)
{
	if (c == ';')
		d->state = HTTP_CHUNK_EXT_NAME_START;
	else if (c == '\r')
		d->state = HTTP_CHUNK_SIZE_LF;
	else if (bws && is_ows(c))
		d->state = HTTP_CHUNK_EXT_BWS;
	else
		return HTTP_PARSE_ECHUNKEXT;
	return HTTP_PARSE_OK;
}

/* One byte of a chunk-size line, which is not a LF. */
static int size_line_byte(struct http_chunked *d, unsigned char c)
{
	int v = http_hex_val(c);

	switch (d->state) {
	case HTTP_CHUNK_SIZE_START:
		return v < 0 ? HTTP_PARSE_ECHUNKSIZE : size_digit(d, v);
	case HTTP_CHUNK_SIZE:
		if (v >= 0)
			return size_digit(d, v);
		if (c == ';' || c == '\r' || is_ows(c))
			return ext_next(d, c, true);
		return HTTP_PARSE_ECHUNKSIZE;
	case HTTP_CHUNK_EXT_BWS:
		if (c == ';')
			d->state = HTTP_CHUNK_EXT_NAME_START;
		else if (!is_ows(c))
			return HTTP_PARSE_ECHUNKEXT;
		return HTTP_PARSE_OK;
	case HTTP_CHUNK_EXT_NAME_START:
		if (is_tchar(c))
			d->state = HTTP_CHUNK_EXT_NAME;
		else if (!is_ows(c))
			return HTTP_PARSE_ECHUNKEXT;
		return HTTP_PARSE_OK;
	case HTTP_CHUNK_EXT_NAME:
		if (is_tchar(c))
			return HTTP_PARSE_OK;
		if (c == '=')
			d->state = HTTP_CHUNK_EXT_VAL_START;
		else if (is_ows(c))
			d->state = HTTP_CHUNK_EXT_NAME_BWS;
		else
			return ext_next(d, c, false);
		return HTTP_PARSE_OK;
	case HTTP_CHUNK_EXT_NAME_BWS:
		if (c == '=')
			d->state = HTTP_CHUNK_EXT_VAL_START;
		else if (c == ';')
			d->state = HTTP_CHUNK_EXT_NAME_START;
		else if (!is_ows(c))
			return HTTP_PARSE_ECHUNKEXT;
		return HTTP_PARSE_OK;
	case HTTP_CHUNK_EXT_VAL_START:
		if (is_tchar(c))
			d->state = HTTP_CHUNK_EXT_TOKEN;
		else if (c == '"')
			d->state = HTTP_CHUNK_EXT_QSTR;
		else if (!is_ows(c))
			return HTTP_PARSE_ECHUNKEXT;
		return HTTP_PARSE_OK;
	case HTTP_CHUNK_EXT_TOKEN:
		return is_tchar(c) ? HTTP_PARSE_OK : ext_next(d, c, true);
	case HTTP_CHUNK_EXT_QSTR:
		if (c == '"')
			d->state = HTTP_CHUNK_EXT_QEND;
		else if (c == '\\')
			d->state = HTTP_CHUNK_EXT_QPAIR;
		else if (!is_qdtext(c))
			return HTTP_PARSE_ECHUNKEXT;
		return HTTP_PARSE_OK;
	case HTTP_CHUNK_EXT_QPAIR:
		if (!is_qpair(c))
			return HTTP_PARSE_ECHUNKEXT;
		d->state = HTTP_CHUNK_EXT_QSTR;
		return HTTP_PARSE_OK;
	case HTTP_CHUNK_EXT_QEND:
		return ext_next(d, c, true);
	default:
		return HTTP_PARSE_EINVAL;
	}
}

/* One byte of the trailer section, checked as parse_field_line() does. */
static int trailer_byte(struct http_chunked *d, unsigned char c)
{
	switch (d->state) {
	case HTTP_CHUNK_TRAILER_START:
		if (c == '\r')
			d->state = HTTP_CHUNK_END_LF;
		else if (is_tchar(c))
			d->state = HTTP_CHUNK_TRAILER_NAME;
		else if (c == '\n')
			return HTTP_PARSE_EEOL;
		else if (is_ows(c))
			return HTTP_PARSE_EOBSFOLD;
		else
			return is_ctl(c) ? HTTP_PARSE_ECTL : HTTP_PARSE_EHEADER;
		return HTTP_PARSE_OK;
	case HTTP_CHUNK_TRAILER_NAME:
		if (c == ':')
			d->state = HTTP_CHUNK_TRAILER_VALUE;
		else if (c == '\n')
			return HTTP_PARSE_EEOL;
		else if (is_ows(c))
			return HTTP_PARSE_EWSCOLON;
		else if (c == '\r')
			return HTTP_PARSE_EHEADER; /* no colon */
		else if (!is_tchar(c))
			return is_ctl(c) ? HTTP_PARSE_ECTL : HTTP_PARSE_EHEADER;
		return HTTP_PARSE_OK;
	case HTTP_CHUNK_TRAILER_VALUE:
		if (c == '\r')
			d->state = HTTP_CHUNK_TRAILER_LF;
		else if (c == '\n')
			return HTTP_PARSE_EEOL;
		else if (is_ctl(c) && c != '\t')
			return HTTP_PARSE_ECTL;
		return HTTP_PARSE_OK;
	case HTTP_CHUNK_TRAILER_LF:
		if (c != '\n')
			return HTTP_PARSE_EEOL;
		d->state = HTTP_CHUNK_TRAILER_START;
		return HTTP_PARSE_OK;
	case HTTP_CHUNK_END_LF:
		if (c != '\n')
			return HTTP_PARSE_EEOL;
		d->state = HTTP_CHUNK_DONE;
		return HTTP_PARSE_OK;
	default:
		return HTTP_PARSE_EINVAL;
	}
}

/*
 * One byte that is not chunk data.  The limits are checked before the
 * grammar, so the byte that passes one is the error whatever it is.
 */
static int framing_byte(struct http_chunked *d, unsigned char c)
{
	d->framing++;
	if (d->framing > HTTP_CHUNK_SLACK &&
	    d->framing - HTTP_CHUNK_SLACK > d->max_body - d->body)
		return HTTP_PARSE_EBODYLONG;
	if (in_size_line(d->state)) {
		/* The CR that ends the line is not counted, as max_line. */
		if (c != '\r' && ++d->line > HTTP_CHUNK_LINE_MAX)
			return HTTP_PARSE_ECHUNKLONG;
		if (c == '\n')
			return HTTP_PARSE_EEOL;
		return size_line_byte(d, c);
	}
	if (in_trailers(d->state)) {
		if (++d->line > HTTP_CHUNK_TRAILER_MAX)
			return HTTP_PARSE_ETRAILERLONG;
		return trailer_byte(d, c);
	}
	switch (d->state) {
	case HTTP_CHUNK_SIZE_LF:
		if (c != '\n')
			return HTTP_PARSE_EEOL; /* a bare CR */
		d->line = 0;
		d->body += d->left;
		d->state = d->left ? HTTP_CHUNK_DATA : HTTP_CHUNK_TRAILER_START;
		return HTTP_PARSE_OK;
	case HTTP_CHUNK_DATA_CR:
		if (c != '\r')
			return c == '\n' ? HTTP_PARSE_EEOL
					 : HTTP_PARSE_ECHUNKDATA;
		d->state = HTTP_CHUNK_DATA_LF;
		return HTTP_PARSE_OK;
	case HTTP_CHUNK_DATA_LF:
		if (c != '\n')
			return HTTP_PARSE_EEOL;
		d->state = HTTP_CHUNK_SIZE_START;
		return HTTP_PARSE_OK;
	default:
		return HTTP_PARSE_EINVAL;
	}
}

/*
 * The state lives in @d, never in @buf, so a cut between any two bytes
 * changes nothing but where a call returns: each byte is judged alone,
 * in order, against the state the bytes before it left.
 */
int http_chunked_parse(struct http_chunked *d, const char *buf, size_t len,
		       size_t *consumed, struct http_span *data)
{
	const unsigned char *b = (const unsigned char *)buf;
	size_t i = 0;
	int ret;

	*consumed = 0;
	*data = (struct http_span){0};
	if (d->state == HTTP_CHUNK_ERROR)
		return d->err;
	while (i < len && d->state != HTTP_CHUNK_DONE) {
		if (d->state == HTTP_CHUNK_DATA) {
			size_t take = len - i;

			if (data->ptr)
				break; /* one run per call */
			if (take > d->left)
				take = (size_t)d->left;
			data->ptr = buf + i;
			data->len = take;
			i += take;
			d->left -= take;
			if (d->left == 0)
				d->state = HTTP_CHUNK_DATA_CR;
			continue;
		}
		ret = framing_byte(d, b[i]);
		if (ret < 0) {
			d->state = HTTP_CHUNK_ERROR;
			d->err = ret;
			*consumed = i;
			return ret;
		}
		i++;
	}
	*consumed = i;
	return d->state == HTTP_CHUNK_DONE ? HTTP_PARSE_OK
					   : HTTP_PARSE_INCOMPLETE;
}

int http_parse_status(int err)
{
	switch (err) {
	case HTTP_PARSE_OK:
	case HTTP_PARSE_INCOMPLETE:
		return 0;
	case HTTP_PARSE_EINVAL:
		return 500;
	case HTTP_PARSE_ETARGETLONG:
		return 414;
	case HTTP_PARSE_ELINELONG:
	case HTTP_PARSE_EHEADLONG:
	case HTTP_PARSE_ETOOMANY:
		return 431;
	case HTTP_PARSE_EVERSION:
		return 505;
	case HTTP_PARSE_EBODYLONG:
		return 413;
	default:
		return 400;
	}
}

const char *http_parse_strerror(int err)
{
	switch (err) {
	case HTTP_PARSE_OK:
		return "ok";
	case HTTP_PARSE_INCOMPLETE:
		return "incomplete request head";
	case HTTP_PARSE_EMETHOD:
		return "invalid method token";
	case HTTP_PARSE_EREQLINE:
		return "malformed request line";
	case HTTP_PARSE_ETARGET:
		return "invalid byte in request target";
	case HTTP_PARSE_EEOL:
		return "bare CR or LF";
	case HTTP_PARSE_EHEADER:
		return "malformed header line";
	case HTTP_PARSE_EWSCOLON:
		return "whitespace before header colon";
	case HTTP_PARSE_EOBSFOLD:
		return "obsolete line folding";
	case HTTP_PARSE_ECTL:
		return "control character in header";
	case HTTP_PARSE_ECLBAD:
		return "invalid Content-Length";
	case HTTP_PARSE_ECLDUP:
		return "duplicate Content-Length";
	case HTTP_PARSE_ECLTE:
		return "both Content-Length and Transfer-Encoding";
	case HTTP_PARSE_ETE:
		return "unacceptable Transfer-Encoding";
	case HTTP_PARSE_EHOST:
		return "missing, duplicate or invalid Host";
	case HTTP_PARSE_EDUP:
		return "duplicate Range or If-Modified-Since";
	case HTTP_PARSE_EINVAL:
		return "invalid argument";
	case HTTP_PARSE_ETARGETLONG:
		return "request target too long";
	case HTTP_PARSE_ELINELONG:
		return "header line too long";
	case HTTP_PARSE_EHEADLONG:
		return "request head too large";
	case HTTP_PARSE_ETOOMANY:
		return "too many headers";
	case HTTP_PARSE_EVERSION:
		return "HTTP version not supported";
	case HTTP_PARSE_ECHUNKSIZE:
		return "missing or invalid chunk-size";
	case HTTP_PARSE_ECHUNKBIG:
		return "chunk-size over 64 bits";
	case HTTP_PARSE_ECHUNKEXT:
		return "malformed chunk extension";
	case HTTP_PARSE_ECHUNKLONG:
		return "chunk-size line too long";
	case HTTP_PARSE_ECHUNKDATA:
		return "chunk data not followed by CRLF";
	case HTTP_PARSE_ETRAILERLONG:
		return "trailer section too large";
	case HTTP_PARSE_EBODYLONG:
		return "request body too large";
	default:
		return "unknown error";
	}
}
