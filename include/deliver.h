/* deliver.h - one delivery attempt of one claimed event to the forward
 * target (DESIGN "Forwarding"): the envelope, then the hook's argv and
 * environment, or the socket line. Called by forward.c's worker threads. */
#ifndef CFHOOK_DELIVER_H
#define CFHOOK_DELIVER_H

#include <stddef.h>

#include "config.h"
#include "hook_guard.h"
#include "store_outbox.h"
#include "usock.h"

#define DELIVER_HOOK_PATH	"/usr/local/bin:/usr/bin:/bin"

struct deliver_target {
	enum forward_kind kind;		/* FORWARD_HOOK or FORWARD_UNIX */
	const char *path;
	int	 timeout_ms;
	int	 cancel_fd;		/* readable = interrupt (shutdown) */
	struct usock *us;		/* FORWARD_UNIX: the caller's connection */
	struct hook_guard *guard;	/* FORWARD_HOOK: see hook_guard.h */
};

/* Build the envelope for `row` (its attempt number included) and deliver
 * it. OUTBOX_DELIVERED, or OUTBOX_FAILED / OUTBOX_INTERRUPTED with a short
 * reason. Any thread; blocks for at most the timeout plus the hook's kill
 * grace. Logs the hook's output, not the outcome (the caller does). */
enum outbox_outcome deliver_attempt(const struct deliver_target *,
	    const struct outbox_row *row, char *reason, size_t reason_len);

#endif
