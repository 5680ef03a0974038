/* SPDX-License-Identifier: MIT */
/*
 * One model of a WireGuard device, two backends behind it: the Linux
 * kernel through generic netlink (wg_netlink.c) and a userspace
 * implementation such as wireguard-go through its UAPI socket
 * (wg_uapi.c). Callers build or read a struct mk_wg_device and never see
 * which backend answered. Presence flags say which fields mean something,
 * as in wireguard-tools' struct wgdevice: a set applies only what is
 * flagged; a get flags what the device reported.
 */
#ifndef MK_WGDEV_H
#define MK_WGDEV_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "addr.h"
#include "key.h"

#define MK_WG_IFNAMSIZ		16	/* IFNAMSIZ: 15 characters and NUL */
#define MK_WG_SOCK_DIR		"/var/run/wireguard"
#define MK_WG_DEFAULT_IMPL	"wireguard-go"

/* An allowed IP: a prefix; ip holds 4 or 16 bytes by family. */
struct mk_wg_allowedip {
	uint16_t	family;		/* AF_INET or AF_INET6 */
	uint8_t		cidr;
	union {
		struct in_addr	ip4;
		struct in6_addr	ip6;
		uint8_t		b[16];
	} ip;
};

/* Peer flags. The first three are the kernel's WGPEER_F_ bits. */
#define MK_WG_PEER_REMOVE_ME		(1U << 0)
#define MK_WG_PEER_REPLACE_ALLOWEDIPS	(1U << 1)
#define MK_WG_PEER_UPDATE_ONLY		(1U << 2)
#define MK_WG_PEER_HAS_PRESHARED_KEY	(1U << 8)
#define MK_WG_PEER_HAS_ENDPOINT		(1U << 9)
#define MK_WG_PEER_HAS_KEEPALIVE	(1U << 10)

struct mk_wg_peer {
	unsigned		 flags;
	struct mk_key		 public_key;
	struct mk_key		 preshared_key;
	struct mk_addr		 endpoint;
	uint16_t		 keepalive;	/* seconds, 0 = off */
	/* read-only, filled by a get */
	int64_t			 last_handshake_sec;
	int64_t			 last_handshake_nsec;
	uint64_t		 rx_bytes;
	uint64_t		 tx_bytes;
	struct mk_wg_allowedip	*allowedips;
	size_t			 n_allowedips;
	size_t			 cap_allowedips;
};

/* Device flags. */
#define MK_WG_DEV_REPLACE_PEERS		(1U << 0)
#define MK_WG_DEV_HAS_PRIVATE_KEY	(1U << 1)
#define MK_WG_DEV_HAS_PUBLIC_KEY	(1U << 2)
#define MK_WG_DEV_HAS_LISTEN_PORT	(1U << 3)
#define MK_WG_DEV_HAS_FWMARK		(1U << 4)

/*
 * Zero-initialisable; owned by the caller and released with
 * mk_wg_device_clear. Peers keep the order they were added or reported.
 */
struct mk_wg_device {
	char			 name[MK_WG_IFNAMSIZ];
	uint32_t		 ifindex;	/* filled by a kernel get */
	unsigned		 flags;
	struct mk_key		 private_key;
	struct mk_key		 public_key;
	uint16_t		 listen_port;
	uint32_t		 fwmark;
	struct mk_wg_peer	*peers;
	size_t			 n_peers;
	size_t			 cap_peers;
	bool			 sorted;	/* peers sorted by public key */
};

/* ---- the model ---- */

/* Free the peers and wipe the keys; dev is left zeroed. NULL-safe. */
void mk_wg_device_clear(struct mk_wg_device *dev);

/*
 * Append a peer with this public key (flags and the rest zero). The
 * returned pointer is valid until the next append. NULL with ENOMEM.
 */
struct mk_wg_peer *mk_wg_device_add_peer(struct mk_wg_device *dev,
    const struct mk_key *pub);
/* Sort the peers by public key so mk_wg_device_find_peer is a bsearch. */
void mk_wg_device_sort(struct mk_wg_device *dev);
/* The peer with this public key, or NULL. Linear unless sorted. */
struct mk_wg_peer *mk_wg_device_find_peer(const struct mk_wg_device *dev,
    const struct mk_key *pub);

/* Append an allowed IP to a peer. 0, or -1 with ENOMEM. */
int mk_wg_peer_add_allowedip(struct mk_wg_peer *p,
    const struct mk_wg_allowedip *a);

/*
 * Parse "ip/cidr" or "ip" (a whole-address prefix). Host bits past the
 * prefix are kept, as wg keeps them. 0, or -1 with *why.
 */
int mk_wg_allowedip_parse(struct mk_wg_allowedip *a, const char *s,
    const char **why);
/* "10.0.0.0/24"; returns buf (INET6_ADDRSTRLEN + 4 bytes is enough). */
char *mk_wg_allowedip_fmt(const struct mk_wg_allowedip *a, char *buf,
    size_t n);
/* Clear the host bits past cidr. */
void mk_wg_allowedip_mask(struct mk_wg_allowedip *a);
/* Same family, cidr and address bytes. */
bool mk_wg_allowedip_equal(const struct mk_wg_allowedip *a,
    const struct mk_wg_allowedip *b);

/* 1..15 characters of [A-Za-z0-9_=+.-], as wg-quick accepts. */
bool mk_wg_ifname_valid(const char *name);

/* ---- control: one open channel to an existing interface ---- */

enum mk_wg_backend {
	MK_WG_AUTO = 0,
	MK_WG_KERNEL,
	MK_WG_USERSPACE,
};

struct mk_wg;	/* opaque: a UAPI connection or a generic netlink socket */

/*
 * Open the control channel of interface name: the UAPI socket when a
 * userspace implementation serves one, else the kernel. -1 with errno
 * (ENODEV: no such WireGuard interface) and *why.
 */
int mk_wg_open(struct mk_wg **out, const char *name, const char **why);
enum mk_wg_backend mk_wg_backend_of(const struct mk_wg *h);
/* Read the whole device into dev (cleared first). 0 or -1 with errno and *why. */
int mk_wg_get(struct mk_wg *h, struct mk_wg_device *dev, const char **why);
/*
 * Apply what dev flags; dev->name is ignored (the handle names the
 * interface). Large peer sets are split into several requests, each
 * acknowledged. 0 or -1 with errno and *why.
 */
int mk_wg_set(struct mk_wg *h, const struct mk_wg_device *dev,
    const char **why);
/* Requests the last mk_wg_set took: netlink messages, or 1 for UAPI. */
unsigned mk_wg_messages(const struct mk_wg *h);
void mk_wg_close(struct mk_wg *h);

/* One-shot forms. */
int mk_wg_get_device(const char *name, struct mk_wg_device *dev,
    const char **why);
int mk_wg_set_device(const char *name, const struct mk_wg_device *dev,
    const char **why);

/* ---- interfaces: create, destroy, list ---- */

struct mk_wg_create_opts {
	enum mk_wg_backend	 backend;	/* AUTO: kernel, else userspace */
	const char		*impl;		/* NULL: "wireguard-go" */
	int			 timeout_ms;	/* for the UAPI socket; 0: 5000 */
};

/*
 * Create interface name (it must not exist). The kernel link is made with
 * RTM_NEWLINK kind "wireguard"; when the kernel has no WireGuard (or
 * userspace is asked for), impl is started as "impl -f name" in its own
 * session with WG_PROCESS_FOREGROUND=1, and this waits until its UAPI
 * socket answers and its TUN exists. *used says which backend; *pid is the
 * userspace process (0 for the kernel). On failure nothing is left behind,
 * err holds a one-line reason (with the child's last words if it died) and
 * errno is set. The child is not reaped: it outlives the caller.
 */
int mk_wg_create(const char *name, const struct mk_wg_create_opts *o,
    enum mk_wg_backend *used, pid_t *pid, char *err, size_t errlen);

/*
 * Remove interface name: the kernel link, or a userspace implementation's
 * TUN, process and socket. Waits (timeout_ms, 0: 5000) until the process
 * is gone, then signals it. -1 with errno ENODEV when there is no such
 * WireGuard interface.
 */
int mk_wg_destroy(const char *name, int timeout_ms, const char **why);

/* Whether name is a WireGuard interface (kernel in this namespace, or a
 * live UAPI socket). */
bool mk_wg_exists(const char *name);

/*
 * Names of all WireGuard interfaces (kernel links of this namespace and
 * live UAPI sockets), sorted, without duplicates. *names is one
 * allocation of n pointers and their strings; free(*names). 0 or -1.
 */
int mk_wg_list(char ***names, size_t *n);

#endif
