/* SPDX-License-Identifier: MIT */
#include <stddef.h>
#include <stdint.h>

#include "derpmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mk_derpmap m;
	char err[256];
	size_t i;

	if (mk_derpmap_parse(&m, (const char *)data, size, err,
	    sizeof(err)) != 0)
		return 0;
	for (i = 0; i < m.n_regions; i++) {
		if (mk_derpmap_region(&m, m.regions[i].id) == NULL ||
		    m.regions[i].n_nodes == 0)
			__builtin_trap();
	}
	mk_derpmap_free(&m);
	return 0;
}
