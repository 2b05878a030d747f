/* fuzz_envelope.c - libFuzzer target: any bytes as the stored body of an
 * event, through envelope_build. Checks the promises of envelope.h: one line
 * of JSON that reads back as an object (duplicate keys refused), every key
 * present, and a JSON body that intake reads as an object comes back as an
 * equal payload, any other as null (the blank stripping that keeps
 * Cashfree's number text must not change the value); and with intake's
 * reading of a JSON body handed in (fresh.h) the envelope
 * is byte for byte the one built by reading the body again. Not built by
 * plain make.
 *
 * The first input byte picks the content type (odd: form, even: JSON) and
 * the type (so each family's fields, read again from the body, are
 * exercised and must all be there); the bytes up to the first NUL after it
 * also serve as the order_id when they are valid for a C string. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "envelope.h"
#include "event.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const keys[] = { "id", "event_key", "type",
    "cf_payment_id", "order_id", "payment_status", "amount", "currency",
    "received_at", "attempt", "format", "idempotency_key",
    "webhook_version", "order_state", "order_paid_now", "order_attention",
    "payload" };

static const char *const types[] = { "T", "PAYMENT_SUCCESS_WEBHOOK",
    "PAYMENT_LINK_EVENT", "REFUND_STATUS_WEBHOOK", "SETTLEMENT_SUCCESS",
    "DISPUTE_CREATED" };

/* The payload is the body as intake reads it (event_parse_json: duplicate
 * keys refused, numbers beyond jansson tamed): the same object when that
 * reading gives one, else null. */
static void
check_payload(json_t *env, const char *body, size_t len, int form)
{
	json_t *orig = NULL;

	if (form)
		return;
	if (event_parse_json(body, len, &orig) == -1)
		abort();
	if (orig == NULL) {
		if (!json_is_null(json_object_get(env, "payload")))
			abort();
		return;
	}
	if (!json_equal(orig, json_object_get(env, "payload")))
		abort();
	json_decref(orig);
}

static void
same_with_intake_read(const struct event_row *r, const char *s, size_t len)
{
	struct event ev;
	size_t len2 = 0;
	char *s2;

	if (event_content_is_form(r->content_type))
		return;
	if (event_from_json(r->body, r->body_len, &ev) == -1)
		abort();
	s2 = envelope_build(r, 1, &ev, &len2);
	if (s2 == NULL || len2 != len || memcmp(s, s2, len) != 0)
		abort();
	free(s2);
	event_done(&ev);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct event_row r;
	json_t *env;
	char *body, *order, *s;
	size_t len = 0, i;
	int form;

	if (size < 1)
		return 0;
	form = data[0] & 1;
	body = malloc(size);		/* body bytes plus a NUL */
	order = malloc(size);
	if (body == NULL || order == NULL)
		abort();
	memcpy(body, data + 1, size - 1);
	body[size - 1] = '\0';
	memcpy(order, body, size);	/* as a C string: up to the first NUL */
	memset(&r, 0, sizeof(r));
	r.id = 7;
	/* The row borrows constant strings: never given to event_row_done(). */
	r.event_key = (char *)(uintptr_t)"T:sha256:00";
	r.type = (char *)(uintptr_t)types[(data[0] >> 1) %
	    (sizeof(types) / sizeof(types[0]))];
	r.order_state = (data[0] & 0x80) != 0 ? (char *)(uintptr_t)"PAID" :
	    NULL;
	r.order_paid_now = 1;
	r.order_id = order;
	r.content_type = (char *)(uintptr_t)(form ?
	    "application/x-www-form-urlencoded" : "application/json");
	r.body = body;
	r.body_len = size - 1;
	r.received_at = (int64_t)data[0] * 1000003;
	s = envelope_build(&r, 1, NULL, &len);
	if (s == NULL || strlen(s) != len || memchr(s, '\n', len) != NULL)
		abort();
	same_with_intake_read(&r, s, len);
	/* read back as the body was (an id of 20 digits stays in it) */
	if (event_parse_json(s, len, &env) == -1 || env == NULL)
		abort();
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (json_object_get(env, keys[i]) == NULL)
			abort();
	for (i = 0; i < EVENT_DETAIL_COUNT; i++)
		if ((json_object_get(env, event_detail_name(
		    (enum event_detail)i)) != NULL) !=
		    event_detail_applies(r.type, (enum event_detail)i))
			abort();
	if (json_is_true(json_object_get(env, "order_paid_now")) !=
	    (r.order_state != NULL))
		abort();
	check_payload(env, body, size - 1, form);
	json_decref(env);
	free(s);
	free(order);
	free(body);
	return 0;
}
