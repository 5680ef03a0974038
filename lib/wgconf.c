/* SPDX-License-Identifier: MIT */
#include "wgconf.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "util.h"

enum section { NONE, IFACE, PEER };

/* Bits for keys that may be given once per section. */
#define SEEN_PRIVATE_KEY	(1U << 0)
#define SEEN_LISTEN_PORT	(1U << 1)
#define SEEN_FWMARK		(1U << 2)
#define SEEN_MTU		(1U << 3)
#define SEEN_TABLE		(1U << 4)
#define SEEN_PUBLIC_KEY		(1U << 5)
#define SEEN_PRESHARED_KEY	(1U << 6)
#define SEEN_ENDPOINT		(1U << 7)
#define SEEN_KEEPALIVE		(1U << 8)
#define SEEN_SAVECONFIG		(1U << 9)

struct parser {
	struct mk_wgconf	*c;
	const char		*name;
	unsigned		 flags;
	unsigned		 line;
	enum section		 sect;
	bool			 had_iface;
	unsigned		 seen;
	struct mk_wg_peer	*peer;		/* the [Peer] being read */
	unsigned		 peer_line;
	unsigned		*lines;		/* of each [Peer] header */
	size_t			 cap_lines;
	char			*err;
	size_t			 errlen;
	size_t			 cap_addrs;
};

static int __attribute__((format(printf, 2, 3)))
fail(struct parser *p, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->err != NULL && p->errlen > 0)
		snprintf(p->err, p->errlen, "%s:%u: %s", p->name, p->line, msg);
	errno = EINVAL;
	return -1;
}

/* Keys given once: a second one is a mistake worth naming. */
static int
once(struct parser *p, unsigned bit, const char *key)
{
	if (p->seen & bit)
		return fail(p, "%s given twice in one section", key);
	p->seen |= bit;
	return 0;
}

static int
parse_u32(const char *v, uint32_t max, uint32_t *out)
{
	long long n;

	if (mk_strtonum(v, 0, max, &n) != 0)
		return -1;
	*out = (uint32_t)n;
	return 0;
}

/*
 * As wg(8) reads a fwmark: "off", or digits, hexadecimal after "0x"; the
 * value must fit 32 bits.
 */
int
mk_wgconf_parse_fwmark(const char *v, uint32_t *out)
{
	char *end;
	unsigned long long n;
	int base = 10;

	if (strcasecmp(v, "off") == 0) {
		*out = 0;
		return 0;
	}
	if (!isdigit((unsigned char)v[0]))
		return -1;
	if (strlen(v) > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
		if (!isxdigit((unsigned char)v[2]))
			return -1;
		base = 16;
	}
	errno = 0;
	n = strtoull(v, &end, base);
	if (*end != '\0' || errno != 0 || n > UINT32_MAX)
		return -1;
	*out = (uint32_t)n;
	return 0;
}

/* Call fn on each comma-separated item of v; empty items are errors. */
static int
each_item(struct parser *p, char *v, const char *key,
    int (*fn)(struct parser *, const char *))
{
	char *item, *save = NULL;
	size_t len = strlen(v);

	if (len > 0 && (v[0] == ',' || v[len - 1] == ',' ||
	    strstr(v, ",,") != NULL))
		return fail(p, "empty item in %s", key);
	for (item = strtok_r(v, ",", &save); item != NULL;
	    item = strtok_r(NULL, ",", &save))
		if (fn(p, item) != 0)
			return -1;
	return 0;
}

static int
add_address(struct parser *p, const char *s)
{
	struct mk_wg_allowedip a, *grown;
	const char *why;
	size_t cap;

	if (mk_wg_allowedip_parse(&a, s, &why) != 0)
		return fail(p, "Address %s: %s", s, why);
	if (p->c->n_addrs == p->cap_addrs) {
		cap = p->cap_addrs ? p->cap_addrs * 2 : 4;
		if ((grown = realloc(p->c->addrs, cap * sizeof(*grown))) ==
		    NULL)
			return fail(p, "out of memory");
		p->c->addrs = grown;
		p->cap_addrs = cap;
	}
	p->c->addrs[p->c->n_addrs++] = a;
	return 0;
}

static bool
domain_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= 253 && strspn(s, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") == n;
}

static int
add_dns(struct parser *p, const char *s)
{
	struct mk_addr a;
	const char *why;

	if (mk_addr_parse(&a, s, 53, MK_ADDR_NO_PORT, &why) == 0) {
		if (p->c->n_dns == MK_WGCONF_MAX_DNS)
			return fail(p, "more than %d DNS servers",
			    MK_WGCONF_MAX_DNS);
		p->c->dns[p->c->n_dns++] = a;
		return 0;
	}
	if (!domain_ok(s))
		return fail(p, "DNS %s: neither an address nor a domain", s);
	p->c->n_search++;
	return 0;
}

static int
add_allowedip(struct parser *p, const char *s)
{
	struct mk_wg_allowedip a;
	const char *why;

	if (mk_wg_allowedip_parse(&a, s, &why) != 0)
		return fail(p, "AllowedIPs %s: %s", s, why);
	if (mk_wg_peer_add_allowedip(p->peer, &a) != 0)
		return fail(p, "out of memory");
	return 0;
}

static int
parse_endpoint(struct parser *p, const char *v)
{
	struct mk_addr *ep = &p->peer->endpoint;
	char host[256], port[16];
	const char *why;
	long long n;

	if (mk_addr_parse(ep, v, 0, MK_ADDR_NEED_PORT, &why) == 0) {
		if (mk_addr_port(ep) == 0)
			return fail(p, "Endpoint %s: port 0", v);
		return 0;
	}
	if (mk_addr_split(v, host, sizeof(host), port, sizeof(port)) != 0 ||
	    port[0] == '\0' || mk_strtonum(port, 1, 65535, &n) != 0)
		return fail(p, "Endpoint %s: want host:port", v);
	if (!(p->flags & MK_WGCONF_RESOLVE))
		return fail(p, "Endpoint %s: %s", v, why);
	if (mk_addr_resolve(ep, v, 0, AF_UNSPEC, &why) != 0)
		return fail(p, "Endpoint %s: %s", v, why);
	return 0;
}

static int
parse_keepalive(const char *v, uint16_t *out)
{
	uint32_t n;

	if (strcasecmp(v, "off") == 0) {
		*out = 0;
		return 0;
	}
	if (parse_u32(v, 65535, &n) != 0)
		return -1;
	*out = (uint16_t)n;
	return 0;
}

static int
iface_key(struct parser *p, const char *key, char *v)
{
	struct mk_wg_device *dev = &p->c->dev;
	const char *why;
	uint32_t n;

	if (strcasecmp(key, "PrivateKey") == 0) {
		if (once(p, SEEN_PRIVATE_KEY, "PrivateKey") != 0)
			return -1;
		if (mk_key_parse_base64(&dev->private_key, v, &why) != 0)
			return fail(p, "PrivateKey: %s", why);
		dev->flags |= MK_WG_DEV_HAS_PRIVATE_KEY;
		if (mk_key_public(&dev->public_key, &dev->private_key) == 0)
			dev->flags |= MK_WG_DEV_HAS_PUBLIC_KEY;
	} else if (strcasecmp(key, "ListenPort") == 0) {
		if (once(p, SEEN_LISTEN_PORT, "ListenPort") != 0)
			return -1;
		if (parse_u32(v, 65535, &n) != 0)
			return fail(p, "ListenPort %s: want 0 to 65535", v);
		dev->listen_port = (uint16_t)n;
		dev->flags |= MK_WG_DEV_HAS_LISTEN_PORT;
	} else if (strcasecmp(key, "FwMark") == 0) {
		if (once(p, SEEN_FWMARK, "FwMark") != 0)
			return -1;
		if (mk_wgconf_parse_fwmark(v, &dev->fwmark) != 0)
			return fail(p, "FwMark %s: want a number or off", v);
		dev->flags |= MK_WG_DEV_HAS_FWMARK;
	} else if (strcasecmp(key, "Address") == 0) {
		return each_item(p, v, "Address", add_address);
	} else if (strcasecmp(key, "DNS") == 0) {
		return each_item(p, v, "DNS", add_dns);
	} else if (strcasecmp(key, "MTU") == 0) {
		if (once(p, SEEN_MTU, "MTU") != 0)
			return -1;
		if (parse_u32(v, 65535, &n) != 0 || n < 68)
			return fail(p, "MTU %s: want 68 to 65535", v);
		p->c->mtu = n;
	} else if (strcasecmp(key, "Table") == 0) {
		if (once(p, SEEN_TABLE, "Table") != 0)
			return -1;
		if (strcasecmp(v, "off") == 0)
			p->c->table = MK_WGCONF_TABLE_OFF;
		else if (strcasecmp(v, "auto") == 0)
			p->c->table = MK_WGCONF_TABLE_AUTO;
		else if (strcasecmp(v, "main") == 0)
			p->c->table = 254;
		else if (parse_u32(v, UINT32_MAX - 1, &n) != 0 || n == 0 ||
		    n == 255)
			return fail(p, "Table %s: want off, auto, main or a "
			    "table number", v);
		else
			p->c->table = n;
	} else if (strcasecmp(key, "SaveConfig") == 0) {
		if (once(p, SEEN_SAVECONFIG, "SaveConfig") != 0)
			return -1;
		if (strcasecmp(v, "true") == 0)
			return fail(p, "SaveConfig = true is not supported "
			    "(wgsetup never rewrites the file)");
		if (strcasecmp(v, "false") != 0)
			return fail(p, "SaveConfig %s: want true or false", v);
	} else if (strcasecmp(key, "PreUp") == 0 ||
	    strcasecmp(key, "PostUp") == 0 ||
	    strcasecmp(key, "PreDown") == 0 ||
	    strcasecmp(key, "PostDown") == 0) {
		return fail(p, "%s is not supported (wgsetup runs no hooks)",
		    key);
	} else
		return fail(p, "unknown key %s in [Interface]", key);
	return 0;
}

static int
peer_key(struct parser *p, const char *key, char *v)
{
	struct mk_wg_peer *peer = p->peer;
	const char *why;

	if (strcasecmp(key, "PublicKey") == 0) {
		if (once(p, SEEN_PUBLIC_KEY, "PublicKey") != 0)
			return -1;
		if (mk_key_parse(&peer->public_key, v, &why) != 0)
			return fail(p, "PublicKey: %s", why);
	} else if (strcasecmp(key, "PresharedKey") == 0) {
		if (once(p, SEEN_PRESHARED_KEY, "PresharedKey") != 0)
			return -1;
		if (mk_key_parse_base64(&peer->preshared_key, v, &why) != 0)
			return fail(p, "PresharedKey: %s", why);
		peer->flags |= MK_WG_PEER_HAS_PRESHARED_KEY;
	} else if (strcasecmp(key, "AllowedIPs") == 0) {
		return each_item(p, v, "AllowedIPs", add_allowedip);
	} else if (strcasecmp(key, "Endpoint") == 0) {
		if (once(p, SEEN_ENDPOINT, "Endpoint") != 0)
			return -1;
		if (parse_endpoint(p, v) != 0)
			return -1;
		peer->flags |= MK_WG_PEER_HAS_ENDPOINT;
	} else if (strcasecmp(key, "PersistentKeepalive") == 0) {
		if (once(p, SEEN_KEEPALIVE, "PersistentKeepalive") != 0)
			return -1;
		if (parse_keepalive(v, &peer->keepalive) != 0)
			return fail(p, "PersistentKeepalive %s: want 0 to "
			    "65535 or off", v);
		peer->flags |= MK_WG_PEER_HAS_KEEPALIVE;
	} else
		return fail(p, "unknown key %s in [Peer]", key);
	return 0;
}

/* The [Peer] section just read must have named its key. */
static int
end_section(struct parser *p)
{
	if (p->sect == PEER && !(p->seen & SEEN_PUBLIC_KEY)) {
		p->line = p->peer_line;
		return fail(p, "[Peer] without PublicKey");
	}
	return 0;
}

static int
push_line(struct parser *p)
{
	size_t n = p->c->dev.n_peers, cap;
	unsigned *grown;

	if (n > p->cap_lines) {
		cap = p->cap_lines ? p->cap_lines * 2 : 16;
		if ((grown = realloc(p->lines, cap * sizeof(*grown))) == NULL)
			return -1;
		p->lines = grown;
		p->cap_lines = cap;
	}
	p->lines[n - 1] = p->line;
	return 0;
}

static int
section(struct parser *p, const char *s)
{
	struct mk_key zero;

	if (end_section(p) != 0)
		return -1;
	p->seen = 0;
	if (strcasecmp(s, "[Interface]") == 0) {
		if (p->had_iface)
			return fail(p, "a second [Interface] section");
		p->had_iface = true;
		p->sect = IFACE;
		return 0;
	}
	if (strcasecmp(s, "[Peer]") == 0) {
		memset(&zero, 0, sizeof(zero));
		p->peer = mk_wg_device_add_peer(&p->c->dev, &zero);
		if (p->peer == NULL || push_line(p) != 0)
			return fail(p, "out of memory");
		/* As wg setconf: a listed peer's allowed IPs are exactly
		 * the listed ones. */
		p->peer->flags |= MK_WG_PEER_REPLACE_ALLOWEDIPS;
		p->peer_line = p->line;
		p->sect = PEER;
		return 0;
	}
	return fail(p, "unknown section %s", s);
}

/* Strip the comment and every blank, as wg does. */
static void
squeeze(char *s)
{
	char *w = s;

	for (; *s != '\0' && *s != '#'; s++)
		if (!isspace((unsigned char)*s))
			*w++ = *s;
	*w = '\0';
}

static int
parse_line(struct parser *p, char *s)
{
	char *eq;

	squeeze(s);
	if (*s == '\0')
		return 0;
	if (*s == '[')
		return section(p, s);
	if ((eq = strchr(s, '=')) == NULL || eq == s)
		return fail(p, "expected Key = Value or a [Section]");
	*eq = '\0';
	switch (p->sect) {
	case IFACE:
		return iface_key(p, s, eq + 1);
	case PEER:
		return peer_key(p, s, eq + 1);
	default:
		return fail(p, "%s before any [Interface] or [Peer]", s);
	}
}

static int
peer_cmp(const void *a, const void *b)
{
	const struct mk_wg_peer *x = *(const struct mk_wg_peer *const *)a;
	const struct mk_wg_peer *y = *(const struct mk_wg_peer *const *)b;

	return memcmp(x->public_key.b, y->public_key.b, MK_KEY_LEN);
}

/* Two [Peer] sections with one key would silently merge in WireGuard. */
static int
check_duplicates(struct parser *p)
{
	struct mk_wg_device *dev = &p->c->dev;
	const struct mk_wg_peer **v;
	size_t i;
	char b64[MK_KEY_B64LEN + 1];

	if (dev->n_peers < 2)
		return 0;
	if ((v = calloc(dev->n_peers, sizeof(*v))) == NULL)
		return fail(p, "out of memory");
	for (i = 0; i < dev->n_peers; i++)
		v[i] = &dev->peers[i];
	qsort(v, dev->n_peers, sizeof(*v), peer_cmp);
	for (i = 1; i < dev->n_peers; i++) {
		if (memcmp(v[i - 1]->public_key.b, v[i]->public_key.b,
		    MK_KEY_LEN) == 0) {
			size_t a = (size_t)(v[i - 1] - dev->peers);
			size_t b = (size_t)(v[i] - dev->peers);

			mk_key_to_base64(b64, &v[i]->public_key);
			free(v);
			p->line = p->lines[a > b ? a : b];
			return fail(p, "peer %s listed twice (first at line "
			    "%u)", b64, p->lines[a < b ? a : b]);
		}
	}
	free(v);
	return 0;
}

int
mk_wgconf_parse(struct mk_wgconf *c, const char *text, size_t len,
    const char *name, unsigned flags, char *err, size_t errlen)
{
	struct parser p = {
		.c = c, .name = name, .flags = flags, .err = err,
		.errlen = errlen,
	};
	char line[MK_WGCONF_MAX_LINE + 1];
	const char *s = text, *end = text + len, *nl;
	size_t n;

	memset(c, 0, sizeof(*c));
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (len > MK_WGCONF_MAX_FILE) {
		fail(&p, "file larger than %u bytes", MK_WGCONF_MAX_FILE);
		errno = EFBIG;
		return -1;
	}
	while (s < end) {
		p.line++;
		nl = memchr(s, '\n', (size_t)(end - s));
		n = nl ? (size_t)(nl - s) : (size_t)(end - s);
		if (n > MK_WGCONF_MAX_LINE) {
			fail(&p, "line longer than %d bytes",
			    MK_WGCONF_MAX_LINE);
			goto bad;
		}
		if (memchr(s, '\0', n) != NULL) {
			fail(&p, "NUL byte");
			goto bad;
		}
		memcpy(line, s, n);
		line[n] = '\0';
		if (parse_line(&p, line) != 0) {
			sodium_memzero(line, sizeof(line));
			goto bad;
		}
		s = nl ? nl + 1 : end;
	}
	sodium_memzero(line, sizeof(line));
	if (end_section(&p) != 0 || check_duplicates(&p) != 0)
		goto bad;
	free(p.lines);
	return 0;
bad:
	free(p.lines);
	mk_wgconf_free(c);
	errno = EINVAL;
	return -1;
}

int
mk_wgconf_load(struct mk_wgconf *c, const char *path, unsigned flags,
    char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	ssize_t n;
	int fd, saved, rc;
	bool is_stdin = strcmp(path, "-") == 0;
	const char *name = is_stdin ? "(stdin)" : path;

	memset(c, 0, sizeof(*c));
	fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		goto ioerr;
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		errno = EISDIR;
		goto ioerr;
	}
	for (;;) {
		if (len == cap) {
			char *grown;

			cap = cap ? cap * 2 : 65536;
			if (cap > MK_WGCONF_MAX_FILE + 1)
				cap = MK_WGCONF_MAX_FILE + 1;
			if (len == cap) {
				errno = EFBIG;
				goto ioerr;
			}
			if ((grown = realloc(buf, cap)) == NULL)
				goto ioerr;
			buf = grown;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto ioerr;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (!is_stdin)
		close(fd);
	rc = mk_wgconf_parse(c, buf ? buf : "", len, name, flags, err, errlen);
	saved = errno;
	if (buf != NULL)
		sodium_memzero(buf, cap);
	free(buf);
	errno = saved;
	return rc;
ioerr:
	saved = errno;
	snprintf(err, errlen, "%s: %s", name, saved == EFBIG ?
	    "file too large" : strerror(saved));
	if (fd >= 0 && !is_stdin)
		close(fd);
	if (buf != NULL)
		sodium_memzero(buf, cap);
	free(buf);
	errno = saved;
	return -1;
}

void
mk_wgconf_free(struct mk_wgconf *c)
{
	if (c == NULL)
		return;
	mk_wg_device_clear(&c->dev);
	free(c->addrs);
	memset(c, 0, sizeof(*c));
}
