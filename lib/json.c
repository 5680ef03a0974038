/* SPDX-License-Identifier: MIT */
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
mk_json_init(struct mk_json *j)
{
	memset(j, 0, sizeof(*j));
	j->first[0] = true;
}

void
mk_json_free(struct mk_json *j)
{
	free(j->buf);
	mk_json_init(j);
}

void
mk_json_reset(struct mk_json *j)
{
	char *buf = j->buf;
	size_t cap = j->cap;

	mk_json_init(j);
	j->buf = buf;
	j->cap = cap;
}

static void
put(struct mk_json *j, const char *s, size_t n)
{
	size_t want;
	char *nb;

	if (j->err)
		return;
	want = j->len + n + 1;
	if (want > j->cap) {
		size_t cap = j->cap ? j->cap : 256;

		while (cap < want)
			cap *= 2;
		nb = realloc(j->buf, cap);
		if (nb == NULL) {
			j->err = true;
			return;
		}
		j->buf = nb;
		j->cap = cap;
	}
	memcpy(j->buf + j->len, s, n);
	j->len += n;
	j->buf[j->len] = '\0';
}

/* Comma before every element but the first of its container; none after a key. */
static void
sep(struct mk_json *j)
{
	if (j->after_key) {
		j->after_key = false;
		return;
	}
	if (!j->first[j->depth])
		put(j, ",", 1);
	j->first[j->depth] = false;
}

static void
open_container(struct mk_json *j, const char *c)
{
	sep(j);
	put(j, c, 1);
	if (j->depth + 1 >= MK_JSON_MAX_DEPTH) {
		j->err = true;
		return;
	}
	j->first[++j->depth] = true;
}

static void
close_container(struct mk_json *j, const char *c)
{
	if (j->depth == 0) {
		j->err = true;
		return;
	}
	j->depth--;
	put(j, c, 1);
}

void
mk_json_obj_begin(struct mk_json *j)
{
	open_container(j, "{");
}

void
mk_json_obj_end(struct mk_json *j)
{
	close_container(j, "}");
}

void
mk_json_arr_begin(struct mk_json *j)
{
	open_container(j, "[");
}

void
mk_json_arr_end(struct mk_json *j)
{
	close_container(j, "]");
}

static void
put_string(struct mk_json *j, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char esc[7];
	size_t i, start = 0;
	unsigned char c;

	put(j, "\"", 1);
	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		put(j, s + start, i - start);
		start = i + 1;
		switch (c) {
		case '"': put(j, "\\\"", 2); break;
		case '\\': put(j, "\\\\", 2); break;
		case '\n': put(j, "\\n", 2); break;
		case '\r': put(j, "\\r", 2); break;
		case '\t': put(j, "\\t", 2); break;
		default:
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			put(j, esc, 6);
		}
	}
	put(j, s + start, n - start);
	put(j, "\"", 1);
}

void
mk_json_key(struct mk_json *j, const char *key)
{
	sep(j);
	put_string(j, key, strlen(key));
	put(j, ":", 1);
	j->after_key = true;
}

void
mk_json_strn(struct mk_json *j, const char *s, size_t n)
{
	sep(j);
	put_string(j, s, n);
}

void
mk_json_str(struct mk_json *j, const char *s)
{
	if (s == NULL) {
		mk_json_null(j);
		return;
	}
	mk_json_strn(j, s, strlen(s));
}

void
mk_json_int(struct mk_json *j, long long v)
{
	char b[32];
	int n = snprintf(b, sizeof(b), "%lld", v);

	sep(j);
	put(j, b, (size_t)n);
}

void
mk_json_double(struct mk_json *j, double v, int decimals)
{
	char b[64];
	int n;

	if (!isfinite(v)) {
		mk_json_null(j);
		return;
	}
	n = snprintf(b, sizeof(b), "%.*f", decimals, v);
	sep(j);
	put(j, b, (size_t)n);
}

void
mk_json_bool(struct mk_json *j, bool v)
{
	sep(j);
	put(j, v ? "true" : "false", v ? 4 : 5);
}

void
mk_json_null(struct mk_json *j)
{
	sep(j);
	put(j, "null", 4);
}

void
mk_json_kstr(struct mk_json *j, const char *key, const char *s)
{
	mk_json_key(j, key);
	mk_json_str(j, s);
}

void
mk_json_kint(struct mk_json *j, const char *key, long long v)
{
	mk_json_key(j, key);
	mk_json_int(j, v);
}

void
mk_json_kbool(struct mk_json *j, const char *key, bool v)
{
	mk_json_key(j, key);
	mk_json_bool(j, v);
}

const char *
mk_json_text(struct mk_json *j)
{
	if (j->err)
		return NULL;
	if (j->buf == NULL)
		put(j, "", 0);
	return j->err ? NULL : j->buf;
}
