/* ctl_cmd.h - the commands of cfhookctl (DESIGN "Binaries and commands"):
 * each runs its store_admin call and prints the answer as text or JSON.
 * Arguments arrive checked and parsed (ctl.c); each returns the process
 * exit status. Single-threaded. */
#ifndef CFHOOK_CTL_CMD_H
#define CFHOOK_CTL_CMD_H

#include <stdint.h>
#include <stdio.h>

#include "store.h"
#include "store_admin.h"
#include "store_orders.h"

enum ctl_exit {
	CTL_OK = 0,
	CTL_FAIL = 1,		/* not found, or the database failed */
	CTL_USAGE = 2
};

struct ctl_zone;

struct ctl {
	struct store *st;
	struct store *target;	/* copy --to: the PostgreSQL database */
	const char *db_path;	/* as output may show it (no password) */
	const char *forward;	/* config_forward_name(), NULL with -d */
	int	 json;
	int64_t	 now;		/* unix ms */
	const struct ctl_zone *zone;	/* times shown in it; never NULL */
	FILE	*out;
};

int	ctl_cmd_status(const struct ctl *);
int	ctl_cmd_list(const struct ctl *, const struct store_admin_filter *);
/* id > 0 selects by id, else key. body_only: just the raw body bytes. */
int	ctl_cmd_show(const struct ctl *, int64_t id, const char *key,
	    int body_only);
/* req[i] came from args[i] (for messages). */
int	ctl_cmd_replay(const struct ctl *, struct store_admin_replay *req,
	    const char *const *args, size_t n);
int	ctl_cmd_replay_dead(const struct ctl *);
int	ctl_cmd_prune(const struct ctl *, int64_t before, int dry_run);
/* DESIGN "Orders" (ctl_order.c): the ledger, and one order's timeline. */
int	ctl_cmd_orders(const struct ctl *, const struct store_orders_filter *);
int	ctl_cmd_order(const struct ctl *, const char *order_id);
/* ctl_copy.c: the SQLite database into the empty PostgreSQL target. */
int	ctl_cmd_copy(const struct ctl *);

#endif
