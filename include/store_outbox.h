/* store_outbox.h - the SQL of the forwarder (DESIGN "Forwarding"): which
 * pending events are due, the attempt bookkeeping before a delivery, and
 * the outcome after it.
 *
 * Works on a struct store opened by the forwarder's dispatcher thread
 * (store_open(path, STORE_READ, ...)); like every struct store it is used by
 * that one thread only. Each write is one short IMMEDIATE transaction.
 * Errors are logged here; callers retry on their next round. Times are unix
 * milliseconds. */
#ifndef CFHOOK_STORE_OUTBOX_H
#define CFHOOK_STORE_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Backoff between attempts doubles up to this (DESIGN "Configuration"). */
#define STORE_OUTBOX_BACKOFF_CAP_S	3600

/* A pending event that may be delivered now. */
struct outbox_due {
	int64_t	 id;
	char	*order_id;		/* owned; NULL when none or empty */
};

/* An event claimed for one delivery attempt. Strings owned (NUL-added;
 * NULL for SQL NULL). */
struct outbox_row {
	int64_t	 id;
	char	*event_key;
	char	*type;
	char	*cf_payment_id;
	char	*order_id;
	char	*payment_status;
	char	*amount;
	char	*currency;
	char	*content_type;
	char	*body;			/* exact bytes (TEXT or BLOB) */
	size_t	 body_len;
	int64_t	 received_at;
	unsigned attempt;		/* forward_attempts after this claim
					 * (keeps counting across replays) */
	int64_t	 log_id;		/* its forward_log row */
	char	*idempotency_key;	/* headers recorded as received */
	char	*webhook_version;
	char	*order_state;		/* the order after this event (DESIGN
					 * "Orders"); NULL: not in the ledger */
	int	 order_paid_now;
	char	*order_attention;
};

enum outbox_claim {
	OUTBOX_CLAIMED,
	OUTBOX_GONE,			/* no longer pending (replayed, pruned) */
	OUTBOX_ERROR			/* logged; nothing changed */
};

enum outbox_outcome {
	OUTBOX_DELIVERED,
	OUTBOX_FAILED,
	OUTBOX_INTERRUPTED		/* stopped by shutdown: stays pending */
};

/* What an event became after store_outbox_finish(). */
enum outbox_state {
	OUTBOX_DONE,
	OUTBOX_RETRY,			/* pending until next_attempt_at */
	OUTBOX_DEAD,
	OUTBOX_PENDING,			/* interrupted: due at once */
	OUTBOX_UNCHANGED		/* was no longer pending: left alone */
};

/* Start-up: forward_log rows of attempts a crash cut short (finished_at
 * NULL, no error yet) get error 'interrupted by restart'; ok stays NULL.
 * Their events are still pending and go out again. Returns the number of
 * rows marked, or -1. */
int	store_outbox_recover(struct store *);
/* Pending events due at now_ms, oldest first, that no earlier pending event
 * of the same non-empty order_id holds back (per-order FIFO, also while the
 * earlier one waits for its retry). `skip(arg, id, order_id)` returning
 * non-zero leaves an event out (the caller's deliveries in flight). Fills
 * up to `max` entries of out[] (caller frees with store_outbox_due_done)
 * and *n. Returns 0 / -1. */
int	store_outbox_due(struct store *, int64_t now_ms,
	    int (*skip)(void *arg, int64_t id, const char *order_id),
	    void *arg, struct outbox_due *out, size_t max, size_t *n);
void	store_outbox_due_done(struct outbox_due *, size_t n);
/* The earliest next_attempt_at after now_ms of a pending event, in *ret.
 * Returns 0, 1 when there is none, -1 on error. */
int	store_outbox_next_due(struct store *, int64_t now_ms, int64_t *ret);
/* One committed transaction before a delivery: forward_attempts + 1 and a
 * forward_log row (attempt, started_at = now_ms, ok NULL), so a crash during
 * the delivery leaves the attempt counted and the event pending. Fills *ret
 * (release with store_outbox_row_done) on OUTBOX_CLAIMED. */
enum outbox_claim store_outbox_claim(struct store *, int64_t id,
	    int64_t now_ms, struct outbox_row *ret);
void	store_outbox_row_done(struct outbox_row *);

struct outbox_result {
	int64_t	 id;			/* events.id */
	int64_t	 log_id;		/* forward_log.id from the claim */
	enum outbox_outcome outcome;
	const char *error;		/* short reason; NULL when delivered */
};

/* One committed transaction after a delivery. DELIVERED: 'done',
 * forwarded_at, last_error NULL, log ok = 1. FAILED: last_error, log ok = 0;
 * with tries = forward_attempts - replay_base (the series since the last
 * replay), 'dead' once tries >= max_attempts, else next_attempt_at = now +
 * min(backoff_s * 2^(tries-1), STORE_OUTBOX_BACKOFF_CAP_S) s.
 * INTERRUPTED: log error, ok NULL; the event stays pending, due at once.
 * An event no longer pending (replayed, pruned meanwhile) is left alone.
 * *state and *next_ms (RETRY) tell what happened. Returns 0 / -1. */
int	store_outbox_finish(struct store *, const struct outbox_result *,
	    int64_t now_ms, unsigned max_attempts, unsigned backoff_s,
	    enum outbox_state *state, int64_t *next_ms);

#endif
