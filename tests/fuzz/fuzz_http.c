/* SPDX-License-Identifier: MIT */
/*
 * HTTP head parsers (the server's upgrade request, the client's 101 and a
 * proxy's CONNECT answer): any input parses or is rejected cleanly; a
 * parsed head lies within the input and ends in a blank line, and every
 * shorter prefix of it asks for more bytes or is refused.
 */
#include <stdint.h>
#include <string.h>

#include "http.h"
#include "url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MUST(c) do { if (!(c)) __builtin_trap(); } while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data, *why;
	struct mk_http_req req;
	struct mk_http_resp resp;
	long n, m;

	why = NULL;
	n = mk_http_parse_request(&req, buf, size, &why);
	MUST(n >= -1 && n <= (long)size);
	MUST(n != -1 || why != NULL);
	if (n > 0) {
		MUST(buf[n - 1] == '\n');
		MUST(req.path[0] == '/');
		MUST(strlen(req.path) < sizeof(req.path));
		m = mk_http_parse_request(&req, buf, (size_t)n - 1, &why);
		MUST(m <= 0);
	}
	why = NULL;
	n = mk_http_parse_response(&resp, buf, size, &why);
	MUST(n >= -1 && n <= (long)size);
	MUST(n != -1 || why != NULL);
	if (n > 0)
		MUST(resp.status >= 0 && resp.status <= 999);

	/* URLs want a C string */
	if (size < 600) {
		char s[600];
		struct mk_url u;

		memcpy(s, data, size);
		s[size] = '\0';
		if (mk_url_parse(&u, s, MK_URL_RELAY, &why) == 0)
			MUST(u.port != 0 && strlen(u.url) > 0);
		if (mk_url_parse(&u, s, MK_URL_PROXY, &why) == 0)
			(void)mk_url_no_proxy(&u, s);
	}
	return 0;
}
