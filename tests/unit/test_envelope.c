/* test_envelope.c - the forward envelope: fields, nulls, escaping, one line,
 * RFC 3339 times, payload as sent (numbers untouched), form payloads, bodies
 * that do not parse, and every accepted vector. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "check.h"
#include "envelope.h"

#define VECTORS	"tests/vectors/cashfree-webhooks.json"
#define ATTEMPT	3

/* The rows here borrow constant strings: never given to event_row_done(). */
static char *
borrow(const char *s)
{
	return (char *)(uintptr_t)s;
}

static struct event_row
base_row(const char *body)
{
	struct event_row r;

	memset(&r, 0, sizeof(r));
	r.id = 42;
	r.event_key = "PAYMENT_SUCCESS_WEBHOOK:1453002795";
	r.type = "PAYMENT_SUCCESS_WEBHOOK";
	r.cf_payment_id = "1453002795";
	r.order_id = "order_1";
	r.payment_status = "SUCCESS";
	r.amount = "1.80";
	r.currency = "INR";
	r.content_type = "application/json";
	r.body = borrow(body);
	r.body_len = strlen(body);
	r.received_at = 1795304829123LL;
	return r;
}

/* The envelope built with intake's reading of a JSON body handed in
 * (fresh.h) must be the one built by reading the body again. */
static void
check_same_with_intake_read(const struct event_row *r, const char *s,
    size_t len)
{
	struct event ev;
	size_t len2 = 0;
	char *s2;

	if (event_content_is_form(r->content_type))
		return;
	if (!CHECK(event_from_json(r->body, r->body_len, &ev) == 0))
		return;
	s2 = envelope_build(r, ATTEMPT, &ev, &len2);
	if (CHECK(s2 != NULL)) {
		CHECK_INT(len2, len);
		CHECK_STR(s2, s);
	}
	free(s2);
	event_done(&ev);
}

/* Builds, checks the one-line and length contract, parses it back. */
static json_t *
build(const struct event_row *r, char **text)
{
	json_error_t err;
	size_t len = 0;
	char *s;
	json_t *j;

	s = envelope_build(r, ATTEMPT, NULL, &len);
	if (!CHECK(s != NULL))
		return NULL;
	check_same_with_intake_read(r, s, len);
	CHECK_INT(len, strlen(s));
	CHECK(memchr(s, '\n', len) == NULL);
	CHECK(memchr(s, '\r', len) == NULL);
	j = json_loadb(s, len, JSON_REJECT_DUPLICATES, &err);
	CHECK(j != NULL);
	if (text != NULL)
		*text = s;
	else
		free(s);
	return j;
}

static const char *
str(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

static void
test_fields(void)
{
	struct event_row r = base_row("{\"type\":\"PAYMENT_SUCCESS_WEBHOOK\"}");
	json_t *j = build(&r, NULL);

	if (j == NULL)
		return;
	CHECK_INT(json_integer_value(json_object_get(j, "id")), 42);
	CHECK_STR(str(j, "event_key"), "PAYMENT_SUCCESS_WEBHOOK:1453002795");
	CHECK_STR(str(j, "type"), "PAYMENT_SUCCESS_WEBHOOK");
	CHECK_STR(str(j, "cf_payment_id"), "1453002795");
	CHECK_STR(str(j, "order_id"), "order_1");
	CHECK_STR(str(j, "payment_status"), "SUCCESS");
	CHECK_STR(str(j, "amount"), "1.80");
	CHECK_STR(str(j, "currency"), "INR");
	CHECK_STR(str(j, "received_at"), "2026-11-21T23:47:09.123Z");
	CHECK(json_is_integer(json_object_get(j, "attempt")));
	CHECK_INT(json_integer_value(json_object_get(j, "attempt")), ATTEMPT);
	CHECK_STR(str(j, "format"), "json");
	CHECK_STR(str(json_object_get(j, "payload"), "type"),
	    "PAYMENT_SUCCESS_WEBHOOK");
	CHECK(json_object_get(j, "body") == NULL);
	/* the row's own, and a payment event's details (null: not in the
	 * body) */
	CHECK(json_is_null(json_object_get(j, "idempotency_key")));
	CHECK(json_is_null(json_object_get(j, "webhook_version")));
	CHECK(json_is_null(json_object_get(j, "order_state")));
	CHECK(json_is_false(json_object_get(j, "order_paid_now")));
	CHECK(json_is_null(json_object_get(j, "order_attention")));
	CHECK(json_is_null(json_object_get(j, "order_amount")));
	CHECK(json_is_null(json_object_get(j, "order_currency")));
	CHECK_INT(json_object_size(j), 19);
	json_decref(j);
}

/* Headers as recorded and the order as this event left it (DESIGN
 * "Orders"), in the documented key order. */
static void
test_order_and_headers(void)
{
	static const char *const keys[] = { "id", "event_key", "type",
	    "cf_payment_id", "order_id", "payment_status", "amount",
	    "currency", "received_at", "attempt", "format", "idempotency_key",
	    "webhook_version", "order_state", "order_paid_now",
	    "order_attention", "order_amount", "order_currency", "payload" };
	struct event_row r = base_row("{\"type\":\"PAYMENT_SUCCESS_WEBHOOK\","
	    "\"data\":{\"order\":{\"order_amount\":1.80,"
	    "\"order_currency\":\"INR\"}}}");
	char *text = NULL;
	const char *key;
	json_t *j, *v;
	size_t i = 0;

	r.idempotency_key = "n9rn7079wqXcse3GEDEXCYle9ajXmU0SUQY8zrUNAlc=";
	r.webhook_version = "2025-01-01";
	r.order_state = "PAID";
	r.order_paid_now = 1;
	r.order_attention = "double_payment,amount_mismatch";
	j = build(&r, &text);
	if (j == NULL)
		return;
	CHECK_STR(str(j, "idempotency_key"),
	    "n9rn7079wqXcse3GEDEXCYle9ajXmU0SUQY8zrUNAlc=");
	CHECK_STR(str(j, "webhook_version"), "2025-01-01");
	CHECK_STR(str(j, "order_state"), "PAID");
	CHECK(json_is_true(json_object_get(j, "order_paid_now")));
	CHECK_STR(str(j, "order_attention"), "double_payment,amount_mismatch");
	CHECK_STR(str(j, "order_amount"), "1.80");	/* the token as sent */
	CHECK_STR(str(j, "order_currency"), "INR");
	json_object_foreach(j, key, v) {
		(void)v;
		if (CHECK(i < sizeof(keys) / sizeof(keys[0])))
			CHECK_STR(key, keys[i]);
		i++;
	}
	CHECK_INT(i, sizeof(keys) / sizeof(keys[0]));
	/* paid_now means nothing without a state: false */
	json_decref(j);
	free(text);
	r.order_state = NULL;
	j = build(&r, NULL);
	if (j != NULL)
		CHECK(json_is_false(json_object_get(j, "order_paid_now")));
	json_decref(j);
}

/* Each family's details, read from the stored body as intake reads it:
 * numbers by their token, strings as sent, null when absent, and only the
 * family's own keys. */
static void
test_details(void)
{
	static const struct {
		const char *type;
		const char *content_type;
		const char *body;
		const char *want[8][2];		/* key, value (NULL: null) */
		size_t	 nkeys;			/* envelope size */
	} cases[] = {
		{ "PAYMENT_LINK_EVENT", "application/json",
		    "{\"type\":\"PAYMENT_LINK_EVENT\",\"data\":{\"link_id\":"
		    "\"L1\",\"link_status\":\"PARTIALLY_PAID\",\"link_amount\":"
		    "200.10,\"link_amount_paid\":\"55.00\",\"link_currency\":"
		    "\"INR\",\"order\":{\"order_amount\":\"22.00\"}}}",
		    { { "link_id", "L1" }, { "link_status", "PARTIALLY_PAID" },
		    { "link_amount", "200.10" }, { "link_amount_paid", "55.00" },
		    { "order_amount", "22.00" }, { "order_currency", "INR" } },
		    23 },
		{ "PAYMENT_LINK_EVENT", "application/x-www-form-urlencoded",
		    "type=PAYMENT_LINK_EVENT&link_id=L2&link_status=PAID&"
		    "link_amount=10.00&link_amount_paid=10.00&order_amount=10.00"
		    "&link_currency=INR",
		    { { "link_id", "L2" }, { "link_status", "PAID" },
		    { "link_amount", "10.00" }, { "link_amount_paid", "10.00" },
		    { "order_amount", "10.00" }, { "order_currency", "INR" } },
		    23 },
		{ "REFUND_STATUS_WEBHOOK", "application/json",
		    "{\"type\":\"REFUND_STATUS_WEBHOOK\",\"data\":{\"refund\":"
		    "{\"cf_refund_id\":11325632,\"refund_id\":\"refund_1\","
		    "\"refund_amount\":2.00,\"refund_currency\":\"INR\","
		    "\"refund_type\":\"MERCHANT_INITIATED\",\"refund_status\":"
		    "\"SUCCESS\"}}}",
		    { { "refund_id", "refund_1" }, { "cf_refund_id", "11325632" },
		    { "refund_status", "SUCCESS" }, { "refund_amount", "2.00" },
		    { "refund_currency", "INR" },
		    { "refund_type", "MERCHANT_INITIATED" } }, 23 },
		{ "SETTLEMENT_SUCCESS", "application/json",
		    "{\"type\":\"SETTLEMENT_SUCCESS\",\"data\":{\"settlement\":"
		    "{\"settlement_id\":738,\"status\":\"SUCCESS\","
		    "\"settlement_amount\":97.94,\"utr\":\"1645009380\"}}}",
		    { { "settlement_id", "738" }, { "settlement_status", "SUCCESS" },
		    { "settlement_amount", "97.94" },
		    { "settlement_utr", "1645009380" } }, 21 },
		{ "DISPUTE_CREATED", "application/json",
		    "{\"type\":\"DISPUTE_CREATED\",\"data\":{\"dispute\":"
		    "{\"dispute_id\":\"433475258\",\"dispute_amount\":3}}}",
		    { { "dispute_id", "433475258" }, { "dispute_status", NULL },
		    { "dispute_amount", "3" } }, 20 },
		{ "UNKNOWN", "application/json", "not json",
		    { { "link_status", NULL } }, 0 },
	};
	struct event_row r;
	json_t *j, *v;
	size_t i, k;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		r = base_row(cases[i].body);
		r.type = borrow(cases[i].type);
		r.content_type = borrow(cases[i].content_type);
		j = build(&r, NULL);
		if (j == NULL)
			continue;
		for (k = 0; k < 8 && cases[i].want[k][0] != NULL; k++) {
			v = json_object_get(j, cases[i].want[k][0]);
			if (cases[i].nkeys == 0) {
				CHECK(v == NULL);	/* not its family */
			} else if (cases[i].want[k][1] == NULL) {
				CHECK(json_is_null(v));
			} else if (!CHECK_STR(json_string_value(v),
			    cases[i].want[k][1])) {
				fprintf(stderr, "  %s\n", cases[i].type);
			}
		}
		if (cases[i].nkeys > 0)
			CHECK_INT(json_object_size(j), cases[i].nkeys);
		/* never another family's */
		if (strcmp(cases[i].type, "PAYMENT_LINK_EVENT") != 0)
			CHECK(json_object_get(j, "link_status") == NULL);
		if (strcmp(cases[i].type, "REFUND_STATUS_WEBHOOK") != 0)
			CHECK(json_object_get(j, "refund_id") == NULL);
		json_decref(j);
	}
}

static void
test_nulls(void)
{
	struct event_row r = base_row("{}");
	json_t *j;

	r.cf_payment_id = NULL;
	r.order_id = NULL;
	r.payment_status = NULL;
	r.amount = NULL;
	r.currency = NULL;
	r.content_type = NULL;
	j = build(&r, NULL);
	if (j == NULL)
		return;
	CHECK(json_is_null(json_object_get(j, "cf_payment_id")));
	CHECK(json_is_null(json_object_get(j, "order_id")));
	CHECK(json_is_null(json_object_get(j, "payment_status")));
	CHECK(json_is_null(json_object_get(j, "amount")));
	CHECK(json_is_null(json_object_get(j, "currency")));
	CHECK_STR(str(j, "format"), "json");
	CHECK(json_is_object(json_object_get(j, "payload")));
	json_decref(j);
}

static void
test_times(void)
{
	static const struct {
		long long ms;
		const char *want;
	} cases[] = {
		{ 0, "1970-01-01T00:00:00.000Z" },
		{ 1, "1970-01-01T00:00:00.001Z" },
		{ -1, "1969-12-31T23:59:59.999Z" },
		{ 1700000000000LL, "2023-11-14T22:13:20.000Z" },
		{ 1795304829123LL, "2026-11-21T23:47:09.123Z" },
		{ 951782400999LL, "2000-02-29T00:00:00.999Z" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct event_row r = base_row("{}");
		json_t *j;

		r.received_at = cases[i].ms;
		j = build(&r, NULL);
		if (j == NULL)
			continue;
		CHECK_STR(str(j, "received_at"), cases[i].want);
		json_decref(j);
	}
}

/* Quotes, backslashes, newlines and shell syntax in values are escaped,
 * not dropped: the consumer gets the exact bytes back. */
static void
test_escaping(void)
{
	const char *nasty = "o\"1'$(touch /tmp/x);`id`\n\\ \t|&<>";
	struct event_row r = base_row("{\"k\":\"line1\\nline2\"}");
	char *text = NULL;
	json_t *j;

	r.order_id = borrow(nasty);
	r.event_key = "T:idem:\xc3\xa9\xe2\x82\xac";
	j = build(&r, &text);
	if (j == NULL)
		return;
	CHECK_STR(str(j, "order_id"), nasty);
	CHECK_STR(str(j, "event_key"), "T:idem:\xc3\xa9\xe2\x82\xac");
	CHECK_STR(str(json_object_get(j, "payload"), "k"), "line1\nline2");
	CHECK(strstr(text, "\\n") != NULL);
	json_decref(j);
	free(text);
}

/* The payload keeps Cashfree's number text (money): no 170.0 for 170.00,
 * no 0.10000000000000001 for 0.1; blanks between tokens go, so a
 * pretty-printed body still makes a one-line envelope. */
static void
test_payload_verbatim(void)
{
	const char *body = "{\n  \"a\" : 170.00,\r\n\t\"b\": [0.1, 1e2, -0],"
	    " \"c\": \"x  y\\\"z\", \"big\": 9007199254740993 }\n";
	struct event_row r = base_row(body);
	char *text = NULL;
	json_t *j;

	j = build(&r, &text);
	if (j == NULL)
		return;
	CHECK(strstr(text, ",\"payload\":{\"a\":170.00,\"b\":[0.1,1e2,-0],"
	    "\"c\":\"x  y\\\"z\",\"big\":9007199254740993}}") != NULL);
	CHECK_INT(json_integer_value(json_object_get(json_object_get(j,
	    "payload"), "big")), 9007199254740993LL);
	json_decref(j);
	free(text);
}

/* What intake recognised reaches the consumer as an object too: a NUL in
 * one string and an id beyond 64 bits (both parsed by event_parse_json)
 * keep payload an object with the exact text. */
static void
test_payload_like_intake(void)
{
	const char *body = "{\"type\":\"PAYMENT_SUCCESS_WEBHOOK\",\"n\":\"a\\u0000b\","
	    "\"data\":{\"payment\":{\"cf_payment_id\":123456789012345678901}}}";
	struct event_row r = base_row(body);
	char *text = NULL;
	size_t len = 0;

	text = envelope_build(&r, ATTEMPT, NULL, &len);
	if (!CHECK(text != NULL))
		return;
	check_same_with_intake_read(&r, text, len);
	CHECK(strstr(text, ",\"payload\":{\"type\":") != NULL);
	CHECK(strstr(text, "\"cf_payment_id\":123456789012345678901}") != NULL);
	CHECK(strstr(text, "\"payload\":null") == NULL);
	free(text);
}

static void
test_unparseable(void)
{
	static const char *const bodies[] = {
		"{\"a\":1,",			/* truncated */
		"{\"a\":1,\"a\":2}",		/* duplicate keys (spec 11) */
		"{\"a\":1} trailing",
		"",
	};
	size_t i;

	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		struct event_row r = base_row(bodies[i]);
		json_t *j = build(&r, NULL);

		if (j == NULL)
			continue;
		CHECK(json_is_null(json_object_get(j, "payload")));
		CHECK_STR(str(j, "body"), bodies[i]);
		CHECK_STR(str(j, "format"), "json");
		json_decref(j);
	}
}

static void
test_unparseable_binary(void)
{
	const char body[] = "{\"a\":\"\xff\xfe\"}";
	struct event_row r = base_row(body);
	json_t *j;

	j = build(&r, NULL);
	if (j == NULL)
		return;
	CHECK(json_is_null(json_object_get(j, "payload")));
	CHECK(json_object_get(j, "body") == NULL);	/* not valid UTF-8 */
	json_decref(j);
}

static void
test_form_payload(void)
{
	const char *body = "order_id=o%261&link_purpose=Pay+for+10+%26+more"
	    "&nul=a%00b&bad=%FF&multi=l1%0Al2&signature=abc%3D";
	struct event_row r = base_row(body);
	json_t *j, *p;

	r.content_type = " Application/X-WWW-Form-URLencoded ; charset=UTF-8";
	j = build(&r, NULL);
	if (j == NULL)
		return;
	CHECK_STR(str(j, "format"), "form");
	p = json_object_get(j, "payload");
	CHECK(json_is_object(p));
	CHECK_STR(str(p, "order_id"), "o&1");
	CHECK_STR(str(p, "link_purpose"), "Pay for 10 & more");
	CHECK_STR(str(p, "multi"), "l1\nl2");
	CHECK(json_object_get(p, "nul") == NULL);
	CHECK(json_object_get(p, "bad") == NULL);
	CHECK(json_object_get(p, "signature") == NULL);
	CHECK_INT(json_object_size(p), 3);
	json_decref(j);
}

static void
test_form_duplicate(void)
{
	struct event_row r = base_row("a=1&a=2");
	json_t *j;

	r.content_type = "application/x-www-form-urlencoded";
	j = build(&r, NULL);
	if (j == NULL)
		return;
	CHECK_STR(str(j, "format"), "form");
	CHECK(json_is_null(json_object_get(j, "payload")));
	CHECK_STR(str(j, "body"), "a=1&a=2");
	json_decref(j);
}

/* A media type that only starts like the form one is JSON. */
static void
test_form_media_type_exact(void)
{
	struct event_row r = base_row("{}");
	json_t *j;

	r.content_type = "application/x-www-form-urlencodedX";
	j = build(&r, NULL);
	if (j == NULL)
		return;
	CHECK_STR(str(j, "format"), "json");
	json_decref(j);
}

static void
check_vector(json_t *c)
{
	const char *body = json_string_value(json_object_get(c, "body"));
	const char *ct = json_string_value(json_object_get(c, "content_type"));
	struct event_row r = base_row(body != NULL ? body : "");
	json_t *j, *p;

	r.content_type = borrow(ct);
	j = build(&r, NULL);
	if (j == NULL)
		return;
	p = json_object_get(j, "payload");
	CHECK(json_is_object(p) || json_is_null(p));
	if (json_is_object(p) && strcmp(str(j, "format"), "form") == 0)
		CHECK(json_object_get(p, "signature") == NULL);
	if (json_is_object(p) && json_object_get(p, "type") != NULL)
		CHECK(json_is_string(json_object_get(p, "type")));
	json_decref(j);
}

static void
test_vectors(void)
{
	json_error_t err;
	json_t *all = json_load_file(VECTORS, 0, &err), *c;
	size_t i, n = 0;

	if (!CHECK(json_is_array(all)))
		return;
	json_array_foreach(all, i, c) {
		const char *e = json_string_value(json_object_get(c, "expect"));

		if (e == NULL || strcmp(e, "accept") != 0)
			continue;
		check_vector(c);
		n++;
	}
	CHECK(n >= 10);
	json_decref(all);
}

int
main(void)
{
	RUN(test_fields);
	RUN(test_order_and_headers);
	RUN(test_details);
	RUN(test_nulls);
	RUN(test_times);
	RUN(test_escaping);
	RUN(test_payload_verbatim);
	RUN(test_payload_like_intake);
	RUN(test_unparseable);
	RUN(test_unparseable_binary);
	RUN(test_form_payload);
	RUN(test_form_duplicate);
	RUN(test_form_media_type_exact);
	RUN(test_vectors);
	return check_finish("test_envelope");
}
