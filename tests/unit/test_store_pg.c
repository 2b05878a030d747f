/* test_store_pg.c - what the PostgreSQL backend adds to the store's
 * contract, against a real server (backends.h, $CFHOOK_TEST_PG): the
 * schema beside SQLite's, the open modes and schema checks, byte-exact
 * bodies and UTF-8 text, several instances on one database (one row per
 * event, an exact ledger, no deadlock, one schema upgrade), bounded waits
 * (a held lock, a server that never answers), a lost connection made
 * again, and a password that never reaches the log. */
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "backends.h"

#include "clock.h"
#include "event.h"
#include "log.h"
#include "store.h"
#include "store_admin.h"
#include "store_health.h"
#include "store_outbox.h"
#include "store_pg.h"

static struct store *
open_mode(struct tdb *d, enum store_mode mode)
{
	struct store *st = NULL;

	if (store_open(d->database, mode, DURABILITY_FULL, &st) == -1)
		return NULL;
	return st;
}

static void
item(struct store_item *it, struct event *ev, const char *key,
    const char *order, const char *body, size_t len)
{
	memset(ev, 0, sizeof(*ev));
	ev->event_key = (char *)(uintptr_t)key;
	ev->type = (char *)(uintptr_t)"PAYMENT_SUCCESS_WEBHOOK";
	ev->order_id = (char *)(uintptr_t)order;
	memset(it, 0, sizeof(*it));
	it->ev = ev;
	it->body = body;
	it->body_len = len;
	it->content_type = "application/json";
	it->received_ms = clock_wall_ms();
	it->result = (enum store_result)-1;
}

static enum store_result
record1(struct store *st, const char *key)
{
	struct event ev;
	struct store_item it, *p = &it;

	item(&it, &ev, key, NULL, "{}", 2);
	(void)store_record_batch(st, &p, 1, 1);
	return it.result;
}

static void
test_schema_is_sqlites(void)
{
	struct store *st;
	struct tdb d;
	char cols[1024];

	if (!CHECK(tdb_create(&d) == 0))
		return;
	st = open_mode(&d, STORE_WRITE);
	if (!CHECK(st != NULL)) {
		tdb_drop(&d);
		return;
	}
	CHECK_INT(tdb_int(&d, "SELECT version FROM schema_version"),
	    STORE_SCHEMA_VERSION);
	CHECK_STR(tdb_text(&d, "SELECT string_agg(column_name::text, ','"
	    " ORDER BY ordinal_position) FROM information_schema.columns"
	    " WHERE table_name = 'events'", cols, sizeof(cols)),
	    "id,event_key,type,cf_payment_id,order_id,"
	    "payment_status,amount,currency,event_time,content_type,body,"
	    "received_at,last_seen_at,deliveries,forward_state,"
	    "forward_attempts,last_error,forwarded_at,next_attempt_at,"
	    "replay_base,idempotency_key,webhook_version,order_state,"
	    "order_paid_now,order_attention,claimed_by,lease_until");
	CHECK_STR(tdb_text(&d, "SELECT string_agg(column_name::text, ','"
	    " ORDER BY ordinal_position) FROM information_schema.columns"
	    " WHERE table_name = 'orders'", cols, sizeof(cols)),
	    "order_id,state,order_amount,currency,paid_amount,"
	    "paid_currency,successes,first_event_at,paid_at,paid_event_id,"
	    "last_event_id,last_event_at,attention");
	CHECK_STR(tdb_text(&d, "SELECT string_agg(table_name::text, ','"
	    " ORDER BY table_name) FROM information_schema.tables"
	    " WHERE table_schema = current_schema()", cols, sizeof(cols)),
	    "events,form_signatures,forward_log,health_probe,order_payments,"
	    "orders,pruned_keys,schema_version");
	store_close(st);
	/* A second open finds it at the version: nothing to do. */
	st = open_mode(&d, STORE_WRITE);
	CHECK(st != NULL);
	store_close(st);
	CHECK_INT(tdb_int(&d, "SELECT count(*) FROM schema_version"), 1);
	tdb_drop(&d);
}

static void
test_open_modes_and_versions(void)
{
	struct store *st;
	struct tdb d;
	char note[96];

	if (!CHECK(tdb_create(&d) == 0))
		return;
	CHECK(open_mode(&d, STORE_READ) == NULL);	/* never creates */
	CHECK(open_mode(&d, STORE_EXISTING) == NULL);
	CHECK_INT(store_inspect(d.database, note, sizeof(note)), 0);
	CHECK_STR(note, "PostgreSQL, to be created");
	CHECK_INT(tdb_int(&d, "SELECT count(*) FROM pg_catalog.pg_tables"
	    " WHERE schemaname = current_schema()"), 0);
	st = open_mode(&d, STORE_WRITE);
	CHECK(st != NULL);
	store_close(st);
	CHECK_INT(store_inspect(d.database, note, sizeof(note)), 0);
	CHECK_STR(note, "PostgreSQL, schema version 3");
	/* read-only: reads work, a write is answered 503 */
	st = open_mode(&d, STORE_READONLY);
	if (CHECK(st != NULL)) {
		CHECK_INT(record1(st, "K:ro"), STORE_UNAVAILABLE);
		CHECK_STR(store_fault(st), "read-only");
		CHECK_INT(store_ping(st), 0);
		store_close(st);
	}
	/* a newer cfhookd's database is refused in every mode */
	tdb_exec(&d, "UPDATE schema_version SET version = 99");
	CHECK(open_mode(&d, STORE_WRITE) == NULL);
	CHECK(open_mode(&d, STORE_READ) == NULL);
	CHECK_INT(store_inspect(d.database, note, sizeof(note)), -1);
	tdb_drop(&d);
	/* somebody else's tables: never ours to add to */
	if (!CHECK(tdb_create(&d) == 0))
		return;
	tdb_exec(&d, "CREATE TABLE invoices (id int)");
	CHECK(open_mode(&d, STORE_WRITE) == NULL);
	CHECK_INT(store_inspect(d.database, note, sizeof(note)), -1);
	CHECK_INT(tdb_int(&d, "SELECT count(*) FROM pg_catalog.pg_tables"
	    " WHERE schemaname = current_schema()"), 1);
	tdb_drop(&d);
}

/* A body of any bytes comes back exactly; header text that is not UTF-8
 * is stored with its bad bytes shown, never refused. */
static void
test_bytes_and_text(void)
{
	static const char body[] = "{\"x\":\"\xff\xfe\"}\0tail\x80";
	struct event_row e;
	struct store_admin_attempt *h = NULL;
	struct store_item it, *p = &it;
	struct event ev;
	struct store *st;
	struct tdb d;
	size_t n = 0;
	char buf[128];

	if (!CHECK(tdb_create(&d) == 0))
		return;
	if (!CHECK((st = open_mode(&d, STORE_WRITE)) != NULL)) {
		tdb_drop(&d);
		return;
	}
	item(&it, &ev, "B:1", NULL, body, sizeof(body) - 1);
	it.content_type = "application/json; charset=\xff";
	it.idempotency_key = "idem-\xc3\xa9";	/* é: valid, kept */
	CHECK_INT(store_record_batch(st, &p, 1, 0), 1);
	CHECK_INT(it.result, STORE_NEW);
	if (CHECK(store_admin_get(st, it.id, NULL, &e, &h, &n) ==
	    STORE_ADMIN_OK)) {
		CHECK_INT(e.body_len, sizeof(body) - 1);
		CHECK(memcmp(e.body, body, sizeof(body) - 1) == 0);
		CHECK(e.body_is_blob);
		CHECK_STR(e.content_type, "application/json; charset=\\xff");
		CHECK_STR(e.idempotency_key, "idem-\xc3\xa9");
		CHECK_STR(e.forward_state, "done");
		event_row_done(&e);
		store_admin_history_free(h, n);
	}
	CHECK_STR(tdb_text(&d, "SELECT encode(body, 'hex') FROM events",
	    buf, sizeof(buf)), "7b2278223a22fffe227d007461696c80");
	store_close(st);
	tdb_drop(&d);
}

/* One batch: new, the same key again (a duplicate of the row just made),
 * a pruned key (a duplicate counted on its tombstone), a form's signing
 * string seen before under another key. */
static void
test_batch_dedup(void)
{
	struct store_item it[4], *p[4];
	struct event ev[4];
	struct store *st;
	struct tdb d;
	int i;

	if (!CHECK(tdb_create(&d) == 0))
		return;
	if (!CHECK((st = open_mode(&d, STORE_WRITE)) != NULL)) {
		tdb_drop(&d);
		return;
	}
	tdb_exec(&d, "INSERT INTO pruned_keys VALUES ('K:old', 1, 3)");
	item(&it[0], &ev[0], "K:1", "o1", "{}", 2);
	item(&it[1], &ev[1], "K:1", "o1", "{}", 2);
	item(&it[2], &ev[2], "K:old", NULL, "{}", 2);
	item(&it[3], &ev[3], "K:form", NULL, "a=1", 3);
	it[3].form_digest = "d1";
	for (i = 0; i < 4; i++)
		p[i] = &it[i];
	CHECK_INT(store_record_batch(st, p, 4, 1), 2);
	CHECK_INT(it[0].result, STORE_NEW);
	CHECK_INT(it[1].result, STORE_DUPLICATE);
	CHECK_INT(it[1].id, it[0].id);
	CHECK_INT(it[2].result, STORE_DUPLICATE);
	CHECK_INT(it[2].id, 0);
	CHECK_INT(it[3].result, STORE_NEW);
	item(&it[0], &ev[0], "K:form-recut", NULL, "a=1&b=", 6);
	it[0].form_digest = "d1";
	CHECK_INT(store_record_batch(st, p, 1, 1), 0);
	CHECK_INT(it[0].result, STORE_DUPLICATE);
	CHECK_INT(it[0].id, it[3].id);
	CHECK_INT(tdb_int(&d, "SELECT count(*) FROM events"), 2);
	CHECK_INT(tdb_int(&d, "SELECT deliveries FROM events"
	    " WHERE event_key = 'K:1'"), 2);
	CHECK_INT(tdb_int(&d, "SELECT deliveries FROM events"
	    " WHERE event_key = 'K:form'"), 2);
	CHECK_INT(tdb_int(&d, "SELECT deliveries FROM pruned_keys"), 4);
	CHECK_INT(tdb_int(&d, "SELECT count(*) FROM events"
	    " WHERE forward_state = 'pending'"), 2);
	store_close(st);
	tdb_drop(&d);
}

/* Two instances record the same keys at once, in opposite orders, in
 * batches: every key is one row, new on exactly one instance, and no batch
 * fails (the sorted key locks leave no deadlock to break). */
#define RACE_KEYS	60
#define RACE_BATCH	12

struct racer {
	const char *database;
	int	 reverse;
	int	 news, dups, fails;
	int	 order_events;	/* > 0: distinct payments of one order */
};

static void *
race(void *arg)
{
	struct racer *r = arg;
	struct store_item it[RACE_BATCH], *p[RACE_BATCH];
	struct event ev[RACE_BATCH];
	char keys[RACE_BATCH][32];
	struct store *st = NULL;
	int b, i, k;

	if (store_open(r->database, STORE_WRITE, DURABILITY_FULL, &st) == -1) {
		r->fails = -1;
		return NULL;
	}
	for (b = 0; b < RACE_KEYS / RACE_BATCH; b++) {
		for (i = 0; i < RACE_BATCH; i++) {
			k = b * RACE_BATCH + i;
			if (r->reverse)
				k = RACE_KEYS - 1 - k;
			if (r->order_events)
				(void)snprintf(keys[i], sizeof(keys[i]),
				    "PAYMENT_SUCCESS_WEBHOOK:%d%d", r->reverse,
				    k);
			else
				(void)snprintf(keys[i], sizeof(keys[i]),
				    "K:%d", k);
			item(&it[i], &ev[i], keys[i], r->order_events ?
			    "one-order" : NULL, "{}", 2);
			ev[i].cf_payment_id = keys[i] + 24;
			ev[i].payment_status = (char *)(uintptr_t)"SUCCESS";
			ev[i].amount = (char *)(uintptr_t)"1";
			p[i] = &it[i];
		}
		(void)store_record_batch(st, p, RACE_BATCH, 0);
		for (i = 0; i < RACE_BATCH; i++) {
			r->news += it[i].result == STORE_NEW;
			r->dups += it[i].result == STORE_DUPLICATE;
			r->fails += it[i].result == STORE_UNAVAILABLE;
		}
	}
	store_close(st);
	return NULL;
}

static void
run_race(struct tdb *d, struct racer *a, struct racer *b)
{
	pthread_t ta, tb;

	a->database = b->database = d->database;
	CHECK_INT(pthread_create(&ta, NULL, race, a), 0);
	CHECK_INT(pthread_create(&tb, NULL, race, b), 0);
	(void)pthread_join(ta, NULL);
	(void)pthread_join(tb, NULL);
}

static void
test_two_instances_one_row(void)
{
	struct racer a = { NULL, 0, 0, 0, 0, 0 }, b = { NULL, 1, 0, 0, 0, 0 };
	struct store *st;
	struct tdb d;

	if (!CHECK(tdb_create(&d) == 0))
		return;
	st = open_mode(&d, STORE_WRITE);
	store_close(st);
	run_race(&d, &a, &b);
	CHECK_INT(a.fails, 0);
	CHECK_INT(b.fails, 0);
	CHECK_INT(a.news + b.news, RACE_KEYS);
	CHECK_INT(a.dups + b.dups, RACE_KEYS);
	CHECK_INT(tdb_int(&d, "SELECT count(*) FROM events"), RACE_KEYS);
	CHECK_INT(tdb_int(&d, "SELECT count(*) FROM events"
	    " WHERE deliveries = 2"), RACE_KEYS);
	tdb_drop(&d);
}

/* Two instances move one order with distinct payments at once: each is
 * counted, none lost to a read-modify-write race. */
static void
test_two_instances_exact_ledger(void)
{
	struct racer a = { NULL, 0, 0, 0, 0, 1 }, b = { NULL, 1, 0, 0, 0, 1 };
	struct store *st;
	struct tdb d;
	char buf[64];

	if (!CHECK(tdb_create(&d) == 0))
		return;
	st = open_mode(&d, STORE_WRITE);
	store_close(st);
	run_race(&d, &a, &b);
	CHECK_INT(a.fails + b.fails, 0);
	CHECK_INT(a.news + b.news, 2 * RACE_KEYS);
	CHECK_INT(tdb_int(&d, "SELECT successes FROM orders"), 2 * RACE_KEYS);
	CHECK_INT(tdb_int(&d, "SELECT count(*) FROM order_payments"),
	    2 * RACE_KEYS);
	CHECK_STR(tdb_text(&d, "SELECT state || ' ' || attention FROM orders",
	    buf, sizeof(buf)), "PAID double_payment");
	/* exactly one event made it PAID */
	CHECK_INT(tdb_int(&d, "SELECT count(*) FROM events"
	    " WHERE order_paid_now = 1"), 1);
	tdb_drop(&d);
}

static void *
open_writer(void *arg)
{
	struct tdb *d = arg;
	struct store *st = NULL;
	intptr_t rc;

	rc = store_open(d->database, STORE_WRITE, DURABILITY_FULL, &st);
	store_close(st);
	return (void *)rc;
}

/* Two instances starting on an empty database: one creates the schema,
 * the other waits for it and finds it done. */
static void
test_schema_created_once(void)
{
	pthread_t t[3];
	void *rc;
	struct tdb d;
	int i;

	if (!CHECK(tdb_create(&d) == 0))
		return;
	for (i = 0; i < 3; i++)
		CHECK_INT(pthread_create(&t[i], NULL, open_writer, &d), 0);
	for (i = 0; i < 3; i++) {
		(void)pthread_join(t[i], &rc);
		CHECK_INT((intptr_t)rc, 0);
	}
	CHECK_INT(tdb_int(&d, "SELECT count(*) FROM schema_version"), 1);
	CHECK_INT(tdb_int(&d, "SELECT version FROM schema_version"),
	    STORE_SCHEMA_VERSION);
	tdb_drop(&d);
}

/* Another session holds a key's lock: the batch waits until its deadline
 * (5 s after its oldest item was queued), not longer, and is answered
 * 503; once the lock is gone the next batch is stored. */
static void
test_held_lock_is_503_in_time(void)
{
	struct store_item it, *p = &it;
	struct event ev;
	struct store *st;
	struct tdb d;
	char sql[128];
	int64_t t0, waited;

	if (!CHECK(tdb_create(&d) == 0))
		return;
	if (!CHECK((st = open_mode(&d, STORE_WRITE)) != NULL)) {
		tdb_drop(&d);
		return;
	}
	(void)snprintf(sql, sizeof(sql), "BEGIN; SELECT pg_advisory_xact_lock"
	    "(%lld)", (long long)pg_lock_key("e", "K:held"));
	tdb_exec(&d, sql);
	item(&it, &ev, "K:held", NULL, "{}", 2);
	t0 = clock_mono_ms();
	it.queued_ms = t0 - (STORE_BUSY_TIMEOUT_MS - 1000);
	CHECK_INT(store_record_batch(st, &p, 1, 1), -1);
	waited = clock_mono_ms() - t0;
	CHECK_INT(it.result, STORE_UNAVAILABLE);
	CHECK(waited >= 700 && waited < 3000);
	CHECK(strncmp(store_fault(st), "locked", 6) == 0 ||
	    strcmp(store_fault(st), "timed out") == 0);
	tdb_exec(&d, "ROLLBACK");
	CHECK_INT(record1(st, "K:held"), STORE_NEW);
	CHECK_STR(store_fault(st), "");
	store_close(st);
	tdb_drop(&d);
}

/* The server ends the writer's session (a restart, a failover): the batch
 * under way is 503, the next one (after the reconnect pacing) reconnects
 * and is stored, and the probe says so too. */
static void
test_lost_connection_reconnects(void)
{
	struct store *st;
	struct tdb d;
	struct timespec pause = { 1, 200000000L };

	if (!CHECK(tdb_create(&d) == 0))
		return;
	if (!CHECK((st = open_mode(&d, STORE_WRITE)) != NULL)) {
		tdb_drop(&d);
		return;
	}
	CHECK_INT(record1(st, "K:before"), STORE_NEW);
	tdb_exec(&d, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
	    " WHERE datname = current_database() AND pid <> pg_backend_pid()");
	CHECK_INT(record1(st, "K:during"), STORE_UNAVAILABLE);
	CHECK(strcmp(store_fault(st), "") != 0);
	CHECK_INT(store_maintain(st, STORE_MAINT_RECOVER), STORE_CKPT_FAILED);
	(void)nanosleep(&pause, NULL);
	CHECK_INT(record1(st, "K:during"), STORE_NEW);
	tdb_exec(&d, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
	    " WHERE datname = current_database() AND pid <> pg_backend_pid()");
	(void)nanosleep(&pause, NULL);
	CHECK_INT(store_probe(st, 250), STORE_PROBE_FAILED);
	(void)nanosleep(&pause, NULL);
	CHECK_INT(store_probe(st, 250), STORE_PROBE_OK);
	CHECK_INT(tdb_int(&d, "SELECT count(*) FROM events"), 2);
	CHECK_INT(tdb_int(&d, "SELECT count(*) FROM health_probe"), 1);
	store_close(st);
	tdb_drop(&d);
}

/* A "server" that takes the connection and never says a word: connecting
 * gives up at the deadline instead of hanging. */
static void
test_silent_server_is_bounded(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	char uri[128], note[64];
	int64_t t0, took;
	int fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (!CHECK(fd != -1 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ==
	    0 && listen(fd, 4) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)) {
		if (fd != -1)
			(void)close(fd);
		return;
	}
	(void)snprintf(uri, sizeof(uri), "postgresql://127.0.0.1:%d/x"
	    "?connect_timeout=60&sslmode=disable", ntohs(sa.sin_port));
	t0 = clock_mono_ms();
	CHECK_INT(store_inspect(uri, note, sizeof(note)), -1);
	took = clock_mono_ms() - t0;
	CHECK(took >= STORE_BUSY_TIMEOUT_MS - 100);
	CHECK(took < STORE_BUSY_TIMEOUT_MS + 3000);
	(void)close(fd);
}

static void
test_password_masked(void)
{
	static const struct {
		const char *uri, *shown;
	} cases[] = {
		{ "postgresql://cf:s3cret@db.example/cfhookd",
		  "postgresql://cf:***@db.example/cfhookd" },
		{ "postgres://cf@db/x?password=s3cret&sslmode=require",
		  "postgres://cf@db/x?password=***&sslmode=require" },
		{ "postgresql://cf:p%40ss@h1,h2:5433/x?sslmode=verify-full"
		  "&PASSWORD=s3cret", "postgresql://cf:***@h1,h2:5433/x"
		  "?sslmode=verify-full&PASSWORD=***" },
		{ "postgresql:///cfhookd?host=/run/postgresql",
		  "postgresql:///cfhookd?host=/run/postgresql" },
		{ "postgresql://db/x/with@at", "postgresql://db/x/with@at" },
		{ "/var/lib/cfhookd/events.db", "/var/lib/cfhookd/events.db" },
		/* libpq decodes the keyword: this is the password too */
		{ "postgresql://db/x?p%61ssword=s3cret&%70assword%3D=x",
		  "postgresql://db/x?p%61ssword=***&%70assword%3D=x" },
	};
	char out[256];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK_STR(store_display_name(cases[i].uri, out, sizeof(out)),
		    cases[i].shown);
	CHECK(store_is_uri("POSTGRESQL://x"));
	CHECK(!store_is_uri("mysql://x"));
	CHECK(!store_is_uri("postgresql:/x"));
	/* truncated, still terminated */
	CHECK_STR(store_display_name(cases[0].uri, out, 12), "postgresql:");
}

/* Nothing of the password reaches the log, however the connection fails:
 * stderr (the log) captured into a file and read back. */
static void
test_password_never_logged(void)
{
	char path[] = "/tmp/cfhook-pglog.XXXXXX", buf[8192];
	struct store *st = NULL;
	ssize_t n;
	int fd, saved;

	fd = mkstemp(path);
	if (!CHECK(fd != -1))
		return;
	saved = dup(2);
	(void)dup2(fd, 2);
	CHECK_INT(store_open("postgresql://cf:pw-Zq81-secret@/nodb"
	    "?host=/nonexistent-dir", STORE_WRITE, DURABILITY_FULL, &st), -1);
	CHECK_INT(store_open("postgresql://cf@/nodb?host=/nonexistent-dir"
	    "&password=pw-Zq81-secret", STORE_READ, DURABILITY_FULL, &st), -1);
	(void)dup2(saved, 2);
	(void)close(saved);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	CHECK(n > 0);
	CHECK(strstr(buf, "pw-Zq81") == NULL);
	CHECK(strstr(buf, "cf:***@") != NULL);
	CHECK(strstr(buf, "password=***") != NULL);
	(void)close(fd);
	(void)unlink(path);
}

/* The ids due now in ob, as "1,2" (skip nothing). */
static const char *
due_ids(struct outbox *ob, char *buf, size_t n)
{
	struct outbox_scan sc;
	struct outbox_due due[8];
	size_t got = 0, i, o = 0;

	buf[0] = '\0';
	memset(&sc, 0, sizeof(sc));
	if (!CHECK(store_outbox_due(ob, clock_wall_ms(), &sc, NULL, NULL, due,
	    8, &got) == 0))
		return buf;
	for (i = 0; i < got && o < n; i++)
		o += (size_t)snprintf(buf + o, n - o, "%s%lld", i ? "," : "",
		    (long long)due[i].id);
	store_outbox_due_done(due, got);
	return buf;
}

/* One round: claim id. */
static enum outbox_claim
claim1(struct outbox *ob, int64_t id, int64_t now, struct outbox_row *r)
{
	enum outbox_claim c;

	memset(r, 0, sizeof(*r));
	if (!CHECK(store_outbox_begin(ob) == 0))
		return OUTBOX_ERROR;
	c = store_outbox_claim(ob, id, now, r);
	if (c == OUTBOX_ERROR || store_outbox_commit(ob) == -1) {
		store_outbox_rollback(ob);
		return OUTBOX_ERROR;
	}
	return c;
}

/* One round: record an outcome. */
static enum outbox_state
finish1(struct outbox *ob, const struct outbox_row *r,
    enum outbox_outcome outcome, int64_t now)
{
	struct outbox_result res = { r->ev.id, r->log_id, r->series, outcome,
	    outcome == OUTBOX_DELIVERED ? NULL : "test", 0, 0 };
	enum outbox_state state = (enum outbox_state)-1;
	int64_t next = 0;

	if (!CHECK(store_outbox_begin(ob) == 0))
		return state;
	if (store_outbox_finish(ob, &res, now, 12, 2, &state, &next) == -1 ||
	    store_outbox_commit(ob) == -1) {
		store_outbox_rollback(ob);
		return (enum outbox_state)-1;
	}
	return state;
}

/* Two instances, one outbox: a claim is one instance's; the next event of
 * its order is not due while it is leased; a claim whose lease ran out is
 * taken over as a later attempt; only the holder records an outcome; a
 * claim never started is given back whole. */
static void
test_outbox_leases(void)
{
	struct store *w, *a, *b;
	struct outbox *oa = NULL, *ob = NULL;
	struct outbox_row ra, rb;
	struct store_item it[3], *p[3];
	struct event ev[3];
	struct tdb d;
	char buf[64];
	int64_t now = clock_wall_ms(), next = 0;
	int i, undone;

	if (!CHECK(tdb_create(&d) == 0))
		return;
	w = open_mode(&d, STORE_WRITE);
	a = open_mode(&d, STORE_READ);
	b = open_mode(&d, STORE_READ);
	if (!CHECK(w != NULL && a != NULL && b != NULL) ||
	    !CHECK(store_outbox_open(a, DURABILITY_FULL, &oa) == 0) ||
	    !CHECK(store_outbox_open(b, DURABILITY_FULL, &ob) == 0))
		goto out;
	item(&it[0], &ev[0], "K:1", "o1", "{}", 2);
	item(&it[1], &ev[1], "K:2", "o1", "{}", 2);
	item(&it[2], &ev[2], "K:3", "o2", "{}", 2);
	for (i = 0; i < 3; i++)
		p[i] = &it[i];
	CHECK_INT(store_record_batch(w, p, 3, 1), 3);
	CHECK_INT(store_outbox_recover(oa, NULL, 0, &undone), 0);
	CHECK_STR(due_ids(oa, buf, sizeof(buf)), "1,3");
	CHECK_INT(claim1(oa, 1, now, &ra), OUTBOX_CLAIMED);
	CHECK_INT(ra.attempt, 1);
	CHECK_INT(ra.series, 1);
	CHECK_INT(store_outbox_load(oa, &ra), 0);
	CHECK_STR(ra.ev.event_key, "K:1");
	CHECK_INT(claim1(ob, 1, now, &rb), OUTBOX_GONE);
	/* 1 is leased, and holds 2 back */
	CHECK_STR(due_ids(ob, buf, sizeof(buf)), "3");
	CHECK(store_outbox_next_due(ob, now, &next) == 0 && next > now);
	/* a goes silent: its lease runs out, b takes over */
	tdb_exec(&d, "UPDATE events SET lease_until = 1 WHERE id = 1");
	CHECK_STR(due_ids(ob, buf, sizeof(buf)), "1,3");
	CHECK_INT(claim1(ob, 1, now, &rb), OUTBOX_CLAIMED);
	CHECK_INT(rb.attempt, 2);
	CHECK_INT(tdb_int(&d, "SELECT count(*) FROM forward_log WHERE error ="
	    " 'interrupted: its lease ran out'"), 1);
	/* a comes back with its outcome: not its event any more */
	CHECK_INT(finish1(oa, &ra, OUTBOX_DELIVERED, now), OUTBOX_UNCHANGED);
	CHECK_INT(finish1(ob, &rb, OUTBOX_DELIVERED, now), OUTBOX_DONE);
	CHECK_STR(due_ids(oa, buf, sizeof(buf)), "2,3");
	store_outbox_row_done(&ra);
	store_outbox_row_done(&rb);
	/* a claim never started goes back whole, lease and all */
	CHECK_INT(claim1(oa, 3, now, &ra), OUTBOX_CLAIMED);
	CHECK_INT(finish1(oa, &ra, OUTBOX_UNSTARTED, now), OUTBOX_PENDING);
	CHECK_INT(tdb_int(&d, "SELECT forward_attempts FROM events"
	    " WHERE id = 3"), 0);
	CHECK_INT(tdb_int(&d, "SELECT count(*) FROM forward_log"
	    " WHERE event_id = 3"), 0);
	CHECK_INT(tdb_int(&d, "SELECT count(*) FROM events WHERE claimed_by IS"
	    " NOT NULL"), 0);
	CHECK_STR(due_ids(ob, buf, sizeof(buf)), "2,3");
	store_outbox_row_done(&ra);
out:
	store_outbox_close(oa);
	store_outbox_close(ob);
	store_close(a);
	store_close(b);
	store_close(w);
	tdb_drop(&d);
}

int
main(void)
{
	log_init(LOG_LVL_WARNING);
	RUN(test_password_masked);
	RUN(test_password_never_logged);
	RUN(test_silent_server_is_bounded);
	if (getenv("CFHOOK_TEST_PG") == NULL) {
		check_skip(10, "no PostgreSQL server: CFHOOK_TEST_PG is not set "
		    "(tests/run starts one with tests/pg-server)");
		return check_finish("test_store_pg");
	}
	backend_pg = 1;
	RUN(test_schema_is_sqlites);
	RUN(test_open_modes_and_versions);
	RUN(test_bytes_and_text);
	RUN(test_batch_dedup);
	RUN(test_two_instances_one_row);
	RUN(test_two_instances_exact_ledger);
	RUN(test_schema_created_once);
	RUN(test_held_lock_is_503_in_time);
	RUN(test_lost_connection_reconnects);
	RUN(test_outbox_leases);
	return check_finish("test_store_pg");
}
