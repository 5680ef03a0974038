/* SPDX-License-Identifier: MIT */
/*
 * The lib pieces derpcat, natclass, stunq and punch share for mesh.conf
 * and relays: the given-or-default mesh file, the relay set (mesh.conf
 * relay lines and DERP maps as client and STUN targets), the world-
 * accessible key check and proxy URL redaction.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "derpmap.h"
#include "key.h"
#include "meshconf.h"
#include "relayset.h"
#include "url.h"
#include "t.h"

static const char mesh_text[] =
    "domain mesh.test\n"
    "relay https://derp.mesh.test\n"
    "relay http://198.18.0.2:3340\n"
    "relay https://[2001:db8::2]:8443 sha256-raw:"
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";

static const char map_text[] =
    "{\"Regions\":{\"1\":{\"RegionID\":1,\"RegionCode\":\"nyc\","
    "\"RegionName\":\"New York City\",\"Nodes\":[{\"Name\":\"1f\","
    "\"RegionID\":1,\"HostName\":\"derp1f.example\",\"IPv4\":\"192.0.2.4\","
    "\"IPv6\":\"2001:db8::4\"}]},"
    "\"900\":{\"RegionID\":900,\"RegionCode\":\"lab\",\"RegionName\":\"Lab\","
    "\"NoMeasureNoHome\":true,"
    "\"Nodes\":[{\"Name\":\"900s\",\"RegionID\":900,\"HostName\":\"s.example\","
    "\"STUNOnly\":true,\"STUNPort\":3490},"
    "{\"Name\":\"900a\",\"RegionID\":900,\"HostName\":\"198.18.0.20\","
    "\"STUNPort\":-1,\"DERPPort\":8443}]},"
    "\"901\":{\"RegionID\":901,\"RegionCode\":\"nostun\",\"RegionName\":\"N\","
    "\"Nodes\":[{\"Name\":\"901a\",\"RegionID\":901,\"HostName\":\"n.example\","
    "\"IPv4\":\"none\",\"STUNPort\":-1}]}}}";

static void
test_from_mesh(void)
{
	struct mk_mesh m;
	struct mk_relayset s;
	struct mk_derpc_target t[8];
	char err[256];
	const char *why;

	REQUIRE_VOID(mk_mesh_parse(&m, mesh_text, strlen(mesh_text), "t",
	    err, sizeof(err)) == 0);
	REQUIRE_VOID(mk_relayset_from_mesh(&s, &m, &why) == 0);
	REQUIRE_VOID(s.n == 3);
	CHECK(s.v[0].region == 1 && s.v[2].region == 3);
	CHECK_STR(s.v[0].nodes[0].url.url, "https://derp.mesh.test/derp");
	CHECK(s.v[0].nodes[0].url.tls && !s.v[0].nodes[0].has_pin);
	CHECK_STR(s.v[0].stun_host, "derp.mesh.test");
	CHECK(s.v[0].stun_port == 3478 && s.v[0].tcp_port == 443);
	CHECK_STR(s.v[1].nodes[0].url.url, "http://198.18.0.2:3340/derp");
	CHECK(s.v[1].nodes[0].url.numeric && s.v[1].tcp_port == 3340);
	/* an IPv6 host is bracketed for the STUN resolver; the pin kept */
	CHECK_STR(s.v[2].stun_host, "[2001:db8::2]");
	CHECK(s.v[2].nodes[0].has_pin && s.v[2].nodes[0].pin[1] == 0x11);
	CHECK_STR(mk_relay_stun_host(&s.v[2], AF_INET), "[2001:db8::2]");
	CHECK_STR(s.v[1].code, "198.18.0.2");
	CHECK_STR(s.v[1].name, "http://198.18.0.2:3340/derp");
	/* all relays in file order, or one */
	CHECK(mk_relayset_targets(&s, 0, t, 8) == 3);
	CHECK_STR(t[2].url.url, s.v[2].nodes[0].url.url);
	CHECK(mk_relayset_targets(&s, 0, t, 2) == 2);
	CHECK(mk_relayset_targets(&s, 2, t, 8) == 1);
	CHECK_STR(t[0].url.url, "http://198.18.0.2:3340/derp");
	CHECK(mk_relayset_targets(&s, 7, t, 8) == 0);
	mk_relayset_free(&s);
	CHECK(s.v == NULL && s.n == 0);
	mk_mesh_free(&m);
	/* no relay lines: an empty set */
	REQUIRE_VOID(mk_mesh_parse(&m, "domain x\n", 9, "t", err,
	    sizeof(err)) == 0);
	CHECK(mk_relayset_from_mesh(&s, &m, &why) == 0 && s.n == 0);
	mk_relayset_free(&s);
	mk_mesh_free(&m);
}

/* --relay URLs with --pin, then the mesh's relays; bad ones named. */
static void
test_client_targets(void)
{
	static const char pin[] = "sha256-raw:"
	    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
	const char *urls[] = { "https://relay.example", "http://192.0.2.9:80" };
	const char *bad[] = { "ftp://x" };
	struct mk_derpc_target t[8];
	struct mk_mesh m;
	char err[256];
	size_t n;

	REQUIRE_VOID(mk_mesh_parse(&m, mesh_text, strlen(mesh_text), "t",
	    err, sizeof(err)) == 0);
	CHECK(mk_relayset_client_targets(urls, 2, pin, &m, "m.conf", t, 8, &n,
	    err, sizeof(err)) == 0 && n == 5);
	CHECK_STR(t[0].url.url, "https://relay.example/derp");
	CHECK(t[0].has_pin && t[1].has_pin && t[0].pin[1] == 0x11);
	CHECK_STR(t[2].url.url, "https://derp.mesh.test/derp");
	CHECK(!t[2].has_pin && t[4].has_pin);	/* the mesh's own pins */
	/* the cap holds, the given ones first */
	CHECK(mk_relayset_client_targets(urls, 2, NULL, &m, "m.conf", t, 3,
	    &n, err, sizeof(err)) == 0 && n == 3 && !t[0].has_pin);
	CHECK(mk_relayset_client_targets(urls, 2, NULL, NULL, NULL, t, 8, &n,
	    err, sizeof(err)) == 0 && n == 2);
	CHECK(mk_relayset_client_targets(bad, 1, NULL, NULL, NULL, t, 8, &n,
	    err, sizeof(err)) == -1);
	CHECK(strncmp(err, "bad relay URL ftp://x: ", 23) == 0);
	CHECK(mk_relayset_client_targets(urls, 1, "sha256-raw:12", NULL,
	    NULL, t, 8, &n, err, sizeof(err)) == -1);
	CHECK_STR(err, "bad pin: sha256-raw:12");
	mk_mesh_free(&m);
}

static void
test_from_derpmap(void)
{
	struct mk_derpmap dm;
	struct mk_relayset s;
	const struct mk_relay *r;
	struct mk_derpc_target t[8];
	char err[256];
	const char *why;

	REQUIRE_VOID(mk_derpmap_parse(&dm, map_text, strlen(map_text), err,
	    sizeof(err)) == 0);
	REQUIRE_VOID(mk_relayset_from_derpmap(&s, &dm, &why) == 0);
	mk_derpmap_free(&dm);
	REQUIRE_VOID(s.n == 3);
	r = mk_relayset_region(&s, 1);
	REQUIRE_VOID(r != NULL);
	CHECK_STR(r->code, "nyc");
	CHECK_STR(r->name, "New York City");
	CHECK(r->n_nodes == 1 && r->stun_port == 3478 && !r->no_home);
	/* the family picks the map's address field, else the name */
	CHECK_STR(mk_relay_stun_host(r, AF_UNSPEC), "192.0.2.4");
	CHECK_STR(mk_relay_stun_host(r, AF_INET), "192.0.2.4");
	CHECK_STR(mk_relay_stun_host(r, AF_INET6), "2001:db8::4");
	CHECK_STR(r->stun_node, "1f");
	/* STUN from the STUN-only node, DERP from the other */
	r = mk_relayset_region(&s, 900);
	REQUIRE_VOID(r != NULL);
	CHECK(r->no_home);
	CHECK(r->n_nodes == 1);
	CHECK_STR(r->nodes[0].url.url, "https://198.18.0.20:8443/derp");
	CHECK(r->stun_port == 3490);
	CHECK_STR(mk_relay_stun_host(r, AF_INET), "s.example");
	CHECK_STR(r->stun_node, "900s");
	/* no STUN at all */
	r = mk_relayset_region(&s, 901);
	REQUIRE_VOID(r != NULL);
	CHECK(r->stun_port == 0 && mk_relay_stun_host(r, AF_INET) == NULL);
	CHECK(mk_relayset_region(&s, 2) == NULL);
	CHECK(mk_relayset_targets(&s, 900, t, 8) == 1);
	mk_relayset_free(&s);
	CHECK(mk_relayset_load_derpmap(&s, "/nonexistent/map.json", err,
	    sizeof(err)) == -1);
	CHECK(strstr(err, "/nonexistent/map.json") != NULL);
	CHECK(s.v == NULL);
}

static void
test_mesh_given(void)
{
	char dir[] = "/tmp/mk-relayset-XXXXXX", path[300], err[256];
	struct mk_mesh m;
	int fd;

	REQUIRE_VOID(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/mesh.conf", dir);
	/* no default file: nothing, and no error */
	setenv(MK_MESH_ENV, path, 1);
	CHECK(mk_mesh_load_given(&m, NULL, err, sizeof(err)) == 0);
	CHECK(m.n_relays == 0);
	/* a given file that is missing is an error */
	CHECK(mk_mesh_load_given(&m, path, err, sizeof(err)) == -1);
	CHECK(strstr(err, "No such file") != NULL);
	REQUIRE_VOID((fd = open(path, O_WRONLY | O_CREAT, 0600)) >= 0);
	REQUIRE_VOID(write(fd, mesh_text, strlen(mesh_text)) ==
	    (ssize_t)strlen(mesh_text));
	close(fd);
	/* the default when it exists; the given one first */
	CHECK(mk_mesh_load_given(&m, NULL, err, sizeof(err)) == 1);
	CHECK(m.n_relays == 3);
	mk_mesh_free(&m);
	CHECK(mk_mesh_load_given(&m, path, err, sizeof(err)) == 1);
	mk_mesh_free(&m);
	unsetenv(MK_MESH_ENV);
	unlink(path);
	rmdir(dir);
}

static void
test_redact(void)
{
	char b[256];

	CHECK_STR(mk_url_redact("http://u:p%40ss@proxy:3128", b, sizeof(b)),
	    "http://u:***@proxy:3128");
	CHECK_STR(mk_url_redact("http://u@proxy:3128", b, sizeof(b)),
	    "http://u@proxy:3128");
	CHECK_STR(mk_url_redact("proxy:3128", b, sizeof(b)), "proxy:3128");
	CHECK_STR(mk_url_redact("u:pw@proxy:3128", b, sizeof(b)),
	    "u:***@proxy:3128");
	/* an '@' in the password: the last one ends the userinfo */
	CHECK_STR(mk_url_redact("http://u:a@b@[::1]:3128/x", b, sizeof(b)),
	    "http://u:***@[::1]:3128/x");
	/* an '@' past the authority is not userinfo */
	CHECK_STR(mk_url_redact("http://proxy:3128/a:b@c", b, sizeof(b)),
	    "http://proxy:3128/a:b@c");
	CHECK_STR(mk_url_redact("", b, sizeof(b)), "");
}

int
main(void)
{
	test_from_mesh();
	test_client_targets();
	test_from_derpmap();
	test_mesh_given();
	test_redact();
	return t_done("relayset");
}
