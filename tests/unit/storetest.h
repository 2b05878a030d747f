/* storetest.h - fixtures shared by test_store.c, test_store_fail.c and
 * test_writer.c: a mkdtemp directory of database files, a second SQLite
 * connection to look at them, and hand-built events. Include after check.h.
 */
#ifndef CFHOOK_STORETEST_H
#define CFHOOK_STORETEST_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store.h"
#include "store_int.h"

static char storetest_dir[] = "/tmp/cfhook-test.XXXXXX";
static int storetest_seq;

/* Make the directory; 0 / -1. */
static inline int
storetest_init(void)
{
	if (mkdtemp(storetest_dir) == NULL) {
		perror("mkdtemp");
		return -1;
	}
	return 0;
}

/* A fresh database path in the test directory. */
static inline const char *
new_path(char *buf, size_t size)
{
	(void)snprintf(buf, size, "%s/db%d.sqlite", storetest_dir,
	    ++storetest_seq);
	return buf;
}

static inline struct store *
open_new(char *path, size_t size, enum durability d)
{
	struct store *st = NULL;

	CHECK_INT(store_open(new_path(path, size), STORE_WRITE, d, &st), 0);
	return st;
}

/* A second, independent connection, as cfhookctl or sqlite3 would be. */
static inline sqlite3 *
peek_open(const char *path)
{
	sqlite3 *db = NULL;

	CHECK_INT(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL),
	    SQLITE_OK);
	(void)sqlite3_busy_timeout(db, 5000);
	return db;
}

/* First column of `sql` (with ?1 bound to `arg` when non-NULL) as int;
 * -999 when there is no row. */
static inline int64_t
q_int(sqlite3 *db, const char *sql, const char *arg)
{
	sqlite3_stmt *s = NULL;
	int64_t v = -999;

	if (!CHECK_INT(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK))
		return v;
	if (arg != NULL)
		(void)sqlite3_bind_text(s, 1, arg, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	(void)sqlite3_finalize(s);
	return v;
}

/* First column of `sql` as text into buf ("(null)" for NULL). */
static inline const char *
q_text(sqlite3 *db, const char *sql, const char *arg, char *buf, size_t size)
{
	sqlite3_stmt *s = NULL;
	const unsigned char *t;

	(void)snprintf(buf, size, "(no row)");
	if (!CHECK_INT(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK))
		return buf;
	if (arg != NULL)
		(void)sqlite3_bind_text(s, 1, arg, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(s) == SQLITE_ROW) {
		t = sqlite3_column_text(s, 0);
		(void)snprintf(buf, size, "%s",
		    t == NULL ? "(null)" : (const char *)t);
	}
	(void)sqlite3_finalize(s);
	return buf;
}

static inline void
ev_init(struct event *ev, const char *key, const char *type)
{
	memset(ev, 0, sizeof(*ev));
	ev->event_key = (char *)(uintptr_t)key;
	ev->type = (char *)(uintptr_t)type;
}

static inline void
item_init(struct store_item *it, const struct event *ev, const char *body,
    size_t len, int64_t ms)
{
	memset(it, 0, sizeof(*it));
	it->ev = ev;
	it->body = body;
	it->body_len = len;
	it->content_type = "application/json";
	it->received_ms = ms;
	it->result = (enum store_result)-1;
	it->id = -1;
}

/* Record one item alone; returns its result. */
static inline enum store_result
record1(struct store *st, const char *key, int64_t ms, int fwd)
{
	struct event ev;
	struct store_item it, *p = &it;

	ev_init(&ev, key, "PAYMENT_SUCCESS_WEBHOOK");
	item_init(&it, &ev, "{}", 2, ms);
	(void)store_record_batch(st, &p, 1, fwd);
	return it.result;
}

/* Remove the directory and the files in it. */
static inline void
storetest_cleanup(void)
{
	struct dirent *de;
	char p[320];
	DIR *d;

	d = opendir(storetest_dir);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		(void)snprintf(p, sizeof(p), "%s/%s", storetest_dir,
		    de->d_name);
		(void)unlink(p);
	}
	(void)closedir(d);
	(void)rmdir(storetest_dir);
}

#endif
