/* SPDX-License-Identifier: MIT */
/*
 * derpcat-load: misbehaving and measuring DERP clients for derpcat's tests
 * and bench. Standalone on purpose (libsodium and OpenSSL only, no
 * meshkit code): it speaks DERP from its own reading of the protocol, so it
 * also checks the server against a second implementation of the client
 * side.
 *
 *   derpcat-load [-t] stall URL KEYFILE
 *       handshake, print "ready", then never read again
 *   derpcat-load [-t] impersonate URL PUBKEY
 *       claim PUBKEY in ClientInfo, sealed with another key; exit 0 when
 *       the server closes without a ServerInfo, 1 if it accepts
 *   derpcat-load [-t] flood URL KEYFILE SIZE DSTPUB...
 *       send SIZE-byte packets round-robin to the DSTs as fast as the
 *       socket takes them, forever
 *   derpcat-load [-t] bigframe URL KEYFILE
 *       after the handshake, a frame header claiming 2 GiB; exit 0 when
 *       the server closes the connection
 *   derpcat-load [-t] [-w WINDOW] goodput URL PAIRS SECONDS SIZE
 *       PAIRS sender/receiver pairs through the relay, each with at most
 *       WINDOW packets on the way (0: no limit); after a second of
 *       warm-up prints "goodput_mbps=F pps=N bytes=N seconds=F"
 *   derpcat-load tcp SECONDS SIZE
 *       the baseline: one loopback TCP connection, the same records, the
 *       same loop; same output
 *   derpcat-load -t idle URL N
 *       N TLS clients, handshaken, then idle; prints "ready N"; waits
 *       for SIGTERM
 *
 * URL is http://127.0.0.1:PORT or https://127.0.0.1:PORT (-t: TLS without
 * verification, for tests). Loopback only. Exit: 0 as stated, 1 the
 * expected behaviour did not happen, 2 usage, 3 failure.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define MAGIC		"DERP\xf0\x9f\x94\x91"
#define MAXPAIRS	64

struct conn {
	int		 fd;
	SSL		*ssl;
	uint8_t		 pub[32];
	uint8_t		 priv[32];
	uint8_t		 server[32];
	/* reader state */
	uint8_t		*rbuf;
	size_t		 rlen;
	uint64_t	 rx_bytes;
	uint64_t	 rx_pkts;
	/* writer state */
	uint8_t		*wbuf;
	size_t		 wlen;
	size_t		 woff;
};

static bool use_tls;
static SSL_CTX *ctx;
static struct sockaddr_in srv;

static void __attribute__((noreturn))
fail(const char *what)
{
	fprintf(stderr, "derpcat-load: %s: %s\n", what, strerror(errno));
	exit(3);
}

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: derpcat-load [-t] stall|impersonate|flood|"
	    "bigframe|goodput|idle URL ...\n"
	    "       derpcat-load tcp SECONDS SIZE\n");
	exit(2);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
parse_url(const char *url)
{
	const char *p;
	char host[64];
	size_t n;

	if (strncmp(url, "https://", 8) == 0) {
		use_tls = true;
		p = url + 8;
	} else if (strncmp(url, "http://", 7) == 0)
		p = url + 7;
	else
		usage();
	n = strcspn(p, ":/");
	if (n >= sizeof(host) || p[n] != ':')
		usage();
	memcpy(host, p, n);
	host[n] = '\0';
	memset(&srv, 0, sizeof(srv));
	srv.sin_family = AF_INET;
	srv.sin_port = htons((uint16_t)atoi(p + n + 1));
	if (inet_pton(AF_INET, host, &srv.sin_addr) != 1 ||
	    (ntohl(srv.sin_addr.s_addr) >> 24) != 127) {
		fprintf(stderr, "derpcat-load: loopback IPv4 only\n");
		exit(2);
	}
}

static int
b64key(uint8_t out[32], const char *s)
{
	size_t n;

	return sodium_base642bin(out, 32, s, strlen(s), " \n", &n, NULL,
	    sodium_base64_VARIANT_ORIGINAL) == 0 && n == 32 ? 0 : -1;
}

static void
read_key(uint8_t out[32], const char *path)
{
	char buf[128];
	FILE *f = fopen(path, "r");

	if (f == NULL || fgets(buf, sizeof(buf), f) == NULL)
		fail(path);
	fclose(f);
	if (b64key(out, buf) != 0) {
		fprintf(stderr, "derpcat-load: %s: not a key\n", path);
		exit(2);
	}
}

/* Blocking I/O on a connection (plain or TLS). */
static ssize_t
c_read(struct conn *c, void *buf, size_t n)
{
	if (c->ssl != NULL) {
		int r = SSL_read(c->ssl, buf, (int)n);

		if (r > 0)
			return r;
		switch (SSL_get_error(c->ssl, r)) {
		case SSL_ERROR_WANT_READ:
		case SSL_ERROR_WANT_WRITE:
			errno = EAGAIN;
			return -1;
		case SSL_ERROR_ZERO_RETURN:
			return 0;
		default:
			errno = ECONNRESET;
			return -1;
		}
	}
	return read(c->fd, buf, n);
}

static ssize_t
c_write(struct conn *c, const void *buf, size_t n)
{
	if (c->ssl != NULL) {
		int r = SSL_write(c->ssl, buf, (int)n);

		if (r > 0)
			return r;
		switch (SSL_get_error(c->ssl, r)) {
		case SSL_ERROR_WANT_READ:
		case SSL_ERROR_WANT_WRITE:
			errno = EAGAIN;
			return -1;
		default:
			errno = EPIPE;
			return -1;
		}
	}
	return send(c->fd, buf, n, MSG_NOSIGNAL);
}

static int
write_all(struct conn *c, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	ssize_t w;

	while (n > 0) {
		w = c_write(c, p, n);
		if (w < 0 && errno == EAGAIN) {
			struct pollfd pfd = { c->fd, POLLOUT | POLLIN, 0 };

			poll(&pfd, 1, 1000);
			continue;
		}
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Exactly n bytes; 0, or -1 at EOF or error. */
static int
read_full(struct conn *c, void *buf, size_t n)
{
	uint8_t *p = buf;
	ssize_t r;

	while (n > 0) {
		r = c_read(c, p, n);
		if (r < 0 && errno == EAGAIN) {
			struct pollfd pfd = { c->fd, POLLIN, 0 };

			poll(&pfd, 1, 1000);
			continue;
		}
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static void
hdr(uint8_t *p, uint8_t type, uint32_t len)
{
	p[0] = type;
	p[1] = (uint8_t)(len >> 24);
	p[2] = (uint8_t)(len >> 16);
	p[3] = (uint8_t)(len >> 8);
	p[4] = (uint8_t)len;
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* One whole frame (payload at most cap); type, or -1. */
static int
read_frame(struct conn *c, uint8_t *buf, size_t cap, uint32_t *len)
{
	uint8_t h[5];

	if (read_full(c, h, 5) != 0)
		return -1;
	*len = get32(h + 1);
	if (*len > cap)
		return -1;
	if (read_full(c, buf, *len) != 0)
		return -1;
	return h[0];
}

static void
tcp_connect(struct conn *c)
{
	int one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		fail("socket");
	if (connect(c->fd, (struct sockaddr *)&srv, sizeof(srv)) != 0)
		fail("connect");
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (use_tls) {
		c->ssl = SSL_new(ctx);
		SSL_set_fd(c->ssl, c->fd);
		if (SSL_connect(c->ssl) != 1) {
			ERR_print_errors_fp(stderr);
			fail("TLS");
		}
	}
}

/*
 * Connect, upgrade, handshake. claim: the key put in ClientInfo (NULL: our
 * own). Returns 0 once ServerInfo came, 1 if the server closed instead.
 */
static int
handshake(struct conn *c, const uint8_t *claim)
{
	char req[256], resp[1024];
	uint8_t buf[512], nonce[24], box[256];
	const char *json = "{\"version\":2,\"CanAckPings\":true}";
	size_t jl = strlen(json), got = 0;
	uint32_t len;
	int type;

	memset(resp, 0, sizeof(resp));
	tcp_connect(c);
	snprintf(req, sizeof(req), "GET /derp HTTP/1.1\r\nHost: x\r\n"
	    "Connection: Upgrade\r\nUpgrade: DERP\r\n\r\n");
	if (write_all(c, req, strlen(req)) != 0)
		fail("request");
	/* the 101 head, byte by byte so no frame byte is eaten */
	while (got < 4 || memcmp(resp + got - 4, "\r\n\r\n", 4) != 0) {
		if (got == sizeof(resp) - 1 || read_full(c, resp + got, 1) != 0)
			fail("101");
		got++;
	}
	if (strncmp(resp, "HTTP/1.1 101 ", 13) != 0) {
		errno = EPROTO;
		fail("not a 101");
	}
	type = read_frame(c, buf, sizeof(buf), &len);
	if (type != 1 || len < 40 || memcmp(buf, MAGIC, 8) != 0) {
		errno = EPROTO;
		fail("ServerKey");
	}
	memcpy(c->server, buf + 8, 32);
	randombytes_buf(nonce, sizeof(nonce));
	if (crypto_box_easy(box, (const uint8_t *)json, jl, nonce, c->server,
	    c->priv) != 0)
		fail("crypto_box_easy");
	hdr(buf, 2, (uint32_t)(32 + 24 + 16 + jl));
	memcpy(buf + 5, claim != NULL ? claim : c->pub, 32);
	memcpy(buf + 37, nonce, 24);
	memcpy(buf + 61, box, 16 + jl);
	if (write_all(c, buf, 61 + 16 + jl) != 0)
		fail("ClientInfo");
	for (;;) {
		type = read_frame(c, buf, sizeof(buf), &len);
		if (type < 0)
			return 1;
		if (type == 3)
			return 0;
	}
}

static void
new_key(struct conn *c)
{
	crypto_box_keypair(c->pub, c->priv);
}

static void
key_from_file(struct conn *c, const char *path)
{
	read_key(c->priv, path);
	crypto_scalarmult_base(c->pub, c->priv);
}

static int
do_stall(const char *keyfile)
{
	struct conn c;

	memset(&c, 0, sizeof(c));
	key_from_file(&c, keyfile);
	if (handshake(&c, NULL) != 0)
		fail("refused");
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}

static int
do_impersonate(const char *pub)
{
	struct conn c;
	uint8_t claim[32];

	memset(&c, 0, sizeof(c));
	if (b64key(claim, pub) != 0)
		usage();
	new_key(&c);
	if (handshake(&c, claim) == 0) {
		printf("accepted\n");
		return 1;
	}
	printf("refused\n");
	return 0;
}

static int
do_bigframe(const char *keyfile)
{
	struct conn c;
	uint8_t h[5 + 64];
	double deadline;

	memset(&c, 0, sizeof(c));
	key_from_file(&c, keyfile);
	if (handshake(&c, NULL) != 0)
		fail("refused");
	hdr(h, 4, 0x7fffffffU);
	memset(h + 5, 0xaa, 64);
	if (write_all(&c, h, sizeof(h)) != 0) {
		printf("closed\n");
		return 0;
	}
	/*
	 * The server must hang up. Wait for the end of the stream rather
	 * than write until a write fails: loopback buffers hold megabytes, and
	 * a slow (sanitizer) server may not have read the header yet.
	 */
	deadline = now_s() + 10;
	while (now_s() < deadline) {
		struct pollfd pfd = { c.fd, POLLIN, 0 };
		uint8_t junk[4096];
		ssize_t r;

		if (poll(&pfd, 1, 200) <= 0)
			continue;
		r = c_read(&c, junk, sizeof(junk));
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
			printf("closed\n");
			return 0;
		}
	}
	printf("still open\n");
	return 1;
}

static int
do_flood(const char *keyfile, size_t size, char **dsts, int ndst)
{
	struct conn c;
	uint8_t (*dk)[32] = calloc((size_t)ndst, 32), *frame;
	uint64_t n = 0;
	int i;

	memset(&c, 0, sizeof(c));
	key_from_file(&c, keyfile);
	for (i = 0; i < ndst; i++)
		if (b64key(dk[i], dsts[i]) != 0)
			usage();
	if ((frame = malloc(37 + size)) == NULL)
		fail("malloc");
	randombytes_buf(frame + 37, size);
	if (handshake(&c, NULL) != 0)
		fail("refused");
	printf("ready\n");
	fflush(stdout);
	/* nothing is ever read: what the server sends back piles up in
	 * our socket, which is fine for a flood */
	for (;;) {
		hdr(frame, 4, (uint32_t)(32 + size));
		memcpy(frame + 5, dk[n++ % (uint64_t)ndst], 32);
		if (write_all(&c, frame, 37 + size) != 0)
			fail("write");
	}
}

/* ---- bench ---- */

static void
set_nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Keep the socket full: frames of size bytes, prebuilt in wbuf. */
static int
pump_write(struct conn *c)
{
	ssize_t w;

	for (;;) {
		if (c->woff == c->wlen)
			c->woff = 0;
		w = c_write(c, c->wbuf + c->woff, c->wlen - c->woff);
		if (w < 0)
			return errno == EAGAIN ? 0 : -1;
		c->woff += (size_t)w;
	}
}

/* Count whole RecvPacket payloads; framing is followed exactly. */
static int
pump_read(struct conn *c, size_t cap, bool frames)
{
	ssize_t r;
	size_t off;

	for (;;) {
		r = c_read(c, c->rbuf + c->rlen, cap - c->rlen);
		if (r < 0)
			return errno == EAGAIN ? 0 : -1;
		if (r == 0)
			return -1;
		c->rlen += (size_t)r;
		if (!frames) {
			c->rx_bytes += (uint64_t)r;
			c->rx_pkts += (uint64_t)r;	/* divided later */
			c->rlen = 0;
			continue;
		}
		off = 0;
		while (c->rlen - off >= 5) {
			uint32_t len = get32(c->rbuf + off + 1);

			if (c->rlen - off - 5 < len)
				break;
			if (c->rbuf[off] == 5 && len >= 32) {
				c->rx_bytes += len - 32;
				c->rx_pkts++;
			}
			off += 5 + len;
		}
		memmove(c->rbuf, c->rbuf + off, c->rlen - off);
		c->rlen -= off;
	}
}

static uint64_t lost_total;

static void
report(uint64_t bytes, uint64_t pkts, double secs)
{
	printf("goodput_mbps=%.1f pps=%.0f bytes=%llu seconds=%.3f lost=%llu\n",
	    (double)bytes * 8 / secs / 1e6, (double)pkts / secs,
	    (unsigned long long)bytes, secs, (unsigned long long)lost_total);
}

/*
 * A pair sends only while fewer than `window` of its packets are on the
 * way (0: no limit), as a client with end-to-end flow control does, so
 * the figure is what the relay carries without dropping.
 */
struct pair {
	struct conn	 s;
	struct conn	 r;
	uint64_t	 sent;		/* bytes written by s */
	size_t		 per;		/* bytes a frame */
	bool		 want_out;
	uint64_t	 lost;		/* packets given up on */
	uint64_t	 last_rx;	/* r.rx_pkts at the last check */
	double		 last_t;
};

static int ep;
static unsigned window;

static void
pair_send(struct pair *p)
{
	struct epoll_event ev;
	uint64_t allowed;
	size_t off, n;
	ssize_t w;

	for (;;) {
		off = (size_t)(p->sent % p->s.wlen);
		n = p->s.wlen - off;
		if (window != 0) {
			allowed = (p->r.rx_pkts + p->lost + window) * p->per;
			if (allowed <= p->sent)
				break;
			if (allowed - p->sent < n)
				n = (size_t)(allowed - p->sent);
		}
		w = c_write(&p->s, p->s.wbuf + off, n);
		if (w < 0) {
			if (errno != EAGAIN)
				fail("sender closed");
			if (!p->want_out) {
				ev.events = EPOLLOUT;
				ev.data.ptr = &p->s;
				epoll_ctl(ep, EPOLL_CTL_MOD, p->s.fd, &ev);
				p->want_out = true;
			}
			return;
		}
		p->sent += (uint64_t)w;
	}
	if (p->want_out) {
		ev.events = 0;
		ev.data.ptr = &p->s;
		epoll_ctl(ep, EPOLL_CTL_MOD, p->s.fd, &ev);
		p->want_out = false;
	}
}

static int
do_goodput(int pairs, double secs, size_t size)
{
	static struct pair pr[MAXPAIRS];
	struct epoll_event ev, evs[128];
	uint64_t b0 = 0, p0 = 0, b1 = 0, p1 = 0;
	double t0, t1, start;
	size_t cap = 1U << 20, per = 37 + size, k;
	int i, n;
	bool measuring = false;

	if (pairs < 1 || pairs > MAXPAIRS)
		usage();
	ep = epoll_create1(0);
	for (i = 0; i < pairs; i++) {
		struct conn *s = &pr[i].s, *r = &pr[i].r;

		new_key(s);
		new_key(r);
		if (handshake(r, NULL) != 0 || handshake(s, NULL) != 0)
			fail("handshake");
		/* many frames in one buffer, so one write carries many */
		pr[i].per = per;
		s->wlen = per * (65536 / per + 1);
		s->wbuf = malloc(s->wlen);
		for (k = 0; k < s->wlen; k += per) {
			hdr(s->wbuf + k, 4, (uint32_t)(32 + size));
			memcpy(s->wbuf + k + 5, r->pub, 32);
			memset(s->wbuf + k + 37, 0x5a, size);
		}
		r->rbuf = malloc(cap);
		set_nonblock(s->fd);
		set_nonblock(r->fd);
		ev.events = 0;
		ev.data.ptr = s;
		epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
		ev.events = EPOLLIN;
		ev.data.ptr = r;
		epoll_ctl(ep, EPOLL_CTL_ADD, r->fd, &ev);
	}
	for (i = 0; i < pairs; i++)
		pair_send(&pr[i]);
	/* a second of warm-up, then the measured run */
	start = t0 = now_s();
	for (;;) {
		n = epoll_wait(ep, evs, 128, 100);
		for (i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			struct pair *p = (struct pair *)(c->rbuf != NULL ?
			    (char *)c - offsetof(struct pair, r) :
			    (char *)c - offsetof(struct pair, s));

			if (c->rbuf != NULL && pump_read(c, cap, true) != 0)
				fail("receiver closed");
			pair_send(p);
		}
		t1 = now_s();
		/* a relay that dropped: what has not come in 50 ms with
		 * nothing arriving is lost, and the window opens again */
		for (i = 0; window != 0 && i < pairs; i++) {
			struct pair *p = &pr[i];
			uint64_t out = p->sent / p->per;

			if (p->r.rx_pkts != p->last_rx) {
				p->last_rx = p->r.rx_pkts;
				p->last_t = t1;
			} else if (t1 - p->last_t > 0.05 &&
			    out > p->r.rx_pkts + p->lost) {
				p->lost = out - p->r.rx_pkts;
				if (measuring)
					lost_total += out - p->r.rx_pkts;
				p->last_t = t1;
				pair_send(p);
			}
		}
		if (!measuring && t1 - start >= 1.0) {
			measuring = true;
			t0 = t1;
			for (i = 0; i < pairs; i++) {
				b0 += pr[i].r.rx_bytes;
				p0 += pr[i].r.rx_pkts;
			}
		}
		if (measuring && t1 - t0 >= secs)
			break;
	}
	for (i = 0; i < pairs; i++) {
		b1 += pr[i].r.rx_bytes;
		p1 += pr[i].r.rx_pkts;
	}
	report(b1 - b0, p1 - p0, t1 - t0);
	return 0;
}

/* The same load generator over one direct TCP connection. */
static int
do_tcp(double secs, size_t size)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	struct conn s, r;
	struct epoll_event ev, evs[8];
	size_t cap = 1U << 20, per = size, k;
	double t0, t1, start;
	uint64_t b0 = 0;
	int lfd, ep, i, n, one = 1;
	bool measuring = false;

	memset(&s, 0, sizeof(s));
	memset(&r, 0, sizeof(r));
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(lfd, 1) != 0 || getsockname(lfd, (struct sockaddr *)&a,
	    &al) != 0)
		fail("listen");
	srv = a;
	use_tls = false;
	tcp_connect(&s);
	if ((r.fd = accept(lfd, NULL, NULL)) < 0)
		fail("accept");
	setsockopt(r.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	close(lfd);
	/* the same records: 1400-byte payloads behind a 37-byte header */
	per = 37 + size;
	s.wlen = per * (65536 / per + 1);
	s.wbuf = malloc(s.wlen);
	for (k = 0; k < s.wlen; k += per) {
		hdr(s.wbuf + k, 4, (uint32_t)(32 + size));
		memset(s.wbuf + k + 5, 0x5a, per - 5);
	}
	r.rbuf = malloc(cap);
	set_nonblock(s.fd);
	set_nonblock(r.fd);
	ep = epoll_create1(0);
	ev.events = EPOLLOUT;
	ev.data.ptr = &s;
	epoll_ctl(ep, EPOLL_CTL_ADD, s.fd, &ev);
	ev.events = EPOLLIN;
	ev.data.ptr = &r;
	epoll_ctl(ep, EPOLL_CTL_ADD, r.fd, &ev);
	start = t0 = now_s();
	for (;;) {
		n = epoll_wait(ep, evs, 8, 100);
		for (i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (c->rbuf != NULL)
				pump_read(c, cap, false);
			else if (pump_write(c) != 0)
				fail("write");
		}
		t1 = now_s();
		if (!measuring && t1 - start >= 1.0) {
			measuring = true;
			t0 = t1;
			b0 = r.rx_bytes;
		}
		if (measuring && t1 - t0 >= secs)
			break;
	}
	/* payload bytes only, as the relay figure counts them */
	report((r.rx_bytes - b0) * size / per,
	    (r.rx_bytes - b0) / per, t1 - t0);
	return 0;
}

static volatile sig_atomic_t stopping;

static void
on_term(int sig)
{
	(void)sig;
	stopping = 1;
}

static int
do_idle(int n)
{
	struct conn *c = calloc((size_t)n, sizeof(*c));
	int i;

	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	for (i = 0; i < n && !stopping; i++) {
		new_key(&c[i]);
		if (handshake(&c[i], NULL) != 0)
			fail("refused");
		/* the client's side of TLS holds its buffers too; give them
		 * back, only the server's memory is being measured */
		if (c[i].ssl != NULL)
			SSL_set_mode(c[i].ssl, SSL_MODE_RELEASE_BUFFERS);
	}
	printf("ready %d\n", i);
	fflush(stdout);
	while (!stopping)
		pause();
	return 0;
}

int
main(int argc, char *argv[])
{
	int ch;

	while ((ch = getopt(argc, argv, "tw:")) != -1) {
		if (ch == 't')
			continue;	/* TLS follows from the URL */
		if (ch == 'w') {
			window = (unsigned)atoi(optarg);
			continue;
		}
		usage();
	}
	argc -= optind;
	argv += optind;
	if (argc < 1 || sodium_init() < 0)
		usage();
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(argv[0], "tcp") == 0) {
		if (argc != 3)
			usage();
		return do_tcp(atof(argv[1]), (size_t)atoi(argv[2]));
	}
	if (argc < 2)
		usage();
	parse_url(argv[1]);
	if (use_tls) {
		ctx = SSL_CTX_new(TLS_client_method());
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	if (strcmp(argv[0], "stall") == 0 && argc == 3)
		return do_stall(argv[2]);
	if (strcmp(argv[0], "impersonate") == 0 && argc == 3)
		return do_impersonate(argv[2]);
	if (strcmp(argv[0], "bigframe") == 0 && argc == 3)
		return do_bigframe(argv[2]);
	if (strcmp(argv[0], "flood") == 0 && argc >= 5)
		return do_flood(argv[2], (size_t)atoi(argv[3]), argv + 4,
		    argc - 4);
	if (strcmp(argv[0], "goodput") == 0 && argc == 5)
		return do_goodput(atoi(argv[2]), atof(argv[3]),
		    (size_t)atoi(argv[4]));
	if (strcmp(argv[0], "idle") == 0 && argc == 3)
		return do_idle(atoi(argv[2]));
	usage();
}
