/* SPDX-License-Identifier: MIT */
/*
 * The cross-platform WireGuard UAPI (wireguard.com/xplatform) that
 * wireguard-go serves on MK_WG_SOCK_DIR/NAME.sock: "key=value" lines, keys
 * in lowercase hex, a request ended by an empty line, the answer ended by
 * "errno=N" and an empty line. Used through wgdev.h; the pure parser and
 * formatter are here for tests and the fuzzer.
 */
#ifndef MK_WG_UAPI_H
#define MK_WG_UAPI_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "wgdev.h"

struct mk_wg_uapi;

/* Connect to name's socket. -1/errno: ENOENT or ECONNREFUSED (stale)
 * when no implementation serves it. */
int mk_wg_uapi_open(struct mk_wg_uapi **out, const char *name);
void mk_wg_uapi_close(struct mk_wg_uapi *u);
/* The serving process (SO_PEERCRED), or -1. */
pid_t mk_wg_uapi_pid(const struct mk_wg_uapi *u);
int mk_wg_uapi_get(struct mk_wg_uapi *u, struct mk_wg_device *dev,
    const char **why);
int mk_wg_uapi_set(struct mk_wg_uapi *u, const struct mk_wg_device *dev,
    const char **why);

/* Whether a live implementation answers on name's socket. */
bool mk_wg_uapi_exists(const char *name);
/* "MK_WG_SOCK_DIR/name.sock" into buf; -1 (ENAMETOOLONG) if it won't fit. */
int mk_wg_uapi_path(char *buf, size_t n, const char *name);

/*
 * Parse the answer to "get=1" (len bytes, everything up to and including
 * the final empty line or not). dev is cleared first; *err_no gets the
 * errno line's value (negated when negative, as wireguard-go sends it).
 * 0, or -1 with *why (EPROTO for a malformed answer, ENOMEM).
 */
int mk_wg_uapi_parse(const char *buf, size_t len, struct mk_wg_device *dev,
    int *err_no, const char **why);

/* The "set=1" request for dev, ended by the empty line; *out malloc'd. */
int mk_wg_uapi_format(const struct mk_wg_device *dev, char **out,
    size_t *len);

#endif
