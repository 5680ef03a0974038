/* SPDX-License-Identifier: MIT */
#include "wgdev.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "rtnl.h"
#include "util.h"
#include "wg_netlink.h"
#include "wg_uapi.h"

extern char **environ;

#define DEFAULT_TIMEOUT_MS	5000

/* ---- the model ---- */

static void
peer_clear(struct mk_wg_peer *p)
{
	free(p->allowedips);
	sodium_memzero(p, sizeof(*p));
}

void
mk_wg_device_clear(struct mk_wg_device *dev)
{
	size_t i;

	if (dev == NULL)
		return;
	for (i = 0; i < dev->n_peers; i++)
		peer_clear(&dev->peers[i]);
	free(dev->peers);
	sodium_memzero(dev, sizeof(*dev));
}

struct mk_wg_peer *
mk_wg_device_add_peer(struct mk_wg_device *dev, const struct mk_key *pub)
{
	struct mk_wg_peer *grown, *p;
	size_t cap;

	if (dev->n_peers == dev->cap_peers) {
		cap = dev->cap_peers ? dev->cap_peers * 2 : 8;
		grown = realloc(dev->peers, cap * sizeof(*grown));
		if (grown == NULL) {
			errno = ENOMEM;
			return NULL;
		}
		dev->peers = grown;
		dev->cap_peers = cap;
	}
	p = &dev->peers[dev->n_peers++];
	memset(p, 0, sizeof(*p));
	p->public_key = *pub;
	dev->sorted = false;
	return p;
}

static int
peer_cmp(const void *a, const void *b)
{
	const struct mk_wg_peer *x = a, *y = b;

	return memcmp(x->public_key.b, y->public_key.b, MK_KEY_LEN);
}

void
mk_wg_device_sort(struct mk_wg_device *dev)
{
	if (dev->n_peers > 1)
		qsort(dev->peers, dev->n_peers, sizeof(*dev->peers), peer_cmp);
	dev->sorted = true;
}

struct mk_wg_peer *
mk_wg_device_find_peer(const struct mk_wg_device *dev,
    const struct mk_key *pub)
{
	struct mk_wg_peer key;
	size_t i;

	if (dev->n_peers == 0)
		return NULL;
	if (dev->sorted) {
		memset(&key, 0, sizeof(key));
		key.public_key = *pub;
		return bsearch(&key, dev->peers, dev->n_peers,
		    sizeof(*dev->peers), peer_cmp);
	}
	for (i = 0; i < dev->n_peers; i++)
		if (memcmp(dev->peers[i].public_key.b, pub->b,
		    MK_KEY_LEN) == 0)
			return &dev->peers[i];
	return NULL;
}

int
mk_wg_peer_add_allowedip(struct mk_wg_peer *p,
    const struct mk_wg_allowedip *a)
{
	struct mk_wg_allowedip *grown;
	size_t cap;

	if (p->n_allowedips == p->cap_allowedips) {
		cap = p->cap_allowedips ? p->cap_allowedips * 2 : 2;
		grown = realloc(p->allowedips, cap * sizeof(*grown));
		if (grown == NULL) {
			errno = ENOMEM;
			return -1;
		}
		p->allowedips = grown;
		p->cap_allowedips = cap;
	}
	p->allowedips[p->n_allowedips++] = *a;
	return 0;
}

int
mk_wg_allowedip_parse(struct mk_wg_allowedip *a, const char *s,
    const char **why)
{
	char ip[INET6_ADDRSTRLEN + 1];
	const char *slash;
	long long cidr;
	size_t n;
	int max;

	memset(a, 0, sizeof(*a));
	slash = strchr(s, '/');
	n = slash ? (size_t)(slash - s) : strlen(s);
	if (n == 0 || n >= sizeof(ip)) {
		*why = "not an IP prefix";
		return -1;
	}
	memcpy(ip, s, n);
	ip[n] = '\0';
	if (inet_pton(AF_INET, ip, &a->ip.ip4) == 1) {
		a->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, ip, &a->ip.ip6) == 1) {
		a->family = AF_INET6;
		max = 128;
	} else {
		*why = "not an IP address";
		return -1;
	}
	if (slash == NULL) {
		a->cidr = (uint8_t)max;
		return 0;
	}
	if (mk_strtonum(slash + 1, 0, max, &cidr) != 0) {
		*why = "bad prefix length";
		return -1;
	}
	a->cidr = (uint8_t)cidr;
	return 0;
}

char *
mk_wg_allowedip_fmt(const struct mk_wg_allowedip *a, char *buf, size_t n)
{
	char ip[INET6_ADDRSTRLEN];

	if (inet_ntop(a->family == AF_INET ? AF_INET : AF_INET6, a->ip.b, ip,
	    sizeof(ip)) == NULL)
		snprintf(ip, sizeof(ip), "?");
	snprintf(buf, n, "%s/%u", ip, a->cidr);
	return buf;
}

void
mk_wg_allowedip_mask(struct mk_wg_allowedip *a)
{
	size_t alen = a->family == AF_INET ? 4 : 16, i;
	unsigned bits = a->cidr;

	for (i = 0; i < alen; i++) {
		if (bits >= 8) {
			bits -= 8;
			continue;
		}
		a->ip.b[i] &= (uint8_t)(0xff00U >> bits);
		bits = 0;
	}
}

bool
mk_wg_allowedip_equal(const struct mk_wg_allowedip *a,
    const struct mk_wg_allowedip *b)
{
	return a->family == b->family && a->cidr == b->cidr &&
	    memcmp(a->ip.b, b->ip.b, a->family == AF_INET ? 4 : 16) == 0;
}

bool
mk_wg_ifname_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n >= MK_WG_IFNAMSIZ)
		return false;
	return strspn(name, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_=+.-") == n;
}

/* ---- control ---- */

struct mk_wg {
	enum mk_wg_backend	 backend;
	char			 name[MK_WG_IFNAMSIZ];
	struct mk_wg_uapi	*u;
	struct mk_wg_nl		*nl;
};

/* Whether name is a kernel WireGuard link in this namespace. */
static bool
kernel_link(const char *name)
{
	struct mk_rtnl *r;
	struct mk_rtnl_link l;
	bool yes;

	if (mk_rtnl_open(&r) != 0)
		return false;
	yes = mk_rtnl_link_get(r, name, &l) == 0 &&
	    strcmp(l.kind, "wireguard") == 0;
	mk_rtnl_close(r);
	return yes;
}

int
mk_wg_open(struct mk_wg **out, const char *name, const char **why)
{
	struct mk_wg *h;
	int saved;

	*out = NULL;
	if (!mk_wg_ifname_valid(name)) {
		*why = "not a valid interface name";
		errno = EINVAL;
		return -1;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL) {
		*why = "out of memory";
		return -1;
	}
	snprintf(h->name, sizeof(h->name), "%s", name);
	/* Userspace first, as wg does: its socket is authoritative. */
	if (mk_wg_uapi_open(&h->u, name) == 0) {
		h->backend = MK_WG_USERSPACE;
		*out = h;
		return 0;
	}
	if (errno != ENOENT && errno != ECONNREFUSED) {
		*why = "cannot connect to the UAPI socket";
		goto fail;
	}
	if (!kernel_link(name)) {
		*why = "no such WireGuard interface";
		errno = ENODEV;
		goto fail;
	}
	if (mk_wg_nl_open(&h->nl) != 0) {
		*why = "cannot open generic netlink";
		goto fail;
	}
	h->backend = MK_WG_KERNEL;
	*out = h;
	return 0;
fail:
	saved = errno;
	free(h);
	errno = saved;
	return -1;
}

enum mk_wg_backend
mk_wg_backend_of(const struct mk_wg *h)
{
	return h->backend;
}

int
mk_wg_get(struct mk_wg *h, struct mk_wg_device *dev, const char **why)
{
	int rc;

	if (h->backend == MK_WG_USERSPACE)
		rc = mk_wg_uapi_get(h->u, dev, why);
	else
		rc = mk_wg_nl_get(h->nl, h->name, dev, why);
	if (rc == 0)
		snprintf(dev->name, sizeof(dev->name), "%s", h->name);
	return rc;
}

int
mk_wg_set(struct mk_wg *h, const struct mk_wg_device *dev, const char **why)
{
	if (h->backend == MK_WG_USERSPACE)
		return mk_wg_uapi_set(h->u, dev, why);
	return mk_wg_nl_set(h->nl, h->name, dev, why);
}

unsigned
mk_wg_messages(const struct mk_wg *h)
{
	return h->backend == MK_WG_USERSPACE ? 1 :
	    mk_wg_nl_last_messages(h->nl);
}

void
mk_wg_close(struct mk_wg *h)
{
	if (h == NULL)
		return;
	mk_wg_uapi_close(h->u);
	mk_wg_nl_close(h->nl);
	free(h);
}

int
mk_wg_get_device(const char *name, struct mk_wg_device *dev,
    const char **why)
{
	struct mk_wg *h;
	int rc, saved;

	if (mk_wg_open(&h, name, why) != 0)
		return -1;
	rc = mk_wg_get(h, dev, why);
	saved = errno;
	mk_wg_close(h);
	errno = saved;
	return rc;
}

int
mk_wg_set_device(const char *name, const struct mk_wg_device *dev,
    const char **why)
{
	struct mk_wg *h;
	int rc, saved;

	if (mk_wg_open(&h, name, why) != 0)
		return -1;
	rc = mk_wg_set(h, dev, why);
	saved = errno;
	mk_wg_close(h);
	errno = saved;
	return rc;
}

/* ---- create and destroy ---- */

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait up to ms for the process behind pidfd to end. 1 ended, 0 not. */
static int
pidfd_wait(int pidfd, int ms)
{
	struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
	int64_t end = now_ms() + ms, left;
	int n;

	for (;;) {
		left = end - now_ms();
		if (left < 0)
			left = 0;
		n = poll(&pfd, 1, (int)left);
		if (n > 0)
			return 1;
		if (n == 0 || (n < 0 && errno != EINTR))
			return 0;
	}
}

/* The last non-empty line the child wrote, for the error message. */
static void
child_words(int memfd, char *out, size_t n)
{
	char buf[4096], *end, *line;
	off_t size;
	ssize_t got;
	size_t len;

	out[0] = '\0';
	size = lseek(memfd, 0, SEEK_END);
	if (size <= 0)
		return;
	if (size > (off_t)sizeof(buf) - 1)
		size = (off_t)sizeof(buf) - 1;
	got = pread(memfd, buf, (size_t)size, lseek(memfd, 0, SEEK_END) -
	    size);
	if (got <= 0)
		return;
	buf[got] = '\0';
	end = buf + got;
	while (end > buf && (end[-1] == '\n' || end[-1] == '\r' ||
	    end[-1] == ' '))
		*--end = '\0';
	line = strrchr(buf, '\n');
	line = line ? line + 1 : buf;
	len = strlen(line);
	if (len >= n)
		len = n - 1;
	memcpy(out, line, len);
	out[len] = '\0';
}

/* environ plus WG_PROCESS_FOREGROUND=1 (replacing any other value). */
static char **
child_env(void)
{
	static char fg[] = "WG_PROCESS_FOREGROUND=1";
	char **env;
	size_t n = 0, i, j = 0;

	while (environ[n] != NULL)
		n++;
	if ((env = calloc(n + 2, sizeof(*env))) == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		if (strncmp(environ[i], "WG_PROCESS_FOREGROUND=", 22) != 0)
			env[j++] = environ[i];
	env[j++] = fg;
	env[j] = NULL;
	return env;
}

static int
spawn_impl(const char *impl, const char *name, int memfd, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, def;
	char *argv[4], **env;
	int rc;

	if ((env = child_env()) == NULL)
		return ENOMEM;
	argv[0] = (char *)impl;
	argv[1] = (char *)"-f";
	argv[2] = (char *)name;
	argv[3] = NULL;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	sigfillset(&def);
	/* Its own session (a terminal's ^C is not for it), default signal
	 * handling, no descriptor of ours: output to the memfd only, so a
	 * caller's pipe does not stay open while it runs. */
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID |
	    POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &def);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, memfd, 1);
	posix_spawn_file_actions_adddup2(&fa, memfd, 2);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	rc = posix_spawnp(pid, impl, &fa, &at, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	free(env);
	return rc;
}

/* Stop a process we hold a pidfd for: wait, then TERM, then KILL. */
static void
stop_process(int pidfd, pid_t pid, int ms)
{
	if (!pidfd_wait(pidfd, ms)) {
		pidfd_send_signal(pidfd, SIGTERM, NULL, 0);
		if (!pidfd_wait(pidfd, 2000)) {
			pidfd_send_signal(pidfd, SIGKILL, NULL, 0);
			pidfd_wait(pidfd, 2000);
		}
	}
	/* Reap it if it is our child; ECHILD otherwise, which is fine. */
	waitpid(pid, NULL, WNOHANG);
}

static int
create_userspace(const char *name, const struct mk_wg_create_opts *o,
    pid_t *pidp, char *err, size_t errlen)
{
	const char *impl = o->impl ? o->impl : MK_WG_DEFAULT_IMPL;
	int timeout = o->timeout_ms > 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
	struct mk_wg_uapi *u;
	struct mk_rtnl *r = NULL;
	struct mk_rtnl_link l;
	char words[512];
	int memfd, pidfd = -1, status, rc, saved = 0;
	int64_t end;
	pid_t pid;

	if ((memfd = memfd_create("wgsetup-child", MFD_CLOEXEC)) < 0) {
		saved = errno;
		snprintf(err, errlen, "memfd_create: %s", strerror(saved));
		errno = saved;
		return -1;
	}
	if ((rc = spawn_impl(impl, name, memfd, &pid)) != 0) {
		close(memfd);
		snprintf(err, errlen, "cannot start %s: %s", impl,
		    strerror(rc));
		errno = rc;
		return -1;
	}
	if ((pidfd = pidfd_open(pid, 0)) < 0 || mk_rtnl_open(&r) != 0) {
		saved = errno;
		snprintf(err, errlen, "cannot watch %s: %s", impl,
		    strerror(saved));
		if (pidfd < 0)
			kill(pid, SIGKILL);
		goto fail;
	}
	end = now_ms() + timeout;
	for (;;) {
		if (mk_wg_uapi_open(&u, name) == 0) {
			mk_wg_uapi_close(u);
			/* The TUN comes before the socket in wireguard-go;
			 * check it is here, in this namespace. */
			if (mk_rtnl_link_get(r, name, &l) == 0)
				break;
		}
		if (pidfd_wait(pidfd, 10)) {
			waitpid(pid, &status, 0);
			child_words(memfd, words, sizeof(words));
			if (WIFEXITED(status))
				snprintf(err, errlen, "%s exited with status "
				    "%d%s%s", impl, WEXITSTATUS(status),
				    words[0] ? ": " : "", words);
			else
				snprintf(err, errlen, "%s died of signal %d",
				    impl, WTERMSIG(status));
			saved = EIO;
			goto out_reaped;
		}
		if (now_ms() > end) {
			snprintf(err, errlen, "%s did not open %s/%s.sock "
			    "within %d ms", impl, MK_WG_SOCK_DIR, name,
			    timeout);
			saved = ETIMEDOUT;
			goto fail;
		}
	}
	mk_rtnl_close(r);
	close(pidfd);
	close(memfd);
	*pidp = pid;
	return 0;
fail:
	if (pidfd >= 0) {
		pidfd_send_signal(pidfd, SIGTERM, NULL, 0);
		stop_process(pidfd, pid, 2000);
	} else
		waitpid(pid, NULL, 0);
out_reaped:
	if (pidfd >= 0)
		close(pidfd);
	mk_rtnl_close(r);
	close(memfd);
	errno = saved ? saved : EIO;
	return -1;
}

int
mk_wg_create(const char *name, const struct mk_wg_create_opts *o,
    enum mk_wg_backend *used, pid_t *pid, char *err, size_t errlen)
{
	struct mk_rtnl *r;
	struct mk_rtnl_link l;
	int rc, saved;

	*pid = 0;
	*used = MK_WG_AUTO;
	if (!mk_wg_ifname_valid(name)) {
		snprintf(err, errlen, "not a valid interface name");
		errno = EINVAL;
		return -1;
	}
	if (mk_wg_uapi_exists(name)) {
		snprintf(err, errlen, "a userspace WireGuard already serves "
		    "this name");
		errno = EEXIST;
		return -1;
	}
	if (mk_rtnl_open(&r) != 0) {
		saved = errno;
		snprintf(err, errlen, "rtnetlink: %s", strerror(saved));
		errno = saved;
		return -1;
	}
	if (mk_rtnl_link_get(r, name, &l) == 0) {
		mk_rtnl_close(r);
		snprintf(err, errlen, "interface exists");
		errno = EEXIST;
		return -1;
	}
	if (o->backend != MK_WG_USERSPACE) {
		rc = mk_rtnl_link_add(r, name, "wireguard");
		saved = errno;
		if (rc == 0) {
			mk_rtnl_close(r);
			*used = MK_WG_KERNEL;
			return 0;
		}
		/* EOPNOTSUPP: the kernel has no WireGuard link type. */
		if (o->backend == MK_WG_KERNEL || saved != EOPNOTSUPP) {
			mk_rtnl_close(r);
			snprintf(err, errlen, "cannot create the link: %s",
			    strerror(saved));
			errno = saved;
			return -1;
		}
	}
	mk_rtnl_close(r);
	if (create_userspace(name, o, pid, err, errlen) != 0)
		return -1;
	*used = MK_WG_USERSPACE;
	return 0;
}

int
mk_wg_destroy(const char *name, int timeout_ms, const char **why)
{
	struct mk_wg_uapi *u;
	struct mk_rtnl *r = NULL;
	struct mk_rtnl_link l;
	char path[128];
	pid_t pid = -1;
	int pidfd = -1, saved, rc = -1;
	bool have_link;

	if (timeout_ms <= 0)
		timeout_ms = DEFAULT_TIMEOUT_MS;
	if (!mk_wg_ifname_valid(name)) {
		*why = "not a valid interface name";
		errno = EINVAL;
		return -1;
	}
	/* Take hold of the process while its socket holds it alive, so
	 * the pid cannot be another process's by the time we signal. */
	if (mk_wg_uapi_open(&u, name) == 0) {
		pid = mk_wg_uapi_pid(u);
		if (pid > 0)
			pidfd = pidfd_open(pid, 0);
		mk_wg_uapi_close(u);
	}
	if (mk_rtnl_open(&r) != 0) {
		*why = "cannot open rtnetlink";
		goto out;
	}
	have_link = mk_rtnl_link_get(r, name, &l) == 0;
	if (have_link && strcmp(l.kind, "wireguard") != 0 &&
	    !(pid > 0 && strcmp(l.kind, "tun") == 0))
		have_link = false;	/* somebody else's interface */
	if (!have_link) {
		/* A socket whose TUN is not here belongs to another
		 * namespace: not ours to stop. */
		*why = pid > 0 ? "the userspace interface is not in this "
		    "network namespace" : "no such WireGuard interface";
		errno = ENODEV;
		goto out;
	}
	/* Deleting the link takes its addresses and routes with it, and
	 * makes a userspace implementation exit. */
	if (mk_rtnl_link_del(r, l.ifindex) != 0 && errno != ENODEV) {
		*why = "cannot delete the link";
		goto out;
	}
	if (pidfd >= 0)
		stop_process(pidfd, pid, timeout_ms);
	/* A killed implementation leaves its socket file behind. */
	if (pid > 0 && !mk_wg_uapi_exists(name) &&
	    mk_wg_uapi_path(path, sizeof(path), name) == 0)
		unlink(path);
	rc = 0;
out:
	saved = errno;
	if (pidfd >= 0)
		close(pidfd);
	mk_rtnl_close(r);
	errno = saved;
	return rc;
}

bool
mk_wg_exists(const char *name)
{
	if (!mk_wg_ifname_valid(name))
		return false;
	return mk_wg_uapi_exists(name) || kernel_link(name);
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
mk_wg_list(char ***names, size_t *n)
{
	struct mk_rtnl *r;
	char **kern = NULL, **tmp = NULL, **out = NULL, *s;
	size_t nk = 0, nt = 0, cap = 0, bytes = 0, i, j;
	struct dirent *de;
	DIR *d;
	size_t len;
	int rc = -1;

	if (mk_rtnl_open(&r) != 0)
		return -1;
	if (mk_rtnl_link_names(r, "wireguard", &kern, &nk) != 0) {
		mk_rtnl_close(r);
		return -1;
	}
	mk_rtnl_close(r);
	cap = nk + 16;
	if ((tmp = calloc(cap, sizeof(*tmp))) == NULL)
		goto out;
	for (i = 0; i < nk; i++)
		tmp[nt++] = kern[i];
	if ((d = opendir(MK_WG_SOCK_DIR)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			char name[MK_WG_IFNAMSIZ];

			len = strlen(de->d_name);
			if (len <= 5 || len - 5 >= sizeof(name) ||
			    strcmp(de->d_name + len - 5, ".sock") != 0)
				continue;
			memcpy(name, de->d_name, len - 5);
			name[len - 5] = '\0';
			if (!mk_wg_ifname_valid(name) ||
			    !mk_wg_uapi_exists(name))
				continue;
			if (nt == cap) {
				char **grown = realloc(tmp, 2 * cap *
				    sizeof(*tmp));

				if (grown == NULL) {
					closedir(d);
					goto out;
				}
				tmp = grown;
				cap *= 2;
			}
			if ((tmp[nt] = strdup(name)) == NULL) {
				closedir(d);
				goto out;
			}
			nt++;
		}
		closedir(d);
	}
	qsort(tmp, nt, sizeof(*tmp), name_cmp);
	for (i = 0; i < nt; i++)
		bytes += strlen(tmp[i]) + 1;
	if ((out = malloc((nt + 1) * sizeof(*out) + bytes)) == NULL)
		goto out;
	s = (char *)(out + nt + 1);
	for (i = j = 0; i < nt; i++) {
		if (j > 0 && strcmp(out[j - 1], tmp[i]) == 0)
			continue;
		out[j++] = s;
		s = stpcpy(s, tmp[i]) + 1;
	}
	out[j] = NULL;
	*names = out;
	*n = j;
	rc = 0;
out:
	/* tmp's first nk entries point into kern's one allocation. */
	for (i = nk; tmp != NULL && i < nt; i++)
		free(tmp[i]);
	free(tmp);
	free(kern);
	return rc;
}
