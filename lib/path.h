/* SPDX-License-Identifier: MIT */
/*
 * Which direct path to a peer is better, and where this host can be
 * reached: the parts of Tailscale's magicsock (endpoint.go betterAddr,
 * magicsock.go's local endpoints) that are policy rather than protocol,
 * for punch. Pure functions but mk_path_local, which asks getifaddrs.
 */
#ifndef MK_PATH_H
#define MK_PATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

/* A direct path as measured: where, its round trip, the largest probe
 * that got through (0: not probed). */
struct mk_path {
	struct mk_addr	addr;		/* len 0: none */
	uint64_t	latency_us;
	uint16_t	mtu;
};

/*
 * The points an address earns before latency counts (betterAddr): +50
 * loopback, +30 IPv6 link-local, +20 private (RFC 1918, RFC 4193 ULA),
 * +10 IPv6. Private beats public at equal latency because cloud traffic
 * between public addresses costs money; IPv6 because it needs no NAT.
 */
int mk_path_bonus(const struct mk_addr *a);

/*
 * Is a better than b? The faster one earns 100 - 100 * fast / slow points,
 * plus each address's bonus. The same address: the larger MTU wins. A
 * path must beat the current one by more than 1 point (with b earning
 * none), so two near-equal paths do not flap.
 */
bool mk_path_better(const struct mk_path *a, const struct mk_path *b);

/*
 * This host's own candidates for a socket bound to port: every address of
 * every interface that is up, but loopback, IPv6 link-local and the
 * mesh's own ranges (100.64.0.0/10, fd7a:115c:a1e0::/48: a peer reaching
 * us there would already be inside the tunnel). family: AF_INET,
 * AF_INET6 or AF_UNSPEC. Returns how many were stored (at most cap), or
 * -1 with errno.
 */
int mk_path_local(int family, uint16_t port, struct mk_addr *out, size_t cap);

/* Whether an address is one mk_path_local would offer (for addresses
 * learned elsewhere, such as a peer's call-me-maybe list). */
bool mk_path_usable(const struct mk_addr *a);

#endif
