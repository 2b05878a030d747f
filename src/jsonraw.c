/* jsonraw.c - the raw text of JSON values, for what jansson cannot keep.
 *
 * Pure: no I/O, no logging, no allocation except the copy jsonraw_tame()
 * returns. It does not parse JSON: it walks text that jansson has already
 * accepted (or is about to judge), so it only needs to find where values
 * start and end. Every index is checked against the length, nothing recurses
 * (depth is a counter), so hostile text cannot make it read out of bounds or
 * exhaust the stack. It must never be the judge of whether JSON is valid. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jsonraw.h"

/* int64 limits as text, for integers too long for strtoll to be cheap. */
#define INT64_MAX_TEXT	"9223372036854775807"
#define INT64_MIN_TEXT	"9223372036854775808"	/* unsigned */

static int
is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* A byte that may continue a number token. */
static int
is_number_byte(char c)
{
	return is_digit(c) || c == '+' || c == '-' || c == '.' || c == 'e' ||
	    c == 'E';
}

static size_t
skip_ws(const char *t, size_t len, size_t i)
{
	while (i < len && is_ws(t[i]))
		i++;
	return i;
}

/* Past the closing quote of the string opening at t[i], or len. */
static size_t
skip_string(const char *t, size_t len, size_t i)
{
	for (i++; i < len; i++) {
		if (t[i] == '\\')
			i++;	/* an escaped byte cannot close it */
		else if (t[i] == '"')
			return i + 1;
	}
	return len;
}

/* Past the value starting at t[i]: a string, a container (brackets counted
 * outside strings) or a scalar (up to a delimiter). */
static size_t
skip_value(const char *t, size_t len, size_t i)
{
	size_t depth = 0;
	char c;

	while (i < len) {
		c = t[i];
		if (c == '"') {
			i = skip_string(t, len, i);
			if (depth == 0)
				return i;
			continue;
		}
		if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			if (depth == 0)
				return i;	/* a scalar's parent ends */
			if (--depth == 0)
				return i + 1;
		} else if (depth == 0 && (c == ',' || c == '\0' || is_ws(c))) {
			return i;
		}
		i++;
	}
	return len;
}

static int
hex4(const char *t, size_t len, size_t p, unsigned *cp)
{
	unsigned v = 0;
	size_t k;
	char c;

	if (len - p < 4)
		return -1;
	for (k = 0; k < 4; k++) {
		c = t[p + k];
		v <<= 4;
		if (is_digit(c))
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*cp = v;
	return 0;
}

/* One escape after a backslash at t[*p - 1]: the byte it stands for, or -1
 * for one that cannot equal an ASCII path segment (\u0080 and up). */
static int
unescape(const char *t, size_t len, size_t *p)
{
	unsigned cp;
	char c = t[(*p)++];

	switch (c) {
	case 'b':
		return '\b';
	case 'f':
		return '\f';
	case 'n':
		return '\n';
	case 'r':
		return '\r';
	case 't':
		return '\t';
	case 'u':
		if (hex4(t, len, *p, &cp) == -1)
			return -1;
		*p += 4;
		return cp < 0x80 ? (int)cp : -1;
	default:
		return (unsigned char)c;	/* '"', '\\', '/' */
	}
}

/* Does the key string opening at t[*i] decode to exactly seg[0..n)? *i
 * ends past its closing quote (or at len). Path segments are ASCII. */
static int
key_is(const char *t, size_t len, size_t *i, const char *seg, size_t n)
{
	size_t p = *i + 1, k = 0;
	int same = 1, c;

	while (p < len && t[p] != '"') {
		c = (unsigned char)t[p++];
		if (c == '\\') {
			if (p >= len)
				break;
			c = unescape(t, len, &p);
		}
		if (c < 0 || k >= n || (unsigned char)seg[k] != c)
			same = 0;
		else
			k++;
	}
	*i = p < len ? p + 1 : len;
	return same && k == n && p < len;
}

/* In the object opening at t[*i]: the value of the member named seg[0..n).
 * *i ends at its first byte. Returns 0, or -1 when there is none. */
static int
member(const char *t, size_t len, size_t *i, const char *seg, size_t n)
{
	size_t p = skip_ws(t, len, *i + 1);
	int match;

	for (;;) {
		if (p >= len || t[p] != '"')
			return -1;		/* '}' or not JSON */
		match = key_is(t, len, &p, seg, n);
		p = skip_ws(t, len, p);
		if (p >= len || t[p] != ':')
			return -1;
		p = skip_ws(t, len, p + 1);
		if (p >= len)
			return -1;
		if (match) {
			*i = p;
			return 0;
		}
		p = skip_value(t, len, p);
		p = skip_ws(t, len, p);
		if (p >= len || t[p] != ',')
			return -1;
		p = skip_ws(t, len, p + 1);
	}
}

int
jsonraw_find(const char *text, size_t len, const char *path, size_t *off,
    size_t *n)
{
	const char *seg = path, *dot;
	size_t i, end;

	if (text == NULL)
		return -1;
	i = skip_ws(text, len, 0);
	for (;;) {
		if (i >= len || text[i] != '{')
			return -1;
		dot = strchr(seg, '.');
		if (member(text, len, &i, seg, dot != NULL ?
		    (size_t)(dot - seg) : strlen(seg)) == -1)
			return -1;
		if (dot == NULL)
			break;
		seg = dot + 1;
	}
	end = skip_value(text, len, i);
	if (end <= i)
		return -1;
	*off = i;
	*n = end - i;
	return 0;
}

/* Length of the number token at s[0..n) as jansson's lexer reads it: the
 * longest prefix of the RFC 8259 grammar -? (0 | [1-9][0-9]*) (. [0-9]+)?
 * ([eE] [+-]? [0-9]+)?, taken greedily; 0 where that lexer finds an invalid
 * token ("-x", "01", "1.", "1e"). Mirroring it keeps jsonraw_tame() in step
 * with the token jansson would report as too large. */
static size_t
number_prefix(const char *s, size_t n)
{
	size_t i = 0, d;

	if (i < n && s[i] == '-')
		i++;
	if (i < n && s[i] == '0') {
		if (++i < n && is_digit(s[i]))
			return 0;
	} else {
		for (d = i; i < n && is_digit(s[i]); i++)
			;
		if (i == d)
			return 0;
	}
	if (i < n && s[i] == '.') {
		for (d = ++i; i < n && is_digit(s[i]); i++)
			;
		if (i == d)
			return 0;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		if (++i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		for (d = i; i < n && is_digit(s[i]); i++)
			;
		if (i == d)
			return 0;
	}
	return i;
}

int
jsonraw_is_number(const char *s, size_t n)
{
	return n > 0 && number_prefix(s, n) == n;
}

int
jsonraw_is_integer(const char *s, size_t n)
{
	return jsonraw_is_number(s, n) && memchr(s, '.', n) == NULL &&
	    memchr(s, 'e', n) == NULL && memchr(s, 'E', n) == NULL;
}

/* Would jansson refuse the number token s[0..n) (from number_prefix())?
 * Integers must fit int64 (its strtoll), reals must not overflow a double
 * (its strtod gives HUGE_VAL with ERANGE; underflow is accepted). s[n] is
 * set to NUL for strtod and restored. */
static int
too_big(char *s, size_t n)
{
	const char *digits = s[0] == '-' ? s + 1 : s;
	size_t nd = n - (size_t)(digits - s);
	double v;
	char saved;

	if (jsonraw_is_integer(s, n)) {
		if (nd != sizeof(INT64_MAX_TEXT) - 1)
			return nd > sizeof(INT64_MAX_TEXT) - 1;
		return memcmp(digits, s[0] == '-' ? INT64_MIN_TEXT :
		    INT64_MAX_TEXT, nd) > 0;
	}
	saved = s[n];
	s[n] = '\0';
	errno = 0;
	v = strtod(s, NULL);
	s[n] = saved;
	return errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL);
}

static int
is_escape_u(const char *t, size_t len, size_t i, unsigned *cp)
{
	return len - i >= 6 && t[i] == '\\' && t[i + 1] == 'u' &&
	    hex4(t, len, i + 2, cp) == 0;
}

/* The string opening at t[i]: every UTF-16 surrogate escape that is not
 * half of a pair ("\ud83d" alone) becomes "\u0000", the same length. Returns
 * the index past the string; *changed set when anything was. */
static size_t
tame_string(char *t, size_t len, size_t i, int *changed)
{
	unsigned cp, lo;

	for (i++; i < len && t[i] != '"'; i++) {
		if (t[i] != '\\')
			continue;
		if (!is_escape_u(t, len, i, &cp) || cp < 0xd800 ||
		    cp > 0xdfff) {
			i++;		/* any other escape: skip its byte */
			continue;
		}
		if (cp <= 0xdbff && is_escape_u(t, len, i + 6, &lo) &&
		    lo >= 0xdc00 && lo <= 0xdfff) {
			i += 11;	/* a whole pair */
			continue;
		}
		memcpy(t + i, "\\u0000", 6);
		*changed = 1;
		i += 5;
	}
	return i < len ? i + 1 : len;
}

char *
jsonraw_tame(const char *text, size_t len, int *changed)
{
	size_t i = 0, n;
	char *t;

	*changed = 0;
	t = malloc(len + 1);
	if (t == NULL)
		return NULL;
	if (len > 0)
		memcpy(t, text, len);
	t[len] = '\0';
	while (i < len) {
		if (t[i] == '"') {
			i = tame_string(t, len, i, changed);
			continue;
		}
		if (t[i] != '-' && !is_digit(t[i])) {
			i++;
			continue;
		}
		n = number_prefix(t + i, len - i);
		if (n == 0) {		/* jansson stops here anyway */
			while (i < len && is_number_byte(t[i]))
				i++;
			continue;
		}
		/* A token that overflows is at least 5 bytes ("1e309"). */
		if (n >= 4 && too_big(t + i, n)) {
			memcpy(t + i, "null", 4);
			memset(t + i + 4, ' ', n - 4);
			*changed = 1;
		}
		i += n;
	}
	return t;
}
