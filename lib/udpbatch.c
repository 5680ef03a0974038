/* SPDX-License-Identifier: MIT */
#include "udpbatch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

void
mk_udpbatch_free(struct mk_udpbatch *b)
{
	free(b->buf);
	free(b->msg);
	free(b->iov);
	free(b->name);
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
	b->msg[i].msg_len = 0;
}

int
mk_udpbatch_recv(struct mk_udpbatch *b, int fd)
{
	unsigned i;
	int n;

	for (i = 0; i < b->cap; i++)
		slot_reset(b, i);
	b->n = 0;
	do
		n = recvmmsg(fd, b->msg, b->cap, MSG_DONTWAIT, NULL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
	b->n = (unsigned)n;
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

void
mk_udpbatch_flush(struct mk_udpbatch *b, int fd, struct mk_udpbatch_sent *st)
{
	unsigned off = 0;
	int r;

	memset(st, 0, sizeof(*st));
	while (off < b->n) {
		r = sendmmsg(fd, &b->msg[off], b->n - off, 0);
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
		off += (unsigned)r;
	}
	b->n = 0;
}
