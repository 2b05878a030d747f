/* ledger.h - the payment state of an order, one event at a time (DESIGN
 * "Orders").  Pure.
 *
 * Merchants fulfil orders, not events: this says, after each new event,
 * whether its order is PAID (final: a later failure never downgrades it),
 * whether this very event made it so, and what needs a person's attention.
 * The caller (store_ledger.c) reads the order, applies one new event in
 * the event's own transaction, and writes it back; a duplicate delivery is
 * never applied. */
#ifndef CFHOOK_LEDGER_H
#define CFHOOK_LEDGER_H

#include <stddef.h>
#include <stdint.h>

enum ledger_state {
	LEDGER_PENDING,
	LEDGER_PAID,
	LEDGER_FAILED,
	LEDGER_USER_DROPPED
};

/* Attention flags, listed in this order in the `attention` column. */
#define LEDGER_DOUBLE_PAYMENT	0x1u	/* a second distinct payment succeeded */
#define LEDGER_AMOUNT_MISMATCH	0x2u	/* paid amount != order amount */
#define LEDGER_LATE_FAILURE	0x4u	/* a failure or drop after PAID */
#define LEDGER_FLAGS		3
/* Longest ledger_attention_text() with its NUL. */
#define LEDGER_ATTENTION_MAX	\
	sizeof("double_payment,amount_mismatch,late_failure")

/* What an event says happened to its order's payment. */
enum ledger_outcome {
	LEDGER_SEEN,		/* nothing: amount and currency at most */
	LEDGER_SUCCESS,
	LEDGER_FAILURE,
	LEDGER_DROP
};

/* One new event of the order. Strings borrowed; NULL where the event has
 * none. Amounts are decimal text as sent, compared as decimals. */
struct ledger_event {
	enum ledger_outcome outcome;
	/* LEDGER_SUCCESS: no earlier success of this order had the same
	 * cf_payment_id (a Payment Link event and its twin
	 * PAYMENT_SUCCESS_WEBHOOK are one payment: the caller looks the id
	 * up). A success without an id is always new. */
	int	 new_payment;
	const char *amount;		/* the payment's amount and currency */
	const char *currency;
	const char *order_amount;	/* what the order asked for */
	const char *order_currency;
	int64_t	 event_id;
	int64_t	 at_ms;			/* received_at */
};

/* One orders row. Strings are borrowed from whoever filled them (the row
 * read, or an event applied), so keep those alive while the order is. */
struct ledger_order {
	enum ledger_state state;
	const char *order_amount;	/* first one an event carried */
	const char *currency;		/* the order's, else the payment's */
	const char *paid_amount;	/* of the first successful payment */
	const char *paid_currency;
	int64_t	 successes;		/* distinct successful payments */
	int64_t	 first_event_at;
	int64_t	 paid_at;		/* -1 until PAID */
	int64_t	 paid_event_id;		/* 0 until PAID */
	int64_t	 last_event_id;
	int64_t	 last_event_at;
	unsigned attention;		/* LEDGER_* flags; never cleared */
};

/* What applying one event did. */
struct ledger_step {
	int	 paid_now;		/* this event made the order PAID */
	unsigned raised;		/* flags this event raised first */
};

/* Whether an event of this type and order_id is part of the ledger: a
 * payment event (PAYMENT_{SUCCESS,FAILED,USER_DROPPED}_WEBHOOK) or a
 * PAYMENT_LINK_EVENT, with a non-empty order_id. */
int	ledger_touches(const char *type, const char *order_id);
/* A payment event's outcome is its type; a link event's is its
 * transaction_status (the payment_status column): SUCCESS, FAILED,
 * USER_DROPPED, anything else (an expired link, no transaction) SEEN. */
enum ledger_outcome ledger_outcome_of(const char *type,
	    const char *payment_status);
/* An order before its first event: PENDING, nothing known. */
void	ledger_order_init(struct ledger_order *, int64_t first_event_at);
/* Apply one new event; *step says what it did. */
void	ledger_apply(struct ledger_order *, const struct ledger_event *,
	    struct ledger_step *step);

/* "PENDING", "PAID", "FAILED", "USER_DROPPED". */
const char *ledger_state_name(enum ledger_state);
/* 0 and *ret, or -1 for any other text. */
int	ledger_state_parse(const char *s, enum ledger_state *ret);
/* "double_payment", "amount_mismatch", "late_failure"; i < LEDGER_FLAGS
 * is the flag 1u << i. */
const char *ledger_attention_name(unsigned i);
/* The flags as a comma list in LEDGER_* order ("" for none); n >=
 * LEDGER_ATTENTION_MAX always fits. */
void	ledger_attention_text(unsigned flags, char *out, size_t n);
/* The flags named in a comma list; unknown names are ignored. */
unsigned ledger_attention_parse(const char *s);

#endif
