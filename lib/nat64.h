/* SPDX-License-Identifier: MIT */
/*
 * NAT64 for an IPv6-only host: RFC 6052 IPv4-embedded IPv6 addresses
 * (every prefix length the RFC allows) and RFC 7050 discovery of the
 * prefix (the AAAA answers for ipv4only.arpa, which only a DNS64 resolver
 * gives, hold 192.0.0.170 and 192.0.0.171 embedded in it), run off the
 * event loop with a deadline. A resolver that does no DNS64 leaves the
 * well-known prefix 64:ff9b::/96 as the one guess left.
 */
#ifndef MK_NAT64_H
#define MK_NAT64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "loop.h"

#define MK_NAT64_MAX		4	/* prefixes kept from one discovery */
#define MK_NAT64_WKP		"64:ff9b::/96"	/* RFC 6052 2.1 */
#define MK_NAT64_NAME		"ipv4only.arpa"	/* RFC 7050 2 */
#define MK_NAT64_STRLEN		(INET6_ADDRSTRLEN + 4)

struct mk_nat64_prefix {
	uint8_t		 ip[16];	/* the prefix; bits past len zero */
	unsigned	 len;		/* 32, 40, 48, 56, 64 or 96 */
};

/* One of RFC 6052's lengths (32, 40, 48, 56, 64, 96). */
bool mk_nat64_len_ok(unsigned len);
/* "prefix/len": 0, or -1 with *why (bad address, bad length, bits set
 * past the length or in bits 64-71). */
int mk_nat64_parse(struct mk_nat64_prefix *p, const char *s,
    const char **why);
char *mk_nat64_fmt(const struct mk_nat64_prefix *p, char *buf, size_t n);
void mk_nat64_wkp(struct mk_nat64_prefix *p);
bool mk_nat64_is_wkp(const struct mk_nat64_prefix *p);
bool mk_nat64_equal(const struct mk_nat64_prefix *a,
    const struct mk_nat64_prefix *b);

/* RFC 6052 2.2: v4 embedded in the prefix (bits 64-71 and the suffix
 * zero). The prefix must be valid (mk_nat64_parse's checks). */
void mk_nat64_synth(const struct mk_nat64_prefix *p, const uint8_t v4[4],
    uint8_t out[16]);
/* The IPv4 address embedded in v6 if v6 lies in the prefix with bits
 * 64-71 zero; true then. The suffix is not checked (RFC 6052 2.2: it
 * SHOULD be zero and is ignored on receipt). */
bool mk_nat64_extract(const struct mk_nat64_prefix *p, const uint8_t v6[16],
    uint8_t v4[4]);

/* Socket addresses: an IPv4 one to its IPv6 form (same port), and an IPv6
 * one inside the prefix back to IPv4. false (out untouched) otherwise. */
bool mk_nat64_addr_to6(const struct mk_nat64_prefix *p,
    const struct mk_addr *v4, struct mk_addr *out);
bool mk_nat64_addr_to4(const struct mk_nat64_prefix *p,
    const struct mk_addr *v6, struct mk_addr *out);
/* May v4 go through this prefix? Not a non-global one through the
 * well-known prefix (RFC 6052 3.1: the NAT64 refuses those). */
bool mk_nat64_reachable(const struct mk_nat64_prefix *p, const uint8_t v4[4]);

/*
 * RFC 7050 section 3: the prefixes in the AAAA answers for ipv4only.arpa.
 * In each address, 192.0.0.170 or 192.0.0.171 at one of RFC 6052's
 * positions with bits 64-71 zero; an address that holds a
 * well-known address at more than one position is decided by the other
 * answers (the other well-known address at the same position under the
 * same prefix), else ignored, so a prefix that happens to contain the
 * pattern is no false positive. Distinct prefixes in answer order; their
 * count (at most max).
 */
size_t mk_nat64_from_aaaa(const uint8_t (*aaaa)[16], size_t n,
    struct mk_nat64_prefix *out, size_t max);

/* Has this host a route to the IPv4 internet? A UDP connect, which sends
 * nothing: false when the kernel says the network is unreachable. */
bool mk_nat64_v4_routed(void);

/*
 * Discovery on a loop: look up name (NULL: ipv4only.arpa) for AAAA on a
 * thread (lib/lookup), and call done once, on the loop, with what RFC 7050
 * found (by_dns true), or when the resolver does no DNS64, fails, or the
 * timeout passes first, with the well-known prefix alone (by_dns false).
 * The struct is the caller's; it must stay put until done runs or
 * mk_nat64_disc_cancel.
 */
typedef void (*mk_nat64_done_fn)(void *arg,
    const struct mk_nat64_prefix *pfx, size_t n, bool by_dns);

struct mk_nat64_disc {
	struct mk_loop		*loop;
	struct mk_lookup	*lookup;
	struct mk_io		 io;
	struct mk_timer		 timer;
	mk_nat64_done_fn	 done;
	void			*arg;
	uint64_t		 deadline_us;
	bool			 running;
};

/* 0, or -1 with *why when the lookup could not start (done is not
 * called then). */
int mk_nat64_disc_start(struct mk_nat64_disc *d, struct mk_loop *l,
    const char *name, uint64_t timeout_us, mk_nat64_done_fn done, void *arg,
    const char **why);
bool mk_nat64_disc_running(const struct mk_nat64_disc *d);
/* Stop without calling done; idempotent, fine on a zeroed struct. */
void mk_nat64_disc_cancel(struct mk_nat64_disc *d);

#endif
