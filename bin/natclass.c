/* SPDX-License-Identifier: MIT */
/*
 * natclass: classify the NAT in front of this host, from one socket: one
 * word for scripts (none, EIM, EDM, blocked, unknown), a report for people
 * (-v) or JSON (--json).
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "addr.h"
#include "derpmap.h"
#include "json.h"
#include "key.h"
#include "cli.h"
#include "log.h"
#include "loop.h"
#include "meshconf.h"
#include "relayset.h"
#include "nattest.h"
#include "portmap.h"
#include "sock.h"
#include "stunlist.h"
#include "util.h"
#include "version.h"


#define MAX_RELAYS 64

struct opts {
	int family;
	bool json;
	bool report;
	bool rfc;
	bool hairpin;
	bool no_portmap;
	bool no_stun;
	uint64_t lifetime_max_ms;	/* 0: no lifetime search */
	long long map_port;		/* --map: 0 none */
	unsigned map_via;		/* 0: NAT-PMP, PCP, then UPnP */
	uint64_t map_lifetime_ms;
	bool keep;
	int fd;
	long long port;
	uint64_t timeout_ms;
	const char *mesh;
	const char *derpmap;
};

static void
usage(FILE *f)
{
	fprintf(f,
"usage: natclass [-46jqv] [--hairpin] [--no-portmap] [--no-stun] [--rfc]\n"
"                [--fd n] [-c mesh.conf] [--derpmap file] [--lifetime[=max]]\n"
"                [-p port] [-t seconds] [server[:port] ...]\n"
"       natclass --map port [-qv] [--keep] [--lifetime-map seconds]\n"
"                [--via upnp|natpmp|pcp]\n");
}

/* Resolve a target; a malformed one is bad input (exit 2), one that does
 * not resolve is skipped with a warning. */
static bool
resolve_target(struct mk_nat_target *t, const char *name, uint16_t port,
    int family)
{
	const char *why;

	snprintf(t->name, sizeof(t->name), "%s", name);
	if (mk_addr_resolve(&t->addr, name, port, family, &why) == 0)
		return true;
	if (strcmp(why, "malformed address") == 0 || strcmp(why, "bad port") == 0)
		mk_usage_error("bad server: %s", name);
	mk_warn("%s: %s", name, why);
	return false;
}

static size_t
collect_servers(struct mk_nat_target *t, const struct opts *o,
    const struct mk_mesh *mesh, char **argv, int argc)
{
	static struct mk_stunlist l;
	static struct mk_stunlist_addr ra[MK_STUNLIST_MAX];
	const char *why = NULL;
	size_t i, n = 0;

	/* With relays to ask, no public server is needed. */
	if (mk_stunlist_collect(&l, argv, (size_t)argc, mesh,
	    o->derpmap == NULL && (mesh == NULL || mesh->n_relays == 0),
	    &why) != 0) {
		mk_err("%s", why);
		exit(MK_EXIT_USAGE);
	}
	/* All at once, by -t: an unanswering resolver (offline) must not
	 * hold natclass up for its own timeouts, one name after another. */
	mk_stunlist_resolve(&l, MK_STUN_PORT, o->family, mk_now_us() +
	    o->timeout_ms * 1000, ra);
	for (i = 0; i < l.n; i++) {
		if (ra[i].bad)
			mk_usage_error("bad server: %s", l.name[i]);
		if (ra[i].why != NULL) {
			mk_warn("%s: %s", l.name[i], ra[i].why);
			continue;
		}
		memset(&t[n], 0, sizeof(t[n]));
		snprintf(t[n].name, sizeof(t[n].name), "%s", l.name[i]);
		t[n++].addr = ra[i].addr;
	}
	return n;
}

/*
 * The relays to measure (lib/relayset: --derpmap regions, else mesh.conf
 * relay lines): each region's STUN endpoint, its IPv4 (or IPv6) field,
 * else its host name.
 */
static size_t
collect_relays(struct mk_nat_target *t, const struct opts *o,
    const struct mk_mesh *mesh)
{
	struct mk_relayset rs;
	const struct mk_relay *r;
	const char *host, *why;
	char err[512];
	size_t i, n = 0;

	if (o->derpmap != NULL) {
		if (mk_relayset_load_derpmap(&rs, o->derpmap, err,
		    sizeof(err)) != 0) {
			mk_err("%s", err);
			exit(MK_EXIT_USAGE);
		}
	} else if (mesh == NULL)
		return 0;
	else if (mk_relayset_from_mesh(&rs, mesh, &why) != 0) {
		mk_err("%s", why);
		exit(MK_EXIT_FAIL);
	}
	for (i = 0; i < rs.n && n < MAX_RELAYS; i++) {
		r = &rs.v[i];
		if (r->no_home ||
		    (host = mk_relay_stun_host(r, o->family)) == NULL)
			continue;
		memset(&t[n], 0, sizeof(t[n]));
		if (!resolve_target(&t[n], host, r->stun_port, o->family))
			continue;
		mk_addr_set_port(&t[n].addr, r->stun_port);
		t[n].region = r->region;
		snprintf(t[n].code, sizeof(t[n].code), "%s", r->code);
		snprintf(t[n].region_name, sizeof(t[n].region_name), "%s",
		    r->name);
		snprintf(t[n].host, sizeof(t[n].host), "%s", r->host);
		t[n].tcp_port = r->tcp_port;
		if (o->derpmap != NULL)
			snprintf(t[n].name, sizeof(t[n].name), "%s",
			    r->code[0] ? r->code : r->stun_node);
		n++;
	}
	mk_relayset_free(&rs);
	return n;
}

/* The lifetime search's result: [lo, hi) in microseconds, hi 0 = at
 * least lo; searched false when not asked for or not possible. */
static struct {
	bool searched;
	uint64_t lo, hi;
} lifetime;

static void
lifetime_progress(void *arg, const char *msg)
{
	(void)arg;
	mk_warn("lifetime: %s", msg);
}

static void
search_lifetime(const struct mk_nat_report *r, const struct opts *o)
{
	const char *why;

	if (o->lifetime_max_ms == 0)
		return;
	if (r->discovery_server.len == 0) {
		mk_warn("lifetime: needs an RFC 5780 server; not measured");
		return;
	}
	mk_warn("lifetime: probing idle times up to %.0f s",
	    (double)o->lifetime_max_ms / 1000.0);
	if (mk_nat_lifetime(&r->discovery_server, o->lifetime_max_ms * 1000,
	    lifetime_progress, NULL, &lifetime.lo, &lifetime.hi, &why) != 0) {
		mk_warn("lifetime: %s", why);
		return;
	}
	lifetime.searched = true;
}

/* The gateway's port-mapping services, probed beside the STUN tests. */
static struct {
	bool probed;
	struct mk_pm_probe r;
	const char *why;	/* the probe itself failed (no gateway ...) */
} portmap;

static struct mk_pm_async *
portmap_start(const struct opts *o)
{
	struct mk_pm_job job = { .op = MK_PM_OP_PROBE, .which = MK_PM_ALL,
	    .timeout_us = 1000000 };
	struct mk_pm_async *a;
	const char *why;

	if (o->no_portmap)
		return NULL;
	a = mk_pm_async_start(&job, &why);
	if (a == NULL)
		mk_warn("port mapping probe: %s", why);
	return a;
}

/* Wait (bounded: the probe ends on its own timeout) for the result. */
static void
portmap_finish(struct mk_pm_async *a)
{
	struct pollfd pfd;
	struct mk_pm_job job;

	if (a == NULL)
		return;
	pfd.fd = mk_pm_async_fd(a);
	pfd.events = POLLIN;
	while (poll(&pfd, 1, 5000) < 0 && errno == EINTR)
		;
	if (mk_pm_async_result(a, &job) == 1) {
		portmap.probed = true;
		portmap.r = job.probe;
		portmap.why = job.rc != 0 ? job.why : NULL;
		if (job.rc != 0)
			mk_info("port mapping probe: %s", job.why);
	} else
		mk_warn("port mapping probe did not finish");
	mk_pm_async_free(a);
}

static void
json_portmap(struct mk_json *j)
{
	char a[MK_ADDRSTRLEN];
	const struct mk_pm_probe *p = &portmap.r;

	mk_json_key(j, "portmap");
	if (!portmap.probed) {
		mk_json_null(j);
		return;
	}
	mk_json_obj_begin(j);
	mk_json_kbool(j, "upnp", p->found & MK_PM_UPNP);
	mk_json_kbool(j, "natpmp", p->found & MK_PM_NATPMP);
	mk_json_kbool(j, "pcp", p->found & MK_PM_PCP);
	mk_json_kstr(j, "gateway", p->gateway.len ?
	    mk_addr_fmt_ip(&p->gateway, a, sizeof(a)) : NULL);
	mk_json_kstr(j, "upnp_external", p->ext_upnp.len ?
	    mk_addr_fmt_ip(&p->ext_upnp, a, sizeof(a)) : NULL);
	mk_json_kstr(j, "natpmp_external", p->ext_natpmp.len ?
	    mk_addr_fmt_ip(&p->ext_natpmp, a, sizeof(a)) : NULL);
	mk_json_kstr(j, "pcp_external", p->ext_pcp.len ?
	    mk_addr_fmt_ip(&p->ext_pcp, a, sizeof(a)) : NULL);
	mk_json_kstr(j, "error", portmap.why);
	mk_json_obj_end(j);
}

static void
print_portmap(void)
{
	char list[64], a[MK_ADDRSTRLEN];
	const struct mk_pm_probe *p = &portmap.r;

	if (!portmap.probed) {
		printf("\t* PortMapping: not checked\n");
		return;
	}
	printf("\t* PortMapping: %s\n", p->found ? mk_pm_list(p->found, list,
	    sizeof(list)) : "none");
	if (p->ext_upnp.len)
		printf("\t\t- UPnP external address: %s\n",
		    mk_addr_fmt_ip(&p->ext_upnp, a, sizeof(a)));
	if (p->ext_natpmp.len)
		printf("\t\t- NAT-PMP external address: %s\n",
		    mk_addr_fmt_ip(&p->ext_natpmp, a, sizeof(a)));
	if (p->ext_pcp.len)
		printf("\t\t- PCP external address: %s\n",
		    mk_addr_fmt_ip(&p->ext_pcp, a, sizeof(a)));
}

static const char *
fmt(const struct mk_addr *a, char *buf, size_t n)
{
	return a->len ? mk_addr_fmt(a, buf, n) : NULL;
}

static const char *
tristate(int v)
{
	return v < 0 ? "unknown" : v ? "true" : "false";
}

static void
json_tristate(struct mk_json *j, const char *key, int v)
{
	mk_json_key(j, key);
	if (v < 0)
		mk_json_null(j);
	else
		mk_json_bool(j, v);
}

static void
json_result(struct mk_json *j, const struct mk_nat_target *t,
    const struct mk_nat_result *r)
{
	char a[MK_ADDRSTRLEN], err[160];

	mk_json_obj_begin(j);
	/* The same keys as stunq --json: server as given, its address. */
	mk_json_kstr(j, "server", t->name);
	mk_json_kstr(j, "address", mk_addr_fmt(&t->addr, a, sizeof(a)));
	if (t->region) {
		mk_json_kint(j, "region", t->region);
		mk_json_kstr(j, "code", t->code);
		mk_json_kstr(j, "region_name", t->region_name);
	}
	if (r->state == MK_STUNC_DONE) {
		mk_json_key(j, "rtt_ms");
		mk_json_double(j, (double)r->rtt_us / 1000.0, 3);
		mk_json_kstr(j, "mapped", fmt(&r->mapped, a, sizeof(a)));
		mk_json_kstr(j, "other_address", fmt(&r->other_address, a,
		    sizeof(a)));
		mk_json_kstr(j, "response_origin", fmt(&r->response_origin, a,
		    sizeof(a)));
	} else
		mk_json_kstr(j, "error", mk_stunc_error_text(r->state,
		    r->error_code, r->last_errno, r->junk, err, sizeof(err)));
	mk_json_obj_end(j);
}

static void
print_json(const struct mk_nat_report *r, const struct mk_nat_opts *no)
{
	struct mk_json j;
	char a[MK_ADDRSTRLEN];
	size_t i;

	mk_json_init(&j);
	mk_json_obj_begin(&j);
	mk_json_kstr(&j, "verdict", mk_nat_word(r));
	mk_json_kbool(&j, "udp", r->udp);
	mk_json_kstr(&j, "local", fmt(&r->local4, a, sizeof(a)));
	mk_json_kstr(&j, "mapped", fmt(&r->global4, a, sizeof(a)));
	mk_json_key(&j, "ipv6");
	if (!r->v6_tried)
		mk_json_null(&j);
	else {
		mk_json_obj_begin(&j);
		mk_json_kbool(&j, "reachable", r->global6.len != 0);
		mk_json_kstr(&j, "local", fmt(&r->local6, a, sizeof(a)));
		mk_json_kstr(&j, "mapped", fmt(&r->global6, a, sizeof(a)));
		mk_json_obj_end(&j);
	}
	mk_json_key(&j, "nat64");
	if (!r->nat64)
		mk_json_null(&j);
	else {
		char pfx[MK_ADDRSTRLEN + 4];

		snprintf(pfx, sizeof(pfx), "%s/96", mk_addr_fmt_ip(
		    &r->nat64_prefix, a, sizeof(a)));
		mk_json_str(&j, pfx);
	}
	mk_json_key(&j, "nat");
	if (r->global4.len == 0)
		mk_json_null(&j);
	else
		mk_json_bool(&j, !r->no_nat);
	mk_json_kstr(&j, "mapping", mk_nat_behaviour_name(r->mapping));
	mk_json_kstr(&j, "mapping_method", r->mapping_method);
	mk_json_kstr(&j, "filtering", mk_nat_behaviour_name(r->filtering));
	mk_json_kstr(&j, "filtering_server", r->filtering_server);
	mk_json_kstr(&j, "filtering_note", r->filtering_note[0] ?
	    r->filtering_note : NULL);
	json_tristate(&j, "varies_by_dest", r->varies_by_dest);
	json_tristate(&j, "port_preserved", r->port_preserved);
	json_tristate(&j, "hairpin", r->hairpin);
	json_tristate(&j, "tcp443", r->tcp443);
	mk_json_kstr(&j, "classic", mk_nat_classic(r));
	mk_json_key(&j, "lifetime");
	if (!lifetime.searched)
		mk_json_null(&j);
	else {
		mk_json_obj_begin(&j);
		mk_json_key(&j, "min_s");
		mk_json_double(&j, (double)lifetime.lo / 1e6, 1);
		mk_json_key(&j, "max_s");
		if (lifetime.hi == 0)
			mk_json_null(&j);
		else
			mk_json_double(&j, (double)lifetime.hi / 1e6, 1);
		mk_json_obj_end(&j);
	}
	mk_json_key(&j, "servers");
	mk_json_arr_begin(&j);
	for (i = 0; i < r->n_servers; i++)
		json_result(&j, &no->servers[i], &r->servers[i]);
	mk_json_arr_end(&j);
	mk_json_key(&j, "relays");
	mk_json_arr_begin(&j);
	for (i = 0; i < r->n_relays; i++)
		json_result(&j, &no->relays[i], &r->relays[i]);
	mk_json_arr_end(&j);
	mk_json_key(&j, "nearest_relay");
	if (r->nearest_relay < 0)
		mk_json_null(&j);
	else
		json_result(&j, &no->relays[r->nearest_relay],
		    &r->relays[r->nearest_relay]);
	json_portmap(&j);
	mk_json_obj_end(&j);
	if (mk_json_text(&j) != NULL)
		printf("%s\n", mk_json_text(&j));
	mk_json_free(&j);
}

/* Relays sorted by latency, unmeasured last, as netcheck prints them. */
static void
print_relays(const struct mk_nat_report *r, const struct mk_nat_opts *no)
{
	size_t order[MAX_RELAYS], i, k, n = 0;
	char lat[32];

	for (i = 0; i < r->n_relays && n < MAX_RELAYS; i++) {
		for (k = n; k > 0; k--) {
			const struct mk_nat_result *a = &r->relays[order[k - 1]];
			const struct mk_nat_result *b = &r->relays[i];
			bool a_ok = a->state == MK_STUNC_DONE;
			bool b_ok = b->state == MK_STUNC_DONE;

			if (a_ok && (!b_ok || a->rtt_us <= b->rtt_us))
				break;
			if (!a_ok && !b_ok)
				break;
			order[k] = order[k - 1];
		}
		order[k] = i;
		n++;
	}
	for (i = 0; i < n; i++) {
		const struct mk_nat_result *x = &r->relays[order[i]];
		const struct mk_nat_target *t = &no->relays[order[i]];

		if (x->state == MK_STUNC_DONE)
			snprintf(lat, sizeof(lat), "%.1fms",
			    (double)x->rtt_us / 1000.0);
		else
			snprintf(lat, sizeof(lat), "none");
		printf("\t\t- %3s: %-7s (%s)\n", t->code, lat, t->region_name);
	}
}

static void
print_report(const struct mk_nat_report *r, const struct mk_nat_opts *no)
{
	char a[MK_ADDRSTRLEN], b[MK_ADDRSTRLEN];

	printf("\nReport:\n");
	printf("\t* Verdict: %s\n", mk_nat_word(r));
	printf("\t* UDP: %s\n", r->udp ? "true" : "false");
	if (r->global4.len)
		printf("\t* IPv4: yes, %s (local %s%s)\n",
		    mk_addr_fmt(&r->global4, a, sizeof(a)),
		    mk_addr_fmt(&r->local4, b, sizeof(b)),
		    r->nat64 ? ", through NAT64" : "");
	else
		printf("\t* IPv4: (no addr found)\n");
	if (!r->v6_tried)
		printf("\t* IPv6: not checked (no IPv6 server)\n");
	else if (r->global6.len)
		printf("\t* IPv6: yes, %s\n", mk_addr_fmt(&r->global6, a,
		    sizeof(a)));
	else
		printf("\t* IPv6: no\n");
	if (r->nat64)
		printf("\t* NAT64: yes, prefix %s/96\n",
		    mk_addr_fmt_ip(&r->nat64_prefix, a, sizeof(a)));
	printf("\t* NAT: %s\n", r->global4.len == 0 ? "unknown" :
	    r->no_nat ? "no" : "yes");
	printf("\t* Mapping: %s%s%s%s\n", mk_nat_behaviour_name(r->mapping),
	    r->mapping_method ? " (by " : "",
	    r->mapping_method == NULL ? "" :
	    strcmp(r->mapping_method, "rfc5780") == 0 ? "RFC 5780" :
	    "comparing servers", r->mapping_method ? ")" : "");
	if (r->filtering_note[0])
		printf("\t* Filtering: %s (%s; RFC 5780 server %s)\n",
		    mk_nat_behaviour_name(r->filtering), r->filtering_note,
		    r->filtering_server);
	else if (r->filtering_server)
		printf("\t* Filtering: %s (RFC 5780 server %s)\n",
		    mk_nat_behaviour_name(r->filtering), r->filtering_server);
	else
		printf("\t* Filtering: %s (%s)\n",
		    mk_nat_behaviour_name(r->filtering), !r->udp ? "no answer" :
		    r->global4.len == 0 ? "no IPv4 mapping" :
		    "no RFC 5780 server");
	printf("\t* MappingVariesByDestIP: %s\n", tristate(r->varies_by_dest));
	printf("\t* PortPreservation: %s\n", tristate(r->port_preserved));
	printf("\t* Hairpinning: %s\n", r->hairpin < 0 ? "not checked" :
	    tristate(r->hairpin));
	printf("\t* Classic: %s\n", mk_nat_classic(r));
	if (lifetime.searched && lifetime.hi != 0)
		printf("\t* MappingLifetime: between %.1f s and %.1f s\n",
		    (double)lifetime.lo / 1e6, (double)lifetime.hi / 1e6);
	else if (lifetime.searched)
		printf("\t* MappingLifetime: at least %.1f s\n",
		    (double)lifetime.lo / 1e6);
	print_portmap();
	if (r->tcp443 >= 0)
		printf("\t* TCP to a relay's HTTPS port: %s\n",
		    r->tcp443 ? "works" : "fails too");
	if (r->n_relays > 0) {
		if (r->nearest_relay >= 0)
			printf("\t* Nearest relay: %s\n",
			    no->relays[r->nearest_relay].region_name[0] ?
			    no->relays[r->nearest_relay].region_name :
			    no->relays[r->nearest_relay].code);
		else
			printf("\t* Nearest relay: unknown (no response to "
			    "latency probes)\n");
		printf("\t* Relay latency:\n");
		print_relays(r, no);
	}
}

static void
warn_one(const struct mk_nat_target *t, const struct mk_nat_result *x)
{
	if (x->state == MK_STUNC_DONE)
		return;
	if (x->junk > 0)
		mk_warn("%s: %u replies that are not valid STUN answers",
		    t->name, x->junk);
	else if (x->state == MK_STUNC_ERROR)
		mk_warn("%s: error response %u", t->name, x->error_code);
	else
		mk_warn("%s: no answer", t->name);
}

static void
warn_failures(const struct mk_nat_report *r, const struct mk_nat_opts *no)
{
	size_t i;

	for (i = 0; i < r->n_servers; i++)
		warn_one(&no->servers[i], &r->servers[i]);
	for (i = 0; i < r->n_relays; i++)
		warn_one(&no->relays[i], &r->relays[i]);
}

/* --no-stun: only the gateway's services. */
static int
run_portmap_only(const struct opts *o)
{
	struct mk_json j;
	char list[64];

	portmap_finish(portmap_start(o));
	if (o->json) {
		mk_json_init(&j);
		mk_json_obj_begin(&j);
		json_portmap(&j);
		mk_json_obj_end(&j);
		if (mk_json_text(&j) != NULL)
			printf("%s\n", mk_json_text(&j));
		mk_json_free(&j);
	} else if (o->report) {
		printf("\nReport:\n");
		print_portmap();
	} else
		printf("%s\n", portmap.probed ? mk_pm_list(portmap.r.found,
		    list, sizeof(list)) : "");
	if (!portmap.probed || portmap.why != NULL) {
		mk_err("port mapping probe: %s", portmap.why ? portmap.why :
		    "failed");
		return MK_EXIT_FAIL;
	}
	return 0;
}

static void
print_mapping(const struct mk_pm_mapping *m)
{
	char a[MK_ADDRSTRLEN];

	printf("%s\n", mk_addr_fmt(&m->external, a, sizeof(a)));
	fflush(stdout);
}

/* A renewal that fails is tried again this much later, until the
 * mapping expires. */
#define MAP_RETRY_US	5000000ULL
/* On exit, how long a renewal still running may take: above the
 * NAT-PMP / PCP request and UPnP SOAP timeouts that bound it. */
#define MAP_EXIT_WAIT_MS 8000

/* --map after the mapping is made: the renewer, driven by the loop. */
struct mapper {
	const struct opts	*o;
	struct mk_loop		 loop;
	struct mk_pm_mapping	 m;
	struct mk_timer		 renew;
	struct mk_pm_async	*job;	/* a renewal on its thread, or NULL */
	struct mk_io		 job_io;
	int			 rc;
};

static void on_renewed(struct mk_loop *l, struct mk_io *io, uint32_t events);

/* Renew at m.renew_at_us (half the lifetime); a permanent mapping never. */
static void
map_arm(struct mapper *mp, uint64_t at_us)
{
	if (at_us != UINT64_MAX)
		mk_timer_at(&mp->loop, &mp->renew, at_us);
}

/* The renewal's blocking exchange runs on a lib/task thread; the loop
 * only waits for its eventfd (and for signals) meanwhile. */
static void
on_renew_timer(struct mk_loop *l, struct mk_timer *t)
{
	struct mapper *mp = t->arg;
	struct mk_pm_job job = { .op = MK_PM_OP_RENEW, .mapping = mp->m };
	const char *why;

	if ((mp->job = mk_pm_async_start(&job, &why)) == NULL) {
		mk_warn("renewal failed: %s", why);
		map_arm(mp, mk_now_us() + MAP_RETRY_US);
		return;
	}
	mp->job_io.fd = mk_pm_async_fd(mp->job);
	mp->job_io.fn = on_renewed;
	mp->job_io.arg = mp;
	if (mk_loop_add(l, &mp->job_io, EPOLLIN) != 0) {
		mk_warn("renewal failed: %s", strerror(errno));
		mk_pm_async_free(mp->job);
		mp->job = NULL;
		map_arm(mp, mk_now_us() + MAP_RETRY_US);
	}
}

/* A renewal's answer: a changed external address is printed again; a
 * failure is retried until the mapping expires. */
static void
renewed(struct mapper *mp, const struct mk_pm_job *out)
{
	struct mk_addr before = mp->m.external;

	if (out->rc != 0) {
		mk_warn("renewal failed: %s", out->why);
		if (mk_now_us() >= mp->m.expires_at_us) {
			mk_err("mapping expired");
			mp->rc = MK_EXIT_FAIL;
			mk_loop_stop(&mp->loop);
			return;
		}
		map_arm(mp, mk_now_us() + MAP_RETRY_US);
		return;
	}
	mp->m = out->mapping;
	if (!mk_addr_equal(&before, &mp->m.external))
		print_mapping(&mp->m);
	map_arm(mp, mp->m.renew_at_us);
}

static void
on_renewed(struct mk_loop *l, struct mk_io *io, uint32_t events)
{
	struct mapper *mp = io->arg;
	struct mk_pm_job out;

	(void)events;
	if (mk_pm_async_result(mp->job, &out) == 0)
		return;
	mk_loop_del(l, io);
	mk_pm_async_free(mp->job);
	mp->job = NULL;
	renewed(mp, &out);
}

static void
on_map_signal(struct mk_loop *l, int signo, void *arg)
{
	(void)signo;
	(void)arg;
	mk_loop_stop(l);
}

/* A renewal still running when a signal came may change the mapping
 * (UPnP's external port): wait for it, bounded, so the deletion names
 * what the gateway holds. */
static void
map_finish_job(struct mapper *mp)
{
	struct pollfd pfd;
	struct mk_pm_job out;

	if (mp->job == NULL)
		return;
	pfd.fd = mk_pm_async_fd(mp->job);
	pfd.events = POLLIN;
	while (poll(&pfd, 1, MAP_EXIT_WAIT_MS) < 0 && errno == EINTR)
		;
	if (mk_pm_async_result(mp->job, &out) == 1 && out.rc == 0)
		mp->m = out.mapping;
	mk_loop_del(&mp->loop, &mp->job_io);
	mk_pm_async_free(mp->job);	/* a job still blocked ends alone */
	mp->job = NULL;
}

/* Probe the gateway and make the mapping (blocking: nothing else runs
 * yet, and a signal waits in the loop's signalfd meanwhile). */
static int
map_first(const struct opts *o, struct mk_pm_mapping *m)
{
	struct mk_pm_probe probe;
	const char *why;
	char a[MK_ADDRSTRLEN];

	if (mk_pm_probe(&probe, o->map_via ? o->map_via : MK_PM_ALL, 1000000,
	    &why) != 0) {
		mk_err("port mapping: %s", why);
		return MK_EXIT_FAIL;
	}
	if ((probe.found & (o->map_via ? o->map_via : MK_PM_ALL)) == 0) {
		mk_err("no %s on the gateway", o->map_via ?
		    mk_pm_name(o->map_via) : "UPnP, NAT-PMP or PCP");
		return MK_EXIT_FAIL;
	}
	if (mk_pm_map(m, &probe, o->map_via, (uint16_t)o->map_port,
	    (uint32_t)(o->map_lifetime_ms / 1000), &why) != 0) {
		mk_err("--map %lld: %s", o->map_port, why);
		return MK_EXIT_FAIL;
	}
	mk_info("mapped %s via %s for %u s", mk_addr_fmt(&m->external, a,
	    sizeof(a)), mk_pm_name(m->via), m->lifetime);
	print_mapping(m);
	return 0;
}

/*
 * --map: ask the gateway to forward a UDP port to us, print the external
 * ip:port, renew at half life until SIGINT or SIGTERM (or SIGHUP), then
 * delete the mapping unless --keep. A changed external address is
 * printed again. Between renewals the process sleeps in the loop.
 */
static int
run_map(const struct opts *o)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	static struct mapper mp;
	const char *why;

	mp.o = o;
	mk_timer_init(&mp.renew, on_renew_timer, &mp);
	/* the signals first: one that comes while the first mapping is
	 * made waits for it, and the mapping is then deleted */
	if (mk_loop_init(&mp.loop) != 0 || mk_loop_signals(&mp.loop, sigs,
	    MK_ARRAY_LEN(sigs), on_map_signal, &mp) != 0) {
		mk_err("event loop: %s", strerror(errno));
		mk_loop_free(&mp.loop);
		return MK_EXIT_FAIL;
	}
	if ((mp.rc = map_first(o, &mp.m)) != 0)
		goto out;
	map_arm(&mp, mp.m.renew_at_us);
	if (mk_loop_run(&mp.loop) != 0) {
		mk_err("event loop: %s", strerror(errno));
		mp.rc = MK_EXIT_FAIL;
	}
	map_finish_job(&mp);
	if (mp.rc != 0 || o->keep)
		goto out;
	if (mk_pm_unmap(&mp.m, &why) != 0) {
		mk_err("deleting the mapping: %s", why);
		mp.rc = MK_EXIT_FAIL;
	} else
		mk_info("mapping deleted");
out:
	mk_timer_cancel(&mp.loop, &mp.renew);
	mk_loop_free(&mp.loop);
	return mp.rc;
}

enum {
	OPT_FD = 256,
	OPT_DERPMAP,
	OPT_HAIRPIN,
	OPT_KEEP,
	OPT_LIFETIME,
	OPT_LIFETIME_MAP,
	OPT_MAP,
	OPT_VIA,
	OPT_NO_PORTMAP,
	OPT_NO_STUN,
	OPT_RFC,
};

static const struct option longopts[] = {
	{ "derpmap", required_argument, NULL, OPT_DERPMAP },
	{ "fd", required_argument, NULL, OPT_FD },
	{ "hairpin", no_argument, NULL, OPT_HAIRPIN },
	{ "help", no_argument, NULL, 'h' },
	{ "json", no_argument, NULL, 'j' },
	{ "keep", no_argument, NULL, OPT_KEEP },
	{ "lifetime-map", required_argument, NULL, OPT_LIFETIME_MAP },
	{ "map", required_argument, NULL, OPT_MAP },
	{ "via", required_argument, NULL, OPT_VIA },
	{ "lifetime", optional_argument, NULL, OPT_LIFETIME },
	{ "mesh", required_argument, NULL, 'c' },
	{ "no-portmap", no_argument, NULL, OPT_NO_PORTMAP },
	{ "no-stun", no_argument, NULL, OPT_NO_STUN },
	{ "port", required_argument, NULL, 'p' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "rfc", no_argument, NULL, OPT_RFC },
	{ "timeout", required_argument, NULL, 't' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

int
main(int argc, char *argv[])
{
	static struct mk_nat_target servers[MK_STUNLIST_MAX];
	static struct mk_nat_target relays[MAX_RELAYS];
	struct opts o = { .family = AF_UNSPEC, .fd = -1, .timeout_ms = 3000 };
	struct mk_nat_opts no;
	struct mk_nat_report r;
	struct mk_mesh mesh, *meshp = NULL;
	struct mk_pm_async *pm;
	const char *why;
	char err[512];
	int ch, quiet = 0, verbose = 0, rc;

	mk_cli_init("natclass", usage);
	while ((ch = getopt_long(argc, argv, "46c:hjp:qt:vV", longopts,
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
		case 'p':
			if (mk_strtonum(optarg, 0, 65535, &o.port) != 0)
				mk_usage_error("bad port: %s", optarg);
			break;
		case 'q':
			quiet++;
			break;
		case 't':
			if (mk_parse_seconds_ms(optarg, 3600000, &o.timeout_ms)
			    != 0 || o.timeout_ms == 0)
				mk_usage_error("bad timeout: %s", optarg);
			break;
		case 'v':
			verbose++;
			break;
		case 'V':
			printf("natclass %s\n", MK_VERSION);
			return 0;
		case OPT_DERPMAP:
			o.derpmap = optarg;
			break;
		case OPT_FD:
			if (mk_fd_parse(optarg, &o.fd) != 0)
				mk_usage_error("bad descriptor: %s", optarg);
			break;
		case OPT_HAIRPIN:
			o.hairpin = true;
			break;
		case OPT_LIFETIME:
			o.lifetime_max_ms = 120000;
			if (optarg != NULL && (mk_parse_seconds_ms(optarg,
			    3600000, &o.lifetime_max_ms) != 0 ||
			    o.lifetime_max_ms < 2000))
				mk_usage_error("bad lifetime limit (2 s to 1 h): "
				    "%s", optarg);
			break;
		case OPT_KEEP:
			o.keep = true;
			break;
		case OPT_LIFETIME_MAP:
			if (mk_parse_seconds_ms(optarg, 86400000,
			    &o.map_lifetime_ms) != 0 || o.map_lifetime_ms < 1000)
				mk_usage_error("bad mapping lifetime: %s", optarg);
			break;
		case OPT_MAP:
			if (mk_strtonum(optarg, 1, 65535, &o.map_port) != 0)
				mk_usage_error("bad port: %s", optarg);
			break;
		case OPT_VIA:
			if (mk_pm_parse_via(optarg, &o.map_via) != 0)
				mk_usage_error("--via wants upnp, natpmp or pcp: %s",
				    optarg);
			break;
		case OPT_NO_PORTMAP:
			o.no_portmap = true;
			break;
		case OPT_NO_STUN:
			o.no_stun = true;
			break;
		case OPT_RFC:
			o.rfc = true;
			break;
		default:
			usage(stderr);
			return MK_EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	/*
	 * -v asks for the report on stdout; -vv adds progress on stderr.
	 * With --json the report is the JSON, so there -v is progress.
	 */
	o.report = verbose > 0 && !o.json;
	if (o.json)
		verbose++;
	mk_log_init("natclass", quiet ? MK_LOG_ERR :
	    verbose > 1 ? MK_LOG_WARN + verbose - 1 : MK_LOG_WARN);
	if (o.fd >= 0 && o.port != 0)
		mk_usage_error("%s", "--fd cannot be combined with -p");
	if (o.map_port == 0 && (o.map_via || o.keep || o.map_lifetime_ms))
		mk_usage_error("%s", "--via, --keep and --lifetime-map need --map");
	if (o.map_port != 0) {
		if (argc > 0 || o.json || o.no_portmap ||
		    o.no_stun || o.hairpin || o.lifetime_max_ms || o.derpmap ||
		    o.mesh || o.fd >= 0 || o.port)
			mk_usage_error("%s", "--map takes only -q, -v, --via, "
			    "--keep and --lifetime-map");
		mk_log_init("natclass", quiet ? MK_LOG_ERR :
		    MK_LOG_WARN + verbose);
		return run_map(&o);
	}
	if (o.no_stun && o.no_portmap)
		mk_usage_error("%s", "--no-stun with --no-portmap leaves nothing "
		    "to do");
	if (o.no_stun)
		return run_portmap_only(&o);
	if (o.fd >= 0) {
		if (mk_udp_adopt(o.fd, &why) != 0) {
			mk_err("--fd %d: %s", o.fd, why);
			return MK_EXIT_USAGE;
		}
		if (mk_sock_family(o.fd) != AF_INET) {
			mk_err("--fd %d: not an IPv4 socket", o.fd);
			return MK_EXIT_USAGE;
		}
	}
	if (mk_key_init() != 0) {
		mk_err("cannot initialise libsodium");
		return MK_EXIT_FAIL;
	}

	rc = mk_mesh_load_given(&mesh, o.mesh, err, sizeof(err));
	if (rc != 0) {
		if (rc < 0) {
			mk_err("%s", err);
			return MK_EXIT_USAGE;
		}
		meshp = &mesh;
	}
	memset(&no, 0, sizeof(no));
	no.servers = servers;
	no.relays = relays;
	no.n_servers = collect_servers(servers, &o, meshp, argv, argc);
	no.n_relays = collect_relays(relays, &o, meshp);
	if (meshp != NULL)
		mk_mesh_free(meshp);
	if (no.n_servers + no.n_relays == 0) {
		mk_err("no server to ask");
		return MK_EXIT_FAIL;
	}
	no.fd = o.fd;
	no.port = (uint16_t)o.port;
	no.timeout_us = o.timeout_ms * 1000;
	no.filter_wait_us = 500000;
	no.rfc = o.rfc;
	no.hairpin = o.hairpin;

	pm = portmap_start(&o);
	if (mk_nat_classify(&r, &no, &why) != 0) {
		mk_err("%s: %s", why, strerror(errno));
		mk_pm_async_free(pm);
		return MK_EXIT_FAIL;
	}
	portmap_finish(pm);
	warn_failures(&r, &no);
	search_lifetime(&r, &o);
	if (o.json)
		print_json(&r, &no);
	else if (o.report)
		print_report(&r, &no);
	else
		printf("%s\n", mk_nat_word(&r));
	/* "blocked" is an answer (1); servers talking nonsense are a
	 * failure to learn anything (3). */
	rc = r.udp ? 0 : r.junk ? MK_EXIT_FAIL : MK_EXIT_NO;
	mk_nat_report_free(&r);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		mk_err("stdout: %s", strerror(errno));
		return MK_EXIT_FAIL;
	}
	return rc;
}
