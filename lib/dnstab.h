/* SPDX-License-Identifier: MIT */
/*
 * The name table magicdns answers from: names (lowercase FQDNs without the
 * trailing dot) with their addresses, a zone (the mesh's DNS suffix) and
 * hash indexes by name and by address. Built once from mesh.conf and/or a
 * hosts file and never changed afterwards: a reload builds a new table
 * and swaps it in.
 */
#ifndef MK_DNSTAB_H
#define MK_DNSTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

struct mk_mesh;
struct mk_hosts;

#define MK_DNSTAB_NAME_MAX	253	/* text, no trailing dot */
#define MK_DNSTAB_MAX_IPS	32	/* per name */

struct mk_dnstab_ip {
	uint8_t		family;		/* AF_INET or AF_INET6 */
	uint8_t		b[16];		/* IPv4: the first 4 */
};

struct mk_dnstab_rec {
	char			*name;
	struct mk_dnstab_ip	*ip;	/* in the order added */
	size_t			 n_ip;
	size_t			 cap_ip;
};

/* An address and the first record that claimed it (for PTR). */
struct mk_dnstab_rev {
	struct mk_dnstab_ip	ip;
	uint32_t		rec;
};

struct mk_dnstab {
	char			 domain[MK_DNSTAB_NAME_MAX + 1]; /* or "" */
	size_t			 domain_len;
	uint32_t		 serial;	/* of the zone's SOA */
	struct mk_dnstab_rec	*recs;
	size_t			 n_recs;
	size_t			 cap_recs;
	struct mk_dnstab_rev	*rev;
	size_t			 n_rev;
	size_t			 cap_rev;
	uint32_t		*hname;	/* rec index + 1; 0: free */
	size_t			 hname_cap;	/* a power of two */
	uint32_t		*haddr;		/* rev index + 1 */
	size_t			 haddr_cap;
};

/* An empty table; serial is the SOA serial (callers use Unix time). */
void mk_dnstab_init(struct mk_dnstab *t, uint32_t serial);
void mk_dnstab_free(struct mk_dnstab *t);

/*
 * The zone: a DNS name, folded to lowercase, a trailing dot dropped. Set it
 * before adding names. 0, or -1 with *why.
 */
int mk_dnstab_set_domain(struct mk_dnstab *t, const char *domain,
    const char **why);

/*
 * Add an address to a name (created on first use). A one-label name is
 * taken as NAME.DOMAIN when there is a domain; other names are kept as
 * they are. The same address twice for one name is kept once. 0, or -1
 * with *why ("bad name", "too many addresses", "out of memory", ...).
 */
int mk_dnstab_add(struct mk_dnstab *t, const char *name,
    const struct mk_addr *a, const char **why);

/* Every node of a mesh with its addresses. 0, or -1 with *why. */
int mk_dnstab_add_mesh(struct mk_dnstab *t, const struct mk_mesh *m,
    const char **why);
/* Every pair of a hosts file. On error *line is the file line. */
int mk_dnstab_add_hosts(struct mk_dnstab *t, const struct mk_hosts *h,
    unsigned *line, const char **why);

/* The record for a lowercase name (len bytes, no trailing dot), or NULL. */
const struct mk_dnstab_rec *mk_dnstab_find(const struct mk_dnstab *t,
    const char *name, size_t len);
/* The first record holding this address (b: 4 or 16 bytes), or NULL. */
const struct mk_dnstab_rec *mk_dnstab_find_ip(const struct mk_dnstab *t,
    int family, const uint8_t *b);

#endif
