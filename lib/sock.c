/* SPDX-License-Identifier: MIT */
#include "sock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

int
mk_udp_bind(const struct mk_addr *local, unsigned flags, const char **why)
{
	int fd, on = 1, off = 0, family = mk_addr_family(local), saved;

	fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*why = "socket";
		return -1;
	}
	if (family == AF_INET6) {
		int v6only = (flags & MK_SOCK_DUALSTACK) ? off : on;

		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only,
		    sizeof(v6only)) != 0) {
			*why = "setsockopt IPV6_V6ONLY";
			goto fail;
		}
	}
	if ((flags & MK_SOCK_REUSEADDR) && setsockopt(fd, SOL_SOCKET,
	    SO_REUSEADDR, &on, sizeof(on)) != 0) {
		*why = "setsockopt SO_REUSEADDR";
		goto fail;
	}
	if ((flags & MK_SOCK_FREEBIND) && setsockopt(fd, family == AF_INET6 ?
	    IPPROTO_IPV6 : IPPROTO_IP, family == AF_INET6 ? IPV6_FREEBIND :
	    IP_FREEBIND, &on, sizeof(on)) != 0) {
		*why = "setsockopt FREEBIND";
		goto fail;
	}
	if (bind(fd, &local->sa, local->len) != 0) {
		*why = "bind";
		goto fail;
	}
	return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

int
mk_udp_adopt(int fd, const char **why)
{
	int type, fl, family;
	socklen_t len = sizeof(type);

	if (fcntl(fd, F_GETFD) < 0) {
		*why = "descriptor is not open";
		return -1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) {
		*why = errno == ENOTSOCK ? "descriptor is not a socket" :
		    "getsockopt SO_TYPE";
		return -1;
	}
	if (type != SOCK_DGRAM) {
		*why = "descriptor is not a datagram socket";
		return -1;
	}
	family = mk_sock_family(fd);
	if (family != AF_INET && family != AF_INET6) {
		*why = "descriptor is not an IPv4 or IPv6 socket";
		return -1;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
		*why = "fcntl";
		return -1;
	}
	return 0;
}

int
mk_fd_parse(const char *s, int *fd)
{
	long long v;

	if (mk_strtonum(s, 0, INT_MAX, &v) != 0)
		return -1;
	*fd = (int)v;
	return 0;
}

int
mk_sock_local(int fd, struct mk_addr *a)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return -1;
	mk_addr_from_sa(a, (struct sockaddr *)&ss, len);
	return 0;
}

int
mk_sock_family(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return -1;
	return ss.ss_family;
}

int
mk_route_source(const struct mk_addr *dst, struct mk_addr *src)
{
	int fd, saved, rc = -1;

	fd = socket(mk_addr_family(dst), SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, &dst->sa, dst->len) == 0 && mk_sock_local(fd, src) == 0)
		rc = 0;
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

void
mk_addr_for_socket(struct mk_addr *out, const struct mk_addr *in,
    int sock_family)
{
	uint8_t mapped[16] = { [10] = 0xff, [11] = 0xff };
	in_port_t port;

	*out = *in;
	if (sock_family != AF_INET6 || mk_addr_family(in) != AF_INET)
		return;
	/* read all of in first: out may be in */
	memcpy(mapped + 12, &in->sin.sin_addr, 4);
	port = in->sin.sin_port;
	memset(out, 0, sizeof(*out));
	out->sin6.sin6_family = AF_INET6;
	memcpy(&out->sin6.sin6_addr, mapped, 16);
	out->sin6.sin6_port = port;
	out->len = sizeof(out->sin6);
}
