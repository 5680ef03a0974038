/* SPDX-License-Identifier: MIT */
#include "dnstab.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hosts.h"
#include "meshconf.h"

/* Never more records than a uint32_t index + 1 can name. */
#define MAX_RECS	(1U << 24)

static uint64_t
hash_bytes(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h ^ (h >> 29);
}

static size_t
ip_len(const struct mk_dnstab_ip *ip)
{
	return ip->family == AF_INET ? 4 : 16;
}

static bool
ip_equal(const struct mk_dnstab_ip *a, const struct mk_dnstab_ip *b)
{
	return a->family == b->family && memcmp(a->b, b->b, ip_len(a)) == 0;
}

static uint64_t
ip_hash(const struct mk_dnstab_ip *ip)
{
	return hash_bytes(ip->b, ip_len(ip)) ^ ip->family;
}

void
mk_dnstab_init(struct mk_dnstab *t, uint32_t serial)
{
	memset(t, 0, sizeof(*t));
	t->serial = serial;
}

void
mk_dnstab_free(struct mk_dnstab *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n_recs; i++) {
		free(t->recs[i].name);
		free(t->recs[i].ip);
	}
	free(t->recs);
	free(t->rev);
	free(t->hname);
	free(t->haddr);
	memset(t, 0, sizeof(*t));
}

int
mk_dnstab_set_domain(struct mk_dnstab *t, const char *domain,
    const char **why)
{
	size_t len = strlen(domain), i;

	if (!mk_hosts_valid_name(domain)) {
		*why = "bad domain name";
		return -1;
	}
	if (domain[len - 1] == '.')
		len--;
	for (i = 0; i < len; i++)
		t->domain[i] = (char)(domain[i] >= 'A' && domain[i] <= 'Z' ?
		    domain[i] - 'A' + 'a' : domain[i]);
	t->domain[len] = '\0';
	t->domain_len = len;
	return 0;
}

const struct mk_dnstab_rec *
mk_dnstab_find(const struct mk_dnstab *t, const char *name, size_t len)
{
	size_t i, mask;
	uint32_t s;

	if (t->hname_cap == 0)
		return NULL;
	mask = t->hname_cap - 1;
	for (i = hash_bytes(name, len) & mask; (s = t->hname[i]) != 0;
	    i = (i + 1) & mask) {
		const char *n = t->recs[s - 1].name;

		if (strncmp(n, name, len) == 0 && n[len] == '\0')
			return &t->recs[s - 1];
	}
	return NULL;
}

const struct mk_dnstab_rec *
mk_dnstab_find_ip(const struct mk_dnstab *t, int family, const uint8_t *b)
{
	struct mk_dnstab_ip ip;
	size_t i, mask;
	uint32_t s;

	if (t->haddr_cap == 0 || (family != AF_INET && family != AF_INET6))
		return NULL;
	memset(&ip, 0, sizeof(ip));
	ip.family = (uint8_t)family;
	memcpy(ip.b, b, family == AF_INET ? 4 : 16);
	mask = t->haddr_cap - 1;
	for (i = ip_hash(&ip) & mask; (s = t->haddr[i]) != 0;
	    i = (i + 1) & mask) {
		if (ip_equal(&t->rev[s - 1].ip, &ip))
			return &t->recs[t->rev[s - 1].rec];
	}
	return NULL;
}

/* Rebuild a hash index at twice the size once it is half full. */
static int
grow_names(struct mk_dnstab *t)
{
	size_t cap, i, j, mask;
	uint32_t *h;

	if (t->hname_cap != 0 && (t->n_recs + 1) * 2 <= t->hname_cap)
		return 0;
	cap = t->hname_cap ? t->hname_cap * 2 : 64;
	if ((h = calloc(cap, sizeof(*h))) == NULL)
		return -1;
	mask = cap - 1;
	for (i = 0; i < t->n_recs; i++) {
		const char *n = t->recs[i].name;

		for (j = hash_bytes(n, strlen(n)) & mask; h[j] != 0;
		    j = (j + 1) & mask)
			;
		h[j] = (uint32_t)i + 1;
	}
	free(t->hname);
	t->hname = h;
	t->hname_cap = cap;
	return 0;
}

static int
grow_addrs(struct mk_dnstab *t)
{
	size_t cap, i, j, mask;
	uint32_t *h;

	if (t->haddr_cap != 0 && (t->n_rev + 1) * 2 <= t->haddr_cap)
		return 0;
	cap = t->haddr_cap ? t->haddr_cap * 2 : 64;
	if ((h = calloc(cap, sizeof(*h))) == NULL)
		return -1;
	mask = cap - 1;
	for (i = 0; i < t->n_rev; i++) {
		for (j = ip_hash(&t->rev[i].ip) & mask; h[j] != 0;
		    j = (j + 1) & mask)
			;
		h[j] = (uint32_t)i + 1;
	}
	free(t->haddr);
	t->haddr = h;
	t->haddr_cap = cap;
	return 0;
}

static struct mk_dnstab_rec *
new_rec(struct mk_dnstab *t, const char *name)
{
	struct mk_dnstab_rec *r, *nr;
	size_t cap, j, mask;

	if (t->n_recs == MAX_RECS || grow_names(t) != 0)
		return NULL;
	if (t->n_recs == t->cap_recs) {
		cap = t->cap_recs ? t->cap_recs * 2 : 64;
		if ((nr = realloc(t->recs, cap * sizeof(*nr))) == NULL)
			return NULL;
		t->recs = nr;
		t->cap_recs = cap;
	}
	r = &t->recs[t->n_recs];
	memset(r, 0, sizeof(*r));
	if ((r->name = strdup(name)) == NULL)
		return NULL;
	mask = t->hname_cap - 1;
	for (j = hash_bytes(name, strlen(name)) & mask; t->hname[j] != 0;
	    j = (j + 1) & mask)
		;
	t->hname[j] = (uint32_t)++t->n_recs;
	return r;
}

/* Remember the first record holding ip, for PTR. */
static int
add_rev(struct mk_dnstab *t, const struct mk_dnstab_ip *ip, uint32_t rec)
{
	struct mk_dnstab_rev *nr;
	size_t cap, j, mask;

	if (mk_dnstab_find_ip(t, ip->family, ip->b) != NULL)
		return 0;
	if (grow_addrs(t) != 0)
		return -1;
	if (t->n_rev == t->cap_rev) {
		cap = t->cap_rev ? t->cap_rev * 2 : 64;
		if ((nr = realloc(t->rev, cap * sizeof(*nr))) == NULL)
			return -1;
		t->rev = nr;
		t->cap_rev = cap;
	}
	t->rev[t->n_rev].ip = *ip;
	t->rev[t->n_rev].rec = rec;
	mask = t->haddr_cap - 1;
	for (j = ip_hash(ip) & mask; t->haddr[j] != 0; j = (j + 1) & mask)
		;
	t->haddr[j] = (uint32_t)++t->n_rev;
	return 0;
}

/* name as stored: lowercase, no trailing dot, one label gets the domain. */
static int
full_name(const struct mk_dnstab *t, const char *name, char *out,
    size_t cap)
{
	size_t len = strlen(name), i;

	if (!mk_hosts_valid_name(name))
		return -1;
	if (name[len - 1] == '.')
		len--;
	if (memchr(name, '.', len) == NULL && t->domain_len > 0) {
		if (len + 1 + t->domain_len >= cap ||
		    len + 1 + t->domain_len > MK_DNSTAB_NAME_MAX)
			return -1;
		out[len] = '.';
		memcpy(out + len + 1, t->domain, t->domain_len + 1);
	} else
		out[len] = '\0';
	for (i = 0; i < len; i++)
		out[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ?
		    name[i] - 'A' + 'a' : name[i]);
	return 0;
}

int
mk_dnstab_add(struct mk_dnstab *t, const char *name, const struct mk_addr *a,
    const char **why)
{
	char fq[MK_DNSTAB_NAME_MAX + 2];
	struct mk_dnstab_rec *r;
	struct mk_dnstab_ip ip, *nip;
	size_t i, cap;

	memset(&ip, 0, sizeof(ip));
	if (mk_addr_family(a) == AF_INET) {
		ip.family = AF_INET;
		memcpy(ip.b, &a->sin.sin_addr, 4);
	} else if (mk_addr_family(a) == AF_INET6) {
		ip.family = AF_INET6;
		memcpy(ip.b, &a->sin6.sin6_addr, 16);
	} else {
		*why = "not an IP address";
		return -1;
	}
	if (full_name(t, name, fq, sizeof(fq)) != 0) {
		*why = "bad name";
		return -1;
	}
	r = (struct mk_dnstab_rec *)mk_dnstab_find(t, fq, strlen(fq));
	if (r == NULL && (r = new_rec(t, fq)) == NULL)
		goto nomem;
	for (i = 0; i < r->n_ip; i++)
		if (ip_equal(&r->ip[i], &ip))
			return 0;
	if (r->n_ip == MK_DNSTAB_MAX_IPS) {
		*why = "too many addresses for one name";
		return -1;
	}
	if (r->n_ip == r->cap_ip) {
		cap = r->cap_ip ? r->cap_ip * 2 : 2;
		if ((nip = realloc(r->ip, cap * sizeof(*nip))) == NULL)
			goto nomem;
		r->ip = nip;
		r->cap_ip = cap;
	}
	r->ip[r->n_ip++] = ip;
	if (add_rev(t, &ip, (uint32_t)(r - t->recs)) != 0)
		goto nomem;
	return 0;
nomem:
	*why = "out of memory";
	errno = ENOMEM;
	return -1;
}

int
mk_dnstab_add_mesh(struct mk_dnstab *t, const struct mk_mesh *m,
    const char **why)
{
	size_t i, j;

	for (i = 0; i < m->n_nodes; i++) {
		for (j = 0; j < m->nodes[i].n_addrs; j++) {
			if (mk_dnstab_add(t, m->nodes[i].name,
			    &m->nodes[i].addrs[j], why) != 0)
				return -1;
		}
	}
	return 0;
}

int
mk_dnstab_add_hosts(struct mk_dnstab *t, const struct mk_hosts *h,
    unsigned *line, const char **why)
{
	size_t i;

	for (i = 0; i < h->n; i++) {
		if (mk_dnstab_add(t, h->e[i].name, &h->e[i].addr, why) != 0) {
			*line = h->e[i].line;
			return -1;
		}
	}
	return 0;
}
