/* SPDX-License-Identifier: MIT */
/*
 * The STUN responder: stunq -l and derpcat -l's STUN port.
 *
 * Answers well-formed Binding requests and drops everything else. With an
 * alternate address it does RFC 5780 / RFC 3489 behaviour discovery on four
 * sockets (primary and alternate address x primary and alternate port):
 * OTHER-ADDRESS and RESPONSE-ORIGIN (CHANGED-ADDRESS and SOURCE-ADDRESS for
 * RFC 3489 clients), and CHANGE-REQUEST answered from the other address
 * and/or port.
 *
 * Against reflection a response carries only what its request needs:
 * the mapped address, FINGERPRINT only if the request had one, the
 * discovery attributes only in --alt mode, no SOFTWARE, and error answers
 * without a reason phrase. Worst case per request, errors included (see
 * stunq(1); tests/fuzz/fuzz_stunsrv.c checks it): a 20-byte request gets
 * 92 bytes over IPv6 in --alt mode (4.6x), 56 over IPv4 (2.8x); 44 (2.2x)
 * / 32 (1.6x) without. A 420 is 36 bytes for a 24-byte request (1.5x),
 * and grows by less than its request does for each attribute it names.
 */
#ifndef MK_STUNSRV_H
#define MK_STUNSRV_H

#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "loop.h"

/* Socket slots: primary/alternate address x primary/alternate port. */
enum {
	MK_STUNSRV_PP = 0,	/* primary address, primary port */
	MK_STUNSRV_PA = 1,	/* primary address, alternate port */
	MK_STUNSRV_AP = 2,	/* alternate address, primary port */
	MK_STUNSRV_AA = 3,	/* alternate address, alternate port */
	MK_STUNSRV_NSOCK = 4,
};

struct mk_stunsrv_stats {
	uint64_t received;
	uint64_t answered;
	uint64_t errors_sent;		/* 400/420 error responses */
	uint64_t dropped_malformed;
	uint64_t dropped_not_request;	/* well-formed, but not a Binding request */
	uint64_t dropped_send;		/* sendmmsg failed or would block */
};

struct mk_stunsrv;

/*
 * What the answer logic needs to know, separate from the sockets so it can be
 * tested and fuzzed without any: the address of each slot (len 0 = slot
 * unused) and whether discovery (--alt) is on.
 */
struct mk_stunsrv_ctx {
	struct mk_addr slot[MK_STUNSRV_NSOCK];
	bool discovery;
};

/*
 * Answer one datagram that arrived on slot `in` from `from`.
 * Returns the response length (written to out), the slot to send it from in
 * *out_slot and, in *out_port, the port to send it to: the source port, or
 * the RESPONSE-PORT a discovery client asked for (RFC 5780 §7.5: always the
 * requester's own address, so it cannot aim at anyone else). Returns 0 to
 * drop (*why says why: "malformed: ...", "not a binding request", ...).
 */
size_t mk_stunsrv_answer(const struct mk_stunsrv_ctx *ctx, int in,
    const struct mk_addr *from, const uint8_t *req, size_t len,
    uint8_t *out, size_t cap, int *out_slot, uint16_t *out_port,
    const char **why);

/*
 * Open the responder: primary address (port 0: any free port), optional
 * alternate address (NULL = none) and alternate port (used only with an
 * alternate address; 0 means 3479, or any free port when the primary's is
 * 0). The alternate address listens on the primary's real port and on the
 * alternate port. Returns 0, or -1 with errno and *why.
 */
int mk_stunsrv_open(struct mk_stunsrv **out, const struct mk_addr *primary,
    const struct mk_addr *alt, uint16_t alt_port, const char **why);
/* Register the sockets with a loop; the loop then serves requests. */
int mk_stunsrv_attach(struct mk_stunsrv *s, struct mk_loop *l);
void mk_stunsrv_detach(struct mk_stunsrv *s, struct mk_loop *l);
/* Serve whatever is queued on every socket (for callers without a loop). */
void mk_stunsrv_poll(struct mk_stunsrv *s);
const struct mk_stunsrv_ctx *mk_stunsrv_ctx(const struct mk_stunsrv *s);
const struct mk_stunsrv_stats *mk_stunsrv_stats(const struct mk_stunsrv *s);
void mk_stunsrv_free(struct mk_stunsrv *s);

#endif
