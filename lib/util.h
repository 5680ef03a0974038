/* SPDX-License-Identifier: MIT */
/* Small helpers every module needs: bounded numbers, whole reads and writes,
 * hex, and files that are never left half-written. */
#ifndef MK_UTIL_H
#define MK_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MK_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Parse a decimal integer in [min, max]; the whole string must be used.
 * Returns 0, or -1 with errno EINVAL (not a number) or ERANGE.
 */
int mk_strtonum(const char *s, long long min, long long max, long long *out);
/* errno of mk_strtonum as words: "invalid" or "out of range". */
const char *mk_strtonum_err(int err);

/* Parse seconds with an optional fraction ("3", "0.5") into milliseconds. */
int mk_parse_seconds_ms(const char *s, uint64_t max_ms, uint64_t *out);

/* Write all of buf, retrying on EINTR and short writes. 0 or -1/errno. */
int mk_write_all(int fd, const void *buf, size_t len);
/* Read up to cap bytes until EOF. Returns bytes read or -1/errno;
 * more than cap-1 bytes is an error (EFBIG). */
ssize_t mk_read_small(int fd, char *buf, size_t cap);

/* The value of one hex digit (either case), or -1. */
int mk_hexval(int c);
/*
 * Read fd to its end into a malloc'd buffer (*buf, *len; free it). At most
 * max + 1 bytes are read, so a caller can tell "larger than max" from
 * "exactly max". 0, or -1 with errno (nothing to free).
 */
int mk_read_all(int fd, size_t max, char **buf, size_t *len);

/* Lowercase hex. out must hold 2*len+1 bytes. */
void mk_hex_encode(char *out, const uint8_t *in, size_t len);
/* Exactly 2*len hex digits (either case). 0 or -1. */
int mk_hex_decode(uint8_t *out, size_t len, const char *in, size_t inlen);

/*
 * Replace path with data atomically: write a temporary file in the same
 * directory with the given mode, fsync, rename. A crash leaves either the
 * old file or the new one, never half of one. 0 or -1/errno.
 */
int mk_file_replace(const char *path, const void *data, size_t len,
    mode_t mode);

/* Big-endian (network order) integers in byte buffers, as every wire
 * format here uses. */
static inline uint16_t
mk_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t
mk_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static inline void
mk_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void
mk_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/*
 * Whether others can reach a secret (a key or config file): the file path
 * leads to, after links, is a regular file that grants others read or
 * write, and every directory above it lets others through. Programs then
 * warn as wg-quick does: "Warning: `FILE' is world accessible". A path
 * that cannot be resolved ("-", a missing file) is not: reading it says
 * why. When true and real is not NULL, the resolved path goes there.
 */
bool mk_file_world_accessible(const char *path, char *real, size_t len);

/* Trim ASCII whitespace at both ends in place; returns s. */
char *mk_trim(char *s);

#endif
