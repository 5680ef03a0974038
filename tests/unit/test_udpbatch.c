/* SPDX-License-Identifier: MIT */
/* lib/udpbatch over real loopback sockets: batches in both directions,
 * forwarding without a copy, truncation, a refused datagram in the
 * middle of a batch, and the local address in and out (pktinfo) on
 * wildcard sockets. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "sock.h"
#include "udpbatch.h"
#include "t.h"

static int
bound(struct mk_addr *a)
{
	const char *why;
	int fd;

	mk_addr_parse(a, "127.0.0.1:0", 0, 0, &why);
	if ((fd = mk_udp_bind(a, 0, &why)) < 0)
		return -1;
	mk_sock_local(fd, a);
	return fd;
}

/* Datagram k is k+1 bytes, each of them k. */
static bool
well_formed(const uint8_t *p, size_t len)
{
	size_t i;

	if (len < 1 || len > 200 || p[0] != len - 1)
		return false;
	for (i = 1; i < len; i++)
		if (p[i] != p[0])
			return false;
	return true;
}

/* Receive until n datagrams are in (they may come in several batches). */
static unsigned
recv_all(struct mk_udpbatch *rx, int fd, unsigned want, uint8_t *seen,
    const struct mk_addr *from_want)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	struct mk_addr from;
	unsigned got = 0, i;
	bool trunc;
	size_t len;
	uint8_t *p;
	int n;

	while (got < want && poll(&pfd, 1, 2000) == 1) {
		n = mk_udpbatch_recv(rx, fd);
		for (i = 0; n > 0 && i < (unsigned)n; i++) {
			p = mk_udpbatch_get(rx, i, &len, &from, &trunc);
			CHECK(!trunc);
			CHECK(mk_addr_equal(&from, from_want));
			CHECK(well_formed(p, len));
			if (well_formed(p, len))
				seen[p[0]]++;
			got++;
		}
	}
	return got;
}

static void
test_roundtrip(void)
{
	struct mk_udpbatch tx, rx, fwd;
	struct mk_udpbatch_sent st;
	struct mk_addr a, b, c, bad;
	uint8_t seen[256] = { 0 };
	const char *why;
	unsigned k, i;
	int fa, fb, fc, n;
	uint8_t *p;

	REQUIRE_VOID((fa = bound(&a)) >= 0);
	REQUIRE_VOID((fb = bound(&b)) >= 0);
	REQUIRE_VOID((fc = bound(&c)) >= 0);
	REQUIRE_VOID(mk_udpbatch_init(&tx, 16, 256) == 0);
	REQUIRE_VOID(mk_udpbatch_init(&rx, 8, 256) == 0);
	REQUIRE_VOID(mk_udpbatch_init(&fwd, 8, 1) == 0);

	/* 16 datagrams of 1..16 bytes from a to b in one flush. */
	for (k = 0; k < 16; k++) {
		REQUIRE_VOID((p = mk_udpbatch_next(&tx)) != NULL);
		memset(p, (int)k, k + 1);
		mk_udpbatch_push(&tx, k + 1, &b);
	}
	CHECK(mk_udpbatch_next(&tx) == NULL);	/* full */
	CHECK(mk_udpbatch_push_ref(&tx, "x", 1, &b) == -1);
	mk_udpbatch_flush(&tx, fa, &st);
	CHECK(st.sent == 16 && st.dropped == 0);
	CHECK(tx.n == 0);
	CHECK(recv_all(&rx, fb, 16, seen, &a) == 16);
	for (k = 0; k < 16; k++)
		CHECK(seen[k] == 1);

	/* Nothing waiting: 0, not an error. */
	CHECK(mk_udpbatch_recv(&rx, fb) == 0);

	/* Forward without copying: b receives, points fwd at rx's
	 * buffers, sends on to c (fwd's own buffers are 1 byte). */
	for (k = 0; k < 4; k++) {
		p = mk_udpbatch_next(&tx);
		memset(p, (int)k, k + 1);
		mk_udpbatch_push(&tx, k + 1, &b);
	}
	mk_udpbatch_flush(&tx, fa, &st);
	CHECK(st.sent == 4);
	{
		struct pollfd pfd = { .fd = fb, .events = POLLIN };
		unsigned got = 0;

		while (got < 4 && poll(&pfd, 1, 2000) == 1) {
			n = mk_udpbatch_recv(&rx, fb);
			for (i = 0; n > 0 && i < (unsigned)n; i++) {
				size_t len;

				p = mk_udpbatch_get(&rx, i, &len, NULL, NULL);
				CHECK(mk_udpbatch_push_ref(&fwd, p, len,
				    &c) == 0);
			}
			mk_udpbatch_flush(&fwd, fb, &st);
			CHECK(st.dropped == 0);
			got += st.sent;
		}
		CHECK(got == 4);
	}
	memset(seen, 0, sizeof(seen));
	CHECK(recv_all(&rx, fc, 4, seen, &b) == 4);
	for (k = 0; k < 4; k++)
		CHECK(seen[k] == 1);

	/* A datagram the kernel refuses (an IPv6 destination on an IPv4
	 * socket) in the middle: dropped, the rest still go. */
	mk_addr_parse(&bad, "[2001:db8::1]:9", 0, 0, &why);
	for (k = 0; k < 5; k++) {
		p = mk_udpbatch_next(&tx);
		memset(p, (int)k, k + 1);
		mk_udpbatch_push(&tx, k + 1, k == 2 ? &bad : &b);
	}
	mk_udpbatch_flush(&tx, fa, &st);
	CHECK(st.sent == 4 && st.dropped == 1 && st.last_errno != 0);
	memset(seen, 0, sizeof(seen));
	CHECK(recv_all(&rx, fb, 4, seen, &a) == 4);
	CHECK(seen[0] == 1 && seen[1] == 1 && seen[2] == 0 &&
	    seen[3] == 1 && seen[4] == 1);

	mk_udpbatch_free(&tx);
	mk_udpbatch_free(&rx);
	mk_udpbatch_free(&fwd);
	close(fa);
	close(fb);
	close(fc);
}

/* Receive n datagrams on fd into lens[] (their lengths, in order) and check
 * each is filled with its tag byte: datagram k of a GSO test carries k. */
static unsigned
recv_tagged(struct mk_udpbatch *rx, int fd, unsigned want, size_t *lens)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	unsigned got = 0, i;
	size_t len, j;
	uint8_t *p;
	int n;

	while (got < want && poll(&pfd, 1, 2000) == 1) {
		n = mk_udpbatch_recv(rx, fd);
		for (i = 0; n > 0 && i < (unsigned)n; i++, got++) {
			p = mk_udpbatch_get(rx, i, &len, NULL, NULL);
			for (j = 0; j < len; j++)
				if (p[j] != (uint8_t)got)
					return got;
			if (got < want)
				lens[got] = len;
		}
	}
	return got;
}

/* GSO: runs of equal datagrams to one destination go as one message and
 * arrive cut up exactly as queued: lengths, order, contents; a shorter one
 * ends a run, another destination starts one, and a run longer than a
 * message may be splits. */
static void
test_gso(void)
{
	static const size_t plan[] = {
		/* 70 of 1200 to b (more than one message's 64), ... */
		[0 ... 69] = 1200,
		/* ... a short one that ends the run, one more, ... */
		[70] = 300, [71] = 1200,
		/* ... 5 of 900 to c, then 3 of 900 to b again */
		[72 ... 76] = 900, [77 ... 79] = 900,
	};
	enum { N = sizeof(plan) / sizeof(plan[0]) };
	size_t lens_b[N], lens_c[N];
	struct mk_udpbatch tx, rx;
	struct mk_udpbatch_sent st;
	struct mk_addr a, b, c;
	static uint8_t data[N][1200];
	unsigned k, nb = 0, nc = 0, gb, gc;
	int fa, fb, fc;

	REQUIRE_VOID((fa = bound(&a)) >= 0);
	REQUIRE_VOID((fb = bound(&b)) >= 0);
	REQUIRE_VOID((fc = bound(&c)) >= 0);
	REQUIRE_VOID(mk_udpbatch_init(&tx, N, 1) == 0);
	REQUIRE_VOID(mk_udpbatch_gso(&tx) == 0);
	REQUIRE_VOID(mk_udpbatch_gso(&tx) == 0);	/* twice: no-op */
	REQUIRE_VOID(mk_udpbatch_init(&rx, 64, 2048) == 0);
	/* tag each datagram with its index at its receiver */
	for (k = 0; k < N; k++) {
		bool to_c = k >= 72 && k <= 76;

		memset(data[k], (int)(to_c ? nc++ : nb++), plan[k]);
		CHECK(mk_udpbatch_push_ref(&tx, data[k], plan[k],
		    to_c ? &c : &b) == 0);
	}
	mk_udpbatch_flush(&tx, fa, &st);
	CHECK(st.sent == N && st.dropped == 0);
	/* loopback does GSO: b's 70 in 2 messages (64, then 6 and the
	 * short one that ends the run), the lone one, c's 5, b's 3 */
	CHECK(tx.gmsg != NULL && st.messages == 5);
	gb = recv_tagged(&rx, fb, nb, lens_b);
	gc = recv_tagged(&rx, fc, nc, lens_c);
	CHECK(gb == nb && gc == nc);
	for (k = 0; k < gb && k < 70; k++)
		CHECK(lens_b[k] == 1200);
	CHECK(gb > 74 && lens_b[70] == 300 && lens_b[71] == 1200 &&
	    lens_b[72] == 900 && lens_b[74] == 900);
	for (k = 0; k < gc; k++)
		CHECK(lens_c[k] == 900);
	/* nothing more than queued */
	CHECK(mk_udpbatch_recv(&rx, fb) == 0 && mk_udpbatch_recv(&rx, fc) == 0);

	/* one datagram alone, and an empty flush */
	CHECK(mk_udpbatch_push_ref(&tx, data[0], 10, &b) == 0);
	mk_udpbatch_flush(&tx, fa, &st);
	CHECK(st.sent == 1);
	mk_udpbatch_flush(&tx, fa, &st);
	CHECK(st.sent == 0 && st.dropped == 0);
	CHECK(recv_tagged(&rx, fb, 1, lens_b) == 1 && lens_b[0] == 10);

	mk_udpbatch_free(&tx);
	mk_udpbatch_free(&rx);
	close(fa);
	close(fb);
	close(fc);
}

static void
test_truncated(void)
{
	struct mk_udpbatch rx;
	struct mk_addr a, b;
	uint8_t big[100];
	struct pollfd pfd;
	bool trunc = false;
	size_t len;
	int fa, fb;

	REQUIRE_VOID((fa = bound(&a)) >= 0);
	REQUIRE_VOID((fb = bound(&b)) >= 0);
	REQUIRE_VOID(mk_udpbatch_init(&rx, 4, 10) == 0);
	memset(big, 7, sizeof(big));
	CHECK(sendto(fa, big, sizeof(big), 0, &b.sa, b.len) == sizeof(big));
	pfd.fd = fb;
	pfd.events = POLLIN;
	CHECK(poll(&pfd, 1, 2000) == 1);
	CHECK(mk_udpbatch_recv(&rx, fb) == 1);
	(void)mk_udpbatch_get(&rx, 0, &len, NULL, &trunc);
	CHECK(trunc);
	mk_udpbatch_free(&rx);
	close(fa);
	close(fb);
}

static void
test_init(void)
{
	struct mk_udpbatch b;

	CHECK(mk_udpbatch_init(&b, 0, 100) == -1 && errno == EINVAL);
	CHECK(mk_udpbatch_init(&b, MK_UDPBATCH_MAX + 1, 100) == -1);
	CHECK(mk_udpbatch_init(&b, 4, 0) == -1);
	CHECK(mk_udpbatch_init(&b, 4, 100) == 0);
	mk_udpbatch_free(&b);
	mk_udpbatch_free(&b);	/* twice is harmless */
	/* a bad fd is an error, not "nothing waiting" */
	CHECK(mk_udpbatch_init(&b, 4, 100) == 0);
	CHECK(mk_udpbatch_recv(&b, -1) == -1 && errno == EBADF);
	mk_udpbatch_free(&b);
}

/* A destination for a dual-stack socket, converted in place (a STUN
 * responder on [::] answers IPv4 clients this way). */
static void
test_for_socket(void)
{
	struct mk_addr a;
	char buf[MK_ADDRSTRLEN];
	const char *why;

	mk_addr_parse(&a, "192.0.2.1:3478", 0, 0, &why);
	mk_addr_for_socket(&a, &a, AF_INET6);
	CHECK(a.sa.sa_family == AF_INET6 && a.len == sizeof(a.sin6));
	CHECK(ntohs(a.sin6.sin6_port) == 3478);
	mk_addr_unmap(&a);
	CHECK_STR(mk_addr_fmt(&a, buf, sizeof(buf)), "192.0.2.1:3478");
	mk_addr_for_socket(&a, &a, AF_INET);
	CHECK_STR(mk_addr_fmt(&a, buf, sizeof(buf)), "192.0.2.1:3478");
}

/*
 * A receive sets up only the slots written since the last one: a batch
 * that sent (its slots pointing at other memory, short lengths, other
 * names) and then receives gets whole datagrams in its own buffers, and
 * receives of different sizes in a row each see their own datagrams.
 */
static void
test_reuse(void)
{
	static const uint8_t other[4] = { 9, 9, 9, 9 };
	struct mk_udpbatch b;
	struct mk_udpbatch_sent st;
	struct mk_addr a, c, from;
	struct pollfd pfd;
	unsigned k, round, i;
	size_t len;
	uint8_t big[64], *p;
	bool trunc;
	int fa, fc, n;

	REQUIRE_VOID((fa = bound(&a)) >= 0);
	REQUIRE_VOID((fc = bound(&c)) >= 0);
	REQUIRE_VOID(mk_udpbatch_init(&b, 8, 64) == 0);
	for (k = 0; k < 6; k++)
		CHECK(mk_udpbatch_push_ref(&b, other, 1, &c) == 0);
	mk_udpbatch_flush(&b, fa, &st);
	CHECK(st.sent == 6);
	/* now receive on fa with the same batch: 3, then 1, then 5 */
	for (round = 0; round < 3; round++) {
		unsigned want = round == 0 ? 3 : round == 1 ? 1 : 5, got = 0;

		for (k = 0; k < want; k++) {
			memset(big, (int)(round * 10 + k), sizeof(big));
			CHECK(sendto(fc, big, 40 + k, 0, &a.sa, a.len) ==
			    (ssize_t)(40 + k));
		}
		pfd.fd = fa;
		pfd.events = POLLIN;
		while (got < want && poll(&pfd, 1, 2000) == 1) {
			n = mk_udpbatch_recv(&b, fa);
			for (i = 0; n > 0 && i < (unsigned)n; i++) {
				p = mk_udpbatch_get(&b, i, &len, &from, &trunc);
				CHECK(!trunc && len == 40 + got);
				CHECK(p == b.buf + (size_t)i * b.size);
				CHECK(p[0] == round * 10 + got &&
				    p[len - 1] == p[0]);
				CHECK(mk_addr_equal(&from, &c));
				got++;
			}
		}
		CHECK(got == want);
	}
	/* fc got the six 1-byte datagrams */
	for (k = 0; k < 6; k++)
		CHECK(recv(fc, big, sizeof(big), MSG_DONTWAIT) == 1);
	mk_udpbatch_free(&b);
	close(fa);
	close(fc);
}

/* A socket bound to text (port 0), and where it is. */
static int
bound_at(const char *text, unsigned flags, struct mk_addr *a)
{
	const char *why;
	int fd;

	if (mk_addr_parse(a, text, 0, 0, &why) != 0 ||
	    (fd = mk_udp_bind(a, flags, &why)) < 0)
		return -1;
	mk_sock_local(fd, a);
	return fd;
}

/* srv's address with the IP of ip. */
static void
at_ip(struct mk_addr *out, const char *ip, const struct mk_addr *srv)
{
	const char *why;

	mk_addr_parse(out, ip, mk_addr_port(srv), 0, &why);
}

/* One datagram waiting on fd: its length and source, or -1. */
static ssize_t
recv_one(int fd, uint8_t *buf, size_t cap, struct mk_addr *from)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	ssize_t n;

	if (poll(&pfd, 1, 2000) != 1)
		return -1;
	n = recvfrom(fd, buf, cap, 0, (struct sockaddr *)&ss, &sl);
	if (n >= 0)
		mk_addr_from_sa(from, (struct sockaddr *)&ss, sl);
	return n;
}

/* Receive want datagrams on the wildcard socket srv, each of them one
 * byte naming which of the server's addresses it was sent to (index into
 * dst); every one must report that address. Their sources in from[]. */
static unsigned
recv_local(struct mk_udpbatch *rx, int srv, unsigned want,
    const struct mk_addr *dst, struct mk_addr *from, struct mk_udp_local *loc)
{
	struct pollfd pfd = { .fd = srv, .events = POLLIN };
	unsigned got = 0, i;
	uint8_t *p;
	size_t len;
	int n;

	while (got < want && poll(&pfd, 1, 2000) == 1) {
		n = mk_udpbatch_recv(rx, srv);
		for (i = 0; n > 0 && i < (unsigned)n && got < want; i++) {
			p = mk_udpbatch_get(rx, i, &len, &from[got], NULL);
			CHECK(len == 1);
			CHECK(mk_udpbatch_local(rx, i, &loc[got]));
			CHECK(mk_addr_port(&loc[got].addr) == 0);
			CHECK(len == 1 && mk_addr_same_ip(&loc[got].addr,
			    &dst[p[0]]));
			CHECK(loc[got].ifindex != 0);
			got++;
		}
	}
	return got;
}

/*
 * A wildcard server (text: its bind address) on a loopback that has ips
 * [0] and [1]: the client (on ips[0]) asks both, and the answers, sent
 * in one batch from the local address each query came to, come from the
 * address asked. The same answers without a source all come from ips[0]
 * (routing's choice for a client on ips[0]), so the first check can fail.
 */
static void
wildcard_replies(const char *text, unsigned flags, const char *ips[2])
{
	struct mk_udpbatch rx, tx;
	struct mk_udpbatch_sent st;
	struct mk_addr srv, cli, dst[2], from[2], got;
	struct mk_udp_local loc[2];
	uint8_t buf[16];
	int fs, fc, k;
	uint8_t i;

	REQUIRE_VOID((fs = bound_at(text, flags, &srv)) >= 0);
	REQUIRE_VOID((fc = bound_at(ips[0], 0, &cli)) >= 0);
	REQUIRE_VOID(mk_udp_want_pktinfo(fs) == 0);
	REQUIRE_VOID(mk_udpbatch_init_pktinfo(&rx, 4, 64) == 0);
	REQUIRE_VOID(mk_udpbatch_init_pktinfo(&tx, 4, 64) == 0);
	for (k = 0; k < 2; k++) {
		at_ip(&dst[k], ips[k], &srv);
		i = (uint8_t)k;
		CHECK(sendto(fc, &i, 1, 0, &dst[k].sa, dst[k].len) == 1);
	}
	CHECK(recv_local(&rx, fs, 2, dst, from, loc) == 2);

	for (k = 0; k < 2; k++) {
		uint8_t *p = mk_udpbatch_next(&tx);

		p[0] = 'r';
		mk_udpbatch_push(&tx, 1, &from[k]);
		CHECK(mk_udpbatch_set_src(&tx, &loc[k]) == 0);
	}
	mk_udpbatch_flush(&tx, fs, &st);
	CHECK(st.sent == 2 && st.dropped == 0);
	for (k = 0; k < 2; k++) {
		CHECK(recv_one(fc, buf, sizeof(buf), &got) == 1);
		/* the two answers may come in either order */
		CHECK(mk_addr_equal(&got, &dst[0]) ||
		    mk_addr_equal(&got, &dst[1]));
	}

	/* Each on its own, to know which answered which. */
	for (k = 0; k < 2; k++) {
		mk_udpbatch_push_ref(&tx, "r", 1, &from[k]);
		CHECK(mk_udpbatch_set_src(&tx, &loc[k]) == 0);
		mk_udpbatch_flush(&tx, fs, &st);
		CHECK(recv_one(fc, buf, sizeof(buf), &got) == 1);
		CHECK(mk_addr_equal(&got, &dst[k]));
		/* and one at a time, outside a batch */
		CHECK(mk_udp_send_from(fs, "s", 1, &from[k], &loc[k]) == 1);
		CHECK(recv_one(fc, buf, sizeof(buf), &got) == 1);
		CHECK(mk_addr_equal(&got, &dst[k]));
	}

	/* Without a source: routing picks ips[0] for the answer to ips[1]. */
	mk_udpbatch_push_ref(&tx, "r", 1, &from[1]);
	mk_udpbatch_flush(&tx, fs, &st);
	CHECK(recv_one(fc, buf, sizeof(buf), &got) == 1);
	CHECK(mk_addr_equal(&got, &dst[0]));
	CHECK(mk_udp_send_from(fs, "s", 1, &from[1], NULL) == 1);
	CHECK(recv_one(fc, buf, sizeof(buf), &got) == 1);
	CHECK(mk_addr_equal(&got, &dst[0]));

	mk_udpbatch_free(&rx);
	mk_udpbatch_free(&tx);
	close(fs);
	close(fc);
}

/* Whether this host's loopback has IPv6 (a container may have none). */
static bool
have_ipv6_loopback(void)
{
	struct mk_addr a;
	int fd = bound_at("::1", 0, &a);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static void
test_pktinfo(void)
{
	const char *v4[2] = { "127.0.0.1", "127.0.0.2" };
	struct mk_udpbatch plain;
	struct mk_udp_local loc;
	struct mk_addr a, b;
	struct mk_udpbatch_sent st;
	const char *why;
	int fa, fb;

	wildcard_replies("0.0.0.0", 0, v4);
	/* IPv4 on a dual-stack IPv6 socket: IPV6_PKTINFO in, mapped */
	if (have_ipv6_loopback())
		wildcard_replies("::", MK_SOCK_DUALSTACK, v4);
	else
		fprintf(stderr, "udpbatch: no ::1, dual-stack case not run\n");

	/* A batch without control buffers: no local address, and no
	 * source can be set, even on a socket that asked for pktinfo. */
	REQUIRE_VOID((fa = bound(&a)) >= 0);
	REQUIRE_VOID((fb = bound_at("0.0.0.0", 0, &b)) >= 0);
	REQUIRE_VOID(mk_udp_want_pktinfo(fb) == 0);
	at_ip(&b, "127.0.0.1", &b);
	REQUIRE_VOID(mk_udpbatch_init(&plain, 4, 64) == 0);
	CHECK(plain.ctrl == NULL);
	CHECK(sendto(fa, "q", 1, 0, &b.sa, b.len) == 1);
	{
		struct pollfd pfd = { .fd = fb, .events = POLLIN };

		CHECK(poll(&pfd, 1, 2000) == 1);
	}
	CHECK(mk_udpbatch_recv(&plain, fb) == 1);
	CHECK(!mk_udpbatch_local(&plain, 0, &loc));
	mk_udpbatch_free(&plain);
	/* sending: the same without control buffers; with them, nothing
	 * queued or an empty source is refused */
	REQUIRE_VOID(mk_udpbatch_init(&plain, 4, 64) == 0);
	mk_udpbatch_push_ref(&plain, "r", 1, &a);
	mk_addr_parse(&loc.addr, "127.0.0.1", 0, 0, &why);
	loc.ifindex = 0;
	CHECK(mk_udpbatch_set_src(&plain, &loc) == -1 && errno == EINVAL);
	mk_udpbatch_flush(&plain, fb, &st);
	CHECK(st.sent == 1);
	mk_udpbatch_free(&plain);
	REQUIRE_VOID(mk_udpbatch_init_pktinfo(&plain, 4, 64) == 0);
	CHECK(mk_udpbatch_set_src(&plain, &loc) == -1 && errno == EINVAL);
	mk_udpbatch_push_ref(&plain, "r", 1, &a);
	memset(&loc, 0, sizeof(loc));
	CHECK(mk_udpbatch_set_src(&plain, &loc) == -1 && errno == EINVAL);
	mk_udpbatch_free(&plain);
	close(fa);
	close(fb);
}

int
main(void)
{
	test_init();
	test_for_socket();
	test_roundtrip();
	test_gso();
	test_truncated();
	test_pktinfo();
	test_reuse();
	return t_done("udpbatch");
}
