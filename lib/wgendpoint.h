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

#define MK_WG_EP_UNCHANGED	0	/* cur already says so */
#define MK_WG_EP_SET		1
#define MK_WG_EP_NO_PEER	2	/* the interface has no such peer */

/*
 * Set peer's endpoint on the interface open in h, unless cur (the
 * device as last read; refreshed once if the peer is not in it) already
 * says so. Returns one of the above, or -1 with *why and errno for a
 * failure of the control channel.
 */
int mk_wg_set_endpoint(struct mk_wg *h, struct mk_wg_device *cur,
    const struct mk_key *peer, const struct mk_addr *ep, const char **why);

#endif
