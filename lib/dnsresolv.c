/* SPDX-License-Identifier: MIT */
#include "dnsresolv.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

static int
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	errno = saved;
	return -1;
}

/* ---- reading ---- */

static void
parse_line(struct mk_resolv *r, char *line)
{
	char *kw, *arg, *save = NULL;
	struct mk_addr a;
	const char *why;
	size_t ol;

	if ((kw = strtok_r(line, " \t", &save)) == NULL || *kw == '#' ||
	    *kw == ';')
		return;
	if (strcmp(kw, "nameserver") == 0) {
		arg = strtok_r(NULL, " \t", &save);
		if (arg != NULL && r->n_ns < MK_RESOLV_MAX_NS &&
		    mk_addr_parse(&a, arg, 53, MK_ADDR_NO_PORT, &why) == 0)
			r->ns[r->n_ns++] = a;
	} else if (strcmp(kw, "search") == 0 || strcmp(kw, "domain") == 0) {
		r->n_search = 0;
		while ((arg = strtok_r(NULL, " \t", &save)) != NULL &&
		    r->n_search < MK_RESOLV_MAX_SEARCH) {
			if (strlen(arg) < sizeof(r->search[0]))
				strcpy(r->search[r->n_search++], arg);
			if (strcmp(kw, "domain") == 0)
				break;
		}
	} else if (strcmp(kw, "options") == 0) {
		ol = strlen(r->options);
		if ((arg = strtok_r(NULL, "", &save)) != NULL &&
		    *mk_trim(arg) != '\0')
			snprintf(r->options + ol, sizeof(r->options) - ol,
			    "options %s\n", mk_trim(arg));
	}
}

void
mk_resolv_parse(struct mk_resolv *r, const char *text, size_t len)
{
	char line[1024];
	size_t off = 0, n;
	const char *nl;

	memset(r, 0, sizeof(*r));
	r->ours = len >= sizeof(MK_RESOLV_MARKER) - 1 &&
	    memcmp(text, MK_RESOLV_MARKER, sizeof(MK_RESOLV_MARKER) - 1) == 0;
	while (off < len) {
		nl = memchr(text + off, '\n', len - off);
		n = nl != NULL ? (size_t)(nl - text) - off : len - off;
		if (n < sizeof(line) && memchr(text + off, '\0', n) == NULL) {
			memcpy(line, text + off, n);
			line[n] = '\0';
			parse_line(r, line);
		}
		off += n + 1;
	}
}

/* The whole of a small file and its inode's metadata. 0 or -1/errno. */
static int
read_file(const char *path, char **out, size_t *len, struct stat *st)
{
	char *buf;
	ssize_t n;
	int fd, saved;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return -1;
	if (fstat(fd, st) != 0 || (buf = malloc(MK_RESOLV_MAX_FILE + 1)) ==
	    NULL) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	n = mk_read_small(fd, buf, MK_RESOLV_MAX_FILE + 1);
	saved = errno;
	close(fd);
	if (n < 0) {
		free(buf);
		errno = saved;
		return -1;
	}
	*out = buf;
	*len = (size_t)n;
	return 0;
}

int
mk_resolv_load(struct mk_resolv *r, const char *path)
{
	struct stat st;
	char *buf;
	size_t len;

	if (read_file(path, &buf, &len, &st) != 0) {
		if (errno == ENOENT) {
			memset(r, 0, sizeof(*r));
			return 0;
		}
		return -1;
	}
	mk_resolv_parse(r, buf, len);
	free(buf);
	return 0;
}

int
mk_netns_name(char *buf, size_t len)
{
	struct stat self, st;
	struct dirent *de;
	char p[PATH_MAX];
	DIR *d;

	snprintf(buf, len, "default");
	if (stat("/proc/self/ns/net", &self) != 0)
		return -1;
	if ((d = opendir("/run/netns")) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "/run/netns/%s", de->d_name);
		if (stat(p, &st) == 0 && st.st_dev == self.st_dev &&
		    st.st_ino == self.st_ino) {
			snprintf(buf, len, "%s", de->d_name);
			break;
		}
	}
	closedir(d);
	return 0;
}

int
mk_resolv_backup_path(char *buf, size_t len, const char *state_dir,
    const char *key)
{
	int n;

	if (strchr(key, '/') != NULL || key[0] == '.') {
		errno = EINVAL;
		return -1;
	}
	n = snprintf(buf, len, "%s/resolv.conf.%s", state_dir, key);
	if (n < 0 || (size_t)n >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* ---- the state directory ---- */

/*
 * Whoever can write the state directory chooses what --uninstall writes
 * to resolv.conf, and the upstreams read from the backup: it must belong
 * to root or to us and be writable by no one else, and so must every
 * directory above it, except sticky ones like /tmp (where no one else can
 * rename what is ours).
 */
int
mk_resolv_check_dir(const char *dir, char *err, size_t errlen)
{
	char real[PATH_MAX], *p;
	struct stat st;
	uid_t me = geteuid();
	bool top = true;

	if (realpath(dir, real) == NULL)
		return seterr(err, errlen, "state directory %s: %s", dir,
		    strerror(errno));
	for (;;) {
		if (lstat(real, &st) != 0)
			return seterr(err, errlen, "state directory %s: %s: %s",
			    dir, real, strerror(errno));
		if (!S_ISDIR(st.st_mode)) {
			errno = ENOTDIR;
			return seterr(err, errlen, "state directory %s: %s is "
			    "not a directory", dir, real);
		}
		if (st.st_uid != 0 && st.st_uid != me) {
			errno = EPERM;
			return seterr(err, errlen, "state directory %s: %s "
			    "belongs to uid %u, not to root or this user; "
			    "refusing it", dir, real, (unsigned)st.st_uid);
		}
		if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 &&
		    (top || (st.st_mode & S_ISVTX) == 0)) {
			errno = EPERM;
			return seterr(err, errlen, "state directory %s: %s is "
			    "writable by %s; refusing it", dir, real,
			    (st.st_mode & S_IWOTH) ? "anyone" : "its group");
		}
		if (strcmp(real, "/") == 0)
			return 0;
		top = false;
		if ((p = strrchr(real, '/')) == real)
			p[1] = '\0';
		else
			*p = '\0';
	}
}

/* ---- writing ---- */

static int
fsync_dir_of(const char *path)
{
	char tmp[PATH_MAX];
	int fd, rc;

	snprintf(tmp, sizeof(tmp), "%s", path);
	if ((fd = open(dirname(tmp), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* Overwrite path's inode: data first, then cut, then to disk. */
static int
write_in_place(const char *path, const char *data, size_t len)
{
	ssize_t n;
	size_t off = 0;
	int fd, saved;

	if ((fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return -1;
	while (off < len) {
		n = pwrite(fd, data + off, len - off, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		off += (size_t)n;
	}
	if (ftruncate(fd, (off_t)len) != 0 || fsync(fd) != 0)
		goto fail;
	return close(fd);
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

/*
 * Replace path with data, mode and owner: a temporary file renamed over
 * it, or, where rename cannot work (a bind-mounted file: EBUSY) and
 * in_place allows it, the file itself rewritten.
 */
static int
write_file(const char *path, const char *data, size_t len,
    const struct stat *meta, bool in_place)
{
	char tmp[PATH_MAX];
	int fd, saved;

	if (snprintf(tmp, sizeof(tmp), "%s.magicdns.%ld", path,
	    (long)getpid()) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd < 0)
		return -1;
	if (fchmod(fd, meta->st_mode & 07777) != 0 ||
	    (fchown(fd, meta->st_uid, meta->st_gid) != 0 && errno != EPERM) ||
	    mk_write_all(fd, data, len) != 0 || fsync(fd) != 0)
		goto fail;
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) == 0)
		return fsync_dir_of(path);
	saved = errno;
	unlink(tmp);
	if (in_place && (saved == EBUSY || saved == EXDEV))
		return write_in_place(path, data, len);
	errno = saved;
	return -1;
fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	errno = saved;
	return -1;
}

static int
mkdir_p(const char *dir)
{
	char tmp[PATH_MAX], *p;

	if (snprintf(tmp, sizeof(tmp), "%s", dir) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (p = tmp + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

static char *
new_content(const struct mk_resolv *old, const char *backup, const char *ns,
    const char *domain, size_t *len)
{
	char *buf;
	size_t cap = 4096, i;
	int n;

	if ((buf = malloc(cap)) == NULL)
		return NULL;
	n = snprintf(buf, cap,
	    MK_RESOLV_MARKER "; the original is %s\n"
	    "# `magicdns --uninstall` puts it back. Do not edit.\n"
	    "nameserver %s\n", backup, ns);
	if (n < 0 || (size_t)n >= cap)
		goto toolong;
	*len = (size_t)n;
	if ((domain != NULL && *domain != '\0') || old->n_search > 0) {
		n = snprintf(buf + *len, cap - *len, "search");
		*len += (size_t)n;
		if (domain != NULL && *domain != '\0') {
			n = snprintf(buf + *len, cap - *len, " %s", domain);
			*len += (size_t)n;
		}
		for (i = 0; i < old->n_search && *len < cap; i++) {
			if (domain != NULL && strcmp(old->search[i], domain)
			    == 0)
				continue;
			n = snprintf(buf + *len, cap - *len, " %s",
			    old->search[i]);
			*len += (size_t)n;
		}
		if (*len >= cap - 1)
			goto toolong;
		buf[(*len)++] = '\n';
	}
	n = snprintf(buf + *len, cap - *len, "%s", old->options);
	if (n < 0 || *len + (size_t)n >= cap)
		goto toolong;
	*len += (size_t)n;
	return buf;
toolong:
	free(buf);
	errno = ENAMETOOLONG;
	return NULL;
}

int
mk_resolv_install(const char *path, const char *backup, const char *ns,
    const char *domain, char *err, size_t errlen)
{
	struct stat st, bst, lst;
	struct mk_resolv old;
	char *cur = NULL, *bk = NULL, *nc = NULL, dir[PATH_MAX], *d;
	size_t curlen, bklen, nclen;
	int rc = -1;

	if (lstat(path, &lst) != 0)
		return seterr(err, errlen, "%s: %s", path, strerror(errno));
	if (S_ISLNK(lst.st_mode))
		return seterr(err, errlen, "%s is a symbolic link (managed "
		    "by systemd-resolved or resolvconf?); not touching it",
		    path);
	if (read_file(path, &cur, &curlen, &st) != 0)
		return seterr(err, errlen, "%s: %s", path, strerror(errno));
	mk_resolv_parse(&old, cur, curlen);
	if (old.ours) {
		/* Installed before and never uninstalled (a crash): the
		 * backup holds the real original; keep it. */
		snprintf(dir, sizeof(dir), "%s", backup);
		if (mk_resolv_check_dir(dirname(dir), err, errlen) != 0)
			goto out;
		if (read_file(backup, &bk, &bklen, &bst) != 0) {
			seterr(err, errlen, "%s was written by magicdns but "
			    "its backup %s cannot be read: %s", path, backup,
			    strerror(errno));
			goto out;
		}
		mk_resolv_parse(&old, bk, bklen);
	} else {
		/* Ours alone: never the original's owner or mode. */
		memset(&bst, 0, sizeof(bst));
		bst.st_mode = 0600;
		bst.st_uid = geteuid();
		bst.st_gid = getegid();
		snprintf(dir, sizeof(dir), "%s", backup);
		d = dirname(dir);
		if (mkdir_p(d) != 0) {
			seterr(err, errlen, "backup %s: %s", backup,
			    strerror(errno));
			goto out;
		}
		if (mk_resolv_check_dir(d, err, errlen) != 0)
			goto out;
		if (write_file(backup, cur, curlen, &bst, false) != 0) {
			seterr(err, errlen, "backup %s: %s", backup,
			    strerror(errno));
			goto out;
		}
	}
	if ((nc = new_content(&old, backup, ns, domain, &nclen)) == NULL) {
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (write_file(path, nc, nclen, &st, true) != 0) {
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	free(cur);
	free(bk);
	free(nc);
	return rc;
}

int
mk_resolv_uninstall(const char *path, const char *backup, char *err,
    size_t errlen)
{
	struct stat bst, st;
	char *bk = NULL, *cur = NULL, dir[PATH_MAX];
	size_t bklen, curlen;
	int rc = -1;

	snprintf(dir, sizeof(dir), "%s", backup);
	if (access(dir, F_OK) != 0 && errno == ENOENT)
		return 1;
	if (mk_resolv_check_dir(dirname(dir), err, errlen) != 0)
		return -1;
	if (read_file(backup, &bk, &bklen, &bst) != 0) {
		if (errno == ENOENT)
			return 1;
		return seterr(err, errlen, "%s: %s", backup, strerror(errno));
	}
	/*
	 * The restored file keeps the owner and mode of the one there now
	 * (ours, written with the original's), never the backup's: whoever
	 * owns the backup does not get to own resolv.conf.
	 */
	memset(&st, 0, sizeof(st));
	st.st_mode = 0644;
	st.st_uid = geteuid();
	st.st_gid = getegid();
	if (read_file(path, &cur, &curlen, &st) == 0) {
		if (curlen < sizeof(MK_RESOLV_MARKER) - 1 ||
		    memcmp(cur, MK_RESOLV_MARKER,
		    sizeof(MK_RESOLV_MARKER) - 1) != 0) {
			seterr(err, errlen, "%s was changed by someone else "
			    "since magicdns wrote it; left alone (the old one "
			    "is still in %s)", path, backup);
			goto out;
		}
	} else if (errno != ENOENT) {
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (write_file(path, bk, bklen, &st, true) != 0) {
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (unlink(backup) != 0 || fsync_dir_of(backup) != 0) {
		seterr(err, errlen, "%s: %s", backup, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	free(bk);
	free(cur);
	return rc;
}
