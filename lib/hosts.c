/* SPDX-License-Identifier: MIT */
#include "hosts.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_FIELDS	64

static int
seterr(char *err, size_t errlen, int e, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	errno = e;
	return -1;
}

static bool
is_label_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_';
}

bool
mk_hosts_valid_name(const char *s)
{
	size_t len = strlen(s), i, start = 0;
	bool digits = true;

	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0 || len > MK_HOSTS_NAME_MAX)
		return false;
	for (i = 0; i <= len; i++) {
		if (i == len || s[i] == '.') {
			if (i == start || i - start > 63 || s[start] == '-' ||
			    s[i - 1] == '-')
				return false;
			if (i < len)
				digits = true;
			start = i + 1;
			continue;
		}
		if (!is_label_char((unsigned char)s[i]))
			return false;
		if (s[i] < '0' || s[i] > '9')
			digits = false;
	}
	/* "10.0.0.256" is a mistyped address, not a name. */
	return !digits;
}

static int
add_entry(struct mk_hosts *h, const struct mk_addr *a, const char *name,
    unsigned line, int alias)
{
	struct mk_hosts_entry *ne, *e;
	size_t cap, i, len;

	if (h->n == MK_HOSTS_MAX_ENTRIES) {
		errno = EFBIG;
		return -1;
	}
	if (h->n == h->cap) {
		cap = h->cap ? h->cap * 2 : 64;
		if ((ne = realloc(h->e, cap * sizeof(*ne))) == NULL) {
			errno = ENOMEM;
			return -1;
		}
		h->e = ne;
		h->cap = cap;
	}
	e = &h->e[h->n++];
	e->addr = *a;
	len = strlen(name);
	if (len > 0 && name[len - 1] == '.')
		len--;
	for (i = 0; i < len; i++)
		e->name[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ?
		    name[i] - 'A' + 'a' : name[i]);
	e->name[len] = '\0';
	e->line = line;
	e->alias = alias;
	return 0;
}

/* An address as hosts(5) writes it: IPv4 dotted quad or IPv6, no port,
 * no brackets; a zone ("fe80::1%eth0") means nothing to DNS. */
static int
parse_addr(struct mk_addr *a, const char *s)
{
	uint8_t ip[16];

	if (inet_pton(AF_INET, s, ip) == 1) {
		mk_addr_from_v4(a, ip, 0);
		return 0;
	}
	if (inet_pton(AF_INET6, s, ip) == 1) {
		mk_addr_from_v6(a, ip, 0);
		return 0;
	}
	return -1;
}

/* Split a line (NUL-terminated, comment already cut) into fields. */
static size_t
split(char *s, char **f, size_t max, bool *too_many)
{
	size_t n = 0;

	*too_many = false;
	for (;;) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0')
			return n;
		if (n == max) {
			*too_many = true;
			return n;
		}
		f[n++] = s;
		while (*s != '\0' && *s != ' ' && *s != '\t')
			s++;
		if (*s != '\0')
			*s++ = '\0';
	}
}

static int
parse_line(struct mk_hosts *h, char *s, const char *name, unsigned line,
    char *err, size_t errlen)
{
	char *f[MAX_FIELDS], *hash;
	struct mk_addr a;
	bool too_many;
	size_t n, i;
	const unsigned char *p;

	if ((hash = strchr(s, '#')) != NULL)
		*hash = '\0';
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p != '\t' && (*p < 0x20 || *p > 0x7e))
			return seterr(err, errlen, EINVAL,
			    "%s:%u: control or non-ASCII byte", name, line);
	}
	n = split(s, f, MAX_FIELDS, &too_many);
	if (n == 0)
		return 0;
	if (too_many)
		return seterr(err, errlen, EINVAL,
		    "%s:%u: more than %d fields", name, line, MAX_FIELDS);
	if (parse_addr(&a, f[0]) != 0)
		return seterr(err, errlen, EINVAL, "%s:%u: bad address %s",
		    name, line, f[0]);
	if (n == 1)
		return seterr(err, errlen, EINVAL, "%s:%u: %s: no name",
		    name, line, f[0]);
	for (i = 1; i < n; i++) {
		if (!mk_hosts_valid_name(f[i]))
			return seterr(err, errlen, EINVAL,
			    "%s:%u: bad name %s", name, line, f[i]);
		if (add_entry(h, &a, f[i], line, (int)i - 1) != 0)
			return seterr(err, errlen, errno, "%s:%u: %s", name,
			    line, errno == EFBIG ? "too many entries" :
			    "out of memory");
	}
	return 0;
}

int
mk_hosts_parse(struct mk_hosts *h, const char *text, size_t len,
    const char *name, char *err, size_t errlen)
{
	char buf[MK_HOSTS_MAX_LINE + 1];
	size_t off = 0, n;
	unsigned line = 0;
	const char *nl;
	int saved;

	memset(h, 0, sizeof(*h));
	if (len > MK_HOSTS_MAX_FILE)
		return seterr(err, errlen, EFBIG, "%s: larger than %u bytes",
		    name, MK_HOSTS_MAX_FILE);
	while (off < len) {
		line++;
		nl = memchr(text + off, '\n', len - off);
		n = nl != NULL ? (size_t)(nl - (text + off)) : len - off;
		if (n > 0 && text[off + n - 1] == '\r')
			n--;
		if (n > MK_HOSTS_MAX_LINE) {
			seterr(err, errlen, EINVAL, "%s:%u: line longer than "
			    "%d bytes", name, line, MK_HOSTS_MAX_LINE);
			goto fail;
		}
		memcpy(buf, text + off, n);
		buf[n] = '\0';
		if (memchr(text + off, '\0', n) != NULL) {
			seterr(err, errlen, EINVAL, "%s:%u: NUL byte", name,
			    line);
			goto fail;
		}
		if (parse_line(h, buf, name, line, err, errlen) != 0)
			goto fail;
		if (nl == NULL)
			break;
		off = (size_t)(nl - text) + 1;
	}
	return 0;
fail:
	saved = errno;
	mk_hosts_free(h);
	errno = saved;
	return -1;
}

int
mk_hosts_load(struct mk_hosts *h, const char *path, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t len = 0;
	int fd, rc, saved;

	memset(h, 0, sizeof(*h));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return seterr(err, errlen, errno, "%s: %s", path,
		    strerror(errno));
	/* One byte past the limit tells "too big" apart. */
	if (mk_read_all(fd, MK_HOSTS_MAX_FILE, &buf, &len) != 0) {
		saved = errno;
		goto ioerr;
	}
	close(fd);
	rc = mk_hosts_parse(h, buf, len, path, err, errlen);
	saved = errno;
	free(buf);
	errno = saved;
	return rc;
ioerr:
	close(fd);
	free(buf);
	return seterr(err, errlen, saved, "%s: %s", path, strerror(saved));
}

void
mk_hosts_free(struct mk_hosts *h)
{
	if (h == NULL)
		return;
	free(h->e);
	memset(h, 0, sizeof(*h));
}
