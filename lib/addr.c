/* SPDX-License-Identifier: MIT */
#include "addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int
mk_addr_split(const char *s, char *host, size_t hostlen, char *port,
    size_t portlen)
{
	const char *h = s, *hend, *p = NULL, *colon;
	size_t hl;

	if (s[0] == '[') {
		h = s + 1;
		hend = strchr(h, ']');
		if (hend == NULL)
			return -1;
		if (hend[1] == ':')
			p = hend + 2;
		else if (hend[1] != '\0')
			return -1;
	} else {
		colon = strchr(s, ':');
		/* Two or more colons and no brackets: a bare IPv6 address. */
		if (colon != NULL && strchr(colon + 1, ':') == NULL) {
			hend = colon;
			p = colon + 1;
		} else
			hend = s + strlen(s);
	}
	hl = (size_t)(hend - h);
	if (hl == 0 || hl >= hostlen)
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (p != NULL) {
		if (*p == '\0' || strlen(p) >= portlen)
			return -1;
		strcpy(port, p);
	} else
		port[0] = '\0';
	return 0;
}

static int
parse_port(const char *p, uint16_t *out)
{
	long long v;

	if (mk_strtonum(p, 0, 65535, &v) != 0)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

/* "%eth0" or "%3" after an IPv6 address; 0 when unknown. */
static unsigned
scope_id(const char *s)
{
	long long v;

	if (mk_strtonum(s, 1, 0xffffffffLL, &v) == 0)
		return (unsigned)v;
	return if_nametoindex(s);
}

static int
parse_numeric(struct mk_addr *out, const char *host, uint16_t port)
{
	struct in_addr a4;
	struct in6_addr a6;
	char buf[INET6_ADDRSTRLEN + 16], *pct;
	unsigned scope = 0;

	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, host, &a4) == 1) {
		out->sin.sin_family = AF_INET;
		out->sin.sin_addr = a4;
		out->sin.sin_port = htons(port);
		out->len = sizeof(out->sin);
		return 0;
	}
	if (strlen(host) >= sizeof(buf))
		return -1;
	strcpy(buf, host);
	if ((pct = strchr(buf, '%')) != NULL) {
		*pct++ = '\0';
		scope = scope_id(pct);
		if (scope == 0)
			return -1;
	}
	if (inet_pton(AF_INET6, buf, &a6) == 1) {
		out->sin6.sin6_family = AF_INET6;
		out->sin6.sin6_addr = a6;
		out->sin6.sin6_port = htons(port);
		out->sin6.sin6_scope_id = scope;
		out->len = sizeof(out->sin6);
		mk_addr_unmap(out);
		return 0;
	}
	return -1;
}

int
mk_addr_parse(struct mk_addr *out, const char *s, uint16_t default_port,
    unsigned flags, const char **why)
{
	char host[256], port[16];
	uint16_t p = default_port;

	if (mk_addr_split(s, host, sizeof(host), port, sizeof(port)) != 0) {
		*why = "malformed address";
		return -1;
	}
	if (port[0] != '\0') {
		if (flags & MK_ADDR_NO_PORT) {
			*why = "unexpected port";
			return -1;
		}
		if (parse_port(port, &p) != 0) {
			*why = "bad port";
			return -1;
		}
	} else if (flags & MK_ADDR_NEED_PORT) {
		*why = "missing port";
		return -1;
	}
	if (parse_numeric(out, host, p) != 0) {
		*why = "not a numeric address";
		return -1;
	}
	return 0;
}

int
mk_addr_resolve(struct mk_addr *out, const char *s, uint16_t default_port,
    int family, const char **why)
{
	struct addrinfo hints, *res = NULL, *ai;
	char host[256], port[16];
	uint16_t p = default_port;
	int rc;

	if (mk_addr_split(s, host, sizeof(host), port, sizeof(port)) != 0) {
		*why = "malformed address";
		return -1;
	}
	if (port[0] != '\0' && parse_port(port, &p) != 0) {
		*why = "bad port";
		return -1;
	}
	if (parse_numeric(out, host, p) == 0) {
		if (family != AF_UNSPEC && mk_addr_family(out) != family) {
			*why = "address of the wrong family";
			return -1;
		}
		return 0;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_flags = AI_ADDRCONFIG;
	rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc != 0) {
		*why = gai_strerror(rc);
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6)
			break;
	}
	if (ai == NULL) {
		freeaddrinfo(res);
		*why = "no usable address";
		return -1;
	}
	mk_addr_from_sa(out, ai->ai_addr, ai->ai_addrlen);
	mk_addr_set_port(out, p);
	freeaddrinfo(res);
	return 0;
}

char *
mk_addr_fmt_ip(const struct mk_addr *a, char *buf, size_t n)
{
	char tmp[INET6_ADDRSTRLEN];

	if (a->len == 0 || (a->sa.sa_family != AF_INET &&
	    a->sa.sa_family != AF_INET6)) {
		snprintf(buf, n, "-");
		return buf;
	}
	if (a->sa.sa_family == AF_INET)
		inet_ntop(AF_INET, &a->sin.sin_addr, tmp, sizeof(tmp));
	else
		inet_ntop(AF_INET6, &a->sin6.sin6_addr, tmp, sizeof(tmp));
	snprintf(buf, n, "%s", tmp);
	return buf;
}

char *
mk_addr_fmt(const struct mk_addr *a, char *buf, size_t n)
{
	char ip[INET6_ADDRSTRLEN + 1];

	if (a->len == 0 || (a->sa.sa_family != AF_INET &&
	    a->sa.sa_family != AF_INET6)) {
		snprintf(buf, n, "-");
		return buf;
	}
	mk_addr_fmt_ip(a, ip, sizeof(ip));
	if (a->sa.sa_family == AF_INET)
		snprintf(buf, n, "%s:%u", ip, mk_addr_port(a));
	else
		snprintf(buf, n, "[%s]:%u", ip, mk_addr_port(a));
	return buf;
}

void
mk_addr_from_v4(struct mk_addr *a, const uint8_t ip[4], uint16_t port)
{
	memset(a, 0, sizeof(*a));
	a->sin.sin_family = AF_INET;
	memcpy(&a->sin.sin_addr, ip, 4);
	a->sin.sin_port = htons(port);
	a->len = sizeof(a->sin);
}

void
mk_addr_from_v6(struct mk_addr *a, const uint8_t ip[16], uint16_t port)
{
	memset(a, 0, sizeof(*a));
	a->sin6.sin6_family = AF_INET6;
	memcpy(&a->sin6.sin6_addr, ip, 16);
	a->sin6.sin6_port = htons(port);
	a->len = sizeof(a->sin6);
	mk_addr_unmap(a);
}

void
mk_addr_unmap(struct mk_addr *a)
{
	uint8_t v4[4];
	uint16_t port;

	if (a->len == 0 || a->sa.sa_family != AF_INET6 ||
	    !IN6_IS_ADDR_V4MAPPED(&a->sin6.sin6_addr))
		return;
	memcpy(v4, &a->sin6.sin6_addr.s6_addr[12], 4);
	port = ntohs(a->sin6.sin6_port);
	mk_addr_from_v4(a, v4, port);
}

int
mk_addr_family(const struct mk_addr *a)
{
	return a->len == 0 ? AF_UNSPEC : a->sa.sa_family;
}

uint16_t
mk_addr_port(const struct mk_addr *a)
{
	if (a->len == 0)
		return 0;
	if (a->sa.sa_family == AF_INET)
		return ntohs(a->sin.sin_port);
	return ntohs(a->sin6.sin6_port);
}

void
mk_addr_set_port(struct mk_addr *a, uint16_t port)
{
	if (a->sa.sa_family == AF_INET)
		a->sin.sin_port = htons(port);
	else if (a->sa.sa_family == AF_INET6)
		a->sin6.sin6_port = htons(port);
}

bool
mk_addr_same_ip(const struct mk_addr *a, const struct mk_addr *b)
{
	if (a->len == 0 || b->len == 0 || a->sa.sa_family != b->sa.sa_family)
		return false;
	if (a->sa.sa_family == AF_INET)
		return a->sin.sin_addr.s_addr == b->sin.sin_addr.s_addr;
	return memcmp(&a->sin6.sin6_addr, &b->sin6.sin6_addr, 16) == 0;
}

bool
mk_addr_equal(const struct mk_addr *a, const struct mk_addr *b)
{
	return mk_addr_same_ip(a, b) && mk_addr_port(a) == mk_addr_port(b);
}

bool
mk_addr_is_any(const struct mk_addr *a)
{
	if (a->sa.sa_family == AF_INET)
		return a->sin.sin_addr.s_addr == htonl(INADDR_ANY);
	if (a->sa.sa_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&a->sin6.sin6_addr);
	return false;
}

void
mk_addr_any(struct mk_addr *a, int family, uint16_t port)
{
	static const uint8_t zero[16];

	if (family == AF_INET6)
		mk_addr_from_v6(a, zero, port);
	else
		mk_addr_from_v4(a, zero, port);
}

void
mk_addr_from_sa(struct mk_addr *a, const struct sockaddr *sa, socklen_t len)
{
	memset(a, 0, sizeof(*a));
	if (len > sizeof(a->ss))
		len = sizeof(a->ss);
	memcpy(&a->ss, sa, len);
	a->len = len;
	mk_addr_unmap(a);
}

int
mk_hostport_fmt(char *out, size_t cap, const char *host, unsigned port)
{
	bool v6 = strchr(host, ':') != NULL;

	if (port == 0)
		return snprintf(out, cap, v6 ? "[%s]" : "%s", host);
	return snprintf(out, cap, v6 ? "[%s]:%u" : "%s:%u", host, port);
}
