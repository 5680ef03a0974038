/* SPDX-License-Identifier: MIT */
/*
 * derpcat's stream mode: a reliable, ordered, end-to-end sealed byte
 * stream between two node keys over DERP packets, which a relay may drop
 * and which have no end of stream of their own. Transport-agnostic: the
 * caller moves packets and supplies the clock, so the engine is tested
 * with simulated loss and time.
 *
 * Packet (a DERP packet's payload), documented in derpcat(1):
 *
 *   0   "mkdc" (6d 6b 64 63)
 *   4   version 1
 *   5   nonce[24]
 *   29  crypto_box_easy(plaintext), sender's key -> receiver's key
 *
 *   plaintext: type u8 (1 DATA, 2 ACK, 3 FIN, 4 RST) | flags u8
 *              (1 = answer at once) | 0 u16 | stream u32 (the sender's,
 *              random, never 0) | seq u32 (DATA/FIN: this packet; ACK:
 *              the sender's next) | ack_stream u32 (the peer stream
 *              acknowledged, 0 before any) | ack u32 (every packet below
 *              has arrived) | sack u32 (bit i: packet ack+1+i arrived) |
 *              wnd u32 (the peer may send packets below this) | data
 *
 * All integers big-endian. Each side numbers its packets from 0; FIN
 * takes a number after the last DATA. At most MK_DSTREAM_WINDOW (20)
 * packets are unacknowledged: with one acknowledgement per four packets
 * received and window updates only to a sender about to stall, what one
 * peer can have queued at the relay for the other stays below the 32
 * packets a relay queues per client, so a relay that behaves never has to
 * drop. Lost packets are sent again: holes below a packet that
 * arrived at once (the relay keeps order), else after a timeout (RFC 6298
 * estimator, 200 ms to 1 s, doubling).
 */
#ifndef MK_DERP_STREAM_H
#define MK_DERP_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "key.h"

#define MK_DSTREAM_WINDOW	20		/* packets in flight */
#define MK_DSTREAM_CHUNK	16384		/* data bytes per packet */
#define MK_DSTREAM_HDR		(4 + 1 + 24 + 16 + 28)
#define MK_DSTREAM_MAX_PKT	(MK_DSTREAM_HDR + MK_DSTREAM_CHUNK)

struct mk_dstream;

struct mk_dstream_cb {
	/* Send one packet to the peer: 0, or -1 when there is no room now
	 * (mk_dstream_writable later). */
	int	(*send)(void *arg, const uint8_t *pkt, size_t len);
	/* In-order data (or the end) is there to read. */
	void	(*readable)(void *arg);
	/* mk_dstream_room went from 0 to more. */
	void	(*sendable)(void *arg);
	/* The stream cannot go on: the peer restarted or reset it. */
	void	(*error)(void *arg, const char *why);
};

struct mk_dstream_stats {
	uint64_t	 sent_packets;
	uint64_t	 sent_bytes;	/* data, first transmissions */
	uint64_t	 retransmits;
	uint64_t	 acks_sent;
	uint64_t	 recv_packets;
	uint64_t	 recv_bytes;	/* data, new */
	uint64_t	 duplicates;
	uint64_t	 rejected;	/* not ours, or did not open */
	uint64_t	 srtt_us;
};

int mk_dstream_new(struct mk_dstream **out, const struct mk_key *my_priv,
    const struct mk_key *peer_pub, const struct mk_dstream_cb *cb,
    void *arg);
void mk_dstream_free(struct mk_dstream *s);

/* Is this packet stream mode's (magic and version)? */
bool mk_dstream_is_ours(const uint8_t *pkt, size_t len);

/*
 * A packet from the peer's key. 0, or -1 when it is not a stream packet
 * or does not open (counted, otherwise ignored).
 */
int mk_dstream_input(struct mk_dstream *s, const uint8_t *pkt, size_t len,
    uint64_t now_us);

/* Bytes mk_dstream_write takes now (0: window full or transport busy). */
size_t mk_dstream_room(const struct mk_dstream *s);
/* Send up to len bytes (at most room): bytes taken. Data of one call is
 * never merged with another's packet. */
size_t mk_dstream_write(struct mk_dstream *s, const uint8_t *data,
    size_t len, uint64_t now_us);
/* No more data: FIN follows what was written. */
void mk_dstream_shutdown(struct mk_dstream *s, uint64_t now_us);

/*
 * The next in-order bytes, or NULL (*len 0). *eof is set once everything
 * before the peer's FIN has been consumed.
 */
const uint8_t *mk_dstream_peek(struct mk_dstream *s, size_t *len, bool *eof);
void mk_dstream_consume(struct mk_dstream *s, size_t n, uint64_t now_us);

/* The transport has room again. */
void mk_dstream_writable(struct mk_dstream *s, uint64_t now_us);
/* When mk_dstream_tick wants to run (UINT64_MAX: never). */
uint64_t mk_dstream_next_timer(const struct mk_dstream *s);
void mk_dstream_tick(struct mk_dstream *s, uint64_t now_us);

/* All written data (and the FIN, if sent) acknowledged. */
bool mk_dstream_tx_done(const struct mk_dstream *s);
/* Shutdown was called. */
bool mk_dstream_tx_closed(const struct mk_dstream *s);
/* The peer's FIN has arrived (data before it may still be unread). */
bool mk_dstream_rx_fin(const struct mk_dstream *s);
/* Anything heard from the peer yet. */
bool mk_dstream_heard(const struct mk_dstream *s);
/* Last time an acknowledgement moved the stream forward (or creation). */
uint64_t mk_dstream_last_progress(const struct mk_dstream *s);
void mk_dstream_get_stats(const struct mk_dstream *s,
    struct mk_dstream_stats *st);

#endif
