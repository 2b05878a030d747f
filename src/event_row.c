/* event_row.c - an event read again from a stored row: the envelope shows
 * what intake read, and the schema upgrade re-reads the stored bodies; and
 * the row itself (event_row.h).
 *
 * Pure. It decides the format the way intake left it: every stored form has
 * the form media type (intake answers 401 for a form content type on a body
 * that starts with '{' or '['), everything else was read as JSON. Must not:
 * apply the strict form checks (the row was accepted; they only refuse). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "event.h"
#include "event_row.h"
#include "form.h"

#define FORM_MEDIA	"application/x-www-form-urlencoded"

/* RFC 9110 section 8.3.1: the media type is case-insensitive and ends at
 * the first ';' (parameters), blanks around it aside. */
int
event_content_is_form(const char *content_type)
{
	const char *s = content_type, *end;
	size_t n = strlen(FORM_MEDIA);

	if (s == NULL)
		return 0;
	while (*s == ' ' || *s == '\t')
		s++;
	end = strchr(s, ';');
	if (end == NULL)
		end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	return (size_t)(end - s) == n && strncasecmp(s, FORM_MEDIA, n) == 0;
}

int
event_from_row(const char *content_type, const char *body, size_t len,
    struct event *ret)
{
	struct form form;
	char why[8];
	enum event_result er;
	enum form_result fr;

	if (body == NULL) {
		body = "";
		len = 0;
	}
	if (!event_content_is_form(content_type))
		return event_from_json(body, len, ret);
	fr = form_parse(body, len, &form);
	if (fr == FORM_NOMEM) {
		form_done(&form);
		return -1;
	}
	if (fr != FORM_OK) {
		/* Not a form any more (it was when it was stored): the
		 * bytes alone, which is what UNKNOWN is. */
		form_done(&form);
		return event_from_json(body, len, ret);
	}
	er = event_from_form(&form, body, len, 0, ret, why, sizeof(why));
	form_done(&form);
	return er == EVENT_OK ? 0 : -1;
}

void
event_row_texts(struct event_row *e, char **out[EVENT_ROW_TEXTS])
{
	char **const text[EVENT_ROW_TEXTS] = { &e->event_key, &e->type,
	    &e->cf_payment_id, &e->order_id, &e->payment_status, &e->amount,
	    &e->currency, &e->event_time, &e->content_type };

	memcpy(out, text, sizeof(text));
}

void
event_row_done(struct event_row *r)
{
	if (r == NULL)
		return;
	free(r->event_key);
	free(r->type);
	free(r->cf_payment_id);
	free(r->order_id);
	free(r->payment_status);
	free(r->amount);
	free(r->currency);
	free(r->event_time);
	free(r->content_type);
	free(r->body);
	free(r->forward_state);
	free(r->last_error);
	free(r->idempotency_key);
	free(r->webhook_version);
	free(r->order_state);
	free(r->order_attention);
	memset(r, 0, sizeof(*r));
}
