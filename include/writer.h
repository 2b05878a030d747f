/* writer.h - the single writer thread (DESIGN "Data flow", store step).
 *
 * HTTP threads submit items and suspend their connections; the writer takes
 * everything queued, records it in one transaction with one fsync, and calls
 * each item's done(). Group commit: while one batch commits, the next one
 * collects. */
#ifndef CFHOOK_WRITER_H
#define CFHOOK_WRITER_H

#include <stdint.h>

#include "store.h"

#define WRITER_MAX_BATCH	512

struct writer;

/* Start the thread; it owns `st` from now on (closed by writer_stop). */
int	writer_start(struct store *st, int forward_pending, struct writer **ret);
/* Queue an item (any thread). Never blocks on the database. After
 * writer_stop() has begun, the item is answered STORE_UNAVAILABLE at once. */
void	writer_submit(struct writer *, struct store_item *);
/* Whether new events start 'pending' (a forward target is configured). */
void	writer_set_forward_pending(struct writer *, int);
/* Called from the writer thread after each commit that inserted rows. */
void	writer_set_on_commit(struct writer *, void (*fn)(void *), void *arg);
/* Monotonic ms of the last time the thread was not stuck inside a batch:
 * idle waiting, or a batch finished. For the watchdog. */
int64_t	writer_heartbeat_ms(struct writer *);
/* 0 when the last batch committed (or none ran yet), else -1; for /healthz. */
int	writer_healthy(struct writer *);
/* Items waiting (not yet in a batch). */
unsigned writer_queued(struct writer *);
/* Answers everything queued, stops the thread, closes the store. NULL-safe. */
void	writer_stop(struct writer *);

#endif
