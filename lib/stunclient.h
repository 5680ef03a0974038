/* SPDX-License-Identifier: MIT */
/*
 * STUN Binding transactions from one socket to many servers at once
 * (stunq, natclass, punch). The state machine is separate from I/O:
 * mk_stunc_send_due() sends what is due and says when to call it next,
 * mk_stunc_input() matches a datagram, so an event loop can drive it;
 * mk_stunc_exchange() is the blocking convenience for one-shot tools.
 *
 * Two retransmission schedules:
 *  fast (default, as Tailscale's netcheck): sends at 0, 100, 300, 500 ms ...
 *   every 200 ms until the deadline (about 3 s); every send has its own
 *   transaction ID, so the round-trip time is exact whichever one is answered.
 *  rfc (RFC 8489 §6.2.1): RTO 500 ms doubling, Rc = 7 sends, then wait
 *   Rm = 16 x RTO; the same transaction ID throughout, RTT from the first
 *   send of the transaction.
 */
#ifndef MK_STUNCLIENT_H
#define MK_STUNCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "stun.h"

#define MK_STUNC_MAX_SENDS 16

enum mk_stunc_state {
	MK_STUNC_IDLE = 0,
	MK_STUNC_PENDING,
	MK_STUNC_DONE,		/* success response */
	MK_STUNC_ERROR,		/* error response (see resp.error_code) */
	MK_STUNC_TIMEOUT,
	MK_STUNC_FAILED,	/* could not send (e.g. unreachable family) */
};

struct mk_stunc_sched {
	bool rfc;
	uint64_t rto_us;	/* rfc: initial RTO (500 ms) */
	unsigned rc;		/* rfc: number of sends (7) */
	unsigned rm;		/* rfc: final wait multiplier (16) */
	uint64_t first_us;	/* fast: first retransmit after (100 ms) */
	uint64_t every_us;	/* fast: then every (200 ms) */
	uint64_t timeout_us;	/* overall limit per transaction; 0 = none */
};

/* Holds views into its own resp_buf: never copy one by assignment. */
struct mk_stunc_txn {
	/* set by the caller; an empty server (len 0) fails at once */
	struct mk_addr server;
	uint32_t change;	/* CHANGE-REQUEST flags, 0 for none */
	/* A response normally counts only from the address asked. With
	 * CHANGE-REQUEST it legitimately comes from elsewhere (the server's
	 * OTHER-ADDRESS): then set accept_from, or accept_any_source. */
	struct mk_addr accept_from;
	bool accept_any_source;

	/* state */
	enum mk_stunc_state state;
	unsigned sends;
	uint8_t txids[MK_STUNC_MAX_SENDS][MK_STUN_TXID_LEN];
	uint64_t sent_us[MK_STUNC_MAX_SENDS];
	uint64_t next_us;
	uint64_t deadline_us;
	int last_errno;
	unsigned junk;		/* datagrams from the server that did not count */

	/* result */
	uint64_t rtt_us;
	struct mk_addr from;		/* where the response came from */
	uint8_t resp_buf[MK_STUN_MAX_LEN];
	size_t resp_len;
	struct mk_stun_msg resp;	/* views into resp_buf */
	struct mk_addr mapped;		/* XOR-MAPPED, else MAPPED-ADDRESS */
};

void mk_stunc_sched_fast(struct mk_stunc_sched *s, uint64_t timeout_us);
void mk_stunc_sched_rfc(struct mk_stunc_sched *s, uint64_t timeout_us);

/* Make the transaction ready to send at `now`. */
void mk_stunc_start(struct mk_stunc_txn *t, const struct mk_stunc_sched *s,
    uint64_t now);

/*
 * Send every transaction that is due on fd (a UDP socket of family
 * sock_family; IPv4 servers are mapped for dual-stack IPv6 sockets).
 * Returns the time of the next event (send or deadline), UINT64_MAX when
 * nothing is pending.
 */
uint64_t mk_stunc_send_due(int fd, int sock_family, struct mk_stunc_txn *t,
    size_t n, const struct mk_stunc_sched *s, uint64_t now);

/*
 * Offer a received datagram. Returns the index of the transaction it
 * completes, or -1 if it matches none (wrong transaction ID, wrong source,
 * not STUN, malformed: *why says which).
 */
int mk_stunc_input(struct mk_stunc_txn *t, size_t n, const uint8_t *buf,
    size_t len, const struct mk_addr *from, uint64_t now, const char **why);

/* "idle", "pending", "answered", "error response", "no answer",
 * "cannot send": the words stunq and natclass both use. */
const char *mk_stunc_state_name(enum mk_stunc_state st);

/*
 * Why a transaction has no answer, in the words stunq and natclass both
 * print (their JSON "error"): "no answer", "only invalid replies",
 * "error response 420", "cannot send: <strerror>". Returns buf.
 */
const char *mk_stunc_error_text(enum mk_stunc_state st, uint16_t error_code,
    int err, unsigned junk, char *buf, size_t n);

/* True while any transaction is pending. */
bool mk_stunc_pending(const struct mk_stunc_txn *t, size_t n);

/* One socket's share of a blocking exchange: its transactions and their
 * schedule (several sockets, each with its own timing, run at once). */
struct mk_stunc_group {
	int fd;
	struct mk_stunc_txn *t;
	size_t n;
	const struct mk_stunc_sched *sched;
	/* Once any transaction of any group is answered, this group's
	 * pending ones get at most settle_us more (0: no limit). So one
	 * silent server does not hold up the answer from the others. */
	uint64_t settle_us;
};

/* Blocking: start and run every group's transactions until each is done.
 * Returns the number answered, or -1/errno on a poll error. */
int mk_stunc_exchange_groups(struct mk_stunc_group *g, size_t ng);

/*
 * Blocking: run all transactions on fd until each is answered or timed out.
 * Datagrams that match nothing are passed to `other` if set (else logged
 * at debug level). Returns the number answered, or -1/errno on a poll error.
 */
int mk_stunc_exchange(int fd, struct mk_stunc_txn *t, size_t n,
    const struct mk_stunc_sched *s);

#endif
