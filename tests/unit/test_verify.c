/* test_verify.c - signature verification: every shared vector, plus cases
 * signed here with OpenSSL's one-shot HMAC() (rotation, timestamp grammar,
 * split-point forgery, freshness, the form scheme and its fallback). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "check.h"
#include "form.h"
#include "secret.h"
#include "verify.h"

#define VECTORS	"tests/vectors/cashfree-webhooks.json"
#define NOW_MS	INT64_C(1746427759733)
#define TS_NOW	"1746427759733"

/* Base64(HMAC-SHA256(secret, a || b)) into out (45 bytes), the test's own
 * way: concatenate, one-shot HMAC(), EVP_EncodeBlock(). */
static void
sign(const char *secret, const char *a, const char *b, size_t blen,
    char out[45])
{
	unsigned char mac[32];
	unsigned int n = 0;
	size_t alen = strlen(a);
	char *msg;

	out[0] = '\0';
	msg = malloc(alen + blen + 1);
	if (msg == NULL)
		return;
	memcpy(msg, a, alen);
	memcpy(msg + alen, b, blen);
	(void)HMAC(EVP_sha256(), secret, (int)strlen(secret),
	    (unsigned char *)msg, alen + blen, mac, &n);
	(void)EVP_EncodeBlock((unsigned char *)out, mac, 32);
	free(msg);
}

static struct secrets *
make_secrets(const char *text)
{
	struct secrets *s = NULL;
	char err[128];

	if (secrets_parse(text, strlen(text), "test", &s, err,
	    sizeof(err)) != 0)
		fprintf(stderr, "secrets_parse: %s\n", err);
	return s;
}

static enum verify_result
json_check(const struct secrets *s, const char *ts, const char *sig,
    const char *body, unsigned tolerance, int64_t now, size_t *idx)
{
	struct verify_request r = { ts, sig, body, strlen(body), now,
	    tolerance };

	return verify_json(s, &r, idx);
}

/* Form body with optional headers, the field scheme on or off; *info (if
 * not NULL) says how it verified. */
static enum verify_result
form_verify(const struct secrets *s, const char *ts, const char *sig,
    const char *body, size_t len, int field_on,
    struct verify_form_info *info)
{
	struct verify_request r = { ts, sig, body, len, NOW_MS, 0 };
	struct verify_form_info tmp;
	enum verify_result res;
	struct form f;

	res = verify_form(s, &r, field_on, &f, info != NULL ? info : &tmp);
	form_done(&f);
	return res;
}

/* The field scheme on (form_field_signature = on). */
static enum verify_result
form_check(const struct secrets *s, const char *ts, const char *sig,
    const char *body, size_t len, unsigned tolerance, int64_t now,
    size_t *idx)
{
	struct verify_request r = { ts, sig, body, len, now, tolerance };
	struct verify_form_info info;
	enum verify_result res;
	struct form f;

	res = verify_form(s, &r, 1, &f, &info);
	if (res == VERIFY_OK && idx != NULL)
		*idx = info.secret_index;
	form_done(&f);
	return res;
}

/* Exact reasons for some vectors, beyond accept/reject. */
static const struct {
	const char *name;
	enum verify_result want;
} vector_reasons[] = {
	{ "json_wrong_secret", VERIFY_MISMATCH },
	{ "json_tampered_body_one_byte", VERIFY_MISMATCH },
	{ "json_missing_signature_header", VERIFY_MISSING },
	{ "json_missing_timestamp_header", VERIFY_MISSING },
	{ "json_signature_over_body_without_timestamp", VERIFY_MISMATCH },
	{ "json_signature_hex_encoded", VERIFY_MISMATCH },
	{ "json_empty_signature_header", VERIFY_MISSING },
	{ "json_stale_timestamp_1h", VERIFY_STALE },
	{ "json_future_timestamp_1h", VERIFY_STALE },
	{ "json_signed_but_not_parseable", VERIFY_NOT_OBJECT },
	{ "form_link_tampered_value", VERIFY_MISMATCH },
	{ "form_link_missing_signature_field", VERIFY_MISSING },
	{ "form_link_wrong_secret", VERIFY_MISMATCH },
	{ "form_link_signature_over_keys_and_values", VERIFY_MISMATCH },
	{ "form_pg_v1_notify_legacy", VERIFY_MISMATCH },
};

static struct secrets *
vector_secrets(json_t *c)
{
	json_t *arr = json_object_get(c, "secrets"), *v;
	char text[1024];
	size_t i, o = 0;

	text[0] = '\0';
	if (json_is_array(arr)) {
		json_array_foreach(arr, i, v)
			o += (size_t)snprintf(text + o, sizeof(text) - o,
			    "%s\n", json_string_value(v));
	} else {
		(void)snprintf(text, sizeof(text), "%s",
		    json_string_value(json_object_get(c, "secret")));
	}
	return make_secrets(text);
}

static enum verify_result
run_vector(json_t *c, const struct secrets *s, unsigned tolerance)
{
	json_t *h = json_object_get(c, "headers");
	json_t *body = json_object_get(c, "body");
	const char *ct = json_string_value(json_object_get(c, "content_type"));
	struct verify_request r;
	size_t idx = 99;

	r.timestamp = json_string_value(json_object_get(h,
	    "x-webhook-timestamp"));
	r.signature = json_string_value(json_object_get(h,
	    "x-webhook-signature"));
	r.body = json_string_value(body);
	r.body_len = json_string_length(body);
	r.now_ms = json_integer_value(json_object_get(c, "now_ms"));
	r.tolerance_s = tolerance;
	if (strcmp(ct, "application/json") == 0)
		return verify_json(s, &r, &idx);
	return form_check(s, r.timestamp, r.signature, r.body, r.body_len,
	    tolerance, r.now_ms, &idx);
}

/* A vector that needs form_field_signature = on is refused with it off. */
static void
check_vector_field_off(json_t *c, const struct secrets *s)
{
	json_t *req = json_object_get(json_object_get(c, "requires"),
	    "form_field_signature");
	json_t *h = json_object_get(c, "headers");
	json_t *body = json_object_get(c, "body");
	enum verify_result res;

	if (!json_is_string(req) || strcmp(json_string_value(req), "on") != 0)
		return;
	res = form_verify(s, json_string_value(json_object_get(h,
	    "x-webhook-timestamp")), json_string_value(json_object_get(h,
	    "x-webhook-signature")), json_string_value(body),
	    json_string_length(body), 0, NULL);
	if (!CHECK(res != VERIFY_OK))
		fprintf(stderr, "  vector %s accepted with the field scheme "
		    "off\n", json_string_value(json_object_get(c, "name")));
}

static void
check_vector(json_t *c)
{
	const char *name = json_string_value(json_object_get(c, "name"));
	const char *expect = json_string_value(json_object_get(c, "expect"));
	const char *off = json_string_value(json_object_get(c,
	    "expect_if_tolerance_disabled"));
	struct secrets *s = vector_secrets(c);
	enum verify_result res;
	size_t i;

	if (!CHECK(s != NULL && name != NULL && expect != NULL))
		goto out;
	/* "optional" cases (PG v1) expect reject: not implemented. */
	res = run_vector(c, s, 300);
	if (!CHECK((res == VERIFY_OK) == (strcmp(expect, "accept") == 0)))
		fprintf(stderr, "  vector %s: %s\n", name,
		    verify_result_name(res));
	for (i = 0; i < sizeof(vector_reasons) / sizeof(vector_reasons[0]);
	    i++) {
		if (strcmp(vector_reasons[i].name, name) == 0 &&
		    !CHECK_STR(verify_result_name(res),
		    verify_result_name(vector_reasons[i].want)))
			fprintf(stderr, "  vector %s\n", name);
	}
	res = run_vector(c, s, 0);
	if (off == NULL)
		off = expect;
	if (!CHECK((res == VERIFY_OK) == (strcmp(off, "accept") == 0)))
		fprintf(stderr, "  vector %s (tolerance 0): %s\n", name,
		    verify_result_name(res));
	check_vector_field_off(c, s);
out:
	secrets_free(s);
}

static void
test_vectors(void)
{
	json_t *root, *c;
	json_error_t jerr;
	size_t i, n = 0;

	root = json_load_file(VECTORS, 0, &jerr);
	if (!CHECK(root != NULL && json_is_array(root))) {
		fprintf(stderr, "  %s: %s\n", VECTORS, jerr.text);
		return;
	}
	json_array_foreach(root, i, c) {
		check_vector(c);
		n++;
	}
	CHECK(n >= 30);
	json_decref(root);
}

static void
test_rotation(void)
{
	static const char body[] = "{\"type\":\"PAYMENT_SUCCESS_WEBHOOK\"}";
	struct secrets *s = make_secrets("new-secret\nold-secret\n");
	char sig[45];
	size_t idx = 99;

	if (!CHECK(s != NULL))
		return;
	sign("old-secret", TS_NOW, body, strlen(body), sig);
	CHECK_INT(json_check(s, TS_NOW, sig, body, 0, NOW_MS, &idx), VERIFY_OK);
	CHECK_INT(idx, 1);
	sign("new-secret", TS_NOW, body, strlen(body), sig);
	CHECK_INT(json_check(s, TS_NOW, sig, body, 0, NOW_MS, &idx), VERIFY_OK);
	CHECK_INT(idx, 0);
	sign("third-secret", TS_NOW, body, strlen(body), sig);
	idx = 99;
	CHECK_INT(json_check(s, TS_NOW, sig, body, 0, NOW_MS, &idx),
	    VERIFY_MISMATCH);
	CHECK_INT(idx, 99);	/* written only when a secret matched */
	/* NULL index pointer is allowed. */
	sign("old-secret", TS_NOW, body, strlen(body), sig);
	CHECK_INT(json_check(s, TS_NOW, sig, body, 0, NOW_MS, NULL), VERIFY_OK);
	secrets_free(s);
}

static void
test_missing_and_grammar(void)
{
	static const char body[] = "{}";
	static const char *bad_ts[] = {
		"174642775973", "17464277597330", " 1746427759733",
		"1746427759733 ", "+746427759733", "-746427759733",
		"1746427759.73", "174642775e733", "0x1746427759",
		"17464277597", "１746427759733",
	};
	struct secrets *s = make_secrets("k");
	char sig[45];
	size_t i;

	if (!CHECK(s != NULL))
		return;
	sign("k", TS_NOW, body, 2, sig);
	CHECK_INT(json_check(s, NULL, sig, body, 0, NOW_MS, NULL),
	    VERIFY_MISSING);
	CHECK_INT(json_check(s, "", sig, body, 0, NOW_MS, NULL),
	    VERIFY_MISSING);
	CHECK_INT(json_check(s, TS_NOW, NULL, body, 0, NOW_MS, NULL),
	    VERIFY_MISSING);
	CHECK_INT(json_check(s, TS_NOW, "", body, 0, NOW_MS, NULL),
	    VERIFY_MISSING);
	for (i = 0; i < sizeof(bad_ts) / sizeof(bad_ts[0]); i++) {
		/* Even when the signature is right for that text. */
		sign("k", bad_ts[i], body, 2, sig);
		if (!CHECK_INT(json_check(s, bad_ts[i], sig, body, 0, NOW_MS,
		    NULL), VERIFY_BAD_TIMESTAMP))
			fprintf(stderr, "  timestamp \"%s\"\n", bad_ts[i]);
	}
	secrets_free(s);
}

static void
test_ten_digit_timestamp(void)
{
	static const char body[] = "{\"a\":1}";
	struct secrets *s = make_secrets("k");
	char sig[45];

	if (!CHECK(s != NULL))
		return;
	sign("k", "1746427757", body, strlen(body), sig);
	CHECK_INT(json_check(s, "1746427757", sig, body, 300, NOW_MS, NULL),
	    VERIFY_OK);
	CHECK_INT(json_check(s, "1746427757", sig, body, 0, NOW_MS, NULL),
	    VERIFY_OK);
	/* Read as seconds: 400 s old is stale with a 300 s window. */
	sign("k", "1746427359", body, strlen(body), sig);
	CHECK_INT(json_check(s, "1746427359", sig, body, 300, NOW_MS, NULL),
	    VERIFY_STALE);
	secrets_free(s);
}

static void
test_split_point_forgery(void)
{
	static const char body[] = "{\"type\":\"PAYMENT_SUCCESS_WEBHOOK\"}";
	struct secrets *s = make_secrets("k");
	char sig[45], moved[64];
	size_t idx = 99;

	if (!CHECK(s != NULL))
		return;
	/* Genuine: ts 1746427757733, body {...}. */
	sign("k", "1746427757733", body, strlen(body), sig);
	CHECK_INT(json_check(s, "1746427757733", sig, body, 0, NOW_MS, NULL),
	    VERIFY_OK);
	/* Forged: the same signature over ts 1746427757 + body "733{...}". */
	(void)snprintf(moved, sizeof(moved), "733%s", body);
	CHECK_INT(json_check(s, "1746427757", sig, moved, 0, NOW_MS, &idx),
	    VERIFY_NOT_OBJECT);
	CHECK_INT(idx, 99);
	/* Same for a form body with a leading digit under the header scheme. */
	sign("k", "1746427757733", "a=1&b=2", 7, sig);
	CHECK_INT(form_check(s, "1746427757733", sig, "a=1&b=2", 7, 0, NOW_MS,
	    NULL), VERIFY_OK);
	CHECK_INT(form_check(s, "1746427757", sig, "733a=1&b=2", 10, 0, NOW_MS,
	    NULL), VERIFY_NOT_OBJECT);
	sign("k", "1746427757", "733a=1", 6, sig);
	CHECK_INT(form_check(s, "1746427757", sig, "733a=1", 6, 0, NOW_MS,
	    NULL), VERIFY_NOT_OBJECT);
	secrets_free(s);
}

static void
test_body_shape(void)
{
	static const char *ok[] = {
		"{}", " {}", "\t\r\n {\"a\":1}", "{not json at all",
	};
	static const char *not_object[] = {
		"", " ", "[]", "\"{\"", "1", "null", "\v{}", "\f{}",
		"\xef\xbb\xbf{}", "x{}",
	};
	struct secrets *s = make_secrets("k");
	char sig[45];
	size_t i;

	if (!CHECK(s != NULL))
		return;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		sign("k", TS_NOW, ok[i], strlen(ok[i]), sig);
		if (!CHECK_INT(json_check(s, TS_NOW, sig, ok[i], 0, NOW_MS,
		    NULL), VERIFY_OK))
			fprintf(stderr, "  body \"%s\"\n", ok[i]);
	}
	for (i = 0; i < sizeof(not_object) / sizeof(not_object[0]); i++) {
		sign("k", TS_NOW, not_object[i], strlen(not_object[i]), sig);
		if (!CHECK_INT(json_check(s, TS_NOW, sig, not_object[i], 0,
		    NOW_MS, NULL), VERIFY_NOT_OBJECT))
			fprintf(stderr, "  body \"%s\"\n", not_object[i]);
	}
	secrets_free(s);
}

static void
test_signature_encodings(void)
{
	static const char body[] = "{\"n\":2}";
	struct secrets *s = make_secrets("k");
	unsigned char mac[32];
	unsigned int n = 0;
	char sig[45], bad[80], msg[64];
	size_t i;

	if (!CHECK(s != NULL))
		return;
	sign("k", TS_NOW, body, strlen(body), sig);
	CHECK_INT(strlen(sig), 44);
	CHECK_INT(json_check(s, TS_NOW, sig, body, 0, NOW_MS, NULL), VERIFY_OK);
	/* 43 characters (padding dropped), 45 (extra '='), trailing blank. */
	(void)snprintf(bad, sizeof(bad), "%.43s", sig);
	CHECK_INT(json_check(s, TS_NOW, bad, body, 0, NOW_MS, NULL),
	    VERIFY_MISMATCH);
	(void)snprintf(bad, sizeof(bad), "%s=", sig);
	CHECK_INT(json_check(s, TS_NOW, bad, body, 0, NOW_MS, NULL),
	    VERIFY_MISMATCH);
	(void)snprintf(bad, sizeof(bad), "%s ", sig);
	CHECK_INT(json_check(s, TS_NOW, bad, body, 0, NOW_MS, NULL),
	    VERIFY_MISMATCH);
	/* Truncated to 16 bytes of MAC, re-encoded. */
	(void)snprintf(msg, sizeof(msg), "%s%s", TS_NOW, body);
	(void)HMAC(EVP_sha256(), "k", 1, (unsigned char *)msg, strlen(msg),
	    mac, &n);
	(void)EVP_EncodeBlock((unsigned char *)bad, mac, 16);
	CHECK_INT(json_check(s, TS_NOW, bad, body, 0, NOW_MS, NULL),
	    VERIFY_MISMATCH);
	/* Hex of the right MAC. */
	for (i = 0; i < 32; i++)
		(void)snprintf(bad + 2 * i, 3, "%02x", mac[i]);
	CHECK_INT(json_check(s, TS_NOW, bad, body, 0, NOW_MS, NULL),
	    VERIFY_MISMATCH);
	/* Body-only HMAC. */
	sign("k", "", body, strlen(body), bad);
	CHECK_INT(json_check(s, TS_NOW, bad, body, 0, NOW_MS, NULL),
	    VERIFY_MISMATCH);
	/* One character flipped at each position. */
	for (i = 0; i < 44; i++) {
		memcpy(bad, sig, 45);
		bad[i] = bad[i] == 'A' ? 'B' : 'A';
		CHECK_INT(json_check(s, TS_NOW, bad, body, 0, NOW_MS, NULL),
		    VERIFY_MISMATCH);
	}
	secrets_free(s);
}

static void
test_tolerance(void)
{
	static const char body[] = "{}";
	static const struct {
		int64_t offset_ms;
		unsigned tol;
		enum verify_result want;
	} cases[] = {
		{ 0, 300, VERIFY_OK }, { -299999, 300, VERIFY_OK },
		{ -300000, 300, VERIFY_OK }, { -300001, 300, VERIFY_STALE },
		{ 300000, 300, VERIFY_OK }, { 300001, 300, VERIFY_STALE },
		{ -3600000, 0, VERIFY_OK }, { 3600000, 0, VERIFY_OK },
		{ -3600000, 1, VERIFY_STALE },
	};
	struct secrets *s = make_secrets("other\nk");
	char sig[45], ts[32];
	size_t i, idx;

	if (!CHECK(s != NULL))
		return;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* The clock moves; the signed timestamp stays. */
		sign("k", TS_NOW, body, 2, sig);
		idx = 99;
		if (!CHECK_INT(json_check(s, TS_NOW, sig, body, cases[i].tol,
		    NOW_MS - cases[i].offset_ms, &idx), cases[i].want))
			fprintf(stderr, "  case %zu\n", i);
		CHECK_INT(idx, 1);
	}
	/* Stale only after a match: a bad signature stays a mismatch. */
	CHECK_INT(json_check(s, TS_NOW, sig, "{ }", 300, NOW_MS + 3600000,
	    NULL), VERIFY_MISMATCH);
	/* Extreme clocks do not overflow. */
	CHECK_INT(json_check(s, TS_NOW, sig, body, 300, INT64_MAX, NULL),
	    VERIFY_STALE);
	CHECK_INT(json_check(s, TS_NOW, sig, body, 300, INT64_MIN, NULL),
	    VERIFY_STALE);
	CHECK_INT(json_check(s, TS_NOW, sig, body, UINT32_MAX, 0, NULL),
	    VERIFY_OK);
	(void)snprintf(ts, sizeof(ts), "9999999999999");
	sign("k", ts, body, 2, sig);
	CHECK_INT(json_check(s, ts, sig, body, 300, INT64_MIN, NULL),
	    VERIFY_STALE);
	secrets_free(s);
}

/* A form body signed under spec 5.2 with `secret`: fields + signature. */
static void
signed_form(const char *secret, const char *fields, char *out, size_t n)
{
	struct form f;
	char sig[45], enc[140];
	char *msg;
	size_t len = 0, i, o = 0;

	out[0] = '\0';
	if (form_parse(fields, strlen(fields), &f) != FORM_OK)
		return;
	msg = form_signing_string(&f, &len);
	form_done(&f);
	if (msg == NULL)
		return;
	sign(secret, "", msg, len, sig);
	free(msg);
	/* Percent-encode + / = as Cashfree must. */
	for (i = 0; sig[i] != '\0'; i++) {
		if (sig[i] == '+' || sig[i] == '/' || sig[i] == '=')
			o += (size_t)snprintf(enc + o, sizeof(enc) - o,
			    "%%%02X", (unsigned char)sig[i]);
		else
			enc[o++] = sig[i];
	}
	enc[o] = '\0';
	(void)snprintf(out, n, "%s&signature=%s", fields, enc);
}

static void
test_form_field_scheme(void)
{
	static const char fields[] =
	    "type=PAYMENT_LINK_EVENT&link_id=L1&link_status=PAID"
	    "&order_id=CFPay_x&transaction_id=77&upi=&customer_name=A+B";
	struct secrets *s = make_secrets("k1\nk2");
	char body[1024], tampered[1024], *p;
	size_t idx = 99;

	if (!CHECK(s != NULL))
		return;
	signed_form("k2", fields, body, sizeof(body));
	CHECK_INT(form_check(s, NULL, NULL, body, strlen(body), 0, NOW_MS,
	    &idx), VERIFY_OK);
	CHECK_INT(idx, 1);
	/* No timestamp in this scheme: tolerance does not apply. */
	CHECK_INT(form_check(s, NULL, NULL, body, strlen(body), 300,
	    NOW_MS + INT64_C(86400000) * 365, NULL), VERIFY_OK);
	/* A changed value, a raw '+' in the signature (decodes to ' '). */
	memcpy(tampered, body, sizeof(body));
	p = strstr(tampered, "L1");
	if (CHECK(p != NULL))
		p[1] = '2';
	CHECK_INT(form_check(s, NULL, NULL, tampered, strlen(tampered), 0,
	    NOW_MS, NULL), VERIFY_MISMATCH);
	/* Percent-encoded values are signed decoded. */
	signed_form("k1", "b=%3E%3E%3F&a=x%2By", body, sizeof(body));
	CHECK_INT(form_check(s, NULL, NULL, body, strlen(body), 0, NOW_MS,
	    &idx), VERIFY_OK);
	CHECK_INT(idx, 0);
	/* A duplicated signature field, an empty one, none. */
	CHECK_INT(form_check(s, NULL, NULL, "a=1&signature=x&signature=x", 27,
	    0, NOW_MS, NULL), VERIFY_FORM_DUPLICATE);
	CHECK_INT(form_check(s, NULL, NULL, "a=1&signature=", 14, 0, NOW_MS,
	    NULL), VERIFY_MISSING);
	CHECK_INT(form_check(s, NULL, NULL, fields, strlen(fields), 0, NOW_MS,
	    NULL), VERIFY_MISSING);
	secrets_free(s);
}

static void
test_form_raw_plus_in_signature(void)
{
	struct secrets *s = make_secrets("k");
	char body[256], sig[45], *msg = NULL;
	struct form f;
	size_t len = 0;
	int i, tried = 0;

	if (!CHECK(s != NULL))
		return;
	/* Find a value whose signature holds a '+', then send it raw. */
	for (i = 0; i < 200 && tried == 0; i++) {
		(void)snprintf(body, sizeof(body), "v=%d", i);
		sign("k", "", body + 2, strlen(body + 2), sig);
		if (strchr(sig, '+') == NULL)
			continue;
		tried = 1;
		(void)snprintf(body, sizeof(body), "v=%d&signature=%s", i, sig);
		CHECK_INT(form_check(s, NULL, NULL, body, strlen(body), 0,
		    NOW_MS, NULL), VERIFY_MISMATCH);
	}
	CHECK(tried);
	/* The signing string is what the test signed. */
	CHECK_INT(form_parse("v=1", 3, &f), FORM_OK);
	msg = form_signing_string(&f, &len);
	CHECK(msg != NULL && len == 1 && msg[0] == '1');
	free(msg);
	form_done(&f);
	secrets_free(s);
}

/* A signed form of 300 fields (more than the old cap of 256) verifies: a
 * form Cashfree signed is never refused for its size alone. */
static void
test_form_many_fields(void)
{
	static char fields[300 * 16], body[300 * 16 + 128];
	struct secrets *s = make_secrets("k");
	size_t i, o = 0;

	if (!CHECK(s != NULL))
		return;
	for (i = 0; i < 300; i++)
		o += (size_t)snprintf(fields + o, sizeof(fields) - o,
		    "%sf%03zu=v%zu", i > 0 ? "&" : "", i, i);
	signed_form("k", fields, body, sizeof(body));
	CHECK(strlen(body) > o);
	CHECK_INT(form_check(s, NULL, NULL, body, strlen(body), 0, NOW_MS,
	    NULL), VERIFY_OK);
	secrets_free(s);
}

static void
test_form_header_fallback(void)
{
	static const char body[] = "link_id=L1&link_status=PAID";
	struct secrets *s = make_secrets("k");
	char sig[45], withfield[256];
	size_t idx = 99, blen = strlen(body);

	if (!CHECK(s != NULL))
		return;
	sign("k", TS_NOW, body, blen, sig);
	/* No signature field; headers verify over the raw body. */
	CHECK_INT(form_check(s, TS_NOW, sig, body, blen, 0, NOW_MS, &idx),
	    VERIFY_OK);
	CHECK_INT(idx, 0);
	CHECK_INT(form_check(s, TS_NOW, sig, body, blen, 300,
	    NOW_MS + 3600000, NULL), VERIFY_STALE);
	CHECK_INT(form_check(s, "17464277597", sig, body, blen, 0, NOW_MS,
	    NULL), VERIFY_BAD_TIMESTAMP);
	CHECK_INT(form_check(s, TS_NOW, NULL, body, blen, 0, NOW_MS, NULL),
	    VERIFY_MISSING);
	CHECK_INT(form_check(s, TS_NOW, sig, "link_id=L2&link_status=PAID",
	    blen, 0, NOW_MS, NULL), VERIFY_MISMATCH);
	/* A wrong signature field does not stop the header scheme. */
	(void)snprintf(withfield, sizeof(withfield),
	    "%s&signature=%s%%3D", body,
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
	sign("k", TS_NOW, withfield, strlen(withfield), sig);
	CHECK_INT(form_check(s, TS_NOW, sig, withfield, strlen(withfield), 0,
	    NOW_MS, NULL), VERIFY_OK);
	/* Field mismatched and headers fail: the header reason wins ... */
	CHECK_INT(form_check(s, "1746427759", sig, withfield,
	    strlen(withfield), 0, NOW_MS, NULL), VERIFY_MISMATCH);
	CHECK_INT(form_check(s, "x", sig, withfield, strlen(withfield), 0,
	    NOW_MS, NULL), VERIFY_BAD_TIMESTAMP);
	/* ... unless a header is merely absent: then the field's mismatch. */
	CHECK_INT(form_check(s, NULL, sig, withfield, strlen(withfield), 0,
	    NOW_MS, NULL), VERIFY_MISMATCH);
	CHECK_INT(form_check(s, TS_NOW, "", withfield, strlen(withfield), 0,
	    NOW_MS, NULL), VERIFY_MISMATCH);
	/* Neither a field nor headers. */
	CHECK_INT(form_check(s, NULL, NULL, body, blen, 0, NOW_MS, NULL),
	    VERIFY_MISSING);
	CHECK_INT(form_check(s, "", "", body, blen, 0, NOW_MS, NULL),
	    VERIFY_MISSING);
	secrets_free(s);
}

/* Spec section 11: the signed bytes decide the format. A JSON body, signed
 * with the header scheme, sent with a form Content-Type is refused, even
 * though the headers verify: read as a form its own strings would become
 * fields. */
static void
test_format_follows_signed_bytes(void)
{
	static const char *bodies[] = {
		"{\"type\":\"PAYMENT_SUCCESS_WEBHOOK\",\"data\":{\"customer_details\""
		    ":{\"customer_name\":\"x&type=PAYMENT_SUCCESS_WEBHOOK&"
		    "cf_payment_id=999&order_id=victim\"}}}",
		" \t\r\n{\"a\":\"b=c\"}",
		"[{\"a\":1}]",
		"\n[1]",
	};
	struct secrets *s = make_secrets("k");
	char sig[45];
	size_t i;

	if (!CHECK(s != NULL))
		return;
	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		sign("k", TS_NOW, bodies[i], strlen(bodies[i]), sig);
		CHECK_INT(form_verify(s, TS_NOW, sig, bodies[i],
		    strlen(bodies[i]), 0, NULL), VERIFY_FORMAT);
		CHECK_INT(form_verify(s, TS_NOW, sig, bodies[i],
		    strlen(bodies[i]), 1, NULL), VERIFY_FORMAT);
	}
	/* The same bytes as JSON verify (the first one is a JSON object). */
	sign("k", TS_NOW, bodies[0], strlen(bodies[0]), sig);
	CHECK_INT(json_check(s, TS_NOW, sig, bodies[0], 0, NOW_MS, NULL),
	    VERIFY_OK);
	/* A form whose value holds '{' later on is still a form. */
	sign("k", TS_NOW, "a={b}", 5, sig);
	CHECK_INT(form_verify(s, TS_NOW, sig, "a={b}", 5, 0, NULL), VERIFY_OK);
	secrets_free(s);
}

/* Spec section 11: the signature field alone proves a form only with
 * form_field_signature = on; how it verified is reported, with the SHA-256
 * of the signing string, which every re-cut of one form shares. */
static void
test_form_field_scheme_switch(void)
{
	static const char fields[] = "type=PAYMENT_LINK_EVENT&link_id=L1&"
	    "link_purpose=Pay&link_status=PARTIALLY_PAID&transaction_id=77";
	static const char recut[] = "type=PAYMENT_LINK_EVENT&link_id=L1&"
	    "link_purpose=PayPARTIALLY_&link_status=PAID&transaction_id=77";
	struct verify_form_info a, b;
	struct secrets *s = make_secrets("k");
	/* body2 is body plus a prefix: room for both, or -O1 builds refuse
	 * the snprintf as a possible truncation. */
	char body[1024], body2[1024 + 64], sig[45], *p;

	if (!CHECK(s != NULL))
		return;
	signed_form("k", fields, body, sizeof(body));
	CHECK_INT(form_verify(s, NULL, NULL, body, strlen(body), 0, NULL),
	    VERIFY_FIELD_SCHEME_OFF);
	CHECK_INT(form_verify(s, NULL, NULL, body, strlen(body), 1, &a),
	    VERIFY_OK);
	CHECK(a.by_field && !a.by_header);
	/* The re-cut keeps the signature: it verifies, with the same
	 * signing-string digest (the store then calls it a duplicate). */
	p = strstr(body, "&signature=");
	if (!CHECK(p != NULL))
		goto out;
	(void)snprintf(body2, sizeof(body2), "%s%s", recut, p);
	CHECK_INT(form_verify(s, NULL, NULL, body2, strlen(body2), 1, &b),
	    VERIFY_OK);
	CHECK(memcmp(a.signing_digest, b.signing_digest,
	    VERIFY_DIGEST_LEN) == 0);
	/* An added blank field changes nothing in the signing string. */
	(void)snprintf(body2, sizeof(body2), "zz=&%s", body);
	CHECK_INT(form_verify(s, NULL, NULL, body2, strlen(body2), 1, &b),
	    VERIFY_OK);
	CHECK(memcmp(a.signing_digest, b.signing_digest,
	    VERIFY_DIGEST_LEN) == 0);
	/* Another form has another digest. */
	signed_form("k", "type=X&a=1", body2, sizeof(body2));
	CHECK_INT(form_verify(s, NULL, NULL, body2, strlen(body2), 1, &b),
	    VERIFY_OK);
	CHECK(memcmp(a.signing_digest, b.signing_digest,
	    VERIFY_DIGEST_LEN) != 0);
	/* Headers and field both verify: accepted with the switch off too,
	 * and the digest is still reported. */
	sign("k", TS_NOW, body, strlen(body), sig);
	CHECK_INT(form_verify(s, TS_NOW, sig, body, strlen(body), 0, &b),
	    VERIFY_OK);
	CHECK(b.by_header && b.by_field);
	CHECK(memcmp(a.signing_digest, b.signing_digest,
	    VERIFY_DIGEST_LEN) == 0);
	/* Headers alone: no field, no digest. */
	sign("k", TS_NOW, fields, strlen(fields), sig);
	CHECK_INT(form_verify(s, TS_NOW, sig, fields, strlen(fields), 0, &b),
	    VERIFY_OK);
	CHECK(b.by_header && !b.by_field);
out:
	secrets_free(s);
}

static void
test_result_names(void)
{
	CHECK_STR(verify_result_name(VERIFY_OK), "ok");
	CHECK_STR(verify_result_name(VERIFY_MISSING), "missing");
	CHECK_STR(verify_result_name(VERIFY_BAD_TIMESTAMP), "bad_timestamp");
	CHECK_STR(verify_result_name(VERIFY_NOT_OBJECT), "not_object");
	CHECK_STR(verify_result_name(VERIFY_MISMATCH), "mismatch");
	CHECK_STR(verify_result_name(VERIFY_STALE), "stale");
	CHECK_STR(verify_result_name(VERIFY_FORM_DUPLICATE), "form_duplicate");
	CHECK_STR(verify_result_name(VERIFY_FORMAT), "format_mismatch");
	CHECK_STR(verify_result_name(VERIFY_FIELD_SCHEME_OFF),
	    "field_scheme_off");
	CHECK_STR(verify_result_name(VERIFY_FIELDS), "form_fields");
	CHECK_STR(verify_result_name(VERIFY_INTERNAL), "internal");
}

int
main(void)
{
	RUN(test_vectors);
	RUN(test_rotation);
	RUN(test_missing_and_grammar);
	RUN(test_ten_digit_timestamp);
	RUN(test_split_point_forgery);
	RUN(test_body_shape);
	RUN(test_signature_encodings);
	RUN(test_tolerance);
	RUN(test_form_field_scheme);
	RUN(test_form_raw_plus_in_signature);
	RUN(test_form_many_fields);
	RUN(test_form_header_fallback);
	RUN(test_format_follows_signed_bytes);
	RUN(test_form_field_scheme_switch);
	RUN(test_result_names);
	return check_finish("test_verify");
}
