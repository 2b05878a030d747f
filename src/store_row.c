/* store_row.c - an events row read back into a struct event_row on SQLite:
 * by cfhookctl's queries (store_admin.c) and by the forwarder before a
 * delivery (store_outbox.c). One reader for the columns of STORE_ROW_COLS
 * (store_be.h), so a column added to the row is read the same way
 * everywhere.
 *
 * Must not: log (each caller says what it was reading), run or step a
 * statement, or keep anything of it. */
#include <string.h>

#include <sqlite3.h>

#include "event_row.h"
#include "store_be.h"
#include "store_int.h"

int64_t
store_column_time(sqlite3_stmt *s, int col)
{
	if (sqlite3_column_type(s, col) == SQLITE_NULL)
		return -1;
	return sqlite3_column_int64(s, col);
}

int
store_row_read(sqlite3_stmt *s, int with_body, struct event_row *e)
{
	char **text[EVENT_ROW_TEXTS];
	size_t i;
	int bad = 0;

	memset(e, 0, sizeof(*e));
	event_row_texts(e, text);
	e->id = sqlite3_column_int64(s, 0);
	for (i = 0; i < EVENT_ROW_TEXTS; i++)
		bad |= store_column_copy(s, (int)i + 1, text[i], NULL);
	e->received_at = store_column_time(s, 10);
	e->last_seen_at = store_column_time(s, 11);
	e->deliveries = sqlite3_column_int64(s, 12);
	bad |= store_column_copy(s, 13, &e->forward_state, NULL);
	e->forward_attempts = sqlite3_column_int64(s, 14);
	bad |= store_column_copy(s, 15, &e->last_error, NULL);
	e->forwarded_at = store_column_time(s, 16);
	e->next_attempt_at = store_column_time(s, 17);
	e->replay_base = sqlite3_column_int64(s, 18);
	bad |= store_column_copy(s, 19, &e->idempotency_key, NULL);
	bad |= store_column_copy(s, 20, &e->webhook_version, NULL);
	bad |= store_column_copy(s, 21, &e->order_state, NULL);
	e->order_paid_now = sqlite3_column_type(s, 22) == SQLITE_NULL ? -1 :
	    sqlite3_column_int(s, 22) != 0;
	bad |= store_column_copy(s, 23, &e->order_attention, NULL);
	if (with_body) {
		e->body_is_blob =
		    sqlite3_column_type(s, STORE_ROW_NCOLS) == SQLITE_BLOB;
		bad |= store_column_copy(s, STORE_ROW_NCOLS, &e->body,
		    &e->body_len);
	}
	if (bad) {
		event_row_done(e);
		return -1;
	}
	return 0;
}
