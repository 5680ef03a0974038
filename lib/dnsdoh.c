/* SPDX-License-Identifier: MIT */
#include "dnsdoh.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>

#include <curl/curl.h>

#include "loop.h"
#include "version.h"

#define BODY_MAX	65535
#define MAX_HOST_CONNS	2
#define CONN_MAXAGE_S	30

/* A socket curl asked us to watch. */
struct dohsock {
	struct mk_doh	*d;
	struct mk_io	 io;
	struct dohsock	*prev, *next;
	bool		 dead;
};

struct mk_doh_req {
	struct mk_doh	*d;
	CURL		*e;
	uint8_t		*body;
	size_t		 len;
	bool		 too_big;
	mk_doh_fn	 fn;
	void		*arg;
	struct mk_doh_req *prev, *next;
	char		 errbuf[CURL_ERROR_SIZE];
};

struct mk_doh {
	struct mk_loop		*loop;
	CURLM			*multi;
	struct mk_timer		 timer;
	struct curl_slist	*headers;
	struct curl_slist	*resolve;
	char			*cafile;
	bool			 in_check;
	/* What we own, so that mk_doh_free finds it all (curl 7.88 has no
	 * curl_multi_get_handles). */
	struct mk_doh_req	*reqs;
	struct dohsock		*socks;
	/* Sockets curl let go of, freed once the loop's current batch of
	 * events (which may still name them) is done. */
	struct dohsock		*dead;
	struct mk_timer		 reaper;
};

#define LIST_INSERT(head, e) do { \
	(e)->prev = NULL; \
	(e)->next = (head); \
	if ((head) != NULL) \
		(head)->prev = (e); \
	(head) = (e); \
} while (0)

#define LIST_REMOVE(head, e) do { \
	if ((e)->prev != NULL) \
		(e)->prev->next = (e)->next; \
	else \
		(head) = (e)->next; \
	if ((e)->next != NULL) \
		(e)->next->prev = (e)->prev; \
} while (0)

static void check_done(struct mk_doh *d);

static void
on_sock(struct mk_loop *l, struct mk_io *io, uint32_t events)
{
	struct dohsock *s = io->arg;
	struct mk_doh *d = s->d;
	int flags = 0, running;

	(void)l;
	if (s->dead)
		return;
	if (events & EPOLLIN)
		flags |= CURL_CSELECT_IN;
	if (events & EPOLLOUT)
		flags |= CURL_CSELECT_OUT;
	if (events & (EPOLLERR | EPOLLHUP))
		flags |= CURL_CSELECT_ERR;
	/* s may be freed inside: curl can remove the socket here. */
	curl_multi_socket_action(d->multi, io->fd, flags, &running);
	check_done(d);
}

static void
reap(struct mk_doh *d)
{
	struct dohsock *s;

	while ((s = d->dead) != NULL) {
		d->dead = s->next;
		free(s);
	}
}

static void
on_reaper(struct mk_loop *l, struct mk_timer *t)
{
	(void)l;
	reap(t->arg);
}

static void
on_timer(struct mk_loop *l, struct mk_timer *t)
{
	struct mk_doh *d = t->arg;
	int running;

	(void)l;
	curl_multi_socket_action(d->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(d);
}

/* CURLMOPT_SOCKETFUNCTION: start, change or stop watching a socket. */
static int
sock_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct mk_doh *d = userp;
	struct dohsock *s = socketp;
	uint32_t ev = 0;

	(void)e;
	if (what == CURL_POLL_REMOVE) {
		if (s != NULL) {
			mk_loop_del(d->loop, &s->io);
			curl_multi_assign(d->multi, fd, NULL);
			LIST_REMOVE(d->socks, s);
			s->dead = true;
			s->next = d->dead;
			d->dead = s;
			if (!mk_timer_armed(&d->reaper))
				(void)mk_timer_in(d->loop, &d->reaper, 0);
		}
		return 0;
	}
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		ev |= EPOLLIN;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		ev |= EPOLLOUT;
	if (s == NULL) {
		if ((s = calloc(1, sizeof(*s))) == NULL)
			return -1;
		s->d = d;
		s->io.fd = fd;
		s->io.fn = on_sock;
		s->io.arg = s;
		if (mk_loop_add(d->loop, &s->io, ev) != 0) {
			free(s);
			return -1;
		}
		curl_multi_assign(d->multi, fd, s);
		LIST_INSERT(d->socks, s);
		return 0;
	}
	return mk_loop_mod(d->loop, &s->io, ev) == 0 ? 0 : -1;
}

/* CURLMOPT_TIMERFUNCTION: -1 stops the timer, 0 means at once. */
static int
timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	struct mk_doh *d = userp;

	(void)m;
	if (timeout_ms < 0) {
		mk_timer_cancel(d->loop, &d->timer);
		return 0;
	}
	return mk_timer_in(d->loop, &d->timer, (uint64_t)timeout_ms * 1000)
	    == 0 ? 0 : -1;
}

static size_t
write_cb(char *p, size_t size, size_t n, void *arg)
{
	struct mk_doh_req *r = arg;
	size_t len = size * n;
	uint8_t *nb;

	if (r->len + len > BODY_MAX) {
		r->too_big = true;
		return 0;	/* curl aborts the transfer */
	}
	if ((nb = realloc(r->body, r->len + len)) == NULL)
		return 0;
	r->body = nb;
	memcpy(r->body + r->len, p, len);
	r->len += len;
	return len;
}

static void
req_free(struct mk_doh_req *r)
{
	LIST_REMOVE(r->d->reqs, r);
	if (r->e != NULL) {
		curl_multi_remove_handle(r->d->multi, r->e);
		curl_easy_cleanup(r->e);
	}
	free(r->body);
	free(r);
}

/* Judge one finished transfer; returns the reason it failed, or NULL. */
static const char *
judge(struct mk_doh_req *r, CURLcode res)
{
	long code = 0;
	char *ctype = NULL;

	if (res != CURLE_OK)
		return r->too_big ? "answer too large" : r->errbuf[0] != '\0' ?
		    r->errbuf : curl_easy_strerror(res);
	curl_easy_getinfo(r->e, CURLINFO_RESPONSE_CODE, &code);
	if (code != 200)
		return "HTTP status not 200";
	curl_easy_getinfo(r->e, CURLINFO_CONTENT_TYPE, &ctype);
	if (ctype == NULL || strncasecmp(ctype, "application/dns-message",
	    23) != 0)
		return "not application/dns-message";
	if (r->len == 0)
		return "empty answer";
	return NULL;
}

static void
check_done(struct mk_doh *d)
{
	struct mk_doh_req *r;
	CURLMsg *msg;
	const char *why;
	int left;

	/* A callback may start a request, which runs curl again. */
	if (d->in_check)
		return;
	d->in_check = true;
	while ((msg = curl_multi_info_read(d->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		r = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
		    (char **)&r);
		if (r == NULL)
			continue;
		why = judge(r, msg->data.result);
		curl_multi_remove_handle(d->multi, r->e);
		curl_easy_cleanup(r->e);
		r->e = NULL;
		r->fn(r->arg, why == NULL, why == NULL ? r->body : NULL,
		    why == NULL ? r->len : 0, why);
		req_free(r);
	}
	d->in_check = false;
}

int
mk_doh_new(struct mk_doh **out, struct mk_loop *l, const char *cafile,
    const char **why)
{
	struct mk_doh *d;
	struct curl_slist *h;

	*out = NULL;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		*why = "curl_global_init failed";
		return -1;
	}
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		curl_global_cleanup();
		*why = "out of memory";
		return -1;
	}
	d->loop = l;
	mk_timer_init(&d->timer, on_timer, d);
	mk_timer_init(&d->reaper, on_reaper, d);
	if (cafile != NULL && (d->cafile = strdup(cafile)) == NULL)
		goto nomem;
	h = curl_slist_append(NULL, "Content-Type: application/dns-message");
	if (h == NULL)
		goto nomem;
	d->headers = h;
	if ((h = curl_slist_append(d->headers,
	    "Accept: application/dns-message")) == NULL)
		goto nomem;
	d->headers = h;
	if ((d->multi = curl_multi_init()) == NULL)
		goto nomem;
	curl_multi_setopt(d->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(d->multi, CURLMOPT_SOCKETDATA, d);
	curl_multi_setopt(d->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(d->multi, CURLMOPT_TIMERDATA, d);
	curl_multi_setopt(d->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
	curl_multi_setopt(d->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
	    (long)MAX_HOST_CONNS);
	*out = d;
	return 0;
nomem:
	mk_doh_free(d);
	*why = "out of memory";
	return -1;
}

int
mk_doh_resolve(struct mk_doh *d, const char *host_port_addr)
{
	struct curl_slist *n;

	if ((n = curl_slist_append(d->resolve, host_port_addr)) == NULL)
		return -1;
	d->resolve = n;
	return 0;
}

struct mk_doh_req *
mk_doh_post(struct mk_doh *d, const char *url, const uint8_t *q, size_t len,
    uint64_t timeout_ms, mk_doh_fn fn, void *arg)
{
	struct mk_doh_req *r;
	CURL *e;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->d = d;
	r->fn = fn;
	r->arg = arg;
	if ((e = curl_easy_init()) == NULL) {
		free(r);
		return NULL;
	}
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, d->headers);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)len);
	curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, (const char *)q);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "magicdns/" MK_VERSION);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, (long)CONN_MAXAGE_S);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	if (d->cafile != NULL)
		curl_easy_setopt(e, CURLOPT_CAINFO, d->cafile);
	if (d->resolve != NULL)
		curl_easy_setopt(e, CURLOPT_RESOLVE, d->resolve);
	r->e = e;
	LIST_INSERT(d->reqs, r);
	if (curl_multi_add_handle(d->multi, e) != CURLM_OK) {
		r->e = NULL;
		curl_easy_cleanup(e);
		req_free(r);
		return NULL;
	}
	return r;
}

void
mk_doh_cancel(struct mk_doh *d, struct mk_doh_req *r)
{
	(void)d;
	if (r != NULL)
		req_free(r);
}

void
mk_doh_free(struct mk_doh *d)
{
	struct dohsock *s;

	if (d == NULL)
		return;
	while (d->reqs != NULL)
		req_free(d->reqs);
	if (d->multi != NULL)
		curl_multi_cleanup(d->multi);
	/*
	 * Sockets curl closed without a CURL_POLL_REMOVE: closing took them
	 * out of epoll, and their numbers may already be reused, so no
	 * mk_loop_del here.
	 */
	while ((s = d->socks) != NULL) {
		LIST_REMOVE(d->socks, s);
		free(s);
	}
	mk_timer_cancel(d->loop, &d->timer);
	mk_timer_cancel(d->loop, &d->reaper);
	reap(d);
	curl_slist_free_all(d->headers);
	curl_slist_free_all(d->resolve);
	free(d->cafile);
	free(d);
	curl_global_cleanup();
}
