/* store_pg_admin.h - what the PostgreSQL backend's cfhookctl files
 * (store_pg_admin*.c, store_pg_orders.c, store_copy.c) share: one
 * transaction per call, queries that log their own failure. Private to the
 * store files. */
#ifndef CFHOOK_STORE_PG_ADMIN_H
#define CFHOOK_STORE_PG_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "store_admin.h"
#include "store_pg.h"

/* A cfhookctl call may take longer than a batch: a list of 100,000 rows,
 * a prune batch waiting for the daemons' locks. */
#define PG_ADMIN_TIMEOUT_MS	60000

/* BEGIN (write) or a REPEATABLE READ, READ ONLY snapshot, with the call's
 * deadline. 0 / -1 (logged). */
int	pg_admin_begin(struct pg_store *, int write);
/* COMMIT when ok (0 when it committed), else ROLLBACK and -1. */
int	pg_admin_end(struct pg_store *, int ok);
/* One-off SQL; the parameters are released; NULL on failure (logged). */
PGresult *pg_admin_query(struct pg_store *, const char *sql,
	    struct pg_params *p);
/* The integer in the first column of `sql`'s first row, with `arg` as $1
 * when has_arg. 0 / -1 (logged). */
int	pg_admin_count(struct pg_store *, const char *sql, int64_t arg,
	    int has_arg, int64_t *ret);
/* An event's forward_log rows, oldest first (as store_admin_get()). */
int	pg_admin_history(struct pg_store *, int64_t event_id,
	    struct store_admin_attempt **ret, size_t *nret);

#endif
