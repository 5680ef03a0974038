/* SPDX-License-Identifier: MIT */
/*
 * mesh.conf(5): the one line-oriented file every node of a mesh shares.
 * One keyword a line, then whitespace-separated fields; # starts a comment.
 * The parser checks everything it can without the network (host names are
 * kept as text, never resolved) and reports the first problem as
 * "FILE:LINE: reason". Every program reads only the parts it needs.
 */
#ifndef MK_MESHCONF_H
#define MK_MESHCONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "key.h"

#define MK_MESH_DEFAULT_PATH	"/etc/meshkit/mesh.conf"
#define MK_MESH_ENV		"MESHKIT_CONF"

/* Limits; going past one is an error, never a silent truncation. */
#define MK_MESH_MAX_LINE	4096		/* bytes, without CR/LF */
#define MK_MESH_MAX_FILE	(16U << 20)	/* bytes */
#define MK_MESH_MAX_NODES	65536
#define MK_MESH_MAX_ADDRS	4		/* per node */
#define MK_MESH_MAX_RELAYS	256
#define MK_MESH_MAX_STUN	256
#define MK_MESH_MAX_OPTIONS	8

#define MK_MESH_NAME_MAX	63		/* a node name: a DNS label */
#define MK_MESH_DOMAIN_MAX	253		/* no trailing dot */
#define MK_MESH_STUN_PORT	3478
#define MK_MESH_KEEPALIVE_DEFAULT 25		/* seconds */

/* The mesh address ranges (Tailscale's). */
#define MK_MESH_V4_NET		"100.64.0.0/10"
#define MK_MESH_V6_NET		"fd7a:115c:a1e0::/48"

/* A DERP server. url is normalised: "https://host[:port]/derp". */
struct mk_mesh_relay {
	char		url[320];
	char		host[256];	/* name or address, no brackets */
	uint16_t	port;		/* 443 when https:// has none */
	bool		tls;		/* https:// */
	bool		has_pin;
	uint8_t		pin[32];	/* SHA-256 of its DER cert */
	unsigned	line;
};

/*
 * A STUN server. host is the text of the file (a name is not resolved);
 * addr is filled when host is a numeric address, else addr.len is 0 and
 * the program resolves host (mk_addr_resolve) when it needs to. When the
 * file has no stun line, one entry per relay host (port 3478) is implied,
 * with from_relay set.
 */
struct mk_mesh_stun {
	char		host[256];
	uint16_t	port;
	struct mk_addr	addr;
	bool		from_relay;
	unsigned	line;
};

/* A mesh address with its prefix length; the port is always 0. */
struct mk_mesh_node {
	char		name[MK_MESH_NAME_MAX + 1];	/* lowercase */
	struct mk_key	pubkey;
	struct mk_addr	addrs[MK_MESH_MAX_ADDRS];
	uint8_t		prefix[MK_MESH_MAX_ADDRS];	/* 32 or 128 */
	size_t		n_addrs;
	unsigned	line;
};

/* An option line (or the birthday shorthand), as written. */
struct mk_mesh_option {
	char		key[16];
	char		value[16];
	unsigned	line;
};

struct mk_mesh_index;	/* private: hash tables for the find functions */

/*
 * Zero-initialisable; owned by the caller, released with mk_mesh_free.
 * Arrays keep file order (relays in order of preference).
 */
struct mk_mesh {
	char			 domain[MK_MESH_DOMAIN_MAX + 1]; /* or "" */
	unsigned		 domain_line;
	struct mk_mesh_relay	*relays;
	size_t			 n_relays;
	struct mk_mesh_stun	*stun;
	size_t			 n_stun;
	struct mk_mesh_node	*nodes;
	size_t			 n_nodes;
	struct mk_mesh_option	 options[MK_MESH_MAX_OPTIONS];
	size_t			 n_options;
	bool			 birthday;	/* default off */
	unsigned		 keepalive;	/* seconds; default 25 */
	struct mk_mesh_index	*idx;
};

/*
 * Parse text (len bytes, need not be NUL-terminated); name is the file
 * name used in messages. m is overwritten, not freed first: to reload,
 * parse into a fresh struct and swap. Returns 0, or -1 with
 * "name:line: reason" (or "name: reason") in err and errno EINVAL (EFBIG
 * for a file over the size limit, ENOMEM), m left empty; mk_mesh_free on
 * it is still safe. err may be NULL; a short err is truncated.
 */
int mk_mesh_parse(struct mk_mesh *m, const char *text, size_t len,
    const char *name, char *err, size_t errlen);

/*
 * Read and parse a file; path "-" reads stdin (named "(stdin)" in
 * messages). I/O errors give "path: strerror" with errno kept.
 */
int mk_mesh_load(struct mk_mesh *m, const char *path, char *err,
    size_t errlen);

/* Free everything and leave m zeroed. NULL-safe, idempotent. */
void mk_mesh_free(struct mk_mesh *m);

/* $MESHKIT_CONF when set and not empty, else MK_MESH_DEFAULT_PATH. */
const char *mk_mesh_default_path(void);
/*
 * The mesh file a program was given (-c), else the default one
 * (mk_mesh_default_path) if it exists: 1 loaded, 0 no file (only without
 * one given), -1 with err as mk_mesh_load. A given file that is missing
 * is an error; a missing default is not.
 */
int mk_mesh_load_given(struct mk_mesh *m, const char *given, char *err,
    size_t errlen);

/* The node with this public key, or NULL. */
const struct mk_mesh_node *mk_mesh_find_key(const struct mk_mesh *m,
    const struct mk_key *pub);
/*
 * The node called name, case-insensitively; "name.DOMAIN" and a trailing
 * dot ("name.DOMAIN.", as DNS asks) are accepted too. NULL if none.
 */
const struct mk_mesh_node *mk_mesh_find_name(const struct mk_mesh *m,
    const char *name);
/* The node owning this mesh address (the port is ignored), or NULL. */
const struct mk_mesh_node *mk_mesh_find_addr(const struct mk_mesh *m,
    const struct mk_addr *a);

/* "name.domain" (or "name" without a domain) into buf; returns buf. */
char *mk_mesh_node_fqdn(const struct mk_mesh *m,
    const struct mk_mesh_node *n, char *buf, size_t len);

/*
 * This node: read the private key in keyfile (its public half found in
 * m, read from the file meshname), for programs that run as one node of
 * the mesh (wgsetup up --mesh, punch --node). 0 with *self and the keys
 * set (wipe priv after use), or -1 with err ("KEYFILE: why", or
 * "KEYFILE: this key is no node of MESHNAME").
 */
int mk_mesh_self(const struct mk_mesh *m, const char *meshname,
    const char *keyfile,
    struct mk_key *priv, struct mk_key *pub,
    const struct mk_mesh_node **self, char *err, size_t errlen);

/* The value of an option as written ("on", "25"), or NULL if not set. */
const char *mk_mesh_option(const struct mk_mesh *m, const char *key);

#endif
