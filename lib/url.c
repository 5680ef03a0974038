/* SPDX-License-Identifier: MIT */
#include "url.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util.h"

static int
fail(const char **why, const char *reason)
{
	*why = reason;
	return -1;
}

static bool
is_name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

/* A host name: letters, digits, '-', '_', dots between labels. */
static bool
is_host_name(const char *s)
{
	size_t i, len = strlen(s), label = 0;

	if (len == 0 || len > 253 || s[0] == '.' || s[0] == '-')
		return false;
	for (i = 0; i < len; i++) {
		if (!is_name_char((unsigned char)s[i]))
			return false;
		if (s[i] == '.') {
			if (label == 0 && i + 1 < len)
				return false;
			label = 0;
		} else if (++label > 63)
			return false;
	}
	return true;
}

/* Percent-decode n bytes of s into out (cap bytes with the NUL). */
static int
pct_decode(char *out, size_t cap, const char *s, size_t n)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= n)
				return -1;
			hi = mk_hexval(s[i + 1]);
			lo = mk_hexval(s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -1;
			c = hi << 4 | lo;
			i += 2;
		}
		if (o + 1 >= cap)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

/* The host part (after userinfo) into u->host/port/addr. */
static int
parse_authority(struct mk_url *u, const char *a, const char **why)
{
	char host[256], port[16];
	uint8_t ip[16];
	long long p;
	size_t i;

	if (mk_addr_split(a, host, sizeof(host), port, sizeof(port)) != 0)
		return fail(why, "malformed host or port");
	u->port = 0;
	if (port[0] != '\0') {
		if (mk_strtonum(port, 1, 65535, &p) != 0)
			return fail(why, "bad port");
		u->port = (uint16_t)p;
	}
	memset(&u->addr, 0, sizeof(u->addr));
	if (inet_pton(AF_INET, host, ip) == 1) {
		if (a[0] == '[')
			return fail(why, "brackets are only for IPv6 addresses");
		mk_addr_from_v4(&u->addr, ip, 0);
		u->numeric = true;
	} else if (strchr(host, ':') != NULL) {
		if (a[0] != '[')
			return fail(why, "an IPv6 address needs brackets");
		if (inet_pton(AF_INET6, host, ip) != 1)
			return fail(why, "bad IPv6 address");
		mk_addr_from_v6(&u->addr, ip, 0);
		u->numeric = true;
	} else {
		if (a[0] == '[')
			return fail(why, "brackets are only for IPv6 addresses");
		if (!is_host_name(host))
			return fail(why, "bad host name");
		for (i = 0; host[i] != '\0'; i++)
			if (host[i] >= 'A' && host[i] <= 'Z')
				host[i] = (char)(host[i] - 'A' + 'a');
	}
	if (u->numeric && mk_addr_is_any(&u->addr))
		return fail(why, "the unspecified address is no host");
	snprintf(u->host, sizeof(u->host), "%s", host);
	return 0;
}

int
mk_url_parse(struct mk_url *u, const char *s, int kind, const char **why)
{
	char auth[600];
	const char *rest, *slash, *at;
	size_t alen;
	bool v6, default_port;

	memset(u, 0, sizeof(*u));
	if (strncasecmp(s, "https://", 8) == 0) {
		u->tls = true;
		rest = s + 8;
	} else if (strncasecmp(s, "http://", 7) == 0) {
		rest = s + 7;
	} else if (kind == MK_URL_PROXY && strstr(s, "://") == NULL) {
		rest = s;
	} else
		return fail(why, kind == MK_URL_PROXY ?
		    "proxy scheme must be http://" :
		    "scheme must be https:// or http://");
	slash = strchr(rest, '/');
	alen = slash ? (size_t)(slash - rest) : strlen(rest);
	if (kind == MK_URL_RELAY && slash != NULL && strcmp(slash, "/") != 0 &&
	    strcmp(slash, "/derp") != 0)
		return fail(why, "path must be empty or /derp");
	if (alen == 0)
		return fail(why, "missing host");
	if (alen >= sizeof(auth))
		return fail(why, "host is too long");
	memcpy(auth, rest, alen);
	auth[alen] = '\0';
	at = strrchr(auth, '@');
	if (at != NULL) {
		if (kind != MK_URL_PROXY)
			return fail(why, "user information in a relay URL");
		if (pct_decode(u->userinfo, sizeof(u->userinfo), auth,
		    (size_t)(at - auth)) != 0)
			return fail(why, "bad user information");
		memmove(auth, at + 1, strlen(at + 1) + 1);
	}
	if (parse_authority(u, auth, why) != 0)
		return -1;
	if (u->port == 0 && kind == MK_URL_RELAY && !u->tls)
		return fail(why, "plain http needs a port");
	default_port = u->port == 0 || u->port == (u->tls ? 443 : 80);
	if (u->port == 0)
		u->port = u->tls ? 443 : 80;
	if (u->numeric)
		mk_addr_set_port(&u->addr, u->port);
	v6 = u->numeric && mk_addr_family(&u->addr) == AF_INET6;
	if (default_port)
		snprintf(u->authority, sizeof(u->authority), "%s%s%s",
		    v6 ? "[" : "", u->host, v6 ? "]" : "");
	else
		snprintf(u->authority, sizeof(u->authority), "%s%s%s:%u",
		    v6 ? "[" : "", u->host, v6 ? "]" : "", u->port);
	snprintf(u->url, sizeof(u->url), "%s://%s/derp",
	    u->tls ? "https" : "http", u->authority);
	return 0;
}

void
mk_url_hostport(const struct mk_url *u, char *out, size_t cap)
{
	bool v6 = u->numeric && mk_addr_family(&u->addr) == AF_INET6;

	snprintf(out, cap, "%s%s%s:%u", v6 ? "[" : "", u->host, v6 ? "]" : "",
	    u->port);
}

static bool
is_loopback(const struct mk_url *u)
{
	if (!u->numeric)
		return strcmp(u->host, "localhost") == 0 ||
		    (strlen(u->host) > 10 &&
		    strcmp(u->host + strlen(u->host) - 10, ".localhost") == 0);
	if (mk_addr_family(&u->addr) == AF_INET)
		return ((const uint8_t *)&u->addr.sin.sin_addr)[0] == 127;
	return IN6_IS_ADDR_LOOPBACK(&u->addr.sin6.sin6_addr);
}

/* One NO_PROXY entry against the host. */
static bool
entry_matches(const struct mk_url *u, const char *e, size_t n)
{
	char pat[300], host[256], port[16];
	size_t hl, pl;
	long long p;

	if (n == 0 || n >= sizeof(pat))
		return false;
	memcpy(pat, e, n);
	pat[n] = '\0';
	if (strcmp(pat, "*") == 0)
		return true;
	/* an optional port must then match too */
	if (mk_addr_split(pat, host, sizeof(host), port, sizeof(port)) != 0)
		return false;
	if (port[0] != '\0') {
		if (mk_strtonum(port, 1, 65535, &p) != 0 || p != u->port)
			return false;
	}
	if (u->numeric) {
		struct mk_addr a;
		const char *w;

		return mk_addr_parse(&a, host, 0, MK_ADDR_NO_PORT, &w) == 0 &&
		    mk_addr_same_ip(&a, &u->addr);
	}
	if (host[0] == '*')
		memmove(host, host + 1, strlen(host));
	if (host[0] == '.')
		memmove(host, host + 1, strlen(host));
	hl = strlen(u->host);
	pl = strlen(host);
	if (pl == 0 || pl > hl)
		return false;
	if (strcasecmp(u->host + hl - pl, host) != 0)
		return false;
	return pl == hl || u->host[hl - pl - 1] == '.';
}

bool
mk_url_no_proxy(const struct mk_url *u, const char *no_proxy)
{
	const char *p = no_proxy;

	if (is_loopback(u))
		return true;
	if (p == NULL)
		return false;
	while (*p != '\0') {
		size_t n = strcspn(p, ", \t");

		if (entry_matches(u, p, n))
			return true;
		p += n;
		p += strspn(p, ", \t");
	}
	return false;
}

char *
mk_url_redact(const char *s, char *out, size_t cap)
{
	const char *start, *at, *colon, *end;

	start = strstr(s, "://");
	start = start != NULL ? start + 3 : s;
	end = start + strcspn(start, "/?#");
	/* the last '@' of the authority ends the userinfo, as Go's parser */
	for (at = NULL, colon = start; colon < end; colon++)
		if (*colon == '@')
			at = colon;
	colon = at != NULL ? memchr(start, ':', (size_t)(at - start)) : NULL;
	if (colon == NULL)
		snprintf(out, cap, "%s", s);
	else
		snprintf(out, cap, "%.*s:***%s", (int)(colon - s), s, at);
	return out;
}
