/* store.h - the database: schema, migrations, recording events.
 *
 * Two backends behind one interface (DESIGN "Configuration": `database`):
 * an SQLite file (WAL mode; one daemon per file) or a PostgreSQL database
 * named by a postgresql:// URI, which several daemons may share. Nothing
 * outside the store files knows which one runs.
 *
 * One struct store per thread (one connection each); never shared.
 * `durability` full means a successful commit is on disk before
 * store_record_batch() returns (SQLite: synchronous=FULL, and only into the
 * files the path names: a commit into a database or WAL that was deleted or
 * moved meanwhile is reported as failed, DESIGN "Database"; PostgreSQL:
 * synchronous_commit on). */
#ifndef CFHOOK_STORE_H
#define CFHOOK_STORE_H

#include "attr.h"

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "event.h"

#define STORE_SCHEMA_VERSION	3
/* "locked past timeout" -> 503: the longest a batch waits for the lock (or,
 * with PostgreSQL, for the server), all of its steps together, counted from
 * the moment its oldest item was queued. */
#define STORE_BUSY_TIMEOUT_MS	5000

enum store_result {
	STORE_NEW,		/* inserted */
	STORE_DUPLICATE,	/* event_key known: deliveries counted */
	STORE_UNAVAILABLE	/* nothing written: answer 503 */
};

enum store_mode {
	STORE_WRITE,		/* creates the file (the schema), runs
				 * migrations */
	STORE_EXISTING,		/* as STORE_WRITE, but never creates: the file
				 * must already be a cfhookd database */
	STORE_READ,		/* existing, at the current schema;
				 * read-write */
	STORE_READONLY		/* existing, at the current schema; opened
				 * read-only (SQLITE_OPEN_READONLY; a
				 * read-only PostgreSQL session) */
};

struct store;
struct store_file;

/* One webhook to record. The writer queues these; the HTTP layer owns them. */
struct store_item {
	/* in */
	const struct event *ev;
	const char *body;		/* raw bytes as signed */
	size_t	 body_len;
	const char *content_type;	/* as received */
	/* Headers recorded as received (NULL: absent); never keys. */
	const char *idempotency_key;
	const char *webhook_version;
	/* Hex SHA-256 of a form's signing string when its `signature` field
	 * verified, else NULL: a second event with the same one is a duplicate
	 * of the first (spec section 11). */
	const char *form_digest;
	int64_t	 received_ms;		/* unix ms */
	/* Monotonic ms when it was queued (writer_submit); 0: now. The batch's
	 * wait for the lock ends STORE_BUSY_TIMEOUT_MS after its oldest item's,
	 * so an item queued behind a batch that waited does not wait twice. */
	int64_t	 queued_ms;
	/* out, valid in done() */
	enum store_result result;
	int64_t	 id;			/* events.id (new or existing row) */
	unsigned attention_raised;	/* STORE_NEW: ledger.h flags raised */
	/* Called once from the writer thread after the item's transaction is
	 * durable (or failed); the item belongs to the caller again. */
	void	(*done)(struct store_item *, void *arg);
	void	*arg;
	struct store_item *next;	/* the writer's queue link */
};

/* Room for store_display_name() (a config value is at most a line). */
#define STORE_NAME_MAX		4096

/* Whether `database` names a PostgreSQL database (a postgresql:// or
 * postgres:// URI) rather than an SQLite file. */
int	store_is_uri(const char *database);
/* `database` as log lines and output may show it: a path as it is, a URI
 * with its password masked. Into out (truncated to n); returns out. */
const char *store_display_name(const char *database, char *out, size_t n);
/* Open (and for STORE_WRITE create/upgrade) the database: an SQLite file
 * path, or a PostgreSQL URI. Logs why it failed. Returns 0 / -1. */
int	store_open(const char *database, enum store_mode, enum durability,
	    struct store **ret) MUST_CHECK;
/* `cfhookd --check`: whether cfhookd can open `database` for writing, at a
 * schema version it knows, without creating or changing anything. 0 and a
 * short note ("schema version 3", "to be created") in note, or -1
 * (logged). */
int	store_inspect(const char *database, char *note, size_t n) MUST_CHECK;
/* NULL-safe. */
void	store_close(struct store *);
/* One transaction for the whole batch: each item is inserted, or counted as a
 * duplicate delivery (deliveries + 1, last_seen_at), and gets its result.
 * A new payment or Payment Link event also moves its order in the same
 * transaction (store_ledger.h); what that raised is reported after the
 * commit.
 * New rows start forward_state 'pending' when forward_pending, else 'done'.
 * A pruned key (tombstone) counts as a duplicate. If the commit fails every
 * item gets STORE_UNAVAILABLE and nothing remains written. If the commit went
 * into files no longer at the path (store_check_files()), every item gets
 * STORE_UNAVAILABLE too: it is not durable where the next start looks.
 * Returns the number of new rows, or -1 when the transaction failed
 * (logged; store_fault() says why). */
int	store_record_batch(struct store *, struct store_item **items, size_t n,
	    int forward_pending);
/* Why the last write (batch or store_probe()) failed, as a short fixed
 * phrase such as "disk full" or "I/O error (Read-only file system)"; "" when
 * it did not fail. Borrowed until the next call on this store. */
const char *store_fault(struct store *);
/* Cheap liveness probe: 0 when the database answers a read. */
int	store_ping(struct store *);

/* The database's name for log lines (store_display_name()) and the
 * durability; record why a write failed (store_fault()). For the writer
 * thread and the store files. */
const char *store_path(const struct store *);
enum durability store_durability(const struct store *);
void	store_set_fault(struct store *, const char *what);

#endif
