/* SPDX-License-Identifier: MIT */
/*
 * STUN parser: any input must parse or be rejected cleanly. What parses is
 * rebuilt with the builder (addresses, flags, texts, error code, MI and
 * FINGERPRINT) and must parse back to the same values.
 */
#include <stdint.h>
#include <string.h>

#include "stun.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t key[] = "VOkJxbRl1RmTxUk/WvJxBt";

#define MUST(c) do { if (!(c)) __builtin_trap(); } while (0)

static bool
same_bytes(const struct mk_stun_bytes *a, const struct mk_stun_bytes *b)
{
	return a->len == b->len && (a->len == 0 ||
	    memcmp(a->p, b->p, a->len) == 0);
}

static void
add_text(struct mk_stun_builder *b, const struct mk_stun_msg *m,
    uint32_t bit, uint16_t type, const struct mk_stun_bytes *v)
{
	if (m->has & bit)
		mk_stun_add_bytes(b, type, v->p, v->len);
}

static const uint32_t addr_bits[] = {
	MK_STUN_HAS_MAPPED, MK_STUN_HAS_OTHER_ADDRESS,
	MK_STUN_HAS_RESPONSE_ORIGIN, MK_STUN_HAS_CHANGED_ADDRESS,
	MK_STUN_HAS_SOURCE_ADDRESS,
};
static const uint16_t addr_types[] = {
	MK_STUN_ATTR_MAPPED_ADDRESS, MK_STUN_ATTR_OTHER_ADDRESS,
	MK_STUN_ATTR_RESPONSE_ORIGIN, MK_STUN_ATTR_CHANGED_ADDRESS,
	MK_STUN_ATTR_SOURCE_ADDRESS,
};
#define N_ADDRS (sizeof(addr_bits) / sizeof(addr_bits[0]))

static void
addr_list(const struct mk_stun_msg *m, const struct mk_addr *out[N_ADDRS])
{
	out[0] = &m->mapped;
	out[1] = &m->other_address;
	out[2] = &m->response_origin;
	out[3] = &m->changed_address;
	out[4] = &m->source_address;
}

static void
rebuild(const struct mk_stun_msg *m, size_t inlen)
{
	uint8_t out[MK_STUN_MAX_LEN];
	struct mk_stun_builder b;
	struct mk_stun_msg r;
	const struct mk_addr *ma[N_ADDRS], *ra[N_ADDRS];
	const char *why;
	uint32_t mask;
	size_t i, len;

	addr_list(m, ma);
	mk_stun_begin(&b, out, sizeof(out), m->type,
	    m->rfc3489 ? m->legacy_txid : m->txid, m->rfc3489);
	if (m->has & MK_STUN_HAS_XOR_MAPPED)
		mk_stun_add_xor_addr(&b, MK_STUN_ATTR_XOR_MAPPED_ADDRESS,
		    &m->xor_mapped);
	for (i = 0; i < N_ADDRS; i++)
		if (m->has & addr_bits[i])
			mk_stun_add_addr(&b, addr_types[i], ma[i]);
	if (m->has & MK_STUN_HAS_CHANGE_REQUEST)
		mk_stun_add_u32(&b, MK_STUN_ATTR_CHANGE_REQUEST,
		    m->change_request);
	if (m->has & MK_STUN_HAS_RESPONSE_PORT)
		mk_stun_add_u32(&b, MK_STUN_ATTR_RESPONSE_PORT,
		    (uint32_t)m->response_port << 16);
	if (m->has & MK_STUN_HAS_ERROR_CODE)
		mk_stun_add_error(&b, m->error_code, NULL);
	add_text(&b, m, MK_STUN_HAS_SOFTWARE, MK_STUN_ATTR_SOFTWARE,
	    &m->software);
	add_text(&b, m, MK_STUN_HAS_USERNAME, MK_STUN_ATTR_USERNAME,
	    &m->username);
	add_text(&b, m, MK_STUN_HAS_REALM, MK_STUN_ATTR_REALM, &m->realm);
	add_text(&b, m, MK_STUN_HAS_NONCE, MK_STUN_ATTR_NONCE, &m->nonce);
	add_text(&b, m, MK_STUN_HAS_UNKNOWN_ATTRS,
	    MK_STUN_ATTR_UNKNOWN_ATTRIBUTES, &m->unknown_attrs);
	mk_stun_add_integrity(&b, key, sizeof(key) - 1);
	mk_stun_add_integrity_sha256(&b, key, sizeof(key) - 1);
	mk_stun_add_fingerprint(&b);
	len = mk_stun_end(&b);
	/* Every rebuilt attribute was in the input at least as large, except
	 * MI (24), MI-SHA256 (36) and FINGERPRINT (8): only an input near the
	 * size limit can come out too long. */
	if (len == 0) {
		MUST(inlen + 68 > MK_STUN_MAX_LEN);
		return;
	}

	MUST(mk_stun_parse(&r, out, len, m->rfc3489, &why) == 0);
	MUST(r.type == m->type && r.rfc3489 == m->rfc3489);
	MUST(memcmp(r.txid, m->txid, sizeof(r.txid)) == 0);
	MUST(memcmp(r.legacy_txid, m->legacy_txid,
	    sizeof(r.legacy_txid)) == 0);
	mask = MK_STUN_HAS_XOR_MAPPED | MK_STUN_HAS_MAPPED |
	    MK_STUN_HAS_OTHER_ADDRESS | MK_STUN_HAS_RESPONSE_ORIGIN |
	    MK_STUN_HAS_CHANGED_ADDRESS | MK_STUN_HAS_SOURCE_ADDRESS |
	    MK_STUN_HAS_CHANGE_REQUEST | MK_STUN_HAS_RESPONSE_PORT |
	    MK_STUN_HAS_ERROR_CODE | MK_STUN_HAS_SOFTWARE |
	    MK_STUN_HAS_USERNAME | MK_STUN_HAS_REALM | MK_STUN_HAS_NONCE |
	    MK_STUN_HAS_UNKNOWN_ATTRS;
	MUST((r.has & mask) == (m->has & mask));
	MUST(r.has & MK_STUN_HAS_FINGERPRINT);
	MUST(r.n_unknown == 0);
	if (m->has & MK_STUN_HAS_XOR_MAPPED)
		MUST(mk_addr_equal(&r.xor_mapped, &m->xor_mapped));
	addr_list(&r, ra);
	for (i = 0; i < N_ADDRS; i++) {
		if (!(m->has & addr_bits[i]))
			continue;
		MUST(mk_addr_equal(ma[i], ra[i]));
		MUST(mk_addr_family(ma[i]) == AF_INET ||
		    mk_addr_family(ma[i]) == AF_INET6);
	}
	MUST(r.change_request == m->change_request);
	MUST(r.response_port == m->response_port);
	MUST(r.error_code == m->error_code);
	MUST(same_bytes(&r.software, &m->software));
	MUST(same_bytes(&r.username, &m->username));
	MUST(same_bytes(&r.realm, &m->realm));
	MUST(same_bytes(&r.nonce, &m->nonce));
	MUST(same_bytes(&r.unknown_attrs, &m->unknown_attrs));
	MUST(mk_stun_check_integrity(&r, out, len, key, sizeof(key) - 1) ==
	    1);
	MUST(mk_stun_check_integrity_sha256(&r, out, len, key,
	    sizeof(key) - 1) == 1);
	MUST(mk_stun_check_integrity(&r, out, len, key, 3) == 0);
}

static void
one(const uint8_t *data, size_t size, bool allow_3489)
{
	struct mk_stun_msg m;
	const char *why = NULL;
	int r;

	if (mk_stun_parse(&m, data, size, allow_3489, &why) == -1) {
		MUST(why != NULL);
		return;
	}
	MUST((size_t)m.length + MK_STUN_HDR_LEN == size);
	MUST(m.rfc3489 || mk_stun_is(data, size));
	MUST(!m.rfc3489 || allow_3489);
	MUST(m.n_unknown <= MK_STUN_MAX_UNKNOWN);
	if (m.has & MK_STUN_HAS_FINGERPRINT)
		MUST(data[size - 8] == 0x80 && data[size - 7] == 0x28);
	if (m.has & MK_STUN_HAS_ERROR_CODE)
		MUST(m.error_code >= 300 && m.error_code <= 699);
	r = mk_stun_check_integrity(&m, data, size, key, sizeof(key) - 1);
	MUST((m.has & MK_STUN_HAS_INTEGRITY) ? r == 0 || r == 1 : r == -1);
	r = mk_stun_check_integrity_sha256(&m, data, size, key,
	    sizeof(key) - 1);
	MUST((m.has & MK_STUN_HAS_INTEGRITY_SHA256) ? r == 0 || r == 1 :
	    r == -1);
	rebuild(&m, size);
}

/* Bit-at-a-time CRC-32, independent of the codec's table. */
static uint32_t
crc32_ref(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffU;
	int k;

	while (n--) {
		c ^= *p++;
		for (k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320U & (0U - (c & 1)));
	}
	return ~c;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t fixed[MK_STUN_MAX_LEN];
	uint32_t crc;

	one(data, size, false);
	one(data, size, true);

	/* Again with the header length and a trailing FINGERPRINT made
	 * right, so mutations get past those two checks to the attributes. */
	if (size < MK_STUN_HDR_LEN || size > sizeof(fixed) || size % 4 != 0)
		return 0;
	memcpy(fixed, data, size);
	fixed[2] = (uint8_t)((size - MK_STUN_HDR_LEN) >> 8);
	fixed[3] = (uint8_t)(size - MK_STUN_HDR_LEN);
	if (size >= MK_STUN_HDR_LEN + 8 &&
	    memcmp(fixed + size - 8, "\x80\x28\x00\x04", 4) == 0) {
		crc = crc32_ref(fixed, size - 8) ^ MK_STUN_FP_XOR;
		fixed[size - 4] = (uint8_t)(crc >> 24);
		fixed[size - 3] = (uint8_t)(crc >> 16);
		fixed[size - 2] = (uint8_t)(crc >> 8);
		fixed[size - 1] = (uint8_t)crc;
	}
	one(fixed, size, false);
	one(fixed, size, true);
	return 0;
}
