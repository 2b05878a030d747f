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
 * finished deliveries in batches (forward_jobs.h); a commit of new events
 * wakes it only when it has room for a claim. Workers never touch the
 * database: for hook:PATH, forward_concurrency threads each run one hook at
 * a time; for unix:PATH, one thread keeps one connection with up to
 * forward_concurrency envelopes ahead of their answers (usock.h).
 *
 * A claim's attempt is counted before it goes out, but most claims wait a
 * while; a worker marks each one as it starts (forward_marks.h), so that
 * after a crash only those count as attempts and the rest are undone.
 *
 * Shared state is the hand-off (forward_jobs.h, under its mutex), which
 * also guards `next_set`, the settings a reload waits to apply. `set` (the
 * forwarding settings) is read by workers while they run and is replaced
 * only while no worker exists (a reload waits for the flight to land).
 *
 * Must not: share the store with another thread, hold the hand-off's mutex
 * across a database call or a delivery, start a delivery before its claim
 * is committed or after the stop began, wait by sleeping, or log a body. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "clock.h"
#include "deliver.h"
#include "forward.h"
#include "forward_jobs.h"
#include "forward_marks.h"
#include "forward_round.h"
#include "fresh.h"
#include "hook_guard.h"
#include "log.h"
#include "prio.h"
#include "store.h"
#include "store_outbox.h"
#include "thread.h"
#include "usock.h"

#define MAX_WORKERS	64	/* config.c bounds forward_concurrency too */
#define IDLE_WAIT_MS	1000	/* longest wait: heartbeat, replays by cfhookctl */
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
	char	**env;			/* hook_env (a copy), or NULL */
};

struct worker {
	struct forward *fwd;
	pthread_t thread;
};

struct forward {
	struct forward_jobs jobs;	/* the hand-off; its mutex guards
					 * next_set too */
	struct settings *next_set;	/* forward_reload, waiting to apply */
	/* dispatcher only (see the top) */
	struct forward_job *unrecorded;	/* outcome not stored yet: retried */
	struct settings set;
	struct store *st;
	struct forward_round round;	/* its outbox, cursor, scans */
	struct worker workers[MAX_WORKERS];
	unsigned nworkers;		/* threads: hook workers, or the socket's */
	struct usock *us;		/* FORWARD_UNIX: its thread's alone */
	struct forward_marks *marks;	/* entries: dispatcher's; marks:
					 * the workers' */
	/* fixed while the threads run */
	char	*database;
	enum durability durability;
	int	 cancel_fd;		/* eventfd: readable = interrupt deliveries */
	struct hook_guard *guard;	/* hooks die with the daemon */
	struct fresh *fresh;		/* intake's readings (fresh.h) */
	atomic_int cancelled;
	_Atomic int64_t heartbeat;
	pthread_t dispatcher;
	atomic_int running;		/* the dispatcher thread exists */
	int	 jobs_ready;		/* forward_jobs_init succeeded */
};

static void
settings_done(struct settings *s)
{
	free(s->path);
	s->path = NULL;
	config_env_free(s->env);
	s->env = NULL;
}

/* A copy of the config's hook_env: the config is freed at the next
 * reload, while deliveries under way still read these. */
static int
env_copy(char *const *from, char ***ret)
{
	size_t i, n = 0;
	char **env;

	*ret = NULL;
	if (from == NULL)
		return 0;
	while (from[n] != NULL)
		n++;
	env = calloc(n + 1, sizeof(*env));
	if (env == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		env[i] = strdup(from[i]);
		if (env[i] == NULL) {
			config_env_free(env);
			return -1;
		}
	}
	*ret = env;
	return 0;
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
	if (env_copy(cfg->hook_env, &s->env) == -1) {
		settings_done(s);	/* the caller frees no half-built one */
		return -1;
	}
	return 0;
}

/* Every forwarder thread blocks every signal: they go to the main thread
 * (signalfd). Only a hook's run lets the ignored SIGPIPE in, to be
 * discarded (hook.c, pipe_signal()). */
static int
spawn_thread(pthread_t *t, void *(*fn)(void *), void *arg, const char *name)
{
	int err = thread_start(t, fn, arg, name);

	if (err != 0)
		log_error("forward: cannot start a thread: %s", strerror(err));
	return err == 0 ? 0 : -1;
}

/* Intake's reading of the job's body, when the writer left it here
 * (fresh.h) and this row is read as JSON: into buf (zeroed first, for
 * event_done), else NULL and the envelope parses the body. */
static const struct event *
intake_read(struct forward *f, const struct forward_job *j,
    struct event *buf)
{
	const struct event_row *r = &j->row.ev;

	memset(buf, 0, sizeof(*buf));
	if (event_content_is_form(r->content_type) ||
	    fresh_take(f->fresh, r->id, r->body, r->body_len, buf) == -1)
		return NULL;
	return buf;
}

/* One hook run; the result and reason go into the job. */
static void
run_hook(struct worker *w, struct forward_job *j)
{
	const struct settings *s = &w->fwd->set;
	struct deliver_hook t = { s->path, (int)s->timeout_s * 1000,
	    w->fwd->cancel_fd, w->fwd->guard, s->env };
	struct event buf;

	j->reason[0] = '\0';
	if (atomic_load(&w->fwd->cancelled)) {
		/* a claim that outlived the drain: it never starts */
		j->result = DELIVER_UNSTARTED;
		(void)snprintf(j->reason, sizeof(j->reason), "not started");
		return;
	}
	forward_marks_start(w->fwd->marks, j->mark, j->row.log_id);
	j->started_ms = clock_wall_ms();
	j->result = deliver_hook(&t, &j->row, intake_read(w->fwd, j, &buf),
	    j->reason, sizeof(j->reason));
	j->finished_ms = clock_wall_ms();
	event_done(&buf);
}

static void *
hook_main(void *arg)
{
	struct worker *w = arg;
	struct forward_job *j;

	prio_long_slice();	/* intake first (prio.h) */
	while ((j = forward_jobs_next(&w->fwd->jobs)) != NULL) {
		run_hook(w, j);
		forward_jobs_delivered(&w->fwd->jobs, j);
	}
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
	if (j->started_ms > 0)
		j->finished_ms = clock_wall_ms();
	(void)snprintf(j->reason, sizeof(j->reason), "%s",
	    reason != NULL ? reason : "");
	forward_jobs_delivered(&f->jobs, j);
}

/* usock_start_fn: an envelope's first byte is about to go out, or after
 * all did not (its mark goes, and it keeps its claim time). */
static void
sock_start(void *arg, void *cookie, int started)
{
	struct forward *f = arg;
	struct forward_job *j = cookie;

	forward_marks_start(f->marks, j->mark, started ? j->row.log_id : 0);
	j->started_ms = started ? clock_wall_ms() : 0;
}

/* Hands queued jobs to the connection, in claim order. */
static void
sock_push(struct forward *f, struct forward_job *list)
{
	struct forward_job *j, *next;
	struct event buf;
	size_t len = 0;
	char *env;

	for (j = list; j != NULL; j = next) {
		next = j->next;
		j->next = NULL;
		env = deliver_envelope(&j->row, intake_read(f, j, &buf), &len);
		event_done(&buf);
		if (env == NULL ||
		    usock_push(f->us, env, len, j->row.ev.id, j) == -1)
			sock_done(f, j, USOCK_FAILED, "out of memory");
	}
}

/* The unix:PATH thread: one connection, up to forward_concurrency
 * envelopes on it ahead of their answers (usock.h). */
static void *
sock_main(void *arg)
{
	struct forward *f = ((struct worker *)arg)->fwd;
	int quit, stopping;

	prio_long_slice();	/* intake first (prio.h) */
	for (;;) {
		sock_push(f, forward_jobs_take_queue(&f->jobs, &stopping,
		    &quit));
		if (stopping)	/* no delivery starts after the stop began */
			usock_drop_unsent(f->us, sock_done, f);
		if (quit)
			break;
		/* cancel_fd stays readable once written: with nothing left
		 * to cancel, wait for news only. */
		usock_run(f->us, f->jobs.kick_fd, usock_pending(f->us) > 0 ?
		    f->cancel_fd : -1, IDLE_WAIT_MS, sock_done, sock_start, f);
	}
	return NULL;
}

static void
stop_workers(struct forward *f)
{
	unsigned i;

	(void)pthread_mutex_lock(&f->jobs.mu);
	f->jobs.workers_quit = 1;
	(void)pthread_cond_broadcast(&f->jobs.work);
	(void)pthread_mutex_unlock(&f->jobs.mu);
	forward_jobs_kick(&f->jobs);
	for (i = 0; i < f->nworkers; i++)
		(void)pthread_join(f->workers[i].thread, NULL);
	f->nworkers = 0;
	/* Whatever is still on the connection (nothing, after a drain or
	 * before a reload) is reported; the stop frees those jobs. */
	usock_free(f->us, sock_done, f);
	f->us = NULL;
	(void)pthread_mutex_lock(&f->jobs.mu);
	f->jobs.workers_quit = 0;
	(void)pthread_mutex_unlock(&f->jobs.mu);
	forward_jobs_set_slots(&f->jobs, 0, 0);
}

static int
start_one(struct forward *f, void *(*fn)(void *), const char *name)
{
	struct worker *w = &f->workers[f->nworkers];

	w->fwd = f;
	if (spawn_thread(&w->thread, fn, w, name) == -1)
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
			rc = start_one(f, hook_main, "fwd-hook");
		slots = f->nworkers;
	} else if (f->set.kind == FORWARD_UNIX) {
		f->us = usock_new(f->set.path, f->set.concurrency,
		    (int)f->set.timeout_s * 1000);
		if (f->us == NULL) {
			log_error("forward: out of memory");
			return -1;
		}
		rc = start_one(f, sock_main, "fwd-unix");
		slots = f->nworkers > 0 ? f->set.concurrency : 0;
	}
	forward_jobs_set_slots(&f->jobs, slots, AHEAD * slots <
	    FORWARD_MAX_CLAIMED ? AHEAD * slots : FORWARD_MAX_CLAIMED);
	return rc;
}

/* One round (forward_round.h). Claims only while `claiming` (not while
 * stopping or reloading), as many as the finished jobs leave room for.
 * Returns how long the dispatcher may wait. */
static int64_t
dispatch_round(struct forward *f, int claiming)
{
	struct forward_job *done, *claimed = NULL, *j;
	unsigned ndone = 0, room = 0;
	int64_t wait_ms = IDLE_WAIT_MS;

	done = forward_jobs_take_done(&f->jobs, &f->unrecorded, &ndone,
	    claiming, &room);
	f->round.max_attempts = f->set.max_attempts;
	f->round.backoff_s = f->set.backoff_s;
	if (forward_round_run(&f->round, done, room, forward_jobs_in_flight,
	    &f->jobs, &claimed, &wait_ms) == -1) {
		f->unrecorded = done;	/* their orders stay blocked */
		return wait_ms;
	}
	for (j = done; j != NULL; j = j->next)	/* their outcomes are in */
		forward_marks_free(f->marks, j->mark);
	for (j = claimed; j != NULL; j = j->next)
		j->mark = forward_marks_take(f->marks);
	forward_jobs_hand_out(&f->jobs, done, ndone, claimed);
	return wait_ms;
}

/* forward_reload's settings, once nothing is in flight: the workers of the
 * old settings stop, new ones start. */
static void
apply_reload(struct forward *f)
{
	struct settings *ns;

	(void)pthread_mutex_lock(&f->jobs.mu);
	ns = f->next_set;
	f->next_set = NULL;
	f->jobs.reloading = 0;
	(void)pthread_mutex_unlock(&f->jobs.mu);
	if (ns == NULL)
		return;
	stop_workers(f);
	settings_done(&f->set);
	f->set = *ns;
	free(ns);
	if (start_workers(f) == -1)
		log_error("forward: only %u of %u workers running", f->nworkers,
		    f->set.concurrency);
	log_info("forward: now %s%s, concurrency %u, timeout %u s, "
	    "%u attempts, backoff %u s",
	    f->set.kind == FORWARD_HOOK ? "hook:" :
	    f->set.kind == FORWARD_UNIX ? "unix:" : "none",
	    f->set.path != NULL ? f->set.path : "", f->set.concurrency,
	    f->set.timeout_s, f->set.max_attempts, f->set.backoff_s);
}

static void *
dispatch_main(void *arg)
{
	struct forward *f = arg;
	struct forward_jobs *j = &f->jobs;
	int64_t wait_ms;
	int quit, reload, claiming;

	prio_long_slice();	/* intake first (prio.h) */
	for (;;) {
		(void)pthread_mutex_lock(&j->mu);
		if (j->stopping && !j->claims_over) {
			j->claims_over = 1;	/* drain() waits for this */
			(void)pthread_cond_broadcast(&j->idle);
		}
		quit = j->quit;
		reload = j->reloading && j->nflight == 0;
		/* Reload pending or stopping: claim nothing new. */
		claiming = !j->stopping && !j->reloading;
		(void)pthread_mutex_unlock(&j->mu);
		if (quit)
			break;
		if (reload) {
			apply_reload(f);
			continue;
		}
		wait_ms = dispatch_round(f, claiming);
		atomic_store(&f->heartbeat, clock_mono_ms());
		forward_jobs_wait(j, wait_ms);
		atomic_store(&f->heartbeat, clock_mono_ms());
	}
	(void)dispatch_round(f, 0);	/* what finished during the stop */
	return NULL;
}

/* The last run's unfinished claims: those it had started are attempts cut
 * short, the others are undone (forward_marks.h). Then the marks are this
 * run's. */
static void
recover(struct forward *f)
{
	const int64_t *started;
	const char *why;
	char note[96] = "";
	size_t nstarted;
	int n, undone, known;

	known = forward_marks_started(f->marks, &started, &nstarted,
	    &why) == 0;
	if (!known && f->marks != NULL)	/* PostgreSQL: no record, no note */
		(void)snprintf(note, sizeof(note), " (each counts as an "
		    "attempt: %s)", why);
	n = store_outbox_recover(f->round.ob, known ? started : NULL,
	    nstarted, &undone);
	forward_marks_reset(f->marks, n >= 0);
	if (n > 0)
		log_warning("forward: %d deliver%s cut short by a restart; "
		    "those events go out again%s", n,
		    n == 1 ? "y was" : "ies were", note);
	if (undone > 0)
		log_info("forward: %d claim%s had not started when the last "
		    "run ended; undone, no attempt counted", undone,
		    undone == 1 ? "" : "s");
}

/* The store, the workers and the dispatcher for a forward target. */
static int
start_machine(struct forward *f)
{
	if (f->st == NULL && store_open(f->database, STORE_READ, f->durability,
	    &f->st) == -1)
		return -1;
	if (f->round.ob == NULL && store_outbox_open(f->st, f->durability,
	    &f->round.ob) == -1)
		return -1;
	f->round.cursor = 0;
	f->round.full_scan_at = 0;
	if (f->marks == NULL &&
	    forward_marks_open(f->database, &f->marks) == -1)
		return -1;
	recover(f);
	if (f->cancel_fd == -1)
		f->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (f->cancel_fd == -1) {
		log_error("forward: eventfd: %s", strerror(errno));
		return -1;
	}
	if (start_workers(f) == -1 && f->nworkers == 0)
		return -1;
	/* Fresh: a reload from forward = none starts us long after
	 * forward_start, and the watchdog must not read that as stuck. */
	atomic_store(&f->heartbeat, clock_mono_ms());
	if (spawn_thread(&f->dispatcher, dispatch_main, f, "fwd-round") == -1) {
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

	if (f == NULL) {
		log_error("forward: out of memory");
		return -1;
	}
	f->cancel_fd = -1;
	f->jobs.kick_fd = -1;
	if (forward_jobs_init(&f->jobs) == -1)
		goto fail;
	f->jobs_ready = 1;
	f->durability = cfg->durability;
	atomic_store(&f->heartbeat, clock_mono_ms());
	f->database = strdup(cfg->database);
	f->guard = hook_guard_new();
	f->fresh = fresh_new();
	if (f->database == NULL || f->guard == NULL || f->fresh == NULL ||
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
forward_committed(struct forward *f, struct store_item *const *items,
    size_t n)
{
	int64_t now_ms = clock_mono_ms();
	size_t i;

	if (f == NULL || !atomic_load(&f->running))
		return;
	for (i = 0; i < n; i++) {
		if (items[i]->result == STORE_NEW)
			fresh_put(f->fresh, items[i]->id, items[i]->body,
			    items[i]->body_len, items[i]->ev, now_ms);
	}
	(void)pthread_mutex_lock(&f->jobs.mu);
	/* Full: a finishing delivery wakes the dispatcher anyway, and until
	 * then it could claim nothing. */
	if (f->jobs.nflight < f->jobs.limit) {
		f->jobs.woken = 1;
		(void)pthread_cond_signal(&f->jobs.wake);
	}
	(void)pthread_mutex_unlock(&f->jobs.mu);
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
	(void)pthread_mutex_lock(&f->jobs.mu);
	if (f->next_set != NULL) {
		settings_done(f->next_set);
		free(f->next_set);
	}
	f->next_set = ns;
	f->jobs.reloading = 1;
	f->jobs.woken = 1;
	(void)pthread_cond_signal(&f->jobs.wake);
	(void)pthread_mutex_unlock(&f->jobs.mu);
	return 0;
}

int64_t
forward_heartbeat_ms(struct forward *f)
{
	if (f == NULL || !atomic_load(&f->running))
		return clock_mono_ms();		/* nothing that could be stuck */
	return atomic_load(&f->heartbeat);
}

/* Stop claiming; wait for the deliveries under way, then interrupt the
 * rest (hooks are killed, sockets closed: their events stay pending with
 * the attempt counted); tell the dispatcher to record what it can and go.
 * "Under way" includes a claim the dispatcher is making right now (it may
 * wait on the database): only once it has seen the stop (claims_over)
 * can no new delivery start. */
static void
drain(struct forward *f, int timeout_ms)
{
	uint64_t one = 1;
	unsigned busy;

	busy = forward_jobs_drain(&f->jobs, timeout_ms);
	/* From here on a job that still reaches a worker (a claim that
	 * outlived the deadline) does not start (run_hook()). */
	atomic_store(&f->cancelled, 1);
	if (busy > 0) {
		log_warning("forward: %u deliver%s still under way after %d ms; "
		    "interrupting", busy, busy == 1 ? "y" : "ies", timeout_ms);
		if (write(f->cancel_fd, &one, sizeof(one)) == -1)
			log_error("forward: eventfd: %s", strerror(errno));
	}
	forward_jobs_finish(&f->jobs);
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
	if (f->jobs_ready)
		stop_workers(f);
	/* Jobs whose outcome could not be stored keep their forward_log row
	 * open; the next start marks it interrupted and sends them again. */
	forward_job_free_list(f->unrecorded);
	if (f->jobs_ready)
		forward_jobs_destroy(&f->jobs);
	forward_round_done(&f->round);
	store_outbox_close(f->round.ob);
	store_close(f->st);
	forward_marks_close(f->marks);
	hook_guard_free(f->guard);	/* after the workers: no hook runs */
	fresh_free(f->fresh);
	if (f->cancel_fd >= 0)
		(void)close(f->cancel_fd);
	settings_done(&f->set);
	if (f->next_set != NULL) {
		settings_done(f->next_set);
		free(f->next_set);
	}
	free(f->database);
	free(f);
}
