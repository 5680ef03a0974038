/* SPDX-License-Identifier: MIT */
#include "nladdr.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>

/*
 * One request with NLM_F_ACK and its answer: the kernel's errno comes back
 * in the ACK, so a refused change is never mistaken for a done one.
 * Returns 0 or -1 with errno (and *why naming the step).
 */
static int
rtnl_request(uint16_t type, uint16_t flags, int ifindex,
    const struct mk_addr *a, unsigned plen, const char **why)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct mnl_socket *nl;
	struct nlmsghdr *nlh;
	struct ifaddrmsg *ifa;
	unsigned seq, portid;
	ssize_t n;
	int rc, saved;

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	nlh->nlmsg_seq = seq = (unsigned)time(NULL);
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = (uint8_t)mk_addr_family(a);
	ifa->ifa_prefixlen = (uint8_t)plen;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;	/* as ip addr add does */
	ifa->ifa_index = (unsigned)ifindex;
	if (mk_addr_family(a) == AF_INET) {
		mnl_attr_put(nlh, IFA_LOCAL, 4, &a->sin.sin_addr);
		mnl_attr_put(nlh, IFA_ADDRESS, 4, &a->sin.sin_addr);
	} else if (mk_addr_family(a) == AF_INET6) {
		ifa->ifa_flags = IFA_F_NODAD;
		mnl_attr_put(nlh, IFA_ADDRESS, 16, &a->sin6.sin6_addr);
	} else {
		*why = "not an IP address";
		errno = EAFNOSUPPORT;
		return -1;
	}

	if ((nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC)) == NULL) {
		*why = "netlink socket";
		return -1;
	}
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		*why = "netlink bind";
		goto fail;
	}
	portid = mnl_socket_get_portid(nl);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		*why = "netlink send";
		goto fail;
	}
	for (;;) {
		n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0) {
			*why = "netlink receive";
			goto fail;
		}
		rc = mnl_cb_run(buf, (size_t)n, seq, portid, NULL, NULL);
		if (rc < 0) {
			*why = "netlink";
			goto fail;
		}
		if (rc == MNL_CB_STOP)
			break;
	}
	mnl_socket_close(nl);
	return 0;
fail:
	saved = errno;
	mnl_socket_close(nl);
	errno = saved;
	return -1;
}

int
mk_nladdr_add(int ifindex, const struct mk_addr *a, unsigned plen,
    const char **why)
{
	/* NLM_F_EXCL: an address already there is someone else's. */
	if (rtnl_request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, ifindex, a,
	    plen, why) == 0)
		return 1;
	if (errno == EEXIST)
		return 0;
	return -1;
}

int
mk_nladdr_del(int ifindex, const struct mk_addr *a, unsigned plen,
    const char **why)
{
	if (rtnl_request(RTM_DELADDR, 0, ifindex, a, plen, why) == 0)
		return 0;
	/* Gone already (EADDRNOTAVAIL), or the interface with it (ENODEV). */
	if (errno == EADDRNOTAVAIL || errno == ENODEV)
		return 0;
	return -1;
}
