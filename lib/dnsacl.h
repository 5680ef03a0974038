/* SPDX-License-Identifier: MIT */
/*
 * Who may ask a resolver (BCP 140: not an open resolver): address prefixes
 * plus this host's own addresses; and a per-source token bucket so no one
 * source, forged or not, can make it send more than a set rate.
 */
#ifndef MK_DNSACL_H
#define MK_DNSACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

struct mk_cidr {
	uint8_t		family;
	uint8_t		bits;
	uint8_t		b[16];
};

struct mk_dnsacl {
	struct mk_cidr	*nets;		/* --allow, the defaults */
	size_t		 n_nets;
	size_t		 cap_nets;
	struct mk_cidr	*local;	/* this host's, /32 or /128 */
	size_t		 n_local;
};

/* "100.64.0.0/10", "fd7a:115c:a1e0::/48", "192.0.2.7" (a host). 0 or -1
 * with *why; host bits set past the prefix are an error. */
int mk_cidr_parse(struct mk_cidr *c, const char *s, const char **why);
bool mk_cidr_contains(const struct mk_cidr *c, const struct mk_addr *a);

void mk_dnsacl_init(struct mk_dnsacl *acl);
void mk_dnsacl_free(struct mk_dnsacl *acl);
/* Add a prefix; 0 or -1 with *why. */
int mk_dnsacl_allow(struct mk_dnsacl *acl, const char *cidr,
    const char **why);
/* Loopback and the mesh ranges (100.64.0.0/10, fd7a:115c:a1e0::/48). */
int mk_dnsacl_allow_defaults(struct mk_dnsacl *acl);
/* Read this host's addresses again (getifaddrs). 0 or -1/errno, the old
 * list kept on failure. */
int mk_dnsacl_refresh_local(struct mk_dnsacl *acl);
bool mk_dnsacl_allowed(const struct mk_dnsacl *acl, const struct mk_addr *a);
/* Loopback or one of this host's addresses: a source no one outside can
 * forge (Linux drops packets from outside that claim one). */
bool mk_dnsacl_is_local(const struct mk_dnsacl *acl, const struct mk_addr *a);

/*
 * Token buckets per source address in a fixed table: a source gets rate
 * queries a second with bursts of burst. Two sources that hash alike
 * share a slot until one is idle (the newcomer takes it over): memory
 * stays bounded whatever the number of sources.
 */
struct mk_ratelim_slot {
	uint8_t		key[17];
	uint64_t	tokens_us;	/* tokens scaled by 1,000,000 */
	uint64_t	last_us;
};

struct mk_ratelim {
	struct mk_ratelim_slot	*slot;
	size_t			 n;		/* a power of two */
	uint64_t		 rate;		/* per second */
	uint64_t		 burst;
};

/* 0 or -1/ENOMEM; rate 0 means no limit (nothing allocated). */
int mk_ratelim_init(struct mk_ratelim *rl, size_t slots, uint64_t rate,
    uint64_t burst);
void mk_ratelim_free(struct mk_ratelim *rl);
/* May a query from a pass at now_us? Takes a token if so. */
bool mk_ratelim_take(struct mk_ratelim *rl, const struct mk_addr *a,
    uint64_t now_us);

#endif
