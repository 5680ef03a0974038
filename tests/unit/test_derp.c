/* SPDX-License-Identifier: MIT */
/*
 * The DERP codec against the vectors of protocols.md 1.8 (Tailscale's
 * derp/client_test.go frames, and the self-computed ServerKey/ClientInfo
 * with fixed keys and nonce), round trips of every frame type, and the
 * limits.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "derp.h"
#include "derpmap.h"
#include "key.h"
#include "util.h"
#include "t.h"

/* Parse one whole frame (header + payload) from a buffer. */
static int
parse_whole(struct mk_derp_frame *f, const uint8_t *buf, size_t len)
{
	uint8_t type;
	uint32_t flen;
	const char *why = NULL;

	if (mk_derp_hdr_get(buf, len, &type, &flen) != 1 ||
	    flen != len - MK_DERP_HDR_LEN)
		return -2;
	return mk_derp_frame_parse(f, type, buf + MK_DERP_HDR_LEN, flen, 2,
	    &why);
}

static void
test_client_test_vectors(void)
{
	uint8_t buf[64];
	struct mk_derp_frame f;
	size_t n;

	n = t_unhex(buf, sizeof(buf), "12 00000008 0102030405060708");
	CHECK(parse_whole(&f, buf, n) == 0);
	CHECK(f.type == MK_DERP_PING);
	CHECK(memcmp(f.ping, "\1\2\3\4\5\6\7\10", 8) == 0);

	n = t_unhex(buf, sizeof(buf), "13 00000008 0102030405060708");
	CHECK(parse_whole(&f, buf, n) == 0);
	CHECK(f.type == MK_DERP_PONG);
	CHECK(memcmp(f.ping, "\1\2\3\4\5\6\7\10", 8) == 0);

	n = t_unhex(buf, sizeof(buf), "14 00000003 424144");
	CHECK(parse_whole(&f, buf, n) == 0);
	CHECK(f.data_len == 3 && memcmp(f.data, "BAD", 3) == 0);

	n = t_unhex(buf, sizeof(buf), "14 00000000");
	CHECK(parse_whole(&f, buf, n) == 0);
	CHECK(f.type == MK_DERP_HEALTH && f.data_len == 0);

	n = t_unhex(buf, sizeof(buf), "15 00000008 00000001 00000002");
	CHECK(parse_whole(&f, buf, n) == 0);
	CHECK(f.reconnect_ms == 1 && f.try_for_ms == 2);
}

static void
test_encoders_match_vectors(void)
{
	uint8_t buf[64], want[64];
	uint8_t d[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	size_t n;

	n = t_unhex(want, sizeof(want), "12 00000008 0102030405060708");
	CHECK(mk_derp_put_ping(buf, d) == n && memcmp(buf, want, n) == 0);
	n = t_unhex(want, sizeof(want), "13 00000008 0102030405060708");
	CHECK(mk_derp_put_pong(buf, d) == n && memcmp(buf, want, n) == 0);
	n = t_unhex(want, sizeof(want), "14 00000003 424144");
	CHECK(mk_derp_put_health(buf, sizeof(buf), "BAD") == n &&
	    memcmp(buf, want, n) == 0);
	CHECK(mk_derp_put_health(buf, 7, "BAD") == 0);
	n = t_unhex(want, sizeof(want), "15 00000008 00000001 00000002");
	CHECK(mk_derp_put_restarting(buf, 1, 2) == n &&
	    memcmp(buf, want, n) == 0);
	n = t_unhex(want, sizeof(want), "06 00000000");
	CHECK(mk_derp_put_keepalive(buf) == n && memcmp(buf, want, n) == 0);
	n = t_unhex(want, sizeof(want), "10 00000000");
	CHECK(mk_derp_put_watch_conns(buf) == n && memcmp(buf, want, n) == 0);
	n = t_unhex(want, sizeof(want), "07 00000001 01");
	CHECK(mk_derp_put_note_preferred(buf, true) == n &&
	    memcmp(buf, want, n) == 0);
}

static void
fixed_keys(struct mk_key *a, struct mk_key *apub, struct mk_key *b,
    struct mk_key *bpub)
{
	memset(a->b, 0x11, 32);
	memset(b->b, 0x22, 32);
	mk_key_public(apub, a);
	mk_key_public(bpub, b);
}

static void
test_keys_and_handshake_vectors(void)
{
	struct mk_key a, apub, b, bpub;
	struct mk_derp_frame f;
	struct mk_derp_client_info ci;
	uint8_t want[256], buf[256], nonce[24], plain[256];
	char hex[65], json[128];
	size_t n, jl, i;
	long pl;
	const char *why = NULL;

	fixed_keys(&a, &apub, &b, &bpub);
	mk_key_to_hex(hex, &apub);
	CHECK_STR(hex,
	    "7b4e909bbe7ffe44c465a220037d608ee35897d31ef972f07f74892cb0f73f13");
	mk_key_to_hex(hex, &bpub);
	CHECK_STR(hex,
	    "0faa684ed28867b97f4a6a2dee5df8ce974e76b7018e3f22a1c4cf2678570f20");

	n = t_unhex(want, sizeof(want), "0100000028 44455250f09f9491 "
	    "0faa684ed28867b97f4a6a2dee5df8ce974e76b7018e3f22a1c4cf2678570f20");
	CHECK(n == 45);
	CHECK(mk_derp_put_server_key(buf, &bpub) == 45);
	CHECK(memcmp(buf, want, 45) == 0);
	CHECK(parse_whole(&f, buf, 45) == 0);
	CHECK(f.key != NULL && memcmp(f.key, bpub.b, 32) == 0);

	/* tailscaled's exact ClientInfo JSON */
	memset(&ci, 0, sizeof(ci));
	ci.version = 2;
	ci.can_ack_pings = true;
	jl = mk_derp_client_info_json(&ci, json, sizeof(json));
	CHECK_STR(json, "{\"version\":2,\"CanAckPings\":true}");

	for (i = 0; i < 24; i++)
		nonce[i] = (uint8_t)i;
	n = t_unhex(want, sizeof(want), "0200000068 "
	    "7b4e909bbe7ffe44c465a220037d608ee35897d31ef972f07f74892cb0f73f13 "
	    "000102030405060708090a0b0c0d0e0f1011121314151617 "
	    "a858a062bb55fbd0e565bf952225b5e220ae6ff32ce093a7548f0f9efd7331db"
	    "8b94711fe4546f1ed0d738121d94abe3");
	CHECK(n == 109);
	CHECK(mk_derp_put_client_info(buf, sizeof(buf), &a, &apub, &bpub, json,
	    jl, nonce) == 109);
	CHECK(memcmp(buf, want, 109) == 0);
	CHECK(mk_derp_put_client_info(buf, 108, &a, &apub, &bpub, json, jl,
	    nonce) == 0);

	/* the server's side: parse, open with its key, read the JSON */
	CHECK(parse_whole(&f, want, 109) == 0);
	REQUIRE_VOID(f.key != NULL);
	CHECK(memcmp(f.key, apub.b, 32) == 0);
	pl = mk_derp_open(plain, sizeof(plain), &b, &apub, f.data, f.data_len);
	CHECK(pl == (long)jl && memcmp(plain, json, jl) == 0);
	CHECK(mk_derp_client_info_parse(&ci, (const char *)plain, (size_t)pl,
	    &why) == 0);
	CHECK(ci.version == 2 && ci.can_ack_pings && !ci.has_mesh_key);

	/* a claimed key whose holder did not seal it: the box stays shut */
	{
		struct mk_key c, cpub;

		memset(c.b, 0x33, 32);
		mk_key_public(&cpub, &c);
		CHECK(mk_derp_open(plain, sizeof(plain), &b, &cpub, f.data,
		    f.data_len) == -1);
		want[60] ^= 1;
		CHECK(mk_derp_open(plain, sizeof(plain), &b, &apub,
		    want + MK_DERP_PKT_HDR_LEN, 109 - MK_DERP_PKT_HDR_LEN) ==
		    -1);
	}

	/* ServerInfo: 03 00000035 nonce[24] box(16+13) */
	n = mk_derp_put_server_info(buf, sizeof(buf), &b, &apub,
	    "{\"version\":2}", 13, nonce);
	CHECK(n == 5 + 53);
	CHECK(memcmp(buf, "\x03\x00\x00\x00\x35", 5) == 0);
	CHECK(memcmp(buf + 5, nonce, 24) == 0);
	CHECK(parse_whole(&f, buf, n) == 0);
	pl = mk_derp_open(plain, sizeof(plain), &a, &bpub, f.data, f.data_len);
	CHECK(pl == 13 && memcmp(plain, "{\"version\":2}", 13) == 0);
	{
		struct mk_derp_server_info si;

		memset(&si, 0, sizeof(si));
		si.version = 2;
		CHECK(mk_derp_server_info_json(&si, json, sizeof(json)) == 13);
		CHECK_STR(json, "{\"version\":2}");
		CHECK(mk_derp_server_info_parse(&si, (const char *)plain,
		    (size_t)pl, &why) == 0 && si.version == 2);
	}
}

static void
test_packets(void)
{
	uint8_t buf[MK_DERP_FWD_HDR_LEN + 16], k1[32], k2[32];
	struct mk_derp_frame f;
	size_t n;

	memset(k1, 0xaa, 32);
	memset(k2, 0xbb, 32);
	n = mk_derp_put_send_hdr(buf, k1, 5);
	memcpy(buf + n, "hello", 5);
	CHECK(n == 37);
	CHECK(parse_whole(&f, buf, n + 5) == 0);
	CHECK(f.type == MK_DERP_SEND_PACKET && f.key == buf + 5);
	CHECK(f.data_len == 5 && memcmp(f.data, "hello", 5) == 0);

	n = mk_derp_put_recv_hdr(buf, k2, 5);
	memcpy(buf + n, "hello", 5);
	CHECK(parse_whole(&f, buf, n + 5) == 0);
	CHECK(memcmp(f.key, k2, 32) == 0 && f.data_len == 5);
	/* version 1: the packet alone */
	{
		const char *why;

		CHECK(mk_derp_frame_parse(&f, MK_DERP_RECV_PACKET, buf + 5, 37,
		    1, &why) == 0);
		CHECK(f.key == NULL && f.data_len == 37);
	}

	n = mk_derp_put_forward_hdr(buf, k1, k2, 3);
	memcpy(buf + n, "abc", 3);
	CHECK(n == 69);
	CHECK(parse_whole(&f, buf, n + 3) == 0);
	CHECK(memcmp(f.key, k1, 32) == 0 && memcmp(f.key2, k2, 32) == 0);
	CHECK(f.data_len == 3);

	/* an empty packet is a packet */
	n = mk_derp_put_send_hdr(buf, k1, 0);
	CHECK(parse_whole(&f, buf, n) == 0 && f.data_len == 0);
}

static void
test_limits(void)
{
	uint8_t *big = calloc(1, 32 * 2 + MK_DERP_MAX_PACKET + 1);
	struct mk_derp_frame f;
	const char *why = NULL;

	REQUIRE_VOID(big != NULL);
	CHECK(mk_derp_frame_parse(&f, MK_DERP_SEND_PACKET, big,
	    32 + MK_DERP_MAX_PACKET, 2, &why) == 0);
	CHECK(mk_derp_frame_parse(&f, MK_DERP_SEND_PACKET, big,
	    32 + MK_DERP_MAX_PACKET + 1, 2, &why) == -1);
	CHECK(mk_derp_frame_parse(&f, MK_DERP_FORWARD_PACKET, big,
	    64 + MK_DERP_MAX_PACKET + 1, 2, &why) == -1);
	CHECK(mk_derp_frame_parse(&f, MK_DERP_SEND_PACKET, big, 31, 2,
	    &why) == -1);
	CHECK(mk_derp_frame_parse(&f, MK_DERP_FORWARD_PACKET, big, 63, 2,
	    &why) == -1);
	CHECK(mk_derp_frame_parse(&f, MK_DERP_NOTE_PREFERRED, big, 2, 2,
	    &why) == -1);
	CHECK(mk_derp_frame_parse(&f, MK_DERP_PING, big, 7, 2, &why) == -1);
	CHECK(mk_derp_frame_parse(&f, MK_DERP_SERVER_KEY, big, 40, 2,
	    &why) == -1);	/* no magic */
	CHECK(mk_derp_frame_parse(&f, MK_DERP_CLIENT_INFO, big, 71, 2,
	    &why) == -1);
	CHECK(mk_derp_frame_parse(&f, MK_DERP_SERVER_INFO, big, 39, 2,
	    &why) == -1);
	/* unknown types are skipped, not errors */
	CHECK(mk_derp_frame_parse(&f, 0x7f, big, 10, 2, &why) == 1);
	CHECK(mk_derp_frame_parse(&f, 0x00, big, 0, 2, &why) == 1);
	free(big);
	{
		uint8_t h[5] = { 0x04, 0xff, 0xff, 0xff, 0xff };
		uint8_t type;
		uint32_t len;

		CHECK(mk_derp_hdr_get(h, 4, &type, &len) == 0);
		CHECK(mk_derp_hdr_get(h, 5, &type, &len) == 1);
		CHECK(type == 4 && len == 0xffffffffU);
	}
}

static void
test_peer_frames(void)
{
	uint8_t buf[64], k[32];
	struct mk_derp_frame f;
	struct mk_addr a;
	char s[MK_ADDRSTRLEN];
	const char *why = NULL;
	size_t n;

	memset(k, 0x42, 32);
	n = mk_derp_put_peer_gone(buf, k, MK_DERP_GONE_NOT_HERE);
	CHECK(n == 38);
	CHECK(parse_whole(&f, buf, n) == 0);
	CHECK(memcmp(f.key, k, 32) == 0 && f.byte == MK_DERP_GONE_NOT_HERE);
	/* an old server: no reason byte means Disconnected */
	CHECK(mk_derp_frame_parse(&f, MK_DERP_PEER_GONE, buf + 5, 32, 2,
	    &why) == 0 && f.byte == MK_DERP_GONE_DISCONNECTED);

	CHECK(mk_addr_parse(&a, "192.0.2.7:4242", 0, 0, &why) == 0);
	n = mk_derp_put_peer_present(buf, k, &a, MK_DERP_PRESENT_REGULAR);
	CHECK(n == 56);
	CHECK(memcmp(buf, "\x09\x00\x00\x00\x33", 5) == 0);	/* 51 */
	CHECK(buf[37 + 10] == 0xff && buf[37 + 11] == 0xff);
	CHECK(parse_whole(&f, buf, n) == 0);
	CHECK_STR(mk_addr_fmt(&f.addr, s, sizeof(s)), "192.0.2.7:4242");
	CHECK(f.flags == MK_DERP_PRESENT_REGULAR);
	/* tolerant: key only, key + address without flags */
	CHECK(mk_derp_frame_parse(&f, MK_DERP_PEER_PRESENT, buf + 5, 32, 2,
	    &why) == 0 && f.addr.len == 0 && f.flags == 0);
	CHECK(mk_derp_frame_parse(&f, MK_DERP_PEER_PRESENT, buf + 5, 50, 2,
	    &why) == 0 && f.addr.len != 0 && f.flags == 0);

	CHECK(mk_addr_parse(&a, "[2001:db8::1]:7", 0, 0, &why) == 0);
	n = mk_derp_put_peer_present(buf, k, &a, MK_DERP_PRESENT_MESH_PEER);
	CHECK(parse_whole(&f, buf, n) == 0);
	CHECK_STR(mk_addr_fmt(&f.addr, s, sizeof(s)), "[2001:db8::1]:7");

	n = mk_derp_put_close_peer(buf, k);
	CHECK(n == 37 && parse_whole(&f, buf, n) == 0 &&
	    f.type == MK_DERP_CLOSE_PEER);
}

static void
test_info_json(void)
{
	struct mk_derp_client_info ci;
	struct mk_derp_server_info si;
	char out[256];
	const char *why = NULL;

	memset(&ci, 0, sizeof(ci));
	ci.version = 2;
	ci.can_ack_pings = true;
	ci.has_mesh_key = true;
	memset(ci.mesh_key, 0xab, 32);
	ci.is_prober = true;
	snprintf(ci.app_name, sizeof(ci.app_name), "a\"<b");
	CHECK(mk_derp_client_info_json(&ci, out, sizeof(out)) > 0);
	CHECK_STR(out, "{\"meshKey\":\"abababababababababababababababab"
	    "abababababababababababababababab\",\"version\":2,"
	    "\"CanAckPings\":true,\"IsProber\":true,"
	    "\"AppName\":\"a\\u0022\\u003cb\"}");
	CHECK(mk_derp_client_info_json(&ci, out, 20) == 0);

	/* Go's decoder: case-insensitive names, unknown fields ignored */
	CHECK(mk_derp_client_info_parse(&ci,
	    "{\"Version\":2,\"canackpings\":true,\"MeshKey\":\""
	    "ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB\","
	    "\"future\":[1,2]}", 124, &why) == 0);
	CHECK(ci.version == 2 && ci.can_ack_pings && ci.has_mesh_key);
	CHECK(ci.mesh_key[0] == 0xab && ci.mesh_key[31] == 0xab);
	CHECK(mk_derp_client_info_parse(&ci, "{\"version\":\"2\"}", 15,
	    &why) == -1);
	CHECK(mk_derp_client_info_parse(&ci, "{\"version\":2.5}", 15,
	    &why) == -1);
	CHECK(mk_derp_client_info_parse(&ci, "[]", 2, &why) == -1);
	CHECK(mk_derp_client_info_parse(&ci, "{", 1, &why) == -1);
	CHECK(mk_derp_client_info_parse(&ci, "{\"meshKey\":\"abc\"}", 17,
	    &why) == -1);
	CHECK(mk_derp_client_info_parse(&ci, "{\"meshKey\":\"\"}", 14,
	    &why) == 0 && !ci.has_mesh_key);
	/* Go's json.Unmarshal: null is no ClientInfo at all, and a null
	 * field leaves it unset; other non-objects are errors */
	ci.version = 7;
	CHECK(mk_derp_client_info_parse(&ci, " null ", 6, &why) == 0);
	CHECK(ci.version == 0 && !ci.can_ack_pings && !ci.has_mesh_key &&
	    !ci.is_prober);
	CHECK(mk_derp_client_info_parse(&ci, "{\"version\":null,\"IsProber\""
	    ":null,\"AppName\":null,\"meshKey\":null}", 62, &why) == 0);
	CHECK(ci.version == 0 && !ci.is_prober && !ci.has_mesh_key);
	CHECK(mk_derp_client_info_parse(&ci, "2", 1, &why) == -1);
	CHECK(mk_derp_client_info_parse(&ci, "\"x\"", 3, &why) == -1);
	CHECK(mk_derp_client_info_parse(&ci, "nul", 3, &why) == -1);

	memset(&si, 0, sizeof(si));
	si.version = 2;
	si.rate_bytes = 1000;
	si.burst_bytes = 65568;
	CHECK(mk_derp_server_info_json(&si, out, sizeof(out)) > 0);
	CHECK_STR(out, "{\"version\":2,\"TokenBucketBytesPerSecond\":1000,"
	    "\"TokenBucketBytesBurst\":65568}");
	memset(&si, 0, sizeof(si));
	CHECK(mk_derp_server_info_parse(&si, out, strlen(out), &why) == 0);
	CHECK(si.rate_bytes == 1000 && si.burst_bytes == 65568);
}

static void
test_type_names(void)
{
	CHECK_STR(mk_derp_type_name(MK_DERP_FORWARD_PACKET), "ForwardPacket");
	CHECK_STR(mk_derp_type_name(0x99), "unknown");
}

/* A DERP map region as client targets: pins, dial addresses, order. */
static void
test_map_targets(void)
{
	static const char j[] =
	    "{\"Regions\":{\"900\":{\"RegionID\":900,\"Nodes\":["
	    "{\"Name\":\"s\",\"HostName\":\"stun.example\",\"STUNOnly\":true},"
	    "{\"Name\":\"a\",\"HostName\":\"derp.example\",\"IPv4\":\"none\","
	    "\"IPv6\":\"2001:db8::20\",\"DERPPort\":8443,\"CertName\":"
	    "\"sha256-raw:00112233445566778899aabbccddeeff00112233445566778899"
	    "aabbccddeeff\"},"
	    "{\"Name\":\"b\",\"HostName\":\"b.example\",\"IPv4\":\"198.18.0.20\","
	    "\"IPv6\":\"2001:db8::21\",\"InsecureForTests\":true},"
	    "{\"Name\":\"c\",\"HostName\":\"c.example\",\"IPv4\":\"none\","
	    "\"IPv6\":\"none\"},"
	    "{\"Name\":\"d\",\"HostName\":\"d.example\"}]}}}";
	struct mk_derpmap m;
	struct mk_derpc_target t[8];
	char err[200], a[MK_ADDRSTRLEN];
	size_t n;

	REQUIRE_VOID(mk_derpmap_parse(&m, j, strlen(j), err, sizeof(err)) == 0);
	n = mk_derpmap_targets(mk_derpmap_region(&m, 900), t, 8);
	CHECK(n == 3);	/* not the STUN-only node, not the one with none */
	CHECK_STR(t[0].url.url, "https://derp.example:8443/derp");
	CHECK(t[0].has_pin && t[0].pin[0] == 0x00 && t[0].pin[31] == 0xff);
	CHECK_STR(mk_addr_fmt(&t[0].dial, a, sizeof(a)), "[2001:db8::20]:8443");
	CHECK(t[0].dial6.len == 0);
	CHECK_STR(t[1].url.url, "https://b.example/derp");
	CHECK_STR(mk_addr_fmt(&t[1].dial, a, sizeof(a)), "198.18.0.20:443");
	CHECK_STR(mk_addr_fmt(&t[1].dial6, a, sizeof(a)), "[2001:db8::21]:443");
	CHECK(t[1].insecure && !t[1].has_pin);
	CHECK(t[2].dial.len == 0);	/* HostName is looked up */
	CHECK(mk_derpmap_targets(mk_derpmap_region(&m, 900), t, 1) == 1);
	mk_derpmap_free(&m);
}

int
main(void)
{
	if (mk_key_init() != 0)
		return 1;
	test_client_test_vectors();
	test_encoders_match_vectors();
	test_keys_and_handshake_vectors();
	test_packets();
	test_limits();
	test_peer_frames();
	test_info_json();
	test_type_names();
	test_map_targets();
	return t_done("derp");
}
