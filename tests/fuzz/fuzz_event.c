/* fuzz_event.c - libFuzzer target: any bytes through event_from_json, and,
 * when they decode as a form, through event_from_form. Checks the promises
 * of event.h: never fails but for memory, type and event_key always set, the
 * key starts with "TYPE:", every field a C string. Not built by plain make.
 *
 * The first input byte picks the x-idempotency-key: odd values take the next
 * bytes up to a NUL (so long, blank and non-ASCII keys are tried), even
 * values pass none. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "form.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(const struct event *ev)
{
	const char *fields[] = { ev->cf_payment_id, ev->order_id,
	    ev->payment_status, ev->amount, ev->currency, ev->event_time };
	size_t tl, i, total = 0;

	if (ev->type == NULL || ev->event_key == NULL || ev->type[0] == '\0')
		abort();
	tl = strlen(ev->type);
	if (strncmp(ev->event_key, ev->type, tl) != 0 ||
	    ev->event_key[tl] != ':')
		abort();
	/* Each field is a terminated string: AddressSanitizer stops strlen
	 * if one runs off its allocation. */
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (fields[i] != NULL)
			total += strlen(fields[i]);
	if (total == SIZE_MAX)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data;
	char *idem = NULL;
	struct event ev;
	struct form f;
	const char *nul;

	if (size > 0 && (data[0] & 1) != 0) {
		nul = memchr(body + 1, '\0', size - 1);
		if (nul != NULL) {
			idem = strdup(body + 1);
			if (idem == NULL)
				return 0;
			size -= (size_t)(nul + 1 - body);
			body = nul + 1;
		}
	} else if (size > 0) {
		body++;
		size--;
	}
	memset(&ev, 0, sizeof(ev));
	if (event_from_json(body, size, idem, &ev) == 0) {
		check(&ev);
		if (ev.format != EVENT_JSON)
			abort();
		event_done(&ev);
	}
	memset(&f, 0, sizeof(f));
	if (form_parse(body, size, &f) == FORM_OK &&
	    event_from_form(&f, body, size, idem, &ev) == 0) {
		check(&ev);
		if (ev.format != EVENT_FORM)
			abort();
		event_done(&ev);
	}
	form_done(&f);
	free(idem);
	return 0;
}
