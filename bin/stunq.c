/* SPDX-License-Identifier: MIT */
/*
 * stunq: ask STUN servers how this socket looks from outside, all of them at
 * once from one socket; or answer STUN requests (-l).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "json.h"
#include "key.h"
#include "cli.h"
#include "log.h"
#include "loop.h"
#include "meshconf.h"
#include "sock.h"
#include "stunclient.h"
#include "stunlist.h"
#include "stunsrv.h"
#include "util.h"
#include "version.h"


#define DEFAULT_TIMEOUT_MS 3000

struct opts {
	int family;
	bool json;
	bool rfc;
	int verbose;
	int fd;
	const char *mesh;
	const char *source;
	long long port;
	uint64_t timeout_ms;
	bool timeout_set;
	const char *listen;
	const char *alt;
	long long alt_port;
};

static void
usage(FILE *f)
{
	fprintf(f,
"usage: stunq [-46jqv] [--rfc] [--fd n] [-c mesh.conf] [-p port] [-s addr]\n"
"             [-t seconds] [server[:port] ...]\n"
"       stunq -l addr[:port] [-qv] [--alt addr] [--alt-port port]\n");
}

/* ---- client ---- */

struct server {
	char name[MK_STUNLIST_NAMELEN];
	struct mk_addr addr;
	bool resolved;
	const char *why;	/* why not resolved */
};

/*
 * Servers from the arguments, else $STUNQ_SERVERS, else mesh.conf (given
 * with -c, or the default one if it exists), else the built-in list.
 */
static size_t
collect_servers(struct server *sv, const struct opts *o, char **argv,
    int argc, const struct mk_stunlist **list)
{
	static struct mk_stunlist l;
	struct mk_mesh m, *mp = NULL;
	const char *why = NULL;
	char err[512];
	size_t i;
	int rc;

	if (mk_stunlist_wants_mesh((size_t)argc) &&
	    (rc = mk_mesh_load_given(&m, o->mesh, err, sizeof(err))) != 0) {
		if (rc < 0) {
			mk_err("%s", err);
			exit(MK_EXIT_USAGE);
		}
		mp = &m;
	}
	rc = mk_stunlist_collect(&l, argv, (size_t)argc, mp, true, &why);
	if (mp != NULL)
		mk_mesh_free(mp);
	if (rc != 0) {
		mk_err("%s", why);
		exit(MK_EXIT_USAGE);
	}
	for (i = 0; i < l.n; i++)
		snprintf(sv[i].name, sizeof(sv[i].name), "%s", l.name[i]);
	*list = &l;
	return l.n;
}

/*
 * Look every server up at once, by the deadline: -t bounds the whole run,
 * and a resolver that does not answer (offline) must not hold it up for
 * its own timeouts. A malformed server is bad input; a name that does not
 * resolve is a network failure, said on stderr and in the final line.
 */
static void
resolve_servers(struct server *sv, const struct mk_stunlist *l, int family,
    uint64_t deadline)
{
	static struct mk_stunlist_addr ra[MK_STUNLIST_MAX];
	size_t i;

	mk_stunlist_resolve(l, MK_STUN_PORT, family, deadline, ra);
	for (i = 0; i < l->n; i++) {
		if (ra[i].bad)
			mk_usage_error("bad server: %s", sv[i].name);
		if (ra[i].why != NULL) {
			sv[i].why = ra[i].why;
			mk_warn("%s: %s", sv[i].name, ra[i].why);
			continue;
		}
		sv[i].addr = ra[i].addr;
		sv[i].resolved = true;
	}
}

/* Pick the socket's family: one family if all servers share it, else a
 * dual-stack IPv6 socket so one socket still asks them all. */
static int
socket_family(const struct server *sv, size_t n, int forced)
{
	size_t i;

	if (forced != AF_UNSPEC)
		return forced;
	for (i = 0; i < n; i++) {
		if (sv[i].resolved && mk_addr_family(&sv[i].addr) == AF_INET6)
			return AF_INET6;
	}
	return AF_INET;
}

static int
open_client_socket(const struct opts *o, const struct server *sv, size_t n,
    bool *dual)
{
	struct mk_addr local;
	const char *why;
	int fd, family;
	unsigned flags = 0;
	bool v4 = false;
	size_t i;

	*dual = false;
	if (o->fd >= 0) {
		if (mk_udp_adopt(o->fd, &why) != 0) {
			mk_err("--fd %d: %s", o->fd, why);
			exit(MK_EXIT_USAGE);
		}
		return o->fd;
	}
	if (o->source != NULL) {
		if (mk_addr_parse(&local, o->source, (uint16_t)o->port,
		    MK_ADDR_NO_PORT, &why) != 0)
			mk_usage_error("bad source address: %s", o->source);
		family = mk_addr_family(&local);
	} else {
		family = socket_family(sv, n, o->family);
		mk_addr_any(&local, family, (uint16_t)o->port);
		for (i = 0; i < n; i++)
			v4 |= sv[i].resolved &&
			    mk_addr_family(&sv[i].addr) == AF_INET;
		if (family == AF_INET6 && v4) {
			flags |= MK_SOCK_DUALSTACK;
			*dual = true;
		}
	}
	fd = mk_udp_bind(&local, flags, &why);
	if (fd < 0) {
		char a[MK_ADDRSTRLEN];

		mk_err("%s %s: %s", why, mk_addr_fmt(&local, a, sizeof(a)),
		    strerror(errno));
		exit(MK_EXIT_FAIL);
	}
	return fd;
}

static void
print_json(struct mk_json *j, const struct server *sv,
    const struct mk_stunc_txn *t, int fd)
{
	char a[MK_ADDRSTRLEN], err[160];
	struct mk_addr local, src;

	mk_json_reset(j);
	mk_json_obj_begin(j);
	/* The same keys as natclass --json: server as given, its address. */
	mk_json_kstr(j, "server", sv->name);
	mk_json_kstr(j, "address", sv->resolved ?
	    mk_addr_fmt(&sv->addr, a, sizeof(a)) : NULL);
	/* The local address towards this server: the socket's port and the
	 * source address the kernel routes from (no packet sent). */
	if (!sv->resolved)
		mk_json_kstr(j, "local", NULL);
	else if (mk_sock_local(fd, &local) == 0) {
		if (mk_addr_is_any(&local) && sv->resolved &&
		    mk_route_source(&sv->addr, &src) == 0) {
			mk_addr_set_port(&src, mk_addr_port(&local));
			local = src;
		}
		mk_json_kstr(j, "local", mk_addr_fmt(&local, a, sizeof(a)));
	}
	if (t->state == MK_STUNC_DONE) {
		mk_json_key(j, "rtt_ms");
		mk_json_double(j, (double)t->rtt_us / 1000.0, 3);
		mk_json_kstr(j, "mapped", mk_addr_fmt(&t->mapped, a,
		    sizeof(a)));
		mk_json_kstr(j, "response_origin",
		    (t->resp.has & MK_STUN_HAS_RESPONSE_ORIGIN) ?
		    mk_addr_fmt(&t->resp.response_origin, a, sizeof(a)) : NULL);
		mk_json_kstr(j, "other_address",
		    (t->resp.has & MK_STUN_HAS_OTHER_ADDRESS) ?
		    mk_addr_fmt(&t->resp.other_address, a, sizeof(a)) : NULL);
		mk_json_key(j, "software");
		if (t->resp.has & MK_STUN_HAS_SOFTWARE)
			mk_json_strn(j, (const char *)t->resp.software.p,
			    t->resp.software.len);
		else
			mk_json_null(j);
	} else {
		if (!sv->resolved)
			snprintf(err, sizeof(err), "not resolved: %s",
			    sv->why ? sv->why : "unknown");
		else
			mk_stunc_error_text(t->state, t->resp.error_code,
			    t->last_errno, t->junk, err, sizeof(err));
		mk_json_kstr(j, "error", err);
	}
	mk_json_obj_end(j);
	if (mk_json_text(j) != NULL)
		printf("%s\n", mk_json_text(j));
}

static void
report_failure(const struct server *sv, const struct mk_stunc_txn *t)
{
	if (!sv->resolved)
		return;		/* already said */
	switch (t->state) {
	case MK_STUNC_ERROR:
		mk_warn("%s: error response %u %.*s", sv->name,
		    t->resp.error_code, (int)t->resp.error_reason.len,
		    (const char *)t->resp.error_reason.p);
		break;
	case MK_STUNC_FAILED:
		mk_warn("%s: cannot send: %s", sv->name,
		    strerror(t->last_errno));
		break;
	default:
		mk_warn("%s: no answer", sv->name);
	}
}

/* The one line (kept by -q) that says why no server answered. */
static void
say_why(const struct server *sv, const struct mk_stunc_txn *t, size_t n)
{
	size_t i, unresolved = 0, silent = 0, refused = 0, unsent = 0;
	const char *lookup = NULL;
	char msg[256];
	int len;

	for (i = 0; i < n; i++) {
		if (!sv[i].resolved) {
			unresolved++;
			if (lookup == NULL)
				lookup = sv[i].why;
		} else if (t[i].state == MK_STUNC_ERROR)
			refused++;
		else if (t[i].state == MK_STUNC_FAILED)
			unsent++;
		else
			silent++;
	}
	len = snprintf(msg, sizeof(msg), "no answer from any server:");
	if (silent > 0 && len > 0 && (size_t)len < sizeof(msg))
		len += snprintf(msg + len, sizeof(msg) - (size_t)len,
		    " %zu silent,", silent);
	if (refused > 0 && len > 0 && (size_t)len < sizeof(msg))
		len += snprintf(msg + len, sizeof(msg) - (size_t)len,
		    " %zu error responses,", refused);
	if (unsent > 0 && len > 0 && (size_t)len < sizeof(msg))
		len += snprintf(msg + len, sizeof(msg) - (size_t)len,
		    " %zu could not be sent to,", unsent);
	if (unresolved > 0 && len > 0 && (size_t)len < sizeof(msg))
		len += snprintf(msg + len, sizeof(msg) - (size_t)len,
		    " %zu not resolved (%s),", unresolved, lookup);
	if (len > 0 && (size_t)len < sizeof(msg) && msg[len - 1] == ',')
		msg[len - 1] = '\0';
	mk_err("%s", msg);
}

static int
run_client(const struct opts *o, char **argv, int argc)
{
	static struct server sv[MK_STUNLIST_MAX];
	static struct mk_stunc_txn txn[MK_STUNLIST_MAX];
	struct mk_stunc_sched sched;
	struct mk_json j;
	char a[MK_ADDRSTRLEN], b[MK_ADDRSTRLEN];
	const struct mk_stunlist *list;
	uint64_t deadline, now, left;
	size_t n = 0, i;
	int fd, answered, family_filter;
	bool dual;

	deadline = mk_now_us() + o->timeout_ms * 1000;
	n = collect_servers(sv, o, argv, argc, &list);

	family_filter = o->family;
	if (o->fd >= 0 && family_filter == AF_UNSPEC) {
		const char *w;

		if (mk_udp_adopt(o->fd, &w) != 0) {
			mk_err("--fd %d: %s", o->fd, w);
			return MK_EXIT_USAGE;
		}
		family_filter = mk_sock_family(o->fd);
	}
	resolve_servers(sv, list, family_filter, deadline);

	fd = open_client_socket(o, sv, n, &dual);
	if (mk_log_level() >= MK_LOG_INFO) {
		struct mk_addr local;

		if (mk_sock_local(fd, &local) == 0)
			mk_info("bound on %s%s", mk_addr_fmt(&local, a,
			    sizeof(a)), dual ? " (dual-stack)" : "");
	}
	/* What the look-ups left of -t (at least 1 us: 0 means no limit). */
	now = mk_now_us();
	left = deadline > now ? deadline - now : 1;
	if (o->rfc)
		mk_stunc_sched_rfc(&sched, o->timeout_set ? left : 0);
	else
		mk_stunc_sched_fast(&sched, left);

	/* Unresolved servers keep their line but are never sent to. */
	for (i = 0; i < n; i++) {
		memset(&txn[i], 0, sizeof(txn[i]));
		txn[i].server = sv[i].addr;
	}
	answered = mk_stunc_exchange(fd, txn, n, &sched);
	if (answered < 0) {
		mk_err("poll: %s", strerror(errno));
		return MK_EXIT_FAIL;
	}

	mk_json_init(&j);
	for (i = 0; i < n; i++) {
		if (txn[i].state == MK_STUNC_DONE) {
			mk_info("%s: mapped %s in %.3f ms from %s", sv[i].name,
			    mk_addr_fmt(&txn[i].mapped, a, sizeof(a)),
			    (double)txn[i].rtt_us / 1000.0,
			    mk_addr_fmt(&txn[i].from, b, sizeof(b)));
		} else
			report_failure(&sv[i], &txn[i]);
		if (o->json)
			print_json(&j, &sv[i], &txn[i], fd);
		else
			printf("%s\n", txn[i].state == MK_STUNC_DONE ?
			    mk_addr_fmt(&txn[i].mapped, a, sizeof(a)) : "-");
	}
	mk_json_free(&j);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		mk_err("stdout: %s", strerror(errno));
		return MK_EXIT_FAIL;
	}
	if (answered == 0) {
		say_why(sv, txn, n);
		return MK_EXIT_FAIL;
	}
	return 0;
}

/* ---- responder ---- */

static void
on_signal(struct mk_loop *l, int signo, void *arg)
{
	const struct mk_stunsrv_stats *st = mk_stunsrv_stats(arg);

	if (signo == SIGUSR1) {
		mk_warn("received %llu, answered %llu, errors %llu, dropped "
		    "malformed %llu, not-request %llu, send %llu",
		    (unsigned long long)st->received,
		    (unsigned long long)st->answered,
		    (unsigned long long)st->errors_sent,
		    (unsigned long long)st->dropped_malformed,
		    (unsigned long long)st->dropped_not_request,
		    (unsigned long long)st->dropped_send);
		return;
	}
	mk_loop_stop(l);
}

static int
run_server(const struct opts *o)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGUSR1 };
	struct mk_addr primary, alt;
	struct mk_stunsrv *srv = NULL;
	const struct mk_stunsrv_ctx *ctx;
	struct mk_loop loop;
	const char *why;
	char a[MK_ADDRSTRLEN], b[MK_ADDRSTRLEN];
	int rc = MK_EXIT_FAIL;

	if (mk_addr_parse(&primary, o->listen, MK_STUN_PORT, 0, &why) != 0)
		mk_usage_error("bad listen address: %s", o->listen);
	if (o->alt != NULL && mk_addr_parse(&alt, o->alt, 0, MK_ADDR_NO_PORT,
	    &why) != 0)
		mk_usage_error("bad alternate address: %s", o->alt);
	if (mk_stunsrv_open(&srv, &primary, o->alt ? &alt : NULL,
	    (uint16_t)o->alt_port, &why) != 0) {
		if (errno == EINVAL) {
			mk_err("%s", why);
			return MK_EXIT_USAGE;
		}
		mk_err("%s %s: %s", why, o->listen, strerror(errno));
		return MK_EXIT_FAIL;
	}
	if (mk_loop_init(&loop) != 0 ||
	    mk_loop_signals(&loop, sigs, MK_ARRAY_LEN(sigs), on_signal,
	    srv) != 0 || mk_stunsrv_attach(srv, &loop) != 0) {
		mk_err("event loop: %s", strerror(errno));
		goto out;
	}
	ctx = mk_stunsrv_ctx(srv);
	if (ctx->discovery)
		mk_warn("listening on %s and %s, alternate port %u "
		    "(RFC 5780/3489 behaviour discovery)",
		    mk_addr_fmt(&ctx->slot[MK_STUNSRV_PP], a, sizeof(a)),
		    mk_addr_fmt(&ctx->slot[MK_STUNSRV_AP], b, sizeof(b)),
		    mk_addr_port(&ctx->slot[MK_STUNSRV_PA]));
	else
		mk_warn("listening on %s",
		    mk_addr_fmt(&ctx->slot[MK_STUNSRV_PP], a, sizeof(a)));
	if (mk_loop_run(&loop) != 0) {
		mk_err("event loop: %s", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	mk_loop_free(&loop);
	mk_stunsrv_free(srv);
	return rc;
}

/* ---- main ---- */

enum {
	OPT_RFC = 256,
	OPT_FD,
	OPT_ALT,
	OPT_ALT_PORT,
};

static const struct option longopts[] = {
	{ "alt", required_argument, NULL, OPT_ALT },
	{ "alt-port", required_argument, NULL, OPT_ALT_PORT },
	{ "fd", required_argument, NULL, OPT_FD },
	{ "help", no_argument, NULL, 'h' },
	{ "json", no_argument, NULL, 'j' },
	{ "listen", required_argument, NULL, 'l' },
	{ "mesh", required_argument, NULL, 'c' },
	{ "port", required_argument, NULL, 'p' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "rfc", no_argument, NULL, OPT_RFC },
	{ "source", required_argument, NULL, 's' },
	{ "timeout", required_argument, NULL, 't' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

int
main(int argc, char *argv[])
{
	struct opts o = {
		.family = AF_UNSPEC, .fd = -1, .timeout_ms = DEFAULT_TIMEOUT_MS,
	};
	int ch, quiet = 0;

	mk_cli_init("stunq", usage);
	while ((ch = getopt_long(argc, argv, "46c:hjl:p:qs:t:vV", longopts,
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
			return 0;
		case 'j':
			o.json = true;
			break;
		case 'l':
			o.listen = optarg;
			break;
		case 'p':
			if (mk_strtonum(optarg, 0, 65535, &o.port) != 0)
				mk_usage_error("bad port: %s", optarg);
			break;
		case 'q':
			quiet++;
			break;
		case 's':
			o.source = optarg;
			break;
		case 't':
			if (mk_parse_seconds_ms(optarg, 3600000, &o.timeout_ms)
			    != 0 || o.timeout_ms == 0)
				mk_usage_error("bad timeout: %s", optarg);
			o.timeout_set = true;
			break;
		case 'v':
			o.verbose++;
			break;
		case 'V':
			printf("stunq %s\n", MK_VERSION);
			return 0;
		case OPT_RFC:
			o.rfc = true;
			break;
		case OPT_FD:
			if (mk_fd_parse(optarg, &o.fd) != 0)
				mk_usage_error("bad descriptor: %s", optarg);
			break;
		case OPT_ALT:
			o.alt = optarg;
			break;
		case OPT_ALT_PORT:
			if (mk_strtonum(optarg, 1, 65535, &o.alt_port) != 0)
				mk_usage_error("bad port: %s", optarg);
			break;
		default:
			usage(stderr);
			return MK_EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;

	mk_log_init("stunq", quiet ? MK_LOG_ERR : MK_LOG_WARN + o.verbose);
	if (o.listen != NULL) {
		if (argc > 0)
			mk_usage_error("unexpected argument with -l: %s", argv[0]);
		if (o.json || o.rfc || o.fd >= 0 || o.source || o.port ||
		    o.mesh || o.family != AF_UNSPEC || o.timeout_set)
			mk_usage_error("%s", "client options given with -l");
		return run_server(&o);
	}
	if (o.alt != NULL || o.alt_port != 0)
		mk_usage_error("%s", "--alt and --alt-port need -l");
	if (o.fd >= 0 && (o.port != 0 || o.source != NULL))
		mk_usage_error("%s", "--fd cannot be combined with -p or -s");
	if (mk_key_init() != 0) {
		mk_err("cannot initialise libsodium");
		return MK_EXIT_FAIL;
	}
	return run_client(&o, argv, argc);
}
