/* test_store_file.c - store_file_inspect(), what `cfhookd --check` says
 * about a database, against real files: a path to create, an empty file,
 * cfhookd databases at older, equal and newer schema versions, somebody
 * else's SQLite database, a file that is not SQLite, a missing directory
 * and (as root) an immutable file. It never creates or changes a file. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "check.h"
#include "store.h"
#include "store_file.h"
#include "storetest.h"

/* Entries in the test directory, with their sizes and times: "nothing
 * created or changed" is this staying the same. */
static long
dir_print(void)
{
	struct dirent *de;
	struct stat sb;
	char p[320];
	long sum = 0;
	DIR *d;

	d = opendir(storetest_dir);
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		(void)snprintf(p, sizeof(p), "%s/%s", storetest_dir,
		    de->d_name);
		if (stat(p, &sb) == 0)
			sum += (long)sb.st_ino * 31 + (long)sb.st_size * 7 +
			    (long)sb.st_mtime + (long)sb.st_mtim.tv_nsec;
	}
	(void)closedir(d);
	return sum;
}

static int
inspect(const char *path, int64_t max, char *note, size_t n)
{
	long before = dir_print();
	int rc;

	note[0] = '\0';
	rc = store_file_inspect(path, max, note, n);
	CHECK_INT(dir_print(), before);
	return rc;
}

static void
set_version(const char *path, int v)
{
	char sql[48];
	sqlite3 *db = peek_open(path);

	(void)snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v);
	CHECK_INT(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	CHECK_INT(sqlite3_wal_checkpoint_v2(db, NULL,
	    SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL), SQLITE_OK);
	(void)sqlite3_close(db);
}

static void
test_missing_and_empty(void)
{
	char path[128], bad[200], note[64];
	int fd;

	new_path(path, sizeof(path));
	CHECK_INT(inspect(path, STORE_SCHEMA_VERSION, note, sizeof(note)), 0);
	CHECK_STR(note, "to be created");
	CHECK_INT(access(path, F_OK), -1);
	(void)snprintf(bad, sizeof(bad), "%s/no-such-dir/events.db",
	    storetest_dir);
	CHECK_INT(inspect(bad, STORE_SCHEMA_VERSION, note, sizeof(note)), -1);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (CHECK(fd >= 0))
		(void)close(fd);
	CHECK_INT(inspect(path, STORE_SCHEMA_VERSION, note, sizeof(note)), 0);
	CHECK_STR(note, "empty, schema to be created");
}

static void
test_versions(void)
{
	char path[128], note[64], want[64];
	struct store *st;

	st = open_new(path, sizeof(path), DURABILITY_FULL);
	if (st == NULL)
		return;
	store_close(st);	/* checkpointed: the header is current */
	CHECK_INT(inspect(path, STORE_SCHEMA_VERSION, note, sizeof(note)), 0);
	(void)snprintf(want, sizeof(want), "schema version %d",
	    STORE_SCHEMA_VERSION);
	CHECK_STR(note, want);
	CHECK_INT(inspect(path, 1, note, sizeof(note)), -1);	/* newer */
	set_version(path, 1);
	CHECK_INT(inspect(path, STORE_SCHEMA_VERSION, note, sizeof(note)), 0);
	(void)snprintf(want, sizeof(want), "schema version 1, to be upgraded "
	    "to %d", STORE_SCHEMA_VERSION);
	CHECK_STR(note, want);
	set_version(path, -5);
	CHECK_INT(inspect(path, STORE_SCHEMA_VERSION, note, sizeof(note)), -1);
}

static void
test_not_ours(void)
{
	char path[128], text[128], note[64];
	sqlite3 *db;
	FILE *fp;

	CHECK_INT(sqlite3_open(new_path(path, sizeof(path)), &db), SQLITE_OK);
	CHECK_INT(sqlite3_exec(db, "CREATE TABLE mine (x)", NULL, NULL, NULL),
	    SQLITE_OK);
	(void)sqlite3_close(db);
	CHECK_INT(inspect(path, STORE_SCHEMA_VERSION, note, sizeof(note)), -1);
	fp = fopen(new_path(text, sizeof(text)), "we");
	if (CHECK(fp != NULL)) {
		fputs("key = value\nnot a database at all, but long enough to "
		    "fill a header of one hundred and eight bytes, yes.\n", fp);
		(void)fclose(fp);
	}
	CHECK_INT(inspect(text, STORE_SCHEMA_VERSION, note, sizeof(note)), -1);
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

/* Not writable: the database or a file beside it (root only: the
 * immutable flag stops root too; skipped with a note otherwise). */
static void
test_unwritable(void)
{
	char path[128], wal[160], note[64];
	struct store *st;

	st = open_new(path, sizeof(path), DURABILITY_FULL);
	if (st == NULL)
		return;
	store_close(st);
	(void)snprintf(wal, sizeof(wal), "%s-wal", path);
	if (set_immutable(path, 1) == -1) {
		fprintf(stderr, "test_store_file: skipped the unwritable cases "
		    "(chattr: %s)\n", strerror(errno));
		return;
	}
	CHECK_INT(inspect(path, STORE_SCHEMA_VERSION, note, sizeof(note)), -1);
	CHECK_INT(set_immutable(path, 0), 0);
	CHECK_INT(set_immutable(wal, 1), 0);
	CHECK_INT(inspect(path, STORE_SCHEMA_VERSION, note, sizeof(note)), -1);
	CHECK_INT(set_immutable(wal, 0), 0);
	CHECK_INT(inspect(path, STORE_SCHEMA_VERSION, note, sizeof(note)), 0);
}

int
main(void)
{
	int rc;

	if (storetest_init() == -1)
		return 1;
	RUN(test_missing_and_empty);
	RUN(test_versions);
	RUN(test_not_ours);
	RUN(test_unwritable);
	rc = check_finish("test_store_file");
	storetest_cleanup();
	return rc;
}
