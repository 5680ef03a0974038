/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "meshconf.h"
#include "t.h"
#include "util.h"

#define KEY_A	"MtKQzyro/AMZEQQL80W95vd9+lxfT+a3vAwzAi0/G0A="
#define HEX_A	"32d290cf2ae8fc031911040bf345bde6" \
	"f77dfa5c5f4fe6b7bc0c33022d3f1b40"
#define KEY_B	"/tmnrig5drjnAWRblBuJnH0NX0F2YVV3tRcjLvOOriU="
#define HEX_B	"fed9a7ae283976b8e701645b941b899c" \
	"7d0d5f4176615577b517232ef38eae25"
#define KEY_C	"6UP8cbnqKWsaSNizIqlJThErGTXDRGOKBF/uEJTNsUk="
#define KEY_D	"w3515XnXXAWIlWUGdZ5HzbmCjU85JYLqyGdK9ly+Llo="
/* Labels of 63 and 64 characters. */
#define L63	"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz" \
	"abcdefghijk"
#define L64	L63 "l"
#define PIN	"sha256-raw:" \
	"0123456789abcdef0123456789abcdef0123456789abcdef0123456789ABCDEF"

static const char full[] =
    "# the lab mesh\n"
    "\n"
    "domain Mesh.Example.\n"
    "relay https://derp1.mesh.example " PIN "   # home relay\n"
    "relay http://198.18.0.10:3340/derp\n"
    "relay https://[2001:db8::10]:8443/\n"
    "stun 198.18.0.10\n"
    "stun [2001:db8::10]:3479\r\n"
    "stun stun.mesh.example:3478\n"
    "stun 2001:db8::11\n"
    "\t  \n"
    "node alice " KEY_A " 100.64.0.1 fd7a:115c:a1e0::1/128\n"
    "node bob nodekey:" HEX_B " 100.64.0.2/32\r\n"
    "node carol\t" KEY_C "\t100.127.255.254#no space before this comment\n"
    "option keepalive 10\n"
    "birthday on";

static char errbuf[512];

/* REQUIRE for functions that return nothing. */
#define REQUIRE_V(cond) do { \
	t_checks++; \
	if (!(cond)) { \
		t_failures++; \
		fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, \
		    __LINE__, #cond); \
		return; \
	} \
} while (0)

static int
parse(struct mk_mesh *m, const char *text, size_t len)
{
	return mk_mesh_parse(m, text, len, "mesh.conf", errbuf,
	    sizeof(errbuf));
}

static int
parse_str(struct mk_mesh *m, const char *text)
{
	return parse(m, text, strlen(text));
}

static bool
mesh_empty(const struct mk_mesh *m)
{
	return m->n_nodes == 0 && m->nodes == NULL && m->relays == NULL &&
	    m->stun == NULL && m->idx == NULL && m->domain[0] == '\0';
}

/* text must fail with exactly want (the whole "file:line: reason"). */
static void
expect_len(const char *text, size_t len, const char *want, int srcline)
{
	struct mk_mesh m;
	int rc;

	errbuf[0] = '\0';
	rc = parse(&m, text, len);
	if (rc != -1 || strcmp(errbuf, want) != 0 || errno != EINVAL ||
	    !mesh_empty(&m)) {
		t_failures++;
		fprintf(stderr, "%s:%d: rc %d, got \"%s\", want \"%s\"\n",
		    __FILE__, srcline, rc, errbuf, want);
	}
	t_checks++;
	mk_mesh_free(&m);
}

#define EXPECT(text, want) expect_len((text), strlen(text), (want), __LINE__)

static void
test_full(void)
{
	struct mk_mesh m;
	char buf[MK_ADDRSTRLEN];
	const struct mk_mesh_node *n;
	int i;

	REQUIRE_V(parse(&m, full, sizeof(full) - 1) == 0);
	CHECK_STR(m.domain, "mesh.example");
	CHECK(m.domain_line == 3);

	REQUIRE_V(m.n_relays == 3);
	CHECK_STR(m.relays[0].url, "https://derp1.mesh.example/derp");
	CHECK_STR(m.relays[0].host, "derp1.mesh.example");
	CHECK(m.relays[0].port == 443 && m.relays[0].tls);
	CHECK(m.relays[0].has_pin && m.relays[0].pin[0] == 0x01 &&
	    m.relays[0].pin[31] == 0xef);
	CHECK(m.relays[0].line == 4);
	CHECK_STR(m.relays[1].url, "http://198.18.0.10:3340/derp");
	CHECK(!m.relays[1].tls && m.relays[1].port == 3340 &&
	    !m.relays[1].has_pin);
	CHECK_STR(m.relays[2].url, "https://[2001:db8::10]:8443/derp");
	CHECK_STR(m.relays[2].host, "2001:db8::10");
	CHECK(m.relays[2].port == 8443);

	REQUIRE_V(m.n_stun == 4);
	CHECK_STR(m.stun[0].host, "198.18.0.10");
	CHECK(m.stun[0].port == 3478 && !m.stun[0].from_relay);
	CHECK_STR(mk_addr_fmt(&m.stun[0].addr, buf, sizeof(buf)),
	    "198.18.0.10:3478");
	CHECK_STR(m.stun[1].host, "2001:db8::10");
	CHECK_STR(mk_addr_fmt(&m.stun[1].addr, buf, sizeof(buf)),
	    "[2001:db8::10]:3479");
	CHECK_STR(m.stun[2].host, "stun.mesh.example");
	CHECK(m.stun[2].port == 3478 && m.stun[2].addr.len == 0);
	CHECK(m.stun[2].line == 9);
	CHECK_STR(mk_addr_fmt(&m.stun[3].addr, buf, sizeof(buf)),
	    "[2001:db8::11]:3478");

	REQUIRE_V(m.n_nodes == 3);
	n = &m.nodes[0];
	CHECK_STR(n->name, "alice");
	CHECK(n->line == 12 && n->n_addrs == 2);
	CHECK_STR(mk_addr_fmt_ip(&n->addrs[0], buf, sizeof(buf)),
	    "100.64.0.1");
	CHECK(n->prefix[0] == 32 && mk_addr_port(&n->addrs[0]) == 0);
	CHECK_STR(mk_addr_fmt_ip(&n->addrs[1], buf, sizeof(buf)),
	    "fd7a:115c:a1e0::1");
	CHECK(n->prefix[1] == 128);
	mk_key_to_hex(buf, &n->pubkey);
	CHECK_STR(buf, HEX_A);
	n = &m.nodes[1];
	CHECK_STR(n->name, "bob");
	mk_key_to_base64(buf, &n->pubkey);
	CHECK_STR(buf, KEY_B);
	CHECK(n->n_addrs == 1 && n->prefix[0] == 32);
	n = &m.nodes[2];
	CHECK_STR(n->name, "carol");
	CHECK(n->n_addrs == 1 && n->line == 14);
	CHECK_STR(mk_addr_fmt_ip(&n->addrs[0], buf, sizeof(buf)),
	    "100.127.255.254");

	CHECK(m.keepalive == 10);
	CHECK(m.birthday);
	CHECK(m.n_options == 2);
	CHECK_STR(mk_mesh_option(&m, "keepalive"), "10");
	CHECK_STR(mk_mesh_option(&m, "birthday"), "on");
	CHECK(mk_mesh_option(&m, "nosuch") == NULL);
	CHECK(m.options[1].line == 16);

	for (i = 0; i < 2; i++) {
		mk_mesh_free(&m);
		CHECK(mesh_empty(&m));
	}
	mk_mesh_free(NULL);
}

static void
test_find(void)
{
	struct mk_mesh m, hand;
	struct mk_key k;
	struct mk_addr a;
	const struct mk_mesh_node *n;
	const char *why;
	char buf[300];

	REQUIRE_V(parse(&m, full, sizeof(full) - 1) == 0);
	REQUIRE_V(mk_key_parse(&k, KEY_C, &why) == 0);
	n = mk_mesh_find_key(&m, &k);
	CHECK(n != NULL && strcmp(n->name, "carol") == 0);
	REQUIRE_V(mk_key_parse(&k, "nodekey:" HEX_A, &why) == 0);
	n = mk_mesh_find_key(&m, &k);
	CHECK(n != NULL && strcmp(n->name, "alice") == 0);
	REQUIRE_V(mk_key_parse(&k, KEY_D, &why) == 0);
	CHECK(mk_mesh_find_key(&m, &k) == NULL);

	CHECK(mk_mesh_find_name(&m, "bob") == &m.nodes[1]);
	CHECK(mk_mesh_find_name(&m, "BoB") == &m.nodes[1]);
	CHECK(mk_mesh_find_name(&m, "bob.mesh.example") == &m.nodes[1]);
	CHECK(mk_mesh_find_name(&m, "BOB.Mesh.Example.") == &m.nodes[1]);
	CHECK(mk_mesh_find_name(&m, "bob.") == &m.nodes[1]);
	CHECK(mk_mesh_find_name(&m, "bob.other.example") == NULL);
	CHECK(mk_mesh_find_name(&m, "bob.xmesh.example") == NULL);
	CHECK(mk_mesh_find_name(&m, "mesh.example") == NULL);
	CHECK(mk_mesh_find_name(&m, ".mesh.example") == NULL);
	CHECK(mk_mesh_find_name(&m, "dave") == NULL);
	CHECK(mk_mesh_find_name(&m, "") == NULL);
	CHECK(mk_mesh_find_name(&m, ".") == NULL);

	REQUIRE_V(mk_addr_parse(&a, "fd7a:115c:a1e0:0:0::1", 0, 0, &why) ==
	    0);
	CHECK(mk_mesh_find_addr(&m, &a) == &m.nodes[0]);
	REQUIRE_V(mk_addr_parse(&a, "100.64.0.2:41641", 0, 0, &why) == 0);
	CHECK(mk_mesh_find_addr(&m, &a) == &m.nodes[1]);
	REQUIRE_V(mk_addr_parse(&a, "100.64.0.3", 0, 0, &why) == 0);
	CHECK(mk_mesh_find_addr(&m, &a) == NULL);
	memset(&a, 0, sizeof(a));
	CHECK(mk_mesh_find_addr(&m, &a) == NULL);

	CHECK_STR(mk_mesh_node_fqdn(&m, &m.nodes[2], buf, sizeof(buf)),
	    "carol.mesh.example");

	/* A mesh built by hand (no index) is searched linearly. */
	memset(&hand, 0, sizeof(hand));
	hand.nodes = m.nodes;
	hand.n_nodes = m.n_nodes;
	CHECK(mk_mesh_find_name(&hand, "Carol.") == &m.nodes[2]);
	CHECK(mk_mesh_find_name(&hand, "carol.mesh.example") == NULL);
	CHECK(mk_mesh_find_key(&hand, &m.nodes[1].pubkey) == &m.nodes[1]);
	REQUIRE_V(mk_addr_parse(&a, "100.64.0.2", 0, 0, &why) == 0);
	CHECK(mk_mesh_find_addr(&hand, &a) == &m.nodes[1]);
	CHECK_STR(mk_mesh_node_fqdn(&hand, &m.nodes[2], buf, sizeof(buf)),
	    "carol");
	mk_mesh_free(&m);
}

static void
test_defaults(void)
{
	struct mk_mesh m;

	REQUIRE_V(parse(&m, "", 0) == 0);
	CHECK(m.n_nodes == 0 && m.n_relays == 0 && m.n_stun == 0);
	CHECK(m.domain[0] == '\0' && !m.birthday);
	CHECK(m.keepalive == MK_MESH_KEEPALIVE_DEFAULT && m.keepalive == 25);
	mk_mesh_free(&m);

	REQUIRE_V(parse(&m, NULL, 0) == 0);
	mk_mesh_free(&m);

	/* Comments, blank lines, CR-LF and a missing final newline. */
	REQUIRE_V(parse_str(&m, "#\n \n\t\n# n\xc3\xa9 \x01 comment\r\n"
	    "   # indented\r\n\r\nbirthday off # trailing\r\n"
	    "option keepalive 3600") == 0);
	CHECK(!m.birthday && m.keepalive == 3600);
	mk_mesh_free(&m);

	/* punch's birthday tuning, kept as written */
	REQUIRE_V(parse_str(&m, "birthday on\noption birthday-ports 512\n"
	    "option birthday-rate 1000\noption birthday-count 4096\n") == 0);
	CHECK(m.birthday);
	CHECK_STR(mk_mesh_option(&m, "birthday-ports"), "512");
	CHECK_STR(mk_mesh_option(&m, "birthday-rate"), "1000");
	CHECK_STR(mk_mesh_option(&m, "birthday-count"), "4096");
	mk_mesh_free(&m);

	/* No stun line: each relay host answers STUN on 3478. */
	REQUIRE_V(parse_str(&m, "relay https://derp.example\n"
	    "relay https://DERP.example:8443\n"
	    "relay http://[2001:db8::1]:3340\n") == 0);
	REQUIRE_V(m.n_stun == 2);
	CHECK_STR(m.stun[0].host, "derp.example");
	CHECK(m.stun[0].port == 3478 && m.stun[0].from_relay &&
	    m.stun[0].addr.len == 0 && m.stun[0].line == 1);
	CHECK_STR(m.stun[1].host, "2001:db8::1");
	CHECK(m.stun[1].from_relay && m.stun[1].line == 3 &&
	    mk_addr_port(&m.stun[1].addr) == 3478 &&
	    mk_addr_family(&m.stun[1].addr) == AF_INET6);
	CHECK_STR(m.relays[1].url, "https://derp.example:8443/derp");
	mk_mesh_free(&m);

	/* An explicit stun line replaces the implied ones. */
	REQUIRE_V(parse_str(&m, "relay https://derp.example\n"
	    "stun 198.18.0.1:3479\n") == 0);
	CHECK(m.n_stun == 1 && !m.stun[0].from_relay);
	mk_mesh_free(&m);

	/* URL normalisation: scheme case, default port, canonical IPv6. */
	REQUIRE_V(parse_str(&m, "relay HTTPS://[2001:DB8:0::1]:443/derp\n"
	    "relay https://198.18.0.1:443/\n") == 0);
	CHECK_STR(m.relays[0].url, "https://[2001:db8::1]/derp");
	CHECK_STR(m.relays[1].url, "https://198.18.0.1/derp");
	mk_mesh_free(&m);

	/* The range edges and a label of 63. */
	REQUIRE_V(parse_str(&m, "node a-0 " KEY_A " 100.64.0.0 100.127.255.255"
	    " fd7a:115c:a1e0:ffff:ffff:ffff:ffff:ffff fd7a:115c:a1e0::\n"
	    "node " L63 " "
	    KEY_B " 100.100.100.101\n") == 0);
	CHECK(m.n_nodes == 2 && m.nodes[0].n_addrs == 4);
	CHECK(strlen(m.nodes[1].name) == 63);
	mk_mesh_free(&m);

	/* # begins a comment anywhere, even inside a field. */
	REQUIRE_V(parse_str(&m, "domain mesh.example#x\n") == 0);
	CHECK_STR(m.domain, "mesh.example");
	mk_mesh_free(&m);
}

static void
test_errors(void)
{
	struct mk_mesh m;
	char big[600];

	/* Line numbers count comments and blank lines. */
	EXPECT("# c\n\ndomain a.example\r\n\nfrob x\n",
	    "mesh.conf:5: unknown keyword frob");
	EXPECT("Node alice " KEY_A " 100.64.0.1\n",
	    "mesh.conf:1: unknown keyword Node");
	EXPECT("  \tdomains x\n", "mesh.conf:1: unknown keyword domains");

	EXPECT("domain\n", "mesh.conf:1: domain takes one name");
	EXPECT("domain a b\n", "mesh.conf:1: domain takes one name");
	EXPECT("domain a.example\n# x\ndomain b.example\n",
	    "mesh.conf:3: domain given twice (first on line 1)");
	EXPECT("domain -a.example\n",
	    "mesh.conf:1: domain -a.example: not a valid DNS name");
	EXPECT("domain a..example\n",
	    "mesh.conf:1: domain a..example: not a valid DNS name");
	EXPECT("domain mesh.123\n",
	    "mesh.conf:1: domain mesh.123: not a valid DNS name");
	EXPECT("domain a_b.example\n",
	    "mesh.conf:1: domain a_b.example: not a valid DNS name");
	EXPECT("domain .\n", "mesh.conf:1: domain .: not a valid DNS name");
	EXPECT("domain " L64 ".example\n",
	    "mesh.conf:1: domain " L64 ".example: not a valid DNS name");

	EXPECT("relay\n",
	    "mesh.conf:1: relay takes a URL and an optional pin");
	EXPECT("relay https://a.example " PIN " x\n",
	    "mesh.conf:1: relay takes a URL and an optional pin");
	EXPECT("relay ftp://a.example\n",
	    "mesh.conf:1: relay ftp://a.example: scheme must be https:// or "
	    "http://");
	EXPECT("relay a.example\n",
	    "mesh.conf:1: relay a.example: scheme must be https:// or "
	    "http://");
	EXPECT("relay http://a.example\n",
	    "mesh.conf:1: relay http://a.example: plain http needs a port");
	EXPECT("relay http://a.example/derp\n",
	    "mesh.conf:1: relay http://a.example/derp: plain http needs a "
	    "port");
	EXPECT("relay https://a.example:0\n",
	    "mesh.conf:1: relay https://a.example:0: bad port");
	EXPECT("relay https://a.example:65536\n",
	    "mesh.conf:1: relay https://a.example:65536: bad port");
	EXPECT("relay https://a.example:+443\n",
	    "mesh.conf:1: relay https://a.example:+443: bad port");
	EXPECT("relay https://a.example:\n",
	    "mesh.conf:1: relay https://a.example:: malformed host or port");
	EXPECT("relay https://a.example/derp/\n",
	    "mesh.conf:1: relay https://a.example/derp/: path must be empty "
	    "or /derp");
	EXPECT("relay https://a.example/derp?x=1\n",
	    "mesh.conf:1: relay https://a.example/derp?x=1: path must be "
	    "empty or /derp");
	EXPECT("relay https://a.example/other\n",
	    "mesh.conf:1: relay https://a.example/other: path must be empty "
	    "or /derp");
	EXPECT("relay https://\n",
	    "mesh.conf:1: relay https://: missing host");
	EXPECT("relay https:///derp\n",
	    "mesh.conf:1: relay https:///derp: missing host");
	EXPECT("relay https://::1\n",
	    "mesh.conf:1: relay https://::1: an IPv6 address needs brackets");
	EXPECT("relay https://[a.example]:443\n",
	    "mesh.conf:1: relay https://[a.example]:443: brackets are only "
	    "for IPv6 addresses");
	EXPECT("relay https://[::1\n",
	    "mesh.conf:1: relay https://[::1: malformed host or port");
	EXPECT("relay https://u@a.example\n",
	    "mesh.conf:1: relay https://u@a.example: host is not a numeric "
	    "address or a host name");
	EXPECT("relay https://0.0.0.0\n",
	    "mesh.conf:1: relay https://0.0.0.0: host is not a numeric "
	    "address or a host name");
	EXPECT("relay http://a.example:3340 " PIN "\n",
	    "mesh.conf:1: relay http://a.example:3340: a pin needs https");
	EXPECT("relay https://a.example sha256:00\n",
	    "mesh.conf:1: relay https://a.example: bad pin sha256:00 (want "
	    "sha256-raw:<64 hex digits>)");
	EXPECT("relay https://a.example sha256-raw:0123456789abcdef\n",
	    "mesh.conf:1: relay https://a.example: bad pin "
	    "sha256-raw:0123456789abcdef (want sha256-raw:<64 hex digits>)");
	EXPECT("relay https://a.example " PIN "0\n",
	    "mesh.conf:1: relay https://a.example: bad pin " PIN "0 (want "
	    "sha256-raw:<64 hex digits>)");
	EXPECT("relay https://a.example\nrelay https://A.example:443/derp\n",
	    "mesh.conf:2: relay https://A.example:443/derp: given twice "
	    "(first on line 1)");

	EXPECT("stun\n", "mesh.conf:1: stun takes one HOST[:PORT]");
	EXPECT("stun a b\n", "mesh.conf:1: stun takes one HOST[:PORT]");
	EXPECT("stun 198.18.0.1:0\n",
	    "mesh.conf:1: stun 198.18.0.1:0: bad port");
	EXPECT("stun 198.18.0.1:x\n",
	    "mesh.conf:1: stun 198.18.0.1:x: bad port");
	EXPECT("stun 198.18.0.1:\n",
	    "mesh.conf:1: stun 198.18.0.1:: malformed host or port");
	EXPECT("stun [::1]x\n",
	    "mesh.conf:1: stun [::1]x: malformed host or port");
	EXPECT("stun 198.18.0.256\n",
	    "mesh.conf:1: stun 198.18.0.256: host is not a numeric address or "
	    "a host name");
	EXPECT("stun st_un.example\n",
	    "mesh.conf:1: stun st_un.example: host is not a numeric address "
	    "or a host name");
	EXPECT("stun [::]\n",
	    "mesh.conf:1: stun [::]: host is not a numeric address or a host "
	    "name");
	EXPECT("stun [stun.example]:3478\n",
	    "mesh.conf:1: stun [stun.example]:3478: brackets are only for "
	    "IPv6 addresses");
	EXPECT("stun 198.18.0.1\nstun 198.18.0.1:3478\n",
	    "mesh.conf:2: stun 198.18.0.1:3478: given twice (first on line 1)");
	EXPECT("stun [2001:db8::1]\nstun 2001:db8:0::1\n",
	    "mesh.conf:2: stun 2001:db8:0::1: given twice (first on line 1)");
	EXPECT("stun s.example:3479\nstun S.EXAMPLE:3479\n",
	    "mesh.conf:2: stun S.EXAMPLE:3479: given twice (first on line 1)");

	EXPECT("node\n", "mesh.conf:1: node needs a name, a public key and "
	    "at least one address");
	EXPECT("node alice " KEY_A "\n", "mesh.conf:1: node needs a name, a "
	    "public key and at least one address");
	EXPECT("node Alice " KEY_A " 100.64.0.1\n", "mesh.conf:1: node Alice: "
	    "name must be a DNS label (a-z, 0-9 and -, at most 63)");
	EXPECT("node -a " KEY_A " 100.64.0.1\n", "mesh.conf:1: node -a: "
	    "name must be a DNS label (a-z, 0-9 and -, at most 63)");
	EXPECT("node a- " KEY_A " 100.64.0.1\n", "mesh.conf:1: node a-: "
	    "name must be a DNS label (a-z, 0-9 and -, at most 63)");
	EXPECT("node a.b " KEY_A " 100.64.0.1\n", "mesh.conf:1: node a.b: "
	    "name must be a DNS label (a-z, 0-9 and -, at most 63)");
	EXPECT("node " L64 " " KEY_A " 100.64.0.1\n",
	    "mesh.conf:1: node " L64 ": "
	    "name must be a DNS label (a-z, 0-9 and -, at most 63)");
	EXPECT("node a xyz 100.64.0.1\n", "mesh.conf:1: node a: bad public "
	    "key: key has the wrong length (want 44 base64, 64 hex or "
	    "nodekey:HEX)");
	EXPECT("node a nodekey:" HEX_A "0 100.64.0.1\n", "mesh.conf:1: node "
	    "a: bad public key: hex key is not 64 digits");
	EXPECT("node a nodekey:"
	    "0000000000000000000000000000000000000000000000000000000000000000"
	    " 100.64.0.1\n", "mesh.conf:1: node a: public key is all zeros");
	EXPECT("node alice " KEY_A " 10.0.0.1\n",
	    "mesh.conf:1: node alice: address 10.0.0.1 is outside "
	    "100.64.0.0/10");
	EXPECT("node alice " KEY_A " 100.128.0.1\n",
	    "mesh.conf:1: node alice: address 100.128.0.1 is outside "
	    "100.64.0.0/10");
	EXPECT("node alice " KEY_A " 100.63.255.255\n",
	    "mesh.conf:1: node alice: address 100.63.255.255 is outside "
	    "100.64.0.0/10");
	EXPECT("node alice " KEY_A " 100.64.0.1 fd7a:115c:a1e1::1\n",
	    "mesh.conf:1: node alice: address fd7a:115c:a1e1::1 is outside "
	    "fd7a:115c:a1e0::/48");
	EXPECT("node alice " KEY_A " ::ffff:100.64.0.1\n",
	    "mesh.conf:1: node alice: address ::ffff:100.64.0.1 is outside "
	    "fd7a:115c:a1e0::/48");
	EXPECT("node alice " KEY_A " 100.64.0.1/24\n",
	    "mesh.conf:1: node alice: address 100.64.0.1/24 has a prefix "
	    "length other than /32");
	EXPECT("node alice " KEY_A " fd7a:115c:a1e0::1/64\n",
	    "mesh.conf:1: node alice: address fd7a:115c:a1e0::1/64 has a "
	    "prefix length other than /128");
	EXPECT("node alice " KEY_A " 100.64.0.1/128\n",
	    "mesh.conf:1: node alice: address 100.64.0.1/128 has a prefix "
	    "length other than /32");
	EXPECT("node alice " KEY_A " 100.64.0.1/\n",
	    "mesh.conf:1: node alice: address 100.64.0.1/ has a bad prefix "
	    "length");
	EXPECT("node alice " KEY_A " 100.64.0.1/+32\n",
	    "mesh.conf:1: node alice: address 100.64.0.1/+32 has a bad prefix "
	    "length");
	EXPECT("node alice " KEY_A " alice.mesh.example\n",
	    "mesh.conf:1: node alice: address alice.mesh.example is not an IP "
	    "address");
	EXPECT("node alice " KEY_A " [fd7a:115c:a1e0::1]\n",
	    "mesh.conf:1: node alice: address [fd7a:115c:a1e0::1] is not an IP "
	    "address");
	EXPECT("node alice " KEY_A " 100.64.0.1:41641\n",
	    "mesh.conf:1: node alice: address 100.64.0.1:41641 is not an IP "
	    "address");
	EXPECT("node alice " KEY_A " /32\n",
	    "mesh.conf:1: node alice: address /32 is not an IP address");
	EXPECT("node alice " KEY_A " 100.100.100.100\n",
	    "mesh.conf:1: node alice: address 100.100.100.100 is reserved for "
	    "magicdns");
	EXPECT("node alice " KEY_A " fd7a:115c:a1e0::53\n",
	    "mesh.conf:1: node alice: address fd7a:115c:a1e0::53 is reserved "
	    "for magicdns");
	EXPECT("node alice " KEY_A
	    " 100.64.0.1 100.64.0.2 100.64.0.3 100.64.0.4 100.64.0.5\n",
	    "mesh.conf:1: node alice: more than 4 addresses");
	EXPECT("node alice " KEY_A " 100.64.0.1 a b c d e f g h i j k l m n o "
	    "p q r s\n", "mesh.conf:1: node alice: more than 4 addresses");
	EXPECT("node alice " KEY_A " 100.64.0.1 100.64.0.1/32\n",
	    "mesh.conf:1: node alice: address 100.64.0.1/32 listed twice");

	/* Duplicates across lines. */
	EXPECT("node alice " KEY_A " 100.64.0.1\n"
	    "node alice " KEY_B " 100.64.0.2\n",
	    "mesh.conf:2: node alice: name already used on line 1");
	EXPECT("node alice " KEY_A " 100.64.0.1\n"
	    "node bob nodekey:" HEX_A " 100.64.0.2\n",
	    "mesh.conf:2: node bob: public key already used by alice (line 1)");
	EXPECT("node alice " KEY_A " 100.64.0.1\n"
	    "node bob " HEX_A " 100.64.0.2\n",
	    "mesh.conf:2: node bob: public key already used by alice (line 1)");
	EXPECT("node alice " KEY_A " 100.64.0.1 fd7a:115c:a1e0::1\n"
	    "node bob " KEY_B " 100.64.0.2\n"
	    "node carol " KEY_C " 100.64.0.3 fd7a:115c:a1e0:0::0:1/128\n",
	    "mesh.conf:3: node carol: address fd7a:115c:a1e0:0::0:1/128 "
	    "already used by alice (line 1)");
	EXPECT("node alice " KEY_A " 100.64.0.1\n"
	    "node bob " KEY_B " 100.64.0.2\n"
	    "node carol " KEY_C " 100.64.0.2/32\n",
	    "mesh.conf:3: node carol: address 100.64.0.2/32 already used by "
	    "bob (line 2)");

	EXPECT("option\n", "mesh.conf:1: option takes a key and a value");
	EXPECT("option birthday\n",
	    "mesh.conf:1: option takes a key and a value");
	EXPECT("option birthday on off\n",
	    "mesh.conf:1: option takes a key and a value");
	EXPECT("option frob on\n", "mesh.conf:1: unknown option frob");
	EXPECT("option Birthday on\n", "mesh.conf:1: unknown option Birthday");
	EXPECT("option birthday yes\n", "mesh.conf:1: option birthday: bad "
	    "value yes (want on or off)");
	EXPECT("option keepalive 0\n", "mesh.conf:1: option keepalive: bad "
	    "value 0 (want seconds from 1 to 3600)");
	EXPECT("option birthday-rate 1001\n", "mesh.conf:1: option "
	    "birthday-rate: bad value 1001 (want probes a second from 1 to "
	    "1000)");
	EXPECT("option birthday-ports 0\n", "mesh.conf:1: option "
	    "birthday-ports: bad value 0 (want sockets from 1 to 1024)");
	EXPECT("option birthday-count 1000001\n", "mesh.conf:1: option "
	    "birthday-count: bad value 1000001 (want probes from 1 to "
	    "1000000)");
	EXPECT("option keepalive 3601\n", "mesh.conf:1: option keepalive: bad "
	    "value 3601 (want seconds from 1 to 3600)");
	EXPECT("option keepalive 25s\n", "mesh.conf:1: option keepalive: bad "
	    "value 25s (want seconds from 1 to 3600)");
	EXPECT("option keepalive -5\n", "mesh.conf:1: option keepalive: bad "
	    "value -5 (want seconds from 1 to 3600)");
	EXPECT("option keepalive 99999999999999999999\n",
	    "mesh.conf:1: option keepalive: bad value 99999999999999999999 "
	    "(want seconds from 1 to 3600)");
	EXPECT("birthday\n", "mesh.conf:1: birthday takes on or off");
	EXPECT("birthday on off\n", "mesh.conf:1: birthday takes on or off");
	EXPECT("birthday ON\n", "mesh.conf:1: option birthday: bad value ON "
	    "(want on or off)");
	EXPECT("birthday on\noption birthday off\n",
	    "mesh.conf:2: option birthday given twice (first on line 1)");
	EXPECT("option keepalive 5\noption keepalive 5\n",
	    "mesh.conf:2: option keepalive given twice (first on line 1)");

	/* Bytes that have no place in the file. */
	EXPECT("domain a\x01.example\n", "mesh.conf:1: control character 0x01");
	EXPECT("domain a.example\rx\n", "mesh.conf:1: control character 0x0d");
	EXPECT("domain a.example\r\r\n", "mesh.conf:1: control character 0x0d");
	EXPECT("domain a.example\x7f\n", "mesh.conf:1: control character 0x7f");
	EXPECT("\n\ndomain m\xc3\xa9sh.example\n",
	    "mesh.conf:3: non-ASCII byte 0xc3");
	EXPECT("\xef\xbb\xbf" "domain a.example\n",
	    "mesh.conf:1: non-ASCII byte 0xef");
	expect_len("domain a.example\n# \0\n", 20, "mesh.conf:2: NUL byte",
	    __LINE__);
	expect_len("domain a\0.example", 17, "mesh.conf:1: NUL byte",
	    __LINE__);

	/* name.DOMAIN must fit a DNS name: a domain of 250 characters. */
	memset(big, 'a', sizeof(big));
	memcpy(big, "domain ", 7);
	big[7 + 62] = big[7 + 125] = big[7 + 188] = '.';
	big[7 + 250] = '\n';
	snprintf(big + 7 + 251, sizeof(big) - 258, "node ab " KEY_A
	    " 100.64.0.1\nnode abc " KEY_B " 100.64.0.2\n");
	EXPECT(big, "mesh.conf:3: node abc: abc.DOMAIN is longer than 253 "
	    "characters");
	big[7 + 251 + strlen("node ab " KEY_A " 100.64.0.1\n")] = '\0';
	CHECK(parse_str(&m, big) == 0 && strlen(m.domain) == 250);
	mk_mesh_free(&m);
}

struct sbuf {
	char	*p;
	size_t	 len;
	size_t	 cap;
};

static void
sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		b->cap = b->cap * 2 + (size_t)n + 64;
		if ((b->p = realloc(b->p, b->cap)) == NULL)
			abort();
	}
}

static void
test_limits(void)
{
	struct mk_mesh m;
	struct sbuf b = { NULL, 0, 0 };
	struct mk_key k;
	const struct mk_mesh_node *n;
	char *s, want[128];
	size_t i, len;
	uint32_t ip;

	/* A line of exactly MK_MESH_MAX_LINE bytes (before CR-LF) is fine. */
	len = MK_MESH_MAX_LINE + 64;
	REQUIRE_V((s = malloc(len)) != NULL);
	memset(s, 'x', len);
	s[0] = '#';
	s[MK_MESH_MAX_LINE] = '\r';
	s[MK_MESH_MAX_LINE + 1] = '\n';
	CHECK(parse(&m, s, MK_MESH_MAX_LINE + 2) == 0);
	mk_mesh_free(&m);
	CHECK(parse(&m, s, MK_MESH_MAX_LINE) == 0);
	mk_mesh_free(&m);
	memset(s, 'x', len);
	memcpy(s, "\n\n#", 3);
	s[2 + MK_MESH_MAX_LINE + 1] = '\n';
	expect_len(s, MK_MESH_MAX_LINE + 4, "mesh.conf:3: line is longer "
	    "than 4096 bytes", __LINE__);
	free(s);

	/* The file size limit. */
	len = (size_t)MK_MESH_MAX_FILE + 1;
	REQUIRE_V((s = malloc(len)) != NULL);
	memset(s, '\n', len);
	CHECK(parse(&m, s, len - 1) == 0);
	mk_mesh_free(&m);
	errbuf[0] = '\0';
	CHECK(parse(&m, s, len) == -1 && errno == EFBIG);
	CHECK_STR(errbuf, "mesh.conf: file is larger than 16777216 bytes");
	CHECK(mesh_empty(&m));
	mk_mesh_free(&m);
	free(s);

	/* The node limit, with every node findable through the index. */
	sb_printf(&b, "domain mesh.example\n");
	for (i = 0; i < MK_MESH_MAX_NODES; i++) {
		ip = (100U << 24) | (64U << 16) | (uint32_t)i;
		sb_printf(&b, "node n%zu nodekey:%064zx %u.%u.%u.%u "
		    "fd7a:115c:a1e0::1:%zx\n", i, i + 1, ip >> 24,
		    (ip >> 16) & 255, (ip >> 8) & 255, ip & 255, i);
	}
	CHECK(parse(&m, b.p, b.len) == 0);
	CHECK_STR(errbuf, "");
	REQUIRE_V(m.n_nodes == MK_MESH_MAX_NODES);
	memset(&k, 0, sizeof(k));
	k.b[30] = 0x12;
	k.b[31] = 0x35;		/* 0x1235 - 1 = node 4660 */
	n = mk_mesh_find_key(&m, &k);
	CHECK(n != NULL && strcmp(n->name, "n4660") == 0);
	n = mk_mesh_find_name(&m, "N65535.mesh.example");
	CHECK(n != NULL && n == &m.nodes[65535] && n->line == 65537);
	mk_mesh_free(&m);
	sb_printf(&b, "node toomany nodekey:%064x 100.65.0.0\n", 0xffffff);
	snprintf(want, sizeof(want), "mesh.conf:%d: more than 65536 nodes",
	    MK_MESH_MAX_NODES + 2);
	expect_len(b.p, b.len, want, __LINE__);
	free(b.p);

	/* The relay and STUN limits. */
	memset(&b, 0, sizeof(b));
	for (i = 0; i <= MK_MESH_MAX_RELAYS; i++)
		sb_printf(&b, "relay https://r%zu.example\n", i);
	expect_len(b.p, b.len, "mesh.conf:257: more than 256 relays",
	    __LINE__);
	REQUIRE_V(parse(&m, b.p, b.len - strlen("relay https://r256.example\n"))
	    == 0);
	CHECK(m.n_relays == 256 && m.n_stun == 256 && m.stun[255].from_relay);
	mk_mesh_free(&m);
	free(b.p);
	memset(&b, 0, sizeof(b));
	for (i = 0; i <= MK_MESH_MAX_STUN; i++)
		sb_printf(&b, "stun 198.18.0.1:%zu\n", i + 1);
	expect_len(b.p, b.len, "mesh.conf:257: more than 256 stun servers",
	    __LINE__);
	free(b.p);
}

/* Every prefix of a valid file either parses or fails cleanly. */
static void
test_truncations(void)
{
	struct mk_mesh m;
	size_t i, ok = 0;
	int rc;

	for (i = 0; i <= sizeof(full) - 1; i++) {
		errbuf[0] = '\0';
		rc = parse(&m, full, i);
		if (rc == 0) {
			ok++;
			CHECK(m.n_nodes <= 3 && errbuf[0] == '\0');
		} else {
			CHECK(rc == -1 && mesh_empty(&m));
			CHECK(strncmp(errbuf, "mesh.conf:", 10) == 0 &&
			    strlen(errbuf) > 12);
		}
		mk_mesh_free(&m);
	}
	CHECK(ok > 0 && ok < sizeof(full));
	/* The same with no error buffer at all. */
	for (i = 0; i <= sizeof(full) - 1; i++) {
		rc = mk_mesh_parse(&m, full, i, "x", NULL, 0);
		CHECK(rc == 0 || rc == -1);
		mk_mesh_free(&m);
	}
	/* A tiny error buffer is truncated, never overrun. */
	errbuf[5] = 'Z';
	CHECK(mk_mesh_parse(&m, "frob\n", 5, "mesh.conf", errbuf, 5) == -1);
	CHECK_STR(errbuf, "mesh");
	CHECK(errbuf[5] == 'Z');
}

static void
test_load(void)
{
	struct mk_mesh m;
	char dir[] = "/tmp/test_meshconf.XXXXXX", path[64], ex[512];
	const char *srcdir = getenv("MK_SRCDIR");
	int fd, saved;

	REQUIRE_V(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/mesh.conf", dir);
	REQUIRE_V(mk_file_replace(path, full, sizeof(full) - 1, 0644) == 0);
	CHECK(mk_mesh_load(&m, path, errbuf, sizeof(errbuf)) == 0);
	CHECK(m.n_nodes == 3 && m.n_relays == 3);
	mk_mesh_free(&m);

	/* "-" is stdin, named (stdin) in messages. */
	REQUIRE_V(mk_file_replace(path, "\nfrob\n", 6, 0644) == 0);
	saved = dup(STDIN_FILENO);
	REQUIRE_V(saved >= 0 && (fd = open(path, O_RDONLY)) >= 0);
	REQUIRE_V(dup2(fd, STDIN_FILENO) == STDIN_FILENO);
	close(fd);
	CHECK(mk_mesh_load(&m, "-", errbuf, sizeof(errbuf)) == -1);
	CHECK_STR(errbuf, "(stdin):2: unknown keyword frob");
	REQUIRE_V(dup2(saved, STDIN_FILENO) == STDIN_FILENO);
	close(saved);
	CHECK(mk_mesh_load(&m, path, errbuf, sizeof(errbuf)) == -1);
	snprintf(ex, sizeof(ex), "%s:2: unknown keyword frob", path);
	CHECK_STR(errbuf, ex);
	CHECK(mesh_empty(&m));

	/* I/O errors name the file and keep errno. */
	unlink(path);
	CHECK(mk_mesh_load(&m, path, errbuf, sizeof(errbuf)) == -1 &&
	    errno == ENOENT);
	snprintf(ex, sizeof(ex), "%s: No such file or directory", path);
	CHECK_STR(errbuf, ex);
	CHECK(mk_mesh_load(&m, dir, errbuf, sizeof(errbuf)) == -1 &&
	    errno == EISDIR);
	snprintf(ex, sizeof(ex), "%s: Is a directory", dir);
	CHECK_STR(errbuf, ex);

	/* Too big is found by reading, whatever stat says. */
	REQUIRE_V((fd = open(path, O_WRONLY | O_CREAT, 0644)) >= 0);
	CHECK(ftruncate(fd, (off_t)MK_MESH_MAX_FILE + 4096) == 0);
	close(fd);
	CHECK(mk_mesh_load(&m, path, errbuf, sizeof(errbuf)) == -1 &&
	    errno == EFBIG);
	snprintf(ex, sizeof(ex), "%s: file is larger than 16777216 bytes",
	    path);
	CHECK_STR(errbuf, ex);
	unlink(path);
	rmdir(dir);

	/* The shipped example parses. */
	snprintf(ex, sizeof(ex), "%s/examples/mesh.conf",
	    srcdir ? srcdir : ".");
	CHECK(mk_mesh_load(&m, ex, errbuf, sizeof(errbuf)) == 0);
	if (errbuf[0] != '\0')
		fprintf(stderr, "%s\n", errbuf);
	CHECK(m.n_nodes == 3 && m.domain[0] != '\0' && m.n_relays >= 1);
	mk_mesh_free(&m);
}

static void
test_default_path(void)
{
	CHECK(unsetenv("MESHKIT_CONF") == 0);
	CHECK_STR(mk_mesh_default_path(), "/etc/meshkit/mesh.conf");
	CHECK(setenv("MESHKIT_CONF", "", 1) == 0);
	CHECK_STR(mk_mesh_default_path(), "/etc/meshkit/mesh.conf");
	CHECK(setenv("MESHKIT_CONF", "/tmp/lab/mesh.conf", 1) == 0);
	CHECK_STR(mk_mesh_default_path(), "/tmp/lab/mesh.conf");
	CHECK(unsetenv("MESHKIT_CONF") == 0);
}

/* This node from its key file: found, not in the mesh, no key at all. */
static void
test_self(void)
{
	const struct mk_mesh_node *self = NULL;
	struct mk_key priv, pub, other;
	struct mk_mesh m;
	char dir[] = "/tmp/test_meshself.XXXXXX", path[64], conf[256];
	char b64[MK_KEY_B64LEN + 1];
	int n;

	REQUIRE_V(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/node.key", dir);
	mk_key_generate(&priv);
	REQUIRE_V(mk_key_write_file(path, &priv) == 0);
	mk_key_public(&pub, &priv);
	mk_key_to_base64(b64, &pub);
	n = snprintf(conf, sizeof(conf), "node alice %s 100.64.0.1\n", b64);
	REQUIRE_V(mk_mesh_parse(&m, conf, (size_t)n, "t", errbuf,
	    sizeof(errbuf)) == 0);
	CHECK(mk_mesh_self(&m, "t", path, &other, &pub, &self, errbuf,
	    sizeof(errbuf)) == 0);
	CHECK(self != NULL && strcmp(self->name, "alice") == 0);
	CHECK(mk_key_equal(&other, &priv));
	mk_mesh_free(&m);

	mk_key_generate(&other);
	mk_key_public(&other, &other);
	mk_key_to_base64(b64, &other);
	n = snprintf(conf, sizeof(conf), "node bob %s 100.64.0.2\n", b64);
	REQUIRE_V(mk_mesh_parse(&m, conf, (size_t)n, "t", errbuf,
	    sizeof(errbuf)) == 0);
	CHECK(mk_mesh_self(&m, "t", path, &priv, &pub, &self, errbuf,
	    sizeof(errbuf)) == -1 && self == NULL);
	CHECK(strstr(errbuf, "this key is no node of t") != NULL);
	unlink(path);
	CHECK(mk_mesh_self(&m, "t", path, &priv, &pub, &self, errbuf,
	    sizeof(errbuf)) == -1);
	CHECK(strncmp(errbuf, path, strlen(path)) == 0);
	mk_mesh_free(&m);
	rmdir(dir);
}

int
main(void)
{
	REQUIRE(mk_key_init() == 0);
	test_self();
	test_full();
	test_find();
	test_defaults();
	test_errors();
	test_limits();
	test_truncations();
	test_load();
	test_default_path();
	return t_done("meshconf");
}
