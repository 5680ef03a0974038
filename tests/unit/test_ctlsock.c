/* SPDX-License-Identifier: MIT */
/* lib/ctlsock: request lines fed in pieces, and a real exchange over a unix
 * socket with the server's loop in a child process. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctlsock.h"
#include "loop.h"
#include "t.h"

static void
test_feed(void)
{
	struct mk_ctl_req r;
	char big[MK_CTL_REQ_MAX + 1];

	memset(&r, 0, sizeof(r));
	CHECK(mk_ctl_feed(&r, "sta", 3) == MK_CTL_MORE);
	CHECK(mk_ctl_feed(&r, "tus json\r\nrest", 14) == MK_CTL_LINE);
	CHECK_STR(r.line, "status json");

	memset(&r, 0, sizeof(r));
	CHECK(mk_ctl_feed(&r, "\n", 1) == MK_CTL_LINE);
	CHECK_STR(r.line, "");

	memset(&r, 0, sizeof(r));
	CHECK(mk_ctl_feed(&r, "st\0atus\n", 8) == MK_CTL_BAD);

	/* the longest line that fits, and one byte more */
	memset(&r, 0, sizeof(r));
	memset(big, 'a', sizeof(big));
	big[MK_CTL_REQ_MAX - 1] = '\n';
	CHECK(mk_ctl_feed(&r, big, MK_CTL_REQ_MAX) == MK_CTL_LINE);
	CHECK(strlen(r.line) == MK_CTL_REQ_MAX - 1);
	memset(&r, 0, sizeof(r));
	big[MK_CTL_REQ_MAX - 1] = 'a';
	big[MK_CTL_REQ_MAX] = '\n';
	CHECK(mk_ctl_feed(&r, big, sizeof(big)) == MK_CTL_BAD);
}

static void
echo(void *arg, const char *line, FILE *f)
{
	struct mk_loop *l = arg;

	fprintf(f, "you said <%s>\n", line);
	if (strcmp(line, "quit") == 0)
		mk_loop_stop(l);
}

/* The server: answers requests until "quit", then exits. */
static void
serve(const char *path, int ready_fd)
{
	struct mk_loop l;
	struct mk_ctl c;

	if (mk_loop_init(&l) != 0 || mk_ctl_listen(&c, &l, path, echo,
	    &l) != 0)
		_exit(1);
	if (write(ready_fd, "r", 1) != 1)
		_exit(1);
	mk_loop_run(&l);
	mk_ctl_close(&c);
	mk_loop_free(&l);
	_exit(access(path, F_OK) == 0 ? 2 : 0);
}

static void
test_exchange(void)
{
	char path[] = "/tmp/mk-ctl-XXXXXX", sock[64], buf[256];
	int ready[2], out[2], st;
	struct mk_loop l;
	struct mk_ctl c2;
	size_t len;
	ssize_t n;
	pid_t pid;

	REQUIRE_VOID(mkdtemp(path) != NULL);
	snprintf(sock, sizeof(sock), "%s/s", path);
	/* nobody listens yet */
	CHECK(mk_ctl_ask(sock, "status", STDOUT_FILENO) != 0 &&
	    errno == ENOENT);
	REQUIRE_VOID(pipe(ready) == 0 && pipe(out) == 0);
	REQUIRE_VOID((pid = fork()) >= 0);
	if (pid == 0)
		serve(sock, ready[1]);
	REQUIRE_VOID(read(ready[0], buf, 1) == 1);

	/* a second server for the same path is refused while one answers */
	REQUIRE_VOID(mk_loop_init(&l) == 0);
	CHECK(mk_ctl_listen(&c2, &l, sock, echo, &l) != 0 &&
	    errno == EADDRINUSE);
	mk_ctl_close(&c2);	/* a no-op on one that never listened */
	mk_loop_free(&l);

	CHECK(mk_ctl_ask(sock, "status", out[1]) == 0);
	CHECK(mk_ctl_ask(sock, "status json", out[1]) == 0);
	CHECK(mk_ctl_ask(sock, "quit", out[1]) == 0);
	close(out[1]);
	for (len = 0; (n = read(out[0], buf + len, sizeof(buf) - 1 -
	    len)) > 0;)
		len += (size_t)n;
	buf[len] = '\0';
	/* (the server stops in its handler: "quit" gets no reply) */
	CHECK_STR(buf, "you said <status>\nyou said <status json>\n");
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
	    WEXITSTATUS(st) == 0);
	/* gone with its server */
	CHECK(mk_ctl_ask(sock, "status", STDOUT_FILENO) != 0 &&
	    errno == ENOENT);
	/* a line that cannot be a request is refused before connecting */
	memset(buf, 'x', MK_CTL_REQ_MAX);
	buf[MK_CTL_REQ_MAX] = '\0';
	CHECK(mk_ctl_ask(sock, buf, STDOUT_FILENO) != 0 &&
	    errno == EMSGSIZE);
	close(ready[0]);
	close(ready[1]);
	close(out[0]);
	rmdir(path);
}

static void
test_stale_and_long(void)
{
	char path[] = "/tmp/mk-ctl-XXXXXX", sock[64], lng[200];
	struct sockaddr_un sun;
	struct mk_loop l;
	struct mk_ctl c;
	int fd;

	REQUIRE_VOID(mkdtemp(path) != NULL);
	snprintf(sock, sizeof(sock), "%s/s", path);
	/* a socket file left by a process that died: replaced */
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, sock, strlen(sock) + 1);
	REQUIRE_VOID((fd = socket(AF_UNIX, SOCK_STREAM, 0)) >= 0);
	REQUIRE_VOID(bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
	close(fd);
	REQUIRE_VOID(mk_loop_init(&l) == 0);
	CHECK(mk_ctl_listen(&c, &l, sock, echo, &l) == 0);
	mk_ctl_close(&c);
	CHECK(access(sock, F_OK) != 0);
	memset(lng, 'a', sizeof(lng) - 1);
	lng[sizeof(lng) - 1] = '\0';
	CHECK(mk_ctl_listen(&c, &l, lng, echo, &l) != 0 &&
	    errno == ENAMETOOLONG);
	mk_loop_free(&l);
	rmdir(path);
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	alarm(20);	/* a server that never answers fails the test */
	test_feed();
	test_exchange();
	test_stale_and_long();
	return t_done("ctlsock");
}
