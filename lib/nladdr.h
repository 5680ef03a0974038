/* SPDX-License-Identifier: MIT */
/*
 * Add and remove one address on an interface over rtnetlink (libmnl), as
 * `ip addr add/del` would, without running ip. Used by magicdns for
 * 100.100.100.100/32 on lo.
 */
#ifndef MK_NLADDR_H
#define MK_NLADDR_H

#include "addr.h"

/*
 * Add a (family and address; the port is ignored) with prefix length
 * plen to the interface ifindex. Returns 1 if added, 0 if the interface
 * already had it (someone else's: do not delete it later), -1 with *why
 * and errno on failure.
 */
int mk_nladdr_add(int ifindex, const struct mk_addr *a, unsigned plen,
    const char **why);

/* Remove it again. 0 (also when it was already gone) or -1 with *why. */
int mk_nladdr_del(int ifindex, const struct mk_addr *a, unsigned plen,
    const char **why);

#endif
