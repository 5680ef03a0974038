/* SPDX-License-Identifier: MIT */
/*
 * Curve25519 keys (libsodium) in WireGuard's base64 form, hex, and
 * Tailscale's "nodekey:<hex>" form. Private keys come only from files or
 * stdin, never from argv.
 */
#ifndef MK_KEY_H
#define MK_KEY_H

#include <stddef.h>
#include <stdint.h>

#define MK_KEY_LEN	32
#define MK_KEY_B64LEN	44	/* without NUL */
#define MK_KEY_HEXLEN	64

struct mk_key {
	uint8_t b[MK_KEY_LEN];
};

/* Call once before any other mk_key function (sodium_init). 0 or -1. */
int mk_key_init(void);

/* A fresh private key, clamped as WireGuard's genkey does. */
void mk_key_generate(struct mk_key *priv);
/* A random 32-byte preshared key (no clamping). */
void mk_key_random(struct mk_key *k);
/* pub = X25519(priv, basepoint). 0, or -1 for a degenerate key. */
int mk_key_public(struct mk_key *pub, const struct mk_key *priv);

/* out: MK_KEY_B64LEN+1 / MK_KEY_HEXLEN+1 bytes. */
void mk_key_to_base64(char *out, const struct mk_key *k);
void mk_key_to_hex(char *out, const struct mk_key *k);

/*
 * Parse a key as base64 (44 chars), hex (64 chars) or "nodekey:<hex>".
 * Surrounding whitespace is not accepted here; callers trim. Returns 0, or
 * -1 with *why ("wrong length", "bad base64", ...).
 */
int mk_key_parse(struct mk_key *k, const char *s, const char **why);
/* base64 only, as WireGuard configuration wants. */
int mk_key_parse_base64(struct mk_key *k, const char *s, const char **why);

/*
 * Read a private key file (base64, optional trailing newline/whitespace, at
 * most one key). path "-" reads stdin. An empty file is an error. Returns 0,
 * or -1 with *why; errno is kept for I/O errors.
 */
int mk_key_read_file(struct mk_key *k, const char *path, const char **why);
int mk_key_read_fd(struct mk_key *k, int fd, const char **why);

/*
 * A node's own key, as punch and birthday take it (-k): the private key
 * from path, its public key, and wg-quick's warning on stderr when others
 * can reach the file (the run goes on, as wg-quick's does). 0, or -1 with
 * *why ("not a usable private key", or mk_key_read_file's reason).
 */
int mk_key_load_private(struct mk_key *priv, struct mk_key *pub,
    const char *path, const char **why);

/* Write "base64\n" to a new file created 0600 (atomically replaced). */
int mk_key_write_file(const char *path, const struct mk_key *k);

/* Constant-time equality. */
int mk_key_equal(const struct mk_key *a, const struct mk_key *b);
void mk_key_wipe(struct mk_key *k);

#endif
