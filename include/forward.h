/* forward.h - the outbox worker: delivers pending events to the merchant's
 * hook or unix socket, at least once (DESIGN "Forwarding").
 *
 * Its own threads and its own database connection; never slows intake. */
#ifndef CFHOOK_FORWARD_H
#define CFHOOK_FORWARD_H

#include "attr.h"

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "store.h"

struct forward;

/* Start the dispatcher and workers for cfg's forward target (FORWARD_NONE:
 * starts nothing but still answers the calls below). Opens its own store
 * connection on cfg->database. Events left pending by an earlier run are
 * delivered again. Returns 0 / -1 (logged). */
int	forward_start(const struct config *cfg, struct forward **ret) MUST_CHECK;
/* New pending events were committed (the writer's on_commit, writer.h):
 * keeps intake's reading of each new one for its envelope (fresh.h), and
 * looks now. Any thread; cheap. */
void	forward_committed(struct forward *, struct store_item *const *items,
	    size_t n);
/* SIGHUP: take the forwarding settings of a new config (target, timeout,
 * concurrency, attempts, backoff). Deliveries under way finish first. */
int	forward_reload(struct forward *, const struct config *cfg) MUST_CHECK;
/* Monotonic ms when the dispatcher last made progress or waited idle. */
int64_t	forward_heartbeat_ms(struct forward *);
/* Stop claiming; wait up to timeout_ms for deliveries under way (a hook past
 * that is killed and its event left pending); stop the threads. NULL-safe. */
void	forward_stop(struct forward *, int timeout_ms);

#endif
