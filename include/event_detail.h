/* event_detail.h - where each detail of event.h is read, per family of
 * types: for event.c (which reads them, and checks a strictly verified
 * form's fields against their grammars) only.  Pure. */
#ifndef CFHOOK_EVENT_DETAIL_H
#define CFHOOK_EVENT_DETAIL_H

#include <stddef.h>

#include "event.h"
#include "grammar.h"

/* One place a detail is read: for the types of `families` (bits of
 * event_detail_family()), a dotted path in a JSON body and the key of a
 * form (NULL: forms have none), whose value must match `grammar` when the
 * form is signed only by its `signature` field. The first row of the
 * event's family that yields a value wins. */
struct event_detail_rule {
	enum event_detail detail;
	unsigned	 families;
	const char	*json;
	const char	*form;
	enum grammar	 grammar;
};

/* The table; *n gets its length. */
const struct event_detail_rule *event_detail_rules(size_t *n);
/* The family bit of a type (0: a type without details). */
unsigned event_detail_family(const char *type);

#endif
