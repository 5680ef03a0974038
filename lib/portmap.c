/* SPDX-License-Identifier: MIT */
#include "portmap.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/route.h>
#include <poll.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <natpmp.h>

#include "loop.h"
#include "portmap_int.h"
#include "sock.h"

/* RFC 6886 section 3.1: resend after 250 ms, doubling. PCP's own schedule
 * (RFC 6887 section 8.1.1) starts at 3 s, too slow for a 500 ms probe;
 * Tailscale sends PCP once and waits 250 ms. */
#define RTO_FIRST_US		250000ULL
#define RTO_MAX_US		2000000ULL
/* The PCP probe's own mapping, deleted at once; servers may raise it. */
#define PROBE_MAP_LIFETIME	2

enum { EV_NONE, EV_TIMEOUT, EV_PMP, EV_PCP, EV_EXTRA, EV_REFUSED };

static const char *const pcp_whys[] = {
	"PCP: success", "PCP: unsupported version", "PCP: not authorized",
	"PCP: malformed request", "PCP: unsupported opcode",
	"PCP: unsupported option", "PCP: malformed option",
	"PCP: network failure", "PCP: no resources",
	"PCP: unsupported protocol", "PCP: user exceeded quota",
	"PCP: cannot provide an external address", "PCP: address mismatch",
	"PCP: excessive remote peers",
};

static const char *const natpmp_whys[] = {
	"NAT-PMP: success", "NAT-PMP: unsupported version",
	"NAT-PMP: not authorized", "NAT-PMP: network failure",
	"NAT-PMP: out of resources", "NAT-PMP: unsupported opcode",
};

static const char *
pcp_why(unsigned result)
{
	if (result < sizeof(pcp_whys) / sizeof(pcp_whys[0]))
		return pcp_whys[result];
	return "PCP: unknown result code";
}

static const char *
natpmp_why(unsigned result)
{
	if (result < sizeof(natpmp_whys) / sizeof(natpmp_whys[0]))
		return natpmp_whys[result];
	return "NAT-PMP: unknown result code";
}

/* ---- names ---- */

const char *
mk_pm_name(unsigned via)
{
	switch (via) {
	case MK_PM_UPNP:
		return "UPnP";
	case MK_PM_NATPMP:
		return "NAT-PMP";
	case MK_PM_PCP:
		return "PCP";
	}
	return "none";
}

int
mk_pm_parse_via(const char *s, unsigned *via)
{
	if (strcasecmp(s, "upnp") == 0)
		*via = MK_PM_UPNP;
	else if (strcasecmp(s, "natpmp") == 0 || strcasecmp(s, "nat-pmp") == 0)
		*via = MK_PM_NATPMP;
	else if (strcasecmp(s, "pcp") == 0)
		*via = MK_PM_PCP;
	else
		return -1;
	return 0;
}

char *
mk_pm_list(unsigned found, char *buf, size_t n)
{
	static const unsigned order[] = { MK_PM_UPNP, MK_PM_NATPMP, MK_PM_PCP };
	size_t i, used = 0;
	int len;

	if (n == 0)
		return buf;
	buf[0] = '\0';
	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (!(found & order[i]))
			continue;
		len = snprintf(buf + used, n - used, "%s%s", used ? ", " : "",
		    mk_pm_name(order[i]));
		if (len < 0 || (size_t)len >= n - used) {
			buf[used] = '\0';	/* whole names only */
			break;
		}
		used += (size_t)len;
	}
	return buf;
}

/* ---- the gateway ---- */

int
mk_pm_route_parse(FILE *f, struct mk_addr *gw, const char **why)
{
	char line[512], ifname[64];
	unsigned long dst, via, flags, refcnt, use, metric, mask;
	unsigned long best = 0, best_metric = ULONG_MAX;
	struct in_addr in;
	bool header = true, found = false;

	memset(gw, 0, sizeof(*gw));
	while (fgets(line, sizeof(line), f) != NULL) {
		if (header) {
			header = false;
			continue;
		}
		if (sscanf(line, "%63s %lx %lx %lx %lu %lu %lu %lx", ifname,
		    &dst, &via, &flags, &refcnt, &use, &metric, &mask) != 8)
			continue;
		if (dst != 0 || mask != 0 || via == 0 || via > 0xffffffffUL ||
		    (flags & (RTF_UP | RTF_GATEWAY)) != (RTF_UP | RTF_GATEWAY))
			continue;
		if (found && metric >= best_metric)
			continue;
		best = via;
		best_metric = metric;
		found = true;
	}
	if (!found) {
		*why = "no IPv4 default route";
		return -1;
	}
	/* The kernel prints the address as the host's view of the network-
	 * order word, so the number is s_addr as it is. */
	in.s_addr = (in_addr_t)best;
	mk_addr_from_v4(gw, (const uint8_t *)&in.s_addr, 0);
	return 0;
}

/* Our source address towards the gateway (port 0). */
static int
source_to(const struct mk_addr *gw, struct mk_addr *self, const char **why)
{
	struct mk_addr dst = *gw;

	mk_addr_set_port(&dst, MK_PCP_PORT);
	if (mk_route_source(&dst, self) == -1) {
		*why = "no route to the gateway";
		return -1;
	}
	mk_addr_set_port(self, 0);
	return 0;
}

int
mk_pm_gateway(struct mk_addr *gw, struct mk_addr *self, const char **why)
{
	FILE *f;
	int rc;

	memset(self, 0, sizeof(*self));
	if ((f = fopen("/proc/net/route", "re")) == NULL) {
		memset(gw, 0, sizeof(*gw));
		*why = "cannot read /proc/net/route";
		return -1;
	}
	rc = mk_pm_route_parse(f, gw, why);
	fclose(f);
	if (rc == 0 && source_to(gw, self, why) == -1)
		rc = -1;
	return rc;
}

/* ---- one UDP socket for NAT-PMP and PCP ---- */

/*
 * libnatpmp owns the socket (connected to gateway:5351), builds NAT-PMP
 * requests and reads NAT-PMP answers; PCP shares the socket, as in
 * Tailscale's probe. Every datagram is peeked at and checked first, and
 * libnatpmp reads only a valid NAT-PMP answer that sits at the head of
 * the queue: it would otherwise swallow PCP answers, and it reads a fixed
 * 16 bytes whatever the datagram's length. Resending is ours for both:
 * NAT-PMP's by calling libnatpmp's send function again, because its own
 * retry (readnatpmpresponseorretry on an empty queue) reads the socket
 * and could take a PCP answer that arrives in between.
 */
struct sess {
	natpmp_t n;
	int fd;
	struct mk_addr self;		/* with the socket's port */
	bool refused;			/* ICMP port unreachable */
	/* The NAT-PMP request in flight. */
	bool pmp_on;
	uint8_t pmp_op;
	uint16_t pmp_iport, pmp_eport;
	uint32_t pmp_life;
	uint64_t pmp_next, pmp_rto;
	struct mk_natpmp_resp pmp;
	const char *pmp_fail;		/* NULL: the answer is a success */
	/* The PCP request in flight. */
	bool pcp_on;
	uint8_t pcp_req[MK_PCP_MAP_LEN];
	size_t pcp_len;
	uint64_t pcp_next, pcp_rto;
	struct mk_pcp_resp pcp;
	const char *pcp_fail;
};

static int
sess_open(struct sess *s, const struct mk_addr *gw, const char **why)
{
	memset(s, 0, sizeof(*s));
	s->n.s = s->fd = -1;
	if (mk_addr_family(gw) != AF_INET) {
		*why = "the gateway is not an IPv4 address";
		return -1;
	}
	if (initnatpmp(&s->n, 1, gw->sin.sin_addr.s_addr) != 0) {
		/* libnatpmp leaves its socket open when connect fails. */
		if (s->n.s >= 0)
			close(s->n.s);
		*why = "cannot open a UDP socket to the gateway";
		return -1;
	}
	s->fd = s->n.s;
	(void)fcntl(s->fd, F_SETFD, FD_CLOEXEC);
	if (mk_sock_local(s->fd, &s->self) == -1) {
		closenatpmp(&s->n);
		*why = "getsockname failed";
		return -1;
	}
	return 0;
}

static void
sess_close(struct sess *s)
{
	if (s->fd >= 0)
		closenatpmp(&s->n);
	s->fd = s->n.s = -1;
}

/* A pending ICMP error surfaces on the next send or receive. */
static void
note_error(struct sess *s)
{
	if (errno == ECONNREFUSED)
		s->refused = true;
}

static void
pmp_send(struct sess *s)
{
	int r;

	if (s->pmp_op == MK_NATPMP_OP_PUBLIC)
		r = sendpublicaddressrequest(&s->n);
	else
		r = sendnewportmappingrequest(&s->n, NATPMP_PROTOCOL_UDP,
		    s->pmp_iport, s->pmp_eport, s->pmp_life);
	if (r < 0)
		note_error(s);
}

static void
pcp_send(struct sess *s)
{
	if (send(s->fd, s->pcp_req, s->pcp_len, MSG_NOSIGNAL) < 0)
		note_error(s);
}

static void
sess_pmp_start(struct sess *s, uint8_t op, uint16_t iport, uint16_t eport,
    uint32_t life)
{
	s->pmp_on = true;
	s->pmp_op = op;
	s->pmp_iport = iport;
	s->pmp_eport = eport;
	s->pmp_life = life;
	s->pmp_fail = NULL;
	memset(&s->pmp, 0, sizeof(s->pmp));
	pmp_send(s);
	s->pmp_rto = RTO_FIRST_US;
	s->pmp_next = mk_now_us() + s->pmp_rto;
}

static void
sess_pcp_start(struct sess *s, const uint8_t *req, size_t len)
{
	s->pcp_on = true;
	memcpy(s->pcp_req, req, len);
	s->pcp_len = len;
	s->pcp_fail = NULL;
	memset(&s->pcp, 0, sizeof(s->pcp));
	pcp_send(s);
	s->pcp_rto = RTO_FIRST_US;
	s->pcp_next = mk_now_us() + s->pcp_rto;
}

static void
sess_resend(struct sess *s, uint64_t now)
{
	if (s->pmp_on && now >= s->pmp_next) {
		pmp_send(s);
		s->pmp_rto = s->pmp_rto * 2 > RTO_MAX_US ? RTO_MAX_US :
		    s->pmp_rto * 2;
		s->pmp_next = now + s->pmp_rto;
	}
	if (s->pcp_on && now >= s->pcp_next) {
		pcp_send(s);
		s->pcp_rto = s->pcp_rto * 2 > RTO_MAX_US ? RTO_MAX_US :
		    s->pcp_rto * 2;
		s->pcp_next = now + s->pcp_rto;
	}
}

/* Take the datagram at the head of the queue away unread. */
static void
sess_drop(struct sess *s)
{
	uint8_t b;

	(void)recv(s->fd, &b, 1, MSG_DONTWAIT);
}

static uint16_t
req16(const struct sess *s, size_t off)
{
	return (uint16_t)(s->pcp_req[off] << 8 | s->pcp_req[off + 1]);
}

/* The MAP answer is to our request: same nonce, protocol, port. */
static bool
pcp_same_map(const struct sess *s, const struct mk_pcp_resp *r)
{
	const uint8_t *q = s->pcp_req + MK_PCP_HDR_LEN;

	return memcmp(r->nonce, q, MK_PCP_NONCE_LEN) == 0 &&
	    r->protocol == q[12] &&
	    r->internal_port == req16(s, MK_PCP_HDR_LEN + 16);
}

static int
pmp_answer(struct sess *s, const uint8_t *buf, size_t len)
{
	struct mk_natpmp_resp r;
	natpmpresp_t nr;
	const char *w;

	if (mk_natpmp_decode(&r, buf, len, &w) == -1) {
		sess_drop(s);
		return EV_NONE;
	}
	/* A NAT-PMP-only server answers PCP's version 2 with a version-0
	 * UNSUPP_VERSION (RFC 6887 section 9); NAT-PMP's own version-0
	 * requests are what it speaks, so the answer is about PCP. */
	if (r.result == MK_NATPMP_UNSUPP_VERSION && s->pcp_on) {
		sess_drop(s);
		s->pcp_on = false;
		s->pcp.result = MK_PCP_UNSUPP_VERSION;
		s->pcp_fail = "PCP: a NAT-PMP server without PCP";
		return EV_PCP;
	}
	if (!s->pmp_on || r.op != s->pmp_op || (r.op != MK_NATPMP_OP_PUBLIC &&
	    r.result == MK_NATPMP_SUCCESS && r.internal_port != s->pmp_iport)) {
		sess_drop(s);
		return EV_NONE;
	}
	s->pmp_on = false;
	s->pmp = r;
	if (r.result != MK_NATPMP_SUCCESS) {
		sess_drop(s);
		s->pmp_fail = natpmp_why(r.result);
		return EV_PMP;
	}
	/* The datagram just checked is the one libnatpmp reads now; reading
	 * it ends libnatpmp's pending request. */
	if (readnatpmpresponseorretry(&s->n, &nr) != 0)
		s->pmp_fail = "NAT-PMP: libnatpmp rejected the answer";
	return EV_PMP;
}

static int
pcp_answer(struct sess *s, const uint8_t *buf, size_t len)
{
	struct mk_pcp_resp r;
	const char *w;

	if (mk_pcp_decode(&r, buf, len, &w) == -1)
		return EV_NONE;
	/* A PCP-only server answers NAT-PMP's version 0 with a version-2
	 * UNSUPP_VERSION; to our version-2 requests a version-2 server would
	 * not say that. */
	if (r.result == MK_PCP_UNSUPP_VERSION && s->pmp_on) {
		s->pmp_on = false;
		s->pmp.result = MK_NATPMP_UNSUPP_VERSION;
		s->pmp_fail = "NAT-PMP: a PCP server without NAT-PMP";
		return EV_PMP;
	}
	if (!s->pcp_on || r.opcode != (s->pcp_req[1] & 0x7f))
		return EV_NONE;
	if (r.opcode == MK_PCP_OP_MAP && r.has_map && !pcp_same_map(s, &r))
		return EV_NONE;
	s->pcp_on = false;
	s->pcp = r;
	s->pcp_fail = r.result == MK_PCP_SUCCESS ? NULL : pcp_why(r.result);
	return EV_PCP;
}

/* Handle what is queued, up to the first answer. */
static int
sess_read(struct sess *s)
{
	uint8_t buf[MK_PCP_MAX_LEN + 4];
	ssize_t n;
	int ev;

	for (;;) {
		n = recv(s->fd, buf, sizeof(buf),
		    MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			note_error(s);
			return s->refused ? EV_REFUSED : EV_NONE;
		}
		if (n == 0 || (size_t)n > MK_PCP_MAX_LEN) {
			sess_drop(s);
			continue;
		}
		if (buf[0] == MK_NATPMP_VERSION) {
			ev = pmp_answer(s, buf, (size_t)n);
		} else {
			sess_drop(s);
			ev = buf[0] == MK_PCP_VERSION ?
			    pcp_answer(s, buf, (size_t)n) : EV_NONE;
		}
		if (ev != EV_NONE)
			return ev;
	}
}

static int
ms_until(uint64_t when, uint64_t now)
{
	uint64_t ms;

	if (when <= now)
		return 0;
	ms = (when - now + 999) / 1000;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

/*
 * Wait for the next event: an answer (EV_PMP, EV_PCP), the port closed
 * (EV_REFUSED), extra_fd readable (EV_EXTRA; -1 for none) or deadline.
 * Requests in flight are resent meanwhile.
 */
static int
sess_wait(struct sess *s, uint64_t deadline, int extra_fd)
{
	struct pollfd pfd[2];
	uint64_t now, wake;
	nfds_t nfd;
	int ev;

	for (;;) {
		if ((ev = sess_read(s)) != EV_NONE)
			return ev;
		now = mk_now_us();
		sess_resend(s, now);
		if (s->refused)
			return EV_REFUSED;
		if (now >= deadline)
			return EV_TIMEOUT;
		wake = deadline;
		if (s->pmp_on && s->pmp_next < wake)
			wake = s->pmp_next;
		if (s->pcp_on && s->pcp_next < wake)
			wake = s->pcp_next;
		pfd[0].fd = s->fd;
		pfd[0].events = POLLIN;
		pfd[1].fd = extra_fd;
		pfd[1].events = POLLIN;
		nfd = extra_fd >= 0 ? 2 : 1;
		if (poll(pfd, nfd, ms_until(wake, now)) > 0 && nfd == 2 &&
		    (pfd[1].revents & POLLIN))
			return EV_EXTRA;
	}
}

/* Wait for fd alone: EV_EXTRA or EV_TIMEOUT. */
static int
wait_fd(int fd, uint64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	uint64_t now;

	while ((now = mk_now_us()) < deadline)
		if (poll(&pfd, 1, ms_until(deadline, now)) > 0)
			return EV_EXTRA;
	return EV_TIMEOUT;
}

/* Run the request in flight to its answer. 0, or -1 with *why. */
static int
sess_finish(struct sess *s, int want, uint64_t deadline, const char **why)
{
	bool pmp = want == EV_PMP;
	const char *fail;
	int ev;

	for (;;) {
		ev = sess_wait(s, deadline, -1);
		if (ev == EV_TIMEOUT) {
			*why = pmp ? "NAT-PMP: no answer from the gateway" :
			    "PCP: no answer from the gateway";
			return -1;
		}
		if (ev == EV_REFUSED) {
			*why = pmp ? "NAT-PMP: port 5351 closed" :
			    "PCP: port 5351 closed";
			return -1;
		}
		if (ev != want)
			continue;
		if ((fail = pmp ? s->pmp_fail : s->pcp_fail) != NULL) {
			*why = fail;
			return -1;
		}
		return 0;
	}
}

/* ---- the probe ---- */

struct upnp_job {
	struct mk_addr gw, self;
	uint64_t deadline_us;
	int rc;
	const char *why;
	int igd;
	char desc_url[MK_PM_URL_MAX];
	struct mk_pm_upnp upnp;
	struct mk_addr ext;
};

static void
upnp_job_run(void *p)
{
	struct upnp_job *j = p;

	j->rc = mk_pm_upnp_discover(&j->gw, &j->self, j->deadline_us,
	    j->desc_url, sizeof(j->desc_url), &j->why);
	if (j->rc == 0)
		j->rc = mk_pm_upnp_igd(j->desc_url, &j->upnp, &j->igd,
		    &j->ext, &j->why);
}

static struct mk_task *
upnp_start(const struct mk_pm_probe *r, uint64_t deadline, const char **why)
{
	struct upnp_job *j;
	struct mk_task *t;

	if ((j = calloc(1, sizeof(*j))) == NULL) {
		*why = "UPnP: out of memory";
		return NULL;
	}
	j->gw = r->gateway;
	j->self = r->self;
	j->deadline_us = deadline;
	j->rc = -1;
	if ((t = mk_task_start(upnp_job_run, j, why)) == NULL)
		free(j);
	return t;
}

static void
upnp_collect(struct mk_pm_probe *r, const struct mk_task *t)
{
	const struct upnp_job *j = mk_task_arg(t);

	r->upnp_igd_status = j->igd;
	memcpy(r->upnp_desc_url, j->desc_url, sizeof(r->upnp_desc_url));
	if (j->rc == 0) {
		r->found |= MK_PM_UPNP;
		r->upnp = j->upnp;
		r->ext_upnp = j->ext;
		r->why_upnp = NULL;
	} else {
		r->why_upnp = j->why;
	}
}

static void
probe_natpmp(struct mk_pm_probe *r, const struct sess *s)
{
	r->natpmp_result = s->pmp.result;
	r->natpmp_epoch = s->pmp.epoch;
	if (s->pmp_fail != NULL) {
		r->why_natpmp = s->pmp_fail;
	} else if (mk_addr_is_any(&s->pmp.external)) {
		/* Tailscale too: a gateway without a WAN address yet. */
		r->why_natpmp = "NAT-PMP: public address 0.0.0.0";
	} else {
		r->found |= MK_PM_NATPMP;
		r->ext_natpmp = s->pmp.external;
		r->why_natpmp = NULL;
	}
}

enum { PCP_DONE, PCP_ANNOUNCE, PCP_MAP, PCP_DELETE };

/* ANNOUNCE says PCP is there; a MAP of the probe socket's own port for
 * the shortest lifetime says the external address; then it is deleted. */
static int
probe_pcp(struct mk_pm_probe *r, struct sess *s, int stage)
{
	struct mk_pcp_map_req q;
	uint8_t buf[MK_PCP_MAP_LEN];
	size_t len;

	if (stage == PCP_ANNOUNCE) {
		r->pcp_result = s->pcp.result;
		r->pcp_epoch = s->pcp.epoch;
		if (s->pcp_fail != NULL) {
			r->why_pcp = s->pcp_fail;
			return PCP_DONE;
		}
		r->found |= MK_PM_PCP;
		r->why_pcp = NULL;
		memset(&q, 0, sizeof(q));
		q.client = s->self;
		q.lifetime = PROBE_MAP_LIFETIME;
		randombytes_buf(q.nonce, sizeof(q.nonce));
		q.protocol = MK_PCP_PROTO_UDP;
		q.internal_port = mk_addr_port(&s->self);
		if ((len = mk_pcp_encode_map(buf, sizeof(buf), &q)) == 0)
			return PCP_DONE;
		sess_pcp_start(s, buf, len);
		return PCP_MAP;
	}
	if (stage == PCP_MAP && s->pcp_fail == NULL) {
		r->ext_pcp = s->pcp.external;
		mk_addr_set_port(&r->ext_pcp, 0);
		if (mk_addr_is_any(&r->ext_pcp))
			memset(&r->ext_pcp, 0, sizeof(r->ext_pcp));
		/* The same request with lifetime 0 deletes it. */
		memcpy(buf, s->pcp_req, s->pcp_len);
		memset(buf + 4, 0, 4);
		sess_pcp_start(s, buf, s->pcp_len);
		return PCP_DELETE;
	}
	return PCP_DONE;
}

int
mk_pm_probe_at(struct mk_pm_probe *r, const struct mk_addr *gw,
    unsigned which, uint64_t timeout_us, const char **why)
{
	struct sess s;
	struct mk_task *ut = NULL;
	uint64_t start = mk_now_us(), deadline;
	bool udp = false;
	int stage = PCP_DONE, ev;
	const char *w;

	memset(r, 0, sizeof(*r));
	memset(&s, 0, sizeof(s));
	r->natpmp_result = r->pcp_result = -1;
	/* Nonces and ports are random; it may be our first use of
	 * libsodium, perhaps on a helper thread (sodium_init is idempotent
	 * and thread-safe). */
	if (sodium_init() < 0) {
		*why = "libsodium cannot start";
		return -1;
	}
	which = which == 0 ? MK_PM_ALL : which & MK_PM_ALL;
	deadline = start + (timeout_us ? timeout_us : MK_PM_PROBE_TIMEOUT_US);
	if (mk_addr_family(gw) != AF_INET) {
		*why = "the gateway is not an IPv4 address";
		return -1;
	}
	r->gateway = *gw;
	mk_addr_set_port(&r->gateway, 0);
	if (source_to(&r->gateway, &r->self, why) == -1)
		return -1;
	if (which & (MK_PM_NATPMP | MK_PM_PCP)) {
		if (sess_open(&s, &r->gateway, why) == -1)
			return -1;
		udp = true;
		r->self = s.self;
		mk_addr_set_port(&r->self, 0);
	}
	if ((which & MK_PM_UPNP) && (ut = upnp_start(r, deadline, &w)) == NULL)
		r->why_upnp = w;
	if (which & MK_PM_NATPMP)
		sess_pmp_start(&s, MK_NATPMP_OP_PUBLIC, 0, 0, 0);
	if (which & MK_PM_PCP) {
		uint8_t buf[MK_PCP_HDR_LEN];

		if (mk_pcp_encode_announce(buf, sizeof(buf), &s.self) != 0) {
			sess_pcp_start(&s, buf, sizeof(buf));
			stage = PCP_ANNOUNCE;
		}
	}
	while (ut != NULL || (udp && (s.pmp_on || stage != PCP_DONE))) {
		if (udp && (s.pmp_on || stage != PCP_DONE))
			ev = sess_wait(&s, deadline,
			    ut != NULL ? mk_task_fd(ut) : -1);
		else
			ev = wait_fd(mk_task_fd(ut), deadline);
		if (ev == EV_TIMEOUT)
			break;
		if (ev == EV_PMP) {
			probe_natpmp(r, &s);
		} else if (ev == EV_PCP) {
			stage = probe_pcp(r, &s, stage);
		} else if (ev == EV_EXTRA && mk_task_done(ut)) {
			/* The flag's acquire makes the job's writes ours; the
			 * eventfd only woke us (it is written after). */
			upnp_collect(r, ut);
			mk_task_put(ut);
			ut = NULL;
		} else if (ev == EV_REFUSED) {
			if (s.pmp_on)
				r->why_natpmp = "NAT-PMP: port 5351 closed";
			if (stage == PCP_ANNOUNCE)
				r->why_pcp = "PCP: port 5351 closed";
			s.pmp_on = false;
			stage = PCP_DONE;
		}
	}
	if (udp && s.pmp_on)
		r->why_natpmp = "NAT-PMP: no answer";
	if (stage == PCP_ANNOUNCE)
		r->why_pcp = "PCP: no answer";
	if (stage == PCP_MAP || stage == PCP_DELETE) {
		/* Out of time, perhaps with the probe's own mapping made:
		 * one last delete, not waited for. */
		memset(s.pcp_req + 4, 0, 4);
		pcp_send(&s);
	}
	if (ut != NULL) {
		/* Its thread finishes on its own and frees what it holds. */
		r->why_upnp = "UPnP: no answer in time";
		mk_task_put(ut);
	}
	if (udp)
		sess_close(&s);
	r->elapsed_us = mk_now_us() - start;
	return 0;
}

int
mk_pm_probe(struct mk_pm_probe *r, unsigned which, uint64_t timeout_us,
    const char **why)
{
	struct mk_addr gw, self;

	if (mk_pm_gateway(&gw, &self, why) == -1) {
		memset(r, 0, sizeof(*r));
		r->natpmp_result = r->pcp_result = -1;
		return -1;
	}
	return mk_pm_probe_at(r, &gw, which, timeout_us, why);
}

/* ---- mappings ---- */

static void
set_times(struct mk_pm_mapping *m, uint64_t now)
{
	uint64_t life = m->lifetime ? m->lifetime : m->requested;

	/* A permanent UPnP lease is refreshed all the same: routers lose
	 * them on reboot. At least a second apart, whatever was granted. */
	m->renew_at_us = now + (life > 2 ? life : 2) * 1000000ULL / 2;
	if (m->via == MK_PM_UPNP && m->lifetime == 0)
		m->expires_at_us = UINT64_MAX;
	else
		m->expires_at_us = now + m->lifetime * 1000000ULL;
}

/* RFC 6886 section 3.6, RFC 6887 section 8.5, much simplified as in
 * Tailscale: an epoch that went back means the server restarted. */
static void
note_epoch(struct mk_pm_mapping *m, uint32_t epoch)
{
	if (m->external.len != 0 && epoch < m->epoch)
		m->epoch_reset = true;
	m->epoch = epoch;
}

static int
do_natpmp(struct mk_pm_mapping *m, uint32_t life, const char **why)
{
	uint64_t deadline = mk_now_us() + MK_PM_REQ_TIMEOUT_US;
	struct mk_addr ext = { .len = 0 };
	struct sess s;
	uint16_t iport = mk_addr_port(&m->internal);

	if (sess_open(&s, &m->gateway, why) == -1)
		return -1;
	if (life != 0) {
		/* A mapping answer does not carry the address. */
		sess_pmp_start(&s, MK_NATPMP_OP_PUBLIC, 0, 0, 0);
		if (sess_finish(&s, EV_PMP, deadline, why) == -1)
			goto fail;
		ext = s.pmp.external;
		if (mk_addr_is_any(&ext)) {
			*why = "NAT-PMP: public address 0.0.0.0";
			goto fail;
		}
	}
	/* RFC 6886 section 3.4: a deletion suggests port 0. */
	sess_pmp_start(&s, MK_NATPMP_OP_UDP, iport,
	    life ? mk_addr_port(&m->external) : 0, life);
	if (sess_finish(&s, EV_PMP, deadline, why) == -1)
		goto fail;
	if (life != 0) {
		if (s.pmp.external_port == 0) {
			*why = "NAT-PMP: mapped to port 0";
			goto fail;
		}
		note_epoch(m, s.pmp.epoch);
		m->external = ext;
		mk_addr_set_port(&m->external, s.pmp.external_port);
		m->lifetime = s.pmp.lifetime;
		m->internal = s.self;
		mk_addr_set_port(&m->internal, iport);
	}
	sess_close(&s);
	return 0;
fail:
	sess_close(&s);
	return -1;
}

static int
do_pcp(struct mk_pm_mapping *m, uint32_t life, const char **why)
{
	uint64_t deadline = mk_now_us() + MK_PM_REQ_TIMEOUT_US;
	struct mk_pcp_map_req q;
	uint8_t buf[MK_PCP_MAP_LEN];
	struct sess s;
	size_t len;
	int rc = -1;

	if (sess_open(&s, &m->gateway, why) == -1)
		return -1;
	memset(&q, 0, sizeof(q));
	q.client = s.self;
	q.lifetime = life;
	memcpy(q.nonce, m->pcp_nonce, sizeof(q.nonce));
	q.protocol = m->protocol;
	q.internal_port = mk_addr_port(&m->internal);
	q.suggested_port = mk_addr_port(&m->external);
	q.suggested_ip = m->external;
	if ((len = mk_pcp_encode_map(buf, sizeof(buf), &q)) == 0) {
		*why = "PCP: cannot encode the request";
		goto out;
	}
	sess_pcp_start(&s, buf, len);
	if (sess_finish(&s, EV_PCP, deadline, why) == -1)
		goto out;
	if (life != 0) {
		if (mk_addr_is_any(&s.pcp.external) ||
		    s.pcp.external_port == 0) {
			*why = "PCP: no external address in the answer";
			goto out;
		}
		note_epoch(m, s.pcp.epoch);
		m->external = s.pcp.external;
		m->lifetime = s.pcp.lifetime;
		m->internal = s.self;
		mk_addr_set_port(&m->internal, q.internal_port);
	}
	rc = 0;
out:
	sess_close(&s);
	return rc;
}

/* UPnP's SOAP, blocking (run through soap_bounded). */
static int
do_upnp(struct mk_pm_mapping *m, uint32_t life, const char **why)
{
	struct mk_addr ext;
	uint16_t port = mk_addr_port(&m->external);
	uint32_t granted;
	const char *w;
	bool fresh = m->external.len == 0;

	if (life == 0)
		return mk_pm_upnp_delete(&m->upnp, port, why);
	if (fresh)
		port = mk_addr_port(&m->internal);
	if (mk_pm_upnp_add(&m->upnp, &m->internal, &port, life, &granted,
	    why) == -1)
		return -1;
	if (mk_pm_upnp_external(&m->upnp, &ext, why) == -1) {
		/* Not half a mapping: take back one made just now. */
		if (fresh)
			(void)mk_pm_upnp_delete(&m->upnp, port, &w);
		return -1;
	}
	m->external = ext;
	mk_addr_set_port(&m->external, port);
	m->lifetime = granted;
	return 0;
}

struct soap_job {
	struct mk_pm_mapping m;
	uint32_t life;
	int rc;
	const char *why;
};

static void
soap_run(void *p)
{
	struct soap_job *j = p;

	j->rc = do_upnp(&j->m, j->life, &j->why);
}

/* miniupnpc's HTTP waits up to seconds per read: run it on a helper
 * thread (signals blocked there, so no SIGPIPE either) and give up after
 * MK_PM_SOAP_TIMEOUT_US. */
static int
soap_bounded(struct mk_pm_mapping *m, uint32_t life, const char **why)
{
	struct soap_job *j;
	struct mk_task *t;
	int rc;

	if ((j = calloc(1, sizeof(*j))) == NULL) {
		*why = "UPnP: out of memory";
		return -1;
	}
	j->m = *m;
	j->life = life;
	j->rc = -1;
	j->why = "UPnP: request failed";
	if ((t = mk_task_start(soap_run, j, why)) == NULL) {
		free(j);
		return -1;
	}
	if (wait_fd(mk_task_fd(t), mk_now_us() + MK_PM_SOAP_TIMEOUT_US) ==
	    EV_TIMEOUT || !mk_task_done(t)) {
		mk_task_put(t);
		*why = "UPnP: no answer in time";
		return -1;
	}
	j = mk_task_arg(t);
	rc = j->rc;
	if (rc == 0)
		*m = j->m;
	else
		*why = j->why;
	mk_task_put(t);
	return rc;
}

static int
request(struct mk_pm_mapping *m, uint32_t life, const char **why)
{
	switch (m->via) {
	case MK_PM_NATPMP:
		return do_natpmp(m, life, why);
	case MK_PM_PCP:
		return do_pcp(m, life, why);
	case MK_PM_UPNP:
		return soap_bounded(m, life, why);
	}
	*why = "the mapping names no service";
	return -1;
}

static const char *
absent(const struct mk_pm_probe *p, unsigned via)
{
	switch (via) {
	case MK_PM_UPNP:
		return p->why_upnp ? p->why_upnp : "UPnP: not found";
	case MK_PM_NATPMP:
		return p->why_natpmp ? p->why_natpmp : "NAT-PMP: not found";
	case MK_PM_PCP:
		return p->why_pcp ? p->why_pcp : "PCP: not found";
	}
	return "no port-mapping service on the gateway";
}

int
mk_pm_map(struct mk_pm_mapping *m, const struct mk_pm_probe *probe,
    unsigned via, uint16_t internal_port, uint32_t lifetime, const char **why)
{
	static const unsigned order[] = { MK_PM_NATPMP, MK_PM_PCP, MK_PM_UPNP };
	struct mk_pm_probe local;
	struct mk_pm_mapping n;
	size_t i;

	memset(m, 0, sizeof(*m));
	if (sodium_init() < 0) {
		*why = "libsodium cannot start";
		return -1;
	}
	if (via != 0 && via != MK_PM_UPNP && via != MK_PM_NATPMP &&
	    via != MK_PM_PCP) {
		*why = "unknown port-mapping service";
		return -1;
	}
	if (internal_port == 0) {
		*why = "internal port 0";
		return -1;
	}
	if (probe == NULL) {
		if (mk_pm_probe(&local, via, 0, why) == -1)
			return -1;
		probe = &local;
	}
	*why = absent(probe, via);
	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if ((via != 0 && order[i] != via) || !(probe->found & order[i]))
			continue;
		memset(&n, 0, sizeof(n));
		n.via = order[i];
		n.protocol = MK_PCP_PROTO_UDP;
		n.gateway = probe->gateway;
		n.internal = probe->self;
		mk_addr_set_port(&n.internal, internal_port);
		n.requested = lifetime ? lifetime : MK_PM_LIFETIME;
		randombytes_buf(n.pcp_nonce, sizeof(n.pcp_nonce));
		n.upnp = probe->upnp;
		if (request(&n, n.requested, why) == 0) {
			set_times(&n, mk_now_us());
			*m = n;
			return 0;
		}
	}
	return -1;
}

int
mk_pm_renew(struct mk_pm_mapping *m, const char **why)
{
	struct mk_pm_mapping n = *m;

	if (m->via == 0 || m->external.len == 0) {
		*why = "no mapping to renew";
		return -1;
	}
	n.epoch_reset = false;
	if (request(&n, n.requested, why) == -1)
		return -1;
	set_times(&n, mk_now_us());
	*m = n;
	return 0;
}

int
mk_pm_unmap(struct mk_pm_mapping *m, const char **why)
{
	struct mk_pm_mapping n = *m;

	if (m->via == 0 || m->external.len == 0) {
		*why = "no mapping to delete";
		return -1;
	}
	if (request(&n, 0, why) == -1)
		return -1;
	memset(&m->external, 0, sizeof(m->external));
	m->lifetime = 0;
	m->renew_at_us = m->expires_at_us = 0;
	return 0;
}
