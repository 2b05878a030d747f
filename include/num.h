/* num.h - strict number parsing and exact number printing.  Pure. */
#ifndef CFHOOK_NUM_H
#define CFHOOK_NUM_H

#include "attr.h"

#include <stddef.h>
#include <stdint.h>

/* Whole string of decimal digits (no sign, no spaces, no leading '+'), value in
 * [min, max]. Returns 0 and writes *ret, or -1 (empty, junk, out of range). */
int	num_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret) MUST_CHECK;
/* Same for an octal mode such as "0660" (at most 4 digits, value <= 07777). */
int	num_parse_mode(const char *s, unsigned *ret) MUST_CHECK;
/* Shortest decimal text that strtod() reads back to exactly v, never with an
 * exponent for |v| < 1e21 ("1.8", "170", "0.1", "-2.5"). Writes at most n bytes
 * including the NUL. Returns 0, or -1 when v is not finite or n is too small. */
int	num_format_double(double v, char *out, size_t n);
/* "true" when s is exactly 10 or 13 ASCII digits (the timestamp grammar of
 * spec section 11); no sign, no spaces, nothing else. */
int	num_is_timestamp(const char *s);
/* Milliseconds since the epoch for a timestamp accepted by num_is_timestamp():
 * values below 1e11 are seconds, others milliseconds (spec section 11). */
int64_t	num_timestamp_ms(const char *s);
/* Compare two decimal numbers by value, exactly (never through a double):
 * each is a JSON number or a decimal string ("-?d+(.d+)?([eE][+-]?d+)?",
 * leading zeros allowed): "100" == "100.00" == "1e2", "99.99" < "100".
 * Returns 0 with *ret < 0, 0 or > 0, or -1 when either is not such a
 * number. */
int	num_decimal_cmp(const char *a, const char *b, int *ret) MUST_CHECK;

/* The value of the hex digit c (either case), or -1. */
int	num_hex_digit(char c);

#endif
