/* SPDX-License-Identifier: MIT */
/*
 * http_util.c - see http_util.h.
 */
#include "http_parse.h"
#include "http_util.h"

#include <string.h>

static bool lower_prefix(const char *s, size_t len, const char *p)
{
	size_t n = strlen(p);

	if (len < n)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != p[i])
			return false;
	}
	return true;
}

/* End one decoded segment [seg, *o): drop ".", refuse "..". */
static int end_segment(char *out, size_t seg, size_t *o)
{
	size_t n = *o - seg;

	if (n == 1 && out[seg] == '.') {
		*o = seg;
		return 0;
	}
	if (n == 2 && out[seg] == '.' && out[seg + 1] == '.')
		return 403;
	if (n > 0) {
		/* out has HTTP_PATH_MAX + 1 bytes: a '/' at the very end is
		 * taken off again when it ends the path. */
		if (*o > HTTP_PATH_MAX)
			return 414;
		out[(*o)++] = '/';
	}
	return 0;
}

int http_target_path(const char *target, size_t len, char *out, bool *dir)
{
	size_t i = 0, o = 0, seg = 0;
	int ret;

	*dir = false;
	/* absolute-form: skip the scheme and the authority (RFC 9112 3.2.2). */
	if (lower_prefix(target, len, "http://"))
		i = 7;
	else if (lower_prefix(target, len, "https://"))
		i = 8;
	if (i) {
		while (i < len && target[i] != '/' && target[i] != '?')
			i++;
		if (i == len || target[i] == '?')
			return 400; /* "http://host" with no path */
	}
	if (i >= len || target[i] != '/')
		return 400;
	for (; i < len && target[i] != '?' && target[i] != '#'; i++) {
		char c = target[i];

		if (c == '/') {
			ret = end_segment(out, seg, &o);
			if (ret)
				return ret;
			seg = o;
			continue;
		}
		if (c == '%') {
			int hi, lo;

			if (len - i < 3)
				return 400;
			hi = http_hex_val((unsigned char)target[i + 1]);
			lo = http_hex_val((unsigned char)target[i + 2]);
			if (hi < 0 || lo < 0)
				return 400;
			c = (char)(hi << 4 | lo);
			i += 2;
			/* An encoded slash is a slash inside a name to no
			 * one: refuse it rather than guess. */
			if (c == '/')
				return 400;
		}
		if (c == '\0')
			return 400;
		if (o >= HTTP_PATH_MAX)
			return 414;
		out[o++] = c;
	}
	/* A last segment "." names the directory it is in ("/." is the
	 * root, "/a/." is "/a/"), as a trailing slash does: without this
	 * "/." would be redirected to add the slash, to "//". */
	*dir = target[i - 1] == '/' || (o - seg == 1 && out[seg] == '.');
	ret = end_segment(out, seg, &o);
	if (ret)
		return ret;
	/* end_segment left a '/' after a non-empty last segment. */
	if (o > 0 && out[o - 1] == '/')
		o--;
	out[o] = '\0';
	return 0;
}

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* A decimal number at s[*i], of any length; false if none.  *@over is
 * set when its value does not fit in 64 bits. */
static bool number(const char *s, size_t len, size_t *i, uint64_t *out,
		   bool *over)
{
	uint64_t v = 0;
	size_t start = *i;

	while (*i < len && s[*i] >= '0' && s[*i] <= '9') {
		unsigned d = (unsigned)(s[*i] - '0');

		if (v > (UINT64_MAX - d) / 10)
			*over = true;
		v = v * 10 + d;
		(*i)++;
	}
	*out = v;
	return *i > start;
}

enum http_range_result http_range(const char *v, size_t len, uint64_t size,
				  uint64_t *first, uint64_t *last)
{
	size_t i;
	unsigned nranges = 0, nsat = 0;
	uint64_t f = 0, l = 0;

	if (!lower_prefix(v, len, "bytes="))
		return HTTP_RANGE_INVALID;
	i = 6;
	for (;;) {
		uint64_t a = 0, b = 0;
		bool has_a, has_b, over = false;

		while (i < len && is_ows(v[i]))
			i++;
		has_a = number(v, len, &i, &a, &over);
		if (i >= len || v[i] != '-')
			return over ? HTTP_RANGE_UNSAT : HTTP_RANGE_INVALID;
		i++;
		has_b = number(v, len, &i, &b, &over);
		/* No byte of any file is past 2^64 - 1: as nginx, a number
		 * that does not fit is unsatisfiable (416), not ignored. */
		if (over)
			return HTTP_RANGE_UNSAT;
		if (!has_a && !has_b)
			return HTTP_RANGE_INVALID;
		if (has_a && has_b && b < a)
			return HTTP_RANGE_INVALID;
		nranges++;
		if (!has_a) { /* suffix: the last b bytes */
			if (b > 0) {
				nsat++;
				f = b >= size ? 0 : size - b;
				l = size - 1; /* unused for an empty file */
			}
		} else if (a < size) {
			nsat++;
			f = a;
			l = (!has_b || b >= size) ? size - 1 : b;
		}
		while (i < len && is_ows(v[i]))
			i++;
		if (i == len)
			break;
		if (v[i] != ',')
			return HTTP_RANGE_INVALID;
		i++;
	}
	if (nranges > 1)
		return nsat ? HTTP_RANGE_MULTI : HTTP_RANGE_UNSAT;
	if (!nsat)
		return HTTP_RANGE_UNSAT;
	/* An empty file's only satisfiable range is a suffix, of all of
	 * it: nothing a Content-Range can state.  So 200, and no body. */
	if (size == 0)
		return HTTP_RANGE_NONE;
	*first = f;
	*last = l;
	return HTTP_RANGE_OK;
}

bool http_expect_ok(const char *v, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t start;

		while (i < len && (is_ows(v[i]) || v[i] == ','))
			i++;
		start = i;
		while (i < len && v[i] != ',')
			i++;
		/* the member without its trailing whitespace */
		size_t end = i;
		while (end > start && is_ows(v[end - 1]))
			end--;
		if (end > start &&
		    (end - start != 12 ||
		     !lower_prefix(v + start, 12, "100-continue")))
			return false;
	}
	return true;
}

size_t http_log_escape(char *dst, size_t cap, const char *src, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	if (cap == 0)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)src[i];

		if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
			if (cap - o <= 4)
				break;
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		} else {
			if (cap - o <= 1)
				break;
			dst[o++] = (char)c;
		}
	}
	dst[o] = '\0';
	return o;
}

/* @strong: W/"x" matches nothing (RFC 9110 8.8.3.2, for If-Match). */
static bool etag_match(const char *v, size_t len, const char *etag, bool strong)
{
	size_t elen = strlen(etag), i = 0;
	bool weak;

	while (i < len && is_ows(v[i]))
		i++;
	if (i < len && v[i] == '*') {
		i++;
		while (i < len && is_ows(v[i]))
			i++;
		return i == len;
	}
	while (i < len) {
		size_t start;

		weak = len - i >= 2 && v[i] == 'W' && v[i + 1] == '/';
		if (weak)
			i += 2;
		if (i >= len || v[i] != '"')
			return false;
		start = i++;
		while (i < len && v[i] != '"')
			i++;
		if (i >= len)
			return false;
		i++;
		if (i - start == elen && memcmp(v + start, etag, elen) == 0 &&
		    !(strong && weak))
			return true;
		while (i < len && is_ows(v[i]))
			i++;
		if (i < len && v[i] != ',')
			return false;
		while (i < len && (v[i] == ',' || is_ows(v[i])))
			i++;
	}
	return false;
}

bool http_etag_match(const char *v, size_t len, const char *etag)
{
	return etag_match(v, len, etag, false);
}

bool http_etag_match_strong(const char *v, size_t len, const char *etag)
{
	return etag_match(v, len, etag, true);
}

static const char wdays[7][4] = {"Sun", "Mon", "Tue", "Wed",
				 "Thu", "Fri", "Sat"};
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
				   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static int month_of(const char *s)
{
	for (int m = 0; m < 12; m++)
		if (memcmp(s, months[m], 3) == 0)
			return m;
	return -1;
}

/* Exactly @n digits at s. */
static bool digits(const char *s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

/* "HH:MM:SS" */
static bool clock_of(const char *s, int *h, int *mi, int *sec)
{
	return digits(s, 2, h) && s[2] == ':' && digits(s + 3, 2, mi) &&
	       s[5] == ':' && digits(s + 6, 2, sec) && *h < 24 && *mi < 60 &&
	       *sec < 61;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian), no timegm(): it
 * reads the TZ environment under a lock on some libcs. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + (int64_t)doe - 719468;
}

static bool make_time(int y, int mon, int d, int h, int mi, int s, time_t *out)
{
	static const unsigned char mdays[12] = {31, 29, 31, 30, 31, 30,
						31, 31, 30, 31, 30, 31};

	if (mon < 0 || d < 1 || d > mdays[mon] || y < 1970)
		return false;
	*out = (time_t)(days_from_civil(y, (unsigned)mon + 1, (unsigned)d) *
			    86400 +
			(int64_t)h * 3600 + (int64_t)mi * 60 + s);
	return true;
}

bool http_date_parse(const char *s, size_t len, time_t *out)
{
	int d, y, h, mi, sec, mon;

	/* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" (29 bytes) */
	if (len == 29 && s[3] == ',' && s[4] == ' ' && s[7] == ' ' &&
	    s[11] == ' ' && s[16] == ' ' && memcmp(s + 25, " GMT", 4) == 0) {
		if (!digits(s + 5, 2, &d) || (mon = month_of(s + 8)) < 0 ||
		    !digits(s + 12, 4, &y) || !clock_of(s + 17, &h, &mi, &sec))
			return false;
		return make_time(y, mon, d, h, mi, sec, out);
	}
	/* asctime: "Sun Nov  6 08:49:37 1994" (24 bytes) */
	if (len == 24 && s[3] == ' ' && s[7] == ' ' && s[10] == ' ' &&
	    s[19] == ' ') {
		char dd[2] = {(char)(s[8] == ' ' ? '0' : s[8]), s[9]};

		if ((mon = month_of(s + 4)) < 0 || !digits(dd, 2, &d) ||
		    !clock_of(s + 11, &h, &mi, &sec) || !digits(s + 20, 4, &y))
			return false;
		return make_time(y, mon, d, h, mi, sec, out);
	}
	/* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT" */
	const char *c = memchr(s, ',', len);
	if (c && (size_t)(s + len - c) == 24 && c[1] == ' ' && c[4] == '-' &&
	    c[8] == '-' && c[11] == ' ' && memcmp(c + 20, " GMT", 4) == 0) {
		if (!digits(c + 2, 2, &d) || (mon = month_of(c + 5)) < 0 ||
		    !digits(c + 9, 2, &y) || !clock_of(c + 12, &h, &mi, &sec))
			return false;
		/* RFC 9110 5.6.7: a two-digit year more than 50 years in
		 * the future is in the past century; 1970-2069 here. */
		y += y < 70 ? 2000 : 1900;
		return make_time(y, mon, d, h, mi, sec, out);
	}
	return false;
}

size_t http_date_format(time_t t, char out[30])
{
	int64_t days = (int64_t)t / 86400, rem = (int64_t)t % 86400;
	int64_t z, era;
	unsigned doe, yoe, doy, mp, d, m;
	int64_t y;

	if (rem < 0) {
		rem += 86400;
		days--;
	}
	/* civil_from_days */
	z = days + 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = (int64_t)yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	y += m <= 2;
	int wd = (int)((days % 7 + 11) % 7); /* 1970-01-01 was a Thursday */
	int h = (int)(rem / 3600), mi = (int)(rem / 60 % 60),
	    s = (int)(rem % 60);

	memcpy(out, wdays[wd], 3);
	out[3] = ',';
	out[4] = ' ';
	out[5] = (char)('0' + d / 10);
	out[6] = (char)('0' + d % 10);
	out[7] = ' ';
	memcpy(out + 8, months[m - 1], 3);
	out[11] = ' ';
	out[12] = (char)('0' + y / 1000 % 10);
	out[13] = (char)('0' + y / 100 % 10);
	out[14] = (char)('0' + y / 10 % 10);
	out[15] = (char)('0' + y % 10);
	out[16] = ' ';
	out[17] = (char)('0' + h / 10);
	out[18] = (char)('0' + h % 10);
	out[19] = ':';
	out[20] = (char)('0' + mi / 10);
	out[21] = (char)('0' + mi % 10);
	out[22] = ':';
	out[23] = (char)('0' + s / 10);
	out[24] = (char)('0' + s % 10);
	memcpy(out + 25, " GMT", 5);
	return 29;
}

static const struct {
	const char *ext;
	const char *type;
} mime_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"xml", "application/xml"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"avif", "image/avif"},
    {"ico", "image/x-icon"},
    {"wasm", "application/wasm"},
    {"pdf", "application/pdf"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
    {"tar", "application/x-tar"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
    {"mp3", "audio/mpeg"},
    {"ogg", "audio/ogg"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"ttf", "font/ttf"},
    {"otf", "font/otf"},
};

const char *http_mime_type(const char *path, size_t len)
{
	size_t i = len;

	while (i > 0 && path[i - 1] != '.' && path[i - 1] != '/')
		i--;
	if (i > 0 && path[i - 1] == '.') {
		size_t n = len - i;

		for (size_t k = 0;
		     k < sizeof(mime_types) / sizeof(mime_types[0]); k++) {
			const char *e = mime_types[k].ext;

			if (strlen(e) == n && lower_prefix(path + i, n, e))
				return mime_types[k].type;
		}
	}
	return "application/octet-stream";
}

const char *http_reason(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 200:
		return "OK";
	case 206:
		return "Partial Content";
	case 301:
		return "Moved Permanently";
	case 304:
		return "Not Modified";
	case 400:
		return "Bad Request";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 412:
		return "Precondition Failed";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 416:
		return "Range Not Satisfiable";
	case 417:
		return "Expectation Failed";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 503:
		return "Service Unavailable";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Unknown";
	}
}
