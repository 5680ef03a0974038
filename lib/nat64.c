/* SPDX-License-Identifier: MIT */
/* NAT64 prefixes: RFC 6052 addresses, RFC 7050 discovery. See nat64.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lookup.h"
#include "nat64.h"

/* RFC 7050 2.2: the well-known IPv4 addresses of ipv4only.arpa. */
static const uint8_t wka[2][4] = { { 192, 0, 0, 170 }, { 192, 0, 0, 171 } };
/* RFC 6052 2.2's lengths, shortest first. */
static const unsigned lens[] = { 32, 40, 48, 56, 64, 96 };
#define N_LENS	(sizeof(lens) / sizeof(lens[0]))
#define U_OCTET	8	/* bits 64-71: always zero */

bool
mk_nat64_len_ok(unsigned len)
{
	size_t i;

	for (i = 0; i < N_LENS; i++)
		if (lens[i] == len)
			return true;
	return false;
}

/* The bytes an IPv4 address takes after a prefix of len bits: the four
 * after the prefix, stepping over the u octet. */
static void
v4_positions(unsigned len, size_t pos[4])
{
	size_t at = len / 8, i;

	for (i = 0; i < 4; i++) {
		if (at == U_OCTET)
			at++;
		pos[i] = at++;
	}
}

int
mk_nat64_parse(struct mk_nat64_prefix *p, const char *s, const char **why)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash, *end;
	unsigned long len;
	size_t i;

	memset(p, 0, sizeof(*p));
	if (strlen(s) >= sizeof(buf)) {
		*why = "prefix too long";
		return -1;
	}
	strcpy(buf, s);
	if ((slash = strchr(buf, '/')) == NULL) {
		*why = "no /length";
		return -1;
	}
	*slash++ = '\0';
	errno = 0;
	len = strtoul(slash, &end, 10);
	if (*slash == '\0' || *end != '\0' || errno != 0 ||
	    !mk_nat64_len_ok((unsigned)len)) {
		*why = "length not 32, 40, 48, 56, 64 or 96 (RFC 6052)";
		return -1;
	}
	if (inet_pton(AF_INET6, buf, p->ip) != 1) {
		*why = "not an IPv6 address";
		return -1;
	}
	p->len = (unsigned)len;
	for (i = p->len / 8; i < 16; i++)
		if (p->ip[i] != 0) {
			*why = "bits set past the prefix length";
			return -1;
		}
	if (p->ip[U_OCTET] != 0) {
		*why = "bits 64-71 not zero (RFC 6052 2.2)";
		return -1;
	}
	return 0;
}

char *
mk_nat64_fmt(const struct mk_nat64_prefix *p, char *buf, size_t n)
{
	char a[INET6_ADDRSTRLEN];

	if (inet_ntop(AF_INET6, p->ip, a, sizeof(a)) == NULL)
		snprintf(a, sizeof(a), "?");
	snprintf(buf, n, "%s/%u", a, p->len);
	return buf;
}

void
mk_nat64_wkp(struct mk_nat64_prefix *p)
{
	memset(p, 0, sizeof(*p));
	p->ip[1] = 0x64;
	p->ip[2] = 0xff;
	p->ip[3] = 0x9b;
	p->len = 96;
}

bool
mk_nat64_equal(const struct mk_nat64_prefix *a,
    const struct mk_nat64_prefix *b)
{
	return a->len == b->len && memcmp(a->ip, b->ip, sizeof(a->ip)) == 0;
}

bool
mk_nat64_is_wkp(const struct mk_nat64_prefix *p)
{
	struct mk_nat64_prefix w;

	mk_nat64_wkp(&w);
	return mk_nat64_equal(p, &w);
}

void
mk_nat64_synth(const struct mk_nat64_prefix *p, const uint8_t v4[4],
    uint8_t out[16])
{
	size_t pos[4], i;

	memset(out, 0, 16);
	memcpy(out, p->ip, p->len / 8);
	v4_positions(p->len, pos);
	for (i = 0; i < 4; i++)
		out[pos[i]] = v4[i];
}

bool
mk_nat64_extract(const struct mk_nat64_prefix *p, const uint8_t v6[16],
    uint8_t v4[4])
{
	size_t pos[4], i;

	if (!mk_nat64_len_ok(p->len) || memcmp(v6, p->ip, p->len / 8) != 0 ||
	    v6[U_OCTET] != 0)
		return false;
	v4_positions(p->len, pos);
	for (i = 0; i < 4; i++)
		v4[i] = v6[pos[i]];
	return true;
}

bool
mk_nat64_addr_to6(const struct mk_nat64_prefix *p, const struct mk_addr *v4,
    struct mk_addr *out)
{
	uint8_t ip[16];

	if (mk_addr_family(v4) != AF_INET || !mk_nat64_len_ok(p->len))
		return false;
	mk_nat64_synth(p, (const uint8_t *)&v4->sin.sin_addr, ip);
	mk_addr_from_v6(out, ip, mk_addr_port(v4));
	return true;
}

bool
mk_nat64_addr_to4(const struct mk_nat64_prefix *p, const struct mk_addr *v6,
    struct mk_addr *out)
{
	uint8_t ip[4];

	if (mk_addr_family(v6) != AF_INET6 ||
	    !mk_nat64_extract(p, (const uint8_t *)&v6->sin6.sin6_addr, ip))
		return false;
	mk_addr_from_v4(out, ip, mk_addr_port(v6));
	return true;
}

/* RFC 6890's special-purpose blocks that are not globally reachable,
 * which RFC 6052 3.1 keeps out of the well-known prefix; but for
 * 198.18.0.0/15, the lab's whole fake internet (benchmarking addresses,
 * never a real peer's), which its well-known-prefix NAT64 serves. */
static bool
v4_global(const uint8_t a[4])
{
	return !(a[0] == 0 || a[0] == 10 || a[0] == 127 || a[0] >= 224 ||
	    (a[0] == 100 && (a[1] & 0xc0) == 64) ||
	    (a[0] == 169 && a[1] == 254) ||
	    (a[0] == 172 && (a[1] & 0xf0) == 16) ||
	    (a[0] == 192 && a[1] == 0 && a[2] == 0) ||
	    (a[0] == 192 && a[1] == 0 && a[2] == 2) ||
	    (a[0] == 192 && a[1] == 168) ||
	    (a[0] == 198 && a[1] == 51 && a[2] == 100) ||
	    (a[0] == 203 && a[1] == 0 && a[2] == 113));
}

bool
mk_nat64_reachable(const struct mk_nat64_prefix *p, const uint8_t v4[4])
{
	return !mk_nat64_is_wkp(p) || v4_global(v4);
}

/* ---- RFC 7050 ---- */

/* The well-known address (0 or 1) at length len of a, with the u octet
 * zero; -1 if none is there. The suffix is not looked at (RFC 6052 2.2:
 * ignored on receipt): the other answers settle a doubt instead. */
static int
wka_at(const uint8_t a[16], unsigned len)
{
	size_t pos[4], i, k;
	uint8_t v4[4];

	if (a[U_OCTET] != 0)
		return -1;
	v4_positions(len, pos);
	for (i = 0; i < 4; i++)
		v4[i] = a[pos[i]];
	for (k = 0; k < 2; k++)
		if (memcmp(v4, wka[k], 4) == 0)
			return (int)k;
	return -1;
}

static void
prefix_of(const uint8_t a[16], unsigned len, struct mk_nat64_prefix *p)
{
	memset(p, 0, sizeof(*p));
	memcpy(p->ip, a, len / 8);
	p->len = len;
}

/* Does another answer hold the other well-known address than `which`
 * under the same prefix of length len? */
static bool
confirmed(const uint8_t (*aaaa)[16], size_t n, size_t self,
    const uint8_t a[16], unsigned len, int which)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (i != self && memcmp(aaaa[i], a, len / 8) == 0 &&
		    wka_at(aaaa[i], len) == 1 - which)
			return true;
	return false;
}

/* The one length at which answer `self` holds a well-known address, or 0
 * when it holds none or stays ambiguous. */
static unsigned
answer_len(const uint8_t (*aaaa)[16], size_t n, size_t self)
{
	unsigned found[N_LENS], chosen = 0;
	size_t i, nf = 0, nc = 0;
	int which[N_LENS];

	for (i = 0; i < N_LENS; i++)
		if ((which[nf] = wka_at(aaaa[self], lens[i])) >= 0)
			found[nf++] = lens[i];
	if (nf == 1)
		return found[0];
	for (i = 0; i < nf; i++)
		if (confirmed(aaaa, n, self, aaaa[self], found[i], which[i])) {
			chosen = found[i];
			nc++;
		}
	return nc == 1 ? chosen : 0;
}

size_t
mk_nat64_from_aaaa(const uint8_t (*aaaa)[16], size_t n,
    struct mk_nat64_prefix *out, size_t max)
{
	struct mk_nat64_prefix p;
	size_t i, k, got = 0;
	unsigned len;

	for (i = 0; i < n && got < max; i++) {
		if ((len = answer_len(aaaa, n, i)) == 0)
			continue;
		prefix_of(aaaa[i], len, &p);
		for (k = 0; k < got; k++)
			if (mk_nat64_equal(&out[k], &p))
				break;
		if (k == got)
			out[got++] = p;
	}
	return got;
}

bool
mk_nat64_v4_routed(void)
{
	struct sockaddr_in sin;
	bool routed;
	int fd;

	if ((fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return false;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(9);
	/* any address off every LAN will do: 192.0.0.170 is ipv4only.arpa's
	 * own, never a host; a UDP connect only asks the routing table */
	memcpy(&sin.sin_addr, wka[0], 4);
	routed = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 ||
	    (errno != ENETUNREACH && errno != EHOSTUNREACH);
	close(fd);
	return routed;
}

/* ---- discovery on a loop ---- */

static void
disc_finish(struct mk_nat64_disc *d, const struct mk_nat64_prefix *pfx,
    size_t n)
{
	struct mk_nat64_prefix wkp;

	mk_nat64_disc_cancel(d);
	if (n == 0) {
		mk_nat64_wkp(&wkp);
		d->done(d->arg, &wkp, 1, false);
	} else {
		d->done(d->arg, pfx, n, true);
	}
}

static void
on_disc_answer(struct mk_loop *l, struct mk_io *io, uint32_t events)
{
	struct mk_nat64_disc *d = io->arg;
	struct mk_addr a[MK_LOOKUP_MAX];
	struct mk_nat64_prefix pfx[MK_NAT64_MAX];
	uint8_t aaaa[MK_LOOKUP_MAX][16];
	const char *why;
	size_t n = 0, i, k = 0;
	int r;

	(void)l;
	(void)events;
	if ((r = mk_lookup_result(d->lookup, a, MK_LOOKUP_MAX, &n, &why)) == 0)
		return;
	/* an answer that comes after the deadline does not count, even
	 * when the loop sees it before the timer */
	if (mk_now_us() >= d->deadline_us)
		r = -1;
	for (i = 0; r > 0 && i < n; i++)
		if (mk_addr_family(&a[i]) == AF_INET6)
			memcpy(aaaa[k++], &a[i].sin6.sin6_addr, 16);
	n = mk_nat64_from_aaaa((const uint8_t (*)[16])aaaa, k, pfx,
	    MK_NAT64_MAX);
	disc_finish(d, pfx, n);
}

static void
on_disc_timeout(struct mk_loop *l, struct mk_timer *t)
{
	(void)l;
	disc_finish(t->arg, NULL, 0);
}

int
mk_nat64_disc_start(struct mk_nat64_disc *d, struct mk_loop *l,
    const char *name, uint64_t timeout_us, mk_nat64_done_fn done, void *arg,
    const char **why)
{
	memset(d, 0, sizeof(*d));
	d->loop = l;
	d->done = done;
	d->arg = arg;
	mk_timer_init(&d->timer, on_disc_timeout, d);
	if ((d->lookup = mk_lookup_start(name != NULL ? name : MK_NAT64_NAME,
	    0, AF_INET6, SOCK_DGRAM, why)) == NULL)
		return -1;
	d->io.fd = mk_lookup_fd(d->lookup);
	d->io.fn = on_disc_answer;
	d->io.arg = d;
	if (mk_loop_add(l, &d->io, EPOLLIN) != 0) {
		*why = strerror(errno);
		mk_lookup_free(d->lookup);
		d->lookup = NULL;
		return -1;
	}
	d->deadline_us = mk_now_us() + timeout_us;
	mk_timer_at(l, &d->timer, d->deadline_us);
	d->running = true;
	return 0;
}

bool
mk_nat64_disc_running(const struct mk_nat64_disc *d)
{
	return d->running;
}

void
mk_nat64_disc_cancel(struct mk_nat64_disc *d)
{
	if (!d->running)
		return;
	mk_loop_del(d->loop, &d->io);
	mk_timer_cancel(d->loop, &d->timer);
	mk_lookup_free(d->lookup);	/* a lookup still running ends alone */
	d->lookup = NULL;
	d->running = false;
}
