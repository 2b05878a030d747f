/* lg_req.h - one Cashfree-style webhook request, signed as Cashfree signs
 * (spec section 2): x-webhook-timestamp is the time in ms (13 digits) and
 * x-webhook-signature = Base64(HMAC-SHA256(secret, timestamp || body)).
 *
 * A body depends only on (id, kind), so a re-sent id carries the very bytes
 * of its first delivery, as a Cashfree retry does; only the timestamp and
 * signature are fresh. */
#ifndef LG_REQ_H
#define LG_REQ_H

#include <stddef.h>
#include <stdint.h>

#define LG_REQ_MAX	4096	/* a whole request: headers and body */

enum lg_req_kind {
	LG_REQ_JSON,	/* PAYMENT_SUCCESS_WEBHOOK, the spec's sample shape */
	LG_REQ_FORM	/* PAYMENT_LINK_EVENT, x-www-form-urlencoded */
};

struct lg_req_key;	/* opaque; one per thread, never shared */

/* A keyed HMAC-SHA256 context for `key`. NULL when OpenSSL fails. */
struct lg_req_key *lg_req_key_new(const void *key, size_t len);
/* Wipes and frees. NULL-safe. */
void	lg_req_key_free(struct lg_req_key *);

/* Writes the HTTP/1.1 POST of event `id` into out[cap]: Host, path, the
 * body of `kind`, x-webhook-attempt, and the signature over now_ms's
 * decimal text and the body. Returns the length, or 0 when it does not fit
 * or OpenSSL failed. */
size_t	lg_req_build(struct lg_req_key *, const char *host, const char *path,
	    uint64_t id, enum lg_req_kind kind, unsigned attempt,
	    int64_t now_ms, char *out, size_t cap);

/* The body alone (for tests of the shape). Returns its length, 0 when it
 * does not fit. */
size_t	lg_req_body(uint64_t id, enum lg_req_kind kind, char *out,
	    size_t cap);

/* Base64 HMAC-SHA256 of a || b into sig[45] (NUL-terminated). -1 when
 * OpenSSL fails. */
int	lg_req_sign(struct lg_req_key *, const void *a, size_t alen,
	    const void *b, size_t blen, char sig[45]);

#endif
