/* SPDX-License-Identifier: MIT */
/*
 * Name lookups that never block an event loop: getaddrinfo on a lib/task
 * thread, the answer announced on a descriptor. A caller that gives up
 * (a deadline, a shutdown) frees the lookup at once; the thread finishes
 * alone and cleans up after itself.
 */
#ifndef MK_LOOKUP_H
#define MK_LOOKUP_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"

#define MK_LOOKUP_MAX	8	/* addresses kept from one answer */

struct mk_lookup;

/*
 * Look up host (a name or a numeric address) for port; family AF_UNSPEC,
 * AF_INET or AF_INET6; socktype SOCK_DGRAM or SOCK_STREAM. NULL with *why
 * when the lookup could not start.
 */
struct mk_lookup *mk_lookup_start(const char *host, uint16_t port, int family,
    int socktype, const char **why);
/* Becomes readable (EPOLLIN) when the answer is in. */
int mk_lookup_fd(const struct mk_lookup *l);
/*
 * 0: still running. 1: done, with up to max addresses (IPv4-mapped ones
 * unmapped) in out and their count in *n. -1: done, nothing found, *why
 * says why (getaddrinfo's words, or "no address of that family").
 */
int mk_lookup_result(struct mk_lookup *l, struct mk_addr *out, size_t max,
    size_t *n, const char **why);
/*
 * For programs without a loop: wait until the answer is in or the
 * monotonic deadline (mk_now_us) passes. 1 done, 0 timed out.
 */
int mk_lookup_wait(const struct mk_lookup *l, uint64_t deadline_us);
void mk_lookup_free(struct mk_lookup *l);

#endif
