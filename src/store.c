/* store.c - the SQLite backend: open, schema and migrations, and recording
 * a batch of webhooks in one transaction (DESIGN "Data flow", "Database").
 *
 * Crash safety rests on one rule: an item is reported STORE_NEW or
 * STORE_DUPLICATE only after the COMMIT that wrote it returned, and a failed
 * batch leaves nothing behind (the transaction is rolled back), so every
 * UNAVAILABLE answer (503) is safe: Cashfree retries and the retry is
 * deduplicated by the UNIQUE event_key.
 *
 * The commit is durable only into the files the path names: a writing store
 * holds its database and WAL (store_file.c) and, after every COMMIT, checks
 * that they are still the ones at the path; if not, the batch is answered
 * 503 like any failed one.
 *
 * Must not: share a connection between threads (SQLITE_OPEN_NOMUTEX: one
 * struct store per thread), log request bodies, or keep SQL for other jobs
 * here (outbox and queries live in the other store_*.c files, via store_db).
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "clock.h"
#include "log.h"
#include "store.h"
#include "store_file.h"
#include "store_health.h"
#include "store_int.h"
#include "store_ledger.h"
#include "utf8.h"

/* Schema steps: migrations[N] takes a database from user_version N to N+1.
 * All run in one IMMEDIATE transaction at open, so a crash mid-upgrade
 * leaves the old version intact. Append only; never edit a shipped step. */
static const char *const migrations[] = {
	/* 0 -> 1: the initial schema. */
	"CREATE TABLE events ("
	"  id               INTEGER PRIMARY KEY,"
	"  event_key        TEXT    NOT NULL UNIQUE,"
	"  type             TEXT    NOT NULL,"
	"  cf_payment_id    TEXT,"
	"  order_id         TEXT,"
	"  payment_status   TEXT,"
	"  amount           TEXT,"
	"  currency         TEXT,"
	"  event_time       TEXT,"
	"  content_type     TEXT    NOT NULL,"
	"  body             BLOB    NOT NULL,"
	"  received_at      INTEGER NOT NULL,"
	"  last_seen_at     INTEGER NOT NULL,"
	"  deliveries       INTEGER NOT NULL DEFAULT 1,"
	"  forward_state    TEXT    NOT NULL DEFAULT 'pending'"
	"                   CHECK (forward_state IN ('pending','done','dead')),"
	"  forward_attempts INTEGER NOT NULL DEFAULT 0,"
	"  last_error       TEXT,"
	"  forwarded_at     INTEGER,"
	"  next_attempt_at  INTEGER NOT NULL DEFAULT 0,"
	/* forward_attempts counted before the last `cfhookctl replay`: the
	 * attempt number keeps counting, the series (dead, backoff) restarts. */
	"  replay_base      INTEGER NOT NULL DEFAULT 0"
	");"
	/* The forwarder's scans (store_outbox.c): pending events in id order
	 * with next_attempt_at in the index, so events waiting out a backoff
	 * are passed over without reading their rows; and the earliest
	 * retry. */
	"CREATE INDEX events_pending  ON events(id, next_attempt_at)"
	"  WHERE forward_state = 'pending';"
	"CREATE INDEX events_next     ON events(next_attempt_at)"
	"  WHERE forward_state = 'pending';"
	"CREATE INDEX events_order    ON events(order_id, id);"
	"CREATE INDEX events_received ON events(received_at);"
	"CREATE INDEX events_type     ON events(type, received_at);"
	"CREATE TABLE pruned_keys ("
	"  event_key  TEXT PRIMARY KEY,"
	"  pruned_at  INTEGER NOT NULL,"
	"  deliveries INTEGER NOT NULL DEFAULT 0"
	") WITHOUT ROWID;"
	"CREATE TABLE forward_log ("
	"  id          INTEGER PRIMARY KEY,"
	"  event_id    INTEGER NOT NULL,"
	"  attempt     INTEGER NOT NULL,"
	"  started_at  INTEGER NOT NULL,"
	"  finished_at INTEGER,"
	"  ok          INTEGER,"
	"  error       TEXT"
	");"
	"CREATE INDEX forward_log_event ON forward_log(event_id, id);",
	/* 1 -> 2: headers recorded for the merchant (never used to key an
	 * event: they are not signed); the signing strings of forms verified
	 * by their `signature` field (spec section 11: every re-cut of one
	 * genuine form has the same signing string, so a second one is a
	 * duplicate of the first, whatever its fields say; kept when events
	 * are pruned, like a tombstone); and the row the writer commits to
	 * prove the database takes writes. */
	"ALTER TABLE events ADD COLUMN idempotency_key TEXT;"
	"ALTER TABLE events ADD COLUMN webhook_version TEXT;"
	"CREATE TABLE form_signatures ("
	"  digest     TEXT    PRIMARY KEY,"
	"  event_id   INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"CREATE TABLE health_probe ("
	"  id         INTEGER PRIMARY KEY CHECK (id = 1),"
	"  probed_at  INTEGER NOT NULL"
	");",
	/* 2 -> 3: the order ledger (DESIGN "Orders"): one row per order,
	 * the payments it counted (a Payment Link event and its twin share
	 * a cf_payment_id), and on each event the order as that event left
	 * it. Then C code (migration_code) reads the amounts again as sent
	 * and builds the orders from the stored events. */
	"ALTER TABLE events ADD COLUMN order_state TEXT;"
	"ALTER TABLE events ADD COLUMN order_paid_now INTEGER;"
	"ALTER TABLE events ADD COLUMN order_attention TEXT;"
	"CREATE TABLE orders ("
	"  order_id       TEXT    PRIMARY KEY,"
	"  state          TEXT    NOT NULL CHECK (state IN"
	"                 ('PENDING','PAID','FAILED','USER_DROPPED')),"
	"  order_amount   TEXT,"
	"  currency       TEXT,"
	"  paid_amount    TEXT,"
	"  paid_currency  TEXT,"
	"  successes      INTEGER NOT NULL DEFAULT 0,"
	"  first_event_at INTEGER NOT NULL,"
	"  paid_at        INTEGER,"
	"  paid_event_id  INTEGER,"
	"  last_event_id  INTEGER NOT NULL,"
	"  last_event_at  INTEGER NOT NULL,"
	"  attention      TEXT"
	") WITHOUT ROWID;"
	"CREATE INDEX orders_last ON orders(last_event_at);"
	"CREATE TABLE order_payments ("
	"  order_id       TEXT    NOT NULL,"
	"  cf_payment_id  TEXT    NOT NULL,"
	"  event_id       INTEGER NOT NULL,"
	"  PRIMARY KEY (order_id, cf_payment_id)"
	") WITHOUT ROWID;",
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) ==
    STORE_SCHEMA_VERSION, "one migration step per schema version");

/* C code a step runs after its SQL, in the same transaction (NULL: none):
 * what SQL alone cannot do, such as reading stored bodies again. */
static int (*const migration_code[])(sqlite3 *) = {
	NULL,
	NULL,
	store_ledger_upgrade,
};

_Static_assert(sizeof(migration_code) / sizeof(migration_code[0]) ==
    STORE_SCHEMA_VERSION, "one migration code slot per schema version");

/* Statements prepared once at open and kept for the connection's life. */
enum stmt_id {
	S_BEGIN,
	S_COMMIT,
	S_ROLLBACK,
	S_SAVEPOINT,
	S_RELEASE,
	S_ROLLBACK_TO,
	S_PRUNED,
	S_INSERT,
	S_DUPLICATE,
	S_FORM_SEEN,
	S_FORM_ADD,
	S_DUPLICATE_ID,
	S_PING,
	S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_SAVEPOINT] = "SAVEPOINT item",
	[S_RELEASE] = "RELEASE item",
	[S_ROLLBACK_TO] = "ROLLBACK TO item",
	/* A tombstone left by `cfhookctl prune`: count the delivery there. */
	[S_PRUNED] = "UPDATE pruned_keys SET deliveries = deliveries + 1"
	    " WHERE event_key = ?1",
	[S_INSERT] = "INSERT INTO events (event_key, type, cf_payment_id,"
	    " order_id, payment_status, amount, currency, event_time,"
	    " content_type, body, received_at, last_seen_at, deliveries,"
	    " forward_state, forward_attempts, next_attempt_at,"
	    " idempotency_key, webhook_version)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, 1,"
	    " ?12, 0, 0, ?13, ?14)"
	    " ON CONFLICT (event_key) DO NOTHING",
	[S_DUPLICATE] = "UPDATE events SET deliveries = deliveries + 1,"
	    " last_seen_at = ?1 WHERE event_key = ?2 RETURNING id",
	/* Spec section 11: a form whose signing string was seen before. */
	[S_FORM_SEEN] = "SELECT event_id FROM form_signatures WHERE digest = ?1",
	[S_FORM_ADD] = "INSERT INTO form_signatures (digest, event_id)"
	    " VALUES (?1, ?2) ON CONFLICT (digest) DO NOTHING",
	[S_DUPLICATE_ID] = "UPDATE events SET deliveries = deliveries + 1,"
	    " last_seen_at = ?1 WHERE id = ?2",
	/* Reads page 1, so it proves the file answers, not just the library. */
	[S_PING] = "PRAGMA user_version",
};

/* An SQLite store: the header every backend's store begins with, then the
 * connection and what it needs. */
struct sq_store {
	struct store base;		/* name: the path; mode, durability,
					 * fault */
	sqlite3	*db;
	sqlite3_stmt *stmt[S_COUNT];
	struct store_file *files;	/* the writing modes only */
	struct store_wait wait;		/* the busy handler's deadline */
	int	 wal_frames;		/* in the WAL after the last commit */
	struct store_pace pace;		/* the writer's checkpoints */
	int	 ping_failing;	/* log a failing ping once, not per poll */
	struct store_ledger *ledger;	/* the orders SQL (store_ledger.h) */
};

/* The connection's last error, with errno for I/O errors (which say little
 * without it). SQLite records errno only for those two codes and never
 * clears it, so it is stale for any other error. */
static const char *
db_error(const struct sq_store *st, char *buf, size_t size)
{
	int code = sqlite3_errcode(st->db) & 0xff;
	int sys = sqlite3_system_errno(st->db);

	if ((code == SQLITE_IOERR || code == SQLITE_CANTOPEN) && sys != 0)
		(void)snprintf(buf, size, "%s (%s)", sqlite3_errmsg(st->db),
		    strerror(sys));
	else
		(void)snprintf(buf, size, "%s", sqlite3_errmsg(st->db));
	return buf;
}

/* "store: 'PATH': WHAT: error". */
static void
log_db_error(const struct sq_store *st, const char *what)
{
	char err[160];

	log_error("store: '%s': %s: %s", st->base.name, what,
	    db_error(st, err, sizeof(err)));
}

/* The SQLite store behind a struct store (this backend's, by its table). */
static struct sq_store *
sq(struct store *st)
{
	return (struct sq_store *)st;
}

/* Run a prepared statement that returns no rows. 0 / -1; the caller logs,
 * since only it knows what failed. */
static int
run_stmt(struct sq_store *st, enum stmt_id id)
{
	sqlite3_stmt *s = st->stmt[id];
	int rc;

	rc = sqlite3_step(s);
	(void)sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* One-off SQL at open (pragmas, migrations). 0 / -1 (logged). */
static int
exec_sql(struct sq_store *st, const char *sql, const char *what)
{
	if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		log_db_error(st, what);
		return -1;
	}
	return 0;
}

/* First column of the first row of `sql` as text or integer. */
static int
query_one(struct sq_store *st, const char *sql, char *text, size_t text_size,
    int64_t *num)
{
	sqlite3_stmt *s = NULL;
	const unsigned char *t;
	int rc = -1;

	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) {
		log_db_error(st, sql);
		goto out;
	}
	if (sqlite3_step(s) != SQLITE_ROW) {
		log_db_error(st, sql);
		goto out;
	}
	if (num != NULL)
		*num = sqlite3_column_int64(s, 0);
	if (text != NULL) {
		t = sqlite3_column_text(s, 0);
		(void)snprintf(text, text_size, "%s",
		    t == NULL ? "" : (const char *)t);
	}
	rc = 0;
out:
	(void)sqlite3_finalize(s);
	return rc;
}

/* After every commit of the writing connection: the frames now in the WAL,
 * for the writer's own checkpoints (this hook replaces SQLite's automatic
 * one, whose result nobody would see). */
static int
wal_committed(void *arg, sqlite3 *db, const char *name, int frames)
{
	(void)db;
	(void)name;
	((struct sq_store *)arg)->wal_frames = frames;
	return SQLITE_OK;
}

/* Before SQLite's first use in the process. Memory statistics (which
 * nothing here reads) take one process-wide mutex on every allocation and
 * free, contended by the writer, the forwarder and the readers. */
static void
sqlite_setup(void)
{
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static int
open_db(struct sq_store *st, enum store_mode mode)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	/* NOMUTEX: one connection per thread, never shared (store.h). */
	int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;

	(void)pthread_once(&once, sqlite_setup);
	if (mode == STORE_READONLY)
		flags |= SQLITE_OPEN_READONLY;
	else
		flags |= SQLITE_OPEN_READWRITE;
	if (mode == STORE_WRITE)
		flags |= SQLITE_OPEN_CREATE;
	if (store_file_ready(st->base.name, mode == STORE_WRITE,
	    mode != STORE_READONLY) == -1)
		return -1;
	if (sqlite3_open_v2(st->base.name, &st->db, flags, NULL) != SQLITE_OK) {
		if (st->db == NULL)
			log_error("store: '%s': out of memory", st->base.name);
		else
			log_db_error(st, "open");
		return -1;
	}
	if (sqlite3_busy_handler(st->db, store_busy_wait, &st->wait) !=
	    SQLITE_OK) {
		log_db_error(st, "busy handler");
		return -1;
	}
	return 0;
}

static int
set_pragmas(struct sq_store *st, enum durability durability)
{
	char jm[16];

	if (store_wal_setup(st->db, st->base.name) == -1)
		return -1;
	if (st->base.mode == STORE_READONLY)
		return exec_sql(st, "PRAGMA temp_store = MEMORY", "temp_store");
	/* WAL: readers (cfhookctl, the forwarder) never block the writer, and
	 * a commit is one append + fsync. Anything else is refused rather
	 * than silently running with weaker guarantees. */
	if (query_one(st, "PRAGMA journal_mode = WAL", jm, sizeof(jm),
	    NULL) == -1)
		return -1;
	if (strcmp(jm, "wal") != 0) {
		log_error("store: '%s': journal_mode is '%s', not 'wal'",
		    st->base.name, jm);
		return -1;
	}
	/* FULL: the WAL is fsynced at every commit, so an acknowledged event
	 * survives power loss; NORMAL only survives a process crash. */
	if (exec_sql(st, durability == DURABILITY_FULL ?
	    "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL",
	    "synchronous") == -1)
		return -1;
	if (exec_sql(st, "PRAGMA foreign_keys = ON", "foreign_keys") == -1)
		return -1;
	return exec_sql(st, "PRAGMA temp_store = MEMORY", "temp_store");
}

static void
log_newer(const struct sq_store *st, int64_t version)
{
	log_error("store: '%s': database schema version %lld is newer than "
	    "this cfhookd supports (%d)", st->base.name, (long long)version,
	    STORE_SCHEMA_VERSION);
}

/* STORE_READ: the schema must already be exactly ours; never touch it. */
static int
check_version(struct sq_store *st)
{
	int64_t v = -1;

	if (query_one(st, "PRAGMA user_version", NULL, 0, &v) == -1)
		return -1;
	if (v == STORE_SCHEMA_VERSION)
		return 0;
	if (v > STORE_SCHEMA_VERSION)
		log_newer(st, v);
	else if (v == 0)
		log_error("store: '%s': not a cfhookd database (schema "
		    "version 0); cfhookd creates it at start-up", st->base.name);
	else
		log_error("store: '%s': database schema version %lld is older "
		    "than this cfhookd expects (%d); start cfhookd once to "
		    "upgrade it", st->base.name, (long long)v, STORE_SCHEMA_VERSION);
	return -1;
}

/* The steps from the file's version to ours. Caller holds the IMMEDIATE
 * transaction, so two processes starting at once cannot both upgrade. */
static int
migrate_steps(struct sq_store *st, int64_t from)
{
	char sql[64];
	int64_t tables = 0;
	int64_t v;

	if (from == 0) {
		/* Version 0 is also any foreign SQLite file: refuse to add
		 * our tables to somebody else's database. */
		if (query_one(st, "SELECT count(*) FROM sqlite_schema", NULL,
		    0, &tables) == -1)
			return -1;
		if (tables != 0) {
			log_error("store: '%s': not a cfhookd database (it has "
			    "tables but schema version 0)", st->base.name);
			return -1;
		}
	}
	for (v = from; v < STORE_SCHEMA_VERSION; v++) {
		if (exec_sql(st, migrations[v], "schema upgrade") == -1)
			return -1;
		if (migration_code[v] != NULL &&
		    migration_code[v](st->db) == -1)
			return -1;	/* logged */
	}
	if (from == 0)
		log_info("store: '%s': created schema version %d", st->base.name,
		    STORE_SCHEMA_VERSION);
	else
		log_info("store: '%s': schema upgraded from version %lld to "
		    "%d", st->base.name, (long long)from, STORE_SCHEMA_VERSION);
	(void)snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
	    STORE_SCHEMA_VERSION);
	return exec_sql(st, sql, "user_version");
}

/* STORE_WRITE: create or upgrade in one IMMEDIATE transaction. */
static int
migrate(struct sq_store *st)
{
	int64_t v = -1;
	int rc = -1;

	if (exec_sql(st, "BEGIN IMMEDIATE", "begin schema check") == -1)
		return -1;
	if (query_one(st, "PRAGMA user_version", NULL, 0, &v) == -1)
		goto out;
	if (v > STORE_SCHEMA_VERSION) {
		log_newer(st, v);
		goto out;
	}
	if (v < 0) {
		log_error("store: '%s': database schema version %lld is not "
		    "one cfhookd knows", st->base.name, (long long)v);
		goto out;
	}
	if (v < STORE_SCHEMA_VERSION && migrate_steps(st, v) == -1)
		goto out;
	if (exec_sql(st, "COMMIT", "commit schema") == -1)
		goto out;
	rc = 0;
out:
	if (rc == -1 && sqlite3_get_autocommit(st->db) == 0)
		(void)sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

static int
prepare_all(struct sq_store *st)
{
	int i;

	for (i = 0; i < S_COUNT; i++) {
		if (sqlite3_prepare_v3(st->db, stmt_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &st->stmt[i], NULL) !=
		    SQLITE_OK) {
			log_db_error(st, stmt_sql[i]);
			return -1;
		}
	}
	return 0;
}

/* STORE_EXISTING replaces a database that vanished while the daemon ran:
 * only a file that already is a cfhookd database will do. An empty file (or
 * a fresh one) would quietly turn every old event into a new one. */
static int
check_existing(struct sq_store *st)
{
	int64_t v = -1;

	if (query_one(st, "PRAGMA user_version", NULL, 0, &v) == -1)
		return -1;
	if (v >= 1)
		return 0;
	log_error("store: '%s': not a cfhookd database (schema version %lld): "
	    "not adopted in place of the one that was open; restore the "
	    "database there, or restart cfhookd to start a new one", st->base.name,
	    (long long)v);
	return -1;
}

/* The steps after the file is open, in order. Version checks come before
 * the pragmas: setting WAL would write the file. */
static int
open_steps(struct sq_store *st, enum durability durability)
{
	int writing = st->base.mode == STORE_WRITE || st->base.mode == STORE_EXISTING;

	if ((st->base.mode == STORE_READ || st->base.mode == STORE_READONLY) &&
	    check_version(st) == -1)
		return -1;
	if (st->base.mode == STORE_EXISTING && check_existing(st) == -1)
		return -1;
	if (set_pragmas(st, durability) == -1)
		return -1;
	if (writing && migrate(st) == -1)
		return -1;
	/* The schema into the database file itself, so that its header says
	 * the version (cfhookd --check reads it there); best effort. */
	if (writing)
		(void)sqlite3_wal_checkpoint_v2(st->db, NULL,
		    SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	if (prepare_all(st) == -1)
		return -1;
	if (!writing)
		return 0;
	/* The migration's transaction has opened the WAL: hold both files. */
	(void)sqlite3_wal_hook(st->db, wal_committed, st);
	return store_file_open(st->base.name, &st->files);
}

static void sqlite_close(struct store *);

int
store_sqlite_inspect(const char *path, char *note, size_t n)
{
	return store_file_inspect(path, STORE_SCHEMA_VERSION, note, n);
}

/* STORE_WRITE: the daemon's writer; creates the file, runs migrations.
 * STORE_EXISTING: the same on a file that must already be a cfhookd
 * database (the writer reopening it). STORE_READ: "existing database,
 * read-write": cfhookctl and the other threads also write (replay, prune,
 * outbox), but never create or migrate; a missing file or another schema
 * version is an error. STORE_READONLY: likewise, opened read-only. */
int
store_sqlite_open(const char *path, enum store_mode mode,
    enum durability durability, struct store **ret)
{
	struct sq_store *st = NULL;
	int rc = -1;

	st = calloc(1, sizeof(*st));
	if (st == NULL || store_base_init(&st->base, &store_sqlite_backend,
	    path, mode, durability) == -1) {
		if (st == NULL)
			log_error("store: '%s': out of memory", path);
		free(st);
		return -1;
	}
	st->pace.frames = -1;
	if (open_db(st, mode) == -1 || open_steps(st, durability) == -1)
		goto out;
	if (store_ledger_open(st->db, &st->ledger) == -1)
		goto out;
	*ret = &st->base;
	st = NULL;
	rc = 0;
out:
	if (st != NULL)
		sqlite_close(&st->base);
	return rc;
}

static void
sqlite_close(struct store *base)
{
	struct sq_store *st = sq(base);
	sqlite3_stmt *s;
	int i;

	store_ledger_close(st->ledger);
	for (i = 0; i < S_COUNT; i++)
		(void)sqlite3_finalize(st->stmt[i]);
	if (st->db != NULL && sqlite3_close(st->db) == SQLITE_BUSY) {
		/* A store_*.c file leaked a statement: a bug, but the
		 * connection (and its fds) must still go. */
		log_error("store: '%s': close: unfinalized statements",
		    st->base.name);
		while ((s = sqlite3_next_stmt(st->db, NULL)) != NULL)
			(void)sqlite3_finalize(s);
		(void)sqlite3_close(st->db);
	}
	store_file_close(st->files);	/* after SQLite: see store_file.c */
	store_base_done(&st->base);
	free(st);
}

static int
bind_opt(sqlite3_stmt *s, int idx, const char *text)
{
	if (text == NULL)
		return sqlite3_bind_null(s, idx);
	return sqlite3_bind_text(s, idx, text, -1, SQLITE_STATIC);
}

static int
bind_insert(sqlite3_stmt *s, const struct store_item *it, int forward_pending)
{
	const struct event *ev = it->ev;
	const char *body = it->body == NULL ? "" : it->body;
	int rc = SQLITE_OK;

	rc |= bind_opt(s, 1, ev->event_key);
	rc |= bind_opt(s, 2, ev->type);
	rc |= bind_opt(s, 3, ev->cf_payment_id);
	rc |= bind_opt(s, 4, ev->order_id);
	rc |= bind_opt(s, 5, ev->payment_status);
	rc |= bind_opt(s, 6, ev->amount);
	rc |= bind_opt(s, 7, ev->currency);
	rc |= bind_opt(s, 8, ev->event_time);
	rc |= bind_opt(s, 9, it->content_type);
	/* TEXT when it is well-formed UTF-8 without NUL, so json_extract()
	 * and the sqlite3 shell see it as the text it is, else a BLOB: the
	 * bytes are stored exactly either way. A zero-length body binds ""
	 * (a NULL pointer would bind NULL). */
	if (utf8_text(body, it->body_len))
		rc |= sqlite3_bind_text64(s, 10, body, it->body_len,
		    SQLITE_STATIC, SQLITE_UTF8);
	else
		rc |= sqlite3_bind_blob64(s, 10, body, it->body_len,
		    SQLITE_STATIC);
	rc |= sqlite3_bind_int64(s, 11, it->received_ms);
	rc |= bind_opt(s, 12, forward_pending ? "pending" : "done");
	rc |= bind_opt(s, 13, it->idempotency_key);
	rc |= bind_opt(s, 14, it->webhook_version);
	return rc == SQLITE_OK ? 0 : -1;
}

/* 1: the key is a pruned tombstone (delivery counted), 0: not, -1: error.
 * The helpers below do not log: record_one() does, with the event key. */
static int
count_pruned(struct sq_store *st, const struct store_item *it)
{
	sqlite3_stmt *s = st->stmt[S_PRUNED];
	int rc = -1;

	if (bind_opt(s, 1, it->ev->event_key) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_DONE)
		rc = sqlite3_changes(st->db) == 1;
	(void)sqlite3_reset(s);
	return rc;
}

/* 1: inserted (*id set), 0: the key exists, -1: error. */
static int
insert_event(struct sq_store *st, const struct store_item *it,
    int forward_pending, int64_t *id)
{
	sqlite3_stmt *s = st->stmt[S_INSERT];
	int rc = -1;

	if (bind_insert(s, it, forward_pending) == 0 &&
	    sqlite3_step(s) == SQLITE_DONE) {
		rc = sqlite3_changes(st->db) == 1;
		if (rc == 1)
			*id = sqlite3_last_insert_rowid(st->db);
	}
	(void)sqlite3_reset(s);
	return rc;
}

/* Count one more delivery of an existing row. 0 (*id set) / -1. */
static int
count_duplicate(struct sq_store *st, const struct store_item *it, int64_t *id)
{
	sqlite3_stmt *s = st->stmt[S_DUPLICATE];
	int rc = -1;

	if (sqlite3_bind_int64(s, 1, it->received_ms) != SQLITE_OK ||
	    bind_opt(s, 2, it->ev->event_key) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_ROW)
		goto out;
	*id = sqlite3_column_int64(s, 0);
	if (sqlite3_step(s) != SQLITE_DONE)
		goto out;
	rc = 0;
out:
	(void)sqlite3_reset(s);
	return rc;
}

/* Spec section 11: was this form's signing string seen before? 1 with
 * *id its event (counted one more delivery; 0 when that event was pruned),
 * 0 when not, -1 on error. */
static int
form_seen(struct sq_store *st, const struct store_item *it, int64_t *id)
{
	sqlite3_stmt *s = st->stmt[S_FORM_SEEN];
	sqlite3_stmt *u = st->stmt[S_DUPLICATE_ID];
	int rc = -1, step;

	if (bind_opt(s, 1, it->form_digest) != SQLITE_OK)
		goto out;
	step = sqlite3_step(s);
	if (step == SQLITE_DONE) {
		rc = 0;
		goto out;
	}
	if (step != SQLITE_ROW)
		goto out;
	*id = sqlite3_column_int64(s, 0);
	if (sqlite3_bind_int64(u, 1, it->received_ms) != SQLITE_OK ||
	    sqlite3_bind_int64(u, 2, *id) != SQLITE_OK ||
	    sqlite3_step(u) != SQLITE_DONE)
		goto out;
	if (sqlite3_changes(st->db) == 0)
		*id = 0;
	rc = 1;
out:
	(void)sqlite3_reset(u);
	(void)sqlite3_reset(s);
	return rc;
}

/* Remember the form's signing string for event id. 0 / -1. */
static int
form_remember(struct sq_store *st, const struct store_item *it, int64_t id)
{
	sqlite3_stmt *s = st->stmt[S_FORM_ADD];
	int rc = -1;

	if (bind_opt(s, 1, it->form_digest) == SQLITE_OK &&
	    sqlite3_bind_int64(s, 2, id) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_DONE)
		rc = 0;
	(void)sqlite3_reset(s);
	return rc;
}

/* The item's writes, inside its savepoint. 0 (result and id set) / -1. */
static int
record_item(struct sq_store *st, struct store_item *it, int forward_pending)
{
	int64_t id = 0;
	int r;

	if (it->form_digest != NULL) {
		r = form_seen(st, it, &id);
		if (r == -1)
			return -1;
		if (r == 1) {
			it->result = STORE_DUPLICATE;
			it->id = id;
			return 0;
		}
	}
	r = count_pruned(st, it);
	if (r == -1)
		return -1;
	if (r == 1) {
		it->result = STORE_DUPLICATE;	/* no row: id stays 0 */
		it->id = 0;
		return 0;
	}
	r = insert_event(st, it, forward_pending, &id);
	if (r == -1)
		return -1;
	/* Only a new event moves its order (DESIGN "Orders"). */
	if (r == 1 && store_ledger_record(st->ledger, it->ev, id,
	    it->received_ms, &it->attention_raised) == -1)
		return -1;
	if (r == 0 && count_duplicate(st, it, &id) == -1)
		return -1;
	if (it->form_digest != NULL && form_remember(st, it, id) == -1)
		return -1;
	it->result = r == 1 ? STORE_NEW : STORE_DUPLICATE;
	it->id = id;
	return 0;
}

/* One item in its own savepoint, so its failure (a constraint, a value too
 * big) undoes only that item. Returns -1 only when the whole transaction is
 * lost: SQLite rolls back everything by itself on some errors (I/O, disk
 * full, interrupt), and going on would run the next items in autocommit
 * mode, outside any batch. */
static int
record_one(struct sq_store *st, struct store_item *it, int forward_pending)
{
	const char *key;

	it->result = STORE_UNAVAILABLE;
	it->id = 0;
	it->attention_raised = 0;
	if (it->ev == NULL) {
		log_error("store: '%s': item without an event", st->base.name);
		return 0;
	}
	key = it->ev->event_key == NULL ? "" : it->ev->event_key;
	if (run_stmt(st, S_SAVEPOINT) == -1) {
		log_db_error(st, "savepoint");
		return -1;
	}
	if (record_item(st, it, forward_pending) == 0 &&
	    run_stmt(st, S_RELEASE) == 0)
		return 0;
	log_error("store: '%s': event '%s': %s", st->base.name, key,
	    sqlite3_errmsg(st->db));
	it->result = STORE_UNAVAILABLE;
	it->id = 0;
	if (sqlite3_get_autocommit(st->db) != 0)
		return -1;	/* SQLite already rolled it all back */
	if (run_stmt(st, S_ROLLBACK_TO) == -1 ||
	    run_stmt(st, S_RELEASE) == -1) {
		log_db_error(st, "rollback to item");
		return -1;
	}
	return 0;
}

static void
answer_503(struct store_item **items, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		items[i]->result = STORE_UNAVAILABLE;
		items[i]->id = 0;
	}
}

/* Nothing of a failed batch may remain: roll back what SQLite has not rolled
 * back itself, and answer every item 503 (a retry is deduplicated, so 503 is
 * safe even if a failed COMMIT did reach the disk). */
static void
fail_batch(struct sq_store *st, struct store_item **items, size_t n,
    const char *what)
{
	char err[160];

	/* Before ROLLBACK resets the error. */
	store_fault_phrase(st->db, st->base.fault, sizeof(st->base.fault));
	if (what != NULL) {
		log_error("store: '%s': %s: %s; %zu event(s) answered 503",
		    st->base.name, what, db_error(st, err, sizeof(err)), n);
	} else {
		log_error("store: '%s': transaction lost; %zu event(s) "
		    "answered 503", st->base.name, n);
	}
	if (sqlite3_get_autocommit(st->db) == 0 &&
	    run_stmt(st, S_ROLLBACK) == -1)
		log_db_error(st, "rollback");
	store_write_ended();
	answer_503(items, n);
}

/* The batch committed, but into files that are no longer those the path
 * names (deleted, renamed or replaced): the next start would not find it,
 * so it is not acknowledged. Cashfree's retry finds it if the files come
 * back, and is new otherwise. */
static void
fail_moved(struct sq_store *st, struct store_item **items, size_t n,
    enum store_file_state why)
{
	store_set_fault(&st->base, store_file_state_text(why));
	log_error("store: '%s': %s; %zu event(s) committed there answered 503",
	    st->base.name, store_file_state_text(why), n);
	answer_503(items, n);
}

/* IMMEDIATE: take the write lock now (waiting up to the batch's
 * deadline), so no statement inside can fail on a lock upgrade. While it
 * waits, the forwarder lets it go first (store_write_yield). */
static int
begin_batch(struct sq_store *st)
{
	int rc;

	store_write_wanted(1);
	rc = run_stmt(st, S_BEGIN);
	store_write_wanted(0);
	return rc;
}

static int
sqlite_record_batch(struct store *base, struct store_item **items, size_t n,
    int forward_pending)
{
	struct sq_store *st = sq(base);
	const char *what = NULL;	/* the failed step, if it was ours */
	enum store_file_state moved;
	size_t i;
	int news = 0;
	int rc = -1;

	st->base.fault[0] = '\0';
	st->wait.deadline_ms = store_batch_deadline(items, n);
	if (begin_batch(st) == -1) {
		what = "begin";
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (record_one(st, items[i], forward_pending) == -1)
			goto out;	/* logged */
		if (items[i]->result == STORE_NEW)
			news++;
	}
	/* With synchronous=FULL this is where the WAL is fsynced: nothing
	 * is reported stored before it returns. */
	if (run_stmt(st, S_COMMIT) == -1) {
		what = "commit";
		goto out;
	}
	store_write_ended();
	moved = store_sqlite_check_files(base);
	if (moved != STORE_FILE_OK) {
		st->wait.deadline_ms = 0;
		fail_moved(st, items, n, moved);
		return -1;
	}
	store_ledger_report(items, n);	/* only what was committed */
	rc = news;
out:
	st->wait.deadline_ms = 0;
	if (rc == -1)
		fail_batch(st, items, n, what);
	return rc;
}

static int
sqlite_ping(struct store *base)
{
	struct sq_store *st = sq(base);
	sqlite3_stmt *s = st->stmt[S_PING];
	int ok;

	ok = sqlite3_step(s) == SQLITE_ROW;
	if (!ok && !st->ping_failing)
		log_db_error(st, "ping");
	else if (ok && st->ping_failing)
		log_info("store: '%s': answers again", st->base.name);
	st->ping_failing = !ok;
	(void)sqlite3_reset(s);
	return ok ? 0 : -1;
}

int
store_column_copy(sqlite3_stmt *s, int i, char **ret, size_t *len)
{
	const void *p;
	size_t n;
	char *c;

	*ret = NULL;
	if (len != NULL)
		*len = 0;
	if (sqlite3_column_type(s, i) == SQLITE_NULL)
		return 0;
	p = sqlite3_column_blob(s, i);	/* TEXT or BLOB, bytes as stored */
	n = (size_t)sqlite3_column_bytes(s, i);
	c = malloc(n + 1);
	if (c == NULL)
		return -1;
	if (n > 0)
		memcpy(c, p, n);
	c[n] = '\0';
	*ret = c;
	if (len != NULL)
		*len = n;
	return 0;
}

/* The accessors below are for the SQLite backend's files; on another
 * backend's store they give nothing (a bug caught without a crash). */
struct sqlite3 *
store_db(struct store *st)
{
	return st->be == &store_sqlite_backend ? sq(st)->db : NULL;
}

struct store_file *
store_files(struct store *st)
{
	return st->be == &store_sqlite_backend ? sq(st)->files : NULL;
}

int
store_wal_frames(const struct store *st)
{
	return st->be == &store_sqlite_backend ?
	    ((const struct sq_store *)st)->wal_frames : 0;
}

/* Called by store_health.c's entries only, so always on an SQLite store. */
struct store_pace *
store_pace(struct store *st)
{
	return &sq(st)->pace;
}

void
store_set_deadline(struct store *st, int64_t mono_ms)
{
	if (st->be == &store_sqlite_backend)
		sq(st)->wait.deadline_ms = mono_ms;
}

const struct store_backend store_sqlite_backend = {
	.kind = "sqlite",
	.close = sqlite_close,
	.record_batch = sqlite_record_batch,
	.ping = sqlite_ping,
	.check_files = store_sqlite_check_files,
	.path_state = store_sqlite_path_state,
	.wal_bytes = store_sqlite_wal_bytes,
	.free_bytes = store_sqlite_free_bytes,
	.probe = store_sqlite_probe,
	.maintain = store_sqlite_maintain,
	.behind = store_sqlite_behind,
	.counts = store_sqlite_counts,
	.admin_status = store_sqlite_admin_status,
	.admin_list = store_sqlite_admin_list,
	.admin_get = store_sqlite_admin_get,
	.admin_tombstone = store_sqlite_admin_tombstone,
	.admin_replay = store_sqlite_admin_replay,
	.admin_replay_dead = store_sqlite_admin_replay_dead,
	.admin_prune = store_sqlite_admin_prune,
	.orders_list = store_sqlite_orders_list,
	.orders_get = store_sqlite_orders_get,
};
