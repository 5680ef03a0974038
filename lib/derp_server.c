/* SPDX-License-Identifier: MIT */
#include "derp_server.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "derp.h"
#include "disco.h"
#include "derp_conn.h"
#include "http.h"
#include "log.h"
#include "url.h"

#define MAX_LISTENERS		8
#define CTL_MAX			(64U << 10)	/* control bytes, a client */
#define CTL_MAX_MESH		(16U << 20)	/* a watcher gets floods */
#define SENT_TO_MAX		4096		/* per source key */
#define READ_ROUNDS		4
#define PING_MAX		1000
/* Bytes of partial frames held for connections not yet authenticated:
 * each may announce a 256 KiB ClientInfo and trickle it. */
#define HS_PEND_MAX		(64U << 20)

enum sstate {
	S_TLS,
	S_HTTP,		/* reading the request head */
	S_HANDSHAKE,	/* ServerKey sent, waiting for ClientInfo */
	S_ACTIVE,
	S_RESPOND,	/* writing an HTTP answer, then close */
};

struct peer;
struct mesh;

/* Per source address: connections now, and those not yet through the
 * handshake. */
struct ipent {
	struct ipent	*next;
	uint8_t		 ip[16];
	uint32_t	 conns;
	uint32_t	 pending;
};

struct conn {
	struct mk_io	 io;
	struct mk_derps	*srv;
	struct mk_dconn	 d;
	uint8_t		 state;
	bool		 dead;
	bool		 mesh;		/* proved the mesh key */
	bool		 watcher;
	bool		 preferred;
	bool		 prober;
	bool		 not_ideal;
	bool		 in_dirty;
	bool		 pending;	/* counted in ip->pending */
	bool		 write_failed;	/* drops count as write_error */
	bool		 in_flush;
	bool		 blocked;	/* the socket was full at last try */
	bool		 overflow;	/* a watcher too far behind */
	uint32_t	 events;
	struct ipent	*ip;
	struct mk_addr	 addr;
	struct mk_key	 key;
	struct peer	*pe;		/* once registered */
	struct conn	*pe_next;	/* same key, newer first */
	struct conn	*all_next;
	struct conn	*all_prev;
	struct conn	*dirty_next;
	struct conn	*dead_next;
	struct conn	*watch_next;
	struct mk_dq	 ctl;
	struct mk_dq	 disco;
	struct mk_dq	 data;
	struct mk_timer	 timer;
	uint64_t	 hs_deadline;	/* 0: none */
	uint64_t	 w_deadline;
	uint64_t	 ka_at;
	uint64_t	 pg_at;		/* PeerGone(NotHere) token bucket */
	uint32_t	 pg_tokens;
	uint64_t	 id;
	uint64_t	 act_seq;	/* when it last registered or sent */
};

struct sent_ent {
	uint64_t	 h;		/* 0: empty */
	struct mk_key	 key;
};

/* A key known here: local connections and/or mesh peers that have it. */
struct peer {
	struct peer	*hnext;
	uint64_t	 h;
	struct mk_key	 key;
	struct conn	*conns;		/* newest first */
	struct conn	*active;
	struct mesh	**fwd;		/* earliest first */
	uint32_t	 nfwd;
	uint32_t	 capfwd;
	struct sent_ent	*sent;		/* keys it sent to (open addressing) */
	uint32_t	 nsent;
	uint32_t	 capsent;
};

struct mesh {
	struct mk_derps	*srv;
	struct mk_derpc	*c;
	struct mesh	*next;
	char		 url[320];
};

struct listener {
	struct mk_io	 io;
	struct mk_derps	*srv;
};

struct mk_derps {
	struct mk_loop		*loop;
	struct mk_derps_config	 cfg;
	struct mk_key		 pub;
	struct listener		 lis[MAX_LISTENERS];
	size_t			 nlis;
	struct mk_timer		 accept_t;	/* resume after EMFILE */
	struct peer		**pb;		/* key -> peer */
	size_t			 pnb;
	size_t			 np;
	struct ipent		**ib;		/* address -> counts */
	size_t			 inb;
	size_t			 ni;
	struct conn		*all;
	struct conn		*dirty;
	struct conn		*dead;
	struct conn		*watchers;
	struct mesh		*meshes;
	struct mk_timer		 post;
	uint8_t			 hkey[crypto_shorthash_KEYBYTES];
	uint64_t		 queued;	/* packet bytes in queues */
	uint64_t		 hs_pend;	/* partial frames before auth */
	struct mk_derps_stats	 st;
	uint64_t		 next_id;
	uint64_t		 act_seq;
	uint64_t		 limit_log_us;
	uint64_t		 limit_suppressed;
};

static const char *const drop_names[MK_DERPS_DROP_N] = {
	"unknown_dest", "unknown_dest_on_fwd", "gone_disconnected",
	"queue_head", "queue_tail", "write_error",
};

static const char plain_to_tls[] = "HTTP/1.0 400 Bad Request\r\n\r\n"
    "Client sent an HTTP request to an HTTPS server.\n";

/* ClientInfo can be large; opened here rather than on the stack. */
static uint8_t info_plain[MK_DERP_MAX_CLIENT_INFO];

static void conn_close(struct conn *c, const char *why);
static void conn_flush(struct conn *c);
static void peer_maybe_free(struct mk_derps *s, struct peer *pe);

const char *
mk_derps_drop_name(int reason)
{
	return reason >= 0 && reason < MK_DERPS_DROP_N ? drop_names[reason] :
	    "unknown";
}

void
mk_derps_config_init(struct mk_derps_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->write_timeout_ms = 2000;
	cfg->mesh_write_timeout_ms = 30000;
	cfg->handshake_timeout_ms = 10000;
	cfg->queue_depth = 32;
	cfg->max_queued_bytes = 128ULL << 20;
	cfg->max_conns_per_ip = 256;
	cfg->max_pending_per_ip = 32;
}

static void
drop(struct mk_derps *s, int reason, uint64_t n)
{
	s->st.drops[reason] += n;
}

static const char *
key_short(const struct mk_key *k, char buf[MK_KEY_B64LEN + 1])
{
	mk_key_to_base64(buf, k);
	return buf;
}

static const char *
addr_str(const struct conn *c, char buf[MK_ADDRSTRLEN])
{
	return mk_addr_fmt(&c->addr, buf, MK_ADDRSTRLEN);
}

/* ---- hash tables ---- */

static uint64_t
hash_bytes(const struct mk_derps *s, const uint8_t *p, size_t n)
{
	uint8_t out[crypto_shorthash_BYTES];
	uint64_t h;

	crypto_shorthash(out, p, n, s->hkey);
	memcpy(&h, out, sizeof(h));
	return h | 1;	/* never 0: 0 marks an empty slot */
}

static struct peer *
peer_find(const struct mk_derps *s, const uint8_t key[32], uint64_t h)
{
	struct peer *pe;

	for (pe = s->pb[h & (s->pnb - 1)]; pe != NULL; pe = pe->hnext)
		if (pe->h == h && memcmp(pe->key.b, key, 32) == 0)
			return pe;
	return NULL;
}

static struct peer *
peer_lookup(const struct mk_derps *s, const uint8_t key[32])
{
	return peer_find(s, key, hash_bytes(s, key, 32));
}

static void
peer_grow(struct mk_derps *s)
{
	struct peer **nb, *pe, *next;
	size_t i, n = s->pnb * 2;

	if ((nb = calloc(n, sizeof(*nb))) == NULL)
		return;		/* longer chains, still correct */
	for (i = 0; i < s->pnb; i++)
		for (pe = s->pb[i]; pe != NULL; pe = next) {
			next = pe->hnext;
			pe->hnext = nb[pe->h & (n - 1)];
			nb[pe->h & (n - 1)] = pe;
		}
	free(s->pb);
	s->pb = nb;
	s->pnb = n;
}

static struct peer *
peer_get(struct mk_derps *s, const struct mk_key *key)
{
	uint64_t h = hash_bytes(s, key->b, 32);
	struct peer *pe = peer_find(s, key->b, h);

	if (pe != NULL)
		return pe;
	if ((pe = calloc(1, sizeof(*pe))) == NULL)
		return NULL;
	pe->h = h;
	pe->key = *key;
	if (s->np >= s->pnb)
		peer_grow(s);
	pe->hnext = s->pb[h & (s->pnb - 1)];
	s->pb[h & (s->pnb - 1)] = pe;
	s->np++;
	return pe;
}

static void
peer_unlink(struct mk_derps *s, struct peer *pe)
{
	struct peer **pp = &s->pb[pe->h & (s->pnb - 1)];

	while (*pp != pe)
		pp = &(*pp)->hnext;
	*pp = pe->hnext;
	s->np--;
	free(pe->fwd);
	free(pe->sent);
	free(pe);
}

static struct ipent *
ip_get(struct mk_derps *s, const struct mk_addr *a)
{
	uint8_t ip[16];
	struct ipent *e;
	uint64_t h;

	memset(ip, 0, sizeof(ip));
	if (mk_addr_family(a) == AF_INET)
		memcpy(ip + 12, &a->sin.sin_addr, 4);
	else	/* one holder of a /64 has all of it: count it as one */
		memcpy(ip, &a->sin6.sin6_addr, 8);
	h = hash_bytes(s, ip, sizeof(ip));
	for (e = s->ib[h & (s->inb - 1)]; e != NULL; e = e->next)
		if (memcmp(e->ip, ip, sizeof(ip)) == 0)
			return e;
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	memcpy(e->ip, ip, sizeof(ip));
	e->next = s->ib[h & (s->inb - 1)];
	s->ib[h & (s->inb - 1)] = e;
	s->ni++;
	return e;
}

static void
ip_put(struct mk_derps *s, struct ipent *e)
{
	struct ipent **pp;
	uint64_t h;

	if (e->conns > 0)
		return;
	h = hash_bytes(s, e->ip, sizeof(e->ip));
	for (pp = &s->ib[h & (s->inb - 1)]; *pp != e; pp = &(*pp)->next)
		;
	*pp = e->next;
	s->ni--;
	free(e);
}

/* Record that src sent to dst, for PeerGone(Disconnected) when src
 * leaves. Bounded: past SENT_TO_MAX keys, no more are recorded. */
static void
sent_to_add(struct peer *src, const struct peer *dst)
{
	struct sent_ent *ns;
	uint32_t i, mask, ncap;

	if (src->capsent > 0) {
		mask = src->capsent - 1;
		for (i = (uint32_t)dst->h & mask; src->sent[i].h != 0;
		    i = (i + 1) & mask)
			if (src->sent[i].h == dst->h &&
			    memcmp(src->sent[i].key.b, dst->key.b, 32) == 0)
				return;
	}
	if (src->nsent >= SENT_TO_MAX)
		return;
	if ((src->nsent + 1) * 2 > src->capsent) {
		ncap = src->capsent ? src->capsent * 2 : 8;
		if ((ns = calloc(ncap, sizeof(*ns))) == NULL)
			return;
		for (i = 0; i < src->capsent; i++) {
			uint32_t j;

			if (src->sent[i].h == 0)
				continue;
			for (j = (uint32_t)src->sent[i].h & (ncap - 1);
			    ns[j].h != 0; j = (j + 1) & (ncap - 1))
				;
			ns[j] = src->sent[i];
		}
		free(src->sent);
		src->sent = ns;
		src->capsent = ncap;
	}
	mask = src->capsent - 1;
	for (i = (uint32_t)dst->h & mask; src->sent[i].h != 0;
	    i = (i + 1) & mask)
		;
	src->sent[i].h = dst->h;
	src->sent[i].key = dst->key;
	src->nsent++;
}

/* ---- output ---- */

static void
arm_post(struct mk_derps *s)
{
	if (!mk_timer_armed(&s->post))
		mk_timer_in(s->loop, &s->post, 0);
}

static void
mark_dirty(struct conn *c)
{
	if (c->in_dirty || c->dead)
		return;
	c->in_dirty = true;
	c->dirty_next = c->srv->dirty;
	c->srv->dirty = c;
	arm_post(c->srv);
}

/* Queue a control frame. Past the cap a client's frame is dropped (a
 * ping flood gets no more pongs); a watcher that far behind is cut off,
 * and resynchronises when it comes back. */
static void
push_ctl(struct conn *c, const void *f, size_t len)
{
	struct mk_dpkt *p;

	if (c->dead)
		return;
	if (c->ctl.bytes + len > (c->mesh ? CTL_MAX_MESH : CTL_MAX)) {
		/* closed from the flush, not here: callers may be walking
		 * the registry, which closing changes */
		if (c->watcher) {
			c->overflow = true;
			mark_dirty(c);
		}
		return;
	}
	if ((p = mk_dpkt_new(len)) == NULL)
		return;
	memcpy(p->data, f, len);
	mk_dq_push(&c->ctl, p);
	mark_dirty(c);
}

static void
update_events(struct conn *c)
{
	uint32_t ev;

	if (c->dead)
		return;
	if (c->state == S_TLS)
		ev = mk_tls_want(c->d.tls) == MK_TLS_WANT_WRITE ? EPOLLOUT :
		    EPOLLIN;
	else
		ev = (c->d.eof ? 0 : EPOLLIN) | mk_dconn_want_events(&c->d);
	if (ev != c->events) {
		mk_loop_mod(c->srv->loop, &c->io, ev);
		c->events = ev;
	}
}

static uint64_t
write_timeout_us(const struct conn *c)
{
	return (c->mesh ? c->srv->cfg.mesh_write_timeout_ms :
	    c->srv->cfg.write_timeout_ms) * 1000;
}

static void
rearm(struct conn *c)
{
	uint64_t when = UINT64_MAX;

	if (c->hs_deadline != 0 && c->hs_deadline < when)
		when = c->hs_deadline;
	if (c->w_deadline != 0 && c->w_deadline < when)
		when = c->w_deadline;
	if (c->ka_at != 0 && c->ka_at < when)
		when = c->ka_at;
	if (when == UINT64_MAX)
		mk_timer_cancel(c->srv->loop, &c->timer);
	else if (!mk_timer_armed(&c->timer) || c->timer.when_us != when)
		mk_timer_at(c->srv->loop, &c->timer, when);
}

/* Move packets from a queue to the writer, keeping the accounts. */
static void
commit(struct conn *c, struct mk_dq *q, bool packets)
{
	uint64_t before = q->bytes;
	uint32_t n = mk_dconn_commit(&c->d, q, MK_DCONN_BATCH);

	if (packets && n > 0) {
		c->srv->queued -= before - q->bytes;
		c->srv->st.sent_packets += n;
		c->srv->st.sent_bytes += before - q->bytes;
	}
}

static void
conn_flush(struct conn *c)
{
	const char *why = "write failed";
	uint64_t bytes;
	int r;

	if (c->dead || c->state == S_TLS || c->in_flush)
		return;
	if (c->overflow) {
		conn_close(c, "watcher fell too far behind");
		return;
	}
	c->in_flush = true;
	for (;;) {
		commit(c, &c->ctl, false);
		commit(c, &c->disco, true);
		commit(c, &c->data, true);
		if (!mk_dconn_writing(&c->d))
			break;
		bytes = 0;
		r = mk_dconn_flush(&c->d, &bytes, NULL, &why);
		if (r < 0) {
			c->in_flush = false;
			c->write_failed = true;
			conn_close(c, why);
			return;
		}
		if (bytes > 0 && write_timeout_us(c) != 0)
			c->w_deadline = mk_now_us() + write_timeout_us(c);
		if (r == 0) {
			c->in_flush = false;
			c->blocked = true;
			if (c->w_deadline == 0 && write_timeout_us(c) != 0)
				c->w_deadline = mk_now_us() +
				    write_timeout_us(c);
			/* the timer must fire by the deadline (a later one
			 * is found on time, then re-armed) */
			if (c->w_deadline != 0 && (!mk_timer_armed(&c->timer) ||
			    c->timer.when_us > c->w_deadline))
				rearm(c);
			update_events(c);
			return;
		}
	}
	c->in_flush = false;
	c->blocked = false;
	c->w_deadline = 0;
	if (c->state == S_RESPOND) {
		conn_close(c, NULL);
		return;
	}
	update_events(c);
}

/* ---- registry and peer state ---- */

static void
broadcast(struct mk_derps *s, const uint8_t *f, size_t len,
    const struct conn *except)
{
	struct conn *w, *next;

	for (w = s->watchers; w != NULL; w = next) {
		next = w->watch_next;
		if (w != except && !w->dead)
			push_ctl(w, f, len);
	}
}

/* As derper's presentFlags: IsRegular only when no other flag applies (a
 * prober is 0x04, not 0x05). */
static uint8_t
present_flags(const struct conn *c)
{
	uint8_t f = 0;

	if (c->prober)
		f |= MK_DERP_PRESENT_PROBER;
	if (c->mesh)
		f |= MK_DERP_PRESENT_MESH_PEER;
	if (c->not_ideal)
		f |= MK_DERP_PRESENT_NOT_IDEAL;
	return f != 0 ? f : MK_DERP_PRESENT_REGULAR;
}

static void
send_present(struct conn *to, const struct conn *c)
{
	uint8_t f[MK_DERP_HDR_LEN + MK_DERP_PEER_PRESENT_LEN];

	push_ctl(to, f, mk_derp_put_peer_present(f, c->key.b, &c->addr,
	    present_flags(c)));
}

/* src has left the region: tell those it sent to. */
static void
region_gone(struct mk_derps *s, struct peer *src)
{
	uint8_t f[MK_DERP_HDR_LEN + 33];
	struct peer *dst;
	uint32_t i;

	mk_derp_put_peer_gone(f, src->key.b, MK_DERP_GONE_DISCONNECTED);
	for (i = 0; i < src->capsent; i++) {
		if (src->sent[i].h == 0)
			continue;
		dst = peer_find(s, src->sent[i].key.b, src->sent[i].h);
		if (dst != NULL && dst->active != NULL)
			push_ctl(dst->active, f, sizeof(f));
	}
}

/* Free a peer that has neither connections nor forwarders. */
static void
peer_maybe_free(struct mk_derps *s, struct peer *pe)
{
	if (pe->conns != NULL || pe->nfwd > 0)
		return;
	region_gone(s, pe);
	peer_unlink(s, pe);
}

static int
register_conn(struct conn *c)
{
	struct mk_derps *s = c->srv;
	struct peer *pe = peer_get(s, &c->key);
	char k[MK_KEY_B64LEN + 1];

	if (pe == NULL)
		return -1;
	if (pe->conns == NULL)
		s->st.keys++;
	else
		mk_info("%s connected again; the newest connection gets its "
		    "packets", key_short(&c->key, k));
	c->pe = pe;
	c->pe_next = pe->conns;
	pe->conns = c;
	pe->active = c;
	c->act_seq = ++s->act_seq;
	s->st.clients++;
	if (c->mesh)
		s->st.mesh_conns++;
	{
		uint8_t f[MK_DERP_HDR_LEN + MK_DERP_PEER_PRESENT_LEN];

		broadcast(s, f, mk_derp_put_peer_present(f, c->key.b, &c->addr,
		    present_flags(c)), c);
	}
	return 0;
}

static void
unregister_conn(struct conn *c)
{
	struct mk_derps *s = c->srv;
	struct peer *pe = c->pe;
	struct conn **pp;

	if (pe == NULL)
		return;
	for (pp = &pe->conns; *pp != c; pp = &(*pp)->pe_next)
		;
	*pp = c->pe_next;
	if (pe->active == c) {
		/* derper: the one that most recently connected or sent */
		struct conn *o;

		pe->active = pe->conns;
		for (o = pe->conns; o != NULL; o = o->pe_next)
			if (o->act_seq > pe->active->act_seq)
				pe->active = o;
	}
	c->pe = NULL;
	s->st.clients--;
	if (c->mesh)
		s->st.mesh_conns--;
	if (c->preferred)
		s->st.home_clients--;
	if (c->watcher) {
		struct conn **wp;

		for (wp = &s->watchers; *wp != c; wp = &(*wp)->watch_next)
			;
		*wp = c->watch_next;
		c->watcher = false;
		s->st.watchers--;
	}
	if (pe->conns == NULL) {
		uint8_t f[MK_DERP_HDR_LEN + 33];

		s->st.keys--;
		mk_derp_put_peer_gone(f, pe->key.b, MK_DERP_GONE_DISCONNECTED);
		broadcast(s, f, sizeof(f), c);
		peer_maybe_free(s, pe);
	}
}

/* ---- closing ---- */

static void
conn_close(struct conn *c, const char *why)
{
	struct mk_derps *s = c->srv;
	char a[MK_ADDRSTRLEN], k[MK_KEY_B64LEN + 1];
	uint32_t n;

	if (c->dead)
		return;
	if (why != NULL) {
		if (c->state == S_ACTIVE)
			mk_info("%s (%s): %s", addr_str(c, a),
			    key_short(&c->key, k), why);
		else
			mk_debug("%s: %s", addr_str(c, a), why);
	}
	c->dead = true;
	if (c->state == S_ACTIVE)
		unregister_conn(c);
	else
		s->hs_pend -= c->d.pend_len;
	/* what was queued for it is lost; what was in the writer too */
	n = c->disco.n + c->data.n;
	s->queued -= c->disco.bytes + c->data.bytes;
	drop(s, c->write_failed ? MK_DERPS_DROP_WRITE_ERROR :
	    MK_DERPS_DROP_GONE_DISCONNECTED, n);
	mk_dq_clear(&c->disco);
	mk_dq_clear(&c->data);
	mk_dq_clear(&c->ctl);
	mk_loop_del(s->loop, &c->io);
	mk_dconn_close(&c->d);
	mk_timer_cancel(s->loop, &c->timer);
	if (c->pending)
		c->ip->pending--;
	c->ip->conns--;
	ip_put(s, c->ip);
	c->ip = NULL;
	if (c->all_prev != NULL)
		c->all_prev->all_next = c->all_next;
	else
		s->all = c->all_next;
	if (c->all_next != NULL)
		c->all_next->all_prev = c->all_prev;
	s->st.conns--;
	/* freed after this loop round: events for it may still be queued */
	c->dead_next = s->dead;
	s->dead = c;
	arm_post(s);
}

static void
on_post(struct mk_loop *l, struct mk_timer *t)
{
	struct mk_derps *s = t->arg;
	struct conn *c;

	(void)l;
	while ((c = s->dirty) != NULL) {
		s->dirty = c->dirty_next;
		c->in_dirty = false;
		conn_flush(c);
	}
	while ((c = s->dead) != NULL) {
		s->dead = c->dead_next;
		free(c);
	}
}

/* ---- HTTP ---- */

static void
respond(struct conn *c, int status, const char *extra, const char *body,
    bool head_only)
{
	char out[1024];
	size_t n = mk_http_response(out, sizeof(out), status, extra, body,
	    head_only);

	c->state = S_RESPOND;
	if (n > 0)
		push_ctl(c, out, n);
	else
		conn_close(c, "response too large");
}

static void
upgrade(struct conn *c, const struct mk_http_req *r)
{
	uint8_t f[MK_DERP_SERVER_KEY_LEN];
	char out[512];
	size_t n;

	c->not_ideal = r->ideal_node[0] != '\0';
	if (!r->fast_start) {
		n = mk_http_101(out, sizeof(out), &c->srv->pub);
		push_ctl(c, out, n);
	}
	push_ctl(c, f, mk_derp_put_server_key(f, &c->srv->pub));
	c->state = S_HANDSHAKE;
}

static void
route_request(struct conn *c, const struct mk_http_req *r)
{
	static const char nocache[] = "Cache-Control: no-cache, no-store, "
	    "must-revalidate, no-transform, max-age=0\r\n";
	bool get = strcmp(r->method, "GET") == 0;
	bool head = strcmp(r->method, "HEAD") == 0;
	char extra[256];

	if (strcmp(r->path, "/derp") == 0) {
		if (strcmp(r->upgrade, "derp") == 0) {
			upgrade(c, r);
			return;
		}
		c->srv->st.http_requests++;
		respond(c, 426, NULL, "DERP requires connection upgrade", head);
		return;
	}
	c->srv->st.http_requests++;
	if (strcmp(r->path, "/derp/probe") == 0 ||
	    strcmp(r->path, "/derp/latency-check") == 0) {
		if (get || head)
			respond(c, 200, "Access-Control-Allow-Origin: *\r\n",
			    NULL, head);
		else
			respond(c, 405, NULL, "bogus probe method\n", false);
	} else if (strcmp(r->path, "/generate_204") == 0) {
		if (r->has_challenge)
			snprintf(extra, sizeof(extra),
			    "%sX-Tailscale-Response: response %s\r\n", nocache,
			    r->challenge);
		else
			snprintf(extra, sizeof(extra), "%s", nocache);
		respond(c, 204, extra, NULL, head);
	} else if (strcmp(r->path, "/robots.txt") == 0) {
		respond(c, 200, "Content-Type: text/plain\r\n",
		    "User-agent: *\nDisallow: /\n", head);
	} else if (strcmp(r->path, "/") == 0) {
		respond(c, 200, "Content-Type: text/plain\r\n",
		    "This is a DERP relay (derpcat).\n", head);
	} else
		respond(c, 404, "Content-Type: text/plain\r\n",
		    "not found\n", head);
}

/* ---- frames ---- */

static void
send_server_info(struct conn *c)
{
	struct mk_derp_server_info si;
	uint8_t f[256];
	char json[128];
	size_t jl;

	memset(&si, 0, sizeof(si));
	si.version = MK_DERP_VERSION;
	jl = mk_derp_server_info_json(&si, json, sizeof(json));
	push_ctl(c, f, mk_derp_put_server_info(f, sizeof(f),
	    &c->srv->cfg.priv, &c->key, json, jl, NULL));
}

static uint64_t
keepalive_delay_us(void)
{
	return MK_DERP_KEEPALIVE_S * 1000000ULL +
	    randombytes_uniform(5000000);
}

/* ClientInfo: the box must open with the key it claims. */
static void
client_info(struct conn *c, const struct mk_derp_frame *f)
{
	struct mk_derps *s = c->srv;
	struct mk_derp_client_info ci;
	char a[MK_ADDRSTRLEN], k[MK_KEY_B64LEN + 1];
	const char *why = "bad ClientInfo";
	long n;

	memcpy(c->key.b, f->key, 32);
	n = mk_derp_open(info_plain, sizeof(info_plain), &s->cfg.priv,
	    &c->key, f->data, f->data_len);
	if (n < 0) {
		s->st.refused_box++;
		mk_warn("%s: refused: ClientInfo for %s does not open (the "
		    "sender does not hold that key)", addr_str(c, a),
		    key_short(&c->key, k));
		conn_close(c, NULL);
		return;
	}
	if (mk_derp_client_info_parse(&ci, (const char *)info_plain,
	    (size_t)n, &why) != 0) {
		s->st.bad_frames++;
		conn_close(c, why);
		return;
	}
	c->mesh = s->cfg.has_mesh_key && ci.has_mesh_key &&
	    sodium_memcmp(ci.mesh_key, s->cfg.mesh_key, 32) == 0;
	if (ci.has_mesh_key && !c->mesh)
		mk_warn("%s: %s offered a wrong mesh key; not a mesh peer",
		    addr_str(c, a), key_short(&c->key, k));
	c->prober = ci.is_prober;
	if (!c->mesh && s->cfg.admit != NULL &&
	    !s->cfg.admit(s->cfg.admit_arg, &c->key)) {
		s->st.refused_admit++;
		mk_warn("%s: refused: %s is not an allowed client",
		    addr_str(c, a), key_short(&c->key, k));
		conn_close(c, NULL);
		return;
	}
	if (c->pending) {
		c->pending = false;
		c->ip->pending--;
	}
	c->hs_deadline = 0;
	c->state = S_ACTIVE;
	if (register_conn(c) != 0) {
		c->state = S_HANDSHAKE;
		conn_close(c, "out of memory");
		return;
	}
	send_server_info(c);
	c->ka_at = mk_now_us() + keepalive_delay_us();
	rearm(c);
	mk_info("%s: %s%s connected", addr_str(c, a), c->mesh ? "mesh peer " :
	    "", key_short(&c->key, k));
}

/* Put a packet on dst's queue: oldest dropped when full, the new one
 * when the server's budget is spent. A full queue is flushed first, which
 * may close dst (and free its peer entry): callers use neither after. */
static void
deliver(struct conn *dst, const uint8_t src[32], const uint8_t *pkt,
    size_t len)
{
	struct mk_derps *s = dst->srv;
	bool disco = mk_disco_looks_like(pkt, len);
	struct mk_dq *q = disco ? &dst->disco : &dst->data;
	struct mk_dpkt *p;
	size_t flen = MK_DERP_PKT_HDR_LEN + len;

	if (q->n >= s->cfg.queue_depth && !dst->in_flush && !dst->blocked) {
		/* full: write it out now, if the socket takes it, rather
		 * than drop what the next flush would have carried */
		conn_flush(dst);
		if (dst->dead) {
			drop(s, MK_DERPS_DROP_GONE_DISCONNECTED, 1);
			return;
		}
	}
	if (q->n >= s->cfg.queue_depth) {
		p = mk_dq_pop(q);
		s->queued -= p->len;
		free(p);
		drop(s, MK_DERPS_DROP_QUEUE_HEAD, 1);
	}
	if (s->queued + flen > s->cfg.max_queued_bytes ||
	    (p = mk_dpkt_new(flen)) == NULL) {
		drop(s, MK_DERPS_DROP_QUEUE_TAIL, 1);
		return;
	}
	mk_derp_put_recv_hdr(p->data, src, len);
	memcpy(p->data + MK_DERP_PKT_HDR_LEN, pkt, len);
	mk_dq_push(q, p);
	s->queued += flen;
	mark_dirty(dst);
}

static void
not_here(struct conn *c, const uint8_t dst[32])
{
	uint8_t f[MK_DERP_HDR_LEN + 33];
	uint64_t now = mk_now_us();

	/* 1 a second, a burst of 3, as derper's peerGoneLim */
	if (c->pg_tokens < 3) {
		uint64_t add = (now - c->pg_at) / 1000000;

		if (add > 0) {
			c->pg_tokens = add >= 3 - c->pg_tokens ? 3 :
			    c->pg_tokens + (uint32_t)add;
			c->pg_at = now;
		}
	}
	if (c->pg_tokens == 0)
		return;
	if (c->pg_tokens == 3)
		c->pg_at = now;
	c->pg_tokens--;
	push_ctl(c, f, mk_derp_put_peer_gone(f, dst, MK_DERP_GONE_NOT_HERE));
}

static void
send_packet(struct conn *c, const struct mk_derp_frame *f)
{
	struct mk_derps *s = c->srv;
	struct peer *dst;

	s->st.recv_packets++;
	s->st.recv_bytes += f->data_len;
	dst = peer_lookup(s, f->key);
	if (dst != NULL && dst->active != NULL) {
		/* deliver may close dst (a failed write) and free its
		 * entry, and c's if c sends to itself: nothing after it */
		sent_to_add(c->pe, dst);
		deliver(dst->active, c->key.b, f->data, f->data_len);
		return;
	}
	if (dst != NULL && dst->nfwd > 0) {
		if (mk_derpc_forward(dst->fwd[0]->c, c->key.b, f->key, f->data,
		    f->data_len) == 0)
			s->st.forwarded_packets++;
		else
			drop(s, MK_DERPS_DROP_QUEUE_TAIL, 1);
		sent_to_add(c->pe, dst);
		return;
	}
	drop(s, MK_DERPS_DROP_UNKNOWN_DEST, 1);
	if (mk_disco_looks_like(f->data, f->data_len))
		not_here(c, f->key);
}

static void
forward_packet(struct conn *c, const struct mk_derp_frame *f)
{
	struct mk_derps *s = c->srv;
	struct peer *dst, *src;

	s->st.recv_packets++;
	s->st.recv_bytes += f->data_len;
	dst = peer_lookup(s, f->key2);
	if (dst == NULL || dst->active == NULL) {
		/* one hop only: never forwarded again; the mesh peer learns
		 * the key is not here, as a client would */
		drop(s, MK_DERPS_DROP_UNKNOWN_DEST_ON_FWD, 1);
		if (mk_disco_looks_like(f->data, f->data_len))
			not_here(c, f->key2);
		return;
	}
	if ((src = peer_lookup(s, f->key)) != NULL)
		sent_to_add(src, dst);
	deliver(dst->active, f->key, f->data, f->data_len);
}

static void
watch_conns(struct conn *c)
{
	struct mk_derps *s = c->srv;
	struct peer *pe;
	size_t i;

	if (c->watcher)
		return;
	if (mk_key_equal(&c->key, &s->pub)) {
		/* a server meshed with itself: nothing to learn (derper) */
		mk_debug("WatchConns with our own key ignored");
		return;
	}
	c->watcher = true;
	c->watch_next = s->watchers;
	s->watchers = c;
	s->st.watchers++;
	/* everyone here now, the watcher itself included (as derper), then
	 * changes as they happen */
	for (i = 0; i < s->pnb && !c->dead; i++)
		for (pe = s->pb[i]; pe != NULL && !c->dead; pe = pe->hnext)
			if (pe->active != NULL)
				send_present(c, pe->active);
}

static void
close_peer(struct conn *c, const uint8_t key[32])
{
	struct peer *pe = peer_lookup(c->srv, key);

	while (pe != NULL && pe->conns != NULL) {
		struct conn *victim = pe->conns;
		bool last = victim->pe_next == NULL;

		conn_close(victim, "closed at a mesh peer's request");
		if (last)
			break;	/* pe was freed with the last one */
	}
}

static void
active_frame(struct conn *c, const struct mk_derp_frame *f)
{
	uint8_t pong[MK_DERP_HDR_LEN + 8];

	switch (f->type) {
	case MK_DERP_SEND_PACKET:
		send_packet(c, f);
		break;
	case MK_DERP_FORWARD_PACKET:
		if (!c->mesh) {
			conn_close(c, "ForwardPacket without the mesh key");
			return;
		}
		forward_packet(c, f);
		break;
	case MK_DERP_NOTE_PREFERRED:
		if ((f->byte != 0) != c->preferred) {
			c->preferred = f->byte != 0;
			if (c->preferred)
				c->srv->st.home_clients++;
			else
				c->srv->st.home_clients--;
		}
		break;
	case MK_DERP_PING:
		push_ctl(c, pong, mk_derp_put_pong(pong, f->ping));
		break;
	case MK_DERP_WATCH_CONNS:
		if (!c->mesh) {
			conn_close(c, "WatchConns without the mesh key");
			return;
		}
		watch_conns(c);
		break;
	case MK_DERP_CLOSE_PEER:
		if (!c->mesh) {
			conn_close(c, "ClosePeer without the mesh key");
			return;
		}
		close_peer(c, f->key);
		break;
	default:
		break;	/* Pong, KeepAlive, ...: nothing to do */
	}
}

enum frule {
	FR_SKIP,	/* discarded, whatever its size */
	FR_HANDLE,	/* handled if its size is in [min, max], else fatal */
	FR_REFUSE,	/* fatal: not expected now */
};

/*
 * What derper does with a frame of each type from a client. Frames it
 * does not handle (KeepAlive, Pong, unknown types) it discards at any
 * size; the others close the connection when their size is wrong:
 * WatchConns must be empty, ClosePeer exactly a key, NotePreferred one
 * byte, a Ping 8 to 1000 bytes.
 */
static enum frule
frame_rule(uint8_t state, uint8_t type, size_t *min, size_t *max)
{
	*min = 0;
	if (state == S_HANDSHAKE) {
		*max = MK_DERP_MAX_CLIENT_INFO;
		return type == MK_DERP_CLIENT_INFO ? FR_HANDLE : FR_REFUSE;
	}
	switch (type) {
	case MK_DERP_SEND_PACKET:
		*min = 32;
		*max = 32 + MK_DERP_MAX_PACKET;
		return FR_HANDLE;
	case MK_DERP_FORWARD_PACKET:
		*min = 64;
		*max = 64 + MK_DERP_MAX_PACKET;
		return FR_HANDLE;
	case MK_DERP_NOTE_PREFERRED:
		*min = *max = 1;
		return FR_HANDLE;
	case MK_DERP_PING:
		*min = 8;
		*max = PING_MAX;
		return FR_HANDLE;
	case MK_DERP_WATCH_CONNS:
		*max = 0;
		return FR_HANDLE;
	case MK_DERP_CLOSE_PEER:
		*min = *max = 32;
		return FR_HANDLE;
	default:
		return FR_SKIP;
	}
}

/* derper's lastWriterIsActive: of several connections for one key, the
 * last to send any frame receives. */
static void
note_activity(struct conn *c)
{
	if (c->pe == NULL)
		return;
	c->pe->active = c;
	c->act_seq = ++c->srv->act_seq;
}

/* Frames in buf: bytes used, or -1 when c was closed. */
static long
conn_frames(struct conn *c, const uint8_t *buf, size_t len)
{
	struct mk_derp_frame f;
	const char *why = "bad frame";
	size_t off = 0, min, max, avail;
	enum frule rule;
	uint8_t type;
	uint32_t flen;
	int r;

	while (!c->dead && mk_derp_hdr_get(buf + off, len - off, &type,
	    &flen) == 1) {
		avail = len - off - MK_DERP_HDR_LEN;
		rule = frame_rule(c->state, type, &min, &max);
		if (rule == FR_REFUSE) {
			c->srv->st.bad_frames++;
			conn_close(c, "expected ClientInfo");
			return -1;
		}
		if (c->state == S_ACTIVE)
			note_activity(c);
		if (rule == FR_HANDLE && flen > max) {
			c->srv->st.bad_frames++;
			conn_close(c, "frame too large");
			return -1;
		}
		if (rule == FR_HANDLE && flen < min) {
			c->srv->st.bad_frames++;
			conn_close(c, "frame of the wrong size");
			return -1;
		}
		if (rule == FR_SKIP && flen > avail) {
			c->d.skip = flen - avail;
			return (long)len;
		}
		if (flen > avail)
			break;
		off += MK_DERP_HDR_LEN + flen;
		if (rule == FR_SKIP)
			continue;
		r = mk_derp_frame_parse(&f, type, buf + off - flen, flen,
		    MK_DERP_VERSION, &why);
		if (r < 0) {
			c->srv->st.bad_frames++;
			conn_close(c, why);
			return -1;
		}
		if (r == 1)
			continue;
		if (c->state == S_HANDSHAKE)
			client_info(c, &f);
		else
			active_frame(c, &f);
	}
	return c->dead ? -1 : (long)off;
}

static long
conn_process(struct conn *c, const uint8_t *buf, size_t len)
{
	struct mk_http_req req;
	const char *why = "bad request";
	long n = 0, m;

	if (c->state == S_RESPOND)
		return (long)len;	/* what follows is not ours to read */
	if (c->state == S_HTTP) {
		n = mk_http_parse_request(&req, (const char *)buf, len, &why);
		if (n == 0)
			return 0;
		if (n < 0) {
			c->srv->st.bad_http++;
			mk_debug("bad HTTP request: %s", why);
			respond(c, strstr(why, "too long") != NULL ? 431 : 400,
			    NULL, NULL, false);
			return (long)len;
		}
		route_request(c, &req);
		if (c->state != S_HANDSHAKE)
			return (long)len;
	}
	m = conn_frames(c, buf + n, len - (size_t)n);
	return m < 0 ? -1 : n + m;
}

static void
conn_read(struct conn *c)
{
	const char *why = "read failed";
	uint8_t *buf;
	size_t len;
	long used;
	int r, rounds;

	for (rounds = 0; rounds < READ_ROUNDS || mk_dconn_more(&c->d);
	    rounds++) {
		/* the kept bytes go back into the buffer: uncounted */
		if (c->state != S_ACTIVE)
			c->srv->hs_pend -= c->d.pend_len;
		r = mk_dconn_fill(&c->d, &buf, &len, &why);
		if (r < 0) {
			conn_close(c, why);
			return;
		}
		used = conn_process(c, buf, len);
		if (used < 0)
			return;
		if (r == 2) {
			if (c->state == S_RESPOND) {
				/* half-closed: finish the answer */
				update_events(c);
				return;
			}
			conn_close(c, "closed by the client");
			return;
		}
		if (mk_dconn_keep(&c->d, buf + used, len - (size_t)used) !=
		    0) {
			conn_close(c, "out of memory");
			return;
		}
		if (c->state != S_ACTIVE) {
			c->srv->hs_pend += c->d.pend_len;
			if (c->srv->hs_pend > HS_PEND_MAX) {
				conn_close(c, "too much unauthenticated data "
				    "held server-wide");
				return;
			}
		}
		if (r == 0)
			break;
	}
	update_events(c);
}

static void
on_conn_io(struct mk_loop *l, struct mk_io *io, uint32_t events)
{
	struct conn *c = io->arg;
	const char *why = "TLS handshake failed";
	int r;

	(void)l;
	if (c->dead)
		return;
	if (c->state == S_TLS) {
		r = mk_tls_handshake(c->d.tls, &why);
		if (r < 0) {
			/* as Go's TLS server: a plain HTTP client learns why */
			if (strstr(why, "http request") != NULL)
				(void)send(c->d.fd, plain_to_tls,
				    sizeof(plain_to_tls) - 1,
				    MSG_NOSIGNAL | MSG_DONTWAIT);
			conn_close(c, why);
			return;
		}
		if (r == 0) {
			update_events(c);
			return;
		}
		c->state = S_HTTP;
		conn_read(c);
		return;
	}
	if ((events & EPOLLOUT) && mk_dconn_writing(&c->d)) {
		c->blocked = false;
		conn_flush(c);
	}
	if (c->dead)
		return;
	if (c->d.eof) {
		/* half-closed while we finish an answer: nothing to read */
		if (events & (EPOLLHUP | EPOLLERR))
			conn_close(c, "connection reset");
		return;
	}
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) ||
	    c->d.read_wants_write)
		conn_read(c);
	if (!c->dead && c->d.write_wants_read && mk_dconn_writing(&c->d))
		conn_flush(c);
}

static void
on_conn_timer(struct mk_loop *l, struct mk_timer *t)
{
	struct conn *c = t->arg;
	uint8_t ka[MK_DERP_HDR_LEN];
	uint64_t now = mk_now_us();

	(void)l;
	if (c->dead)
		return;
	if (c->hs_deadline != 0 && now >= c->hs_deadline) {
		c->srv->st.timeouts++;
		conn_close(c, "handshake timed out");
		return;
	}
	if (c->w_deadline != 0 && now >= c->w_deadline &&
	    mk_dconn_writing(&c->d)) {
		c->write_failed = true;
		conn_close(c, "write timed out");
		return;
	}
	if (c->ka_at != 0 && now >= c->ka_at) {
		push_ctl(c, ka, mk_derp_put_keepalive(ka));
		c->ka_at = now + keepalive_delay_us();
	}
	if (!c->dead)
		rearm(c);
}

/* ---- accepting ---- */

static void
limit_log(struct mk_derps *s, const struct mk_addr *a, const char *what)
{
	uint64_t now = mk_now_us();
	char as[MK_ADDRSTRLEN];

	if (now - s->limit_log_us < 1000000 && s->limit_log_us != 0) {
		s->limit_suppressed++;
		return;
	}
	mk_warn("%s: refused: %s%s", mk_addr_fmt(a, as, sizeof(as)), what,
	    s->limit_suppressed ? " (and others since the last such line)" :
	    "");
	s->limit_log_us = now;
	s->limit_suppressed = 0;
}

static void
new_conn(struct mk_derps *s, int fd, const struct mk_addr *a)
{
	struct ipent *ip = ip_get(s, a);
	struct conn *c;
	const char *why;
	int one = 1;

	if (ip == NULL) {
		close(fd);
		return;
	}
	if ((s->cfg.max_conns_per_ip != 0 &&
	    ip->conns >= s->cfg.max_conns_per_ip) ||
	    (s->cfg.max_pending_per_ip != 0 &&
	    ip->pending >= s->cfg.max_pending_per_ip)) {
		s->st.refused_limit++;
		limit_log(s, a, ip->conns >= s->cfg.max_conns_per_ip &&
		    s->cfg.max_conns_per_ip != 0 ?
		    "too many connections from this address" :
		    "too many unfinished handshakes from this address");
		close(fd);
		ip_put(s, ip);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		ip_put(s, ip);
		return;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->srv = s;
	c->d.fd = fd;
	c->addr = *a;
	c->ip = ip;
	c->id = ++s->next_id;
	c->pg_tokens = 3;
	c->io.fd = fd;
	c->io.fn = on_conn_io;
	c->io.arg = c;
	mk_timer_init(&c->timer, on_conn_timer, c);
	c->state = S_HTTP;
	if (s->cfg.tls != NULL) {
		if (mk_tls_new(&c->d.tls, s->cfg.tls, fd, NULL, &why) != 0) {
			mk_warn("TLS: %s", why);
			close(fd);
			ip_put(s, ip);
			free(c);
			return;
		}
		c->state = S_TLS;
	}
	if (mk_loop_add(s->loop, &c->io, EPOLLIN) != 0) {
		mk_tls_free(c->d.tls);
		close(fd);
		ip_put(s, ip);
		free(c);
		return;
	}
	c->events = EPOLLIN;
	ip->conns++;
	ip->pending++;
	c->pending = true;
	c->all_next = s->all;
	if (s->all != NULL)
		s->all->all_prev = c;
	s->all = c;
	s->st.conns++;
	s->st.accepted++;
	c->hs_deadline = mk_now_us() + s->cfg.handshake_timeout_ms * 1000;
	rearm(c);
}

static void
on_accept_timer(struct mk_loop *l, struct mk_timer *t)
{
	struct mk_derps *s = t->arg;
	size_t i;

	for (i = 0; i < s->nlis; i++)
		mk_loop_mod(l, &s->lis[i].io, EPOLLIN);
}

static void
on_accept(struct mk_loop *l, struct mk_io *io, uint32_t events)
{
	struct listener *li = io->arg;
	struct mk_derps *s = li->srv;
	struct sockaddr_storage ss;
	struct mk_addr a;
	socklen_t len;
	int fd, i;
	size_t j;

	(void)events;
	for (i = 0; i < 64; i++) {
		len = sizeof(ss);
		fd = accept4(io->fd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				/* out of descriptors: pause rather than
				 * spin on a listener that stays readable */
				mk_warn("accept: %s; pausing 100 ms",
				    strerror(errno));
				for (j = 0; j < s->nlis; j++)
					mk_loop_mod(l, &s->lis[j].io, 0);
				mk_timer_in(l, &s->accept_t, 100000);
			}
			return;
		}
		mk_addr_from_sa(&a, (struct sockaddr *)&ss, len);
		new_conn(s, fd, &a);
	}
}

/* ---- mesh ---- */

static void
fwd_add(struct mk_derps *s, struct peer *pe, struct mesh *m)
{
	struct mesh **nf;
	uint32_t i;

	for (i = 0; i < pe->nfwd; i++)
		if (pe->fwd[i] == m)
			return;
	if (pe->nfwd == pe->capfwd) {
		uint32_t ncap = pe->capfwd ? pe->capfwd * 2 : 2;

		if ((nf = reallocarray(pe->fwd, ncap, sizeof(*nf))) == NULL)
			return;
		pe->fwd = nf;
		pe->capfwd = ncap;
	}
	pe->fwd[pe->nfwd++] = m;
	if (pe->nfwd == 1)
		s->st.mesh_forwarders++;
}

/* Remove m as a forwarder of pe; pe may be freed. */
static void
fwd_del(struct mk_derps *s, struct peer *pe, const struct mesh *m)
{
	uint32_t i;

	for (i = 0; i < pe->nfwd; i++)
		if (pe->fwd[i] == m)
			break;
	if (i == pe->nfwd)
		return;
	memmove(&pe->fwd[i], &pe->fwd[i + 1],
	    (pe->nfwd - i - 1) * sizeof(*pe->fwd));
	if (--pe->nfwd == 0) {
		s->st.mesh_forwarders--;
		peer_maybe_free(s, pe);
	}
}

static void
mesh_present(struct mk_derpc *dc, void *arg, const struct mk_key *peer,
    const struct mk_addr *addr, uint8_t flags)
{
	struct mesh *m = arg;
	struct peer *pe;

	(void)dc;
	(void)addr;
	(void)flags;
	/* our own mesh connection to them */
	if (mk_key_equal(peer, &m->srv->pub))
		return;
	if ((pe = peer_get(m->srv, peer)) != NULL)
		fwd_add(m->srv, pe, m);
}

static void
mesh_gone(struct mk_derpc *dc, void *arg, const struct mk_key *peer,
    uint8_t reason)
{
	struct mesh *m = arg;
	struct peer *pe = peer_lookup(m->srv, peer->b);

	(void)dc;
	(void)reason;
	if (pe != NULL)
		fwd_del(m->srv, pe, m);
}

/* The mesh connection broke: everything it reported is gone with it
 * (derper's MeshConnBroke). */
static void
mesh_forget(struct mesh *m)
{
	struct mk_derps *s = m->srv;
	struct peer *pe, *next;
	size_t i;

	for (i = 0; i < s->pnb; i++)
		for (pe = s->pb[i]; pe != NULL; pe = next) {
			next = pe->hnext;
			fwd_del(s, pe, m);
		}
}

static void
mesh_connected(struct mk_derpc *dc, void *arg)
{
	struct mesh *m = arg;

	(void)dc;
	mk_info("mesh: connected to %s", m->url);
}

static void
mesh_disconnected(struct mk_derpc *dc, void *arg, int kind, const char *why)
{
	struct mesh *m = arg;

	(void)dc;
	(void)kind;
	mk_info("mesh: %s: %s", m->url, why);
	mesh_forget(m);
}

int
mk_derps_mesh_with(struct mk_derps *s, const char *url, const char **why)
{
	static const struct mk_derpc_cb cb = {
		.connected = mesh_connected,
		.disconnected = mesh_disconnected,
		.peer_present = mesh_present,
		.peer_gone = mesh_gone,
	};
	struct mk_derpc_config cc;
	struct mk_derpc_target t;
	struct mesh *m;

	if (!s->cfg.has_mesh_key) {
		*why = "meshing needs the mesh key";
		return -1;
	}
	memset(&t, 0, sizeof(t));
	if (mk_url_parse(&t.url, url, MK_URL_RELAY, why) != 0)
		return -1;
	t.has_pin = s->cfg.mesh_has_pin;
	memcpy(t.pin, s->cfg.mesh_pin, sizeof(t.pin));
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		*why = "out of memory";
		return -1;
	}
	m->srv = s;
	snprintf(m->url, sizeof(m->url), "%s", t.url.url);
	mk_derpc_config_init(&cc);
	cc.priv = s->cfg.priv;
	cc.targets = &t;
	cc.n_targets = 1;
	cc.cafile = s->cfg.mesh_cafile;
	cc.insecure = s->cfg.mesh_insecure;
	cc.has_mesh_key = true;
	memcpy(cc.mesh_key, s->cfg.mesh_key, 32);
	cc.watch = true;
	cc.retry_ms = 5000;
	cc.queue_depth = 4096;	/* forwarded packets of many clients */
	if (mk_derpc_new(&m->c, s->loop, &cc, &cb, m, why) != 0) {
		free(m);
		return -1;
	}
	sodium_memzero(&cc, sizeof(cc));
	m->next = s->meshes;
	s->meshes = m;
	mk_derpc_start(m->c);
	return 0;
}

/* ---- the interface ---- */

int
mk_derps_new(struct mk_derps **out, struct mk_loop *l,
    const struct mk_derps_config *cfg, const char **why)
{
	struct mk_derps *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		*why = "out of memory";
		return -1;
	}
	s->loop = l;
	s->cfg = *cfg;
	if (s->cfg.queue_depth == 0)
		s->cfg.queue_depth = 32;
	if (mk_key_public(&s->pub, &cfg->priv) != 0) {
		*why = "bad server key";
		free(s);
		return -1;
	}
	s->pnb = 64;
	s->inb = 64;
	if ((s->pb = calloc(s->pnb, sizeof(*s->pb))) == NULL ||
	    (s->ib = calloc(s->inb, sizeof(*s->ib))) == NULL) {
		free(s->pb);
		free(s);
		*why = "out of memory";
		return -1;
	}
	randombytes_buf(s->hkey, sizeof(s->hkey));
	mk_timer_init(&s->post, on_post, s);
	mk_timer_init(&s->accept_t, on_accept_timer, s);
	*out = s;
	return 0;
}

int
mk_derps_listen(struct mk_derps *s, const struct mk_addr *addr,
    struct mk_addr *bound, const char **why)
{
	struct listener *li;
	int fd, one = 1, zero = 0, saved;

	if (s->nlis == MAX_LISTENERS) {
		*why = "too many listeners";
		errno = EINVAL;
		return -1;
	}
	fd = socket(mk_addr_family(addr), SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*why = "socket";
		return -1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (mk_addr_family(addr) == AF_INET6 && mk_addr_is_any(addr))
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero,
		    sizeof(zero));
	if (bind(fd, &addr->sa, addr->len) != 0) {
		*why = "bind";
		goto fail;
	}
	if (listen(fd, 4096) != 0) {
		*why = "listen";
		goto fail;
	}
	li = &s->lis[s->nlis];
	li->io.fd = fd;
	li->io.fn = on_accept;
	li->io.arg = li;
	li->srv = s;
	if (mk_loop_add(s->loop, &li->io, EPOLLIN) != 0) {
		*why = "epoll";
		goto fail;
	}
	s->nlis++;
	if (bound != NULL) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);

		if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
			mk_addr_from_sa(bound, (struct sockaddr *)&ss, len);
		else
			*bound = *addr;
	}
	return 0;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

void
mk_derps_recheck(struct mk_derps *s)
{
	struct conn *c, *next;
	char a[MK_ADDRSTRLEN], k[MK_KEY_B64LEN + 1];

	if (s->cfg.admit == NULL)
		return;
	for (c = s->all; c != NULL; c = next) {
		next = c->all_next;
		if (c->state != S_ACTIVE || c->mesh ||
		    s->cfg.admit(s->cfg.admit_arg, &c->key))
			continue;
		mk_warn("%s: %s is no longer allowed; disconnected",
		    addr_str(c, a), key_short(&c->key, k));
		s->st.refused_admit++;
		/* closing one connection closes no other at once (a
		 * watcher that overflows is closed from its flush): next
		 * stays valid */
		conn_close(c, NULL);
	}
}

void
mk_derps_get_stats(const struct mk_derps *s, struct mk_derps_stats *st)
{
	*st = s->st;
}

const struct mk_key *
mk_derps_public(const struct mk_derps *s)
{
	return &s->pub;
}

void
mk_derps_free(struct mk_derps *s)
{
	struct mesh *m, *mnext;
	struct peer *pe, *pnext;
	struct ipent *e, *enext;
	size_t i;

	if (s == NULL)
		return;
	for (m = s->meshes; m != NULL; m = mnext) {
		mnext = m->next;
		mk_derpc_free(m->c);
		free(m);
	}
	s->meshes = NULL;
	while (s->all != NULL)
		conn_close(s->all, NULL);
	s->dirty = NULL;
	on_post(s->loop, &s->post);
	mk_timer_cancel(s->loop, &s->post);
	mk_timer_cancel(s->loop, &s->accept_t);
	for (i = 0; i < s->nlis; i++) {
		mk_loop_del(s->loop, &s->lis[i].io);
		close(s->lis[i].io.fd);
	}
	for (i = 0; i < s->pnb; i++)
		for (pe = s->pb[i]; pe != NULL; pe = pnext) {
			pnext = pe->hnext;
			free(pe->fwd);
			free(pe->sent);
			free(pe);
		}
	for (i = 0; i < s->inb; i++)
		for (e = s->ib[i]; e != NULL; e = enext) {
			enext = e->next;
			free(e);
		}
	free(s->pb);
	free(s->ib);
	sodium_memzero(&s->cfg.priv, sizeof(s->cfg.priv));
	sodium_memzero(s->cfg.mesh_key, sizeof(s->cfg.mesh_key));
	free(s);
}
