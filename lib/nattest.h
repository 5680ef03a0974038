/* SPDX-License-Identifier: MIT */
/*
 * NAT behaviour discovery (RFC 4787/5780, and netcheck's multi-server
 * comparison) from one socket: mapping, filtering, port preservation,
 * hairpinning, "no NAT", "UDP blocked", and STUN round trips to relays.
 * Blocking; it takes about one round trip plus the filtering wait (half a
 * second) when the servers answer. An IPv6-only host behind NAT64 gets
 * the same tests through the NAT64's prefix. Shared by natclass and,
 * later, punch.
 */
#ifndef MK_NATTEST_H
#define MK_NATTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "stunclient.h"

enum mk_nat_behaviour {
	MK_NAT_UNKNOWN = 0,
	MK_NAT_NONE,		/* no NAT in the way */
	MK_NAT_EI,		/* endpoint-independent */
	MK_NAT_AD,		/* address-dependent */
	MK_NAT_APD,		/* address-and-port-dependent */
	MK_NAT_DEPENDENT,	/* endpoint-dependent, AD or APD not told */
};

/* Something to ask: a STUN server, or a relay's STUN endpoint. */
struct mk_nat_target {
	char name[256];		/* as the user wrote it, for reports */
	struct mk_addr addr;	/* resolved */
	int region;		/* relays: region ID (0 for mesh.conf relays) */
	char code[32];		/* relays: region code */
	char region_name[128];
	char host[256];		/* relays: host for the TCP 443 check */
	uint16_t tcp_port;	/* relays: HTTPS port */
};

struct mk_nat_result {
	enum mk_stunc_state state;
	uint64_t rtt_us;
	struct mk_addr mapped;
	struct mk_addr other_address;	/* len 0 when absent */
	struct mk_addr response_origin;
	uint16_t error_code;
	int last_errno;		/* MK_STUNC_FAILED: why it could not send */
	unsigned junk;		/* replies from it that were not valid answers */
};

struct mk_nat_opts {
	const struct mk_nat_target *servers;
	size_t n_servers;
	const struct mk_nat_target *relays;
	size_t n_relays;
	int fd;			/* an inherited IPv4 socket, or -1 */
	uint16_t port;		/* local port for a new socket (0 = any) */
	uint64_t timeout_us;	/* how long to wait for a first answer */
	uint64_t filter_wait_us; /* how long a filtering reply may take */
	bool rfc;		/* RFC 8489 retransmission */
	bool hairpin;		/* probe hairpinning (off by default) */
};

struct mk_nat_report {
	bool udp;			/* any STUN answer at all */
	bool junk;			/* no answer, but nonsense came back */
	struct mk_addr local4;		/* our IPv4 address:port as routed */
	struct mk_addr global4;		/* the first IPv4 mapping */
	bool v6_tried;
	struct mk_addr local6;
	struct mk_addr global6;
	bool no_nat;
	/* IPv4 reached only through NAT64: an IPv6 server saw us from an
	 * IPv4 address. global4 is then that address, and the tests of the
	 * IPv4 path go over IPv6 to the server's /96 (RFC 6052) with the
	 * IPv4 addresses the server names embedded in it. */
	bool nat64;
	struct mk_addr nat64_prefix;	/* the server's address, port 0 */
	int varies_by_dest;		/* -1 unknown, 0 false, 1 true */
	int port_preserved;		/* -1 unknown */
	int hairpin;			/* -1 not checked */
	int tcp443;			/* -1 not checked: UDP worked or no relay */
	enum mk_nat_behaviour mapping;
	enum mk_nat_behaviour filtering;
	const char *mapping_method;	/* "rfc5780", "servers" or NULL */
	const char *filtering_server;	/* name of the RFC 5780 server used */
	char filtering_note[160];	/* why the filtering is unknown, if
					 * the tests ran ("" otherwise) */
	struct mk_addr discovery_server; /* its address (len 0: none) */
	struct mk_nat_result *servers;	/* n_servers, in input order */
	struct mk_nat_result *relays;	/* n_relays */
	size_t n_servers;
	size_t n_relays;
	int nearest_relay;		/* index into relays, -1 none */
};

/* Run every test the options ask for. 0, or -1 with *why (a socket could
 * not be opened). Not hearing anything is a result, not an error. */
int mk_nat_classify(struct mk_nat_report *r, const struct mk_nat_opts *o,
    const char **why);
void mk_nat_report_free(struct mk_nat_report *r);

/*
 * Mapping lifetime (RFC 5780 §4.6) against an RFC 5780 server that honours
 * RESPONSE-PORT (stunq -l --alt does): fresh mappings are left idle for
 * different times, all in parallel, and then the server is asked, from
 * another socket, to answer to each mapping's port; an answer that gets
 * through means the mapping was still there. A second round narrows the
 * interval. *lo_us is the longest idle time survived, *hi_us the shortest
 * one not survived (0 when every probe up to max_us survived). progress, if
 * set, is told each finding. 0, or -1 with *why.
 */
int mk_nat_lifetime(const struct mk_addr *server, uint64_t max_us,
    void (*progress)(void *arg, const char *msg), void *arg,
    uint64_t *lo_us, uint64_t *hi_us, const char **why);

/*
 * May natclass send to `a`, an address the server at `srv` named (its
 * OTHER-ADDRESS, or our mapping for the hairpin test)? NULL if it may, else
 * why not: another family (IPv4 through the NAT64 prefix of a report that
 * found one is allowed), this network, loopback, link-local, multicast,
 * reserved, port 0, or a private address named by a public server.
 */
const char *mk_nat_addr_refused(const struct mk_nat_report *r,
    const struct mk_addr *srv, const struct mk_addr *a);

/* One STUN answer, for the mapping verdict: the server asked, and the
 * address it saw us at (len 0: it did not answer). */
struct mk_nat_seen {
	struct mk_addr server;
	struct mk_addr mapped;
};

/*
 * The mapping verdict over the STUN answers one socket got (netcheck's
 * MappingVariesByDestIP): MK_NAT_DEPENDENT when two servers saw us at
 * different addresses or ports; MK_NAT_EI when none did and servers at
 * two different IP addresses saw the same one; else MK_NAT_UNKNOWN
 * (fewer than two answers, or only one server address: a NAT that maps
 * per destination address gives one server's ports the same mapping).
 * Only mappings of one family are compared: behind NAT64 an IPv6
 * socket's IPv4 mappings are not weighed against its native IPv6 ones.
 */
enum mk_nat_behaviour mk_nat_mapping_verdict(const struct mk_nat_seen *seen,
    size_t n);

/* "none", "EIM", "EDM", "blocked", "unknown" (also when servers sent only
 * nonsense: that is not proof of a blocked path) */
const char *mk_nat_word(const struct mk_nat_report *r);
/* "open", "full cone", "restricted cone", "port-restricted cone",
 * "symmetric", "UDP blocked", or "unknown" */
const char *mk_nat_classic(const struct mk_nat_report *r);
/* "endpoint-independent", "address-dependent", ... */
const char *mk_nat_behaviour_name(enum mk_nat_behaviour b);

#endif
