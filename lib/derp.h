/* SPDX-License-Identifier: MIT */
/*
 * The DERP frame codec (Tailscale's derp/derp.go, protocol version 2):
 * pure functions over buffers, no I/O. Every frame is type:u8 |
 * length:u32be | payload; encoders write whole frames (or, for packets,
 * the part before the packet bytes so callers can gather), the parser
 * decodes one payload into struct mk_derp_frame without copying.
 *
 * ClientInfo and ServerInfo are NaCl boxes (crypto_box_easy, nonce first)
 * around JSON; their JSON is built here byte for byte as Go writes it.
 */
#ifndef MK_DERP_H
#define MK_DERP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "key.h"

#define MK_DERP_MAGIC		"DERP\xf0\x9f\x94\x91"
#define MK_DERP_MAGIC_LEN	8
#define MK_DERP_HDR_LEN		5
#define MK_DERP_KEY_LEN		32
#define MK_DERP_NONCE_LEN	24
#define MK_DERP_BOX_OVERHEAD	16		/* Poly1305 tag */
#define MK_DERP_SEAL_OVERHEAD	(MK_DERP_NONCE_LEN + MK_DERP_BOX_OVERHEAD)
#define MK_DERP_MAX_PACKET	(64U << 10)	/* packet bytes, keys excluded */
#define MK_DERP_MAX_INFO	(1U << 20)
#define MK_DERP_MAX_CLIENT_INFO	(256U << 10)	/* the server's limit */
#define MK_DERP_MAX_FRAME_CLIENT (1U << 20)	/* the client's limit */
#define MK_DERP_VERSION		2
#define MK_DERP_KEEPALIVE_S	60
#define MK_DERP_SERVER_KEY_LEN	(MK_DERP_HDR_LEN + MK_DERP_MAGIC_LEN + 32)
/* Header and keys in front of a packet: SendPacket/RecvPacket, Forward. */
#define MK_DERP_PKT_HDR_LEN	(MK_DERP_HDR_LEN + MK_DERP_KEY_LEN)
#define MK_DERP_FWD_HDR_LEN	(MK_DERP_HDR_LEN + 2 * MK_DERP_KEY_LEN)
#define MK_DERP_PEER_PRESENT_LEN (32 + 16 + 2 + 1)

enum mk_derp_type {
	MK_DERP_SERVER_KEY = 0x01,
	MK_DERP_CLIENT_INFO = 0x02,
	MK_DERP_SERVER_INFO = 0x03,
	MK_DERP_SEND_PACKET = 0x04,
	MK_DERP_RECV_PACKET = 0x05,
	MK_DERP_KEEP_ALIVE = 0x06,
	MK_DERP_NOTE_PREFERRED = 0x07,
	MK_DERP_PEER_GONE = 0x08,
	MK_DERP_PEER_PRESENT = 0x09,
	MK_DERP_FORWARD_PACKET = 0x0a,
	MK_DERP_WATCH_CONNS = 0x10,
	MK_DERP_CLOSE_PEER = 0x11,
	MK_DERP_PING = 0x12,
	MK_DERP_PONG = 0x13,
	MK_DERP_HEALTH = 0x14,
	MK_DERP_RESTARTING = 0x15,
};

/* PeerGone reasons; MESH_CONN_BROKE is never on the wire. */
#define MK_DERP_GONE_DISCONNECTED	0x00
#define MK_DERP_GONE_NOT_HERE		0x01
#define MK_DERP_GONE_MESH_CONN_BROKE	0xf0

/* PeerPresent flags */
#define MK_DERP_PRESENT_REGULAR		0x01
#define MK_DERP_PRESENT_MESH_PEER	0x02
#define MK_DERP_PRESENT_PROBER		0x04
#define MK_DERP_PRESENT_NOT_IDEAL	0x08

/* The frame's name ("SendPacket"), or "unknown". */
const char *mk_derp_type_name(uint8_t type);

/* The 5-byte header. get: 1 when len >= 5 (type and length set), else 0. */
int mk_derp_hdr_get(const uint8_t *buf, size_t len, uint8_t *type,
    uint32_t *flen);
void mk_derp_hdr_put(uint8_t *out, uint8_t type, uint32_t flen);

/*
 * One decoded frame; pointers point into the payload given to the parser.
 * Which fields are set depends on the type:
 *   ServerKey      key = server public key
 *   ClientInfo     key = client public key, data = nonce || box
 *   ServerInfo     data = nonce || box
 *   SendPacket     key = destination, data = packet
 *   RecvPacket     key = source (version 2; NULL before), data = packet
 *   NotePreferred  byte = 0 or 1
 *   PeerGone       key, byte = reason (0 when an old server sent none)
 *   PeerPresent    key, addr (len 0 when absent), flags
 *   ForwardPacket  key = source, key2 = destination, data = packet
 *   ClosePeer      key
 *   Ping, Pong     ping[8]
 *   Health         data = problem text (empty: healthy)
 *   Restarting     reconnect_ms, try_for_ms
 */
struct mk_derp_frame {
	uint8_t		 type;
	const uint8_t	*key;
	const uint8_t	*key2;
	const uint8_t	*data;
	size_t		 data_len;
	uint8_t		 byte;
	uint8_t		 flags;
	struct mk_addr	 addr;
	uint8_t		 ping[8];
	uint32_t	 reconnect_ms;
	uint32_t	 try_for_ms;
};

/*
 * Decode one payload of the given type. version is the peer's protocol
 * version (RecvPacket carries its source key from 2 on). Returns 0, 1 for
 * a type this codec does not know (to be skipped, as both Go sides do),
 * or -1 with *why for a malformed payload. The packet-size limit is
 * checked here; a frame's overall length limit is the reader's (the
 * client and server allow different sizes).
 */
int mk_derp_frame_parse(struct mk_derp_frame *f, uint8_t type,
    const uint8_t *p, size_t len, int version, const char **why);

/*
 * Encoders. Fixed-size frames take an out buffer of the stated size and
 * return it; packet frames write only the header and keys (the caller
 * sends the packet bytes after them).
 */
size_t mk_derp_put_server_key(uint8_t out[MK_DERP_SERVER_KEY_LEN],
    const struct mk_key *server_pub);
size_t mk_derp_put_send_hdr(uint8_t out[MK_DERP_PKT_HDR_LEN],
    const uint8_t dst[32], size_t pkt_len);
size_t mk_derp_put_recv_hdr(uint8_t out[MK_DERP_PKT_HDR_LEN],
    const uint8_t src[32], size_t pkt_len);
size_t mk_derp_put_forward_hdr(uint8_t out[MK_DERP_FWD_HDR_LEN],
    const uint8_t src[32], const uint8_t dst[32], size_t pkt_len);
size_t mk_derp_put_keepalive(uint8_t out[MK_DERP_HDR_LEN]);
size_t mk_derp_put_watch_conns(uint8_t out[MK_DERP_HDR_LEN]);
size_t mk_derp_put_note_preferred(uint8_t out[MK_DERP_HDR_LEN + 1],
    bool preferred);
size_t mk_derp_put_peer_gone(uint8_t out[MK_DERP_HDR_LEN + 33],
    const uint8_t key[32], uint8_t reason);
/* addr may be NULL or empty (all-zero address, port 0). */
size_t mk_derp_put_peer_present(uint8_t out[MK_DERP_HDR_LEN +
    MK_DERP_PEER_PRESENT_LEN], const uint8_t key[32],
    const struct mk_addr *addr, uint8_t flags);
size_t mk_derp_put_close_peer(uint8_t out[MK_DERP_HDR_LEN + 32],
    const uint8_t key[32]);
size_t mk_derp_put_ping(uint8_t out[MK_DERP_HDR_LEN + 8],
    const uint8_t data[8]);
size_t mk_derp_put_pong(uint8_t out[MK_DERP_HDR_LEN + 8],
    const uint8_t data[8]);
size_t mk_derp_put_restarting(uint8_t out[MK_DERP_HDR_LEN + 8],
    uint32_t reconnect_ms, uint32_t try_for_ms);
/* Health: 0 when cap is too small. */
size_t mk_derp_put_health(uint8_t *out, size_t cap, const char *text);

/*
 * NaCl box as Tailscale's SealTo: nonce(24) || crypto_box_easy(msg).
 * nonce NULL means a random one. Returns the sealed length, or 0 when cap
 * is too small.
 */
size_t mk_derp_seal(uint8_t *out, size_t cap, const struct mk_key *my_priv,
    const struct mk_key *peer_pub, const uint8_t *msg, size_t len,
    const uint8_t *nonce);
/* Open nonce || box; the plaintext length, or -1 (too short, does not
 * open, or cap too small). */
long mk_derp_open(uint8_t *out, size_t cap, const struct mk_key *my_priv,
    const struct mk_key *peer_pub, const uint8_t *in, size_t len);

/*
 * ClientInfo/ServerInfo frames: the sealed JSON. ClientInfo is
 * clientPub || nonce || box, sealed client private -> server public;
 * ServerInfo is nonce || box, server private -> client public. nonce NULL
 * means random. Return the frame length, 0 when cap is too small.
 */
size_t mk_derp_put_client_info(uint8_t *out, size_t cap,
    const struct mk_key *client_priv, const struct mk_key *client_pub,
    const struct mk_key *server_pub, const char *json, size_t json_len,
    const uint8_t *nonce);
size_t mk_derp_put_server_info(uint8_t *out, size_t cap,
    const struct mk_key *server_priv, const struct mk_key *client_pub,
    const char *json, size_t json_len, const uint8_t *nonce);

struct mk_derp_client_info {
	int	 version;
	bool	 has_mesh_key;
	uint8_t	 mesh_key[32];
	bool	 can_ack_pings;
	bool	 is_prober;
	char	 app_name[64];
};

struct mk_derp_server_info {
	int		 version;
	uint64_t	 rate_bytes;	/* TokenBucketBytesPerSecond; 0 none */
	uint64_t	 burst_bytes;	/* TokenBucketBytesBurst */
};

/*
 * JSON as Go's encoding/json writes these structs (field order,
 * omitempty): tailscaled's ClientInfo is exactly
 * {"version":2,"CanAckPings":true}. Return the length (NUL-terminated),
 * 0 when cap is too small.
 */
size_t mk_derp_client_info_json(const struct mk_derp_client_info *ci,
    char *out, size_t cap);
size_t mk_derp_server_info_json(const struct mk_derp_server_info *si,
    char *out, size_t cap);
/*
 * Parse with Go's leniency: field names match case-insensitively, unknown
 * fields are ignored, a null field is left unset, and a ClientInfo of JSON
 * null is an empty one (derper accepts it). 0, or -1 with *why.
 */
int mk_derp_client_info_parse(struct mk_derp_client_info *ci,
    const char *json, size_t len, const char **why);
int mk_derp_server_info_parse(struct mk_derp_server_info *si,
    const char *json, size_t len, const char **why);

/* 64 hex digits (either case) into 32 bytes, for mesh keys. 0 or -1. */
int mk_derp_mesh_key_parse(uint8_t out[32], const char *s, size_t len);

#endif
