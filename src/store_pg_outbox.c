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
 * Crash safety is store_outbox.c's: the attempt is committed before
 * anything is sent, and an event leaves 'pending' only with its outcome.
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

#define ROW_COLS "forward_attempts, event_key, type, cf_payment_id, order_id," \
	" payment_status, amount, currency, content_type, body, received_at," \
	" idempotency_key, webhook_version, order_state, order_paid_now," \
	" order_attention"

/* Due: pending, its time come, no live lease, and no earlier pending
 * event of its order (leased or not). */
static const struct pg_stmt O_DUE = { "cfh_ob_due",
	"SELECT e.id, e.order_id FROM events e"
	" WHERE e.forward_state = 'pending' AND e.next_attempt_at <= $1"
	"   AND (e.lease_until IS NULL OR e.lease_until <= $1)"
	"   AND (e.order_id IS NULL OR e.order_id = '' OR NOT EXISTS ("
	"     SELECT 1 FROM events p WHERE p.order_id = e.order_id"
	"       AND p.id < e.id AND p.forward_state = 'pending'))"
	" ORDER BY e.id LIMIT $2" };
/* The next moment something becomes due: a retry's time, or a lease of a
 * silent instance running out. */
static const struct pg_stmt O_NEXT = { "cfh_ob_next",
	"SELECT min(t) FROM (SELECT min(next_attempt_at) AS t FROM events"
	"   WHERE forward_state = 'pending' AND next_attempt_at > $1"
	" UNION ALL SELECT min(lease_until) FROM events"
	"   WHERE forward_state = 'pending' AND lease_until > $1) AS n" };
static const struct pg_stmt O_RENEW = { "cfh_ob_renew",
	"UPDATE events SET lease_until = $2"
	" WHERE claimed_by = $1 AND forward_state = 'pending'" };
static const struct pg_stmt O_CLAIM = { "cfh_ob_claim",
	"UPDATE events SET forward_attempts = forward_attempts + 1,"
	" claimed_by = $2, lease_until = $4"
	" WHERE id = (SELECT id FROM events WHERE id = $1"
	"   AND forward_state = 'pending'"
	"   AND (lease_until IS NULL OR lease_until <= $3)"
	"   FOR UPDATE SKIP LOCKED)"
	" RETURNING " ROW_COLS };
/* The attempts of a claim that was taken over never finished. */
static const struct pg_stmt O_ORPHANS = { "cfh_ob_orphans",
	"UPDATE forward_log SET error = 'interrupted: its lease ran out'"
	" WHERE event_id = $1 AND finished_at IS NULL AND error IS NULL" };
static const struct pg_stmt O_LOG_START = { "cfh_ob_log_start",
	"INSERT INTO forward_log (event_id, attempt, started_at)"
	" VALUES ($1, $2, $3) RETURNING id" };
static const struct pg_stmt O_LOG_END = { "cfh_ob_log_end",
	"UPDATE forward_log SET finished_at = $2, ok = $3, error = $4"
	" WHERE id = $1" };
static const struct pg_stmt O_ATTEMPTS = { "cfh_ob_attempts",
	"SELECT forward_attempts - replay_base FROM events"
	" WHERE id = $1 AND forward_state = 'pending' AND claimed_by = $2" };
static const struct pg_stmt O_DONE = { "cfh_ob_done",
	"UPDATE events SET forward_state = 'done', forwarded_at = $3,"
	" last_error = NULL, claimed_by = NULL, lease_until = NULL"
	" WHERE id = $1 AND forward_state = 'pending' AND claimed_by = $2" };
static const struct pg_stmt O_DEAD = { "cfh_ob_dead",
	"UPDATE events SET forward_state = 'dead', last_error = $3,"
	" claimed_by = NULL, lease_until = NULL"
	" WHERE id = $1 AND forward_state = 'pending' AND claimed_by = $2" };
static const struct pg_stmt O_RETRY = { "cfh_ob_retry",
	"UPDATE events SET next_attempt_at = $3, last_error = $4,"
	" claimed_by = NULL, lease_until = NULL"
	" WHERE id = $1 AND forward_state = 'pending' AND claimed_by = $2" };
static const struct pg_stmt O_NOTE = { "cfh_ob_note",
	"UPDATE events SET last_error = $3, claimed_by = NULL,"
	" lease_until = NULL"
	" WHERE id = $1 AND forward_state = 'pending' AND claimed_by = $2" };

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

/* Connected, or -1 with a warning. */
static int
ready(struct pg_store *st)
{
	st->deadline_ms = 0;
	if (pg_ready(st) == 0)
		return 0;
	warn(st, "connect");
	return -1;
}

int
store_pg_outbox_recover(struct store *base)
{
	struct pg_store *st = pg(base);
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

/* This instance's leases pushed forward, now and then. */
static void
renew(struct pg_store *st, int64_t now_ms)
{
	struct pg_params p;
	PGresult *res;

	if (now_ms < st->renewed_ms + PG_LEASE_RENEW_MS)
		return;
	pg_params_init(&p);
	pg_p_text(&p, me(st));
	pg_p_int(&p, now_ms + PG_LEASE_MS);
	res = pg_run(st, &O_RENEW, &p);
	pg_params_done(&p);
	if (res == NULL) {
		warn(st, "renew leases");
		return;
	}
	st->renewed_ms = now_ms;
	PQclear(res);
}

int
store_pg_outbox_due(struct store *base, int64_t now_ms,
    int (*skip)(void *, int64_t, const char *), void *arg,
    struct outbox_due *out, size_t max, size_t *n)
{
	struct pg_store *st = pg(base);
	struct pg_params p;
	PGresult *res;
	const char *order;
	size_t got = 0;
	int64_t id;
	int r;

	if (ready(st) == -1)
		return -1;
	renew(st, now_ms);
	pg_params_init(&p);
	pg_p_int(&p, now_ms);
	/* Room for what skip() leaves out: this instance's own deliveries
	 * are leased (not listed), so few are. */
	pg_p_int(&p, (int64_t)max * 4 + 16);
	res = pg_run(st, &O_DUE, &p);
	pg_params_done(&p);
	if (res == NULL) {
		warn(st, "due");
		return -1;
	}
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

int
store_pg_outbox_next_due(struct store *base, int64_t now_ms, int64_t *ret)
{
	struct pg_store *st = pg(base);
	struct pg_params p;
	PGresult *res;
	int rc = 1;

	if (ready(st) == -1)
		return -1;
	pg_params_init(&p);
	pg_p_int(&p, now_ms);
	res = pg_run(st, &O_NEXT, &p);
	pg_params_done(&p);
	if (res == NULL) {
		warn(st, "next due");
		return -1;
	}
	if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0)) {
		*ret = pg_col_int(res, 0, 0, 0);
		rc = 0;
	}
	PQclear(res);
	return rc;
}

/* The RETURNING row of O_CLAIM into *r. -1 on no memory. */
static int
read_claimed(const PGresult *res, struct outbox_row *r)
{
	char **text[] = { &r->event_key, &r->type, &r->cf_payment_id,
	    &r->order_id, &r->payment_status, &r->amount, &r->currency,
	    &r->content_type };
	int64_t attempts = pg_col_int(res, 0, 0, 1);
	size_t i;
	int bad = 0;

	r->attempt = attempts < 1 ? 1 : (unsigned)attempts;
	for (i = 0; i < sizeof(text) / sizeof(text[0]); i++)
		bad |= pg_col_copy(res, 0, (int)i + 1, text[i], NULL);
	bad |= pg_col_copy(res, 0, 9, &r->body, &r->body_len);
	r->received_at = pg_col_int(res, 0, 10, 0);
	bad |= pg_col_copy(res, 0, 11, &r->idempotency_key, NULL);
	bad |= pg_col_copy(res, 0, 12, &r->webhook_version, NULL);
	bad |= pg_col_copy(res, 0, 13, &r->order_state, NULL);
	r->order_paid_now = pg_col_int(res, 0, 14, 0) != 0;
	bad |= pg_col_copy(res, 0, 15, &r->order_attention, NULL);
	return bad ? -1 : 0;
}

/* Inside the claim's transaction: the lease and the attempt counted. */
static enum outbox_claim
take(struct pg_store *st, int64_t id, int64_t now_ms, struct outbox_row *r)
{
	struct pg_params p;
	PGresult *res;
	int rc;

	pg_params_init(&p);
	pg_p_int(&p, id);
	pg_p_text(&p, me(st));
	pg_p_int(&p, now_ms);
	pg_p_int(&p, now_ms + PG_LEASE_MS);
	res = pg_run(st, &O_CLAIM, &p);
	pg_params_done(&p);
	if (res == NULL)
		return OUTBOX_ERROR;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return OUTBOX_GONE;	/* delivered, replayed, or leased */
	}
	r->id = id;
	rc = read_claimed(res, r);
	PQclear(res);
	if (rc == -1) {
		(void)snprintf(st->err, sizeof(st->err), "out of memory");
		return OUTBOX_ERROR;
	}
	return OUTBOX_CLAIMED;
}

/* The attempt's forward_log row, after closing those of a claim taken
 * over. */
static int
log_start(struct pg_store *st, struct outbox_row *r, int64_t now_ms)
{
	struct pg_params p;
	PGresult *res;

	pg_params_init(&p);
	pg_p_int(&p, r->id);
	res = pg_run(st, &O_ORPHANS, &p);
	pg_params_done(&p);
	if (res == NULL)
		return -1;
	PQclear(res);
	pg_params_init(&p);
	pg_p_int(&p, r->id);
	pg_p_int(&p, r->attempt);
	pg_p_int(&p, now_ms);
	res = pg_run(st, &O_LOG_START, &p);
	pg_params_done(&p);
	if (res == NULL)
		return -1;
	r->log_id = pg_col_int(res, 0, 0, 0);
	PQclear(res);
	return 0;
}

static int
commit(struct pg_store *st)
{
	PGresult *res = pg_query(st, "COMMIT", NULL);
	int ok = res != NULL && strcmp(PQcmdStatus(res), "COMMIT") == 0;

	if (res != NULL && !ok)
		(void)snprintf(st->err, sizeof(st->err), "rolled back");
	PQclear(res);
	return ok ? 0 : -1;
}

enum outbox_claim
store_pg_outbox_claim(struct store *base, int64_t id, int64_t now_ms,
    struct outbox_row *ret)
{
	struct pg_store *st = pg(base);
	struct outbox_row r;
	enum outbox_claim res = OUTBOX_ERROR;

	memset(&r, 0, sizeof(r));
	if (ready(st) == -1)
		return OUTBOX_ERROR;
	if (pg_cmd(st, "BEGIN") == -1)
		goto out;
	res = take(st, id, now_ms, &r);
	if (res != OUTBOX_CLAIMED)
		goto out;
	res = OUTBOX_ERROR;
	/* Durable before the first byte goes out. */
	if (log_start(st, &r, now_ms) == -1 || commit(st) == -1)
		goto out;
	*ret = r;
	memset(&r, 0, sizeof(r));	/* the caller owns the strings now */
	res = OUTBOX_CLAIMED;
out:
	if (res == OUTBOX_ERROR)
		warn(st, "claim");
	pg_rollback(st);
	store_outbox_row_done(&r);
	return res;
}

static int
log_end(struct pg_store *st, const struct outbox_result *res, int64_t now_ms)
{
	struct pg_params p;
	PGresult *r;

	pg_params_init(&p);
	pg_p_int(&p, res->log_id);
	pg_p_int(&p, now_ms);
	if (res->outcome == OUTBOX_INTERRUPTED)
		pg_p_text(&p, NULL);		/* ok NULL: interrupted */
	else
		pg_p_int(&p, res->outcome == OUTBOX_DELIVERED);
	pg_p_text(&p, res->outcome == OUTBOX_DELIVERED ? NULL : res->error);
	r = pg_run(st, &O_LOG_END, &p);
	pg_params_done(&p);
	PQclear(r);
	return r == NULL ? -1 : 0;
}

/* The tries of the current series while this instance still holds the
 * event: 0 (*ret), 1 when it does not, -1. */
static int
attempts_of(struct pg_store *st, int64_t id, int64_t *ret)
{
	struct pg_params p;
	PGresult *res;
	int rc = 1;

	pg_params_init(&p);
	pg_p_int(&p, id);
	pg_p_text(&p, me(st));
	res = pg_run(st, &O_ATTEMPTS, &p);
	pg_params_done(&p);
	if (res == NULL)
		return -1;
	if (PQntuples(res) > 0) {
		*ret = pg_col_int(res, 0, 0, 0);
		rc = 0;
	}
	PQclear(res);
	return rc;
}

/* backoff_s * 2^(attempts-1), capped (DESIGN "Configuration"). */
static int64_t
backoff_ms(unsigned backoff_s, int64_t attempts)
{
	int64_t d = backoff_s, i;

	for (i = 1; i < attempts && d < STORE_OUTBOX_BACKOFF_CAP_S; i++)
		d *= 2;
	if (d > STORE_OUTBOX_BACKOFF_CAP_S)
		d = STORE_OUTBOX_BACKOFF_CAP_S;
	return d * 1000;
}

/* The statement that moves the event on, and its parameters past $1
 * (id) and $2 (this instance); *state says where to. *s stays NULL when
 * the event is no longer ours. 0 / -1. */
static int
outcome(struct pg_store *st, const struct outbox_result *res, int64_t now_ms,
    unsigned max_attempts, unsigned backoff_s, enum outbox_state *state,
    int64_t *next_ms, const struct pg_stmt **s, struct pg_params *p)
{
	int64_t attempts = 0;
	int r;

	if (res->outcome == OUTBOX_DELIVERED) {
		*state = OUTBOX_DONE;
		*s = &O_DONE;
		pg_p_int(p, now_ms);
		return 0;
	}
	if (res->outcome == OUTBOX_INTERRUPTED) {
		*state = OUTBOX_PENDING;
		*s = &O_NOTE;
		pg_p_text(p, res->error);
		return 0;
	}
	r = attempts_of(st, res->id, &attempts);
	if (r != 0)
		return r == 1 ? 0 : -1;		/* *s NULL: not ours */
	if (attempts >= (int64_t)max_attempts) {
		*state = OUTBOX_DEAD;
		*s = &O_DEAD;
		pg_p_text(p, res->error);
		return 0;
	}
	*state = OUTBOX_RETRY;
	*next_ms = now_ms + backoff_ms(backoff_s, attempts);
	*s = &O_RETRY;
	pg_p_int(p, *next_ms);
	pg_p_text(p, res->error);
	return 0;
}

int
store_pg_outbox_finish(struct store *base, const struct outbox_result *res,
    int64_t now_ms, unsigned max_attempts, unsigned backoff_s,
    enum outbox_state *state, int64_t *next_ms)
{
	struct pg_store *st = pg(base);
	enum outbox_state to = OUTBOX_UNCHANGED;
	const struct pg_stmt *s = NULL;
	struct pg_params p;
	PGresult *r = NULL;
	int64_t next = 0;
	int rc = -1;

	if (ready(st) == -1)
		return -1;
	pg_params_init(&p);
	pg_p_int(&p, res->id);
	pg_p_text(&p, me(st));
	if (pg_cmd(st, "BEGIN") == -1 || log_end(st, res, now_ms) == -1 ||
	    outcome(st, res, now_ms, max_attempts, backoff_s, &to, &next, &s,
	    &p) == -1)
		goto out;
	if (s == NULL)
		to = OUTBOX_UNCHANGED;
	else if ((r = pg_run(st, s, &p)) == NULL)
		goto out;
	else if (pg_changed(r) == 0)
		to = OUTBOX_UNCHANGED;	/* replayed, pruned or taken over */
	if (commit(st) == -1)
		goto out;
	*state = to;
	if (to == OUTBOX_RETRY && next_ms != NULL)
		*next_ms = next;
	rc = 0;
out:
	if (rc == -1)
		warn(st, "outcome");
	PQclear(r);
	pg_params_done(&p);
	pg_rollback(st);
	return rc;
}
