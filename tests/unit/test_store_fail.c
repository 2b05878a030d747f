/* test_store_fail.c - nothing half-written remains: an error in one item
 * undoes only that item; a transaction SQLite rolls back by itself (injected,
 * or disk full), a failed COMMIT, the lock held past the busy timeout and a
 * process killed inside a batch each leave exactly the committed batches,
 * with every answer matching the file. Real SQLite files, faults injected
 * through SQLite's own hooks, triggers and limits. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "check.h"
#include "clock.h"
#include "store.h"
#include "store_int.h"
#include "storetest.h"

/* Three items with keys a, b, c; b is the one the test sabotages. */
static void
three_items(struct store_item it[3], struct store_item *p[3],
    struct event ev[3])
{
	static const char *keys[] = { "T:a", "T:b", "T:c" };
	int i;

	for (i = 0; i < 3; i++) {
		ev_init(&ev[i], keys[i], "PAYMENT_SUCCESS_WEBHOOK");
		item_init(&it[i], &ev[i], "{}", 2, 1);
		p[i] = &it[i];
	}
}

static void
test_item_error_undoes_only_that_item(void)
{
	struct store_item it[3], *p[3];
	struct event ev[3];
	char path[128];
	struct store *st;
	sqlite3 *db;

	st = open_new(path, sizeof(path), DURABILITY_FULL);
	if (st == NULL)
		return;
	db = store_db(st);
	three_items(it, p, ev);
	ev[1].type = NULL;		/* NOT NULL constraint fails */
	CHECK_INT(store_record_batch(st, p, 3, 1), 2);
	CHECK_INT(it[0].result, STORE_NEW);
	CHECK_INT(it[1].result, STORE_UNAVAILABLE);
	CHECK_INT(it[2].result, STORE_NEW);
	CHECK_INT(q_int(db, "SELECT count(*) FROM events", NULL), 2);
	CHECK_INT(q_int(db, "SELECT count(*) FROM events WHERE event_key = "
	    "'T:b'", NULL), 0);
	CHECK_INT(sqlite3_get_autocommit(db), 1);	/* no transaction */
	store_close(st);
}

/* RAISE(ROLLBACK) makes SQLite roll back the whole transaction from inside
 * one item, as it may do itself on I/O errors: the batch must fail whole,
 * not go on in autocommit mode. */
static void
test_transaction_lost_mid_batch(void)
{
	struct store_item it[3], *p[3];
	struct event ev[3];
	char path[128];
	struct store *st;
	sqlite3 *db;

	st = open_new(path, sizeof(path), DURABILITY_FULL);
	if (st == NULL)
		return;
	db = store_db(st);
	CHECK_INT(sqlite3_exec(db, "CREATE TEMP TRIGGER boom AFTER INSERT ON "
	    "main.events WHEN NEW.event_key = 'T:b' BEGIN SELECT "
	    "RAISE(ROLLBACK, 'injected'); END", NULL, NULL, NULL), SQLITE_OK);
	three_items(it, p, ev);
	CHECK_INT(store_record_batch(st, p, 3, 1), -1);
	CHECK_INT(it[0].result, STORE_UNAVAILABLE);
	CHECK_INT(it[1].result, STORE_UNAVAILABLE);
	CHECK_INT(it[2].result, STORE_UNAVAILABLE);
	CHECK_INT(q_int(db, "SELECT count(*) FROM events", NULL), 0);
	CHECK_INT(sqlite3_get_autocommit(db), 1);
	/* The store keeps working afterwards. */
	CHECK_INT(sqlite3_exec(db, "DROP TRIGGER boom", NULL, NULL, NULL),
	    SQLITE_OK);
	CHECK_INT(store_record_batch(st, p, 3, 1), 3);
	CHECK_INT(q_int(db, "SELECT count(*) FROM events", NULL), 3);
	store_close(st);
}

static int
refuse_commit(void *arg)
{
	return *(int *)arg;	/* non-zero turns the COMMIT into ROLLBACK */
}

static void
test_commit_failure_writes_nothing(void)
{
	struct store_item it[3], *p[3];
	struct event ev[3];
	char path[128];
	struct store *st;
	int refuse = 1;
	sqlite3 *db;

	st = open_new(path, sizeof(path), DURABILITY_FULL);
	if (st == NULL)
		return;
	db = store_db(st);
	(void)sqlite3_commit_hook(db, refuse_commit, &refuse);
	three_items(it, p, ev);
	CHECK_INT(store_record_batch(st, p, 3, 1), -1);
	CHECK_INT(it[0].result, STORE_UNAVAILABLE);
	CHECK_INT(it[0].id, 0);
	CHECK_INT(it[2].result, STORE_UNAVAILABLE);
	refuse = 0;
	CHECK_INT(q_int(db, "SELECT count(*) FROM events", NULL), 0);
	CHECK_INT(sqlite3_get_autocommit(db), 1);
	CHECK_INT(store_record_batch(st, p, 3, 1), 3);
	CHECK_INT(it[1].result, STORE_NEW);
	(void)sqlite3_commit_hook(db, NULL, NULL);
	store_close(st);
}

/* Disk full in the middle of a batch (max_page_count stands in for the
 * disk): SQLite rolls back the whole transaction by itself, so the batch
 * must fail whole rather than go on in autocommit mode. */
static void
test_disk_full_mid_batch(void)
{
	struct store_item it[3], *p[3];
	struct event ev[3];
	char path[128], *big;
	struct store *st;
	size_t big_len = 1 << 20;
	sqlite3 *db;
	int i, rc;

	st = open_new(path, sizeof(path), DURABILITY_FULL);
	big = malloc(big_len);
	if (st == NULL || big == NULL) {
		CHECK(big != NULL);
		store_close(st);
		free(big);
		return;
	}
	memset(big, 'x', big_len);
	db = store_db(st);
	(void)q_int(db, "PRAGMA max_page_count = 64", NULL);
	three_items(it, p, ev);
	it[1].body = big;
	it[1].body_len = big_len;
	rc = store_record_batch(st, p, 3, 1);
	CHECK_INT(rc, -1);
	for (i = 0; i < 3; i++) {
		CHECK_INT(it[i].result, STORE_UNAVAILABLE);
		CHECK_INT(q_int(db, "SELECT count(*) FROM events WHERE "
		    "event_key = ?1", ev[i].event_key), 0);
	}
	CHECK_INT(sqlite3_get_autocommit(db), 1);
	/* Once there is room again, the same items go in. */
	it[1].body_len = 2;
	CHECK_INT(store_record_batch(st, p, 3, 1), 3);
	store_close(st);
	free(big);
}

static void
test_locked_past_timeout(void)
{
	struct store_item it[3], *p[3];
	struct event ev[3];
	char path[128];
	struct store *st;
	int64_t t0, waited;
	sqlite3 *other;

	st = open_new(path, sizeof(path), DURABILITY_FULL);
	if (st == NULL)
		return;
	other = peek_open(path);
	CHECK_INT(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL),
	    SQLITE_OK);
	three_items(it, p, ev);
	t0 = clock_mono_ms();
	CHECK_INT(store_record_batch(st, p, 3, 1), -1);
	waited = clock_mono_ms() - t0;
	CHECK(waited >= STORE_BUSY_TIMEOUT_MS - 100);
	CHECK_INT(it[0].result, STORE_UNAVAILABLE);
	CHECK_INT(it[1].result, STORE_UNAVAILABLE);
	CHECK_INT(it[2].result, STORE_UNAVAILABLE);
	CHECK_INT(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	CHECK_INT(q_int(other, "SELECT count(*) FROM events", NULL), 0);
	CHECK_INT(store_record_batch(st, p, 3, 1), 3);
	CHECK_INT(q_int(other, "SELECT count(*) FROM events", NULL), 3);
	(void)sqlite3_close(other);
	store_close(st);
}

/* The wait for the lock is the batch's, not each step's, and it counts
 * from when its oldest item was queued: an item that already waited behind
 * a failed batch is answered about STORE_BUSY_TIMEOUT_MS after it came, not
 * twice that. */
static void
test_lock_wait_counts_from_oldest_item(void)
{
	struct store_item it[3], *p[3];
	struct event ev[3];
	char path[128];
	struct store *st;
	int64_t t0, waited;
	sqlite3 *other;

	st = open_new(path, sizeof(path), DURABILITY_FULL);
	if (st == NULL)
		return;
	other = peek_open(path);
	CHECK_INT(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL),
	    SQLITE_OK);
	three_items(it, p, ev);
	t0 = clock_mono_ms();
	it[0].queued_ms = t0 - (STORE_BUSY_TIMEOUT_MS - 1000);
	it[1].queued_ms = t0;
	CHECK_INT(store_record_batch(st, p, 3, 1), -1);
	waited = clock_mono_ms() - t0;
	CHECK(waited >= 900);
	CHECK(waited < 2500);		/* about 1 s, not 5 */
	CHECK_STR(store_fault(st), "locked by another connection");
	/* Queued long ago: one try, no wait. */
	it[0].queued_ms = it[1].queued_ms = it[2].queued_ms = t0 - 60000;
	t0 = clock_mono_ms();
	CHECK_INT(store_record_batch(st, p, 3, 1), -1);
	CHECK(clock_mono_ms() - t0 < 500);
	CHECK_INT(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	/* Free: an old item is stored at once. */
	CHECK_INT(store_record_batch(st, p, 3, 1), 3);
	CHECK_STR(store_fault(st), "");
	(void)sqlite3_close(other);
	store_close(st);
}

/* In a forked child (its own POSIX locks): open the database, count the
 * events and close, as cfhookctl would. Returns the count, or -1. */
static int
count_in_child(const char *path)
{
	int status = -1;
	sqlite3 *db = NULL;
	int64_t n;
	pid_t pid;

	pid = fork();
	if (pid == 0) {
		if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) !=
		    SQLITE_OK)
			_exit(255);
		n = q_int(db, "SELECT count(*) FROM events", NULL);
		(void)sqlite3_close(db);	/* "last one out" checkpoints */
		_exit(n >= 0 && n < 255 ? (int)n : 255);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status) == 255 ? -1 : WEXITSTATUS(status);
}

/* Whether /proc/locks shows a POSIX lock of this process on `path`. */
static int
holds_lock(const char *path)
{
	char pid[32], ino[48];
	char *line = NULL;
	size_t cap = 0;
	struct stat sb;
	int found = 0;
	FILE *fp;

	if (stat(path, &sb) == -1)
		return -1;
	(void)snprintf(pid, sizeof(pid), " %ld ", (long)getpid());
	(void)snprintf(ino, sizeof(ino), ":%lu ", (unsigned long)sb.st_ino);
	fp = fopen("/proc/locks", "re");
	if (fp == NULL)
		return -1;
	while (!found && getline(&line, &cap, fp) != -1)
		found = strstr(line, "POSIX") != NULL &&
		    strstr(line, pid) != NULL && strstr(line, ino) != NULL;
	free(line);
	(void)fclose(fp);
	return found;
}

/* The daemon opens several connections to one file (writer, forwarder,
 * HTTP). Opening another must not drop the POSIX locks the first holds
 * (closing any fd of a file drops them all, which open-and-close checks of
 * the file once did): SQLite's WAL mode keeps a shared lock on the database
 * file so that no other process thinks it is the last user, checkpoints and
 * deletes the WAL under the writer. */
static void
test_second_open_keeps_locks(void)
{
	char path[128], wal[160];
	struct store *wr, *rd = NULL, *wr2 = NULL;
	struct stat sb;

	wr = open_new(path, sizeof(path), DURABILITY_FULL);
	if (wr == NULL)
		return;
	CHECK_INT(record1(wr, "L:1", 1, 1), STORE_NEW);
	CHECK_INT(holds_lock(path), 1);
	CHECK_INT(store_open(path, STORE_READ, DURABILITY_FULL, &rd), 0);
	CHECK_INT(holds_lock(path), 1);
	CHECK_INT(store_open(path, STORE_WRITE, DURABILITY_FULL, &wr2), 0);
	CHECK_INT(holds_lock(path), 1);
	/* Other processes come and go; the writer's data stays. */
	CHECK_INT(count_in_child(path), 1);
	CHECK_INT(record1(wr, "L:2", 2, 1), STORE_NEW);
	(void)snprintf(wal, sizeof(wal), "%s-wal", path);
	CHECK_INT(stat(wal, &sb), 0);
	CHECK_INT(count_in_child(path), 2);
	/* A writing store holds its files by O_PATH descriptors too:
	 * closing it leaves the writer's locks alone. */
	store_close(wr2);
	CHECK_INT(holds_lock(path), 1);
	CHECK_INT(record1(wr, "L:3", 3, 1), STORE_NEW);
	CHECK_INT(count_in_child(path), 3);
	store_close(wr);
	store_close(rd);
	CHECK_INT(count_in_child(path), 3);
}

static void
die_on_50th(void *arg, int op, const char *db, const char *table,
    sqlite3_int64 rowid)
{
	(void)op;
	(void)db;
	(void)table;
	(void)rowid;
	if (++*(int *)arg == 50)
		_exit(0);	/* a crash inside the open transaction */
}

/* The child: batch A (100 items) commits; batch B (100 items, bodies big
 * enough that uncommitted pages spill into the WAL with cache_size 10) dies
 * at its 50th insert. Nothing is closed: the process just ends. */
static void
crash_child(const char *path)
{
	static char body[4096];
	static struct store_item it[200];
	static struct event ev[200];
	static char keys[200][16];
	struct store_item *p[200];
	struct store *st = NULL;
	int i, inserts = 0;

	memset(body, 'y', sizeof(body));
	if (store_open(path, STORE_WRITE, DURABILITY_FULL, &st) == -1)
		_exit(2);
	(void)q_int(store_db(st), "PRAGMA cache_size = 10", NULL);
	for (i = 0; i < 200; i++) {
		(void)snprintf(keys[i], sizeof(keys[i]), "%c:%d",
		    i < 100 ? 'A' : 'B', i);
		ev_init(&ev[i], keys[i], "PAYMENT_SUCCESS_WEBHOOK");
		item_init(&it[i], &ev[i], body, sizeof(body), 1);
		p[i] = &it[i];
	}
	if (store_record_batch(st, p, 100, 1) != 100)
		_exit(3);
	(void)sqlite3_update_hook(store_db(st), die_on_50th, &inserts);
	(void)store_record_batch(st, p + 100, 100, 1);
	_exit(4);		/* not reached: the hook ended us */
}

static void
test_crash_mid_batch_leaves_nothing(void)
{
	char path[128], wal[160], buf[32];
	struct store *st = NULL;
	struct stat sb;
	int status = -1;
	sqlite3 *db;
	pid_t pid;

	new_path(path, sizeof(path));
	pid = fork();
	if (!CHECK(pid >= 0))
		return;
	if (pid == 0)
		crash_child(path);
	CHECK_INT(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* Uncommitted frames of batch B really reached the WAL: it holds
	 * far more than batch A's ~100 pages. */
	(void)snprintf(wal, sizeof(wal), "%s-wal", path);
	CHECK_INT(stat(wal, &sb), 0);
	CHECK(sb.st_size > 150 * 4096);
	CHECK_INT(store_open(path, STORE_WRITE, DURABILITY_FULL, &st), 0);
	if (st == NULL)
		return;
	db = store_db(st);
	CHECK_STR(q_text(db, "PRAGMA integrity_check", NULL, buf, sizeof(buf)),
	    "ok");
	CHECK_INT(q_int(db, "SELECT count(*) FROM events WHERE event_key "
	    "LIKE 'A:%'", NULL), 100);
	CHECK_INT(q_int(db, "SELECT count(*) FROM events WHERE event_key "
	    "LIKE 'B:%'", NULL), 0);
	CHECK_INT(q_int(db, "SELECT sum(length(body)) FROM events", NULL),
	    100 * 4096);
	/* The lost batch can be delivered again: all 100 are new. */
	CHECK_INT(record1(st, "B:150", 2, 1), STORE_NEW);
	store_close(st);
}

int
main(void)
{
	int rc;

	if (storetest_init() == -1)
		return 1;
	RUN(test_item_error_undoes_only_that_item);
	RUN(test_transaction_lost_mid_batch);
	RUN(test_commit_failure_writes_nothing);
	RUN(test_disk_full_mid_batch);
	RUN(test_locked_past_timeout);
	RUN(test_lock_wait_counts_from_oldest_item);
	RUN(test_second_open_keeps_locks);
	RUN(test_crash_mid_batch_leaves_nothing);
	rc = check_finish("test_store_fail");
	storetest_cleanup();
	return rc;
}
