/* SPDX-License-Identifier: MIT */
/*
 * Tailscale's DERP map JSON (tailcfg.DERPMap, protocols.md 2): regions
 * keyed by decimal ID, each with its nodes in order of preference. Parsed
 * with jansson; field names match case-insensitively and unknown fields
 * are ignored, as Go's decoder does.
 */
#ifndef MK_DERPMAP_H
#define MK_DERPMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "derp_client.h"

#define MK_DERPMAP_MAX_FILE	(1U << 20)	/* as the tailscale CLI */

struct mk_derpmap_node {
	char		 name[64];
	int		 region;
	char		 host[256];
	char		 cert_name[256];	/* "" when absent */
	bool		 has_pin;		/* cert_name sha256-raw: */
	uint8_t		 pin[32];
	char		 ipv4[64];		/* "", an address or "none" */
	char		 ipv6[64];
	int		 stun_port;		/* 0 means 3478, -1 none */
	bool		 stun_only;
	int		 derp_port;		/* 0 means 443 */
	bool		 insecure;		/* InsecureForTests */
};

struct mk_derpmap_region {
	int			 id;
	char			 code[32];
	char			 name[128];
	bool			 avoid;
	bool			 no_measure_no_home;
	struct mk_derpmap_node	*nodes;
	size_t			 n_nodes;
};

struct mk_derpmap {
	struct mk_derpmap_region	*regions;	/* by ascending id */
	size_t				 n_regions;
};

/* 0, or -1 with a message in err ("Regions.900.Nodes[0]: ..."). */
int mk_derpmap_parse(struct mk_derpmap *m, const char *json, size_t len,
    char *err, size_t errlen);
/* Read (at most 1 MiB) and parse; "path: why" in err. */
int mk_derpmap_load(struct mk_derpmap *m, const char *path, char *err,
    size_t errlen);
void mk_derpmap_free(struct mk_derpmap *m);
const struct mk_derpmap_region *mk_derpmap_region(const struct mk_derpmap *m,
    int id);
/*
 * The nodes of a region a client can dial (STUNOnly ones and those
 * without any address family are left out), in order, as client
 * targets. Returns how many were written.
 */
size_t mk_derpmap_targets(const struct mk_derpmap_region *r,
    struct mk_derpc_target *out, size_t cap);

#endif
