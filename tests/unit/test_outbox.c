/* test_outbox.c - the forwarder's SQL on a real SQLite file made by
 * store_open(STORE_WRITE): per-order FIFO and the in-flight skip, the attempt
 * counted before a delivery, done / retry with doubling backoff (capped) /
 * dead / interrupted, a replay's new series, recovery after a crash, and rows
 * changed meanwhile. */
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

static struct store *
fresh(void)
{
	char path[256];
	struct store *st = NULL;

	(void)snprintf(path, sizeof(path), "%s/db%d.sqlite", dir, ++seq);
	if (store_open(path, STORE_WRITE, DURABILITY_NORMAL, &st) == -1)
		return NULL;
	return st;
}

static int64_t
add_body(struct store *st, const char *key, const char *order,
    const void *body, int body_len, int as_blob)
{
	sqlite3 *db = store_db(st);
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
add(struct store *st, const char *key, const char *order)
{
	return add_body(st, key, order, "{}", 2, 0);
}

/* One integer from SQL (or -1 for NULL / no row). */
static int64_t
q_int(struct store *st, const char *sql, int64_t arg)
{
	sqlite3_stmt *s = NULL;
	int64_t v = -1;

	if (sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL) != SQLITE_OK)
		return -2;
	(void)sqlite3_bind_int64(s, 1, arg);
	if (sqlite3_step(s) == SQLITE_ROW &&
	    sqlite3_column_type(s, 0) != SQLITE_NULL)
		v = sqlite3_column_int64(s, 0);
	(void)sqlite3_finalize(s);
	return v;
}

/* One text value from SQL into buf ("(null)" for NULL). */
static const char *
q_text(struct store *st, const char *sql, int64_t arg, char *buf, size_t n)
{
	sqlite3_stmt *s = NULL;
	const unsigned char *t;

	(void)snprintf(buf, n, "(none)");
	if (sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL) != SQLITE_OK)
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

/* Due ids as "1 2 3" for compact checks. */
static const char *
due_ids(struct store *st, int64_t now,
    int (*skip)(void *, int64_t, const char *), void *arg, size_t max,
    char *buf, size_t n)
{
	struct outbox_due d[16];
	size_t got = 0, i, used = 0;

	buf[0] = '\0';
	if (store_outbox_due(st, now, skip, arg, d, max, &got) == -1) {
		(void)snprintf(buf, n, "error");
		return buf;
	}
	for (i = 0; i < got; i++)
		used += (size_t)snprintf(buf + used, n - used, "%s%lld",
		    i > 0 ? " " : "", (long long)d[i].id);
	store_outbox_due_done(d, got);
	return buf;
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
	struct store *st = fresh();
	char buf[128];
	int64_t skip_id;

	if (!CHECK(st != NULL))
		return;
	CHECK_INT(add(st, "k1", "a"), 1);
	CHECK_INT(add(st, "k2", "b"), 2);
	CHECK_INT(add(st, "k3", "a"), 3);
	CHECK_INT(add(st, "k4", NULL), 4);
	CHECK_INT(add(st, "k5", ""), 5);
	CHECK_INT(add(st, "k6", NULL), 6);
	CHECK_INT(add(st, "k7", "b"), 7);
	/* 3 and 7 wait behind 1 and 2; no order / empty order: no rule */
	CHECK_STR(due_ids(st, NOW, NULL, NULL, 16, buf, sizeof(buf)),
	    "1 2 4 5 6");
	CHECK_STR(due_ids(st, NOW, NULL, NULL, 2, buf, sizeof(buf)), "1 2");
	/* in flight: 2 itself, and anything of order "a" */
	skip_id = 2;
	CHECK_STR(due_ids(st, NOW, skip_order_a, &skip_id, 16, buf,
	    sizeof(buf)), "4 5 6");
	store_close(st);
}

static void
test_claim_counts_before_delivery(void)
{
	static const char body[] = "{\"a\":\"\0\xff\"}";
	struct store *st = fresh();
	struct outbox_row r;
	char buf[64];
	int64_t id;

	if (!CHECK(st != NULL))
		return;
	id = add_body(st, "k1", "o'1", body, (int)sizeof(body) - 1, 1);
	CHECK_INT(store_outbox_claim(st, id, NOW, &r), OUTBOX_CLAIMED);
	CHECK_INT(r.id, id);
	CHECK_INT(r.attempt, 1);
	CHECK_STR(r.event_key, "k1");
	CHECK_STR(r.type, "PAYMENT_SUCCESS_WEBHOOK");
	CHECK_STR(r.cf_payment_id, "77");
	CHECK_STR(r.order_id, "o'1");
	CHECK_STR(r.payment_status, "SUCCESS");
	CHECK_STR(r.amount, "1.80");
	CHECK_STR(r.currency, "INR");
	CHECK_STR(r.content_type, "application/json");
	CHECK_INT(r.received_at, 1700000000123LL);
	CHECK_INT(r.body_len, sizeof(body) - 1);
	CHECK(r.body != NULL && memcmp(r.body, body, sizeof(body) - 1) == 0);
	/* committed: visible, still pending, log row open */
	CHECK_INT(q_int(st, "SELECT forward_attempts FROM events WHERE id=?1",
	    id), 1);
	CHECK_STR(q_text(st, "SELECT forward_state FROM events WHERE id=?1",
	    id, buf, sizeof(buf)), "pending");
	CHECK_INT(q_int(st, "SELECT attempt FROM forward_log WHERE id=?1",
	    r.log_id), 1);
	CHECK_INT(q_int(st, "SELECT started_at FROM forward_log WHERE id=?1",
	    r.log_id), NOW);
	CHECK_INT(q_int(st, "SELECT count(*) FROM forward_log WHERE id=?1"
	    " AND ok IS NULL AND finished_at IS NULL AND event_id = 1", r.log_id),
	    1);
	store_outbox_row_done(&r);
	/* a second claim is attempt 2 */
	CHECK_INT(store_outbox_claim(st, id, NOW, &r), OUTBOX_CLAIMED);
	CHECK_INT(r.attempt, 2);
	store_outbox_row_done(&r);
	store_close(st);
}

static int
finish(struct store *st, const struct outbox_row *r, enum outbox_outcome o,
    const char *err, int64_t now, unsigned max, unsigned backoff,
    enum outbox_state *state, int64_t *next)
{
	struct outbox_result res = { r->id, r->log_id, o, err };

	return store_outbox_finish(st, &res, now, max, backoff, state, next);
}

static void
test_done_unblocks_order(void)
{
	struct store *st = fresh();
	struct outbox_row r;
	enum outbox_state state = OUTBOX_UNCHANGED;
	char buf[64];

	if (!CHECK(st != NULL))
		return;
	(void)add(st, "k1", "a");
	(void)add(st, "k2", "a");
	CHECK_INT(store_outbox_claim(st, 1, NOW, &r), OUTBOX_CLAIMED);
	CHECK_INT(finish(st, &r, OUTBOX_DELIVERED, NULL, NOW + 5, 12, 2,
	    &state, NULL), 0);
	CHECK_INT(state, OUTBOX_DONE);
	CHECK_STR(q_text(st, "SELECT forward_state FROM events WHERE id=?1",
	    1, buf, sizeof(buf)), "done");
	CHECK_INT(q_int(st, "SELECT forwarded_at FROM events WHERE id=?1", 1),
	    NOW + 5);
	CHECK_INT(q_int(st, "SELECT ok FROM forward_log WHERE id=?1", r.log_id),
	    1);
	CHECK_INT(q_int(st, "SELECT finished_at FROM forward_log WHERE id=?1",
	    r.log_id), NOW + 5);
	CHECK_STR(due_ids(st, NOW + 5, NULL, NULL, 16, buf, sizeof(buf)), "2");
	store_outbox_row_done(&r);
	store_close(st);
}

/* A failed event backs off; the later event of its order waits the whole
 * time, while other orders go on. */
static void
test_failure_backoff_blocks_order(void)
{
	struct store *st = fresh();
	struct outbox_row r;
	enum outbox_state state = OUTBOX_UNCHANGED;
	int64_t next = 0;
	char buf[128];

	if (!CHECK(st != NULL))
		return;
	(void)add(st, "k1", "a");
	(void)add(st, "k2", "a");
	(void)add(st, "k3", "b");
	CHECK_INT(store_outbox_claim(st, 1, NOW, &r), OUTBOX_CLAIMED);
	CHECK_INT(finish(st, &r, OUTBOX_FAILED, "exit status 3", NOW, 12, 2,
	    &state, &next), 0);
	CHECK_INT(state, OUTBOX_RETRY);
	CHECK_INT(next, NOW + 2000);
	CHECK_INT(q_int(st, "SELECT next_attempt_at FROM events WHERE id=?1",
	    1), NOW + 2000);
	CHECK_STR(q_text(st, "SELECT last_error FROM events WHERE id=?1", 1,
	    buf, sizeof(buf)), "exit status 3");
	CHECK_INT(q_int(st, "SELECT ok FROM forward_log WHERE id=?1", r.log_id),
	    0);
	CHECK_STR(q_text(st, "SELECT error FROM forward_log WHERE id=?1",
	    r.log_id, buf, sizeof(buf)), "exit status 3");
	CHECK_STR(due_ids(st, NOW + 1999, NULL, NULL, 16, buf, sizeof(buf)),
	    "3");
	CHECK_INT(store_outbox_next_due(st, NOW, &next), 0);
	CHECK_INT(next, NOW + 2000);
	CHECK_STR(due_ids(st, NOW + 2000, NULL, NULL, 16, buf, sizeof(buf)),
	    "1 3");
	store_outbox_row_done(&r);
	store_close(st);
}

static void
test_backoff_doubles_and_caps(void)
{
	static const int64_t want_s[] = { 5, 10, 20, 40, 80, 160, 320, 640,
	    1280, 2560, 3600, 3600, 3600 };
	struct store *st = fresh();
	struct outbox_row r;
	enum outbox_state state;
	int64_t next = 0;
	size_t i;

	if (!CHECK(st != NULL))
		return;
	(void)add(st, "k1", "a");
	for (i = 0; i < sizeof(want_s) / sizeof(want_s[0]); i++) {
		state = OUTBOX_UNCHANGED;
		CHECK_INT(store_outbox_claim(st, 1, NOW, &r), OUTBOX_CLAIMED);
		CHECK_INT(r.attempt, i + 1);
		CHECK_INT(finish(st, &r, OUTBOX_FAILED, "x", NOW, 100, 5, &state,
		    &next), 0);
		CHECK_INT(state, OUTBOX_RETRY);
		CHECK_INT(next - NOW, want_s[i] * 1000);
		store_outbox_row_done(&r);
	}
	store_close(st);
}

static void
test_dead_after_max_attempts(void)
{
	struct store *st = fresh();
	struct outbox_row r;
	enum outbox_state state = OUTBOX_UNCHANGED;
	int64_t next = 0;
	char buf[128];
	int i;

	if (!CHECK(st != NULL))
		return;
	(void)add(st, "k1", "a");
	(void)add(st, "k2", "a");
	for (i = 1; i <= 3; i++) {
		CHECK_INT(store_outbox_claim(st, 1, NOW, &r), OUTBOX_CLAIMED);
		CHECK_INT(finish(st, &r, OUTBOX_FAILED, "connect: refused", NOW,
		    3, 1, &state, &next), 0);
		CHECK_INT(state, i < 3 ? OUTBOX_RETRY : OUTBOX_DEAD);
		store_outbox_row_done(&r);
	}
	CHECK_STR(q_text(st, "SELECT forward_state FROM events WHERE id=?1",
	    1, buf, sizeof(buf)), "dead");
	CHECK_STR(q_text(st, "SELECT last_error FROM events WHERE id=?1", 1,
	    buf, sizeof(buf)), "connect: refused");
	CHECK_INT(q_int(st, "SELECT count(*) FROM forward_log WHERE event_id=?1"
	    " AND ok = 0", 1), 3);
	/* dead releases the order */
	CHECK_STR(due_ids(st, NOW, NULL, NULL, 16, buf, sizeof(buf)), "2");
	store_close(st);
}

/* After `cfhookctl replay` of a dead event: a full new series of
 * max_attempts tries with the backoff starting over, while the attempt
 * number the consumer sees keeps counting (3, 4 after 1, 2). */
static void
test_replay_gives_a_new_series(void)
{
	struct store *st = fresh();
	struct store_admin_replay rq;
	struct outbox_row r;
	enum outbox_state state = OUTBOX_UNCHANGED;
	int64_t next = 0;
	char buf[64];
	unsigned i;

	if (!CHECK(st != NULL))
		return;
	(void)add(st, "k1", "a");
	for (i = 1; i <= 2; i++) {
		CHECK_INT(store_outbox_claim(st, 1, NOW, &r), OUTBOX_CLAIMED);
		CHECK_INT(r.attempt, i);
		CHECK_INT(finish(st, &r, OUTBOX_FAILED, "x", NOW, 2, 2, &state,
		    &next), 0);
		CHECK_INT(state, i < 2 ? OUTBOX_RETRY : OUTBOX_DEAD);
		store_outbox_row_done(&r);
	}
	memset(&rq, 0, sizeof(rq));
	rq.id = 1;
	CHECK_INT(store_admin_replay(st, &rq, 1), 0);
	CHECK_INT(rq.result, REPLAY_QUEUED);
	CHECK_STR(due_ids(st, NOW, NULL, NULL, 16, buf, sizeof(buf)), "1");
	for (i = 3; i <= 4; i++) {
		state = OUTBOX_UNCHANGED;
		CHECK_INT(store_outbox_claim(st, 1, NOW, &r), OUTBOX_CLAIMED);
		CHECK_INT(r.attempt, i);
		CHECK_INT(finish(st, &r, OUTBOX_FAILED, "y", NOW, 2, 2, &state,
		    &next), 0);
		CHECK_INT(state, i < 4 ? OUTBOX_RETRY : OUTBOX_DEAD);
		if (i == 3)	/* first try of the series: backoff_s again */
			CHECK_INT(next, NOW + 2000);
		store_outbox_row_done(&r);
	}
	CHECK_INT(q_int(st, "SELECT forward_attempts FROM events WHERE id=?1",
	    1), 4);
	CHECK_INT(q_int(st, "SELECT count(*) FROM forward_log WHERE event_id=?1"
	    " AND ok = 0", 1), 4);
	store_close(st);
}

static void
test_interrupted_stays_due(void)
{
	struct store *st = fresh();
	struct outbox_row r;
	enum outbox_state state = OUTBOX_UNCHANGED;
	char buf[128];

	if (!CHECK(st != NULL))
		return;
	(void)add(st, "k1", "a");
	CHECK_INT(store_outbox_claim(st, 1, NOW, &r), OUTBOX_CLAIMED);
	CHECK_INT(finish(st, &r, OUTBOX_INTERRUPTED, "interrupted by shutdown",
	    NOW + 1, 1, 1, &state, NULL), 0);
	CHECK_INT(state, OUTBOX_PENDING);
	CHECK_INT(q_int(st, "SELECT count(*) FROM forward_log WHERE id=?1 AND"
	    " ok IS NULL AND finished_at IS NOT NULL AND error ="
	    " 'interrupted by shutdown'", r.log_id), 1);
	/* not dead although attempts (1) reached max (1): it never finished */
	CHECK_STR(due_ids(st, NOW, NULL, NULL, 16, buf, sizeof(buf)), "1");
	store_outbox_row_done(&r);
	CHECK_INT(store_outbox_claim(st, 1, NOW, &r), OUTBOX_CLAIMED);
	CHECK_INT(r.attempt, 2);
	store_outbox_row_done(&r);
	store_close(st);
}

/* A crash left a log row open: start-up marks it, once. */
static void
test_recover(void)
{
	struct store *st = fresh();
	struct outbox_row r;
	char buf[128];

	if (!CHECK(st != NULL))
		return;
	(void)add(st, "k1", "a");
	CHECK_INT(store_outbox_claim(st, 1, NOW, &r), OUTBOX_CLAIMED);
	CHECK_INT(store_outbox_recover(st), 1);
	CHECK_INT(store_outbox_recover(st), 0);
	CHECK_STR(q_text(st, "SELECT error FROM forward_log WHERE id=?1",
	    r.log_id, buf, sizeof(buf)), "interrupted by restart");
	CHECK_INT(q_int(st, "SELECT ok FROM forward_log WHERE id=?1", r.log_id),
	    -1);
	CHECK_STR(due_ids(st, NOW, NULL, NULL, 16, buf, sizeof(buf)), "1");
	store_outbox_row_done(&r);
	store_close(st);
}

/* Replayed or pruned by cfhookctl meanwhile: claims and outcomes do not
 * resurrect or clobber it. */
static void
test_changed_meanwhile(void)
{
	struct store *st = fresh();
	struct outbox_row r, r2;
	enum outbox_state state = OUTBOX_RETRY;
	char buf[64];

	if (!CHECK(st != NULL))
		return;
	(void)add(st, "k1", "a");
	CHECK_INT(store_outbox_claim(st, 1, NOW, &r), OUTBOX_CLAIMED);
	CHECK(sqlite3_exec(store_db(st), "UPDATE events SET forward_state ="
	    " 'done' WHERE id = 1", NULL, NULL, NULL) == SQLITE_OK);
	CHECK_INT(finish(st, &r, OUTBOX_FAILED, "x", NOW, 1, 1, &state, NULL),
	    0);
	CHECK_INT(state, OUTBOX_UNCHANGED);
	CHECK_STR(q_text(st, "SELECT forward_state FROM events WHERE id=?1",
	    1, buf, sizeof(buf)), "done");
	CHECK_INT(store_outbox_claim(st, 1, NOW, &r2), OUTBOX_GONE);
	CHECK_INT(q_int(st, "SELECT forward_attempts FROM events WHERE id=?1",
	    1), 1);
	CHECK_INT(store_outbox_claim(st, 99, NOW, &r2), OUTBOX_GONE);
	CHECK_INT(q_int(st, "SELECT count(*) FROM forward_log WHERE ?1", 1), 1);
	store_outbox_row_done(&r);
	store_close(st);
}

static void
test_next_due_none(void)
{
	struct store *st = fresh();
	int64_t next = 0;

	if (!CHECK(st != NULL))
		return;
	CHECK_INT(store_outbox_next_due(st, NOW, &next), 1);
	(void)add(st, "k1", NULL);
	CHECK_INT(store_outbox_next_due(st, NOW, &next), 1);	/* due now */
	store_close(st);
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
	RUN(test_done_unblocks_order);
	RUN(test_failure_backoff_blocks_order);
	RUN(test_backoff_doubles_and_caps);
	RUN(test_dead_after_max_attempts);
	RUN(test_replay_gives_a_new_series);
	RUN(test_interrupted_stays_due);
	RUN(test_recover);
	RUN(test_changed_meanwhile);
	RUN(test_next_due_none);
	rc = check_finish("test_outbox");
	tmpdir_remove(dir);
	return rc;
}
