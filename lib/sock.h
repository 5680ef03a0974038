/* SPDX-License-Identifier: MIT */
/* UDP sockets: bind one, or adopt one a parent handed down (--fd N). All
 * sockets returned are non-blocking and close-on-exec. */
#ifndef MK_SOCK_H
#define MK_SOCK_H

#include "addr.h"

/* mk_udp_bind flags */
#define MK_SOCK_DUALSTACK	(1U << 0)	/* AF_INET6 socket also carries IPv4 */
#define MK_SOCK_REUSEADDR	(1U << 1)
#define MK_SOCK_FREEBIND	(1U << 2)	/* bind an address not (yet) local */

/*
 * A UDP socket bound to local (family from local; port 0 = any). IPv6
 * sockets are v6-only unless MK_SOCK_DUALSTACK. Returns the fd, or -1 with
 * errno and *why naming the step that failed ("socket", "bind").
 */
int mk_udp_bind(const struct mk_addr *local, unsigned flags, const char **why);

/*
 * Take over an inherited descriptor: it must be an open UDP (datagram)
 * socket of AF_INET or AF_INET6. Sets non-blocking and close-on-exec.
 * 0, or -1 with *why ("not open", "not a datagram socket", ...).
 */
int mk_udp_adopt(int fd, const char **why);

/* Parse a descriptor number for --fd (0..INT_MAX). 0 or -1. */
int mk_fd_parse(const char *s, int *fd);

/* The socket's bound address (getsockname), unmapped. 0 or -1/errno. */
int mk_sock_local(int fd, struct mk_addr *a);
int mk_sock_family(int fd);

/*
 * The source address the kernel would pick to reach dst (a connected
 * throw-away UDP socket; sends nothing). 0 or -1/errno.
 */
int mk_route_source(const struct mk_addr *dst, struct mk_addr *src);

/* Convert a destination for sending on a socket of the given family:
 * an IPv4 address on a dual-stack IPv6 socket becomes ::ffff:a.b.c.d.
 * out may be in. */
void mk_addr_for_socket(struct mk_addr *out, const struct mk_addr *in,
    int sock_family);

#endif
