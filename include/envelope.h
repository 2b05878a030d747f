/* envelope.h - the JSON object handed to the merchant for each event
 * (DESIGN "Forwarding"). Pure: built from a stored row, no I/O. */
#ifndef CFHOOK_ENVELOPE_H
#define CFHOOK_ENVELOPE_H

#include <stddef.h>

#include "event.h"
#include "event_row.h"

/* The envelope of `row` for delivery attempt `attempt` (1 for the first)
 * as one line of compact JSON (no newline inside or at the end): id,
 * event_key, type, cf_payment_id, order_id, payment_status, amount,
 * currency, received_at (RFC 3339 UTC), attempt, format (json | form, by
 * content_type), idempotency_key, webhook_version, order_state,
 * order_paid_now, order_attention, then the details of the event's family
 * (event.h: link_status, refund_id, ...; null when the body lacks one),
 * then payload. Reads the columns intake wrote and the body; the delivery
 * columns play no part. `read`: the body as event_from_row() reads it, when
 * the caller has that already (fresh.h), else NULL and it is read here.
 * Returns a malloc'd string and its length, or NULL on no memory. */
char	*envelope_build(const struct event_row *row, unsigned attempt,
	    const struct event *read, size_t *len);

#endif
