/* store_lock.h - one daemon per SQLite database (DESIGN "Database"): an
 * exclusive lock on a file beside the database, held for the daemon's life.
 * Two daemons on one file would both forward every event; cfhookctl never
 * takes it. */
#ifndef CFHOOK_STORE_LOCK_H
#define CFHOOK_STORE_LOCK_H

#include "attr.h"

/* Take the lock on "DB_PATH.lock" (created with mode 0600 when missing) and
 * write our pid into it for people to read. Returns the descriptor to keep
 * open (closing it releases the lock), or -1 when another process holds it
 * (logged, naming the lock file and that process's pid) or the file cannot
 * be opened (logged). Main thread, before the database is opened. */
int	store_lock_take(const char *db_path) MUST_CHECK;
/* Release it. -1 is ignored. */
void	store_lock_release(int fd);

#endif
