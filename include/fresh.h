/* fresh.h - what intake read from each new JSON event, kept briefly for the
 * forwarder so that it need not parse the stored body again.
 *
 * Parsing a body with jansson is the most costly part of building an
 * envelope (about a third of the daemon's CPU per forwarded event), and
 * intake has just done it on the same bytes. After each commit the writer
 * puts here, for each new JSON event, what the envelope takes from the
 * parse: the details and whether the body is a JSON object. The forwarder
 * takes an entry when it builds that event's envelope; without one (a
 * restart, a retry long after, an event another instance received) it
 * parses the body as before.
 *
 * An entry is handed over only for the same row id, body length and body
 * hash, so a row that is not the one intake read (another database put at
 * the path) is never described by it. Bounded: at most FRESH_MAX entries,
 * none older than FRESH_MAX_AGE_MS; a put into a full cache is dropped (the
 * forwarder takes the oldest first, so those are the ones worth keeping).
 *
 * Thread-safe (one mutex). Must not: decide anything; it only saves work
 * that event_from_json() would repeat with the same result. */
#ifndef CFHOOK_FRESH_H
#define CFHOOK_FRESH_H

#include "attr.h"

#include <stddef.h>
#include <stdint.h>

#include "event.h"

#define FRESH_MAX		32768
#define FRESH_MAX_AGE_MS	60000

struct fresh;

/* NULL on no memory. */
struct fresh *fresh_new(void);
/* NULL-safe. */
void	fresh_free(struct fresh *);
/* After the commit that gave the event read from body its row id (ids only
 * grow: an id not above the last one put is ignored, as is an event not
 * read as JSON). now_ms: monotonic. */
void	fresh_put(struct fresh *, int64_t id, const char *body, size_t len,
	    const struct event *ev, int64_t now_ms);
/* The entry for row id whose body is these bytes, removed from the cache:
 * 0 and *ret filled with the details and json_object as intake read them
 * (the other fields NULL; event_done() frees it), or -1 when there is none
 * or no memory (*ret then needs no event_done). */
int	fresh_take(struct fresh *, int64_t id, const char *body, size_t len,
	    struct event *ret) MUST_CHECK;
/* Entries held, for tests. */
size_t	fresh_count(struct fresh *);

#endif
