/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *log_prog = "meshkit";
static int log_level = MK_LOG_WARN;

void
mk_log_init(const char *prog, int level)
{
	const char *slash = strrchr(prog, '/');

	log_prog = slash != NULL ? slash + 1 : prog;
	log_level = level;
}

int
mk_log_level(void)
{
	return log_level;
}

const char *
mk_log_prog(void)
{
	return log_prog;
}

void
mk_log(int level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	if (level > log_level)
		return;
	/* One write per line, so lines from several processes sharing a
	 * stderr never interleave mid-line. */
	n = snprintf(line, sizeof(line), "%s: ", log_prog);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	n = (int)strlen(line);
	line[n++] = '\n';
	fwrite(line, 1, (size_t)n, stderr);
	fflush(stderr);
}
