/* SPDX-License-Identifier: MIT */
/*
 * punch: authenticated UDP hole punching between nodes, as Tailscale's
 * magicsock does it, and the node's packet path for WireGuard.
 *
 * Nodes meet on a DERP relay, tell each other their candidate addresses
 * (CallMeMaybe, sealed between the node keys), and ping every candidate at
 * once, so that packets leave each NAT before the other's arrive. A Pong
 * from the peer's key to a ping we sent proves a path.
 *
 * One-shot mode prints the best path to one peer and exits, or hands the
 * socket to a command. Node mode owns the node's public sockets and
 * carries WireGuard's packets: each peer gets a loopback socket that
 * WireGuard uses as the peer's endpoint; what WireGuard sends there goes
 * over the relay from the first moment, and over the direct path as soon
 * as one is proven, and back, without the WireGuard session noticing.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <sodium.h>

#include "addr.h"
#include "birthday.h"
#include "cli.h"
#include "ctlsock.h"
#include "derp.h"
#include "derp_client.h"
#include "disco.h"
#include "handoff.h"
#include "json.h"
#include "key.h"
#include "log.h"
#include "lookup.h"
#include "loop.h"
#include "meshconf.h"
#include "nat64.h"
#include "nattest.h"
#include "netmon.h"
#include "path.h"
#include "portmap.h"
#include "relayset.h"
#include "sock.h"
#include "stun.h"
#include "stunclient.h"
#include "tls.h"
#include "udpbatch.h"
#include "url.h"
#include "util.h"
#include "version.h"
#include "wgdev.h"
#include "wgendpoint.h"

#define MAX_RELAYS	8
#define MAX_STUN	8
#define MAX_OWN		32	/* our candidates */
#define MAX_CANDS	32	/* one peer's */
#define MAX_PINGS	64	/* pings awaiting a pong, per peer */
#define NONCE_CACHE	512	/* disco nonces seen per peer: replays drop */
#define BATCH		32
#define PKT_MAX		2048	/* above any tunnel MTU we carry */

/* magicsock's timers (protocols.md 3.5) */
#define CMM_EVERY_US	5000000	/* CallMeMaybe again until direct */
#define CMM_ANSWER_US	1000000	/* answer one only if ours is older */
#define PING_EVERY_US	1000000	/* re-ping candidates without a pong */
#define HEARTBEAT_US	3000000	/* ping the chosen path while active */
#define TRUST_US	6500000	/* a pong makes the path exclusive */
#define ACTIVE_US	45000000 /* traffic this recent keeps heartbeats */
#define PING_TIMEOUT_US	5000000	/* a ping's TxID expires; so does a
					 * path whose ping goes unanswered */
#define IDLE_PROBE_US	30000000 /* idle and not direct: try this often */
#define UPGRADE_US	60000000 /* a slow chosen path: look for a better */
#define GOOD_ENOUGH_US	5000	/* ... unless it is this fast already */
#define LOST_RESTUN_US	5000000	/* a lost path asks STUN, at most this often */
#define LINGER_US	1000000	/* one-shot: answer a while after success */
#define RESTUN_MIN_US	20000000 /* learn our mapping again, 20-26 s */
#define STUN_TIMEOUT_US	2000000	/* per STUN transaction */
#define DISCO_RATE	100	/* disco messages a second, per peer */
#define DISCO_BURST	200
#define NAT64_DISC_US	3000000	/* RFC 7050 lookup; then 64:ff9b::/96 */

/* the birthday escalation (node mode, lib/birthday) */
#define BDAY_AFTER_ROUNDS 3	/* CallMeMaybe rounds with traffic and no
				 * pong before a run */
#define BDAY_HELLO_US	500000	/* the hello again until both have both */
#define BDAY_HELLO_WAIT_US 15000000 /* the peer's answer, at most */
#define BDAY_START_MS	1000	/* the easy side lets the hard side's
				 * mappings open first */
#define BDAY_GRACE_US	3000000	/* after the last probe: late answers */
#define BDAY_MAX_RUN_US	600000000 /* the hard side's sockets, at most */
#define BDAY_BACKOFF_US	300000000 /* after a failed run: 5 minutes */
#define BDAY_PROVE_US	10000000 /* a won socket must carry a pong by then */

#define STATUS_DIR	"/run/meshkit"
#define STATE_DIR	"/var/lib/meshkit"

struct opts {
	const char	*keyfile;
	const char	*relays[MAX_RELAYS];
	size_t		 n_relays;
	const char	*pin;
	const char	*cafile;
	bool		 insecure;
	const char	*mesh;
	const char	*stun[MAX_STUN];
	size_t		 n_stun;
	long long	 port;
	uint64_t	 wait_ms;
	int		 fd;		/* --fd, or -1 */
	const char	*endpoint;
	int		 family;	/* -4, -6, or AF_UNSPEC */
	bool		 json;
	char		*peer;
	char		**cmd;		/* after --, or NULL */
	bool		 no_portmap;
	const char	*node;		/* --node mesh.conf: node mode */
	const char	*wg;		/* --wg interface */
	int		 birthday;	/* --birthday 1, --no-birthday 0,
					 * else -1: mesh.conf says */
};

/* One of our public UDP sockets: one per family, on the same port. */
struct usock {
	struct mk_io	 io;
	int		 family;
	struct punch	*p;
};

struct stun_server {
	char		 name[300];
	struct mk_lookup *lookup;
	struct mk_io	 lio;
	struct punch	*p;
	struct mk_addr	 addr;		/* len 0 until resolved */
	struct mk_addr	 mapped[2];	/* per socket, this round */
};

struct ping {
	uint8_t		 txid[MK_DISCO_TXID_LEN];
	struct mk_addr	 to;
	uint64_t	 sent_us;
	bool		 live;
};

struct cand {
	struct mk_addr	 addr;
	bool		 ponged;	/* answered a ping of ours */
	bool		 heard;		/* sent us an authenticated ping */
};

enum path_kind { PATH_NONE, PATH_RELAY, PATH_DIRECT };

/*
 * A birthday run for one pair (node mode): IDLE, then (the easy side)
 * STUN on a socket of its own, HELLO over the relay until each side has
 * the other's with the "I have yours" flag, (the easy side) WAIT for the
 * hard side's mappings, RUN the engine. A win leaves `sock`, which then
 * carries the pair's direct packets.
 */
enum bday_state { BD_IDLE, BD_STUN, BD_HELLO, BD_WAIT, BD_RUN };

struct bday_pair {
	enum bday_state	 state;
	enum mk_bday_role role;
	unsigned	 failed_rounds;	/* CallMeMaybe rounds, no pong */
	uint64_t	 since_us;	/* the state's start */
	uint64_t	 retry_us;	/* back-off: no run before */
	struct mk_addr	 public;	/* ours, for the hello */
	struct mk_bday_hello theirs;
	bool		 have_theirs;
	bool		 told;		/* an ignored hello logged once */
	struct mk_io	 prep;		/* EASY: its socket while STUN asks */
	struct mk_stunc_txn stun;
	struct mk_timer	 timer;
	struct mk_bday	*engine;
	struct mk_io	 sock;		/* the winning socket, fd -1 if none */
	struct mk_addr	 remote;	/* the peer's mapping it reaches */
	uint16_t	 local_port;
	uint64_t	 won_us;
};

struct peer {
	struct punch	*p;
	struct mk_key	 key;
	char		 name[MK_MESH_NAME_MAX + 1];	/* or "" */
	struct mk_disco_shared shared;
	bool		 removed;

	struct cand	 cands[MAX_CANDS];
	size_t		 n_cands;
	struct ping	 pings[MAX_PINGS];
	size_t		 next_ping;
	struct mk_disco_replay replay;	/* NONCE_CACHE nonces seen */
	double		 tokens;
	uint64_t	 tokens_us;

	struct mk_path	 best;		/* addr.len 0: no direct path */
	uint64_t	 trust_until_us;	/* best alone, no relay, until */
	uint64_t	 best_pinged_us;	/* oldest unanswered ping to best */
	uint64_t	 full_ping_us;		/* last ping of every candidate */
	uint64_t	 created_us;
	bool		 seen;		/* any authenticated disco from it */
	bool		 got_ping;	/* it reached us directly */
	bool		 got_cmm;
	bool		 left_relay;	/* PeerGone: it may come back anew */
	uint64_t	 cmm_sent_us;
	size_t		 cmm_sent_count;
	uint64_t	 last_keepalive_us;
	struct mk_timer	 cmm_timer, heartbeat;

	/* node mode: WireGuard's endpoint for this peer */
	struct mk_io	 lo;
	uint16_t	 lo_port;
	uint64_t	 last_tx_us, last_rx_us;
	uint64_t	 tx_direct, tx_relay, rx_direct, rx_relay;
	enum path_kind	 reported;
	struct mk_addr	 reported_addr;

	struct bday_pair bd;
};

struct punch {
	const struct opts *o;
	struct mk_loop	 loop;
	struct mk_key	 priv, pub;
	struct mk_derpc	*dc;
	struct usock	 socks[2];
	size_t		 n_socks;
	uint16_t	 port;
	struct mk_udpbatch rx, tx;

	struct stun_server stun[MAX_STUN];
	size_t		 n_stun;
	/* a transaction per socket and server (lib/stunclient) */
	struct mk_stunc_txn stxn[2][MAX_STUN];
	struct mk_stunc_sched ssched;
	struct mk_timer	 stun_timer, restun_timer;
	struct mk_netmon netmon;	/* re-learn all when the network moves */
	uint64_t	 restun_us;	/* the last round's start */

	struct mk_addr	 own[MAX_OWN];
	bool		 own_learned[MAX_OWN];	/* by STUN, not local */
	bool		 own_stale[MAX_OWN];	/* not seen this STUN round */
	size_t		 n_own;
	bool		 own_edm;	/* our mapping varies by destination */

	struct peer	**peers;
	size_t		 n_peers;

	/* a port mapping of our IPv4 port by the gateway, if it offers one */
	struct mk_pm_async *pm;
	struct mk_io	 pm_io;
	enum mk_pm_op	 pm_op;
	struct mk_pm_probe pm_probe;
	struct mk_pm_mapping pm_map;
	bool		 pm_mapped;
	struct mk_timer	 pm_timer;

	/* NAT64: on a host without an IPv4 route, IPv4 (peers' candidates,
	 * STUN servers, the relay) goes through the prefix RFC 7050 finds
	 * (lib/nat64), sent from the IPv6 socket; len 0: not (yet) */
	bool		 v6only;
	struct mk_nat64_disc nat64_disc;
	struct mk_nat64_prefix nat64;
	bool		 relay_waits;	/* for the prefix, to start */

	bool		 relay_up, relay_ever;
	uint64_t	 relay_at_us;	/* first on the relay */
	char		 relay_url[320];
	uint64_t	 keepalive_us;

	/* one-shot */
	struct mk_timer	 deadline, linger;
	int		 rc;
	bool		 done;

	/* node mode */
	bool		 node;
	char		 self_name[MK_MESH_NAME_MAX + 1];
	struct mk_addr	 wg_addr;	/* 127.0.0.1:WireGuard's port */
	struct mk_ctl	 ctl;		/* the status socket */

	/* the birthday escalation: mesh.conf's birthday options, or
	 * --birthday / --no-birthday; one run at a time on a node */
	bool		 bday_on;
	unsigned	 bday_ports, bday_rate;
	uint64_t	 bday_count;
	struct peer	*bday_busy;
};

static bool via_bday(const struct peer *pe, const struct mk_addr *to);
static void bday_consider(struct peer *pe, bool active);
static void bday_got_hello(struct peer *pe, const struct mk_bday_hello *h);
static void bday_stop(struct peer *pe);
static void bday_sock_close(struct peer *pe, const char *why);
static void on_bday_timer(struct mk_loop *l, struct mk_timer *t);

static void
usage(FILE *f)
{
	fprintf(f,
"usage: punch -k keyfile (--relay url | -c mesh.conf) [-46jqv]\n"
"             [--cafile file] [--pin sha256-raw:hex] [--insecure]\n"
"             [--no-portmap] [--stun host:port] [-p port] [-w seconds]\n"
"             [--fd n [--endpoint ip:port]] peerkey | nodename\n"
"             [-- command [arg ...]]\n"
"       punch --node mesh.conf -k keyfile --wg interface [-46qv]\n"
"             [--cafile file] [--insecure] [--no-portmap]\n"
"             [--birthday | --no-birthday] [--stun host:port] [-p port]\n"
"       punch status [-i interface] [-j]\n");
}

static const char *
peer_label(const struct peer *pe, char *buf, size_t n)
{
	char k[MK_KEY_B64LEN + 1];

	mk_key_to_base64(k, &pe->key);
	if (pe->name[0] != '\0')
		snprintf(buf, n, "%s", pe->name);
	else
		snprintf(buf, n, "%.8s", k);
	return buf;
}

/* ---- our candidates ---- */

static int
sock_index(const struct punch *p, int family)
{
	size_t i;

	for (i = 0; i < p->n_socks; i++)
		if (p->socks[i].family == family)
			return (int)i;
	return -1;
}

/* NAT64: the socket index a packet to `to` leaves by, and its address
 * there (dst): an IPv4 address through the NAT64 prefix on the IPv6
 * socket when this host has no IPv4 route. -1 when there is no way. */
static int
route_to(const struct punch *p, const struct mk_addr *to,
    struct mk_addr *dst)
{
	struct mk_addr via;
	int i;

	if (p->nat64.len != 0 && mk_addr_family(to) == AF_INET) {
		if (!mk_nat64_reachable(&p->nat64,
		    (const uint8_t *)&to->sin.sin_addr) ||
		    !mk_nat64_addr_to6(&p->nat64, to, &via))
			return -1;
		to = &via;
	}
	if ((i = sock_index(p, mk_addr_family(to))) < 0)
		return -1;
	mk_addr_for_socket(dst, to, p->socks[i].family);
	return i;
}

/* NAT64: a peer's packet from inside the prefix is from the IPv4 address
 * embedded there, the one its candidates and our paths name. */
static void
from_nat64(const struct punch *p, struct mk_addr *from)
{
	if (p->nat64.len != 0)
		(void)mk_nat64_addr_to4(&p->nat64, from, from);
}

/* A candidate of ours; true when it was not known. learned: from STUN
 * (it goes when a later round no longer sees it), not a local address. */
static bool
own_add(struct punch *p, const struct mk_addr *a, const char *what,
    bool learned)
{
	char s[MK_ADDRSTRLEN];
	size_t i;

	for (i = 0; i < p->n_own; i++)
		if (mk_addr_equal(&p->own[i], a)) {
			p->own_stale[i] = false;
			return false;
		}
	if (p->n_own == MAX_OWN)
		return false;
	p->own_learned[p->n_own] = learned;
	p->own_stale[p->n_own] = false;
	p->own[p->n_own++] = *a;
	mk_info("candidate %s (%s)", mk_addr_fmt(a, s, sizeof(s)), what);
	return true;
}

static void
own_remove(struct punch *p, const struct mk_addr *a)
{
	size_t i;

	for (i = 0; i < p->n_own; i++)
		if (mk_addr_equal(&p->own[i], a))
			break;
	if (i == p->n_own)
		return;
	p->n_own--;
	memmove(&p->own[i], &p->own[i + 1], (p->n_own - i) * sizeof(p->own[0]));
	memmove(&p->own_learned[i], &p->own_learned[i + 1],
	    (p->n_own - i) * sizeof(p->own_learned[0]));
	memmove(&p->own_stale[i], &p->own_stale[i + 1],
	    (p->n_own - i) * sizeof(p->own_stale[0]));
}

/* After a STUN round: learned candidates it did not see again are gone
 * (the NAT moved the mapping). True when any went. */
static bool
own_drop_stale(struct punch *p)
{
	char s[MK_ADDRSTRLEN];
	size_t i, k = 0;
	bool gone = false;

	for (i = 0; i < p->n_own; i++) {
		if (p->own_learned[i] && p->own_stale[i]) {
			mk_info("candidate %s gone", mk_addr_fmt(&p->own[i], s,
			    sizeof(s)));
			gone = true;
			continue;
		}
		p->own[k] = p->own[i];
		p->own_learned[k] = p->own_learned[i];
		p->own_stale[k++] = false;
	}
	p->n_own = k;
	return gone;
}

/* lib/nattest's mapping verdict over this round's STUN answers on
 * socket si. */
static enum mk_nat_behaviour
own_verdict(const struct punch *p, size_t si)
{
	struct mk_nat_seen seen[MAX_STUN];
	size_t i;

	for (i = 0; i < p->n_stun; i++) {
		seen[i].server = p->stun[i].addr;
		seen[i].mapped = p->stun[i].mapped[si];
	}
	return mk_nat_mapping_verdict(seen, p->n_stun);
}

/* What our STUN answers say of our NAT: "EDM" once servers saw different
 * mappings this round, "EIM" when servers at two addresses saw the same,
 * else "unknown". */
static const char *
own_nat(const struct punch *p)
{
	size_t si;

	if (p->own_edm)
		return "EDM";
	for (si = 0; si < p->n_socks; si++)
		if (own_verdict(p, si) == MK_NAT_EI)
			return "EIM";
	return "unknown";
}

/* Our interfaces' addresses as candidates; those no longer there go.
 * True when the set changed. */
static bool
own_local(struct punch *p)
{
	struct mk_addr a[MAX_OWN];
	char s[MK_ADDRSTRLEN];
	size_t i, k = 0;
	bool changed = false;
	int n, j;

	for (i = 0; i < p->n_own; i++)
		if (!p->own_learned[i])
			p->own_stale[i] = true;
	for (i = 0; i < p->n_socks; i++) {
		n = mk_path_local(p->socks[i].family, p->port, a, MAX_OWN);
		for (j = 0; j < n; j++)
			changed |= own_add(p, &a[j], "local", false);
	}
	for (i = 0; i < p->n_own; i++) {
		if (!p->own_learned[i] && p->own_stale[i]) {
			mk_info("candidate %s gone", mk_addr_fmt(&p->own[i], s,
			    sizeof(s)));
			changed = true;
			continue;
		}
		p->own[k] = p->own[i];
		p->own_learned[k] = p->own_learned[i];
		p->own_stale[k++] = p->own_stale[i];
	}
	p->n_own = k;
	return changed;
}

/* ---- sending ---- */

static void
udp_send(struct punch *p, const struct mk_addr *to, const void *buf,
    size_t len)
{
	struct mk_addr dst;
	char s[MK_ADDRSTRLEN];
	int i = route_to(p, to, &dst);	/* NAT64 aware */

	if (i < 0)
		return;
	if (sendto(p->socks[i].io.fd, buf, len, 0, &dst.sa, dst.len) < 0)
		mk_debug("send to %s: %s", mk_addr_fmt(to, s, sizeof(s)),
		    strerror(errno));
}

/* To the peer: from its birthday socket when `to` is the mapping that
 * socket reaches (no other socket of ours may send there), else from our
 * public sockets. */
static void
peer_send(struct peer *pe, const struct mk_addr *to, const void *buf,
    size_t len)
{
	char s[MK_ADDRSTRLEN];

	if (!via_bday(pe, to)) {
		udp_send(pe->p, to, buf, len);
		return;
	}
	if (sendto(pe->bd.sock.fd, buf, len, 0, &to->sa, to->len) < 0)
		mk_debug("send to %s: %s", mk_addr_fmt(to, s, sizeof(s)),
		    strerror(errno));
}

static ssize_t
seal(struct punch *p, const struct peer *pe, uint8_t *out, size_t cap,
    const uint8_t *pt, size_t len)
{
	const char *why;
	ssize_t n;

	n = mk_disco_seal(out, cap, &p->pub, &pe->shared, pt, len, &why);
	if (n < 0)
		mk_warn("cannot seal a disco message: %s", why);
	return n;
}

static void
send_ping(struct peer *pe, const struct mk_addr *to)
{
	struct punch *p = pe->p;
	struct mk_disco_ping ping;
	struct ping *pg = &pe->pings[pe->next_ping++ % MAX_PINGS];
	uint8_t pt[MK_DISCO_PING_LEN], pkt[MK_DISCO_PING_SIZE];
	char s[MK_ADDRSTRLEN];
	const char *why;
	ssize_t n;

	memset(&ping, 0, sizeof(ping));
	randombytes_buf(ping.txid, sizeof(ping.txid));
	ping.has_nodekey = true;
	ping.nodekey = p->pub;
	if ((n = mk_disco_put_ping(pt, sizeof(pt), &ping, &why)) < 0 ||
	    (n = seal(p, pe, pkt, sizeof(pkt), pt, (size_t)n)) < 0)
		return;
	memcpy(pg->txid, ping.txid, sizeof(pg->txid));
	pg->to = *to;
	pg->sent_us = mk_now_us();
	pg->live = true;
	if (pe->best.addr.len != 0 && pe->best_pinged_us == 0 &&
	    mk_addr_equal(to, &pe->best.addr))
		pe->best_pinged_us = pg->sent_us;
	mk_debug("ping %s", mk_addr_fmt(to, s, sizeof(s)));
	peer_send(pe, to, pkt, (size_t)n);
}

/* Ping every candidate; all, or only those that never answered. */
static void
ping_cands(struct peer *pe, bool all)
{
	size_t i;

	if (all)
		pe->full_ping_us = mk_now_us();
	for (i = 0; i < pe->n_cands; i++)
		if (all || !pe->cands[i].ponged)
			send_ping(pe, &pe->cands[i].addr);
}

/* Our candidates to the peer, through the relay. */
static void
send_cmm(struct peer *pe)
{
	struct punch *p = pe->p;
	uint8_t pt[2 + MAX_OWN * MK_DISCO_EP_LEN];
	uint8_t pkt[sizeof(pt) + MK_DISCO_OVERHEAD];
	const char *why;
	ssize_t n;

	if (!p->relay_up)
		return;
	if ((n = mk_disco_put_call_me_maybe(pt, sizeof(pt), p->own, p->n_own,
	    &why)) < 0 ||
	    (n = seal(p, pe, pkt, sizeof(pkt), pt, (size_t)n)) < 0)
		return;
	if (mk_derpc_send(p->dc, &pe->key, pkt, (size_t)n) != 0) {
		mk_debug("call-me-maybe not sent: %s", strerror(errno));
		return;
	}
	pe->cmm_sent_us = mk_now_us();
	pe->cmm_sent_count = p->n_own;
	mk_debug("call-me-maybe sent (%zu candidates)", p->n_own);
}

static void
send_cmm_all(struct punch *p)
{
	size_t i;

	for (i = 0; i < p->n_peers; i++)
		send_cmm(p->peers[i]);
}

static bool
trusted(const struct peer *pe)
{
	return pe->best.addr.len != 0 && mk_now_us() < pe->trust_until_us;
}

/* ---- path events (node mode) ---- */

static void
report_path(struct peer *pe)
{
	struct punch *p = pe->p;
	char k[MK_KEY_B64LEN + 1], s[MK_ADDRSTRLEN];
	enum path_kind now = pe->best.addr.len != 0 ? PATH_DIRECT : PATH_RELAY;

	if (!p->node)
		return;
	if (now == pe->reported && (now != PATH_DIRECT ||
	    mk_addr_equal(&pe->reported_addr, &pe->best.addr)))
		return;
	pe->reported = now;
	pe->reported_addr = pe->best.addr;
	mk_key_to_base64(k, &pe->key);
	if (now == PATH_DIRECT)
		printf("%s direct %s %.3f\n", k, mk_addr_fmt(&pe->best.addr, s,
		    sizeof(s)), (double)pe->best.latency_us / 1000);
	else
		printf("%s relay %s\n", k, p->relay_url);
	fflush(stdout);
}

/* ---- timers per peer ---- */

static void
on_cmm_timer(struct mk_loop *l, struct mk_timer *t)
{
	struct peer *pe = t->arg;
	uint64_t now = mk_now_us();
	bool active = now - pe->last_tx_us < ACTIVE_US ||
	    now - pe->last_rx_us < ACTIVE_US || now - pe->created_us <
	    IDLE_PROBE_US;

	/* until direct both ways: every 5 s while there is traffic (or
	 * the peer is new), else every 30 s, so a pair on the relay for
	 * good (two endpoint-dependent NATs) costs little while idle */
	if ((pe->best.addr.len == 0 || !pe->got_ping) && (active ||
	    now - pe->cmm_sent_us >= IDLE_PROBE_US))
		send_cmm(pe);
	/* a pair that wants traffic and whose candidates never answer:
	 * after a few rounds, the birthday probe may open it */
	if (pe->best.addr.len != 0)
		pe->bd.failed_rounds = 0;
	else if (active && pe->seen && pe->n_cands > 0)
		pe->bd.failed_rounds++;
	bday_consider(pe, active);
	mk_timer_in(l, t, CMM_EVERY_US);
}

/* The chosen path stopped answering: back to the relay, and find one. */
static void restun_soon(struct punch *p);

static void
path_lost(struct peer *pe)
{
	char s[MK_ADDRSTRLEN], who[MK_MESH_NAME_MAX + 1];
	bool birthday = via_bday(pe, &pe->best.addr);
	size_t i;

	mk_info("%s: %s stopped answering", peer_label(pe, who, sizeof(who)),
	    mk_addr_fmt(&pe->best.addr, s, sizeof(s)));
	memset(&pe->best, 0, sizeof(pe->best));
	/* that mapping is gone or cut: its socket goes with it */
	if (birthday)
		bday_sock_close(pe, "its path stopped answering");
	pe->trust_until_us = pe->best_pinged_us = 0;
	for (i = 0; i < pe->n_cands; i++)
		pe->cands[i].ponged = pe->cands[i].heard = false;
	report_path(pe);
	/* our NAT may have moved our mapping (a reboot, a flushed table):
	 * learn it now rather than at the next round, so the peer hears of
	 * the new one within seconds */
	restun_soon(pe->p);
}

static void
on_heartbeat(struct mk_loop *l, struct mk_timer *t)
{
	struct peer *pe = t->arg;
	struct punch *p = pe->p;
	uint64_t now = mk_now_us(), next;
	bool active = now - pe->last_tx_us < ACTIVE_US ||
	    now - pe->last_rx_us < ACTIVE_US;

	if (!p->node) {
		ping_cands(pe, false);
		mk_timer_in(l, t, PING_EVERY_US);
		return;
	}
	if (pe->best.addr.len != 0 && pe->best_pinged_us != 0 &&
	    now - pe->best_pinged_us > PING_TIMEOUT_US)
		path_lost(pe);
	/* a birthday socket that is not (or no longer) the chosen path:
	 * the peer lost its side of the run, or a better path opened */
	if (pe->bd.sock.fd >= 0 && !via_bday(pe, &pe->best.addr) &&
	    now - pe->bd.won_us > BDAY_PROVE_US) {
		bday_sock_close(pe, "not the chosen path");
		if (pe->best.addr.len == 0)
			pe->bd.retry_us = now + BDAY_BACKOFF_US;
	}
	if (pe->best.addr.len != 0) {
		/* the chosen path: while traffic flows, to keep it trusted;
		 * idle, every keepalive, to hold the NAT mapping */
		if (active || now - pe->last_keepalive_us >= p->keepalive_us) {
			send_ping(pe, &pe->best.addr);
			pe->last_keepalive_us = now;
		}
		if (!trusted(pe) && now - pe->full_ping_us >= PING_EVERY_US)
			ping_cands(pe, true);	/* something better? */
		/* a path proven first need not be the best one: while
		 * traffic flows on a slow one, every candidate again each
		 * minute (magicsock's upgradeInterval) */
		else if (active && pe->best.latency_us > GOOD_ENOUGH_US &&
		    now - pe->full_ping_us >= UPGRADE_US)
			ping_cands(pe, true);
	} else if (now - pe->full_ping_us >= (active ? PING_EVERY_US :
	    IDLE_PROBE_US)) {
		ping_cands(pe, true);
	}
	if (pe->best.addr.len == 0 || (!trusted(pe) && active))
		next = PING_EVERY_US;
	else if (!active && p->keepalive_us < HEARTBEAT_US)
		next = p->keepalive_us;	/* a keepalive shorter than 3 s */
	else
		next = HEARTBEAT_US;
	mk_timer_in(l, t, next);
}

/* ---- one-shot result ---- */

static void
finish(struct punch *p, int rc)
{
	p->rc = rc;
	p->done = true;
	mk_loop_stop(&p->loop);
}

static void
on_linger(struct mk_loop *l, struct mk_timer *t)
{
	(void)l;
	finish(t->arg, MK_EXIT_OK);
}

static void
maybe_done(struct peer *pe)
{
	struct punch *p = pe->p;

	/* Our pong proves both directions for us; the peer's ping to us
	 * says it is punching too. Linger, answering, so it finishes. */
	if (!p->node && pe->best.addr.len != 0 && pe->got_ping &&
	    !mk_timer_armed(&p->linger))
		mk_timer_in(&p->loop, &p->linger, LINGER_US);
}

static void
on_deadline(struct mk_loop *l, struct mk_timer *t)
{
	struct punch *p = t->arg;
	struct peer *pe = p->peers[0];

	(void)l;
	if (pe->best.addr.len != 0) {
		finish(p, MK_EXIT_OK);
		return;
	}
	if (!p->relay_ever && p->o->endpoint == NULL) {
		mk_err("relay never answered");
		finish(p, MK_EXIT_FAIL);
	} else if (!pe->seen && p->o->endpoint == NULL) {
		mk_err("peer never appeared on the relay");
		finish(p, MK_EXIT_FAIL);
	} else if (pe->n_cands == 0) {
		mk_err("no direct path: the peer offered no candidate");
		finish(p, MK_EXIT_NO);
	} else {
		mk_err("no direct path opened: %zu candidate%s of the peer "
		    "never answered%s", pe->n_cands, pe->n_cands == 1 ? "" :
		    "s", p->own_edm ? "; our NAT maps endpoint-dependently, "
		    "so the peer's replies find no mapping unless its NAT "
		    "admits any source" : "");
		finish(p, MK_EXIT_NO);
	}
}

/* ---- receiving disco ---- */

/* A token bucket, so a flood of (even authentic) disco costs little. */
static bool
disco_allowed(struct peer *pe)
{
	uint64_t now = mk_now_us();

	pe->tokens += (double)(now - pe->tokens_us) * DISCO_RATE / 1e6;
	if (pe->tokens > DISCO_BURST)
		pe->tokens = DISCO_BURST;
	pe->tokens_us = now;
	if (pe->tokens < 1)
		return false;
	pe->tokens -= 1;
	return true;
}

static void
cand_add(struct peer *pe, const struct mk_addr *a, bool ping_now)
{
	char s[MK_ADDRSTRLEN], who[MK_MESH_NAME_MAX + 1];
	size_t i;

	/* NAT64: an IPv6-only host keeps IPv4 candidates for its prefix */
	if (sock_index(pe->p, mk_addr_family(a)) < 0 &&
	    !(pe->p->v6only && mk_addr_family(a) == AF_INET))
		return;
	for (i = 0; i < pe->n_cands; i++)
		if (mk_addr_equal(&pe->cands[i].addr, a))
			return;
	if (pe->n_cands == MAX_CANDS)
		return;
	pe->cands[pe->n_cands].addr = *a;
	pe->cands[pe->n_cands].heard = false;
	pe->cands[pe->n_cands++].ponged = false;
	mk_info("%s: candidate %s", peer_label(pe, who, sizeof(who)),
	    mk_addr_fmt(a, s, sizeof(s)));
	if (ping_now)
		send_ping(pe, a);
}

/* A peer that left the relay and came back may have restarted, behind
 * new mappings: what we knew of its paths is stale. Punch afresh. */
static void
peer_forget_paths(struct peer *pe)
{
	char who[MK_MESH_NAME_MAX + 1];

	mk_info("%s: back on the relay; punching afresh", peer_label(pe, who,
	    sizeof(who)));
	pe->n_cands = 0;
	memset(&pe->best, 0, sizeof(pe->best));
	pe->trust_until_us = pe->best_pinged_us = 0;
	memset(pe->pings, 0, sizeof(pe->pings));
	pe->got_ping = pe->got_cmm = pe->left_relay = false;
	/* its sockets are gone with its process */
	bday_stop(pe);
	bday_sock_close(pe, "the peer restarted");
	report_path(pe);
}

static void
got_cmm(struct peer *pe, const struct mk_disco_cmm *cmm)
{
	char who[MK_MESH_NAME_MAX + 1];
	size_t i;

	if (pe->left_relay)
		peer_forget_paths(pe);
	mk_info("%s: call-me-maybe (%zu candidates)", peer_label(pe, who,
	    sizeof(who)), cmm->n);
	for (i = 0; i < cmm->n; i++) {
		/* as magicsock: a link-local address is no use across hosts
		 * without a scope, and a mesh address is inside the tunnel */
		if (!mk_path_usable(&cmm->eps[i]))
			continue;
		cand_add(pe, &cmm->eps[i], false);
	}
	/* Both sides must send at once: ping every candidate now. */
	ping_cands(pe, true);
	/* Answer with ours: always the first time (ours may have gone out
	 * before the peer was on the relay), else unless ours is recent,
	 * so two nodes never answer each other forever. */
	if (!pe->got_cmm || mk_now_us() - pe->cmm_sent_us > CMM_ANSWER_US ||
	    pe->cmm_sent_count != pe->p->n_own)
		send_cmm(pe);
	pe->got_cmm = true;
}

static void
got_ping(struct peer *pe, const struct mk_disco_ping *ping,
    const struct mk_addr *from)
{
	struct mk_disco_pong pong;
	uint8_t pt[MK_DISCO_PONG_LEN], pkt[MK_DISCO_PONG_LEN +
	    MK_DISCO_OVERHEAD];
	char s[MK_ADDRSTRLEN], who[MK_MESH_NAME_MAX + 1];
	const char *why;
	ssize_t n;

	if (ping->has_nodekey && !mk_key_equal(&ping->nodekey, &pe->key)) {
		mk_info("ping naming another node key from %s: dropped",
		    mk_addr_fmt(from, s, sizeof(s)));
		return;
	}
	memcpy(pong.txid, ping->txid, sizeof(pong.txid));
	pong.src = *from;
	if ((n = mk_disco_put_pong(pt, sizeof(pt), &pong, &why)) < 0 ||
	    (n = seal(pe->p, pe, pkt, sizeof(pkt), pt, (size_t)n)) < 0)
		return;
	peer_send(pe, from, pkt, (size_t)n);
	mk_debug("pong to %s", mk_addr_fmt(from, s, sizeof(s)));
	if (!pe->got_ping)
		mk_info("%s: reached us from %s", peer_label(pe, who,
		    sizeof(who)), s);
	pe->got_ping = true;
	/* where the peer's packets come from is a candidate too, and
	 * WireGuard's packets from there are the peer's (WireGuard checks
	 * them itself) before our own pong comes back */
	cand_add(pe, from, true);
	for (size_t i = 0; i < pe->n_cands; i++)
		if (mk_addr_equal(&pe->cands[i].addr, from))
			pe->cands[i].heard = true;
	maybe_done(pe);
}

static void
got_pong(struct peer *pe, const struct mk_disco_pong *pong,
    const struct mk_addr *from)
{
	struct punch *p = pe->p;
	struct mk_path path;
	char s[MK_ADDRSTRLEN], who[MK_MESH_NAME_MAX + 1];
	uint64_t now = mk_now_us();
	size_t i;

	for (i = 0; i < MAX_PINGS; i++) {
		struct ping *pg = &pe->pings[i];

		if (!pg->live || memcmp(pg->txid, pong->txid,
		    MK_DISCO_TXID_LEN) != 0)
			continue;
		pg->live = false;	/* one pong per ping */
		if (!mk_addr_equal(&pg->to, from) ||
		    now - pg->sent_us > PING_TIMEOUT_US) {
			mk_info("pong from %s for a ping to elsewhere or "
			    "expired: dropped", mk_addr_fmt(from, s,
			    sizeof(s)));
			return;
		}
		path.addr = *from;
		path.latency_us = now - pg->sent_us;
		path.mtu = 0;
		for (i = 0; i < pe->n_cands; i++)
			if (mk_addr_equal(&pe->cands[i].addr, from))
				pe->cands[i].ponged = true;
		mk_info("%s: pong from %s in %.3f ms", peer_label(pe, who,
		    sizeof(who)), mk_addr_fmt(from, s, sizeof(s)),
		    (double)path.latency_us / 1000);
		if (pe->best.addr.len == 0 && p->relay_at_us != 0)
			mk_info("%s: first direct path %.1f ms after joining "
			    "the relay", peer_label(pe, who, sizeof(who)),
			    (double)(now - p->relay_at_us) / 1000);
		if (pe->best.addr.len == 0 || !trusted(pe) ||
		    mk_path_better(&path, &pe->best)) {
			if (!mk_addr_equal(&path.addr, &pe->best.addr))
				pe->best_pinged_us = 0;
			pe->best = path;
		}
		if (mk_addr_equal(&path.addr, &pe->best.addr)) {
			pe->best.latency_us = path.latency_us;
			pe->trust_until_us = now + TRUST_US;
			pe->best_pinged_us = 0;
		}
		report_path(pe);
		maybe_done(pe);
		/* never a birthday run while a direct path exists */
		if (pe->bd.state != BD_IDLE)
			bday_stop(pe);
		return;
	}
	mk_info("pong with a TxID we never sent from %s: dropped",
	    mk_addr_fmt(from, s, sizeof(s)));
}

static struct peer *
peer_by_key(const struct punch *p, const struct mk_key *k)
{
	size_t i;

	for (i = 0; i < p->n_peers; i++)
		if (mk_key_equal(&p->peers[i]->key, k))
			return p->peers[i];
	return NULL;
}

/*
 * Open a disco packet from a peer; via_relay tells where it came from,
 * since CallMeMaybe is believed only from the relay, where the sender is
 * authenticated by its DERP connection as well as by the box.
 */
static void
handle_disco(struct punch *p, const uint8_t *pkt, size_t len,
    const struct mk_addr *from, const struct mk_key *relay_src)
{
	struct mk_addr eps[MAX_CANDS];
	struct mk_disco_msg m;
	struct mk_key sender;
	struct peer *pe;
	uint8_t pt[PKT_MAX];
	char s[MK_ADDRSTRLEN];
	const char *why;
	ssize_t n;

	if (mk_disco_sender(&sender, pkt, len) != 0 ||
	    (relay_src != NULL && !mk_key_equal(&sender, relay_src)) ||
	    (pe = peer_by_key(p, &sender)) == NULL) {
		mk_debug("disco from a key that is not a peer: dropped");
		return;
	}
	if (!disco_allowed(pe)) {
		mk_debug("disco over the rate limit: dropped");
		return;
	}
	if ((n = mk_disco_open(pt, sizeof(pt), &pe->shared, pkt, len,
	    &why)) < 0) {
		mk_debug("disco: %s: dropped", why);
		return;
	}
	if (mk_disco_replayed(&pe->replay, pkt)) {
		mk_info("replayed disco message: dropped");
		return;
	}
	if (n >= 1 && pt[0] == MK_BDAY_DISCO_HELLO) {
		struct mk_bday_hello h;

		pe->seen = true;
		if (relay_src == NULL)	/* as CallMeMaybe: the relay only */
			mk_info("birthday hello over UDP from %s: dropped",
			    mk_addr_fmt(from, s, sizeof(s)));
		else if (mk_bday_parse_hello(&h, pt, (size_t)n, &why) != 0)
			mk_debug("birthday hello: %s: dropped", why);
		else
			bday_got_hello(pe, &h);
		return;
	}
	if (mk_disco_parse(&m, pt, (size_t)n, eps, MAX_CANDS, &why) != 0) {
		mk_debug("disco: %s: dropped", why);
		return;
	}
	pe->seen = true;
	switch (m.type) {
	case MK_DISCO_CALL_ME_MAYBE:
		if (relay_src == NULL) {
			mk_info("call-me-maybe over UDP from %s: dropped",
			    mk_addr_fmt(from, s, sizeof(s)));
			return;
		}
		got_cmm(pe, &m.cmm);
		break;
	case MK_DISCO_PING:
		if (relay_src == NULL)	/* a relayed ping proves nothing */
			got_ping(pe, &m.ping, from);
		break;
	case MK_DISCO_PONG:
		if (relay_src == NULL)
			got_pong(pe, &m.pong, from);
		break;
	}
}

/* ---- WireGuard's packets (node mode) ---- */

/* The peer whose proven path (or answering candidate) is addr. */
static struct peer *
peer_by_addr(const struct punch *p, const struct mk_addr *a)
{
	struct peer *pe;
	size_t i, k;

	for (i = 0; i < p->n_peers; i++) {
		pe = p->peers[i];
		if (pe->best.addr.len != 0 && mk_addr_equal(&pe->best.addr, a))
			return pe;
	}
	for (i = 0; i < p->n_peers; i++) {
		pe = p->peers[i];
		for (k = 0; k < pe->n_cands; k++)
			if ((pe->cands[k].ponged || pe->cands[k].heard) &&
			    mk_addr_equal(&pe->cands[k].addr, a))
				return pe;
	}
	return NULL;
}

/* A packet from the peer, by either path, to WireGuard. */
static void
to_wireguard(struct peer *pe, const uint8_t *pkt, size_t len)
{
	struct punch *p = pe->p;

	if (pe->lo.fd < 0 || p->wg_addr.len == 0)
		return;
	pe->last_rx_us = mk_now_us();
	if (sendto(pe->lo.fd, pkt, len, 0, &p->wg_addr.sa, p->wg_addr.len) <
	    0)
		mk_debug("to WireGuard: %s", strerror(errno));
}

/* Send what on_udp queued for WireGuard from pe's loopback socket. */
static void
wg_flush(struct punch *p, struct peer *pe)
{
	struct mk_udpbatch_sent st;

	if (pe == NULL || p->tx.n == 0)
		return;
	mk_udpbatch_flush(&p->tx, pe->lo.fd, &st);
	if (st.dropped)
		mk_debug("to WireGuard: %u dropped: %s", st.dropped,
		    strerror(st.last_errno));
}

/* What WireGuard sent for the peer: direct when trusted, else the relay
 * (and the direct path too, if one is known, until it answers again). */
static void
on_wg(struct mk_loop *l, struct mk_io *io, uint32_t events)
{
	struct peer *pe = io->arg;
	struct punch *p = pe->p;
	struct mk_udpbatch_sent st;
	struct mk_addr from, dst;
	bool trunc, direct, relay;
	uint8_t *buf;
	size_t len;
	uint64_t now;
	int n, i, si, out;

	(void)l;
	(void)events;
	for (int round = 0; round < 8; round++) {
		if ((n = mk_udpbatch_recv(&p->rx, io->fd)) <= 0)
			break;
		direct = pe->best.addr.len != 0;
		relay = !trusted(pe);
		now = mk_now_us();	/* once a batch, not a packet */
		/* traffic to a peer with no proven path: punch now, as
		 * magicsock does when WireGuard wants to send */
		if (!direct && now - pe->full_ping_us >= PING_EVERY_US)
			ping_cands(pe, true);
		si = direct ? route_to(p, &pe->best.addr, &dst) : -1;
		out = si >= 0 ? p->socks[si].io.fd : -1;
		if (direct && via_bday(pe, &pe->best.addr)) {
			dst = pe->best.addr;	/* its own socket's */
			out = pe->bd.sock.fd;
		}
		for (i = 0; i < n; i++) {
			buf = mk_udpbatch_get(&p->rx, (unsigned)i, &len,
			    &from, &trunc);
			/* only WireGuard's own socket speaks here */
			if (trunc || !mk_addr_equal(&from, &p->wg_addr))
				continue;
			pe->last_tx_us = now;
			if (out >= 0) {
				mk_udpbatch_push_ref(&p->tx, buf, len, &dst);
				pe->tx_direct++;
			}
			if (relay && p->relay_up) {
				if (mk_derpc_send(p->dc, &pe->key, buf, len) == 0)
					pe->tx_relay++;
			}
		}
		if (out >= 0) {
			mk_udpbatch_flush(&p->tx, out, &st);
			if (st.dropped)
				mk_debug("direct: %u dropped: %s", st.dropped,
				    strerror(st.last_errno));
		}
	}
}

/* ---- STUN on our own sockets ---- */

static void nat64_check(struct punch *p);

/* Start server k's transactions, one from each socket of its family. */
static void
stun_start(struct punch *p, size_t k)
{
	uint64_t now = mk_now_us();
	struct mk_addr srv = p->stun[k].addr;
	size_t i;

	memset(p->stun[k].mapped, 0, sizeof(p->stun[k].mapped));
	/* NAT64: an IPv4 server through the prefix, once it is known (the
	 * answers come from there, which the transaction must match) */
	if (p->v6only && mk_addr_family(&srv) == AF_INET &&
	    (p->nat64.len == 0 || route_to(p, &srv, &srv) < 0))
		return;
	for (i = 0; i < p->n_socks; i++) {
		struct mk_stunc_txn *t = &p->stxn[i][k];

		if (p->socks[i].family != mk_addr_family(&srv))
			continue;
		memset(t, 0, sizeof(*t));
		t->server = srv;
		mk_stunc_start(t, &p->ssched, now);
	}
}

/* Send what is due, and wake when the next send or deadline is. */
static void
stun_kick(struct punch *p)
{
	uint64_t now = mk_now_us(), next = UINT64_MAX, n;
	size_t i;

	for (i = 0; i < p->n_socks; i++) {
		n = mk_stunc_send_due(p->socks[i].io.fd, p->socks[i].family,
		    p->stxn[i], p->n_stun, &p->ssched, now);
		if (n < next)
			next = n;
	}
	if (next != UINT64_MAX)
		mk_timer_at(&p->loop, &p->stun_timer, next);
	else if (own_drop_stale(p))	/* the round is over */
		send_cmm_all(p);
}

static void
on_stun_timer(struct mk_loop *l, struct mk_timer *t)
{
	(void)l;
	stun_kick(t->arg);
}

static void pm_start(struct punch *p, enum mk_pm_op op);

/* Ask every STUN server again; learned candidates not seen again in the
 * round are withdrawn (stun_kick), a new one goes to every peer. */
static void
restun(struct punch *p)
{
	size_t i;

	nat64_check(p);		/* the network may have changed */
	p->restun_us = mk_now_us();
	p->own_edm = false;
	for (i = 0; i < p->n_own; i++)
		p->own_stale[i] = p->own_learned[i];
	for (i = 0; i < p->n_stun; i++)
		if (p->stun[i].addr.len != 0)
			stun_start(p, i);
	stun_kick(p);
	mk_timer_in(&p->loop, &p->restun_timer, RESTUN_MIN_US +
	    randombytes_uniform(6000000));
}

/* A STUN round now, unless one started in the last LOST_RESTUN_US. */
static void
restun_soon(struct punch *p)
{
	uint64_t now = mk_now_us();

	if (!p->node || now - p->restun_us < LOST_RESTUN_US)
		return;
	mk_info("a path was lost: learning our mapping again");
	restun(p);
}

/* Node mode: our mapping again every 20-26 s, as magicsock does, since
 * a NAT may move it. */
static void
on_restun(struct mk_loop *l, struct mk_timer *t)
{
	(void)l;
	restun(t->arg);
}

/* An address or the default route changed (lib/netmon): our local
 * candidates, our mapping and the port mapping may all have moved. Peers
 * hear of new local candidates at once, of a new mapping when the STUN
 * round ends; paths that died show as unanswered pings. */
static void
on_netchange(void *arg)
{
	struct punch *p = arg;

	mk_info("network changed: learning our candidates again");
	if (own_local(p))
		send_cmm_all(p);
	restun(p);
	/* a new gateway may map ports, or no longer hold our mapping */
	if (!p->o->no_portmap && sock_index(p, AF_INET) >= 0 &&
	    p->pm == NULL) {
		mk_timer_cancel(&p->loop, &p->pm_timer);
		pm_start(p, p->pm_mapped ? MK_PM_OP_RENEW : MK_PM_OP_PROBE);
	}
}

static void
note_edm(struct punch *p, int si, const struct mk_addr *mapped)
{
	struct mk_addr guess;

	if (own_verdict(p, (size_t)si) != MK_NAT_DEPENDENT)
		return;
	if (!p->own_edm)
		mk_info("our NAT maps endpoint-dependently");
	p->own_edm = true;
	/* Tailscale's stun4localport guess: the public address with our
	 * local port (right for a static port forward) */
	guess = *mapped;
	mk_addr_set_port(&guess, p->port);
	own_add(p, &guess, "public address, local port", true);
}

static void
handle_stun(struct punch *p, int si, const uint8_t *buf, size_t len,
    const struct mk_addr *from)
{
	struct mk_stunc_txn *t;
	struct stun_server *sv;
	const char *why;
	bool added;
	int k;

	/* the transaction's ID, from the server asked: else not ours */
	if ((k = mk_stunc_input(p->stxn[si], p->n_stun, buf, len, from,
	    mk_now_us(), &why)) < 0) {
		mk_debug("STUN: %s: dropped", why);
		return;
	}
	t = &p->stxn[si][k];
	sv = &p->stun[k];
	if (t->state != MK_STUNC_DONE || t->mapped.len == 0)
		return;
	sv->mapped[si] = t->mapped;
	added = own_add(p, &sv->mapped[si], "STUN", true);
	note_edm(p, si, &sv->mapped[si]);
	if (added)
		send_cmm_all(p);	/* tell the peers at once */
}

static void
on_udp(struct mk_loop *l, struct mk_io *io, uint32_t events)
{
	struct usock *u = io->arg;
	struct punch *p = u->p;
	struct mk_addr from;
	struct peer *pe, *wg_peer = NULL;
	bool trunc;
	size_t len;
	uint8_t *buf;
	uint64_t now;
	int n, i, si = (int)(u - p->socks);

	(void)l;
	(void)events;
	/* bounded: a flood cannot keep the loop from its timers */
	for (int round = 0; round < 8 && !p->done; round++) {
		if ((n = mk_udpbatch_recv(&p->rx, io->fd)) <= 0)
			break;
		now = mk_now_us();	/* once a batch, not a packet */
		for (i = 0; i < n && !p->done; i++) {
			buf = mk_udpbatch_get(&p->rx, (unsigned)i, &len, &from,
			    &trunc);
			if (trunc)
				continue;
			switch (mk_disco_classify(buf, len)) {
			case MK_DISCO_CLASS_STUN:
				handle_stun(p, si, buf, len, &from);
				break;
			case MK_DISCO_CLASS_DISCO:
				from_nat64(p, &from);
				handle_disco(p, buf, len, &from, NULL);
				break;
			case MK_DISCO_CLASS_WIREGUARD:
				from_nat64(p, &from);
				if (!p->node || (pe = peer_by_addr(p,
				    &from)) == NULL || pe->lo.fd < 0 ||
				    p->wg_addr.len == 0)
					break;
				/* batched per run of one peer's packets,
				 * sent from its loopback socket */
				if (pe != wg_peer)
					wg_flush(p, wg_peer);
				wg_peer = pe;
				pe->rx_direct++;
				pe->last_rx_us = now;
				mk_udpbatch_push_ref(&p->tx, buf, len,
				    &p->wg_addr);
				break;
			default:
				break;
			}
		}
		wg_flush(p, wg_peer);	/* before rx's buffers are reused */
		wg_peer = NULL;
	}
}

/* ---- port mapping (UPnP-IGD, NAT-PMP, PCP), off the loop ---- */

#define PM_LIFETIME_NODE	7200	/* renewed at half life */
#define PM_LIFETIME_ONESHOT	120	/* enough to punch and hand over */
#define PM_RETRY_US		60000000
#define PM_EXIT_WAIT_MS		8000	/* above probe + SOAP timeouts */

static void on_pm(struct mk_loop *l, struct mk_io *io, uint32_t events);

static void
pm_start(struct punch *p, enum mk_pm_op op)
{
	struct mk_pm_job job;
	const char *why;

	memset(&job, 0, sizeof(job));
	job.op = op;
	job.which = op == MK_PM_OP_PROBE ? MK_PM_ALL :
	    0;	/* PCP, NAT-PMP, UPnP: the first the gateway has */
	job.timeout_us = MK_PM_PROBE_TIMEOUT_US;
	job.internal_port = p->port;
	job.lifetime = p->node ? PM_LIFETIME_NODE : PM_LIFETIME_ONESHOT;
	job.mapping = p->pm_map;
	/* a mapping needs what the probe learned (the external address) */
	job.use_probe = op == MK_PM_OP_MAP;
	job.probe = p->pm_probe;
	if ((p->pm = mk_pm_async_start(&job, &why)) == NULL) {
		mk_warn("port mapping: %s", why);
		return;
	}
	p->pm_op = op;
	p->pm_io.fd = mk_pm_async_fd(p->pm);
	p->pm_io.fn = on_pm;
	p->pm_io.arg = p;
	if (mk_loop_add(&p->loop, &p->pm_io, EPOLLIN) != 0) {
		mk_pm_async_free(p->pm);
		p->pm = NULL;
	}
}

static void
on_pm_timer(struct mk_loop *l, struct mk_timer *t)
{
	struct punch *p = t->arg;

	(void)l;
	if (p->pm == NULL)
		pm_start(p, p->pm_mapped ? MK_PM_OP_RENEW : MK_PM_OP_PROBE);
}

static void
pm_arm(struct punch *p)
{
	uint64_t now = mk_now_us();

	if (!p->pm_mapped)
		mk_timer_in(&p->loop, &p->pm_timer, PM_RETRY_US);
	else if (p->pm_map.renew_at_us != UINT64_MAX)
		mk_timer_at(&p->loop, &p->pm_timer, p->pm_map.renew_at_us >
		    now ? p->pm_map.renew_at_us : now);
}

static void
on_pm(struct mk_loop *l, struct mk_io *io, uint32_t events)
{
	struct punch *p = io->arg;
	struct mk_pm_job out;
	struct mk_addr before = p->pm_map.external;
	char s[MK_ADDRSTRLEN], what[64];

	(void)events;
	if (mk_pm_async_result(p->pm, &out) == 0)
		return;
	mk_loop_del(l, io);
	mk_pm_async_free(p->pm);
	p->pm = NULL;
	if (p->pm_op == MK_PM_OP_PROBE) {
		if (out.rc == 0 && out.probe.found != 0) {
			p->pm_probe = out.probe;
			pm_start(p, MK_PM_OP_MAP);
		} else {
			mk_info("no port mapping: %s", out.rc != 0 ? out.why :
			    "the gateway offers none");
			if (p->node)
				pm_arm(p);
		}
		return;
	}
	if (out.rc != 0) {
		if (p->pm_op == MK_PM_OP_RENEW)
			mk_warn("port mapping renewal: %s", out.why);
		else
			mk_info("no port mapping: %s", out.why);
		if (p->pm_mapped && mk_now_us() >= p->pm_map.expires_at_us) {
			own_remove(p, &before);
			p->pm_mapped = false;
			send_cmm_all(p);
		}
		if (p->node)
			pm_arm(p);
		return;
	}
	p->pm_map = out.mapping;
	p->pm_mapped = true;
	if (before.len == 0 || !mk_addr_equal(&before, &p->pm_map.external)) {
		if (before.len != 0)
			own_remove(p, &before);
		snprintf(what, sizeof(what), "port mapping by %s, %u s",
		    mk_pm_name(p->pm_map.via), p->pm_map.lifetime);
		if (own_add(p, &p->pm_map.external, what, false))
			send_cmm_all(p);
		mk_debug("mapped %s", mk_addr_fmt(&p->pm_map.external, s,
		    sizeof(s)));
	}
	pm_arm(p);
}

/* On the way out: the gateway forgets the mapping (a bounded, blocking
 * exchange; nothing else waits by then). */
static void
pm_release(struct punch *p)
{
	struct pollfd pfd;
	struct mk_pm_job out;
	char s[MK_ADDRSTRLEN];
	const char *why;

	if (p->pm != NULL) {
		/* a mapping asked for may be made even so: wait for the
		 * answer (the gateway's timeouts bound it), to delete it */
		pfd.fd = mk_pm_async_fd(p->pm);
		pfd.events = POLLIN;
		if (p->pm_op != MK_PM_OP_PROBE &&
		    poll(&pfd, 1, PM_EXIT_WAIT_MS) == 1 &&
		    mk_pm_async_result(p->pm, &out) == 1 && out.rc == 0) {
			p->pm_map = out.mapping;
			p->pm_mapped = true;
		}
		mk_pm_async_free(p->pm);	/* its thread ends alone */
		p->pm = NULL;
	}
	/* unmap forgets the external address: name it first */
	mk_addr_fmt(&p->pm_map.external, s, sizeof(s));
	if (p->pm_mapped && mk_pm_unmap(&p->pm_map, &why) != 0)
		mk_warn("port mapping %s not deleted: %s", s, why);
	else if (p->pm_mapped)
		mk_info("port mapping %s by %s deleted", s,
		    mk_pm_name(p->pm_map.via));
	p->pm_mapped = false;
}

/* ---- the relay ---- */

static void
dc_connected(struct mk_derpc *c, void *arg)
{
	struct punch *p = arg;
	size_t i;

	snprintf(p->relay_url, sizeof(p->relay_url), "%s",
	    mk_derpc_target(c)->url.url);
	mk_info("on the relay %s", p->relay_url);
	if (!p->relay_ever)
		p->relay_at_us = mk_now_us();
	p->relay_up = p->relay_ever = true;
	send_cmm_all(p);
	/* a peer not yet direct is on this relay now */
	for (i = 0; i < p->n_peers; i++)
		if (p->peers[i]->best.addr.len == 0)
			p->peers[i]->reported = PATH_NONE;
	for (i = 0; i < p->n_peers; i++)
		report_path(p->peers[i]);
}

static void
dc_disconnected(struct mk_derpc *c, void *arg, int kind, const char *why)
{
	struct punch *p = arg;

	(void)kind;
	p->relay_up = false;
	/* As nc: one-shot, a relay never reached is a failure at once; a
	 * node, or a relay lost later, is retried by the client. */
	if (!p->relay_ever && !p->node) {
		mk_err("relay %s: %s", mk_derpc_target(c)->url.url, why);
		finish(p, MK_EXIT_FAIL);
		return;
	}
	mk_warn("relay %s: %s; trying again", mk_derpc_target(c)->url.url,
	    why);
}

static void
dc_recv(struct mk_derpc *c, void *arg, const struct mk_key *src,
    const uint8_t *pkt, size_t len)
{
	struct punch *p = arg;
	struct mk_addr none;
	struct peer *pe;

	(void)c;
	if (mk_disco_looks_like(pkt, len)) {
		memset(&none, 0, sizeof(none));	/* no UDP source */
		handle_disco(p, pkt, len, &none, src);
		return;
	}
	if (p->node && (pe = peer_by_key(p, src)) != NULL &&
	    mk_disco_classify(pkt, len) == MK_DISCO_CLASS_WIREGUARD) {
		pe->rx_relay++;
		to_wireguard(pe, pkt, len);
	}
}

static void
dc_peer_gone(struct mk_derpc *c, void *arg, const struct mk_key *key,
    uint8_t reason)
{
	struct punch *p = arg;
	struct peer *pe = peer_by_key(p, key);
	char who[MK_MESH_NAME_MAX + 1];

	(void)c;
	if (pe == NULL)
		return;
	mk_debug("%s: not on the relay (reason %u)", peer_label(pe, who,
	    sizeof(who)), reason);
	/* Our call-me-maybe did not reach it: answer its next one. If it
	 * was there and left, it may come back a new process. */
	pe->got_cmm = false;
	if (reason == MK_DERP_GONE_DISCONNECTED)
		pe->left_relay = true;
}

/* ---- the birthday escalation (node mode) ---- */

/*
 * A pair stays on the relay when one side's NAT maps endpoint-dependently
 * and the other's filters by address and port: the peer's packets come
 * from a mapping its filter never sent to. With `birthday on`, after a
 * few CallMeMaybe rounds without a pong, the two agree over the relay
 * (the 0x80 hello of lib/birthday, carrying each side's role from its
 * own STUN verdict) and run lib/birthday's engine: the endpoint-dependent
 * side is hard, the other easy. The winning socket joins the loop and
 * carries that pair's direct packets; the losing ones close at once.
 */

static bool
via_bday(const struct peer *pe, const struct mk_addr *to)
{
	return pe->bd.sock.fd >= 0 && to->len != 0 &&
	    mk_addr_equal(to, &pe->bd.remote);
}

/* Our part, from our own NAT: hard behind an endpoint-dependent one,
 * easy behind one two STUN servers saw map alike; -1 when we cannot
 * tell, or cannot take part (a run is IPv4, on a native route). */
static int
bday_own_role(const struct punch *p)
{
	if (sock_index(p, AF_INET) < 0 || p->nat64.len != 0)
		return -1;
	if (p->own_edm)
		return MK_BDAY_HARD;
	if (strcmp(own_nat(p), "EIM") == 0)
		return MK_BDAY_EASY;
	return -1;
}

static bool
bday_roles_fit(enum mk_bday_role mine, uint8_t theirs)
{
	return (mine == MK_BDAY_HARD && theirs == MK_BDAY_ROLE_WIRE_EASY) ||
	    (mine == MK_BDAY_EASY && theirs == MK_BDAY_ROLE_WIRE_HARD);
}

/* The hello's address must be on the IP of a candidate the peer offered:
 * a run probes that one IP and nothing else. */
static bool
bday_addr_offered(const struct peer *pe, const struct mk_addr *a)
{
	size_t i;

	for (i = 0; i < pe->n_cands; i++)
		if (mk_addr_same_ip(&pe->cands[i].addr, a))
			return true;
	return false;
}

/* Our public IPv4 address as STUN saw it (the hard side's hello: behind
 * an endpoint-dependent NAT only the IP means anything). */
static bool
own_public4(const struct punch *p, struct mk_addr *out)
{
	int si = sock_index(p, AF_INET);
	size_t i;

	for (i = 0; si >= 0 && i < p->n_stun; i++) {
		if (p->stun[i].mapped[si].len == 0)
			continue;
		*out = p->stun[i].mapped[si];
		mk_addr_unmap(out);
		if (mk_addr_family(out) == AF_INET)
			return true;
	}
	return false;
}

static const struct mk_addr *
stun_server4(const struct punch *p)
{
	size_t i;

	for (i = 0; i < p->n_stun; i++)
		if (p->stun[i].addr.len != 0 &&
		    mk_addr_family(&p->stun[i].addr) == AF_INET)
			return &p->stun[i].addr;
	return NULL;
}

static const char *
bday_role_name(enum mk_bday_role r)
{
	return r == MK_BDAY_HARD ? "hard" : "easy";
}

static void
bday_free_engine(void *arg)
{
	mk_bday_free(arg);
}

/* Whatever a run holds, let go: the engine and its sockets, the easy
 * side's socket while STUN asks, the timer. The won socket stays. */
static void
bday_stop(struct peer *pe)
{
	struct punch *p = pe->p;

	mk_timer_cancel(&p->loop, &pe->bd.timer);
	if (pe->bd.engine != NULL)
		mk_bday_free(pe->bd.engine);
	pe->bd.engine = NULL;
	if (pe->bd.prep.fd >= 0) {
		mk_loop_del(&p->loop, &pe->bd.prep);
		close(pe->bd.prep.fd);
		pe->bd.prep.fd = -1;
	}
	pe->bd.state = BD_IDLE;
	pe->bd.have_theirs = false;
	if (p->bday_busy == pe)
		p->bday_busy = NULL;
}

/* A run that ended without a path: not again for a while. */
static void
bday_fail(struct peer *pe, const char *why)
{
	char who[MK_MESH_NAME_MAX + 1];

	mk_info("%s: birthday: %s; next try in %d minutes", peer_label(pe, who,
	    sizeof(who)), why, BDAY_BACKOFF_US / 60000000);
	bday_stop(pe);
	pe->bd.retry_us = mk_now_us() + BDAY_BACKOFF_US;
	pe->bd.failed_rounds = 0;
}

/* The won socket goes (its path failed, or the peer went); its mapping
 * is no candidate of ours to ping from elsewhere. */
static void
bday_sock_close(struct peer *pe, const char *why)
{
	struct punch *p = pe->p;
	char who[MK_MESH_NAME_MAX + 1];
	size_t i;

	if (pe->bd.sock.fd < 0)
		return;
	if (why != NULL)
		mk_info("%s: birthday socket (local port %u) closed: %s",
		    peer_label(pe, who, sizeof(who)), pe->bd.local_port, why);
	mk_loop_del(&p->loop, &pe->bd.sock);
	close(pe->bd.sock.fd);
	pe->bd.sock.fd = -1;
	for (i = 0; i < pe->n_cands; i++)
		if (mk_addr_equal(&pe->cands[i].addr, &pe->bd.remote)) {
			pe->cands[i] = pe->cands[--pe->n_cands];
			break;
		}
	pe->bd.failed_rounds = 0;
}

static void
bday_send_hello(struct peer *pe)
{
	struct punch *p = pe->p;
	struct mk_bday_hello h;
	uint8_t pt[MK_BDAY_HELLO_LEN], pkt[MK_BDAY_HELLO_LEN +
	    MK_DISCO_OVERHEAD];
	const char *why;
	ssize_t n;

	if (!p->relay_up)
		return;
	memset(&h, 0, sizeof(h));
	h.role = pe->bd.role == MK_BDAY_HARD ? MK_BDAY_ROLE_WIRE_HARD :
	    MK_BDAY_ROLE_WIRE_EASY;
	h.flags = pe->bd.have_theirs ? MK_BDAY_HELLO_HAVE_YOURS : 0;
	h.ports = (uint16_t)p->bday_ports;
	h.count = (uint32_t)p->bday_count;
	h.rate = p->bday_rate;
	h.start_ms = BDAY_START_MS;
	h.addr = pe->bd.public;
	if ((n = mk_bday_put_hello(pt, sizeof(pt), &h, &why)) < 0) {
		mk_warn("cannot make a birthday hello: %s", why);
		return;
	}
	if ((n = seal(p, pe, pkt, sizeof(pkt), pt, (size_t)n)) < 0)
		return;
	if (mk_derpc_send(p->dc, &pe->key, pkt, (size_t)n) != 0)
		mk_debug("birthday hello not sent: %s", strerror(errno));
}

/* Both hellos are known: say hello until the peer has ours too. */
static void
bday_hello_phase(struct peer *pe)
{
	pe->bd.state = BD_HELLO;
	pe->bd.since_us = mk_now_us();
	bday_send_hello(pe);
	mk_timer_in(&pe->p->loop, &pe->bd.timer, BDAY_HELLO_US);
}

/* The hard side keeps its mappings while the easy side may still probe:
 * its count at its rate, and the wait for late answers, within a bound. */
static uint64_t
bday_hard_duration(const struct mk_bday_hello *easy)
{
	uint64_t us = ((uint64_t)easy->count * 1000000 + easy->rate - 1) /
	    easy->rate + 2 * BDAY_GRACE_US;

	return us < BDAY_MAX_RUN_US ? us : BDAY_MAX_RUN_US;
}

static void on_bday_sock(struct mk_loop *l, struct mk_io *io,
    uint32_t events);

/* Won: the winning socket joins the loop for this peer, and punch's own
 * ping proves the path before it carries anything. */
static void
bday_sock_install(struct peer *pe, int fd, const struct mk_bday_result *r)
{
	struct punch *p = pe->p;
	char s[MK_ADDRSTRLEN], who[MK_MESH_NAME_MAX + 1];

	bday_sock_close(pe, "a new run won");
	pe->bd.sock.fd = fd;
	pe->bd.sock.fn = on_bday_sock;
	pe->bd.sock.arg = pe;
	if (mk_loop_add(&p->loop, &pe->bd.sock, EPOLLIN) != 0) {
		mk_warn("event loop: %s", strerror(errno));
		close(fd);
		pe->bd.sock.fd = -1;
		return;
	}
	pe->bd.remote = r->remote;
	pe->bd.local_port = r->local_port;
	pe->bd.won_us = mk_now_us();
	mk_info("%s: birthday: won: local port %u <-> %s, %.3f ms, after "
	    "%llu probes in %.1f s", peer_label(pe, who, sizeof(who)),
	    r->local_port, mk_addr_fmt(&r->remote, s, sizeof(s)),
	    (double)r->rtt_us / 1000, (unsigned long long)r->probes,
	    (double)r->elapsed_us / 1e6);
	cand_add(pe, &r->remote, false);
	send_ping(pe, &r->remote);
}

static void
on_bday_done(struct mk_bday *b, void *arg)
{
	struct peer *pe = arg;
	struct punch *p = pe->p;
	struct mk_bday_result r;
	char why[128];
	int fd = -1;

	mk_bday_result(b, &r);
	if (r.won)
		fd = mk_bday_take_winner(b);	/* the losers close now */
	/* freed after this round: we are inside its callback */
	pe->bd.engine = NULL;
	if (mk_loop_defer(&p->loop, bday_free_engine, b) != 0)
		mk_bday_free(b);
	if (fd < 0) {
		snprintf(why, sizeof(why), "no hit after %llu probes in %.1f s",
		    (unsigned long long)r.probes, (double)r.elapsed_us / 1e6);
		bday_fail(pe, why);
		return;
	}
	bday_stop(pe);
	bday_sock_install(pe, fd, &r);
}

static void
bday_engine_start(struct peer *pe)
{
	struct punch *p = pe->p;
	struct mk_bday_config c;
	char s[MK_ADDRSTRLEN], who[MK_MESH_NAME_MAX + 1];
	const char *why;

	memset(&c, 0, sizeof(c));
	c.role = pe->bd.role;
	c.priv = p->priv;
	c.pub = p->pub;
	c.peer = pe->key;
	c.dst = pe->bd.theirs.addr;
	c.ports = p->bday_ports;
	c.fd = -1;
	c.rate = p->bday_rate;
	c.count = p->bday_count;
	c.grace_us = BDAY_GRACE_US;
	c.force = false;	/* the engine's rate cap holds */
	c.done = on_bday_done;
	c.arg = pe;
	if (c.role == MK_BDAY_HARD) {
		if (pe->bd.theirs.rate == 0) {
			bday_fail(pe, "the easy side's hello has rate 0");
			return;
		}
		c.duration_us = bday_hard_duration(&pe->bd.theirs);
	} else {
		/* the socket whose mapping we told: the engine's now */
		mk_loop_del(&p->loop, &pe->bd.prep);
		c.fd = pe->bd.prep.fd;
	}
	if (mk_bday_new(&pe->bd.engine, &p->loop, &c, &why) != 0) {
		sodium_memzero(&c, sizeof(c));
		bday_fail(pe, why);	/* closes the easy socket: still ours */
		return;
	}
	sodium_memzero(&c, sizeof(c));
	pe->bd.prep.fd = -1;
	pe->bd.state = BD_RUN;
	pe->bd.since_us = mk_now_us();
	if (pe->bd.role == MK_BDAY_HARD)
		mk_info("%s: birthday: %u sockets ping %s (hard side)",
		    peer_label(pe, who, sizeof(who)), p->bday_ports,
		    mk_addr_fmt(&pe->bd.theirs.addr, s, sizeof(s)));
	else
		mk_info("%s: birthday: up to %llu probes at %u a second to "
		    "random ports of %s (easy side; %.2f %% chance against "
		    "%u sockets)", peer_label(pe, who, sizeof(who)),
		    (unsigned long long)p->bday_count, p->bday_rate,
		    mk_addr_fmt(&pe->bd.theirs.addr, s, sizeof(s)),
		    100 * mk_bday_chance(pe->bd.theirs.ports, MK_BDAY_SPACE,
		    (double)p->bday_count), pe->bd.theirs.ports);
	if (mk_bday_start(pe->bd.engine) != 0)
		bday_fail(pe, "event loop");
}

/* A run begins here (our trigger, or the peer's hello): the hard side
 * says hello at once, the easy side first learns the mapping of a socket
 * of its own (async STUN, the loop's timer drives it). */
static void
bday_begin(struct peer *pe, enum mk_bday_role role)
{
	struct punch *p = pe->p;
	const struct mk_addr *srv;
	struct mk_addr any;
	char who[MK_MESH_NAME_MAX + 1];
	const char *why;
	int fd;

	pe->bd.role = role;
	pe->bd.since_us = mk_now_us();
	p->bday_busy = pe;
	mk_info("%s: birthday: starting as the %s side (our NAT maps %s)",
	    peer_label(pe, who, sizeof(who)), bday_role_name(role),
	    role == MK_BDAY_HARD ? "endpoint-dependently" :
	    "endpoint-independently");
	if (role == MK_BDAY_HARD) {
		if (!own_public4(p, &pe->bd.public)) {
			bday_fail(pe, "no public IPv4 address from STUN");
			return;
		}
		bday_hello_phase(pe);
		return;
	}
	if ((srv = stun_server4(p)) == NULL) {
		bday_fail(pe, "no IPv4 STUN server");
		return;
	}
	mk_addr_any(&any, AF_INET, 0);
	if ((fd = mk_udp_bind(&any, 0, &why)) < 0) {
		bday_fail(pe, why);
		return;
	}
	pe->bd.prep.fd = fd;
	pe->bd.prep.fn = on_bday_sock;	/* BD_STUN: STUN answers */
	pe->bd.prep.arg = pe;
	if (mk_loop_add(&p->loop, &pe->bd.prep, EPOLLIN) != 0) {
		close(fd);
		pe->bd.prep.fd = -1;
		bday_fail(pe, "event loop");
		return;
	}
	memset(&pe->bd.stun, 0, sizeof(pe->bd.stun));
	pe->bd.stun.server = *srv;
	mk_stunc_start(&pe->bd.stun, &p->ssched, mk_now_us());
	pe->bd.state = BD_STUN;
	on_bday_timer(&p->loop, &pe->bd.timer);
}

/* From on_cmm_timer: start a run when the pair qualifies. */
static void
bday_consider(struct peer *pe, bool active)
{
	struct punch *p = pe->p;
	char who[MK_MESH_NAME_MAX + 1];
	int role;

	if (!p->bday_on && pe->bd.failed_rounds == BDAY_AFTER_ROUNDS)
		mk_info("%s: no direct path after %d rounds of punching; "
		    "birthday is off, so the relay carries the pair",
		    peer_label(pe, who, sizeof(who)), BDAY_AFTER_ROUNDS);
	if (!p->bday_on || pe->bd.state != BD_IDLE || pe->bd.sock.fd >= 0 ||
	    pe->best.addr.len != 0 || !active || !p->relay_up ||
	    p->bday_busy != NULL || mk_now_us() < pe->bd.retry_us ||
	    pe->bd.failed_rounds < BDAY_AFTER_ROUNDS ||
	    (role = bday_own_role(p)) < 0)
		return;
	pe->bd.have_theirs = false;
	bday_begin(pe, (enum mk_bday_role)role);
}

static void
bday_ignore(struct peer *pe, const char *why)
{
	char who[MK_MESH_NAME_MAX + 1];

	if (!pe->bd.told)
		mk_info("%s: birthday hello ignored: %s", peer_label(pe, who,
		    sizeof(who)), why);
	pe->bd.told = true;
}

static void
bday_got_hello(struct peer *pe, const struct mk_bday_hello *h)
{
	struct punch *p = pe->p;
	uint64_t wait_ms;
	int mine;

	if (!p->bday_on) {
		bday_ignore(pe, "birthday is off here");
		return;
	}
	if (pe->bd.state == BD_WAIT || pe->bd.state == BD_RUN)
		return;		/* hellos repeat until both have both */
	if (!bday_addr_offered(pe, &h->addr)) {
		bday_ignore(pe, "its address is on no IP the peer offered");
		return;
	}
	if (pe->bd.state == BD_IDLE) {
		if (pe->best.addr.len != 0 || pe->bd.sock.fd >= 0 ||
		    mk_now_us() < pe->bd.retry_us || p->bday_busy != NULL)
			return;	/* direct, or not now: the peer gives up */
		if ((mine = bday_own_role(p)) < 0 ||
		    !bday_roles_fit((enum mk_bday_role)mine, h->role)) {
			bday_ignore(pe, "the roles do not fit our NAT");
			return;
		}
		pe->bd.theirs = *h;
		pe->bd.have_theirs = true;
		bday_begin(pe, (enum mk_bday_role)mine);
		return;
	}
	if (!bday_roles_fit(pe->bd.role, h->role))
		return;
	if (!pe->bd.have_theirs) {
		pe->bd.theirs = *h;
		pe->bd.have_theirs = true;
		if (pe->bd.state == BD_HELLO)
			bday_send_hello(pe);	/* at once: it waits for it */
	}
	if (pe->bd.state != BD_HELLO || !(h->flags & MK_BDAY_HELLO_HAVE_YOURS))
		return;
	mk_timer_cancel(&p->loop, &pe->bd.timer);
	if (pe->bd.role == MK_BDAY_HARD) {
		bday_engine_start(pe);
		return;
	}
	/* the hard side's mappings first */
	wait_ms = h->start_ms < 10000 ? h->start_ms : 10000;
	pe->bd.state = BD_WAIT;
	mk_timer_in(&p->loop, &pe->bd.timer, wait_ms * 1000);
}

static void
on_bday_timer(struct mk_loop *l, struct mk_timer *t)
{
	struct peer *pe = t->arg;
	struct punch *p = pe->p;
	uint64_t now = mk_now_us(), next;

	switch (pe->bd.state) {
	case BD_STUN:
		next = mk_stunc_send_due(pe->bd.prep.fd, AF_INET,
		    &pe->bd.stun, 1, &p->ssched, now);
		if (pe->bd.stun.state != MK_STUNC_PENDING)
			bday_fail(pe, "STUN on the probing socket: no answer");
		else if (next != UINT64_MAX)
			mk_timer_at(l, t, next);
		break;
	case BD_HELLO:
		if (now - pe->bd.since_us > BDAY_HELLO_WAIT_US) {
			bday_fail(pe, "no hello from the peer (is birthday "
			    "on there?)");
			break;
		}
		bday_send_hello(pe);
		mk_timer_in(l, t, BDAY_HELLO_US);
		break;
	case BD_WAIT:
		bday_engine_start(pe);
		break;
	default:
		break;
	}
}

/* The easy side's STUN answer, before the engine owns the socket. */
static void
bday_stun_input(struct peer *pe, const uint8_t *buf, size_t len,
    const struct mk_addr *from)
{
	char s[MK_ADDRSTRLEN], who[MK_MESH_NAME_MAX + 1];
	struct mk_addr local;
	const char *why;

	if (mk_stunc_input(&pe->bd.stun, 1, buf, len, from, mk_now_us(),
	    &why) < 0 || pe->bd.stun.state != MK_STUNC_DONE)
		return;
	if (pe->bd.stun.mapped.len == 0) {
		bday_fail(pe, "STUN on the probing socket: no mapped address");
		return;
	}
	pe->bd.public = pe->bd.stun.mapped;
	mk_addr_unmap(&pe->bd.public);
	if (mk_sock_local(pe->bd.prep.fd, &local) != 0)
		memset(&local, 0, sizeof(local));
	mk_info("%s: birthday: probing from local port %u, public %s",
	    peer_label(pe, who, sizeof(who)), mk_addr_port(&local),
	    mk_addr_fmt(&pe->bd.public, s, sizeof(s)));
	mk_timer_cancel(&pe->p->loop, &pe->bd.timer);
	bday_hello_phase(pe);
}

/*
 * The peer's own socket: STUN while the easy side learns its mapping;
 * once won, disco and WireGuard from the one mapping it reaches, batched
 * to WireGuard as on_udp does.
 */
static void
on_bday_sock(struct mk_loop *l, struct mk_io *io, uint32_t events)
{
	struct peer *pe = io->arg;
	struct punch *p = pe->p;
	struct mk_addr from;
	bool trunc, queued;
	uint8_t *buf;
	size_t len;
	int n, i, round;

	(void)l;
	(void)events;
	for (round = 0; round < 8 && io->fd >= 0 && !p->done; round++) {
		if ((n = mk_udpbatch_recv(&p->rx, io->fd)) <= 0)
			break;
		queued = false;
		for (i = 0; i < n && io->fd >= 0; i++) {
			buf = mk_udpbatch_get(&p->rx, (unsigned)i, &len, &from,
			    &trunc);
			if (trunc)
				continue;
			if (io == &pe->bd.prep) {
				bday_stun_input(pe, buf, len, &from);
				continue;
			}
			if (!mk_addr_equal(&from, &pe->bd.remote))
				continue;	/* it talks to one mapping */
			switch (mk_disco_classify(buf, len)) {
			case MK_DISCO_CLASS_DISCO:
				handle_disco(p, buf, len, &from, NULL);
				break;
			case MK_DISCO_CLASS_WIREGUARD:
				if (pe->lo.fd < 0 || p->wg_addr.len == 0)
					break;
				pe->rx_direct++;
				pe->last_rx_us = mk_now_us();
				mk_udpbatch_push_ref(&p->tx, buf, len,
				    &p->wg_addr);
				queued = true;
				break;
			default:
				break;
			}
		}
		if (queued)
			wg_flush(p, pe);
	}
}

static const char *
bday_state_name(const struct peer *pe)
{
	static const char *const names[] = { "idle", "stun", "hello",
	    "waiting", "probing" };

	if (pe->bd.sock.fd >= 0)
		return "socket";
	if (!pe->p->bday_on)
		return "off";
	if (pe->bd.state == BD_IDLE && mk_now_us() < pe->bd.retry_us)
		return "backoff";
	return names[pe->bd.state];
}

/* ---- peers ---- */

/* A loopback port for the peer, derived from its key, so that WireGuard
 * keeps pointing at the right place across restarts; the next in a
 * fixed sequence when taken. Ports 10000-29999, below the ephemeral
 * range. */
static int
peer_bind_lo(struct peer *pe)
{
	struct mk_addr a;
	const char *why;
	uint32_t h = mk_get16(pe->key.b) | (uint32_t)pe->key.b[2] << 16;
	int fd, i;

	for (i = 0; i < 64; i++) {
		pe->lo_port = (uint16_t)(10000 + (h + (uint32_t)i * 7919) %
		    20000);
		mk_addr_parse(&a, "127.0.0.1", pe->lo_port, 0, &why);
		if ((fd = mk_udp_bind(&a, 0, &why)) >= 0) {
			pe->lo.fd = fd;
			return 0;
		}
		if (errno != EADDRINUSE)
			break;
	}
	mk_err("loopback port for a peer: %s", strerror(errno));
	return -1;
}

/* A peer_new that failed half-way: what it took so far. */
static void
peer_unmade(struct peer *pe)
{
	mk_disco_replay_free(&pe->replay);
	free(pe);
}

static struct peer *
peer_new(struct punch *p, const struct mk_key *key, const char *name)
{
	struct peer *pe, **np;
	const char *why;

	if ((np = realloc(p->peers, (p->n_peers + 1) * sizeof(*np))) == NULL)
		return NULL;
	p->peers = np;
	if ((pe = calloc(1, sizeof(*pe))) == NULL)
		return NULL;
	if (mk_disco_replay_init(&pe->replay, NONCE_CACHE) != 0) {
		peer_unmade(pe);
		return NULL;
	}
	pe->p = p;
	pe->key = *key;
	snprintf(pe->name, sizeof(pe->name), "%s", name ? name : "");
	pe->tokens = DISCO_BURST;
	pe->tokens_us = pe->created_us = mk_now_us();
	pe->lo.fd = -1;
	pe->reported = PATH_NONE;
	pe->bd.prep.fd = pe->bd.sock.fd = -1;
	mk_timer_init(&pe->bd.timer, on_bday_timer, pe);
	if (mk_disco_shared_init(&pe->shared, key, &p->priv, &why) != 0) {
		mk_err("%s: peer key: %s", name ? name : "peer", why);
		peer_unmade(pe);
		return NULL;
	}
	if (p->node) {
		if (peer_bind_lo(pe) != 0) {
			peer_unmade(pe);
			return NULL;
		}
		pe->lo.fn = on_wg;
		pe->lo.arg = pe;
		if (mk_loop_add(&p->loop, &pe->lo, EPOLLIN) != 0) {
			close(pe->lo.fd);
			peer_unmade(pe);
			return NULL;
		}
	}
	mk_timer_init(&pe->cmm_timer, on_cmm_timer, pe);
	mk_timer_init(&pe->heartbeat, on_heartbeat, pe);
	mk_timer_in(&p->loop, &pe->cmm_timer, CMM_EVERY_US);
	mk_timer_in(&p->loop, &pe->heartbeat, PING_EVERY_US);
	p->peers[p->n_peers++] = pe;
	send_cmm(pe);
	return pe;
}

static void
peer_free(void *arg)
{
	struct peer *pe = arg;

	if (pe->lo.fd >= 0)
		close(pe->lo.fd);
	mk_disco_shared_wipe(&pe->shared);
	mk_disco_replay_free(&pe->replay);
	free(pe);
}

/* Out of the list now, freed after this round (callbacks of the round
 * may still hold it). */
static void
peer_drop(struct punch *p, size_t i)
{
	struct peer *pe = p->peers[i];

	mk_timer_cancel(&p->loop, &pe->cmm_timer);
	mk_timer_cancel(&p->loop, &pe->heartbeat);
	bday_stop(pe);
	bday_sock_close(pe, NULL);
	if (pe->lo.fd >= 0)
		mk_loop_del(&p->loop, &pe->lo);
	p->peers[i] = p->peers[--p->n_peers];
	if (mk_loop_defer(&p->loop, peer_free, pe) != 0)
		peer_free(pe);	/* nothing of the round uses it after this */
}

/* ---- WireGuard control (node mode) ---- */

/* WireGuard's listen port, and every peer's endpoint at its loopback
 * socket. Called at start and on SIGHUP. 0, or -1 (a fatal failure). */
static int
wg_sync(struct punch *p)
{
	struct mk_wg_device cur;
	struct mk_addr ep;
	struct mk_wg *h;
	char who[MK_MESH_NAME_MAX + 1];
	const char *why;
	size_t i;
	int r;

	memset(&cur, 0, sizeof(cur));
	if (mk_wg_open(&h, p->o->wg, &why) != 0) {
		mk_err("%s: %s: %s", p->o->wg, why, strerror(errno));
		return -1;
	}
	if (mk_wg_get(h, &cur, &why) != 0) {
		mk_err("%s: %s: %s", p->o->wg, why, strerror(errno));
		mk_wg_close(h);
		return -1;
	}
	mk_wg_device_sort(&cur);
	if (cur.listen_port == 0) {
		mk_err("%s: WireGuard has no listen port", p->o->wg);
		goto fail;
	}
	mk_addr_parse(&p->wg_addr, "127.0.0.1", cur.listen_port, 0, &why);
	for (i = 0; i < p->n_peers; i++) {
		struct peer *pe = p->peers[i];

		mk_addr_parse(&ep, "127.0.0.1", pe->lo_port, 0, &why);
		r = mk_wg_set_endpoint(h, &cur, &pe->key, &ep, &why);
		if (r == MK_WG_EP_NO_PEER)
			mk_warn("%s: not a peer of %s (wgsetup up --mesh "
			    "adds it)", peer_label(pe, who, sizeof(who)),
			    p->o->wg);
		else if (r < 0) {
			mk_err("%s: %s: %s", p->o->wg, why, strerror(errno));
			goto fail;
		} else if (r == MK_WG_EP_SET)
			mk_info("%s: WireGuard endpoint 127.0.0.1:%u",
			    peer_label(pe, who, sizeof(who)), pe->lo_port);
	}
	mk_wg_close(h);
	mk_wg_device_clear(&cur);
	return 0;
fail:
	mk_wg_close(h);
	mk_wg_device_clear(&cur);
	return -1;
}

/* The mesh's nodes but this one become the peers: new ones added, gone
 * ones dropped. 0, or -1 with the reason logged. */
static int
mesh_apply(struct punch *p, const struct mk_mesh *m)
{
	const struct mk_mesh_node *self = mk_mesh_find_key(m, &p->pub);
	struct peer *pe;
	size_t i, k;

	if (self == NULL) {
		mk_err("%s: this node's key is not in it", p->o->node);
		return -1;
	}
	snprintf(p->self_name, sizeof(p->self_name), "%s", self->name);
	for (i = 0; i < p->n_peers; i++)
		p->peers[i]->removed = true;
	for (k = 0; k < m->n_nodes; k++) {
		const struct mk_mesh_node *n = &m->nodes[k];

		if (n == self)
			continue;
		if ((pe = peer_by_key(p, &n->pubkey)) != NULL) {
			pe->removed = false;
			snprintf(pe->name, sizeof(pe->name), "%s", n->name);
		} else if (peer_new(p, &n->pubkey, n->name) == NULL) {
			return -1;
		}
	}
	for (i = p->n_peers; i-- > 0;)
		if (p->peers[i]->removed)
			peer_drop(p, i);
	return 0;
}

/* ---- the status socket (node mode) ---- */

static void
status_text(struct punch *p, bool json, struct mk_json *j, FILE *f)
{
	char k[MK_KEY_B64LEN + 1], s[MK_ADDRSTRLEN];
	uint64_t now = mk_now_us();
	size_t i;

	/* a comment line for people: this node, its port and NAT */
	if (!json)
		fprintf(f, "# %s port %u nat %s relay %s\n", p->self_name,
		    p->port, own_nat(p), p->relay_up ? p->relay_url : "down");
	for (i = 0; i < p->n_peers; i++) {
		struct peer *pe = p->peers[i];
		bool direct = pe->best.addr.len != 0;
		double rtt = (double)pe->best.latency_us / 1000;
		long long idle = pe->last_tx_us == 0 && pe->last_rx_us == 0 ?
		    -1 : (long long)((now - (pe->last_tx_us > pe->last_rx_us ?
		    pe->last_tx_us : pe->last_rx_us)) / 1000000);

		mk_key_to_base64(k, &pe->key);
		mk_addr_fmt(&pe->best.addr, s, sizeof(s));
		if (!json) {
			fprintf(f, "%-12s %s %s %s", pe->name[0] ? pe->name :
			    "-", k, direct ? "direct" : "relay", direct ? s :
			    p->relay_up ? p->relay_url : "(relay down)");
			if (direct)
				fprintf(f, " %.3fms", rtt);
			fprintf(f, " tx %llu/%llu rx %llu/%llu",
			    (unsigned long long)pe->tx_direct,
			    (unsigned long long)pe->tx_relay,
			    (unsigned long long)pe->rx_direct,
			    (unsigned long long)pe->rx_relay);
			if (idle >= 0)
				fprintf(f, " idle %llds", idle);
			if (pe->bd.sock.fd >= 0)
				fprintf(f, " birthday port %u",
				    pe->bd.local_port);
			fputc('\n', f);
			continue;
		}
		mk_json_reset(j);
		mk_json_obj_begin(j);
		mk_json_kstr(j, "name", pe->name[0] ? pe->name : NULL);
		mk_json_kstr(j, "key", k);
		mk_json_kstr(j, "path", direct ? "direct" : "relay");
		mk_json_kstr(j, "endpoint", pe->best.addr.len ? s : NULL);
		mk_json_key(j, "rtt_ms");
		if (pe->best.addr.len)
			mk_json_double(j, rtt, 3);
		else
			mk_json_null(j);
		mk_json_kstr(j, "relay", p->relay_up ? p->relay_url : NULL);
		mk_json_kbool(j, "seen", pe->seen);
		mk_json_kstr(j, "local_nat", own_nat(p));
		mk_json_kstr(j, "birthday", bday_state_name(pe));
		mk_json_kint(j, "tx_direct", (long long)pe->tx_direct);
		mk_json_kint(j, "tx_relay", (long long)pe->tx_relay);
		mk_json_kint(j, "rx_direct", (long long)pe->rx_direct);
		mk_json_kint(j, "rx_relay", (long long)pe->rx_relay);
		mk_json_key(j, "idle_s");
		if (idle >= 0)
			mk_json_int(j, idle);
		else
			mk_json_null(j);
		mk_json_obj_end(j);
		fprintf(f, "%s\n", mk_json_text(j));
	}
}

/* A request on the status socket (lib/ctlsock): "status" or "status json". */
static void
on_status_request(void *arg, const char *line, FILE *f)
{
	struct mk_json j;

	mk_json_init(&j);
	if (strcmp(line, "status") == 0)
		status_text(arg, false, &j, f);
	else if (strcmp(line, "status json") == 0)
		status_text(arg, true, &j, f);
	else
		fprintf(f, "error: unknown request\n");
	mk_json_free(&j);
}

static void
status_path(char *out, size_t n, const char *iface)
{
	snprintf(out, n, "%s/punch-%s.sock", STATUS_DIR, iface);
}

static int
status_listen(struct punch *p)
{
	char path[sizeof(p->ctl.path)];
	int tries;

	status_path(path, sizeof(path), p->o->wg);
	/* twice: a shared directory may be removed, empty, by whoever
	 * tidies up (another node's exit, a test) between mkdir and bind */
	for (tries = 0; tries < 2; tries++) {
		if (mkdir(STATUS_DIR, 0755) != 0 && errno != EEXIST) {
			mk_err("%s: %s", STATUS_DIR, strerror(errno));
			return -1;
		}
		if (mk_ctl_listen(&p->ctl, &p->loop, path, on_status_request,
		    p) == 0)
			return 0;
		if (errno != ENOENT)
			break;
	}
	if (errno == EADDRINUSE)
		mk_err("%s: another punch serves %s", path, p->o->wg);
	else
		mk_err("%s: %s", path, strerror(errno));
	return -1;
}

static int
cmd_status(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "interface", required_argument, NULL, 'i' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	const char *iface = NULL;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	bool json = false;
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "hi:j", longopts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			usage(stdout);
			return MK_EXIT_OK;
		case 'i':
			iface = optarg;
			break;
		case 'j':
			json = true;
			break;
		default:
			usage(stderr);
			return MK_EXIT_USAGE;
		}
	}
	if (optind != argc)
		mk_usage_error("unexpected argument: %s", argv[optind]);
	if (iface == NULL)
		iface = getenv("MESHKIT_IFACE");
	if (iface == NULL || !mk_wg_ifname_valid(iface))
		mk_usage_error("%s", iface == NULL ? "no interface: -i iface" :
		    "bad interface name");
	status_path(path, sizeof(path), iface);
	if (mk_ctl_ask(path, json ? "status json" : "status",
	    STDOUT_FILENO) != 0) {
		if (errno == ENOENT || errno == ECONNREFUSED)
			mk_err("%s: %s (is punch --node running for %s?)",
			    path, strerror(errno), iface);
		else
			mk_err("%s: %s", path, strerror(errno));
		return MK_EXIT_FAIL;
	}
	return MK_EXIT_OK;
}

/* ---- NAT64 (an IPv6-only host) ---- */

/* The prefix is known (or changed): STUN the IPv4 servers through it,
 * punch the peers' IPv4 candidates again, and dial the relay. */
static void
on_nat64(void *arg, const struct mk_nat64_prefix *pfx, size_t n,
    bool by_dns)
{
	struct punch *p = arg;
	char s[MK_NAT64_STRLEN];
	bool changed = !mk_nat64_equal(&p->nat64, &pfx[0]);
	size_t i;

	(void)n;	/* the first of several: the resolver's preference */
	if (changed)
		mk_info("NAT64 prefix %s (%s)", mk_nat64_fmt(&pfx[0], s,
		    sizeof(s)), by_dns ? "RFC 7050, ipv4only.arpa" :
		    "the well-known prefix: the resolver does no DNS64");
	p->nat64 = pfx[0];
	if (p->dc != NULL)
		mk_derpc_set_nat64(p->dc, &p->nat64);
	if (p->relay_waits) {
		p->relay_waits = false;
		mk_derpc_start(p->dc);
	}
	if (!changed)
		return;
	for (i = 0; i < p->n_stun; i++)
		if (p->stun[i].addr.len != 0)
			stun_start(p, i);
	stun_kick(p);
	for (i = 0; i < p->n_peers; i++)
		if (p->peers[i]->n_cands > 0)
			ping_cands(p->peers[i], true);
}

/* Without an IPv4 route (but with IPv6), learn the NAT64 prefix, off the
 * loop; with one, IPv4 is native again. At start and on each re-STUN. */
static void
nat64_check(struct punch *p)
{
	struct mk_nat64_prefix wkp;
	const char *why;

	if (sock_index(p, AF_INET6) < 0 ||
	    mk_nat64_disc_running(&p->nat64_disc))
		return;
	p->v6only = !mk_nat64_v4_routed();
	if (!p->v6only) {
		if (p->nat64.len != 0)
			mk_info("an IPv4 route again: no NAT64");
		memset(&p->nat64, 0, sizeof(p->nat64));
		if (p->dc != NULL)
			mk_derpc_set_nat64(p->dc, NULL);
		return;
	}
	if (p->nat64.len == 0)
		mk_info("no IPv4 route: looking for a NAT64 prefix");
	if (mk_nat64_disc_start(&p->nat64_disc, &p->loop, NULL, NAT64_DISC_US,
	    on_nat64, p, &why) != 0) {
		mk_warn("NAT64 discovery: %s", why);
		mk_nat64_wkp(&wkp);
		on_nat64(p, &wkp, 1, false);
	}
}

/* ---- setting up ---- */

/* --relay URLs (with --pin), then the mesh's relays in the file's order of
 * preference, as derpcat and natclass read them. */
static int
load_targets(const struct opts *o, const struct mk_mesh *mesh,
    const char *meshpath, struct mk_derpc_target *t, size_t *n)
{
	char err[600];

	if (mk_relayset_client_targets(o->relays, o->n_relays, o->pin, mesh,
	    meshpath, t, MAX_RELAYS, n, err, sizeof(err)) != 0) {
		mk_err("%s", err);
		return -1;
	}
	return 0;
}

static void
on_lookup(struct mk_loop *l, struct mk_io *io, uint32_t events)
{
	struct stun_server *sv = io->arg;
	struct punch *p = sv->p;
	const char *why;
	size_t n;

	(void)events;
	if (mk_lookup_result(sv->lookup, &sv->addr, 1, &n, &why) == 0)
		return;
	mk_loop_del(l, io);
	if (n == 0)
		mk_warn("STUN server %s: %s", sv->name, why);
	mk_lookup_free(sv->lookup);
	sv->lookup = NULL;
	if (n == 1) {
		stun_start(p, (size_t)(sv - p->stun));
		stun_kick(p);
	}
}

static void
stun_add(struct punch *p, const char *name)
{
	struct stun_server *sv = &p->stun[p->n_stun];
	char host[300], port[16];
	long long portnum = 3478;
	const char *why;

	if (p->n_stun == MAX_STUN)
		return;
	snprintf(sv->name, sizeof(sv->name), "%s", name);
	sv->p = p;
	if (mk_addr_split(name, host, sizeof(host), port, sizeof(port)) != 0 ||
	    (port[0] != '\0' && mk_strtonum(port, 1, 65535, &portnum) != 0))
		mk_usage_error("bad STUN server: %s", name);
	if ((sv->lookup = mk_lookup_start(host, (uint16_t)portnum,
	    p->o->family, SOCK_DGRAM, &why)) == NULL) {
		mk_warn("STUN server %s: %s", name, why);
		return;
	}
	sv->lio.fd = mk_lookup_fd(sv->lookup);
	sv->lio.fn = on_lookup;
	sv->lio.arg = sv;
	if (mk_loop_add(&p->loop, &sv->lio, EPOLLIN) != 0) {
		mk_warn("STUN server %s: %s", name, strerror(errno));
		mk_lookup_free(sv->lookup);
		sv->lookup = NULL;
		return;
	}
	p->n_stun++;
}

/* STUN servers: --stun, else the mesh's, else each relay's host. */
static void
stun_setup(struct punch *p, const struct mk_mesh *mesh,
    const struct mk_derpc_target *t, size_t n_targets)
{
	char name[300];
	size_t i;

	for (i = 0; i < p->o->n_stun; i++)
		stun_add(p, p->o->stun[i]);
	for (i = 0; p->o->n_stun == 0 && mesh != NULL && i < mesh->n_stun;
	    i++) {
		mk_hostport_fmt(name, sizeof(name), mesh->stun[i].host,
		    mesh->stun[i].port);
		stun_add(p, name);
	}
	for (i = 0; p->o->n_stun == 0 && (mesh == NULL || mesh->n_stun == 0)
	    && i < n_targets; i++) {
		mk_hostport_fmt(name, sizeof(name), t[i].url.host, 3478);
		stun_add(p, name);
	}
}

/* Node mode keeps its public port across restarts, so the NAT mapping
 * (and a peer's idea of it) can survive one: STATE_DIR/punch-IFACE.port. */
static void
state_port_path(const struct punch *p, char *out, size_t n)
{
	snprintf(out, n, "%s/punch-%s.port", STATE_DIR, p->o->wg);
}

static uint16_t
state_port_read(const struct punch *p)
{
	char path[300], buf[16];
	long long v;
	ssize_t n;
	int fd;

	state_port_path(p, path, sizeof(path));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = mk_read_small(fd, buf, sizeof(buf));
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (mk_strtonum(mk_trim(buf), 1, 65535, &v) != 0) {
		mk_warn("%s: not a port; taking any", path);
		return 0;
	}
	return (uint16_t)v;
}

static void
state_port_write(const struct punch *p)
{
	char path[300], buf[16];
	int n, tries;

	state_port_path(p, path, sizeof(path));
	n = snprintf(buf, sizeof(buf), "%u\n", p->port);
	/* twice, as status_listen, for a directory removed in between */
	for (tries = 0; tries < 2; tries++) {
		if (mkdir(STATE_DIR, 0755) != 0 && errno != EEXIST) {
			mk_warn("%s: %s (the port will not be kept)",
			    STATE_DIR, strerror(errno));
			return;
		}
		if (mk_file_replace(path, buf, (size_t)n, 0644) == 0)
			return;
		if (errno != ENOENT)
			break;
	}
	mk_warn("%s: %s (the port will not be kept)", path, strerror(errno));
}

static int
open_sockets(struct punch *p)
{
	static const int fams[2] = { AF_INET, AF_INET6 };
	struct mk_addr a;
	const char *why;
	size_t i;
	int fd;

	if (p->o->fd >= 0) {
		if (mk_udp_adopt(p->o->fd, &why) != 0) {
			mk_err("--fd %d: %s", p->o->fd, why);
			return -1;
		}
		p->socks[0].family = mk_sock_family(p->o->fd);
		p->socks[0].io.fd = p->o->fd;
		p->n_socks = 1;
	} else {
		p->port = (uint16_t)p->o->port;
		if (p->node && p->port == 0)
			p->port = state_port_read(p);
		for (i = 0; i < 2; i++) {
			if (p->o->family != AF_UNSPEC &&
			    p->o->family != fams[i])
				continue;
			mk_addr_any(&a, fams[i], p->port);
			fd = mk_udp_bind(&a, 0, &why);
			if (fd < 0 && errno == EADDRINUSE && p->o->port == 0 &&
			    p->n_socks == 0) {
				/* the kept port is taken: any will do */
				mk_warn("UDP port %u is taken; taking another",
				    p->port);
				p->port = 0;
				mk_addr_any(&a, fams[i], 0);
				fd = mk_udp_bind(&a, 0, &why);
			}
			if (fd < 0) {
				/* IPv6 may be absent; a port taken is not */
				if (fams[i] == AF_INET6 && errno !=
				    EADDRINUSE && p->n_socks > 0)
					continue;
				mk_err("%s UDP port %u: %s", why, p->port,
				    strerror(errno));
				return -1;
			}
			p->socks[p->n_socks].family = fams[i];
			p->socks[p->n_socks++].io.fd = fd;
			if (p->port == 0 && mk_sock_local(fd, &a) == 0)
				p->port = mk_addr_port(&a);
		}
	}
	for (i = 0; i < p->n_socks; i++) {
		p->socks[i].p = p;
		p->socks[i].io.fn = on_udp;
		p->socks[i].io.arg = &p->socks[i];
		if (mk_sock_local(p->socks[i].io.fd, &a) == 0)
			p->port = mk_addr_port(&a);
		if (mk_loop_add(&p->loop, &p->socks[i].io, EPOLLIN) != 0) {
			mk_err("event loop: %s", strerror(errno));
			return -1;
		}
	}
	if (p->node && p->o->port == 0 && p->port != state_port_read(p))
		state_port_write(p);
	mk_info("UDP port %u (%s)", p->port, p->n_socks == 2 ?
	    "IPv4 and IPv6" : p->socks[0].family == AF_INET ? "IPv4" :
	    "IPv6");
	return 0;
}

static int
load_key(struct punch *p)
{
	const char *why;

	if (mk_key_load_private(&p->priv, &p->pub, p->o->keyfile,
	    &why) != 0) {
		mk_err("%s: %s", p->o->keyfile, why);
		return MK_EXIT_USAGE;
	}
	return 0;
}

/* One-shot: the one peer, by key or by node name. */
static int
oneshot_peer(struct punch *p, const struct mk_mesh *mesh)
{
	const struct mk_mesh_node *node = NULL;
	struct mk_key k;
	const char *why;

	if (mk_key_parse(&k, p->o->peer, &why) != 0) {
		node = mesh != NULL ? mk_mesh_find_name(mesh, p->o->peer) :
		    NULL;
		if (node == NULL)
			mk_usage_error("%s: not a key%s", p->o->peer,
			    mesh != NULL ? " nor a node of the mesh" : "");
		k = node->pubkey;
	}
	if (mk_key_equal(&k, &p->pub))
		mk_usage_error("%s", "the peer is this node's own key");
	return peer_new(p, &k, node != NULL ? node->name : NULL) != NULL ?
	    0 : MK_EXIT_USAGE;
}

/* ---- the hand-off ---- */

/*
 * The punched socket, connected to the peer, becomes descriptor 3 of cmd
 * (the contract birthday uses too). Every other descriptor of ours is
 * close-on-exec.
 */
static int
exec_cmd(struct punch *p)
{
	struct peer *pe = p->peers[0];
	struct mk_addr dst;
	char s[MK_ADDRSTRLEN];
	int i = route_to(p, &pe->best.addr, &dst);	/* NAT64 aware */

	if (i < 0) {
		mk_err("no socket for %s", mk_addr_fmt(&pe->best.addr, s,
		    sizeof(s)));
		return MK_EXIT_FAIL;
	}
	return mk_handoff_exec(p->socks[i].io.fd, &dst, &pe->best.addr,
	    p->o->cmd);
}

static int
report(struct punch *p)
{
	struct peer *pe = p->peers[0];
	char s[MK_ADDRSTRLEN];
	double rtt = (double)pe->best.latency_us / 1000;

	mk_addr_fmt(&pe->best.addr, s, sizeof(s));
	if (p->o->json)
		printf("{\"local_port\":%u,\"remote\":\"%s\",\"rtt_ms\":%.3f}\n",
		    p->port, s, rtt);
	else
		printf("%u %s %.3f\n", p->port, s, rtt);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		mk_err("stdout: %s", strerror(errno));
		return MK_EXIT_FAIL;
	}
	return MK_EXIT_OK;
}

static void bday_settings(struct punch *p, const struct mk_mesh *m);

static void
on_signal(struct mk_loop *l, int signo, void *arg)
{
	struct punch *p = arg;
	struct mk_mesh m;
	char err[600];

	if (signo != SIGHUP) {
		mk_info("signal %d: leaving", signo);
		finish(p, MK_EXIT_OK);
		return;
	}
	/* A bad file keeps the running set: a node is not dropped from
	 * its mesh by a typo. */
	memset(&m, 0, sizeof(m));
	if (mk_mesh_load(&m, p->o->node, err, sizeof(err)) != 0) {
		mk_err("%s; keeping the peers as they are", err);
		return;
	}
	if (mesh_apply(p, &m) == 0 && wg_sync(p) == 0)
		mk_info("%s: %zu peers", p->o->node, p->n_peers);
	bday_settings(p, &m);	/* a run under way finishes as it began */
	mk_mesh_free(&m);
	(void)l;
}

/* The birthday escalation, node mode only: mesh.conf's `birthday`,
 * unless --birthday or --no-birthday says otherwise for this node; its
 * figures from the birthday-* options (lib/meshconf checked them against
 * the engine's limits), else lib/birthday's defaults. */
static void
bday_settings(struct punch *p, const struct mk_mesh *m)
{
	const char *v;
	long long n;

	p->bday_on = p->node && (p->o->birthday >= 0 ? p->o->birthday == 1 :
	    m != NULL && m->birthday);
	p->bday_ports = MK_BDAY_PORTS;
	p->bday_rate = MK_BDAY_RATE;
	p->bday_count = MK_BDAY_COUNT;
	if (m == NULL)
		return;
	if ((v = mk_mesh_option(m, "birthday-ports")) != NULL &&
	    mk_strtonum(v, 1, MK_BDAY_MAX_PORTS, &n) == 0)
		p->bday_ports = (unsigned)n;
	if ((v = mk_mesh_option(m, "birthday-rate")) != NULL &&
	    mk_strtonum(v, 1, MK_BDAY_RATE_CAP, &n) == 0)
		p->bday_rate = (unsigned)n;
	if ((v = mk_mesh_option(m, "birthday-count")) != NULL &&
	    mk_strtonum(v, 1, MK_BDAY_MAX_COUNT, &n) == 0)
		p->bday_count = (uint64_t)n;
}

static int
run(const struct opts *o)
{
	static const struct mk_derpc_cb cb = {
		.connected = dc_connected,
		.disconnected = dc_disconnected,
		.recv = dc_recv,
		.peer_gone = dc_peer_gone,
	};
	static const int sigs[] = { SIGHUP, SIGINT, SIGTERM };
	static struct punch pp;
	struct punch *p = &pp;
	struct mk_derpc_target targets[MAX_RELAYS];
	struct mk_derpc_config cfg;
	struct mk_mesh mesh, *m = NULL;
	const char *meshpath = o->node != NULL ? o->node : o->mesh, *why, *kv;
	char err[600];
	size_t n_targets = 0, i;
	long long ka = 25;
	int rc;

	p->o = o;
	p->node = o->node != NULL;
	memset(&mesh, 0, sizeof(mesh));
	if (meshpath != NULL) {
		if (mk_mesh_load(&mesh, meshpath, err, sizeof(err)) != 0) {
			mk_err("%s", err);
			return MK_EXIT_USAGE;
		}
		m = &mesh;
	}
	if ((kv = m != NULL ? mk_mesh_option(m, "keepalive") : NULL) != NULL)
		(void)mk_strtonum(kv, 1, 3600, &ka);
	p->keepalive_us = (uint64_t)ka * 1000000;
	bday_settings(p, m);
	if ((rc = load_key(p)) != 0)
		goto out_mesh;
	if (load_targets(o, m, meshpath, targets, &n_targets) != 0) {
		rc = MK_EXIT_USAGE;
		goto out_mesh;
	}
	if (n_targets == 0 && o->endpoint == NULL)
		mk_usage_error("%s", "no relay: give --relay or a mesh.conf "
		    "with relay lines");
	if (mk_loop_init(&p->loop) != 0 ||
	    mk_udpbatch_init(&p->rx, BATCH, PKT_MAX) != 0 ||
	    mk_udpbatch_init(&p->tx, BATCH, 1) != 0) {
		mk_err("setup: %s", strerror(errno));
		rc = MK_EXIT_FAIL;
		goto out_mesh;
	}
	/* node mode forwards runs of equal packets to one place (a TCP
	 * stream in the tunnel): one GSO message each, not one per packet */
	if (p->node && mk_udpbatch_gso(&p->tx) != 0) {
		mk_err("setup: %s", strerror(errno));
		rc = MK_EXIT_FAIL;
		goto out_mesh;
	}
	mk_timer_init(&p->pm_timer, on_pm_timer, p);
	rc = MK_EXIT_FAIL;
	if (open_sockets(p) != 0)
		goto out;
	mk_timer_init(&p->stun_timer, on_stun_timer, p);
	mk_stunc_sched_fast(&p->ssched, STUN_TIMEOUT_US);
	mk_timer_init(&p->restun_timer, on_restun, p);
	mk_timer_init(&p->deadline, on_deadline, p);
	mk_timer_init(&p->linger, on_linger, p);
	if (p->node) {
		if (mesh_apply(p, m) != 0) {
			rc = MK_EXIT_USAGE;
			goto out;
		}
		if (wg_sync(p) != 0 || status_listen(p) != 0 ||
		    mk_loop_signals(&p->loop, sigs, MK_ARRAY_LEN(sigs),
		    on_signal, p) != 0)
			goto out;
		mk_info("node %s: %zu peers, WireGuard on 127.0.0.1:%u",
		    p->self_name, p->n_peers, mk_addr_port(&p->wg_addr));
	} else if ((rc = oneshot_peer(p, m)) != 0) {
		goto out;
	}
	rc = MK_EXIT_FAIL;
	if (o->endpoint != NULL) {
		struct mk_addr ep;

		if (mk_addr_parse(&ep, o->endpoint, 0, MK_ADDR_NEED_PORT,
		    &why) != 0)
			mk_usage_error("bad --endpoint %s: %s", o->endpoint,
			    why);
		cand_add(p->peers[0], &ep, true);
	}
	if (o->fd < 0)
		(void)own_local(p);
	nat64_check(p);		/* an IPv6-only host: learn the prefix */
	if (!o->no_portmap && sock_index(p, AF_INET) >= 0)
		pm_start(p, MK_PM_OP_PROBE);
	stun_setup(p, m, targets, n_targets);
	if (n_targets > 0) {
		mk_derpc_config_init(&cfg);
		cfg.priv = p->priv;
		cfg.targets = targets;
		cfg.n_targets = n_targets;
		cfg.cafile = o->cafile;
		cfg.insecure = o->insecure;
		cfg.preferred = true;
		cfg.proxy = mk_derpc_proxy_from_env(&targets[0].url);
		if (mk_derpc_new(&p->dc, &p->loop, &cfg, &cb, p, &why) != 0) {
			mk_err("%s", why);
			sodium_memzero(&cfg, sizeof(cfg));
			goto out;
		}
		sodium_memzero(&cfg, sizeof(cfg));
		/* NAT64: the relay's IPv4 is reachable once the prefix is */
		if (p->nat64.len != 0)
			mk_derpc_set_nat64(p->dc, &p->nat64);
		if (mk_nat64_disc_running(&p->nat64_disc))
			p->relay_waits = true;
		else
			mk_derpc_start(p->dc);
	}
	if (p->node) {
		mk_timer_in(&p->loop, &p->restun_timer, RESTUN_MIN_US +
		    randombytes_uniform(6000000));
		/* without it we still re-learn every 20-26 s */
		if (mk_netmon_start(&p->netmon, &p->loop, on_netchange,
		    p) != 0)
			mk_warn("network monitor: %s", strerror(errno));
	} else {
		mk_timer_in(&p->loop, &p->deadline, o->wait_ms * 1000);
	}
	if (mk_loop_run(&p->loop) != 0) {
		mk_err("event loop: %s", strerror(errno));
		goto out;
	}
	rc = p->rc;
	if (rc == MK_EXIT_OK && !p->node && o->cmd != NULL) {
		/* the command inherits the socket, and with it the mapping:
		 * it lapses by itself (PM_LIFETIME_ONESHOT) */
		if (p->pm != NULL)
			mk_pm_async_free(p->pm);
		p->pm = NULL;
		rc = exec_cmd(p);
	} else if (rc == MK_EXIT_OK && !p->node) {
		rc = report(p);
	}
out:
	mk_netmon_stop(&p->netmon);
	mk_timer_cancel(&p->loop, &p->pm_timer);
	mk_nat64_disc_cancel(&p->nat64_disc);
	pm_release(p);
	if (p->dc != NULL)
		mk_derpc_free(p->dc);
	for (i = 0; i < p->n_stun; i++)
		mk_lookup_free(p->stun[i].lookup);
	for (i = 0; i < p->n_socks; i++)
		close(p->socks[i].io.fd);
	mk_ctl_close(&p->ctl);
	while (p->n_peers > 0)
		peer_drop(p, p->n_peers - 1);
	mk_loop_free(&p->loop);	/* runs the deferred frees */
	free(p->peers);
	mk_udpbatch_free(&p->rx);
	mk_udpbatch_free(&p->tx);
	mk_key_wipe(&p->priv);
out_mesh:
	mk_mesh_free(&mesh);
	return rc;
}

enum {
	OPT_RELAY = 256, OPT_PIN, OPT_CAFILE, OPT_INSECURE, OPT_STUN, OPT_FD,
	OPT_ENDPOINT, OPT_NODE, OPT_WG, OPT_NO_PORTMAP, OPT_BIRTHDAY,
	OPT_NO_BIRTHDAY,
};

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "birthday", no_argument, NULL, OPT_BIRTHDAY },
		{ "cafile", required_argument, NULL, OPT_CAFILE },
		{ "endpoint", required_argument, NULL, OPT_ENDPOINT },
		{ "fd", required_argument, NULL, OPT_FD },
		{ "help", no_argument, NULL, 'h' },
		{ "insecure", no_argument, NULL, OPT_INSECURE },
		{ "json", no_argument, NULL, 'j' },
		{ "key", required_argument, NULL, 'k' },
		{ "mesh", required_argument, NULL, 'c' },
		{ "no-birthday", no_argument, NULL, OPT_NO_BIRTHDAY },
		{ "no-portmap", no_argument, NULL, OPT_NO_PORTMAP },
		{ "node", required_argument, NULL, OPT_NODE },
		{ "pin", required_argument, NULL, OPT_PIN },
		{ "port", required_argument, NULL, 'p' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "relay", required_argument, NULL, OPT_RELAY },
		{ "stun", required_argument, NULL, OPT_STUN },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "wait", required_argument, NULL, 'w' },
		{ "wg", required_argument, NULL, OPT_WG },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o;
	int ch, quiet = 0, verbose = 0;

	memset(&o, 0, sizeof(o));
	o.fd = -1;
	o.birthday = -1;
	o.wait_ms = 15000;
	o.family = AF_UNSPEC;
	mk_cli_init("punch", usage);
	if (argc > 1 && strcmp(argv[1], "status") == 0) {
		mk_log_init("punch", MK_LOG_WARN);
		return cmd_status(argc - 1, argv + 1);
	}
	/* "+": options end at the peer, so a command after -- keeps its own */
	while ((ch = getopt_long(argc, argv, "+46c:hjk:p:qvVw:", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case '4':
			o.family = AF_INET;
			break;
		case '6':
			o.family = AF_INET6;
			break;
		case 'c':
			o.mesh = optarg;
			break;
		case 'h':
			usage(stdout);
			return MK_EXIT_OK;
		case 'j':
			o.json = true;
			break;
		case 'k':
			o.keyfile = optarg;
			break;
		case 'p':
			if (mk_strtonum(optarg, 0, 65535, &o.port) != 0)
				mk_usage_error("bad port: %s", optarg);
			break;
		case 'q':
			quiet = 1;
			break;
		case 'v':
			verbose++;
			break;
		case 'V':
			printf("punch %s\n", MK_VERSION);
			return MK_EXIT_OK;
		case 'w':
			if (mk_parse_seconds_ms(optarg, 86400000, &o.wait_ms) !=
			    0 || o.wait_ms == 0)
				mk_usage_error("bad wait: %s", optarg);
			break;
		case OPT_RELAY:
			if (o.n_relays == MAX_RELAYS)
				mk_usage_error("more than %d relays",
				    MAX_RELAYS);
			o.relays[o.n_relays++] = optarg;
			break;
		case OPT_PIN:
			o.pin = optarg;
			break;
		case OPT_CAFILE:
			o.cafile = optarg;
			break;
		case OPT_INSECURE:
			o.insecure = true;
			break;
		case OPT_STUN:
			if (o.n_stun == MAX_STUN)
				mk_usage_error("more than %d STUN servers",
				    MAX_STUN);
			o.stun[o.n_stun++] = optarg;
			break;
		case OPT_FD:
			if (mk_fd_parse(optarg, &o.fd) != 0)
				mk_usage_error("bad descriptor: %s", optarg);
			break;
		case OPT_ENDPOINT:
			o.endpoint = optarg;
			break;
		case OPT_NODE:
			o.node = optarg;
			break;
		case OPT_WG:
			o.wg = optarg;
			break;
		case OPT_NO_PORTMAP:
			o.no_portmap = true;
			break;
		case OPT_BIRTHDAY:
			o.birthday = 1;
			break;
		case OPT_NO_BIRTHDAY:
			o.birthday = 0;
			break;
		default:
			usage(stderr);
			return MK_EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (o.keyfile == NULL)
		mk_usage_error("%s", "no key: -k keyfile");
	if (o.node != NULL) {
		if (o.wg == NULL || !mk_wg_ifname_valid(o.wg))
			mk_usage_error("%s", o.wg == NULL ? "--node needs "
			    "--wg interface" : "bad interface name");
		if (argc > 0)
			mk_usage_error("unexpected argument: %s", argv[0]);
		if (o.mesh != NULL || o.fd >= 0 || o.n_relays > 0 || o.json ||
		    o.pin != NULL)
			mk_usage_error("%s", "--node takes relays and pins "
			    "from its mesh file; no -c, --fd, --relay, --pin "
			    "or -j with it");
	} else {
		if (o.wg != NULL)
			mk_usage_error("%s", "--wg needs --node");
		if (o.birthday >= 0)
			mk_usage_error("%s", "--birthday and --no-birthday "
			    "need --node");
		if (argc < 1)
			mk_usage_error("%s", "no peer given");
		o.peer = argv[0];
		if (argc > 1) {
			if (strcmp(argv[1], "--") != 0 || argc < 3)
				mk_usage_error("unexpected argument: %s",
				    argv[1]);
			o.cmd = &argv[2];
		}
	}
	if (o.endpoint != NULL && o.fd < 0)
		mk_usage_error("%s", "--endpoint needs --fd");
	if (o.fd >= 0 && o.port != 0)
		mk_usage_error("%s", "--fd cannot be combined with -p");
	if (o.insecure && (o.pin != NULL || o.cafile != NULL))
		mk_usage_error("%s", "--insecure checks nothing: no --pin or "
		    "--cafile with it");
	if (o.node == NULL && o.mesh == NULL && o.n_relays == 0 &&
	    o.endpoint == NULL) {
		const char *def = mk_mesh_default_path();

		if (access(def, R_OK) == 0)
			o.mesh = def;
	}
	mk_log_init("punch", quiet ? MK_LOG_ERR : MK_LOG_WARN + verbose);
	signal(SIGPIPE, SIG_IGN);
	if (mk_key_init() != 0) {
		mk_err("libsodium failed to initialise");
		return MK_EXIT_FAIL;
	}
	return run(&o);
}
