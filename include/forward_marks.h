/* forward_marks.h - which claimed deliveries started, kept where a killed
 * daemon cannot lose it.
 *
 * A round claims many deliveries ahead (forward_round.h) and counts their
 * attempts before any goes out. When the daemon dies, the claims that had
 * started are attempts (the hook may have run; the next one is attempt
 * n+1), but the ones still queued never went out: counting them would
 * number a first delivery 2 or more, escalate its backoff and bring it
 * nearer `dead` for every restart. A write per start to the database would
 * cost what batching saved, so each start is marked in a small file beside
 * the database (DATABASE.inflight), mapped shared: a store into it is in
 * the kernel's page cache at once and outlives the process, though not the
 * machine. The file names the boot and the database file it was written
 * for; after a reboot, or for another file, its marks are not trusted and
 * every unfinished claim counts, as without it.
 *
 * Entries: one per claim in flight (FORWARD_MAX_CLAIMED), taken and freed
 * by the dispatcher, written by the worker that starts the delivery. */
#ifndef CFHOOK_FORWARD_MARKS_H
#define CFHOOK_FORWARD_MARKS_H

#include <stddef.h>
#include <stdint.h>

#define FORWARD_MARKS_SUFFIX	".inflight"
#define FORWARD_MARK_NONE	(-1)

struct forward_marks;

/* Opens (creating) db_path's marks file and maps it, leaving what the last
 * run wrote. NULL for a PostgreSQL URI (no marks: every unfinished claim
 * counts); -1 (logged) when the file cannot be used. */
int	forward_marks_open(const char *db_path, struct forward_marks **ret);
/* The forward_log ids the last run marked started, sorted, in *ids (n of
 * them; the array is the marks' own, valid until the reset), when its
 * marks can be trusted; -1 when they cannot (another boot, another
 * database file, an older file, an entry that ran out), and *why says
 * which. NULL marks: -1. */
int	forward_marks_started(struct forward_marks *, const int64_t **ids,
	    size_t *n, const char **why);
/* Once the last run's claims are recovered: empty, and for this boot and
 * database file; with trusted 0 (they could not be recovered), marked as
 * not to be trusted, so that the next start counts every unfinished
 * claim. */
void	forward_marks_reset(struct forward_marks *, int trusted);
/* Dispatcher: an entry for a claim, or FORWARD_MARK_NONE (NULL marks, or
 * none left: the file then says it cannot be trusted). */
int	forward_marks_take(struct forward_marks *);
/* Dispatcher, once the claim's outcome is committed: the entry is free
 * (and says nothing). NONE and NULL are ignored. */
void	forward_marks_free(struct forward_marks *, int mark);
/* Worker, just before the delivery starts: the claim's forward_log id;
 * log_id 0 when it did not start after all (the entry says nothing). */
void	forward_marks_start(struct forward_marks *, int mark, int64_t log_id);
/* NULL-safe. */
void	forward_marks_close(struct forward_marks *);

#endif
