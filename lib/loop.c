/* SPDX-License-Identifier: MIT */
#include "loop.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

uint64_t
mk_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t
mk_now_ms(void)
{
	return mk_now_us() / 1000;
}

int
mk_loop_init(struct mk_loop *l)
{
	memset(l, 0, sizeof(*l));
	l->sigfd = -1;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	return l->epfd < 0 ? -1 : 0;
}

static void
run_deferred(struct mk_loop *l)
{
	size_t i;

	/* calls may defer more; those run in this same pass */
	for (i = 0; i < l->n_defer; i++)
		l->defer[i].fn(l->defer[i].arg);
	l->n_defer = 0;
}

int
mk_loop_defer(struct mk_loop *l, mk_defer_fn fn, void *arg)
{
	if (l->n_defer == l->cap_defer) {
		size_t cap = l->cap_defer ? l->cap_defer * 2 : 16;
		struct mk_defer *d = realloc(l->defer, cap * sizeof(*d));

		if (d == NULL)
			return -1;
		l->defer = d;
		l->cap_defer = cap;
	}
	l->defer[l->n_defer].fn = fn;
	l->defer[l->n_defer].arg = arg;
	l->n_defer++;
	return 0;
}

void
mk_loop_free(struct mk_loop *l)
{
	run_deferred(l);
	free(l->defer);
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->sigfd >= 0)
		close(l->sigfd);
	free(l->heap);
	memset(l, 0, sizeof(*l));
	l->epfd = l->sigfd = -1;
}

static int
ctl(struct mk_loop *l, int op, struct mk_io *io, uint32_t events)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.ptr = io;
	return epoll_ctl(l->epfd, op, io->fd, &ev);
}

int
mk_loop_add(struct mk_loop *l, struct mk_io *io, uint32_t events)
{
	return ctl(l, EPOLL_CTL_ADD, io, events);
}

int
mk_loop_mod(struct mk_loop *l, struct mk_io *io, uint32_t events)
{
	return ctl(l, EPOLL_CTL_MOD, io, events);
}

int
mk_loop_del(struct mk_loop *l, struct mk_io *io)
{
	struct epoll_event *ev = l->batch;
	int i;

	for (i = l->batch_i + 1; ev != NULL && i < l->batch_n; i++) {
		if (ev[i].data.ptr == io)
			ev[i].data.ptr = NULL;
	}
	return ctl(l, EPOLL_CTL_DEL, io, 0);
}

/* Timers: a binary min-heap on when_us; each timer knows its index. */

static void
heap_set(struct mk_loop *l, size_t i, struct mk_timer *t)
{
	l->heap[i] = t;
	t->heap_index = i;
}

static void
sift_up(struct mk_loop *l, size_t i)
{
	struct mk_timer *t = l->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (l->heap[parent]->when_us <= t->when_us)
			break;
		heap_set(l, i, l->heap[parent]);
		i = parent;
	}
	heap_set(l, i, t);
}

static void
sift_down(struct mk_loop *l, size_t i)
{
	struct mk_timer *t = l->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= l->n_timers)
			break;
		if (c + 1 < l->n_timers &&
		    l->heap[c + 1]->when_us < l->heap[c]->when_us)
			c++;
		if (t->when_us <= l->heap[c]->when_us)
			break;
		heap_set(l, i, l->heap[c]);
		i = c;
	}
	heap_set(l, i, t);
}

void
mk_timer_init(struct mk_timer *t, mk_timer_fn fn, void *arg)
{
	t->when_us = 0;
	t->fn = fn;
	t->arg = arg;
	t->heap_index = SIZE_MAX;
	t->pass = 0;
}

bool
mk_timer_armed(const struct mk_timer *t)
{
	return t->heap_index != SIZE_MAX;
}

void
mk_timer_cancel(struct mk_loop *l, struct mk_timer *t)
{
	size_t i = t->heap_index;
	struct mk_timer *last;

	if (i == SIZE_MAX)
		return;
	t->heap_index = SIZE_MAX;
	last = l->heap[--l->n_timers];
	if (i == l->n_timers)
		return;
	heap_set(l, i, last);
	sift_up(l, i);
	sift_down(l, last->heap_index);
}

int
mk_timer_at(struct mk_loop *l, struct mk_timer *t, uint64_t when_us)
{
	struct mk_timer **nh;

	mk_timer_cancel(l, t);
	if (l->n_timers == l->cap_timers) {
		size_t cap = l->cap_timers ? 2 * l->cap_timers : 16;

		nh = realloc(l->heap, cap * sizeof(*nh));
		if (nh == NULL) {
			errno = ENOMEM;
			return -1;
		}
		l->heap = nh;
		l->cap_timers = cap;
	}
	/* a time in the past queues behind what the latest pass found due */
	t->when_us = when_us < l->pass_now ? l->pass_now : when_us;
	t->pass = l->pass;
	heap_set(l, l->n_timers++, t);
	sift_up(l, t->heap_index);
	return 0;
}

int
mk_timer_in(struct mk_loop *l, struct mk_timer *t, uint64_t delay_us)
{
	return mk_timer_at(l, t, mk_now_us() + delay_us);
}

static void
on_signalfd(struct mk_loop *l, struct mk_io *io, uint32_t events)
{
	struct signalfd_siginfo si;

	(void)events;
	while (read(io->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (l->sigfn != NULL)
			l->sigfn(l, (int)si.ssi_signo, l->sigarg);
	}
}

int
mk_loop_signals(struct mk_loop *l, const int *signals, size_t n,
    mk_signal_fn fn, void *arg)
{
	sigset_t set;
	size_t i;

	sigemptyset(&set);
	for (i = 0; i < n; i++)
		sigaddset(&set, signals[i]);
	if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
		return -1;
	l->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (l->sigfd < 0)
		return -1;
	l->sigfn = fn;
	l->sigarg = arg;
	l->sigio.fd = l->sigfd;
	l->sigio.fn = on_signalfd;
	l->sigio.arg = NULL;
	return mk_loop_add(l, &l->sigio, EPOLLIN);
}

/*
 * Run the timers due now, each at most once: one that is armed again
 * while the pass runs (even for a time already past) waits for the next
 * round, after epoll has had its turn, so a timer due again at once
 * cannot keep the loop from I/O.
 */
static void
run_timers(struct mk_loop *l)
{
	uint64_t now = mk_now_us();

	l->pass++;
	l->pass_now = now;
	while (l->n_timers > 0 && l->heap[0]->when_us <= now &&
	    l->heap[0]->pass != l->pass && !l->stopping) {
		struct mk_timer *t = l->heap[0];

		mk_timer_cancel(l, t);
		t->fn(l, t);
	}
}

int
mk_loop_once(struct mk_loop *l, uint64_t max_wait_us)
{
	struct epoll_event evs[64];
	uint64_t now, wait_us = max_wait_us;
	int n, i, timeout_ms;

	now = mk_now_us();
	if (l->n_timers > 0) {
		uint64_t due = l->heap[0]->when_us;

		if (due <= now)
			wait_us = 0;
		else if (due - now < wait_us)
			wait_us = due - now;
	}
	/* Round up so a timer never fires a hair early and spins. */
	timeout_ms = wait_us > 24ULL * 3600 * 1000000 ? 24 * 3600 * 1000 :
	    (int)((wait_us + 999) / 1000);
	n = epoll_wait(l->epfd, evs, (int)(sizeof(evs) / sizeof(evs[0])), timeout_ms);
	if (n < 0) {
		if (errno == EINTR)
			return 0;
		return -1;
	}
	l->batch = evs;
	l->batch_n = n;
	for (i = 0; i < n && !l->stopping; i++) {
		struct mk_io *io = evs[i].data.ptr;

		l->batch_i = i;
		if (io != NULL)
			io->fn(l, io, evs[i].events);
	}
	l->batch = NULL;
	l->batch_n = l->batch_i = 0;
	if (!l->stopping)
		run_timers(l);
	run_deferred(l);
	return 0;
}

int
mk_loop_run(struct mk_loop *l)
{
	l->stopping = false;
	while (!l->stopping) {
		if (mk_loop_once(l, UINT64_MAX) != 0)
			return -1;
	}
	return 0;
}

void
mk_loop_stop(struct mk_loop *l)
{
	l->stopping = true;
}
