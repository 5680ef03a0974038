/* SPDX-License-Identifier: MIT */
/* Unit tests for the core modules: addresses, keys, JSON, timers, util. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "json.h"
#include "key.h"
#include "loop.h"
#include "util.h"
#include "t.h"

static void
test_addr(void)
{
	struct mk_addr a, b;
	const char *why = NULL;
	char buf[MK_ADDRSTRLEN];

	CHECK(mk_addr_parse(&a, "1.2.3.4:5", 9, 0, &why) == 0);
	CHECK_STR(mk_addr_fmt(&a, buf, sizeof(buf)), "1.2.3.4:5");
	CHECK(mk_addr_parse(&a, "1.2.3.4", 3478, 0, &why) == 0);
	CHECK_STR(mk_addr_fmt(&a, buf, sizeof(buf)), "1.2.3.4:3478");
	CHECK(mk_addr_parse(&a, "[2001:db8::1]:53", 0, 0, &why) == 0);
	CHECK_STR(mk_addr_fmt(&a, buf, sizeof(buf)), "[2001:db8::1]:53");
	CHECK_STR(mk_addr_fmt_ip(&a, buf, sizeof(buf)), "2001:db8::1");
	CHECK(mk_addr_parse(&a, "2001:db8::1", 7, 0, &why) == 0);
	CHECK(mk_addr_port(&a) == 7);
	CHECK(mk_addr_parse(&a, "[::ffff:10.1.2.3]:80", 0, 0, &why) == 0);
	CHECK(mk_addr_family(&a) == AF_INET);
	CHECK_STR(mk_addr_fmt(&a, buf, sizeof(buf)), "10.1.2.3:80");

	CHECK(mk_addr_parse(&a, "1.2.3.4:65536", 0, 0, &why) == -1);
	CHECK_STR(why, "bad port");
	CHECK(mk_addr_parse(&a, "1.2.3.4:", 0, 0, &why) == -1);
	CHECK(mk_addr_parse(&a, "1.2.3.4:-1", 0, 0, &why) == -1);
	CHECK(mk_addr_parse(&a, "[::1", 0, 0, &why) == -1);
	CHECK(mk_addr_parse(&a, "[::1]x", 0, 0, &why) == -1);
	CHECK(mk_addr_parse(&a, "host.example", 0, 0, &why) == -1);
	CHECK_STR(why, "not a numeric address");
	CHECK(mk_addr_parse(&a, "1.2.3.4", 0, MK_ADDR_NEED_PORT, &why) == -1);
	CHECK_STR(why, "missing port");
	CHECK(mk_addr_parse(&a, "1.2.3.4:1", 0, MK_ADDR_NO_PORT, &why) == -1);
	CHECK(mk_addr_parse(&a, "", 0, 0, &why) == -1);
	CHECK(mk_addr_parse(&a, "1.2.3.256", 0, 0, &why) == -1);

	CHECK(mk_addr_resolve(&a, "localhost:99", 0, AF_INET, &why) == 0);
	CHECK_STR(mk_addr_fmt(&a, buf, sizeof(buf)), "127.0.0.1:99");
	CHECK(mk_addr_resolve(&a, "127.0.0.1", 5, AF_INET6, &why) == -1);

	mk_addr_parse(&a, "10.0.0.1:1", 0, 0, &why);
	mk_addr_parse(&b, "10.0.0.1:2", 0, 0, &why);
	CHECK(mk_addr_same_ip(&a, &b));
	CHECK(!mk_addr_equal(&a, &b));
	mk_addr_set_port(&b, 1);
	CHECK(mk_addr_equal(&a, &b));
	memset(&b, 0, sizeof(b));
	CHECK_STR(mk_addr_fmt(&b, buf, sizeof(buf)), "-");
	CHECK(!mk_addr_equal(&a, &b));
	mk_addr_any(&b, AF_INET6, 9);
	CHECK(mk_addr_is_any(&b));
	CHECK_STR(mk_addr_fmt(&b, buf, sizeof(buf)), "[::]:9");
}

/* protocols.md §1.8: private key 32 x 0x11 has this public key. */
static void
test_hostport(void)
{
	char b[64];

	CHECK(mk_hostport_fmt(b, sizeof(b), "198.51.100.1", 3478) == 17);
	CHECK_STR(b, "198.51.100.1:3478");
	mk_hostport_fmt(b, sizeof(b), "2001:db8::1", 443);
	CHECK_STR(b, "[2001:db8::1]:443");
	mk_hostport_fmt(b, sizeof(b), "relay.example", 0);
	CHECK_STR(b, "relay.example");
	mk_hostport_fmt(b, sizeof(b), "::1", 0);
	CHECK_STR(b, "[::1]");
	/* cut short, still terminated; the return says how much was due */
	CHECK(mk_hostport_fmt(b, 6, "2001:db8::1", 443) == 17 &&
	    strlen(b) == 5);
}

static void
test_keys(void)
{
	struct mk_key priv, pub, k;
	const char *why = NULL;
	char b64[MK_KEY_B64LEN + 1], hex[MK_KEY_HEXLEN + 1];
	char path[] = "/tmp/mk-test-key-XXXXXX";
	struct stat st;
	int fd;

	REQUIRE_VOID(mk_key_init() == 0);
	memset(priv.b, 0x11, sizeof(priv.b));
	CHECK(mk_key_public(&pub, &priv) == 0);
	mk_key_to_hex(hex, &pub);
	CHECK_STR(hex, "7b4e909bbe7ffe44c465a220037d608e"
	    "e35897d31ef972f07f74892cb0f73f13");
	mk_key_to_base64(b64, &pub);
	CHECK(mk_key_parse(&k, b64, &why) == 0 && mk_key_equal(&k, &pub));
	CHECK(mk_key_parse(&k, hex, &why) == 0 && mk_key_equal(&k, &pub));
	CHECK(mk_key_parse(&k, "nodekey:7b4e909bbe7ffe44c465a220037d608ee358"
	    "97d31ef972f07f74892cb0f73f13", &why) == 0 &&
	    mk_key_equal(&k, &pub));
	CHECK(mk_key_parse(&k, "nodekey:7b4e", &why) == -1);
	CHECK(mk_key_parse(&k, "abc", &why) == -1);
	CHECK(mk_key_parse(&k, "zz4e909bbe7ffe44c465a220037d608ee35897d31ef9"
	    "72f07f74892cb0f73f13", &why) == -1);
	b64[10] = '*';
	CHECK(mk_key_parse(&k, b64, &why) == -1);

	/* generated keys are clamped, files are 0600 and round-trip */
	mk_key_generate(&priv);
	CHECK((priv.b[0] & 7) == 0 && (priv.b[31] & 0xc0) == 0x40);
	fd = mkstemp(path);
	REQUIRE_VOID(fd >= 0);
	close(fd);
	unlink(path);
	CHECK(mk_key_write_file(path, &priv) == 0);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	CHECK(mk_key_read_file(&k, path, &why) == 0 && mk_key_equal(&k, &priv));
	/* a node's own key: the private one and its public key */
	{
		struct mk_key lp, lpub, want;

		CHECK(mk_key_public(&want, &priv) == 0);
		CHECK(mk_key_load_private(&lp, &lpub, path, &why) == 0 &&
		    mk_key_equal(&lp, &priv) && mk_key_equal(&lpub, &want));
		CHECK(mk_key_load_private(&lp, &lpub, "/nonexistent/key",
		    &why) == -1 && errno == ENOENT);
	}
	/* truncated, empty and overlong key files are errors */
	fd = open(path, O_WRONLY | O_TRUNC);
	CHECK(write(fd, "AAAA\n", 5) == 5);
	close(fd);
	CHECK(mk_key_read_file(&k, path, &why) == -1);
	fd = open(path, O_WRONLY | O_TRUNC);
	close(fd);
	CHECK(mk_key_read_file(&k, path, &why) == -1);
	CHECK_STR(why, "key file is empty");
	unlink(path);
	CHECK(mk_key_read_file(&k, path, &why) == -1);
	CHECK(errno == ENOENT);
}

static void
test_json(void)
{
	struct mk_json j;

	mk_json_init(&j);
	mk_json_obj_begin(&j);
	mk_json_kstr(&j, "a", "x\"y\\z\n\x01");
	mk_json_kint(&j, "b", -5);
	mk_json_key(&j, "c");
	mk_json_arr_begin(&j);
	mk_json_bool(&j, true);
	mk_json_null(&j);
	mk_json_double(&j, 1.5, 3);
	mk_json_arr_end(&j);
	mk_json_kstr(&j, "d", NULL);
	mk_json_obj_end(&j);
	CHECK_STR(mk_json_text(&j),
	    "{\"a\":\"x\\\"y\\\\z\\n\\u0001\",\"b\":-5,\"c\":[true,null,1.500],"
	    "\"d\":null}");
	mk_json_reset(&j);
	mk_json_obj_begin(&j);
	mk_json_obj_end(&j);
	CHECK_STR(mk_json_text(&j), "{}");
	mk_json_free(&j);
}

static int fired[4], nfired;

static void
on_timer(struct mk_loop *l, struct mk_timer *t)
{
	(void)l;
	fired[nfired++] = (int)(intptr_t)t->arg;
}

static void
test_loop(void)
{
	struct mk_loop l;
	struct mk_timer t[4];
	uint64_t start;
	int i;

	REQUIRE_VOID(mk_loop_init(&l) == 0);
	for (i = 0; i < 4; i++)
		mk_timer_init(&t[i], on_timer, (void *)(intptr_t)i);
	start = mk_now_us();
	mk_timer_at(&l, &t[0], start + 30000);
	mk_timer_at(&l, &t[1], start + 10000);
	mk_timer_at(&l, &t[2], start + 20000);
	mk_timer_at(&l, &t[3], start + 5000);
	mk_timer_cancel(&l, &t[3]);
	CHECK(!mk_timer_armed(&t[3]));
	while (nfired < 3 && mk_now_us() - start < 1000000)
		mk_loop_once(&l, 100000);
	CHECK(nfired == 3);
	CHECK(fired[0] == 1 && fired[1] == 2 && fired[2] == 0);
	CHECK(mk_now_us() - start >= 30000);
	mk_loop_free(&l);
}

/*
 * A timer that re-arms itself in the past on every call (as derpcat's
 * delayed ACK did while the relay was down) must not keep the loop from
 * I/O or from the other timers: each mk_loop_once returns, the readable
 * eventfd is served and the other due timer runs. Before the fix the
 * first mk_loop_once never returned (the alarm ends the test then).
 */
static int starve_runs, starve_io, starve_other;

static void
on_starve_timer(struct mk_loop *l, struct mk_timer *t)
{
	starve_runs++;
	mk_timer_at(l, t, 1);	/* the same time, long past */
}

static void
on_starve_other(struct mk_loop *l, struct mk_timer *t)
{
	(void)l;
	(void)t;
	starve_other++;
}

static void
on_starve_io(struct mk_loop *l, struct mk_io *io, uint32_t events)
{
	(void)l;
	(void)events;
	(void)io;
	starve_io++;
}

static void
test_loop_no_starve(void)
{
	struct mk_loop l;
	struct mk_timer t, other;
	struct mk_io io;
	uint64_t one = 1, start;
	int i;

	REQUIRE_VOID(mk_loop_init(&l) == 0);
	io.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	io.fn = on_starve_io;
	io.arg = NULL;
	REQUIRE_VOID(io.fd >= 0);
	REQUIRE_VOID(write(io.fd, &one, sizeof(one)) == sizeof(one));
	CHECK(mk_loop_add(&l, &io, EPOLLIN) == 0);
	mk_timer_init(&t, on_starve_timer, NULL);
	mk_timer_init(&other, on_starve_other, NULL);
	mk_timer_at(&l, &t, 0);
	mk_timer_in(&l, &other, 2000);
	alarm(10);
	start = mk_now_us();
	for (i = 0; starve_other == 0 && mk_now_us() - start < 2000000; i++)
		REQUIRE_VOID(mk_loop_once(&l, 100000) == 0);
	alarm(0);
	/* once per round: never more runs than rounds */
	CHECK(starve_runs >= 1 && starve_runs <= i);
	CHECK(starve_io >= 1);		/* level-triggered: every round */
	CHECK(starve_other == 1);
	CHECK(mk_timer_armed(&t));
	mk_loop_del(&l, &io);
	close(io.fd);
	mk_loop_free(&l);
}

/*
 * Two readable eventfds in one batch: whichever callback runs first
 * removes and frees the other (ASan catches a use after free), and
 * defers a call that must run after the round, once.
 */
struct pair_io {
	struct mk_io io;
	struct pair_io **peer;
	int *calls;
};

static int deferred;

static void
on_deferred(void *arg)
{
	struct mk_loop *l = arg;

	deferred++;
	if (deferred == 1)
		mk_loop_defer(l, on_deferred, l);	/* runs in the same pass */
}

static void
on_pair(struct mk_loop *l, struct mk_io *io, uint32_t events)
{
	struct pair_io *me = io->arg, *other = *me->peer;
	uint64_t v;

	(void)events;
	(*me->calls)++;
	if (read(io->fd, &v, sizeof(v)) < 0)
		return;
	if (other != NULL) {
		mk_loop_del(l, &other->io);
		close(other->io.fd);
		free(other);
		*me->peer = NULL;
	}
	CHECK(deferred == 0);
	mk_loop_defer(l, on_deferred, l);
}

static void
test_loop_del_defer(void)
{
	struct mk_loop l;
	struct pair_io *a, *b, *a_ref = NULL, *b_ref = NULL;
	uint64_t one = 1;
	int calls = 0;

	REQUIRE_VOID(mk_loop_init(&l) == 0);
	a = calloc(1, sizeof(*a));
	b = calloc(1, sizeof(*b));
	REQUIRE_VOID(a != NULL && b != NULL);
	a_ref = a;
	b_ref = b;
	a->peer = &b_ref;	/* a frees b */
	b->peer = &a_ref;	/* b frees a */
	a->calls = b->calls = &calls;
	a->io = (struct mk_io){ eventfd(0, EFD_NONBLOCK), on_pair, a };
	b->io = (struct mk_io){ eventfd(0, EFD_NONBLOCK), on_pair, b };
	REQUIRE_VOID(a->io.fd >= 0 && b->io.fd >= 0);
	CHECK(mk_loop_add(&l, &a->io, EPOLLIN) == 0);
	CHECK(mk_loop_add(&l, &b->io, EPOLLIN) == 0);
	CHECK(write(a->io.fd, &one, sizeof(one)) == sizeof(one));
	CHECK(write(b->io.fd, &one, sizeof(one)) == sizeof(one));
	CHECK(mk_loop_once(&l, 100000) == 0);
	CHECK(calls == 1);
	CHECK(deferred == 2);
	CHECK((a_ref == NULL) != (b_ref == NULL));
	if (a_ref != NULL) {
		close(a_ref->io.fd);
		free(a_ref);
	}
	if (b_ref != NULL) {
		close(b_ref->io.fd);
		free(b_ref);
	}
	mk_loop_defer(&l, on_deferred, &l);
	mk_loop_free(&l);	/* runs what is still deferred */
	CHECK(deferred == 3);
}

static void
test_util(void)
{
	long long v;
	uint64_t ms;
	uint8_t b[2];
	char h[5];

	CHECK(mk_strtonum("42", 0, 100, &v) == 0 && v == 42);
	CHECK(mk_strtonum("101", 0, 100, &v) == -1 && errno == ERANGE);
	CHECK(mk_strtonum("4x", 0, 100, &v) == -1 && errno == EINVAL);
	CHECK(mk_strtonum(" 4", 0, 100, &v) == -1);
	CHECK(mk_strtonum("+4", 0, 100, &v) == -1);
	CHECK(mk_strtonum("-0", 0, 100, &v) == -1);
	CHECK(mk_strtonum("-3", -5, 100, &v) == 0 && v == -3);
	CHECK(mk_strtonum("", 0, 100, &v) == -1);
	CHECK(mk_parse_seconds_ms("1.5", 10000, &ms) == 0 && ms == 1500);
	CHECK(mk_parse_seconds_ms("0.001", 10000, &ms) == 0 && ms == 1);
	CHECK(mk_parse_seconds_ms("3", 10000, &ms) == 0 && ms == 3000);
	CHECK(mk_parse_seconds_ms("11", 10000, &ms) == -1);
	CHECK(mk_parse_seconds_ms(".5", 10000, &ms) == 0 && ms == 500);
	CHECK(mk_parse_seconds_ms(".", 10000, &ms) == -1);
	CHECK(mk_parse_seconds_ms("1.", 10000, &ms) == -1);
	CHECK(mk_parse_seconds_ms("-1", 10000, &ms) == -1);
	CHECK(mk_hex_decode(b, 2, "aB0f", 4) == 0 && b[0] == 0xab && b[1] == 0x0f);
	CHECK(mk_hex_decode(b, 2, "aB0", 3) == -1);
	CHECK(mk_hex_decode(b, 2, "aB0g", 4) == -1);
	mk_hex_encode(h, b, 2);
	CHECK_STR(h, "ab0f");
}

int
main(void)
{
	test_addr();
	test_hostport();
	test_keys();
	test_json();
	test_loop();
	test_loop_del_defer();
	test_loop_no_starve();
	test_util();
	return t_done("core");
}
