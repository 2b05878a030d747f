/* store_stats.h - the few numbers the daemon reports about its database
 * (STATUS= line, /metrics gauges). Read-only queries on the caller's own
 * connection. */
#ifndef CFHOOK_STORE_STATS_H
#define CFHOOK_STORE_STATS_H

#include <stdint.h>

#include "store.h"

struct store_counts {
	long long since;	/* events received at or after since_ms */
	long long pending;	/* forward_state 'pending' */
	long long dead;		/* forward_state 'dead' */
};

/* Returns 0 and fills *ret, or -1 (logged at debug: the caller retries on
 * its next tick). */
int	store_counts(struct store *, int64_t since_ms, struct store_counts *ret);

#endif
