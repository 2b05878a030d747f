/* store_pg_conn.c - the PostgreSQL backend's connection: connecting within
 * a deadline (the password from the URI, systemd's credential or libpq's
 * own passfile), the session settings, and running a statement without
 * ever waiting past the store's deadline (store_pg.h).
 *
 * libpq is used in non-blocking mode: every send is flushed and every
 * answer awaited with poll() on its socket until the deadline, so a server
 * that stops answering (or a network that drops packets) costs a batch its
 * deadline, never more. A connection that overran it is closed: its state
 * is unknown, and the server rolls back what it held (it notices the
 * closed socket within client_connection_check_interval).
 *
 * Must not: log a password or the URI unmasked, block without a deadline,
 * or keep a result past the call that made it. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "buf.h"
#include "clock.h"
#include "log.h"
#include "store_pg.h"
#include "utf8.h"

/* systemd's LoadCredential= name for the database password. */
#define CREDENTIAL		"database-password"
#define PASSWORD_MAX		4096
/* The server's own bound on a session idle inside a transaction, and how
 * often it checks that the client is still there during a statement: a
 * daemon that died mid-transaction never holds locks for long. */
#define SESSION_SETUP \
	"SET idle_in_transaction_session_timeout = '60s';" \
	"SET client_connection_check_interval = '1s';"
/* durability full: a commit waits for its WAL flush, unless the server is
 * set to something stronger still (remote_write, remote_apply). */
#define SYNC_FULL "SELECT set_config('synchronous_commit', CASE WHEN" \
	" current_setting('synchronous_commit') = 'off' THEN 'on' ELSE" \
	" current_setting('synchronous_commit') END, false);"
#define SYNC_NORMAL "SET synchronous_commit = off;"

int64_t
pg_deadline(const struct pg_store *st)
{
	if (st->deadline_ms != 0)
		return st->deadline_ms;
	return clock_mono_ms() + STORE_BUSY_TIMEOUT_MS;
}

/* The first line of a libpq message, into st->err. */
static void
set_err(struct pg_store *st, const char *msg, const char *sqlstate)
{
	size_t n;

	if (msg == NULL || msg[0] == '\0')
		msg = "unknown error";
	n = strcspn(msg, "\n");
	if (n >= sizeof(st->err))
		n = sizeof(st->err) - 1;
	memcpy(st->err, msg, n);
	st->err[n] = '\0';
	(void)snprintf(st->sqlstate, sizeof(st->sqlstate), "%s",
	    sqlstate != NULL ? sqlstate : "");
}

void
pg_log_error(const struct pg_store *st, const char *what)
{
	log_error("store: '%s': %s: %s", st->base.name, what, st->err);
}

void
pg_drop(struct pg_store *st)
{
	if (st->conn != NULL)
		PQfinish(st->conn);
	st->conn = NULL;
	st->nprepared = 0;
}

/* SQLSTATE classes and codes to the short phrases /healthz shows. */
static const char *
phrase(const char *code)
{
	static const struct {
		const char *code;	/* a full code, or a class ("08") */
		const char *what;
	} map[] = {
		{ "53100", "disk full" },
		{ "53200", "out of memory" },
		{ "53300", "too many connections" },
		{ "55P03", "locked by another connection" },
		{ "40P01", "locked by another connection (deadlock)" },
		{ "40001", "locked by another connection" },
		{ "57014", "timed out" },
		{ "25006", "read-only" },
		{ "42501", "permission denied" },
		{ "28", "permission denied" },
		{ "57P", "server shutting down" },
		{ "08", "unreachable" },
		{ "58", "I/O error" },
		{ "XX", "corrupt" },
	};
	size_t i;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (strncmp(code, map[i].code, strlen(map[i].code)) == 0)
			return map[i].what;
	}
	return "write failed";
}

void
pg_note_fault(struct pg_store *st)
{
	if (st->sqlstate[0] != '\0')
		store_set_fault(&st->base, phrase(st->sqlstate));
	else if (strncmp(st->err, "timed out", 9) == 0)
		store_set_fault(&st->base, "timed out");
	else
		store_set_fault(&st->base, "unreachable");
}

/* Wait for the socket until the deadline: 1 ready, 0 timed out, -1 error. */
static int
wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd p = { fd, events, 0 };
	int64_t left;
	int r;

	for (;;) {
		left = deadline - clock_mono_ms();
		if (left <= 0)
			return 0;
		r = poll(&p, 1, (int)(left > 60000 ? 60000 : left));
		if (r > 0)
			return 1;
		if (r == -1 && errno != EINTR)
			return -1;
	}
}

/* The password systemd handed us, when the URI has none: read whole,
 * without its final newline. NULL when there is none. The caller wipes
 * and frees it. */
static char *
credential_password(const char *uri)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	char path[4096], *pw = NULL;
	ssize_t n;
	int fd;

	if (dir == NULL || dir[0] == '\0' || store_pg_uri_has_password(uri))
		return NULL;
	(void)snprintf(path, sizeof(path), "%s/%s", dir, CREDENTIAL);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return NULL;
	pw = calloc(1, PASSWORD_MAX + 1);
	if (pw != NULL) {
		n = read(fd, pw, PASSWORD_MAX);
		if (n < 0)
			n = 0;
		while (n > 0 && (pw[n - 1] == '\n' || pw[n - 1] == '\r'))
			n--;
		pw[n] = '\0';
	}
	(void)close(fd);
	return pw;
}

static void
wipe_free(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

/* libpq's asynchronous connect, polled until the deadline. */
static PGconn *
connect_until(struct pg_store *st, int64_t deadline)
{
	const char *keys[6], *vals[6];
	PostgresPollingStatusType ps = PGRES_POLLING_WRITING;
	char *password = credential_password(st->uri);
	PGconn *conn;
	int k = 0, r;

	/* Before dbname: defaults the URI may override. */
	keys[k] = "application_name";
	vals[k++] = "cfhookd";
	keys[k] = "connect_timeout";	/* a bound of libpq's own too */
	vals[k++] = "5";
	if (password != NULL) {
		keys[k] = "password";
		vals[k++] = password;
	}
	keys[k] = "dbname";
	vals[k++] = st->uri;
	/* After it: what holds whatever the URI says. */
	keys[k] = "client_encoding";
	vals[k++] = "UTF8";
	keys[k] = NULL;
	vals[k] = NULL;
	conn = PQconnectStartParams(keys, vals, 1);
	wipe_free(password);
	if (conn == NULL) {
		set_err(st, "out of memory", NULL);
		return NULL;
	}
	while (PQstatus(conn) != CONNECTION_BAD && ps != PGRES_POLLING_OK &&
	    ps != PGRES_POLLING_FAILED) {
		r = wait_fd(PQsocket(conn), ps == PGRES_POLLING_READING ?
		    POLLIN : POLLOUT, deadline);
		if (r <= 0) {
			set_err(st, r == 0 ? "timed out connecting" :
			    strerror(errno), NULL);
			PQfinish(conn);
			return NULL;
		}
		ps = PQconnectPoll(conn);
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		set_err(st, PQerrorMessage(conn), NULL);
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

/* The session: bounded idle transactions, the durability, read-only for
 * STORE_READONLY; and a server whose text is UTF-8. */
static int
session_setup(struct pg_store *st)
{
	const char *enc = PQparameterStatus(st->conn, "server_encoding");
	struct buf b;
	char *sql;
	int rc, bad = 0;

	if (enc == NULL || strcmp(enc, "UTF8") != 0) {
		(void)snprintf(st->err, sizeof(st->err), "the database's "
		    "encoding is %s, not UTF8 (CREATE DATABASE ... ENCODING "
		    "'UTF8')", enc != NULL ? enc : "unknown");
		st->sqlstate[0] = '\0';
		return -1;
	}
	buf_init(&b, 1024);
	if (PQserverVersion(st->conn) >= 140000)
		bad |= buf_puts(&b, SESSION_SETUP);
	bad |= buf_puts(&b, st->base.durability == DURABILITY_FULL ?
	    SYNC_FULL : SYNC_NORMAL);
	if (st->base.mode == STORE_READONLY)
		bad |= buf_puts(&b, "SET default_transaction_read_only = on;");
	sql = buf_take(&b, NULL);
	if (bad || sql == NULL) {
		free(sql);
		set_err(st, "out of memory", NULL);
		return -1;
	}
	rc = pg_cmd(st, sql);
	free(sql);
	return rc;
}

int
pg_ready(struct pg_store *st)
{
	int64_t now = clock_mono_ms();

	if (st->conn != NULL && PQstatus(st->conn) == CONNECTION_OK)
		return 0;
	pg_drop(st);
	if (now < st->next_connect_ms) {
		/* Keep the reason of the attempt that failed. */
		pg_note_fault(st);
		return -1;
	}
	st->next_connect_ms = now + PG_RECONNECT_MS;
	st->conn = connect_until(st, pg_deadline(st));
	if (st->conn != NULL && (PQsetnonblocking(st->conn, 1) != 0 ||
	    session_setup(st) == -1))
		pg_drop(st);
	if (st->conn == NULL) {
		pg_note_fault(st);
		return -1;
	}
	return 0;
}

/* Send what libpq holds, reading meanwhile (the server may be answering).
 * 0 / -1 (st->err set). */
static int
flush_until(struct pg_store *st, int64_t deadline)
{
	int f, r;

	while ((f = PQflush(st->conn)) == 1) {
		r = wait_fd(PQsocket(st->conn), POLLIN | POLLOUT, deadline);
		if (r <= 0) {
			set_err(st, r == 0 ? "timed out sending" :
			    strerror(errno), NULL);
			return -1;
		}
		if (PQconsumeInput(st->conn) == 0) {
			set_err(st, PQerrorMessage(st->conn), NULL);
			return -1;
		}
	}
	if (f == -1) {
		set_err(st, PQerrorMessage(st->conn), NULL);
		return -1;
	}
	return 0;
}

/* Every result of what was sent; the first failed one (else the last) is
 * returned, the rest cleared. NULL when the connection failed (st->err). */
static PGresult *
collect(struct pg_store *st, int64_t deadline)
{
	PGresult *res, *keep = NULL;
	int r;

	for (;;) {
		while (PQisBusy(st->conn)) {
			r = wait_fd(PQsocket(st->conn), POLLIN, deadline);
			if (r <= 0 || PQconsumeInput(st->conn) == 0) {
				set_err(st, r == 0 ? "timed out waiting for "
				    "the server" : PQerrorMessage(st->conn),
				    NULL);
				PQclear(keep);
				return NULL;
			}
		}
		res = PQgetResult(st->conn);
		if (res == NULL)
			return keep;
		if (PQresultStatus(res) == PGRES_COPY_IN) {
			/* The server waits for the data: libpq would
			 * hand out this result again and again. */
			PQclear(keep);
			return res;
		}
		if (keep != NULL && (PQresultStatus(keep) ==
		    PGRES_COMMAND_OK || PQresultStatus(keep) ==
		    PGRES_TUPLES_OK)) {
			PQclear(keep);
			keep = NULL;
		}
		if (keep == NULL)
			keep = res;
		else
			PQclear(res);
	}
}

/* The answer to what was just sent: a result that succeeded, or NULL with
 * st->err (and the connection dropped when it is no longer usable). */
static PGresult *
finish(struct pg_store *st, int sent)
{
	int64_t deadline = pg_deadline(st);
	PGresult *res;
	ExecStatusType s;

	if (!sent) {
		set_err(st, PQerrorMessage(st->conn), NULL);
		pg_drop(st);
		return NULL;
	}
	if (flush_until(st, deadline) == -1 ||
	    (res = collect(st, deadline)) == NULL) {
		pg_drop(st);	/* overran the deadline, or broke */
		return NULL;
	}
	s = PQresultStatus(res);
	if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK ||
	    s == PGRES_COPY_IN)
		return res;
	set_err(st, PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) != NULL ?
	    PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) :
	    PQresultErrorMessage(res),
	    PQresultErrorField(res, PG_DIAG_SQLSTATE));
	PQclear(res);
	if (PQstatus(st->conn) != CONNECTION_OK)
		pg_drop(st);
	return NULL;
}

int
pg_cmd(struct pg_store *st, const char *sql)
{
	PGresult *res;

	if (st->conn == NULL) {
		set_err(st, "not connected", NULL);
		return -1;
	}
	res = finish(st, PQsendQuery(st->conn, sql));
	PQclear(res);
	return res == NULL ? -1 : 0;
}

/* Prepared on this connection already, or now. 1 prepared, 0 not (the
 * cache is full: run it unnamed), -1 failed. */
static int
prepare(struct pg_store *st, const struct pg_stmt *s)
{
	PGresult *res;
	size_t i;

	for (i = 0; i < st->nprepared; i++) {
		if (st->prepared[i] == s)
			return 1;
	}
	if (st->nprepared == PG_MAX_PREPARED)
		return 0;
	res = finish(st, PQsendPrepare(st->conn, s->name, s->sql, 0, NULL));
	if (res == NULL)
		return -1;
	PQclear(res);
	st->prepared[st->nprepared++] = s;
	return 1;
}

static int
params_ok(struct pg_store *st, const struct pg_params *p)
{
	if (st->conn == NULL) {
		set_err(st, "not connected", NULL);
		return 0;
	}
	if (p != NULL && p->bad) {
		set_err(st, "out of memory (statement parameters)", NULL);
		return 0;
	}
	return 1;
}

PGresult *
pg_run(struct pg_store *st, const struct pg_stmt *s,
    const struct pg_params *p)
{
	int r;

	if (!params_ok(st, p))
		return NULL;
	r = prepare(st, s);
	if (r == -1)
		return NULL;
	if (r == 0)
		return pg_query(st, s->sql, p);
	return finish(st, PQsendQueryPrepared(st->conn, s->name,
	    p != NULL ? p->n : 0, p != NULL ? p->v : NULL,
	    p != NULL ? p->len : NULL, p != NULL ? p->fmt : NULL, 0));
}

PGresult *
pg_query(struct pg_store *st, const char *sql, const struct pg_params *p)
{
	if (!params_ok(st, p))
		return NULL;
	return finish(st, PQsendQueryParams(st->conn, sql,
	    p != NULL ? p->n : 0, NULL, p != NULL ? p->v : NULL,
	    p != NULL ? p->len : NULL, p != NULL ? p->fmt : NULL, 0));
}

int64_t
pg_changed(const PGresult *res)
{
	/* libpq's prototype takes a non-const result it never writes. */
	const char *t = PQcmdTuples((PGresult *)(uintptr_t)res);

	return t == NULL || t[0] == '\0' ? 0 : strtoll(t, NULL, 10);
}

int
pg_commit(struct pg_store *st)
{
	PGresult *res = pg_query(st, "COMMIT", NULL);
	int ok;

	if (res == NULL)
		return -1;
	ok = strcmp(PQcmdStatus(res), "COMMIT") == 0;
	PQclear(res);
	if (!ok) {
		(void)snprintf(st->err, sizeof(st->err), "the transaction was "
		    "rolled back");
		st->sqlstate[0] = '\0';
	}
	return ok ? 0 : -1;
}

void
pg_rollback(struct pg_store *st)
{
	if (st->conn == NULL ||
	    PQtransactionStatus(st->conn) == PQTRANS_IDLE)
		return;
	if (pg_cmd(st, "ROLLBACK") == -1)
		pg_drop(st);
}

void
pg_params_init(struct pg_params *p)
{
	memset(p, 0, sizeof(*p));
}

void
pg_params_done(struct pg_params *p)
{
	int i;

	for (i = 0; i < p->n; i++)
		free(p->owned[i]);
	memset(p, 0, sizeof(*p));
}

/* The next slot, or -1 (p->bad) when there is none. */
static int
slot(struct pg_params *p)
{
	if (p->n == PG_MAX_PARAMS) {
		p->bad = 1;
		return -1;
	}
	p->v[p->n] = NULL;
	p->len[p->n] = 0;
	p->fmt[p->n] = 0;
	p->owned[p->n] = NULL;
	return p->n++;
}

/* s with every byte that is not part of well-formed UTF-8 (and NUL cannot
 * occur in a C string) as \xNN. NULL on no memory. */
static char *
escape_utf8(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n = strlen(s), i = 0, w = 0, l;
	char *out = malloc(n * 4 + 1);

	if (out == NULL)
		return NULL;
	while (i < n) {
		l = utf8_seq(u + i, n - i);
		if (l == 0) {
			(void)snprintf(out + w, 5, "\\x%02x", u[i]);
			w += 4;
			i++;
			continue;
		}
		memcpy(out + w, s + i, l);
		w += l;
		i += l;
	}
	out[w] = '\0';
	return out;
}

void
pg_p_text(struct pg_params *p, const char *s)
{
	int i = slot(p);

	if (i == -1 || s == NULL)
		return;
	if (utf8_text(s, strlen(s))) {
		p->v[i] = s;
		return;
	}
	p->owned[i] = escape_utf8(s);
	p->v[i] = p->owned[i];
	if (p->owned[i] == NULL)
		p->bad = 1;
}

void
pg_p_int(struct pg_params *p, int64_t v)
{
	int i = slot(p);

	if (i == -1)
		return;
	(void)snprintf(p->num[i], sizeof(p->num[i]), "%" PRId64, v);
	p->v[i] = p->num[i];
}

void
pg_p_bytes(struct pg_params *p, const char *b, size_t n)
{
	int i = slot(p);

	if (i == -1)
		return;
	if (n > (size_t)INT32_MAX) {
		p->bad = 1;
		return;
	}
	p->v[i] = b != NULL ? b : "";	/* NULL would bind SQL NULL */
	p->len[i] = (int)n;
	p->fmt[i] = 1;
}

int
pg_col_copy(const PGresult *res, int row, int col, char **ret, size_t *len)
{
	const char *v;
	unsigned char *raw = NULL;
	size_t n;
	char *c;

	*ret = NULL;
	if (len != NULL)
		*len = 0;
	if (PQgetisnull(res, row, col))
		return 0;
	v = PQgetvalue(res, row, col);
	n = (size_t)PQgetlength(res, row, col);
	if (PQftype(res, col) == 17) {		/* BYTEAOID: "\x..." text */
		raw = PQunescapeBytea((const unsigned char *)v, &n);
		if (raw == NULL)
			return -1;
		v = (const char *)raw;
	}
	c = malloc(n + 1);
	if (c != NULL) {
		if (n > 0)
			memcpy(c, v, n);
		c[n] = '\0';
	}
	if (raw != NULL)
		PQfreemem(raw);
	if (c == NULL)
		return -1;
	*ret = c;
	if (len != NULL)
		*len = n;
	return 0;
}

int64_t
pg_col_int(const PGresult *res, int row, int col, int64_t null_value)
{
	if (PQgetisnull(res, row, col))
		return null_value;
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* FNV-1a, 64 bits, over "kind" NUL "name": cheap, and spread well enough
 * that two names sharing a lock (which only makes them wait in turn) is
 * rare. */
int64_t
pg_lock_key(const char *kind, const char *name)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	const unsigned char *p;

	for (p = (const unsigned char *)kind; *p != '\0'; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	h = (h ^ 0) * 0x100000001b3ULL;
	for (p = (const unsigned char *)name; *p != '\0'; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	return (int64_t)h;
}

static int
cmp_key(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static const struct pg_stmt LOCK_KEYS = { "cfh_lock_keys",
	"SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k" };

int
pg_lock_keys(struct pg_store *st, int64_t *keys, size_t n)
{
	struct pg_params p;
	struct buf b;
	PGresult *res;
	char num[24], *arr;
	size_t i;
	int bad = 0;

	if (n == 0)
		return 0;
	qsort(keys, n, sizeof(*keys), cmp_key);
	buf_init(&b, n * 22 + 3);
	bad |= buf_puts(&b, "{");
	for (i = 0; i < n; i++) {
		if (i > 0 && keys[i] == keys[i - 1])
			continue;
		(void)snprintf(num, sizeof(num), "%s%" PRId64,
		    b.len > 1 ? "," : "", keys[i]);
		bad |= buf_puts(&b, num);
	}
	bad |= buf_puts(&b, "}");
	arr = buf_take(&b, NULL);
	if (bad || arr == NULL) {
		free(arr);
		set_err(st, "out of memory", NULL);
		return -1;
	}
	pg_params_init(&p);
	pg_p_text(&p, arr);
	res = pg_run(st, &LOCK_KEYS, &p);
	pg_params_done(&p);
	free(arr);
	PQclear(res);
	return res == NULL ? -1 : 0;
}

/* Hand one chunk of COPY data to libpq, waiting (within the deadline) while
 * its buffer is full. 0 / -1 (st->err). */
static int
put_copy(struct pg_store *st, const char *data, size_t len)
{
	int64_t deadline = pg_deadline(st);
	int r;

	while ((r = PQputCopyData(st->conn, data, (int)len)) == 0) {
		if (wait_fd(PQsocket(st->conn), POLLOUT, deadline) <= 0 ||
		    PQconsumeInput(st->conn) == 0) {
			set_err(st, "timed out sending COPY data", NULL);
			return -1;
		}
	}
	if (r == -1) {
		set_err(st, PQerrorMessage(st->conn), NULL);
		return -1;
	}
	return flush_until(st, deadline);
}

int
pg_copy_in(struct pg_store *st, const char *sql,
    int (*next)(void *arg, struct buf *out), void *arg)
{
	PGresult *res;
	struct buf b;
	int r, rc = -1;

	res = pg_query(st, sql, NULL);
	if (res == NULL)
		return -1;
	PQclear(res);
	for (;;) {
		buf_init(&b, PG_COPY_CHUNK * 2);
		r = next(arg, &b);
		if (r == 1 && b.len > 0)
			r = put_copy(st, b.data, b.len) == 0 ? 1 : -1;
		buf_done(&b);
		if (r != 1)
			break;
	}
	if (st->conn == NULL)
		return -1;
	/* An error message in the end makes the server refuse what it got. */
	if (PQputCopyEnd(st->conn, r == 0 ? NULL : "cfhookd: copy aborted")
	    == -1) {
		set_err(st, PQerrorMessage(st->conn), NULL);
		pg_drop(st);
		return -1;
	}
	res = finish(st, 1);
	if (res != NULL && r == 0)
		rc = 0;
	PQclear(res);
	return rc;
}
