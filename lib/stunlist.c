/* SPDX-License-Identifier: MIT */
#include "stunlist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
		/* An IPv6 literal needs brackets before its port. */
		snprintf(name, sizeof(name), strchr(m->stun[i].host, ':') ?
		    "[%s]:%u" : "%s:%u", m->stun[i].host, m->stun[i].port);
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
