/* SPDX-License-Identifier: MIT */
/* wg-quick configuration files: what wg(8) accepts, and every error named
 * by file and line. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "t.h"
#include "wgconf.h"

#define PRIV "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
#define PUB  "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="
#define PUB2 "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
#define PSK  "FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE="

static int
parse(struct mk_wgconf *c, const char *text, char *err, size_t errlen)
{
	return mk_wgconf_parse(c, text, strlen(text), "wg0.conf", 0, err,
	    errlen);
}

static void
test_full(void)
{
	static const char text[] =
	    "# a comment\n"
	    "[Interface]\n"
	    "PrivateKey = " PRIV "\n"
	    "ListenPort = 51820\r\n"
	    "FwMark = 0x1234\n"
	    "Address = 10.0.0.1/24, fd00::1/64 # two\n"
	    "Address = 10.0.1.1\n"
	    "DNS = 10.0.0.53, example.com\n"
	    "MTU = 1380\n"
	    "Table = 1234\n"
	    "SaveConfig = false\n"
	    "\n"
	    "[Peer]\n"
	    "PublicKey = " PUB "\n"
	    "PresharedKey = " PSK "\n"
	    "AllowedIPs = 10.0.0.2/32, 10.9.0.0/16\n"
	    "AllowedIPs = ::/0\n"
	    "Endpoint = [2001:db8::1]:51820\n"
	    "PersistentKeepalive = 25\n"
	    "[peer]\n"
	    "publickey=" PUB2 "\n"
	    "endpoint = 192.0.2.1:1\n"
	    "persistentkeepalive = off\n";
	struct mk_wgconf c;
	struct mk_wg_peer *p;
	char err[256], buf[64], pub[MK_KEY_B64LEN + 1];

	REQUIRE_VOID(parse(&c, text, err, sizeof(err)) == 0);
	CHECK(c.dev.flags & MK_WG_DEV_HAS_PRIVATE_KEY);
	CHECK(c.dev.flags & MK_WG_DEV_HAS_PUBLIC_KEY);
	mk_key_to_base64(pub, &c.dev.public_key);
	/* the pair from wg(8)'s own documentation */
	CHECK_STR(pub, PUB);
	CHECK(c.dev.listen_port == 51820);
	CHECK(c.dev.fwmark == 0x1234);
	REQUIRE_VOID(c.n_addrs == 3);
	CHECK_STR(mk_wg_allowedip_fmt(&c.addrs[0], buf, sizeof(buf)),
	    "10.0.0.1/24");
	CHECK_STR(mk_wg_allowedip_fmt(&c.addrs[1], buf, sizeof(buf)),
	    "fd00::1/64");
	CHECK_STR(mk_wg_allowedip_fmt(&c.addrs[2], buf, sizeof(buf)),
	    "10.0.1.1/32");
	CHECK(c.n_dns == 1 && c.n_search == 1);
	CHECK(c.mtu == 1380);
	CHECK(c.table == 1234);
	REQUIRE_VOID(c.dev.n_peers == 2);
	p = &c.dev.peers[0];
	mk_key_to_base64(pub, &p->public_key);
	CHECK_STR(pub, PUB);
	CHECK(p->flags & MK_WG_PEER_HAS_PRESHARED_KEY);
	CHECK(p->flags & MK_WG_PEER_REPLACE_ALLOWEDIPS);
	CHECK(p->n_allowedips == 3);
	CHECK_STR(mk_wg_allowedip_fmt(&p->allowedips[2], buf, sizeof(buf)),
	    "::/0");
	CHECK_STR(mk_addr_fmt(&p->endpoint, buf, sizeof(buf)),
	    "[2001:db8::1]:51820");
	CHECK(p->keepalive == 25 && (p->flags & MK_WG_PEER_HAS_KEEPALIVE));
	p = &c.dev.peers[1];
	CHECK(p->keepalive == 0 && (p->flags & MK_WG_PEER_HAS_KEEPALIVE));
	CHECK(p->n_allowedips == 0);
	CHECK_STR(mk_addr_fmt(&p->endpoint, buf, sizeof(buf)), "192.0.2.1:1");
	mk_wgconf_free(&c);
	mk_wgconf_free(&c);	/* idempotent */
}

static void
test_table(void)
{
	struct mk_wgconf c;
	char err[256];

	REQUIRE_VOID(parse(&c, "[Interface]\nTable = off\n", err,
	    sizeof(err)) == 0);
	CHECK(c.table == MK_WGCONF_TABLE_OFF);
	mk_wgconf_free(&c);
	REQUIRE_VOID(parse(&c, "[Interface]\nTable = auto\n", err,
	    sizeof(err)) == 0);
	CHECK(c.table == MK_WGCONF_TABLE_AUTO);
	mk_wgconf_free(&c);
	REQUIRE_VOID(parse(&c, "[Interface]\nTable = main\n", err,
	    sizeof(err)) == 0);
	CHECK(c.table == 254);
	mk_wgconf_free(&c);
	REQUIRE_VOID(parse(&c, "", err, sizeof(err)) == 0);
	CHECK(c.dev.n_peers == 0 && c.dev.flags == 0 && c.mtu == 0);
	mk_wgconf_free(&c);
}

static const struct {
	const char *text;
	const char *err;
} bad[] = {
	{ "PrivateKey = " PRIV "\n",
	  "wg0.conf:1: PrivateKey before any [Interface] or [Peer]" },
	{ "[Interface]\nPrivateKey = abc\n",
	  "wg0.conf:2: PrivateKey: key is not 44 characters of base64" },
	{ "[Interface]\nPrivateKey = " PRIV "\nPrivateKey = " PRIV "\n",
	  "wg0.conf:3: PrivateKey given twice in one section" },
	{ "[Interface]\nListenPort = 65536\n",
	  "wg0.conf:2: ListenPort 65536: want 0 to 65535" },
	{ "[Interface]\nListenPort = -1\n",
	  "wg0.conf:2: ListenPort -1: want 0 to 65535" },
	{ "[Interface]\nMTU = 67\n", "wg0.conf:2: MTU 67: want 68 to 65535" },
	{ "[Interface]\nTable = local\n",
	  "wg0.conf:2: Table local: want off, auto, main or a table number" },
	{ "[Interface]\nAddress = 10.0.0.1/33\n",
	  "wg0.conf:2: Address 10.0.0.1/33: bad prefix length" },
	{ "[Interface]\nAddress = 10.0.0.1,,10.0.0.2\n",
	  "wg0.conf:2: empty item in Address" },
	{ "[Interface]\nDNS = 1.2.3.4, bad!name\n",
	  "wg0.conf:2: DNS bad!name: neither an address nor a domain" },
	{ "[Interface]\nPostUp = iptables -A FORWARD\n",
	  "wg0.conf:2: PostUp is not supported (wgsetup runs no hooks)" },
	{ "[Interface]\nSaveConfig = true\n",
	  "wg0.conf:2: SaveConfig = true is not supported (wgsetup never "
	  "rewrites the file)" },
	{ "[Interface]\nFoo = 1\n", "wg0.conf:2: unknown key Foo in [Interface]" },
	{ "[Interface]\n[Interface]\n",
	  "wg0.conf:2: a second [Interface] section" },
	{ "[Interface]\n[Peers]\n", "wg0.conf:2: unknown section [Peers]" },
	{ "[Interface]\njunk\n",
	  "wg0.conf:2: expected Key = Value or a [Section]" },
	{ "\n\n[Peer]\nAllowedIPs = 10.0.0.1\n[Peer]\nPublicKey = " PUB "\n",
	  "wg0.conf:3: [Peer] without PublicKey" },
	{ "[Peer]\nPublicKey = " PUB "\n",
	  NULL },
	{ "[Peer]\nPublicKey = " PUB "\nEndpoint = 1.2.3.4\n",
	  "wg0.conf:3: Endpoint 1.2.3.4: want host:port" },
	{ "[Peer]\nPublicKey = " PUB "\nEndpoint = host.example:1\n",
	  "wg0.conf:3: Endpoint host.example:1: not a numeric address" },
	{ "[Peer]\nPublicKey = " PUB "\nEndpoint = 1.2.3.4:0\n",
	  "wg0.conf:3: Endpoint 1.2.3.4:0: port 0" },
	{ "[Peer]\nPublicKey = " PUB "\nPersistentKeepalive = 70000\n",
	  "wg0.conf:3: PersistentKeepalive 70000: want 0 to 65535 or off" },
	{ "[Peer]\nPublicKey = " PUB "\nAllowedIPs = 10.0.0.256\n",
	  "wg0.conf:3: AllowedIPs 10.0.0.256: not an IP address" },
	{ "[Peer]\nPublicKey = " PUB "\nPresharedKey = " PUB "x\n",
	  "wg0.conf:3: PresharedKey: key is not 44 characters of base64" },
	{ "[Peer]\nPublicKey = " PUB "\nFoo = bar\n",
	  "wg0.conf:3: unknown key Foo in [Peer]" },
	{ "[Peer]\nPublicKey = " PUB "\n[Peer]\nPublicKey = " PUB2 "\n"
	  "[Peer]\nPublicKey = " PUB "\n",
	  "wg0.conf:5: peer " PUB " listed twice (first at line 1)" },
};

static void
test_errors(void)
{
	struct mk_wgconf c;
	char err[256];
	size_t i;
	int rc;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rc = parse(&c, bad[i].text, err, sizeof(err));
		if (bad[i].err == NULL) {
			CHECK(rc == 0);
		} else {
			CHECK(rc == -1 && errno == EINVAL);
			CHECK_STR(err, bad[i].err);
			CHECK(c.dev.n_peers == 0 && c.addrs == NULL);
		}
		mk_wgconf_free(&c);
	}
}

/* A private key never shows up in a message, even a malformed one. */
static void
test_no_secret_in_errors(void)
{
	struct mk_wgconf c;
	char err[256];

	CHECK(parse(&c, "[Interface]\nPrivateKey = " PRIV "junk\n", err,
	    sizeof(err)) == -1);
	CHECK(strstr(err, "yAnz5") == NULL);
	mk_wgconf_free(&c);
}

static void
test_limits(void)
{
	static char big[MK_WGCONF_MAX_LINE + 32];
	struct mk_wgconf c;
	char err[256];

	memset(big, 'x', sizeof(big) - 1);
	memcpy(big, "[Interface]\n", 12);
	CHECK(parse(&c, big, err, sizeof(err)) == -1);
	CHECK_STR(err, "wg0.conf:2: line longer than 4096 bytes");
	mk_wgconf_free(&c);
	CHECK(mk_wgconf_parse(&c, "[Interface]\n\0", 13, "z", 0, err,
	    sizeof(err)) == -1);
	CHECK_STR(err, "z:2: NUL byte");
	mk_wgconf_free(&c);
}

static void
test_load(void)
{
	struct mk_wgconf c;
	char err[256];

	CHECK(mk_wgconf_load(&c, "/nonexistent/wg0.conf", 0, err,
	    sizeof(err)) == -1 && errno == ENOENT);
	CHECK_STR(err, "/nonexistent/wg0.conf: No such file or directory");
	CHECK(mk_wgconf_load(&c, "/", 0, err, sizeof(err)) == -1);
	CHECK_STR(err, "/: Is a directory");
	mk_wgconf_free(&c);
}

/* FwMark and `set ... fwmark` take what wg takes, nothing else. */
static void
test_fwmark(void)
{
	static const struct {
		const char	*s;
		int		 rc;
		uint32_t	 v;
	} cases[] = {
		{ "off", 0, 0 }, { "OFF", 0, 0 }, { "0", 0, 0 },
		{ "1234", 0, 1234 }, { "0x1234", 0, 0x1234 },
		{ "0xffffffff", 0, 0xffffffffU }, { "4294967295", 0, 0xffffffffU },
		{ "0x000000001", 0, 1 }, { "0XaB", 0, 0xab },
		{ "0x100000000", -1, 0 }, { "4294967296", -1, 0 },
		{ "0x", -1, 0 }, { "0xg", -1, 0 }, { "-1", -1, 0 },
		{ "+1", -1, 0 }, { " 1", -1, 0 }, { "1 ", -1, 0 }, { "", -1, 0 },
		{ "0x-1", -1, 0 }, { "12ab", -1, 0 }, { "x12", -1, 0 },
	};
	uint32_t v;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = 77;
		CHECK(mk_wgconf_parse_fwmark(cases[i].s, &v) == cases[i].rc);
		CHECK(v == (cases[i].rc == 0 ? cases[i].v : 77));
	}
}

/* Others can read the file: it says so, and so do the directories. */
static void
test_world_accessible(void)
{
	char dir[] = "/tmp/test_wgconf.XXXXXX", sub[64], f[128], l[64];
	char real[4096];
	int fd;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(sub, sizeof(sub), "%s/d", dir);
	snprintf(f, sizeof(f), "%s/wg0.conf", sub);
	snprintf(l, sizeof(l), "%s/link.conf", dir);
	CHECK(mkdir(sub, 0755) == 0);
	CHECK((fd = open(f, O_WRONLY | O_CREAT | O_EXCL, 0600)) >= 0);
	close(fd);
	CHECK(symlink("d/wg0.conf", l) == 0);
	CHECK(chmod(dir, 0755) == 0 && chmod(sub, 0755) == 0);
	CHECK(!mk_file_world_accessible(f, real, sizeof(real)));
	CHECK(chmod(f, 0640) == 0);
	CHECK(!mk_file_world_accessible(f, real, sizeof(real)));
	/* writable by others is as bad: they can replace the secret */
	CHECK(chmod(f, 0602) == 0);
	CHECK(mk_file_world_accessible(f, NULL, 0));
	CHECK(chmod(f, 0644) == 0);
	real[0] = '\0';
	CHECK(mk_file_world_accessible(f, real, sizeof(real)));
	CHECK_STR(real, f);
	/* through a link, the file it leads to is named */
	real[0] = '\0';
	CHECK(mk_file_world_accessible(l, real, sizeof(real)));
	CHECK_STR(real, f);
	CHECK(mk_file_world_accessible(l, NULL, 0));
	/* a directory others cannot pass, here or further up, closes it */
	CHECK(chmod(sub, 0744) == 0);
	CHECK(!mk_file_world_accessible(f, real, sizeof(real)));
	CHECK(chmod(sub, 0755) == 0 && chmod(dir, 0700) == 0);
	CHECK(!mk_file_world_accessible(f, real, sizeof(real)));
	/* passing is enough: others who know the name read it */
	CHECK(chmod(dir, 0711) == 0 && chmod(sub, 0711) == 0);
	CHECK(chmod(f, 0604) == 0);
	CHECK(mk_file_world_accessible(f, real, sizeof(real)));
	/* not a regular file, or not there: nothing to say */
	CHECK(!mk_file_world_accessible("/dev/null", real, sizeof(real)));
	CHECK(!mk_file_world_accessible("/nonexistent/x", real,
	    sizeof(real)));
	CHECK(!mk_file_world_accessible(sub, real, sizeof(real)));
	unlink(l);
	unlink(f);
	rmdir(sub);
	rmdir(dir);
}

int
main(void)
{
	if (mk_key_init() != 0)
		return 1;
	test_full();
	test_table();
	test_errors();
	test_no_secret_in_errors();
	test_limits();
	test_load();
	test_fwmark();
	test_world_accessible();
	return t_done("wgconf");
}
