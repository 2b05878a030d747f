/* test_writer.c - the writer thread against real SQLite files: many
 * submitting threads, answers after the data is visible, draining on stop,
 * the heartbeat, health and the on_commit callback. Also prints the
 * throughput with durability full and normal. */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "check.h"
#include "clock.h"
#include "storetest.h"
#include "writer.h"
#include "store_int.h"

/* One submission, with what done() saw. */
struct titem {
	struct store_item it;
	struct event	 ev;
	char		 key[24];
	atomic_int	 answered;	/* done() calls */
	pthread_t	 answered_on;
	int		 visible;	/* deliveries a 2nd connection saw */
	int		 order;	/* position among all answers */
	struct waiter	*w;
};

/* Counts answers; a test thread waits on it. */
struct waiter {
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	int		 answers;
	sqlite3		*peek;		/* queried from done() when set */
	sqlite3_stmt	*peek_stmt;
};

static void
waiter_init(struct waiter *wt)
{
	memset(wt, 0, sizeof(*wt));
	(void)pthread_mutex_init(&wt->mu, NULL);
	(void)pthread_cond_init(&wt->cv, NULL);
}

static void
waiter_done(struct waiter *wt)
{
	(void)sqlite3_finalize(wt->peek_stmt);
	(void)sqlite3_close(wt->peek);
	(void)pthread_cond_destroy(&wt->cv);
	(void)pthread_mutex_destroy(&wt->mu);
}

/* Wait until `n` answers arrived. */
static void
waiter_wait(struct waiter *wt, int n)
{
	(void)pthread_mutex_lock(&wt->mu);
	while (wt->answers < n)
		(void)pthread_cond_wait(&wt->cv, &wt->mu);
	(void)pthread_mutex_unlock(&wt->mu);
}

static void
on_done(struct store_item *it, void *arg)
{
	struct titem *t = arg;
	struct waiter *wt = t->w;

	CHECK(it == &t->it);
	t->answered_on = pthread_self();
	if (wt->peek_stmt != NULL) {
		(void)sqlite3_bind_text(wt->peek_stmt, 1, t->key, -1,
		    SQLITE_STATIC);
		if (sqlite3_step(wt->peek_stmt) == SQLITE_ROW)
			t->visible = sqlite3_column_int(wt->peek_stmt, 0);
		(void)sqlite3_reset(wt->peek_stmt);
	}
	(void)pthread_mutex_lock(&wt->mu);
	t->order = wt->answers++;
	atomic_fetch_add(&t->answered, 1);
	(void)pthread_cond_broadcast(&wt->cv);
	(void)pthread_mutex_unlock(&wt->mu);
}

static void
titem_init(struct titem *t, struct waiter *wt, const char *key)
{
	memset(t, 0, sizeof(*t));
	(void)snprintf(t->key, sizeof(t->key), "%s", key);
	t->ev.event_key = t->key;
	t->ev.type = (char *)"PAYMENT_SUCCESS_WEBHOOK";
	t->it.ev = &t->ev;
	t->it.body = "{\"type\":\"PAYMENT_SUCCESS_WEBHOOK\"}";
	t->it.body_len = strlen(t->it.body);
	t->it.content_type = "application/json";
	t->it.received_ms = clock_wall_ms();
	t->it.result = (enum store_result)-1;
	t->it.done = on_done;
	t->it.arg = t;
	t->w = wt;
}

static struct writer *
start(char *path, size_t size, enum durability d, int fwd)
{
	struct writer *w = NULL;
	struct store *st = NULL;

	if (!CHECK_INT(store_open(new_path(path, size), STORE_WRITE, d, &st),
	    0))
		return NULL;
	if (!CHECK_INT(writer_start(st, fwd, &w), 0))
		store_close(st);
	return w;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1)
		continue;
}

/* Many threads, each like an HTTP connection: submit, wait for the answer,
 * submit the next. Keys overlap across threads. */
#define THREADS		8
#define PER_THREAD	200
#define KEYS		500

struct submitter {
	struct writer	*w;
	struct titem	*items;		/* PER_THREAD of them */
	int		 base;
	struct waiter	 wt;
};

static void *
submit_main(void *arg)
{
	struct submitter *s = arg;
	char key[24];
	int i;

	for (i = 0; i < PER_THREAD; i++) {
		(void)snprintf(key, sizeof(key), "K:%d",
		    (s->base + i * 7) % KEYS);
		titem_init(&s->items[i], &s->wt, key);
		writer_submit(s->w, &s->items[i].it);
		waiter_wait(&s->wt, i + 1);
	}
	return NULL;
}

/* Every item answered once; one row per distinct key; each row's
 * deliveries equal the submissions of its key. */
static void
check_counts(const char *path, struct submitter *sub)
{
	int per_key[KEYS] = { 0 };
	int i, j, news = 0, dups = 0, once = 1, ids = 1, distinct = 0;
	sqlite3_stmt *s = NULL;
	sqlite3 *db;
	char key[24];

	for (i = 0; i < THREADS; i++) {
		for (j = 0; j < PER_THREAD; j++) {
			struct titem *t = &sub[i].items[j];

			once &= atomic_load(&t->answered) == 1;
			news += t->it.result == STORE_NEW;
			dups += t->it.result == STORE_DUPLICATE;
			ids &= t->it.id > 0;
			per_key[strtol(t->key + 2, NULL, 10)]++;
		}
	}
	for (i = 0; i < KEYS; i++)
		distinct += per_key[i] > 0;
	CHECK(once);
	CHECK(ids);
	CHECK(distinct > KEYS / 2);		/* the keys really overlap */
	CHECK_INT(news, distinct);
	CHECK_INT(dups, THREADS * PER_THREAD - distinct);
	db = peek_open(path);
	CHECK_INT(q_int(db, "SELECT count(*) FROM events", NULL), distinct);
	CHECK_INT(q_int(db, "SELECT sum(deliveries) FROM events", NULL),
	    THREADS * PER_THREAD);
	CHECK_INT(sqlite3_prepare_v2(db, "SELECT deliveries FROM events "
	    "WHERE event_key = ?1", -1, &s, NULL), SQLITE_OK);
	for (i = 0; i < KEYS && s != NULL; i++) {
		if (per_key[i] == 0)
			continue;
		(void)snprintf(key, sizeof(key), "K:%d", i);
		(void)sqlite3_bind_text(s, 1, key, -1, SQLITE_TRANSIENT);
		if (CHECK_INT(sqlite3_step(s), SQLITE_ROW))
			CHECK_INT(sqlite3_column_int(s, 0), per_key[i]);
		(void)sqlite3_reset(s);
	}
	(void)sqlite3_finalize(s);
	(void)sqlite3_close(db);
}

static void
many_threads(enum durability d, const char *name)
{
	struct submitter sub[THREADS];
	pthread_t th[THREADS];
	char path[128];
	struct writer *w;
	int64_t t0, ms;
	int i;

	w = start(path, sizeof(path), d, 1);
	if (w == NULL)
		return;
	t0 = clock_mono_ms();
	for (i = 0; i < THREADS; i++) {
		sub[i].w = w;
		sub[i].base = i * 61;
		sub[i].items = calloc(PER_THREAD, sizeof(struct titem));
		waiter_init(&sub[i].wt);
		CHECK_INT(pthread_create(&th[i], NULL, submit_main, &sub[i]),
		    0);
	}
	for (i = 0; i < THREADS; i++)
		(void)pthread_join(th[i], NULL);
	ms = clock_mono_ms() - t0;
	printf("test_writer: durability %s: %d events from %d threads in "
	    "%lld ms = %.0f events/s\n", name, THREADS * PER_THREAD, THREADS,
	    (long long)ms, ms > 0 ? THREADS * PER_THREAD * 1000.0 / (double)ms :
	    0.0);
	CHECK_INT(writer_healthy(w), 0);
	CHECK_INT(writer_queued(w), 0);
	writer_stop(w);
	check_counts(path, sub);
	for (i = 0; i < THREADS; i++) {
		free(sub[i].items);
		waiter_done(&sub[i].wt);
	}
}

static void
test_many_threads_full(void)
{
	many_threads(DURABILITY_FULL, "full");
}

static void
test_many_threads_normal(void)
{
	many_threads(DURABILITY_NORMAL, "normal");
}

/* done() runs only once another connection can read the row. */
static void
test_done_after_visible(void)
{
	struct titem t[40];
	struct waiter wt;
	char path[128], key[24];
	struct writer *w;
	int i;

	w = start(path, sizeof(path), DURABILITY_FULL, 1);
	if (w == NULL)
		return;
	waiter_init(&wt);
	wt.peek = peek_open(path);
	CHECK_INT(sqlite3_prepare_v2(wt.peek, "SELECT deliveries FROM events "
	    "WHERE event_key = ?1", -1, &wt.peek_stmt, NULL), SQLITE_OK);
	for (i = 0; i < 40; i++) {
		(void)snprintf(key, sizeof(key), "V:%d", i % 30);
		titem_init(&t[i], &wt, key);
		writer_submit(w, &t[i].it);
	}
	waiter_wait(&wt, 40);
	for (i = 0; i < 40; i++) {
		CHECK_INT(t[i].it.result,
		    i < 30 ? STORE_NEW : STORE_DUPLICATE);
		/* A later duplicate in the same batch may already count. */
		CHECK(t[i].visible >= (i < 30 ? 1 : 2));
		CHECK(pthread_equal(t[i].answered_on, pthread_self()) == 0);
	}
	writer_stop(w);
	waiter_done(&wt);
}

/* While a second connection holds the write lock the writer is stuck in a
 * batch: its heartbeat goes stale. Meanwhile items pile up; stop must
 * record every one of them (in FIFO order), and a submit after stop began
 * is answered UNAVAILABLE at once on the submitting thread. */
#define DRAIN	1000

static void *
stop_main(void *arg)
{
	writer_stop(arg);
	return NULL;
}

static void
test_stop_drains_queue(void)
{
	static struct titem t[DRAIN + 1];
	struct waiter wt;
	char path[128], key[24];
	struct writer *w;
	pthread_t stopper;
	sqlite3 *other;
	int i, fifo = 1, news = 0;

	w = start(path, sizeof(path), DURABILITY_FULL, 1);
	if (w == NULL)
		return;
	waiter_init(&wt);
	other = peek_open(path);
	CHECK_INT(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL),
	    SQLITE_OK);
	for (i = 0; i <= DRAIN; i++) {
		(void)snprintf(key, sizeof(key), "D:%d", i);
		titem_init(&t[i], &wt, key);
	}
	writer_submit(w, &t[0].it);
	while (writer_queued(w) != 0)	/* the writer took it and is stuck */
		sleep_ms(1);
	for (i = 1; i < DRAIN; i++)
		writer_submit(w, &t[i].it);
	CHECK_INT(writer_queued(w), DRAIN - 1);
	sleep_ms(1500);
	CHECK(clock_mono_ms() - writer_heartbeat_ms(w) >= 1400);
	CHECK_INT(pthread_create(&stopper, NULL, stop_main, w), 0);
	sleep_ms(200);			/* stop has begun */
	writer_submit(w, &t[DRAIN].it);
	CHECK_INT(atomic_load(&t[DRAIN].answered), 1);	/* at once */
	CHECK_INT(t[DRAIN].it.result, STORE_UNAVAILABLE);
	CHECK(pthread_equal(t[DRAIN].answered_on, pthread_self()));
	CHECK_INT(atomic_load(&t[1].answered), 0);	/* still waiting */
	CHECK_INT(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	(void)pthread_join(stopper, NULL);
	for (i = 0; i < DRAIN; i++) {
		news += t[i].it.result == STORE_NEW &&
		    atomic_load(&t[i].answered) == 1;
		fifo &= t[i].order == i + 1;	/* t[DRAIN] came first */
	}
	CHECK_INT(news, DRAIN);
	CHECK_INT(t[DRAIN].order, 0);
	CHECK(fifo);
	CHECK_INT(q_int(other, "SELECT count(*) FROM events", NULL), DRAIN);
	(void)sqlite3_close(other);
	waiter_done(&wt);
}

static void
test_heartbeat_while_idle(void)
{
	char path[128];
	struct writer *w;
	int64_t hb0, hb1;

	w = start(path, sizeof(path), DURABILITY_FULL, 1);
	if (w == NULL)
		return;
	hb0 = writer_heartbeat_ms(w);
	CHECK(clock_mono_ms() - hb0 < 1100);
	sleep_ms(2300);
	hb1 = writer_heartbeat_ms(w);
	CHECK(hb1 - hb0 >= 1000);
	CHECK(clock_mono_ms() - hb1 < 1100);	/* fresh while idle */
	writer_stop(w);
}

struct commit_count {
	atomic_int	 calls;
	struct waiter	*wt;
	int		 answers_before;	/* answers seen at the call */
	size_t		 n;			/* items in the last call */
	enum store_result result;		/* of its first */
	int64_t		 id;
	const void	*item;
	atomic_int	 in_call;		/* slow_commit under way */
	int		 slow_ms;
};

static void
commit_count_init(struct commit_count *c, struct waiter *wt, int slow_ms)
{
	memset(c, 0, sizeof(*c));
	atomic_init(&c->calls, 0);
	atomic_init(&c->in_call, 0);
	c->wt = wt;
	c->slow_ms = slow_ms;
}

static void
on_commit(void *arg, struct store_item *const *items, size_t n)
{
	struct commit_count *c = arg;

	(void)pthread_mutex_lock(&c->wt->mu);
	c->answers_before = c->wt->answers;
	(void)pthread_mutex_unlock(&c->wt->mu);
	c->n = n;
	c->result = items[0]->result;
	c->id = items[0]->id;
	c->item = items[0];
	atomic_store(&c->in_call, 1);
	if (c->slow_ms > 0)
		sleep_ms(c->slow_ms);
	atomic_store(&c->in_call, 0);
	atomic_fetch_add(&c->calls, 1);
}

/* Submit one item and wait for its answer. */
static enum store_result
submit1(struct writer *w, struct waiter *wt, struct titem *t, const char *key)
{
	int before;

	(void)pthread_mutex_lock(&wt->mu);
	before = wt->answers;
	(void)pthread_mutex_unlock(&wt->mu);
	titem_init(t, wt, key);
	writer_submit(w, &t->it);
	waiter_wait(wt, before + 1);
	return t->it.result;
}

static struct writer *
restart(const char *path)
{
	struct store *st = NULL;
	struct writer *w = NULL;

	if (!CHECK_INT(store_open(path, STORE_WRITE, DURABILITY_NORMAL, &st),
	    0))
		return NULL;
	if (!CHECK_INT(writer_start(st, 1, &w), 0))
		store_close(st);
	return w;
}

static void
test_on_commit(void)
{
	struct commit_count c;
	struct titem t[4];
	struct waiter wt;
	char path[128];
	struct writer *w;
	sqlite3 *db;

	w = start(path, sizeof(path), DURABILITY_NORMAL, 1);
	if (w == NULL)
		return;
	waiter_init(&wt);
	commit_count_init(&c, &wt, 0);
	writer_set_on_commit(w, on_commit, &c);
	CHECK_INT(submit1(w, &wt, &t[0], "C:1"), STORE_NEW);
	writer_stop(w);		/* joins: on_commit has returned */
	CHECK_INT(atomic_load(&c.calls), 1);
	/* with the batch, results final, before any done() */
	CHECK_INT(c.answers_before, 0);
	CHECK_INT(c.n, 1);
	CHECK_INT(c.result, STORE_NEW);
	CHECK(c.id > 0 && c.id == t[0].it.id);
	CHECK(c.item == &t[0].it);
	/* A duplicate, or new rows with nothing to forward: no call. */
	w = restart(path);
	if (w == NULL) {
		waiter_done(&wt);
		return;
	}
	writer_set_on_commit(w, on_commit, &c);
	CHECK_INT(submit1(w, &wt, &t[1], "C:1"), STORE_DUPLICATE);
	writer_set_forward_pending(w, 0);
	CHECK_INT(submit1(w, &wt, &t[2], "C:2"), STORE_NEW);
	writer_stop(w);
	CHECK_INT(atomic_load(&c.calls), 1);
	db = peek_open(path);
	CHECK_INT(q_int(db, "SELECT count(*) FROM events WHERE event_key = "
	    "'C:2' AND forward_state = 'done'", NULL), 1);
	(void)sqlite3_close(db);
	waiter_done(&wt);
}

/* Setting the callback waits for a call under way: after it returns, the
 * old argument (a forwarder about to be freed) is never used again. */
static void
test_set_on_commit_waits_for_a_call(void)
{
	struct commit_count c;
	struct titem t;
	struct waiter wt;
	char path[128];
	struct writer *w;
	int64_t t0;

	w = start(path, sizeof(path), DURABILITY_NORMAL, 1);
	if (w == NULL)
		return;
	waiter_init(&wt);
	commit_count_init(&c, &wt, 300);
	writer_set_on_commit(w, on_commit, &c);
	titem_init(&t, &wt, "S:1");
	writer_submit(w, &t.it);
	t0 = clock_mono_ms();
	while (!atomic_load(&c.in_call) && clock_mono_ms() - t0 < 5000)
		sleep_ms(1);
	CHECK(atomic_load(&c.in_call));
	writer_set_on_commit(w, NULL, NULL);
	CHECK_INT(atomic_load(&c.calls), 1);	/* it had returned */
	CHECK(!atomic_load(&c.in_call));
	waiter_wait(&wt, 1);
	writer_stop(w);
	CHECK_INT(atomic_load(&c.calls), 1);
	waiter_done(&wt);
}

static int
refuse_commit(void *arg)
{
	return atomic_load((atomic_int *)arg);
}

static void
test_healthy_follows_last_batch(void)
{
	struct store *st = NULL;
	struct writer *w = NULL;
	atomic_int refuse;
	struct titem t[2];
	struct waiter wt;
	char path[128];

	if (!CHECK_INT(store_open(new_path(path, sizeof(path)), STORE_WRITE,
	    DURABILITY_FULL, &st), 0))
		return;
	atomic_init(&refuse, 1);
	/* Set before the thread starts; the hook then runs on it. */
	(void)sqlite3_commit_hook(store_db(st), refuse_commit, &refuse);
	if (!CHECK_INT(writer_start(st, 1, &w), 0)) {
		store_close(st);
		return;
	}
	waiter_init(&wt);
	/* The start's own probe commits a row: refused too. */
	CHECK_INT(writer_healthy(w), -1);
	CHECK_INT(submit1(w, &wt, &t[0], "H:1"), STORE_UNAVAILABLE);
	CHECK_INT(writer_healthy(w), -1);
	atomic_store(&refuse, 0);
	CHECK_INT(submit1(w, &wt, &t[1], "H:1"), STORE_NEW);
	CHECK_INT(writer_healthy(w), 0);
	writer_stop(w);
	writer_stop(NULL);
	waiter_done(&wt);
}

/* Poll until writer_healthy() is `want` or ms pass; the time it took. */
static int64_t
until_healthy(struct writer *w, int want, int ms)
{
	int64_t t0 = clock_mono_ms();

	while (writer_healthy(w) != want && clock_mono_ms() - t0 < ms)
		sleep_ms(20);
	return clock_mono_ms() - t0;
}

/* After a failed write the writer's ticks find out by themselves, with a
 * probe that commits a row, that the database takes writes again: no
 * webhook needed. */
static void
test_recovers_while_idle(void)
{
	struct store *st = NULL;
	struct writer *w = NULL;
	struct writer_health h;
	atomic_int refuse;
	struct titem t;
	struct waiter wt;
	char path[128];

	if (!CHECK_INT(store_open(new_path(path, sizeof(path)), STORE_WRITE,
	    DURABILITY_FULL, &st), 0))
		return;
	atomic_init(&refuse, 0);
	(void)sqlite3_commit_hook(store_db(st), refuse_commit, &refuse);
	if (!CHECK_INT(writer_start(st, 1, &w), 0)) {
		store_close(st);
		return;
	}
	waiter_init(&wt);
	CHECK_INT(writer_healthy(w), 0);
	atomic_store(&refuse, 1);
	CHECK_INT(submit1(w, &wt, &t, "I:1"), STORE_UNAVAILABLE);
	writer_health(w, &h);
	CHECK_INT(h.state, WRITER_STORE_UNAVAILABLE);
	CHECK_STR(writer_store_name(h.state), "unavailable");
	CHECK(h.detail[0] != '\0');
	sleep_ms(1500);
	CHECK_INT(writer_healthy(w), -1);	/* still refused: probes fail */
	atomic_store(&refuse, 0);
	CHECK(until_healthy(w, 0, 5000) < 2500);	/* a tick or two */
	writer_health(w, &h);
	CHECK_STR(writer_store_name(h.state), "ok");
	CHECK_STR(h.detail, "");
	CHECK(h.wal_bytes > 0);
	writer_stop(w);
	waiter_done(&wt);
}

/* The WAL deleted under the writer: the batch is answered 503, the state
 * is "moved", the writer asks for a reopen (its eventfd), and after
 * writer_reopen() every acknowledged event is in the database file. */
static void
test_moved_wal_reopens(void)
{
	struct writer_health h;
	struct pollfd pfd;
	struct titem t[3];
	struct waiter wt;
	char path[128], wal[160];
	struct writer *w;
	uint64_t n;
	sqlite3 *db;

	w = start(path, sizeof(path), DURABILITY_FULL, 0);
	if (w == NULL)
		return;
	waiter_init(&wt);
	CHECK_INT(submit1(w, &wt, &t[0], "M:acked"), STORE_NEW);
	(void)snprintf(wal, sizeof(wal), "%s-wal", path);
	CHECK_INT(unlink(wal), 0);
	CHECK_INT(submit1(w, &wt, &t[1], "M:during"), STORE_UNAVAILABLE);
	writer_health(w, &h);
	CHECK_STR(writer_store_name(h.state), "moved");
	CHECK_STR(h.detail, "the WAL file was deleted");
	pfd.fd = writer_reopen_fd(w);
	pfd.events = POLLIN;
	CHECK_INT(poll(&pfd, 1, 5000), 1);
	CHECK_INT(read(pfd.fd, &n, sizeof(n)), (ssize_t)sizeof(n));
	CHECK_INT(writer_reopen(w), 0);
	CHECK_INT(writer_healthy(w), 0);
	CHECK_INT(access(wal, F_OK), 0);
	CHECK_INT(submit1(w, &wt, &t[2], "M:after"), STORE_NEW);
	writer_stop(w);
	db = peek_open(path);
	CHECK_INT(q_int(db, "SELECT count(*) FROM events WHERE event_key IN "
	    "('M:acked', 'M:after')", NULL), 2);
	(void)sqlite3_close(db);
	waiter_done(&wt);
}

int
main(void)
{
	int rc;

	if (storetest_init() == -1)
		return 1;
	RUN(test_many_threads_full);
	RUN(test_many_threads_normal);
	RUN(test_done_after_visible);
	RUN(test_stop_drains_queue);
	RUN(test_heartbeat_while_idle);
	RUN(test_on_commit);
	RUN(test_set_on_commit_waits_for_a_call);
	RUN(test_healthy_follows_last_batch);
	RUN(test_recovers_while_idle);
	RUN(test_moved_wal_reopens);
	rc = check_finish("test_writer");
	storetest_cleanup();
	return rc;
}
