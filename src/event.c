/* event.c - the fields and the event_key of a verified webhook body.  Pure.
 *
 * Reads what DESIGN "Events and deduplication" and spec sections 3, 4 and 8
 * name, from a JSON body (jansson) or a decoded form. Every part of an
 * event_key comes from the signed body: nothing unsigned (no header) keys an
 * event. It never refuses a body signed over its raw bytes: anything it
 * cannot read becomes type "UNKNOWN" keyed by the SHA-256 of the raw bytes,
 * so nothing Cashfree signed is lost. A form signed only by its `signature`
 * field is the one exception: its fields must match strict grammars (spec
 * section 11), or it is refused. It must not verify, log, store, or
 * re-serialise JSON; apart from that refusal it fails only when memory runs
 * out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "event.h"
#include "event_detail.h"
#include "form.h"
#include "grammar.h"
#include "jsonarena.h"
#include "jsonraw.h"
#include "num.h"
#include "utf8.h"

#define TYPE_UNKNOWN	"UNKNOWN"
#define TYPE_LINK	"PAYMENT_LINK_EVENT"

enum kind {
	KIND_PAYMENT,	/* PAYMENT_{SUCCESS,FAILED,USER_DROPPED}_WEBHOOK */
	KIND_LINK,		/* PAYMENT_LINK_EVENT */
	KIND_OTHER
};

enum field {
	F_CF_PAYMENT_ID,
	F_ORDER_ID,
	F_PAYMENT_STATUS,
	F_AMOUNT,
	F_CURRENCY,
	F_EVENT_TIME
};

/* Where a field is read from: a dotted path in a JSON body and the flattened
 * key of a form body (NULL: the form has no equivalent), and the grammar
 * that form value must match when the form is signed only by its
 * `signature` field. The first source that yields a value wins, so a table
 * lists candidates in order. */
struct rule {
	enum field	 field;
	const char	*json;
	const char	*form;
	enum grammar	 grammar;
};

static const struct rule payment_rules[] = {
	{ F_CF_PAYMENT_ID, "data.payment.cf_payment_id", "cf_payment_id",
	    GRAMMAR_DIGITS },
	{ F_ORDER_ID, "data.order.order_id", "order_id", GRAMMAR_ID },
	{ F_PAYMENT_STATUS, "data.payment.payment_status", "payment_status",
	    GRAMMAR_PAYMENT_STATUS },
	{ F_AMOUNT, "data.payment.payment_amount", "payment_amount",
	    GRAMMAR_DECIMAL },
	{ F_CURRENCY, "data.payment.payment_currency", "payment_currency",
	    GRAMMAR_CURRENCY },
	{ F_EVENT_TIME, "event_time", "event_time", GRAMMAR_TIME },
};

/* Spec section 3: a link event's payment is its order's transaction. */
static const struct rule link_rules[] = {
	{ F_CF_PAYMENT_ID, "data.order.transaction_id", "transaction_id",
	    GRAMMAR_DIGITS },
	{ F_ORDER_ID, "data.order.order_id", "order_id", GRAMMAR_ID },
	{ F_PAYMENT_STATUS, "data.order.transaction_status",
	    "transaction_status", GRAMMAR_PAYMENT_STATUS },
	{ F_AMOUNT, "data.order.order_amount", "order_amount",
	    GRAMMAR_DECIMAL },
	{ F_CURRENCY, "data.link_currency", "link_currency",
	    GRAMMAR_CURRENCY },
	{ F_EVENT_TIME, "event_time", "event_time", GRAMMAR_TIME },
};

/* Refunds, disputes, settlements, ...: ids where each family keeps them, so
 * per-order ordering and audits work. A refund's status is not a payment
 * status and its amount is not a payment amount: neither is read. */
static const struct rule other_rules[] = {
	{ F_ORDER_ID, "data.order.order_id", "order_id", GRAMMAR_ID },
	{ F_ORDER_ID, "data.refund.order_id", NULL, GRAMMAR_ANY },
	{ F_ORDER_ID, "data.order_details.order_id", NULL, GRAMMAR_ANY },
	{ F_ORDER_ID, "data.order_id", NULL, GRAMMAR_ANY },
	{ F_CF_PAYMENT_ID, "data.payment.cf_payment_id", "cf_payment_id",
	    GRAMMAR_DIGITS },
	{ F_CF_PAYMENT_ID, "data.refund.cf_payment_id", NULL, GRAMMAR_ANY },
	{ F_CF_PAYMENT_ID, "data.cf_payment_id", NULL, GRAMMAR_ANY },
	{ F_PAYMENT_STATUS, "data.payment.payment_status", "payment_status",
	    GRAMMAR_PAYMENT_STATUS },
	{ F_AMOUNT, "data.payment.payment_amount", "payment_amount",
	    GRAMMAR_DECIMAL },
	{ F_CURRENCY, "data.payment.payment_currency", "payment_currency",
	    GRAMMAR_CURRENCY },
	{ F_EVENT_TIME, "event_time", "event_time", GRAMMAR_TIME },
};

struct rules {
	const struct rule *r;
	size_t	 n;
};

static const struct rules kind_rules[] = {
	[KIND_PAYMENT] = { payment_rules,
	    sizeof(payment_rules) / sizeof(payment_rules[0]) },
	[KIND_LINK] = { link_rules,
	    sizeof(link_rules) / sizeof(link_rules[0]) },
	[KIND_OTHER] = { other_rules,
	    sizeof(other_rules) / sizeof(other_rules[0]) },
};

static enum kind
kind_of(const char *type)
{
	if (strcmp(type, "PAYMENT_SUCCESS_WEBHOOK") == 0 ||
	    strcmp(type, "PAYMENT_FAILED_WEBHOOK") == 0 ||
	    strcmp(type, "PAYMENT_USER_DROPPED_WEBHOOK") == 0)
		return KIND_PAYMENT;
	if (strcmp(type, TYPE_LINK) == 0)
		return KIND_LINK;
	return KIND_OTHER;
}

static char **
slot(struct event *ev, enum field f)
{
	switch (f) {
	case F_CF_PAYMENT_ID:
		return &ev->cf_payment_id;
	case F_ORDER_ID:
		return &ev->order_id;
	case F_PAYMENT_STATUS:
		return &ev->payment_status;
	case F_AMOUNT:
		return &ev->amount;
	case F_CURRENCY:
		return &ev->currency;
	case F_EVENT_TIME:
		break;
	}
	return &ev->event_time;
}

/* An empty id identifies nothing: it must not make a key such as
 * "PAYMENT_SUCCESS_WEBHOOK:" that every other id-less event would share. */
static int
is_id(enum field f)
{
	return f == F_CF_PAYMENT_ID || f == F_ORDER_ID;
}

static char *
dup_bytes(const char *s, size_t n)
{
	char *p;

	p = malloc(n + 1);
	if (p == NULL)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* Joins the parts with ':' into a new string, or NULL on no memory. */
static char *
join(const char *const *parts, size_t n)
{
	size_t i, len = 0, off = 0;
	char *s;

	for (i = 0; i < n; i++)
		len += strlen(parts[i]) + 1;
	s = malloc(len);
	if (s == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		size_t l = strlen(parts[i]);

		memcpy(s + off, parts[i], l);
		off += l;
		s[off++] = i + 1 < n ? ':' : '\0';
	}
	return s;
}

/* The object member at a dotted path, or NULL (borrowed from root). */
static json_t *
json_path(json_t *root, const char *path)
{
	json_t *v = root;
	const char *seg = path, *dot;

	while (v != NULL) {
		if (!json_is_object(v))
			return NULL;
		dot = strchr(seg, '.');
		if (dot == NULL)
			return json_object_get(v, seg);
		v = json_object_getn(v, seg, (size_t)(dot - seg));
		seg = dot + 1;
	}
	return NULL;
}

/* Where a value comes from: a parsed JSON object (and the raw text it was
 * parsed from) or a decoded form. */
struct source {
	json_t		*root;
	const char	*body;		/* JSON text: exact number tokens */
	size_t		 len;
	const struct form *form;
};

/* Text of a JSON number: its token exactly as sent, for ids and amounts
 * alike (DESIGN "Events and deduplication": "170.00" stays "170.00", an id
 * of 20 digits keeps every digit, spec section 4 "never via double"). The
 * token is read from the raw body, so a number jsonraw_tame() blanked
 * because jansson cannot hold it (1e400, 2^70) keeps its text too. Only if
 * the raw text cannot be found (it always can in a body jansson accepted)
 * is jansson's value printed. Returns -1 only on no memory. */
static int
number_text(const struct source *src, json_t *v, const char *path,
    char **ret)
{
	char tmp[512];
	size_t off = 0, n = 0;
	int len;

	*ret = NULL;
	if (jsonraw_find(src->body, src->len, path, &off, &n) == 0 &&
	    jsonraw_is_number(src->body + off, n)) {
		*ret = dup_bytes(src->body + off, n);
		return *ret == NULL ? -1 : 0;
	}
	if (json_is_integer(v)) {
		len = snprintf(tmp, sizeof(tmp), "%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
		if (len < 0 || (size_t)len >= sizeof(tmp))
			return 0;
	} else if (json_is_real(v)) {
		if (num_format_double(json_real_value(v), tmp,
		    sizeof(tmp)) == -1)
			return 0;
	} else {
		return 0;
	}
	*ret = dup_bytes(tmp, strlen(tmp));
	return *ret == NULL ? -1 : 0;
}

/* Text of the JSON scalar at path: strings as sent, numbers as their
 * token. Booleans, null, objects, arrays and strings holding NUL give
 * *ret = NULL. Returns -1 only on no memory. */
static int
json_text(const struct source *src, const char *path, char **ret)
{
	json_t *v = json_path(src->root, path);
	const char *s;
	size_t n;

	*ret = NULL;
	if (json_is_number(v) || json_is_null(v))
		return number_text(src, v, path, ret);
	if (!json_is_string(v))
		return 0;
	s = json_string_value(v);
	n = json_string_length(v);
	if (memchr(s, '\0', n) != NULL)
		return 0;
	*ret = dup_bytes(s, n);
	return *ret == NULL ? -1 : 0;
}

/* A form value usable as a field: present, free of NUL, valid UTF-8 (a
 * JSON string always is; a form value may be any bytes). Else NULL. */
static const char *
form_text(const struct form *f, const char *key)
{
	const char *s = form_value(f, key);	/* NULL when it holds NUL */

	if (s == NULL || !utf8_valid(s, strlen(s)))
		return NULL;
	return s;
}

/* The text at one rule's place, or *ret = NULL. -1 on no memory. */
static int
source_text(const struct source *src, const char *json, const char *form,
    char **ret)
{
	const char *s;

	*ret = NULL;
	if (src->form == NULL)
		return json_text(src, json, ret);
	if (form == NULL)
		return 0;
	s = form_text(src->form, form);
	if (s == NULL)
		return 0;
	*ret = dup_bytes(s, strlen(s));
	return *ret == NULL ? -1 : 0;
}

/* Is anything at this place: present, not null, not an empty string? An id
 * that is there but unreadable (a NUL byte, invalid UTF-8, an object, ...)
 * must not key the event as if it were absent, or two different events
 * would share one key and the second would be dropped as a duplicate. */
static int
source_has(const struct source *src, const char *json, const char *form)
{
	const struct form_field *f;
	json_t *v;

	if (src->form != NULL) {
		if (form == NULL)
			return 0;	/* no form equivalent */
		f = form_get(src->form, form);
		return f != NULL && f->value_len > 0;
	}
	v = json_path(src->root, json);
	return v != NULL && !json_is_null(v) &&
	    !(json_is_string(v) && json_string_length(v) == 0);
}

static int
fill_fields(struct event *ev, const struct source *src, enum kind k)
{
	const struct rules *rs = &kind_rules[k];
	size_t i;
	char **dst, *s;
	int id;

	for (i = 0; i < rs->n; i++) {
		dst = slot(ev, rs->r[i].field);
		if (*dst != NULL)
			continue;
		id = is_id(rs->r[i].field);
		if (source_text(src, rs->r[i].json, rs->r[i].form, &s) == -1)
			return -1;
		if (s != NULL && s[0] == '\0' && id) {
			free(s);
			s = NULL;
		}
		*dst = s;
	}
	return 0;
}

/* The details of the event's family (event.h); an empty text is kept as
 * sent (it is a value, and nothing keys on it). */
static int
fill_details(struct event *ev, const struct source *src)
{
	unsigned fam = event_detail_family(ev->type);
	const struct event_detail_rule *rules, *r;
	size_t i, n;

	rules = event_detail_rules(&n);
	for (i = 0; i < n; i++) {
		r = &rules[i];
		if ((r->families & fam) == 0 || ev->detail[r->detail] != NULL)
			continue;
		if (source_text(src, r->json, r->form,
		    &ev->detail[r->detail]) == -1)
			return -1;
	}
	return 0;
}

/* DESIGN "Events and deduplication": a type with no usable id is keyed by
 * the SHA-256 of the raw body (a retry re-sends the same bytes). */
static char *
hash_key(const char *type, const char *body, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	char digest[2 * EVP_MAX_MD_SIZE + 1];
	unsigned int mdlen = 0, i;

	if (EVP_Digest(body != NULL ? body : "", len, md, &mdlen, EVP_sha256(),
	    NULL) != 1)
		return NULL;		/* only allocation can fail here */
	for (i = 0; i < mdlen; i++) {
		digest[2 * i] = hex[md[i] >> 4];
		digest[2 * i + 1] = hex[md[i] & 0x0f];
	}
	digest[2 * mdlen] = '\0';
	return join((const char *[]){ type, "sha256", digest }, 3);
}

/* The natural keys of the other families (DESIGN "Events and
 * deduplication"): TYPE:part:..., every part read from the signed JSON body,
 * so the same event sent twice (a retry, or once per webhook version) is one
 * event. A type ending in '_' is a prefix. A part that is absent, empty or
 * unreadable sends the event to the body hash, unless it is optional (then
 * it is ""): a key must never be shared by two different events. */
#define NATURAL_PARTS	4

static const struct natural {
	const char	*type;
	const char	*parts[NATURAL_PARTS];
	unsigned	 optional;	/* bit i: parts[i] may be absent */
} naturals[] = {
	{ "REFUND_STATUS_WEBHOOK", { "data.refund.cf_refund_id",
	    "data.refund.refund_status" }, 0 },
	{ "SETTLEMENT_", { "data.settlement.settlement_id",
	    "data.settlement.status" }, 0 },
	{ "VENDOR_SETTLEMENT_", { "data.settlement.settlement_id",
	    "data.settlement.status" }, 0 },
	{ "DISPUTE_", { "data.dispute.dispute_id",
	    "data.dispute.dispute_status" }, 0 },
	{ "payment_form_order_webhook", { "data.form.form_id",
	    "data.order.order_id", "data.order.transaction_id",
	    "data.order.order_status" }, 1u << 2 },
};

static const struct natural *
natural_of(const char *type)
{
	size_t i, n;

	for (i = 0; i < sizeof(naturals) / sizeof(naturals[0]); i++) {
		n = strlen(naturals[i].type);
		if (naturals[i].type[n - 1] == '_' ?
		    strncmp(type, naturals[i].type, n) == 0 && type[n] != '\0' :
		    strcmp(type, naturals[i].type) == 0)
			return &naturals[i];
	}
	return NULL;
}

/* The natural key of a JSON body, or *ret NULL when a part is missing.
 * -1 on no memory. */
static int
natural_key(const struct source *src, const char *type,
    const struct natural *nat, char **ret)
{
	const char *parts[1 + NATURAL_PARTS];
	char *text[NATURAL_PARTS] = { NULL };
	size_t i, n = 0;
	int rc = 0, usable = 1;

	*ret = NULL;
	parts[n++] = type;
	for (i = 0; i < NATURAL_PARTS && nat->parts[i] != NULL; i++) {
		if (source_text(src, nat->parts[i], NULL, &text[i]) == -1) {
			rc = -1;
			break;
		}
		if (text[i] != NULL && text[i][0] != '\0')
			parts[n++] = text[i];
		else if ((nat->optional & (1u << i)) != 0 &&
		    !source_has(src, nat->parts[i], NULL))
			parts[n++] = "";
		else
			usable = 0;
	}
	if (rc == 0 && usable) {
		*ret = join(parts, n);
		rc = *ret == NULL ? -1 : 0;
	}
	for (i = 0; i < NATURAL_PARTS; i++)
		free(text[i]);
	return rc;
}

/* A link event's own key parts (spec section 8). */
struct link_parts {
	char	*id;
	char	*status;
	int	 tx_unreadable;	/* transaction_id there but unusable */
};

/* DESIGN "Events and deduplication": payments by id, link events by link,
 * status and transaction, the other families by their natural key, and
 * everything else (and an event missing its ids) by the body hash. */
static char *
make_key(const struct event *ev, enum kind k, const struct link_parts *lp,
    const struct source *src)
{
	const struct natural *nat;
	char *key = NULL;

	if (k == KIND_PAYMENT && ev->cf_payment_id != NULL)
		return join((const char *[]){ ev->type, ev->cf_payment_id }, 2);
	if (k == KIND_LINK && lp->id != NULL && lp->id[0] != '\0' &&
	    lp->status != NULL && lp->status[0] != '\0' &&
	    (ev->cf_payment_id != NULL || !lp->tx_unreadable))
		return join((const char *[]){ ev->type, lp->id, lp->status,
		    ev->cf_payment_id != NULL ? ev->cf_payment_id : "" }, 4);
	nat = k == KIND_OTHER && src->root != NULL ? natural_of(ev->type) :
	    NULL;
	if (nat != NULL) {
		if (natural_key(src, ev->type, nat, &key) == -1)
			return NULL;
		if (key != NULL)
			return key;
	}
	return hash_key(ev->type, src->body, src->len);
}

static int
link_parts(const struct source *src, struct link_parts *lp)
{
	if (source_text(src, "data.link_id", "link_id", &lp->id) == -1 ||
	    source_text(src, "data.link_status", "link_status",
	    &lp->status) == -1)
		return -1;
	lp->tx_unreadable = source_has(src, "data.order.transaction_id",
	    "transaction_id");
	return 0;
}

/* The common part of both entry points: type, fields, key. */
static int
build(const struct source *src, const char *type, struct event *ret)
{
	struct event ev;
	struct link_parts lp = { NULL, NULL, 0 };
	enum kind k;
	int rc = -1;

	memset(&ev, 0, sizeof(ev));
	ev.format = src->form != NULL ? EVENT_FORM : EVENT_JSON;
	if (type == NULL || type[0] == '\0')
		type = TYPE_UNKNOWN;
	ev.type = dup_bytes(type, strlen(type));
	if (ev.type == NULL)
		goto out;
	k = kind_of(ev.type);
	if ((src->root != NULL || src->form != NULL) &&
	    (fill_fields(&ev, src, k) == -1 || fill_details(&ev, src) == -1))
		goto out;
	if (k == KIND_LINK && link_parts(src, &lp) == -1)
		goto out;
	ev.event_key = make_key(&ev, k, &lp, src);
	if (ev.event_key == NULL)
		goto out;
	*ret = ev;
	memset(&ev, 0, sizeof(ev));	/* the caller owns the strings now */
	rc = 0;
out:
	free(lp.id);
	free(lp.status);
	event_done(&ev);
	return rc;
}

/* Top-level "type" when it is a non-empty string without NUL, else NULL. */
static const char *
body_type(json_t *root)
{
	json_t *t = json_object_get(root, "type");
	const char *s;

	if (!json_is_string(t))
		return NULL;
	s = json_string_value(t);
	if (strlen(s) != json_string_length(t))
		return NULL;
	return s;
}

/* Spec section 11: duplicate keys make a body ambiguous, and the default
 * EOF check refuses bytes after the object. A NUL inside one string must
 * not hide the rest of the event (that field alone is unusable). */
#define JSON_FLAGS	(JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL)

/* The body as a jansson object, or NULL when it is not one. A raw NUL byte
 * is never JSON (RFC 8259 allows none outside a string and none unescaped
 * inside one), yet jansson's lexer skips one after a number ({"a":2\0} is
 * accepted), and the envelope copies number text from the raw body: such
 * a body is not read as JSON at all. jansson refuses a whole body for one
 * number beyond its types (an id of 20 digits, 1e400) or one lone UTF-16
 * surrogate escape ("\ud83d" in a customer's name); then the body is parsed
 * again with those spoiled in a copy of the same length (numbers blanked,
 * whose digits number_text() reads from the raw text; escapes made
 * "\u0000", which makes only that field unusable), so a real payment is not
 * turned into UNKNOWN by a field nobody keys on. -1 on no memory. */
int
event_parse_json(const char *body, size_t len, json_t **ret)
{
	json_error_t err;
	json_t *root = NULL;
	char *tame;
	int changed = 0;

	*ret = NULL;
	if (memchr(body, '\0', len) != NULL)
		return 0;
	root = json_loadb(body, len, JSON_FLAGS, &err);
	if (root == NULL) {
		tame = jsonraw_tame(body, len, &changed);
		if (tame == NULL)
			return -1;
		if (changed)
			root = json_loadb(tame, len, JSON_FLAGS, &err);
		free(tame);
	}
	if (root != NULL && !json_is_object(root)) {
		json_decref(root);
		root = NULL;
	}
	*ret = root;
	return 0;
}

int
event_from_json(const char *body, size_t len, struct event *ret)
{
	struct source src = { NULL, NULL, 0, NULL };
	int rc;

	src.body = body != NULL ? body : "";
	src.len = len;
	/* The tree lives only in here: its values come from this thread's
	 * arena (no malloc per value), and the event's strings, which
	 * outlive it, from malloc. */
	jsonarena_begin();
	rc = event_parse_json(src.body, len, &src.root);
	if (rc == 0)
		rc = build(&src, src.root != NULL ? body_type(src.root) : NULL,
		    ret);
	if (rc == 0)
		ret->json_object = src.root != NULL;
	json_decref(src.root);
	jsonarena_end();
	return rc;
}

/* A field of a form signed only by its `signature` field: absent, or
 * present, free of NUL and matching g. */
static int
field_ok(const struct form *f, const char *key, enum grammar g, char *why,
    size_t n)
{
	if (form_get(f, key) == NULL || g == GRAMMAR_ANY)
		return 0;
	if (grammar_match(g, form_value(f, key)))
		return 0;
	(void)snprintf(why, n, "field '%s' is not %s text", key,
	    grammar_name(g));
	return -1;
}

/* Every form field any rule reads, with its grammar: checked whatever the
 * type, so a value cannot hide in a field the type does not read. */
static int
fields_ok(const struct form *f, char *why, size_t n)
{
	static const struct rules all[] = {
		{ payment_rules, sizeof(payment_rules) / sizeof(payment_rules[0]) },
		{ link_rules, sizeof(link_rules) / sizeof(link_rules[0]) },
		{ other_rules, sizeof(other_rules) / sizeof(other_rules[0]) },
	};
	const struct event_detail_rule *dr;
	size_t i, j, ndr;

	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		for (j = 0; j < all[i].n; j++) {
			if (all[i].r[j].form != NULL &&
			    field_ok(f, all[i].r[j].form, all[i].r[j].grammar,
			    why, n) == -1)
				return -1;
		}
	}
	for (i = 0, dr = event_detail_rules(&ndr); i < ndr; i++) {
		if (dr[i].form != NULL &&
		    field_ok(f, dr[i].form, dr[i].grammar, why, n) == -1)
			return -1;
	}
	return 0;
}

/* Spec section 11: a link's status must agree with its amounts and its
 * transaction, so that bytes moved into or out of link_status (PARTIALLY_
 * into link_purpose) cannot turn a part payment into a full one. */
static int
link_consistent(const struct form *f, char *why, size_t n)
{
	const char *status = form_value(f, "link_status");
	const char *amount = form_value(f, "link_amount");
	const char *paid = form_value(f, "link_amount_paid");
	int full, part, c;

	if (status == NULL || form_value(f, "link_id") == NULL) {
		(void)snprintf(why, n, "link event without link_id or "
		    "link_status");
		return -1;
	}
	full = strcmp(status, "PAID") == 0;
	part = strcmp(status, "PARTIALLY_PAID") == 0;
	if ((full || part) && form_value(f, "transaction_id") == NULL) {
		(void)snprintf(why, n, "link status %s without a "
		    "transaction_id", status);
		return -1;
	}
	if (amount == NULL || paid == NULL || !(full || part))
		return 0;
	if (num_decimal_cmp(paid, amount, &c) == -1 ||
	    (full && c < 0) || (part && c >= 0)) {
		(void)snprintf(why, n, "link status %s does not agree with "
		    "link_amount_paid %s of link_amount %s", status, paid,
		    amount);
		return -1;
	}
	return 0;
}

/* Spec section 11: the checks on a form signed only by its `signature`
 * field. 0, or -1 with the reason in why. */
static int
strict_form(const struct form *f, const char *type, char *why, size_t n)
{
	if (type == NULL || !grammar_match(GRAMMAR_TYPE, type)) {
		(void)snprintf(why, n, "field 'type' missing or not %s text",
		    grammar_name(GRAMMAR_TYPE));
		return -1;
	}
	if (fields_ok(f, why, n) == -1)
		return -1;
	if (kind_of(type) == KIND_LINK)
		return link_consistent(f, why, n);
	return 0;
}

enum event_result
event_from_form(const struct form *form, const char *body, size_t len,
    int strict, struct event *ret, char *why, size_t why_len)
{
	struct source src = { NULL, NULL, 0, form };
	const char *type = form_text(form, "type");

	src.body = body != NULL ? body : "";
	src.len = len;
	if (strict && strict_form(form, type, why, why_len) == -1)
		return EVENT_REFUSED;
	/* The "signature" field is the proof, not a field of the event: no
	 * rule reads it. */
	return build(&src, type, ret) == 0 ? EVENT_OK : EVENT_NOMEM;
}

void
event_done(struct event *ev)
{
	size_t i;

	if (ev == NULL)
		return;
	free(ev->type);
	free(ev->event_key);
	free(ev->cf_payment_id);
	free(ev->order_id);
	free(ev->payment_status);
	free(ev->amount);
	free(ev->currency);
	free(ev->event_time);
	for (i = 0; i < EVENT_DETAIL_COUNT; i++)
		free(ev->detail[i]);
	memset(ev, 0, sizeof(*ev));
}
