/* SPDX-License-Identifier: MIT */
/*
 * Tailscale's disco messages (disco/disco.go): Ping, Pong and CallMeMaybe,
 * sealed in a NaCl box between two Curve25519 keys. In meshkit the disco
 * key is the node key. A packet is
 *
 *	magic "TS\xf0\x9f\x92\xac" (6) | sender public key (32) | nonce (24) |
 *	Poly1305 tag (16) | ciphertext
 *
 * and the plaintext is type u8 | version u8 | payload. Pure functions over
 * caller-provided buffers (never overlapping): no I/O, no allocation,
 * every length checked. Call mk_key_init() (sodium_init) before the key
 * and sealing functions.
 */
#ifndef MK_DISCO_H
#define MK_DISCO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "addr.h"
#include "key.h"

#define MK_DISCO_MAGIC		"TS\xf0\x9f\x92\xac"
#define MK_DISCO_MAGIC_LEN	6
#define MK_DISCO_NONCE_LEN	24
#define MK_DISCO_HDR_LEN	(MK_DISCO_MAGIC_LEN + MK_KEY_LEN + \
				    MK_DISCO_NONCE_LEN)		/* 62 */
#define MK_DISCO_TAG_LEN	16
#define MK_DISCO_OVERHEAD	(MK_DISCO_HDR_LEN + MK_DISCO_TAG_LEN)	/* 78 */
#define MK_DISCO_SHARED_LEN	32
#define MK_DISCO_VERSION	0

#define MK_DISCO_TXID_LEN	12
#define MK_DISCO_EP_LEN		18	/* IP[16] | port u16 */
/* Plaintext lengths (46, 32): ping with a node key and no padding, pong. */
#define MK_DISCO_PING_LEN	(2 + MK_DISCO_TXID_LEN + MK_KEY_LEN)
#define MK_DISCO_PONG_LEN	(2 + MK_DISCO_TXID_LEN + MK_DISCO_EP_LEN)
/* A sealed ping with a node key and no padding (discoPingSize, 124). */
#define MK_DISCO_PING_SIZE	(MK_DISCO_OVERHEAD + MK_DISCO_PING_LEN)

enum mk_disco_type {
	MK_DISCO_PING = 0x01,
	MK_DISCO_PONG = 0x02,
	MK_DISCO_CALL_ME_MAYBE = 0x03,
};

/* What a datagram on the shared UDP socket is (magicsock's packetLooksLike
 * without Geneve/peer relays). */
enum mk_disco_class {
	MK_DISCO_CLASS_OTHER = 0,
	MK_DISCO_CLASS_STUN,		/* STUN, method Binding */
	MK_DISCO_CLASS_DISCO,		/* disco magic, len >= 62 */
	MK_DISCO_CLASS_WIREGUARD,	/* first byte 1-4, bytes 1-3 zero */
};

/* One peer: its public key and the precomputed crypto_box_beforenm(peer
 * public, my private), which is symmetric, so both ends get the same. */
struct mk_disco_shared {
	struct mk_key	peer;
	uint8_t		k[MK_DISCO_SHARED_LEN];
};

/*
 * Ping. has_nodekey tells whether the 32 bytes after the TxID were on the
 * wire (Tailscale >= 1.16 always sends them); Go treats an all-zero key as
 * absent and callers should too. padding counts the bytes after that (sent
 * as zeros, to probe the path MTU). As in Go, a keyless ping with 32 or more bytes of padding
 * parses as having a (zero) key and 32 bytes less padding.
 */
struct mk_disco_ping {
	uint8_t		txid[MK_DISCO_TXID_LEN];
	bool		has_nodekey;
	struct mk_key	nodekey;
	size_t		padding;
};

/* Pong: src is where the ping came from. On the wire a 16-byte IP
 * (v4-mapped for IPv4, which parses back as AF_INET) and a port; an IPv6
 * scope id is not carried. */
struct mk_disco_pong {
	uint8_t		txid[MK_DISCO_TXID_LEN];
	struct mk_addr	src;
};

/* CallMeMaybe: endpoints stored in the caller's array. n_wire is how many
 * the message held; n = min(n_wire, capacity). */
struct mk_disco_cmm {
	struct mk_addr	*eps;
	size_t		 n;
	size_t		 n_wire;
};

struct mk_disco_msg {
	uint8_t		type;		/* enum mk_disco_type, or unknown */
	uint8_t		version;
	union {
		struct mk_disco_ping	ping;
		struct mk_disco_pong	pong;
		struct mk_disco_cmm	cmm;
	};
};

/* "ping", "pong", "call-me-maybe", or "unknown". */
const char *mk_disco_type_name(uint8_t type);

/* LooksLikeDiscoWrapper: len >= 62 and the magic. */
bool mk_disco_looks_like(const uint8_t *buf, size_t len);
/* STUN (top two bits 0, cookie at 4, buf[1] == 0x01), else disco, else
 * WireGuard, else other. */
enum mk_disco_class mk_disco_classify(const uint8_t *buf, size_t len);
/* The sender's public key of a packet that looks like disco: 0, or -1 when
 * it does not look like disco. */
int mk_disco_sender(struct mk_key *sender, const uint8_t *pkt, size_t len);

/*
 * Plaintext encoders: write into out (cap bytes) and return the length,
 * or -1 with *why ("buffer too small", "address is not IPv4 or IPv6").
 */
ssize_t mk_disco_put_ping(uint8_t *out, size_t cap,
    const struct mk_disco_ping *ping, const char **why);
ssize_t mk_disco_put_pong(uint8_t *out, size_t cap,
    const struct mk_disco_pong *pong, const char **why);
ssize_t mk_disco_put_call_me_maybe(uint8_t *out, size_t cap,
    const struct mk_addr *eps, size_t n, const char **why);

/*
 * Parse a plaintext. CallMeMaybe endpoints go into eps[0..cap-1] (eps may
 * be NULL when cap is 0); as in Go, a CallMeMaybe whose payload is empty,
 * not a multiple of 18 bytes or whose version is not 0 is an empty list,
 * and endpoints are unmapped (::ffff:a.b.c.d -> a.b.c.d). Ping and Pong
 * ignore the version and trailing bytes. Returns 0, or -1 with *why: "short
 * message", "short ping", "short pong" or "unknown message type" (then
 * m->type and m->version are set and the message is to be ignored).
 */
int mk_disco_parse(struct mk_disco_msg *m, const uint8_t *pt, size_t len,
    struct mk_addr *eps, size_t cap, const char **why);

/* Shared key for one peer. 0, or -1 with *why for a degenerate (low order)
 * peer key. */
int mk_disco_shared_init(struct mk_disco_shared *s,
    const struct mk_key *peer_pub, const struct mk_key *my_priv,
    const char **why);
void mk_disco_shared_wipe(struct mk_disco_shared *s);

/*
 * Seal a plaintext into a packet from my_pub: out needs len + 78 bytes.
 * mk_disco_seal takes a random nonce; mk_disco_seal_nonce the one given
 * (tests only: a nonce must never repeat under one shared key). Returns
 * the packet length, or -1 with *why.
 */
ssize_t mk_disco_seal(uint8_t *out, size_t cap, const struct mk_key *my_pub,
    const struct mk_disco_shared *s, const uint8_t *pt, size_t len,
    const char **why);
ssize_t mk_disco_seal_nonce(uint8_t *out, size_t cap,
    const struct mk_key *my_pub, const struct mk_disco_shared *s,
    const uint8_t nonce[MK_DISCO_NONCE_LEN], const uint8_t *pt, size_t len,
    const char **why);

/*
 * Open a packet from the peer of s (find it by mk_disco_sender first; a
 * packet naming another sender is refused). out needs len - 78 bytes.
 * Returns the plaintext length, or -1 with *why ("not a disco packet",
 * "short packet", "not from this peer", "buffer too small", "does not
 * open"). A failure says nothing to the sender; callers drop silently.
 */
ssize_t mk_disco_open(uint8_t *out, size_t cap,
    const struct mk_disco_shared *s, const uint8_t *pkt, size_t len,
    const char **why);

/*
 * The nonces of disco packets seen lately, so that a recorded packet sent
 * again is dropped: a ring of cap nonces (the oldest goes first). A
 * replay older than the ring still fails later checks (a pong's TxID
 * must be one we sent and still wait for).
 */
struct mk_disco_replay {
	uint8_t		(*nonces)[MK_DISCO_NONCE_LEN];
	size_t		 cap, n;
};

/* 0, or -1 with errno (EINVAL for cap 0, ENOMEM). */
int mk_disco_replay_init(struct mk_disco_replay *r, size_t cap);
void mk_disco_replay_free(struct mk_disco_replay *r);
/* True when the nonce of pkt (a disco packet at least MK_DISCO_OVERHEAD
 * long, opened already) was seen; else it is remembered, and false. */
bool mk_disco_replayed(struct mk_disco_replay *r, const uint8_t *pkt);

#endif
