/* SPDX-License-Identifier: MIT */
/* lib/netmon: which rtnetlink messages count as a network change. */
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <string.h>

#include "netmon.h"
#include "t.h"

/* Append one message of type with payload to buf at *off. */
static void
put(char *buf, size_t *off, uint16_t type, const void *payload, size_t n)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf + *off);

	nlh->nlmsg_type = type;
	memcpy(mnl_nlmsg_put_extra_header(nlh, n), payload, n);
	*off += nlh->nlmsg_len;
}

static void
test_relevant(void)
{
	char buf[4096] __attribute__((aligned(4)));
	struct ifaddrmsg ifa = { .ifa_family = 2, .ifa_scope = RT_SCOPE_UNIVERSE };
	struct rtmsg rtm = { .rtm_family = 2, .rtm_table = RT_TABLE_MAIN,
	    .rtm_type = RTN_UNICAST };
	size_t off;

	memset(buf, 0, sizeof(buf));
	off = 0;
	put(buf, &off, RTM_NEWADDR, &ifa, sizeof(ifa));
	CHECK(mk_netmon_relevant(buf, off));
	off = 0;
	put(buf, &off, RTM_DELADDR, &ifa, sizeof(ifa));
	CHECK(mk_netmon_relevant(buf, off));

	/* loopback's and link-local addresses are no path */
	off = 0;
	ifa.ifa_scope = RT_SCOPE_HOST;
	put(buf, &off, RTM_NEWADDR, &ifa, sizeof(ifa));
	ifa.ifa_scope = RT_SCOPE_LINK;
	put(buf, &off, RTM_NEWADDR, &ifa, sizeof(ifa));
	CHECK(!mk_netmon_relevant(buf, off));

	/* a default route in main: yes; a tunnel's /10, or another table:
	 * no; a batch counts when any message in it does */
	off = 0;
	rtm.rtm_dst_len = 10;
	put(buf, &off, RTM_NEWROUTE, &rtm, sizeof(rtm));
	rtm.rtm_dst_len = 0;
	rtm.rtm_table = RT_TABLE_LOCAL;
	put(buf, &off, RTM_NEWROUTE, &rtm, sizeof(rtm));
	CHECK(!mk_netmon_relevant(buf, off));
	rtm.rtm_table = RT_TABLE_MAIN;
	put(buf, &off, RTM_DELROUTE, &rtm, sizeof(rtm));
	CHECK(mk_netmon_relevant(buf, off));

	/* links, and messages too short for their header, are not */
	off = 0;
	ifa.ifa_scope = RT_SCOPE_UNIVERSE;
	put(buf, &off, RTM_NEWLINK, &rtm, sizeof(rtm));
	put(buf, &off, RTM_NEWADDR, &ifa, 2);
	CHECK(!mk_netmon_relevant(buf, off));
	/* a truncated buffer ends the walk */
	CHECK(!mk_netmon_relevant(buf, 7));
	CHECK(!mk_netmon_relevant(buf, 0));
}

int
main(void)
{
	test_relevant();
	return t_done("netmon");
}
