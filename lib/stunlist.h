/* SPDX-License-Identifier: MIT */
/*
 * Which STUN servers to ask, in the order every program looks: arguments,
 * then $STUNQ_SERVERS (space- or comma-separated), then mesh.conf's stun
 * lines, then a built-in list of public servers (which no test may use).
 */
#ifndef MK_STUNLIST_H
#define MK_STUNLIST_H

#include <stdbool.h>
#include <stddef.h>

#include "addr.h"
#include "meshconf.h"

#define MK_STUNLIST_MAX		64
#define MK_STUNLIST_NAMELEN	272	/* "[host]:port" of a 253-byte name */

struct mk_stunlist {
	char name[MK_STUNLIST_MAX][MK_STUNLIST_NAMELEN];
	size_t n;
};

extern const char *const mk_stun_builtin_servers[];
extern const size_t mk_stun_n_builtin_servers;

/* 0, or -1 with *why ("too many servers", "server name too long"). */
int mk_stunlist_add(struct mk_stunlist *l, const char *name, const char **why);
int mk_stunlist_from_env(struct mk_stunlist *l, const char *value,
    const char **why);
/* The stun lines of a parsed mesh.conf (implied ones from relays too). */
int mk_stunlist_from_mesh(struct mk_stunlist *l, const struct mk_mesh *m,
    const char **why);
int mk_stunlist_builtin(struct mk_stunlist *l, const char **why);

/*
 * The whole lookup: args, else $STUNQ_SERVERS, else the mesh's stun
 * lines (mesh may be NULL), else the built-in list if builtin allows it.
 * 0, or -1 with *why; an empty list is not an error here.
 */
int mk_stunlist_collect(struct mk_stunlist *l, char *const *args,
    size_t nargs, const struct mk_mesh *mesh, bool builtin,
    const char **why);
/* Whether mk_stunlist_collect would come to the mesh at all: a caller
 * need not read (or fail on) a mesh file it will not use. */
bool mk_stunlist_wants_mesh(size_t nargs);

/* One server's look-up result. */
struct mk_stunlist_addr {
	struct mk_addr addr;
	const char *why;	/* NULL when resolved, else why not */
	bool bad;		/* malformed (bad input), not a failed look-up */
};

/*
 * Resolve every name of l (default_port when it names none; family
 * AF_UNSPEC, AF_INET or AF_INET6) into out[i], all at once and never past
 * deadline_us (mk_now_us() time): numeric addresses at once, host names in
 * parallel with getaddrinfo_a, so a resolver that does not answer costs
 * the deadline, not its own timeouts. A look-up still running at the
 * deadline is abandoned ("name lookup timed out"). Returns how many
 * resolved.
 */
size_t mk_stunlist_resolve(const struct mk_stunlist *l, uint16_t default_port,
    int family, uint64_t deadline_us, struct mk_stunlist_addr *out);

#endif
