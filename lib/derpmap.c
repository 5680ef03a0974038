/* SPDX-License-Identifier: MIT */
#include "derpmap.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stun.h"

static int
fail(char *err, size_t errlen, const char *name, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (err != NULL && errlen > 0) {
		n = snprintf(err, errlen, "%s: ", name);
		if (n > 0 && (size_t)n < errlen) {
			va_start(ap, fmt);
			vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
			va_end(ap);
		}
	}
	errno = EINVAL;
	return -1;
}

/* Copy an optional string member; a non-string or an overlong one is an
 * error (returns -1), absent is "". */
static int
get_str(json_t *obj, const char *key, char *out, size_t outlen)
{
	json_t *v = json_object_get(obj, key);
	const char *s;

	out[0] = '\0';
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return -1;
	s = json_string_value(v);
	/* jansson allows embedded NULs; a C string must not have them */
	if (json_string_length(v) >= outlen ||
	    memchr(s, '\0', json_string_length(v)) != NULL)
		return -1;
	strcpy(out, s);
	return 0;
}

static int
get_int(json_t *obj, const char *key, long long min, long long max, int *out)
{
	json_t *v = json_object_get(obj, key);
	json_int_t i;

	*out = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_integer(v))
		return -1;
	i = json_integer_value(v);
	if (i < min || i > max)
		return -1;
	*out = (int)i;
	return 0;
}

static int
get_bool(json_t *obj, const char *key, bool *out)
{
	json_t *v = json_object_get(obj, key);

	*out = false;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return -1;
	*out = json_is_true(v);
	return 0;
}

static int
parse_node(struct mk_derp_node *n, json_t *o, int region_id, const char *name,
    char *err, size_t errlen)
{
	int rid;

	if (!json_is_object(o))
		return fail(err, errlen, name, "region %d: a node is not an "
		    "object", region_id);
	if (get_str(o, "Name", n->name, sizeof(n->name)) ||
	    get_str(o, "HostName", n->host, sizeof(n->host)) ||
	    get_str(o, "CertName", n->cert_name, sizeof(n->cert_name)) ||
	    get_str(o, "IPv4", n->ipv4, sizeof(n->ipv4)) ||
	    get_str(o, "IPv6", n->ipv6, sizeof(n->ipv6)))
		return fail(err, errlen, name, "region %d: a node has a bad "
		    "string field", region_id);
	if (get_int(o, "RegionID", 0, INT32_MAX, &rid) ||
	    get_int(o, "STUNPort", -1, 65535, &n->stun_port) ||
	    get_int(o, "DERPPort", 0, 65535, &n->derp_port) ||
	    get_bool(o, "STUNOnly", &n->stun_only) ||
	    get_bool(o, "InsecureForTests", &n->insecure_for_tests))
		return fail(err, errlen, name, "region %d: node %s has a bad "
		    "number or flag", region_id, n->name);
	if (rid != 0 && rid != region_id)
		return fail(err, errlen, name, "region %d: node %s claims "
		    "region %d", region_id, n->name, rid);
	if (n->host[0] == '\0' && n->ipv4[0] == '\0' && n->ipv6[0] == '\0')
		return fail(err, errlen, name, "region %d: node %s has no "
		    "HostName, IPv4 or IPv6", region_id, n->name);
	n->region_id = region_id;
	return 0;
}

static int
parse_region(struct mk_derp_region *r, const char *key, json_t *o,
    const char *name, char *err, size_t errlen)
{
	json_t *nodes, *nv;
	size_t i;
	char *end;
	long kid;

	errno = 0;
	kid = strtol(key, &end, 10);
	if (*key == '\0' || *end != '\0' || kid <= 0 || kid > INT32_MAX ||
	    errno != 0)
		return fail(err, errlen, name, "region key \"%.32s\" is not a "
		    "positive number", key);
	if (!json_is_object(o))
		return fail(err, errlen, name, "region %ld is not an object",
		    kid);
	if (get_int(o, "RegionID", 1, INT32_MAX, &r->id) || r->id == 0)
		return fail(err, errlen, name, "region %ld: missing or bad "
		    "RegionID", kid);
	if (r->id != kid)
		return fail(err, errlen, name, "region key %ld holds RegionID "
		    "%d", kid, r->id);
	if (get_str(o, "RegionCode", r->code, sizeof(r->code)) ||
	    get_str(o, "RegionName", r->name, sizeof(r->name)) ||
	    get_bool(o, "Avoid", &r->avoid) ||
	    get_bool(o, "NoMeasureNoHome", &r->no_measure_no_home))
		return fail(err, errlen, name, "region %d: bad RegionCode, "
		    "RegionName or flag", r->id);
	nodes = json_object_get(o, "Nodes");
	if (!json_is_array(nodes) || json_array_size(nodes) == 0)
		return fail(err, errlen, name, "region %d has no Nodes", r->id);
	r->nodes = calloc(json_array_size(nodes), sizeof(*r->nodes));
	if (r->nodes == NULL)
		return fail(err, errlen, name, "out of memory");
	json_array_foreach(nodes, i, nv) {
		if (parse_node(&r->nodes[i], nv, r->id, name, err, errlen))
			return -1;
		r->n_nodes = i + 1;
	}
	return 0;
}

static int
by_id(const void *a, const void *b)
{
	const struct mk_derp_region *x = a, *y = b;

	return (x->id > y->id) - (x->id < y->id);
}

int
mk_derpmap_parse(struct mk_derp_map *m, const char *text, size_t len,
    const char *name, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root, *regions, *rv;
	const char *key;
	size_t n = 0;

	memset(m, 0, sizeof(*m));
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL)
		return fail(err, errlen, name, "not JSON: line %d: %s",
		    je.line, je.text);
	regions = json_object_get(root, "Regions");
	if (!json_is_object(root) || !json_is_object(regions)) {
		json_decref(root);
		return fail(err, errlen, name, "no \"Regions\" object");
	}
	m->regions = calloc(json_object_size(regions) + 1, sizeof(*m->regions));
	if (m->regions == NULL) {
		json_decref(root);
		return fail(err, errlen, name, "out of memory");
	}
	json_object_foreach(regions, key, rv) {
		if (json_is_null(rv))
			continue;
		m->n_regions = n + 1;
		if (parse_region(&m->regions[n], key, rv, name, err,
		    errlen) != 0) {
			json_decref(root);
			mk_derpmap_free(m);
			return -1;
		}
		n++;
	}
	json_decref(root);
	qsort(m->regions, m->n_regions, sizeof(*m->regions), by_id);
	return 0;
}

int
mk_derpmap_load(struct mk_derp_map *m, const char *path, char *err,
    size_t errlen)
{
	char *buf;
	size_t len = 0;
	ssize_t r;
	int fd, rc;

	memset(m, 0, sizeof(*m));
	fd = strcmp(path, "-") == 0 ? STDIN_FILENO :
	    open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	buf = malloc(MK_DERPMAP_MAX_LEN + 1);
	if (buf == NULL) {
		if (fd != STDIN_FILENO)
			close(fd);
		snprintf(err, errlen, "%s: out of memory", path);
		errno = ENOMEM;
		return -1;
	}
	for (;;) {
		r = read(fd, buf + len, MK_DERPMAP_MAX_LEN + 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
		if (len > MK_DERPMAP_MAX_LEN)
			break;
	}
	if (fd != STDIN_FILENO)
		close(fd);
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		rc = -1;
	} else if (len > MK_DERPMAP_MAX_LEN) {
		snprintf(err, errlen, "%s: larger than 1 MiB", path);
		errno = EFBIG;
		rc = -1;
	} else
		rc = mk_derpmap_parse(m, buf, len, path, err, errlen);
	free(buf);
	return rc;
}

void
mk_derpmap_free(struct mk_derp_map *m)
{
	size_t i;

	if (m->regions != NULL) {
		for (i = 0; i < m->n_regions; i++)
			free(m->regions[i].nodes);
		free(m->regions);
	}
	memset(m, 0, sizeof(*m));
}

const struct mk_derp_region *
mk_derpmap_region(const struct mk_derp_map *m, int id)
{
	size_t i;

	for (i = 0; i < m->n_regions; i++) {
		if (m->regions[i].id == id)
			return &m->regions[i];
	}
	return NULL;
}

uint16_t
mk_derp_node_stun_port(const struct mk_derp_node *n)
{
	if (n->stun_port < 0)
		return 0;
	return n->stun_port == 0 ? MK_STUN_PORT : (uint16_t)n->stun_port;
}
