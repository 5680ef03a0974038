/* SPDX-License-Identifier: MIT */
/* The socket hand-off to a command (handoff.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "handoff.h"
#include "log.h"

#define HANDOFF_FD	3

/* fd as descriptor 3: inherited (no close-on-exec) and blocking, which
 * a command that reads it with plain read(2) expects. */
static int
as_fd3(int fd)
{
	int fl;

	if (fd != HANDOFF_FD) {
		if (dup2(fd, HANDOFF_FD) != HANDOFF_FD)
			return -1;
		close(fd);
	}
	if (fcntl(HANDOFF_FD, F_SETFD, 0) != 0 ||
	    (fl = fcntl(HANDOFF_FD, F_GETFL)) < 0 ||
	    fcntl(HANDOFF_FD, F_SETFL, fl & ~O_NONBLOCK) != 0)
		return -1;
	return 0;
}

int
mk_handoff_exec(int fd, const struct mk_addr *dial,
    const struct mk_addr *remote, char **cmd)
{
	char s[MK_ADDRSTRLEN];

	if (connect(fd, &dial->sa, dial->len) != 0) {
		mk_err("connect: %s", strerror(errno));
		return MK_EXIT_FAIL;
	}
	if (as_fd3(fd) != 0) {
		mk_err("descriptor 3: %s", strerror(errno));
		return MK_EXIT_FAIL;
	}
	if (setenv("MESHKIT_FD", "3", 1) != 0 || setenv("MESHKIT_REMOTE",
	    mk_addr_fmt(remote, s, sizeof(s)), 1) != 0) {
		mk_err("setenv: %s", strerror(errno));
		return MK_EXIT_FAIL;
	}
	fflush(stdout);
	execvp(cmd[0], cmd);
	mk_err("%s: %s", cmd[0], strerror(errno));
	return errno == ENOENT ? 127 : 126;
}
