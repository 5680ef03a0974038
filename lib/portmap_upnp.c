/* SPDX-License-Identifier: MIT */
/* UPnP-IGD: SSDP by hand (miniupnpc's discovery waits at least a second,
 * four times Tailscale's whole probe), then description and SOAP through
 * miniupnpc. Everything here blocks; portmap.c runs it on helper threads. */
#include "portmap_int.h"

#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnpcommands.h>

#include "loop.h"
#include "sock.h"
#include "util.h"

#define SSDP_RESEND_US	250000
#define UPNP_DESC	"meshkit"

/* ---- SSDP codec ---- */

/* Copy a header value; NUL and other control bytes make it invalid. With
 * truncate, a long value is cut instead of refused. 0 or -1. */
static int
copy_value(char *dst, size_t n, const char *v, size_t len, bool truncate)
{
	size_t i;

	if (len >= n) {
		if (!truncate)
			return -1;
		len = n - 1;
	}
	for (i = 0; i < len; i++) {
		if ((unsigned char)v[i] < 0x20 && v[i] != '\t')
			return -1;
		dst[i] = v[i];
	}
	dst[len] = '\0';
	return 0;
}

/* One line without its CR LF (or LF). Returns the start of the next. */
static const char *
next_line(const char *p, const char *end, size_t *len)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	const char *e = nl ? nl : end;

	*len = (size_t)(e - p);
	if (*len > 0 && p[*len - 1] == '\r')
		--*len;
	return nl ? nl + 1 : end;
}

static bool
status_ok(const char *p, size_t len)
{
	/* "HTTP/1.1 200 OK"; the reason phrase is free text. */
	return len >= 12 && strncasecmp(p, "HTTP/1.", 7) == 0 &&
	    isdigit((unsigned char)p[7]) && p[8] == ' ' &&
	    memcmp(p + 9, "200", 3) == 0 && (len == 12 || p[12] == ' ');
}

static void
trim(const char **v, size_t *len)
{
	while (*len > 0 && (**v == ' ' || **v == '\t')) {
		++*v;
		--*len;
	}
	while (*len > 0 && ((*v)[*len - 1] == ' ' || (*v)[*len - 1] == '\t'))
		--*len;
}

int
mk_ssdp_parse(struct mk_ssdp_reply *r, const char *p, size_t len,
    const char **why)
{
	const char *end = p + len, *v, *colon;
	size_t llen, nlen, vlen;

	memset(r, 0, sizeof(*r));
	v = p;
	p = next_line(p, end, &llen);
	if (!status_ok(v, llen)) {
		*why = "not an HTTP 200 answer";
		return -1;
	}
	while (p < end) {
		const char *line = p;

		p = next_line(p, end, &llen);
		if (llen == 0)
			break;
		colon = memchr(line, ':', llen);
		if (colon == NULL)
			continue;
		nlen = (size_t)(colon - line);
		v = colon + 1;
		vlen = llen - nlen - 1;
		trim(&v, &vlen);
		if (nlen == 8 && strncasecmp(line, "LOCATION", 8) == 0 &&
		    r->location[0] == '\0') {
			if (vlen == 0 || copy_value(r->location,
			    sizeof(r->location), v, vlen, false) == -1) {
				*why = "bad LOCATION header";
				return -1;
			}
		} else if (nlen == 2 && strncasecmp(line, "ST", 2) == 0 &&
		    r->st[0] == '\0') {
			if (vlen == 0 || copy_value(r->st, sizeof(r->st), v,
			    vlen, false) == -1) {
				*why = "bad ST header";
				return -1;
			}
		} else if (nlen == 6 && strncasecmp(line, "SERVER", 6) == 0 &&
		    r->server[0] == '\0') {
			if (copy_value(r->server, sizeof(r->server), v, vlen,
			    true) == -1)
				r->server[0] = '\0';
		}
	}
	if (r->location[0] == '\0' || r->st[0] == '\0') {
		*why = "no LOCATION or ST header";
		return -1;
	}
	return 0;
}

bool
mk_ssdp_is_igd(const struct mk_ssdp_reply *r)
{
	return strstr(r->st, ":InternetGatewayDevice:") != NULL ||
	    strstr(r->st, ":WANIPConnection:") != NULL ||
	    strstr(r->st, ":WANPPPConnection:") != NULL;
}

int
mk_ssdp_location(char *out, size_t n, const char *loc,
    const struct mk_addr *gw, const char **why)
{
	char ip[MK_ADDRSTRLEN];
	const char *host, *hend, *port = NULL, *path, *c;
	size_t plen = 0;
	int len;

	if (strncasecmp(loc, "http://", 7) != 0) {
		*why = "LOCATION is not an http:// URL";
		return -1;
	}
	host = loc + 7;
	hend = host + strcspn(host, ":/?#");
	if (hend == host || *host == '[') {
		*why = "LOCATION has no IPv4 host";
		return -1;
	}
	path = hend;
	if (*hend == ':') {
		port = hend + 1;
		plen = strspn(port, "0123456789");
		if (plen == 0 || plen > 5 || atoi(port) > 65535 ||
		    atoi(port) == 0) {
			*why = "LOCATION has a bad port";
			return -1;
		}
		path = port + plen;
	}
	if (*path != '\0' && *path != '/') {
		*why = "LOCATION has a bad path";
		return -1;
	}
	for (c = path; *c; c++) {
		if ((unsigned char)*c <= ' ' || *c == 0x7f) {
			*why = "LOCATION has a bad path";
			return -1;
		}
	}
	if (mk_addr_family(gw) != AF_INET) {
		*why = "gateway is not IPv4";
		return -1;
	}
	mk_addr_fmt_ip(gw, ip, sizeof(ip));
	len = snprintf(out, n, "http://%s%s%.*s%s", ip, port ? ":" : "",
	    (int)plen, port ? port : "", *path ? path : "/");
	if (len < 0 || (size_t)len >= n) {
		*why = "LOCATION too long";
		return -1;
	}
	return 0;
}

/* ---- SSDP discovery ---- */

static const char msearch[] =
    "M-SEARCH * HTTP/1.1\r\n"
    "HOST: " MK_SSDP_GROUP ":1900\r\n"
    "ST: " MK_SSDP_ST_IGD "\r\n"
    "MAN: \"ssdp:discover\"\r\n"
    "MX: 1\r\n"
    "\r\n";

/*
 * Two sockets from self: one connected to the gateway's port 1900 for the
 * unicast M-SEARCH (sent first: a host firewall then lets the answer in),
 * which also hears the ICMP error of a gateway without SSDP, and one for
 * the SSDP group. Answers may come to either.
 */
static int
ssdp_sockets(int fd[2], const struct mk_addr *gw, const struct mk_addr *self,
    const char **why)
{
	struct mk_addr local = *self, to = *gw;
	unsigned char ttl = 2;

	mk_addr_set_port(&local, 0);
	mk_addr_set_port(&to, MK_SSDP_PORT);
	if ((fd[0] = mk_udp_bind(&local, 0, why)) == -1)
		return -1;
	if (connect(fd[0], &to.sa, to.len) == -1 ||
	    (fd[1] = mk_udp_bind(&local, 0, why)) == -1) {
		*why = "UPnP: cannot open an SSDP socket";
		close(fd[0]);
		return -1;
	}
	/* Not fatal: the unicast M-SEARCH does not need them. */
	(void)setsockopt(fd[1], IPPROTO_IP, IP_MULTICAST_TTL, &ttl,
	    sizeof(ttl));
	(void)setsockopt(fd[1], IPPROTO_IP, IP_MULTICAST_IF,
	    &self->sin.sin_addr, sizeof(self->sin.sin_addr));
	return 0;
}

/* Both M-SEARCHes; true if the gateway's port turned out closed (an
 * earlier ICMP error surfaces on the connected socket's next send). */
static bool
ssdp_send(const int fd[2])
{
	struct mk_addr group;
	const char *why;
	bool refused;

	refused = send(fd[0], msearch, sizeof(msearch) - 1, MSG_NOSIGNAL) < 0 &&
	    errno == ECONNREFUSED;
	if (mk_addr_parse(&group, MK_SSDP_GROUP, MK_SSDP_PORT, 0, &why) == 0)
		(void)sendto(fd[1], msearch, sizeof(msearch) - 1, MSG_NOSIGNAL,
		    &group.sa, group.len);
	return refused;
}

/* Read what is queued on fd: 0 and desc_url set on an IGD answer from
 * the gateway, 1 when nothing useful came, 2 when the gateway refused. */
static int
ssdp_read(int fd, const struct mk_addr *gw, char *desc_url, size_t n,
    const char **why)
{
	char buf[2048];
	struct sockaddr_storage ss;
	struct mk_addr from;
	struct mk_ssdp_reply r;
	socklen_t sl;
	ssize_t got;
	const char *w;

	for (;;) {
		sl = sizeof(ss);
		got = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT,
		    (struct sockaddr *)&ss, &sl);
		if (got < 0)
			return errno == ECONNREFUSED ? 2 : 1;
		mk_addr_from_sa(&from, (struct sockaddr *)&ss, sl);
		if (!mk_addr_same_ip(&from, gw))
			continue;
		if (mk_ssdp_parse(&r, buf, (size_t)got, &w) == -1 ||
		    !mk_ssdp_is_igd(&r))
			continue;
		if (mk_ssdp_location(desc_url, n, r.location, gw, &w) == -1) {
			*why = w;
			continue;
		}
		return 0;
	}
}

int
mk_pm_upnp_discover(const struct mk_addr *gw, const struct mk_addr *self,
    uint64_t deadline_us, char *desc_url, size_t n, const char **why)
{
	struct pollfd pfd[2];
	uint64_t now, next = 0, wake;
	int fd[2], i, r, rc = -1;
	bool refused = false;

	if (ssdp_sockets(fd, gw, self, why) == -1)
		return -1;
	*why = "UPnP: no answer to M-SEARCH";
	for (i = 0; i < 2; i++) {
		pfd[i].fd = fd[i];
		pfd[i].events = POLLIN;
	}
	while (rc == -1 && !refused && (now = mk_now_us()) < deadline_us) {
		if (now >= next) {
			if ((refused = ssdp_send(fd)))
				break;
			next = now + SSDP_RESEND_US;
		}
		wake = next < deadline_us ? next : deadline_us;
		if (poll(pfd, 2, (int)((wake - now + 999) / 1000)) <= 0)
			continue;
		for (i = 0; i < 2 && rc == -1 && !refused; i++) {
			if (pfd[i].revents == 0)
				continue;
			r = ssdp_read(fd[i], gw, desc_url, n, why);
			rc = r == 0 ? 0 : -1;
			refused = r == 2;
		}
	}
	if (refused)
		*why = "UPnP: port 1900 closed on the gateway";
	close(fd[0]);
	close(fd[1]);
	return rc;
}

/* ---- miniupnpc ---- */

/* A one-entry device list for UPNP_GetValidIGD, as upnpDiscover would
 * have built it (struct UPNPDev is public, with a flexible buffer). */
static struct UPNPDev *
devlist_one(const char *desc_url)
{
	size_t ul = strlen(desc_url) + 1, sl = sizeof(MK_SSDP_ST_IGD);
	struct UPNPDev *d;

	if ((d = calloc(1, sizeof(*d) + ul + sl + 1)) == NULL)
		return NULL;
	d->descURL = d->buffer;
	memcpy(d->descURL, desc_url, ul);
	d->st = d->descURL + ul;
	memcpy(d->st, MK_SSDP_ST_IGD, sl);
	d->usn = d->st + sl;
	return d;
}

/*
 * UPNP_GetValidIGD's answer as an enum mk_pm_igd. From API 18 its values
 * are the enum's; before, 2 meant "not connected or a reserved WAN
 * address" (so GetStatusInfo tells which) and 3 "not an IGD".
 */
static int
igd_status(int r, struct UPNPUrls *urls, struct IGDdatas *data)
{
#if MINIUPNPC_API_VERSION >= 18
	(void)urls;
	(void)data;
	return r >= MK_PM_IGD_NONE && r <= MK_PM_IGD_NOT_IGD ? r :
	    MK_PM_IGD_NONE;
#else
	switch (r) {
	case 1:
		return MK_PM_IGD_CONNECTED;
	case 2:
		return UPNPIGD_IsConnected(urls, data) ? MK_PM_IGD_PRIVATE :
		    MK_PM_IGD_DISCONNECTED;
	case 3:
		return MK_PM_IGD_NOT_IGD;
	default:
		return MK_PM_IGD_NONE;
	}
#endif
}

static int
copy_str(char *dst, size_t n, const char *s)
{
	if (s == NULL || s[0] == '\0' || strlen(s) >= n)
		return -1;
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

int
mk_pm_upnp_igd(const char *desc_url, struct mk_pm_upnp *u, int *igd,
    struct mk_addr *ext, const char **why)
{
	struct UPNPUrls urls;
	struct IGDdatas data;
	struct UPNPDev *dev;
	char lan[64];
	const char *w;
	int r, rc = -1;

	memset(u, 0, sizeof(*u));
	memset(ext, 0, sizeof(*ext));
	memset(&urls, 0, sizeof(urls));
	memset(&data, 0, sizeof(data));
	*igd = MK_PM_IGD_NONE;
	if ((dev = devlist_one(desc_url)) == NULL) {
		*why = "UPnP: out of memory";
		return -1;
	}
#if MINIUPNPC_API_VERSION >= 18
	{
		char wan[64];

		r = UPNP_GetValidIGD(dev, &urls, &data, lan, sizeof(lan),
		    wan, sizeof(wan));
	}
#else
	r = UPNP_GetValidIGD(dev, &urls, &data, lan, sizeof(lan));
#endif
	free(dev);
	*igd = igd_status(r, &urls, &data);
	if (*igd == MK_PM_IGD_NONE)
		*why = "UPnP: no IGD description";
	else if (*igd == MK_PM_IGD_NOT_IGD)
		*why = "UPnP: a device, but not an IGD";
	else if (copy_str(u->control_url, sizeof(u->control_url),
	    urls.controlURL) == -1 || copy_str(u->service, sizeof(u->service),
	    data.first.servicetype) == -1)
		*why = "UPnP: IGD without a usable WAN service";
	else
		rc = 0;
	FreeUPNPUrls(&urls);
	/* An IGD that will not say its address can still map ports. */
	if (rc == 0 && mk_pm_upnp_external(u, ext, &w) == -1)
		memset(ext, 0, sizeof(*ext));
	return rc;
}

int
mk_pm_upnp_external(const struct mk_pm_upnp *u, struct mk_addr *ext,
    const char **why)
{
	char buf[64] = "";
	const char *w;

	memset(ext, 0, sizeof(*ext));
	if (UPNP_GetExternalIPAddress(u->control_url, u->service, buf) != 0) {
		*why = "UPnP: GetExternalIPAddress failed";
		return -1;
	}
	if (mk_addr_parse(ext, buf, 0, MK_ADDR_NO_PORT, &w) == -1 ||
	    mk_addr_family(ext) != AF_INET || mk_addr_is_any(ext) ||
	    ntohl(ext->sin.sin_addr.s_addr) >> 24 == 127) {
		memset(ext, 0, sizeof(*ext));
		*why = "UPnP: no usable external address";
		return -1;
	}
	return 0;
}

static const struct {
	int code;
	const char *why;
} upnp_errors[] = {
	{ UPNPCOMMAND_UNKNOWN_ERROR, "UPnP: unknown error" },
	{ UPNPCOMMAND_INVALID_ARGS, "UPnP: invalid arguments" },
	{ UPNPCOMMAND_HTTP_ERROR, "UPnP: HTTP request failed" },
	{ UPNPCOMMAND_INVALID_RESPONSE, "UPnP: invalid response" },
	{ UPNPCOMMAND_MEM_ALLOC_ERROR, "UPnP: out of memory" },
	{ 402, "UPnP: invalid arguments (402)" },
	{ 501, "UPnP: action failed (501)" },
	{ 606, "UPnP: not authorized (606)" },
	{ 714, "UPnP: no such mapping (714)" },
	{ 715, "UPnP: wildcard not permitted in source IP (715)" },
	{ 716, "UPnP: wildcard not permitted in external port (716)" },
	{ 718, "UPnP: port mapped to another client (718)" },
	{ 724, "UPnP: internal and external ports must match (724)" },
	{ 725, "UPnP: only permanent leases supported (725)" },
	{ 726, "UPnP: remote host must be a wildcard (726)" },
	{ 727, "UPnP: external port must be a wildcard (727)" },
	{ 728, "UPnP: no port mappings available (728)" },
	{ 729, "UPnP: conflict with other mechanisms (729)" },
	{ 732, "UPnP: wildcard not permitted in internal port (732)" },
};

static const char *
upnp_why(int code)
{
	size_t i;

	for (i = 0; i < sizeof(upnp_errors) / sizeof(upnp_errors[0]); i++)
		if (upnp_errors[i].code == code)
			return upnp_errors[i].why;
	return "UPnP: request failed";
}

/* Tailscale's rule: never ask for a port below 1024 (nor 0, a wildcard). */
static uint16_t
random_port(void)
{
	return (uint16_t)(1024 + randombytes_uniform(65536 - 1024));
}

static int
add_once(const struct mk_pm_upnp *u, const char *ip, uint16_t iport,
    uint16_t *port, uint32_t life)
{
	char eport[8], inport[8], lease[16], reserved[16] = "";
	long long got;
	int r;

	snprintf(eport, sizeof(eport), "%u", *port);
	snprintf(inport, sizeof(inport), "%u", iport);
	snprintf(lease, sizeof(lease), "%u", life);
	if (strstr(u->service, ":WANIPConnection:2") == NULL)
		return UPNP_AddPortMapping(u->control_url, u->service, eport,
		    inport, ip, UPNP_DESC, "UDP", NULL, lease);
	/* IGD 2 picks a free port itself and says which. */
	r = UPNP_AddAnyPortMapping(u->control_url, u->service, eport, inport,
	    ip, UPNP_DESC, "UDP", NULL, lease, reserved);
	if (r == 0 && mk_strtonum(reserved, 1, 65535, &got) == 0)
		*port = (uint16_t)got;
	return r;
}

int
mk_pm_upnp_add(const struct mk_pm_upnp *u, const struct mk_addr *internal,
    uint16_t *ext_port, uint32_t lifetime, uint32_t *granted,
    const char **why)
{
	char ip[MK_ADDRSTRLEN];
	uint16_t port = *ext_port < 1024 ? random_port() : *ext_port;
	uint32_t life = lifetime;
	int r = UPNPCOMMAND_UNKNOWN_ERROR, tries;

	mk_addr_fmt_ip(internal, ip, sizeof(ip));
	for (tries = 0; tries < 4; tries++) {
		r = add_once(u, ip, mk_addr_port(internal), &port, life);
		if (r == 0) {
			*ext_port = port;
			*granted = life;
			return 0;
		}
		if ((r == 402 || r == 725) && life != 0)
			life = 0;
		else if (r == 718)
			port = random_port();
		else
			break;
	}
	*why = upnp_why(r);
	return -1;
}

int
mk_pm_upnp_delete(const struct mk_pm_upnp *u, uint16_t ext_port,
    const char **why)
{
	char eport[8];
	int r;

	snprintf(eport, sizeof(eport), "%u", ext_port);
	r = UPNP_DeletePortMapping(u->control_url, u->service, eport, "UDP",
	    NULL);
	/* Already gone is what was asked for. */
	if (r == 0 || r == 714)
		return 0;
	*why = upnp_why(r);
	return -1;
}
