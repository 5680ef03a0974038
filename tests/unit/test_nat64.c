/* SPDX-License-Identifier: MIT */
/* lib/nat64: RFC 6052 addresses (its section 2.4 table), RFC 7050 prefix
 * discovery from AAAA answers, and the discovery on a loop with numeric
 * names only (a unit test never asks a DNS server). */
#include <arpa/inet.h>
#include <string.h>

#include "loop.h"
#include "nat64.h"
#include "t.h"

static void
ip6(const char *s, uint8_t out[16])
{
	if (inet_pton(AF_INET6, s, out) != 1)
		memset(out, 0xee, 16);
}

/* RFC 6052 section 2.4, table 2: 192.0.2.33 under each length. */
static const struct {
	const char *prefix, *embedded;
} rfc6052_table[] = {
	{ "2001:db8::/32", "2001:db8:c000:221::" },
	{ "2001:db8:100::/40", "2001:db8:1c0:2:21::" },
	{ "2001:db8:122::/48", "2001:db8:122:c000:2:2100::" },
	{ "2001:db8:122:300::/56", "2001:db8:122:3c0:0:221::" },
	{ "2001:db8:122:344::/64", "2001:db8:122:344:c0:2:2100:0" },
	{ "2001:db8:122:344::/96", "2001:db8:122:344::192.0.2.33" },
	{ "64:ff9b::/96", "64:ff9b::192.0.2.33" },
};

static void
test_rfc6052_table(void)
{
	static const uint8_t v4[4] = { 192, 0, 2, 33 };
	struct mk_nat64_prefix p;
	uint8_t want[16], got[16], back[4];
	const char *why;
	size_t i;

	for (i = 0; i < sizeof(rfc6052_table) / sizeof(rfc6052_table[0]);
	    i++) {
		REQUIRE_VOID(mk_nat64_parse(&p, rfc6052_table[i].prefix,
		    &why) == 0);
		ip6(rfc6052_table[i].embedded, want);
		mk_nat64_synth(&p, v4, got);
		CHECK(memcmp(got, want, 16) == 0);
		memset(back, 0, sizeof(back));
		CHECK(mk_nat64_extract(&p, want, back));
		CHECK(memcmp(back, v4, 4) == 0);
		/* bits 64-71 set: not an IPv4-embedded address */
		want[8] = 1;
		CHECK(!mk_nat64_extract(&p, want, back));
	}
}

static void
test_parse_fmt(void)
{
	struct mk_nat64_prefix p;
	char buf[MK_NAT64_STRLEN];
	const char *why = NULL;

	CHECK(mk_nat64_parse(&p, "64:ff9b::/96", &why) == 0);
	CHECK(mk_nat64_is_wkp(&p));
	CHECK_STR(mk_nat64_fmt(&p, buf, sizeof(buf)), "64:ff9b::/96");
	CHECK(mk_nat64_parse(&p, "fd64:64:0:ff9b::/96", &why) == 0);
	CHECK(!mk_nat64_is_wkp(&p));
	CHECK(mk_nat64_parse(&p, "64:ff9b::/95", &why) != 0);
	CHECK(mk_nat64_parse(&p, "64:ff9b::", &why) != 0);
	CHECK(mk_nat64_parse(&p, "2001:db8::1/96", &why) != 0);
	CHECK(mk_nat64_parse(&p, "2001:db8::/32x", &why) != 0);
	CHECK(mk_nat64_parse(&p, "2001:db8:0:0:100::/96", &why) != 0);
	CHECK(mk_nat64_parse(&p, "192.0.2.1/32", &why) != 0);
	CHECK(!mk_nat64_len_ok(0) && !mk_nat64_len_ok(128));
}

static void
test_addrs(void)
{
	struct mk_nat64_prefix p;
	struct mk_addr a, b, c;
	char s[MK_ADDRSTRLEN];
	const char *why;
	static const uint8_t priv[4] = { 10, 1, 0, 2 };
	static const uint8_t pub[4] = { 198, 18, 0, 10 };

	REQUIRE_VOID(mk_nat64_parse(&p, "fd64:64:0:ff9b::/96", &why) == 0);
	REQUIRE_VOID(mk_addr_parse(&a, "198.18.1.1:41641", 0, 0, &why) == 0);
	CHECK(mk_nat64_addr_to6(&p, &a, &b));
	CHECK_STR(mk_addr_fmt(&b, s, sizeof(s)),
	    "[fd64:64:0:ff9b::c612:101]:41641");
	CHECK(mk_nat64_addr_to4(&p, &b, &c));
	CHECK(mk_addr_equal(&a, &c));
	/* IPv6 outside the prefix, IPv4 to IPv4: no */
	REQUIRE_VOID(mk_addr_parse(&b, "[2001:db8::c612:101]:1", 0, 0,
	    &why) == 0);
	CHECK(!mk_nat64_addr_to4(&p, &b, &c));
	CHECK(!mk_nat64_addr_to4(&p, &a, &c));
	CHECK(!mk_nat64_addr_to6(&p, &b, &c));
	/* a private address goes through a network-specific prefix, never
	 * through the well-known one */
	CHECK(mk_nat64_reachable(&p, priv));
	mk_nat64_wkp(&p);
	CHECK(!mk_nat64_reachable(&p, priv));
	CHECK(mk_nat64_reachable(&p, pub));
}

/* RFC 7050 3 on answer sets. */
static void
test_rfc7050(void)
{
	struct mk_nat64_prefix out[MK_NAT64_MAX];
	char buf[MK_NAT64_STRLEN];
	uint8_t a[4][16];
	size_t n;

	/* a DNS64 with the well-known prefix: both answers */
	ip6("64:ff9b::192.0.0.170", a[0]);
	ip6("64:ff9b::192.0.0.171", a[1]);
	n = mk_nat64_from_aaaa((const uint8_t (*)[16])a, 2, out, MK_NAT64_MAX);
	REQUIRE_VOID(n == 1);
	CHECK_STR(mk_nat64_fmt(&out[0], buf, sizeof(buf)), "64:ff9b::/96");

	/* every RFC 6052 length, one answer each */
	ip6("2001:db8:c000:aa::", a[0]);		/* /32 */
	n = mk_nat64_from_aaaa((const uint8_t (*)[16])a, 1, out, MK_NAT64_MAX);
	REQUIRE_VOID(n == 1);
	CHECK_STR(mk_nat64_fmt(&out[0], buf, sizeof(buf)), "2001:db8::/32");
	ip6("2001:db8:1c0:0:ab::", a[0]);		/* /40, the 171 one */
	n = mk_nat64_from_aaaa((const uint8_t (*)[16])a, 1, out, MK_NAT64_MAX);
	REQUIRE_VOID(n == 1);
	CHECK_STR(mk_nat64_fmt(&out[0], buf, sizeof(buf)),
	    "2001:db8:100::/40");
	ip6("2001:db8:122:c000:0:aa00::", a[0]);	/* /48 */
	n = mk_nat64_from_aaaa((const uint8_t (*)[16])a, 1, out, MK_NAT64_MAX);
	REQUIRE_VOID(n == 1);
	CHECK(out[0].len == 48);
	ip6("2001:db8:122:3c0:0:aa::", a[0]);		/* /56 */
	n = mk_nat64_from_aaaa((const uint8_t (*)[16])a, 1, out, MK_NAT64_MAX);
	REQUIRE_VOID(n == 1);
	CHECK_STR(mk_nat64_fmt(&out[0], buf, sizeof(buf)),
	    "2001:db8:122:300::/56");
	ip6("2001:db8:122:344:c0:0:aa00:0", a[0]);	/* /64 */
	n = mk_nat64_from_aaaa((const uint8_t (*)[16])a, 1, out, MK_NAT64_MAX);
	REQUIRE_VOID(n == 1);
	CHECK_STR(mk_nat64_fmt(&out[0], buf, sizeof(buf)),
	    "2001:db8:122:344::/64");

	/* no well-known address: a native AAAA, nothing learned; nor from
	 * one with the u octet set (192.0.0.170 right after a /64) */
	ip6("2001:db8::1", a[0]);
	ip6("2001:db8:122:344:1c0:0:aa00:0", a[1]);
	CHECK(mk_nat64_from_aaaa((const uint8_t (*)[16])a, 2, out,
	    MK_NAT64_MAX) == 0);
	/* a suffix is ignored on receipt (RFC 6052 2.2) */
	ip6("2001:db8:122:344:c0:0:aa00:1", a[0]);
	n = mk_nat64_from_aaaa((const uint8_t (*)[16])a, 1, out, MK_NAT64_MAX);
	REQUIRE_VOID(n == 1);
	CHECK(out[0].len == 64);

	/* two NAT64s: both prefixes, once each, in answer order */
	ip6("fd64:64:0:ff9b::192.0.0.170", a[0]);
	ip6("64:ff9b::192.0.0.170", a[1]);
	ip6("fd64:64:0:ff9b::192.0.0.171", a[2]);
	ip6("64:ff9b::192.0.0.171", a[3]);
	n = mk_nat64_from_aaaa((const uint8_t (*)[16])a, 4, out, MK_NAT64_MAX);
	REQUIRE_VOID(n == 2);
	CHECK_STR(mk_nat64_fmt(&out[0], buf, sizeof(buf)),
	    "fd64:64:0:ff9b::/96");
	CHECK_STR(mk_nat64_fmt(&out[1], buf, sizeof(buf)), "64:ff9b::/96");
	/* max is kept */
	CHECK(mk_nat64_from_aaaa((const uint8_t (*)[16])a, 4, out, 1) == 1);

	/*
	 * A false positive avoided (RFC 7050 3): a /64 prefix whose bytes
	 * 4-7 are c0 00 00 aa. Its 192.0.0.170 answer holds the pattern at
	 * /32 and at /64; the 192.0.0.171 answer has 171 only at /64 (and
	 * the prefix's 170 at /32), so /64 is where the two agree.
	 */
	ip6("2001:db8:c000:aa:c0:0:aa00:0", a[0]);
	ip6("2001:db8:c000:aa:c0:0:ab00:0", a[1]);
	n = mk_nat64_from_aaaa((const uint8_t (*)[16])a, 2, out, MK_NAT64_MAX);
	REQUIRE_VOID(n == 1);
	CHECK_STR(mk_nat64_fmt(&out[0], buf, sizeof(buf)),
	    "2001:db8:c000:aa::/64");
	/* ... and the 170 answer alone is ambiguous: nothing */
	CHECK(mk_nat64_from_aaaa((const uint8_t (*)[16])a, 1, out,
	    MK_NAT64_MAX) == 0);
}

struct disc_seen {
	struct mk_loop loop;
	struct mk_nat64_prefix pfx[MK_NAT64_MAX];
	size_t n;
	bool by_dns;
	int calls;
};

static void
disc_done(void *arg, const struct mk_nat64_prefix *pfx, size_t n,
    bool by_dns)
{
	struct disc_seen *s = arg;

	s->calls++;
	s->n = n < MK_NAT64_MAX ? n : MK_NAT64_MAX;
	memcpy(s->pfx, pfx, s->n * sizeof(*pfx));
	s->by_dns = by_dns;
	mk_loop_stop(&s->loop);
}

static void
run_disc(const char *name, uint64_t timeout_us, struct disc_seen *s)
{
	struct mk_nat64_disc d;
	const char *why;

	memset(s, 0, sizeof(*s));
	REQUIRE_VOID(mk_loop_init(&s->loop) == 0);
	if (mk_nat64_disc_start(&d, &s->loop, name, timeout_us, disc_done,
	    s, &why) != 0) {
		CHECK(!"discovery started");
		mk_loop_free(&s->loop);
		return;
	}
	CHECK(mk_nat64_disc_running(&d));
	CHECK(mk_loop_run(&s->loop) == 0);
	CHECK(!mk_nat64_disc_running(&d));
	mk_nat64_disc_cancel(&d);	/* idempotent */
	mk_loop_free(&s->loop);
}

static void
test_discovery(void)
{
	struct disc_seen s;
	char buf[MK_NAT64_STRLEN];

	/* a "resolver" whose answer holds the well-known address under a
	 * network-specific prefix: learned, by DNS */
	run_disc("fd64:64:0:ff9b::c000:aa", 5000000, &s);
	CHECK(s.calls == 1);
	REQUIRE_VOID(s.n == 1);
	CHECK(s.by_dns);
	CHECK_STR(mk_nat64_fmt(&s.pfx[0], buf, sizeof(buf)),
	    "fd64:64:0:ff9b::/96");
	/* an answer without it (no DNS64): the well-known prefix */
	run_disc("::1", 5000000, &s);
	CHECK(s.calls == 1);
	REQUIRE_VOID(s.n == 1);
	CHECK(!s.by_dns);
	CHECK(mk_nat64_is_wkp(&s.pfx[0]));
	/* the deadline before any answer: the well-known prefix too */
	run_disc("fd64:64:0:ff9b::c000:aa", 0, &s);
	CHECK(s.calls == 1);
	CHECK(!s.by_dns && s.n == 1 && mk_nat64_is_wkp(&s.pfx[0]));
}

int
main(void)
{
	test_rfc6052_table();
	test_parse_fmt();
	test_addrs();
	test_rfc7050();
	test_discovery();
	return t_done("test_nat64");
}
