/* store_admin_write.c - the two writes of `cfhookctl`: replay and prune
 * (DESIGN "Binaries and commands"; the reads are in store_admin.c).
 *
 * Both take the write lock with BEGIN IMMEDIATE while the daemon runs, so
 * each transaction is kept to milliseconds: replay is one transaction for
 * the events named, prune works in batches of STORE_ADMIN_PRUNE_BATCH, and
 * the daemon's writer gets the lock between them instead of answering 503.
 *
 * Must not: touch a pending event (the forwarder may be delivering it; a
 * pending row is neither replayed nor pruned), or delete an event without
 * leaving its key in pruned_keys in the same transaction (a re-sent old
 * event would otherwise be recorded and forwarded again). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "log.h"
#include "store_admin.h"
#include "store_int.h"

/* Selects what prune may delete: finished events, oldest first. */
#define PRUNABLE	"SELECT id FROM events WHERE received_at < ?1" \
	" AND forward_state IN ('done', 'dead') ORDER BY id LIMIT ?2"

/* What prune leaves behind on purpose. */
#define PENDING_KEPT	"SELECT count(*) FROM events WHERE received_at < ?1" \
	" AND forward_state = 'pending'"

/* A fresh series of forward_max_attempts tries, but forward_attempts (the
 * attempt number the consumer sees) keeps counting, so the consumer can tell
 * a replayed event is a repeat (DESIGN "Forwarding": attempt). */
#define REPLAY_SET	"forward_state = 'pending', next_attempt_at = 0," \
	" replay_base = forward_attempts, last_error = NULL," \
	" forwarded_at = NULL"

/* One replay request inside the caller's transaction. 0 / -1. */
static int
replay_one(sqlite3 *db, sqlite3_stmt *find, sqlite3_stmt *upd,
    struct store_admin_replay *rq)
{
	const char *state;
	int r, rc = -1;

	rq->result = REPLAY_NOT_FOUND;
	rq->event_id = 0;
	rq->previous_state[0] = '\0';
	if ((rq->key != NULL ?
	    sqlite3_bind_text(find, 1, rq->key, -1, SQLITE_STATIC) :
	    sqlite3_bind_int64(find, 1, rq->id)) != SQLITE_OK)
		goto out;
	r = sqlite3_step(find);
	if (r == SQLITE_DONE) {
		rc = 0;
		goto out;
	}
	if (r != SQLITE_ROW) {
		store_admin_db_error(db, "replay");
		goto out;
	}
	rq->event_id = sqlite3_column_int64(find, 0);
	state = (const char *)sqlite3_column_text(find, 1);
	if (state == NULL || strcmp(state, "pending") == 0) {
		rq->result = REPLAY_ALREADY_PENDING;
		rc = 0;
		goto out;
	}
	(void)snprintf(rq->previous_state, sizeof(rq->previous_state), "%s",
	    state);
	if (sqlite3_bind_int64(upd, 1, rq->event_id) != SQLITE_OK ||
	    store_admin_step_done(db, upd, NULL) == -1)
		goto out;
	rq->result = REPLAY_QUEUED;
	rc = 0;
out:
	(void)sqlite3_reset(find);
	(void)sqlite3_clear_bindings(find);
	(void)sqlite3_reset(upd);
	return rc;
}

int
store_sqlite_admin_replay(struct store *store,
    struct store_admin_replay *req, size_t n)
{
	sqlite3 *db = store_db(store);
	sqlite3_stmt *by_id = NULL, *by_key = NULL, *upd = NULL;
	size_t i;
	int ok = 0;

	if (store_admin_exec(db, "BEGIN IMMEDIATE") == -1)
		return -1;
	if (store_admin_prep(db, "SELECT id, forward_state FROM events"
	    " WHERE id = ?1", &by_id) == -1 ||
	    store_admin_prep(db, "SELECT id, forward_state FROM events"
	    " WHERE event_key = ?1", &by_key) == -1 ||
	    store_admin_prep(db, "UPDATE events SET " REPLAY_SET
	    " WHERE id = ?1 AND forward_state IN ('done', 'dead')",
	    &upd) == -1)
		goto out;
	for (i = 0; i < n; i++) {
		if (replay_one(db, req[i].key != NULL ? by_key : by_id, upd,
		    &req[i]) == -1)
			goto out;
	}
	ok = 1;
out:
	(void)sqlite3_finalize(by_id);
	(void)sqlite3_finalize(by_key);
	(void)sqlite3_finalize(upd);
	return store_admin_tx_end(db, ok);
}

static int
cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

int
store_sqlite_admin_replay_dead(struct store *store, int64_t **ids,
    size_t *nret)
{
	sqlite3 *db = store_db(store);
	sqlite3_stmt *s = NULL;
	int64_t *v = NULL, *p;
	size_t n = 0, cap = 0;
	int ok = 0, r;

	if (store_admin_exec(db, "BEGIN IMMEDIATE") == -1)
		return -1;
	if (store_admin_prep(db, "UPDATE events SET " REPLAY_SET
	    " WHERE forward_state = 'dead' RETURNING id", &s) == -1)
		goto out;
	while ((r = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			p = realloc(v, cap * sizeof(*v));
			if (p == NULL) {
				log_error("cfhookctl: out of memory");
				goto out;
			}
			v = p;
		}
		v[n++] = sqlite3_column_int64(s, 0);
	}
	if (r != SQLITE_DONE)
		store_admin_db_error(db, "replay dead");
	else
		ok = 1;
out:
	(void)sqlite3_finalize(s);
	if (store_admin_tx_end(db, ok) == -1) {
		free(v);
		return -1;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_id);
	*ids = v;
	*nret = n;
	return 0;
}

/* Dry run: what prune would do, from one snapshot. */
static int
prune_count(sqlite3 *db, int64_t before, struct store_admin_prune *p)
{
	sqlite3_stmt *s = NULL;
	int ok = 0;

	if (store_admin_exec(db, "BEGIN") == -1)
		return -1;
	if (store_admin_prep(db, "SELECT count(*), (SELECT count(*)"
	    " FROM forward_log WHERE event_id IN (" PRUNABLE "))"
	    " FROM (" PRUNABLE ")", &s) == -1 ||
	    sqlite3_bind_int64(s, 1, before) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 2, -1) != SQLITE_OK)	/* no limit */
		goto out;
	if (sqlite3_step(s) != SQLITE_ROW) {
		store_admin_db_error(db, "prune count");
		goto out;
	}
	p->events = sqlite3_column_int64(s, 0);
	p->forward_log = sqlite3_column_int64(s, 1);
	p->tombstones = p->events;
	ok = store_admin_count(db, PENDING_KEPT, before, &p->pending_kept) == 0;
out:
	(void)sqlite3_finalize(s);
	return store_admin_tx_end(db, ok);
}

/* Tombstones first, then the history, then the rows: all three pick the
 * same batch (same subquery, same write transaction), so a key is never
 * deleted without its tombstone. A key already tombstoned (not possible
 * through cfhookd, but cheap to be right about) adds up its deliveries. */
static const char *const prune_sql[3] = {
	"INSERT INTO pruned_keys (event_key, pruned_at, deliveries)"
	" SELECT event_key, ?3, deliveries FROM events"
	" WHERE id IN (" PRUNABLE ")"
	" ON CONFLICT (event_key) DO UPDATE"
	" SET deliveries = pruned_keys.deliveries + excluded.deliveries",
	"DELETE FROM forward_log WHERE event_id IN (" PRUNABLE ")",
	"DELETE FROM events WHERE id IN (" PRUNABLE ")",
};

/* One batch in its own IMMEDIATE transaction; *deleted gets its events. */
static int
prune_batch(sqlite3 *db, sqlite3_stmt *const s[3], int64_t before,
    int64_t now, struct store_admin_prune *p, int64_t *deleted)
{
	int64_t changed[3] = { 0, 0, 0 };
	int i, ok = 0;

	if (store_admin_exec(db, "BEGIN IMMEDIATE") == -1)
		return -1;
	for (i = 0; i < 3; i++) {
		if (sqlite3_bind_int64(s[i], 1, before) != SQLITE_OK ||
		    sqlite3_bind_int64(s[i], 2, STORE_ADMIN_PRUNE_BATCH) !=
		    SQLITE_OK ||
		    (i == 0 && sqlite3_bind_int64(s[i], 3, now) != SQLITE_OK))
			goto out;
		if (store_admin_step_done(db, s[i], &changed[i]) == -1)
			goto out;
	}
	ok = 1;
out:
	for (i = 0; i < 3; i++)
		(void)sqlite3_reset(s[i]);
	if (store_admin_tx_end(db, ok) == -1)
		return -1;
	p->tombstones += changed[0];
	p->forward_log += changed[1];
	p->events += changed[2];
	p->batches++;
	*deleted = changed[2];
	return 0;
}

int
store_sqlite_admin_prune(struct store *store, int64_t before,
    int64_t now, int dry_run, struct store_admin_prune *ret)
{
	sqlite3 *db = store_db(store);
	sqlite3_stmt *s[3] = { NULL, NULL, NULL };
	struct store_admin_prune p;
	int64_t deleted;
	int i, rc = -1;

	memset(&p, 0, sizeof(p));
	if (dry_run) {
		if (prune_count(db, before, &p) == -1)
			return -1;
		*ret = p;
		return 0;
	}
	for (i = 0; i < 3; i++) {
		if (store_admin_prep(db, prune_sql[i], &s[i]) == -1)
			goto out;
	}
	/* Short batches: the daemon's writer gets the lock between them. */
	do {
		if (prune_batch(db, s, before, now, &p, &deleted) == -1)
			goto out;
	} while (deleted == STORE_ADMIN_PRUNE_BATCH);
	if (store_admin_count(db, PENDING_KEPT, before, &p.pending_kept) == -1)
		goto out;
	rc = 0;
out:
	for (i = 0; i < 3; i++)
		(void)sqlite3_finalize(s[i]);
	/* Batches already committed are real: report them even on failure. */
	*ret = p;
	return rc;
}
