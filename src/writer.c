/* writer.c - the single writer thread with group commit (DESIGN "Data flow",
 * store step).
 *
 * HTTP threads append items to a FIFO and go back to serving; the writer
 * takes everything queued (up to WRITER_MAX_BATCH), records it with one
 * store_record_batch() (one transaction, one fsync) and answers each item's
 * done() in queue order. While it commits, the next batch collects: the
 * busier the daemon, the bigger the batches, and the fsync cost is shared.
 *
 * Must not: touch the database from any other thread, drop a queued item
 * (stop drains the queue into the database), call done() twice or before
 * the commit returned, or wait by sleeping (a condition variable with a 1 s
 * timeout keeps the heartbeat fresh while idle).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "writer.h"

#define IDLE_WAKEUP_MS	1000	/* heartbeat period while idle */

struct writer {
	struct store	*st;		/* only the writer thread uses it */
	pthread_t	 thread;

	pthread_mutex_t	 mu;		/* guards the fields down to on_arg */
	pthread_cond_t	 cv;		/* queue not empty, or stopping */
	struct store_item *head, *tail;
	unsigned	 queued;
	int		 stopping;
	void		(*on_commit)(void *);
	void		*on_arg;

	atomic_int	 forward_pending;
	atomic_int	 healthy;	/* 0 / -1: the last batch */
	_Atomic int64_t	 heartbeat_ms;	/* clock_mono_ms() */

	struct store_item *batch[WRITER_MAX_BATCH];	/* writer thread */
};

static void
beat(struct writer *w)
{
	atomic_store(&w->heartbeat_ms, clock_mono_ms());
}

/* Wait (mutex held) until there is work or stop was asked, waking every
 * IDLE_WAKEUP_MS to show the watchdog the thread is alive and idle. */
static void
wait_for_work(struct writer *w)
{
	struct timespec ts;

	while (w->head == NULL && !w->stopping) {
		beat(w);
		(void)clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += IDLE_WAKEUP_MS / 1000;
		if (pthread_cond_timedwait(&w->cv, &w->mu, &ts) == ETIMEDOUT &&
		    atomic_load(&w->healthy) == -1 && w->head == NULL) {
			/* Idle after a failed batch: find out whether the
			 * database takes writes again, so /healthz recovers
			 * without waiting for the next webhook. */
			(void)pthread_mutex_unlock(&w->mu);
			if (store_check_write(w->st) == 0)
				atomic_store(&w->healthy, 0);
			(void)pthread_mutex_lock(&w->mu);
		}
	}
	beat(w);
}

/* Move up to WRITER_MAX_BATCH items, oldest first, into w->batch. Mutex
 * held. */
static size_t
take_batch(struct writer *w)
{
	size_t n = 0;

	while (w->head != NULL && n < WRITER_MAX_BATCH) {
		w->batch[n++] = w->head;
		w->head = w->head->next;
		w->queued--;
	}
	if (w->head == NULL)
		w->tail = NULL;
	return n;
}

/* Record one batch and answer it. Mutex not held: submitters go on
 * queueing meanwhile (the group commit). */
static void
run_batch(struct writer *w, size_t n, void (*on_commit)(void *), void *on_arg)
{
	struct store_item *it;
	int fp = atomic_load(&w->forward_pending);
	int news;
	size_t i;

	news = store_record_batch(w->st, w->batch, n, fp);
	atomic_store(&w->healthy, news >= 0 ? 0 : -1);
	/* The commit has returned: every result is final and durable. */
	for (i = 0; i < n; i++) {
		it = w->batch[i];
		it->next = NULL;
		it->done(it, it->arg);	/* the caller owns it again */
	}
	if (news > 0 && fp && on_commit != NULL)
		on_commit(on_arg);
	beat(w);
}

static void *
writer_main(void *arg)
{
	struct writer *w = arg;
	void (*on_commit)(void *);
	void *on_arg;
	size_t n;

	(void)pthread_mutex_lock(&w->mu);
	for (;;) {
		wait_for_work(w);
		/* On stop, keep going until the queue is empty: every item
		 * queued before stop is recorded, not dropped. */
		if (w->head == NULL)
			break;
		n = take_batch(w);
		on_commit = w->on_commit;
		on_arg = w->on_arg;
		(void)pthread_mutex_unlock(&w->mu);
		run_batch(w, n, on_commit, on_arg);
		(void)pthread_mutex_lock(&w->mu);
	}
	(void)pthread_mutex_unlock(&w->mu);
	return NULL;
}

static int
init_sync(struct writer *w)
{
	pthread_condattr_t ca;
	int rc = -1;

	if (pthread_mutex_init(&w->mu, NULL) != 0)
		return -1;
	if (pthread_condattr_init(&ca) != 0)
		goto out_mu;
	/* Monotonic: a wall-clock step must not stretch the idle wait. */
	if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
	    pthread_cond_init(&w->cv, &ca) == 0)
		rc = 0;
	(void)pthread_condattr_destroy(&ca);
out_mu:
	if (rc == -1)
		(void)pthread_mutex_destroy(&w->mu);
	return rc;
}

/* On failure the caller still owns `st` (ownership moves only on success,
 * like every ret out-parameter). */
int
writer_start(struct store *st, int forward_pending, struct writer **ret)
{
	struct writer *w;
	sigset_t all, old;
	int err;

	w = calloc(1, sizeof(*w));
	if (w == NULL) {
		log_error("writer: out of memory");
		return -1;
	}
	if (init_sync(w) == -1) {
		log_error("writer: cannot initialise its lock");
		free(w);
		return -1;
	}
	w->st = st;
	atomic_init(&w->forward_pending, forward_pending != 0);
	atomic_init(&w->healthy, 0);
	atomic_init(&w->heartbeat_ms, clock_mono_ms());
	/* The thread starts with every signal blocked, so signals reach the
	 * main thread, which owns them. */
	(void)sigfillset(&all);
	(void)pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&w->thread, NULL, writer_main, w);
	(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err != 0) {
		log_error("writer: cannot start the thread: %s", strerror(err));
		(void)pthread_cond_destroy(&w->cv);
		(void)pthread_mutex_destroy(&w->mu);
		free(w);
		return -1;
	}
	*ret = w;
	return 0;
}

/* After stop began, done() runs right here, on the caller's thread. */
void
writer_submit(struct writer *w, struct store_item *it)
{
	it->next = NULL;
	it->queued_ms = clock_mono_ms();
	(void)pthread_mutex_lock(&w->mu);
	if (w->stopping) {
		(void)pthread_mutex_unlock(&w->mu);
		it->result = STORE_UNAVAILABLE;
		it->id = 0;
		it->done(it, it->arg);
		return;
	}
	if (w->tail == NULL)
		w->head = it;
	else
		w->tail->next = it;
	w->tail = it;
	w->queued++;
	(void)pthread_cond_signal(&w->cv);
	(void)pthread_mutex_unlock(&w->mu);
}

void
writer_set_forward_pending(struct writer *w, int forward_pending)
{
	atomic_store(&w->forward_pending, forward_pending != 0);
}

void
writer_set_on_commit(struct writer *w, void (*fn)(void *), void *arg)
{
	(void)pthread_mutex_lock(&w->mu);
	w->on_commit = fn;
	w->on_arg = arg;
	(void)pthread_mutex_unlock(&w->mu);
}

int64_t
writer_heartbeat_ms(struct writer *w)
{
	return atomic_load(&w->heartbeat_ms);
}

int
writer_healthy(struct writer *w)
{
	return atomic_load(&w->healthy);
}

unsigned
writer_queued(struct writer *w)
{
	unsigned n;

	(void)pthread_mutex_lock(&w->mu);
	n = w->queued;
	(void)pthread_mutex_unlock(&w->mu);
	return n;
}

void
writer_stop(struct writer *w)
{
	if (w == NULL)
		return;
	(void)pthread_mutex_lock(&w->mu);
	w->stopping = 1;
	(void)pthread_cond_signal(&w->cv);
	(void)pthread_mutex_unlock(&w->mu);
	(void)pthread_join(w->thread, NULL);	/* after it drained */
	store_close(w->st);
	(void)pthread_cond_destroy(&w->cv);
	(void)pthread_mutex_destroy(&w->mu);
	free(w);
}
