/* SPDX-License-Identifier: MIT */
#include "derp_stream.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define W		MK_DSTREAM_WINDOW
#define MAGIC		"mkdc"
#define VERSION		1
#define PLAIN_HDR	28
#define OFF_BOX		(4 + 1 + 24)
#define RTO_INIT_US	300000
#define RTO_MIN_US	200000
#define RTO_MAX_US	1000000
#define DELACK_US	5000
#define PROBE_US	1000000
#define ACK_EVERY	4

enum { T_DATA = 1, T_ACK = 2, T_FIN = 3, T_RST = 4 };
#define F_ANSWER	0x01

struct txslot {
	uint8_t		*data;
	uint32_t	 len;
	uint8_t		 type;
	bool		 used;
	bool		 sent;
	uint32_t	 tries;
	uint64_t	 sent_at;
};

struct rxslot {
	uint8_t		*data;
	uint32_t	 len;
	uint32_t	 seq;
	uint8_t		 type;
	bool		 have;
};

struct mk_dstream {
	uint8_t			 shared[crypto_box_BEFORENMBYTES];
	struct mk_dstream_cb	 cb;
	void			*arg;
	bool			 failed;
	/* sending */
	uint32_t		 tx_stream;
	uint32_t		 snd_una;	/* oldest unacknowledged */
	uint32_t		 snd_nxt;	/* next to number */
	uint32_t		 snd_wnd;	/* the peer takes below this */
	struct txslot		 tx[W];
	bool			 shut;		/* shutdown called */
	bool			 fin_queued;	/* FIN has its slot */
	bool			 was_full;	/* room was 0 */
	uint64_t		 srtt;
	uint64_t		 rttvar;
	uint64_t		 rto;
	bool			 have_rtt;
	uint64_t		 rto_at;	/* 0: off */
	uint64_t		 rto_epoch;	/* a timeout fired at */
	uint64_t		 probe_at;
	uint64_t		 last_progress;
	/* receiving */
	bool			 heard;
	uint32_t		 rx_stream;
	uint32_t		 rcv_next;	/* lowest not yet arrived */
	uint32_t		 dlv;		/* next to hand over */
	uint32_t		 dlv_off;
	struct rxslot		 rx[W];
	bool			 fin_seen;
	uint32_t		 unacked_rx;
	uint64_t		 delack_at;
	bool			 ack_owed;	/* the transport was busy */
	uint32_t		 wnd_sent;	/* last window advertised */
	struct mk_dstream_stats	 st;
	/* separate buffers: answering a packet must not overwrite it */
	uint8_t			 rplain[PLAIN_HDR + MK_DSTREAM_CHUNK];
	uint8_t			 plain[PLAIN_HDR + MK_DSTREAM_CHUNK];
	uint8_t			 pkt[MK_DSTREAM_MAX_PKT];
};



int
mk_dstream_new(struct mk_dstream **out, const struct mk_key *my_priv,
    const struct mk_key *peer_pub, const struct mk_dstream_cb *cb,
    void *arg)
{
	struct mk_dstream *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return -1;
	if (crypto_box_beforenm(s->shared, peer_pub->b, my_priv->b) != 0) {
		free(s);
		return -1;
	}
	s->cb = *cb;
	s->arg = arg;
	do
		s->tx_stream = randombytes_random();
	while (s->tx_stream == 0);
	s->snd_wnd = W;
	s->rto = RTO_INIT_US;
	s->wnd_sent = W;
	*out = s;
	return 0;
}

void
mk_dstream_free(struct mk_dstream *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < W; i++) {
		free(s->tx[i].data);
		free(s->rx[i].data);
	}
	sodium_memzero(s->shared, sizeof(s->shared));
	free(s);
}

bool
mk_dstream_is_ours(const uint8_t *pkt, size_t len)
{
	return len >= MK_DSTREAM_HDR && memcmp(pkt, MAGIC, 4) == 0 &&
	    pkt[4] == VERSION;
}

static void
fail(struct mk_dstream *s, const char *why)
{
	if (s->failed)
		return;
	s->failed = true;
	if (s->cb.error != NULL)
		s->cb.error(s->arg, why);
}

/* Bit i: the peer's packet rcv_next+1+i is here. */
static uint32_t
sack_bits(const struct mk_dstream *s)
{
	uint32_t bits = 0, i, seq;

	for (i = 0; i < 32; i++) {
		seq = s->rcv_next + 1 + i;
		if (seq - s->dlv >= W)
			break;
		if (s->rx[seq % W].have && s->rx[seq % W].seq == seq)
			bits |= 1U << i;
	}
	return bits;
}

/* Seal and hand over one packet: 0, or -1 when the transport is full. */
static int
emit(struct mk_dstream *s, uint8_t type, uint8_t flags, uint32_t seq,
    const uint8_t *data, size_t len)
{
	uint8_t *p = s->plain;
	uint32_t wnd = s->dlv + W;
	int r;

	p[0] = type;
	p[1] = flags;
	p[2] = p[3] = 0;
	mk_put32(p + 4, s->tx_stream);
	mk_put32(p + 8, seq);
	mk_put32(p + 12, s->heard ? s->rx_stream : 0);
	mk_put32(p + 16, s->rcv_next);
	mk_put32(p + 20, sack_bits(s));
	mk_put32(p + 24, wnd);
	if (len > 0)
		memcpy(p + PLAIN_HDR, data, len);
	memcpy(s->pkt, MAGIC, 4);
	s->pkt[4] = VERSION;
	randombytes_buf(s->pkt + 5, 24);
	crypto_box_easy_afternm(s->pkt + OFF_BOX, p, PLAIN_HDR + len,
	    s->pkt + 5, s->shared);
	r = s->cb.send(s->arg, s->pkt, MK_DSTREAM_HDR + len);
	if (r != 0)
		return -1;
	/* every packet carries the acknowledgement */
	s->unacked_rx = 0;
	s->delack_at = 0;
	s->ack_owed = false;
	s->wnd_sent = wnd;
	return 0;
}

static void
send_ack(struct mk_dstream *s, uint8_t flags)
{
	if (emit(s, T_ACK, flags, s->snd_nxt, NULL, 0) == 0)
		s->st.acks_sent++;
	else {
		/* mk_dstream_writable sends it; the delayed-ACK time is
		 * spent and must not stay due (a timer set to it would be
		 * due again at once, for as long as the relay is away) */
		s->ack_owed = true;
		s->delack_at = 0;
	}
}

static int
send_slot(struct mk_dstream *s, uint32_t seq, uint64_t now)
{
	struct txslot *t = &s->tx[seq % W];

	if (emit(s, t->type, 0, seq, t->data, t->len) != 0)
		return -1;
	if (t->sent)
		s->st.retransmits++;
	else {
		s->st.sent_packets++;
		s->st.sent_bytes += t->len;
	}
	t->sent = true;
	t->tries++;
	t->sent_at = now;
	if (s->rto_at == 0)
		s->rto_at = now + s->rto;
	return 0;
}

/* Send what was written but not yet sent, in order. */
static void
send_pending(struct mk_dstream *s, uint64_t now)
{
	uint32_t seq;

	for (seq = s->snd_una; seq != s->snd_nxt; seq++)
		if (!s->tx[seq % W].sent && send_slot(s, seq, now) != 0)
			return;
}

static uint32_t
free_slots(const struct mk_dstream *s)
{
	uint32_t limit = s->snd_una + W;

	if (s->snd_wnd - s->snd_una < W)
		limit = s->snd_wnd;
	return limit - s->snd_nxt <= W ? limit - s->snd_nxt : 0;
}

static bool
any_unsent(const struct mk_dstream *s)
{
	uint32_t seq;

	for (seq = s->snd_una; seq != s->snd_nxt; seq++)
		if (!s->tx[seq % W].sent)
			return true;
	return false;
}

size_t
mk_dstream_room(const struct mk_dstream *s)
{
	if (s->failed || s->shut || any_unsent(s))
		return 0;
	return (size_t)free_slots(s) * MK_DSTREAM_CHUNK;
}

/*
 * Everything acknowledged, the writer wants to go on, but the peer's
 * window is shut: ask now and then, in case the update that opens it was
 * lost.
 */
static void
update_probe(struct mk_dstream *s, uint64_t now)
{
	if (s->was_full && s->snd_una == s->snd_nxt && free_slots(s) == 0 &&
	    !s->shut) {
		if (s->probe_at == 0)
			s->probe_at = now + PROBE_US;
	} else
		s->probe_at = 0;
}

static void
note_room(struct mk_dstream *s, uint64_t now)
{
	if (mk_dstream_room(s) == 0) {
		s->was_full = true;
		update_probe(s, now);
		return;
	}
	s->probe_at = 0;
	if (s->was_full) {
		s->was_full = false;
		if (s->cb.sendable != NULL)
			s->cb.sendable(s->arg);
	}
}

static bool
take_slot(struct mk_dstream *s, uint8_t type, const uint8_t *data,
    size_t len)
{
	struct txslot *t = &s->tx[s->snd_nxt % W];

	t->data = NULL;
	if (len > 0) {
		if ((t->data = malloc(len)) == NULL)
			return false;
		memcpy(t->data, data, len);
	}
	t->len = (uint32_t)len;
	t->type = type;
	t->used = true;
	t->sent = false;
	t->tries = 0;
	t->sent_at = 0;
	s->snd_nxt++;
	return true;
}

static void
try_fin(struct mk_dstream *s, uint64_t now)
{
	if (!s->shut || s->fin_queued || s->failed || free_slots(s) == 0)
		return;
	if (take_slot(s, T_FIN, NULL, 0)) {
		s->fin_queued = true;
		send_pending(s, now);
	}
}

size_t
mk_dstream_write(struct mk_dstream *s, const uint8_t *data, size_t len,
    uint64_t now_us)
{
	size_t done = 0, n;

	if (s->failed || s->shut)
		return 0;
	while (done < len && free_slots(s) > 0) {
		n = len - done;
		if (n > MK_DSTREAM_CHUNK)
			n = MK_DSTREAM_CHUNK;
		if (!take_slot(s, T_DATA, data + done, n))
			break;
		done += n;
	}
	send_pending(s, now_us);
	note_room(s, now_us);
	return done;
}

void
mk_dstream_shutdown(struct mk_dstream *s, uint64_t now_us)
{
	if (s->shut)
		return;
	s->shut = true;
	try_fin(s, now_us);
}

static void
rtt_sample(struct mk_dstream *s, uint64_t r)
{
	uint64_t d;

	if (!s->have_rtt) {
		s->srtt = r;
		s->rttvar = r / 2;
		s->have_rtt = true;
	} else {
		d = s->srtt > r ? s->srtt - r : r - s->srtt;
		s->rttvar = (3 * s->rttvar + d) / 4;
		s->srtt = (7 * s->srtt + r) / 8;
	}
	s->st.srtt_us = s->srtt;
}

static void
reset_rto(struct mk_dstream *s)
{
	uint64_t r = s->have_rtt ? s->srtt + 4 * s->rttvar : RTO_INIT_US;

	if (r < RTO_MIN_US)
		r = RTO_MIN_US;
	if (r > RTO_MAX_US)
		r = RTO_MAX_US;
	s->rto = r;
}

static void
retransmit(struct mk_dstream *s, uint32_t seq, uint64_t now)
{
	(void)send_slot(s, seq, now);
}

/* An acknowledgement of our stream. */
static void
on_ack(struct mk_dstream *s, uint32_t ack, uint32_t sack, uint32_t wnd,
    uint64_t now)
{
	uint64_t newest_sacked = 0;
	uint32_t seq, i, top;

	if (wnd - s->snd_una <= 2 * W && wnd - s->snd_wnd <= 2 * W)
		s->snd_wnd = wnd;
	if (ack - s->snd_una <= s->snd_nxt - s->snd_una &&
	    ack != s->snd_una) {
		struct txslot *last = &s->tx[(ack - 1) % W];

		if (last->tries == 1)
			rtt_sample(s, now - last->sent_at);
		for (seq = s->snd_una; seq != ack; seq++) {
			struct txslot *t = &s->tx[seq % W];

			free(t->data);
			memset(t, 0, sizeof(*t));
		}
		s->snd_una = ack;
		s->last_progress = now;
		reset_rto(s);
		s->rto_at = s->snd_una == s->snd_nxt ? 0 : now + s->rto;
	}
	if (s->snd_una == s->snd_nxt)
		s->rto_epoch = 0;
	/* after a timeout the path works again: send what was in flight
	 * before it, all at once, instead of one a timeout */
	if (s->rto_epoch != 0) {
		for (seq = s->snd_una; seq != s->snd_nxt; seq++)
			if (s->tx[seq % W].sent &&
			    s->tx[seq % W].sent_at < s->rto_epoch)
				retransmit(s, seq, now);
		s->rto_epoch = 0;
	}
	/* the relay keeps order: a hole below a packet that arrived is
	 * lost, unless sent again since that packet went */
	top = s->snd_una;
	for (i = 0; i < 32; i++) {
		seq = ack + 1 + i;
		if (seq - s->snd_una >= s->snd_nxt - s->snd_una)
			break;
		if ((sack & (1U << i)) && s->tx[seq % W].sent) {
			if (s->tx[seq % W].sent_at > newest_sacked)
				newest_sacked = s->tx[seq % W].sent_at;
			top = seq;
		}
	}
	for (seq = s->snd_una; seq != top; seq++) {
		struct txslot *t = &s->tx[seq % W];
		uint32_t bit = seq - ack - 1;

		if (seq != ack && bit < 32 && (sack & (1U << bit)))
			continue;
		if (t->sent && t->sent_at < newest_sacked)
			retransmit(s, seq, now);
	}
	try_fin(s, now);
	send_pending(s, now);
}

/* Data or FIN numbered seq from the peer. */
static void
on_data(struct mk_dstream *s, uint8_t type, uint32_t seq,
    const uint8_t *data, size_t len, uint64_t now)
{
	struct rxslot *r;
	bool in_order, now_ready = false;

	if (seq - s->rcv_next >= W || seq - s->dlv >= W) {
		/* old (a duplicate) or beyond the window */
		s->st.duplicates++;
		send_ack(s, 0);
		return;
	}
	r = &s->rx[seq % W];
	if (r->have) {
		s->st.duplicates++;
		send_ack(s, 0);
		return;
	}
	r->data = NULL;
	if (len > 0) {
		if ((r->data = malloc(len)) == NULL)
			return;	/* as if lost */
		memcpy(r->data, data, len);
	}
	r->len = (uint32_t)len;
	r->seq = seq;
	r->type = type;
	r->have = true;
	s->st.recv_bytes += len;
	if (type == T_FIN)
		s->fin_seen = true;
	in_order = seq == s->rcv_next;
	while (s->rcv_next - s->dlv < W && s->rx[s->rcv_next % W].have &&
	    s->rx[s->rcv_next % W].seq == s->rcv_next) {
		s->rcv_next++;
		now_ready = true;
	}
	if (!in_order || sack_bits(s) != 0 || type == T_FIN ||
	    ++s->unacked_rx >= ACK_EVERY)
		send_ack(s, 0);
	else if (s->delack_at == 0)
		s->delack_at = now + DELACK_US;
	if (now_ready && s->cb.readable != NULL)
		s->cb.readable(s->arg);
}

int
mk_dstream_input(struct mk_dstream *s, const uint8_t *pkt, size_t len,
    uint64_t now_us)
{
	uint8_t *p = s->rplain;
	uint32_t stream, seq, ack_stream;
	uint8_t type, flags;
	size_t plen;

	if (!mk_dstream_is_ours(pkt, len) ||
	    len - OFF_BOX - 16 > sizeof(s->rplain) ||
	    crypto_box_open_easy_afternm(p, pkt + OFF_BOX, len - OFF_BOX,
	    pkt + 5, s->shared) != 0) {
		s->st.rejected++;
		return -1;
	}
	if (s->failed)
		return 0;
	plen = len - OFF_BOX - 16;
	if (plen < PLAIN_HDR || p[0] < T_DATA || p[0] > T_RST) {
		s->st.rejected++;
		return -1;
	}
	type = p[0];
	flags = p[1];
	stream = mk_get32(p + 4);
	seq = mk_get32(p + 8);
	ack_stream = mk_get32(p + 12);
	if (stream == 0) {
		s->st.rejected++;
		return -1;
	}
	s->st.recv_packets++;
	if (!s->heard) {
		s->heard = true;
		s->rx_stream = stream;
	} else if (stream != s->rx_stream) {
		if (type != T_RST) {
			/* tell the new incarnation, then give up: what the
			 * old one sent and we have not got is gone */
			uint32_t keep = s->rx_stream;

			s->rx_stream = stream;
			(void)emit(s, T_RST, 0, s->snd_nxt, NULL, 0);
			s->rx_stream = keep;
			fail(s, "the peer restarted: the stream is broken");
		}
		return 0;
	}
	if (type == T_RST) {
		if (ack_stream == s->tx_stream)
			fail(s, "the peer reset the stream (it is talking to "
			    "an earlier run of ours)");
		return 0;
	}
	if (ack_stream == s->tx_stream)
		on_ack(s, mk_get32(p + 16), mk_get32(p + 20), mk_get32(p + 24), now_us);
	if (s->failed)
		return 0;
	if (type == T_DATA || type == T_FIN)
		on_data(s, type, seq, p + PLAIN_HDR, plen - PLAIN_HDR, now_us);
	else if (flags & F_ANSWER)
		send_ack(s, 0);
	note_room(s, now_us);
	return 0;
}

const uint8_t *
mk_dstream_peek(struct mk_dstream *s, size_t *len, bool *eof)
{
	struct rxslot *r = &s->rx[s->dlv % W];

	*len = 0;
	*eof = false;
	for (;;) {
		if (s->dlv == s->rcv_next || !r->have)
			return NULL;
		if (r->type == T_FIN) {
			*eof = true;
			return NULL;
		}
		if (r->len > s->dlv_off) {
			*len = r->len - s->dlv_off;
			return r->data + s->dlv_off;
		}
		/* an empty packet: nothing to hand over, move on */
		free(r->data);
		memset(r, 0, sizeof(*r));
		s->dlv++;
		s->dlv_off = 0;
		r = &s->rx[s->dlv % W];
	}
}

void
mk_dstream_consume(struct mk_dstream *s, size_t n, uint64_t now_us)
{
	struct rxslot *r = &s->rx[s->dlv % W];
	uint32_t edge;

	if (s->dlv == s->rcv_next || !r->have || r->type == T_FIN)
		return;
	s->dlv_off += (uint32_t)n;
	if (s->dlv_off < r->len)
		return;
	free(r->data);
	memset(r, 0, sizeof(*r));
	s->dlv++;
	s->dlv_off = 0;
	/* a window update only for a sender that is about to stall */
	edge = s->dlv + W;
	if (edge - s->wnd_sent >= W / 4 && s->wnd_sent - s->rcv_next <= W / 4)
		send_ack(s, 0);
	(void)now_us;
}

void
mk_dstream_writable(struct mk_dstream *s, uint64_t now_us)
{
	if (s->failed)
		return;
	if (s->ack_owed)
		send_ack(s, 0);
	send_pending(s, now_us);
	note_room(s, now_us);
}

uint64_t
mk_dstream_next_timer(const struct mk_dstream *s)
{
	uint64_t t = UINT64_MAX;

	if (s->failed)
		return t;
	if (s->delack_at != 0 && s->delack_at < t)
		t = s->delack_at;
	if (s->rto_at != 0 && s->rto_at < t)
		t = s->rto_at;
	if (s->probe_at != 0 && s->probe_at < t)
		t = s->probe_at;
	return t;
}

void
mk_dstream_tick(struct mk_dstream *s, uint64_t now_us)
{
	if (s->failed)
		return;
	if (s->delack_at != 0 && now_us >= s->delack_at)
		send_ack(s, 0);
	if (s->rto_at != 0 && now_us >= s->rto_at) {
		/* one packet probes the path; the rest follow the answer */
		if (s->snd_una != s->snd_nxt && s->tx[s->snd_una % W].sent)
			retransmit(s, s->snd_una, now_us);
		s->rto = s->rto * 2 > RTO_MAX_US ? RTO_MAX_US : s->rto * 2;
		s->rto_epoch = now_us;
		s->rto_at = s->snd_una == s->snd_nxt ? 0 : now_us + s->rto;
	}
	if (s->probe_at != 0 && now_us >= s->probe_at) {
		send_ack(s, F_ANSWER);
		s->probe_at = now_us + PROBE_US;
	}
	note_room(s, now_us);
}

bool
mk_dstream_tx_done(const struct mk_dstream *s)
{
	return s->snd_una == s->snd_nxt && (!s->shut || s->fin_queued);
}

bool
mk_dstream_tx_closed(const struct mk_dstream *s)
{
	return s->shut;
}

bool
mk_dstream_rx_fin(const struct mk_dstream *s)
{
	return s->fin_seen;
}

bool
mk_dstream_heard(const struct mk_dstream *s)
{
	return s->heard;
}

uint64_t
mk_dstream_last_progress(const struct mk_dstream *s)
{
	return s->last_progress;
}

void
mk_dstream_get_stats(const struct mk_dstream *s, struct mk_dstream_stats *st)
{
	*st = s->st;
}
