/* SPDX-License-Identifier: MIT */
/*
 * Inside the port-mapping module (lib/portmap*.c): UPnP
 * through miniupnpc, and the SSDP codec. Programs use lib/portmap.h; unit
 * tests and the fuzz target use this too.
 */
#ifndef MK_PORTMAP_INT_H
#define MK_PORTMAP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "portmap.h"
#include "task.h"


/* SSDP (UPnP Device Architecture 1.1 section 1.3) */
#define MK_SSDP_PORT	1900
#define MK_SSDP_GROUP	"239.255.255.250"
#define MK_SSDP_ST_IGD \
	"urn:schemas-upnp-org:device:InternetGatewayDevice:1"

struct mk_ssdp_reply {
	char location[MK_PM_URL_MAX];
	char st[MK_PM_URL_MAX];
	char server[128];		/* truncated if longer */
};

/*
 * Parse an M-SEARCH answer: "HTTP/1.x 200" then header lines up to an
 * empty line (or the end), names in any case. LOCATION and ST must be
 * present and fit. 0, or -1 with *why.
 */
int mk_ssdp_parse(struct mk_ssdp_reply *r, const char *p, size_t len,
    const char **why);
/* The reply is from an Internet Gateway Device or its WAN service. */
bool mk_ssdp_is_igd(const struct mk_ssdp_reply *r);
/*
 * "http://HOST[:PORT]/PATH" with HOST replaced by the gateway's address:
 * routers have been seen announcing a LOCATION with a wrong address
 * (Tailscale #5502), and the description must come from the gateway we
 * probe, not from wherever a reply points. 0, or -1 with *why.
 */
int mk_ssdp_location(char *out, size_t n, const char *loc,
    const struct mk_addr *gw, const char **why);

/*
 * Find the gateway's IGD: M-SEARCH to the gateway (unicast) and to the
 * SSDP group from self, resent every 250 ms, until an IGD reply from the
 * gateway's address or deadline_us. desc_url gets its rewritten LOCATION.
 * 0, or -1 with *why.
 */
int mk_pm_upnp_discover(const struct mk_addr *gw, const struct mk_addr *self,
    uint64_t deadline_us, char *desc_url, size_t n, const char **why);
/*
 * Fetch and judge the description through UPNP_GetValidIGD: *igd gets an
 * enum mk_pm_igd, *u the WAN service, *ext the external IPv4 address (len
 * 0 if the IGD gives none or 0.0.0.0). 0 if it is a usable IGD (CONNECTED
 * to DISCONNECTED), else -1 with *why.
 */
int mk_pm_upnp_igd(const char *desc_url, struct mk_pm_upnp *u, int *igd,
    struct mk_addr *ext, const char **why);
int mk_pm_upnp_external(const struct mk_pm_upnp *u, struct mk_addr *ext,
    const char **why);
/*
 * AddPortMapping (AddAnyPortMapping on WANIPConnection:2) of UDP
 * *ext_port to internal. On a conflict another random port is tried; a
 * router that only takes permanent leases gets lifetime 0, which
 * *granted reports. *ext_port is the port the router uses. 0, or -1.
 */
int mk_pm_upnp_add(const struct mk_pm_upnp *u, const struct mk_addr *internal,
    uint16_t *ext_port, uint32_t lifetime, uint32_t *granted,
    const char **why);
int mk_pm_upnp_delete(const struct mk_pm_upnp *u, uint16_t ext_port,
    const char **why);

#endif
