/* forward.c - the outbox worker (DESIGN "Forwarding"): takes pending events
 * from the events table and delivers them to the hook or the unix socket, at
 * least once, at most forward_concurrency at a time, one at a time and in
 * receipt order per order_id, retrying with backoff.
 *
 * Threads: one dispatcher, which alone owns the forwarder's struct store,
 * and the workers. The dispatcher works in rounds (forward_round.h): one
 * transaction records what finished and claims what is due; the new jobs go
 * to the workers only after that commit. It keeps up to AHEAD times
 * forward_concurrency claimed, so a worker that finishes finds its next job
 * waiting (a claimed job holds its order like a running one), and it records
 * finished deliveries in batches (done_due); a commit of new events wakes it
 * only when it has room for a claim. Workers never
 * touch the database: for hook:PATH, forward_concurrency threads each run
 * one hook at a time; for unix:PATH, one thread keeps one connection with
 * up to forward_concurrency envelopes ahead of their answers (usock.h).
 *
 * Shared state is under `mu`: the job queue (dispatcher -> workers), the done
 * list (workers -> dispatcher), counters, and the flags set by other threads
 * (wake, reload, stop). The in-flight list is changed only by the dispatcher
 * (under mu, since forward_stop reads the counter) and read by it alone.
 * `set` (the forwarding settings) is read by workers while they run and is
 * replaced only while no worker exists (reload quiesces first).
 *
 * Must not: share the store with another thread, hold mu across a database
 * call or a delivery, start a delivery before its claim is committed or
 * after the stop began, wait by sleeping, or log a body. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "clock.h"
#include "deliver.h"
#include "forward.h"
#include "forward_round.h"
#include "hook_guard.h"
#include "log.h"
#include "store.h"
#include "store_outbox.h"
#include "usock.h"

#define MAX_WORKERS	64	/* config.c bounds forward_concurrency too */
#define IDLE_WAIT_MS	1000	/* longest wait: heartbeat, replays by cfhookctl */
/* A finished delivery is recorded within this, or as soon as a worker runs
 * out of claimed jobs: one round, one fsync, for several outcomes. */
#define BATCH_MS	50
/* Claims kept in flight per delivery slot: the rest wait, claimed, for a
 * worker, so the workers never wait for a round and a round records many
 * outcomes (FORWARD_MAX_CLAIMED caps it). */
#define AHEAD		32

_Static_assert(MAX_WORKERS < FORWARD_MAX_CLAIMED,
    "room for more claims than workers");

struct settings {
	enum forward_kind kind;
	char	*path;
	unsigned timeout_s;
	unsigned concurrency;
	unsigned max_attempts;
	unsigned backoff_s;
};

struct worker {
	struct forward *fwd;
	pthread_t thread;
};

struct forward {
	pthread_mutex_t mu;
	pthread_cond_t wake;		/* dispatcher: see `woken`, `done` */
	pthread_cond_t work;		/* workers: a job queued, or quit */
	pthread_cond_t idle;		/* forward_stop: in flight went down */
	/* under mu */
	struct forward_job *queue, **queue_tail;
	struct forward_job *done;
	unsigned nflight;		/* claimed and not yet recorded */
	unsigned busy;			/* claimed and not yet delivered */
	unsigned ndone;			/* jobs on `done` */
	int64_t	 done_since;		/* mono ms: `done` became non-empty */
	unsigned slots;			/* deliveries at once */
	unsigned limit;			/* most claims in flight at once */
	int	 woken, stopping, quit, workers_quit;
	int	 claims_over;		/* the dispatcher saw `stopping` */
	struct settings *next_set;	/* forward_reload, waiting to apply */
	/* dispatcher only (see the top) */
	struct forward_job *flight;
	struct forward_job *unrecorded;	/* outcome not stored yet: retried */
	struct settings set;
	struct store *st;
	struct forward_round round;	/* its outbox, cursor, scans */
	struct worker workers[MAX_WORKERS];
	unsigned nworkers;		/* threads: hook workers, or the socket's */
	struct usock *us;		/* FORWARD_UNIX: its thread's alone */
	/* fixed while the threads run */
	char	*database;
	enum durability durability;
	int	 cancel_fd;		/* eventfd: readable = interrupt deliveries */
	int	 kick_fd;		/* eventfd: the socket thread has news */
	struct hook_guard *guard;	/* hooks die with the daemon */
	atomic_int cancelled;
	_Atomic int64_t heartbeat;
	pthread_t dispatcher;
	atomic_int running;		/* the dispatcher thread exists */
};

static void
settings_done(struct settings *s)
{
	free(s->path);
	s->path = NULL;
}

static int
settings_from(const struct config *cfg, struct settings *s)
{
	memset(s, 0, sizeof(*s));
	s->kind = cfg->forward_kind;
	if (s->kind != FORWARD_NONE) {
		s->path = strdup(cfg->forward_path);
		if (s->path == NULL)
			return -1;
	}
	s->timeout_s = cfg->forward_timeout_s;
	s->concurrency = cfg->forward_concurrency;
	if (s->concurrency < 1)
		s->concurrency = 1;
	if (s->concurrency > MAX_WORKERS)
		s->concurrency = MAX_WORKERS;
	s->max_attempts = cfg->forward_max_attempts;
	s->backoff_s = cfg->forward_backoff_s;
	return 0;
}

/* A claimed job that a stop catches before it started: its claim is
 * undone (no attempt was made). */
static void
unstart(struct forward_job *j)
{
	j->result = DELIVER_UNSTARTED;
	(void)snprintf(j->reason, sizeof(j->reason), "not started");
}

/* Every forwarder thread blocks every signal: they go to the main thread
 * (signalfd), and a SIGPIPE can only be pending here, never fatal. */
static int
spawn_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int err;

	(void)sigfillset(&all);
	(void)pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(t, NULL, fn, arg);
	(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err != 0)
		log_error("forward: cannot start a thread: %s", strerror(err));
	return err == 0 ? 0 : -1;
}

/* The socket thread waits in poll(), not on a condition: tell it about
 * new jobs, the stop and quit. */
static void
kick(struct forward *f)
{
	uint64_t one = 1;

	if (f->kick_fd >= 0 && write(f->kick_fd, &one, sizeof(one)) == -1 &&
	    errno != EAGAIN)
		log_error("forward: eventfd: %s", strerror(errno));
}

/* Under mu: whether the finished deliveries should be recorded now (and
 * more claimed): a worker is about to run out of claimed jobs, one waited
 * BATCH_MS, or a stop or reload waits for them. Else they wait for
 * company: one round, one fsync, for several. */
static int
done_due(const struct forward *f, int64_t now)
{
	return f->done != NULL && (f->busy < f->slots ||
	    now - f->done_since >= BATCH_MS || f->stopping ||
	    f->next_set != NULL);
}

/* Under mu: a job's delivery is over; the dispatcher records it. It is
 * woken for the first of a batch (to time it) and when the batch is due,
 * not for every job in between. */
static void
job_delivered(struct forward *f, struct forward_job *j)
{
	int first = f->done == NULL;

	if (first)
		f->done_since = clock_mono_ms();
	f->ndone++;
	j->next = f->done;
	f->done = j;
	f->busy--;
	/* (the batch's age is the dispatcher's timer, not ours) */
	if (first || done_due(f, f->done_since))
		(void)pthread_cond_signal(&f->wake);
	if (f->busy == 0)
		(void)pthread_cond_broadcast(&f->idle);
}

/* One hook run; the result and reason go into the job. */
static void
run_hook(struct worker *w, struct forward_job *j)
{
	const struct settings *s = &w->fwd->set;
	struct deliver_hook t = { s->path, (int)s->timeout_s * 1000,
	    w->fwd->cancel_fd, w->fwd->guard };

	j->reason[0] = '\0';
	if (atomic_load(&w->fwd->cancelled)) {
		unstart(j);
		return;
	}
	j->result = deliver_hook(&t, &j->row, j->reason, sizeof(j->reason));
}

static void *
hook_main(void *arg)
{
	struct worker *w = arg;
	struct forward *f = w->fwd;
	struct forward_job *j;

	(void)pthread_mutex_lock(&f->mu);
	for (;;) {
		while (f->queue == NULL && !f->workers_quit)
			(void)pthread_cond_wait(&f->work, &f->mu);
		if (f->queue == NULL)
			break;		/* quit, and nothing left to do */
		j = f->queue;
		f->queue = j->next;
		if (f->queue == NULL)
			f->queue_tail = &f->queue;
		(void)pthread_mutex_unlock(&f->mu);
		run_hook(w, j);
		(void)pthread_mutex_lock(&f->mu);
		job_delivered(f, j);
	}
	(void)pthread_mutex_unlock(&f->mu);
	return NULL;
}

/* usock_done_fn: an envelope's answer (or failure) is in. */
static void
sock_done(void *arg, void *cookie, enum usock_result r, const char *reason)
{
	static const enum deliver_result result[] = {
		[USOCK_OK] = DELIVER_OK,
		[USOCK_FAILED] = DELIVER_FAILED,
		[USOCK_TIMEOUT] = DELIVER_TIMEOUT,
		[USOCK_UNANSWERED] = DELIVER_UNANSWERED,
		[USOCK_CANCELLED] = DELIVER_INTERRUPTED,
		[USOCK_UNSENT] = DELIVER_UNSTARTED,
	};
	struct forward *f = arg;
	struct forward_job *j = cookie;

	j->result = result[r];
	(void)snprintf(j->reason, sizeof(j->reason), "%s",
	    reason != NULL ? reason : "");
	(void)pthread_mutex_lock(&f->mu);
	job_delivered(f, j);
	(void)pthread_mutex_unlock(&f->mu);
}

/* Hands queued jobs to the connection, in claim order. */
static void
sock_push(struct forward *f, struct forward_job *list)
{
	struct forward_job *j, *next;
	size_t len = 0;
	char *env;

	for (j = list; j != NULL; j = next) {
		next = j->next;
		j->next = NULL;
		env = deliver_envelope(&j->row, &len);
		if (env == NULL ||
		    usock_push(f->us, env, len, j->row.id, j) == -1)
			sock_done(f, j, USOCK_FAILED, "out of memory");
	}
}

/* The unix:PATH thread: one connection, up to forward_concurrency
 * envelopes on it ahead of their answers (usock.h). */
static void *
sock_main(void *arg)
{
	struct forward *f = ((struct worker *)arg)->fwd;
	struct forward_job *list;
	int quit, stopping;

	for (;;) {
		(void)pthread_mutex_lock(&f->mu);
		list = f->queue;
		f->queue = NULL;
		f->queue_tail = &f->queue;
		quit = f->workers_quit;
		stopping = f->stopping;
		(void)pthread_mutex_unlock(&f->mu);
		sock_push(f, list);
		if (stopping)	/* no delivery starts after the stop began */
			usock_drop_unsent(f->us, sock_done, f);
		if (quit)
			break;
		/* cancel_fd stays readable once written: with nothing left
		 * to cancel, wait for news only. */
		usock_run(f->us, f->kick_fd, usock_pending(f->us) > 0 ?
		    f->cancel_fd : -1, IDLE_WAIT_MS, sock_done, f);
	}
	return NULL;
}

static void
stop_workers(struct forward *f)
{
	unsigned i;

	(void)pthread_mutex_lock(&f->mu);
	f->workers_quit = 1;
	(void)pthread_cond_broadcast(&f->work);
	(void)pthread_mutex_unlock(&f->mu);
	kick(f);
	for (i = 0; i < f->nworkers; i++)
		(void)pthread_join(f->workers[i].thread, NULL);
	f->nworkers = 0;
	/* Whatever is still on the connection (nothing, after a drain or
	 * before a reload) is reported; the stop frees those jobs. */
	usock_free(f->us, sock_done, f);
	f->us = NULL;
	(void)pthread_mutex_lock(&f->mu);
	f->workers_quit = 0;
	f->slots = 0;
	f->limit = 0;
	(void)pthread_mutex_unlock(&f->mu);
}

static int
start_one(struct forward *f, void *(*fn)(void *))
{
	struct worker *w = &f->workers[f->nworkers];

	w->fwd = f;
	if (spawn_thread(&w->thread, fn, w) == -1)
		return -1;
	f->nworkers++;
	return 0;
}

/* Hooks: one worker per allowed concurrent delivery; on failure the ones
 * started keep running (fewer deliveries at once, never more). A socket:
 * one thread and one connection. The dispatcher keeps up to AHEAD times as
 * many jobs claimed as may be delivered at once. */
static int
start_workers(struct forward *f)
{
	unsigned slots = 0;
	int rc = 0;

	if (f->set.kind == FORWARD_HOOK) {
		/* Started now, so that it shows beside the daemon; a failure
		 * is retried at each spawn (and reported there). */
		(void)hook_guard_start(f->guard);
		while (rc == 0 && f->nworkers < f->set.concurrency)
			rc = start_one(f, hook_main);
		slots = f->nworkers;
	} else if (f->set.kind == FORWARD_UNIX) {
		f->us = usock_new(f->set.path, f->set.concurrency,
		    (int)f->set.timeout_s * 1000);
		if (f->us == NULL) {
			log_error("forward: out of memory");
			return -1;
		}
		rc = start_one(f, sock_main);
		slots = f->nworkers > 0 ? f->set.concurrency : 0;
	}
	(void)pthread_mutex_lock(&f->mu);
	f->slots = slots;
	f->limit = AHEAD * slots < FORWARD_MAX_CLAIMED ? AHEAD * slots :
	    FORWARD_MAX_CLAIMED;
	(void)pthread_mutex_unlock(&f->mu);
	return rc;
}

/* skip() for store_outbox_due: an event in flight, or any event of an order
 * with a delivery in flight (never two at once for one order_id). The jobs a
 * round records count too: it looks before it writes. */
static int
in_flight(void *arg, int64_t id, const char *order_id)
{
	const struct forward *f = arg;
	const struct forward_job *j;

	for (j = f->flight; j != NULL; j = j->flight_next) {
		if (j->row.id == id)
			return 1;
		if (order_id != NULL && j->row.order_id != NULL &&
		    strcmp(order_id, j->row.order_id) == 0)
			return 1;
	}
	return 0;
}

static void
flight_remove(struct forward *f, struct forward_job *j)
{
	struct forward_job **p;

	for (p = &f->flight; *p != NULL; p = &(*p)->flight_next) {
		if (*p == j) {
			*p = j->flight_next;
			return;
		}
	}
}

/* The finished jobs, older ones (not stored last time) first; their count
 * in *n. */
static struct forward_job *
take_done(struct forward *f, unsigned *n)
{
	struct forward_job *list, *j;

	(void)pthread_mutex_lock(&f->mu);
	list = f->done;
	f->done = NULL;
	f->ndone = 0;
	(void)pthread_mutex_unlock(&f->mu);
	if (f->unrecorded != NULL) {
		for (j = f->unrecorded; j->next != NULL; j = j->next)
			continue;
		j->next = list;
		list = f->unrecorded;
		f->unrecorded = NULL;
	}
	for (*n = 0, j = list; j != NULL; j = j->next)
		(*n)++;
	return list;
}

/* The round is durable: the finished jobs leave, the claimed ones go to
 * the workers (or, when the stop began meanwhile, are recorded as
 * interrupted next round: forward_stop no longer waits for new
 * deliveries). */
static void
hand_out(struct forward *f, struct forward_job *done, unsigned ndone,
    struct forward_job *claimed)
{
	struct forward_job *j, *next;

	(void)pthread_mutex_lock(&f->mu);
	for (j = done; j != NULL; j = j->next)
		flight_remove(f, j);
	f->nflight -= ndone;
	for (j = claimed; j != NULL; j = next) {
		next = j->next;
		j->next = NULL;
		j->flight_next = f->flight;
		f->flight = j;
		f->nflight++;
		f->busy++;
		if (!j->loaded || f->stopping) {
			if (j->loaded)
				unstart(j);
			job_delivered(f, j);	/* recorded next round */
			continue;
		}
		*f->queue_tail = j;
		f->queue_tail = &j->next;
	}
	(void)pthread_cond_broadcast(&f->work);
	if (f->nflight == 0)
		(void)pthread_cond_broadcast(&f->idle);
	(void)pthread_mutex_unlock(&f->mu);
	if (claimed != NULL)
		kick(f);
	forward_job_free_list(done);
}

/* One round (forward_round.h). Claims only while `claiming` (not while
 * stopping or reloading), as many as the finished jobs leave room for.
 * Returns how long the dispatcher may wait. */
static int64_t
dispatch_round(struct forward *f, int claiming)
{
	struct forward_job *done, *claimed = NULL;
	unsigned ndone = 0, room = 0;
	int64_t wait_ms = IDLE_WAIT_MS;

	done = take_done(f, &ndone);
	(void)pthread_mutex_lock(&f->mu);
	if (claiming && f->nflight - ndone < f->limit)
		room = f->limit - (f->nflight - ndone);
	(void)pthread_mutex_unlock(&f->mu);
	f->round.max_attempts = f->set.max_attempts;
	f->round.backoff_s = f->set.backoff_s;
	if (forward_round_run(&f->round, done, room, in_flight, f, &claimed,
	    &wait_ms) == -1) {
		f->unrecorded = done;	/* their orders stay blocked */
		return wait_ms;
	}
	hand_out(f, done, ndone, claimed);
	return wait_ms;
}

/* forward_reload's settings, once nothing is in flight: the workers of the
 * old settings stop, new ones start. */
static void
apply_reload(struct forward *f)
{
	struct settings *ns;

	(void)pthread_mutex_lock(&f->mu);
	ns = f->next_set;
	f->next_set = NULL;
	(void)pthread_mutex_unlock(&f->mu);
	if (ns == NULL)
		return;
	stop_workers(f);
	settings_done(&f->set);
	f->set = *ns;
	free(ns);
	if (start_workers(f) == -1)
		log_error("forward: only %u of %u workers running", f->nworkers,
		    f->set.concurrency);
	log_info("forward: now %s%s%s, concurrency %u, timeout %u s, "
	    "%u attempts, backoff %u s",
	    f->set.kind == FORWARD_HOOK ? "hook:" :
	    f->set.kind == FORWARD_UNIX ? "unix:" : "none",
	    f->set.path != NULL ? f->set.path : "", "", f->set.concurrency,
	    f->set.timeout_s, f->set.max_attempts, f->set.backoff_s);
}

static struct timespec
mono_timespec(int64_t ms)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	return ts;
}

/* Until forward_wake, finished deliveries due (done_due), stop or reload,
 * or wait_ms. */
static void
wait_for_work(struct forward *f, int64_t wait_ms)
{
	int64_t until = clock_mono_ms() + wait_ms, now;
	struct timespec ts;

	(void)pthread_mutex_lock(&f->mu);
	atomic_store(&f->heartbeat, clock_mono_ms());
	while (!f->woken && !f->quit && !done_due(f, now = clock_mono_ms()) &&
	    now < until) {
		ts = mono_timespec(f->done != NULL &&
		    f->done_since + BATCH_MS < until ?
		    f->done_since + BATCH_MS : until);
		(void)pthread_cond_timedwait(&f->wake, &f->mu, &ts);
	}
	f->woken = 0;
	atomic_store(&f->heartbeat, clock_mono_ms());
	(void)pthread_mutex_unlock(&f->mu);
}

static void *
dispatch_main(void *arg)
{
	struct forward *f = arg;
	int64_t wait_ms;
	int quit, reload, claiming;

	for (;;) {
		(void)pthread_mutex_lock(&f->mu);
		if (f->stopping && !f->claims_over) {
			f->claims_over = 1;	/* drain() waits for this */
			(void)pthread_cond_broadcast(&f->idle);
		}
		quit = f->quit;
		reload = f->next_set != NULL && f->nflight == 0;
		/* Reload pending or stopping: claim nothing new. */
		claiming = !f->stopping && f->next_set == NULL;
		(void)pthread_mutex_unlock(&f->mu);
		if (quit)
			break;
		if (reload) {
			apply_reload(f);
			continue;
		}
		wait_ms = dispatch_round(f, claiming);
		wait_for_work(f, wait_ms);
	}
	(void)dispatch_round(f, 0);	/* what finished during the stop */
	return NULL;
}

static int
init_sync(struct forward *f)
{
	pthread_condattr_t ca;

	if (pthread_condattr_init(&ca) != 0)
		return -1;
	/* Deadlines are monotonic: a wall-clock step must not stall us. */
	(void)pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	(void)pthread_mutex_init(&f->mu, NULL);
	(void)pthread_cond_init(&f->wake, &ca);
	(void)pthread_cond_init(&f->work, &ca);
	(void)pthread_cond_init(&f->idle, &ca);
	(void)pthread_condattr_destroy(&ca);
	return 0;
}

/* The store, the workers and the dispatcher for a forward target. */
static int
start_machine(struct forward *f)
{
	int n;

	if (f->st == NULL && store_open(f->database, STORE_READ, f->durability,
	    &f->st) == -1)
		return -1;
	if (f->round.ob == NULL && store_outbox_open(f->st, f->durability,
	    &f->round.ob) == -1)
		return -1;
	f->round.cursor = 0;
	f->round.full_scan_at = 0;
	n = store_outbox_recover(f->round.ob);
	if (n > 0)
		log_warning("forward: %d deliver%s cut short by a restart; "
		    "those events go out again", n, n == 1 ? "y was" : "ies were");
	if (f->cancel_fd == -1)
		f->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (f->kick_fd == -1)
		f->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (f->cancel_fd == -1 || f->kick_fd == -1) {
		log_error("forward: eventfd: %s", strerror(errno));
		return -1;
	}
	if (start_workers(f) == -1 && f->nworkers == 0)
		return -1;
	/* Fresh: a reload from forward = none starts us long after
	 * forward_start, and the watchdog must not read that as stuck. */
	atomic_store(&f->heartbeat, clock_mono_ms());
	if (spawn_thread(&f->dispatcher, dispatch_main, f) == -1) {
		stop_workers(f);	/* nothing may run without a dispatcher */
		return -1;
	}
	atomic_store(&f->running, 1);
	return 0;
}

int
forward_start(const struct config *cfg, struct forward **ret)
{
	struct forward *f = calloc(1, sizeof(*f));

	if (f == NULL || init_sync(f) == -1) {
		log_error("forward: out of memory");
		free(f);
		return -1;
	}
	f->queue_tail = &f->queue;
	f->cancel_fd = -1;
	f->kick_fd = -1;
	f->durability = cfg->durability;
	atomic_store(&f->heartbeat, clock_mono_ms());
	f->database = strdup(cfg->database);
	f->guard = hook_guard_new();
	if (f->database == NULL || f->guard == NULL ||
	    settings_from(cfg, &f->set) == -1) {
		log_error("forward: out of memory");
		goto fail;
	}
	if (f->set.kind != FORWARD_NONE && start_machine(f) == -1)
		goto fail;
	if (f->set.kind != FORWARD_NONE)
		log_info("forward: to %s%s, concurrency %u, timeout %u s",
		    f->set.kind == FORWARD_HOOK ? "hook:" : "unix:",
		    f->set.path, f->set.concurrency, f->set.timeout_s);
	*ret = f;
	return 0;
fail:
	forward_stop(f, 0);
	return -1;
}

void
forward_wake(struct forward *f)
{
	if (f == NULL || !atomic_load(&f->running))
		return;
	(void)pthread_mutex_lock(&f->mu);
	/* Full: a finishing delivery wakes the dispatcher anyway, and until
	 * then it could claim nothing. */
	if (f->nflight < f->limit) {
		f->woken = 1;
		(void)pthread_cond_signal(&f->wake);
	}
	(void)pthread_mutex_unlock(&f->mu);
}

int
forward_reload(struct forward *f, const struct config *cfg)
{
	struct settings *ns;

	if (f == NULL)
		return -1;
	ns = calloc(1, sizeof(*ns));
	if (ns == NULL || settings_from(cfg, ns) == -1) {
		log_error("forward: out of memory");
		free(ns);
		return -1;
	}
	if (!atomic_load(&f->running)) {
		/* Started without a target: nothing runs that could race. */
		settings_done(&f->set);
		f->set = *ns;
		free(ns);
		return f->set.kind == FORWARD_NONE ? 0 : start_machine(f);
	}
	/* The dispatcher applies it once the deliveries under way are
	 * recorded (apply_reload). */
	(void)pthread_mutex_lock(&f->mu);
	if (f->next_set != NULL) {
		settings_done(f->next_set);
		free(f->next_set);
	}
	f->next_set = ns;
	f->woken = 1;
	(void)pthread_cond_signal(&f->wake);
	(void)pthread_mutex_unlock(&f->mu);
	return 0;
}

int64_t
forward_heartbeat_ms(struct forward *f)
{
	if (f == NULL || !atomic_load(&f->running))
		return clock_mono_ms();		/* nothing that could be stuck */
	return atomic_load(&f->heartbeat);
}

/* Under mu: no delivery starts after the stop began. Claimed jobs still
 * waiting for a worker are given back (their claims undone: no attempt was
 * made; the events stay pending). */
static void
interrupt_queue(struct forward *f)
{
	struct forward_job *j;

	while ((j = f->queue) != NULL) {
		f->queue = j->next;
		unstart(j);
		job_delivered(f, j);
	}
	f->queue_tail = &f->queue;
}

/* Stop claiming; wait for the deliveries under way, then interrupt the
 * rest (hooks are killed, sockets closed: their events stay pending with
 * the attempt counted); tell the dispatcher to record what it can and go.
 * "Under way" includes a claim the dispatcher is making right now (it may
 * wait on the database): only once it has seen `stopping` (claims_over)
 * can no new delivery start. */
static void
drain(struct forward *f, int timeout_ms)
{
	struct timespec ts = mono_timespec(clock_mono_ms() + timeout_ms);
	uint64_t one = 1;

	(void)pthread_mutex_lock(&f->mu);
	f->stopping = 1;
	f->woken = 1;
	interrupt_queue(f);
	(void)pthread_cond_signal(&f->wake);
	kick(f);	/* the socket thread drops what it has not sent */
	while (f->nflight > 0 || !f->claims_over) {
		if (pthread_cond_timedwait(&f->idle, &f->mu, &ts) == ETIMEDOUT)
			break;
	}
	/* From here on a job that still reaches a worker (a claim that
	 * outlived the deadline) is interrupted at once (run_hook()). */
	atomic_store(&f->cancelled, 1);
	if (f->busy > 0) {
		log_warning("forward: %u deliver%s still under way after %d ms; "
		    "interrupting", f->busy, f->busy == 1 ? "y" : "ies",
		    timeout_ms);
		if (write(f->cancel_fd, &one, sizeof(one)) == -1)
			log_error("forward: eventfd: %s", strerror(errno));
		while (f->busy > 0)	/* bounded: hooks get TERM, then KILL */
			(void)pthread_cond_wait(&f->idle, &f->mu);
	}
	f->quit = 1;
	(void)pthread_cond_signal(&f->wake);
	(void)pthread_mutex_unlock(&f->mu);
}

void
forward_stop(struct forward *f, int timeout_ms)
{
	if (f == NULL)
		return;
	if (atomic_load(&f->running)) {
		drain(f, timeout_ms);
		(void)pthread_join(f->dispatcher, NULL);
		atomic_store(&f->running, 0);
	}
	stop_workers(f);
	/* Jobs whose outcome could not be stored keep their forward_log row
	 * open; the next start marks it interrupted and sends them again. */
	forward_job_free_list(f->unrecorded);
	forward_job_free_list(f->done);
	forward_job_free_list(f->queue);
	forward_round_done(&f->round);
	store_outbox_close(f->round.ob);
	store_close(f->st);
	hook_guard_free(f->guard);	/* after the workers: no hook runs */
	if (f->cancel_fd >= 0)
		(void)close(f->cancel_fd);
	if (f->kick_fd >= 0)
		(void)close(f->kick_fd);
	settings_done(&f->set);
	if (f->next_set != NULL) {
		settings_done(f->next_set);
		free(f->next_set);
	}
	free(f->database);
	(void)pthread_cond_destroy(&f->wake);
	(void)pthread_cond_destroy(&f->work);
	(void)pthread_cond_destroy(&f->idle);
	(void)pthread_mutex_destroy(&f->mu);
	free(f);
}
