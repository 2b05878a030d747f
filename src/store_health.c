/* store_health.c - keeping a writing SQLite store honest (DESIGN
 * "Database"): its files checked against its path, deliberate checkpoints
 * paced by the WAL's growth and the space left (store_maintain()), a probe
 * that commits a row, and the connection settings they rely on.
 *
 * Why deliberate checkpoints: SQLite's own run inside a COMMIT, at 1000
 * frames, and their errors are dropped. On a full disk a WAL that large can
 * never be checkpointed again (the database would have to grow by most of
 * it first), so the WAL can never restart and every commit fails even after
 * some space comes back. Checkpointing small and often, and TRUNCATE after a
 * failure, keeps what a checkpoint needs small and gives the WAL's space
 * back as soon as it succeeds.
 *
 * Must not: log above debug (the writer knows whether a failure is news),
 * except when checkpoints start or stop failing, or be called from a thread
 * that does not own the store. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "store_health.h"
#include "store_int.h"

/* Hand-over between the connections of this process (the writer and the
 * forwarder): SQLite can only sleep while another connection holds the
 * write lock, in steps that overshoot the holder's few milliseconds (a
 * step of 5 ms for a lock freed after 1), which showed as intake p99 while
 * the forwarder was busy. So every write transaction here ends with
 * store_write_ended(), and a busy wait sleeps on a condition variable that
 * it broadcasts: the waiter retries as soon as the lock is free. A lock
 * held by another process (cfhookctl) still ends a step by its timeout.
 * While intake writes (store_write_recent), the forwarder writes a round
 * in two transactions; between them, if intake wanted the lock when the
 * first ended, the forwarder waits for intake's transaction
 * (store_write_yield): otherwise its running thread would take the lock
 * again before intake's woken one got a CPU. */
static pthread_mutex_t ended_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ended_cv;
static pthread_once_t ended_once = PTHREAD_ONCE_INIT;
static int ended_cv_ok;
static uint64_t ended_n;	/* under ended_mu */
static unsigned wanted;		/* under ended_mu: store_write_wanted() */
static int64_t wanted_ms;	/* under ended_mu: the last one's start */
/* The calling thread's last store_write_ended(): its number, and whether
 * a connection wanted the lock then (store_write_yield()). */
static _Thread_local uint64_t my_end;
static _Thread_local int my_end_wanted;

static void
ended_init(void)
{
	ended_cv_ok = clock_cond_init(&ended_cv) == 0;
}

void
store_write_ended(void)
{
	(void)pthread_once(&ended_once, ended_init);
	(void)pthread_mutex_lock(&ended_mu);
	my_end = ++ended_n;
	my_end_wanted = wanted > 0;
	if (ended_cv_ok)
		(void)pthread_cond_broadcast(&ended_cv);
	(void)pthread_mutex_unlock(&ended_mu);
}

void
store_write_wanted(int on)
{
	int64_t now = on ? clock_mono_ms() : 0;

	(void)pthread_mutex_lock(&ended_mu);
	if (on) {
		wanted++;
		wanted_ms = now;
	} else if (wanted > 0) {
		wanted--;
	}
	(void)pthread_mutex_unlock(&ended_mu);
}

int
store_write_recent(int within_ms)
{
	int64_t now = clock_mono_ms();
	int r;

	(void)pthread_mutex_lock(&ended_mu);
	r = wanted > 0 || (wanted_ms > 0 && now - wanted_ms <= within_ms);
	(void)pthread_mutex_unlock(&ended_mu);
	return r;
}

int
store_write_yield(int max_ms)
{
	int64_t until = clock_mono_ms() + max_ms;
	int waited;

	(void)pthread_once(&ended_once, ended_init);
	if (!my_end_wanted || !ended_cv_ok)
		return 0;
	my_end_wanted = 0;
	(void)pthread_mutex_lock(&ended_mu);
	while (ended_n == my_end &&
	    clock_cond_wait_until(&ended_cv, &ended_mu, until) == 0)
		;
	waited = ended_n != my_end;
	(void)pthread_mutex_unlock(&ended_mu);
	return waited;
}

/* Up to ms, less when a write transaction of this process ends; one that
 * ended since the wait's last step (w->ended) ends this one at once. */
static void
wait_step(struct store_wait *w, int first, int64_t ms)
{
	struct timespec ts;
	int64_t until = clock_mono_ms() + ms;

	(void)pthread_once(&ended_once, ended_init);
	if (!ended_cv_ok) {
		ts.tv_sec = (time_t)(ms / 1000);
		ts.tv_nsec = (long)(ms % 1000) * 1000000L;
		(void)nanosleep(&ts, NULL);
		return;
	}
	(void)pthread_mutex_lock(&ended_mu);
	if (first)
		w->ended = ended_n;
	while (ended_n == w->ended &&
	    clock_cond_wait_until(&ended_cv, &ended_mu, until) == 0)
		;
	w->ended = ended_n;
	(void)pthread_mutex_unlock(&ended_mu);
}

int
store_busy_wait(void *arg, int count)
{
	static const int step_ms[] = { 1, 2, 5, 10, 15, 20, 25, 25, 25, 50,
	    50, 100 };
	const int nsteps = (int)(sizeof(step_ms) / sizeof(step_ms[0]));
	struct store_wait *w = arg;
	int64_t now = clock_mono_ms(), end = w->deadline_ms, ms;

	/* Sleeping is the only way SQLite offers to wait for another
	 * process's lock (sqlite3_busy_timeout() sleeps too, but starts its
	 * clock again at every step). */
	if (count == 0)
		w->start_ms = now;
	if (end == 0)
		end = w->start_ms + STORE_BUSY_TIMEOUT_MS;
	if (now >= end)
		return 0;
	ms = step_ms[count < nsteps ? count : nsteps - 1];
	if (ms > end - now)
		ms = end - now;
	wait_step(w, count == 0, ms);
	return 1;
}

/* The -wal and -shm files stay when the last connection closes (the WAL
 * truncated to nothing by journal_size_limit), for two reasons: a user who
 * may only read the database still finds them (SQLite cannot create them
 * for it), and a connection whose files were deleted or replaced while open
 * never deletes, by name, the WAL and -shm of whatever database the path
 * names by then. */
int
store_wal_setup(sqlite3 *db, const char *path)
{
	sqlite3_stmt *s = NULL;
	char sql[64];
	int on = 1, rc = -1;

	if (sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &on) !=
	    SQLITE_OK) {
		log_error("store: '%s': persist WAL: %s", path,
		    sqlite3_errmsg(db));
		return -1;
	}
	(void)snprintf(sql, sizeof(sql), "PRAGMA journal_size_limit = %d",
	    STORE_JOURNAL_LIMIT);
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		rc = 0;
	else
		log_error("store: '%s': journal_size_limit: %s", path,
		    sqlite3_errmsg(db));
	(void)sqlite3_finalize(s);
	return rc;
}

void
store_fault_phrase(sqlite3 *db, char *out, size_t size)
{
	int code = sqlite3_errcode(db) & 0xff;
	const char *what;
	int sys = 0;

	switch (code) {
	case SQLITE_FULL:
		what = "disk full";
		break;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		what = "locked by another connection";
		break;
	case SQLITE_READONLY:
		what = "read-only";
		break;
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN:
		/* SQLite records errno for these two only. */
		what = code == SQLITE_IOERR ? "I/O error" : "cannot open";
		sys = sqlite3_system_errno(db);
		break;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		what = "corrupt";
		break;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		what = "permission denied";
		break;
	default:
		what = "write failed";
		break;
	}
	if (sys != 0)
		(void)snprintf(out, size, "%s (%s)", what, strerror(sys));
	else
		(void)snprintf(out, size, "%s", what);
}

/* A tick's TRUNCATE checkpoint after a failure waits this long for
 * readers: it must not hold up the next batch. */
#define TRUNCATE_WAIT_MS	250
/* How often the pacing looks at the free space again. */
#define PACE_EVERY_MS		1000

enum store_file_state
store_sqlite_check_files(struct store *st)
{
	struct store_file *f = store_files(st);
	enum store_file_state s;
	int moved = 0;

	if (f == NULL)
		return STORE_FILE_OK;
	s = store_file_check(f);
	/* SQLite's own descriptor, checked by SQLite: the same question,
	 * asked of the handle that writes. */
	if (s == STORE_FILE_OK && sqlite3_file_control(store_db(st), "main",
	    SQLITE_FCNTL_HAS_MOVED, &moved) == SQLITE_OK && moved)
		s = STORE_FILE_DB_MOVED;
	return s;
}

enum store_file_path
store_sqlite_path_state(struct store *st)
{
	struct store_file *f = store_files(st);

	return f == NULL ? STORE_PATH_GONE : store_file_path(f);
}

int64_t
store_sqlite_wal_bytes(struct store *st)
{
	struct store_file *f = store_files(st);

	return f == NULL ? -1 : store_file_wal_bytes(f);
}

int64_t
store_sqlite_free_bytes(struct store *st)
{
	struct store_file *f = store_files(st);

	return f == NULL ? -1 : store_file_free_bytes(f);
}

static void
note_fault(struct store *st)
{
	char phrase[96];

	store_fault_phrase(store_db(st), phrase, sizeof(phrase));
	store_set_fault(st, phrase);
}

enum store_ckpt
store_checkpoint(struct store *st, int truncate, int wait_ms)
{
	sqlite3 *db = store_db(st);
	int frames = -1, done = -1, rc;
	enum store_ckpt r;

	store_set_deadline(st, clock_mono_ms() + wait_ms);
	rc = sqlite3_wal_checkpoint_v2(db, NULL, truncate ?
	    SQLITE_CHECKPOINT_TRUNCATE : SQLITE_CHECKPOINT_PASSIVE, &frames,
	    &done);
	store_set_deadline(st, 0);
	if (rc == SQLITE_OK && done == frames) {
		r = STORE_CKPT_DONE;
	} else if (rc == SQLITE_OK || (rc & 0xff) == SQLITE_BUSY) {
		r = STORE_CKPT_BUSY;
		log_debug("store: '%s': checkpoint: %d of %d frames (readers "
		    "or a writer hold the rest)", store_path(st), done, frames);
	} else {
		r = STORE_CKPT_FAILED;
		note_fault(st);
		log_debug("store: '%s': checkpoint: %s", store_path(st),
		    sqlite3_errmsg(db));
	}
	metrics_store_checkpoint((int)r);
	return r;
}

static int
exec_step(sqlite3 *db, const char *sql, int64_t arg)
{
	sqlite3_stmt *s = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK &&
	    (arg == 0 || sqlite3_bind_int64(s, 1, arg) == SQLITE_OK) &&
	    sqlite3_step(s) == SQLITE_DONE)
		rc = 0;
	(void)sqlite3_finalize(s);
	return rc;
}

/* BEGIN IMMEDIATE, the row, COMMIT: a commit like a batch's, fsync
 * included, so it fails where a batch would (a full disk, a read-only
 * file), unlike taking the lock and rolling back, which writes nothing. */
enum store_probe
store_sqlite_probe(struct store *st, int wait_ms)
{
	sqlite3 *db = store_db(st);
	enum store_probe r = STORE_PROBE_FAILED;

	store_set_deadline(st, clock_mono_ms() + wait_ms);
	if (exec_step(db, "BEGIN IMMEDIATE", 0) == -1) {
		r = (sqlite3_errcode(db) & 0xff) == SQLITE_BUSY ?
		    STORE_PROBE_BUSY : STORE_PROBE_FAILED;
		goto out;
	}
	if (exec_step(db, "INSERT INTO health_probe (id, probed_at) VALUES "
	    "(1, ?1) ON CONFLICT (id) DO UPDATE SET probed_at = "
	    "excluded.probed_at", clock_wall_ms()) == -1 ||
	    exec_step(db, "COMMIT", 0) == -1)
		goto out;
	r = store_sqlite_check_files(st) == STORE_FILE_OK ? STORE_PROBE_OK :
	    STORE_PROBE_MOVED;
out:
	store_set_deadline(st, 0);
	if (r == STORE_PROBE_FAILED || r == STORE_PROBE_BUSY) {
		note_fault(st);
		log_debug("store: '%s': write probe: %s", store_path(st),
		    sqlite3_errmsg(db));
		if (sqlite3_get_autocommit(db) == 0)
			(void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	} else if (r == STORE_PROBE_MOVED) {
		store_set_fault(st,
		    store_file_state_text(store_sqlite_check_files(st)));
	}
	return r;
}

/* How often batches checkpoint: small steps once space runs short (see
 * STORE_CHECKPOINT_FRAMES_LOW). Looked at again at most once a second. */
static void
pace(struct store *st, struct store_pace *p)
{
	int64_t now = clock_mono_ms(), free_bytes;

	if (p->every != 0 && now - p->paced_ms < PACE_EVERY_MS)
		return;
	p->paced_ms = now;
	free_bytes = store_sqlite_free_bytes(st);
	p->every = free_bytes >= 0 && free_bytes < STORE_LOW_SPACE ?
	    STORE_CHECKPOINT_FRAMES_LOW : STORE_CHECKPOINT_FRAMES;
}

/* One checkpoint, remembered: what it left behind, and a failure logged
 * when checkpoints start failing and when they work again. */
static enum store_ckpt
checkpoint(struct store *st, struct store_pace *p, int truncate, int wait_ms)
{
	enum store_ckpt r;

	r = store_checkpoint(st, truncate, wait_ms);
	p->behind = r != STORE_CKPT_DONE;
	if (r == STORE_CKPT_DONE) {
		p->frames = store_wal_frames(st);
		if (p->failing)
			log_info("store: '%s': checkpoints work again",
			    store_path(st));
		p->failing = 0;
	} else if (r == STORE_CKPT_FAILED && !p->failing) {
		log_warning("store: '%s': checkpoint failed (%s): the WAL "
		    "grows until one works; trying again every second",
		    store_path(st), store_fault(st));
		p->failing = 1;
	}
	return r;
}

enum store_ckpt
store_sqlite_maintain(struct store *st, enum store_maint when)
{
	struct store_pace *p = store_pace(st);

	pace(st, p);
	switch (when) {
	case STORE_MAINT_BATCH:
		if (store_wal_frames(st) < p->every)
			return STORE_CKPT_NONE;
		return checkpoint(st, p, 0, 0);
	case STORE_MAINT_IDLE:
		if (store_wal_frames(st) == p->frames)
			return STORE_CKPT_NONE;
		return checkpoint(st, p, 0, 0);
	case STORE_MAINT_RECOVER:
		/* TRUNCATE gives the WAL's space back to a full disk. */
		return checkpoint(st, p, 1, TRUNCATE_WAIT_MS);
	case STORE_MAINT_SAVE:
		return checkpoint(st, p, 1, STORE_BUSY_TIMEOUT_MS);
	}
	return STORE_CKPT_FAILED;
}

/* A large WAL whose frames are all in the database is not behind: the
 * next write cuts it back to STORE_JOURNAL_LIMIT. */
int
store_sqlite_behind(struct store *st, char *detail, size_t n)
{
	struct store_pace *p = store_pace(st);
	long long wal = store_sqlite_wal_bytes(st);

	if (wal <= STORE_WAL_LIMIT || !p->behind)
		return 0;
	(void)snprintf(detail, n, "the WAL is %lld bytes, over the limit of "
	    "%d: checkpoints cannot keep up (%s)", wal, STORE_WAL_LIMIT,
	    p->failing ? store_fault(st) : "readers hold it");
	return 1;
}
