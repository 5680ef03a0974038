/* SPDX-License-Identifier: MIT */
/*
 * A small JSON writer into a growing buffer: objects, arrays, strings
 * (escaped per RFC 8259), integers, doubles, booleans, null. Commas are
 * placed automatically. On allocation failure err is set and the rest is a
 * no-op; check once at the end.
 */
#ifndef MK_JSON_H
#define MK_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MK_JSON_MAX_DEPTH 32

struct mk_json {
	char *buf;
	size_t len;
	size_t cap;
	bool err;
	int depth;
	bool first[MK_JSON_MAX_DEPTH];	/* no element yet at this depth */
	bool after_key;
};

void mk_json_init(struct mk_json *j);
void mk_json_free(struct mk_json *j);
/* Empty the buffer for the next object, keeping its memory. */
void mk_json_reset(struct mk_json *j);

void mk_json_obj_begin(struct mk_json *j);
void mk_json_obj_end(struct mk_json *j);
void mk_json_arr_begin(struct mk_json *j);
void mk_json_arr_end(struct mk_json *j);
void mk_json_key(struct mk_json *j, const char *key);
void mk_json_str(struct mk_json *j, const char *s);
void mk_json_strn(struct mk_json *j, const char *s, size_t n);
void mk_json_int(struct mk_json *j, long long v);
void mk_json_double(struct mk_json *j, double v, int decimals);
void mk_json_bool(struct mk_json *j, bool v);
void mk_json_null(struct mk_json *j);

/* key + value shorthands */
void mk_json_kstr(struct mk_json *j, const char *key, const char *s);
void mk_json_kint(struct mk_json *j, const char *key, long long v);
void mk_json_kbool(struct mk_json *j, const char *key, bool v);

/* NUL-terminated text, or NULL after an error. */
const char *mk_json_text(struct mk_json *j);

#endif
