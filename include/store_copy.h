/* store_copy.h - moving an SQLite database to PostgreSQL (`cfhookctl copy
 * --to URI`): every table, row for row, ids kept, in one transaction on
 * the target, which must be empty.
 *
 * Single-threaded; both stores are the caller's (the source opened
 * STORE_READONLY, the target STORE_WRITE, which creates the schema). Stop
 * the daemon on the source first: what it records after the copy's
 * snapshot is not copied. Errors are logged where they happen. */
#ifndef CFHOOK_STORE_COPY_H
#define CFHOOK_STORE_COPY_H

#include <stddef.h>
#include <stdint.h>

#include "attr.h"
#include "store.h"

#define STORE_COPY_TABLES	6

/* Rows copied per table, in the order they were copied. */
struct store_copy_counts {
	const char *table[STORE_COPY_TABLES];	/* static names */
	int64_t	 rows[STORE_COPY_TABLES];
};

enum store_copy_result {
	STORE_COPY_OK,
	STORE_COPY_NOT_EMPTY,		/* the target holds rows: nothing done */
	STORE_COPY_UNSUPPORTED,		/* not SQLite to PostgreSQL */
	STORE_COPY_ERROR		/* logged; the target is as it was */
};

/* One snapshot of `from`, streamed into `to` in one transaction: events,
 * forward_log, pruned_keys, form_signatures, orders, order_payments, each
 * in key order; the id sequences then continue after the copied ids. The
 * target's tables are locked against writers meanwhile. *ret is filled on
 * STORE_COPY_OK. */
enum store_copy_result store_copy(struct store *from, struct store *to,
	    struct store_copy_counts *ret) MUST_CHECK;

#endif
