/* SPDX-License-Identifier: MIT */
/*
 * The HTTP pieces of DERP: the exact 101 derper writes (protocols.md 1.1),
 * the upgrade request, request and response heads as they arrive in
 * pieces, limits, and the relay and proxy URLs.
 */
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "key.h"
#include "url.h"
#include "util.h"
#include "t.h"

static void
test_101_exact(void)
{
	struct mk_key b, bpub;
	struct mk_http_resp r;
	char out[512];
	const char *want =
	    "HTTP/1.1 101 Switching Protocols\r\n"
	    "Upgrade: DERP\r\n"
	    "Connection: Upgrade\r\n"
	    "Derp-Version: 2\r\n"
	    "Derp-Public-Key: "
	    "0faa684ed28867b97f4a6a2dee5df8ce974e76b7018e3f22a1c4cf2678570f20\r\n"
	    "\r\n";
	const char *why = NULL;
	size_t n;

	memset(b.b, 0x22, 32);
	mk_key_public(&bpub, &b);
	n = mk_http_101(out, sizeof(out), &bpub);
	CHECK(n == strlen(want));
	CHECK(n == 172);
	CHECK(memcmp(out, want, n) == 0);

	CHECK(mk_http_parse_response(&r, out, n, &why) == (long)n);
	CHECK(r.status == 101 && r.minor == 1);
	CHECK_STR(r.reason, "Switching Protocols");
	CHECK_STR(r.upgrade, "derp");
	CHECK(r.derp_version == 2);
	CHECK(r.has_server_key && memcmp(r.server_key, bpub.b, 32) == 0);
	CHECK(mk_http_101(out, 172, &bpub) == 0);	/* no room for NUL */
}

static void
test_upgrade_request(void)
{
	struct mk_http_req r;
	char out[512];
	const char *why = NULL;
	size_t n, i;

	n = mk_http_upgrade_request(out, sizeof(out), "derp.example:8443",
	    false);
	CHECK(n > 0);
	CHECK(strncmp(out, "GET /derp HTTP/1.1\r\nHost: derp.example:8443\r\n",
	    45) == 0);
	CHECK(strstr(out, "\r\nUpgrade: DERP\r\n") != NULL);
	CHECK(strstr(out, "\r\nConnection: Upgrade\r\n") != NULL);
	CHECK(strstr(out, "Derp-Fast-Start") == NULL);
	/* every prefix is "need more"; the whole parses */
	for (i = 0; i < n; i++)
		CHECK(mk_http_parse_request(&r, out, i, &why) == 0);
	CHECK(mk_http_parse_request(&r, out, n, &why) == (long)n);
	CHECK_STR(r.method, "GET");
	CHECK_STR(r.path, "/derp");
	CHECK_STR(r.host, "derp.example:8443");
	CHECK_STR(r.upgrade, "derp");
	CHECK(r.conn_upgrade && !r.fast_start);

	n = mk_http_upgrade_request(out, sizeof(out), "h", true);
	CHECK(strstr(out, "\r\nDerp-Fast-Start: 1\r\n") != NULL);
	/* frames after the head stay for the DERP reader */
	memcpy(out + n, "\x02\x00", 2);
	CHECK(mk_http_parse_request(&r, out, n + 2, &why) == (long)n);
	CHECK(r.fast_start);
	CHECK(mk_http_upgrade_request(out, sizeof(out), "a\r\nX: y", false)
	    == 0);
	CHECK(mk_http_upgrade_request(out, 10, "h", false) == 0);
}

static void
test_request_fields(void)
{
	struct mk_http_req r;
	const char *why = NULL;
	const char *s;

	s = "GET /generate_204?x=1 HTTP/1.0\n"
	    "X-Tailscale-Challenge:  abc.DEF_1:2-3 \n"
	    "connection: keep-alive, UPGRADE\n"
	    "UPGRADE: WebSocket\n"
	    "Ideal-Node: 1f\n\n";
	CHECK(mk_http_parse_request(&r, s, strlen(s), &why) ==
	    (long)strlen(s));
	CHECK_STR(r.path, "/generate_204");
	CHECK(r.minor == 0);
	CHECK(r.has_challenge);
	CHECK_STR(r.challenge, "abc.DEF_1:2-3");
	CHECK(r.conn_upgrade);
	CHECK_STR(r.upgrade, "websocket");
	CHECK_STR(r.ideal_node, "1f");

	s = "GET / HTTP/1.1\r\nX-Tailscale-Challenge: a b\r\n\r\n";
	CHECK(mk_http_parse_request(&r, s, strlen(s), &why) > 0);
	CHECK(!r.has_challenge);

	s = "GET http://relay.example/derp/probe HTTP/1.1\r\n\r\n";
	CHECK(mk_http_parse_request(&r, s, strlen(s), &why) > 0);
	CHECK_STR(r.path, "/derp/probe");
}

static void
test_bad_requests(void)
{
	static const char *const bad[] = {
		"\r\n\r\n",
		"GET\r\n\r\n",
		"GET /derp\r\n\r\n",
		"GET /derp HTTP/2.0\r\n\r\n",
		"GET derp HTTP/1.1\r\n\r\n",
		"G(T /derp HTTP/1.1\r\n\r\n",
		"GET /derp HTTP/1.1\r\nNoColon\r\n\r\n",
		"GET /derp HTTP/1.1\r\n : v\r\n\r\n",
		"GET /derp HTTP/1.1\r\nBad Name: v\r\n\r\n",
		"GET /derp HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
		"GET /d\x01rp HTTP/1.1\r\n\r\n",
	};
	struct mk_http_req r;
	const char *why;
	char *big;
	size_t i, n;

	for (i = 0; i < MK_ARRAY_LEN(bad); i++) {
		why = NULL;
		CHECK(mk_http_parse_request(&r, bad[i], strlen(bad[i]), &why)
		    == -1);
		CHECK(why != NULL);
	}
	/* an endless head is refused at the limit, not buffered forever */
	big = malloc(MK_HTTP_MAX_HEAD + 10);
	REQUIRE_VOID(big != NULL);
	n = (size_t)snprintf(big, MK_HTTP_MAX_HEAD, "GET / HTTP/1.1\r\n");
	memset(big + n, 'a', MK_HTTP_MAX_HEAD + 10 - n);
	CHECK(mk_http_parse_request(&r, big, MK_HTTP_MAX_HEAD - 1, &why) == 0);
	CHECK(mk_http_parse_request(&r, big, MK_HTTP_MAX_HEAD, &why) == -1);
	CHECK(mk_http_parse_request(&r, big, MK_HTTP_MAX_HEAD + 10, &why) ==
	    -1);
	/* too many fields */
	n = (size_t)snprintf(big, MK_HTTP_MAX_HEAD, "GET / HTTP/1.1\r\n");
	for (i = 0; i < MK_HTTP_MAX_FIELDS + 1; i++)
		n += (size_t)snprintf(big + n, MK_HTTP_MAX_HEAD - n, "A: b\r\n");
	n += (size_t)snprintf(big + n, MK_HTTP_MAX_HEAD - n, "\r\n");
	CHECK(mk_http_parse_request(&r, big, n, &why) == -1);
	free(big);
}

static void
test_responses(void)
{
	struct mk_http_resp r;
	char out[512];
	const char *why = NULL;
	const char *s;
	size_t n;

	s = "HTTP/1.1 200 Connection established\r\n\r\n";
	CHECK(mk_http_parse_response(&r, s, strlen(s), &why) ==
	    (long)strlen(s));
	CHECK(r.status == 200);
	s = "HTTP/1.0 407 Proxy Authentication Required\r\nX: y\r\n\r\nbody";
	CHECK(mk_http_parse_response(&r, s, strlen(s), &why) ==
	    (long)strlen(s) - 4);
	CHECK(r.status == 407 && r.minor == 0);
	s = "HTTP/1.1 204\r\n\r\n";
	CHECK(mk_http_parse_response(&r, s, strlen(s), &why) > 0);
	CHECK(r.status == 204 && r.reason[0] == '\0');
	s = "HTTP/1.1 20x OK\r\n\r\n";
	CHECK(mk_http_parse_response(&r, s, strlen(s), &why) == -1);
	s = "SSH-2.0-OpenSSH\r\n\r\n";
	CHECK(mk_http_parse_response(&r, s, strlen(s), &why) == -1);
	s = "HTTP/1.1 101 Switching Protocols\r\nDerp-Public-Key: zz\r\n\r\n";
	CHECK(mk_http_parse_response(&r, s, strlen(s), &why) > 0);
	CHECK(!r.has_server_key);

	n = mk_http_response(out, sizeof(out), 204,
	    "Cache-Control: no-cache\r\n", NULL, false);
	CHECK(n > 0);
	CHECK_STR(out, "HTTP/1.1 204 No Content\r\nCache-Control: no-cache\r\n"
	    "Content-Length: 0\r\nConnection: close\r\n\r\n");
	n = mk_http_response(out, sizeof(out), 426, NULL,
	    "DERP requires connection upgrade", true);
	CHECK(strstr(out, "Content-Length: 32\r\n") != NULL);
	CHECK(out[n - 1] == '\n');

	n = mk_http_connect_request(out, sizeof(out), "198.18.0.20:443",
	    "user:pass");
	CHECK(n > 0);
	CHECK_STR(out, "CONNECT 198.18.0.20:443 HTTP/1.1\r\n"
	    "Host: 198.18.0.20:443\r\n"
	    "Proxy-Authorization: Basic dXNlcjpwYXNz\r\n\r\n");
	n = mk_http_connect_request(out, sizeof(out), "[::1]:443", NULL);
	CHECK_STR(out, "CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n");
}

static void
test_urls(void)
{
	struct mk_url u;
	char hp[300];
	const char *why = NULL;

	CHECK(mk_url_parse(&u, "https://Derp.Example", MK_URL_RELAY, &why)
	    == 0);
	CHECK(u.tls && u.port == 443 && !u.numeric);
	CHECK_STR(u.host, "derp.example");
	CHECK_STR(u.authority, "derp.example");
	CHECK_STR(u.url, "https://derp.example/derp");
	mk_url_hostport(&u, hp, sizeof(hp));
	CHECK_STR(hp, "derp.example:443");

	CHECK(mk_url_parse(&u, "http://127.0.0.1:3340/derp", MK_URL_RELAY,
	    &why) == 0);
	CHECK(!u.tls && u.port == 3340 && u.numeric);
	CHECK_STR(u.authority, "127.0.0.1:3340");
	CHECK_STR(u.url, "http://127.0.0.1:3340/derp");

	CHECK(mk_url_parse(&u, "https://[2001:db8::20]:8443/", MK_URL_RELAY,
	    &why) == 0);
	CHECK_STR(u.authority, "[2001:db8::20]:8443");
	CHECK(mk_addr_port(&u.addr) == 8443);

	CHECK(mk_url_parse(&u, "http://host", MK_URL_RELAY, &why) == -1);
	CHECK_STR(why, "plain http needs a port");
	CHECK(mk_url_parse(&u, "ftp://host", MK_URL_RELAY, &why) == -1);
	CHECK(mk_url_parse(&u, "https://host/other", MK_URL_RELAY, &why) ==
	    -1);
	CHECK(mk_url_parse(&u, "https://2001:db8::1", MK_URL_RELAY, &why) ==
	    -1);
	CHECK(mk_url_parse(&u, "https://[1.2.3.4]", MK_URL_RELAY, &why) ==
	    -1);
	CHECK(mk_url_parse(&u, "https://h:0", MK_URL_RELAY, &why) == -1);
	CHECK(mk_url_parse(&u, "https://h:65536", MK_URL_RELAY, &why) == -1);
	CHECK(mk_url_parse(&u, "https://u@h", MK_URL_RELAY, &why) == -1);
	CHECK(mk_url_parse(&u, "https://0.0.0.0", MK_URL_RELAY, &why) == -1);
	CHECK(mk_url_parse(&u, "https://", MK_URL_RELAY, &why) == -1);
	CHECK(mk_url_parse(&u, "https://a..b", MK_URL_RELAY, &why) == -1);

	CHECK(mk_url_parse(&u, "http://us%3Aer:p%40ss@10.6.0.1:8888",
	    MK_URL_PROXY, &why) == 0);
	CHECK_STR(u.userinfo, "us:er:p@ss");
	CHECK(u.port == 8888);
	CHECK(mk_url_parse(&u, "proxy.example:3128", MK_URL_PROXY, &why) == 0);
	CHECK(!u.tls && u.port == 3128);
	CHECK(mk_url_parse(&u, "http://proxy.example", MK_URL_PROXY, &why)
	    == 0 && u.port == 80);
	CHECK(mk_url_parse(&u, "socks5://p:1", MK_URL_PROXY, &why) == -1);
	CHECK(mk_url_parse(&u, "http://a%zz@p:1", MK_URL_PROXY, &why) == -1);
	CHECK(mk_url_parse(&u, "http://a%4@p:1", MK_URL_PROXY, &why) == -1);

	CHECK(mk_url_parse(&u, "https://derp.example.com", MK_URL_RELAY,
	    &why) == 0);
	CHECK(!mk_url_no_proxy(&u, NULL));
	CHECK(!mk_url_no_proxy(&u, ""));
	CHECK(mk_url_no_proxy(&u, "*"));
	CHECK(mk_url_no_proxy(&u, "other, .example.com"));
	CHECK(mk_url_no_proxy(&u, "example.com"));
	CHECK(mk_url_no_proxy(&u, "derp.example.com:443"));
	CHECK(!mk_url_no_proxy(&u, "derp.example.com:8443"));
	CHECK(!mk_url_no_proxy(&u, "ample.com"));
	CHECK(mk_url_parse(&u, "http://127.0.0.1:1", MK_URL_RELAY, &why) == 0);
	CHECK(mk_url_no_proxy(&u, NULL));
	CHECK(mk_url_parse(&u, "https://198.18.0.20", MK_URL_RELAY, &why)
	    == 0);
	CHECK(!mk_url_no_proxy(&u, "198.18.0.2"));
	CHECK(mk_url_no_proxy(&u, "10.0.0.1,198.18.0.20"));
}

int
main(void)
{
	if (mk_key_init() != 0)
		return 1;
	test_101_exact();
	test_upgrade_request();
	test_request_fields();
	test_bad_requests();
	test_responses();
	test_urls();
	return t_done("http");
}
