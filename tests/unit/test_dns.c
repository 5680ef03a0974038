/* SPDX-License-Identifier: MIT */
/*
 * magicdns's parsers and query path: hosts(5) files, the name table, and
 * mk_dns_respond (a query and a table in, a decision and a reply out),
 * with queries built and replies read back by ldns.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "dns.h"
#include "dnstab.h"
#include "hosts.h"
#include "meshconf.h"
#include "t.h"

#define KEY_A	"MtKQzyro/AMZEQQL80W95vd9+lxfT+a3vAwzAi0/G0A="
#define KEY_B	"/tmnrig5drjnAWRblBuJnH0NX0F2YVV3tRcjLvOOriU="
#define KEY_C	"6UP8cbnqKWsaSNizIqlJThErGTXDRGOKBF/uEJTNsUk="

static const char mesh_text[] =
    "domain Mesh.Example\n"
    "node alice " KEY_A " 100.64.0.1 fd7a:115c:a1e0::1\n"
    "node bob " KEY_B " 100.64.0.2\n"
    "node carol " KEY_C " fd7a:115c:a1e0::3\n";

static char err[512];

/* ---- hosts(5) ---- */

static void
test_hosts(void)
{
	static const char text[] =
	    "# comment\n"
	    "127.0.0.1\tlocalhost\n"
	    "\n"
	    "192.0.2.7 Printer.Example.  printer # the printer\r\n"
	    "2001:db8::7 printer\n"
	    "  198.51.100.1   a-b_c   last";
	struct mk_hosts h;
	char a[MK_ADDRSTRLEN];

	REQUIRE_VOID(mk_hosts_parse(&h, text, sizeof(text) - 1, "t", err,
	    sizeof(err)) == 0);
	REQUIRE_VOID(h.n == 6);
	CHECK_STR(h.e[0].name, "localhost");
	CHECK(h.e[0].line == 2);
	CHECK_STR(h.e[1].name, "printer.example");
	CHECK(h.e[1].alias == 0);
	CHECK_STR(h.e[2].name, "printer");
	CHECK(h.e[2].alias == 1);
	CHECK(h.e[2].line == 4);
	CHECK_STR(mk_addr_fmt_ip(&h.e[3].addr, a, sizeof(a)), "2001:db8::7");
	CHECK_STR(h.e[5].name, "last");
	CHECK(h.e[5].line == 6);
	mk_hosts_free(&h);
	mk_hosts_free(&h);

	CHECK(mk_hosts_parse(&h, "", 0, "t", err, sizeof(err)) == 0 &&
	    h.n == 0);
	mk_hosts_free(&h);

	CHECK(mk_hosts_parse(&h, "1.2.3.4\n", 8, "t", err, sizeof(err)) ==
	    -1);
	CHECK_STR(err, "t:1: 1.2.3.4: no name");
	CHECK(h.n == 0 && h.e == NULL);
	CHECK(mk_hosts_parse(&h, "\n1.2.3.400 x\n", 13, "t", err,
	    sizeof(err)) == -1);
	CHECK_STR(err, "t:2: bad address 1.2.3.400");
	CHECK(mk_hosts_parse(&h, "1.2.3.4 -x\n", 11, "t", err,
	    sizeof(err)) == -1);
	CHECK_STR(err, "t:1: bad name -x");
	CHECK(mk_hosts_parse(&h, "1.2.3.4 x..y\n", 13, "t", err,
	    sizeof(err)) == -1);
	CHECK(mk_hosts_parse(&h, "1.2.3.4 10.0.0.1\n", 17, "t", err,
	    sizeof(err)) == -1);
	CHECK(mk_hosts_parse(&h, "1.2.3.4 x\0y\n", 12, "t", err,
	    sizeof(err)) == -1);
	CHECK_STR(err, "t:1: NUL byte");
	CHECK(mk_hosts_parse(&h, "fe80::1%eth0 x\n", 15, "t", err,
	    sizeof(err)) == -1);
	CHECK(mk_hosts_parse(&h, "1.2.3.4 caf\xc3\xa9\n", 14, "t", err,
	    sizeof(err)) == -1);
	CHECK_STR(err, "t:1: control or non-ASCII byte");

	CHECK(mk_hosts_valid_name("a"));
	CHECK(mk_hosts_valid_name("a.b."));
	CHECK(mk_hosts_valid_name("_srv.x-1.example"));
	CHECK(mk_hosts_valid_name("1.example"));
	CHECK(!mk_hosts_valid_name("example.123"));
	CHECK(!mk_hosts_valid_name("."));
	CHECK(!mk_hosts_valid_name(""));
	CHECK(!mk_hosts_valid_name("a-.b"));
	CHECK(!mk_hosts_valid_name("a b"));
	CHECK(mk_hosts_valid_name(
	    "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijk"));
	CHECK(!mk_hosts_valid_name("abcdefghijklmnopqrstuvwxyz"
	    "abcdefghijklmnopqrstuvwxyzabcdefghijkl"));
}

/* ---- the name table ---- */

static int
build(struct mk_dnstab *t)
{
	struct mk_mesh m;
	struct mk_hosts h;
	static const char hosts[] =
	    "192.0.2.7 printer printer.mesh.example nas.other.org\n"
	    "2001:db8::7 printer\n";
	const char *why;
	unsigned line;
	int rc = -1;

	mk_dnstab_init(t, 1700000000);
	if (mk_mesh_parse(&m, mesh_text, sizeof(mesh_text) - 1, "m", err,
	    sizeof(err)) != 0)
		return -1;
	if (mk_hosts_parse(&h, hosts, sizeof(hosts) - 1, "h", err,
	    sizeof(err)) != 0)
		goto out;
	if (mk_dnstab_set_domain(t, m.domain, &why) == 0 &&
	    mk_dnstab_add_mesh(t, &m, &why) == 0 &&
	    mk_dnstab_add_hosts(t, &h, &line, &why) == 0)
		rc = 0;
	mk_hosts_free(&h);
out:
	mk_mesh_free(&m);
	return rc;
}

static void
test_table(void)
{
	struct mk_dnstab t;
	const struct mk_dnstab_rec *r;
	struct mk_addr a;
	const char *why;
	uint8_t ip[16];
	char name[40];
	int i;

	REQUIRE_VOID(build(&t) == 0);
	CHECK_STR(t.domain, "mesh.example");
	r = mk_dnstab_find(&t, "alice.mesh.example", 18);
	REQUIRE_VOID(r != NULL);
	CHECK(r->n_ip == 2);
	CHECK(mk_dnstab_find(&t, "alice", 5) == NULL);
	CHECK(mk_dnstab_find(&t, "alice.mesh.exampl", 17) == NULL);
	/* "printer" and "printer.mesh.example" are one name */
	r = mk_dnstab_find(&t, "printer.mesh.example", 20);
	REQUIRE_VOID(r != NULL);
	CHECK(r->n_ip == 2);
	CHECK(mk_dnstab_find(&t, "nas.other.org", 13) != NULL);
	inet_pton(AF_INET, "100.64.0.2", ip);
	r = mk_dnstab_find_ip(&t, AF_INET, ip);
	REQUIRE_VOID(r != NULL);
	CHECK_STR(r->name, "bob.mesh.example");
	/* the first name claiming an address answers its PTR */
	inet_pton(AF_INET, "192.0.2.7", ip);
	r = mk_dnstab_find_ip(&t, AF_INET, ip);
	REQUIRE_VOID(r != NULL);
	CHECK_STR(r->name, "printer.mesh.example");
	inet_pton(AF_INET6, "fd7a:115c:a1e0::3", ip);
	CHECK(mk_dnstab_find_ip(&t, AF_INET6, ip) != NULL);
	inet_pton(AF_INET, "100.64.0.3", ip);
	CHECK(mk_dnstab_find_ip(&t, AF_INET, ip) == NULL);

	/* the same address twice is kept once; at most MK_DNSTAB_MAX_IPS */
	inet_pton(AF_INET, "100.64.0.1", ip);
	mk_addr_from_v4(&a, ip, 0);
	CHECK(mk_dnstab_add(&t, "alice", &a, &why) == 0);
	CHECK(mk_dnstab_find(&t, "alice.mesh.example", 18)->n_ip == 2);
	for (i = 0; i < MK_DNSTAB_MAX_IPS; i++) {
		ip[3] = (uint8_t)(i + 10);
		mk_addr_from_v4(&a, ip, 0);
		CHECK(mk_dnstab_add(&t, "many", &a, &why) == 0);
	}
	ip[3] = 200;
	mk_addr_from_v4(&a, ip, 0);
	CHECK(mk_dnstab_add(&t, "many", &a, &why) == -1);
	CHECK_STR(why, "too many addresses for one name");
	CHECK(mk_dnstab_add(&t, "bad..name", &a, &why) == -1);
	CHECK_STR(why, "bad name");
	/* many names: the index grows and still finds them all */
	for (i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		ip[2] = (uint8_t)(i >> 8);
		ip[3] = (uint8_t)i;
		mk_addr_from_v4(&a, ip, 0);
		CHECK(mk_dnstab_add(&t, name, &a, &why) == 0);
	}
	for (i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "n%d.mesh.example", i);
		CHECK(mk_dnstab_find(&t, name, strlen(name)) != NULL);
	}
	mk_dnstab_free(&t);
	mk_dnstab_free(&t);

	mk_dnstab_init(&t, 1);
	CHECK(mk_dnstab_set_domain(&t, "bad domain", &why) == -1);
	mk_dnstab_free(&t);
}

/* ---- queries ---- */

struct q {
	uint16_t	id;
	bool		edns;
	uint16_t	size;
	bool		do_bit;
	uint8_t		version;
	bool		rd;
};

static size_t
mkq(uint8_t *buf, size_t cap, const char *name, ldns_rr_type type,
    const struct q *o)
{
	ldns_pkt *p = NULL;
	uint8_t *w = NULL;
	size_t n = 0;

	if (ldns_pkt_query_new_frm_str(&p, name, type, LDNS_RR_CLASS_IN,
	    o->rd ? LDNS_RD : 0) != LDNS_STATUS_OK)
		return 0;
	ldns_pkt_set_id(p, o->id);
	if (o->edns) {
		ldns_pkt_set_edns_udp_size(p, o->size);
		ldns_pkt_set_edns_do(p, o->do_bit);
		ldns_pkt_set_edns_version(p, o->version);
	}
	if (ldns_pkt2wire(&w, p, &n) != LDNS_STATUS_OK || n > cap)
		n = 0;
	else
		memcpy(buf, w, n);
	free(w);
	ldns_pkt_free(p);
	return n;
}

static uint8_t out[MK_DNS_MSG_MAX];
static size_t outlen;

/* Ask t; the decoded reply (NULL unless MK_DNS_REPLY). */
static ldns_pkt *
ask(const struct mk_dnstab *t, const char *name, ldns_rr_type type,
    const struct q *o, unsigned flags, enum mk_dns_action *act)
{
	uint8_t qb[512];
	size_t qn;
	ldns_pkt *p = NULL;

	qn = mkq(qb, sizeof(qb), name, type, o);
	if (qn == 0) {
		*act = MK_DNS_DROP;
		return NULL;
	}
	*act = mk_dns_respond(qb, qn, t, flags, out, sizeof(out), &outlen,
	    NULL);
	if (*act != MK_DNS_REPLY)
		return NULL;
	if (ldns_wire2pkt(&p, out, outlen) != LDNS_STATUS_OK)
		return NULL;
	return p;
}

/* The text form of answer i ("owner ttl class type rdata"). */
static char *
rr_text(ldns_rr_list *l, size_t i)
{
	static char buf[512];
	char *s;

	if (i >= ldns_rr_list_rr_count(l))
		return NULL;
	s = ldns_rr2str(ldns_rr_list_rr(l, i));
	if (s == NULL)
		return NULL;
	snprintf(buf, sizeof(buf), "%s", s);
	free(s);
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

static void
test_answers(void)
{
	struct mk_dnstab t;
	struct q o = { .id = 0x1234, .rd = true };
	enum mk_dns_action act;
	ldns_pkt *p;

	REQUIRE_VOID(build(&t) == 0);

	p = ask(&t, "alice.mesh.example.", LDNS_RR_TYPE_A, &o, 0, &act);
	REQUIRE_VOID(act == MK_DNS_REPLY && p != NULL);
	CHECK(ldns_pkt_id(p) == 0x1234);
	CHECK(ldns_pkt_qr(p) && ldns_pkt_aa(p) && ldns_pkt_rd(p) &&
	    ldns_pkt_ra(p) && !ldns_pkt_tc(p));
	CHECK(ldns_pkt_get_rcode(p) == LDNS_RCODE_NOERROR);
	CHECK(ldns_pkt_ancount(p) == 1);
	CHECK_STR(rr_text(ldns_pkt_answer(p), 0),
	    "alice.mesh.example.\t5\tIN\tA\t100.64.0.1");
	CHECK(!ldns_pkt_edns(p));
	ldns_pkt_free(p);

	/* case is ignored, and echoed back as asked */
	p = ask(&t, "ALICE.mEsh.Example.", LDNS_RR_TYPE_AAAA, &o, 0, &act);
	REQUIRE_VOID(p != NULL);
	CHECK_STR(rr_text(ldns_pkt_answer(p), 0),
	    "ALICE.mEsh.Example.\t5\tIN\tAAAA\tfd7a:115c:a1e0::1");
	ldns_pkt_free(p);

	/* a short name, as a resolver without a search list sends it */
	p = ask(&t, "bob.", LDNS_RR_TYPE_A, &o, 0, &act);
	REQUIRE_VOID(p != NULL);
	CHECK_STR(rr_text(ldns_pkt_answer(p), 0),
	    "bob.\t5\tIN\tA\t100.64.0.2");
	CHECK(ldns_pkt_nscount(p) == 0);
	ldns_pkt_free(p);

	/* the wildcard: anything under a node is the node */
	p = ask(&t, "www.x.bob.mesh.example.", LDNS_RR_TYPE_A, &o, 0, &act);
	REQUIRE_VOID(p != NULL);
	CHECK_STR(rr_text(ldns_pkt_answer(p), 0),
	    "www.x.bob.mesh.example.\t5\tIN\tA\t100.64.0.2");
	ldns_pkt_free(p);

	/* no IPv4: NOERROR, no answer, the zone's SOA */
	p = ask(&t, "carol.mesh.example.", LDNS_RR_TYPE_A, &o, 0, &act);
	REQUIRE_VOID(p != NULL);
	CHECK(ldns_pkt_get_rcode(p) == LDNS_RCODE_NOERROR);
	CHECK(ldns_pkt_ancount(p) == 0 && ldns_pkt_nscount(p) == 1);
	CHECK_STR(rr_text(ldns_pkt_authority(p), 0),
	    "mesh.example.\t10\tIN\tSOA\tmesh.example. mesh.example. "
	    "1700000000 10 10 10 10");
	ldns_pkt_free(p);

	/* another type of a known name: no data */
	p = ask(&t, "alice.mesh.example.", LDNS_RR_TYPE_MX, &o, 0, &act);
	REQUIRE_VOID(p != NULL);
	CHECK(ldns_pkt_get_rcode(p) == LDNS_RCODE_NOERROR);
	CHECK(ldns_pkt_ancount(p) == 0 && ldns_pkt_nscount(p) == 1);
	ldns_pkt_free(p);

	/* ANY: every address */
	p = ask(&t, "alice.mesh.example.", LDNS_RR_TYPE_ANY, &o, 0, &act);
	REQUIRE_VOID(p != NULL);
	CHECK(ldns_pkt_ancount(p) == 2);
	ldns_pkt_free(p);

	/* unknown inside the zone: NXDOMAIN with the SOA */
	p = ask(&t, "dave.mesh.example.", LDNS_RR_TYPE_A, &o, 0, &act);
	REQUIRE_VOID(p != NULL);
	CHECK(ldns_pkt_get_rcode(p) == LDNS_RCODE_NXDOMAIN);
	CHECK(ldns_pkt_aa(p));
	CHECK(ldns_pkt_ancount(p) == 0 && ldns_pkt_nscount(p) == 1);
	CHECK(ldns_rr_get_type(ldns_rr_list_rr(ldns_pkt_authority(p), 0)) ==
	    LDNS_RR_TYPE_SOA);
	ldns_pkt_free(p);

	/* the zone itself */
	p = ask(&t, "mesh.example.", LDNS_RR_TYPE_SOA, &o, 0, &act);
	REQUIRE_VOID(p != NULL);
	CHECK(ldns_pkt_get_rcode(p) == LDNS_RCODE_NOERROR);
	CHECK(ldns_pkt_ancount(p) == 1);
	ldns_pkt_free(p);
	p = ask(&t, "mesh.example.", LDNS_RR_TYPE_A, &o, 0, &act);
	REQUIRE_VOID(p != NULL);
	CHECK(ldns_pkt_get_rcode(p) == LDNS_RCODE_NOERROR);
	CHECK(ldns_pkt_ancount(p) == 0 && ldns_pkt_nscount(p) == 1);
	ldns_pkt_free(p);

	/* reverse names of the mesh's own addresses */
	p = ask(&t, "1.0.64.100.in-addr.arpa.", LDNS_RR_TYPE_PTR, &o, 0,
	    &act);
	REQUIRE_VOID(p != NULL);
	CHECK_STR(rr_text(ldns_pkt_answer(p), 0),
	    "1.0.64.100.in-addr.arpa.\t5\tIN\tPTR\talice.mesh.example.");
	ldns_pkt_free(p);
	p = ask(&t, "3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.e.1.a.c.5.1.1."
	    "a.7.d.f.ip6.arpa.", LDNS_RR_TYPE_PTR, &o, 0, &act);
	REQUIRE_VOID(p != NULL);
	CHECK_STR(rr_text(ldns_pkt_answer(p), 0),
	    "3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.e.1.a.c.5.1.1."
	    "a.7.d.f.ip6.arpa.\t5\tIN\tPTR\tcarol.mesh.example.");
	ldns_pkt_free(p);
	p = ask(&t, "7.2.0.192.in-addr.arpa.", LDNS_RR_TYPE_PTR, &o, 0, &act);
	REQUIRE_VOID(p != NULL);
	CHECK_STR(rr_text(ldns_pkt_answer(p), 0),
	    "7.2.0.192.in-addr.arpa.\t5\tIN\tPTR\tprinter.mesh.example.");
	ldns_pkt_free(p);

	/* the rest of 100.64.0.0/10 (carrier-grade NAT) goes upstream */
	CHECK(ask(&t, "9.0.64.100.in-addr.arpa.", LDNS_RR_TYPE_PTR, &o, 0,
	    &act) == NULL && act == MK_DNS_FORWARD);
	CHECK(ask(&t, "0.64.100.in-addr.arpa.", LDNS_RR_TYPE_PTR, &o, 0,
	    &act) == NULL && act == MK_DNS_FORWARD);
	CHECK(ask(&t, "01.0.64.100.in-addr.arpa.", LDNS_RR_TYPE_PTR, &o, 0,
	    &act) == NULL && act == MK_DNS_FORWARD);
	/* names outside the zone, and short names that are not nodes */
	CHECK(ask(&t, "example.com.", LDNS_RR_TYPE_A, &o, 0, &act) == NULL &&
	    act == MK_DNS_FORWARD);
	CHECK(ask(&t, "dave.", LDNS_RR_TYPE_A, &o, 0, &act) == NULL &&
	    act == MK_DNS_FORWARD);
	CHECK(ask(&t, "mesh.example.com.", LDNS_RR_TYPE_A, &o, 0, &act) ==
	    NULL && act == MK_DNS_FORWARD);
	CHECK(ask(&t, "xmesh.example.", LDNS_RR_TYPE_A, &o, 0, &act) ==
	    NULL && act == MK_DNS_FORWARD);
	CHECK(ask(&t, ".", LDNS_RR_TYPE_NS, &o, 0, &act) == NULL &&
	    act == MK_DNS_FORWARD);
	/* a hosts name outside the zone is exact: no wildcard there */
	p = ask(&t, "nas.other.org.", LDNS_RR_TYPE_A, &o, 0, &act);
	REQUIRE_VOID(p != NULL);
	CHECK(ldns_pkt_ancount(p) == 1);
	ldns_pkt_free(p);
	CHECK(ask(&t, "x.nas.other.org.", LDNS_RR_TYPE_A, &o, 0, &act) ==
	    NULL && act == MK_DNS_FORWARD);

	p = ask(&t, "foo.onion.", LDNS_RR_TYPE_A, &o, 0, &act);
	REQUIRE_VOID(p != NULL);
	CHECK(ldns_pkt_get_rcode(p) == LDNS_RCODE_NXDOMAIN);
	ldns_pkt_free(p);

	mk_dnstab_free(&t);
}

static void
test_edns(void)
{
	struct mk_dnstab t;
	struct q o = { .id = 7, .edns = true, .size = 4096, .do_bit = true };
	struct mk_dns_qinfo qi;
	enum mk_dns_action act;
	uint8_t qb[512];
	size_t qn;
	ldns_pkt *p;
	const char *why;
	struct mk_addr a;
	uint8_t ip[4] = { 192, 0, 2, 0 };
	int i;

	REQUIRE_VOID(build(&t) == 0);
	p = ask(&t, "alice.mesh.example.", LDNS_RR_TYPE_A, &o, 0, &act);
	REQUIRE_VOID(p != NULL);
	CHECK(ldns_pkt_edns(p));
	CHECK(ldns_pkt_edns_do(p));
	CHECK(ldns_pkt_edns_udp_size(p) == MK_DNS_EDNS_SIZE);
	CHECK(!ldns_pkt_rd(p));
	ldns_pkt_free(p);

	o.do_bit = false;
	p = ask(&t, "alice.mesh.example.", LDNS_RR_TYPE_A, &o, 0, &act);
	REQUIRE_VOID(p != NULL);
	CHECK(ldns_pkt_edns(p) && !ldns_pkt_edns_do(p));
	ldns_pkt_free(p);

	/* EDNS version 1: BADVERS (extended RCODE 16) */
	o.version = 1;
	p = ask(&t, "alice.mesh.example.", LDNS_RR_TYPE_A, &o, 0, &act);
	REQUIRE_VOID(p != NULL);
	CHECK(ldns_pkt_get_rcode(p) == 0 &&
	    ldns_pkt_edns_extended_rcode(p) == 1);
	CHECK(ldns_pkt_ancount(p) == 0);
	ldns_pkt_free(p);
	o.version = 0;

	/* two OPT records: FORMERR (RFC 6891 6.1.1), never forwarded */
	qn = mkq(qb, sizeof(qb), "www.example.org.", LDNS_RR_TYPE_A, &o);
	REQUIRE_VOID(qn > 0 && qn + 11 <= sizeof(qb));
	memcpy(qb + qn, qb + qn - 11, 11);
	qb[11] = 2;
	act = mk_dns_respond(qb, qn + 11, &t, 0, out, sizeof(out), &outlen,
	    &qi);
	CHECK(act == MK_DNS_REPLY && qi.rcode == MK_DNS_FORMERR);
	CHECK((out[3] & 0x0f) == MK_DNS_FORMERR);
	qb[11] = 1;
	act = mk_dns_respond(qb, qn, &t, 0, out, sizeof(out), &outlen, &qi);
	CHECK(act == MK_DNS_FORWARD);

	/* an answer too big for 512 bytes: TC over UDP without EDNS,
	 * whole over TCP or with a large EDNS size */
	for (i = 0; i < MK_DNSTAB_MAX_IPS; i++) {
		ip[3] = (uint8_t)i;
		mk_addr_from_v4(&a, ip, 0);
		REQUIRE_VOID(mk_dnstab_add(&t, "big", &a, &why) == 0);
	}
	o.edns = false;
	qn = mkq(qb, sizeof(qb), "a-long-label-to-make-it-big.big.mesh."
	    "example.", LDNS_RR_TYPE_A, &o);
	REQUIRE_VOID(qn > 0);
	act = mk_dns_respond(qb, qn, &t, 0, out, sizeof(out), &outlen, &qi);
	REQUIRE_VOID(act == MK_DNS_REPLY);
	CHECK(outlen <= 512);
	CHECK(qi.limit == 512 && qi.local && qi.rcode == 0);
	CHECK((out[2] & 0x02) != 0);			/* TC */
	/* the records that fit: 12 + 50 (question) + 16 each */
	CHECK(out[6] == 0 && out[7] == (512 - 12 - 50) / 16);
	CHECK(outlen + 16 > 512);
	act = mk_dns_respond(qb, qn, &t, MK_DNS_TCP, out, sizeof(out),
	    &outlen, &qi);
	CHECK(act == MK_DNS_REPLY && outlen > 512 && (out[2] & 0x02) == 0);
	CHECK(out[7] == MK_DNSTAB_MAX_IPS);
	o.edns = true;
	o.size = 1232;
	qn = mkq(qb, sizeof(qb), "a-long-label-to-make-it-big.big.mesh."
	    "example.", LDNS_RR_TYPE_A, &o);
	act = mk_dns_respond(qb, qn, &t, 0, out, sizeof(out), &outlen, &qi);
	CHECK(act == MK_DNS_REPLY && outlen > 512 && outlen <= 1232 &&
	    (out[2] & 0x02) == 0);
	CHECK(qi.limit == 1232 && qi.edns);
	CHECK_STR(qi.qname, "a-long-label-to-make-it-big.big.mesh.example");
	mk_dnstab_free(&t);
}

static void
test_malformed(void)
{
	struct mk_dnstab t;
	struct q o = { .id = 0xbeef, .rd = true };
	struct mk_dns_qinfo qi;
	enum mk_dns_action act;
	uint8_t qb[600];
	size_t qn;
	ldns_pkt *p;

	REQUIRE_VOID(build(&t) == 0);
	qn = mkq(qb, sizeof(qb), "alice.mesh.example.", LDNS_RR_TYPE_A, &o);
	REQUIRE_VOID(qn > 12);

	/* too short, or a response: silence */
	CHECK(mk_dns_respond(qb, 11, &t, 0, out, sizeof(out), &outlen, &qi)
	    == MK_DNS_DROP);
	qb[2] |= 0x80;
	CHECK(mk_dns_respond(qb, qn, &t, 0, out, sizeof(out), &outlen, &qi)
	    == MK_DNS_DROP);
	qb[2] &= 0x7f;

	/* cut inside the question: FORMERR from the header */
	act = mk_dns_respond(qb, qn - 3, &t, 0, out, sizeof(out), &outlen,
	    &qi);
	REQUIRE_VOID(act == MK_DNS_REPLY);
	CHECK(outlen == 12 && out[0] == 0xbe && out[1] == 0xef);
	CHECK((out[2] & 0x80) && (out[2] & 0x01) && (out[3] & 0x0f) == 1);
	CHECK(qi.rcode == MK_DNS_FORMERR && !qi.local);

	/* two questions: FORMERR */
	qb[5] = 2;
	act = mk_dns_respond(qb, qn, &t, 0, out, sizeof(out), &outlen, &qi);
	CHECK(act == MK_DNS_REPLY && (out[3] & 0x0f) == 1);
	qb[5] = 0;
	act = mk_dns_respond(qb, 12, &t, 0, out, sizeof(out), &outlen, &qi);
	CHECK(act == MK_DNS_REPLY && (out[3] & 0x0f) == 1);
	qb[5] = 1;

	/* another opcode (NOTIFY): NOTIMP */
	qb[2] = (uint8_t)((qb[2] & 0x87) | 4 << 3);
	act = mk_dns_respond(qb, qn, &t, 0, out, sizeof(out), &outlen, &qi);
	CHECK(act == MK_DNS_REPLY && (out[3] & 0x0f) == 4 &&
	    ((out[2] >> 3) & 0x0f) == 4);
	qb[2] &= 0x87;

	/* a compression loop in the question */
	memcpy(qb + 12, "\xc0\x0c\x00\x01\x00\x01", 6);
	act = mk_dns_respond(qb, 18, &t, 0, out, sizeof(out), &outlen, &qi);
	CHECK(act == MK_DNS_REPLY && (out[3] & 0x0f) == 1);

	/* a CHAOS query is not ours */
	{
		ldns_pkt *cq = NULL;
		uint8_t *w = NULL;
		size_t n = 0;

		REQUIRE_VOID(ldns_pkt_query_new_frm_str(&cq, "version.bind.",
		    LDNS_RR_TYPE_TXT, LDNS_RR_CLASS_CH, 0) == LDNS_STATUS_OK);
		REQUIRE_VOID(ldns_pkt2wire(&w, cq, &n) == LDNS_STATUS_OK);
		CHECK(mk_dns_respond(w, n, &t, 0, out, sizeof(out), &outlen,
		    &qi) == MK_DNS_FORWARD);
		free(w);
		ldns_pkt_free(cq);
	}

	/* a query for a name ldns reads but no table holds */
	{
		static const uint8_t odd[] = {
			0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0,
			3, 'a', '.', 'b', 4, 'm', 'e', 's', 'h', 7, 'e', 'x',
			'a', 'm', 'p', 'l', 'e', 0, 0, 1, 0, 1,
		};

		act = mk_dns_respond(odd, sizeof(odd), &t, 0, out,
		    sizeof(out), &outlen, &qi);
		REQUIRE_VOID(act == MK_DNS_REPLY);
		REQUIRE_VOID(ldns_wire2pkt(&p, out, outlen) == LDNS_STATUS_OK);
		CHECK(ldns_pkt_get_rcode(p) == LDNS_RCODE_NXDOMAIN);
		ldns_pkt_free(p);
	}
	mk_dnstab_free(&t);
}

static void
test_forward_helpers(void)
{
	struct q o = { .id = 99, .edns = true, .size = 1400, .do_bit = true,
	    .rd = true };
	uint8_t qb[512], rb[MK_DNS_MSG_MAX], big[2048];
	size_t qn, rn, bn;
	ldns_pkt *p = NULL, *r = NULL;
	uint8_t *w = NULL;
	bool tc;
	int i;

	qn = mkq(qb, sizeof(qb), "www.example.org.", LDNS_RR_TYPE_A, &o);
	REQUIRE_VOID(qn > 0);
	REQUIRE_VOID(mk_dns_error(qb, qn, MK_DNS_SERVFAIL, rb, sizeof(rb),
	    &rn) == 0);
	REQUIRE_VOID(ldns_wire2pkt(&p, rb, rn) == LDNS_STATUS_OK);
	CHECK(ldns_pkt_id(p) == 99 && ldns_pkt_qr(p) && ldns_pkt_rd(p));
	CHECK(ldns_pkt_get_rcode(p) == LDNS_RCODE_SERVFAIL);
	CHECK(ldns_pkt_qdcount(p) == 1 && ldns_pkt_edns(p) &&
	    ldns_pkt_edns_do(p));
	ldns_pkt_free(p);
	p = NULL;
	CHECK(mk_dns_error(qb, 5, MK_DNS_SERVFAIL, rb, sizeof(rb), &rn) ==
	    -1);

	/* an answer to it, with another case and many records */
	REQUIRE_VOID(ldns_pkt_query_new_frm_str(&r, "WWW.example.ORG.",
	    LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, LDNS_RD) == LDNS_STATUS_OK);
	ldns_pkt_set_qr(r, true);
	ldns_pkt_set_id(r, 1);
	ldns_pkt_set_edns_udp_size(r, 4096);
	for (i = 0; i < 60; i++) {
		ldns_rr *rr = NULL;
		char s[80];

		snprintf(s, sizeof(s), "www.example.org. 60 IN A 192.0.2.%d",
		    i);
		REQUIRE_VOID(ldns_rr_new_frm_str(&rr, s, 0, NULL, NULL) ==
		    LDNS_STATUS_OK);
		ldns_pkt_push_rr(r, LDNS_SECTION_ANSWER, rr);
	}
	REQUIRE_VOID(ldns_pkt2wire(&w, r, &bn) == LDNS_STATUS_OK);
	REQUIRE_VOID(bn <= sizeof(big) && bn > 512);
	memcpy(big, w, bn);
	free(w);
	ldns_pkt_free(r);

	CHECK(mk_dns_check_answer(qb, qn, big, bn, &tc) == 0 && !tc);
	CHECK(mk_dns_check_answer(qb, qn, qb, qn, &tc) == -1);
	/* a bare header: an error counts, a "no error" does not */
	{
		uint8_t h[12] = { 0, 99, 0x81, 0x82, 0, 0, 0, 0, 0, 0, 0, 0 };

		CHECK(mk_dns_check_answer(qb, qn, h, 12, &tc) ==
		    MK_DNS_SERVFAIL);
		h[3] = 0x81;
		CHECK(mk_dns_check_answer(qb, qn, h, 12, &tc) ==
		    MK_DNS_FORMERR);
		h[3] = 0x80;
		CHECK(mk_dns_check_answer(qb, qn, h, 12, &tc) == -1);
		h[3] = 0x83;
		CHECK(mk_dns_check_answer(qb, qn, h, 12, &tc) == -1);
	}
	CHECK(mk_dns_check_answer(qb, qn, big, 20, &tc) == -1);
	/* another question */
	qn = mkq(qb, sizeof(qb), "www.example.net.", LDNS_RR_TYPE_A, &o);
	CHECK(mk_dns_check_answer(qb, qn, big, bn, &tc) == -1);
	qn = mkq(qb, sizeof(qb), "www.example.org.", LDNS_RR_TYPE_AAAA, &o);
	CHECK(mk_dns_check_answer(qb, qn, big, bn, &tc) == -1);

	/* fitting: untouched when it fits, else TC with the records that
	 * fit, in order, and the OPT record (dnsmasq and Tailscale do so) */
	rn = bn;
	CHECK(mk_dns_fit(big, &rn, sizeof(big), 4096) == 0 && rn == bn);
	CHECK(mk_dns_fit(big, &rn, sizeof(big), 512) == 0 && rn <= 512);
	REQUIRE_VOID(ldns_wire2pkt(&p, big, rn) == LDNS_STATUS_OK);
	/* 12 + 21 (question) + 11 (OPT) + 16 a compressed A: 29 fit */
	CHECK(ldns_pkt_tc(p) && ldns_pkt_ancount(p) == 29 &&
	    ldns_pkt_qdcount(p) == 1 && ldns_pkt_edns(p));
	CHECK(rn + 16 > 512);
	for (i = 0; i < (int)ldns_pkt_ancount(p); i++) {
		const ldns_rr *rr = ldns_rr_list_rr(ldns_pkt_answer(p),
		    (size_t)i);

		CHECK(ldns_rdf_data(ldns_rr_rdf(rr, 0))[3] == i);
	}
	CHECK(ldns_pkt_id(p) == 1);
	ldns_pkt_free(p);
	/* a limit below even one record: header, question, OPT and TC */
	CHECK(mk_dns_fit(big, &rn, sizeof(big), 50) == 0 && rn <= 50);
	REQUIRE_VOID(ldns_wire2pkt(&p, big, rn) == LDNS_STATUS_OK);
	CHECK(ldns_pkt_tc(p) && ldns_pkt_ancount(p) == 0 && ldns_pkt_edns(p));
	ldns_pkt_free(p);
	qn = mkq(qb, sizeof(qb), "www.example.org.", LDNS_RR_TYPE_A, &o);
	CHECK(mk_dns_check_answer(qb, qn, big, rn, &tc) == 0 && tc);
	rn = 30;
	memset(big, 0xff, 30);
	CHECK(mk_dns_fit(big, &rn, sizeof(big), 20) == -1);

	CHECK(mk_dns_limit(false, 4096, false) == 512);
	CHECK(mk_dns_limit(true, 100, false) == 512);
	CHECK(mk_dns_limit(true, 1232, false) == 1232);
	CHECK(mk_dns_limit(true, 65000, false) == 4096);
	CHECK(mk_dns_limit(false, 0, true) == 65535);
}

static void
test_strings(void)
{
	char b[16];

	CHECK_STR(mk_dns_type_str(1, b, sizeof(b)), "A");
	CHECK_STR(mk_dns_type_str(28, b, sizeof(b)), "AAAA");
	CHECK_STR(mk_dns_type_str(65280, b, sizeof(b)), "TYPE65280");
	CHECK_STR(mk_dns_rcode_str(3), "NXDOMAIN");
	CHECK_STR(mk_dns_rcode_str(16), "BADVERS");
}

int
main(void)
{
	test_hosts();
	test_table();
	test_answers();
	test_edns();
	test_malformed();
	test_forward_helpers();
	test_strings();
	return t_done("dns");
}
