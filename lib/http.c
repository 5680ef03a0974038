/* SPDX-License-Identifier: MIT */
#include "http.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util.h"

/* A head: lines up to the first empty line. CRLF, or a bare LF as Go's
 * reader also takes. */
struct line_iter {
	const char	*p;
	const char	*end;
};

/* The next line without its terminator; false at the end of the head. */
static bool
next_line(struct line_iter *it, const char **s, size_t *n)
{
	const char *nl;

	if (it->p >= it->end)
		return false;
	nl = memchr(it->p, '\n', (size_t)(it->end - it->p));
	if (nl == NULL)
		return false;
	*s = it->p;
	*n = (size_t)(nl - it->p);
	if (*n > 0 && (*s)[*n - 1] == '\r')
		(*n)--;
	it->p = nl + 1;
	return true;
}

/*
 * Where the head ends (after the blank line), 0 when not yet, -1 when it
 * cannot end within the limit.
 */
static long
head_end(const char *buf, size_t len)
{
	size_t i, lim = len < MK_HTTP_MAX_HEAD ? len : MK_HTTP_MAX_HEAD;

	for (i = 0; i < lim; i++) {
		if (buf[i] != '\n')
			continue;
		if (i >= 1 && buf[i - 1] == '\n')
			return (long)(i + 1);
		if (i >= 2 && buf[i - 1] == '\r' && buf[i - 2] == '\n')
			return (long)(i + 1);
	}
	return len >= MK_HTTP_MAX_HEAD ? -1 : 0;
}

static bool
is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' &&
	    strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Copy s[0..n) into a NUL-terminated buffer; false if it does not fit or
 * holds a NUL. */
static bool
copy_field(char *dst, size_t cap, const char *s, size_t n)
{
	if (n >= cap || memchr(s, '\0', n) != NULL)
		return false;
	memcpy(dst, s, n);
	dst[n] = '\0';
	return true;
}

static void
lower(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/*
 * Split "Name: value" into name and trimmed value. Obsolete line folding
 * (a line starting with whitespace) and bad names are errors.
 */
static int
split_field(const char *s, size_t n, const char **name, size_t *nlen,
    const char **val, size_t *vlen)
{
	const char *colon = memchr(s, ':', n);
	size_t i;

	if (colon == NULL || colon == s)
		return -1;
	for (i = 0; i < (size_t)(colon - s); i++)
		if (!is_tchar((unsigned char)s[i]))
			return -1;
	*name = s;
	*nlen = (size_t)(colon - s);
	*val = colon + 1;
	*vlen = n - *nlen - 1;
	while (*vlen > 0 && (**val == ' ' || **val == '\t')) {
		(*val)++;
		(*vlen)--;
	}
	while (*vlen > 0 && ((*val)[*vlen - 1] == ' ' ||
	    (*val)[*vlen - 1] == '\t'))
		(*vlen)--;
	for (i = 0; i < *vlen; i++)
		if ((*val)[i] == '\0' || (*val)[i] == '\r')
			return -1;
	return 0;
}

static bool
name_is(const char *name, size_t nlen, const char *want)
{
	return strlen(want) == nlen && strncasecmp(name, want, nlen) == 0;
}

/* Does a comma-separated list hold this token (case-insensitive)? */
static bool
has_token(const char *v, size_t n, const char *tok)
{
	size_t tl = strlen(tok), i = 0;

	while (i < n) {
		size_t j = i, a, b;

		while (j < n && v[j] != ',')
			j++;
		a = i;
		b = j;
		while (a < b && (v[a] == ' ' || v[a] == '\t'))
			a++;
		while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t'))
			b--;
		if (b - a == tl && strncasecmp(v + a, tok, tl) == 0)
			return true;
		i = j + 1;
	}
	return false;
}

/* "HTTP/1.x"; the minor digit, or -1. */
static int
parse_version(const char *s, size_t n)
{
	if (n != 8 || memcmp(s, "HTTP/1.", 7) != 0 || s[7] < '0' ||
	    s[7] > '9')
		return -1;
	return s[7] - '0';
}

/* derper's rule: at most 64 of [A-Za-z0-9._:-]. */
static bool
valid_challenge(const char *v, size_t n)
{
	size_t i;

	if (n == 0 || n > 64)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		    c == ':' || c == '-'))
			return false;
	}
	return true;
}

static int
parse_request_line(struct mk_http_req *r, const char *s, size_t n,
    const char **why)
{
	const char *sp1, *sp2, *target, *q;
	size_t i, tlen;

	sp1 = memchr(s, ' ', n);
	if (sp1 == NULL || sp1 == s) {
		*why = "malformed request line";
		return -1;
	}
	sp2 = memchr(sp1 + 1, ' ', n - (size_t)(sp1 + 1 - s));
	if (sp2 == NULL) {
		*why = "malformed request line";
		return -1;
	}
	for (i = 0; i < (size_t)(sp1 - s); i++)
		if (!is_tchar((unsigned char)s[i])) {
			*why = "bad method";
			return -1;
		}
	if (!copy_field(r->method, sizeof(r->method), s,
	    (size_t)(sp1 - s))) {
		*why = "method too long";
		return -1;
	}
	r->minor = parse_version(sp2 + 1, n - (size_t)(sp2 + 1 - s));
	if (r->minor < 0) {
		*why = "not HTTP/1.x";
		return -1;
	}
	target = sp1 + 1;
	tlen = (size_t)(sp2 - target);
	/* absolute-form, as a proxy might forward it: keep only the path */
	if (tlen > 7 && (strncasecmp(target, "http://", 7) == 0 ||
	    strncasecmp(target, "https://", 8) == 0)) {
		const char *p = memchr(target + 8, '/', tlen - 8);

		if (p == NULL) {
			target = "/";
			tlen = 1;
		} else {
			tlen -= (size_t)(p - target);
			target = p;
		}
	}
	if (tlen == 0 || target[0] != '/') {
		*why = "bad request target";
		return -1;
	}
	for (i = 0; i < tlen; i++)
		if ((unsigned char)target[i] <= ' ' ||
		    (unsigned char)target[i] == 0x7f) {
			*why = "bad request target";
			return -1;
		}
	q = memchr(target, '?', tlen);
	if (q != NULL)
		tlen = (size_t)(q - target);
	if (!copy_field(r->path, sizeof(r->path), target, tlen)) {
		*why = "request target too long";
		return -1;
	}
	return 0;
}

static int
request_field(struct mk_http_req *r, const char *name, size_t nlen,
    const char *v, size_t vlen, const char **why)
{
	if (name_is(name, nlen, "Host")) {
		if (!copy_field(r->host, sizeof(r->host), v, vlen)) {
			*why = "Host too long";
			return -1;
		}
	} else if (name_is(name, nlen, "Upgrade")) {
		/* one protocol is all DERP needs; a longer list is kept
		 * cut, and so matches nothing */
		if (!copy_field(r->upgrade, sizeof(r->upgrade), v, vlen))
			snprintf(r->upgrade, sizeof(r->upgrade), "?");
		lower(r->upgrade);
	} else if (name_is(name, nlen, "Connection")) {
		r->conn_upgrade |= has_token(v, vlen, "upgrade");
	} else if (name_is(name, nlen, "Derp-Fast-Start")) {
		r->fast_start = vlen == 1 && v[0] == '1';
	} else if (name_is(name, nlen, "Ideal-Node")) {
		if (!copy_field(r->ideal_node, sizeof(r->ideal_node), v, vlen))
			r->ideal_node[0] = '\0';
	} else if (name_is(name, nlen, "X-Tailscale-Challenge")) {
		r->has_challenge = valid_challenge(v, vlen) &&
		    copy_field(r->challenge, sizeof(r->challenge), v, vlen);
	}
	return 0;
}

long
mk_http_parse_request(struct mk_http_req *r, const char *buf, size_t len,
    const char **why)
{
	struct line_iter it;
	const char *s, *name, *v;
	size_t n, nlen, vlen, nfields = 0;
	long end;

	memset(r, 0, sizeof(*r));
	end = head_end(buf, len);
	if (end <= 0) {
		if (end < 0)
			*why = "request head too long";
		return end;
	}
	it.p = buf;
	it.end = buf + end;
	if (!next_line(&it, &s, &n) || n == 0) {
		*why = "empty request line";
		return -1;
	}
	if (parse_request_line(r, s, n, why) != 0)
		return -1;
	while (next_line(&it, &s, &n) && n > 0) {
		if (++nfields > MK_HTTP_MAX_FIELDS) {
			*why = "too many header fields";
			return -1;
		}
		if (split_field(s, n, &name, &nlen, &v, &vlen) != 0) {
			*why = "malformed header field";
			return -1;
		}
		if (request_field(r, name, nlen, v, vlen, why) != 0)
			return -1;
	}
	return end;
}

static int
parse_status_line(struct mk_http_resp *r, const char *s, size_t n,
    const char **why)
{
	const char *p;
	size_t i, rest;

	if (n < 12 || s[8] != ' ' || (r->minor = parse_version(s, 8)) < 0) {
		*why = "malformed status line";
		return -1;
	}
	r->status = 0;
	for (i = 9; i < 12; i++) {
		if (s[i] < '0' || s[i] > '9') {
			*why = "malformed status code";
			return -1;
		}
		r->status = r->status * 10 + (s[i] - '0');
	}
	if (n > 12 && s[12] != ' ') {
		*why = "malformed status line";
		return -1;
	}
	p = n > 13 ? s + 13 : s + n;
	rest = (size_t)(s + n - p);
	if (rest >= sizeof(r->reason))
		rest = sizeof(r->reason) - 1;
	for (i = 0; i < rest; i++)
		r->reason[i] = (p[i] >= ' ' && p[i] < 0x7f) ? p[i] : '?';
	r->reason[rest] = '\0';
	return 0;
}

long
mk_http_parse_response(struct mk_http_resp *r, const char *buf, size_t len,
    const char **why)
{
	struct line_iter it;
	const char *s, *name, *v;
	size_t n, nlen, vlen, nfields = 0;
	long end;

	memset(r, 0, sizeof(*r));
	end = head_end(buf, len);
	if (end <= 0) {
		if (end < 0)
			*why = "response head too long";
		return end;
	}
	it.p = buf;
	it.end = buf + end;
	if (!next_line(&it, &s, &n) || parse_status_line(r, s, n, why) != 0)
		return -1;
	while (next_line(&it, &s, &n) && n > 0) {
		if (++nfields > MK_HTTP_MAX_FIELDS) {
			*why = "too many header fields";
			return -1;
		}
		if (split_field(s, n, &name, &nlen, &v, &vlen) != 0) {
			*why = "malformed header field";
			return -1;
		}
		if (name_is(name, nlen, "Upgrade")) {
			if (!copy_field(r->upgrade, sizeof(r->upgrade), v,
			    vlen))
				snprintf(r->upgrade, sizeof(r->upgrade), "?");
			lower(r->upgrade);
		} else if (name_is(name, nlen, "Derp-Version")) {
			char num[8];
			long long ver;

			if (copy_field(num, sizeof(num), v, vlen) &&
			    mk_strtonum(num, 0, 9999, &ver) == 0)
				r->derp_version = (int)ver;
		} else if (name_is(name, nlen, "Derp-Public-Key")) {
			r->has_server_key = mk_hex_decode(r->server_key, 32,
			    v, vlen) == 0;
		}
	}
	return end;
}

/* snprintf into out; 0 when it does not fit. */
static size_t
fit(int n, size_t cap)
{
	return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

static bool
safe_value(const char *s)
{
	return strpbrk(s, "\r\n") == NULL;
}

size_t
mk_http_upgrade_request(char *out, size_t cap, const char *host,
    bool fast_start)
{
	if (!safe_value(host))
		return 0;
	return fit(snprintf(out, cap,
	    "GET /derp HTTP/1.1\r\n"
	    "Host: %s\r\n"
	    "User-Agent: derpcat\r\n"
	    "Connection: Upgrade\r\n"
	    "Upgrade: DERP\r\n"
	    "%s"
	    "\r\n", host, fast_start ? "Derp-Fast-Start: 1\r\n" : ""), cap);
}

size_t
mk_http_101(char *out, size_t cap, const struct mk_key *server_pub)
{
	char hex[MK_KEY_HEXLEN + 1];

	mk_key_to_hex(hex, server_pub);
	return fit(snprintf(out, cap,
	    "HTTP/1.1 101 Switching Protocols\r\n"
	    "Upgrade: DERP\r\n"
	    "Connection: Upgrade\r\n"
	    "Derp-Version: %d\r\n"
	    "Derp-Public-Key: %s\r\n"
	    "\r\n", 2, hex), cap);
}

size_t
mk_http_connect_request(char *out, size_t cap, const char *hostport,
    const char *auth)
{
	char b64[512], authline[600];

	if (!safe_value(hostport))
		return 0;
	authline[0] = '\0';
	if (auth != NULL) {
		size_t n = strlen(auth);

		if (!safe_value(auth) || sodium_base64_ENCODED_LEN(n,
		    sodium_base64_VARIANT_ORIGINAL) > sizeof(b64))
			return 0;
		sodium_bin2base64(b64, sizeof(b64), (const unsigned char *)auth,
		    n, sodium_base64_VARIANT_ORIGINAL);
		snprintf(authline, sizeof(authline),
		    "Proxy-Authorization: Basic %s\r\n", b64);
	}
	return fit(snprintf(out, cap,
	    "CONNECT %s HTTP/1.1\r\n"
	    "Host: %s\r\n"
	    "%s"
	    "\r\n", hostport, hostport, authline), cap);
}

const char *
mk_http_reason(int status)
{
	switch (status) {
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 426: return "Upgrade Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Unknown";
	}
}

size_t
mk_http_response(char *out, size_t cap, int status, const char *extra,
    const char *body, bool head_only)
{
	size_t blen = body != NULL ? strlen(body) : 0;

	return fit(snprintf(out, cap,
	    "HTTP/1.1 %d %s\r\n"
	    "%s"
	    "Content-Length: %zu\r\n"
	    "Connection: close\r\n"
	    "\r\n"
	    "%s", status, mk_http_reason(status), extra ? extra : "", blen,
	    (body != NULL && !head_only) ? body : ""), cap);
}
