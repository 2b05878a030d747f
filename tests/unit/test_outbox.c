/* test_outbox.c - the forwarder's SQL on a real SQLite file made by
 * store_open(STORE_WRITE): per-order FIFO and the in-flight skip, the attempt
 * counted before a delivery, done / retry with doubling backoff (capped) /
 * dead / unanswered / interrupted, a claim given back unstarted, a replay's
 * new series, recovery after a crash, rows changed meanwhile; many claims
 * and outcomes in one transaction (all or nothing), the fresh-event cursor,
 * and the cost of a scan with a large backlog waiting out its backoff
 * (counted in SQLite VM steps, not time). */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "check.h"
#include "tmpdir.h"
#include "log.h"
#include "store.h"
#include "store_int.h"
#include "store_admin.h"
#include "store_outbox.h"

#define NOW	1800000000000LL

static char dir[] = "/tmp/cfhook-test-outbox-XXXXXX";

static int seq;

/* The store and the outbox on it (st first: the q_* helpers take either). */
struct db {
	struct store *st;
	struct outbox *o;
	char	 path[256];
};

static struct db *
fresh(void)
{
	struct db *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return NULL;
	(void)snprintf(d->path, sizeof(d->path), "%s/db%d.sqlite", dir, ++seq);
	if (store_open(d->path, STORE_WRITE, DURABILITY_FULL, &d->st) == -1 ||
	    store_outbox_open(d->st, DURABILITY_FULL, &d->o) == -1) {
		store_close(d->st);
		free(d);
		return NULL;
	}
	return d;
}

static void
db_close(struct db *d)
{
	if (d == NULL)
		return;
	store_outbox_close(d->o);
	store_close(d->st);
	free(d);
}

static int64_t
add_body(struct db *d, const char *key, const char *order,
    const void *body, int body_len, int as_blob)
{
	sqlite3 *db = store_db(d->st);
	sqlite3_stmt *s = NULL;
	int64_t id = -1;

	if (sqlite3_prepare_v2(db, "INSERT INTO events (event_key, type,"
	    " cf_payment_id, order_id, payment_status, amount, currency,"
	    " content_type, body, received_at, last_seen_at)"
	    " VALUES (?1, 'PAYMENT_SUCCESS_WEBHOOK', '77', ?2, 'SUCCESS',"
	    " '1.80', 'INR', 'application/json', ?3, 1700000000123,"
	    " 1700000000123)", -1, &s, NULL) != SQLITE_OK)
		return -1;
	(void)sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	if (order != NULL)
		(void)sqlite3_bind_text(s, 2, order, -1, SQLITE_STATIC);
	if (as_blob)
		(void)sqlite3_bind_blob(s, 3, body, body_len, SQLITE_STATIC);
	else
		(void)sqlite3_bind_text(s, 3, body, body_len, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_DONE)
		id = sqlite3_last_insert_rowid(db);
	(void)sqlite3_finalize(s);
	return id;
}

static int64_t
add(struct db *d, const char *key, const char *order)
{
	return add_body(d, key, order, "{}", 2, 0);
}

static int
exec(struct db *d, const char *sql)
{
	return sqlite3_exec(store_db(d->st), sql, NULL, NULL, NULL);
}

/* One integer from SQL (or -1 for NULL / no row). */
static int64_t
q_int(struct db *d, const char *sql, int64_t arg)
{
	sqlite3_stmt *s = NULL;
	int64_t v = -1;

	if (sqlite3_prepare_v2(store_db(d->st), sql, -1, &s, NULL) !=
	    SQLITE_OK)
		return -2;
	if (sqlite3_bind_parameter_count(s) > 0)
		(void)sqlite3_bind_int64(s, 1, arg);
	if (sqlite3_step(s) == SQLITE_ROW &&
	    sqlite3_column_type(s, 0) != SQLITE_NULL)
		v = sqlite3_column_int64(s, 0);
	(void)sqlite3_finalize(s);
	return v;
}

/* One text value from SQL into buf ("(null)" for NULL). */
static const char *
q_text(struct db *d, const char *sql, int64_t arg, char *buf, size_t n)
{
	sqlite3_stmt *s = NULL;
	const unsigned char *t;

	(void)snprintf(buf, n, "(none)");
	if (sqlite3_prepare_v2(store_db(d->st), sql, -1, &s, NULL) !=
	    SQLITE_OK)
		return buf;
	(void)sqlite3_bind_int64(s, 1, arg);
	if (sqlite3_step(s) == SQLITE_ROW) {
		t = sqlite3_column_text(s, 0);
		(void)snprintf(buf, n, "%s", t != NULL ? (const char *)t :
		    "(null)");
	}
	(void)sqlite3_finalize(s);
	return buf;
}

/* Due ids as "1 2 3" for compact checks, scanning fresh events from
 * sc->after (sc NULL: from 0). */
static const char *
due_scan(struct db *d, int64_t now, struct outbox_scan *sc,
    int (*skip)(void *, int64_t, const char *), void *arg, size_t max,
    char *buf, size_t n)
{
	struct outbox_scan zero = { 0, 0, NULL, 0 };
	struct outbox_due out[16];
	size_t got = 0, i, used = 0;

	buf[0] = '\0';
	if (store_outbox_due(d->o, now, sc != NULL ? sc : &zero, skip, arg,
	    out, max, &got) == -1) {
		(void)snprintf(buf, n, "error");
		return buf;
	}
	for (i = 0; i < got; i++)
		used += (size_t)snprintf(buf + used, n - used, "%s%lld",
		    i > 0 ? " " : "", (long long)out[i].id);
	store_outbox_due_done(out, got);
	return buf;
}

static const char *
due_ids(struct db *d, int64_t now, size_t max, char *buf, size_t n)
{
	return due_scan(d, now, NULL, NULL, NULL, max, buf, n);
}

/* One claim in its own transaction, then the row loaded. */
static enum outbox_claim
claim1(struct db *d, int64_t id, int64_t now, struct outbox_row *r)
{
	enum outbox_claim c;

	memset(r, 0, sizeof(*r));
	if (store_outbox_begin(d->o) == -1)
		return OUTBOX_ERROR;
	c = store_outbox_claim(d->o, id, now, r);
	if (c != OUTBOX_CLAIMED || store_outbox_commit(d->o) == -1) {
		store_outbox_rollback(d->o);
		if (c == OUTBOX_CLAIMED)
			c = OUTBOX_ERROR;
	}
	if (c == OUTBOX_CLAIMED && store_outbox_load(d->o, r) == -1)
		c = OUTBOX_ERROR;
	return c;
}

/* One outcome in its own transaction. */
static int
finish(struct db *d, const struct outbox_row *r, enum outbox_outcome o,
    const char *err, int64_t now, unsigned max, unsigned backoff,
    enum outbox_state *state, int64_t *next)
{
	struct outbox_result res = { r->ev.id, r->log_id, r->series, o, err,
	    0, 0 };

	if (store_outbox_begin(d->o) == -1)
		return -1;
	if (store_outbox_finish(d->o, &res, now, max, backoff, state,
	    next) == -1) {
		store_outbox_rollback(d->o);
		return -1;
	}
	return store_outbox_commit(d->o);
}

static int
skip_order_a(void *arg, int64_t id, const char *order)
{
	int64_t *skip_id = arg;

	return id == *skip_id || (order != NULL && strcmp(order, "a") == 0);
}

static void
test_due_fifo_per_order(void)
{
	struct db *d = fresh();
	char buf[128];
	int64_t skip_id;

	if (!CHECK(d != NULL))
		return;
	CHECK_INT(add(d, "k1", "a"), 1);
	CHECK_INT(add(d, "k2", "b"), 2);
	CHECK_INT(add(d, "k3", "a"), 3);
	CHECK_INT(add(d, "k4", NULL), 4);
	CHECK_INT(add(d, "k5", ""), 5);
	CHECK_INT(add(d, "k6", NULL), 6);
	CHECK_INT(add(d, "k7", "b"), 7);
	/* 3 and 7 wait behind 1 and 2; no order / empty order: no rule */
	CHECK_STR(due_ids(d, NOW, 16, buf, sizeof(buf)), "1 2 4 5 6");
	CHECK_STR(due_ids(d, NOW, 2, buf, sizeof(buf)), "1 2");
	/* in flight: 2 itself, and anything of order "a" */
	skip_id = 2;
	CHECK_STR(due_scan(d, NOW, NULL, skip_order_a, &skip_id, 16, buf,
	    sizeof(buf)), "4 5 6");
	db_close(d);
}

static void
test_claim_counts_before_delivery(void)
{
	static const char body[] = "{\"a\":\"\0\xff\"}";
	struct db *d = fresh();
	struct outbox_row r;
	char buf[64];
	int64_t id;

	if (!CHECK(d != NULL))
		return;
	id = add_body(d, "k1", "o'1", body, (int)sizeof(body) - 1, 1);
	CHECK_INT(claim1(d, id, NOW, &r), OUTBOX_CLAIMED);
	CHECK_INT(r.ev.id, id);
	CHECK_INT(r.attempt, 1);
	CHECK_INT(r.series, 1);
	CHECK_STR(r.ev.event_key, "k1");
	CHECK_STR(r.ev.type, "PAYMENT_SUCCESS_WEBHOOK");
	CHECK_STR(r.ev.cf_payment_id, "77");
	CHECK_STR(r.ev.order_id, "o'1");
	CHECK_STR(r.ev.payment_status, "SUCCESS");
	CHECK_STR(r.ev.amount, "1.80");
	CHECK_STR(r.ev.currency, "INR");
	CHECK_STR(r.ev.content_type, "application/json");
	CHECK_INT(r.ev.received_at, 1700000000123LL);
	CHECK_INT(r.ev.body_len, sizeof(body) - 1);
	CHECK(r.ev.body != NULL && memcmp(r.ev.body, body, sizeof(body) - 1) == 0);
	/* committed: visible, still pending, log row open */
	CHECK_INT(q_int(d, "SELECT forward_attempts FROM events WHERE id=?1",
	    id), 1);
	CHECK_STR(q_text(d, "SELECT forward_state FROM events WHERE id=?1",
	    id, buf, sizeof(buf)), "pending");
	CHECK_INT(q_int(d, "SELECT attempt FROM forward_log WHERE id=?1",
	    r.log_id), 1);
	CHECK_INT(q_int(d, "SELECT started_at FROM forward_log WHERE id=?1",
	    r.log_id), NOW);
	CHECK_INT(q_int(d, "SELECT count(*) FROM forward_log WHERE id=?1"
	    " AND ok IS NULL AND finished_at IS NULL AND event_id = 1", r.log_id),
	    1);
	store_outbox_row_done(&r);
	/* a second claim is attempt 2 */
	CHECK_INT(claim1(d, id, NOW, &r), OUTBOX_CLAIMED);
	CHECK_INT(r.attempt, 2);
	CHECK_INT(r.series, 2);
	store_outbox_row_done(&r);
	db_close(d);
}

/* The worker's times, when given, are the log row's and forwarded_at;
 * without them, the claim's and the recording's. */
static void
test_outcome_times_are_the_workers(void)
{
	struct outbox_result res;
	struct db *d = fresh();
	struct outbox_row r[2];
	enum outbox_state state;
	int i;

	if (!CHECK(d != NULL))
		return;
	(void)add(d, "k1", "a");
	(void)add(d, "k2", "b");
	for (i = 0; i < 2; i++)
		CHECK_INT(claim1(d, i + 1, NOW, &r[i]), OUTBOX_CLAIMED);
	CHECK_INT(store_outbox_begin(d->o), 0);
	res = (struct outbox_result){ r[0].ev.id, r[0].log_id, r[0].series,
	    OUTBOX_DELIVERED, NULL, NOW + 2000, NOW + 2500 };
	CHECK_INT(store_outbox_finish(d->o, &res, NOW + 2600, 9, 1, &state,
	    NULL), 0);
	res = (struct outbox_result){ r[1].ev.id, r[1].log_id, r[1].series,
	    OUTBOX_DELIVERED, NULL, 0, 0 };
	CHECK_INT(store_outbox_finish(d->o, &res, NOW + 2600, 9, 1, &state,
	    NULL), 0);
	CHECK_INT(store_outbox_commit(d->o), 0);
	CHECK_INT(q_int(d, "SELECT started_at FROM forward_log WHERE id=?1",
	    r[0].log_id), NOW + 2000);
	CHECK_INT(q_int(d, "SELECT finished_at FROM forward_log WHERE id=?1",
	    r[0].log_id), NOW + 2500);
	CHECK_INT(q_int(d, "SELECT forwarded_at FROM events WHERE id=?1", 1),
	    NOW + 2500);
	CHECK_INT(q_int(d, "SELECT started_at FROM forward_log WHERE id=?1",
	    r[1].log_id), NOW);
	CHECK_INT(q_int(d, "SELECT finished_at FROM forward_log WHERE id=?1",
	    r[1].log_id), NOW + 2600);
	CHECK_INT(q_int(d, "SELECT forwarded_at FROM events WHERE id=?1", 2),
	    NOW + 2600);
	for (i = 0; i < 2; i++)
		store_outbox_row_done(&r[i]);
	db_close(d);
}

static void
test_done_unblocks_order(void)
{
	struct db *d = fresh();
	struct outbox_row r;
	enum outbox_state state = OUTBOX_UNCHANGED;
	char buf[64];

	if (!CHECK(d != NULL))
		return;
	(void)add(d, "k1", "a");
	(void)add(d, "k2", "a");
	CHECK_INT(claim1(d, 1, NOW, &r), OUTBOX_CLAIMED);
	CHECK_INT(finish(d, &r, OUTBOX_DELIVERED, NULL, NOW + 5, 12, 2,
	    &state, NULL), 0);
	CHECK_INT(state, OUTBOX_DONE);
	CHECK_STR(q_text(d, "SELECT forward_state FROM events WHERE id=?1",
	    1, buf, sizeof(buf)), "done");
	CHECK_INT(q_int(d, "SELECT forwarded_at FROM events WHERE id=?1", 1),
	    NOW + 5);
	CHECK_INT(q_int(d, "SELECT ok FROM forward_log WHERE id=?1", r.log_id),
	    1);
	CHECK_INT(q_int(d, "SELECT finished_at FROM forward_log WHERE id=?1",
	    r.log_id), NOW + 5);
	CHECK_STR(due_ids(d, NOW + 5, 16, buf, sizeof(buf)), "2");
	store_outbox_row_done(&r);
	db_close(d);
}

/* A failed event backs off; the later event of its order waits the whole
 * time, while other orders go on. */
static void
test_failure_backoff_blocks_order(void)
{
	struct db *d = fresh();
	struct outbox_row r;
	enum outbox_state state = OUTBOX_UNCHANGED;
	int64_t next = 0;
	char buf[128];

	if (!CHECK(d != NULL))
		return;
	(void)add(d, "k1", "a");
	(void)add(d, "k2", "a");
	(void)add(d, "k3", "b");
	CHECK_INT(claim1(d, 1, NOW, &r), OUTBOX_CLAIMED);
	CHECK_INT(finish(d, &r, OUTBOX_FAILED, "exit status 3", NOW, 12, 2,
	    &state, &next), 0);
	CHECK_INT(state, OUTBOX_RETRY);
	CHECK_INT(next, NOW + 2000);
	CHECK_INT(q_int(d, "SELECT next_attempt_at FROM events WHERE id=?1",
	    1), NOW + 2000);
	CHECK_STR(q_text(d, "SELECT last_error FROM events WHERE id=?1", 1,
	    buf, sizeof(buf)), "exit status 3");
	CHECK_INT(q_int(d, "SELECT ok FROM forward_log WHERE id=?1", r.log_id),
	    0);
	CHECK_STR(q_text(d, "SELECT error FROM forward_log WHERE id=?1",
	    r.log_id, buf, sizeof(buf)), "exit status 3");
	CHECK_STR(due_ids(d, NOW + 1999, 16, buf, sizeof(buf)), "3");
	CHECK_INT(store_outbox_next_due(d->o, NOW, &next), 0);
	CHECK_INT(next, NOW + 2000);
	/* the retry first (its time came), then fresh events */
	CHECK_STR(due_ids(d, NOW + 2000, 16, buf, sizeof(buf)), "1 3");
	store_outbox_row_done(&r);
	db_close(d);
}

static void
test_backoff_doubles_and_caps(void)
{
	static const int64_t want_s[] = { 5, 10, 20, 40, 80, 160, 320, 640,
	    1280, 2560, 3600, 3600, 3600 };
	struct db *d = fresh();
	struct outbox_row r;
	enum outbox_state state;
	int64_t next = 0;
	size_t i;

	if (!CHECK(d != NULL))
		return;
	(void)add(d, "k1", "a");
	for (i = 0; i < sizeof(want_s) / sizeof(want_s[0]); i++) {
		state = OUTBOX_UNCHANGED;
		CHECK_INT(claim1(d, 1, NOW, &r), OUTBOX_CLAIMED);
		CHECK_INT(r.attempt, i + 1);
		CHECK_INT(finish(d, &r, OUTBOX_FAILED, "x", NOW, 100, 5, &state,
		    &next), 0);
		CHECK_INT(state, OUTBOX_RETRY);
		CHECK_INT(next - NOW, want_s[i] * 1000);
		store_outbox_row_done(&r);
	}
	db_close(d);
}

static void
test_dead_after_max_attempts(void)
{
	struct db *d = fresh();
	struct outbox_row r;
	enum outbox_state state = OUTBOX_UNCHANGED;
	int64_t next = 0;
	char buf[128];
	int i;

	if (!CHECK(d != NULL))
		return;
	(void)add(d, "k1", "a");
	(void)add(d, "k2", "a");
	for (i = 1; i <= 3; i++) {
		CHECK_INT(claim1(d, 1, NOW, &r), OUTBOX_CLAIMED);
		CHECK_INT(finish(d, &r, OUTBOX_FAILED, "connect: refused", NOW,
		    3, 1, &state, &next), 0);
		CHECK_INT(state, i < 3 ? OUTBOX_RETRY : OUTBOX_DEAD);
		store_outbox_row_done(&r);
	}
	CHECK_STR(q_text(d, "SELECT forward_state FROM events WHERE id=?1",
	    1, buf, sizeof(buf)), "dead");
	CHECK_STR(q_text(d, "SELECT last_error FROM events WHERE id=?1", 1,
	    buf, sizeof(buf)), "connect: refused");
	CHECK_INT(q_int(d, "SELECT count(*) FROM forward_log WHERE event_id=?1"
	    " AND ok = 0", 1), 3);
	/* dead releases the order */
	CHECK_STR(due_ids(d, NOW, 16, buf, sizeof(buf)), "2");
	db_close(d);
}

/* After `cfhookctl replay` of a dead event: a full new series of
 * max_attempts tries with the backoff starting over, while the attempt
 * number the consumer sees keeps counting (3, 4 after 1, 2). */
static void
test_replay_gives_a_new_series(void)
{
	struct db *d = fresh();
	struct store_admin_replay rq;
	struct outbox_row r;
	enum outbox_state state = OUTBOX_UNCHANGED;
	int64_t next = 0;
	char buf[64];
	unsigned i;

	if (!CHECK(d != NULL))
		return;
	(void)add(d, "k1", "a");
	for (i = 1; i <= 2; i++) {
		CHECK_INT(claim1(d, 1, NOW, &r), OUTBOX_CLAIMED);
		CHECK_INT(r.attempt, i);
		CHECK_INT(finish(d, &r, OUTBOX_FAILED, "x", NOW, 2, 2, &state,
		    &next), 0);
		CHECK_INT(state, i < 2 ? OUTBOX_RETRY : OUTBOX_DEAD);
		store_outbox_row_done(&r);
	}
	memset(&rq, 0, sizeof(rq));
	rq.id = 1;
	CHECK_INT(store_admin_replay(d->st, &rq, 1), 0);
	CHECK_INT(rq.result, REPLAY_QUEUED);
	CHECK_STR(due_ids(d, NOW, 16, buf, sizeof(buf)), "1");
	for (i = 3; i <= 4; i++) {
		state = OUTBOX_UNCHANGED;
		CHECK_INT(claim1(d, 1, NOW, &r), OUTBOX_CLAIMED);
		CHECK_INT(r.attempt, i);
		CHECK_INT(r.series, i - 2);
		CHECK_INT(finish(d, &r, OUTBOX_FAILED, "y", NOW, 2, 2, &state,
		    &next), 0);
		CHECK_INT(state, i < 4 ? OUTBOX_RETRY : OUTBOX_DEAD);
		if (i == 3)	/* first try of the series: backoff_s again */
			CHECK_INT(next, NOW + 2000);
		store_outbox_row_done(&r);
	}
	CHECK_INT(q_int(d, "SELECT forward_attempts FROM events WHERE id=?1",
	    1), 4);
	CHECK_INT(q_int(d, "SELECT count(*) FROM forward_log WHERE event_id=?1"
	    " AND ok = 0", 1), 4);
	db_close(d);
}

static void
test_interrupted_stays_due(void)
{
	struct db *d = fresh();
	struct outbox_row r;
	enum outbox_state state = OUTBOX_UNCHANGED;
	char buf[128];

	if (!CHECK(d != NULL))
		return;
	(void)add(d, "k1", "a");
	CHECK_INT(claim1(d, 1, NOW, &r), OUTBOX_CLAIMED);
	CHECK_INT(finish(d, &r, OUTBOX_INTERRUPTED, "interrupted by shutdown",
	    NOW + 1, 1, 1, &state, NULL), 0);
	CHECK_INT(state, OUTBOX_PENDING);
	CHECK_INT(q_int(d, "SELECT count(*) FROM forward_log WHERE id=?1 AND"
	    " ok IS NULL AND finished_at IS NOT NULL AND error ="
	    " 'interrupted by shutdown'", r.log_id), 1);
	/* not dead although attempts (1) reached max (1): it never finished */
	CHECK_STR(due_ids(d, NOW + 1, 16, buf, sizeof(buf)), "1");
	store_outbox_row_done(&r);
	CHECK_INT(claim1(d, 1, NOW, &r), OUTBOX_CLAIMED);
	CHECK_INT(r.attempt, 2);
	store_outbox_row_done(&r);
	db_close(d);
}

/* An envelope cut off behind another's failure on the socket: a failed
 * attempt in forward_log (ok 0), but due again at once and never dead for
 * it, whatever its count. */
static void
test_unanswered_due_at_once_never_dead(void)
{
	struct db *d = fresh();
	struct outbox_row r;
	enum outbox_state state = OUTBOX_UNCHANGED;
	int64_t next = 0;
	char buf[128];

	if (!CHECK(d != NULL))
		return;
	(void)add(d, "k1", "a");
	(void)add(d, "k2", "a");
	CHECK_INT(claim1(d, 1, NOW, &r), OUTBOX_CLAIMED);
	CHECK_INT(finish(d, &r, OUTBOX_UNANSWERED, "not answered", NOW + 7, 1,
	    60, &state, &next), 0);
	CHECK_INT(state, OUTBOX_PENDING);
	CHECK_STR(q_text(d, "SELECT forward_state FROM events WHERE id=?1", 1,
	    buf, sizeof(buf)), "pending");
	CHECK_INT(q_int(d, "SELECT next_attempt_at FROM events WHERE id=?1", 1),
	    NOW + 7);
	CHECK_STR(q_text(d, "SELECT last_error FROM events WHERE id=?1", 1,
	    buf, sizeof(buf)), "not answered");
	CHECK_INT(q_int(d, "SELECT ok FROM forward_log WHERE id=?1", r.log_id),
	    0);
	/* due at once, still first of its order */
	CHECK_STR(due_ids(d, NOW + 7, 16, buf, sizeof(buf)), "1");
	store_outbox_row_done(&r);
	db_close(d);
}

/* A claim a stop caught before it started is given back: no attempt was
 * made, so neither the count nor the log keeps it. */
static void
test_unstarted_claim_is_undone(void)
{
	struct db *d = fresh();
	struct outbox_row r;
	enum outbox_state state = OUTBOX_UNCHANGED;
	char buf[64];

	if (!CHECK(d != NULL))
		return;
	(void)add(d, "k1", "a");
	CHECK_INT(claim1(d, 1, NOW, &r), OUTBOX_CLAIMED);
	CHECK_INT(finish(d, &r, OUTBOX_FAILED, "x", NOW, 9, 1, &state, NULL),
	    0);
	store_outbox_row_done(&r);
	CHECK_INT(claim1(d, 1, NOW + 5000, &r), OUTBOX_CLAIMED);
	CHECK_INT(r.attempt, 2);
	CHECK_INT(finish(d, &r, OUTBOX_UNSTARTED, "not started", NOW + 5000, 9,
	    1, &state, NULL), 0);
	CHECK_INT(state, OUTBOX_PENDING);
	CHECK_INT(q_int(d, "SELECT forward_attempts FROM events WHERE id=?1",
	    1), 1);
	CHECK_INT(q_int(d, "SELECT count(*) FROM forward_log", 0), 1);
	CHECK_STR(q_text(d, "SELECT forward_state FROM events WHERE id=?1", 1,
	    buf, sizeof(buf)), "pending");
	/* recorded again (a round whose sync failed after its COMMIT is
	 * written once more): the claim was undone once, it stays so */
	CHECK_INT(finish(d, &r, OUTBOX_UNSTARTED, "not started", NOW + 5000, 9,
	    1, &state, NULL), 0);
	CHECK_INT(state, OUTBOX_UNCHANGED);
	CHECK_INT(q_int(d, "SELECT forward_attempts FROM events WHERE id=?1",
	    1), 1);
	store_outbox_row_done(&r);
	/* the next claim is attempt 2 again */
	CHECK_INT(claim1(d, 1, NOW + 6000, &r), OUTBOX_CLAIMED);
	CHECK_INT(r.attempt, 2);
	store_outbox_row_done(&r);
	db_close(d);
}

/* A crash left a log row open: start-up marks it, once. */
static void
test_recover(void)
{
	struct db *d = fresh();
	struct outbox_row r;
	char buf[128];
	int undone;

	if (!CHECK(d != NULL))
		return;
	(void)add(d, "k1", "a");
	CHECK_INT(claim1(d, 1, NOW, &r), OUTBOX_CLAIMED);
	CHECK_INT(store_outbox_recover(d->o, NULL, 0, &undone), 1);
	CHECK_INT(undone, 0);
	CHECK_INT(store_outbox_recover(d->o, NULL, 0, &undone), 0);
	CHECK_STR(q_text(d, "SELECT error FROM forward_log WHERE id=?1",
	    r.log_id, buf, sizeof(buf)), "interrupted by restart");
	CHECK_INT(q_int(d, "SELECT ok FROM forward_log WHERE id=?1", r.log_id),
	    -1);
	CHECK_STR(due_ids(d, NOW, 16, buf, sizeof(buf)), "1");
	store_outbox_row_done(&r);
	db_close(d);
}

/* With the record of which claims had started (forward_marks.h): only
 * those were attempts; the others are undone, row and count. */
static void
test_recover_marked(void)
{
	struct db *d = fresh();
	struct outbox_row r[3];
	int64_t started[1];
	char buf[128];
	int undone, i;

	if (!CHECK(d != NULL))
		return;
	(void)add(d, "k1", "a");
	(void)add(d, "k2", "b");
	(void)add(d, "k3", "c");
	for (i = 0; i < 3; i++)
		CHECK_INT(claim1(d, i + 1, NOW, &r[i]), OUTBOX_CLAIMED);
	started[0] = r[1].log_id;
	CHECK_INT(store_outbox_recover(d->o, started, 1, &undone), 1);
	CHECK_INT(undone, 2);
	CHECK_STR(q_text(d, "SELECT error FROM forward_log WHERE id=?1",
	    r[1].log_id, buf, sizeof(buf)), "interrupted by restart");
	CHECK_INT(q_int(d, "SELECT count(*) FROM forward_log WHERE id<>?1",
	    r[1].log_id), 0);
	CHECK_INT(q_int(d, "SELECT forward_attempts FROM events WHERE id=?1",
	    1), 0);
	CHECK_INT(q_int(d, "SELECT forward_attempts FROM events WHERE id=?1",
	    2), 1);
	CHECK_STR(due_ids(d, NOW, 16, buf, sizeof(buf)), "1 2 3");
	for (i = 0; i < 3; i++)
		store_outbox_row_done(&r[i]);
	/* the next claims: 1 for the undone, 2 for the one cut short */
	CHECK_INT(claim1(d, 1, NOW, &r[0]), OUTBOX_CLAIMED);
	CHECK_INT(r[0].attempt, 1);
	CHECK_INT(claim1(d, 2, NOW, &r[1]), OUTBOX_CLAIMED);
	CHECK_INT(r[1].attempt, 2);
	CHECK_INT(store_outbox_recover(d->o, started, 0, &undone), 0);
	CHECK_INT(undone, 2);
	for (i = 0; i < 2; i++)
		store_outbox_row_done(&r[i]);
	db_close(d);
}

/* Replayed or pruned by cfhookctl meanwhile: claims and outcomes do not
 * resurrect or clobber it. */
static void
test_changed_meanwhile(void)
{
	struct db *d = fresh();
	struct outbox_row r, r2;
	enum outbox_state state = OUTBOX_RETRY;
	char buf[64];

	if (!CHECK(d != NULL))
		return;
	(void)add(d, "k1", "a");
	CHECK_INT(claim1(d, 1, NOW, &r), OUTBOX_CLAIMED);
	CHECK(exec(d, "UPDATE events SET forward_state = 'done'"
	    " WHERE id = 1") == SQLITE_OK);
	CHECK_INT(finish(d, &r, OUTBOX_FAILED, "x", NOW, 1, 1, &state, NULL),
	    0);
	CHECK_INT(state, OUTBOX_UNCHANGED);
	CHECK_STR(q_text(d, "SELECT forward_state FROM events WHERE id=?1",
	    1, buf, sizeof(buf)), "done");
	CHECK_INT(claim1(d, 1, NOW, &r2), OUTBOX_GONE);
	CHECK_INT(q_int(d, "SELECT forward_attempts FROM events WHERE id=?1",
	    1), 1);
	CHECK_INT(claim1(d, 99, NOW, &r2), OUTBOX_GONE);
	CHECK_INT(q_int(d, "SELECT count(*) FROM forward_log", 0), 1);
	store_outbox_row_done(&r);
	db_close(d);
}

static void
test_next_due_and_oldest_when_none(void)
{
	struct db *d = fresh();
	int64_t v = 0;

	if (!CHECK(d != NULL))
		return;
	CHECK_INT(store_outbox_next_due(d->o, NOW, &v), 1);
	CHECK_INT(store_outbox_oldest(d->o, &v), 1);
	(void)add(d, "k1", NULL);
	CHECK_INT(store_outbox_next_due(d->o, NOW, &v), 1);	/* due now */
	CHECK_INT(store_outbox_oldest(d->o, &v), 0);
	CHECK_INT(v, 1700000000123LL);
	db_close(d);
}

/* The oldest pending event moves on as events are done. */
static void
test_oldest_pending(void)
{
	struct db *d = fresh();
	struct outbox_row r;
	enum outbox_state state;
	int64_t v = 0;

	if (!CHECK(d != NULL))
		return;
	(void)add(d, "k1", "a");
	(void)add(d, "k2", "b");
	CHECK(exec(d, "UPDATE events SET received_at = id * 1000") ==
	    SQLITE_OK);
	CHECK_INT(store_outbox_oldest(d->o, &v), 0);
	CHECK_INT(v, 1000);
	CHECK_INT(claim1(d, 1, NOW, &r), OUTBOX_CLAIMED);
	CHECK_INT(finish(d, &r, OUTBOX_DELIVERED, NULL, NOW, 3, 1, &state,
	    NULL), 0);
	CHECK_INT(store_outbox_oldest(d->o, &v), 0);
	CHECK_INT(v, 2000);
	store_outbox_row_done(&r);
	db_close(d);
}

/* A round: the outcomes of the last deliveries and the claims of the next
 * ones in one transaction. Rolled back, none of it happened; committed,
 * all of it, and another connection sees it. */
static void
test_batch_is_one_transaction(void)
{
	struct db *d = fresh();
	struct outbox_row r[6];
	struct outbox_result res;
	enum outbox_state state;
	sqlite3 *peek = NULL;
	char buf[64];
	int i;

	if (!CHECK(d != NULL))
		return;
	for (i = 0; i < 6; i++) {
		(void)snprintf(buf, sizeof(buf), "k%d", i);
		(void)add(d, buf, NULL);
	}
	CHECK_INT(sqlite3_open(d->path, &peek), SQLITE_OK);
	/* a round rolled back leaves nothing */
	CHECK_INT(store_outbox_begin(d->o), 0);
	for (i = 0; i < 3; i++)
		CHECK_INT(store_outbox_claim(d->o, i + 1, NOW, &r[i]),
		    OUTBOX_CLAIMED);
	store_outbox_rollback(d->o);
	for (i = 0; i < 3; i++)
		store_outbox_row_done(&r[i]);
	CHECK_INT(q_int(d, "SELECT sum(forward_attempts) FROM events", 0), 0);
	CHECK_INT(q_int(d, "SELECT count(*) FROM forward_log", 0), 0);
	/* claim three in one transaction: invisible until the commit; the
	 * claim reads only the counts (the write lock is held briefly) */
	CHECK_INT(store_outbox_begin(d->o), 0);
	for (i = 0; i < 3; i++)
		CHECK_INT(store_outbox_claim(d->o, i + 1, NOW, &r[i]),
		    OUTBOX_CLAIMED);
	CHECK(r[0].attempt == 1 && r[0].log_id > 0 && r[0].ev.body == NULL &&
	    r[0].ev.event_key == NULL);
	CHECK_INT(sqlite3_exec(peek, "SELECT 1", NULL, NULL, NULL), SQLITE_OK);
	CHECK_INT(store_outbox_commit(d->o), 0);
	CHECK_INT(q_int(d, "SELECT count(*) FROM forward_log", 0), 3);
	/* the next round: three outcomes and three claims, one commit */
	CHECK_INT(store_outbox_begin(d->o), 0);
	for (i = 0; i < 3; i++) {
		res = (struct outbox_result){ r[i].ev.id, r[i].log_id, r[i].series,
		    i == 1 ? OUTBOX_FAILED : OUTBOX_DELIVERED,
		    i == 1 ? "exit status 1" : NULL, 0, 0 };
		CHECK_INT(store_outbox_finish(d->o, &res, NOW + 1, 5, 1, &state,
		    NULL), 0);
		CHECK_INT(state, i == 1 ? OUTBOX_RETRY : OUTBOX_DONE);
	}
	for (i = 3; i < 6; i++)
		CHECK_INT(store_outbox_claim(d->o, i + 1, NOW + 1, &r[i]),
		    OUTBOX_CLAIMED);
	CHECK_INT(store_outbox_commit(d->o), 0);
	for (i = 0; i < 6; i++)
		store_outbox_row_done(&r[i]);
	CHECK_INT(q_int(d, "SELECT count(*) FROM events WHERE forward_state ="
	    " 'done'", 0), 2);
	CHECK_INT(q_int(d, "SELECT count(*) FROM forward_log WHERE ok = 0", 0),
	    1);
	CHECK_INT(q_int(d, "SELECT count(*) FROM forward_log", 0), 6);
	(void)sqlite3_close(peek);
	db_close(d);
}

/* Fresh events are scanned from the cursor: those passed over as held back
 * are not looked at again until their order is released; new ones are;
 * an old event replayed is found by a scan from 0. */
static void
test_fresh_cursor(void)
{
	struct db *d = fresh();
	struct outbox_scan sc = { 0, 0, NULL, 0 };
	const char *released[] = { "a" };
	struct outbox_row r;
	enum outbox_state state;
	char buf[128];

	if (!CHECK(d != NULL))
		return;
	(void)add(d, "k1", "a");	/* 1: will wait out a backoff */
	(void)add(d, "k2", "a");	/* 2, 3: held back behind it */
	(void)add(d, "k3", "a");
	(void)add(d, "k4", "b");	/* 4 */
	CHECK_INT(claim1(d, 1, NOW, &r), OUTBOX_CLAIMED);
	CHECK_INT(finish(d, &r, OUTBOX_FAILED, "x", NOW, 9, 60, &state, NULL),
	    0);
	store_outbox_row_done(&r);
	CHECK_STR(due_scan(d, NOW, &sc, NULL, NULL, 16, buf, sizeof(buf)),
	    "4");
	CHECK_INT(sc.scanned, 4);
	sc.after = sc.scanned;
	CHECK_STR(due_scan(d, NOW, &sc, NULL, NULL, 16, buf, sizeof(buf)), "");
	CHECK_INT(sc.scanned, 4);
	(void)add(d, "k5", "c");	/* 5: new, after the cursor */
	CHECK_STR(due_scan(d, NOW, &sc, NULL, NULL, 16, buf, sizeof(buf)),
	    "5");
	sc.after = sc.scanned;
	/* 1 is delivered: order "a" released, its next event (2) is due */
	CHECK_INT(claim1(d, 1, NOW, &r), OUTBOX_CLAIMED);
	CHECK_INT(finish(d, &r, OUTBOX_DELIVERED, NULL, NOW, 9, 60, &state,
	    NULL), 0);
	store_outbox_row_done(&r);
	sc.released = released;
	sc.nreleased = 1;
	/* (4 and 5 were handed out by the earlier scans) */
	CHECK_STR(due_scan(d, NOW, &sc, NULL, NULL, 16, buf, sizeof(buf)),
	    "2");
	/* an old event made pending again (a replay) shows from 0 only */
	CHECK(exec(d, "UPDATE events SET forward_state = 'done' WHERE id > 1")
	    == SQLITE_OK);
	CHECK(exec(d, "UPDATE events SET forward_state = 'pending',"
	    " next_attempt_at = 0 WHERE id = 1") == SQLITE_OK);
	sc.released = NULL;
	sc.nreleased = 0;
	CHECK_STR(due_scan(d, NOW, &sc, NULL, NULL, 16, buf, sizeof(buf)), "");
	sc.after = 0;
	CHECK_STR(due_scan(d, NOW, &sc, NULL, NULL, 16, buf, sizeof(buf)),
	    "1");
	db_close(d);
}

static int
count_steps(void *arg)
{
	(*(long *)arg)++;
	return 0;
}

/* 20,000 pending events: 2,000 waiting out a backoff and 18,000 fresh ones
 * held back behind them (ten per order). A scan from the cursor, as the
 * dispatcher makes on every commit, costs next to nothing (SQLite VM steps,
 * counted: a walk over the backlog would be hundreds of thousands); a full
 * scan from 0 asks once per order, not once per event. */
static void
test_scan_cost_with_a_backlog(void)
{
	struct db *d = fresh();
	struct outbox_scan sc = { 0, 0, NULL, 0 };
	char buf[128];
	long steps = 0, full;

	if (!CHECK(d != NULL))
		return;
	CHECK(exec(d, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL"
	    " SELECT i + 1 FROM n WHERE i < 20000)"
	    " INSERT INTO events (event_key, type, order_id, content_type, body,"
	    " received_at, last_seen_at, forward_attempts, next_attempt_at)"
	    " SELECT 'k' || i, 'T', 'o' || (i % 2000), 'application/json', '{}',"
	    " 1, 1, i <= 2000, CASE WHEN i <= 2000 THEN 1900000000000 ELSE 0"
	    " END FROM n") == SQLITE_OK);
	sqlite3_progress_handler(store_db(d->st), 100, count_steps, &steps);
	CHECK_STR(due_scan(d, NOW, &sc, NULL, NULL, 16, buf, sizeof(buf)), "");
	full = steps;
	CHECK_INT(sc.scanned, 20000);
	sc.after = sc.scanned;
	steps = 0;
	CHECK_STR(due_scan(d, NOW, &sc, NULL, NULL, 16, buf, sizeof(buf)), "");
	CHECK(steps < 10);		/* x 100 VM steps */
	(void)add(d, "new", "fresh-order");
	steps = 0;
	CHECK_STR(due_scan(d, NOW, &sc, NULL, NULL, 16, buf, sizeof(buf)),
	    "20001");
	CHECK(steps < 10);
	/* from 0: 18,000 rows but 2,000 order checks */
	CHECK(full < 20000);		/* x 100: under 2M steps */
	sqlite3_progress_handler(store_db(d->st), 0, NULL, NULL);
	db_close(d);
}

int
main(void)
{
	int rc;

	log_init(LOG_LVL_WARNING);
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_due_fifo_per_order);
	RUN(test_claim_counts_before_delivery);
	RUN(test_outcome_times_are_the_workers);
	RUN(test_done_unblocks_order);
	RUN(test_failure_backoff_blocks_order);
	RUN(test_backoff_doubles_and_caps);
	RUN(test_dead_after_max_attempts);
	RUN(test_replay_gives_a_new_series);
	RUN(test_interrupted_stays_due);
	RUN(test_unanswered_due_at_once_never_dead);
	RUN(test_unstarted_claim_is_undone);
	RUN(test_recover);
	RUN(test_recover_marked);
	RUN(test_changed_meanwhile);
	RUN(test_next_due_and_oldest_when_none);
	RUN(test_oldest_pending);
	RUN(test_batch_is_one_transaction);
	RUN(test_fresh_cursor);
	RUN(test_scan_cost_with_a_backlog);
	rc = check_finish("test_outbox");
	tmpdir_remove(dir);
	return rc;
}
