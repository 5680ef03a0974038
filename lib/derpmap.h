/* SPDX-License-Identifier: MIT */
/*
 * Tailscale's DERP map JSON (protocols.md §2): regions keyed by ID, each with
 * nodes in priority order. Parsed with jansson into plain structs; only the
 * fields meshkit uses are kept. Shared by natclass (relay latency) and
 * derpcat (--derpmap FILE --region ID).
 */
#ifndef MK_DERPMAP_H
#define MK_DERPMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MK_DERPMAP_MAX_LEN	(1 << 20)	/* the CLI caps the body at 1 MiB */

struct mk_derp_node {
	char name[64];
	int region_id;
	char host[256];		/* HostName */
	char cert_name[160];	/* CertName, e.g. "sha256-raw:<hex>" */
	char ipv4[64];		/* "" = use DNS of host; "none" = disabled */
	char ipv6[64];
	int stun_port;		/* 0 means 3478; -1 disabled */
	int derp_port;		/* 0 means 443 */
	bool stun_only;
	bool insecure_for_tests;
};

struct mk_derp_region {
	int id;
	char code[32];
	char name[128];
	bool avoid;
	bool no_measure_no_home;
	struct mk_derp_node *nodes;
	size_t n_nodes;
};

struct mk_derp_map {
	struct mk_derp_region *regions;	/* sorted by id */
	size_t n_regions;
};

/*
 * Parse a DERP map. Regions whose value is null (a policy file deleting a
 * default region) are skipped. Returns 0, or -1 with "NAME: reason" in err.
 */
int mk_derpmap_parse(struct mk_derp_map *m, const char *text, size_t len,
    const char *name, char *err, size_t errlen);
/* Read and parse a file ("-" = stdin), at most MK_DERPMAP_MAX_LEN bytes. */
int mk_derpmap_load(struct mk_derp_map *m, const char *path, char *err,
    size_t errlen);
void mk_derpmap_free(struct mk_derp_map *m);
const struct mk_derp_region *mk_derpmap_region(const struct mk_derp_map *m,
    int id);
/* The STUN port of a node: 3478 for 0, 0 when disabled (-1). */
uint16_t mk_derp_node_stun_port(const struct mk_derp_node *n);

#endif
