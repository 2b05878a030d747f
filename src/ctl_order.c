/* ctl_order.c - what `cfhookctl orders` and `cfhookctl order ID` print
 * (DESIGN "Orders"): the ledger as a table, and one order with its
 * timeline (events, the state each left it in, attention raised,
 * delivery attempts) in time order, or the same as JSON with --json.
 *
 * The data comes from store_orders.h; the look from ctl_out.h, which
 * escapes every byte that came from outside (an order id is whatever the
 * shop sent). Must not: open the database, parse arguments, or run SQL. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_cmd.h"
#include "ctl_out.h"
#include "ctl_time.h"
#include "event_json.h"
#include "ledger.h"

#define WHAT_MAX	1024	/* one timeline line; cut if longer */

static int
nomem(void)
{
	fprintf(stderr, "cfhookctl: out of memory\n");
	return CTL_FAIL;
}

static int
print_json(const struct ctl *c, json_t *doc)
{
	if (ctl_out_json_print(doc, c->out) == -1)
		return nomem();
	return CTL_OK;
}

/* Bytes that are not UTF-8 are shown as U+FFFD (ctl_out.h). */
static int
set_text(json_t *o, const char *key, const char *s)
{
	return event_json_set_text(o, key, s, ctl_out_json_text);
}

static json_t *
json_id(int64_t id)
{
	return id < 0 ? json_null() : json_integer(id);
}

static json_t *
order_json(const struct ctl *c, const struct store_order *o)
{
	json_t *j = json_object();
	int bad = 0;

	if (j == NULL)
		return NULL;
	bad |= set_text(j, "order_id", o->order_id);
	bad |= set_text(j, "state", o->state);
	bad |= set_text(j, "order_amount", o->order_amount);
	bad |= set_text(j, "currency", o->currency);
	bad |= set_text(j, "paid_amount", o->paid_amount);
	bad |= set_text(j, "paid_currency", o->paid_currency);
	bad |= ctl_out_set(j, "successes", json_integer(o->successes));
	bad |= set_text(j, "attention", o->attention);
	bad |= ctl_out_set(j, "first_event_at",
	    ctl_out_json_time(c->zone, o->first_event_at));
	bad |= ctl_out_set(j, "paid_at", ctl_out_json_time(c->zone,
	    o->paid_at));
	bad |= ctl_out_set(j, "paid_event_id", json_id(o->paid_event_id));
	bad |= ctl_out_set(j, "last_event_id", json_id(o->last_event_id));
	bad |= ctl_out_set(j, "last_event_at",
	    ctl_out_json_time(c->zone, o->last_event_at));
	if (bad) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static const char *const orders_headers[] = { "ORDER_ID", "STATE",
    "ORDER_AMOUNT", "PAID_AMOUNT", "CURRENCY", "SUCCESSES", "LAST_EVENT_AT",
    "ATTENTION" };
static const int orders_right[] = { 0, 0, 1, 1, 0, 1, 0, 0 };

static int
orders_text(const struct ctl *c, const struct store_order *rows, size_t n)
{
	char succ[24], at[CTL_TIME_MAX];
	const char *cells[8];
	struct ctl_table *t;
	size_t i;

	t = ctl_table_new(8, orders_headers);
	if (t == NULL)
		return nomem();
	for (i = 0; i < n; i++) {
		(void)snprintf(succ, sizeof(succ), "%" PRId64,
		    rows[i].successes);
		cells[0] = rows[i].order_id;
		cells[1] = rows[i].state;
		cells[2] = rows[i].order_amount;
		cells[3] = rows[i].paid_amount;
		cells[4] = rows[i].currency;
		cells[5] = succ;
		cells[6] = ctl_out_time(c->zone, rows[i].last_event_at, 0, at,
		    sizeof(at));
		cells[7] = rows[i].attention;
		if (ctl_table_add(t, cells) == -1) {
			ctl_table_free(t);
			return nomem();
		}
	}
	ctl_table_print(t, orders_right, c->out);
	ctl_table_free(t);
	return CTL_OK;
}

int
ctl_cmd_orders(const struct ctl *c, const struct store_orders_filter *f)
{
	struct store_order *rows = NULL;
	json_t *a;
	size_t n = 0, i;
	int rc = CTL_OK;

	if (store_orders_list(c->st, f, &rows, &n) == -1)
		return CTL_FAIL;
	if (c->json) {
		a = json_array();
		for (i = 0; a != NULL && i < n; i++) {
			if (json_array_append_new(a, order_json(c,
			    &rows[i])) == -1) {
				json_decref(a);
				a = NULL;
			}
		}
		rc = print_json(c, a);
	} else if (n == 0) {
		fprintf(c->out, "no orders match\n");
	} else {
		rc = orders_text(c, rows, n);
		if (n == f->limit)
			fprintf(stderr, "cfhookctl: showing the %u most recently "
			    "active; --limit N shows more\n", f->limit);
	}
	store_orders_free(rows, n);
	return rc;
}

/* What one event did to its order, read from the stamps in id order (the
 * order as each event left it): the state before, whether it changed (or
 * this event paid it), and the attention it raised. */
struct step_view {
	const char *before;	/* NULL: unknown (earlier events pruned) */
	int	 new_order;
	int	 changed;
	unsigned raised;
};

static void
derive(const struct store_order_timeline *t, struct step_view *v)
{
	const char *prev = NULL;
	unsigned prev_att = 0, att;
	int first = 1;
	size_t i;

	for (i = 0; i < t->nevents; i++) {
		const struct store_order_event *e = &t->events[i];

		memset(&v[i], 0, sizeof(v[i]));
		if (e->ev.order_state == NULL)
			continue;	/* not part of the ledger */
		if (first && t->has_order &&
		    e->ev.received_at == t->order.first_event_at) {
			prev = "PENDING";
			v[i].new_order = 1;
		}
		v[i].before = prev;
		v[i].changed = v[i].new_order || prev == NULL ||
		    strcmp(prev, e->ev.order_state) != 0 || e->ev.order_paid_now == 1;
		att = ledger_attention_parse(e->ev.order_attention);
		v[i].raised = att & ~prev_att;
		prev_att = att;
		prev = e->ev.order_state;
		first = 0;
	}
}

/* One line of the merged timeline. */
struct entry {
	int64_t	 at;
	size_t	 seq;		/* keeps an event's lines in order */
	int64_t	 event_id;
	char	*what;
};

static int
entry_cmp(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	if (x->at != y->at)
		return x->at < y->at ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

struct entries {
	struct entry *v;
	size_t	 n;
};

static int __attribute__((format(printf, 4, 5)))
add(struct entries *es, int64_t at, int64_t event_id, const char *fmt, ...)
{
	struct entry *v;
	char what[WHAT_MAX];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	v = realloc(es->v, (es->n + 1) * sizeof(*v));
	if (v == NULL)
		return -1;
	es->v = v;
	v[es->n].at = at;
	v[es->n].seq = es->n;
	v[es->n].event_id = event_id;
	v[es->n].what = strdup(what);
	if (v[es->n].what == NULL)
		return -1;
	es->n++;
	return 0;
}

static const char *
dash(const char *s)
{
	return s != NULL ? s : "-";
}

/* The lines of one event: itself, what it did to the order, its
 * delivery attempts. */
static int
event_entries(struct entries *es, const struct store_order_event *e,
    const struct step_view *v)
{
	char att[LEDGER_ATTENTION_MAX];
	const struct store_admin_attempt *a;
	size_t k;
	int bad = 0;

	bad |= add(es, e->ev.received_at, e->ev.id, "%s %s %s %s, payment %s "
	    "(forward: %s)", dash(e->ev.type), dash(e->ev.payment_status),
	    dash(e->ev.amount), dash(e->ev.currency), dash(e->ev.cf_payment_id),
	    dash(e->ev.forward_state));
	if (e->ev.order_state != NULL && v->changed)
		bad |= add(es, e->ev.received_at, e->ev.id, "state %s -> %s%s%s",
		    v->before != NULL ? v->before : "?", e->ev.order_state,
		    e->ev.order_paid_now == 1 ? ", paid now" : "",
		    v->new_order ? " (new order)" : "");
	if (v->raised != 0) {
		ledger_attention_text(v->raised, att, sizeof(att));
		bad |= add(es, e->ev.received_at, e->ev.id, "attention: %s", att);
	}
	for (k = 0; k < e->nattempts; k++) {
		a = &e->attempts[k];
		if (a->ok == 1)
			bad |= add(es, a->started_at, e->ev.id, "delivery attempt "
			    "%" PRId64 " ok", a->attempt);
		else
			bad |= add(es, a->started_at, e->ev.id, "delivery attempt "
			    "%" PRId64 " %s%s%s", a->attempt, a->ok == 0 ?
			    "failed" : "unfinished", a->error != NULL ?
			    ": " : "", a->error != NULL ? a->error : "");
	}
	return bad ? -1 : 0;
}

static void
entries_free(struct entries *es)
{
	size_t i;

	for (i = 0; i < es->n; i++)
		free(es->v[i].what);
	free(es->v);
}

static const char *const timeline_headers[] = { "TIME", "EVENT", "WHAT" };

static int
timeline_text(const struct ctl *c, const struct store_order_timeline *t,
    const struct step_view *v)
{
	struct entries es = { NULL, 0 };
	struct ctl_table *tab = NULL;
	char at[CTL_TIME_MAX], id[24];
	const char *cells[3];
	size_t i;
	int rc = CTL_FAIL;

	for (i = 0; i < t->nevents; i++) {
		if (event_entries(&es, &t->events[i], &v[i]) == -1)
			goto out;
	}
	qsort(es.v, es.n, sizeof(*es.v), entry_cmp);
	if ((tab = ctl_table_new(3, timeline_headers)) == NULL)
		goto out;
	for (i = 0; i < es.n; i++) {
		(void)snprintf(id, sizeof(id), "#%" PRId64, es.v[i].event_id);
		cells[0] = ctl_out_time(c->zone, es.v[i].at, 0, at,
		    sizeof(at));
		cells[1] = id;
		cells[2] = es.v[i].what;
		if (ctl_table_add(tab, cells) == -1)
			goto out;
	}
	fprintf(c->out, "timeline: %zu event%s\n", t->nevents,
	    t->nevents == 1 ? "" : "s");
	ctl_table_print(tab, NULL, c->out);
	rc = CTL_OK;
out:
	ctl_table_free(tab);
	entries_free(&es);
	return rc == CTL_OK ? rc : nomem();
}

static void
order_fields(const struct ctl *c, const struct store_order_timeline *t,
    const char *order_id)
{
	const struct store_order *o = &t->order;
	char v[256], *id = ctl_out_escape(order_id);

	fprintf(c->out, "order %s\n", id != NULL ? id : "?");
	free(id);
	if (!t->has_order) {
		ctl_out_field(c->out, "state", "not in the ledger (no payment "
		    "or Payment Link event names it)");
		return;
	}
	ctl_out_field(c->out, "state", o->state);
	ctl_out_field(c->out, "attention", o->attention);
	ctl_out_field(c->out, "order_amount", o->order_amount);
	ctl_out_field(c->out, "currency", o->currency);
	ctl_out_field(c->out, "paid_amount", o->paid_amount);
	if (o->paid_currency != NULL && (o->currency == NULL ||
	    strcmp(o->paid_currency, o->currency) != 0))
		ctl_out_field(c->out, "paid_currency", o->paid_currency);
	ctl_out_int_field(c->out, "successes", o->successes);
	ctl_out_time_field(c->out, c->zone, "first_event_at",
	    o->first_event_at, c->now);
	ctl_out_time_field(c->out, c->zone, "paid_at", o->paid_at, c->now);
	if (o->paid_event_id >= 0) {
		(void)snprintf(v, sizeof(v), "#%" PRId64, o->paid_event_id);
		ctl_out_field(c->out, "paid_event", v);
	}
	ctl_out_time_field(c->out, c->zone, "last_event_at", o->last_event_at,
	    c->now);
}

static json_t *
attempts_json(const struct ctl *c, const struct store_order_event *e)
{
	json_t *a = json_array(), *o;
	size_t k;
	int bad = a == NULL;

	for (k = 0; !bad && k < e->nattempts; k++) {
		const struct store_admin_attempt *x = &e->attempts[k];

		o = json_object();
		bad |= o == NULL || json_array_append_new(a, o) == -1;
		if (bad)
			break;
		bad |= ctl_out_set(o, "attempt", json_integer(x->attempt));
		bad |= ctl_out_set(o, "started_at", ctl_out_json_time(c->zone,
		    x->started_at));
		bad |= ctl_out_set(o, "finished_at", ctl_out_json_time(c->zone,
		    x->finished_at));
		bad |= ctl_out_set(o, "ok", x->ok == -1 ? json_null() :
		    json_boolean(x->ok));
		bad |= set_text(o, "error", x->error);
	}
	if (bad) {
		json_decref(a);
		return NULL;
	}
	return a;
}

static json_t *
change_json(const struct store_order_event *e, const struct step_view *v)
{
	if (e->ev.order_state == NULL || !v->changed)
		return json_null();
	return json_pack("{s:o, s:s, s:b}", "from", v->before != NULL ?
	    json_string(v->before) : json_null(), "to", e->ev.order_state,
	    "new_order", v->new_order);
}

static json_t *
timeline_event_json(const struct ctl *c, const struct store_order_event *e,
    const struct step_view *v)
{
	char att[LEDGER_ATTENTION_MAX];
	json_t *o = json_object();
	int bad = 0;

	if (o == NULL)
		return NULL;
	ledger_attention_text(v->raised, att, sizeof(att));
	/* The members cfhookctl show has too, less order_id (the document
	 * names it once, at the top) and the headers. */
	bad |= event_json_columns_of_order(o, &e->ev, ctl_out_json_text);
	bad |= ctl_out_set(o, "received_at", ctl_out_json_time(c->zone,
	    e->ev.received_at));
	bad |= set_text(o, "forward_state", e->ev.forward_state);
	bad |= ctl_out_set(o, "forward_attempts",
	    json_integer(e->ev.forward_attempts));
	/* Unknown (NULL) is null, as in cfhookctl show. */
	bad |= event_json_ledger(o, &e->ev, e->ev.order_paid_now < 0 ?
	    json_null() : json_boolean(e->ev.order_paid_now),
	    ctl_out_json_text);
	bad |= ctl_out_set(o, "state_change", change_json(e, v));
	bad |= set_text(o, "attention_raised", att[0] != '\0' ? att : NULL);
	bad |= ctl_out_set(o, "deliveries", attempts_json(c, e));
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *
timeline_json(const struct ctl *c, const struct store_order_timeline *t,
    const struct step_view *v, const char *order_id)
{
	json_t *o = json_object(), *a = json_array();
	size_t i;
	int bad = o == NULL || a == NULL;

	for (i = 0; !bad && i < t->nevents; i++)
		bad |= json_array_append_new(a, timeline_event_json(c,
		    &t->events[i], &v[i])) == -1;
	if (!bad) {
		bad |= set_text(o, "order_id", order_id);
		bad |= ctl_out_set(o, "order", t->has_order ?
		    order_json(c, &t->order) : json_null());
		bad |= ctl_out_set(o, "events", json_incref(a));
	}
	json_decref(a);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int
ctl_cmd_order(const struct ctl *c, const char *order_id)
{
	struct store_order_timeline t;
	struct step_view *v;
	char *id;
	int rc;

	switch (store_orders_get(c->st, order_id, &t)) {
	case STORE_ADMIN_OK:
		break;
	case STORE_ADMIN_NOT_FOUND:
		id = ctl_out_escape(order_id);
		fprintf(stderr, "cfhookctl: no order '%s'\n",
		    id != NULL ? id : "?");
		free(id);
		return CTL_FAIL;
	default:
		return CTL_FAIL;
	}
	v = calloc(t.nevents + 1, sizeof(*v));
	if (v == NULL) {
		store_orders_timeline_done(&t);
		return nomem();
	}
	derive(&t, v);
	if (c->json) {
		rc = print_json(c, timeline_json(c, &t, v, order_id));
	} else {
		order_fields(c, &t, order_id);
		rc = timeline_text(c, &t, v);
	}
	free(v);
	store_orders_timeline_done(&t);
	return rc;
}
