/* SPDX-License-Identifier: MIT */
#include "dnsfwd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns.h"
#include "dnsdoh.h"
#include "log.h"
#include "loop.h"
#include "util.h"

enum ast {
	A_NONE = 0,
	A_UDP,		/* sent over UDP, waiting */
	A_TCP,		/* again over TCP after a truncated answer */
	A_DOH,		/* an HTTPS request in flight */
	A_FAILED,
};

struct pending;

/* One TCP exchange with an upstream: write the framed query, read one. */
struct tcpq {
	struct pending	*p;
	size_t		 up;
	struct mk_io	 io;
	struct tcpq	*next_dead;
	bool		 dead;
	bool		 reading;
	size_t		 len;		/* to write, or to read */
	size_t		 off;
	uint8_t		 buf[2 + MK_DNS_MSG_MAX];
};

struct attempt {
	struct pending		*p;
	size_t			 up;
	enum ast		 st;
	uint64_t		 deadline_us;
	struct tcpq		*tcp;
	struct mk_doh_req	*doh;
};

struct pending {
	struct mk_dnsfwd	*f;
	struct pending		*prev, *next;
	uint16_t		 id;		/* upstream ID */
	uint16_t		 client_id;
	uint16_t		 limit;
	uint8_t			*q;	/* with the upstream ID */
	size_t			 qlen;
	mk_dnsfwd_fn		 fn;
	void			*arg;
	struct mk_timer		 timer;
	uint8_t			*soft;	/* SERVFAIL/REFUSED kept */
	size_t			 soft_len;
	int			 soft_up;
	uint8_t			*trunc;	/* a truncated UDP answer kept */
	size_t			 trunc_len;
	int			 trunc_up;
	uint64_t		 start_us;
	unsigned		 timeouts;
	struct attempt		 at[MK_DNSFWD_MAX_UPSTREAMS];
};

struct upsock {
	struct mk_dnsfwd	*f;
	size_t			 up;
	struct mk_io		 io;
};

struct mk_dnsfwd {
	struct mk_loop			*loop;
	struct mk_dnsfwd_upstream	 up[MK_DNSFWD_MAX_UPSTREAMS];
	struct upsock			 us[MK_DNSFWD_MAX_UPSTREAMS];
	size_t				 n_up;
	struct pending			*by_id[65536];
	struct pending			*list;
	size_t				 n_pending;
	size_t				 max_pending;
	uint64_t			 udp_us;
	uint64_t			 tcp_us;
	struct mk_doh			*doh;
	/* Closed TCP exchanges, freed once the loop's current batch of
	 * events (which may still name them) is done. */
	struct tcpq			*dead;
	struct mk_timer			 reaper;
	struct mk_dnsfwd_stats		 st;
	uint8_t				 rbuf[MK_DNS_MSG_MAX];
	uint8_t				 obuf[MK_DNS_MSG_MAX];
};

static void settle(struct pending *p);

/* ---- upstream specs ---- */

static int
parse_doh(struct mk_dnsfwd_upstream *u, const char *s, const char **why)
{
	const char *h = s + 8, *hend, *path, *colon;
	long long port = 443;
	char pbuf[8];
	size_t hl;

	if (strlen(s) >= sizeof(u->url)) {
		*why = "URL too long";
		return -1;
	}
	path = strchr(h, '/');
	if (path == NULL)
		path = h + strlen(h);
	if (*h == '[') {
		if ((hend = memchr(h, ']', (size_t)(path - h))) == NULL) {
			*why = "malformed URL";
			return -1;
		}
		h++;
		colon = hend[1] == ':' ? hend + 1 : NULL;
		if (colon == NULL && hend + 1 != path) {
			*why = "malformed URL";
			return -1;
		}
	} else {
		colon = memchr(h, ':', (size_t)(path - h));
		hend = colon != NULL ? colon : path;
	}
	hl = (size_t)(hend - h);
	if (hl == 0 || hl >= sizeof(u->host) || memchr(h, '@', hl) != NULL) {
		*why = "malformed URL";
		return -1;
	}
	if (colon != NULL) {
		if ((size_t)(path - colon - 1) >= sizeof(pbuf)) {
			*why = "bad port";
			return -1;
		}
		memcpy(pbuf, colon + 1, (size_t)(path - colon - 1));
		pbuf[path - colon - 1] = '\0';
		if (mk_strtonum(pbuf, 1, 65535, &port) != 0) {
			*why = "bad port";
			return -1;
		}
	}
	if (strpbrk(path, " \t\r\n?#") != NULL) {
		*why = "malformed URL";
		return -1;
	}
	memcpy(u->host, h, hl);
	u->host[hl] = '\0';
	u->port = (uint16_t)port;
	if (*path == '\0') {
		/* RFC 8484's example path; the URL with it spelled out. */
		if (strlen(s) + 10 >= sizeof(u->url)) {
			*why = "URL too long";
			return -1;
		}
		snprintf(u->url, sizeof(u->url), "%s/dns-query", s);
	} else
		snprintf(u->url, sizeof(u->url), "%s", s);
	u->kind = MK_DNSFWD_DOH;
	return 0;
}

int
mk_dnsfwd_upstream_parse(struct mk_dnsfwd_upstream *u, const char *s,
    const char **why)
{
	memset(u, 0, sizeof(*u));
	if (strncmp(s, "https://", 8) == 0)
		return parse_doh(u, s, why);
	if (strstr(s, "://") != NULL) {
		*why = "only https:// URLs (DNS over HTTPS)";
		return -1;
	}
	if (mk_addr_parse(&u->addr, s, 53, 0, why) != 0)
		return -1;
	if (mk_addr_port(&u->addr) == 0 || mk_addr_is_any(&u->addr)) {
		*why = "not a server address";
		return -1;
	}
	u->kind = MK_DNSFWD_DNS;
	return 0;
}

/* ---- pending queries ---- */

static bool
active(const struct attempt *a)
{
	return a->st == A_UDP || a->st == A_TCP || a->st == A_DOH;
}

static void
reap(struct mk_dnsfwd *f)
{
	struct tcpq *t;

	while ((t = f->dead) != NULL) {
		f->dead = t->next_dead;
		free(t);
	}
}

static void
on_reaper(struct mk_loop *l, struct mk_timer *tm)
{
	(void)l;
	reap(tm->arg);
}

static void
tcp_close(struct mk_dnsfwd *f, struct tcpq *t)
{
	mk_loop_del(f->loop, &t->io);
	close(t->io.fd);
	t->dead = true;
	t->next_dead = f->dead;
	f->dead = t;
	/* Timers run after the batch of events; if even this fails, the
	 * next tcp_close or mk_dnsfwd_free frees it. */
	if (!mk_timer_armed(&f->reaper))
		(void)mk_timer_in(f->loop, &f->reaper, 0);
}

static void
attempt_fail(struct pending *p, size_t i)
{
	struct attempt *a = &p->at[i];

	if (a->tcp != NULL) {
		tcp_close(p->f, a->tcp);
		a->tcp = NULL;
	}
	if (a->doh != NULL) {
		mk_doh_cancel(p->f->doh, a->doh);
		a->doh = NULL;
	}
	a->st = A_FAILED;
}

static void
pending_free(struct pending *p)
{
	struct mk_dnsfwd *f = p->f;
	size_t i;

	for (i = 0; i < f->n_up; i++)
		attempt_fail(p, i);
	mk_timer_cancel(f->loop, &p->timer);
	f->by_id[p->id] = NULL;
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		f->list = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	f->n_pending--;
	free(p->q);
	free(p->soft);
	free(p->trunc);
	free(p);
}

/* Pass resp (NULL: none) on with what became of p, then free p. */
static void
deliver(struct pending *p, const uint8_t *resp, size_t len,
    enum mk_dnsfwd_how how, int up, bool cut)
{
	struct mk_dnsfwd_result res;

	memset(&res, 0, sizeof(res));
	res.how = how;
	res.up = up;
	res.rcode = resp != NULL && len >= MK_DNS_HDR ? (resp[3] & 0x0f) : -1;
	res.cut = cut;
	res.timeouts = p->timeouts;
	res.elapsed_us = mk_now_us() - p->start_us;
	p->fn(p->arg, resp, len, &res);
	pending_free(p);
}

/* Hand the answer to the caller with the client's ID, cut to its size. */
static void
finish(struct pending *p, const uint8_t *r, size_t n, enum mk_dnsfwd_how how,
    int up)
{
	struct mk_dnsfwd *f = p->f;
	size_t len = n;

	memmove(f->obuf, r, n);
	mk_dns_set_id(f->obuf, p->client_id);
	if (mk_dns_fit(f->obuf, &len, sizeof(f->obuf), p->limit) != 0) {
		mk_dns_set_id(p->q, p->client_id);
		if (mk_dns_error(p->q, p->qlen, MK_DNS_SERVFAIL, f->obuf,
		    sizeof(f->obuf), &len) != 0)
			len = 0;
		how = MK_DNSFWD_FAILED;
	}
	deliver(p, len > 0 ? f->obuf : NULL, len, how, up, len < n &&
	    how != MK_DNSFWD_FAILED);
}

static void
finish_failed(struct pending *p)
{
	struct mk_dnsfwd *f = p->f;
	size_t len;

	/* A truncated answer beats none for a UDP client; over TCP it
	 * would only say "ask over TCP". */
	if (p->trunc != NULL && p->limit < MK_DNS_MSG_MAX) {
		f->st.truncated++;
		finish(p, p->trunc, p->trunc_len, MK_DNSFWD_TRUNCATED,
		    p->trunc_up);
		return;
	}
	if (p->soft != NULL) {
		f->st.answered++;
		finish(p, p->soft, p->soft_len, MK_DNSFWD_ANSWERED,
		    p->soft_up);
		return;
	}
	f->st.servfail++;
	mk_dns_set_id(p->q, p->client_id);
	if (mk_dns_error(p->q, p->qlen, MK_DNS_SERVFAIL, f->rbuf,
	    sizeof(f->rbuf), &len) != 0)
		len = 0;
	if (len > 0)
		finish(p, f->rbuf, len, MK_DNSFWD_FAILED, -1);
	else
		deliver(p, NULL, 0, MK_DNSFWD_FAILED, -1, false);
}

/* Done if no attempt is left; else wait for the next deadline. */
static void
settle(struct pending *p)
{
	uint64_t next = UINT64_MAX;
	size_t i;

	for (i = 0; i < p->f->n_up; i++)
		if (active(&p->at[i]) && p->at[i].deadline_us < next)
			next = p->at[i].deadline_us;
	if (next == UINT64_MAX) {
		finish_failed(p);
		return;
	}
	if (mk_timer_at(p->f->loop, &p->timer, next) != 0) {
		/* No memory for a timer: fail now rather than hang. */
		for (i = 0; i < p->f->n_up; i++)
			attempt_fail(p, i);
		finish_failed(p);
	}
}

static void
on_deadline(struct mk_loop *l, struct mk_timer *t)
{
	struct pending *p = t->arg;
	uint64_t now = mk_now_us();
	size_t i;

	(void)l;
	for (i = 0; i < p->f->n_up; i++) {
		if (active(&p->at[i]) && p->at[i].deadline_us <= now) {
			p->f->st.timeouts++;
			p->timeouts++;
			mk_debug("upstream %zu: no answer in time", i);
			attempt_fail(p, i);
		}
	}
	settle(p);
}

static int start_tcp(struct pending *p, size_t i);

/*
 * An answer from upstream i (r, n bytes; may point into memory freed with
 * p, so nothing of it is used after finish). via_stream: TCP or DoH, where
 * truncation means nothing more can be had and a mismatch ends the try.
 */
static void
handle_answer(struct pending *p, size_t i, const uint8_t *r, size_t n,
    bool via_stream)
{
	struct mk_dnsfwd *f = p->f;
	bool tc;
	int rc;

	rc = mk_dns_check_answer(p->q, p->qlen, r, n, &tc);
	if (rc < 0) {
		f->st.ignored++;
		if (via_stream) {
			attempt_fail(p, i);
			settle(p);
		}
		return;
	}
	if (tc && !via_stream && f->up[i].kind == MK_DNSFWD_DNS) {
		f->st.tcp_retries++;
		/* Kept in case TCP to it fails: see finish_failed. */
		if (p->trunc == NULL && (p->trunc = malloc(n)) != NULL) {
			memcpy(p->trunc, r, n);
			p->trunc_len = n;
			p->trunc_up = (int)i;
		}
		if (start_tcp(p, i) != 0)
			attempt_fail(p, i);
		settle(p);
		return;
	}
	if (rc == MK_DNS_SERVFAIL || rc == MK_DNS_REFUSED) {
		/* Another upstream may still know; keep this one's word. */
		if (p->soft == NULL && (p->soft = malloc(n)) != NULL) {
			memcpy(p->soft, r, n);
			p->soft_len = n;
			p->soft_up = (int)i;
		}
		attempt_fail(p, i);
		settle(p);
		return;
	}
	f->st.answered++;
	finish(p, r, n, MK_DNSFWD_ANSWERED, (int)i);
}

/* ---- UDP ---- */

/* An ICMP error on upstream i's socket: that server is not there. */
static void
udp_refused(struct mk_dnsfwd *f, size_t i)
{
	struct pending *p, *next;

	for (p = f->list; p != NULL; p = next) {
		next = p->next;
		if (p->at[i].st == A_UDP) {
			attempt_fail(p, i);
			/* settle may free p; next was taken before. */
			settle(p);
		}
	}
}

static void
on_udp(struct mk_loop *l, struct mk_io *io, uint32_t events)
{
	struct upsock *us = io->arg;
	struct mk_dnsfwd *f = us->f;
	struct pending *p;
	ssize_t n;
	int i;

	(void)l;
	(void)events;
	/* A bounded batch, so one busy upstream cannot starve the loop. */
	for (i = 0; i < 64; i++) {
		n = recv(io->fd, f->rbuf, sizeof(f->rbuf), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ECONNREFUSED || errno == EHOSTUNREACH ||
			    errno == ENETUNREACH) {
				mk_debug("upstream %zu: %s", us->up,
				    strerror(errno));
				udp_refused(f, us->up);
				continue;
			}
			return;
		}
		if (n < MK_DNS_HDR) {
			f->st.ignored++;
			continue;
		}
		p = f->by_id[mk_dns_id(f->rbuf)];
		if (p == NULL || p->at[us->up].st != A_UDP) {
			f->st.ignored++;
			continue;
		}
		handle_answer(p, us->up, f->rbuf, (size_t)n, false);
	}
}

static int
udp_send(struct mk_dnsfwd *f, size_t i, const uint8_t *q, size_t len)
{
	int tries;

	if (f->us[i].io.fd < 0)
		return -1;
	/* A pending ICMP error is reported (once) instead of sending. */
	for (tries = 0; tries < 2; tries++) {
		if (send(f->us[i].io.fd, q, len, 0) == (ssize_t)len)
			return 0;
		if (errno != ECONNREFUSED && errno != EINTR)
			break;
	}
	return -1;
}

/* ---- TCP ---- */

static void
tcp_fail(struct tcpq *t)
{
	struct pending *p = t->p;

	attempt_fail(p, t->up);
	settle(p);
}

static void
on_tcp(struct mk_loop *l, struct mk_io *io, uint32_t events)
{
	struct tcpq *t = io->arg;
	ssize_t n;
	size_t want;

	(void)events;
	if (t->dead)
		return;
	if (!t->reading) {
		n = send(io->fd, t->buf + t->off, t->len - t->off,
		    MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			tcp_fail(t);
			return;
		}
		t->off += (size_t)n;
		if (t->off < t->len)
			return;
		t->reading = true;
		t->off = 0;
		t->len = 0;
		if (mk_loop_mod(l, io, EPOLLIN) != 0)
			tcp_fail(t);
		return;
	}
	want = t->len != 0 ? t->len : 2;
	n = recv(io->fd, t->buf + t->off, want - t->off, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		tcp_fail(t);
		return;
	}
	t->off += (size_t)n;
	if (t->len == 0 && t->off == 2) {
		t->len = 2 + ((size_t)t->buf[0] << 8 | t->buf[1]);
		if (t->len < 2 + MK_DNS_HDR) {
			tcp_fail(t);
			return;
		}
	}
	if (t->len != 0 && t->off == t->len)
		handle_answer(t->p, t->up, t->buf + 2, t->len - 2, true);
}

static int
start_tcp(struct pending *p, size_t i)
{
	struct mk_dnsfwd *f = p->f;
	const struct mk_addr *a = &f->up[i].addr;
	struct tcpq *t;
	int fd;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return -1;
	fd = socket(mk_addr_family(a), SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd < 0) {
		free(t);
		return -1;
	}
	if (connect(fd, &a->sa, a->len) != 0 && errno != EINPROGRESS) {
		close(fd);
		free(t);
		return -1;
	}
	t->p = p;
	t->up = i;
	t->io.fd = fd;
	t->io.fn = on_tcp;
	t->io.arg = t;
	t->buf[0] = (uint8_t)(p->qlen >> 8);
	t->buf[1] = (uint8_t)p->qlen;
	memcpy(t->buf + 2, p->q, p->qlen);
	t->len = 2 + p->qlen;
	if (mk_loop_add(f->loop, &t->io, EPOLLOUT) != 0) {
		close(fd);
		free(t);
		return -1;
	}
	p->at[i].tcp = t;
	p->at[i].st = A_TCP;
	p->at[i].deadline_us = mk_now_us() + f->tcp_us;
	return 0;
}

/* ---- DNS over HTTPS ---- */

static void
on_doh(void *arg, int ok, const uint8_t *body, size_t len, const char *why)
{
	struct attempt *a = arg;
	struct pending *p = a->p;

	a->doh = NULL;	/* gone already */
	if (!ok) {
		mk_info("upstream %s: %s", p->f->up[a->up].url, why);
		attempt_fail(p, a->up);
		settle(p);
		return;
	}
	handle_answer(p, a->up, body, len, true);
}

static int
start_doh(struct pending *p, size_t i)
{
	struct mk_dnsfwd *f = p->f;
	struct mk_doh_req *r;

	/* RFC 8484 4.1: ID 0, so equal queries can share an HTTP cache. */
	memcpy(f->obuf, p->q, p->qlen);
	mk_dns_set_id(f->obuf, 0);
	r = mk_doh_post(f->doh, f->up[i].url, f->obuf, p->qlen,
	    f->tcp_us / 1000, on_doh, &p->at[i]);
	if (r == NULL)
		return -1;
	f->st.doh_sent++;
	p->at[i].doh = r;
	p->at[i].st = A_DOH;
	p->at[i].deadline_us = mk_now_us() + f->tcp_us;
	return 0;
}

/* ---- the forwarder ---- */

int
mk_dnsfwd_query(struct mk_dnsfwd *f, const uint8_t *q, size_t qlen,
    uint16_t limit, mk_dnsfwd_fn fn, void *arg)
{
	struct pending *p;
	uint64_t now;
	uint16_t id;
	size_t i;
	int tries;

	if (f->n_up == 0) {
		errno = ENOENT;
		return -1;
	}
	if (f->n_pending >= f->max_pending) {
		f->st.busy++;
		errno = EBUSY;
		return -1;
	}
	if (qlen < MK_DNS_HDR || qlen > MK_DNS_MSG_MAX) {
		errno = EINVAL;
		return -1;
	}
	/* A random free ID (the table is at most 1/16 full). */
	for (tries = 0; ; tries++) {
		id = (uint16_t)arc4random_uniform(65536);
		if (f->by_id[id] == NULL)
			break;
		if (tries == 1000) {
			errno = EBUSY;
			return -1;
		}
	}
	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (p->q = malloc(qlen)) == NULL) {
		free(p);
		errno = ENOMEM;
		return -1;
	}
	f->st.queries++;
	p->f = f;
	p->id = id;
	p->client_id = mk_dns_id(q);
	p->limit = limit;
	p->fn = fn;
	p->arg = arg;
	p->start_us = mk_now_us();
	memcpy(p->q, q, qlen);
	mk_dns_set_id(p->q, id);
	p->qlen = qlen;
	mk_timer_init(&p->timer, on_deadline, p);
	f->by_id[id] = p;
	p->next = f->list;
	if (f->list != NULL)
		f->list->prev = p;
	f->list = p;
	f->n_pending++;

	now = mk_now_us();
	for (i = 0; i < f->n_up; i++) {
		p->at[i].p = p;
		p->at[i].up = i;
		p->at[i].st = A_FAILED;
		if (f->up[i].kind == MK_DNSFWD_DOH) {
			if (start_doh(p, i) != 0)
				mk_info("upstream %s: cannot start a request",
				    f->up[i].url);
			continue;
		}
		if (udp_send(f, i, p->q, p->qlen) == 0) {
			p->at[i].st = A_UDP;
			p->at[i].deadline_us = now + f->udp_us;
		}
	}
	/* Nothing in flight: fail from the loop, never from in here. */
	for (i = 0; i < f->n_up && !active(&p->at[i]); i++)
		;
	if (i == f->n_up) {
		if (mk_timer_at(f->loop, &p->timer, now) != 0) {
			pending_free(p);
			errno = ENOMEM;
			return -1;
		}
		return 0;
	}
	settle(p);
	return 0;
}

static int
open_udp(struct mk_dnsfwd *f, size_t i)
{
	const struct mk_addr *a = &f->up[i].addr;
	int fd;

	fd = socket(mk_addr_family(a), SOCK_DGRAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* Connected: the kernel drops datagrams from anyone else, and an
	 * ICMP error says at once that the server is not there. */
	if (connect(fd, &a->sa, a->len) != 0) {
		close(fd);
		return -1;
	}
	f->us[i].f = f;
	f->us[i].up = i;
	f->us[i].io.fd = fd;
	f->us[i].io.fn = on_udp;
	f->us[i].io.arg = &f->us[i];
	if (mk_loop_add(f->loop, &f->us[i].io, EPOLLIN) != 0) {
		close(fd);
		f->us[i].io.fd = -1;
		return -1;
	}
	return 0;
}

int
mk_dnsfwd_new(struct mk_dnsfwd **out, struct mk_loop *l,
    const struct mk_dnsfwd_conf *c, const char **why)
{
	struct mk_dnsfwd *f;
	bool doh = false;
	size_t i;

	*out = NULL;
	if (c->n_up > MK_DNSFWD_MAX_UPSTREAMS) {
		*why = "too many upstreams";
		return -1;
	}
	if ((f = calloc(1, sizeof(*f))) == NULL) {
		*why = "out of memory";
		return -1;
	}
	f->loop = l;
	mk_timer_init(&f->reaper, on_reaper, f);
	f->udp_us = (c->udp_timeout_ms ? c->udp_timeout_ms :
	    MK_DNSFWD_UDP_TIMEOUT_MS) * 1000;
	f->tcp_us = (c->tcp_timeout_ms ? c->tcp_timeout_ms :
	    MK_DNSFWD_TCP_TIMEOUT_MS) * 1000;
	f->max_pending = c->max_pending ? c->max_pending :
	    MK_DNSFWD_MAX_PENDING;
	if (f->max_pending > 4096)
		f->max_pending = 4096;
	for (i = 0; i < MK_DNSFWD_MAX_UPSTREAMS; i++)
		f->us[i].io.fd = -1;
	for (i = 0; i < c->n_up; i++) {
		f->up[i] = c->up[i];
		f->n_up++;
		if (f->up[i].kind == MK_DNSFWD_DOH) {
			doh = true;
			continue;
		}
		/* An upstream of a family this host cannot reach (IPv6
		 * off, say) is not fatal: its attempts simply fail. */
		if (open_udp(f, i) != 0) {
			char a[MK_ADDRSTRLEN];

			mk_warn("upstream %s: %s; not used",
			    mk_addr_fmt(&f->up[i].addr, a, sizeof(a)),
			    strerror(errno));
		}
	}
	if (doh) {
		if (mk_doh_new(&f->doh, l, c->cafile, why) != 0)
			goto fail;
		for (i = 0; i < c->n_doh_resolve; i++)
			if (mk_doh_resolve(f->doh, c->doh_resolve[i]) != 0) {
				*why = "out of memory";
				goto fail;
			}
	}
	*out = f;
	return 0;
fail:
	mk_dnsfwd_free(f);
	return -1;
}

void
mk_dnsfwd_free(struct mk_dnsfwd *f)
{
	struct pending *p;
	size_t i;

	if (f == NULL)
		return;
	while ((p = f->list) != NULL)
		deliver(p, NULL, 0, MK_DNSFWD_GONE, -1, false);
	for (i = 0; i < MK_DNSFWD_MAX_UPSTREAMS; i++) {
		if (f->us[i].io.fd >= 0) {
			mk_loop_del(f->loop, &f->us[i].io);
			close(f->us[i].io.fd);
		}
	}
	mk_doh_free(f->doh);
	mk_timer_cancel(f->loop, &f->reaper);
	reap(f);
	free(f);
}

size_t
mk_dnsfwd_pending(const struct mk_dnsfwd *f)
{
	return f->n_pending;
}

const struct mk_dnsfwd_stats *
mk_dnsfwd_stats(const struct mk_dnsfwd *f)
{
	return &f->st;
}
