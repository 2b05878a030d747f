/* store_outbox.c - the forwarder's SQL (DESIGN "Forwarding"): due events
 * in per-order FIFO, the attempt counted before each delivery, the outcome
 * after it, and the clean-up of attempts a crash cut short.
 *
 * Crash safety: an attempt is counted and logged in a committed transaction
 * *before* anything is sent, and an event leaves 'pending' only in the
 * transaction that records its confirmed delivery (or its last failure). A
 * crash anywhere in between leaves it pending, so it is sent again (at least
 * once) with a higher attempt number that tells the consumer it may be a
 * repeat. Batching changes none of this: the dispatcher commits a round's
 * outcomes and claims together and hands out nothing before the commit.
 *
 * Cost: a due scan never walks the events that wait out a backoff (they
 * are found by time in events_next), nor, more than once, the fresh ones
 * blocked behind them (the scan's cursor); per-order checks are made once
 * per order and scan, not once per event.
 *
 * Another backend's store has an outbox of its own (store_be.h): each call
 * is handed to it.
 *
 * Must not: be called from more than one thread per struct outbox, hold a
 * transaction open across a delivery, or touch intake (the writer's rows are
 * only read here, and updated only in the forward_* columns). */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "log.h"
#include "store_be.h"
#include "store_int.h"
#include "store_outbox.h"

/* An earlier pending event of the same order holds this one back. */
#define HELD_BACK \
    "e.order_id IS NOT NULL AND e.order_id <> '' AND EXISTS (" \
    " SELECT 1 FROM events p WHERE p.order_id = e.order_id" \
    "   AND p.id < e.id AND p.forward_state = 'pending')"

enum stmt {
	S_BEGIN, S_COMMIT, S_ROLLBACK, S_READ,
	S_RETRIES, S_FRESH, S_FRESH_HELD, S_HEAD, S_NEXT_DUE, S_OLDEST,
	S_CLAIM, S_ROW, S_LOG_START, S_LOG_END,
	S_DONE, S_DEAD, S_AGAIN, S_UNCLAIM, S_UNLOG, S_RECOVER, S_UNFINISHED,
	S_CUT_SHORT,
	S_N
};

static const char *const sql[S_N] = {
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_READ] = "BEGIN",
	/* Retries whose time has come, by that time: a range of the partial
	 * index events_next (next_attempt_at, id). */
	[S_RETRIES] = "SELECT e.id, e.order_id FROM events e"
	    " WHERE e.forward_state = 'pending' AND e.next_attempt_at > 0"
	    "   AND e.next_attempt_at <= ?1 AND NOT (" HELD_BACK ")"
	    " ORDER BY e.next_attempt_at, e.id",
	/* Fresh events (next_attempt_at 0) after the cursor, in id order:
	 * the same index, equality then rowid, so no sort and no row of an
	 * event in backoff. Whether one is held back is asked per order
	 * (S_FRESH_HELD), not here. */
	[S_FRESH] = "SELECT e.id, e.order_id FROM events e"
	    " WHERE e.forward_state = 'pending' AND e.next_attempt_at = 0"
	    "   AND e.id > ?1 ORDER BY e.id",
	[S_FRESH_HELD] = "SELECT EXISTS (SELECT 1 FROM events p"
	    " WHERE p.order_id = ?2 AND p.id < ?1"
	    "   AND p.forward_state = 'pending')",
	/* The first pending event of an order (events_order). */
	[S_HEAD] = "SELECT id, next_attempt_at FROM events"
	    " WHERE order_id = ?1 AND forward_state = 'pending'"
	    " ORDER BY id LIMIT 1",
	[S_NEXT_DUE] = "SELECT min(next_attempt_at) FROM events"
	    " WHERE forward_state = 'pending' AND next_attempt_at > ?1",
	[S_OLDEST] = "SELECT received_at FROM events"
	    " WHERE forward_state = 'pending' ORDER BY id LIMIT 1",
	/* In the round's transaction: only what the bookkeeping needs, so
	 * that the write lock is held briefly (intake waits for it). */
	[S_CLAIM] = "UPDATE events SET forward_attempts = forward_attempts + 1"
	    " WHERE id = ?1 AND forward_state = 'pending'"
	    " RETURNING forward_attempts, replay_base",
	/* After the commit: the row and its body. The envelope and the hook
	 * read only the columns that never change once stored. */
	[S_ROW] = "SELECT " STORE_ROW_COLS ", body FROM events WHERE id = ?1",
	[S_LOG_START] = "INSERT INTO forward_log (event_id, attempt,"
	    " started_at) VALUES (?1, ?2, ?3)",
	[S_LOG_END] = "UPDATE forward_log SET finished_at = ?2, ok = ?3,"
	    " error = ?4, started_at = coalesce(?5, started_at) WHERE id = ?1",
	[S_DONE] = "UPDATE events SET forward_state = 'done', forwarded_at = ?2,"
	    " last_error = NULL WHERE id = ?1 AND forward_state = 'pending'",
	[S_DEAD] = "UPDATE events SET forward_state = 'dead', last_error = ?2"
	    " WHERE id = ?1 AND forward_state = 'pending'",
	/* A retry after its backoff, or at once (next = now). */
	[S_AGAIN] = "UPDATE events SET next_attempt_at = ?2, last_error = ?3"
	    " WHERE id = ?1 AND forward_state = 'pending'",
	/* A claim that never started: no attempt was made. */
	[S_UNCLAIM] = "UPDATE events SET forward_attempts = forward_attempts - 1"
	    " WHERE id = ?1 AND forward_state = 'pending'"
	    "   AND forward_attempts > replay_base",
	[S_UNLOG] = "DELETE FROM forward_log WHERE id = ?1",
	[S_RECOVER] = "UPDATE forward_log SET error = 'interrupted by restart'"
	    " WHERE finished_at IS NULL AND error IS NULL",
	[S_UNFINISHED] = "SELECT id, event_id FROM forward_log"
	    " WHERE finished_at IS NULL AND error IS NULL",
	[S_CUT_SHORT] = "UPDATE forward_log"
	    " SET error = 'interrupted by restart' WHERE id = ?1",
};

struct outbox {
	struct outbox_head head;	/* first, as every backend's */
	sqlite3	*db;
	sqlite3_stmt *s[S_N];
	int	 sync;		/* durability full: the WAL synced by us */
};

/* Orders seen earlier in one fresh scan, by a 64-bit hash: a later fresh
 * event of such an order is held back (the earlier one is pending), so the
 * SQL check runs once per order. A collision can only make an event wait
 * for the next scan from 0. */
#define SEEN_SLOTS	8192
struct seen {
	uint64_t h[SEEN_SLOTS];		/* 0 = empty */
	unsigned n;
};

/* Another backend's outbox table, or NULL for SQLite's (this file's). */
static const struct outbox_backend *
other(const struct outbox *o)
{
	return ((const struct outbox_head *)(const void *)o)->st->be->outbox;
}

static void
db_warn(sqlite3 *db, const char *what)
{
	log_warning("store: outbox: %s: %s; will retry", what,
	    sqlite3_errmsg(db));
}

/* The statement, reset and unbound, ready for this use. */
static sqlite3_stmt *
stmt(struct outbox *o, enum stmt i)
{
	(void)sqlite3_reset(o->s[i]);
	(void)sqlite3_clear_bindings(o->s[i]);
	return o->s[i];
}

/* Step a statement that returns no row; 0 / -1 (logged). */
static int
run(struct outbox *o, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);

	(void)sqlite3_reset(s);
	if (rc == SQLITE_DONE)
		return 0;
	db_warn(o->db, what);
	return -1;
}

static int
bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v == NULL)
		return sqlite3_bind_null(s, i);
	return sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
}

/* Durability full, made by us after each commit rather than by SQLite
 * inside it: the commit still returns only once the WAL is on disk, but the
 * write lock is free during the sync. */
static int
own_sync(struct outbox *o)
{
	if (sqlite3_exec(o->db, "PRAGMA synchronous = NORMAL", NULL, NULL,
	    NULL) != SQLITE_OK)
		return -1;
	o->sync = 1;
	return 0;
}

int
store_outbox_open(struct store *st, enum durability durability,
    struct outbox **ret)
{
	struct outbox *o;
	int i;

	if (st->be->outbox != NULL)
		return st->be->outbox->open(st, durability, ret);
	o = calloc(1, sizeof(*o));
	if (o == NULL) {
		log_error("store: outbox: out of memory");
		return -1;
	}
	o->head.st = st;
	o->db = store_db(st);
	if (durability == DURABILITY_FULL && own_sync(o) == -1) {
		log_error("store: outbox: %s", sqlite3_errmsg(o->db));
		store_outbox_close(o);
		return -1;
	}
	for (i = 0; i < S_N; i++) {
		if (sqlite3_prepare_v3(o->db, sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &o->s[i], NULL) != SQLITE_OK) {
			log_error("store: outbox: %s", sqlite3_errmsg(o->db));
			store_outbox_close(o);
			return -1;
		}
	}
	*ret = o;
	return 0;
}

void
store_outbox_close(struct outbox *o)
{
	int i;

	if (o == NULL)
		return;
	if (other(o) != NULL) {
		other(o)->close(o);
		return;
	}
	store_outbox_rollback(o);
	for (i = 0; i < S_N; i++)
		(void)sqlite3_finalize(o->s[i]);
	free(o);
}

/* Reads of one round in one read transaction: outside a transaction
 * every SELECT is one of its own, and taking and dropping WAL read locks
 * (fcntl calls on the -shm) was a tenth of the forwarder's time. A reader
 * never blocks intake (WAL). */
void
store_outbox_read_begin(struct outbox *o)
{
	if (other(o) != NULL || sqlite3_get_autocommit(o->db) == 0)
		return;
	(void)run(o, stmt(o, S_READ), "begin read");
}

void
store_outbox_read_end(struct outbox *o)
{
	if (other(o) != NULL || sqlite3_get_autocommit(o->db) != 0)
		return;
	if (run(o, stmt(o, S_COMMIT), "end read") == -1)
		store_outbox_rollback(o);
}

int
store_outbox_begin(struct outbox *o)
{
	if (other(o) != NULL)
		return other(o)->begin(o);
	return run(o, stmt(o, S_BEGIN), "begin");
}

/* The WAL our connection writes (SQLITE_FCNTL_JOURNAL_POINTER: in WAL
 * mode the journal is the WAL), synced through SQLite's own file object:
 * exactly the file the commit went to, whatever its path says now. */
static int
sync_wal(struct outbox *o)
{
	sqlite3_file *wal = NULL;
	int rc;

	rc = sqlite3_file_control(o->db, "main",
	    SQLITE_FCNTL_JOURNAL_POINTER, &wal);
	if (rc == SQLITE_OK && wal != NULL && wal->pMethods != NULL)
		rc = wal->pMethods->xSync(wal, SQLITE_SYNC_NORMAL);
	else if (rc == SQLITE_OK)
		rc = SQLITE_IOERR_FSYNC;	/* no WAL: cannot happen */
	if (rc == SQLITE_OK)
		return 0;
	log_warning("store: outbox: sync the WAL: %s; will retry",
	    sqlite3_errstr(rc));
	return -1;
}

/* Intake may have waited for a transaction that is not the round's last:
 * it goes first now, or this connection would take the lock again before
 * intake's thread ran. */
#define YIELD_MS	20
/* Intake counts as writing if it took the lock this recently (at 200
 * events/s it takes it every 5 ms). */
#define INTAKE_RECENT_MS	50

/* COMMIT, then the round's last syncs (durability full) and any other
 * lets intake go first. */
static int
commit(struct outbox *o, int last)
{
	if (other(o) != NULL)
		return other(o)->commit(o);
	if (run(o, stmt(o, S_COMMIT), "commit") == -1) {
		store_outbox_rollback(o);
		return -1;
	}
	store_write_ended();
	if (!last) {
		(void)store_write_yield(YIELD_MS);
		return 0;
	}
	return o->sync ? sync_wal(o) : 0;
}

int
store_outbox_commit(struct outbox *o)
{
	return commit(o, 1);
}

int
store_outbox_commit_part(struct outbox *o)
{
	return commit(o, 0);
}

int
store_outbox_intake_writing(struct outbox *o)
{
	return other(o) == NULL && store_write_recent(INTAKE_RECENT_MS);
}

void
store_outbox_rollback(struct outbox *o)
{
	if (other(o) != NULL) {
		other(o)->rollback(o);
		return;
	}
	if (o->db != NULL && sqlite3_get_autocommit(o->db) == 0) {
		(void)run(o, stmt(o, S_ROLLBACK), "rollback");
		store_write_ended();
	}
}

/* ---- due scans ---------------------------------------------------------- */

static uint64_t
order_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;	/* FNV-1a */

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return h != 0 ? h : 1;
}

/* Adds h; returns 1 when it was there already, 0 when added, -1 when the
 * set is full (then nothing is known). */
static int
seen_add(struct seen *sn, uint64_t h)
{
	size_t i = (size_t)(h % SEEN_SLOTS);

	if (sn->n >= SEEN_SLOTS / 2)
		return -1;
	while (sn->h[i] != 0) {
		if (sn->h[i] == h)
			return 1;
		i = (i + 1) % SEEN_SLOTS;
	}
	sn->h[i] = h;
	sn->n++;
	return 0;
}

/* Appends (id, order) to out[] unless it is there already or skip() says
 * no. Returns 0, or -1 on no memory. */
static int
take(struct outbox_due *out, size_t *got, int64_t id, const char *order,
    int (*skip)(void *, int64_t, const char *), void *arg)
{
	size_t i;

	if (order != NULL && order[0] == '\0')
		order = NULL;	/* no order: no ordering constraint */
	for (i = 0; i < *got; i++) {
		if (out[i].id == id)
			return 0;
	}
	if (skip != NULL && skip(arg, id, order))
		return 0;
	out[*got].id = id;
	out[*got].order_id = NULL;
	if (order != NULL) {
		out[*got].order_id = strdup(order);
		if (out[*got].order_id == NULL)
			return -1;
	}
	(*got)++;
	return 0;
}

static int
scan_retries(struct outbox *o, int64_t now_ms,
    int (*skip)(void *, int64_t, const char *), void *arg,
    struct outbox_due *out, size_t max, size_t *got)
{
	sqlite3_stmt *s = stmt(o, S_RETRIES);
	int rc = 0, step = SQLITE_DONE;

	(void)sqlite3_bind_int64(s, 1, now_ms);
	while (*got < max && (step = sqlite3_step(s)) == SQLITE_ROW) {
		if (take(out, got, sqlite3_column_int64(s, 0),
		    (const char *)sqlite3_column_text(s, 1), skip, arg) == -1) {
			rc = -1;
			break;
		}
	}
	if (rc == 0 && *got < max && step != SQLITE_DONE) {
		db_warn(o->db, "due retries");
		rc = -1;
	}
	(void)sqlite3_reset(s);
	return rc;
}

/* The first pending event of each released order, when it is due. */
static int
scan_released(struct outbox *o, int64_t now_ms, const struct outbox_scan *sc,
    int (*skip)(void *, int64_t, const char *), void *arg,
    struct outbox_due *out, size_t max, size_t *got)
{
	sqlite3_stmt *s;
	size_t i;
	int step;

	for (i = 0; i < sc->nreleased && *got < max; i++) {
		s = stmt(o, S_HEAD);
		(void)bind_text(s, 1, sc->released[i]);
		step = sqlite3_step(s);
		if (step == SQLITE_ROW && sqlite3_column_int64(s, 1) <= now_ms &&
		    take(out, got, sqlite3_column_int64(s, 0), sc->released[i],
		    skip, arg) == -1)
			step = SQLITE_NOMEM;
		(void)sqlite3_reset(s);
		if (step != SQLITE_ROW && step != SQLITE_DONE) {
			db_warn(o->db, "due heads");
			return -1;
		}
	}
	return 0;
}

/* Whether a fresh event is held back by an earlier pending event of its
 * order; 1, 0, or -1 on error. */
static int
fresh_held(struct outbox *o, struct seen *sn, int64_t id, const char *order)
{
	sqlite3_stmt *s;
	int r;

	if (order == NULL || order[0] == '\0')
		return 0;
	r = seen_add(sn, order_hash(order));
	if (r == 1)
		return 1;	/* an earlier fresh event of it is pending */
	s = stmt(o, S_FRESH_HELD);
	(void)sqlite3_bind_int64(s, 1, id);
	(void)bind_text(s, 2, order);
	r = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
	(void)sqlite3_reset(s);
	if (r == -1)
		db_warn(o->db, "due order");
	return r;
}

static int
scan_fresh(struct outbox *o, struct outbox_scan *sc,
    int (*skip)(void *, int64_t, const char *), void *arg,
    struct outbox_due *out, size_t max, size_t *got)
{
	sqlite3_stmt *s = stmt(o, S_FRESH);
	struct seen *sn = calloc(1, sizeof(*sn));
	const char *order;
	int64_t id;
	int rc = -1, step = SQLITE_DONE, held;

	if (sn == NULL)
		return -1;
	(void)sqlite3_bind_int64(s, 1, sc->after);
	while (*got < max && (step = sqlite3_step(s)) == SQLITE_ROW) {
		id = sqlite3_column_int64(s, 0);
		order = (const char *)sqlite3_column_text(s, 1);
		held = fresh_held(o, sn, id, order);
		if (held == -1 || (held == 0 &&
		    take(out, got, id, order, skip, arg) == -1))
			goto out;
		sc->scanned = id;
	}
	if (*got < max && step != SQLITE_DONE) {
		db_warn(o->db, "due fresh");
		goto out;
	}
	rc = 0;
out:
	(void)sqlite3_reset(s);
	free(sn);
	return rc;
}

int
store_outbox_due(struct outbox *o, int64_t now_ms, struct outbox_scan *sc,
    int (*skip)(void *, int64_t, const char *), void *arg,
    struct outbox_due *out, size_t max, size_t *n)
{
	size_t got = 0;

	if (other(o) != NULL)
		return other(o)->due(o, now_ms, sc, skip, arg, out, max, n);
	sc->scanned = sc->after;
	store_outbox_read_begin(o);
	if (scan_retries(o, now_ms, skip, arg, out, max, &got) == -1 ||
	    scan_released(o, now_ms, sc, skip, arg, out, max, &got) == -1 ||
	    scan_fresh(o, sc, skip, arg, out, max, &got) == -1) {
		store_outbox_read_end(o);
		store_outbox_due_done(out, got);
		return -1;
	}
	store_outbox_read_end(o);
	*n = got;
	return 0;
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

/* One integer (or NULL) from a statement with at most one bound int. */
static int
one_int(struct outbox *o, enum stmt i, const int64_t *arg, int64_t *ret,
    const char *what)
{
	sqlite3_stmt *s = stmt(o, i);
	int rc = -1, step;

	if (arg != NULL)
		(void)sqlite3_bind_int64(s, 1, *arg);
	step = sqlite3_step(s);
	if (step == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL) {
		*ret = sqlite3_column_int64(s, 0);
		rc = 0;
	} else if (step == SQLITE_ROW || step == SQLITE_DONE) {
		rc = 1;
	} else {
		db_warn(o->db, what);
	}
	(void)sqlite3_reset(s);
	return rc;
}

int
store_outbox_next_due(struct outbox *o, int64_t now_ms, int64_t *ret)
{
	if (other(o) != NULL)
		return other(o)->next_due(o, now_ms, ret);
	return one_int(o, S_NEXT_DUE, &now_ms, ret, "next due");
}

int
store_outbox_oldest(struct outbox *o, int64_t *ret)
{
	if (other(o) != NULL)
		return other(o)->oldest(o, ret);
	return one_int(o, S_OLDEST, NULL, ret, "oldest pending");
}

/* ---- claims and outcomes ------------------------------------------------ */

void
store_outbox_row_done(struct outbox_row *r)
{
	if (r == NULL)
		return;
	event_row_done(&r->ev);
	memset(r, 0, sizeof(*r));
}

/* Count the attempt; the counts into *r. */
static enum outbox_claim
count_attempt(struct outbox *o, int64_t id, struct outbox_row *r)
{
	sqlite3_stmt *s = stmt(o, S_CLAIM);
	enum outbox_claim res = OUTBOX_ERROR;
	int64_t attempts, series;
	int step;

	(void)sqlite3_bind_int64(s, 1, id);
	step = sqlite3_step(s);
	if (step == SQLITE_DONE) {
		res = OUTBOX_GONE;
		goto out;
	}
	if (step != SQLITE_ROW) {
		db_warn(o->db, "claim");
		goto out;
	}
	attempts = sqlite3_column_int64(s, 0);
	series = attempts - sqlite3_column_int64(s, 1);
	r->ev.id = id;
	r->attempt = attempts < 1 ? 1 : (unsigned)attempts;
	r->series = series < 1 ? 1 : (unsigned)series;
	/* RETURNING: the update is complete only when the statement is. */
	if (sqlite3_step(s) != SQLITE_DONE) {
		db_warn(o->db, "claim");
		goto out;
	}
	res = OUTBOX_CLAIMED;
out:
	(void)sqlite3_reset(s);
	return res;
}

enum outbox_claim
store_outbox_claim(struct outbox *o, int64_t id, int64_t now_ms,
    struct outbox_row *ret)
{
	struct outbox_row r;
	sqlite3_stmt *s;
	enum outbox_claim res;

	if (other(o) != NULL)
		return other(o)->claim(o, id, now_ms, ret);
	memset(&r, 0, sizeof(r));
	res = count_attempt(o, id, &r);
	if (res != OUTBOX_CLAIMED)
		return res;
	s = stmt(o, S_LOG_START);
	(void)sqlite3_bind_int64(s, 1, r.ev.id);
	(void)sqlite3_bind_int64(s, 2, r.attempt);
	(void)sqlite3_bind_int64(s, 3, now_ms);
	if (run(o, s, "log attempt") == -1)
		return OUTBOX_ERROR;	/* the caller rolls back */
	r.log_id = sqlite3_last_insert_rowid(o->db);
	*ret = r;
	return OUTBOX_CLAIMED;
}

int
store_outbox_load(struct outbox *o, struct outbox_row *r)
{
	struct event_row ev;
	sqlite3_stmt *s;
	int rc = -1, step;

	if (other(o) != NULL)
		return other(o)->load(o, r);
	s = stmt(o, S_ROW);
	(void)sqlite3_bind_int64(s, 1, r->ev.id);
	step = sqlite3_step(s);
	if (step != SQLITE_ROW) {
		if (step == SQLITE_DONE)
			log_warning("store: outbox: event %lld is gone; will "
			    "retry", (long long)r->ev.id);
		else
			db_warn(o->db, "load");
		goto out;
	}
	/* Into a row of its own: on failure r keeps the claim's id, which
	 * the outcome is recorded against. */
	if (store_row_read(s, 1, &ev) == -1) {
		log_warning("store: outbox: load: out of memory; will retry");
		goto out;
	}
	event_row_done(&r->ev);
	r->ev = ev;
	rc = 0;
out:
	(void)sqlite3_reset(s);
	return rc;
}

static int
log_end(struct outbox *o, const struct outbox_result *res, int64_t now_ms)
{
	sqlite3_stmt *s = stmt(o, S_LOG_END);

	(void)sqlite3_bind_int64(s, 1, res->log_id);
	(void)sqlite3_bind_int64(s, 2, store_outbox_finished_at(res, now_ms));
	if (res->started_at > 0)	/* NULL: the claim's time stays */
		(void)sqlite3_bind_int64(s, 5, res->started_at);
	if (res->outcome != OUTBOX_INTERRUPTED)	/* NULL: interrupted */
		(void)sqlite3_bind_int(s, 3,
		    res->outcome == OUTBOX_DELIVERED);
	(void)bind_text(s, 4, res->outcome == OUTBOX_DELIVERED ? NULL :
	    res->error);
	return run(o, s, "log outcome");
}

/* backoff_s * 2^(series-1), capped (DESIGN "Configuration"). */
static int64_t
backoff_ms(unsigned backoff_s, unsigned series)
{
	int64_t d = backoff_s;
	unsigned i;

	for (i = 1; i < series && d < STORE_OUTBOX_BACKOFF_CAP_S; i++)
		d *= 2;
	if (d > STORE_OUTBOX_BACKOFF_CAP_S)
		d = STORE_OUTBOX_BACKOFF_CAP_S;
	return d * 1000;
}

int64_t
store_outbox_finished_at(const struct outbox_result *res, int64_t now_ms)
{
	return res->finished_at > 0 ? res->finished_at : now_ms;
}

enum outbox_state
store_outbox_next_state(const struct outbox_result *res, int64_t now_ms,
    unsigned max_attempts, unsigned backoff_s, int64_t *next)
{
	*next = now_ms;
	if (res->outcome == OUTBOX_DELIVERED)
		return OUTBOX_DONE;
	if (res->outcome == OUTBOX_FAILED && res->series >= max_attempts)
		return OUTBOX_DEAD;
	if (res->outcome != OUTBOX_FAILED)
		return OUTBOX_PENDING;	/* not the consumer's fault: at once */
	*next += backoff_ms(backoff_s, res->series);
	return OUTBOX_RETRY;
}

/* The statement that moves the event on, bound; *state and *next say
 * where to. The event's tries since its last replay were counted at the
 * claim, and cannot have changed since: a replay only touches events that
 * are not pending. */
static sqlite3_stmt *
outcome_stmt(struct outbox *o, const struct outbox_result *res,
    int64_t now_ms, unsigned max_attempts, unsigned backoff_s,
    enum outbox_state *state, int64_t *next)
{
	sqlite3_stmt *s;

	*state = store_outbox_next_state(res, now_ms, max_attempts, backoff_s,
	    next);
	if (*state == OUTBOX_DONE) {
		s = stmt(o, S_DONE);
		(void)sqlite3_bind_int64(s, 2,
		    store_outbox_finished_at(res, now_ms));
	} else if (*state == OUTBOX_DEAD) {
		s = stmt(o, S_DEAD);
		(void)bind_text(s, 2, res->error);
	} else {
		s = stmt(o, S_AGAIN);
		(void)sqlite3_bind_int64(s, 2, *next);
		(void)bind_text(s, 3, res->error);
	}
	(void)sqlite3_bind_int64(s, 1, res->id);
	return s;
}

/* A claim that never started, undone: its log row and its count go. The
 * count only with the row, so that an outcome recorded twice (a round
 * whose WAL sync failed after its COMMIT is written again) takes one
 * attempt off, not two. */
static int
unclaim(struct outbox *o, const struct outbox_result *res,
    enum outbox_state *state)
{
	sqlite3_stmt *s = stmt(o, S_UNLOG);

	(void)sqlite3_bind_int64(s, 1, res->log_id);
	if (run(o, s, "unclaim") == -1)
		return -1;
	if (sqlite3_changes(o->db) == 0) {
		*state = OUTBOX_UNCHANGED;	/* undone before */
		return 0;
	}
	s = stmt(o, S_UNCLAIM);
	(void)sqlite3_bind_int64(s, 1, res->id);
	if (run(o, s, "unclaim") == -1)
		return -1;
	*state = sqlite3_changes(o->db) > 0 ? OUTBOX_PENDING : OUTBOX_UNCHANGED;
	return 0;
}

int
store_outbox_finish(struct outbox *o, const struct outbox_result *res,
    int64_t now_ms, unsigned max_attempts, unsigned backoff_s,
    enum outbox_state *state, int64_t *next_ms)
{
	enum outbox_state to = OUTBOX_UNCHANGED;
	int64_t next = 0;
	sqlite3_stmt *s;

	if (other(o) != NULL)
		return other(o)->finish(o, res, now_ms, max_attempts,
		    backoff_s, state, next_ms);
	if (res->outcome == OUTBOX_UNSTARTED)
		return unclaim(o, res, state);
	if (log_end(o, res, now_ms) == -1)
		return -1;
	s = outcome_stmt(o, res, now_ms, max_attempts, backoff_s, &to, &next);
	if (run(o, s, "outcome") == -1)
		return -1;
	if (sqlite3_changes(o->db) == 0)
		to = OUTBOX_UNCHANGED;	/* replayed or pruned meanwhile */
	*state = to;
	if (to == OUTBOX_RETRY && next_ms != NULL)
		*next_ms = next;
	return 0;
}

/* An unfinished claim: its forward_log row and its event. */
struct claim_ref {
	int64_t	 log_id;
	int64_t	 event_id;
};

/* The unfinished claims, read before any is changed. */
static int
unfinished(struct outbox *o, struct claim_ref **ret, size_t *n)
{
	sqlite3_stmt *s = stmt(o, S_UNFINISHED);
	struct claim_ref *c = NULL, *nc;
	size_t cap = 0;
	int rc;

	*n = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap > 0 ? cap * 2 : 64;
			nc = realloc(c, cap * sizeof(*c));
			if (nc == NULL) {
				log_error("store: outbox: out of memory");
				break;
			}
			c = nc;
		}
		c[*n].log_id = sqlite3_column_int64(s, 0);
		c[*n].event_id = sqlite3_column_int64(s, 1);
		(*n)++;
	}
	(void)sqlite3_reset(s);
	if (rc == SQLITE_DONE) {
		*ret = c;
		return 0;
	}
	if (rc != SQLITE_ROW)
		db_warn(o->db, "recover");
	free(c);
	return -1;
}

static int
has_id(const int64_t *ids, size_t n, int64_t id)
{
	size_t lo = 0, hi = n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (ids[mid] == id)
			return 1;
		if (ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* Each unfinished claim: cut short if it started, else undone. */
static int
recover_marked(struct outbox *o, const int64_t *started, size_t nstarted,
    int *undone)
{
	struct outbox_result res = { 0 };
	enum outbox_state state;
	struct claim_ref *c;
	size_t n, i;
	int cut = 0;
	sqlite3_stmt *s;

	if (unfinished(o, &c, &n) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		if (has_id(started, nstarted, c[i].log_id)) {
			s = stmt(o, S_CUT_SHORT);
			(void)sqlite3_bind_int64(s, 1, c[i].log_id);
			if (run(o, s, "recover") == -1)
				break;
			cut++;
			continue;
		}
		res.log_id = c[i].log_id;
		res.id = c[i].event_id;
		if (unclaim(o, &res, &state) == -1)
			break;
		(*undone)++;
	}
	free(c);
	return i == n ? cut : -1;
}

int
store_outbox_recover(struct outbox *o, const int64_t *started,
    size_t nstarted, int *undone)
{
	int cut;

	*undone = 0;
	if (other(o) != NULL)
		return other(o)->recover(o);
	if (started == NULL) {
		if (run(o, stmt(o, S_RECOVER), "recover") == -1)
			return -1;
		return sqlite3_changes(o->db);
	}
	if (store_outbox_begin(o) == -1)
		return -1;
	cut = recover_marked(o, started, nstarted, undone);
	if (cut == -1 || store_outbox_commit(o) == -1) {
		store_outbox_rollback(o);
		*undone = 0;
		return -1;
	}
	return cut;
}
