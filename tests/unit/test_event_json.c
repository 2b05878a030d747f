/* test_event_json.c - the event members the envelope and cfhookctl share:
 * their names and order, NULL and non-UTF-8 columns, the caller's text
 * rule and order_paid_now. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "check.h"
#include "event_json.h"

/* The rows here borrow constant strings: never given to event_row_done(). */
static char *
borrow(const char *s)
{
	return (char *)(uintptr_t)s;
}

static struct event_row
row(void)
{
	struct event_row r;

	memset(&r, 0, sizeof(r));
	r.id = 9;
	r.event_key = borrow("K:1");
	r.type = borrow("PAYMENT_SUCCESS_WEBHOOK");
	r.cf_payment_id = borrow("77");
	r.order_id = borrow("o1");
	r.payment_status = borrow("SUCCESS");
	r.amount = borrow("1.80");
	r.currency = borrow("INR");
	r.idempotency_key = borrow("idem");
	r.webhook_version = borrow("2025-01-01");
	r.order_state = borrow("PAID");
	r.order_paid_now = 1;
	return r;
}

/* The object's compact text, for checking names, order and values at
 * once. */
static char *
dump(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);

	json_decref(o);
	return s;
}

static void
test_columns(void)
{
	struct event_row r = row();
	json_t *o = json_object();
	char *s;

	CHECK_INT(event_json_columns(o, &r, NULL), 0);
	s = dump(o);
	CHECK_STR(s, "{\"id\":9,\"event_key\":\"K:1\","
	    "\"type\":\"PAYMENT_SUCCESS_WEBHOOK\",\"cf_payment_id\":\"77\","
	    "\"order_id\":\"o1\",\"payment_status\":\"SUCCESS\","
	    "\"amount\":\"1.80\",\"currency\":\"INR\"}");
	free(s);
}

static void
test_order(void)
{
	struct event_row r = row();
	json_t *o = json_object();
	char *s;

	CHECK_INT(event_json_order(o, &r, json_true(), NULL), 0);
	s = dump(o);
	CHECK_STR(s, "{\"idempotency_key\":\"idem\","
	    "\"webhook_version\":\"2025-01-01\",\"order_state\":\"PAID\","
	    "\"order_paid_now\":true,\"order_attention\":null}");
	free(s);
}

/* The timeline's runs: the columns without order_id, the order's
 * members without the headers, in the same order as the full runs. */
static void
test_of_order(void)
{
	struct event_row r = row();
	json_t *o = json_object();
	char *s;

	r.order_attention = borrow("late_failure");
	CHECK_INT(event_json_columns_of_order(o, &r, NULL), 0);
	CHECK_INT(event_json_ledger(o, &r, json_null(), NULL), 0);
	s = dump(o);
	CHECK_STR(s, "{\"id\":9,\"event_key\":\"K:1\","
	    "\"type\":\"PAYMENT_SUCCESS_WEBHOOK\",\"cf_payment_id\":\"77\","
	    "\"payment_status\":\"SUCCESS\",\"amount\":\"1.80\","
	    "\"currency\":\"INR\",\"order_state\":\"PAID\","
	    "\"order_paid_now\":null,\"order_attention\":\"late_failure\"}");
	free(s);
}

/* NULL is null; by default a value that is not UTF-8 (or is cut short)
 * is null too, never a failure of the document. */
static void
test_text_default(void)
{
	struct event_row r = row();
	json_t *o = json_object();
	char *s;

	r.event_key = NULL;
	r.type = borrow("bad\xff");
	r.order_id = borrow("caf\xc3\xa9");
	r.amount = borrow("trunc\xe2\x82");
	CHECK_INT(event_json_columns(o, &r, NULL), 0);
	s = dump(o);
	CHECK_STR(s, "{\"id\":9,\"event_key\":null,\"type\":null,"
	    "\"cf_payment_id\":\"77\",\"order_id\":\"caf\xc3\xa9\","
	    "\"payment_status\":\"SUCCESS\",\"amount\":null,"
	    "\"currency\":\"INR\"}");
	free(s);
}

/* A rule that shows what it was given: the length. */
static json_t *
length(const char *s, size_t len)
{
	(void)s;
	return json_integer((json_int_t)len);
}

static json_t *
no_memory(const char *s, size_t len)
{
	(void)s;
	(void)len;
	return NULL;
}

/* The caller's rule decides every non-NULL value, and its failure is the
 * call's. */
static void
test_text_rule(void)
{
	struct event_row r = row();
	json_t *o = json_object();
	char *s;

	r.order_attention = NULL;
	CHECK_INT(event_json_set_text(o, "a", "foo", length), 0);
	CHECK_INT(event_json_set_text(o, "b", NULL, length), 0);
	CHECK_INT(event_json_set_text(o, "c", "bad\xff", length), 0);
	s = dump(o);
	CHECK_STR(s, "{\"a\":3,\"b\":null,\"c\":4}");
	free(s);
	o = json_object();
	CHECK_INT(event_json_columns(o, &r, no_memory), -1);
	CHECK_INT(event_json_order(o, &r, json_false(), no_memory), -1);
	CHECK_INT(event_json_columns_of_order(o, &r, no_memory), -1);
	CHECK_INT(event_json_ledger(o, &r, json_true(), no_memory), -1);
	json_decref(o);
}

int
main(void)
{
	RUN(test_columns);
	RUN(test_order);
	RUN(test_of_order);
	RUN(test_text_default);
	RUN(test_text_rule);
	return check_finish("test_event_json");
}
