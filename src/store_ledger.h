/* store_ledger.h - private to the store files: the SQL of the order ledger (DESIGN "Orders"): the
 * orders row kept in the same transaction as the event it follows, the
 * order as it stood after each event stamped on that event, and the schema
 * step that builds both for an existing database.
 *
 * ledger.c decides; this reads and writes. Like every struct store user it
 * runs on one thread's connection: the writer's for intake and the
 * upgrade. */
#ifndef CFHOOK_STORE_LEDGER_H
#define CFHOOK_STORE_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "store_int.h"

struct store_item;
struct store_ledger;		/* statements prepared on one connection */

/* Prepares the statements on db (schema version 3 or later). 0 / -1
 * (logged). */
int	store_ledger_open(sqlite3 *db, struct store_ledger **ret);
/* NULL-safe. */
void	store_ledger_close(struct store_ledger *);
/* A new event (events.id `id`, just inserted) inside the caller's
 * transaction: when it is part of the ledger (ledger_touches), reads its
 * order, applies it, writes the order and stamps the event's order_state,
 * order_paid_now and order_attention. *raised gets the attention flags it
 * raised first (0 otherwise). Never call it for a duplicate delivery: that
 * changes nothing. 0 / -1 (not logged: the caller logs with the event's
 * key and rolls back its savepoint). */
int	store_ledger_record(struct store_ledger *, const struct event *ev,
	    int64_t id, int64_t received_ms, unsigned *raised);
/* After the batch's COMMIT returned (writer thread): every flag an item
 * recorded STORE_NEW raised is counted in
 * cfhookd_orders_attention_total{reason} and logged at warning with the
 * order id (journal ORDER_ID=). */
void	store_ledger_report(struct store_item *const *items, size_t n);
/* Schema step 2 -> 3, inside the upgrade's transaction, after its SQL:
 * every stored amount is read again from its body (the text as sent), and
 * the orders are built from the stored events in id order, as if they had
 * arrived now. 0 / -1 (logged). */
int	store_ledger_upgrade(sqlite3 *db);

#endif
