/* store_copy.c - an SQLite database moved into PostgreSQL (store_copy.h):
 * one read snapshot of the source, one COPY per table into the target, all
 * in one transaction there, so the target ends with every row or none.
 *
 * The only store file that speaks to both backends: it reads with the
 * SQLite handle (store_int.h) and writes with libpq (store_pg.h). Values
 * go as COPY's text format: integers as digits, text as it is (bytes that
 * are not UTF-8 as \xNN, as the PostgreSQL backend stores them), the body
 * as bytea hex: its exact bytes.
 *
 * Must not: write to the source, or leave a target half copied. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "buf.h"
#include "clock.h"
#include "log.h"
#include "store_copy.h"
#include "store_int.h"
#include "store_pg.h"
#include "store_pg_admin.h"
#include "utf8.h"

/* What is copied; the columns have the same names and meaning in both
 * (store.c, store_pg.c). types: one letter per column, i integer, t text,
 * b bytes. health_probe is the daemon's, written again by it. */
static const struct {
	const char *name;
	const char *cols;
	const char *order;
	const char *types;
} tables[STORE_COPY_TABLES] = {
	{ "events", "id, event_key, type, cf_payment_id, order_id,"
	  " payment_status, amount, currency, event_time, content_type, body,"
	  " received_at, last_seen_at, deliveries, forward_state,"
	  " forward_attempts, last_error, forwarded_at, next_attempt_at,"
	  " replay_base, idempotency_key, webhook_version, order_state,"
	  " order_paid_now, order_attention", "id",
	  "itttttttttbiiititiiitttit" },
	{ "forward_log", "id, event_id, attempt, started_at, finished_at, ok,"
	  " error", "id", "iiiiiit" },
	{ "pruned_keys", "event_key, pruned_at, deliveries", "event_key",
	  "tii" },
	{ "form_signatures", "digest, event_id", "digest", "ti" },
	{ "orders", "order_id, state, order_amount, currency, paid_amount,"
	  " paid_currency, successes, first_event_at, paid_at, paid_event_id,"
	  " last_event_id, last_event_at, attention", "order_id",
	  "ttttttiiiiiit" },
	{ "order_payments", "order_id, cf_payment_id, event_id",
	  "order_id, cf_payment_id", "tti" },
};

/* The table being streamed: its statement on the source and its count. */
struct feed {
	struct pg_store *to;
	sqlite3_stmt *s;
	const char *types;
	int64_t	 rows;
	int	 done;		/* stepped to SQLITE_DONE (stepping again
				 * would start the query over) */
	int	 failed;	/* the source failed (logged) */
};

/* Text in COPY's text format: backslash, tab, newline and CR escaped; a
 * byte that is not part of UTF-8 (or NUL) as \xNN (its backslash escaped
 * for COPY too). */
static int
put_text(struct buf *b, const unsigned char *p, size_t n)
{
	char esc[8];
	size_t i = 0, l;
	int bad = 0;

	while (i < n && !bad) {
		l = p[i] == 0 ? 0 : utf8_seq(p + i, n - i);
		if (l == 0) {
			(void)snprintf(esc, sizeof(esc), "\\\\x%02x", p[i]);
			bad |= buf_puts(b, esc);
			i++;
		} else if (l == 1 && (p[i] == '\\' || p[i] == '\t' ||
		    p[i] == '\n' || p[i] == '\r')) {
			bad |= buf_puts(b, p[i] == '\\' ? "\\\\" :
			    p[i] == '\t' ? "\\t" : p[i] == '\n' ? "\\n" :
			    "\\r");
			i++;
		} else {
			bad |= buf_append(b, p + i, l);
			i += l;
		}
	}
	return bad;
}

/* bytea's hex input, its backslash escaped for COPY: \\x then two digits a
 * byte. */
static int
put_bytes(struct buf *b, const unsigned char *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char pair[2];
	size_t i;
	int bad;

	bad = buf_puts(b, "\\\\x");
	for (i = 0; i < n && !bad; i++) {
		pair[0] = hex[p[i] >> 4];
		pair[1] = hex[p[i] & 0x0f];
		bad |= buf_append(b, pair, 2);
	}
	return bad;
}

/* The current source row as one COPY line. */
static int
put_row(struct buf *b, sqlite3_stmt *s, const char *types)
{
	char num[24];
	int i, n = (int)strlen(types), bad = 0;
	const unsigned char *p;

	for (i = 0; i < n && !bad; i++) {
		if (i > 0)
			bad |= buf_puts(b, "\t");
		if (sqlite3_column_type(s, i) == SQLITE_NULL) {
			bad |= buf_puts(b, "\\N");
			continue;
		}
		if (types[i] == 'i') {
			(void)snprintf(num, sizeof(num), "%" PRId64,
			    (int64_t)sqlite3_column_int64(s, i));
			bad |= buf_puts(b, num);
			continue;
		}
		p = sqlite3_column_blob(s, i);	/* TEXT or BLOB, as stored */
		bad |= (types[i] == 'b' ? put_bytes : put_text)(b, p,
		    (size_t)sqlite3_column_bytes(s, i));
	}
	return bad | buf_puts(b, "\n");
}

/* pg_copy_in()'s producer: rows until the chunk is full. */
static int
next_chunk(void *arg, struct buf *out)
{
	struct feed *f = arg;
	int r;

	/* Each chunk gets the whole timeout: a big table takes its time. */
	f->to->deadline_ms = clock_mono_ms() + PG_ADMIN_TIMEOUT_MS;
	while (!f->done && out->len < PG_COPY_CHUNK) {
		r = sqlite3_step(f->s);
		if (r == SQLITE_DONE) {
			f->done = 1;
			break;
		}
		if (r != SQLITE_ROW) {
			store_admin_db_error(sqlite3_db_handle(f->s), "copy");
			f->failed = 1;
			return -1;
		}
		if (put_row(out, f->s, f->types) != 0) {
			log_error("cfhookctl: copy: out of memory");
			f->failed = 1;
			return -1;
		}
		f->rows++;
	}
	return out->len > 0 ? 1 : 0;
}

static size_t
columns(const char *cols)
{
	size_t n = 1;

	for (; *cols != '\0'; cols++)
		n += *cols == ',';
	return n;
}

/* One table, source to target. 0 / -1 (logged). */
static int
copy_table(sqlite3 *db, struct pg_store *to, size_t t, int64_t *rows)
{
	struct feed f;
	char sql[1024];
	int rc;

	memset(&f, 0, sizeof(f));
	f.to = to;
	f.types = tables[t].types;
	if (strlen(f.types) != columns(tables[t].cols)) {
		log_error("cfhookctl: copy %s: the column types do not match "
		    "the columns", tables[t].name);
		return -1;
	}
	(void)snprintf(sql, sizeof(sql), "SELECT %s FROM %s ORDER BY %s",
	    tables[t].cols, tables[t].name, tables[t].order);
	if (store_admin_prep(db, sql, &f.s) == -1)
		return -1;
	(void)snprintf(sql, sizeof(sql), "COPY %s (%s) FROM STDIN",
	    tables[t].name, tables[t].cols);
	rc = pg_copy_in(to, sql, next_chunk, &f);
	(void)sqlite3_finalize(f.s);
	if (rc == -1 && !f.failed)
		log_error("store: '%s': copy %s: %s", to->base.name,
		    tables[t].name, to->err);
	*rows = f.rows;
	return rc;
}

/* Inside the target's transaction: its tables locked against writers,
 * and empty. 1 empty, 0 not, -1 error (logged). */
static int
target_empty(struct pg_store *to)
{
	int64_t n = -1;

	if (pg_cmd(to, "LOCK TABLE events, forward_log, pruned_keys,"
	    " form_signatures, orders, order_payments IN EXCLUSIVE MODE") ==
	    -1) {
		pg_log_error(to, "copy: lock");
		return -1;
	}
	if (pg_admin_count(to, "SELECT (SELECT count(*) FROM events) +"
	    " (SELECT count(*) FROM forward_log) +"
	    " (SELECT count(*) FROM pruned_keys) +"
	    " (SELECT count(*) FROM form_signatures) +"
	    " (SELECT count(*) FROM orders) +"
	    " (SELECT count(*) FROM order_payments)", 0, 0, &n) == -1)
		return -1;
	return n == 0;
}

/* The identity columns go on after the highest id copied. */
static int
sequences_on(struct pg_store *to)
{
	if (pg_cmd(to, "SELECT setval(pg_get_serial_sequence('events', 'id'),"
	    " coalesce((SELECT max(id) FROM events), 0) + 1, false);"
	    " SELECT setval(pg_get_serial_sequence('forward_log', 'id'),"
	    " coalesce((SELECT max(id) FROM forward_log), 0) + 1, false)") ==
	    -1) {
		pg_log_error(to, "copy: sequences");
		return -1;
	}
	return 0;
}

static enum store_copy_result
copy_all(sqlite3 *db, struct pg_store *to, struct store_copy_counts *c)
{
	size_t t;
	int empty;

	empty = target_empty(to);
	if (empty != 1)
		return empty == 0 ? STORE_COPY_NOT_EMPTY : STORE_COPY_ERROR;
	for (t = 0; t < STORE_COPY_TABLES; t++) {
		c->table[t] = tables[t].name;
		if (copy_table(db, to, t, &c->rows[t]) == -1)
			return STORE_COPY_ERROR;
	}
	return sequences_on(to) == 0 ? STORE_COPY_OK : STORE_COPY_ERROR;
}

enum store_copy_result
store_copy(struct store *from, struct store *to, struct store_copy_counts *ret)
{
	struct store_copy_counts c;
	enum store_copy_result r;
	sqlite3 *db = store_db(from);
	struct pg_store *pt;

	if (db == NULL || to->be != &store_pg_backend) {
		log_error("cfhookctl: copy: from an SQLite database to a "
		    "PostgreSQL one only");
		return STORE_COPY_UNSUPPORTED;
	}
	pt = pg(to);
	memset(&c, 0, sizeof(c));
	/* One snapshot of the source for every table. */
	if (store_admin_exec(db, "BEGIN") == -1)
		return STORE_COPY_ERROR;
	if (pg_admin_begin(pt, 1) == -1) {
		(void)store_admin_tx_end(db, 0);
		return STORE_COPY_ERROR;
	}
	r = copy_all(db, pt, &c);
	pt->deadline_ms = clock_mono_ms() + PG_ADMIN_TIMEOUT_MS;
	if (pg_admin_end(pt, r == STORE_COPY_OK) == -1 && r == STORE_COPY_OK)
		r = STORE_COPY_ERROR;
	(void)store_admin_tx_end(db, 0);	/* read only: nothing to keep */
	if (r == STORE_COPY_OK)
		*ret = c;
	return r;
}
