/* event_detail.c - where the details of event.h are read, for which
 * families of types, and their names in the envelope.
 *
 * Pure: tables and lookups, no parsing (event.c reads the values the same
 * way it reads the columns). Nothing here may key an event: details are
 * for the envelope and the order ledger. */
#include <string.h>

#include "event.h"
#include "event_detail.h"

/* The families of types that details belong to (event.h). */
enum family {
	FAM_PAYMENT = 1u << 0,
	FAM_LINK = 1u << 1,
	FAM_REFUND = 1u << 2,
	FAM_SETTLEMENT = 1u << 3,
	FAM_DISPUTE = 1u << 4
};

/* Whether type is prefix followed by something. */
static int
has_prefix(const char *type, const char *prefix)
{
	size_t n = strlen(prefix);

	return strncmp(type, prefix, n) == 0 && type[n] != '\0';
}

unsigned
event_detail_family(const char *type)
{
	if (type == NULL)
		return 0;
	if (strcmp(type, "PAYMENT_SUCCESS_WEBHOOK") == 0 ||
	    strcmp(type, "PAYMENT_FAILED_WEBHOOK") == 0 ||
	    strcmp(type, "PAYMENT_USER_DROPPED_WEBHOOK") == 0)
		return FAM_PAYMENT;
	if (strcmp(type, "PAYMENT_LINK_EVENT") == 0)
		return FAM_LINK;
	if (strcmp(type, "REFUND_STATUS_WEBHOOK") == 0)
		return FAM_REFUND;
	if (has_prefix(type, "SETTLEMENT_") ||
	    has_prefix(type, "VENDOR_SETTLEMENT_"))
		return FAM_SETTLEMENT;
	if (has_prefix(type, "DISPUTE_"))
		return FAM_DISPUTE;
	return 0;
}

/* Where each detail is read, per family (spec section 3 and Cashfree's
 * samples). The form keys are those of a flattened Payment Link form; a
 * form signed only by its `signature` field must match their grammars
 * (spec section 11: the link amounts are what its status must agree with,
 * and the order amount and currency enter the ledger). */
static const struct event_detail_rule detail_rules[] = {
	{ EVENT_ORDER_AMOUNT, FAM_PAYMENT | FAM_LINK, "data.order.order_amount",
	    "order_amount", GRAMMAR_DECIMAL },
	{ EVENT_ORDER_CURRENCY, FAM_PAYMENT, "data.order.order_currency",
	    "order_currency", GRAMMAR_CURRENCY },
	{ EVENT_ORDER_CURRENCY, FAM_LINK, "data.link_currency",
	    "link_currency", GRAMMAR_CURRENCY },
	{ EVENT_LINK_ID, FAM_LINK, "data.link_id", "link_id", GRAMMAR_ID },
	{ EVENT_LINK_STATUS, FAM_LINK, "data.link_status", "link_status",
	    GRAMMAR_LINK_STATUS },
	{ EVENT_LINK_AMOUNT, FAM_LINK, "data.link_amount", "link_amount",
	    GRAMMAR_DECIMAL },
	{ EVENT_LINK_AMOUNT_PAID, FAM_LINK, "data.link_amount_paid",
	    "link_amount_paid", GRAMMAR_DECIMAL },
	{ EVENT_REFUND_ID, FAM_REFUND, "data.refund.refund_id", NULL,
	    GRAMMAR_ANY },
	{ EVENT_CF_REFUND_ID, FAM_REFUND, "data.refund.cf_refund_id", NULL,
	    GRAMMAR_ANY },
	{ EVENT_REFUND_STATUS, FAM_REFUND, "data.refund.refund_status", NULL,
	    GRAMMAR_ANY },
	{ EVENT_REFUND_AMOUNT, FAM_REFUND, "data.refund.refund_amount", NULL,
	    GRAMMAR_ANY },
	{ EVENT_REFUND_CURRENCY, FAM_REFUND, "data.refund.refund_currency",
	    NULL, GRAMMAR_ANY },
	{ EVENT_REFUND_TYPE, FAM_REFUND, "data.refund.refund_type", NULL,
	    GRAMMAR_ANY },
	{ EVENT_SETTLEMENT_ID, FAM_SETTLEMENT, "data.settlement.settlement_id",
	    NULL, GRAMMAR_ANY },
	{ EVENT_SETTLEMENT_STATUS, FAM_SETTLEMENT, "data.settlement.status",
	    NULL, GRAMMAR_ANY },
	{ EVENT_SETTLEMENT_AMOUNT, FAM_SETTLEMENT,
	    "data.settlement.settlement_amount", NULL, GRAMMAR_ANY },
	{ EVENT_SETTLEMENT_UTR, FAM_SETTLEMENT, "data.settlement.utr", NULL,
	    GRAMMAR_ANY },
	{ EVENT_DISPUTE_ID, FAM_DISPUTE, "data.dispute.dispute_id", NULL,
	    GRAMMAR_ANY },
	{ EVENT_DISPUTE_STATUS, FAM_DISPUTE, "data.dispute.dispute_status",
	    NULL, GRAMMAR_ANY },
	{ EVENT_DISPUTE_AMOUNT, FAM_DISPUTE, "data.dispute.dispute_amount",
	    NULL, GRAMMAR_ANY },
};

#define NDETAIL_RULES	(sizeof(detail_rules) / sizeof(detail_rules[0]))

static const char *const detail_names[EVENT_DETAIL_COUNT] = {
	[EVENT_ORDER_AMOUNT] = "order_amount",
	[EVENT_ORDER_CURRENCY] = "order_currency",
	[EVENT_LINK_ID] = "link_id",
	[EVENT_LINK_STATUS] = "link_status",
	[EVENT_LINK_AMOUNT] = "link_amount",
	[EVENT_LINK_AMOUNT_PAID] = "link_amount_paid",
	[EVENT_REFUND_ID] = "refund_id",
	[EVENT_CF_REFUND_ID] = "cf_refund_id",
	[EVENT_REFUND_STATUS] = "refund_status",
	[EVENT_REFUND_AMOUNT] = "refund_amount",
	[EVENT_REFUND_CURRENCY] = "refund_currency",
	[EVENT_REFUND_TYPE] = "refund_type",
	[EVENT_SETTLEMENT_ID] = "settlement_id",
	[EVENT_SETTLEMENT_STATUS] = "settlement_status",
	[EVENT_SETTLEMENT_AMOUNT] = "settlement_amount",
	[EVENT_SETTLEMENT_UTR] = "settlement_utr",
	[EVENT_DISPUTE_ID] = "dispute_id",
	[EVENT_DISPUTE_STATUS] = "dispute_status",
	[EVENT_DISPUTE_AMOUNT] = "dispute_amount",
};

const char *
event_detail_name(enum event_detail d)
{
	return (unsigned)d < EVENT_DETAIL_COUNT ? detail_names[d] : "";
}

int
event_detail_applies(const char *type, enum event_detail d)
{
	unsigned fam = event_detail_family(type);
	size_t i;

	for (i = 0; i < NDETAIL_RULES; i++) {
		if (detail_rules[i].detail == d &&
		    (detail_rules[i].families & fam) != 0)
			return 1;
	}
	return 0;
}

const struct event_detail_rule *
event_detail_rules(size_t *n)
{
	*n = NDETAIL_RULES;
	return detail_rules;
}
