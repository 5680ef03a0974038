/* SPDX-License-Identifier: MIT */
#include "dnsacl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define MILLION	1000000ULL

static void
addr_bytes(const struct mk_addr *a, uint8_t *family, uint8_t b[16])
{
	memset(b, 0, 16);
	*family = (uint8_t)mk_addr_family(a);
	if (*family == AF_INET)
		memcpy(b, &a->sin.sin_addr, 4);
	else if (*family == AF_INET6)
		memcpy(b, &a->sin6.sin6_addr, 16);
}

int
mk_cidr_parse(struct mk_cidr *c, const char *s, const char **why)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash;
	long long bits;
	unsigned max, i;

	memset(c, 0, sizeof(*c));
	if (strlen(s) >= sizeof(buf)) {
		*why = "malformed prefix";
		return -1;
	}
	strcpy(buf, s);
	if ((slash = strchr(buf, '/')) != NULL)
		*slash++ = '\0';
	if (inet_pton(AF_INET, buf, c->b) == 1) {
		c->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, c->b) == 1) {
		c->family = AF_INET6;
		max = 128;
	} else {
		*why = "not an IP address";
		return -1;
	}
	bits = max;
	if (slash != NULL && mk_strtonum(slash, 0, max, &bits) != 0) {
		*why = "bad prefix length";
		return -1;
	}
	c->bits = (uint8_t)bits;
	for (i = c->bits; i < max; i++) {
		if (c->b[i / 8] & (0x80 >> (i % 8))) {
			*why = "address bits set past the prefix length";
			return -1;
		}
	}
	return 0;
}

bool
mk_cidr_contains(const struct mk_cidr *c, const struct mk_addr *a)
{
	uint8_t fam, b[16];
	unsigned full, rest;

	addr_bytes(a, &fam, b);
	if (fam != c->family)
		return false;
	full = c->bits / 8;
	rest = c->bits % 8;
	if (memcmp(b, c->b, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((b[full] ^ c->b[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

void
mk_dnsacl_init(struct mk_dnsacl *acl)
{
	memset(acl, 0, sizeof(*acl));
}

void
mk_dnsacl_free(struct mk_dnsacl *acl)
{
	free(acl->nets);
	free(acl->local);
	memset(acl, 0, sizeof(*acl));
}

int
mk_dnsacl_allow(struct mk_dnsacl *acl, const char *cidr, const char **why)
{
	struct mk_cidr c, *nn;
	size_t cap;

	if (mk_cidr_parse(&c, cidr, why) != 0)
		return -1;
	if (acl->n_nets == acl->cap_nets) {
		cap = acl->cap_nets ? acl->cap_nets * 2 : 8;
		if ((nn = realloc(acl->nets, cap * sizeof(*nn))) == NULL) {
			*why = "out of memory";
			return -1;
		}
		acl->nets = nn;
		acl->cap_nets = cap;
	}
	acl->nets[acl->n_nets++] = c;
	return 0;
}

int
mk_dnsacl_allow_defaults(struct mk_dnsacl *acl)
{
	static const char *const def[] = {
		"127.0.0.0/8", "::1/128", "100.64.0.0/10",
		"fd7a:115c:a1e0::/48",
	};
	const char *why;
	size_t i;

	for (i = 0; i < MK_ARRAY_LEN(def); i++)
		if (mk_dnsacl_allow(acl, def[i], &why) != 0)
			return -1;
	return 0;
}

int
mk_dnsacl_refresh_local(struct mk_dnsacl *acl)
{
	struct ifaddrs *ifa, *i;
	struct mk_cidr *l;
	struct mk_addr a;
	size_t n = 0;

	if (getifaddrs(&ifa) != 0)
		return -1;
	for (i = ifa; i != NULL; i = i->ifa_next)
		n++;
	if ((l = calloc(n + 1, sizeof(*l))) == NULL) {
		freeifaddrs(ifa);
		errno = ENOMEM;
		return -1;
	}
	n = 0;
	for (i = ifa; i != NULL; i = i->ifa_next) {
		if (i->ifa_addr == NULL || (i->ifa_addr->sa_family != AF_INET &&
		    i->ifa_addr->sa_family != AF_INET6))
			continue;
		mk_addr_from_sa(&a, i->ifa_addr,
		    i->ifa_addr->sa_family == AF_INET ?
		    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
		addr_bytes(&a, &l[n].family, l[n].b);
		l[n].bits = l[n].family == AF_INET ? 32 : 128;
		n++;
	}
	freeifaddrs(ifa);
	free(acl->local);
	acl->local = l;
	acl->n_local = n;
	return 0;
}

bool
mk_dnsacl_allowed(const struct mk_dnsacl *acl, const struct mk_addr *a)
{
	size_t i;

	for (i = 0; i < acl->n_nets; i++)
		if (mk_cidr_contains(&acl->nets[i], a))
			return true;
	for (i = 0; i < acl->n_local; i++)
		if (mk_cidr_contains(&acl->local[i], a))
			return true;
	return false;
}

bool
mk_dnsacl_is_local(const struct mk_dnsacl *acl, const struct mk_addr *a)
{
	size_t i;

	if (mk_addr_family(a) == AF_INET &&
	    (ntohl(a->sin.sin_addr.s_addr) >> 24) == 127)
		return true;
	if (mk_addr_family(a) == AF_INET6 &&
	    IN6_IS_ADDR_LOOPBACK(&a->sin6.sin6_addr))
		return true;
	for (i = 0; i < acl->n_local; i++)
		if (mk_cidr_contains(&acl->local[i], a))
			return true;
	return false;
}

int
mk_ratelim_init(struct mk_ratelim *rl, size_t slots, uint64_t rate,
    uint64_t burst)
{
	size_t n = 1;

	memset(rl, 0, sizeof(*rl));
	rl->rate = rate;
	rl->burst = burst < 1 ? 1 : burst;
	if (rate == 0)
		return 0;
	while (n < slots)
		n *= 2;
	if ((rl->slot = calloc(n, sizeof(*rl->slot))) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	rl->n = n;
	return 0;
}

void
mk_ratelim_free(struct mk_ratelim *rl)
{
	free(rl->slot);
	memset(rl, 0, sizeof(*rl));
}

bool
mk_ratelim_take(struct mk_ratelim *rl, const struct mk_addr *a,
    uint64_t now_us)
{
	struct mk_ratelim_slot *s;
	uint8_t key[17];
	uint64_t h = 0xcbf29ce484222325ULL, full, dt;
	size_t i;

	if (rl->rate == 0)
		return true;
	addr_bytes(a, &key[0], key + 1);
	for (i = 0; i < sizeof(key); i++) {
		h ^= key[i];
		h *= 0x100000001b3ULL;
	}
	s = &rl->slot[(h ^ (h >> 32)) & (rl->n - 1)];
	full = rl->burst * MILLION;
	dt = now_us > s->last_us ? now_us - s->last_us : 0;
	/* Refill; a full bucket means the slot's owner is idle. */
	if (s->last_us == 0 || dt >= full / rl->rate ||
	    s->tokens_us + dt * rl->rate >= full)
		s->tokens_us = full;
	else
		s->tokens_us += dt * rl->rate;
	s->last_us = now_us;
	if (memcmp(s->key, key, sizeof(key)) != 0 && s->tokens_us == full)
		memcpy(s->key, key, sizeof(key));
	if (s->tokens_us < MILLION)
		return false;
	s->tokens_us -= MILLION;
	return true;
}
