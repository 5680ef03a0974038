/* SPDX-License-Identifier: MIT */
/*
 * A local control socket on a unix path, driven by the loop: each
 * connection sends one request line ("status\n"), gets one reply, and is
 * closed. `punch status` asks a running node this way. A client that never
 * finishes its line, or never reads the reply, is closed after 2 s; past
 * MK_CTL_CONNS at once, a new client sees EOF.
 */
#ifndef MK_CTLSOCK_H
#define MK_CTLSOCK_H
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/un.h>

#include "loop.h"

#define MK_CTL_REQ_MAX	64	/* a request line, newline included */
#define MK_CTL_CONNS	8

/* A request line being read. */
struct mk_ctl_req {
	char	 line[MK_CTL_REQ_MAX];
	size_t	 len;
};

enum mk_ctl_feed_rc {
	MK_CTL_MORE,	/* no newline yet */
	MK_CTL_LINE,	/* r->line is the request, without its newline */
	MK_CTL_BAD,	/* too long, or a NUL byte in it */
};

/* Add n bytes read off the socket; what follows the newline is ignored. */
enum mk_ctl_feed_rc mk_ctl_feed(struct mk_ctl_req *r, const void *buf,
    size_t n);

/* Write the reply to the request line into f (a memory stream). */
typedef void (*mk_ctl_fn)(void *arg, const char *line, FILE *f);

struct mk_ctl;

struct mk_ctl_conn {
	struct mk_io	 io;
	struct mk_ctl	*ctl;
	struct mk_ctl_req req;
	char		*out;
	size_t		 out_len, out_off;
	struct mk_timer	 timeout;
	bool		 used, replying;
};

struct mk_ctl {
	struct mk_loop	*loop;
	struct mk_io	 io;
	mk_ctl_fn	 fn;
	void		*arg;
	char		 path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct mk_ctl_conn conns[MK_CTL_CONNS];
};

/*
 * Listen on path (its directory must exist). -1 with errno on failure:
 * EADDRINUSE when a running process answers there already (a stale socket
 * file is replaced), ENAMETOOLONG for a path sun_path cannot hold.
 */
int mk_ctl_listen(struct mk_ctl *c, struct mk_loop *l, const char *path,
    mk_ctl_fn fn, void *arg);
/* Close every connection, the listener, and remove the socket file. */
void mk_ctl_close(struct mk_ctl *c);
/* Ask the process listening on path: send line, copy the reply to out_fd.
 * -1 with errno (ENOENT or ECONNREFUSED: nobody listens). */
int mk_ctl_ask(const char *path, const char *line, int out_fd);
#endif
