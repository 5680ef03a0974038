/* SPDX-License-Identifier: MIT */
/*
 * magicdns: the mesh's stub resolver on 100.100.100.100:53. Mesh names
 * (mesh.conf or a hosts file) are answered from memory; everything else
 * goes upstream (UDP, TCP, or DNS over HTTPS) without ever holding up a
 * local answer. Optionally points the system's resolv.conf at itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "dns.h"
#include "dnsacl.h"
#include "dnsfwd.h"
#include "dnsresolv.h"
#include "dnstab.h"
#include "hosts.h"
#include "cli.h"
#include "log.h"
#include "loop.h"
#include "meshconf.h"
#include "nladdr.h"
#include "sock.h"
#include "udpbatch.h"
#include "util.h"
#include "version.h"


#define SERVICE_V4	"100.100.100.100"
#define SERVICE_V6	"fd7a:115c:a1e0::53"
#define MAX_LISTEN	16
#define MAX_ALLOW	64
#define UDP_BATCH	32
/* The largest UDP query taken, and the largest UDP reply. */
#define UDP_BUF		4096
#define MAX_CONNS	256
#define CONN_PER_SOURCE	16	/* TCP connections one address may hold */
#define CONN_MAX_PENDING 32	/* forwarded queries per TCP connection */
#define CONN_WBUF_MAX	(256U << 10)
#define CONN_IDLE_US	(10ULL * 1000000)
/* A message must be whole this long after its first byte came: a byte
 * now and then does not keep a connection (and its slot) forever. */
#define CONN_MSG_US	(5ULL * 1000000)
#define RELOAD_DELAY_US	(100ULL * 1000)
#define LOCAL_REFRESH_US (10ULL * 1000000)
#define DEFAULT_RATE	200
#define UDP_RCVBUF	(4 << 20)	/* bursts wait here, not dropped */

struct opts {
	const char	*mesh;
	const char	*hosts;
	const char	*domain;
	const char	*listen[MAX_LISTEN];
	size_t		 n_listen;
	const char	*upstream[MK_DNSFWD_MAX_UPSTREAMS];
	size_t		 n_upstream;
	bool		 no_upstream;
	const char	*allow[MAX_ALLOW];
	size_t		 n_allow;
	const char	*cacert;
	const char	*user;
	const char	*resolv;
	const char	*state_dir;
	long long	 rate;
	bool		 install;
	bool		 uninstall;
};

struct server;

struct listener {
	struct server	*s;
	struct mk_addr	 addr;
	bool		 any;	/* wildcard: replies need pktinfo */
	int		 ufd;
	int		 tfd;
	struct mk_io	 uio;
	struct mk_io	 tio;
	bool		 added;	/* we put the address on lo */
};

/* A TCP client. Kept until its forwarded queries are answered, even if
 * the connection is gone, so their callbacks always find it. */
struct tconn {
	struct server	*s;
	struct tconn	*prev, *next;
	struct mk_io	 io;
	struct mk_addr	 peer;
	struct mk_timer	 idle;
	uint8_t		*rbuf;
	size_t		 rlen;
	size_t		 roff;		/* parsed up to here */
	uint64_t	 active_us;	/* last query taken or answer sent */
	uint64_t	 msg_start_us;	/* a message began; 0: none */
	uint8_t		*wbuf;
	size_t		 wlen;
	size_t		 woff;
	size_t		 wcap;
	unsigned	 pending;
	bool		 closed;
	bool		 eof;
	uint32_t	 events;
};

/* A forwarded query as its log line names it (qname empty unless -vv). */
struct fwdlog {
	struct mk_addr	 peer;
	uint16_t	 qtype;
	char		 qname[MK_DNS_QNAME_MAX + 2];
};

/* Where to send a forwarded UDP answer. */
struct udpfwd {
	struct listener	*li;
	struct fwdlog	 log;
	struct mk_udp_local src;	/* answer from here, if has_src */
	bool		 has_src;
};

/* A query forwarded for a TCP client. */
struct tcpfwd {
	struct tconn	*c;
	struct fwdlog	 log;
};

struct stats {
	uint64_t	queries;
	uint64_t	local;
	uint64_t	forwarded;
	uint64_t	errors;		/* FORMERR, NOTIMP, BADVERS */
	uint64_t	dropped;	/* unreadable, or a response */
	uint64_t	refused_acl;
	uint64_t	ratelimited;
	uint64_t	servfail_local;	/* no upstream, or too busy */
	uint64_t	tcp_conns;
	uint64_t	tcp_refused;	/* over the per-source or total cap */
	uint64_t	tcp_timeouts;	/* a message not whole in time */
	uint64_t	reloads;
};

struct server {
	const struct opts	*o;
	struct mk_loop		 loop;
	struct mk_dnstab	*tab;
	struct listener		 li[MAX_LISTEN];
	size_t			 n_li;
	struct mk_dnsfwd	*fwd;
	struct mk_dnsfwd_upstream up[MK_DNSFWD_MAX_UPSTREAMS];
	size_t			 n_up;
	char			 resolve[MK_DNSFWD_MAX_UPSTREAMS][320];
	const char		*resolve_p[MK_DNSFWD_MAX_UPSTREAMS];
	size_t			 n_resolve;
	struct mk_dnsacl	 acl;
	struct mk_ratelim	 rl;
	struct tconn		*conns;
	size_t			 n_conns;
	/* Closed connections, freed after the loop's current batch of
	 * events, which may still name them. */
	struct tconn		*dead;
	struct mk_timer		 reaper;
	int			 ino_fd;
	struct mk_io		 ino_io;
	struct mk_timer		 reload_timer;
	struct mk_timer		 local_timer;
	/* UDP queries in and answers out, one listener at a time */
	struct mk_udpbatch	 urx, utx;
	bool			 installed;
	char			 backup[PATH_MAX];
	struct stats		 st;
	uint8_t			 tbuf[MK_DNS_MSG_MAX];
};

static void
usage(FILE *f)
{
	fprintf(f,
"usage: magicdns [-qv] [-a cidr] [-c mesh.conf] [-d domain] [-H hosts]\n"
"                [-l addr[:port]] [-u upstream] [--cacert file] [--install]\n"
"                [--rate n] [--resolv-conf file] [--state-dir dir]\n"
"                [--user user]\n"
"       magicdns --uninstall [-qv] [--resolv-conf file] [--state-dir dir]\n");
}

/* ---- the name table ---- */

/*
 * A fresh table from the files. The domain: --domain, else mesh.conf's.
 * 0, or -1 with the reason in err.
 */
static int
load_table(const struct opts *o, struct mk_dnstab **out, char *err,
    size_t errlen)
{
	struct mk_dnstab *t;
	struct mk_mesh m;
	struct mk_hosts h;
	const char *why, *domain = o->domain;
	unsigned line = 0;
	int rc = -1;

	memset(&m, 0, sizeof(m));
	memset(&h, 0, sizeof(h));
	if ((t = malloc(sizeof(*t))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	mk_dnstab_init(t, (uint32_t)time(NULL));
	if (o->mesh != NULL && mk_mesh_load(&m, o->mesh, err, errlen) != 0)
		goto out;
	if (o->hosts != NULL && mk_hosts_load(&h, o->hosts, err, errlen) != 0)
		goto out;
	if (domain == NULL && m.domain[0] != '\0')
		domain = m.domain;
	if (domain != NULL && mk_dnstab_set_domain(t, domain, &why) != 0) {
		snprintf(err, errlen, "domain %s: %s", domain, why);
		goto out;
	}
	if (mk_dnstab_add_mesh(t, &m, &why) != 0) {
		snprintf(err, errlen, "%s: %s", o->mesh, why);
		goto out;
	}
	if (mk_dnstab_add_hosts(t, &h, &line, &why) != 0) {
		snprintf(err, errlen, "%s:%u: %s", o->hosts, line, why);
		goto out;
	}
	*out = t;
	t = NULL;
	rc = 0;
out:
	mk_mesh_free(&m);
	mk_hosts_free(&h);
	if (t != NULL) {
		mk_dnstab_free(t);
		free(t);
	}
	return rc;
}

static void
reload(struct server *s, const char *why)
{
	struct mk_dnstab *t;
	char err[512];

	if (load_table(s->o, &t, err, sizeof(err)) != 0) {
		mk_err("reload (%s) failed, keeping the old names: %s", why,
		    err);
		return;
	}
	mk_dnstab_free(s->tab);
	free(s->tab);
	s->tab = t;
	s->st.reloads++;
	mk_warn("reloaded (%s): %zu names%s%s", why, t->n_recs,
	    t->domain_len ? " in " : "", t->domain);
}

static void
on_reload_timer(struct mk_loop *l, struct mk_timer *t)
{
	(void)l;
	reload(t->arg, "file changed");
}

/* Is name (an inotify event's) one of our files in that directory? */
static bool
watched_name(const struct opts *o, const char *name)
{
	const char *files[2] = { o->mesh, o->hosts };
	char tmp[PATH_MAX];
	size_t i;

	for (i = 0; i < 2; i++) {
		if (files[i] == NULL)
			continue;
		snprintf(tmp, sizeof(tmp), "%s", files[i]);
		if (strcmp(basename(tmp), name) == 0)
			return true;
	}
	return false;
}

static void
on_inotify(struct mk_loop *l, struct mk_io *io, uint32_t events)
{
	struct server *s = io->arg;
	char buf[4096]
	    __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	bool hit = false;
	ssize_t n;
	char *p;

	(void)events;
	while ((n = read(io->fd, buf, sizeof(buf))) > 0) {
		for (p = buf; p < buf + n; p += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)p;
			if (ev->len > 0 && watched_name(s->o, ev->name))
				hit = true;
		}
	}
	/* Editors write in steps; wait for the file to settle. */
	if (hit && mk_timer_in(l, &s->reload_timer, RELOAD_DELAY_US) != 0)
		reload(s, "file changed");
}

/* Watch the directories, so a file replaced by rename is seen too. */
static void
watch_files(struct server *s)
{
	const char *files[2] = { s->o->mesh, s->o->hosts };
	char tmp[PATH_MAX];
	size_t i;

	s->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (s->ino_fd < 0) {
		mk_warn("inotify: %s (reload with SIGHUP)", strerror(errno));
		return;
	}
	for (i = 0; i < 2; i++) {
		if (files[i] == NULL)
			continue;
		snprintf(tmp, sizeof(tmp), "%s", files[i]);
		if (inotify_add_watch(s->ino_fd, dirname(tmp), IN_CLOSE_WRITE |
		    IN_MOVED_TO | IN_CREATE | IN_DELETE) < 0)
			mk_warn("inotify %s: %s (reload with SIGHUP)", tmp,
			    strerror(errno));
	}
	s->ino_io.fd = s->ino_fd;
	s->ino_io.fn = on_inotify;
	s->ino_io.arg = s;
	if (mk_loop_add(&s->loop, &s->ino_io, EPOLLIN) != 0) {
		close(s->ino_fd);
		s->ino_fd = -1;
	}
}

/* ---- queries ---- */

/* Not an open resolver: who may ask. */
static bool
allowed(struct server *s, const struct mk_addr *peer)
{
	char a[MK_ADDRSTRLEN];

	if (mk_dnsacl_allowed(&s->acl, peer))
		return true;
	s->st.refused_acl++;
	if (mk_log_level() >= MK_LOG_DEBUG)
		mk_debug("%s: dropped: not an allowed source",
		    mk_addr_fmt(peer, a, sizeof(a)));
	return false;
}

/*
 * And how fast, over UDP and TCP alike. This host's own queries cannot
 * be forged from outside and are never limited.
 */
static bool
within_rate(struct server *s, const struct mk_addr *peer, bool tcp)
{
	char a[MK_ADDRSTRLEN];

	if (mk_dnsacl_is_local(&s->acl, peer) ||
	    mk_ratelim_take(&s->rl, peer, mk_now_us()))
		return true;
	s->st.ratelimited++;
	if (mk_log_level() >= MK_LOG_DEBUG)
		mk_debug("%s: dropped by the rate limit%s",
		    mk_addr_fmt(peer, a, sizeof(a)),
		    tcp ? "; connection closed" : "");
	return false;
}

static bool
admit(struct server *s, const struct mk_addr *peer)
{
	return allowed(s, peer) && within_rate(s, peer, false);
}

static void
log_query(const struct mk_addr *peer, const struct mk_dns_qinfo *qi,
    const char *what)
{
	char a[MK_ADDRSTRLEN], t[16];

	if (mk_log_level() < MK_LOG_DEBUG)
		return;
	mk_debug("%s %s %s: %s%s%s", mk_addr_fmt(peer, a, sizeof(a)),
	    qi->qname[0] ? qi->qname : ".",
	    mk_dns_type_str(qi->qtype, t, sizeof(t)), what,
	    qi->rcode >= 0 ? " " : "",
	    qi->rcode >= 0 ? mk_dns_rcode_str(qi->rcode) : "");
}

/*
 * Decide one query. Returns the action; a reply is in out. When the query
 * must go upstream, the caller forwards it with qi->limit.
 */
static enum mk_dns_action
handle(struct server *s, const struct mk_addr *peer, const uint8_t *q,
    size_t qlen, bool tcp, uint8_t *out, size_t cap, size_t *outlen,
    struct mk_dns_qinfo *qi)
{
	enum mk_dns_action act;

	s->st.queries++;
	act = mk_dns_respond(q, qlen, s->tab, tcp ? MK_DNS_TCP : 0, out, cap,
	    outlen, qi);
	switch (act) {
	case MK_DNS_REPLY:
		if (qi->local) {
			s->st.local++;
			log_query(peer, qi, "local");
		} else {
			s->st.errors++;
			log_query(peer, qi, "error");
		}
		break;
	case MK_DNS_FORWARD:
		s->st.forwarded++;
		log_query(peer, qi, "forward");
		break;
	default:
		s->st.dropped++;
		break;
	}
	return act;
}

static void
fwdlog_set(struct fwdlog *fl, const struct mk_addr *peer,
    const struct mk_dns_qinfo *qi)
{
	fl->peer = *peer;
	fl->qtype = qi->qtype;
	fl->qname[0] = '\0';
	if (mk_log_level() >= MK_LOG_DEBUG)
		memcpy(fl->qname, qi->qname, strlen(qi->qname) + 1);
}

static const char *
upstream_name(const struct server *s, int i, char *buf, size_t len)
{
	if (i < 0 || (size_t)i >= s->n_up)
		return "?";
	if (s->up[i].kind == MK_DNSFWD_DOH)
		return s->up[i].url;
	return mk_addr_fmt(&s->up[i].addr, buf, len);
}

/* -vv: what became of a forwarded query. */
static void
log_forwarded(const struct server *s, const struct fwdlog *fl,
    const struct mk_dnsfwd_result *r)
{
	char a[MK_ADDRSTRLEN], u[MK_DNSFWD_URL_MAX], t[16], to[48];
	unsigned long long ms = (unsigned long long)(r->elapsed_us / 1000);
	const char *rc = r->rcode >= 0 ? mk_dns_rcode_str(r->rcode) : "";

	if (mk_log_level() < MK_LOG_DEBUG)
		return;
	mk_addr_fmt(&fl->peer, a, sizeof(a));
	mk_dns_type_str(fl->qtype, t, sizeof(t));
	to[0] = '\0';
	if (r->timeouts > 0)
		snprintf(to, sizeof(to), "; %u upstream%s timed out",
		    r->timeouts, r->timeouts == 1 ? "" : "s");
	switch (r->how) {
	case MK_DNSFWD_ANSWERED:
		mk_debug("%s %s %s: answered by %s: %s in %llu ms%s%s", a,
		    fl->qname[0] ? fl->qname : ".", t,
		    upstream_name(s, r->up, u, sizeof(u)), rc, ms,
		    r->cut ? "; truncated to fit the client (TC)" : "", to);
		break;
	case MK_DNSFWD_TRUNCATED:
		mk_debug("%s %s %s: truncated answer from %s passed on (no "
		    "answer over TCP): %s in %llu ms%s", a,
		    fl->qname[0] ? fl->qname : ".", t,
		    upstream_name(s, r->up, u, sizeof(u)), rc, ms, to);
		break;
	case MK_DNSFWD_FAILED:
		mk_debug("%s %s %s: no upstream answered: SERVFAIL in %llu "
		    "ms%s", a, fl->qname[0] ? fl->qname : ".", t, ms, to);
		break;
	default:
		mk_debug("%s %s %s: dropped: shutting down", a,
		    fl->qname[0] ? fl->qname : ".", t);
		break;
	}
}

/* SERVFAIL of our own, when a query cannot even go upstream. */
static bool
local_servfail(struct server *s, const uint8_t *q, size_t qlen,
    uint8_t *out, size_t cap, size_t *outlen)
{
	s->st.servfail_local++;
	return mk_dns_error(q, qlen, MK_DNS_SERVFAIL, out, cap, outlen) == 0;
}

/* ---- UDP ---- */

/* An answer to peer, from src when the listener is a wildcard (NULL:
 * the socket's own address). */
static void
udp_send(struct listener *li, const struct mk_addr *peer,
    const struct mk_udp_local *src, const uint8_t *buf, size_t len)
{
	if (mk_udp_send_from(li->ufd, buf, len, peer, src) < 0)
		mk_debug("send: %s", strerror(errno));
}

static void
udp_forwarded(void *arg, const uint8_t *resp, size_t len,
    const struct mk_dnsfwd_result *r)
{
	struct udpfwd *u = arg;

	log_forwarded(u->li->s, &u->log, r);
	if (resp != NULL)
		udp_send(u->li, &u->log.peer, u->has_src ? &u->src : NULL,
		    resp, len);
	free(u);
}

/* -vv: a query that could not go upstream at all. */
static void
log_not_forwarded(const struct mk_addr *peer, const struct mk_dns_qinfo *qi,
    int err)
{
	log_query(peer, qi, err == EBUSY ? "too many queries upstream: "
	    "SERVFAIL" : err == ENOENT ? "no upstream: SERVFAIL" :
	    "cannot forward: SERVFAIL");
}

/* Send q upstream; its answer leaves later, from src as ours do. */
static void
forward_udp(struct server *s, struct listener *li, const struct mk_addr *peer,
    const struct mk_udp_local *src, const uint8_t *q, size_t qlen,
    const struct mk_dns_qinfo *qi)
{
	struct udpfwd *u;
	uint8_t out[UDP_BUF];
	size_t olen;
	int err = ENOMEM;

	if ((u = malloc(sizeof(*u))) != NULL) {
		u->li = li;
		fwdlog_set(&u->log, peer, qi);
		u->has_src = src != NULL;
		if (src != NULL)
			u->src = *src;
		if (mk_dnsfwd_query(s->fwd, q, qlen, qi->limit,
		    udp_forwarded, u) == 0)
			return;
		err = errno;
		free(u);
	}
	log_not_forwarded(peer, qi, err);
	if (local_servfail(s, q, qlen, out, sizeof(out), &olen))
		udp_send(li, peer, src, out, olen);
}

/*
 * Answer one batch of queries on li: local answers go into the send
 * batch, written in place, and leave together; a wildcard listener
 * answers each from the address it was asked at.
 */
static int
udp_batch(struct server *s, struct listener *li)
{
	struct mk_udpbatch *rx = &s->urx, *tx = &s->utx;
	struct mk_udpbatch_sent st;
	struct mk_udp_local loc;
	const struct mk_udp_local *src;
	struct mk_dns_qinfo qi;
	enum mk_dns_action act;
	struct mk_addr peer;
	size_t len, olen;
	uint8_t *q, *out;
	bool trunc;
	int n, i;

	if ((n = mk_udpbatch_recv(rx, li->ufd)) <= 0)
		return n;
	for (i = 0; i < n; i++) {
		q = mk_udpbatch_get(rx, (unsigned)i, &len, &peer, &trunc);
		if (!admit(s, &peer))
			continue;
		if (trunc) {
			s->st.dropped++;
			continue;
		}
		src = li->any && mk_udpbatch_local(rx, (unsigned)i, &loc) ?
		    &loc : NULL;
		/* never NULL: tx holds as many as rx and is sent each time */
		out = mk_udpbatch_next(tx);
		act = handle(s, &peer, q, len, false, out, tx->size, &olen,
		    &qi);
		if (act == MK_DNS_FORWARD)
			forward_udp(s, li, &peer, src, q, len, &qi);
		if (act != MK_DNS_REPLY)
			continue;
		mk_udpbatch_push(tx, olen, &peer);
		if (src != NULL)
			(void)mk_udpbatch_set_src(tx, src);
	}
	/* One that fails is skipped, not retried. */
	mk_udpbatch_flush(tx, li->ufd, &st);
	if (st.dropped > 0)
		mk_debug("sendmmsg: %u answers dropped: %s", st.dropped,
		    strerror(st.last_errno));
	return n;
}

static void
on_udp(struct mk_loop *l, struct mk_io *io, uint32_t events)
{
	struct listener *li = io->arg;
	int rounds;

	(void)l;
	(void)events;
	/* A few batches, then back to the loop so TCP and upstream
	 * answers get their turn. */
	for (rounds = 0; rounds < 4; rounds++)
		if (udp_batch(li->s, li) < UDP_BATCH)
			return;
}

/* ---- TCP ---- */

static void conn_close(struct tconn *c);
static bool conn_parse(struct tconn *c);

static void
conn_free(struct tconn *c)
{
	free(c->rbuf);
	free(c->wbuf);
	free(c);
}

static void
reap_conns(struct server *s)
{
	struct tconn *c;

	while ((c = s->dead) != NULL) {
		s->dead = c->next;
		conn_free(c);
	}
}

static void
on_reaper(struct mk_loop *l, struct mk_timer *t)
{
	(void)l;
	reap_conns(t->arg);
}

/* A closed connection with nothing pending: free it soon. */
static void
conn_bury(struct tconn *c)
{
	struct server *s = c->s;

	c->next = s->dead;
	s->dead = c;
	if (!mk_timer_armed(&s->reaper))
		(void)mk_timer_in(&s->loop, &s->reaper, 0);
}

/* Length of the whole message at the parse position, or 0 if not whole. */
static size_t
conn_msg(const struct tconn *c)
{
	size_t left = c->rlen - c->roff, mlen;

	if (left < 2)
		return 0;
	mlen = (size_t)c->rbuf[c->roff] << 8 | c->rbuf[c->roff + 1];
	return left >= 2 + mlen ? 2 + mlen : 0;
}

static void
conn_events(struct tconn *c)
{
	uint32_t ev = 0;

	/* Read only when there is room to act on what comes: below the cap
	 * of pending queries, and nothing whole left unparsed. */
	if (!c->eof && c->pending < CONN_MAX_PENDING && conn_msg(c) == 0 &&
	    c->rlen < 2 + MK_DNS_MSG_MAX && c->wlen - c->woff <
	    CONN_WBUF_MAX / 2)
		ev |= EPOLLIN;
	if (c->woff < c->wlen)
		ev |= EPOLLOUT;
	if (ev != c->events && mk_loop_mod(&c->s->loop, &c->io, ev) == 0)
		c->events = ev;
}

/*
 * The one timer of a connection: a message begun must be whole within
 * CONN_MSG_US of its first byte; otherwise it may sit idle CONN_IDLE_US
 * after its last query or answer.
 */
static void
conn_timer(struct tconn *c)
{
	uint64_t at = c->msg_start_us != 0 ? c->msg_start_us + CONN_MSG_US :
	    c->active_us + CONN_IDLE_US;

	if (mk_timer_at(&c->s->loop, &c->idle, at) != 0)
		conn_close(c);
}

/* Write what is buffered; false if the connection was closed. */
static bool
conn_flush(struct tconn *c)
{
	ssize_t n;

	while (c->woff < c->wlen) {
		n = send(c->io.fd, c->wbuf + c->woff, c->wlen - c->woff,
		    MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			conn_close(c);
			return false;
		}
		c->woff += (size_t)n;
	}
	if (c->woff == c->wlen)
		c->woff = c->wlen = 0;
	/* Done once it said all it will, and all of it is answered. */
	if (c->eof && c->pending == 0 && c->wlen == 0 && conn_msg(c) == 0) {
		conn_close(c);
		return false;
	}
	conn_events(c);
	return true;
}

/* Queue one framed message and try to send it. */
static bool
conn_reply(struct tconn *c, const uint8_t *msg, size_t len)
{
	uint8_t *nb;
	size_t need = c->wlen + 2 + len, cap;

	if (need > CONN_WBUF_MAX) {
		/* A client that does not read: cut it off. */
		conn_close(c);
		return false;
	}
	if (need > c->wcap) {
		cap = c->wcap ? c->wcap : 4096;
		while (cap < need)
			cap *= 2;
		if ((nb = realloc(c->wbuf, cap)) == NULL) {
			conn_close(c);
			return false;
		}
		c->wbuf = nb;
		c->wcap = cap;
	}
	c->wbuf[c->wlen] = (uint8_t)(len >> 8);
	c->wbuf[c->wlen + 1] = (uint8_t)len;
	memcpy(c->wbuf + c->wlen + 2, msg, len);
	c->wlen += 2 + len;
	c->active_us = mk_now_us();
	return conn_flush(c);
}

static void
tcp_forwarded(void *arg, const uint8_t *resp, size_t len,
    const struct mk_dnsfwd_result *r)
{
	struct tcpfwd *tf = arg;
	struct tconn *c = tf->c;

	log_forwarded(c->s, &tf->log, r);
	free(tf);
	c->pending--;
	if (c->closed) {
		if (c->pending == 0)
			conn_bury(c);
		return;
	}
	if (r->how == MK_DNSFWD_GONE)
		return;		/* shutting down: no new queries now */
	if (resp != NULL ? !conn_reply(c, resp, len) : !conn_flush(c))
		return;
	/* Room again: what waited in the buffer goes now (the socket may
	 * have nothing more to say, so EPOLLIN alone would not). */
	if (conn_msg(c) != 0 && conn_parse(c))
		conn_timer(c);
}

/* One whole message from a TCP client; false if the connection closed. */
static bool
conn_query(struct tconn *c, const uint8_t *q, size_t qlen)
{
	struct server *s = c->s;
	struct mk_dns_qinfo qi;
	enum mk_dns_action act;
	struct tcpfwd *tf;
	size_t olen;
	int err = ENOMEM;

	/* Over its rate: this source's stream ends here (it is no
	 * forgery; cutting it off also frees its slot). */
	if (!within_rate(s, &c->peer, true)) {
		conn_close(c);
		return false;
	}
	act = handle(s, &c->peer, q, qlen, true, s->tbuf, sizeof(s->tbuf),
	    &olen, &qi);
	switch (act) {
	case MK_DNS_REPLY:
		return conn_reply(c, s->tbuf, olen);
	case MK_DNS_FORWARD:
		if ((tf = malloc(sizeof(*tf))) != NULL) {
			tf->c = c;
			fwdlog_set(&tf->log, &c->peer, &qi);
			if (mk_dnsfwd_query(s->fwd, q, qlen, qi.limit,
			    tcp_forwarded, tf) == 0) {
				c->pending++;
				return true;
			}
			err = errno;
			free(tf);
		}
		log_not_forwarded(&c->peer, &qi, err);
		if (!local_servfail(s, q, qlen, s->tbuf, sizeof(s->tbuf),
		    &olen))
			return true;
		return conn_reply(c, s->tbuf, olen);
	default:
		/* Not a query: whoever this is, stop talking to it. */
		conn_close(c);
		return false;
	}
}

/*
 * Take the whole messages in the buffer, up to the cap of pending
 * queries; the rest wait there until answers make room (tcp_forwarded).
 * False if the connection was closed.
 */
static bool
conn_parse(struct tconn *c)
{
	size_t m;

	while (c->pending < CONN_MAX_PENDING && (m = conn_msg(c)) != 0) {
		c->roff += m;
		c->active_us = mk_now_us();
		/* The message stays where it is until the loop is done. */
		if (!conn_query(c, c->rbuf + c->roff - m + 2, m - 2))
			return false;
	}
	memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
	c->rlen -= c->roff;
	c->roff = 0;
	/* A message begun and not whole: its deadline runs from now, or
	 * from when it began. */
	if (c->rlen > 0 && conn_msg(c) == 0) {
		if (c->msg_start_us == 0)
			c->msg_start_us = mk_now_us();
	} else
		c->msg_start_us = 0;
	if (c->eof)
		return conn_flush(c);
	conn_events(c);
	return true;
}

static void
on_conn(struct mk_loop *l, struct mk_io *io, uint32_t events)
{
	struct tconn *c = io->arg;
	size_t cap = 2 + MK_DNS_MSG_MAX;
	ssize_t n;

	(void)l;
	if (c->closed)
		return;
	/* Both ways shut or reset: nothing more can be said to it. */
	if (events & (EPOLLHUP | EPOLLERR)) {
		conn_close(c);
		return;
	}
	if ((events & EPOLLOUT) && !conn_flush(c))
		return;
	if (!(events & EPOLLIN) || c->eof || c->rlen == cap ||
	    !(c->events & EPOLLIN))
		return;
	n = recv(io->fd, c->rbuf + c->rlen, cap - c->rlen, 0);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			conn_close(c);
		return;
	}
	if (n == 0) {
		/* The client is done sending; answer what it asked, then
		 * close. A message it left unfinished never will be. */
		c->eof = true;
		c->msg_start_us = 0;
		if (conn_msg(c) == 0)
			c->rlen = 0;
		conn_flush(c);
		return;
	}
	c->rlen += (size_t)n;
	if (conn_parse(c))
		conn_timer(c);
}

static void
on_idle(struct mk_loop *l, struct mk_timer *t)
{
	struct tconn *c = t->arg;
	uint64_t now = mk_now_us();
	char a[MK_ADDRSTRLEN];

	(void)l;
	if (c->msg_start_us != 0 && now >= c->msg_start_us + CONN_MSG_US) {
		c->s->st.tcp_timeouts++;
		if (mk_log_level() >= MK_LOG_DEBUG)
			mk_debug("%s: tcp: a message not whole in %llu s; "
			    "closed", mk_addr_fmt(&c->peer, a, sizeof(a)),
			    (unsigned long long)(CONN_MSG_US / 1000000));
		conn_close(c);
		return;
	}
	/* Waiting on us (upstream, or a client slow to read) is not idle. */
	if (c->pending > 0 || c->wlen > 0)
		c->active_us = now;
	else if (c->msg_start_us == 0 && now >= c->active_us + CONN_IDLE_US) {
		conn_close(c);
		return;
	}
	conn_timer(c);
}

static void
conn_close(struct tconn *c)
{
	struct server *s = c->s;

	if (c->closed)
		return;
	mk_timer_cancel(&s->loop, &c->idle);
	mk_loop_del(&s->loop, &c->io);
	close(c->io.fd);
	c->io.fd = -1;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	s->n_conns--;
	c->closed = true;
	c->prev = c->next = NULL;
	if (c->pending == 0)
		conn_bury(c);
}

/* May peer have one more connection? Not past the total, nor past its
 * share: one source must not hold every slot. */
static bool
conn_room(struct server *s, const struct mk_addr *peer)
{
	const struct tconn *c;
	char a[MK_ADDRSTRLEN];
	unsigned n = 0;

	if (s->n_conns >= MAX_CONNS) {
		s->st.tcp_refused++;
		mk_debug("tcp: %d connections already; %s refused", MAX_CONNS,
		    mk_addr_fmt(peer, a, sizeof(a)));
		return false;
	}
	for (c = s->conns; c != NULL; c = c->next)
		if (mk_addr_same_ip(&c->peer, peer) && ++n >= CONN_PER_SOURCE) {
			s->st.tcp_refused++;
			if (mk_log_level() >= MK_LOG_DEBUG)
				mk_debug("%s: tcp: %d connections from it "
				    "already; refused", mk_addr_fmt(peer, a,
				    sizeof(a)), CONN_PER_SOURCE);
			return false;
		}
	return true;
}

static void
on_accept(struct mk_loop *l, struct mk_io *io, uint32_t events)
{
	struct listener *li = io->arg;
	struct server *s = li->s;
	struct sockaddr_storage ss;
	socklen_t sl;
	struct tconn *c;
	struct mk_addr peer;
	int fd, i;

	(void)events;
	for (i = 0; i < 16; i++) {
		sl = sizeof(ss);
		fd = accept4(io->fd, (struct sockaddr *)&ss, &sl,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		mk_addr_from_sa(&peer, (struct sockaddr *)&ss, sl);
		if (!allowed(s, &peer) || !conn_room(s, &peer) ||
		    (c = calloc(1, sizeof(*c))) == NULL) {
			close(fd);
			continue;
		}
		if ((c->rbuf = malloc(2 + MK_DNS_MSG_MAX)) == NULL) {
			free(c);
			close(fd);
			continue;
		}
		c->s = s;
		c->peer = peer;
		c->io.fd = fd;
		c->io.fn = on_conn;
		c->io.arg = c;
		c->events = EPOLLIN;
		c->active_us = mk_now_us();
		mk_timer_init(&c->idle, on_idle, c);
		if (mk_loop_add(l, &c->io, EPOLLIN) != 0 ||
		    mk_timer_in(l, &c->idle, CONN_IDLE_US) != 0) {
			mk_loop_del(l, &c->io);
			close(fd);
			conn_free(c);
			continue;
		}
		c->next = s->conns;
		if (s->conns != NULL)
			s->conns->prev = c;
		s->conns = c;
		s->n_conns++;
		s->st.tcp_conns++;
	}
}

/* ---- listeners ---- */

static bool
is_service_addr(const struct mk_addr *a)
{
	struct mk_addr v4, v6;
	const char *why;

	if (mk_addr_parse(&v4, SERVICE_V4, 0, 0, &why) != 0 ||
	    mk_addr_parse(&v6, SERVICE_V6, 0, 0, &why) != 0)
		return false;
	return mk_addr_same_ip(a, &v4) || mk_addr_same_ip(a, &v6);
}

static int
bind_one(const struct mk_addr *a, int type, bool any, const char **why)
{
	int fd, on = 1, family = mk_addr_family(a), saved;

	fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*why = "socket";
		return -1;
	}
	if (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY,
	    &on, sizeof(on)) != 0) {
		*why = "setsockopt IPV6_V6ONLY";
		goto fail;
	}
	if (type == SOCK_STREAM && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR,
	    &on, sizeof(on)) != 0) {
		*why = "setsockopt SO_REUSEADDR";
		goto fail;
	}
	if (any && type == SOCK_DGRAM && mk_udp_want_pktinfo(fd) != 0) {
		*why = "setsockopt PKTINFO";
		goto fail;
	}
	if (type == SOCK_DGRAM) {
		int sz = UDP_RCVBUF;

		/* Past net.core.rmem_max only with CAP_NET_ADMIN; else the
		 * most the system allows. */
		if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz,
		    sizeof(sz)) != 0)
			(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz,
			    sizeof(sz));
	}
	if (bind(fd, &a->sa, a->len) != 0) {
		*why = "bind";
		goto fail;
	}
	if (type == SOCK_STREAM && listen(fd, SOMAXCONN) != 0) {
		*why = "listen";
		goto fail;
	}
	return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

/*
 * Port 0: TCP takes the port UDP got. That port may already be in use for
 * TCP (the two port spaces are separate), so on EADDRINUSE take a new UDP
 * port and try again, a bounded number of times.
 */
static int
open_tcp_same_port(struct listener *li)
{
	struct mk_addr want = li->addr, bound;
	const char *why = "bind";
	char a[MK_ADDRSTRLEN];
	int tries;

	for (tries = 0; tries < 16; tries++) {
		if (tries > 0) {
			close(li->ufd);
			li->ufd = bind_one(&want, SOCK_DGRAM, li->any, &why);
			if (li->ufd < 0)
				break;
		}
		if (mk_sock_local(li->ufd, &bound) != 0)
			break;
		li->addr = bound;
		li->tfd = bind_one(&li->addr, SOCK_STREAM, li->any, &why);
		if (li->tfd >= 0)
			return 0;
		if (errno != EADDRINUSE)
			break;
	}
	mk_err("%s tcp %s: %s", why, mk_addr_fmt(&li->addr, a, sizeof(a)),
	    strerror(errno));
	return -1;
}

/*
 * Bind UDP and TCP on li->addr. The service address, when no interface
 * has it, is first added to lo (and taken away again on exit).
 */
static int
open_listener(struct listener *li)
{
	const char *why;
	char a[MK_ADDRSTRLEN];
	int r, lo;

	li->any = mk_addr_is_any(&li->addr);
	li->ufd = bind_one(&li->addr, SOCK_DGRAM, li->any, &why);
	if (li->ufd < 0 && errno == EADDRNOTAVAIL &&
	    is_service_addr(&li->addr)) {
		lo = (int)if_nametoindex("lo");
		r = lo == 0 ? -1 : mk_nladdr_add(lo, &li->addr,
		    mk_addr_family(&li->addr) == AF_INET ? 32 : 128, &why);
		if (r < 0) {
			mk_err("cannot add %s to lo: %s: %s",
			    mk_addr_fmt_ip(&li->addr, a, sizeof(a)),
			    lo == 0 ? "no lo" : why, strerror(errno));
			return -1;
		}
		li->added = r == 1;
		if (li->added)
			mk_info("added %s to lo", mk_addr_fmt_ip(&li->addr, a,
			    sizeof(a)));
		li->ufd = bind_one(&li->addr, SOCK_DGRAM, li->any, &why);
	}
	if (li->ufd < 0) {
		mk_err("%s udp %s: %s", why, mk_addr_fmt(&li->addr, a,
		    sizeof(a)), strerror(errno));
		return -1;
	}
	if (mk_addr_port(&li->addr) == 0)
		return open_tcp_same_port(li);
	li->tfd = bind_one(&li->addr, SOCK_STREAM, li->any, &why);
	if (li->tfd < 0) {
		mk_err("%s tcp %s: %s", why, mk_addr_fmt(&li->addr, a,
		    sizeof(a)), strerror(errno));
		return -1;
	}
	return 0;
}

static void
close_listeners(struct server *s)
{
	const char *why;
	char a[MK_ADDRSTRLEN];
	size_t i;
	int lo;

	for (i = 0; i < s->n_li; i++) {
		struct listener *li = &s->li[i];

		if (li->ufd >= 0)
			close(li->ufd);
		if (li->tfd >= 0)
			close(li->tfd);
		li->ufd = li->tfd = -1;
	}
	for (i = 0; i < s->n_li; i++) {
		struct listener *li = &s->li[i];

		if (!li->added)
			continue;
		li->added = false;
		lo = (int)if_nametoindex("lo");
		if (lo == 0 || mk_nladdr_del(lo, &li->addr,
		    mk_addr_family(&li->addr) == AF_INET ? 32 : 128,
		    &why) != 0)
			mk_err("cannot remove %s from lo: %s",
			    mk_addr_fmt_ip(&li->addr, a, sizeof(a)),
			    lo == 0 ? "no lo" : strerror(errno));
		else
			mk_info("removed %s from lo", mk_addr_fmt_ip(&li->addr,
			    a, sizeof(a)));
	}
}

static int
attach_listeners(struct server *s)
{
	size_t i;

	for (i = 0; i < s->n_li; i++) {
		struct listener *li = &s->li[i];

		li->s = s;
		li->uio.fd = li->ufd;
		li->uio.fn = on_udp;
		li->uio.arg = li;
		li->tio.fd = li->tfd;
		li->tio.fn = on_accept;
		li->tio.arg = li;
		if (mk_loop_add(&s->loop, &li->uio, EPOLLIN) != 0 ||
		    mk_loop_add(&s->loop, &li->tio, EPOLLIN) != 0)
			return -1;
	}
	return 0;
}

/* ---- upstreams ---- */

static bool
is_ours(const struct server *s, const struct mk_addr *a)
{
	size_t i;

	for (i = 0; i < s->n_li; i++) {
		const struct mk_addr *l = &s->li[i].addr;

		if (mk_addr_port(l) != mk_addr_port(a))
			continue;
		if (mk_addr_same_ip(l, a))
			return true;
		/* A wildcard listener is every local address. */
		if (s->li[i].any && mk_addr_family(l) == mk_addr_family(a) &&
		    mk_dnsacl_is_local(&s->acl, a))
			return true;
	}
	return false;
}

static void
add_upstream(struct server *s, const struct mk_dnsfwd_upstream *u)
{
	char a[MK_ADDRSTRLEN];

	if (u->kind == MK_DNSFWD_DNS && is_ours(s, &u->addr)) {
		mk_warn("upstream %s is this resolver itself; skipped",
		    mk_addr_fmt(&u->addr, a, sizeof(a)));
		return;
	}
	if (s->n_up == MK_DNSFWD_MAX_UPSTREAMS) {
		mk_warn("more than %d upstreams; the rest are ignored",
		    MK_DNSFWD_MAX_UPSTREAMS);
		return;
	}
	s->up[s->n_up++] = *u;
}

/*
 * A DoH host name is looked up now, before the loop runs (and before this
 * resolver may become the system's), and pinned for curl.
 */
static int
pin_doh_host(struct server *s, const struct mk_dnsfwd_upstream *u)
{
	struct mk_addr a;
	const char *why;
	char ip[MK_ADDRSTRLEN];

	if (mk_addr_parse(&a, u->host, 0, MK_ADDR_NO_PORT, &why) == 0)
		return 0;
	if (mk_addr_resolve(&a, u->host, u->port, AF_UNSPEC, &why) != 0) {
		mk_err("upstream %s: %s: %s", u->url, u->host, why);
		return -1;
	}
	mk_addr_fmt_ip(&a, ip, sizeof(ip));
	snprintf(s->resolve[s->n_resolve], sizeof(s->resolve[0]),
	    mk_addr_family(&a) == AF_INET6 ? "%s:%u:[%s]" : "%s:%u:%s",
	    u->host, u->port, ip);
	s->resolve_p[s->n_resolve] = s->resolve[s->n_resolve];
	s->n_resolve++;
	mk_info("upstream %s: %s is %s", u->url, u->host, ip);
	return 0;
}

static int
setup_upstreams(struct server *s)
{
	const struct opts *o = s->o;
	struct mk_dnsfwd_upstream u;
	struct mk_resolv r;
	const char *why;
	size_t i;

	if (o->no_upstream)
		return 0;
	for (i = 0; i < o->n_upstream; i++) {
		if (mk_dnsfwd_upstream_parse(&u, o->upstream[i], &why) != 0)
			return -1;	/* checked before binding */
		if (u.kind == MK_DNSFWD_DOH && pin_doh_host(s, &u) != 0)
			return -1;
		add_upstream(s, &u);
	}
	if (o->n_upstream > 0)
		return 0;
	/* The system's resolvers; if resolv.conf is ours already (a crash
	 * left it), the saved original's. */
	if (mk_resolv_load(&r, o->resolv) != 0) {
		mk_err("%s: %s", o->resolv, strerror(errno));
		return -1;
	}
	if (r.ours) {
		char dir[PATH_MAX], err[1024];

		/* Only from a state directory no one else can write. */
		snprintf(dir, sizeof(dir), "%s", s->backup);
		if (mk_resolv_check_dir(dirname(dir), err, sizeof(err)) != 0) {
			mk_err("%s", err);
			return -1;
		}
		if (mk_resolv_load(&r, s->backup) != 0) {
			mk_err("%s: %s", s->backup, strerror(errno));
			return -1;
		}
	}
	for (i = 0; i < r.n_ns; i++) {
		memset(&u, 0, sizeof(u));
		u.kind = MK_DNSFWD_DNS;
		u.addr = r.ns[i];
		add_upstream(s, &u);
	}
	if (s->n_up == 0)
		mk_warn("no upstream resolver: names outside the mesh get "
		    "SERVFAIL");
	return 0;
}

/* ---- resolv.conf ---- */

static int
backup_path(struct server *s)
{
	char ns[256];

	if (mk_netns_name(ns, sizeof(ns)) != 0 ||
	    mk_resolv_backup_path(s->backup, sizeof(s->backup),
	    s->o->state_dir, ns) != 0) {
		mk_err("cannot name the backup of %s: %s", s->o->resolv,
		    strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * In a named network namespace without its own resolv.conf, ip netns exec
 * leaves the host's in place: taking it over would change the host's.
 */
static int
check_netns_resolv(const struct opts *o)
{
	char ns[256], p[PATH_MAX];

	if (strcmp(o->resolv, MK_RESOLV_PATH) != 0 ||
	    mk_netns_name(ns, sizeof(ns)) != 0 || strcmp(ns, "default") == 0)
		return 0;
	snprintf(p, sizeof(p), "/etc/netns/%s/resolv.conf", ns);
	if (access(p, F_OK) == 0)
		return 0;
	mk_err("network namespace %s has no %s: --install would change the "
	    "host's resolv.conf", ns, p);
	return -1;
}

static int
install(struct server *s)
{
	char err[1024], ns[MK_ADDRSTRLEN];
	const struct mk_addr *a = &s->li[0].addr;

	if (mk_addr_port(a) != 53 || mk_addr_is_any(a)) {
		mk_err("--install needs the first --listen address on port 53 "
		    "and not a wildcard");
		return -1;
	}
	if (check_netns_resolv(s->o) != 0)
		return -1;
	mk_addr_fmt_ip(a, ns, sizeof(ns));
	if (mk_resolv_install(s->o->resolv, s->backup, ns, s->tab->domain, err,
	    sizeof(err)) != 0) {
		mk_err("install: %s", err);
		return -1;
	}
	s->installed = true;
	mk_info("%s points at %s (original saved in %s)", s->o->resolv, ns,
	    s->backup);
	return 0;
}

static void
uninstall(struct server *s)
{
	char err[1024];

	if (!s->installed)
		return;
	s->installed = false;
	if (mk_resolv_uninstall(s->o->resolv, s->backup, err,
	    sizeof(err)) < 0)
		mk_err("uninstall: %s", err);
	else
		mk_info("%s restored", s->o->resolv);
}

static int
run_uninstall(const struct opts *o)
{
	struct server s;
	char err[1024];
	int r;

	memset(&s, 0, sizeof(s));
	s.o = o;
	if (backup_path(&s) != 0)
		return MK_EXIT_FAIL;
	r = mk_resolv_uninstall(o->resolv, s.backup, err, sizeof(err));
	if (r < 0) {
		mk_err("%s", err);
		return MK_EXIT_FAIL;
	}
	if (r == 1) {
		mk_warn("nothing to restore: no %s", s.backup);
		return MK_EXIT_NO;
	}
	mk_info("%s restored from %s", o->resolv, s.backup);
	return 0;
}

/* ---- running ---- */

static void
log_stats(const struct server *s)
{
	const struct mk_dnsfwd_stats *f = mk_dnsfwd_stats(s->fwd);

	mk_warn("queries %llu, local %llu, forwarded %llu, errors %llu, "
	    "dropped %llu, refused %llu, rate-limited %llu, tcp %llu "
	    "(turned away %llu, timed out %llu); "
	    "upstream: answered %llu, servfail %llu, tcp %llu, doh %llu, "
	    "truncated %llu, timeouts %llu, busy %llu; reloads %llu",
	    (unsigned long long)s->st.queries,
	    (unsigned long long)s->st.local,
	    (unsigned long long)s->st.forwarded,
	    (unsigned long long)s->st.errors,
	    (unsigned long long)s->st.dropped,
	    (unsigned long long)s->st.refused_acl,
	    (unsigned long long)s->st.ratelimited,
	    (unsigned long long)s->st.tcp_conns,
	    (unsigned long long)s->st.tcp_refused,
	    (unsigned long long)s->st.tcp_timeouts,
	    (unsigned long long)f->answered,
	    (unsigned long long)(f->servfail + s->st.servfail_local),
	    (unsigned long long)f->tcp_retries,
	    (unsigned long long)f->doh_sent,
	    (unsigned long long)f->truncated,
	    (unsigned long long)f->timeouts,
	    (unsigned long long)f->busy,
	    (unsigned long long)s->st.reloads);
}

static void
on_signal(struct mk_loop *l, int signo, void *arg)
{
	struct server *s = arg;

	switch (signo) {
	case SIGHUP:
		reload(s, "SIGHUP");
		break;
	case SIGUSR1:
		log_stats(s);
		break;
	default:
		mk_loop_stop(l);
	}
}

static void
on_local_timer(struct mk_loop *l, struct mk_timer *t)
{
	struct server *s = t->arg;

	mk_dnsacl_refresh_local(&s->acl);
	mk_timer_in(l, t, LOCAL_REFRESH_US);
}

static int
serve(struct server *s)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGUSR1 };
	struct mk_dnsfwd_conf fc;
	const char *why;
	char a[MK_ADDRSTRLEN];
	size_t i;
	int rc = MK_EXIT_FAIL;

	mk_timer_init(&s->reaper, on_reaper, s);
	mk_timer_init(&s->reload_timer, on_reload_timer, s);
	mk_timer_init(&s->local_timer, on_local_timer, s);
	if (mk_loop_init(&s->loop) != 0 ||
	    mk_loop_signals(&s->loop, sigs, MK_ARRAY_LEN(sigs), on_signal,
	    s) != 0 || attach_listeners(s) != 0) {
		mk_err("event loop: %s", strerror(errno));
		goto out;
	}
	if (mk_udpbatch_init_pktinfo(&s->urx, UDP_BATCH, UDP_BUF) != 0 ||
	    mk_udpbatch_init_pktinfo(&s->utx, UDP_BATCH, UDP_BUF) != 0) {
		mk_err("udp buffers: %s", strerror(errno));
		goto out;
	}
	memset(&fc, 0, sizeof(fc));
	fc.up = s->up;
	fc.n_up = s->n_up;
	fc.cafile = s->o->cacert;
	fc.doh_resolve = s->resolve_p;
	fc.n_doh_resolve = s->n_resolve;
	if (mk_dnsfwd_new(&s->fwd, &s->loop, &fc, &why) != 0) {
		mk_err("forwarder: %s: %s", why, strerror(errno));
		goto out;
	}
	mk_timer_in(&s->loop, &s->local_timer, LOCAL_REFRESH_US);
	watch_files(s);
	for (i = 0; i < s->n_li; i++)
		mk_warn("listening on %s (udp, tcp)",
		    mk_addr_fmt(&s->li[i].addr, a, sizeof(a)));
	for (i = 0; i < s->n_up; i++)
		mk_info("upstream %s", s->up[i].kind == MK_DNSFWD_DOH ?
		    s->up[i].url : mk_addr_fmt(&s->up[i].addr, a, sizeof(a)));
	mk_warn("ready: %zu names%s%s, %zu upstreams", s->tab->n_recs,
	    s->tab->domain_len ? " in " : "", s->tab->domain, s->n_up);
	if (mk_loop_run(&s->loop) != 0) {
		mk_err("event loop: %s", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	mk_dnsfwd_free(s->fwd);
	s->fwd = NULL;
	while (s->conns != NULL)
		conn_close(s->conns);
	reap_conns(s);
	if (s->ino_fd >= 0)
		close(s->ino_fd);
	mk_loop_free(&s->loop);
	mk_udpbatch_free(&s->urx);
	mk_udpbatch_free(&s->utx);
	return rc;
}

static int
lookup_user(const char *user, uid_t *uid, gid_t *gid)
{
	struct passwd *pw;

	errno = 0;
	if ((pw = getpwnam(user)) == NULL) {
		mk_err("user %s: %s", user, errno ? strerror(errno) :
		    "no such user");
		return -1;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

static int
drop_privileges(uid_t uid, gid_t gid)
{
	if (setgroups(1, &gid) != 0 || setresgid(gid, gid, gid) != 0 ||
	    setresuid(uid, uid, uid) != 0) {
		mk_err("dropping privileges: %s", strerror(errno));
		return -1;
	}
	/* Must not be able to get root back. */
	if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
		mk_err("dropping privileges: root came back");
		return -1;
	}
	return 0;
}

/*
 * With --user: the server runs as that user in a child; this process keeps
 * root only to undo what needs it (the lo address, resolv.conf) when the
 * child ends, however it ends. Signals are passed on.
 */
static int
run_privsep(struct server *s, uid_t uid, gid_t gid)
{
	sigset_t set;
	pid_t pid, parent = getpid();
	int sig, status, rc;
	size_t i;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if ((pid = fork()) < 0) {
		mk_err("fork: %s", strerror(errno));
		return MK_EXIT_FAIL;
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(MK_EXIT_FAIL);
		for (i = 0; i < s->n_li; i++)
			s->li[i].added = false;	/* the parent undoes */
		s->installed = false;
		if (drop_privileges(uid, gid) != 0)
			_exit(MK_EXIT_FAIL);
		rc = serve(s);
		close_listeners(s);
		mk_dnstab_free(s->tab);
		free(s->tab);
		mk_dnsacl_free(&s->acl);
		mk_ratelim_free(&s->rl);
		_exit(rc);
	}
	for (i = 0; i < s->n_li; i++) {
		close(s->li[i].ufd);
		close(s->li[i].tfd);
		s->li[i].ufd = s->li[i].tfd = -1;
	}
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGCHLD) {
			if (waitpid(pid, &status, WNOHANG) == pid)
				break;
			continue;
		}
		kill(pid, sig);
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	mk_err("server process killed by signal %d", WTERMSIG(status));
	return MK_EXIT_FAIL;
}

/* ---- main ---- */

static int
run(const struct opts *o)
{
	static struct server s;
	struct mk_dnsfwd_upstream u;
	struct mk_addr la;
	char err[1024];
	const char *why;
	sigset_t set;
	uid_t uid = 0;
	gid_t gid = 0;
	size_t i;
	int rc = MK_EXIT_FAIL;

	s.o = o;
	s.ino_fd = -1;
	/* From here a signal waits for the loop (or for cleanup): nothing
	 * may end us between adding an address and being able to undo it. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	mk_dnsacl_init(&s.acl);
	for (i = 0; i < o->n_allow; i++)
		if (mk_dnsacl_allow(&s.acl, o->allow[i], &why) != 0)
			mk_usage_error("bad --allow prefix: %s", o->allow[i]);
	for (i = 0; i < o->n_listen; i++)
		if (mk_addr_parse(&la, o->listen[i], 53, 0, &why) != 0)
			mk_usage_error("bad listen address: %s", o->listen[i]);
	for (i = 0; i < o->n_upstream; i++)
		if (mk_dnsfwd_upstream_parse(&u, o->upstream[i], &why) != 0)
			mk_usage_error("bad upstream: %s", o->upstream[i]);
	if (o->user != NULL && lookup_user(o->user, &uid, &gid) != 0) {
		rc = MK_EXIT_USAGE;
		goto out;
	}
	if (load_table(o, &s.tab, err, sizeof(err)) != 0) {
		mk_err("%s", err);
		rc = MK_EXIT_USAGE;
		goto out;
	}
	if (mk_dnsacl_allow_defaults(&s.acl) != 0)
		goto out;
	if (mk_ratelim_init(&s.rl, 4096, (uint64_t)o->rate,
	    2 * (uint64_t)o->rate) != 0)
		goto out;
	if (backup_path(&s) != 0)
		goto out;

	for (i = 0; i < (o->n_listen ? o->n_listen : 1); i++) {
		struct listener *li = &s.li[s.n_li];

		li->ufd = li->tfd = -1;
		if (mk_addr_parse(&li->addr, o->n_listen ? o->listen[i] :
		    SERVICE_V4, 53, 0, &why) != 0)
			goto out;	/* checked above */
		s.n_li++;
		if (open_listener(li) != 0)
			goto out;
	}
	/* After the listeners: the service address may be new on lo. */
	if (mk_dnsacl_refresh_local(&s.acl) != 0)
		mk_warn("cannot list local addresses: %s", strerror(errno));
	if (setup_upstreams(&s) != 0)
		goto out;
	if (o->install && install(&s) != 0)
		goto out;
	if (o->user != NULL)
		rc = run_privsep(&s, uid, gid);
	else
		rc = serve(&s);
out:
	uninstall(&s);
	close_listeners(&s);
	mk_dnstab_free(s.tab);
	free(s.tab);
	mk_dnsacl_free(&s.acl);
	mk_ratelim_free(&s.rl);
	return rc;
}

enum {
	OPT_CACERT = 256,
	OPT_INSTALL,
	OPT_UNINSTALL,
	OPT_RATE,
	OPT_RESOLV,
	OPT_STATE,
	OPT_USER,
};

static const struct option longopts[] = {
	{ "allow", required_argument, NULL, 'a' },
	{ "cacert", required_argument, NULL, OPT_CACERT },
	{ "domain", required_argument, NULL, 'd' },
	{ "help", no_argument, NULL, 'h' },
	{ "hosts", required_argument, NULL, 'H' },
	{ "install", no_argument, NULL, OPT_INSTALL },
	{ "listen", required_argument, NULL, 'l' },
	{ "mesh", required_argument, NULL, 'c' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "rate", required_argument, NULL, OPT_RATE },
	{ "resolv-conf", required_argument, NULL, OPT_RESOLV },
	{ "state-dir", required_argument, NULL, OPT_STATE },
	{ "uninstall", no_argument, NULL, OPT_UNINSTALL },
	{ "upstream", required_argument, NULL, 'u' },
	{ "user", required_argument, NULL, OPT_USER },
	{ "verbose", no_argument, NULL, 'v' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

int
main(int argc, char *argv[])
{
	struct opts o = {
		.resolv = MK_RESOLV_PATH, .state_dir = MK_RESOLV_STATE_DIR,
		.rate = DEFAULT_RATE,
	};
	int ch, quiet = 0, verbose = 0;
	bool serve_opts = false;

	mk_cli_init("magicdns", usage);
	while ((ch = getopt_long(argc, argv, "a:c:d:hH:l:qu:vV", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'a':
			if (o.n_allow == MAX_ALLOW)
				mk_usage_error("%s", "too many --allow");
			o.allow[o.n_allow++] = optarg;
			serve_opts = true;
			break;
		case 'c':
			o.mesh = optarg;
			serve_opts = true;
			break;
		case 'd':
			o.domain = optarg;
			serve_opts = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'H':
			o.hosts = optarg;
			serve_opts = true;
			break;
		case 'l':
			if (o.n_listen == MAX_LISTEN)
				mk_usage_error("%s", "too many --listen");
			o.listen[o.n_listen++] = optarg;
			serve_opts = true;
			break;
		case 'q':
			quiet++;
			break;
		case 'u':
			if (strcmp(optarg, "none") == 0) {
				o.no_upstream = true;
			} else {
				if (o.n_upstream == MK_DNSFWD_MAX_UPSTREAMS)
					mk_usage_error("%s",
					    "too many --upstream");
				o.upstream[o.n_upstream++] = optarg;
			}
			serve_opts = true;
			break;
		case 'v':
			verbose++;
			break;
		case 'V':
			printf("magicdns %s\n", MK_VERSION);
			return 0;
		case OPT_CACERT:
			o.cacert = optarg;
			serve_opts = true;
			break;
		case OPT_INSTALL:
			o.install = true;
			serve_opts = true;
			break;
		case OPT_UNINSTALL:
			o.uninstall = true;
			break;
		case OPT_RATE:
			if (mk_strtonum(optarg, 0, 1000000, &o.rate) != 0)
				mk_usage_error("bad rate: %s", optarg);
			serve_opts = true;
			break;
		case OPT_RESOLV:
			o.resolv = optarg;
			break;
		case OPT_STATE:
			o.state_dir = optarg;
			break;
		case OPT_USER:
			o.user = optarg;
			serve_opts = true;
			break;
		default:
			usage(stderr);
			return MK_EXIT_USAGE;
		}
	}
	if (optind < argc)
		mk_usage_error("unexpected argument: %s", argv[optind]);
	mk_log_init("magicdns", quiet ? MK_LOG_ERR : MK_LOG_WARN + verbose);
	if (o.uninstall) {
		if (serve_opts)
			mk_usage_error("%s", "--uninstall takes only "
			    "--resolv-conf and --state-dir");
		return run_uninstall(&o);
	}
	if (o.no_upstream && o.n_upstream > 0)
		mk_usage_error("%s", "--upstream none with other upstreams");
	if (o.mesh == NULL && o.hosts == NULL)
		o.mesh = mk_mesh_default_path();
	if (o.cacert != NULL && access(o.cacert, R_OK) != 0)
		mk_usage_error("cannot read --cacert %s", o.cacert);
	return run(&o);
}
