/* SPDX-License-Identifier: MIT */
/*
 * Batched UDP I/O: up to cap datagrams per system call, received with
 * recvmmsg and sent with sendmmsg. A batch is used either to receive or to
 * send. A packet path forwards without copying: push_ref queues a datagram
 * that lives in another batch's buffers (or anywhere that outlives the
 * flush).
 *
 * On a wildcard socket a reply must leave from the address the query came
 * to. A batch made with mk_udpbatch_init_pktinfo carries, per datagram,
 * that local address in (mk_udpbatch_local) and a source address out
 * (mk_udpbatch_set_src), as IP_PKTINFO / IPV6_PKTINFO control messages;
 * a batch made with mk_udpbatch_init has no control buffers and pays
 * nothing for this.
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
	/* slots [0, dirty) were written since they were last set up for
	 * receiving: a receive sets up only those, not all cap */
	unsigned		 dirty;
	size_t			 size;	/* bytes per buffer */
	uint8_t			*buf;	/* cap buffers of size bytes */
	struct mmsghdr		*msg;
	struct iovec		*iov;
	struct sockaddr_storage	*name;
	uint8_t			*ctrl;	/* cap control buffers, or NULL */
	/* UDP GSO (mk_udpbatch_gso): merged messages, their control
	 * buffers and their datagram counts; NULL when off */
	struct mmsghdr		*gmsg;
	uint8_t			*gctrl;
	unsigned		*gsegs;
};

/* Our own address a datagram was sent to (port 0), and the interface it
 * came in on: where to answer from. */
struct mk_udp_local {
	struct mk_addr	 addr;
	unsigned	 ifindex;
};

/* What one flush did. */
struct mk_udpbatch_sent {
	unsigned	 sent;
	unsigned	 messages;	/* that carried them (fewer with GSO) */
	unsigned	 dropped;	/* refused by the kernel, skipped */
	int		 last_errno;	/* of the last one dropped, or 0 */
};

/* 0, or -1 with errno (EINVAL for cap 0 or above the maximum, or size 0;
 * ENOMEM). */
int mk_udpbatch_init(struct mk_udpbatch *b, unsigned cap, size_t size);
/* The same, with a control buffer per datagram for the local address
 * (the socket needs mk_udp_want_pktinfo). */
int mk_udpbatch_init_pktinfo(struct mk_udpbatch *b, unsigned cap,
    size_t size);
void mk_udpbatch_free(struct mk_udpbatch *b);

/* Ask the kernel for the local address of every datagram received on fd
 * (IP_PKTINFO, or IPV6_RECVPKTINFO on an IPv6 socket, which also covers
 * IPv4 on a dual-stack one). 0, or -1 with errno. */
int mk_udp_want_pktinfo(int fd);

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
/* The local address datagram i of the last receive was sent to (unmapped).
 * false when none came with it (a batch without control buffers, or a
 * socket without mk_udp_want_pktinfo). */
bool mk_udpbatch_local(const struct mk_udpbatch *b, unsigned i,
    struct mk_udp_local *local);

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
/* Send the datagram queued last from src (a mk_udpbatch_local answer): 0,
 * or -1 with errno (EINVAL: nothing queued, a batch without control
 * buffers, or src not IPv4 or IPv6). */
int mk_udpbatch_set_src(struct mk_udpbatch *b,
    const struct mk_udp_local *src);
/*
 * Send with UDP GSO (UDP_SEGMENT) from now on: a flush hands a run of
 * queued datagrams to one destination, of one length (the run's last may
 * be shorter), to the kernel as one message, which crosses the stack (and
 * a router's) as one packet until it is cut up at the far socket or the
 * device. Datagrams with their own source (set_src) go alone. When the
 * kernel refuses GSO for a run, that run goes datagram by datagram, and on
 * EIO (no checksum offload on the way out) GSO is off for good.
 * 0, or -1 with errno (ENOMEM).
 */
int mk_udpbatch_gso(struct mk_udpbatch *b);
/*
 * Send everything queued. A datagram the kernel refuses (a full socket
 * buffer, an unreachable destination, a wrong family) is dropped, as a
 * full NIC queue drops, and the rest still go. The batch is empty after.
 */
void mk_udpbatch_flush(struct mk_udpbatch *b, int fd,
    struct mk_udpbatch_sent *st);

/* One datagram outside a batch (an answer that comes later), from src
 * when src is not NULL. The sendmsg result. */
ssize_t mk_udp_send_from(int fd, const void *data, size_t len,
    const struct mk_addr *to, const struct mk_udp_local *src);

#endif
