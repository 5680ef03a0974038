/* SPDX-License-Identifier: MIT */
/*
 * DERP frame parser: the input is a stream of frames as a peer would send
 * them. Each must parse or be rejected cleanly; what parses is encoded
 * again where the codec has an encoder and must come out byte for byte.
 * ClientInfo/ServerInfo payloads are also fed to the JSON parsers.
 */
#include <stdint.h>
#include <string.h>

#include "derp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MUST(c) do { if (!(c)) __builtin_trap(); } while (0)

static void
reencode(const struct mk_derp_frame *f, const uint8_t *p, size_t len)
{
	uint8_t out[MK_DERP_FWD_HDR_LEN + 64];
	size_t n;

	switch (f->type) {
	case MK_DERP_PING:
	case MK_DERP_PONG:
		if (len != 8)
			return;
		n = f->type == MK_DERP_PING ? mk_derp_put_ping(out, f->ping) :
		    mk_derp_put_pong(out, f->ping);
		MUST(n == 13 && memcmp(out + 5, p, 8) == 0);
		break;
	case MK_DERP_PEER_GONE:
		if (len != 33)
			return;
		n = mk_derp_put_peer_gone(out, f->key, f->byte);
		MUST(n == 38 && memcmp(out + 5, p, 33) == 0);
		break;
	case MK_DERP_PEER_PRESENT:
		if (len != MK_DERP_PEER_PRESENT_LEN || f->addr.len == 0)
			return;
		/* only canonical v4-mapped or v6 addresses round-trip */
		n = mk_derp_put_peer_present(out, f->key, &f->addr, f->flags);
		MUST(n == 56);
		MUST(memcmp(out + 5, p, 32) == 0 &&
		    memcmp(out + 5 + 48, p + 48, 3) == 0);
		break;
	case MK_DERP_SEND_PACKET:
	case MK_DERP_RECV_PACKET:
		n = f->type == MK_DERP_SEND_PACKET ?
		    mk_derp_put_send_hdr(out, f->key, f->data_len) :
		    mk_derp_put_recv_hdr(out, f->key, f->data_len);
		MUST(n == 37 && memcmp(out + 5, p, 32) == 0);
		MUST(f->data == p + 32 && f->data_len == len - 32);
		break;
	case MK_DERP_FORWARD_PACKET:
		n = mk_derp_put_forward_hdr(out, f->key, f->key2, f->data_len);
		MUST(n == 69 && memcmp(out + 5, p, 64) == 0);
		MUST(f->data_len == len - 64);
		break;
	case MK_DERP_RESTARTING:
		if (len != 8)
			return;
		n = mk_derp_put_restarting(out, f->reconnect_ms,
		    f->try_for_ms);
		MUST(n == 13 && memcmp(out + 5, p, 8) == 0);
		break;
	default:
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mk_derp_frame f;
	struct mk_derp_client_info ci;
	struct mk_derp_server_info si;
	const char *why;
	uint8_t type;
	uint32_t flen;
	int rc;

	while (mk_derp_hdr_get(data, size, &type, &flen) == 1) {
		data += MK_DERP_HDR_LEN;
		size -= MK_DERP_HDR_LEN;
		if (flen > size)
			break;
		why = NULL;
		rc = mk_derp_frame_parse(&f, type, data, flen, 2, &why);
		MUST(rc >= -1 && rc <= 1);
		MUST(rc != -1 || why != NULL);
		if (rc == 0) {
			MUST(f.data == NULL || (f.data >= data &&
			    f.data + f.data_len <= data + flen));
			reencode(&f, data, flen);
		}
		(void)mk_derp_frame_parse(&f, type, data, flen, 1, &why);
		if (type == MK_DERP_CLIENT_INFO)
			(void)mk_derp_client_info_parse(&ci,
			    (const char *)data, flen, &why);
		if (type == MK_DERP_SERVER_INFO)
			(void)mk_derp_server_info_parse(&si,
			    (const char *)data, flen, &why);
		data += flen;
		size -= flen;
	}
	return 0;
}
