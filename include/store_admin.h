/* store_admin.h - the queries and the two writes of `cfhookctl` (status,
 * list, show, replay, prune; DESIGN "Binaries and commands"). The reads are
 * in store_admin.c, replay and prune in store_admin_write.c.
 *
 * Runs on its own struct store (store_open(path, STORE_READ, ...)) while the
 * daemon works on the same file: every call is one short transaction (reads
 * see one snapshot; replay and prune take the write lock for milliseconds,
 * prune in batches), so the daemon's writer never waits past its busy
 * timeout. Single-threaded like every struct store. Errors are logged where
 * they happen. Times are unix milliseconds; -1 stands for SQL NULL. */
#ifndef CFHOOK_STORE_ADMIN_H
#define CFHOOK_STORE_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "event_row.h"
#include "store.h"

#define STORE_ADMIN_LIST_MAX	100000	/* `list --limit` ceiling */
#define STORE_ADMIN_PRUNE_BATCH	500	/* events per prune transaction */

enum store_admin_result {
	STORE_ADMIN_OK,
	STORE_ADMIN_NOT_FOUND,
	STORE_ADMIN_ERROR		/* logged */
};

/* One forward_log row (a delivery attempt). */
struct store_admin_attempt {
	int64_t	 id;
	int64_t	 attempt;
	int64_t	 started_at;
	int64_t	 finished_at;		/* -1: unfinished (the daemon died) */
	int	 ok;			/* 1, 0, or -1 for NULL (unfinished) */
	char	*error;
};

/* `cfhookctl status`, from one snapshot. */
struct store_admin_status {
	int64_t	 total;
	int64_t	 pending;
	int64_t	 pending_due;		/* pending, next_attempt_at <= now */
	int64_t	 done;
	int64_t	 dead;
	int64_t	 received_today;	/* received_at >= day_start */
	int64_t	 day_start;		/* start of "today" (UTC midnight) */
	int64_t	 tombstones;		/* rows in pruned_keys */
	int64_t	 orders;		/* rows in orders (DESIGN "Orders") */
	int64_t	 orders_attention;	/* of them, with attention */
	int	 has_oldest_pending;
	struct event_row oldest_pending;	/* no body */
	int	 has_last_received;
	struct event_row last_received;		/* no body */
};

/* `list` filters; NULL / -1 leave a filter out. */
struct store_admin_filter {
	const char *state;		/* pending | done | dead */
	const char *type;
	const char *order_id;
	int64_t	 since;			/* received_at >= since */
	unsigned limit;			/* 1..STORE_ADMIN_LIST_MAX */
};

enum store_admin_replayed {
	REPLAY_QUEUED,			/* was done or dead, now pending */
	REPLAY_ALREADY_PENDING,		/* left alone: it is on its way */
	REPLAY_NOT_FOUND
};

/* One replay request and its outcome. `id` (> 0) or `key` selects the
 * event; the rest is written by store_admin_replay(). */
struct store_admin_replay {
	int64_t	 id;
	const char *key;
	enum store_admin_replayed result;
	int64_t	 event_id;		/* the row found (0: none) */
	char	 previous_state[8];	/* "done" or "dead" when queued */
};

struct store_admin_prune {
	int64_t	 events;		/* rows deleted (or that would be) */
	int64_t	 forward_log;		/* their delivery history rows */
	int64_t	 tombstones;		/* keys added to pruned_keys */
	int64_t	 pending_kept;		/* older than the cutoff but pending */
	int64_t	 batches;		/* write transactions used */
};

/* Counts and the notable rows at `now` (unix ms); `day_start` is the
 * start of "today" as the caller defines it. 0 / -1. Free with
 * store_admin_status_done(). */
int	store_admin_status(struct store *, int64_t now, int64_t day_start,
	    struct store_admin_status *ret);
void	store_admin_status_done(struct store_admin_status *);

/* Rows matching `f`, newest first (by id), without bodies. *rows is a
 * malloc'd array of *n events (NULL when none); free with
 * store_admin_events_free(). 0 / -1. */
int	store_admin_list(struct store *, const struct store_admin_filter *f,
	    struct event_row **rows, size_t *n);
void	store_admin_events_free(struct event_row *rows, size_t n);

/* The row with this id (key == NULL) or event_key (key != NULL), with its
 * body, and its delivery history oldest first (*hist: malloc'd array of
 * *nhist, NULL when none). One snapshot. On STORE_ADMIN_OK the caller frees
 * with event_row_done() and store_admin_history_free(). */
enum store_admin_result store_admin_get(struct store *, int64_t id,
	    const char *key, struct event_row *ret,
	    struct store_admin_attempt **hist, size_t *nhist);
void	store_admin_history_free(struct store_admin_attempt *h, size_t n);
/* Whether `key` is a pruned event's tombstone: 1 (*pruned_at and
 * *deliveries, the deliveries counted before and since, set), 0 (not
 * pruned), -1 (error). */
int	store_admin_tombstone(struct store *, const char *key,
	    int64_t *pruned_at, int64_t *deliveries);

/* Queue events for delivery again, in one transaction: a `done` or `dead`
 * event becomes `pending` with next_attempt_at 0, replay_base =
 * forward_attempts, last_error and forwarded_at NULL, so it gets a full new
 * series of forward_max_attempts tries while its attempt numbers keep
 * counting (forward_log keeps the old ones). A pending event is left alone
 * (it is queued or being delivered; resetting it could race the
 * forwarder). Each req gets its result. 0 / -1 (nothing changed). */
int	store_admin_replay(struct store *, struct store_admin_replay *req,
	    size_t n);

/* The same for every `dead` event. *ids: malloc'd array of the *n ids
 * queued (NULL when none), in id order. 0 / -1 (nothing changed). */
int	store_admin_replay_dead(struct store *, int64_t **ids, size_t *n);

/* Delete events received before `before` whose forward_state is done or
 * dead (never pending), with their forward_log rows, keeping each event_key
 * in pruned_keys (pruned_at = now, deliveries carried over) so a re-sent old
 * event is still a duplicate. Works in transactions of at most
 * STORE_ADMIN_PRUNE_BATCH events; each batch is complete on its own (a
 * crash between batches leaves no event half pruned). dry_run: count only,
 * write nothing. 0 / -1 (batches committed before the error stay). */
int	store_admin_prune(struct store *, int64_t before, int64_t now,
	    int dry_run, struct store_admin_prune *ret);

#endif
