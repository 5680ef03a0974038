/* SPDX-License-Identifier: MIT */
/*
 * A DERP client on an mk_loop, for derpcat and for any program that
 * carries packets over a relay (punch carries WireGuard this way).
 *
 * It connects (name lookup in a helper thread, TCP, an HTTP CONNECT proxy
 * if given, TLS, the HTTP upgrade, the DERP handshake), keeps the
 * connection (answers pings, reads KeepAlives, gives up after 120 s of
 * silence) and reconnects after any failure with Tailscale's backoff,
 * min(n^2 * 10 ms, 5 s) * U[0.5, 1.5) for the n-th failure in a row,
 * trying the targets (a region's nodes) in turn. Everything it reports
 * goes through callbacks that run on the loop; every call is non-blocking.
 *
 * Packets to send are copied into a bounded queue (queue_depth, 32 by
 * default, as magicsock's per-region queue); when it is full the send
 * fails with EAGAIN and the writable callback says when there is room.
 * Nothing is queued while disconnected (ENOTCONN): what a relay carries is
 * datagrams, and the layer above retransmits if it needs to.
 *
 * The program must ignore SIGPIPE (OpenSSL writes to the socket with
 * write(2)); a peer that goes away is then an error return, not a death.
 */
#ifndef MK_DERP_CLIENT_H
#define MK_DERP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "key.h"
#include "loop.h"
#include "url.h"

struct mk_derpc;

/* Why a connection failed, for callers that treat some as final. */
enum mk_derpc_err {
	MK_DERPC_ERR_NET,	/* resolve, connect, I/O, timeouts, proxy */
	MK_DERPC_ERR_TLS,	/* handshake or certificate verification */
	MK_DERPC_ERR_PROTO,	/* not a DERP server, bad frames */
	MK_DERPC_ERR_REFUSED,	/* closed after our ClientInfo: not admitted */
};

struct mk_derpc_cb {
	/* Handshake done: packets may be sent. */
	void	(*connected)(struct mk_derpc *c, void *arg);
	/* Lost or failed (kind: enum mk_derpc_err); it will try again by
	 * itself unless freed. */
	void	(*disconnected)(struct mk_derpc *c, void *arg, int kind,
		    const char *why);
	void	(*recv)(struct mk_derpc *c, void *arg,
		    const struct mk_key *src, const uint8_t *pkt, size_t len);
	void	(*peer_gone)(struct mk_derpc *c, void *arg,
		    const struct mk_key *peer, uint8_t reason);
	/* With watch: addr may be empty (len 0) from old servers. */
	void	(*peer_present)(struct mk_derpc *c, void *arg,
		    const struct mk_key *peer, const struct mk_addr *addr,
		    uint8_t flags);
	/* The send queue has room again after an EAGAIN. */
	void	(*writable)(struct mk_derpc *c, void *arg);
	void	(*health)(struct mk_derpc *c, void *arg, const char *text,
		    size_t len);
	void	(*pong)(struct mk_derpc *c, void *arg, const uint8_t data[8]);
};

/* One way to reach the server: a region's node, or the one URL. */
struct mk_derpc_target {
	struct mk_url	 url;		/* Host, SNI, name to verify */
	struct mk_addr	 dial;		/* connect here if set (len > 0) */
	struct mk_addr	 dial6;		/* second address to try */
	bool		 has_pin;	/* sha256-raw pin of the cert */
	uint8_t		 pin[32];
	bool		 insecure;	/* no verification (tests) */
};

struct mk_derpc_config {
	struct mk_key		 priv;
	const struct mk_derpc_target *targets;	/* copied */
	size_t			 n_targets;
	const char		*cafile;	/* NULL: system CAs */
	bool			 insecure;	/* for all targets */
	const char		*proxy;		/* http://[u:p@]host:port */
	const char		*no_proxy;	/* NO_PROXY text */
	bool			 has_mesh_key;
	uint8_t			 mesh_key[32];
	bool			 watch;		/* WatchConns (mesh key) */
	bool			 preferred;	/* NotePreferred(1) */
	bool			 fast_start;	/* Derp-Fast-Start when the TLS
						 * meta cert names the key */
	unsigned		 queue_depth;	/* 32 */
	uint64_t		 connect_timeout_ms;	/* 10000, in all */
	uint64_t		 dial_timeout_ms;	/* 1500, per address */
	uint64_t		 read_timeout_ms;	/* 120000 */
	uint64_t		 retry_ms;	/* 0: Tailscale's backoff */
};

void mk_derpc_config_init(struct mk_derpc_config *cfg);

/*
 * The proxy for a URL from the environment, as Go's ProxyFromEnvironment:
 * HTTPS_PROXY (https_proxy) for https, HTTP_PROXY (http_proxy) for http,
 * unless NO_PROXY (no_proxy) exempts the host; loopback is never proxied.
 * NULL when none.
 */
const char *mk_derpc_proxy_from_env(const struct mk_url *u);

/* Set up (nothing is sent until mk_derpc_start). 0, or -1 with *why. */
int mk_derpc_new(struct mk_derpc **out, struct mk_loop *l,
    const struct mk_derpc_config *cfg, const struct mk_derpc_cb *cb,
    void *arg, const char **why);
void mk_derpc_start(struct mk_derpc *c);
/* Safe from inside a callback (the memory is released later). */
void mk_derpc_free(struct mk_derpc *c);

/*
 * An IPv6-only host behind NAT64: IPv4 addresses (a literal URL, a dial
 * address, a name's A records) are dialled in this prefix (lib/nat64);
 * NULL, or a prefix of length 0, dials them as they are. Takes effect
 * from the next connection attempt.
 */
struct mk_nat64_prefix;
void mk_derpc_set_nat64(struct mk_derpc *c, const struct mk_nat64_prefix *p);

bool mk_derpc_up(const struct mk_derpc *c);
const struct mk_key *mk_derpc_public(const struct mk_derpc *c);
/* The server's key, once known (else NULL). */
const struct mk_key *mk_derpc_server_key(const struct mk_derpc *c);
/* The target in use or last tried. */
const struct mk_derpc_target *mk_derpc_target(const struct mk_derpc *c);
/* Frames not yet written to the socket (packets and control). */
size_t mk_derpc_queued(const struct mk_derpc *c);
/* Room for n more packets in the send queue? */
bool mk_derpc_room(const struct mk_derpc *c, size_t n);

/*
 * Queue a packet (up to 64 KiB). 0, or -1 with errno: ENOTCONN (not up),
 * EAGAIN (queue full), EMSGSIZE, ENOMEM.
 */
int mk_derpc_send(struct mk_derpc *c, const struct mk_key *dst,
    const void *pkt, size_t len);
/* Mesh: ForwardPacket src -> dst. Same errors. */
int mk_derpc_forward(struct mk_derpc *c, const uint8_t src[32],
    const uint8_t dst[32], const void *pkt, size_t len);
/* Control frames: not counted against the queue. 0 or -1/errno. */
int mk_derpc_ping(struct mk_derpc *c, const uint8_t data[8]);
int mk_derpc_note_preferred(struct mk_derpc *c, bool preferred);
int mk_derpc_close_peer(struct mk_derpc *c, const struct mk_key *peer);

struct mk_derpc_stats {
	uint64_t	 connects;	/* handshakes completed */
	uint64_t	 failures;	/* attempts or connections lost */
	uint64_t	 sent_packets;
	uint64_t	 sent_bytes;
	uint64_t	 recv_packets;
	uint64_t	 recv_bytes;
	uint64_t	 dropped_full;	/* sends refused: queue full */
};
void mk_derpc_get_stats(const struct mk_derpc *c, struct mk_derpc_stats *st);

#endif
