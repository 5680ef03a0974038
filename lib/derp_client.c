/* SPDX-License-Identifier: MIT */
#include "derp_client.h"

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
#include "derp_conn.h"
#include "http.h"
#include "lookup.h"
#include "nat64.h"
#include "tls.h"

#define MAX_ADDRS	8
#define CTL_MAX_BYTES	(64U << 10)
#define READ_ROUNDS	8

enum cstate {
	C_IDLE,		/* waiting to (re)try */
	C_RESOLVE,	/* name lookup in a helper thread */
	C_CONNECT,	/* TCP connect in progress */
	C_PROXY,	/* CONNECT sent, reading the proxy's answer */
	C_TLS,
	C_HTTP,		/* upgrade sent, reading the 101 */
	C_HANDSHAKE,	/* waiting for ServerKey, then ServerInfo */
	C_UP,
};

struct mk_derpc {
	struct mk_loop		*loop;
	struct mk_derpc_config	 cfg;
	struct mk_derpc_target	*targets;
	size_t			 n_targets;
	size_t			 cur;
	struct mk_derpc_cb	 cb;
	void			*arg;
	struct mk_key		 pub;
	struct mk_tls_ctx	**tls;		/* one per target, lazily */
	bool			 has_proxy;
	struct mk_url		 proxy;
	enum cstate		 state;
	struct mk_io		 io;
	uint32_t		 events;
	struct mk_dconn		 d;
	struct mk_dq		 ctl;		/* control frames, requests */
	struct mk_dq		 q;		/* packets */
	struct mk_timer		 timer;
	struct mk_timer		 flush_t;
	uint64_t		 deadline_us;	/* the whole connect */
	uint64_t		 dial_deadline_us;
	uint64_t		 last_rx_us;
	bool			 via_proxy;
	struct mk_addr		 addrs[MAX_ADDRS];
	size_t			 n_addrs;
	size_t			 cur_addr;
	struct mk_lookup	*rr;	/* a name lookup under way (lib/lookup) */
	char			 rr_host[256];
	struct mk_io		 rio;
	unsigned		 failures;	/* in a row */
	bool			 have_server_key;
	struct mk_key		 server_key;
	bool			 hdr_key;	/* the 101 named a key */
	struct mk_key		 hdr_server_key;
	bool			 got_server_key; /* this connection */
	bool			 fast;		/* this attempt fast-starts */
	bool			 sent_info;
	bool			 want_writable;
	bool			 started;
	int			 depth;		/* our handlers on the stack */
	bool			 dying;
	struct mk_derpc_stats	 stats;
	struct mk_nat64_prefix	 nat64;	/* len 0: none */
};

static void fail(struct mk_derpc *c, int kind, const char *why);
static void dial_next(struct mk_derpc *c, const char *why);
static void set_timer(struct mk_derpc *c);
static void start_attempt(struct mk_derpc *c);
static void really_free(struct mk_derpc *c);

void
mk_derpc_config_init(struct mk_derpc_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->queue_depth = 32;
	cfg->connect_timeout_ms = 10000;
	cfg->dial_timeout_ms = 1500;
	cfg->read_timeout_ms = 120000;
	cfg->fast_start = true;
}

static const char *
env2(const char *a, const char *b)
{
	const char *v = getenv(a);

	if (v == NULL || *v == '\0')
		v = getenv(b);
	return v != NULL && *v != '\0' ? v : NULL;
}

const char *
mk_derpc_proxy_from_env(const struct mk_url *u)
{
	const char *p = u->tls ? env2("HTTPS_PROXY", "https_proxy") :
	    env2("HTTP_PROXY", "http_proxy");

	if (p == NULL || mk_url_no_proxy(u, env2("NO_PROXY", "no_proxy")))
		return NULL;
	return p;
}

/* ---- name lookups, off the loop (lib/lookup) ---- */

static void
rr_drop(struct mk_derpc *c)
{
	if (c->rr == NULL)
		return;
	mk_loop_del(c->loop, &c->rio);
	mk_lookup_free(c->rr);	/* a lookup still running ends alone */
	c->rr = NULL;
}

/* ---- helpers ---- */

static struct mk_derpc_target *
target(struct mk_derpc *c)
{
	return &c->targets[c->cur];
}

static void
enter(struct mk_derpc *c)
{
	c->depth++;
}

/* Leave a handler; false when the client was freed meanwhile. */
static bool
leave(struct mk_derpc *c)
{
	if (--c->depth == 0 && c->dying) {
		really_free(c);
		return false;
	}
	return true;
}

static void
update_events(struct mk_derpc *c)
{
	uint32_t ev;

	if (c->d.fd < 0 || c->state == C_RESOLVE || c->state == C_IDLE)
		return;
	if (c->state == C_CONNECT)
		ev = EPOLLOUT;
	else if (c->state == C_TLS)
		ev = mk_tls_want(c->d.tls) == MK_TLS_WANT_WRITE ? EPOLLOUT :
		    EPOLLIN;
	else
		ev = EPOLLIN | mk_dconn_want_events(&c->d);
	if (ev != c->events) {
		mk_loop_mod(c->loop, &c->io, ev);
		c->events = ev;
	}
}

static void
arm_flush(struct mk_derpc *c)
{
	if (!mk_timer_armed(&c->flush_t))
		mk_timer_in(c->loop, &c->flush_t, 0);
}

static int
push_ctl(struct mk_derpc *c, const void *frame, size_t len)
{
	struct mk_dpkt *p;

	if (c->ctl.bytes + len > CTL_MAX_BYTES) {
		errno = ENOBUFS;
		return -1;
	}
	if ((p = mk_dpkt_new(len)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	memcpy(p->data, frame, len);
	mk_dq_push(&c->ctl, p);
	arm_flush(c);
	return 0;
}

static void
close_conn(struct mk_derpc *c)
{
	rr_drop(c);
	if (c->d.fd >= 0)
		mk_loop_del(c->loop, &c->io);
	mk_dconn_close(&c->d);
	c->d.eof = false;
	c->d.skip = 0;
	c->d.read_wants_write = c->d.write_wants_read = false;
	c->events = 0;
	mk_dq_clear(&c->ctl);
	mk_dq_clear(&c->q);
	mk_timer_cancel(c->loop, &c->flush_t);
}

static uint64_t
backoff_ms(const struct mk_derpc *c)
{
	uint64_t n = c->failures, base;

	if (c->cfg.retry_ms != 0)
		return c->cfg.retry_ms;
	base = n * n * 10;
	if (base > 5000)
		base = 5000;
	/* base * U[0.5, 1.5) */
	return base / 2 + randombytes_uniform((uint32_t)base);
}

/* The connection or attempt failed: close, tell, try again later. */
static void
fail(struct mk_derpc *c, int kind, const char *why)
{
	char whybuf[256];
	bool next = c->state != C_UP && c->n_targets > 1;

	snprintf(whybuf, sizeof(whybuf), "%s", why);
	close_conn(c);
	c->state = C_IDLE;
	c->n_addrs = c->cur_addr = 0;
	c->failures++;
	c->stats.failures++;
	mk_timer_in(c->loop, &c->timer, backoff_ms(c) * 1000);
	/* the callback still sees the target that failed */
	if (c->cb.disconnected != NULL)
		c->cb.disconnected(c, c->arg, kind, whybuf);
	if (next && !c->dying)
		c->cur = (c->cur + 1) % c->n_targets;
}

static void
set_timer(struct mk_derpc *c)
{
	uint64_t when;

	switch (c->state) {
	case C_IDLE:
		return;
	case C_UP:
		when = c->last_rx_us + c->cfg.read_timeout_ms * 1000;
		break;
	case C_CONNECT:
		when = c->dial_deadline_us < c->deadline_us ?
		    c->dial_deadline_us : c->deadline_us;
		break;
	default:
		when = c->deadline_us;
		break;
	}
	mk_timer_at(c->loop, &c->timer, when);
}

/* ---- writing ---- */

/* Write what is queued; -1 when the connection failed (and is closed). */
static int
flush(struct mk_derpc *c)
{
	const char *why = "write failed";
	int r;

	for (;;) {
		mk_dconn_commit(&c->d, &c->ctl, MK_DCONN_BATCH);
		mk_dconn_commit(&c->d, &c->q, MK_DCONN_BATCH);
		if (!mk_dconn_writing(&c->d))
			break;
		r = mk_dconn_flush(&c->d, NULL, NULL, &why);
		if (r < 0) {
			fail(c, MK_DERPC_ERR_NET, why);
			return -1;
		}
		if (r == 0)
			break;
	}
	update_events(c);
	if (c->want_writable && c->state == C_UP &&
	    c->q.n < c->cfg.queue_depth) {
		c->want_writable = false;
		if (c->cb.writable != NULL)
			c->cb.writable(c, c->arg);
	}
	return 0;
}

static void
on_flush_timer(struct mk_loop *l, struct mk_timer *t)
{
	struct mk_derpc *c = t->arg;

	(void)l;
	if (c->d.fd < 0 || c->state < C_PROXY || c->state == C_TLS)
		return;
	enter(c);
	flush(c);
	leave(c);
}

/* ---- connecting ---- */

static struct mk_tls_ctx *
tls_ctx(struct mk_derpc *c, const char **why)
{
	struct mk_derpc_target *t = target(c);

	if (c->tls[c->cur] == NULL &&
	    mk_tls_client_ctx(&c->tls[c->cur], c->cfg.cafile,
	    t->has_pin ? t->pin : NULL, t->insecure || c->cfg.insecure,
	    why) != 0)
		return NULL;
	return c->tls[c->cur];
}

static void
send_client_info(struct mk_derpc *c)
{
	struct mk_derp_client_info ci;
	uint8_t frame[512];
	char json[256];
	size_t jl, n;

	memset(&ci, 0, sizeof(ci));
	ci.version = MK_DERP_VERSION;
	ci.can_ack_pings = true;
	ci.has_mesh_key = c->cfg.has_mesh_key;
	memcpy(ci.mesh_key, c->cfg.mesh_key, 32);
	jl = mk_derp_client_info_json(&ci, json, sizeof(json));
	n = mk_derp_put_client_info(frame, sizeof(frame), &c->cfg.priv,
	    &c->pub, &c->server_key, json, jl, NULL);
	sodium_memzero(json, sizeof(json));
	if (n == 0 || push_ctl(c, frame, n) != 0) {
		fail(c, MK_DERPC_ERR_PROTO, "cannot build ClientInfo");
		return;
	}
	c->sent_info = true;
}

/* TCP (and the proxy, if any) is through: TLS or the upgrade next. */
static void
send_upgrade(struct mk_derpc *c)
{
	char req[1024];
	size_t n;

	c->state = C_HTTP;
	n = mk_http_upgrade_request(req, sizeof(req), target(c)->url.authority,
	    c->fast);
	if (n == 0 || push_ctl(c, req, n) != 0) {
		fail(c, MK_DERPC_ERR_PROTO, "cannot build the request");
		return;
	}
	/* fast start: ClientInfo right behind the request, one round trip
	 * saved, sealed to the key this server had last time */
	if (c->fast) {
		send_client_info(c);
		if (c->state != C_HTTP)
			return;
	}
	flush(c);
}

static void
drive_tls(struct mk_derpc *c)
{
	const char *why = "TLS handshake failed";
	int r = mk_tls_handshake(c->d.tls, &why);

	if (r < 0) {
		fail(c, MK_DERPC_ERR_TLS, why);
		return;
	}
	if (r == 0) {
		update_events(c);
		return;
	}
	if (c->cfg.fast_start &&
	    mk_tls_peer_derp_key(c->d.tls, c->server_key.b) == 0) {
		c->have_server_key = true;
		c->fast = true;
	}
	send_upgrade(c);
}

static void
after_tcp(struct mk_derpc *c)
{
	const char *why = "TLS failed";
	struct mk_tls_ctx *ctx;

	if (!target(c)->url.tls) {
		send_upgrade(c);
		return;
	}
	if ((ctx = tls_ctx(c, &why)) == NULL ||
	    mk_tls_new(&c->d.tls, ctx, c->d.fd, target(c)->url.host,
	    &why) != 0) {
		fail(c, MK_DERPC_ERR_TLS, why);
		return;
	}
	c->state = C_TLS;
	drive_tls(c);
}

static void
on_connected(struct mk_derpc *c)
{
	char req[600], hp[300];
	int err = 0;
	socklen_t len = sizeof(err);
	size_t n;

	if (getsockopt(c->d.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	if (err != 0) {
		static char buf[200];
		char s[MK_ADDRSTRLEN];

		mk_loop_del(c->loop, &c->io);
		close(c->d.fd);
		c->d.fd = -1;
		c->events = 0;
		snprintf(buf, sizeof(buf), "connect %s: %s",
		    mk_addr_fmt(&c->addrs[c->cur_addr - 1], s, sizeof(s)),
		    strerror(err));
		dial_next(c, buf);
		return;
	}
	if (!c->via_proxy) {
		after_tcp(c);
		return;
	}
	c->state = C_PROXY;
	mk_url_hostport(&target(c)->url, hp, sizeof(hp));
	n = mk_http_connect_request(req, sizeof(req), hp,
	    c->proxy.userinfo[0] != '\0' ? c->proxy.userinfo : NULL);
	if (n == 0 || push_ctl(c, req, n) != 0) {
		fail(c, MK_DERPC_ERR_PROTO, "cannot build CONNECT");
		return;
	}
	flush(c);
}

static void on_io(struct mk_loop *l, struct mk_io *io, uint32_t events);

/* Try the next address of this attempt; why: what the last one did. */
static void
dial_next(struct mk_derpc *c, const char *why)
{
	static char buf[200];
	int fd, one = 1;

	while (c->cur_addr < c->n_addrs) {
		const struct mk_addr *a = &c->addrs[c->cur_addr++];
		struct mk_addr via;

		/* IPv4 from an IPv6-only host: through its NAT64 */
		if (c->nat64.len != 0 && mk_nat64_addr_to6(&c->nat64, a, &via))
			a = &via;
		fd = socket(mk_addr_family(a), SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
		if (fd < 0) {
			why = strerror(errno);
			continue;
		}
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
		if (connect(fd, &a->sa, a->len) != 0 &&
		    errno != EINPROGRESS) {
			char s[MK_ADDRSTRLEN];

			snprintf(buf, sizeof(buf), "connect %s: %s",
			    mk_addr_fmt(a, s, sizeof(s)), strerror(errno));
			why = buf;
			close(fd);
			continue;
		}
		c->d.fd = fd;
		c->io.fd = fd;
		c->io.fn = on_io;
		c->io.arg = c;
		c->state = C_CONNECT;
		if (mk_loop_add(c->loop, &c->io, EPOLLOUT) != 0) {
			why = strerror(errno);
			close(fd);
			c->d.fd = -1;
			continue;
		}
		c->events = EPOLLOUT;
		c->dial_deadline_us = mk_now_us() +
		    c->cfg.dial_timeout_ms * 1000;
		set_timer(c);
		return;
	}
	fail(c, MK_DERPC_ERR_NET, why != NULL ? why : "no address");
}

void
mk_derpc_set_nat64(struct mk_derpc *c, const struct mk_nat64_prefix *p)
{
	if (p != NULL)
		c->nat64 = *p;
	else
		memset(&c->nat64, 0, sizeof(c->nat64));
}

static void
on_resolved(struct mk_loop *l, struct mk_io *io, uint32_t events)
{
	struct mk_derpc *c = io->arg;
	const char *why;
	size_t n;
	int r;

	(void)l;
	(void)events;
	if ((r = mk_lookup_result(c->rr, c->addrs, MAX_ADDRS, &n, &why)) == 0)
		return;
	enter(c);
	if (r < 0) {
		static char buf[300];

		snprintf(buf, sizeof(buf), "%s: %s", c->rr_host, why);
		rr_drop(c);
		fail(c, MK_DERPC_ERR_NET, buf);
	} else {
		c->n_addrs = n;
		c->cur_addr = 0;
		rr_drop(c);
		dial_next(c, NULL);
	}
	leave(c);
}

static int
resolve(struct mk_derpc *c, const char *host, uint16_t port)
{
	const char *why;

	snprintf(c->rr_host, sizeof(c->rr_host), "%s", host);
	if ((c->rr = mk_lookup_start(host, port, AF_UNSPEC, SOCK_STREAM,
	    &why)) == NULL)
		return -1;
	c->rio.fd = mk_lookup_fd(c->rr);
	c->rio.fn = on_resolved;
	c->rio.arg = c;
	if (mk_loop_add(c->loop, &c->rio, EPOLLIN) != 0) {
		mk_lookup_free(c->rr);
		c->rr = NULL;
		return -1;
	}
	c->state = C_RESOLVE;
	return 0;
}

static void
start_attempt(struct mk_derpc *c)
{
	struct mk_derpc_target *t = target(c);
	const struct mk_url *u;

	c->deadline_us = mk_now_us() + c->cfg.connect_timeout_ms * 1000;
	/* only a key learned on this connection (the TLS meta cert) lets
	 * us fast-start: one remembered from before may have changed, and
	 * a wrong guess cost a failed attempt (seconds of outage) */
	c->fast = false;
	c->sent_info = c->got_server_key = c->hdr_key = false;
	c->via_proxy = c->has_proxy &&
	    !mk_url_no_proxy(&t->url, c->cfg.no_proxy);
	u = c->via_proxy ? &c->proxy : &t->url;
	c->n_addrs = c->cur_addr = 0;
	if (!c->via_proxy && t->dial.len != 0) {
		c->addrs[c->n_addrs++] = t->dial;
		if (t->dial6.len != 0)
			c->addrs[c->n_addrs++] = t->dial6;
	} else if (u->numeric) {
		c->addrs[c->n_addrs++] = u->addr;
	} else {
		if (resolve(c, u->host, u->port) != 0)
			fail(c, MK_DERPC_ERR_NET, "cannot start a name lookup");
		else
			set_timer(c);
		return;
	}
	dial_next(c, NULL);
}

/* ---- reading ---- */

static void
handshake_done(struct mk_derpc *c)
{
	uint8_t f[8];

	c->state = C_UP;
	c->failures = 0;
	c->stats.connects++;
	c->last_rx_us = mk_now_us();
	set_timer(c);
	if (c->cfg.preferred) {
		mk_derp_put_note_preferred(f, true);
		push_ctl(c, f, MK_DERP_HDR_LEN + 1);
	}
	if (c->cfg.watch) {
		mk_derp_put_watch_conns(f);
		push_ctl(c, f, MK_DERP_HDR_LEN);
	}
	if (c->cb.connected != NULL)
		c->cb.connected(c, c->arg);
}

/* 0, or -1 when the connection failed or the client is going away. */
static int
handshake_frame(struct mk_derpc *c, const struct mk_derp_frame *f)
{
	struct mk_derp_server_info si;
	struct mk_key k;
	uint8_t plain[4096];
	const char *why = "bad ServerInfo";
	long n;

	if (!c->got_server_key) {
		if (f->type != MK_DERP_SERVER_KEY) {
			fail(c, MK_DERPC_ERR_PROTO,
			    "the server did not begin with ServerKey");
			return -1;
		}
		memcpy(k.b, f->key, 32);
		if ((c->hdr_key && !mk_key_equal(&k, &c->hdr_server_key)) ||
		    (c->fast && !mk_key_equal(&k, &c->server_key))) {
			/* the same connection named two keys: a liar */
			c->have_server_key = false;
			fail(c, MK_DERPC_ERR_PROTO, "the server named two "
			    "different keys");
			return -1;
		}
		c->server_key = k;
		c->have_server_key = true;
		c->got_server_key = true;
		if (!c->sent_info) {
			send_client_info(c);
			if (c->state != C_HANDSHAKE)
				return -1;
		}
		return 0;
	}
	if (f->type != MK_DERP_SERVER_INFO)
		return 0;	/* as Go's client: skip what it does not want */
	n = mk_derp_open(plain, sizeof(plain) - 1, &c->cfg.priv,
	    &c->server_key, f->data, f->data_len);
	if (n < 0 || mk_derp_server_info_parse(&si, (const char *)plain,
	    (size_t)n, &why) != 0) {
		fail(c, MK_DERPC_ERR_PROTO, n < 0 ?
		    "ServerInfo does not open with the server's key" : why);
		return -1;
	}
	handshake_done(c);
	return c->dying || c->state != C_UP ? -1 : 0;
}

static int
up_frame(struct mk_derpc *c, const struct mk_derp_frame *f)
{
	struct mk_key k;
	uint8_t pong[MK_DERP_HDR_LEN + 8];

	switch (f->type) {
	case MK_DERP_RECV_PACKET:
		c->stats.recv_packets++;
		c->stats.recv_bytes += f->data_len;
		if (c->cb.recv != NULL && f->key != NULL) {
			memcpy(k.b, f->key, 32);
			c->cb.recv(c, c->arg, &k, f->data, f->data_len);
		}
		break;
	case MK_DERP_PEER_GONE:
		if (c->cb.peer_gone != NULL) {
			memcpy(k.b, f->key, 32);
			c->cb.peer_gone(c, c->arg, &k, f->byte);
		}
		break;
	case MK_DERP_PEER_PRESENT:
		if (c->cb.peer_present != NULL) {
			memcpy(k.b, f->key, 32);
			c->cb.peer_present(c, c->arg, &k, &f->addr, f->flags);
		}
		break;
	case MK_DERP_PING:
		mk_derp_put_pong(pong, f->ping);
		(void)push_ctl(c, pong, sizeof(pong));	/* best effort */
		break;
	case MK_DERP_PONG:
		if (c->cb.pong != NULL)
			c->cb.pong(c, c->arg, f->ping);
		break;
	case MK_DERP_HEALTH:
		if (c->cb.health != NULL)
			c->cb.health(c, c->arg, (const char *)f->data,
			    f->data_len);
		break;
	default:
		break;	/* KeepAlive, Restarting, late ServerKey... */
	}
	return c->dying || c->state != C_UP ? -1 : 0;
}

/* The largest frame of each type we take whole; others are skipped. */
static size_t
frame_limit(uint8_t type)
{
	switch (type) {
	case MK_DERP_RECV_PACKET:
		return 32 + MK_DERP_MAX_PACKET;
	case MK_DERP_SERVER_KEY:
		return 1024;
	case MK_DERP_SERVER_INFO:
	case MK_DERP_HEALTH:
		return MK_DCONN_RBUF - MK_DERP_HDR_LEN;
	case MK_DERP_PEER_GONE:
	case MK_DERP_PEER_PRESENT:
	case MK_DERP_PING:
	case MK_DERP_PONG:
	case MK_DERP_KEEP_ALIVE:
	case MK_DERP_RESTARTING:
		return 1024;
	default:
		return 0;
	}
}

/* Frames in buf: bytes used, or -1 when the connection is gone. */
static long
frames(struct mk_derpc *c, const uint8_t *buf, size_t len)
{
	struct mk_derp_frame f;
	const char *why = "bad frame";
	size_t off = 0, lim;
	uint8_t type;
	uint32_t flen;
	int r;

	while (mk_derp_hdr_get(buf + off, len - off, &type, &flen) == 1) {
		lim = frame_limit(type);
		if (flen > MK_DERP_MAX_FRAME_CLIENT ||
		    (lim != 0 && flen > lim)) {
			fail(c, MK_DERPC_ERR_PROTO, "frame too large");
			return -1;
		}
		if (lim == 0 && flen > len - off - MK_DERP_HDR_LEN) {
			/* an unknown frame: drop it as it comes */
			c->d.skip = flen - (len - off - MK_DERP_HDR_LEN);
			return (long)len;
		}
		if (flen > len - off - MK_DERP_HDR_LEN)
			break;
		r = mk_derp_frame_parse(&f, type, buf + off + MK_DERP_HDR_LEN,
		    flen, MK_DERP_VERSION, &why);
		off += MK_DERP_HDR_LEN + flen;
		if (r < 0) {
			fail(c, MK_DERPC_ERR_PROTO, why);
			return -1;
		}
		if (r == 1)
			continue;
		if ((c->state == C_HANDSHAKE ? handshake_frame(c, &f) :
		    up_frame(c, &f)) != 0)
			return -1;
	}
	return (long)off;
}

/* The proxy's answer to CONNECT. */
static long
proxy_head(struct mk_derpc *c, const uint8_t *buf, size_t len)
{
	struct mk_http_resp r;
	const char *why = "bad answer";
	static char msg[160];
	long n;

	n = mk_http_parse_response(&r, (const char *)buf, len, &why);
	if (n == 0)
		return 0;
	if (n < 0) {
		snprintf(msg, sizeof(msg), "proxy: %s", why);
		fail(c, MK_DERPC_ERR_NET, msg);
		return -1;
	}
	if (r.status < 200 || r.status > 299) {
		snprintf(msg, sizeof(msg), "proxy refused CONNECT: %d %s",
		    r.status, r.reason);
		fail(c, MK_DERPC_ERR_NET, msg);
		return -1;
	}
	if ((size_t)n != len) {
		fail(c, MK_DERPC_ERR_NET, "proxy sent bytes before TLS");
		return -1;
	}
	after_tcp(c);
	return c->state == C_IDLE ? -1 : n;
}

/* The server's answer to the upgrade. */
static long
http_head(struct mk_derpc *c, const uint8_t *buf, size_t len)
{
	struct mk_http_resp r;
	const char *why = "bad answer";
	static char msg[160];
	long n;

	/* a server that honours fast start sends no 101 */
	if (c->fast && len > 0 && buf[0] != 'H') {
		c->state = C_HANDSHAKE;
		return 0;
	}
	n = mk_http_parse_response(&r, (const char *)buf, len, &why);
	if (n == 0)
		return 0;
	if (n < 0) {
		snprintf(msg, sizeof(msg), "not a DERP server: %s", why);
		fail(c, MK_DERPC_ERR_PROTO, msg);
		return -1;
	}
	if (r.status != 101 || strcmp(r.upgrade, "derp") != 0) {
		snprintf(msg, sizeof(msg), "not a DERP server: HTTP %d %s",
		    r.status, r.reason);
		fail(c, MK_DERPC_ERR_PROTO, msg);
		return -1;
	}
	if (r.has_server_key) {
		c->hdr_key = true;
		memcpy(c->hdr_server_key.b, r.server_key, 32);
	}
	c->state = C_HANDSHAKE;
	return n;
}

/* Everything unprocessed in buf: bytes used, or -1 (connection gone). */
static long
process(struct mk_derpc *c, const uint8_t *buf, size_t len)
{
	long n, m;

	if (c->state == C_PROXY)
		return proxy_head(c, buf, len);
	n = 0;
	if (c->state == C_HTTP) {
		n = http_head(c, buf, len);
		if (n < 0 || c->state == C_HTTP)
			return n;
	}
	m = frames(c, buf + n, len - (size_t)n);
	return m < 0 ? -1 : n + m;
}

static void
do_read(struct mk_derpc *c)
{
	const char *why = "read failed";
	uint8_t *buf;
	size_t len;
	long used;
	int r, rounds;

	for (rounds = 0; rounds < READ_ROUNDS || mk_dconn_more(&c->d);
	    rounds++) {
		r = mk_dconn_fill(&c->d, &buf, &len, &why);
		if (r < 0) {
			/* hung up on the upgrade: not what we took it for */
			fail(c, c->state == C_HTTP ? MK_DERPC_ERR_PROTO :
			    MK_DERPC_ERR_NET, why);
			return;
		}
		if (r == 1)
			c->last_rx_us = mk_now_us();
		used = process(c, buf, len);
		if (used < 0)
			return;
		if (r == 2) {
			bool refused = c->state == C_HANDSHAKE &&
			    c->sent_info && !c->fast;

			if (c->state == C_HTTP)
				fail(c, MK_DERPC_ERR_PROTO, "the server closed "
				    "the connection without answering the "
				    "upgrade (not a DERP server, or TLS "
				    "where it expects plain HTTP?)");
			else
				fail(c, refused ? MK_DERPC_ERR_REFUSED :
				    MK_DERPC_ERR_NET, refused ?
				    "the server closed the connection after "
				    "our ClientInfo (not admitted?)" :
				    "the server closed the connection");
			return;
		}
		if (mk_dconn_keep(&c->d, buf + used, len - (size_t)used) != 0) {
			fail(c, MK_DERPC_ERR_NET, "out of memory");
			return;
		}
		if (r == 0 || c->state == C_TLS)
			break;
	}
	update_events(c);
}

static void
on_io(struct mk_loop *l, struct mk_io *io, uint32_t events)
{
	struct mk_derpc *c = io->arg;

	(void)l;
	enter(c);
	switch (c->state) {
	case C_CONNECT:
		on_connected(c);
		break;
	case C_TLS:
		drive_tls(c);
		break;
	case C_PROXY:
	case C_HTTP:
	case C_HANDSHAKE:
	case C_UP:
		if ((events & EPOLLOUT) && mk_dconn_writing(&c->d) &&
		    flush(c) != 0)
			break;
		if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) ||
		    c->d.read_wants_write || c->d.write_wants_read)
			do_read(c);
		if (c->state >= C_PROXY && c->state != C_TLS &&
		    mk_dconn_writing(&c->d) && c->d.write_wants_read)
			flush(c);
		break;
	default:
		break;
	}
	leave(c);
}

static void
on_timer(struct mk_loop *l, struct mk_timer *t)
{
	struct mk_derpc *c = t->arg;
	uint64_t now = mk_now_us();

	(void)l;
	enter(c);
	switch (c->state) {
	case C_IDLE:
		start_attempt(c);
		break;
	case C_UP:
		if (now >= c->last_rx_us + c->cfg.read_timeout_ms * 1000)
			fail(c, MK_DERPC_ERR_NET, "the server went silent");
		else
			set_timer(c);
		break;
	default:
		if (now >= c->deadline_us) {
			fail(c, MK_DERPC_ERR_NET, "connect timed out");
		} else if (c->state == C_CONNECT &&
		    now >= c->dial_deadline_us) {
			mk_loop_del(c->loop, &c->io);
			close(c->d.fd);
			c->d.fd = -1;
			c->events = 0;
			dial_next(c, "connect timed out");
		} else
			set_timer(c);
		break;
	}
	leave(c);
}

/* ---- the interface ---- */

int
mk_derpc_new(struct mk_derpc **out, struct mk_loop *l,
    const struct mk_derpc_config *cfg, const struct mk_derpc_cb *cb,
    void *arg, const char **why)
{
	struct mk_derpc *c;

	if (cfg->n_targets == 0) {
		*why = "no server";
		return -1;
	}
	if (cfg->watch && !cfg->has_mesh_key) {
		*why = "watching needs the mesh key";
		return -1;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->targets = calloc(cfg->n_targets, sizeof(*c->targets))) ==
	    NULL || (c->tls = calloc(cfg->n_targets, sizeof(*c->tls))) ==
	    NULL) {
		if (c != NULL)
			free(c->targets);
		free(c);
		*why = "out of memory";
		return -1;
	}
	c->loop = l;
	c->cfg = *cfg;
	if (c->cfg.queue_depth == 0)
		c->cfg.queue_depth = 32;
	memcpy(c->targets, cfg->targets, cfg->n_targets * sizeof(*c->targets));
	c->n_targets = cfg->n_targets;
	c->cfg.targets = NULL;
	if (cfg->proxy != NULL) {
		if (mk_url_parse(&c->proxy, cfg->proxy, MK_URL_PROXY, why) != 0) {
			free(c->tls);
			free(c->targets);
			free(c);
			return -1;
		}
		c->has_proxy = true;
	}
	c->cfg.proxy = NULL;
	if (mk_key_public(&c->pub, &cfg->priv) != 0) {
		*why = "bad private key";
		free(c->tls);
		free(c->targets);
		free(c);
		return -1;
	}
	if (cb != NULL)
		c->cb = *cb;
	c->arg = arg;
	c->d.fd = -1;
	c->state = C_IDLE;
	mk_timer_init(&c->timer, on_timer, c);
	mk_timer_init(&c->flush_t, on_flush_timer, c);
	*out = c;
	return 0;
}

void
mk_derpc_start(struct mk_derpc *c)
{
	if (c->started)
		return;
	c->started = true;
	mk_timer_in(c->loop, &c->timer, 0);
}

static void
really_free(struct mk_derpc *c)
{
	size_t i;

	close_conn(c);
	mk_timer_cancel(c->loop, &c->timer);
	mk_timer_cancel(c->loop, &c->flush_t);
	for (i = 0; i < c->n_targets; i++)
		mk_tls_ctx_free(c->tls[i]);
	free(c->tls);
	free(c->targets);
	sodium_memzero(&c->cfg.priv, sizeof(c->cfg.priv));
	sodium_memzero(c->cfg.mesh_key, sizeof(c->cfg.mesh_key));
	free(c);
}

void
mk_derpc_free(struct mk_derpc *c)
{
	if (c == NULL)
		return;
	if (c->depth > 0) {
		/* inside one of our callbacks: stop now, free on the way
		 * out */
		close_conn(c);
		c->state = C_IDLE;
		mk_timer_cancel(c->loop, &c->timer);
		c->dying = true;
		return;
	}
	really_free(c);
}

bool
mk_derpc_up(const struct mk_derpc *c)
{
	return c->state == C_UP;
}

const struct mk_key *
mk_derpc_public(const struct mk_derpc *c)
{
	return &c->pub;
}

const struct mk_key *
mk_derpc_server_key(const struct mk_derpc *c)
{
	return c->have_server_key ? &c->server_key : NULL;
}

const struct mk_derpc_target *
mk_derpc_target(const struct mk_derpc *c)
{
	return &c->targets[c->cur];
}

size_t
mk_derpc_queued(const struct mk_derpc *c)
{
	return c->q.n + c->ctl.n + c->d.wlist.n;
}

bool
mk_derpc_room(const struct mk_derpc *c, size_t n)
{
	return c->state == C_UP && c->q.n + n <= c->cfg.queue_depth;
}

static int
queue_packet(struct mk_derpc *c, const uint8_t *hdr, size_t hlen,
    const void *pkt, size_t len)
{
	struct mk_dpkt *p;

	if (c->state != C_UP || c->dying) {
		errno = ENOTCONN;
		return -1;
	}
	if (len > MK_DERP_MAX_PACKET) {
		errno = EMSGSIZE;
		return -1;
	}
	if (c->q.n >= c->cfg.queue_depth) {
		c->want_writable = true;
		c->stats.dropped_full++;
		errno = EAGAIN;
		return -1;
	}
	if ((p = mk_dpkt_new(hlen + len)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	memcpy(p->data, hdr, hlen);
	if (len > 0)
		memcpy(p->data + hlen, pkt, len);
	mk_dq_push(&c->q, p);
	c->stats.sent_packets++;
	c->stats.sent_bytes += len;
	arm_flush(c);
	return 0;
}

int
mk_derpc_send(struct mk_derpc *c, const struct mk_key *dst, const void *pkt,
    size_t len)
{
	uint8_t hdr[MK_DERP_PKT_HDR_LEN];

	mk_derp_put_send_hdr(hdr, dst->b, len);
	return queue_packet(c, hdr, sizeof(hdr), pkt, len);
}

int
mk_derpc_forward(struct mk_derpc *c, const uint8_t src[32],
    const uint8_t dst[32], const void *pkt, size_t len)
{
	uint8_t hdr[MK_DERP_FWD_HDR_LEN];

	mk_derp_put_forward_hdr(hdr, src, dst, len);
	return queue_packet(c, hdr, sizeof(hdr), pkt, len);
}

static int
ctl_up(struct mk_derpc *c, const uint8_t *f, size_t n)
{
	if (c->state != C_UP || c->dying) {
		errno = ENOTCONN;
		return -1;
	}
	return push_ctl(c, f, n);
}

int
mk_derpc_ping(struct mk_derpc *c, const uint8_t data[8])
{
	uint8_t f[MK_DERP_HDR_LEN + 8];

	return ctl_up(c, f, mk_derp_put_ping(f, data));
}

int
mk_derpc_note_preferred(struct mk_derpc *c, bool preferred)
{
	uint8_t f[MK_DERP_HDR_LEN + 1];

	return ctl_up(c, f, mk_derp_put_note_preferred(f, preferred));
}

int
mk_derpc_close_peer(struct mk_derpc *c, const struct mk_key *peer)
{
	uint8_t f[MK_DERP_HDR_LEN + 32];

	return ctl_up(c, f, mk_derp_put_close_peer(f, peer->b));
}

void
mk_derpc_get_stats(const struct mk_derpc *c, struct mk_derpc_stats *st)
{
	*st = c->stats;
}
