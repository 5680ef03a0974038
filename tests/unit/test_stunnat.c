/* SPDX-License-Identifier: MIT */
/*
 * natclass's screen for addresses a server names (OTHER-ADDRESS, the
 * mapping for the hairpin test): a hostile server must not aim it at this
 * host, its link or its LAN.
 */
#include <string.h>

#include "addr.h"
#include "nattest.h"
#include "t.h"

static const char *
refused(const struct mk_nat_report *r, const char *srv, const char *a)
{
	struct mk_addr s, x;
	const char *why;

	if (mk_addr_parse(&s, srv, 0, 0, &why) != 0 ||
	    mk_addr_parse(&x, a, 0, 0, &why) != 0)
		return "unparsable test input";
	return mk_nat_addr_refused(r, &s, &x);
}

static void
test_v4(void)
{
	struct mk_nat_report r;

	memset(&r, 0, sizeof(r));
	CHECK(refused(&r, "198.18.0.10:3478", "198.18.0.11:3479") == NULL);
	CHECK(refused(&r, "198.51.100.1:3478", "203.0.113.9:3479") == NULL);
	CHECK_STR(refused(&r, "198.18.0.10:3478", "127.0.0.1:3479"),
	    "loopback address");
	CHECK_STR(refused(&r, "198.18.0.10:3478", "127.9.9.9:3479"),
	    "loopback address");
	CHECK_STR(refused(&r, "198.18.0.10:3478", "0.0.0.0:3479"),
	    "unspecified address");
	CHECK_STR(refused(&r, "198.18.0.10:3478", "224.0.0.251:5353"),
	    "multicast address");
	CHECK_STR(refused(&r, "198.18.0.10:3478", "239.1.2.3:3479"),
	    "multicast address");
	CHECK_STR(refused(&r, "198.18.0.10:3478", "169.254.1.1:3479"),
	    "link-local address");
	CHECK_STR(refused(&r, "198.18.0.10:3478", "255.255.255.255:3479"),
	    "reserved or broadcast address");
	CHECK_STR(refused(&r, "198.18.0.10:3478", "198.18.0.11:0"), "port 0");
	/* private only from a private server */
	CHECK_STR(refused(&r, "198.18.0.10:3478", "10.1.2.3:3479"),
	    "private address named by a public server");
	CHECK_STR(refused(&r, "198.18.0.10:3478", "192.168.1.1:3479"),
	    "private address named by a public server");
	CHECK_STR(refused(&r, "198.18.0.10:3478", "172.20.0.1:3479"),
	    "private address named by a public server");
	CHECK_STR(refused(&r, "198.18.0.10:3478", "100.64.0.1:3479"),
	    "private address named by a public server");
	CHECK(refused(&r, "198.18.0.10:3478", "172.32.0.1:3479") == NULL);
	CHECK(refused(&r, "10.0.0.1:3478", "10.0.0.2:3479") == NULL);
	CHECK(refused(&r, "192.168.1.1:3478", "172.16.0.2:3479") == NULL);
	/* a private server still may not name loopback */
	CHECK_STR(refused(&r, "10.0.0.1:3478", "127.0.0.1:3479"),
	    "loopback address");
	/* family: an IPv4 server names IPv4 */
	CHECK_STR(refused(&r, "198.18.0.10:3478", "[2001:db8::1]:3479"),
	    "not the server's address family");
}

static void
test_v6_and_nat64(void)
{
	struct mk_nat_report r;
	const char *why;

	memset(&r, 0, sizeof(r));
	CHECK(refused(&r, "[2001:db8::1]:3478", "[2001:db8::2]:3479") == NULL);
	CHECK_STR(refused(&r, "[2001:db8::1]:3478", "[::1]:3479"),
	    "loopback address");
	CHECK_STR(refused(&r, "[2001:db8::1]:3478", "[::]:3479"),
	    "unspecified address");
	CHECK_STR(refused(&r, "[2001:db8::1]:3478", "[fe80::1]:3479"),
	    "link-local address");
	CHECK_STR(refused(&r, "[2001:db8::1]:3478", "[ff02::1]:3479"),
	    "multicast address");
	/* parsed (and received) as IPv4: refused either way */
	CHECK(refused(&r, "[2001:db8::1]:3478", "[::ffff:127.0.0.1]:3479") !=
	    NULL);
	CHECK_STR(refused(&r, "[2001:db8::1]:3478", "[fd00::1]:3479"),
	    "private address named by a public server");
	CHECK(refused(&r, "[fd00::1]:3478", "[fd00::2]:3479") == NULL);
	/* IPv4 from an IPv6 server only behind a NAT64 that was found */
	CHECK_STR(refused(&r, "[64:ff9b::c612:a]:3478", "198.18.0.11:3479"),
	    "not the server's address family");
	r.nat64 = true;
	mk_addr_parse(&r.nat64_prefix, "64:ff9b::", 0, MK_ADDR_NO_PORT, &why);
	CHECK(refused(&r, "[64:ff9b::c612:a]:3478", "198.18.0.11:3479") == NULL);
	CHECK_STR(refused(&r, "[64:ff9b::c612:a]:3478", "127.0.0.1:3479"),
	    "loopback address");
	/* the server's own IPv4 is the one embedded in the prefix */
	CHECK_STR(refused(&r, "[64:ff9b::c612:a]:3478", "10.0.0.1:3479"),
	    "private address named by a public server");
	CHECK(refused(&r, "[64:ff9b::a00:1]:3478", "10.0.0.2:3479") == NULL);
}

int
main(void)
{
	test_v4();
	test_v6_and_nat64();
	return t_done("stunnat");
}
