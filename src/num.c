/* num.c - strict number parsing and exact number printing.
 *
 * Pure: no I/O, no logging, no locale changes. Parsers accept the whole
 * string or nothing (no sign, blanks, base prefixes or trailing junk), because
 * config values and timestamps come from outside and "almost a number" must
 * be an error, not a guess. Printing gives the shortest decimal that reads
 * back to the same double, as DESIGN "Events and deduplication" asks for
 * amounts ("1.8", "170", never "1.8000000000000000444"). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "num.h"

/* Significant digits that always round-trip a double. */
#define SHORTEST_MAX	17

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

int
num_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
	uint64_t v = 0;
	unsigned d;
	size_t i;

	if (s == NULL || s[0] == '\0')
		return -1;
	for (i = 0; s[i] != '\0'; i++) {
		if (!is_digit(s[i]))
			return -1;
		d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (v < min || v > max)
		return -1;
	*ret = v;
	return 0;
}

int
num_parse_mode(const char *s, unsigned *ret)
{
	unsigned v = 0;
	size_t i;

	if (s == NULL || s[0] == '\0')
		return -1;
	for (i = 0; s[i] != '\0'; i++) {
		if (i >= 4 || s[i] < '0' || s[i] > '7')
			return -1;
		v = v * 8 + (unsigned)(s[i] - '0');
	}
	*ret = v;	/* four octal digits cannot exceed 07777 */
	return 0;
}

int
num_is_timestamp(const char *s)
{
	size_t i;

	if (s == NULL)
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		if (!is_digit(s[i]) || i >= 13)
			return 0;
	}
	return i == 10 || i == 13;
}

int64_t
num_timestamp_ms(const char *s)
{
	int64_t v = 0;
	size_t i;

	/* At most 13 digits (num_is_timestamp): no overflow possible. */
	for (i = 0; i < 13 && is_digit(s[i]); i++)
		v = v * 10 + (s[i] - '0');
	if (v < INT64_C(100000000000))
		v *= 1000;		/* spec section 11: seconds */
	return v;
}

/* Decimal digits and exponent of the shortest "%.*e" text of v (> 0, finite)
 * that strtod() reads back to v: v = 0.d1d2...dn * 10^(*point). Trailing zero
 * digits are dropped. Returns the number of digits (>= 1), or -1. */
static int
shortest_digits(double v, char digits[SHORTEST_MAX + 1], int *point)
{
	char tmp[64];
	const char *p;
	int prec, n, e, neg;

	for (prec = 1; prec <= SHORTEST_MAX; prec++) {
		n = snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, v);
		if (n < 0 || (size_t)n >= sizeof(tmp))
			return -1;
		if (strtod(tmp, NULL) == v)
			break;
	}
	if (prec > SHORTEST_MAX)
		return -1;
	/* tmp is "d[.ddd]e[+-]dd"; the point may be locale-specific, so any
	 * non-digit before 'e' is skipped. */
	n = 0;
	for (p = tmp; *p != '\0' && *p != 'e' && *p != 'E'; p++) {
		if (is_digit(*p) && n < SHORTEST_MAX)
			digits[n++] = *p;
	}
	if (n == 0 || *p == '\0')
		return -1;
	p++;
	neg = *p == '-';
	if (*p == '-' || *p == '+')
		p++;
	for (e = 0; is_digit(*p) && e < 10000; p++)
		e = e * 10 + (*p - '0');
	if (*p != '\0')
		return -1;
	while (n > 1 && digits[n - 1] == '0')
		n--;
	digits[n] = '\0';
	*point = (neg ? -e : e) + 1;
	return n;
}

/* Bounded writer: remembers when the output did not fit. */
struct out {
	char	*p;
	size_t	 n;
	size_t	 len;
	int	 full;
};

static void
put(struct out *o, const char *s, size_t n)
{
	if (o->full || n >= o->n - o->len) {
		o->full = 1;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
}

static void
put_zeros(struct out *o, int count)
{
	while (count-- > 0 && !o->full)
		put(o, "0", 1);
}

/* Plain decimal notation for 0.digits * 10^point. */
static void
put_plain(struct out *o, const char *digits, int nd, int point)
{
	if (point <= 0) {
		put(o, "0.", 2);
		put_zeros(o, -point);
		put(o, digits, (size_t)nd);
	} else if (point >= nd) {
		put(o, digits, (size_t)nd);
		put_zeros(o, point - nd);
	} else {
		put(o, digits, (size_t)point);
		put(o, ".", 1);
		put(o, digits + point, (size_t)(nd - point));
	}
}

/* Exponent notation as JavaScript prints large numbers ("1e+21",
 * "1.5e+300"). */
static void
put_exp(struct out *o, const char *digits, int nd, int point)
{
	char e[16];
	int n;

	put(o, digits, 1);
	if (nd > 1) {
		put(o, ".", 1);
		put(o, digits + 1, (size_t)(nd - 1));
	}
	n = snprintf(e, sizeof(e), "e%+d", point - 1);
	if (n < 0 || (size_t)n >= sizeof(e))
		o->full = 1;
	else
		put(o, e, (size_t)n);
}

int
num_format_double(double v, char *out, size_t n)
{
	char digits[SHORTEST_MAX + 1];
	struct out o = { out, n, 0, 0 };
	int nd, point = 0;

	if (out == NULL || n == 0)
		return -1;
	out[0] = '\0';
	if (!isfinite(v))
		return -1;
	if (v == 0.0) {			/* also -0: prints "0" */
		put(&o, "0", 1);
		return o.full ? -1 : 0;
	}
	if (v < 0) {
		put(&o, "-", 1);
		v = -v;
	}
	nd = shortest_digits(v, digits, &point);
	if (nd < 0)
		return -1;
	if (v < 1e21)
		put_plain(&o, digits, nd, point);
	else
		put_exp(&o, digits, nd, point);
	if (o.full) {
		out[0] = '\0';
		return -1;
	}
	return 0;
}

/* A decimal number's value as sign, significant digits and scale: value =
 * (-1)^neg * 0.d[0]d[1]...d[n-1] * 10^point, with no leading or trailing
 * zero digit (n == 0 for zero). The digits point into the text. */
struct decimal {
	int	 neg;
	const char *d;		/* significant digits; '.' may sit among them */
	size_t	 n;		/* significant digits (dots not counted) */
	long	 point;
};

/* The i-th significant digit of x (dots skipped), or '0' past the end. */
static char
digit_at(const struct decimal *x, size_t i)
{
	const char *p = x->d;
	size_t k = 0;

	if (i >= x->n)
		return '0';
	for (;; p++) {
		if (*p == '.')
			continue;
		if (k++ == i)
			return *p;
	}
}

/* Exponent part "e[+-]ddd" at s: its value in *e (bounded), the end in
 * *end. Returns 0, or -1 when malformed. */
static int
exponent(const char *s, long *e, const char **end)
{
	int neg = 0;
	long v = 0;

	if (*s == '+' || *s == '-')
		neg = *s++ == '-';
	if (!is_digit(*s))
		return -1;
	for (; is_digit(*s); s++) {
		if (v < 100000)
			v = v * 10 + (*s - '0');	/* beyond: saturated */
	}
	*e = neg ? -v : v;
	*end = s;
	return 0;
}

/* Parse "-?digits(.digits)?([eE][+-]?digits)?" (a JSON number or a decimal
 * string as Cashfree writes amounts, leading zeros allowed). -1 on junk. */
static int
decimal_parse(const char *s, struct decimal *x)
{
	const char *p, *first = NULL, *last = NULL;
	long intdigits = 0, lead = 0, e = 0;
	size_t sig = 0;
	int seen_dot = 0, any = 0;

	memset(x, 0, sizeof(*x));
	if (*s == '-')
		x->neg = 1, s++;
	for (p = s; is_digit(*p) || (*p == '.' && !seen_dot); p++) {
		if (*p == '.') {
			if (!any)
				return -1;	/* ".5" */
			seen_dot = 1;
			if (!is_digit(p[1]))
				return -1;	/* "5." */
			continue;
		}
		any = 1;
		if (!seen_dot)
			intdigits++;
		if (*p != '0') {
			if (first == NULL)
				first = p;
			last = p;
		} else if (first == NULL) {
			lead++;
		}
	}
	if (!any)
		return -1;
	if ((*p == 'e' || *p == 'E') && exponent(p + 1, &e, &p) == -1)
		return -1;
	if (*p != '\0')
		return -1;
	if (first == NULL)
		return 0;			/* zero: n == 0 */
	for (p = first; p <= last; p++)
		sig += *p != '.';
	x->d = first;
	x->n = sig;
	/* Digits before the first significant one that sat left of the dot
	 * shift the point; those right of it shift it the other way. */
	x->point = (lead <= intdigits ? intdigits - lead :
	    -(lead - intdigits)) + e;
	return 0;
}

int
num_decimal_cmp(const char *a, const char *b, int *ret)
{
	struct decimal x, y;
	size_t i, n;
	int sign, c = 0;

	if (a == NULL || b == NULL || decimal_parse(a, &x) == -1 ||
	    decimal_parse(b, &y) == -1)
		return -1;
	if (x.n == 0 || y.n == 0) {	/* zero has no sign */
		c = x.n == 0 && y.n == 0 ? 0 : x.n == 0 ? (y.neg ? 1 : -1) :
		    (x.neg ? -1 : 1);
		*ret = c;
		return 0;
	}
	if (x.neg != y.neg) {
		*ret = x.neg ? -1 : 1;
		return 0;
	}
	sign = x.neg ? -1 : 1;
	if (x.point != y.point) {
		*ret = x.point > y.point ? sign : -sign;
		return 0;
	}
	n = x.n > y.n ? x.n : y.n;
	for (i = 0; i < n && c == 0; i++)
		c = digit_at(&x, i) - digit_at(&y, i);
	*ret = c == 0 ? 0 : c > 0 ? sign : -sign;
	return 0;
}

int
num_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}
