/* SPDX-License-Identifier: MIT */
/*
 * The URLs a relay client meets: a DERP server ("https://host[:port]" or
 * "http://host:port", path empty or /derp, as mesh.conf's relay lines) and
 * an HTTP proxy ("http://[user:password@]host[:port]", as in HTTPS_PROXY).
 * Host names are kept as text and never resolved here.
 */
#ifndef MK_URL_H
#define MK_URL_H

#include <stdbool.h>
#include <stdint.h>

#include "addr.h"

#define MK_URL_RELAY	0	/* https:// or http://host:port, path /derp */
#define MK_URL_PROXY	1	/* http:// (or https://), any path ignored */

struct mk_url {
	bool		 tls;		/* https:// */
	char		 host[256];	/* no brackets; names lowercased */
	uint16_t	 port;		/* 443 / 80 when absent */
	bool		 numeric;	/* host is an IP address ... */
	struct mk_addr	 addr;		/* ... this one, with port */
	char		 authority[272]; /* host[:port] for Host and CONNECT */
	char		 userinfo[256];	/* proxy "user:password", decoded */
	char		 url[320];	/* normalised: scheme://host[:port]/derp */
};

/*
 * Parse s as kind (MK_URL_RELAY, MK_URL_PROXY). A relay URL without a
 * scheme is an error; a proxy "host:port" without one is taken as http://
 * (as curl and Go do). Returns 0, or -1 with *why.
 */
int mk_url_parse(struct mk_url *u, const char *s, int kind, const char **why);

/*
 * "host:port" (brackets for IPv6) with the port always present, for
 * CONNECT.
 */
void mk_url_hostport(const struct mk_url *u, char *out, size_t cap);

/*
 * Does NO_PROXY (comma- or space-separated: "*", names matching as a
 * suffix on a label boundary, with or without a leading dot, IP addresses,
 * optional :port) exempt this host? Loopback hosts ("localhost",
 * 127.0.0.0/8, ::1) are always exempt, as in Go's net/http.
 */
bool mk_url_no_proxy(const struct mk_url *u, const char *no_proxy);

/*
 * s (a proxy URL as given, valid or not) fit to log: a password in its
 * userinfo becomes "***" ("http://user:***@host:port"). Returns out.
 */
char *mk_url_redact(const char *s, char *out, size_t cap);

#endif
