/* store_outbox.c - the forwarder's SQL (DESIGN "Forwarding"): due events
 * in per-order FIFO, the attempt counted before each delivery, the outcome
 * after it, and the clean-up of attempts a crash cut short.
 *
 * Crash safety: an attempt is counted and logged in a committed transaction
 * *before* anything is sent, and an event leaves 'pending' only in the
 * transaction that records its confirmed delivery (or its last failure). A
 * crash anywhere in between leaves it pending, so it is sent again (at least
 * once) with a higher attempt number that tells the consumer it may be a
 * repeat.
 *
 * Must not: be called from more than one thread per struct store, hold a
 * transaction open across a delivery, or touch intake (the writer's rows are
 * only read here, and updated only in the forward_* columns). */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "log.h"
#include "store_be.h"
#include "store_int.h"
#include "store_outbox.h"

/* Another backend's store: it has an outbox of its own (store_be.h). */
static inline int
other(const struct store *st)
{
	return st->be->outbox_recover != NULL;
}

/* The oldest pending event of each order goes first; a later one waits while
 * any earlier event of its order is pending (in flight or in backoff). The
 * outer scan walks the partial index events_pending in id order, the inner
 * one the index events_order; next_attempt_at is in events_pending, so a
 * long backlog waiting out its backoff costs an index scan, not a read of
 * every row (measured: 1M such events, 278 -> 65 ms a pass). */
static const char SQL_DUE[] =
    "SELECT e.id, e.order_id FROM events e"
    " WHERE e.forward_state = 'pending' AND e.next_attempt_at <= ?1"
    "   AND (e.order_id IS NULL OR e.order_id = '' OR NOT EXISTS ("
    "     SELECT 1 FROM events p WHERE p.order_id = e.order_id"
    "       AND p.id < e.id AND p.forward_state = 'pending'))"
    " ORDER BY e.id";
/* Answered from the partial index events_next alone. */
static const char SQL_NEXT_DUE[] =
    "SELECT min(next_attempt_at) FROM events"
    " WHERE forward_state = 'pending' AND next_attempt_at > ?1";
static const char SQL_CLAIM[] =
    "UPDATE events SET forward_attempts = forward_attempts + 1"
    " WHERE id = ?1 AND forward_state = 'pending'"
    " RETURNING forward_attempts, event_key, type, cf_payment_id, order_id,"
    "   payment_status, amount, currency, content_type, body, received_at,"
    "   idempotency_key, webhook_version, order_state, order_paid_now,"
    "   order_attention";
static const char SQL_LOG_START[] =
    "INSERT INTO forward_log (event_id, attempt, started_at)"
    " VALUES (?1, ?2, ?3)";
static const char SQL_LOG_END[] =
    "UPDATE forward_log SET finished_at = ?2, ok = ?3, error = ?4"
    " WHERE id = ?1";
static const char SQL_RECOVER[] =
    "UPDATE forward_log SET error = 'interrupted by restart'"
    " WHERE finished_at IS NULL AND error IS NULL";
/* The tries of the current series: a replay restarts the series (dead,
 * backoff) but not the attempt number (replay_base, store_admin.h). */
static const char SQL_ATTEMPTS[] =
    "SELECT forward_attempts - replay_base FROM events"
    " WHERE id = ?1 AND forward_state = 'pending'";
static const char SQL_DONE[] =
    "UPDATE events SET forward_state = 'done', forwarded_at = ?2,"
    " last_error = NULL WHERE id = ?1 AND forward_state = 'pending'";
static const char SQL_DEAD[] =
    "UPDATE events SET forward_state = 'dead', last_error = ?2"
    " WHERE id = ?1 AND forward_state = 'pending'";
static const char SQL_RETRY[] =
    "UPDATE events SET next_attempt_at = ?2, last_error = ?3"
    " WHERE id = ?1 AND forward_state = 'pending'";
static const char SQL_NOTE[] =
    "UPDATE events SET last_error = ?2"
    " WHERE id = ?1 AND forward_state = 'pending'";

static void
db_warn(sqlite3 *db, const char *what)
{
	log_warning("store: outbox: %s: %s; will retry", what,
	    sqlite3_errmsg(db));
}

static sqlite3_stmt *
prep(sqlite3 *db, const char *sql, const char *what)
{
	sqlite3_stmt *s = NULL;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
		db_warn(db, what);
		(void)sqlite3_finalize(s);
		return NULL;
	}
	return s;
}

static int
exec(sqlite3 *db, const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		db_warn(db, sql);
		return -1;
	}
	return 0;
}

static void
rollback(sqlite3 *db)
{
	if (sqlite3_get_autocommit(db) == 0)
		(void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

static int
bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v == NULL)
		return sqlite3_bind_null(s, i);
	return sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
}

int
store_outbox_recover(struct store *st)
{
	sqlite3 *db;

	if (other(st))
		return st->be->outbox_recover(st);
	db = store_db(st);
	if (exec(db, SQL_RECOVER) == -1)
		return -1;
	return sqlite3_changes(db);
}

int
store_outbox_due(struct store *st, int64_t now_ms,
    int (*skip)(void *, int64_t, const char *), void *arg,
    struct outbox_due *out, size_t max, size_t *n)
{
	sqlite3 *db = store_db(st);
	sqlite3_stmt *s = NULL;
	size_t got = 0;
	int rc = -1, step;

	if (other(st))
		return st->be->outbox_due(st, now_ms, skip, arg, out, max, n);
	s = prep(db, SQL_DUE, "due");
	if (s == NULL)
		goto out;
	(void)sqlite3_bind_int64(s, 1, now_ms);
	while (got < max) {
		int64_t id;
		const char *order;

		step = sqlite3_step(s);
		if (step == SQLITE_DONE)
			break;
		if (step != SQLITE_ROW) {
			db_warn(db, "due");
			goto out;
		}
		id = sqlite3_column_int64(s, 0);
		order = (const char *)sqlite3_column_text(s, 1);
		if (order != NULL && order[0] == '\0')
			order = NULL;	/* no order: no ordering constraint */
		if (skip != NULL && skip(arg, id, order))
			continue;
		out[got].id = id;
		out[got].order_id = NULL;
		if (order != NULL) {
			out[got].order_id = strdup(order);
			if (out[got].order_id == NULL)
				goto out;
		}
		got++;
	}
	*n = got;
	rc = 0;
out:
	if (rc == -1)
		store_outbox_due_done(out, got);
	(void)sqlite3_finalize(s);
	return rc;
}

void
store_outbox_due_done(struct outbox_due *d, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(d[i].order_id);
		d[i].order_id = NULL;
	}
}

int
store_outbox_next_due(struct store *st, int64_t now_ms, int64_t *ret)
{
	sqlite3 *db = store_db(st);
	sqlite3_stmt *s = NULL;
	int rc = -1;

	if (other(st))
		return st->be->outbox_next_due(st, now_ms, ret);
	s = prep(db, SQL_NEXT_DUE, "next due");
	if (s == NULL)
		goto out;
	(void)sqlite3_bind_int64(s, 1, now_ms);
	if (sqlite3_step(s) != SQLITE_ROW) {
		db_warn(db, "next due");
		goto out;
	}
	rc = 1;
	if (sqlite3_column_type(s, 0) != SQLITE_NULL) {
		*ret = sqlite3_column_int64(s, 0);
		rc = 0;
	}
out:
	(void)sqlite3_finalize(s);
	return rc;
}

void
store_outbox_row_done(struct outbox_row *r)
{
	if (r == NULL)
		return;
	free(r->event_key);
	free(r->type);
	free(r->cf_payment_id);
	free(r->order_id);
	free(r->payment_status);
	free(r->amount);
	free(r->currency);
	free(r->content_type);
	free(r->body);
	free(r->idempotency_key);
	free(r->webhook_version);
	free(r->order_state);
	free(r->order_attention);
	memset(r, 0, sizeof(*r));
}

/* The RETURNING row of SQL_CLAIM into *r. -1 on no memory. */
static int
read_claimed(sqlite3_stmt *s, struct outbox_row *r)
{
	int64_t attempts = sqlite3_column_int64(s, 0);

	r->attempt = attempts < 1 ? 1 : (unsigned)attempts;
	r->received_at = sqlite3_column_int64(s, 10);
	if (store_column_copy(s, 1, &r->event_key, NULL) == -1 ||
	    store_column_copy(s, 2, &r->type, NULL) == -1 ||
	    store_column_copy(s, 3, &r->cf_payment_id, NULL) == -1 ||
	    store_column_copy(s, 4, &r->order_id, NULL) == -1 ||
	    store_column_copy(s, 5, &r->payment_status, NULL) == -1 ||
	    store_column_copy(s, 6, &r->amount, NULL) == -1 ||
	    store_column_copy(s, 7, &r->currency, NULL) == -1 ||
	    store_column_copy(s, 8, &r->content_type, NULL) == -1 ||
	    store_column_copy(s, 9, &r->body, &r->body_len) == -1 ||
	    store_column_copy(s, 11, &r->idempotency_key, NULL) == -1 ||
	    store_column_copy(s, 12, &r->webhook_version, NULL) == -1 ||
	    store_column_copy(s, 13, &r->order_state, NULL) == -1 ||
	    store_column_copy(s, 15, &r->order_attention, NULL) == -1)
		return -1;
	r->order_paid_now = sqlite3_column_int(s, 14) != 0;
	return 0;
}

/* Inside the claim transaction: count the attempt and read the row. */
static enum outbox_claim
count_attempt(sqlite3 *db, int64_t id, struct outbox_row *r)
{
	sqlite3_stmt *s = NULL;
	enum outbox_claim res = OUTBOX_ERROR;
	int step;

	s = prep(db, SQL_CLAIM, "claim");
	if (s == NULL)
		goto out;
	(void)sqlite3_bind_int64(s, 1, id);
	step = sqlite3_step(s);
	if (step == SQLITE_DONE) {
		res = OUTBOX_GONE;
		goto out;
	}
	if (step != SQLITE_ROW) {
		db_warn(db, "claim");
		goto out;
	}
	r->id = id;
	if (read_claimed(s, r) == -1) {
		log_warning("store: outbox: claim: out of memory; will retry");
		goto out;
	}
	/* RETURNING: the update is complete only when the statement is. */
	if (sqlite3_step(s) != SQLITE_DONE) {
		db_warn(db, "claim");
		goto out;
	}
	res = OUTBOX_CLAIMED;
out:
	(void)sqlite3_finalize(s);
	return res;
}

static int
log_start(sqlite3 *db, struct outbox_row *r, int64_t now_ms)
{
	sqlite3_stmt *s = prep(db, SQL_LOG_START, "log attempt");
	int rc = -1;

	if (s == NULL)
		return -1;
	(void)sqlite3_bind_int64(s, 1, r->id);
	(void)sqlite3_bind_int64(s, 2, r->attempt);
	(void)sqlite3_bind_int64(s, 3, now_ms);
	if (sqlite3_step(s) != SQLITE_DONE) {
		db_warn(db, "log attempt");
	} else {
		r->log_id = sqlite3_last_insert_rowid(db);
		rc = 0;
	}
	(void)sqlite3_finalize(s);
	return rc;
}

enum outbox_claim
store_outbox_claim(struct store *st, int64_t id, int64_t now_ms,
    struct outbox_row *ret)
{
	sqlite3 *db = store_db(st);
	struct outbox_row r;
	enum outbox_claim res = OUTBOX_ERROR;

	if (other(st))
		return st->be->outbox_claim(st, id, now_ms, ret);
	memset(&r, 0, sizeof(r));
	if (exec(db, "BEGIN IMMEDIATE") == -1)
		goto out;
	res = count_attempt(db, id, &r);
	if (res != OUTBOX_CLAIMED)
		goto out;
	res = OUTBOX_ERROR;
	if (log_start(db, &r, now_ms) == -1)
		goto out;
	/* Durable before the first byte goes out (crash-safety rule above). */
	if (exec(db, "COMMIT") == -1)
		goto out;
	*ret = r;
	memset(&r, 0, sizeof(r));	/* the caller owns the strings now */
	res = OUTBOX_CLAIMED;
out:
	rollback(db);
	store_outbox_row_done(&r);
	return res;
}

static int
log_end(sqlite3 *db, const struct outbox_result *res, int64_t now_ms)
{
	sqlite3_stmt *s = prep(db, SQL_LOG_END, "log outcome");
	int rc = -1;

	if (s == NULL)
		return -1;
	(void)sqlite3_bind_int64(s, 1, res->log_id);
	(void)sqlite3_bind_int64(s, 2, now_ms);
	if (res->outcome == OUTBOX_INTERRUPTED)
		(void)sqlite3_bind_null(s, 3);	/* ok NULL: interrupted */
	else
		(void)sqlite3_bind_int(s, 3,
		    res->outcome == OUTBOX_DELIVERED);
	(void)bind_text(s, 4, res->outcome == OUTBOX_DELIVERED ? NULL :
	    res->error);
	if (sqlite3_step(s) == SQLITE_DONE)
		rc = 0;
	else
		db_warn(db, "log outcome");
	(void)sqlite3_finalize(s);
	return rc;
}

/* Tries in the current series of a still pending event: 0, 1 when not
 * pending, -1. */
static int
attempts_of(sqlite3 *db, int64_t id, int64_t *ret)
{
	sqlite3_stmt *s = prep(db, SQL_ATTEMPTS, "attempts");
	int rc = -1, step;

	if (s == NULL)
		return -1;
	(void)sqlite3_bind_int64(s, 1, id);
	step = sqlite3_step(s);
	if (step == SQLITE_ROW) {
		*ret = sqlite3_column_int64(s, 0);
		rc = 0;
	} else if (step == SQLITE_DONE) {
		rc = 1;
	} else {
		db_warn(db, "attempts");
	}
	(void)sqlite3_finalize(s);
	return rc;
}

/* backoff_s * 2^(attempts-1), capped (DESIGN "Configuration"). */
static int64_t
backoff_ms(unsigned backoff_s, int64_t attempts)
{
	int64_t d = backoff_s, i;

	for (i = 1; i < attempts && d < STORE_OUTBOX_BACKOFF_CAP_S; i++)
		d *= 2;
	if (d > STORE_OUTBOX_BACKOFF_CAP_S)
		d = STORE_OUTBOX_BACKOFF_CAP_S;
	return d * 1000;
}

/* The statement that moves the event on, bound, in *sp; *state says where
 * to. *sp stays NULL when the event is no longer pending. Returns 0 / -1. */
static int
outcome_stmt(sqlite3 *db, const struct outbox_result *res, int64_t now_ms,
    unsigned max_attempts, unsigned backoff_s, enum outbox_state *state,
    int64_t *next_ms, sqlite3_stmt **sp)
{
	sqlite3_stmt *s = NULL;
	int64_t attempts = 0;
	int r;

	if (res->outcome == OUTBOX_DELIVERED) {
		*state = OUTBOX_DONE;
		s = prep(db, SQL_DONE, "done");
		if (s != NULL)
			(void)sqlite3_bind_int64(s, 2, now_ms);
	} else if (res->outcome == OUTBOX_INTERRUPTED) {
		*state = OUTBOX_PENDING;
		s = prep(db, SQL_NOTE, "note");
		if (s != NULL)
			(void)bind_text(s, 2, res->error);
	} else {
		r = attempts_of(db, res->id, &attempts);
		if (r == 1)
			*state = OUTBOX_UNCHANGED;
		if (r != 0)
			return r == 1 ? 0 : -1;
		if (attempts >= (int64_t)max_attempts) {
			*state = OUTBOX_DEAD;
			s = prep(db, SQL_DEAD, "dead");
			if (s != NULL)
				(void)bind_text(s, 2, res->error);
		} else {
			*state = OUTBOX_RETRY;
			*next_ms = now_ms + backoff_ms(backoff_s, attempts);
			s = prep(db, SQL_RETRY, "retry");
			if (s != NULL) {
				(void)sqlite3_bind_int64(s, 2, *next_ms);
				(void)bind_text(s, 3, res->error);
			}
		}
	}
	if (s == NULL)
		return -1;	/* logged by prep */
	(void)sqlite3_bind_int64(s, 1, res->id);
	*sp = s;
	return 0;
}

int
store_outbox_finish(struct store *st, const struct outbox_result *res,
    int64_t now_ms, unsigned max_attempts, unsigned backoff_s,
    enum outbox_state *state, int64_t *next_ms)
{
	sqlite3 *db = store_db(st);
	sqlite3_stmt *s = NULL;
	enum outbox_state to = OUTBOX_UNCHANGED;
	int64_t next = 0;
	int rc = -1;

	if (other(st))
		return st->be->outbox_finish(st, res, now_ms, max_attempts,
		    backoff_s, state, next_ms);
	if (exec(db, "BEGIN IMMEDIATE") == -1)
		goto out;
	if (log_end(db, res, now_ms) == -1)
		goto out;
	if (outcome_stmt(db, res, now_ms, max_attempts, backoff_s, &to, &next,
	    &s) == -1)
		goto out;
	if (s != NULL && sqlite3_step(s) != SQLITE_DONE) {
		db_warn(db, "outcome");
		goto out;
	}
	if (s != NULL && sqlite3_changes(db) == 0)
		to = OUTBOX_UNCHANGED;	/* replayed or pruned meanwhile */
	if (exec(db, "COMMIT") == -1)
		goto out;
	*state = to;
	if (to == OUTBOX_RETRY && next_ms != NULL)
		*next_ms = next;
	rc = 0;
out:
	(void)sqlite3_finalize(s);
	rollback(db);
	return rc;
}
