/* store_admin.c - the read queries of `cfhookctl` (status counts, list,
 * show: row, body, delivery history) and the SQL helpers it shares with
 * store_admin_write.c (replay, prune). DESIGN "Binaries and commands".
 *
 * cfhookctl runs while the daemon writes the same file (WAL), so each read
 * is one deferred transaction: one consistent snapshot, and a WAL reader
 * never blocks the daemon's writer.
 *
 * Must not: write anything, format output (ctl.c does), or keep statements
 * across calls (one call, one transaction, everything finalized). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "buf.h"
#include "log.h"
#include "store_admin.h"
#include "store_int.h"

void
store_admin_db_error(sqlite3 *db, const char *what)
{
	const char *path = sqlite3_db_filename(db, "main");

	log_error("store: '%s': %s: %s", path == NULL ? "?" : path, what,
	    sqlite3_errmsg(db));
}

int
store_admin_prep(sqlite3 *db, const char *sql, sqlite3_stmt **ret)
{
	if (sqlite3_prepare_v2(db, sql, -1, ret, NULL) != SQLITE_OK) {
		store_admin_db_error(db, "prepare");
		*ret = NULL;
		return -1;
	}
	return 0;
}

int
store_admin_exec(sqlite3 *db, const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		store_admin_db_error(db, sql);
		return -1;
	}
	return 0;
}

/* Ends the transaction: COMMIT when ok, else ROLLBACK. Returns 0 only when
 * ok and the commit worked. */
int
store_admin_tx_end(sqlite3 *db, int ok)
{
	if (ok && store_admin_exec(db, "COMMIT") == 0)
		return 0;
	if (sqlite3_get_autocommit(db) == 0)
		(void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* Runs a statement to SQLITE_DONE; *changes (may be NULL) gets the rows it
 * changed. 0 / -1. */
int
store_admin_step_done(sqlite3 *db, sqlite3_stmt *s, int64_t *changes)
{
	if (sqlite3_step(s) != SQLITE_DONE) {
		store_admin_db_error(db, sqlite3_sql(s));
		return -1;
	}
	if (changes != NULL)
		*changes = sqlite3_changes64(db);
	return 0;
}

/* Runs `sql` (at most one parameter: `key` when not NULL, else `arg`) and
 * reads the first row, if any: 1 found, 0 none, -1 error. */
static int
one_event(sqlite3 *db, const char *sql, int64_t arg, const char *key,
    int with_body, struct event_row *e)
{
	sqlite3_stmt *s = NULL;
	int rc = -1, r = SQLITE_OK;

	if (store_admin_prep(db, sql, &s) == -1)
		goto out;
	if (sqlite3_bind_parameter_count(s) > 0)
		r = key != NULL ? sqlite3_bind_text(s, 1, key, -1,
		    SQLITE_STATIC) : sqlite3_bind_int64(s, 1, arg);
	if (r != SQLITE_OK)
		goto out;
	r = sqlite3_step(s);
	if (r == SQLITE_DONE)
		rc = 0;
	else if (r != SQLITE_ROW)
		store_admin_db_error(db, sql);
	else if (store_row_read(s, with_body, e) == -1)
		log_error("cfhookctl: out of memory");
	else
		rc = 1;
out:
	(void)sqlite3_finalize(s);
	return rc;
}

static int
count_states(sqlite3 *db, int64_t now, struct store_admin_status *st)
{
	sqlite3_stmt *s = NULL;
	const char *state;
	int64_t n;
	int rc = -1, r;

	if (store_admin_prep(db, "SELECT forward_state, count(*),"
	    " sum(next_attempt_at <= ?1) FROM events GROUP BY forward_state",
	    &s) == -1 || sqlite3_bind_int64(s, 1, now) != SQLITE_OK)
		goto out;
	while ((r = sqlite3_step(s)) == SQLITE_ROW) {
		state = (const char *)sqlite3_column_text(s, 0);
		n = sqlite3_column_int64(s, 1);
		st->total += n;
		if (state == NULL)
			continue;
		if (strcmp(state, "pending") == 0) {
			st->pending = n;
			st->pending_due = sqlite3_column_int64(s, 2);
		} else if (strcmp(state, "done") == 0) {
			st->done = n;
		} else if (strcmp(state, "dead") == 0) {
			st->dead = n;
		}
	}
	if (r != SQLITE_DONE)
		store_admin_db_error(db, "count states");
	else
		rc = 0;
out:
	(void)sqlite3_finalize(s);
	return rc;
}

int
store_admin_count(sqlite3 *db, const char *sql, int64_t arg, int64_t *ret)
{
	sqlite3_stmt *s = NULL;
	int rc = -1;

	if (store_admin_prep(db, sql, &s) == -1)
		goto out;
	if (sqlite3_bind_parameter_count(s) > 0 &&
	    sqlite3_bind_int64(s, 1, arg) != SQLITE_OK)
		goto out;
	if (sqlite3_step(s) != SQLITE_ROW) {
		store_admin_db_error(db, sql);
		goto out;
	}
	*ret = sqlite3_column_int64(s, 0);
	rc = 0;
out:
	(void)sqlite3_finalize(s);
	return rc;
}

int
store_sqlite_admin_status(struct store *store, int64_t now,
    int64_t day_start, struct store_admin_status *ret)
{
	sqlite3 *db = store_db(store);
	struct store_admin_status st;
	int r1, r2, ok = 0;

	memset(&st, 0, sizeof(st));
	st.day_start = day_start;
	if (store_admin_exec(db, "BEGIN") == -1)
		return -1;
	if (count_states(db, now, &st) == -1 ||
	    store_admin_count(db, "SELECT count(*) FROM events"
	    " WHERE received_at >= ?1", day_start, &st.received_today) == -1 ||
	    store_admin_count(db, "SELECT count(*) FROM pruned_keys", 0,
	    &st.tombstones) == -1 ||
	    store_admin_count(db, "SELECT count(*) FROM orders", 0,
	    &st.orders) == -1 ||
	    store_admin_count(db, "SELECT count(*) FROM orders"
	    " WHERE attention IS NOT NULL", 0, &st.orders_attention) == -1)
		goto out;
	/* Ids grow with receipt, and the partial index serves this. */
	r1 = one_event(db, "SELECT " STORE_ROW_COLS " FROM events"
	    " WHERE forward_state = 'pending' ORDER BY id LIMIT 1", 0, NULL,
	    0, &st.oldest_pending);
	r2 = one_event(db, "SELECT " STORE_ROW_COLS " FROM events"
	    " ORDER BY id DESC LIMIT 1", 0, NULL, 0, &st.last_received);
	st.has_oldest_pending = r1 == 1;
	st.has_last_received = r2 == 1;
	ok = r1 != -1 && r2 != -1;
out:
	if (store_admin_tx_end(db, ok) == -1) {
		store_admin_status_done(&st);
		return -1;
	}
	*ret = st;
	return 0;
}

void
store_admin_status_done(struct store_admin_status *st)
{
	if (st == NULL)
		return;
	event_row_done(&st->oldest_pending);
	event_row_done(&st->last_received);
	st->has_oldest_pending = 0;
	st->has_last_received = 0;
}

void
store_admin_events_free(struct event_row *rows, size_t n)
{
	size_t i;

	if (rows == NULL)
		return;
	for (i = 0; i < n; i++)
		event_row_done(&rows[i]);
	free(rows);
}

/* The list query for the filters given: only constant SQL text, every
 * value is bound (?1 state, ?2 type, ?3 order_id, ?4 since, ?5 limit).
 * Built per call so each filter can use its index (events_order,
 * events_received). */
static char *
list_sql(const struct store_admin_filter *f)
{
	const char *cond[4] = { "forward_state = ?1", "type = ?2",
	    "order_id = ?3", "received_at >= ?4" };
	int on[4] = { f->state != NULL, f->type != NULL, f->order_id != NULL,
	    f->since >= 0 };
	const char *join = " WHERE ";
	struct buf b;
	int i, bad = 0;

	buf_init(&b, 1024);
	bad |= buf_puts(&b, "SELECT " STORE_ROW_COLS " FROM events");
	for (i = 0; i < 4; i++) {
		if (!on[i])
			continue;
		bad |= buf_puts(&b, join);
		bad |= buf_puts(&b, cond[i]);
		join = " AND ";
	}
	bad |= buf_puts(&b, " ORDER BY id DESC LIMIT ?5");
	if (bad) {
		log_error("cfhookctl: out of memory");
		buf_done(&b);
		return NULL;
	}
	return buf_take(&b, NULL);
}

static int
list_bind(sqlite3_stmt *s, const struct store_admin_filter *f)
{
	int rc = SQLITE_OK;

	if (f->state != NULL)
		rc |= sqlite3_bind_text(s, 1, f->state, -1, SQLITE_STATIC);
	if (f->type != NULL)
		rc |= sqlite3_bind_text(s, 2, f->type, -1, SQLITE_STATIC);
	if (f->order_id != NULL)
		rc |= sqlite3_bind_text(s, 3, f->order_id, -1, SQLITE_STATIC);
	if (f->since >= 0)
		rc |= sqlite3_bind_int64(s, 4, f->since);
	rc |= sqlite3_bind_int64(s, 5, f->limit);
	return rc == SQLITE_OK ? 0 : -1;
}

/* Steps s, appending every row to *rows. 0 / -1. */
static int
collect_events(sqlite3 *db, sqlite3_stmt *s, size_t max,
    struct event_row **rows, size_t *n)
{
	struct event_row *v = NULL;
	size_t count = 0;
	int r = SQLITE_DONE;

	v = calloc(max == 0 ? 1 : max, sizeof(*v));
	if (v == NULL) {
		log_error("cfhookctl: out of memory");
		return -1;
	}
	while (count < max && (r = sqlite3_step(s)) == SQLITE_ROW) {
		if (store_row_read(s, 0, &v[count]) == -1) {
			log_error("cfhookctl: out of memory");
			goto fail;
		}
		count++;
	}
	if (count < max && r != SQLITE_DONE) {
		store_admin_db_error(db, "list");
		goto fail;
	}
	*rows = v;
	*n = count;
	return 0;
fail:
	store_admin_events_free(v, count);
	return -1;
}

int
store_sqlite_admin_list(struct store *store,
    const struct store_admin_filter *f, struct event_row **rows,
    size_t *n)
{
	sqlite3 *db = store_db(store);
	sqlite3_stmt *s = NULL;
	struct event_row *v = NULL;
	size_t count = 0;
	char *sql = NULL;
	int rc = -1, ok = 0;

	if (f->limit == 0 || f->limit > STORE_ADMIN_LIST_MAX) {
		log_error("cfhookctl: list limit %u out of range", f->limit);
		return -1;
	}
	if ((sql = list_sql(f)) == NULL || store_admin_exec(db, "BEGIN") == -1)
		goto out;
	if (store_admin_prep(db, sql, &s) == 0 && list_bind(s, f) == 0)
		ok = collect_events(db, s, f->limit, &v, &count) == 0;
	(void)sqlite3_finalize(s);
	if (store_admin_tx_end(db, ok) == -1) {
		store_admin_events_free(v, count);
		goto out;
	}
	if (count == 0) {
		free(v);
		v = NULL;
	}
	*rows = v;
	*n = count;
	rc = 0;
out:
	free(sql);
	return rc;
}

void
store_admin_history_free(struct store_admin_attempt *h, size_t n)
{
	size_t i;

	if (h == NULL)
		return;
	for (i = 0; i < n; i++)
		free(h[i].error);
	free(h);
}

/* Appends one forward_log row to the growing array *h of *n (cap *cap). */
static int
push_attempt(sqlite3_stmt *s, struct store_admin_attempt **h, size_t *n,
    size_t *cap)
{
	struct store_admin_attempt *a, *p;

	if (*n == *cap) {
		*cap = *cap == 0 ? 16 : *cap * 2;
		p = realloc(*h, *cap * sizeof(**h));
		if (p == NULL)
			return -1;
		*h = p;
	}
	a = &(*h)[*n];
	a->id = sqlite3_column_int64(s, 0);
	a->attempt = sqlite3_column_int64(s, 1);
	a->started_at = store_column_time(s, 2);
	a->finished_at = store_column_time(s, 3);
	a->ok = sqlite3_column_type(s, 4) == SQLITE_NULL ? -1 :
	    sqlite3_column_int(s, 4) != 0;
	if (store_column_copy(s, 5, &a->error, NULL) == -1)
		return -1;
	(*n)++;
	return 0;
}

static int
read_history(sqlite3 *db, int64_t event_id, struct store_admin_attempt **ret,
    size_t *nret)
{
	struct store_admin_attempt *h = NULL;
	sqlite3_stmt *s = NULL;
	size_t n = 0, cap = 0;
	int rc = -1, r;

	if (store_admin_prep(db, "SELECT id, attempt, started_at, finished_at,"
	    " ok, error FROM forward_log WHERE event_id = ?1 ORDER BY id",
	    &s) == -1 ||
	    sqlite3_bind_int64(s, 1, event_id) != SQLITE_OK)
		goto out;
	while ((r = sqlite3_step(s)) == SQLITE_ROW) {
		if (push_attempt(s, &h, &n, &cap) == -1) {
			log_error("cfhookctl: out of memory");
			goto out;
		}
	}
	if (r != SQLITE_DONE) {
		store_admin_db_error(db, "forward_log");
		goto out;
	}
	*ret = h;
	*nret = n;
	h = NULL;
	rc = 0;
out:
	(void)sqlite3_finalize(s);
	store_admin_history_free(h, n);
	return rc;
}

enum store_admin_result
store_sqlite_admin_get(struct store *store, int64_t id, const char *key,
    struct event_row *ret, struct store_admin_attempt **hist,
    size_t *nhist)
{
	sqlite3 *db = store_db(store);
	struct event_row e;
	struct store_admin_attempt *h = NULL;
	size_t n = 0;
	int found;

	memset(&e, 0, sizeof(e));
	if (store_admin_exec(db, "BEGIN") == -1)
		return STORE_ADMIN_ERROR;
	found = one_event(db, key != NULL ?
	    "SELECT " STORE_ROW_COLS ", body FROM events WHERE event_key = ?1" :
	    "SELECT " STORE_ROW_COLS ", body FROM events WHERE id = ?1", id, key,
	    1, &e);
	if (found == 1 && read_history(db, e.id, &h, &n) == -1)
		found = -1;
	if (store_admin_tx_end(db, found != -1) == -1) {
		event_row_done(&e);
		store_admin_history_free(h, n);
		return STORE_ADMIN_ERROR;
	}
	if (found == 0)
		return STORE_ADMIN_NOT_FOUND;
	*ret = e;
	*hist = h;
	*nhist = n;
	return STORE_ADMIN_OK;
}

int
store_sqlite_admin_tombstone(struct store *store, const char *key,
    int64_t *pruned_at, int64_t *deliveries)
{
	sqlite3 *db = store_db(store);
	sqlite3_stmt *s = NULL;
	int rc = -1, r;

	if (store_admin_prep(db, "SELECT pruned_at, deliveries FROM pruned_keys"
	    " WHERE event_key = ?1", &s) == -1 ||
	    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC) != SQLITE_OK)
		goto out;
	r = sqlite3_step(s);
	if (r == SQLITE_ROW) {
		*pruned_at = sqlite3_column_int64(s, 0);
		*deliveries = sqlite3_column_int64(s, 1);
		rc = 1;
	} else if (r == SQLITE_DONE) {
		rc = 0;
	} else {
		store_admin_db_error(db, "pruned_keys");
	}
out:
	(void)sqlite3_finalize(s);
	return rc;
}
