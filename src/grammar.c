/* grammar.c - strict grammars for fields of a form signed only by its
 * `signature` field (spec sections 5.2 and 11).
 *
 * Pure: no I/O, no allocation. Each grammar is written out by hand rather
 * than as a regular expression so that what it accepts is plain to read and
 * cannot depend on a locale. The enums list what Cashfree documents (spec
 * section 4; Payment Link statuses, section 3); a value outside them is
 * refused, because under this scheme an unknown status may be a neighbour's
 * bytes. */
#include <stddef.h>
#include <string.h>

#include "grammar.h"

#define FIELD_MAX	64	/* ids and types */
#define NUMBER_MAX	32	/* digits and decimals */

static const char *const payment_statuses[] = {
	"SUCCESS", "FAILED", "PENDING", "USER_DROPPED", "NOT_ATTEMPTED",
	"VOID", "CANCELLED", NULL
};

static const char *const link_statuses[] = {
	"ACTIVE", "PAID", "PARTIALLY_PAID", "EXPIRED", "CANCELLED", NULL
};

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int
is_alnum(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
one_of(const char *s, const char *const *set)
{
	for (; *set != NULL; set++) {
		if (strcmp(s, *set) == 0)
			return 1;
	}
	return 0;
}

/* 1..max bytes, each a letter, a digit or one of `extra`. */
static int
all_of(const char *s, size_t max, const char *extra)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		if (i >= max || !(is_alnum(s[i]) || strchr(extra, s[i]) != NULL))
			return 0;
	}
	return i > 0;
}

static int
digits(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!is_digit(s[i]))
			return 0;
	}
	return 1;
}

/* A numeric id: no leading zero (Cashfree's ids have none), so a digit
 * moved in from a neighbour's end cannot hide as one. */
static int
is_id_number(const char *s, size_t n)
{
	return n <= NUMBER_MAX && digits(s, n) && (s[0] != '0' || n == 1);
}

/* An amount as Cashfree writes it in text: an integer part without a
 * leading zero, and two decimals if any ("200.00", "55", "0.50"), so
 * "200.0" + "0..." cannot be cut from "200.00". */
static int
is_amount(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n && is_digit(s[i]))
		i++;
	if (i == 0 || i > 19 || (s[0] == '0' && i > 1))
		return 0;
	return i == n || (n - i == 3 && s[i] == '.' && is_digit(s[i + 1]) &&
	    is_digit(s[i + 2]));
}

/* RFC 3339 date-time as Cashfree writes event_time: fixed positions, an
 * optional fraction of 1..9 digits, then 'Z' or a numeric offset. */
static int
is_time(const char *s)
{
	size_t n = strlen(s), i = 19, f;

	if (n < 20 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) ||
	    s[7] != '-' || !digits(s + 8, 2) || s[10] != 'T' ||
	    !digits(s + 11, 2) || s[13] != ':' || !digits(s + 14, 2) ||
	    s[16] != ':' || !digits(s + 17, 2))
		return 0;
	if (s[i] == '.') {
		for (f = ++i; i < n && is_digit(s[i]); i++)
			;
		if (i == f || i - f > 9)
			return 0;
	}
	if (s[i] == 'Z')
		return i + 1 == n;
	return (s[i] == '+' || s[i] == '-') && n - i == 6 &&
	    digits(s + i + 1, 2) && s[i + 3] == ':' && digits(s + i + 4, 2);
}

int
grammar_match(enum grammar g, const char *s)
{
	size_t n;

	if (s == NULL || s[0] == '\0')
		return 0;
	n = strlen(s);
	switch (g) {
	case GRAMMAR_ANY:
		return 1;
	case GRAMMAR_DIGITS:
		return is_id_number(s, n);
	case GRAMMAR_DECIMAL:
		return is_amount(s, n);
	case GRAMMAR_CURRENCY:
		return n == 3 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' &&
		    s[1] <= 'Z' && s[2] >= 'A' && s[2] <= 'Z';
	case GRAMMAR_ID:
		return all_of(s, FIELD_MAX, "_-");
	case GRAMMAR_TYPE:
		return all_of(s, FIELD_MAX, "_");
	case GRAMMAR_TIME:
		return is_time(s);
	case GRAMMAR_PAYMENT_STATUS:
		return one_of(s, payment_statuses);
	case GRAMMAR_LINK_STATUS:
		return one_of(s, link_statuses);
	}
	return 0;
}

const char *
grammar_name(enum grammar g)
{
	switch (g) {
	case GRAMMAR_ANY:
		return "any";
	case GRAMMAR_DIGITS:
		return "digits";
	case GRAMMAR_DECIMAL:
		return "decimal";
	case GRAMMAR_CURRENCY:
		return "currency code";
	case GRAMMAR_ID:
		return "id";
	case GRAMMAR_TYPE:
		return "event type";
	case GRAMMAR_TIME:
		return "date-time";
	case GRAMMAR_PAYMENT_STATUS:
		return "payment status";
	case GRAMMAR_LINK_STATUS:
		return "link status";
	}
	return "unknown";
}
