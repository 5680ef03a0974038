/* SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "derpmap.h"
#include "t.h"

/* The live shape quoted in protocols.md §2, plus a user region with a pin
 * and a deleted region. */
static const char good[] =
    "{\"Regions\":{\"1\":{\"RegionID\":1,\"RegionCode\":\"nyc\","
    "\"RegionName\":\"New York City\",\"Latitude\":40.7128,"
    "\"Longitude\":-74.006,\"Nodes\":[{\"Name\":\"1f\",\"RegionID\":1,"
    "\"HostName\":\"derp1f.tailscale.com\",\"IPv4\":\"199.38.181.104\","
    "\"IPv6\":\"2607:f740:f::bc\",\"CanPort80\":true}]},"
    "\"900\":{\"RegionID\":900,\"RegionCode\":\"lab\",\"RegionName\":\"Lab\","
    "\"Nodes\":[{\"Name\":\"900a\",\"RegionID\":900,\"HostName\":\"198.18.0.20\","
    "\"CertName\":\"sha256-raw:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\",\"STUNPort\":3490,\"DERPPort\":8443},"
    "{\"Name\":\"900b\",\"RegionID\":900,\"HostName\":\"x\",\"STUNPort\":-1,"
    "\"STUNOnly\":true}]},"
    "\"2\":null},\"omitDefaultRegions\":true}";

static void
expect_error(const char *json, const char *want)
{
	struct mk_derpmap m;
	char err[256] = "";

	CHECK(mk_derpmap_parse(&m, json, strlen(json), err, sizeof(err)) == -1);
	if (strstr(err, want) == NULL) {
		t_failures++;
		fprintf(stderr, "error \"%s\" lacks \"%s\"\n", err, want);
	}
	CHECK(m.regions == NULL && m.n_regions == 0);
}

int
main(void)
{
	struct mk_derpmap m;
	const struct mk_derpmap_region *r;
	char err[256];
	size_t i;

	REQUIRE(mk_derpmap_parse(&m, good, strlen(good), err, sizeof(err)) == 0);
	REQUIRE(m.n_regions == 2);
	CHECK(m.regions[0].id == 1 && m.regions[1].id == 900);
	r = mk_derpmap_region(&m, 1);
	REQUIRE(r != NULL);
	CHECK_STR(r->code, "nyc");
	CHECK_STR(r->name, "New York City");
	CHECK(r->n_nodes == 1);
	CHECK_STR(r->nodes[0].host, "derp1f.tailscale.com");
	CHECK_STR(r->nodes[0].ipv4, "199.38.181.104");
	CHECK(r->nodes[0].stun_port == 0);
	r = mk_derpmap_region(&m, 900);
	REQUIRE(r != NULL && r->n_nodes == 2);
	CHECK(r->nodes[0].stun_port == 3490);
	CHECK(r->nodes[0].derp_port == 8443);
	CHECK(r->nodes[0].has_pin && r->nodes[0].pin[1] == 0x11);
	CHECK(r->nodes[1].stun_port == -1);
	CHECK(r->nodes[1].stun_only);
	CHECK(mk_derpmap_region(&m, 2) == NULL);
	mk_derpmap_free(&m);
	mk_derpmap_free(&m);

	expect_error("not json", "not JSON");
	expect_error("[]", "not a JSON object");
	expect_error("{\"Regions\":[]}", "no Regions object");
	expect_error("{\"Regions\":{\"x\":{}}}", "Regions.x: RegionID missing or not the key");
	expect_error("{\"Regions\":{\"1\":{\"RegionID\":2,\"Nodes\":[{\"HostName\":"
	    "\"a\"}]}}}", "Regions.1: RegionID missing or not the key");
	expect_error("{\"Regions\":{\"1\":{\"RegionID\":1,\"Nodes\":[{}]}}}",
	    "Regions.1.Nodes[0]: no HostName");
	expect_error("{\"Regions\":{\"1\":{\"RegionID\":1,\"Nodes\":[{\"HostName\":"
	    "\"a\",\"STUNPort\":70000}]}}}", "STUNPort: not an integer in -1..65535");
	expect_error("{\"Regions\":{\"1\":{\"RegionID\":1,\"Nodes\":[{\"HostName\":"
	    "7}]}}}", "HostName: not a string");

	/* every truncation fails cleanly or parses */
	for (i = 0; i < strlen(good); i++) {
		char *cut = malloc(i + 1);

		REQUIRE(cut != NULL);
		memcpy(cut, good, i);
		if (mk_derpmap_parse(&m, cut, i, err, sizeof(err)) == 0)
			mk_derpmap_free(&m);
		free(cut);
	}
	return t_done("derpmap");
}
