/* deliver.h - one delivery attempt of one claimed event (DESIGN
 * "Forwarding"): the envelope line, and a run of the hook with its argv,
 * environment and stdin. Called by forward.c's threads; the unix socket
 * gets the envelope line through usock.h. */
#ifndef CFHOOK_DELIVER_H
#define CFHOOK_DELIVER_H

#include <stddef.h>

#include "config.h"
#include "event.h"
#include "hook_guard.h"
#include "store_outbox.h"

#define DELIVER_HOOK_PATH	"/usr/local/bin:/usr/bin:/bin"

/* What became of one attempt. */
enum deliver_result {
	DELIVER_OK,
	DELIVER_FAILED,		/* refused: exit status, the consumer's answer,
				 * no connection */
	DELIVER_TIMEOUT,	/* no end or answer within forward_timeout */
	DELIVER_UNANSWERED,	/* sent, then cut off behind another envelope's
				 * failure on the same connection */
	DELIVER_INTERRUPTED,	/* shutdown: the event stays pending */
	DELIVER_UNSTARTED	/* claimed but never started (a stop): not an
				 * attempt at all */
};

/* hook:PATH */
struct deliver_hook {
	const char *path;
	int	 timeout_ms;
	int	 cancel_fd;		/* readable = interrupt (shutdown) */
	struct hook_guard *guard;	/* see hook_guard.h */
	char	*const *env;		/* hook_env: "NAME=value"s, NULL-ended;
					 * NULL for none */
};

/* The envelope for `row` (its attempt number included) as one line of
 * compact JSON: *len bytes, then a newline (not counted; from there on it
 * is bytes, not a C string). `read`: intake's reading of the body when the
 * caller has it (fresh.h), else NULL (envelope.h). malloc'd; NULL on no
 * memory. */
char	*deliver_envelope(const struct outbox_row *row,
	    const struct event *read, size_t *len);
/* Runs the hook for `row` with its envelope on stdin (`read` as for
 * deliver_envelope). DELIVER_OK, or another result with a short reason.
 * Any thread; blocks for at most the timeout plus the hook's kill grace.
 * Logs the hook's output, not the outcome (the caller does). */
enum deliver_result deliver_hook(const struct deliver_hook *,
	    const struct outbox_row *row, const struct event *read,
	    char *reason, size_t reason_len);
/* The outcome to store for a result (store_outbox.h). Pure. */
enum outbox_outcome deliver_outcome(enum deliver_result);

#endif
