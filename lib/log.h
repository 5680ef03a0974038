/* SPDX-License-Identifier: MIT */
/* Logging to stderr, "prog: message". The level is process-wide, set once by
 * main from -v/-q; modules log, programs decide how much is shown. */
#ifndef MK_LOG_H
#define MK_LOG_H

enum mk_log_level {
	MK_LOG_ERR = 0,		/* shown even with -q */
	MK_LOG_WARN = 1,	/* default shows up to here */
	MK_LOG_INFO = 2,	/* -v */
	MK_LOG_DEBUG = 3,	/* -vv */
};

void mk_log_init(const char *prog, int level);
int mk_log_level(void);
const char *mk_log_prog(void);
void mk_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define mk_err(...)	mk_log(MK_LOG_ERR, __VA_ARGS__)
#define mk_warn(...)	mk_log(MK_LOG_WARN, __VA_ARGS__)
#define mk_info(...)	mk_log(MK_LOG_INFO, __VA_ARGS__)
#define mk_debug(...)	mk_log(MK_LOG_DEBUG, __VA_ARGS__)

#endif
