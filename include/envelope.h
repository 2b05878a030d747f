/* envelope.h - the JSON object handed to the merchant for each event
 * (DESIGN "Forwarding"). Pure: built from a stored row, no I/O. */
#ifndef CFHOOK_ENVELOPE_H
#define CFHOOK_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

/* One events row as the forwarder and cfhookctl read it. Strings are
 * borrowed; NULL where the column is NULL. */
struct envelope_row {
	int64_t	 id;
	const char *event_key;
	const char *type;
	const char *cf_payment_id;
	const char *order_id;
	const char *payment_status;
	const char *amount;
	const char *currency;
	const char *content_type;	/* decides `format`: json | form */
	const char *body;		/* raw bytes as stored */
	size_t	 body_len;
	int64_t	 received_at_ms;	/* unix ms; printed as RFC 3339 UTC */
	unsigned attempt;		/* 1 for the first delivery */
	const char *idempotency_key;	/* headers recorded as received */
	const char *webhook_version;
	/* The order after this event, fixed when it was recorded (DESIGN
	 * "Orders"); order_state NULL: the event is outside the ledger. */
	const char *order_state;
	int	 order_paid_now;
	const char *order_attention;
};

/* The envelope as one line of compact JSON (no newline inside or at the
 * end): id, event_key, type, cf_payment_id, order_id, payment_status, amount,
 * currency, received_at, attempt, format, idempotency_key, webhook_version,
 * order_state, order_paid_now, order_attention, then the details of the
 * event's family (event.h: link_status, refund_id, ...; null when the body
 * lacks one), then payload. Returns a malloc'd string and its length, or
 * NULL on no memory. */
char	*envelope_build(const struct envelope_row *, size_t *len);

#endif
