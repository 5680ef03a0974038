/* SPDX-License-Identifier: MIT */
/*
 * Port mapping on the default IPv4 gateway, as Tailscale's portmapper does
 * it: UPnP-IGD (SSDP, then SOAP through miniupnpc), NAT-PMP (RFC 6886,
 * through libnatpmp) and PCP (RFC 6887, lib/pcp.h). All three are probed
 * in parallel; a mapping is asked of one of them and kept alive by
 * renewing at half its lifetime.
 *
 * The mk_pm_probe/map/renew/unmap calls block, each for a bounded time:
 * MK_PM_PROBE_TIMEOUT_US for a probe, MK_PM_REQ_TIMEOUT_US per NAT-PMP or
 * PCP request, MK_PM_SOAP_TIMEOUT_US per UPnP request (miniupnpc runs on
 * a helper thread, given up after that). An event loop must not call
 * them: it starts a struct mk_pm_async, which runs the same call on a
 * helper thread and signals completion through an eventfd that the loop
 * registers like any other descriptor (DESIGN.md section 7). The calls
 * keep no global state: different structs may be worked on at once.
 *
 * Times are mk_now_us() (lib/loop.h), the monotonic clock.
 */
#ifndef MK_PORTMAP_H
#define MK_PORTMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "addr.h"
#include "pcp.h"

/* The services, as bits of mk_pm_probe.found and as "via" values. */
#define MK_PM_UPNP	(1U << 0)
#define MK_PM_NATPMP	(1U << 1)
#define MK_PM_PCP	(1U << 2)
#define MK_PM_ALL	(MK_PM_UPNP | MK_PM_NATPMP | MK_PM_PCP)

/* Bounds, in microseconds: a probe (when timeout_us is 0), one NAT-PMP or
 * PCP request, one UPnP SOAP request. Lifetimes are seconds. */
#define MK_PM_PROBE_TIMEOUT_US	500000ULL
#define MK_PM_REQ_TIMEOUT_US	2000000ULL
#define MK_PM_SOAP_TIMEOUT_US	3000000ULL
#define MK_PM_LIFETIME		7200U	/* when lifetime is 0 */
#define MK_PM_URL_MAX		256

/*
 * What UPNP_GetValidIGD said of the gateway, the same on every miniupnpc
 * (its return values changed with API version 18). Every value from
 * CONNECTED to DISCONNECTED counts as present: a lab router (and a router
 * behind another NAT) has a reserved WAN address, and miniupnpc before
 * API 18 calls that "not connected".
 */
enum mk_pm_igd {
	MK_PM_IGD_NONE = 0,		/* no IGD answered */
	MK_PM_IGD_CONNECTED = 1,	/* connected, public WAN address */
	MK_PM_IGD_PRIVATE = 2,		/* connected, reserved WAN */
	MK_PM_IGD_DISCONNECTED = 3,	/* its WAN connection is down */
	MK_PM_IGD_NOT_IGD = 4,		/* a UPnP device, but no IGD */
};

/* Where a UPnP mapping is asked for: the WAN*Connection service. */
struct mk_pm_upnp {
	char control_url[MK_PM_URL_MAX];
	char service[MK_PM_URL_MAX];
};

struct mk_pm_probe {
	unsigned found;			/* MK_PM_* bits that answered */
	struct mk_addr gateway;		/* port 0 */
	struct mk_addr self;		/* our address towards it, port 0 */
	/* External addresses each service reported (port 0; len 0 if
	 * none). NAT-PMP has a request for it; UPnP has
	 * GetExternalIPAddress; PCP has none, so the probe maps its own
	 * socket's port for the shortest lifetime and deletes it at once. */
	struct mk_addr ext_upnp, ext_natpmp, ext_pcp;
	/* UPnP */
	int upnp_igd_status;		/* enum mk_pm_igd */
	char upnp_desc_url[MK_PM_URL_MAX];
	struct mk_pm_upnp upnp;
	/* NAT-PMP and PCP: epochs (seconds since the server started) and
	 * the last result code seen (-1 for none). */
	uint32_t natpmp_epoch, pcp_epoch;
	int natpmp_result, pcp_result;
	/* Why each probed service is missing (static strings; NULL when it
	 * answered or was not probed): "PCP: no answer", "NAT-PMP: not
	 * authorized", "UPnP: port 1900 closed on the gateway"... */
	const char *why_upnp, *why_natpmp, *why_pcp;
	uint64_t elapsed_us;
};

/*
 * The IPv4 default gateway (from /proc/net/route: the default route with
 * the lowest metric) and the source address the kernel uses towards it.
 * Both with port 0. 0, or -1 with *why ("no IPv4 default route", ...).
 */
int mk_pm_gateway(struct mk_addr *gw, struct mk_addr *self, const char **why);

/* The same from any stream in /proc/net/route's format (for tests). */
int mk_pm_route_parse(FILE *f, struct mk_addr *gw, const char **why);

/*
 * Probe the gateway for the services in which (MK_PM_* bits; 0 for all),
 * all in parallel: NAT-PMP's public-address request and PCP's ANNOUNCE on one
 * UDP socket, SSDP and then UPnP's SOAP on a helper thread. Returns as
 * soon as every service asked for has answered or refused (an ICMP port
 * unreachable counts: then it takes a millisecond), and never later than
 * timeout_us (0: MK_PM_PROBE_TIMEOUT_US); a UPnP lookup still running
 * then is abandoned (its thread ends on its own). Returns 0 with
 * r->found filled (possibly 0), or -1 with *why if it could not probe at
 * all (no default route, no socket).
 */
int mk_pm_probe(struct mk_pm_probe *r, unsigned which, uint64_t timeout_us,
    const char **why);
/* The same against a given gateway (IPv4, port ignored). */
int mk_pm_probe_at(struct mk_pm_probe *r, const struct mk_addr *gw,
    unsigned which, uint64_t timeout_us, const char **why);

/*
 * A mapping. external is the external ip:port (len 0 once deleted);
 * lifetime is what was granted, in seconds (UPnP: as asked, or 0 for a
 * router that only keeps permanent leases); renew_at_us is half of it
 * from the answer, expires_at_us all of it (UINT64_MAX when permanent).
 * epoch_reset: the last renewal saw the server's epoch go back (it
 * restarted and may have lost the mapping, which the renewal made again).
 */
struct mk_pm_mapping {
	unsigned via;			/* MK_PM_UPNP, _NATPMP or _PCP */
	uint8_t protocol;		/* MK_PCP_PROTO_UDP */
	struct mk_addr gateway;		/* port 0 */
	struct mk_addr internal;	/* self:internal_port */
	struct mk_addr external;
	uint32_t requested;		/* lifetime asked for */
	uint32_t lifetime;
	uint32_t epoch;			/* NAT-PMP / PCP server epoch */
	uint64_t renew_at_us;
	uint64_t expires_at_us;
	uint8_t pcp_nonce[MK_PCP_NONCE_LEN];
	struct mk_pm_upnp upnp;
	bool epoch_reset;
};

/*
 * Map UDP internal_port of this host. via is one of MK_PM_UPNP,
 * MK_PM_NATPMP, MK_PM_PCP, or 0 for the first that works in Tailscale's
 * order: NAT-PMP, then PCP, then UPnP. probe, if not NULL, is a recent
 * mk_pm_probe result (services it did not find are skipped; UPnP needs
 * its control URL); with NULL, the services asked for are probed first.
 * lifetime 0 means MK_PM_LIFETIME. Fills *m and returns 0, or -1 with
 * *why ("no port-mapping service", "NAT-PMP: not authorized", ...).
 */
int mk_pm_map(struct mk_pm_mapping *m, const struct mk_pm_probe *probe,
    unsigned via, uint16_t internal_port, uint32_t lifetime, const char **why);

/*
 * Ask again for the same mapping (same service, PCP nonce, the current
 * external port as the suggestion) and update *m. The external address or
 * port may change; compare before and after. 0, or -1 with *why and *m
 * unchanged (the old mapping lives until expires_at_us).
 */
int mk_pm_renew(struct mk_pm_mapping *m, const char **why);

/*
 * Delete the mapping: lifetime 0 for NAT-PMP and PCP (same nonce), the
 * SOAP DeletePortMapping for UPnP. m->external is emptied on success.
 * 0, or -1 with *why.
 */
int mk_pm_unmap(struct mk_pm_mapping *m, const char **why);

/* "UPnP", "NAT-PMP", "PCP" for one bit; "none" otherwise. */
const char *mk_pm_name(unsigned via);
/* "upnp", "natpmp", "pcp" (any case) to a bit. 0, or -1. */
int mk_pm_parse_via(const char *s, unsigned *via);
/* The found bits as "UPnP, NAT-PMP, PCP" (empty for none); returns buf. */
char *mk_pm_list(unsigned found, char *buf, size_t n);

/*
 * Asynchronous use from an event loop. A job names one blocking call and
 * its arguments; mk_pm_async_start copies it and runs the call on a
 * detached helper thread (with every signal blocked, so a loop's signalfd
 * keeps receiving them). When it is done, the descriptor from
 * mk_pm_async_fd becomes readable (EPOLLIN); mk_pm_async_result then
 * copies the finished job out. mk_pm_async_free never blocks: a job still
 * running is abandoned, and its thread frees what it holds when the call
 * returns. Remove the fd from the loop (mk_loop_del) before freeing.
 *
 *	job = (struct mk_pm_job){ .op = MK_PM_OP_MAP, .which = 0,
 *	    .internal_port = 41641 };
 *	a = mk_pm_async_start(&job, &why);
 *	io.fd = mk_pm_async_fd(a); mk_loop_add(l, &io, EPOLLIN);
 *	... in io's callback:
 *	mk_loop_del(l, &io); mk_pm_async_result(a, &job);
 *	mk_pm_async_free(a); use job.rc, job.why, job.mapping
 */
enum mk_pm_op {
	MK_PM_OP_PROBE = 1,	/* mk_pm_probe(&probe, which, timeout_us) */
	MK_PM_OP_MAP,		/* mk_pm_map(&mapping, use_probe ? &probe :
				 * NULL, which, internal_port, lifetime) */
	MK_PM_OP_RENEW,		/* mk_pm_renew(&mapping) */
	MK_PM_OP_UNMAP,		/* mk_pm_unmap(&mapping) */
};

struct mk_pm_job {
	enum mk_pm_op op;
	unsigned which;			/* probe: services; map: via */
	uint16_t internal_port;
	uint32_t lifetime;
	uint64_t timeout_us;
	bool use_probe;
	struct mk_pm_probe probe;	/* probe: out; map: in if use_probe */
	struct mk_pm_mapping mapping;	/* map: out; renew, unmap: both */
	int rc;				/* out: the call's 0 or -1 */
	const char *why;		/* out: its reason when -1 */
};

struct mk_pm_async;

/* NULL with *why if the thread or eventfd cannot be made. */
struct mk_pm_async *mk_pm_async_start(const struct mk_pm_job *job,
    const char **why);
int mk_pm_async_fd(const struct mk_pm_async *a);
/* 1 and *out filled once done (the fd is readable), else 0. */
int mk_pm_async_result(struct mk_pm_async *a, struct mk_pm_job *out);
void mk_pm_async_free(struct mk_pm_async *a);

#endif
