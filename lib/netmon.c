/* SPDX-License-Identifier: MIT */
/* netmon: address and default-route changes, off rtnetlink (netmon.h). */
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "netmon.h"

static bool
msg_relevant(const struct nlmsghdr *nlh)
{
	const struct ifaddrmsg *ifa;
	const struct rtmsg *rtm;

	switch (nlh->nlmsg_type) {
	case RTM_NEWADDR:
	case RTM_DELADDR:
		if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*ifa)))
			return false;
		ifa = mnl_nlmsg_get_payload(nlh);
		/* loopback's addresses (magicdns adds one) are no path,
		 * nor are link-local ones, which come and go with links */
		return ifa->ifa_scope != RT_SCOPE_HOST &&
		    ifa->ifa_scope != RT_SCOPE_LINK;
	case RTM_NEWROUTE:
	case RTM_DELROUTE:
		if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*rtm)))
			return false;
		rtm = mnl_nlmsg_get_payload(nlh);
		/* the way out changed: our mapping may have too. Other
		 * routes (a tunnel's own) change no path of ours. */
		return rtm->rtm_dst_len == 0 &&
		    rtm->rtm_table == RT_TABLE_MAIN &&
		    rtm->rtm_type == RTN_UNICAST;
	default:
		return false;
	}
}

bool
mk_netmon_relevant(const void *buf, size_t len)
{
	const struct nlmsghdr *nlh = buf;
	int left = len > (size_t)INT32_MAX ? INT32_MAX : (int)len;

	for (; mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left))
		if (msg_relevant(nlh))
			return true;
	return false;
}

static void
on_settled(struct mk_loop *l, struct mk_timer *t)
{
	struct mk_netmon *m = t->arg;

	(void)l;
	m->fn(m->arg);
}

static void
on_netlink(struct mk_loop *l, struct mk_io *io, uint32_t events)
{
	struct mk_netmon *m = io->arg;
	char buf[8192];
	bool changed = false;
	ssize_t n;

	(void)events;
	for (;;) {
		n = recv(io->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* the kernel dropped events: assume the worst */
			if (errno == ENOBUFS)
				changed = true;
			break;
		}
		if (n == 0)
			break;
		if (mk_netmon_relevant(buf, (size_t)n))
			changed = true;
	}
	if (changed)
		mk_timer_in(l, &m->settle, MK_NETMON_SETTLE_US);
}

int
mk_netmon_start(struct mk_netmon *m, struct mk_loop *l, mk_netmon_fn fn,
    void *arg)
{
	struct mnl_socket *nl;
	unsigned groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR |
	    RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE;
	int e;

	memset(m, 0, sizeof(*m));
	if ((nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC |
	    SOCK_NONBLOCK)) == NULL)
		return -1;
	if (mnl_socket_bind(nl, groups, MNL_SOCKET_AUTOPID) < 0)
		goto fail;
	m->nl = nl;
	m->loop = l;
	m->fn = fn;
	m->arg = arg;
	mk_timer_init(&m->settle, on_settled, m);
	m->io.fd = mnl_socket_get_fd(nl);
	m->io.fn = on_netlink;
	m->io.arg = m;
	if (mk_loop_add(l, &m->io, EPOLLIN) != 0) {
		m->nl = NULL;
		goto fail;
	}
	return 0;
fail:
	e = errno;
	mnl_socket_close(nl);
	errno = e;
	return -1;
}

void
mk_netmon_stop(struct mk_netmon *m)
{
	if (m->nl == NULL)
		return;
	mk_timer_cancel(m->loop, &m->settle);
	mk_loop_del(m->loop, &m->io);
	mnl_socket_close(m->nl);
	m->nl = NULL;
}
