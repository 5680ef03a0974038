/* SPDX-License-Identifier: MIT */
#include "derp_conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* Shared by every connection of the process; see the header. */
static uint8_t rbuf[MK_DCONN_RBUF];
/* TLS writes are staged here: one copy of the frames, then encrypted. */
static uint8_t stage[MK_DCONN_BATCH];

struct mk_dpkt *
mk_dpkt_new(size_t len)
{
	struct mk_dpkt *p;

	if (len > UINT32_MAX - sizeof(*p))
		return NULL;
	p = malloc(sizeof(*p) + len);
	if (p == NULL)
		return NULL;
	p->next = NULL;
	p->len = (uint32_t)len;
	return p;
}

void
mk_dq_push(struct mk_dq *q, struct mk_dpkt *p)
{
	p->next = NULL;
	if (q->tail != NULL)
		q->tail->next = p;
	else
		q->head = p;
	q->tail = p;
	q->n++;
	q->bytes += p->len;
}

struct mk_dpkt *
mk_dq_pop(struct mk_dq *q)
{
	struct mk_dpkt *p = q->head;

	if (p == NULL)
		return NULL;
	q->head = p->next;
	if (q->head == NULL)
		q->tail = NULL;
	q->n--;
	q->bytes -= p->len;
	p->next = NULL;
	return p;
}

uint32_t
mk_dq_clear(struct mk_dq *q)
{
	struct mk_dpkt *p;
	uint32_t n = 0;

	while ((p = mk_dq_pop(q)) != NULL) {
		free(p);
		n++;
	}
	return n;
}

uint32_t
mk_dconn_commit(struct mk_dconn *d, struct mk_dq *src, size_t batch)
{
	uint32_t n = 0;

	while (src->head != NULL && (d->wlist.bytes < batch ||
	    d->wlist.head == NULL)) {
		mk_dq_push(&d->wlist, mk_dq_pop(src));
		n++;
	}
	return n;
}

bool
mk_dconn_writing(const struct mk_dconn *d)
{
	return d->wlist.head != NULL;
}

/* w bytes went out: free what is complete. */
static void
consume(struct mk_dconn *d, size_t w, uint64_t *bytes, uint64_t *frames)
{
	while (w > 0 && d->wlist.head != NULL) {
		size_t rem = d->wlist.head->len - d->woff;

		if (w < rem) {
			d->woff += (uint32_t)w;
			return;
		}
		w -= rem;
		if (bytes != NULL)
			*bytes += d->wlist.head->len;
		if (frames != NULL)
			(*frames)++;
		free(mk_dq_pop(&d->wlist));
		d->woff = 0;
	}
}

static int
flush_plain(struct mk_dconn *d, uint64_t *bytes, uint64_t *frames,
    const char **why)
{
	struct iovec iov[64];
	struct msghdr msg;
	struct mk_dpkt *p;
	ssize_t w;
	int n;

	while (d->wlist.head != NULL) {
		n = 0;
		for (p = d->wlist.head; p != NULL && n < 64; p = p->next) {
			size_t off = n == 0 ? d->woff : 0;

			iov[n].iov_base = p->data + off;
			iov[n].iov_len = p->len - off;
			n++;
		}
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = iov;
		msg.msg_iovlen = (size_t)n;
		/* no SIGPIPE from a peer that has gone */
		w = sendmsg(d->fd, &msg, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			*why = strerror(errno);
			return -1;
		}
		consume(d, (size_t)w, bytes, frames);
	}
	return 1;
}

/*
 * TLS wants a failed write retried with the same bytes. The writer's list
 * only grows at its tail until bytes are written, so staging again from
 * its head gives the same bytes, possibly more (which OpenSSL accepts with
 * SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER, as the buffer moves between
 * connections).
 */
static int
flush_tls(struct mk_dconn *d, uint64_t *bytes, uint64_t *frames,
    const char **why)
{
	struct mk_dpkt *p;
	size_t len, off, n;
	ssize_t w;

	d->write_wants_read = false;
	while (d->wlist.head != NULL) {
		len = 0;
		off = d->woff;
		for (p = d->wlist.head; p != NULL && len < sizeof(stage);
		    p = p->next) {
			n = p->len - off;
			if (n > sizeof(stage) - len)
				n = sizeof(stage) - len;
			memcpy(stage + len, p->data + off, n);
			len += n;
			off = 0;
		}
		w = mk_tls_write(d->tls, stage, len, why);
		if (w < 0) {
			if (errno != EAGAIN)
				return -1;
			d->write_wants_read =
			    mk_tls_want(d->tls) == MK_TLS_WANT_READ;
			return 0;
		}
		consume(d, (size_t)w, bytes, frames);
	}
	return 1;
}

int
mk_dconn_flush(struct mk_dconn *d, uint64_t *bytes, uint64_t *frames,
    const char **why)
{
	return d->tls != NULL ? flush_tls(d, bytes, frames, why) :
	    flush_plain(d, bytes, frames, why);
}

/* One read: bytes, 0 at EOF, -1 with errno (EAGAIN) and maybe *why. */
static ssize_t
read_some(struct mk_dconn *d, uint8_t *buf, size_t cap, const char **why)
{
	ssize_t n;

	if (d->tls != NULL) {
		d->read_wants_write = false;
		n = mk_tls_read(d->tls, buf, cap, why);
		if (n < 0 && errno == EAGAIN)
			d->read_wants_write =
			    mk_tls_want(d->tls) == MK_TLS_WANT_WRITE;
		return n;
	}
	do
		n = read(d->fd, buf, cap);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
		*why = strerror(errno);
	return n;
}

int
mk_dconn_fill(struct mk_dconn *d, uint8_t **buf, size_t *len,
    const char **why)
{
	size_t have = 0, start = 0, k;
	ssize_t n;
	bool got = false;
	int rc;

	if (d->pend_len > 0) {
		memcpy(rbuf, d->pend, d->pend_len);
		have = d->pend_len;
		free(d->pend);
		d->pend = NULL;
		d->pend_len = 0;
	}
	rc = 0;
	while (have < sizeof(rbuf)) {
		size_t want = sizeof(rbuf) - have;

		n = read_some(d, rbuf + have, want, why);
		if (n > 0) {
			have += (size_t)n;
			got = true;
			/* a short plain read: the socket is empty */
			if (d->tls == NULL && (size_t)n < want)
				break;
			continue;
		}
		if (n == 0) {
			d->eof = true;
			rc = 2;
			break;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		return -1;
	}
	if (d->skip > 0) {
		k = d->skip < have ? (size_t)d->skip : have;
		d->skip -= k;
		start = k;
	}
	*buf = rbuf + start;
	*len = have - start;
	if (rc == 2)
		return 2;
	return got ? 1 : 0;
}

int
mk_dconn_keep(struct mk_dconn *d, const uint8_t *rest, size_t n)
{
	free(d->pend);
	d->pend = NULL;
	d->pend_len = 0;
	if (n == 0)
		return 0;
	if ((d->pend = malloc(n)) == NULL)
		return -1;
	memcpy(d->pend, rest, n);
	d->pend_len = (uint32_t)n;
	return 0;
}

bool
mk_dconn_more(const struct mk_dconn *d)
{
	return d->tls != NULL && !d->eof && mk_tls_pending(d->tls);
}

uint32_t
mk_dconn_want_events(const struct mk_dconn *d)
{
	uint32_t ev = 0;

	if (d->read_wants_write)
		ev |= EPOLLOUT;
	if (d->wlist.head != NULL && !d->write_wants_read)
		ev |= EPOLLOUT;
	return ev;
}

uint32_t
mk_dconn_close(struct mk_dconn *d)
{
	uint32_t n = mk_dq_clear(&d->wlist);

	d->woff = 0;
	free(d->pend);
	d->pend = NULL;
	d->pend_len = 0;
	mk_tls_free(d->tls);
	d->tls = NULL;
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
	return n;
}
