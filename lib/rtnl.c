/* SPDX-License-Identifier: MIT */
#include "rtnl.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* Dump replies may come in messages up to 32 KiB when the receive buffer
 * allows it; requests are small. */
#define RECV_SIZE	32768

struct mk_rtnl {
	struct mnl_socket	*nl;
	uint32_t		 portid;
	uint32_t		 seq;
	char			*buf;
};

int
mk_rtnl_open(struct mk_rtnl **out)
{
	struct mk_rtnl *r;
	int saved;

	*out = NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return -1;
	if ((r->buf = malloc(RECV_SIZE)) == NULL)
		goto fail;
	if ((r->nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC)) == NULL)
		goto fail;
	if (mnl_socket_bind(r->nl, 0, MNL_SOCKET_AUTOPID) < 0)
		goto fail;
	r->portid = mnl_socket_get_portid(r->nl);
	r->seq = (uint32_t)time(NULL);
	*out = r;
	return 0;
fail:
	saved = errno;
	mk_rtnl_close(r);
	errno = saved;
	return -1;
}

void
mk_rtnl_close(struct mk_rtnl *r)
{
	if (r == NULL)
		return;
	if (r->nl != NULL)
		mnl_socket_close(r->nl);
	free(r->buf);
	free(r);
}

static struct nlmsghdr *
request(struct mk_rtnl *r, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *nlh;

	nlh = mnl_nlmsg_put_header(r->buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	nlh->nlmsg_seq = ++r->seq;
	return nlh;
}

/*
 * Send nlh and run the replies through cb until the acknowledgement (or
 * the end of a dump). The kernel's error comes back as -1/errno.
 */
static int
transact(struct mk_rtnl *r, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	uint32_t seq = nlh->nlmsg_seq;
	ssize_t n;
	int ret;

	if (mnl_socket_sendto(r->nl, nlh, nlh->nlmsg_len) < 0)
		return -1;
	for (;;) {
		n = mnl_socket_recvfrom(r->nl, r->buf, RECV_SIZE);
		if (n < 0)
			return -1;
		ret = mnl_cb_run(r->buf, (size_t)n, seq, r->portid, cb, data);
		if (ret == MNL_CB_ERROR) {
			/* A dump interrupted by a concurrent change still
			 * gave us what existed; we take it, as wg does. */
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (ret == MNL_CB_STOP)
			return 0;
	}
}

int
mk_rtnl_link_add(struct mk_rtnl *r, const char *name, const char *kind)
{
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifm;
	struct nlattr *linkinfo;

	nlh = request(r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK);
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, kind);
	mnl_attr_nest_end(nlh, linkinfo);
	return transact(r, nlh, NULL, NULL);
}

int
mk_rtnl_link_del(struct mk_rtnl *r, uint32_t ifindex)
{
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifm;

	nlh = request(r, RTM_DELLINK, NLM_F_ACK);
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	ifm->ifi_index = (int)ifindex;
	return transact(r, nlh, NULL, NULL);
}

int
mk_rtnl_link_set(struct mk_rtnl *r, uint32_t ifindex, int up, uint32_t mtu)
{
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifm;

	nlh = request(r, RTM_NEWLINK, NLM_F_ACK);
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	ifm->ifi_index = (int)ifindex;
	if (up >= 0) {
		ifm->ifi_change = IFF_UP;
		ifm->ifi_flags = up ? IFF_UP : 0;
	}
	if (mtu != 0)
		mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
	return transact(r, nlh, NULL, NULL);
}

struct link_data {
	struct mk_rtnl_link	*link;
	const char		*name;
	const char		*kind;
	/* for link_names */
	char			**names;
	size_t			 n;
	size_t			 cap;
	size_t			 bytes;
};

static int
linkinfo_cb(const struct nlattr *attr, void *data)
{
	struct mk_rtnl_link *l = data;

	if (mnl_attr_get_type(attr) == IFLA_INFO_KIND &&
	    mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0) {
		strncpy(l->kind, mnl_attr_get_str(attr), sizeof(l->kind) - 1);
		l->kind[sizeof(l->kind) - 1] = '\0';
	}
	return MNL_CB_OK;
}

struct link_attrs {
	struct mk_rtnl_link	 l;
	const char		*name;
};

static int
link_attr_cb(const struct nlattr *attr, void *data)
{
	struct link_attrs *la = data;

	switch (mnl_attr_get_type(attr)) {
	case IFLA_IFNAME:
		if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
			la->name = mnl_attr_get_str(attr);
		break;
	case IFLA_MTU:
		if (mnl_attr_validate(attr, MNL_TYPE_U32) == 0)
			la->l.mtu = mnl_attr_get_u32(attr);
		break;
	case IFLA_LINKINFO:
		return mnl_attr_parse_nested(attr, linkinfo_cb, &la->l);
	}
	return MNL_CB_OK;
}

static int
parse_link(const struct nlmsghdr *nlh, struct link_attrs *la)
{
	const struct ifinfomsg *ifm;

	memset(la, 0, sizeof(*la));
	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*ifm)))
		return MNL_CB_ERROR;
	ifm = mnl_nlmsg_get_payload(nlh);
	la->l.ifindex = (uint32_t)ifm->ifi_index;
	la->l.flags = ifm->ifi_flags;
	return mnl_attr_parse(nlh, sizeof(*ifm), link_attr_cb, la);
}

static int
link_get_cb(const struct nlmsghdr *nlh, void *data)
{
	struct link_data *d = data;
	struct link_attrs la;

	if (parse_link(nlh, &la) < 0)
		return MNL_CB_ERROR;
	*d->link = la.l;
	return MNL_CB_OK;
}

int
mk_rtnl_link_get(struct mk_rtnl *r, const char *name,
    struct mk_rtnl_link *out)
{
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifm;
	struct link_data d = { .link = out };

	memset(out, 0, sizeof(*out));
	if (strlen(name) >= IFNAMSIZ) {
		errno = ENODEV;
		return -1;
	}
	nlh = request(r, RTM_GETLINK, NLM_F_ACK);
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	if (transact(r, nlh, link_get_cb, &d) != 0)
		return -1;
	if (out->ifindex == 0) {
		errno = ENODEV;
		return -1;
	}
	return 0;
}

static int
link_names_cb(const struct nlmsghdr *nlh, void *data)
{
	struct link_data *d = data;
	struct link_attrs la;
	char **grown;

	if (parse_link(nlh, &la) < 0)
		return MNL_CB_ERROR;
	if (la.name == NULL || strcmp(la.l.kind, d->kind) != 0)
		return MNL_CB_OK;
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 8;
		grown = realloc(d->names, d->cap * sizeof(*grown));
		if (grown == NULL)
			return MNL_CB_ERROR;
		d->names = grown;
	}
	if ((d->names[d->n] = strdup(la.name)) == NULL)
		return MNL_CB_ERROR;
	d->bytes += strlen(la.name) + 1;
	d->n++;
	return MNL_CB_OK;
}

int
mk_rtnl_link_names(struct mk_rtnl *r, const char *kind, char ***names,
    size_t *n)
{
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifm;
	struct link_data d = { .kind = kind };
	char **out = NULL, *s;
	size_t i;
	int rc = -1, saved;

	nlh = request(r, RTM_GETLINK, NLM_F_DUMP);
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	if (transact(r, nlh, link_names_cb, &d) != 0)
		goto out;
	/* One allocation: the pointers, then the strings. */
	out = malloc((d.n + 1) * sizeof(*out) + d.bytes);
	if (out == NULL)
		goto out;
	s = (char *)(out + d.n + 1);
	for (i = 0; i < d.n; i++) {
		out[i] = s;
		s = stpcpy(s, d.names[i]) + 1;
	}
	out[d.n] = NULL;
	*names = out;
	*n = d.n;
	rc = 0;
out:
	saved = errno;
	for (i = 0; i < d.n; i++)
		free(d.names[i]);
	free(d.names);
	errno = saved;
	return rc;
}

/* ---- addresses ---- */

static size_t
family_len(uint16_t family)
{
	return family == AF_INET ? 4 : 16;
}

static int
addr_req(struct mk_rtnl *r, uint16_t type, uint16_t flags, uint32_t ifindex,
    const struct mk_rtnl_prefix *p)
{
	struct nlmsghdr *nlh;
	struct ifaddrmsg *ifa;
	size_t alen;

	if (p->family != AF_INET && p->family != AF_INET6) {
		errno = EAFNOSUPPORT;
		return -1;
	}
	alen = family_len(p->family);
	nlh = request(r, type, flags | NLM_F_ACK);
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = (uint8_t)p->family;
	ifa->ifa_prefixlen = p->len;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = ifindex;
	mnl_attr_put(nlh, IFA_LOCAL, alen, p->b);
	mnl_attr_put(nlh, IFA_ADDRESS, alen, p->b);
	return transact(r, nlh, NULL, NULL);
}

int
mk_rtnl_addr_add(struct mk_rtnl *r, uint32_t ifindex,
    const struct mk_rtnl_prefix *p)
{
	return addr_req(r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, ifindex, p);
}

int
mk_rtnl_addr_del(struct mk_rtnl *r, uint32_t ifindex,
    const struct mk_rtnl_prefix *p)
{
	return addr_req(r, RTM_DELADDR, 0, ifindex, p);
}

struct prefix_list {
	struct mk_rtnl_prefix	*v;
	size_t			 n;
	size_t			 cap;
	uint32_t		 ifindex;
	uint32_t		 table;
};

static int
list_push(struct prefix_list *l, const struct mk_rtnl_prefix *p)
{
	struct mk_rtnl_prefix *grown;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		grown = realloc(l->v, l->cap * sizeof(*grown));
		if (grown == NULL)
			return -1;
		l->v = grown;
	}
	l->v[l->n++] = *p;
	return 0;
}

struct addr_attrs {
	const struct nlattr *local;
	const struct nlattr *address;
};

static int
addr_attr_cb(const struct nlattr *attr, void *data)
{
	struct addr_attrs *aa = data;

	if (mnl_attr_get_type(attr) == IFA_LOCAL)
		aa->local = attr;
	else if (mnl_attr_get_type(attr) == IFA_ADDRESS)
		aa->address = attr;
	return MNL_CB_OK;
}

static int
addr_list_cb(const struct nlmsghdr *nlh, void *data)
{
	struct prefix_list *l = data;
	const struct ifaddrmsg *ifa;
	struct addr_attrs aa = { NULL, NULL };
	const struct nlattr *a;
	struct mk_rtnl_prefix p;

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*ifa)))
		return MNL_CB_ERROR;
	ifa = mnl_nlmsg_get_payload(nlh);
	if (ifa->ifa_index != l->ifindex ||
	    (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6))
		return MNL_CB_OK;
	if (mnl_attr_parse(nlh, sizeof(*ifa), addr_attr_cb, &aa) < 0)
		return MNL_CB_ERROR;
	a = aa.local ? aa.local : aa.address;
	memset(&p, 0, sizeof(p));
	p.family = ifa->ifa_family;
	p.len = ifa->ifa_prefixlen;
	if (a == NULL || mnl_attr_get_payload_len(a) != family_len(p.family))
		return MNL_CB_OK;
	memcpy(p.b, mnl_attr_get_payload(a), family_len(p.family));
	return list_push(l, &p) == 0 ? MNL_CB_OK : MNL_CB_ERROR;
}

int
mk_rtnl_addr_list(struct mk_rtnl *r, uint32_t ifindex,
    struct mk_rtnl_prefix **out, size_t *n)
{
	struct nlmsghdr *nlh;
	struct ifaddrmsg *ifa;
	struct prefix_list l = { .ifindex = ifindex };
	int saved;

	nlh = request(r, RTM_GETADDR, NLM_F_DUMP);
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_UNSPEC;
	if (transact(r, nlh, addr_list_cb, &l) != 0) {
		saved = errno;
		free(l.v);
		errno = saved;
		return -1;
	}
	*out = l.v;
	*n = l.n;
	return 0;
}

/* ---- routes ---- */

static int
route_req(struct mk_rtnl *r, uint16_t type, uint16_t flags, uint32_t ifindex,
    const struct mk_rtnl_prefix *p)
{
	struct nlmsghdr *nlh;
	struct rtmsg *rtm;
	uint32_t table = p->table ? p->table : MK_RTNL_TABLE_MAIN;

	if (p->family != AF_INET && p->family != AF_INET6) {
		errno = EAFNOSUPPORT;
		return -1;
	}
	nlh = request(r, type, flags | NLM_F_ACK);
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = (uint8_t)p->family;
	rtm->rtm_dst_len = p->len;
	rtm->rtm_table = table < 256 ? (uint8_t)table : RT_TABLE_UNSPEC;
	rtm->rtm_protocol = p->proto ? p->proto : MK_RTNL_PROTO;
	rtm->rtm_scope = RT_SCOPE_LINK;
	rtm->rtm_type = RTN_UNICAST;
	if (type == RTM_DELROUTE)
		rtm->rtm_scope = RT_SCOPE_NOWHERE;
	mnl_attr_put_u32(nlh, RTA_TABLE, table);
	mnl_attr_put(nlh, RTA_DST, family_len(p->family), p->b);
	mnl_attr_put_u32(nlh, RTA_OIF, ifindex);
	return transact(r, nlh, NULL, NULL);
}

int
mk_rtnl_route_add(struct mk_rtnl *r, uint32_t ifindex,
    const struct mk_rtnl_prefix *p)
{
	return route_req(r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, ifindex,
	    p);
}

int
mk_rtnl_route_del(struct mk_rtnl *r, uint32_t ifindex,
    const struct mk_rtnl_prefix *p)
{
	return route_req(r, RTM_DELROUTE, 0, ifindex, p);
}

struct route_attrs {
	const struct nlattr	*dst;
	uint32_t		 oif;
	uint32_t		 table;
	bool			 multipath;
};

static int
route_attr_cb(const struct nlattr *attr, void *data)
{
	struct route_attrs *ra = data;

	switch (mnl_attr_get_type(attr)) {
	case RTA_DST:
		ra->dst = attr;
		break;
	case RTA_OIF:
		if (mnl_attr_validate(attr, MNL_TYPE_U32) == 0)
			ra->oif = mnl_attr_get_u32(attr);
		break;
	case RTA_TABLE:
		if (mnl_attr_validate(attr, MNL_TYPE_U32) == 0)
			ra->table = mnl_attr_get_u32(attr);
		break;
	case RTA_MULTIPATH:
		ra->multipath = true;
		break;
	}
	return MNL_CB_OK;
}

static int
route_list_cb(const struct nlmsghdr *nlh, void *data)
{
	struct prefix_list *l = data;
	const struct rtmsg *rtm;
	struct route_attrs ra;
	struct mk_rtnl_prefix p;

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*rtm)))
		return MNL_CB_ERROR;
	rtm = mnl_nlmsg_get_payload(nlh);
	if ((rtm->rtm_family != AF_INET && rtm->rtm_family != AF_INET6) ||
	    rtm->rtm_type != RTN_UNICAST)
		return MNL_CB_OK;
	memset(&ra, 0, sizeof(ra));
	ra.table = rtm->rtm_table;
	if (mnl_attr_parse(nlh, sizeof(*rtm), route_attr_cb, &ra) < 0)
		return MNL_CB_ERROR;
	if (ra.multipath || ra.oif != l->ifindex ||
	    ra.table == RT_TABLE_LOCAL ||
	    (l->table != 0 && ra.table != l->table))
		return MNL_CB_OK;
	memset(&p, 0, sizeof(p));
	p.family = rtm->rtm_family;
	p.len = rtm->rtm_dst_len;
	p.proto = rtm->rtm_protocol;
	p.table = ra.table;
	if (ra.dst != NULL) {
		if (mnl_attr_get_payload_len(ra.dst) != family_len(p.family))
			return MNL_CB_OK;
		memcpy(p.b, mnl_attr_get_payload(ra.dst),
		    family_len(p.family));
	}
	return list_push(l, &p) == 0 ? MNL_CB_OK : MNL_CB_ERROR;
}

int
mk_rtnl_route_list(struct mk_rtnl *r, uint32_t ifindex, uint32_t table,
    struct mk_rtnl_prefix **out, size_t *n)
{
	struct nlmsghdr *nlh;
	struct rtmsg *rtm;
	struct prefix_list l = { .ifindex = ifindex, .table = table };
	int saved;

	nlh = request(r, RTM_GETROUTE, NLM_F_DUMP);
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_UNSPEC;
	if (transact(r, nlh, route_list_cb, &l) != 0) {
		saved = errno;
		free(l.v);
		errno = saved;
		return -1;
	}
	*out = l.v;
	*n = l.n;
	return 0;
}

void
mk_rtnl_prefix_mask(struct mk_rtnl_prefix *p)
{
	size_t alen = family_len(p->family), i;
	unsigned bits = p->len;

	for (i = 0; i < alen; i++) {
		if (bits >= 8) {
			bits -= 8;
			continue;
		}
		p->b[i] &= (uint8_t)(0xff00U >> bits);
		bits = 0;
	}
}

bool
mk_rtnl_prefix_equal(const struct mk_rtnl_prefix *a,
    const struct mk_rtnl_prefix *b)
{
	return a->family == b->family && a->len == b->len &&
	    memcmp(a->b, b->b, family_len(a->family)) == 0;
}
