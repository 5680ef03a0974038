/* SPDX-License-Identifier: MIT */
/*
 * The little HTTP/1.1 that DERP needs, as pure functions over buffers (so
 * they can be fuzzed): parse a request head (the server side of the
 * upgrade) and a response head (the client side, and an HTTPS proxy's
 * answer to CONNECT), and build the upgrade request, the exact 101 that
 * derper sends, CONNECT, and small complete responses.
 *
 * Only heads are parsed; bodies are never read (the server answers
 * everything but the upgrade with Connection: close).
 */
#ifndef MK_HTTP_H
#define MK_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "key.h"

#define MK_HTTP_MAX_HEAD	8192	/* request or response head, bytes */
#define MK_HTTP_MAX_FIELDS	64

struct mk_http_req {
	char	 method[16];
	char	 path[256];		/* without the query */
	char	 host[256];
	char	 upgrade[32];		/* lowercased; "" when absent */
	bool	 conn_upgrade;		/* Connection: has the upgrade token */
	bool	 fast_start;		/* Derp-Fast-Start: 1 */
	char	 ideal_node[64];	/* Ideal-Node */
	bool	 has_challenge;		/* X-Tailscale-Challenge, valid */
	char	 challenge[65];
	int	 minor;			/* HTTP/1.minor */
};

struct mk_http_resp {
	int	 status;
	int	 minor;
	char	 reason[64];
	char	 upgrade[32];		/* lowercased */
	int	 derp_version;		/* Derp-Version; 0 when absent */
	bool	 has_server_key;	/* Derp-Public-Key, 64 hex digits */
	uint8_t	 server_key[32];
};

/*
 * Parse a request head from the start of buf. Returns the length of the
 * head including its blank line, 0 when more bytes are needed, or -1 with
 * *why (malformed, or longer than MK_HTTP_MAX_HEAD). Bytes after the head
 * belong to the next protocol (DERP frames with fast start).
 */
long mk_http_parse_request(struct mk_http_req *r, const char *buf, size_t len,
    const char **why);
/* The same for a response head. */
long mk_http_parse_response(struct mk_http_resp *r, const char *buf,
    size_t len, const char **why);

/*
 * GET /derp with Upgrade: DERP and Connection: Upgrade, as Tailscale's
 * client sends it; host is the Host header value ("name" or "name:port").
 * fast_start adds Derp-Fast-Start: 1. Returns the length, 0 if cap is too
 * small (also for a host with CR, LF or NUL).
 */
size_t mk_http_upgrade_request(char *out, size_t cap, const char *host,
    bool fast_start);
/* The 101 derper writes, byte for byte (see protocols.md 1.1). */
size_t mk_http_101(char *out, size_t cap, const struct mk_key *server_pub);
/* CONNECT hostport; auth "user:password" (sent as Basic) or NULL. */
size_t mk_http_connect_request(char *out, size_t cap, const char *hostport,
    const char *auth);
/*
 * A complete response with Connection: close: status line, extra header
 * lines (each ending in \r\n, may be NULL), Content-Length and body (may
 * be NULL). head_only (HEAD) leaves the body out.
 */
size_t mk_http_response(char *out, size_t cap, int status,
    const char *extra, const char *body, bool head_only);
/* The reason phrase of a status code ("Switching Protocols"). */
const char *mk_http_reason(int status);

#endif
