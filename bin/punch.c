/* SPDX-License-Identifier: MIT */
/*
 * punch: authenticated UDP hole punching between two nodes, as Tailscale's
 * magicsock does it. Both ends meet on a DERP relay, tell each other their
 * candidate addresses (CallMeMaybe, sealed between the node keys), and ping
 * every candidate at once, so that packets leave each NAT before the
 * other's arrive. A Pong from the peer's key to a ping we sent proves a
 * path. One-shot mode prints the best path and exits, or hands the socket
 * to a command.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "addr.h"
#include "cli.h"
#include "derp_client.h"
#include "disco.h"
#include "key.h"
#include "log.h"
#include "lookup.h"
#include "loop.h"
#include "meshconf.h"
#include "path.h"
#include "sock.h"
#include "stun.h"
#include "tls.h"
#include "udpbatch.h"
#include "url.h"
#include "util.h"
#include "version.h"

#define MAX_RELAYS	8
#define MAX_STUN	8
#define MAX_OWN		32	/* our candidates */
#define MAX_CANDS	32	/* the peer's */
#define MAX_PINGS	128	/* pings awaiting a pong */
#define NONCE_CACHE	512	/* disco nonces seen: replays are dropped */

#define CMM_EVERY_US	5000000	/* CallMeMaybe again until direct */
#define CMM_ANSWER_US	1000000	/* answer one only if ours is older */
#define PING_EVERY_US	1000000	/* re-ping candidates without a pong */
#define PING_TIMEOUT_US	5000000	/* a ping's TxID expires */
#define LINGER_US	1000000	/* keep answering after success */
#define STUN_TRIES	3
#define DISCO_RATE	100	/* disco messages per second per peer */
#define DISCO_BURST	200

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
};

/* One of our UDP sockets: one per family, on the same port. */
struct usock {
	struct mk_io	 io;
	int		 family;
	struct punch	*p;
};

struct stun_server {
	char		 name[300];
	struct mk_lookup *lookup;
	struct mk_addr	 addr;		/* len 0 until resolved */
	uint8_t		 txid[2][MK_STUN_TXID_LEN];	/* per socket */
	int		 tries;
	bool		 answered[2];
	struct mk_addr	 mapped[2];
};

struct ping {
	uint8_t		 txid[MK_DISCO_TXID_LEN];
	struct mk_addr	 to;
	uint64_t	 sent_us;
	bool		 live;
};

struct cand {
	struct mk_addr	 addr;
	bool		 ponged;
};

struct punch {
	const struct opts *o;
	struct mk_loop	 loop;
	struct mk_key	 priv, pub, peer;
	struct mk_disco_shared shared;
	struct mk_derpc	*dc;
	struct usock	 socks[2];
	size_t		 n_socks;
	uint16_t	 port;
	struct mk_udpbatch rx;

	struct stun_server stun[MAX_STUN];
	size_t		 n_stun;
	struct mk_timer	 stun_timer;
	struct mk_io	 lookup_io[MAX_STUN];

	struct mk_addr	 own[MAX_OWN];
	size_t		 n_own;
	bool		 own_edm;	/* our mapping varies by destination */

	struct cand	 cands[MAX_CANDS];
	size_t		 n_cands;
	struct ping	 pings[MAX_PINGS];
	size_t		 next_ping;
	uint8_t		 nonces[NONCE_CACHE][MK_DISCO_NONCE_LEN];
	size_t		 n_nonces;
	double		 tokens;
	uint64_t	 tokens_us;

	struct mk_path	 best;
	int		 best_family;
	bool		 relay_up, relay_ever;
	bool		 peer_seen;	/* any authenticated disco from it */
	bool		 got_ping;	/* the peer reached us directly */
	bool		 got_cmm;	/* a call-me-maybe from the peer */
	uint64_t	 cmm_sent_us;
	size_t		 cmm_sent_count;
	struct mk_timer	 cmm_timer, ping_timer, deadline, linger;
	int		 rc;
	bool		 done;
};

static void
usage(FILE *f)
{
	fprintf(f,
"usage: punch -k keyfile (--relay url | -c mesh.conf) [-46jqv]\n"
"             [--cafile file] [--pin sha256-raw:hex] [--insecure]\n"
"             [--stun host:port] [-p port] [-w seconds]\n"
"             [--fd n [--endpoint ip:port]] peerkey | nodename\n"
"             [-- command [arg ...]]\n");
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

/* A new candidate of ours; true when it was not known. */
static bool
own_add(struct punch *p, const struct mk_addr *a, const char *what)
{
	char s[MK_ADDRSTRLEN];
	size_t i;

	for (i = 0; i < p->n_own; i++)
		if (mk_addr_equal(&p->own[i], a))
			return false;
	if (p->n_own == MAX_OWN)
		return false;
	p->own[p->n_own++] = *a;
	mk_info("candidate %s (%s)", mk_addr_fmt(a, s, sizeof(s)), what);
	return true;
}

static void
own_local(struct punch *p)
{
	struct mk_addr a[MAX_OWN];
	size_t i;
	int n, k;

	for (i = 0; i < p->n_socks; i++) {
		n = mk_path_local(p->socks[i].family, p->port, a, MAX_OWN);
		for (k = 0; k < n; k++)
			own_add(p, &a[k], "local");
	}
}

/* ---- sending disco ---- */

static bool
nonce_seen(struct punch *p, const uint8_t *pkt)
{
	const uint8_t *nonce = pkt + MK_DISCO_MAGIC_LEN + MK_KEY_LEN;
	size_t i, n = p->n_nonces < NONCE_CACHE ? p->n_nonces : NONCE_CACHE;

	for (i = 0; i < n; i++)
		if (memcmp(p->nonces[i], nonce, MK_DISCO_NONCE_LEN) == 0)
			return true;
	memcpy(p->nonces[p->n_nonces++ % NONCE_CACHE], nonce,
	    MK_DISCO_NONCE_LEN);
	return false;
}

/* A token bucket, so a flood of (even authentic) disco costs little. */
static bool
disco_allowed(struct punch *p)
{
	uint64_t now = mk_now_us();

	p->tokens += (double)(now - p->tokens_us) * DISCO_RATE / 1e6;
	if (p->tokens > DISCO_BURST)
		p->tokens = DISCO_BURST;
	p->tokens_us = now;
	if (p->tokens < 1)
		return false;
	p->tokens -= 1;
	return true;
}

static ssize_t
seal(struct punch *p, uint8_t *out, size_t cap, const uint8_t *pt,
    size_t len)
{
	const char *why;
	ssize_t n;

	n = mk_disco_seal(out, cap, &p->pub, &p->shared, pt, len, &why);
	if (n < 0)
		mk_warn("cannot seal a disco message: %s", why);
	return n;
}

static void
udp_send(struct punch *p, const struct mk_addr *to, const void *buf,
    size_t len)
{
	struct mk_addr dst;
	char s[MK_ADDRSTRLEN];
	int i = sock_index(p, mk_addr_family(to));

	if (i < 0)
		return;
	mk_addr_for_socket(&dst, to, p->socks[i].family);
	if (sendto(p->socks[i].io.fd, buf, len, 0, &dst.sa, dst.len) < 0)
		mk_debug("send to %s: %s", mk_addr_fmt(to, s, sizeof(s)),
		    strerror(errno));
}

static void
send_ping(struct punch *p, const struct mk_addr *to)
{
	struct mk_disco_ping ping;
	struct ping *pg = &p->pings[p->next_ping++ % MAX_PINGS];
	uint8_t pt[MK_DISCO_PING_LEN], pkt[MK_DISCO_PING_SIZE];
	char s[MK_ADDRSTRLEN];
	const char *why;
	ssize_t n;

	memset(&ping, 0, sizeof(ping));
	randombytes_buf(ping.txid, sizeof(ping.txid));
	ping.has_nodekey = true;
	ping.nodekey = p->pub;
	if ((n = mk_disco_put_ping(pt, sizeof(pt), &ping, &why)) < 0 ||
	    (n = seal(p, pkt, sizeof(pkt), pt, (size_t)n)) < 0)
		return;
	memcpy(pg->txid, ping.txid, sizeof(pg->txid));
	pg->to = *to;
	pg->sent_us = mk_now_us();
	pg->live = true;
	mk_debug("ping %s", mk_addr_fmt(to, s, sizeof(s)));
	udp_send(p, to, pkt, (size_t)n);
}

static void
ping_all(struct punch *p)
{
	size_t i;

	for (i = 0; i < p->n_cands; i++)
		if (!p->cands[i].ponged)
			send_ping(p, &p->cands[i].addr);
}

/* Our candidates to the peer, through the relay. */
static void
send_cmm(struct punch *p)
{
	uint8_t pt[2 + MAX_OWN * MK_DISCO_EP_LEN];
	uint8_t pkt[sizeof(pt) + MK_DISCO_OVERHEAD];
	const char *why;
	ssize_t n;

	if (!p->relay_up)
		return;
	if ((n = mk_disco_put_call_me_maybe(pt, sizeof(pt), p->own, p->n_own,
	    &why)) < 0 || (n = seal(p, pkt, sizeof(pkt), pt, (size_t)n)) < 0)
		return;
	if (mk_derpc_send(p->dc, &p->peer, pkt, (size_t)n) != 0) {
		mk_debug("call-me-maybe not sent: %s", strerror(errno));
		return;
	}
	p->cmm_sent_us = mk_now_us();
	p->cmm_sent_count = p->n_own;
	mk_info("call-me-maybe sent (%zu candidates)", p->n_own);
}

static void
on_cmm_timer(struct mk_loop *l, struct mk_timer *t)
{
	struct punch *p = t->arg;

	if (p->best.addr.len == 0 || !p->got_ping)
		send_cmm(p);
	mk_timer_in(l, t, CMM_EVERY_US);
}

static void
on_ping_timer(struct mk_loop *l, struct mk_timer *t)
{
	struct punch *p = t->arg;

	ping_all(p);
	mk_timer_in(l, t, PING_EVERY_US);
}

/* ---- the result ---- */

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
maybe_done(struct punch *p)
{
	/* Our pong proves both directions for us; the peer's ping to us
	 * says it is punching too. Linger, answering, so it finishes. */
	if (p->best.addr.len != 0 && p->got_ping &&
	    !mk_timer_armed(&p->linger))
		mk_timer_in(&p->loop, &p->linger, LINGER_US);
}

static void
on_deadline(struct mk_loop *l, struct mk_timer *t)
{
	struct punch *p = t->arg;

	(void)l;
	if (p->best.addr.len != 0) {
		finish(p, MK_EXIT_OK);
		return;
	}
	if (!p->relay_ever && p->o->endpoint == NULL) {
		mk_err("relay never answered");
		finish(p, MK_EXIT_FAIL);
	} else if (!p->peer_seen && p->o->endpoint == NULL) {
		mk_err("peer never appeared on the relay");
		finish(p, MK_EXIT_FAIL);
	} else if (p->n_cands == 0) {
		mk_err("no direct path: the peer offered no candidate");
		finish(p, MK_EXIT_NO);
	} else {
		mk_err("no direct path opened: %zu candidate%s of the peer "
		    "never answered%s", p->n_cands, p->n_cands == 1 ? "" : "s",
		    p->own_edm ? "; our NAT maps endpoint-dependently, so the "
		    "peer's replies find no mapping unless its NAT admits any "
		    "source" : "");
		finish(p, MK_EXIT_NO);
	}
}

/* ---- receiving disco ---- */

static void
cand_add(struct punch *p, const struct mk_addr *a, bool ping_now)
{
	char s[MK_ADDRSTRLEN];
	size_t i;

	if (sock_index(p, mk_addr_family(a)) < 0)
		return;
	for (i = 0; i < p->n_cands; i++)
		if (mk_addr_equal(&p->cands[i].addr, a))
			return;
	if (p->n_cands == MAX_CANDS)
		return;
	p->cands[p->n_cands].addr = *a;
	p->cands[p->n_cands++].ponged = false;
	mk_info("peer candidate %s", mk_addr_fmt(a, s, sizeof(s)));
	if (ping_now)
		send_ping(p, a);
}

static void
got_cmm(struct punch *p, const struct mk_disco_cmm *cmm)
{
	size_t i;

	mk_info("call-me-maybe from the peer (%zu candidates)", cmm->n);
	for (i = 0; i < cmm->n; i++) {
		/* as magicsock: a link-local address is no use across hosts
		 * without a scope, and a mesh address is inside the tunnel */
		if (!mk_path_usable(&cmm->eps[i]))
			continue;
		cand_add(p, &cmm->eps[i], false);
	}
	/* Both sides must send at once: ping every candidate now. */
	ping_all(p);
	/* Answer with ours: always the first time (ours may have gone out
	 * before the peer was on the relay), else unless ours is recent,
	 * so two nodes never answer each other forever. */
	if (!p->got_cmm || mk_now_us() - p->cmm_sent_us > CMM_ANSWER_US ||
	    p->cmm_sent_count != p->n_own)
		send_cmm(p);
	p->got_cmm = true;
}

static void
got_ping(struct punch *p, const struct mk_disco_ping *ping,
    const struct mk_addr *from)
{
	struct mk_disco_pong pong;
	uint8_t pt[MK_DISCO_PONG_LEN], pkt[MK_DISCO_PONG_LEN +
	    MK_DISCO_OVERHEAD];
	char s[MK_ADDRSTRLEN];
	const char *why;
	ssize_t n;

	if (ping->has_nodekey && !mk_key_equal(&ping->nodekey, &p->peer)) {
		mk_info("ping naming another node key from %s: dropped",
		    mk_addr_fmt(from, s, sizeof(s)));
		return;
	}
	memcpy(pong.txid, ping->txid, sizeof(pong.txid));
	pong.src = *from;
	if ((n = mk_disco_put_pong(pt, sizeof(pt), &pong, &why)) < 0 ||
	    (n = seal(p, pkt, sizeof(pkt), pt, (size_t)n)) < 0)
		return;
	udp_send(p, from, pkt, (size_t)n);
	mk_debug("pong to %s", mk_addr_fmt(from, s, sizeof(s)));
	if (!p->got_ping)
		mk_info("the peer reached us from %s", s);
	p->got_ping = true;
	/* where the peer's packets come from is a candidate too */
	cand_add(p, from, true);
	maybe_done(p);
}

static void
got_pong(struct punch *p, const struct mk_disco_pong *pong,
    const struct mk_addr *from)
{
	struct mk_path path;
	char s[MK_ADDRSTRLEN];
	size_t i;

	for (i = 0; i < MAX_PINGS; i++) {
		struct ping *pg = &p->pings[i];

		if (!pg->live || memcmp(pg->txid, pong->txid,
		    MK_DISCO_TXID_LEN) != 0)
			continue;
		pg->live = false;	/* one pong per ping */
		if (!mk_addr_equal(&pg->to, from) ||
		    mk_now_us() - pg->sent_us > PING_TIMEOUT_US) {
			mk_info("pong from %s for a ping to elsewhere or "
			    "expired: dropped", mk_addr_fmt(from, s,
			    sizeof(s)));
			return;
		}
		path.addr = *from;
		path.latency_us = mk_now_us() - pg->sent_us;
		path.mtu = 0;
		for (i = 0; i < p->n_cands; i++)
			if (mk_addr_equal(&p->cands[i].addr, from))
				p->cands[i].ponged = true;
		mk_info("pong from %s in %.3f ms", mk_addr_fmt(from, s,
		    sizeof(s)), (double)path.latency_us / 1000);
		if (p->best.addr.len == 0 || mk_path_better(&path, &p->best) ||
		    mk_addr_equal(&path.addr, &p->best.addr)) {
			p->best = path;
			p->best_family = mk_addr_family(from);
		}
		maybe_done(p);
		return;
	}
	mk_info("pong with a TxID we never sent from %s: dropped",
	    mk_addr_fmt(from, s, sizeof(s)));
}

/*
 * Open a disco packet from the peer; via_relay tells where it came from,
 * since CallMeMaybe is believed only from the relay, where the sender is
 * authenticated by its DERP connection as well as by the box.
 */
static void
handle_disco(struct punch *p, const uint8_t *pkt, size_t len,
    const struct mk_addr *from, bool via_relay)
{
	struct mk_addr eps[MAX_CANDS];
	struct mk_disco_msg m;
	struct mk_key sender;
	uint8_t pt[1500];
	char s[MK_ADDRSTRLEN];
	const char *why;
	ssize_t n;

	if (mk_disco_sender(&sender, pkt, len) != 0 ||
	    !mk_key_equal(&sender, &p->peer)) {
		mk_debug("disco from a key that is not the peer: dropped");
		return;
	}
	if (!disco_allowed(p)) {
		mk_debug("disco over the rate limit: dropped");
		return;
	}
	if ((n = mk_disco_open(pt, sizeof(pt), &p->shared, pkt, len,
	    &why)) < 0) {
		mk_debug("disco: %s: dropped", why);
		return;
	}
	if (nonce_seen(p, pkt)) {
		mk_info("replayed disco message: dropped");
		return;
	}
	if (mk_disco_parse(&m, pt, (size_t)n, eps, MAX_CANDS, &why) != 0) {
		mk_debug("disco: %s: dropped", why);
		return;
	}
	p->peer_seen = true;
	switch (m.type) {
	case MK_DISCO_CALL_ME_MAYBE:
		if (!via_relay) {
			mk_info("call-me-maybe over UDP from %s: dropped",
			    mk_addr_fmt(from, s, sizeof(s)));
			return;
		}
		got_cmm(p, &m.cmm);
		break;
	case MK_DISCO_PING:
		if (via_relay)	/* we punch; a relayed ping proves nothing */
			return;
		got_ping(p, &m.ping, from);
		break;
	case MK_DISCO_PONG:
		if (!via_relay)
			got_pong(p, &m.pong, from);
		break;
	}
}

/* ---- STUN on our own sockets ---- */

static void
stun_send(struct punch *p, struct stun_server *sv)
{
	uint8_t req[64];
	size_t i, len;

	for (i = 0; i < p->n_socks; i++) {
		if (sv->answered[i] ||
		    p->socks[i].family != mk_addr_family(&sv->addr))
			continue;
		randombytes_buf(sv->txid[i], MK_STUN_TXID_LEN);
		len = mk_stun_request(req, sizeof(req), sv->txid[i], 0);
		udp_send(p, &sv->addr, req, len);
	}
}

static void
on_stun_timer(struct mk_loop *l, struct mk_timer *t)
{
	struct punch *p = t->arg;
	bool again = false;
	size_t i;

	for (i = 0; i < p->n_stun; i++) {
		struct stun_server *sv = &p->stun[i];

		if (sv->addr.len == 0 || sv->tries >= STUN_TRIES)
			continue;
		sv->tries++;
		stun_send(p, sv);
		again = true;
	}
	if (again)
		mk_timer_in(l, t, 500000);
}

static void
note_edm(struct punch *p, int si, const struct mk_addr *mapped)
{
	struct mk_addr guess;
	size_t i;

	for (i = 0; i < p->n_stun; i++) {
		const struct mk_addr *m = &p->stun[i].mapped[si];

		if (m->len == 0 || mk_addr_equal(m, mapped) ||
		    !mk_addr_same_ip(m, mapped))
			continue;
		if (!p->own_edm)
			mk_info("our NAT maps endpoint-dependently");
		p->own_edm = true;
		/* Tailscale's stun4localport guess: the public address
		 * with our local port (right for a static port forward) */
		guess = *mapped;
		mk_addr_set_port(&guess, p->port);
		own_add(p, &guess, "public address, local port");
	}
}

static void
handle_stun(struct punch *p, int si, const uint8_t *buf, size_t len)
{
	struct mk_stun_msg m;
	const char *why;
	size_t i;

	if (mk_stun_parse(&m, buf, len, false, &why) != 0 ||
	    m.type != MK_STUN_BINDING_SUCCESS ||
	    !(m.has & (MK_STUN_HAS_XOR_MAPPED | MK_STUN_HAS_MAPPED)))
		return;
	for (i = 0; i < p->n_stun; i++) {
		struct stun_server *sv = &p->stun[i];
		bool added;

		if (sv->answered[si] || memcmp(sv->txid[si], m.txid,
		    MK_STUN_TXID_LEN) != 0)
			continue;
		sv->answered[si] = true;
		sv->mapped[si] = (m.has & MK_STUN_HAS_XOR_MAPPED) ?
		    m.xor_mapped : m.mapped;
		added = own_add(p, &sv->mapped[si], "STUN");
		note_edm(p, si, &sv->mapped[si]);
		if (added)
			send_cmm(p);	/* tell the peer at once */
		return;
	}
}

static void
on_udp(struct mk_loop *l, struct mk_io *io, uint32_t events)
{
	struct usock *u = io->arg;
	struct punch *p = u->p;
	struct mk_addr from;
	bool trunc;
	size_t len;
	uint8_t *buf;
	int n, i, si = (int)(u - p->socks);

	(void)l;
	(void)events;
	/* bounded: a flood cannot keep the loop from its timers */
	for (int round = 0; round < 8 && !p->done; round++) {
		if ((n = mk_udpbatch_recv(&p->rx, io->fd)) <= 0)
			break;
		for (i = 0; i < n && !p->done; i++) {
			buf = mk_udpbatch_get(&p->rx, (unsigned)i, &len, &from,
			    &trunc);
			if (trunc)
				continue;
			switch (mk_disco_classify(buf, len)) {
			case MK_DISCO_CLASS_STUN:
				handle_stun(p, si, buf, len);
				break;
			case MK_DISCO_CLASS_DISCO:
				handle_disco(p, buf, len, &from, false);
				break;
			default:
				break;
			}
		}
	}
}

/* ---- the relay ---- */

static void
dc_connected(struct mk_derpc *c, void *arg)
{
	struct punch *p = arg;

	(void)c;
	if (!p->relay_ever)
		mk_info("on the relay %s", mk_derpc_target(c)->url.url);
	p->relay_up = p->relay_ever = true;
	send_cmm(p);
}

static void
dc_disconnected(struct mk_derpc *c, void *arg, int kind, const char *why)
{
	struct punch *p = arg;

	(void)kind;
	p->relay_up = false;
	/* As nc: a relay never reached is a failure, at once; one lost
	 * later is retried by the client. */
	if (!p->relay_ever) {
		mk_err("relay %s: %s", mk_derpc_target(c)->url.url, why);
		finish(p, MK_EXIT_FAIL);
		return;
	}
	mk_warn("relay lost: %s; reconnecting", why);
}

static void
dc_recv(struct mk_derpc *c, void *arg, const struct mk_key *src,
    const uint8_t *pkt, size_t len)
{
	struct punch *p = arg;
	struct mk_addr none;

	(void)c;
	if (!mk_key_equal(src, &p->peer) || !mk_disco_looks_like(pkt, len))
		return;
	memset(&none, 0, sizeof(none));
	handle_disco(p, pkt, len, &none, true);
}

static void
dc_peer_gone(struct mk_derpc *c, void *arg, const struct mk_key *peer,
    uint8_t reason)
{
	(void)c;
	(void)arg;
	(void)peer;
	mk_debug("relay: peer not there (reason %u)", reason);
}

/* ---- setting up ---- */

static int
load_targets(const struct opts *o, const struct mk_mesh *mesh,
    struct mk_derpc_target *t, size_t *n)
{
	const char *why;
	size_t i;

	*n = 0;
	for (i = 0; i < o->n_relays; i++, (*n)++) {
		memset(&t[*n], 0, sizeof(t[*n]));
		if (mk_url_parse(&t[*n].url, o->relays[i], MK_URL_RELAY,
		    &why) != 0) {
			mk_err("bad relay URL %s: %s", o->relays[i], why);
			return -1;
		}
		if (o->pin != NULL) {
			if (mk_tls_pin_parse(t[*n].pin, o->pin) != 0)
				mk_usage_error("bad pin: %s", o->pin);
			t[*n].has_pin = true;
		}
	}
	for (i = 0; mesh != NULL && i < mesh->n_relays && *n < MAX_RELAYS;
	    i++, (*n)++) {
		memset(&t[*n], 0, sizeof(t[*n]));
		if (mk_url_parse(&t[*n].url, mesh->relays[i].url, MK_URL_RELAY,
		    &why) != 0) {
			mk_err("%s:%u: bad relay URL: %s", o->mesh,
			    mesh->relays[i].line, why);
			return -1;
		}
		t[*n].has_pin = mesh->relays[i].has_pin;
		memcpy(t[*n].pin, mesh->relays[i].pin, sizeof(t[*n].pin));
	}
	return 0;
}

static void
on_lookup(struct mk_loop *l, struct mk_io *io, uint32_t events)
{
	struct punch *p = io->arg;
	struct stun_server *sv = &p->stun[io - p->lookup_io];
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
		sv->tries = 1;
		stun_send(p, sv);
		if (!mk_timer_armed(&p->stun_timer))
			mk_timer_in(l, &p->stun_timer, 500000);
	}
}

/* "host:port", bracketing an IPv6 literal. */
static void
hostport(char *out, size_t cap, const char *host, uint16_t port)
{
	bool v6 = strchr(host, ':') != NULL;

	snprintf(out, cap, "%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "",
	    port);
}

static void
stun_add(struct punch *p, const char *name)
{
	struct stun_server *sv = &p->stun[p->n_stun];
	struct mk_io *io = &p->lookup_io[p->n_stun];
	char host[300], port[16];
	long long portnum = 3478;
	const char *why;

	snprintf(sv->name, sizeof(sv->name), "%s", name);
	if (mk_addr_split(name, host, sizeof(host), port, sizeof(port)) != 0 ||
	    (port[0] != '\0' && mk_strtonum(port, 1, 65535, &portnum) != 0))
		mk_usage_error("bad STUN server: %s", name);
	if ((sv->lookup = mk_lookup_start(host, (uint16_t)portnum,
	    p->o->family, SOCK_DGRAM, &why)) == NULL) {
		mk_warn("STUN server %s: %s", name, why);
		return;
	}
	io->fd = mk_lookup_fd(sv->lookup);
	io->fn = on_lookup;
	io->arg = p;
	if (mk_loop_add(&p->loop, io, EPOLLIN) != 0) {
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
	for (i = 0; p->o->n_stun == 0 && mesh != NULL && i < mesh->n_stun &&
	    i < MAX_STUN; i++) {
		hostport(name, sizeof(name), mesh->stun[i].host,
		    mesh->stun[i].port);
		stun_add(p, name);
	}
	for (i = 0; p->o->n_stun == 0 && (mesh == NULL || mesh->n_stun == 0)
	    && i < n_targets && i < MAX_STUN; i++) {
		hostport(name, sizeof(name), t[i].url.host, 3478);
		stun_add(p, name);
	}
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
		for (i = 0; i < 2; i++) {
			if (p->o->family != AF_UNSPEC &&
			    p->o->family != fams[i])
				continue;
			mk_addr_any(&a, fams[i], p->port);
			if ((fd = mk_udp_bind(&a, 0, &why)) < 0) {
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
	mk_info("UDP port %u (%s)", p->port, p->n_socks == 2 ? "IPv4 and IPv6" :
	    p->socks[0].family == AF_INET ? "IPv4" : "IPv6");
	return 0;
}

static int
load_keys(struct punch *p, const struct mk_mesh *mesh)
{
	const struct mk_mesh_node *node;
	const char *why;

	if (mk_key_read_file(&p->priv, p->o->keyfile, &why) != 0) {
		mk_err("%s: %s", p->o->keyfile, why);
		return MK_EXIT_USAGE;
	}
	if (mk_key_public(&p->pub, &p->priv) != 0) {
		mk_err("%s: not a usable private key", p->o->keyfile);
		return MK_EXIT_USAGE;
	}
	if (mk_key_parse(&p->peer, p->o->peer, &why) != 0) {
		node = mesh != NULL ? mk_mesh_find_name(mesh, p->o->peer) :
		    NULL;
		if (node == NULL)
			mk_usage_error("%s: not a key%s", p->o->peer,
			    mesh != NULL ? " nor a node of the mesh" : "");
		p->peer = node->pubkey;
	}
	if (mk_key_equal(&p->peer, &p->pub))
		mk_usage_error("%s", "the peer is this node's own key");
	if (mk_disco_shared_init(&p->shared, &p->peer, &p->priv, &why) != 0) {
		mk_err("peer key: %s", why);
		return MK_EXIT_USAGE;
	}
	return 0;
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
	struct mk_addr dst;
	char s[MK_ADDRSTRLEN];
	int i = sock_index(p, p->best_family), fd;

	fd = p->socks[i].io.fd;
	mk_addr_for_socket(&dst, &p->best.addr, p->socks[i].family);
	if (connect(fd, &dst.sa, dst.len) != 0) {
		mk_err("connect: %s", strerror(errno));
		return MK_EXIT_FAIL;
	}
	if (fd != 3 && dup2(fd, 3) != 3) {
		mk_err("dup2: %s", strerror(errno));
		return MK_EXIT_FAIL;
	}
	if (fcntl(3, F_SETFD, 0) != 0 || fcntl(3, F_SETFL,
	    fcntl(3, F_GETFL) & ~O_NONBLOCK) != 0) {
		mk_err("fcntl: %s", strerror(errno));
		return MK_EXIT_FAIL;
	}
	if (setenv("MESHKIT_FD", "3", 1) != 0 || setenv("MESHKIT_REMOTE",
	    mk_addr_fmt(&p->best.addr, s, sizeof(s)), 1) != 0) {
		mk_err("setenv: %s", strerror(errno));
		return MK_EXIT_FAIL;
	}
	fflush(stdout);
	execvp(p->o->cmd[0], p->o->cmd);
	mk_err("%s: %s", p->o->cmd[0], strerror(errno));
	return errno == ENOENT ? 127 : 126;
}

static int
report(struct punch *p)
{
	char s[MK_ADDRSTRLEN];
	double rtt = (double)p->best.latency_us / 1000;

	mk_addr_fmt(&p->best.addr, s, sizeof(s));
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

static int
run(const struct opts *o)
{
	static const struct mk_derpc_cb cb = {
		.connected = dc_connected,
		.disconnected = dc_disconnected,
		.recv = dc_recv,
		.peer_gone = dc_peer_gone,
	};
	static struct punch pp;
	struct punch *p = &pp;
	struct mk_derpc_target targets[MAX_RELAYS];
	struct mk_derpc_config cfg;
	struct mk_mesh mesh, *m = NULL;
	char err[600];
	const char *why;
	size_t n_targets = 0, i;
	int rc;

	p->o = o;
	p->tokens = DISCO_BURST;
	p->tokens_us = mk_now_us();
	memset(&mesh, 0, sizeof(mesh));
	if (o->mesh != NULL) {
		if (mk_mesh_load(&mesh, o->mesh, err, sizeof(err)) != 0) {
			mk_err("%s", err);
			return MK_EXIT_USAGE;
		}
		m = &mesh;
	}
	if ((rc = load_keys(p, m)) != 0)
		goto out_mesh;
	if (load_targets(o, m, targets, &n_targets) != 0) {
		rc = MK_EXIT_USAGE;
		goto out_mesh;
	}
	if (n_targets == 0 && o->endpoint == NULL)
		mk_usage_error("%s", "no relay: give --relay or a mesh.conf "
		    "with relay lines");
	if (mk_loop_init(&p->loop) != 0 ||
	    mk_udpbatch_init(&p->rx, 32, 2048) != 0) {
		mk_err("setup: %s", strerror(errno));
		rc = MK_EXIT_FAIL;
		goto out_mesh;
	}
	rc = MK_EXIT_FAIL;
	if (open_sockets(p) != 0)
		goto out;
	mk_timer_init(&p->stun_timer, on_stun_timer, p);
	mk_timer_init(&p->cmm_timer, on_cmm_timer, p);
	mk_timer_init(&p->ping_timer, on_ping_timer, p);
	mk_timer_init(&p->deadline, on_deadline, p);
	mk_timer_init(&p->linger, on_linger, p);
	if (o->endpoint != NULL) {
		struct mk_addr ep;

		if (mk_addr_parse(&ep, o->endpoint, 0, MK_ADDR_NEED_PORT,
		    &why) != 0)
			mk_usage_error("bad --endpoint %s: %s", o->endpoint,
			    why);
		cand_add(p, &ep, true);
	}
	if (o->fd < 0)
		own_local(p);
	stun_setup(p, m, targets, n_targets);
	if (n_targets > 0) {
		mk_derpc_config_init(&cfg);
		cfg.priv = p->priv;
		cfg.targets = targets;
		cfg.n_targets = n_targets;
		cfg.cafile = o->cafile;
		cfg.insecure = o->insecure;
		cfg.proxy = mk_derpc_proxy_from_env(&targets[0].url);
		if (mk_derpc_new(&p->dc, &p->loop, &cfg, &cb, p, &why) != 0) {
			mk_err("%s", why);
			sodium_memzero(&cfg, sizeof(cfg));
			goto out;
		}
		sodium_memzero(&cfg, sizeof(cfg));
		mk_derpc_start(p->dc);
	}
	mk_timer_in(&p->loop, &p->cmm_timer, CMM_EVERY_US);
	mk_timer_in(&p->loop, &p->ping_timer, PING_EVERY_US);
	mk_timer_in(&p->loop, &p->deadline, o->wait_ms * 1000);
	if (mk_loop_run(&p->loop) != 0) {
		mk_err("event loop: %s", strerror(errno));
		goto out;
	}
	rc = p->rc;
	if (rc == MK_EXIT_OK)
		rc = o->cmd != NULL ? exec_cmd(p) : report(p);
out:
	if (p->dc != NULL)
		mk_derpc_free(p->dc);
	for (i = 0; i < p->n_stun; i++)
		mk_lookup_free(p->stun[i].lookup);
	for (i = 0; i < p->n_socks; i++)
		close(p->socks[i].io.fd);
	mk_udpbatch_free(&p->rx);
	mk_loop_free(&p->loop);
	mk_disco_shared_wipe(&p->shared);
	mk_key_wipe(&p->priv);
out_mesh:
	mk_mesh_free(&mesh);
	return rc;
}

enum {
	OPT_RELAY = 256, OPT_PIN, OPT_CAFILE, OPT_INSECURE, OPT_STUN, OPT_FD,
	OPT_ENDPOINT,
};

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "cafile", required_argument, NULL, OPT_CAFILE },
		{ "mesh", required_argument, NULL, 'c' },
		{ "endpoint", required_argument, NULL, OPT_ENDPOINT },
		{ "fd", required_argument, NULL, OPT_FD },
		{ "help", no_argument, NULL, 'h' },
		{ "insecure", no_argument, NULL, OPT_INSECURE },
		{ "json", no_argument, NULL, 'j' },
		{ "key", required_argument, NULL, 'k' },
		{ "pin", required_argument, NULL, OPT_PIN },
		{ "port", required_argument, NULL, 'p' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "relay", required_argument, NULL, OPT_RELAY },
		{ "stun", required_argument, NULL, OPT_STUN },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "wait", required_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o;
	int ch, quiet = 0, verbose = 0;

	memset(&o, 0, sizeof(o));
	o.fd = -1;
	o.wait_ms = 15000;
	o.family = AF_UNSPEC;
	mk_cli_init("punch", usage);
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
		default:
			usage(stderr);
			return MK_EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		mk_usage_error("%s", "no peer given");
	o.peer = argv[0];
	if (argc > 1) {
		if (strcmp(argv[1], "--") != 0 || argc < 3)
			mk_usage_error("unexpected argument: %s", argv[1]);
		o.cmd = &argv[2];
	}
	if (o.keyfile == NULL)
		mk_usage_error("%s", "no key: -k keyfile");
	if (o.endpoint != NULL && o.fd < 0)
		mk_usage_error("%s", "--endpoint needs --fd");
	if (o.fd >= 0 && o.port != 0)
		mk_usage_error("%s", "--fd cannot be combined with -p");
	if (o.insecure && (o.pin != NULL || o.cafile != NULL))
		mk_usage_error("%s", "--insecure checks nothing: no --pin or "
		    "--cafile with it");
	if (o.mesh == NULL && o.n_relays == 0 && o.endpoint == NULL) {
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
