/* SPDX-License-Identifier: MIT */
/* Helper threads for the blocking parts of port mapping, and the
 * asynchronous interface an event loop uses. */
#include "portmap_int.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct mk_pm_task {
	atomic_int refs;	/* the caller's and the thread's */
	atomic_bool done;
	int efd;
	void (*fn)(void *);
	void *arg;
};

static void
task_unref(struct mk_pm_task *t)
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
	struct mk_pm_task *t = p;
	uint64_t one = 1;
	ssize_t n;

	t->fn(t->arg);
	atomic_store(&t->done, true);
	n = write(t->efd, &one, sizeof(one));
	(void)n;	/* an eventfd counter cannot overflow from one write */
	task_unref(t);
	return NULL;
}

struct mk_pm_task *
mk_pm_task_start(void (*fn)(void *), void *arg, const char **why)
{
	struct mk_pm_task *t;
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
	 * thread (its signalfd), and SIGPIPE from a SOAP connection the
	 * router closed is never delivered. */
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
mk_pm_task_fd(const struct mk_pm_task *t)
{
	return t->efd;
}

bool
mk_pm_task_done(const struct mk_pm_task *t)
{
	return atomic_load(&t->done);
}

void *
mk_pm_task_arg(const struct mk_pm_task *t)
{
	return t->arg;
}

void
mk_pm_task_put(struct mk_pm_task *t)
{
	if (t != NULL)
		task_unref(t);
}

/* ---- the asynchronous interface ---- */

struct mk_pm_async {
	struct mk_pm_task *task;
};

static void
job_run(void *p)
{
	struct mk_pm_job *j = p;

	j->why = NULL;
	switch (j->op) {
	case MK_PM_OP_PROBE:
		j->rc = mk_pm_probe(&j->probe, j->which, j->timeout_us,
		    &j->why);
		break;
	case MK_PM_OP_MAP:
		j->rc = mk_pm_map(&j->mapping, j->use_probe ? &j->probe : NULL,
		    j->which, j->internal_port, j->lifetime, &j->why);
		break;
	case MK_PM_OP_RENEW:
		j->rc = mk_pm_renew(&j->mapping, &j->why);
		break;
	case MK_PM_OP_UNMAP:
		j->rc = mk_pm_unmap(&j->mapping, &j->why);
		break;
	}
}

struct mk_pm_async *
mk_pm_async_start(const struct mk_pm_job *job, const char **why)
{
	struct mk_pm_async *a;
	struct mk_pm_job *copy;

	if (job->op < MK_PM_OP_PROBE || job->op > MK_PM_OP_UNMAP) {
		*why = "unknown port-mapping operation";
		return NULL;
	}
	if ((a = malloc(sizeof(*a))) == NULL ||
	    (copy = malloc(sizeof(*copy))) == NULL) {
		free(a);
		*why = "out of memory";
		return NULL;
	}
	*copy = *job;
	copy->rc = -1;
	copy->why = NULL;
	if ((a->task = mk_pm_task_start(job_run, copy, why)) == NULL) {
		free(copy);
		free(a);
		return NULL;
	}
	return a;
}

int
mk_pm_async_fd(const struct mk_pm_async *a)
{
	return mk_pm_task_fd(a->task);
}

int
mk_pm_async_result(struct mk_pm_async *a, struct mk_pm_job *out)
{
	uint64_t v;
	ssize_t n;

	if (!mk_pm_task_done(a->task))
		return 0;
	n = read(mk_pm_task_fd(a->task), &v, sizeof(v));
	(void)n;	/* only drains the eventfd: the flag is the truth */
	*out = *(const struct mk_pm_job *)mk_pm_task_arg(a->task);
	return 1;
}

void
mk_pm_async_free(struct mk_pm_async *a)
{
	if (a == NULL)
		return;
	mk_pm_task_put(a->task);
	free(a);
}
