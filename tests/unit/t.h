/* SPDX-License-Identifier: MIT */
/* A minimal unit-test harness: CHECK keeps going, REQUIRE stops; main
 * returns the failure count so `make unit` fails on any. */
#ifndef MK_T_H
#define MK_T_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static int t_failures;
static int t_checks;

#define CHECK(cond) do { \
	t_checks++; \
	if (!(cond)) { \
		t_failures++; \
		fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, \
		    __LINE__, #cond); \
	} \
} while (0)

#define REQUIRE(cond) do { \
	t_checks++; \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, \
		    __LINE__, #cond); \
		return ++t_failures; \
	} \
} while (0)

/* REQUIRE for void functions: stop this test function only. */
#define REQUIRE_VOID(cond) do { \
	t_checks++; \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, \
		    __LINE__, #cond); \
		t_failures++; \
		return; \
	} \
} while (0)

#define CHECK_STR(a, b) do { \
	const char *t_a = (a), *t_b = (b); \
	t_checks++; \
	if (t_a == NULL || t_b == NULL || strcmp(t_a, t_b) != 0) { \
		t_failures++; \
		fprintf(stderr, "%s:%d: \"%s\" != \"%s\"\n", __FILE__, \
		    __LINE__, t_a ? t_a : "(null)", t_b ? t_b : "(null)"); \
	} \
} while (0)

static inline int
t_done(const char *name)
{
	if (t_failures)
		fprintf(stderr, "%s: %d of %d checks failed\n", name,
		    t_failures, t_checks);
	else
		printf("%s: %d checks passed\n", name, t_checks);
	return t_failures != 0;
}

/*
 * A test vector in hex (spaces, tabs and newlines allowed) into out; its
 * length in bytes. A vector that is not hex or does not fit is a bug in
 * the test, so the binary stops.
 */
static inline size_t
t_unhex(uint8_t *out, size_t cap, const char *hex)
{
	char clean[4096];
	size_t n = 0;

	for (; *hex != '\0'; hex++) {
		if (*hex == ' ' || *hex == '\t' || *hex == '\n')
			continue;
		if (n == sizeof(clean))
			break;
		clean[n++] = *hex;
	}
	if (*hex != '\0' || n % 2 != 0 || n / 2 > cap ||
	    mk_hex_decode(out, n / 2, clean, n) != 0) {
		fprintf(stderr, "bad test vector: %.40s...\n", clean);
		exit(2);
	}
	return n / 2;
}

#endif
