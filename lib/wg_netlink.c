/* SPDX-License-Identifier: MIT */
#include "wg_netlink.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/wireguard.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define RECV_SIZE	32768

struct mk_wg_nl {
	struct mnl_socket	*nl;
	uint32_t		 portid;
	uint32_t		 seq;
	uint16_t		 family;
	unsigned		 messages;	/* sent by the last set */
	char			*buf;		/* RECV_SIZE */
	char			*msg;		/* one request */
	size_t			 msg_size;
};

/* ---- family ---- */

static int
family_attr_cb(const struct nlattr *attr, void *data)
{
	uint16_t *id = data;

	if (mnl_attr_get_type(attr) == CTRL_ATTR_FAMILY_ID &&
	    mnl_attr_validate(attr, MNL_TYPE_U16) == 0)
		*id = mnl_attr_get_u16(attr);
	return MNL_CB_OK;
}

static int
family_cb(const struct nlmsghdr *nlh, void *data)
{
	return mnl_attr_parse(nlh, sizeof(struct genlmsghdr), family_attr_cb,
	    data) < 0 ? MNL_CB_ERROR : MNL_CB_OK;
}

static struct nlmsghdr *
genl_request(struct mk_wg_nl *nl, uint16_t type, uint8_t cmd, uint8_t version,
    uint16_t flags)
{
	struct nlmsghdr *nlh;
	struct genlmsghdr *g;

	memset(nl->msg, 0, MNL_NLMSG_HDRLEN + sizeof(*g));
	nlh = mnl_nlmsg_put_header(nl->msg);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	nlh->nlmsg_seq = ++nl->seq;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = cmd;
	g->version = version;
	return nlh;
}

/* Send nlh and run replies through cb until the ack or end of dump. */
static int
transact(struct mk_wg_nl *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	uint32_t seq = nlh->nlmsg_seq;
	ssize_t n;
	int ret;

	if (mnl_socket_sendto(nl->nl, nlh, nlh->nlmsg_len) < 0)
		return -1;
	for (;;) {
		n = mnl_socket_recvfrom(nl->nl, nl->buf, RECV_SIZE);
		if (n < 0)
			return -1;
		ret = mnl_cb_run(nl->buf, (size_t)n, seq, nl->portid, cb,
		    data);
		if (ret == MNL_CB_ERROR)
			return -1;
		if (ret == MNL_CB_STOP)
			return 0;
	}
}

int
mk_wg_nl_open(struct mk_wg_nl **out)
{
	struct mk_wg_nl *nl;
	struct nlmsghdr *nlh;
	int saved;

	*out = NULL;
	if ((nl = calloc(1, sizeof(*nl))) == NULL)
		return -1;
	nl->msg_size = (size_t)MNL_SOCKET_BUFFER_SIZE;
	nl->buf = malloc(RECV_SIZE);
	nl->msg = malloc(nl->msg_size);
	if (nl->buf == NULL || nl->msg == NULL)
		goto fail;
	if ((nl->nl = mnl_socket_open2(NETLINK_GENERIC, SOCK_CLOEXEC)) == NULL)
		goto fail;
	if (mnl_socket_bind(nl->nl, 0, MNL_SOCKET_AUTOPID) < 0)
		goto fail;
	nl->portid = mnl_socket_get_portid(nl->nl);
	nl->seq = (uint32_t)time(NULL);
	nlh = genl_request(nl, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1, NLM_F_ACK);
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, WG_GENL_NAME);
	if (transact(nl, nlh, family_cb, &nl->family) != 0)
		goto fail;
	if (nl->family == 0) {
		errno = ENOENT;
		goto fail;
	}
	*out = nl;
	return 0;
fail:
	saved = errno;
	mk_wg_nl_close(nl);
	errno = saved;
	return -1;
}

void
mk_wg_nl_close(struct mk_wg_nl *nl)
{
	if (nl == NULL)
		return;
	if (nl->nl != NULL)
		mnl_socket_close(nl->nl);
	free(nl->buf);
	if (nl->msg != NULL)
		explicit_bzero(nl->msg, nl->msg_size);
	free(nl->msg);
	free(nl);
}

unsigned
mk_wg_nl_last_messages(const struct mk_wg_nl *nl)
{
	return nl->messages;
}

/* ---- get: the reply parser ---- */

static int
bad(void)
{
	errno = EPROTO;
	return MNL_CB_ERROR;
}

static int
allowedip_attr_cb(const struct nlattr *attr, void *data)
{
	struct mk_wg_allowedip *a = data;
	uint16_t len = mnl_attr_get_payload_len(attr);

	switch (mnl_attr_get_type(attr)) {
	case WGALLOWEDIP_A_FAMILY:
		if (mnl_attr_validate(attr, MNL_TYPE_U16) != 0)
			return bad();
		a->family = mnl_attr_get_u16(attr);
		break;
	case WGALLOWEDIP_A_IPADDR:
		if (len != 4 && len != 16)
			return bad();
		memcpy(a->ip.b, mnl_attr_get_payload(attr), len);
		break;
	case WGALLOWEDIP_A_CIDR_MASK:
		if (mnl_attr_validate(attr, MNL_TYPE_U8) != 0)
			return bad();
		a->cidr = mnl_attr_get_u8(attr);
		break;
	}
	return MNL_CB_OK;
}

static int
allowedips_cb(const struct nlattr *attr, void *data)
{
	struct mk_wg_peer *p = data;
	struct mk_wg_allowedip a;
	const struct nlattr *ip;

	memset(&a, 0, sizeof(a));
	if (mnl_attr_parse_nested(attr, allowedip_attr_cb, &a) < 0)
		return MNL_CB_ERROR;
	/* The address length must match the family. */
	ip = NULL;
	mnl_attr_for_each_nested(ip, attr) {
		if (mnl_attr_get_type(ip) == WGALLOWEDIP_A_IPADDR)
			break;
	}
	if (ip == NULL ||
	    !((a.family == AF_INET && a.cidr <= 32 &&
	    mnl_attr_get_payload_len(ip) == 4) ||
	    (a.family == AF_INET6 && a.cidr <= 128 &&
	    mnl_attr_get_payload_len(ip) == 16)))
		return bad();
	if (mk_wg_peer_add_allowedip(p, &a) != 0)
		return MNL_CB_ERROR;
	return MNL_CB_OK;
}

struct peer_parse {
	struct mk_wg_peer	p;
	bool			has_key;
};

static int
peer_attr_cb(const struct nlattr *attr, void *data)
{
	struct peer_parse *pp = data;
	struct mk_wg_peer *p = &pp->p;
	uint16_t len = mnl_attr_get_payload_len(attr);
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	struct {
		int64_t sec;
		int64_t nsec;
	} ts;

	switch (mnl_attr_get_type(attr)) {
	case WGPEER_A_PUBLIC_KEY:
		if (len != MK_KEY_LEN)
			return bad();
		memcpy(p->public_key.b, mnl_attr_get_payload(attr), len);
		pp->has_key = true;
		break;
	case WGPEER_A_PRESHARED_KEY:
		if (len != MK_KEY_LEN)
			return bad();
		memcpy(p->preshared_key.b, mnl_attr_get_payload(attr), len);
		if (!sodium_is_zero(p->preshared_key.b, MK_KEY_LEN))
			p->flags |= MK_WG_PEER_HAS_PRESHARED_KEY;
		break;
	case WGPEER_A_ENDPOINT:
		if (len == sizeof(sin)) {
			memcpy(&sin, mnl_attr_get_payload(attr), sizeof(sin));
			if (sin.sin_family != AF_INET)
				return bad();
			mk_addr_from_sa(&p->endpoint,
			    (const struct sockaddr *)&sin, sizeof(sin));
		} else if (len == sizeof(sin6)) {
			memcpy(&sin6, mnl_attr_get_payload(attr), sizeof(sin6));
			if (sin6.sin6_family != AF_INET6)
				return bad();
			mk_addr_from_sa(&p->endpoint,
			    (const struct sockaddr *)&sin6, sizeof(sin6));
		} else
			return bad();
		p->flags |= MK_WG_PEER_HAS_ENDPOINT;
		break;
	case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL:
		if (mnl_attr_validate(attr, MNL_TYPE_U16) != 0)
			return bad();
		p->keepalive = mnl_attr_get_u16(attr);
		p->flags |= MK_WG_PEER_HAS_KEEPALIVE;
		break;
	case WGPEER_A_LAST_HANDSHAKE_TIME:
		if (len != sizeof(ts))
			return bad();
		memcpy(&ts, mnl_attr_get_payload(attr), sizeof(ts));
		p->last_handshake_sec = ts.sec;
		p->last_handshake_nsec = ts.nsec;
		break;
	case WGPEER_A_RX_BYTES:
		if (mnl_attr_validate(attr, MNL_TYPE_U64) != 0)
			return bad();
		p->rx_bytes = mnl_attr_get_u64(attr);
		break;
	case WGPEER_A_TX_BYTES:
		if (mnl_attr_validate(attr, MNL_TYPE_U64) != 0)
			return bad();
		p->tx_bytes = mnl_attr_get_u64(attr);
		break;
	case WGPEER_A_ALLOWEDIPS:
		return mnl_attr_parse_nested(attr, allowedips_cb, p);
	}
	return MNL_CB_OK;
}

static void
peer_free(struct mk_wg_peer *p)
{
	free(p->allowedips);
	explicit_bzero(p, sizeof(*p));
}

/* Append the parsed peer, or merge it into the last one when the kernel
 * split that peer's allowed IPs across two messages. */
static int
take_peer(struct mk_wg_device *dev, struct peer_parse *pp)
{
	struct mk_wg_peer *last, *np;
	size_t i;

	last = dev->n_peers ? &dev->peers[dev->n_peers - 1] : NULL;
	if (last != NULL && mk_key_equal(&last->public_key,
	    &pp->p.public_key)) {
		for (i = 0; i < pp->p.n_allowedips; i++)
			if (mk_wg_peer_add_allowedip(last,
			    &pp->p.allowedips[i]) != 0)
				return -1;
		peer_free(&pp->p);
		return 0;
	}
	if ((np = mk_wg_device_add_peer(dev, &pp->p.public_key)) == NULL)
		return -1;
	*np = pp->p;
	memset(&pp->p, 0, sizeof(pp->p));
	return 0;
}

static int
peers_cb(const struct nlattr *attr, void *data)
{
	struct mk_wg_device *dev = data;
	struct peer_parse pp;

	memset(&pp, 0, sizeof(pp));
	if (mnl_attr_parse_nested(attr, peer_attr_cb, &pp) < 0 ||
	    !pp.has_key) {
		peer_free(&pp.p);
		if (!pp.has_key)
			errno = EPROTO;
		return MNL_CB_ERROR;
	}
	if (take_peer(dev, &pp) != 0) {
		peer_free(&pp.p);
		return MNL_CB_ERROR;
	}
	return MNL_CB_OK;
}

static int
device_attr_cb(const struct nlattr *attr, void *data)
{
	struct mk_wg_device *dev = data;
	uint16_t len = mnl_attr_get_payload_len(attr);

	switch (mnl_attr_get_type(attr)) {
	case WGDEVICE_A_IFINDEX:
		if (mnl_attr_validate(attr, MNL_TYPE_U32) != 0)
			return bad();
		dev->ifindex = mnl_attr_get_u32(attr);
		break;
	case WGDEVICE_A_IFNAME:
		if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) != 0 ||
		    strlen(mnl_attr_get_str(attr)) >= sizeof(dev->name))
			return bad();
		strcpy(dev->name, mnl_attr_get_str(attr));
		break;
	case WGDEVICE_A_PRIVATE_KEY:
		if (len != MK_KEY_LEN)
			return bad();
		memcpy(dev->private_key.b, mnl_attr_get_payload(attr), len);
		if (!sodium_is_zero(dev->private_key.b, MK_KEY_LEN))
			dev->flags |= MK_WG_DEV_HAS_PRIVATE_KEY;
		break;
	case WGDEVICE_A_PUBLIC_KEY:
		if (len != MK_KEY_LEN)
			return bad();
		memcpy(dev->public_key.b, mnl_attr_get_payload(attr), len);
		if (!sodium_is_zero(dev->public_key.b, MK_KEY_LEN))
			dev->flags |= MK_WG_DEV_HAS_PUBLIC_KEY;
		break;
	case WGDEVICE_A_LISTEN_PORT:
		if (mnl_attr_validate(attr, MNL_TYPE_U16) != 0)
			return bad();
		dev->listen_port = mnl_attr_get_u16(attr);
		dev->flags |= MK_WG_DEV_HAS_LISTEN_PORT;
		break;
	case WGDEVICE_A_FWMARK:
		if (mnl_attr_validate(attr, MNL_TYPE_U32) != 0)
			return bad();
		dev->fwmark = mnl_attr_get_u32(attr);
		dev->flags |= MK_WG_DEV_HAS_FWMARK;
		break;
	case WGDEVICE_A_PEERS:
		return mnl_attr_parse_nested(attr, peers_cb, dev);
	}
	return MNL_CB_OK;
}

static int
device_cb(const struct nlmsghdr *nlh, void *data)
{
	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(struct genlmsghdr)))
		return bad();
	return mnl_attr_parse(nlh, sizeof(struct genlmsghdr), device_attr_cb,
	    data) < 0 ? MNL_CB_ERROR : MNL_CB_OK;
}

int
mk_wg_nl_parse(const void *buf, size_t len, uint32_t seq, uint32_t portid,
    struct mk_wg_device *dev)
{
	const struct nlmsghdr *nlh;
	size_t off = 0, n;

	/* libmnl compares nlmsg_len as an int: a length past 2^31 would
	 * pass its check and be read beyond the buffer. */
	if (len > INT32_MAX) {
		errno = EMSGSIZE;
		return MNL_CB_ERROR;
	}
	while (len - off >= sizeof(*nlh)) {
		nlh = (const struct nlmsghdr *)((const char *)buf + off);
		n = nlh->nlmsg_len;
		if (n < sizeof(*nlh) || n > len - off)
			return bad();
		off += NLMSG_ALIGN(n);
		if (off > len)
			break;
	}
	return mnl_cb_run(buf, len, seq, portid, device_cb, dev);
}

int
mk_wg_nl_get(struct mk_wg_nl *nl, const char *name, struct mk_wg_device *dev,
    const char **why)
{
	struct nlmsghdr *nlh;
	uint32_t seq;
	ssize_t n;
	int ret;

	mk_wg_device_clear(dev);
	/* No NLM_F_ACK on a dump: errors come in NLMSG_DONE, and an extra
	 * ack would be left for the next request to trip over. */
	nlh = genl_request(nl, nl->family, WG_CMD_GET_DEVICE, WG_GENL_VERSION,
	    NLM_F_DUMP);
	mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, name);
	seq = nlh->nlmsg_seq;
	if (mnl_socket_sendto(nl->nl, nlh, nlh->nlmsg_len) < 0) {
		*why = "cannot send to the kernel";
		return -1;
	}
	do {
		n = mnl_socket_recvfrom(nl->nl, nl->buf, RECV_SIZE);
		if (n < 0) {
			*why = "cannot receive from the kernel";
			goto fail;
		}
		ret = mk_wg_nl_parse(nl->buf, (size_t)n, seq, nl->portid, dev);
		/* A dump interrupted by a concurrent change still holds
		 * what was there; work with it, as wg does. */
		if (ret == MNL_CB_ERROR && errno != EINTR) {
			*why = "the kernel refused to report";
			goto fail;
		}
	} while (ret != MNL_CB_STOP);
	if (dev->name[0] == '\0')
		snprintf(dev->name, sizeof(dev->name), "%s", name);
	return 0;
fail:
	mk_wg_device_clear(dev);
	return -1;
}

/* ---- set ---- */

static bool
put_allowedip(struct nlmsghdr *nlh, size_t size,
    const struct mk_wg_allowedip *a)
{
	struct nlattr *nest;

	if ((nest = mnl_attr_nest_start_check(nlh, size, 0)) == NULL)
		return false;
	if (!mnl_attr_put_u16_check(nlh, size, WGALLOWEDIP_A_FAMILY,
	    a->family) ||
	    !mnl_attr_put_check(nlh, size, WGALLOWEDIP_A_IPADDR,
	    a->family == AF_INET ? 4 : 16, a->ip.b) ||
	    !mnl_attr_put_u8_check(nlh, size, WGALLOWEDIP_A_CIDR_MASK,
	    a->cidr)) {
		mnl_attr_nest_cancel(nlh, nest);
		return false;
	}
	mnl_attr_nest_end(nlh, nest);
	return true;
}

/* The parts of a peer sent only with its first chunk. */
static bool
put_peer_head(struct nlmsghdr *nlh, size_t size, const struct mk_wg_peer *p)
{
	if ((p->flags & MK_WG_PEER_HAS_PRESHARED_KEY) &&
	    !mnl_attr_put_check(nlh, size, WGPEER_A_PRESHARED_KEY, MK_KEY_LEN,
	    p->preshared_key.b))
		return false;
	if ((p->flags & MK_WG_PEER_HAS_ENDPOINT) && p->endpoint.len != 0 &&
	    !mnl_attr_put_check(nlh, size, WGPEER_A_ENDPOINT,
	    mk_addr_family(&p->endpoint) == AF_INET ?
	    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6),
	    &p->endpoint.sa))
		return false;
	if ((p->flags & MK_WG_PEER_HAS_KEEPALIVE) &&
	    !mnl_attr_put_u16_check(nlh, size,
	    WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, p->keepalive))
		return false;
	return true;
}

/*
 * Put as much of peer p, from allowed IP *ai on, as fits. Returns 1 when
 * all of it went in, 0 when the message is full (*ai says where to go on;
 * nothing of p went in if *ai did not move and it was 0).
 */
static int
put_peer(struct nlmsghdr *nlh, size_t size, const struct mk_wg_peer *p,
    size_t *ai)
{
	struct nlattr *peer, *aips;
	uint32_t flags;
	bool first = *ai == 0;

	if ((peer = mnl_attr_nest_start_check(nlh, size, 0)) == NULL)
		return 0;
	if (!mnl_attr_put_check(nlh, size, WGPEER_A_PUBLIC_KEY, MK_KEY_LEN,
	    p->public_key.b))
		goto cancel;
	flags = p->flags & (MK_WG_PEER_REMOVE_ME | MK_WG_PEER_UPDATE_ONLY);
	if (first) {
		flags |= p->flags & MK_WG_PEER_REPLACE_ALLOWEDIPS;
		if (!put_peer_head(nlh, size, p))
			goto cancel;
	}
	if (flags != 0 && !mnl_attr_put_u32_check(nlh, size, WGPEER_A_FLAGS,
	    flags))
		goto cancel;
	if ((p->flags & MK_WG_PEER_REMOVE_ME) || *ai >= p->n_allowedips) {
		mnl_attr_nest_end(nlh, peer);
		return 1;
	}
	if ((aips = mnl_attr_nest_start_check(nlh, size,
	    WGPEER_A_ALLOWEDIPS)) == NULL)
		goto cancel;
	while (*ai < p->n_allowedips) {
		if (!put_allowedip(nlh, size, &p->allowedips[*ai]))
			break;
		(*ai)++;
	}
	mnl_attr_nest_end(nlh, aips);
	mnl_attr_nest_end(nlh, peer);
	return *ai == p->n_allowedips;
cancel:
	mnl_attr_nest_cancel(nlh, peer);
	return 0;
}

static void
put_device_head(struct nlmsghdr *nlh, const struct mk_wg_device *dev)
{
	if (dev->flags & MK_WG_DEV_HAS_PRIVATE_KEY)
		mnl_attr_put(nlh, WGDEVICE_A_PRIVATE_KEY, MK_KEY_LEN,
		    dev->private_key.b);
	if (dev->flags & MK_WG_DEV_HAS_LISTEN_PORT)
		mnl_attr_put_u16(nlh, WGDEVICE_A_LISTEN_PORT,
		    dev->listen_port);
	if (dev->flags & MK_WG_DEV_HAS_FWMARK)
		mnl_attr_put_u32(nlh, WGDEVICE_A_FWMARK, dev->fwmark);
	if (dev->flags & MK_WG_DEV_REPLACE_PEERS)
		mnl_attr_put_u32(nlh, WGDEVICE_A_FLAGS,
		    WGDEVICE_F_REPLACE_PEERS);
}

int
mk_wg_nl_set(struct mk_wg_nl *nl, const char *name,
    const struct mk_wg_device *dev, const char **why)
{
	struct nlmsghdr *nlh;
	struct nlattr *peers;
	size_t pi = 0, ai = 0, before, empty, size = nl->msg_size;
	bool first = true;

	nl->messages = 0;
	do {
		nlh = genl_request(nl, nl->family, WG_CMD_SET_DEVICE,
		    WG_GENL_VERSION, NLM_F_ACK);
		mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, name);
		/* Only the first message carries the device and its
		 * REPLACE_PEERS flag, or later ones would undo earlier. */
		if (first)
			put_device_head(nlh, dev);
		if (pi < dev->n_peers) {
			peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
			empty = nlh->nlmsg_len;
			while (pi < dev->n_peers) {
				before = ai;
				if (put_peer(nlh, size, &dev->peers[pi],
				    &ai) == 1) {
					pi++;
					ai = 0;
					continue;
				}
				if (ai == before && nlh->nlmsg_len == empty) {
					/* not even a part of one peer fits */
					errno = EMSGSIZE;
					*why = "peer too large for a message";
					return -1;
				}
				break;
			}
			mnl_attr_nest_end(nlh, peers);
		}
		nl->messages++;
		if (transact(nl, nlh, NULL, NULL) != 0) {
			explicit_bzero(nl->msg, nl->msg_size);
			*why = "the kernel refused the configuration";
			return -1;
		}
		first = false;
	} while (pi < dev->n_peers);
	explicit_bzero(nl->msg, nl->msg_size);
	return 0;
}
