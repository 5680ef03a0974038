/* SPDX-License-Identifier: MIT */
/*
 * The UAPI answer parser (what a userspace WireGuard says to get=1) on
 * arbitrary bytes. Whatever parses formats back into a request that parses
 * again to the same peers.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wg_uapi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	struct mk_wg_device dev = { 0 }, again = { 0 };
	const char *why;
	char *req, *get;
	size_t len, i;
	int e;

	if (!init++ && mk_key_init() != 0)
		abort();
	if (mk_wg_uapi_parse((const char *)data, size, &dev, &e, &why) != 0) {
		if (dev.n_peers != 0)
			abort();
		return 0;
	}
	if (mk_wg_uapi_format(&dev, &req, &len) != 0)
		abort();
	if ((get = malloc(len + 16)) == NULL)
		abort();
	memcpy(get, req + 6, len - 7);
	memcpy(get + len - 7, "errno=0\n\n", 9);
	if (mk_wg_uapi_parse(get, len - 7 + 9, &again, &e, &why) != 0 ||
	    again.n_peers != dev.n_peers)
		abort();
	for (i = 0; i < dev.n_peers; i++)
		if (again.peers[i].n_allowedips != dev.peers[i].n_allowedips ||
		    again.peers[i].keepalive != dev.peers[i].keepalive)
			abort();
	free(get);
	free(req);
	mk_wg_device_clear(&again);
	mk_wg_device_clear(&dev);
	return 0;
}
