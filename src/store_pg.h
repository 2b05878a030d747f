/* store_pg.h - what the PostgreSQL backend's files (store_pg*.c) share: the
 * store, its connection, and the helpers that run a statement within a
 * deadline. Private: only src/store*.c include it (scripts/check-layers),
 * so nothing else reaches libpq.
 *
 * Every wait is bounded: a call runs until the store's deadline (a batch's,
 * or STORE_BUSY_TIMEOUT_MS from the call), the server is told the same
 * bound (statement_timeout, lock_timeout), and a connection that overruns it
 * is closed rather than waited for: the next call reconnects (paced). */
#ifndef CFHOOK_STORE_PG_H
#define CFHOOK_STORE_PG_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "store.h"
#include "store_be.h"

#define PG_MAX_PARAMS		24
#define PG_MAX_PREPARED		64	/* statements kept per connection */
/* Reconnects are paced: a server that is down costs one attempt a second,
 * not one per webhook. */
#define PG_RECONNECT_MS		1000

/* One statement, prepared on first use on each connection (by name). */
struct pg_stmt {
	const char *name;		/* unique among the backend's */
	const char *sql;
};

struct pg_outbox;

struct pg_store {
	struct store base;		/* name: the URI, password masked */
	PGconn	*conn;			/* NULL: not connected */
	char	*uri;			/* as configured (may hold a password:
					 * never logged, wiped when freed) */
	int64_t	 deadline_ms;		/* monotonic; 0: each call gets
					 * STORE_BUSY_TIMEOUT_MS */
	int64_t	 next_connect_ms;	/* monotonic: paced reconnects */
	const struct pg_stmt *prepared[PG_MAX_PREPARED];
	size_t	 nprepared;		/* on this connection */
	int	 ping_failing;
	int	 lost;			/* the outbox's connect failure logged */
	char	 claimer[128];		/* claimed_by of this store's claims
					 * (store_pg_outbox.c); "" until used */
	char	 err[256];		/* the last error, one line */
	char	 sqlstate[6];		/* its SQLSTATE ("" when none) */
};

/* The statement parameters of one call: text (NULL for SQL NULL), integers
 * and exact bytes (bytea, sent in binary). Text that is not valid UTF-8
 * (a header, say) is sent with its bad bytes as \xNN: a text column holds
 * UTF-8 only, and an unsigned value must never stop an event from being
 * stored. */
struct pg_params {
	const char *v[PG_MAX_PARAMS];
	int	 len[PG_MAX_PARAMS];
	int	 fmt[PG_MAX_PARAMS];
	char	 num[PG_MAX_PARAMS][24];
	char	*owned[PG_MAX_PARAMS];
	int	 n;
	int	 bad;			/* no memory, or too many */
};

/* The pg_store behind a struct store of this backend. */
static inline struct pg_store *
pg(struct store *st)
{
	return (struct pg_store *)st;
}

/* store_pg_conn.c: the connection. */
/* Connected (or reconnected, when allowed by the pacing) with the session
 * settings of this store's mode and durability. 0 / -1 (fault and st->err
 * set; not logged: the caller knows what a failure means). */
int	pg_ready(struct pg_store *);
/* Close the connection (the next call reconnects). */
void	pg_drop(struct pg_store *);
/* A statement without parameters or rows (BEGIN, SAVEPOINT, a script of
 * several). 0 / -1 (st->err set; not logged). */
int	pg_cmd(struct pg_store *, const char *sql);
/* Run a prepared statement. Returns its result (rows or a command's
 * status; PQclear() it) or NULL (st->err set; not logged). */
PGresult *pg_run(struct pg_store *, const struct pg_stmt *,
	    const struct pg_params *);
/* The same for one-off SQL with parameters (unnamed, not cached). */
PGresult *pg_query(struct pg_store *, const char *sql,
	    const struct pg_params *);
/* COPY ... FROM STDIN (sql) with the data next() appends to out, a chunk
 * of about PG_COPY_CHUNK bytes a call: 1 more to come, 0 the end, -1 give
 * up (the server then refuses the whole COPY). Every chunk gets the store's
 * deadline. 0 / -1 (st->err). */
#define PG_COPY_CHUNK		(256 * 1024)
struct buf;
int	pg_copy_in(struct pg_store *, const char *sql,
	    int (*next)(void *arg, struct buf *out), void *arg);
/* Rows a command changed (UPDATE, INSERT ... ON CONFLICT). */
int64_t	pg_changed(const PGresult *);
/* COMMIT, and only a COMMIT: one the server answers ROLLBACK (the
 * transaction had failed) stored nothing. 0 / -1 (st->err). */
int	pg_commit(struct pg_store *);
/* ROLLBACK when a transaction is open; errors ignored (the connection is
 * dropped if even that fails). */
void	pg_rollback(struct pg_store *);
/* "store: 'URI': what: error" at error level. */
void	pg_log_error(const struct pg_store *, const char *what);
/* Set base.fault from the last error ("unreachable", "disk full", "locked
 * by another connection", ...). */
void	pg_note_fault(struct pg_store *);
/* Monotonic deadline of a call starting now: the store's, else now +
 * STORE_BUSY_TIMEOUT_MS. */
int64_t	pg_deadline(const struct pg_store *);

/* Parameters. */
void	pg_params_init(struct pg_params *);
void	pg_params_done(struct pg_params *);
void	pg_p_text(struct pg_params *, const char *s);
void	pg_p_int(struct pg_params *, int64_t v);
void	pg_p_bytes(struct pg_params *, const char *b, size_t n);

/* Reading a row (text results). A malloc'd copy of the value with a NUL
 * after it (*ret NULL for SQL NULL); a bytea column is decoded to its exact
 * bytes, *len (if not NULL) their count. 0 / -1 (no memory). */
int	pg_col_copy(const PGresult *, int row, int col, char **ret,
	    size_t *len);
/* An integer column; `null_value` for SQL NULL. */
int64_t	pg_col_int(const PGresult *, int row, int col, int64_t null_value);
/* store_pg_row.c: row `row` of a "SELECT STORE_ROW_COLS[, body]"
 * (store_be.h) into *e, zeroed first; the body (column STORE_ROW_NCOLS)
 * too when with_body, body_is_blob set when it is not UTF-8 text. Returns
 * 0, or -1 on no memory (not logged; nothing is left allocated). */
struct event_row;
int	pg_row_read(const PGresult *, int row, int with_body,
	    struct event_row *e);

/* A 64-bit advisory lock key for one thing named by text ("e" and an
 * event_key, "o" and an order_id, "f" and a form digest). */
int64_t	pg_lock_key(const char *kind, const char *name);
/* Take the transaction-level advisory locks on keys[0..n) (sorted here,
 * duplicates skipped), in one statement: every writer takes its locks in
 * the same order, all at once, before it touches a row, so two instances'
 * transactions never wait on each other in a circle. 0 / -1. */
int	pg_lock_keys(struct pg_store *, int64_t *keys, size_t n);

/* store_pg_schema.c: STORE_READ, STORE_READONLY: the schema must be
 * exactly ours; STORE_WRITE, STORE_EXISTING: create or upgrade it (the
 * latter never creates); --check: what it finds, creating nothing. 0 / -1
 * (logged). */
int	pg_schema_check(struct pg_store *);
int	pg_schema_migrate(struct pg_store *);
int	pg_schema_inspect(struct pg_store *, char *note, size_t n);

/* store_pg_ledger.c: the order ledger inside the item's savepoint (as
 * store_ledger.h). 0 / -1. */
int	pg_ledger_record(struct pg_store *, const struct event *ev,
	    int64_t id, int64_t received_ms, unsigned *raised);

/* The backend's entries (store_pg_admin.c, store_pg_orders.c,
 * store_pg_outbox.c). */
int	store_pg_counts(struct store *, int64_t since_ms,
	    struct store_counts *ret);
int	store_pg_admin_status(struct store *, int64_t now, int64_t day_start,
	    struct store_admin_status *ret);
int	store_pg_admin_list(struct store *, const struct store_admin_filter *f,
	    struct event_row **rows, size_t *n);
enum store_admin_result store_pg_admin_get(struct store *, int64_t id,
	    const char *key, struct event_row *ret,
	    struct store_admin_attempt **hist, size_t *nhist);
int	store_pg_admin_tombstone(struct store *, const char *key,
	    int64_t *pruned_at, int64_t *deliveries);
int	store_pg_admin_replay(struct store *, struct store_admin_replay *req,
	    size_t n);
int	store_pg_admin_replay_dead(struct store *, int64_t **ids, size_t *n);
int	store_pg_admin_prune(struct store *, int64_t before, int64_t now,
	    int dry_run, struct store_admin_prune *ret);
int	store_pg_orders_list(struct store *,
	    const struct store_orders_filter *f, struct store_order **rows,
	    size_t *n);
enum store_admin_result store_pg_orders_get(struct store *,
	    const char *order_id, struct store_order_timeline *ret);

#endif
