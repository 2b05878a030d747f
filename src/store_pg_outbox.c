/* store_pg_outbox.c - the forwarder's SQL on PostgreSQL (DESIGN
 * "Forwarding"; the twin of store_outbox.c), for several daemons sharing
 * one outbox.
 *
 * Each delivery is claimed by one instance at a time: the claim takes the
 * row with FOR UPDATE SKIP LOCKED (another instance claiming it at that
 * moment is passed over, never waited for), counts the attempt, and writes
 * a lease: claimed_by (this instance) and lease_until. A leased event stays
 * 'pending', so it still holds back the later events of its order: only
 * the earliest pending event of an order is ever claimable, whoever holds
 * it, which keeps one delivery at a time per order across instances. A
 * live instance renews its leases (at most every PG_LEASE_RENEW_MS, from
 * its dispatcher's rounds); the claim of an instance that died is taken
 * over once its lease runs out, with the attempt it counted still counted,
 * so the next delivery has a higher attempt number. An outcome is recorded
 * only by the instance that holds the lease. A daemon restarted on the same
 * machine need not wait for its dead predecessor's leases: claimed_by names
 * the host, its boot, the pid namespace and the pid, and at start-up the
 * claims of a process that is certainly gone (an earlier boot, or a pid
 * that no longer runs in our namespace) are let go at once.
 *
 * Crash safety is store_outbox.c's: a round's claims and outcomes are one
 * transaction, committed before anything is sent, and an event leaves
 * 'pending' only with its outcome. The due scan needs no cursor: the
 * partial index of pending events and the leases say what is free, and
 * another instance's fresh ids may commit behind any cursor.
 * Must not: wait for another instance's row lock, or record an outcome
 * for a claim another instance took over. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "clock.h"
#include "log.h"
#include "num.h"
#include "store_outbox.h"
#include "store_pg.h"

/* Leases: how long a claim holds without its instance renewing it, and
 * how often a live instance renews. */
#define PG_LEASE_MS		20000
#define PG_LEASE_RENEW_MS	4000

/* Due: pending, its time come, no live lease, and no earlier pending
 * event of its order (leased or not); retries first, by their time. */
static const struct pg_stmt O_DUE = { "cfh_ob_due",
	"SELECT e.id, e.order_id FROM events e"
	" WHERE e.forward_state = 'pending' AND e.next_attempt_at <= $1"
	"   AND (e.lease_until IS NULL OR e.lease_until <= $1)"
	"   AND (e.order_id IS NULL OR e.order_id = '' OR NOT EXISTS ("
	"     SELECT 1 FROM events p WHERE p.order_id = e.order_id"
	"       AND p.id < e.id AND p.forward_state = 'pending'))"
	" ORDER BY e.next_attempt_at = 0, e.next_attempt_at, e.id"
	" LIMIT $2" };
/* The next moment something becomes due: a retry's time, or a lease of a
 * silent instance running out. */
static const struct pg_stmt O_NEXT = { "cfh_ob_next",
	"SELECT min(t) FROM (SELECT min(next_attempt_at) AS t FROM events"
	"   WHERE forward_state = 'pending' AND next_attempt_at > $1"
	" UNION ALL SELECT min(lease_until) FROM events"
	"   WHERE forward_state = 'pending' AND lease_until > $1) AS n" };
static const struct pg_stmt O_OLDEST = { "cfh_ob_oldest",
	"SELECT received_at FROM events WHERE forward_state = 'pending'"
	" ORDER BY id LIMIT 1" };
static const struct pg_stmt O_RENEW = { "cfh_ob_renew",
	"UPDATE events SET lease_until = $2"
	" WHERE claimed_by = $1 AND forward_state = 'pending'" };
/* SKIP LOCKED: a row another instance is claiming right now is passed
 * over, never waited for; a live lease is another's claim. */
static const struct pg_stmt O_CLAIM = { "cfh_ob_claim",
	"UPDATE events SET forward_attempts = forward_attempts + 1,"
	" claimed_by = $2, lease_until = $4"
	" WHERE id = (SELECT id FROM events WHERE id = $1"
	"   AND forward_state = 'pending'"
	"   AND (lease_until IS NULL OR lease_until <= $3)"
	"   FOR UPDATE SKIP LOCKED)"
	" RETURNING forward_attempts, replay_base" };
/* The attempts of a claim that was taken over never finished. */
static const struct pg_stmt O_ORPHANS = { "cfh_ob_orphans",
	"UPDATE forward_log SET error = 'interrupted: its lease ran out'"
	" WHERE event_id = $1 AND finished_at IS NULL AND error IS NULL" };
static const struct pg_stmt O_LOG_START = { "cfh_ob_log_start",
	"INSERT INTO forward_log (event_id, attempt, started_at)"
	" VALUES ($1, $2, $3) RETURNING id" };
static const struct pg_stmt O_ROW = { "cfh_ob_row",
	"SELECT " STORE_ROW_COLS ", body FROM events WHERE id = $1" };
static const struct pg_stmt O_LOG_END = { "cfh_ob_log_end",
	"UPDATE forward_log SET finished_at = $2, ok = $3, error = $4,"
	" started_at = coalesce($5, started_at) WHERE id = $1" };
/* The outcomes: only while this instance holds the event's lease. */
static const struct pg_stmt O_DONE = { "cfh_ob_done",
	"UPDATE events SET forward_state = 'done', forwarded_at = $3,"
	" last_error = NULL, claimed_by = NULL, lease_until = NULL"
	" WHERE id = $1 AND forward_state = 'pending' AND claimed_by = $2" };
static const struct pg_stmt O_DEAD = { "cfh_ob_dead",
	"UPDATE events SET forward_state = 'dead', last_error = $3,"
	" claimed_by = NULL, lease_until = NULL"
	" WHERE id = $1 AND forward_state = 'pending' AND claimed_by = $2" };
/* A retry after its backoff, or at once (next = now). */
static const struct pg_stmt O_AGAIN = { "cfh_ob_again",
	"UPDATE events SET next_attempt_at = $3, last_error = $4,"
	" claimed_by = NULL, lease_until = NULL"
	" WHERE id = $1 AND forward_state = 'pending' AND claimed_by = $2" };
/* A claim that never started: no attempt was made. */
static const struct pg_stmt O_UNCLAIM = { "cfh_ob_unclaim",
	"UPDATE events SET forward_attempts = forward_attempts - 1,"
	" claimed_by = NULL, lease_until = NULL"
	" WHERE id = $1 AND forward_state = 'pending' AND claimed_by = $2"
	"   AND forward_attempts > replay_base" };
static const struct pg_stmt O_UNLOG = { "cfh_ob_unlog",
	"DELETE FROM forward_log WHERE id = $1" };

struct pg_outbox {
	struct outbox_head head;	/* first, as every backend's */
	struct pg_store *st;
	int64_t	 renewed_ms;		/* its leases last renewed (wall) */
};

static struct pg_outbox *
pgo(struct outbox *o)
{
	return (struct pg_outbox *)(void *)o;
}

static void
warn(struct pg_store *st, const char *what)
{
	log_warning("store: outbox: %s: %s; will retry", what, st->err);
}

/* What a claimer is: "host/boot_id/pid namespace/pid/start ms". */
struct claimer {
	char	 host[64];
	char	 boot[40];
	unsigned long long ns;
	long	 pid;
};

static void
this_process(struct claimer *c)
{
	struct stat sb;
	ssize_t n = -1;
	int fd;

	memset(c, 0, sizeof(*c));
	if (gethostname(c->host, sizeof(c->host)) != 0)
		(void)snprintf(c->host, sizeof(c->host), "?");
	c->host[sizeof(c->host) - 1] = '\0';
	c->host[strcspn(c->host, "/")] = '\0';
	fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	if (fd != -1) {
		n = read(fd, c->boot, sizeof(c->boot) - 1);
		(void)close(fd);
	}
	c->boot[n > 0 ? n : 0] = '\0';
	c->boot[strcspn(c->boot, "\n/")] = '\0';
	if (stat("/proc/self/ns/pid", &sb) == 0)
		c->ns = (unsigned long long)sb.st_ino;
	c->pid = (long)getpid();
}

/* The name this store's claims carry: a restarted daemon is a new
 * instance, whose predecessor's claims are let go or run out. */
static const char *
me(struct pg_store *st)
{
	struct claimer c;

	if (st->claimer[0] == '\0') {
		this_process(&c);
		(void)snprintf(st->claimer, sizeof(st->claimer),
		    "%s/%s/%llu/%ld/%lld", c.host, c.boot, c.ns, c.pid,
		    (long long)clock_wall_ms());
	}
	return st->claimer;
}

/* "host/boot/ns/pid/..." into *c. 0 / -1 (not one of ours). */
static int
parse_claimer(const char *name, struct claimer *c)
{
	char buf[128], *f[5], *p = buf;
	uint64_t ns, pid;
	int i;

	if (strlen(name) >= sizeof(buf))
		return -1;
	(void)snprintf(buf, sizeof(buf), "%s", name);
	for (i = 0; i < 5; i++) {
		f[i] = p;
		p = strchr(p, '/');
		if (p == NULL && i < 4)
			return -1;
		if (p != NULL)
			*p++ = '\0';
	}
	if (num_parse_u64(f[2], 0, UINT64_MAX, &ns) == -1 ||
	    num_parse_u64(f[3], 1, INT32_MAX, &pid) == -1)
		return -1;
	memset(c, 0, sizeof(*c));
	(void)snprintf(c->host, sizeof(c->host), "%s", f[0]);
	(void)snprintf(c->boot, sizeof(c->boot), "%s", f[1]);
	c->ns = ns;
	c->pid = (long)pid;
	return 0;
}

/* Whether the claimer `name` is a process of this machine that is gone:
 * a claim of an earlier boot, or of a pid no longer running in our pid
 * namespace (or reused by us). Unknown is "not gone": its lease runs out
 * instead. */
static int
gone(struct pg_store *st, const char *name)
{
	struct claimer self, it;

	this_process(&self);
	if (parse_claimer(name, &it) == -1 ||
	    strcmp(it.host, self.host) != 0 || self.boot[0] == '\0')
		return 0;
	if (strcmp(it.boot, self.boot) != 0)
		return 1;
	if (it.ns != self.ns)
		return 0;
	if (it.pid == self.pid)
		return strcmp(name, me(st)) != 0;
	return kill((pid_t)it.pid, 0) == -1 && errno == ESRCH;
}

/* Start-up: the leases of this machine's dead claimers end now. */
static void
let_go(struct pg_store *st, int64_t now_ms)
{
	struct pg_params p;
	PGresult *res, *u;
	int r;

	pg_params_init(&p);
	pg_p_int(&p, now_ms);
	res = pg_query(st, "SELECT DISTINCT claimed_by FROM events"
	    " WHERE forward_state = 'pending' AND lease_until > $1", &p);
	pg_params_done(&p);
	if (res == NULL) {
		warn(st, "leases");
		return;
	}
	for (r = 0; r < PQntuples(res); r++) {
		if (PQgetisnull(res, r, 0) || !gone(st, PQgetvalue(res, r, 0)))
			continue;
		pg_params_init(&p);
		pg_p_text(&p, PQgetvalue(res, r, 0));
		pg_p_int(&p, now_ms);
		u = pg_query(st, "UPDATE events SET lease_until = $2"
		    " WHERE claimed_by = $1 AND forward_state = 'pending'", &p);
		pg_params_done(&p);
		if (u == NULL)
			warn(st, "leases");
		else if (pg_changed(u) > 0)
			log_info("store: outbox: %" PRId64 " claim(s) of a "
			    "cfhookd that is gone taken back", pg_changed(u));
		PQclear(u);
	}
	PQclear(res);
}

/* Connected, or -1: a warning when the server is lost, and one line when
 * it is back (the dispatcher asks every round, a second apart). */
static int
ready(struct pg_store *st)
{
	st->deadline_ms = 0;
	if (pg_ready(st) == 0) {
		if (st->lost)
			log_info("store: outbox: connected again");
		st->lost = 0;
		return 0;
	}
	if (!st->lost)
		warn(st, "connect");
	st->lost = 1;
	return -1;
}

/* A statement outside the round's transaction, after the leases of this
 * instance were renewed if due: a live dispatcher makes a call of these
 * every round. */
static PGresult *
outside(struct pg_outbox *o, const struct pg_stmt *s, struct pg_params *p,
    const char *what)
{
	struct pg_store *st = o->st;
	int64_t now = clock_wall_ms();
	struct pg_params r;
	PGresult *res;

	if (ready(st) == -1) {
		pg_params_done(p);
		return NULL;
	}
	if (now >= o->renewed_ms + PG_LEASE_RENEW_MS &&
	    PQtransactionStatus(st->conn) == PQTRANS_IDLE) {
		pg_params_init(&r);
		pg_p_text(&r, me(st));
		pg_p_int(&r, now + PG_LEASE_MS);
		res = pg_run(st, &O_RENEW, &r);
		pg_params_done(&r);
		if (res == NULL)
			warn(st, "renew leases");
		else
			o->renewed_ms = now;
		PQclear(res);
	}
	res = pg_run(st, s, p);
	pg_params_done(p);
	if (res == NULL)
		warn(st, what);
	return res;
}

/* A statement inside the round's transaction. */
static PGresult *
inside(struct pg_store *st, const struct pg_stmt *s, struct pg_params *p,
    const char *what)
{
	PGresult *res = pg_run(st, s, p);

	pg_params_done(p);
	if (res == NULL)
		warn(st, what);
	return res;
}

static int
pgo_open(struct store *st, enum durability durability, struct outbox **ret)
{
	struct pg_outbox *o = calloc(1, sizeof(*o));

	(void)durability;	/* the session's (store_pg_conn.c) */
	if (o == NULL) {
		log_error("store: outbox: out of memory");
		return -1;
	}
	o->head.st = st;
	o->st = pg(st);
	*ret = (struct outbox *)(void *)o;
	return 0;
}

static void
pgo_close(struct outbox *ob)
{
	if (ob == NULL)
		return;
	pg_rollback(pgo(ob)->st);
	free(ob);
}

static int
pgo_recover(struct outbox *ob)
{
	struct pg_store *st = pgo(ob)->st;
	struct pg_params p;
	PGresult *res;
	int64_t n;

	if (ready(st) == -1)
		return -1;
	let_go(st, clock_wall_ms());
	/* Only attempts of claims no live instance holds: the others are
	 * under way on another daemon. */
	pg_params_init(&p);
	pg_p_int(&p, clock_wall_ms());
	res = pg_query(st, "UPDATE forward_log l SET error = 'interrupted by "
	    "restart' WHERE finished_at IS NULL AND error IS NULL AND NOT"
	    " EXISTS (SELECT 1 FROM events e WHERE e.id = l.event_id"
	    " AND e.forward_state = 'pending' AND e.lease_until > $1)", &p);
	pg_params_done(&p);
	if (res == NULL) {
		warn(st, "recover");
		return -1;
	}
	n = pg_changed(res);
	PQclear(res);
	return (int)n;
}

static int
pgo_begin(struct outbox *ob)
{
	struct pg_store *st = pgo(ob)->st;

	if (ready(st) == -1)
		return -1;
	if (pg_cmd(st, "BEGIN") == -1) {
		warn(st, "begin");
		return -1;
	}
	return 0;
}

/* COMMIT, and only a COMMIT: a round the server rolled back claimed and
 * recorded nothing. */
static int
pgo_commit(struct outbox *ob)
{
	struct pg_store *st = pgo(ob)->st;

	if (pg_commit(st) == 0)
		return 0;
	warn(st, "commit");
	pg_rollback(st);
	return -1;
}

static void
pgo_rollback(struct outbox *ob)
{
	pg_rollback(pgo(ob)->st);
}

static int
pgo_due(struct outbox *ob, int64_t now_ms, struct outbox_scan *sc,
    int (*skip)(void *, int64_t, const char *), void *arg,
    struct outbox_due *out, size_t max, size_t *n)
{
	struct pg_params p;
	PGresult *res;
	const char *order;
	size_t got = 0;
	int64_t id;
	int r;

	/* No cursor (see the top): the orders released since the last scan
	 * are found by it too. */
	sc->scanned = sc->after;
	pg_params_init(&p);
	pg_p_int(&p, now_ms);
	/* Room for what skip() leaves out: this instance's own deliveries
	 * are leased (not listed), so few are. */
	pg_p_int(&p, (int64_t)max * 2 + 16);
	res = outside(pgo(ob), &O_DUE, &p, "due");
	if (res == NULL)
		return -1;
	for (r = 0; r < PQntuples(res) && got < max; r++) {
		id = pg_col_int(res, r, 0, 0);
		order = PQgetisnull(res, r, 1) ? NULL : PQgetvalue(res, r, 1);
		if (order != NULL && order[0] == '\0')
			order = NULL;
		if (skip != NULL && skip(arg, id, order))
			continue;
		out[got].id = id;
		out[got].order_id = order != NULL ? strdup(order) : NULL;
		if (order != NULL && out[got].order_id == NULL) {
			store_outbox_due_done(out, got);
			PQclear(res);
			return -1;
		}
		got++;
	}
	PQclear(res);
	*n = got;
	return 0;
}

/* One integer (or NULL) of a statement outside the round: 0 with *ret,
 * 1 for none, -1. */
static int
one_int(struct pg_outbox *o, const struct pg_stmt *s, const int64_t *arg,
    int64_t *ret, const char *what)
{
	struct pg_params p;
	PGresult *res;
	int rc = 1;

	pg_params_init(&p);
	if (arg != NULL)
		pg_p_int(&p, *arg);
	res = outside(o, s, &p, what);
	if (res == NULL)
		return -1;
	if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0)) {
		*ret = pg_col_int(res, 0, 0, 0);
		rc = 0;
	}
	PQclear(res);
	return rc;
}

static int
pgo_next_due(struct outbox *ob, int64_t now_ms, int64_t *ret)
{
	return one_int(pgo(ob), &O_NEXT, &now_ms, ret, "next due");
}

static int
pgo_oldest(struct outbox *ob, int64_t *ret)
{
	return one_int(pgo(ob), &O_OLDEST, NULL, ret, "oldest pending");
}

/* Inside the round: the lease, the attempt counted, the attempts of a
 * claim taken over closed, the attempt's log row. */
static enum outbox_claim
pgo_claim(struct outbox *ob, int64_t id, int64_t now_ms,
    struct outbox_row *ret)
{
	struct pg_store *st = pgo(ob)->st;
	struct outbox_row r;
	struct pg_params p;
	PGresult *res;
	int64_t attempts, series;

	memset(&r, 0, sizeof(r));
	pg_params_init(&p);
	pg_p_int(&p, id);
	pg_p_text(&p, me(st));
	pg_p_int(&p, now_ms);
	pg_p_int(&p, now_ms + PG_LEASE_MS);
	res = inside(st, &O_CLAIM, &p, "claim");
	if (res == NULL)
		return OUTBOX_ERROR;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return OUTBOX_GONE;	/* done, replayed, or leased */
	}
	attempts = pg_col_int(res, 0, 0, 1);
	series = attempts - pg_col_int(res, 0, 1, 0);
	PQclear(res);
	r.ev.id = id;
	r.attempt = attempts < 1 ? 1 : (unsigned)attempts;
	r.series = series < 1 ? 1 : (unsigned)series;
	pg_params_init(&p);
	pg_p_int(&p, id);
	res = inside(st, &O_ORPHANS, &p, "claim");
	if (res == NULL)
		return OUTBOX_ERROR;
	PQclear(res);
	pg_params_init(&p);
	pg_p_int(&p, id);
	pg_p_int(&p, r.attempt);
	pg_p_int(&p, now_ms);
	res = inside(st, &O_LOG_START, &p, "log attempt");
	if (res == NULL)
		return OUTBOX_ERROR;	/* the caller rolls back */
	r.log_id = pg_col_int(res, 0, 0, 0);
	PQclear(res);
	*ret = r;
	return OUTBOX_CLAIMED;
}

static int
pgo_load(struct outbox *ob, struct outbox_row *r)
{
	struct event_row ev;
	struct pg_params p;
	PGresult *res;
	int rc;

	pg_params_init(&p);
	pg_p_int(&p, r->ev.id);
	res = outside(pgo(ob), &O_ROW, &p, "load");
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 0) {
		log_warning("store: outbox: event %lld is gone; will retry",
		    (long long)r->ev.id);
		PQclear(res);
		return -1;
	}
	/* Into a row of its own: on failure r keeps the claim's id, which
	 * the outcome is recorded against. */
	rc = pg_row_read(res, 0, 1, &ev);
	PQclear(res);
	if (rc == -1) {
		log_warning("store: outbox: load: out of memory; will retry");
		return -1;
	}
	event_row_done(&r->ev);
	r->ev = ev;
	return 0;
}

/* A claim that never started, undone: its log row and its count go, and
 * so does the lease. */
static int
unclaim(struct pg_store *st, const struct outbox_result *res,
    enum outbox_state *state)
{
	struct pg_params p;
	PGresult *r;

	pg_params_init(&p);
	pg_p_int(&p, res->log_id);
	r = inside(st, &O_UNLOG, &p, "unclaim");
	if (r == NULL)
		return -1;
	PQclear(r);
	pg_params_init(&p);
	pg_p_int(&p, res->id);
	pg_p_text(&p, me(st));
	r = inside(st, &O_UNCLAIM, &p, "unclaim");
	if (r == NULL)
		return -1;
	*state = pg_changed(r) > 0 ? OUTBOX_PENDING : OUTBOX_UNCHANGED;
	PQclear(r);
	return 0;
}

static int
log_end(struct pg_store *st, const struct outbox_result *res, int64_t now_ms)
{
	struct pg_params p;
	PGresult *r;

	pg_params_init(&p);
	pg_p_int(&p, res->log_id);
	pg_p_int(&p, store_outbox_finished_at(res, now_ms));
	if (res->outcome == OUTBOX_INTERRUPTED)
		pg_p_text(&p, NULL);		/* ok NULL: interrupted */
	else
		pg_p_int(&p, res->outcome == OUTBOX_DELIVERED);
	pg_p_text(&p, res->outcome == OUTBOX_DELIVERED ? NULL : res->error);
	if (res->started_at > 0)
		pg_p_int(&p, res->started_at);
	else
		pg_p_text(&p, NULL);	/* the claim's time stays */
	r = inside(st, &O_LOG_END, &p, "log outcome");
	PQclear(r);
	return r == NULL ? -1 : 0;
}

static int
pgo_finish(struct outbox *ob, const struct outbox_result *res,
    int64_t now_ms, unsigned max_attempts, unsigned backoff_s,
    enum outbox_state *state, int64_t *next_ms)
{
	struct pg_store *st = pgo(ob)->st;
	const struct pg_stmt *s;
	enum outbox_state to;
	struct pg_params p;
	PGresult *r;
	int64_t next = now_ms;

	if (res->outcome == OUTBOX_UNSTARTED)
		return unclaim(st, res, state);
	if (log_end(st, res, now_ms) == -1)
		return -1;
	pg_params_init(&p);
	pg_p_int(&p, res->id);
	pg_p_text(&p, me(st));
	to = store_outbox_next_state(res, now_ms, max_attempts, backoff_s,
	    &next);
	if (to == OUTBOX_DONE) {
		s = &O_DONE;
		pg_p_int(&p, store_outbox_finished_at(res, now_ms));
	} else if (to == OUTBOX_DEAD) {
		s = &O_DEAD;
		pg_p_text(&p, res->error);
	} else {
		s = &O_AGAIN;
		pg_p_int(&p, next);
		pg_p_text(&p, res->error);
	}
	r = inside(st, s, &p, "outcome");
	if (r == NULL)
		return -1;
	if (pg_changed(r) == 0)
		to = OUTBOX_UNCHANGED;	/* replayed, pruned or taken over */
	PQclear(r);
	*state = to;
	if (to == OUTBOX_RETRY && next_ms != NULL)
		*next_ms = next;
	return 0;
}

const struct outbox_backend store_pg_outbox = {
	.open = pgo_open,
	.close = pgo_close,
	.recover = pgo_recover,
	.begin = pgo_begin,
	.commit = pgo_commit,
	.rollback = pgo_rollback,
	.due = pgo_due,
	.next_due = pgo_next_due,
	.oldest = pgo_oldest,
	.claim = pgo_claim,
	.load = pgo_load,
	.finish = pgo_finish,
};
