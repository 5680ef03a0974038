/* SPDX-License-Identifier: MIT */
/*
 * The disco codec against protocols.md 3.3: Tailscale's plaintext vectors
 * (disco/disco_test.go) both ways, and the self-computed sealed ping
 * (keys and nonce of 1.8), which tests/tools/disco-vector.py recomputes
 * without libsodium. Then what a receiver must refuse: flipped bits,
 * truncation, wrong keys, short and unknown messages.
 */
#include <sodium.h>
#include <string.h>

#include "addr.h"
#include "disco.h"
#include "key.h"
#include "util.h"
#include "t.h"

static const uint8_t txid[MK_DISCO_TXID_LEN] = {
	1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12
};

static void
vector_key(struct mk_key *k)
{
	memset(k, 0, sizeof(*k));
	k->b[1] = 1;
	k->b[2] = 2;
	k->b[30] = 30;
	k->b[31] = 31;
}

static void
addr(struct mk_addr *a, const char *s)
{
	const char *why;

	if (mk_addr_parse(a, s, 0, MK_ADDR_NEED_PORT, &why) != 0)
		memset(a, 0, sizeof(*a));
}

/* Marshal equals the bytes, and they parse back to the fields. */
static void
test_ping_vectors(void)
{
	static const char keyed[] = "0100 0102030405060708090a0b0c 000102"
	    "000000000000000000000000000000000000000000000000000000 1e1f";
	static const char *hex[] = {
		"0100 0102030405060708090a0b0c",
		keyed,
		"0100 0102030405060708090a0b0c 000000",
	};
	struct mk_disco_ping p[3];
	struct mk_disco_msg m;
	uint8_t want[64], out[64];
	const char *why = NULL;
	size_t i, n;
	ssize_t r;

	memset(p, 0, sizeof(p));
	for (i = 0; i < 3; i++)
		memcpy(p[i].txid, txid, sizeof(txid));
	p[1].has_nodekey = true;
	vector_key(&p[1].nodekey);
	p[2].padding = 3;

	for (i = 0; i < 3; i++) {
		n = t_unhex(want, sizeof(want), hex[i]);
		REQUIRE_VOID(n > 0);
		r = mk_disco_put_ping(out, sizeof(out), &p[i], &why);
		CHECK(r == (ssize_t)n && memcmp(out, want, n) == 0);
		REQUIRE_VOID(mk_disco_parse(&m, want, n, NULL, 0, &why) == 0);
		CHECK(m.type == MK_DISCO_PING && m.version == 0);
		CHECK(memcmp(m.ping.txid, txid, sizeof(txid)) == 0);
		CHECK(m.ping.has_nodekey == p[i].has_nodekey);
		CHECK(memcmp(m.ping.nodekey.b, p[i].nodekey.b, 32) == 0);
		CHECK(m.ping.padding == p[i].padding);
	}
	CHECK(n == 17);

	/* A keyed ping padded out, as the MTU probe sends it; the marshal
	 * is exact at the capacity and refused one byte below. */
	p[1].padding = 100;
	r = mk_disco_put_ping(out, 0, &p[1], &why);
	CHECK(r == -1);
	CHECK_STR(why, "buffer too small");
	{
		uint8_t big[2 + 12 + 32 + 100];

		why = NULL;
		CHECK(mk_disco_put_ping(big, sizeof(big) - 1, &p[1], &why) ==
		    -1);
		CHECK_STR(why, "buffer too small");
		CHECK(mk_disco_put_ping(big, sizeof(big), &p[1], &why) ==
		    (ssize_t)sizeof(big));
		CHECK(mk_disco_parse(&m, big, sizeof(big), NULL, 0, &why) ==
		    0);
		CHECK(m.ping.has_nodekey && m.ping.padding == 100);
		CHECK(memcmp(m.ping.nodekey.b, p[1].nodekey.b, 32) == 0);
	}
	/* Huge padding must not wrap the length check. */
	p[1].padding = (size_t)-1;
	CHECK(mk_disco_put_ping(out, sizeof(out), &p[1], &why) == -1);
	p[1].padding = (size_t)-1 - 20;
	CHECK(mk_disco_put_ping(out, sizeof(out), &p[1], &why) == -1);

	/* Go's ambiguity: a keyless ping with >= 32 bytes of padding reads
	 * back as a zero key and 32 bytes less padding. */
	p[2].padding = 40;
	r = mk_disco_put_ping(out, sizeof(out), &p[2], &why);
	CHECK(r == 2 + 12 + 40);
	CHECK(mk_disco_parse(&m, out, (size_t)r, NULL, 0, &why) == 0);
	CHECK(m.ping.has_nodekey && sodium_is_zero(m.ping.nodekey.b, 32));
	CHECK(m.ping.padding == 8);

	/* Version is ignored for Ping; trailing bytes count as padding. */
	n = t_unhex(want, sizeof(want), "0107 0102030405060708090a0b0c ff");
	CHECK(mk_disco_parse(&m, want, n, NULL, 0, &why) == 0);
	CHECK(m.type == MK_DISCO_PING && m.version == 7 &&
	    !m.ping.has_nodekey && m.ping.padding == 1);
}

static void
test_pong_vectors(void)
{
	static const char v4[] = "0200 0102030405060708090a0b0c"
	    "00000000000000000000ffff02030405 04d2";
	static const char v6[] = "0200 0102030405060708090a0b0c"
	    "fed00000000000000000000000000012 1a0a";
	struct mk_disco_pong p;
	struct mk_disco_msg m;
	struct mk_addr want;
	uint8_t vec[64], out[64];
	const char *why = NULL;
	char s[MK_ADDRSTRLEN];
	size_t n;

	memset(&p, 0, sizeof(p));
	memcpy(p.txid, txid, sizeof(txid));
	addr(&p.src, "2.3.4.5:1234");
	n = t_unhex(vec, sizeof(vec), v4);
	CHECK(n == MK_DISCO_PONG_LEN);
	CHECK(mk_disco_put_pong(out, sizeof(out), &p, &why) ==
	    MK_DISCO_PONG_LEN && memcmp(out, vec, n) == 0);
	REQUIRE_VOID(mk_disco_parse(&m, vec, n, NULL, 0, &why) == 0);
	CHECK(m.type == MK_DISCO_PONG);
	CHECK(memcmp(m.pong.txid, txid, sizeof(txid)) == 0);
	CHECK(mk_addr_family(&m.pong.src) == AF_INET);
	CHECK(mk_addr_equal(&m.pong.src, &p.src));
	CHECK_STR(mk_addr_fmt(&m.pong.src, s, sizeof(s)), "2.3.4.5:1234");

	/* An IPv4 source kept as ::ffff:2.3.4.5 marshals the same. */
	memset(&p.src, 0, sizeof(p.src));
	p.src.sin6.sin6_family = AF_INET6;
	memcpy(&p.src.sin6.sin6_addr, vec + 14, 16);
	p.src.sin6.sin6_port = htons(1234);
	p.src.len = sizeof(p.src.sin6);
	CHECK(mk_disco_put_pong(out, sizeof(out), &p, &why) ==
	    MK_DISCO_PONG_LEN && memcmp(out, vec, n) == 0);

	addr(&p.src, "[fed0::12]:6666");
	n = t_unhex(vec, sizeof(vec), v6);
	CHECK(mk_disco_put_pong(out, sizeof(out), &p, &why) ==
	    MK_DISCO_PONG_LEN && memcmp(out, vec, n) == 0);
	REQUIRE_VOID(mk_disco_parse(&m, vec, n, NULL, 0, &why) == 0);
	CHECK(mk_addr_family(&m.pong.src) == AF_INET6);
	CHECK(mk_addr_equal(&m.pong.src, &p.src));
	CHECK_STR(mk_addr_fmt(&m.pong.src, s, sizeof(s)), "[fed0::12]:6666");

	/* The DERP form magicsock echoes: ::ffff:127.3.3.40 : region. */
	addr(&want, "127.3.3.40:900");
	p.src = want;
	CHECK(mk_disco_put_pong(out, sizeof(out), &p, &why) ==
	    MK_DISCO_PONG_LEN);
	CHECK(mk_disco_parse(&m, out, MK_DISCO_PONG_LEN, NULL, 0, &why) == 0);
	CHECK(mk_addr_equal(&m.pong.src, &want));

	/* Trailing bytes and another version are ignored. */
	memcpy(vec + n, "\xaa\xbb", 2);
	vec[1] = 3;
	CHECK(mk_disco_parse(&m, vec, n + 2, NULL, 0, &why) == 0);
	CHECK(m.version == 3 && mk_addr_port(&m.pong.src) == 6666);

	why = NULL;
	CHECK(mk_disco_put_pong(out, MK_DISCO_PONG_LEN - 1, &p, &why) == -1);
	CHECK_STR(why, "buffer too small");
	memset(&p.src, 0, sizeof(p.src));
	why = NULL;
	CHECK(mk_disco_put_pong(out, sizeof(out), &p, &why) == -1);
	CHECK_STR(why, "address is not IPv4 or IPv6");
}

static void
test_call_me_maybe_vectors(void)
{
	static const char two[] = "0300"
	    "00000000000000000000ffff01020304 0237"
	    "20010000000000000000000000003456 0315";
	struct mk_addr eps[2], got[4];
	struct mk_disco_msg m;
	uint8_t vec[128], out[128];
	const char *why = NULL;
	char s[MK_ADDRSTRLEN];
	size_t n;

	CHECK(mk_disco_put_call_me_maybe(out, sizeof(out), NULL, 0, &why) ==
	    2 && out[0] == 0x03 && out[1] == 0x00);
	CHECK(mk_disco_parse(&m, out, 2, got, 4, &why) == 0);
	CHECK(m.type == MK_DISCO_CALL_ME_MAYBE && m.cmm.n == 0 &&
	    m.cmm.n_wire == 0);

	addr(&eps[0], "1.2.3.4:567");
	addr(&eps[1], "[2001::3456]:789");
	n = t_unhex(vec, sizeof(vec), two);
	CHECK(n == 2 + 2 * MK_DISCO_EP_LEN);
	CHECK(mk_disco_put_call_me_maybe(out, sizeof(out), eps, 2, &why) ==
	    (ssize_t)n && memcmp(out, vec, n) == 0);
	REQUIRE_VOID(mk_disco_parse(&m, vec, n, got, 4, &why) == 0);
	CHECK(m.cmm.eps == got && m.cmm.n == 2 && m.cmm.n_wire == 2);
	CHECK(mk_addr_equal(&got[0], &eps[0]));
	CHECK(mk_addr_equal(&got[1], &eps[1]));
	CHECK_STR(mk_addr_fmt(&got[0], s, sizeof(s)), "1.2.3.4:567");
	CHECK_STR(mk_addr_fmt(&got[1], s, sizeof(s)), "[2001::3456]:789");

	/* More entries than room: the first cap, and how many there were. */
	memset(got, 0, sizeof(got));
	CHECK(mk_disco_parse(&m, vec, n, got, 1, &why) == 0);
	CHECK(m.cmm.n == 1 && m.cmm.n_wire == 2);
	CHECK(mk_addr_equal(&got[0], &eps[0]) && got[1].len == 0);
	CHECK(mk_disco_parse(&m, vec, n, NULL, 0, &why) == 0);
	CHECK(m.cmm.n == 0 && m.cmm.n_wire == 2);

	/* Go's rules: a bad length or version is an empty list. */
	CHECK(mk_disco_parse(&m, vec, n - 1, got, 4, &why) == 0);
	CHECK(m.type == MK_DISCO_CALL_ME_MAYBE && m.cmm.n == 0 &&
	    m.cmm.n_wire == 0);
	CHECK(mk_disco_parse(&m, vec, 2 + 17, got, 4, &why) == 0);
	CHECK(m.cmm.n == 0);
	vec[1] = 1;
	CHECK(mk_disco_parse(&m, vec, n, got, 4, &why) == 0);
	CHECK(m.version == 1 && m.cmm.n == 0 && m.cmm.n_wire == 0);

	/* Encoder limits: exact capacity, one short, a bad address. */
	CHECK(mk_disco_put_call_me_maybe(out, n, eps, 2, &why) == (ssize_t)n);
	why = NULL;
	CHECK(mk_disco_put_call_me_maybe(out, n - 1, eps, 2, &why) == -1);
	CHECK_STR(why, "buffer too small");
	CHECK(mk_disco_put_call_me_maybe(out, 1, NULL, 0, &why) == -1);
	CHECK(mk_disco_put_call_me_maybe(out, sizeof(out), eps,
	    (size_t)-1 / 2, &why) == -1);
	memset(&eps[1], 0, sizeof(eps[1]));
	why = NULL;
	CHECK(mk_disco_put_call_me_maybe(out, sizeof(out), eps, 2, &why) ==
	    -1);
	CHECK_STR(why, "address is not IPv4 or IPv6");
}

static void
test_parse_errors(void)
{
	uint8_t buf[64];
	struct mk_disco_msg m;
	const char *why;
	size_t len;

	memset(buf, 0, sizeof(buf));
	why = NULL;
	CHECK(mk_disco_parse(&m, buf, 0, NULL, 0, &why) == -1);
	CHECK_STR(why, "short message");
	buf[0] = MK_DISCO_PING;
	why = NULL;
	CHECK(mk_disco_parse(&m, buf, 1, NULL, 0, &why) == -1);
	CHECK_STR(why, "short message");
	for (len = 2; len < 2 + MK_DISCO_TXID_LEN; len++) {
		why = NULL;
		CHECK(mk_disco_parse(&m, buf, len, NULL, 0, &why) == -1);
		CHECK_STR(why, "short ping");
	}
	CHECK(mk_disco_parse(&m, buf, len, NULL, 0, &why) == 0);
	buf[0] = MK_DISCO_PONG;
	for (len = 2; len < MK_DISCO_PONG_LEN; len++) {
		why = NULL;
		CHECK(mk_disco_parse(&m, buf, len, NULL, 0, &why) == -1);
		CHECK_STR(why, "short pong");
	}
	CHECK(mk_disco_parse(&m, buf, len, NULL, 0, &why) == 0);
	/* All-zero 16 bytes are "::", port 0: valid on the wire. */
	CHECK(mk_addr_family(&m.pong.src) == AF_INET6);

	/* Unknown types, peer-relay ones included, are to be ignored. */
	buf[0] = 0x04;
	buf[1] = 0x00;
	why = NULL;
	CHECK(mk_disco_parse(&m, buf, 2 + 72, NULL, 0, &why) == -1);
	CHECK_STR(why, "unknown message type");
	CHECK(m.type == 0x04);
	buf[0] = 0x00;
	CHECK(mk_disco_parse(&m, buf, 20, NULL, 0, &why) == -1);
	buf[0] = 0xff;
	CHECK(mk_disco_parse(&m, buf, 20, NULL, 0, &why) == -1);

	CHECK_STR(mk_disco_type_name(MK_DISCO_PING), "ping");
	CHECK_STR(mk_disco_type_name(MK_DISCO_PONG), "pong");
	CHECK_STR(mk_disco_type_name(MK_DISCO_CALL_ME_MAYBE),
	    "call-me-maybe");
	CHECK_STR(mk_disco_type_name(0x07), "unknown");
}

static void
test_classify(void)
{
	uint8_t p[128];

	CHECK(MK_DISCO_HDR_LEN == 62 && MK_DISCO_OVERHEAD == 78);
	CHECK(MK_DISCO_PING_SIZE == 124 && MK_DISCO_PONG_LEN == 32);
	CHECK(memcmp(MK_DISCO_MAGIC, "\x54\x53\xf0\x9f\x92\xac", 6) == 0);

	memset(p, 0, sizeof(p));
	memcpy(p, MK_DISCO_MAGIC, MK_DISCO_MAGIC_LEN);
	CHECK(mk_disco_looks_like(p, 62));
	CHECK(!mk_disco_looks_like(p, 61));
	CHECK(mk_disco_classify(p, 62) == MK_DISCO_CLASS_DISCO);
	CHECK(mk_disco_classify(p, 61) == MK_DISCO_CLASS_OTHER);
	p[5] ^= 1;
	CHECK(!mk_disco_looks_like(p, 62));
	CHECK(mk_disco_classify(p, 62) == MK_DISCO_CLASS_OTHER);

	/* STUN Binding request and success; an error response (0x0111) is
	 * not "STUN" to magicsock either. */
	memset(p, 0, sizeof(p));
	memcpy(p, "\x00\x01\x00\x00\x21\x12\xa4\x42", 8);
	CHECK(mk_disco_classify(p, 20) == MK_DISCO_CLASS_STUN);
	CHECK(mk_disco_classify(p, 19) == MK_DISCO_CLASS_OTHER);
	p[0] = 0x01;
	p[1] = 0x01;
	CHECK(mk_disco_classify(p, 32) == MK_DISCO_CLASS_STUN);
	p[1] = 0x11;
	CHECK(mk_disco_classify(p, 32) == MK_DISCO_CLASS_OTHER);
	p[0] = 0x40;
	p[1] = 0x01;
	CHECK(mk_disco_classify(p, 32) == MK_DISCO_CLASS_OTHER);

	/* WireGuard message types 1-4, then three zero bytes. */
	memset(p, 0, sizeof(p));
	for (p[0] = 1; p[0] <= 4; p[0]++) {
		CHECK(mk_disco_classify(p, 148) == MK_DISCO_CLASS_WIREGUARD);
		CHECK(mk_disco_classify(p, 4) == MK_DISCO_CLASS_WIREGUARD);
		CHECK(mk_disco_classify(p, 3) == MK_DISCO_CLASS_OTHER);
	}
	p[0] = 0;
	CHECK(mk_disco_classify(p, 148) == MK_DISCO_CLASS_OTHER);
	p[0] = 5;
	CHECK(mk_disco_classify(p, 148) == MK_DISCO_CLASS_OTHER);
	p[0] = 4;
	p[3] = 1;
	CHECK(mk_disco_classify(p, 148) == MK_DISCO_CLASS_OTHER);
	CHECK(mk_disco_classify(p, 0) == MK_DISCO_CLASS_OTHER);
}

struct pair {
	struct mk_key		a_priv, a_pub, b_priv, b_pub;
	struct mk_disco_shared	ab;	/* A's state for peer B */
	struct mk_disco_shared	ba;	/* B's state for peer A */
};

static int
pair_init(struct pair *k)
{
	const char *why;

	memset(k->a_priv.b, 0x11, 32);
	memset(k->b_priv.b, 0x22, 32);
	if (mk_key_public(&k->a_pub, &k->a_priv) != 0 ||
	    mk_key_public(&k->b_pub, &k->b_priv) != 0)
		return -1;
	if (mk_disco_shared_init(&k->ab, &k->b_pub, &k->a_priv, &why) != 0 ||
	    mk_disco_shared_init(&k->ba, &k->a_pub, &k->b_priv, &why) != 0)
		return -1;
	return 0;
}

/* B receiving: look the sender up among B's peers (only A), then open. */
static ssize_t
b_receive(const struct pair *k, uint8_t *out, size_t cap, const uint8_t *pkt,
    size_t len)
{
	struct mk_key sender;
	const char *why;

	if (mk_disco_sender(&sender, pkt, len) != 0 ||
	    !mk_key_equal(&sender, &k->a_pub))
		return -1;
	return mk_disco_open(out, cap, &k->ba, pkt, len, &why);
}

static void
test_sealed_vector(void)
{
	static const char pkt_hex[] = "5453f09f92ac"
	    "7b4e909bbe7ffe44c465a220037d608ee35897d31ef972f07f74892cb0f73f13"
	    "000102030405060708090a0b0c0d0e0f1011121314151617"
	    "209ba14dbad5083e2f98856cb9320c265a8c18945d97ffce3da53ca6da5d";
	struct pair k;
	struct mk_disco_ping ping;
	struct mk_disco_msg m;
	struct mk_key sender;
	uint8_t want[128], nonce[24], shared[32], pt[64], pkt[128], pt2[64];
	const char *why = NULL;
	size_t i, n;
	ssize_t ptlen, len, r;

	REQUIRE_VOID(pair_init(&k) == 0);
	CHECK(t_unhex(shared, sizeof(shared), "8abe7c8ae6800b76d4f5986b04b77f6e"
	    "9b4f332403c90df02428336e8bd9b525") == 32);
	CHECK(memcmp(k.ab.k, shared, 32) == 0);
	CHECK(memcmp(k.ba.k, shared, 32) == 0);
	CHECK(mk_key_equal(&k.ab.peer, &k.b_pub));

	memset(&ping, 0, sizeof(ping));
	memcpy(ping.txid, txid, sizeof(txid));
	ptlen = mk_disco_put_ping(pt, sizeof(pt), &ping, &why);
	REQUIRE_VOID(ptlen == 14);
	for (i = 0; i < sizeof(nonce); i++)
		nonce[i] = (uint8_t)i;
	n = t_unhex(want, sizeof(want), pkt_hex);
	REQUIRE_VOID(n == 92);
	len = mk_disco_seal_nonce(pkt, sizeof(pkt), &k.a_pub, &k.ab, nonce,
	    pt, (size_t)ptlen, &why);
	CHECK(len == 92 && memcmp(pkt, want, 92) == 0);
	CHECK(mk_disco_classify(pkt, 92) == MK_DISCO_CLASS_DISCO);
	CHECK(mk_disco_sender(&sender, pkt, 92) == 0 &&
	    mk_key_equal(&sender, &k.a_pub));

	/* B opens it and finds the ping. */
	r = mk_disco_open(pt2, sizeof(pt2), &k.ba, want, n, &why);
	REQUIRE_VOID(r == 14);
	CHECK(memcmp(pt2, pt, 14) == 0);
	CHECK(mk_disco_parse(&m, pt2, (size_t)r, NULL, 0, &why) == 0);
	CHECK(m.type == MK_DISCO_PING && !m.ping.has_nodekey &&
	    memcmp(m.ping.txid, txid, 12) == 0);

	/* Seal capacity: exact, one short. Open capacity likewise. */
	CHECK(mk_disco_seal_nonce(pkt, 92, &k.a_pub, &k.ab, nonce, pt, 14,
	    &why) == 92);
	why = NULL;
	CHECK(mk_disco_seal_nonce(pkt, 91, &k.a_pub, &k.ab, nonce, pt, 14,
	    &why) == -1);
	CHECK_STR(why, "buffer too small");
	CHECK(mk_disco_seal(pkt, 77, &k.a_pub, &k.ab, pt, 0, &why) == -1);
	CHECK(mk_disco_open(pt2, 14, &k.ba, want, n, &why) == 14);
	why = NULL;
	CHECK(mk_disco_open(pt2, 13, &k.ba, want, n, &why) == -1);
	CHECK_STR(why, "buffer too small");

	/* One flipped bit anywhere: B does not accept it. The magic fails
	 * the classifier, the sender key the peer lookup (and open itself),
	 * nonce, tag and ciphertext the Poly1305 tag. */
	for (i = 0; i < n * 8; i++) {
		memcpy(pkt, want, n);
		pkt[i / 8] ^= (uint8_t)(1U << (i % 8));
		CHECK(b_receive(&k, pt2, sizeof(pt2), pkt, n) == -1);
		CHECK(mk_disco_open(pt2, sizeof(pt2), &k.ba, pkt, n, &why) ==
		    -1);
	}
	memcpy(pkt, want, n);
	pkt[0] ^= 1;
	CHECK(mk_disco_open(pt2, sizeof(pt2), &k.ba, pkt, n, &why) == -1);
	CHECK_STR(why, "not a disco packet");
	memcpy(pkt, want, n);
	pkt[6] ^= 1;
	CHECK(mk_disco_open(pt2, sizeof(pt2), &k.ba, pkt, n, &why) == -1);
	CHECK_STR(why, "not from this peer");
	memcpy(pkt, want, n);
	pkt[91] ^= 0x80;
	CHECK(mk_disco_open(pt2, sizeof(pt2), &k.ba, pkt, n, &why) == -1);
	CHECK_STR(why, "does not open");

	/* Every truncation, and one byte more. */
	for (i = 0; i < n; i++) {
		why = NULL;
		CHECK(mk_disco_open(pt2, sizeof(pt2), &k.ba, want, i, &why) ==
		    -1);
		CHECK(why != NULL);
		if (i >= 62 && i < 78)
			CHECK_STR(why, "short packet");
	}
	memcpy(pkt, want, n);
	pkt[n] = 0;
	CHECK(mk_disco_open(pt2, sizeof(pt2), &k.ba, pkt, n + 1, &why) == -1);
	CHECK(b_receive(&k, pt2, sizeof(pt2), want, n) == 14);
}

static void
test_keys(void)
{
	struct pair k;
	struct mk_key c_priv, c_pub, zero;
	struct mk_disco_shared bc, ac, wrong;
	uint8_t pkt[256], out[256];
	const char *why = NULL;
	ssize_t len;

	REQUIRE_VOID(pair_init(&k) == 0);
	memset(c_priv.b, 0x33, 32);
	REQUIRE_VOID(mk_key_public(&c_pub, &c_priv) == 0);
	REQUIRE_VOID(mk_disco_shared_init(&bc, &c_pub, &k.b_priv, &why) == 0);
	REQUIRE_VOID(mk_disco_shared_init(&ac, &c_pub, &k.a_priv, &why) == 0);

	len = mk_disco_seal(pkt, sizeof(pkt), &k.a_pub, &k.ab,
	    (const uint8_t *)"\x02\x00", 2, &why);
	REQUIRE_VOID(len == 80);
	CHECK(mk_disco_open(out, sizeof(out), &k.ba, pkt, (size_t)len, &why) ==
	    2);
	/* B's state for C refuses a packet naming A... */
	why = NULL;
	CHECK(mk_disco_open(out, sizeof(out), &bc, pkt, (size_t)len, &why) ==
	    -1);
	CHECK_STR(why, "not from this peer");
	/* ...and a key that is A's by name but not by secret (C's private
	 * key with A's public) does not open it. */
	REQUIRE_VOID(mk_disco_shared_init(&wrong, &k.a_pub, &c_priv, &why) ==
	    0);
	why = NULL;
	CHECK(mk_disco_open(out, sizeof(out), &wrong, pkt, (size_t)len,
	    &why) == -1);
	CHECK_STR(why, "does not open");
	/* Sealed for C by A: B cannot open it even when told it is A's. */
	len = mk_disco_seal(pkt, sizeof(pkt), &k.a_pub, &ac,
	    (const uint8_t *)"\x02\x00", 2, &why);
	REQUIRE_VOID(len == 80);
	CHECK(mk_disco_open(out, sizeof(out), &k.ba, pkt, (size_t)len, &why) ==
	    -1);

	/* Random nonces differ between seals; both open. */
	{
		uint8_t p2[256];
		ssize_t l2;

		len = mk_disco_seal(pkt, sizeof(pkt), &k.a_pub, &k.ab,
		    (const uint8_t *)"\x03\x00", 2, &why);
		l2 = mk_disco_seal(p2, sizeof(p2), &k.a_pub, &k.ab,
		    (const uint8_t *)"\x03\x00", 2, &why);
		CHECK(len == 80 && l2 == 80);
		CHECK(memcmp(pkt + 38, p2 + 38, 24) != 0);
		CHECK(mk_disco_open(out, sizeof(out), &k.ba, p2, 80, &why) ==
		    2);
	}

	/* An empty plaintext seals to exactly the overhead. */
	len = mk_disco_seal(pkt, sizeof(pkt), &k.a_pub, &k.ab, NULL, 0, &why);
	CHECK(len == MK_DISCO_OVERHEAD);
	CHECK(mk_disco_open(out, sizeof(out), &k.ba, pkt, (size_t)len, &why) ==
	    0);
	CHECK(mk_disco_parse(&(struct mk_disco_msg){ 0 }, out, 0, NULL, 0,
	    &why) == -1);

	/* A low-order peer key gives no shared key. */
	memset(&zero, 0, sizeof(zero));
	why = NULL;
	CHECK(mk_disco_shared_init(&wrong, &zero, &k.a_priv, &why) == -1);
	CHECK_STR(why, "degenerate peer key");
	CHECK(sodium_is_zero(wrong.k, sizeof(wrong.k)));

	mk_disco_shared_wipe(&bc);
	CHECK(sodium_is_zero((const uint8_t *)&bc, sizeof(bc)));
	mk_disco_shared_wipe(&ac);
}

/* The messages punch sends, sealed and opened end to end. */
static void
test_round_trips(void)
{
	struct pair k;
	struct mk_disco_ping ping;
	struct mk_disco_pong pong;
	struct mk_disco_msg m;
	struct mk_addr eps[5], got[3];
	uint8_t pt[256], pkt[512], out[256];
	const char *why = NULL;
	ssize_t n, len;
	size_t i;

	REQUIRE_VOID(pair_init(&k) == 0);

	/* A full ping: 124 bytes on the wire, as discoPingSize. */
	memset(&ping, 0, sizeof(ping));
	randombytes_buf(ping.txid, sizeof(ping.txid));
	ping.has_nodekey = true;
	ping.nodekey = k.a_pub;
	n = mk_disco_put_ping(pt, sizeof(pt), &ping, &why);
	CHECK(n == MK_DISCO_PING_LEN);
	len = mk_disco_seal(pkt, sizeof(pkt), &k.a_pub, &k.ab, pt, (size_t)n,
	    &why);
	CHECK(len == MK_DISCO_PING_SIZE);
	n = b_receive(&k, out, sizeof(out), pkt, (size_t)len);
	REQUIRE_VOID(n == MK_DISCO_PING_LEN);
	CHECK(mk_disco_parse(&m, out, (size_t)n, NULL, 0, &why) == 0);
	CHECK(m.type == MK_DISCO_PING && m.ping.has_nodekey &&
	    mk_key_equal(&m.ping.nodekey, &k.a_pub) && m.ping.padding == 0 &&
	    memcmp(m.ping.txid, ping.txid, 12) == 0);

	/* A pong to an IPv6 source, B -> A. */
	memset(&pong, 0, sizeof(pong));
	memcpy(pong.txid, ping.txid, 12);
	addr(&pong.src, "[2001:db8::7]:41641");
	n = mk_disco_put_pong(pt, sizeof(pt), &pong, &why);
	REQUIRE_VOID(n == MK_DISCO_PONG_LEN);
	len = mk_disco_seal(pkt, sizeof(pkt), &k.b_pub, &k.ba, pt, (size_t)n,
	    &why);
	CHECK(len == MK_DISCO_OVERHEAD + MK_DISCO_PONG_LEN);
	n = mk_disco_open(out, sizeof(out), &k.ab, pkt, (size_t)len, &why);
	REQUIRE_VOID(n == MK_DISCO_PONG_LEN);
	CHECK(mk_disco_parse(&m, out, (size_t)n, NULL, 0, &why) == 0);
	CHECK(m.type == MK_DISCO_PONG && mk_addr_equal(&m.pong.src, &pong.src));
	CHECK(mk_addr_family(&m.pong.src) == AF_INET6);

	/* CallMeMaybe with five endpoints, parsed into room for three. */
	addr(&eps[0], "192.0.2.1:41641");
	addr(&eps[1], "[2001:db8::1]:41641");
	addr(&eps[2], "10.0.0.2:1");
	addr(&eps[3], "198.51.100.9:65535");
	addr(&eps[4], "[::1]:0");
	n = mk_disco_put_call_me_maybe(pt, sizeof(pt), eps, 5, &why);
	REQUIRE_VOID(n == 2 + 5 * 18);
	len = mk_disco_seal(pkt, sizeof(pkt), &k.a_pub, &k.ab, pt, (size_t)n,
	    &why);
	n = b_receive(&k, out, sizeof(out), pkt, (size_t)len);
	REQUIRE_VOID(n == 2 + 5 * 18);
	CHECK(mk_disco_parse(&m, out, (size_t)n, got, 3, &why) == 0);
	CHECK(m.type == MK_DISCO_CALL_ME_MAYBE && m.cmm.n == 3 &&
	    m.cmm.n_wire == 5);
	for (i = 0; i < 3; i++)
		CHECK(mk_addr_equal(&got[i], &eps[i]));
}

/* The replay ring: a nonce seen is refused while it is in the ring; the
 * oldest leaves first. */
static void
test_replay(void)
{
	struct mk_disco_replay r;
	uint8_t pkt[MK_DISCO_OVERHEAD];
	unsigned i;

	CHECK(mk_disco_replay_init(&r, 0) == -1);
	REQUIRE_VOID(mk_disco_replay_init(&r, 4) == 0);
	memset(pkt, 0, sizeof(pkt));
	for (i = 0; i < 4; i++) {
		pkt[MK_DISCO_MAGIC_LEN + MK_KEY_LEN] = (uint8_t)i;
		CHECK(!mk_disco_replayed(&r, pkt));
		CHECK(mk_disco_replayed(&r, pkt));
	}
	/* the key in front of the nonce is not part of it */
	pkt[MK_DISCO_MAGIC_LEN] ^= 1;
	CHECK(mk_disco_replayed(&r, pkt));
	/* a fifth pushes out the first: that one is new again */
	pkt[MK_DISCO_MAGIC_LEN + MK_KEY_LEN + MK_DISCO_NONCE_LEN - 1] = 9;
	CHECK(!mk_disco_replayed(&r, pkt));
	pkt[MK_DISCO_MAGIC_LEN + MK_KEY_LEN + MK_DISCO_NONCE_LEN - 1] = 0;
	pkt[MK_DISCO_MAGIC_LEN + MK_KEY_LEN] = 0;
	CHECK(!mk_disco_replayed(&r, pkt));
	pkt[MK_DISCO_MAGIC_LEN + MK_KEY_LEN] = 3;
	CHECK(mk_disco_replayed(&r, pkt));
	mk_disco_replay_free(&r);
	CHECK(r.nonces == NULL && r.cap == 0);
}

int
main(void)
{
	if (mk_key_init() != 0)
		return 1;
	test_classify();
	test_ping_vectors();
	test_pong_vectors();
	test_call_me_maybe_vectors();
	test_parse_errors();
	test_sealed_vector();
	test_keys();
	test_round_trips();
	test_replay();
	return t_done("disco");
}
