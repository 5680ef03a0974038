/* SPDX-License-Identifier: MIT */
/*
 * Disco codec. Parsing follows disco/disco.go rule for rule, including
 * its leniency (ignored versions and trailing bytes, a malformed
 * CallMeMaybe read as an empty list), so that we accept what Tailscale
 * accepts and nothing reads outside the buffer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "disco.h"
#include "stun.h"
#include "util.h"

_Static_assert(crypto_box_BEFORENMBYTES == MK_DISCO_SHARED_LEN,
    "shared key size");
_Static_assert(crypto_box_NONCEBYTES == MK_DISCO_NONCE_LEN, "nonce size");
_Static_assert(crypto_box_MACBYTES == MK_DISCO_TAG_LEN, "tag size");
_Static_assert(crypto_box_PUBLICKEYBYTES == MK_KEY_LEN, "key size");

#define OFF_KEY		MK_DISCO_MAGIC_LEN
#define OFF_NONCE	(OFF_KEY + MK_KEY_LEN)
#define OFF_BOX		MK_DISCO_HDR_LEN

static const uint8_t v4mapped[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

const char *
mk_disco_type_name(uint8_t type)
{
	switch (type) {
	case MK_DISCO_PING:
		return "ping";
	case MK_DISCO_PONG:
		return "pong";
	case MK_DISCO_CALL_ME_MAYBE:
		return "call-me-maybe";
	default:
		return "unknown";
	}
}

bool
mk_disco_looks_like(const uint8_t *buf, size_t len)
{
	return len >= MK_DISCO_HDR_LEN &&
	    memcmp(buf, MK_DISCO_MAGIC, MK_DISCO_MAGIC_LEN) == 0;
}

enum mk_disco_class
mk_disco_classify(const uint8_t *buf, size_t len)
{
	/* STUN's buf[1] is 0x01 for Binding requests and successes, where
	 * WireGuard has 0 and disco 'S'. */
	if (mk_stun_is(buf, len) && buf[1] == 0x01)
		return MK_DISCO_CLASS_STUN;
	if (mk_disco_looks_like(buf, len))
		return MK_DISCO_CLASS_DISCO;
	if (len >= 4 && buf[0] >= 1 && buf[0] <= 4 && buf[1] == 0 &&
	    buf[2] == 0 && buf[3] == 0)
		return MK_DISCO_CLASS_WIREGUARD;
	return MK_DISCO_CLASS_OTHER;
}

int
mk_disco_sender(struct mk_key *sender, const uint8_t *pkt, size_t len)
{
	if (!mk_disco_looks_like(pkt, len))
		return -1;
	memcpy(sender->b, pkt + OFF_KEY, MK_KEY_LEN);
	return 0;
}

/* ---- plaintext ---- */

/* IP[16] | port, IPv4 as ::ffff:a.b.c.d. */
static int
put_ep(uint8_t *p, const struct mk_addr *a, const char **why)
{
	switch (mk_addr_family(a)) {
	case AF_INET:
		memcpy(p, v4mapped, sizeof(v4mapped));
		memcpy(p + 12, &a->sin.sin_addr, 4);
		break;
	case AF_INET6:
		memcpy(p, &a->sin6.sin6_addr, 16);
		break;
	default:
		*why = "address is not IPv4 or IPv6";
		return -1;
	}
	mk_put16(p + 16, mk_addr_port(a));
	return 0;
}

static void
get_ep(struct mk_addr *a, const uint8_t *p)
{
	mk_addr_from_v6(a, p, mk_get16(p + 16));
}

ssize_t
mk_disco_put_ping(uint8_t *out, size_t cap, const struct mk_disco_ping *ping,
    const char **why)
{
	size_t fixed, n;

	fixed = 2 + MK_DISCO_TXID_LEN + (ping->has_nodekey ? MK_KEY_LEN : 0);
	if (cap < fixed || ping->padding > cap - fixed) {
		*why = "buffer too small";
		return -1;
	}
	n = fixed + ping->padding;
	out[0] = MK_DISCO_PING;
	out[1] = MK_DISCO_VERSION;
	memcpy(out + 2, ping->txid, MK_DISCO_TXID_LEN);
	if (ping->has_nodekey)
		memcpy(out + 2 + MK_DISCO_TXID_LEN, ping->nodekey.b,
		    MK_KEY_LEN);
	memset(out + fixed, 0, ping->padding);
	return (ssize_t)n;
}

ssize_t
mk_disco_put_pong(uint8_t *out, size_t cap, const struct mk_disco_pong *pong,
    const char **why)
{
	if (cap < MK_DISCO_PONG_LEN) {
		*why = "buffer too small";
		return -1;
	}
	if (put_ep(out + 2 + MK_DISCO_TXID_LEN, &pong->src, why) == -1)
		return -1;
	out[0] = MK_DISCO_PONG;
	out[1] = MK_DISCO_VERSION;
	memcpy(out + 2, pong->txid, MK_DISCO_TXID_LEN);
	return MK_DISCO_PONG_LEN;
}

ssize_t
mk_disco_put_call_me_maybe(uint8_t *out, size_t cap,
    const struct mk_addr *eps, size_t n, const char **why)
{
	size_t i;

	if (cap < 2 || n > (cap - 2) / MK_DISCO_EP_LEN) {
		*why = "buffer too small";
		return -1;
	}
	for (i = 0; i < n; i++)
		if (put_ep(out + 2 + i * MK_DISCO_EP_LEN, &eps[i], why) == -1)
			return -1;
	out[0] = MK_DISCO_CALL_ME_MAYBE;
	out[1] = MK_DISCO_VERSION;
	return (ssize_t)(2 + n * MK_DISCO_EP_LEN);
}

int
mk_disco_parse(struct mk_disco_msg *m, const uint8_t *pt, size_t len,
    struct mk_addr *eps, size_t cap, const char **why)
{
	const uint8_t *p;
	size_t i;

	memset(m, 0, sizeof(*m));
	if (len < 2) {
		*why = "short message";
		return -1;
	}
	m->type = pt[0];
	m->version = pt[1];
	p = pt + 2;
	len -= 2;
	switch (m->type) {
	case MK_DISCO_PING:
		if (len < MK_DISCO_TXID_LEN) {
			*why = "short ping";
			return -1;
		}
		memcpy(m->ping.txid, p, MK_DISCO_TXID_LEN);
		p += MK_DISCO_TXID_LEN;
		len -= MK_DISCO_TXID_LEN;
		if (len >= MK_KEY_LEN) {
			m->ping.has_nodekey = true;
			memcpy(m->ping.nodekey.b, p, MK_KEY_LEN);
			len -= MK_KEY_LEN;
		}
		m->ping.padding = len;
		return 0;
	case MK_DISCO_PONG:
		if (len < MK_DISCO_PONG_LEN - 2) {
			*why = "short pong";
			return -1;
		}
		memcpy(m->pong.txid, p, MK_DISCO_TXID_LEN);
		get_ep(&m->pong.src, p + MK_DISCO_TXID_LEN);
		return 0;
	case MK_DISCO_CALL_ME_MAYBE:
		m->cmm.eps = eps;
		if (len == 0 || len % MK_DISCO_EP_LEN != 0 ||
		    m->version != MK_DISCO_VERSION)
			return 0;
		m->cmm.n_wire = len / MK_DISCO_EP_LEN;
		m->cmm.n = m->cmm.n_wire < cap ? m->cmm.n_wire : cap;
		for (i = 0; i < m->cmm.n; i++)
			get_ep(&eps[i], p + i * MK_DISCO_EP_LEN);
		return 0;
	default:
		*why = "unknown message type";
		return -1;
	}
}

/* ---- sealing ---- */

int
mk_disco_shared_init(struct mk_disco_shared *s, const struct mk_key *peer_pub,
    const struct mk_key *my_priv, const char **why)
{
	s->peer = *peer_pub;
	if (crypto_box_beforenm(s->k, peer_pub->b, my_priv->b) != 0) {
		sodium_memzero(s, sizeof(*s));
		*why = "degenerate peer key";
		return -1;
	}
	return 0;
}

void
mk_disco_shared_wipe(struct mk_disco_shared *s)
{
	sodium_memzero(s, sizeof(*s));
}

ssize_t
mk_disco_seal_nonce(uint8_t *out, size_t cap, const struct mk_key *my_pub,
    const struct mk_disco_shared *s, const uint8_t nonce[MK_DISCO_NONCE_LEN],
    const uint8_t *pt, size_t len, const char **why)
{
	if (cap < MK_DISCO_OVERHEAD || len > cap - MK_DISCO_OVERHEAD) {
		*why = "buffer too small";
		return -1;
	}
	memcpy(out, MK_DISCO_MAGIC, MK_DISCO_MAGIC_LEN);
	memcpy(out + OFF_KEY, my_pub->b, MK_KEY_LEN);
	memcpy(out + OFF_NONCE, nonce, MK_DISCO_NONCE_LEN);
	if (crypto_box_easy_afternm(out + OFF_BOX, pt, len, out + OFF_NONCE,
	    s->k) != 0) {
		*why = "message too long";
		return -1;
	}
	return (ssize_t)(MK_DISCO_OVERHEAD + len);
}

ssize_t
mk_disco_seal(uint8_t *out, size_t cap, const struct mk_key *my_pub,
    const struct mk_disco_shared *s, const uint8_t *pt, size_t len,
    const char **why)
{
	uint8_t nonce[MK_DISCO_NONCE_LEN];

	randombytes_buf(nonce, sizeof(nonce));
	return mk_disco_seal_nonce(out, cap, my_pub, s, nonce, pt, len, why);
}

ssize_t
mk_disco_open(uint8_t *out, size_t cap, const struct mk_disco_shared *s,
    const uint8_t *pkt, size_t len, const char **why)
{
	size_t n;

	if (!mk_disco_looks_like(pkt, len)) {
		*why = "not a disco packet";
		return -1;
	}
	if (len < MK_DISCO_OVERHEAD) {
		*why = "short packet";
		return -1;
	}
	/* The header key is outside the box: without this check a packet
	 * naming anyone would open with whichever key the caller chose. */
	if (memcmp(pkt + OFF_KEY, s->peer.b, MK_KEY_LEN) != 0) {
		*why = "not from this peer";
		return -1;
	}
	n = len - MK_DISCO_OVERHEAD;
	if (n > cap) {
		*why = "buffer too small";
		return -1;
	}
	if (crypto_box_open_easy_afternm(out, pkt + OFF_BOX, len - OFF_BOX,
	    pkt + OFF_NONCE, s->k) != 0) {
		*why = "does not open";
		return -1;
	}
	return (ssize_t)n;
}

int
mk_disco_replay_init(struct mk_disco_replay *r, size_t cap)
{
	memset(r, 0, sizeof(*r));
	if (cap == 0) {
		errno = EINVAL;
		return -1;
	}
	if ((r->nonces = calloc(cap, sizeof(*r->nonces))) == NULL)
		return -1;
	r->cap = cap;
	return 0;
}

void
mk_disco_replay_free(struct mk_disco_replay *r)
{
	free(r->nonces);
	memset(r, 0, sizeof(*r));
}

bool
mk_disco_replayed(struct mk_disco_replay *r, const uint8_t *pkt)
{
	const uint8_t *nonce = pkt + MK_DISCO_MAGIC_LEN + MK_KEY_LEN;
	size_t i, n = r->n < r->cap ? r->n : r->cap;

	for (i = 0; i < n; i++)
		if (memcmp(r->nonces[i], nonce, MK_DISCO_NONCE_LEN) == 0)
			return true;
	memcpy(r->nonces[r->n++ % r->cap], nonce, MK_DISCO_NONCE_LEN);
	return false;
}
