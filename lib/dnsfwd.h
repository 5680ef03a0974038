/* SPDX-License-Identifier: MIT */
/*
 * The forwarding half of a stub resolver, on an mk_loop: queries that are
 * not ours go to every upstream at once (the first good answer wins, as
 * Tailscale's forwarder does), over UDP first and TCP when an answer comes
 * back truncated, or as DNS over HTTPS. A table of pending queries keyed
 * by a random upstream ID lets any number wait without holding anything
 * else up. The query travels as the client sent it (EDNS, DO and all);
 * only the ID changes on the way, and is put back on the answer. When an
 * answer came truncated and TCP to that upstream fails, a UDP client gets
 * the truncated answer (TC set) rather than SERVFAIL.
 */
#ifndef MK_DNSFWD_H
#define MK_DNSFWD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

struct mk_loop;
struct mk_dnsfwd;

#define MK_DNSFWD_MAX_UPSTREAMS	8
#define MK_DNSFWD_UDP_TIMEOUT_MS 2000
#define MK_DNSFWD_TCP_TIMEOUT_MS 5000
#define MK_DNSFWD_MAX_PENDING	4096
#define MK_DNSFWD_URL_MAX	512

enum mk_dnsfwd_kind {
	MK_DNSFWD_DNS,		/* plain DNS, UDP then TCP */
	MK_DNSFWD_DOH,		/* RFC 8484, POST over HTTP/2 */
};

struct mk_dnsfwd_upstream {
	enum mk_dnsfwd_kind	kind;
	struct mk_addr		addr;	/* DNS: the server */
	char			url[MK_DNSFWD_URL_MAX];	/* DoH */
	char			host[256];	/* DoH: the URL's host */
	uint16_t		port;		/* DoH: the URL's port */
};

/*
 * "ADDR[:PORT]" (port 53) or "https://HOST[:PORT]/PATH" (DoH; host a name,
 * an IPv4 address or [IPv6]). 0, or -1 with *why.
 */
int mk_dnsfwd_upstream_parse(struct mk_dnsfwd_upstream *u, const char *s,
    const char **why);

struct mk_dnsfwd_conf {
	const struct mk_dnsfwd_upstream	*up;
	size_t				 n_up;
	uint64_t			 udp_timeout_ms;  /* 0: default */
	uint64_t			 tcp_timeout_ms;  /* and DoH */
	size_t				 max_pending;	/* 0: 4096 */
	const char			*cafile;	/* or NULL */
	const char *const		*doh_resolve;	/* HOST:PORT:IP */
	size_t				 n_doh_resolve;
};

struct mk_dnsfwd_stats {
	uint64_t	queries;	/* taken by mk_dnsfwd_query */
	uint64_t	answered;	/* a good answer passed on */
	uint64_t	servfail;	/* every upstream failed */
	uint64_t	tcp_retries;	/* truncated: asked over TCP */
	uint64_t	truncated;	/* ... TCP failed: the UDP one passed */
	uint64_t	doh_sent;
	uint64_t	timeouts;	/* attempts with no answer */
	uint64_t	ignored;	/* answers matching no pending query */
	uint64_t	busy;		/* refused: too many pending */
};

/* What became of a forwarded query, for the caller's log. */
enum mk_dnsfwd_how {
	MK_DNSFWD_ANSWERED,	/* an upstream's answer */
	MK_DNSFWD_TRUNCATED,	/* an upstream's truncated UDP answer: it
				 * could not be had over TCP */
	MK_DNSFWD_FAILED,	/* every upstream failed: our SERVFAIL */
	MK_DNSFWD_GONE,		/* the forwarder was freed first */
};

struct mk_dnsfwd_result {
	enum mk_dnsfwd_how	how;
	int			up;	/* the upstream (index), or -1 */
	int			rcode;	/* of the answer given, or -1 */
	bool			cut;	/* fitted to the client's limit, TC */
	unsigned		timeouts; /* attempts with no answer */
	uint64_t		elapsed_us;
};

/*
 * The answer to a forwarded query, or resp NULL when the forwarder is
 * freed first. Runs from the loop, never inside mk_dnsfwd_query; resp
 * carries the client's ID and fits the limit given there (SERVFAIL when
 * every upstream failed). res says how it came about; never NULL.
 */
typedef void (*mk_dnsfwd_fn)(void *arg, const uint8_t *resp, size_t len,
    const struct mk_dnsfwd_result *res);

int mk_dnsfwd_new(struct mk_dnsfwd **out, struct mk_loop *l,
    const struct mk_dnsfwd_conf *c, const char **why);
/* Every pending callback runs once with resp NULL, then all is freed. */
void mk_dnsfwd_free(struct mk_dnsfwd *f);

/*
 * Forward q (a query mk_dns_respond said to forward). limit: the largest
 * answer the client takes. 0, or -1 with errno EBUSY (too many pending),
 * ENOENT (no upstream) or ENOMEM: then fn never runs and the caller
 * answers SERVFAIL itself.
 */
int mk_dnsfwd_query(struct mk_dnsfwd *f, const uint8_t *q, size_t qlen,
    uint16_t limit, mk_dnsfwd_fn fn, void *arg);

size_t mk_dnsfwd_pending(const struct mk_dnsfwd *f);
const struct mk_dnsfwd_stats *mk_dnsfwd_stats(const struct mk_dnsfwd *f);

#endif
