/* lg_worker.c - the load generator's per-thread event loop.
 *
 * Each connection carries one request at a time. Closed loop: a connection
 * sends its next request as soon as the last is answered, and latency runs
 * from the send. Fixed rate: requests are due every interval_ns (per
 * thread) and go out on whichever connection is idle; latency runs from
 * when the request was due, so a server that stalls is charged for the
 * requests it kept waiting (no coordinated omission).
 *
 * A duplicate re-sends an id this thread has seen acknowledged "new", so
 * its answer must be "duplicate", and counts stay exact.
 *
 * Must not: wait anywhere but epoll (a reconnect's connect is the one
 * bounded exception), or lose track of a request: each one ends as a
 * counted response or a counted error. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "lg_worker.h"

#define RING_MAX		4096	/* acknowledged ids kept for duplicates */
#define EVENTS_MAX		64
#define CONNECT_TIMEOUT_MS	5000
#define RECONNECT_WAIT_NS	(50 * 1000000LL)

struct acked {
	uint64_t	 id;
	enum lg_req_kind kind;
};

struct run {
	struct lg_worker *w;
	struct lg_plan	*p;
	int		 epfd;
	struct lg_conn	*conns;
	struct lg_req_key *key;
	uint64_t	 rng;
	struct acked	 ring[RING_MAX];
	size_t		 ring_n, ring_pos;
	int64_t		 next_send_ns;	/* fixed rate: when the next is due */
	int64_t		 progress_ns;	/* last response or connect */
	int		 stopping;	/* no new requests */
	int		 pwait2;	/* epoll_pwait2 works */
};

int64_t
lg_now_ns(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t
wall_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* xorshift64*: the dice for duplicates and forms (rand() is banned). */
static uint64_t
rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static double
rng_unit(uint64_t *s)
{
	return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

static void
fatal(struct run *r, const char *what)
{
	if (!r->w->failed)
		(void)snprintf(r->w->err, sizeof(r->w->err), "%s", what);
	r->w->failed = 1;
	r->stopping = 1;
}

static int
may_issue(struct run *r, int64_t now)
{
	uint64_t n;

	if (r->stopping)
		return 0;
	if (r->p->end_ns != 0 && now >= r->p->end_ns) {
		r->stopping = 1;
		return 0;
	}
	n = atomic_fetch_add(&r->p->issued, 1);
	if (r->p->max_requests != 0 && n >= r->p->max_requests) {
		r->stopping = 1;
		return 0;
	}
	return 1;
}

static void
reopen(struct run *r, struct lg_conn *c)
{
	lg_conn_close(c);
	if (r->stopping)
		return;
	r->w->stats.reconnects++;
	if (lg_conn_open(c, &r->p->target, r->epfd, CONNECT_TIMEOUT_MS) == -1) {
		r->w->stats.errors++;	/* a failed connect is an error */
		c->deadline_ns = lg_now_ns() + RECONNECT_WAIT_NS;
		return;
	}
	r->progress_ns = lg_now_ns();
}

static void
ring_push(struct run *r, uint64_t id, enum lg_req_kind kind)
{
	r->ring[r->ring_pos].id = id;
	r->ring[r->ring_pos].kind = kind;
	r->ring_pos = (r->ring_pos + 1) % RING_MAX;
	if (r->ring_n < RING_MAX)
		r->ring_n++;
}

/* A complete response: count it; an acknowledged new id may be re-sent. */
static void
finish(struct run *r, struct lg_conn *c)
{
	struct lg_stats *s = &r->w->stats;
	int64_t now = lg_now_ns();
	uint64_t fresh = s->fresh;

	if (lg_stats_response(s, c->r.status, c->resp + c->r.body_off,
	    c->r.body_len, (uint64_t)(now - c->start_ns)) == -1)
		fatal(r, "out of memory for latency samples");
	if (s->fresh != fresh && !c->is_dup)
		ring_push(r, c->id, c->kind);
	if (r->w->first_ns == 0)
		r->w->first_ns = now;
	r->w->last_ns = now;
	r->progress_ns = now;
}

static void
handle(struct run *r, struct lg_conn *c, enum lg_io io)
{
	switch (io) {
	case LG_IO_AGAIN:
		return;
	case LG_IO_DONE:
		finish(r, c);
		if (c->r.close)
			reopen(r, c);
		return;
	case LG_IO_FAIL:
		r->w->stats.errors++;	/* lost request or protocol error */
		reopen(r, c);
		return;
	case LG_IO_CLOSED_IDLE:
		reopen(r, c);
		return;
	}
}

/* Sends the next request on idle connection c, due at start_ns. */
static void
start_request(struct run *r, struct lg_conn *c, int64_t start_ns)
{
	struct lg_plan *p = r->p;
	int dup = r->ring_n > 0 && p->dup_ratio > 0 &&
	    rng_unit(&r->rng) < p->dup_ratio;
	const struct acked *a;

	if (dup) {
		a = &r->ring[rng_next(&r->rng) % r->ring_n];
		c->id = a->id;
		c->kind = a->kind;
	} else {
		c->id = atomic_fetch_add(&p->next_id, 1);
		c->kind = p->form_ratio > 0 && rng_unit(&r->rng) <
		    p->form_ratio ? LG_REQ_FORM : LG_REQ_JSON;
	}
	c->is_dup = dup;
	c->req_len = lg_req_build(r->key, p->target.host, p->target.path,
	    c->id, c->kind, dup ? 2 : 1, wall_ms(), c->req, sizeof(c->req));
	if (c->req_len == 0) {
		fatal(r, "cannot build a request (OpenSSL or size)");
		return;
	}
	r->w->stats.sent_dup += (uint64_t)dup;
	r->w->stats.sent_form += c->kind == LG_REQ_FORM;
	c->start_ns = start_ns;
	c->deadline_ns = lg_now_ns() + p->timeout_ns;
	handle(r, c, lg_conn_send(c));
}

static struct lg_conn *
find_idle(struct run *r)
{
	unsigned i;

	for (i = 0; i < r->p->conns; i++)
		if (r->conns[i].state == LG_CONN_IDLE)
			return &r->conns[i];
	return NULL;
}

/* Reconnects what is due and starts every request that may start now. */
static void
dispatch(struct run *r, int64_t now)
{
	struct lg_conn *c;
	unsigned i;

	for (i = 0; i < r->p->conns && !r->stopping; i++) {
		c = &r->conns[i];
		if (c->state == LG_CONN_CLOSED && c->deadline_ns <= now)
			reopen(r, c);
	}
	if (r->p->interval_ns == 0) {
		for (i = 0; i < r->p->conns; i++) {
			c = &r->conns[i];
			if (c->state != LG_CONN_IDLE)
				continue;
			if (!may_issue(r, now))
				break;
			start_request(r, c, now);
		}
		return;
	}
	while (r->next_send_ns <= now && (c = find_idle(r)) != NULL &&
	    may_issue(r, now)) {
		start_request(r, c, r->next_send_ns);
		r->next_send_ns += r->p->interval_ns;
	}
}

/* Requests past their deadline are errors; their connections start over. */
static void
expire(struct run *r, int64_t now)
{
	struct lg_conn *c;
	unsigned i;

	for (i = 0; i < r->p->conns; i++) {
		c = &r->conns[i];
		if (c->state != LG_CONN_BUSY || c->deadline_ns > now)
			continue;
		r->w->stats.errors++;
		r->w->stats.timeouts++;
		reopen(r, c);
	}
}

static unsigned
count(const struct run *r, enum lg_conn_state state)
{
	unsigned i, n = 0;

	for (i = 0; i < r->p->conns; i++)
		n += r->conns[i].state == state;
	return n;
}

/* How long epoll may sleep (ns), -1 for no limit. */
static int64_t
next_wake(struct run *r, int64_t now)
{
	int64_t t = INT64_MAX;
	const struct lg_conn *c;
	unsigned i;

	if (!r->stopping && r->p->end_ns != 0)
		t = r->p->end_ns;
	if (!r->stopping && r->p->interval_ns != 0 && find_idle(r) != NULL &&
	    r->next_send_ns < t)
		t = r->next_send_ns;
	for (i = 0; i < r->p->conns; i++) {
		c = &r->conns[i];
		if ((c->state == LG_CONN_BUSY ||
		    (c->state == LG_CONN_CLOSED && !r->stopping)) &&
		    c->deadline_ns < t)
			t = c->deadline_ns;
	}
	if (t == INT64_MAX)
		return -1;
	return t > now ? t - now : 0;
}

static int
wait_events(struct run *r, struct epoll_event *ev, int64_t wait_ns)
{
	struct timespec ts;
	int n;

	if (r->pwait2) {
		ts.tv_sec = (time_t)(wait_ns / 1000000000LL);
		ts.tv_nsec = (long)(wait_ns % 1000000000LL);
		n = epoll_pwait2(r->epfd, ev, EVENTS_MAX,
		    wait_ns < 0 ? NULL : &ts, NULL);
		if (n != -1 || errno != ENOSYS)
			return n;
		r->pwait2 = 0;		/* old kernel: whole milliseconds */
	}
	return epoll_wait(r->epfd, ev, EVENTS_MAX, wait_ns < 0 ? -1 :
	    (int)((wait_ns + 999999) / 1000000));
}

static void
loop(struct run *r)
{
	struct epoll_event ev[EVENTS_MAX];
	int i, n;

	for (;;) {
		int64_t now = lg_now_ns();

		expire(r, now);
		dispatch(r, now);
		if (r->stopping && count(r, LG_CONN_BUSY) == 0)
			return;
		/* Every connection down for a whole request timeout: a run
		 * without a deadline would wait forever. */
		if (count(r, LG_CONN_CLOSED) == r->p->conns &&
		    now - r->progress_ns > r->p->timeout_ns) {
			fatal(r, "no connection to the server for a whole "
			    "request timeout");
			return;
		}
		n = wait_events(r, ev, next_wake(r, lg_now_ns()));
		if (n == -1 && errno != EINTR) {
			fatal(r, "epoll_wait failed");
			return;
		}
		for (i = 0; i < n; i++)
			handle(r, ev[i].data.ptr, lg_conn_io(ev[i].data.ptr));
	}
}

static void
set_up(struct run *r)
{
	unsigned i;

	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	r->key = lg_req_key_new(r->p->key, r->p->key_len);
	r->conns = calloc(r->p->conns, sizeof(*r->conns));
	if (r->epfd == -1 || r->key == NULL || r->conns == NULL) {
		fatal(r, "cannot set up (epoll, OpenSSL or memory)");
		return;
	}
	for (i = 0; i < r->p->conns; i++)
		lg_conn_init(&r->conns[i]);
	for (i = 0; i < r->p->conns; i++) {
		if (lg_conn_open(&r->conns[i], &r->p->target, r->epfd,
		    CONNECT_TIMEOUT_MS) == -1) {
			(void)snprintf(r->w->err, sizeof(r->w->err),
			    "connect: %s", strerror(errno));
			r->w->failed = 1;
			return;
		}
	}
}

void *
lg_worker_run(void *arg)
{
	struct run *r;
	struct lg_worker *w = arg;
	unsigned i;

	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		w->failed = 1;
		(void)snprintf(w->err, sizeof(w->err), "out of memory");
	} else {
		r->w = w;
		r->p = w->plan;
		r->epfd = -1;
		r->pwait2 = 1;
		r->rng = 0x9E3779B97F4A7C15ULL * (w->index + 1) ^
		    (uint64_t)lg_now_ns();
		if (r->rng == 0)
			r->rng = 1;
		set_up(r);
	}
	(void)pthread_barrier_wait(&w->plan->connected);
	(void)pthread_barrier_wait(&w->plan->go);	/* main set the clock */
	if (r != NULL && !w->failed && !w->plan->abort) {
		/* Threads take turns, so a fixed rate is evenly spaced. */
		r->next_send_ns = w->plan->start_ns + w->plan->interval_ns *
		    (int64_t)w->index / (int64_t)w->plan->threads;
		r->progress_ns = w->plan->start_ns;
		loop(r);
	}
	if (r != NULL) {
		for (i = 0; r->conns != NULL && i < r->p->conns; i++)
			lg_conn_close(&r->conns[i]);
		free(r->conns);
		lg_req_key_free(r->key);
		if (r->epfd != -1)
			(void)close(r->epfd);
		free(r);
	}
	return NULL;
}
