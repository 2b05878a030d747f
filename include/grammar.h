/* grammar.h - strict grammars for the fields of a form signed only by its
 * `signature` field.  Pure.
 *
 * That scheme (spec section 5.2) signs the values concatenated without a
 * separator, so bytes can move between neighbouring values under one
 * genuine signature (spec section 11). Every field that enters an event key,
 * a column or the envelope must then match a grammar tight enough that a
 * moved byte breaks it: an enum for a status, digits for a numeric id,
 * decimal text for an amount. */
#ifndef CFHOOK_GRAMMAR_H
#define CFHOOK_GRAMMAR_H

enum grammar {
	GRAMMAR_ANY,		/* no check (JSON bodies; unchecked fields) */
	GRAMMAR_DIGITS,		/* 1..32 digits, no leading zero: ids */
	GRAMMAR_DECIMAL,	/* "200.00", "55", "0.50": amounts */
	GRAMMAR_CURRENCY,	/* three upper-case letters: "INR" */
	GRAMMAR_ID,		/* 1..64 of [A-Za-z0-9_-]: order_id, link_id */
	GRAMMAR_TYPE,		/* 1..64 of [A-Za-z0-9_]: event type */
	GRAMMAR_TIME,		/* 2021-08-18T12:55:06(.123)?(Z|+05:30) */
	GRAMMAR_PAYMENT_STATUS,	/* SUCCESS, FAILED, PENDING, USER_DROPPED, ... */
	GRAMMAR_LINK_STATUS	/* ACTIVE, PAID, PARTIALLY_PAID, EXPIRED, ... */
};

/* Does the NUL-terminated s match g as a whole? An empty value never
 * matches (a blank field added under a genuine signature must not pass). */
int	grammar_match(enum grammar g, const char *s);
/* Short name for logs ("digits", "payment status", ...). */
const char *grammar_name(enum grammar g);

#endif
