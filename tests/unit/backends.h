/* backends.h - run the store's contract tests against both backends: an
 * SQLite file in a mkdtemp directory, and a fresh PostgreSQL database per
 * test on the server $CFHOOK_TEST_PG names (a URI of its maintenance
 * database; tests/run starts one with tests/pg-server). Without it the
 * PostgreSQL pass is skipped, saying so. A test opens the database the
 * store is tested on through the store API, and looks at it, or stands in
 * for another process, with plain SQL on a connection of its own
 * (tdb_exec(), tdb_int()): SQL both engines run alike. Include after
 * check.h. */
#ifndef CFHOOK_BACKENDS_H
#define CFHOOK_BACKENDS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "tmpdir.h"

/* The backend of the pass under way: 0 SQLite, 1 PostgreSQL. */
static int backend_pg;
static int backend_seq;

struct tdb {
	int	 pg;
	char	 dir[64];		/* SQLite: the temp dir */
	char	 name[64];		/* PostgreSQL: the database */
	char	 database[1024];	/* what store_open() takes */
	sqlite3	*lite;			/* the test's own connection */
	PGconn	*conn;
};

static inline const char *
backend_name(void)
{
	return backend_pg ? "postgresql" : "sqlite";
}

/* One statement on the server's maintenance database. 0 / -1. */
static inline int
backend_admin(const char *sql)
{
	const char *base = getenv("CFHOOK_TEST_PG");
	PGconn *c;
	PGresult *r;
	int ok;

	if (base == NULL)
		return -1;
	c = PQconnectdb(base);
	r = PQexec(c, sql);
	ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		fprintf(stderr, "backends: %s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	return ok ? 0 : -1;
}

/* A fresh database of the pass's backend; 0 / -1. */
static inline int
tdb_create(struct tdb *d)
{
	const char *base = getenv("CFHOOK_TEST_PG");
	char sql[128];

	memset(d, 0, sizeof(*d));
	d->pg = backend_pg;
	if (!d->pg) {
		(void)snprintf(d->dir, sizeof(d->dir), "/tmp/cfhook-be.XXXXXX");
		if (mkdtemp(d->dir) == NULL)
			return -1;
		(void)snprintf(d->database, sizeof(d->database),
		    "%s/events.db", d->dir);
		return 0;
	}
	(void)snprintf(d->name, sizeof(d->name), "cfhtest_%ld_%d",
	    (long)getpid(), ++backend_seq);
	(void)snprintf(sql, sizeof(sql), "CREATE DATABASE %s", d->name);
	if (base == NULL || backend_admin(sql) == -1)
		return -1;
	(void)snprintf(d->database, sizeof(d->database), "%s%sdbname=%s", base,
	    strchr(base, '?') != NULL ? "&" : "?", d->name);
	return 0;
}

/* The test's own connection, opened at first use (after the store made
 * the schema). */
static inline int
tdb_connect(struct tdb *d)
{
	if (d->pg && d->conn == NULL) {
		d->conn = PQconnectdb(d->database);
		if (PQstatus(d->conn) != CONNECTION_OK) {
			fprintf(stderr, "backends: %s", PQerrorMessage(d->conn));
			return -1;
		}
	}
	if (!d->pg && d->lite == NULL) {
		if (sqlite3_open_v2(d->database, &d->lite,
		    SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
			return -1;
		(void)sqlite3_busy_timeout(d->lite, 5000);
	}
	return 0;
}

/* Run SQL that returns no rows; a failure fails the test. */
static inline void
tdb_exec(struct tdb *d, const char *sql)
{
	PGresult *r;
	char *err = NULL;

	if (!CHECK(tdb_connect(d) == 0))
		return;
	if (d->pg) {
		r = PQexec(d->conn, sql);
		if (PQresultStatus(r) != PGRES_COMMAND_OK &&
		    PQresultStatus(r) != PGRES_TUPLES_OK) {
			fprintf(stderr, "sql: %s: %s", sql,
			    PQerrorMessage(d->conn));
			(void)CHECK(0);
		}
		PQclear(r);
		return;
	}
	if (sqlite3_exec(d->lite, sql, NULL, NULL, &err) != SQLITE_OK) {
		fprintf(stderr, "sql: %s: %s\n", sql, err);
		(void)CHECK(0);
	}
	sqlite3_free(err);
}

/* The first column of the first row as text into buf ("(null)", "(no
 * row)"). */
static inline const char *
tdb_text(struct tdb *d, const char *sql, char *buf, size_t n)
{
	sqlite3_stmt *s = NULL;
	const unsigned char *t;
	PGresult *r;

	(void)snprintf(buf, n, "(no row)");
	if (tdb_connect(d) == -1)
		return buf;
	if (d->pg) {
		r = PQexec(d->conn, sql);
		if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
			(void)snprintf(buf, n, "%s", PQgetisnull(r, 0, 0) ?
			    "(null)" : PQgetvalue(r, 0, 0));
		else if (PQresultStatus(r) != PGRES_TUPLES_OK)
			fprintf(stderr, "sql: %s: %s", sql,
			    PQerrorMessage(d->conn));
		PQclear(r);
		return buf;
	}
	if (sqlite3_prepare_v2(d->lite, sql, -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW) {
		t = sqlite3_column_text(s, 0);
		(void)snprintf(buf, n, "%s", t == NULL ? "(null)" :
		    (const char *)t);
	}
	(void)sqlite3_finalize(s);
	return buf;
}

/* The first column as an integer; -999 when there is no row. */
static inline int64_t
tdb_int(struct tdb *d, const char *sql)
{
	char buf[64];

	tdb_text(d, sql, buf, sizeof(buf));
	if (buf[0] == '(')
		return -999;
	return strtoll(buf, NULL, 10);
}

static inline void
tdb_drop(struct tdb *d)
{
	char sql[128];

	if (d->lite != NULL)
		(void)sqlite3_close(d->lite);
	if (d->conn != NULL)
		PQfinish(d->conn);
	d->lite = NULL;
	d->conn = NULL;
	if (!d->pg && d->dir[0] != '\0')
		tmpdir_remove(d->dir);
	if (d->pg && d->name[0] != '\0') {
		(void)snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s "
		    "WITH (FORCE)", d->name);
		(void)backend_admin(sql);
	}
	memset(d, 0, sizeof(*d));
}

/* Run every test of the suite once per backend. `ntests` counts those
 * skipped when no PostgreSQL server is given. */
static inline void
backends_run(void (*suite)(void), int ntests)
{
	backend_pg = 0;
	suite();
	if (getenv("CFHOOK_TEST_PG") == NULL) {
		check_skip(ntests, "PostgreSQL pass: CFHOOK_TEST_PG is not set "
		    "(tests/run starts a server with tests/pg-server)");
		return;
	}
	printf("== the same tests on PostgreSQL\n");
	backend_pg = 1;
	suite();
	backend_pg = 0;
}

#endif
