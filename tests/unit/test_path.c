/* SPDX-License-Identifier: MIT */
/* Unit tests for path choice and local candidates (lib/path). */
#include <sys/socket.h>

#include "addr.h"
#include "path.h"
#include "t.h"

static struct mk_path
P(const char *addr, uint64_t latency_us, uint16_t mtu)
{
	struct mk_path p;
	const char *why;

	memset(&p, 0, sizeof(p));
	if (addr != NULL && mk_addr_parse(&p.addr, addr, 0, 0, &why) != 0) {
		fprintf(stderr, "bad test address %s\n", addr);
		exit(2);
	}
	p.latency_us = latency_us;
	p.mtu = mtu;
	return p;
}

static int
bonus(const char *addr)
{
	struct mk_path p = P(addr, 0, 0);

	return mk_path_bonus(&p.addr);
}

static void
test_bonus(void)
{
	CHECK(bonus("198.51.100.7:1") == 0);
	CHECK(bonus("127.0.0.1:1") == 50);
	CHECK(bonus("10.1.2.3:1") == 20);
	CHECK(bonus("172.16.0.1:1") == 20);
	CHECK(bonus("172.31.255.1:1") == 20);
	CHECK(bonus("172.32.0.1:1") == 0);
	CHECK(bonus("192.168.1.1:1") == 20);
	CHECK(bonus("100.64.0.1:1") == 0);	/* CGNAT is not private */
	CHECK(bonus("[2001:db8::1]:1") == 10);
	CHECK(bonus("[fd00::1]:1") == 30);	/* ULA + IPv6 */
	CHECK(bonus("[fe80::1]:1") == 40);	/* link-local + IPv6 */
	CHECK(bonus("[::1]:1") == 60);
}

static void
test_better(void)
{
	struct mk_path a, b, none = P(NULL, 0, 0);

	/* anything beats nothing; nothing beats nothing */
	a = P("198.51.100.7:1", 10000, 0);
	CHECK(mk_path_better(&a, &none));
	CHECK(!mk_path_better(&none, &a));
	CHECK(!mk_path_better(&none, &none));

	/* faster wins: 20 ms vs 10 ms is 50 points */
	a = P("198.51.100.7:1", 10000, 0);
	b = P("203.0.113.9:1", 20000, 0);
	CHECK(mk_path_better(&a, &b));
	CHECK(!mk_path_better(&b, &a));

	/* hysteresis: under 1 % faster does not switch (aPoints <= 1) */
	a = P("198.51.100.7:1", 99000, 0);
	b = P("203.0.113.9:1", 100000, 0);
	CHECK(!mk_path_better(&a, &b));
	a.latency_us = 97000;			/* 3 % */
	CHECK(mk_path_better(&a, &b));

	/* private beats public at a similar latency (20 points) ... */
	a = P("192.168.1.5:1", 11000, 0);
	b = P("198.51.100.7:1", 10000, 0);	/* b 10 % faster: 9 points */
	CHECK(mk_path_better(&a, &b));
	/* ... but not when public is much faster */
	a.latency_us = 50000;
	CHECK(!mk_path_better(&a, &b));

	/* IPv6 earns 10: beats an IPv4 path up to about 10 % faster */
	a = P("[2001:db8::7]:1", 10500, 0);
	b = P("198.51.100.7:1", 10000, 0);
	CHECK(mk_path_better(&a, &b));
	a.latency_us = 20000;
	CHECK(!mk_path_better(&a, &b));

	/* the same address: only a larger MTU is better */
	a = P("198.51.100.7:1", 5000, 1400);
	b = P("198.51.100.7:1", 10000, 1280);
	CHECK(mk_path_better(&a, &b));
	CHECK(!mk_path_better(&b, &a));
	b.mtu = 1400;
	CHECK(!mk_path_better(&a, &b));

	/* unmeasured latencies: bonuses alone decide */
	a = P("10.0.0.2:1", 0, 0);
	b = P("198.51.100.7:1", 0, 0);
	CHECK(mk_path_better(&a, &b));
	CHECK(!mk_path_better(&b, &a));
}

static void
test_usable(void)
{
	static const char *const yes[] = {
		"198.51.100.7:1", "10.1.2.3:1", "[2001:db8::1]:1", "[fd00::1]:1",
	};
	static const char *const no[] = {
		"127.0.0.1:1", "0.0.0.0:1", "100.64.0.1:1", "100.127.255.254:1",
		"[::1]:1", "[::]:1", "[fe80::1]:1", "[fd7a:115c:a1e0::1]:1",
	};

	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		struct mk_path p = P(yes[i], 0, 0);

		CHECK(mk_path_usable(&p.addr));
	}
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		struct mk_path p = P(no[i], 0, 0);

		if (mk_path_usable(&p.addr))
			fprintf(stderr, "usable: %s\n", no[i]);
		CHECK(!mk_path_usable(&p.addr));
	}
	/* 100.63.x and 100.128.x are outside the mesh's /10 */
	{
		struct mk_path p = P("100.63.255.255:1", 0, 0),
		    q = P("100.128.0.0:1", 0, 0);

		CHECK(mk_path_usable(&p.addr) && mk_path_usable(&q.addr));
	}
}

/* Whatever this host has: every candidate is usable, carries the port,
 * and appears once. */
static void
test_local(void)
{
	struct mk_addr c[64];
	int n, i, j;

	n = mk_path_local(AF_UNSPEC, 41641, c, 64);
	REQUIRE_VOID(n >= 0);
	for (i = 0; i < n; i++) {
		CHECK(mk_path_usable(&c[i]));
		CHECK(mk_addr_port(&c[i]) == 41641);
		for (j = 0; j < i; j++)
			CHECK(!mk_addr_equal(&c[i], &c[j]));
	}
	n = mk_path_local(AF_INET, 1, c, 64);
	for (i = 0; i < n; i++)
		CHECK(mk_addr_family(&c[i]) == AF_INET);
	CHECK(mk_path_local(AF_UNSPEC, 1, c, 0) == 0);
}

int
main(void)
{
	test_bonus();
	test_better();
	test_usable();
	test_local();
	return t_done("path");
}
