/* fuzz_verify.c - libFuzzer target for verify.c (and form.c, secret.c).
 *
 * Input: "TIMESTAMP\nSIGNATURE\nBODY"; without two newlines the whole input
 * is the body and both headers are absent. A SIGNATURE of "*" is replaced by
 * the correct one for TIMESTAMP || BODY, so the fuzzer reaches the paths
 * after a match. Checks, on every input: an accepted JSON request obeys the
 * grammar of spec section 11 (10/13-digit timestamp, body an object); a
 * request we signed ourselves is accepted when the grammar allows it;
 * turning tolerance on never turns a rejection into an acceptance. Built
 * only by `make fuzz` (scripts/fuzz). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "form.h"
#include "num.h"
#include "secret.h"
#include "verify.h"

#define NOW_MS	INT64_C(1746427759733)

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct secrets *secrets;

static void
fail(void)
{
	__builtin_trap();
}

static const struct secrets *
get_secrets(void)
{
	static const char text[] = "cfhookd-TEST-ONLY-secret-0001\n"
	    "cfhookd-TEST-ONLY-secret-OLD-rotated\n";
	char err[128];

	if (secrets == NULL &&
	    secrets_parse(text, sizeof(text) - 1, "fuzz", &secrets, err,
	    sizeof(err)) != 0)
		abort();
	return secrets;
}

/* A copy of data[0..n) as a C string (NUL bytes end it early, as they
 * would in an HTTP header). */
static char *
dup_line(const uint8_t *data, size_t n)
{
	char *s = malloc(n + 1);

	if (s == NULL)
		abort();
	memcpy(s, data, n);
	s[n] = '\0';
	return s;
}

static int
json_grammar_ok(const char *ts, const char *body, size_t len)
{
	size_t i = 0;

	if (!num_is_timestamp(ts))
		return 0;
	while (i < len && (body[i] == ' ' || body[i] == '\t' ||
	    body[i] == '\r' || body[i] == '\n'))
		i++;
	return i < len && body[i] == '{';
}

static void
check_json(struct verify_request *r, int self_signed)
{
	enum verify_result off, on;
	size_t idx = 99;

	r->tolerance_s = 0;
	off = verify_json(get_secrets(), r, &idx);
	if (off == VERIFY_OK && (idx > 1 ||
	    !json_grammar_ok(r->timestamp, r->body, r->body_len)))
		fail();
	if (self_signed && json_grammar_ok(r->timestamp, r->body, r->body_len)
	    && off != VERIFY_OK)
		fail();
	r->tolerance_s = 300;
	on = verify_json(get_secrets(), r, &idx);
	if (on == VERIFY_OK && off != VERIFY_OK)
		fail();
	if (off == VERIFY_OK && on != VERIFY_OK && on != VERIFY_STALE)
		fail();
	(void)verify_result_name(on);
}

/* Spec section 11: a body that starts like JSON is never a form; with the
 * field scheme off only the headers can prove one. */
static void
check_form(struct verify_request *r)
{
	struct verify_form_info info;
	enum verify_result res;
	struct form f;
	size_t i = 0;
	int on;

	while (i < r->body_len && strchr(" \t\r\n", r->body[i]) != NULL &&
	    r->body[i] != '\0')
		i++;
	r->tolerance_s = 300;
	for (on = 0; on <= 1; on++) {
		res = verify_form(get_secrets(), r, on, &f, &info);
		if (res == VERIFY_OK && (info.secret_index > 1 ||
		    (!on && !info.by_header) ||
		    (!info.by_header && !info.by_field) ||
		    (i < r->body_len && (r->body[i] == '{' ||
		    r->body[i] == '['))))
			fail();
		(void)verify_result_name(res);
		form_done(&f);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct verify_request r = { NULL, NULL, NULL, 0, NOW_MS, 0 };
	const uint8_t *nl1, *nl2 = NULL;
	char *ts = NULL, *sig = NULL, b64[64];
	unsigned char mac[SECRET_MAC_LEN];
	int self_signed = 0;

	nl1 = memchr(data, '\n', size);
	if (nl1 != NULL)
		nl2 = memchr(nl1 + 1, '\n', size - (size_t)(nl1 + 1 - data));
	if (nl2 == NULL) {
		r.body = (const char *)data;
		r.body_len = size;
	} else {
		ts = dup_line(data, (size_t)(nl1 - data));
		sig = dup_line(nl1 + 1, (size_t)(nl2 - nl1 - 1));
		r.body = (const char *)nl2 + 1;
		r.body_len = size - (size_t)(nl2 + 1 - data);
		if (strcmp(sig, "*") == 0 &&
		    secrets_mac(get_secrets(), 0, ts, strlen(ts), r.body,
		    r.body_len, mac) == 0) {
			(void)EVP_EncodeBlock((unsigned char *)b64, mac,
			    SECRET_MAC_LEN);
			self_signed = 1;
		}
		r.timestamp = ts;
		r.signature = self_signed ? b64 : sig;
	}
	check_json(&r, self_signed);
	check_form(&r);
	free(ts);
	free(sig);
	return 0;
}
