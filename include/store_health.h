/* store_health.h - keeping a writing store honest (DESIGN "Database"):
 * the connection settings it relies on. */
#ifndef CFHOOK_STORE_HEALTH_H
#define CFHOOK_STORE_HEALTH_H

#include <stdint.h>

#include "store.h"

/* The lock-wait state of one connection (its sqlite3_busy_handler). */
struct store_wait {
	int64_t	 deadline_ms;	/* monotonic; 0: STORE_BUSY_TIMEOUT_MS a wait */
	int64_t	 start_ms;	/* when the current wait began */
};

/* sqlite3_busy_handler() callback; `arg` is a struct store_wait. Waits for
 * another connection's lock until the deadline, so that all the steps of a
 * batch share one wait. */
int	store_busy_wait(void *arg, int count);

#endif
