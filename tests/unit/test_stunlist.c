/* SPDX-License-Identifier: MIT */
/* Unit tests for the STUN server lookup order (lib/stunlist). */
#include <stdlib.h>
#include <string.h>

#include "meshconf.h"
#include "loop.h"
#include "stunlist.h"
#include "t.h"

static const char mesh_text[] =
    "domain mesh.test\n"
    "stun 198.18.0.10:3478\n"
    "stun 2001:db8::10\n";

static void
test_order(void)
{
	static struct mk_stunlist l;
	struct mk_mesh m;
	char *args[] = { "198.18.0.11", "[2001:db8::11]:3479" };
	const char *why = NULL;
	char err[256];

	REQUIRE_VOID(mk_mesh_parse(&m, mesh_text, strlen(mesh_text), "t",
	    err, sizeof(err)) == 0);
	unsetenv("STUNQ_SERVERS");

	/* arguments win over everything */
	setenv("STUNQ_SERVERS", "198.18.0.99", 1);
	CHECK(mk_stunlist_collect(&l, args, 2, &m, true, &why) == 0);
	CHECK(l.n == 2);
	CHECK_STR(l.name[0], "198.18.0.11");
	CHECK_STR(l.name[1], "[2001:db8::11]:3479");
	CHECK(!mk_stunlist_wants_mesh(2));

	/* then the environment, split on spaces and commas */
	setenv("STUNQ_SERVERS", " 198.18.0.98, 198.18.0.99 ,", 1);
	CHECK(!mk_stunlist_wants_mesh(0));
	CHECK(mk_stunlist_collect(&l, NULL, 0, &m, true, &why) == 0);
	CHECK(l.n == 2);
	CHECK_STR(l.name[0], "198.18.0.98");
	CHECK_STR(l.name[1], "198.18.0.99");

	/* a blank environment names nothing: on to the mesh */
	setenv("STUNQ_SERVERS", " , ", 1);
	CHECK(mk_stunlist_wants_mesh(0));
	CHECK(mk_stunlist_collect(&l, NULL, 0, &m, true, &why) == 0);
	CHECK(l.n == 2);
	CHECK_STR(l.name[0], "198.18.0.10:3478");
	CHECK_STR(l.name[1], "[2001:db8::10]:3478");

	/* no mesh: the built-in list only when allowed */
	unsetenv("STUNQ_SERVERS");
	CHECK(mk_stunlist_collect(&l, NULL, 0, NULL, false, &why) == 0);
	CHECK(l.n == 0);
	CHECK(mk_stunlist_collect(&l, NULL, 0, NULL, true, &why) == 0);
	CHECK(l.n == mk_stun_n_builtin_servers && l.n > 0);
	mk_mesh_free(&m);
}

static void
test_limits(void)
{
	static struct mk_stunlist l;
	char name[MK_STUNLIST_NAMELEN + 8];
	char *args[MK_STUNLIST_MAX + 1];
	const char *why = NULL;
	size_t i;

	for (i = 0; i <= MK_STUNLIST_MAX; i++)
		args[i] = "198.18.0.10";
	CHECK(mk_stunlist_collect(&l, args, MK_STUNLIST_MAX, NULL, false,
	    &why) == 0);
	CHECK(l.n == MK_STUNLIST_MAX);
	why = NULL;
	CHECK(mk_stunlist_collect(&l, args, MK_STUNLIST_MAX + 1, NULL, false,
	    &why) == -1);
	CHECK(why != NULL && strcmp(why, "too many servers (at most 64)") == 0);

	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	args[0] = name;
	why = NULL;
	CHECK(mk_stunlist_collect(&l, args, 1, NULL, false, &why) == -1);
	CHECK(why != NULL && strcmp(why, "server name too long") == 0);
	setenv("STUNQ_SERVERS", name, 1);
	why = NULL;
	CHECK(mk_stunlist_collect(&l, NULL, 0, NULL, false, &why) == -1);
	CHECK(why != NULL && strcmp(why, "server name too long") == 0);
	unsetenv("STUNQ_SERVERS");
}

/* Numeric addresses need no look-up; malformed ones are bad input, not
 * failed look-ups. (No name is looked up here: a unit test sends no
 * packet, not even to a resolver.) */
static void
test_resolve(void)
{
	static struct mk_stunlist l;
	static struct mk_stunlist_addr ra[MK_STUNLIST_MAX];
	char a[MK_ADDRSTRLEN];
	const char *why;
	size_t n;

	l.n = 0;
	mk_stunlist_add(&l, "192.0.2.1", &why);
	mk_stunlist_add(&l, "[2001:db8::1]:3479", &why);
	mk_stunlist_add(&l, "[::1", &why);
	mk_stunlist_add(&l, "192.0.2.1:99999", &why);
	mk_stunlist_add(&l, "stun.example.net:x", &why);
	n = mk_stunlist_resolve(&l, 3478, AF_INET, mk_now_us() + 5000000, ra);
	CHECK(n == 1);
	CHECK(ra[0].why == NULL && !ra[0].bad);
	CHECK_STR(mk_addr_fmt(&ra[0].addr, a, sizeof(a)), "192.0.2.1:3478");
	CHECK_STR(ra[1].why, "address of the wrong family");
	CHECK(!ra[1].bad);
	CHECK(ra[2].bad);
	CHECK(ra[3].bad);
	CHECK_STR(ra[3].why, "bad port");
	CHECK(ra[4].bad);
	/* a deadline already past: numeric addresses still count */
	l.n = 0;
	mk_stunlist_add(&l, "198.51.100.7:1", &why);
	n = mk_stunlist_resolve(&l, 3478, AF_UNSPEC, 0, ra);
	CHECK(n == 1);
}

int
main(void)
{
	test_order();
	test_limits();
	test_resolve();
	return t_done("stunlist");
}
