/* test_store.c - store.c against real SQLite files in a mkdtemp directory:
 * the schema and migrations, the open modes and pragmas, recording batches
 * (new, duplicate, pruned, forward state) and byte-exact bodies. The failure
 * modes are in test_store_fail.c. */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "check.h"
#include "store.h"
#include "store_int.h"
#include "store_health.h"
#include "storetest.h"

static int
column_list(sqlite3 *db, const char *table, char *out, size_t size)
{
	sqlite3_stmt *s = NULL;
	char sql[96];
	size_t len = 0;

	out[0] = '\0';
	(void)snprintf(sql, sizeof(sql), "PRAGMA table_info(%s)", table);
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		return -1;
	while (sqlite3_step(s) == SQLITE_ROW && len < size) {
		len += (size_t)snprintf(out + len, size - len, "%s%s",
		    len == 0 ? "" : ",",
		    (const char *)sqlite3_column_text(s, 1));
	}
	(void)sqlite3_finalize(s);
	return 0;
}

static void
test_open_creates_schema(void)
{
	char path[128], cols[512], buf[64];
	struct store *st;
	struct stat sb;
	sqlite3 *db;

	st = open_new(path, sizeof(path), DURABILITY_FULL);
	if (st == NULL)
		return;
	db = store_db(st);
	CHECK_INT(q_int(db, "PRAGMA user_version", NULL), STORE_SCHEMA_VERSION);
	CHECK_INT(STORE_SCHEMA_VERSION, 3);
	CHECK_STR(q_text(db, "PRAGMA journal_mode", NULL, buf, sizeof(buf)),
	    "wal");
	CHECK_INT(column_list(db, "events", cols, sizeof(cols)), 0);
	CHECK_STR(cols, "id,event_key,type,cf_payment_id,order_id,"
	    "payment_status,amount,currency,event_time,content_type,body,"
	    "received_at,last_seen_at,deliveries,forward_state,"
	    "forward_attempts,last_error,forwarded_at,next_attempt_at,"
	    "replay_base,idempotency_key,webhook_version,order_state,"
	    "order_paid_now,order_attention");
	CHECK_INT(column_list(db, "orders", cols, sizeof(cols)), 0);
	CHECK_STR(cols, "order_id,state,order_amount,currency,paid_amount,"
	    "paid_currency,successes,first_event_at,paid_at,paid_event_id,"
	    "last_event_id,last_event_at,attention");
	CHECK_INT(column_list(db, "order_payments", cols, sizeof(cols)), 0);
	CHECK_STR(cols, "order_id,cf_payment_id,event_id");
	CHECK_INT(column_list(db, "pruned_keys", cols, sizeof(cols)), 0);
	CHECK_STR(cols, "event_key,pruned_at,deliveries");
	CHECK_INT(column_list(db, "form_signatures", cols, sizeof(cols)), 0);
	CHECK_STR(cols, "digest,event_id");
	CHECK_INT(column_list(db, "health_probe", cols, sizeof(cols)), 0);
	CHECK_STR(cols, "id,probed_at");
	CHECK_INT(column_list(db, "pruned_keys", cols, sizeof(cols)), 0);
	CHECK_STR(cols, "event_key,pruned_at,deliveries");
	CHECK_INT(column_list(db, "forward_log", cols, sizeof(cols)), 0);
	CHECK_STR(cols, "id,event_id,attempt,started_at,finished_at,ok,error");
	CHECK_INT(q_int(db, "SELECT count(*) FROM sqlite_schema WHERE "
	    "type = 'index' AND name IN ('events_pending', 'events_next', "
	    "'events_order', 'events_received', 'events_type', "
	    "'forward_log_event')", NULL), 6);
	CHECK_INT(q_int(db, "SELECT count(*) FROM sqlite_schema WHERE "
	    "name = 'pruned_keys' AND sql LIKE '%WITHOUT ROWID%'", NULL), 1);
	/* The CHECK constraint on forward_state is really there. */
	CHECK(sqlite3_exec(db, "INSERT INTO events (event_key, type, "
	    "content_type, body, received_at, last_seen_at, forward_state) "
	    "VALUES ('x', 't', 'c', 'b', 1, 1, 'bogus')", NULL, NULL, NULL) !=
	    SQLITE_OK);
	CHECK_INT(stat(path, &sb), 0);
	CHECK_INT(sb.st_mode & 077, 0);		/* payment data: owner only */
	CHECK_INT(store_ping(st), 0);
	store_close(st);
}

static void
test_reopen_idempotent(void)
{
	char path[128];
	struct store *st, *st2 = NULL;
	sqlite3 *db;

	st = open_new(path, sizeof(path), DURABILITY_FULL);
	if (st == NULL)
		return;
	CHECK_INT(record1(st, "K:1", 1000, 1), STORE_NEW);
	store_close(st);
	CHECK_INT(store_open(path, STORE_WRITE, DURABILITY_FULL, &st2), 0);
	if (st2 == NULL)
		return;
	db = store_db(st2);
	CHECK_INT(q_int(db, "PRAGMA user_version", NULL), STORE_SCHEMA_VERSION);
	CHECK_INT(q_int(db, "SELECT count(*) FROM events", NULL), 1);
	CHECK_INT(record1(st2, "K:1", 2000, 1), STORE_DUPLICATE);
	store_close(st2);
	st2 = NULL;
	CHECK_INT(store_open(path, STORE_READ, DURABILITY_FULL, &st2), 0);
	if (st2 != NULL)
		CHECK_INT(q_int(store_db(st2), "SELECT deliveries FROM events",
		    NULL), 2);
	store_close(st2);
}

static void
test_newer_version_refused(void)
{
	char path[128];
	struct store *st;
	sqlite3 *db;

	st = open_new(path, sizeof(path), DURABILITY_FULL);
	if (st == NULL)
		return;
	store_close(st);
	db = peek_open(path);
	CHECK_INT(sqlite3_exec(db, "PRAGMA user_version = 4", NULL, NULL,
	    NULL), SQLITE_OK);
	st = NULL;
	CHECK_INT(store_open(path, STORE_WRITE, DURABILITY_FULL, &st), -1);
	CHECK(st == NULL);
	CHECK_INT(store_open(path, STORE_READ, DURABILITY_FULL, &st), -1);
	CHECK(st == NULL);
	/* Refusing did not touch it. */
	CHECK_INT(q_int(db, "PRAGMA user_version", NULL), 4);
	(void)sqlite3_close(db);
}

static void
test_read_mode_never_creates(void)
{
	char path[128], path2[128];
	struct store *st = NULL;
	sqlite3 *db;
	int fd;

	new_path(path, sizeof(path));
	CHECK_INT(store_open(path, STORE_READ, DURABILITY_FULL, &st), -1);
	CHECK(st == NULL);
	CHECK(access(path, F_OK) == -1);	/* not created */
	/* An empty file is version 0: READ refuses to migrate it. */
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	if (fd >= 0)
		(void)close(fd);
	CHECK_INT(store_open(path, STORE_READ, DURABILITY_FULL, &st), -1);
	db = peek_open(path);
	CHECK_INT(q_int(db, "SELECT count(*) FROM sqlite_schema", NULL), 0);
	CHECK_INT(q_int(db, "PRAGMA user_version", NULL), 0);
	(void)sqlite3_close(db);
	/* A foreign SQLite database (tables, version 0) is not adopted. */
	CHECK_INT(sqlite3_open(new_path(path2, sizeof(path2)), &db),
	    SQLITE_OK);
	CHECK_INT(sqlite3_exec(db, "CREATE TABLE mine (x)", NULL, NULL, NULL),
	    SQLITE_OK);
	CHECK_INT(store_open(path2, STORE_WRITE, DURABILITY_FULL, &st), -1);
	CHECK_INT(q_int(db, "SELECT count(*) FROM sqlite_schema", NULL), 1);
	(void)sqlite3_close(db);
}

/* STORE_READONLY: an existing database at our schema, read through a
 * connection that cannot write; never created. */
static void
test_readonly_mode(void)
{
	char path[128];
	struct store *st, *ro = NULL;
	sqlite3 *db;

	st = open_new(path, sizeof(path), DURABILITY_FULL);
	if (st == NULL)
		return;
	CHECK_INT(record1(st, "RO:1", 1, 1), STORE_NEW);
	CHECK_INT(store_open(path, STORE_READONLY, DURABILITY_FULL, &ro), 0);
	if (ro != NULL) {
		db = store_db(ro);
		CHECK_INT(sqlite3_db_readonly(db, "main"), 1);
		CHECK_INT(q_int(db, "SELECT count(*) FROM events", NULL), 1);
		CHECK_INT(sqlite3_exec(db, "DELETE FROM events", NULL, NULL,
		    NULL), SQLITE_READONLY);
		CHECK_INT(record1(ro, "RO:2", 2, 1), STORE_UNAVAILABLE);
		CHECK_INT(store_ping(ro), 0);
		store_close(ro);
	}
	/* Still written through the other connection only. */
	CHECK_INT(q_int(store_db(st), "SELECT count(*) FROM events", NULL), 1);
	store_close(st);
	ro = NULL;
	new_path(path, sizeof(path));
	CHECK_INT(store_open(path, STORE_READONLY, DURABILITY_FULL, &ro), -1);
	CHECK(ro == NULL);
	CHECK_INT(access(path, F_OK), -1);
}

static void
test_batch_new_and_duplicate(void)
{
	static const char *keys[] = { "K:b", "K:c", "K:d", "K:a" };
	struct store_item it[4], *p[4];
	struct event ev[4];
	char path[128], buf[128];
	struct store *st;
	int64_t id_a;
	sqlite3 *db;
	int i;

	st = open_new(path, sizeof(path), DURABILITY_FULL);
	if (st == NULL)
		return;
	db = store_db(st);
	CHECK_INT(record1(st, "K:a", 1000, 1), STORE_NEW);
	id_a = q_int(db, "SELECT id FROM events WHERE event_key = 'K:a'", NULL);
	for (i = 0; i < 4; i++) {
		ev_init(&ev[i], keys[i], "PAYMENT_SUCCESS_WEBHOOK");
		ev[i].cf_payment_id = (char *)"5114910";
		ev[i].order_id = (char *)"order_1";
		ev[i].amount = (char *)"1.8";
		ev[i].currency = (char *)"INR";
		item_init(&it[i], &ev[i], "{\"a\":1}", 7, 2000 + i);
		p[i] = &it[i];
	}
	CHECK_INT(store_record_batch(st, p, 4, 1), 3);
	for (i = 0; i < 3; i++) {
		CHECK_INT(it[i].result, STORE_NEW);
		CHECK_INT(it[i].id, q_int(db, "SELECT id FROM events WHERE "
		    "event_key = ?1", keys[i]));
	}
	CHECK_INT(it[3].result, STORE_DUPLICATE);
	CHECK_INT(it[3].id, id_a);
	CHECK_INT(q_int(db, "SELECT count(*) FROM events", NULL), 4);
	CHECK_INT(q_int(db, "SELECT deliveries FROM events WHERE event_key = "
	    "'K:a'", NULL), 2);
	CHECK_INT(q_int(db, "SELECT last_seen_at FROM events WHERE event_key "
	    "= 'K:a'", NULL), 2003);
	CHECK_INT(q_int(db, "SELECT received_at FROM events WHERE event_key = "
	    "'K:a'", NULL), 1000);
	/* A new row: every column as the contract says. */
	CHECK_STR(q_text(db, "SELECT printf('%s|%s|%s|%s|%s|%s|%s|%s|%d|%d|%d|"
	    "%s|%d|%d|%s|%s', type, cf_payment_id, order_id, "
	    "quote(payment_status), amount, currency, quote(event_time), "
	    "content_type, received_at, last_seen_at, deliveries, "
	    "forward_state, forward_attempts, next_attempt_at, "
	    "quote(last_error), quote(forwarded_at)) FROM events WHERE "
	    "event_key = 'K:c'", NULL, buf, sizeof(buf)),
	    "PAYMENT_SUCCESS_WEBHOOK|5114910|order_1|NULL|1.8|INR|NULL|"
	    "application/json|2001|2001|1|pending|0|0|NULL|NULL");
	store_close(st);
}

static void
test_same_key_twice_in_batch(void)
{
	struct store_item it[2], *p[2] = { &it[0], &it[1] };
	struct event ev;
	char path[128];
	struct store *st;
	sqlite3 *db;

	st = open_new(path, sizeof(path), DURABILITY_FULL);
	if (st == NULL)
		return;
	db = store_db(st);
	ev_init(&ev, "K:x", "PAYMENT_SUCCESS_WEBHOOK");
	item_init(&it[0], &ev, "{}", 2, 10);
	item_init(&it[1], &ev, "{}", 2, 20);
	CHECK_INT(store_record_batch(st, p, 2, 1), 1);
	CHECK_INT(it[0].result, STORE_NEW);
	CHECK_INT(it[1].result, STORE_DUPLICATE);
	CHECK_INT(it[0].id, it[1].id);
	CHECK_INT(q_int(db, "SELECT count(*) FROM events", NULL), 1);
	CHECK_INT(q_int(db, "SELECT deliveries FROM events", NULL), 2);
	CHECK_INT(q_int(db, "SELECT last_seen_at FROM events", NULL), 20);
	store_close(st);
}

static void
test_forward_state(void)
{
	char path[128], buf[32];
	struct store *st;
	sqlite3 *db;

	st = open_new(path, sizeof(path), DURABILITY_FULL);
	if (st == NULL)
		return;
	db = store_db(st);
	CHECK_INT(record1(st, "K:0", 1, 0), STORE_NEW);
	CHECK_INT(record1(st, "K:1", 1, 1), STORE_NEW);
	CHECK_STR(q_text(db, "SELECT forward_state FROM events WHERE "
	    "event_key = 'K:0'", NULL, buf, sizeof(buf)), "done");
	CHECK_STR(q_text(db, "SELECT forward_state FROM events WHERE "
	    "event_key = 'K:1'", NULL, buf, sizeof(buf)), "pending");
	/* A duplicate never changes the state of the existing row. */
	CHECK_INT(record1(st, "K:0", 2, 1), STORE_DUPLICATE);
	CHECK_STR(q_text(db, "SELECT forward_state FROM events WHERE "
	    "event_key = 'K:0'", NULL, buf, sizeof(buf)), "done");
	store_close(st);
}

struct body_case {
	const char *bytes;
	size_t	 len;
	const char *type;	/* typeof(body) */
};

#define BC(s, t)	{ s, sizeof(s) - 1, t }

static const struct body_case body_cases[] = {
	BC("{\"x\":\"plain\"}", "text"),
	BC("", "text"),
	BC("\xE2\x82\xAC 100", "text"),			/* euro sign */
	BC("\xF0\x9F\x98\x80", "text"),			/* U+1F600 */
	BC("\xF4\x8F\xBF\xBF", "text"),			/* U+10FFFF */
	BC("\xEF\xBF\xBF", "text"),			/* U+FFFF */
	BC("a\0b", "blob"),				/* NUL */
	BC("\xC0\xAF", "blob"),				/* overlong '/' */
	BC("\xE0\x80\xAF", "blob"),			/* overlong */
	BC("\xF0\x80\x80\xAF", "blob"),			/* overlong */
	BC("\xED\xA0\x80", "blob"),			/* surrogate */
	BC("\xF4\x90\x80\x80", "blob"),			/* > U+10FFFF */
	BC("\xF5\x80\x80\x80", "blob"),
	BC("\xE2\x82", "blob"),				/* truncated */
	BC("\x80", "blob"),				/* lone continuation */
	BC("\xC2\x41", "blob"),				/* bad continuation */
	BC("\xFF\xFE{}", "blob"),
};

static void
test_body_bytes_exact(void)
{
	struct store_item it[sizeof(body_cases) / sizeof(body_cases[0])];
	struct store_item *p[sizeof(it) / sizeof(it[0])];
	struct event ev[sizeof(it) / sizeof(it[0])];
	char keys[sizeof(it) / sizeof(it[0])][16], path[128], buf[16];
	sqlite3_stmt *s = NULL;
	struct store *st;
	size_t i, n = sizeof(it) / sizeof(it[0]);
	sqlite3 *db;

	st = open_new(path, sizeof(path), DURABILITY_FULL);
	if (st == NULL)
		return;
	for (i = 0; i < n; i++) {
		(void)snprintf(keys[i], sizeof(keys[i]), "B:%zu", i);
		ev_init(&ev[i], keys[i], "UNKNOWN");
		item_init(&it[i], &ev[i], body_cases[i].bytes,
		    body_cases[i].len, 1);
		p[i] = &it[i];
	}
	CHECK_INT(store_record_batch(st, p, n, 1), (int)n);
	store_close(st);
	db = peek_open(path);	/* read back through another connection */
	CHECK_INT(sqlite3_prepare_v2(db, "SELECT typeof(body), body FROM "
	    "events WHERE event_key = ?1", -1, &s, NULL), SQLITE_OK);
	for (i = 0; i < n && s != NULL; i++) {
		(void)sqlite3_bind_text(s, 1, keys[i], -1, SQLITE_STATIC);
		if (!CHECK_INT(sqlite3_step(s), SQLITE_ROW))
			continue;
		(void)snprintf(buf, sizeof(buf), "%s",
		    (const char *)sqlite3_column_text(s, 0));
		if (!CHECK_STR(buf, body_cases[i].type))
			fprintf(stderr, "  body case %zu\n", i);
		CHECK_INT(sqlite3_column_bytes(s, 1), body_cases[i].len);
		CHECK(body_cases[i].len == 0 ||
		    memcmp(sqlite3_column_blob(s, 1), body_cases[i].bytes,
		    body_cases[i].len) == 0);
		(void)sqlite3_reset(s);
	}
	(void)sqlite3_finalize(s);
	(void)sqlite3_close(db);
}

static void
test_json_body_is_text(void)
{
	static const char body[] = "{\"data\":{\"order\":{\"order_id\":"
	    "\"order_7\",\"order_amount\":1.8}},\"type\":\"X\"}";
	struct store_item it, *p = &it;
	char path[128], buf[128];
	struct event ev;
	struct store *st;
	sqlite3 *db;

	st = open_new(path, sizeof(path), DURABILITY_FULL);
	if (st == NULL)
		return;
	ev_init(&ev, "K:json", "X");
	item_init(&it, &ev, body, sizeof(body) - 1, 1);
	CHECK_INT(store_record_batch(st, &p, 1, 1), 1);
	db = store_db(st);
	CHECK_STR(q_text(db, "SELECT typeof(body) FROM events", NULL, buf,
	    sizeof(buf)), "text");
	CHECK_STR(q_text(db, "SELECT json_extract(body, "
	    "'$.data.order.order_id') FROM events", NULL, buf, sizeof(buf)),
	    "order_7");
	CHECK_STR(q_text(db, "SELECT body FROM events", NULL, buf, sizeof(buf)),
	    "{\"data\":{\"order\":{\"order_id\":\"order_7\",\"order_amount\":"
	    "1.8}},\"type\":\"X\"}");
	store_close(st);
}

static void
test_pruned_key_is_duplicate(void)
{
	struct store_item it, *p = &it;
	struct event ev;
	char path[128];
	struct store *st;
	sqlite3 *db;

	st = open_new(path, sizeof(path), DURABILITY_FULL);
	if (st == NULL)
		return;
	db = store_db(st);
	CHECK_INT(sqlite3_exec(db, "INSERT INTO pruned_keys (event_key, "
	    "pruned_at) VALUES ('K:old', 5)", NULL, NULL, NULL), SQLITE_OK);
	ev_init(&ev, "K:old", "PAYMENT_SUCCESS_WEBHOOK");
	item_init(&it, &ev, "{}", 2, 9);
	CHECK_INT(store_record_batch(st, &p, 1, 1), 0);
	CHECK_INT(it.result, STORE_DUPLICATE);
	CHECK_INT(it.id, 0);
	CHECK_INT(q_int(db, "SELECT count(*) FROM events", NULL), 0);
	CHECK_INT(q_int(db, "SELECT deliveries FROM pruned_keys", NULL), 1);
	CHECK_INT(record1(st, "K:old", 10, 1), STORE_DUPLICATE);
	CHECK_INT(q_int(db, "SELECT deliveries FROM pruned_keys", NULL), 2);
	store_close(st);
}

static void
test_pragmas(void)
{
	char path[128];
	sqlite3_int64 used = -1, peak = -1;
	struct store *st;
	int persist;
	sqlite3 *db;

	st = open_new(path, sizeof(path), DURABILITY_FULL);
	if (st != NULL) {
		db = store_db(st);
		CHECK_INT(q_int(db, "PRAGMA synchronous", NULL), 2);
		CHECK_INT(q_int(db, "PRAGMA foreign_keys", NULL), 1);
		CHECK_INT(q_int(db, "PRAGMA temp_store", NULL), 2);
		CHECK_INT(q_int(db, "PRAGMA journal_size_limit", NULL),
		    STORE_JOURNAL_LIMIT);
		persist = -1;	/* -1 asks */
		CHECK_INT(sqlite3_file_control(db, "main",
		    SQLITE_FCNTL_PERSIST_WAL, &persist), SQLITE_OK);
		CHECK_INT(persist, 1);
		/* Memory statistics are off (one process-wide mutex per
		 * allocation): with them on, an open connection counts its
		 * memory, so this says the setup ran before SQLite's first use. */
		CHECK_INT(sqlite3_status64(SQLITE_STATUS_MEMORY_USED, &used,
		    &peak, 0), SQLITE_OK);
		CHECK_INT(used, 0);
		store_close(st);
	}
	st = open_new(path, sizeof(path), DURABILITY_NORMAL);
	if (st != NULL) {
		CHECK_INT(q_int(store_db(st), "PRAGMA synchronous", NULL), 1);
		store_close(st);
	}
}

/* Every fd on the database, its WAL and shm is close-on-exec, so a hook
 * never inherits them. */
static void
test_fds_close_on_exec(void)
{
	char path[128], link[300], target[256];
	struct dirent *de;
	struct store *st;
	int seen = 0, fd;
	ssize_t n;
	DIR *d;

	st = open_new(path, sizeof(path), DURABILITY_FULL);
	if (st == NULL)
		return;
	CHECK_INT(record1(st, "K:fd", 1, 1), STORE_NEW);	/* opens -wal */
	d = opendir("/proc/self/fd");
	if (!CHECK(d != NULL)) {
		store_close(st);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		(void)snprintf(link, sizeof(link), "/proc/self/fd/%s",
		    de->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (strncmp(target, path, strlen(path)) != 0)
			continue;
		seen++;
		fd = (int)strtol(de->d_name, NULL, 10);
		if (!CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC))
			fprintf(stderr, "  %s\n", target);
	}
	(void)closedir(d);
	CHECK(seen >= 2);		/* the db and its -wal at least */
	store_close(st);
}

static void
test_ping(void)
{
	char path[128];
	struct store *st;

	st = open_new(path, sizeof(path), DURABILITY_NORMAL);
	if (st == NULL)
		return;
	CHECK_INT(store_ping(st), 0);
	CHECK_INT(store_ping(st), 0);
	store_close(st);
	store_close(NULL);
}

/* Spec section 11: a form whose signing string was seen before is a
 * duplicate of that event whatever its key says now; in the same batch
 * too; the unsigned headers are recorded but never decide anything. */
static void
test_form_digest_is_a_duplicate(void)
{
	static const char digest[] = "5f1e0000000000000000000000000000"
	    "000000000000000000000000000000aa";
	struct store_item a, b, c, d, *batch[2];
	struct event ea, eb, ec, ed;
	char path[128], buf[64];
	struct store *st;
	sqlite3 *db;

	st = open_new(path, sizeof(path), DURABILITY_NORMAL);
	if (st == NULL)
		return;
	ev_init(&ea, "PAYMENT_LINK_EVENT:L1:PARTIALLY_PAID:7", "PAYMENT_LINK_EVENT");
	item_init(&a, &ea, "a", 1, 1000);
	a.form_digest = digest;
	a.idempotency_key = "idem-A";
	a.webhook_version = "2023-08-01";
	/* a re-cut: another key, the same signing string */
	ev_init(&eb, "PAYMENT_LINK_EVENT:L1:PAID:7", "PAYMENT_LINK_EVENT");
	item_init(&b, &eb, "b", 1, 2000);
	b.form_digest = digest;
	b.idempotency_key = "idem-B";
	batch[0] = &a;
	batch[1] = &b;
	CHECK_INT(store_record_batch(st, batch, 2, 1), 1);
	CHECK_INT(a.result, STORE_NEW);
	CHECK_INT(b.result, STORE_DUPLICATE);
	CHECK(b.id == a.id && a.id > 0);
	/* a later one, alone */
	ev_init(&ec, "PAYMENT_LINK_EVENT:L1:PAID:", "PAYMENT_LINK_EVENT");
	item_init(&c, &ec, "c", 1, 3000);
	c.form_digest = digest;
	batch[0] = &c;
	CHECK_INT(store_record_batch(st, batch, 1, 1), 0);
	CHECK_INT(c.result, STORE_DUPLICATE);
	CHECK(c.id == a.id);
	/* the same key without a digest (header-verified): by its key */
	ev_init(&ed, "PAYMENT_LINK_EVENT:L1:PARTIALLY_PAID:7",
	    "PAYMENT_LINK_EVENT");
	item_init(&d, &ed, "d", 1, 4000);
	batch[0] = &d;
	CHECK_INT(store_record_batch(st, batch, 1, 1), 0);
	CHECK_INT(d.result, STORE_DUPLICATE);
	db = store_db(st);
	CHECK_INT(q_int(db, "SELECT count(*) FROM events", NULL), 1);
	CHECK_INT(q_int(db, "SELECT deliveries FROM events", NULL), 4);
	CHECK_INT(q_int(db, "SELECT last_seen_at FROM events", NULL), 4000);
	CHECK_INT(q_int(db, "SELECT event_id FROM form_signatures WHERE "
	    "digest = ?1", digest), a.id);
	CHECK_STR(q_text(db, "SELECT idempotency_key FROM events", NULL, buf,
	    sizeof(buf)), "idem-A");
	CHECK_STR(q_text(db, "SELECT webhook_version FROM events", NULL, buf,
	    sizeof(buf)), "2023-08-01");
	/* once the event is pruned, the signing string still makes a
	 * duplicate (a tombstone) */
	CHECK_INT(sqlite3_exec(db, "DELETE FROM events", NULL, NULL, NULL),
	    SQLITE_OK);
	item_init(&c, &ec, "c", 1, 5000);
	c.form_digest = digest;
	batch[0] = &c;
	CHECK_INT(store_record_batch(st, batch, 1, 1), 0);
	CHECK_INT(c.result, STORE_DUPLICATE);
	CHECK(c.id == 0);
	CHECK_INT(q_int(db, "SELECT count(*) FROM events", NULL), 0);
	store_close(st);
}

int
main(void)
{
	int rc;

	if (storetest_init() == -1)
		return 1;
	RUN(test_open_creates_schema);
	RUN(test_reopen_idempotent);
	RUN(test_newer_version_refused);
	RUN(test_read_mode_never_creates);
	RUN(test_readonly_mode);
	RUN(test_batch_new_and_duplicate);
	RUN(test_same_key_twice_in_batch);
	RUN(test_forward_state);
	RUN(test_body_bytes_exact);
	RUN(test_json_body_is_text);
	RUN(test_pruned_key_is_duplicate);
	RUN(test_pragmas);
	RUN(test_fds_close_on_exec);
	RUN(test_ping);
	RUN(test_form_digest_is_a_duplicate);
	rc = check_finish("test_store");
	storetest_cleanup();
	return rc;
}
