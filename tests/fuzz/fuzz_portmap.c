/* SPDX-License-Identifier: MIT */
/*
 * What a gateway (or anyone on the LAN) can send us: PCP and NAT-PMP
 * answers, SSDP replies and the LOCATION in them, and /proc/net/route's
 * text. Every input goes to every parser; what parses is checked against
 * the bytes at the RFC's offsets, independently of the decoder.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "pcp.h"
#include "portmap.h"
#include "portmap_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MUST(c) do { if (!(c)) __builtin_trap(); } while (0)

static uint16_t
be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t
be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* The 16-byte address field at p, as the decoder should see it. */
static void
check_ip(const struct mk_addr *a, const uint8_t *p, uint16_t port)
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };

	MUST(mk_addr_port(a) == port);
	if (memcmp(p, mapped, 12) == 0) {
		MUST(mk_addr_family(a) == AF_INET);
		MUST(memcmp(&a->sin.sin_addr, p + 12, 4) == 0);
	} else {
		MUST(mk_addr_family(a) == AF_INET6);
		MUST(memcmp(&a->sin6.sin6_addr, p, 16) == 0);
	}
}

static void
pcp(const uint8_t *p, size_t n)
{
	struct mk_pcp_resp r;
	const char *why = NULL;

	if (mk_pcp_decode(&r, p, n, &why) == -1) {
		MUST(why != NULL);
		return;
	}
	MUST(n >= MK_PCP_HDR_LEN && n <= MK_PCP_MAX_LEN && n % 4 == 0);
	MUST(p[0] == 2 && (p[1] & 0x80) && r.opcode == (p[1] & 0x7f));
	MUST(r.result == p[3]);
	MUST(r.lifetime == be32(p + 4) && r.epoch == be32(p + 8));
	if (r.opcode == MK_PCP_OP_MAP && r.result == MK_PCP_SUCCESS)
		MUST(r.has_map);
	if (!r.has_map)
		return;
	MUST(r.opcode == MK_PCP_OP_MAP && n >= MK_PCP_MAP_LEN);
	MUST(memcmp(r.nonce, p + 24, MK_PCP_NONCE_LEN) == 0);
	MUST(r.protocol == p[36]);
	MUST(r.internal_port == be16(p + 40));
	MUST(r.external_port == be16(p + 42));
	check_ip(&r.external, p + 44, r.external_port);
}

static void
natpmp(const uint8_t *p, size_t n)
{
	struct mk_natpmp_resp r;
	const char *why = NULL;

	if (mk_natpmp_decode(&r, p, n, &why) == -1) {
		MUST(why != NULL);
		return;
	}
	MUST(n >= 8 && p[0] == 0 && p[1] >= 128 && p[1] <= 130);
	MUST(r.op == p[1] - 128);
	MUST(r.result == be16(p + 2) && r.epoch == be32(p + 4));
	if (r.result != 0)
		return;
	if (r.op == MK_NATPMP_OP_PUBLIC) {
		MUST(n >= 12 && mk_addr_family(&r.external) == AF_INET);
		MUST(memcmp(&r.external.sin.sin_addr, p + 8, 4) == 0);
	} else {
		MUST(n >= 16);
		MUST(r.internal_port == be16(p + 8));
		MUST(r.external_port == be16(p + 10));
		MUST(r.lifetime == be32(p + 12));
	}
}

/* A request built from the input, answered by itself with the R bit set:
 * the decoder must read back what the encoder wrote. */
static void
pcp_roundtrip(const uint8_t *p, size_t n)
{
	struct mk_pcp_map_req q;
	struct mk_pcp_resp r;
	uint8_t out[MK_PCP_MAP_LEN];
	const char *why;

	if (n < 24)
		return;
	memset(&q, 0, sizeof(q));
	mk_addr_from_v4(&q.client, p, 0);
	q.lifetime = be32(p + 4);
	memcpy(q.nonce, p + 8, sizeof(q.nonce));
	q.protocol = p[20];
	q.internal_port = be16(p + 21);
	q.suggested_port = be16(p + 22);
	MUST(mk_pcp_encode_map(out, sizeof(out), &q) == MK_PCP_MAP_LEN);
	out[1] |= 0x80;
	MUST(mk_pcp_decode(&r, out, sizeof(out), &why) == 0);
	MUST(r.has_map && r.result == 0 && r.lifetime == q.lifetime);
	MUST(memcmp(r.nonce, q.nonce, sizeof(q.nonce)) == 0);
	MUST(r.protocol == q.protocol && r.internal_port == q.internal_port);
	MUST(r.external_port == q.suggested_port);
	MUST(mk_addr_family(&r.external) == AF_INET &&
	    r.external.sin.sin_addr.s_addr == 0);
}

static bool
clean(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 && *s != '\t')
			return false;
	return true;
}

static void
ssdp(const uint8_t *p, size_t n, const struct mk_addr *gw)
{
	struct mk_ssdp_reply r;
	char url[MK_PM_URL_MAX];
	const char *why = NULL;

	if (mk_ssdp_parse(&r, (const char *)p, n, &why) == -1) {
		MUST(why != NULL);
		return;
	}
	MUST(r.location[0] && r.st[0]);
	MUST(strlen(r.location) < sizeof(r.location) && clean(r.location));
	MUST(strlen(r.st) < sizeof(r.st) && clean(r.st));
	MUST(strlen(r.server) < sizeof(r.server) && clean(r.server));
	(void)mk_ssdp_is_igd(&r);
	if (mk_ssdp_location(url, sizeof(url), r.location, gw, &why) == 0) {
		MUST(strncmp(url, "http://10.9.0.1", 15) == 0);
		MUST(url[15] == ':' || url[15] == '/');
		MUST(strchr(url, ' ') == NULL);
	}
}

static void
route(const uint8_t *p, size_t n)
{
	struct mk_addr gw;
	const char *why = NULL;
	FILE *f;

	if (n == 0 || (f = fmemopen((void *)(uintptr_t)p, n, "r")) == NULL)
		return;
	if (mk_pm_route_parse(f, &gw, &why) == 0)
		MUST(mk_addr_family(&gw) == AF_INET && !mk_addr_is_any(&gw));
	else
		MUST(why != NULL && gw.len == 0);
	fclose(f);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t gw_ip[4] = { 10, 9, 0, 1 };
	struct mk_addr gw;

	mk_addr_from_v4(&gw, gw_ip, 0);
	pcp(data, size);
	natpmp(data, size);
	pcp_roundtrip(data, size);
	ssdp(data, size, &gw);
	route(data, size);
	return 0;
}
