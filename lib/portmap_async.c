/* SPDX-License-Identifier: MIT */
/* The asynchronous port-mapping interface an event loop uses: each
 * operation on a lib/task thread. */
#include "portmap_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the asynchronous interface ---- */

struct mk_pm_async {
	struct mk_task *task;
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
	if ((a->task = mk_task_start(job_run, copy, why)) == NULL) {
		free(copy);
		free(a);
		return NULL;
	}
	return a;
}

int
mk_pm_async_fd(const struct mk_pm_async *a)
{
	return mk_task_fd(a->task);
}

int
mk_pm_async_result(struct mk_pm_async *a, struct mk_pm_job *out)
{
	uint64_t v;
	ssize_t n;

	if (!mk_task_done(a->task))
		return 0;
	n = read(mk_task_fd(a->task), &v, sizeof(v));
	(void)n;	/* only drains the eventfd: the flag is the truth */
	*out = *(const struct mk_pm_job *)mk_task_arg(a->task);
	return 1;
}

void
mk_pm_async_free(struct mk_pm_async *a)
{
	if (a == NULL)
		return;
	mk_task_put(a->task);
	free(a);
}
