/* SPDX-License-Identifier: MIT */
/*
 * What the DERP server and client share below the protocol: queues of
 * whole frames, writing them out (writev on plain TCP, 64 KiB TLS writes
 * staged from the same frames), and reading into one buffer shared by
 * every connection of the process. An idle connection holds no buffer at
 * all: only the bytes of a frame that arrived in part are kept, in a
 * block of their own size. The loop is single-threaded, so sharing the
 * read buffer is safe as long as a connection's frames are handled before
 * the next read, which both users do.
 */
#ifndef MK_DERP_CONN_H
#define MK_DERP_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tls.h"

/* One frame (or any bytes) to write; data follows the header. */
struct mk_dpkt {
	struct mk_dpkt	*next;
	uint32_t	 len;
	uint8_t		 data[];
};

struct mk_dq {
	struct mk_dpkt	*head;
	struct mk_dpkt	*tail;
	uint32_t	 n;
	uint64_t	 bytes;
};

struct mk_dconn {
	int		 fd;
	struct mk_tls	*tls;		/* NULL: plain */
	struct mk_dq	 wlist;		/* committed to the writer */
	uint32_t	 woff;		/* bytes of wlist.head written */
	uint8_t		*pend;		/* start of a frame read in part */
	uint32_t	 pend_len;
	uint64_t	 skip;		/* bytes of an ignored frame to drop */
	bool		 eof;		/* the peer closed its side */
	bool		 read_wants_write; /* TLS read waits for EPOLLOUT */
	bool		 write_wants_read; /* TLS write waits for EPOLLIN */
};

/* The shared read buffer's size: the largest frame either side accepts
 * whole (ClientInfo, 256 KiB), with room to read more behind it. */
#define MK_DCONN_RBUF	((256U << 10) + (64U << 10))
/* How much the writer commits from the queues at a time. */
#define MK_DCONN_BATCH	(64U << 10)

/* A packet of len bytes (data uninitialised), or NULL. */
struct mk_dpkt *mk_dpkt_new(size_t len);
void mk_dq_push(struct mk_dq *q, struct mk_dpkt *p);
struct mk_dpkt *mk_dq_pop(struct mk_dq *q);
/* Free everything queued; returns how many packets there were. */
uint32_t mk_dq_clear(struct mk_dq *q);
/* Move whole packets from src to the writer until it holds `batch`
 * bytes (at least one packet if src has any). Returns packets moved. */
uint32_t mk_dconn_commit(struct mk_dconn *d, struct mk_dq *src,
    size_t batch);

/*
 * Write what the writer holds. 1: all written; 0: the socket is full
 * (wait for mk_dconn_want_events); -1 with *why: the connection failed.
 * *bytes and *frames (may be NULL) add what went out completely.
 */
int mk_dconn_flush(struct mk_dconn *d, uint64_t *bytes, uint64_t *frames,
    const char **why);
bool mk_dconn_writing(const struct mk_dconn *d);

/*
 * Read what has arrived, behind any kept partial frame, into the shared
 * buffer; *buf and *len then hold everything unprocessed. 1: new bytes;
 * 0: nothing now (EAGAIN); 2: end of stream (d->eof set; *len may still
 * hold a partial frame); -1 with *why: read error.
 */
int mk_dconn_fill(struct mk_dconn *d, uint8_t **buf, size_t *len,
    const char **why);
/* After handling frames: keep the n unprocessed bytes at rest. 0, or -1
 * when out of memory. */
int mk_dconn_keep(struct mk_dconn *d, const uint8_t *rest, size_t n);
/* May there be more to read without another readiness event (TLS)? */
bool mk_dconn_more(const struct mk_dconn *d);

/* The epoll events a blocked connection waits for, beyond EPOLLIN. */
uint32_t mk_dconn_want_events(const struct mk_dconn *d);

/* Release buffers and the TLS state; close fd. Counts queued packets
 * freed (not including the caller's own queues). */
uint32_t mk_dconn_close(struct mk_dconn *d);

#endif
