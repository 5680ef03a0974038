/* SPDX-License-Identifier: MIT */
/*
 * rtnetlink through libmnl: links (create by kind, delete, up, MTU),
 * addresses and routes on one interface. What `ip link/addr/route` would
 * do, without running ip. Every request asks for an acknowledgement, so
 * the kernel's errno comes back: functions return 0, or -1 with errno.
 */
#ifndef MK_RTNL_H
#define MK_RTNL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Our routes carry this protocol number so we only ever delete our own
 * ("ip route" shows it as "proto 109"). */
#define MK_RTNL_PROTO		109
#define MK_RTNL_TABLE_MAIN	254

struct mk_rtnl;		/* an open NETLINK_ROUTE socket */

/* A prefix: an interface address or a route destination. */
struct mk_rtnl_prefix {
	uint16_t	family;		/* AF_INET or AF_INET6 */
	uint8_t		len;		/* prefix length */
	uint8_t		proto;		/* routes: rtm_protocol */
	uint32_t	table;		/* routes: table id */
	uint8_t		b[16];		/* 4 or 16 bytes by family */
};

struct mk_rtnl_link {
	uint32_t	ifindex;
	uint32_t	mtu;
	unsigned	flags;		/* IFF_UP, ... */
	char		kind[32];	/* IFLA_INFO_KIND, or "" */
};

int mk_rtnl_open(struct mk_rtnl **out);
void mk_rtnl_close(struct mk_rtnl *r);

/* RTM_NEWLINK with IFLA_INFO_KIND (create only: EEXIST if it exists). */
int mk_rtnl_link_add(struct mk_rtnl *r, const char *name, const char *kind);
int mk_rtnl_link_del(struct mk_rtnl *r, uint32_t ifindex);
/* ENODEV when there is no link of that name. */
int mk_rtnl_link_get(struct mk_rtnl *r, const char *name,
    struct mk_rtnl_link *out);
/* up: 1 up, 0 down, -1 leave; mtu 0: leave. */
int mk_rtnl_link_set(struct mk_rtnl *r, uint32_t ifindex, int up,
    uint32_t mtu);
/* Names of every link of this kind; *names as mk_wg_list gives them. */
int mk_rtnl_link_names(struct mk_rtnl *r, const char *kind, char ***names,
    size_t *n);

/* Interface addresses (p->proto and p->table unused). EEXIST/EADDRNOTAVAIL
 * as the kernel says. */
int mk_rtnl_addr_add(struct mk_rtnl *r, uint32_t ifindex,
    const struct mk_rtnl_prefix *p);
int mk_rtnl_addr_del(struct mk_rtnl *r, uint32_t ifindex,
    const struct mk_rtnl_prefix *p);
/* Every address on ifindex; *out is malloc'd (free it). */
int mk_rtnl_addr_list(struct mk_rtnl *r, uint32_t ifindex,
    struct mk_rtnl_prefix **out, size_t *n);

/* A unicast route "p dev ifindex" in p->table with p->proto (0 means
 * MK_RTNL_PROTO). add fails with EEXIST when the table has it already. */
int mk_rtnl_route_add(struct mk_rtnl *r, uint32_t ifindex,
    const struct mk_rtnl_prefix *p);
int mk_rtnl_route_del(struct mk_rtnl *r, uint32_t ifindex,
    const struct mk_rtnl_prefix *p);
/* Unicast routes whose only output device is ifindex, in table (0: all
 * tables but local), any protocol. *out is malloc'd. */
int mk_rtnl_route_list(struct mk_rtnl *r, uint32_t ifindex, uint32_t table,
    struct mk_rtnl_prefix **out, size_t *n);

/* Clear the host bits past p->len. */
void mk_rtnl_prefix_mask(struct mk_rtnl_prefix *p);
bool mk_rtnl_prefix_equal(const struct mk_rtnl_prefix *a,
    const struct mk_rtnl_prefix *b);

#endif
