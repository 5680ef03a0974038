/* SPDX-License-Identifier: MIT */
/* The WireGuard device model and its two wire forms: UAPI text (format
 * and parse) and generic netlink dump replies (parse, with a peer split
 * across two messages as the kernel does for large allowed-IP sets). */
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/wireguard.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t.h"
#include "wg_netlink.h"
#include "wg_uapi.h"
#include "wgdev.h"

#define PRIV "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
#define PUB  "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="
#define PUB2 "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="

static void
key(struct mk_key *k, const char *b64)
{
	const char *why;

	if (mk_key_parse_base64(k, b64, &why) != 0)
		abort();
}

static void
test_allowedip(void)
{
	struct mk_wg_allowedip a, b;
	const char *why;
	char buf[64];

	CHECK(mk_wg_allowedip_parse(&a, "10.1.2.3/24", &why) == 0);
	CHECK(a.family == AF_INET && a.cidr == 24);
	CHECK_STR(mk_wg_allowedip_fmt(&a, buf, sizeof(buf)), "10.1.2.3/24");
	mk_wg_allowedip_mask(&a);
	CHECK_STR(mk_wg_allowedip_fmt(&a, buf, sizeof(buf)), "10.1.2.0/24");
	CHECK(mk_wg_allowedip_parse(&b, "10.1.2.0/24", &why) == 0);
	CHECK(mk_wg_allowedip_equal(&a, &b));
	CHECK(mk_wg_allowedip_parse(&a, "fd00::1:80ff/113", &why) == 0);
	mk_wg_allowedip_mask(&a);
	CHECK_STR(mk_wg_allowedip_fmt(&a, buf, sizeof(buf)), "fd00::1:8000/113");
	CHECK(mk_wg_allowedip_parse(&a, "::", &why) == 0 && a.cidr == 128);
	CHECK(mk_wg_allowedip_parse(&a, "0.0.0.0/0", &why) == 0 &&
	    a.cidr == 0);
	CHECK(mk_wg_allowedip_parse(&a, "10.0.0.1/", &why) == -1);
	CHECK(mk_wg_allowedip_parse(&a, "10.0.0.1/+1", &why) == -1);
	CHECK(mk_wg_allowedip_parse(&a, "::/129", &why) == -1);
	CHECK(mk_wg_allowedip_parse(&a, "/8", &why) == -1);
	CHECK(mk_wg_allowedip_parse(&a, "example.com/8", &why) == -1);
}

static void
test_ifname(void)
{
	CHECK(mk_wg_ifname_valid("wg0"));
	CHECK(mk_wg_ifname_valid("a.b-c_d=e+f"));
	CHECK(mk_wg_ifname_valid("123456789012345"));
	CHECK(!mk_wg_ifname_valid("1234567890123456"));
	CHECK(!mk_wg_ifname_valid(""));
	CHECK(!mk_wg_ifname_valid("wg/0"));
	CHECK(!mk_wg_ifname_valid("wg 0"));
}

static void
test_model(void)
{
	struct mk_wg_device dev = { 0 };
	struct mk_key k;
	unsigned i;

	for (i = 0; i < 1000; i++) {
		memset(&k, 0, sizeof(k));
		k.b[0] = (uint8_t)(i * 7);
		k.b[1] = (uint8_t)(i >> 3);
		k.b[2] = (uint8_t)i;
		REQUIRE_VOID(mk_wg_device_add_peer(&dev, &k) != NULL);
	}
	k.b[0] = (uint8_t)(500 * 7);
	k.b[1] = (uint8_t)(500 >> 3);
	k.b[2] = (uint8_t)500;
	CHECK(mk_wg_device_find_peer(&dev, &k) == &dev.peers[500]);
	mk_wg_device_sort(&dev);
	CHECK(dev.sorted);
	CHECK(mk_wg_device_find_peer(&dev, &k) != NULL);
	CHECK(mk_key_equal(&mk_wg_device_find_peer(&dev, &k)->public_key, &k));
	k.b[31] = 1;
	CHECK(mk_wg_device_find_peer(&dev, &k) == NULL);
	for (i = 1; i < dev.n_peers; i++)
		CHECK(memcmp(dev.peers[i - 1].public_key.b,
		    dev.peers[i].public_key.b, MK_KEY_LEN) < 0);
	mk_wg_device_clear(&dev);
	CHECK(dev.n_peers == 0 && dev.peers == NULL);
	mk_wg_device_clear(&dev);
	mk_wg_device_clear(NULL);
}

/* What wireguard-go answers to get=1 (keys in hex). */
static const char uapi_get[] =
    "private_key=c809f3e5317e9575c9b5ed78b638b7ce530dabe85ddab614220241801ddf0669\n"
    "listen_port=51820\n"
    "fwmark=7\n"
    "public_key=1c8828f7137324c58b2804928624ea2326f1674537c062e251e2753ca7fcca4c\n"
    "preshared_key=0000000000000000000000000000000000000000000000000000000000000000\n"
    "protocol_version=1\n"
    "endpoint=[2001:db8::1]:51820\n"
    "last_handshake_time_sec=1700000000\n"
    "last_handshake_time_nsec=5\n"
    "tx_bytes=18446744073709551615\n"
    "rx_bytes=92\n"
    "persistent_keepalive_interval=25\n"
    "allowed_ip=10.0.0.2/32\n"
    "allowed_ip=fd00::/64\n"
    "public_key=c53201039adba14be71f886da1d8dbe9eebded08cb111b75340078999aa9f038\n"
    "preshared_key=1111111111111111111111111111111111111111111111111111111111111111\n"
    "endpoint=192.0.2.7:9\n"
    "some_future_key=whatever\n"
    "errno=0\n"
    "\n";

static void
test_uapi_parse(void)
{
	struct mk_wg_device dev = { 0 };
	struct mk_key k;
	const char *why;
	char buf[64];
	int e;

	REQUIRE_VOID(mk_wg_uapi_parse(uapi_get, strlen(uapi_get), &dev, &e,
	    &why) == 0);
	CHECK(e == 0);
	key(&k, PRIV);
	CHECK(mk_key_equal(&dev.private_key, &k));
	key(&k, PUB);
	CHECK(mk_key_equal(&dev.public_key, &k));
	CHECK(dev.flags & MK_WG_DEV_HAS_PUBLIC_KEY);
	CHECK(dev.listen_port == 51820 && dev.fwmark == 7);
	REQUIRE_VOID(dev.n_peers == 2);
	CHECK(mk_key_equal(&dev.peers[0].public_key, &k));
	CHECK(!(dev.peers[0].flags & MK_WG_PEER_HAS_PRESHARED_KEY));
	CHECK_STR(mk_addr_fmt(&dev.peers[0].endpoint, buf, sizeof(buf)),
	    "[2001:db8::1]:51820");
	CHECK(dev.peers[0].last_handshake_sec == 1700000000);
	CHECK(dev.peers[0].last_handshake_nsec == 5);
	CHECK(dev.peers[0].tx_bytes == UINT64_MAX);
	CHECK(dev.peers[0].rx_bytes == 92);
	CHECK(dev.peers[0].keepalive == 25);
	REQUIRE_VOID(dev.peers[0].n_allowedips == 2);
	CHECK_STR(mk_wg_allowedip_fmt(&dev.peers[0].allowedips[1], buf,
	    sizeof(buf)), "fd00::/64");
	CHECK(dev.peers[1].flags & MK_WG_PEER_HAS_PRESHARED_KEY);
	CHECK(dev.peers[1].n_allowedips == 0);
	mk_wg_device_clear(&dev);

	/* errors come back negated */
	CHECK(mk_wg_uapi_parse("errno=-22\n\n", 11, &dev, &e, &why) == 0);
	CHECK(e == 22);
	/* truncated, missing errno, garbage, bad key, data after errno */
	CHECK(mk_wg_uapi_parse(uapi_get, strlen(uapi_get) - 1, &dev, &e,
	    &why) == -1 && errno == EPROTO);
	CHECK(mk_wg_uapi_parse("listen_port=1\n\n", 15, &dev, &e, &why) == -1);
	CHECK(mk_wg_uapi_parse("junk\nerrno=0\n\n", 14, &dev, &e, &why) == -1);
	CHECK(mk_wg_uapi_parse("public_key=00\nerrno=0\n\n", 23, &dev, &e,
	    &why) == -1);
	CHECK(mk_wg_uapi_parse("errno=0\nfwmark=1\n\n", 18, &dev, &e,
	    &why) == -1);
	CHECK(mk_wg_uapi_parse("listen_port=65536\nerrno=0\n\n", 27, &dev, &e,
	    &why) == -1);
	CHECK(dev.n_peers == 0);
}

static void
test_uapi_format(void)
{
	struct mk_wg_device dev = { 0 }, back = { 0 };
	struct mk_wg_allowedip a;
	struct mk_wg_peer *p;
	struct mk_key k;
	const char *why;
	char *req, buf[64];
	size_t len;
	int e;

	key(&dev.private_key, PRIV);
	dev.flags = MK_WG_DEV_HAS_PRIVATE_KEY | MK_WG_DEV_HAS_LISTEN_PORT |
	    MK_WG_DEV_REPLACE_PEERS;
	dev.listen_port = 1234;
	key(&k, PUB);
	REQUIRE_VOID((p = mk_wg_device_add_peer(&dev, &k)) != NULL);
	p->flags = MK_WG_PEER_REPLACE_ALLOWEDIPS | MK_WG_PEER_HAS_ENDPOINT |
	    MK_WG_PEER_HAS_KEEPALIVE | MK_WG_PEER_UPDATE_ONLY;
	CHECK(mk_addr_parse(&p->endpoint, "[fd00::1]:5", 0, 0, &why) == 0);
	p->keepalive = 0;
	CHECK(mk_wg_allowedip_parse(&a, "10.0.0.0/8", &why) == 0);
	CHECK(mk_wg_peer_add_allowedip(p, &a) == 0);
	key(&k, PUB2);
	REQUIRE_VOID((p = mk_wg_device_add_peer(&dev, &k)) != NULL);
	p->flags = MK_WG_PEER_REMOVE_ME;
	REQUIRE_VOID(mk_wg_uapi_format(&dev, &req, &len) == 0);
	CHECK(len == strlen(req));
	CHECK_STR(req,
	    "set=1\n"
	    "private_key=c809f3e5317e9575c9b5ed78b638b7ce530dabe85ddab614220241801ddf0669\n"
	    "listen_port=1234\n"
	    "replace_peers=true\n"
	    "public_key=1c8828f7137324c58b2804928624ea2326f1674537c062e251e2753ca7fcca4c\n"
	    "update_only=true\n"
	    "endpoint=[fd00::1]:5\n"
	    "persistent_keepalive_interval=0\n"
	    "allowed_ip=10.0.0.0/8\n"
	    "public_key=c53201039adba14be71f886da1d8dbe9eebded08cb111b75340078999aa9f038\n"
	    "remove=true\n"
	    "\n");
	free(req);
	/* Without replace_peers the peer's allowed IPs are replaced. */
	dev.flags &= ~MK_WG_DEV_REPLACE_PEERS;
	REQUIRE_VOID(mk_wg_uapi_format(&dev, &req, &len) == 0);
	CHECK(strstr(req, "replace_peers") == NULL);
	CHECK(strstr(req, "replace_allowed_ips=true\nallowed_ip=10.0.0.0/8\n") !=
	    NULL);
	free(req);
	/* The get parser reads what the formatter writes (less "set=1"). */
	REQUIRE_VOID(mk_wg_uapi_format(&dev, &req, &len) == 0);
	memcpy(req + len - 1, "errno=0\n\n", 10);
	CHECK(mk_wg_uapi_parse(req + 6, strlen(req + 6), &back, &e, &why) ==
	    0);
	CHECK(back.n_peers == 2 && back.listen_port == 1234);
	CHECK_STR(mk_addr_fmt(&back.peers[0].endpoint, buf, sizeof(buf)),
	    "[fd00::1]:5");
	free(req);
	mk_wg_device_clear(&back);
	mk_wg_device_clear(&dev);
}

/* ---- netlink replies, built the way the kernel builds them ---- */

static struct nlmsghdr *
genl_msg(char *buf, uint16_t type, uint16_t flags, uint32_t seq)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *g;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = flags;
	nlh->nlmsg_seq = seq;
	nlh->nlmsg_pid = 77;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = WG_CMD_GET_DEVICE;
	g->version = 1;
	return nlh;
}

static void
put_aip(struct nlmsghdr *nlh, const char *ip4, uint8_t cidr)
{
	struct nlattr *n = mnl_attr_nest_start(nlh, 0);
	struct in_addr a;

	inet_pton(AF_INET, ip4, &a);
	mnl_attr_put_u16(nlh, WGALLOWEDIP_A_FAMILY, AF_INET);
	mnl_attr_put(nlh, WGALLOWEDIP_A_IPADDR, 4, &a);
	mnl_attr_put_u8(nlh, WGALLOWEDIP_A_CIDR_MASK, cidr);
	mnl_attr_nest_end(nlh, n);
}

static size_t
dump_part(char *buf, bool first, const struct mk_key *pub, int from, int to,
    uint32_t seq)
{
	struct nlmsghdr *nlh;
	struct nlattr *peers, *peer, *aips;
	struct sockaddr_in sin = { .sin_family = AF_INET,
	    .sin_port = htons(9) };
	char ip[32];
	int i;

	nlh = genl_msg(buf, 0x20, NLM_F_MULTI, seq);
	mnl_attr_put_u32(nlh, WGDEVICE_A_IFINDEX, 5);
	mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, "wg9");
	mnl_attr_put_u16(nlh, WGDEVICE_A_LISTEN_PORT, 777);
	peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	peer = mnl_attr_nest_start(nlh, 0);
	mnl_attr_put(nlh, WGPEER_A_PUBLIC_KEY, MK_KEY_LEN, pub->b);
	if (first) {
		inet_pton(AF_INET, "192.0.2.9", &sin.sin_addr);
		mnl_attr_put(nlh, WGPEER_A_ENDPOINT, sizeof(sin), &sin);
		mnl_attr_put_u64(nlh, WGPEER_A_RX_BYTES, 1372);
	}
	aips = mnl_attr_nest_start(nlh, WGPEER_A_ALLOWEDIPS);
	for (i = from; i < to; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.0", i >> 8, i & 255);
		put_aip(nlh, ip, 24);
	}
	mnl_attr_nest_end(nlh, aips);
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, peers);
	return nlh->nlmsg_len;
}

static void
test_netlink_parse(void)
{
	static char buf[65536];
	struct mk_wg_device dev = { 0 };
	struct mk_key k, k2;
	struct nlmsghdr *nlh;
	size_t len;
	char out[64];
	int *err;

	key(&k, PUB);
	key(&k2, PUB2);
	/* one buffer: peer k split over two messages, then peer k2 */
	len = dump_part(buf, true, &k, 0, 100, 9);
	len += dump_part(buf + len, false, &k, 100, 150, 9);
	CHECK(mk_wg_nl_parse(buf, len, 9, 77, &dev) == MNL_CB_OK);
	/* the next buffer: k2, then DONE */
	len = dump_part(buf, true, &k2, 0, 1, 9);
	nlh = mnl_nlmsg_put_header(buf + len);
	nlh->nlmsg_type = NLMSG_DONE;
	nlh->nlmsg_flags = NLM_F_MULTI;
	nlh->nlmsg_seq = 9;
	nlh->nlmsg_pid = 77;
	*(int *)mnl_nlmsg_put_extra_header(nlh, sizeof(int)) = 0;
	len += nlh->nlmsg_len;
	CHECK(mk_wg_nl_parse(buf, len, 9, 77, &dev) == MNL_CB_STOP);
	CHECK_STR(dev.name, "wg9");
	CHECK(dev.ifindex == 5 && dev.listen_port == 777);
	REQUIRE_VOID(dev.n_peers == 2);
	CHECK(mk_key_equal(&dev.peers[0].public_key, &k));
	CHECK(dev.peers[0].n_allowedips == 150);
	CHECK_STR(mk_wg_allowedip_fmt(&dev.peers[0].allowedips[149], out,
	    sizeof(out)), "10.0.149.0/24");
	CHECK_STR(mk_addr_fmt(&dev.peers[0].endpoint, out, sizeof(out)),
	    "192.0.2.9:9");
	CHECK(dev.peers[0].rx_bytes == 1372);
	CHECK(dev.peers[1].n_allowedips == 1);
	mk_wg_device_clear(&dev);

	/* the kernel's error in an NLMSG_ERROR */
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = NLMSG_ERROR;
	nlh->nlmsg_seq = 9;
	err = mnl_nlmsg_put_extra_header(nlh, sizeof(struct nlmsgerr));
	*err = -ENODEV;
	CHECK(mk_wg_nl_parse(buf, nlh->nlmsg_len, 9, 77, &dev) ==
	    MNL_CB_ERROR && errno == ENODEV);
	/* a wrong sequence number is somebody else's answer */
	len = dump_part(buf, true, &k, 0, 1, 8);
	CHECK(mk_wg_nl_parse(buf, len, 9, 77, &dev) == MNL_CB_ERROR);
	mk_wg_device_clear(&dev);

	/* an allowed IP whose address does not match its family */
	nlh = genl_msg(buf, 0x20, NLM_F_MULTI, 9);
	{
		struct nlattr *peers, *peer, *aips, *aip;
		uint8_t six[16] = { 0xfd };

		peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
		peer = mnl_attr_nest_start(nlh, 0);
		mnl_attr_put(nlh, WGPEER_A_PUBLIC_KEY, MK_KEY_LEN, k.b);
		aips = mnl_attr_nest_start(nlh, WGPEER_A_ALLOWEDIPS);
		aip = mnl_attr_nest_start(nlh, 0);
		mnl_attr_put_u16(nlh, WGALLOWEDIP_A_FAMILY, AF_INET);
		mnl_attr_put(nlh, WGALLOWEDIP_A_IPADDR, 16, six);
		mnl_attr_put_u8(nlh, WGALLOWEDIP_A_CIDR_MASK, 8);
		mnl_attr_nest_end(nlh, aip);
		mnl_attr_nest_end(nlh, aips);
		mnl_attr_nest_end(nlh, peer);
		mnl_attr_nest_end(nlh, peers);
	}
	CHECK(mk_wg_nl_parse(buf, nlh->nlmsg_len, 9, 77, &dev) ==
	    MNL_CB_ERROR && errno == EPROTO);
	mk_wg_device_clear(&dev);
}

int
main(void)
{
	if (mk_key_init() != 0)
		return 1;
	test_allowedip();
	test_ifname();
	test_model();
	test_uapi_parse();
	test_uapi_format();
	test_netlink_parse();
	return t_done("wgdev");
}
