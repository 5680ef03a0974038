/* SPDX-License-Identifier: MIT */
#include "key.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

int
mk_key_init(void)
{
	return sodium_init() < 0 ? -1 : 0;
}

void
mk_key_generate(struct mk_key *priv)
{
	randombytes_buf(priv->b, sizeof(priv->b));
	priv->b[0] &= 248;
	priv->b[31] = (priv->b[31] & 127) | 64;
}

void
mk_key_random(struct mk_key *k)
{
	randombytes_buf(k->b, sizeof(k->b));
}

int
mk_key_public(struct mk_key *pub, const struct mk_key *priv)
{
	return crypto_scalarmult_curve25519_base(pub->b, priv->b) == 0 ? 0 : -1;
}

void
mk_key_to_base64(char *out, const struct mk_key *k)
{
	sodium_bin2base64(out, MK_KEY_B64LEN + 1, k->b, MK_KEY_LEN,
	    sodium_base64_VARIANT_ORIGINAL);
}

void
mk_key_to_hex(char *out, const struct mk_key *k)
{
	sodium_bin2hex(out, MK_KEY_HEXLEN + 1, k->b, MK_KEY_LEN);
}

int
mk_key_parse_base64(struct mk_key *k, const char *s, const char **why)
{
	size_t len = 0;
	const char *end;

	if (strlen(s) != MK_KEY_B64LEN || s[MK_KEY_B64LEN - 1] != '=') {
		*why = "key is not 44 characters of base64";
		return -1;
	}
	if (sodium_base642bin(k->b, MK_KEY_LEN, s, MK_KEY_B64LEN, NULL, &len,
	    &end, sodium_base64_VARIANT_ORIGINAL) != 0 || len != MK_KEY_LEN ||
	    *end != '\0') {
		*why = "bad base64 in key";
		return -1;
	}
	return 0;
}

static int
parse_hex(struct mk_key *k, const char *s, const char **why)
{
	size_t len = 0;
	const char *end;

	if (strlen(s) != MK_KEY_HEXLEN) {
		*why = "hex key is not 64 digits";
		return -1;
	}
	if (sodium_hex2bin(k->b, MK_KEY_LEN, s, MK_KEY_HEXLEN, NULL, &len,
	    &end) != 0 || len != MK_KEY_LEN || *end != '\0') {
		*why = "bad hex in key";
		return -1;
	}
	return 0;
}

int
mk_key_parse(struct mk_key *k, const char *s, const char **why)
{
	if (strncmp(s, "nodekey:", 8) == 0)
		return parse_hex(k, s + 8, why);
	if (strlen(s) == MK_KEY_HEXLEN)
		return parse_hex(k, s, why);
	if (strlen(s) == MK_KEY_B64LEN)
		return mk_key_parse_base64(k, s, why);
	*why = "key has the wrong length (want 44 base64, 64 hex or nodekey:HEX)";
	return -1;
}

int
mk_key_read_fd(struct mk_key *k, int fd, const char **why)
{
	char buf[256], *s;
	ssize_t n;
	int rc;

	n = mk_read_small(fd, buf, sizeof(buf));
	if (n < 0) {
		*why = errno == EFBIG ? "key file too long" : strerror(errno);
		sodium_memzero(buf, sizeof(buf));
		return -1;
	}
	if (memchr(buf, '\0', (size_t)n) != NULL) {
		*why = "key file holds a NUL byte";
		sodium_memzero(buf, sizeof(buf));
		return -1;
	}
	s = mk_trim(buf);
	if (*s == '\0') {
		*why = "key file is empty";
		return -1;
	}
	rc = mk_key_parse_base64(k, s, why);
	sodium_memzero(buf, sizeof(buf));
	return rc;
}

int
mk_key_read_file(struct mk_key *k, const char *path, const char **why)
{
	int fd, rc, saved;

	if (strcmp(path, "-") == 0)
		return mk_key_read_fd(k, STDIN_FILENO, why);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*why = strerror(errno);
		return -1;
	}
	rc = mk_key_read_fd(k, fd, why);
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

int
mk_key_write_file(const char *path, const struct mk_key *k)
{
	char line[MK_KEY_B64LEN + 2];
	int rc;

	mk_key_to_base64(line, k);
	line[MK_KEY_B64LEN] = '\n';
	line[MK_KEY_B64LEN + 1] = '\0';
	rc = mk_file_replace(path, line, MK_KEY_B64LEN + 1, 0600);
	sodium_memzero(line, sizeof(line));
	return rc;
}

int
mk_key_equal(const struct mk_key *a, const struct mk_key *b)
{
	return sodium_memcmp(a->b, b->b, MK_KEY_LEN) == 0;
}

void
mk_key_wipe(struct mk_key *k)
{
	sodium_memzero(k->b, sizeof(k->b));
}

int
mk_key_load_private(struct mk_key *priv, struct mk_key *pub,
    const char *path, const char **why)
{
	char real[4096];

	if (strcmp(path, "-") != 0 &&
	    mk_file_world_accessible(path, real, sizeof(real)))
		mk_warn("Warning: `%s' is world accessible", real);
	if (mk_key_read_file(priv, path, why) != 0)
		return -1;
	if (mk_key_public(pub, priv) != 0) {
		mk_key_wipe(priv);
		*why = "not a usable private key";
		return -1;
	}
	return 0;
}
