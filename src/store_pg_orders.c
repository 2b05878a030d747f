/* store_pg_orders.c - the order queries of `cfhookctl` on PostgreSQL
 * (DESIGN "Orders"): the ledger filtered, and one order's timeline from one
 * snapshot. The twin of store_orders.c; the rows are freed by its
 * store_orders_free() and store_orders_timeline_done().
 *
 * Must not: write, format output, or keep a result past its call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "buf.h"
#include "log.h"
#include "store_orders.h"
#include "store_pg.h"
#include "store_pg_admin.h"

#define ORDER_COLS	"order_id, state, order_amount, currency," \
	" paid_amount, paid_currency, successes, first_event_at, paid_at," \
	" paid_event_id, last_event_id, last_event_at, attention"

/* Row r of "SELECT ORDER_COLS" into *o (zeroed first). -1 on no memory,
 * what was copied left for the caller's free. */
static int
read_order(const PGresult *res, int r, struct store_order *o)
{
	char **text[] = { &o->order_id, &o->state, &o->order_amount,
	    &o->currency, &o->paid_amount, &o->paid_currency };
	size_t i;
	int bad = 0;

	memset(o, 0, sizeof(*o));
	for (i = 0; i < sizeof(text) / sizeof(text[0]); i++)
		bad |= pg_col_copy(res, r, (int)i, text[i], NULL);
	o->successes = pg_col_int(res, r, 6, 0);
	o->first_event_at = pg_col_int(res, r, 7, -1);
	o->paid_at = pg_col_int(res, r, 8, -1);
	o->paid_event_id = pg_col_int(res, r, 9, -1);
	o->last_event_id = pg_col_int(res, r, 10, -1);
	o->last_event_at = pg_col_int(res, r, 11, -1);
	bad |= pg_col_copy(res, r, 12, &o->attention, NULL);
	return bad ? -1 : 0;
}

/* Constant SQL text per filter, every value a parameter numbered in the
 * order the filters appear. */
static char *
list_sql(const struct store_orders_filter *f, struct pg_params *p)
{
	const char *join = " WHERE ";
	char num[48];
	struct buf b;
	int bad = 0;

	buf_init(&b, 1024);
	bad |= buf_puts(&b, "SELECT " ORDER_COLS " FROM orders");
	if (f->state != NULL) {
		pg_p_text(p, f->state);
		(void)snprintf(num, sizeof(num), " WHERE state = $%d", p->n);
		bad |= buf_puts(&b, num);
		join = " AND ";
	}
	if (f->attention) {
		bad |= buf_puts(&b, join);
		bad |= buf_puts(&b, "attention IS NOT NULL");
		join = " AND ";
	}
	if (f->since >= 0) {
		pg_p_int(p, f->since);
		(void)snprintf(num, sizeof(num), "%slast_event_at >= $%d",
		    join, p->n);
		bad |= buf_puts(&b, num);
	}
	pg_p_int(p, f->limit);
	(void)snprintf(num, sizeof(num), " ORDER BY last_event_at DESC,"
	    " order_id LIMIT $%d", p->n);
	bad |= buf_puts(&b, num);
	if (bad) {
		log_error("cfhookctl: out of memory");
		buf_done(&b);
		return NULL;
	}
	return buf_take(&b, NULL);
}

int
store_pg_orders_list(struct store *base, const struct store_orders_filter *f,
    struct store_order **rows, size_t *n)
{
	struct pg_store *st = pg(base);
	struct store_order *v = NULL;
	struct pg_params p;
	PGresult *res;
	size_t count = 0, i;
	char *sql;
	int ok = 0;

	if (f->limit == 0 || f->limit > STORE_ADMIN_LIST_MAX) {
		log_error("cfhookctl: orders limit %u out of range", f->limit);
		return -1;
	}
	pg_params_init(&p);
	sql = list_sql(f, &p);
	if (sql == NULL || pg_admin_begin(st, 0) == -1) {
		pg_params_done(&p);
		free(sql);
		return -1;
	}
	res = pg_admin_query(st, sql, &p);
	free(sql);
	if (res != NULL) {
		count = (size_t)PQntuples(res);
		v = calloc(count == 0 ? 1 : count, sizeof(*v));
		ok = v != NULL;
		for (i = 0; ok && i < count; i++)
			ok = read_order(res, (int)i, &v[i]) == 0;
		if (!ok)
			log_error("cfhookctl: out of memory");
	}
	PQclear(res);
	if (pg_admin_end(st, ok) == -1) {
		store_orders_free(v, count);
		return -1;
	}
	if (count == 0) {
		free(v);
		v = NULL;
	}
	*rows = v;
	*n = count;
	return 0;
}

/* The events of the timeline (the oldest STORE_ADMIN_LIST_MAX). */
static int
take_events(const PGresult *res, struct store_order_timeline *t)
{
	size_t n = (size_t)PQntuples(res), i;

	if (n > STORE_ADMIN_LIST_MAX)
		n = STORE_ADMIN_LIST_MAX;
	if (n == 0)
		return 0;
	t->events = calloc(n, sizeof(*t->events));
	if (t->events == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		t->nevents = i + 1;
		if (pg_row_read(res, (int)i, 0, &t->events[i].ev) == -1)
			return -1;
	}
	return 0;
}

/* forward_log rows (event_id first, sorted by it) onto their events, which
 * are sorted by id too: the walk only moves forward. */
static int
take_attempts(const PGresult *res, struct store_order_timeline *t)
{
	struct store_order_event *e;
	struct store_admin_attempt *a;
	size_t at = 0;
	int64_t event_id;
	int r;

	for (r = 0; r < PQntuples(res); r++) {
		event_id = pg_col_int(res, r, 0, 0);
		while (at < t->nevents && t->events[at].ev.id < event_id)
			at++;
		if (at == t->nevents || t->events[at].ev.id != event_id)
			continue;	/* an event past the cap */
		e = &t->events[at];
		a = realloc(e->attempts, (e->nattempts + 1) * sizeof(*a));
		if (a == NULL)
			return -1;
		e->attempts = a;
		a += e->nattempts;
		memset(a, 0, sizeof(*a));
		e->nattempts++;
		a->id = pg_col_int(res, r, 1, 0);
		a->attempt = pg_col_int(res, r, 2, 0);
		a->started_at = pg_col_int(res, r, 3, -1);
		a->finished_at = pg_col_int(res, r, 4, -1);
		a->ok = (int)pg_col_int(res, r, 5, -1);
		if (pg_col_copy(res, r, 6, &a->error, NULL) == -1)
			return -1;
	}
	return 0;
}

/* Runs sql with $1 = order_id and hands the rows to fn. 0 / -1. */
static int
each(struct pg_store *st, const char *sql, const char *order_id,
    int (*fn)(const PGresult *, struct store_order_timeline *),
    struct store_order_timeline *t)
{
	struct pg_params p;
	PGresult *res;
	int rc;

	pg_params_init(&p);
	pg_p_text(&p, order_id);
	res = pg_admin_query(st, sql, &p);
	if (res == NULL)
		return -1;
	rc = fn(res, t);
	if (rc == -1)
		log_error("cfhookctl: out of memory");
	PQclear(res);
	return rc;
}

static int
take_order(const PGresult *res, struct store_order_timeline *t)
{
	if (PQntuples(res) == 0)
		return 0;
	t->has_order = 1;
	return read_order(res, 0, &t->order);
}

enum store_admin_result
store_pg_orders_get(struct store *base, const char *order_id,
    struct store_order_timeline *ret)
{
	struct pg_store *st = pg(base);
	struct store_order_timeline t;
	int ok;

	memset(&t, 0, sizeof(t));
	if (pg_admin_begin(st, 0) == -1)
		return STORE_ADMIN_ERROR;
	ok = each(st, "SELECT " ORDER_COLS " FROM orders WHERE order_id = $1",
	    order_id, take_order, &t) == 0 &&
	    each(st, "SELECT " STORE_ROW_COLS " FROM events"
	    " WHERE order_id = $1 ORDER BY id", order_id, take_events,
	    &t) == 0 &&
	    each(st, "SELECT l.event_id, l.id, l.attempt, l.started_at,"
	    " l.finished_at, l.ok, l.error FROM forward_log AS l"
	    " JOIN events AS e ON e.id = l.event_id WHERE e.order_id = $1"
	    " ORDER BY l.event_id, l.id", order_id, take_attempts, &t) == 0;
	if (pg_admin_end(st, ok) == -1) {
		store_orders_timeline_done(&t);
		return STORE_ADMIN_ERROR;
	}
	if (!t.has_order && t.nevents == 0)
		return STORE_ADMIN_NOT_FOUND;
	*ret = t;
	return STORE_ADMIN_OK;
}
