/* SPDX-License-Identifier: MIT */
#include "addr.h"
#include "relayset.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tls.h"
#include "url.h"

static struct mk_relay *
alloc_relays(struct mk_relayset *s, size_t n, const char **why)
{
	memset(s, 0, sizeof(*s));
	if (n == 0)
		return NULL;
	if ((s->v = calloc(n, sizeof(*s->v))) == NULL) {
		*why = "out of memory";
		errno = ENOMEM;
	}
	return s->v;
}

int
mk_relayset_from_mesh(struct mk_relayset *s, const struct mk_mesh *m,
    const char **why)
{
	struct mk_relay *r;
	size_t i;

	if (alloc_relays(s, m->n_relays, why) == NULL && m->n_relays > 0)
		return -1;
	for (i = 0; i < m->n_relays; i++) {
		const struct mk_mesh_relay *mr = &m->relays[i];

		r = &s->v[s->n];
		r->region = (int)i + 1;
		snprintf(r->code, sizeof(r->code), "%.31s", mr->host);
		snprintf(r->name, sizeof(r->name), "%.127s", mr->url);
		/* the parser checked the URL; this cannot fail */
		if (mk_url_parse(&r->nodes[0].url, mr->url, MK_URL_RELAY,
		    why) != 0) {
			mk_relayset_free(s);
			return -1;
		}
		r->nodes[0].has_pin = mr->has_pin;
		memcpy(r->nodes[0].pin, mr->pin, sizeof(r->nodes[0].pin));
		r->n_nodes = 1;
		mk_hostport_fmt(r->stun_host, sizeof(r->stun_host), mr->host,
		    0);
		r->stun_port = MK_MESH_STUN_PORT;
		snprintf(r->host, sizeof(r->host), "%s", mr->host);
		r->tcp_port = mr->port;
		s->n++;
	}
	return 0;
}

/* A map node's STUN port: 0 in the map means 3478, -1 none (0 here). */
static uint16_t
stun_port(const struct mk_derpmap_node *n)
{
	if (n->stun_port < 0)
		return 0;
	return n->stun_port ? (uint16_t)n->stun_port : MK_MESH_STUN_PORT;
}

int
mk_relayset_from_derpmap(struct mk_relayset *s, const struct mk_derpmap *dm,
    const char **why)
{
	const struct mk_derpmap_node *node;
	struct mk_relay *r;
	size_t i, k;

	if (alloc_relays(s, dm->n_regions, why) == NULL && dm->n_regions > 0)
		return -1;
	for (i = 0; i < dm->n_regions; i++) {
		const struct mk_derpmap_region *dr = &dm->regions[i];

		r = &s->v[s->n++];
		r->region = dr->id;
		snprintf(r->code, sizeof(r->code), "%s", dr->code);
		snprintf(r->name, sizeof(r->name), "%s", dr->name);
		r->no_home = dr->no_measure_no_home;
		r->n_nodes = mk_derpmap_targets(dr, r->nodes,
		    MK_RELAY_MAX_NODES);
		for (node = NULL, k = 0; k < dr->n_nodes && node == NULL; k++)
			if (stun_port(&dr->nodes[k]) != 0)
				node = &dr->nodes[k];
		if (node == NULL)
			continue;
		snprintf(r->stun_host, sizeof(r->stun_host), "%s", node->host);
		snprintf(r->stun_v4, sizeof(r->stun_v4), "%s", node->ipv4);
		snprintf(r->stun_v6, sizeof(r->stun_v6), "%s", node->ipv6);
		snprintf(r->stun_node, sizeof(r->stun_node), "%s", node->name);
		r->stun_port = stun_port(node);
		snprintf(r->host, sizeof(r->host), "%s", node->host);
		r->tcp_port = node->derp_port ? (uint16_t)node->derp_port : 443;
	}
	return 0;
}

int
mk_relayset_load_derpmap(struct mk_relayset *s, const char *path, char *err,
    size_t errlen)
{
	struct mk_derpmap dm;
	const char *why;
	int rc;

	memset(s, 0, sizeof(*s));
	if (mk_derpmap_load(&dm, path, err, errlen) != 0)
		return -1;
	rc = mk_relayset_from_derpmap(s, &dm, &why);
	if (rc != 0)
		snprintf(err, errlen, "%s: %s", path, why);
	mk_derpmap_free(&dm);
	return rc;
}

void
mk_relayset_free(struct mk_relayset *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

const struct mk_relay *
mk_relayset_region(const struct mk_relayset *s, int id)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (s->v[i].region == id)
			return &s->v[i];
	return NULL;
}

size_t
mk_relayset_targets(const struct mk_relayset *s, int region,
    struct mk_derpc_target *out, size_t cap)
{
	size_t i, k, n = 0;

	for (i = 0; i < s->n; i++) {
		if (region != 0 && s->v[i].region != region)
			continue;
		for (k = 0; k < s->v[i].n_nodes && n < cap; k++)
			out[n++] = s->v[i].nodes[k];
	}
	return n;
}

/* A map's IPv4/IPv6 field names an address unless empty or "none". */
static bool
field_set(const char *f)
{
	return f[0] != '\0' && strcmp(f, "none") != 0;
}

const char *
mk_relay_stun_host(const struct mk_relay *r, int family)
{
	if (r->stun_port == 0)
		return NULL;
	if (family != AF_INET6 && field_set(r->stun_v4))
		return r->stun_v4;
	if (family != AF_INET && field_set(r->stun_v6))
		return r->stun_v6;
	return r->stun_host;
}

int
mk_relayset_client_targets(const char *const *urls, size_t n_urls,
    const char *pin, const struct mk_mesh *mesh, const char *meshpath,
    struct mk_derpc_target *t, size_t cap, size_t *n, char *err,
    size_t errlen)
{
	struct mk_relayset rs;
	const char *why;
	size_t i;

	*n = 0;
	for (i = 0; i < n_urls && *n < cap; i++, (*n)++) {
		memset(&t[*n], 0, sizeof(t[*n]));
		if (mk_url_parse(&t[*n].url, urls[i], MK_URL_RELAY,
		    &why) != 0) {
			snprintf(err, errlen, "bad relay URL %s: %s", urls[i],
			    why);
			return -1;
		}
		if (pin != NULL) {
			if (mk_tls_pin_parse(t[*n].pin, pin) != 0) {
				snprintf(err, errlen, "bad pin: %s", pin);
				return -1;
			}
			t[*n].has_pin = true;
		}
	}
	if (mesh != NULL) {
		if (mk_relayset_from_mesh(&rs, mesh, &why) != 0) {
			snprintf(err, errlen, "%s: %s", meshpath, why);
			return -1;
		}
		*n += mk_relayset_targets(&rs, 0, t + *n, cap - *n);
		mk_relayset_free(&rs);
	}
	return 0;
}
