/* ledger.c - the payment state of an order, one event at a time (DESIGN
 * "Orders").
 *
 * Pure: no I/O, no clock; times and ids arrive with the event. PAID is
 * final, because an order paid for must be fulfilled whatever arrives
 * later: Cashfree does not promise the order of deliveries (a FAILED
 * attempt may come after the SUCCESS), so a later failure only raises
 * late_failure for a person to look at. Amounts are compared as decimals
 * (num_decimal_cmp: "100" = "100.00" = "1e2"), never as text or doubles.
 * Must not: decide that two events are one payment (the caller does, by
 * cf_payment_id), or clear an attention flag. */
#include <string.h>

#include "ledger.h"
#include "num.h"

static const char *const state_names[] = {
	[LEDGER_PENDING] = "PENDING",
	[LEDGER_PAID] = "PAID",
	[LEDGER_FAILED] = "FAILED",
	[LEDGER_USER_DROPPED] = "USER_DROPPED",
};

#define NSTATES	(sizeof(state_names) / sizeof(state_names[0]))

static const char *const flag_names[LEDGER_FLAGS] = {
	"double_payment",
	"amount_mismatch",
	"late_failure",
};

_Static_assert(LEDGER_DOUBLE_PAYMENT == 1u << 0 &&
    LEDGER_AMOUNT_MISMATCH == 1u << 1 && LEDGER_LATE_FAILURE == 1u << 2,
    "flag i is named by flag_names[i]");

#define TYPE_LINK	"PAYMENT_LINK_EVENT"

int
ledger_touches(const char *type, const char *order_id)
{
	if (type == NULL || order_id == NULL || order_id[0] == '\0')
		return 0;
	return strcmp(type, "PAYMENT_SUCCESS_WEBHOOK") == 0 ||
	    strcmp(type, "PAYMENT_FAILED_WEBHOOK") == 0 ||
	    strcmp(type, "PAYMENT_USER_DROPPED_WEBHOOK") == 0 ||
	    strcmp(type, TYPE_LINK) == 0;
}

enum ledger_outcome
ledger_outcome_of(const char *type, const char *payment_status)
{
	const char *s = payment_status;

	if (type == NULL)
		return LEDGER_SEEN;
	if (strcmp(type, "PAYMENT_SUCCESS_WEBHOOK") == 0)
		return LEDGER_SUCCESS;
	if (strcmp(type, "PAYMENT_FAILED_WEBHOOK") == 0)
		return LEDGER_FAILURE;
	if (strcmp(type, "PAYMENT_USER_DROPPED_WEBHOOK") == 0)
		return LEDGER_DROP;
	if (strcmp(type, TYPE_LINK) != 0 || s == NULL)
		return LEDGER_SEEN;
	if (strcmp(s, "SUCCESS") == 0)
		return LEDGER_SUCCESS;
	if (strcmp(s, "FAILED") == 0)
		return LEDGER_FAILURE;
	if (strcmp(s, "USER_DROPPED") == 0)
		return LEDGER_DROP;
	return LEDGER_SEEN;
}

void
ledger_order_init(struct ledger_order *o, int64_t first_event_at)
{
	memset(o, 0, sizeof(*o));
	o->state = LEDGER_PENDING;
	o->first_event_at = first_event_at;
	o->paid_at = -1;
}

/* A PAID order whose order amount is known and whose payment does not
 * match it: a different decimal, no amount at all or one that is not a
 * number, or a different currency. Without an order amount there is
 * nothing to compare (it may come with a later event). */
static int
mismatch(const struct ledger_order *o)
{
	int c = 0;

	if (o->state != LEDGER_PAID || o->order_amount == NULL)
		return 0;
	if (o->paid_amount == NULL ||
	    num_decimal_cmp(o->paid_amount, o->order_amount, &c) == -1 ||
	    c != 0)
		return 1;
	return o->paid_currency != NULL && o->currency != NULL &&
	    strcmp(o->paid_currency, o->currency) != 0;
}

static void
success(struct ledger_order *o, const struct ledger_event *ev,
    struct ledger_step *step)
{
	if (!ev->new_payment)
		return;			/* the twin of a counted payment */
	o->successes++;
	if (o->state == LEDGER_PAID) {
		o->attention |= LEDGER_DOUBLE_PAYMENT;
		return;
	}
	o->state = LEDGER_PAID;
	o->paid_amount = ev->amount;
	o->paid_currency = ev->currency;
	o->paid_at = ev->at_ms;
	o->paid_event_id = ev->event_id;
	step->paid_now = 1;
}

void
ledger_apply(struct ledger_order *o, const struct ledger_event *ev,
    struct ledger_step *step)
{
	unsigned before = o->attention;

	step->paid_now = 0;
	if (o->order_amount == NULL)
		o->order_amount = ev->order_amount;
	if (o->currency == NULL)
		o->currency = ev->order_currency != NULL ?
		    ev->order_currency : ev->currency;
	switch (ev->outcome) {
	case LEDGER_SUCCESS:
		success(o, ev, step);
		break;
	case LEDGER_FAILURE:
	case LEDGER_DROP:
		if (o->state == LEDGER_PAID)
			o->attention |= LEDGER_LATE_FAILURE;
		else
			o->state = ev->outcome == LEDGER_FAILURE ?
			    LEDGER_FAILED : LEDGER_USER_DROPPED;
		break;
	case LEDGER_SEEN:
		break;
	}
	if ((o->attention & LEDGER_AMOUNT_MISMATCH) == 0 && mismatch(o))
		o->attention |= LEDGER_AMOUNT_MISMATCH;
	o->last_event_id = ev->event_id;
	o->last_event_at = ev->at_ms;
	step->raised = o->attention & ~before;
}

const char *
ledger_state_name(enum ledger_state s)
{
	return (unsigned)s < NSTATES ? state_names[s] : "PENDING";
}

int
ledger_state_parse(const char *s, enum ledger_state *ret)
{
	size_t i;

	for (i = 0; s != NULL && i < NSTATES; i++) {
		if (strcmp(s, state_names[i]) == 0) {
			*ret = (enum ledger_state)i;
			return 0;
		}
	}
	return -1;
}

const char *
ledger_attention_name(unsigned i)
{
	return i < LEDGER_FLAGS ? flag_names[i] : "";
}

void
ledger_attention_text(unsigned flags, char *out, size_t n)
{
	size_t len = 0, l;
	unsigned i;

	if (n == 0)
		return;
	out[0] = '\0';
	for (i = 0; i < LEDGER_FLAGS; i++) {
		if ((flags & (1u << i)) == 0)
			continue;
		l = strlen(flag_names[i]) + (len > 0);
		if (len + l + 1 > n)
			return;
		if (len > 0)
			out[len++] = ',';
		memcpy(out + len, flag_names[i], strlen(flag_names[i]) + 1);
		len += strlen(flag_names[i]);
	}
}

unsigned
ledger_attention_parse(const char *s)
{
	unsigned flags = 0, i;
	size_t n;

	while (s != NULL && *s != '\0') {
		n = strcspn(s, ",");
		for (i = 0; i < LEDGER_FLAGS; i++) {
			if (strlen(flag_names[i]) == n &&
			    strncmp(s, flag_names[i], n) == 0)
				flags |= 1u << i;
		}
		s += n;
		if (*s == ',')
			s++;
	}
	return flags;
}
