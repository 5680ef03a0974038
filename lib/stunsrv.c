/* SPDX-License-Identifier: MIT */
#include "stunsrv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "sock.h"
#include "stun.h"
#include "udpbatch.h"

#define BATCH		64
#define RESP_CAP	256	/* the largest response this server builds */

struct slot {
	struct mk_io io;
	struct mk_stunsrv *srv;
	int index;
};

struct mk_stunsrv {
	struct mk_stunsrv_ctx ctx;
	struct slot slots[MK_STUNSRV_NSOCK];
	struct mk_stunsrv_stats stats;

	/* one receive batch, reused; a send batch per outgoing slot */
	struct mk_udpbatch rx;
	struct mk_udpbatch tx[MK_STUNSRV_NSOCK];

	/* drop log: at most one line a second, with a count of the rest */
	uint64_t droplog_us;
	uint64_t drops_unlogged;
};

static void
log_drop(struct mk_stunsrv *s, const struct mk_addr *from, const char *why)
{
	char a[MK_ADDRSTRLEN];
	uint64_t now = mk_now_us();

	if (now - s->droplog_us < 1000000 && s->droplog_us != 0) {
		s->drops_unlogged++;
		return;
	}
	s->droplog_us = now;
	mk_addr_fmt(from, a, sizeof(a));
	if (s->drops_unlogged > 0)
		mk_warn("dropped packet from %s: %s (and %llu more since the "
		    "last line)", a, why, (unsigned long long)s->drops_unlogged);
	else
		mk_warn("dropped packet from %s: %s", a, why);
	s->drops_unlogged = 0;
}

/* The slot that differs by the CHANGE-REQUEST flags: bit 0 of a slot index
 * is the port, bit 1 the address. */
static int
changed_slot(int in, uint32_t flags)
{
	int out = in;

	if (flags & MK_STUN_CHANGE_PORT)
		out ^= 1;
	if (flags & MK_STUN_CHANGE_IP)
		out ^= 2;
	return out;
}

static size_t
answer_unknown(const struct mk_stun_msg *m, const uint16_t *unknown,
    size_t n, uint8_t *out, size_t cap)
{
	struct mk_stun_builder b;
	uint8_t list[2 * MK_STUN_MAX_UNKNOWN];
	size_t i;

	for (i = 0; i < n; i++) {
		list[2 * i] = (uint8_t)(unknown[i] >> 8);
		list[2 * i + 1] = (uint8_t)unknown[i];
	}
	mk_stun_begin(&b, out, cap, MK_STUN_BINDING_ERROR,
	    m->rfc3489 ? m->legacy_txid : m->txid, m->rfc3489);
	/* No reason phrase (RFC 8489 allows an empty one): its 17 bytes
	 * would lift a 24-byte request's answer above the bound stunq(1)
	 * states. The code and the list say everything. */
	mk_stun_add_error(&b, 420, NULL);
	mk_stun_add_bytes(&b, MK_STUN_ATTR_UNKNOWN_ATTRIBUTES, list, 2 * n);
	if (m->has & MK_STUN_HAS_FINGERPRINT)
		mk_stun_add_fingerprint(&b);
	return mk_stun_end(&b);
}

size_t
mk_stunsrv_answer(const struct mk_stunsrv_ctx *ctx, int in,
    const struct mk_addr *from, const uint8_t *req, size_t len,
    uint8_t *out, size_t cap, int *out_slot, uint16_t *out_port,
    const char **why)
{
	struct mk_stun_builder b;
	struct mk_stun_msg m;
	uint16_t unknown[MK_STUN_MAX_UNKNOWN];
	size_t n_unknown;
	uint32_t change = 0;
	int os;

	if (mk_addr_port(from) == 0) {
		*why = "source port 0";
		return 0;
	}
	if (mk_stun_parse(&m, req, len, true, why) != 0)
		return 0;
	if (m.type != MK_STUN_BINDING_REQUEST) {
		*why = "not a binding request";
		return 0;
	}
	*out_slot = in;
	*out_port = mk_addr_port(from);
	n_unknown = m.n_unknown;
	memcpy(unknown, m.unknown, n_unknown * sizeof(unknown[0]));
	if (m.has & MK_STUN_HAS_CHANGE_REQUEST) {
		change = m.change_request & (MK_STUN_CHANGE_IP |
		    MK_STUN_CHANGE_PORT);
		/* Without an alternate address the server cannot honour it:
		 * RFC 5780 §6.1 says answer 420 naming CHANGE-REQUEST. */
		if (!ctx->discovery && n_unknown < MK_STUN_MAX_UNKNOWN) {
			unknown[n_unknown++] = MK_STUN_ATTR_CHANGE_REQUEST;
			change = 0;
		}
	}
	if ((m.has & MK_STUN_HAS_RESPONSE_PORT) &&
	    n_unknown < MK_STUN_MAX_UNKNOWN) {
		if (ctx->discovery && m.response_port != 0 && !m.rfc3489)
			*out_port = m.response_port;
		else
			unknown[n_unknown++] = MK_STUN_ATTR_RESPONSE_PORT;
	}
	if (n_unknown > 0) {
		*out_port = mk_addr_port(from);
		return answer_unknown(&m, unknown, n_unknown, out, cap);
	}

	os = changed_slot(in, change);
	if (ctx->slot[os].len == 0) {
		*why = "change-request to a slot that is not open";
		return 0;
	}
	*out_slot = os;
	if (m.rfc3489) {
		mk_stun_begin(&b, out, cap, MK_STUN_BINDING_SUCCESS,
		    m.legacy_txid, true);
		mk_stun_add_addr(&b, MK_STUN_ATTR_MAPPED_ADDRESS, from);
		if (ctx->discovery) {
			mk_stun_add_addr(&b, MK_STUN_ATTR_SOURCE_ADDRESS,
			    &ctx->slot[os]);
			mk_stun_add_addr(&b, MK_STUN_ATTR_CHANGED_ADDRESS,
			    &ctx->slot[in ^ 3]);
		}
	} else {
		mk_stun_begin(&b, out, cap, MK_STUN_BINDING_SUCCESS, m.txid,
		    false);
		mk_stun_add_xor_addr(&b, MK_STUN_ATTR_XOR_MAPPED_ADDRESS, from);
		if (ctx->discovery) {
			mk_stun_add_addr(&b, MK_STUN_ATTR_OTHER_ADDRESS,
			    &ctx->slot[in ^ 3]);
			mk_stun_add_addr(&b, MK_STUN_ATTR_RESPONSE_ORIGIN,
			    &ctx->slot[os]);
		}
	}
	if (m.has & MK_STUN_HAS_FINGERPRINT)
		mk_stun_add_fingerprint(&b);
	len = mk_stun_end(&b);
	if (len == 0)
		*why = "response does not fit";
	return len;
}

static void
flush_slot(struct mk_stunsrv *s, int os)
{
	struct mk_udpbatch_sent st;

	/* a datagram the kernel refuses (a full buffer, a per-packet
	 * error) is dropped and the rest still go */
	mk_udpbatch_flush(&s->tx[os], s->slots[os].io.fd, &st);
	s->stats.answered += st.sent;
	s->stats.dropped_send += st.dropped;
}

/* Serve one recvmmsg batch; returns how many datagrams it took. */
static int
serve_batch(struct mk_stunsrv *s, int in)
{
	struct mk_addr from, to;
	const char *why = "";
	uint8_t *req, *out;
	size_t len, reqlen;
	uint16_t port;
	bool trunc;
	int i, n, os;

	n = mk_udpbatch_recv(&s->rx, s->slots[in].io.fd);
	if (n <= 0)
		return 0;
	for (i = 0; i < n; i++) {
		s->stats.received++;
		req = mk_udpbatch_get(&s->rx, (unsigned)i, &reqlen, &from,
		    &trunc);
		if (trunc) {
			s->stats.dropped_malformed++;
			log_drop(s, &from, "oversized datagram");
			continue;
		}
		os = in;
		/* Queues hold BATCH each and a batch is at most BATCH: the
		 * answer is built in place, in its slot's next buffer. */
		out = mk_udpbatch_next(&s->tx[in]);
		len = mk_stunsrv_answer(&s->ctx, in, &from, req, reqlen, out,
		    RESP_CAP, &os, &port, &why);
		if (len == 0) {
			if (strcmp(why, "not a binding request") == 0)
				s->stats.dropped_not_request++;
			else
				s->stats.dropped_malformed++;
			log_drop(s, &from, why);
			continue;
		}
		if (out[0] == 0x01 && out[1] == 0x11)
			s->stats.errors_sent++;
		/* The answer leaves from the slot the request asked for;
		 * to the source, or the port RESPONSE-PORT named. A dual-
		 * stack socket wants an IPv4 client as ::ffff:a.b.c.d. */
		to = from;
		mk_addr_set_port(&to, port);
		mk_addr_for_socket(&to, &to, mk_addr_family(&s->ctx.slot[os]));
		if (os == in) {
			mk_udpbatch_push(&s->tx[os], len, &to);
		} else {
			uint8_t *o = mk_udpbatch_next(&s->tx[os]);

			memcpy(o, out, len);
			mk_udpbatch_push(&s->tx[os], len, &to);
		}
	}
	for (os = 0; os < MK_STUNSRV_NSOCK; os++) {
		if (s->tx[os].n > 0)
			flush_slot(s, os);
	}
	return n;
}

static void
on_readable(struct mk_loop *l, struct mk_io *io, uint32_t events)
{
	struct slot *sl = io->arg;

	int rounds = 0;

	(void)l;
	(void)events;
	/* Drain a busy socket in a few batches per wake-up, saving an
	 * epoll_wait per batch; bounded so other sockets get their turn. */
	while (serve_batch(sl->srv, sl->index) == BATCH && ++rounds < 8)
		;
}

static int
open_slot(struct mk_stunsrv *s, int i, const struct mk_addr *a,
    const char **why)
{
	unsigned flags = 0;
	int fd;

	/* A wildcard IPv6 address serves IPv4 clients too. */
	if (mk_addr_family(a) == AF_INET6 && mk_addr_is_any(a))
		flags |= MK_SOCK_DUALSTACK;
	fd = mk_udp_bind(a, flags, why);
	if (fd < 0)
		return -1;
	s->slots[i].io.fd = fd;
	s->slots[i].io.fn = on_readable;
	s->slots[i].io.arg = &s->slots[i];
	s->slots[i].srv = s;
	s->slots[i].index = i;
	/* Record the real port when 0 was asked for. */
	if (mk_sock_local(fd, &s->ctx.slot[i]) != 0) {
		*why = "getsockname";
		return -1;
	}
	return 0;
}

/*
 * The alternate address listens on the primary's port and on the
 * alternate port (RFC 5780 §4), and OTHER-ADDRESS names what is really
 * bound: so the primary socket is opened first, its port read back (it may
 * have been 0), and the alternate port, when not given and the primary's
 * was 0, is any free port of the primary address, then used on the
 * alternate address too.
 */
int
mk_stunsrv_open(struct mk_stunsrv **out, const struct mk_addr *primary,
    const struct mk_addr *alt, uint16_t alt_port, const char **why)
{
	struct mk_stunsrv *s;
	struct mk_addr a;
	int i, saved;

	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		*why = "out of memory";
		return -1;
	}
	for (i = 0; i < MK_STUNSRV_NSOCK; i++)
		s->slots[i].io.fd = -1;
	if (mk_udpbatch_init(&s->rx, BATCH, MK_STUN_MAX_LEN) != 0)
		goto nomem;
	for (i = 0; i < MK_STUNSRV_NSOCK; i++)
		if (mk_udpbatch_init(&s->tx[i], BATCH, RESP_CAP) != 0)
			goto nomem;
	if (alt != NULL) {
		if (alt_port == 0 && mk_addr_port(primary) != 0)
			alt_port = MK_STUN_ALT_PORT;
		if (mk_addr_family(alt) != mk_addr_family(primary)) {
			*why = "alternate address of another family";
			errno = EINVAL;
			goto fail;
		}
		if (mk_addr_is_any(primary) || mk_addr_is_any(alt)) {
			*why = "behaviour discovery needs two specific addresses";
			errno = EINVAL;
			goto fail;
		}
		if (mk_addr_same_ip(primary, alt) || (alt_port != 0 &&
		    alt_port == mk_addr_port(primary))) {
			*why = "alternate address and port must differ from "
			    "the primary ones";
			errno = EINVAL;
			goto fail;
		}
		s->ctx.discovery = true;
	}
	if (open_slot(s, MK_STUNSRV_PP, primary, why) != 0)
		goto fail;
	if (!s->ctx.discovery) {
		*out = s;
		return 0;
	}
	a = *primary;
	mk_addr_set_port(&a, alt_port);
	if (open_slot(s, MK_STUNSRV_PA, &a, why) != 0)
		goto fail;
	alt_port = mk_addr_port(&s->ctx.slot[MK_STUNSRV_PA]);
	a = *alt;
	mk_addr_set_port(&a, mk_addr_port(&s->ctx.slot[MK_STUNSRV_PP]));
	if (open_slot(s, MK_STUNSRV_AP, &a, why) != 0)
		goto fail;
	mk_addr_set_port(&a, alt_port);
	if (open_slot(s, MK_STUNSRV_AA, &a, why) != 0)
		goto fail;
	*out = s;
	return 0;
nomem:
	*why = "out of memory";
	errno = ENOMEM;
fail:
	saved = errno;
	mk_stunsrv_free(s);
	errno = saved;
	return -1;
}

int
mk_stunsrv_attach(struct mk_stunsrv *s, struct mk_loop *l)
{
	int i;

	for (i = 0; i < MK_STUNSRV_NSOCK; i++) {
		if (s->slots[i].io.fd >= 0 &&
		    mk_loop_add(l, &s->slots[i].io, EPOLLIN) != 0)
			return -1;
	}
	return 0;
}

void
mk_stunsrv_detach(struct mk_stunsrv *s, struct mk_loop *l)
{
	int i;

	for (i = 0; i < MK_STUNSRV_NSOCK; i++) {
		if (s->slots[i].io.fd >= 0)
			mk_loop_del(l, &s->slots[i].io);
	}
}

void
mk_stunsrv_poll(struct mk_stunsrv *s)
{
	int i;

	for (i = 0; i < MK_STUNSRV_NSOCK; i++) {
		if (s->slots[i].io.fd >= 0)
			serve_batch(s, i);
	}
}

const struct mk_stunsrv_ctx *
mk_stunsrv_ctx(const struct mk_stunsrv *s)
{
	return &s->ctx;
}

const struct mk_stunsrv_stats *
mk_stunsrv_stats(const struct mk_stunsrv *s)
{
	return &s->stats;
}

void
mk_stunsrv_free(struct mk_stunsrv *s)
{
	int i;

	if (s == NULL)
		return;
	for (i = 0; i < MK_STUNSRV_NSOCK; i++) {
		if (s->slots[i].io.fd >= 0)
			close(s->slots[i].io.fd);
		mk_udpbatch_free(&s->tx[i]);
	}
	mk_udpbatch_free(&s->rx);
	free(s);
}
