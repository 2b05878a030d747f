/* store_int.h - what the SQLite backend's files share among themselves:
 * the SQLite handle, the helpers that take it, and the backend's entries
 * (store_sqlite_backend, store_be.h). Private: only src/store*.c include
 * it (scripts/check-layers), so nothing else can reach a database handle
 * or run SQL. */
#ifndef CFHOOK_STORE_INT_H
#define CFHOOK_STORE_INT_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "event_row.h"
#include "store.h"
#include "store_be.h"
#include "store_health.h"

struct store_file;

/* The lock-wait state of one connection (its sqlite3_busy_handler). */
struct store_wait {
	int64_t	 deadline_ms;	/* monotonic; 0: STORE_BUSY_TIMEOUT_MS a wait */
	int64_t	 start_ms;	/* when the current wait began */
	uint64_t ended;		/* store_write_ended() calls seen by the
				 * wait's last step */
};

/* The connection of an SQLite struct store (NULL for another backend's). */
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
/* A time column in unix ms, -1 for SQL NULL. */
int64_t	store_column_time(sqlite3_stmt *, int col);
/* store_row.c: the current row of a "SELECT STORE_ROW_COLS[, body]"
 * (store_be.h) into *e, zeroed first; the body (column STORE_ROW_NCOLS)
 * too when with_body. Returns 0, or -1 on no memory (not logged; nothing
 * is left allocated). */
int	store_row_read(sqlite3_stmt *, int with_body, struct event_row *e);

/* The WAL frames after the last commit. */
int	store_wal_frames(const struct store *);
/* How the writer's checkpoints are paced (store_health.c), per store. */
struct store_pace {
	int	 frames;	/* store_wal_frames() at the last complete
				 * checkpoint; -1: none yet */
	int	 every;		/* a batch checkpoints at this many frames
				 * (0: not paced yet) */
	int64_t	 paced_ms;	/* when `every` was set (monotonic) */
	int	 failing;	/* logged once, until one succeeds */
	int	 behind;	/* the last one left frames behind */
};
struct store_pace *store_pace(struct store *);
/* Move WAL frames into the database file: PASSIVE, or TRUNCATE (waits up
 * to wait_ms for readers, then empties the WAL file and gives its space
 * back). Counted in the metrics. */
enum store_ckpt store_checkpoint(struct store *, int truncate, int wait_ms);

/* The backend's entries: store_health.c, store_stats.c, store_admin*.c,
 * store_orders.c (the names without "sqlite_" are the public ones they
 * stand behind). */
enum store_file_state store_sqlite_check_files(struct store *);
enum store_file_path store_sqlite_path_state(struct store *);
int64_t	store_sqlite_wal_bytes(struct store *);
int64_t	store_sqlite_free_bytes(struct store *);
enum store_probe store_sqlite_probe(struct store *, int wait_ms);
enum store_ckpt store_sqlite_maintain(struct store *, enum store_maint);
int	store_sqlite_behind(struct store *, char *detail, size_t n);
int	store_sqlite_counts(struct store *, int64_t since_ms,
	    struct store_counts *ret);
int	store_sqlite_admin_status(struct store *, int64_t now,
	    int64_t day_start, struct store_admin_status *ret);
int	store_sqlite_admin_list(struct store *,
	    const struct store_admin_filter *f, struct event_row **rows,
	    size_t *n);
enum store_admin_result store_sqlite_admin_get(struct store *, int64_t id,
	    const char *key, struct event_row *ret,
	    struct store_admin_attempt **hist, size_t *nhist);
int	store_sqlite_admin_tombstone(struct store *, const char *key,
	    int64_t *pruned_at, int64_t *deliveries);
int	store_sqlite_admin_replay(struct store *,
	    struct store_admin_replay *req, size_t n);
int	store_sqlite_admin_replay_dead(struct store *, int64_t **ids,
	    size_t *n);
int	store_sqlite_admin_prune(struct store *, int64_t before, int64_t now,
	    int dry_run, struct store_admin_prune *ret);
int	store_sqlite_orders_list(struct store *,
	    const struct store_orders_filter *f, struct store_order **rows,
	    size_t *n);
enum store_admin_result store_sqlite_orders_get(struct store *,
	    const char *order_id, struct store_order_timeline *ret);

/* sqlite3_busy_handler() callback; `arg` is a struct store_wait. Waits for
 * another connection's lock until the deadline, so that all the steps of a
 * batch share one wait. A step ends early when a connection of this
 * process ends its write transaction (store_write_ended()). */
int	store_busy_wait(void *arg, int count);
/* A connection of this process ended a write transaction (COMMIT or
 * ROLLBACK, whatever its result): wakes the busy waits of the others at
 * once instead of at the end of their sleep. Any thread. */
void	store_write_ended(void);
/* Intake's writer around taking the write lock (BEGIN IMMEDIATE): on 1
 * before, 0 after, whatever the result. A connection that may wait,
 * between two write transactions, lets it go first (store_write_yield). */
void	store_write_wanted(int on);
/* Whether intake's writer wants the lock now or wanted it within the last
 * within_ms. */
int	store_write_recent(int within_ms);
/* Right after this thread's store_write_ended(): if a connection wanted the
 * lock then, wait until another write transaction of this process ends
 * (it got the lock and is done, or gave up), at most max_ms. Returns 1 if
 * it waited for one, else 0. */
int	store_write_yield(int max_ms);
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
