/* SPDX-License-Identifier: MIT */
/*
 * The hand-off that punch and birthday share: a socket that found a path
 * becomes descriptor 3 of a command, connected to the peer, blocking and
 * inherited, with MESHKIT_FD=3 and MESHKIT_REMOTE=IP:PORT in its
 * environment; every other descriptor of ours is close-on-exec.
 */
#ifndef MK_HANDOFF_H
#define MK_HANDOFF_H
#include "addr.h"

/*
 * Connect fd to dial (where the socket sends: the peer's address, or
 * behind NAT64 its IPv6 form), name remote in MESHKIT_REMOTE, and exec
 * cmd. Returns only when that failed, with the exit status to use: 1 when
 * the socket could not be handed on, 127 when cmd was not found, 126 when
 * it could not run (as a shell says); the reason is on stderr.
 */
int mk_handoff_exec(int fd, const struct mk_addr *dial,
    const struct mk_addr *remote, char **cmd);
#endif
