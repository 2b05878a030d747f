/* verify.c - is this request signed by Cashfree?  Spec sections 2, 5.2, 11.
 *
 * Pure: no I/O, no logging, no clock (now_ms arrives in the request). Reads
 * the raw bytes exactly as received; never re-serialises, trims or parses a
 * body before checking it. A signature is accepted only as the standard
 * Base64 (44 characters) of the full 32-byte HMAC-SHA256 of the signed
 * message: no hex, no truncation, no MAC of the body alone. Comparison is a
 * length check followed by CRYPTO_memcmp() (constant time). The signed bytes,
 * never the unsigned Content-Type, decide how a body is read: a "form" that
 * starts like JSON is refused. The form `signature` field scheme is weak
 * (bytes move between values) and counts only when the operator allows it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "form.h"
#include "num.h"
#include "verify.h"

#define SIG_B64_LEN	44	/* Base64 of 32 bytes, with '=' padding */

enum body_rule {
	BODY_JSON,		/* first non-blank byte must be '{' */
	BODY_FORM		/* must not start with a digit */
};

/* Does any secret give `sig` for a || b?  VERIFY_OK (with *idx),
 * VERIFY_MISMATCH, or VERIFY_INTERNAL when OpenSSL fails. */
static enum verify_result
match_any(const struct secrets *s, const void *a, size_t alen, const void *b,
    size_t blen, const char *sig, size_t siglen, size_t *idx)
{
	unsigned char mac[SECRET_MAC_LEN];
	unsigned char b64[SIG_B64_LEN + 1];
	enum verify_result r = VERIFY_MISMATCH;
	size_t i, n = secrets_count(s);

	/* The length is public (always 44): checking it first leaks nothing. */
	if (siglen != SIG_B64_LEN)
		return VERIFY_MISMATCH;
	for (i = 0; i < n; i++) {
		if (secrets_mac(s, i, a, alen, b, blen, mac) == -1) {
			r = VERIFY_INTERNAL;
			break;
		}
		if (EVP_EncodeBlock(b64, mac, SECRET_MAC_LEN) != SIG_B64_LEN) {
			r = VERIFY_INTERNAL;
			break;
		}
		if (CRYPTO_memcmp(b64, sig, SIG_B64_LEN) == 0) {
			*idx = i;
			r = VERIFY_OK;
			break;
		}
	}
	/* The expected MAC of an attacker's message is a forgery: wipe it. */
	OPENSSL_cleanse(mac, sizeof(mac));
	OPENSSL_cleanse(b64, sizeof(b64));
	return r;
}

static int
is_empty(const char *s)
{
	return s == NULL || s[0] == '\0';
}

/* Index of the first byte that is not JSON whitespace, or len. */
static size_t
first_byte(const char *body, size_t len)
{
	size_t i = 0;

	while (i < len && (body[i] == ' ' || body[i] == '\t' ||
	    body[i] == '\r' || body[i] == '\n'))
		i++;
	return i;
}

/* Spec section 11, split-point forgery: the signed message is ts || body with
 * no separator, so digits could move between a 13-digit timestamp and the
 * body. A JSON body must be an object; a form body must not start with a
 * digit. */
static int
body_allowed(const char *body, size_t len, enum body_rule rule)
{
	size_t i = first_byte(body, len);

	if (rule == BODY_FORM)
		return len == 0 || body[0] < '0' || body[0] > '9';
	return i < len && body[i] == '{';
}

/* |now_ms - ts| > tolerance, without signed overflow for any now_ms. */
static int
is_stale(const struct verify_request *r)
{
	int64_t ts;
	uint64_t d;

	if (r->tolerance_s == 0)
		return 0;
	ts = num_timestamp_ms(r->timestamp);
	if (r->now_ms >= ts)
		d = (uint64_t)r->now_ms - (uint64_t)ts;
	else
		d = (uint64_t)ts - (uint64_t)r->now_ms;
	return d > (uint64_t)r->tolerance_s * 1000u;
}

/* The header scheme of spec section 2 with the grammar of section 11. */
static enum verify_result
header_scheme(const struct secrets *s, const struct verify_request *r,
    enum body_rule rule, size_t *idx)
{
	enum verify_result res;
	size_t i = 0;

	if (is_empty(r->signature) || is_empty(r->timestamp))
		return VERIFY_MISSING;
	if (!num_is_timestamp(r->timestamp))
		return VERIFY_BAD_TIMESTAMP;
	if (!body_allowed(r->body, r->body_len, rule))
		return VERIFY_NOT_OBJECT;
	res = match_any(s, r->timestamp, strlen(r->timestamp), r->body,
	    r->body_len, r->signature, strlen(r->signature), &i);
	if (res != VERIFY_OK)
		return res;
	*idx = i;
	/* Freshness only after a match, so "stale" always means "signed". */
	return is_stale(r) ? VERIFY_STALE : VERIFY_OK;
}

enum verify_result
verify_json(const struct secrets *s, const struct verify_request *r,
    size_t *secret_index)
{
	size_t i = 0;
	enum verify_result res;

	res = header_scheme(s, r, BODY_JSON, &i);
	if ((res == VERIFY_OK || res == VERIFY_STALE) && secret_index != NULL)
		*secret_index = i;
	return res;
}

/* Spec section 5.2: the `signature` field over the sorted values. Returns
 * VERIFY_MISSING when the form has no (or an empty) signature field. The
 * SHA-256 of the signing string goes to digest whatever the outcome. */
static enum verify_result
field_scheme(const struct secrets *s, const struct form *f, size_t *idx,
    unsigned char digest[VERIFY_DIGEST_LEN])
{
	const struct form_field *sig;
	enum verify_result res;
	unsigned int dlen = 0;
	char *msg;
	size_t len = 0;

	sig = form_get(f, "signature");
	if (sig == NULL || sig->value_len == 0)
		return VERIFY_MISSING;
	msg = form_signing_string(f, &len);
	if (msg == NULL)
		return VERIFY_INTERNAL;
	res = match_any(s, msg, len, NULL, 0, sig->value, sig->value_len, idx);
	if (EVP_Digest(msg, len, digest, &dlen, EVP_sha256(), NULL) != 1 ||
	    dlen != VERIFY_DIGEST_LEN)
		res = VERIFY_INTERNAL;
	free(msg);
	return res;
}

/* Spec section 11: the signed bytes decide how a body is read. A body that
 * starts (after blanks) with '{' or '[' is JSON; read as a form, a JSON
 * webhook's own string values would become fields (a captured
 * customer_name of "x&type=PAYMENT_SUCCESS_WEBHOOK&..." forging a payment). */
static int
looks_like_json(const char *body, size_t len)
{
	size_t i = first_byte(body, len);

	return i < len && (body[i] == '{' || body[i] == '[');
}

/* Which reason a refused form gets: the header scheme's is the more
 * specific one, unless it only says a header was missing while a field
 * signature was there and did not match. */
static enum verify_result
form_reason(enum verify_result header, enum verify_result field)
{
	if (header == VERIFY_MISSING && field != VERIFY_MISSING)
		return field;
	return header;
}

enum verify_result
verify_form(const struct secrets *s, const struct verify_request *r,
    int field_on, struct form *form, struct verify_form_info *info)
{
	enum verify_result header = VERIFY_MISSING, field;
	enum form_result fr;
	size_t hidx = 0, fidx = 0;

	memset(form, 0, sizeof(*form));
	memset(info, 0, sizeof(*info));
	if (looks_like_json(r->body, r->body_len))
		return VERIFY_FORMAT;
	fr = form_parse(r->body, r->body_len, form);
	if (fr != FORM_OK)
		return fr == FORM_DUPLICATE ? VERIFY_FORM_DUPLICATE :
		    fr == FORM_TOO_MANY ? VERIFY_MISMATCH : VERIFY_INTERNAL;
	if (!is_empty(r->signature) || !is_empty(r->timestamp))
		header = header_scheme(s, r, BODY_FORM, &hidx);
	field = field_scheme(s, form, &fidx, info->signing_digest);
	if (header == VERIFY_INTERNAL || field == VERIFY_INTERNAL)
		return VERIFY_INTERNAL;
	info->by_field = field == VERIFY_OK;
	if (header == VERIFY_OK) {
		info->by_header = 1;
		info->secret_index = hidx;
		return VERIFY_OK;
	}
	if (field == VERIFY_OK && !field_on)
		return VERIFY_FIELD_SCHEME_OFF;
	if (field == VERIFY_OK) {
		/* No timestamp is signed in this scheme: a stale header
		 * does not matter when the field proves the body. */
		info->secret_index = fidx;
		return VERIFY_OK;
	}
	return form_reason(header, field);
}

const char *
verify_result_name(enum verify_result r)
{
	switch (r) {
	case VERIFY_OK:
		return "ok";
	case VERIFY_MISSING:
		return "missing";
	case VERIFY_BAD_TIMESTAMP:
		return "bad_timestamp";
	case VERIFY_NOT_OBJECT:
		return "not_object";
	case VERIFY_MISMATCH:
		return "mismatch";
	case VERIFY_STALE:
		return "stale";
	case VERIFY_FORM_DUPLICATE:
		return "form_duplicate";
	case VERIFY_FORMAT:
		return "format_mismatch";
	case VERIFY_FIELD_SCHEME_OFF:
		return "field_scheme_off";
	case VERIFY_FIELDS:
		return "form_fields";
	case VERIFY_INTERNAL:
		return "internal";
	}
	return "unknown";
}
