/* SPDX-License-Identifier: MIT */
/*
 * natclass's screen for addresses a server names (OTHER-ADDRESS, the
 * mapping for the hairpin test): a hostile server must not aim it at this
 * host, its link or its LAN.
 */
#include <stdio.h>
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

/* Answers as "server=mapped" pairs, mapped "-" for no answer. */
static enum mk_nat_behaviour
verdict(const char *const *pairs, size_t n)
{
	struct mk_nat_seen seen[8];
	char buf[128], *eq;
	const char *why;
	size_t i;

	memset(seen, 0, sizeof(seen));
	for (i = 0; i < n && i < 8; i++) {
		snprintf(buf, sizeof(buf), "%s", pairs[i]);
		if ((eq = strchr(buf, '=')) == NULL)
			return (enum mk_nat_behaviour)-1;
		*eq++ = '\0';
		if (mk_addr_parse(&seen[i].server, buf, 0, 0, &why) != 0 ||
		    (strcmp(eq, "-") != 0 &&
		    mk_addr_parse(&seen[i].mapped, eq, 0, 0, &why) != 0))
			return (enum mk_nat_behaviour)-1;
	}
	return mk_nat_mapping_verdict(seen, n);
}

#define VERDICT(want, ...) do { \
	static const char *const v_[] = { __VA_ARGS__ }; \
	CHECK(verdict(v_, MK_ARRAY_LEN(v_)) == (want)); \
} while (0)

static void
test_mapping_verdict(void)
{
	CHECK(mk_nat_mapping_verdict(NULL, 0) == MK_NAT_UNKNOWN);
	/* one answer tells nothing */
	VERDICT(MK_NAT_UNKNOWN, "198.18.0.10:3478=203.0.113.1:4000");
	/* two server addresses, one mapping */
	VERDICT(MK_NAT_EI, "198.18.0.10:3478=203.0.113.1:4000",
	    "198.18.0.20:3478=203.0.113.1:4000");
	/* one server address on two ports: the same mapping proves
	 * nothing (a NAT may map per destination address)... */
	VERDICT(MK_NAT_UNKNOWN, "198.18.0.10:3478=203.0.113.1:4000",
	    "198.18.0.10:3479=203.0.113.1:4000");
	/* ...but two mappings prove it maps per destination */
	VERDICT(MK_NAT_DEPENDENT, "198.18.0.10:3478=203.0.113.1:4000",
	    "198.18.0.10:3479=203.0.113.1:4001");
	VERDICT(MK_NAT_DEPENDENT, "198.18.0.10:3478=203.0.113.1:4000",
	    "198.18.0.20:3478=203.0.113.1:4001");
	/* another public address from a pool is another mapping too */
	VERDICT(MK_NAT_DEPENDENT, "198.18.0.10:3478=203.0.113.1:4000",
	    "198.18.0.20:3478=203.0.113.2:4000");
	/* a difference anywhere wins over agreement, in any order */
	VERDICT(MK_NAT_DEPENDENT, "198.18.0.10:3478=203.0.113.1:4000",
	    "198.18.0.20:3478=203.0.113.1:4000",
	    "198.18.0.30:3478=203.0.113.1:4002");
	VERDICT(MK_NAT_DEPENDENT, "198.18.0.30:3478=203.0.113.1:4002",
	    "198.18.0.10:3478=203.0.113.1:4000",
	    "198.18.0.20:3478=203.0.113.1:4000");
	/* servers that did not answer are skipped */
	VERDICT(MK_NAT_EI, "198.18.0.10:3478=203.0.113.1:4000",
	    "198.18.0.30:3478=-", "198.18.0.20:3478=203.0.113.1:4000");
	VERDICT(MK_NAT_UNKNOWN, "198.18.0.10:3478=203.0.113.1:4000",
	    "198.18.0.20:3478=-");
	/* an IPv6 socket behind NAT64: IPv4 mappings (through the NAT64)
	 * and native IPv6 ones are not compared with each other */
	VERDICT(MK_NAT_UNKNOWN, "[64:ff9b::c612:a]:3478=203.0.113.1:4000",
	    "[2001:db8::53]:3478=[2001:db8:1::2]:41641");
	VERDICT(MK_NAT_EI, "[64:ff9b::c612:a]:3478=203.0.113.1:4000",
	    "[2001:db8::53]:3478=[2001:db8:1::2]:41641",
	    "[64:ff9b::c612:14]:3478=203.0.113.1:4000");
	VERDICT(MK_NAT_DEPENDENT, "[64:ff9b::c612:a]:3478=203.0.113.1:4000",
	    "[2001:db8::53]:3478=[2001:db8:1::2]:41641",
	    "[64:ff9b::c612:14]:3478=203.0.113.1:4001");
	/* no NAT: every server sees our own address, the same */
	VERDICT(MK_NAT_EI, "[2001:db8::53]:3478=[2001:db8:1::2]:41641",
	    "[2001:db8::54]:3478=[2001:db8:1::2]:41641");
}

int
main(void)
{
	test_v4();
	test_v6_and_nat64();
	test_mapping_verdict();
	return t_done("stunnat");
}
