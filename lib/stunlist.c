/* SPDX-License-Identifier: MIT */
#include "addr.h"
#include "stunlist.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "loop.h"
#include "util.h"

#define ENV_SEP	" ,\t\n"

/* Documented in stunq(1) and natclass(1). */
const char *const mk_stun_builtin_servers[] = {
	"stun.l.google.com:19302",
	"stun.cloudflare.com:3478",
	"stun.nextcloud.com:443",
};
const size_t mk_stun_n_builtin_servers = MK_ARRAY_LEN(mk_stun_builtin_servers);

int
mk_stunlist_add(struct mk_stunlist *l, const char *name, const char **why)
{
	if (l->n == MK_STUNLIST_MAX) {
		*why = "too many servers (at most 64)";
		return -1;
	}
	if (strlen(name) >= MK_STUNLIST_NAMELEN) {
		*why = "server name too long";
		return -1;
	}
	strcpy(l->name[l->n++], name);
	return 0;
}

int
mk_stunlist_from_env(struct mk_stunlist *l, const char *value,
    const char **why)
{
	const char *p = value, *sep = ENV_SEP;
	char tok[MK_STUNLIST_NAMELEN];
	size_t n;

	for (;;) {
		p += strspn(p, sep);
		if (*p == '\0')
			return 0;
		n = strcspn(p, sep);
		if (n >= sizeof(tok)) {
			*why = "server name too long";
			return -1;
		}
		memcpy(tok, p, n);
		tok[n] = '\0';
		if (mk_stunlist_add(l, tok, why) != 0)
			return -1;
		p += n;
	}
}

int
mk_stunlist_from_mesh(struct mk_stunlist *l, const struct mk_mesh *m,
    const char **why)
{
	char name[MK_STUNLIST_NAMELEN];
	size_t i;

	for (i = 0; i < m->n_stun; i++) {
		mk_hostport_fmt(name, sizeof(name), m->stun[i].host,
		    m->stun[i].port);
		if (mk_stunlist_add(l, name, why) != 0)
			return -1;
	}
	return 0;
}

int
mk_stunlist_builtin(struct mk_stunlist *l, const char **why)
{
	size_t i;

	for (i = 0; i < mk_stun_n_builtin_servers; i++) {
		if (mk_stunlist_add(l, mk_stun_builtin_servers[i], why) != 0)
			return -1;
	}
	return 0;
}

/* A blank $STUNQ_SERVERS names no server, so the lookup goes on. */
bool
mk_stunlist_wants_mesh(size_t nargs)
{
	const char *env = getenv("STUNQ_SERVERS");

	return nargs == 0 && (env == NULL || env[strspn(env, ENV_SEP)] == '\0');
}

int
mk_stunlist_collect(struct mk_stunlist *l, char *const *args, size_t nargs,
    const struct mk_mesh *mesh, bool builtin, const char **why)
{
	const char *env;
	size_t i;

	l->n = 0;
	for (i = 0; i < nargs; i++)
		if (mk_stunlist_add(l, args[i], why) != 0)
			return -1;
	if (l->n == 0 && (env = getenv("STUNQ_SERVERS")) != NULL &&
	    mk_stunlist_from_env(l, env, why) != 0)
		return -1;
	if (l->n == 0 && mesh != NULL &&
	    mk_stunlist_from_mesh(l, mesh, why) != 0)
		return -1;
	if (l->n == 0 && builtin)
		return mk_stunlist_builtin(l, why);
	return 0;
}

/* The look-ups of one mk_stunlist_resolve call. getaddrinfo_a's requests
 * point into it, so one still running at the deadline keeps it alive:
 * such a batch is parked on `abandoned` (reachable, not leaked) and never
 * freed. */
struct lookups {
	struct gaicb cb[MK_STUNLIST_MAX];
	struct gaicb *list[MK_STUNLIST_MAX];
	struct addrinfo hints;
	char host[MK_STUNLIST_MAX][MK_STUNLIST_NAMELEN];
	size_t idx[MK_STUNLIST_MAX];	/* which name each request is */
	uint16_t port[MK_STUNLIST_MAX];
	size_t n;
	struct lookups *next;
};

static struct lookups *abandoned;

/* A numeric address, or a name to look up (*host, *port), or bad input. */
static int
classify(struct mk_stunlist_addr *o, const char *name, uint16_t default_port,
    int family, char *host, size_t hostlen, uint16_t *port)
{
	char ps[16];
	long long v;
	const char *why;

	if (mk_addr_parse(&o->addr, name, default_port, 0, &why) == 0) {
		if (family != AF_UNSPEC && mk_addr_family(&o->addr) != family) {
			o->why = "address of the wrong family";
			return -1;
		}
		return 1;
	}
	if (mk_addr_split(name, host, hostlen, ps, sizeof(ps)) != 0 ||
	    host[0] == '\0') {
		o->why = "malformed address";
		o->bad = true;
		return -1;
	}
	*port = default_port;
	if (ps[0] != '\0') {
		if (mk_strtonum(ps, 0, 65535, &v) != 0) {
			o->why = "bad port";
			o->bad = true;
			return -1;
		}
		*port = (uint16_t)v;
	}
	return 0;
}

static void
take(struct mk_stunlist_addr *o, struct gaicb *cb, uint16_t port, int rc)
{
	struct addrinfo *ai;

	if (rc != 0) {
		o->why = gai_strerror(rc);
		return;
	}
	for (ai = cb->ar_result; ai != NULL; ai = ai->ai_next) {
		if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6)
			break;
	}
	if (ai == NULL)
		o->why = "no usable address";
	else {
		mk_addr_from_sa(&o->addr, ai->ai_addr, ai->ai_addrlen);
		mk_addr_set_port(&o->addr, port);
	}
	freeaddrinfo(cb->ar_result);
	cb->ar_result = NULL;
}

size_t
mk_stunlist_resolve(const struct mk_stunlist *l, uint16_t default_port,
    int family, uint64_t deadline_us, struct mk_stunlist_addr *out)
{
	struct lookups *lk;
	struct timespec ts;
	uint64_t now;
	size_t i, k, ok = 0, pending;
	int rc;

	lk = calloc(1, sizeof(*lk));
	for (i = 0; i < l->n; i++) {
		memset(&out[i], 0, sizeof(out[i]));
		if (lk == NULL) {
			out[i].why = "out of memory";
			continue;
		}
		k = lk->n;
		rc = classify(&out[i], l->name[i], default_port, family,
		    lk->host[k], sizeof(lk->host[k]), &lk->port[k]);
		if (rc == 1)
			ok++;
		if (rc != 0)
			continue;
		lk->idx[k] = i;
		lk->cb[k].ar_name = lk->host[k];
		lk->cb[k].ar_request = &lk->hints;
		lk->list[k] = &lk->cb[k];
		lk->n++;
	}
	if (lk == NULL)
		return ok;
	if (lk->n == 0) {
		free(lk);
		return ok;
	}
	lk->hints.ai_family = family;
	lk->hints.ai_socktype = SOCK_DGRAM;
	lk->hints.ai_flags = AI_ADDRCONFIG;
	if (getaddrinfo_a(GAI_NOWAIT, lk->list, (int)lk->n, NULL) != 0) {
		for (k = 0; k < lk->n; k++)
			out[lk->idx[k]].why = "cannot start the name lookup";
		free(lk);
		return ok;
	}
	for (;;) {
		pending = 0;
		for (k = 0; k < lk->n; k++) {
			if (lk->list[k] == NULL)
				continue;
			rc = gai_error(lk->list[k]);
			if (rc == EAI_INPROGRESS) {
				pending++;
				continue;
			}
			take(&out[lk->idx[k]], lk->list[k], lk->port[k], rc);
			if (out[lk->idx[k]].why == NULL)
				ok++;
			lk->list[k] = NULL;	/* gai_suspend skips NULL */
		}
		now = mk_now_us();
		if (pending == 0 || now >= deadline_us)
			break;
		ts.tv_sec = (time_t)((deadline_us - now) / 1000000);
		ts.tv_nsec = (long)((deadline_us - now) % 1000000) * 1000;
		(void)gai_suspend((const struct gaicb *const *)lk->list,
		    (int)lk->n, &ts);
	}
	if (pending == 0) {
		free(lk);
		return ok;
	}
	for (k = 0; k < lk->n; k++) {
		if (lk->list[k] == NULL)
			continue;
		(void)gai_cancel(lk->list[k]);
		out[lk->idx[k]].why = "name lookup timed out";
	}
	lk->next = abandoned;
	abandoned = lk;
	return ok;
}
