/* SPDX-License-Identifier: MIT */
/*
 * The generic netlink reply parser (WG_CMD_GET_DEVICE dumps) on arbitrary
 * bytes, fed as two receive buffers split where the first byte says, the
 * way a dump arrives. Whatever it keeps must be well formed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "wg_netlink.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(const struct mk_wg_device *dev)
{
	const struct mk_wg_allowedip *a;
	size_t i, j;

	if (strlen(dev->name) >= sizeof(dev->name))
		abort();
	for (i = 0; i < dev->n_peers; i++) {
		for (j = 0; j < dev->peers[i].n_allowedips; j++) {
			a = &dev->peers[i].allowedips[j];
			if (!(a->family == AF_INET && a->cidr <= 32) &&
			    !(a->family == AF_INET6 && a->cidr <= 128))
				abort();
		}
		/* coalescing: neighbours never share a key */
		if (i > 0 && mk_key_equal(&dev->peers[i - 1].public_key,
		    &dev->peers[i].public_key))
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mk_wg_device dev = { 0 };
	uint8_t *copy;
	size_t cut;
	int ret;

	if (size < 1)
		return 0;
	/* libmnl reads headers in place: give it aligned copies. */
	cut = data[0] * 4U;
	data++;
	size--;
	if (cut > size)
		cut = size;
	if ((copy = malloc(size + 1)) == NULL)
		abort();
	memcpy(copy, data, cut);
	ret = mk_wg_nl_parse(copy, cut, 0, 0, &dev);
	if (ret == 1 && size > cut) {
		memcpy(copy, data + cut, size - cut);
		ret = mk_wg_nl_parse(copy, size - cut, 0, 0, &dev);
	}
	(void)ret;
	check(&dev);
	mk_wg_device_clear(&dev);
	free(copy);
	return 0;
}
