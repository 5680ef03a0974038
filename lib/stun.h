/* SPDX-License-Identifier: MIT */
/*
 * STUN codec (RFC 8489, with RFC 5780 and RFC 3489 attributes).
 * Pure functions over byte buffers: no I/O, no allocation, every length
 * checked. Parsing fills a struct of views into the caller's buffer; building
 * appends attributes to a caller-supplied buffer.
 */
#ifndef MK_STUN_H
#define MK_STUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

#define MK_STUN_HDR_LEN		20
#define MK_STUN_COOKIE		0x2112A442U
#define MK_STUN_TXID_LEN	12
#define MK_STUN_FP_XOR		0x5354554eU
#define MK_STUN_PORT		3478
#define MK_STUN_ALT_PORT	3479
/* Longest message this codec builds or accepts over UDP. */
#define MK_STUN_MAX_LEN		1500

/* Message types (method Binding = 0x001) */
#define MK_STUN_BINDING_REQUEST		0x0001
#define MK_STUN_BINDING_INDICATION	0x0011
#define MK_STUN_BINDING_SUCCESS		0x0101
#define MK_STUN_BINDING_ERROR		0x0111

/* Attribute types */
#define MK_STUN_ATTR_MAPPED_ADDRESS	0x0001
#define MK_STUN_ATTR_RESPONSE_ADDRESS	0x0002	/* RFC 3489, unsupported */
#define MK_STUN_ATTR_CHANGE_REQUEST	0x0003
#define MK_STUN_ATTR_SOURCE_ADDRESS	0x0004	/* RFC 3489 */
#define MK_STUN_ATTR_CHANGED_ADDRESS	0x0005	/* RFC 3489 */
#define MK_STUN_ATTR_USERNAME		0x0006
#define MK_STUN_ATTR_MESSAGE_INTEGRITY	0x0008
#define MK_STUN_ATTR_ERROR_CODE		0x0009
#define MK_STUN_ATTR_UNKNOWN_ATTRIBUTES	0x000A
#define MK_STUN_ATTR_REALM		0x0014
#define MK_STUN_ATTR_NONCE		0x0015
#define MK_STUN_ATTR_MESSAGE_INTEGRITY_SHA256 0x001C
#define MK_STUN_ATTR_USERHASH		0x001E
#define MK_STUN_ATTR_XOR_MAPPED_ADDRESS	0x0020
#define MK_STUN_ATTR_PADDING		0x0026
#define MK_STUN_ATTR_RESPONSE_PORT	0x0027
#define MK_STUN_ATTR_PASSWORD_ALGORITHMS 0x8002
#define MK_STUN_ATTR_ALTERNATE_DOMAIN	0x8003
#define MK_STUN_ATTR_XOR_MAPPED_ADDRESS_ALT 0x8020 /* pre-RFC servers */
#define MK_STUN_ATTR_SOFTWARE		0x8022
#define MK_STUN_ATTR_ALTERNATE_SERVER	0x8023
#define MK_STUN_ATTR_FINGERPRINT	0x8028
#define MK_STUN_ATTR_RESPONSE_ORIGIN	0x802B
#define MK_STUN_ATTR_OTHER_ADDRESS	0x802C

/* CHANGE-REQUEST flags */
#define MK_STUN_CHANGE_IP	0x04
#define MK_STUN_CHANGE_PORT	0x02

/* mk_stun_msg.has bits: which attributes were present and valid */
#define MK_STUN_HAS_XOR_MAPPED		(1U << 0)
#define MK_STUN_HAS_MAPPED		(1U << 1)
#define MK_STUN_HAS_OTHER_ADDRESS	(1U << 2)
#define MK_STUN_HAS_RESPONSE_ORIGIN	(1U << 3)
#define MK_STUN_HAS_CHANGED_ADDRESS	(1U << 4)
#define MK_STUN_HAS_SOURCE_ADDRESS	(1U << 5)
#define MK_STUN_HAS_CHANGE_REQUEST	(1U << 6)
#define MK_STUN_HAS_SOFTWARE		(1U << 7)
#define MK_STUN_HAS_FINGERPRINT		(1U << 8)	/* present and correct */
#define MK_STUN_HAS_INTEGRITY		(1U << 9)	/* present; see verify */
#define MK_STUN_HAS_INTEGRITY_SHA256	(1U << 10)
#define MK_STUN_HAS_ERROR_CODE		(1U << 11)
#define MK_STUN_HAS_UNKNOWN_ATTRS	(1U << 12)	/* UNKNOWN-ATTRIBUTES attr */
#define MK_STUN_HAS_USERNAME		(1U << 13)
#define MK_STUN_HAS_REALM		(1U << 14)
#define MK_STUN_HAS_NONCE		(1U << 15)
#define MK_STUN_HAS_RESPONSE_PORT	(1U << 16)
#define MK_STUN_HAS_PADDING		(1U << 17)

#define MK_STUN_MAX_UNKNOWN	16

struct mk_stun_bytes {
	const uint8_t *p;	/* points into the parsed buffer */
	size_t len;
};

struct mk_stun_msg {
	uint16_t type;
	uint16_t length;		/* header length field */
	uint8_t txid[MK_STUN_TXID_LEN];
	/* RFC 3489 message: no magic cookie; the 16-byte transaction ID is
	 * then cookie position + txid (stored in legacy_txid). */
	bool rfc3489;
	uint8_t legacy_txid[16];
	uint32_t has;

	struct mk_addr xor_mapped;	/* 0x0020, or 0x8020 if 0x0020 absent */
	struct mk_addr mapped;
	struct mk_addr other_address;
	struct mk_addr response_origin;
	struct mk_addr changed_address;
	struct mk_addr source_address;
	uint32_t change_request;	/* flags as sent */
	uint16_t response_port;

	uint16_t error_code;		/* 300..699 */
	struct mk_stun_bytes error_reason;
	struct mk_stun_bytes software;
	struct mk_stun_bytes username;
	struct mk_stun_bytes realm;
	struct mk_stun_bytes nonce;
	struct mk_stun_bytes unknown_attrs;	/* UNKNOWN-ATTRIBUTES value */

	/* Comprehension-required attributes (< 0x8000) this codec does not
	 * know; a server answers 420 listing them. */
	uint16_t unknown[MK_STUN_MAX_UNKNOWN];
	size_t n_unknown;

	/* Offsets of the integrity attributes' headers from message start,
	 * for mk_stun_check_integrity; 0 when absent. */
	size_t integrity_off;
	size_t integrity_sha256_off;
	size_t integrity_sha256_len;	/* 16..32 */
};

/* Quick test, as Tailscale's stun.Is: len >= 20, top two bits zero,
 * magic cookie at offset 4. */
bool mk_stun_is(const uint8_t *buf, size_t len);

/*
 * Parse a STUN message (RFC 8489, or RFC 3489 without a cookie when the
 * type is a Binding request, success or error response and allow_3489 is
 * set).
 * Checks: header, length multiple of 4 and equal to the datagram, every
 * attribute length against its type, address families, padding within the
 * message, FINGERPRINT last and correct when present, nothing but
 * FINGERPRINT after MESSAGE-INTEGRITY(-SHA256).
 * Returns 0, or -1 with *why a static, lowercase reason.
 */
int mk_stun_parse(struct mk_stun_msg *m, const uint8_t *buf, size_t len,
    bool allow_3489, const char **why);

/* Verify MESSAGE-INTEGRITY (HMAC-SHA1) or -SHA256 with the given key.
 * 1 valid, 0 invalid, -1 no such attribute. */
int mk_stun_check_integrity(const struct mk_stun_msg *m, const uint8_t *buf,
    size_t len, const uint8_t *key, size_t keylen);
int mk_stun_check_integrity_sha256(const struct mk_stun_msg *m,
    const uint8_t *buf, size_t len, const uint8_t *key, size_t keylen);

/* Long-term credential key: MD5(username ":" realm ":" password), the
 * password already SASLprep'd by the caller. */
int mk_stun_longterm_key(uint8_t key[16], const char *username,
    const char *realm, const char *password);

/* The builder appends to buf; any overflow sets err and later calls do
 * nothing, so callers check once at the end. */
struct mk_stun_builder {
	uint8_t *buf;
	size_t cap;
	size_t len;
	bool err;
	bool rfc3489;		/* no cookie; 16-byte txid */
};

/* Start a message. txid: 12 bytes (16 when rfc3489). */
void mk_stun_begin(struct mk_stun_builder *b, uint8_t *buf, size_t cap,
    uint16_t type, const uint8_t *txid, bool rfc3489);
void mk_stun_add_bytes(struct mk_stun_builder *b, uint16_t type,
    const void *val, size_t len);
void mk_stun_add_u32(struct mk_stun_builder *b, uint16_t type, uint32_t v);
/* MAPPED-ADDRESS-style (plain) or XOR-MAPPED-ADDRESS-style encoding. */
void mk_stun_add_addr(struct mk_stun_builder *b, uint16_t type,
    const struct mk_addr *a);
void mk_stun_add_xor_addr(struct mk_stun_builder *b, uint16_t type,
    const struct mk_addr *a);
void mk_stun_add_error(struct mk_stun_builder *b, uint16_t code,
    const char *reason);
void mk_stun_add_integrity(struct mk_stun_builder *b, const uint8_t *key,
    size_t keylen);
void mk_stun_add_integrity_sha256(struct mk_stun_builder *b,
    const uint8_t *key, size_t keylen);
void mk_stun_add_fingerprint(struct mk_stun_builder *b);
/* Length of the finished message, or 0 if anything overflowed. */
size_t mk_stun_end(struct mk_stun_builder *b);

/*
 * The request every meshkit client sends: Binding request with SOFTWARE
 * "tailnode" and FINGERPRINT (what derper requires), plus CHANGE-REQUEST
 * when change_flags is non-zero. Returns the length (40 without
 * CHANGE-REQUEST) or 0 if cap is too small.
 */
size_t mk_stun_request(uint8_t *buf, size_t cap, const uint8_t txid[12],
    uint32_t change_flags);

#define MK_STUN_SOFTWARE "tailnode"

#endif
