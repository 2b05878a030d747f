/* reaper.c - cut off connections past request_timeout or header_timeout,
 * and make room at max_connections (DESIGN "HTTP behaviour", slow clients;
 * see reaper.h).
 *
 * One thread wakes every second and shutdown()s each tracked connection
 * whose budget ran out, unless the connection is parked for the writer (its
 * answer follows the commit, whose own wait is bounded by the database busy
 * timeout). Connections waiting for a request sit on a list in the order
 * they started to wait, so the one to close when a new connection would pass
 * max_live is its head: O(1) on libmicrohttpd's thread. libmicrohttpd sees a
 * shutdown as a closed peer and cleans up. Many closures are reported as one
 * log line per second, so a flood cannot flood the log.
 *
 * Must not: close an fd (libmicrohttpd owns it), or touch one it no longer
 * tracks: libmicrohttpd calls the "connection closed" notification, which
 * removes the entry under our mutex, before it close()s the fd, so a number
 * the kernel hands out again is never shut down by mistake. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "reaper.h"
#include "thread.h"

#define REAPER_TICK_S	1

enum phase {
	PHASE_WAIT,	/* no request under way: may be closed to make room */
	PHASE_BUSY,	/* a request under way, or its answer going out */
	PHASE_HELD	/* parked for the writer: never closed */
};

struct reaper_conn {
	struct reaper_conn *prev, *next;	/* on one of the lists */
	int	 fd;
	enum phase phase;
	int	 line;		/* the current request's line is in */
	int	 begun;		/* a request's head has been complete */
	int	 served;	/* a request has finished */
	int	 shut;		/* shut down already */
	int64_t	 since_ms;	/* start of the current request's budget */
	int64_t	 head_by_ms;	/* headers due by then; 0: no deadline */
};

/* Closures since the last report. */
struct tally {
	unsigned evicted;	/* to make room */
	unsigned slow;		/* past request_timeout */
	unsigned head;		/* request line in, headers late */
	unsigned silent;	/* nothing by the header deadline */
};

struct reaper {
	int64_t	 request_ms, header_ms;
	unsigned max_live;
	pthread_t thread;
	pthread_mutex_t mu;	/* everything below */
	pthread_cond_t cv;	/* stop */
	/* List sentinels: waiting (PHASE_WAIT, longest waiting first), busy
	 * (BUSY and HELD), shut (waiting for libmicrohttpd to close them). */
	struct reaper_conn waiting, busy, shut;
	unsigned live;		/* tracked and not shut down */
	struct tally tally;
	int	 stopping;
};

static void
list_init(struct reaper_conn *l)
{
	l->next = l->prev = l;
}

static void
unlink_conn(struct reaper_conn *c)
{
	c->prev->next = c->next;
	c->next->prev = c->prev;
}

/* Move c to the tail of list l. */
static void
move_to(struct reaper_conn *l, struct reaper_conn *c)
{
	unlink_conn(c);
	c->prev = l->prev;
	c->next = l;
	l->prev->next = c;
	l->prev = c;
}

/* Mutex held. The fd is still libmicrohttpd's: no close. */
static void
cut(struct reaper *rp, struct reaper_conn *c)
{
	c->shut = 1;
	rp->live--;
	move_to(&rp->shut, c);
	(void)shutdown(c->fd, SHUT_RDWR);
}

/* 1 when c has passed a deadline (counted in rp->tally), else 0. Mutex
 * held. */
static int
overdue(struct reaper *rp, struct reaper_conn *c, int64_t now)
{
	if (c->phase == PHASE_HELD)
		return 0;
	if (now - c->since_ms > rp->request_ms) {
		rp->tally.slow++;
		metrics_request(408, (now - c->since_ms) * 1000);
		return 1;
	}
	if (c->head_by_ms == 0 || now <= c->head_by_ms)
		return 0;
	/* A connection that never sent a request line is an idle one, not
	 * a request that timed out: closed quietly, as libmicrohttpd's idle
	 * timeout would. */
	if (c->line) {
		rp->tally.head++;
		metrics_request(408, (now - c->since_ms) * 1000);
	} else {
		rp->tally.silent++;
	}
	return 1;
}

/* One pass over a list. Mutex held. */
static void
reap(struct reaper *rp, struct reaper_conn *l, int64_t now)
{
	struct reaper_conn *c, *next;

	for (c = l->next; c != l; c = next) {
		next = c->next;
		if (overdue(rp, c, now))
			cut(rp, c);
	}
}

static void
report(const struct reaper *rp, const struct tally *t)
{
	if (t->evicted > 0)
		log_warning("http: max_connections (%u) reached: closed %u "
		    "connection%s waiting for a request, the longest waiting "
		    "first", rp->max_live, t->evicted, t->evicted == 1 ?
		    "" : "s");
	if (t->head > 0)
		log_info("http: closed %u connection%s that did not send "
		    "their headers within header_timeout (%lld s)", t->head,
		    t->head == 1 ? "" : "s", (long long)rp->header_ms / 1000);
	if (t->slow > 0)
		log_info("http: closed %u connection%s after request_timeout "
		    "(%lld s)", t->slow, t->slow == 1 ? "" : "s",
		    (long long)rp->request_ms / 1000);
	if (t->silent > 0)
		log_debug("http: closed %u silent connection%s after "
		    "header_timeout", t->silent, t->silent == 1 ? "" : "s");
}

static void *
reaper_main(void *arg)
{
	struct reaper *rp = arg;
	struct tally t;
	int64_t now;

	pthread_mutex_lock(&rp->mu);
	while (!rp->stopping) {
		(void)clock_cond_wait_until(&rp->cv, &rp->mu,
		    clock_mono_ms() + REAPER_TICK_S * 1000);
		now = clock_mono_ms();
		reap(rp, &rp->waiting, now);
		reap(rp, &rp->busy, now);
		t = rp->tally;
		memset(&rp->tally, 0, sizeof(rp->tally));
		pthread_mutex_unlock(&rp->mu);
		report(rp, &t);		/* I/O outside the lock */
		pthread_mutex_lock(&rp->mu);
	}
	pthread_mutex_unlock(&rp->mu);
	return NULL;
}

int
reaper_start(int64_t request_timeout_ms, int64_t header_timeout_ms,
    unsigned max_live, struct reaper **ret)
{
	struct reaper *rp;
	int err;

	rp = calloc(1, sizeof(*rp));
	if (rp == NULL) {
		log_error("http: out of memory");
		return -1;
	}
	rp->request_ms = request_timeout_ms;
	rp->header_ms = header_timeout_ms;
	rp->max_live = max_live;
	list_init(&rp->waiting);
	list_init(&rp->busy);
	list_init(&rp->shut);
	(void)pthread_mutex_init(&rp->mu, NULL);
	/* A wall-clock step must not stretch or skip the ticks. */
	(void)clock_cond_init(&rp->cv);
	err = thread_start(&rp->thread, reaper_main, rp, "http-timeouts");
	if (err != 0) {
		log_error("http: cannot start the timeout thread: %s",
		    strerror(err));
		(void)pthread_cond_destroy(&rp->cv);
		(void)pthread_mutex_destroy(&rp->mu);
		free(rp);
		return -1;
	}
	*ret = rp;
	return 0;
}

struct reaper_conn *
reaper_add(struct reaper *rp, int fd)
{
	struct reaper_conn *c, *v;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->fd = fd;
	c->phase = PHASE_WAIT;
	c->since_ms = clock_mono_ms();
	c->head_by_ms = c->since_ms + rp->header_ms;
	pthread_mutex_lock(&rp->mu);
	c->next = c->prev = c;
	move_to(&rp->waiting, c);
	rp->live++;
	/* Make room: the longest waiting goes first, never the newcomer,
	 * never a request under way (then libmicrohttpd's own limit, a
	 * little higher, is the last word). */
	while (rp->live > rp->max_live) {
		v = rp->waiting.next;
		if (v == &rp->waiting || v == c)
			break;
		rp->tally.evicted++;
		cut(rp, v);
	}
	pthread_mutex_unlock(&rp->mu);
	return c;
}

int
reaper_remove(struct reaper *rp, struct reaper_conn *c)
{
	int unserved;

	if (c == NULL)
		return 0;
	pthread_mutex_lock(&rp->mu);
	unlink_conn(c);
	if (!c->shut)
		rp->live--;
	unserved = !c->served;
	pthread_mutex_unlock(&rp->mu);
	free(c);
	return unserved;
}

void
reaper_request_line(struct reaper *rp, struct reaper_conn *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&rp->mu);
	c->line = 1;
	if (c->head_by_ms == 0)		/* a kept-alive connection */
		c->head_by_ms = clock_mono_ms() + rp->header_ms;
	/* Sending a request: the last to close to make room. */
	if (!c->shut && c->phase == PHASE_WAIT)
		move_to(&rp->waiting, c);
	pthread_mutex_unlock(&rp->mu);
}

int
reaper_begin(struct reaper *rp, struct reaper_conn *c)
{
	int first;

	if (c == NULL)
		return 0;
	pthread_mutex_lock(&rp->mu);
	first = !c->begun;
	c->begun = 1;
	c->phase = PHASE_BUSY;
	c->head_by_ms = 0;
	if (!c->shut)
		move_to(&rp->busy, c);
	pthread_mutex_unlock(&rp->mu);
	return first;
}

void
reaper_hold(struct reaper *rp, struct reaper_conn *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&rp->mu);
	c->phase = PHASE_HELD;
	pthread_mutex_unlock(&rp->mu);
}

void
reaper_restart(struct reaper *rp, struct reaper_conn *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&rp->mu);
	c->phase = PHASE_BUSY;
	c->since_ms = clock_mono_ms();
	pthread_mutex_unlock(&rp->mu);
}

int
reaper_idle(struct reaper *rp, struct reaper_conn *c)
{
	int first;

	if (c == NULL)
		return 0;
	pthread_mutex_lock(&rp->mu);
	first = !c->served;
	c->served = 1;
	c->phase = PHASE_WAIT;
	c->line = 0;
	c->since_ms = clock_mono_ms();
	c->head_by_ms = 0;	/* idle_timeout (libmicrohttpd) until a line */
	if (!c->shut)
		move_to(&rp->waiting, c);
	pthread_mutex_unlock(&rp->mu);
	return first;
}

/* Free every entry of list l. */
static void
free_list(struct reaper_conn *l)
{
	struct reaper_conn *c, *next;

	for (c = l->next; c != l; c = next) {
		next = c->next;
		free(c);
	}
}

void
reaper_stop(struct reaper *rp)
{
	if (rp == NULL)
		return;
	pthread_mutex_lock(&rp->mu);
	rp->stopping = 1;
	pthread_cond_broadcast(&rp->cv);
	pthread_mutex_unlock(&rp->mu);
	(void)pthread_join(rp->thread, NULL);
	free_list(&rp->waiting);
	free_list(&rp->busy);
	free_list(&rp->shut);
	(void)pthread_cond_destroy(&rp->cv);
	(void)pthread_mutex_destroy(&rp->mu);
	free(rp);
}
