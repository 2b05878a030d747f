/* verify.h - is this request signed by Cashfree?  Pure: no I/O, no clock.
 *
 * Reads only the raw bytes as received (never a re-serialised body) and
 * compares signatures in constant time after a length check. Every
 * configured secret is tried (rotation). */
#ifndef CFHOOK_VERIFY_H
#define CFHOOK_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "form.h"
#include "secret.h"

enum verify_result {
	VERIFY_OK,
	VERIFY_MISSING,		/* no signature, or no/empty timestamp header */
	VERIFY_BAD_TIMESTAMP,	/* not exactly 10 or 13 ASCII digits */
	VERIFY_NOT_OBJECT,	/* header scheme: JSON body not starting with '{';
				 * form body starting with a digit */
	VERIFY_MISMATCH,	/* no secret gives this signature */
	VERIFY_STALE,		/* signature good, timestamp outside tolerance */
	VERIFY_FORM_DUPLICATE,	/* a form key appears twice: ambiguous */
	VERIFY_INTERNAL		/* no memory or crypto failure: answer 503 */
};

struct verify_request {
	const char *timestamp;	/* x-webhook-timestamp (or alias), NULL if absent */
	const char *signature;	/* x-webhook-signature (or alias), NULL if absent */
	const char *body;	/* raw bytes as received */
	size_t	 body_len;
	int64_t	 now_ms;	/* the caller's clock */
	unsigned tolerance_s;	/* 0: no freshness check */
};

/* JSON webhook: header scheme of spec section 2 with the rules of section 11.
 * On VERIFY_OK (and VERIFY_STALE) *secret_index says which secret matched. */
enum verify_result verify_json(const struct secrets *,
	    const struct verify_request *, size_t *secret_index);
/* Form webhook (spec section 11): OK when the body's `signature` field
 * verifies under section 5.2, or the headers verify under section 2 over the
 * raw body. `form` is the decoded body (form_parse() result FORM_OK); a
 * repeated key must be reported by the caller as VERIFY_FORM_DUPLICATE. */
enum verify_result verify_form(const struct secrets *, const struct form *,
	    const struct verify_request *, size_t *secret_index);
/* Short lower-case name for logs and metrics ("mismatch", "stale", ...). */
const char *verify_result_name(enum verify_result);

#endif
