/* SPDX-License-Identifier: MIT */
/*
 * magicdns's file parsers on arbitrary bytes: a hosts(5) file, the name
 * table built from it (every name it holds must be found again, every
 * address must answer a PTR look-up), and resolv.conf.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dnsresolv.h"
#include "dnstab.h"
#include "hosts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mk_hosts h;
	struct mk_dnstab t;
	struct mk_resolv r;
	const char *why;
	char err[256];
	unsigned line;
	size_t i, j;

	mk_resolv_parse(&r, (const char *)data, size);
	if (r.n_ns > MK_RESOLV_MAX_NS || r.n_search > MK_RESOLV_MAX_SEARCH)
		abort();
	if (mk_hosts_parse(&h, (const char *)data, size, "fuzz", err,
	    sizeof(err)) != 0) {
		if (strncmp(err, "fuzz", 4) != 0 || h.n != 0)
			abort();
		return 0;
	}
	mk_dnstab_init(&t, 1);
	if (mk_dnstab_set_domain(&t, "mesh.example", &why) != 0)
		abort();
	if (mk_dnstab_add_hosts(&t, &h, &line, &why) == 0) {
		for (i = 0; i < t.n_recs; i++) {
			const struct mk_dnstab_rec *rec = &t.recs[i];

			if (mk_dnstab_find(&t, rec->name, strlen(rec->name)) !=
			    rec)
				abort();
			for (j = 0; j < rec->n_ip; j++)
				if (mk_dnstab_find_ip(&t, rec->ip[j].family,
				    rec->ip[j].b) == NULL)
					abort();
		}
	}
	mk_dnstab_free(&t);
	mk_hosts_free(&h);
	return 0;
}
