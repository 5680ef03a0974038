/* SPDX-License-Identifier: MIT */
/*
 * hosts(5) files: "ADDRESS NAME [ALIAS...]" a line, # comments. Unlike
 * glibc, which skips what it cannot read, a bad line is an error naming
 * file and line, so a typing mistake is caught instead of a name silently
 * missing. Names are kept lowercase, without a trailing dot.
 */
#ifndef MK_HOSTS_H
#define MK_HOSTS_H

#include <stdbool.h>
#include <stddef.h>

#include "addr.h"

#define MK_HOSTS_MAX_LINE	4096		/* bytes, without CR/LF */
#define MK_HOSTS_MAX_FILE	(16U << 20)	/* bytes */
#define MK_HOSTS_MAX_ENTRIES	(1U << 20)	/* address-name pairs */
#define MK_HOSTS_NAME_MAX	253		/* no trailing dot */

/* One address-name pair; a line with aliases gives one per name. */
struct mk_hosts_entry {
	struct mk_addr	addr;			/* port 0 */
	char		name[MK_HOSTS_NAME_MAX + 1];
	unsigned	line;
	int		alias;			/* 0: canonical name */
};

struct mk_hosts {
	struct mk_hosts_entry	*e;		/* file order */
	size_t			 n;
	size_t			 cap;
};

/*
 * Parse text (len bytes, need not be NUL-terminated); name labels errors.
 * h is overwritten, not freed first. Returns 0, or -1 with
 * "name:line: reason" in err (errno EINVAL, EFBIG or ENOMEM), h left
 * empty and safe to free.
 */
int mk_hosts_parse(struct mk_hosts *h, const char *text, size_t len,
    const char *name, char *err, size_t errlen);

/* Read and parse a file; I/O errors give "path: strerror", errno kept. */
int mk_hosts_load(struct mk_hosts *h, const char *path, char *err,
    size_t errlen);

/* Free everything and leave h zeroed. NULL-safe, idempotent. */
void mk_hosts_free(struct mk_hosts *h);

/*
 * A host name as hosts(5) and DNS allow it: labels of letters, digits,
 * hyphens and underscores, 1-63 bytes each (no hyphen first or last),
 * at most 253 bytes, one trailing dot allowed, last label not all digits.
 */
bool mk_hosts_valid_name(const char *s);

#endif
