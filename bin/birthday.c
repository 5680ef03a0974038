/* SPDX-License-Identifier: MIT */
/*
 * birthday: birthday-paradox traversal of an endpoint-dependent NAT, and
 * the table of its odds.
 *
 * The hard side (endpoint-dependent mapping) opens many sockets and pings
 * the easy side's public ip:port from each; the easy side pings random
 * ports of the hard side's public IP until one lands on a mapping that
 * admits it (lib/birthday). The two meet on a DERP relay first, where a
 * disco message of meshkit's own (0x80, a hello) tells each the other's
 * role and public address; or a person gives the addresses.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "addr.h"
#include "birthday.h"
#include "cli.h"
#include "derp_client.h"
#include "disco.h"
#include "handoff.h"
#include "key.h"
#include "log.h"
#include "loop.h"
#include "meshconf.h"
#include "relayset.h"
#include "sock.h"
#include "stunclient.h"
#include "tls.h"
#include "url.h"
#include "util.h"
#include "version.h"

#define MAX_RELAYS	8
#define HELLO_EVERY_US	500000	/* hello again until probing starts */
#define START_MS	1000	/* the easy side waits for the hard side's
				 * first round of pings */
#define GRACE_US	3000000	/* after the last probe: late answers */
#define NONCE_CACHE	256
#define PROGRESS_US	250000
#define STUN_TIMEOUT_US	3000000

enum verb { VERB_HARD, VERB_EASY };

struct opts {
	enum verb	 verb;
	const char	*keyfile;
	const char	*relays[MAX_RELAYS];
	size_t		 n_relays;
	const char	*pin;
	const char	*cafile;
	bool		 insecure;
	const char	*mesh;
	const char	*stun;
	long long	 port;
	uint64_t	 wait_ms;
	int		 fd;
	const char	*peer_addr;
	bool		 json;
	bool		 quiet;
	const char	*peer;
	char		**cmd;
	long long	 ports, count, rate;
	bool		 force;
	bool		 both_hard;
};

struct bd {
	const struct opts *o;
	struct mk_loop	 loop;
	struct mk_key	 priv, pub, peer;
	struct mk_disco_shared shared;
	enum mk_bday_role role;
	struct mk_derpc	*dc;
	int		 easy_fd;	/* EASY: its one socket until the
					 * engine owns it */
	struct mk_addr	 public;	/* ours, as STUN saw it */
	struct mk_bday_hello peer_hello;
	bool		 have_peer, started, relay_ever;
	struct mk_disco_replay replay;	/* NONCE_CACHE nonces seen */
	struct mk_bday	*engine;
	struct mk_timer	 hello_timer, deadline, start_timer, progress;
	bool		 progress_shown;
	int		 rc;
};

static void
usage(FILE *f)
{
	fprintf(f,
"usage: birthday hard | easy -k keyfile (--relay url | -c mesh.conf |\n"
"             --peer-addr ip[:port]) [-jqv] [--cafile file]\n"
"             [--pin sha256-raw:hex] [--insecure] [--stun host:port]\n"
"             [-p port | --fd n] [-w seconds] [--ports n] [--count n]\n"
"             [--rate r] [--force] [--both-hard] peerkey | nodename\n"
"             [-- command [arg ...]]\n"
"       birthday table [-j] [--ports n] [--space s] [--rate r]\n"
"             [--both-hard]\n");
}

/* ---- the table ---- */

/* A percentage with as many decimals as it takes not to read 100 (a
 * chance is never certain), up to six. */
static void
fmt_pct(char *out, size_t n, double p)
{
	int d;

	for (d = 2; d <= 6; d++)
		if (p * 100 < 100 - 0.5 * pow(10, -d)) {
			snprintf(out, n, "%.*f", d, p * 100);
			return;
		}
	snprintf(out, n, ">99.99999");
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void
table_row(bool json, bool both, double probes, double p, double rate,
    double ports, double space)
{
	char pct[32];

	fmt_pct(pct, sizeof(pct), p);
	if (json)
		printf("{\"mode\":\"%s\",\"ports\":%.0f,\"space\":%.0f,"
		    "\"rate\":%.0f,\"probes\":%.0f,\"success\":%.9f,"
		    "\"seconds\":%.1f}\n", both ? "both-hard" : "one-hard",
		    ports, space, rate, probes, p, probes / rate);
	else
		printf("%-9.0f %-9s %.1f\n", probes, pct, probes / rate);
}

static int
cmd_table(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "both-hard", no_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ "json", no_argument, NULL, 'j' },
		{ "ports", required_argument, NULL, 'n' },
		{ "rate", required_argument, NULL, 'r' },
		{ "space", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	static const double targets[] = { 0.5, 0.9, 0.99, 0.999 };
	long long ports = MK_BDAY_PORTS, space = MK_BDAY_SPACE,
	    rate = MK_BDAY_RATE;
	double rows[16], prev = -1;
	bool json = false, both = false;
	size_t n = 0, i;
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "hj", longopts, NULL)) != -1) {
		switch (ch) {
		case 'b':
			both = true;
			break;
		case 'h':
			usage(stdout);
			return MK_EXIT_OK;
		case 'j':
			json = true;
			break;
		case 'n':
			if (mk_strtonum(optarg, 1, 65535, &ports) != 0)
				mk_usage_error("bad ports: %s", optarg);
			break;
		case 'r':
			if (mk_strtonum(optarg, 1, 1000000, &rate) != 0)
				mk_usage_error("bad rate: %s", optarg);
			break;
		case 's':
			if (mk_strtonum(optarg, 1, 65536, &space) != 0)
				mk_usage_error("bad space: %s", optarg);
			break;
		default:
			usage(stderr);
			return MK_EXIT_USAGE;
		}
	}
	if (optind < argc)
		mk_usage_error("unexpected argument: %s", argv[optind]);
	if (!both && ports >= space)
		mk_usage_error("%s", "ports must be fewer than the space");
	/* the probes each target needs; one-hard also at N, 4N and 8N */
	for (i = 0; i < MK_ARRAY_LEN(targets); i++)
		rows[n++] = both ? mk_bday_both_probes_for(targets[i],
		    (double)space) : mk_bday_probes_for(targets[i],
		    (double)ports, (double)space);
	if (!both) {
		rows[n++] = (double)ports;
		rows[n++] = 4.0 * (double)ports;
		rows[n++] = 8.0 * (double)ports;
	}
	qsort(rows, n, sizeof(rows[0]), cmp_double);
	if (!json)
		printf("%-9s %-9s %s\n", both ? "probes/side" : "probes",
		    "success%", "seconds");
	for (i = 0; i < n; i++) {
		if (rows[i] == prev)
			continue;
		prev = rows[i];
		table_row(json, both, rows[i], both ? mk_bday_both_chance(
		    (double)space, rows[i]) : mk_bday_chance((double)ports,
		    (double)space, rows[i]), (double)rate, (double)ports,
		    (double)space);
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		mk_err("stdout: %s", strerror(errno));
		return MK_EXIT_FAIL;
	}
	return MK_EXIT_OK;
}

/* ---- progress, on a terminal only ---- */

static void
progress_clear(struct bd *d)
{
	if (d->progress_shown)
		fputs("\r\033[K", stderr);
	d->progress_shown = false;
}

static void
on_progress(struct mk_loop *l, struct mk_timer *t)
{
	struct bd *d = t->arg;
	struct mk_bday_stats st;

	if (d->engine == NULL)
		return;
	mk_bday_get_stats(d->engine, &st);
	if (d->role == MK_BDAY_HARD) {
		fprintf(stderr, "\r\033[Kbirthday: %lld ports open, %.1f s, "
		    "%llu pings from the peer", d->o->ports,
		    (double)st.elapsed_us / 1e6, (unsigned long long)st.heard);
	} else {
		char pct[32];
		double p = d->role == MK_BDAY_EASY ? mk_bday_chance(
		    (double)(d->have_peer ? d->peer_hello.ports :
		    d->o->ports), MK_BDAY_SPACE, (double)st.sent) :
		    mk_bday_both_chance(MK_BDAY_SPACE, (double)st.sent);

		fmt_pct(pct, sizeof(pct), p);
		fprintf(stderr, "\r\033[Kbirthday: %llu probes, %.1f s, %s %% "
		    "chance so far", (unsigned long long)st.sent,
		    (double)st.elapsed_us / 1e6, pct);
	}
	d->progress_shown = true;
	mk_timer_in(l, t, PROGRESS_US);
}

/* ---- the engine ---- */

static void
stop(struct bd *d, int rc)
{
	d->rc = rc;
	mk_loop_stop(&d->loop);
}

static void
on_engine_done(struct mk_bday *b, void *arg)
{
	struct bd *d = arg;
	struct mk_bday_result r;

	mk_bday_result(b, &r);
	if (!r.won)
		mk_err("no hit after %llu probes in %.1f s",
		    (unsigned long long)r.probes, (double)r.elapsed_us / 1e6);
	stop(d, r.won ? MK_EXIT_OK : MK_EXIT_NO);
}

static int
engine_start(struct bd *d, const struct mk_addr *dst, uint64_t duration_us)
{
	struct mk_bday_config c;
	const char *why;
	char s[MK_ADDRSTRLEN];

	memset(&c, 0, sizeof(c));
	c.role = d->role;
	c.priv = d->priv;
	c.pub = d->pub;
	c.peer = d->peer;
	c.dst = *dst;
	c.ports = (unsigned)d->o->ports;
	c.fd = d->easy_fd;
	c.rate = (unsigned)d->o->rate;
	c.count = (uint64_t)d->o->count;
	c.duration_us = duration_us;
	c.grace_us = GRACE_US;
	c.force = d->o->force;
	c.done = on_engine_done;
	c.arg = d;
	if (mk_bday_new(&d->engine, &d->loop, &c, &why) != 0) {
		sodium_memzero(&c, sizeof(c));
		mk_err("%s: %s", why, strerror(errno));
		return -1;
	}
	sodium_memzero(&c, sizeof(c));
	d->easy_fd = -1;	/* the engine's now */
	d->started = true;
	mk_timer_cancel(&d->loop, &d->deadline);
	mk_info("probing %s as the %s side", mk_addr_fmt(dst, s, sizeof(s)),
	    d->role == MK_BDAY_HARD ? "hard" : d->role == MK_BDAY_EASY ?
	    "easy" : "both-hard");
	if (mk_bday_start(d->engine) != 0) {
		mk_err("event loop: %s", strerror(errno));
		return -1;
	}
	if (isatty(STDERR_FILENO) && !d->o->quiet)
		on_progress(&d->loop, &d->progress);
	return 0;
}

/* The hard side keeps its mappings open while the easy side can still
 * probe: its count at its rate, plus the wait for late answers. */
static uint64_t
hard_duration_us(uint64_t count, uint64_t rate)
{
	return (count * 1000000 + rate - 1) / rate + 2 * GRACE_US;
}

/* ---- the rendezvous over the relay ---- */

static uint8_t
wire_role(enum mk_bday_role r)
{
	return r == MK_BDAY_HARD ? MK_BDAY_ROLE_WIRE_HARD :
	    r == MK_BDAY_EASY ? MK_BDAY_ROLE_WIRE_EASY :
	    MK_BDAY_ROLE_WIRE_BOTH;
}

static void
send_hello(struct bd *d)
{
	struct mk_bday_hello h;
	uint8_t pt[MK_BDAY_HELLO_LEN], pkt[MK_BDAY_HELLO_LEN +
	    MK_DISCO_OVERHEAD];
	const char *why;
	ssize_t n;

	memset(&h, 0, sizeof(h));
	h.role = wire_role(d->role);
	h.flags = d->have_peer ? MK_BDAY_HELLO_HAVE_YOURS : 0;
	h.ports = (uint16_t)d->o->ports;
	h.count = (uint32_t)d->o->count;
	h.rate = (uint32_t)d->o->rate;
	h.start_ms = START_MS;
	h.addr = d->public;
	if ((n = mk_bday_put_hello(pt, sizeof(pt), &h, &why)) < 0 ||
	    (n = mk_disco_seal(pkt, sizeof(pkt), &d->pub, &d->shared, pt,
	    (size_t)n, &why)) < 0) {
		mk_warn("cannot make a hello: %s", why);
		return;
	}
	if (mk_derpc_send(d->dc, &d->peer, pkt, (size_t)n) != 0)
		mk_debug("hello not sent: %s", strerror(errno));
}

static void
on_hello_timer(struct mk_loop *l, struct mk_timer *t)
{
	struct bd *d = t->arg;

	if (d->dc != NULL && mk_derpc_up(d->dc))
		send_hello(d);
	mk_timer_in(l, t, HELLO_EVERY_US);
}

static void
on_start_timer(struct mk_loop *l, struct mk_timer *t)
{
	struct bd *d = t->arg;

	(void)l;
	if (engine_start(d, &d->peer_hello.addr, 0) != 0)
		stop(d, MK_EXIT_FAIL);
}

static const char *
roles_clash(enum mk_bday_role mine, uint8_t theirs)
{
	if (mine == MK_BDAY_BOTH && theirs != MK_BDAY_ROLE_WIRE_BOTH)
		return "we run --both-hard and the peer does not";
	if (mine != MK_BDAY_BOTH && theirs == MK_BDAY_ROLE_WIRE_BOTH)
		return "the peer runs --both-hard and we do not";
	if (mine == MK_BDAY_HARD && theirs == MK_BDAY_ROLE_WIRE_HARD)
		return "both sides are hard: that takes --both-hard on both";
	if (mine == MK_BDAY_EASY && theirs == MK_BDAY_ROLE_WIRE_EASY)
		return "both sides are easy: plain hole punching (punch) "
		    "does it";
	return NULL;
}

static void
got_hello(struct bd *d, const struct mk_bday_hello *h)
{
	char s[MK_ADDRSTRLEN];
	const char *clash;

	if ((clash = roles_clash(d->role, h->role)) != NULL) {
		mk_err("%s", clash);
		stop(d, MK_EXIT_USAGE);
		return;
	}
	if (!d->have_peer) {
		mk_info("the peer is at %s", mk_addr_fmt(&h->addr, s,
		    sizeof(s)));
		d->peer_hello = *h;
		d->have_peer = true;
		send_hello(d);	/* at once: it may be waiting for our flag */
	}
	if (d->started || mk_timer_armed(&d->start_timer) ||
	    !(h->flags & MK_BDAY_HELLO_HAVE_YOURS))
		return;
	mk_timer_cancel(&d->loop, &d->deadline);
	switch (d->role) {
	case MK_BDAY_HARD:
		if (h->rate == 0 || engine_start(d, &h->addr,
		    hard_duration_us(h->count, h->rate)) != 0)
			stop(d, MK_EXIT_FAIL);
		break;
	case MK_BDAY_EASY:
		/* the hard side's mappings first */
		mk_timer_in(&d->loop, &d->start_timer,
		    (uint64_t)(h->start_ms < 10000 ? h->start_ms : 10000) *
		    1000);
		break;
	case MK_BDAY_BOTH:
		if (engine_start(d, &h->addr, 0) != 0)
			stop(d, MK_EXIT_FAIL);
		break;
	}
}

static void
dc_recv(struct mk_derpc *c, void *arg, const struct mk_key *src,
    const uint8_t *pkt, size_t len)
{
	struct bd *d = arg;
	struct mk_bday_hello h;
	struct mk_key sender;
	uint8_t pt[256];
	const char *why;
	ssize_t n;

	(void)c;
	if (!mk_key_equal(src, &d->peer) ||
	    mk_disco_sender(&sender, pkt, len) != 0 ||
	    !mk_key_equal(&sender, src) ||
	    (n = mk_disco_open(pt, sizeof(pt), &d->shared, pkt, len,
	    &why)) < 0) {
		mk_debug("relay: a packet not from the peer: dropped");
		return;
	}
	if (mk_disco_replayed(&d->replay, pkt)) {
		mk_info("relay: replayed hello: dropped");
		return;
	}
	if (mk_bday_parse_hello(&h, pt, (size_t)n, &why) != 0) {
		mk_debug("relay: %s: dropped", why);
		return;
	}
	got_hello(d, &h);
}

static void
dc_connected(struct mk_derpc *c, void *arg)
{
	struct bd *d = arg;

	mk_info("on the relay %s", mk_derpc_target(c)->url.url);
	d->relay_ever = true;
	send_hello(d);
}

static void
dc_disconnected(struct mk_derpc *c, void *arg, int kind, const char *why)
{
	struct bd *d = arg;

	(void)kind;
	if (!d->relay_ever) {
		mk_err("relay %s: %s", mk_derpc_target(c)->url.url, why);
		stop(d, MK_EXIT_FAIL);
		return;
	}
	if (!d->started)
		mk_warn("relay %s: %s; trying again",
		    mk_derpc_target(c)->url.url, why);
}

static void
on_deadline(struct mk_loop *l, struct mk_timer *t)
{
	struct bd *d = t->arg;

	(void)l;
	if (d->started || mk_timer_armed(&d->start_timer))
		return;
	if (!d->relay_ever)
		mk_err("relay never answered");
	else
		mk_err("peer never appeared on the relay");
	stop(d, MK_EXIT_FAIL);
}

/* ---- setting up ---- */

static int
load_key(struct bd *d)
{
	const char *why;

	if (mk_key_load_private(&d->priv, &d->pub, d->o->keyfile,
	    &why) != 0) {
		mk_err("%s: %s", d->o->keyfile, why);
		return MK_EXIT_USAGE;
	}
	return 0;
}

static int
load_peer(struct bd *d, const struct mk_mesh *mesh)
{
	const struct mk_mesh_node *node;
	const char *why;

	if (mk_key_parse(&d->peer, d->o->peer, &why) != 0) {
		node = mesh != NULL ? mk_mesh_find_name(mesh, d->o->peer) :
		    NULL;
		if (node == NULL)
			mk_usage_error("%s: not a key%s", d->o->peer,
			    mesh != NULL ? " nor a node of the mesh" : "");
		d->peer = node->pubkey;
	}
	if (mk_key_equal(&d->peer, &d->pub))
		mk_usage_error("%s", "the peer is this node's own key");
	if (mk_disco_shared_init(&d->shared, &d->peer, &d->priv, &why) != 0) {
		mk_err("peer key: %s", why);
		return MK_EXIT_USAGE;
	}
	return 0;
}

/* --relay URLs (with --pin), then the mesh's relays in order. */
static int
load_targets(const struct opts *o, const struct mk_mesh *mesh,
    struct mk_derpc_target *t, size_t *n)
{
	char err[600];

	if (mk_relayset_client_targets(o->relays, o->n_relays, o->pin, mesh,
	    o->mesh, t, MAX_RELAYS, n, err, sizeof(err)) != 0) {
		mk_err("%s", err);
		return -1;
	}
	return 0;
}

/* The easy side's one socket: inherited (--fd) or bound (-p). */
static int
open_easy(struct bd *d)
{
	struct mk_addr a;
	const char *why;

	if (d->o->fd >= 0) {
		if (mk_udp_adopt(d->o->fd, &why) != 0) {
			mk_err("--fd %d: %s", d->o->fd, why);
			return -1;
		}
		d->easy_fd = d->o->fd;
		return 0;
	}
	mk_addr_any(&a, AF_INET, (uint16_t)d->o->port);
	if ((d->easy_fd = mk_udp_bind(&a, 0, &why)) < 0) {
		mk_err("%s UDP port %lld: %s", why, d->o->port,
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* Our public address, by STUN: the easy side's from its own socket (its
 * mapping is what the peer must aim at), the hard side's from a socket
 * of its own (only the IP means anything there). Blocking, before the
 * loop runs: there is nothing else to do yet. */
static int
learn_public(struct bd *d, const struct mk_mesh *mesh,
    const struct mk_derpc_target *t, size_t n_targets)
{
	struct mk_stunc_sched sched;
	struct mk_stunc_txn txn;
	struct mk_addr any;
	char name[300], s[MK_ADDRSTRLEN];
	const char *why;
	int fd = d->easy_fd;

	if (d->o->stun != NULL)
		snprintf(name, sizeof(name), "%s", d->o->stun);
	else if (mesh != NULL && mesh->n_stun > 0)
		snprintf(name, sizeof(name), "%s:%u", mesh->stun[0].host,
		    mesh->stun[0].port);
	else if (n_targets > 0)
		snprintf(name, sizeof(name), "%s:3478", t[0].url.host);
	else
		return 0;
	memset(&txn, 0, sizeof(txn));
	if (mk_addr_resolve(&txn.server, name, 3478, AF_INET, &why) != 0) {
		mk_err("STUN server %s: %s", name, why);
		return -1;
	}
	if (fd < 0) {
		mk_addr_any(&any, AF_INET, 0);
		if ((fd = mk_udp_bind(&any, 0, &why)) < 0) {
			mk_err("%s: %s", why, strerror(errno));
			return -1;
		}
	}
	mk_stunc_sched_fast(&sched, STUN_TIMEOUT_US);
	mk_stunc_exchange(fd, &txn, 1, &sched);
	if (fd != d->easy_fd)
		close(fd);
	if (txn.state != MK_STUNC_DONE || txn.mapped.len == 0) {
		mk_err("STUN server %s: %s", name,
		    mk_stunc_state_name(txn.state));
		return -1;
	}
	d->public = txn.mapped;
	mk_info("public address %s", mk_addr_fmt(&d->public, s, sizeof(s)));
	return 0;
}

static void
print_both_hard_cost(const struct opts *o)
{
	double k999 = mk_bday_both_probes_for(0.999, MK_BDAY_SPACE),
	    k50 = mk_bday_both_probes_for(0.5, MK_BDAY_SPACE);

	fprintf(stderr, "birthday: both sides endpoint-dependent: about %.0f "
	    "probes a side for 50 %%, %.0f for 99.9 %%: %.0f minutes at %lld "
	    "a second; this run stops after %lld (%.2f %%)\n", k50, k999,
	    k999 / (double)o->rate / 60, o->rate, o->count,
	    100 * mk_bday_both_chance(MK_BDAY_SPACE, (double)o->count));
}

/* ---- the result ---- */

static int
report(struct bd *d)
{
	struct mk_bday_result r;
	char s[MK_ADDRSTRLEN];

	mk_bday_result(d->engine, &r);
	mk_addr_fmt(&r.remote, s, sizeof(s));
	if (d->o->json)
		printf("{\"local_port\":%u,\"remote\":\"%s\",\"rtt_ms\":%.3f,"
		    "\"probes\":%llu,\"seconds\":%.3f}\n", r.local_port, s,
		    (double)r.rtt_us / 1000, (unsigned long long)r.probes,
		    (double)r.elapsed_us / 1e6);
	else
		printf("%u %s %.3f %llu %.3f\n", r.local_port, s,
		    (double)r.rtt_us / 1000, (unsigned long long)r.probes,
		    (double)r.elapsed_us / 1e6);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		mk_err("stdout: %s", strerror(errno));
		return MK_EXIT_FAIL;
	}
	return MK_EXIT_OK;
}

/*
 * The winning socket, connected to the peer's mapping, becomes descriptor
 * 3 of cmd (punch's contract); the losing sockets are closed, and every
 * other descriptor of ours is close-on-exec.
 */
static int
exec_cmd(struct bd *d)
{
	struct mk_bday_result r;
	int fd;

	mk_bday_result(d->engine, &r);
	if ((fd = mk_bday_take_winner(d->engine)) < 0)
		return MK_EXIT_FAIL;
	return mk_handoff_exec(fd, &r.remote, &r.remote, d->o->cmd);
}

static void
on_signal(struct mk_loop *l, int signo, void *arg)
{
	(void)l;
	mk_info("signal %d: leaving", signo);
	stop(arg, MK_EXIT_FAIL);
}

static int
start_relay(struct bd *d, const struct mk_derpc_target *t, size_t n)
{
	static const struct mk_derpc_cb cb = {
		.connected = dc_connected,
		.disconnected = dc_disconnected,
		.recv = dc_recv,
	};
	struct mk_derpc_config cfg;
	const char *why;
	int rc;

	mk_derpc_config_init(&cfg);
	cfg.priv = d->priv;
	cfg.targets = t;
	cfg.n_targets = n;
	cfg.cafile = d->o->cafile;
	cfg.insecure = d->o->insecure;
	cfg.proxy = mk_derpc_proxy_from_env(&t[0].url);
	rc = mk_derpc_new(&d->dc, &d->loop, &cfg, &cb, d, &why);
	sodium_memzero(&cfg, sizeof(cfg));
	if (rc != 0) {
		mk_err("%s", why);
		return -1;
	}
	mk_derpc_start(d->dc);
	mk_timer_in(&d->loop, &d->hello_timer, HELLO_EVERY_US);
	return mk_timer_in(&d->loop, &d->deadline, d->o->wait_ms * 1000);
}

/* --peer-addr: no relay, no STUN; a person said where the peer is. */
static int
start_manual(struct bd *d)
{
	struct mk_addr dst;
	const char *why;

	if (mk_addr_parse(&dst, d->o->peer_addr, 0, d->role == MK_BDAY_HARD ?
	    MK_ADDR_NEED_PORT : 0, &why) != 0)
		mk_usage_error("bad --peer-addr %s: %s%s", d->o->peer_addr, why,
		    d->role == MK_BDAY_HARD ? " (the hard side needs the easy "
		    "side's ip:port)" : "");
	if (mk_addr_family(&dst) != AF_INET)
		mk_usage_error("%s", "--peer-addr: IPv4 only (IPv6 has no "
		    "NAT to traverse)");
	return engine_start(d, &dst, hard_duration_us((uint64_t)d->o->count,
	    (uint64_t)d->o->rate));
}

static int
run(const struct opts *o)
{
	static const int sigs[] = { SIGINT, SIGTERM };
	static struct bd dd;
	struct bd *d = &dd;
	struct mk_derpc_target targets[MAX_RELAYS];
	struct mk_mesh mesh, *m = NULL;
	char err[600];
	size_t n_targets = 0;
	int rc;

	d->o = o;
	d->easy_fd = -1;
	if (mk_disco_replay_init(&d->replay, NONCE_CACHE) != 0) {
		mk_err("%s", strerror(errno));
		return MK_EXIT_FAIL;
	}
	d->role = o->verb == VERB_EASY ? MK_BDAY_EASY : o->both_hard ?
	    MK_BDAY_BOTH : MK_BDAY_HARD;
	memset(&mesh, 0, sizeof(mesh));
	if (o->mesh != NULL) {
		if (mk_mesh_load(&mesh, o->mesh, err, sizeof(err)) != 0) {
			mk_err("%s", err);
			return MK_EXIT_USAGE;
		}
		m = &mesh;
	}
	if ((rc = load_key(d)) != 0 || (rc = load_peer(d, m)) != 0)
		goto out_mesh;
	if (o->peer_addr == NULL) {
		if (load_targets(o, m, targets, &n_targets) != 0) {
			rc = MK_EXIT_USAGE;
			goto out_mesh;
		}
		if (n_targets == 0)
			mk_usage_error("%s", "no relay: give --relay, a "
			    "mesh.conf with relay lines, or --peer-addr");
	}
	if (d->role == MK_BDAY_BOTH)
		print_both_hard_cost(o);
	rc = MK_EXIT_FAIL;
	if (mk_loop_init(&d->loop) != 0 || mk_loop_signals(&d->loop, sigs,
	    MK_ARRAY_LEN(sigs), on_signal, d) != 0) {
		mk_err("event loop: %s", strerror(errno));
		goto out_mesh;
	}
	mk_timer_init(&d->hello_timer, on_hello_timer, d);
	mk_timer_init(&d->deadline, on_deadline, d);
	mk_timer_init(&d->start_timer, on_start_timer, d);
	mk_timer_init(&d->progress, on_progress, d);
	if (d->role == MK_BDAY_EASY && open_easy(d) != 0)
		goto out;
	if (o->peer_addr != NULL) {
		if (start_manual(d) != 0)
			goto out;
	} else if (learn_public(d, m, targets, n_targets) != 0 ||
	    start_relay(d, targets, n_targets) != 0) {
		goto out;
	}
	d->rc = MK_EXIT_FAIL;
	if (mk_loop_run(&d->loop) != 0) {
		mk_err("event loop: %s", strerror(errno));
		goto out;
	}
	progress_clear(d);
	rc = d->rc;
	if (rc == MK_EXIT_OK && o->cmd != NULL) {
		if (d->dc != NULL)
			mk_derpc_free(d->dc);
		d->dc = NULL;
		rc = exec_cmd(d);
	} else if (rc == MK_EXIT_OK) {
		rc = report(d);
	}
out:
	progress_clear(d);
	if (d->dc != NULL)
		mk_derpc_free(d->dc);
	mk_bday_free(d->engine);
	if (d->easy_fd >= 0)
		close(d->easy_fd);
	mk_loop_free(&d->loop);
	mk_disco_shared_wipe(&d->shared);
	mk_key_wipe(&d->priv);
out_mesh:
	mk_mesh_free(&mesh);
	mk_disco_replay_free(&d->replay);
	return rc;
}

enum {
	OPT_RELAY = 256, OPT_PIN, OPT_CAFILE, OPT_INSECURE, OPT_STUN, OPT_FD,
	OPT_PEER_ADDR, OPT_PORTS, OPT_COUNT, OPT_RATE, OPT_FORCE,
	OPT_BOTH_HARD,
};

static void
parse_number(const char *what, const char *s, long long min, long long max,
    long long *out)
{
	if (mk_strtonum(s, min, max, out) != 0)
		mk_usage_error("bad %s: %s (%lld-%lld)", what, s, min, max);
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "both-hard", no_argument, NULL, OPT_BOTH_HARD },
		{ "cafile", required_argument, NULL, OPT_CAFILE },
		{ "count", required_argument, NULL, OPT_COUNT },
		{ "fd", required_argument, NULL, OPT_FD },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "help", no_argument, NULL, 'h' },
		{ "insecure", no_argument, NULL, OPT_INSECURE },
		{ "json", no_argument, NULL, 'j' },
		{ "key", required_argument, NULL, 'k' },
		{ "mesh", required_argument, NULL, 'c' },
		{ "peer-addr", required_argument, NULL, OPT_PEER_ADDR },
		{ "pin", required_argument, NULL, OPT_PIN },
		{ "port", required_argument, NULL, 'p' },
		{ "ports", required_argument, NULL, OPT_PORTS },
		{ "quiet", no_argument, NULL, 'q' },
		{ "rate", required_argument, NULL, OPT_RATE },
		{ "relay", required_argument, NULL, OPT_RELAY },
		{ "stun", required_argument, NULL, OPT_STUN },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "wait", required_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o;
	int ch, verbose = 0;
	bool verb_given = false;

	memset(&o, 0, sizeof(o));
	o.fd = -1;
	o.wait_ms = 30000;
	o.ports = MK_BDAY_PORTS;
	o.count = MK_BDAY_COUNT;
	o.rate = MK_BDAY_RATE;
	mk_cli_init("birthday", usage);
	if (argc > 1 && strcmp(argv[1], "table") == 0) {
		mk_log_init("birthday", MK_LOG_WARN);
		return cmd_table(argc - 1, argv + 1);
	}
	if (argc > 1 && strcmp(argv[1], "hard") == 0)
		o.verb = VERB_HARD;
	else if (argc > 1 && strcmp(argv[1], "easy") == 0)
		o.verb = VERB_EASY;
	else if (argc > 1 && argv[1][0] != '-')
		mk_usage_error("unknown command: %s", argv[1]);
	/* the options follow the verb: parse from there, getopt's messages
	 * still naming the program */
	if (argc > 1 && argv[1][0] != '-') {
		argv[1] = argv[0];
		argc--;
		argv++;
		verb_given = true;
	}
	/* "+": options end at the peer, so a command after -- keeps its own */
	while ((ch = getopt_long(argc, argv, "+c:hjk:p:qvVw:", longopts,
	    NULL)) != -1) {
		switch (ch) {
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
			parse_number("port", optarg, 0, 65535, &o.port);
			break;
		case 'q':
			o.quiet = true;
			break;
		case 'v':
			verbose++;
			break;
		case 'V':
			printf("birthday %s\n", MK_VERSION);
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
			o.stun = optarg;
			break;
		case OPT_FD:
			if (mk_fd_parse(optarg, &o.fd) != 0)
				mk_usage_error("bad descriptor: %s", optarg);
			break;
		case OPT_PEER_ADDR:
			o.peer_addr = optarg;
			break;
		case OPT_PORTS:
			parse_number("ports", optarg, 1, MK_BDAY_MAX_PORTS,
			    &o.ports);
			break;
		case OPT_COUNT:
			parse_number("count", optarg, 1, MK_BDAY_MAX_COUNT,
			    &o.count);
			break;
		case OPT_RATE:
			parse_number("rate", optarg, 1, 1000000, &o.rate);
			break;
		case OPT_FORCE:
			o.force = true;
			break;
		case OPT_BOTH_HARD:
			o.both_hard = true;
			break;
		default:
			usage(stderr);
			return MK_EXIT_USAGE;
		}
	}
	if (!verb_given)
		mk_usage_error("%s", "no command: hard, easy or table");
	argc -= optind;
	argv += optind;
	if (o.keyfile == NULL)
		mk_usage_error("%s", "no key: -k keyfile");
	if (argc < 1)
		mk_usage_error("%s", "no peer given");
	o.peer = argv[0];
	if (argc > 1) {
		if (strcmp(argv[1], "--") != 0 || argc < 3)
			mk_usage_error("unexpected argument: %s", argv[1]);
		o.cmd = &argv[2];
	}
	if (o.rate > MK_BDAY_RATE_CAP && !o.force)
		mk_usage_error("rate %lld is above %d probes a second: add "
		    "--force if the network is yours", o.rate,
		    MK_BDAY_RATE_CAP);
	if (o.verb == VERB_EASY && o.both_hard)
		mk_usage_error("%s", "--both-hard is for two hard sides: "
		    "birthday hard --both-hard on both");
	if (o.verb == VERB_HARD && (o.fd >= 0 || o.port != 0))
		mk_usage_error("%s", "-p and --fd are for the easy side (the "
		    "hard side opens --ports sockets)");
	if (o.fd >= 0 && o.port != 0)
		mk_usage_error("%s", "--fd cannot be combined with -p");
	if (o.insecure && (o.pin != NULL || o.cafile != NULL))
		mk_usage_error("%s", "--insecure checks nothing: no --pin or "
		    "--cafile with it");
	if (o.peer_addr != NULL && (o.n_relays > 0 || o.stun != NULL))
		mk_usage_error("%s", "--peer-addr runs without a relay: no "
		    "--relay or --stun with it");
	if (o.peer_addr == NULL && o.mesh == NULL && o.n_relays == 0) {
		const char *def = mk_mesh_default_path();

		if (access(def, R_OK) == 0)
			o.mesh = def;
	}
	mk_log_init("birthday", o.quiet ? MK_LOG_ERR : MK_LOG_WARN + verbose);
	signal(SIGPIPE, SIG_IGN);
	if (mk_key_init() != 0) {
		mk_err("libsodium failed to initialise");
		return MK_EXIT_FAIL;
	}
	return run(&o);
}
