/* SPDX-License-Identifier: MIT */
#include "wgendpoint.h"

#include <string.h>

int
mk_wg_set_endpoint(struct mk_wg *h, struct mk_wg_device *cur,
    const struct mk_key *peer, const struct mk_addr *ep, const char **why)
{
	struct mk_wg_device chg;
	struct mk_wg_peer *p, *known;
	int rc;

	known = mk_wg_device_find_peer(cur, peer);
	if (known == NULL) {
		/* Peers come and go (wgsetup set, up --mesh): look again. */
		if (mk_wg_get(h, cur, why) != 0)
			return -1;
		mk_wg_device_sort(cur);
		known = mk_wg_device_find_peer(cur, peer);
	}
	if (known == NULL)
		return MK_WG_EP_NO_PEER;
	if (known->endpoint.len != 0 && mk_addr_equal(&known->endpoint, ep))
		return MK_WG_EP_UNCHANGED;
	memset(&chg, 0, sizeof(chg));
	if ((p = mk_wg_device_add_peer(&chg, peer)) == NULL) {
		*why = "out of memory";
		return -1;
	}
	/* update-only: a peer removed meanwhile is not created again */
	p->flags = MK_WG_PEER_UPDATE_ONLY | MK_WG_PEER_HAS_ENDPOINT;
	p->endpoint = *ep;
	rc = mk_wg_set(h, &chg, why);
	mk_wg_device_clear(&chg);
	if (rc != 0)
		return -1;
	/* find again: the set may not have moved cur's array, but be sure */
	if ((known = mk_wg_device_find_peer(cur, peer)) != NULL)
		known->endpoint = *ep;
	return MK_WG_EP_SET;
}
