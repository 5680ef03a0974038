/* SPDX-License-Identifier: MIT */
/*
 * Batched UDP I/O: up to cap datagrams per system call, received with
 * recvmmsg and sent with sendmmsg. A batch is used either to receive or to
 * send. A packet path forwards without copying: push_ref queues a datagram
 * that lives in another batch's buffers (or anywhere that outlives the
 * flush).
 */
#ifndef MK_UDPBATCH_H
#define MK_UDPBATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "addr.h"

#define MK_UDPBATCH_MAX	1024	/* datagrams per batch, at most */

struct mk_udpbatch {
	unsigned		 cap;	/* datagrams per batch */
	unsigned		 n;	/* received, or queued to send */
	size_t			 size;	/* bytes per buffer */
	uint8_t			*buf;	/* cap buffers of size bytes */
	struct mmsghdr		*msg;
	struct iovec		*iov;
	struct sockaddr_storage	*name;
};

/* What one flush did. */
struct mk_udpbatch_sent {
	unsigned	 sent;
	unsigned	 dropped;	/* refused by the kernel, skipped */
	int		 last_errno;	/* of the last one dropped, or 0 */
};

/* 0, or -1 with errno (EINVAL for cap 0 or above the maximum, or size 0;
 * ENOMEM). */
int mk_udpbatch_init(struct mk_udpbatch *b, unsigned cap, size_t size);
void mk_udpbatch_free(struct mk_udpbatch *b);

/*
 * Receive what is waiting on fd, up to cap datagrams, without blocking.
 * Returns the count (0 when nothing was waiting), or -1 with errno for a
 * real error (never EAGAIN).
 */
int mk_udpbatch_recv(struct mk_udpbatch *b, int fd);
/*
 * Datagram i of the last receive: its bytes, length and source (unmapped).
 * *truncated is true when it was larger than the buffer (the rest is lost:
 * drop it). from and truncated may be NULL.
 */
uint8_t *mk_udpbatch_get(struct mk_udpbatch *b, unsigned i, size_t *len,
    struct mk_addr *from, bool *truncated);

/* The buffer of the next free send slot (size bytes), or NULL when the
 * batch is full: flush first. */
uint8_t *mk_udpbatch_next(struct mk_udpbatch *b);
/* Queue what was written into mk_udpbatch_next's buffer. */
void mk_udpbatch_push(struct mk_udpbatch *b, size_t len,
    const struct mk_addr *to);
/* Queue data in place, without copying: it must stay valid until the
 * flush. 0, or -1 when the batch is full. */
int mk_udpbatch_push_ref(struct mk_udpbatch *b, const void *data, size_t len,
    const struct mk_addr *to);
/*
 * Send everything queued. A datagram the kernel refuses (a full socket
 * buffer, an unreachable destination, a wrong family) is dropped, as a
 * full NIC queue drops, and the rest still go. The batch is empty after.
 */
void mk_udpbatch_flush(struct mk_udpbatch *b, int fd,
    struct mk_udpbatch_sent *st);

#endif
