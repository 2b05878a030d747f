/* event_json.c - the event members the forward envelope and cfhookctl's
 * event objects share (event_json.h).
 *
 * Pure: no I/O, no logging. Must not: decide anything a caller owns (how
 * a time is written, order_paid_now's rule, the payload); a member whose
 * bytes differ between the two documents stays with its caller. */
#include <string.h>

#include <jansson.h>

#include "event_json.h"
#include "utf8.h"

int
event_json_set_text(json_t *o, const char *key, const char *s,
    json_t *(*text)(const char *s, size_t len))
{
	size_t len;
	json_t *v;

	if (s == NULL) {
		v = json_null();
	} else {
		len = strlen(s);
		if (text != NULL)
			v = text(s, len);
		else
			v = utf8_text(s, len) ? json_stringn(s, len) :
			    json_null();
	}
	return json_object_set_new(o, key, v) == 0 ? 0 : -1;
}

/* The columns of event_json_columns(), order_id only when asked. */
static int
columns(json_t *o, const struct event_row *e, int with_order_id,
    json_t *(*text)(const char *s, size_t len))
{
	int bad = 0;

	bad |= json_object_set_new(o, "id", json_integer(e->id));
	bad |= event_json_set_text(o, "event_key", e->event_key, text);
	bad |= event_json_set_text(o, "type", e->type, text);
	bad |= event_json_set_text(o, "cf_payment_id", e->cf_payment_id,
	    text);
	if (with_order_id)
		bad |= event_json_set_text(o, "order_id", e->order_id, text);
	bad |= event_json_set_text(o, "payment_status", e->payment_status,
	    text);
	bad |= event_json_set_text(o, "amount", e->amount, text);
	bad |= event_json_set_text(o, "currency", e->currency, text);
	return bad != 0 ? -1 : 0;
}

int
event_json_columns(json_t *o, const struct event_row *e,
    json_t *(*text)(const char *s, size_t len))
{
	return columns(o, e, 1, text);
}

int
event_json_columns_of_order(json_t *o, const struct event_row *e,
    json_t *(*text)(const char *s, size_t len))
{
	return columns(o, e, 0, text);
}

int
event_json_order(json_t *o, const struct event_row *e, json_t *paid_now,
    json_t *(*text)(const char *s, size_t len))
{
	int bad = 0;

	bad |= event_json_set_text(o, "idempotency_key", e->idempotency_key,
	    text);
	bad |= event_json_set_text(o, "webhook_version", e->webhook_version,
	    text);
	bad |= event_json_ledger(o, e, paid_now, text);
	return bad != 0 ? -1 : 0;
}

int
event_json_ledger(json_t *o, const struct event_row *e, json_t *paid_now,
    json_t *(*text)(const char *s, size_t len))
{
	int bad = 0;

	bad |= event_json_set_text(o, "order_state", e->order_state, text);
	bad |= json_object_set_new(o, "order_paid_now", paid_now);
	bad |= event_json_set_text(o, "order_attention", e->order_attention,
	    text);
	return bad != 0 ? -1 : 0;
}
