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

static int
from_any(const char *ctype, const char *body, size_t len, const char *idem,
    struct event *ev)
{
	struct form f;
	int rc = -1;

	if (strncmp(ctype, "application/json", 16) == 0)
		return event_from_json(body, len, idem, ev);
	memset(&f, 0, sizeof(f));
	if (CHECK(form_parse(body, len, &f) == FORM_OK))
		rc = event_from_form(&f, body, len, idem, ev);
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
	if (strcmp(kind, "x-idempotency-key") == 0) {
		(void)snprintf(key, sizeof(key), "%s:idem:%s", ev->type, value);
		CHECK_STR(ev->event_key, key);
	} else if (strncmp(kind, "sha256", 6) == 0) {
		sha256_key(ev->type, body, len, key, sizeof(key));
		CHECK_STR(ev->event_key, key);
		CHECK_STR(strrchr(ev->event_key, ':') + 1, value);
	} else {
		CHECK(strcmp(kind, "type+cf_payment_id") == 0 ||
		    strcmp(kind, "link") == 0);
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
	const char *idem = str_or_null(json_object_get(c, "headers"),
	    "x-idempotency-key");
	const char *ctype = str_or_null(c, "content_type");
	const char *w;
	struct event ev;
	int before = check_fails;

	memset(&ev, 0, sizeof(ev));
	if (!CHECK(body != NULL && ctype != NULL && want != NULL) ||
	    !CHECK(from_any(ctype, body, len, idem, &ev) == 0))
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
json_event(const char *body, const char *idem, struct event *ev)
{
	memset(ev, 0, sizeof(*ev));
	return event_from_json(body, strlen(body), idem, ev);
}

static void
check_unknown_sha(const char *body, size_t len)
{
	struct event ev;
	char key[256];

	memset(&ev, 0, sizeof(ev));
	if (!CHECK(event_from_json(body, len, NULL, &ev) == 0))
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
		{ "\"1.8\"", "1.8" },
		{ "\"170.00\"", "170.00" },
		{ "170.00", "170" },
		{ "2.00", "2" },
		{ "1.8", "1.8" },
		{ "0.1", "0.1" },
		{ "1", "1" },
		{ "-2.5", "-2.5" },
		/* beyond int64 (jansson cannot hold it): the exact digits */
		{ "100000000000000000000", "100000000000000000000" },
		{ "-100000000000000000000", "-100000000000000000000" },
		/* beyond double: no decimal reads back to it */
		{ "1e400", NULL },
		{ "1E2", "100" },
		{ "-0", "0" },
		{ "0.30000000000000004", "0.30000000000000004" },
		{ "1.10", "1.1" },
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
		if (!CHECK(json_event(body, NULL, &ev) == 0))
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
	    "\"o1\"}}}", NULL, &ev) == 0))
		return;
	CHECK_STR(ev.cf_payment_id, "9007199254740993");
	CHECK_STR(ev.event_key, "PAYMENT_SUCCESS_WEBHOOK:9007199254740993");
	CHECK_STR(ev.order_id, "o1");
	CHECK_STR(ev.payment_status, "SUCCESS");
	event_done(&ev);
	if (!CHECK(json_event("{\"type\":\"PAYMENT_FAILED_WEBHOOK\",\"data\":"
	    "{\"payment\":{\"cf_payment_id\":-5}}}", NULL, &ev) == 0))
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

	if (!CHECK(json_event(body, NULL, &ev) == 0))
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
	size_t i;

	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		if (!CHECK(json_event(bodies[i], "idem-1", &ev) == 0))
			continue;
		CHECK_STR(ev.type, "UNKNOWN");
		CHECK_STR(ev.order_id, "o9");	/* still read for audits */
		CHECK_STR(ev.event_key, "UNKNOWN:idem:idem-1");
		event_done(&ev);
	}
}

static void
check_idem(const char *idem, int used)
{
	const char *body = "{\"type\":\"REFUND_STATUS_WEBHOOK\"}";
	struct event ev;
	char key[512];

	if (!CHECK(json_event(body, idem, &ev) == 0))
		return;
	if (used)
		(void)snprintf(key, sizeof(key),
		    "REFUND_STATUS_WEBHOOK:idem:%s", idem);
	else
		sha256_key("REFUND_STATUS_WEBHOOK", body, strlen(body), key,
		    sizeof(key));
	if (!CHECK_STR(ev.event_key, key))
		fprintf(stderr, "  idem key '%s'\n", idem == NULL ? "(null)" :
		    idem);
	event_done(&ev);
}

static void
test_idempotency_key_rules(void)
{
	char k[256];

	check_idem("L7wqfJ4Qubed3xXAyqvRgEUhJaGWFxFsyD4dVTF1qfM=", 1);
	check_idem("!~", 1);
	check_idem(NULL, 0);
	check_idem("", 0);
	check_idem("has space", 0);
	check_idem("tab\there", 0);
	check_idem("caf\xc3\xa9", 0);
	check_idem("del\x7f", 0);
	memset(k, 'a', sizeof(k));
	k[EVENT_IDEM_MAX] = '\0';
	check_idem(k, 1);		/* exactly the limit */
	k[EVENT_IDEM_MAX] = 'a';
	k[EVENT_IDEM_MAX + 1] = '\0';
	check_idem(k, 0);
	k[200] = '\0';
	check_idem(k, 0);
}

static void
test_payment_keys(void)
{
	struct event a, b;

	if (!CHECK(json_event("{\"type\":\"PAYMENT_FAILED_WEBHOOK\",\"data\":"
	    "{\"payment\":{\"cf_payment_id\":\"15\"}}}", NULL, &a) == 0))
		return;
	if (CHECK(json_event("{\"type\":\"PAYMENT_SUCCESS_WEBHOOK\",\"data\":"
	    "{\"payment\":{\"cf_payment_id\":15}}}", "k", &b) == 0)) {
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
		if (!CHECK(json_event(bodies[i], NULL, &ev) == 0))
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
	    "\"order_amount\":\"22.00\"}},\"event_time\":\"t\"}", NULL,
	    &ev) == 0)) {
		CHECK_STR(ev.event_key, "PAYMENT_LINK_EVENT:l1:EXPIRED:");
		CHECK_STR(ev.cf_payment_id, NULL);
		CHECK_STR(ev.order_id, "CFPay_1");
		CHECK_STR(ev.amount, "22.00");
		CHECK_STR(ev.currency, "INR");
		CHECK_STR(ev.event_time, "t");
		event_done(&ev);
	}
	if (CHECK(json_event(nolink, NULL, &ev) == 0)) {
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
	    "\"dispute\":{\"dispute_status\":\"OPEN\"},\"order_details\":"
	    "{\"order_id\":\"od1\"}},\"event_time\":\"2023-01-01\"}", "d1",
	    &ev) == 0)) {
		CHECK_STR(ev.order_id, "od1");
		CHECK_STR(ev.payment_status, NULL);
		CHECK_STR(ev.event_time, "2023-01-01");
		CHECK_STR(ev.event_key, "DISPUTE_CREATED:idem:d1");
		event_done(&ev);
	}
	if (CHECK(json_event("{\"type\":\"X\",\"data\":{\"order_id\":\"o2\","
	    "\"cf_payment_id\":12,\"payment\":{\"payment_status\":\"PENDING\","
	    "\"payment_amount\":5,\"payment_currency\":\"INR\"}}}", "x", &ev)
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
	    "\"order_id\":\"o\"}}}", "x", &ev) == 0)) {
		CHECK_STR(ev.order_id, "o");
		CHECK_STR(ev.payment_status, NULL);
		event_done(&ev);
	}
}

static int
form_event(const char *body, const char *idem, struct event *ev)
{
	struct form f;
	int rc = -1;

	memset(&f, 0, sizeof(f));
	memset(ev, 0, sizeof(*ev));
	if (CHECK(form_parse(body, strlen(body), &f) == FORM_OK))
		rc = event_from_form(&f, body, strlen(body), idem, ev);
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
	    "payment_currency=INR&event_time=t&signature=abc", NULL, &ev)
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
	if (CHECK(form_event(b, NULL, &ev) == 0)) {
		CHECK_STR(ev.cf_payment_id, NULL);
		CHECK_STR(ev.order_id, NULL);	/* holds a NUL byte */
		sha256_key(ev.type, b, strlen(b), key, sizeof(key));
		CHECK_STR(ev.event_key, key);
		event_done(&ev);
	}
	if (CHECK(form_event("type=PAYMENT_LINK_EVENT&link_id=l2&"
	    "link_status=CANCELLED&transaction_id=&order_amount=9.50&"
	    "link_currency=INR", NULL, &ev) == 0)) {
		CHECK_STR(ev.event_key, "PAYMENT_LINK_EVENT:l2:CANCELLED:");
		CHECK_STR(ev.amount, "9.50");
		CHECK_STR(ev.currency, "INR");
		event_done(&ev);
	}
	if (CHECK(form_event("orderId=1&signature=x", "abc", &ev) == 0)) {
		CHECK_STR(ev.type, "UNKNOWN");
		CHECK_STR(ev.event_key, "UNKNOWN:idem:abc");
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
		if (!CHECK(json_event(body, NULL, &ev) == 0))
			continue;
		(void)snprintf(key, sizeof(key), "PAYMENT_SUCCESS_WEBHOOK:%s",
		    cases[i].want);
		if (!CHECK_STR(ev.event_key, key))
			fprintf(stderr, "  id token %s\n", cases[i].token);
		CHECK_STR(ev.type, "PAYMENT_SUCCESS_WEBHOOK");
		CHECK_STR(ev.cf_payment_id, cases[i].want);
		CHECK_STR(ev.order_id, "o1");
		CHECK_STR(ev.payment_status, "SUCCESS");
		CHECK_STR(ev.amount, "170");
		event_done(&ev);
	}
	/* an escaped key is the same key for jansson and for the raw text */
	if (CHECK(json_event("{\"type\":\"PAYMENT_SUCCESS_WEBHOOK\",\"data\":"
	    "{\"payment\":{\"cf_payment\\u005fid\":12345678901234567890123}}}",
	    NULL, &ev) == 0)) {
		CHECK_STR(ev.cf_payment_id, "12345678901234567890123");
		event_done(&ev);
	}
	/* a numeric order_id keeps its token too */
	if (CHECK(json_event("{\"type\":\"PAYMENT_SUCCESS_WEBHOOK\",\"data\":"
	    "{\"order\":{\"order_id\":100.50},\"payment\":{\"cf_payment_id\":"
	    "\"8\"}}}", NULL, &ev) == 0)) {
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
	if (CHECK(json_event(b, NULL, &ev) == 0)) {
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
		if (!CHECK(json_event(json[i], NULL, &ev) == 0))
			continue;
		sha256_key(ev.type, json[i], strlen(json[i]), key, sizeof(key));
		CHECK_STR(ev.event_key, key);
		event_done(&ev);
	}
	for (i = 0; i < sizeof(absent) / sizeof(absent[0]); i++) {
		if (!CHECK(json_event(absent[i], NULL, &ev) == 0))
			continue;
		CHECK_STR(ev.event_key, "PAYMENT_LINK_EVENT:l:PAID:");
		event_done(&ev);
	}
	if (CHECK(form_event(form, NULL, &ev) == 0)) {
		sha256_key(ev.type, form, strlen(form), key, sizeof(key));
		CHECK_STR(ev.event_key, key);
		event_done(&ev);
	}
	if (CHECK(json_event("{\"type\":\"PAYMENT_LINK_EVENT\",\"data\":{"
	    "\"link_id\":\"l\",\"link_status\":\"PAID\",\"order\":{"
	    "\"transaction_id\":123456789012345678901}}}", NULL, &ev) == 0)) {
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
	if (CHECK(form_event(b, NULL, &ev) == 0)) {
		CHECK_STR(ev.cf_payment_id, NULL);
		CHECK_STR(ev.order_id, "o\xc3\xa9");
		CHECK_STR(ev.payment_status, NULL);	/* overlong NUL */
		sha256_key(ev.type, b, strlen(b), key, sizeof(key));
		CHECK_STR(ev.event_key, key);
		event_done(&ev);
	}
	b = "type=PAYMENT%ED%A0%80&cf_payment_id=1";
	if (CHECK(form_event(b, NULL, &ev) == 0)) {
		CHECK_STR(ev.type, "UNKNOWN");		/* a surrogate */
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
	if (CHECK(json_event("{\"type\":\"T\"}", "k", &ev) == 0)) {
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
	RUN(test_idempotency_key_rules);
	RUN(test_payment_keys);
	RUN(test_payment_without_id_is_generic);
	RUN(test_link_keys);
	RUN(test_other_types_best_effort);
	RUN(test_form_events);
	RUN(test_numeric_ids_keep_their_token);
	RUN(test_nul_in_one_string);
	RUN(test_link_unreadable_transaction);
	RUN(test_form_non_utf8);
	RUN(test_done_is_safe);
	return check_finish("test_event");
}
