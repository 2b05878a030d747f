/* metrics.c - process-wide counters rendered as Prometheus text.
 *
 * Counters are _Atomic and only ever incremented (relaxed order: a scrape
 * needs each number to be right, not a snapshot across numbers). Every series
 * is named cfhookd_... (DESIGN "HTTP behaviour"). No I/O here. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "metrics.h"
#include "version.h"

static const unsigned statuses[] = { 200, 400, 401, 404, 405, 408, 413, 415,
    431, 500, 503 };
#define NSTATUS		(sizeof(statuses) / sizeof(statuses[0]))

static const char *const types[] = { "PAYMENT_SUCCESS_WEBHOOK",
    "PAYMENT_FAILED_WEBHOOK", "PAYMENT_USER_DROPPED_WEBHOOK",
    "PAYMENT_LINK_EVENT", "REFUND_STATUS_WEBHOOK", "UNKNOWN", "other" };
#define NTYPE		(sizeof(types) / sizeof(types[0]))

/* Upper bounds in microseconds; the last bucket is +Inf. */
static const int64_t bounds_us[] = { 1000, 2500, 5000, 10000, 25000, 50000,
    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000 };
#define NBUCKET		(sizeof(bounds_us) / sizeof(bounds_us[0]))
#define NREASON		(VERIFY_INTERNAL + 1)

static _Atomic unsigned long long req_by_status[NSTATUS + 1];	/* + other */
static _Atomic unsigned long long ev_by_type[NTYPE][2];		/* new, dup */
static _Atomic unsigned long long sig_failures[NREASON];
static _Atomic unsigned long long fwd_attempts[METRICS_FORWARD_N];
static _Atomic int64_t fwd_oldest_ms;		/* 0: nothing pending */
static _Atomic int64_t last_event_ms;		/* 0: none since start */
static const char *const fwd_results[METRICS_FORWARD_N] = {
	[METRICS_FORWARD_OK] = "ok",
	[METRICS_FORWARD_FAILED] = "failed",
	[METRICS_FORWARD_TIMEOUT] = "timeout",
	[METRICS_FORWARD_UNANSWERED] = "unanswered",
	[METRICS_FORWARD_INTERRUPTED] = "interrupted",
};
static _Atomic unsigned long long lat_bucket[NBUCKET + 1];
static _Atomic unsigned long long lat_count;
static _Atomic unsigned long long lat_sum_us;

static inline void
bump(_Atomic unsigned long long *c, unsigned long long n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static inline unsigned long long
get(_Atomic unsigned long long *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

void
metrics_request(unsigned status, int64_t duration_us)
{
	size_t i, b;

	for (i = 0; i < NSTATUS && statuses[i] != status; i++)
		continue;
	bump(&req_by_status[i], 1);
	if (duration_us < 0)
		duration_us = 0;
	for (b = 0; b < NBUCKET && duration_us > bounds_us[b]; b++)
		continue;
	bump(&lat_bucket[b], 1);
	bump(&lat_count, 1);
	bump(&lat_sum_us, (unsigned long long)duration_us);
}

void
metrics_event(const char *type, int duplicate)
{
	size_t i;

	for (i = 0; i < NTYPE - 1 && strcmp(types[i], type) != 0; i++)
		continue;
	bump(&ev_by_type[i][duplicate ? 1 : 0], 1);
	atomic_store_explicit(&last_event_ms, clock_wall_ms(),
	    memory_order_relaxed);
}

void
metrics_signature_failure(enum verify_result r)
{
	if ((unsigned)r < NREASON)
		bump(&sig_failures[r], 1);
}

void
metrics_forward_attempt(enum metrics_forward r)
{
	if ((unsigned)r < METRICS_FORWARD_N)
		bump(&fwd_attempts[r], 1);
}

void
metrics_forward_oldest(int64_t received_ms)
{
	atomic_store_explicit(&fwd_oldest_ms, received_ms,
	    memory_order_relaxed);
}

/* printf into the buffer; -1 when it is full. */
static int __attribute__((format(printf, 2, 3)))
put(struct buf *out, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		return -1;
	return buf_append(out, line, (size_t)n);
}

static int
render_requests(struct buf *out)
{
	size_t i;
	int rc = 0;

	rc |= put(out, "# HELP cfhookd_http_requests_total HTTP requests "
	    "answered, by status code.\n"
	    "# TYPE cfhookd_http_requests_total counter\n");
	for (i = 0; i < NSTATUS; i++)
		rc |= put(out, "cfhookd_http_requests_total{code=\"%u\"} %llu\n",
		    statuses[i], get(&req_by_status[i]));
	rc |= put(out, "cfhookd_http_requests_total{code=\"other\"} %llu\n",
	    get(&req_by_status[NSTATUS]));
	rc |= put(out, "# HELP cfhookd_http_request_duration_seconds Time "
	    "from the request's headers to its answer.\n"
	    "# TYPE cfhookd_http_request_duration_seconds histogram\n");
	{
		unsigned long long cum = 0;

		for (i = 0; i < NBUCKET; i++) {
			cum += get(&lat_bucket[i]);
			rc |= put(out, "cfhookd_http_request_duration_seconds_"
			    "bucket{le=\"%g\"} %llu\n",
			    (double)bounds_us[i] / 1e6, cum);
		}
		cum += get(&lat_bucket[NBUCKET]);
		rc |= put(out, "cfhookd_http_request_duration_seconds_bucket"
		    "{le=\"+Inf\"} %llu\n", cum);
	}
	rc |= put(out, "cfhookd_http_request_duration_seconds_sum %.6f\n"
	    "cfhookd_http_request_duration_seconds_count %llu\n",
	    (double)get(&lat_sum_us) / 1e6, get(&lat_count));
	return rc;
}

static int
render_events(struct buf *out)
{
	size_t i;
	int rc = 0;

	rc |= put(out, "# HELP cfhookd_events_total Signed events recorded, by "
	    "type and result (new or duplicate delivery).\n"
	    "# TYPE cfhookd_events_total counter\n");
	for (i = 0; i < NTYPE; i++) {
		rc |= put(out, "cfhookd_events_total{type=\"%s\",result=\"new\"}"
		    " %llu\n", types[i], get(&ev_by_type[i][0]));
		rc |= put(out, "cfhookd_events_total{type=\"%s\",result="
		    "\"duplicate\"} %llu\n", types[i], get(&ev_by_type[i][1]));
	}
	rc |= put(out, "# HELP cfhookd_signature_failures_total Requests "
	    "refused by verification, by reason.\n"
	    "# TYPE cfhookd_signature_failures_total counter\n");
	for (i = VERIFY_MISSING; i < NREASON; i++)
		rc |= put(out, "cfhookd_signature_failures_total{reason=\"%s\"} "
		    "%llu\n", verify_result_name((enum verify_result)i),
		    get(&sig_failures[i]));
	rc |= put(out, "# HELP cfhookd_last_event_received_timestamp_seconds "
	    "Unix time of the last event accepted at intake (new or duplicate), "
	    "0 when none since the start.\n");
	rc |= put(out, "# TYPE cfhookd_last_event_received_timestamp_seconds "
	    "gauge\ncfhookd_last_event_received_timestamp_seconds %.3f\n",
	    (double)atomic_load_explicit(&last_event_ms,
	    memory_order_relaxed) / 1000);
	return rc;
}

static int
render_forward(struct buf *out)
{
	int64_t oldest, age_ms;
	size_t i;
	int rc = 0;

	rc |= put(out, "# HELP cfhookd_forward_attempts_total Delivery attempts "
	    "to the hook or socket whose outcome is stored, by result.\n");
	rc |= put(out, "# TYPE cfhookd_forward_attempts_total counter\n");
	for (i = 0; i < METRICS_FORWARD_N; i++)
		rc |= put(out, "cfhookd_forward_attempts_total{result=\"%s\"} "
		    "%llu\n", fwd_results[i], get(&fwd_attempts[i]));
	oldest = atomic_load_explicit(&fwd_oldest_ms, memory_order_relaxed);
	age_ms = oldest > 0 ? clock_wall_ms() - oldest : 0;
	rc |= put(out, "# HELP cfhookd_forward_oldest_pending_seconds Age of "
	    "the oldest event waiting to be forwarded (since it was received), "
	    "0 when none waits.\n");
	rc |= put(out, "# TYPE cfhookd_forward_oldest_pending_seconds gauge\n"
	    "cfhookd_forward_oldest_pending_seconds %.3f\n",
	    age_ms > 0 ? (double)age_ms / 1000 : 0.0);
	return rc;
}

static int render_orders(struct buf *);

int
metrics_render(struct buf *out, const struct metrics_gauges *g)
{
	int rc = 0;

	rc |= put(out, "# HELP cfhookd_build_info Version of this cfhookd.\n"
	    "# TYPE cfhookd_build_info gauge\n"
	    "cfhookd_build_info{version=\"%s\"} 1\n", CFHOOK_VERSION);
	rc |= render_requests(out);
	rc |= render_events(out);
	rc |= render_forward(out);
	rc |= put(out, "# HELP cfhookd_outbox_pending Events waiting to be "
	    "forwarded.\n# TYPE cfhookd_outbox_pending gauge\n"
	    "cfhookd_outbox_pending %lld\n", g->outbox_pending);
	rc |= put(out, "# HELP cfhookd_outbox_dead Events that used every "
	    "forward attempt.\n# TYPE cfhookd_outbox_dead gauge\n"
	    "cfhookd_outbox_dead %lld\n", g->outbox_dead);
	rc |= put(out, "# HELP cfhookd_writer_queued Requests waiting for the "
	    "database writer.\n# TYPE cfhookd_writer_queued gauge\n"
	    "cfhookd_writer_queued %lld\n", g->writer_queued);
	rc |= render_orders(out);
	rc |= metrics_render_store(out);
	return rc == 0 ? 0 : -1;
}

/* The store: checkpoints, the WAL, whether it takes writes, reopens. */
static _Atomic unsigned long long ckpt_by_result[3];	/* done, busy, failed */
static _Atomic unsigned long long store_reopens;
static _Atomic long long store_wal;
static atomic_int store_healthy = 1;

void
metrics_store_checkpoint(int result)
{
	if (result >= 0 && result < 3)
		bump(&ckpt_by_result[result], 1);
}

void
metrics_store_state(int healthy, long long wal_bytes)
{
	atomic_store_explicit(&store_healthy, healthy != 0,
	    memory_order_relaxed);
	atomic_store_explicit(&store_wal, wal_bytes, memory_order_relaxed);
}

void
metrics_store_reopen(void)
{
	bump(&store_reopens, 1);
}

int
metrics_render_store(struct buf *out)
{
	static const char *const results[] = { "done", "busy", "failed" };
	size_t i;
	int rc = 0;

	rc |= put(out, "# HELP cfhookd_store_checkpoints_total WAL checkpoints "
	    "by result (busy: readers kept part of the WAL back).\n"
	    "# TYPE cfhookd_store_checkpoints_total counter\n");
	for (i = 0; i < 3; i++)
		rc |= put(out, "cfhookd_store_checkpoints_total{result=\"%s\"} "
		    "%llu\n", results[i], get(&ckpt_by_result[i]));
	rc |= put(out, "# HELP cfhookd_store_wal_bytes Size of the WAL file "
	    "(-1: unknown).\n# TYPE cfhookd_store_wal_bytes gauge\n"
	    "cfhookd_store_wal_bytes %lld\n",
	    atomic_load_explicit(&store_wal, memory_order_relaxed));
	rc |= put(out, "# HELP cfhookd_store_healthy 1 while the database "
	    "takes writes where its path points (/healthz store ok).\n"
	    "# TYPE cfhookd_store_healthy gauge\ncfhookd_store_healthy %d\n",
	    atomic_load_explicit(&store_healthy, memory_order_relaxed));
	rc |= put(out, "# HELP cfhookd_store_reopens_total Times the database "
	    "was opened again after its files moved.\n"
	    "# TYPE cfhookd_store_reopens_total counter\n"
	    "cfhookd_store_reopens_total %llu\n", get(&store_reopens));
	return rc == 0 ? 0 : -1;
}

/* The order ledger (DESIGN "Orders"): attention flags raised, by reason. */
static const char *const attention_reasons[] = { "double_payment",
    "amount_mismatch", "late_failure" };
#define NATTENTION	(sizeof(attention_reasons) / sizeof(attention_reasons[0]))

static _Atomic unsigned long long orders_attention[NATTENTION];

void
metrics_order_attention(const char *reason)
{
	size_t i;

	for (i = 0; i < NATTENTION; i++) {
		if (strcmp(attention_reasons[i], reason) == 0)
			bump(&orders_attention[i], 1);
	}
}

static int
render_orders(struct buf *out)
{
	size_t i;
	int rc = 0;

	rc |= put(out, "# HELP cfhookd_orders_attention_total Orders that "
	    "needed attention, by reason (counted when first raised).\n"
	    "# TYPE cfhookd_orders_attention_total counter\n");
	for (i = 0; i < NATTENTION; i++)
		rc |= put(out, "cfhookd_orders_attention_total{reason=\"%s\"} "
		    "%llu\n", attention_reasons[i], get(&orders_attention[i]));
	return rc;
}
