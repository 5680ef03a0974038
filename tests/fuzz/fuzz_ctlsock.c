/* SPDX-License-Identifier: MIT */
/*
 * The status socket's request reader (lib/ctlsock): any bytes, cut into
 * reads of any sizes (the first byte of each piece gives its length), give
 * what the whole stream says: the line before the first newline (less one
 * CR) when that newline comes within MK_CTL_REQ_MAX bytes and no NUL
 * precedes it, "bad" for a NUL or a line too long, else "more"; never a
 * read or write past the buffer.
 */
#include <stdint.h>
#include <string.h>

#include "ctlsock.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MUST(c) do { if (!(c)) __builtin_trap(); } while (0)

/* The verdict on the bytes a server read, by the protocol's words. */
static enum mk_ctl_feed_rc
expect(const uint8_t *b, size_t n, size_t *line_len)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (b[i] == '\n') {
			*line_len = i > 0 && b[i - 1] == '\r' ? i - 1 : i;
			return MK_CTL_LINE;
		}
		if (b[i] == '\0' || i == MK_CTL_REQ_MAX - 1)
			return MK_CTL_BAD;
	}
	return MK_CTL_MORE;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t fed[1 << 16];
	struct mk_ctl_req r;
	enum mk_ctl_feed_rc rc = MK_CTL_MORE;
	size_t left = size, piece, n_fed = 0, want_len = 0;
	const uint8_t *in = data;

	memset(&r, 0, sizeof(r));
	while (left > 0 && rc == MK_CTL_MORE && n_fed < sizeof(fed) - 32) {
		piece = in[0] % 17 + 1;
		in++, left--;
		if (piece > left)
			piece = left;
		memcpy(fed + n_fed, in, piece);
		n_fed += piece;
		rc = mk_ctl_feed(&r, in, piece);
		in += piece, left -= piece;
	}
	MUST(rc == expect(fed, n_fed, &want_len));
	if (rc == MK_CTL_LINE) {
		MUST(r.len == want_len);
		MUST(strlen(r.line) == r.len);
		MUST(memcmp(r.line, fed, r.len) == 0);
	}
	return 0;
}
