/* envelope.c - the JSON object handed to the merchant for each event
 * (DESIGN "Forwarding"): one line of compact JSON built from a stored row.
 *
 * Pure: no I/O, no logging, no clock. It must not re-write what Cashfree
 * sent: a JSON body goes into `payload` with its own number text (jansson
 * would print 0.1 as 0.10000000000000001 and 170.00 as 170.0, and amounts
 * are money), only the whitespace between tokens is dropped so the envelope
 * stays one line. A body that is not valid JSON (or has duplicate keys) gets
 * `payload: null` and, when it is valid UTF-8, its text as `body`, so the
 * consumer still sees everything that was signed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "buf.h"
#include "envelope.h"
#include "event.h"
#include "event_json.h"
#include "form.h"
#include "utf8.h"

/* "2026-11-21T23:47:09.123Z" (RFC 3339, UTC, milliseconds). */
static int
format_time(int64_t ms, char *out, size_t n)
{
	int64_t frac = ms % 1000;
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	int len;

	if (frac < 0) {		/* floor, so times before 1970 stay right */
		frac += 1000;
		secs -= 1;
	}
	if (gmtime_r(&secs, &tm) == NULL)
		return -1;
	len = snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int)frac);
	return len > 0 && (size_t)len < n ? 0 : -1;
}

/* What the row carries beyond the columns every event has: the headers
 * recorded as received, the order as it stood after this event (DESIGN
 * "Orders"; null and false for an event outside the ledger), and the
 * details of its family, read from the stored body as intake read it
 * (ev). */
static int
set_extra(json_t *env, const struct event_row *row, const struct event *ev)
{
	size_t d;
	int bad = 0;

	bad |= event_json_order(env, row, json_boolean(row->order_state !=
	    NULL && row->order_paid_now == 1), NULL);
	for (d = 0; d < EVENT_DETAIL_COUNT && bad == 0; d++) {
		if (row->type != NULL &&
		    event_detail_applies(row->type, (enum event_detail)d))
			bad |= event_json_set_text(env,
			    event_detail_name((enum event_detail)d),
			    ev->detail[d], NULL);
	}
	return bad != 0 ? -1 : 0;
}

static json_t *
header(const struct event_row *row, const struct event *ev,
    unsigned attempt, int form)
{
	json_t *env = json_object();
	char when[40];
	int bad = 0;

	if (env == NULL)
		return NULL;
	bad |= event_json_columns(env, row, NULL);
	if (format_time(row->received_at, when, sizeof(when)) == -1)
		bad |= json_object_set_new(env, "received_at", json_null());
	else
		bad |= event_json_set_text(env, "received_at", when, NULL);
	bad |= json_object_set_new(env, "attempt",
	    json_integer((json_int_t)attempt));
	bad |= event_json_set_text(env, "format", form ? "form" : "json",
	    NULL);
	if (bad != 0 || set_extra(env, row, ev) == -1) {
		json_decref(env);
		return NULL;
	}
	return env;
}

/* payload null, plus the raw text as `body` when it can be a JSON string. */
static int
set_unparsed(json_t *env, const struct event_row *row)
{
	const char *body = row->body != NULL ? row->body : "";

	if (json_object_set_new(env, "payload", json_null()) == -1)
		return -1;
	if (memchr(body, '\0', row->body_len) != NULL ||
	    !utf8_valid(body, row->body_len))
		return 0;
	return json_object_set_new(env, "body",
	    json_stringn(body, row->body_len));
}

/* Form fields as an object of strings, without the signature (it is the
 * proof, not data). A key or value the consumer could not read as a JSON
 * string (NUL inside, invalid UTF-8) is left out. */
static int
set_form(json_t *env, const struct event_row *row)
{
	struct form form;
	json_t *obj = NULL;
	size_t i;
	int rc = -1;

	switch (form_parse(row->body != NULL ? row->body : "", row->body_len,
	    &form)) {
	case FORM_OK:
		break;
	case FORM_NOMEM:
		goto out;
	default:
		rc = set_unparsed(env, row);
		goto out;
	}
	obj = json_object();
	if (obj == NULL)
		goto out;
	for (i = 0; i < form.n; i++) {
		const struct form_field *f = &form.fields[i];

		if (strlen(f->key) != f->key_len ||
		    strlen(f->value) != f->value_len ||
		    strcmp(f->key, "signature") == 0 ||
		    !utf8_valid(f->key, f->key_len) ||
		    !utf8_valid(f->value, f->value_len))
			continue;
		if (json_object_set_new(obj, f->key,
		    json_stringn(f->value, f->value_len)) == -1)
			goto out;
	}
	rc = json_object_set_new(env, "payload", obj);
	obj = NULL;		/* set_new took it, even on failure */
out:
	json_decref(obj);
	form_done(&form);
	return rc;
}

/* Copy JSON text that jansson accepted, dropping the blanks between tokens
 * (RFC 8259 section 2); inside strings every byte is kept (a valid JSON
 * string holds no raw control character, so the result is one line). */
static int
append_compact(struct buf *out, const char *s, size_t n)
{
	size_t i, start = 0;
	int in_str = 0, esc = 0;

	for (i = 0; i < n; i++) {
		char c = s[i];

		if (in_str) {
			if (esc)
				esc = 0;
			else if (c == '\\')
				esc = 1;
			else if (c == '"')
				in_str = 0;
			continue;
		}
		if (c == '"') {
			in_str = 1;
		} else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			if (buf_append(out, s + start, i - start) == -1)
				return -1;
			start = i + 1;
		}
	}
	return buf_append(out, s + start, n - start);
}

/* The header object's text with ,"payload":BODY spliced in before its
 * closing brace. */
static char *
splice(const char *head, const struct event_row *row, size_t *len)
{
	static const char key[] = ",\"payload\":";
	size_t hlen = strlen(head);
	struct buf out;
	char *ret = NULL;

	buf_init(&out, SIZE_MAX);
	if (hlen < 2 || head[hlen - 1] != '}')
		goto out;
	if (buf_append(&out, head, hlen - 1) == -1 ||
	    buf_append(&out, key, sizeof(key) - 1) == -1 ||
	    append_compact(&out, row->body, row->body_len) == -1 ||
	    buf_append(&out, "}", 1) == -1)
		goto out;
	ret = buf_take(&out, len);
out:
	buf_done(&out);
	return ret;
}

/* The body is read as intake read it (event_from_row, or intake's own
 * reading passed in): that gives the details, and for JSON whether the
 * payload can be handed over as an object, so every event recognised at
 * intake reaches the consumer with its payload (a form is decoded again by
 * set_form() for its fields). A body with duplicate keys is ambiguous
 * (spec section 11) and is not an object. */
char *
envelope_build(const struct event_row *row, unsigned attempt,
    const struct event *read, size_t *len)
{
	struct event own;
	const struct event *ev = read;
	json_t *env = NULL;
	char *head = NULL, *ret = NULL;
	int form = event_content_is_form(row->content_type), raw = 0;

	memset(&own, 0, sizeof(own));
	if (ev == NULL) {
		if (event_from_row(row->content_type, row->body, row->body_len,
		    &own) == -1)
			return NULL;
		ev = &own;
	}
	env = header(row, ev, attempt, form);
	if (env == NULL)
		goto out;
	if (form) {
		if (set_form(env, row) == -1)
			goto out;
	} else if (ev->json_object) {
		raw = 1;
	} else if (set_unparsed(env, row) == -1) {
		goto out;
	}
	head = json_dumps(env, JSON_COMPACT);
	if (head == NULL)
		goto out;
	if (raw) {
		ret = splice(head, row, len);
	} else {
		ret = head;
		head = NULL;
		*len = strlen(ret);
	}
out:
	free(head);
	json_decref(env);
	event_done(&own);
	return ret;
}
