/* writer.c - the single writer thread with group commit (DESIGN "Data flow",
 * store step), and the health of the store it writes.
 *
 * HTTP threads append items to a FIFO and go back to serving; the writer
 * takes everything queued (up to WRITER_MAX_BATCH), records it with one
 * store_record_batch() (one transaction, one fsync) and answers each item's
 * done() in queue order. While it commits, the next batch collects: the
 * busier the daemon, the bigger the batches, and the fsync cost is shared.
 *
 * Health: every write (a batch, or an idle probe that commits a row) says
 * whether the database takes writes where its path points. Once a second
 * (a tick, busy or idle) the writer checks its files, asks the store for its
 * housekeeping (store_maintain(): SQLite checkpoints its WAL), and while
 * something is wrong retries until it is right again, so /healthz and the
 * 503s end by themselves. Which backend runs is the store's business: a
 * PostgreSQL store never leaves its path, and its housekeeping reconnects.
 * When its files left the path it answers 503 without writing; when a
 * database it may use is back at the path, it asks the daemon
 * (writer_reopen_fd) to close the other connections, then reopens.
 *
 * Must not: touch the database from any other thread, drop a queued item
 * (stop drains the queue into the database), call done() twice or before
 * the commit returned, create a database in place of one that vanished, or
 * wait by sleeping (a condition variable with a timeout paces the ticks).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "prio.h"
#include "store_health.h"
#include "thread.h"
#include "writer.h"

#define TICK_MS		1000	/* heartbeat, checks and retries */
#define PROBE_IDLE_MS	5000	/* an idle store proves a write this often */
#define PROBE_WAIT_MS	250	/* a tick's probe: wait for the lock */
#define RETRY_OPEN_MS	10000	/* retrying to open or reopen */
#define REMIND_MS	60000	/* a store that stays moved is logged again */

struct writer {
	struct store	*st;		/* writer thread only; NULL: none */
	struct store	*next_st;	/* writer thread: opened at the path,
					 * waiting for writer_reopen() */
	char		*path;
	enum durability	 durability;
	pthread_t	 thread;

	pthread_mutex_t	 mu;		/* guards the fields to reopen_rc */
	pthread_cond_t	 cv;		/* queue not empty, stop or reopen */
	pthread_cond_t	 reopened;	/* writer_reopen() answered */
	struct store_item *head, *tail;
	unsigned	 queued;
	int		 stopping;
	int		 reopen_asked;
	int		 reopen_done;
	int		 reopen_rc;

	/* Guards on_commit and on_arg, and is held while the writer calls
	 * them: once writer_set_on_commit() returns, the old arg is unused. */
	pthread_mutex_t	 cbmu;
	void		(*on_commit)(void *, struct store_item *const *, size_t);
	void		*on_arg;

	pthread_mutex_t	 hmu;		/* guards `health` (read by /healthz) */
	struct writer_health health;

	atomic_int	 forward_pending;
	_Atomic int64_t	 heartbeat_ms;	/* clock_mono_ms() */
	int		 event_fd;	/* readable: run writer_reopen() */

	/* writer thread only */
	int64_t		 next_tick_ms;
	int64_t		 last_write_ms;	/* a batch or probe committed */
	int64_t		 next_open_ms;	/* RETRY_OPEN_MS pacing */
	int64_t		 moved_log_ms;	/* REMIND_MS pacing */
	int		 reopen_wanted;	/* event_fd written, not served yet */
	int		 started;	/* the first probe has run */
	struct store_item *batch[WRITER_MAX_BATCH];
};

static void
beat(struct writer *w)
{
	atomic_store(&w->heartbeat_ms, clock_mono_ms());
}

const char *
writer_store_name(enum writer_store s)
{
	switch (s) {
	case WRITER_STORE_OK:
		return "ok";
	case WRITER_STORE_UNAVAILABLE:
		return "unavailable";
	case WRITER_STORE_MOVED:
		return "moved";
	case WRITER_STORE_WAL_OVER_LIMIT:
		return "wal_over_limit";
	case WRITER_STORE_UNKNOWN:
		return "unknown";
	}
	return "unknown";
}

/* What a store that left its path means, and what the operator does. */
static void
log_moved(struct writer *w, const char *detail)
{
	int wal = strstr(detail, "WAL") != NULL;

	w->moved_log_ms = clock_mono_ms();
	log_error("store: '%s': %s while open: webhooks are answered 503 "
	    "until the database is whole at this path again%s", w->path,
	    detail, wal ? "; saving the WAL into the database and reopening "
	    "it" : "; put it back there (move it back, or restore a copy): "
	    "cfhookd reopens it by itself, and never starts a new, empty "
	    "database in its place while running (a restart would)");
}

/* Writer thread: the new state, logged when it changes. */
static void
set_state(struct writer *w, enum writer_store s, const char *detail)
{
	enum writer_store old;
	long long wal;

	(void)pthread_mutex_lock(&w->hmu);
	old = w->health.state;
	w->health.state = s;
	(void)snprintf(w->health.detail, sizeof(w->health.detail), "%s",
	    s == WRITER_STORE_OK ? "" : detail);
	wal = w->health.wal_bytes;
	(void)pthread_mutex_unlock(&w->hmu);
	metrics_store_state(s == WRITER_STORE_OK, wal);
	if (s == old)
		return;
	switch (s) {
	case WRITER_STORE_OK:
		if (w->started)
			log_info("store: '%s': takes writes again", w->path);
		break;
	case WRITER_STORE_UNAVAILABLE:
		log_warning("store: '%s': not writable (%s): webhooks are "
		    "answered 503 until it is; trying again every second",
		    w->path, detail);
		break;
	case WRITER_STORE_MOVED:
		log_moved(w, detail);
		break;
	case WRITER_STORE_WAL_OVER_LIMIT:
		log_warning("store: '%s': %s", w->path, detail);
		break;
	case WRITER_STORE_UNKNOWN:
		log_warning("store: '%s': health unknown (%s)", w->path,
		    detail);
		break;
	}
}

static enum writer_store
state(struct writer *w)
{
	enum writer_store s;

	(void)pthread_mutex_lock(&w->hmu);
	s = w->health.state;
	(void)pthread_mutex_unlock(&w->hmu);
	return s;
}

/* A write committed in place: ok, unless the store falls behind in its
 * housekeeping (SQLite: a WAL over its limit with frames checkpoints cannot
 * move). */
static void
settle_ok(struct writer *w)
{
	char detail[128];
	long long wal = store_wal_bytes(w->st);

	w->last_write_ms = clock_mono_ms();
	(void)pthread_mutex_lock(&w->hmu);
	w->health.wal_bytes = wal;
	(void)pthread_mutex_unlock(&w->hmu);
	if (store_behind(w->st, detail, sizeof(detail)))
		set_state(w, WRITER_STORE_WAL_OVER_LIMIT, detail);
	else
		set_state(w, WRITER_STORE_OK, "");
}

/* Writer thread: prove that the database takes writes. */
static void
probe(struct writer *w)
{
	switch (store_probe(w->st, PROBE_WAIT_MS)) {
	case STORE_PROBE_OK:
		settle_ok(w);
		break;
	case STORE_PROBE_BUSY:
		set_state(w, WRITER_STORE_UNKNOWN, "another connection holds "
		    "the lock: not probed");
		break;
	case STORE_PROBE_FAILED:
		set_state(w, WRITER_STORE_UNAVAILABLE, store_fault(w->st));
		break;
	case STORE_PROBE_MOVED:
		set_state(w, WRITER_STORE_MOVED, store_fault(w->st));
		break;
	}
}

/* Writer thread: wake the daemon to run writer_reopen(), once. */
static void
want_reopen(struct writer *w)
{
	uint64_t one = 1;

	if (w->reopen_wanted)
		return;
	if (write(w->event_fd, &one, sizeof(one)) == (ssize_t)sizeof(one))
		w->reopen_wanted = 1;
}

/* Writer thread, no store open (a reopen failed): open the database at the
 * path once there is one to open, then have the daemon bring the others
 * back. */
static void
tick_closed(struct writer *w, int64_t now)
{
	if (now < w->next_open_ms)
		return;
	w->next_open_ms = now + RETRY_OPEN_MS;
	if (store_open(w->path, STORE_EXISTING, w->durability, &w->st) == -1)
		return;			/* logged; stays 503 */
	metrics_store_reopen();
	log_info("store: '%s': opened again", w->path);
	probe(w);
	if (state(w) != WRITER_STORE_MOVED)
		want_reopen(w);		/* to restart the other connections */
}

/* Writer thread, files away from the path: what is there now? */
static void
tick_moved(struct writer *w, int64_t now)
{
	switch (store_path_state(w->st)) {
	case STORE_PATH_SAME:
		log_info("store: '%s': the database files are back at the "
		    "path", w->path);
		probe(w);
		break;
	case STORE_PATH_MIXED:
		if (now >= w->next_open_ms)	/* at once, then paced */
			want_reopen(w);
		break;
	case STORE_PATH_OTHER_DB:
		/* Opened (checked and upgraded) now, adopted in
		 * writer_reopen(): none of its files is one of ours, so
		 * nothing conflicts meanwhile. */
		if (w->next_st == NULL && now >= w->next_open_ms) {
			w->next_open_ms = now + RETRY_OPEN_MS;
			/* next_st stays NULL on failure (logged): tried
			 * again after RETRY_OPEN_MS. */
			if (store_open(w->path, STORE_EXISTING, w->durability,
			    &w->next_st) == -1)
				w->next_st = NULL;
		}
		if (w->next_st != NULL)
			want_reopen(w);
		break;
	case STORE_PATH_GONE:
		if (now - w->moved_log_ms >= REMIND_MS)
			log_moved(w, store_file_state_text(
			    store_check_files(w->st)));
		break;
	}
}

/* Writer thread, once a second: check the files; when idle, housekeeping
 * and retry. With items queued the tick never waits for a lock: the next
 * batch is the retry, and its items must not wait for the tick. */
static void
tick(struct writer *w, int idle)
{
	int64_t now = clock_mono_ms();
	enum store_file_state moved;

	w->next_tick_ms = now + TICK_MS;
	if (w->st == NULL) {
		tick_closed(w, now);
		return;
	}
	if (state(w) == WRITER_STORE_MOVED) {
		tick_moved(w, now);
		return;
	}
	moved = store_check_files(w->st);
	if (moved != STORE_FILE_OK) {
		store_set_fault(w->st, store_file_state_text(moved));
		set_state(w, WRITER_STORE_MOVED, store_file_state_text(moved));
		tick_moved(w, now);
		return;
	}
	if (!idle)
		return;
	if (state(w) != WRITER_STORE_OK) {
		(void)store_maintain(w->st, STORE_MAINT_RECOVER);
		probe(w);
		return;
	}
	(void)store_maintain(w->st, STORE_MAINT_IDLE);
	if (now - w->last_write_ms >= PROBE_IDLE_MS)
		probe(w);
}

/* Writer thread, a batch done: the state it leaves, set before its items
 * are answered so that /healthz agrees with their answers. */
static void
note_batch(struct writer *w, int news)
{
	enum store_file_state moved;

	if (news >= 0) {
		settle_ok(w);
		return;
	}
	moved = store_check_files(w->st);
	if (moved != STORE_FILE_OK)
		set_state(w, WRITER_STORE_MOVED, store_file_state_text(moved));
	else
		set_state(w, WRITER_STORE_UNAVAILABLE, store_fault(w->st));
}

/* Writer thread, the batch answered: housekeeping (SQLite: a checkpoint
 * once the WAL holds enough frames), or the recovery one after a failure
 * (it gives a full disk the WAL's space back), but not after a lock
 * timeout: it would wait for the same lock while the next batch waits for
 * it. */
static void
after_batch(struct writer *w, int news)
{
	enum writer_store s = state(w);

	if (news >= 0) {
		if (store_maintain(w->st, STORE_MAINT_BATCH) != STORE_CKPT_NONE)
			settle_ok(w);	/* the WAL limit, after it */
	} else if (s == WRITER_STORE_MOVED) {
		tick_moved(w, clock_mono_ms());	/* reopen at once if it can */
	} else if (s == WRITER_STORE_UNAVAILABLE &&
	    strncmp(store_fault(w->st), "locked", 6) != 0) {
		(void)store_maintain(w->st, STORE_MAINT_RECOVER);
	}
}

/* Wait (mutex held) until there is work, stop or a reopen was asked, or
 * the next tick is due (returns then with nothing to do). */
static void
wait_for_work(struct writer *w)
{
	while (w->head == NULL && !w->stopping && !w->reopen_asked) {
		beat(w);
		if (clock_mono_ms() >= w->next_tick_ms)
			break;
		(void)clock_cond_wait_until(&w->cv, &w->mu, w->next_tick_ms);
	}
	beat(w);
}

/* Move up to WRITER_MAX_BATCH items, oldest first, into w->batch. Mutex
 * held. */
static size_t
take_batch(struct writer *w)
{
	size_t n = 0;

	while (w->head != NULL && n < WRITER_MAX_BATCH) {
		w->batch[n++] = w->head;
		w->head = w->head->next;
		w->queued--;
	}
	if (w->head == NULL)
		w->tail = NULL;
	return n;
}

/* The batch committed new rows that wait for the forwarder: tell it, with
 * the items, before they are answered (the callback may read them). */
static void
committed(struct writer *w, size_t n)
{
	(void)pthread_mutex_lock(&w->cbmu);
	if (w->on_commit != NULL)
		w->on_commit(w->on_arg, w->batch, n);
	(void)pthread_mutex_unlock(&w->cbmu);
}

/* Record one batch and answer it. Mutex not held: submitters go on
 * queueing meanwhile (the group commit). Files away from the path: 503
 * without writing. */
static void
run_batch(struct writer *w, size_t n)
{
	struct store_item *it;
	int fp = atomic_load(&w->forward_pending);
	int wrote = w->st != NULL && state(w) != WRITER_STORE_MOVED;
	int news = -1;
	size_t i;

	if (wrote) {
		news = store_record_batch(w->st, w->batch, n, fp);
		note_batch(w, news);
	} else {
		for (i = 0; i < n; i++) {
			w->batch[i]->result = STORE_UNAVAILABLE;
			w->batch[i]->id = 0;
		}
	}
	/* The commit has returned: every result is final and durable. */
	if (news > 0 && fp)
		committed(w, n);
	for (i = 0; i < n; i++) {
		it = w->batch[i];
		it->next = NULL;
		it->done(it, it->arg);	/* the caller owns it again */
	}
	if (wrote)
		after_batch(w, news);
	beat(w);
}

/* Writer thread, asked by writer_reopen(): swap the store for one open on
 * the database at the path. Only then may the daemon's other connections
 * open it: one database must never have two WAL files in one process. */
static int
reopen(struct writer *w)
{
	enum store_file_path p = STORE_PATH_GONE;
	enum store_ckpt saved;

	w->reopen_wanted = 0;
	if (w->st != NULL && w->next_st == NULL) {
		p = store_path_state(w->st);
		if (p == STORE_PATH_SAME) {
			probe(w);	/* back in place: nothing to swap */
			return state(w) == WRITER_STORE_MOVED ? -1 : 0;
		}
		if (p != STORE_PATH_MIXED)
			return -1;	/* ticks look at it again */
	}
	if (w->st != NULL) {
		/* Our WAL holds acknowledged events the database file may not
		 * have yet; with the WAL gone from the path it is their only
		 * copy, so it goes into the database before anything closes,
		 * and left empty it cannot be replayed into a database that
		 * replaced ours beside it. For a database replaced with its
		 * own files this leaves the old ones whole. */
		saved = store_maintain(w->st, STORE_MAINT_SAVE);
		if (saved != STORE_CKPT_DONE && p == STORE_PATH_MIXED) {
			w->next_open_ms = clock_mono_ms() + RETRY_OPEN_MS;
			log_warning("store: '%s': cannot reopen yet: the WAL "
			    "could not be saved into the database (%s); trying "
			    "again", w->path, saved == STORE_CKPT_BUSY ?
			    "readers hold it" : store_fault(w->st));
			return -1;
		}
		store_close(w->st);
		w->st = NULL;
	}
	if (w->next_st == NULL && store_open(w->path, STORE_EXISTING,
	    w->durability, &w->next_st) == -1) {
		w->next_open_ms = clock_mono_ms() + RETRY_OPEN_MS;
		set_state(w, WRITER_STORE_MOVED, "the database at the path "
		    "cannot be opened (see the log)");
		return -1;		/* logged; tick_closed() retries */
	}
	w->st = w->next_st;
	w->next_st = NULL;
	metrics_store_reopen();
	log_info("store: '%s': reopened", w->path);
	probe(w);
	return state(w) == WRITER_STORE_MOVED ? -1 : 0;
}

/* Every webhook waits for this thread: it runs ahead of the daemon's
 * others where it may (prio.h), and says how far when it may not. */
static void
raise_priority(void)
{
	int was, now;

	now = prio_raise(PRIO_INTAKE_AHEAD, &was);
	if (now <= was - PRIO_INTAKE_AHEAD || now == -20)
		log_debug("writer: nice %d (the daemon's %d)", now, was);
	else
		log_info("writer: nice %d, %d below the daemon's %d wanted: "
		    "RLIMIT_NICE allows no more (systemd: LimitNICE=)", now,
		    PRIO_INTAKE_AHEAD, was);
}

static void *
writer_main(void *arg)
{
	struct writer *w = arg;
	size_t n;
	int rc;

	raise_priority();
	(void)pthread_mutex_lock(&w->mu);
	for (;;) {
		wait_for_work(w);
		if (w->reopen_asked) {
			w->reopen_asked = 0;
			(void)pthread_mutex_unlock(&w->mu);
			rc = reopen(w);
			(void)pthread_mutex_lock(&w->mu);
			w->reopen_rc = rc;
			w->reopen_done = 1;
			(void)pthread_cond_broadcast(&w->reopened);
			continue;
		}
		/* On stop, keep going until the queue is empty: every item
		 * queued before stop is recorded, not dropped. */
		if (w->head == NULL && w->stopping)
			break;
		if (w->head == NULL) {
			(void)pthread_mutex_unlock(&w->mu);
			tick(w, 1);
			(void)pthread_mutex_lock(&w->mu);
			continue;
		}
		n = take_batch(w);
		(void)pthread_mutex_unlock(&w->mu);
		run_batch(w, n);
		if (clock_mono_ms() >= w->next_tick_ms)
			tick(w, 0);	/* busy: still check and retry */
		(void)pthread_mutex_lock(&w->mu);
	}
	(void)pthread_mutex_unlock(&w->mu);
	return NULL;
}

static int
init_sync(struct writer *w)
{
	int rc = -1;

	if (pthread_mutex_init(&w->mu, NULL) != 0)
		return -1;
	if (pthread_mutex_init(&w->hmu, NULL) != 0)
		goto out_mu;
	if (pthread_mutex_init(&w->cbmu, NULL) != 0)
		goto out_hmu;
	/* Monotonic: a wall-clock step must not stretch the idle wait. */
	if (clock_cond_init(&w->cv) == 0) {
		if (pthread_cond_init(&w->reopened, NULL) == 0)
			rc = 0;
		else
			(void)pthread_cond_destroy(&w->cv);
	}

	if (rc == -1)
		(void)pthread_mutex_destroy(&w->cbmu);
out_hmu:
	if (rc == -1)
		(void)pthread_mutex_destroy(&w->hmu);
out_mu:
	if (rc == -1)
		(void)pthread_mutex_destroy(&w->mu);
	return rc;
}

static void
done_sync(struct writer *w)
{
	(void)pthread_cond_destroy(&w->reopened);
	(void)pthread_cond_destroy(&w->cv);
	(void)pthread_mutex_destroy(&w->cbmu);
	(void)pthread_mutex_destroy(&w->hmu);
	(void)pthread_mutex_destroy(&w->mu);
}

static void
writer_free(struct writer *w)
{
	if (w->event_fd != -1)
		(void)close(w->event_fd);
	free(w->path);
	free(w);
}

/* The fields that need no thread yet; the first probe on the caller's
 * thread (the store is not the thread's yet). */
static int
writer_init(struct writer *w, struct store *st, int forward_pending)
{
	w->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	w->path = strdup(store_path(st));
	if (w->event_fd == -1 || w->path == NULL) {
		log_error("writer: %s", w->path == NULL ? "out of memory" :
		    strerror(errno));
		return -1;
	}
	if (init_sync(w) == -1) {
		log_error("writer: cannot initialise its locks");
		return -1;
	}
	w->st = st;
	w->durability = store_durability(st);
	w->health.state = WRITER_STORE_UNKNOWN;
	w->health.wal_bytes = -1;
	atomic_init(&w->forward_pending, forward_pending != 0);
	atomic_init(&w->heartbeat_ms, clock_mono_ms());
	probe(w);
	w->started = 1;
	w->next_tick_ms = clock_mono_ms() + TICK_MS;
	return 0;
}

/* On failure the caller still owns `st` (ownership moves only on success,
 * like every ret out-parameter). */
int
writer_start(struct store *st, int forward_pending, struct writer **ret)
{
	struct writer *w;
	int err;

	w = calloc(1, sizeof(*w));
	if (w == NULL) {
		log_error("writer: out of memory");
		return -1;
	}
	w->event_fd = -1;
	if (writer_init(w, st, forward_pending) == -1) {
		writer_free(w);
		return -1;
	}
	/* Signals reach the main thread, which owns them. */
	err = thread_start(&w->thread, writer_main, w, "writer");
	if (err != 0) {
		log_error("writer: cannot start the thread: %s", strerror(err));
		done_sync(w);
		writer_free(w);
		return -1;
	}
	*ret = w;
	return 0;
}

/* After stop began, done() runs right here, on the caller's thread. */
void
writer_submit(struct writer *w, struct store_item *it)
{
	it->next = NULL;
	it->queued_ms = clock_mono_ms();
	(void)pthread_mutex_lock(&w->mu);
	if (w->stopping) {
		(void)pthread_mutex_unlock(&w->mu);
		it->result = STORE_UNAVAILABLE;
		it->id = 0;
		it->done(it, it->arg);
		return;
	}
	if (w->tail == NULL)
		w->head = it;
	else
		w->tail->next = it;
	w->tail = it;
	w->queued++;
	(void)pthread_cond_signal(&w->cv);
	(void)pthread_mutex_unlock(&w->mu);
}

void
writer_set_forward_pending(struct writer *w, int forward_pending)
{
	atomic_store(&w->forward_pending, forward_pending != 0);
}

void
writer_set_on_commit(struct writer *w, void (*fn)(void *,
    struct store_item *const *, size_t), void *arg)
{
	(void)pthread_mutex_lock(&w->cbmu);
	w->on_commit = fn;
	w->on_arg = arg;
	(void)pthread_mutex_unlock(&w->cbmu);
}

int64_t
writer_heartbeat_ms(struct writer *w)
{
	return atomic_load(&w->heartbeat_ms);
}

int
writer_healthy(struct writer *w)
{
	return state(w) == WRITER_STORE_OK ? 0 : -1;
}

void
writer_health(struct writer *w, struct writer_health *ret)
{
	(void)pthread_mutex_lock(&w->hmu);
	*ret = w->health;
	(void)pthread_mutex_unlock(&w->hmu);
	ret->queued = writer_queued(w);
}

unsigned
writer_queued(struct writer *w)
{
	unsigned n;

	(void)pthread_mutex_lock(&w->mu);
	n = w->queued;
	(void)pthread_mutex_unlock(&w->mu);
	return n;
}

int
writer_reopen_fd(struct writer *w)
{
	return w->event_fd;
}

int
writer_reopen(struct writer *w)
{
	int rc;

	(void)pthread_mutex_lock(&w->mu);
	w->reopen_asked = 1;
	w->reopen_done = 0;
	(void)pthread_cond_signal(&w->cv);
	while (!w->reopen_done)
		(void)pthread_cond_wait(&w->reopened, &w->mu);
	rc = w->reopen_rc;
	(void)pthread_mutex_unlock(&w->mu);
	return rc;
}

void
writer_stop(struct writer *w)
{
	if (w == NULL)
		return;
	(void)pthread_mutex_lock(&w->mu);
	w->stopping = 1;
	(void)pthread_cond_signal(&w->cv);
	(void)pthread_mutex_unlock(&w->mu);
	(void)pthread_join(w->thread, NULL);	/* after it drained */
	store_close(w->st);
	store_close(w->next_st);
	done_sync(w);
	writer_free(w);
}
