/* SPDX-License-Identifier: MIT */
/*
 * Disco codec: any input is classified, parsed as a plaintext and opened
 * as a packet from A to B (fixed keys, protocols.md 1.8) without crashing.
 * What parses is encoded again and must give the same bytes; the input is
 * also sealed as a plaintext, must open back to itself, and must not open
 * with one bit flipped.
 */
#include <stdint.h>
#include <string.h>

#include "disco.h"
#include "key.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MUST(c) do { if (!(c)) __builtin_trap(); } while (0)
#define MAX_IN	2048
#define N_EPS	4

static struct mk_key a_pub, b_pub;
static struct mk_disco_shared ab, ba;
static bool ready;

static void
setup(void)
{
	struct mk_key a_priv, b_priv;
	const char *why;

	MUST(mk_key_init() == 0);
	memset(a_priv.b, 0x11, 32);
	memset(b_priv.b, 0x22, 32);
	MUST(mk_key_public(&a_pub, &a_priv) == 0);
	MUST(mk_key_public(&b_pub, &b_priv) == 0);
	MUST(mk_disco_shared_init(&ab, &b_pub, &a_priv, &why) == 0);
	MUST(mk_disco_shared_init(&ba, &a_pub, &b_priv, &why) == 0);
	MUST(memcmp(ab.k, ba.k, sizeof(ab.k)) == 0);
	ready = true;
}

/* Parse a plaintext; re-encode what parsed and compare with the input. */
static void
plaintext(const uint8_t *p, size_t len)
{
	struct mk_disco_msg m;
	struct mk_addr eps[N_EPS];
	uint8_t out[MAX_IN + 64];
	const char *why = NULL;
	ssize_t n;
	size_t i;

	if (mk_disco_parse(&m, p, len, eps, N_EPS, &why) == -1) {
		MUST(why != NULL);
		MUST(len < 2 || m.type == p[0]);
		return;
	}
	MUST(len >= 2 && m.type == p[0] && m.version == p[1]);
	switch (m.type) {
	case MK_DISCO_PING:
		MUST(len == 14 + (m.ping.has_nodekey ? 32 : 0) +
		    m.ping.padding);
		n = mk_disco_put_ping(out, sizeof(out), &m.ping, &why);
		MUST(n == (ssize_t)len);
		MUST(memcmp(out + 2, p + 2, m.ping.has_nodekey ? 44 : 12) ==
		    0);
		for (i = len - m.ping.padding; i < len; i++)
			MUST(out[i] == 0);
		break;
	case MK_DISCO_PONG:
		MUST(len >= MK_DISCO_PONG_LEN);
		n = mk_disco_put_pong(out, sizeof(out), &m.pong, &why);
		MUST(n == MK_DISCO_PONG_LEN);
		MUST(memcmp(out + 2, p + 2, MK_DISCO_PONG_LEN - 2) == 0);
		break;
	case MK_DISCO_CALL_ME_MAYBE:
		MUST(m.cmm.eps == eps && m.cmm.n <= N_EPS &&
		    m.cmm.n <= m.cmm.n_wire);
		if (m.cmm.n_wire == 0) {
			MUST(len == 2 || (len - 2) % MK_DISCO_EP_LEN != 0 ||
			    m.version != 0);
			break;
		}
		MUST(m.version == 0 && len == 2 + m.cmm.n_wire *
		    MK_DISCO_EP_LEN);
		MUST(m.cmm.n == (m.cmm.n_wire < N_EPS ? m.cmm.n_wire : N_EPS));
		n = mk_disco_put_call_me_maybe(out, sizeof(out), eps, m.cmm.n,
		    &why);
		MUST(n == (ssize_t)(2 + m.cmm.n * MK_DISCO_EP_LEN));
		MUST(memcmp(out, p, (size_t)n) == 0);
		break;
	default:
		MUST(0);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t pkt[MAX_IN + MK_DISCO_OVERHEAD], pt[MAX_IN];
	uint8_t nonce[MK_DISCO_NONCE_LEN];
	struct mk_key sender;
	enum mk_disco_class c;
	const char *why = NULL;
	ssize_t n, len;
	size_t bit;

	if (!ready)
		setup();
	if (size > MAX_IN)
		return 0;

	c = mk_disco_classify(data, size);
	/* The magic's first byte 'T' has a top bit set, so never STUN. */
	MUST((c == MK_DISCO_CLASS_DISCO) == mk_disco_looks_like(data, size));
	MUST((mk_disco_sender(&sender, data, size) == 0) ==
	    mk_disco_looks_like(data, size));

	plaintext(data, size);

	/* As a packet B receives: it opens only if it really is A's. */
	n = mk_disco_open(pt, sizeof(pt), &ba, data, size, &why);
	if (n >= 0) {
		MUST((size_t)n + MK_DISCO_OVERHEAD == size);
		MUST(memcmp(data + 6, a_pub.b, 32) == 0);
		plaintext(pt, (size_t)n);
	} else {
		MUST(why != NULL);
	}

	/* As a plaintext A seals: B opens exactly it, and not a packet with
	 * one bit flipped. */
	memset(nonce, 0, sizeof(nonce));
	memcpy(nonce, data, size < sizeof(nonce) ? size : sizeof(nonce));
	len = mk_disco_seal_nonce(pkt, sizeof(pkt), &a_pub, &ab, nonce, data,
	    size, &why);
	MUST(len == (ssize_t)(size + MK_DISCO_OVERHEAD));
	MUST(mk_disco_classify(pkt, (size_t)len) == MK_DISCO_CLASS_DISCO);
	n = mk_disco_open(pt, sizeof(pt), &ba, pkt, (size_t)len, &why);
	MUST(n == (ssize_t)size && (size == 0 || memcmp(pt, data, size) == 0));
	bit = size == 0 ? 0 : (size_t)data[0] * 131 + size;
	bit %= (size_t)len * 8;
	pkt[bit / 8] ^= (uint8_t)(1U << (bit % 8));
	MUST(mk_disco_open(pt, sizeof(pt), &ba, pkt, (size_t)len, &why) == -1);
	return 0;
}
