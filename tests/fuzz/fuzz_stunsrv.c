/* SPDX-License-Identifier: MIT */
/* The responder's answer logic on arbitrary datagrams, in discovery mode and
 * not, over IPv4 and IPv6: it must never crash, and whatever it sends, error
 * answers included, must be a well-formed STUN message within the
 * amplification bound stunq(1) states for that mode and family. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "stun.h"
#include "stunsrv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
setup(struct mk_stunsrv_ctx *c, bool v6, bool discovery)
{
	static const char *const a4[] = { "192.0.2.1:3478", "192.0.2.1:3479",
	    "192.0.2.2:3478", "192.0.2.2:3479" };
	static const char *const a6[] = { "[2001:db8::1]:3478",
	    "[2001:db8::1]:3479", "[2001:db8::2]:3478", "[2001:db8::2]:3479" };
	const char *why;
	int i;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < (discovery ? MK_STUNSRV_NSOCK : 1); i++)
		mk_addr_parse(&c->slot[i], v6 ? a6[i] : a4[i], 0, 0, &why);
	c->discovery = discovery;
}

/* stunq(1), DESCRIPTION: the worst answer per request byte, in tenths. */
static size_t
bound_tenths(bool v6, bool discovery)
{
	if (discovery)
		return v6 ? 46 : 28;
	return v6 ? 22 : 16;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mk_stunsrv_ctx ctx;
	struct mk_stun_msg m;
	struct mk_addr from;
	uint8_t out[256];
	const char *why;
	size_t len, req;
	uint16_t port;
	int d, v6, in, os;

	if (size < 1)
		return 0;
	req = size - 1;
	for (v6 = 0; v6 < 2; v6++) {
		mk_addr_parse(&from, v6 ? "[2001:db8::7]:4242" :
		    "198.51.100.7:4242", 0, 0, &why);
		for (d = 0; d < 2; d++) {
			setup(&ctx, v6, d);
			in = d ? data[0] & 3 : 0;
			len = mk_stunsrv_answer(&ctx, in, &from, data + 1, req,
			    out, sizeof(out), &os, &port, &why);
			if (len == 0)
				continue;
			if (os < 0 || os >= MK_STUNSRV_NSOCK ||
			    ctx.slot[os].len == 0)
				__builtin_trap();
			if (mk_stun_parse(&m, out, len, true, &why) != 0)
				__builtin_trap();
			/* only discovery mode may redirect, never to port 0 */
			if (port == 0 || (!d && port != 4242))
				__builtin_trap();
			/* every answer, success or error, within the bound */
			if (len * 10 > req * bound_tenths(v6, d))
				__builtin_trap();
		}
	}
	return 0;
}
