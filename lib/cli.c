/* SPDX-License-Identifier: MIT */
#include "cli.h"

#include <stdarg.h>
#include <stdlib.h>

static const char *cli_prog = "meshkit";
static void (*cli_usage)(FILE *);

void
mk_cli_init(const char *prog, void (*usage)(FILE *))
{
	cli_prog = prog;
	cli_usage = usage;
}

void
mk_usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", cli_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (cli_usage != NULL)
		cli_usage(stderr);
	exit(MK_EXIT_USAGE);
}
