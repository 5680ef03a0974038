/* SPDX-License-Identifier: MIT */
/*
 * STUN codec: RFC 5769 vectors, Tailscale's request/response and real
 * server replies, builder round trips, and malformed input.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "addr.h"
#include "stun.h"
#include "t.h"
#include "util.h"

/* RFC 5769 Appendix A. */
static const char rfc_2_1[] =
    "000100582112a442b7e7a701bc34d686fa87dfae"
    "802200105354554e207465737420636c69656e74"
    "002400046e0001ff"
    "80290008932ff9b151263b36"
    "000600096576746a3a68367659202020"
    "000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a2"
    "80280004e57a3bcf";
static const char rfc_2_2[] =
    "0101003c2112a442b7e7a701bc34d686fa87dfae"
    "8022000b7465737420766563746f7220"
    "002000080001a147e112a643"
    "000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7"
    "80280004c07d4c96";
static const char rfc_2_3[] =
    "010100482112a442b7e7a701bc34d686fa87dfae"
    "8022000b7465737420766563746f7220"
    "002000140002a1470113a9faa5d3f179bc25f4b5bed2b9d9"
    "00080014a382954e4be67bf11784c97c8292c275bfe3ed41"
    "80280004c8fb0b4c";
static const char rfc_2_4[] =
    "000100602112a44278ad3433c6ad72c029da412e"
    "00060012e3839ee38388e383aae38383e382afe382b90000"
    "0015001c662f2f3439396b39353464364f4c33346f4c39465354767936347341"
    "0014000b6578616d706c652e6f726700"
    "00080014f67024656dd64a3e02b8e0712e85c9a28ca89666";
static const char rfc_password[] = "VOkJxbRl1RmTxUk/WvJxBt";
/* "マトリックス" in UTF-8 */
static const char rfc_user_2_4[] =
    "\xe3\x83\x9e\xe3\x83\x88\xe3\x83\xaa\xe3\x83\x83\xe3\x82\xaf\xe3\x82\xb9";

/* Tailscale net/stun: Request and Response for txid 01..0c (self-computed,
 * protocols.md §5.1/§5.3) and a real 4-in-6 reply ("no-4in6"). */
static const char ts_request[] =
    "000100142112a4420102030405060708090a0b0c"
    "802200087461696c6e6f6465"
    "80280004b32c370f";
static const char ts_response[] =
    "0101000c2112a4420102030405060708090a0b0c"
    "002000080001a147e112a643";
static const char ts_4in6[] =
    "010100182112a4424fd5d202dcb37d31fc773306"
    "002000140002cd3d2112a4424fd5d202dcb382ce2dc3fcc7";

/* Real replies transcribed from Tailscale's net/stun/stun_test.go. */
static const char google_1[] =
    "0101000c2112a4422360b11e3ec68ffa93e08007"
    "002000080001c7866957856f";
static const char sipgate[] =
    "010100442112a442482eb64715e8b28eaead6444"
    "000100080001e4ab4845212d"
    "0004000800012710d90a4498"
    "0005000800012711d9747a8a"
    "802000080001c5b96957856f"
    "80220010566f766964612e6f726720302e393600";
static const char powervoip[] =
    "010100242112a4427e57966829f444609d1deaa6"
    "000100080001e9d34845212d"
    "0004000800010d964d48a9d4"
    "0005000800010d974d48a9d5";
/* pion's reply carries 8 stray bytes after the message. */
static const char pion_trailing[] =
    "010100242112a442ebc2d36ef471217c4f3e308e"
    "8022000a656e64706f696e7465720000"
    "002000080001ce665e12a443"
    "80280004b699bb02"
    "010100242112a442";
static const char stuntman_v6[] =
    "010100482112a44206f56685d28af3e69ce341e2"
    "000100140002 90ce260200d1b4cfc10038b231fffeef96f6"
    "802b001400020d962604a880000200d10000000000c57001"
    "002000140002b1dc0710a493b23aa785ea38c219620cd714";

static uint8_t txid_ts[12] = {
	1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12
};

static const char *
tohex(const uint8_t *p, size_t n)
{
	static char s[2 * MK_STUN_MAX_LEN + 1];

	mk_hex_encode(s, p, n);
	return s;
}

static struct mk_addr
addr(const char *s)
{
	struct mk_addr a;
	const char *why;

	if (mk_addr_parse(&a, s, 0, MK_ADDR_NEED_PORT, &why) == -1) {
		fprintf(stderr, "%s: %s\n", s, why);
		exit(2);
	}
	return a;
}

static const char *
fmt(const struct mk_addr *a)
{
	static char s[4][MK_ADDRSTRLEN];
	static int i;

	i = (i + 1) % 4;
	return mk_addr_fmt(a, s[i], sizeof(s[i]));
}

static bool
bytes_eq(const struct mk_stun_bytes *b, const char *s)
{
	return b->p != NULL && b->len == strlen(s) &&
	    memcmp(b->p, s, b->len) == 0;
}

static const uint8_t *
pw(void)
{
	return (const uint8_t *)rfc_password;
}

/*
 * Every prefix must be rejected (an exact-size heap copy, so ASan sees any
 * read past it). Then every 4-byte-aligned cut with the header length
 * patched to match: accepted exactly at attribute boundaries.
 */
static int
truncations(const char *hex)
{
	uint8_t msg[MK_STUN_MAX_LEN], cut[MK_STUN_MAX_LEN], *p;
	bool boundary[MK_STUN_MAX_LEN + 1];
	struct mk_stun_msg m;
	const char *why;
	size_t len, n, off;
	int r;

	len = t_unhex(msg, sizeof(msg), hex);
	for (n = 0; n < len; n++) {
		REQUIRE((p = malloc(n + 1)) != NULL);
		memcpy(p, msg, n);
		why = NULL;
		CHECK(mk_stun_parse(&m, p, n, false, &why) == -1);
		CHECK(why != NULL);
		CHECK(mk_stun_parse(&m, p, n, true, &why) == -1);
		free(p);
	}
	memset(boundary, 0, sizeof(boundary));
	for (off = MK_STUN_HDR_LEN; off <= len;
	    off += 4 + ((((size_t)msg[off + 2] << 8 | msg[off + 3]) + 3) & ~3U)) {
		boundary[off] = true;
		if (off == len)
			break;
	}
	for (n = MK_STUN_HDR_LEN; n < len; n += 4) {
		memcpy(cut, msg, n);
		cut[2] = (uint8_t)((n - MK_STUN_HDR_LEN) >> 8);
		cut[3] = (uint8_t)(n - MK_STUN_HDR_LEN);
		why = NULL;
		r = mk_stun_parse(&m, cut, n, true, &why);
		CHECK(r == (boundary[n] ? 0 : -1));
		if (!boundary[n])
			CHECK_STR(why, "attribute overruns message");
	}
	return 0;
}

static int
test_rfc5769(void)
{
	uint8_t buf[MK_STUN_MAX_LEN], key[16], bad[16];
	struct mk_stun_msg m;
	const char *why = NULL;
	size_t len;

	/* 2.1: request; PRIORITY (0x0024) is comprehension-required and
	 * unknown here, ICE-CONTROLLED (0x8029) optional and skipped. */
	len = t_unhex(buf, sizeof(buf), rfc_2_1);
	CHECK(len == 108);
	REQUIRE(mk_stun_parse(&m, buf, len, false, &why) == 0);
	CHECK(m.type == MK_STUN_BINDING_REQUEST);
	CHECK(m.length == 88);
	CHECK(!m.rfc3489);
	CHECK(memcmp(m.txid, buf + 8, 12) == 0);
	CHECK(bytes_eq(&m.software, "STUN test client"));
	CHECK(bytes_eq(&m.username, "evtj:h6vY"));
	CHECK(m.n_unknown == 1 && m.unknown[0] == 0x0024);
	CHECK(m.has & MK_STUN_HAS_FINGERPRINT);
	CHECK(m.has & MK_STUN_HAS_INTEGRITY);
	CHECK(!(m.has & MK_STUN_HAS_XOR_MAPPED));
	CHECK(m.integrity_off == 108 - 8 - 24);
	CHECK(mk_stun_check_integrity(&m, buf, len, pw(), 22) == 1);
	CHECK(mk_stun_check_integrity(&m, buf, len, pw(), 21) == 0);
	CHECK(mk_stun_check_integrity_sha256(&m, buf, len, pw(), 22) == -1);
	truncations(rfc_2_1);

	/* 2.2: IPv4 response */
	len = t_unhex(buf, sizeof(buf), rfc_2_2);
	CHECK(len == 80);
	REQUIRE(mk_stun_parse(&m, buf, len, false, &why) == 0);
	CHECK(m.type == MK_STUN_BINDING_SUCCESS);
	CHECK(m.has & MK_STUN_HAS_XOR_MAPPED);
	CHECK_STR(fmt(&m.xor_mapped), "192.0.2.1:32853");
	CHECK(bytes_eq(&m.software, "test vector"));
	CHECK(m.has & MK_STUN_HAS_FINGERPRINT);
	CHECK(m.n_unknown == 0);
	CHECK(mk_stun_check_integrity(&m, buf, len, pw(), 22) == 1);
	truncations(rfc_2_2);

	/* 2.3: IPv6 response */
	len = t_unhex(buf, sizeof(buf), rfc_2_3);
	CHECK(len == 92);
	REQUIRE(mk_stun_parse(&m, buf, len, false, &why) == 0);
	CHECK(mk_addr_family(&m.xor_mapped) == AF_INET6);
	CHECK_STR(fmt(&m.xor_mapped),
	    "[2001:db8:1234:5678:11:2233:4455:6677]:32853");
	CHECK(m.has & MK_STUN_HAS_FINGERPRINT);
	CHECK(mk_stun_check_integrity(&m, buf, len, pw(), 22) == 1);
	truncations(rfc_2_3);

	/* 2.4: long-term credentials, no FINGERPRINT */
	len = t_unhex(buf, sizeof(buf), rfc_2_4);
	CHECK(len == 116);
	REQUIRE(mk_stun_parse(&m, buf, len, false, &why) == 0);
	CHECK(bytes_eq(&m.username, rfc_user_2_4));
	CHECK(bytes_eq(&m.realm, "example.org"));
	CHECK(bytes_eq(&m.nonce, "f//499k954d6OL34oL9FSTvy64sA"));
	CHECK(!(m.has & MK_STUN_HAS_FINGERPRINT));
	CHECK(m.n_unknown == 0);
	REQUIRE(mk_stun_longterm_key(key, rfc_user_2_4, "example.org",
	    "TheMatrIX") == 0);
	CHECK(mk_stun_check_integrity(&m, buf, len, key, 16) == 1);
	REQUIRE(mk_stun_longterm_key(bad, rfc_user_2_4, "example.org",
	    "TheMatrix") == 0);
	CHECK(mk_stun_check_integrity(&m, buf, len, bad, 16) == 0);
	CHECK(mk_stun_longterm_key(key, NULL, "r", "p") == -1);
	truncations(rfc_2_4);
	return 0;
}

/*
 * Rebuild 2.2 and 2.3. RFC 8489 says padding is sent as zeros and ignored
 * on receipt; RFC 5769 pads SOFTWARE with a space on purpose, and MI and
 * FINGERPRINT cover that byte. So the test writes the space into the
 * builder's buffer right after SOFTWARE is added, before MI/FINGERPRINT
 * are computed over it, and then compares every byte. The zero-padded
 * build must parse, verify, and differ only in that byte, MI and CRC.
 */
static int
rebuild(const char *hex, const char *mapped)
{
	uint8_t want[MK_STUN_MAX_LEN], got[MK_STUN_MAX_LEN];
	uint8_t zp[MK_STUN_MAX_LEN];
	struct mk_stun_builder b;
	struct mk_stun_msg m;
	struct mk_addr a = addr(mapped);
	const char *why = NULL;
	size_t wlen, glen, zlen, i, mi, pad_at = 20 + 4 + 11;

	wlen = t_unhex(want, sizeof(want), hex);
	mk_stun_begin(&b, got, sizeof(got), MK_STUN_BINDING_SUCCESS, want + 8,
	    false);
	mk_stun_add_bytes(&b, MK_STUN_ATTR_SOFTWARE, "test vector", 11);
	CHECK(b.len == 20 + 16 && got[pad_at] == 0);
	got[pad_at] = ' ';
	mk_stun_add_xor_addr(&b, MK_STUN_ATTR_XOR_MAPPED_ADDRESS, &a);
	mk_stun_add_integrity(&b, pw(), 22);
	mk_stun_add_fingerprint(&b);
	glen = mk_stun_end(&b);
	CHECK(glen == wlen);
	CHECK_STR(tohex(got, glen), hex);

	mk_stun_begin(&b, zp, sizeof(zp), MK_STUN_BINDING_SUCCESS, want + 8,
	    false);
	mk_stun_add_bytes(&b, MK_STUN_ATTR_SOFTWARE, "test vector", 11);
	mk_stun_add_xor_addr(&b, MK_STUN_ATTR_XOR_MAPPED_ADDRESS, &a);
	mk_stun_add_integrity(&b, pw(), 22);
	mk_stun_add_fingerprint(&b);
	zlen = mk_stun_end(&b);
	REQUIRE(zlen == wlen);
	REQUIRE(mk_stun_parse(&m, zp, zlen, false, &why) == 0);
	CHECK(mk_stun_check_integrity(&m, zp, zlen, pw(), 22) == 1);
	CHECK(m.has & MK_STUN_HAS_FINGERPRINT);
	CHECK(mk_addr_equal(&m.xor_mapped, &a));
	mi = m.integrity_off;
	for (i = 0; i < wlen; i++) {
		bool may = i == pad_at || (i >= mi + 4 && i < mi + 24) ||
		    i >= wlen - 4;
		if (!may)
			CHECK(zp[i] == want[i]);
	}
	CHECK(zp[pad_at] == 0);
	return 0;
}

static int
test_tailscale(void)
{
	uint8_t buf[MK_STUN_MAX_LEN], out[MK_STUN_MAX_LEN];
	struct mk_stun_builder b;
	struct mk_stun_msg m;
	struct mk_addr a;
	const char *why = NULL;
	size_t len, n;

	/* The 40-byte request, byte for byte. */
	len = mk_stun_request(out, sizeof(out), txid_ts, 0);
	CHECK(len == 40);
	CHECK_STR(tohex(out, len), ts_request);
	REQUIRE(mk_stun_parse(&m, out, len, false, &why) == 0);
	CHECK(m.type == MK_STUN_BINDING_REQUEST);
	CHECK(bytes_eq(&m.software, MK_STUN_SOFTWARE));
	CHECK(m.has & MK_STUN_HAS_FINGERPRINT);
	CHECK(memcmp(m.txid, txid_ts, 12) == 0);
	CHECK(mk_stun_is(out, len));
	CHECK(mk_stun_request(out, 39, txid_ts, 0) == 0);
	CHECK(mk_stun_request(out, 40, txid_ts, 0) == 40);
	truncations(ts_request);

	/* With CHANGE-REQUEST: before SOFTWARE and FINGERPRINT. */
	len = mk_stun_request(out, sizeof(out), txid_ts,
	    MK_STUN_CHANGE_IP | MK_STUN_CHANGE_PORT);
	CHECK(len == 48);
	CHECK_STR(tohex(out, 28), "0001001c2112a4420102030405060708090a0b0c"
	    "0003000400000006");
	CHECK(out[28] == 0x80 && out[29] == 0x22);
	REQUIRE(mk_stun_parse(&m, out, len, false, &why) == 0);
	CHECK(m.has & MK_STUN_HAS_CHANGE_REQUEST);
	CHECK(m.change_request == 6);
	CHECK(m.has & MK_STUN_HAS_FINGERPRINT);
	CHECK(mk_stun_request(out, 47, txid_ts, MK_STUN_CHANGE_PORT) == 0);
	len = mk_stun_request(out, sizeof(out), txid_ts, MK_STUN_CHANGE_PORT);
	REQUIRE(mk_stun_parse(&m, out, len, false, &why) == 0);
	CHECK(m.change_request == MK_STUN_CHANGE_PORT);

	/* The response for 192.0.2.1:32853. */
	a = addr("192.0.2.1:32853");
	mk_stun_begin(&b, out, sizeof(out), MK_STUN_BINDING_SUCCESS, txid_ts,
	    false);
	mk_stun_add_xor_addr(&b, MK_STUN_ATTR_XOR_MAPPED_ADDRESS, &a);
	len = mk_stun_end(&b);
	CHECK(len == 32);
	CHECK_STR(tohex(out, len), ts_response);
	REQUIRE(mk_stun_parse(&m, out, len, false, &why) == 0);
	CHECK(mk_addr_equal(&m.xor_mapped, &a));
	CHECK(!(m.has & MK_STUN_HAS_FINGERPRINT));
	truncations(ts_response);

	/* derper's IPv4-mapped IPv6 answer comes out as plain IPv4. */
	len = t_unhex(buf, sizeof(buf), ts_4in6);
	REQUIRE(mk_stun_parse(&m, buf, len, false, &why) == 0);
	CHECK(mk_addr_family(&m.xor_mapped) == AF_INET);
	CHECK_STR(fmt(&m.xor_mapped), "209.180.207.193:60463");
	truncations(ts_4in6);

	/* Real replies from Tailscale's tests. */
	len = t_unhex(buf, sizeof(buf), google_1);
	REQUIRE(mk_stun_parse(&m, buf, len, false, &why) == 0);
	CHECK_STR(fmt(&m.xor_mapped), "72.69.33.45:59028");

	/* sipgate: 0x8020 fallback, plus the RFC 3489 address trio. */
	len = t_unhex(buf, sizeof(buf), sipgate);
	REQUIRE(mk_stun_parse(&m, buf, len, false, &why) == 0);
	CHECK(m.has & MK_STUN_HAS_XOR_MAPPED);
	CHECK_STR(fmt(&m.xor_mapped), "72.69.33.45:58539");
	CHECK_STR(fmt(&m.mapped), "72.69.33.45:58539");
	CHECK_STR(fmt(&m.source_address), "217.10.68.152:10000");
	CHECK_STR(fmt(&m.changed_address), "217.116.122.138:10001");
	CHECK(m.software.len == 16 && memcmp(m.software.p, "Vovida.org 0.96",
	    16) == 0);
	truncations(sipgate);

	len = t_unhex(buf, sizeof(buf), powervoip);
	REQUIRE(mk_stun_parse(&m, buf, len, false, &why) == 0);
	CHECK(!(m.has & MK_STUN_HAS_XOR_MAPPED));
	CHECK(m.has & MK_STUN_HAS_MAPPED);
	CHECK_STR(fmt(&m.mapped), "72.69.33.45:59859");

	/* Trailing bytes: the datagram disagrees with the header. Trimmed
	 * to the header length (the caller's choice), it parses. */
	len = t_unhex(buf, sizeof(buf), pion_trailing);
	CHECK(mk_stun_parse(&m, buf, len, false, &why) == -1);
	CHECK_STR(why, "length mismatch");
	n = 20 + (size_t)(buf[2] << 8 | buf[3]);
	REQUIRE(mk_stun_parse(&m, buf, n, false, &why) == 0);
	CHECK_STR(fmt(&m.xor_mapped), "127.0.0.1:61300");
	CHECK(m.has & MK_STUN_HAS_FINGERPRINT);
	CHECK(bytes_eq(&m.software, "endpointer"));

	len = t_unhex(buf, sizeof(buf), stuntman_v6);
	REQUIRE(mk_stun_parse(&m, buf, len, false, &why) == 0);
	CHECK_STR(fmt(&m.xor_mapped),
	    "[2602:d1:b4cf:c100:38b2:31ff:feef:96f6]:37070");
	CHECK(m.has & MK_STUN_HAS_RESPONSE_ORIGIN);
	CHECK(mk_addr_family(&m.response_origin) == AF_INET6);
	CHECK(mk_addr_port(&m.response_origin) == 3478);
	truncations(stuntman_v6);
	return 0;
}

static int
test_is(void)
{
	uint8_t b[24];

	memset(b, 0, sizeof(b));
	CHECK(!mk_stun_is(b, 0));
	CHECK(!mk_stun_is(b, 20));
	b[4] = 0x21;
	b[5] = 0x12;
	b[6] = 0xa4;
	b[7] = 0x42;
	CHECK(!mk_stun_is(b, 19));
	CHECK(mk_stun_is(b, 20));
	CHECK(mk_stun_is(b, 24));
	b[0] = 0x40;
	CHECK(!mk_stun_is(b, 20));
	b[0] = 0x20;
	CHECK(mk_stun_is(b, 20));
	return 0;
}

/* Header checks and a hand-made attribute appended to a bare header. */
static int
parse_with(const char *attrs_hex, bool allow_3489, const char **why)
{
	uint8_t buf[MK_STUN_MAX_LEN];
	struct mk_stun_msg m;
	size_t n;

	n = t_unhex(buf, sizeof(buf), "000100002112a442b7e7a701bc34d686fa87dfae");
	n += t_unhex(buf + n, sizeof(buf) - n, attrs_hex);
	buf[2] = (uint8_t)((n - 20) >> 8);
	buf[3] = (uint8_t)(n - 20);
	return mk_stun_parse(&m, buf, n, allow_3489, why);
}

/* An independent CRC-32 (bit at a time) to cross-check the table. */
static uint32_t
bitwise_crc32(const uint8_t *p, size_t n)
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

static int
test_malformed(void)
{
	uint8_t buf[MK_STUN_MAX_LEN + 8];
	struct mk_stun_msg m;
	const char *why;
	uint32_t crc;
	size_t len;

	/* header */
	len = t_unhex(buf, sizeof(buf), ts_request);
	why = NULL;
	CHECK(mk_stun_parse(&m, buf, 19, false, &why) == -1);
	CHECK_STR(why, "truncated header");
	buf[4] ^= 1;
	CHECK(mk_stun_parse(&m, buf, len, false, &why) == -1);
	CHECK_STR(why, "bad magic cookie");
	buf[4] ^= 1;
	buf[0] |= 0x40;
	CHECK(mk_stun_parse(&m, buf, len, false, &why) == -1);
	CHECK_STR(why, "bad message type");
	buf[0] &= 0x3f;
	buf[3] = 0x15;
	CHECK(mk_stun_parse(&m, buf, len, false, &why) == -1);
	CHECK_STR(why, "length not a multiple of 4");
	buf[3] = 0x18;
	CHECK(mk_stun_parse(&m, buf, len, false, &why) == -1);
	CHECK_STR(why, "length mismatch");
	buf[3] = 0x14;
	memset(buf + len, 0, 4);
	CHECK(mk_stun_parse(&m, buf, len + 4, false, &why) == -1);
	CHECK_STR(why, "length mismatch");
	CHECK(mk_stun_parse(&m, buf, len, false, &why) == 0);
	/* NULL why is allowed */
	CHECK(mk_stun_parse(&m, buf, 3, false, NULL) == -1);
	/* longer than this codec accepts */
	memset(buf, 0, sizeof(buf));
	len = t_unhex(buf, sizeof(buf), "000100002112a442b7e7a701bc34d686fa87dfae");
	buf[2] = (MK_STUN_MAX_LEN + 4 - 20) >> 8;
	buf[3] = (uint8_t)(MK_STUN_MAX_LEN + 4 - 20);
	buf[20] = 0x80;		/* one big optional attribute */
	buf[21] = 0x99;
	buf[22] = (MK_STUN_MAX_LEN + 4 - 24) >> 8;
	buf[23] = (uint8_t)(MK_STUN_MAX_LEN + 4 - 24);
	CHECK(mk_stun_parse(&m, buf, MK_STUN_MAX_LEN + 4, false, &why) == -1);
	CHECK_STR(why, "message too long");

	/* fingerprint */
	len = t_unhex(buf, sizeof(buf), ts_request);
	buf[len - 1] ^= 1;
	CHECK(mk_stun_parse(&m, buf, len, false, &why) == -1);
	CHECK_STR(why, "bad fingerprint");
	buf[len - 1] ^= 1;
	buf[24] = 'T';		/* body changed, CRC not */
	CHECK(mk_stun_parse(&m, buf, len, false, &why) == -1);
	CHECK_STR(why, "bad fingerprint");
	CHECK(parse_with("8028000500000000 00000000", false, &why) == -1);
	CHECK_STR(why, "bad fingerprint length");
	/* fingerprint not last: a correct one (CRC computed here over the
	 * final header length) followed by an empty SOFTWARE */
	len = t_unhex(buf, sizeof(buf), ts_request);
	memcpy(buf + len, "\x80\x22\x00\x00", 4);
	buf[3] += 4;
	crc = bitwise_crc32(buf, len - 8) ^ MK_STUN_FP_XOR;
	buf[len - 4] = (uint8_t)(crc >> 24);
	buf[len - 3] = (uint8_t)(crc >> 16);
	buf[len - 2] = (uint8_t)(crc >> 8);
	buf[len - 1] = (uint8_t)crc;
	CHECK(mk_stun_parse(&m, buf, len + 4, false, &why) == -1);
	CHECK_STR(why, "fingerprint not last");

	/* attribute walk */
	CHECK(parse_with("80220008 74616c6e", false, &why) == -1);
	CHECK_STR(why, "attribute overruns message");
	CHECK(parse_with("80220005 74616c6e", false, &why) == -1);
	CHECK_STR(why, "attribute overruns message");
	CHECK(parse_with("80220005 74616c6e6f000000", false, &why) == 0);
	CHECK(parse_with("80220000", false, &why) == 0);

	/* addresses: family and length */
	CHECK(parse_with("002000080003a147e112a643", false, &why) == -1);
	CHECK_STR(why, "bad address family");
	CHECK(parse_with("000100080000a147e112a643", false, &why) == -1);
	CHECK_STR(why, "bad address family");
	CHECK(parse_with("002000070001a147e112a600", false, &why) == -1);
	CHECK_STR(why, "bad address length");
	CHECK(parse_with("002000140001a147e112a643"
	    "000000000000000000000000", false, &why) == -1);
	CHECK_STR(why, "bad address length");
	CHECK(parse_with("002000080002a147e112a643", false, &why) == -1);
	CHECK_STR(why, "bad address length");
	CHECK(parse_with("802c00020001 0000", false, &why) == -1);
	CHECK_STR(why, "bad address length");
	CHECK(parse_with("802b000c0001a147e112a64300000000", false, &why) ==
	    -1);
	CHECK_STR(why, "bad address length");
	/* a broken duplicate is still an error */
	CHECK(parse_with("000100080001a147e112a643 000100080009a147e112a643",
	    false, &why) == -1);
	CHECK_STR(why, "bad address family");

	/* fixed-size values */
	CHECK(parse_with("0003000300000600", false, &why) == -1);
	CHECK_STR(why, "bad change-request length");
	CHECK(parse_with("000300080000000600000000", false, &why) == -1);
	CHECK_STR(why, "bad change-request length");
	CHECK(parse_with("0027000212340000", false, &why) == -1);
	CHECK_STR(why, "bad response-port length");
	CHECK(parse_with("00080013 00000000000000000000000000000000000000 00",
	    false, &why) == -1);
	CHECK_STR(why, "bad message-integrity length");
	CHECK(parse_with("001c000c 000000000000000000000000", false, &why) ==
	    -1);
	CHECK_STR(why, "bad message-integrity-sha256 length");
	CHECK(parse_with("001c0012 0000000000000000000000000000000000000000",
	    false, &why) == -1);
	CHECK_STR(why, "bad message-integrity-sha256 length");
	CHECK(parse_with("001c0024 0000000000000000000000000000000000000000"
	    "00000000000000000000000000000000", false, &why) == -1);
	CHECK_STR(why, "bad message-integrity-sha256 length");
	CHECK(parse_with("000a0003 00240000", false, &why) == -1);
	CHECK_STR(why, "bad unknown-attributes length");
	CHECK(parse_with("00090003 000004 00", false, &why) == -1);
	CHECK_STR(why, "bad error-code length");
	CHECK(parse_with("00090004 00000214", false, &why) == -1);
	CHECK_STR(why, "bad error code");	/* class 2 */
	CHECK(parse_with("00090004 00000700", false, &why) == -1);
	CHECK_STR(why, "bad error code");	/* class 7 */
	CHECK(parse_with("00090004 00000464", false, &why) == -1);
	CHECK_STR(why, "bad error code");	/* number 100 */

	/* anything but MI-SHA256 and FINGERPRINT after MI */
	CHECK(parse_with("00080014 0000000000000000000000000000000000000000"
	    "80220000", false, &why) == -1);
	CHECK_STR(why, "attribute after message-integrity");
	CHECK(parse_with("001c0010 00000000000000000000000000000000"
	    "00080014 0000000000000000000000000000000000000000", false,
	    &why) == -1);
	CHECK_STR(why, "attribute after message-integrity");
	CHECK(parse_with("00080014 0000000000000000000000000000000000000000"
	    "001c0010 00000000000000000000000000000000", false, &why) == 0);
	return 0;
}

static int
test_text_limits(void)
{
	uint8_t buf[MK_STUN_MAX_LEN];
	struct mk_stun_builder b;
	struct mk_stun_msg m;
	static uint8_t big[800];
	const char *why = NULL;
	size_t len;

	memset(big, 'a', sizeof(big));
	mk_stun_begin(&b, buf, sizeof(buf), MK_STUN_BINDING_REQUEST, txid_ts,
	    false);
	mk_stun_add_bytes(&b, MK_STUN_ATTR_SOFTWARE, big, 763);
	len = mk_stun_end(&b);
	REQUIRE(mk_stun_parse(&m, buf, len, false, &why) == 0);
	CHECK(m.software.len == 763);
	mk_stun_begin(&b, buf, sizeof(buf), MK_STUN_BINDING_REQUEST, txid_ts,
	    false);
	mk_stun_add_bytes(&b, MK_STUN_ATTR_SOFTWARE, big, 764);
	len = mk_stun_end(&b);
	CHECK(mk_stun_parse(&m, buf, len, false, &why) == -1);
	CHECK_STR(why, "software too long");
	mk_stun_begin(&b, buf, sizeof(buf), MK_STUN_BINDING_REQUEST, txid_ts,
	    false);
	mk_stun_add_bytes(&b, MK_STUN_ATTR_USERNAME, big, 514);
	len = mk_stun_end(&b);
	CHECK(mk_stun_parse(&m, buf, len, false, &why) == -1);
	CHECK_STR(why, "username too long");
	return 0;
}

static int
test_error_unknown(void)
{
	uint8_t buf[MK_STUN_MAX_LEN];
	static const uint8_t ua[] = { 0x00, 0x24, 0x7f, 0xff };
	struct mk_stun_builder b;
	struct mk_stun_msg m;
	const char *why = NULL;
	size_t len;
	int i;

	mk_stun_begin(&b, buf, sizeof(buf), MK_STUN_BINDING_ERROR, txid_ts,
	    false);
	mk_stun_add_error(&b, 420, "Unknown Attribute");
	mk_stun_add_bytes(&b, MK_STUN_ATTR_UNKNOWN_ATTRIBUTES, ua, sizeof(ua));
	mk_stun_add_fingerprint(&b);
	len = mk_stun_end(&b);
	REQUIRE(len == 20 + 28 + 8 + 8);
	CHECK_STR(tohex(buf + 20, 8), "0009001500000414");
	REQUIRE(mk_stun_parse(&m, buf, len, false, &why) == 0);
	CHECK(m.type == MK_STUN_BINDING_ERROR);
	CHECK(m.has & MK_STUN_HAS_ERROR_CODE);
	CHECK(m.error_code == 420);
	CHECK(bytes_eq(&m.error_reason, "Unknown Attribute"));
	CHECK(m.has & MK_STUN_HAS_UNKNOWN_ATTRS);
	CHECK(m.unknown_attrs.len == 4 &&
	    memcmp(m.unknown_attrs.p, ua, 4) == 0);
	CHECK(m.has & MK_STUN_HAS_FINGERPRINT);

	/* every class, empty reason */
	for (i = 300; i <= 699; i += 133) {
		mk_stun_begin(&b, buf, sizeof(buf), MK_STUN_BINDING_ERROR,
		    txid_ts, false);
		mk_stun_add_error(&b, (uint16_t)i, NULL);
		len = mk_stun_end(&b);
		REQUIRE(mk_stun_parse(&m, buf, len, false, &why) == 0);
		CHECK(m.error_code == i && m.error_reason.len == 0);
	}
	mk_stun_begin(&b, buf, sizeof(buf), MK_STUN_BINDING_ERROR, txid_ts,
	    false);
	mk_stun_add_error(&b, 299, "x");
	CHECK(mk_stun_end(&b) == 0);
	mk_stun_begin(&b, buf, sizeof(buf), MK_STUN_BINDING_ERROR, txid_ts,
	    false);
	mk_stun_add_error(&b, 700, "x");
	CHECK(mk_stun_end(&b) == 0);

	/* unknown comprehension-required attributes: collected once each,
	 * capped; optional ones skipped */
	CHECK(parse_with("7fff0000 c0010000 00240000 7fff0000", false, &why) ==
	    0);
	mk_stun_begin(&b, buf, sizeof(buf), MK_STUN_BINDING_REQUEST, txid_ts,
	    false);
	mk_stun_add_bytes(&b, 0x7fff, NULL, 0);
	mk_stun_add_bytes(&b, 0xc001, "x", 1);
	mk_stun_add_bytes(&b, 0x0024, "abcd", 4);
	mk_stun_add_bytes(&b, 0x7fff, NULL, 0);
	mk_stun_add_bytes(&b, MK_STUN_ATTR_RESPONSE_ADDRESS, NULL, 0);
	len = mk_stun_end(&b);
	REQUIRE(mk_stun_parse(&m, buf, len, false, &why) == 0);
	CHECK(m.n_unknown == 3);
	CHECK(m.unknown[0] == 0x7fff && m.unknown[1] == 0x0024 &&
	    m.unknown[2] == MK_STUN_ATTR_RESPONSE_ADDRESS);
	mk_stun_begin(&b, buf, sizeof(buf), MK_STUN_BINDING_REQUEST, txid_ts,
	    false);
	for (i = 0; i < 40; i++)
		mk_stun_add_bytes(&b, (uint16_t)(0x7000 + i), NULL, 0);
	len = mk_stun_end(&b);
	REQUIRE(mk_stun_parse(&m, buf, len, false, &why) == 0);
	CHECK(m.n_unknown == MK_STUN_MAX_UNKNOWN);
	CHECK(m.unknown[MK_STUN_MAX_UNKNOWN - 1] ==
	    0x7000 + MK_STUN_MAX_UNKNOWN - 1);
	return 0;
}

/* Every attribute the parser knows, built and read back. */
static int
test_roundtrip(void)
{
	uint8_t buf[MK_STUN_MAX_LEN];
	struct mk_stun_builder b;
	struct mk_stun_msg m;
	struct mk_addr x6 = addr("[2001:db8::1]:1"), o = addr("10.0.0.2:3479");
	struct mk_addr r = addr("[::1]:3478"), x4 = addr("198.51.100.7:65535");
	struct mk_addr mp = addr("203.0.113.9:0");
	const char *why = NULL;
	size_t len;

	mk_stun_begin(&b, buf, sizeof(buf), MK_STUN_BINDING_SUCCESS, txid_ts,
	    false);
	mk_stun_add_xor_addr(&b, MK_STUN_ATTR_XOR_MAPPED_ADDRESS_ALT, &x4);
	mk_stun_add_xor_addr(&b, MK_STUN_ATTR_XOR_MAPPED_ADDRESS, &x6);
	mk_stun_add_xor_addr(&b, MK_STUN_ATTR_XOR_MAPPED_ADDRESS, &x4);
	mk_stun_add_addr(&b, MK_STUN_ATTR_MAPPED_ADDRESS, &mp);
	mk_stun_add_addr(&b, MK_STUN_ATTR_OTHER_ADDRESS, &o);
	mk_stun_add_addr(&b, MK_STUN_ATTR_RESPONSE_ORIGIN, &r);
	mk_stun_add_u32(&b, MK_STUN_ATTR_RESPONSE_PORT, 0x12340000U);
	mk_stun_add_bytes(&b, MK_STUN_ATTR_PADDING, "xyz", 3);
	mk_stun_add_bytes(&b, MK_STUN_ATTR_USERNAME, "u", 1);
	mk_stun_add_bytes(&b, MK_STUN_ATTR_REALM, "re", 2);
	mk_stun_add_bytes(&b, MK_STUN_ATTR_NONCE, "non", 3);
	mk_stun_add_bytes(&b, MK_STUN_ATTR_SOFTWARE, "sw", 2);
	mk_stun_add_bytes(&b, MK_STUN_ATTR_SOFTWARE, "second", 6);
	mk_stun_add_integrity(&b, pw(), 22);
	mk_stun_add_integrity_sha256(&b, pw(), 22);
	mk_stun_add_fingerprint(&b);
	len = mk_stun_end(&b);
	REQUIRE(len != 0);
	CHECK(len == 20 + (size_t)(buf[2] << 8 | buf[3]));
	REQUIRE(mk_stun_parse(&m, buf, len, false, &why) == 0);
	/* 0x0020 wins over 0x8020; the first 0x0020 wins */
	CHECK(mk_addr_equal(&m.xor_mapped, &x6));
	CHECK(mk_addr_equal(&m.mapped, &mp));
	CHECK(mk_addr_equal(&m.other_address, &o));
	CHECK(mk_addr_equal(&m.response_origin, &r));
	CHECK(m.has & MK_STUN_HAS_RESPONSE_PORT);
	CHECK(m.response_port == 0x1234);
	CHECK(m.has & MK_STUN_HAS_PADDING);
	CHECK(bytes_eq(&m.username, "u"));
	CHECK(bytes_eq(&m.realm, "re"));
	CHECK(bytes_eq(&m.nonce, "non"));
	CHECK(bytes_eq(&m.software, "sw"));
	CHECK(m.n_unknown == 0);
	CHECK(m.has & MK_STUN_HAS_INTEGRITY_SHA256);
	CHECK(m.integrity_sha256_len == 32);
	CHECK(mk_stun_check_integrity(&m, buf, len, pw(), 22) == 1);
	CHECK(mk_stun_check_integrity_sha256(&m, buf, len, pw(), 22) == 1);
	CHECK(mk_stun_check_integrity_sha256(&m, buf, len, pw(), 21) == 0);
	/* a view of another message is not trusted */
	CHECK(mk_stun_check_integrity(&m, buf, 40, pw(), 22) == 0);

	/* 0x8020 alone is used */
	mk_stun_begin(&b, buf, sizeof(buf), MK_STUN_BINDING_SUCCESS, txid_ts,
	    false);
	mk_stun_add_xor_addr(&b, MK_STUN_ATTR_XOR_MAPPED_ADDRESS_ALT, &x6);
	len = mk_stun_end(&b);
	REQUIRE(mk_stun_parse(&m, buf, len, false, &why) == 0);
	CHECK(mk_addr_equal(&m.xor_mapped, &x6));

	/* an empty key is a key */
	mk_stun_begin(&b, buf, sizeof(buf), MK_STUN_BINDING_REQUEST, txid_ts,
	    false);
	mk_stun_add_integrity(&b, NULL, 0);
	len = mk_stun_end(&b);
	REQUIRE(len == 44);
	REQUIRE(mk_stun_parse(&m, buf, len, false, &why) == 0);
	CHECK(mk_stun_check_integrity(&m, buf, len, NULL, 0) == 1);
	CHECK(mk_stun_check_integrity(&m, buf, len, pw(), 1) == 0);
	return 0;
}

/* MESSAGE-INTEGRITY-SHA256 truncated to 16 bytes, computed here with
 * OpenSSL's one-shot HMAC as an independent check. */
static int
test_sha256_truncated(void)
{
	uint8_t buf[MK_STUN_MAX_LEN], mac[32];
	struct mk_stun_builder b;
	struct mk_stun_msg m;
	const char *why = NULL;
	unsigned int maclen = 0;
	size_t off;

	mk_stun_begin(&b, buf, sizeof(buf), MK_STUN_BINDING_REQUEST, txid_ts,
	    false);
	mk_stun_add_bytes(&b, MK_STUN_ATTR_USERNAME, "evtj:h6vY", 9);
	off = mk_stun_end(&b);
	REQUIRE(off == 36);
	buf[3] = (uint8_t)(off + 4 + 16 - 20);
	REQUIRE(HMAC(EVP_sha256(), rfc_password, 22, buf, off, mac,
	    &maclen) != NULL && maclen == 32);
	memcpy(buf + off, "\x00\x1c\x00\x10", 4);
	memcpy(buf + off + 4, mac, 16);
	REQUIRE(mk_stun_parse(&m, buf, off + 20, false, &why) == 0);
	CHECK(m.integrity_sha256_len == 16 && m.integrity_sha256_off == off);
	CHECK(mk_stun_check_integrity_sha256(&m, buf, off + 20, pw(), 22) ==
	    1);
	buf[off + 4 + 15] ^= 1;
	CHECK(mk_stun_check_integrity_sha256(&m, buf, off + 20, pw(), 22) ==
	    0);
	CHECK(mk_stun_check_integrity(&m, buf, off + 20, pw(), 22) == -1);
	return 0;
}

static int
test_rfc3489(void)
{
	static const uint8_t tx16[16] = {
		0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
		0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf
	};
	uint8_t buf[MK_STUN_MAX_LEN], padded[128], mac[20];
	struct mk_stun_builder b;
	struct mk_stun_msg m;
	struct mk_addr ma = addr("192.0.2.77:4242"), sa = addr("10.1.1.1:3478");
	struct mk_addr ca = addr("10.1.1.2:3479"), m6 = addr("[2001:db8::5]:9");
	const char *why = NULL;
	unsigned int maclen = 0;
	size_t len;

	/* A classic request: 16-byte id, CHANGE-REQUEST. */
	len = t_unhex(buf, sizeof(buf),
	    "00010008a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"
	    "0003000400000004");
	CHECK(mk_stun_parse(&m, buf, len, false, &why) == -1);
	CHECK_STR(why, "bad magic cookie");
	REQUIRE(mk_stun_parse(&m, buf, len, true, &why) == 0);
	CHECK(m.rfc3489);
	CHECK(memcmp(m.legacy_txid, tx16, 16) == 0);
	CHECK(m.change_request == MK_STUN_CHANGE_IP);
	truncations("00010008a0a1a2a3a4a5a6a7a8a9aaabacadaeaf0003000400000004");
	/* Only Binding request, success and error response (RFC 3489 §11.1)
	 * go without a cookie. */
	buf[0] = 0x01;
	buf[1] = 0x11;
	CHECK(mk_stun_parse(&m, buf, len, true, &why) == 0);
	CHECK(m.rfc3489);
	buf[0] = 0x00;
	buf[1] = 0x11;
	CHECK(mk_stun_parse(&m, buf, len, true, &why) == -1);
	CHECK_STR(why, "bad magic cookie");
	buf[0] = 0x01;
	buf[1] = 0x02;
	CHECK(mk_stun_parse(&m, buf, len, true, &why) == -1);

	/* The answer, built in RFC 3489 form. */
	mk_stun_begin(&b, buf, sizeof(buf), MK_STUN_BINDING_SUCCESS, tx16,
	    true);
	mk_stun_add_addr(&b, MK_STUN_ATTR_MAPPED_ADDRESS, &ma);
	mk_stun_add_addr(&b, MK_STUN_ATTR_SOURCE_ADDRESS, &sa);
	mk_stun_add_addr(&b, MK_STUN_ATTR_CHANGED_ADDRESS, &ca);
	len = mk_stun_end(&b);
	REQUIRE(len == 20 + 3 * 12);
	CHECK(memcmp(buf + 4, tx16, 16) == 0);
	CHECK(mk_stun_parse(&m, buf, len, false, &why) == -1);
	REQUIRE(mk_stun_parse(&m, buf, len, true, &why) == 0);
	CHECK(m.rfc3489 && m.type == MK_STUN_BINDING_SUCCESS);
	CHECK(memcmp(m.legacy_txid, tx16, 16) == 0);
	CHECK(mk_addr_equal(&m.mapped, &ma));
	CHECK(mk_addr_equal(&m.source_address, &sa));
	CHECK(mk_addr_equal(&m.changed_address, &ca));
	CHECK((m.has & (MK_STUN_HAS_MAPPED | MK_STUN_HAS_SOURCE_ADDRESS |
	    MK_STUN_HAS_CHANGED_ADDRESS)) == (MK_STUN_HAS_MAPPED |
	    MK_STUN_HAS_SOURCE_ADDRESS | MK_STUN_HAS_CHANGED_ADDRESS));
	CHECK(!(m.has & MK_STUN_HAS_XOR_MAPPED));
	truncations(tohex(buf, len));

	/* No XOR-MAPPED-ADDRESS without a cookie, neither way. */
	mk_stun_begin(&b, buf, sizeof(buf), MK_STUN_BINDING_SUCCESS, tx16,
	    true);
	mk_stun_add_xor_addr(&b, MK_STUN_ATTR_XOR_MAPPED_ADDRESS, &ma);
	CHECK(mk_stun_end(&b) == 0);
	len = t_unhex(buf, sizeof(buf),
	    "0101000ca0a1a2a3a4a5a6a7a8a9aaabacadaeaf"
	    "002000080001a147e112a643");
	REQUIRE(mk_stun_parse(&m, buf, len, true, &why) == 0);
	CHECK(!(m.has & MK_STUN_HAS_XOR_MAPPED));
	CHECK(m.n_unknown == 0);

	/* RFC 3489 MESSAGE-INTEGRITY: HMAC over the text padded with zeros
	 * to 64 bytes (§11.2.8); checked against a padded copy. */
	mk_stun_begin(&b, buf, sizeof(buf), MK_STUN_BINDING_SUCCESS, tx16,
	    true);
	mk_stun_add_addr(&b, MK_STUN_ATTR_MAPPED_ADDRESS, &m6);
	mk_stun_add_integrity(&b, pw(), 22);
	len = mk_stun_end(&b);
	REQUIRE(len == 20 + 24 + 24);
	memset(padded, 0, sizeof(padded));
	memcpy(padded, buf, 44);
	REQUIRE(HMAC(EVP_sha1(), rfc_password, 22, padded, 64, mac,
	    &maclen) != NULL && maclen == 20);
	CHECK(memcmp(buf + 48, mac, 20) == 0);
	REQUIRE(mk_stun_parse(&m, buf, len, true, &why) == 0);
	CHECK(mk_addr_equal(&m.mapped, &m6));
	CHECK(mk_stun_check_integrity(&m, buf, len, pw(), 22) == 1);
	return 0;
}

static int
test_builder_limits(void)
{
	uint8_t buf[MK_STUN_MAX_LEN + 100];
	struct mk_stun_builder b;
	struct mk_addr none;
	static uint8_t big[MK_STUN_MAX_LEN];
	size_t len;

	mk_stun_begin(&b, buf, 19, MK_STUN_BINDING_REQUEST, txid_ts, false);
	CHECK(b.err && mk_stun_end(&b) == 0);
	mk_stun_begin(&b, buf, 20, MK_STUN_BINDING_REQUEST, txid_ts, false);
	CHECK(mk_stun_end(&b) == 20);
	mk_stun_add_bytes(&b, MK_STUN_ATTR_SOFTWARE, "a", 1);
	CHECK(b.err);
	mk_stun_add_fingerprint(&b);	/* after an error: nothing */
	CHECK(b.len == 20 && mk_stun_end(&b) == 0);
	mk_stun_begin(&b, buf, 28, MK_STUN_BINDING_REQUEST, txid_ts, false);
	mk_stun_add_bytes(&b, MK_STUN_ATTR_SOFTWARE, "abcd", 4);
	CHECK(mk_stun_end(&b) == 28);
	mk_stun_begin(&b, buf, 28, MK_STUN_BINDING_REQUEST, txid_ts, false);
	mk_stun_add_bytes(&b, MK_STUN_ATTR_SOFTWARE, "abcde", 5);
	CHECK(mk_stun_end(&b) == 0);
	/* never longer than MK_STUN_MAX_LEN, whatever the buffer */
	mk_stun_begin(&b, buf, sizeof(buf), MK_STUN_BINDING_REQUEST, txid_ts,
	    false);
	mk_stun_add_bytes(&b, 0x8099, big, MK_STUN_MAX_LEN - 24);
	len = mk_stun_end(&b);
	CHECK(len == MK_STUN_MAX_LEN);
	mk_stun_add_bytes(&b, 0x8099, NULL, 0);
	CHECK(mk_stun_end(&b) == 0);
	/* an empty address is a caller bug */
	memset(&none, 0, sizeof(none));
	mk_stun_begin(&b, buf, sizeof(buf), MK_STUN_BINDING_SUCCESS, txid_ts,
	    false);
	mk_stun_add_addr(&b, MK_STUN_ATTR_MAPPED_ADDRESS, &none);
	CHECK(mk_stun_end(&b) == 0);
	mk_stun_begin(&b, buf, sizeof(buf), MK_STUN_BINDING_SUCCESS, NULL,
	    false);
	CHECK(mk_stun_end(&b) == 0);
	mk_stun_begin(&b, buf, sizeof(buf), 0xc001, txid_ts, false);
	CHECK(mk_stun_end(&b) == 0);
	return 0;
}

int
main(void)
{
	test_rfc5769();
	rebuild(rfc_2_2, "192.0.2.1:32853");
	rebuild(rfc_2_3, "[2001:db8:1234:5678:11:2233:4455:6677]:32853");
	test_tailscale();
	test_is();
	test_malformed();
	test_text_limits();
	test_error_unknown();
	test_roundtrip();
	test_sha256_truncated();
	test_rfc3489();
	test_builder_limits();
	return t_done("stun");
}
