/* SPDX-License-Identifier: MIT */
/* Who magicdns answers: prefixes, this host's addresses, the rate limit;
 * and the upstream specs it forwards to. */
#include <stdio.h>
#include <string.h>

#include "dnsacl.h"
#include "dnsfwd.h"
#include "t.h"

static struct mk_addr
addr(const char *s)
{
	struct mk_addr a;
	const char *why;

	memset(&a, 0, sizeof(a));
	if (mk_addr_parse(&a, s, 0, 0, &why) != 0)
		fprintf(stderr, "bad test address %s\n", s);
	return a;
}

static void
test_cidr(void)
{
	struct mk_cidr c;
	const char *why;
	struct mk_addr a;

	REQUIRE_VOID(mk_cidr_parse(&c, "100.64.0.0/10", &why) == 0);
	CHECK(c.family == AF_INET && c.bits == 10);
	a = addr("100.64.0.1");
	CHECK(mk_cidr_contains(&c, &a));
	a = addr("100.127.255.255");
	CHECK(mk_cidr_contains(&c, &a));
	a = addr("100.128.0.0");
	CHECK(!mk_cidr_contains(&c, &a));
	a = addr("100.63.255.255");
	CHECK(!mk_cidr_contains(&c, &a));
	a = addr("fd7a:115c:a1e0::1");
	CHECK(!mk_cidr_contains(&c, &a));

	REQUIRE_VOID(mk_cidr_parse(&c, "fd7a:115c:a1e0::/48", &why) == 0);
	CHECK(mk_cidr_contains(&c, &a));
	a = addr("fd7a:115c:a1e1::1");
	CHECK(!mk_cidr_contains(&c, &a));

	REQUIRE_VOID(mk_cidr_parse(&c, "192.0.2.7", &why) == 0);
	CHECK(c.bits == 32);
	a = addr("192.0.2.7");
	CHECK(mk_cidr_contains(&c, &a));
	a = addr("192.0.2.8");
	CHECK(!mk_cidr_contains(&c, &a));
	REQUIRE_VOID(mk_cidr_parse(&c, "0.0.0.0/0", &why) == 0);
	CHECK(mk_cidr_contains(&c, &a));

	CHECK(mk_cidr_parse(&c, "10.0.0.1/8", &why) == -1);
	CHECK_STR(why, "address bits set past the prefix length");
	CHECK(mk_cidr_parse(&c, "10.0.0.0/33", &why) == -1);
	CHECK_STR(why, "bad prefix length");
	CHECK(mk_cidr_parse(&c, "10.0.0.0/", &why) == -1);
	CHECK(mk_cidr_parse(&c, "10.0.0.0/+8", &why) == -1);
	CHECK(mk_cidr_parse(&c, "example.com/8", &why) == -1);
	CHECK_STR(why, "not an IP address");
	CHECK(mk_cidr_parse(&c, "::/129", &why) == -1);
}

static void
test_acl(void)
{
	struct mk_dnsacl acl;
	struct mk_addr a;
	const char *why;

	mk_dnsacl_init(&acl);
	REQUIRE_VOID(mk_dnsacl_allow_defaults(&acl) == 0);
	a = addr("127.0.0.1");
	CHECK(mk_dnsacl_allowed(&acl, &a));
	a = addr("127.1.2.3");
	CHECK(mk_dnsacl_allowed(&acl, &a));
	a = addr("::1");
	CHECK(mk_dnsacl_allowed(&acl, &a));
	a = addr("100.100.100.100");
	CHECK(mk_dnsacl_allowed(&acl, &a));
	a = addr("fd7a:115c:a1e0:ab12::5");
	CHECK(mk_dnsacl_allowed(&acl, &a));
	a = addr("198.51.100.1");
	CHECK(!mk_dnsacl_allowed(&acl, &a));
	a = addr("::ffff:198.51.100.1");	/* unmapped on parse */
	CHECK(!mk_dnsacl_allowed(&acl, &a));
	REQUIRE_VOID(mk_dnsacl_allow(&acl, "198.51.100.0/24", &why) == 0);
	CHECK(mk_dnsacl_allowed(&acl, &a));
	CHECK(mk_dnsacl_allow(&acl, "198.51.100.0/33", &why) == -1);
	/* this host's addresses: loopback at least is among them */
	CHECK(mk_dnsacl_refresh_local(&acl) == 0);
	CHECK(acl.n_local >= 1);
	a = addr("127.0.0.53");
	CHECK(mk_dnsacl_is_local(&acl, &a));
	a = addr("::1");
	CHECK(mk_dnsacl_is_local(&acl, &a));
	a = addr("198.51.100.1");
	CHECK(!mk_dnsacl_is_local(&acl, &a));
	acl.local[0].family = AF_INET;
	acl.local[0].bits = 32;
	memcpy(acl.local[0].b, "\xc6\x33\x64\x01", 4);
	CHECK(mk_dnsacl_is_local(&acl, &a));
	mk_dnsacl_free(&acl);
	mk_dnsacl_free(&acl);
}

static void
test_ratelim(void)
{
	struct mk_ratelim rl;
	struct mk_addr a = addr("192.0.2.1"), b = addr("192.0.2.2");
	uint64_t t = 1000000;
	int i, ok;

	/* off: nothing allocated, everything passes */
	REQUIRE_VOID(mk_ratelim_init(&rl, 16, 0, 0) == 0);
	CHECK(rl.slot == NULL);
	for (i = 0; i < 1000; i++)
		CHECK(mk_ratelim_take(&rl, &a, t));
	mk_ratelim_free(&rl);

	REQUIRE_VOID(mk_ratelim_init(&rl, 4096, 10, 20) == 0);
	/* a burst of 20, then nothing in the same microsecond */
	for (ok = 0, i = 0; i < 100; i++)
		ok += mk_ratelim_take(&rl, &a, t);
	CHECK(ok == 20);
	/* another source has its own bucket */
	for (ok = 0, i = 0; i < 100; i++)
		ok += mk_ratelim_take(&rl, &b, t);
	CHECK(ok == 20);
	/* 10 a second: after 0.5 s, 5 more */
	t += 500000;
	for (ok = 0, i = 0; i < 100; i++)
		ok += mk_ratelim_take(&rl, &a, t);
	CHECK(ok == 5);
	/* steady at the rate: every query passes */
	for (ok = 0, i = 0; i < 50; i++) {
		t += 100000;
		ok += mk_ratelim_take(&rl, &a, t);
	}
	CHECK(ok == 50);
	/* idle for long: a full burst again, never more */
	t += 3600ULL * 1000000;
	for (ok = 0, i = 0; i < 100; i++)
		ok += mk_ratelim_take(&rl, &a, t);
	CHECK(ok == 20);
	mk_ratelim_free(&rl);

	/* one slot for everyone: sources share it while it is in use */
	REQUIRE_VOID(mk_ratelim_init(&rl, 1, 10, 10) == 0);
	for (ok = 0, i = 0; i < 8; i++)
		ok += mk_ratelim_take(&rl, &a, t);
	for (i = 0; i < 8; i++)
		ok += mk_ratelim_take(&rl, &b, t);
	CHECK(ok == 10);
	mk_ratelim_free(&rl);
}

static void
test_upstreams(void)
{
	struct mk_dnsfwd_upstream u;
	char buf[MK_ADDRSTRLEN];
	const char *why;

	REQUIRE_VOID(mk_dnsfwd_upstream_parse(&u, "192.0.2.53", &why) == 0);
	CHECK(u.kind == MK_DNSFWD_DNS);
	CHECK_STR(mk_addr_fmt(&u.addr, buf, sizeof(buf)), "192.0.2.53:53");
	REQUIRE_VOID(mk_dnsfwd_upstream_parse(&u, "[2001:db8::53]:5353", &why)
	    == 0);
	CHECK_STR(mk_addr_fmt(&u.addr, buf, sizeof(buf)),
	    "[2001:db8::53]:5353");
	REQUIRE_VOID(mk_dnsfwd_upstream_parse(&u, "2001:db8::53", &why) == 0);
	CHECK(mk_addr_port(&u.addr) == 53);

	REQUIRE_VOID(mk_dnsfwd_upstream_parse(&u,
	    "https://dns.example/dns-query", &why) == 0);
	CHECK(u.kind == MK_DNSFWD_DOH);
	CHECK_STR(u.host, "dns.example");
	CHECK(u.port == 443);
	CHECK_STR(u.url, "https://dns.example/dns-query");
	REQUIRE_VOID(mk_dnsfwd_upstream_parse(&u, "https://198.18.0.20:8443",
	    &why) == 0);
	CHECK_STR(u.host, "198.18.0.20");
	CHECK(u.port == 8443);
	CHECK_STR(u.url, "https://198.18.0.20:8443/dns-query");
	REQUIRE_VOID(mk_dnsfwd_upstream_parse(&u,
	    "https://[2001:db8::20]/q", &why) == 0);
	CHECK_STR(u.host, "2001:db8::20");
	CHECK(u.port == 443);

	CHECK(mk_dnsfwd_upstream_parse(&u, "http://dns.example/", &why) == -1);
	CHECK_STR(why, "only https:// URLs (DNS over HTTPS)");
	CHECK(mk_dnsfwd_upstream_parse(&u, "https://", &why) == -1);
	CHECK(mk_dnsfwd_upstream_parse(&u, "https://x:0/", &why) == -1);
	CHECK(mk_dnsfwd_upstream_parse(&u, "https://x:99999/", &why) == -1);
	CHECK(mk_dnsfwd_upstream_parse(&u, "https://u@x/", &why) == -1);
	CHECK(mk_dnsfwd_upstream_parse(&u, "https://[::1/", &why) == -1);
	CHECK(mk_dnsfwd_upstream_parse(&u, "https://x/a b", &why) == -1);
	CHECK(mk_dnsfwd_upstream_parse(&u, "https://x/?dns=", &why) == -1);
	CHECK(mk_dnsfwd_upstream_parse(&u, "dns.example", &why) == -1);
	CHECK(mk_dnsfwd_upstream_parse(&u, "0.0.0.0", &why) == -1);
	CHECK(mk_dnsfwd_upstream_parse(&u, "192.0.2.1:0", &why) == -1);
}

int
main(void)
{
	test_cidr();
	test_acl();
	test_ratelim();
	test_upstreams();
	return t_done("dnsacl");
}
