/* SPDX-License-Identifier: MIT */
/*
 * derpcat: netcat through a DERP relay (stdin to a peer's key, what the
 * peer sends to stdout), or a DERP relay server (-l), wire-compatible with
 * Tailscale's.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "derp.h"
#include "derp_client.h"
#include "derp_server.h"
#include "derp_stream.h"
#include "derpmap.h"
#include "key.h"
#include "cli.h"
#include "log.h"
#include "loop.h"
#include "meshconf.h"
#include "relayset.h"
#include "sock.h"
#include "stunsrv.h"
#include "tls.h"
#include "udpbatch.h"
#include "url.h"
#include "util.h"
#include "version.h"


#define MAX_MESH	16
#define MAX_TARGETS	16
#define LINGER_US	(10ULL * 1000000)	/* for the peer's last ack */
#define TICK_US		200000
#define IN_CAP		(64U << 10)
#define RAW_OUT_MAX	(1U << 20)
#define STUN_DEFAULT	3478

enum mode { M_STREAM, M_RAW, M_UDP, M_WATCH };

struct opts {
	/* client */
	const char	*keyfile;
	bool		 fin;		/* -N */
	bool		 no_stdin;	/* -d */
	uint64_t	 wait_ms;	/* -w; 0: none */
	bool		 lines;
	bool		 raw;
	const char	*udp;
	bool		 watch;
	const char	*cafile;
	const char	*pin;
	bool		 insecure;
	const char	*derpmap;
	long long	 region;
	bool		 region_set;
	const char	*mesh;		/* -c */
	bool		 retry;		/* --retry */
	/* server */
	const char	*listen;
	bool		 http;
	const char	*cert;
	const char	*certkey;
	const char	*state;
	const char	*hostname;
	long long	 stun_port;
	bool		 stun_port_set;
	const char	*verify;
	const char	*mesh_key;
	const char	*mesh_with[MAX_MESH];
	size_t		 n_mesh;
	long long	 max_conns;
	bool		 max_conns_set;
};

static void
usage(FILE *f)
{
	fprintf(f,
"usage: derpcat [-dNqv] [--lines | --raw | --udp [addr:]port] [-k keyfile]\n"
"               [-w seconds] [--retry] [--cafile file] [--pin sha256-raw:hex]\n"
"               [--insecure] [--mesh-key file] [-c mesh.conf]\n"
"               [url | --derpmap file --region id] peer\n"
"       derpcat --watch --mesh-key file [-qv] [--cafile file]\n"
"               [--pin sha256-raw:hex] [--insecure] url\n"
"       derpcat -l [addr]:port [-qv] [--http | --cert file --certkey file]\n"
"               [--state dir] [--hostname name] [--stun-port port]\n"
"               [--verify-clients file] [--mesh-key file] [--mesh-with url]\n"
"               [--max-conns n]\n");
}

/* ---- files ---- */

/* A secret others can reach: wg-quick's warning, and go on as it does. */
static void
warn_exposed(const char *path)
{
	if (mk_file_world_accessible(path, NULL, 0))
		mk_warn("Warning: `%s' is world accessible", path);
}

/* A mesh key file: 64 hex digits, whitespace around them ignored. */
static int
read_mesh_key(const char *path, uint8_t out[32], const char **why)
{
	char buf[256], *s;
	ssize_t n;
	int fd, rc = 0;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		*why = strerror(errno);
		return -1;
	}
	warn_exposed(path);
	n = mk_read_small(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0) {
		*why = errno == EFBIG ? "too long for a mesh key" :
		    strerror(errno);
		return -1;
	}
	s = mk_trim(buf);
	if (mk_derp_mesh_key_parse(out, s, strlen(s)) != 0) {
		*why = "not a mesh key (want 64 hex digits)";
		rc = -1;
	}
	sodium_memzero(buf, sizeof(buf));
	return rc;
}

static int
key_cmp(const void *a, const void *b)
{
	return memcmp(a, b, MK_KEY_LEN);
}

/*
 * An allowlist: one public key a line (base64, hex or nodekey:hex), #
 * comments, blank lines. Sorted for bsearch. 0, or -1 with "FILE:LINE:
 * why" in err.
 */
static int
load_allowlist(const char *path, struct mk_key **out, size_t *n, char *err,
    size_t errlen)
{
	FILE *f = fopen(path, "re");
	struct mk_key *keys = NULL, *nk;
	size_t cap = 0, len = 0;
	char line[512], *s, *hash;
	const char *why;
	unsigned lineno = 0;

	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		if ((hash = strchr(line, '#')) != NULL)
			*hash = '\0';
		s = mk_trim(line);
		if (*s == '\0')
			continue;
		if (len == cap) {
			cap = cap ? cap * 2 : 64;
			if ((nk = reallocarray(keys, cap, sizeof(*keys))) ==
			    NULL) {
				snprintf(err, errlen, "%s: out of memory",
				    path);
				goto fail;
			}
			keys = nk;
		}
		if (mk_key_parse(&keys[len], s, &why) != 0) {
			snprintf(err, errlen, "%s:%u: %s", path, lineno, why);
			goto fail;
		}
		len++;
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	fclose(f);
	if (len > 0)
		qsort(keys, len, sizeof(*keys), key_cmp);
	*out = keys;
	*n = len;
	return 0;
fail:
	fclose(f);
	free(keys);
	return -1;
}

/* ---- server ---- */

struct server {
	const struct opts	*o;
	struct mk_loop		 loop;
	struct mk_derps		*srv;
	struct mk_stunsrv	*stun;
	struct mk_key		*allow;
	size_t			 n_allow;
};

static bool
admit(void *arg, const struct mk_key *k)
{
	struct server *s = arg;

	return bsearch(k->b, s->allow, s->n_allow, sizeof(*s->allow),
	    key_cmp) != NULL;
}

static void
log_stats(struct server *s)
{
	struct mk_derps_stats st;
	char drops[512];
	size_t off = 0;
	int i;

	mk_derps_get_stats(s->srv, &st);
	drops[0] = '\0';
	for (i = 0; i < MK_DERPS_DROP_N; i++)
		off += (size_t)snprintf(drops + off, sizeof(drops) - off,
		    " %s %llu", mk_derps_drop_name(i),
		    (unsigned long long)st.drops[i]);
	mk_warn("clients %llu (keys %llu, home %llu, mesh %llu, watchers "
	    "%llu), connections %llu (accepted %llu), via mesh %llu",
	    (unsigned long long)st.clients, (unsigned long long)st.keys,
	    (unsigned long long)st.home_clients,
	    (unsigned long long)st.mesh_conns,
	    (unsigned long long)st.watchers, (unsigned long long)st.conns,
	    (unsigned long long)st.accepted,
	    (unsigned long long)st.mesh_forwarders);
	mk_warn("packets in %llu (%llu bytes), out %llu (%llu bytes), "
	    "forwarded %llu", (unsigned long long)st.recv_packets,
	    (unsigned long long)st.recv_bytes,
	    (unsigned long long)st.sent_packets,
	    (unsigned long long)st.sent_bytes,
	    (unsigned long long)st.forwarded_packets);
	mk_warn("drops:%s", drops);
	mk_warn("refused: box %llu, not allowed %llu, limits %llu; bad HTTP "
	    "%llu, bad frames %llu, handshake timeouts %llu, other HTTP "
	    "requests %llu", (unsigned long long)st.refused_box,
	    (unsigned long long)st.refused_admit,
	    (unsigned long long)st.refused_limit,
	    (unsigned long long)st.bad_http,
	    (unsigned long long)st.bad_frames,
	    (unsigned long long)st.timeouts,
	    (unsigned long long)st.http_requests);
	{
		struct mallinfo2 mi = mallinfo2();

		mk_warn("heap: %zu KiB in use, %zu KiB free",
		    (mi.uordblks + mi.hblkhd) / 1024, mi.fordblks / 1024);
	}
	if (s->stun != NULL) {
		const struct mk_stunsrv_stats *ss = mk_stunsrv_stats(s->stun);

		mk_warn("STUN: received %llu, answered %llu",
		    (unsigned long long)ss->received,
		    (unsigned long long)ss->answered);
	}
}

static void
on_server_signal(struct mk_loop *l, int signo, void *arg)
{
	struct server *s = arg;
	struct mk_key *keys;
	char err[600];
	size_t n;

	switch (signo) {
	case SIGUSR1:
		log_stats(s);
		break;
	case SIGHUP:
		if (s->o->verify == NULL)
			break;
		if (load_allowlist(s->o->verify, &keys, &n, err,
		    sizeof(err)) != 0) {
			mk_err("%s (keeping the %zu keys loaded before)", err,
			    s->n_allow);
			break;
		}
		free(s->allow);
		s->allow = keys;
		s->n_allow = n;
		mk_warn("%s: %zu allowed keys", s->o->verify, n);
		mk_derps_recheck(s->srv);
		break;
	default:
		mk_loop_stop(l);
	}
}

/*
 * The state directory holds the server's private key: one that another
 * user owns or may write to (who could then read or replace the key) is
 * refused. 0, or -1 after an error line.
 */
static int
check_state_dir(const char *dir)
{
	struct stat st;

	if (stat(dir, &st) != 0) {
		mk_err("%s: %s", dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		mk_err("--state %s: not a directory", dir);
		return -1;
	}
	if (st.st_uid != geteuid()) {
		mk_err("--state %s: owned by uid %u, not by this user (uid %u); "
		    "refusing to keep keys there", dir, (unsigned)st.st_uid,
		    (unsigned)geteuid());
		return -1;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		mk_err("--state %s: writable by %s (mode %04o); refusing to "
		    "keep keys there", dir, st.st_mode & S_IWOTH ? "others" :
		    "its group", (unsigned)(st.st_mode & 07777));
		return -1;
	}
	return 0;
}

/* The server key, from dir/derp.key or made there (or in memory). */
static int
server_key(const char *dir, struct mk_key *k)
{
	char path[4096];
	const char *why;

	if (dir == NULL) {
		mk_key_generate(k);
		return 0;
	}
	snprintf(path, sizeof(path), "%s/derp.key", dir);
	if (access(path, F_OK) == 0) {
		warn_exposed(path);
		if (mk_key_read_file(k, path, &why) != 0) {
			mk_err("%s: %s", path, why);
			return -1;
		}
		return 0;
	}
	mk_key_generate(k);
	if (mk_key_write_file(path, k) != 0) {
		mk_err("%s: %s", path, strerror(errno));
		return -1;
	}
	mk_info("made a new server key in %s", path);
	return 0;
}

static int
server_tls(const struct opts *o, const struct mk_addr *la,
    struct mk_tls_ctx **ctx)
{
	uint8_t pin[MK_TLS_PIN_LEN];
	char hex[2 * MK_TLS_PIN_LEN + 1], ip[MK_ADDRSTRLEN], host[256];
	char path[4096];
	const char *why, *name = o->hostname;
	bool made;

	if (o->cert != NULL) {
		if (mk_tls_server_files(ctx, o->cert, o->certkey, &why) != 0) {
			mk_err("%s: %s", o->cert, why);
			return -1;
		}
	} else {
		if (name == NULL && !mk_addr_is_any(la))
			name = mk_addr_fmt_ip(la, ip, sizeof(ip));
		/* on a wildcard, the host's name: a certificate without a
		 * subjectAltName fails Tailscale's name check */
		if (name == NULL && gethostname(host, sizeof(host)) == 0 &&
		    memchr(host, '\0', sizeof(host)) != NULL && host[0] != '\0')
			name = host;
		if (mk_tls_server_selfsigned(ctx, o->state, name, &made,
		    &why) != 0) {
			mk_err("%s: %s", o->state != NULL ? o->state :
			    "certificate", why);
			return -1;
		}
		if (made && o->state != NULL)
			mk_info("made a self-signed certificate in %s",
			    o->state);
		if (o->state != NULL) {
			snprintf(path, sizeof(path), "%s/tls.key", o->state);
			warn_exposed(path);
		}
		/* A kept certificate made for another name (or before it had
		 * a subjectAltName) is kept: replacing it would break every
		 * pin configured for it without a word. */
		if (!made && name != NULL && !mk_tls_ctx_matches(*ctx, name))
			mk_warn("%s/tls.crt is not for %s: Tailscale clients "
			    "check the name even when pinning and will refuse "
			    "it; kept so that existing pins stay valid (remove "
			    "tls.crt and tls.key for a new one, with a new "
			    "pin)", o->state, name);
	}
	if (mk_tls_ctx_pin(*ctx, pin) == 0) {
		mk_hex_encode(hex, pin, sizeof(pin));
		mk_warn("certificate pin sha256-raw:%s", hex);
	}
	return 0;
}

static int
parse_listen(const char *s, struct mk_addr *a)
{
	char buf[300];
	const char *why;

	if (s[0] == ':') {
		/* ":443": every address, both families */
		snprintf(buf, sizeof(buf), "[::]%s", s);
		s = buf;
	}
	return mk_addr_parse(a, s, 0, MK_ADDR_NEED_PORT, &why);
}

static int
run_server(const struct opts *o)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGUSR1 };
	struct mk_derps_config cfg;
	struct mk_tls_ctx *tls = NULL;
	struct mk_addr la, bound, sa;
	struct server s;
	char a[MK_ADDRSTRLEN], kb[MK_KEY_B64LEN + 1], err[600];
	const char *why;
	size_t i;
	int rc = MK_EXIT_FAIL;

	memset(&s, 0, sizeof(s));
	s.o = o;
	if (parse_listen(o->listen, &la) != 0)
		mk_usage_error("bad listen address: %s", o->listen);
	mk_derps_config_init(&cfg);
	if (mk_loop_init(&s.loop) != 0) {
		mk_err("event loop: %s", strerror(errno));
		return MK_EXIT_FAIL;
	}
	if (o->state != NULL && mkdir(o->state, 0700) != 0 && errno != EEXIST) {
		mk_err("%s: %s", o->state, strerror(errno));
		goto out;
	}
	if (o->state != NULL && check_state_dir(o->state) != 0) {
		rc = MK_EXIT_USAGE;
		goto out;
	}
	if (server_key(o->state, &cfg.priv) != 0)
		goto out;
	if (o->verify != NULL) {
		if (load_allowlist(o->verify, &s.allow, &s.n_allow, err,
		    sizeof(err)) != 0) {
			mk_err("%s", err);
			rc = MK_EXIT_USAGE;
			goto out;
		}
		cfg.admit = admit;
		cfg.admit_arg = &s;
	}
	if (o->mesh_key != NULL) {
		if (read_mesh_key(o->mesh_key, cfg.mesh_key, &why) != 0) {
			mk_err("%s: %s", o->mesh_key, why);
			goto out;
		}
		warn_exposed(o->mesh_key);
		cfg.has_mesh_key = true;
	}
	cfg.mesh_cafile = o->cafile;
	cfg.mesh_insecure = o->insecure;
	if (o->pin != NULL) {
		if (mk_tls_pin_parse(cfg.mesh_pin, o->pin) != 0)
			mk_usage_error("bad pin: %s", o->pin);
		cfg.mesh_has_pin = true;
	}
	if (o->max_conns_set) {
		/* unfinished handshakes scale with it: a NAT or a /64 with
		 * many clients needs both raised (an eighth; at least 32, or
		 * all when fewer are allowed) */
		cfg.max_conns_per_ip = (unsigned)o->max_conns;
		cfg.max_pending_per_ip = cfg.max_conns_per_ip / 8;
		if (cfg.max_pending_per_ip < 32)
			cfg.max_pending_per_ip = cfg.max_conns_per_ip < 32 ?
			    cfg.max_conns_per_ip : 32;
	}
	if (!o->http && server_tls(o, &la, &tls) != 0)
		goto out;
	cfg.tls = tls;
	if (mk_loop_signals(&s.loop, sigs, MK_ARRAY_LEN(sigs),
	    on_server_signal, &s) != 0) {
		mk_err("event loop: %s", strerror(errno));
		goto out;
	}
	if (mk_derps_new(&s.srv, &s.loop, &cfg, &why) != 0) {
		mk_err("%s", why);
		goto out;
	}
	if (mk_derps_listen(s.srv, &la, &bound, &why) != 0) {
		mk_err("%s %s: %s", why, o->listen, strerror(errno));
		goto out;
	}
	if (!o->stun_port_set || o->stun_port != 0) {
		sa = la;
		mk_addr_set_port(&sa, o->stun_port_set ?
		    (uint16_t)o->stun_port : STUN_DEFAULT);
		if (mk_stunsrv_open(&s.stun, &sa, NULL, 0, &why) != 0 ||
		    mk_stunsrv_attach(s.stun, &s.loop) != 0) {
			mk_err("STUN %s %s: %s", why, mk_addr_fmt(&sa, a,
			    sizeof(a)), strerror(errno));
			goto out;
		}
		mk_warn("STUN on %s", mk_addr_fmt(&mk_stunsrv_ctx(s.stun)->
		    slot[MK_STUNSRV_PP], a, sizeof(a)));
	}
	for (i = 0; i < o->n_mesh; i++)
		if (mk_derps_mesh_with(s.srv, o->mesh_with[i], &why) != 0) {
			mk_err("--mesh-with %s: %s", o->mesh_with[i], why);
			rc = MK_EXIT_USAGE;
			goto out;
		}
	mk_key_to_base64(kb, mk_derps_public(s.srv));
	mk_warn("server key %s", kb);
	mk_warn("listening on %s (%s)", mk_addr_fmt(&bound, a, sizeof(a)),
	    o->http ? "http" : "https");
	if (mk_loop_run(&s.loop) != 0) {
		mk_err("event loop: %s", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	mk_derps_free(s.srv);
	if (s.stun != NULL) {
		mk_stunsrv_detach(s.stun, &s.loop);
		mk_stunsrv_free(s.stun);
	}
	mk_loop_free(&s.loop);
	mk_tls_ctx_free(tls);
	free(s.allow);
	sodium_memzero(&cfg, sizeof(cfg));
	return rc;
}

/* ---- client ---- */

/* stdin or stdout: epoll cannot watch regular files and /dev/null, which
 * are always ready anyway; those are pumped from a timer instead. */
struct fdio {
	int		 fd;
	struct mk_io	 io;
	bool		 pollable;
	bool		 nonblock;	/* reading again cannot block */
	bool		 added;		/* in the epoll set */
	uint32_t	 ev;
};

enum feed { FEED_DRAINED, FEED_BLOCKED, FEED_MORE };

struct client {
	const struct opts	*o;
	enum mode		 mode;
	struct mk_loop		 loop;
	struct mk_derpc		*dc;
	struct mk_key		 priv;
	struct mk_key		 peer;
	char			 url[320];
	struct mk_dstream	*ds;
	struct mk_timer		 ds_timer;
	struct mk_timer		 tick;
	struct mk_timer		 pump;
	struct fdio		 in;
	struct fdio		 out;
	bool			 in_eof;	/* read returned 0 */
	bool			 in_done;	/* ... and all of it sent */
	bool			 in_blocked;	/* transport full */
	bool			 in_busy;	/* on_stdin on the stack */
	bool			 out_gone;	/* EPIPE */
	bool			 net_done;	/* the peer's end reached us */
	uint8_t			 ibuf[IN_CAP];
	size_t			 ioff, ilen;
	uint8_t			*obuf;		/* raw: output waiting */
	size_t			 ooff, olen;
	uint64_t		 out_drops;
	int			 ufd;
	struct mk_udpbatch	 ubatch;	/* --udp: datagrams in */
	struct mk_io		 uio;
	struct mk_addr		 usrc;		/* the local UDP peer */
	uint64_t		 udp_drops;
	uint64_t		 start_us;
	uint64_t		 activity_us;
	bool			 ever_up;
	size_t			 n_targets;
	unsigned		 fails;		/* attempts before ever_up */
	char			 last_why[256];	/* the relay's last failure */
	bool			 quitting;
	uint64_t		 quit_us;
	bool			 warned_foreign;
	int			 rc;
};

static void on_stdin(struct client *c);
static void drain_out(struct client *c);
static void sync_state(struct client *c);

static void
stop(struct client *c, int rc)
{
	c->rc = rc;
	mk_loop_stop(&c->loop);
}

static void
on_fd(struct mk_loop *l, struct mk_io *io, uint32_t events)
{
	struct client *c = io->arg;

	(void)l;
	if (io == &c->in.io && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		on_stdin(c);
	else if (io == &c->out.io)
		drain_out(c);
	sync_state(c);
}

static void
fdio_init(struct client *c, struct fdio *f, int fd)
{
	struct stat st;
	int fl;

	f->fd = fd;
	f->io.fd = fd;
	f->io.fn = on_fd;
	f->io.arg = c;
	f->ev = 0;
	f->pollable = mk_loop_add(&c->loop, &f->io, 0) == 0;
	/* in the set only while wanted (fdio_want) */
	if (f->pollable)
		mk_loop_del(&c->loop, &f->io);
	f->added = false;
	f->nonblock = !f->pollable;	/* files never block */
	if ((fl = fcntl(fd, F_GETFL)) >= 0 && (fl & O_NONBLOCK))
		f->nonblock = true;
	/* pipes and sockets must not block the loop; a terminal is left
	 * as it is (it is shared with the shell, and seldom full) */
	if (f->pollable && fstat(fd, &st) == 0 &&
	    (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) && fl >= 0 &&
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0)
		f->nonblock = true;
}

static void
fdio_want(struct client *c, struct fdio *f, uint32_t ev)
{
	if (!f->pollable) {
		if (ev != 0 && !mk_timer_armed(&c->pump))
			mk_timer_in(&c->loop, &c->pump, 0);
		return;
	}
	if (ev == f->ev)
		return;
	/*
	 * Not wanted: out of the set, not a mask of 0. epoll reports
	 * EPOLLHUP and EPOLLERR whatever the mask, so a pipe at EOF that
	 * stayed in the set woke the loop at once, forever (100 % CPU
	 * while waiting for the peer after stdin ended).
	 */
	if (ev == 0) {
		mk_loop_del(&c->loop, &f->io);
		f->added = false;
	} else if (f->added)
		mk_loop_mod(&c->loop, &f->io, ev);
	else if (mk_loop_add(&c->loop, &f->io, ev) == 0)
		f->added = true;
	f->ev = ev;
}

static void
on_pump(struct mk_loop *l, struct mk_timer *t)
{
	struct client *c = t->arg;

	(void)l;
	if (!c->in.pollable)
		on_stdin(c);
	if (!c->out.pollable)
		drain_out(c);
	sync_state(c);
}

/* ---- output ---- */

/* Write to stdout: bytes written, 0 when it would block, -1 gone. */
static ssize_t
out_write(struct client *c, const uint8_t *p, size_t n)
{
	ssize_t w;

	do
		w = write(c->out.fd, p, n);
	while (w < 0 && errno == EINTR);
	if (w >= 0)
		return w;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return 0;
	if (!c->out_gone)
		mk_warn("stdout: %s", strerror(errno));
	c->out_gone = true;
	return -1;
}

static void
drain_stream(struct client *c)
{
	const uint8_t *p;
	size_t n;
	ssize_t w;
	bool eof;

	while ((p = mk_dstream_peek(c->ds, &n, &eof)) != NULL) {
		if (c->out_gone) {
			mk_dstream_consume(c->ds, n, mk_now_us());
			continue;
		}
		w = out_write(c, p, n);
		if (w == 0)
			return;
		mk_dstream_consume(c->ds, w < 0 ? n : (size_t)w, mk_now_us());
		c->activity_us = mk_now_us();
	}
	if (eof && !c->net_done) {
		c->net_done = true;
		mk_info("end of stream from the peer");
	}
}

static void
drain_raw(struct client *c)
{
	ssize_t w;

	while (c->ooff < c->olen) {
		w = out_write(c, c->obuf + c->ooff, c->olen - c->ooff);
		if (w == 0)
			return;
		if (w < 0) {
			c->ooff = c->olen;
			break;
		}
		c->ooff += (size_t)w;
	}
	c->ooff = c->olen = 0;
}

static void
drain_out(struct client *c)
{
	if (c->mode == M_STREAM)
		drain_stream(c);
	else
		drain_raw(c);
}

/* Raw output of one packet (and a newline with --lines). */
static void
out_packet(struct client *c, const uint8_t *p, size_t n)
{
	size_t want = n + (c->o->lines ? 1 : 0);
	uint8_t *nb;

	if (c->out_gone)
		return;
	if (c->olen == 0) {
		ssize_t w = out_write(c, p, n);

		if (w < 0)
			return;
		p += w;
		n -= (size_t)w;
		if (n == 0 && c->o->lines) {
			w = out_write(c, (const uint8_t *)"\n", 1);
			if (w != 0)
				return;
		} else if (n == 0)
			return;
		want = n + (c->o->lines ? 1 : 0);
	}
	/* the rest waits, up to a bound; past it packets are dropped, as a
	 * relay would */
	if (c->olen + want > RAW_OUT_MAX) {
		c->out_drops++;
		return;
	}
	if ((nb = realloc(c->obuf, c->olen + want)) == NULL) {
		c->out_drops++;
		return;
	}
	c->obuf = nb;
	memcpy(c->obuf + c->olen, p, n);
	if (c->o->lines)
		c->obuf[c->olen + n] = '\n';
	c->olen += want;
}

/* ---- input ---- */

/* The next piece of input to send as one write (stream) or packet (raw):
 * a line with --lines, else everything (raw: at most 64 KiB). */
static size_t
next_piece(struct client *c, bool *incomplete)
{
	const uint8_t *p = c->ibuf + c->ioff, *nl;
	size_t n = c->ilen - c->ioff, max;

	*incomplete = false;
	max = c->mode == M_STREAM ? MK_DSTREAM_CHUNK : MK_DERP_MAX_PACKET;
	if (!c->o->lines)
		return c->mode == M_STREAM ? n : (n < max ? n : max);
	nl = memchr(p, '\n', n < max ? n : max);
	if (nl != NULL)
		return (size_t)(nl - p) + 1;
	if (n >= max)
		return max;
	/* a partial line: wait for the rest unless input has ended */
	*incomplete = !c->in_eof && c->ilen < sizeof(c->ibuf);
	return n;
}

static enum feed
feed(struct client *c)
{
	uint64_t now = mk_now_us();
	size_t n, w;
	bool incomplete;

	while (c->ioff < c->ilen) {
		n = next_piece(c, &incomplete);
		if (incomplete)
			return FEED_MORE;
		if (c->mode == M_STREAM) {
			w = mk_dstream_write(c->ds, c->ibuf + c->ioff, n, now);
			c->ioff += w;
			if (w < n)
				return FEED_BLOCKED;
		} else {
			/* raw --lines: the newline is not sent */
			size_t plen = n;

			if (c->o->lines && c->ibuf[c->ioff + n - 1] == '\n')
				plen--;
			if (mk_derpc_send(c->dc, &c->peer, c->ibuf + c->ioff,
			    plen) != 0)
				return FEED_BLOCKED;
			c->ioff += n;
		}
		c->activity_us = now;
	}
	c->ioff = c->ilen = 0;
	return FEED_DRAINED;
}

static void
input_ended(struct client *c)
{
	if (c->in_done)
		return;
	c->in_done = true;
	mk_info("end of input");
	if (c->mode == M_STREAM && c->o->fin)
		mk_dstream_shutdown(c->ds, mk_now_us());
}

static void
on_stdin(struct client *c)
{
	enum feed f;
	ssize_t n;
	int rounds;

	if (c->in_busy || c->in_done)
		return;
	c->in_busy = true;
	c->in_blocked = false;
	for (rounds = 0; rounds < 16; rounds++) {
		f = feed(c);
		if (f == FEED_BLOCKED) {
			c->in_blocked = true;
			break;
		}
		if (c->in_eof) {
			if (f == FEED_DRAINED)
				input_ended(c);
			break;
		}
		if (c->ioff > 0) {
			memmove(c->ibuf, c->ibuf + c->ioff, c->ilen - c->ioff);
			c->ilen -= c->ioff;
			c->ioff = 0;
		}
		if (c->mode == M_STREAM && f == FEED_DRAINED &&
		    mk_dstream_room(c->ds) == 0) {
			c->in_blocked = true;
			break;
		}
		if (c->mode != M_STREAM && !mk_derpc_room(c->dc, 1)) {
			c->in_blocked = true;
			break;
		}
		do
			n = read(c->in.fd, c->ibuf + c->ilen,
			    sizeof(c->ibuf) - c->ilen);
		while (n < 0 && errno == EINTR);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			mk_warn("stdin: %s", strerror(errno));
			n = 0;
		}
		if (n == 0) {
			c->in_eof = true;
			continue;	/* send what is left, then end */
		}
		c->ilen += (size_t)n;
		if (!c->in.nonblock) {
			/* a terminal: one read a readiness, or it blocks */
			(void)feed(c);
			break;
		}
	}
	c->in_busy = false;
}

/* ---- the stream ---- */

static int
ds_send(void *arg, const uint8_t *pkt, size_t len)
{
	struct client *c = arg;

	return mk_derpc_send(c->dc, &c->peer, pkt, len) == 0 ? 0 : -1;
}

static void
ds_readable(void *arg)
{
	drain_stream(arg);
}

static void
ds_sendable(void *arg)
{
	struct client *c = arg;

	if (c->in_blocked)
		on_stdin(c);
}

static void
ds_error(void *arg, const char *why)
{
	struct client *c = arg;

	mk_err("%s", why);
	stop(c, MK_EXIT_FAIL);
}

static void
on_ds_timer(struct mk_loop *l, struct mk_timer *t)
{
	struct client *c = t->arg;

	(void)l;
	mk_dstream_tick(c->ds, mk_now_us());
	sync_state(c);
}

/* ---- the relay ---- */

static void
dc_connected(struct mk_derpc *dc, void *arg)
{
	struct client *c = arg;
	char kb[MK_KEY_B64LEN + 1];

	mk_key_to_base64(kb, mk_derpc_server_key(dc));
	mk_info("connected to %s (server key %s)", mk_derpc_target(dc)->url.url,
	    kb);
	c->ever_up = true;
	if (c->ds != NULL)
		mk_dstream_writable(c->ds, mk_now_us());
	if (c->in_blocked)
		on_stdin(c);
	sync_state(c);
}

/*
 * As nc, the command fails at once, with the reason, when the relay
 * cannot be reached (each relay tried once); it keeps trying with
 * backoff only once it has been connected (the relay restarts, the
 * stream goes on) or with --retry. -w bounds both waits.
 */
static void
dc_disconnected(struct mk_derpc *dc, void *arg, int kind, const char *why)
{
	struct client *c = arg;

	snprintf(c->last_why, sizeof(c->last_why), "%s", why);
	if (!c->ever_up)
		c->fails++;
	if (kind == MK_DERPC_ERR_TLS || kind == MK_DERPC_ERR_REFUSED ||
	    (kind == MK_DERPC_ERR_PROTO && !c->ever_up) ||
	    (!c->ever_up && !c->o->retry && c->fails >= c->n_targets)) {
		mk_err("%s: %s", mk_derpc_target(dc)->url.url, why);
		stop(c, MK_EXIT_FAIL);
		return;
	}
	if (!c->ever_up && !c->o->retry) {
		mk_warn("%s: %s; trying the next relay",
		    mk_derpc_target(dc)->url.url, why);
		return;
	}
	if (c->ever_up)
		mk_warn("%s: %s; reconnecting", mk_derpc_target(dc)->url.url,
		    why);
	else
		mk_info("%s: %s; trying again", mk_derpc_target(dc)->url.url,
		    why);
}

static void
dc_recv(struct mk_derpc *dc, void *arg, const struct mk_key *src,
    const uint8_t *pkt, size_t len)
{
	struct client *c = arg;
	char kb[MK_KEY_B64LEN + 1];

	(void)dc;
	if (!mk_key_equal(src, &c->peer)) {
		mk_debug("a packet from %s, not the peer: ignored",
		    (mk_key_to_base64(kb, src), kb));
		return;
	}
	c->activity_us = mk_now_us();
	switch (c->mode) {
	case M_STREAM:
		if (mk_dstream_input(c->ds, pkt, len, mk_now_us()) != 0 &&
		    !c->warned_foreign) {
			c->warned_foreign = true;
			mk_warn("the peer sent packets that are not derpcat's "
			    "stream (is it in --raw mode?); ignored");
		}
		break;
	case M_RAW:
		out_packet(c, pkt, len);
		break;
	case M_UDP:
		if (c->usrc.len == 0 || sendto(c->ufd, pkt, len,
		    MSG_DONTWAIT, &c->usrc.sa, c->usrc.len) < 0)
			c->udp_drops++;
		break;
	default:
		break;
	}
	sync_state(c);
}

static void
dc_peer_gone(struct mk_derpc *dc, void *arg, const struct mk_key *peer,
    uint8_t reason)
{
	struct client *c = arg;
	char kb[MK_KEY_B64LEN + 1];

	(void)dc;
	mk_key_to_base64(kb, peer);
	if (c->mode == M_WATCH) {
		printf("%s gone %s\n", kb,
		    reason == MK_DERP_GONE_DISCONNECTED ? "disconnected" :
		    reason == MK_DERP_GONE_NOT_HERE ? "not-here" : "other");
		fflush(stdout);
		return;
	}
	if (mk_key_equal(peer, &c->peer))
		mk_info("the relay says the peer is %s",
		    reason == MK_DERP_GONE_NOT_HERE ? "not connected" :
		    "gone");
}

static void
dc_peer_present(struct mk_derpc *dc, void *arg, const struct mk_key *peer,
    const struct mk_addr *addr, uint8_t flags)
{
	char kb[MK_KEY_B64LEN + 1], a[MK_ADDRSTRLEN];

	(void)dc;
	(void)arg;
	mk_key_to_base64(kb, peer);
	printf("%s present %s%s%s%s%s\n", kb, mk_addr_fmt(addr, a, sizeof(a)),
	    (flags & MK_DERP_PRESENT_MESH_PEER) ? " mesh" : "",
	    (flags & MK_DERP_PRESENT_REGULAR) ? " regular" : "",
	    (flags & MK_DERP_PRESENT_PROBER) ? " prober" : "",
	    (flags & MK_DERP_PRESENT_NOT_IDEAL) ? " not-ideal" : "");
	fflush(stdout);
}

static void
dc_writable(struct mk_derpc *dc, void *arg)
{
	struct client *c = arg;

	(void)dc;
	if (c->ds != NULL)
		mk_dstream_writable(c->ds, mk_now_us());
	if (c->in_blocked)
		on_stdin(c);
	sync_state(c);
}

static void
on_udp(struct mk_loop *l, struct mk_io *io, uint32_t events)
{
	struct client *c = io->arg;
	struct mk_addr from;
	uint8_t *pkt;
	size_t len;
	bool trunc;
	int round, i, n, fam = mk_sock_family(c->ufd);

	(void)l;
	(void)events;
	/* a few batches a wake-up, bounded so the relay side gets its turn */
	for (round = 0; round < 4; round++) {
		if ((n = mk_udpbatch_recv(&c->ubatch, c->ufd)) <= 0)
			break;
		for (i = 0; i < n; i++) {
			pkt = mk_udpbatch_get(&c->ubatch, (unsigned)i, &len,
			    &from, &trunc);
			if (trunc) {
				c->udp_drops++;
				continue;
			}
			/* answers go to whoever sent last, as nc -u -l */
			mk_addr_for_socket(&c->usrc, &from, fam);
			if (mk_derpc_send(c->dc, &c->peer, pkt, len) != 0)
				c->udp_drops++;
		}
		c->activity_us = mk_now_us();
	}
	sync_state(c);
}

/* ---- when to stop ---- */

/*
 * On the way out, the end waits for things no callback of ours reports
 * (the relay client's queue draining, the linger running out): the tick
 * looks again. Without -w and before the end, no timer runs at all.
 */
static void
ending(struct client *c)
{
	if (!mk_timer_armed(&c->tick))
		mk_timer_in(&c->loop, &c->tick, TICK_US);
}

static void
check_done(struct client *c)
{
	uint64_t now = mk_now_us();

	if (c->mode == M_STREAM) {
		if (!c->quitting && c->in_done && (c->net_done || c->out_gone)) {
			/* as nc: both directions are over; close ours */
			c->quitting = true;
			c->quit_us = now;
			mk_dstream_shutdown(c->ds, now);
		}
		if (c->quitting && mk_dstream_tx_done(c->ds) &&
		    mk_derpc_queued(c->dc) == 0) {
			stop(c, 0);
			return;
		}
		if (c->quitting)
			ending(c);
		if (c->quitting && now - c->quit_us > LINGER_US &&
		    now - mk_dstream_last_progress(c->ds) > LINGER_US) {
			mk_warn("the peer did not acknowledge the end of the "
			    "stream");
			stop(c, 0);
		}
		return;
	}
	if (c->mode == M_RAW && c->in_done && c->o->fin && c->ioff == c->ilen &&
	    mk_derpc_queued(c->dc) == 0)
		stop(c, 0);
	else if (c->mode == M_RAW && c->in_done && c->out_gone)
		stop(c, 0);
	else if (c->mode == M_RAW && c->in_done && c->o->fin)
		ending(c);
}

/*
 * -w, as nc's: a connect and idle timeout. Not connected to the relay
 * within it, or (stream mode) no answer from the peer within it, or
 * nothing moving for that long with data still unacknowledged: a
 * failure (3). Idle with everything delivered: the end, as in nc (0).
 * Anything that moves (bytes either way, acknowledgements) restarts it.
 */
static void
on_tick(struct mk_loop *l, struct mk_timer *t)
{
	struct client *c = t->arg;
	uint64_t now = mk_now_us(), w = c->o->wait_ms * 1000, last;
	unsigned long long ms = (unsigned long long)c->o->wait_ms;

	(void)l;
	if (w == 0)
		goto again;	/* only ending: see ending() */
	if (!c->ever_up && now - c->start_us >= w) {
		if (c->last_why[0] != '\0')
			mk_err("%s: could not connect within %llu ms (%s)",
			    c->url, ms, c->last_why);
		else
			mk_err("%s: could not connect within %llu ms", c->url,
			    ms);
		stop(c, MK_EXIT_FAIL);
		return;
	}
	last = c->activity_us;
	if (c->ds != NULL && mk_dstream_last_progress(c->ds) > last)
		last = mk_dstream_last_progress(c->ds);
	if (c->ever_up && now - last >= w && !c->quitting) {
		if (c->mode == M_STREAM && !mk_dstream_heard(c->ds)) {
			mk_err("no answer from the peer within %llu ms%s%s",
			    ms, mk_derpc_up(c->dc) ? "" : "; relay: ",
			    mk_derpc_up(c->dc) ? "" : c->last_why);
			stop(c, MK_EXIT_FAIL);
			return;
		} else if ((c->mode == M_STREAM &&
		    !mk_dstream_tx_done(c->ds)) || !mk_derpc_up(c->dc)) {
			mk_err("nothing moved for %llu ms%s%s", ms,
			    mk_derpc_up(c->dc) ? "" : "; relay: ",
			    mk_derpc_up(c->dc) ? "" : c->last_why);
			stop(c, MK_EXIT_FAIL);
			return;
		} else {
			mk_info("idle for %llu ms", ms);
			if (c->mode != M_STREAM) {
				stop(c, 0);
				return;
			}
			c->in_done = c->net_done = true;
		}
	}
again:
	mk_timer_in(l, t, TICK_US);
	sync_state(c);
}

static void
sync_state(struct client *c)
{
	uint64_t when;
	bool want_in;

	if (c->ds != NULL) {
		when = mk_dstream_next_timer(c->ds);
		if (when == UINT64_MAX)
			mk_timer_cancel(&c->loop, &c->ds_timer);
		else if (!mk_timer_armed(&c->ds_timer) ||
		    c->ds_timer.when_us != when)
			mk_timer_at(&c->loop, &c->ds_timer, when);
	}
	if (c->mode == M_STREAM || c->mode == M_RAW) {
		want_in = !c->in_done && !c->in_blocked;
		if (c->mode == M_RAW && !mk_derpc_up(c->dc))
			want_in = false;
		fdio_want(c, &c->in, want_in ? EPOLLIN : 0);
		fdio_want(c, &c->out, (c->mode == M_RAW ? c->olen > 0 :
		    mk_dstream_peek(c->ds, &(size_t){ 0 }, &(bool){ false }) !=
		    NULL) && !c->out_gone ? EPOLLOUT : 0);
	}
	check_done(c);
}

/* ---- setting up ---- */

/*
 * The relays to dial: the URL given, else a --derpmap region, else every
 * relay line of mesh.conf (-c, or the default file), in its order.
 */
static int
client_targets(const struct opts *o, const char *url,
    const struct mk_mesh *mesh, struct mk_derpc_target *t, size_t *n)
{
	struct mk_relayset rs;
	char err[600];
	const char *why;
	size_t i;

	if (url != NULL) {
		memset(t, 0, sizeof(*t));
		if (mk_url_parse(&t->url, url, MK_URL_RELAY, &why) != 0) {
			mk_err("bad relay URL %s: %s", url, why);
			return MK_EXIT_USAGE;
		}
		*n = 1;
	} else if (o->derpmap != NULL) {
		if (mk_relayset_load_derpmap(&rs, o->derpmap, err,
		    sizeof(err)) != 0) {
			mk_err("%s", err);
			return MK_EXIT_USAGE;
		}
		if (mk_relayset_region(&rs, (int)o->region) == NULL) {
			mk_err("%s: no region %lld", o->derpmap, o->region);
			mk_relayset_free(&rs);
			return MK_EXIT_USAGE;
		}
		*n = mk_relayset_targets(&rs, (int)o->region, t, MAX_TARGETS);
		mk_relayset_free(&rs);
		if (*n == 0) {
			mk_err("%s: region %lld has no node to dial",
			    o->derpmap, o->region);
			return MK_EXIT_USAGE;
		}
	} else {
		if (mk_relayset_from_mesh(&rs, mesh, &why) != 0) {
			mk_err("%s", why);
			return MK_EXIT_FAIL;
		}
		*n = mk_relayset_targets(&rs, 0, t, MAX_TARGETS);
		mk_relayset_free(&rs);
		if (*n == 0) {
			mk_err("%s: no relay line", o->mesh != NULL ? o->mesh :
			    mk_mesh_default_path());
			return MK_EXIT_USAGE;
		}
	}
	for (i = 0; i < *n && o->pin != NULL; i++) {
		if (mk_tls_pin_parse(t[i].pin, o->pin) != 0)
			mk_usage_error("bad pin: %s", o->pin);
		t[i].has_pin = true;
	}
	return 0;
}

/* The peer: a public key, else a node name of mesh.conf. */
static int
client_peer(const struct opts *o, const char *peer, const struct mk_mesh *mesh,
    bool have_mesh, struct mk_key *k)
{
	const struct mk_mesh_node *node;
	const char *why;

	if (mk_key_parse(k, peer, &why) == 0)
		return 0;
	if (!have_mesh)
		mk_usage_error("bad peer key: %s", peer);
	if ((node = mk_mesh_find_name(mesh, peer)) == NULL)
		mk_usage_error("%s: no node %s (and not a key)", o->mesh != NULL ?
		    o->mesh : mk_mesh_default_path(), peer);
	*k = node->pubkey;
	return 0;
}

static int
open_udp(struct client *c, const char *spec)
{
	struct mk_addr a;
	char buf[300], s[MK_ADDRSTRLEN];
	const char *why;

	/* "PORT" alone is on 127.0.0.1 */
	if (strspn(spec, "0123456789") == strlen(spec))
		snprintf(buf, sizeof(buf), "127.0.0.1:%s", spec);
	else
		snprintf(buf, sizeof(buf), "%s", spec);
	if (mk_addr_parse(&a, buf, 0, MK_ADDR_NEED_PORT, &why) != 0)
		mk_usage_error("bad --udp address: %s", spec);
	if ((c->ufd = mk_udp_bind(&a, 0, &why)) < 0) {
		mk_err("%s %s: %s", why, spec, strerror(errno));
		return -1;
	}
	/* datagrams as large as a DERP packet, 16 a batch */
	if (mk_udpbatch_init(&c->ubatch, 16, IN_CAP) != 0) {
		mk_err("--udp: %s", strerror(errno));
		return -1;
	}
	c->uio.fd = c->ufd;
	c->uio.fn = on_udp;
	c->uio.arg = c;
	if (mk_loop_add(&c->loop, &c->uio, EPOLLIN) != 0) {
		mk_err("event loop: %s", strerror(errno));
		return -1;
	}
	if (mk_sock_local(c->ufd, &a) == 0)
		mk_warn("UDP on %s", mk_addr_fmt(&a, s, sizeof(s)));
	return 0;
}

static int
run_client(const struct opts *o, const char *url, const char *peer,
    const struct mk_mesh *mesh, bool have_mesh)
{
	static const struct mk_derpc_cb cb = {
		.connected = dc_connected,
		.disconnected = dc_disconnected,
		.recv = dc_recv,
		.peer_gone = dc_peer_gone,
		.peer_present = dc_peer_present,
		.writable = dc_writable,
	};
	static const struct mk_dstream_cb dcb = {
		.send = ds_send,
		.readable = ds_readable,
		.sendable = ds_sendable,
		.error = ds_error,
	};
	static struct client cl;
	struct client *c = &cl;
	struct mk_derpc_target targets[MAX_TARGETS];
	struct mk_derpc_config cfg;
	struct mk_derpc_stats st;
	char kb[MK_KEY_B64LEN + 1];
	const char *why;
	size_t n = 0;
	int rc;

	c->o = o;
	c->ufd = -1;
	c->mode = o->watch ? M_WATCH : o->udp ? M_UDP : o->raw ? M_RAW :
	    M_STREAM;
	/* --watch names no peer (peer is NULL then); every other mode does */
	if (c->mode != M_WATCH && (peer == NULL ||
	    client_peer(o, peer, mesh, have_mesh, &c->peer) != 0))
		mk_usage_error("bad peer key: %s", peer ? peer : "(none)");
	if ((rc = client_targets(o, url, mesh, targets, &n)) != 0)
		return rc;
	c->n_targets = n;
	snprintf(c->url, sizeof(c->url), "%s", targets[0].url.url);
	mk_derpc_config_init(&cfg);
	if (o->keyfile != NULL) {
		if (mk_key_read_file(&c->priv, o->keyfile, &why) != 0) {
			mk_err("%s: %s", o->keyfile, why);
			return MK_EXIT_USAGE;
		}
		warn_exposed(o->keyfile);
	} else {
		struct mk_key pub;

		mk_key_generate(&c->priv);
		mk_key_public(&pub, &c->priv);
		mk_key_to_base64(kb, &pub);
		mk_warn("no -k: this run's key is %s", kb);
	}
	if (o->mesh_key != NULL) {
		if (read_mesh_key(o->mesh_key, cfg.mesh_key, &why) != 0) {
			mk_err("%s: %s", o->mesh_key, why);
			return MK_EXIT_USAGE;
		}
		cfg.has_mesh_key = true;
	}
	cfg.priv = c->priv;
	cfg.targets = targets;
	cfg.n_targets = n;
	cfg.cafile = o->cafile;
	cfg.insecure = o->insecure;
	cfg.watch = o->watch;
	cfg.preferred = c->mode != M_WATCH;
	cfg.proxy = mk_derpc_proxy_from_env(&targets[0].url);
	cfg.no_proxy = NULL;	/* mk_derpc_proxy_from_env applied it */
	if (mk_loop_init(&c->loop) != 0) {
		mk_err("event loop: %s", strerror(errno));
		return MK_EXIT_FAIL;
	}
	if (mk_derpc_new(&c->dc, &c->loop, &cfg, &cb, c, &why) != 0) {
		mk_err("%s", why);
		rc = MK_EXIT_USAGE;
		goto out;
	}
	if (cfg.proxy != NULL) {
		char red[512];

		/* never its password, at any -v */
		mk_info("through the proxy %s",
		    mk_url_redact(cfg.proxy, red, sizeof(red)));
	}
	sodium_memzero(&cfg, sizeof(cfg));
	mk_timer_init(&c->ds_timer, on_ds_timer, c);
	mk_timer_init(&c->tick, on_tick, c);
	mk_timer_init(&c->pump, on_pump, c);
	if (c->mode == M_STREAM && mk_dstream_new(&c->ds, &c->priv, &c->peer,
	    &dcb, c) != 0) {
		mk_err("cannot set up the stream");
		rc = MK_EXIT_FAIL;
		goto out;
	}
	if (c->mode == M_STREAM || c->mode == M_RAW) {
		fdio_init(c, &c->in, STDIN_FILENO);
		fdio_init(c, &c->out, STDOUT_FILENO);
		if (o->no_stdin) {
			c->in_eof = true;
			input_ended(c);
		}
	}
	if (c->mode == M_UDP && open_udp(c, o->udp) != 0) {
		rc = MK_EXIT_FAIL;
		goto out;
	}
	c->start_us = c->activity_us = mk_now_us();
	/* only -w needs a clock; without it a waiting derpcat sleeps */
	if (o->wait_ms != 0)
		mk_timer_in(&c->loop, &c->tick, TICK_US);
	mk_derpc_start(c->dc);
	sync_state(c);
	c->rc = MK_EXIT_FAIL;
	if (mk_loop_run(&c->loop) != 0) {
		mk_err("event loop: %s", strerror(errno));
		goto out;
	}
	rc = c->rc;
	mk_derpc_get_stats(c->dc, &st);
	mk_info("sent %llu packets (%llu bytes), received %llu (%llu bytes)",
	    (unsigned long long)st.sent_packets,
	    (unsigned long long)st.sent_bytes,
	    (unsigned long long)st.recv_packets,
	    (unsigned long long)st.recv_bytes);
	if (c->ds != NULL) {
		struct mk_dstream_stats ds;

		mk_dstream_get_stats(c->ds, &ds);
		mk_info("stream: %llu retransmitted, %llu duplicates, "
		    "rtt %.3f ms", (unsigned long long)ds.retransmits,
		    (unsigned long long)ds.duplicates,
		    (double)ds.srtt_us / 1000.0);
	}
	if (c->out_drops || c->udp_drops)
		mk_warn("dropped %llu packets (output full or no local peer)",
		    (unsigned long long)(c->out_drops + c->udp_drops));
out:
	mk_derpc_free(c->dc);
	mk_dstream_free(c->ds);
	if (c->ufd >= 0)
		close(c->ufd);
	mk_udpbatch_free(&c->ubatch);
	free(c->obuf);
	mk_loop_free(&c->loop);
	sodium_memzero(&c->priv, sizeof(c->priv));
	return rc;
}

/* ---- main ---- */

enum {
	OPT_LINES = 256,
	OPT_RAW,
	OPT_UDP,
	OPT_WATCH,
	OPT_CAFILE,
	OPT_PIN,
	OPT_INSECURE,
	OPT_DERPMAP,
	OPT_REGION,
	OPT_HTTP,
	OPT_CERT,
	OPT_CERTKEY,
	OPT_STATE,
	OPT_HOSTNAME,
	OPT_STUN_PORT,
	OPT_VERIFY,
	OPT_MESH_KEY,
	OPT_MESH_WITH,
	OPT_MAX_CONNS,
	OPT_RETRY,
};

static const struct option longopts[] = {
	{ "cafile", required_argument, NULL, OPT_CAFILE },
	{ "cert", required_argument, NULL, OPT_CERT },
	{ "certkey", required_argument, NULL, OPT_CERTKEY },
	{ "derpmap", required_argument, NULL, OPT_DERPMAP },
	{ "help", no_argument, NULL, 'h' },
	{ "hostname", required_argument, NULL, OPT_HOSTNAME },
	{ "http", no_argument, NULL, OPT_HTTP },
	{ "insecure", no_argument, NULL, OPT_INSECURE },
	{ "key", required_argument, NULL, 'k' },
	{ "lines", no_argument, NULL, OPT_LINES },
	{ "listen", required_argument, NULL, 'l' },
	{ "max-conns", required_argument, NULL, OPT_MAX_CONNS },
	{ "mesh", required_argument, NULL, 'c' },
	{ "mesh-key", required_argument, NULL, OPT_MESH_KEY },
	{ "mesh-with", required_argument, NULL, OPT_MESH_WITH },
	{ "pin", required_argument, NULL, OPT_PIN },
	{ "quiet", no_argument, NULL, 'q' },
	{ "raw", no_argument, NULL, OPT_RAW },
	{ "region", required_argument, NULL, OPT_REGION },
	{ "retry", no_argument, NULL, OPT_RETRY },
	{ "state", required_argument, NULL, OPT_STATE },
	{ "stun-port", required_argument, NULL, OPT_STUN_PORT },
	{ "udp", required_argument, NULL, OPT_UDP },
	{ "verbose", no_argument, NULL, 'v' },
	{ "verify-clients", required_argument, NULL, OPT_VERIFY },
	{ "version", no_argument, NULL, 'V' },
	{ "watch", no_argument, NULL, OPT_WATCH },
	{ "wait", required_argument, NULL, 'w' },
	{ NULL, 0, NULL, 0 },
};

/* Client-only options given with -l, or server-only without it. */
static void
check_modes(const struct opts *o)
{
	bool client = o->keyfile || o->fin || o->no_stdin || o->wait_ms ||
	    o->lines || o->raw || o->udp || o->watch || o->derpmap ||
	    o->region_set || o->mesh || o->retry;
	bool server = o->http || o->cert || o->certkey || o->state ||
	    o->hostname || o->stun_port_set || o->verify || o->n_mesh ||
	    o->max_conns_set;

	if (o->listen != NULL && client)
		mk_usage_error("%s", "client options given with -l");
	if (o->listen == NULL && server)
		mk_usage_error("%s", "server options need -l");
	if ((o->lines || o->raw || o->udp) && o->watch)
		mk_usage_error("%s", "--watch moves no data");
	if (o->raw + (o->udp != NULL) > 1 ||
	    (o->udp != NULL && o->lines))
		mk_usage_error("%s", "--raw, --udp and --lines: choose one "
		    "(--lines may go with --raw)");
	if (o->watch && o->mesh_key == NULL)
		mk_usage_error("%s", "--watch needs --mesh-key");
	if ((o->derpmap != NULL) != o->region_set)
		mk_usage_error("%s", "--derpmap and --region go together");
	if (o->derpmap != NULL && o->mesh != NULL)
		mk_usage_error("%s", "relays from --derpmap or -c: choose one");
	if (o->http && (o->cert || o->certkey))
		mk_usage_error("%s", "--http serves no certificate");
	if ((o->cert != NULL) != (o->certkey != NULL))
		mk_usage_error("%s", "--cert and --certkey go together");
	if (o->n_mesh > 0 && o->mesh_key == NULL)
		mk_usage_error("%s", "--mesh-with needs --mesh-key");
	if (o->insecure && (o->pin || o->cafile))
		mk_usage_error("%s", "--insecure checks nothing: no --pin or "
		    "--cafile with it");
}

/*
 * The client's arguments: URL PEER; PEER alone with --derpmap, or with
 * the relays of mesh.conf (-c, else the default file if it exists); the
 * URL alone with --watch. PEER may be a node name of mesh.conf.
 */
static int
client_main(const struct opts *o, int argc, char *argv[])
{
	struct mk_mesh mesh;
	const char *url = NULL, *peer = NULL;
	char err[600];
	bool need_mesh;
	int have, rc;

	if (o->watch) {
		if (argc != 1)
			mk_usage_error("%s", "--watch takes one relay URL");
		url = argv[0];
	} else if (argc == 2 && o->derpmap == NULL) {
		url = argv[0];
		peer = argv[1];
	} else if (argc == 1) {
		peer = argv[0];
	} else if (o->derpmap != NULL)
		mk_usage_error("%s", "with --derpmap, give only the peer key");
	else
		mk_usage_error("%s", "give a relay URL and the peer's key");
	/* the mesh file: asked for, or wanted for relays or a peer's name */
	need_mesh = o->mesh != NULL || (url == NULL && o->derpmap == NULL);
	if (!need_mesh && peer != NULL) {
		struct mk_key k;
		const char *why;

		need_mesh = mk_key_parse(&k, peer, &why) != 0;
	}
	memset(&mesh, 0, sizeof(mesh));
	have = 0;
	if (need_mesh &&
	    (have = mk_mesh_load_given(&mesh, o->mesh, err, sizeof(err))) < 0) {
		mk_err("%s", err);
		return MK_EXIT_USAGE;
	}
	if (have == 0 && url == NULL && o->derpmap == NULL)
		mk_usage_error("%s", "give a relay URL and the peer's key");
	rc = run_client(o, url, peer, &mesh, have == 1);
	mk_mesh_free(&mesh);
	return rc;
}

int
main(int argc, char *argv[])
{
	struct opts o;
	int ch, verbose = 0, quiet = 0;
	long long v;
	uint64_t ms;

	memset(&o, 0, sizeof(o));
	mk_cli_init("derpcat", usage);
	while ((ch = getopt_long(argc, argv, "c:dhk:l:NqvVw:", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'c':
			o.mesh = optarg;
			break;
		case 'd':
			o.no_stdin = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'k':
			o.keyfile = optarg;
			break;
		case 'l':
			o.listen = optarg;
			break;
		case 'N':
			o.fin = true;
			break;
		case 'q':
			quiet++;
			break;
		case 'v':
			verbose++;
			break;
		case 'V':
			printf("derpcat %s\n", MK_VERSION);
			return 0;
		case 'w':
			if (mk_parse_seconds_ms(optarg, 86400000, &ms) != 0 ||
			    ms == 0)
				mk_usage_error("bad wait: %s", optarg);
			o.wait_ms = ms;
			break;
		case OPT_LINES:
			o.lines = true;
			break;
		case OPT_RAW:
			o.raw = true;
			break;
		case OPT_UDP:
			o.udp = optarg;
			break;
		case OPT_WATCH:
			o.watch = true;
			break;
		case OPT_CAFILE:
			o.cafile = optarg;
			break;
		case OPT_PIN:
			{
				uint8_t pin[MK_TLS_PIN_LEN];

				if (mk_tls_pin_parse(pin, optarg) != 0)
					mk_usage_error("bad pin: %s (want "
					    "sha256-raw:<64 hex digits>)",
					    optarg);
			}
			o.pin = optarg;
			break;
		case OPT_INSECURE:
			o.insecure = true;
			break;
		case OPT_DERPMAP:
			o.derpmap = optarg;
			break;
		case OPT_REGION:
			if (mk_strtonum(optarg, 1, INT32_MAX, &v) != 0)
				mk_usage_error("bad region: %s", optarg);
			o.region = v;
			o.region_set = true;
			break;
		case OPT_HTTP:
			o.http = true;
			break;
		case OPT_CERT:
			o.cert = optarg;
			break;
		case OPT_CERTKEY:
			o.certkey = optarg;
			break;
		case OPT_STATE:
			o.state = optarg;
			break;
		case OPT_HOSTNAME:
			o.hostname = optarg;
			break;
		case OPT_STUN_PORT:
			if (mk_strtonum(optarg, 0, 65535, &o.stun_port) != 0)
				mk_usage_error("bad port: %s", optarg);
			o.stun_port_set = true;
			break;
		case OPT_VERIFY:
			o.verify = optarg;
			break;
		case OPT_MESH_KEY:
			o.mesh_key = optarg;
			break;
		case OPT_MESH_WITH:
			if (o.n_mesh == MAX_MESH)
				mk_usage_error("%s", "too many --mesh-with");
			o.mesh_with[o.n_mesh++] = optarg;
			break;
		case OPT_RETRY:
			o.retry = true;
			break;
		case OPT_MAX_CONNS:
			if (mk_strtonum(optarg, 0, 1000000, &o.max_conns) != 0)
				mk_usage_error("bad connection limit: %s", optarg);
			o.max_conns_set = true;
			break;
		default:
			usage(stderr);
			return MK_EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;

	mk_log_init("derpcat", quiet ? MK_LOG_ERR : MK_LOG_WARN + verbose);
	check_modes(&o);
	/* a relay or peer that goes away is an error return, not a death */
	signal(SIGPIPE, SIG_IGN);
	if (mk_key_init() != 0) {
		mk_err("cannot initialise libsodium");
		return MK_EXIT_FAIL;
	}
	if (o.listen != NULL) {
		if (argc > 0)
			mk_usage_error("unexpected argument with -l: %s", argv[0]);
		return run_server(&o);
	}
	return client_main(&o, argc, argv);
}
