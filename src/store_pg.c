/* store_pg.c - the PostgreSQL backend: open, schema and migrations, and
 * recording a batch of webhooks in one transaction (DESIGN "Data flow",
 * "Database"), for several cfhookd sharing one database.
 *
 * The rules are store.c's: an item is reported STORE_NEW or
 * STORE_DUPLICATE only after the COMMIT that wrote it returned (and said
 * COMMIT), a failed batch leaves nothing behind, so every 503 is safe.
 * What several writers add:
 * - one row per event whoever received it: one statement counts a
 *   delivery on the event's row or inserts it, under the key's lock, with
 *   the UNIQUE event_key (ON CONFLICT DO NOTHING) as the last guard;
 * - no deadlock between two instances' batches: before touching a row a
 *   batch takes transaction advisory locks on every event key, order and
 *   form signing string it holds, sorted, in one statement
 *   (pg_lock_keys()); the ledger's read-modify-write of an order is then
 *   exact, and so is the tombstone check (cfhookctl prune takes the same
 *   key locks);
 * - every wait is bounded by the batch's deadline, on the server
 *   (statement_timeout, lock_timeout) and here (store_pg_conn.c).
 *
 * Must not: log a body or the URI unmasked, or keep SQL for other jobs here
 * (outbox and queries live in the other store_pg*.c files). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "clock.h"
#include "ledger.h"
#include "log.h"
#include "store.h"
#include "store_ledger.h"
#include "store_pg.h"

/* Opening (connect, schema) may wait for another instance's upgrade. */
#define PG_OPEN_TIMEOUT_MS	30000
/* A probe reconnects if it must; the writer's idle probe gives it this. */
#define PG_PROBE_MIN_MS		1000

/* A delivery counted on the event's row, or else the event inserted,
 * unless a tombstone left by `cfhookctl prune` keeps its key out: one
 * statement, and no id drawn for a duplicate. The batch holds the key's
 * lock (and so does prune), so nothing changes the key in between;
 * ON CONFLICT stays as the last guard of the UNIQUE key. */
static const struct pg_stmt S_RECORD = { "cfh_record",
	"WITH dup AS (UPDATE events SET deliveries = deliveries + 1,"
	"   last_seen_at = $11 WHERE event_key = $1 RETURNING id),"
	" ins AS (INSERT INTO events (event_key, type, cf_payment_id,"
	"   order_id, payment_status, amount, currency, event_time,"
	"   content_type, body, received_at, last_seen_at, deliveries,"
	"   forward_state, forward_attempts, next_attempt_at,"
	"   idempotency_key, webhook_version)"
	"   SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::text,"
	"   $7::text, $8::text, $9::text, $10::bytea, $11::bigint,"
	"   $11::bigint, 1, $12::text, 0, 0, $13::text, $14::text"
	"   WHERE NOT EXISTS (SELECT 1 FROM dup)"
	"   AND NOT EXISTS (SELECT 1 FROM pruned_keys WHERE event_key = $1)"
	"   ON CONFLICT (event_key) DO NOTHING RETURNING id)"
	" SELECT 1, id FROM ins UNION ALL SELECT 0, id FROM dup" };
static const struct pg_stmt S_PRUNED = { "cfh_pruned",
	"UPDATE pruned_keys SET deliveries = deliveries + 1"
	" WHERE event_key = $1" };
/* Spec section 11: a form whose signing string was seen before. */
static const struct pg_stmt S_FORM_SEEN = { "cfh_form_seen",
	"SELECT event_id FROM form_signatures WHERE digest = $1" };
static const struct pg_stmt S_FORM_ADD = { "cfh_form_add",
	"INSERT INTO form_signatures (digest, event_id) VALUES ($1, $2)"
	" ON CONFLICT (digest) DO NOTHING" };
static const struct pg_stmt S_DUPLICATE_ID = { "cfh_duplicate_id",
	"UPDATE events SET deliveries = deliveries + 1, last_seen_at = $1"
	" WHERE id = $2" };

static void pg_close(struct store *);

/* Whether the last error was this item's own (a value or a constraint it
 * broke, an exception a trigger raised): then only the item is rolled
 * back. Anything else (the connection, a timeout, a lock, a read-only or
 * full server, a privilege) would fail every item alike, so the batch is
 * lost and says why. */
static int
batch_fatal(const struct pg_store *st)
{
	static const char *const own[] = { "22", "23", "P0" };
	size_t i;

	if (st->conn == NULL)
		return 1;
	for (i = 0; i < sizeof(own) / sizeof(own[0]); i++) {
		if (strncmp(st->sqlstate, own[i], 2) == 0)
			return 0;
	}
	return st->sqlstate[0] != '\0';
}

/* One row's first column as an integer: 1 (*ret set), 0 no row, -1. */
static int
one_int(struct pg_store *st, const struct pg_stmt *s, struct pg_params *p,
    int64_t *ret)
{
	PGresult *res = pg_run(st, s, p);
	int rc = -1;

	pg_params_done(p);
	if (res == NULL)
		return -1;
	rc = PQntuples(res) > 0;
	if (rc == 1)
		*ret = pg_col_int(res, 0, 0, 0);
	PQclear(res);
	return rc;
}

/* A command's rows changed, or -1. */
static int64_t
changed(struct pg_store *st, const struct pg_stmt *s, struct pg_params *p)
{
	PGresult *res = pg_run(st, s, p);
	int64_t n;

	pg_params_done(p);
	if (res == NULL)
		return -1;
	n = pg_changed(res);
	PQclear(res);
	return n;
}

/* 1: inserted (*id set), 0: a delivery of the row *id counted, 2: neither
 * (a tombstone holds the key), -1. */
static int
record_event(struct pg_store *st, const struct store_item *it,
    int forward_pending, int64_t *id)
{
	const struct event *ev = it->ev;
	struct pg_params p;
	PGresult *res;
	int rc = 2;

	pg_params_init(&p);
	pg_p_text(&p, ev->event_key);
	pg_p_text(&p, ev->type);
	pg_p_text(&p, ev->cf_payment_id);
	pg_p_text(&p, ev->order_id);
	pg_p_text(&p, ev->payment_status);
	pg_p_text(&p, ev->amount);
	pg_p_text(&p, ev->currency);
	pg_p_text(&p, ev->event_time);
	pg_p_text(&p, it->content_type != NULL ? it->content_type : "");
	pg_p_bytes(&p, it->body, it->body_len);
	pg_p_int(&p, it->received_ms);
	pg_p_text(&p, forward_pending ? "pending" : "done");
	pg_p_text(&p, it->idempotency_key);
	pg_p_text(&p, it->webhook_version);
	res = pg_run(st, &S_RECORD, &p);
	pg_params_done(&p);
	if (res == NULL)
		return -1;
	if (PQntuples(res) > 0) {
		rc = (int)pg_col_int(res, 0, 0, 0);
		*id = pg_col_int(res, 0, 1, 0);
	}
	PQclear(res);
	return rc;
}

/* Spec section 11: 1 with *id the event of a form signing string seen
 * before (its delivery counted; 0 when that event was pruned), 0, -1. */
static int
form_seen(struct pg_store *st, const struct store_item *it, int64_t *id)
{
	struct pg_params p;
	int64_t n;
	int r;

	pg_params_init(&p);
	pg_p_text(&p, it->form_digest);
	r = one_int(st, &S_FORM_SEEN, &p, id);
	if (r != 1)
		return r;
	pg_params_init(&p);
	pg_p_int(&p, it->received_ms);
	pg_p_int(&p, *id);
	n = changed(st, &S_DUPLICATE_ID, &p);
	if (n == -1)
		return -1;
	if (n == 0)
		*id = 0;
	return 1;
}

/* A pruned key: its delivery counted on the tombstone. 0 / -1. */
static int
count_pruned(struct pg_store *st, const struct store_item *it)
{
	struct pg_params p;
	int64_t n;

	pg_params_init(&p);
	pg_p_text(&p, it->ev->event_key);
	n = changed(st, &S_PRUNED, &p);
	if (n == 0) {
		(void)snprintf(st->err, sizeof(st->err), "neither a row nor a "
		    "tombstone holds the key");
		st->sqlstate[0] = '\0';
	}
	return n == 1 ? 0 : -1;
}

static int
form_remember(struct pg_store *st, const struct store_item *it, int64_t id)
{
	struct pg_params p;

	pg_params_init(&p);
	pg_p_text(&p, it->form_digest);
	pg_p_int(&p, id);
	return changed(st, &S_FORM_ADD, &p) == -1 ? -1 : 0;
}

/* The item's writes, inside its savepoint. 0 (result and id set) / -1. */
static int
record_item(struct pg_store *st, struct store_item *it, int forward_pending)
{
	int64_t id = 0;
	int r;

	if (it->form_digest != NULL) {
		r = form_seen(st, it, &id);
		if (r == -1)
			return -1;
		if (r == 1) {
			it->result = STORE_DUPLICATE;
			it->id = id;
			return 0;
		}
	}
	r = record_event(st, it, forward_pending, &id);
	if (r == -1)
		return -1;
	if (r == 2) {
		if (count_pruned(st, it) == -1)
			return -1;
		it->result = STORE_DUPLICATE;	/* no row: id stays 0 */
		it->id = 0;
		return 0;
	}
	/* Only a new event moves its order (DESIGN "Orders"). */
	if (r == 1 && pg_ledger_record(st, it->ev, id, it->received_ms,
	    &it->attention_raised) == -1)
		return -1;
	if (it->form_digest != NULL && form_remember(st, it, id) == -1)
		return -1;
	it->result = r == 1 ? STORE_NEW : STORE_DUPLICATE;
	it->id = id;
	return 0;
}

/* One item in its own savepoint, so its failure undoes only that item.
 * The savepoint is open when it starts (the batch opens the first); it
 * leaves one open for the next item when `more` (a release and the next
 * savepoint in one round trip; the last is released by the COMMIT).
 * Returns -1 only when the whole batch is lost (batch_fatal()). */
static int
record_one(struct pg_store *st, struct store_item *it, int forward_pending,
    int more)
{
	const char *key;

	it->result = STORE_UNAVAILABLE;
	it->id = 0;
	it->attention_raised = 0;
	if (it->ev == NULL) {
		log_error("store: '%s': item without an event", st->base.name);
		return 0;
	}
	key = it->ev->event_key == NULL ? "" : it->ev->event_key;
	if (record_item(st, it, forward_pending) == 0 && (!more ||
	    pg_cmd(st, "RELEASE SAVEPOINT item; SAVEPOINT item") == 0))
		return 0;
	it->result = STORE_UNAVAILABLE;
	it->id = 0;
	it->attention_raised = 0;
	if (batch_fatal(st))
		return -1;
	log_error("store: '%s': event '%s': %s", st->base.name, key, st->err);
	/* The savepoint stays, empty again: the next item's. */
	if (pg_cmd(st, "ROLLBACK TO SAVEPOINT item") == -1)
		return -1;
	return 0;
}

/* The batch's advisory locks: its event keys, the orders its payment and
 * link events move, and its forms' signing strings. */
static int
lock_batch(struct pg_store *st, struct store_item **items, size_t n)
{
	const struct event *ev;
	int64_t *keys;
	size_t i, k = 0;
	int rc;

	keys = calloc(n * 3 + 1, sizeof(*keys));
	if (keys == NULL) {
		(void)snprintf(st->err, sizeof(st->err), "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		ev = items[i]->ev;
		if (ev == NULL || ev->event_key == NULL)
			continue;
		keys[k++] = pg_lock_key("e", ev->event_key);
		if (ledger_touches(ev->type, ev->order_id))
			keys[k++] = pg_lock_key("o", ev->order_id);
		if (items[i]->form_digest != NULL)
			keys[k++] = pg_lock_key("f", items[i]->form_digest);
	}
	rc = pg_lock_keys(st, keys, k);
	free(keys);
	return rc;
}

/* BEGIN, with the server bounded by what is left of the deadline (a little
 * less, so that it answers before we give up on it). */
static int
begin(struct pg_store *st)
{
	int64_t left = st->deadline_ms - clock_mono_ms() - 50;
	char sql[160];

	if (left < 1) {
		(void)snprintf(st->err, sizeof(st->err), "timed out before "
		    "the transaction began");
		st->sqlstate[0] = '\0';
		return -1;
	}
	(void)snprintf(sql, sizeof(sql), "BEGIN; SET LOCAL statement_timeout "
	    "= %lld; SET LOCAL lock_timeout = %lld", (long long)left,
	    (long long)left);
	return pg_cmd(st, sql);
}

static void
fail_batch(struct pg_store *st, struct store_item **items, size_t n,
    const char *what)
{
	size_t i;

	pg_note_fault(st);
	if (what != NULL)
		log_error("store: '%s': %s: %s; %zu event(s) answered 503",
		    st->base.name, what, st->err, n);
	else
		log_error("store: '%s': transaction lost (%s); %zu event(s) "
		    "answered 503", st->base.name, st->err, n);
	pg_rollback(st);
	for (i = 0; i < n; i++) {
		items[i]->result = STORE_UNAVAILABLE;
		items[i]->id = 0;
	}
}

static int
pg_record_batch(struct store *base, struct store_item **items, size_t n,
    int forward_pending)
{
	struct pg_store *st = pg(base);
	const char *what = "connect";
	size_t i;
	int news = 0, rc = -1;

	st->base.fault[0] = '\0';
	st->deadline_ms = store_batch_deadline(items, n);
	if (pg_ready(st) == -1)
		goto out;
	what = "begin";
	if (begin(st) == -1)
		goto out;
	what = "lock";
	if (lock_batch(st, items, n) == -1)
		goto out;
	what = "savepoint";
	if (pg_cmd(st, "SAVEPOINT item") == -1)
		goto out;
	what = NULL;
	for (i = 0; i < n; i++) {
		if (record_one(st, items[i], forward_pending, i + 1 < n) == -1)
			goto out;
		if (items[i]->result == STORE_NEW)
			news++;
	}
	/* synchronous_commit on: the WAL is flushed before COMMIT answers,
	 * and nothing is reported stored before it did. */
	what = "commit";
	if (pg_commit(st) == -1)
		goto out;
	store_ledger_report(items, n);	/* only what was committed */
	rc = news;
out:
	/* The rollback too keeps to the batch's deadline: past it, the
	 * connection is dropped and the server rolls back. */
	if (rc == -1)
		fail_batch(st, items, n, what);
	st->deadline_ms = 0;
	return rc;
}

static int
pg_ping(struct store *base)
{
	struct pg_store *st = pg(base);
	int ok;

	ok = pg_ready(st) == 0 && pg_cmd(st, "SELECT 1") == 0;
	if (!ok && !st->ping_failing)
		pg_log_error(st, "ping");
	else if (ok && st->ping_failing)
		log_info("store: '%s': answers again", st->base.name);
	st->ping_failing = !ok;
	return ok ? 0 : -1;
}

/* BEGIN, the row, COMMIT: a commit like a batch's, so it fails where a
 * batch would (a full disk, a read-only server, no server), reconnecting
 * first when the connection was lost. */
static enum store_probe
pg_probe(struct store *base, int wait_ms)
{
	struct pg_store *st = pg(base);
	enum store_probe r = STORE_PROBE_FAILED;
	char sql[256];

	if (wait_ms < PG_PROBE_MIN_MS)
		wait_ms = PG_PROBE_MIN_MS;
	st->deadline_ms = clock_mono_ms() + wait_ms;
	(void)snprintf(sql, sizeof(sql), "BEGIN; SET LOCAL lock_timeout = %d;"
	    " INSERT INTO health_probe (id, probed_at) VALUES (1, %lld)"
	    " ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at;"
	    " COMMIT", wait_ms, (long long)clock_wall_ms());
	if (pg_ready(st) == 0 && pg_cmd(st, sql) == 0 &&
	    PQtransactionStatus(st->conn) == PQTRANS_IDLE)
		r = STORE_PROBE_OK;
	else if (strcmp(st->sqlstate, "55P03") == 0)
		r = STORE_PROBE_BUSY;
	if (r != STORE_PROBE_OK) {
		pg_note_fault(st);
		log_debug("store: '%s': write probe: %s", st->base.name,
		    st->err);
		pg_rollback(st);
	}
	st->deadline_ms = 0;
	return r;
}

/* Nothing to checkpoint; after a failure, a lost connection is made again
 * (paced), so that the next batch finds one. */
static enum store_ckpt
pg_maintain(struct store *base, enum store_maint when)
{
	struct pg_store *st = pg(base);

	if (when != STORE_MAINT_RECOVER || st->conn != NULL)
		return when == STORE_MAINT_SAVE ? STORE_CKPT_DONE :
		    STORE_CKPT_NONE;
	return pg_ready(st) == 0 ? STORE_CKPT_DONE : STORE_CKPT_FAILED;
}

static int
pg_behind(struct store *base, char *detail, size_t n)
{
	(void)base;
	(void)detail;
	(void)n;
	return 0;
}

/* A URI names a database, not files: it is always where it points. */
static enum store_file_state
pg_check_files(struct store *base)
{
	(void)base;
	return STORE_FILE_OK;
}

static enum store_file_path
pg_path_state(struct store *base)
{
	(void)base;
	return STORE_PATH_SAME;
}

static int64_t
pg_no_bytes(struct store *base)
{
	(void)base;
	return -1;
}

/* A store with its URI and header; not connected. */
static struct pg_store *
pg_new(const char *uri, enum store_mode mode, enum durability durability)
{
	struct pg_store *st = calloc(1, sizeof(*st));

	if (st == NULL || store_base_init(&st->base, &store_pg_backend, uri,
	    mode, durability) == -1) {
		free(st);
		log_error("store: PostgreSQL: out of memory");
		return NULL;
	}
	st->uri = strdup(uri);
	if (st->uri == NULL) {
		log_error("store: '%s': out of memory", st->base.name);
		pg_close(&st->base);
		return NULL;
	}
	return st;
}

int
store_pg_open(const char *uri, enum store_mode mode,
    enum durability durability, struct store **ret)
{
	struct pg_store *st = pg_new(uri, mode, durability);
	int writing = mode == STORE_WRITE || mode == STORE_EXISTING;
	int rc = -1;

	if (st == NULL)
		return -1;
	st->deadline_ms = clock_mono_ms() + PG_OPEN_TIMEOUT_MS;
	if (pg_ready(st) == -1) {
		log_error("store: '%s': cannot connect: %s", st->base.name,
		    st->err);
		goto out;
	}
	if (writing ? pg_schema_migrate(st) : pg_schema_check(st))
		goto out;
	st->deadline_ms = 0;
	*ret = &st->base;
	st = NULL;
	rc = 0;
out:
	if (st != NULL)
		pg_close(&st->base);
	return rc;
}

/* `cfhookd --check`: connect read-only and read the version; nothing is
 * created. */
int
store_pg_inspect(const char *uri, char *note, size_t n)
{
	struct pg_store *st = pg_new(uri, STORE_READONLY, DURABILITY_FULL);
	int rc = -1;

	if (st == NULL)
		return -1;
	st->deadline_ms = clock_mono_ms() + STORE_BUSY_TIMEOUT_MS;
	if (pg_ready(st) == -1)
		log_error("store: '%s': cannot connect: %s", st->base.name,
		    st->err);
	else
		rc = pg_schema_inspect(st, note, n);
	pg_close(&st->base);
	return rc;
}

static void
pg_close(struct store *base)
{
	struct pg_store *st = pg(base);

	pg_drop(st);
	if (st->uri != NULL) {
		explicit_bzero(st->uri, strlen(st->uri));
		free(st->uri);
	}
	store_base_done(&st->base);
	free(st);
}

const struct store_backend store_pg_backend = {
	.kind = "postgresql",
	.close = pg_close,
	.record_batch = pg_record_batch,
	.ping = pg_ping,
	.check_files = pg_check_files,
	.path_state = pg_path_state,
	.wal_bytes = pg_no_bytes,
	.free_bytes = pg_no_bytes,
	.probe = pg_probe,
	.maintain = pg_maintain,
	.behind = pg_behind,
	.counts = store_pg_counts,
	.admin_status = store_pg_admin_status,
	.admin_list = store_pg_admin_list,
	.admin_get = store_pg_admin_get,
	.admin_tombstone = store_pg_admin_tombstone,
	.admin_replay = store_pg_admin_replay,
	.admin_replay_dead = store_pg_admin_replay_dead,
	.admin_prune = store_pg_admin_prune,
	.orders_list = store_pg_orders_list,
	.orders_get = store_pg_orders_get,
	.outbox = &store_pg_outbox,
};
