/* store_lock.h - one daemon per SQLite database (DESIGN "Database"): an
 * exclusive lock on a file beside the database, held for the daemon's life.
 * Two daemons on one file would both forward every event; cfhookctl never
 * takes it. A PostgreSQL database needs none: several daemons sharing one
 * is what it is for (the store claims each delivery for one of them). */
#ifndef CFHOOK_STORE_LOCK_H
#define CFHOOK_STORE_LOCK_H

#include "attr.h"

/* What store_lock_take() returns for a database that takes no lock. */
#define STORE_LOCK_NONE		(-2)

/* Take the lock on "DB_PATH.lock" (created with mode 0600 when missing) and
 * write our pid into it for people to read. Returns the descriptor to keep
 * open (closing it releases the lock), STORE_LOCK_NONE for a database that
 * needs none (store_is_uri()), or -1 when another process holds it
 * (logged, naming the lock file and that process's pid) or the file cannot
 * be opened (logged). Main thread, before the database is opened. */
int	store_lock_take(const char *database) MUST_CHECK;
/* Release it. -1 and STORE_LOCK_NONE are ignored. */
void	store_lock_release(int fd);

#endif
