/* forward_round.h - one round of the forwarder's dispatcher against the
 * outbox (DESIGN "Forwarding"): the outcomes of the deliveries that
 * finished and the claims of the next due events, in one transaction with
 * one fsync, however many there are of each.
 *
 * Dispatcher thread only (forward.c): it owns the struct forward_round and
 * the outbox in it. Jobs pass from here to the workers and back through
 * the hand-off (forward_jobs.h). */
#ifndef CFHOOK_FORWARD_ROUND_H
#define CFHOOK_FORWARD_ROUND_H

#include <stdint.h>

#include "deliver.h"
#include "reason.h"
#include "store_outbox.h"

/* A reason and the quoted line it may end with (reason.h). */
#define FORWARD_REASON_MAX	(120 + REASON_QUOTE_MAX)
/* Claims in flight at most (forward.c keeps a few per delivery slot). */
#define FORWARD_MAX_CLAIMED	128

/* One claimed delivery attempt. */
struct forward_job {
	struct outbox_row row;		/* claimed; the attempt is counted */
	enum deliver_result result;	/* the worker's */
	char	 reason[FORWARD_REASON_MAX];
	int	 loaded;		/* row read in full: it may go out */
	enum outbox_state state;	/* what recording made of it */
	int64_t	 next_ms;		/* OUTBOX_RETRY: when */
	struct forward_job *next;	/* the list it is on */
	struct forward_job *flight_next;	/* forward.c's in-flight list */
	int	 mark;			/* its entry in forward_marks.h, or
					 * FORWARD_MARK_NONE */
	int64_t	 started_ms;		/* wall: it went out (0: never) */
	int64_t	 finished_ms;		/* wall: its result was in */
};

/* The dispatcher's state between rounds. */
struct forward_round {
	struct outbox *ob;
	int64_t	 cursor;		/* fresh events up to it were seen */
	int64_t	 full_scan_at;		/* mono ms: the next scan from 0 */
	char	*released[FORWARD_MAX_CLAIMED];	/* orders the last round
						 * released (owned) */
	size_t	 nreleased;
	unsigned max_attempts;
	unsigned backoff_s;
};

/* Writes the outcome of every job on `done` (a list by ->next) and claims
 * up to `room` due events that skip() lets through (the jobs on `done` are
 * still in flight to it): in one transaction, or in two while intake
 * writes (forward_round.c); logs each outcome once it is written. Returns
 * 0 with the new jobs in *claimed (none before the last commit: nothing
 * may go out before its attempt is counted; one not `loaded` already has
 * its failed result), or -1 (logged) when nothing was written: `done` is
 * unchanged, to be written next time. *wait_ms: how long the dispatcher
 * may wait before something becomes due. */
int	forward_round_run(struct forward_round *, struct forward_job *done,
	    unsigned room, int (*skip)(void *arg, int64_t id,
	    const char *order_id), void *arg, struct forward_job **claimed,
	    int64_t *wait_ms);
/* The journal fields of a job's log lines. */
struct log_fields forward_job_fields(const struct forward_job *);
/* Frees a list of jobs (by ->next). NULL-safe. */
void	forward_job_free_list(struct forward_job *);
/* Frees what the struct forward_round holds (not its outbox). */
void	forward_round_done(struct forward_round *);

#endif
