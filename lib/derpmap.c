/* SPDX-License-Identifier: MIT */
#include "addr.h"
#include "derpmap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "tls.h"
#include "util.h"

static int
perr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* A member by name, case-insensitively as Go matches it. */
static json_t *
member(json_t *obj, const char *name)
{
	const char *k;
	json_t *v, *exact;

	if ((exact = json_object_get(obj, name)) != NULL)
		return exact;
	json_object_foreach(obj, k, v) {
		if (strcasecmp(k, name) == 0)
			return v;
	}
	return NULL;
}

static int
get_str(json_t *obj, const char *name, char *out, size_t cap,
    const char *where, char *err, size_t errlen)
{
	json_t *v = member(obj, name);

	out[0] = '\0';
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v) || json_string_length(v) >= cap ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return perr(err, errlen, "%s.%s: not a string of at most "
		    "%zu bytes", where, name, cap - 1);
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

static int
get_int(json_t *obj, const char *name, long long min, long long max,
    long long *out, const char *where, char *err, size_t errlen)
{
	json_t *v = member(obj, name);

	*out = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < min ||
	    json_integer_value(v) > max)
		return perr(err, errlen, "%s.%s: not an integer in %lld..%lld",
		    where, name, min, max);
	*out = json_integer_value(v);
	return 0;
}

static int
get_bool(json_t *obj, const char *name, bool *out, const char *where,
    char *err, size_t errlen)
{
	json_t *v = member(obj, name);

	*out = false;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return perr(err, errlen, "%s.%s: not a boolean", where, name);
	*out = json_is_true(v);
	return 0;
}

static int
parse_node(struct mk_derpmap_node *n, json_t *o, const char *where,
    char *err, size_t errlen)
{
	long long v;

	if (!json_is_object(o))
		return perr(err, errlen, "%s: not an object", where);
	if (get_str(o, "Name", n->name, sizeof(n->name), where, err,
	    errlen) != 0 ||
	    get_str(o, "HostName", n->host, sizeof(n->host), where, err,
	    errlen) != 0 ||
	    get_str(o, "CertName", n->cert_name, sizeof(n->cert_name), where,
	    err, errlen) != 0 ||
	    get_str(o, "IPv4", n->ipv4, sizeof(n->ipv4), where, err,
	    errlen) != 0 ||
	    get_str(o, "IPv6", n->ipv6, sizeof(n->ipv6), where, err,
	    errlen) != 0 ||
	    get_bool(o, "STUNOnly", &n->stun_only, where, err, errlen) != 0 ||
	    get_bool(o, "InsecureForTests", &n->insecure, where, err,
	    errlen) != 0)
		return -1;
	if (get_int(o, "RegionID", 0, INT32_MAX, &v, where, err, errlen) != 0)
		return -1;
	n->region = (int)v;
	if (get_int(o, "STUNPort", -1, 65535, &v, where, err, errlen) != 0)
		return -1;
	n->stun_port = (int)v;
	if (get_int(o, "DERPPort", 0, 65535, &v, where, err, errlen) != 0)
		return -1;
	n->derp_port = (int)v;
	if (n->host[0] == '\0')
		return perr(err, errlen, "%s: no HostName", where);
	if (strncmp(n->cert_name, "sha256-raw:", 11) == 0) {
		if (mk_tls_pin_parse(n->pin, n->cert_name) != 0)
			return perr(err, errlen, "%s.CertName: bad pin",
			    where);
		n->has_pin = true;
	}
	return 0;
}

static int
parse_region(struct mk_derpmap_region *r, const char *key, json_t *o,
    char *err, size_t errlen)
{
	char where[96];
	json_t *nodes, *v;
	long long id;
	size_t i;

	snprintf(where, sizeof(where), "Regions.%s", key);
	if (!json_is_object(o))
		return perr(err, errlen, "%s: not an object", where);
	if (get_int(o, "RegionID", 1, (1LL << 53) - 1, &id, where, err,
	    errlen) != 0)
		return -1;
	if (id == 0 || mk_strtonum(key, 1, (1LL << 53) - 1, &id) != 0 ||
	    id != json_integer_value(member(o, "RegionID")))
		return perr(err, errlen, "%s: RegionID missing or not the "
		    "key", where);
	if (id > INT32_MAX)
		return perr(err, errlen, "%s: RegionID too large", where);
	r->id = (int)id;
	if (get_str(o, "RegionCode", r->code, sizeof(r->code), where, err,
	    errlen) != 0 ||
	    get_str(o, "RegionName", r->name, sizeof(r->name), where, err,
	    errlen) != 0 ||
	    get_bool(o, "Avoid", &r->avoid, where, err, errlen) != 0 ||
	    get_bool(o, "NoMeasureNoHome", &r->no_measure_no_home, where, err,
	    errlen) != 0)
		return -1;
	/* a region without nodes can be neither dialled nor measured */
	nodes = member(o, "Nodes");
	if (nodes == NULL || json_is_null(nodes))
		return perr(err, errlen, "%s: no Nodes", where);
	if (!json_is_array(nodes))
		return perr(err, errlen, "%s.Nodes: not an array", where);
	if (json_array_size(nodes) == 0)
		return perr(err, errlen, "%s: no Nodes", where);
	r->nodes = calloc(json_array_size(nodes), sizeof(*r->nodes));
	if (r->nodes == NULL)
		return perr(err, errlen, "out of memory");
	json_array_foreach(nodes, i, v) {
		char nw[128];

		snprintf(nw, sizeof(nw), "%s.Nodes[%zu]", where, i);
		if (parse_node(&r->nodes[i], v, nw, err, errlen) != 0)
			return -1;
		if (r->nodes[i].region == 0)
			r->nodes[i].region = r->id;
		r->n_nodes++;
	}
	return 0;
}

static int
by_id(const void *a, const void *b)
{
	const struct mk_derpmap_region *x = a, *y = b;

	return (x->id > y->id) - (x->id < y->id);
}

int
mk_derpmap_parse(struct mk_derpmap *m, const char *json, size_t len,
    char *err, size_t errlen)
{
	json_error_t je;
	json_t *root, *regions, *v;
	const char *k;
	int rc = -1;

	memset(m, 0, sizeof(*m));
	if ((root = json_loadb(json, len, 0, &je)) == NULL)
		return perr(err, errlen, "not JSON: line %d: %s", je.line,
		    je.text);
	if (!json_is_object(root)) {
		perr(err, errlen, "not a JSON object");
		goto out;
	}
	regions = member(root, "Regions");
	if (regions == NULL || !json_is_object(regions)) {
		perr(err, errlen, "no Regions object");
		goto out;
	}
	if (json_object_size(regions) > 0 &&
	    (m->regions = calloc(json_object_size(regions),
	    sizeof(*m->regions))) == NULL) {
		perr(err, errlen, "out of memory");
		goto out;
	}
	json_object_foreach(regions, k, v) {
		if (json_is_null(v))
			continue;	/* a policy deleting a region */
		if (parse_region(&m->regions[m->n_regions], k, v, err,
		    errlen) != 0) {
			m->n_regions++;
			goto out;
		}
		m->n_regions++;
	}
	qsort(m->regions, m->n_regions, sizeof(*m->regions), by_id);
	rc = 0;
out:
	json_decref(root);
	if (rc != 0)
		mk_derpmap_free(m);
	return rc;
}

int
mk_derpmap_load(struct mk_derpmap *m, const char *path, char *err,
    size_t errlen)
{
	char *buf, e[200];
	ssize_t n;
	int fd, rc;

	memset(m, 0, sizeof(*m));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return perr(err, errlen, "%s: %s", path, strerror(errno));
	if ((buf = malloc(MK_DERPMAP_MAX_FILE + 1)) == NULL) {
		close(fd);
		return perr(err, errlen, "%s: out of memory", path);
	}
	n = mk_read_small(fd, buf, MK_DERPMAP_MAX_FILE + 1);
	close(fd);
	if (n < 0) {
		perr(err, errlen, "%s: %s", path, errno == EFBIG ?
		    "larger than 1 MiB" : strerror(errno));
		free(buf);
		return -1;
	}
	rc = mk_derpmap_parse(m, buf, (size_t)n, e, sizeof(e));
	free(buf);
	if (rc != 0)
		perr(err, errlen, "%s: %s", path, e);
	return rc;
}

void
mk_derpmap_free(struct mk_derpmap *m)
{
	size_t i;

	for (i = 0; i < m->n_regions; i++)
		free(m->regions[i].nodes);
	free(m->regions);
	memset(m, 0, sizeof(*m));
}

const struct mk_derpmap_region *
mk_derpmap_region(const struct mk_derpmap *m, int id)
{
	size_t i;

	for (i = 0; i < m->n_regions; i++)
		if (m->regions[i].id == id)
			return &m->regions[i];
	return NULL;
}

/* "IPv4"/"IPv6": an address to dial, "" for DNS, anything else for none. */
static int
node_addr(const char *s, int family, uint16_t port, struct mk_addr *out)
{
	uint8_t ip[16];

	memset(out, 0, sizeof(*out));
	if (s[0] == '\0')
		return 0;
	if (inet_pton(family, s, ip) != 1)
		return -1;
	if (family == AF_INET)
		mk_addr_from_v4(out, ip, port);
	else
		mk_addr_from_v6(out, ip, port);
	return 1;
}

size_t
mk_derpmap_targets(const struct mk_derpmap_region *r,
    struct mk_derpc_target *out, size_t cap)
{
	const struct mk_derpmap_node *n;
	struct mk_derpc_target *t;
	char url[300];
	const char *why;
	size_t i, k = 0;
	int a4, a6;
	uint16_t port;

	for (i = 0; i < r->n_nodes && k < cap; i++) {
		n = &r->nodes[i];
		if (n->stun_only)
			continue;
		port = n->derp_port ? (uint16_t)n->derp_port : 443;
		t = &out[k];
		memset(t, 0, sizeof(*t));
		memcpy(url, "https://", 8);
		mk_hostport_fmt(url + 8, sizeof(url) - 8, n->host, port);
		if (mk_url_parse(&t->url, url, MK_URL_RELAY, &why) != 0)
			continue;
		a4 = node_addr(n->ipv4, AF_INET, port, &t->dial);
		a6 = node_addr(n->ipv6, AF_INET6, port, &t->dial6);
		if (a4 < 0 && a6 < 0)
			continue;	/* both families disabled */
		/* numeric addresses need no lookup; with none, the lookup
		 * of HostName gives them (node_addr left dial empty) */
		if (t->dial.len == 0 && t->dial6.len != 0) {
			t->dial = t->dial6;
			memset(&t->dial6, 0, sizeof(t->dial6));
		}
		t->has_pin = n->has_pin;
		memcpy(t->pin, n->pin, sizeof(t->pin));
		t->insecure = n->insecure;
		k++;
	}
	return k;
}
