/* SPDX-License-Identifier: MIT */
/*
 * netmon: tell a loop when this host's network changes, as Tailscale's
 * netmon does: an address added or removed on an interface other than
 * loopback, or a default route that comes, goes or moves. Events are
 * debounced (a change brings a burst of them), so the callback runs once,
 * MK_NETMON_SETTLE_US after the last. An overrun of the kernel's queue
 * counts as a change.
 */
#ifndef MK_NETMON_H
#define MK_NETMON_H
#include <stdbool.h>
#include <stddef.h>

#include "loop.h"

#define MK_NETMON_SETTLE_US	500000

typedef void (*mk_netmon_fn)(void *arg);

struct mk_netmon {
	struct mk_loop	*loop;
	struct mk_io	 io;
	struct mk_timer	 settle;
	mk_netmon_fn	 fn;
	void		*arg;
	void		*nl;		/* struct mnl_socket */
};

/* -1 with errno (a netlink socket is not open to every sandbox). */
int mk_netmon_start(struct mk_netmon *m, struct mk_loop *l, mk_netmon_fn fn,
    void *arg);
/* Safe on a zeroed mk_netmon, and twice. */
void mk_netmon_stop(struct mk_netmon *m);
/* Whether a batch of rtnetlink messages tells of a change that matters
 * (above); for the monitor and its tests. */
bool mk_netmon_relevant(const void *buf, size_t len);
#endif
