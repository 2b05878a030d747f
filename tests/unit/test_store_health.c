/* test_store_health.c - store_health.c and store_file.c against real files:
 * a commit into a deleted or moved database or WAL is not acknowledged, the
 * files are compared with what the path names, STORE_EXISTING never adopts
 * a new or empty file, the probe commits a row (and says busy or failed
 * when it cannot), and checkpoints move the WAL into the database file and
 * say when they cannot (an immutable database file, as root); a busy wait
 * ends when a write transaction of this process ends, not at its step. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "check.h"
#include "clock.h"
#include "store.h"
#include "store_int.h"
#include "store_file.h"
#include "store_health.h"
#include "storetest.h"

static void
suffixed(char *out, size_t n, const char *path, const char *sfx)
{
	(void)snprintf(out, n, "%s%s", path, sfx);
}

static int64_t
file_size(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? (int64_t)sb.st_size : -1;
}

/* The WAL deleted while open: the next commit goes into the unlinked file,
 * so its items are answered 503. A TRUNCATE checkpoint still moves what
 * that WAL holds (acknowledged events included) into the database file,
 * where a new connection finds it. */
static void
test_wal_deleted(void)
{
	char path[128], wal[160];
	struct store *st, *again = NULL;
	struct store_item it, *p = &it;
	struct event ev;

	st = open_new(path, sizeof(path), DURABILITY_FULL);
	if (st == NULL)
		return;
	CHECK_INT(record1(st, "W:acked", 1, 1), STORE_NEW);
	CHECK_INT(store_check_files(st), STORE_FILE_OK);
	CHECK_INT(store_path_state(st), STORE_PATH_SAME);
	suffixed(wal, sizeof(wal), path, "-wal");
	CHECK_INT(unlink(wal), 0);
	CHECK_INT(store_check_files(st), STORE_FILE_WAL_DELETED);
	CHECK_INT(store_path_state(st), STORE_PATH_MIXED);
	ev_init(&ev, "W:after", "PAYMENT_SUCCESS_WEBHOOK");
	item_init(&it, &ev, "{}", 2, 2);
	CHECK_INT(store_record_batch(st, &p, 1, 1), -1);
	CHECK_INT(it.result, STORE_UNAVAILABLE);
	CHECK_STR(store_fault(st), "the WAL file was deleted");
	CHECK_INT(store_probe(st, 100), STORE_PROBE_MOVED);
	CHECK_INT(store_checkpoint(st, 1, 1000), STORE_CKPT_DONE);
	store_close(st);
	CHECK_INT(store_open(path, STORE_EXISTING, DURABILITY_FULL, &again), 0);
	if (again == NULL)
		return;
	CHECK_INT(store_check_files(again), STORE_FILE_OK);
	CHECK_INT(q_int(store_db(again), "SELECT count(*) FROM events WHERE "
	    "event_key IN ('W:acked', 'W:after')", NULL), 2);
	CHECK_INT(record1(again, "W:later", 3, 1), STORE_NEW);
	store_close(again);
}

/* Renamed away and back (as a renamed directory would be): moved while
 * away, in place again after, with the same files. */
static void
test_renamed_and_back(void)
{
	char path[128], away[160];
	struct store *st;

	st = open_new(path, sizeof(path), DURABILITY_FULL);
	if (st == NULL)
		return;
	suffixed(away, sizeof(away), path, ".away");
	CHECK_INT(rename(path, away), 0);
	CHECK_INT(store_check_files(st), STORE_FILE_DB_MOVED);
	CHECK_INT(store_path_state(st), STORE_PATH_GONE);
	CHECK_INT(record1(st, "R:1", 1, 1), STORE_UNAVAILABLE);
	CHECK_STR(store_fault(st), "the database file is no longer at its "
	    "path");
	CHECK_INT(rename(away, path), 0);
	CHECK_INT(store_check_files(st), STORE_FILE_OK);
	CHECK_INT(store_path_state(st), STORE_PATH_SAME);
	CHECK_INT(record1(st, "R:1", 2, 1), STORE_DUPLICATE);	/* kept */
	store_close(st);
}

/* Deleted, then another database put at the path (the database, its -wal
 * and -shm, as a restore would). The old connection's close must not delete
 * the new database's -wal and -shm, which its own files were named. */
static void
test_deleted_and_replaced(void)
{
	static const char *const sfx[] = { "", "-wal", "-shm" };
	char path[128], other[128], from[160], to[160];
	struct store *st, *o;
	size_t i;

	st = open_new(path, sizeof(path), DURABILITY_FULL);
	o = open_new(other, sizeof(other), DURABILITY_FULL);
	if (st == NULL || o == NULL) {
		store_close(st);
		store_close(o);
		return;
	}
	CHECK_INT(record1(o, "N:1", 1, 1), STORE_NEW);
	store_close(o);
	for (i = 0; i < 3; i++) {
		suffixed(to, sizeof(to), path, sfx[i]);
		CHECK_INT(unlink(to), 0);
	}
	CHECK_INT(store_check_files(st), STORE_FILE_DB_DELETED);
	CHECK_INT(store_path_state(st), STORE_PATH_GONE);
	for (i = 0; i < 3; i++) {
		suffixed(from, sizeof(from), other, sfx[i]);
		suffixed(to, sizeof(to), path, sfx[i]);
		CHECK_INT(rename(from, to), 0);
	}
	CHECK_INT(store_path_state(st), STORE_PATH_OTHER_DB);
	store_close(st);
	for (i = 0; i < 3; i++) {
		suffixed(to, sizeof(to), path, sfx[i]);
		CHECK_INT(access(to, F_OK), 0);
	}
	st = NULL;
	CHECK_INT(store_open(path, STORE_EXISTING, DURABILITY_FULL, &st), 0);
	if (st != NULL)
		CHECK_INT(record1(st, "N:1", 2, 1), STORE_DUPLICATE);
	store_close(st);
}

/* Only the database file replaced, beside our WAL and -shm: not a database
 * to open next to ours (it would take over our WAL). */
static void
test_replaced_beside_our_wal(void)
{
	char path[128], other[128];
	struct store *st, *o;

	st = open_new(path, sizeof(path), DURABILITY_FULL);
	o = open_new(other, sizeof(other), DURABILITY_FULL);
	if (st == NULL || o == NULL) {
		store_close(st);
		store_close(o);
		return;
	}
	store_close(o);
	CHECK_INT(rename(other, path), 0);
	CHECK_INT(store_check_files(st), STORE_FILE_DB_DELETED);
	CHECK_INT(store_path_state(st), STORE_PATH_MIXED);
	store_close(st);
}

/* STORE_EXISTING adopts only a cfhookd database: a missing path stays
 * missing, an empty file stays empty. */
static void
test_existing_mode_never_creates(void)
{
	char path[128], keep[128];
	struct store *st = NULL;
	int fd;

	new_path(path, sizeof(path));
	CHECK_INT(store_open(path, STORE_EXISTING, DURABILITY_FULL, &st), -1);
	CHECK_INT(access(path, F_OK), -1);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (CHECK(fd >= 0))
		(void)close(fd);
	CHECK_INT(store_open(path, STORE_EXISTING, DURABILITY_FULL, &st), -1);
	CHECK(st == NULL);
	CHECK_INT(file_size(path), 0);
	st = open_new(keep, sizeof(keep), DURABILITY_FULL);
	store_close(st);
	st = NULL;
	CHECK_INT(store_open(keep, STORE_EXISTING, DURABILITY_FULL, &st), 0);
	store_close(st);
}

static int
refuse(void *arg)
{
	return *(int *)arg;
}

/* The probe commits a row; it is busy while another connection holds the
 * lock (and gives up after its wait), and failed when the commit is. */
static void
test_probe(void)
{
	char path[128];
	struct store *st;
	sqlite3 *other;
	int64_t t0;
	int no = 1;

	st = open_new(path, sizeof(path), DURABILITY_FULL);
	if (st == NULL)
		return;
	other = peek_open(path);
	CHECK_INT(store_probe(st, 100), STORE_PROBE_OK);
	CHECK_INT(q_int(other, "SELECT count(*) FROM health_probe WHERE id = 1 "
	    "AND probed_at > 0", NULL), 1);
	CHECK_INT(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL),
	    SQLITE_OK);
	t0 = clock_mono_ms();
	CHECK_INT(store_probe(st, 300), STORE_PROBE_BUSY);
	CHECK(clock_mono_ms() - t0 >= 250);
	CHECK(clock_mono_ms() - t0 < 3000);
	CHECK_STR(store_fault(st), "locked by another connection");
	CHECK_INT(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	(void)sqlite3_commit_hook(store_db(st), refuse, &no);
	CHECK_INT(store_probe(st, 100), STORE_PROBE_FAILED);
	CHECK_INT(sqlite3_get_autocommit(store_db(st)), 1);
	(void)sqlite3_commit_hook(store_db(st), NULL, NULL);
	CHECK_INT(store_probe(st, 100), STORE_PROBE_OK);
	(void)sqlite3_close(other);
	store_close(st);
}

/* The writer's connection reports the WAL frames after each commit (its
 * own checkpoints replace SQLite's); PASSIVE moves them into the database
 * file unless a reader holds an older snapshot; TRUNCATE empties the WAL. */
static void
test_checkpoints(void)
{
	char path[128], wal[160], key[16];
	struct store *st;
	sqlite3 *reader;
	int i;

	st = open_new(path, sizeof(path), DURABILITY_NORMAL);
	if (st == NULL)
		return;
	suffixed(wal, sizeof(wal), path, "-wal");
	for (i = 0; i < 40; i++) {
		(void)snprintf(key, sizeof(key), "C:%d", i);
		CHECK_INT(record1(st, key, i, 1), STORE_NEW);
	}
	CHECK(store_wal_frames(st) > 40);	/* no automatic checkpoint */
	CHECK_INT(store_wal_bytes(st), file_size(wal));
	CHECK(store_free_bytes(st) > 0);
	reader = peek_open(path);
	CHECK_INT(sqlite3_exec(reader, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
	CHECK_INT(q_int(reader, "SELECT count(*) FROM events", NULL), 40);
	CHECK_INT(record1(st, "C:late", 99, 1), STORE_NEW);
	CHECK_INT(store_checkpoint(st, 0, 0), STORE_CKPT_BUSY);
	CHECK_INT(sqlite3_exec(reader, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	CHECK_INT(store_checkpoint(st, 0, 0), STORE_CKPT_DONE);
	CHECK(file_size(wal) > 0);
	CHECK_INT(store_checkpoint(st, 1, 100), STORE_CKPT_DONE);
	CHECK_INT(file_size(wal), 0);
	CHECK_INT(store_wal_bytes(st), 0);
	(void)sqlite3_close(reader);
	store_close(st);
	/* Closed for good: the WAL and -shm stay, the WAL empty. */
	CHECK_INT(file_size(wal), 0);
	suffixed(wal, sizeof(wal), path, "-shm");
	CHECK(file_size(wal) > 0);
}

static int
set_immutable(const char *path, int on)
{
	int fd, flags, rc = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return -1;
	if (ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0) {
		flags = on ? flags | FS_IMMUTABLE_FL : flags & ~FS_IMMUTABLE_FL;
		rc = ioctl(fd, FS_IOC_SETFLAGS, &flags);
	}
	(void)close(fd);
	return rc;
}

/* An immutable database file (root only; elsewhere the check is skipped
 * with a note): commits still go into the WAL, checkpoints fail and say
 * why, and work again once it is writable. */
static void
test_checkpoint_fails_on_an_immutable_file(void)
{
	char path[128];
	struct store *st;

	st = open_new(path, sizeof(path), DURABILITY_FULL);
	if (st == NULL)
		return;
	CHECK_INT(record1(st, "I:1", 1, 1), STORE_NEW);
	if (set_immutable(path, 1) == -1) {
		fprintf(stderr, "test_store_health: skipped the immutable-file "
		    "checkpoint (chattr: %s; needs root and a file system "
		    "with the flag)\n", strerror(errno));
		store_close(st);
		return;
	}
	CHECK_INT(record1(st, "I:2", 2, 1), STORE_NEW);
	CHECK_INT(store_checkpoint(st, 0, 0), STORE_CKPT_FAILED);
	CHECK(strncmp(store_fault(st), "I/O error", 9) == 0 ||
	    strcmp(store_fault(st), "read-only") == 0);
	CHECK_INT(set_immutable(path, 0), 0);
	CHECK_INT(store_checkpoint(st, 1, 100), STORE_CKPT_DONE);
	CHECK_INT(q_int(store_db(st), "SELECT count(*) FROM events", NULL), 2);
	store_close(st);
}

/* The busy handler's longest step is 100 ms (count 11 on). */
struct waiter {
	struct store_wait w;
	atomic_int ready;	/* the first step is done */
	int64_t	 took_ms;	/* the long step */
};

static void *
wait_twice(void *arg)
{
	struct waiter *wt = arg;
	int64_t t0;

	(void)store_busy_wait(&wt->w, 0);	/* 1 ms; notes the count */
	atomic_store(&wt->ready, 1);
	t0 = clock_mono_ms();
	(void)store_busy_wait(&wt->w, 11);
	wt->took_ms = clock_mono_ms() - t0;
	return NULL;
}

static int64_t
long_step_ms(int end_a_transaction)
{
	struct waiter wt;
	pthread_t t;

	memset(&wt, 0, sizeof(wt));
	if (pthread_create(&t, NULL, wait_twice, &wt) != 0)
		return -1;
	while (!atomic_load(&wt.ready))
		(void)usleep(1000);
	if (end_a_transaction)
		store_write_ended();
	(void)pthread_join(t, NULL);
	return wt.took_ms;
}

static void
test_busy_wait_ends_with_a_transaction(void)
{
	/* Without a transaction ending, the step is slept whole; with one
	 * (before or during the step), it ends at once. */
	int64_t ms;

	ms = long_step_ms(0);
	CHECK(ms >= 100);
	ms = long_step_ms(1);
	CHECK(ms >= 0 && ms < 90);	/* -1: the thread did not start */
}

/* Intake's writer: wants the lock while the forwarder commits, then has
 * its own transaction (`hold_ms` long) and ends it. */
struct intake {
	atomic_int wanting;	/* store_write_wanted(1) done */
	atomic_int go;		/* the forwarder committed */
	int	 hold_ms;
	int64_t	 ended_ms;	/* when its transaction ended */
};

static void *
intake_writes(void *arg)
{
	struct intake *in = arg;

	store_write_wanted(1);
	atomic_store(&in->wanting, 1);
	while (!atomic_load(&in->go))
		(void)usleep(1000);
	store_write_wanted(0);		/* it has the lock now */
	(void)usleep((useconds_t)in->hold_ms * 1000);
	in->ended_ms = clock_mono_ms();
	store_write_ended();
	return NULL;
}

/* What store_write_yield() did after a commit while intake wanted the
 * lock (-1: the thread did not start): 1 and the time when it waited for
 * intake's transaction to end. */
static int
yield_behind_intake(int hold_ms, int max_ms, int64_t *ret_ms,
    int64_t *intake_end)
{
	struct intake in;
	pthread_t t;
	int64_t t0;
	int r;

	memset(&in, 0, sizeof(in));
	in.hold_ms = hold_ms;
	if (pthread_create(&t, NULL, intake_writes, &in) != 0)
		return -1;
	while (!atomic_load(&in.wanting))
		(void)usleep(1000);
	store_write_ended();		/* the forwarder's commit */
	atomic_store(&in.go, 1);
	t0 = clock_mono_ms();
	r = store_write_yield(max_ms);
	*ret_ms = clock_mono_ms();
	(void)pthread_join(t, NULL);
	*ret_ms -= t0;
	*intake_end = in.ended_ms;
	return r;
}

static void
test_a_commit_lets_a_waiting_intake_go_first(void)
{
	int64_t ms, t0, intake_end;

	/* Nobody wanted the lock: no wait. */
	store_write_ended();
	t0 = clock_mono_ms();
	CHECK(store_write_yield(5000) == 0);
	CHECK(clock_mono_ms() - t0 < 1000);
	/* Intake wanted it: the yield ends with intake's transaction, not
	 * before. */
	t0 = clock_mono_ms();
	CHECK(yield_behind_intake(50, 5000, &ms, &intake_end) == 1);
	CHECK(ms >= 45 && ms < 4000);
	CHECK(intake_end >= t0 && intake_end <= t0 + ms + 1);
	/* An intake that takes too long is not waited for past max_ms. */
	CHECK(yield_behind_intake(400, 50, &ms, &intake_end) == 0);
	CHECK(ms >= 45 && ms < 350);
	/* Once per commit: a second yield after the same commit is free. */
	t0 = clock_mono_ms();
	CHECK(store_write_yield(5000) == 0);
	CHECK(clock_mono_ms() - t0 < 1000);
}

static void
test_intake_writing_is_recent(void)
{
	(void)usleep(80 * 1000);	/* after what earlier tests wrote */
	CHECK(!store_write_recent(50));
	store_write_wanted(1);
	(void)usleep(80 * 1000);
	CHECK(store_write_recent(50));	/* still wanting it */
	store_write_wanted(0);
	CHECK(store_write_recent(500));	/* it began 80 ms ago */
	(void)usleep(80 * 1000);
	CHECK(!store_write_recent(50));
}

int
main(void)
{
	int rc;

	if (storetest_init() == -1)
		return 1;
	RUN(test_wal_deleted);
	RUN(test_renamed_and_back);
	RUN(test_deleted_and_replaced);
	RUN(test_replaced_beside_our_wal);
	RUN(test_existing_mode_never_creates);
	RUN(test_probe);
	RUN(test_checkpoints);
	RUN(test_checkpoint_fails_on_an_immutable_file);
	RUN(test_busy_wait_ends_with_a_transaction);
	RUN(test_a_commit_lets_a_waiting_intake_go_first);
	RUN(test_intake_writing_is_recent);
	rc = check_finish("test_store_health");
	storetest_cleanup();
	return rc;
}
