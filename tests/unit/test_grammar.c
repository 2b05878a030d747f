/* test_grammar.c - the strict grammars of form fields signed only by their
 * `signature` field: a table of values each grammar takes and refuses. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "grammar.h"

static const struct {
	enum grammar g;
	const char *s;
	int ok;
} cases[] = {
	{ GRAMMAR_ANY, "anything at all", 1 },
	{ GRAMMAR_ANY, "", 0 },
	{ GRAMMAR_DIGITS, "1021301", 1 },
	{ GRAMMAR_DIGITS, "0", 1 },
	{ GRAMMAR_DIGITS, "021301", 0 },
	{ GRAMMAR_DIGITS, "12345678901234567890123456789012", 1 },
	{ GRAMMAR_DIGITS, "123456789012345678901234567890123", 0 },
	{ GRAMMAR_DIGITS, "", 0 },
	{ GRAMMAR_DIGITS, "-1", 0 },
	{ GRAMMAR_DIGITS, "12a", 0 },
	{ GRAMMAR_DIGITS, "1.0", 0 },
	{ GRAMMAR_DIGITS, " 1", 0 },
	{ GRAMMAR_DECIMAL, "200.00", 1 },
	{ GRAMMAR_DECIMAL, "55", 1 },
	{ GRAMMAR_DECIMAL, "0.50", 1 },
	{ GRAMMAR_DECIMAL, "0", 1 },
	{ GRAMMAR_DECIMAL, "0.5", 0 },
	{ GRAMMAR_DECIMAL, "200.0", 0 },
	{ GRAMMAR_DECIMAL, "200.000", 0 },
	{ GRAMMAR_DECIMAL, "0200.00", 0 },
	{ GRAMMAR_DECIMAL, "1234567890123456789.00", 1 },
	{ GRAMMAR_DECIMAL, "12345678901234567890.00", 0 },
	{ GRAMMAR_DECIMAL, "200.0O", 0 },
	{ GRAMMAR_DECIMAL, "1e2", 0 },
	{ GRAMMAR_DECIMAL, "-1.00", 0 },
	{ GRAMMAR_DECIMAL, ".5", 0 },
	{ GRAMMAR_DECIMAL, "5.", 0 },
	{ GRAMMAR_CURRENCY, "INR", 1 },
	{ GRAMMAR_CURRENCY, "inr", 0 },
	{ GRAMMAR_CURRENCY, "INRX", 0 },
	{ GRAMMAR_CURRENCY, "IN", 0 },
	{ GRAMMAR_ID, "CFPay_U1mgll3c0e9g_ehdcjjbtckf", 1 },
	{ GRAMMAR_ID, "order-1_A", 1 },
	{ GRAMMAR_ID, "o:1", 0 },
	{ GRAMMAR_ID, "o 1", 0 },
	{ GRAMMAR_ID, "o.1", 0 },
	{ GRAMMAR_ID, "caf\xc3\xa9", 0 },
	{ GRAMMAR_ID, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	    1 },
	{ GRAMMAR_ID, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	    0 },
	{ GRAMMAR_TYPE, "PAYMENT_LINK_EVENT", 1 },
	{ GRAMMAR_TYPE, "payment_form_order_webhook", 1 },
	{ GRAMMAR_TYPE, "PAYMENT-LINK", 0 },
	{ GRAMMAR_TYPE, "PAYMENT LINK", 0 },
	{ GRAMMAR_TIME, "2021-08-18T12:55:06+05:30", 1 },
	{ GRAMMAR_TIME, "2021-08-18T12:55:06Z", 1 },
	{ GRAMMAR_TIME, "2021-08-18T12:55:06.123-04:00", 1 },
	{ GRAMMAR_TIME, "2021-08-18T12:55:06.1234567890Z", 0 },
	{ GRAMMAR_TIME, "2021-08-18 12:55:06+05:30", 0 },
	{ GRAMMAR_TIME, "2021-08-18T12:55:06+0530", 0 },
	{ GRAMMAR_TIME, "2021-08-18T12:55:06", 0 },
	{ GRAMMAR_TIME, "2021-08-18T12:55:06.Z", 0 },
	{ GRAMMAR_TIME, "2021-08-18T12:55:06+05:301", 0 },
	{ GRAMMAR_PAYMENT_STATUS, "SUCCESS", 1 },
	{ GRAMMAR_PAYMENT_STATUS, "USER_DROPPED", 1 },
	{ GRAMMAR_PAYMENT_STATUS, "NOT_ATTEMPTED", 1 },
	{ GRAMMAR_PAYMENT_STATUS, "SUCCESS1", 0 },
	{ GRAMMAR_PAYMENT_STATUS, "success", 0 },
	{ GRAMMAR_PAYMENT_STATUS, "SUCCES", 0 },
	{ GRAMMAR_LINK_STATUS, "PAID", 1 },
	{ GRAMMAR_LINK_STATUS, "PARTIALLY_PAID", 1 },
	{ GRAMMAR_LINK_STATUS, "EXPIRED", 1 },
	{ GRAMMAR_LINK_STATUS, "PARTIALLY_", 0 },
	{ GRAMMAR_LINK_STATUS, "PAIDPAID", 0 },
	{ GRAMMAR_LINK_STATUS, "SUCCESS", 0 },
};

static void
test_table(void)
{
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (!CHECK_INT(grammar_match(cases[i].g, cases[i].s),
		    cases[i].ok))
			fprintf(stderr, "  %s: '%s'\n",
			    grammar_name(cases[i].g), cases[i].s);
	}
	CHECK_INT(grammar_match(GRAMMAR_DIGITS, NULL), 0);
}

static void
test_names(void)
{
	CHECK_STR(grammar_name(GRAMMAR_DIGITS), "digits");
	CHECK_STR(grammar_name(GRAMMAR_LINK_STATUS), "link status");
	CHECK_STR(grammar_name((enum grammar)99), "unknown");
}

int
main(void)
{
	RUN(test_table);
	RUN(test_names);
	return check_finish("test_grammar");
}
