/* SPDX-License-Identifier: MIT */
/*
 * mk_wgconf_parse on arbitrary bytes (no name look-ups). A file that
 * parses must give a device the UAPI formatter can write and the UAPI
 * parser read back; an error must name the file; free releases all.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wg_uapi.h"
#include "wgconf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	struct mk_wgconf c;
	struct mk_wg_device back = { 0 };
	const char *why;
	char err[512], *req;
	size_t len, i;
	int e;

	if (!init++ && mk_key_init() != 0)
		abort();
	if (mk_wgconf_parse(&c, (const char *)data, size, "fuzz", 0, err,
	    sizeof(err)) != 0) {
		if (strncmp(err, "fuzz:", 5) != 0 || c.dev.n_peers != 0)
			abort();
		mk_wgconf_free(&c);
		return 0;
	}
	if (c.mtu != 0 && (c.mtu < 68 || c.mtu > 65535))
		abort();
	if (mk_wg_uapi_format(&c.dev, &req, &len) != 0)
		abort();
	/* "set=1\n" off the front, "errno=0\n\n" for the closing line */
	if (len < 7 || strlen(req) != len || req[len - 1] != '\n')
		abort();
	req[len - 1] = '\0';
	{
		size_t n = len - 6 - 1;
		char *get = malloc(n + 10);

		if (get == NULL)
			abort();
		memcpy(get, req + 6, n);
		memcpy(get + n, "errno=0\n\n", 9);
		/* remove=true, update_only and replace lines are set-only
		 * keys the get parser skips as unknown. */
		if (mk_wg_uapi_parse(get, n + 9, &back, &e, &why) != 0 ||
		    back.n_peers != c.dev.n_peers)
			abort();
		for (i = 0; i < back.n_peers; i++)
			if (!mk_key_equal(&back.peers[i].public_key,
			    &c.dev.peers[i].public_key) ||
			    back.peers[i].n_allowedips !=
			    c.dev.peers[i].n_allowedips)
				abort();
		free(get);
	}
	free(req);
	mk_wg_device_clear(&back);
	mk_wgconf_free(&c);
	return 0;
}
