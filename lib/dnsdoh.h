/* SPDX-License-Identifier: MIT */
/*
 * DNS over HTTPS (RFC 8484) requests through libcurl's multi interface,
 * its sockets and timer driven by an mk_loop: a POST of
 * application/dns-message over HTTP/2, many queries multiplexed on one
 * connection, and never a blocking call on the loop.
 */
#ifndef MK_DNSDOH_H
#define MK_DNSDOH_H

#include <stddef.h>
#include <stdint.h>

struct mk_loop;
struct mk_doh;
struct mk_doh_req;

/*
 * A finished request: ok is 1 for HTTP 200 with a dns-message body, 0
 * otherwise (why then says what went wrong, body is NULL). The request is
 * gone when this runs: do not cancel it.
 */
typedef void (*mk_doh_fn)(void *arg, int ok, const uint8_t *body,
    size_t len, const char *why);

/*
 * cafile: PEM certificates to trust instead of the system's (NULL for
 * those). 0, or -1 with *why.
 */
int mk_doh_new(struct mk_doh **out, struct mk_loop *l, const char *cafile,
    const char **why);
/* Cancel every request (no callback runs) and free. NULL-safe. */
void mk_doh_free(struct mk_doh *d);

/*
 * Pin "HOST:PORT:ADDR" (curl's CURLOPT_RESOLVE form) so the host name in
 * a URL is never looked up while the loop runs, and never through the
 * resolver this program may itself be. 0 or -1.
 */
int mk_doh_resolve(struct mk_doh *d, const char *host_port_addr);

/* POST q to url; fn runs once, later, from the loop. NULL on failure. */
struct mk_doh_req *mk_doh_post(struct mk_doh *d, const char *url,
    const uint8_t *q, size_t len, uint64_t timeout_ms, mk_doh_fn fn,
    void *arg);
/* Drop a request; its callback will not run. */
void mk_doh_cancel(struct mk_doh *d, struct mk_doh_req *r);

#endif
