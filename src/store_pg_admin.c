/* store_pg_admin.c - the read queries of `cfhookctl` on PostgreSQL (status
 * counts, list, show: row, body, delivery history) and the daemon's counts
 * (STATUS=, /metrics): the twins of store_admin.c and store_stats.c.
 *
 * Each read that takes several queries runs in one REPEATABLE READ, READ
 * ONLY transaction: one consistent snapshot, and nothing the daemons wait
 * for. Must not: write anything, format output, or keep a result past its
 * call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "buf.h"
#include "clock.h"
#include "log.h"
#include "store_admin.h"
#include "store_pg.h"
#include "store_pg_admin.h"

int
pg_admin_begin(struct pg_store *st, int write)
{
	st->deadline_ms = clock_mono_ms() + PG_ADMIN_TIMEOUT_MS;
	if (pg_ready(st) == -1 || pg_cmd(st, write ? "BEGIN" :
	    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") == -1) {
		pg_log_error(st, "begin");
		st->deadline_ms = 0;
		return -1;
	}
	return 0;
}

int
pg_admin_end(struct pg_store *st, int ok)
{
	int rc = -1;

	if (ok) {
		rc = pg_commit(st);
		if (rc == -1)
			pg_log_error(st, "commit");
	}
	if (rc == -1)
		pg_rollback(st);
	st->deadline_ms = 0;
	return rc;
}

PGresult *
pg_admin_query(struct pg_store *st, const char *sql, struct pg_params *p)
{
	PGresult *res = pg_query(st, sql, p);

	if (p != NULL)
		pg_params_done(p);
	if (res == NULL)
		pg_log_error(st, sql);
	return res;
}

int
pg_admin_count(struct pg_store *st, const char *sql, int64_t arg,
    int has_arg, int64_t *ret)
{
	struct pg_params p;
	PGresult *res;

	pg_params_init(&p);
	if (has_arg)
		pg_p_int(&p, arg);
	res = pg_admin_query(st, sql, &p);
	if (res == NULL)
		return -1;
	*ret = PQntuples(res) > 0 ? pg_col_int(res, 0, 0, 0) : 0;
	PQclear(res);
	return 0;
}

/* The first row of `sql` (one parameter: key, or id), if any: 1 found, 0
 * none, -1 error. */
static int
one_event(struct pg_store *st, const char *sql, int64_t id, const char *key,
    int with_body, struct event_row *e)
{
	struct pg_params p;
	PGresult *res;
	int rc;

	pg_params_init(&p);
	if (key != NULL)
		pg_p_text(&p, key);
	else if (strchr(sql, '$') != NULL)
		pg_p_int(&p, id);
	res = pg_admin_query(st, sql, &p);
	if (res == NULL)
		return -1;
	rc = 1;
	if (PQntuples(res) == 0) {
		rc = 0;
	} else if (pg_row_read(res, 0, with_body, e) == -1) {
		log_error("cfhookctl: out of memory");
		rc = -1;
	}
	PQclear(res);
	return rc;
}

static int
count_states(struct pg_store *st, int64_t now, struct store_admin_status *s)
{
	struct pg_params p;
	PGresult *res;
	const char *state;
	int64_t n;
	int r;

	pg_params_init(&p);
	pg_p_int(&p, now);
	res = pg_admin_query(st, "SELECT forward_state, count(*),"
	    " count(*) FILTER (WHERE next_attempt_at <= $1) FROM events"
	    " GROUP BY forward_state", &p);
	if (res == NULL)
		return -1;
	for (r = 0; r < PQntuples(res); r++) {
		state = PQgetvalue(res, r, 0);
		n = pg_col_int(res, r, 1, 0);
		s->total += n;
		if (strcmp(state, "pending") == 0) {
			s->pending = n;
			s->pending_due = pg_col_int(res, r, 2, 0);
		} else if (strcmp(state, "done") == 0) {
			s->done = n;
		} else if (strcmp(state, "dead") == 0) {
			s->dead = n;
		}
	}
	PQclear(res);
	return 0;
}

int
store_pg_admin_status(struct store *base, int64_t now, int64_t day_start,
    struct store_admin_status *ret)
{
	struct pg_store *st = pg(base);
	struct store_admin_status s;
	int r1, r2, ok = 0;

	memset(&s, 0, sizeof(s));
	s.day_start = day_start;
	if (pg_admin_begin(st, 0) == -1)
		return -1;
	if (count_states(st, now, &s) == -1 ||
	    pg_admin_count(st, "SELECT count(*) FROM events"
	    " WHERE received_at >= $1", day_start, 1,
	    &s.received_today) == -1 ||
	    pg_admin_count(st, "SELECT count(*) FROM pruned_keys", 0, 0,
	    &s.tombstones) == -1 ||
	    pg_admin_count(st, "SELECT count(*) FROM orders", 0, 0,
	    &s.orders) == -1 ||
	    pg_admin_count(st, "SELECT count(*) FROM orders"
	    " WHERE attention IS NOT NULL", 0, 0, &s.orders_attention) == -1)
		goto out;
	r1 = one_event(st, "SELECT " STORE_ROW_COLS " FROM events"
	    " WHERE forward_state = 'pending' ORDER BY id LIMIT 1", 0, NULL,
	    0, &s.oldest_pending);
	r2 = one_event(st, "SELECT " STORE_ROW_COLS " FROM events"
	    " ORDER BY id DESC LIMIT 1", 0, NULL, 0, &s.last_received);
	s.has_oldest_pending = r1 == 1;
	s.has_last_received = r2 == 1;
	ok = r1 != -1 && r2 != -1;
out:
	if (pg_admin_end(st, ok) == -1) {
		store_admin_status_done(&s);
		return -1;
	}
	*ret = s;
	return 0;
}

/* The list query for the filters given: constant SQL text, every value a
 * parameter, numbered in the order the filters appear. */
static char *
list_sql(const struct store_admin_filter *f, struct pg_params *p)
{
	const char *cond[4] = { "forward_state = $", "type = $",
	    "order_id = $", "received_at >= $" };
	int on[4] = { f->state != NULL, f->type != NULL, f->order_id != NULL,
	    f->since >= 0 };
	const char *join = " WHERE ";
	char num[16];
	struct buf b;
	int i, bad = 0;

	buf_init(&b, 1024);
	bad |= buf_puts(&b, "SELECT " STORE_ROW_COLS " FROM events");
	for (i = 0; i < 4; i++) {
		if (!on[i])
			continue;
		bad |= buf_puts(&b, join);
		bad |= buf_puts(&b, cond[i]);
		(void)snprintf(num, sizeof(num), "%d", p->n + 1);
		bad |= buf_puts(&b, num);
		if (i == 0)
			pg_p_text(p, f->state);
		else if (i == 1)
			pg_p_text(p, f->type);
		else if (i == 2)
			pg_p_text(p, f->order_id);
		else
			pg_p_int(p, f->since);
		join = " AND ";
	}
	(void)snprintf(num, sizeof(num), "%d", p->n + 1);
	pg_p_int(p, f->limit);
	bad |= buf_puts(&b, " ORDER BY id DESC LIMIT $");
	bad |= buf_puts(&b, num);
	if (bad) {
		log_error("cfhookctl: out of memory");
		buf_done(&b);
		return NULL;
	}
	return buf_take(&b, NULL);
}

int
store_pg_admin_list(struct store *base, const struct store_admin_filter *f,
    struct event_row **rows, size_t *n)
{
	struct pg_store *st = pg(base);
	struct event_row *v = NULL;
	struct pg_params p;
	PGresult *res = NULL;
	size_t count = 0, i;
	char *sql;
	int ok = 0;

	if (f->limit == 0 || f->limit > STORE_ADMIN_LIST_MAX) {
		log_error("cfhookctl: list limit %u out of range", f->limit);
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
		for (i = 0; ok && i < count; i++) {
			if (pg_row_read(res, (int)i, 0, &v[i]) == -1) {
				log_error("cfhookctl: out of memory");
				store_admin_events_free(v, i);
				v = NULL;
				ok = 0;
			}
		}
	}
	PQclear(res);
	if (pg_admin_end(st, ok) == -1) {
		if (v != NULL)
			store_admin_events_free(v, count);
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

int
pg_admin_history(struct pg_store *st, int64_t event_id,
    struct store_admin_attempt **ret, size_t *nret)
{
	struct store_admin_attempt *h = NULL;
	struct pg_params p;
	PGresult *res;
	size_t n, i;
	int rc = -1;

	pg_params_init(&p);
	pg_p_int(&p, event_id);
	res = pg_admin_query(st, "SELECT id, attempt, started_at, finished_at,"
	    " ok, error FROM forward_log WHERE event_id = $1 ORDER BY id", &p);
	if (res == NULL)
		return -1;
	n = (size_t)PQntuples(res);
	if (n > 0 && (h = calloc(n, sizeof(*h))) == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		h[i].id = pg_col_int(res, (int)i, 0, 0);
		h[i].attempt = pg_col_int(res, (int)i, 1, 0);
		h[i].started_at = pg_col_int(res, (int)i, 2, -1);
		h[i].finished_at = pg_col_int(res, (int)i, 3, -1);
		h[i].ok = (int)pg_col_int(res, (int)i, 4, -1);
		if (pg_col_copy(res, (int)i, 5, &h[i].error, NULL) == -1)
			goto out;
	}
	*ret = h;
	*nret = n;
	h = NULL;
	rc = 0;
out:
	if (rc == -1)
		log_error("cfhookctl: out of memory");
	store_admin_history_free(h, n);
	PQclear(res);
	return rc;
}

enum store_admin_result
store_pg_admin_get(struct store *base, int64_t id, const char *key,
    struct event_row *ret, struct store_admin_attempt **hist,
    size_t *nhist)
{
	struct pg_store *st = pg(base);
	struct event_row e;
	struct store_admin_attempt *h = NULL;
	size_t n = 0;
	int found;

	memset(&e, 0, sizeof(e));
	if (pg_admin_begin(st, 0) == -1)
		return STORE_ADMIN_ERROR;
	found = one_event(st, key != NULL ?
	    "SELECT " STORE_ROW_COLS ", body FROM events WHERE event_key = $1" :
	    "SELECT " STORE_ROW_COLS ", body FROM events WHERE id = $1", id, key,
	    1, &e);
	if (found == 1 && pg_admin_history(st, e.id, &h, &n) == -1)
		found = -1;
	if (pg_admin_end(st, found != -1) == -1) {
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
store_pg_admin_tombstone(struct store *base, const char *key,
    int64_t *pruned_at, int64_t *deliveries)
{
	struct pg_store *st = pg(base);
	struct pg_params p;
	PGresult *res;
	int rc;

	if (pg_admin_begin(st, 0) == -1)
		return -1;
	pg_params_init(&p);
	pg_p_text(&p, key);
	res = pg_admin_query(st, "SELECT pruned_at, deliveries FROM"
	    " pruned_keys WHERE event_key = $1", &p);
	rc = res == NULL ? -1 : PQntuples(res) > 0;
	if (rc == 1) {
		*pruned_at = pg_col_int(res, 0, 0, 0);
		*deliveries = pg_col_int(res, 0, 1, 0);
	}
	PQclear(res);
	if (pg_admin_end(st, rc != -1) == -1)
		return -1;
	return rc;
}

/* The daemon's own counts: three small queries on its stats connection,
 * logged at debug (the caller retries on its next tick). */
int
store_pg_counts(struct store *base, int64_t since_ms,
    struct store_counts *ret)
{
	struct pg_store *st = pg(base);
	struct pg_params p;
	PGresult *res;

	pg_params_init(&p);
	pg_p_int(&p, since_ms);
	res = pg_ready(st) == -1 ? NULL : pg_query(st, "SELECT"
	    " (SELECT count(*) FROM events WHERE received_at >= $1),"
	    " (SELECT count(*) FROM events WHERE forward_state = 'pending'),"
	    " (SELECT count(*) FROM events WHERE forward_state = 'dead')", &p);
	pg_params_done(&p);
	if (res == NULL || PQntuples(res) != 1) {
		log_debug("store: counting: %s", st->err);
		PQclear(res);
		return -1;
	}
	ret->since = pg_col_int(res, 0, 0, 0);
	ret->pending = pg_col_int(res, 0, 1, 0);
	ret->dead = pg_col_int(res, 0, 2, 0);
	PQclear(res);
	return 0;
}
