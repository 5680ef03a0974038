/* SPDX-License-Identifier: MIT */
/*
 * stunload: STUN Binding load generator for `make bench`.
 *
 * stunload [-Gp] [-b batch] [-c concurrency] [-d seconds] [-s sockets]
 *     [-t timeout_ms] server:port
 *
 * Keeps -c (128) Binding requests outstanding, in Tailscale's 40-byte form
 * (SOFTWARE "tailnode" + FINGERPRINT) with a fresh transaction ID each, for
 * -d (5) seconds, spread over -s (1) sockets on 127.0.0.1.  Requests go out
 * -b (32) per sendmmsg, with UDP GSO unless -G, so the kernel cuts them into
 * datagrams and the generator stays cheaper than the server it measures;
 * replies come back through recvmmsg.  The window is small enough not to
 * overflow a default socket buffer, so the figure is what the server
 * answers, not what the kernel drops.  A request unanswered after -t (100)
 * ms is counted lost and its slot reused with a new ID.  One line at the end:
 *   responses_per_sec=N sent=N valid=N lost=N invalid=N seconds=F late=N
 * valid: a success response with the cookie and a transaction ID still
 * outstanding, each counted once; late: an ID of ours no longer outstanding
 * (answered already, or given up); invalid: anything else.  -p also wants
 * XOR-MAPPED-ADDRESS to be the sending socket's own address (v4-mapped
 * IPv6 accepted) and FINGERPRINT, if present, last and right.
 *
 * Standalone on purpose (no lib/): the codec may change while the harness
 * must keep measuring.  Loopback servers only.  SIGALRM ends it 10 s past
 * the run whatever happens.
 * Exit: 0 with at least one valid response, 2 usage, 3 none or a failure.
 */
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <netinet/udp.h>
#include <arpa/inet.h>

#include <err.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define REQ_LEN		40
#define HDR_LEN		20
#define COOKIE		0x2112a442U
#define FP_XOR		0x5354554eU
#define MAX_BATCH	1024	/* UIO_MAXIOV */
#define MAX_SOCKS	64
#define MAX_WINDOW	65536
#define RBUF_LEN	1500
#define SOCKBUF		(4 * 1024 * 1024)
#define GSO_SEGS	64	/* UDP_MAX_SEGMENTS on older kernels */

struct slot {
	uint32_t	gen;	/* part of the txid; bumped on every send */
	uint32_t	busy;
	int64_t		sent_ns;
};

struct lsock {
	int			 fd;
	uint32_t		 first;	/* owns slots [first, first + n) */
	uint32_t		 n;
	uint32_t		*free;	/* stack of free slot indices */
	uint32_t		 nfree;
	struct sockaddr_in	 local;
};

struct counters {
	uint64_t	sent;
	uint64_t	valid;
	uint64_t	lost;
	uint64_t	invalid;
	uint64_t	late;
};

enum verdict { V_VALID, V_LATE, V_INVALID };

static struct slot	*slots;
static struct lsock	 socks[MAX_SOCKS];
static unsigned int	 nsocks = 1;
static unsigned int	 batch = 32;
static int		 pedantic;
static uint8_t		 nonce[4];
static struct counters	 ctr;
static uint32_t		 crctab[256];

static int		 use_gso = 1;
static uint8_t		 reqbuf[MAX_BATCH * REQ_LEN];
static struct iovec	 siov[MAX_BATCH];
static struct mmsghdr	 smsg[MAX_BATCH];
static uint8_t		 rbuf[MAX_BATCH][RBUF_LEN];
static struct iovec	 riov[MAX_BATCH];
static struct mmsghdr	 rmsg[MAX_BATCH];

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: stunload [-Gp] [-b batch] [-c concurrency] "
	    "[-d seconds] [-s sockets] [-t timeout_ms] server:port\n");
	exit(2);
}

static void
crc_init(void)
{
	uint32_t c, i, k;

	for (i = 0; i < 256; i++) {
		c = i;
		for (k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320U ^ (c >> 1) : c >> 1;
		crctab[i] = c;
	}
}

/* CRC-32 (ISO-HDLC, zlib's crc32). */
static uint32_t
crc32(const uint8_t *p, size_t len)
{
	uint32_t c = 0xffffffffU;

	while (len--)
		c = crctab[(c ^ *p++) & 0xff] ^ (c >> 8);
	return c ^ 0xffffffffU;
}

static void
put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t
get16(const uint8_t *p)
{
	return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* protocols.md §5.1: header, SOFTWARE "tailnode", FINGERPRINT. */
static void
build_request(uint8_t *b, const uint8_t txid[12])
{
	put16(b, 0x0001);
	put16(b + 2, 20);
	put32(b + 4, COOKIE);
	memcpy(b + 8, txid, 12);
	put16(b + 20, 0x8022);
	put16(b + 22, 8);
	memcpy(b + 24, "tailnode", 8);
	put16(b + 32, 0x8028);
	put16(b + 34, 4);
	put32(b + 36, crc32(b, 32) ^ FP_XOR);
}

/* txid = nonce[4] | slot index (be32) | generation (be32). */
static void
make_txid(uint8_t txid[12], uint32_t idx, uint32_t gen)
{
	memcpy(txid, nonce, 4);
	put32(txid + 4, idx);
	put32(txid + 8, gen);
}

/* The request builder must reproduce the reference vector byte for byte. */
static void
selftest(void)
{
	static const uint8_t want[REQ_LEN] = {
		0x00, 0x01, 0x00, 0x14, 0x21, 0x12, 0xa4, 0x42,
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
		0x09, 0x0a, 0x0b, 0x0c, 0x80, 0x22, 0x00, 0x08,
		0x74, 0x61, 0x69, 0x6c, 0x6e, 0x6f, 0x64, 0x65,
		0x80, 0x28, 0x00, 0x04, 0xb3, 0x2c, 0x37, 0x0f,
	};
	uint8_t txid[12], b[REQ_LEN];
	int i;

	for (i = 0; i < 12; i++)
		txid[i] = (uint8_t)(i + 1);
	build_request(b, txid);
	if (memcmp(b, want, REQ_LEN) != 0)
		errx(3, "request builder does not match protocols.md 5.1");
}

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long
num(const char *s, long min, long max, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		warnx("%s: %s must be %ld..%ld", s, what, min, max);
		usage();
	}
	return v;
}

static void
parse_server(const char *arg, struct sockaddr_in *sin)
{
	char host[64];
	const char *colon;
	size_t hlen;

	colon = strrchr(arg, ':');
	if (colon == NULL || (hlen = (size_t)(colon - arg)) >= sizeof(host)) {
		warnx("%s: want IPV4:PORT", arg);
		usage();
	}
	memcpy(host, arg, hlen);
	host[hlen] = '\0';
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
		warnx("%s: not an IPv4 address", host);
		usage();
	}
	/* A flood generator: never aim it off this machine. */
	if ((ntohl(sin->sin_addr.s_addr) >> 24) != 127) {
		warnx("%s: only loopback (127.0.0.0/8) servers", host);
		usage();
	}
	sin->sin_port = htons((uint16_t)num(colon + 1, 1, 65535, "port"));
}

static void
open_socks(const struct sockaddr_in *srv, uint32_t window)
{
	socklen_t slen;
	uint32_t per, rem, first, k;
	unsigned int i;
	int fd, sz;

	per = window / nsocks;
	rem = window % nsocks;
	first = 0;
	for (i = 0; i < nsocks; i++) {
		struct lsock *s = &socks[i];

		fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
		if (fd == -1)
			err(3, "socket");
		/* Room for a whole window of replies: our drops are not
		 * the server's. FORCE works as root, else plain. */
		sz = SOCKBUF;
		if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz,
		    sizeof(sz)) == -1)
			(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz,
			    sizeof(sz));
		if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz,
		    sizeof(sz)) == -1)
			(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz,
			    sizeof(sz));
		sz = REQ_LEN;
		if (use_gso && setsockopt(fd, SOL_UDP, UDP_SEGMENT, &sz,
		    sizeof(sz)) == -1)
			err(3, "UDP_SEGMENT (try -G)");
		if (connect(fd, (const struct sockaddr *)srv,
		    sizeof(*srv)) == -1)
			err(3, "connect");
		slen = sizeof(s->local);
		if (getsockname(fd, (struct sockaddr *)&s->local,
		    &slen) == -1)
			err(3, "getsockname");
		s->fd = fd;
		s->first = first;
		s->n = per + (i < rem ? 1 : 0);
		s->free = calloc(s->n, sizeof(*s->free));
		if (s->free == NULL)
			err(3, "calloc");
		/* Popped from the top: lowest index first. */
		for (k = 0; k < s->n; k++)
			s->free[k] = first + s->n - 1 - k;
		s->nfree = s->n;
		first += s->n;
	}
}

static void
fill(struct lsock *s, int64_t now)
{
	uint8_t txid[12];
	uint32_t k, i, idx, nmsg, per;
	int n;

	per = use_gso ? GSO_SEGS : 1;
	while (s->nfree > 0) {
		k = s->nfree < batch ? s->nfree : batch;
		for (i = 0; i < k; i++) {
			idx = s->free[s->nfree - 1 - i];
			make_txid(txid, idx, ++slots[idx].gen);
			build_request(reqbuf + (size_t)i * REQ_LEN, txid);
		}
		/* With GSO one message carries up to GSO_SEGS requests, cut
		 * into datagrams on the way in: the server still reads one
		 * datagram per request, we pay one trip down the stack. */
		nmsg = (k + per - 1) / per;
		for (i = 0; i < nmsg; i++) {
			siov[i].iov_base = reqbuf + (size_t)i * per * REQ_LEN;
			siov[i].iov_len = (i + 1 < nmsg ? per : k - i * per) *
			    REQ_LEN;
		}
		n = sendmmsg(s->fd, smsg, nmsg, 0);
		if (n == -1) {
			/* Full buffers: try again after the next wait.
			 * Refused: an ICMP error from an earlier send; the
			 * requests in flight will time out on their own. */
			if (errno == EAGAIN || errno == ENOBUFS ||
			    errno == ECONNREFUSED || errno == EINTR)
				return;
			err(3, "sendmmsg");
		}
		if ((uint32_t)n < nmsg)
			k = (uint32_t)n * per;
		for (i = 0; i < k; i++) {
			idx = s->free[s->nfree - 1 - i];
			slots[idx].busy = 1;
			slots[idx].sent_ns = now;
		}
		s->nfree -= k;
		ctr.sent += k;
		if ((uint32_t)n < nmsg)
			return;
	}
}

/* -p: the mapped address must be the socket the request left from. */
static int
check_attrs(const struct lsock *s, const uint8_t *p, size_t len)
{
	static const uint8_t v4mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
	};
	uint8_t a[16];
	size_t off, alen, plen;
	uint32_t type, port, addr;
	int mapped = 0, i;

	port = ntohs(s->local.sin_port);
	addr = ntohl(s->local.sin_addr.s_addr);
	for (off = HDR_LEN; off < len; off += 4 + plen) {
		if (len - off < 4)
			return -1;
		type = get16(p + off);
		alen = get16(p + off + 2);
		plen = (alen + 3) & ~(size_t)3;
		if (len - off - 4 < plen)
			return -1;
		if (type == 0x8028) {
			if (alen != 4 || off + 8 != len ||
			    get32(p + off + 4) != (crc32(p, off) ^ FP_XOR))
				return -1;
		} else if (type == 0x0020 || type == 0x8020) {
			if (mapped++ || alen < 4 || p[off + 4] != 0)
				return -1;
			if ((get16(p + off + 6) ^ (COOKIE >> 16)) != port)
				return -1;
			if (p[off + 5] == 1 && alen == 8) {
				if ((get32(p + off + 8) ^ COOKIE) != addr)
					return -1;
			} else if (p[off + 5] == 2 && alen == 20) {
				/* IPv4 as ::ffff:a.b.c.d, as derper may. */
				for (i = 0; i < 16; i++)
					a[i] = p[off + 8 + i] ^ p[4 + i];
				if (memcmp(a, v4mapped, 12) != 0 ||
				    get32(a + 12) != addr)
					return -1;
			} else
				return -1;
		}
	}
	return mapped ? 0 : -1;
}

static enum verdict
classify(struct lsock *s, const uint8_t *p, size_t len, int flags)
{
	uint32_t idx, gen;
	struct slot *sl;

	if ((flags & MSG_TRUNC) || len < HDR_LEN || get16(p) != 0x0101 ||
	    get32(p + 4) != COOKIE || get16(p + 2) + HDR_LEN != len ||
	    (len & 3) != 0 || memcmp(p + 8, nonce, 4) != 0)
		return V_INVALID;
	idx = get32(p + 12);
	gen = get32(p + 16);
	if (idx < s->first || idx - s->first >= s->n)
		return V_INVALID;
	sl = &slots[idx];
	if (gen != sl->gen || !sl->busy)
		/* Wrap-around of gen is 2^32 sends of one slot away. */
		return gen != 0 && gen <= sl->gen ? V_LATE : V_INVALID;
	/* A wrong answer is still an answer: free the slot either way. */
	sl->busy = 0;
	s->free[s->nfree++] = idx;
	if (pedantic && check_attrs(s, p, len) == -1)
		return V_INVALID;
	return V_VALID;
}

static void
drain(struct lsock *s)
{
	int n, i;

	for (;;) {
		for (i = 0; i < (int)batch; i++)
			rmsg[i].msg_hdr.msg_flags = 0;
		n = recvmmsg(s->fd, rmsg, batch, MSG_DONTWAIT, NULL);
		if (n == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == ECONNREFUSED || errno == EINTR)
				continue;
			err(3, "recvmmsg");
		}
		for (i = 0; i < n; i++) {
			switch (classify(s, rbuf[i], rmsg[i].msg_len,
			    rmsg[i].msg_hdr.msg_flags)) {
			case V_VALID:
				ctr.valid++;
				break;
			case V_LATE:
				ctr.late++;
				break;
			case V_INVALID:
				ctr.invalid++;
				break;
			}
		}
		if (n < (int)batch)
			return;
	}
}

static void
expire(int64_t now, int64_t timeout_ns)
{
	unsigned int i;
	uint32_t k;

	for (i = 0; i < nsocks; i++) {
		struct lsock *s = &socks[i];

		for (k = s->first; k < s->first + s->n; k++) {
			if (slots[k].busy &&
			    now - slots[k].sent_ns >= timeout_ns) {
				slots[k].busy = 0;
				s->free[s->nfree++] = k;
				ctr.lost++;
			}
		}
	}
}

int
main(int argc, char *argv[])
{
	struct epoll_event ev, evs[MAX_SOCKS];
	struct sockaddr_in srv;
	int64_t start, end, now, next_scan, timeout_ns, wait_ns;
	double seconds, dur = 5.0;
	char *dend;
	uint32_t window = 128;
	unsigned int i;
	long timeout_ms = 100;
	int ch, ep, n, k;

	while ((ch = getopt(argc, argv, "b:c:d:Gps:t:")) != -1) {
		switch (ch) {
		case 'b':
			batch = (unsigned int)num(optarg, 1, MAX_BATCH,
			    "batch");
			break;
		case 'c':
			window = (uint32_t)num(optarg, 1, MAX_WINDOW,
			    "concurrency");
			break;
		case 'd':
			errno = 0;
			dur = strtod(optarg, &dend);
			if (errno != 0 || dend == optarg || *dend != '\0' ||
			    !(dur > 0 && dur <= 3600)) {
				warnx("%s: seconds must be in (0, 3600]",
				    optarg);
				usage();
			}
			break;
		case 'G':
			use_gso = 0;
			break;
		case 'p':
			pedantic = 1;
			break;
		case 's':
			nsocks = (unsigned int)num(optarg, 1, MAX_SOCKS,
			    "sockets");
			break;
		case 't':
			timeout_ms = num(optarg, 1, 60000, "timeout_ms");
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 1)
		usage();
	if (nsocks > window)
		errx(2, "more sockets (%u) than concurrency (%u)", nsocks,
		    window);
	parse_server(argv[0], &srv);

	/* Backstop: whatever happens, never outlive the run by much. */
	alarm((unsigned int)dur + 10);

	crc_init();
	selftest();
	if (getrandom(nonce, sizeof(nonce), 0) != sizeof(nonce))
		err(3, "getrandom");
	slots = calloc(window, sizeof(*slots));
	if (slots == NULL)
		err(3, "calloc");
	for (k = 0; k < MAX_BATCH; k++) {
		smsg[k].msg_hdr.msg_iov = &siov[k];
		smsg[k].msg_hdr.msg_iovlen = 1;
		riov[k].iov_base = rbuf[k];
		riov[k].iov_len = RBUF_LEN;
		rmsg[k].msg_hdr.msg_iov = &riov[k];
		rmsg[k].msg_hdr.msg_iovlen = 1;
	}
	open_socks(&srv, window);
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		err(3, "epoll_create1");
	for (i = 0; i < nsocks; i++) {
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN;
		ev.data.u32 = i;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, socks[i].fd, &ev) == -1)
			err(3, "epoll_ctl");
	}

	timeout_ns = (int64_t)timeout_ms * 1000000;
	start = now_ns();
	end = start + (int64_t)(dur * 1e9);
	next_scan = start + timeout_ns / 4;
	while ((now = now_ns()) < end) {
		for (i = 0; i < nsocks; i++)
			fill(&socks[i], now);
		if (now >= next_scan) {
			expire(now, timeout_ns);
			next_scan = now + timeout_ns / 4;
			continue;
		}
		wait_ns = (next_scan < end ? next_scan : end) - now;
		n = epoll_wait(ep, evs, MAX_SOCKS,
		    (int)((wait_ns + 999999) / 1000000));
		if (n == -1) {
			if (errno == EINTR)
				continue;
			err(3, "epoll_wait");
		}
		for (k = 0; k < n; k++)
			drain(&socks[evs[k].data.u32]);
	}
	seconds = (double)(now - start) / 1e9;
	printf("responses_per_sec=%.0f sent=%" PRIu64 " valid=%" PRIu64
	    " lost=%" PRIu64 " invalid=%" PRIu64 " seconds=%.3f late=%"
	    PRIu64 "\n", (double)ctr.valid / seconds, ctr.sent, ctr.valid,
	    ctr.lost, ctr.invalid, seconds, ctr.late);
	if (fflush(stdout) == EOF)
		err(3, "stdout");
	return ctr.valid > 0 ? 0 : 3;
}
