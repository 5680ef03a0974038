/* SPDX-License-Identifier: MIT */
/*
 * magicdns's query path on arbitrary bytes: mk_dns_respond over UDP and
 * TCP against a small mesh (names, a wildcard, PTR, a zone), and the
 * forwarder's helpers on the same bytes taken as an upstream answer. A
 * reply must parse, carry the query's ID and fit what the client takes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "dns.h"
#include "dnstab.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct mk_dnstab tab;
static uint8_t out[MK_DNS_MSG_MAX];

static void
init_table(void)
{
	static const struct {
		const char *name, *addr;
	} names[] = {
		{ "alice", "100.64.0.1" }, { "alice", "fd7a:115c:a1e0::1" },
		{ "bob", "100.64.0.2" }, { "carol", "fd7a:115c:a1e0::3" },
		{ "nas.other.org", "192.0.2.7" },
	};
	struct mk_addr a;
	const char *why;
	size_t i;

	mk_dnstab_init(&tab, 1700000000);
	if (mk_dnstab_set_domain(&tab, "mesh.example", &why) != 0)
		abort();
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (mk_addr_parse(&a, names[i].addr, 0, 0, &why) != 0 ||
		    mk_dnstab_add(&tab, names[i].name, &a, &why) != 0)
			abort();
	}
}

static void
check_reply(const uint8_t *q, size_t qlen, size_t len,
    const struct mk_dns_qinfo *qi)
{
	ldns_pkt *p = NULL;

	if (len < MK_DNS_HDR || len > qi->limit || qlen < MK_DNS_HDR)
		abort();
	if (out[0] != q[0] || out[1] != q[1] || (out[2] & 0x80) == 0)
		abort();
	if (ldns_wire2pkt(&p, out, len) != LDNS_STATUS_OK)
		abort();
	ldns_pkt_free(p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct mk_dns_qinfo qi;
	enum mk_dns_action act;
	uint8_t *copy;
	size_t len;
	bool tc;
	unsigned flags;

	if (!ready) {
		init_table();
		ready = 1;
	}
	if (size > MK_DNS_MSG_MAX)
		return 0;
	for (flags = 0; flags <= MK_DNS_TCP; flags += MK_DNS_TCP) {
		act = mk_dns_respond(data, size, &tab, flags, out, sizeof(out),
		    &len, &qi);
		if (act == MK_DNS_REPLY)
			check_reply(data, size, len, &qi);
		else if (act == MK_DNS_FORWARD &&
		    mk_dns_error(data, size, MK_DNS_SERVFAIL, out, sizeof(out),
		    &len) == 0)
			check_reply(data, size, len, &qi);
	}
	/* The same bytes as an upstream's answer to themselves. */
	(void)mk_dns_check_answer(data, size, data, size, &tc);
	if ((copy = malloc(size + 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	len = size;
	if (mk_dns_fit(copy, &len, size + 1, 512) == 0 && len > 512)
		abort();
	free(copy);
	return 0;
}
