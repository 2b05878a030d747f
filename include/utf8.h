/* utf8.h - strict UTF-8 (RFC 3629).  Pure.
 *
 * The one validator: text columns, journal fields, the envelope and
 * cfhookctl's output hold only well-formed UTF-8 (no overlong forms, no
 * UTF-16 surrogates, nothing past U+10FFFF, no stray or missing
 * continuation bytes). */
#ifndef CFHOOK_UTF8_H
#define CFHOOK_UTF8_H

#include <stddef.h>

/* Length (1..4) of the well-formed sequence that starts s[0..n), n >= 1,
 * or 0 when none does. */
size_t	utf8_seq(const unsigned char *s, size_t n);
/* Is s[0..n) well-formed UTF-8? NUL is a valid character here. */
int	utf8_valid(const char *s, size_t n);
/* Well-formed and free of NUL: what a C string or a TEXT column holds. */
int	utf8_text(const char *s, size_t n);

#endif
