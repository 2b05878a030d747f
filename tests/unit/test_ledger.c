/* test_ledger.c - the order state machine (DESIGN "Orders"): a table of
 * sequences with what each step must leave, then every sequence of up to
 * five outcomes checked against the rules stated a second way. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "ledger.h"

#define MAX_STEPS	8
#define MAX_IDS		16

/* The caller's part of the contract: a success is a new payment unless an
 * earlier success of the order had its cf_payment_id (store_ledger.c looks
 * this up in order_payments). */
struct seen {
	const char *ids[MAX_IDS];
	size_t	 n;
};

static int
seen_add(struct seen *s, const char *id)
{
	size_t i;

	if (id == NULL)
		return 1;
	for (i = 0; i < s->n; i++) {
		if (strcmp(s->ids[i], id) == 0)
			return 0;
	}
	if (s->n < MAX_IDS)
		s->ids[s->n++] = id;
	return 1;
}

/* One step: what arrives, and the order after it. */
struct step {
	const char *type;		/* "S", "F", "D" payment events, "L"
					 * a link event, "X" a link event
					 * without a transaction */
	const char *id;			/* cf_payment_id / transaction_id */
	const char *amount;		/* the payment's */
	const char *state;		/* expected after the step */
	int	 successes;
	const char *attention;
	int	 paid_now;
};

struct sequence {
	const char *name;
	const char *order_amount;	/* carried by every event */
	struct step steps[MAX_STEPS];
};

static const struct sequence table[] = {
	{ "one success", "100.00", {
	    { "S", "1", "100.00", "PAID", 1, "", 1 } } },
	{ "failure then success", "100", {
	    { "F", "1", "100", "FAILED", 0, "", 0 },
	    { "S", "2", "100", "PAID", 1, "", 1 } } },
	{ "drop, failure, drop, success", "5", {
	    { "D", "1", "5", "USER_DROPPED", 0, "", 0 },
	    { "F", "2", "5", "FAILED", 0, "", 0 },
	    { "D", "3", "5", "USER_DROPPED", 0, "", 0 },
	    { "S", "4", "5", "PAID", 1, "", 1 } } },
	{ "late failure and drop", "10.00", {
	    { "S", "1", "10.00", "PAID", 1, "", 1 },
	    { "F", "2", "10.00", "PAID", 1, "late_failure", 0 },
	    { "D", "3", "10.00", "PAID", 1, "late_failure", 0 } } },
	{ "failure of the paid payment itself", "10", {
	    { "S", "1", "10", "PAID", 1, "", 1 },
	    { "F", "1", "10", "PAID", 1, "late_failure", 0 } } },
	{ "two successes", "100", {
	    { "S", "1", "100", "PAID", 1, "", 1 },
	    { "S", "2", "100", "PAID", 2, "double_payment", 0 },
	    { "S", "3", "100", "PAID", 3, "double_payment", 0 } } },
	{ "link event and its twin", "55.00", {
	    { "L", "1021206", "55.00", "PAID", 1, "", 1 },
	    { "S", "1021206", "55.00", "PAID", 1, "", 0 } } },
	{ "twin first, then the link event", "55.00", {
	    { "S", "1021206", "55.00", "PAID", 1, "", 1 },
	    { "L", "1021206", "55.00", "PAID", 1, "", 0 } } },
	{ "link twin plus a second payment", "55.00", {
	    { "L", "7", "55.00", "PAID", 1, "", 1 },
	    { "S", "7", "55.00", "PAID", 1, "", 0 },
	    { "S", "8", "55.00", "PAID", 2, "double_payment", 0 } } },
	{ "expired link, then failure", "20", {
	    { "X", NULL, "20", "PENDING", 0, "", 0 },
	    { "F", "1", "20", "FAILED", 0, "", 0 },
	    { "X", NULL, "20", "FAILED", 0, "", 0 } } },
	{ "100 paid for 100.00", "100.00", {
	    { "S", "1", "100", "PAID", 1, "", 1 } } },
	{ "1e2 paid for 100", "100", {
	    { "S", "1", "1e2", "PAID", 1, "", 1 } } },
	{ "99.99 paid for 100", "100", {
	    { "S", "1", "99.99", "PAID", 1, "amount_mismatch", 1 },
	    { "S", "2", "100", "PAID", 2, "double_payment,amount_mismatch",
		0 },
	    { "F", "3", "100", "PAID", 2,
		"double_payment,amount_mismatch,late_failure", 0 } } },
	{ "100.01 paid for 100.00", "100.00", {
	    { "S", "1", "100.01", "PAID", 1, "amount_mismatch", 1 } } },
	{ "an amount that is not a number", "100", {
	    { "S", "1", "abc", "PAID", 1, "amount_mismatch", 1 } } },
	{ "a success without an amount", "100", {
	    { "S", "1", NULL, "PAID", 1, "amount_mismatch", 1 } } },
	{ "no order amount: nothing to compare", NULL, {
	    { "S", "1", "99.99", "PAID", 1, "", 1 } } },
	{ "a success without an id is a payment of its own", "1", {
	    { "S", NULL, "1", "PAID", 1, "", 1 },
	    { "S", NULL, "1", "PAID", 2, "double_payment", 0 } } },
};

static struct ledger_event
event_of(const struct step *s, const char *order_amount, int64_t id,
    struct seen *seen)
{
	struct ledger_event ev;
	const char *type = "PAYMENT_LINK_EVENT", *status = NULL;

	memset(&ev, 0, sizeof(ev));
	if (strcmp(s->type, "S") == 0)
		type = "PAYMENT_SUCCESS_WEBHOOK";
	else if (strcmp(s->type, "F") == 0)
		type = "PAYMENT_FAILED_WEBHOOK";
	else if (strcmp(s->type, "D") == 0)
		type = "PAYMENT_USER_DROPPED_WEBHOOK";
	else if (strcmp(s->type, "L") == 0)
		status = "SUCCESS";
	ev.outcome = ledger_outcome_of(type, status);
	ev.new_payment = ev.outcome == LEDGER_SUCCESS && seen_add(seen, s->id);
	ev.amount = s->amount;
	ev.currency = "INR";
	ev.order_amount = order_amount;
	ev.order_currency = "INR";
	ev.event_id = id;
	ev.at_ms = 1746427759000LL + id;
	return ev;
}

static void
test_table(void)
{
	struct ledger_order o;
	struct ledger_event ev;
	struct ledger_step st;
	struct seen seen;
	char att[LEDGER_ATTENTION_MAX];
	const struct step *s;
	size_t i, j;
	int ok;

	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		memset(&seen, 0, sizeof(seen));
		ledger_order_init(&o, 1746427759000LL);
		for (j = 0; j < MAX_STEPS && table[i].steps[j].type != NULL;
		    j++) {
			s = &table[i].steps[j];
			ev = event_of(s, table[i].order_amount, (int64_t)j + 1,
			    &seen);
			ledger_apply(&o, &ev, &st);
			ledger_attention_text(o.attention, att, sizeof(att));
			ok = CHECK_STR(ledger_state_name(o.state), s->state);
			ok &= CHECK_INT(o.successes, s->successes);
			ok &= CHECK_STR(att, s->attention);
			ok &= CHECK_INT(st.paid_now, s->paid_now);
			ok &= CHECK_INT(o.last_event_id, (int64_t)j + 1);
			if (!ok)
				fprintf(stderr, "  sequence '%s', step %zu\n",
				    table[i].name, j + 1);
		}
	}
}

/* The paid columns come from the event that paid, and stay. */
static void
test_paid_columns(void)
{
	struct ledger_order o;
	struct ledger_event ev;
	struct ledger_step st;

	ledger_order_init(&o, 1000);
	CHECK_INT(o.paid_at, -1);
	CHECK_INT(o.paid_event_id, 0);
	memset(&ev, 0, sizeof(ev));
	ev.outcome = LEDGER_FAILURE;
	ev.amount = "2.50";
	ev.currency = "INR";
	ev.event_id = 7;
	ev.at_ms = 2000;
	ledger_apply(&o, &ev, &st);
	CHECK(o.paid_amount == NULL && o.order_amount == NULL);
	CHECK_STR(o.currency, "INR");	/* the payment's, lacking the order's */
	ev.outcome = LEDGER_SUCCESS;
	ev.new_payment = 1;
	ev.order_amount = "2.5";
	ev.order_currency = "USD";
	ev.event_id = 8;
	ev.at_ms = 3000;
	ledger_apply(&o, &ev, &st);
	CHECK_STR(o.paid_amount, "2.50");
	CHECK_STR(o.order_amount, "2.5");
	CHECK_INT(o.paid_at, 3000);
	CHECK_INT(o.paid_event_id, 8);
	CHECK_INT(o.first_event_at, 1000);
	CHECK_INT(o.last_event_at, 3000);
	/* 2.50 INR against an order in INR (the first currency known) */
	CHECK_INT(o.attention, 0);
	ev.amount = "9.00";
	ev.order_amount = "9.00";
	ev.event_id = 9;
	ev.at_ms = 4000;
	ledger_apply(&o, &ev, &st);
	CHECK_STR(o.paid_amount, "2.50");
	CHECK_STR(o.order_amount, "2.5");
	CHECK_INT(o.paid_event_id, 8);
	CHECK_INT(st.raised, LEDGER_DOUBLE_PAYMENT);
}

/* A currency other than the order's is not the order's amount; an order
 * amount that comes after the payment is compared when it comes. */
static void
test_currency_and_late_order_amount(void)
{
	struct ledger_order o;
	struct ledger_event ev;
	struct ledger_step st;

	ledger_order_init(&o, 0);
	memset(&ev, 0, sizeof(ev));
	ev.outcome = LEDGER_SUCCESS;
	ev.new_payment = 1;
	ev.amount = "100";
	ev.currency = "USD";
	ev.order_amount = "100.00";
	ev.order_currency = "INR";
	ledger_apply(&o, &ev, &st);
	CHECK_INT(st.raised, LEDGER_AMOUNT_MISMATCH);

	ledger_order_init(&o, 0);
	ev.currency = "INR";
	ev.order_amount = NULL;
	ledger_apply(&o, &ev, &st);
	CHECK_INT(o.attention, 0);
	ev.outcome = LEDGER_SEEN;
	ev.order_amount = "120";
	ledger_apply(&o, &ev, &st);
	CHECK_STR(ledger_state_name(o.state), "PAID");
	CHECK_INT(st.raised, LEDGER_AMOUNT_MISMATCH);
	CHECK_INT(st.paid_now, 0);
	ledger_apply(&o, &ev, &st);
	CHECK_INT(st.raised, 0);	/* raised once */
	CHECK_INT(o.attention, LEDGER_AMOUNT_MISMATCH);
}

/* Outcomes, in the alphabet of the exhaustive test: a success of payment
 * 1 or 2, the link twin of payment 1, a failure, a drop. */
static const char *const alphabet[] = { "S1", "S2", "L1", "F", "D" };
#define NALPHA	5
#define MAXLEN	5

/* The rules of DESIGN "Orders" stated over the whole prefix: PAID once any
 * success came (and final); otherwise the latest failure or drop, or
 * PENDING; successes count distinct payments; double_payment once there
 * are two; late_failure once a failure or drop follows a success;
 * paid_now only for the first success. */
static void
oracle(const int *seq, size_t n, const char **state, int *successes,
    unsigned *att, int *paid_now)
{
	int paid = 0, s1 = 0, s2 = 0, last_fail = -1;
	size_t i;

	*att = 0;
	*paid_now = 0;
	for (i = 0; i < n; i++) {
		int sym = seq[i], first;

		if (sym == 0 || sym == 2) {
			first = !paid;
			s1 = 1;
			paid = 1;
		} else if (sym == 1) {
			first = !paid;
			s2 = 1;
			paid = 1;
		} else {
			first = 0;
			if (paid)
				*att |= LEDGER_LATE_FAILURE;
			else
				last_fail = sym;
		}
		*paid_now = i + 1 == n && first;
	}
	*successes = s1 + s2;
	if (*successes >= 2)
		*att |= LEDGER_DOUBLE_PAYMENT;
	*state = paid ? "PAID" : last_fail == 3 ? "FAILED" :
	    last_fail == 4 ? "USER_DROPPED" : "PENDING";
}

static int
run_sequence(const int *seq, size_t n)
{
	struct ledger_order o;
	struct ledger_event ev;
	struct ledger_step st;
	struct seen seen;
	const char *want_state;
	int want_succ, want_paid_now, ok = 1;
	unsigned want_att, before;
	size_t i;

	memset(&seen, 0, sizeof(seen));
	ledger_order_init(&o, 0);
	for (i = 0; i < n; i++) {
		const char *sym = alphabet[seq[i]];
		struct step s = { "F", "9", "10", NULL, 0, NULL, 0 };

		if (sym[0] == 'S' || sym[0] == 'L') {
			s.type = sym[0] == 'S' ? "S" : "L";
			s.id = sym + 1;
		} else {
			s.type = sym;
		}
		ev = event_of(&s, "10.00", (int64_t)i + 1, &seen);
		before = o.attention;
		ledger_apply(&o, &ev, &st);
		oracle(seq, i + 1, &want_state, &want_succ, &want_att,
		    &want_paid_now);
		ok &= CHECK_STR(ledger_state_name(o.state), want_state);
		ok &= CHECK_INT(o.successes, want_succ);
		ok &= CHECK_INT(o.attention, want_att);
		ok &= CHECK_INT(st.paid_now, want_paid_now);
		ok &= CHECK_INT(st.raised, o.attention & ~before);
	}
	return ok;
}

static void
test_every_sequence(void)
{
	int seq[MAXLEN];
	size_t len, k, count = 0;
	unsigned long code, total;

	for (len = 1; len <= MAXLEN; len++) {
		for (total = 1, k = 0; k < len; k++)
			total *= NALPHA;
		for (code = 0; code < total; code++) {
			unsigned long c = code;

			for (k = 0; k < len; k++, c /= NALPHA)
				seq[k] = (int)(c % NALPHA);
			count++;
			if (!run_sequence(seq, len)) {
				fprintf(stderr, "  sequence:");
				for (k = 0; k < len; k++)
					fprintf(stderr, " %s",
					    alphabet[seq[k]]);
				fprintf(stderr, "\n");
				return;
			}
		}
	}
	CHECK_INT(count, 5 + 25 + 125 + 625 + 3125);
}

static void
test_touches_and_outcomes(void)
{
	CHECK(ledger_touches("PAYMENT_SUCCESS_WEBHOOK", "o1"));
	CHECK(ledger_touches("PAYMENT_FAILED_WEBHOOK", "o1"));
	CHECK(ledger_touches("PAYMENT_USER_DROPPED_WEBHOOK", "o1"));
	CHECK(ledger_touches("PAYMENT_LINK_EVENT", "CFPay_1"));
	CHECK(!ledger_touches("PAYMENT_SUCCESS_WEBHOOK", NULL));
	CHECK(!ledger_touches("PAYMENT_SUCCESS_WEBHOOK", ""));
	CHECK(!ledger_touches("REFUND_STATUS_WEBHOOK", "o1"));
	CHECK(!ledger_touches("DISPUTE_CREATED", "o1"));
	CHECK(!ledger_touches("UNKNOWN", "o1"));
	CHECK(!ledger_touches(NULL, "o1"));
	CHECK_INT(ledger_outcome_of("PAYMENT_SUCCESS_WEBHOOK", "FAILED"),
	    LEDGER_SUCCESS);		/* the type decides */
	CHECK_INT(ledger_outcome_of("PAYMENT_LINK_EVENT", "SUCCESS"),
	    LEDGER_SUCCESS);
	CHECK_INT(ledger_outcome_of("PAYMENT_LINK_EVENT", "FAILED"),
	    LEDGER_FAILURE);
	CHECK_INT(ledger_outcome_of("PAYMENT_LINK_EVENT", "USER_DROPPED"),
	    LEDGER_DROP);
	CHECK_INT(ledger_outcome_of("PAYMENT_LINK_EVENT", "PENDING"),
	    LEDGER_SEEN);
	CHECK_INT(ledger_outcome_of("PAYMENT_LINK_EVENT", NULL), LEDGER_SEEN);
	CHECK_INT(ledger_outcome_of("REFUND_STATUS_WEBHOOK", "SUCCESS"),
	    LEDGER_SEEN);
}

static void
test_names(void)
{
	char out[LEDGER_ATTENTION_MAX];
	enum ledger_state s;
	unsigned f;

	for (f = 0; f < 8; f++) {
		ledger_attention_text(f, out, sizeof(out));
		CHECK_INT(ledger_attention_parse(out), f);
	}
	ledger_attention_text(7, out, sizeof(out));
	CHECK_STR(out, "double_payment,amount_mismatch,late_failure");
	CHECK_INT(strlen(out) + 1, LEDGER_ATTENTION_MAX);
	ledger_attention_text(7, out, 20);	/* too small: what fits */
	CHECK_STR(out, "double_payment");
	CHECK_INT(ledger_attention_parse("late_failure,bogus,,double_payment"),
	    LEDGER_LATE_FAILURE | LEDGER_DOUBLE_PAYMENT);
	CHECK_INT(ledger_attention_parse(NULL), 0);
	CHECK(ledger_state_parse("USER_DROPPED", &s) == 0 &&
	    s == LEDGER_USER_DROPPED);
	CHECK(ledger_state_parse("paid", &s) == -1);
	CHECK(ledger_state_parse(NULL, &s) == -1);
	CHECK_STR(ledger_attention_name(1), "amount_mismatch");
}

int
main(void)
{
	RUN(test_table);
	RUN(test_paid_columns);
	RUN(test_currency_and_late_order_amount);
	RUN(test_every_sequence);
	RUN(test_touches_and_outcomes);
	RUN(test_names);
	return check_finish("test_ledger");
}
