/* store_orders.c - the order queries of `cfhookctl` (DESIGN "Orders"):
 * the ledger filtered, and one order's timeline (its row, its events and
 * their delivery attempts) from one snapshot.
 *
 * cfhookctl runs while the daemon writes (WAL), so each call is one
 * deferred read transaction: a consistent picture that never blocks the
 * writer. Must not: write, format output (ctl_order.c does), or keep a
 * statement past its call. */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "buf.h"
#include "log.h"
#include "store_int.h"
#include "store_orders.h"

#define ORDER_COLS	"order_id, state, order_amount, currency," \
	" paid_amount, paid_currency, successes, first_event_at, paid_at," \
	" paid_event_id, last_event_id, last_event_at, attention"

static int64_t
col_int(sqlite3_stmt *s, int i)
{
	if (sqlite3_column_type(s, i) == SQLITE_NULL)
		return -1;
	return sqlite3_column_int64(s, i);
}

static void
order_done(struct store_order *o)
{
	free(o->order_id);
	free(o->state);
	free(o->order_amount);
	free(o->currency);
	free(o->paid_amount);
	free(o->paid_currency);
	free(o->attention);
	memset(o, 0, sizeof(*o));
}

/* The current row of "SELECT ORDER_COLS" into *o. -1 on no memory. */
static int
read_order(sqlite3_stmt *s, struct store_order *o)
{
	char **text[] = { &o->order_id, &o->state, &o->order_amount,
	    &o->currency, &o->paid_amount, &o->paid_currency };
	size_t i;
	int bad = 0;

	memset(o, 0, sizeof(*o));
	for (i = 0; i < sizeof(text) / sizeof(text[0]); i++)
		bad |= store_column_copy(s, (int)i, text[i], NULL);
	o->successes = sqlite3_column_int64(s, 6);
	o->first_event_at = col_int(s, 7);
	o->paid_at = col_int(s, 8);
	o->paid_event_id = col_int(s, 9);
	o->last_event_id = col_int(s, 10);
	o->last_event_at = col_int(s, 11);
	bad |= store_column_copy(s, 12, &o->attention, NULL);
	if (bad) {
		log_error("cfhookctl: out of memory");
		order_done(o);
		return -1;
	}
	return 0;
}

void
store_orders_free(struct store_order *rows, size_t n)
{
	size_t i;

	if (rows == NULL)
		return;
	for (i = 0; i < n; i++)
		order_done(&rows[i]);
	free(rows);
}

/* Constant SQL text per filter, every value bound (?1 state, ?2 since,
 * ?3 limit). orders_last gives the order and --since; a state or attention
 * filter reads the rows in that order (no index of their own: each would
 * cost the writer an index update per event). */
static char *
list_sql(const struct store_orders_filter *f)
{
	const char *join = " WHERE ";
	struct buf b;
	int bad = 0;

	buf_init(&b, 1024);
	bad |= buf_puts(&b, "SELECT " ORDER_COLS " FROM orders");
	if (f->state != NULL) {
		bad |= buf_puts(&b, " WHERE state = ?1");
		join = " AND ";
	}
	if (f->attention) {
		bad |= buf_puts(&b, join);
		bad |= buf_puts(&b, "attention IS NOT NULL");
		join = " AND ";
	}
	if (f->since >= 0) {
		bad |= buf_puts(&b, join);
		bad |= buf_puts(&b, "last_event_at >= ?2");
	}
	bad |= buf_puts(&b, " ORDER BY last_event_at DESC, order_id LIMIT ?3");
	if (bad) {
		log_error("cfhookctl: out of memory");
		buf_done(&b);
		return NULL;
	}
	return buf_take(&b, NULL);
}

static int
collect_orders(sqlite3 *db, sqlite3_stmt *s, size_t max,
    struct store_order **rows, size_t *n)
{
	struct store_order *v;
	size_t count = 0;
	int r = SQLITE_DONE;

	v = calloc(max == 0 ? 1 : max, sizeof(*v));
	if (v == NULL) {
		log_error("cfhookctl: out of memory");
		return -1;
	}
	while (count < max && (r = sqlite3_step(s)) == SQLITE_ROW) {
		if (read_order(s, &v[count]) == -1)
			goto fail;
		count++;
	}
	if (count < max && r != SQLITE_DONE) {
		store_admin_db_error(db, "orders");
		goto fail;
	}
	*rows = v;
	*n = count;
	return 0;
fail:
	store_orders_free(v, count);
	return -1;
}

int
store_sqlite_orders_list(struct store *store,
    const struct store_orders_filter *f, struct store_order **rows,
    size_t *n)
{
	sqlite3 *db = store_db(store);
	sqlite3_stmt *s = NULL;
	struct store_order *v = NULL;
	size_t count = 0;
	char *sql = NULL;
	int rc = -1, ok = 0, r = SQLITE_OK;

	if (f->limit == 0 || f->limit > STORE_ADMIN_LIST_MAX) {
		log_error("cfhookctl: orders limit %u out of range", f->limit);
		return -1;
	}
	if ((sql = list_sql(f)) == NULL || store_admin_exec(db, "BEGIN") == -1)
		goto out;
	if (store_admin_prep(db, sql, &s) == 0) {
		if (f->state != NULL)
			r |= sqlite3_bind_text(s, 1, f->state, -1,
			    SQLITE_STATIC);
		if (f->since >= 0)
			r |= sqlite3_bind_int64(s, 2, f->since);
		r |= sqlite3_bind_int64(s, 3, f->limit);
		ok = r == SQLITE_OK &&
		    collect_orders(db, s, f->limit, &v, &count) == 0;
	}
	(void)sqlite3_finalize(s);
	if (store_admin_tx_end(db, ok) == -1) {
		store_orders_free(v, count);
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

static void
timeline_event_done(struct store_order_event *e)
{
	event_row_done(&e->ev);
	store_admin_history_free(e->attempts, e->nattempts);
	memset(e, 0, sizeof(*e));
}

void
store_orders_timeline_done(struct store_order_timeline *t)
{
	size_t i;

	if (t == NULL)
		return;
	order_done(&t->order);
	for (i = 0; i < t->nevents; i++)
		timeline_event_done(&t->events[i]);
	free(t->events);
	memset(t, 0, sizeof(*t));
}

/* Runs s (?1 = order_id) and calls fn for each row; -1 on error. */
static int
each_row(sqlite3 *db, const char *sql, const char *order_id,
    int (*fn)(sqlite3_stmt *, void *), void *arg)
{
	sqlite3_stmt *s = NULL;
	int rc = -1, r;

	if (store_admin_prep(db, sql, &s) == -1 ||
	    sqlite3_bind_text(s, 1, order_id, -1, SQLITE_STATIC) != SQLITE_OK)
		goto out;
	while ((r = sqlite3_step(s)) == SQLITE_ROW) {
		if (fn(s, arg) == -1)
			goto out;
	}
	if (r != SQLITE_DONE)
		store_admin_db_error(db, sql);
	else
		rc = 0;
out:
	(void)sqlite3_finalize(s);
	return rc;
}

static int
take_order(sqlite3_stmt *s, void *arg)
{
	struct store_order_timeline *t = arg;

	if (read_order(s, &t->order) == -1)
		return -1;
	t->has_order = 1;
	return 0;
}

static int
take_event(sqlite3_stmt *s, void *arg)
{
	struct store_order_timeline *t = arg;
	struct store_order_event *v;

	if (t->nevents == STORE_ADMIN_LIST_MAX)
		return 0;		/* the oldest ones: enough to read */
	v = realloc(t->events, (t->nevents + 1) * sizeof(*v));
	if (v == NULL) {
		log_error("cfhookctl: out of memory");
		return -1;
	}
	t->events = v;
	v[t->nevents].attempts = NULL;
	v[t->nevents].nattempts = 0;
	if (store_row_read(s, 0, &v[t->nevents].ev) == -1) {
		log_error("cfhookctl: out of memory");
		return -1;
	}
	t->nevents++;
	return 0;
}

/* Where take_attempt() is in the events. */
struct attempt_walk {
	struct store_order_timeline *t;
	size_t	 at;
};

/* A forward_log row (event_id first) onto its event; both come sorted by
 * event id, so the walk only moves forward. */
static int
take_attempt(sqlite3_stmt *s, void *arg)
{
	struct attempt_walk *w = arg;
	struct store_order_event *e;
	struct store_admin_attempt *a;
	int64_t event_id = sqlite3_column_int64(s, 0);

	while (w->at < w->t->nevents && w->t->events[w->at].ev.id < event_id)
		w->at++;
	if (w->at == w->t->nevents || w->t->events[w->at].ev.id != event_id)
		return 0;	/* an event past the cap */
	e = &w->t->events[w->at];
	a = realloc(e->attempts, (e->nattempts + 1) * sizeof(*a));
	if (a == NULL) {
		log_error("cfhookctl: out of memory");
		return -1;
	}
	e->attempts = a;
	a += e->nattempts;
	memset(a, 0, sizeof(*a));
	a->id = sqlite3_column_int64(s, 1);
	a->attempt = sqlite3_column_int64(s, 2);
	a->started_at = col_int(s, 3);
	a->finished_at = col_int(s, 4);
	a->ok = (int)col_int(s, 5);
	e->nattempts++;
	if (store_column_copy(s, 6, &a->error, NULL) == -1) {
		log_error("cfhookctl: out of memory");
		return -1;
	}
	return 0;
}

enum store_admin_result
store_sqlite_orders_get(struct store *store, const char *order_id,
    struct store_order_timeline *ret)
{
	sqlite3 *db = store_db(store);
	struct store_order_timeline t;
	struct attempt_walk walk = { NULL, 0 };
	int ok;

	memset(&t, 0, sizeof(t));
	walk.t = &t;
	if (store_admin_exec(db, "BEGIN") == -1)
		return STORE_ADMIN_ERROR;
	ok = each_row(db, "SELECT " ORDER_COLS " FROM orders"
	    " WHERE order_id = ?1", order_id, take_order, &t) == 0 &&
	    each_row(db, "SELECT " STORE_ROW_COLS " FROM events"
	    " WHERE order_id = ?1 ORDER BY id", order_id, take_event,
	    &t) == 0 &&
	    each_row(db, "SELECT l.event_id, l.id, l.attempt, l.started_at,"
	    " l.finished_at, l.ok, l.error FROM forward_log AS l"
	    " JOIN events AS e ON e.id = l.event_id WHERE e.order_id = ?1"
	    " ORDER BY l.event_id, l.id", order_id, take_attempt, &walk) == 0;
	if (store_admin_tx_end(db, ok) == -1) {
		store_orders_timeline_done(&t);
		return STORE_ADMIN_ERROR;
	}
	if (!t.has_order && t.nevents == 0)
		return STORE_ADMIN_NOT_FOUND;
	*ret = t;
	return STORE_ADMIN_OK;
}
