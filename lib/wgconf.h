/* SPDX-License-Identifier: MIT */
/*
 * wg-quick(8) configuration files: [Interface] PrivateKey, ListenPort,
 * FwMark, Address, DNS, MTU, Table; [Peer] PublicKey, PresharedKey,
 * AllowedIPs, Endpoint, PersistentKeepalive. As wg(8) reads them: keys
 * case-insensitive, whitespace ignored, # comments, lists comma-separated.
 * Hooks (PreUp, PostUp, PreDown, PostDown) and SaveConfig = true are
 * refused: wgsetup runs no shell. The first problem is reported as
 * "FILE:LINE: reason"; a private key never appears in a message.
 */
#ifndef MK_WGCONF_H
#define MK_WGCONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "wgdev.h"

#define MK_WGCONF_MAX_FILE	(64U << 20)	/* bytes */
#define MK_WGCONF_MAX_LINE	4096		/* bytes */
#define MK_WGCONF_MAX_DNS	16

/* Table values besides a table id. */
#define MK_WGCONF_TABLE_AUTO	0	/* main, without default routes */
#define MK_WGCONF_TABLE_OFF	UINT32_MAX	/* no routes */

/* mk_wgconf_parse flags */
#define MK_WGCONF_RESOLVE	(1U << 0)	/* look up Endpoint host names */

struct mk_wgconf {
	struct mk_wg_device	 dev;		/* keys, port, fwmark, peers */
	struct mk_wg_allowedip	*addrs;		/* Address: prefixes */
	size_t			 n_addrs;
	uint32_t		 mtu;		/* 0: not given */
	uint32_t		 table;		/* MK_WGCONF_TABLE_* or id */
	struct mk_addr		 dns[MK_WGCONF_MAX_DNS];	/* servers */
	size_t			 n_dns;
	size_t			 n_search;	/* DNS search domains seen */
};

/*
 * Parse text (len bytes, need not be NUL-terminated); name is used in
 * messages. Without MK_WGCONF_RESOLVE an Endpoint must be numeric. c is
 * overwritten. 0, or -1 with the message in err and errno EINVAL (EFBIG,
 * ENOMEM); c is then empty and mk_wgconf_free on it is safe.
 */
int mk_wgconf_parse(struct mk_wgconf *c, const char *text, size_t len,
    const char *name, unsigned flags, char *err, size_t errlen);
/* Read and parse a file ("-" is stdin); "path: strerror" on I/O errors. */
int mk_wgconf_load(struct mk_wgconf *c, const char *path, unsigned flags,
    char *err, size_t errlen);
void mk_wgconf_free(struct mk_wgconf *c);

/* A FwMark or `wg set ... fwmark` value: "off", decimal, or 0x and hex;
 * 32 bits. 0, or -1. */
int mk_wgconf_parse_fwmark(const char *v, uint32_t *out);


#endif
