/* SPDX-License-Identifier: MIT */
#include "dns.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "dnstab.h"

#define OPCODE(p)	(((p)[2] >> 3) & 0x0f)
#define RD(p)		((p)[2] & 0x01)

/* The parsed query and what we know of it. */
struct query {
	ldns_pkt	*pkt;
	const ldns_rr	*question;
	const ldns_rdf	*qname;
	struct mk_dns_qinfo *qi;
	char		 key[MK_DNS_QNAME_MAX + 2];	/* lowercase */
	size_t		 key_len;
	unsigned	 n_opt;		/* OPT records in it */
};

uint16_t
mk_dns_limit(bool edns, uint16_t udp_size, bool tcp)
{
	if (tcp)
		return MK_DNS_MSG_MAX;
	if (!edns || udp_size < MK_DNS_UDP_MIN)
		return MK_DNS_UDP_MIN;
	return udp_size > MK_DNS_UDP_MAX ? MK_DNS_UDP_MAX : udp_size;
}

const char *
mk_dns_type_str(uint16_t type, char *buf, size_t len)
{
	const ldns_rr_descriptor *d = ldns_rr_descript(type);

	if (d != NULL && d->_name != NULL)
		snprintf(buf, len, "%s", d->_name);
	else
		snprintf(buf, len, "TYPE%u", type);
	return buf;
}

const char *
mk_dns_rcode_str(int rcode)
{
	const ldns_lookup_table *lt;

	if (rcode == MK_DNS_BADVERS)
		return "BADVERS";
	lt = ldns_lookup_by_id(ldns_rcodes, rcode);
	return lt != NULL ? lt->name : "RCODE?";
}

/*
 * The lowercase text of a wire name, without the trailing dot. A byte no
 * table name holds (a dot inside a label, a space, ...) becomes '?', which
 * matches nothing but keeps the label structure for the zone test.
 * Returns the length, or -1 for a malformed name.
 */
static int
name_key(const ldns_rdf *d, char *out, size_t cap)
{
	const uint8_t *p = ldns_rdf_data(d);
	size_t n = ldns_rdf_size(d), i = 0, o = 0, l, j;
	int c;

	while (i < n) {
		l = p[i++];
		if (l == 0)
			break;
		if (l > 63 || i + l > n || o + l + 1 >= cap)
			return -1;
		if (o > 0)
			out[o++] = '.';
		for (j = 0; j < l; j++) {
			c = p[i + j];
			if (c >= 'A' && c <= 'Z')
				c += 'a' - 'A';
			else if (!((c >= 'a' && c <= 'z') ||
			    (c >= '0' && c <= '9') || c == '-' || c == '_' ||
			    c == '*'))
				c = '?';
			out[o++] = (char)c;
		}
		i += l;
	}
	out[o] = '\0';
	return (int)o;
}

/* Does name (len) end in the label sequence suffix (slen)? */
static bool
has_suffix(const char *name, size_t len, const char *suffix, size_t slen)
{
	if (slen == 0 || len < slen)
		return false;
	if (memcmp(name + len - slen, suffix, slen) != 0)
		return false;
	return len == slen || name[len - slen - 1] == '.';
}

/* A decimal label 0-255 without leading zeros. */
static int
octet(const char *s, size_t len)
{
	int v = 0;
	size_t i;

	if (len == 0 || len > 3 || (len > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v <= 255 ? v : -1;
}

static int
nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * The address of a full reverse name ("4.3.2.1.in-addr.arpa", 32 nibbles
 * of ip6.arpa). Returns the family, or 0 for anything else.
 */
static int
reverse_addr(const char *k, size_t len, uint8_t *b)
{
	static const char v4[] = ".in-addr.arpa", v6[] = ".ip6.arpa";
	size_t i, start;
	int v, n;

	if (len > sizeof(v4) - 1 &&
	    memcmp(k + len - (sizeof(v4) - 1), v4, sizeof(v4) - 1) == 0) {
		len -= sizeof(v4) - 1;
		for (n = 3, start = 0, i = 0; i <= len; i++) {
			if (i < len && k[i] != '.')
				continue;
			if (n < 0 || (v = octet(k + start, i - start)) < 0)
				return 0;
			b[n--] = (uint8_t)v;
			start = i + 1;
		}
		return n == -1 ? AF_INET : 0;
	}
	if (len == 64 + sizeof(v6) - 2 &&
	    memcmp(k + 63, v6, sizeof(v6) - 1) == 0) {
		memset(b, 0, 16);
		for (i = 0; i < 32; i++) {
			if ((v = nibble(k[2 * i])) < 0 ||
			    (i < 31 && k[2 * i + 1] != '.'))
				return 0;
			n = 31 - (int)i;
			b[n / 2] |= (uint8_t)(n % 2 == 0 ? v << 4 : v);
		}
		return AF_INET6;
	}
	return 0;
}

/* A new reply to q: same ID, opcode, RD, CD and question; EDNS if q had it. */
static ldns_pkt *
reply_new(const ldns_pkt *q, const ldns_rr *question, int rcode, bool aa)
{
	ldns_pkt *p;
	ldns_rr *qr;

	if ((p = ldns_pkt_new()) == NULL)
		return NULL;
	ldns_pkt_set_id(p, ldns_pkt_id(q));
	ldns_pkt_set_qr(p, true);
	ldns_pkt_set_opcode(p, ldns_pkt_get_opcode(q));
	ldns_pkt_set_rd(p, ldns_pkt_rd(q));
	ldns_pkt_set_cd(p, ldns_pkt_cd(q));
	ldns_pkt_set_ra(p, true);
	ldns_pkt_set_aa(p, aa);
	ldns_pkt_set_rcode(p, (uint8_t)(rcode & 0x0f));
	if (question != NULL) {
		if ((qr = ldns_rr_clone(question)) == NULL ||
		    !ldns_pkt_push_rr(p, LDNS_SECTION_QUESTION, qr)) {
			ldns_rr_free(qr);
			ldns_pkt_free(p);
			return NULL;
		}
	}
	if (ldns_pkt_edns(q)) {
		ldns_pkt_set_edns_udp_size(p, MK_DNS_EDNS_SIZE);
		ldns_pkt_set_edns_do(p, ldns_pkt_edns_do(q));
		ldns_pkt_set_edns_extended_rcode(p, (uint8_t)(rcode >> 4));
	}
	return p;
}

/* The records of one section, as a fresh shallow list set into p. */
static bool
set_section(ldns_pkt *p, ldns_pkt_section sec, ldns_rr **rr,
    const uint8_t *in, size_t n, size_t k)
{
	ldns_rr_list *l;
	size_t i, c = 0;

	if ((l = ldns_rr_list_new()) == NULL)
		return false;
	for (i = 0; i < k && i < n; i++) {
		if (in[i] != sec)
			continue;
		if (!ldns_rr_list_push_rr(l, rr[i])) {
			ldns_rr_list_free(l);
			return false;
		}
		c++;
	}
	switch (sec) {
	case LDNS_SECTION_ANSWER:
		ldns_rr_list_free(ldns_pkt_answer(p));
		ldns_pkt_set_answer(p, l);
		ldns_pkt_set_ancount(p, (uint16_t)c);
		break;
	case LDNS_SECTION_AUTHORITY:
		ldns_rr_list_free(ldns_pkt_authority(p));
		ldns_pkt_set_authority(p, l);
		ldns_pkt_set_nscount(p, (uint16_t)c);
		break;
	default:
		ldns_rr_list_free(ldns_pkt_additional(p));
		ldns_pkt_set_additional(p, l);
		ldns_pkt_set_arcount(p, (uint16_t)c);
		break;
	}
	return true;
}

/* p with only the first k of the records rr (in message order). */
static bool
keep_first(ldns_pkt *p, ldns_rr **rr, const uint8_t *in, size_t n, size_t k)
{
	return set_section(p, LDNS_SECTION_ANSWER, rr, in, n, k) &&
	    set_section(p, LDNS_SECTION_AUTHORITY, rr, in, n, k) &&
	    set_section(p, LDNS_SECTION_ADDITIONAL, rr, in, n, k);
}

/* The wire size of p, left in b. 0 on failure. */
static size_t
wire_size(ldns_buffer *b, ldns_pkt *p)
{
	ldns_buffer_clear(b);
	if (ldns_pkt2buffer_wire(b, p) != LDNS_STATUS_OK)
		return 0;
	return ldns_buffer_position(b);
}

/*
 * p is larger than limit: keep as many of its records, in message order,
 * as fit (answers first, then authority, then additional; the OPT record
 * always stays), with TC set, as dnsmasq and Tailscale do, so a client
 * that never retries over TCP still gets what fits. The wire form is left
 * in b. 0, or -1 (no memory, or not even the header and question fit).
 */
static int
fit_records(ldns_pkt *p, size_t limit, ldns_buffer *b)
{
	const ldns_pkt_section secs[3] = { LDNS_SECTION_ANSWER,
	    LDNS_SECTION_AUTHORITY, LDNS_SECTION_ADDITIONAL };
	ldns_rr **rr = NULL;
	uint8_t *in = NULL;
	size_t n = 0, i, j, lo, hi, mid, sz;
	int rc = -1;

	ldns_pkt_set_tc(p, true);
	n = ldns_rr_list_rr_count(ldns_pkt_answer(p)) +
	    ldns_rr_list_rr_count(ldns_pkt_authority(p)) +
	    ldns_rr_list_rr_count(ldns_pkt_additional(p));
	if (n > 0 && ((rr = calloc(n, sizeof(*rr))) == NULL ||
	    (in = calloc(n, 1)) == NULL))
		goto out;
	for (i = 0, n = 0; i < 3; i++) {
		ldns_rr_list *l = i == 0 ? ldns_pkt_answer(p) : i == 1 ?
		    ldns_pkt_authority(p) : ldns_pkt_additional(p);

		for (j = 0; j < ldns_rr_list_rr_count(l); j++) {
			rr[n] = ldns_rr_list_rr(l, j);
			in[n++] = (uint8_t)secs[i];
		}
	}
	/* The most records that fit: k = lo fits, k = hi does not. A
	 * binary search, since name compression makes sizes not add up. */
	lo = 0;
	hi = n;
	while (hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		if (!keep_first(p, rr, in, n, mid))
			goto out;
		sz = wire_size(b, p);
		if (sz > 0 && sz <= limit)
			lo = mid;
		else
			hi = mid;
	}
	if (!keep_first(p, rr, in, n, lo))
		goto out;
	for (i = lo; i < n; i++) {
		ldns_rr_free(rr[i]);
		rr[i] = NULL;
	}
	n = lo;
	sz = wire_size(b, p);
	if (sz > 0 && sz <= limit)
		rc = 0;
out:
	if (rc != 0 && rr != NULL && !keep_first(p, rr, in, n, n)) {
		/* Cannot even put them back: the sections go (the caller
		 * frees p and nothing else) and the records with them. */
		ldns_rr_list_free(ldns_pkt_answer(p));
		ldns_rr_list_free(ldns_pkt_authority(p));
		ldns_rr_list_free(ldns_pkt_additional(p));
		ldns_pkt_set_answer(p, NULL);
		ldns_pkt_set_authority(p, NULL);
		ldns_pkt_set_additional(p, NULL);
		for (i = 0; i < n; i++)
			ldns_rr_free(rr[i]);
	}
	free(rr);
	free(in);
	return rc;
}

/*
 * p to wire into out; when larger than limit, the records that fit stay
 * and TC is set. 0, or -1 (no memory, or out too small).
 */
static int
finish(ldns_pkt *p, size_t limit, uint8_t *out, size_t cap, size_t *outlen)
{
	ldns_buffer *b;
	size_t n;
	int rc = -1;

	/*
	 * Not ldns_pkt2wire: it allocates 64 KiB for every message (and a
	 * buffer past 1 KiB makes malloc consolidate on every query). A
	 * reply with one record has nothing to gain from name compression
	 * but its cost, a fifth of the time spent here: only larger ones
	 * are compressed.
	 */
	if ((b = ldns_buffer_new(MK_DNS_UDP_MIN)) == NULL)
		return -1;
	if ((ldns_pkt_ancount(p) + ldns_pkt_nscount(p) +
	    ldns_pkt_arcount(p) > 1 ? ldns_pkt2buffer_wire(b, p) :
	    ldns_pkt2buffer_wire_compress(b, p, NULL)) != LDNS_STATUS_OK)
		goto out;
	if (ldns_buffer_position(b) > limit && fit_records(p, limit, b) != 0)
		goto out;
	n = ldns_buffer_position(b);
	if (n > cap)
		goto out;
	memcpy(out, ldns_buffer_begin(b), n);
	*outlen = n;
	rc = 0;
out:
	ldns_buffer_free(b);
	return rc;
}

/* A reply from the header alone, for queries ldns cannot read. */
static enum mk_dns_action
header_reply(const uint8_t *q, int rcode, uint8_t *out, size_t cap,
    size_t *outlen, struct mk_dns_qinfo *qi)
{
	ldns_pkt *p;
	int rc;

	if ((p = ldns_pkt_new()) == NULL)
		return MK_DNS_DROP;
	ldns_pkt_set_id(p, mk_dns_id(q));
	ldns_pkt_set_qr(p, true);
	ldns_pkt_set_opcode(p, (ldns_pkt_opcode)OPCODE(q));
	ldns_pkt_set_rd(p, RD(q));
	ldns_pkt_set_ra(p, true);
	ldns_pkt_set_rcode(p, (uint8_t)rcode);
	rc = finish(p, qi->limit, out, cap, outlen);
	ldns_pkt_free(p);
	if (rc != 0)
		return MK_DNS_DROP;
	qi->rcode = rcode;
	return MK_DNS_REPLY;
}

static ldns_rr *
new_rr(const ldns_rdf *owner, ldns_rr_type type, uint32_t ttl)
{
	ldns_rr *rr;
	ldns_rdf *o;

	if ((rr = ldns_rr_new()) == NULL)
		return NULL;
	if ((o = ldns_rdf_clone(owner)) == NULL) {
		ldns_rr_free(rr);
		return NULL;
	}
	ldns_rr_set_owner(rr, o);
	ldns_rr_set_type(rr, type);
	ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
	ldns_rr_set_ttl(rr, ttl);
	return rr;
}

/* Push rdf onto rr; on failure both are freed and false returned. */
static bool
push_rdf(ldns_rr *rr, ldns_rdf *rdf)
{
	if (rdf == NULL || !ldns_rr_push_rdf(rr, rdf)) {
		ldns_rdf_deep_free(rdf);
		ldns_rr_free(rr);
		return false;
	}
	return true;
}

static ldns_rdf *
dname_from_text(const char *name)
{
	char buf[MK_DNS_QNAME_MAX + 3];

	snprintf(buf, sizeof(buf), "%s.", name);
	return ldns_dname_new_frm_str(buf);
}

/*
 * The zone's SOA, as Tailscale gives it with negative answers: MNAME =
 * RNAME = zone, serial from the table, every timer and the TTL 10 s.
 */
static ldns_rr *
soa_rr(const struct mk_dnstab *t)
{
	ldns_rdf *zone;
	ldns_rr *rr;
	int i;

	if ((zone = dname_from_text(t->domain)) == NULL)
		return NULL;
	rr = new_rr(zone, LDNS_RR_TYPE_SOA, MK_DNS_NEG_TTL);
	if (rr == NULL) {
		ldns_rdf_deep_free(zone);
		return NULL;
	}
	if (!push_rdf(rr, ldns_rdf_clone(zone))) {
		ldns_rdf_deep_free(zone);
		return NULL;
	}
	if (!push_rdf(rr, zone))
		return NULL;
	if (!push_rdf(rr, ldns_native2rdf_int32(LDNS_RDF_TYPE_INT32,
	    t->serial)))
		return NULL;
	for (i = 0; i < 4; i++)
		if (!push_rdf(rr, ldns_native2rdf_int32(LDNS_RDF_TYPE_PERIOD,
		    MK_DNS_NEG_TTL)))
			return NULL;
	return rr;
}

static bool
push(ldns_pkt *p, ldns_pkt_section s, ldns_rr *rr)
{
	if (rr == NULL)
		return false;
	if (!ldns_pkt_push_rr(p, s, rr)) {
		ldns_rr_free(rr);
		return false;
	}
	return true;
}

/* Address records of r for the question (A, AAAA or ANY). */
static bool
push_addrs(ldns_pkt *p, const struct query *qq,
    const struct mk_dnstab_rec *r, uint16_t qtype, int *n)
{
	ldns_rr *rr;
	size_t i;
	bool v4;

	*n = 0;
	for (i = 0; i < r->n_ip; i++) {
		v4 = r->ip[i].family == AF_INET;
		if (qtype != LDNS_RR_TYPE_ANY &&
		    qtype != (v4 ? LDNS_RR_TYPE_A : LDNS_RR_TYPE_AAAA))
			continue;
		rr = new_rr(qq->qname, v4 ? LDNS_RR_TYPE_A :
		    LDNS_RR_TYPE_AAAA, MK_DNS_TTL);
		if (rr == NULL || !push_rdf(rr, ldns_rdf_new_frm_data(v4 ?
		    LDNS_RDF_TYPE_A : LDNS_RDF_TYPE_AAAA, v4 ? 4 : 16,
		    r->ip[i].b)))
			return false;
		if (!push(p, LDNS_SECTION_ANSWER, rr))
			return false;
		(*n)++;
	}
	return true;
}

static bool
push_ptr(ldns_pkt *p, const struct query *qq, const struct mk_dnstab_rec *r)
{
	ldns_rr *rr;

	rr = new_rr(qq->qname, LDNS_RR_TYPE_PTR, MK_DNS_TTL);
	if (rr == NULL || !push_rdf(rr, dname_from_text(r->name)))
		return false;
	return push(p, LDNS_SECTION_ANSWER, rr);
}

enum local {
	L_FORWARD,
	L_NAME,		/* a name of the table: r */
	L_PTR,		/* a reverse name of one of its addresses: r */
	L_APEX,		/* the zone itself */
	L_NXDOMAIN,	/* inside the zone, not a name */
	L_ONION,	/* RFC 7686: never leaves the host */
};

/*
 * Where a name belongs. Exact names first; a one-label name also as
 * NAME.DOMAIN; inside the zone, a name under a node answers for it
 * ("*.node", ts#12187); anything else inside the zone does not exist.
 */
static enum local
classify(const struct mk_dnstab *t, const char *k, size_t len,
    const struct mk_dnstab_rec **r)
{
	char buf[MK_DNS_QNAME_MAX + 2];
	uint8_t b[16];
	size_t i;
	int fam, n;

	*r = NULL;
	if (has_suffix(k, len, "onion", 5))
		return L_ONION;
	if ((fam = reverse_addr(k, len, b)) != 0) {
		*r = mk_dnstab_find_ip(t, fam, b);
		return *r != NULL ? L_PTR : L_FORWARD;
	}
	if ((*r = mk_dnstab_find(t, k, len)) != NULL)
		return L_NAME;
	if (t->domain_len == 0)
		return L_FORWARD;
	if (len > 0 && memchr(k, '.', len) == NULL) {
		n = snprintf(buf, sizeof(buf), "%.*s.%s", (int)len, k,
		    t->domain);
		if (n > 0 && (size_t)n <= MK_DNS_QNAME_MAX &&
		    (*r = mk_dnstab_find(t, buf, (size_t)n)) != NULL)
			return L_NAME;
		return L_FORWARD;
	}
	if (!has_suffix(k, len, t->domain, t->domain_len))
		return L_FORWARD;
	if (len == t->domain_len)
		return L_APEX;
	for (i = 0; i + t->domain_len + 1 < len; i++) {
		if (k[i] != '.')
			continue;
		if ((*r = mk_dnstab_find(t, k + i + 1, len - i - 1)) != NULL)
			return L_NAME;
	}
	return L_NXDOMAIN;
}

/* Build the local reply for cls into p. false: out of memory. */
static bool
local_answer(ldns_pkt *p, const struct mk_dnstab *t, const struct query *qq,
    enum local cls, const struct mk_dnstab_rec *r)
{
	uint16_t qtype = qq->qi->qtype;
	bool in_zone;
	int n = 0;

	in_zone = t->domain_len > 0 &&
	    has_suffix(qq->key, qq->key_len, t->domain, t->domain_len);
	switch (cls) {
	case L_NAME:
		if (!push_addrs(p, qq, r, qtype, &n))
			return false;
		break;
	case L_PTR:
		if (qtype == LDNS_RR_TYPE_PTR || qtype == LDNS_RR_TYPE_ANY) {
			if (!push_ptr(p, qq, r))
				return false;
			n = 1;
		}
		in_zone = false;
		break;
	case L_APEX:
		if (qtype == LDNS_RR_TYPE_SOA || qtype == LDNS_RR_TYPE_ANY) {
			if (!push(p, LDNS_SECTION_ANSWER, soa_rr(t)))
				return false;
			n = 1;
		}
		break;
	case L_NXDOMAIN:
		ldns_pkt_set_rcode(p, LDNS_RCODE_NXDOMAIN);
		break;
	default:
		ldns_pkt_set_rcode(p, LDNS_RCODE_NXDOMAIN);
		in_zone = false;
		break;
	}
	/* No data or no name: the SOA lets resolvers cache the "no". */
	if (n == 0 && in_zone && !push(p, LDNS_SECTION_AUTHORITY, soa_rr(t)))
		return false;
	return true;
}

static enum mk_dns_action
error_reply(const struct query *qq, int rcode, uint8_t *out, size_t cap,
    size_t *outlen)
{
	ldns_pkt *p;
	int rc;

	p = reply_new(qq->pkt, qq->question, rcode, false);
	if (p == NULL)
		return MK_DNS_DROP;
	rc = finish(p, qq->qi->limit, out, cap, outlen);
	ldns_pkt_free(p);
	if (rc != 0)
		return MK_DNS_DROP;
	qq->qi->rcode = rcode;
	return MK_DNS_REPLY;
}

/* Parse q into qq; false if ldns cannot read it. */
static bool
parse_query(struct query *qq, const uint8_t *q, size_t qlen,
    unsigned flags)
{
	struct mk_dns_qinfo *qi = qq->qi;
	int kl;

	if (ldns_wire2pkt(&qq->pkt, q, qlen) != LDNS_STATUS_OK)
		return false;
	/* ldns takes OPT records out of the additional section (the last
	 * one wins) and counts them off ARCOUNT: the difference is how
	 * many there were. */
	qq->n_opt = (unsigned)((q[10] << 8 | q[11]) -
	    ldns_pkt_arcount(qq->pkt));
	qi->edns = ldns_pkt_edns(qq->pkt);
	qi->do_bit = qi->edns && ldns_pkt_edns_do(qq->pkt);
	qi->limit = mk_dns_limit(qi->edns, ldns_pkt_edns_udp_size(qq->pkt),
	    (flags & MK_DNS_TCP) != 0);
	if (ldns_pkt_qdcount(qq->pkt) != 1 ||
	    ldns_rr_list_rr_count(ldns_pkt_question(qq->pkt)) != 1)
		return true;
	qq->question = ldns_rr_list_rr(ldns_pkt_question(qq->pkt), 0);
	qq->qname = ldns_rr_owner(qq->question);
	qi->qtype = (uint16_t)ldns_rr_get_type(qq->question);
	qi->qclass = (uint16_t)ldns_rr_get_class(qq->question);
	if (qq->qname == NULL || (kl = name_key(qq->qname, qq->key,
	    sizeof(qq->key))) < 0) {
		qq->question = NULL;
		return true;
	}
	qq->key_len = (size_t)kl;
	memcpy(qi->qname, qq->key, qq->key_len + 1);
	return true;
}

enum mk_dns_action
mk_dns_respond(const uint8_t *q, size_t qlen, const struct mk_dnstab *t,
    unsigned flags, uint8_t *out, size_t cap, size_t *outlen,
    struct mk_dns_qinfo *qi)
{
	struct mk_dns_qinfo dummy;
	struct query qq;
	const struct mk_dnstab_rec *r;
	enum mk_dns_action act = MK_DNS_DROP;
	enum local cls;
	ldns_pkt *p;

	if (qi == NULL)
		qi = &dummy;
	memset(qi, 0, sizeof(*qi));
	qi->rcode = -1;
	qi->limit = mk_dns_limit(false, 0, (flags & MK_DNS_TCP) != 0);
	/* Never answer a response: two servers would ping-pong forever. */
	if (qlen < MK_DNS_HDR || (q[2] & 0x80) != 0)
		return MK_DNS_DROP;
	qi->id = mk_dns_id(q);
	if (OPCODE(q) != LDNS_PACKET_QUERY)
		return header_reply(q, MK_DNS_NOTIMP, out, cap, outlen, qi);
	memset(&qq, 0, sizeof(qq));
	qq.qi = qi;
	if (!parse_query(&qq, q, qlen, flags))
		return header_reply(q, MK_DNS_FORMERR, out, cap, outlen, qi);
	if (qq.question == NULL) {
		act = error_reply(&qq, MK_DNS_FORMERR, out, cap, outlen);
		goto out;
	}
	/* RFC 6891 6.1.1: more than one OPT record is a format error. */
	if (qq.n_opt > 1) {
		act = error_reply(&qq, MK_DNS_FORMERR, out, cap, outlen);
		goto out;
	}
	if (qi->edns && ldns_pkt_edns_version(qq.pkt) != 0) {
		act = error_reply(&qq, MK_DNS_BADVERS, out, cap, outlen);
		goto out;
	}
	if (qi->qclass != LDNS_RR_CLASS_IN && qi->qclass != LDNS_RR_CLASS_ANY) {
		act = MK_DNS_FORWARD;
		goto out;
	}
	cls = classify(t, qq.key, qq.key_len, &r);
	if (cls == L_FORWARD) {
		act = MK_DNS_FORWARD;
		goto out;
	}
	/* The question moves to the reply rather than being copied: this
	 * is the hot path, and the query is freed right after. */
	if ((p = reply_new(qq.pkt, NULL, MK_DNS_NOERROR, true)) != NULL) {
		ldns_rr_list_free(ldns_pkt_question(p));
		ldns_pkt_set_question(p, ldns_pkt_question(qq.pkt));
		ldns_pkt_set_qdcount(p, 1);
		ldns_pkt_set_question(qq.pkt, NULL);
	}
	if (p != NULL && local_answer(p, t, &qq, cls, r) &&
	    finish(p, qi->limit, out, cap, outlen) == 0) {
		qi->local = true;
		qi->rcode = ldns_pkt_get_rcode(p);
		act = MK_DNS_REPLY;
	}
	ldns_pkt_free(p);
out:
	ldns_pkt_free(qq.pkt);
	return act;
}

int
mk_dns_error(const uint8_t *q, size_t qlen, int rcode, uint8_t *out,
    size_t cap, size_t *outlen)
{
	struct mk_dns_qinfo qi;
	struct query qq;
	int rc = -1;

	memset(&qi, 0, sizeof(qi));
	memset(&qq, 0, sizeof(qq));
	qq.qi = &qi;
	qi.limit = MK_DNS_MSG_MAX;
	if (qlen < MK_DNS_HDR || !parse_query(&qq, q, qlen, MK_DNS_TCP))
		goto out;
	if (error_reply(&qq, rcode, out, cap, outlen) == MK_DNS_REPLY)
		rc = 0;
out:
	ldns_pkt_free(qq.pkt);
	return rc;
}

int
mk_dns_check_answer(const uint8_t *q, size_t qlen, const uint8_t *resp,
    size_t rlen, bool *tc)
{
	ldns_pkt *qp = NULL, *rp = NULL;
	const ldns_rr *qr, *rr;
	int rc = -1;

	*tc = false;
	if (qlen < MK_DNS_HDR || rlen < MK_DNS_HDR || (resp[2] & 0x80) == 0 ||
	    OPCODE(q) != OPCODE(resp))
		return -1;
	if (ldns_wire2pkt(&qp, q, qlen) != LDNS_STATUS_OK ||
	    ldns_wire2pkt(&rp, resp, rlen) != LDNS_STATUS_OK)
		goto out;
	if (ldns_rr_list_rr_count(ldns_pkt_question(qp)) != 1)
		goto out;
	/* Some servers refuse what they cannot read with a bare header. */
	if (ldns_rr_list_rr_count(ldns_pkt_question(rp)) == 0 &&
	    ldns_pkt_get_rcode(rp) != LDNS_RCODE_NOERROR &&
	    ldns_pkt_get_rcode(rp) != LDNS_RCODE_NXDOMAIN) {
		rc = ldns_pkt_get_rcode(rp);
		goto out;
	}
	if (ldns_rr_list_rr_count(ldns_pkt_question(rp)) != 1)
		goto out;
	qr = ldns_rr_list_rr(ldns_pkt_question(qp), 0);
	rr = ldns_rr_list_rr(ldns_pkt_question(rp), 0);
	if (ldns_rr_get_type(qr) != ldns_rr_get_type(rr) ||
	    ldns_rr_get_class(qr) != ldns_rr_get_class(rr) ||
	    ldns_dname_compare(ldns_rr_owner(qr), ldns_rr_owner(rr)) != 0)
		goto out;
	*tc = ldns_pkt_tc(rp);
	rc = ldns_pkt_get_rcode(rp);
out:
	ldns_pkt_free(qp);
	ldns_pkt_free(rp);
	return rc;
}

int
mk_dns_fit(uint8_t *resp, size_t *len, size_t cap, size_t limit)
{
	ldns_pkt *p = NULL;
	ldns_buffer *b = NULL;
	size_t n;
	int rc = -1;

	if (*len <= limit)
		return 0;
	if (ldns_wire2pkt(&p, resp, *len) != LDNS_STATUS_OK)
		return -1;
	if ((b = ldns_buffer_new(MK_DNS_UDP_MIN)) == NULL ||
	    fit_records(p, limit, b) != 0)
		goto out;
	n = ldns_buffer_position(b);
	if (n > cap || n > limit)
		goto out;
	memcpy(resp, ldns_buffer_begin(b), n);
	*len = n;
	rc = 0;
out:
	ldns_buffer_free(b);
	ldns_pkt_free(p);
	return rc;
}
