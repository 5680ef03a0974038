/* SPDX-License-Identifier: MIT */
/* lib/udpbatch over real loopback sockets: batches in both directions,
 * forwarding without a copy, truncation, and a refused datagram in the
 * middle of a batch. */
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

int
main(void)
{
	test_init();
	test_for_socket();
	test_roundtrip();
	test_truncated();
	return t_done("udpbatch");
}
