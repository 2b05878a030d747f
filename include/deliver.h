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

/* What became of one attempt. */
enum deliver_result {
	DELIVER_OK,
	DELIVER_FAILED,		/* refused: exit status, the consumer's answer,
				 * no connection */
	DELIVER_TIMEOUT,	/* no end or answer within forward_timeout */
	DELIVER_UNANSWERED,	/* sent, then cut off behind another envelope's
				 * failure on the same connection */
	DELIVER_INTERRUPTED	/* shutdown: the event stays pending */
};

struct deliver_target {
	enum forward_kind kind;		/* FORWARD_HOOK or FORWARD_UNIX */
	const char *path;
	int	 timeout_ms;
	int	 cancel_fd;		/* readable = interrupt (shutdown) */
	struct usock *us;		/* FORWARD_UNIX: the caller's connection */
	struct hook_guard *guard;	/* FORWARD_HOOK: see hook_guard.h */
};

/* Build the envelope for `row` (its attempt number included) and deliver
 * it. DELIVER_OK, or another result with a short reason. Any thread;
 * blocks for at most the timeout plus the hook's kill grace. Logs the
 * hook's output, not the outcome (the caller does). */
enum deliver_result deliver_attempt(const struct deliver_target *,
	    const struct outbox_row *row, char *reason, size_t reason_len);
/* The outcome to store for a result (store_outbox.h). Pure. */
enum outbox_outcome deliver_outcome(enum deliver_result);

#endif
