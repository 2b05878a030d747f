/* store_stats.c - counts for the STATUS= line and /metrics.
 *
 * Read-only; each query uses an index (events_received, events_pending) so
 * a large table costs little. Runs on its own connection. */
#include <sqlite3.h>

#include "log.h"
#include "store_int.h"
#include "store_stats.h"

static int
count(sqlite3 *db, const char *sql, int64_t arg, long long *ret)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		goto out;
	if (sqlite3_bind_parameter_count(st) > 0 &&
	    sqlite3_bind_int64(st, 1, arg) != SQLITE_OK)
		goto out;
	if (sqlite3_step(st) != SQLITE_ROW)
		goto out;
	*ret = sqlite3_column_int64(st, 0);
	rc = 0;
out:
	if (rc == -1)
		log_debug("store: counting: %s", sqlite3_errmsg(db));
	(void)sqlite3_finalize(st);
	return rc;
}

int
store_sqlite_counts(struct store *s, int64_t since_ms,
    struct store_counts *ret)
{
	struct store_counts c;
	sqlite3 *db = store_db(s);

	if (count(db, "SELECT count(*) FROM events WHERE received_at >= ?",
	    since_ms, &c.since) == -1 ||
	    count(db, "SELECT count(*) FROM events WHERE forward_state = "
	    "'pending'", 0, &c.pending) == -1 ||
	    count(db, "SELECT count(*) FROM events WHERE forward_state = "
	    "'dead'", 0, &c.dead) == -1)
		return -1;
	*ret = c;
	return 0;
}
