/* store_pg_row.c - an events row read back into a struct event_row on
 * PostgreSQL: by cfhookctl's queries (store_pg_admin.c) and by the
 * forwarder before a delivery (store_pg_outbox.c); the twin of
 * store_row.c, reading the same STORE_ROW_COLS (store_be.h).
 *
 * Must not: log (each caller says what it was reading) or keep anything of
 * the result. */
#include <string.h>

#include <libpq-fe.h>

#include "event_row.h"
#include "store_be.h"
#include "store_pg.h"
#include "utf8.h"

int
pg_row_read(const PGresult *res, int r, int with_body, struct event_row *e)
{
	char **text[EVENT_ROW_TEXTS];
	size_t i;
	int bad = 0;

	memset(e, 0, sizeof(*e));
	event_row_texts(e, text);
	e->id = pg_col_int(res, r, 0, 0);
	for (i = 0; i < EVENT_ROW_TEXTS; i++)
		bad |= pg_col_copy(res, r, (int)i + 1, text[i], NULL);
	e->received_at = pg_col_int(res, r, 10, -1);
	e->last_seen_at = pg_col_int(res, r, 11, -1);
	e->deliveries = pg_col_int(res, r, 12, 0);
	bad |= pg_col_copy(res, r, 13, &e->forward_state, NULL);
	e->forward_attempts = pg_col_int(res, r, 14, 0);
	bad |= pg_col_copy(res, r, 15, &e->last_error, NULL);
	e->forwarded_at = pg_col_int(res, r, 16, -1);
	e->next_attempt_at = pg_col_int(res, r, 17, -1);
	e->replay_base = pg_col_int(res, r, 18, 0);
	bad |= pg_col_copy(res, r, 19, &e->idempotency_key, NULL);
	bad |= pg_col_copy(res, r, 20, &e->webhook_version, NULL);
	bad |= pg_col_copy(res, r, 21, &e->order_state, NULL);
	e->order_paid_now = (int)pg_col_int(res, r, 22, -1);
	if (e->order_paid_now > 1)
		e->order_paid_now = 1;
	bad |= pg_col_copy(res, r, 23, &e->order_attention, NULL);
	if (with_body && !bad) {
		bad |= pg_col_copy(res, r, STORE_ROW_NCOLS, &e->body,
		    &e->body_len);
		/* As SQLite keeps it: TEXT only when it is UTF-8 text. */
		e->body_is_blob = e->body != NULL &&
		    !utf8_text(e->body, e->body_len);
	}
	if (bad) {
		event_row_done(e);
		return -1;
	}
	return 0;
}
