/* SPDX-License-Identifier: MIT */
/* lib/task and lib/lookup: blocking work off the loop. Only numeric
 * addresses and /etc/hosts names: a unit test never asks a DNS server. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "lookup.h"
#include "loop.h"
#include "task.h"
#include "t.h"

static void
double_it(void *arg)
{
	int *v = arg;

	*v *= 2;
}

static void
sleep_50ms(void *arg)
{
	(void)arg;
	usleep(50000);
}

static bool
readable(int fd, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, ms) == 1 && (pfd.revents & POLLIN);
}

static void
test_task(void)
{
	struct mk_task *t;
	const char *why = NULL;
	int *v;

	REQUIRE_VOID((v = malloc(sizeof(*v))) != NULL);
	*v = 21;
	REQUIRE_VOID((t = mk_task_start(double_it, v, &why)) != NULL);
	CHECK(readable(mk_task_fd(t), 5000));
	CHECK(mk_task_done(t));
	CHECK(*(int *)mk_task_arg(t) == 42);
	mk_task_put(t);

	/* Not done yet when asked at once; given up while it runs, the
	 * thread frees its own (ASan's leak check holds us to it). */
	REQUIRE_VOID((v = malloc(sizeof(*v))) != NULL);
	REQUIRE_VOID((t = mk_task_start(sleep_50ms, v, &why)) != NULL);
	CHECK(!mk_task_done(t));
	CHECK(!readable(mk_task_fd(t), 0));
	mk_task_put(t);
	mk_task_put(NULL);
	usleep(100000);
}

static void
test_lookup_numeric(void)
{
	struct mk_addr out[MK_LOOKUP_MAX];
	struct mk_lookup *l;
	const char *why = NULL;
	char buf[MK_ADDRSTRLEN];
	size_t n = 99;

	REQUIRE_VOID((l = mk_lookup_start("192.0.2.7", 3478, AF_UNSPEC,
	    SOCK_DGRAM, &why)) != NULL);
	CHECK(mk_lookup_wait(l, mk_now_us() + 5000000) == 1);
	CHECK(readable(mk_lookup_fd(l), 0));
	CHECK(mk_lookup_result(l, out, MK_LOOKUP_MAX, &n, &why) == 1);
	CHECK(n == 1);
	CHECK_STR(mk_addr_fmt(&out[0], buf, sizeof(buf)), "192.0.2.7:3478");
	mk_lookup_free(l);

	REQUIRE_VOID((l = mk_lookup_start("2001:db8::1", 443, AF_INET6,
	    SOCK_STREAM, &why)) != NULL);
	CHECK(mk_lookup_wait(l, mk_now_us() + 5000000) == 1);
	CHECK(mk_lookup_result(l, out, MK_LOOKUP_MAX, &n, &why) == 1);
	CHECK(n == 1);
	CHECK_STR(mk_addr_fmt(&out[0], buf, sizeof(buf)), "[2001:db8::1]:443");
	mk_lookup_free(l);

	/* max bounds what is copied */
	REQUIRE_VOID((l = mk_lookup_start("192.0.2.7", 1, AF_INET,
	    SOCK_DGRAM, &why)) != NULL);
	CHECK(mk_lookup_wait(l, mk_now_us() + 5000000) == 1);
	CHECK(mk_lookup_result(l, out, 0, &n, &why) == 1);
	CHECK(n == 0);
	mk_lookup_free(l);
}

static void
test_lookup_fails(void)
{
	struct mk_addr out[MK_LOOKUP_MAX];
	struct mk_lookup *l;
	const char *why = NULL;
	char longname[2000];
	size_t n = 99;

	/* An IPv4 literal asked for as IPv6: getaddrinfo's own words. */
	REQUIRE_VOID((l = mk_lookup_start("192.0.2.7", 53, AF_INET6,
	    SOCK_DGRAM, &why)) != NULL);
	CHECK(mk_lookup_wait(l, mk_now_us() + 5000000) == 1);
	why = NULL;
	CHECK(mk_lookup_result(l, out, MK_LOOKUP_MAX, &n, &why) == -1);
	CHECK(n == 0);
	CHECK(why != NULL && *why != '\0');
	mk_lookup_free(l);

	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	why = NULL;
	CHECK(mk_lookup_start(longname, 53, AF_UNSPEC, SOCK_DGRAM,
	    &why) == NULL);
	CHECK_STR(why, "host name too long");
	CHECK(mk_lookup_start("192.0.2.7", 53, AF_UNIX, SOCK_DGRAM,
	    &why) == NULL);
	CHECK_STR(why, "bad address family");
	mk_lookup_free(NULL);
}

static void
test_lookup_hosts(void)
{
	struct mk_addr out[MK_LOOKUP_MAX];
	struct mk_lookup *l;
	const char *why = NULL;
	size_t n = 0;

	/* "localhost" comes from /etc/hosts (nss "files"), no DNS. */
	REQUIRE_VOID((l = mk_lookup_start("localhost", 7, AF_INET,
	    SOCK_DGRAM, &why)) != NULL);
	/* A deadline already past: 0 unless the thread already answered. */
	(void)mk_lookup_wait(l, 0);
	CHECK(mk_lookup_wait(l, mk_now_us() + 5000000) == 1);
	CHECK(mk_lookup_result(l, out, MK_LOOKUP_MAX, &n, &why) == 1);
	CHECK(n >= 1 && mk_addr_family(&out[0]) == AF_INET &&
	    mk_addr_port(&out[0]) == 7);
	mk_lookup_free(l);

	/* Freed before the answer: nothing leaks, nothing crashes. */
	REQUIRE_VOID((l = mk_lookup_start("localhost", 7, AF_UNSPEC,
	    SOCK_DGRAM, &why)) != NULL);
	mk_lookup_free(l);
	usleep(100000);
}

int
main(void)
{
	test_task();
	test_lookup_numeric();
	test_lookup_fails();
	test_lookup_hosts();
	return t_done("lookup");
}
