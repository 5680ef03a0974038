/* SPDX-License-Identifier: MIT */
/* lib/birthday's pure parts: the odds against the published figures,
 * pacing arithmetic, random ports within the range and never twice, and
 * the rendezvous message. */
#include <math.h>
#include <string.h>

#include "birthday.h"
#include "key.h"
#include "t.h"

static bool
near(double a, double b, double eps)
{
	return fabs(a - b) < eps;
}

static void
test_chance(void)
{
	/* 256 ports of 64,512: the blog's table */
	CHECK(near(mk_bday_chance(256, 64512, 174), 0.49935, 1e-5));
	CHECK(near(mk_bday_chance(256, 64512, 256), 0.63864, 1e-5));
	CHECK(near(mk_bday_chance(256, 64512, 1024), 0.98295, 1e-5));
	CHECK(near(mk_bday_chance(256, 64512, 2048), 0.99971, 1e-5));
	CHECK(mk_bday_chance(256, 64512, 0) == 0);
	CHECK(mk_bday_chance(10, 10, 1) == 1);
	/* 1 - 0.9^22 */
	CHECK(near(mk_bday_chance(100, 1000, 22), 1 - pow(0.9, 22), 1e-12));
	CHECK(mk_bday_probes_for(0.5, 256, 64512) == 174);
	CHECK(mk_bday_probes_for(0.999, 256, 64512) == 1737);
	/* both hard: about 54,000 a side for 50 %, 170,000 for 99.9 % */
	CHECK(mk_bday_both_probes_for(0.5, 64512) == 53710);
	CHECK(mk_bday_both_probes_for(0.999, 64512) == 169554);
	CHECK(near(mk_bday_both_chance(64512, 169554), 0.999, 1e-5));
}

static void
test_due(void)
{
	/* the first at once, then one every 1/rate s, capped by count */
	CHECK(mk_bday_due(0, 100, 2048) == 1);
	CHECK(mk_bday_due(9999, 100, 2048) == 1);
	CHECK(mk_bday_due(10000, 100, 2048) == 2);
	CHECK(mk_bday_due(1000000, 100, 2048) == 101);
	CHECK(mk_bday_due(20470000, 100, 2048) == 2048);
	CHECK(mk_bday_due(3600000000ULL, 100, 2048) == 2048);
	CHECK(mk_bday_due(1500000, 3, 100) == 5);
	CHECK(mk_bday_due(1000, 1000, 1000000) == 2);
	CHECK(mk_bday_due(5, 100, 0) == 0);
	/* a day at the highest rate does not overflow */
	CHECK(mk_bday_due(86400000000ULL, 1000000, 1000000) == 1000000);
}

static void
test_ports(void)
{
	static struct mk_bday_ports p;
	static uint8_t seen[65536];
	unsigned i, lo = 65535, hi = 0, dup = 0;
	uint16_t port;

	mk_bday_ports_init(&p);
	for (i = 0; i < MK_BDAY_SPACE; i++) {
		port = mk_bday_ports_pick(&p);
		if (port < lo)
			lo = port;
		if (port > hi)
			hi = port;
		dup += seen[port]++;
	}
	CHECK(dup == 0);		/* every port once */
	CHECK(lo == MK_BDAY_PORT_MIN);
	CHECK(hi == MK_BDAY_PORT_MAX);
	CHECK(seen[1023] == 0 && seen[0] == 0);
	/* then a second round over the whole range */
	port = mk_bday_ports_pick(&p);
	CHECK(port >= MK_BDAY_PORT_MIN && p.n_used == 1);
}

static void
test_hello(void)
{
	struct mk_bday_hello h, g;
	uint8_t buf[64];
	const char *why;
	ssize_t n;

	memset(&h, 0, sizeof(h));
	h.role = MK_BDAY_ROLE_WIRE_EASY;
	h.flags = MK_BDAY_HELLO_HAVE_YOURS;
	h.ports = 256;
	h.count = 2048;
	h.rate = 100;
	h.start_ms = 1000;
	REQUIRE_VOID(mk_addr_parse(&h.addr, "198.18.1.1:40000", 0, 0, &why) == 0);
	n = mk_bday_put_hello(buf, sizeof(buf), &h, &why);
	REQUIRE_VOID(n == MK_BDAY_HELLO_LEN);
	CHECK(buf[0] == 0x80 && buf[1] == 0 && buf[2] == 2 && buf[3] == 1);
	CHECK(buf[4] == 1 && buf[5] == 0);		/* 256 */
	CHECK(buf[28] == 0xff && buf[29] == 0xff && buf[30] == 198);
	CHECK(buf[34] == 0x9c && buf[35] == 0x40);	/* 40000 */
	REQUIRE_VOID(mk_bday_parse_hello(&g, buf, (size_t)n, &why) == 0);
	CHECK(g.role == h.role && g.flags == h.flags && g.ports == 256 &&
	    g.count == 2048 && g.rate == 100 && g.start_ms == 1000);
	CHECK(mk_addr_equal(&g.addr, &h.addr));
	CHECK(mk_bday_parse_hello(&g, buf, (size_t)n - 1, &why) != 0);
	buf[2] = 9;
	CHECK(mk_bday_parse_hello(&g, buf, (size_t)n, &why) != 0);
	buf[2] = 1;
	buf[0] = 0x01;
	CHECK(mk_bday_parse_hello(&g, buf, (size_t)n, &why) != 0);
	CHECK(mk_bday_put_hello(buf, 10, &h, &why) < 0);
}

int
main(void)
{
	REQUIRE(mk_key_init() == 0);
	test_chance();
	test_due();
	test_ports();
	test_hello();
	return t_done("birthday");
}
