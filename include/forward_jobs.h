/* forward_jobs.h - the hand-off between the forwarder's dispatcher and its
 * workers (forward.c): claimed jobs queue for the workers, delivered ones
 * wait to be recorded, and the counts and flags that say when each side
 * must act. Everything is under one mutex; the functions say which thread
 * calls them.
 *
 * A job is "in flight" from its claim to the commit that records it, and
 * "busy" from its claim to the end of its delivery. Delivered jobs are
 * recorded in batches: the dispatcher is woken for the first of a batch
 * and when the batch is due (a worker is about to run out of claimed jobs,
 * FORWARD_JOBS_BATCH_MS passed, or a stop or reload waits), not for every
 * job: one round, one fsync, for several. */
#ifndef CFHOOK_FORWARD_JOBS_H
#define CFHOOK_FORWARD_JOBS_H

#include <pthread.h>
#include <stdint.h>

#include "forward_round.h"

/* A delivered job is recorded within this. */
#define FORWARD_JOBS_BATCH_MS	50

struct forward_jobs {
	pthread_mutex_t mu;
	pthread_cond_t wake;		/* dispatcher: news for it */
	pthread_cond_t work;		/* hook workers: a job queued, or quit */
	pthread_cond_t idle;		/* the stop: fewer in flight or busy */
	/* under mu */
	struct forward_job *queue, **queue_tail;	/* claimed, waiting */
	struct forward_job *done;	/* delivered, to be recorded */
	struct forward_job *flight;	/* by ->flight_next: in flight */
	unsigned nflight, busy;
	int64_t	 done_since;		/* mono ms: `done` became non-empty */
	unsigned slots;			/* deliveries at once */
	unsigned limit;			/* claims in flight at most */
	int	 woken;			/* wake the dispatcher: new events,
					 * a reload, the stop */
	int	 reloading;		/* a reload waits for the flight */
	int	 stopping;		/* no claim from here on */
	int	 claims_over;		/* the dispatcher saw `stopping` */
	int	 quit;			/* the dispatcher ends */
	int	 workers_quit;		/* the workers end */
	int	 kick_fd;		/* eventfd: the socket thread's news */
};

/* Returns 0 / -1 (no eventfd, logged). */
int	forward_jobs_init(struct forward_jobs *);
/* Frees the jobs still queued or delivered (their claims stay for the
 * next start to mark interrupted); once no thread uses it. */
void	forward_jobs_destroy(struct forward_jobs *);
/* Room for deliveries: `slots` at once, `limit` claimed (dispatcher). */
void	forward_jobs_set_slots(struct forward_jobs *, unsigned slots,
	    unsigned limit);

/* Hook worker: the next job, waiting for one; NULL when told to quit and
 * nothing is queued. */
struct forward_job *forward_jobs_next(struct forward_jobs *);
/* Socket thread: every queued job (a list in claim order), and whether the
 * stop began and whether to quit. */
struct forward_job *forward_jobs_take_queue(struct forward_jobs *,
	    int *stopping, int *quit);
/* Any worker: the job's delivery is over, its result set. */
void	forward_jobs_delivered(struct forward_jobs *, struct forward_job *);
/* Tells the socket thread (which waits in poll, not on a condition) that
 * there is news. */
void	forward_jobs_kick(struct forward_jobs *);

/* Dispatcher: the delivered jobs (the ones *unrecorded from a failed
 * round first; *unrecorded is emptied), their count in *n, and in *room
 * how many claims may be added when they are recorded (0 unless
 * `claiming`). */
struct forward_job *forward_jobs_take_done(struct forward_jobs *,
	    struct forward_job **unrecorded, unsigned *n, int claiming,
	    unsigned *room);
/* Dispatcher, once a round is committed: `done` (ndone jobs) leave the
 * flight and are freed, `claimed` join it and go to the workers (or, once
 * the stop began or when not loaded, straight back as delivered). */
void	forward_jobs_hand_out(struct forward_jobs *, struct forward_job *done,
	    unsigned ndone, struct forward_job *claimed);
/* Dispatcher: skip() for store_outbox_due (arg: the struct forward_jobs):
 * an event in flight, or any event of an order with one in flight. */
int	forward_jobs_in_flight(void *arg, int64_t id, const char *order_id);
/* Dispatcher: waits until woken, a batch is due, quit, or wait_ms. */
void	forward_jobs_wait(struct forward_jobs *, int64_t wait_ms);

/* The stop (any thread but the dispatcher): no claim from here on, the
 * queued jobs given back unstarted; waits up to timeout_ms for what is in
 * flight to be recorded and for the dispatcher to have seen the stop.
 * Returns the deliveries still under way. */
unsigned forward_jobs_drain(struct forward_jobs *, int timeout_ms);
/* The stop, after the deliveries under way were interrupted: waits for
 * them to end (bounded by their kill), then tells the dispatcher to quit. */
void	forward_jobs_finish(struct forward_jobs *);

#endif
