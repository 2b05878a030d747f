/* secret.h - the accepted Cashfree secrets (rotation) and HMAC-SHA256 with them.
 *
 * Key bytes never leave secret.c: callers ask for a MAC by the secret's
 * position. Loading does I/O and logs; everything else is pure and may be
 * called from any thread at once on the same object. */
#ifndef CFHOOK_SECRET_H
#define CFHOOK_SECRET_H

#include "attr.h"

#include <stddef.h>

#define SECRET_MAC_LEN	32		/* HMAC-SHA256 */
#define SECRET_MAX	16		/* secrets accepted at once */

struct secrets;				/* immutable, reference counted */

/* Parse secrets from text: one per line, surrounding blanks and CR trimmed,
 * blank lines and lines starting with '#' skipped, a UTF-8 byte order mark
 * at the very start ignored. `origin` names the source
 * in *err messages ("FILE:LINE: ..."; never quotes a secret). Returns 0 and
 * *ret (reference count 1), or -1 with a message in err (no memory, none
 * found, more than SECRET_MAX, a NUL byte, a line over 1024 bytes). Pure. */
int	secrets_parse(const char *text, size_t len, const char *origin,
	    struct secrets **ret, char *err, size_t errlen) MUST_CHECK;
/* Load from `path`, or when path is NULL from
 * $CREDENTIALS_DIRECTORY/cashfree-secret. Logs why it failed; warns (once)
 * when the file is readable or writable by group or others. Returns 0 / -1. */
int	secrets_load(const char *path, struct secrets **ret) MUST_CHECK;
/* Number of secrets (>= 1). */
size_t	secrets_count(const struct secrets *);
/* HMAC-SHA256 with secret i over a || b (either may be empty, pointers may be
 * NULL when their length is 0). Returns 0, or -1 (i out of range, OpenSSL
 * failure). Thread-safe. */
int	secrets_mac(const struct secrets *, size_t i, const void *a, size_t alen,
	    const void *b, size_t blen, unsigned char out[SECRET_MAC_LEN]) MUST_CHECK;
/* Another reference to the same object. */
struct secrets *secrets_ref(struct secrets *);
/* Drops a reference; the last one wipes the key bytes and frees. NULL-safe. */
void	secrets_free(struct secrets *);

#endif
