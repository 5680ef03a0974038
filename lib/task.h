/* SPDX-License-Identifier: MIT */
/*
 * Blocking work off the event loop: one call of fn(arg) on a detached
 * thread with every signal blocked, announced through an eventfd the loop
 * can watch. For what has no non-blocking form: getaddrinfo, miniupnpc's
 * SOAP calls. The loop thread never waits on it.
 */
#ifndef MK_TASK_H
#define MK_TASK_H

#include <stdbool.h>

/*
 * The task owns arg (heap memory, freed with free()). When fn returns,
 * the task's eventfd becomes readable and mk_task_done turns true; only
 * then may the caller read arg. Whoever drops the last reference (the
 * caller with mk_task_put, or the thread when it ends after the caller
 * gave up) frees arg and closes the eventfd, so a caller may walk away
 * from a task that is still blocked.
 */
struct mk_task;

/* NULL with *why (and errno) when no thread could be started; arg is
 * then still the caller's. */
struct mk_task *mk_task_start(void (*fn)(void *), void *arg, const char **why);
/* Readable (EPOLLIN) once fn has returned. */
int mk_task_fd(const struct mk_task *t);
bool mk_task_done(const struct mk_task *t);
void *mk_task_arg(const struct mk_task *t);
/* Drop the caller's reference; NULL is allowed. */
void mk_task_put(struct mk_task *t);

#endif
