/* event_json.h - the members of an event's JSON object that the forward
 * envelope (envelope.c) and cfhookctl's event objects (ctl_cmd.c, and the
 * order timeline's in ctl_order.c) share, built from one struct event_row.
 * Pure.
 *
 * Each caller adds what is its own around them: the envelope its time,
 * attempt, format, details and payload; cfhookctl the delivery columns and
 * times in the operator's zone. jansson keeps members in the order they
 * are set, so the shared ones come as two runs, each where both documents
 * have always had it. */
#ifndef CFHOOK_EVENT_JSON_H
#define CFHOOK_EVENT_JSON_H

#include <stddef.h>

#include <jansson.h>

#include "event_row.h"

/* A member `key` for a text column: JSON null for NULL, else text(s,
 * strlen(s)); with text NULL, a string when s is UTF-8 and null when it is
 * not (a column edited by hand must not fail the whole document).
 * cfhookctl passes ctl_out_json_text, which shows such bytes as U+FFFD
 * instead. text returns NULL only on no memory. 0, or -1 on no memory. */
int	event_json_set_text(json_t *o, const char *key, const char *s,
	    json_t *(*text)(const char *s, size_t len));

/* The columns every event has: id, event_key, type, cf_payment_id,
 * order_id, payment_status, amount, currency. 0 / -1 (no memory). */
int	event_json_columns(json_t *o, const struct event_row *e,
	    json_t *(*text)(const char *s, size_t len));

/* The same but order_id, for a document about one order that names it
 * once (cfhookctl's order timeline). 0 / -1 (no memory). */
int	event_json_columns_of_order(json_t *o, const struct event_row *e,
	    json_t *(*text)(const char *s, size_t len));

/* The headers recorded as received and the order as this event left it
 * (DESIGN "Orders"): idempotency_key, webhook_version, then what
 * event_json_ledger() sets. 0 / -1 (no memory). */
int	event_json_order(json_t *o, const struct event_row *e,
	    json_t *paid_now, json_t *(*text)(const char *s, size_t len));

/* The order as this event left it, without the headers (cfhookctl's
 * order timeline): order_state, order_paid_now (the caller's value, a
 * new reference taken over even on failure: each document has its own
 * rule for it), order_attention. 0 / -1 (no memory). */
int	event_json_ledger(json_t *o, const struct event_row *e,
	    json_t *paid_now, json_t *(*text)(const char *s, size_t len));

#endif
