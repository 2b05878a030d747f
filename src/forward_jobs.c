/* forward_jobs.c - the hand-off between the forwarder's dispatcher and its
 * workers (forward_jobs.h).
 *
 * Must not: hold the mutex across a delivery or a database call (callers
 * do neither while calling in), let a job start after the stop began, or
 * wait by sleeping (conditions, deadlines on the monotonic clock). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "clock.h"
#include "forward_jobs.h"
#include "log.h"

int
forward_jobs_init(struct forward_jobs *j)
{
	memset(j, 0, sizeof(*j));
	j->queue_tail = &j->queue;
	j->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (j->kick_fd == -1) {
		log_error("forward: eventfd: %s", strerror(errno));
		return -1;
	}
	(void)pthread_mutex_init(&j->mu, NULL);
	(void)clock_cond_init(&j->wake);
	(void)clock_cond_init(&j->work);
	(void)clock_cond_init(&j->idle);
	return 0;
}

void
forward_jobs_destroy(struct forward_jobs *j)
{
	if (j->kick_fd < 0)
		return;		/* never initialised */
	forward_job_free_list(j->done);
	forward_job_free_list(j->queue);
	(void)close(j->kick_fd);
	(void)pthread_cond_destroy(&j->wake);
	(void)pthread_cond_destroy(&j->work);
	(void)pthread_cond_destroy(&j->idle);
	(void)pthread_mutex_destroy(&j->mu);
}

void
forward_jobs_set_slots(struct forward_jobs *j, unsigned slots, unsigned limit)
{
	(void)pthread_mutex_lock(&j->mu);
	j->slots = slots;
	j->limit = limit;
	(void)pthread_mutex_unlock(&j->mu);
}

void
forward_jobs_kick(struct forward_jobs *j)
{
	uint64_t one = 1;

	if (write(j->kick_fd, &one, sizeof(one)) == -1 && errno != EAGAIN)
		log_error("forward: eventfd: %s", strerror(errno));
}

/* Under mu: whether the delivered jobs should be recorded now (and more
 * claimed); see the header. */
static int
batch_due(const struct forward_jobs *j, int64_t now)
{
	return j->done != NULL && (j->busy < j->slots ||
	    now - j->done_since >= FORWARD_JOBS_BATCH_MS || j->stopping ||
	    j->reloading);
}

/* Under mu. */
static void
delivered(struct forward_jobs *j, struct forward_job *job)
{
	int first = j->done == NULL;

	if (first)
		j->done_since = clock_mono_ms();
	job->next = j->done;
	j->done = job;
	j->busy--;
	/* (the batch's age is the dispatcher's timer, not ours) */
	if (first || batch_due(j, j->done_since))
		(void)pthread_cond_signal(&j->wake);
	if (j->busy == 0)
		(void)pthread_cond_broadcast(&j->idle);
}

void
forward_jobs_delivered(struct forward_jobs *j, struct forward_job *job)
{
	(void)pthread_mutex_lock(&j->mu);
	delivered(j, job);
	(void)pthread_mutex_unlock(&j->mu);
}

/* A claimed job that a stop catches before it started: its claim is
 * undone (no attempt was made). */
static void
unstart(struct forward_job *job)
{
	job->result = DELIVER_UNSTARTED;
	(void)snprintf(job->reason, sizeof(job->reason), "not started");
}

struct forward_job *
forward_jobs_next(struct forward_jobs *j)
{
	struct forward_job *job;

	(void)pthread_mutex_lock(&j->mu);
	while (j->queue == NULL && !j->workers_quit)
		(void)pthread_cond_wait(&j->work, &j->mu);
	job = j->queue;
	if (job != NULL) {
		j->queue = job->next;
		if (j->queue == NULL)
			j->queue_tail = &j->queue;
		job->next = NULL;
	}
	(void)pthread_mutex_unlock(&j->mu);
	return job;
}

struct forward_job *
forward_jobs_take_queue(struct forward_jobs *j, int *stopping, int *quit)
{
	struct forward_job *list;

	(void)pthread_mutex_lock(&j->mu);
	list = j->queue;
	j->queue = NULL;
	j->queue_tail = &j->queue;
	*stopping = j->stopping;
	*quit = j->workers_quit;
	(void)pthread_mutex_unlock(&j->mu);
	return list;
}

struct forward_job *
forward_jobs_take_done(struct forward_jobs *j, struct forward_job **unrecorded,
    unsigned *n, int claiming, unsigned *room)
{
	struct forward_job *list, *job;

	(void)pthread_mutex_lock(&j->mu);
	list = j->done;
	j->done = NULL;
	if (*unrecorded != NULL) {	/* older ones first */
		for (job = *unrecorded; job->next != NULL; job = job->next)
			continue;
		job->next = list;
		list = *unrecorded;
		*unrecorded = NULL;
	}
	for (*n = 0, job = list; job != NULL; job = job->next)
		(*n)++;
	*room = 0;
	if (claiming && j->nflight - *n < j->limit)
		*room = j->limit - (j->nflight - *n);
	(void)pthread_mutex_unlock(&j->mu);
	return list;
}

/* Under mu. */
static void
flight_remove(struct forward_jobs *j, struct forward_job *job)
{
	struct forward_job **p;

	for (p = &j->flight; *p != NULL; p = &(*p)->flight_next) {
		if (*p == job) {
			*p = job->flight_next;
			return;
		}
	}
}

void
forward_jobs_hand_out(struct forward_jobs *j, struct forward_job *done,
    unsigned ndone, struct forward_job *claimed)
{
	struct forward_job *job, *next;

	(void)pthread_mutex_lock(&j->mu);
	for (job = done; job != NULL; job = job->next)
		flight_remove(j, job);
	j->nflight -= ndone;
	for (job = claimed; job != NULL; job = next) {
		next = job->next;
		job->next = NULL;
		job->flight_next = j->flight;
		j->flight = job;
		j->nflight++;
		j->busy++;
		if (!job->loaded || j->stopping) {
			if (job->loaded)
				unstart(job);
			delivered(j, job);	/* recorded next round */
			continue;
		}
		*j->queue_tail = job;
		j->queue_tail = &job->next;
	}
	(void)pthread_cond_broadcast(&j->work);
	if (j->nflight == 0)
		(void)pthread_cond_broadcast(&j->idle);
	(void)pthread_mutex_unlock(&j->mu);
	if (claimed != NULL)
		forward_jobs_kick(j);
	forward_job_free_list(done);
}

int
forward_jobs_in_flight(void *arg, int64_t id, const char *order_id)
{
	const struct forward_jobs *j = arg;
	const struct forward_job *job;

	/* The dispatcher alone changes the list; it reads it without mu. */
	for (job = j->flight; job != NULL; job = job->flight_next) {
		if (job->row.ev.id == id)
			return 1;
		if (order_id != NULL && job->row.ev.order_id != NULL &&
		    strcmp(order_id, job->row.ev.order_id) == 0)
			return 1;
	}
	return 0;
}

void
forward_jobs_wait(struct forward_jobs *j, int64_t wait_ms)
{
	int64_t until = clock_mono_ms() + wait_ms, now;

	(void)pthread_mutex_lock(&j->mu);
	while (!j->woken && !j->quit && !batch_due(j, now = clock_mono_ms()) &&
	    now < until) {
		(void)clock_cond_wait_until(&j->wake, &j->mu, j->done != NULL &&
		    j->done_since + FORWARD_JOBS_BATCH_MS < until ?
		    j->done_since + FORWARD_JOBS_BATCH_MS : until);
	}
	j->woken = 0;
	(void)pthread_mutex_unlock(&j->mu);
}

/* Under mu: no delivery starts after the stop began. Claimed jobs still
 * waiting for a worker are given back (their claims undone: no attempt
 * was made; the events stay pending). */
static void
give_back_queue(struct forward_jobs *j)
{
	struct forward_job *job;

	while ((job = j->queue) != NULL) {
		j->queue = job->next;
		unstart(job);
		delivered(j, job);
	}
	j->queue_tail = &j->queue;
}

unsigned
forward_jobs_drain(struct forward_jobs *j, int timeout_ms)
{
	int64_t until = clock_mono_ms() + timeout_ms;
	unsigned busy;

	(void)pthread_mutex_lock(&j->mu);
	j->stopping = 1;
	j->woken = 1;
	give_back_queue(j);
	(void)pthread_cond_signal(&j->wake);
	forward_jobs_kick(j);	/* the socket thread drops what it has not sent */
	while (j->nflight > 0 || !j->claims_over) {
		if (clock_cond_wait_until(&j->idle, &j->mu, until) == ETIMEDOUT)
			break;
	}
	busy = j->busy;
	(void)pthread_mutex_unlock(&j->mu);
	return busy;
}

void
forward_jobs_finish(struct forward_jobs *j)
{
	(void)pthread_mutex_lock(&j->mu);
	while (j->busy > 0)	/* bounded: hooks get TERM, then KILL */
		(void)pthread_cond_wait(&j->idle, &j->mu);
	j->quit = 1;
	(void)pthread_cond_signal(&j->wake);
	(void)pthread_mutex_unlock(&j->mu);
}
