/* SPDX-License-Identifier: MIT */
/*
 * Point one WireGuard peer at an endpoint, touching nothing else: what
 * `wgsetup endpoints` does per line and punch does per peer.
 */
#ifndef MK_WGENDPOINT_H
#define MK_WGENDPOINT_H

#include "addr.h"
#include "key.h"
#include "wgdev.h"

/*
 * Set peer's endpoint on the interface open in h, unless cur (the
 * device as last read; refreshed once if the peer is not in it) already
 * says so. Returns 1 when it was set, 0 when nothing needed setting, -1
 * with *why: "no such peer" (errno ENOENT), or the control channel's
 * failure (errno kept).
 */
int mk_wg_set_endpoint(struct mk_wg *h, struct mk_wg_device *cur,
    const struct mk_key *peer, const struct mk_addr *ep, const char **why);

#endif
