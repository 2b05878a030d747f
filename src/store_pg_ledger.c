/* store_pg_ledger.c - the order ledger on PostgreSQL (DESIGN "Orders"): the
 * orders row and the payments it counted, kept in the transaction of the
 * event they follow, and the stamp of the order's state on each event. The
 * twin of store_ledger.c: ledger.c decides, this reads and writes.
 *
 * Exact across instances because the batch holds the order's advisory lock
 * (store_pg.c, lock_batch()) before it reads the row: no other writer
 * changes the order between this read and this write, and the read (a
 * statement after the lock was granted) sees every change committed before.
 * Must not: decide anything about an order, apply a duplicate delivery, or
 * log before the commit (store_ledger_report() runs after it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "ledger.h"
#include "store_pg.h"

/* The order (one row whether it exists or not: state is NULL for a new
 * one), and whether the payment $2 was counted for it before: a payment
 * counts once per order, whichever event brought it (a link event and its
 * twin PAYMENT_SUCCESS_WEBHOOK share the id). */
static const struct pg_stmt L_GET = { "cfh_order_get",
	"SELECT o.state, o.order_amount, o.currency, o.paid_amount,"
	" o.paid_currency, o.successes, o.first_event_at, o.paid_at,"
	" o.paid_event_id, o.last_event_id, o.last_event_at, o.attention,"
	" EXISTS (SELECT 1 FROM order_payments WHERE order_id = $1"
	"   AND cf_payment_id = $2)"
	" FROM (SELECT 1) AS one LEFT JOIN orders o ON o.order_id = $1" };
/* The payment counted ($16, when not NULL), the order written back and
 * the event stamped, in one statement. */
static const struct pg_stmt L_PUT = { "cfh_order_put",
	"WITH p AS (INSERT INTO order_payments (order_id, cf_payment_id,"
	" event_id) SELECT $1, $16::text, $15 WHERE $16::text IS NOT NULL"
	" ON CONFLICT (order_id, cf_payment_id) DO NOTHING RETURNING 1),"
	" o AS (INSERT INTO orders (order_id, state, order_amount,"
	" currency, paid_amount, paid_currency, successes, first_event_at,"
	" paid_at, paid_event_id, last_event_id, last_event_at, attention)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
	" ON CONFLICT (order_id) DO UPDATE SET state = excluded.state,"
	" order_amount = excluded.order_amount, currency = excluded.currency,"
	" paid_amount = excluded.paid_amount,"
	" paid_currency = excluded.paid_currency,"
	" successes = excluded.successes,"
	" first_event_at = excluded.first_event_at,"
	" paid_at = excluded.paid_at, paid_event_id = excluded.paid_event_id,"
	" last_event_id = excluded.last_event_id,"
	" last_event_at = excluded.last_event_at,"
	" attention = excluded.attention RETURNING 1)"
	" UPDATE events SET order_state = $2, order_paid_now = $14,"
	" order_attention = $13 WHERE id = $15" };

/* An orders row read into owned strings that its ledger_order borrows. */
struct order_row {
	struct ledger_order o;
	char	*text[4];	/* order_amount, currency, paid_*, owned */
};

static void
order_row_done(struct order_row *r)
{
	size_t i;

	for (i = 0; i < 4; i++)
		free(r->text[i]);
	memset(r, 0, sizeof(*r));
}

/* The order of ev's order_id, or a new one; *counted: whether ev's
 * payment was counted for it before. 0 / -1. */
static int
get_order(struct pg_store *st, const struct event *ev, int64_t at_ms,
    struct order_row *r, int *counted)
{
	struct ledger_order *o = &r->o;
	struct pg_params p;
	PGresult *res;
	int i, rc = 0;

	memset(r, 0, sizeof(*r));
	ledger_order_init(o, at_ms);
	pg_params_init(&p);
	pg_p_text(&p, ev->order_id);
	pg_p_text(&p, ev->cf_payment_id);
	res = pg_run(st, &L_GET, &p);
	pg_params_done(&p);
	if (res == NULL)
		return -1;
	if (PQntuples(res) != 1) {
		(void)snprintf(st->err, sizeof(st->err), "no order row");
		st->sqlstate[0] = '\0';
		PQclear(res);
		return -1;
	}
	*counted = strcmp(PQgetvalue(res, 0, 12), "t") == 0;
	if (PQgetisnull(res, 0, 0))
		goto out;		/* a new order */
	if (ledger_state_parse(PQgetvalue(res, 0, 0), &o->state) == -1)
		o->state = LEDGER_PENDING;	/* the CHECK forbids it */
	for (i = 0; i < 4 && rc == 0; i++)
		rc = pg_col_copy(res, 0, 1 + i, &r->text[i], NULL);
	o->order_amount = r->text[0];
	o->currency = r->text[1];
	o->paid_amount = r->text[2];
	o->paid_currency = r->text[3];
	o->successes = pg_col_int(res, 0, 5, 0);
	o->first_event_at = pg_col_int(res, 0, 6, at_ms);
	o->paid_at = pg_col_int(res, 0, 7, -1);
	o->paid_event_id = pg_col_int(res, 0, 8, 0);
	o->last_event_id = pg_col_int(res, 0, 9, 0);
	o->last_event_at = pg_col_int(res, 0, 10, 0);
	o->attention = PQgetisnull(res, 0, 11) ? 0 :
	    ledger_attention_parse(PQgetvalue(res, 0, 11));
out:
	PQclear(res);
	return rc;
}

/* Optional integers: `none` stands for SQL NULL. */
static void
p_opt_int(struct pg_params *p, int64_t v, int64_t none)
{
	if (v == none)
		pg_p_text(p, NULL);
	else
		pg_p_int(p, v);
}

static int
put_order(struct pg_store *st, const char *order_id,
    const struct ledger_order *o, const char *attention, int paid_now,
    int64_t id, const char *payment)
{
	struct pg_params p;
	PGresult *res;
	int ok;

	pg_params_init(&p);
	pg_p_text(&p, order_id);
	pg_p_text(&p, ledger_state_name(o->state));
	pg_p_text(&p, o->order_amount);
	pg_p_text(&p, o->currency);
	pg_p_text(&p, o->paid_amount);
	pg_p_text(&p, o->paid_currency);
	pg_p_int(&p, o->successes);
	pg_p_int(&p, o->first_event_at);
	p_opt_int(&p, o->paid_at, -1);
	p_opt_int(&p, o->paid_event_id, 0);
	pg_p_int(&p, o->last_event_id);
	pg_p_int(&p, o->last_event_at);
	pg_p_text(&p, attention[0] != '\0' ? attention : NULL);
	pg_p_int(&p, paid_now);
	pg_p_int(&p, id);
	pg_p_text(&p, payment);
	res = pg_run(st, &L_PUT, &p);
	pg_params_done(&p);
	if (res == NULL)
		return -1;
	ok = pg_changed(res) == 1;
	PQclear(res);
	return ok ? 0 : -1;
}

int
pg_ledger_record(struct pg_store *st, const struct event *ev, int64_t id,
    int64_t received_ms, unsigned *raised)
{
	struct order_row r;
	struct ledger_event le;
	struct ledger_step step;
	char attention[LEDGER_ATTENTION_MAX];
	const char *payment = NULL;	/* to count in order_payments */
	int rc = -1, counted = 0;

	*raised = 0;
	if (!ledger_touches(ev->type, ev->order_id))
		return 0;
	/* The batch holds the order's lock: nothing changes the order or
	 * its payments between this read and the write below. */
	if (get_order(st, ev, received_ms, &r, &counted) == -1)
		goto out;
	memset(&le, 0, sizeof(le));
	le.outcome = ledger_outcome_of(ev->type, ev->payment_status);
	if (le.outcome == LEDGER_SUCCESS) {
		/* A success without an id cannot be matched: it is new. */
		if (ev->cf_payment_id != NULL && ev->cf_payment_id[0] != '\0')
			payment = ev->cf_payment_id;
		le.new_payment = payment == NULL || !counted;
	}
	le.amount = ev->amount;
	le.currency = ev->currency;
	le.order_amount = ev->detail[EVENT_ORDER_AMOUNT];
	le.order_currency = ev->detail[EVENT_ORDER_CURRENCY];
	le.event_id = id;
	le.at_ms = received_ms;
	ledger_apply(&r.o, &le, &step);
	ledger_attention_text(r.o.attention, attention, sizeof(attention));
	if (put_order(st, ev->order_id, &r.o, attention, step.paid_now,
	    id, payment) == -1)
		goto out;
	*raised = step.raised;
	rc = 0;
out:
	order_row_done(&r);
	return rc;
}
