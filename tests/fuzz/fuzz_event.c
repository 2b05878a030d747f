/* fuzz_event.c - libFuzzer target: any bytes through event_from_json, and,
 * when they decode as a form, through event_from_form. Checks the promises
 * of event.h: never fails but for memory, type and event_key always set, the
 * key starts with "TYPE:", every field and the type a C string of valid
 * UTF-8. Not built by plain make.
 *
 * The first input byte picks how a form is read: odd values strictly (as
 * one verified only by its signature field), even ones as signed bytes.
 * A strict read may refuse; it must then say why. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "form.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Text columns and journal fields hold only UTF-8 (a form value may be
 * any bytes; event.c leaves such a field out). */
static int
utf8_ok(const unsigned char *s)
{
	size_t i = 0, k, need;
	unsigned cp, min;

	while (s[i] != '\0') {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if (s[i] >= 0xc2 && s[i] <= 0xdf)
			need = 1, cp = s[i] & 0x1fu, min = 0x80;
		else if (s[i] >= 0xe0 && s[i] <= 0xef)
			need = 2, cp = s[i] & 0x0fu, min = 0x800;
		else if (s[i] >= 0xf0 && s[i] <= 0xf4)
			need = 3, cp = s[i] & 0x07u, min = 0x10000;
		else
			return 0;
		for (i++, k = 0; k < need; k++, i++) {
			if ((s[i] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i] & 0x3fu);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
	}
	return 1;
}

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
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (fields[i] == NULL)
			continue;
		total += strlen(fields[i]);
		if (!utf8_ok((const unsigned char *)fields[i]))
			abort();
	}
	if (!utf8_ok((const unsigned char *)ev->type))
		abort();
	if (total == SIZE_MAX)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data;
	enum event_result r;
	struct event ev;
	struct form f;
	char why[160];
	int strict;

	if (size == 0)
		return 0;
	strict = data[0] & 1;
	body++;
	size--;
	memset(&ev, 0, sizeof(ev));
	if (event_from_json(body, size, &ev) == 0) {
		check(&ev);
		if (ev.format != EVENT_JSON)
			abort();
		event_done(&ev);
	}
	memset(&f, 0, sizeof(f));
	if (form_parse(body, size, &f) == FORM_OK) {
		why[0] = '\0';
		r = event_from_form(&f, body, size, strict, &ev, why,
		    sizeof(why));
		if (r == EVENT_OK) {
			check(&ev);
			if (ev.format != EVENT_FORM)
				abort();
			event_done(&ev);
		} else if (r == EVENT_REFUSED && (!strict || why[0] == '\0')) {
			abort();
		}
	}
	form_done(&f);
	return 0;
}
