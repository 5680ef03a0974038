/* SPDX-License-Identifier: MIT */
#include "meshconf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "util.h"

#define MAX_FIELDS	16
#define ADDR_KEYLEN	17	/* family byte and 16 address bytes */

/*
 * Open-addressing sets of node ids, so duplicate checks and look-ups stay
 * linear in the file even at MK_MESH_MAX_NODES. A slot holds id + 1.
 */
struct htab {
	uint32_t	*slot;
	size_t		 cap;
	size_t		 n;
};

enum hkind {
	H_NAME,
	H_KEY,
	H_ADDR,		/* id: node * MK_MESH_MAX_ADDRS + address */
	H_COUNT
};

struct mk_mesh_index {
	struct htab	t[H_COUNT];
};

struct parser {
	struct mk_mesh	*m;
	const char	*name;
	unsigned	 line;
	char		*err;
	size_t		 errlen;
	size_t		 cap_relays;
	size_t		 cap_stun;
	size_t		 cap_nodes;
	bool		 nomem;
};

static int
perr(struct parser *p, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->err == NULL || p->errlen == 0)
		return -1;
	n = snprintf(p->err, p->errlen, "%s:%u: ", p->name, p->line);
	if (n >= 0 && (size_t)n < p->errlen) {
		va_start(ap, fmt);
		vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int
nomem(struct parser *p)
{
	p->nomem = true;
	return perr(p, "out of memory");
}

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static bool
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int
to_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static bool
all_digits(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (!is_digit((unsigned char)*s))
			return false;
	return true;
}

/* A decimal number in [min, max], digits only (no sign, no blanks). */
static int
parse_uint(const char *s, long long min, long long max, long long *out)
{
	if (!all_digits(s) || strlen(s) > 10)
		return -1;
	return mk_strtonum(s, min, max, out);
}

/* RFC 1123 label: letters, digits, hyphen; not at either end. */
static bool
is_label(const char *s, size_t len, bool lower_only)
{
	size_t i;
	int c;

	if (len == 0 || len > 63 || s[0] == '-' || s[len - 1] == '-')
		return false;
	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if ((c >= 'a' && c <= 'z') || is_digit(c) || c == '-')
			continue;
		if (!lower_only && c >= 'A' && c <= 'Z')
			continue;
		return false;
	}
	return true;
}

/*
 * A DNS name of labels, at most 253 characters without the one trailing
 * dot allowed. The last label must not be all digits, so a mistyped IPv4
 * address ("10.0.0.256") is never taken for a name.
 */
static bool
is_dns_name(const char *s)
{
	size_t len = strlen(s), i, start = 0;

	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0 || len > MK_MESH_DOMAIN_MAX)
		return false;
	for (i = 0; i <= len; i++) {
		if (i < len && s[i] != '.')
			continue;
		if (!is_label(s + start, i - start, false))
			return false;
		if (i == len) {
			size_t j;

			for (j = start; j < len; j++)
				if (!is_digit((unsigned char)s[j]))
					return true;
			return false;
		}
		start = i + 1;
	}
	return false;
}

/* 0 for a numeric host (addr filled), 1 for a host name, -1 otherwise. */
static int
check_host(const char *host, struct mk_addr *addr)
{
	uint8_t ip[16];

	memset(addr, 0, sizeof(*addr));
	if (inet_pton(AF_INET, host, ip) == 1) {
		mk_addr_from_v4(addr, ip, 0);
		return mk_addr_is_any(addr) ? -1 : 0;
	}
	if (strchr(host, ':') != NULL) {
		if (inet_pton(AF_INET6, host, ip) != 1)
			return -1;
		mk_addr_from_v6(addr, ip, 0);
		return mk_addr_is_any(addr) ? -1 : 0;
	}
	return is_dns_name(host) ? 1 : -1;
}

/* --- hash sets ---------------------------------------------------------- */

static void
addr_key(const struct mk_addr *a, uint8_t out[ADDR_KEYLEN])
{
	memset(out, 0, ADDR_KEYLEN);
	if (mk_addr_family(a) == AF_INET) {
		out[0] = 4;
		memcpy(out + 1, &a->sin.sin_addr, 4);
	} else if (mk_addr_family(a) == AF_INET6) {
		out[0] = 6;
		memcpy(out + 1, &a->sin6.sin6_addr, 16);
	}
}

static const uint8_t *
entry_bytes(const struct mk_mesh *m, enum hkind kind, uint32_t id,
    uint8_t buf[ADDR_KEYLEN], size_t *len)
{
	const struct mk_mesh_node *n;

	switch (kind) {
	case H_NAME:
		n = &m->nodes[id];
		*len = strlen(n->name);
		return (const uint8_t *)n->name;
	case H_KEY:
		*len = MK_KEY_LEN;
		return m->nodes[id].pubkey.b;
	default:
		n = &m->nodes[id / MK_MESH_MAX_ADDRS];
		addr_key(&n->addrs[id % MK_MESH_MAX_ADDRS], buf);
		*len = ADDR_KEYLEN;
		return buf;
	}
}

static uint64_t
hash_bytes(const uint8_t *b, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h ^ (h >> 29);
}

/* The id stored under these bytes, or -1. */
static long
htab_find(const struct mk_mesh *m, enum hkind kind, const uint8_t *k,
    size_t klen)
{
	const struct htab *t = &m->idx->t[kind];
	uint8_t buf[ADDR_KEYLEN];
	const uint8_t *e;
	size_t i, elen;

	if (t->cap == 0)
		return -1;
	for (i = hash_bytes(k, klen) & (t->cap - 1); t->slot[i] != 0;
	    i = (i + 1) & (t->cap - 1)) {
		e = entry_bytes(m, kind, t->slot[i] - 1, buf, &elen);
		if (elen == klen && memcmp(e, k, klen) == 0)
			return (long)t->slot[i] - 1;
	}
	return -1;
}

static void
htab_put(const struct mk_mesh *m, enum hkind kind, uint32_t *slot,
    size_t cap, uint32_t id)
{
	uint8_t buf[ADDR_KEYLEN];
	const uint8_t *e;
	size_t i, elen;

	e = entry_bytes(m, kind, id, buf, &elen);
	for (i = hash_bytes(e, elen) & (cap - 1); slot[i] != 0;
	    i = (i + 1) & (cap - 1))
		;
	slot[i] = id + 1;
}

static int
htab_insert(struct mk_mesh *m, enum hkind kind, uint32_t id)
{
	struct htab *t = &m->idx->t[kind];
	uint32_t *ns;
	size_t i, ncap;

	if ((t->n + 1) * 2 > t->cap) {
		ncap = t->cap ? t->cap * 2 : 64;
		if ((ns = calloc(ncap, sizeof(*ns))) == NULL)
			return -1;
		for (i = 0; i < t->cap; i++)
			if (t->slot[i] != 0)
				htab_put(m, kind, ns, ncap, t->slot[i] - 1);
		free(t->slot);
		t->slot = ns;
		t->cap = ncap;
	}
	htab_put(m, kind, t->slot, t->cap, id);
	t->n++;
	return 0;
}

/* --- growing arrays ----------------------------------------------------- */

static void *
grow(void *arr, size_t *cap, size_t n, size_t size)
{
	void *na;
	size_t ncap;

	if (n < *cap)
		return arr;
	ncap = *cap ? *cap * 2 : 8;
	if ((na = reallocarray(arr, ncap, size)) == NULL)
		return NULL;
	*cap = ncap;
	return na;
}

/* --- keywords ----------------------------------------------------------- */

static int
kw_domain(struct parser *p, char **a, size_t n)
{
	struct mk_mesh *m = p->m;
	size_t i, len;

	if (n != 1)
		return perr(p, "domain takes one name");
	if (m->domain_line != 0)
		return perr(p, "domain given twice (first on line %u)",
		    m->domain_line);
	if (!is_dns_name(a[0]))
		return perr(p, "domain %s: not a valid DNS name", a[0]);
	len = strlen(a[0]);
	if (a[0][len - 1] == '.')
		len--;
	for (i = 0; i < len; i++)
		m->domain[i] = (char)to_lower((unsigned char)a[0][i]);
	m->domain[len] = '\0';
	m->domain_line = p->line;
	return 0;
}

/* Port text of a URL or HOST:PORT: digits, 1..65535. */
static int
parse_port(const char *s, uint16_t *out)
{
	long long v;

	if (parse_uint(s, 1, 65535, &v) != 0)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

/*
 * host and port of "HOST", "HOST:PORT", "[V6]", "[V6]:PORT"; port 0 when
 * absent. Brackets only around IPv6; a bare IPv6 address (no port) only
 * when bare_v6 is allowed.
 */
static int
split_hostport(const char *s, bool bare_v6, char *host, size_t hostlen,
    struct mk_addr *addr, uint16_t *port, bool *numeric, const char **why)
{
	char ptext[16];
	int kind;

	if (mk_addr_split(s, host, hostlen, ptext, sizeof(ptext)) != 0) {
		*why = "malformed host or port";
		return -1;
	}
	kind = check_host(host, addr);
	if (kind < 0) {
		*why = "host is not a numeric address or a host name";
		return -1;
	}
	if (s[0] == '[' && (kind != 0 || mk_addr_family(addr) != AF_INET6)) {
		*why = "brackets are only for IPv6 addresses";
		return -1;
	}
	if (s[0] != '[' && kind == 0 && mk_addr_family(addr) == AF_INET6 &&
	    !bare_v6) {
		*why = "an IPv6 address needs brackets";
		return -1;
	}
	*port = 0;
	if (ptext[0] != '\0' && parse_port(ptext, port) != 0) {
		*why = "bad port";
		return -1;
	}
	*numeric = kind == 0;
	return 0;
}

static int
parse_url(struct mk_mesh_relay *r, const char *s, const char **why)
{
	char auth[300];
	const char *rest, *slash;
	struct mk_addr addr;
	uint16_t port;
	bool numeric, v6;
	size_t i, alen;

	if (strncasecmp(s, "https://", 8) == 0) {
		r->tls = true;
		rest = s + 8;
	} else if (strncasecmp(s, "http://", 7) == 0) {
		rest = s + 7;
	} else {
		*why = "scheme must be https:// or http://";
		return -1;
	}
	slash = strchr(rest, '/');
	alen = slash ? (size_t)(slash - rest) : strlen(rest);
	if (slash != NULL && strcmp(slash, "/") != 0 &&
	    strcmp(slash, "/derp") != 0) {
		*why = "path must be empty or /derp";
		return -1;
	}
	if (alen == 0) {
		*why = "missing host";
		return -1;
	}
	if (alen >= sizeof(auth)) {
		*why = "host is too long";
		return -1;
	}
	memcpy(auth, rest, alen);
	auth[alen] = '\0';
	if (split_hostport(auth, false, r->host, sizeof(r->host), &addr,
	    &port, &numeric, why) != 0)
		return -1;
	if (port == 0 && !r->tls) {
		*why = "plain http needs a port";
		return -1;
	}
	r->port = port ? port : 443;
	if (numeric)
		mk_addr_fmt_ip(&addr, r->host, sizeof(r->host));
	else
		for (i = 0; r->host[i] != '\0'; i++)
			r->host[i] = (char)to_lower((unsigned char)r->host[i]);
	v6 = numeric && mk_addr_family(&addr) == AF_INET6;
	if (r->tls && r->port == 443)
		snprintf(r->url, sizeof(r->url), "https://%s%s%s/derp",
		    v6 ? "[" : "", r->host, v6 ? "]" : "");
	else
		snprintf(r->url, sizeof(r->url), "%s://%s%s%s:%u/derp",
		    r->tls ? "https" : "http", v6 ? "[" : "", r->host,
		    v6 ? "]" : "", r->port);
	return 0;
}

static int
kw_relay(struct parser *p, char **a, size_t n)
{
	struct mk_mesh *m = p->m;
	struct mk_mesh_relay r, *nr;
	const char *why;
	size_t i;

	if (n < 1 || n > 2)
		return perr(p, "relay takes a URL and an optional pin");
	if (m->n_relays == MK_MESH_MAX_RELAYS)
		return perr(p, "more than %d relays", MK_MESH_MAX_RELAYS);
	memset(&r, 0, sizeof(r));
	r.line = p->line;
	if (parse_url(&r, a[0], &why) != 0)
		return perr(p, "relay %s: %s", a[0], why);
	if (n == 2) {
		if (!r.tls)
			return perr(p, "relay %s: a pin needs https", a[0]);
		if (strncmp(a[1], "sha256-raw:", 11) != 0 ||
		    mk_hex_decode(r.pin, sizeof(r.pin), a[1] + 11,
		    strlen(a[1] + 11)) != 0)
			return perr(p, "relay %s: bad pin %s (want "
			    "sha256-raw:<64 hex digits>)", a[0], a[1]);
		r.has_pin = true;
	}
	for (i = 0; i < m->n_relays; i++)
		if (strcmp(m->relays[i].url, r.url) == 0)
			return perr(p, "relay %s: given twice (first on line "
			    "%u)", a[0], m->relays[i].line);
	if ((nr = grow(m->relays, &p->cap_relays, m->n_relays,
	    sizeof(*nr))) == NULL)
		return nomem(p);
	m->relays = nr;
	m->relays[m->n_relays++] = r;
	return 0;
}

static bool
same_stun(const struct mk_mesh_stun *a, const struct mk_mesh_stun *b)
{
	if (a->port != b->port)
		return false;
	if (a->addr.len != 0 || b->addr.len != 0)
		return mk_addr_same_ip(&a->addr, &b->addr);
	return strcasecmp(a->host, b->host) == 0;
}

static int
add_stun(struct parser *p, const struct mk_mesh_stun *s)
{
	struct mk_mesh *m = p->m;
	struct mk_mesh_stun *ns;

	if ((ns = grow(m->stun, &p->cap_stun, m->n_stun, sizeof(*ns))) ==
	    NULL)
		return nomem(p);
	m->stun = ns;
	m->stun[m->n_stun++] = *s;
	return 0;
}

static int
kw_stun(struct parser *p, char **a, size_t n)
{
	struct mk_mesh *m = p->m;
	struct mk_mesh_stun s;
	const char *why;
	bool numeric;
	size_t i;

	if (n != 1)
		return perr(p, "stun takes one HOST[:PORT]");
	if (m->n_stun == MK_MESH_MAX_STUN)
		return perr(p, "more than %d stun servers", MK_MESH_MAX_STUN);
	memset(&s, 0, sizeof(s));
	s.line = p->line;
	if (split_hostport(a[0], true, s.host, sizeof(s.host), &s.addr,
	    &s.port, &numeric, &why) != 0)
		return perr(p, "stun %s: %s", a[0], why);
	if (s.port == 0)
		s.port = MK_MESH_STUN_PORT;
	if (numeric)
		mk_addr_set_port(&s.addr, s.port);
	else
		memset(&s.addr, 0, sizeof(s.addr));
	for (i = 0; i < m->n_stun; i++)
		if (same_stun(&m->stun[i], &s))
			return perr(p, "stun %s: given twice (first on line "
			    "%u)", a[0], m->stun[i].line);
	return add_stun(p, &s);
}

/* A mesh address with an optional /32 or /128. Returns a reason or NULL. */
static const char *
parse_mesh_addr(const char *s, struct mk_addr *a, uint8_t *prefix)
{
	static const uint8_t v6net[6] = {
		0xfd, 0x7a, 0x11, 0x5c, 0xa1, 0xe0
	};
	static const uint8_t v4dns[4] = { 100, 100, 100, 100 };
	static const uint8_t v6dns[16] = {
		0xfd, 0x7a, 0x11, 0x5c, 0xa1, 0xe0, 0, 0, 0, 0, 0, 0, 0, 0,
		0, 0x53
	};
	char buf[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(s, '/');
	uint8_t ip[16];
	size_t len = slash ? (size_t)(slash - s) : strlen(s);
	long long v = -1;

	if (len == 0 || len >= sizeof(buf))
		return "is not an IP address";
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (slash != NULL && parse_uint(slash + 1, 0, 128, &v) != 0)
		return "has a bad prefix length";
	if (inet_pton(AF_INET, buf, ip) == 1) {
		if (v != -1 && v != 32)
			return "has a prefix length other than /32";
		if (ip[0] != 100 || (ip[1] & 0xc0) != 64)
			return "is outside " MK_MESH_V4_NET;
		if (memcmp(ip, v4dns, 4) == 0)
			return "is reserved for magicdns";
		mk_addr_from_v4(a, ip, 0);
		*prefix = 32;
	} else if (inet_pton(AF_INET6, buf, ip) == 1) {
		if (v != -1 && v != 128)
			return "has a prefix length other than /128";
		if (memcmp(ip, v6net, sizeof(v6net)) != 0)
			return "is outside " MK_MESH_V6_NET;
		if (memcmp(ip, v6dns, 16) == 0)
			return "is reserved for magicdns";
		mk_addr_from_v6(a, ip, 0);
		*prefix = 128;
	} else
		return "is not an IP address";
	return NULL;
}

static int
kw_node(struct parser *p, char **a, size_t n)
{
	struct mk_mesh *m = p->m;
	struct mk_mesh_node nd, *nn;
	static const struct mk_key zero;
	uint8_t k[ADDR_KEYLEN], k2[ADDR_KEYLEN];
	const char *why;
	size_t i, j;
	long id;

	if (n < 3)
		return perr(p, "node needs a name, a public key and at least "
		    "one address");
	if (!is_label(a[0], strlen(a[0]), true))
		return perr(p, "node %s: name must be a DNS label (a-z, 0-9 "
		    "and -, at most 63)", a[0]);
	if (m->n_nodes == MK_MESH_MAX_NODES)
		return perr(p, "more than %d nodes", MK_MESH_MAX_NODES);
	if (n - 2 > MK_MESH_MAX_ADDRS)
		return perr(p, "node %s: more than %d addresses", a[0],
		    MK_MESH_MAX_ADDRS);
	if ((id = htab_find(m, H_NAME, (const uint8_t *)a[0],
	    strlen(a[0]))) >= 0)
		return perr(p, "node %s: name already used on line %u", a[0],
		    m->nodes[id].line);
	memset(&nd, 0, sizeof(nd));
	memcpy(nd.name, a[0], strlen(a[0]) + 1);
	nd.line = p->line;
	if (mk_key_parse(&nd.pubkey, a[1], &why) != 0)
		return perr(p, "node %s: bad public key: %s", a[0], why);
	if (memcmp(nd.pubkey.b, zero.b, MK_KEY_LEN) == 0)
		return perr(p, "node %s: public key is all zeros", a[0]);
	if ((id = htab_find(m, H_KEY, nd.pubkey.b, MK_KEY_LEN)) >= 0)
		return perr(p, "node %s: public key already used by %s (line "
		    "%u)", a[0], m->nodes[id].name, m->nodes[id].line);
	for (i = 0; i < n - 2; i++) {
		if ((why = parse_mesh_addr(a[2 + i], &nd.addrs[i],
		    &nd.prefix[i])) != NULL)
			return perr(p, "node %s: address %s %s", a[0],
			    a[2 + i], why);
		addr_key(&nd.addrs[i], k);
		for (j = 0; j < i; j++) {
			addr_key(&nd.addrs[j], k2);
			if (memcmp(k, k2, sizeof(k)) == 0)
				return perr(p, "node %s: address %s listed "
				    "twice", a[0], a[2 + i]);
		}
		if ((id = htab_find(m, H_ADDR, k, sizeof(k))) >= 0) {
			id /= MK_MESH_MAX_ADDRS;
			return perr(p, "node %s: address %s already used by "
			    "%s (line %u)", a[0], a[2 + i], m->nodes[id].name,
			    m->nodes[id].line);
		}
		nd.n_addrs++;
	}
	if ((nn = grow(m->nodes, &p->cap_nodes, m->n_nodes, sizeof(*nn))) ==
	    NULL)
		return nomem(p);
	m->nodes = nn;
	m->nodes[m->n_nodes] = nd;
	id = (long)m->n_nodes++;
	if (htab_insert(m, H_NAME, (uint32_t)id) != 0 ||
	    htab_insert(m, H_KEY, (uint32_t)id) != 0)
		return nomem(p);
	for (i = 0; i < nd.n_addrs; i++)
		if (htab_insert(m, H_ADDR, (uint32_t)id * MK_MESH_MAX_ADDRS +
		    (uint32_t)i) != 0)
			return nomem(p);
	return 0;
}

static int
set_birthday(struct mk_mesh *m, const char *v)
{
	if (strcmp(v, "on") == 0)
		m->birthday = true;
	else if (strcmp(v, "off") == 0)
		m->birthday = false;
	else
		return -1;
	return 0;
}

static int
set_keepalive(struct mk_mesh *m, const char *v)
{
	long long s;

	if (strlen(v) > 4 || parse_uint(v, 1, 3600, &s) != 0)
		return -1;
	m->keepalive = (unsigned)s;
	return 0;
}

/* punch's birthday escalation, tuned (lib/birthday's limits: 1024
 * sockets, 1000 probes a second without force, 1000000 probes); punch
 * reads them with mk_mesh_option. */
static int
check_bday_ports(struct mk_mesh *m, const char *v)
{
	long long n;

	(void)m;
	return strlen(v) > 4 ? -1 : parse_uint(v, 1, 1024, &n);
}

static int
check_bday_rate(struct mk_mesh *m, const char *v)
{
	long long n;

	(void)m;
	return strlen(v) > 4 ? -1 : parse_uint(v, 1, 1000, &n);
}

static int
check_bday_count(struct mk_mesh *m, const char *v)
{
	long long n;

	(void)m;
	return strlen(v) > 7 ? -1 : parse_uint(v, 1, 1000000, &n);
}

static const struct option_def {
	const char	*key;
	int		(*set)(struct mk_mesh *, const char *);
	const char	*want;
} options[] = {
	{ "birthday",	set_birthday,	"on or off" },
	{ "birthday-count", check_bday_count, "probes from 1 to 1000000" },
	{ "birthday-ports", check_bday_ports, "sockets from 1 to 1024" },
	{ "birthday-rate", check_bday_rate, "probes a second from 1 to 1000" },
	{ "keepalive",	set_keepalive,	"seconds from 1 to 3600" },
};
_Static_assert(MK_ARRAY_LEN(options) <= MK_MESH_MAX_OPTIONS,
    "struct mk_mesh has no room for every option");

static int
set_option(struct parser *p, const char *key, const char *value)
{
	struct mk_mesh *m = p->m;
	struct mk_mesh_option *o;
	size_t i;

	for (i = 0; i < MK_ARRAY_LEN(options); i++)
		if (strcmp(options[i].key, key) == 0)
			break;
	if (i == MK_ARRAY_LEN(options))
		return perr(p, "unknown option %s", key);
	for (o = m->options; o < m->options + m->n_options; o++)
		if (strcmp(o->key, key) == 0)
			return perr(p, "option %s given twice (first on line "
			    "%u)", key, o->line);
	if (options[i].set(m, value) != 0)
		return perr(p, "option %s: bad value %s (want %s)", key, value,
		    options[i].want);
	/* Each known key appears at most once: the array cannot fill. */
	o = &m->options[m->n_options++];
	snprintf(o->key, sizeof(o->key), "%s", key);
	snprintf(o->value, sizeof(o->value), "%s", value);
	o->line = p->line;
	return 0;
}

static int
kw_option(struct parser *p, char **a, size_t n)
{
	if (n != 2)
		return perr(p, "option takes a key and a value");
	return set_option(p, a[0], a[1]);
}

static int
kw_birthday(struct parser *p, char **a, size_t n)
{
	if (n != 1)
		return perr(p, "birthday takes on or off");
	return set_option(p, "birthday", a[0]);
}

static const struct keyword {
	const char	*word;
	int		(*fn)(struct parser *, char **, size_t);
} keywords[] = {
	{ "domain",	kw_domain },
	{ "relay",	kw_relay },
	{ "stun",	kw_stun },
	{ "node",	kw_node },
	{ "option",	kw_option },
	{ "birthday",	kw_birthday },
};

static int
parse_line(struct parser *p, char *s)
{
	char *f[MAX_FIELDS], *c;
	size_t nf = 0, i;
	unsigned char u;

	if ((c = strchr(s, '#')) != NULL)
		*c = '\0';
	for (c = s; *c != '\0'; c++) {
		u = (unsigned char)*c;
		if (u == '\t')
			continue;
		if (u < 0x20 || u == 0x7f)
			return perr(p, "control character 0x%02x", u);
		if (u >= 0x80)
			return perr(p, "non-ASCII byte 0x%02x", u);
	}
	for (c = s;;) {
		while (*c == ' ' || *c == '\t')
			c++;
		if (*c == '\0')
			break;
		if (nf < MAX_FIELDS)
			f[nf] = c;
		nf++;
		while (*c != '\0' && *c != ' ' && *c != '\t')
			c++;
		if (*c != '\0')
			*c++ = '\0';
	}
	if (nf == 0)
		return 0;
	for (i = 0; i < MK_ARRAY_LEN(keywords); i++)
		if (strcmp(keywords[i].word, f[0]) == 0)
			return keywords[i].fn(p, f + 1, nf - 1);
	return perr(p, "unknown keyword %s", f[0]);
}

/* Checks that need the whole file, and the STUN servers implied. */
static int
finish(struct parser *p)
{
	struct mk_mesh *m = p->m;
	struct mk_mesh_stun s;
	size_t i, j, dl = strlen(m->domain);

	if (dl > 0) {
		for (i = 0; i < m->n_nodes; i++) {
			if (strlen(m->nodes[i].name) + 1 + dl <=
			    MK_MESH_DOMAIN_MAX)
				continue;
			p->line = m->nodes[i].line;
			return perr(p, "node %s: %s.DOMAIN is longer than %d "
			    "characters", m->nodes[i].name, m->nodes[i].name,
			    MK_MESH_DOMAIN_MAX);
		}
	}
	if (m->n_stun > 0)
		return 0;
	for (i = 0; i < m->n_relays; i++) {
		memset(&s, 0, sizeof(s));
		memcpy(s.host, m->relays[i].host, sizeof(s.host));
		s.port = MK_MESH_STUN_PORT;
		s.from_relay = true;
		s.line = m->relays[i].line;
		if (check_host(s.host, &s.addr) == 0)
			mk_addr_set_port(&s.addr, s.port);
		else
			memset(&s.addr, 0, sizeof(s.addr));
		for (j = 0; j < m->n_stun; j++)
			if (same_stun(&m->stun[j], &s))
				break;
		if (j == m->n_stun && add_stun(p, &s) != 0)
			return -1;
	}
	return 0;
}

int
mk_mesh_parse(struct mk_mesh *m, const char *text, size_t len,
    const char *name, char *err, size_t errlen)
{
	struct parser p;
	char buf[MK_MESH_MAX_LINE + 1];
	const char *ln, *nl;
	size_t off = 0, ll;

	memset(m, 0, sizeof(*m));
	m->keepalive = MK_MESH_KEEPALIVE_DEFAULT;
	memset(&p, 0, sizeof(p));
	p.m = m;
	p.name = name ? name : "mesh.conf";
	p.err = err;
	p.errlen = errlen;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (len > MK_MESH_MAX_FILE) {
		seterr(err, errlen, "%s: file is larger than %u bytes",
		    p.name, MK_MESH_MAX_FILE);
		errno = EFBIG;
		return -1;
	}
	if ((m->idx = calloc(1, sizeof(*m->idx))) == NULL) {
		seterr(err, errlen, "%s: out of memory", p.name);
		errno = ENOMEM;
		return -1;
	}
	while (off < len) {
		ln = text + off;
		nl = memchr(ln, '\n', len - off);
		ll = nl ? (size_t)(nl - ln) : len - off;
		off += ll + (nl != NULL);
		p.line++;
		if (ll > 0 && ln[ll - 1] == '\r')
			ll--;
		if (ll > MK_MESH_MAX_LINE) {
			perr(&p, "line is longer than %d bytes",
			    MK_MESH_MAX_LINE);
			goto fail;
		}
		if (memchr(ln, '\0', ll) != NULL) {
			perr(&p, "NUL byte");
			goto fail;
		}
		memcpy(buf, ln, ll);
		buf[ll] = '\0';
		if (parse_line(&p, buf) != 0)
			goto fail;
	}
	if (finish(&p) != 0)
		goto fail;
	return 0;
fail:
	mk_mesh_free(m);
	errno = p.nomem ? ENOMEM : EINVAL;
	return -1;
}

int
mk_mesh_load(struct mk_mesh *m, const char *path, char *err, size_t errlen)
{
	const char *label = path;
	char *buf = NULL;
	size_t len = 0;
	int fd, rc, saved;
	bool is_stdin = strcmp(path, "-") == 0;

	memset(m, 0, sizeof(*m));
	if (is_stdin) {
		fd = STDIN_FILENO;
		label = "(stdin)";
	} else if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		saved = errno;
		seterr(err, errlen, "%s: %s", path, strerror(saved));
		errno = saved;
		return -1;
	}
	/* One byte past the limit tells "too big" apart. */
	if (mk_read_all(fd, MK_MESH_MAX_FILE, &buf, &len) != 0) {
		saved = errno;
		goto ioerr;
	}
	if (!is_stdin)
		close(fd);
	rc = mk_mesh_parse(m, buf, len, label, err, errlen);
	saved = errno;
	free(buf);
	errno = saved;
	return rc;
ioerr:
	seterr(err, errlen, "%s: %s", label, strerror(saved));
	if (!is_stdin)
		close(fd);
	free(buf);
	errno = saved;
	return -1;
}

void
mk_mesh_free(struct mk_mesh *m)
{
	size_t i;

	if (m == NULL)
		return;
	if (m->idx != NULL) {
		for (i = 0; i < H_COUNT; i++)
			free(m->idx->t[i].slot);
		free(m->idx);
	}
	free(m->relays);
	free(m->stun);
	free(m->nodes);
	memset(m, 0, sizeof(*m));
}

const char *
mk_mesh_default_path(void)
{
	const char *s = getenv(MK_MESH_ENV);

	return s != NULL && *s != '\0' ? s : MK_MESH_DEFAULT_PATH;
}

int
mk_mesh_load_given(struct mk_mesh *m, const char *given, char *err,
    size_t errlen)
{
	const char *path = given != NULL ? given : mk_mesh_default_path();

	memset(m, 0, sizeof(*m));
	if (given == NULL && access(path, F_OK) != 0)
		return 0;
	return mk_mesh_load(m, path, err, errlen) == 0 ? 1 : -1;
}

const struct mk_mesh_node *
mk_mesh_find_key(const struct mk_mesh *m, const struct mk_key *pub)
{
	size_t i;
	long id;

	if (m->idx != NULL) {
		id = htab_find(m, H_KEY, pub->b, MK_KEY_LEN);
		return id < 0 ? NULL : &m->nodes[id];
	}
	for (i = 0; i < m->n_nodes; i++)
		if (memcmp(m->nodes[i].pubkey.b, pub->b, MK_KEY_LEN) == 0)
			return &m->nodes[i];
	return NULL;
}

const struct mk_mesh_node *
mk_mesh_find_name(const struct mk_mesh *m, const char *name)
{
	char buf[MK_MESH_DOMAIN_MAX + 2];
	size_t len = strlen(name), dl = strlen(m->domain), i;
	long id;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > MK_MESH_DOMAIN_MAX)
		return NULL;
	for (i = 0; i < len; i++)
		buf[i] = (char)to_lower((unsigned char)name[i]);
	buf[len] = '\0';
	if (dl > 0 && len > dl + 1 && buf[len - dl - 1] == '.' &&
	    memcmp(buf + len - dl, m->domain, dl) == 0)
		len -= dl + 1;
	if (len > MK_MESH_NAME_MAX)
		return NULL;
	buf[len] = '\0';
	if (m->idx != NULL) {
		id = htab_find(m, H_NAME, (const uint8_t *)buf, len);
		return id < 0 ? NULL : &m->nodes[id];
	}
	for (i = 0; i < m->n_nodes; i++)
		if (strcmp(m->nodes[i].name, buf) == 0)
			return &m->nodes[i];
	return NULL;
}

const struct mk_mesh_node *
mk_mesh_find_addr(const struct mk_mesh *m, const struct mk_addr *a)
{
	uint8_t k[ADDR_KEYLEN];
	size_t i, j;
	long id;

	if (mk_addr_family(a) != AF_INET && mk_addr_family(a) != AF_INET6)
		return NULL;
	if (m->idx != NULL) {
		addr_key(a, k);
		id = htab_find(m, H_ADDR, k, sizeof(k));
		return id < 0 ? NULL : &m->nodes[id / MK_MESH_MAX_ADDRS];
	}
	for (i = 0; i < m->n_nodes; i++)
		for (j = 0; j < m->nodes[i].n_addrs; j++)
			if (mk_addr_same_ip(&m->nodes[i].addrs[j], a))
				return &m->nodes[i];
	return NULL;
}

char *
mk_mesh_node_fqdn(const struct mk_mesh *m, const struct mk_mesh_node *n,
    char *buf, size_t len)
{
	if (m->domain[0] != '\0')
		snprintf(buf, len, "%s.%s", n->name, m->domain);
	else
		snprintf(buf, len, "%s", n->name);
	return buf;
}

const char *
mk_mesh_option(const struct mk_mesh *m, const char *key)
{
	size_t i;

	for (i = 0; i < m->n_options; i++)
		if (strcmp(m->options[i].key, key) == 0)
			return m->options[i].value;
	return NULL;
}

int
mk_mesh_self(const struct mk_mesh *m, const char *meshname,
    const char *keyfile,
    struct mk_key *priv, struct mk_key *pub,
    const struct mk_mesh_node **self, char *err, size_t errlen)
{
	const char *why;

	*self = NULL;
	if (mk_key_read_file(priv, keyfile, &why) != 0) {
		snprintf(err, errlen, "%s: %s", keyfile, why);
		return -1;
	}
	if (mk_key_public(pub, priv) != 0) {
		mk_key_wipe(priv);
		snprintf(err, errlen, "%s: not a usable private key", keyfile);
		return -1;
	}
	if ((*self = mk_mesh_find_key(m, pub)) == NULL) {
		mk_key_wipe(priv);
		snprintf(err, errlen, "%s: this key is no node of %s", keyfile,
		    meshname);
		return -1;
	}
	return 0;
}
