/* http_reply.c - the answers of the HTTP front: a JSON body with its status,
 * and the /healthz and /metrics pages (DESIGN "HTTP behaviour").
 *
 * Builds and queues libmicrohttpd responses only. Must not decide a status
 * for a webhook (http.c maps outcomes to statuses), touch the database (the
 * probes ask the daemon), or echo anything a client sent. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "http_reply.h"
#include "metrics.h"
#include "version.h"

#define METRICS_MAX	(64 * 1024)

/* Queue resp with the headers every answer gets; drops our reference. */
static enum MHD_Result
queue(struct MHD_Connection *c, unsigned status, struct MHD_Response *resp,
    const char *content_type, const char *allow, int close)
{
	enum MHD_Result ret;

	(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	    content_type);
	if (allow != NULL)
		(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	if (close)
		(void)MHD_add_response_header(resp,
		    MHD_HTTP_HEADER_CONNECTION, "close");
	ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

enum MHD_Result
http_reply_json(struct MHD_Connection *c, unsigned status, const char *json,
    const char *allow, int close)
{
	struct MHD_Response *resp;

	resp = MHD_create_response_from_buffer(strlen(json),
	    (void *)(uintptr_t)json, MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	return queue(c, status, resp, "application/json", allow, close);
}

struct MHD_Response *
http_reply_prepare(const char *json)
{
	struct MHD_Response *resp;

	/* libmicrohttpd 0.9.75 has no const variant; it only reads the
	 * buffer (PERSISTENT: never frees it, MUST_COPY: copies it). */
	resp = MHD_create_response_from_buffer(strlen(json),
	    (void *)(uintptr_t)json, MHD_RESPMEM_PERSISTENT);
	if (resp != NULL && MHD_add_response_header(resp,
	    MHD_HTTP_HEADER_CONTENT_TYPE, "application/json") != MHD_YES) {
		MHD_destroy_response(resp);
		resp = NULL;
	}
	return resp;
}

enum MHD_Result
http_reply_queue(struct MHD_Connection *c, unsigned status,
    struct MHD_Response *resp)
{
	return MHD_queue_response(c, status, resp);
}

/* GET /healthz: 200 only while the daemon runs and the store is ok (the
 * writer's last write committed where the database path points); else 503
 * with the reason. The store's state and detail are the writer's fixed
 * phrases (no quotes to escape). */
enum MHD_Result
http_reply_healthz(struct MHD_Connection *c, const struct http_probe *probe,
    struct writer *w, int close)
{
	struct writer_health h;
	long long pending = -1, dead = -1;
	const char *reason = NULL;
	char store[160], why[192], json[640];
	int up = 1;

	if (probe->healthy != NULL)
		up = probe->healthy(probe->arg, &reason);
	writer_health(w, &h);
	if (probe->outbox != NULL)
		probe->outbox(probe->arg, &pending, &dead);
	if (h.state == WRITER_STORE_UNAVAILABLE)
		(void)snprintf(store, sizeof(store), "unavailable: %s",
		    h.detail);
	else
		(void)snprintf(store, sizeof(store), "%s",
		    writer_store_name(h.state));
	if (up && h.state != WRITER_STORE_OK) {
		up = 0;
		(void)snprintf(why, sizeof(why), "database %s: %s",
		    writer_store_name(h.state), h.detail);
		reason = why;
	}
	(void)snprintf(json, sizeof(json), "{\"status\":\"%s\",%s%s%s"
	    "\"version\":\"%s\",\"store\":\"%s\",\"writer_queue\":%u,"
	    "\"pending\":%lld,\"dead\":%lld,\"wal_bytes\":%lld}",
	    up ? "ok" : "unavailable", up ? "" : "\"reason\":\"",
	    up ? "" : (reason != NULL ? reason : "unknown"), up ? "" : "\",",
	    CFHOOK_VERSION, store, h.queued, pending, dead, h.wal_bytes);
	metrics_request(up ? 200 : 503, 0);
	return http_reply_json(c, up ? 200 : 503, json, NULL, close);
}

enum MHD_Result
http_reply_metrics(struct MHD_Connection *c, const struct http_probe *probe,
    struct writer *w, int close)
{
	struct metrics_gauges g = { -1, -1, 0 };
	struct MHD_Response *resp;
	struct buf out;

	g.writer_queued = writer_queued(w);
	if (probe->outbox != NULL)
		probe->outbox(probe->arg, &g.outbox_pending, &g.outbox_dead);
	metrics_request(200, 0);	/* counts this scrape too */
	buf_init(&out, METRICS_MAX);
	if (metrics_render(&out, &g) == -1) {
		buf_done(&out);
		return http_reply_json(c, 503, "{\"error\":\"metrics\"}", NULL,
		    close);
	}
	resp = MHD_create_response_from_buffer(out.len, out.data,
	    MHD_RESPMEM_MUST_COPY);
	buf_done(&out);
	if (resp == NULL)
		return MHD_NO;
	return queue(c, 200, resp, "text/plain; version=0.0.4; charset=utf-8",
	    NULL, close);
}
