/* event.h - what a verified webhook says: type, ids, amount, event_key.  Pure.
 *
 * Called only after verification; never fails on odd content: a body it
 * cannot read becomes type "UNKNOWN" with a key over the raw bytes, so nothing
 * Cashfree signed is lost (DESIGN "Events and deduplication"). */
#ifndef CFHOOK_EVENT_H
#define CFHOOK_EVENT_H

#include "attr.h"

#include <stddef.h>

#include "form.h"

enum event_format {
	EVENT_JSON,
	EVENT_FORM
};

/* What a body says beyond the columns, read the way the columns are
 * (strings as sent, numbers by their token): for the envelope (DESIGN
 * "Forwarding"), so that a hook need not dig in the payload, and for the
 * order ledger (DESIGN "Orders"). Each belongs to the types of one family
 * and is read only for them; event_detail_applies() says which. Nothing
 * here keys an event. */
enum event_detail {
	EVENT_ORDER_AMOUNT,	/* payment and Payment Link events */
	EVENT_ORDER_CURRENCY,
	EVENT_LINK_ID,		/* PAYMENT_LINK_EVENT */
	EVENT_LINK_STATUS,
	EVENT_LINK_AMOUNT,
	EVENT_LINK_AMOUNT_PAID,
	EVENT_REFUND_ID,	/* REFUND_STATUS_WEBHOOK */
	EVENT_CF_REFUND_ID,
	EVENT_REFUND_STATUS,
	EVENT_REFUND_AMOUNT,
	EVENT_REFUND_CURRENCY,
	EVENT_REFUND_TYPE,
	EVENT_SETTLEMENT_ID,	/* SETTLEMENT_*, VENDOR_SETTLEMENT_* */
	EVENT_SETTLEMENT_STATUS,
	EVENT_SETTLEMENT_AMOUNT,
	EVENT_SETTLEMENT_UTR,
	EVENT_DISPUTE_ID,	/* DISPUTE_* */
	EVENT_DISPUTE_STATUS,
	EVENT_DISPUTE_AMOUNT,
	EVENT_DETAIL_COUNT
};

/* All strings are owned by the event (malloc'd, NUL-free C strings); NULL
 * means the body does not carry that field. */
struct event {
	char	*type;		/* never NULL; "UNKNOWN" when absent */
	char	*event_key;	/* never NULL */
	char	*cf_payment_id;	/* digits exactly as sent (text or number) */
	char	*order_id;
	char	*payment_status;
	char	*amount;	/* decimal text as sent (a number: its token) */
	char	*currency;
	char	*event_time;
	char	*detail[EVENT_DETAIL_COUNT];	/* NULL outside its family */
	enum event_format format;
	int	 json_object;	/* event_from_json: the body parsed to an
				 * object (event_parse_json), so it can be
				 * handed over as one; 0 otherwise */
};

enum event_result {
	EVENT_OK,
	EVENT_NOMEM,
	EVENT_REFUSED		/* strict form fields: see event_from_form() */
};

/* From a verified JSON body (parsed with duplicate keys rejected, no trailing
 * bytes; a \u0000, a lone surrogate escape or a number too large for
 * jansson spoils only its own field). Numeric ids keep their token exactly as
 * sent ("1453002795.0", 20 digits). Every part of the event_key comes from
 * the body. Returns 0 and fills *ret (caller storage), or -1 on no memory
 * (*ret then needs no event_done). */
int	event_from_json(const char *body, size_t len, struct event *ret) MUST_CHECK;
/* From a verified form body already decoded in `form`. `strict`: the form
 * was verified only by its `signature` field (spec sections 5.2 and 11), so
 * every field any rule reads must match its grammar (grammar.h), the type
 * must be there, and a Payment Link event must be consistent (PAID only with
 * link_amount_paid >= link_amount and a transaction_id, PARTIALLY_PAID only
 * below); otherwise EVENT_REFUSED with a reason for the log in why (no
 * field values beyond amounts and statuses). EVENT_OK fills *ret. */
enum event_result event_from_form(const struct form *, const char *body,
	    size_t len, int strict, struct event *ret, char *why,
	    size_t why_len);
struct json_t;
/* The body parsed as event_from_json() reads it: duplicate keys refused, no
 * trailing bytes, a NUL inside a string allowed, numbers too large for
 * jansson blanked (their text stays in the body). *ret is the object (a
 * reference for the caller to json_decref) or NULL when the body is not a
 * JSON object. Returns 0, or -1 on no memory. */
int	event_parse_json(const char *body, size_t len, struct json_t **ret) MUST_CHECK;
/* An event as intake read it, from a stored row (the envelope and the
 * schema upgrade read stored bodies again): a form when the content type's
 * media type is application/x-www-form-urlencoded (intake refused every
 * other form), else JSON; a form that no longer decodes reads as UNKNOWN.
 * Returns 0 and fills *ret, or -1 on no memory. */
int	event_from_row(const char *content_type, const char *body, size_t len,
	    struct event *ret);
/* Whether a Content-Type's media type (before any ';' parameter, blanks
 * trimmed, any case) is application/x-www-form-urlencoded. */
int	event_content_is_form(const char *content_type);
/* The envelope's name of a detail ("link_status"). */
const char *event_detail_name(enum event_detail);
/* Whether the detail belongs to events of this type's family. */
int	event_detail_applies(const char *type, enum event_detail);
/* Frees the strings. NULL-safe and safe on a zeroed event. */
void	event_done(struct event *);

#endif
