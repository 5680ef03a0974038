/* SPDX-License-Identifier: MIT */
/*
 * Socket addresses: parse and format "ip", "ip:port", "[v6]:port", look up
 * host names through getaddrinfo, compare. IPv4-mapped IPv6 addresses are
 * folded to plain IPv4 (as Tailscale's Unmap does) wherever they are parsed.
 */
#ifndef MK_ADDR_H
#define MK_ADDR_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* Longest text form: "[" v6 "%scope]:65535" plus NUL. */
#define MK_ADDRSTRLEN (INET6_ADDRSTRLEN + 8 + 16)

struct mk_addr {
	union {
		struct sockaddr sa;
		struct sockaddr_in sin;
		struct sockaddr_in6 sin6;
		struct sockaddr_storage ss;
	};
	socklen_t len;		/* 0 means "no address" */
};

/* mk_addr_parse flags */
#define MK_ADDR_NEED_PORT	(1U << 0)	/* "1.2.3.4" alone is an error */
#define MK_ADDR_NO_PORT		(1U << 1)	/* a port is an error */

/*
 * Parse a numeric address: "1.2.3.4", "1.2.3.4:53", "::1", "[::1]", "[::1]:53".
 * A missing port becomes default_port. Returns 0, or -1 with *why set to a
 * static reason ("bad port", "not a numeric address", ...).
 */
int mk_addr_parse(struct mk_addr *out, const char *s, uint16_t default_port,
    unsigned flags, const char **why);

/*
 * Like mk_addr_parse, but a host name is looked up with getaddrinfo
 * (family AF_UNSPEC, AF_INET or AF_INET6; first result wins). Blocking:
 * never call this from a packet loop. Returns 0, or -1 with *why set
 * (gai_strerror text or a parse reason).
 */
int mk_addr_resolve(struct mk_addr *out, const char *s, uint16_t default_port,
    int family, const char **why);

/* Split "host:port" / "[v6]:port" / "host" into host and port strings. */
int mk_addr_split(const char *s, char *host, size_t hostlen, char *port,
    size_t portlen);

/* "1.2.3.4:5" or "[2001:db8::1]:5"; returns buf. An empty address is "-". */
char *mk_addr_fmt(const struct mk_addr *a, char *buf, size_t n);
/* Only the address, no port or brackets. */
char *mk_addr_fmt_ip(const struct mk_addr *a, char *buf, size_t n);

void mk_addr_from_v4(struct mk_addr *a, const uint8_t ip[4], uint16_t port);
void mk_addr_from_v6(struct mk_addr *a, const uint8_t ip[16], uint16_t port);
/* ::ffff:a.b.c.d becomes a.b.c.d; anything else is left alone. */
void mk_addr_unmap(struct mk_addr *a);

int mk_addr_family(const struct mk_addr *a);
uint16_t mk_addr_port(const struct mk_addr *a);
void mk_addr_set_port(struct mk_addr *a, uint16_t port);
/* Same family, address and port. */
bool mk_addr_equal(const struct mk_addr *a, const struct mk_addr *b);
/* Same family and address; ports may differ. */
bool mk_addr_same_ip(const struct mk_addr *a, const struct mk_addr *b);
bool mk_addr_is_any(const struct mk_addr *a);
/* The wildcard address of a family with a port. */
void mk_addr_any(struct mk_addr *a, int family, uint16_t port);

/* Set from a kernel-provided sockaddr (copies, records len, unmaps). */
void mk_addr_from_sa(struct mk_addr *a, const struct sockaddr *sa,
    socklen_t len);

/* "host:port", in brackets when host is an IPv6 literal; port 0: the
 * host alone, bracketed the same way (for a URL's authority). Returns
 * what snprintf does. */
int mk_hostport_fmt(char *out, size_t cap, const char *host, unsigned port);

#endif
