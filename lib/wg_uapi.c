/* SPDX-License-Identifier: MIT */
#include "wg_uapi.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"

#define MAX_ANSWER	(256U << 20)	/* a get of a million peers fits */

struct mk_wg_uapi {
	int	fd;
	pid_t	pid;
};

static bool
key_is_zero(const struct mk_key *k)
{
	return sodium_is_zero(k->b, MK_KEY_LEN) != 0;
}

/* A growing text buffer; on allocation failure err is set and the rest
 * are no-ops. */
struct sbuf {
	char	*p;
	size_t	 len;
	size_t	 cap;
	bool	 err;
};

static void
sb_reserve(struct sbuf *b, size_t more)
{
	size_t cap;
	char *grown;

	if (b->err || b->len + more + 1 <= b->cap)
		return;
	cap = b->cap ? b->cap : 4096;
	while (cap < b->len + more + 1)
		cap *= 2;
	if ((grown = realloc(b->p, cap)) == NULL) {
		b->err = true;
		return;
	}
	b->p = grown;
	b->cap = cap;
}

static void __attribute__((format(printf, 2, 3)))
sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	sb_reserve(b, 128);
	if (b->err)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->err = true;
		return;
	}
	if ((size_t)n >= b->cap - b->len) {
		sb_reserve(b, (size_t)n);
		if (b->err)
			return;
		va_start(ap, fmt);
		vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

int
mk_wg_uapi_path(char *buf, size_t n, const char *name)
{
	int len;

	len = snprintf(buf, n, "%s/%s.sock", MK_WG_SOCK_DIR, name);
	if (len < 0 || (size_t)len >= n) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int
mk_wg_uapi_open(struct mk_wg_uapi **out, const char *name)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct mk_wg_uapi *u;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct stat st;
	int fd, saved;

	*out = NULL;
	if (mk_wg_uapi_path(sun.sun_path, sizeof(sun.sun_path), name) != 0)
		return -1;
	if (stat(sun.sun_path, &st) != 0)
		return -1;
	if (!S_ISSOCK(st.st_mode)) {
		errno = ENOENT;
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	if ((u = calloc(1, sizeof(*u))) == NULL) {
		close(fd);
		errno = ENOMEM;
		return -1;
	}
	u->fd = fd;
	u->pid = -1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0 &&
	    cred.pid > 0)
		u->pid = cred.pid;
	*out = u;
	return 0;
}

void
mk_wg_uapi_close(struct mk_wg_uapi *u)
{
	if (u == NULL)
		return;
	close(u->fd);
	free(u);
}

pid_t
mk_wg_uapi_pid(const struct mk_wg_uapi *u)
{
	return u->pid;
}

bool
mk_wg_uapi_exists(const char *name)
{
	struct mk_wg_uapi *u;

	if (mk_wg_uapi_open(&u, name) != 0)
		return false;
	mk_wg_uapi_close(u);
	return true;
}

/* Write all of buf. MSG_NOSIGNAL: an implementation that hangs up
 * mid-request (it refused a line) must not kill the caller with SIGPIPE. */
static int
send_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read until the answer's closing empty line. */
static int
read_answer(int fd, struct sbuf *b, const char **why)
{
	ssize_t n;

	b->len = 0;
	for (;;) {
		sb_reserve(b, 65536);
		if (b->err) {
			*why = "out of memory";
			errno = ENOMEM;
			return -1;
		}
		n = read(fd, b->p + b->len, b->cap - b->len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*why = "cannot read the UAPI socket";
			return -1;
		}
		if (n == 0) {
			*why = "the UAPI socket closed mid-answer";
			errno = EPROTO;
			return -1;
		}
		b->len += (size_t)n;
		b->p[b->len] = '\0';
		if (b->len >= 2 && b->p[b->len - 1] == '\n' &&
		    b->p[b->len - 2] == '\n')
			return 0;
		if (b->len > MAX_ANSWER) {
			*why = "UAPI answer too long";
			errno = EFBIG;
			return -1;
		}
	}
}

/* ---- get ---- */

static int
num(const char *v, unsigned long long max, unsigned long long *out)
{
	long long n;

	/* mk_strtonum takes digits only and caps at LLONG_MAX. */
	if (max > (unsigned long long)INT64_MAX) {
		char *end;

		if (*v < '0' || *v > '9')
			return -1;
		errno = 0;
		*out = strtoull(v, &end, 10);
		return (*end != '\0' || errno != 0) ? -1 : 0;
	}
	if (mk_strtonum(v, 0, (long long)max, &n) != 0)
		return -1;
	*out = (unsigned long long)n;
	return 0;
}

static int
hexkey(struct mk_key *k, const char *v)
{
	return mk_hex_decode(k->b, MK_KEY_LEN, v, strlen(v));
}

static int
parse_line(struct mk_wg_device *dev, struct mk_wg_peer **peer, char *key,
    char *val, int *err_no, const char **why)
{
	struct mk_wg_peer *p = *peer;
	struct mk_wg_allowedip a;
	unsigned long long n;
	struct mk_key k;

	if (p == NULL && strcmp(key, "private_key") == 0) {
		if (hexkey(&dev->private_key, val) != 0)
			goto bad;
		dev->flags |= MK_WG_DEV_HAS_PRIVATE_KEY;
		/* An all-zero key means none; no public key then. */
		if (key_is_zero(&dev->private_key)) {
			dev->flags &= ~MK_WG_DEV_HAS_PRIVATE_KEY;
		} else if (mk_key_public(&dev->public_key,
		    &dev->private_key) == 0)
			dev->flags |= MK_WG_DEV_HAS_PUBLIC_KEY;
	} else if (p == NULL && strcmp(key, "listen_port") == 0) {
		if (num(val, 65535, &n) != 0)
			goto bad;
		dev->listen_port = (uint16_t)n;
		dev->flags |= MK_WG_DEV_HAS_LISTEN_PORT;
	} else if (p == NULL && strcmp(key, "fwmark") == 0) {
		if (num(val, UINT32_MAX, &n) != 0)
			goto bad;
		dev->fwmark = (uint32_t)n;
		dev->flags |= MK_WG_DEV_HAS_FWMARK;
	} else if (strcmp(key, "public_key") == 0) {
		if (hexkey(&k, val) != 0)
			goto bad;
		if ((*peer = mk_wg_device_add_peer(dev, &k)) == NULL) {
			*why = "out of memory";
			return -1;
		}
	} else if (strcmp(key, "errno") == 0) {
		if (val[0] == '-')
			val++;
		if (num(val, INT32_MAX, &n) != 0)
			goto bad;
		*err_no = (int)n;
	} else if (p == NULL) {
		/* Unknown device keys are for newer implementations. */
		return 0;
	} else if (strcmp(key, "preshared_key") == 0) {
		if (hexkey(&p->preshared_key, val) != 0)
			goto bad;
		if (!key_is_zero(&p->preshared_key))
			p->flags |= MK_WG_PEER_HAS_PRESHARED_KEY;
	} else if (strcmp(key, "endpoint") == 0) {
		if (mk_addr_parse(&p->endpoint, val, 0, MK_ADDR_NEED_PORT,
		    why) != 0)
			goto bad;
		p->flags |= MK_WG_PEER_HAS_ENDPOINT;
	} else if (strcmp(key, "persistent_keepalive_interval") == 0) {
		if (num(val, 65535, &n) != 0)
			goto bad;
		p->keepalive = (uint16_t)n;
		p->flags |= MK_WG_PEER_HAS_KEEPALIVE;
	} else if (strcmp(key, "allowed_ip") == 0) {
		if (mk_wg_allowedip_parse(&a, val, why) != 0 ||
		    strchr(val, '/') == NULL)
			goto bad;
		if (mk_wg_peer_add_allowedip(p, &a) != 0) {
			*why = "out of memory";
			return -1;
		}
	} else if (strcmp(key, "last_handshake_time_sec") == 0) {
		if (num(val, INT64_MAX, &n) != 0)
			goto bad;
		p->last_handshake_sec = (int64_t)n;
	} else if (strcmp(key, "last_handshake_time_nsec") == 0) {
		if (num(val, INT64_MAX, &n) != 0)
			goto bad;
		p->last_handshake_nsec = (int64_t)n;
	} else if (strcmp(key, "rx_bytes") == 0) {
		if (num(val, UINT64_MAX, &n) != 0)
			goto bad;
		p->rx_bytes = n;
	} else if (strcmp(key, "tx_bytes") == 0) {
		if (num(val, UINT64_MAX, &n) != 0)
			goto bad;
		p->tx_bytes = n;
	}
	return 0;
bad:
	*why = "malformed UAPI answer";
	errno = EPROTO;
	return -1;
}

int
mk_wg_uapi_parse(const char *buf, size_t len, struct mk_wg_device *dev,
    int *err_no, const char **why)
{
	struct mk_wg_peer *peer = NULL;
	const char *line, *nl, *end = buf + len;
	char tmp[256], *eq;
	size_t n;
	bool have_errno = false;

	mk_wg_device_clear(dev);
	*err_no = 0;
	for (line = buf; line < end; line = nl + 1) {
		nl = memchr(line, '\n', (size_t)(end - line));
		if (nl == NULL)
			break;		/* an unterminated tail is malformed */
		n = (size_t)(nl - line);
		if (n == 0) {
			if (!have_errno)
				break;
			return 0;
		}
		if (have_errno || n >= sizeof(tmp) ||
		    memchr(line, '\0', n) != NULL)
			break;
		memcpy(tmp, line, n);
		tmp[n] = '\0';
		if ((eq = strchr(tmp, '=')) == NULL || eq == tmp)
			break;
		*eq++ = '\0';
		if (parse_line(dev, &peer, tmp, eq, err_no, why) != 0) {
			sodium_memzero(tmp, sizeof(tmp));
			mk_wg_device_clear(dev);
			return -1;
		}
		if (strcmp(tmp, "errno") == 0)
			have_errno = true;
		/* The private key passed through tmp. */
		sodium_memzero(tmp, sizeof(tmp));
	}
	mk_wg_device_clear(dev);
	*why = "malformed UAPI answer";
	errno = EPROTO;
	return -1;
}

int
mk_wg_uapi_get(struct mk_wg_uapi *u, struct mk_wg_device *dev,
    const char **why)
{
	static const char req[] = "get=1\n\n";
	struct sbuf b = { 0 };
	int err_no, rc = -1;

	mk_wg_device_clear(dev);
	if (send_all(u->fd, req, sizeof(req) - 1) != 0) {
		*why = "cannot write to the UAPI socket";
		return -1;
	}
	if (read_answer(u->fd, &b, why) != 0)
		goto out;
	if (mk_wg_uapi_parse(b.p, b.len, dev, &err_no, why) != 0)
		goto out;
	if (err_no != 0) {
		mk_wg_device_clear(dev);
		*why = "the implementation refused to report";
		errno = err_no;
		goto out;
	}
	rc = 0;
out:
	if (b.p != NULL)
		sodium_memzero(b.p, b.cap);
	free(b.p);
	return rc;
}

/* ---- set ---- */

static void
put_key(struct sbuf *b, const char *name, const struct mk_key *k)
{
	char hex[MK_KEY_HEXLEN + 1];

	mk_key_to_hex(hex, k);
	sb_printf(b, "%s=%s\n", name, hex);
	sodium_memzero(hex, sizeof(hex));
}

int
mk_wg_uapi_format(const struct mk_wg_device *dev, char **out, size_t *len)
{
	struct sbuf b = { 0 };
	const struct mk_wg_peer *p;
	char a[MK_ADDRSTRLEN];
	size_t i, j;

	sb_printf(&b, "set=1\n");
	if (dev->flags & MK_WG_DEV_HAS_PRIVATE_KEY)
		put_key(&b, "private_key", &dev->private_key);
	if (dev->flags & MK_WG_DEV_HAS_LISTEN_PORT)
		sb_printf(&b, "listen_port=%u\n", dev->listen_port);
	if (dev->flags & MK_WG_DEV_HAS_FWMARK)
		sb_printf(&b, "fwmark=%" PRIu32 "\n", dev->fwmark);
	if (dev->flags & MK_WG_DEV_REPLACE_PEERS)
		sb_printf(&b, "replace_peers=true\n");
	for (i = 0; i < dev->n_peers; i++) {
		p = &dev->peers[i];
		put_key(&b, "public_key", &p->public_key);
		if (p->flags & MK_WG_PEER_REMOVE_ME) {
			sb_printf(&b, "remove=true\n");
			continue;
		}
		if (p->flags & MK_WG_PEER_UPDATE_ONLY)
			sb_printf(&b, "update_only=true\n");
		if (p->flags & MK_WG_PEER_HAS_PRESHARED_KEY)
			put_key(&b, "preshared_key", &p->preshared_key);
		if ((p->flags & MK_WG_PEER_HAS_ENDPOINT) && p->endpoint.len)
			sb_printf(&b, "endpoint=%s\n",
			    mk_addr_fmt(&p->endpoint, a, sizeof(a)));
		if (p->flags & MK_WG_PEER_HAS_KEEPALIVE)
			sb_printf(&b, "persistent_keepalive_interval=%u\n",
			    p->keepalive);
		/* After replace_peers every peer is new and has no allowed
		 * IPs to replace; saying so anyway costs wireguard-go a walk
		 * of its table per peer. */
		if ((p->flags & MK_WG_PEER_REPLACE_ALLOWEDIPS) &&
		    !(dev->flags & MK_WG_DEV_REPLACE_PEERS))
			sb_printf(&b, "replace_allowed_ips=true\n");
		for (j = 0; j < p->n_allowedips; j++)
			sb_printf(&b, "allowed_ip=%s\n", mk_wg_allowedip_fmt(
			    &p->allowedips[j], a, sizeof(a)));
	}
	sb_printf(&b, "\n");
	if (b.err) {
		if (b.p != NULL)
			sodium_memzero(b.p, b.cap);
		free(b.p);
		errno = ENOMEM;
		return -1;
	}
	*out = b.p;
	*len = b.len;
	return 0;
}

int
mk_wg_uapi_set(struct mk_wg_uapi *u, const struct mk_wg_device *dev,
    const char **why)
{
	struct sbuf b = { 0 };
	char *req = NULL;
	size_t len = 0;
	struct mk_wg_device none = { 0 };
	int err_no, rc = -1;

	if (mk_wg_uapi_format(dev, &req, &len) != 0) {
		*why = "out of memory";
		return -1;
	}
	/* An implementation that refuses a line answers at once and hangs
	 * up without reading the rest: its answer still says why. */
	if (send_all(u->fd, req, len) != 0 && errno != EPIPE &&
	    errno != ECONNRESET) {
		*why = "cannot write to the UAPI socket";
		goto out;
	}
	if (read_answer(u->fd, &b, why) != 0)
		goto out;
	if (mk_wg_uapi_parse(b.p, b.len, &none, &err_no, why) != 0)
		goto out;
	mk_wg_device_clear(&none);
	if (err_no != 0) {
		*why = "the implementation refused the configuration";
		errno = err_no;
		goto out;
	}
	rc = 0;
out:
	sodium_memzero(req, len);
	free(req);
	free(b.p);
	return rc;
}
