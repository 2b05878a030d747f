/* store_outbox.h - the SQL of the forwarder (DESIGN "Forwarding"): which
 * pending events are due, the attempt bookkeeping before a delivery, and
 * the outcome after it, many of each in one transaction.
 *
 * A struct outbox holds the forwarder's prepared statements on a struct
 * store opened by its dispatcher thread (store_open(path, STORE_READ, ...));
 * like every struct store it is used by that one thread only. Outcomes and
 * claims are written between store_outbox_begin() and
 * store_outbox_commit() (or store_outbox_commit_part() for the first of a
 * round's two): IMMEDIATE transactions and one fsync for a whole round of
 * the dispatcher, however many events it claims and records.
 * Errors are logged here; callers retry on their next round. Times are unix
 * milliseconds. */
#ifndef CFHOOK_STORE_OUTBOX_H
#define CFHOOK_STORE_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "event_row.h"
#include "store.h"

/* Backoff between attempts doubles up to this (DESIGN "Configuration"). */
#define STORE_OUTBOX_BACKOFF_CAP_S	3600

struct outbox;

/* A pending event that may be delivered now. */
struct outbox_due {
	int64_t	 id;
	char	*order_id;		/* owned; NULL when none or empty */
};

/* An event claimed for one delivery attempt: the counts from the claim,
 * the event's columns from store_outbox_load(). */
struct outbox_row {
	struct event_row ev;		/* id from the claim; the rest from
					 * store_outbox_load() */
	unsigned attempt;		/* forward_attempts after this claim
					 * (keeps counting across replays) */
	unsigned series;		/* tries since the last replay, this
					 * one included (decides `dead`) */
	int64_t	 log_id;		/* its forward_log row */
};

enum outbox_claim {
	OUTBOX_CLAIMED,
	OUTBOX_GONE,			/* no longer pending (replayed, pruned) */
	OUTBOX_ERROR			/* logged; nothing changed */
};

enum outbox_outcome {
	OUTBOX_DELIVERED,
	OUTBOX_FAILED,
	OUTBOX_UNANSWERED,		/* sent, but its connection was closed
					 * for an earlier envelope's failure */
	OUTBOX_INTERRUPTED,		/* stopped by shutdown: stays pending */
	OUTBOX_UNSTARTED		/* claimed, never started (a stop): the
					 * claim is undone, no attempt made */
};

/* What an event became after store_outbox_finish(). */
enum outbox_state {
	OUTBOX_DONE,
	OUTBOX_RETRY,			/* pending until next_attempt_at */
	OUTBOX_DEAD,
	OUTBOX_PENDING,			/* unanswered, interrupted: due at once */
	OUTBOX_UNCHANGED		/* was no longer pending: left alone */
};

/* Prepares the statements on st (which stays the caller's). With
 * durability full, the outbox syncs the WAL itself after each commit
 * (its connection set to synchronous = NORMAL): store_outbox_commit() still
 * returns only once the commit is on disk, but the write lock, which intake
 * waits for, is not held during the sync. Returns 0 / -1 (logged). */
int	store_outbox_open(struct store *st, enum durability,
	    struct outbox **ret);
/* NULL-safe; rolls back an open transaction. */
void	store_outbox_close(struct outbox *);

/* Start-up: forward_log rows of attempts a crash cut short (finished_at
 * NULL, no error yet) get error 'interrupted by restart'; ok stays NULL.
 * Their events are still pending and go out again. With `started` (the
 * forward_log ids of the claims that had started, sorted: forward_marks.h)
 * only those; the others never went out and are undone like a claim a stop
 * never started (their row goes, their count too), *undone says how many.
 * With started NULL, or on PostgreSQL, every unfinished row is cut short.
 * Returns the number of rows cut short, or -1 (nothing changed). */
int	store_outbox_recover(struct outbox *, const int64_t *started,
	    size_t nstarted, int *undone);

/* BEGIN IMMEDIATE. Returns 0 / -1 (logged). */
int	store_outbox_begin(struct outbox *);
/* COMMIT: every claim and outcome since begin is durable when this returns
 * 0. On -1 (logged) they were rolled back, or committed but perhaps not on
 * disk (the sync failed): either way nothing of it may be acted on, and
 * what was claimed is claimed again later (an attempt counted and logged
 * that never started: a restart marks its log row interrupted). */
int	store_outbox_commit(struct outbox *);
/* COMMIT of a transaction that the same round's next store_outbox_commit()
 * makes durable (SQLite: the WAL is synced then, with it); once it
 * returns, intake has had the write lock if it was waiting for it. Until
 * that next commit succeeds, nothing written here may be acted on outside
 * the database. Returns 0 / -1 (logged; rolled back). */
int	store_outbox_commit_part(struct outbox *);
/* Whether intake is writing to the same database now, so that it may wait
 * for the outbox's write lock (always 0 where it cannot: PostgreSQL). */
int	store_outbox_intake_writing(struct outbox *);
void	store_outbox_rollback(struct outbox *);

/* Where a due scan starts and what it saw. Fresh events (next_attempt_at 0:
 * never tried since they arrived or were replayed) are scanned in id order
 * from `after`; the ones passed over as blocked are not looked at again
 * unless their order is released or a scan starts at 0 again. */
struct outbox_scan {
	int64_t	 after;		/* in: fresh events with id > after */
	int64_t	 scanned;	/* out: the last fresh id looked at */
	const char *const *released;	/* in: orders whose event left
					 * 'pending' since the last scan */
	size_t	 nreleased;
};

/* Pending events due at now_ms that no earlier pending event of the same
 * non-empty order_id holds back (per-order FIFO, also while the earlier one
 * waits for its retry). First the retries whose time has come (by that
 * time), then the first pending event of each released order, then fresh
 * events from sc->after. So a long backlog waiting out its backoff, or
 * blocked behind it, costs nothing per scan. `skip(arg, id, order_id)`
 * returning non-zero leaves an event out (the caller's deliveries in
 * flight). Fills up to `max` entries of out[] (caller frees with
 * store_outbox_due_done) and *n. Returns 0 / -1. Inside or outside a
 * transaction. */
int	store_outbox_due(struct outbox *, int64_t now_ms, struct outbox_scan *sc,
	    int (*skip)(void *arg, int64_t id, const char *order_id),
	    void *arg, struct outbox_due *out, size_t max, size_t *n);
void	store_outbox_due_done(struct outbox_due *, size_t n);
/* The earliest next_attempt_at after now_ms of a pending event, in *ret.
 * Returns 0, 1 when there is none, -1 on error. */
int	store_outbox_next_due(struct outbox *, int64_t now_ms, int64_t *ret);
/* received_at of the oldest pending event, in *ret. Returns 0, 1 when
 * nothing is pending, -1 on error. */
int	store_outbox_oldest(struct outbox *, int64_t *ret);

/* Inside a transaction, before a delivery: forward_attempts + 1 and a
 * forward_log row (attempt, started_at = now_ms, ok NULL), so once
 * committed a crash during the delivery leaves the attempt counted and the
 * event pending. On OUTBOX_CLAIMED fills ev.id, attempt, series and log_id
 * of *ret (all else zero); nothing else is read while the write lock is
 * held, which intake waits for. */
enum outbox_claim store_outbox_claim(struct outbox *, int64_t id,
	    int64_t now_ms, struct outbox_row *ret);
/* After the claim is committed, outside any transaction: the event's
 * columns, body included, into r->ev (release with store_outbox_row_done).
 * Returns 0, or -1 (logged; r is left as the claim filled it). */
int	store_outbox_load(struct outbox *, struct outbox_row *r);
/* Around a run of store_outbox_load() calls (outside any transaction):
 * they read in one read transaction, not one each. Nothing to do on
 * PostgreSQL; a failure only means each load reads on its own. */
void	store_outbox_read_begin(struct outbox *);
void	store_outbox_read_end(struct outbox *);
void	store_outbox_row_done(struct outbox_row *);

struct outbox_result {
	int64_t	 id;			/* events.id */
	int64_t	 log_id;		/* forward_log.id from the claim */
	unsigned series;		/* outbox_row.series from the claim */
	enum outbox_outcome outcome;
	const char *error;		/* short reason; NULL when delivered */
	int64_t	 started_at;		/* when it went out, and when its */
	int64_t	 finished_at;		/* result was in (0: not known; the
					 * claim's and the recording's time) */
};

/* Inside a transaction, after a delivery. DELIVERED: 'done', forwarded_at,
 * last_error NULL, log ok = 1. FAILED: last_error, log ok = 0; 'dead' once
 * series >= max_attempts, else next_attempt_at = now + min(backoff_s *
 * 2^(series-1), STORE_OUTBOX_BACKOFF_CAP_S) s. UNANSWERED: log ok = 0,
 * last_error; due again at once, never dead for it (the failure was
 * another envelope's). INTERRUPTED: log error, ok NULL; due again at once.
 * UNSTARTED: the claim undone (forward_attempts - 1, its log row deleted).
 * An event no longer pending (replayed, pruned meanwhile) is left alone.
 * *state and *next_ms (RETRY) tell what happened. The log row's started_at
 * and finished_at, and forwarded_at, are the result's times when known.
 * Returns 0 / -1. */
int	store_outbox_finish(struct outbox *, const struct outbox_result *,
	    int64_t now_ms, unsigned max_attempts, unsigned backoff_s,
	    enum outbox_state *state, int64_t *next_ms);

#endif
