/* SPDX-License-Identifier: MIT */
/*
 * A DERP relay server on an mk_loop (single-threaded, non-blocking), as
 * Tailscale's derper relays:
 *
 *  - HTTP(S) on one listener: GET /derp with Upgrade: DERP gets the exact
 *    101 and the frame stream (no 101 with Derp-Fast-Start: 1);
 *    /derp/probe, /derp/latency-check and /generate_204 as derper answers
 *    them; anything else a small response and Connection: close.
 *  - Authentication is the ClientInfo box opening with the claimed key;
 *    then an optional admission callback (an allowlist).
 *  - One active connection per key: the newest, or the latest to send any
 *    frame (derper's lastWriterIsActive), and when it goes the one that
 *    connected or sent most recently; the others stay open but idle.
 *  - Per client two queues (disco, other) of `queue_depth` packets; a full
 *    queue drops its oldest packet (queue_head); past the server-wide byte
 *    budget the new packet is dropped (queue_tail). A sender is never
 *    blocked, and a reader that makes no write progress for
 *    `write_timeout_ms` is disconnected (write_error), so a stalled reader
 *    never slows anyone else.
 *  - PeerGone(NotHere) for disco-looking packets to unknown keys, sent or
 *    forwarded (1/s, burst 3, per connection); PeerGone(Disconnected) to
 *    those a leaving key had sent to; KeepAlive every 60 s plus up to 5 s
 *    of jitter.
 *  - Mesh: connections with the mesh key may WatchConns (every client, the
 *    watcher included, then a PeerPresent / PeerGone stream; flags as
 *    derper's, IsRegular only alone), ForwardPacket and ClosePeer (derper's
 *    frame sizes: WatchConns empty, ClosePeer a key); mk_derps_mesh_with
 *    dials another server and forwards to the keys it reports.
 *  - Hardening: frame and head size limits, a 10 s deadline for TLS, HTTP
 *    head and DERP handshake together, per-address limits on connections
 *    and on connections not yet authenticated, bounded queues and memory.
 */
#ifndef MK_DERP_SERVER_H
#define MK_DERP_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "derp_client.h"
#include "key.h"
#include "loop.h"
#include "tls.h"

/* Drop reasons, as derper names them in its metrics. */
enum mk_derps_drop {
	MK_DERPS_DROP_UNKNOWN_DEST,
	MK_DERPS_DROP_UNKNOWN_DEST_ON_FWD,
	MK_DERPS_DROP_GONE_DISCONNECTED,
	MK_DERPS_DROP_QUEUE_HEAD,
	MK_DERPS_DROP_QUEUE_TAIL,
	MK_DERPS_DROP_WRITE_ERROR,
	MK_DERPS_DROP_N,
};

/* "unknown_dest", ... */
const char *mk_derps_drop_name(int reason);

struct mk_derps_stats {
	uint64_t	 accepted;		/* TCP connections */
	uint64_t	 conns;			/* open now, any state */
	uint64_t	 clients;		/* authenticated now */
	uint64_t	 keys;			/* distinct keys now */
	uint64_t	 mesh_conns;		/* mesh peers connected to us */
	uint64_t	 watchers;
	uint64_t	 mesh_forwarders;	/* keys reachable via mesh */
	uint64_t	 recv_packets;		/* SendPacket/ForwardPacket in */
	uint64_t	 recv_bytes;
	uint64_t	 sent_packets;		/* RecvPacket written out */
	uint64_t	 sent_bytes;
	uint64_t	 forwarded_packets;	/* ForwardPacket to mesh peers */
	uint64_t	 drops[MK_DERPS_DROP_N];
	uint64_t	 refused_box;		/* ClientInfo did not open */
	uint64_t	 refused_admit;		/* not on the allowlist */
	uint64_t	 refused_limit;		/* per-address limits */
	uint64_t	 bad_http;
	uint64_t	 bad_frames;
	uint64_t	 timeouts;		/* handshake deadline */
	uint64_t	 http_requests;		/* non-upgrade requests */
	uint64_t	 home_clients;		/* NotePreferred(1) now */
};

/* true admits the key; called after its box opened (not for mesh). */
typedef bool (*mk_derps_admit_fn)(void *arg, const struct mk_key *client);

struct mk_derps_config {
	struct mk_key		 priv;		/* the server key */
	struct mk_tls_ctx	*tls;		/* NULL: plain HTTP */
	bool			 has_mesh_key;
	uint8_t			 mesh_key[32];
	uint64_t		 write_timeout_ms;	/* 2000; 0 none */
	uint64_t		 mesh_write_timeout_ms;	/* 30000 */
	uint64_t		 handshake_timeout_ms;	/* 10000 */
	unsigned		 queue_depth;		/* 32 per queue */
	uint64_t		 max_queued_bytes;	/* whole server */
	unsigned		 max_conns_per_ip;	/* 0: no limit */
	unsigned		 max_pending_per_ip;	/* 0: no limit */
	mk_derps_admit_fn	 admit;			/* NULL: everyone */
	void			*admit_arg;
	/* mk_derps_mesh_with's TLS: as a client's (mk_derpc_config). */
	const char		*mesh_cafile;
	bool			 mesh_insecure;
	bool			 mesh_has_pin;
	uint8_t			 mesh_pin[32];
};

/* Defaults for everything but the key, TLS and admission. */
void mk_derps_config_init(struct mk_derps_config *cfg);

struct mk_derps;

int mk_derps_new(struct mk_derps **out, struct mk_loop *l,
    const struct mk_derps_config *cfg, const char **why);
/*
 * Listen on addr (port 0: any; a wildcard IPv6 address is dual-stack);
 * the bound address in *bound. May be called more than once. 0, or -1 with
 * errno and *why.
 */
int mk_derps_listen(struct mk_derps *s, const struct mk_addr *addr,
    struct mk_addr *bound, const char **why);
/*
 * Mesh with another server: dial url with the mesh key (the server's own
 * key as the client key), watch its clients, forward to them. Retries
 * forever (5 s apart, as derper). 0 or -1 with *why.
 */
int mk_derps_mesh_with(struct mk_derps *s, const char *url,
    const char **why);
/* Run the admission callback again on every client (after a reload);
 * those now refused are disconnected. */
void mk_derps_recheck(struct mk_derps *s);
void mk_derps_get_stats(const struct mk_derps *s, struct mk_derps_stats *st);
/* The server's public key. */
const struct mk_key *mk_derps_public(const struct mk_derps *s);
/* Close every connection and free everything. NULL-safe. */
void mk_derps_free(struct mk_derps *s);

#endif
