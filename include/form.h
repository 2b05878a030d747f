/* form.h - application/x-www-form-urlencoded decoding.  Pure.
 *
 * Follows the WHATWG urlencoded parser (what Cashfree's form posts and the
 * test signer use): split on '&', skip empty pieces, split each on the first
 * '=', '+' becomes a space, %XX (hex in either case) becomes that byte, a '%'
 * not followed by two hex digits stays as it is. Keys and values are byte
 * strings (they may hold NUL after decoding), kept in wire order. */
#ifndef CFHOOK_FORM_H
#define CFHOOK_FORM_H

#include <stddef.h>

/* Far beyond any Cashfree form (about 20 fields): a signed form is never
 * refused for its size alone, while the field table (32 bytes a field) stays
 * smaller than the body it describes. */
#define FORM_MAX_FIELDS	4096

struct form_field {
	char	*key;		/* NUL-terminated; may hold NUL before key_len */
	size_t	 key_len;
	char	*value;		/* NUL-terminated; may hold NUL before value_len */
	size_t	 value_len;
};

struct form {
	struct form_field *fields;
	size_t	 n;
};

enum form_result {
	FORM_OK,
	FORM_DUPLICATE,		/* a key appears twice (spec section 11: 401) */
	FORM_TOO_MANY,		/* more than FORM_MAX_FIELDS fields */
	FORM_NOMEM
};

/* Decode body into *ret (caller storage; form_done() frees it on every
 * result, including failures). */
enum form_result form_parse(const char *body, size_t len, struct form *ret);
/* The field with exactly this key, or NULL. Borrowed from the form. */
const struct form_field *form_get(const struct form *, const char *key);
/* Value of `key` as a C string when present and free of NUL bytes, else NULL. */
const char *form_value(const struct form *, const char *key);
/* The string the form signature scheme signs (spec section 5.2): values of
 * every field but "signature", keys sorted bytewise, concatenated without
 * separators. Returns a malloc'd buffer (caller frees) and its length in
 * *len, or NULL on no memory. */
char	*form_signing_string(const struct form *, size_t *len);
void	form_done(struct form *);

#endif
