/* store_health.h - keeping a writing store honest (DESIGN "Database"):
 * whether it still writes where its name points, the housekeeping that
 * keeps it able to take writes, and a probe that proves it does by
 * committing one. The same calls mean the same for both backends:
 *
 * - SQLite: its files checked against the path, checkpoints that keep the
 *   WAL bounded (store_maintain()), the WAL past its limit
 *   (store_behind());
 * - PostgreSQL: no files of its own (always where its URI points), nothing
 *   to checkpoint; store_maintain() and the probe reconnect a connection
 *   that was lost.
 *
 * The functions on a struct store run on the thread that owns it (the
 * writer); they log only at debug, except store_maintain(), which says when
 * housekeeping starts and stops failing; the caller says what the rest
 * means. */
#ifndef CFHOOK_STORE_HEALTH_H
#define CFHOOK_STORE_HEALTH_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "store_file.h"

/* A batch checkpoints once the WAL holds this many frames (4 KiB pages),
 * as SQLite would on its own; with less than STORE_LOW_SPACE free on the
 * database's file system, once it holds STORE_CHECKPOINT_FRAMES_LOW: then
 * the database grows by at most about 256 KiB when it catches up, so a
 * checkpoint still fits into a nearly full disk, and into the first bit of
 * space that comes back. (Checkpointing that often always would cost a
 * busy daemon an fsync of the database every few batches.) */
#define STORE_CHECKPOINT_FRAMES	1000
#define STORE_CHECKPOINT_FRAMES_LOW 64
#define STORE_LOW_SPACE		(64LL * 1024 * 1024)
/* journal_size_limit: a WAL reset after a burst gives the space back. */
#define STORE_JOURNAL_LIMIT	(4 * 1024 * 1024)
/* /healthz reports wal_over_limit past this (checkpoints cannot keep up). */
#define STORE_WAL_LIMIT		(16 * 1024 * 1024)

enum store_ckpt {
	STORE_CKPT_DONE,	/* the whole WAL is in the database file (or
				 * nothing was left to do) */
	STORE_CKPT_BUSY,	/* readers or a writer kept some of it back */
	STORE_CKPT_FAILED,	/* an error (store_fault() says which) */
	STORE_CKPT_NONE		/* store_maintain(): nothing was due */
};

/* When the writer asks for housekeeping (store_maintain()). */
enum store_maint {
	STORE_MAINT_BATCH,	/* a batch committed: keep the log short
				 * (SQLite: a PASSIVE checkpoint once the WAL
				 * holds the frames its pacing allows) */
	STORE_MAINT_IDLE,	/* nothing queued: catch up (SQLite: PASSIVE
				 * when frames came since the last complete
				 * one) */
	STORE_MAINT_RECOVER,	/* the last write failed: give space back
				 * (SQLite: TRUNCATE; PostgreSQL: reconnect
				 * a lost connection) */
	STORE_MAINT_SAVE	/* before the store is closed to be reopened:
				 * everything committed into the main file
				 * (SQLite: TRUNCATE, waiting up to
				 * STORE_BUSY_TIMEOUT_MS for readers) */
};

enum store_probe {
	STORE_PROBE_OK,		/* a row committed into the files at the
				 * path */
	STORE_PROBE_BUSY,	/* another connection held the lock: unknown */
	STORE_PROBE_FAILED,	/* the commit failed (store_fault()) */
	STORE_PROBE_MOVED	/* committed into files no longer at the path */
};


/* Whether the files this store writes into are still those at its path;
 * STORE_FILE_OK for the modes that hold none (they are not checked) and
 * for PostgreSQL (a URI names one database wherever its files are). */
enum store_file_state store_check_files(struct store *);
/* What its path names now (STORE_PATH_GONE for the SQLite modes that hold
 * no files; STORE_PATH_SAME for PostgreSQL). */
enum store_file_path store_path_state(struct store *);
/* Size of the WAL in bytes, -1 when unknown (and for PostgreSQL). */
int64_t	store_wal_bytes(struct store *);
/* Bytes free (to this process) on the database's file system; -1 when
 * unknown (and for PostgreSQL). */
int64_t	store_free_bytes(struct store *);
/* Commit one row (table health_probe), waiting up to wait_ms for the lock,
 * then check the files. PostgreSQL: reconnects first when the connection
 * was lost. */
enum store_probe store_probe(struct store *, int wait_ms);
/* Housekeeping for the writer (enum store_maint); what it did. A failure
 * is logged once when it starts and once when housekeeping works again. */
enum store_ckpt store_maintain(struct store *, enum store_maint);
/* 1 when writes work but the store falls behind in a way /healthz reports
 * (SQLite: the WAL past STORE_WAL_LIMIT with frames that checkpoints cannot
 * move), with a short reason in detail; else 0. */
int	store_behind(struct store *, char *detail, size_t n);

#endif
