/* writer.h - the single writer thread (DESIGN "Data flow", store step).
 *
 * HTTP threads submit items and suspend their connections; the writer takes
 * everything queued, records it in one transaction with one fsync, and calls
 * each item's done(). Group commit: while one batch commits, the next one
 * collects.
 *
 * It also keeps the store honest: it checkpoints the WAL, proves idle that
 * the database takes writes, notices when its files leave the path, and
 * reports all of it (writer_health()) for /healthz. */
#ifndef CFHOOK_WRITER_H
#define CFHOOK_WRITER_H

#include "attr.h"

#include <stdint.h>

#include "store.h"

#define WRITER_MAX_BATCH	512

/* What /healthz says about the store (DESIGN "HTTP behaviour"). */
enum writer_store {
	WRITER_STORE_OK,		/* the last write committed in place */
	WRITER_STORE_UNAVAILABLE,	/* the last write failed: 503 */
	WRITER_STORE_MOVED,		/* the files left the path: 503 */
	WRITER_STORE_WAL_OVER_LIMIT,	/* writes work; the WAL outgrew its
					 * limit (checkpoints fail) */
	WRITER_STORE_UNKNOWN		/* not proven: the probe found the
					 * lock taken */
};

struct writer_health {
	enum writer_store state;
	char	 detail[128];	/* why, a fixed phrase (no quotes); "" if ok */
	long long wal_bytes;	/* -1: unknown */
	unsigned queued;	/* items waiting for a batch */
};

struct writer;

/* Start the thread; it owns `st` from now on (closed by writer_stop). A
 * first write probe runs before it returns, so the health is known from the
 * start. */
int	writer_start(struct store *st, int forward_pending, struct writer **ret) MUST_CHECK;
/* Queue an item (any thread). Never blocks on the database. After
 * writer_stop() has begun, the item is answered STORE_UNAVAILABLE at once.
 * While the store's files are away from its path every item is answered
 * STORE_UNAVAILABLE without writing. */
void	writer_submit(struct writer *, struct store_item *);
/* Whether new events start 'pending' (a forward target is configured). */
void	writer_set_forward_pending(struct writer *, int);
/* After each commit that inserted rows while new events start pending,
 * the writer thread calls fn(arg, items, n) with the whole batch, before
 * any item is answered: every result is final and the items are valid
 * during the call. Setting it waits for a call under way, so once it
 * returns the old arg is no longer used. NULL: none. */
void	writer_set_on_commit(struct writer *, void (*fn)(void *arg,
	    struct store_item *const *items, size_t n), void *arg);
/* Monotonic ms of the last time the thread was not stuck inside a batch:
 * idle waiting, or a batch finished. For the watchdog. */
int64_t	writer_heartbeat_ms(struct writer *);
/* 0 when the store is ok (writer_health), else -1. */
int	writer_healthy(struct writer *);
/* The store's state, for /healthz (any thread). */
void	writer_health(struct writer *, struct writer_health *ret);
/* "ok", "unavailable", "moved", "wal_over_limit", "unknown". */
const char *writer_store_name(enum writer_store);
/* Items waiting (not yet in a batch). */
unsigned writer_queued(struct writer *);
/* An eventfd (read 8 bytes to clear it) that becomes readable when the
 * writer needs the daemon to run writer_reopen(): its files left the path
 * and a database it can use is there. */
int	writer_reopen_fd(struct writer *);
/* Main thread, after closing every other connection of this process to the
 * database (two WAL files for one database in one process corrupt it): the
 * writer moves what its WAL holds into the database file, closes its
 * connection and opens the database at the path again (an existing cfhookd
 * database, never a new one). Waits for it. 0 when the writer's files are
 * those at the path again (the other connections may reopen), -1 when not
 * (logged; the writer asks again later). */
int	writer_reopen(struct writer *);
/* Answers everything queued, stops the thread, closes the store. NULL-safe. */
void	writer_stop(struct writer *);

#endif
