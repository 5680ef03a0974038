/* SPDX-License-Identifier: MIT */
/*
 * What every program's command line shares: the exit statuses (DESIGN.md
 * section 4) and the usage error, "prog: what was wrong" and the usage,
 * exit 2. One copy here instead of one per program.
 */
#ifndef MK_CLI_H
#define MK_CLI_H

#include <stdio.h>

#define MK_EXIT_OK	0	/* success */
#define MK_EXIT_NO	1	/* a definite "no": the answer, not a failure */
#define MK_EXIT_USAGE	2	/* usage or bad input */
#define MK_EXIT_FAIL	3	/* system or network failure */

/*
 * Name the program and the function that prints its usage (to stdout for
 * --help, to stderr after an error). Call first thing in main; a program
 * with subcommands may call it again with a narrower usage once it knows
 * the subcommand.
 */
void mk_cli_init(const char *prog, void (*usage)(FILE *));

/* "prog: <message>", the usage on stderr, exit MK_EXIT_USAGE. */
void mk_usage_error(const char *fmt, ...)
    __attribute__((noreturn, format(printf, 1, 2)));

#endif
