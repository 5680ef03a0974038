/* SPDX-License-Identifier: MIT */
#include "lookup.h"

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"
#include "task.h"

/* What the thread fills in; the task owns it (lib/task frees it). */
struct lookup_job {
	char		 host[NI_MAXHOST];
	char		 port[8];
	int		 family;
	int		 socktype;
	int		 gai_err;
	struct mk_addr	 addrs[MK_LOOKUP_MAX];
	size_t		 n;
};

struct mk_lookup {
	struct mk_task	*task;
};

static void
lookup_run(void *p)
{
	struct lookup_job *j = p;
	struct addrinfo hints, *res = NULL, *ai;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = j->family;
	hints.ai_socktype = j->socktype;
	j->gai_err = getaddrinfo(j->host, j->port, &hints, &res);
	for (ai = res; j->gai_err == 0 && ai != NULL && j->n < MK_LOOKUP_MAX;
	    ai = ai->ai_next) {
		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		mk_addr_from_sa(&j->addrs[j->n++], ai->ai_addr,
		    ai->ai_addrlen);
	}
	if (res != NULL)
		freeaddrinfo(res);
}

struct mk_lookup *
mk_lookup_start(const char *host, uint16_t port, int family, int socktype,
    const char **why)
{
	struct mk_lookup *l;
	struct lookup_job *j;

	if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6) {
		*why = "bad address family";
		errno = EINVAL;
		return NULL;
	}
	if (strlen(host) >= sizeof(j->host)) {
		*why = "host name too long";
		errno = ENAMETOOLONG;
		return NULL;
	}
	if ((l = malloc(sizeof(*l))) == NULL ||
	    (j = calloc(1, sizeof(*j))) == NULL) {
		free(l);
		*why = "out of memory";
		return NULL;
	}
	snprintf(j->host, sizeof(j->host), "%s", host);
	snprintf(j->port, sizeof(j->port), "%u", port);
	j->family = family;
	j->socktype = socktype;
	if ((l->task = mk_task_start(lookup_run, j, why)) == NULL) {
		free(j);
		free(l);
		return NULL;
	}
	return l;
}

int
mk_lookup_fd(const struct mk_lookup *l)
{
	return mk_task_fd(l->task);
}

int
mk_lookup_result(struct mk_lookup *l, struct mk_addr *out, size_t max,
    size_t *n, const char **why)
{
	const struct lookup_job *j;
	size_t i;

	*n = 0;
	if (!mk_task_done(l->task))
		return 0;
	j = mk_task_arg(l->task);
	if (j->gai_err != 0) {
		*why = gai_strerror(j->gai_err);
		return -1;
	}
	if (j->n == 0) {
		*why = "no address of that family";
		return -1;
	}
	for (i = 0; i < j->n && i < max; i++)
		out[i] = j->addrs[i];
	*n = i;
	return 1;
}

int
mk_lookup_wait(const struct mk_lookup *l, uint64_t deadline_us)
{
	struct pollfd pfd = { .fd = mk_task_fd(l->task), .events = POLLIN };
	uint64_t now, ms;

	while (!mk_task_done(l->task)) {
		now = mk_now_us();
		if (now >= deadline_us)
			return 0;
		/* rounded up, so a wait never ends a little early and spins */
		ms = (deadline_us - now + 999) / 1000;
		(void)poll(&pfd, 1, ms > INT_MAX ? INT_MAX : (int)ms);
	}
	return 1;
}

void
mk_lookup_free(struct mk_lookup *l)
{
	if (l == NULL)
		return;
	mk_task_put(l->task);
	free(l);
}
