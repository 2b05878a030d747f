/* store_orders.h - the order queries of `cfhookctl` (DESIGN "Orders"):
 * `orders` lists the ledger, `order ID` reads one order with its events and
 * their deliveries, from one snapshot.
 *
 * Read only, like store_admin.c's queries, on cfhookctl's own struct store
 * while the daemon writes the same file (WAL: one short read transaction
 * per call). Errors are logged where they happen. Times are unix ms; -1
 * stands for SQL NULL. Single-threaded. */
#ifndef CFHOOK_STORE_ORDERS_H
#define CFHOOK_STORE_ORDERS_H

#include <stddef.h>
#include <stdint.h>

#include "event_row.h"
#include "store.h"
#include "store_admin.h"

/* One orders row; strings owned (NULL for SQL NULL). */
struct store_order {
	char	*order_id;
	char	*state;
	char	*order_amount;
	char	*currency;
	char	*paid_amount;
	char	*paid_currency;
	int64_t	 successes;
	int64_t	 first_event_at;
	int64_t	 paid_at;
	int64_t	 paid_event_id;
	int64_t	 last_event_id;
	int64_t	 last_event_at;
	char	*attention;
};

/* `orders` filters; NULL / 0 / -1 leave one out. */
struct store_orders_filter {
	const char *state;		/* PENDING | PAID | FAILED | ... */
	int	 attention;		/* only orders with attention */
	int64_t	 since;			/* an event received since then */
	unsigned limit;			/* 1..STORE_ADMIN_LIST_MAX */
};

/* One event of an order, with the order as that event left it (the
 * row's order_* columns) and its delivery attempts (oldest first). The
 * row is every column but the body (event_row.h), read by the same reader
 * as cfhookctl's other event queries. */
struct store_order_event {
	struct event_row ev;		/* ev.body NULL: left out */
	struct store_admin_attempt *attempts;
	size_t	 nattempts;
};

struct store_order_timeline {
	int	 has_order;		/* 0: only events name it (a refund) */
	struct store_order order;
	struct store_order_event *events;	/* by id, oldest first */
	size_t	 nevents;		/* at most STORE_ADMIN_LIST_MAX */
};

/* Orders matching f, the most recently active first. *rows: malloc'd
 * array of *n (NULL when none); free with store_orders_free(). 0 / -1. */
int	store_orders_list(struct store *, const struct store_orders_filter *f,
	    struct store_order **rows, size_t *n);
void	store_orders_free(struct store_order *rows, size_t n);
/* The order, its events and their attempts, from one snapshot.
 * STORE_ADMIN_NOT_FOUND when neither the ledger nor any event knows the
 * order id. On STORE_ADMIN_OK free with store_orders_timeline_done(). */
enum store_admin_result store_orders_get(struct store *,
	    const char *order_id, struct store_order_timeline *ret);
void	store_orders_timeline_done(struct store_order_timeline *);

#endif
