/* ctl_cmd.c - what each cfhookctl command prints (DESIGN "Binaries and
 * commands"): status, list, show, replay, prune, as aligned text with RFC
 * 3339 UTC times, or as one JSON document with --json.
 *
 * The data comes from store_admin.h (all SQL lives there); the look from
 * ctl_out.h, which escapes every byte that came from outside. Messages for
 * the operator ("no event with id 7") go to stderr, results to stdout.
 * Must not: open the database, parse arguments (ctl.c), or run SQL. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_cmd.h"
#include "ctl_out.h"
#include "ctl_time.h"
#include "ctl_zone.h"
#include "envelope.h"
#include "event_json.h"
#include "utf8.h"

#define LINE	1024		/* one composed text value; cut if longer */

static int
fail_nomem(void)
{
	fprintf(stderr, "cfhookctl: out of memory\n");
	return CTL_FAIL;
}

static int
print_json(const struct ctl *c, json_t *doc)
{
	if (ctl_out_json_print(doc, c->out) == -1)
		return fail_nomem();
	return CTL_OK;
}

/* Bytes that are not UTF-8 are shown as U+FFFD (ctl_out.h). */
static int
set_text(json_t *o, const char *key, const char *s)
{
	return event_json_set_text(o, key, s, ctl_out_json_text);
}

/* Every column but the body, for list and show, times in zone z. NULL on
 * no memory. */
static json_t *
event_json(const struct ctl_zone *z, const struct event_row *e)
{
	json_t *o = json_object();
	int bad = 0;

	if (o == NULL)
		return NULL;
	bad |= event_json_columns(o, e, ctl_out_json_text);
	bad |= set_text(o, "event_time", e->event_time);
	bad |= set_text(o, "content_type", e->content_type);
	bad |= ctl_out_set(o, "received_at",
	    ctl_out_json_time(z, e->received_at));
	bad |= ctl_out_set(o, "last_seen_at",
	    ctl_out_json_time(z, e->last_seen_at));
	bad |= ctl_out_set(o, "deliveries", json_integer(e->deliveries));
	bad |= set_text(o, "forward_state", e->forward_state);
	bad |= ctl_out_set(o, "forward_attempts",
	    json_integer(e->forward_attempts));
	/* forward_attempts before the last replay: the current series of
	 * tries is forward_attempts - replay_base. */
	bad |= ctl_out_set(o, "replay_base", json_integer(e->replay_base));
	bad |= set_text(o, "last_error", e->last_error);
	bad |= ctl_out_set(o, "forwarded_at",
	    ctl_out_json_time(z, e->forwarded_at));
	/* 0 means "no retry scheduled" (due at once while pending). */
	bad |= ctl_out_set(o, "next_attempt_at", e->next_attempt_at > 0 ?
	    ctl_out_json_time(z, e->next_attempt_at) : json_null());
	/* The order as this event left it (DESIGN "Orders"); unknown (NULL)
	 * shows as null, where the envelope says false. */
	bad |= event_json_order(o, e, e->order_paid_now < 0 ? json_null() :
	    json_boolean(e->order_paid_now), ctl_out_json_text);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* "#12 KEY" */
static void
event_ref(const struct event_row *e, char *out, size_t n)
{
	(void)snprintf(out, n, "#%" PRId64 " %s", e->id,
	    e->event_key == NULL ? "-" : e->event_key);
}

static void
status_text(const struct ctl *c, const struct store_admin_status *s)
{
	char v[LINE], t[CTL_TIME_MAX];

	ctl_out_field(c->out, "database", c->db_path);
	if (c->forward != NULL)
		ctl_out_field(c->out, "forward", c->forward);
	ctl_out_int_field(c->out, "events", s->total);
	(void)snprintf(v, sizeof(v), "%" PRId64 " (%" PRId64 " due now, %"
	    PRId64 " waiting to retry)", s->pending, s->pending_due,
	    s->pending - s->pending_due);
	ctl_out_field(c->out, "  pending", v);
	ctl_out_int_field(c->out, "  done", s->done);
	(void)snprintf(v, sizeof(v), "%" PRId64 "%s", s->dead, s->dead > 0 ?
	    "  (see: cfhookctl list --state dead; cfhookctl replay --dead)" :
	    "");
	ctl_out_field(c->out, "  dead", v);
	(void)snprintf(v, sizeof(v), "%" PRId64 " (%s day, since %s)",
	    s->received_today, c->zone->name,
	    ctl_out_time(c->zone, s->day_start, 0, t, sizeof(t)));
	ctl_out_field(c->out, "received today", v);
	if (s->has_oldest_pending) {
		event_ref(&s->oldest_pending, v, sizeof(v));
		ctl_out_field(c->out, "oldest pending", v);
		ctl_out_time_field(c->out, c->zone, "  received",
		    s->oldest_pending.received_at, c->now);
		ctl_out_int_field(c->out, "  attempts",
		    s->oldest_pending.forward_attempts);
		if (s->oldest_pending.next_attempt_at > c->now)
			ctl_out_time_field(c->out, c->zone, "  next attempt",
			    s->oldest_pending.next_attempt_at, c->now);
		if (s->oldest_pending.last_error != NULL)
			ctl_out_field(c->out, "  last error",
			    s->oldest_pending.last_error);
	} else {
		ctl_out_field(c->out, "oldest pending", "none");
	}
	if (s->has_last_received) {
		event_ref(&s->last_received, v, sizeof(v));
		ctl_out_field(c->out, "last received", v);
		ctl_out_time_field(c->out, c->zone, "  at",
		    s->last_received.received_at, c->now);
	} else {
		ctl_out_field(c->out, "last received", "never");
	}
	ctl_out_int_field(c->out, "pruned keys", s->tombstones);
	(void)snprintf(v, sizeof(v), "%" PRId64 " (%" PRId64 " need attention%s)",
	    s->orders, s->orders_attention, s->orders_attention > 0 ?
	    ": cfhookctl orders --attention" : "");
	ctl_out_field(c->out, "orders", v);
}

/* A notable row (oldest pending, last received): its columns and age. */
static json_t *
brief_json(const struct ctl *c, int has, const struct event_row *e)
{
	json_t *o;

	if (!has)
		return json_null();
	o = event_json(c->zone, e);
	if (o != NULL && ctl_out_set(o, "age_seconds",
	    json_integer((c->now - e->received_at) / 1000)) == -1) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *
status_json(const struct ctl *c, const struct store_admin_status *s)
{
	json_t *o = json_object();
	int bad = 0;

	if (o == NULL)
		return NULL;
	bad |= set_text(o, "database", c->db_path);
	bad |= ctl_out_set(o, "forward", c->forward == NULL ? json_null() :
	    json_string(c->forward));
	bad |= ctl_out_set(o, "now", ctl_out_json_time(c->zone, c->now));
	bad |= set_text(o, "zone", c->zone->name);
	bad |= ctl_out_set(o, "events", json_integer(s->total));
	bad |= ctl_out_set(o, "pending", json_integer(s->pending));
	bad |= ctl_out_set(o, "pending_due", json_integer(s->pending_due));
	bad |= ctl_out_set(o, "done", json_integer(s->done));
	bad |= ctl_out_set(o, "dead", json_integer(s->dead));
	/* The key keeps its name; the day is the display zone's (UTC unless
	 * --tz or TZ says otherwise). */
	bad |= ctl_out_set(o, "today_utc_since",
	    ctl_out_json_time(c->zone, s->day_start));
	bad |= ctl_out_set(o, "received_today",
	    json_integer(s->received_today));
	bad |= ctl_out_set(o, "pruned_keys", json_integer(s->tombstones));
	bad |= ctl_out_set(o, "orders", json_integer(s->orders));
	bad |= ctl_out_set(o, "orders_attention",
	    json_integer(s->orders_attention));
	bad |= ctl_out_set(o, "oldest_pending", brief_json(c,
	    s->has_oldest_pending, &s->oldest_pending));
	bad |= ctl_out_set(o, "last_received", brief_json(c,
	    s->has_last_received, &s->last_received));
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int
ctl_cmd_status(const struct ctl *c)
{
	struct store_admin_status s;
	int rc;

	if (store_admin_status(c->st, c->now,
	    ctl_zone_day_start(c->zone, c->now), &s) == -1)
		return CTL_FAIL;
	if (c->json) {
		rc = print_json(c, status_json(c, &s));
	} else {
		status_text(c, &s);
		rc = CTL_OK;
	}
	store_admin_status_done(&s);
	return rc;
}

static const char *const list_headers[] = { "ID", "RECEIVED_AT", "TYPE",
    "EVENT_KEY", "ORDER_ID", "AMOUNT", "CURRENCY", "STATE", "ATTEMPTS" };
static const int list_right[] = { 1, 0, 0, 0, 0, 1, 0, 0, 1 };

static int
list_text(const struct ctl *c, const struct event_row *rows,
    size_t n)
{
	struct ctl_table *t;
	char id[24], at[CTL_TIME_MAX], tries[24];
	const char *cells[9];
	size_t i;

	t = ctl_table_new(9, list_headers);
	if (t == NULL)
		return fail_nomem();
	for (i = 0; i < n; i++) {
		(void)snprintf(id, sizeof(id), "%" PRId64, rows[i].id);
		(void)ctl_out_time(c->zone, rows[i].received_at, 0, at,
		    sizeof(at));
		(void)snprintf(tries, sizeof(tries), "%" PRId64,
		    rows[i].forward_attempts);
		cells[0] = id;
		cells[1] = at;
		cells[2] = rows[i].type;
		cells[3] = rows[i].event_key;
		cells[4] = rows[i].order_id;
		cells[5] = rows[i].amount;
		cells[6] = rows[i].currency;
		cells[7] = rows[i].forward_state;
		cells[8] = tries;
		if (ctl_table_add(t, cells) == -1) {
			ctl_table_free(t);
			return fail_nomem();
		}
	}
	ctl_table_print(t, list_right, c->out);
	ctl_table_free(t);
	return CTL_OK;
}

static int
list_json(const struct ctl *c, const struct event_row *rows,
    size_t n)
{
	json_t *a = json_array();
	size_t i;

	if (a == NULL)
		return fail_nomem();
	for (i = 0; i < n; i++) {
		if (json_array_append_new(a, event_json(c->zone,
		    &rows[i])) == -1) {
			json_decref(a);
			return fail_nomem();
		}
	}
	return print_json(c, a);
}

int
ctl_cmd_list(const struct ctl *c, const struct store_admin_filter *f)
{
	struct event_row *rows = NULL;
	size_t n = 0;
	int rc;

	if (store_admin_list(c->st, f, &rows, &n) == -1)
		return CTL_FAIL;
	if (c->json) {
		rc = list_json(c, rows, n);
	} else if (n == 0) {
		fprintf(c->out, "no events match\n");
		rc = CTL_OK;
	} else {
		rc = list_text(c, rows, n);
		if (n == f->limit)
			fprintf(stderr, "cfhookctl: showing the newest %u; "
			    "--limit N shows more\n", f->limit);
	}
	store_admin_events_free(rows, n);
	return rc;
}

/* The envelope the next delivery would carry: attempt is
 * forward_attempts + 1 (attempts so far, plus this one). */
static char *
next_envelope(const struct event_row *e, unsigned *attempt, size_t *len)
{
	*attempt = e->forward_attempts < 0 ? 1 :
	    (unsigned)e->forward_attempts + 1;
	return envelope_build(e, *attempt, NULL, len);
}

/* The order as this event left it; nothing for an event outside the
 * ledger. */
static void
show_order(const struct ctl *c, const struct event_row *e)
{
	if (e->order_state == NULL)
		return;
	ctl_out_field(c->out, "order_state", e->order_state);
	ctl_out_field(c->out, "order_paid_now",
	    e->order_paid_now == 1 ? "yes" : "no");
	ctl_out_field(c->out, "order_attention", e->order_attention);
}

static void
show_fields(const struct ctl *c, const struct event_row *e)
{
	fprintf(c->out, "event %" PRId64 "\n", e->id);
	ctl_out_field(c->out, "event_key", e->event_key);
	ctl_out_field(c->out, "type", e->type);
	ctl_out_field(c->out, "cf_payment_id", e->cf_payment_id);
	ctl_out_field(c->out, "order_id", e->order_id);
	ctl_out_field(c->out, "payment_status", e->payment_status);
	ctl_out_field(c->out, "amount", e->amount);
	ctl_out_field(c->out, "currency", e->currency);
	ctl_out_field(c->out, "event_time", e->event_time);
	ctl_out_field(c->out, "content_type", e->content_type);
	ctl_out_field(c->out, "idempotency_key", e->idempotency_key);
	ctl_out_field(c->out, "webhook_version", e->webhook_version);
	ctl_out_time_field(c->out, c->zone, "received_at", e->received_at,
	    c->now);
	ctl_out_time_field(c->out, c->zone, "last_seen_at", e->last_seen_at,
	    c->now);
	ctl_out_int_field(c->out, "deliveries", e->deliveries);
	ctl_out_field(c->out, "forward_state", e->forward_state);
	ctl_out_int_field(c->out, "forward_attempts", e->forward_attempts);
	if (e->replay_base > 0)		/* replayed: the series restarted */
		ctl_out_int_field(c->out, "replay_base", e->replay_base);
	ctl_out_field(c->out, "last_error", e->last_error);
	ctl_out_time_field(c->out, c->zone, "forwarded_at", e->forwarded_at,
	    c->now);
	show_order(c, e);
	if (e->forward_state == NULL ||
	    strcmp(e->forward_state, "pending") != 0)
		return;
	if (e->next_attempt_at > c->now)
		ctl_out_time_field(c->out, c->zone, "next_attempt_at",
		    e->next_attempt_at, c->now);
	else
		ctl_out_field(c->out, "next_attempt_at", "due now");
}

static const char *const hist_headers[] = { "ATTEMPT", "STARTED_AT",
    "FINISHED_AT", "TOOK", "RESULT", "ERROR" };
static const int hist_right[] = { 1, 0, 0, 1, 0, 0 };

static int
show_history(const struct ctl *c, const struct store_admin_attempt *h,
    size_t n)
{
	char nr[24], started[CTL_TIME_MAX], done[CTL_TIME_MAX], took[32];
	const char *cells[6];
	struct ctl_table *t;
	size_t i;

	fprintf(c->out, "delivery history: %zu attempt%s\n", n,
	    n == 1 ? "" : "s");
	if (n == 0)
		return CTL_OK;
	if ((t = ctl_table_new(6, hist_headers)) == NULL)
		return fail_nomem();
	for (i = 0; i < n; i++) {
		(void)snprintf(nr, sizeof(nr), "%" PRId64, h[i].attempt);
		(void)ctl_out_time(c->zone, h[i].started_at, 0, started,
		    sizeof(started));
		(void)ctl_out_time(c->zone, h[i].finished_at, 0, done,
		    sizeof(done));
		if (h[i].finished_at >= h[i].started_at && h[i].started_at >= 0)
			(void)snprintf(took, sizeof(took), "%.3fs", (double)
			    (h[i].finished_at - h[i].started_at) / 1000.0);
		else
			(void)snprintf(took, sizeof(took), "-");
		cells[0] = nr;
		cells[1] = started;
		cells[2] = done;
		cells[3] = took;
		cells[4] = h[i].ok == 1 ? "ok" : h[i].ok == 0 ? "failed" :
		    "unfinished";
		cells[5] = h[i].error;
		if (ctl_table_add(t, cells) == -1) {
			ctl_table_free(t);
			return fail_nomem();
		}
	}
	ctl_table_print(t, hist_right, c->out);
	ctl_table_free(t);
	return CTL_OK;
}

/* Row, history, envelope, then the body's exact bytes, last, so nothing
 * printed after them blurs where they end. */
static int
show_text(const struct ctl *c, const struct event_row *e,
    const struct store_admin_attempt *h, size_t n)
{
	unsigned attempt;
	size_t len;
	char *env;
	int rc;

	show_fields(c, e);
	if ((rc = show_history(c, h, n)) != CTL_OK)
		return rc;
	env = next_envelope(e, &attempt, &len);
	if (env == NULL)
		return fail_nomem();
	fprintf(c->out, "envelope (as the next delivery sends it, attempt "
	    "%u):\n", attempt);
	(void)fwrite(env, 1, len, c->out);
	fputc('\n', c->out);
	free(env);
	fprintf(c->out, "body (%zu bytes%s, exactly as received):\n",
	    e->body_len, e->body_is_blob ? ", not UTF-8" : "");
	(void)fwrite(e->body, 1, e->body_len, c->out);
	return CTL_OK;
}

static json_t *
history_json(const struct ctl_zone *z, const struct store_admin_attempt *h,
    size_t n)
{
	json_t *a = json_array(), *o;
	size_t i;
	int bad = 0;

	if (a == NULL)
		return NULL;
	for (i = 0; i < n && !bad; i++) {
		o = json_object();
		bad |= o == NULL || json_array_append_new(a, o) == -1;
		if (bad)
			break;
		bad |= ctl_out_set(o, "attempt", json_integer(h[i].attempt));
		bad |= ctl_out_set(o, "started_at",
		    ctl_out_json_time(z, h[i].started_at));
		bad |= ctl_out_set(o, "finished_at",
		    ctl_out_json_time(z, h[i].finished_at));
		bad |= ctl_out_set(o, "ok", h[i].ok == -1 ? json_null() :
		    json_boolean(h[i].ok));
		bad |= set_text(o, "error", h[i].error);
	}
	if (bad) {
		json_decref(a);
		return NULL;
	}
	return a;
}

/* The envelope is given as the exact line the consumer reads (a string):
 * re-encoding it would re-format the payload's numbers, and they are
 * money. The body is a string when it is UTF-8, else base64. */
static json_t *
show_json(const struct ctl *c, const struct event_row *e,
    const struct store_admin_attempt *h, size_t n)
{
	json_t *o = json_object();
	unsigned attempt = 0;
	size_t len = 0;
	char *env = NULL;
	int text, bad = 0;

	if (o == NULL)
		return NULL;
	text = utf8_text(e->body, e->body_len);
	env = next_envelope(e, &attempt, &len);
	bad |= env == NULL;
	bad |= ctl_out_set(o, "event", event_json(c->zone, e));
	if (!bad)
		bad |= ctl_out_set(o, "envelope", json_stringn(env, len));
	bad |= ctl_out_set(o, "envelope_attempt", json_integer(attempt));
	bad |= ctl_out_set(o, "body", text ?
	    json_stringn(e->body, e->body_len) :
	    ctl_out_json_base64(e->body, e->body_len));
	bad |= ctl_out_set(o, "body_base64", json_boolean(!text));
	bad |= ctl_out_set(o, "history", history_json(c->zone, h, n));
	free(env);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static void
not_found(const struct ctl *c, int64_t id, const char *key)
{
	int64_t at = 0, dl = 0;
	char *k, when[CTL_TIME_MAX];

	if (key == NULL) {
		fprintf(stderr, "cfhookctl: no event with id %" PRId64 "\n",
		    id);
		return;
	}
	k = ctl_out_escape(key);
	if (store_admin_tombstone(c->st, key, &at, &dl) == 1 &&
	    strcmp(ctl_out_time(c->zone, at, 0, when, sizeof(when)),
	    "-") != 0)
		fprintf(stderr, "cfhookctl: no event with key '%s' (pruned %s;"
		    " %" PRId64 " deliveries counted)\n", k == NULL ? "?" : k,
		    when, dl);
	else
		fprintf(stderr, "cfhookctl: no event with key '%s'\n",
		    k == NULL ? "?" : k);
	free(k);
}

int
ctl_cmd_show(const struct ctl *c, int64_t id, const char *key,
    int body_only)
{
	struct event_row e;
	struct store_admin_attempt *h = NULL;
	size_t n = 0;
	int rc;

	switch (store_admin_get(c->st, id, key, &e, &h, &n)) {
	case STORE_ADMIN_OK:
		break;
	case STORE_ADMIN_NOT_FOUND:
		not_found(c, id, key);
		return CTL_FAIL;
	default:
		return CTL_FAIL;
	}
	if (body_only) {
		(void)fwrite(e.body, 1, e.body_len, c->out);
		rc = CTL_OK;
	} else if (c->json) {
		rc = print_json(c, show_json(c, &e, h, n));
	} else {
		rc = show_text(c, &e, h, n);
	}
	event_row_done(&e);
	store_admin_history_free(h, n);
	return rc;
}

/* After a replay: who is going to deliver it. */
static void
replay_hint(const struct ctl *c, size_t queued)
{
	if (queued == 0 || c->json)
		return;
	if (c->forward != NULL && strcmp(c->forward, "none") == 0)
		fprintf(stderr, "cfhookctl: warning: forward = none in the "
		    "configuration: nothing delivers pending events\n");
	else
		fprintf(c->out, "a running cfhookd delivers %s within about a "
		    "second\n", queued == 1 ? "it" : "them");
}

static int
replay_text(const struct ctl *c, const struct store_admin_replay *req,
    const char *const *args, size_t n, size_t *queued)
{
	char *a;
	size_t i;
	int rc = CTL_OK;

	for (i = 0; i < n; i++) {
		a = ctl_out_escape(args[i]);
		if (a == NULL)
			return fail_nomem();
		if (req[i].result == REPLAY_QUEUED) {
			fprintf(c->out, "queued   event %" PRId64 " (was %s)\n",
			    req[i].event_id, req[i].previous_state);
			(*queued)++;
		} else if (req[i].result == REPLAY_ALREADY_PENDING) {
			fprintf(c->out, "pending  event %" PRId64 " is already "
			    "pending: left as it is\n", req[i].event_id);
		} else {
			fprintf(stderr, "cfhookctl: no event with %s '%s'\n",
			    req[i].key != NULL ? "key" : "id", a);
			rc = CTL_FAIL;
		}
		free(a);
	}
	return rc;
}

static json_t *
replay_json(const struct store_admin_replay *req, const char *const *args,
    size_t n)
{
	json_t *o = json_object(), *q = json_array(), *p = json_array();
	json_t *m = json_array(), *x;
	size_t i;
	int bad = o == NULL || q == NULL || p == NULL || m == NULL;

	for (i = 0; i < n && !bad; i++) {
		if (req[i].result == REPLAY_QUEUED) {
			x = json_pack("{s:I, s:s}", "id",
			    (json_int_t)req[i].event_id,
			    "previous_state", req[i].previous_state);
			bad |= x == NULL || json_array_append_new(q, x) == -1;
		} else if (req[i].result == REPLAY_ALREADY_PENDING) {
			bad |= json_array_append_new(p,
			    json_integer(req[i].event_id)) == -1;
		} else {
			bad |= json_array_append_new(m, ctl_out_json_text(
			    args[i], strlen(args[i]))) == -1;
		}
	}
	if (!bad) {
		bad |= ctl_out_set(o, "queued", json_incref(q));
		bad |= ctl_out_set(o, "already_pending", json_incref(p));
		bad |= ctl_out_set(o, "not_found", json_incref(m));
	}
	json_decref(q);
	json_decref(p);
	json_decref(m);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int
ctl_cmd_replay(const struct ctl *c, struct store_admin_replay *req,
    const char *const *args, size_t n)
{
	size_t i, queued = 0;
	int rc;

	if (store_admin_replay(c->st, req, n) == -1)
		return CTL_FAIL;
	if (!c->json) {
		rc = replay_text(c, req, args, n, &queued);
		replay_hint(c, queued);
		return rc;
	}
	rc = print_json(c, replay_json(req, args, n));
	for (i = 0; i < n; i++) {
		if (req[i].result == REPLAY_NOT_FOUND) {
			fprintf(stderr, "cfhookctl: some events were not "
			    "found\n");
			return CTL_FAIL;
		}
	}
	return rc;
}

static json_t *
ids_json(const int64_t *ids, size_t n)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; a != NULL && i < n; i++) {
		if (json_array_append_new(a, json_integer(ids[i])) == -1) {
			json_decref(a);
			return NULL;
		}
	}
	return json_pack("{s:o}", "queued", a);
}

int
ctl_cmd_replay_dead(const struct ctl *c)
{
	int64_t *ids = NULL;
	size_t n = 0, i;
	int rc = CTL_OK;

	if (store_admin_replay_dead(c->st, &ids, &n) == -1)
		return CTL_FAIL;
	if (c->json) {
		rc = print_json(c, ids_json(ids, n));
	} else if (n == 0) {
		fprintf(c->out, "no dead events\n");
	} else {
		fprintf(c->out, "queued %zu dead event%s:", n,
		    n == 1 ? "" : "s");
		for (i = 0; i < n; i++)
			fprintf(c->out, " %" PRId64, ids[i]);
		fputc('\n', c->out);
		replay_hint(c, n);
	}
	free(ids);
	return rc;
}

static json_t *
prune_json(const struct ctl_zone *z, int64_t before, int dry_run,
    const struct store_admin_prune *p)
{
	return json_pack("{s:o, s:b, s:I, s:I, s:I, s:I, s:I}", "before",
	    ctl_out_json_time(z, before), "dry_run", dry_run,
	    "events", (json_int_t)p->events,
	    "forward_log", (json_int_t)p->forward_log,
	    "tombstones", (json_int_t)p->tombstones,
	    "pending_kept", (json_int_t)p->pending_kept,
	    "transactions", (json_int_t)p->batches);
}

static void
prune_text(FILE *fp, const struct ctl_zone *z, int64_t before, int dry_run,
    const struct store_admin_prune *p)
{
	char when[CTL_TIME_MAX];

	(void)ctl_out_time(z, before, 0, when, sizeof(when));
	fprintf(fp, "%s %" PRId64 " done or dead event%s received before %s"
	    " and %" PRId64 " delivery log row%s; %" PRId64 " key%s kept in"
	    " pruned_keys%s\n", dry_run ? "would prune" : "pruned",
	    p->events, p->events == 1 ? "" : "s", when, p->forward_log,
	    p->forward_log == 1 ? "" : "s", p->tombstones,
	    p->tombstones == 1 ? "" : "s",
	    dry_run ? " (dry run: nothing changed)" : "");
}

int
ctl_cmd_prune(const struct ctl *c, int64_t before, int dry_run)
{
	struct store_admin_prune p;

	if (store_admin_prune(c->st, before, c->now, dry_run, &p) == -1) {
		/* Whole batches before the failure are committed: say so. */
		fprintf(stderr, "cfhookctl: prune failed; before that it ");
		prune_text(stderr, c->zone, before, 0, &p);
		return CTL_FAIL;
	}
	if (c->json)
		return print_json(c, prune_json(c->zone, before, dry_run, &p));
	prune_text(c->out, c->zone, before, dry_run, &p);
	if (p.pending_kept > 0)
		fprintf(c->out, "kept %" PRId64 " older event%s still pending "
		    "delivery\n", p.pending_kept, p.pending_kept == 1 ? "" :
		    "s");
	return CTL_OK;
}
