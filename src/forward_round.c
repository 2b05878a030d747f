/* forward_round.c - one round of the forwarder's dispatcher
 * (forward_round.h): outcomes in, claims out.
 *
 * Crash safety (store_outbox.c): the attempts claimed here are counted, and
 * the last round's outcomes recorded, before the new jobs are handed back,
 * and the round's last commit makes both durable. Normally that is one
 * transaction; while intake writes, one for the outcomes and one for the
 * claims (commit_round). A failure leaves what was not committed as it
 * was, to be done again; a claim of a failed round is never handed out.
 *
 * The transactions only write (outcomes, attempts, log rows): due events
 * are looked for before them and the claimed events' columns read after,
 * so that the write lock, which intake waits for, is held briefly.
 *
 * Due events are found from a cursor (store_outbox.h): a commit of new
 * events costs a look at the new ones only; every FULL_SCAN_MS (longer when
 * that scan is slow, so that it never takes more than a twentieth of the
 * time) a scan starts from the beginning, for events `cfhookctl replay` made
 * pending again.
 *
 * Must not: hand out a job before its claim is durable, write anything
 * outside the round's transactions, or log a body. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "forward_marks.h"
#include "forward_round.h"
#include "log.h"
#include "metrics.h"

#define IDLE_WAIT_MS	1000	/* longest wait: heartbeat, replays by cfhookctl */
#define RETRY_MS	250	/* after a database error */
#define FULL_SCAN_MS	1000	/* at least this long between scans from 0 */
#define FULL_SCAN_DUTY	20	/* and at least 20 times what the last took */

struct round {
	struct forward_job *done;	/* outcomes to write */
	struct forward_job *claimed;	/* claims made, in claim order */
	struct forward_job **claimed_tail;
	unsigned nclaimed;
	unsigned room;			/* claims allowed */
	const char *released[FORWARD_MAX_CLAIMED];	/* orders freed */
	size_t	 nreleased;
	struct outbox_scan scan;
	int	 full;			/* the scan starts from 0 */
	int	 (*skip)(void *, int64_t, const char *);
	void	*arg;
	struct outbox_due due[FORWARD_MAX_CLAIMED];
	size_t	 ndue;
};

struct log_fields
forward_job_fields(const struct forward_job *j)
{
	const struct event_row *e = &j->row.ev;
	struct log_fields lf = { e->event_key, e->cf_payment_id, e->order_id };

	return lf;
}

void
forward_job_free_list(struct forward_job *j)
{
	struct forward_job *next;

	for (; j != NULL; j = next) {
		next = j->next;
		store_outbox_row_done(&j->row);
		free(j);
	}
}

static void
log_outcome(const struct forward_job *j)
{
	struct log_fields lf = forward_job_fields(j);
	/* NULL for an event that could not be loaded */
	const char *key = j->row.ev.event_key != NULL ? j->row.ev.event_key :
	    "?";
	unsigned n = j->row.attempt;

	if (j->result == DELIVER_UNSTARTED) {
		log_event(LOG_LVL_DEBUG, &lf, "forward: %s claimed but not "
		    "started; given back", key);
		return;
	}
	switch (j->state) {
	case OUTBOX_DONE:
		log_event(LOG_LVL_INFO, &lf, "forward: delivered %s attempt %u",
		    key, n);
		break;
	case OUTBOX_RETRY:
		log_event(LOG_LVL_WARNING, &lf, "forward: %s attempt %u failed: "
		    "%s; will retry in %" PRId64 " s", key, n, j->reason,
		    (j->next_ms - clock_wall_ms() + 999) / 1000);
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
		    key, n, j->result == DELIVER_OK ? "delivered" : "failed");
		break;
	}
}

/* Inside the transaction: every finished job's outcome. An order whose
 * event left 'pending' is released: its next event may go. */
static int
record(struct forward_round *fr, struct round *r, int64_t now)
{
	struct outbox_result res;
	struct forward_job *j;
	const char *order;

	for (j = r->done; j != NULL; j = j->next) {
		res = (struct outbox_result){ j->row.ev.id, j->row.log_id,
		    j->row.series, deliver_outcome(j->result), j->reason,
		    j->started_ms, j->finished_ms };
		if (store_outbox_finish(fr->ob, &res, now, fr->max_attempts,
		    fr->backoff_s, &j->state, &j->next_ms) == -1)
			return -1;
		order = j->row.ev.order_id;
		if (order != NULL && order[0] != '\0' &&
		    j->state != OUTBOX_RETRY && j->state != OUTBOX_PENDING &&
		    r->nreleased < FORWARD_MAX_CLAIMED)
			r->released[r->nreleased++] = order;
	}
	return 0;
}

/* The due events the round may claim, in r->due. Looked for before the
 * transaction, so that the write lock is held only to write; the orders
 * the last round released are looked at too. Returns 0 / -1. */
static int
find_due(struct forward_round *fr, struct round *r, int64_t now)
{
	r->scan.released = (const char *const *)fr->released;
	r->scan.nreleased = fr->nreleased;
	r->ndue = 0;
	return store_outbox_due(fr->ob, now, &r->scan, r->skip, r->arg, r->due,
	    r->room, &r->ndue);
}

/* Inside the transaction: count an attempt of each due event. Returns 0,
 * or -1 (then nothing claimed may be used). */
static int
claim_due(struct forward_round *fr, struct round *r, int64_t now)
{
	enum outbox_claim c;
	struct forward_job *j;
	size_t i;

	for (i = 0; i < r->ndue; i++) {
		j = calloc(1, sizeof(*j));
		if (j == NULL) {
			log_warning("forward: out of memory; will retry");
			return -1;
		}
		j->mark = FORWARD_MARK_NONE;	/* forward.c's, when handed out */
		c = store_outbox_claim(fr->ob, r->due[i].id, now, &j->row);
		if (c != OUTBOX_CLAIMED) {
			free(j);
			if (c == OUTBOX_ERROR)
				return -1;
			continue;	/* gone meanwhile */
		}
		*r->claimed_tail = j;
		r->claimed_tail = &j->next;
		r->nclaimed++;
	}
	return 0;
}

/* One transaction of the round: write() inside it, then the commit (the
 * round's last is synced). Returns 0 / -1. */
static int
transaction(struct forward_round *fr, struct round *r, int64_t now,
    int (*write)(struct forward_round *, struct round *, int64_t), int last)
{
	if (store_outbox_begin(fr->ob) == -1)
		return -1;
	if (write(fr, r, now) == -1) {
		store_outbox_rollback(fr->ob);
		return -1;
	}
	return last ? store_outbox_commit(fr->ob) :
	    store_outbox_commit_part(fr->ob);
}

/* Both halves of a round in one transaction. */
static int
record_and_claim(struct forward_round *fr, struct round *r, int64_t now)
{
	return record(fr, r, now) == -1 ? -1 : claim_due(fr, r, now);
}

/* The round's writes only, so that the write lock is held briefly; the
 * last commit makes everything durable before the first byte goes out
 * (store_outbox.c). While intake is writing, outcomes and claims go in a
 * transaction each: intake, waiting for the lock, waits half as long and
 * goes first between them (store_outbox_commit_part). Otherwise one
 * transaction: a second one cost unix forwarding about 6% of its rate.
 * Returns ROUND_OK, ROUND_NONE (nothing written), or ROUND_RECORDED (the
 * outcomes only: nothing claimed may be used). */
enum round_result { ROUND_OK, ROUND_NONE, ROUND_RECORDED };

static enum round_result
commit_round(struct forward_round *fr, struct round *r, int64_t now)
{
	if (r->done == NULL || r->ndue == 0 ||
	    !store_outbox_intake_writing(fr->ob)) {
		return transaction(fr, r, now, record_and_claim, 1) == -1 ?
		    ROUND_NONE : ROUND_OK;
	}
	if (transaction(fr, r, now, record, 0) == -1)
		return ROUND_NONE;
	if (transaction(fr, r, now, claim_due, 1) == -1)
		return ROUND_RECORDED;
	return ROUND_OK;
}

/* Whether this round's scan looked at every order kept from the last: it
 * had room, and stopped for want of due events, not of room. */
static int
released_seen(const struct round *r)
{
	return r->room > 0 && r->ndue < r->room;
}

/* The orders this round released, kept (copied) for the next scan; the
 * ones kept before are dropped once a scan looked at them all. One that
 * cannot be kept is found by the next scan from 0, made soon. */
static void
keep_released(struct forward_round *fr, const struct round *r, int claimed)
{
	size_t i;

	if (claimed && released_seen(r))
		forward_round_done(fr);
	for (i = 0; i < r->nreleased; i++) {
		if (fr->nreleased < FORWARD_MAX_CLAIMED &&
		    (fr->released[fr->nreleased] =
		    strdup(r->released[i])) != NULL)
			fr->nreleased++;
		else
			fr->full_scan_at = 0;
	}
}

/* After the commit, outside it: each claimed event's columns. One that
 * cannot be read now is reported failed at once (its attempt is counted:
 * it goes out again after its backoff). */
static void
load_claimed(struct forward_round *fr, struct round *r)
{
	struct forward_job *j;

	if (r->claimed == NULL)
		return;
	store_outbox_read_begin(fr->ob);
	for (j = r->claimed; j != NULL; j = j->next) {
		if (store_outbox_load(fr->ob, &j->row) == 0) {
			j->loaded = 1;
			continue;
		}
		j->result = DELIVER_FAILED;
		(void)snprintf(j->reason, sizeof(j->reason), "cannot read the "
		    "event");
	}
	store_outbox_read_end(fr->ob);
}

/* A scan was made and everything it returned is claimed: the fresh events
 * up to where it stopped need no second look. */
static void
scan_seen(struct forward_round *fr, const struct round *r, int64_t t0)
{
	int64_t now = clock_mono_ms();

	fr->cursor = r->scan.scanned;
	if (r->full)
		fr->full_scan_at = now + FULL_SCAN_MS + FULL_SCAN_DUTY *
		    (now - t0);
}

/* How long the dispatcher may wait before something becomes due (a retry,
 * or the next scan from 0) while it has room for claims. */
static int64_t
next_wait(struct forward_round *fr, const struct round *r, int64_t now)
{
	int64_t next = 0, wait = IDLE_WAIT_MS, left;

	if (r->room == 0 || r->nclaimed >= r->room)
		return wait;	/* a finishing delivery wakes the dispatcher */
	if (fr->nreleased > 0)
		return 1;	/* their next events may be due: look now */
	if (store_outbox_next_due(fr->ob, now, &next) == 0 &&
	    next - now < wait)
		wait = next - now;
	left = fr->full_scan_at - clock_mono_ms();
	if (left < wait)
		wait = left;
	return wait > 0 ? wait : 1;
}

/* The round is durable: log and count each outcome. */
static void
round_done(const struct round *r)
{
	static const enum metrics_forward kind[] = {
		[DELIVER_OK] = METRICS_FORWARD_OK,
		[DELIVER_FAILED] = METRICS_FORWARD_FAILED,
		[DELIVER_TIMEOUT] = METRICS_FORWARD_TIMEOUT,
		[DELIVER_UNANSWERED] = METRICS_FORWARD_UNANSWERED,
		[DELIVER_INTERRUPTED] = METRICS_FORWARD_INTERRUPTED,
		[DELIVER_UNSTARTED] = METRICS_FORWARD_N,	/* no attempt */
	};
	const struct forward_job *j;
	struct log_fields lf;

	for (j = r->done; j != NULL; j = j->next) {
		log_outcome(j);
		if (kind[j->result] != METRICS_FORWARD_N)
			metrics_forward_attempt(kind[j->result]);
	}
	for (j = r->claimed; j != NULL; j = j->next) {
		lf = forward_job_fields(j);
		log_event(LOG_LVL_DEBUG, &lf, "forward: sending %s attempt %u",
		    lf.event_key != NULL ? lf.event_key : "?", j->row.attempt);
	}
}

/* The oldest pending event for /metrics (an index lookup: cheap each
 * round). */
static void
note_oldest(struct forward_round *fr)
{
	int64_t received = 0;
	int r = store_outbox_oldest(fr->ob, &received);

	if (r != -1)		/* on an error the last value stands */
		metrics_forward_oldest(r == 0 && received > 0 ? received : 0);
}

static int
run_round(struct forward_round *fr, struct round *r, int64_t now,
    int64_t *wait_ms)
{
	int64_t t0 = clock_mono_ms();

	r->full = t0 >= fr->full_scan_at;
	r->scan.after = r->full ? 0 : fr->cursor;
	if (r->room > 0 && find_due(fr, r, now) == -1)
		return -1;
	/* The claims' started_at is read after the scan: every event it
	 * found was committed, so received, before this moment, and no
	 * attempt is logged as starting before its event arrived. */
	now = clock_wall_ms();
	if (r->done == NULL && r->ndue == 0) {
		/* Nothing to write. The kept orders were looked at and had
		 * nothing due: dropped, or next_wait() would look again every
		 * millisecond for as long as nothing new comes. */
		if (r->room > 0)
			scan_seen(fr, r, t0);
		if (released_seen(r))
			forward_round_done(fr);
		*wait_ms = r->room > 0 ? next_wait(fr, r, now) : IDLE_WAIT_MS;
		return 0;
	}
	switch (commit_round(fr, r, now)) {
	case ROUND_NONE:
		return -1;
	case ROUND_RECORDED:
		/* As a round that claimed nothing, tried again soon; the scan
		 * is not marked seen: its events are still to claim. */
		forward_job_free_list(r->claimed);
		r->claimed = NULL;
		keep_released(fr, r, 0);
		round_done(r);
		*wait_ms = RETRY_MS;
		return 0;
	case ROUND_OK:
		break;
	}
	if (r->room > 0)
		scan_seen(fr, r, t0);
	keep_released(fr, r, 1);
	load_claimed(fr, r);
	round_done(r);
	*wait_ms = next_wait(fr, r, now);
	return 0;
}

int
forward_round_run(struct forward_round *fr, struct forward_job *done,
    unsigned room, int (*skip)(void *, int64_t, const char *), void *arg,
    struct forward_job **claimed, int64_t *wait_ms)
{
	struct round *r = calloc(1, sizeof(*r));
	int rc = -1;

	*claimed = NULL;
	*wait_ms = RETRY_MS;
	if (r == NULL) {
		log_warning("forward: out of memory; will retry");
		return -1;
	}
	r->done = done;
	r->claimed_tail = &r->claimed;
	r->room = room < FORWARD_MAX_CLAIMED ? room : FORWARD_MAX_CLAIMED;
	r->skip = skip;
	r->arg = arg;
	rc = run_round(fr, r, clock_wall_ms(), wait_ms);
	store_outbox_due_done(r->due, r->ndue);
	if (rc == 0)
		note_oldest(fr);
	if (rc == -1) {
		*wait_ms = RETRY_MS;
		forward_job_free_list(r->claimed);
	} else {
		*claimed = r->claimed;
	}
	free(r);
	return rc;
}

void
forward_round_done(struct forward_round *fr)
{
	size_t i;

	for (i = 0; i < fr->nreleased; i++)
		free(fr->released[i]);
	fr->nreleased = 0;
}
