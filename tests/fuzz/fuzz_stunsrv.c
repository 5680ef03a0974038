/* SPDX-License-Identifier: MIT */
/* The responder's answer logic on arbitrary datagrams, in discovery mode and
 * not: it must never crash, and whatever it sends must be a well-formed
 * STUN message no larger than the amplification bound. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "stun.h"
#include "stunsrv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
setup(struct mk_stunsrv_ctx *c, bool discovery)
{
	const char *why;

	memset(c, 0, sizeof(*c));
	mk_addr_parse(&c->slot[MK_STUNSRV_PP], "192.0.2.1:3478", 0, 0, &why);
	if (!discovery)
		return;
	mk_addr_parse(&c->slot[MK_STUNSRV_PA], "192.0.2.1:3479", 0, 0, &why);
	mk_addr_parse(&c->slot[MK_STUNSRV_AP], "192.0.2.2:3478", 0, 0, &why);
	mk_addr_parse(&c->slot[MK_STUNSRV_AA], "192.0.2.2:3479", 0, 0, &why);
	c->discovery = true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mk_stunsrv_ctx ctx;
	struct mk_stun_msg m;
	struct mk_addr from;
	uint8_t out[256];
	const char *why;
	size_t len;
	uint16_t port;
	int d, in, os;

	if (size < 1)
		return 0;
	mk_addr_parse(&from, "[2001:db8::7]:4242", 0, 0, &why);
	for (d = 0; d < 2; d++) {
		setup(&ctx, d);
		in = d ? data[0] & 3 : 0;
		len = mk_stunsrv_answer(&ctx, in, &from, data + 1, size - 1,
		    out, sizeof(out), &os, &port, &why);
		if (len == 0)
			continue;
		if (os < 0 || os >= MK_STUNSRV_NSOCK || ctx.slot[os].len == 0)
			__builtin_trap();
		if (mk_stun_parse(&m, out, len, true, &why) != 0)
			__builtin_trap();
		/* only discovery mode may redirect, never to port 0 */
		if (port == 0 || (!d && port != 4242))
			__builtin_trap();
		/* a success answer is at most 92 bytes (the documented bound);
		 * an error answer lists at most 16 attributes */
		if (m.type == MK_STUN_BINDING_SUCCESS && len > 100)
			__builtin_trap();
	}
	return 0;
}
