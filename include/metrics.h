/* metrics.h - counters for GET /metrics (Prometheus text format).
 *
 * Process-wide atomic counters: any thread may count, any thread may render.
 * Label values come from small fixed sets, so no request can grow the series. */
#ifndef CFHOOK_METRICS_H
#define CFHOOK_METRICS_H

#include <stdint.h>

#include "buf.h"
#include "verify.h"

/* One answered HTTP request: its status and how long it took. */
void	metrics_request(unsigned status, int64_t duration_us);
/* One recorded event: its type (unknown types count as "other") and
 * whether it was new or a duplicate delivery; also the time of the last
 * event accepted at intake. */
void	metrics_event(const char *type, int duplicate);
/* One request refused by verification, by reason. */
void	metrics_signature_failure(enum verify_result);
/* What became of a forward attempt: the `result` label. */
enum metrics_forward {
	METRICS_FORWARD_OK,
	METRICS_FORWARD_FAILED,
	METRICS_FORWARD_TIMEOUT,
	METRICS_FORWARD_UNANSWERED,
	METRICS_FORWARD_INTERRUPTED,
	METRICS_FORWARD_N
};

/* One forward attempt, counted once its outcome is stored. */
void	metrics_forward_attempt(enum metrics_forward);
/* received_at (unix ms) of the oldest pending event as the forwarder last
 * saw it, or 0 when none is pending; rendered as its age in seconds. */
void	metrics_forward_oldest(int64_t received_ms);

/* Values read at scrape time; -1 where unknown. */
struct metrics_gauges {
	long long outbox_pending;
	long long outbox_dead;
	long long writer_queued;
};

/* Append the whole exposition to out. Returns 0, or -1 when out is full. */
int	metrics_render(struct buf *out, const struct metrics_gauges *);

#endif
