/* store_int.h - what the store files share among themselves: the SQLite
 * handle and the helpers that take it. Private: only src/store*.c include
 * it (scripts/check-layers), so nothing else can reach a database handle
 * or run SQL. */
#ifndef CFHOOK_STORE_INT_H
#define CFHOOK_STORE_INT_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "store.h"

struct store_file;

/* The connection of a struct store. */
sqlite3	*store_db(struct store *);
/* The files held (NULL for STORE_READ and STORE_READONLY). */
struct store_file *store_files(struct store *);
/* The monotonic ms at which waits for a lock give up (0:
 * STORE_BUSY_TIMEOUT_MS from when each wait starts). */
void	store_set_deadline(struct store *, int64_t mono_ms);
/* A malloc'd copy of column i's bytes exactly as stored (TEXT or BLOB)
 * with a NUL after them, *len (if not NULL) their count; *ret NULL for SQL
 * NULL. Returns 0, or -1 on no memory. */
int	store_column_copy(sqlite3_stmt *, int i, char **ret, size_t *len);

/* sqlite3_busy_handler() callback; `arg` is a struct store_wait. Waits for
 * another connection's lock until the deadline, so that all the steps of a
 * batch share one wait. */
int	store_busy_wait(void *arg, int count);
/* Connection settings for the WAL files (every mode): they stay when the
 * last connection closes, and journal_size_limit. 0 / -1 (logged). */
int	store_wal_setup(sqlite3 *db, const char *path);
/* A short fixed phrase for the connection's last error ("disk full", "I/O
 * error (No space left on device)", ...), for /healthz. */
void	store_fault_phrase(sqlite3 *db, char *out, size_t size);

/* SQL steps of store_admin*.c and store_orders.c that log their own
 * failure ("store: 'PATH': what: sqlite message"). */
void	store_admin_db_error(sqlite3 *, const char *what);
/* 0, or -1 with *ret NULL. */
int	store_admin_prep(sqlite3 *, const char *sql, sqlite3_stmt **ret);
int	store_admin_exec(sqlite3 *, const char *sql);
/* COMMIT when ok (0 when that worked), else ROLLBACK and -1. */
int	store_admin_tx_end(sqlite3 *, int ok);
/* Steps to SQLITE_DONE; *changes (may be NULL) gets the rows changed. */
int	store_admin_step_done(sqlite3 *, sqlite3_stmt *, int64_t *changes);
/* The integer in the first column of `sql`'s first row; `arg` is bound to
 * ?1 when the statement has a parameter. 0 / -1. */
int	store_admin_count(sqlite3 *, const char *sql, int64_t arg,
	    int64_t *ret);

#endif
