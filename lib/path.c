/* SPDX-License-Identifier: MIT */
#include "path.h"

#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

static const uint8_t *
v6_bytes(const struct mk_addr *a)
{
	return a->sin6.sin6_addr.s6_addr;
}

static uint32_t
v4_host(const struct mk_addr *a)
{
	return ntohl(a->sin.sin_addr.s_addr);
}

static bool
is_loopback(const struct mk_addr *a)
{
	if (mk_addr_family(a) == AF_INET)
		return (v4_host(a) >> 24) == 127;
	return IN6_IS_ADDR_LOOPBACK(&a->sin6.sin6_addr);
}

static bool
is_link_local6(const struct mk_addr *a)
{
	return mk_addr_family(a) == AF_INET6 &&
	    IN6_IS_ADDR_LINKLOCAL(&a->sin6.sin6_addr);
}

/* RFC 1918 and RFC 4193 (fc00::/7), as Go's netip.Addr.IsPrivate. */
static bool
is_private(const struct mk_addr *a)
{
	uint32_t h;

	if (mk_addr_family(a) == AF_INET6)
		return (v6_bytes(a)[0] & 0xfe) == 0xfc;
	h = v4_host(a);
	return (h >> 24) == 10 || (h >> 20) == (172 << 4 | 1) ||
	    (h >> 16) == (192 << 8 | 168);
}

/* The mesh's own addresses: Tailscale's CGNAT range and its ULA. */
static bool
is_mesh(const struct mk_addr *a)
{
	static const uint8_t ula[6] = { 0xfd, 0x7a, 0x11, 0x5c, 0xa1, 0xe0 };

	if (mk_addr_family(a) == AF_INET)
		return (v4_host(a) & 0xffc00000U) == 0x64400000U;
	return memcmp(v6_bytes(a), ula, sizeof(ula)) == 0;
}

int
mk_path_bonus(const struct mk_addr *a)
{
	int points = 0;

	if (a->len == 0)
		return 0;
	if (is_loopback(a))
		points += 50;
	else if (is_link_local6(a))
		points += 30;
	else if (is_private(a))
		points += 20;
	if (mk_addr_family(a) == AF_INET6)
		points += 10;
	return points;
}

bool
mk_path_better(const struct mk_path *a, const struct mk_path *b)
{
	int ap = 0, bp = 0;

	if (b->addr.len == 0)
		return a->addr.len != 0;
	if (a->addr.len == 0)
		return false;
	if (mk_addr_equal(&a->addr, &b->addr))
		return a->mtu > b->mtu;
	/* the faster one earns the share of time it saves, in percent */
	if (a->latency_us > b->latency_us && a->latency_us > 0)
		bp = (int)(100 - b->latency_us * 100 / a->latency_us);
	else if (b->latency_us > 0)
		ap = (int)(100 - a->latency_us * 100 / b->latency_us);
	ap += mk_path_bonus(&a->addr);
	bp += mk_path_bonus(&b->addr);
	if (ap <= 1 && bp == 0)
		return false;
	return ap > bp;
}

bool
mk_path_usable(const struct mk_addr *a)
{
	int f = mk_addr_family(a);

	if (f != AF_INET && f != AF_INET6)
		return false;
	/* (an IPv4-mapped IPv6 address is IPv4 already: mk_addr unmaps) */
	return !mk_addr_is_any(a) && !is_loopback(a) && !is_link_local6(a) &&
	    !is_mesh(a);
}

int
mk_path_local(int family, uint16_t port, struct mk_addr *out, size_t cap)
{
	struct ifaddrs *ifa, *i;
	struct mk_addr a;
	size_t n = 0, k;

	if (getifaddrs(&ifa) != 0)
		return -1;
	for (i = ifa; i != NULL && n < cap; i = i->ifa_next) {
		if (i->ifa_addr == NULL || !(i->ifa_flags & IFF_UP))
			continue;
		if (i->ifa_addr->sa_family != AF_INET &&
		    i->ifa_addr->sa_family != AF_INET6)
			continue;
		if (family != AF_UNSPEC && i->ifa_addr->sa_family != family)
			continue;
		mk_addr_from_sa(&a, i->ifa_addr,
		    i->ifa_addr->sa_family == AF_INET ?
		    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
		if (!mk_path_usable(&a))
			continue;
		mk_addr_set_port(&a, port);
		for (k = 0; k < n; k++)
			if (mk_addr_equal(&out[k], &a))
				break;
		if (k == n)
			out[n++] = a;
	}
	freeifaddrs(ifa);
	return (int)n;
}
