/* SPDX-License-Identifier: MIT */
/*
 * The relays a node may use, from mesh.conf's "relay URL [pin]" lines or
 * from a Tailscale DERP map (--derpmap), in one shape: regions in order
 * of preference, each with the nodes a DERP client dials (mk_derpc
 * targets) and the endpoint that answers STUN. derpcat, natclass and
 * punch read relays through this, so a mesh.conf relay and a DERP map
 * region mean the same thing everywhere.
 *
 * A mesh.conf relay is one region of one node; its host answers STUN on
 * 3478 (mesh.conf(5)). Nothing is resolved here: STUN hosts stay text.
 */
#ifndef MK_RELAYSET_H
#define MK_RELAYSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "derp_client.h"
#include "derpmap.h"
#include "meshconf.h"

#define MK_RELAY_MAX_NODES	8

struct mk_relay {
	int			 region;	/* map ID; mesh.conf: 1, 2... */
	char			 code[32];	/* map code; mesh.conf: host */
	char			 name[128];	/* map name; mesh.conf: URL */
	bool			 no_home;	/* map: NoMeasureNoHome */
	struct mk_derpc_target	 nodes[MK_RELAY_MAX_NODES];
	size_t			 n_nodes;
	/* STUN: the first node with a STUN port; port 0 when none */
	char			 stun_host[260];	/* [v6] bracketed */
	char			 stun_v4[64];	/* map IPv4 field, "" or "none" */
	char			 stun_v6[64];
	char			 stun_node[64];	/* map: that node's name */
	uint16_t		 stun_port;
	char			 host[256];	/* the DERP host, for TCP checks */
	uint16_t		 tcp_port;
};

struct mk_relayset {
	struct mk_relay		*v;
	size_t			 n;
};

/* Every relay line of m, in file order. 0, or -1/ENOMEM with *why. */
int mk_relayset_from_mesh(struct mk_relayset *s, const struct mk_mesh *m,
    const char **why);
/* Every region of a DERP map, by ascending ID. 0, or -1 with *why. */
int mk_relayset_from_derpmap(struct mk_relayset *s,
    const struct mk_derpmap *dm, const char **why);
/* Read a DERP map file: 0, or -1 with "path: why" in err. */
int mk_relayset_load_derpmap(struct mk_relayset *s, const char *path,
    char *err, size_t errlen);
void mk_relayset_free(struct mk_relayset *s);

/* The region with this ID, or NULL. */
const struct mk_relay *mk_relayset_region(const struct mk_relayset *s,
    int id);
/*
 * Up to cap DERP client targets: of every relay in order (region 0), or
 * of one region. Returns how many were written.
 */
size_t mk_relayset_targets(const struct mk_relayset *s, int region,
    struct mk_derpc_target *out, size_t cap);
/*
 * The STUN host to resolve for a family (AF_INET, AF_INET6, AF_UNSPEC):
 * a map node's IPv4 (else IPv6) field when set, else its host name; NULL
 * when the relay answers no STUN.
 */
const char *mk_relay_stun_host(const struct mk_relay *r, int family);

/*
 * The relays a client program was given, in order: each of urls (with pin,
 * when given, for every one; --relay and --pin), then mesh's relays in the
 * file's order of preference (NULL: none; meshpath names it in errors). At
 * most cap targets. 0 with *n set, or -1 with a message in err naming the
 * bad URL, pin or mesh file.
 */
int mk_relayset_client_targets(const char *const *urls, size_t n_urls,
    const char *pin, const struct mk_mesh *mesh, const char *meshpath,
    struct mk_derpc_target *t, size_t cap, size_t *n, char *err,
    size_t errlen);

#endif
