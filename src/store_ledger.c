/* store_ledger.c - the SQL of the order ledger (DESIGN "Orders"): the
 * orders row and the payments it has counted, kept in the transaction of
 * the event they follow, and the stamp of the order's state on each event.
 *
 * Crash safety is the event's own: store.c calls store_ledger_record()
 * inside the item's savepoint, so the order changes exactly when the event
 * is committed, and a failed item or batch leaves neither. The stamp is
 * written once, when the event is recorded, because the envelope must say
 * what this event did to the order, not what later events did.
 *
 * Must not: decide anything about an order (ledger.c does), apply a
 * duplicate delivery, or log before the commit (store_ledger_report() runs
 * after it, so a rolled-back event raises nothing). */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "ledger.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "store_int.h"
#include "store_ledger.h"

enum lstmt {
	L_GET,
	L_ADD,
	L_SET,
	L_PAYMENT,
	L_STAMP,
	L_COUNT
};

static const char *const lsql[L_COUNT] = {
	[L_GET] = "SELECT state, order_amount, currency, paid_amount,"
	    " paid_currency, successes, first_event_at, paid_at,"
	    " paid_event_id, last_event_id, last_event_at, attention"
	    " FROM orders WHERE order_id = ?1",
	/* The writer is the only one who writes orders, inside the event's
	 * transaction: the row read by L_GET is the row written back, so an
	 * order is added or updated, never both (an UPSERT would probe the
	 * key twice per event). */
	[L_ADD] = "INSERT INTO orders (order_id, state, order_amount, currency,"
	    " paid_amount, paid_currency, successes, first_event_at, paid_at,"
	    " paid_event_id, last_event_id, last_event_at, attention)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
	[L_SET] = "UPDATE orders SET state = ?2, order_amount = ?3,"
	    " currency = ?4, paid_amount = ?5, paid_currency = ?6,"
	    " successes = ?7, first_event_at = ?8, paid_at = ?9,"
	    " paid_event_id = ?10, last_event_id = ?11, last_event_at = ?12,"
	    " attention = ?13 WHERE order_id = ?1",
	/* A payment counts once per order, whichever event brought it (a
	 * link event and its twin PAYMENT_SUCCESS_WEBHOOK share the id). */
	[L_PAYMENT] = "INSERT INTO order_payments (order_id, cf_payment_id,"
	    " event_id) VALUES (?1, ?2, ?3)"
	    " ON CONFLICT (order_id, cf_payment_id) DO NOTHING",
	[L_STAMP] = "UPDATE events SET order_state = ?2, order_paid_now = ?3,"
	    " order_attention = ?4 WHERE id = ?1",
};

struct store_ledger {
	sqlite3		*db;
	sqlite3_stmt	*s[L_COUNT];
};

/* What one event brings to the ledger; strings borrowed. */
struct ledger_input {
	const char *type;
	const char *order_id;
	const char *cf_payment_id;
	const char *payment_status;
	const char *amount;
	const char *currency;
	const char *order_amount;
	const char *order_currency;
	int64_t	 id;
	int64_t	 at_ms;
};

/* An orders row read into owned strings that its ledger_order borrows. */
struct order_row {
	struct ledger_order o;
	int	 stored;	/* read from the table (else new) */
	char	*text[4];	/* order_amount, currency, paid_*, owned */
};

int
store_ledger_open(sqlite3 *db, struct store_ledger **ret)
{
	struct store_ledger *sl;
	int i;

	sl = calloc(1, sizeof(*sl));
	if (sl == NULL) {
		log_error("store: ledger: out of memory");
		return -1;
	}
	sl->db = db;
	for (i = 0; i < L_COUNT; i++) {
		if (sqlite3_prepare_v3(db, lsql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &sl->s[i], NULL) != SQLITE_OK) {
			log_error("store: ledger: %s: %s", lsql[i],
			    sqlite3_errmsg(db));
			store_ledger_close(sl);
			return -1;
		}
	}
	*ret = sl;
	return 0;
}

void
store_ledger_close(struct store_ledger *sl)
{
	int i;

	if (sl == NULL)
		return;
	for (i = 0; i < L_COUNT; i++)
		(void)sqlite3_finalize(sl->s[i]);
	free(sl);
}

static void
order_row_done(struct order_row *r)
{
	size_t i;

	for (i = 0; i < sizeof(r->text) / sizeof(r->text[0]); i++)
		free(r->text[i]);
	memset(r, 0, sizeof(*r));
}

static int64_t
col_or(sqlite3_stmt *s, int i, int64_t dflt)
{
	if (sqlite3_column_type(s, i) == SQLITE_NULL)
		return dflt;
	return sqlite3_column_int64(s, i);
}

/* The current L_GET row into *r. -1 on no memory. */
static int
read_order(sqlite3_stmt *s, struct order_row *r)
{
	struct ledger_order *o = &r->o;
	int i;

	if (ledger_state_parse((const char *)sqlite3_column_text(s, 0),
	    &o->state) == -1)
		o->state = LEDGER_PENDING;	/* the CHECK forbids it */
	for (i = 0; i < 4; i++) {
		if (store_column_copy(s, 1 + i, &r->text[i], NULL) == -1)
			return -1;
	}
	o->order_amount = r->text[0];
	o->currency = r->text[1];
	o->paid_amount = r->text[2];
	o->paid_currency = r->text[3];
	o->successes = sqlite3_column_int64(s, 5);
	o->first_event_at = sqlite3_column_int64(s, 6);
	o->paid_at = col_or(s, 7, -1);
	o->paid_event_id = col_or(s, 8, 0);
	o->last_event_id = sqlite3_column_int64(s, 9);
	o->last_event_at = sqlite3_column_int64(s, 10);
	o->attention = ledger_attention_parse(
	    (const char *)sqlite3_column_text(s, 11));
	return 0;
}

/* The order of in->order_id, or a new one. 0 / -1. */
static int
get_order(struct store_ledger *sl, const struct ledger_input *in,
    struct order_row *r)
{
	sqlite3_stmt *s = sl->s[L_GET];
	int rc = -1, step;

	memset(r, 0, sizeof(*r));
	ledger_order_init(&r->o, in->at_ms);
	if (sqlite3_bind_text(s, 1, in->order_id, -1, SQLITE_STATIC) !=
	    SQLITE_OK)
		goto out;
	step = sqlite3_step(s);
	if (step == SQLITE_ROW) {
		rc = read_order(s, r);
		r->stored = 1;
	} else if (step == SQLITE_DONE) {
		rc = 0;
	}
out:
	(void)sqlite3_reset(s);
	(void)sqlite3_clear_bindings(s);
	return rc;
}

/* Whether a success is a payment the order has not counted: 1 new, 0
 * counted before, -1 error. A success without an id cannot be matched
 * with anything, so it is new. */
static int
new_payment(struct store_ledger *sl, const struct ledger_input *in)
{
	sqlite3_stmt *s = sl->s[L_PAYMENT];
	int rc = -1;

	if (in->cf_payment_id == NULL || in->cf_payment_id[0] == '\0')
		return 1;
	if (sqlite3_bind_text(s, 1, in->order_id, -1, SQLITE_STATIC) ==
	    SQLITE_OK && sqlite3_bind_text(s, 2, in->cf_payment_id, -1,
	    SQLITE_STATIC) == SQLITE_OK &&
	    sqlite3_bind_int64(s, 3, in->id) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_DONE)
		rc = sqlite3_changes(sl->db) == 1;
	(void)sqlite3_reset(s);
	(void)sqlite3_clear_bindings(s);
	return rc;
}

static int
bind_opt_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v == NULL)
		return sqlite3_bind_null(s, i);
	return sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
}

static int
bind_opt_int(sqlite3_stmt *s, int i, int64_t v, int64_t null_value)
{
	if (v == null_value)
		return sqlite3_bind_null(s, i);
	return sqlite3_bind_int64(s, i, v);
}

static int
put_order(struct store_ledger *sl, const char *order_id,
    const struct order_row *r, const char *attention)
{
	sqlite3_stmt *s = sl->s[r->stored ? L_SET : L_ADD];
	const struct ledger_order *o = &r->o;
	int rc = SQLITE_OK, ok;

	rc |= sqlite3_bind_text(s, 1, order_id, -1, SQLITE_STATIC);
	rc |= sqlite3_bind_text(s, 2, ledger_state_name(o->state), -1,
	    SQLITE_STATIC);
	rc |= bind_opt_text(s, 3, o->order_amount);
	rc |= bind_opt_text(s, 4, o->currency);
	rc |= bind_opt_text(s, 5, o->paid_amount);
	rc |= bind_opt_text(s, 6, o->paid_currency);
	rc |= sqlite3_bind_int64(s, 7, o->successes);
	rc |= sqlite3_bind_int64(s, 8, o->first_event_at);
	rc |= bind_opt_int(s, 9, o->paid_at, -1);
	rc |= bind_opt_int(s, 10, o->paid_event_id, 0);
	rc |= sqlite3_bind_int64(s, 11, o->last_event_id);
	rc |= sqlite3_bind_int64(s, 12, o->last_event_at);
	rc |= bind_opt_text(s, 13, attention[0] != '\0' ? attention : NULL);
	ok = rc == SQLITE_OK && sqlite3_step(s) == SQLITE_DONE &&
	    sqlite3_changes(sl->db) == 1;
	(void)sqlite3_reset(s);
	(void)sqlite3_clear_bindings(s);
	return ok ? 0 : -1;
}

/* The order after this event, on the event's own row. */
static int
stamp(struct store_ledger *sl, int64_t id, const struct ledger_order *o,
    int paid_now, const char *attention)
{
	sqlite3_stmt *s = sl->s[L_STAMP];
	int rc = SQLITE_OK, ok;

	rc |= sqlite3_bind_int64(s, 1, id);
	rc |= sqlite3_bind_text(s, 2, ledger_state_name(o->state), -1,
	    SQLITE_STATIC);
	rc |= sqlite3_bind_int(s, 3, paid_now);
	rc |= bind_opt_text(s, 4, attention[0] != '\0' ? attention : NULL);
	ok = rc == SQLITE_OK && sqlite3_step(s) == SQLITE_DONE &&
	    sqlite3_changes(sl->db) == 1;
	(void)sqlite3_reset(s);
	(void)sqlite3_clear_bindings(s);
	return ok ? 0 : -1;
}

/* Read, apply, write: one event's whole effect on its order. */
static int
apply_one(struct store_ledger *sl, const struct ledger_input *in,
    unsigned *raised)
{
	struct order_row r;
	struct ledger_event ev;
	struct ledger_step step;
	char attention[LEDGER_ATTENTION_MAX];
	int rc = -1, fresh;

	*raised = 0;
	if (!ledger_touches(in->type, in->order_id))
		return 0;
	if (get_order(sl, in, &r) == -1)
		goto out;
	memset(&ev, 0, sizeof(ev));
	ev.outcome = ledger_outcome_of(in->type, in->payment_status);
	if (ev.outcome == LEDGER_SUCCESS) {
		fresh = new_payment(sl, in);
		if (fresh == -1)
			goto out;
		ev.new_payment = fresh;
	}
	ev.amount = in->amount;
	ev.currency = in->currency;
	ev.order_amount = in->order_amount;
	ev.order_currency = in->order_currency;
	ev.event_id = in->id;
	ev.at_ms = in->at_ms;
	ledger_apply(&r.o, &ev, &step);
	ledger_attention_text(r.o.attention, attention, sizeof(attention));
	if (put_order(sl, in->order_id, &r, attention) == -1 ||
	    stamp(sl, in->id, &r.o, step.paid_now, attention) == -1)
		goto out;
	*raised = step.raised;
	rc = 0;
out:
	order_row_done(&r);
	return rc;
}

int
store_ledger_record(struct store_ledger *sl, const struct event *ev,
    int64_t id, int64_t received_ms, unsigned *raised)
{
	struct ledger_input in;

	in.type = ev->type;
	in.order_id = ev->order_id;
	in.cf_payment_id = ev->cf_payment_id;
	in.payment_status = ev->payment_status;
	in.amount = ev->amount;
	in.currency = ev->currency;
	in.order_amount = ev->detail[EVENT_ORDER_AMOUNT];
	in.order_currency = ev->detail[EVENT_ORDER_CURRENCY];
	in.id = id;
	in.at_ms = received_ms;
	return apply_one(sl, &in, raised);
}

void
store_ledger_report(struct store_item *const *items, size_t n)
{
	const struct store_item *it;
	struct log_fields lf;
	unsigned i;
	size_t k;

	for (k = 0; k < n; k++) {
		it = items[k];
		if (it->result != STORE_NEW || it->attention_raised == 0)
			continue;
		lf.event_key = it->ev->event_key;
		lf.cf_payment_id = it->ev->cf_payment_id;
		lf.order_id = it->ev->order_id;
		for (i = 0; i < LEDGER_FLAGS; i++) {
			if ((it->attention_raised & (1u << i)) == 0)
				continue;
			metrics_order_attention(ledger_attention_name(i));
			log_event(LOG_LVL_WARNING, &lf, "ledger: order '%s' "
			    "needs attention: %s (event id=%lld %s)",
			    lf.order_id, ledger_attention_name(i),
			    (long long)it->id, lf.event_key);
		}
	}
}

/* The rows the upgrade reads again: every one with an amount (the release
 * before printed JSON number amounts back from a double) and every payment
 * or Payment Link event (the ledger's), one at a time in id order so that
 * no statement is left stepping over the rows it updates. */
static const char SQL_NEXT_ROW[] =
    "SELECT id, type, order_id, cf_payment_id, payment_status, amount,"
    " currency, content_type, body, received_at FROM events"
    " WHERE id > ?1 AND (amount IS NOT NULL OR type IN"
    " ('PAYMENT_SUCCESS_WEBHOOK', 'PAYMENT_FAILED_WEBHOOK',"
    "  'PAYMENT_USER_DROPPED_WEBHOOK', 'PAYMENT_LINK_EVENT'))"
    " ORDER BY id LIMIT 1";
static const char SQL_AMOUNT[] =
    "UPDATE events SET amount = ?2 WHERE id = ?1";

/* One stored row, owned. */
struct stored {
	int64_t	 id;
	int64_t	 received_at;
	char	*text[8];	/* type .. body, in SQL_NEXT_ROW's order */
	size_t	 body_len;
};

enum { T_TYPE, T_ORDER, T_PAYMENT, T_STATUS, T_AMOUNT, T_CURRENCY, T_CT,
    T_BODY };

static void
stored_done(struct stored *r)
{
	size_t i;

	for (i = 0; i < 8; i++)
		free(r->text[i]);
	memset(r, 0, sizeof(*r));
}

/* The next row after `after`: 1 (*r filled), 0 none left, -1 error. */
static int
next_row(sqlite3_stmt *s, int64_t after, struct stored *r)
{
	int rc = -1, step, i;

	memset(r, 0, sizeof(*r));
	(void)sqlite3_bind_int64(s, 1, after);
	step = sqlite3_step(s);
	if (step == SQLITE_DONE) {
		rc = 0;
	} else if (step == SQLITE_ROW) {
		r->id = sqlite3_column_int64(s, 0);
		r->received_at = sqlite3_column_int64(s, 9);
		rc = 1;
		for (i = 0; i < 8 && rc == 1; i++) {
			if (store_column_copy(s, 1 + i, &r->text[i],
			    i == T_BODY ? &r->body_len : NULL) == -1)
				rc = -1;
		}
	}
	(void)sqlite3_reset(s);
	return rc;
}

static int
opt_differs(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a != b;
	return strcmp(a, b) != 0;
}

/* One stored row: its amount as sent, then its effect on its order, from
 * the columns that keyed it and the body read again. 0 / -1. */
static int
upgrade_row(struct store_ledger *sl, sqlite3_stmt *amount,
    const struct stored *r, int64_t *amounts, int64_t *applied)
{
	struct ledger_input in;
	struct event ev;
	unsigned raised;
	int rc = -1;

	if (event_from_row(r->text[T_CT], r->text[T_BODY], r->body_len,
	    &ev) == -1)
		return -1;
	if (opt_differs(ev.amount, r->text[T_AMOUNT])) {
		if (sqlite3_bind_int64(amount, 1, r->id) != SQLITE_OK ||
		    bind_opt_text(amount, 2, ev.amount) != SQLITE_OK ||
		    sqlite3_step(amount) != SQLITE_DONE)
			goto out;
		(*amounts)++;
	}
	in.type = r->text[T_TYPE];
	in.order_id = r->text[T_ORDER];
	in.cf_payment_id = r->text[T_PAYMENT];
	in.payment_status = r->text[T_STATUS];
	in.amount = ev.amount;
	in.currency = r->text[T_CURRENCY];
	in.order_amount = ev.detail[EVENT_ORDER_AMOUNT];
	in.order_currency = ev.detail[EVENT_ORDER_CURRENCY];
	in.id = r->id;
	in.at_ms = r->received_at;
	if (apply_one(sl, &in, &raised) == -1)
		goto out;
	*applied += ledger_touches(in.type, in.order_id);
	rc = 0;
out:
	(void)sqlite3_reset(amount);
	event_done(&ev);
	return rc;
}

int
store_ledger_upgrade(sqlite3 *db)
{
	struct store_ledger *sl = NULL;
	sqlite3_stmt *next = NULL, *amount = NULL;
	struct stored r;
	int64_t after = 0, rows = 0, amounts = 0, applied = 0, orders = 0;
	int rc = -1, got;

	memset(&r, 0, sizeof(r));
	if (store_ledger_open(db, &sl) == -1)
		return -1;
	if (sqlite3_prepare_v2(db, SQL_NEXT_ROW, -1, &next, NULL) !=
	    SQLITE_OK || sqlite3_prepare_v2(db, SQL_AMOUNT, -1, &amount,
	    NULL) != SQLITE_OK)
		goto fail;
	while ((got = next_row(next, after, &r)) == 1) {
		after = r.id;
		rows++;
		if (upgrade_row(sl, amount, &r, &amounts, &applied) == -1)
			goto fail;
		stored_done(&r);
	}
	if (got == -1)
		goto fail;
	rc = 0;
	if (rows == 0)
		goto out;		/* a new database: nothing to say */
	rc = -1;
	(void)sqlite3_finalize(next);
	next = NULL;
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM orders", -1, &next,
	    NULL) != SQLITE_OK || sqlite3_step(next) != SQLITE_ROW)
		goto fail;
	orders = sqlite3_column_int64(next, 0);
	log_info("store: upgrade: %lld amount(s) read again as sent; %lld "
	    "order(s) built from %lld payment and link event(s)",
	    (long long)amounts, (long long)orders, (long long)applied);
	rc = 0;
	goto out;
fail:
	log_error("store: upgrade: event %lld: %s", (long long)after,
	    sqlite3_errmsg(db));
out:
	stored_done(&r);
	(void)sqlite3_finalize(next);
	(void)sqlite3_finalize(amount);
	store_ledger_close(sl);
	return rc;
}
