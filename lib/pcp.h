/* SPDX-License-Identifier: MIT */
/*
 * Wire codecs of the two port-mapping protocols that share UDP port 5351:
 * PCP (RFC 6887, version 2) requests and responses, and NAT-PMP (RFC 6886,
 * version 0) responses. NAT-PMP requests are built by libnatpmp; what comes
 * back is checked here first, because libnatpmp reads a fixed 16 bytes
 * without looking at the datagram's length. Pure functions: no I/O, no
 * allocation, every length checked.
 */
#ifndef MK_PCP_H
#define MK_PCP_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"

#define MK_PCP_PORT		5351
#define MK_PCP_VERSION		2
#define MK_PCP_MAX_LEN		1100	/* RFC 6887 section 7 */
#define MK_PCP_HDR_LEN		24
#define MK_PCP_MAP_LEN		(MK_PCP_HDR_LEN + 36)
#define MK_PCP_NONCE_LEN	12

#define MK_PCP_OP_ANNOUNCE	0
#define MK_PCP_OP_MAP		1
#define MK_PCP_OP_PEER		2
#define MK_PCP_R		0x80	/* the opcode byte's response bit */

#define MK_PCP_PROTO_ALL	0
#define MK_PCP_PROTO_TCP	6
#define MK_PCP_PROTO_UDP	17

/* RFC 6887 section 7.4 */
enum mk_pcp_result {
	MK_PCP_SUCCESS = 0,
	MK_PCP_UNSUPP_VERSION = 1,
	MK_PCP_NOT_AUTHORIZED = 2,
	MK_PCP_MALFORMED_REQUEST = 3,
	MK_PCP_UNSUPP_OPCODE = 4,
	MK_PCP_UNSUPP_OPTION = 5,
	MK_PCP_MALFORMED_OPTION = 6,
	MK_PCP_NETWORK_FAILURE = 7,
	MK_PCP_NO_RESOURCES = 8,
	MK_PCP_UNSUPP_PROTOCOL = 9,
	MK_PCP_USER_EX_QUOTA = 10,
	MK_PCP_CANNOT_PROVIDE_EXTERNAL = 11,
	MK_PCP_ADDRESS_MISMATCH = 12,
	MK_PCP_EXCESSIVE_REMOTE_PEERS = 13,
};

/* The name of a PCP result code ("NOT_AUTHORIZED"); "unknown" if none. */
const char *mk_pcp_result_str(unsigned result);

/*
 * A MAP request (RFC 6887 sections 7.1 and 11.1). client is the address
 * the request leaves from (IPv4 is sent v4-mapped); a suggested external
 * address with len 0 means "no preference": ::ffff:0.0.0.0 for an IPv4
 * client, :: for IPv6. Lifetime 0 deletes the mapping of this nonce.
 */
struct mk_pcp_map_req {
	struct mk_addr client;
	uint32_t lifetime;
	uint8_t nonce[MK_PCP_NONCE_LEN];
	uint8_t protocol;
	uint16_t internal_port;
	uint16_t suggested_port;
	struct mk_addr suggested_ip;
};

/* Encoders return the length written (24 for ANNOUNCE, 60 for MAP), or 0
 * if out is too small or the client address is neither IPv4 nor IPv6. */
size_t mk_pcp_encode_announce(uint8_t *out, size_t n,
    const struct mk_addr *client);
size_t mk_pcp_encode_map(uint8_t *out, size_t n,
    const struct mk_pcp_map_req *q);

/*
 * A PCP response. The opcode-specific fields are set only when has_map:
 * a MAP response that carries its 36 bytes (a server may answer an error
 * with the header alone). external is unmapped to IPv4 where it is
 * v4-mapped and carries external_port.
 */
struct mk_pcp_resp {
	uint8_t opcode;		/* without the R bit */
	uint8_t result;
	uint32_t lifetime;
	uint32_t epoch;
	int has_map;
	uint8_t nonce[MK_PCP_NONCE_LEN];
	uint8_t protocol;
	uint16_t internal_port;
	uint16_t external_port;
	struct mk_addr external;
	unsigned n_options;
};

/*
 * Parse a datagram as a PCP response: version 2, R bit set, a multiple of
 * 4 bytes, at most 1100, options well formed. A successful MAP response
 * must hold the MAP payload. Returns 0, or -1 with *why.
 */
int mk_pcp_decode(struct mk_pcp_resp *r, const uint8_t *p, size_t len,
    const char **why);

/* NAT-PMP (RFC 6886) opcodes of requests; responses add 128. */
#define MK_NATPMP_VERSION	0
#define MK_NATPMP_OP_PUBLIC	0
#define MK_NATPMP_OP_UDP	1
#define MK_NATPMP_OP_TCP	2
#define MK_NATPMP_R		0x80

enum mk_natpmp_result {
	MK_NATPMP_SUCCESS = 0,
	MK_NATPMP_UNSUPP_VERSION = 1,
	MK_NATPMP_NOT_AUTHORIZED = 2,
	MK_NATPMP_NETWORK_FAILURE = 3,
	MK_NATPMP_NO_RESOURCES = 4,
	MK_NATPMP_UNSUPP_OPCODE = 5,
};

const char *mk_natpmp_result_str(unsigned result);

/*
 * A NAT-PMP response. op is the request's opcode (0 public address, 1 UDP,
 * 2 TCP). external (op 0) or the ports and lifetime (op 1, 2) are set only
 * on success; an error response may be the 8-byte common part alone.
 */
struct mk_natpmp_resp {
	uint8_t op;
	uint16_t result;
	uint32_t epoch;
	struct mk_addr external;
	uint16_t internal_port;
	uint16_t external_port;
	uint32_t lifetime;
};

/*
 * Parse a datagram as a NAT-PMP response: version 0, opcode 128..130,
 * at least 8 bytes, and 12 (public address) or 16 (mapping) on success.
 * Returns 0, or -1 with *why.
 */
int mk_natpmp_decode(struct mk_natpmp_resp *r, const uint8_t *p, size_t len,
    const char **why);

#endif
