/* SPDX-License-Identifier: MIT */
#include "task.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct mk_task {
	atomic_int refs;	/* the caller's and the thread's */
	atomic_bool done;
	int efd;
	void (*fn)(void *);
	void *arg;
};

static void
task_unref(struct mk_task *t)
{
	if (atomic_fetch_sub(&t->refs, 1) != 1)
		return;
	close(t->efd);
	free(t->arg);
	free(t);
}

static void *
task_main(void *p)
{
	struct mk_task *t = p;
	uint64_t one = 1;
	ssize_t n;

	t->fn(t->arg);
	atomic_store(&t->done, true);
	n = write(t->efd, &one, sizeof(one));
	(void)n;	/* an eventfd counter cannot overflow from one write */
	task_unref(t);
	return NULL;
}

struct mk_task *
mk_task_start(void (*fn)(void *), void *arg, const char **why)
{
	struct mk_task *t;
	pthread_attr_t attr;
	pthread_t tid;
	sigset_t all, old;
	int err;

	if ((t = calloc(1, sizeof(*t))) == NULL) {
		*why = "out of memory";
		return NULL;
	}
	if ((t->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) == -1) {
		free(t);
		*why = "eventfd failed";
		return NULL;
	}
	atomic_init(&t->refs, 2);
	atomic_init(&t->done, false);
	t->fn = fn;
	t->arg = arg;
	/* The thread inherits the mask: signals stay with the caller's
	 * thread (its signalfd), and SIGPIPE from a connection the far end
	 * closed (a router's SOAP server) is never delivered. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if ((err = pthread_attr_init(&attr)) == 0) {
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		err = pthread_create(&tid, &attr, task_main, t);
		pthread_attr_destroy(&attr);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err != 0) {
		close(t->efd);
		free(t);
		errno = err;
		*why = "cannot start a thread";
		return NULL;
	}
	return t;
}

int
mk_task_fd(const struct mk_task *t)
{
	return t->efd;
}

bool
mk_task_done(const struct mk_task *t)
{
	return atomic_load(&t->done);
}

void *
mk_task_arg(const struct mk_task *t)
{
	return t->arg;
}

void
mk_task_put(struct mk_task *t)
{
	if (t != NULL)
		task_unref(t);
}
