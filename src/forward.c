/* forward.c - the outbox worker (DESIGN "Forwarding"): takes pending events
 * from the events table and delivers them to the hook or the unix socket, at
 * least once, at most forward_concurrency at a time, one at a time and in
 * receipt order per order_id, retrying with backoff.
 *
 * Threads: one dispatcher and forward_concurrency workers. The dispatcher
 * alone owns the forwarder's struct store: it picks due events, counts each
 * attempt (committed before the delivery starts, store_outbox.h), hands the
 * job to a worker and, when the worker is done, records the outcome. Workers
 * never touch the database; they only run the hook or talk to the socket
 * (each worker keeps its own socket connection). So intake is never slowed
 * by a delivery, and a slow hook never holds a database lock.
 *
 * Shared state is under `mu`: the job queue (dispatcher -> workers), the done
 * list (workers -> dispatcher), counters, and the flags set by other threads
 * (wake, reload, stop). The in-flight list is changed only by the dispatcher
 * (under mu, since forward_stop reads the counter) and read by it alone.
 * `set` (the forwarding settings) is read by workers while they run and is
 * replaced only while no worker exists (reload quiesces first).
 *
 * Must not: share the store with another thread, hold mu across a database
 * call or a delivery, wait by sleeping, or log a body. */
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
#include "envelope.h"
#include "forward.h"
#include "hook.h"
#include "log.h"
#include "store.h"
#include "store_outbox.h"
#include "usock.h"

#define MAX_WORKERS	64	/* config.c bounds forward_concurrency too */
#define IDLE_WAIT_MS	1000	/* longest wait: heartbeat, replays by cfhookctl */
#define REASON_MAX	200
#define HOOK_PATH_ENV	"PATH=/usr/local/bin:/usr/bin:/bin"

struct settings {
	enum forward_kind kind;
	char	*path;
	unsigned timeout_s;
	unsigned concurrency;
	unsigned max_attempts;
	unsigned backoff_s;
};

struct job {
	struct outbox_row row;		/* claimed; the attempt is counted */
	enum outbox_outcome outcome;
	char	 reason[REASON_MAX];
	struct job *next;		/* queue, done or unrecorded list */
	struct job *flight_next;	/* in-flight list */
};

struct worker {
	struct forward *fwd;
	pthread_t thread;
	struct usock *us;		/* FORWARD_UNIX: this worker's connection */
};

struct forward {
	pthread_mutex_t mu;
	pthread_cond_t wake;		/* dispatcher: see `woken`, `done` */
	pthread_cond_t work;		/* workers: a job queued, or quit */
	pthread_cond_t idle;		/* forward_stop: in flight went down */
	/* under mu */
	struct job *queue, **queue_tail;
	struct job *done;
	unsigned nflight;		/* claimed and not yet recorded */
	unsigned busy;			/* claimed and not yet delivered */
	int	 woken, stopping, quit, workers_quit;
	struct settings *next_set;	/* forward_reload, waiting to apply */
	/* dispatcher only (see the top) */
	struct job *flight;
	struct job *unrecorded;		/* outcome not stored yet: retried */
	struct settings set;
	struct store *st;
	struct worker workers[MAX_WORKERS];
	unsigned nworkers;
	/* fixed while the threads run */
	char	*database;
	enum durability durability;
	int	 cancel_fd;		/* eventfd: readable = interrupt deliveries */
	atomic_int cancelled;
	_Atomic int64_t heartbeat;
	pthread_t dispatcher;
	int	 running;
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

static void
job_free(struct job *j)
{
	if (j == NULL)
		return;
	store_outbox_row_done(&j->row);
	free(j);
}

static struct log_fields
job_fields(const struct job *j)
{
	struct log_fields lf = { j->row.event_key, j->row.cf_payment_id,
	    j->row.order_id };

	return lf;
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

/* "NAME=value" in a new string; value NULL reads as empty. */
static char *
env_pair(const char *name, const char *value)
{
	size_t n = strlen(name) + strlen(value != NULL ? value : "") + 2;
	char *s = malloc(n);

	if (s != NULL)
		(void)snprintf(s, n, "%s=%s", name, value != NULL ? value : "");
	return s;
}

#define HOOK_ENV_N	10

/* DESIGN "Forwarding": a minimal PATH and the CFHOOK_* variables, nothing
 * inherited from the daemon. */
static int
hook_env(const struct outbox_row *r, char *envp[HOOK_ENV_N + 1])
{
	char id[24], attempt[16];
	int i;

	(void)snprintf(id, sizeof(id), "%" PRId64, r->id);
	(void)snprintf(attempt, sizeof(attempt), "%u", r->attempt);
	envp[0] = strdup(HOOK_PATH_ENV);
	envp[1] = env_pair("CFHOOK_EVENT_ID", id);
	envp[2] = env_pair("CFHOOK_EVENT_KEY", r->event_key);
	envp[3] = env_pair("CFHOOK_TYPE", r->type);
	envp[4] = env_pair("CFHOOK_CF_PAYMENT_ID", r->cf_payment_id);
	envp[5] = env_pair("CFHOOK_ORDER_ID", r->order_id);
	envp[6] = env_pair("CFHOOK_PAYMENT_STATUS", r->payment_status);
	envp[7] = env_pair("CFHOOK_AMOUNT", r->amount);
	envp[8] = env_pair("CFHOOK_CURRENCY", r->currency);
	envp[9] = env_pair("CFHOOK_ATTEMPT", attempt);
	envp[HOOK_ENV_N] = NULL;
	for (i = 0; i < HOOK_ENV_N; i++) {
		if (envp[i] == NULL)
			return -1;
	}
	return 0;
}

static enum outbox_outcome
run_hook(struct worker *w, struct job *j, const char *env, size_t len)
{
	const struct settings *s = &w->fwd->set;
	const struct outbox_row *r = &j->row;
	struct log_fields lf = job_fields(j);
	char *envp[HOOK_ENV_N + 1] = { NULL };
	char *argv[5];
	struct hook_run run;
	enum outbox_outcome res = OUTBOX_FAILED;
	int i;

	/* argv [PATH, type, cf_payment_id, order_id]: "" for a missing one,
	 * so the positions never shift. */
	argv[0] = s->path;
	argv[1] = r->type != NULL ? r->type : "";
	argv[2] = r->cf_payment_id != NULL ? r->cf_payment_id : "";
	argv[3] = r->order_id != NULL ? r->order_id : "";
	argv[4] = NULL;
	if (hook_env(r, envp) == -1) {
		(void)snprintf(j->reason, sizeof(j->reason), "out of memory");
		goto out;
	}
	memset(&run, 0, sizeof(run));
	run.path = s->path;
	run.argv = argv;
	run.envp = envp;
	run.input = env;
	run.input_len = len;
	run.timeout_ms = (int)s->timeout_s * 1000;
	run.cancel_fd = w->fwd->cancel_fd;
	run.fields = &lf;
	switch (hook_run(&run, j->reason, sizeof(j->reason))) {
	case HOOK_OK:
		res = OUTBOX_DELIVERED;
		break;
	case HOOK_CANCELLED:
		res = OUTBOX_INTERRUPTED;
		break;
	case HOOK_FAILED:
		break;
	}
out:
	for (i = 0; i < HOOK_ENV_N; i++)
		free(envp[i]);
	return res;
}

static enum outbox_outcome
run_socket(struct worker *w, struct job *j, const char *env, size_t len)
{
	const struct settings *s = &w->fwd->set;

	switch (usock_deliver(w->us, env, len, (int)s->timeout_s * 1000,
	    w->fwd->cancel_fd, j->reason, sizeof(j->reason))) {
	case USOCK_OK:
		return OUTBOX_DELIVERED;
	case USOCK_CANCELLED:
		return OUTBOX_INTERRUPTED;
	case USOCK_FAILED:
		break;
	}
	return OUTBOX_FAILED;
}

/* One delivery attempt; the outcome and reason go into the job. */
static void
deliver(struct worker *w, struct job *j)
{
	const struct outbox_row *r = &j->row;
	struct envelope_row er = { r->id, r->event_key, r->type,
	    r->cf_payment_id, r->order_id, r->payment_status, r->amount,
	    r->currency, r->content_type, r->body, r->body_len, r->received_at,
	    r->attempt };
	char *env = NULL;
	size_t len = 0;

	j->outcome = OUTBOX_FAILED;
	j->reason[0] = '\0';
	if (atomic_load(&w->fwd->cancelled)) {
		j->outcome = OUTBOX_INTERRUPTED;
		(void)snprintf(j->reason, sizeof(j->reason),
		    "interrupted by shutdown");
		return;
	}
	env = envelope_build(&er, &len);
	if (env == NULL) {
		(void)snprintf(j->reason, sizeof(j->reason), "out of memory");
		return;
	}
	if (w->fwd->set.kind == FORWARD_HOOK)
		j->outcome = run_hook(w, j, env, len);
	else
		j->outcome = run_socket(w, j, env, len);
	free(env);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct forward *f = w->fwd;
	struct job *j;

	pthread_mutex_lock(&f->mu);
	for (;;) {
		while (f->queue == NULL && !f->workers_quit)
			pthread_cond_wait(&f->work, &f->mu);
		if (f->queue == NULL)
			break;		/* quit, and nothing left to do */
		j = f->queue;
		f->queue = j->next;
		if (f->queue == NULL)
			f->queue_tail = &f->queue;
		pthread_mutex_unlock(&f->mu);
		deliver(w, j);
		pthread_mutex_lock(&f->mu);
		j->next = f->done;
		f->done = j;
		f->busy--;
		pthread_cond_signal(&f->wake);
		if (f->busy == 0)
			pthread_cond_broadcast(&f->idle);
	}
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

static void
stop_workers(struct forward *f)
{
	unsigned i;

	pthread_mutex_lock(&f->mu);
	f->workers_quit = 1;
	pthread_cond_broadcast(&f->work);
	pthread_mutex_unlock(&f->mu);
	for (i = 0; i < f->nworkers; i++) {
		(void)pthread_join(f->workers[i].thread, NULL);
		usock_free(f->workers[i].us);
		f->workers[i].us = NULL;
	}
	f->nworkers = 0;
	pthread_mutex_lock(&f->mu);
	f->workers_quit = 0;
	pthread_mutex_unlock(&f->mu);
}

/* One worker per allowed concurrent delivery. On failure the ones started
 * keep running (fewer deliveries at once, never more). */
static int
start_workers(struct forward *f)
{
	struct worker *w;

	if (f->set.kind == FORWARD_NONE)
		return 0;
	while (f->nworkers < f->set.concurrency) {
		w = &f->workers[f->nworkers];
		w->fwd = f;
		w->us = NULL;
		if (f->set.kind == FORWARD_UNIX) {
			w->us = usock_new(f->set.path);
			if (w->us == NULL) {
				log_error("forward: out of memory");
				return -1;
			}
		}
		if (spawn_thread(&w->thread, worker_main, w) == -1) {
			usock_free(w->us);
			w->us = NULL;
			return -1;
		}
		f->nworkers++;
	}
	return 0;
}

/* skip() for store_outbox_due: an event in flight, or any event of an order
 * with a delivery in flight (never two at once for one order_id). */
static int
in_flight(void *arg, int64_t id, const char *order_id)
{
	const struct forward *f = arg;
	const struct job *j;

	for (j = f->flight; j != NULL; j = j->flight_next) {
		if (j->row.id == id)
			return 1;
		if (order_id != NULL && j->row.order_id != NULL &&
		    strcmp(order_id, j->row.order_id) == 0)
			return 1;
	}
	return 0;
}

/* Count the attempt (committed) and queue the job for a worker. Returns 0,
 * or -1 when the database failed (try again on the next round). */
static int
claim_one(struct forward *f, int64_t id)
{
	struct job *j = calloc(1, sizeof(*j));
	enum outbox_claim c;

	if (j == NULL) {
		log_warning("forward: out of memory; will retry");
		return -1;
	}
	c = store_outbox_claim(f->st, id, clock_wall_ms(), &j->row);
	if (c != OUTBOX_CLAIMED) {
		free(j);
		return c == OUTBOX_GONE ? 0 : -1;
	}
	log_event(LOG_LVL_DEBUG, &(struct log_fields){ j->row.event_key,
	    j->row.cf_payment_id, j->row.order_id },
	    "forward: sending %s attempt %u", j->row.event_key, j->row.attempt);
	pthread_mutex_lock(&f->mu);
	j->flight_next = f->flight;
	f->flight = j;
	f->nflight++;
	f->busy++;
	*f->queue_tail = j;
	f->queue_tail = &j->next;
	pthread_cond_signal(&f->work);
	pthread_mutex_unlock(&f->mu);
	return 0;
}

/* Fill up to `free_slots` deliveries. Returns how long the dispatcher may
 * wait before something else becomes due (ms, at most IDLE_WAIT_MS). */
static int64_t
claim(struct forward *f, unsigned free_slots)
{
	struct outbox_due due[MAX_WORKERS];
	int64_t now = clock_wall_ms(), next = 0, wait = IDLE_WAIT_MS;
	size_t n = 0, i;

	if (free_slots > MAX_WORKERS)
		free_slots = MAX_WORKERS;
	if (store_outbox_due(f->st, now, in_flight, f, due, free_slots,
	    &n) == -1)
		return wait;
	for (i = 0; i < n; i++) {
		if (claim_one(f, due[i].id) == -1)
			break;
	}
	store_outbox_due_done(due, n);
	if (n < free_slots &&
	    store_outbox_next_due(f->st, now, &next) == 0 && next - now < wait)
		wait = next - now;
	return wait > 0 ? wait : 1;
}

static void
flight_remove(struct forward *f, struct job *j)
{
	struct job **p;

	for (p = &f->flight; *p != NULL; p = &(*p)->flight_next) {
		if (*p == j) {
			*p = j->flight_next;
			return;
		}
	}
}

static void
log_outcome(const struct job *j, enum outbox_state st, int64_t next_ms)
{
	struct log_fields lf = job_fields(j);
	const char *key = j->row.event_key;
	unsigned n = j->row.attempt;

	switch (st) {
	case OUTBOX_DONE:
		log_event(LOG_LVL_INFO, &lf, "forward: delivered %s attempt %u",
		    key, n);
		break;
	case OUTBOX_RETRY:
		log_event(LOG_LVL_WARNING, &lf, "forward: %s attempt %u failed: "
		    "%s; will retry in %" PRId64 " s", key, n, j->reason,
		    (next_ms - clock_wall_ms() + 999) / 1000);
		break;
	case OUTBOX_DEAD:
		log_event(LOG_LVL_WARNING, &lf, "forward: %s attempt %u failed: "
		    "%s; no attempts left, the event is dead (cfhookctl "
		    "replay sends it again)", key, n, j->reason);
		break;
	case OUTBOX_PENDING:
		log_event(LOG_LVL_WARNING, &lf, "forward: %s attempt %u %s; it "
		    "stays pending and goes out again", key, n, j->reason);
		break;
	case OUTBOX_UNCHANGED:
		log_event(LOG_LVL_INFO, &lf, "forward: %s attempt %u %s, but "
		    "the event was no longer pending (replayed or pruned)",
		    key, n, j->outcome == OUTBOX_DELIVERED ? "delivered" :
		    "failed");
		break;
	}
}

/* Store the outcome of finished deliveries. One that cannot be stored now
 * stays in flight (its order stays blocked) and is retried next round. */
static void
record_done(struct forward *f)
{
	struct outbox_result res;
	struct job *list, *j, *keep = NULL;
	enum outbox_state st;
	int64_t next = 0;
	unsigned recorded = 0;

	pthread_mutex_lock(&f->mu);
	list = f->done;
	f->done = NULL;
	pthread_mutex_unlock(&f->mu);
	for (j = f->unrecorded; j != NULL && j->next != NULL; j = j->next)
		;
	if (j != NULL) {
		j->next = list;
		list = f->unrecorded;
	}
	f->unrecorded = NULL;
	while (list != NULL) {
		j = list;
		list = j->next;
		res = (struct outbox_result){ j->row.id, j->row.log_id,
		    j->outcome, j->reason };
		if (store_outbox_finish(f->st, &res, clock_wall_ms(),
		    f->set.max_attempts, f->set.backoff_s, &st, &next) == -1) {
			j->next = keep;
			keep = j;
			continue;
		}
		log_outcome(j, st, next);
		pthread_mutex_lock(&f->mu);
		flight_remove(f, j);
		pthread_mutex_unlock(&f->mu);
		job_free(j);
		recorded++;
	}
	f->unrecorded = keep;
	pthread_mutex_lock(&f->mu);
	f->nflight -= recorded;
	if (f->nflight == 0)
		pthread_cond_broadcast(&f->idle);
	pthread_mutex_unlock(&f->mu);
}

/* forward_reload's settings, once nothing is in flight: the workers of the
 * old settings stop, new ones start. */
static void
apply_reload(struct forward *f)
{
	struct settings *ns;

	pthread_mutex_lock(&f->mu);
	ns = f->next_set;
	f->next_set = NULL;
	pthread_mutex_unlock(&f->mu);
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
