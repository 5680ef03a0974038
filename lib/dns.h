/* SPDX-License-Identifier: MIT */
/*
 * MagicDNS query handling, all packet work through ldns: a pure function
 * takes a query and a name table and says what to do (answer it from the
 * table, forward it, or drop it), plus the helpers the forwarder needs to
 * check, fit and fail upstream answers. Nothing here touches a socket.
 */
#ifndef MK_DNS_H
#define MK_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mk_dnstab;

#define MK_DNS_TTL		5	/* positive answers (Tailscale's) */
#define MK_DNS_NEG_TTL		10	/* SOA of negative answers */
#define MK_DNS_HDR		12
#define MK_DNS_UDP_MIN		512	/* without EDNS (RFC 1035) */
#define MK_DNS_UDP_MAX		4096	/* most a UDP client gets */
#define MK_DNS_EDNS_SIZE	1232	/* we advertise (flag day 2020) */
#define MK_DNS_MSG_MAX		65535	/* TCP */
#define MK_DNS_QNAME_MAX	253	/* text, no trailing dot */

/* RCODEs used here (RFC 1035, 6891). */
#define MK_DNS_NOERROR		0
#define MK_DNS_FORMERR		1
#define MK_DNS_SERVFAIL		2
#define MK_DNS_NXDOMAIN		3
#define MK_DNS_NOTIMP		4
#define MK_DNS_REFUSED		5
#define MK_DNS_BADVERS		16

enum mk_dns_action {
	MK_DNS_DROP = 0,	/* no answer: too short, or a response */
	MK_DNS_REPLY,		/* out holds the reply (local, error) */
	MK_DNS_FORWARD,		/* not ours: send the query upstream */
};

/* mk_dns_respond flags */
#define MK_DNS_TCP	(1U << 0)	/* the client came over TCP */

/* What a query asked, filled as far as it could be read. */
struct mk_dns_qinfo {
	uint16_t	id;
	uint16_t	qtype;
	uint16_t	qclass;
	uint16_t	limit;	/* largest reply the client takes */
	bool		edns;
	bool		do_bit;
	bool		local;		/* answered from the table */
	int		rcode;		/* of the reply, -1 if none */
	char		qname[MK_DNS_QNAME_MAX + 2];	/* lowercase */
};

/*
 * Decide about one query (q, qlen bytes) with the names of t. MK_DNS_REPLY:
 * the reply is in out (cap bytes; MK_DNS_MSG_MAX always suffices) and
 * *outlen is set, already no larger than what the client takes over its
 * transport (TC set and the records that fit kept when it did not).
 * Malformed queries (more than one OPT record too) get FORMERR, other
 * opcodes NOTIMP, EDNS versions other than 0 BADVERS.
 * qi may be NULL.
 */
enum mk_dns_action mk_dns_respond(const uint8_t *q, size_t qlen,
    const struct mk_dnstab *t, unsigned flags, uint8_t *out, size_t cap,
    size_t *outlen, struct mk_dns_qinfo *qi);

/*
 * An error reply (SERVFAIL, REFUSED, ...) to a query mk_dns_respond took
 * for MK_DNS_FORWARD: same ID, question and EDNS (with DO) as the query.
 * 0, or -1 if the query does not parse or out is too small.
 */
int mk_dns_error(const uint8_t *q, size_t qlen, int rcode, uint8_t *out,
    size_t cap, size_t *outlen);

/*
 * Does resp answer query q: a response, same opcode, same question
 * (names compared without regard to case), or an error with no question
 * at all (FORMERR, SERVFAIL, ... as some servers send)? The IDs are not
 * compared. Returns the RCODE (0-15), or -1 if it is not an answer to q.
 * *tc tells whether the answer was truncated.
 */
int mk_dns_check_answer(const uint8_t *q, size_t qlen, const uint8_t *resp,
    size_t rlen, bool *tc);

/*
 * Make an answer fit in limit bytes: left alone when it does, else it
 * keeps the records that fit, in message order (answers, authority,
 * additional; the OPT record always), with TC set, as dnsmasq and
 * Tailscale do: a client that retries over TCP gets it all there, one
 * that never does still gets what fits. 0, or -1 if resp does not parse
 * or not even its header and question fit.
 */
int mk_dns_fit(uint8_t *resp, size_t *len, size_t cap, size_t limit);

/* The reply size limit of a client: 65535 over TCP, its EDNS size
 * (512..4096) over UDP. */
uint16_t mk_dns_limit(bool edns, uint16_t udp_size, bool tcp);

/* Header fields without parsing the rest. */
static inline uint16_t
mk_dns_id(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline void
mk_dns_set_id(uint8_t *p, uint16_t id)
{
	p[0] = (uint8_t)(id >> 8);
	p[1] = (uint8_t)id;
}

/* "A", "AAAA", ... or "TYPE65280"; buf of at least 16 bytes. */
const char *mk_dns_type_str(uint16_t type, char *buf, size_t len);
/* "NOERROR", "NXDOMAIN", ... */
const char *mk_dns_rcode_str(int rcode);

#endif
