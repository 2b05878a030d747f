/* event_row.h - one row of the events table as it is read back (DESIGN
 * "Database"): by the forwarder for a delivery, by cfhookctl to show it.
 * Pure: the store fills the row (store_admin.h, store_outbox.h), nothing
 * here reads a database.
 *
 * A new column that the envelope, the hook or cfhookctl needs is one more
 * field here, one more name in the store's column list (STORE_ROW_COLS)
 * and one more line in each backend's reader (store_row.c,
 * store_pg_row.c). */
#ifndef CFHOOK_EVENT_ROW_H
#define CFHOOK_EVENT_ROW_H

#include <stddef.h>
#include <stdint.h>

/* Every column of an events row but the backend's own (PostgreSQL's
 * leases). Strings are owned: malloc'd copies of the bytes as stored with
 * a NUL added, NULL for SQL NULL. Times are unix ms, -1 for SQL NULL. */
struct event_row {
	int64_t	 id;
	char	*event_key;
	char	*type;
	char	*cf_payment_id;
	char	*order_id;
	char	*payment_status;
	char	*amount;		/* decimal text as sent */
	char	*currency;
	char	*event_time;
	char	*content_type;		/* decides how the body is read */
	char	*body;			/* exact bytes, NUL added after them;
					 * NULL when the query left it out */
	size_t	 body_len;
	int	 body_is_blob;		/* not UTF-8 text (SQLite: a BLOB) */
	int64_t	 received_at;
	int64_t	 last_seen_at;
	int64_t	 deliveries;
	char	*forward_state;
	int64_t	 forward_attempts;
	char	*last_error;
	int64_t	 forwarded_at;		/* -1: never */
	int64_t	 next_attempt_at;
	int64_t	 replay_base;		/* forward_attempts at the last replay */
	char	*idempotency_key;	/* headers recorded as received */
	char	*webhook_version;
	char	*order_state;		/* the order after this event (DESIGN
					 * "Orders"); NULL: not in the ledger */
	int	 order_paid_now;	/* 1, 0, or -1 (NULL) */
	char	*order_attention;
};

/* The text columns that follow id in a store's row (STORE_ROW_COLS:
 * event_key to content_type), as the fields of e they go into, in that
 * order: one list for every backend's reader. */
#define EVENT_ROW_TEXTS	9
void	event_row_texts(struct event_row *e, char **out[EVENT_ROW_TEXTS]);
/* Frees the strings and zeroes the row. NULL-safe; a zeroed row is
 * fine. */
void	event_row_done(struct event_row *);

#endif
