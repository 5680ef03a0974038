/* SPDX-License-Identifier: MIT */
/*
 * Port mapping without a network: PCP and NAT-PMP codecs against the
 * layouts of RFC 6887 and RFC 6886 (and answers captured from miniupnpd
 * 2.3.1), the bytes libnatpmp puts on the wire for our calls (through a
 * socketpair), SSDP replies, /proc/net/route, and the async interface.
 */
#include <arpa/inet.h>
#include <natpmp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "portmap.h"
#include "portmap_int.h"
#include "t.h"
#include "util.h"

static void
v4(struct mk_addr *a, const char *s)
{
	const char *why;

	if (mk_addr_parse(a, s, 0, 0, &why) == -1)
		memset(a, 0, sizeof(*a));
}

static char *
ipstr(const struct mk_addr *a)
{
	static char buf[MK_ADDRSTRLEN];

	return mk_addr_fmt(a, buf, sizeof(buf));
}

/* RFC 6887 section 7.1 header; section 14.1 ANNOUNCE is the header alone. */
static void
test_pcp_announce(void)
{
	uint8_t out[64], want[24];
	struct mk_addr c;

	v4(&c, "10.9.0.2");
	REQUIRE_VOID(t_unhex(want, sizeof(want),
	    "02000000" "00000000" "00000000000000000000ffff0a090002") == 24);
	CHECK(mk_pcp_encode_announce(out, sizeof(out), &c) == 24);
	CHECK(memcmp(out, want, 24) == 0);
	CHECK(mk_pcp_encode_announce(out, 23, &c) == 0);
	memset(&c, 0, sizeof(c));
	CHECK(mk_pcp_encode_announce(out, sizeof(out), &c) == 0);
}

/* RFC 6887 sections 7.1 and 11.1: the MAP request, field by field. */
static void
test_pcp_map_request(void)
{
	struct mk_pcp_map_req q;
	uint8_t out[80], want[60];
	const char *why;
	size_t i;

	memset(&q, 0, sizeof(q));
	v4(&q.client, "10.9.0.2");
	q.lifetime = 7200;
	for (i = 0; i < sizeof(q.nonce); i++)
		q.nonce[i] = (uint8_t)(i + 1);
	q.protocol = MK_PCP_PROTO_UDP;
	q.internal_port = 41641;
	REQUIRE_VOID(t_unhex(want, sizeof(want),
	    "02010000" "00001c20" "00000000000000000000ffff0a090002"
	    "0102030405060708090a0b0c" "11000000" "a2a9" "0000"
	    "00000000000000000000ffff00000000") == 60);
	CHECK(mk_pcp_encode_map(out, sizeof(out), &q) == 60);
	CHECK(memcmp(out, want, 60) == 0);
	/* The offsets Tailscale's parser (and RFC 6887) use. */
	CHECK(out[0] == 2 && out[1] == 1);
	CHECK(out[36] == 17);
	CHECK(out[40] == 0xa2 && out[41] == 0xa9);

	/* A suggestion: previous external port and address. */
	q.suggested_port = 41641;
	CHECK(mk_addr_parse(&q.suggested_ip, "198.18.1.9", 0, 0, &why) == 0);
	CHECK(mk_pcp_encode_map(out, sizeof(out), &q) == 60);
	CHECK(out[42] == 0xa2 && out[43] == 0xa9);
	CHECK(out[54] == 0xff && out[55] == 0xff);
	CHECK(out[56] == 198 && out[57] == 18 && out[58] == 1 && out[59] == 9);

	/* Deletion: lifetime 0, everything else the same. */
	q.lifetime = 0;
	CHECK(mk_pcp_encode_map(out, sizeof(out), &q) == 60);
	CHECK(out[4] == 0 && out[5] == 0 && out[6] == 0 && out[7] == 0);

	/* An IPv6 client goes in as it is; no preference is ::. */
	memset(&q.suggested_ip, 0, sizeof(q.suggested_ip));
	CHECK(mk_addr_parse(&q.client, "2001:db8::5", 0, 0, &why) == 0);
	CHECK(mk_pcp_encode_map(out, sizeof(out), &q) == 60);
	CHECK(out[8] == 0x20 && out[9] == 0x01 && out[23] == 5);
	for (i = 44; i < 60; i++)
		CHECK(out[i] == 0);
	CHECK(mk_pcp_encode_map(out, 59, &q) == 0);
}

/* A MAP answer miniupnpd 2.3.1 gave in the lab. */
static const char map_ok[] =
    "02810000" "00000078" "00000889" "000000000000000000000000"
    "7ea9485163827a12525eb6b1" "11000000" "9c40" "9c40"
    "00000000000000000000ffffc6120109";

static void
test_pcp_decode_map(void)
{
	static const uint8_t nonce[12] = { 0x7e, 0xa9, 0x48, 0x51, 0x63, 0x82,
	    0x7a, 0x12, 0x52, 0x5e, 0xb6, 0xb1 };
	struct mk_pcp_resp r;
	uint8_t b[1200];
	const char *why = NULL;
	size_t n;

	n = t_unhex(b, sizeof(b), map_ok);
	REQUIRE_VOID(n == 60);
	CHECK(mk_pcp_decode(&r, b, n, &why) == 0);
	CHECK(r.opcode == MK_PCP_OP_MAP);
	CHECK(r.result == MK_PCP_SUCCESS);
	CHECK(r.lifetime == 120);
	CHECK(r.epoch == 0x889);
	CHECK(r.has_map);
	CHECK(memcmp(r.nonce, nonce, 12) == 0);
	CHECK(r.protocol == 17);
	CHECK(r.internal_port == 40000);
	CHECK(r.external_port == 40000);
	CHECK_STR(ipstr(&r.external), "198.18.1.9:40000");
	CHECK(r.n_options == 0);

	/* With an option after the payload (code 1, 16 bytes of data). */
	memcpy(b + 60, "\x01\x00\x00\x10", 4);
	memset(b + 64, 0xab, 16);
	CHECK(mk_pcp_decode(&r, b, 80, &why) == 0);
	CHECK(r.n_options == 1);
	/* Option data of 5 bytes is padded to 8. */
	memcpy(b + 60, "\x01\x00\x00\x05", 4);
	CHECK(mk_pcp_decode(&r, b, 72, &why) == 0);
	CHECK(mk_pcp_decode(&r, b, 68, &why) == -1);
	/* An option that claims more than is there. */
	memcpy(b + 60, "\x01\x00\x00\x08", 4);
	CHECK(mk_pcp_decode(&r, b, 64, &why) == -1);
	memcpy(b + 60, "\x01\x00\xff\xff", 4);
	CHECK(mk_pcp_decode(&r, b, 80, &why) == -1);

	/* Truncated, odd sizes, too long. */
	CHECK(mk_pcp_decode(&r, b, 56, &why) == -1);
	CHECK(mk_pcp_decode(&r, b, 59, &why) == -1);
	CHECK(mk_pcp_decode(&r, b, 23, &why) == -1);
	CHECK(mk_pcp_decode(&r, b, 0, &why) == -1);
	memset(b + 60, 0, sizeof(b) - 60);
	CHECK(mk_pcp_decode(&r, b, 1100, &why) == 0);
	CHECK(mk_pcp_decode(&r, b, 1104, &why) == -1);

	/* Not a version-2 response. */
	n = t_unhex(b, sizeof(b), map_ok);
	b[0] = 1;
	CHECK(mk_pcp_decode(&r, b, n, &why) == -1);
	b[0] = 2;
	b[1] = 0x01;
	CHECK(mk_pcp_decode(&r, b, n, &why) == -1);
	CHECK(why != NULL);
}

static void
test_pcp_decode_other(void)
{
	struct mk_pcp_resp r;
	uint8_t b[128];
	const char *why;
	size_t n;

	/* ANNOUNCE answer (miniupnpd). */
	n = t_unhex(b, sizeof(b), "02800000" "00000000" "00000889"
	    "000000000000000000000000");
	CHECK(mk_pcp_decode(&r, b, n, &why) == 0);
	CHECK(r.opcode == MK_PCP_OP_ANNOUNCE && r.result == 0);
	CHECK(r.epoch == 2185 && !r.has_map);

	/* An error may be the header alone (UNSUPP_OPCODE to opcode 5). */
	n = t_unhex(b, sizeof(b), "02850004" "00000000" "000009a3"
	    "000000000000000000000000");
	CHECK(mk_pcp_decode(&r, b, n, &why) == 0);
	CHECK(r.opcode == 5 && r.result == MK_PCP_UNSUPP_OPCODE);
	/* ... also for MAP, but never a success. */
	b[1] = 0x81;
	b[3] = MK_PCP_NOT_AUTHORIZED;
	CHECK(mk_pcp_decode(&r, b, n, &why) == 0);
	CHECK(r.result == MK_PCP_NOT_AUTHORIZED && !r.has_map);
	b[3] = 0;
	CHECK(mk_pcp_decode(&r, b, n, &why) == -1);

	/* NOT_AUTHORIZED with the payload: a delete with another nonce. */
	n = t_unhex(b, sizeof(b), "02810002" "00000000" "00000889"
	    "000000000000000000000000" "70eedc544d215c12c754642b" "11000000"
	    "9c400000" "00000000000000000000ffffc6120109");
	CHECK(mk_pcp_decode(&r, b, n, &why) == 0);
	CHECK(r.result == MK_PCP_NOT_AUTHORIZED && r.has_map);
	CHECK(r.internal_port == 40000 && r.external_port == 0);
}

static void
test_result_names(void)
{
	CHECK_STR(mk_pcp_result_str(0), "SUCCESS");
	CHECK_STR(mk_pcp_result_str(2), "NOT_AUTHORIZED");
	CHECK_STR(mk_pcp_result_str(8), "NO_RESOURCES");
	CHECK_STR(mk_pcp_result_str(12), "ADDRESS_MISMATCH");
	CHECK_STR(mk_pcp_result_str(13), "EXCESSIVE_REMOTE_PEERS");
	CHECK_STR(mk_pcp_result_str(14), "unknown");
	CHECK_STR(mk_natpmp_result_str(0), "success");
	CHECK_STR(mk_natpmp_result_str(4), "out of resources");
	CHECK_STR(mk_natpmp_result_str(5), "unsupported opcode");
	CHECK_STR(mk_natpmp_result_str(6), "unknown");
}

/* RFC 6886 sections 3.2 and 3.3; answers captured from miniupnpd. */
static void
test_natpmp_decode(void)
{
	struct mk_natpmp_resp r;
	uint8_t b[64];
	const char *why;
	size_t n;

	n = t_unhex(b, sizeof(b), "00800000" "00000889" "c6120109");
	CHECK(mk_natpmp_decode(&r, b, n, &why) == 0);
	CHECK(r.op == MK_NATPMP_OP_PUBLIC && r.result == 0);
	CHECK(r.epoch == 2185);
	CHECK_STR(ipstr(&r.external), "198.18.1.9:0");
	CHECK(mk_natpmp_decode(&r, b, 11, &why) == -1);

	n = t_unhex(b, sizeof(b), "00810000" "000009a3" "a2a9" "a2a9" "00001c20");
	CHECK(mk_natpmp_decode(&r, b, n, &why) == 0);
	CHECK(r.op == MK_NATPMP_OP_UDP && r.result == 0);
	CHECK(r.internal_port == 41641 && r.external_port == 41641);
	CHECK(r.lifetime == 7200 && r.epoch == 0x9a3);
	CHECK(mk_natpmp_decode(&r, b, 15, &why) == -1);
	CHECK(mk_natpmp_decode(&r, b, 7, &why) == -1);
	b[1] = 0x82;
	CHECK(mk_natpmp_decode(&r, b, n, &why) == 0);
	CHECK(r.op == MK_NATPMP_OP_TCP);

	/* Errors may be the 8-byte common part alone. */
	n = t_unhex(b, sizeof(b), "00810002" "00000010");
	CHECK(mk_natpmp_decode(&r, b, n, &why) == 0);
	CHECK(r.result == MK_NATPMP_NOT_AUTHORIZED && r.lifetime == 0);

	/* Unknown opcode answer (miniupnpd to opcode 3), a request, v1. */
	n = t_unhex(b, sizeof(b), "00830005" "000009a3");
	CHECK(mk_natpmp_decode(&r, b, n, &why) == -1);
	n = t_unhex(b, sizeof(b), "00010000" "a2a90000" "00001c20");
	CHECK(mk_natpmp_decode(&r, b, n, &why) == -1);
	n = t_unhex(b, sizeof(b), "01800000" "00000889" "c6120109");
	CHECK(mk_natpmp_decode(&r, b, n, &why) == -1);
	CHECK(mk_natpmp_decode(&r, b, 0, &why) == -1);
}

/*
 * What libnatpmp sends for our calls, caught on a socketpair put in place
 * of its socket (initnatpmp only connects a UDP socket: nothing leaves).
 * Protocols.md 6.2: internal port 41641, no suggestion, 7200 s is
 * 00 01 00 00 a2 a9 00 00 00 00 1c 20.
 */
static void
test_natpmp_wire(void)
{
	natpmp_t n;
	uint8_t got[32], want[12];
	int sv[2];
	ssize_t len;

	REQUIRE_VOID(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0,
	    sv) == 0);
	n.s = -1;
	REQUIRE_VOID(initnatpmp(&n, 1, htonl(INADDR_LOOPBACK)) == 0);
	REQUIRE_VOID(dup2(sv[0], n.s) == n.s);

	CHECK(sendnewportmappingrequest(&n, NATPMP_PROTOCOL_UDP, 41641, 0,
	    7200) == 12);
	len = recv(sv[1], got, sizeof(got), 0);
	t_unhex(want, sizeof(want), "00010000a2a9000000001c20");
	CHECK(len == 12 && memcmp(got, want, 12) == 0);

	CHECK(sendpublicaddressrequest(&n) == 2);
	len = recv(sv[1], got, sizeof(got), 0);
	CHECK(len == 2 && got[0] == 0 && got[1] == 0);

	/* Our deletion (RFC 6886 section 3.4): lifetime 0, suggestion 0. */
	CHECK(sendnewportmappingrequest(&n, NATPMP_PROTOCOL_UDP, 41641, 0,
	    0) == 12);
	len = recv(sv[1], got, sizeof(got), 0);
	t_unhex(want, sizeof(want), "00010000a2a9000000000000");
	CHECK(len == 12 && memcmp(got, want, 12) == 0);

	/* A renewal suggests the current external port. */
	CHECK(sendnewportmappingrequest(&n, NATPMP_PROTOCOL_UDP, 41641, 50000,
	    3600) == 12);
	len = recv(sv[1], got, sizeof(got), 0);
	t_unhex(want, sizeof(want), "00010000a2a9c35000000e10");
	CHECK(len == 12 && memcmp(got, want, 12) == 0);

	closenatpmp(&n);
	close(sv[0]);
	close(sv[1]);
}

static const char ssdp_reply[] =
    "HTTP/1.1 200 OK\r\n"
    "CACHE-CONTROL: max-age=120\r\n"
    "ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n"
    "USN: uuid:6d65736b-6b69-4c61-6275-706e70000001::"
    "urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n"
    "EXT:\r\n"
    "SERVER: Debian/6.18.44 UPnP/1.1 MiniUPnPd/2.3.1\r\n"
    "LOCATION: http://10.9.0.1:5000/rootDesc.xml\r\n"
    "OPT: \"http://schemas.upnp.org/upnp/1/0/\"; ns=01\r\n"
    "\r\n";

static void
test_ssdp_parse(void)
{
	struct mk_ssdp_reply r;
	char buf[2048];
	const char *why;
	int n;

	CHECK(mk_ssdp_parse(&r, ssdp_reply, sizeof(ssdp_reply) - 1,
	    &why) == 0);
	CHECK_STR(r.location, "http://10.9.0.1:5000/rootDesc.xml");
	CHECK_STR(r.st, MK_SSDP_ST_IGD);
	CHECK_STR(r.server, "Debian/6.18.44 UPnP/1.1 MiniUPnPd/2.3.1");
	CHECK(mk_ssdp_is_igd(&r));

	/* Any case, bare LF, no reason phrase, no final empty line. */
	n = snprintf(buf, sizeof(buf), "HTTP/1.0 200\nlocation:http://a/\n"
	    "St:  urn:schemas-upnp-org:service:WANIPConnection:2  \n");
	CHECK(mk_ssdp_parse(&r, buf, (size_t)n, &why) == 0);
	CHECK_STR(r.location, "http://a/");
	CHECK_STR(r.st, "urn:schemas-upnp-org:service:WANIPConnection:2");
	CHECK(mk_ssdp_is_igd(&r));

	n = snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\nLOCATION: http://"
	    "a/\r\nST: upnp:rootdevice\r\n\r\n");
	CHECK(mk_ssdp_parse(&r, buf, (size_t)n, &why) == 0);
	CHECK(!mk_ssdp_is_igd(&r));

	/* Headers after the empty line do not count. */
	n = snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\nST: x\r\n\r\n"
	    "LOCATION: http://a/\r\n");
	CHECK(mk_ssdp_parse(&r, buf, (size_t)n, &why) == -1);

	n = snprintf(buf, sizeof(buf), "HTTP/1.1 404 Not Found\r\n"
	    "LOCATION: http://a/\r\nST: x\r\n\r\n");
	CHECK(mk_ssdp_parse(&r, buf, (size_t)n, &why) == -1);
	n = snprintf(buf, sizeof(buf), "M-SEARCH * HTTP/1.1\r\n"
	    "LOCATION: http://a/\r\nST: x\r\n\r\n");
	CHECK(mk_ssdp_parse(&r, buf, (size_t)n, &why) == -1);
	n = snprintf(buf, sizeof(buf), "HTTP/1.1 2000 OK\r\n"
	    "LOCATION: http://a/\r\nST: x\r\n\r\n");
	CHECK(mk_ssdp_parse(&r, buf, (size_t)n, &why) == -1);
	n = snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\nST: x\r\n\r\n");
	CHECK(mk_ssdp_parse(&r, buf, (size_t)n, &why) == -1);
	n = snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\nLOCATION:\r\n"
	    "ST: x\r\n\r\n");
	CHECK(mk_ssdp_parse(&r, buf, (size_t)n, &why) == -1);
	CHECK(mk_ssdp_parse(&r, "", 0, &why) == -1);

	/* A NUL inside a value; a LOCATION longer than we keep. */
	memcpy(buf, "HTTP/1.1 200 OK\r\nLOCATION: http://a\0b/\r\nST: x\r\n",
	    48);
	CHECK(mk_ssdp_parse(&r, buf, 48, &why) == -1);
	n = snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\nST: x\r\n"
	    "LOCATION: http://a/%0300d\r\n\r\n", 0);
	CHECK(mk_ssdp_parse(&r, buf, (size_t)n, &why) == -1);
	/* A long SERVER is cut, not refused. */
	n = snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\nST: x\r\n"
	    "LOCATION: http://a/\r\nSERVER: %0300d\r\n\r\n", 0);
	CHECK(mk_ssdp_parse(&r, buf, (size_t)n, &why) == 0);
	CHECK(strlen(r.server) == sizeof(r.server) - 1);
}

static void
test_ssdp_location(void)
{
	struct mk_addr gw;
	char out[MK_PM_URL_MAX];
	const char *why;

	v4(&gw, "10.9.0.1");
	CHECK(mk_ssdp_location(out, sizeof(out),
	    "http://192.168.1.1:5000/rootDesc.xml", &gw, &why) == 0);
	CHECK_STR(out, "http://10.9.0.1:5000/rootDesc.xml");
	CHECK(mk_ssdp_location(out, sizeof(out), "HTTP://router.lan/d.xml",
	    &gw, &why) == 0);
	CHECK_STR(out, "http://10.9.0.1/d.xml");
	CHECK(mk_ssdp_location(out, sizeof(out), "http://10.9.0.1:80", &gw,
	    &why) == 0);
	CHECK_STR(out, "http://10.9.0.1:80/");
	CHECK(mk_ssdp_location(out, sizeof(out), "http://a:5000/x?y=1", &gw,
	    &why) == 0);
	CHECK_STR(out, "http://10.9.0.1:5000/x?y=1");

	CHECK(mk_ssdp_location(out, sizeof(out), "https://a/", &gw, &why) ==
	    -1);
	CHECK(mk_ssdp_location(out, sizeof(out), "http://[fe80::1]:5000/",
	    &gw, &why) == -1);
	CHECK(mk_ssdp_location(out, sizeof(out), "http://:5000/", &gw, &why) ==
	    -1);
	CHECK(mk_ssdp_location(out, sizeof(out), "http://a:70000/", &gw,
	    &why) == -1);
	CHECK(mk_ssdp_location(out, sizeof(out), "http://a:0/", &gw, &why) ==
	    -1);
	CHECK(mk_ssdp_location(out, sizeof(out), "http://a:/", &gw, &why) ==
	    -1);
	CHECK(mk_ssdp_location(out, sizeof(out), "http://a:50x/", &gw, &why) ==
	    -1);
	CHECK(mk_ssdp_location(out, sizeof(out), "http://a/x y", &gw, &why) ==
	    -1);
	CHECK(mk_ssdp_location(out, 20, "http://a:5000/rootDesc.xml", &gw,
	    &why) == -1);
}

static int
route_text(const char *text, struct mk_addr *gw)
{
	const char *why;
	FILE *f;
	int rc;

	if ((f = fmemopen((void *)(uintptr_t)text, strlen(text), "r")) == NULL)
		return -2;
	rc = mk_pm_route_parse(f, gw, &why);
	fclose(f);
	return rc;
}

#define ROUTE_HDR "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\t" \
	"Metric\tMask\t\tMTU\tWindow\tIRTT\n"

static void
test_route_parse(void)
{
	struct mk_addr gw;

	/* Addresses as the kernel prints them (little-endian host). */
	CHECK(route_text(ROUTE_HDR
	    "eth0\t0009000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
	    "eth0\t00000000\t0100090A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n",
	    &gw) == 0);
	CHECK_STR(ipstr(&gw), "10.9.0.1:0");
	/* The lowest metric wins; routes that are down or have no gateway
	 * do not count. */
	CHECK(route_text(ROUTE_HDR
	    "wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n"
	    "eth0\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
	    "tun0\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0\n"
	    "eth1\t00000000\t0100A8C0\t0002\t0\t0\t0\t00000000\t0\t0\t0\n",
	    &gw) == 0);
	CHECK_STR(ipstr(&gw), "10.0.0.1:0");
	CHECK(route_text(ROUTE_HDR
	    "eth0\t0009000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n",
	    &gw) == -1);
	CHECK(gw.len == 0);
	CHECK(route_text("", &gw) == -1);
	/* The first line is the header, whatever it says. */
	CHECK(route_text(
	    "eth0\t00000000\t0100090A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n",
	    &gw) == -1);
	CHECK(route_text(ROUTE_HDR "garbage\n\n\t\t\n"
	    "eth0\t00000000\t1FFFFFFFF\t0003\t0\t0\t0\t00000000\t0\t0\t0\n",
	    &gw) == -1);
}

static void
test_names(void)
{
	char buf[64];
	unsigned via = 99;

	CHECK_STR(mk_pm_name(MK_PM_UPNP), "UPnP");
	CHECK_STR(mk_pm_name(MK_PM_NATPMP), "NAT-PMP");
	CHECK_STR(mk_pm_name(MK_PM_PCP), "PCP");
	CHECK_STR(mk_pm_name(MK_PM_ALL), "none");
	CHECK(mk_pm_parse_via("upnp", &via) == 0 && via == MK_PM_UPNP);
	CHECK(mk_pm_parse_via("NATPMP", &via) == 0 && via == MK_PM_NATPMP);
	CHECK(mk_pm_parse_via("nat-pmp", &via) == 0 && via == MK_PM_NATPMP);
	CHECK(mk_pm_parse_via("pcp", &via) == 0 && via == MK_PM_PCP);
	CHECK(mk_pm_parse_via("igd", &via) == -1);
	CHECK(mk_pm_parse_via("", &via) == -1);
	CHECK_STR(mk_pm_list(MK_PM_ALL, buf, sizeof(buf)),
	    "UPnP, NAT-PMP, PCP");
	CHECK_STR(mk_pm_list(MK_PM_PCP | MK_PM_UPNP, buf, sizeof(buf)),
	    "UPnP, PCP");
	CHECK_STR(mk_pm_list(0, buf, sizeof(buf)), "");
	CHECK_STR(mk_pm_list(MK_PM_ALL, buf, 10), "UPnP");
}

/* What fails before any packet is sent. */
static void
test_refusals(void)
{
	struct mk_pm_probe p;
	struct mk_pm_mapping m;
	struct mk_addr gw;
	const char *why = NULL;

	memset(&p, 0, sizeof(p));
	v4(&p.gateway, "10.9.0.1");
	CHECK(mk_pm_map(&m, &p, 0, 41641, 0, &why) == -1);
	CHECK_STR(why, "no port-mapping service on the gateway");
	p.why_pcp = "PCP: not authorized";
	CHECK(mk_pm_map(&m, &p, MK_PM_PCP, 41641, 0, &why) == -1);
	CHECK_STR(why, "PCP: not authorized");
	CHECK(mk_pm_map(&m, &p, MK_PM_NATPMP, 41641, 0, &why) == -1);
	CHECK_STR(why, "NAT-PMP: not found");
	CHECK(mk_pm_map(&m, &p, MK_PM_ALL, 41641, 0, &why) == -1);
	CHECK_STR(why, "unknown port-mapping service");
	CHECK(mk_pm_map(&m, &p, 0, 0, 0, &why) == -1);
	CHECK_STR(why, "internal port 0");

	memset(&m, 0, sizeof(m));
	CHECK(mk_pm_renew(&m, &why) == -1);
	CHECK_STR(why, "no mapping to renew");
	CHECK(mk_pm_unmap(&m, &why) == -1);
	CHECK_STR(why, "no mapping to delete");

	CHECK(mk_addr_parse(&gw, "2001:db8::1", 0, 0, &why) == 0);
	CHECK(mk_pm_probe_at(&p, &gw, MK_PM_ALL, 0, &why) == -1);
	CHECK(p.found == 0 && p.natpmp_result == -1);
}

static bool
readable(int fd, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, ms) == 1 && (pfd.revents & POLLIN);
}

static void
test_async(void)
{
	struct mk_pm_async *a;
	struct mk_pm_job job, out;
	const char *why = NULL;

	/* lib/task itself is tested in test_lookup.c. */
	/* The async interface with calls that need no network. */
	memset(&job, 0, sizeof(job));
	job.op = MK_PM_OP_RENEW;
	REQUIRE_VOID((a = mk_pm_async_start(&job, &why)) != NULL);
	CHECK(readable(mk_pm_async_fd(a), 5000));
	CHECK(mk_pm_async_result(a, &out) == 1);
	CHECK(out.rc == -1);
	CHECK_STR(out.why, "no mapping to renew");
	CHECK(!readable(mk_pm_async_fd(a), 0));
	mk_pm_async_free(a);

	job.op = MK_PM_OP_MAP;
	job.use_probe = true;
	job.internal_port = 41641;
	REQUIRE_VOID((a = mk_pm_async_start(&job, &why)) != NULL);
	CHECK(readable(mk_pm_async_fd(a), 5000));
	CHECK(mk_pm_async_result(a, &out) == 1);
	CHECK(out.rc == -1);
	CHECK_STR(out.why, "no port-mapping service on the gateway");
	mk_pm_async_free(a);

	job.op = 0;
	CHECK(mk_pm_async_start(&job, &why) == NULL);
	CHECK_STR(why, "unknown port-mapping operation");
	mk_pm_async_free(NULL);

	/* Let the abandoned thread finish before exit, for leak checkers. */
	usleep(200000);
}

int
main(void)
{
	test_pcp_announce();
	test_pcp_map_request();
	test_pcp_decode_map();
	test_pcp_decode_other();
	test_result_names();
	test_natpmp_decode();
	test_natpmp_wire();
	test_ssdp_parse();
	test_ssdp_location();
	test_route_parse();
	test_names();
	test_refusals();
	test_async();
	return t_done("portmap");
}
