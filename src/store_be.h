/* store_be.h - the store's backends: what a database engine implements so
 * that the daemon and cfhookctl never know which one runs (SQLite in
 * store.c and the store_*.c files beside it; PostgreSQL in store_pg*.c).
 *
 * Every struct store starts with this header; store_open() (store_api.c)
 * picks the backend from the database string and each public store_*()
 * function hands its call to the backend's entry of the same meaning.
 * Private: only src/store*.c include it (scripts/check-layers). */
#ifndef CFHOOK_STORE_BE_H
#define CFHOOK_STORE_BE_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "store_admin.h"
#include "store_health.h"
#include "store_orders.h"
#include "store_outbox.h"
#include "store_stats.h"

/* The columns of struct event_row (event_row.h), in the order each
 * backend's reader takes them (store_row_read() in store_int.h,
 * pg_row_read() in store_pg.h). A query that wants the body selects it
 * after them, as column STORE_ROW_NCOLS. */
#define STORE_ROW_COLS	"id, event_key, type, cf_payment_id, order_id," \
	" payment_status, amount, currency, event_time, content_type," \
	" received_at, last_seen_at, deliveries, forward_state," \
	" forward_attempts, last_error, forwarded_at, next_attempt_at," \
	" replay_base, idempotency_key, webhook_version, order_state," \
	" order_paid_now, order_attention"
#define STORE_ROW_NCOLS	24

/* What every backend's store begins with (its first member, so a pointer
 * to the one is a pointer to the other). */
struct store {
	const struct store_backend *be;
	char	*name;			/* for log lines: the path, or the URI
					 * with its password masked */
	enum store_mode mode;
	enum durability durability;
	char	 fault[96];		/* why the last write failed */
};

struct store_backend {
	const char *kind;		/* "sqlite", "postgresql" */
	void	(*close)(struct store *);
	int	(*record_batch)(struct store *, struct store_item **, size_t,
		    int forward_pending);
	int	(*ping)(struct store *);
	/* store_health.h */
	enum store_file_state (*check_files)(struct store *);
	enum store_file_path (*path_state)(struct store *);
	int64_t	(*wal_bytes)(struct store *);
	int64_t	(*free_bytes)(struct store *);
	enum store_probe (*probe)(struct store *, int wait_ms);
	enum store_ckpt (*maintain)(struct store *, enum store_maint);
	int	(*behind)(struct store *, char *detail, size_t n);
	/* store_stats.h */
	int	(*counts)(struct store *, int64_t since_ms,
		    struct store_counts *);
	/* store_admin.h, store_orders.h */
	int	(*admin_status)(struct store *, int64_t now, int64_t day_start,
		    struct store_admin_status *);
	int	(*admin_list)(struct store *, const struct store_admin_filter *,
		    struct event_row **, size_t *);
	enum store_admin_result (*admin_get)(struct store *, int64_t id,
		    const char *key, struct event_row *,
		    struct store_admin_attempt **, size_t *);
	int	(*admin_tombstone)(struct store *, const char *key,
		    int64_t *pruned_at, int64_t *deliveries);
	int	(*admin_replay)(struct store *, struct store_admin_replay *,
		    size_t);
	int	(*admin_replay_dead)(struct store *, int64_t **ids, size_t *n);
	int	(*admin_prune)(struct store *, int64_t before, int64_t now,
		    int dry_run, struct store_admin_prune *);
	int	(*orders_list)(struct store *, const struct store_orders_filter *,
		    struct store_order **, size_t *);
	enum store_admin_result (*orders_get)(struct store *,
		    const char *order_id, struct store_order_timeline *);
	/* store_outbox.h: NULL for SQLite, whose outbox is store_outbox.c
	 * itself (it hands another backend's outbox to its table). */
	const struct outbox_backend *outbox;
};

/* What every backend's struct outbox begins with. */
struct outbox_head {
	struct store *st;		/* the store it works on */
};

/* The outbox calls of store_outbox.h, for a backend with its own. */
struct outbox_backend {
	int	(*open)(struct store *, enum durability, struct outbox **ret);
	void	(*close)(struct outbox *);
	int	(*recover)(struct outbox *);
	int	(*begin)(struct outbox *);
	int	(*commit)(struct outbox *);
	void	(*rollback)(struct outbox *);
	int	(*due)(struct outbox *, int64_t now_ms, struct outbox_scan *sc,
		    int (*skip)(void *, int64_t, const char *), void *arg,
		    struct outbox_due *out, size_t max, size_t *n);
	int	(*next_due)(struct outbox *, int64_t now_ms, int64_t *ret);
	int	(*oldest)(struct outbox *, int64_t *ret);
	enum outbox_claim (*claim)(struct outbox *, int64_t id,
		    int64_t now_ms, struct outbox_row *ret);
	int	(*load)(struct outbox *, struct outbox_row *r);
	int	(*finish)(struct outbox *, const struct outbox_result *,
		    int64_t now_ms, unsigned max_attempts, unsigned backoff_s,
		    enum outbox_state *state, int64_t *next_ms);
};

extern const struct outbox_backend store_pg_outbox;

/* Where an outcome (not OUTBOX_UNSTARTED) moves its event, the same for
 * every backend: done, dead after max_attempts failed tries in its
 * series, or pending again, at once (*next = now_ms) or after the
 * backoff (OUTBOX_RETRY, *next the time). */
enum outbox_state store_outbox_next_state(const struct outbox_result *,
	    int64_t now_ms, unsigned max_attempts, unsigned backoff_s,
	    int64_t *next);

/* When the outcome's delivery ended: the worker's time, else now_ms. */
int64_t	store_outbox_finished_at(const struct outbox_result *, int64_t now_ms);

extern const struct store_backend store_sqlite_backend;
extern const struct store_backend store_pg_backend;

/* Each backend's store_open() and `cfhookd --check` (store.h). */
int	store_sqlite_open(const char *path, enum store_mode, enum durability,
	    struct store **ret);
int	store_sqlite_inspect(const char *path, char *note, size_t n);
int	store_pg_open(const char *uri, enum store_mode, enum durability,
	    struct store **ret);
int	store_pg_inspect(const char *uri, char *note, size_t n);

/* store_pg_uri.c: whether a PostgreSQL URI carries a password (in its
 * userspec or as password=), and the URI with that password shown as ***
 * (into out, truncated to n; returns out). */
int	store_pg_uri_has_password(const char *uri);
const char *store_pg_mask(const char *uri, char *out, size_t n);

/* The monotonic ms at which a batch's waits end: STORE_BUSY_TIMEOUT_MS
 * after its oldest item was queued, so an item that already waited behind
 * a failed batch is answered in about that time, not twice it. */
int64_t	store_batch_deadline(struct store_item *const *items, size_t n);

/* Fill the header of a new store; `name` is copied. 0 / -1 (no memory,
 * logged). */
int	store_base_init(struct store *, const struct store_backend *,
	    const char *name, enum store_mode, enum durability);
/* Free what store_base_init() allocated (not the store). */
void	store_base_done(struct store *);

#endif
