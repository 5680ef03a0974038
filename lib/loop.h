/* SPDX-License-Identifier: MIT */
/*
 * A monotonic clock, timers in a binary heap, and a small epoll loop with
 * signals delivered through a signalfd. Single-threaded by design: every
 * callback runs on the loop's thread and must not block.
 */
#ifndef MK_LOOP_H
#define MK_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Microseconds / milliseconds since an arbitrary start (CLOCK_MONOTONIC). */
uint64_t mk_now_us(void);
uint64_t mk_now_ms(void);

struct mk_loop;
struct mk_io;
struct mk_timer;

typedef void (*mk_io_fn)(struct mk_loop *l, struct mk_io *io, uint32_t events);
typedef void (*mk_timer_fn)(struct mk_loop *l, struct mk_timer *t);
typedef void (*mk_signal_fn)(struct mk_loop *l, int signo, void *arg);
typedef void (*mk_defer_fn)(void *arg);

/* Embedded in the caller's structs; the loop keeps only pointers. */
struct mk_io {
	int fd;
	mk_io_fn fn;
	void *arg;
};

struct mk_timer {
	uint64_t when_us;
	mk_timer_fn fn;
	void *arg;
	size_t heap_index;	/* SIZE_MAX when not armed */
	uint64_t pass;		/* the timer pass it was armed in */
};

struct mk_defer {
	mk_defer_fn fn;
	void *arg;
};

struct mk_loop {
	int epfd;
	int sigfd;
	struct mk_io sigio;
	mk_signal_fn sigfn;
	void *sigarg;
	struct mk_timer **heap;
	size_t n_timers;
	size_t cap_timers;
	/* timer passes so far, and the clock of the latest one: a timer
	 * armed during a pass never runs in that same pass */
	uint64_t pass;
	uint64_t pass_now;
	/* the epoll batch being dispatched, so mk_loop_del can void the
	 * events still pending for an io that goes away */
	void *batch;
	int batch_n;
	int batch_i;
	struct mk_defer *defer;
	size_t n_defer;
	size_t cap_defer;
	bool stopping;
};

/* 0, or -1 with errno. */
int mk_loop_init(struct mk_loop *l);
void mk_loop_free(struct mk_loop *l);

/*
 * events: EPOLLIN/EPOLLOUT...; 0 or -1/errno. An io removed with
 * mk_loop_del inside a callback gets no more of the current batch's
 * events, so its owner may be freed at once; owners reachable from other
 * places (lists, timers, peers) are better freed through mk_loop_defer.
 */
int mk_loop_add(struct mk_loop *l, struct mk_io *io, uint32_t events);
int mk_loop_mod(struct mk_loop *l, struct mk_io *io, uint32_t events);
int mk_loop_del(struct mk_loop *l, struct mk_io *io);

void mk_timer_init(struct mk_timer *t, mk_timer_fn fn, void *arg);
/*
 * Arm (or re-arm) at an absolute mk_now_us() time. 0 or -1/ENOMEM. A
 * time already past is due at once, but behind every timer that was due
 * in the loop's latest timer pass, and it runs only after the next epoll
 * round: a timer that keeps re-arming itself in the past cannot starve
 * I/O or the other timers.
 */
int mk_timer_at(struct mk_loop *l, struct mk_timer *t, uint64_t when_us);
int mk_timer_in(struct mk_loop *l, struct mk_timer *t, uint64_t delay_us);
void mk_timer_cancel(struct mk_loop *l, struct mk_timer *t);
bool mk_timer_armed(const struct mk_timer *t);

/* Block the given signals and deliver them to fn through the loop. */
int mk_loop_signals(struct mk_loop *l, const int *signals, size_t n,
    mk_signal_fn fn, void *arg);

/*
 * Call fn(arg) once the current round's events and timers are done: the
 * place to free an object other callbacks of the round may still name.
 * Deferred calls also run at mk_loop_free. 0, or -1/ENOMEM.
 */
int mk_loop_defer(struct mk_loop *l, mk_defer_fn fn, void *arg);

/* Run until mk_loop_stop. 0, or -1/errno if epoll fails. */
int mk_loop_run(struct mk_loop *l);
/* One round: wait at most max_wait_us (or until the next timer). */
int mk_loop_once(struct mk_loop *l, uint64_t max_wait_us);
void mk_loop_stop(struct mk_loop *l);

#endif
