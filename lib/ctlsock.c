/* SPDX-License-Identifier: MIT */
/* A local control socket: one request line, one reply (see ctlsock.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctlsock.h"
#include "util.h"

#define CTL_TIMEOUT_US	2000000	/* to send the line, and to read the reply */

enum mk_ctl_feed_rc
mk_ctl_feed(struct mk_ctl_req *r, const void *buf, size_t n)
{
	const char *in = buf;
	size_t i;

	for (i = 0; i < n; i++) {
		if (in[i] == '\n') {
			/* a CR before it is the client's line ending too */
			if (r->len > 0 && r->line[r->len - 1] == '\r')
				r->len--;
			r->line[r->len] = '\0';
			return MK_CTL_LINE;
		}
		if (in[i] == '\0' || r->len == sizeof(r->line) - 1)
			return MK_CTL_BAD;
		r->line[r->len++] = in[i];
	}
	return MK_CTL_MORE;
}

static void
conn_close(struct mk_ctl_conn *c)
{
	struct mk_loop *l = c->ctl->loop;

	mk_timer_cancel(l, &c->timeout);
	mk_loop_del(l, &c->io);
	close(c->io.fd);
	free(c->out);
	c->out = NULL;
	c->used = false;
}

static void
on_conn_timeout(struct mk_loop *l, struct mk_timer *t)
{
	(void)l;
	conn_close(t->arg);	/* a client that never asks, or never reads */
}

/* The whole reply, made at once: a status is small, and the client may be
 * slow to read it while the state it describes moves on. */
static int
conn_reply(struct mk_ctl_conn *c)
{
	FILE *f;

	if ((f = open_memstream(&c->out, &c->out_len)) == NULL)
		return -1;
	c->ctl->fn(c->ctl->arg, c->req.line, f);
	if (fclose(f) != 0)
		return -1;
	c->replying = true;
	return mk_loop_mod(c->ctl->loop, &c->io, EPOLLOUT);
}

static void
conn_read(struct mk_ctl_conn *c)
{
	char buf[MK_CTL_REQ_MAX];
	ssize_t n;

	n = read(c->io.fd, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(c);
		return;
	}
	switch (mk_ctl_feed(&c->req, buf, (size_t)n)) {
	case MK_CTL_MORE:
		return;
	case MK_CTL_LINE:
		if (conn_reply(c) != 0)
			conn_close(c);
		return;
	case MK_CTL_BAD:
		conn_close(c);
		return;
	}
}

static void
conn_write(struct mk_ctl_conn *c)
{
	ssize_t n;

	n = send(c->io.fd, c->out + c->out_off, c->out_len - c->out_off,
	    MSG_NOSIGNAL);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0)
		c->out_off += (size_t)n;
	if (n <= 0 || c->out_off == c->out_len)
		conn_close(c);
}

static void
on_conn(struct mk_loop *l, struct mk_io *io, uint32_t events)
{
	struct mk_ctl_conn *c = io->arg;

	(void)l;
	(void)events;
	if (c->replying)
		conn_write(c);
	else
		conn_read(c);
}

static struct mk_ctl_conn *
conn_free_slot(struct mk_ctl *ctl)
{
	size_t i;

	for (i = 0; i < MK_CTL_CONNS; i++)
		if (!ctl->conns[i].used)
			return &ctl->conns[i];
	return NULL;
}

static void
on_accept(struct mk_loop *l, struct mk_io *io, uint32_t events)
{
	struct mk_ctl *ctl = io->arg;
	struct mk_ctl_conn *c;
	int fd;

	(void)events;
	while ((fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK |
	    SOCK_CLOEXEC)) >= 0) {
		if ((c = conn_free_slot(ctl)) == NULL) {
			close(fd);	/* busy: the client sees EOF */
			continue;
		}
		memset(c, 0, sizeof(*c));
		c->used = true;
		c->ctl = ctl;
		c->io.fd = fd;
		c->io.fn = on_conn;
		c->io.arg = c;
		mk_timer_init(&c->timeout, on_conn_timeout, c);
		if (mk_loop_add(l, &c->io, EPOLLIN) != 0) {
			close(fd);
			c->used = false;
			continue;
		}
		mk_timer_in(l, &c->timeout, CTL_TIMEOUT_US);
	}
}

static int
ctl_addr(struct sockaddr_un *sun, const char *path)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sun->sun_path, path, strlen(path) + 1);
	return 0;
}

int
mk_ctl_listen(struct mk_ctl *c, struct mk_loop *l, const char *path,
    mk_ctl_fn fn, void *arg)
{
	struct sockaddr_un sun;
	int fd, e;

	memset(c, 0, sizeof(*c));
	if (ctl_addr(&sun, path) != 0)
		return -1;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) < 0)
		return -1;
	/* one that answers belongs to a running process; a file nobody
	 * answers on is left from one that died, and is ours to replace */
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		close(fd);
		errno = EADDRINUSE;
		return -1;
	}
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 ||
	    listen(fd, MK_CTL_CONNS) != 0)
		goto fail;
	c->fn = fn;
	c->arg = arg;
	memcpy(c->path, path, strlen(path) + 1);
	c->io.fd = fd;
	c->io.fn = on_accept;
	c->io.arg = c;
	if (mk_loop_add(l, &c->io, EPOLLIN) != 0) {
		unlink(path);
		goto fail;
	}
	c->loop = l;	/* listening: mk_ctl_close has work to do */
	return 0;
fail:
	e = errno;
	close(fd);
	errno = e;
	return -1;
}

void
mk_ctl_close(struct mk_ctl *c)
{
	size_t i;

	if (c->loop == NULL)
		return;		/* zeroed, or never listening */
	for (i = 0; i < MK_CTL_CONNS; i++)
		if (c->conns[i].used)
			conn_close(&c->conns[i]);
	mk_loop_del(c->loop, &c->io);
	close(c->io.fd);
	c->io.fd = -1;
	unlink(c->path);
	c->path[0] = '\0';
	c->loop = NULL;
}

int
mk_ctl_ask(const char *path, const char *line, int out_fd)
{
	struct sockaddr_un sun;
	char buf[4096];
	ssize_t n;
	size_t len = strlen(line);
	int fd, e;

	if (ctl_addr(&sun, path) != 0)
		return -1;
	if (len + 1 >= MK_CTL_REQ_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	memcpy(buf, line, len);
	buf[len++] = '\n';
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	/* one send, without SIGPIPE if the server is gone already */
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 ||
	    send(fd, buf, len, MSG_NOSIGNAL) != (ssize_t)len)
		goto fail;
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		if (mk_write_all(out_fd, buf, (size_t)n) != 0)
			goto fail;
	}
	close(fd);
	return 0;
fail:
	e = errno;
	close(fd);
	errno = e;
	return -1;
}
