/* SPDX-License-Identifier: MIT */
/*
 * derpcat's stream mode over a simulated relay: delay, loss, a slow
 * reader, a restarted peer. Checks that bytes arrive intact and in order,
 * that the end arrives once everything before it has, and that what one
 * side has in flight towards the other never exceeds a relay's 32-packet
 * queue.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "derp_stream.h"
#include "key.h"
#include "t.h"

#define QCAP	4096

struct sim;

struct chan {
	struct sim	*sim;
	struct {
		uint64_t	 at;
		size_t		 len;
		uint8_t		*data;
	}		 q[QCAP];
	size_t		 head, n;
	size_t		 max_n;		/* most packets in flight at once */
	unsigned	 loss_pct;
	unsigned	 sent;
	bool		 busy;		/* transport refuses (EAGAIN) */
};

struct side {
	struct mk_dstream	*s;
	struct chan		*out;
	const uint8_t		*src;
	size_t			 src_len, src_off;
	uint8_t			*dst;
	size_t			 dst_len, dst_cap;
	bool			 eof;
	bool			 shut_at_end;
	size_t			 read_per_tick;	/* 0: as fast as possible */
	const char		*error;
	unsigned		 readable_calls;
};

struct sim {
	uint64_t	 now;
	uint64_t	 delay;
	uint32_t	 rng;
};

static uint32_t
rnd(struct sim *sim)
{
	sim->rng = sim->rng * 1103515245 + 12345;
	return sim->rng >> 8;
}

static int
chan_send(void *arg, const uint8_t *pkt, size_t len)
{
	struct side *sd = arg;
	struct chan *c = sd->out;
	size_t i;

	if (c->busy)
		return -1;
	c->sent++;
	if (c->loss_pct != 0 && rnd(c->sim) % 100 < c->loss_pct)
		return 0;	/* the relay dropped it */
	if (c->n == QCAP)
		return -1;
	i = (c->head + c->n) % QCAP;
	c->q[i].at = c->sim->now + c->sim->delay;
	c->q[i].len = len;
	c->q[i].data = malloc(len);
	memcpy(c->q[i].data, pkt, len);
	c->n++;
	if (c->n > c->max_n)
		c->max_n = c->n;
	return 0;
}

static void
on_readable(void *arg)
{
	struct side *sd = arg;

	sd->readable_calls++;
}

static void
on_error(void *arg, const char *why)
{
	struct side *sd = arg;

	sd->error = why;
}

static const struct mk_dstream_cb cb = {
	.send = chan_send,
	.readable = on_readable,
	.error = on_error,
};

static void
side_init(struct side *sd, struct chan *out, const struct mk_key *me,
    const struct mk_key *peer_pub)
{
	memset(sd, 0, sizeof(*sd));
	sd->out = out;
	mk_dstream_new(&sd->s, me, peer_pub, &cb, sd);
}

static void
side_free(struct side *sd)
{
	mk_dstream_free(sd->s);
	free(sd->dst);
}

/* Read what is in order (at most read_per_tick) into dst. */
static void
side_read(struct side *sd, uint64_t now)
{
	size_t n, budget = sd->read_per_tick ? sd->read_per_tick : SIZE_MAX;
	const uint8_t *p;
	bool eof;

	while (budget > 0 && (p = mk_dstream_peek(sd->s, &n, &eof)) != NULL) {
		if (n > budget)
			n = budget;
		if (sd->dst_len + n > sd->dst_cap) {
			sd->dst_cap = (sd->dst_len + n) * 2;
			sd->dst = realloc(sd->dst, sd->dst_cap);
		}
		memcpy(sd->dst + sd->dst_len, p, n);
		sd->dst_len += n;
		mk_dstream_consume(sd->s, n, now);
		budget -= n;
	}
	if (p == NULL && eof)
		sd->eof = true;
}

static void
side_write(struct side *sd, uint64_t now)
{
	size_t room, n;

	while (sd->src_off < sd->src_len &&
	    (room = mk_dstream_room(sd->s)) > 0) {
		n = sd->src_len - sd->src_off;
		if (n > room)
			n = room;
		/* odd sizes, so packets are not all full */
		if (n > 5000)
			n = 5000 + (sd->src_off % 7000);
		if (n > sd->src_len - sd->src_off)
			n = sd->src_len - sd->src_off;
		n = mk_dstream_write(sd->s, sd->src + sd->src_off, n, now);
		if (n == 0)
			break;
		sd->src_off += n;
	}
	if (sd->src_off == sd->src_len && sd->shut_at_end)
		mk_dstream_shutdown(sd->s, now);
}

static void
chan_deliver(struct chan *c, struct side *to, uint64_t now)
{
	while (c->n > 0 && c->q[c->head].at <= now) {
		mk_dstream_input(to->s, c->q[c->head].data, c->q[c->head].len,
		    now);
		free(c->q[c->head].data);
		c->head = (c->head + 1) % QCAP;
		c->n--;
	}
}

static void
chan_clear(struct chan *c)
{
	while (c->n > 0) {
		free(c->q[c->head].data);
		c->head = (c->head + 1) % QCAP;
		c->n--;
	}
}

/* Run until both are done or the time limit; returns the time taken. */
static uint64_t
run(struct sim *sim, struct side *a, struct side *b, struct chan *ab,
    struct chan *ba, uint64_t limit_us)
{
	uint64_t start = sim->now;

	while (sim->now - start < limit_us) {
		side_write(a, sim->now);
		side_write(b, sim->now);
		chan_deliver(ab, b, sim->now);
		chan_deliver(ba, a, sim->now);
		side_read(a, sim->now);
		side_read(b, sim->now);
		if (mk_dstream_next_timer(a->s) <= sim->now)
			mk_dstream_tick(a->s, sim->now);
		if (mk_dstream_next_timer(b->s) <= sim->now)
			mk_dstream_tick(b->s, sim->now);
		if (a->eof && b->eof && mk_dstream_tx_done(a->s) &&
		    mk_dstream_tx_done(b->s) && ab->n == 0 && ba->n == 0)
			break;
		if (a->error != NULL || b->error != NULL)
			break;
		sim->now += 100;
	}
	return sim->now - start;
}

static uint8_t *
random_bytes(size_t n)
{
	uint8_t *p = malloc(n);

	randombytes_buf(p, n);
	return p;
}

struct pair {
	struct sim	 sim;
	struct chan	*ab, *ba;
	struct side	 a, b;
	struct mk_key	 ka, kb, pa, pb;
};

static void
pair_init(struct pair *p, unsigned loss)
{
	memset(p, 0, sizeof(*p));
	p->sim.delay = 1000;
	p->sim.rng = 42;
	p->ab = calloc(1, sizeof(*p->ab));
	p->ba = calloc(1, sizeof(*p->ba));
	p->ab->sim = p->ba->sim = &p->sim;
	p->ab->loss_pct = p->ba->loss_pct = loss;
	mk_key_generate(&p->ka);
	mk_key_generate(&p->kb);
	mk_key_public(&p->pa, &p->ka);
	mk_key_public(&p->pb, &p->kb);
	side_init(&p->a, p->ab, &p->ka, &p->pb);
	side_init(&p->b, p->ba, &p->kb, &p->pa);
}

static void
pair_free(struct pair *p)
{
	chan_clear(p->ab);
	chan_clear(p->ba);
	free(p->ab);
	free(p->ba);
	side_free(&p->a);
	side_free(&p->b);
}

static void
test_both_ways(unsigned loss, size_t n)
{
	struct pair p;
	uint8_t *x = random_bytes(n), *y = random_bytes(n / 3 + 1);
	struct mk_dstream_stats st;

	pair_init(&p, loss);
	p.a.src = x;
	p.a.src_len = n;
	p.a.shut_at_end = true;
	p.b.src = y;
	p.b.src_len = n / 3 + 1;
	p.b.shut_at_end = true;
	run(&p.sim, &p.a, &p.b, p.ab, p.ba, 600ULL * 1000000);
	CHECK(p.a.error == NULL && p.b.error == NULL);
	CHECK(p.b.dst_len == n && memcmp(p.b.dst, x, n) == 0);
	CHECK(p.a.dst_len == n / 3 + 1 && memcmp(p.a.dst, y, n / 3 + 1) == 0);
	CHECK(p.a.eof && p.b.eof);
	CHECK(mk_dstream_tx_done(p.a.s) && mk_dstream_tx_done(p.b.s));
	mk_dstream_get_stats(p.a.s, &st);
	if (loss == 0) {
		CHECK(st.retransmits == 0);
		/* nothing queued at the relay beyond its 32 packets */
		CHECK(p.ab->max_n <= 32 && p.ba->max_n <= 32);
	} else
		CHECK(st.retransmits > 0);
	pair_free(&p);
	free(x);
	free(y);
}

/* A reader that takes little at a time: the window holds the sender
 * back, nothing piles up at the relay, nothing is sent twice. */
static void
test_slow_reader(void)
{
	struct pair p;
	size_t n = 2000000;
	uint8_t *x = random_bytes(n);
	struct mk_dstream_stats st;

	pair_init(&p, 0);
	p.a.src = x;
	p.a.src_len = n;
	p.a.shut_at_end = true;
	p.b.shut_at_end = true;
	p.b.read_per_tick = 700;
	run(&p.sim, &p.a, &p.b, p.ab, p.ba, 600ULL * 1000000);
	CHECK(p.b.dst_len == n && memcmp(p.b.dst, x, n) == 0);
	CHECK(p.b.eof);
	CHECK(p.ab->max_n <= 32);
	CHECK(p.ba->max_n <= 32);
	mk_dstream_get_stats(p.a.s, &st);
	CHECK(st.retransmits == 0);
	pair_free(&p);
	free(x);
}

/* The peer appears late (everything lost meanwhile), the transport is
 * busy for a while: the first packet is probed until answered. */
static void
test_late_peer_and_busy(void)
{
	struct pair p;
	size_t n = 300000;
	uint8_t *x = random_bytes(n);

	pair_init(&p, 0);
	p.a.src = x;
	p.a.src_len = n;
	p.a.shut_at_end = true;
	p.b.shut_at_end = true;
	p.ab->loss_pct = 100;
	run(&p.sim, &p.a, &p.b, p.ab, p.ba, 5ULL * 1000000);
	CHECK(p.b.dst_len == 0);
	CHECK(!mk_dstream_heard(p.b.s));
	p.ab->loss_pct = 0;
	p.ba->busy = true;
	run(&p.sim, &p.a, &p.b, p.ab, p.ba, 1ULL * 1000000);
	p.ba->busy = false;
	mk_dstream_writable(p.b.s, p.sim.now);
	run(&p.sim, &p.a, &p.b, p.ab, p.ba, 60ULL * 1000000);
	CHECK(p.b.dst_len == n && memcmp(p.b.dst, x, n) == 0);
	CHECK(p.a.eof && p.b.eof);
	pair_free(&p);
	free(x);
}

/*
 * Data arrives, then the transport goes away before the delayed ACK is
 * sent (the relay restarted): the ACK is owed until the transport is
 * back, and no timer stays due in the past meanwhile (the loop would
 * spin on it). It goes out on mk_dstream_writable.
 */
static void
test_delack_transport_gone(void)
{
	struct pair p;
	struct mk_dstream_stats st;
	uint8_t x[100];
	uint64_t t;

	pair_init(&p, 0);
	memset(x, 'x', sizeof(x));
	CHECK(mk_dstream_write(p.a.s, x, sizeof(x), p.sim.now) == sizeof(x));
	p.sim.now += p.sim.delay;
	chan_deliver(p.ab, &p.b, p.sim.now);
	t = mk_dstream_next_timer(p.b.s);
	REQUIRE_VOID(t != UINT64_MAX && t > p.sim.now);	/* delayed ACK */
	p.ba->busy = true;
	p.sim.now = t;
	mk_dstream_tick(p.b.s, p.sim.now);
	mk_dstream_get_stats(p.b.s, &st);
	CHECK(st.acks_sent == 0);
	CHECK(mk_dstream_next_timer(p.b.s) > p.sim.now);
	p.sim.now += 1000;
	CHECK(mk_dstream_next_timer(p.b.s) > p.sim.now);
	p.ba->busy = false;
	mk_dstream_writable(p.b.s, p.sim.now);
	mk_dstream_get_stats(p.b.s, &st);
	CHECK(st.acks_sent == 1);
	pair_free(&p);
}

/* An empty stream: FIN alone, both ways. */
static void
test_empty(void)
{
	struct pair p;

	pair_init(&p, 0);
	p.a.shut_at_end = true;
	p.b.shut_at_end = true;
	run(&p.sim, &p.a, &p.b, p.ab, p.ba, 10ULL * 1000000);
	CHECK(p.a.eof && p.b.eof);
	CHECK(p.a.dst_len == 0 && p.b.dst_len == 0);
	CHECK(mk_dstream_rx_fin(p.a.s) && mk_dstream_tx_done(p.a.s));
	pair_free(&p);
}

/* B is replaced by a new run with the same key mid-stream: both learn
 * that the stream is broken instead of hanging. */
static void
test_restart(void)
{
	struct pair p;
	size_t n = 500000;
	uint8_t *x = random_bytes(n);

	pair_init(&p, 0);
	p.a.src = x;
	p.a.src_len = n;
	run(&p.sim, &p.a, &p.b, p.ab, p.ba, 3000);
	CHECK(p.b.dst_len > 0 && p.b.dst_len < n);
	side_free(&p.b);
	chan_clear(p.ab);
	chan_clear(p.ba);
	side_init(&p.b, p.ba, &p.kb, &p.pa);
	/* the new one talks first (its own data) */
	p.b.src = x;
	p.b.src_len = 100;
	run(&p.sim, &p.a, &p.b, p.ab, p.ba, 10ULL * 1000000);
	CHECK(p.a.error != NULL);
	/* A's reset reaches the new B */
	p.sim.now += 10 * p.sim.delay;
	chan_deliver(p.ab, &p.b, p.sim.now);
	CHECK(p.b.error != NULL);
	pair_free(&p);
	free(x);
}

/* Forged, foreign and damaged packets are refused and change nothing. */
static void
test_rejects(void)
{
	struct pair p;
	struct mk_key k3;
	struct mk_dstream_stats st;
	struct side s3;
	uint8_t junk[200];
	size_t i;

	pair_init(&p, 0);
	memset(junk, 0, sizeof(junk));
	CHECK(mk_dstream_input(p.b.s, junk, sizeof(junk), 0) == -1);
	memcpy(junk, "mkdc\x01", 5);
	CHECK(mk_dstream_is_ours(junk, sizeof(junk)));
	CHECK(mk_dstream_input(p.b.s, junk, sizeof(junk), 0) == -1);
	CHECK(!mk_dstream_is_ours(junk, 72));

	/* sealed to B by a third key: B's stream with A does not open it */
	mk_key_generate(&k3);
	side_init(&s3, p.ab, &k3, &p.pb);
	CHECK(mk_dstream_write(s3.s, (const uint8_t *)"x", 1, 0) == 1);
	REQUIRE_VOID(p.ab->n == 1);
	i = p.ab->head;
	CHECK(mk_dstream_input(p.b.s, p.ab->q[i].data, p.ab->q[i].len, 0) ==
	    -1);
	chan_clear(p.ab);
	side_free(&s3);

	/* A's own packet with one bit flipped */
	CHECK(mk_dstream_write(p.a.s, (const uint8_t *)"y", 1, 0) == 1);
	REQUIRE_VOID(p.ab->n == 1);
	i = p.ab->head;
	p.ab->q[i].data[40] ^= 0x10;
	CHECK(mk_dstream_input(p.b.s, p.ab->q[i].data, p.ab->q[i].len, 0) ==
	    -1);
	p.ab->q[i].data[40] ^= 0x10;
	CHECK(mk_dstream_input(p.b.s, p.ab->q[i].data, p.ab->q[i].len, 0) ==
	    0);
	mk_dstream_get_stats(p.b.s, &st);
	CHECK(st.rejected == 4 && st.recv_bytes == 1);
	chan_clear(p.ab);
	pair_free(&p);
}

int
main(void)
{
	if (mk_key_init() != 0)
		return 1;
	test_both_ways(0, 3000000);
	test_both_ways(5, 1000000);
	test_both_ways(30, 200000);
	test_slow_reader();
	test_late_peer_and_busy();
	test_empty();
	test_delack_transport_gone();
	test_restart();
	test_rejects();
	return t_done("derp_stream");
}
