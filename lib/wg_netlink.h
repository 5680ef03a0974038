/* SPDX-License-Identifier: MIT */
/*
 * Kernel WireGuard through generic netlink (family "wireguard", version 1)
 * with libmnl, as wireguard-tools' ipc-linux.h does it: sets split over
 * as many messages as the peers need, each acknowledged; gets are dumps
 * whose peers may be split across messages and are coalesced. Used through
 * wgdev.h; the reply parser is here for the fuzzer.
 */
#ifndef MK_WG_NETLINK_H
#define MK_WG_NETLINK_H

#include <stddef.h>
#include <stdint.h>

#include "wgdev.h"

struct mk_wg_nl;

/* Open a generic netlink socket and resolve the family. -1/errno:
 * ENOENT when the kernel has no WireGuard. */
int mk_wg_nl_open(struct mk_wg_nl **out);
void mk_wg_nl_close(struct mk_wg_nl *nl);
int mk_wg_nl_get(struct mk_wg_nl *nl, const char *name,
    struct mk_wg_device *dev, const char **why);
int mk_wg_nl_set(struct mk_wg_nl *nl, const char *name,
    const struct mk_wg_device *dev, const char **why);
/* Messages sent by the last set (for tests and the bench). */
unsigned mk_wg_nl_last_messages(const struct mk_wg_nl *nl);

/*
 * Run one received buffer of WG_CMD_GET_DEVICE replies into dev (not
 * cleared: a dump spans buffers). A peer continued from the previous
 * message (same public key) gets its allowed IPs appended. Returns
 * MNL_CB_OK (1) when more is to come, MNL_CB_STOP (0) at the end of the
 * dump, MNL_CB_ERROR (-1) with errno (the kernel's, EPROTO for a malformed
 * reply, ENOMEM).
 */
int mk_wg_nl_parse(const void *buf, size_t len, uint32_t seq,
    uint32_t portid, struct mk_wg_device *dev);

#endif
