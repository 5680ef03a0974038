/* SPDX-License-Identifier: MIT */
#include "udpbatch.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>

/* Room for the larger of the two control messages. */
#define CTRL_SIZE	CMSG_SPACE(sizeof(struct in6_pktinfo))
#define GCTRL_SIZE	CMSG_SPACE(sizeof(uint16_t))

#ifndef UDP_SEGMENT
#define UDP_SEGMENT	103
#endif
/* What one GSO message may carry: the kernel's UDP_MAX_SEGMENTS was 64
 * before 6.9, and the whole must fit an IP packet's 64 KiB. */
#define GSO_MAX_SEGS	64
#define GSO_MAX_BYTES	(65535 - 40 - 8)

int
mk_udpbatch_init(struct mk_udpbatch *b, unsigned cap, size_t size)
{
	memset(b, 0, sizeof(*b));
	if (cap == 0 || cap > MK_UDPBATCH_MAX || size == 0 ||
	    size > SIZE_MAX / cap) {
		errno = EINVAL;
		return -1;
	}
	b->cap = cap;
	b->dirty = cap;
	b->size = size;
	b->buf = malloc((size_t)cap * size);
	b->msg = calloc(cap, sizeof(*b->msg));
	b->iov = calloc(cap, sizeof(*b->iov));
	b->name = calloc(cap, sizeof(*b->name));
	if (b->buf == NULL || b->msg == NULL || b->iov == NULL ||
	    b->name == NULL) {
		mk_udpbatch_free(b);
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

int
mk_udpbatch_init_pktinfo(struct mk_udpbatch *b, unsigned cap, size_t size)
{
	if (mk_udpbatch_init(b, cap, size) != 0)
		return -1;
	/* calloc: aligned for cmsghdr, as CMSG_FIRSTHDR expects */
	if ((b->ctrl = calloc(cap, CTRL_SIZE)) == NULL) {
		mk_udpbatch_free(b);
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

int
mk_udp_want_pktinfo(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int on = 1;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return -1;
	if (ss.ss_family == AF_INET6)
		return setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on,
		    sizeof(on));
	return setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof(on));
}

void
mk_udpbatch_free(struct mk_udpbatch *b)
{
	free(b->buf);
	free(b->msg);
	free(b->iov);
	free(b->name);
	free(b->ctrl);
	free(b->gmsg);
	free(b->gctrl);
	free(b->gsegs);
	memset(b, 0, sizeof(*b));
}

/* Slot i points at its own buffer again (a push_ref may have moved it). */
static void
slot_reset(struct mk_udpbatch *b, unsigned i)
{
	struct msghdr *h = &b->msg[i].msg_hdr;

	b->iov[i].iov_base = b->buf + (size_t)i * b->size;
	b->iov[i].iov_len = b->size;
	memset(h, 0, sizeof(*h));
	h->msg_iov = &b->iov[i];
	h->msg_iovlen = 1;
	h->msg_name = &b->name[i];
	h->msg_namelen = sizeof(b->name[i]);
	if (b->ctrl != NULL) {
		h->msg_control = b->ctrl + (size_t)i * CTRL_SIZE;
		h->msg_controllen = CTRL_SIZE;
	}
	b->msg[i].msg_len = 0;
}

int
mk_udpbatch_recv(struct mk_udpbatch *b, int fd)
{
	unsigned i;
	int n;

	/* the kernel writes only the headers of the datagrams it returns;
	 * the rest are still as set up */
	for (i = 0; i < b->dirty; i++)
		slot_reset(b, i);
	b->dirty = 0;
	b->n = 0;
	do
		n = recvmmsg(fd, b->msg, b->cap, MSG_DONTWAIT, NULL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
	b->n = b->dirty = (unsigned)n;
	return n;
}

uint8_t *
mk_udpbatch_get(struct mk_udpbatch *b, unsigned i, size_t *len,
    struct mk_addr *from, bool *truncated)
{
	const struct msghdr *h = &b->msg[i].msg_hdr;

	*len = b->msg[i].msg_len;
	if (from != NULL)
		mk_addr_from_sa(from, (const struct sockaddr *)&b->name[i],
		    h->msg_namelen);
	if (truncated != NULL)
		*truncated = (h->msg_flags & MSG_TRUNC) != 0;
	return b->iov[i].iov_base;
}

bool
mk_udpbatch_local(const struct mk_udpbatch *b, unsigned i,
    struct mk_udp_local *local)
{
	const struct msghdr *h = &b->msg[i].msg_hdr;
	const struct cmsghdr *c;
	struct in_pktinfo pi;
	struct in6_pktinfo pi6;

	if (b->ctrl == NULL || i >= b->n)
		return false;
	for (c = CMSG_FIRSTHDR(h); c != NULL;
	    c = CMSG_NXTHDR((struct msghdr *)h, (struct cmsghdr *)c)) {
		if (c->cmsg_level == IPPROTO_IP &&
		    c->cmsg_type == IP_PKTINFO &&
		    c->cmsg_len >= CMSG_LEN(sizeof(pi))) {
			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			mk_addr_from_v4(&local->addr,
			    (const uint8_t *)&pi.ipi_addr, 0);
			local->ifindex = (unsigned)pi.ipi_ifindex;
			return true;
		}
		if (c->cmsg_level == IPPROTO_IPV6 &&
		    c->cmsg_type == IPV6_PKTINFO &&
		    c->cmsg_len >= CMSG_LEN(sizeof(pi6))) {
			memcpy(&pi6, CMSG_DATA(c), sizeof(pi6));
			mk_addr_from_v6(&local->addr, pi6.ipi6_addr.s6_addr, 0);
			mk_addr_unmap(&local->addr);
			local->ifindex = pi6.ipi6_ifindex;
			return true;
		}
	}
	return false;
}

/*
 * The control message that sends from src into buf (CTRL_SIZE bytes):
 * its length, or 0 for an address that is neither IPv4 nor IPv6. IPv4
 * names only the source address and lets routing pick the interface (a
 * reply may leave by another one than the query came in); IPv6 keeps the
 * interface, which a link-local address needs.
 */
static size_t
src_ctrl(const struct mk_udp_local *src, uint8_t *buf)
{
	struct msghdr mh = { .msg_control = buf, .msg_controllen = CTRL_SIZE };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	struct in_pktinfo pi;
	struct in6_pktinfo pi6;

	memset(buf, 0, CTRL_SIZE);
	switch (mk_addr_family(&src->addr)) {
	case AF_INET:
		memset(&pi, 0, sizeof(pi));
		pi.ipi_spec_dst = src->addr.sin.sin_addr;
		c->cmsg_level = IPPROTO_IP;
		c->cmsg_type = IP_PKTINFO;
		c->cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(c), &pi, sizeof(pi));
		return CMSG_SPACE(sizeof(pi));
	case AF_INET6:
		memset(&pi6, 0, sizeof(pi6));
		pi6.ipi6_addr = src->addr.sin6.sin6_addr;
		pi6.ipi6_ifindex = src->ifindex;
		c->cmsg_level = IPPROTO_IPV6;
		c->cmsg_type = IPV6_PKTINFO;
		c->cmsg_len = CMSG_LEN(sizeof(pi6));
		memcpy(CMSG_DATA(c), &pi6, sizeof(pi6));
		return CMSG_SPACE(sizeof(pi6));
	default:
		return 0;
	}
}

uint8_t *
mk_udpbatch_next(struct mk_udpbatch *b)
{
	if (b->n >= b->cap)
		return NULL;
	return b->buf + (size_t)b->n * b->size;
}

/* Fill slot n's header for sending len bytes at data to to. */
static void
slot_fill(struct mk_udpbatch *b, const void *data, size_t len,
    const struct mk_addr *to)
{
	unsigned i = b->n++;
	struct msghdr *h = &b->msg[i].msg_hdr;

	if (b->dirty < b->n)
		b->dirty = b->n;
	memset(h, 0, sizeof(*h));
	b->iov[i].iov_base = (void *)(uintptr_t)data;
	b->iov[i].iov_len = len;
	memcpy(&b->name[i], &to->ss, to->len);
	h->msg_iov = &b->iov[i];
	h->msg_iovlen = 1;
	h->msg_name = &b->name[i];
	h->msg_namelen = to->len;
}

void
mk_udpbatch_push(struct mk_udpbatch *b, size_t len, const struct mk_addr *to)
{
	if (b->n >= b->cap)
		return;
	slot_fill(b, b->buf + (size_t)b->n * b->size,
	    len < b->size ? len : b->size, to);
}

int
mk_udpbatch_push_ref(struct mk_udpbatch *b, const void *data, size_t len,
    const struct mk_addr *to)
{
	if (b->n >= b->cap)
		return -1;
	slot_fill(b, data, len, to);
	return 0;
}

int
mk_udpbatch_set_src(struct mk_udpbatch *b, const struct mk_udp_local *src)
{
	struct msghdr *h;
	uint8_t *ctrl;
	size_t len;

	if (b->ctrl == NULL || b->n == 0) {
		errno = EINVAL;
		return -1;
	}
	h = &b->msg[b->n - 1].msg_hdr;
	ctrl = b->ctrl + (size_t)(b->n - 1) * CTRL_SIZE;
	if ((len = src_ctrl(src, ctrl)) == 0) {
		errno = EINVAL;
		return -1;
	}
	h->msg_control = ctrl;
	h->msg_controllen = len;
	return 0;
}

int
mk_udpbatch_gso(struct mk_udpbatch *b)
{
	if (b->gmsg != NULL)
		return 0;
	b->gmsg = calloc(b->cap, sizeof(*b->gmsg));
	b->gctrl = calloc(b->cap, GCTRL_SIZE);
	b->gsegs = calloc(b->cap, sizeof(*b->gsegs));
	if (b->gmsg == NULL || b->gctrl == NULL || b->gsegs == NULL) {
		free(b->gmsg);
		free(b->gctrl);
		free(b->gsegs);
		b->gmsg = NULL;
		b->gctrl = NULL;
		b->gsegs = NULL;
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

static void
gso_off(struct mk_udpbatch *b)
{
	free(b->gmsg);
	free(b->gctrl);
	free(b->gsegs);
	b->gmsg = NULL;
	b->gctrl = NULL;
	b->gsegs = NULL;
}

/* Whether slot i may follow slot first in one GSO message of seg-byte
 * datagrams that holds bytes so far. */
static bool
gso_joins(const struct mk_udpbatch *b, unsigned first, unsigned i,
    size_t seg, size_t bytes)
{
	const struct msghdr *f = &b->msg[first].msg_hdr;
	const struct msghdr *h = &b->msg[i].msg_hdr;
	size_t len = b->iov[i].iov_len;

	return h->msg_control == NULL && len > 0 && len <= seg &&
	    b->iov[i - 1].iov_len == seg &&	/* a short one ends a run */
	    i - first < GSO_MAX_SEGS && bytes + len <= GSO_MAX_BYTES &&
	    h->msg_namelen == f->msg_namelen &&
	    memcmp(h->msg_name, f->msg_name, f->msg_namelen) == 0;
}

/* Message k of the GSO batch: slots [first, end) as one, with its
 * UDP_SEGMENT when there is more than one. */
static void
gso_message(struct mk_udpbatch *b, unsigned k, unsigned first, unsigned end)
{
	struct msghdr *h = &b->gmsg[k].msg_hdr;
	struct cmsghdr *c;
	uint16_t seg = (uint16_t)b->iov[first].iov_len;

	*h = b->msg[first].msg_hdr;
	h->msg_iov = &b->iov[first];
	h->msg_iovlen = end - first;
	b->gsegs[k] = end - first;
	if (end - first < 2)
		return;
	h->msg_control = b->gctrl + (size_t)k * GCTRL_SIZE;
	h->msg_controllen = GCTRL_SIZE;
	c = CMSG_FIRSTHDR(h);
	c->cmsg_level = SOL_UDP;
	c->cmsg_type = UDP_SEGMENT;
	c->cmsg_len = CMSG_LEN(sizeof(seg));
	memcpy(CMSG_DATA(c), &seg, sizeof(seg));
}

/* Build the merged messages, in slot order; their count. Message k holds
 * gsegs[k] slots, from the sum of the counts before it. */
static unsigned
gso_build(struct mk_udpbatch *b)
{
	unsigned i = 0, k = 0, first;
	size_t seg, bytes;

	while (i < b->n) {
		first = i;
		seg = b->iov[i].iov_len;
		bytes = seg;
		for (i++; i < b->n && gso_joins(b, first, i, seg, bytes); i++)
			bytes += b->iov[i].iov_len;
		gso_message(b, k++, first, i);
	}
	return k;
}

/* Send slots [first, first + n) one datagram each; counts into st. */
static void
send_slots(struct mk_udpbatch *b, int fd, unsigned first, unsigned n,
    struct mk_udpbatch_sent *st)
{
	unsigned off = first, end = first + n;
	int r;

	while (off < end) {
		r = sendmmsg(fd, &b->msg[off], end - off, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			/* sendmmsg stops at the first datagram it cannot
			 * send: drop that one and go on with the rest. */
			st->dropped++;
			st->last_errno = errno;
			off++;
			continue;
		}
		st->sent += (unsigned)r;
		st->messages += (unsigned)r;
		off += (unsigned)r;
	}
}

static void
flush_gso(struct mk_udpbatch *b, int fd, struct mk_udpbatch_sent *st)
{
	unsigned n = gso_build(b), off = 0, slot = 0, segs;
	int r, e;

	while (off < n) {
		r = sendmmsg(fd, &b->gmsg[off], n - off, 0);
		if (r < 0 && errno == EINTR)
			continue;
		for (; r > 0; r--, off++) {
			st->messages++;
			st->sent += b->gsegs[off];
			slot += b->gsegs[off];
		}
		if (off == n)
			break;
		/* message off was refused: one datagram alone is dropped as
		 * without GSO; a run goes again datagram by datagram (its
		 * segment may be above the route's MTU, which single
		 * datagrams may still cross as fragments) */
		e = errno;
		segs = b->gsegs[off++];
		if (segs == 1) {
			st->dropped++;
			st->last_errno = e;
		} else {
			send_slots(b, fd, slot, segs, st);
		}
		slot += segs;
		/* no checksum offload on the way out: never again */
		if (e == EIO && segs > 1) {
			send_slots(b, fd, slot, b->n - slot, st);
			gso_off(b);
			return;
		}
	}
}

void
mk_udpbatch_flush(struct mk_udpbatch *b, int fd, struct mk_udpbatch_sent *st)
{
	memset(st, 0, sizeof(*st));
	if (b->gmsg != NULL && b->n > 1)
		flush_gso(b, fd, st);
	else
		send_slots(b, fd, 0, b->n, st);
	b->n = 0;
}
ssize_t
mk_udp_send_from(int fd, const void *data, size_t len,
    const struct mk_addr *to, const struct mk_udp_local *src)
{
	union {
		struct cmsghdr	align;
		uint8_t		buf[CTRL_SIZE];
	} ctrl;
	struct iovec iov = { .iov_base = (void *)(uintptr_t)data,
	    .iov_len = len };
	struct msghdr mh = {
		.msg_name = (void *)(uintptr_t)&to->ss,
		.msg_namelen = to->len,
		.msg_iov = &iov,
		.msg_iovlen = 1,
	};

	if (src != NULL &&
	    (mh.msg_controllen = src_ctrl(src, ctrl.buf)) > 0)
		mh.msg_control = ctrl.buf;
	return sendmsg(fd, &mh, 0);
}
