/* store_api.c - the store's public functions: store_open() picks the
 * backend from the database string (a postgresql:// URI, else an SQLite
 * path), and every other call is handed to the backend the store was
 * opened with (store_be.h). What is the same for both backends (the name,
 * the fault phrase) is kept here.
 *
 * Must not: run SQL, or know anything of a backend beyond its table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "log.h"
#include "store.h"
#include "store_admin.h"
#include "store_be.h"
#include "store_health.h"
#include "store_orders.h"
#include "store_stats.h"

/* RFC 3986 scheme names are case-insensitive; libpq takes these two. */
int
store_is_uri(const char *database)
{
	return database != NULL &&
	    (strncasecmp(database, "postgresql://", 13) == 0 ||
	    strncasecmp(database, "postgres://", 11) == 0);
}

const char *
store_display_name(const char *database, char *out, size_t n)
{
	if (store_is_uri(database))
		return store_pg_mask(database, out, n);
	(void)snprintf(out, n, "%s", database);
	return out;
}

int
store_open(const char *database, enum store_mode mode,
    enum durability durability, struct store **ret)
{
	if (store_is_uri(database))
		return store_pg_open(database, mode, durability, ret);
	return store_sqlite_open(database, mode, durability, ret);
}

int
store_inspect(const char *database, char *note, size_t n)
{
	if (store_is_uri(database))
		return store_pg_inspect(database, note, n);
	return store_sqlite_inspect(database, note, n);
}

int
store_base_init(struct store *st, const struct store_backend *be,
    const char *name, enum store_mode mode, enum durability durability)
{
	char shown[1024];

	st->be = be;
	st->mode = mode;
	st->durability = durability;
	st->fault[0] = '\0';
	st->name = strdup(store_display_name(name, shown, sizeof(shown)));
	if (st->name == NULL) {
		log_error("store: '%s': out of memory", shown);
		return -1;
	}
	return 0;
}

void
store_base_done(struct store *st)
{
	free(st->name);
	st->name = NULL;
}

int64_t
store_batch_deadline(struct store_item *const *items, size_t n)
{
	int64_t oldest = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (items[i]->queued_ms > 0 &&
		    (oldest == 0 || items[i]->queued_ms < oldest))
			oldest = items[i]->queued_ms;
	}
	if (oldest == 0)
		oldest = clock_mono_ms();
	return oldest + STORE_BUSY_TIMEOUT_MS;
}

void
store_close(struct store *st)
{
	if (st != NULL)
		st->be->close(st);
}

const char *
store_path(const struct store *st)
{
	return st->name;
}

enum durability
store_durability(const struct store *st)
{
	return st->durability;
}

void
store_set_fault(struct store *st, const char *what)
{
	(void)snprintf(st->fault, sizeof(st->fault), "%s", what);
}

const char *
store_fault(struct store *st)
{
	return st->fault;
}

int
store_record_batch(struct store *st, struct store_item **items, size_t n,
    int forward_pending)
{
	return st->be->record_batch(st, items, n, forward_pending);
}

int
store_ping(struct store *st)
{
	return st->be->ping(st);
}

enum store_file_state
store_check_files(struct store *st)
{
	return st->be->check_files(st);
}

enum store_file_path
store_path_state(struct store *st)
{
	return st->be->path_state(st);
}

int64_t
store_wal_bytes(struct store *st)
{
	return st->be->wal_bytes(st);
}

int64_t
store_free_bytes(struct store *st)
{
	return st->be->free_bytes(st);
}

enum store_probe
store_probe(struct store *st, int wait_ms)
{
	return st->be->probe(st, wait_ms);
}

enum store_ckpt
store_maintain(struct store *st, enum store_maint when)
{
	return st->be->maintain(st, when);
}

int
store_behind(struct store *st, char *detail, size_t n)
{
	return st->be->behind(st, detail, n);
}

int
store_counts(struct store *st, int64_t since_ms, struct store_counts *ret)
{
	return st->be->counts(st, since_ms, ret);
}

int
store_admin_status(struct store *st, int64_t now, int64_t day_start,
    struct store_admin_status *ret)
{
	return st->be->admin_status(st, now, day_start, ret);
}

int
store_admin_list(struct store *st, const struct store_admin_filter *f,
    struct event_row **rows, size_t *n)
{
	return st->be->admin_list(st, f, rows, n);
}

enum store_admin_result
store_admin_get(struct store *st, int64_t id, const char *key,
    struct event_row *ret, struct store_admin_attempt **hist,
    size_t *nhist)
{
	return st->be->admin_get(st, id, key, ret, hist, nhist);
}

int
store_admin_tombstone(struct store *st, const char *key, int64_t *pruned_at,
    int64_t *deliveries)
{
	return st->be->admin_tombstone(st, key, pruned_at, deliveries);
}

int
store_admin_replay(struct store *st, struct store_admin_replay *req,
    size_t n)
{
	return st->be->admin_replay(st, req, n);
}

int
store_admin_replay_dead(struct store *st, int64_t **ids, size_t *n)
{
	return st->be->admin_replay_dead(st, ids, n);
}

int
store_admin_prune(struct store *st, int64_t before, int64_t now, int dry_run,
    struct store_admin_prune *ret)
{
	return st->be->admin_prune(st, before, now, dry_run, ret);
}

int
store_orders_list(struct store *st, const struct store_orders_filter *f,
    struct store_order **rows, size_t *n)
{
	return st->be->orders_list(st, f, rows, n);
}

enum store_admin_result
store_orders_get(struct store *st, const char *order_id,
    struct store_order_timeline *ret)
{
	return st->be->orders_get(st, order_id, ret);
}
