/* SPDX-License-Identifier: MIT */
/*
 * wgsetup: WireGuard keys, interfaces, addresses, routes and peers, through
 * the kernel (generic netlink and rtnetlink) or a userspace implementation
 * such as wireguard-go (its UAPI socket, plus rtnetlink for its TUN).
 * Never runs ip or wg.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <getopt.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "addr.h"
#include "json.h"
#include "key.h"
#include "cli.h"
#include "log.h"
#include "meshconf.h"
#include "rtnl.h"
#include "util.h"
#include "version.h"
#include "wgconf.h"
#include "wgdev.h"
#include "wgendpoint.h"


#define DEFAULT_MTU	1280	/* Tailscale's: fits any path (net/tstun) */
#define IMPL_ENV	"WG_QUICK_USERSPACE_IMPLEMENTATION"
#define WG_CONF_DIR	"/etc/wireguard"	/* wg-quick's */

struct opts {
	bool		 userspace;
	bool		 dump;
	bool		 json;
	bool		 port_set;
	long long	 port;
	const char	*mesh;
	const char	*key;
	const char	*table;
};

/*
 * The usage, one command's forms at a time: the whole of it is the man
 * page's SYNOPSIS; after an error only the command's own forms are shown.
 * A line that starts with blanks continues the form above it.
 */
static const struct {
	const char	*cmd;
	const char	*forms[4];
} usages[] = {
	{ "genkey", { "wgsetup genkey" } },
	{ "pubkey", { "wgsetup pubkey" } },
	{ "genpsk", { "wgsetup genpsk" } },
	{ "up", {
	    "wgsetup up [-qv] [--userspace] interface [config]",
	    "wgsetup up [-qv] [--userspace] [-p port] interface --mesh mesh.conf",
	    "        --key file" } },
	{ "down", { "wgsetup down [-qv] interface" } },
	{ "show", { "wgsetup show [--dump | --json] [interface]" } },
	{ "set", {
	    "wgsetup set [-qv] [-t table] interface [listen-port port]",
	    "        [private-key file] [fwmark mark] [peer key [remove]",
	    "        [endpoint ip:port] [allowed-ips list] [keepalive seconds]",
	    "        [preshared-key file] ...]" } },
	{ "setconf", { "wgsetup setconf [-qv] interface config" } },
	{ "endpoints", { "wgsetup endpoints [-qv] interface" } },
};

static void
print_usage(FILE *f, const char *only)
{
	const char *prefix = "usage: ";
	size_t i, j;

	for (i = 0; i < MK_ARRAY_LEN(usages); i++) {
		if (only != NULL && strcmp(only, usages[i].cmd) != 0)
			continue;
		for (j = 0; j < MK_ARRAY_LEN(usages[i].forms) &&
		    usages[i].forms[j] != NULL; j++) {
			fprintf(f, "%s%s\n", prefix, usages[i].forms[j]);
			prefix = "       ";
		}
	}
}

static void
usage(FILE *f)
{
	print_usage(f, NULL);
}

/* Once the command is known, its forms only (see mk_cli_init). */
static const char *usage_cmd;

static void
usage_of_cmd(FILE *f)
{
	print_usage(f, usage_cmd);
}

/* Whether cmd is one of ours. */
static bool
known_cmd(const char *cmd)
{
	size_t i;

	for (i = 0; i < MK_ARRAY_LEN(usages); i++)
		if (strcmp(cmd, usages[i].cmd) == 0)
			return true;
	return false;
}

/* stdout must have taken everything: a full disk is a failure. */
static int
finish_stdout(void)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		mk_err("stdout: %s", strerror(errno));
		return MK_EXIT_FAIL;
	}
	return 0;
}

/* Errors from the kernel or the implementation: a missing interface is
 * bad input, everything else a system failure. */
static int
fail_code(int err)
{
	return err == ENODEV || err == EINVAL ? MK_EXIT_USAGE : MK_EXIT_FAIL;
}

/* ---- keys ---- */

/*
 * wg-quick's warning for a secret others can reach (see
 * mk_file_world_accessible for what counts). stdin is the caller's
 * business.
 */
static void
warn_world_accessible(const char *path)
{
	char real[PATH_MAX];

	if (strcmp(path, "-") != 0 &&
	    mk_file_world_accessible(path, real, sizeof(real)))
		mk_warn("Warning: `%s' is world accessible", real);
}

/* As wg genkey: a secret written to a file others can read is a leak. */
static void
warn_readable_stdout(void)
{
	struct stat st;

	if (fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode) &&
	    (st.st_mode & (S_IRWXG | S_IRWXO)))
		mk_warn("warning: writing a secret key to a file others can "
		    "read; consider umask 077");
}

static int
cmd_genkey(bool psk)
{
	char b64[MK_KEY_B64LEN + 1];
	struct mk_key k;

	warn_readable_stdout();
	if (psk)
		mk_key_random(&k);
	else
		mk_key_generate(&k);
	mk_key_to_base64(b64, &k);
	printf("%s\n", b64);
	mk_key_wipe(&k);
	sodium_memzero(b64, sizeof(b64));
	return finish_stdout();
}

static int
cmd_pubkey(void)
{
	char b64[MK_KEY_B64LEN + 1];
	struct mk_key priv, pub;
	const char *why;

	if (mk_key_read_fd(&priv, STDIN_FILENO, &why) != 0) {
		mk_err("pubkey: stdin: %s", why);
		return MK_EXIT_USAGE;
	}
	if (mk_key_public(&pub, &priv) != 0) {
		mk_key_wipe(&priv);
		mk_err("pubkey: degenerate private key");
		return MK_EXIT_USAGE;
	}
	mk_key_wipe(&priv);
	mk_key_to_base64(b64, &pub);
	printf("%s\n", b64);
	return finish_stdout();
}

/* ---- IPv6 may be off in this namespace ---- */

/*
 * Whether the interface takes IPv6 addresses and routes. Namespaces (such
 * as the lab's hosts) may run with IPv6 disabled; then WireGuard still
 * carries the allowed IPs, but the kernel refuses the addresses and routes,
 * and those are left out with one warning rather than failing the whole.
 */
static bool
ipv6_on(const char *ifname)
{
	char path[128], v = '1';
	FILE *f;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6",
	    ifname);
	if ((f = fopen(path, "r")) == NULL)
		return false;
	if (fread(&v, 1, 1, f) != 1)
		v = '1';
	fclose(f);
	return v == '0';
}

static bool
has_v6(const struct mk_wg_device *dev, const struct mk_wg_allowedip *addrs,
    size_t n)
{
	size_t i, j;

	for (i = 0; i < n; i++)
		if (addrs[i].family == AF_INET6)
			return true;
	for (i = 0; i < dev->n_peers; i++)
		for (j = 0; j < dev->peers[i].n_allowedips; j++)
			if (dev->peers[i].allowedips[j].family == AF_INET6)
				return true;
	return false;
}

/* ---- routes: one for every allowed IP, ours marked by protocol ---- */

static void
to_prefix(struct mk_rtnl_prefix *p, const struct mk_wg_allowedip *a,
    uint32_t table)
{
	memset(p, 0, sizeof(*p));
	p->family = a->family;
	p->len = a->cidr;
	p->table = table;
	p->proto = MK_RTNL_PROTO;
	memcpy(p->b, a->ip.b, a->family == AF_INET ? 4 : 16);
	mk_rtnl_prefix_mask(p);
}

static char *
prefix_fmt(const struct mk_rtnl_prefix *p, char *buf, size_t n)
{
	struct mk_wg_allowedip a;

	memset(&a, 0, sizeof(a));
	a.family = p->family;
	a.cidr = p->len;
	memcpy(a.ip.b, p->b, p->family == AF_INET ? 4 : 16);
	return mk_wg_allowedip_fmt(&a, buf, n);
}

static int
prefix_cmp(const void *a, const void *b)
{
	const struct mk_rtnl_prefix *x = a, *y = b;

	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return memcmp(x->b, y->b, 16);
}

/* p in the sorted v of n (bsearch must not see a NULL v). */
static bool
in_sorted(const struct mk_rtnl_prefix *v, size_t n,
    const struct mk_rtnl_prefix *p)
{
	return n > 0 && bsearch(p, v, n, sizeof(*v), prefix_cmp) != NULL;
}

/*
 * Make the routes on ifindex in table match the device's allowed IPs: add
 * what is missing, delete what is ours (MK_RTNL_PROTO) and no longer
 * wanted. A /0 goes into a named table only: wgsetup never takes the main
 * table's default route. Routes of other protocols for a wanted prefix
 * (the kernel's for an address) count as present.
 */
static int
sync_routes(struct mk_rtnl *r, uint32_t ifindex, uint32_t table,
    const struct mk_wg_device *dev, bool table_named, bool v6)
{
	struct mk_rtnl_prefix *want = NULL, *have = NULL, p;
	size_t n_want = 0, cap = 0, n_have = 0, i, j, k;
	char buf[INET6_ADDRSTRLEN + 8];
	int rc = -1;

	for (i = 0; i < dev->n_peers; i++) {
		const struct mk_wg_peer *peer = &dev->peers[i];

		for (j = 0; j < peer->n_allowedips; j++) {
			to_prefix(&p, &peer->allowedips[j], table);
			if (p.family == AF_INET6 && !v6)
				continue;
			if (p.len == 0 && !table_named) {
				mk_warn("%s: not routed (wgsetup never "
				    "takes the default route of table "
				    "main)", prefix_fmt(&p, buf, sizeof(buf)));
				continue;
			}
			if (n_want == cap) {
				struct mk_rtnl_prefix *grown;

				cap = cap ? cap * 2 : 64;
				grown = realloc(want, cap * sizeof(*grown));
				if (grown == NULL) {
					mk_err("out of memory");
					goto out;
				}
				want = grown;
			}
			want[n_want++] = p;
		}
	}
	/* Sorted and unique, so the membership tests below are cheap. */
	if (n_want > 0)
		qsort(want, n_want, sizeof(*want), prefix_cmp);
	for (i = k = 0; i < n_want; i++)
		if (k == 0 || !mk_rtnl_prefix_equal(&want[k - 1], &want[i]))
			want[k++] = want[i];
	n_want = k;
	if (mk_rtnl_route_list(r, ifindex, table, &have, &n_have) != 0) {
		mk_err("cannot list routes: %s", strerror(errno));
		goto out;
	}
	if (n_have > 0)
		qsort(have, n_have, sizeof(*have), prefix_cmp);
	for (i = 0; i < n_have; i++) {
		if (have[i].proto != MK_RTNL_PROTO ||
		    in_sorted(want, n_want, &have[i]))
			continue;
		mk_info("route del %s table %u", prefix_fmt(&have[i], buf,
		    sizeof(buf)), table);
		if (mk_rtnl_route_del(r, ifindex, &have[i]) != 0 &&
		    errno != ESRCH) {
			mk_err("route %s: cannot delete: %s", prefix_fmt(
			    &have[i], buf, sizeof(buf)), strerror(errno));
			goto out;
		}
	}
	for (i = 0; i < n_want; i++) {
		if (in_sorted(have, n_have, &want[i]))
			continue;
		mk_info("route add %s table %u", prefix_fmt(&want[i], buf,
		    sizeof(buf)), table);
		if (mk_rtnl_route_add(r, ifindex, &want[i]) != 0) {
			mk_err("route %s: %s", prefix_fmt(&want[i], buf,
			    sizeof(buf)), errno == EEXIST ? "the table "
			    "already routes it elsewhere" : strerror(errno));
			goto out;
		}
	}
	rc = 0;
out:
	free(want);
	free(have);
	return rc;
}

/* "main", "off" or a table number; none is "off", which is 0. */
static int
parse_table(const char *s, uint32_t *table, bool *named)
{
	long long n;

	*named = false;
	if (s != NULL && strcmp(s, "main") == 0) {
		*table = MK_RTNL_TABLE_MAIN;
		return 0;
	}
	if (s == NULL || strcmp(s, "off") == 0) {
		*table = 0;
		return 0;
	}
	if (mk_strtonum(s, 1, UINT32_MAX - 1, &n) != 0 || n == 255)
		return -1;
	*table = (uint32_t)n;
	*named = n != MK_RTNL_TABLE_MAIN;
	return 0;
}

/* Read the device back and route what it allows. */
static int
routes_for(const char *ifname, struct mk_wg *h, uint32_t table, bool named)
{
	struct mk_wg_device dev = { 0 };
	struct mk_rtnl *r = NULL;
	struct mk_rtnl_link l;
	const char *why;
	int rc = -1;

	if (table == 0)
		return 0;
	if (mk_wg_get(h, &dev, &why) != 0) {
		mk_err("%s: %s: %s", ifname, why, strerror(errno));
		return -1;
	}
	if (mk_rtnl_open(&r) != 0 || mk_rtnl_link_get(r, ifname, &l) != 0) {
		mk_err("%s: %s", ifname, strerror(errno));
		goto out;
	}
	rc = sync_routes(r, l.ifindex, table, &dev, named, ipv6_on(ifname));
out:
	mk_rtnl_close(r);
	mk_wg_device_clear(&dev);
	return rc;
}

/* ---- up ---- */

/* What up applies: the device plus the link's addresses, MTU, table. */
struct plan {
	struct mk_wg_device	*dev;
	const struct mk_wg_allowedip *addrs;
	size_t			 n_addrs;
	uint32_t		 mtu;
	uint32_t		 table;		/* 0: no routes */
	bool			 table_named;
};

static void
addr_prefix(struct mk_rtnl_prefix *p, const struct mk_wg_allowedip *a)
{
	memset(p, 0, sizeof(*p));
	p->family = a->family;
	p->len = a->cidr;
	memcpy(p->b, a->ip.b, a->family == AF_INET ? 4 : 16);
}

/* p among the n of have. */
static bool
has_prefix(const struct mk_rtnl_prefix *have, size_t n,
    const struct mk_rtnl_prefix *p)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (mk_rtnl_prefix_equal(&have[i], p))
			return true;
	return false;
}

/* Add the addresses that are not among the n_have of have already. */
static int
add_addresses(struct mk_rtnl *r, const char *ifname, uint32_t ifindex,
    const struct mk_wg_allowedip *addrs, size_t n,
    const struct mk_rtnl_prefix *have, size_t n_have)
{
	struct mk_rtnl_prefix p;
	char buf[INET6_ADDRSTRLEN + 8];
	bool v6 = ipv6_on(ifname);
	size_t i;

	for (i = 0; i < n; i++) {
		if (addrs[i].family == AF_INET6 && !v6)
			continue;
		addr_prefix(&p, &addrs[i]);
		if (has_prefix(have, n_have, &p))
			continue;
		mk_info("%s: address add %s", ifname, mk_wg_allowedip_fmt(
		    &addrs[i], buf, sizeof(buf)));
		if (mk_rtnl_addr_add(r, ifindex, &p) != 0 && errno != EEXIST) {
			mk_err("%s: address %s: %s", ifname,
			    mk_wg_allowedip_fmt(&addrs[i], buf, sizeof(buf)),
			    strerror(errno));
			return -1;
		}
	}
	return 0;
}

/*
 * The mesh file is the authority on this node's addresses: remove the
 * interface's addresses it no longer names (IPv6 link-local ones are the
 * kernel's and stay), then add what is missing.
 */
static int
sync_addresses(struct mk_rtnl *r, const char *ifname, uint32_t ifindex,
    const struct mk_wg_allowedip *addrs, size_t n)
{
	struct mk_rtnl_prefix *have = NULL, p;
	char buf[INET6_ADDRSTRLEN + 8];
	size_t n_have = 0, i, j;
	int rc = -1;

	if (mk_rtnl_addr_list(r, ifindex, &have, &n_have) != 0) {
		mk_err("%s: cannot list addresses: %s", ifname,
		    strerror(errno));
		return -1;
	}
	for (i = 0; i < n_have; i++) {
		if (have[i].family == AF_INET6 && have[i].b[0] == 0xfe &&
		    (have[i].b[1] & 0xc0) == 0x80)
			continue;
		for (j = 0; j < n; j++) {
			addr_prefix(&p, &addrs[j]);
			if (mk_rtnl_prefix_equal(&p, &have[i]))
				break;
		}
		if (j < n)
			continue;
		mk_info("%s: address del %s", ifname,
		    prefix_fmt(&have[i], buf, sizeof(buf)));
		if (mk_rtnl_addr_del(r, ifindex, &have[i]) != 0 &&
		    errno != EADDRNOTAVAIL) {
			mk_err("%s: address %s: cannot delete: %s", ifname,
			    prefix_fmt(&have[i], buf, sizeof(buf)),
			    strerror(errno));
			goto out;
		}
	}
	rc = add_addresses(r, ifname, ifindex, addrs, n, have, n_have);
out:
	free(have);
	return rc;
}

/* Configure a freshly created interface; the caller rolls back. */
static int
configure(const char *ifname, const struct plan *pl)
{
	struct mk_wg *h = NULL;
	struct mk_rtnl *r = NULL;
	struct mk_rtnl_link l;
	const char *why;
	int rc = -1;

	if (mk_wg_open(&h, ifname, &why) != 0) {
		mk_err("%s: %s: %s", ifname, why, strerror(errno));
		goto out;
	}
	pl->dev->flags |= MK_WG_DEV_REPLACE_PEERS;
	if (mk_wg_set(h, pl->dev, &why) != 0) {
		mk_err("%s: %s: %s", ifname, why, strerror(errno));
		goto out;
	}
	mk_info("%s: %zu peers in %u requests", ifname, pl->dev->n_peers,
	    mk_wg_messages(h));
	if (mk_rtnl_open(&r) != 0 || mk_rtnl_link_get(r, ifname, &l) != 0) {
		mk_err("%s: %s", ifname, strerror(errno));
		goto out;
	}
	if (!ipv6_on(ifname) && has_v6(pl->dev, pl->addrs, pl->n_addrs))
		mk_warn("%s: IPv6 is disabled here: IPv6 addresses and routes "
		    "left out", ifname);
	if (add_addresses(r, ifname, l.ifindex, pl->addrs, pl->n_addrs, NULL,
	    0) != 0)
		goto out;
	mk_info("%s: mtu %u, up", ifname, pl->mtu);
	if (mk_rtnl_link_set(r, l.ifindex, 1, pl->mtu) != 0) {
		mk_err("%s: cannot set mtu %u and bring it up: %s", ifname,
		    pl->mtu, strerror(errno));
		goto out;
	}
	if (routes_for(ifname, h, pl->table, pl->table_named) != 0)
		goto out;
	rc = 0;
out:
	mk_rtnl_close(r);
	mk_wg_close(h);
	return rc;
}

/* A signal while up works would leave half an interface: hold them and
 * roll back if one came. */
static void
hold_signals(sigset_t *set, bool on)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	sigprocmask(on ? SIG_BLOCK : SIG_UNBLOCK, set, NULL);
}

static bool
signal_came(const sigset_t *set)
{
	struct timespec zero = { 0, 0 };

	return sigtimedwait(set, NULL, &zero) > 0;
}

static int
create_and_configure(const char *ifname, const struct opts *o,
    const struct plan *pl)
{
	struct mk_wg_create_opts co = { 0 };
	enum mk_wg_backend used;
	const char *why, *env;
	char err[768];
	sigset_t set;
	pid_t pid;
	int saved;

	co.backend = o->userspace ? MK_WG_USERSPACE : MK_WG_AUTO;
	if ((env = getenv(IMPL_ENV)) != NULL && *env != '\0')
		co.impl = env;
	hold_signals(&set, true);
	if (mk_wg_create(ifname, &co, &used, &pid, err, sizeof(err)) != 0) {
		saved = errno;
		hold_signals(&set, false);
		mk_err("%s: %s", ifname, err);
		return saved == EEXIST || saved == EINVAL ? MK_EXIT_USAGE :
		    MK_EXIT_FAIL;
	}
	if (used == MK_WG_USERSPACE)
		mk_info("%s: userspace, %s pid %ld", ifname, co.impl ? co.impl :
		    MK_WG_DEFAULT_IMPL, (long)pid);
	else
		mk_info("%s: kernel", ifname);
	if (configure(ifname, pl) != 0 || signal_came(&set)) {
		mk_info("%s: rolling back", ifname);
		if (mk_wg_destroy(ifname, 0, &why) != 0)
			mk_err("%s: rollback: %s: %s", ifname, why,
			    strerror(errno));
		hold_signals(&set, false);
		return MK_EXIT_FAIL;
	}
	hold_signals(&set, false);
	return 0;
}

static int
up_config(const char *ifname, const char *path, const struct opts *o)
{
	struct mk_wgconf c;
	struct plan pl = { 0 };
	char err[512], dflt[sizeof(WG_CONF_DIR) + IFNAMSIZ + 8];
	bool named;
	int rc;

	/* As wg-quick: a bare interface name means its file in WG_CONF_DIR. */
	if (path == NULL) {
		snprintf(dflt, sizeof(dflt), "%s/%s.conf", WG_CONF_DIR, ifname);
		path = dflt;
	}
	warn_world_accessible(path);
	if (mk_wgconf_load(&c, path, MK_WGCONF_RESOLVE, err,
	    sizeof(err)) != 0) {
		mk_err("%s", err);
		return MK_EXIT_USAGE;
	}
	if (mk_wg_exists(ifname)) {
		mk_wgconf_free(&c);
		mk_err("%s: already exists", ifname);
		return MK_EXIT_USAGE;
	}
	pl.dev = &c.dev;
	pl.addrs = c.addrs;
	pl.n_addrs = c.n_addrs;
	pl.mtu = c.mtu ? c.mtu : DEFAULT_MTU;
	named = c.table != MK_WGCONF_TABLE_AUTO &&
	    c.table != MK_WGCONF_TABLE_OFF && c.table != MK_RTNL_TABLE_MAIN;
	pl.table = c.table == MK_WGCONF_TABLE_OFF ? 0 :
	    c.table == MK_WGCONF_TABLE_AUTO ? MK_RTNL_TABLE_MAIN : c.table;
	pl.table_named = named;
	if (c.n_dns > 0 || c.n_search > 0)
		mk_info("%s: DNS is not applied (wgsetup leaves the "
		    "resolver alone; see magicdns)", ifname);
	rc = create_and_configure(ifname, o, &pl);
	mk_wgconf_free(&c);
	return rc;
}

/* ---- up --mesh ---- */

struct mesh_plan {
	struct mk_mesh		 m;
	struct mk_wg_device	 dev;
	struct mk_wg_allowedip	 addrs[MK_MESH_MAX_ADDRS];
	size_t			 n_addrs;
};

static void
mesh_prefix(struct mk_wg_allowedip *a, const struct mk_addr *ip,
    uint8_t prefix)
{
	memset(a, 0, sizeof(a[0]));
	a->family = (uint16_t)mk_addr_family(ip);
	a->cidr = prefix;
	if (a->family == AF_INET)
		memcpy(a->ip.b, &ip->sin.sin_addr, 4);
	else
		memcpy(a->ip.b, &ip->sin6.sin6_addr, 16);
}

/* Every node but this one is a peer whose allowed IPs are its mesh
 * addresses; this node's addresses go on the interface. */
static int
mesh_load(struct mesh_plan *mp, const struct opts *o)
{
	const struct mk_mesh_node *self, *n;
	struct mk_wg_allowedip a;
	struct mk_wg_peer *p;
	struct mk_key priv, pub;
	char err[512];
	size_t i, j;

	memset(mp, 0, sizeof(*mp));
	if (mk_mesh_load(&mp->m, o->mesh, err, sizeof(err)) != 0) {
		mk_err("%s", err);
		return MK_EXIT_USAGE;
	}
	warn_world_accessible(o->key);
	if (mk_mesh_self(&mp->m, o->mesh, o->key, &priv, &pub, &self, err,
	    sizeof(err)) != 0) {
		mk_err("%s", err);
		return MK_EXIT_USAGE;
	}
	mp->dev.private_key = priv;
	mp->dev.public_key = pub;
	mk_key_wipe(&priv);
	mp->dev.flags = MK_WG_DEV_HAS_PRIVATE_KEY | MK_WG_DEV_HAS_PUBLIC_KEY;
	if (o->port_set) {
		mp->dev.listen_port = (uint16_t)o->port;
		mp->dev.flags |= MK_WG_DEV_HAS_LISTEN_PORT;
	}
	for (i = 0; i < self->n_addrs; i++)
		mesh_prefix(&mp->addrs[mp->n_addrs++], &self->addrs[i],
		    self->prefix[i]);
	for (i = 0; i < mp->m.n_nodes; i++) {
		n = &mp->m.nodes[i];
		if (n == self)
			continue;
		if ((p = mk_wg_device_add_peer(&mp->dev, &n->pubkey)) == NULL)
			goto nomem;
		p->flags |= MK_WG_PEER_REPLACE_ALLOWEDIPS;
		for (j = 0; j < n->n_addrs; j++) {
			mesh_prefix(&a, &n->addrs[j], n->prefix[j]);
			if (mk_wg_peer_add_allowedip(p, &a) != 0)
				goto nomem;
		}
	}
	return 0;
nomem:
	mk_err("out of memory");
	return MK_EXIT_FAIL;
}

static void
mesh_free(struct mesh_plan *mp)
{
	mk_wg_device_clear(&mp->dev);
	mk_mesh_free(&mp->m);
}

static bool
same_allowedips(const struct mk_wg_peer *a, const struct mk_wg_peer *b)
{
	size_t i, j;

	if (a->n_allowedips != b->n_allowedips)
		return false;
	for (i = 0; i < a->n_allowedips; i++) {
		for (j = 0; j < b->n_allowedips; j++)
			if (mk_wg_allowedip_equal(&a->allowedips[i],
			    &b->allowedips[j]))
				break;
		if (j == b->n_allowedips)
			return false;
	}
	return true;
}

/*
 * The change that turns cur into want, touching nothing else: peers to
 * add, to remove, and those whose allowed IPs moved. Existing peers keep
 * their endpoints and sessions.
 */
static int
mesh_diff(struct mk_wg_device *want, struct mk_wg_device *cur,
    struct mk_wg_device *chg, size_t *added, size_t *removed,
    size_t *changed)
{
	struct mk_wg_peer *w, *c, *p;
	size_t i, j;

	*added = *removed = *changed = 0;
	mk_wg_device_sort(cur);
	mk_wg_device_sort(want);
	if ((want->flags & MK_WG_DEV_HAS_PRIVATE_KEY) &&
	    (!(cur->flags & MK_WG_DEV_HAS_PRIVATE_KEY) ||
	    !mk_key_equal(&want->private_key, &cur->private_key))) {
		chg->private_key = want->private_key;
		chg->flags |= MK_WG_DEV_HAS_PRIVATE_KEY;
	}
	if ((want->flags & MK_WG_DEV_HAS_LISTEN_PORT) &&
	    want->listen_port != cur->listen_port) {
		chg->listen_port = want->listen_port;
		chg->flags |= MK_WG_DEV_HAS_LISTEN_PORT;
	}
	for (i = 0; i < cur->n_peers; i++) {
		c = &cur->peers[i];
		if (mk_wg_device_find_peer(want, &c->public_key) != NULL)
			continue;
		if ((p = mk_wg_device_add_peer(chg, &c->public_key)) == NULL)
			return -1;
		p->flags = MK_WG_PEER_REMOVE_ME;
		(*removed)++;
	}
	for (i = 0; i < want->n_peers; i++) {
		w = &want->peers[i];
		c = mk_wg_device_find_peer(cur, &w->public_key);
		if (c != NULL && same_allowedips(w, c))
			continue;
		if ((p = mk_wg_device_add_peer(chg, &w->public_key)) == NULL)
			return -1;
		p->flags = MK_WG_PEER_REPLACE_ALLOWEDIPS;
		for (j = 0; j < w->n_allowedips; j++)
			if (mk_wg_peer_add_allowedip(p, &w->allowedips[j]) != 0)
				return -1;
		if (c != NULL) {
			p->flags |= MK_WG_PEER_UPDATE_ONLY;
			(*changed)++;
		} else
			(*added)++;
	}
	return 0;
}

static int
mesh_edit(const char *ifname, struct mesh_plan *mp)
{
	struct mk_wg_device cur = { 0 }, chg = { 0 };
	struct mk_wg *h = NULL;
	struct mk_rtnl *r = NULL;
	struct mk_rtnl_link l;
	size_t added, removed, changed;
	const char *why;
	int rc = MK_EXIT_FAIL;

	if (mk_wg_open(&h, ifname, &why) != 0 || mk_wg_get(h, &cur,
	    &why) != 0) {
		mk_err("%s: %s: %s", ifname, why, strerror(errno));
		rc = fail_code(errno);
		goto out;
	}
	if (mesh_diff(&mp->dev, &cur, &chg, &added, &removed,
	    &changed) != 0) {
		mk_err("out of memory");
		goto out;
	}
	mk_info("%s: %zu peers added, %zu removed, %zu changed", ifname,
	    added, removed, changed);
	if ((chg.flags || chg.n_peers) && mk_wg_set(h, &chg, &why) != 0) {
		mk_err("%s: %s: %s", ifname, why, strerror(errno));
		goto out;
	}
	if (mk_rtnl_open(&r) != 0 || mk_rtnl_link_get(r, ifname, &l) != 0) {
		mk_err("%s: %s", ifname, strerror(errno));
		goto out;
	}
	if (sync_addresses(r, ifname, l.ifindex, mp->addrs, mp->n_addrs) != 0)
		goto out;
	/* An up killed half way left the link down, at the TUN's MTU. */
	if (l.mtu != DEFAULT_MTU || !(l.flags & IFF_UP)) {
		mk_info("%s: mtu %u, up", ifname, DEFAULT_MTU);
		if (mk_rtnl_link_set(r, l.ifindex, 1, DEFAULT_MTU) != 0) {
			mk_err("%s: cannot set mtu %u and bring it up: %s",
			    ifname, DEFAULT_MTU, strerror(errno));
			goto out;
		}
	}
	if (routes_for(ifname, h, MK_RTNL_TABLE_MAIN, false) != 0)
		goto out;
	rc = 0;
out:
	mk_rtnl_close(r);
	mk_wg_close(h);
	mk_wg_device_clear(&cur);
	mk_wg_device_clear(&chg);
	return rc;
}

static int
up_mesh(const char *ifname, const struct opts *o)
{
	struct mesh_plan *mp;
	struct plan pl = { 0 };
	int rc;

	if ((mp = calloc(1, sizeof(*mp))) == NULL) {
		mk_err("out of memory");
		return MK_EXIT_FAIL;
	}
	if ((rc = mesh_load(mp, o)) != 0)
		goto out;
	if (mk_wg_exists(ifname)) {
		rc = mesh_edit(ifname, mp);
		goto out;
	}
	pl.dev = &mp->dev;
	pl.addrs = mp->addrs;
	pl.n_addrs = mp->n_addrs;
	pl.mtu = DEFAULT_MTU;
	pl.table = MK_RTNL_TABLE_MAIN;
	rc = create_and_configure(ifname, o, &pl);
out:
	mesh_free(mp);
	free(mp);
	return rc;
}

/* ---- down ---- */

static int
cmd_down(const char *ifname)
{
	const char *why;

	if (mk_wg_destroy(ifname, 0, &why) != 0) {
		mk_err("%s: %s%s%s", ifname, why, errno == ENODEV ? "" : ": ",
		    errno == ENODEV ? "" : strerror(errno));
		return fail_code(errno);
	}
	return 0;
}

/* ---- show ---- */

static const char *
b64(const struct mk_key *k, char *buf)
{
	mk_key_to_base64(buf, k);
	return buf;
}

/* Exactly `wg show IFACE dump` (with the name first for several). */
static void
print_dump(const struct mk_wg_device *dev, bool with_name)
{
	const struct mk_wg_peer *p;
	char k[MK_KEY_B64LEN + 1], a[MK_ADDRSTRLEN];
	size_t i, j;

	if (with_name)
		printf("%s\t", dev->name);
	printf("%s\t", (dev->flags & MK_WG_DEV_HAS_PRIVATE_KEY) ?
	    b64(&dev->private_key, k) : "(none)");
	printf("%s\t", (dev->flags & MK_WG_DEV_HAS_PUBLIC_KEY) ?
	    b64(&dev->public_key, k) : "(none)");
	printf("%u\t", dev->listen_port);
	if (dev->fwmark)
		printf("0x%x\n", dev->fwmark);
	else
		printf("off\n");
	for (i = 0; i < dev->n_peers; i++) {
		p = &dev->peers[i];
		if (with_name)
			printf("%s\t", dev->name);
		printf("%s\t", b64(&p->public_key, k));
		printf("%s\t", (p->flags & MK_WG_PEER_HAS_PRESHARED_KEY) ?
		    b64(&p->preshared_key, k) : "(none)");
		printf("%s\t", p->endpoint.len ? mk_addr_fmt(&p->endpoint, a,
		    sizeof(a)) : "(none)");
		for (j = 0; j < p->n_allowedips; j++)
			printf("%s%c", mk_wg_allowedip_fmt(&p->allowedips[j],
			    a, sizeof(a)), j + 1 < p->n_allowedips ? ',' :
			    '\t');
		if (p->n_allowedips == 0)
			printf("(none)\t");
		printf("%lld\t", (long long)p->last_handshake_sec);
		printf("%llu\t%llu\t", (unsigned long long)p->rx_bytes,
		    (unsigned long long)p->tx_bytes);
		if (p->keepalive)
			printf("%u\n", p->keepalive);
		else
			printf("off\n");
	}
	sodium_memzero(k, sizeof(k));
}

static void
pretty_time(char *buf, size_t n, unsigned long long left)
{
	static const struct {
		const char *name;
		unsigned long long secs;
	} units[] = {
		{ "year", 365ULL * 24 * 3600 }, { "day", 24 * 3600 },
		{ "hour", 3600 }, { "minute", 60 }, { "second", 1 },
	};
	size_t i, off = 0;
	unsigned long long v;

	buf[0] = '\0';
	for (i = 0; i < MK_ARRAY_LEN(units) && off < n; i++) {
		v = left / units[i].secs;
		left %= units[i].secs;
		if (v == 0)
			continue;
		off += (size_t)snprintf(buf + off, n - off, "%s%llu %s%s",
		    off ? ", " : "", v, units[i].name, v == 1 ? "" : "s");
	}
}

static const char *
bytes(unsigned long long b, char *buf, size_t n)
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB" };
	double v = (double)b;
	size_t i;

	if (b < 1024) {
		snprintf(buf, n, "%llu B", b);
		return buf;
	}
	for (i = 0, v /= 1024; v >= 1024 && i + 1 < MK_ARRAY_LEN(unit); i++)
		v /= 1024;
	snprintf(buf, n, "%.2f %s", v, unit[i]);
	return buf;
}

static int
handshake_cmp(const void *a, const void *b)
{
	const struct mk_wg_peer *x = a, *y = b;

	if (x->last_handshake_sec != y->last_handshake_sec)
		return x->last_handshake_sec > y->last_handshake_sec ? -1 : 1;
	if (x->last_handshake_nsec != y->last_handshake_nsec)
		return x->last_handshake_nsec > y->last_handshake_nsec ? -1 : 1;
	return 0;
}

/* The link side, when the interface lives in this namespace. */
static void
print_link(const char *ifname)
{
	struct mk_rtnl *r;
	struct mk_rtnl_link l;
	struct mk_rtnl_prefix *v = NULL;
	char buf[INET6_ADDRSTRLEN + 8];
	size_t n = 0, i;

	if (mk_rtnl_open(&r) != 0)
		return;
	if (mk_rtnl_link_get(r, ifname, &l) == 0) {
		printf("  link: %s, mtu %u\n", (l.flags & IFF_UP) ? "up" :
		    "down", l.mtu);
		if (mk_rtnl_addr_list(r, l.ifindex, &v, &n) == 0 && n > 0) {
			printf("  addresses: ");
			for (i = 0; i < n; i++)
				printf("%s%s", prefix_fmt(&v[i], buf,
				    sizeof(buf)), i + 1 < n ? ", " : "\n");
		}
		free(v);
	}
	mk_rtnl_close(r);
}

static void
print_pretty(struct mk_wg_device *dev)
{
	const char *hide = getenv("WG_HIDE_KEYS");
	bool show_keys = hide != NULL && strcmp(hide, "never") == 0;
	char k[MK_KEY_B64LEN + 1], a[MK_ADDRSTRLEN], t[256];
	const struct mk_wg_peer *p;
	size_t i, j;
	time_t now = time(NULL);

	printf("interface: %s\n", dev->name);
	if (dev->flags & MK_WG_DEV_HAS_PUBLIC_KEY)
		printf("  public key: %s\n", b64(&dev->public_key, k));
	if (dev->flags & MK_WG_DEV_HAS_PRIVATE_KEY)
		printf("  private key: %s\n", show_keys ?
		    b64(&dev->private_key, k) : "(hidden)");
	if (dev->listen_port)
		printf("  listening port: %u\n", dev->listen_port);
	if (dev->fwmark)
		printf("  fwmark: 0x%x\n", dev->fwmark);
	print_link(dev->name);
	if (dev->n_peers > 1)
		qsort(dev->peers, dev->n_peers, sizeof(*dev->peers),
		    handshake_cmp);
	for (i = 0; i < dev->n_peers; i++) {
		p = &dev->peers[i];
		printf("\npeer: %s\n", b64(&p->public_key, k));
		if (p->flags & MK_WG_PEER_HAS_PRESHARED_KEY)
			printf("  preshared key: %s\n", show_keys ?
			    b64(&p->preshared_key, k) : "(hidden)");
		if (p->endpoint.len)
			printf("  endpoint: %s\n", mk_addr_fmt(&p->endpoint, a,
			    sizeof(a)));
		printf("  allowed ips: ");
		for (j = 0; j < p->n_allowedips; j++)
			printf("%s%s", mk_wg_allowedip_fmt(&p->allowedips[j],
			    a, sizeof(a)), j + 1 < p->n_allowedips ? ", " : "");
		printf("%s\n", p->n_allowedips ? "" : "(none)");
		if (p->last_handshake_sec) {
			if (now == p->last_handshake_sec)
				printf("  latest handshake: Now\n");
			else if (now < p->last_handshake_sec)
				printf("  latest handshake: in the future "
				    "(clock wound back)\n");
			else {
				pretty_time(t, sizeof(t), (unsigned long long)
				    (now - p->last_handshake_sec));
				printf("  latest handshake: %s ago\n", t);
			}
		}
		if (p->rx_bytes || p->tx_bytes) {
			printf("  transfer: %s received, ", bytes(p->rx_bytes,
			    t, sizeof(t)));
			printf("%s sent\n", bytes(p->tx_bytes, t, sizeof(t)));
		}
		if (p->keepalive) {
			pretty_time(t, sizeof(t), p->keepalive);
			printf("  persistent keepalive: every %s\n", t);
		}
	}
	sodium_memzero(k, sizeof(k));
}

/* One object for the interface, then one per peer; no secrets. */
static void
print_json(const struct mk_wg_device *dev, enum mk_wg_backend be)
{
	struct mk_json j;
	struct mk_rtnl *r = NULL;
	struct mk_rtnl_link l;
	struct mk_rtnl_prefix *v = NULL;
	char k[MK_KEY_B64LEN + 1], a[MK_ADDRSTRLEN];
	const struct mk_wg_peer *p;
	size_t i, n = 0;
	bool have_link;

	mk_json_init(&j);
	mk_json_obj_begin(&j);
	mk_json_kstr(&j, "interface", dev->name);
	mk_json_kstr(&j, "backend", be == MK_WG_KERNEL ? "kernel" :
	    "userspace");
	mk_json_kstr(&j, "public_key", (dev->flags &
	    MK_WG_DEV_HAS_PUBLIC_KEY) ? b64(&dev->public_key, k) : NULL);
	mk_json_kint(&j, "listen_port", dev->listen_port);
	mk_json_kint(&j, "fwmark", dev->fwmark);
	mk_json_kint(&j, "peers", (long long)dev->n_peers);
	have_link = mk_rtnl_open(&r) == 0 &&
	    mk_rtnl_link_get(r, dev->name, &l) == 0;
	if (have_link) {
		mk_json_kbool(&j, "up", (l.flags & IFF_UP) != 0);
		mk_json_kint(&j, "mtu", l.mtu);
		mk_json_key(&j, "addresses");
		mk_json_arr_begin(&j);
		if (mk_rtnl_addr_list(r, l.ifindex, &v, &n) == 0)
			for (i = 0; i < n; i++)
				mk_json_str(&j, prefix_fmt(&v[i], a,
				    sizeof(a)));
		mk_json_arr_end(&j);
		free(v);
	}
	mk_rtnl_close(r);
	mk_json_obj_end(&j);
	if (mk_json_text(&j) != NULL)
		printf("%s\n", mk_json_text(&j));
	for (i = 0; i < dev->n_peers; i++) {
		size_t x;

		p = &dev->peers[i];
		mk_json_reset(&j);
		mk_json_obj_begin(&j);
		mk_json_kstr(&j, "interface", dev->name);
		mk_json_kstr(&j, "peer", b64(&p->public_key, k));
		mk_json_kbool(&j, "preshared_key", (p->flags &
		    MK_WG_PEER_HAS_PRESHARED_KEY) != 0);
		mk_json_kstr(&j, "endpoint", p->endpoint.len ?
		    mk_addr_fmt(&p->endpoint, a, sizeof(a)) : NULL);
		mk_json_key(&j, "allowed_ips");
		mk_json_arr_begin(&j);
		for (x = 0; x < p->n_allowedips; x++)
			mk_json_str(&j, mk_wg_allowedip_fmt(&p->allowedips[x],
			    a, sizeof(a)));
		mk_json_arr_end(&j);
		mk_json_kint(&j, "latest_handshake",
		    (long long)p->last_handshake_sec);
		mk_json_kint(&j, "rx_bytes", (long long)p->rx_bytes);
		mk_json_kint(&j, "tx_bytes", (long long)p->tx_bytes);
		mk_json_kint(&j, "persistent_keepalive", p->keepalive);
		mk_json_obj_end(&j);
		if (mk_json_text(&j) != NULL)
			printf("%s\n", mk_json_text(&j));
	}
	mk_json_free(&j);
}

static int
show_one(const char *ifname, const struct opts *o, bool several)
{
	struct mk_wg_device dev = { 0 };
	struct mk_wg *h;
	const char *why;
	enum mk_wg_backend be;

	if (mk_wg_open(&h, ifname, &why) != 0 || mk_wg_get(h, &dev,
	    &why) != 0) {
		int saved = errno;

		mk_err("%s: %s%s%s", ifname, why, saved == ENODEV ? "" : ": ",
		    saved == ENODEV ? "" : strerror(saved));
		return fail_code(saved);
	}
	be = mk_wg_backend_of(h);
	mk_wg_close(h);
	if (o->dump)
		print_dump(&dev, several);
	else if (o->json)
		print_json(&dev, be);
	else
		print_pretty(&dev);
	mk_wg_device_clear(&dev);
	return 0;
}

static int
cmd_show(const char *ifname, const struct opts *o)
{
	char **names;
	size_t n, i;
	int rc = 0, r;

	if (ifname != NULL) {
		rc = show_one(ifname, o, false);
		return rc ? rc : finish_stdout();
	}
	if (mk_wg_list(&names, &n) != 0) {
		mk_err("cannot list interfaces: %s", strerror(errno));
		return MK_EXIT_FAIL;
	}
	for (i = 0; i < n; i++) {
		if (i > 0 && !o->dump && !o->json)
			printf("\n");
		if ((r = show_one(names[i], o, true)) != 0)
			rc = r;
	}
	free(names);
	r = finish_stdout();
	return rc ? rc : r;
}

/* ---- set ---- */

/* A file with nothing in it at all (/dev/null too). */
static bool
file_is_empty(const char *path)
{
	char c;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return false;
	n = read(fd, &c, 1);
	close(fd);
	return n == 0;
}

/* As wg set: an empty file (or /dev/null) removes the key, which is the
 * all-zero key on the wire for both backends. */
static int
set_key_file(struct mk_key *k, const char *path)
{
	const char *why;

	if (strcmp(path, "-") != 0 && file_is_empty(path)) {
		memset(k, 0, sizeof(*k));
		return 0;
	}
	warn_world_accessible(path);
	if (mk_key_read_file(k, path, &why) != 0) {
		mk_err("%s: %s", path, why);
		return -1;
	}
	return 0;
}

static int
set_allowedips(struct mk_wg_peer *p, const char *list)
{
	struct mk_wg_allowedip a;
	char *copy, *item, *save = NULL;
	const char *why;
	int rc = 0;

	p->flags |= MK_WG_PEER_REPLACE_ALLOWEDIPS;
	if ((copy = strdup(list)) == NULL)
		return -1;
	for (item = strtok_r(copy, ", ", &save); item != NULL;
	    item = strtok_r(NULL, ", ", &save)) {
		if (mk_wg_allowedip_parse(&a, item, &why) != 0) {
			mk_err("allowed-ips %s: %s", item, why);
			rc = -1;
			break;
		}
		if (mk_wg_peer_add_allowedip(p, &a) != 0) {
			rc = -1;
			break;
		}
	}
	free(copy);
	return rc;
}

/* The wg set grammar: device words, then "peer KEY" and its words. */
static int
parse_set(struct mk_wg_device *dev, int argc, char **argv)
{
	struct mk_wg_peer *p = NULL;
	struct mk_key k;
	const char *why;
	long long n;
	int i;

	for (i = 0; i < argc; i++) {
		const char *w = argv[i], *v = i + 1 < argc ? argv[i + 1] :
		    NULL;

		if (strcmp(w, "remove") == 0 && p != NULL) {
			p->flags |= MK_WG_PEER_REMOVE_ME;
			continue;
		}
		if (v == NULL) {
			mk_err("set: %s: missing value", w);
			return -1;
		}
		i++;
		if (strcmp(w, "peer") == 0) {
			if (mk_key_parse(&k, v, &why) != 0) {
				mk_err("set: peer %s: %s", v, why);
				return -1;
			}
			if ((p = mk_wg_device_add_peer(dev, &k)) == NULL)
				return -1;
		} else if (strcmp(w, "listen-port") == 0 && p == NULL) {
			if (mk_strtonum(v, 0, 65535, &n) != 0) {
				mk_err("set: listen-port %s: want 0 to 65535",
				    v);
				return -1;
			}
			dev->listen_port = (uint16_t)n;
			dev->flags |= MK_WG_DEV_HAS_LISTEN_PORT;
		} else if (strcmp(w, "fwmark") == 0 && p == NULL) {
			if (mk_wgconf_parse_fwmark(v, &dev->fwmark) != 0) {
				mk_err("set: fwmark %s: want a number, 0x and "
				    "hex digits, or off", v);
				return -1;
			}
			dev->flags |= MK_WG_DEV_HAS_FWMARK;
		} else if (strcmp(w, "private-key") == 0 && p == NULL) {
			if (set_key_file(&dev->private_key, v) != 0)
				return -1;
			dev->flags |= MK_WG_DEV_HAS_PRIVATE_KEY;
		} else if (strcmp(w, "endpoint") == 0 && p != NULL) {
			if (mk_addr_resolve(&p->endpoint, v, 0, AF_UNSPEC,
			    &why) != 0) {
				mk_err("set: endpoint %s: %s", v, why);
				return -1;
			}
			if (mk_addr_port(&p->endpoint) == 0) {
				mk_err("set: endpoint %s: want ip:port", v);
				return -1;
			}
			p->flags |= MK_WG_PEER_HAS_ENDPOINT;
		} else if (strcmp(w, "allowed-ips") == 0 && p != NULL) {
			if (set_allowedips(p, v) != 0)
				return -1;
		} else if ((strcmp(w, "keepalive") == 0 ||
		    strcmp(w, "persistent-keepalive") == 0) && p != NULL) {
			if (strcmp(v, "off") == 0)
				n = 0;
			else if (mk_strtonum(v, 0, 65535, &n) != 0) {
				mk_err("set: keepalive %s: want 0 to 65535 "
				    "or off", v);
				return -1;
			}
			p->keepalive = (uint16_t)n;
			p->flags |= MK_WG_PEER_HAS_KEEPALIVE;
		} else if (strcmp(w, "preshared-key") == 0 && p != NULL) {
			if (set_key_file(&p->preshared_key, v) != 0)
				return -1;
			p->flags |= MK_WG_PEER_HAS_PRESHARED_KEY;
		} else {
			mk_err("set: unexpected argument: %s", w);
			return -1;
		}
	}
	return 0;
}

/*
 * Routes go through the link, so -t wants it here and up; asked before
 * anything is changed, so that a down link leaves nothing half applied.
 */
static int
link_ready(const char *ifname)
{
	struct mk_rtnl *r = NULL;
	struct mk_rtnl_link l;
	int rc = 0;

	if (mk_rtnl_open(&r) != 0 || mk_rtnl_link_get(r, ifname, &l) != 0) {
		mk_err("%s: %s%s", ifname, strerror(errno), errno == ENODEV ?
		    " here: its routes cannot be set" : "");
		rc = -1;
	} else if (!(l.flags & IFF_UP)) {
		mk_err("%s: the link is down: its routes cannot be set "
		    "(nothing was changed)", ifname);
		rc = -1;
	}
	mk_rtnl_close(r);
	return rc;
}

/*
 * As wg set: the WireGuard side only. With -t, the routes of that table
 * then follow the allowed IPs.
 */
static int
cmd_set(const char *ifname, int argc, char **argv, const struct opts *o)
{
	struct mk_wg_device dev = { 0 };
	struct mk_wg *h = NULL;
	const char *why;
	uint32_t table;
	bool named;
	int rc = MK_EXIT_USAGE;

	if (parse_table(o->table, &table, &named) != 0)
		mk_usage_error("bad table: %s", o->table);
	if (parse_set(&dev, argc, argv) != 0)
		goto out;
	if (mk_wg_open(&h, ifname, &why) != 0) {
		mk_err("%s: %s", ifname, why);
		rc = fail_code(errno);
		goto out;
	}
	if (table != 0 && link_ready(ifname) != 0) {
		rc = MK_EXIT_FAIL;
		goto out;
	}
	if (mk_wg_set(h, &dev, &why) != 0) {
		mk_err("%s: %s: %s", ifname, why, strerror(errno));
		rc = fail_code(errno);
		goto out;
	}
	rc = routes_for(ifname, h, table, named) != 0 ? MK_EXIT_FAIL : 0;
out:
	mk_wg_close(h);
	mk_wg_device_clear(&dev);
	return rc;
}

static int
cmd_setconf(const char *ifname, const char *path)
{
	struct mk_wg *h = NULL;
	struct mk_wgconf c;
	char err[512];
	const char *why;
	int rc = 0;

	warn_world_accessible(path);
	if (mk_wgconf_load(&c, path, MK_WGCONF_RESOLVE, err,
	    sizeof(err)) != 0) {
		mk_err("%s", err);
		return MK_EXIT_USAGE;
	}
	c.dev.flags |= MK_WG_DEV_REPLACE_PEERS;
	if (mk_wg_open(&h, ifname, &why) != 0) {
		mk_err("%s: %s", ifname, why);
		rc = fail_code(errno);
	} else if (mk_wg_set(h, &c.dev, &why) != 0) {
		mk_err("%s: %s: %s", ifname, why, strerror(errno));
		rc = fail_code(errno);
	} else
		mk_info("%s: %zu peers in %u requests", ifname, c.dev.n_peers,
		    mk_wg_messages(h));
	mk_wg_close(h);
	mk_wgconf_free(&c);
	return rc;
}

/* ---- endpoints: "PUBKEY IP:PORT" lines from stdin ---- */

static int
endpoint_line(struct mk_wg *h, struct mk_wg_device *cur, char *line,
    unsigned lineno, bool *fatal)
{
	struct mk_addr ep;
	struct mk_key k;
	char *key, *addr, *rest, *save = NULL, a[MK_ADDRSTRLEN];
	const char *why;

	key = strtok_r(line, " \t", &save);
	addr = strtok_r(NULL, " \t", &save);
	rest = strtok_r(NULL, " \t", &save);
	if (key == NULL || addr == NULL || rest != NULL) {
		mk_warn("stdin:%u: want PUBKEY IP:PORT", lineno);
		return -1;
	}
	if (mk_key_parse(&k, key, &why) != 0) {
		mk_warn("stdin:%u: %s", lineno, why);
		return -1;
	}
	if (mk_addr_parse(&ep, addr, 0, MK_ADDR_NEED_PORT, &why) != 0) {
		mk_warn("stdin:%u: %s: %s", lineno, addr, why);
		return -1;
	}
	if (mk_addr_port(&ep) == 0) {
		mk_warn("stdin:%u: %s: port 0", lineno, addr);
		return -1;
	}
	switch (mk_wg_set_endpoint(h, cur, &k, &ep, &why)) {
	case MK_WG_EP_UNCHANGED:
		return 0;
	case MK_WG_EP_SET:
		mk_info("%s endpoint %s", key, mk_addr_fmt(&ep, a, sizeof(a)));
		return 0;
	case MK_WG_EP_NO_PEER:
		mk_warn("stdin:%u: %s: no such peer", lineno, key);
		return -1;
	}
	mk_err("%s: %s", why, strerror(errno));
	*fatal = true;
	return -1;
}

static int
cmd_endpoints(const char *ifname)
{
	struct mk_wg_device cur = { 0 };
	struct mk_wg *h;
	char *line = NULL, *s;
	size_t cap = 0;
	unsigned lineno = 0, bad = 0;
	const char *why;
	bool fatal = false;
	int rc;

	if (mk_wg_open(&h, ifname, &why) != 0 || mk_wg_get(h, &cur,
	    &why) != 0) {
		mk_err("%s: %s", ifname, why);
		return fail_code(errno);
	}
	mk_wg_device_sort(&cur);
	while (!fatal && getline(&line, &cap, stdin) > 0) {
		lineno++;
		s = mk_trim(line);
		if (*s == '\0' || *s == '#')
			continue;
		if (endpoint_line(h, &cur, s, lineno, &fatal) != 0)
			bad++;
	}
	if (!fatal && ferror(stdin)) {
		mk_err("stdin: %s", strerror(errno));
		fatal = true;
	}
	free(line);
	mk_wg_close(h);
	mk_wg_device_clear(&cur);
	rc = fatal ? MK_EXIT_FAIL : bad ? MK_EXIT_USAGE : 0;
	return rc;
}

/* ---- main ---- */

enum {
	OPT_USERSPACE = 256,
	OPT_MESH,
	OPT_KEY,
	OPT_DUMP,
	OPT_JSON,
};

static const struct option longopts[] = {
	{ "dump", no_argument, NULL, OPT_DUMP },
	{ "help", no_argument, NULL, 'h' },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "key", required_argument, NULL, OPT_KEY },
	{ "mesh", required_argument, NULL, OPT_MESH },
	{ "port", required_argument, NULL, 'p' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "table", required_argument, NULL, 't' },
	{ "userspace", no_argument, NULL, OPT_USERSPACE },
	{ "verbose", no_argument, NULL, 'v' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

/* Only these commands take these options. */
static void
check_opts(const char *cmd, const struct opts *o)
{
	bool up = strcmp(cmd, "up") == 0;

	if (o->userspace && !up)
		mk_usage_error("%s", "--userspace goes with up");
	if ((o->mesh || o->key || o->port_set) && !up)
		mk_usage_error("%s", "--mesh, --key and -p go with up");
	if ((o->mesh == NULL) != (o->key == NULL))
		mk_usage_error("%s", "--mesh and --key go together");
	if (o->port_set && o->mesh == NULL)
		mk_usage_error("%s", "-p goes with --mesh (a config file has "
		    "ListenPort)");
	if ((o->dump || o->json) && strcmp(cmd, "show") != 0)
		mk_usage_error("%s", "--dump and --json go with show");
	if (o->dump && o->json)
		mk_usage_error("%s", "--dump or --json, not both");
	if (o->table && strcmp(cmd, "set") != 0)
		mk_usage_error("%s", "-t goes with set");
}

static void
want_args(int argc, int min, int max, const char *cmd)
{
	if (argc < min || argc > max)
		mk_usage_error("wrong number of arguments for %s", cmd);
}

static const char *
ifname_arg(const char *s)
{
	if (!mk_wg_ifname_valid(s))
		mk_usage_error("bad interface name: %s", s);
	return s;
}

/*
 * A bad option is reported once the command is known, with that
 * command's usage; the first one is kept. getopt_long has moved optind
 * past a long option, and past a short one whose value is missing (it
 * ends its cluster), but not past a short one in the middle of a cluster:
 * then only optopt tells.
 */
static void
opt_error(char *bad, size_t n, int ch, char *const *argv, int optind_now)
{
	const char *arg = optind_now > 0 ? argv[optind_now - 1] : "";
	int len = (int)strcspn(arg, "=");
	bool is_long = strncmp(arg, "--", 2) == 0;

	if (bad[0] != '\0')
		return;
	if (ch == ':' && is_long)
		snprintf(bad, n, "%.*s needs a value", len, arg);
	else if (ch == ':')
		snprintf(bad, n, "-%c needs a value", optopt);
	else if (optopt == 0)
		snprintf(bad, n, "unknown option: %.*s", len, arg);
	else if (is_long && arg[len] == '=')
		snprintf(bad, n, "%.*s takes no value", len, arg);
	else if (optopt > 255)
		snprintf(bad, n, "bad option: %s", arg);
	else
		snprintf(bad, n, "unknown option: -%c", optopt);
}

int
main(int argc, char *argv[])
{
	struct opts o = { 0 };
	const char *cmd;
	char bad[128] = "";
	bool help = false;
	int ch, quiet = 0, verbose = 0;

	mk_cli_init("wgsetup", usage);
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":hp:qt:vV", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'h':
			help = true;
			break;
		case 'p':
			if (mk_strtonum(optarg, 0, 65535, &o.port) != 0 &&
			    bad[0] == '\0')
				snprintf(bad, sizeof(bad), "bad port: %s",
				    optarg);
			o.port_set = true;
			break;
		case 'q':
			quiet++;
			break;
		case 't':
			o.table = optarg;
			break;
		case 'v':
			verbose++;
			break;
		case 'V':
			printf("wgsetup %s\n", MK_VERSION);
			return finish_stdout();
		case OPT_USERSPACE:
			o.userspace = true;
			break;
		case OPT_MESH:
			o.mesh = optarg;
			break;
		case OPT_KEY:
			o.key = optarg;
			break;
		case OPT_DUMP:
			o.dump = true;
			break;
		case OPT_JSON:
			o.json = true;
			break;
		default:
			opt_error(bad, sizeof(bad), ch, argv, optind);
			break;
		}
	}
	argc -= optind;
	argv += optind;
	cmd = argc > 0 ? argv[0] : NULL;
	/* From here on, usage errors show this command's forms only. */
	if (cmd != NULL && known_cmd(cmd)) {
		usage_cmd = cmd;
		mk_cli_init("wgsetup", usage_of_cmd);
	}
	if (help) {
		if (usage_cmd != NULL)
			usage_of_cmd(stdout);
		else
			usage(stdout);
		return finish_stdout();
	}
	if (bad[0] != '\0')
		mk_usage_error("%s", bad);
	if (cmd == NULL)
		mk_usage_error("%s", "missing command");
	if (usage_cmd == NULL)
		mk_usage_error("unknown command: %s", cmd);
	argc--;
	argv++;
	mk_log_init("wgsetup", quiet ? MK_LOG_ERR : MK_LOG_WARN + verbose);
	check_opts(cmd, &o);
	if (mk_key_init() != 0) {
		mk_err("cannot initialise libsodium");
		return MK_EXIT_FAIL;
	}
	if (strcmp(cmd, "genkey") == 0 || strcmp(cmd, "genpsk") == 0) {
		want_args(argc, 0, 0, cmd);
		return cmd_genkey(cmd[3] == 'p');
	}
	if (strcmp(cmd, "pubkey") == 0) {
		want_args(argc, 0, 0, cmd);
		return cmd_pubkey();
	}
	if (strcmp(cmd, "up") == 0) {
		if (o.mesh != NULL) {
			want_args(argc, 1, 1, cmd);
			return up_mesh(ifname_arg(argv[0]), &o);
		}
		want_args(argc, 1, 2, cmd);
		return up_config(ifname_arg(argv[0]), argc == 2 ? argv[1] :
		    NULL, &o);
	}
	if (strcmp(cmd, "down") == 0) {
		want_args(argc, 1, 1, cmd);
		return cmd_down(ifname_arg(argv[0]));
	}
	if (strcmp(cmd, "show") == 0) {
		want_args(argc, 0, 1, cmd);
		return cmd_show(argc ? ifname_arg(argv[0]) : NULL, &o);
	}
	if (strcmp(cmd, "set") == 0) {
		want_args(argc, 1, INT32_MAX, cmd);
		return cmd_set(ifname_arg(argv[0]), argc - 1, argv + 1, &o);
	}
	if (strcmp(cmd, "setconf") == 0) {
		want_args(argc, 2, 2, cmd);
		return cmd_setconf(ifname_arg(argv[0]), argv[1]);
	}
	want_args(argc, 1, 1, cmd);
	return cmd_endpoints(ifname_arg(argv[0]));
}
