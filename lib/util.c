/* SPDX-License-Identifier: MIT */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int
mk_strtonum(const char *s, long long min, long long max, long long *out)
{
	char *end;
	long long v;

	/* Digits only (a minus sign where negatives are allowed): strtoll
	 * alone would take "+443", " 443" and "-0" for a port. */
	if (s == NULL || !(isdigit((unsigned char)*s) || (*s == '-' &&
	    min < 0 && isdigit((unsigned char)s[1])))) {
		errno = EINVAL;
		return -1;
	}
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end != '\0') {
		errno = EINVAL;
		return -1;
	}
	if (errno == ERANGE || v < min || v > max) {
		errno = ERANGE;
		return -1;
	}
	*out = v;
	return 0;
}

const char *
mk_strtonum_err(int err)
{
	return err == ERANGE ? "out of range" : "invalid";
}

int
mk_parse_seconds_ms(const char *s, uint64_t max_ms, uint64_t *out)
{
	uint64_t whole = 0, frac = 0, scale = 1000;
	const char *p = s;

	if (*p == '\0')
		goto bad;
	for (; isdigit((unsigned char)*p); p++) {
		whole = whole * 10 + (uint64_t)(*p - '0');
		if (whole > max_ms / 1000 + 1)
			goto range;
	}
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			goto bad;
		for (; isdigit((unsigned char)*p); p++) {
			if (scale > 1) {
				scale /= 10;
				frac += (uint64_t)(*p - '0') * scale;
			}
		}
	}
	if (*p != '\0' || p == s)
		goto bad;
	if (whole * 1000 + frac > max_ms)
		goto range;
	*out = whole * 1000 + frac;
	return 0;
bad:
	errno = EINVAL;
	return -1;
range:
	errno = ERANGE;
	return -1;
}

int
mk_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t
mk_read_small(int fd, char *buf, size_t cap)
{
	size_t off = 0;
	ssize_t n;

	for (;;) {
		if (off == cap) {
			errno = EFBIG;
			return -1;
		}
		n = read(fd, buf + off, cap - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		off += (size_t)n;
	}
	if (off == cap) {
		errno = EFBIG;
		return -1;
	}
	buf[off] = '\0';
	return (ssize_t)off;
}

int
mk_read_all(int fd, size_t max, char **buf, size_t *len)
{
	char *b = NULL, *nb;
	size_t cap = 0, n = 0;
	ssize_t r;
	int saved;

	for (;;) {
		if (n == cap) {
			if (cap > max)
				break;
			cap = cap ? cap * 2 : 65536;
			if (cap > max + 1)
				cap = max + 1;
			if ((nb = realloc(b, cap)) == NULL) {
				saved = ENOMEM;
				goto fail;
			}
			b = nb;
		}
		r = read(fd, b + n, cap - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			saved = errno;
			goto fail;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*buf = b;
	*len = n;
	return 0;
fail:
	free(b);
	errno = saved;
	return -1;
}

void
mk_hex_encode(char *out, const uint8_t *in, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

int
mk_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
mk_hex_decode(uint8_t *out, size_t len, const char *in, size_t inlen)
{
	size_t i;
	int hi, lo;

	if (inlen != 2 * len)
		return -1;
	for (i = 0; i < len; i++) {
		hi = mk_hexval((unsigned char)in[2 * i]);
		lo = mk_hexval((unsigned char)in[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int
mk_file_replace(const char *path, const void *data, size_t len, mode_t mode)
{
	char tmp[PATH_MAX];
	int fd, saved;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >=
	    (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    mode);
	if (fd < 0)
		return -1;
	/* open() honours the umask; the mode asked for is the mode meant. */
	if (fchmod(fd, mode) != 0 || mk_write_all(fd, data, len) != 0 ||
	    fsync(fd) != 0)
		goto fail;
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	if (rename(tmp, path) != 0) {
		fd = -1;
		goto fail;
	}
	return 0;
fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	errno = saved;
	return -1;
}

char *
mk_trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/*
 * Whether others can reach the file path leads to: it grants them read or
 * write, and every directory above it lets them through. (wg-quick's own
 * test, the file's and its directory's bits for others ANDed, misses a
 * 0604 file in a 0711 directory and flags one in a closed 0744 one.)
 */
bool
mk_file_world_accessible(const char *path, char *real, size_t len)
{
	struct stat st;
	char *rp, *slash;
	bool readable = false;
	int rc;

	if ((rp = realpath(path, NULL)) == NULL)
		return false;
	if (stat(rp, &st) != 0 || !S_ISREG(st.st_mode) ||
	    !(st.st_mode & (S_IROTH | S_IWOTH)))
		goto out;
	if (real != NULL && len > 0)
		snprintf(real, len, "%s", rp);
	/* realpath's answer is absolute: walk up, one slash at a time */
	while ((slash = strrchr(rp, '/')) != NULL) {
		*slash = '\0';
		rc = stat(*rp != '\0' ? rp : "/", &st);
		if (rc != 0 || !(st.st_mode & S_IXOTH))
			goto out;
	}
	readable = true;
out:
	free(rp);
	return readable;
}
