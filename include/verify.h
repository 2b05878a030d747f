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
	VERIFY_FORMAT,		/* form Content-Type on a body that starts with
				 * '{' or '[': the signed bytes are JSON */
	VERIFY_FIELD_SCHEME_OFF,/* form signed only by its signature field
				 * while form_field_signature = off */
	VERIFY_FIELDS,		/* signature field only: a field fails its
				 * grammar or the link is inconsistent (set by
				 * the caller from event_from_form()) */
	VERIFY_INTERNAL		/* no memory or crypto failure: answer 503;
				 * keep last (metrics count by value) */
};

struct verify_request {
	const char *timestamp;	/* x-webhook-timestamp (or alias), NULL if absent */
	const char *signature;	/* x-webhook-signature (or alias), NULL if absent */
	const char *body;	/* raw bytes as received */
	size_t	 body_len;
	int64_t	 now_ms;	/* the caller's clock */
	unsigned tolerance_s;	/* 0: no freshness check */
};

#define VERIFY_DIGEST_LEN	32	/* SHA-256 */

/* How a form was verified. */
struct verify_form_info {
	size_t	 secret_index;	/* which secret matched */
	int	 by_header;	/* the x-webhook-* headers verify the raw bytes */
	/* The `signature` field verifies (spec section 5.2): the body may be a
	 * re-cut of a genuine form, so when it is the only proof the fields
	 * must pass event_from_form()'s strict checks; and every re-cut of one
	 * form shares its signing string, whose SHA-256 is here: the event is
	 * deduplicated by it as well as by its key. */
	int	 by_field;
	unsigned char signing_digest[VERIFY_DIGEST_LEN];
};

/* JSON webhook: header scheme of spec section 2 with the rules of section 11.
 * On VERIFY_OK (and VERIFY_STALE) *secret_index says which secret matched. */
enum verify_result verify_json(const struct secrets *,
	    const struct verify_request *, size_t *secret_index);
/* Form webhook (spec section 11): decodes the body into *form (caller
 * storage; form_done() it on every result) and verifies it. A body whose
 * first non-blank byte is '{' or '[' is JSON whatever the Content-Type said:
 * VERIFY_FORMAT. OK when the x-webhook-* headers verify over the raw bytes
 * (section 2), or, only with field_on (form_field_signature = on), when the
 * body's `signature` field verifies under section 5.2; a form proved by its
 * field alone while field_on is 0 is VERIFY_FIELD_SCHEME_OFF. *info is
 * filled on VERIFY_OK. */
enum verify_result verify_form(const struct secrets *,
	    const struct verify_request *, int field_on, struct form *form,
	    struct verify_form_info *info);
/* Short lower-case name for logs and metrics ("mismatch", "stale", ...). */
const char *verify_result_name(enum verify_result);

#endif
