/* test_event.c - event fields and event_key: every accepted shared vector,
 * then a table of number, key and malformed-body cases. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "check.h"
#include "event.h"
#include "form.h"

#define VECTORS	"tests/vectors/cashfree-webhooks.json"

/* "TYPE:sha256:" + lower-case hex SHA-256 of body, computed here with
 * OpenSSL so the test does not trust event.c's own hashing. */
static void
sha256_key(const char *type, const char *body, size_t len, char *out,
    size_t n)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	int off;

	CHECK(EVP_Digest(body, len, md, &mdlen, EVP_sha256(), NULL) == 1);
	off = snprintf(out, n, "%s:sha256:", type);
	for (i = 0; i < mdlen; i++)
		off += snprintf(out + off, n - (size_t)off, "%02x", md[i]);
}

/* Form vectors are signed by their signature field: read them strictly,
 * as the daemon does with form_field_signature = on. */
static int
from_any(const char *ctype, const char *body, size_t len, struct event *ev)
{
	struct form f;
	char why[160];
	int rc = -1;

	if (strncmp(ctype, "application/json", 16) == 0)
		return event_from_json(body, len, ev);
	memset(&f, 0, sizeof(f));
	if (CHECK(form_parse(body, len, &f) == FORM_OK) &&
	    event_from_form(&f, body, len, 1, ev, why, sizeof(why)) ==
	    EVENT_OK)
		rc = 0;
	form_done(&f);
	return rc;
}

static const char *
str_or_null(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

/* The vector's expected value for one field: `key` when present (a JSON null
 * means "must be absent"), else `alt` (link events name them differently).
 * Returns 0 when the vector says nothing about the field. */
static int
expected(json_t *want, const char *key, const char *alt, const char **ret)
{
	json_t *v = json_object_get(want, key);

	if (v == NULL && alt != NULL)
		v = json_object_get(want, alt);
	if (v == NULL)
		return 0;
	*ret = json_string_value(v);	/* NULL for JSON null */
	return 1;
}

static void
check_dedup(json_t *c, const struct event *ev, const char *body, size_t len)
{
	json_t *dedup = json_object_get(c, "dedup");
	const char *kind = str_or_null(dedup, "kind");
	const char *value = str_or_null(dedup, "value");
	char key[1024];

	if (!CHECK(kind != NULL && value != NULL))
		return;
	if (strncmp(kind, "sha256", 6) == 0) {
		sha256_key(ev->type, body, len, key, sizeof(key));
		CHECK_STR(ev->event_key, key);
		CHECK_STR(strrchr(ev->event_key, ':') + 1, value);
	} else {
		CHECK(strcmp(kind, "type+cf_payment_id") == 0 ||
		    strcmp(kind, "link") == 0 || strcmp(kind, "natural") == 0);
		CHECK_STR(ev->event_key, value);
	}
}

static int
is_accepted(json_t *c)
{
	const char *e = str_or_null(c, "expect");
	const char *t = str_or_null(c, "expect_if_tolerance_disabled");

	return (e != NULL && strcmp(e, "accept") == 0) ||
	    (t != NULL && strcmp(t, "accept") == 0);
}

static void
check_vector(json_t *c)
{
	json_t *want = json_object_get(c, "event");
	json_t *body_j = json_object_get(c, "body");
	const char *body = json_string_value(body_j);
	size_t len = json_string_length(body_j);
	const char *ctype = str_or_null(c, "content_type");
	const char *w;
	struct event ev;
	int before = check_fails;

	memset(&ev, 0, sizeof(ev));
	if (!CHECK(body != NULL && ctype != NULL && want != NULL) ||
	    !CHECK(from_any(ctype, body, len, &ev) == 0))
		goto out;
	CHECK_STR(ev.type, str_or_null(want, "type"));
	if (expected(want, "cf_payment_id", "transaction_id", &w))
		CHECK_STR(ev.cf_payment_id, w);
	if (expected(want, "order_id", NULL, &w))
		CHECK_STR(ev.order_id, w);
	if (expected(want, "payment_status", "transaction_status", &w))
		CHECK_STR(ev.payment_status, w);
	/* The vector holds the body's token ("170.00"); DESIGN stores a JSON
	 * number as its shortest text ("170"), so compare values. */
	if (expected(want, "payment_amount", NULL, &w) && CHECK(w != NULL) &&
	    CHECK(ev.amount != NULL))
		CHECK(strtod(ev.amount, NULL) == strtod(w, NULL));
	CHECK_INT(ev.format, ctype[12] == 'j' ? EVENT_JSON : EVENT_FORM);
	check_dedup(c, &ev, body, len);
out:
	if (check_fails != before)
		fprintf(stderr, "  in vector %s\n", str_or_null(c, "name"));
	event_done(&ev);
}

static void
test_vectors(void)
{
	json_error_t err;
	json_t *all, *c;
	size_t i, n = 0;

	all = json_load_file(VECTORS, 0, &err);
	if (!CHECK(json_is_array(all)))
		return;
	json_array_foreach(all, i, c) {
		if (!is_accepted(c))
			continue;
		check_vector(c);
		n++;
	}
	CHECK(n >= 15);		/* the loop really ran over the vectors */
	json_decref(all);
}

/* Parses a JSON body given as a C string. */
static int
json_event(const char *body, struct event *ev)
{
	memset(ev, 0, sizeof(*ev));
	return event_from_json(body, strlen(body), ev);
}

static void
check_unknown_sha(const char *body, size_t len)
{
	struct event ev;
	char key[256];

	memset(&ev, 0, sizeof(ev));
	if (!CHECK(event_from_json(body, len, &ev) == 0))
		return;
	CHECK_STR(ev.type, "UNKNOWN");
	CHECK_STR(ev.cf_payment_id, NULL);
	CHECK_STR(ev.order_id, NULL);
	CHECK_STR(ev.payment_status, NULL);
	CHECK_STR(ev.amount, NULL);
	sha256_key("UNKNOWN", body, len, key, sizeof(key));
	CHECK_STR(ev.event_key, key);
	CHECK_INT(ev.format, EVENT_JSON);
	event_done(&ev);
}

static void
test_amounts(void)
{
	static const struct {
		const char *amount;	/* the JSON token */
		const char *want;
	} cases[] = {
		/* a string's content and a number's token, exactly as sent:
		 * the amount is money and the signature is over this text */
		{ "\"1.8\"", "1.8" },
		{ "\"170.00\"", "170.00" },
		{ "\"55.00\"", "55.00" },
		{ "170.00", "170.00" },
		{ "2.50", "2.50" },
		{ "0.10", "0.10" },
		{ "2.00", "2.00" },
		{ "1.8", "1.8" },
		{ "0.1", "0.1" },
		{ "1", "1" },
		{ "-2.5", "-2.5" },
		/* beyond int64 (jansson cannot hold it): the exact digits */
		{ "100000000000000000000", "100000000000000000000" },
		{ "-100000000000000000000", "-100000000000000000000" },
		/* beyond double: still the text that was signed */
		{ "1e400", "1e400" },
		{ "1e2", "1e2" },
		{ "1E2", "1E2" },
		{ "-0", "-0" },
		{ "0.30000000000000004", "0.30000000000000004" },
		{ "1.10", "1.10" },
		{ "true", NULL },
		{ "null", NULL },
		{ "{\"v\":1}", NULL },
		{ "[1]", NULL },
	};
	char body[256];
	struct event ev;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		(void)snprintf(body, sizeof(body), "{\"type\":"
		    "\"PAYMENT_SUCCESS_WEBHOOK\",\"data\":{\"payment\":"
		    "{\"cf_payment_id\":\"77\",\"payment_amount\":%s,"
		    "\"payment_currency\":\"INR\"}}}", cases[i].amount);
		if (!CHECK(json_event(body, &ev) == 0))
			continue;
		if (!CHECK_STR(ev.amount, cases[i].want))
			fprintf(stderr, "  amount token %s\n", cases[i].amount);
		event_done(&ev);
	}
}

static void
test_big_integer_id_exact(void)
{
	struct event ev;

	if (!CHECK(json_event("{\"type\":\"PAYMENT_SUCCESS_WEBHOOK\",\"data\":"
	    "{\"payment\":{\"cf_payment_id\":9007199254740993,"
	    "\"payment_status\":\"SUCCESS\"},\"order\":{\"order_id\":"
	    "\"o1\"}}}", &ev) == 0))
		return;
	CHECK_STR(ev.cf_payment_id, "9007199254740993");
	CHECK_STR(ev.event_key, "PAYMENT_SUCCESS_WEBHOOK:9007199254740993");
	CHECK_STR(ev.order_id, "o1");
	CHECK_STR(ev.payment_status, "SUCCESS");
	event_done(&ev);
	if (!CHECK(json_event("{\"type\":\"PAYMENT_FAILED_WEBHOOK\",\"data\":"
	    "{\"payment\":{\"cf_payment_id\":-5}}}", &ev) == 0))
		return;
	CHECK_STR(ev.cf_payment_id, "-5");
	event_done(&ev);
}

static void
test_unreadable_bodies(void)
{
	static const char *bodies[] = {
		"{\"type\":\"PAYMENT_SUCCESS_WEBHOOK\",\"type\":\"X\"}",
		"{\"type\":\"PAYMENT_SUCCESS_WEBHOOK\",\"data\":{\"payment\":"
		    "{\"cf_payment_id\":\"1\",\"cf_payment_id\":\"2\"}}}",
		"{\"type\":\"PAYMENT_SUCCESS_WEBHOOK\"}{}",
		"{\"type\":\"PAYMENT_SUCCESS_WEBHOOK\"} x",
		"{ garbage",
		"{",
		"[{\"type\":\"PAYMENT_SUCCESS_WEBHOOK\"}]",
		"\"PAYMENT_SUCCESS_WEBHOOK\"",
		"17",
		"",
		"{\"type\":\"A\\u0000B\"}",
	};
	size_t i;

	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
		check_unknown_sha(bodies[i], strlen(bodies[i]));
	check_unknown_sha("{\"type\":\"X\"}\0junk", 17);
}

static void
test_trailing_whitespace_is_fine(void)
{
	struct event ev;
	char key[256];
	const char *body = "{\"type\":\"SETTLEMENT_SUCCESS\"}\n ";

	if (!CHECK(json_event(body, &ev) == 0))
		return;
	CHECK_STR(ev.type, "SETTLEMENT_SUCCESS");
	sha256_key("SETTLEMENT_SUCCESS", body, strlen(body), key, sizeof(key));
	CHECK_STR(ev.event_key, key);
	event_done(&ev);
}

static void
test_type_rules(void)
{
	static const char *bodies[] = {
		"{\"data\":{\"order\":{\"order_id\":\"o9\"}}}",
		"{\"type\":\"\",\"data\":{\"order\":{\"order_id\":\"o9\"}}}",
		"{\"type\":7,\"data\":{\"order\":{\"order_id\":\"o9\"}}}",
		"{\"type\":null,\"data\":{\"order\":{\"order_id\":\"o9\"}}}",
	};
	struct event ev;
	char key[256];
	size_t i;

	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		if (!CHECK(json_event(bodies[i], &ev) == 0))
			continue;
		CHECK_STR(ev.type, "UNKNOWN");
		CHECK_STR(ev.order_id, "o9");	/* still read for audits */
		sha256_key("UNKNOWN", bodies[i], strlen(bodies[i]), key,
		    sizeof(key));
		CHECK_STR(ev.event_key, key);
		event_done(&ev);
	}
}

/* DESIGN "Events and deduplication": the other families are keyed by their
 * own ids from the signed body; a part that is missing, empty or unusable
 * falls back to the body hash (two different events must never share a
 * key), except a payment form's transaction, which may be absent. */
static void
test_natural_keys(void)
{
	static const struct {
		const char *body;
		const char *key;	/* NULL: TYPE:sha256 of the body */
	} cases[] = {
		{ "{\"type\":\"REFUND_STATUS_WEBHOOK\",\"data\":{\"refund\":{"
		    "\"cf_refund_id\":11325632,\"refund_id\":\"r1\","
		    "\"refund_status\":\"SUCCESS\"}}}",
		    "REFUND_STATUS_WEBHOOK:11325632:SUCCESS" },
		{ "{\"type\":\"REFUND_STATUS_WEBHOOK\",\"data\":{\"refund\":{"
		    "\"cf_refund_id\":\"11325632\",\"refund_status\":"
		    "\"PENDING\"}}}", "REFUND_STATUS_WEBHOOK:11325632:PENDING" },
		{ "{\"type\":\"REFUND_STATUS_WEBHOOK\",\"data\":{\"refund\":{"
		    "\"cf_refund_id\":11325632}}}", NULL },
		{ "{\"type\":\"REFUND_STATUS_WEBHOOK\",\"data\":{\"refund\":{"
		    "\"cf_refund_id\":\"\",\"refund_status\":\"SUCCESS\"}}}",
		    NULL },
		{ "{\"type\":\"REFUND_STATUS_WEBHOOK\",\"data\":{\"refund\":{"
		    "\"cf_refund_id\":{},\"refund_status\":\"SUCCESS\"}}}",
		    NULL },
		{ "{\"type\":\"SETTLEMENT_SUCCESS\",\"data\":{\"settlement\":{"
		    "\"settlement_id\":738,\"status\":\"SUCCESS\"}}}",
		    "SETTLEMENT_SUCCESS:738:SUCCESS" },
		{ "{\"type\":\"SETTLEMENT_WEBHOOK\",\"data\":{\"settlement\":{"
		    "\"settlement_id\":738,\"status\":\"SUCCESS\"}}}",
		    "SETTLEMENT_WEBHOOK:738:SUCCESS" },
		{ "{\"type\":\"VENDOR_SETTLEMENT_SUCCESS\",\"data\":{"
		    "\"settlement\":{\"settlement_id\":\"9\",\"status\":"
		    "\"FAILED\"}}}", "VENDOR_SETTLEMENT_SUCCESS:9:FAILED" },
		{ "{\"type\":\"SETTLEMENT_\",\"data\":{\"settlement\":{"
		    "\"settlement_id\":738,\"status\":\"SUCCESS\"}}}", NULL },
		{ "{\"type\":\"DISPUTE_CREATED\",\"data\":{\"dispute\":{"
		    "\"dispute_id\":\"d77\",\"dispute_status\":\"OPEN\"}}}",
		    "DISPUTE_CREATED:d77:OPEN" },
		{ "{\"type\":\"DISPUTE_CLOSED\",\"data\":{\"dispute\":{"
		    "\"dispute_id\":\"d77\"}}}", NULL },
		{ "{\"type\":\"payment_form_order_webhook\",\"data\":{\"form\":{"
		    "\"form_id\":\"my-form-1\"},\"order\":{\"order_id\":\"o1\","
		    "\"transaction_id\":55,\"order_status\":\"PAID\"}}}",
		    "payment_form_order_webhook:my-form-1:o1:55:PAID" },
		{ "{\"type\":\"payment_form_order_webhook\",\"data\":{\"form\":{"
		    "\"form_id\":\"my-form-1\"},\"order\":{\"order_id\":\"o1\","
		    "\"order_status\":\"ACTIVE\"}}}",
		    "payment_form_order_webhook:my-form-1:o1::ACTIVE" },
		{ "{\"type\":\"payment_form_order_webhook\",\"data\":{\"form\":{"
		    "\"form_id\":\"my-form-1\"},\"order\":{\"order_id\":\"o1\","
		    "\"transaction_id\":[1],\"order_status\":\"PAID\"}}}", NULL },
		{ "{\"type\":\"CHARGES_WEBHOOK\",\"data\":{\"x\":1}}", NULL },
	};
	struct event ev;
	char key[512];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (!CHECK(json_event(cases[i].body, &ev) == 0))
			continue;
		if (cases[i].key == NULL)
			sha256_key(ev.type, cases[i].body,
			    strlen(cases[i].body), key, sizeof(key));
		if (!CHECK_STR(ev.event_key, cases[i].key != NULL ?
		    cases[i].key : key))
			fprintf(stderr, "  body %s\n", cases[i].body);
		event_done(&ev);
	}
}

static void
test_payment_keys(void)
{
	struct event a, b;

	if (!CHECK(json_event("{\"type\":\"PAYMENT_FAILED_WEBHOOK\",\"data\":"
	    "{\"payment\":{\"cf_payment_id\":\"15\"}}}", &a) == 0))
		return;
	if (CHECK(json_event("{\"type\":\"PAYMENT_SUCCESS_WEBHOOK\",\"data\":"
	    "{\"payment\":{\"cf_payment_id\":15}}}", &b) == 0)) {
		CHECK_STR(a.event_key, "PAYMENT_FAILED_WEBHOOK:15");
		CHECK_STR(b.event_key, "PAYMENT_SUCCESS_WEBHOOK:15");
		CHECK(strcmp(a.event_key, b.event_key) != 0);
		event_done(&b);
	}
	event_done(&a);
}

static void
test_payment_without_id_is_generic(void)
{
	static const char *bodies[] = {
		"{\"type\":\"PAYMENT_SUCCESS_WEBHOOK\",\"data\":{}}",
		"{\"type\":\"PAYMENT_SUCCESS_WEBHOOK\",\"data\":{\"payment\":"
		    "{\"cf_payment_id\":\"\"}}}",
		"{\"type\":\"PAYMENT_SUCCESS_WEBHOOK\",\"data\":{\"payment\":"
		    "{\"cf_payment_id\":true}}}",
		"{\"type\":\"PAYMENT_SUCCESS_WEBHOOK\",\"data\":[1]}",
	};
	struct event ev;
	char key[256];
	size_t i;

	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		if (!CHECK(json_event(bodies[i], &ev) == 0))
			continue;
		CHECK_STR(ev.type, "PAYMENT_SUCCESS_WEBHOOK");
		CHECK_STR(ev.cf_payment_id, NULL);
		sha256_key(ev.type, bodies[i], strlen(bodies[i]), key,
		    sizeof(key));
		CHECK_STR(ev.event_key, key);
		event_done(&ev);
	}
}

static void
test_link_keys(void)
{
	struct event ev;
	char key[256];
	const char *nolink = "{\"type\":\"PAYMENT_LINK_EVENT\",\"data\":"
	    "{\"link_status\":\"EXPIRED\"}}";

	if (CHECK(json_event("{\"type\":\"PAYMENT_LINK_EVENT\",\"data\":"
	    "{\"link_id\":\"l1\",\"link_status\":\"EXPIRED\","
	    "\"link_currency\":\"INR\",\"order\":{\"order_id\":\"CFPay_1\","
	    "\"order_amount\":\"22.00\"}},\"event_time\":\"t\"}", &ev) == 0)) {
		CHECK_STR(ev.event_key, "PAYMENT_LINK_EVENT:l1:EXPIRED:");
		CHECK_STR(ev.cf_payment_id, NULL);
		CHECK_STR(ev.order_id, "CFPay_1");
		CHECK_STR(ev.amount, "22.00");
		CHECK_STR(ev.currency, "INR");
		CHECK_STR(ev.event_time, "t");
		event_done(&ev);
	}
	if (CHECK(json_event(nolink, &ev) == 0)) {
		sha256_key("PAYMENT_LINK_EVENT", nolink, strlen(nolink), key,
		    sizeof(key));
		CHECK_STR(ev.event_key, key);
		event_done(&ev);
	}
}

static void
test_other_types_best_effort(void)
{
	struct event ev;

	if (CHECK(json_event("{\"type\":\"DISPUTE_CREATED\",\"data\":{"
	    "\"dispute\":{\"dispute_id\":\"d1\",\"dispute_status\":\"OPEN\"},"
	    "\"order_details\":{\"order_id\":\"od1\"}},\"event_time\":"
	    "\"2023-01-01\"}", &ev) == 0)) {
		CHECK_STR(ev.order_id, "od1");
		CHECK_STR(ev.payment_status, NULL);
		CHECK_STR(ev.event_time, "2023-01-01");
		CHECK_STR(ev.event_key, "DISPUTE_CREATED:d1:OPEN");
		event_done(&ev);
	}
	if (CHECK(json_event("{\"type\":\"X\",\"data\":{\"order_id\":\"o2\","
	    "\"cf_payment_id\":12,\"payment\":{\"payment_status\":\"PENDING\","
	    "\"payment_amount\":5,\"payment_currency\":\"INR\"}}}", &ev)
	    == 0)) {
		CHECK_STR(ev.order_id, "o2");
		CHECK_STR(ev.cf_payment_id, "12");
		CHECK_STR(ev.payment_status, "PENDING");
		CHECK_STR(ev.amount, "5");
		CHECK_STR(ev.currency, "INR");
		event_done(&ev);
	}
	/* data.order.order_id wins over data.refund.order_id */
	if (CHECK(json_event("{\"type\":\"R\",\"data\":{\"refund\":{"
	    "\"order_id\":\"r\",\"refund_status\":\"SUCCESS\"},\"order\":{"
	    "\"order_id\":\"o\"}}}", &ev) == 0)) {
		CHECK_STR(ev.order_id, "o");
		CHECK_STR(ev.payment_status, NULL);
		event_done(&ev);
	}
}

/* A form read as one verified by its headers (not strictly). */
static int
form_event(const char *body, struct event *ev)
{
	struct form f;
	char why[160];
	int rc = -1;

	memset(&f, 0, sizeof(f));
	memset(ev, 0, sizeof(*ev));
	if (CHECK(form_parse(body, strlen(body), &f) == FORM_OK) &&
	    CHECK(event_from_form(&f, body, strlen(body), 0, ev, why,
	    sizeof(why)) == EVENT_OK))
		rc = 0;
	form_done(&f);
	return rc;
}

static void
test_form_events(void)
{
	struct event ev;
	char key[512];
	const char *b;

	if (CHECK(form_event("type=PAYMENT_SUCCESS_WEBHOOK&cf_payment_id=42&"
	    "order_id=o%2B1&payment_status=SUCCESS&payment_amount=170.00&"
	    "payment_currency=INR&event_time=t&signature=abc", &ev)
	    == 0)) {
		CHECK_STR(ev.event_key, "PAYMENT_SUCCESS_WEBHOOK:42");
		CHECK_STR(ev.order_id, "o+1");
		CHECK_STR(ev.payment_status, "SUCCESS");
		CHECK_STR(ev.amount, "170.00");
		CHECK_STR(ev.currency, "INR");
		CHECK_STR(ev.event_time, "t");
		CHECK_INT(ev.format, EVENT_FORM);
		event_done(&ev);
	}
	b = "type=PAYMENT_SUCCESS_WEBHOOK&cf_payment_id=&order_id=o%001";
	if (CHECK(form_event(b, &ev) == 0)) {
		CHECK_STR(ev.cf_payment_id, NULL);
		CHECK_STR(ev.order_id, NULL);	/* holds a NUL byte */
		sha256_key(ev.type, b, strlen(b), key, sizeof(key));
		CHECK_STR(ev.event_key, key);
		event_done(&ev);
	}
	if (CHECK(form_event("type=PAYMENT_LINK_EVENT&link_id=l2&"
	    "link_status=CANCELLED&transaction_id=&order_amount=9.50&"
	    "link_currency=INR", &ev) == 0)) {
		CHECK_STR(ev.event_key, "PAYMENT_LINK_EVENT:l2:CANCELLED:");
		CHECK_STR(ev.amount, "9.50");
		CHECK_STR(ev.currency, "INR");
		event_done(&ev);
	}
	b = "orderId=1&signature=x";
	if (CHECK(form_event(b, &ev) == 0)) {
		CHECK_STR(ev.type, "UNKNOWN");
		sha256_key("UNKNOWN", b, strlen(b), key, sizeof(key));
		CHECK_STR(ev.event_key, key);
		event_done(&ev);
	}
}

/* DESIGN: cf_payment_id "digits exactly as sent"; spec section 4: "never
 * via double". A numeric id keeps its token, whatever jansson can hold. */
static void
test_numeric_ids_keep_their_token(void)
{
	static const struct {
		const char *token;
		const char *want;
	} cases[] = {
		{ "1453002795", "1453002795" },
		{ "1453002795.0", "1453002795.0" },
		{ "9007199254740993.0", "9007199254740993.0" },
		{ "-7", "-7" },
		{ "9223372036854775807", "9223372036854775807" },
		{ "9223372036854775808", "9223372036854775808" },
		{ "12345678901234567890", "12345678901234567890" },
		{ "-92233720368547758090", "-92233720368547758090" },
		{ "1e400", "1e400" },
		{ "1.5E3", "1.5E3" },
	};
	char body[512], key[256];
	struct event ev;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		(void)snprintf(body, sizeof(body), "{\"type\":"
		    "\"PAYMENT_SUCCESS_WEBHOOK\",\"data\":{\"order\":"
		    "{\"order_id\":\"o1\"},\"payment\":{\"cf_payment_id\" : "
		    "%s ,\"payment_status\":\"SUCCESS\",\"payment_amount\":"
		    "170.00}},\"n\":[1e999,-1e999,99999999999999999999]}",
		    cases[i].token);
		if (!CHECK(json_event(body, &ev) == 0))
			continue;
		(void)snprintf(key, sizeof(key), "PAYMENT_SUCCESS_WEBHOOK:%s",
		    cases[i].want);
		if (!CHECK_STR(ev.event_key, key))
			fprintf(stderr, "  id token %s\n", cases[i].token);
		CHECK_STR(ev.type, "PAYMENT_SUCCESS_WEBHOOK");
		CHECK_STR(ev.cf_payment_id, cases[i].want);
		CHECK_STR(ev.order_id, "o1");
		CHECK_STR(ev.payment_status, "SUCCESS");
		CHECK_STR(ev.amount, "170.00");
		event_done(&ev);
	}
	/* an escaped key is the same key for jansson and for the raw text */
	if (CHECK(json_event("{\"type\":\"PAYMENT_SUCCESS_WEBHOOK\",\"data\":"
	    "{\"payment\":{\"cf_payment\\u005fid\":12345678901234567890123}}}",
	    &ev) == 0)) {
		CHECK_STR(ev.cf_payment_id, "12345678901234567890123");
		event_done(&ev);
	}
	/* a numeric order_id keeps its token too */
	if (CHECK(json_event("{\"type\":\"PAYMENT_SUCCESS_WEBHOOK\",\"data\":"
	    "{\"order\":{\"order_id\":100.50},\"payment\":{\"cf_payment_id\":"
	    "\"8\"}}}", &ev) == 0)) {
		CHECK_STR(ev.order_id, "100.50");
		event_done(&ev);
	}
}

/* A NUL escape in one string makes only that field unusable; the rest of
 * the event is still read (JSON_ALLOW_NUL). */
static void
test_nul_in_one_string(void)
{
	struct event ev;
	const char *b;

	b = "{\"type\":\"PAYMENT_SUCCESS_WEBHOOK\",\"data\":{\"order\":"
	    "{\"order_id\":\"o\\u0000x\"},\"payment\":{\"cf_payment_id\":"
	    "\"55\",\"payment_currency\":\"INR\"},\"customer_details\":"
	    "{\"customer_name\":\"a\\u0000b\"}}}";
	if (CHECK(json_event(b, &ev) == 0)) {
		CHECK_STR(ev.type, "PAYMENT_SUCCESS_WEBHOOK");
		CHECK_STR(ev.event_key, "PAYMENT_SUCCESS_WEBHOOK:55");
		CHECK_STR(ev.order_id, NULL);
		CHECK_STR(ev.currency, "INR");
		event_done(&ev);
	}
}

/* A transaction_id that is there but unusable must not make the key of a
 * link event without a transaction ("...:PAID:"), or a second, different
 * event would be dropped as its duplicate. */
static void
test_link_unreadable_transaction(void)
{
	static const char *json[] = {
		"{\"type\":\"PAYMENT_LINK_EVENT\",\"data\":{\"link_id\":\"l\","
		    "\"link_status\":\"PAID\",\"order\":{\"transaction_id\":"
		    "\"1\\u00002\"}}}",
		"{\"type\":\"PAYMENT_LINK_EVENT\",\"data\":{\"link_id\":\"l\","
		    "\"link_status\":\"PAID\",\"order\":{\"transaction_id\":"
		    "{\"id\":1}}}}",
		"{\"type\":\"PAYMENT_LINK_EVENT\",\"data\":{\"link_id\":\"l\","
		    "\"link_status\":\"PAID\",\"order\":{\"transaction_id\":"
		    "true}}}",
	};
	static const char *absent[] = {
		"{\"type\":\"PAYMENT_LINK_EVENT\",\"data\":{\"link_id\":\"l\","
		    "\"link_status\":\"PAID\",\"order\":{\"transaction_id\":"
		    "null}}}",
		"{\"type\":\"PAYMENT_LINK_EVENT\",\"data\":{\"link_id\":\"l\","
		    "\"link_status\":\"PAID\",\"order\":{\"transaction_id\":"
		    "\"\"}}}",
		"{\"type\":\"PAYMENT_LINK_EVENT\",\"data\":{\"link_id\":\"l\","
		    "\"link_status\":\"PAID\"}}",
	};
	const char *form = "type=PAYMENT_LINK_EVENT&link_id=l&link_status=PAID&"
	    "transaction_id=7%007";
	struct event ev;
	char key[256];
	size_t i;

	for (i = 0; i < sizeof(json) / sizeof(json[0]); i++) {
		if (!CHECK(json_event(json[i], &ev) == 0))
			continue;
		sha256_key(ev.type, json[i], strlen(json[i]), key, sizeof(key));
		CHECK_STR(ev.event_key, key);
		event_done(&ev);
	}
	for (i = 0; i < sizeof(absent) / sizeof(absent[0]); i++) {
		if (!CHECK(json_event(absent[i], &ev) == 0))
			continue;
		CHECK_STR(ev.event_key, "PAYMENT_LINK_EVENT:l:PAID:");
		event_done(&ev);
	}
	if (CHECK(form_event(form, &ev) == 0)) {
		sha256_key(ev.type, form, strlen(form), key, sizeof(key));
		CHECK_STR(ev.event_key, key);
		event_done(&ev);
	}
	if (CHECK(json_event("{\"type\":\"PAYMENT_LINK_EVENT\",\"data\":{"
	    "\"link_id\":\"l\",\"link_status\":\"PAID\",\"order\":{"
	    "\"transaction_id\":123456789012345678901}}}", &ev) == 0)) {
		CHECK_STR(ev.event_key,
		    "PAYMENT_LINK_EVENT:l:PAID:123456789012345678901");
		event_done(&ev);
	}
}

/* Form values may be any bytes; the event's text fields hold only UTF-8
 * (the raw body keeps the bytes). */
static void
test_form_non_utf8(void)
{
	struct event ev;
	char key[256];
	const char *b;

	b = "type=PAYMENT_SUCCESS_WEBHOOK&cf_payment_id=9%FF&order_id=o%C3%A9&"
	    "payment_status=%C0%80";
	if (CHECK(form_event(b, &ev) == 0)) {
		CHECK_STR(ev.cf_payment_id, NULL);
		CHECK_STR(ev.order_id, "o\xc3\xa9");
		CHECK_STR(ev.payment_status, NULL);	/* overlong NUL */
		sha256_key(ev.type, b, strlen(b), key, sizeof(key));
		CHECK_STR(ev.event_key, key);
		event_done(&ev);
	}
	b = "type=PAYMENT%ED%A0%80&cf_payment_id=1";
	if (CHECK(form_event(b, &ev) == 0)) {
		CHECK_STR(ev.type, "UNKNOWN");		/* a surrogate */
		event_done(&ev);
	}
}

/* Spec section 11 (item: a raw NUL after a number): jansson skips such a
 * byte, the envelope would copy it; a body with any raw NUL is not JSON. */
static void
test_raw_nul_is_not_json(void)
{
	static const char b[] = "{\"type\":\"PAYMENT_SUCCESS_WEBHOOK\",\"data\":"
	    "{\"payment\":{\"cf_payment_id\":\"5\",\"payment_amount\":1\0}}}";

	check_unknown_sha(b, sizeof(b) - 1);
}

/* A lone surrogate escape in a customer's name spoils that string only: the
 * payment is still read (the signature is valid, the ids are plain). */
static void
test_lone_surrogate_spoils_one_field(void)
{
	struct event ev;
	char key[256];
	const char *b;

	b = "{\"type\":\"PAYMENT_SUCCESS_WEBHOOK\",\"data\":{\"order\":"
	    "{\"order_id\":\"o7\"},\"payment\":{\"cf_payment_id\":\"5151\","
	    "\"payment_status\":\"SUCCESS\",\"payment_amount\":10.50},"
	    "\"customer_details\":{\"customer_name\":\"Ann \\ud83d\"}}}";
	if (CHECK(json_event(b, &ev) == 0)) {
		CHECK_STR(ev.type, "PAYMENT_SUCCESS_WEBHOOK");
		CHECK_STR(ev.event_key, "PAYMENT_SUCCESS_WEBHOOK:5151");
		CHECK_STR(ev.order_id, "o7");
		CHECK_STR(ev.payment_status, "SUCCESS");
		event_done(&ev);
	}
	/* In an id, the id is unusable: the body hash keys it. */
	b = "{\"type\":\"PAYMENT_SUCCESS_WEBHOOK\",\"data\":{\"payment\":"
	    "{\"cf_payment_id\":\"51\\udc0051\"}}}";
	if (CHECK(json_event(b, &ev) == 0)) {
		CHECK_STR(ev.cf_payment_id, NULL);
		sha256_key(ev.type, b, strlen(b), key, sizeof(key));
		CHECK_STR(ev.event_key, key);
		event_done(&ev);
	}
	/* A valid pair is left alone. */
	b = "{\"type\":\"T\",\"data\":{\"order_id\":\"\\ud83d\\ude00\"}}";
	if (CHECK(json_event(b, &ev) == 0)) {
		CHECK_STR(ev.order_id, "\xf0\x9f\x98\x80");
		event_done(&ev);
	}
}

/* A form signed only by its signature field, read strictly. */
static enum event_result
strict_event(const char *body, struct event *ev, char *why, size_t n)
{
	struct form f;
	enum event_result r = EVENT_NOMEM;

	memset(&f, 0, sizeof(f));
	memset(ev, 0, sizeof(*ev));
	why[0] = '\0';
	if (CHECK(form_parse(body, strlen(body), &f) == FORM_OK))
		r = event_from_form(&f, body, strlen(body), 1, ev, why, n);
	form_done(&f);
	return r;
}

/* Spec section 11: every field a rule reads must match its grammar (so a
 * byte moved between neighbours breaks it), the type must be there, and a
 * link's status must agree with its amounts and its transaction. The same
 * bodies read as header-verified forms are accepted (their bytes are
 * signed exactly). */
static void
test_strict_form_fields(void)
{
	static const char link[] = "type=PAYMENT_LINK_EVENT&link_id=L-1_a&"
	    "link_amount=200.00&link_amount_paid=%s&link_currency=INR&"
	    "link_purpose=Pay&link_status=%s&order_amount=200.00&"
	    "order_id=CFPay_1&transaction_id=%s&transaction_status=SUCCESS&"
	    "event_time=2021-08-18T12:55:06%%2B05:30";
	static const struct {
		const char *paid, *status, *tx;
		int ok;
	} links[] = {
		{ "200.00", "PAID", "1021301", 1 },
		{ "250", "PAID", "1021301", 1 },
		{ "55.00", "PARTIALLY_PAID", "1021301", 1 },
		{ "55.00", "PAID", "1021301", 0 },	/* re-cut status */
		{ "200.00", "PARTIALLY_PAID", "1021301", 0 },
		{ "200.00", "PAID", "", 0 },		/* blank added */
		{ "200.00", "PAID", "10213O1", 0 },
		{ "200.0O", "PAID", "1021301", 0 },
		{ "200.0", "PAID", "1021301", 0 },	/* 0 moved out */
		{ "200.00", "PAID", "021301", 0 },	/* 1 moved out */
		{ "0.00", "EXPIRED", "", 0 },		/* blank tx */
		{ "200.00", "PAI", "1021301", 0 },
		{ "200.00", "PARTIALLY_", "1021301", 0 },
	};
	static const struct {
		const char *body;
		int ok;
	} others[] = {
		{ "type=PAYMENT_LINK_EVENT&link_id=L1&link_status=EXPIRED", 1 },
		{ "type=PAYMENT_LINK_EVENT&link_id=L1&link_status=PAID", 0 },
		{ "type=PAYMENT_LINK_EVENT&link_status=EXPIRED", 0 },
		{ "link_id=L1&link_status=EXPIRED", 0 },	/* no type */
		{ "type=PAYMENT+LINK&link_id=L1&link_status=EXPIRED", 0 },
		{ "type=PAYMENT_SUCCESS_WEBHOOK&cf_payment_id=42&order_id=o1&"
		    "payment_status=SUCCESS&payment_amount=1.50&"
		    "payment_currency=INR", 1 },
		{ "type=PAYMENT_SUCCESS_WEBHOOK&cf_payment_id=4a2", 0 },
		{ "type=PAYMENT_SUCCESS_WEBHOOK&cf_payment_id=42&"
		    "payment_currency=inr", 0 },
		{ "type=PAYMENT_SUCCESS_WEBHOOK&cf_payment_id=42&order_id=o%3A1",
		    0 },
		{ "type=PAYMENT_SUCCESS_WEBHOOK&cf_payment_id=42&order_id=o%001",
		    0 },
		{ "type=PAYMENT_SUCCESS_WEBHOOK&cf_payment_id=42&event_time=t",
		    0 },
		/* a field the type does not read is checked all the same */
		{ "type=PAYMENT_SUCCESS_WEBHOOK&cf_payment_id=42&"
		    "transaction_status=SUCCESSX", 0 },
		{ "type=X&link_status=PAIDx", 0 },
		/* the order's currency enters the ledger: a grammar too */
		{ "type=PAYMENT_SUCCESS_WEBHOOK&cf_payment_id=42&"
		    "order_currency=INR", 1 },
		{ "type=PAYMENT_SUCCESS_WEBHOOK&cf_payment_id=42&"
		    "order_currency=INR1", 0 },
	};
	char body[1024], why[160];
	struct event ev;
	enum event_result r;
	size_t i;

	for (i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		(void)snprintf(body, sizeof(body), link, links[i].paid,
		    links[i].status, links[i].tx);
		r = strict_event(body, &ev, why, sizeof(why));
		if (!CHECK_INT(r, links[i].ok ? EVENT_OK : EVENT_REFUSED))
			fprintf(stderr, "  link case %zu: %s\n", i, why);
		if (!links[i].ok)
			CHECK(why[0] != '\0');
		event_done(&ev);
		if (CHECK(form_event(body, &ev) == 0))
			event_done(&ev);
	}
	for (i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		r = strict_event(others[i].body, &ev, why, sizeof(why));
		if (!CHECK_INT(r, others[i].ok ? EVENT_OK : EVENT_REFUSED))
			fprintf(stderr, "  case %s: %s\n", others[i].body, why);
		event_done(&ev);
	}
	(void)snprintf(body, sizeof(body), link, "200.00", "PAID", "1021301");
	if (CHECK(strict_event(body, &ev, why, sizeof(why)) == EVENT_OK)) {
		CHECK_STR(ev.event_key, "PAYMENT_LINK_EVENT:L-1_a:PAID:1021301");
		CHECK_STR(ev.order_id, "CFPay_1");
		CHECK_STR(ev.amount, "200.00");
		CHECK_STR(ev.event_time, "2021-08-18T12:55:06+05:30");
	}
	event_done(&ev);
}

/* The details of each family (event.h), numbers by their token, only for
 * the family's types; a form link event's come from its fields. */
static void
test_details(void)
{
	struct event ev;
	int d;

	if (CHECK(json_event("{\"type\":\"PAYMENT_LINK_EVENT\",\"data\":{"
	    "\"link_id\":\"L7\",\"link_status\":\"PAID\",\"link_amount\":"
	    "55.00,\"link_amount_paid\":\"55.00\",\"link_currency\":\"INR\","
	    "\"order\":{\"order_id\":\"CFPay_7\",\"order_amount\":\"55.00\","
	    "\"transaction_id\":1021206,\"transaction_status\":\"SUCCESS\"},"
	    "\"refund\":{\"refund_id\":\"r\"}}}", &ev) == 0)) {
		CHECK_STR(ev.detail[EVENT_LINK_ID], "L7");
		CHECK_STR(ev.detail[EVENT_LINK_STATUS], "PAID");
		CHECK_STR(ev.detail[EVENT_LINK_AMOUNT], "55.00");
		CHECK_STR(ev.detail[EVENT_LINK_AMOUNT_PAID], "55.00");
		CHECK_STR(ev.detail[EVENT_ORDER_AMOUNT], "55.00");
		CHECK_STR(ev.detail[EVENT_ORDER_CURRENCY], "INR");
		CHECK_STR(ev.detail[EVENT_REFUND_ID], NULL);	/* not a refund */
		event_done(&ev);
	}
	if (CHECK(json_event("{\"type\":\"PAYMENT_FAILED_WEBHOOK\",\"data\":{"
	    "\"order\":{\"order_id\":\"o1\",\"order_amount\":1E2,"
	    "\"order_currency\":\"INR\"},\"payment\":{\"cf_payment_id\":"
	    "\"9\"}},\"link_status\":\"PAID\"}", &ev) == 0)) {
		CHECK_STR(ev.detail[EVENT_ORDER_AMOUNT], "1E2");
		CHECK_STR(ev.detail[EVENT_ORDER_CURRENCY], "INR");
		CHECK_STR(ev.detail[EVENT_LINK_STATUS], NULL);
		event_done(&ev);
	}
	if (CHECK(json_event("{\"type\":\"DISPUTE_UPDATED\",\"data\":{"
	    "\"dispute\":{\"dispute_id\":433475258,\"dispute_status\":"
	    "\"DISPUTE_UNDER_REVIEW\",\"dispute_amount\":3.50}}}", &ev) == 0)) {
		CHECK_STR(ev.detail[EVENT_DISPUTE_ID], "433475258");
		CHECK_STR(ev.detail[EVENT_DISPUTE_STATUS], "DISPUTE_UNDER_REVIEW");
		CHECK_STR(ev.detail[EVENT_DISPUTE_AMOUNT], "3.50");
		CHECK_STR(ev.detail[EVENT_ORDER_AMOUNT], NULL);
		event_done(&ev);
	}
	if (CHECK(json_event("{\"type\":\"VENDOR_SETTLEMENT_SUCCESS\",\"data\":"
	    "{\"settlement\":{\"settlement_id\":738,\"status\":\"SUCCESS\","
	    "\"settlement_amount\":97.90,\"utr\":\"1645009380\"}}}",
	    &ev) == 0)) {
		CHECK_STR(ev.detail[EVENT_SETTLEMENT_ID], "738");
		CHECK_STR(ev.detail[EVENT_SETTLEMENT_STATUS], "SUCCESS");
		CHECK_STR(ev.detail[EVENT_SETTLEMENT_AMOUNT], "97.90");
		CHECK_STR(ev.detail[EVENT_SETTLEMENT_UTR], "1645009380");
		event_done(&ev);
	}
	if (CHECK(form_event("type=PAYMENT_LINK_EVENT&link_id=L8&link_status="
	    "PARTIALLY_PAID&link_amount_paid=10.50&link_currency=INR&"
	    "order_amount=10.50", &ev) == 0)) {
		CHECK_STR(ev.detail[EVENT_LINK_STATUS], "PARTIALLY_PAID");
		CHECK_STR(ev.detail[EVENT_LINK_AMOUNT_PAID], "10.50");
		CHECK_STR(ev.detail[EVENT_LINK_AMOUNT], NULL);
		CHECK_STR(ev.detail[EVENT_ORDER_CURRENCY], "INR");
		event_done(&ev);
	}
	CHECK(event_detail_applies("PAYMENT_LINK_EVENT", EVENT_LINK_STATUS));
	CHECK(event_detail_applies("PAYMENT_SUCCESS_WEBHOOK",
	    EVENT_ORDER_AMOUNT));
	CHECK(!event_detail_applies("PAYMENT_SUCCESS_WEBHOOK",
	    EVENT_LINK_STATUS));
	CHECK(event_detail_applies("SETTLEMENT_WEBHOOK", EVENT_SETTLEMENT_ID));
	CHECK(!event_detail_applies("SETTLEMENT_", EVENT_SETTLEMENT_ID));
	CHECK(event_detail_applies("DISPUTE_CLOSED", EVENT_DISPUTE_STATUS));
	CHECK(!event_detail_applies("UNKNOWN", EVENT_REFUND_ID));
	CHECK(!event_detail_applies(NULL, EVENT_REFUND_ID));
	for (d = 0; d < EVENT_DETAIL_COUNT; d++)
		CHECK(event_detail_name(d)[0] != '\0');
	CHECK_STR(event_detail_name(EVENT_SETTLEMENT_UTR), "settlement_utr");
}

/* A stored row read again: the media type decides form or JSON. */
static void
test_from_row(void)
{
	static const char form[] = "type=PAYMENT_LINK_EVENT&link_id=L1&"
	    "link_status=PAID&transaction_id=5&order_id=CFPay_1&"
	    "order_amount=2.50";
	static const char json[] = "{\"type\":\"PAYMENT_SUCCESS_WEBHOOK\","
	    "\"data\":{\"payment\":{\"cf_payment_id\":5,"
	    "\"payment_amount\":2.50}}}";
	struct event ev;

	CHECK(event_content_is_form("application/x-www-form-urlencoded"));
	CHECK(event_content_is_form(" Application/X-WWW-Form-Urlencoded ; "
	    "charset=utf-8"));
	CHECK(!event_content_is_form("application/json"));
	CHECK(!event_content_is_form("application/x-www-form-urlencodedx"));
	CHECK(!event_content_is_form(NULL));
	if (CHECK(event_from_row("application/x-www-form-urlencoded", form,
	    strlen(form), &ev) == 0)) {
		CHECK_STR(ev.event_key, "PAYMENT_LINK_EVENT:L1:PAID:5");
		CHECK_STR(ev.amount, "2.50");
		CHECK_INT(ev.format, EVENT_FORM);
		event_done(&ev);
	}
	if (CHECK(event_from_row("application/json; charset=utf-8", json,
	    strlen(json), &ev) == 0)) {
		CHECK_STR(ev.event_key, "PAYMENT_SUCCESS_WEBHOOK:5");
		CHECK_STR(ev.amount, "2.50");
		event_done(&ev);
	}
	/* a repeated key no longer decodes: the bytes alone */
	if (CHECK(event_from_row("application/x-www-form-urlencoded",
	    "type=A&type=B", 13, &ev) == 0)) {
		CHECK_STR(ev.type, "UNKNOWN");
		event_done(&ev);
	}
	if (CHECK(event_from_row(NULL, NULL, 0, &ev) == 0)) {
		CHECK_STR(ev.type, "UNKNOWN");
		event_done(&ev);
	}
}

static void
test_done_is_safe(void)
{
	struct event ev;

	memset(&ev, 0, sizeof(ev));
	event_done(&ev);
	event_done(NULL);
	if (CHECK(json_event("{\"type\":\"T\"}", &ev) == 0)) {
		event_done(&ev);
		CHECK(ev.type == NULL && ev.event_key == NULL);
		event_done(&ev);	/* twice is harmless */
	}
}

int
main(void)
{
	RUN(test_vectors);
	RUN(test_amounts);
	RUN(test_big_integer_id_exact);
	RUN(test_unreadable_bodies);
	RUN(test_trailing_whitespace_is_fine);
	RUN(test_type_rules);
	RUN(test_natural_keys);
	RUN(test_payment_keys);
	RUN(test_payment_without_id_is_generic);
	RUN(test_link_keys);
	RUN(test_other_types_best_effort);
	RUN(test_form_events);
	RUN(test_numeric_ids_keep_their_token);
	RUN(test_nul_in_one_string);
	RUN(test_link_unreadable_transaction);
	RUN(test_form_non_utf8);
	RUN(test_raw_nul_is_not_json);
	RUN(test_lone_surrogate_spoils_one_field);
	RUN(test_strict_form_fields);
	RUN(test_details);
	RUN(test_from_row);
	RUN(test_done_is_safe);
	return check_finish("test_event");
}
