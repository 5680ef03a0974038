/* SPDX-License-Identifier: MIT */
#include "stunclient.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <sodium.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "loop.h"
#include "sock.h"
#include "util.h"

void
mk_stunc_sched_fast(struct mk_stunc_sched *s, uint64_t timeout_us)
{
	memset(s, 0, sizeof(*s));
	s->first_us = 100000;
	s->every_us = 200000;
	s->timeout_us = timeout_us;
}

void
mk_stunc_sched_rfc(struct mk_stunc_sched *s, uint64_t timeout_us)
{
	memset(s, 0, sizeof(*s));
	s->rfc = true;
	s->rto_us = 500000;
	s->rc = 7;
	s->rm = 16;
	s->timeout_us = timeout_us;
}

/* When the transaction gives up if nothing else limits it. */
static uint64_t
natural_deadline(const struct mk_stunc_sched *s, uint64_t start)
{
	uint64_t total = 0, rto;
	unsigned i;

	if (!s->rfc)
		return UINT64_MAX;
	/* Sends at 0, RTO, 3 RTO, ...; give up Rm x RTO after the last. */
	for (i = 1, rto = s->rto_us; i < s->rc; i++, rto *= 2)
		total += rto;
	return start + total + (uint64_t)s->rm * s->rto_us;
}

void
mk_stunc_start(struct mk_stunc_txn *t, const struct mk_stunc_sched *s,
    uint64_t now)
{
	uint64_t nat = natural_deadline(s, now);

	t->state = t->server.len == 0 ? MK_STUNC_FAILED : MK_STUNC_PENDING;
	t->sends = 0;
	t->next_us = now;
	t->deadline_us = s->timeout_us ? now + s->timeout_us : nat;
	if (nat < t->deadline_us)
		t->deadline_us = nat;
	t->resp_len = 0;
	t->rtt_us = 0;
	t->last_errno = t->server.len == 0 ? EDESTADDRREQ : 0;
	t->junk = 0;
	memset(&t->mapped, 0, sizeof(t->mapped));
	memset(&t->from, 0, sizeof(t->from));
	randombytes_buf(t->txids[0], MK_STUN_TXID_LEN);
}

static uint64_t
next_send(const struct mk_stunc_txn *t, const struct mk_stunc_sched *s)
{
	uint64_t last = t->sent_us[t->sends - 1];

	if (s->rfc) {
		if (t->sends >= s->rc)
			return UINT64_MAX;
		return last + (s->rto_us << (t->sends - 1));
	}
	if (t->sends >= MK_STUNC_MAX_SENDS)
		return UINT64_MAX;
	return last + (t->sends == 1 ? s->first_us : s->every_us);
}

static void
send_one(int fd, int sock_family, struct mk_stunc_txn *t,
    const struct mk_stunc_sched *s, uint64_t now)
{
	uint8_t req[64];
	struct mk_addr dst;
	unsigned k = t->sends;
	size_t len;

	if (k > 0) {
		/* fast: a new ID per send; rfc: the same one throughout. */
		if (s->rfc)
			memcpy(t->txids[k], t->txids[0], MK_STUN_TXID_LEN);
		else
			randombytes_buf(t->txids[k], MK_STUN_TXID_LEN);
	}
	len = mk_stun_request(req, sizeof(req), t->txids[k], t->change);
	mk_addr_for_socket(&dst, &t->server, sock_family);
	if (sock_family == AF_INET && mk_addr_family(&t->server) != AF_INET) {
		t->state = MK_STUNC_FAILED;
		t->last_errno = EAFNOSUPPORT;
		return;
	}
	if (sendto(fd, req, len, 0, &dst.sa, dst.len) < 0) {
		t->last_errno = errno;
		/* A full buffer or a transient error: the next retransmit
		 * tries again. A wrong family will not heal, and neither,
		 * within a transaction's few seconds, will a host without
		 * any route there (an IPv6-only host asking an IPv4 server). */
		if (errno == EAFNOSUPPORT || errno == EINVAL ||
		    errno == ENETUNREACH) {
			t->state = MK_STUNC_FAILED;
			return;
		}
	}
	t->sent_us[k] = now;
	t->sends = k + 1;
	t->next_us = next_send(t, s);
}

uint64_t
mk_stunc_send_due(int fd, int sock_family, struct mk_stunc_txn *t, size_t n,
    const struct mk_stunc_sched *s, uint64_t now)
{
	uint64_t next = UINT64_MAX;
	size_t i;

	for (i = 0; i < n; i++) {
		if (t[i].state != MK_STUNC_PENDING)
			continue;
		if (now >= t[i].deadline_us) {
			t[i].state = MK_STUNC_TIMEOUT;
			continue;
		}
		if (now >= t[i].next_us)
			send_one(fd, sock_family, &t[i], s, now);
		if (t[i].state != MK_STUNC_PENDING)
			continue;
		if (t[i].next_us < next)
			next = t[i].next_us;
		if (t[i].deadline_us < next)
			next = t[i].deadline_us;
	}
	return next;
}

static bool
source_ok(const struct mk_stunc_txn *t, const struct mk_addr *from)
{
	if (t->accept_any_source)
		return true;
	if (mk_addr_equal(from, &t->server))
		return true;
	return t->accept_from.len != 0 && mk_addr_equal(from, &t->accept_from);
}

static int match(struct mk_stunc_txn *t, size_t n, const uint8_t *buf,
    size_t len, const struct mk_addr *from, uint64_t now, const char **why);

/* Count a datagram that did not count against the transactions whose
 * server sent it, so a caller can tell "silent" from "talking nonsense". */
static int
junk(struct mk_stunc_txn *t, size_t n, const struct mk_addr *from)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (t[i].state == MK_STUNC_PENDING &&
		    mk_addr_equal(&t[i].server, from))
			t[i].junk++;
	}
	return -1;
}

int
mk_stunc_input(struct mk_stunc_txn *t, size_t n, const uint8_t *buf,
    size_t len, const struct mk_addr *from, uint64_t now, const char **why)
{
	int r = match(t, n, buf, len, from, now, why);

	return r >= 0 ? r : junk(t, n, from);
}

static int
match(struct mk_stunc_txn *t, size_t n, const uint8_t *buf,
    size_t len, const struct mk_addr *from, uint64_t now, const char **why)
{
	struct mk_stunc_txn *x;
	size_t i;
	unsigned k;

	if (!mk_stun_is(buf, len) || len > MK_STUN_MAX_LEN) {
		*why = "not a STUN message";
		return -1;
	}
	/* Some servers (pion) send stray bytes after the message; Tailscale
	 * trims to the header's length, and so do we. */
	if (len > MK_STUN_HDR_LEN + (size_t)(buf[2] << 8 | buf[3]))
		len = MK_STUN_HDR_LEN + (size_t)(buf[2] << 8 | buf[3]);
	for (i = 0; i < n; i++) {
		x = &t[i];
		if (x->state != MK_STUNC_PENDING)
			continue;
		for (k = 0; k < x->sends; k++) {
			if (memcmp(buf + 8, x->txids[k], MK_STUN_TXID_LEN) == 0)
				break;
		}
		if (k == x->sends)
			continue;
		if (!source_ok(x, from)) {
			*why = "right transaction ID from the wrong address";
			return -1;
		}
		memcpy(x->resp_buf, buf, len);
		x->resp_len = len;
		if (mk_stun_parse(&x->resp, x->resp_buf, len, false, why) != 0)
			return -1;
		if (x->resp.type == MK_STUN_BINDING_ERROR) {
			x->state = MK_STUNC_ERROR;
		} else if (x->resp.type == MK_STUN_BINDING_SUCCESS) {
			if (x->resp.has & MK_STUN_HAS_XOR_MAPPED)
				x->mapped = x->resp.xor_mapped;
			else if (x->resp.has & MK_STUN_HAS_MAPPED)
				x->mapped = x->resp.mapped;
			else {
				*why = "success response without a mapped address";
				return -1;
			}
			x->state = MK_STUNC_DONE;
		} else {
			*why = "not a Binding response";
			return -1;
		}
		/* rfc mode reuses one ID: time from the first send. */
		x->rtt_us = now - x->sent_us[k];
		x->from = *from;
		return (int)i;
	}
	*why = "unknown transaction ID";
	return -1;
}

const char *
mk_stunc_state_name(enum mk_stunc_state st)
{
	switch (st) {
	case MK_STUNC_IDLE:
		return "idle";
	case MK_STUNC_PENDING:
		return "pending";
	case MK_STUNC_DONE:
		return "answered";
	case MK_STUNC_ERROR:
		return "error response";
	case MK_STUNC_TIMEOUT:
		return "no answer";
	case MK_STUNC_FAILED:
		return "cannot send";
	}
	return "unknown";
}

const char *
mk_stunc_error_text(enum mk_stunc_state st, uint16_t error_code, int err,
    unsigned junk, char *buf, size_t n)
{
	if (st == MK_STUNC_ERROR)
		snprintf(buf, n, "error response %u", error_code);
	else if (st == MK_STUNC_FAILED && err != 0)
		snprintf(buf, n, "cannot send: %s", strerror(err));
	else if (st == MK_STUNC_FAILED)
		snprintf(buf, n, "cannot send");
	else if (junk > 0)
		snprintf(buf, n, "only invalid replies");
	else
		snprintf(buf, n, "no answer");
	return buf;
}

bool
mk_stunc_pending(const struct mk_stunc_txn *t, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (t[i].state == MK_STUNC_PENDING)
			return true;
	}
	return false;
}

static int
drain(int fd, struct mk_stunc_txn *t, size_t n)
{
	uint8_t buf[MK_STUN_MAX_LEN + 1];
	struct sockaddr_storage ss;
	struct mk_addr from;
	socklen_t sl;
	const char *why;
	ssize_t r;
	char a[MK_ADDRSTRLEN];

	for (;;) {
		sl = sizeof(ss);
		r = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT,
		    (struct sockaddr *)&ss, &sl);
		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			/* ICMP errors surface here on some sockets; the
			 * transaction times out on its own. */
			if (errno == ECONNREFUSED || errno == EHOSTUNREACH ||
			    errno == ENETUNREACH || errno == EINTR)
				continue;
			return -1;
		}
		mk_addr_from_sa(&from, (struct sockaddr *)&ss, sl);
		if (mk_stunc_input(t, n, buf, (size_t)r, &from, mk_now_us(),
		    &why) < 0)
			mk_debug("ignored %zd bytes from %s: %s", r,
			    mk_addr_fmt(&from, a, sizeof(a)), why);
	}
}

static bool
any_answered(const struct mk_stunc_group *g, size_t ng)
{
	size_t i, k;

	for (k = 0; k < ng; k++) {
		for (i = 0; i < g[k].n; i++) {
			if (g[k].t[i].state == MK_STUNC_DONE)
				return true;
		}
	}
	return false;
}

static void
settle(struct mk_stunc_group *g, size_t ng, uint64_t now)
{
	size_t i, k;

	for (k = 0; k < ng; k++) {
		if (g[k].settle_us == 0)
			continue;
		for (i = 0; i < g[k].n; i++) {
			if (g[k].t[i].deadline_us > now + g[k].settle_us)
				g[k].t[i].deadline_us = now + g[k].settle_us;
		}
	}
}

int
mk_stunc_exchange_groups(struct mk_stunc_group *g, size_t ng)
{
	struct pollfd pfd[16];
	int family[16], answered = 0, r;
	uint64_t now = mk_now_us(), next, gn;
	size_t i, k;
	bool pending, settled = false;

	if (ng > MK_ARRAY_LEN(pfd)) {
		errno = EINVAL;
		return -1;
	}
	for (k = 0; k < ng; k++) {
		pfd[k].fd = g[k].fd;
		pfd[k].events = POLLIN;
		family[k] = mk_sock_family(g[k].fd);
		for (i = 0; i < g[k].n; i++)
			mk_stunc_start(&g[k].t[i], g[k].sched, now);
	}
	for (;;) {
		now = mk_now_us();
		next = UINT64_MAX;
		pending = false;
		for (k = 0; k < ng; k++) {
			gn = mk_stunc_send_due(g[k].fd, family[k], g[k].t,
			    g[k].n, g[k].sched, now);
			if (gn < next)
				next = gn;
			pending |= mk_stunc_pending(g[k].t, g[k].n);
		}
		if (!pending)
			break;
		r = poll(pfd, ng, next <= now ? 0 : (int)((next - now + 999) /
		    1000));
		if (r < 0 && errno != EINTR)
			return -1;
		for (k = 0; r > 0 && k < ng; k++) {
			if ((pfd[k].revents & (POLLIN | POLLERR)) &&
			    drain(g[k].fd, g[k].t, g[k].n) != 0)
				return -1;
		}
		if (!settled && any_answered(g, ng)) {
			settled = true;
			settle(g, ng, mk_now_us());
		}
	}
	for (k = 0; k < ng; k++) {
		for (i = 0; i < g[k].n; i++)
			answered += g[k].t[i].state == MK_STUNC_DONE;
	}
	return answered;
}

int
mk_stunc_exchange(int fd, struct mk_stunc_txn *t, size_t n,
    const struct mk_stunc_sched *s)
{
	struct mk_stunc_group g = { .fd = fd, .t = t, .n = n, .sched = s };

	return mk_stunc_exchange_groups(&g, 1);
}
