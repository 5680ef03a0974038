/* SPDX-License-Identifier: MIT */
/*
 * Birthday-paradox traversal of an endpoint-dependent NAT: the odds, and
 * the probe engine (driven by lib/loop; it owns no main and no exit, so
 * birthday(1) runs it standalone and punch may run it for one pair).
 *
 * The hard side, behind a NAT that maps every destination to a new random
 * port, opens `ports` sockets and pings the easy side's public ip:port
 * from each: its NAT now holds that many mappings that admit exactly the
 * easy side. The easy side pings random ports of the hard side's public IP
 * from its one socket; a ping that lands on one of those mappings gets
 * through, and the pong goes back through the hole the ping made in the
 * easy side's own filter. With N mappings among S possible ports, k
 * probes find one with probability
 *
 *	P = 1 - (1 - N/S)^k
 *
 * Every probe is a disco Ping sealed between the two node keys, with a
 * TxID that only this run can make (a keyed hash of its sequence number,
 * socket and destination port): a hit is an authenticated Pong to such a
 * TxID from the address it was sent to, and an authenticated Ping from
 * the peer on the same path, so both directions are proven. Forged
 * packets do not open, replayed ones repeat a nonce already seen, pongs
 * from another run carry a TxID this run never made.
 */
#ifndef MK_BIRTHDAY_H
#define MK_BIRTHDAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "addr.h"
#include "disco.h"
#include "key.h"
#include "loop.h"

/* What NATs allocate from (Linux masquerade fully-random: 1024-65535). */
#define MK_BDAY_PORT_MIN	1024
#define MK_BDAY_PORT_MAX	65535
#define MK_BDAY_SPACE		(MK_BDAY_PORT_MAX - MK_BDAY_PORT_MIN + 1)

#define MK_BDAY_PORTS		256	/* hard side's sockets */
#define MK_BDAY_MAX_PORTS	1024
#define MK_BDAY_RATE		100	/* probes a second */
#define MK_BDAY_RATE_CAP	1000	/* above it only with force */
#define MK_BDAY_COUNT		2048	/* probes at most */
#define MK_BDAY_MAX_COUNT	1000000

/* The hard side pings from every socket this often: a UDP mapping that
 * no reply crossed lasts about 30 s in Linux conntrack and many routers. */
#define MK_BDAY_RESEND_US	10000000

/* ---- the odds ---- */

/* P = 1 - (1 - ports/space)^probes. */
double mk_bday_chance(double ports, double space, double probes);
/* The probe count whose chance is nearest p (0 < p < 1): the one
 * that reads "about p" (174 for 50 % with the defaults: 49.94 %). */
double mk_bday_probes_for(double p, double ports, double space);
/*
 * Both sides endpoint-dependent: each probe leaves from a new mapping at
 * a random port, aimed at a random port of the other side; a pair of
 * probes (one each way) meets when each is aimed at the other's mapping,
 * 1/space^2, and k probes a side make k^2 pairs:
 *
 *	P = 1 - (1 - 1/S^2)^(k^2)
 *
 * (how many sockets each side spreads them over does not enter).
 */
double mk_bday_both_chance(double space, double probes_per_side);
double mk_bday_both_probes_for(double p, double space);

/* ---- pacing and port choice (pure; unit tested) ---- */

/*
 * Probes that should have left `elapsed_us` after the start at `rate` a
 * second: the first at once, then one every 1/rate s, never more than
 * count.
 */
uint64_t mk_bday_due(uint64_t elapsed_us, unsigned rate, uint64_t count);

/* Random ports of MK_BDAY_PORT_MIN..MAX, none twice until all were used. */
struct mk_bday_ports {
	uint8_t		 used[(MK_BDAY_PORT_MAX + 1) / 8];
	unsigned	 n_used;
};
void mk_bday_ports_init(struct mk_bday_ports *p);
uint16_t mk_bday_ports_pick(struct mk_bday_ports *p);

/* ---- the rendezvous message ---- */

/*
 * meshkit's own disco message type, sent through the relay between the
 * two node keys before probing (Tailscale's types are 0x01-0x09; 0x80 is
 * far from them). Plaintext after type and version (0):
 *
 *	role u8 (1 hard, 2 easy, 3 both) | flags u8 (bit 0: I have your
 *	hello) | ports u16 | count u32 | rate u32 | start_ms u32 |
 *	public IP[16] (v4-mapped) | public port u16
 *
 * big-endian, 36 bytes in all; trailing bytes are ignored. start_ms: how
 * long after receiving a hello with flag 0 set the receiver should start
 * probing (there is no shared clock, so a start time is a delay).
 */
#define MK_BDAY_DISCO_HELLO	0x80
#define MK_BDAY_HELLO_LEN	36
#define MK_BDAY_HELLO_HAVE_YOURS 0x01

struct mk_bday_hello {
	uint8_t		 role;		/* MK_BDAY_ROLE_WIRE_* */
	uint8_t		 flags;
	uint16_t	 ports;
	uint32_t	 count;
	uint32_t	 rate;
	uint32_t	 start_ms;
	struct mk_addr	 addr;		/* the sender's public address */
};

#define MK_BDAY_ROLE_WIRE_HARD	1
#define MK_BDAY_ROLE_WIRE_EASY	2
#define MK_BDAY_ROLE_WIRE_BOTH	3

/* Plaintext (type and version included): length, or -1 with *why. */
ssize_t mk_bday_put_hello(uint8_t *out, size_t cap,
    const struct mk_bday_hello *h, const char **why);
/* 0, or -1 with *why ("not a birthday hello", "short hello", "unknown
 * role", "bad address"). */
int mk_bday_parse_hello(struct mk_bday_hello *h, const uint8_t *pt,
    size_t len, const char **why);

/* ---- the engine ---- */

enum mk_bday_role {
	MK_BDAY_HARD,	/* many sockets, one destination */
	MK_BDAY_EASY,	/* one socket, random ports of one IP */
	MK_BDAY_BOTH,	/* both hard: many sockets, random ports */
};

struct mk_bday;

struct mk_bday_config {
	enum mk_bday_role role;
	struct mk_key	 priv, pub;	/* ours */
	struct mk_key	 peer;		/* the peer's public key */
	/* HARD: the easy side's public ip:port. EASY, BOTH: the hard
	 * side's public IP (the port is ignored). The only IP probed. */
	struct mk_addr	 dst;
	unsigned	 ports;		/* HARD, BOTH: sockets to open */
	int		 fd;		/* EASY: its socket (the one whose
					 * mapping the peer was told), or -1
					 * to open one; the engine owns it */
	unsigned	 rate;		/* EASY, BOTH: probes a second */
	uint64_t	 count;		/* EASY, BOTH: probes at most */
	uint64_t	 resend_us;	/* HARD: ping from every socket this
					 * often (0: MK_BDAY_RESEND_US) */
	uint64_t	 duration_us;	/* HARD: keep at it this long */
	uint64_t	 grace_us;	/* after the last probe: wait this
					 * long for late answers */
	bool		 force;		/* a rate above MK_BDAY_RATE_CAP */
	/* Called once, when the run has won or given up; the result is
	 * then ready (mk_bday_result). May free the engine. */
	void		(*done)(struct mk_bday *b, void *arg);
	void		*arg;
};

struct mk_bday_stats {
	uint64_t	 sent;		/* probes (EASY, BOTH) or pings (HARD) */
	uint64_t	 heard;		/* authenticated pings from the peer */
	uint64_t	 dropped;	/* disco that did not count */
	uint64_t	 elapsed_us;
	bool		 running;
};

struct mk_bday_result {
	bool		 won;
	int		 fd;		/* the winning socket (-1 if none) */
	uint16_t	 local_port;
	struct mk_addr	 remote;	/* the peer's mapping that answered */
	uint64_t	 rtt_us;
	uint64_t	 probes;	/* sent by us when it was won */
	uint64_t	 elapsed_us;
};

/* Check the configuration and open the sockets. 0, or -1 with *why
 * ("rate above 1000 a second: needs force", "socket: ..."). */
int mk_bday_new(struct mk_bday **out, struct mk_loop *l,
    const struct mk_bday_config *cfg, const char **why);
/* Start probing now (the hard side pings from every socket at once). */
int mk_bday_start(struct mk_bday *b);
void mk_bday_get_stats(const struct mk_bday *b, struct mk_bday_stats *st);
/* After done: what happened. */
void mk_bday_result(const struct mk_bday *b, struct mk_bday_result *r);
/* The winning socket becomes the caller's (mk_bday_free leaves it open);
 * every other socket is closed. Its fd, or -1 when nothing was won. */
int mk_bday_take_winner(struct mk_bday *b);
/* Closes every socket the engine still owns. */
void mk_bday_free(struct mk_bday *b);

#endif
