/* main.c - cfhookd: start-up order, signals, reload, drain on stop.
 *
 * Starts the modules in order (config, secrets, instance lock, database
 * writer, listener and HTTP, forwarder), says READY=1, then waits on a
 * signalfd and the writer's reopen eventfd: SIGHUP reloads secrets and
 * forwarding settings, SIGTERM/SIGINT drain and exit 0, and a writer whose
 * database files left the path gets the other connections closed while it
 * reopens (reopen_store()). Fatal errors only before READY=1. No request
 * handling here. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "forward.h"
#include "http.h"
#include "log.h"
#include "notify.h"
#include "secret.h"
#include "store.h"
#include "store_lock.h"
#include "store_stats.h"
#include "version.h"
#include "writer.h"

#define STATUS_EVERY_MS		10000
#define STATUS_MAX		320	/* a STATUS= line */
#define DRAIN_HTTP_MS		5000	/* in-flight requests at SIGTERM */
#define DRAIN_FORWARD_MS	3000	/* deliveries under way at SIGTERM */
#define HEARTBEAT_SLACK_MS	2000	/* threads tick at least every 1 s */

struct daemon {
	struct config *boot;		/* http borrows it (listener) until exit */
	struct config *cur;		/* the latest reload, or NULL */
	struct secrets *secrets;
	struct writer *writer;
	struct http *http;
	struct forward *forward;
	pthread_mutex_t stats_mu;	/* the stats connection is shared */
	struct store *stats;		/* NULL while the writer reopens */
	int	 lock_fd;		/* the instance lock (store_lock.h) */
	/* Set by the main thread at SIGTERM, read by /healthz on the HTTP
	 * threads. */
	atomic_int stopping;
};

static struct config *
current(struct daemon *d)
{
	return d->cur != NULL ? d->cur : d->boot;
}

static void
usage(FILE *fp)
{
	fprintf(fp, "usage: cfhookd -c FILE [--check]\n"
	    "       cfhookd --version | --help\n\n"
	    "Receives Cashfree webhooks, verifies their signatures, records "
	    "each event once\nin SQLite or PostgreSQL and forwards it to a "
	    "hook or unix socket.\n\n"
	    "  -c, --config FILE  configuration file (key = value lines)\n"
	    "      --check        validate the configuration, secrets, "
	    "database and forward\n"
	    "                     target (creating nothing), then exit 0 or "
	    "1\n"
	    "      --version      print the version\n"
	    "  -h, --help         this text\n");
}

/* Local midnight as unix ms, for "events today". */
static int64_t
today_ms(void)
{
	struct tm tm;
	time_t now = time(NULL);

	if (localtime_r(&now, &tm) == NULL)
		return 0;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	return (int64_t)mktime(&tm) * 1000;
}

static int
counts(struct daemon *d, int64_t since_ms, struct store_counts *c)
{
	int rc = -1;

	pthread_mutex_lock(&d->stats_mu);
	if (d->stats != NULL)
		rc = store_counts(d->stats, since_ms, c);
	pthread_mutex_unlock(&d->stats_mu);
	return rc;
}

/* STATUS=: the counts, after the store's trouble when it has any. */
static void
status_line(struct daemon *d, char *out, size_t n)
{
	struct writer_health h;
	struct store_counts c;
	int w = 0;

	writer_health(d->writer, &h);
	if (h.state != WRITER_STORE_OK) {
		w = snprintf(out, n, "database %s: %s; ",
		    writer_store_name(h.state), h.detail);
		if (w < 0 || (size_t)w >= n)
			return;
	}
	if (counts(d, today_ms(), &c) == -1) {
		(void)snprintf(out + w, n - (size_t)w, "running (database "
		    "counts unavailable)");
		return;
	}
	(void)snprintf(out + w, n - (size_t)w, "%lld events today, %lld "
	    "pending, %lld dead", c.since, c.pending, c.dead);
}

/* The store's own state is the writer's (http_reply.c asks it). */
static int
probe_healthy(void *arg, const char **reason)
{
	struct daemon *d = arg;

	if (atomic_load(&d->stopping)) {
		*reason = "shutting down";
		return 0;
	}
	return 1;
}

static void
probe_outbox(void *arg, long long *pending, long long *dead)
{
	struct daemon *d = arg;
	struct store_counts c;

	/* /metrics needs no "today": a since in the future makes that
	 * count an empty index range, so a scrape costs two small counts. */
	if (counts(d, INT64_MAX, &c) == -1) {
		*pending = *dead = -1;
		return;
	}
	*pending = c.pending;
	*dead = c.dead;
}

static void
wake_forward(void *arg, struct store_item *const *items, size_t n)
{
	forward_committed(arg, items, n);
}

/* The forwarder and the stats connection: the daemon's connections to the
 * database besides the writer's. Stopped while the writer reopens. */
static void
stop_readers(struct daemon *d)
{
	writer_set_on_commit(d->writer, NULL, NULL);
	forward_stop(d->forward, DRAIN_FORWARD_MS);
	d->forward = NULL;
	pthread_mutex_lock(&d->stats_mu);
	store_close(d->stats);
	d->stats = NULL;
	pthread_mutex_unlock(&d->stats_mu);
}

/* (Re)start whichever is not running, once the writer's files are those at
 * the path: opened earlier, they could hold another WAL. The forwarder
 * starts with the boot configuration's database and takes the current
 * forwarding settings. A failure is logged and retried at the next status
 * tick; events wait in the outbox meanwhile. */
static void
start_readers(struct daemon *d)
{
	struct writer_health h;
	struct config *cfg = d->boot;
	struct forward *f = NULL;
	struct store *st = NULL;
	char db[STORE_NAME_MAX];

	writer_health(d->writer, &h);
	if (h.state == WRITER_STORE_MOVED)
		return;
	if (d->stats == NULL && store_open(cfg->database, STORE_READ,
	    cfg->durability, &st) == 0) {
		pthread_mutex_lock(&d->stats_mu);
		d->stats = st;
		pthread_mutex_unlock(&d->stats_mu);
	}
	if (d->forward != NULL || forward_start(cfg, &f) == -1)
		return;
	if (d->cur != NULL && forward_reload(f, d->cur) == -1)
		log_error("forward: the reloaded settings were not applied");
	d->forward = f;
	writer_set_on_commit(d->writer, wake_forward, f);
	log_info("forward: running again on '%s'", store_display_name(
	    cfg->database, db, sizeof(db)));
}

/* The writer's files left the path and it has a database there to use:
 * close every other connection of ours first (one database with two WAL
 * files in one process corrupts it), let the writer swap, then reopen
 * them. Deliveries under way finish or stay pending, as on a stop. */
static void
reopen_store(struct daemon *d)
{
	char db[STORE_NAME_MAX];

	log_info("store: '%s': reopening the database; the forwarder pauses",
	    store_display_name(d->boot->database, db, sizeof(db)));
	stop_readers(d);
	if (writer_reopen(d->writer) == -1)
		return;		/* logged; the writer asks again */
	start_readers(d);
}

/* --check: a hook must be executable; a unix socket's directory must
 * exist (the consumer creates the socket, maybe after we start). */
static int
check_forward(const char *path, const struct config *cfg)
{
	const char *slash;
	struct stat sb;
	char dir[4096];
	int n;

	if (cfg->forward_kind == FORWARD_HOOK &&
	    access(cfg->forward_path, X_OK) == -1) {
		log_error("%s: forward: hook '%s' is not executable: %s", path,
		    cfg->forward_path, strerror(errno));
		return -1;
	}
	if (cfg->forward_kind != FORWARD_UNIX)
		return 0;
	slash = strrchr(cfg->forward_path, '/');
	n = slash == NULL ? snprintf(dir, sizeof(dir), ".") :
	    snprintf(dir, sizeof(dir), "%.*s", slash == cfg->forward_path ? 1 :
	    (int)(slash - cfg->forward_path), cfg->forward_path);
	if (n < 0 || (size_t)n >= sizeof(dir) || stat(dir, &sb) == -1 ||
	    !S_ISDIR(sb.st_mode)) {
		log_error("%s: forward: the directory of socket '%s' does not "
		    "exist", path, cfg->forward_path);
		return -1;
	}
	return 0;
}

/* --check: the same loading code as a start, the database and forward
 * target looked at without creating anything, then a one-line verdict. */
static int
check_only(const char *path)
{
	struct config *cfg = NULL;
	struct secrets *s = NULL;
	char db[64], name[STORE_NAME_MAX];
	int rc = 1;

	if (config_load(path, &cfg) == -1 ||
	    secrets_load(cfg->secret_file, &s) == -1)
		goto out;
	if (store_inspect(cfg->database, db, sizeof(db)) == -1 ||
	    check_forward(path, cfg) == -1)
		goto out;
	printf("%s: configuration ok (%zu secret%s, listen %s, database %s "
	    "(%s), forward %s)\n", path, secrets_count(s),
	    secrets_count(s) == 1 ? "" : "s", cfg->listen,
	    store_display_name(cfg->database, name, sizeof(name)), db,
	    config_forward_name(cfg));
	rc = 0;
out:
	if (rc != 0)
		log_error("%s: configuration has errors", path);
	secrets_free(s);
	config_free(cfg);
	return rc;
}

static int
start(struct daemon *d, const char *path)
{
	struct http_probe probe = { probe_healthy, probe_outbox, d };
	struct store *st = NULL;
	struct config *cfg;
	char db[STORE_NAME_MAX];
	int fd;

	if (config_load(path, &d->boot) == -1)
		return -1;
	cfg = d->boot;
	log_set_level(cfg->log_level);
	if (secrets_load(cfg->secret_file, &d->secrets) == -1)
		return -1;
	if (cfg->forward_kind == FORWARD_HOOK &&
	    access(cfg->forward_path, X_OK) == -1)
		log_warning("forward: hook '%s' is not executable (%s); events "
		    "wait in the outbox", cfg->forward_path, strerror(errno));
	if (cfg->form_field_signature)
		log_warning("form_field_signature = on: forms signed only by "
		    "their signature field are accepted; that scheme lets "
		    "bytes move between field values, so such forms are held "
		    "to strict field grammars and deduplicated by their "
		    "signing string (README \"Verification\")");
	d->lock_fd = store_lock_take(cfg->database);
	if (d->lock_fd == -1)
		return -1;
	if (store_open(cfg->database, STORE_WRITE, cfg->durability, &st) == -1)
		return -1;
	if (writer_start(st, cfg->forward_kind != FORWARD_NONE,
	    &d->writer) == -1) {
		store_close(st);
		return -1;
	}
	if (store_open(cfg->database, STORE_READ, cfg->durability,
	    &d->stats) == -1)
		return -1;
	fd = notify_listen_fd();
	if (fd == -2)
		return -1;
	if (http_start(cfg, fd, d->writer, d->secrets, &probe, &d->http) == -1)
		return -1;
	if (forward_start(cfg, &d->forward) == -1)
		return -1;
	writer_set_on_commit(d->writer, wake_forward, d->forward);
	log_info("cfhookd %s: listening on %s, database '%s', forward %s, "
	    "%zu secret%s", CFHOOK_VERSION, http_listen_name(d->http),
	    store_display_name(cfg->database, db, sizeof(db)),
	    config_forward_name(cfg),
	    secrets_count(d->secrets), secrets_count(d->secrets) == 1 ? "" : "s");
	return 0;
}

/* Keys a reload cannot apply (config.c's table knows which): say so, so that
 * nobody believes a new tolerance or max_body is in force after `systemctl
 * reload`. */
static void
warn_restart_keys(const struct config *run, const struct config *cfg)
{
	char list[400];

	if (config_restart_changes(run, cfg, list, sizeof(list)) > 0)
		log_warning("reload: changed %s: kept as running until a "
		    "restart", list);
}

/* SIGHUP: new secrets, forwarding settings and log level; a broken new
 * configuration changes nothing. Listener, paths and limits need a restart. */
static void
reload(struct daemon *d)
{
	struct config *cfg = NULL;
	struct secrets *s = NULL;
	char status[STATUS_MAX];

	notify_reloading();
	log_info("reload: re-reading '%s'", current(d)->path);
	if (config_load(current(d)->path, &cfg) == -1 ||
	    secrets_load(cfg->secret_file, &s) == -1) {
		log_error("reload: keeping the running configuration");
		goto out;
	}
	warn_restart_keys(d->boot, cfg);
	http_set_secrets(d->http, s);
	secrets_free(d->secrets);
	d->secrets = s;
	s = NULL;
	log_set_level(cfg->log_level);
	writer_set_forward_pending(d->writer, cfg->forward_kind != FORWARD_NONE);
	/* No forwarder while the writer reopens: start_readers() applies
	 * d->cur when it starts one. */
	if (d->forward != NULL && forward_reload(d->forward, cfg) == -1)
		log_error("reload: forwarding settings not applied");
	/* The forwarder and the writer copied what they need; only the boot
	 * configuration stays borrowed (by the listener). */
	config_free(d->cur);
	d->cur = cfg;
	cfg = NULL;
	log_info("reload: done, %zu secret%s", secrets_count(d->secrets),
	    secrets_count(d->secrets) == 1 ? "" : "s");
out:
	secrets_free(s);
	config_free(cfg);
	status_line(d, status, sizeof(status));
	notify_reloaded(status);
}

/* Pings only while the writer and the forwarder make progress: a wedged
 * thread stops them and systemd restarts the service. */
static void
watchdog(struct daemon *d, int64_t interval_ms)
{
	int64_t now = clock_mono_ms(), stale = 2 * interval_ms;

	if (stale < HEARTBEAT_SLACK_MS)
		stale = HEARTBEAT_SLACK_MS;
	if (now - writer_heartbeat_ms(d->writer) > stale) {
		log_warning("watchdog: the database writer is stuck; not pinging");
		return;
	}
	if (now - forward_heartbeat_ms(d->forward) > stale) {
		log_warning("watchdog: the forwarder is stuck; not pinging");
		return;
	}
	notify_watchdog();
}

/* The writer's eventfd fired: clear it, then do what it asks. */
static void
writer_event(struct daemon *d, int fd)
{
	uint64_t n;

	if (read(fd, &n, sizeof(n)) == (ssize_t)sizeof(n))
		reopen_store(d);
}

/* Waits for signals; returns when asked to stop. */
static void
run(struct daemon *d, int sfd)
{
	struct signalfd_siginfo si;
	struct pollfd pfd[2] = {
		{ sfd, POLLIN, 0 },
		{ writer_reopen_fd(d->writer), POLLIN, 0 },
	};
	int64_t wd = notify_watchdog_interval_ms();
	int64_t next_wd = clock_mono_ms(), next_status;
	int64_t now, wait_ms;
	char status[STATUS_MAX];

	next_status = clock_mono_ms() + STATUS_EVERY_MS;
	for (;;) {
		now = clock_mono_ms();
		if (wd > 0 && now >= next_wd) {
			watchdog(d, wd);
			next_wd = now + wd;
		}
		if (now >= next_status) {
			start_readers(d);	/* a no-op when running */
			status_line(d, status, sizeof(status));
			notify_status(status);
			next_status = now + STATUS_EVERY_MS;
		}
		wait_ms = next_status - now;
		if (wd > 0 && next_wd - now < wait_ms)
			wait_ms = next_wd - now;
		if (poll(pfd, 2, (int)(wait_ms > 0 ? wait_ms : 0)) <= 0)
			continue;
		if ((pfd[1].revents & POLLIN) != 0)
			writer_event(d, pfd[1].fd);
		if ((pfd[0].revents & POLLIN) == 0 ||
		    read(sfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
			continue;
		if (si.ssi_signo == SIGHUP) {
			reload(d);
			continue;
		}
		log_info("signal %u: stopping", si.ssi_signo);
		return;
	}
}

/* Reverse of start(): stop intake, answer what is in flight, let deliveries
 * finish (or leave them pending), then the writer commits what it holds. */
static void
stop(struct daemon *d)
{
	int left;

	atomic_store(&d->stopping, 1);
	/* Quiesced before STOPPING=1 is sent: whoever sees it (systemd, a
	 * test) can count on new requests being refused from then on; a
	 * request on a kept-alive connection sent just after it was taken in
	 * otherwise, and waited behind whatever the writer waited for. */
	http_quiesce(d->http);
	notify_stopping();
	if (d->http != NULL) {
		left = http_drain(d->http, DRAIN_HTTP_MS);
		if (left > 0)
			log_warning("stop: %d request%s still in flight; closing",
			    left, left == 1 ? "" : "s");
	}
	/* The writer wakes the forwarder after each commit, so the forwarder
	 * goes last: once the writer has stopped nothing can call it. Its
	 * deliveries under way carry on meanwhile. */
	http_stop(d->http);
	writer_stop(d->writer);
	forward_stop(d->forward, DRAIN_FORWARD_MS);
	pthread_mutex_lock(&d->stats_mu);
	store_close(d->stats);
	d->stats = NULL;
	pthread_mutex_unlock(&d->stats_mu);
	/* Last: the next daemon may start once every connection is closed. */
	store_lock_release(d->lock_fd);
	d->lock_fd = -1;
	secrets_free(d->secrets);
	config_free(d->cur);
	config_free(d->boot);
	d->cur = d->boot = NULL;
	log_info("stopped");
}

/* Signals are taken by a signalfd; every thread inherits the mask.
 * SIGCHLD is blocked too and never read: hooks are waited for by pidfd and
 * waitpid(), and a SIGCHLD that some thread accepts wakes that thread for
 * every hook that exits, only for the kernel to drop it there (the
 * forwarder's threads block all signals, so it was the main thread, about
 * 12 us of CPU a delivery). Blocked everywhere, it just stays pending. */
static int
signals(void)
{
	sigset_t set, blocked;
	int fd;

	(void)signal(SIGPIPE, SIG_IGN);
	(void)sigemptyset(&set);
	(void)sigaddset(&set, SIGTERM);
	(void)sigaddset(&set, SIGINT);
	(void)sigaddset(&set, SIGHUP);
	blocked = set;
	(void)sigaddset(&blocked, SIGCHLD);
	if (pthread_sigmask(SIG_BLOCK, &blocked, NULL) != 0)
		return -1;
	fd = signalfd(-1, &set, SFD_CLOEXEC);
	if (fd == -1)
		log_error("signalfd: %s", strerror(errno));
	return fd;
}

int
main(int argc, char **argv)
{
	static struct daemon d;
	const char *path = NULL;
	char status[STATUS_MAX];
	int i, check = 0, sfd, rc = 1;

	log_init(LOG_LVL_INFO);
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 ||
		    strcmp(argv[i], "--config") == 0) {
			if (i + 1 == argc) {
				fprintf(stderr, "cfhookd: %s needs a file\n",
				    argv[i]);
				return 2;
			}
			path = argv[++i];
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			path = argv[i] + 9;
		} else if (strcmp(argv[i], "--check") == 0) {
			check = 1;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("cfhookd %s\n", CFHOOK_VERSION);
			return 0;
		} else if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "cfhookd: unknown argument '%s'\n",
			    argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (path == NULL) {
		usage(stderr);
		return 2;
	}
	if (check)
		return check_only(path);
	(void)pthread_mutex_init(&d.stats_mu, NULL);
	d.lock_fd = -1;
	sfd = signals();
	if (sfd == -1)
		return 1;
	if (start(&d, path) == -1) {
		log_error("start-up failed");
		goto out;
	}
	status_line(&d, status, sizeof(status));
	notify_ready(status);
	run(&d, sfd);
	rc = 0;
out:
	stop(&d);
	(void)close(sfd);
	return rc;
}
