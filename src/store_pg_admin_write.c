/* store_pg_admin_write.c - the two writes of `cfhookctl` on PostgreSQL:
 * replay and prune (the twins of store_admin_write.c).
 *
 * Both are short transactions while the daemons run. Prune takes, sorted
 * and all at once, the advisory locks of the keys it deletes (the ones an
 * intake batch takes, store_pg.c), so a key is never deleted between a
 * batch's tombstone check and its insert; each batch deletes, tombstones
 * and clears the history in one statement.
 *
 * Must not: touch a pending event (a daemon may be delivering it), or
 * delete an event without leaving its key in pruned_keys in the same
 * transaction. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "buf.h"
#include "log.h"
#include "store_admin.h"
#include "store_pg.h"
#include "store_pg_admin.h"

/* A fresh series of forward_max_attempts tries; forward_attempts (the
 * attempt number the consumer sees) keeps counting (store_admin.h). The
 * lease of the last claim goes too. */
#define REPLAY_SET	"forward_state = 'pending', next_attempt_at = 0," \
	" replay_base = forward_attempts, last_error = NULL," \
	" forwarded_at = NULL, claimed_by = NULL, lease_until = NULL"

#define PENDING_KEPT	"SELECT count(*) FROM events WHERE received_at < $1" \
	" AND forward_state = 'pending'"

/* One replay request inside the caller's transaction. 0 / -1. */
static int
replay_one(struct pg_store *st, struct store_admin_replay *rq)
{
	struct pg_params p;
	PGresult *res;
	const char *state;

	rq->result = REPLAY_NOT_FOUND;
	rq->event_id = 0;
	rq->previous_state[0] = '\0';
	pg_params_init(&p);
	if (rq->key != NULL)
		pg_p_text(&p, rq->key);
	else
		pg_p_int(&p, rq->id);
	/* FOR UPDATE: the state read is the state replaced. */
	res = pg_admin_query(st, rq->key != NULL ?
	    "SELECT id, forward_state FROM events WHERE event_key = $1"
	    " FOR UPDATE" :
	    "SELECT id, forward_state FROM events WHERE id = $1 FOR UPDATE",
	    &p);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return 0;
	}
	rq->event_id = pg_col_int(res, 0, 0, 0);
	state = PQgetvalue(res, 0, 1);
	if (strcmp(state, "pending") == 0) {
		rq->result = REPLAY_ALREADY_PENDING;
		PQclear(res);
		return 0;
	}
	(void)snprintf(rq->previous_state, sizeof(rq->previous_state), "%s",
	    state);
	PQclear(res);
	pg_params_init(&p);
	pg_p_int(&p, rq->event_id);
	res = pg_admin_query(st, "UPDATE events SET " REPLAY_SET
	    " WHERE id = $1 AND forward_state IN ('done', 'dead')", &p);
	if (res == NULL)
		return -1;
	PQclear(res);
	rq->result = REPLAY_QUEUED;
	return 0;
}

int
store_pg_admin_replay(struct store *base, struct store_admin_replay *req,
    size_t n)
{
	struct pg_store *st = pg(base);
	size_t i;
	int ok = 1;

	if (pg_admin_begin(st, 1) == -1)
		return -1;
	for (i = 0; ok && i < n; i++)
		ok = replay_one(st, &req[i]) == 0;
	return pg_admin_end(st, ok);
}

static int
cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

int
store_pg_admin_replay_dead(struct store *base, int64_t **ids, size_t *nret)
{
	struct pg_store *st = pg(base);
	int64_t *v = NULL;
	PGresult *res;
	size_t n = 0, i;
	int ok = 0;

	if (pg_admin_begin(st, 1) == -1)
		return -1;
	res = pg_admin_query(st, "UPDATE events SET " REPLAY_SET
	    " WHERE forward_state = 'dead' RETURNING id", NULL);
	if (res != NULL) {
		n = (size_t)PQntuples(res);
		v = n > 0 ? calloc(n, sizeof(*v)) : NULL;
		ok = n == 0 || v != NULL;
		for (i = 0; ok && i < n; i++)
			v[i] = pg_col_int(res, (int)i, 0, 0);
		if (!ok)
			log_error("cfhookctl: out of memory");
	}
	PQclear(res);
	if (pg_admin_end(st, ok) == -1) {
		free(v);
		return -1;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_id);
	*ids = v;
	*nret = n;
	return 0;
}

/* Dry run: what prune would do, from one snapshot. */
static int
prune_count(struct pg_store *st, int64_t before, struct store_admin_prune *p)
{
	struct pg_params pp;
	PGresult *res;
	int ok = 0;

	if (pg_admin_begin(st, 0) == -1)
		return -1;
	pg_params_init(&pp);
	pg_p_int(&pp, before);
	res = pg_admin_query(st, "SELECT count(*), (SELECT count(*) FROM"
	    " forward_log l JOIN events e ON e.id = l.event_id"
	    " WHERE e.received_at < $1 AND e.forward_state IN"
	    " ('done', 'dead')) FROM events WHERE received_at < $1"
	    " AND forward_state IN ('done', 'dead')", &pp);
	if (res != NULL) {
		p->events = pg_col_int(res, 0, 0, 0);
		p->forward_log = pg_col_int(res, 0, 1, 0);
		p->tombstones = p->events;
		ok = pg_admin_count(st, PENDING_KEPT, before, 1,
		    &p->pending_kept) == 0;
	}
	PQclear(res);
	return pg_admin_end(st, ok);
}

/* The next batch's ids and key locks: "{id,...}" for the delete, *n of
 * them. 0 / -1. */
static int
prune_pick(struct pg_store *st, int64_t before, char **ids, int *n)
{
	struct pg_params p;
	struct buf b;
	PGresult *res;
	int64_t *keys = NULL;
	char num[24];
	int i, bad = 0, rc = -1;

	*ids = NULL;
	pg_params_init(&p);
	pg_p_int(&p, before);
	pg_p_int(&p, STORE_ADMIN_PRUNE_BATCH);
	res = pg_admin_query(st, "SELECT id, event_key FROM events"
	    " WHERE received_at < $1 AND forward_state IN ('done', 'dead')"
	    " ORDER BY id LIMIT $2", &p);
	if (res == NULL)
		return -1;
	*n = PQntuples(res);
	keys = calloc((size_t)*n + 1, sizeof(*keys));
	buf_init(&b, (size_t)*n * 22 + 3);
	bad |= keys == NULL;
	bad |= buf_puts(&b, "{");
	for (i = 0; !bad && i < *n; i++) {
		keys[i] = pg_lock_key("e", PQgetvalue(res, i, 1));
		(void)snprintf(num, sizeof(num), "%s%s", i > 0 ? "," : "",
		    PQgetvalue(res, i, 0));
		bad |= buf_puts(&b, num);
	}
	bad |= buf_puts(&b, "}");
	if (bad) {
		log_error("cfhookctl: out of memory");
		buf_done(&b);
		goto out;
	}
	*ids = buf_take(&b, NULL);
	if (pg_lock_keys(st, keys, (size_t)*n) == -1) {
		pg_log_error(st, "prune: key locks");
		goto out;
	}
	rc = 0;
out:
	free(keys);
	PQclear(res);
	return rc;
}

/* One statement: the rows go (those still done or dead once locked), their
 * keys become tombstones, their history goes with them. */
static const char PRUNE_SQL[] =
    "WITH gone AS (DELETE FROM events WHERE id = ANY($1::bigint[])"
    "   AND forward_state IN ('done', 'dead')"
    "   RETURNING id, event_key, deliveries),"
    " t AS (INSERT INTO pruned_keys (event_key, pruned_at, deliveries)"
    "   SELECT event_key, $2, deliveries FROM gone"
    "   ON CONFLICT (event_key) DO UPDATE"
    "   SET deliveries = pruned_keys.deliveries + excluded.deliveries"
    "   RETURNING 1),"
    " l AS (DELETE FROM forward_log WHERE event_id IN (SELECT id FROM gone)"
    "   RETURNING 1)"
    " SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM t),"
    " (SELECT count(*) FROM l)";

/* One batch in its own transaction; *picked gets the rows it looked at. */
static int
prune_batch(struct pg_store *st, int64_t before, int64_t now,
    struct store_admin_prune *p, int *picked)
{
	struct pg_params pp;
	PGresult *res = NULL;
	char *ids = NULL;
	int ok = 0;

	if (pg_admin_begin(st, 1) == -1)
		return -1;
	if (prune_pick(st, before, &ids, picked) == -1)
		goto out;
	if (*picked == 0) {
		ok = 1;
		goto out;
	}
	pg_params_init(&pp);
	pg_p_text(&pp, ids);
	pg_p_int(&pp, now);
	res = pg_admin_query(st, PRUNE_SQL, &pp);
	if (res == NULL)
		goto out;
	p->events += pg_col_int(res, 0, 0, 0);
	p->tombstones += pg_col_int(res, 0, 1, 0);
	p->forward_log += pg_col_int(res, 0, 2, 0);
	ok = 1;
out:
	PQclear(res);
	free(ids);
	if (pg_admin_end(st, ok) == -1)
		return -1;
	p->batches++;
	return 0;
}

int
store_pg_admin_prune(struct store *base, int64_t before, int64_t now,
    int dry_run, struct store_admin_prune *ret)
{
	struct pg_store *st = pg(base);
	struct store_admin_prune p;
	int picked = 0, rc = -1;

	memset(&p, 0, sizeof(p));
	if (dry_run) {
		if (prune_count(st, before, &p) == -1)
			return -1;
		*ret = p;
		return 0;
	}
	do {
		if (prune_batch(st, before, now, &p, &picked) == -1)
			goto out;
	} while (picked == STORE_ADMIN_PRUNE_BATCH);
	if (pg_admin_begin(st, 0) == -1)
		goto out;
	if (pg_admin_end(st, pg_admin_count(st, PENDING_KEPT, before, 1,
	    &p.pending_kept) == 0) == -1)
		goto out;
	rc = 0;
out:
	/* Batches already committed are real: report them even on failure. */
	*ret = p;
	return rc;
}
