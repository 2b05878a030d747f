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

/* An order's attention flag raised for the first time (reason:
 * "double_payment", "amount_mismatch", "late_failure"; others are not
 * counted). Called once the event that raised it is committed. */
void	metrics_order_attention(const char *reason);

/* Values read at scrape time; -1 where unknown. */
struct metrics_gauges {
	long long outbox_pending;
	long long outbox_dead;
	long long writer_queued;
};

/* Append the whole exposition to out. Returns 0, or -1 when out is full. */
int	metrics_render(struct buf *out, const struct metrics_gauges *);

/* The store (store_health.c, writer.c). */
/* One checkpoint: 0 done, 1 kept back by readers (busy), 2 failed (the
 * values of enum store_ckpt). */
void	metrics_store_checkpoint(int result);
/* The writer's view after each batch or tick: whether the store takes
 * writes (its /healthz state is ok) and the WAL's size (-1: unknown). */
void	metrics_store_state(int healthy, long long wal_bytes);
/* The writer reopened the database (its files had moved). */
void	metrics_store_reopen(void);
/* The series above; metrics_render() calls it. 0 / -1 when out is full. */
int	metrics_render_store(struct buf *out);

#endif
