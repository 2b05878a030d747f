/* reaper.c - cut off connections whose request has run past
 * request_timeout (DESIGN "HTTP behaviour", slow clients).
 *
 * One thread wakes every second and shutdown()s each tracked connection
 * whose budget ran out, unless the connection is parked for the writer (its
 * answer follows the commit, whose own wait is bounded by the database busy
 * timeout). libmicrohttpd sees the shutdown as a closed peer and cleans up.
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

#define REAPER_TICK_S	1

struct reaper_conn {
	struct reaper_conn *prev, *next;
	int	 fd;
	int64_t	 since_ms;	/* start of the current request's budget */
	int	 held;		/* parked for the writer: never reaped */
	int	 reaped;	/* shut down once already */
};

struct reaper {
	int64_t	 timeout_ms;
	pthread_t thread;
	pthread_mutex_t mu;	/* everything below */
	pthread_cond_t cv;	/* stop */
	struct reaper_conn conns;	/* list sentinel */
	int	 stopping;
};

/* One pass over the list. Mutex held. */
static void
reap(struct reaper *rp, int64_t now)
{
	struct reaper_conn *c;

	for (c = rp->conns.next; c != &rp->conns; c = c->next) {
		if (c->held || c->reaped || now - c->since_ms <= rp->timeout_ms)
			continue;
		c->reaped = 1;
		log_info("http: closing a connection after request_timeout "
		    "(%lld s)", (long long)rp->timeout_ms / 1000);
		metrics_request(408, (now - c->since_ms) * 1000);
		(void)shutdown(c->fd, SHUT_RDWR);
	}
}

static void *
reaper_main(void *arg)
{
	struct reaper *rp = arg;
	struct timespec ts;

	pthread_mutex_lock(&rp->mu);
	while (!rp->stopping) {
		(void)clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += REAPER_TICK_S;
		(void)pthread_cond_timedwait(&rp->cv, &rp->mu, &ts);
		reap(rp, clock_mono_ms());
	}
	pthread_mutex_unlock(&rp->mu);
	return NULL;
}

int
reaper_start(int64_t request_timeout_ms, struct reaper **ret)
{
	pthread_condattr_t ca;
	struct reaper *rp;
	int err;

	rp = calloc(1, sizeof(*rp));
	if (rp == NULL) {
		log_error("http: out of memory");
		return -1;
	}
	rp->timeout_ms = request_timeout_ms;
	rp->conns.next = rp->conns.prev = &rp->conns;
	(void)pthread_mutex_init(&rp->mu, NULL);
	(void)pthread_condattr_init(&ca);
	/* A wall-clock step must not stretch or skip the ticks. */
	(void)pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	(void)pthread_cond_init(&rp->cv, &ca);
	(void)pthread_condattr_destroy(&ca);
	err = pthread_create(&rp->thread, NULL, reaper_main, rp);
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
	struct reaper_conn *c;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->fd = fd;
	c->since_ms = clock_mono_ms();
	pthread_mutex_lock(&rp->mu);
	c->next = rp->conns.next;
	c->prev = &rp->conns;
	rp->conns.next->prev = c;
	rp->conns.next = c;
	pthread_mutex_unlock(&rp->mu);
	return c;
}

void
reaper_remove(struct reaper *rp, struct reaper_conn *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&rp->mu);
	c->prev->next = c->next;
	c->next->prev = c->prev;
	pthread_mutex_unlock(&rp->mu);
	free(c);
}

void
reaper_hold(struct reaper *rp, struct reaper_conn *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&rp->mu);
	c->held = 1;
	pthread_mutex_unlock(&rp->mu);
}

void
reaper_restart(struct reaper *rp, struct reaper_conn *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&rp->mu);
	c->held = 0;
	c->since_ms = clock_mono_ms();
	pthread_mutex_unlock(&rp->mu);
}

void
reaper_stop(struct reaper *rp)
{
	struct reaper_conn *c, *next;

	if (rp == NULL)
		return;
	pthread_mutex_lock(&rp->mu);
	rp->stopping = 1;
	pthread_cond_broadcast(&rp->cv);
	pthread_mutex_unlock(&rp->mu);
	(void)pthread_join(rp->thread, NULL);
	for (c = rp->conns.next; c != &rp->conns; c = next) {
		next = c->next;
		free(c);
	}
	(void)pthread_cond_destroy(&rp->cv);
	(void)pthread_mutex_destroy(&rp->mu);
	free(rp);
}
