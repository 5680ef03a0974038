/* SPDX-License-Identifier: MIT */
#include "pcp.h"
#include "util.h"

#include <string.h>

static const char *const pcp_results[] = {
	"SUCCESS", "UNSUPP_VERSION", "NOT_AUTHORIZED", "MALFORMED_REQUEST",
	"UNSUPP_OPCODE", "UNSUPP_OPTION", "MALFORMED_OPTION",
	"NETWORK_FAILURE", "NO_RESOURCES", "UNSUPP_PROTOCOL",
	"USER_EX_QUOTA", "CANNOT_PROVIDE_EXTERNAL", "ADDRESS_MISMATCH",
	"EXCESSIVE_REMOTE_PEERS",
};

static const char *const natpmp_results[] = {
	"success", "unsupported version", "not authorized", "network failure",
	"out of resources", "unsupported opcode",
};

const char *
mk_pcp_result_str(unsigned result)
{
	if (result < sizeof(pcp_results) / sizeof(pcp_results[0]))
		return pcp_results[result];
	return "unknown";
}

const char *
mk_natpmp_result_str(unsigned result)
{
	if (result < sizeof(natpmp_results) / sizeof(natpmp_results[0]))
		return natpmp_results[result];
	return "unknown";
}

/*
 * An address as PCP carries it: 16 bytes, IPv4 v4-mapped. An empty
 * address is the unspecified one of the family fam. 0 or -1.
 */
static int
put_ip(uint8_t *p, const struct mk_addr *a, int fam)
{
	memset(p, 0, 16);
	if (a->len == 0) {
		if (fam == AF_INET)
			p[10] = p[11] = 0xff;
		return fam == AF_INET || fam == AF_INET6 ? 0 : -1;
	}
	switch (mk_addr_family(a)) {
	case AF_INET:
		p[10] = p[11] = 0xff;
		memcpy(p + 12, &a->sin.sin_addr, 4);
		return 0;
	case AF_INET6:
		memcpy(p, &a->sin6.sin6_addr, 16);
		return 0;
	}
	return -1;
}

static size_t
put_header(uint8_t *out, uint8_t opcode, uint32_t lifetime,
    const struct mk_addr *client)
{
	out[0] = MK_PCP_VERSION;
	out[1] = opcode;
	out[2] = out[3] = 0;
	mk_put32(out + 4, lifetime);
	if (client->len == 0 ||
	    put_ip(out + 8, client, mk_addr_family(client)) == -1)
		return 0;
	return MK_PCP_HDR_LEN;
}

size_t
mk_pcp_encode_announce(uint8_t *out, size_t n, const struct mk_addr *client)
{
	if (n < MK_PCP_HDR_LEN)
		return 0;
	return put_header(out, MK_PCP_OP_ANNOUNCE, 0, client);
}

size_t
mk_pcp_encode_map(uint8_t *out, size_t n, const struct mk_pcp_map_req *q)
{
	uint8_t *m = out + MK_PCP_HDR_LEN;

	if (n < MK_PCP_MAP_LEN ||
	    put_header(out, MK_PCP_OP_MAP, q->lifetime, &q->client) == 0)
		return 0;
	memcpy(m, q->nonce, MK_PCP_NONCE_LEN);
	m[12] = q->protocol;
	m[13] = m[14] = m[15] = 0;
	mk_put16(m + 16, q->internal_port);
	mk_put16(m + 18, q->suggested_port);
	if (put_ip(m + 20, &q->suggested_ip,
	    mk_addr_family(&q->client)) == -1)
		return 0;
	return MK_PCP_MAP_LEN;
}

/* Options follow the opcode payload: code, reserved, length of the data,
 * then the data padded to 4 bytes (RFC 6887 section 7.3). */
static int
walk_options(const uint8_t *p, size_t len, unsigned *count, const char **why)
{
	size_t off = 0, olen;

	*count = 0;
	while (off < len) {
		if (len - off < 4) {
			*why = "truncated option header";
			return -1;
		}
		olen = mk_get16(p + off + 2);
		olen = (olen + 3) & ~(size_t)3;
		if (olen > len - off - 4) {
			*why = "option longer than the message";
			return -1;
		}
		off += 4 + olen;
		++*count;
	}
	return 0;
}

static void
get_map(struct mk_pcp_resp *r, const uint8_t *m)
{
	uint8_t ip[16];

	r->has_map = 1;
	memcpy(r->nonce, m, MK_PCP_NONCE_LEN);
	r->protocol = m[12];
	r->internal_port = mk_get16(m + 16);
	r->external_port = mk_get16(m + 18);
	memcpy(ip, m + 20, 16);
	mk_addr_from_v6(&r->external, ip, r->external_port);
	mk_addr_unmap(&r->external);
}

int
mk_pcp_decode(struct mk_pcp_resp *r, const uint8_t *p, size_t len,
    const char **why)
{
	size_t body = MK_PCP_HDR_LEN;

	memset(r, 0, sizeof(*r));
	if (len < MK_PCP_HDR_LEN) {
		*why = "shorter than a PCP header";
		return -1;
	}
	if (len > MK_PCP_MAX_LEN || len % 4 != 0) {
		*why = "bad PCP message length";
		return -1;
	}
	if (p[0] != MK_PCP_VERSION) {
		*why = "not PCP version 2";
		return -1;
	}
	if (!(p[1] & MK_PCP_R)) {
		*why = "a request, not a response";
		return -1;
	}
	r->opcode = p[1] & 0x7f;
	r->result = p[3];
	r->lifetime = mk_get32(p + 4);
	r->epoch = mk_get32(p + 8);
	if (r->opcode == MK_PCP_OP_MAP) {
		if (len >= MK_PCP_MAP_LEN) {
			get_map(r, p + MK_PCP_HDR_LEN);
			body = MK_PCP_MAP_LEN;
		} else if (r->result == MK_PCP_SUCCESS) {
			*why = "truncated MAP response";
			return -1;
		}
	}
	/* The payloads of other opcodes are not ours to read; only MAP and
	 * ANNOUNCE (none) are known, so options are walked after those. */
	if (r->opcode == MK_PCP_OP_MAP || r->opcode == MK_PCP_OP_ANNOUNCE)
		return walk_options(p + body, len - body, &r->n_options, why);
	return 0;
}

int
mk_natpmp_decode(struct mk_natpmp_resp *r, const uint8_t *p, size_t len,
    const char **why)
{
	memset(r, 0, sizeof(*r));
	if (len < 8) {
		*why = "shorter than a NAT-PMP response";
		return -1;
	}
	if (p[0] != MK_NATPMP_VERSION) {
		*why = "not NAT-PMP version 0";
		return -1;
	}
	if (p[1] < MK_NATPMP_R || p[1] > (MK_NATPMP_R | MK_NATPMP_OP_TCP)) {
		*why = "not a NAT-PMP response opcode";
		return -1;
	}
	r->op = p[1] & 0x7f;
	r->result = mk_get16(p + 2);
	r->epoch = mk_get32(p + 4);
	if (r->result != MK_NATPMP_SUCCESS)
		return 0;
	if (r->op == MK_NATPMP_OP_PUBLIC) {
		if (len < 12) {
			*why = "truncated public address response";
			return -1;
		}
		mk_addr_from_v4(&r->external, p + 8, 0);
		return 0;
	}
	if (len < 16) {
		*why = "truncated mapping response";
		return -1;
	}
	r->internal_port = mk_get16(p + 8);
	r->external_port = mk_get16(p + 10);
	r->lifetime = mk_get32(p + 12);
	return 0;
}
