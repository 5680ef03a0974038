/* SPDX-License-Identifier: MIT */
/*
 * STUN codec. The parser walks the attributes once, checks every length
 * against the attribute's type and leaves views into the caller's buffer:
 * no allocation, no copy beyond the decoded addresses. The builder writes
 * each attribute in place and keeps the header length current, so
 * MESSAGE-INTEGRITY and FINGERPRINT can be computed over the buffer as is.
 */
#include <stddef.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "stun.h"
#include "util.h"

#define ATTR_HDR		4
#define PAD4(n)			(((n) + 3) & ~(size_t)3)
/* RFC 8489 §14.3: USERNAME < 509 bytes (RFC 5389 allowed 513, accept it);
 * §14.9-14.10, 14.14: REALM, NONCE, SOFTWARE and the ERROR-CODE reason
 * are < 128 characters, up to 509 bytes to send and 763 to accept. */
#define MAX_USERNAME		513
#define MAX_TEXT		763
#define MAX_TEXT_SEND		509
#define MI_LEN			20
#define MI_SHA256_MIN		16
#define MI_SHA256_MAX		32
#define FP_LEN			4

/* CRC-32/ISO-HDLC (zlib's crc32), reflected polynomial 0xEDB88320. */
static const uint32_t crc_table[256] = {
	0x00000000U, 0x77073096U, 0xee0e612cU, 0x990951baU,
	0x076dc419U, 0x706af48fU, 0xe963a535U, 0x9e6495a3U,
	0x0edb8832U, 0x79dcb8a4U, 0xe0d5e91eU, 0x97d2d988U,
	0x09b64c2bU, 0x7eb17cbdU, 0xe7b82d07U, 0x90bf1d91U,
	0x1db71064U, 0x6ab020f2U, 0xf3b97148U, 0x84be41deU,
	0x1adad47dU, 0x6ddde4ebU, 0xf4d4b551U, 0x83d385c7U,
	0x136c9856U, 0x646ba8c0U, 0xfd62f97aU, 0x8a65c9ecU,
	0x14015c4fU, 0x63066cd9U, 0xfa0f3d63U, 0x8d080df5U,
	0x3b6e20c8U, 0x4c69105eU, 0xd56041e4U, 0xa2677172U,
	0x3c03e4d1U, 0x4b04d447U, 0xd20d85fdU, 0xa50ab56bU,
	0x35b5a8faU, 0x42b2986cU, 0xdbbbc9d6U, 0xacbcf940U,
	0x32d86ce3U, 0x45df5c75U, 0xdcd60dcfU, 0xabd13d59U,
	0x26d930acU, 0x51de003aU, 0xc8d75180U, 0xbfd06116U,
	0x21b4f4b5U, 0x56b3c423U, 0xcfba9599U, 0xb8bda50fU,
	0x2802b89eU, 0x5f058808U, 0xc60cd9b2U, 0xb10be924U,
	0x2f6f7c87U, 0x58684c11U, 0xc1611dabU, 0xb6662d3dU,
	0x76dc4190U, 0x01db7106U, 0x98d220bcU, 0xefd5102aU,
	0x71b18589U, 0x06b6b51fU, 0x9fbfe4a5U, 0xe8b8d433U,
	0x7807c9a2U, 0x0f00f934U, 0x9609a88eU, 0xe10e9818U,
	0x7f6a0dbbU, 0x086d3d2dU, 0x91646c97U, 0xe6635c01U,
	0x6b6b51f4U, 0x1c6c6162U, 0x856530d8U, 0xf262004eU,
	0x6c0695edU, 0x1b01a57bU, 0x8208f4c1U, 0xf50fc457U,
	0x65b0d9c6U, 0x12b7e950U, 0x8bbeb8eaU, 0xfcb9887cU,
	0x62dd1ddfU, 0x15da2d49U, 0x8cd37cf3U, 0xfbd44c65U,
	0x4db26158U, 0x3ab551ceU, 0xa3bc0074U, 0xd4bb30e2U,
	0x4adfa541U, 0x3dd895d7U, 0xa4d1c46dU, 0xd3d6f4fbU,
	0x4369e96aU, 0x346ed9fcU, 0xad678846U, 0xda60b8d0U,
	0x44042d73U, 0x33031de5U, 0xaa0a4c5fU, 0xdd0d7cc9U,
	0x5005713cU, 0x270241aaU, 0xbe0b1010U, 0xc90c2086U,
	0x5768b525U, 0x206f85b3U, 0xb966d409U, 0xce61e49fU,
	0x5edef90eU, 0x29d9c998U, 0xb0d09822U, 0xc7d7a8b4U,
	0x59b33d17U, 0x2eb40d81U, 0xb7bd5c3bU, 0xc0ba6cadU,
	0xedb88320U, 0x9abfb3b6U, 0x03b6e20cU, 0x74b1d29aU,
	0xead54739U, 0x9dd277afU, 0x04db2615U, 0x73dc1683U,
	0xe3630b12U, 0x94643b84U, 0x0d6d6a3eU, 0x7a6a5aa8U,
	0xe40ecf0bU, 0x9309ff9dU, 0x0a00ae27U, 0x7d079eb1U,
	0xf00f9344U, 0x8708a3d2U, 0x1e01f268U, 0x6906c2feU,
	0xf762575dU, 0x806567cbU, 0x196c3671U, 0x6e6b06e7U,
	0xfed41b76U, 0x89d32be0U, 0x10da7a5aU, 0x67dd4accU,
	0xf9b9df6fU, 0x8ebeeff9U, 0x17b7be43U, 0x60b08ed5U,
	0xd6d6a3e8U, 0xa1d1937eU, 0x38d8c2c4U, 0x4fdff252U,
	0xd1bb67f1U, 0xa6bc5767U, 0x3fb506ddU, 0x48b2364bU,
	0xd80d2bdaU, 0xaf0a1b4cU, 0x36034af6U, 0x41047a60U,
	0xdf60efc3U, 0xa867df55U, 0x316e8eefU, 0x4669be79U,
	0xcb61b38cU, 0xbc66831aU, 0x256fd2a0U, 0x5268e236U,
	0xcc0c7795U, 0xbb0b4703U, 0x220216b9U, 0x5505262fU,
	0xc5ba3bbeU, 0xb2bd0b28U, 0x2bb45a92U, 0x5cb36a04U,
	0xc2d7ffa7U, 0xb5d0cf31U, 0x2cd99e8bU, 0x5bdeae1dU,
	0x9b64c2b0U, 0xec63f226U, 0x756aa39cU, 0x026d930aU,
	0x9c0906a9U, 0xeb0e363fU, 0x72076785U, 0x05005713U,
	0x95bf4a82U, 0xe2b87a14U, 0x7bb12baeU, 0x0cb61b38U,
	0x92d28e9bU, 0xe5d5be0dU, 0x7cdcefb7U, 0x0bdbdf21U,
	0x86d3d2d4U, 0xf1d4e242U, 0x68ddb3f8U, 0x1fda836eU,
	0x81be16cdU, 0xf6b9265bU, 0x6fb077e1U, 0x18b74777U,
	0x88085ae6U, 0xff0f6a70U, 0x66063bcaU, 0x11010b5cU,
	0x8f659effU, 0xf862ae69U, 0x616bffd3U, 0x166ccf45U,
	0xa00ae278U, 0xd70dd2eeU, 0x4e048354U, 0x3903b3c2U,
	0xa7672661U, 0xd06016f7U, 0x4969474dU, 0x3e6e77dbU,
	0xaed16a4aU, 0xd9d65adcU, 0x40df0b66U, 0x37d83bf0U,
	0xa9bcae53U, 0xdebb9ec5U, 0x47b2cf7fU, 0x30b5ffe9U,
	0xbdbdf21cU, 0xcabac28aU, 0x53b39330U, 0x24b4a3a6U,
	0xbad03605U, 0xcdd70693U, 0x54de5729U, 0x23d967bfU,
	0xb3667a2eU, 0xc4614ab8U, 0x5d681b02U, 0x2a6f2b94U,
	0xb40bbe37U, 0xc30c8ea1U, 0x5a05df1bU, 0x2d02ef8dU,
};

static uint32_t
stun_crc32(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffU;

	while (n--)
		c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return c ^ 0xffffffffU;
}

/*
 * HMAC over the message prefix buf[0..off) with the header length field
 * replaced by hdrlen, as RFC 8489 §14.5/14.6 define it, without copying
 * the message. RFC 3489 §11.2.8 also pads the text with zeros to a
 * multiple of 64 bytes.
 */
static int
stun_hmac(bool sha256, const uint8_t *key, size_t keylen,
    const uint8_t *buf, size_t off, size_t hdrlen, bool pad64,
    uint8_t out[MI_SHA256_MAX], size_t *outlen)
{
	static const uint8_t zero[64];
	static char sha1_name[] = "SHA1", sha256_name[] = "SHA256";
	EVP_MAC *mac;
	EVP_MAC_CTX *ctx = NULL;
	OSSL_PARAM params[2];
	uint8_t lenb[2];
	int ok = 0;

	mk_put16(lenb, (uint16_t)hdrlen);
	if (keylen == 0)
		key = zero;	/* OpenSSL takes NULL as "keep the old key" */
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    sha256 ? sha256_name : sha1_name, 0);
	params[1] = OSSL_PARAM_construct_end();
	if ((mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL)
		return -1;
	if ((ctx = EVP_MAC_CTX_new(mac)) != NULL &&
	    EVP_MAC_init(ctx, key, keylen, params) &&
	    EVP_MAC_update(ctx, buf, 2) &&
	    EVP_MAC_update(ctx, lenb, 2) &&
	    EVP_MAC_update(ctx, buf + 4, off - 4) &&
	    (!pad64 || off % 64 == 0 ||
	    EVP_MAC_update(ctx, zero, 64 - off % 64)) &&
	    EVP_MAC_final(ctx, out, outlen, MI_SHA256_MAX))
		ok = 1;
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return ok ? 0 : -1;
}

bool
mk_stun_is(const uint8_t *buf, size_t len)
{
	return len >= MK_STUN_HDR_LEN && (buf[0] & 0xc0) == 0 &&
	    mk_get32(buf + 4) == MK_STUN_COOKIE;
}

/*
 * Plain (x == NULL) or XOR'd address value. x points at the header's
 * cookie and transaction id: port ^ cookie>>16, IPv4 ^ cookie,
 * IPv6 ^ (cookie || txid). IPv4-mapped IPv6 comes out as IPv4.
 */
static int
get_addr(struct mk_addr *a, const uint8_t *v, size_t vlen, const uint8_t *x,
    const char **why)
{
	uint8_t ip[16];
	uint16_t port;
	size_t i, n;

	if (vlen < 4) {
		*why = "bad address length";
		return -1;
	}
	switch (v[1]) {
	case 0x01:
		n = 4;
		break;
	case 0x02:
		n = 16;
		break;
	default:
		*why = "bad address family";
		return -1;
	}
	if (vlen != 4 + n) {
		*why = "bad address length";
		return -1;
	}
	port = mk_get16(v + 2);
	if (x != NULL)
		port ^= mk_get16(x);
	for (i = 0; i < n; i++)
		ip[i] = v[4 + i] ^ (x != NULL ? x[i] : 0);
	if (n == 4)
		mk_addr_from_v4(a, ip, port);
	else
		mk_addr_from_v6(a, ip, port);
	return 0;
}

static void
add_unknown(struct mk_stun_msg *m, uint16_t type)
{
	size_t i;

	for (i = 0; i < m->n_unknown; i++)
		if (m->unknown[i] == type)
			return;
	if (m->n_unknown < MK_STUN_MAX_UNKNOWN)
		m->unknown[m->n_unknown++] = type;
}

static int
get_text(struct mk_stun_msg *m, uint32_t bit, struct mk_stun_bytes *out,
    const uint8_t *v, size_t vlen, size_t max, const char *toolong,
    const char **why)
{
	if (vlen > max) {
		*why = toolong;
		return -1;
	}
	if (!(m->has & bit)) {
		m->has |= bit;
		out->p = v;
		out->len = vlen;
	}
	return 0;
}

/* An address attribute: the first occurrence is kept, later ones are
 * still checked. */
static int
get_addr_attr(struct mk_stun_msg *m, uint32_t bit, struct mk_addr *out,
    const uint8_t *v, size_t vlen, const uint8_t *x, const char **why)
{
	struct mk_addr scratch;

	if (get_addr(m->has & bit ? &scratch : out, v, vlen, x, why) == -1)
		return -1;
	m->has |= bit;
	return 0;
}

static int
parse_attr(struct mk_stun_msg *m, const uint8_t *buf, size_t off,
    uint16_t type, const uint8_t *v, size_t vlen, bool *xor_primary,
    const char **why)
{
	const uint8_t *x = buf + 4;	/* cookie || txid */
	struct mk_addr scratch;
	unsigned cls, num;

	switch (type) {
	case MK_STUN_ATTR_XOR_MAPPED_ADDRESS:
	case MK_STUN_ATTR_XOR_MAPPED_ADDRESS_ALT:
		/* Without a cookie there is nothing meaningful to XOR with. */
		if (m->rfc3489)
			return 0;
		if (type == MK_STUN_ATTR_XOR_MAPPED_ADDRESS && !*xor_primary) {
			/* 0x0020 wins over any 0x8020 seen before it. */
			*xor_primary = true;
			if (get_addr(&m->xor_mapped, v, vlen, x, why) == -1)
				return -1;
			m->has |= MK_STUN_HAS_XOR_MAPPED;
			return 0;
		}
		if (get_addr(m->has & MK_STUN_HAS_XOR_MAPPED ? &scratch :
		    &m->xor_mapped, v, vlen, x, why) == -1)
			return -1;
		m->has |= MK_STUN_HAS_XOR_MAPPED;
		return 0;
	case MK_STUN_ATTR_MAPPED_ADDRESS:
		return get_addr_attr(m, MK_STUN_HAS_MAPPED, &m->mapped, v,
		    vlen, NULL, why);
	case MK_STUN_ATTR_OTHER_ADDRESS:
		return get_addr_attr(m, MK_STUN_HAS_OTHER_ADDRESS,
		    &m->other_address, v, vlen, NULL, why);
	case MK_STUN_ATTR_RESPONSE_ORIGIN:
		return get_addr_attr(m, MK_STUN_HAS_RESPONSE_ORIGIN,
		    &m->response_origin, v, vlen, NULL, why);
	case MK_STUN_ATTR_CHANGED_ADDRESS:
		return get_addr_attr(m, MK_STUN_HAS_CHANGED_ADDRESS,
		    &m->changed_address, v, vlen, NULL, why);
	case MK_STUN_ATTR_SOURCE_ADDRESS:
		return get_addr_attr(m, MK_STUN_HAS_SOURCE_ADDRESS,
		    &m->source_address, v, vlen, NULL, why);
	case MK_STUN_ATTR_CHANGE_REQUEST:
		if (vlen != 4) {
			*why = "bad change-request length";
			return -1;
		}
		if (!(m->has & MK_STUN_HAS_CHANGE_REQUEST)) {
			m->has |= MK_STUN_HAS_CHANGE_REQUEST;
			m->change_request = mk_get32(v);
		}
		return 0;
	case MK_STUN_ATTR_RESPONSE_PORT:
		/* RFC 5780 §7.5: a 16-bit port and 16 bits of padding. */
		if (vlen != 4) {
			*why = "bad response-port length";
			return -1;
		}
		if (!(m->has & MK_STUN_HAS_RESPONSE_PORT)) {
			m->has |= MK_STUN_HAS_RESPONSE_PORT;
			m->response_port = mk_get16(v);
		}
		return 0;
	case MK_STUN_ATTR_PADDING:
		m->has |= MK_STUN_HAS_PADDING;
		return 0;
	case MK_STUN_ATTR_SOFTWARE:
		return get_text(m, MK_STUN_HAS_SOFTWARE, &m->software, v, vlen,
		    MAX_TEXT, "software too long", why);
	case MK_STUN_ATTR_USERNAME:
		return get_text(m, MK_STUN_HAS_USERNAME, &m->username, v, vlen,
		    MAX_USERNAME, "username too long", why);
	case MK_STUN_ATTR_REALM:
		return get_text(m, MK_STUN_HAS_REALM, &m->realm, v, vlen,
		    MAX_TEXT, "realm too long", why);
	case MK_STUN_ATTR_NONCE:
		return get_text(m, MK_STUN_HAS_NONCE, &m->nonce, v, vlen,
		    MAX_TEXT, "nonce too long", why);
	case MK_STUN_ATTR_UNKNOWN_ATTRIBUTES:
		if (vlen % 2 != 0) {
			*why = "bad unknown-attributes length";
			return -1;
		}
		return get_text(m, MK_STUN_HAS_UNKNOWN_ATTRS, &m->unknown_attrs,
		    v, vlen, MAX_TEXT, "unknown-attributes too long", why);
	case MK_STUN_ATTR_ERROR_CODE:
		if (vlen < 4) {
			*why = "bad error-code length";
			return -1;
		}
		cls = v[2] & 0x07;
		num = v[3];
		if (cls < 3 || cls > 6 || num > 99) {
			*why = "bad error code";
			return -1;
		}
		if (vlen - 4 > MAX_TEXT) {
			*why = "error reason too long";
			return -1;
		}
		if (!(m->has & MK_STUN_HAS_ERROR_CODE)) {
			m->has |= MK_STUN_HAS_ERROR_CODE;
			m->error_code = (uint16_t)(cls * 100 + num);
			m->error_reason.p = v + 4;
			m->error_reason.len = vlen - 4;
		}
		return 0;
	case MK_STUN_ATTR_MESSAGE_INTEGRITY:
		if (vlen != MI_LEN) {
			*why = "bad message-integrity length";
			return -1;
		}
		m->has |= MK_STUN_HAS_INTEGRITY;
		m->integrity_off = off;
		return 0;
	case MK_STUN_ATTR_MESSAGE_INTEGRITY_SHA256:
		if (vlen < MI_SHA256_MIN || vlen > MI_SHA256_MAX ||
		    vlen % 4 != 0) {
			*why = "bad message-integrity-sha256 length";
			return -1;
		}
		m->has |= MK_STUN_HAS_INTEGRITY_SHA256;
		m->integrity_sha256_off = off;
		m->integrity_sha256_len = vlen;
		return 0;
	case MK_STUN_ATTR_FINGERPRINT:
		if (vlen != FP_LEN) {
			*why = "bad fingerprint length";
			return -1;
		}
		/* The header length already counts FINGERPRINT: it must be
		 * last, which the caller checks. */
		if (mk_get32(v) != (stun_crc32(buf, off) ^ MK_STUN_FP_XOR)) {
			*why = "bad fingerprint";
			return -1;
		}
		m->has |= MK_STUN_HAS_FINGERPRINT;
		return 0;
	default:
		if (type < 0x8000)
			add_unknown(m, type);
		return 0;
	}
}

/*
 * Zero everything but the six addresses' bodies: memset of the whole
 * 1 KiB struct was a third of the time spent on Tailscale's request. An
 * absent address reads as empty (len 0); the has bits say what is valid.
 */
_Static_assert(offsetof(struct mk_stun_msg, xor_mapped) <
    offsetof(struct mk_stun_msg, source_address) &&
    offsetof(struct mk_stun_msg, source_address) <
    offsetof(struct mk_stun_msg, change_request),
    "mk_stun_msg: addresses must sit together before change_request");

static void
clear_msg(struct mk_stun_msg *m)
{
	memset(m, 0, offsetof(struct mk_stun_msg, xor_mapped));
	m->xor_mapped.len = 0;
	m->mapped.len = 0;
	m->other_address.len = 0;
	m->response_origin.len = 0;
	m->changed_address.len = 0;
	m->source_address.len = 0;
	memset(&m->change_request, 0,
	    sizeof(*m) - offsetof(struct mk_stun_msg, change_request));
}

int
mk_stun_parse(struct mk_stun_msg *m, const uint8_t *buf, size_t len,
    bool allow_3489, const char **why)
{
	const char *dummy;
	size_t off, vlen;
	uint16_t type;
	bool xor_primary = false, seen_fp = false;
	int mi = 0;	/* 1 after MESSAGE-INTEGRITY, 2 after -SHA256 */

	if (why == NULL)
		why = &dummy;
	clear_msg(m);
	if (len < MK_STUN_HDR_LEN) {
		*why = "truncated header";
		return -1;
	}
	if (len > MK_STUN_MAX_LEN) {
		*why = "message too long";
		return -1;
	}
	if ((buf[0] & 0xc0) != 0) {
		*why = "bad message type";
		return -1;
	}
	m->type = mk_get16(buf);
	m->length = mk_get16(buf + 2);
	if (m->length % 4 != 0) {
		*why = "length not a multiple of 4";
		return -1;
	}
	if ((size_t)m->length + MK_STUN_HDR_LEN != len) {
		*why = "length mismatch";
		return -1;
	}
	if (mk_get32(buf + 4) == MK_STUN_COOKIE)
		memcpy(m->txid, buf + 8, MK_STUN_TXID_LEN);
	else if (allow_3489 && (m->type == MK_STUN_BINDING_REQUEST ||
	    m->type == MK_STUN_BINDING_SUCCESS ||
	    m->type == MK_STUN_BINDING_ERROR)) {
		/* RFC 3489 §11.1: Binding Error Response is 0x0111 too. */
		m->rfc3489 = true;
		memcpy(m->legacy_txid, buf + 4, sizeof(m->legacy_txid));
	} else {
		*why = "bad magic cookie";
		return -1;
	}

	for (off = MK_STUN_HDR_LEN; off < len; off += ATTR_HDR + PAD4(vlen)) {
		/* len and off are multiples of 4: a header always fits. */
		type = mk_get16(buf + off);
		vlen = mk_get16(buf + off + 2);
		if (PAD4(vlen) > len - off - ATTR_HDR) {
			*why = "attribute overruns message";
			return -1;
		}
		if (seen_fp) {
			*why = "fingerprint not last";
			return -1;
		}
		/* RFC 8489 §14.5, 14.6: only MESSAGE-INTEGRITY-SHA256 may
		 * follow MESSAGE-INTEGRITY, and FINGERPRINT either. */
		if (type != MK_STUN_ATTR_FINGERPRINT && (mi == 2 ||
		    (mi == 1 &&
		    type != MK_STUN_ATTR_MESSAGE_INTEGRITY_SHA256))) {
			*why = "attribute after message-integrity";
			return -1;
		}
		if (parse_attr(m, buf, off, type, buf + off + ATTR_HDR, vlen,
		    &xor_primary, why) == -1)
			return -1;
		if (type == MK_STUN_ATTR_FINGERPRINT)
			seen_fp = true;
		else if (type == MK_STUN_ATTR_MESSAGE_INTEGRITY)
			mi = 1;
		else if (type == MK_STUN_ATTR_MESSAGE_INTEGRITY_SHA256)
			mi = 2;
	}
	return 0;
}

static int
check_mac(const struct mk_stun_msg *m, const uint8_t *buf, size_t len,
    const uint8_t *key, size_t keylen, bool sha256, size_t off,
    size_t vlen)
{
	uint8_t mac[MI_SHA256_MAX];
	size_t maclen;

	if (key == NULL && keylen != 0)
		return 0;
	/* The message must be the one parsed into m. */
	if (off < MK_STUN_HDR_LEN || off > len || len > MK_STUN_MAX_LEN ||
	    vlen > MI_SHA256_MAX || len - off < ATTR_HDR + vlen ||
	    mk_get16(buf + off + 2) != vlen)
		return 0;
	if (stun_hmac(sha256, key, keylen, buf, off,
	    off + ATTR_HDR + vlen - MK_STUN_HDR_LEN, m->rfc3489, mac,
	    &maclen) == -1 || maclen < vlen)
		return 0;
	return CRYPTO_memcmp(mac, buf + off + ATTR_HDR, vlen) == 0;
}

int
mk_stun_check_integrity(const struct mk_stun_msg *m, const uint8_t *buf,
    size_t len, const uint8_t *key, size_t keylen)
{
	if (!(m->has & MK_STUN_HAS_INTEGRITY))
		return -1;
	return check_mac(m, buf, len, key, keylen, false, m->integrity_off,
	    MI_LEN);
}

int
mk_stun_check_integrity_sha256(const struct mk_stun_msg *m,
    const uint8_t *buf, size_t len, const uint8_t *key, size_t keylen)
{
	if (!(m->has & MK_STUN_HAS_INTEGRITY_SHA256))
		return -1;
	if (m->integrity_sha256_len < MI_SHA256_MIN)
		return 0;
	return check_mac(m, buf, len, key, keylen, true,
	    m->integrity_sha256_off, m->integrity_sha256_len);
}

int
mk_stun_longterm_key(uint8_t key[16], const char *username,
    const char *realm, const char *password)
{
	EVP_MD_CTX *ctx;
	unsigned int n = 0;
	int ok;

	if (username == NULL || realm == NULL || password == NULL)
		return -1;
	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return -1;
	ok = EVP_DigestInit_ex(ctx, EVP_md5(), NULL) &&
	    EVP_DigestUpdate(ctx, username, strlen(username)) &&
	    EVP_DigestUpdate(ctx, ":", 1) &&
	    EVP_DigestUpdate(ctx, realm, strlen(realm)) &&
	    EVP_DigestUpdate(ctx, ":", 1) &&
	    EVP_DigestUpdate(ctx, password, strlen(password)) &&
	    EVP_DigestFinal_ex(ctx, key, &n) && n == 16;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -1;
}

void
mk_stun_begin(struct mk_stun_builder *b, uint8_t *buf, size_t cap,
    uint16_t type, const uint8_t *txid, bool rfc3489)
{
	b->buf = buf;
	b->cap = cap < MK_STUN_MAX_LEN ? cap : MK_STUN_MAX_LEN;
	b->len = 0;
	b->rfc3489 = rfc3489;
	b->err = buf == NULL || txid == NULL || b->cap < MK_STUN_HDR_LEN ||
	    (type & 0xc000) != 0;
	if (b->err)
		return;
	mk_put16(buf, type);
	mk_put16(buf + 2, 0);
	if (rfc3489)
		memcpy(buf + 4, txid, 16);
	else {
		mk_put32(buf + 4, MK_STUN_COOKIE);
		memcpy(buf + 8, txid, MK_STUN_TXID_LEN);
	}
	b->len = MK_STUN_HDR_LEN;
}

/* Reserve an attribute with a vlen-byte value, zero its padding, count it
 * in the header and return where the value goes (NULL on overflow). */
static uint8_t *
attr_begin(struct mk_stun_builder *b, uint16_t type, size_t vlen)
{
	uint8_t *p;
	size_t n;

	if (b->err)
		return NULL;
	n = ATTR_HDR + PAD4(vlen);
	if (vlen > 0xffff || n > b->cap - b->len) {
		b->err = true;
		return NULL;
	}
	p = b->buf + b->len;
	mk_put16(p, type);
	mk_put16(p + 2, (uint16_t)vlen);
	memset(p + ATTR_HDR + vlen, 0, PAD4(vlen) - vlen);
	b->len += n;
	mk_put16(b->buf + 2, (uint16_t)(b->len - MK_STUN_HDR_LEN));
	return p + ATTR_HDR;
}

void
mk_stun_add_bytes(struct mk_stun_builder *b, uint16_t type, const void *val,
    size_t len)
{
	uint8_t *p;

	if (val == NULL && len != 0) {
		b->err = true;
		return;
	}
	if ((p = attr_begin(b, type, len)) != NULL && len != 0)
		memcpy(p, val, len);
}

void
mk_stun_add_u32(struct mk_stun_builder *b, uint16_t type, uint32_t v)
{
	uint8_t *p;

	if ((p = attr_begin(b, type, 4)) != NULL)
		mk_put32(p, v);
}

static void
put_addr(struct mk_stun_builder *b, uint16_t type, const struct mk_addr *a,
    bool xor)
{
	const uint8_t *ip, *x;
	uint8_t *p;
	uint16_t port;
	size_t i, n;
	int fam;

	if (b->err)
		return;
	if (a == NULL || a->len == 0 || (xor && b->rfc3489)) {
		b->err = true;
		return;
	}
	if (a->sa.sa_family == AF_INET) {
		fam = 0x01;
		n = 4;
		ip = (const uint8_t *)&a->sin.sin_addr;
	} else if (a->sa.sa_family == AF_INET6) {
		fam = 0x02;
		n = 16;
		ip = a->sin6.sin6_addr.s6_addr;
	} else {
		b->err = true;
		return;
	}
	if ((p = attr_begin(b, type, 4 + n)) == NULL)
		return;
	x = b->buf + 4;
	port = mk_addr_port(a);
	if (xor)
		port ^= mk_get16(x);
	p[0] = 0;
	p[1] = fam;
	mk_put16(p + 2, port);
	for (i = 0; i < n; i++)
		p[4 + i] = ip[i] ^ (xor ? x[i] : 0);
}

void
mk_stun_add_addr(struct mk_stun_builder *b, uint16_t type,
    const struct mk_addr *a)
{
	put_addr(b, type, a, false);
}

void
mk_stun_add_xor_addr(struct mk_stun_builder *b, uint16_t type,
    const struct mk_addr *a)
{
	put_addr(b, type, a, true);
}

void
mk_stun_add_error(struct mk_stun_builder *b, uint16_t code,
    const char *reason)
{
	uint8_t *p;
	size_t n;

	if (b->err)
		return;
	n = reason != NULL ? strlen(reason) : 0;
	if (code < 300 || code > 699 || n > MAX_TEXT_SEND) {
		b->err = true;
		return;
	}
	if ((p = attr_begin(b, MK_STUN_ATTR_ERROR_CODE, 4 + n)) == NULL)
		return;
	p[0] = 0;
	p[1] = 0;
	p[2] = code / 100;
	p[3] = code % 100;
	if (n != 0)
		memcpy(p + 4, reason, n);
}

static void
add_mac(struct mk_stun_builder *b, uint16_t type, bool sha256,
    size_t vlen, const uint8_t *key, size_t keylen)
{
	uint8_t mac[MI_SHA256_MAX], *p;
	size_t off, maclen;

	if (b->err)
		return;
	if (key == NULL && keylen != 0) {
		b->err = true;
		return;
	}
	off = b->len;
	/* attr_begin sets the header length to the end of this attribute,
	 * which is what the HMAC covers (RFC 8489 §14.5). */
	if ((p = attr_begin(b, type, vlen)) == NULL)
		return;
	if (stun_hmac(sha256, key, keylen, b->buf, off,
	    b->len - MK_STUN_HDR_LEN, b->rfc3489, mac, &maclen) == -1 ||
	    maclen < vlen) {
		b->err = true;
		return;
	}
	memcpy(p, mac, vlen);
}

void
mk_stun_add_integrity(struct mk_stun_builder *b, const uint8_t *key,
    size_t keylen)
{
	add_mac(b, MK_STUN_ATTR_MESSAGE_INTEGRITY, false, MI_LEN, key,
	    keylen);
}

void
mk_stun_add_integrity_sha256(struct mk_stun_builder *b, const uint8_t *key,
    size_t keylen)
{
	add_mac(b, MK_STUN_ATTR_MESSAGE_INTEGRITY_SHA256, true,
	    MI_SHA256_MAX, key, keylen);
}

void
mk_stun_add_fingerprint(struct mk_stun_builder *b)
{
	uint8_t *p;
	size_t off = b->len;

	/* Header length counts FINGERPRINT before the CRC (§14.7). */
	if ((p = attr_begin(b, MK_STUN_ATTR_FINGERPRINT, FP_LEN)) != NULL)
		mk_put32(p, stun_crc32(b->buf, off) ^ MK_STUN_FP_XOR);
}

size_t
mk_stun_end(struct mk_stun_builder *b)
{
	return b->err ? 0 : b->len;
}

size_t
mk_stun_request(uint8_t *buf, size_t cap, const uint8_t txid[12],
    uint32_t change_flags)
{
	struct mk_stun_builder b;

	mk_stun_begin(&b, buf, cap, MK_STUN_BINDING_REQUEST, txid, false);
	if (change_flags != 0)
		mk_stun_add_u32(&b, MK_STUN_ATTR_CHANGE_REQUEST, change_flags);
	mk_stun_add_bytes(&b, MK_STUN_ATTR_SOFTWARE, MK_STUN_SOFTWARE,
	    sizeof(MK_STUN_SOFTWARE) - 1);
	mk_stun_add_fingerprint(&b);
	return mk_stun_end(&b);
}
