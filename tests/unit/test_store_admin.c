/* test_store_admin.c - cfhookctl's queries and writes (store_admin.h) on a
 * real database made by store_open(STORE_WRITE) and filled through
 * store_record_batch(), the daemon's own write path: an SQLite file, then a
 * PostgreSQL database (backends.h). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "backends.h"
#include "event.h"
#include "log.h"
#include "store.h"
#include "store_admin.h"

#define T0	1746427759733LL		/* a received_at for the first row */
#define MIN	60000LL

struct db {
	struct tdb t;
	struct store *w;		/* the "daemon" connection */
	struct store *r;		/* cfhookctl's connection */
};

static int
db_open(struct db *d)
{
	memset(d, 0, sizeof(*d));
	if (tdb_create(&d->t) == -1)
		return -1;
	if (store_open(d->t.database, STORE_WRITE, DURABILITY_NORMAL,
	    &d->w) == -1)
		return -1;
	return store_open(d->t.database, STORE_READ, DURABILITY_FULL, &d->r);
}

static void
db_close(struct db *d)
{
	store_close(d->r);
	store_close(d->w);
	tdb_drop(&d->t);
}

/* Records one event through the writer's path; returns its result. */
static enum store_result
record(struct db *d, const char *key, const char *type, const char *order,
    const char *amount, const char *body, size_t body_len, int64_t at,
    int64_t *id)
{
	struct event ev;
	struct store_item it;
	struct store_item *items[1] = { &it };

	memset(&ev, 0, sizeof(ev));
	ev.type = (char *)(uintptr_t)type;
	ev.event_key = (char *)(uintptr_t)key;
	ev.order_id = (char *)(uintptr_t)order;
	ev.amount = (char *)(uintptr_t)amount;
	ev.currency = (char *)(uintptr_t)"INR";
	memset(&it, 0, sizeof(it));
	it.ev = &ev;
	it.body = body;
	it.body_len = body_len;
	it.content_type = "application/json";
	it.received_ms = at;
	if (store_record_batch(d->w, items, 1, 1) == -1)
		return STORE_UNAVAILABLE;
	if (id != NULL)
		*id = it.id;
	return it.result;
}

static int64_t
add(struct db *d, const char *key, const char *type, const char *order,
    int64_t at)
{
	int64_t id = 0;

	(void)CHECK(record(d, key, type, order, "10.00", "{\"a\":1}", 7, at,
	    &id) == STORE_NEW);
	return id;
}

/* Raw SQL on a connection of the test's, standing in for the forwarder. */
static void
sql(struct db *d, const char *q)
{
	tdb_exec(&d->t, q);
}

static int64_t
num(struct db *d, const char *q)
{
	return tdb_int(&d->t, q);
}

/* Six events over three orders and two types, one per minute:
 * ids 1..6; states set as a forwarder would have left them. */
static void
fill(struct db *d)
{
	add(d, "PAYMENT_SUCCESS_WEBHOOK:1", "PAYMENT_SUCCESS_WEBHOOK", "o1",
	    T0);
	add(d, "PAYMENT_FAILED_WEBHOOK:2", "PAYMENT_FAILED_WEBHOOK", "o2",
	    T0 + MIN);
	add(d, "PAYMENT_SUCCESS_WEBHOOK:3", "PAYMENT_SUCCESS_WEBHOOK", "o2",
	    T0 + 2 * MIN);
	add(d, "PAYMENT_SUCCESS_WEBHOOK:4", "PAYMENT_SUCCESS_WEBHOOK", "o3",
	    T0 + 3 * MIN);
	add(d, "PAYMENT_FAILED_WEBHOOK:5", "PAYMENT_FAILED_WEBHOOK", "o3",
	    T0 + 4 * MIN);
	add(d, "PAYMENT_SUCCESS_WEBHOOK:6", "PAYMENT_SUCCESS_WEBHOOK", "o1",
	    T0 + 5 * MIN);
	sql(d, "UPDATE events SET forward_state = 'done', forwarded_at = "
	    "received_at + 500, forward_attempts = 1 WHERE id IN (1, 2, 3)");
	sql(d, "UPDATE events SET forward_state = 'dead',"
	    " forward_attempts = 12, last_error = 'hook exited 1'"
	    " WHERE id = 4");
	sql(d, "UPDATE events SET forward_attempts = 2, next_attempt_at = "
	    "9999999999999 WHERE id = 5");
	sql(d, "INSERT INTO forward_log (event_id, attempt, started_at,"
	    " finished_at, ok, error) VALUES"
	    " (1, 1, 1, 2, 1, NULL), (4, 1, 3, 4, 0, 'exit 1'),"
	    " (4, 2, 5, 6, 0, 'exit 1'), (5, 1, 7, NULL, NULL, NULL)");
}

static struct store_admin_filter
filter(void)
{
	struct store_admin_filter f;

	memset(&f, 0, sizeof(f));
	f.since = -1;
	f.limit = 50;
	return f;
}

/* The ids of a list call, as "6,5,4" for easy comparison. */
static void
list_ids(struct db *d, const struct store_admin_filter *f, char *out,
    size_t n)
{
	struct event_row *rows = NULL;
	size_t nrows = 0, i, o = 0;

	out[0] = '\0';
	if (!CHECK(store_admin_list(d->r, f, &rows, &nrows) == 0))
		return;
	for (i = 0; i < nrows && o < n; i++) {
		CHECK(rows[i].body == NULL);	/* list never loads bodies */
		o += (size_t)snprintf(out + o, n - o, "%s%lld", i ? "," : "",
		    (long long)rows[i].id);
	}
	store_admin_events_free(rows, nrows);
}

static void
test_list_filters_newest_first(void)
{
	struct store_admin_filter f;
	struct db d;
	char ids[128];

	if (!CHECK(db_open(&d) == 0))
		return;
	fill(&d);
	f = filter();
	list_ids(&d, &f, ids, sizeof(ids));
	CHECK_STR(ids, "6,5,4,3,2,1");
	f.state = "done";
	list_ids(&d, &f, ids, sizeof(ids));
	CHECK_STR(ids, "3,2,1");
	f = filter();
	f.type = "PAYMENT_FAILED_WEBHOOK";
	list_ids(&d, &f, ids, sizeof(ids));
	CHECK_STR(ids, "5,2");
	f.order_id = "o3";
	list_ids(&d, &f, ids, sizeof(ids));
	CHECK_STR(ids, "5");
	f = filter();
	f.since = T0 + 2 * MIN;		/* inclusive */
	list_ids(&d, &f, ids, sizeof(ids));
	CHECK_STR(ids, "6,5,4,3");
	f.limit = 2;
	list_ids(&d, &f, ids, sizeof(ids));
	CHECK_STR(ids, "6,5");
	f = filter();
	f.order_id = "no such order";
	list_ids(&d, &f, ids, sizeof(ids));
	CHECK_STR(ids, "");
	f = filter();
	f.limit = 0;
	CHECK(store_admin_list(d.r, &f, NULL, NULL) == -1);
	db_close(&d);
}

/* A filter value is bound, never pasted into the SQL. */
static void
test_list_filter_values_are_data(void)
{
	struct store_admin_filter f;
	struct db d;
	char ids[64];

	if (!CHECK(db_open(&d) == 0))
		return;
	add(&d, "K:1", "T", "x' OR '1'='1", T0);
	add(&d, "K:2", "T", "y", T0);
	f = filter();
	f.order_id = "x' OR '1'='1";
	list_ids(&d, &f, ids, sizeof(ids));
	CHECK_STR(ids, "1");
	db_close(&d);
}

static void
test_list_reads_every_column(void)
{
	struct store_admin_filter f = filter();
	struct event_row *rows = NULL;
	size_t n = 0;
	struct db d;

	if (!CHECK(db_open(&d) == 0))
		return;
	fill(&d);
	f.state = "dead";
	if (CHECK(store_admin_list(d.r, &f, &rows, &n) == 0) &&
	    CHECK_INT(n, 1)) {
		CHECK_INT(rows[0].id, 4);
		CHECK_STR(rows[0].event_key, "PAYMENT_SUCCESS_WEBHOOK:4");
		CHECK_STR(rows[0].type, "PAYMENT_SUCCESS_WEBHOOK");
		CHECK_STR(rows[0].order_id, "o3");
		CHECK_STR(rows[0].amount, "10.00");
		CHECK_STR(rows[0].currency, "INR");
		CHECK(rows[0].cf_payment_id == NULL);
		CHECK_STR(rows[0].content_type, "application/json");
		CHECK_INT(rows[0].received_at, T0 + 3 * MIN);
		CHECK_INT(rows[0].last_seen_at, T0 + 3 * MIN);
		CHECK_INT(rows[0].deliveries, 1);
		CHECK_STR(rows[0].forward_state, "dead");
		CHECK_INT(rows[0].forward_attempts, 12);
		CHECK_STR(rows[0].last_error, "hook exited 1");
		CHECK_INT(rows[0].forwarded_at, -1);
	}
	store_admin_events_free(rows, n);
	db_close(&d);
}

static void
test_status_counts(void)
{
	struct store_admin_status st;
	struct db d;

	if (!CHECK(db_open(&d) == 0))
		return;
	fill(&d);
	if (!CHECK(store_admin_status(d.r, T0 + 10 * MIN, T0 + 2 * MIN,
	    &st) == 0)) {
		db_close(&d);
		return;
	}
	CHECK_INT(st.total, 6);
	CHECK_INT(st.pending, 2);		/* 5 and 6 */
	CHECK_INT(st.pending_due, 1);		/* 5 waits for its retry */
	CHECK_INT(st.done, 3);
	CHECK_INT(st.dead, 1);
	CHECK_INT(st.received_today, 4);	/* 3..6 */
	CHECK_INT(st.tombstones, 0);
	CHECK(st.has_oldest_pending);
	CHECK_INT(st.oldest_pending.id, 5);
	CHECK_INT(st.oldest_pending.forward_attempts, 2);
	CHECK(st.has_last_received);
	CHECK_INT(st.last_received.id, 6);
	CHECK_STR(st.last_received.event_key, "PAYMENT_SUCCESS_WEBHOOK:6");
	store_admin_status_done(&st);
	db_close(&d);
}

static void
test_status_of_empty_database(void)
{
	struct store_admin_status st;
	struct db d;

	if (!CHECK(db_open(&d) == 0))
		return;
	if (CHECK(store_admin_status(d.r, T0, 0, &st) == 0)) {
		CHECK_INT(st.total, 0);
		CHECK_INT(st.pending + st.done + st.dead, 0);
		CHECK(!st.has_oldest_pending);
		CHECK(!st.has_last_received);
		store_admin_status_done(&st);
	}
	db_close(&d);
}

static void
test_get_by_id_and_key_with_history(void)
{
	struct event_row e;
	struct store_admin_attempt *h = NULL;
	size_t n = 0;
	struct db d;

	if (!CHECK(db_open(&d) == 0))
		return;
	fill(&d);
	if (CHECK(store_admin_get(d.r, 4, NULL, &e, &h, &n) ==
	    STORE_ADMIN_OK)) {
		CHECK_STR(e.event_key, "PAYMENT_SUCCESS_WEBHOOK:4");
		CHECK_INT(e.body_len, 7);
		CHECK(e.body != NULL && memcmp(e.body, "{\"a\":1}", 8) == 0);
		CHECK(!e.body_is_blob);
		if (CHECK_INT(n, 2)) {
			CHECK_INT(h[0].attempt, 1);
			CHECK_INT(h[1].attempt, 2);
			CHECK_INT(h[1].started_at, 5);
			CHECK_INT(h[1].finished_at, 6);
			CHECK_INT(h[1].ok, 0);
			CHECK_STR(h[1].error, "exit 1");
		}
		event_row_done(&e);
		store_admin_history_free(h, n);
	}
	h = NULL;
	if (CHECK(store_admin_get(d.r, 0, "PAYMENT_FAILED_WEBHOOK:5", &e, &h,
	    &n) == STORE_ADMIN_OK)) {
		CHECK_INT(e.id, 5);
		if (CHECK_INT(n, 1)) {	/* the daemon died mid-delivery */
			CHECK_INT(h[0].ok, -1);
			CHECK_INT(h[0].finished_at, -1);
			CHECK(h[0].error == NULL);
		}
		event_row_done(&e);
		store_admin_history_free(h, n);
	}
	h = NULL;
	if (CHECK(store_admin_get(d.r, 6, NULL, &e, &h, &n) ==
	    STORE_ADMIN_OK)) {
		CHECK_INT(n, 0);
		CHECK(h == NULL);
		event_row_done(&e);
	}
	CHECK(store_admin_get(d.r, 77, NULL, &e, &h, &n) ==
	    STORE_ADMIN_NOT_FOUND);
	CHECK(store_admin_get(d.r, 0, "nope", &e, &h, &n) ==
	    STORE_ADMIN_NOT_FOUND);
	db_close(&d);
}

/* Bytes that are not UTF-8 (or hold a NUL) come back exactly, as a BLOB. */
static void
test_get_returns_binary_body_exactly(void)
{
	static const char body[] = "{\"x\":\"\xff\xfe\"}\0tail";
	struct event_row e;
	struct store_admin_attempt *h = NULL;
	size_t n = 0;
	int64_t id = 0;
	struct db d;

	if (!CHECK(db_open(&d) == 0))
		return;
	CHECK(record(&d, "B:1", "UNKNOWN", NULL, NULL, body, sizeof(body) - 1,
	    T0, &id) == STORE_NEW);
	if (CHECK(store_admin_get(d.r, id, NULL, &e, &h, &n) ==
	    STORE_ADMIN_OK)) {
		CHECK(e.body_is_blob);
		CHECK_INT(e.body_len, sizeof(body) - 1);
		CHECK(memcmp(e.body, body, sizeof(body) - 1) == 0);
		CHECK(e.order_id == NULL);
		event_row_done(&e);
		store_admin_history_free(h, n);
	}
	db_close(&d);
}

static void
test_replay_requeues_done_and_dead_only(void)
{
	struct store_admin_replay rq[5];
	struct event_row e;
	struct store_admin_attempt *h = NULL;
	size_t nh = 0;
	struct db d;

	if (!CHECK(db_open(&d) == 0))
		return;
	fill(&d);
	memset(rq, 0, sizeof(rq));
	rq[0].id = 1;				/* done */
	rq[1].key = "PAYMENT_SUCCESS_WEBHOOK:4";	/* dead, by key */
	rq[2].id = 5;				/* pending */
	rq[3].id = 99;				/* missing */
	rq[4].id = 1;				/* twice: now pending */
	if (!CHECK(store_admin_replay(d.r, rq, 5) == 0)) {
		db_close(&d);
		return;
	}
	CHECK(rq[0].result == REPLAY_QUEUED);
	CHECK_STR(rq[0].previous_state, "done");
	CHECK_INT(rq[0].event_id, 1);
	CHECK(rq[1].result == REPLAY_QUEUED);
	CHECK_STR(rq[1].previous_state, "dead");
	CHECK_INT(rq[1].event_id, 4);
	CHECK(rq[2].result == REPLAY_ALREADY_PENDING);
	CHECK(rq[3].result == REPLAY_NOT_FOUND);
	CHECK_INT(rq[3].event_id, 0);
	CHECK(rq[4].result == REPLAY_ALREADY_PENDING);
	CHECK_INT(num(&d, "SELECT count(*) FROM events WHERE id IN (1, 4) AND"
	    " forward_state = 'pending' AND next_attempt_at = 0 AND"
	    " last_error IS NULL AND forwarded_at IS NULL"), 2);
	/* the attempt number keeps counting; the series restarts from the
	 * base (the consumer must see a replay as a repeat) */
	CHECK_INT(num(&d, "SELECT forward_attempts FROM events WHERE id = 1"),
	    1);
	CHECK_INT(num(&d, "SELECT replay_base FROM events WHERE id = 1"), 1);
	CHECK_INT(num(&d, "SELECT forward_attempts FROM events WHERE id = 4"),
	    12);
	CHECK_INT(num(&d, "SELECT replay_base FROM events WHERE id = 4"), 12);
	CHECK_INT(num(&d, "SELECT replay_base FROM events WHERE id = 5"), 0);
	if (CHECK(store_admin_get(d.r, 4, NULL, &e, &h, &nh) ==
	    STORE_ADMIN_OK)) {
		CHECK_INT(e.forward_attempts, 12);
		CHECK_INT(e.replay_base, 12);
		event_row_done(&e);
		store_admin_history_free(h, nh);
	}
	/* the pending one keeps its retry schedule and count */
	CHECK_INT(num(&d, "SELECT forward_attempts FROM events WHERE id = 5"),
	    2);
	CHECK_INT(num(&d, "SELECT next_attempt_at FROM events WHERE id = 5"),
	    9999999999999LL);
	CHECK_INT(num(&d, "SELECT count(*) FROM forward_log"), 4);
	CHECK_INT(num(&d, "SELECT count(*) FROM events WHERE"
	    " forward_state = 'done'"), 2);
	db_close(&d);
}

static void
test_replay_dead_queues_all_dead(void)
{
	int64_t *ids = NULL;
	size_t n = 0;
	struct db d;

	if (!CHECK(db_open(&d) == 0))
		return;
	fill(&d);
	sql(&d, "UPDATE events SET forward_state = 'dead' WHERE id IN (2, 6)");
	if (CHECK(store_admin_replay_dead(d.r, &ids, &n) == 0) &&
	    CHECK_INT(n, 3)) {
		CHECK_INT(ids[0], 2);
		CHECK_INT(ids[1], 4);
		CHECK_INT(ids[2], 6);
	}
	free(ids);
	CHECK_INT(num(&d, "SELECT count(*) FROM events WHERE"
	    " forward_state = 'dead'"), 0);
	CHECK_INT(num(&d, "SELECT count(*) FROM events WHERE"
	    " forward_state = 'pending' AND replay_base = forward_attempts"
	    " AND id IN (2, 4, 6)"), 3);
	CHECK_INT(num(&d, "SELECT forward_attempts FROM events WHERE id = 4"),
	    12);
	ids = NULL;
	CHECK(store_admin_replay_dead(d.r, &ids, &n) == 0);
	CHECK_INT(n, 0);
	CHECK(ids == NULL);
	db_close(&d);
}

static void
test_prune_keeps_pending_and_tombstones(void)
{
	struct store_admin_prune p;
	int64_t id = -1;
	struct db d;

	if (!CHECK(db_open(&d) == 0))
		return;
	fill(&d);
	sql(&d, "UPDATE events SET deliveries = 3 WHERE id = 2");
	/* Before id 6: 1-3 done, 4 dead go; 5 is pending and stays. */
	if (!CHECK(store_admin_prune(d.r, T0 + 5 * MIN, 1234, 0, &p) == 0)) {
		db_close(&d);
		return;
	}
	CHECK_INT(p.events, 4);
	CHECK_INT(p.tombstones, 4);
	CHECK_INT(p.forward_log, 3);		/* id 5's row stays */
	CHECK_INT(p.pending_kept, 1);
	CHECK_INT(p.batches, 1);
	CHECK_INT(num(&d, "SELECT count(*) FROM events"), 2);
	CHECK_INT(num(&d, "SELECT count(*) FROM events WHERE id IN (5, 6)"), 2);
	CHECK_INT(num(&d, "SELECT count(*) FROM forward_log"), 1);
	CHECK_INT(num(&d, "SELECT count(*) FROM pruned_keys WHERE"
	    " pruned_at = 1234"), 4);
	CHECK_INT(num(&d, "SELECT deliveries FROM pruned_keys WHERE"
	    " event_key = 'PAYMENT_FAILED_WEBHOOK:2'"), 3);
	/* A pruned event sent again is a duplicate: no new row, counted. */
	CHECK(record(&d, "PAYMENT_FAILED_WEBHOOK:2", "PAYMENT_FAILED_WEBHOOK",
	    "o2", "10.00", "{}", 2, T0 + 60 * MIN, &id) == STORE_DUPLICATE);
	CHECK_INT(num(&d, "SELECT count(*) FROM events"), 2);
	CHECK_INT(num(&d, "SELECT deliveries FROM pruned_keys WHERE"
	    " event_key = 'PAYMENT_FAILED_WEBHOOK:2'"), 4);
	/* Nothing left to prune: a second run is a no-op. */
	CHECK(store_admin_prune(d.r, T0 + 5 * MIN, 1234, 0, &p) == 0);
	CHECK_INT(p.events, 0);
	CHECK_INT(p.pending_kept, 1);
	db_close(&d);
}

static void
test_prune_dry_run_changes_nothing(void)
{
	struct store_admin_prune p;
	struct db d;

	if (!CHECK(db_open(&d) == 0))
		return;
	fill(&d);
	if (CHECK(store_admin_prune(d.r, T0 + 5 * MIN, 1, 1, &p) == 0)) {
		CHECK_INT(p.events, 4);
		CHECK_INT(p.tombstones, 4);
		CHECK_INT(p.forward_log, 3);
		CHECK_INT(p.pending_kept, 1);
		CHECK_INT(p.batches, 0);
	}
	CHECK_INT(num(&d, "SELECT count(*) FROM events"), 6);
	CHECK_INT(num(&d, "SELECT count(*) FROM forward_log"), 4);
	CHECK_INT(num(&d, "SELECT count(*) FROM pruned_keys"), 0);
	/* The cutoff is exclusive: nothing was received before T0. */
	if (CHECK(store_admin_prune(d.r, T0, 1, 1, &p) == 0))
		CHECK_INT(p.events, 0);
	db_close(&d);
}

/* More than one batch: every event is pruned, each with its tombstone, and
 * the write lock is given up between batches. */
static void
test_prune_in_batches(void)
{
	struct store_admin_prune p;
	char key[32];
	int i, n = 2 * STORE_ADMIN_PRUNE_BATCH + 3;
	struct db d;

	if (!CHECK(db_open(&d) == 0))
		return;
	for (i = 0; i < n; i++) {
		(void)snprintf(key, sizeof(key), "K:%d", i);
		add(&d, key, "T", "o", T0 + i);
	}
	sql(&d, "UPDATE events SET forward_state = 'done'");
	if (CHECK(store_admin_prune(d.r, T0 + n, 5, 0, &p) == 0)) {
		CHECK_INT(p.events, n);
		CHECK_INT(p.tombstones, n);
		CHECK_INT(p.batches, 3);
	}
	CHECK_INT(num(&d, "SELECT count(*) FROM events"), 0);
	CHECK_INT(num(&d, "SELECT count(*) FROM pruned_keys"), n);
	db_close(&d);
}

static void
test_tombstone_lookup(void)
{
	struct store_admin_prune p;
	int64_t at = 0, dl = 0;
	struct db d;

	if (!CHECK(db_open(&d) == 0))
		return;
	fill(&d);
	CHECK(store_admin_tombstone(d.r, "PAYMENT_SUCCESS_WEBHOOK:1", &at,
	    &dl) == 0);
	CHECK(store_admin_prune(d.r, T0 + 1, 777, 0, &p) == 0);
	CHECK(store_admin_tombstone(d.r, "PAYMENT_SUCCESS_WEBHOOK:1", &at,
	    &dl) == 1);
	CHECK_INT(at, 777);
	CHECK_INT(dl, 1);
	db_close(&d);
}

static void
suite(void)
{
	RUN(test_list_filters_newest_first);
	RUN(test_list_filter_values_are_data);
	RUN(test_list_reads_every_column);
	RUN(test_status_counts);
	RUN(test_status_of_empty_database);
	RUN(test_get_by_id_and_key_with_history);
	RUN(test_get_returns_binary_body_exactly);
	RUN(test_replay_requeues_done_and_dead_only);
	RUN(test_replay_dead_queues_all_dead);
	RUN(test_prune_keeps_pending_and_tombstones);
	RUN(test_prune_dry_run_changes_nothing);
	RUN(test_prune_in_batches);
	RUN(test_tombstone_lookup);
}

int
main(void)
{
	log_init(LOG_LVL_WARNING);
	backends_run(suite, 13);
	return check_finish("test_store_admin");
}
