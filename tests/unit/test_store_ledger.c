/* test_store_ledger.c - the order ledger in the event's transaction
 * (DESIGN "Orders"): the orders row, the stamp on each event, one payment
 * for a link event and its twin, nothing for a duplicate delivery, nothing
 * left by an item rolled back, and attention reported only once committed.
 * Real SQLite files, then real PostgreSQL databases (backends.h); events
 * made by event_from_json() from real bodies. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "backends.h"

#include "buf.h"
#include "event.h"
#include "ledger.h"
#include "log.h"
#include "metrics.h"
#include "store.h"

#define MAXB	8

static char bodies[MAXB][768];

static const char *
payment(int i, const char *type, const char *pid, const char *order,
    const char *amount, const char *order_amount)
{
	const char *status = strstr(type, "SUCCESS") != NULL ? "SUCCESS" :
	    strstr(type, "FAILED") != NULL ? "FAILED" : "USER_DROPPED";

	(void)snprintf(bodies[i], sizeof(bodies[i]), "{\"type\":\"%s\","
	    "\"data\":{\"order\":{\"order_id\":\"%s\",\"order_amount\":%s,"
	    "\"order_currency\":\"INR\"},\"payment\":{\"cf_payment_id\":"
	    "\"%s\",\"payment_status\":\"%s\",\"payment_amount\":%s,"
	    "\"payment_currency\":\"INR\"}}}", type, order, order_amount, pid,
	    status, amount);
	return bodies[i];
}

static const char *
link_paid(int i, const char *tx, const char *order)
{
	(void)snprintf(bodies[i], sizeof(bodies[i]), "{\"type\":"
	    "\"PAYMENT_LINK_EVENT\",\"data\":{\"link_id\":\"L-%s\","
	    "\"link_status\":\"PAID\",\"link_currency\":\"INR\",\"order\":"
	    "{\"order_id\":\"%s\",\"order_amount\":\"55.00\","
	    "\"transaction_id\":%s,\"transaction_status\":\"SUCCESS\"}}}", tx,
	    order, tx);
	return bodies[i];
}

/* Records the bodies in one batch; each item's result and raised flags
 * into res[] and raised[]. Returns the batch's return value. */
static int
batch(struct store *st, const char *const *b, size_t n, int64_t ms,
    enum store_result *res, unsigned *raised)
{
	struct event ev[MAXB];
	struct store_item it[MAXB], *p[MAXB];
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		memset(&ev[i], 0, sizeof(ev[i]));
		CHECK(event_from_json(b[i], strlen(b[i]), &ev[i]) == 0);
		memset(&it[i], 0, sizeof(it[i]));
		it[i].ev = &ev[i];
		it[i].body = b[i];
		it[i].body_len = strlen(b[i]);
		it[i].content_type = "application/json";
		it[i].received_ms = ms + (int64_t)i;
		it[i].result = (enum store_result)-1;
		p[i] = &it[i];
	}
	rc = store_record_batch(st, p, n, 0);
	for (i = 0; i < n; i++) {
		if (res != NULL)
			res[i] = it[i].result;
		if (raised != NULL)
			raised[i] = it[i].attention_raised;
		event_done(&ev[i]);
	}
	return rc;
}

static enum store_result
one(struct store *st, const char *body, int64_t ms, unsigned *raised)
{
	enum store_result r = STORE_UNAVAILABLE;

	(void)batch(st, &body, 1, ms, &r, raised);
	return r;
}

/* A fresh database of the pass's backend and the daemon's store on it. */
static struct store *
open_new(struct tdb *d)
{
	struct store *st = NULL;

	if (!CHECK(tdb_create(d) == 0))
		return NULL;
	if (!CHECK(store_open(d->database, STORE_WRITE, DURABILITY_NORMAL,
	    &st) == 0)) {
		tdb_drop(d);
		return NULL;
	}
	return st;
}

static void
close_all(struct store *st, struct tdb *d)
{
	store_close(st);
	tdb_drop(d);
}

/* "state successes paid_amount attention" of an order (SQL both engines
 * run; the test's names hold no quote). */
static const char *
order_line(struct tdb *d, const char *order, char *buf, size_t n)
{
	char sql[320];

	(void)snprintf(sql, sizeof(sql), "SELECT state || ' ' ||"
	    " CAST(successes AS TEXT) || ' ' || coalesce(paid_amount, '-') ||"
	    " ' ' || coalesce(attention, '-') FROM orders"
	    " WHERE order_id = '%s'", order);
	return tdb_text(d, sql, buf, n);
}

/* "order_state paid_now attention" stamped on an event. */
static const char *
stamp_line(struct tdb *d, const char *key, char *buf, size_t n)
{
	char sql[320];

	(void)snprintf(sql, sizeof(sql), "SELECT coalesce(order_state, '-') ||"
	    " ' ' || coalesce(CAST(order_paid_now AS TEXT), '-') || ' ' ||"
	    " coalesce(order_attention, '-') FROM events"
	    " WHERE event_key = '%s'", key);
	return tdb_text(d, sql, buf, n);
}

static void
test_orders_follow_their_events(void)
{
	char b[256];
	struct store *st;
	unsigned raised = 99;
	struct tdb d, *db = &d;

	if ((st = open_new(&d)) == NULL)
		return;
	CHECK_INT(one(st, payment(0, "PAYMENT_FAILED_WEBHOOK", "11", "o1",
	    "170.00", "170"), 1000, &raised), STORE_NEW);
	CHECK_INT(raised, 0);
	CHECK_STR(order_line(db, "o1", b, sizeof(b)), "FAILED 0 - -");
	CHECK_STR(stamp_line(db, "PAYMENT_FAILED_WEBHOOK:11", b, sizeof(b)),
	    "FAILED 0 -");
	CHECK_INT(one(st, payment(0, "PAYMENT_SUCCESS_WEBHOOK", "12", "o1",
	    "170.00", "170"), 2000, &raised), STORE_NEW);
	CHECK_STR(order_line(db, "o1", b, sizeof(b)), "PAID 1 170.00 -");
	CHECK_STR(stamp_line(db, "PAYMENT_SUCCESS_WEBHOOK:12", b, sizeof(b)),
	    "PAID 1 -");
	CHECK_INT(tdb_int(db, "SELECT paid_at FROM orders"), 2000);
	CHECK_INT(tdb_int(db, "SELECT first_event_at FROM orders"), 1000);
	CHECK_INT(tdb_int(db, "SELECT paid_event_id - (SELECT id FROM events "
	    "WHERE event_key = 'PAYMENT_SUCCESS_WEBHOOK:12') FROM orders"), 0);
	/* the same SUCCESS delivered again changes nothing */
	CHECK_INT(one(st, payment(0, "PAYMENT_SUCCESS_WEBHOOK", "12", "o1",
	    "170.00", "170"), 3000, &raised), STORE_DUPLICATE);
	CHECK_INT(raised, 0);
	CHECK_INT(tdb_int(db, "SELECT last_event_at FROM orders"), 2000);
	CHECK_STR(order_line(db, "o1", b, sizeof(b)), "PAID 1 170.00 -");
	/* a late failure: still PAID, flagged; the earlier stamps stay */
	CHECK_INT(one(st, payment(0, "PAYMENT_USER_DROPPED_WEBHOOK", "13", "o1",
	    "170.00", "170"), 4000, &raised), STORE_NEW);
	CHECK_INT(raised, LEDGER_LATE_FAILURE);
	CHECK_STR(stamp_line(db, "PAYMENT_USER_DROPPED_WEBHOOK:13", b,
	    sizeof(b)), "PAID 0 late_failure");
	CHECK_STR(stamp_line(db, "PAYMENT_SUCCESS_WEBHOOK:12", b, sizeof(b)),
	    "PAID 1 -");
	/* a refund of the order is not part of the ledger */
	CHECK_INT(one(st, "{\"type\":\"REFUND_STATUS_WEBHOOK\",\"data\":"
	    "{\"refund\":{\"cf_refund_id\":1,\"refund_status\":\"SUCCESS\","
	    "\"order_id\":\"o1\"}}}", 5000, &raised), STORE_NEW);
	CHECK_STR(stamp_line(db, "REFUND_STATUS_WEBHOOK:1:SUCCESS", b,
	    sizeof(b)), "- - -");
	CHECK_INT(tdb_int(db, "SELECT last_event_at FROM orders"), 4000);
	/* an event without an order_id touches nothing */
	CHECK_INT(one(st, "{\"type\":\"PAYMENT_SUCCESS_WEBHOOK\",\"data\":"
	    "{\"payment\":{\"cf_payment_id\":\"99\"}}}", 6000, &raised),
	    STORE_NEW);
	CHECK_INT(tdb_int(db, "SELECT count(*) FROM orders"), 1);
	close_all(st, db);
}

/* A link event and its twin in one batch are one payment; a second
 * distinct payment raises double_payment, an amount 99.99 for an order of
 * 100 amount_mismatch (100.00 against 100 does not). */
static void
test_one_payment_two_events(void)
{
	const char *b[4];
	enum store_result res[4];
	unsigned raised[4];
	char buf[256];
	struct store *st;
	struct tdb d, *db = &d;

	if ((st = open_new(&d)) == NULL)
		return;
	b[0] = link_paid(0, "1021206", "CFPay_1");
	b[1] = payment(1, "PAYMENT_SUCCESS_WEBHOOK", "1021206", "CFPay_1",
	    "55.00", "55");
	b[2] = payment(2, "PAYMENT_SUCCESS_WEBHOOK", "5", "o100", "100.00",
	    "100");
	b[3] = payment(3, "PAYMENT_SUCCESS_WEBHOOK", "6", "o99", "99.99",
	    "100");
	CHECK_INT(batch(st, b, 4, 1000, res, raised), 4);
	CHECK_STR(order_line(db, "CFPay_1", buf, sizeof(buf)),
	    "PAID 1 55.00 -");
	CHECK_STR(stamp_line(db, "PAYMENT_LINK_EVENT:L-1021206:PAID:1021206",
	    buf, sizeof(buf)), "PAID 1 -");
	CHECK_STR(stamp_line(db, "PAYMENT_SUCCESS_WEBHOOK:1021206", buf,
	    sizeof(buf)), "PAID 0 -");
	CHECK_INT(tdb_int(db, "SELECT count(*) FROM order_payments WHERE "
	    "order_id = 'CFPay_1'"), 1);
	CHECK_STR(order_line(db, "o100", buf, sizeof(buf)), "PAID 1 100.00 -");
	CHECK_STR(order_line(db, "o99", buf, sizeof(buf)),
	    "PAID 1 99.99 amount_mismatch");
	CHECK_INT(raised[3], LEDGER_AMOUNT_MISMATCH);
	b[0] = payment(0, "PAYMENT_SUCCESS_WEBHOOK", "1021207", "CFPay_1",
	    "55.00", "55");
	CHECK_INT(batch(st, b, 1, 2000, res, raised), 1);
	CHECK_INT(raised[0], LEDGER_DOUBLE_PAYMENT);
	CHECK_STR(order_line(db, "CFPay_1", buf, sizeof(buf)),
	    "PAID 2 55.00 double_payment");
	close_all(st, db);
}

/* The value of one sample line of /metrics, or -1. */
static long long
metric(const char *series)
{
	struct metrics_gauges g = { 0, 0, 0 };
	struct buf out;
	const char *p;
	long long v = -1;

	buf_init(&out, 1 << 20);
	if (metrics_render(&out, &g) == 0 && out.data != NULL &&
	    (p = strstr(out.data, series)) != NULL)
		v = strtoll(p + strlen(series), NULL, 10);
	buf_done(&out);
	return v;
}

/* An item whose order cannot be written is rolled back whole (event, order,
 * payment) while the rest of the batch commits; a flag is counted only for
 * what was committed. */
static void
test_failed_item_leaves_nothing(void)
{
	static const char dbl[] =
	    "cfhookd_orders_attention_total{reason=\"double_payment\"} ";
	const char *b[3];
	enum store_result res[3];
	unsigned raised[3];
	char buf[256];
	struct store *st;
	struct tdb d, *peek = &d;
	long long before;

	if ((st = open_new(&d)) == NULL)
		return;
	if (backend_pg) {
		tdb_exec(peek, "CREATE FUNCTION boom() RETURNS trigger"
		    " LANGUAGE plpgsql AS $$ BEGIN IF NEW.order_id = 'boom'"
		    " THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$");
		tdb_exec(peek, "CREATE TRIGGER boom BEFORE UPDATE ON orders"
		    " FOR EACH ROW EXECUTE FUNCTION boom()");
	} else {
		tdb_exec(peek, "CREATE TRIGGER boom BEFORE UPDATE ON orders"
		    " WHEN NEW.order_id = 'boom' BEGIN SELECT RAISE(ABORT,"
		    " 'boom'); END");
	}
	b[0] = payment(0, "PAYMENT_SUCCESS_WEBHOOK", "1", "boom", "1", "1");
	CHECK_INT(one(st, b[0], 1000, NULL), STORE_NEW);	/* an insert */
	before = metric(dbl);
	CHECK(before >= 0);
	b[0] = payment(0, "PAYMENT_SUCCESS_WEBHOOK", "2", "boom", "1", "1");
	b[1] = payment(1, "PAYMENT_SUCCESS_WEBHOOK", "3", "fine", "1", "1");
	b[2] = payment(2, "PAYMENT_SUCCESS_WEBHOOK", "4", "fine", "1", "1");
	CHECK_INT(batch(st, b, 3, 2000, res, raised), 2);
	CHECK_INT(res[0], STORE_UNAVAILABLE);
	CHECK_INT(raised[0], 0);
	CHECK_INT(res[1], STORE_NEW);
	CHECK_INT(res[2], STORE_NEW);
	CHECK_INT(raised[2], LEDGER_DOUBLE_PAYMENT);
	CHECK_INT(tdb_int(peek, "SELECT count(*) FROM events WHERE event_key"
	    " = 'PAYMENT_SUCCESS_WEBHOOK:2'"), 0);
	CHECK_INT(tdb_int(peek, "SELECT count(*) FROM order_payments WHERE "
	    "order_id = 'boom'"), 1);
	CHECK_STR(order_line(peek, "boom", buf, sizeof(buf)), "PAID 1 1 -");
	CHECK_STR(order_line(peek, "fine", buf, sizeof(buf)),
	    "PAID 2 1 double_payment");
	CHECK_INT(metric(dbl), before + 1);
	close_all(st, peek);
}

static void
suite(void)
{
	RUN(test_orders_follow_their_events);
	RUN(test_one_payment_two_events);
	RUN(test_failed_item_leaves_nothing);
}

int
main(void)
{
	log_init(LOG_LVL_WARNING);
	backends_run(suite, 3);
	return check_finish("test_store_ledger");
}
