/* SPDX-License-Identifier: MIT */
/*
 * birthday's rendezvous hello (lib/birthday, disco type 0x80, the message
 * punch --node and birthday(1) exchange over the relay): any input is
 * parsed as a plaintext and opened as a packet from A to B (fixed keys)
 * without crashing. What parses is encoded again and must give the same
 * 36 bytes (the version byte aside: the parser reads none, the encoder
 * writes 0; trailing bytes are ignored), and that encoding must parse to
 * the same hello.
 */
#include <stdint.h>
#include <string.h>

#include "birthday.h"
#include "disco.h"
#include "key.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MUST(c) do { if (!(c)) __builtin_trap(); } while (0)
#define MAX_IN	1024

static struct mk_key a_pub;
static struct mk_disco_shared ba;
static bool ready;

static void
setup(void)
{
	struct mk_key a_priv, b_priv, b_pub;
	const char *why;

	MUST(mk_key_init() == 0);
	memset(a_priv.b, 0x11, 32);
	memset(b_priv.b, 0x22, 32);
	MUST(mk_key_public(&a_pub, &a_priv) == 0);
	MUST(mk_key_public(&b_pub, &b_priv) == 0);
	MUST(mk_disco_shared_init(&ba, &a_pub, &b_priv, &why) == 0);
	ready = true;
}

static bool
same_hello(const struct mk_bday_hello *x, const struct mk_bday_hello *y)
{
	return x->role == y->role && x->flags == y->flags &&
	    x->ports == y->ports && x->count == y->count &&
	    x->rate == y->rate && x->start_ms == y->start_ms &&
	    mk_addr_equal(&x->addr, &y->addr);
}

static void
plaintext(const uint8_t *p, size_t len)
{
	struct mk_bday_hello h, again;
	uint8_t out[MK_BDAY_HELLO_LEN];
	const char *why = NULL;
	ssize_t n;

	if (mk_bday_parse_hello(&h, p, len, &why) != 0) {
		MUST(why != NULL);
		return;
	}
	MUST(len >= MK_BDAY_HELLO_LEN && p[0] == MK_BDAY_DISCO_HELLO);
	MUST(h.role >= MK_BDAY_ROLE_WIRE_HARD &&
	    h.role <= MK_BDAY_ROLE_WIRE_BOTH);
	MUST(!mk_addr_is_any(&h.addr));
	n = mk_bday_put_hello(out, sizeof(out), &h, &why);
	MUST(n == MK_BDAY_HELLO_LEN);
	MUST(out[0] == p[0] && out[1] == MK_DISCO_VERSION);
	MUST(memcmp(out + 2, p + 2, MK_BDAY_HELLO_LEN - 2) == 0);
	MUST(mk_bday_parse_hello(&again, out, (size_t)n, &why) == 0);
	MUST(same_hello(&h, &again));
	/* a buffer too small is refused, never overrun */
	MUST(mk_bday_put_hello(out, MK_BDAY_HELLO_LEN - 1, &h, &why) == -1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t pt[MAX_IN];
	const char *why = NULL;
	ssize_t n;

	if (!ready)
		setup();
	if (size > MAX_IN)
		return 0;
	plaintext(data, size);
	/* as the relay delivers it: a sealed packet from A to B */
	n = mk_disco_open(pt, sizeof(pt), &ba, data, size, &why);
	if (n >= 0)
		plaintext(pt, (size_t)n);
	else
		MUST(why != NULL);
	return 0;
}
