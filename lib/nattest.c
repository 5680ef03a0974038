/* SPDX-License-Identifier: MIT */
#include "nattest.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "sock.h"
#include "util.h"

#define SETTLE_MIN_US		300000
#define HAIRPIN_TRIES		3
#define HAIRPIN_WAIT_MS		200
#define TCP_CHECK_MS		1500

/* Where an IPv4 address is, seen from this host: itself, or behind NAT64
 * its RFC 6052 form in the /96 of the server that showed the NAT64. */
static void
v4_dest(const struct mk_nat_report *r, const struct mk_addr *v4,
    struct mk_addr *out)
{
	uint8_t ip[16];

	if (!r->nat64 || mk_addr_family(v4) != AF_INET) {
		*out = *v4;
		return;
	}
	memcpy(ip, &r->nat64_prefix.sin6.sin6_addr, 12);
	memcpy(ip + 12, &v4->sin.sin_addr, 4);
	mk_addr_from_v6(out, ip, mk_addr_port(v4));
}

/* Is this answer one of the IPv4 path's: an IPv4 server's, or behind
 * NAT64 an IPv6 server's that mapped us to IPv4? */
static bool
on_v4_path(const struct mk_nat_report *r, const struct mk_nat_target *t,
    const struct mk_nat_result *res)
{
	if (res->state != MK_STUNC_DONE)
		return false;
	if (!r->nat64)
		return mk_addr_family(&t->addr) == AF_INET;
	return mk_addr_family(&t->addr) == AF_INET6 &&
	    mk_addr_family(&res->mapped) == AF_INET;
}

/* The IPv4 address a target stands for: its own, or behind NAT64 the one
 * embedded in the last 32 bits (RFC 6052 /96). */
static void
v4_of(const struct mk_nat_report *r, const struct mk_addr *a, uint8_t ip[4])
{
	if (mk_addr_family(a) == AF_INET)
		memcpy(ip, &a->sin.sin_addr, 4);
	else if (r->nat64)
		memcpy(ip, (const uint8_t *)&a->sin6.sin6_addr + 12, 4);
	else
		memset(ip, 0, 4);
}

static bool
v4_private(const uint8_t ip[4])
{
	return ip[0] == 10 || (ip[0] == 172 && (ip[1] & 0xf0) == 16) ||
	    (ip[0] == 192 && ip[1] == 168) ||
	    (ip[0] == 100 && (ip[1] & 0xc0) == 64);	/* RFC 6598 */
}

/*
 * May natclass send to `a`, an address a server (`srv`) named? Only an
 * address of the server's family (IPv4 through the NAT64 prefix when the
 * server showed one), never this network, loopback, link-local, multicast
 * or reserved ones, and a private address only when the server's own is
 * private: a hostile server must not aim natclass at this host or its LAN.
 * NULL if it may, else why not.
 */
const char *
mk_nat_addr_refused(const struct mk_nat_report *r, const struct mk_addr *srv,
    const struct mk_addr *a)
{
	uint8_t ip[4], sip[4];
	const uint8_t *p;

	if (mk_addr_port(a) == 0)
		return "port 0";
	if (mk_addr_family(a) != mk_addr_family(srv) &&
	    !(r->nat64 && mk_addr_family(srv) == AF_INET6 &&
	    mk_addr_family(a) == AF_INET))
		return "not the server's address family";
	if (mk_addr_family(a) == AF_INET6) {
		p = (const uint8_t *)&a->sin6.sin6_addr;
		if (IN6_IS_ADDR_UNSPECIFIED(&a->sin6.sin6_addr))
			return "unspecified address";
		if (IN6_IS_ADDR_LOOPBACK(&a->sin6.sin6_addr))
			return "loopback address";
		if (IN6_IS_ADDR_MULTICAST(&a->sin6.sin6_addr))
			return "multicast address";
		if (IN6_IS_ADDR_LINKLOCAL(&a->sin6.sin6_addr) ||
		    IN6_IS_ADDR_SITELOCAL(&a->sin6.sin6_addr))
			return "link-local address";
		if (IN6_IS_ADDR_V4MAPPED(&a->sin6.sin6_addr) ||
		    IN6_IS_ADDR_V4COMPAT(&a->sin6.sin6_addr))
			return "IPv4-mapped address";
		if ((p[0] & 0xfe) == 0xfc &&
		    (((const uint8_t *)&srv->sin6.sin6_addr)[0] & 0xfe) != 0xfc)
			return "private address named by a public server";
		return NULL;
	}
	memcpy(ip, &a->sin.sin_addr, 4);
	v4_of(r, srv, sip);
	if (ip[0] == 0)
		return "unspecified address";
	if (ip[0] == 127)
		return "loopback address";
	if (ip[0] == 169 && ip[1] == 254)
		return "link-local address";
	if ((ip[0] & 0xf0) == 224)
		return "multicast address";
	if ((ip[0] & 0xf0) == 240)
		return "reserved or broadcast address";
	if (v4_private(ip) && !v4_private(sip))
		return "private address named by a public server";
	return NULL;
}

/* Transactions of one socket, and where each result goes. */
struct batch {
	struct mk_stunc_txn *t;
	struct mk_nat_result **out;
	size_t n;
};

static int
batch_alloc(struct batch *b, size_t n)
{
	b->n = 0;
	b->t = calloc(n ? n : 1, sizeof(*b->t));
	b->out = calloc(n ? n : 1, sizeof(*b->out));
	return b->t != NULL && b->out != NULL ? 0 : -1;
}

static void
batch_free(struct batch *b)
{
	free(b->t);
	free(b->out);
}

static void
batch_add(struct batch *b, const struct mk_addr *to, struct mk_nat_result *out)
{
	memset(&b->t[b->n], 0, sizeof(b->t[b->n]));
	b->t[b->n].server = *to;
	b->out[b->n++] = out;
}

static void
keep_result(struct mk_nat_result *out, const struct mk_stunc_txn *t)
{
	memset(out, 0, sizeof(*out));
	out->state = t->state;
	out->rtt_us = t->rtt_us;
	out->junk = t->junk;
	out->last_errno = t->last_errno;
	if (t->state == MK_STUNC_DONE) {
		out->mapped = t->mapped;
		if (t->resp.has & MK_STUN_HAS_OTHER_ADDRESS)
			out->other_address = t->resp.other_address;
		if (t->resp.has & MK_STUN_HAS_RESPONSE_ORIGIN)
			out->response_origin = t->resp.response_origin;
	} else if (t->state == MK_STUNC_ERROR)
		out->error_code = t->resp.error_code;
}

static void
batch_keep(struct batch *b)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		keep_result(b->out[i], &b->t[i]);
}

static void
sched(struct mk_stunc_sched *s, const struct mk_nat_opts *o, uint64_t timeout)
{
	if (o->rfc)
		mk_stunc_sched_rfc(s, timeout);
	else
		mk_stunc_sched_fast(s, timeout);
}

/* Our own address towards dst: the socket's port with the source address
 * the kernel routes from. */
static void
local_towards(int fd, const struct mk_addr *dst, struct mk_addr *out)
{
	struct mk_addr src;

	memset(out, 0, sizeof(*out));
	if (mk_sock_local(fd, out) != 0)
		return;
	if (mk_addr_is_any(out) && mk_route_source(dst, &src) == 0) {
		mk_addr_set_port(&src, mk_addr_port(out));
		*out = src;
	}
}

/* Phase 1: Binding requests to every server and relay, IPv4 and IPv6. */
static int
ask_everyone(struct mk_nat_report *r, const struct mk_nat_opts *o, int fd4,
    int fd6)
{
	struct batch b4 = { 0 }, b6 = { 0 };
	struct mk_stunc_group g[2];
	struct mk_stunc_sched s;
	size_t i, ng = 0, total = o->n_servers + o->n_relays;
	int rc = -1;

	if (batch_alloc(&b4, total) != 0 || batch_alloc(&b6, total) != 0)
		goto out;
	for (i = 0; i < total; i++) {
		const struct mk_nat_target *t = i < o->n_servers ?
		    &o->servers[i] : &o->relays[i - o->n_servers];
		struct mk_nat_result *res = i < o->n_servers ?
		    &r->servers[i] : &r->relays[i - o->n_servers];

		if (mk_addr_family(&t->addr) == AF_INET && fd4 >= 0)
			batch_add(&b4, &t->addr, res);
		else if (mk_addr_family(&t->addr) == AF_INET6 && fd6 >= 0)
			batch_add(&b6, &t->addr, res);
		else
			res->state = MK_STUNC_FAILED;
	}
	sched(&s, o, o->timeout_us);
	if (b4.n > 0)
		g[ng++] = (struct mk_stunc_group){ fd4, b4.t, b4.n, &s,
		    o->filter_wait_us > SETTLE_MIN_US ? o->filter_wait_us :
		    SETTLE_MIN_US };
	if (b6.n > 0)
		g[ng++] = (struct mk_stunc_group){ fd6, b6.t, b6.n, &s,
		    o->filter_wait_us > SETTLE_MIN_US ? o->filter_wait_us :
		    SETTLE_MIN_US };
	if (ng > 0 && mk_stunc_exchange_groups(g, ng) < 0)
		goto out;
	batch_keep(&b4);
	batch_keep(&b6);
	rc = 0;
out:
	batch_free(&b4);
	batch_free(&b6);
	return rc;
}

/* The first answer from a server of family tf that saw us from an address
 * of family mf, servers before relays. */
static const struct mk_nat_result *
first_answer(const struct mk_nat_report *r, const struct mk_nat_opts *o,
    int tf, int mf, const struct mk_nat_target **target)
{
	size_t i;

	for (i = 0; i < r->n_servers; i++) {
		if (r->servers[i].state == MK_STUNC_DONE &&
		    mk_addr_family(&o->servers[i].addr) == tf &&
		    mk_addr_family(&r->servers[i].mapped) == mf) {
			*target = &o->servers[i];
			return &r->servers[i];
		}
	}
	for (i = 0; i < r->n_relays; i++) {
		if (r->relays[i].state == MK_STUNC_DONE &&
		    mk_addr_family(&o->relays[i].addr) == tf &&
		    mk_addr_family(&r->relays[i].mapped) == mf) {
			*target = &o->relays[i];
			return &r->relays[i];
		}
	}
	return NULL;
}

enum mk_nat_behaviour
mk_nat_mapping_verdict(const struct mk_nat_seen *seen, size_t n)
{
	bool same_from_two = false;
	size_t i, k;

	for (i = 0; i < n; i++) {
		if (seen[i].mapped.len == 0)
			continue;
		for (k = i + 1; k < n; k++) {
			if (seen[k].mapped.len == 0 ||
			    mk_addr_family(&seen[k].mapped) !=
			    mk_addr_family(&seen[i].mapped))
				continue;
			if (!mk_addr_equal(&seen[i].mapped, &seen[k].mapped))
				return MK_NAT_DEPENDENT;
			if (!mk_addr_same_ip(&seen[i].server, &seen[k].server))
				same_from_two = true;
		}
	}
	return same_from_two ? MK_NAT_EI : MK_NAT_UNKNOWN;
}

/*
 * The mapping verdict over the IPv4 path's answers: the STUN servers' when
 * there are any, else the relays'. Sets varies_by_dest once two answered.
 */
static enum mk_nat_behaviour
compare_servers(struct mk_nat_report *r, const struct mk_nat_opts *o)
{
	const struct mk_nat_result *res = r->n_servers ? r->servers : r->relays;
	const struct mk_nat_target *tg = r->n_servers ? o->servers : o->relays;
	size_t n = r->n_servers ? r->n_servers : r->n_relays, i, k = 0;
	struct mk_nat_seen *seen;
	enum mk_nat_behaviour v;

	if ((seen = calloc(n ? n : 1, sizeof(*seen))) == NULL)
		return MK_NAT_UNKNOWN;
	for (i = 0; i < n; i++) {
		if (!on_v4_path(r, &tg[i], &res[i]))
			continue;
		seen[k].server = tg[i].addr;
		seen[k++].mapped = res[i].mapped;
	}
	v = mk_nat_mapping_verdict(seen, k);
	if (v == MK_NAT_DEPENDENT)
		r->varies_by_dest = 1;
	else if (k >= 2)
		r->varies_by_dest = 0;
	free(seen);
	return v;
}

/* A usable RFC 5780 server: it named an alternate address that differs in
 * both address and port from the one asked. */
static int
rfc5780_server(const struct mk_nat_report *r, const struct mk_nat_opts *o)
{
	size_t i;

	for (i = 0; i < r->n_servers; i++) {
		const struct mk_addr *srv = &o->servers[i].addr;
		struct mk_addr alt;
		const char *refused;
		char a[MK_ADDRSTRLEN];

		if (!on_v4_path(r, &o->servers[i], &r->servers[i]) ||
		    mk_addr_family(&r->servers[i].other_address) != AF_INET)
			continue;
		refused = mk_nat_addr_refused(r, srv,
		    &r->servers[i].other_address);
		if (refused != NULL) {
			mk_warn("%s: OTHER-ADDRESS %s not probed: %s",
			    o->servers[i].name, mk_addr_fmt(
			    &r->servers[i].other_address, a, sizeof(a)),
			    refused);
			continue;
		}
		v4_dest(r, &r->servers[i].other_address, &alt);
		if (!mk_addr_same_ip(srv, &alt) &&
		    mk_addr_port(srv) != mk_addr_port(&alt))
			return (int)i;
	}
	return -1;
}

/* Did this change request's answer come from where it was asked to
 * (RFC 5780 §4.4)? A server that ignores CHANGE-REQUEST answers from its
 * primary address, which the NAT lets in whatever its filtering. */
static bool
honoured(struct mk_nat_report *r, const struct mk_stunc_txn *t)
{
	char a[MK_ADDRSTRLEN], b[MK_ADDRSTRLEN];

	if (t->state != MK_STUNC_DONE || mk_addr_equal(&t->from,
	    &t->accept_from))
		return true;
	snprintf(r->filtering_note, sizeof(r->filtering_note),
	    "inconclusive: a change-%s request was answered from %s, not %s",
	    t->change & MK_STUN_CHANGE_IP ? "IP-and-port" : "port",
	    mk_addr_fmt(&t->from, a, sizeof(a)),
	    mk_addr_fmt(&t->accept_from, b, sizeof(b)));
	mk_warn("filtering %s", r->filtering_note);
	return false;
}

/* Filtering from tests I (t[0]), II (t[1], change IP and port) and III
 * (t[2], change port). */
static enum mk_nat_behaviour
filtering(struct mk_nat_report *r, const struct mk_stunc_txn *t)
{
	mk_info("filtering tests: plain %s, change IP and port %s, change "
	    "port %s", mk_stunc_state_name(t[0].state),
	    mk_stunc_state_name(t[1].state), mk_stunc_state_name(t[2].state));
	if (t[0].state != MK_STUNC_DONE) {
		snprintf(r->filtering_note, sizeof(r->filtering_note),
		    "inconclusive: the fresh socket got no answer");
		return MK_NAT_UNKNOWN;
	}
	/* A server that refuses CHANGE-REQUEST (420) cannot tell. */
	if (t[1].state == MK_STUNC_ERROR || t[2].state == MK_STUNC_ERROR) {
		snprintf(r->filtering_note, sizeof(r->filtering_note),
		    "inconclusive: the server refused CHANGE-REQUEST");
		return MK_NAT_UNKNOWN;
	}
	if (!honoured(r, &t[1]) || !honoured(r, &t[2]))
		return MK_NAT_UNKNOWN;
	if (t[1].state == MK_STUNC_DONE)
		return MK_NAT_EI;
	if (t[2].state == MK_STUNC_DONE)
		return MK_NAT_AD;
	return MK_NAT_APD;
}

/*
 * Phase 2, RFC 5780 §4.3 and §4.4 at once. Mapping tests II and III go from
 * the first socket; the filtering tests from a fresh one, so the mapping
 * tests' packets to the alternate address cannot open its filter. Filtering
 * test I (no CHANGE-REQUEST) proves the fresh socket gets answers at all.
 */
static int
behaviour_discovery(struct mk_nat_report *r, const struct mk_nat_opts *o,
    int fd, int si)
{
	const struct mk_addr *p = &o->servers[si].addr;
	struct mk_stunc_txn *t;
	struct mk_stunc_group g[2];
	struct mk_stunc_sched sm, sf;
	struct mk_addr alt, a2, a3, any;
	const struct mk_addr *m1 = &r->servers[si].mapped;
	const char *why;
	char a1[MK_ADDRSTRLEN];
	int fdb, rc = -1;

	t = calloc(5, sizeof(*t));
	if (t == NULL)
		return -1;
	v4_dest(r, &r->servers[si].other_address, &alt);
	mk_addr_any(&any, mk_addr_family(p), 0);
	fdb = mk_udp_bind(&any, 0, &why);
	if (fdb < 0)
		goto out;
	a2 = alt;				/* alternate IP, primary port */
	mk_addr_set_port(&a2, mk_addr_port(p));
	a3 = alt;				/* alternate IP and port */
	t[0].server = a2;
	t[1].server = a3;
	t[2].server = *p;			/* filtering I */
	t[3].server = *p;			/* II: change IP and port */
	t[3].change = MK_STUN_CHANGE_IP | MK_STUN_CHANGE_PORT;
	t[3].accept_from = alt;
	t[4].server = *p;			/* III: change port */
	t[4].change = MK_STUN_CHANGE_PORT;
	t[4].accept_from = *p;
	mk_addr_set_port(&t[4].accept_from, mk_addr_port(&alt));
	sched(&sm, o, o->timeout_us);
	sched(&sf, o, o->filter_wait_us);
	g[0] = (struct mk_stunc_group){ fd, &t[0], 2, &sm, 0 };
	g[1] = (struct mk_stunc_group){ fdb, &t[2], 3, &sf, 0 };
	if (mk_stunc_exchange_groups(g, 2) < 0)
		goto out;

	mk_info("behaviour discovery with %s, alternate address %s",
	    o->servers[si].name, mk_addr_fmt(&alt, a1, sizeof(a1)));
	r->mapping_method = "rfc5780";
	r->filtering_server = o->servers[si].name;
	r->discovery_server = *p;
	if (t[0].state != MK_STUNC_DONE)
		r->mapping = MK_NAT_UNKNOWN;
	else if (mk_addr_equal(&t[0].mapped, m1))
		r->mapping = MK_NAT_EI;
	else if (t[1].state != MK_STUNC_DONE)
		r->mapping = MK_NAT_DEPENDENT;
	else if (mk_addr_equal(&t[1].mapped, &t[0].mapped))
		r->mapping = MK_NAT_AD;
	else
		r->mapping = MK_NAT_APD;
	if (t[0].state == MK_STUNC_DONE)
		r->varies_by_dest = !mk_addr_equal(&t[0].mapped, m1);

	mk_info("mapping tests: alternate address %s, alternate address and "
	    "port %s", t[0].state == MK_STUNC_DONE ? "answered" : "silent",
	    t[1].state == MK_STUNC_DONE ? "answered" : "silent");
	r->filtering = filtering(r, &t[2]);
	rc = 0;
out:
	if (fdb >= 0)
		close(fdb);
	free(t);
	return rc;
}

/* Does a packet to our own public mapping come back to us? */
static void
probe_hairpin(struct mk_nat_report *r, const struct mk_addr *srv, int fd4)
{
	const char *refused;
	char a[MK_ADDRSTRLEN];
	uint8_t marker[20], buf[64];
	struct mk_addr any, dst;
	struct pollfd pfd = { .fd = fd4, .events = POLLIN };
	const char *why;
	int fdb, i;
	ssize_t n;

	if ((refused = mk_nat_addr_refused(r, srv, &r->global4)) != NULL) {
		mk_warn("hairpinning not tested: mapped address %s: %s",
		    mk_addr_fmt(&r->global4, a, sizeof(a)), refused);
		return;
	}
	v4_dest(r, &r->global4, &dst);
	mk_addr_any(&any, mk_addr_family(&dst), 0);
	fdb = mk_udp_bind(&any, 0, &why);
	if (fdb < 0)
		return;
	randombytes_buf(marker, sizeof(marker));
	r->hairpin = 0;
	for (i = 0; i < HAIRPIN_TRIES && r->hairpin == 0; i++) {
		uint64_t end = mk_now_ms() + HAIRPIN_WAIT_MS, now;

		(void)sendto(fdb, marker, sizeof(marker), 0, &dst.sa, dst.len);
		while ((now = mk_now_ms()) < end && r->hairpin == 0) {
			if (poll(&pfd, 1, (int)(end - now)) <= 0)
				continue;
			while ((n = recv(fd4, buf, sizeof(buf), MSG_DONTWAIT)) >
			    0) {
				if ((size_t)n == sizeof(marker) &&
				    memcmp(buf, marker, sizeof(marker)) == 0)
					r->hairpin = 1;
			}
		}
	}
	close(fdb);
}

/* When UDP is blocked: can a relay's HTTPS port be reached over TCP?
 * Connects to every relay at once, each with a non-blocking socket. */
static void
probe_tcp(struct mk_nat_report *r, const struct mk_nat_opts *o)
{
	struct pollfd pfd[32];
	size_t n = 0, i;
	uint64_t end = mk_now_ms() + TCP_CHECK_MS, now;
	int err;
	socklen_t len;

	if (o->n_relays == 0)
		return;
	r->tcp443 = 0;
	for (i = 0; i < o->n_relays && n < MK_ARRAY_LEN(pfd); i++) {
		struct mk_addr a = o->relays[i].addr;
		int fd;

		mk_addr_set_port(&a, o->relays[i].tcp_port ?
		    o->relays[i].tcp_port : 443);
		fd = socket(mk_addr_family(&a), SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		if (connect(fd, &a.sa, a.len) == 0) {
			r->tcp443 = 1;
			close(fd);
			continue;
		}
		if (errno != EINPROGRESS) {
			close(fd);
			continue;
		}
		pfd[n].fd = fd;
		pfd[n++].events = POLLOUT;
	}
	while (r->tcp443 == 0 && n > 0 && (now = mk_now_ms()) < end) {
		if (poll(pfd, n, (int)(end - now)) <= 0)
			continue;
		for (i = 0; i < n; i++) {
			if (pfd[i].fd < 0 || pfd[i].revents == 0)
				continue;
			len = sizeof(err);
			if (getsockopt(pfd[i].fd, SOL_SOCKET, SO_ERROR, &err,
			    &len) == 0 && err == 0)
				r->tcp443 = 1;
			close(pfd[i].fd);
			pfd[i].fd = -1;
		}
	}
	for (i = 0; i < n; i++) {
		if (pfd[i].fd >= 0)
			close(pfd[i].fd);
	}
}

/* Lifetime probes: one socket per idle interval. */
struct lprobe {
	int fd;
	uint64_t idle_us;
	uint64_t start_us;
	uint16_t mapped_port;
	uint8_t txid[MK_STUN_TXID_LEN];
	unsigned asked;
	int alive;		/* -1 not yet known */
};

/* Open each probe's mapping; returns how many got one. */
static size_t
lifetime_open(struct lprobe *p, size_t n, const struct mk_addr *server)
{
	struct mk_stunc_txn *t;
	struct mk_stunc_group g[8];
	struct mk_stunc_sched s;
	struct mk_addr any;
	const char *why;
	size_t i, ok = 0;
	uint64_t now;

	t = calloc(n, sizeof(*t));
	if (t == NULL || n > MK_ARRAY_LEN(g))
		goto out;
	mk_addr_any(&any, AF_INET, 0);
	mk_stunc_sched_fast(&s, 3000000);
	for (i = 0; i < n; i++) {
		p[i].fd = mk_udp_bind(&any, 0, &why);
		p[i].alive = -1;
		t[i].server = *server;
		g[i] = (struct mk_stunc_group){ p[i].fd, &t[i], 1, &s, 0 };
		if (p[i].fd < 0)
			t[i].server.len = 0;
	}
	if (mk_stunc_exchange_groups(g, n) < 0)
		goto out;
	now = mk_now_us();
	for (i = 0; i < n; i++) {
		p[i].start_us = now;
		if (t[i].state == MK_STUNC_DONE) {
			p[i].mapped_port = mk_addr_port(&t[i].mapped);
			ok++;
		} else
			p[i].alive = 0;
	}
out:
	free(t);
	return ok;
}

/* Ask the server to answer to a probe's port; the request leaves from
 * `fdx`, so only the probe's own mapping can let the answer in. */
static void
lifetime_ask(int fdx, const struct mk_addr *server, struct lprobe *p)
{
	struct mk_stun_builder b;
	uint8_t buf[64], port[4] = { (uint8_t)(p->mapped_port >> 8),
	    (uint8_t)p->mapped_port, 0, 0 };
	size_t len;

	if (p->asked == 0)
		randombytes_buf(p->txid, sizeof(p->txid));
	mk_stun_begin(&b, buf, sizeof(buf), MK_STUN_BINDING_REQUEST, p->txid,
	    false);
	mk_stun_add_bytes(&b, MK_STUN_ATTR_RESPONSE_PORT, port, sizeof(port));
	mk_stun_add_fingerprint(&b);
	len = mk_stun_end(&b);
	if (len > 0)
		(void)sendto(fdx, buf, len, 0, &server->sa, server->len);
	p->asked++;
}

static bool
lifetime_heard(struct lprobe *p)
{
	uint8_t buf[MK_STUN_MAX_LEN];
	ssize_t n;
	bool heard = false;

	while ((n = recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
		if (mk_stun_is(buf, (size_t)n) && n >= MK_STUN_HDR_LEN &&
		    memcmp(buf + 8, p->txid, sizeof(p->txid)) == 0)
			heard = true;
	}
	return heard;
}

/* A mapping gone after t idle is gone after any longer idle time too:
 * stop waiting for those probes (they are not counted either way). */
static void
gone_after(struct lprobe *p, size_t n, uint64_t t)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i].alive < 0 && p[i].idle_us > t) {
			p[i].alive = 0;
			p[i].mapped_port = 0;
		}
	}
}

/*
 * Run probes until each is decided: at start + idle ask (three times,
 * 100 ms apart); heard within 300 ms of the first ask means alive.
 */
static void
lifetime_run(struct lprobe *p, size_t n, int fdx, const struct mk_addr *server,
    void (*progress)(void *, const char *), void *arg)
{
	struct pollfd pfd[8];
	char msg[128];
	uint64_t now, next;
	size_t i, open;

	for (;;) {
		now = mk_now_us();
		next = UINT64_MAX;
		open = 0;
		for (i = 0; i < n; i++) {
			uint64_t ask = p[i].start_us + p[i].idle_us +
			    (uint64_t)p[i].asked * 100000;

			pfd[i].fd = -1;		/* poll skips decided probes */
			pfd[i].events = POLLIN;
			if (p[i].alive >= 0)
				continue;
			if (p[i].asked > 0 && lifetime_heard(&p[i]))
				p[i].alive = 1;
			else if (p[i].asked >= 3 && now >= ask)
				p[i].alive = 0;
			else if (p[i].asked < 3 && now >= ask)
				lifetime_ask(fdx, server, &p[i]);
			if (p[i].alive == 0)
				gone_after(p, n, p[i].idle_us);
			if (p[i].alive >= 0) {
				snprintf(msg, sizeof(msg), "mapping %s after "
				    "%.1f s idle", p[i].alive ? "still open" :
				    "gone", (double)p[i].idle_us / 1e6);
				if (progress != NULL)
					progress(arg, msg);
				continue;
			}
			pfd[i].fd = p[i].fd;
			open++;
			ask = p[i].start_us + p[i].idle_us +
			    (uint64_t)p[i].asked * 100000;
			if (ask < next)
				next = ask;
		}
		if (open == 0)
			return;
		(void)poll(pfd, n, next <= now ? 0 :
		    (int)((next - now + 999) / 1000));
	}
}

static void
lifetime_close(struct lprobe *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i].fd >= 0)
			close(p[i].fd);
		p[i].fd = -1;
	}
}

/* One round over the given idle times; narrows [*lo, *hi]. */
static int
lifetime_round(const struct mk_addr *server, const uint64_t *idle, size_t n,
    void (*progress)(void *, const char *), void *arg, uint64_t *lo,
    uint64_t *hi, const char **why)
{
	struct lprobe p[8];
	struct mk_addr any;
	int fdx;
	size_t i;

	memset(p, 0, sizeof(p));
	for (i = 0; i < n; i++)
		p[i].idle_us = idle[i];
	mk_addr_any(&any, AF_INET, 0);
	fdx = mk_udp_bind(&any, 0, why);
	if (fdx < 0)
		return -1;
	if (lifetime_open(p, n, server) == 0) {
		*why = "the server did not answer";
		lifetime_close(p, n);
		close(fdx);
		return -1;
	}
	lifetime_run(p, n, fdx, server, progress, arg);
	for (i = 0; i < n; i++) {
		if (p[i].mapped_port == 0)
			continue;
		if (p[i].alive == 1 && p[i].idle_us > *lo)
			*lo = p[i].idle_us;
		if (p[i].alive == 0 && (*hi == 0 || p[i].idle_us < *hi))
			*hi = p[i].idle_us;
	}
	lifetime_close(p, n);
	close(fdx);
	return 0;
}

int
mk_nat_lifetime(const struct mk_addr *server, uint64_t max_us,
    void (*progress)(void *arg, const char *msg), void *arg,
    uint64_t *lo_us, uint64_t *hi_us, const char **why)
{
	uint64_t idle[8], t, step;
	size_t n = 0;

	*lo_us = *hi_us = 0;
	/* Round one: doubling idle times up to the cap. */
	for (t = 1000000; t < max_us && n < MK_ARRAY_LEN(idle) - 1; t *= 2)
		idle[n++] = t;
	idle[n++] = max_us;
	if (lifetime_round(server, idle, n, progress, arg, lo_us, hi_us,
	    why) != 0)
		return -1;
	if (*hi_us == 0 || *hi_us - *lo_us <= 500000)
		return 0;
	/* Round two: three points inside the interval found. */
	step = (*hi_us - *lo_us) / 4;
	for (n = 0; n < 3; n++)
		idle[n] = *lo_us + step * (n + 1);
	return lifetime_round(server, idle, 3, progress, arg, lo_us, hi_us,
	    why);
}

static void
pick_nearest(struct mk_nat_report *r)
{
	size_t i;

	for (i = 0; i < r->n_relays; i++) {
		if (r->relays[i].state != MK_STUNC_DONE)
			continue;
		if (r->nearest_relay < 0 ||
		    r->relays[i].rtt_us < r->relays[r->nearest_relay].rtt_us)
			r->nearest_relay = (int)i;
	}
}

static bool
any_junk(const struct mk_nat_report *r)
{
	size_t i;

	for (i = 0; i < r->n_servers; i++) {
		if (r->servers[i].junk > 0)
			return true;
	}
	for (i = 0; i < r->n_relays; i++) {
		if (r->relays[i].junk > 0)
			return true;
	}
	return false;
}

/* -vv progress: what each server and relay said. */
static void
log_answers(const struct mk_nat_report *r, const struct mk_nat_opts *o)
{
	const struct mk_nat_result *x;
	const struct mk_nat_target *t;
	char a[MK_ADDRSTRLEN];
	size_t i;

	for (i = 0; i < o->n_servers + o->n_relays; i++) {
		t = i < o->n_servers ? &o->servers[i] :
		    &o->relays[i - o->n_servers];
		x = i < o->n_servers ? &r->servers[i] :
		    &r->relays[i - o->n_servers];
		if (x->state == MK_STUNC_DONE)
			mk_info("%s: mapped %s in %.1f ms", t->name,
			    mk_addr_fmt(&x->mapped, a, sizeof(a)),
			    (double)x->rtt_us / 1000.0);
		else
			mk_info("%s: %s", t->name, mk_stunc_state_name(x->state));
	}
}

static bool
wants_family(const struct mk_nat_opts *o, int family)
{
	size_t i;

	for (i = 0; i < o->n_servers; i++) {
		if (mk_addr_family(&o->servers[i].addr) == family)
			return true;
	}
	for (i = 0; i < o->n_relays; i++) {
		if (mk_addr_family(&o->relays[i].addr) == family)
			return true;
	}
	return false;
}

int
mk_nat_classify(struct mk_nat_report *r, const struct mk_nat_opts *o,
    const char **why)
{
	const struct mk_nat_result *first;
	const struct mk_nat_target *ft = NULL, *ft4 = NULL;
	struct mk_addr any;
	int fd4 = -1, fd6 = -1, fdp, si, rc = -1;

	memset(r, 0, sizeof(*r));
	r->varies_by_dest = r->port_preserved = r->hairpin = r->tcp443 = -1;
	r->nearest_relay = -1;
	r->n_servers = o->n_servers;
	r->n_relays = o->n_relays;
	r->servers = calloc(o->n_servers + 1, sizeof(*r->servers));
	r->relays = calloc(o->n_relays + 1, sizeof(*r->relays));
	if (r->servers == NULL || r->relays == NULL) {
		*why = "out of memory";
		goto out;
	}
	if (o->fd >= 0)
		fd4 = o->fd;
	else if (wants_family(o, AF_INET)) {
		mk_addr_any(&any, AF_INET, o->port);
		fd4 = mk_udp_bind(&any, 0, why);
		if (fd4 < 0)
			goto out;
	}
	if (wants_family(o, AF_INET6)) {
		/* No IPv6 on this host is an answer, not an error. */
		mk_addr_any(&any, AF_INET6, o->port);
		fd6 = mk_udp_bind(&any, 0, why);
		r->v6_tried = true;
	}
	mk_info("asking %zu servers and %zu relays", o->n_servers,
	    o->n_relays);
	if (ask_everyone(r, o, fd4, fd6) != 0) {
		*why = "poll";
		goto out;
	}
	log_answers(r, o);

	r->junk = any_junk(r);
	first = first_answer(r, o, AF_INET, AF_INET, &ft);
	fdp = fd4;
	if (first == NULL &&
	    (first = first_answer(r, o, AF_INET6, AF_INET, &ft)) != NULL) {
		r->nat64 = true;
		r->nat64_prefix = ft->addr;
		mk_addr_set_port(&r->nat64_prefix, 0);
		memset((uint8_t *)&r->nat64_prefix.sin6.sin6_addr + 12, 0, 4);
		fdp = fd6;
	}
	r->udp = first != NULL;
	if (first != NULL) {
		ft4 = ft;
		r->global4 = first->mapped;
		local_towards(fdp, &ft->addr, &r->local4);
		r->no_nat = mk_addr_equal(&r->global4, &r->local4);
		r->port_preserved = mk_addr_port(&r->global4) ==
		    mk_addr_port(&r->local4);
	}
	first = first_answer(r, o, AF_INET6, AF_INET6, &ft);
	if (first != NULL) {
		r->udp = true;
		r->global6 = first->mapped;
		local_towards(fd6, &ft->addr, &r->local6);
	}

	if (r->global4.len != 0) {
		enum mk_nat_behaviour by_servers = compare_servers(r, o);

		si = rfc5780_server(r, o);
		if (si >= 0) {
			if (behaviour_discovery(r, o, fdp, si) != 0) {
				*why = "behaviour discovery";
				goto out;
			}
		} else if (by_servers != MK_NAT_UNKNOWN) {
			r->mapping_method = "servers";
			r->mapping = by_servers;
		}
		if (si < 0)
			mk_info("no RFC 5780 server: filtering not tested");
		if (r->no_nat && r->mapping != MK_NAT_DEPENDENT)
			r->mapping = MK_NAT_NONE;
		if (o->hairpin && !r->no_nat)
			probe_hairpin(r, &ft4->addr, fdp);
	}
	if (!r->udp)
		probe_tcp(r, o);
	pick_nearest(r);
	rc = 0;
out:
	if (fd4 >= 0 && fd4 != o->fd)
		close(fd4);
	if (fd6 >= 0)
		close(fd6);
	return rc;
}

void
mk_nat_report_free(struct mk_nat_report *r)
{
	free(r->servers);
	free(r->relays);
	r->servers = r->relays = NULL;
}

const char *
mk_nat_word(const struct mk_nat_report *r)
{
	if (!r->udp)
		return r->junk ? "unknown" : "blocked";
	if (r->global4.len == 0)
		return "unknown";
	if (r->no_nat)
		return "none";
	switch (r->mapping) {
	case MK_NAT_EI:
		return "EIM";
	case MK_NAT_AD:
	case MK_NAT_APD:
	case MK_NAT_DEPENDENT:
		return "EDM";
	default:
		return "unknown";
	}
}

const char *
mk_nat_classic(const struct mk_nat_report *r)
{
	if (!r->udp)
		return "UDP blocked";
	if (r->no_nat)
		return r->filtering == MK_NAT_EI ? "open" :
		    "open (firewalled)";
	switch (r->mapping) {
	case MK_NAT_EI:
		switch (r->filtering) {
		case MK_NAT_EI:
			return "full cone";
		case MK_NAT_AD:
			return "restricted cone";
		case MK_NAT_APD:
			return "port-restricted cone";
		default:
			return "unknown";
		}
	case MK_NAT_AD:
	case MK_NAT_APD:
	case MK_NAT_DEPENDENT:
		return "symmetric";
	default:
		return "unknown";
	}
}

const char *
mk_nat_behaviour_name(enum mk_nat_behaviour b)
{
	switch (b) {
	case MK_NAT_NONE:
		return "none";
	case MK_NAT_EI:
		return "endpoint-independent";
	case MK_NAT_AD:
		return "address-dependent";
	case MK_NAT_APD:
		return "address-and-port-dependent";
	case MK_NAT_DEPENDENT:
		return "endpoint-dependent";
	default:
		return "unknown";
	}
}
