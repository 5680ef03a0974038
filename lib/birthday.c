/* SPDX-License-Identifier: MIT */
/* Birthday-paradox probing of an endpoint-dependent NAT: see birthday.h. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "birthday.h"
#include "log.h"
#include "sock.h"
#include "udpbatch.h"
#include "util.h"

#define NONCE_CACHE	4096	/* disco nonces seen: a replay repeats one */
#define SENT_RING	8192	/* send times of the latest pings, for RTT */
#define PING_TIMEOUT_US	5000000	/* a pong later than this does not count */
#define CONFIRM_US	200000	/* ping a path the peer reached us on */
#define LINGER_US	1000000	/* after winning, keep answering the peer */
#define PACE_BURST	64	/* probes per timer run at most */
#define BATCH		32
#define PKT_MAX		1500

/* ---- the odds ---- */

double
mk_bday_chance(double ports, double space, double probes)
{
	if (ports >= space)
		return probes > 0 ? 1 : 0;
	return -expm1(probes * log1p(-ports / space));
}

double
mk_bday_probes_for(double p, double ports, double space)
{
	if (ports >= space)
		return 1;
	return round(log1p(-p) / log1p(-ports / space));
}

double
mk_bday_both_chance(double space, double probes_per_side)
{
	return -expm1(probes_per_side * probes_per_side *
	    log1p(-1 / (space * space)));
}

double
mk_bday_both_probes_for(double p, double space)
{
	return round(sqrt(log1p(-p) / log1p(-1 / (space * space))));
}

/* ---- pacing and port choice ---- */

uint64_t
mk_bday_due(uint64_t elapsed_us, unsigned rate, uint64_t count)
{
	uint64_t due;

	if (count == 0)
		return 0;
	/* 128-bit free: elapsed below 2^64/rate us is centuries at any
	 * rate the engine accepts */
	due = elapsed_us / 1000000 * rate +
	    elapsed_us % 1000000 * rate / 1000000 + 1;
	return due < count ? due : count;
}

void
mk_bday_ports_init(struct mk_bday_ports *p)
{
	memset(p, 0, sizeof(*p));
}

uint16_t
mk_bday_ports_pick(struct mk_bday_ports *p)
{
	uint32_t port;

	if (p->n_used == MK_BDAY_SPACE)
		mk_bday_ports_init(p);	/* every port tried: round two */
	do
		port = MK_BDAY_PORT_MIN + randombytes_uniform(MK_BDAY_SPACE);
	while (p->used[port / 8] & (1U << (port % 8)));
	p->used[port / 8] |= (uint8_t)(1U << (port % 8));
	p->n_used++;
	return (uint16_t)port;
}

/* ---- the rendezvous message ---- */

ssize_t
mk_bday_put_hello(uint8_t *out, size_t cap, const struct mk_bday_hello *h,
    const char **why)
{
	uint8_t *p = out;

	if (cap < MK_BDAY_HELLO_LEN) {
		*why = "buffer too small";
		return -1;
	}
	memset(out, 0, MK_BDAY_HELLO_LEN);
	p[0] = MK_BDAY_DISCO_HELLO;
	p[1] = MK_DISCO_VERSION;
	p[2] = h->role;
	p[3] = h->flags;
	mk_put16(p + 4, h->ports);
	mk_put32(p + 6, h->count);
	mk_put32(p + 10, h->rate);
	mk_put32(p + 14, h->start_ms);
	p += 18;
	if (mk_addr_family(&h->addr) == AF_INET) {
		p[10] = p[11] = 0xff;
		memcpy(p + 12, &h->addr.sin.sin_addr, 4);
		mk_put16(p + 16, ntohs(h->addr.sin.sin_port));
	} else if (mk_addr_family(&h->addr) == AF_INET6) {
		memcpy(p, &h->addr.sin6.sin6_addr, 16);
		mk_put16(p + 16, ntohs(h->addr.sin6.sin6_port));
	} else {
		*why = "address is not IPv4 or IPv6";
		return -1;
	}
	return MK_BDAY_HELLO_LEN;
}

int
mk_bday_parse_hello(struct mk_bday_hello *h, const uint8_t *pt, size_t len,
    const char **why)
{
	if (len < 2 || pt[0] != MK_BDAY_DISCO_HELLO) {
		*why = "not a birthday hello";
		return -1;
	}
	if (len < MK_BDAY_HELLO_LEN) {
		*why = "short hello";
		return -1;
	}
	memset(h, 0, sizeof(*h));
	h->role = pt[2];
	if (h->role < MK_BDAY_ROLE_WIRE_HARD ||
	    h->role > MK_BDAY_ROLE_WIRE_BOTH) {
		*why = "unknown role";
		return -1;
	}
	h->flags = pt[3];
	h->ports = mk_get16(pt + 4);
	h->count = mk_get32(pt + 6);
	h->rate = mk_get32(pt + 10);
	h->start_ms = mk_get32(pt + 14);
	mk_addr_from_v6(&h->addr, pt + 18, mk_get16(pt + 34));
	mk_addr_unmap(&h->addr);
	if (mk_addr_is_any(&h->addr)) {
		*why = "bad address";
		return -1;
	}
	return 0;
}

/* ---- the engine ---- */

struct bsock {
	struct mk_io	 io;
	struct mk_bday	*b;
	uint16_t	 local_port;
	bool		 heard;		/* an authenticated ping came here */
	struct mk_addr	 heard_from;
	bool		 ponged;	/* a pong to our ping came here */
	struct mk_addr	 pong_from;
	uint64_t	 rtt_us;
};

struct sent {
	uint64_t	 seq;
	uint64_t	 at_us;
};

struct mk_bday {
	struct mk_bday_config c;
	struct mk_loop	*l;
	struct mk_disco_shared shared;
	struct bsock	*socks;
	size_t		 n_socks;
	uint8_t		 secret[crypto_generichash_KEYBYTES];
	uint64_t	 seq;		/* pings sent, all kinds */
	uint64_t	 probes;	/* EASY, BOTH: random probes sent */
	struct mk_bday_ports ports;
	struct sent	*sent;		/* SENT_RING */
	struct mk_disco_replay replay;	/* NONCE_CACHE nonces seen */
	struct mk_udpbatch rx;
	uint64_t	 start_us;
	struct mk_timer	 pace, confirm, linger, giveup;
	size_t		 next_resend;
	int		 cand;		/* socket of a path under test, or -1 */
	struct mk_addr	 cand_remote;
	int		 win;		/* the winning socket, or -1 */
	uint64_t	 win_probes, win_us;
	uint64_t	 heard, dropped;
	uint64_t	 end_us;
	bool		 running, finished;
};

static void on_udp(struct mk_loop *l, struct mk_io *io, uint32_t events);

static void
finish(struct mk_bday *b)
{
	if (b->finished)
		return;
	b->finished = true;
	b->running = false;
	b->end_us = mk_now_us();
	mk_timer_cancel(b->l, &b->pace);
	mk_timer_cancel(b->l, &b->confirm);
	mk_timer_cancel(b->l, &b->linger);
	mk_timer_cancel(b->l, &b->giveup);
	if (b->c.done != NULL)
		b->c.done(b, b->c.arg);
}

/* TxID = seq (4, big-endian) | 8 bytes of BLAKE2b keyed with this run's
 * secret over seq, socket and destination port. */
static void
txid_make(const struct mk_bday *b, uint8_t txid[MK_DISCO_TXID_LEN],
    uint32_t seq, uint16_t sock, uint16_t port)
{
	uint8_t in[8];

	mk_put32(in, seq);
	mk_put16(in + 4, sock);
	mk_put16(in + 6, port);
	memcpy(txid, in, 4);
	crypto_generichash(txid + 4, MK_DISCO_TXID_LEN - 4, in, sizeof(in),
	    b->secret, sizeof(b->secret));
}

static bool
txid_ours(const struct mk_bday *b, const uint8_t txid[MK_DISCO_TXID_LEN],
    uint16_t sock, uint16_t port, uint32_t *seq)
{
	uint8_t want[MK_DISCO_TXID_LEN];

	*seq = mk_get32(txid);
	txid_make(b, want, *seq, sock, port);
	return sodium_memcmp(want, txid, sizeof(want)) == 0;
}

static void
send_sealed(struct mk_bday *b, size_t si, const struct mk_addr *to,
    const uint8_t *pt, size_t len)
{
	uint8_t pkt[PKT_MAX];
	char s[MK_ADDRSTRLEN];
	const char *why;
	ssize_t n;

	if ((n = mk_disco_seal(pkt, sizeof(pkt), &b->c.pub, &b->shared, pt,
	    len, &why)) < 0) {
		mk_warn("cannot seal a disco message: %s", why);
		return;
	}
	if (sendto(b->socks[si].io.fd, pkt, (size_t)n, 0, &to->sa,
	    to->len) < 0)
		mk_debug("send to %s: %s", mk_addr_fmt(to, s, sizeof(s)),
		    strerror(errno));
}

static void
send_ping(struct mk_bday *b, size_t si, const struct mk_addr *to)
{
	struct mk_disco_ping ping;
	uint8_t pt[MK_DISCO_PING_LEN];
	const char *why;
	uint32_t seq = (uint32_t)b->seq++;
	ssize_t n;

	memset(&ping, 0, sizeof(ping));
	txid_make(b, ping.txid, seq, (uint16_t)si, mk_addr_port(to));
	ping.has_nodekey = true;
	ping.nodekey = b->c.pub;
	if ((n = mk_disco_put_ping(pt, sizeof(pt), &ping, &why)) < 0)
		return;
	b->sent[seq % SENT_RING].seq = seq;
	b->sent[seq % SENT_RING].at_us = mk_now_us();
	send_sealed(b, si, to, pt, (size_t)n);
}

static void
send_pong(struct mk_bday *b, size_t si, const uint8_t *txid,
    const struct mk_addr *to)
{
	struct mk_disco_pong pong;
	uint8_t pt[MK_DISCO_PONG_LEN];
	const char *why;
	ssize_t n;

	memcpy(pong.txid, txid, sizeof(pong.txid));
	pong.src = *to;
	if ((n = mk_disco_put_pong(pt, sizeof(pt), &pong, &why)) >= 0)
		send_sealed(b, si, to, pt, (size_t)n);
}

/* ---- sending ---- */

static void
on_giveup(struct mk_loop *l, struct mk_timer *t)
{
	(void)l;
	finish(t->arg);
}

static void
hard_resend(struct mk_bday *b)
{
	size_t si = b->next_resend++ % b->n_socks;

	send_ping(b, si, &b->c.dst);
}

/* EASY and BOTH: random ports of the one IP, at the rate, up to the
 * count. HARD: every socket again, one at a time, spread over the
 * resend interval. */
static void
on_pace(struct mk_loop *l, struct mk_timer *t)
{
	struct mk_bday *b = t->arg;
	uint64_t now = mk_now_us(), due, k;
	struct mk_addr to;

	if (b->c.role == MK_BDAY_HARD) {
		hard_resend(b);
		mk_timer_in(l, t, b->c.resend_us / b->n_socks);
		return;
	}
	due = mk_bday_due(now - b->start_us, b->c.rate, b->c.count);
	for (k = 0; b->probes < due && k < PACE_BURST; k++) {
		to = b->c.dst;
		mk_addr_set_port(&to, mk_bday_ports_pick(&b->ports));
		send_ping(b, (size_t)(b->probes % b->n_socks), &to);
		b->probes++;
	}
	if (b->probes >= b->c.count) {
		mk_info("all %llu probes sent", (unsigned long long)b->probes);
		mk_timer_in(l, &b->giveup, b->c.grace_us);
		return;
	}
	mk_timer_at(l, t, b->start_us + b->probes * 1000000 / b->c.rate);
}

/* A path the peer reached us on: ping it until it answers. */
static void
on_confirm(struct mk_loop *l, struct mk_timer *t)
{
	struct mk_bday *b = t->arg;

	send_ping(b, (size_t)b->cand, &b->cand_remote);
	mk_timer_in(l, t, CONFIRM_US);
}

static void
on_linger(struct mk_loop *l, struct mk_timer *t)
{
	(void)l;
	finish(t->arg);
}

/* ---- receiving ---- */

/* Both directions proven on one socket and one remote address: won. */
static void
check_won(struct mk_bday *b, size_t si)
{
	struct bsock *s = &b->socks[si];
	char r[MK_ADDRSTRLEN];

	if (b->win >= 0 || !s->heard || !s->ponged ||
	    !mk_addr_equal(&s->heard_from, &s->pong_from))
		return;
	b->win = (int)si;
	b->win_probes = b->c.role == MK_BDAY_HARD ? b->seq : b->probes;
	b->win_us = mk_now_us() - b->start_us;
	mk_info("both directions open: local port %u <-> %s after %.1f s",
	    s->local_port, mk_addr_fmt(&s->pong_from, r, sizeof(r)),
	    (double)b->win_us / 1e6);
	mk_timer_cancel(b->l, &b->pace);
	mk_timer_cancel(b->l, &b->confirm);
	mk_timer_cancel(b->l, &b->giveup);
	mk_timer_in(b->l, &b->linger, LINGER_US);
}

/* The one IP of the run; for HARD the exact ip:port of the easy side. */
static bool
from_peer_addr(const struct mk_bday *b, const struct mk_addr *from)
{
	return b->c.role == MK_BDAY_HARD ? mk_addr_equal(from, &b->c.dst) :
	    mk_addr_same_ip(from, &b->c.dst);
}

static void
got_ping(struct mk_bday *b, size_t si, const struct mk_disco_ping *ping,
    const struct mk_addr *from)
{
	struct bsock *s = &b->socks[si];
	char f[MK_ADDRSTRLEN];

	if (ping->has_nodekey && !mk_key_equal(&ping->nodekey, &b->c.peer)) {
		b->dropped++;
		return;
	}
	b->heard++;
	send_pong(b, si, ping->txid, from);
	if (s->heard)
		return;
	s->heard = true;
	s->heard_from = *from;
	mk_info("the peer reached local port %u from %s", s->local_port,
	    mk_addr_fmt(from, f, sizeof(f)));
	if (b->cand < 0 && b->win < 0) {
		b->cand = (int)si;
		b->cand_remote = *from;
		on_confirm(b->l, &b->confirm);
	}
	check_won(b, si);
}

static void
got_pong(struct mk_bday *b, size_t si, const struct mk_disco_pong *pong,
    const struct mk_addr *from)
{
	struct bsock *s = &b->socks[si];
	struct sent *st;
	uint64_t now = mk_now_us();
	uint32_t seq;

	if (!txid_ours(b, pong->txid, (uint16_t)si, mk_addr_port(from),
	    &seq)) {
		mk_info("pong with a TxID this run never sent here: dropped");
		b->dropped++;
		return;
	}
	st = &b->sent[seq % SENT_RING];
	if (st->seq != seq || now - st->at_us > PING_TIMEOUT_US) {
		mk_info("pong to an expired ping: dropped");
		b->dropped++;
		return;
	}
	if (!s->ponged || (s->heard && mk_addr_equal(from, &s->heard_from))) {
		s->ponged = true;
		s->pong_from = *from;
		s->rtt_us = now - st->at_us;
	}
	check_won(b, si);
}

static void
handle(struct mk_bday *b, size_t si, const uint8_t *pkt, size_t len,
    const struct mk_addr *from)
{
	struct mk_disco_msg m;
	struct mk_key sender;
	uint8_t pt[PKT_MAX];
	const char *why;
	ssize_t n;

	if (!mk_disco_looks_like(pkt, len) ||
	    mk_disco_sender(&sender, pkt, len) != 0 ||
	    !mk_key_equal(&sender, &b->c.peer) || !from_peer_addr(b, from)) {
		b->dropped++;
		return;
	}
	if ((n = mk_disco_open(pt, sizeof(pt), &b->shared, pkt, len,
	    &why)) < 0) {
		mk_info("disco that does not open: dropped");
		b->dropped++;
		return;
	}
	if (mk_disco_replayed(&b->replay, pkt)) {
		mk_info("replayed disco message: dropped");
		b->dropped++;
		return;
	}
	if (mk_disco_parse(&m, pt, (size_t)n, NULL, 0, &why) != 0) {
		b->dropped++;
		return;
	}
	if (m.type == MK_DISCO_PING)
		got_ping(b, si, &m.ping, from);
	else if (m.type == MK_DISCO_PONG)
		got_pong(b, si, &m.pong, from);
	else
		b->dropped++;
}

static void
on_udp(struct mk_loop *l, struct mk_io *io, uint32_t events)
{
	struct bsock *s = io->arg;
	struct mk_bday *b = s->b;
	size_t si = (size_t)(s - b->socks), len;
	struct mk_addr from;
	uint8_t *buf;
	bool trunc;
	int n, i, round;

	(void)l;
	(void)events;
	for (round = 0; round < 8 && !b->finished; round++) {
		if ((n = mk_udpbatch_recv(&b->rx, io->fd)) <= 0)
			break;
		for (i = 0; i < n && !b->finished; i++) {
			buf = mk_udpbatch_get(&b->rx, (unsigned)i, &len, &from,
			    &trunc);
			if (!trunc && b->running)
				handle(b, si, buf, len, &from);
		}
	}
}

/* ---- setting up ---- */

static const char *
check_config(const struct mk_bday_config *c)
{
	if (c->dst.len == 0)
		return "no destination address";
	if (c->role == MK_BDAY_HARD) {
		if (c->ports == 0 || c->ports > MK_BDAY_MAX_PORTS)
			return "ports out of range (1-1024)";
		if (mk_addr_port(&c->dst) == 0)
			return "the easy side's address needs a port";
		return NULL;
	}
	if (c->role == MK_BDAY_BOTH &&
	    (c->ports == 0 || c->ports > MK_BDAY_MAX_PORTS))
		return "ports out of range (1-1024)";
	if (c->rate == 0)
		return "rate must be above 0";
	if (c->rate > MK_BDAY_RATE_CAP && !c->force)
		return "rate above 1000 probes a second: needs force";
	if (c->count == 0 || c->count > MK_BDAY_MAX_COUNT)
		return "count out of range (1-1000000)";
	return NULL;
}

static int
open_socks(struct mk_bday *b, const char **why)
{
	size_t n = b->c.role == MK_BDAY_EASY ? 1 : b->c.ports, i;
	struct mk_addr any, local;
	int fd;

	if ((b->socks = calloc(n, sizeof(*b->socks))) == NULL) {
		*why = "out of memory";
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (b->c.role == MK_BDAY_EASY && b->c.fd >= 0) {
			fd = b->c.fd;
		} else {
			mk_addr_any(&any, mk_addr_family(&b->c.dst), 0);
			if ((fd = mk_udp_bind(&any, 0, why)) < 0)
				return -1;
		}
		b->socks[i].io.fd = fd;
		b->socks[i].io.fn = on_udp;
		b->socks[i].io.arg = &b->socks[i];
		b->socks[i].b = b;
		b->n_socks++;
		if (mk_sock_local(fd, &local) == 0)
			b->socks[i].local_port = mk_addr_port(&local);
		if (mk_loop_add(b->l, &b->socks[i].io, EPOLLIN) != 0) {
			*why = "event loop";
			return -1;
		}
	}
	return 0;
}

int
mk_bday_new(struct mk_bday **out, struct mk_loop *l,
    const struct mk_bday_config *cfg, const char **why)
{
	struct mk_bday *b;

	*out = NULL;
	if ((*why = check_config(cfg)) != NULL) {
		errno = EINVAL;
		return -1;
	}
	if ((b = calloc(1, sizeof(*b))) == NULL ||
	    (b->sent = calloc(SENT_RING, sizeof(*b->sent))) == NULL ||
	    mk_disco_replay_init(&b->replay, NONCE_CACHE) != 0) {
		if (b != NULL)
			free(b->sent);
		free(b);
		*why = "out of memory";
		return -1;
	}
	b->c = *cfg;
	b->l = l;
	b->cand = b->win = -1;
	if (b->c.resend_us == 0)
		b->c.resend_us = MK_BDAY_RESEND_US;
	randombytes_buf(b->secret, sizeof(b->secret));
	mk_bday_ports_init(&b->ports);
	mk_timer_init(&b->pace, on_pace, b);
	mk_timer_init(&b->confirm, on_confirm, b);
	mk_timer_init(&b->linger, on_linger, b);
	mk_timer_init(&b->giveup, on_giveup, b);
	if (mk_disco_shared_init(&b->shared, &cfg->peer, &cfg->priv, why) != 0 ||
	    mk_udpbatch_init(&b->rx, BATCH, PKT_MAX) != 0 ||
	    open_socks(b, why) != 0) {
		if (b->c.role == MK_BDAY_EASY && b->c.fd >= 0 &&
		    b->n_socks == 1)
			b->socks[0].io.fd = -1;	/* the caller's still */
		mk_bday_free(b);
		return -1;
	}
	*out = b;
	return 0;
}

int
mk_bday_start(struct mk_bday *b)
{
	size_t i;

	b->start_us = mk_now_us();
	b->running = true;
	if (b->c.role == MK_BDAY_HARD) {
		for (i = 0; i < b->n_socks; i++)
			send_ping(b, i, &b->c.dst);
		mk_timer_in(b->l, &b->giveup, b->c.duration_us);
		return mk_timer_in(b->l, &b->pace, b->c.resend_us /
		    b->n_socks);
	}
	return mk_timer_at(b->l, &b->pace, b->start_us);
}

void
mk_bday_get_stats(const struct mk_bday *b, struct mk_bday_stats *st)
{
	st->sent = b->c.role == MK_BDAY_HARD ? b->seq : b->probes;
	st->heard = b->heard;
	st->dropped = b->dropped;
	st->running = b->running;
	st->elapsed_us = b->start_us == 0 ? 0 : (b->finished ? b->end_us :
	    mk_now_us()) - b->start_us;
}

void
mk_bday_result(const struct mk_bday *b, struct mk_bday_result *r)
{
	memset(r, 0, sizeof(*r));
	r->fd = -1;
	r->probes = b->c.role == MK_BDAY_HARD ? b->seq : b->probes;
	r->elapsed_us = b->start_us == 0 ? 0 : (b->finished ? b->end_us :
	    mk_now_us()) - b->start_us;
	if (b->win < 0)
		return;
	r->won = true;
	r->fd = b->socks[b->win].io.fd;
	r->local_port = b->socks[b->win].local_port;
	r->remote = b->socks[b->win].pong_from;
	r->rtt_us = b->socks[b->win].rtt_us;
	r->probes = b->win_probes;
	r->elapsed_us = b->win_us;
}

int
mk_bday_take_winner(struct mk_bday *b)
{
	size_t i;
	int fd;

	if (b->win < 0)
		return -1;
	fd = b->socks[b->win].io.fd;
	for (i = 0; i < b->n_socks; i++) {
		if (b->socks[i].io.fd < 0)
			continue;
		mk_loop_del(b->l, &b->socks[i].io);
		if ((int)i != b->win)
			close(b->socks[i].io.fd);
		b->socks[i].io.fd = -1;
	}
	return fd;
}

void
mk_bday_free(struct mk_bday *b)
{
	size_t i;

	if (b == NULL)
		return;
	mk_timer_cancel(b->l, &b->pace);
	mk_timer_cancel(b->l, &b->confirm);
	mk_timer_cancel(b->l, &b->linger);
	mk_timer_cancel(b->l, &b->giveup);
	for (i = 0; i < b->n_socks; i++) {
		if (b->socks[i].io.fd < 0)
			continue;
		mk_loop_del(b->l, &b->socks[i].io);
		close(b->socks[i].io.fd);
	}
	free(b->socks);
	free(b->sent);
	mk_disco_replay_free(&b->replay);
	mk_udpbatch_free(&b->rx);
	mk_disco_shared_wipe(&b->shared);
	sodium_memzero(&b->c.priv, sizeof(b->c.priv));
	sodium_memzero(b->secret, sizeof(b->secret));
	free(b);
}
