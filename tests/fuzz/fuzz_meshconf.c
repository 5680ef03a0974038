/* SPDX-License-Identifier: MIT */
/*
 * mk_mesh_parse on arbitrary bytes. A file that parses must also answer
 * every look-up for its own nodes; either way mk_mesh_free releases all.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "meshconf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mk_mesh m;
	const struct mk_mesh_node *n;
	char err[256], fqdn[320];
	size_t i, j;

	if (mk_mesh_parse(&m, (const char *)data, size, "fuzz", err,
	    sizeof(err)) == 0) {
		for (i = 0; i < m.n_nodes; i++) {
			n = &m.nodes[i];
			if (mk_mesh_find_key(&m, &n->pubkey) != n ||
			    mk_mesh_find_name(&m, n->name) != n ||
			    mk_mesh_find_name(&m, mk_mesh_node_fqdn(&m, n, fqdn,
			    sizeof(fqdn))) != n)
				abort();
			for (j = 0; j < n->n_addrs; j++)
				if (mk_mesh_find_addr(&m, &n->addrs[j]) != n)
					abort();
		}
		for (i = 0; i < m.n_options; i++)
			if (mk_mesh_option(&m, m.options[i].key) == NULL)
				abort();
	} else if (strncmp(err, "fuzz:", 5) != 0)
		abort();
	mk_mesh_free(&m);
	return 0;
}
