/* store_health.h - keeping a writing store honest (DESIGN "Database"):
 * whether its files are still those the path names, checkpoints that keep
 * the WAL bounded, a probe that proves the database takes writes by
 * committing one, and the connection settings these rely on.
 *
 * The functions on a struct store run on the thread that owns it (the
 * writer); they log only at debug, and the caller says what a change of
 * state means. */
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

/* The lock-wait state of one connection (its sqlite3_busy_handler). */
struct store_wait {
	int64_t	 deadline_ms;	/* monotonic; 0: STORE_BUSY_TIMEOUT_MS a wait */
	int64_t	 start_ms;	/* when the current wait began */
};

enum store_ckpt {
	STORE_CKPT_DONE,	/* the whole WAL is in the database file */
	STORE_CKPT_BUSY,	/* readers or a writer kept some of it back */
	STORE_CKPT_FAILED	/* an error (store_fault() says which) */
};

enum store_probe {
	STORE_PROBE_OK,		/* a row committed into the files at the
				 * path */
	STORE_PROBE_BUSY,	/* another connection held the lock: unknown */
	STORE_PROBE_FAILED,	/* the commit failed (store_fault()) */
	STORE_PROBE_MOVED	/* committed into files no longer at the path */
};


/* Whether the files this store writes into are still those at its path;
 * STORE_FILE_OK for the modes that hold none (they are not checked). */
enum store_file_state store_check_files(struct store *);
/* What its path names now (STORE_PATH_GONE for the modes that hold none). */
enum store_file_path store_path_state(struct store *);
/* Size of the WAL in bytes, -1 when unknown. */
int64_t	store_wal_bytes(struct store *);
/* Bytes free (to this process) on the database's file system; -1 when
 * unknown. */
int64_t	store_free_bytes(struct store *);
/* Move WAL frames into the database file: PASSIVE, or TRUNCATE (waits up
 * to wait_ms for readers, then empties the WAL file and gives its space
 * back). Counted in the metrics. */
enum store_ckpt store_checkpoint(struct store *, int truncate, int wait_ms);
/* Commit one row (table health_probe), waiting up to wait_ms for the lock,
 * then check the files. */
enum store_probe store_probe(struct store *, int wait_ms);

#endif
