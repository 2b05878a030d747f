/* jsonraw.h - the raw text of JSON values, for what jansson cannot keep.
 * Pure.
 *
 * jansson turns numbers into int64 or double, so an id such as
 * 12345678901234567890 or 1453002795.0 loses the text Cashfree sent, and a
 * number beyond those types fails the whole parse. These helpers work on the
 * text itself: where a value starts and ends, and a copy of a body in which
 * such numbers are blanked so that jansson can read everything else. */
#ifndef CFHOOK_JSONRAW_H
#define CFHOOK_JSONRAW_H

#include <stddef.h>

/* The value at a dotted path of object keys ("data.payment.cf_payment_id")
 * in the JSON object `text`: *off and *n give its exact bytes (a number
 * token, "null", a quoted string, ...). Keys are compared after decoding
 * their escapes, as jansson does. Meant for text jansson accepted (with
 * duplicate keys rejected, so the first match is the only one); on any other
 * text it stays within [text, text + len) and may return -1. Returns 0, or
 * -1 when there is no such value. */
int	jsonraw_find(const char *text, size_t len, const char *path,
	    size_t *off, size_t *n);
/* A copy of text[0..len) (malloc'd, NUL-terminated, same length, same
 * offsets) in which what makes jansson refuse a whole body is spoiled in
 * place: every number token too large for it (an integer outside int64, a
 * real beyond double) becomes "null" and blanks, and every lone UTF-16
 * surrogate escape ("\ud83d" not followed by a low half) becomes "\u0000".
 * *changed says whether anything was. Returns NULL on no memory. */
char	*jsonraw_tame(const char *text, size_t len, int *changed);
/* Is this (a value's text from jsonraw_find) a number token? An integer
 * token has no '.', 'e' or 'E'. */
int	jsonraw_is_number(const char *s, size_t n);
int	jsonraw_is_integer(const char *s, size_t n);

#endif
