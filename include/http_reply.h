/* http_reply.h - the answers the HTTP front queues on libmicrohttpd: a JSON
 * body with its status, and the GET /healthz and GET /metrics pages (DESIGN
 * "HTTP behaviour"). Called on libmicrohttpd's threads from its request
 * callback only. */
#ifndef CFHOOK_HTTP_REPLY_H
#define CFHOOK_HTTP_REPLY_H

#include <microhttpd.h>

#include "http.h"
#include "writer.h"

/* Queue `json` (copied) with `status`; `allow` (NULL-able) becomes the
 * Allow: header; with `close` set the connection closes after the answer.
 * Returns libmicrohttpd's verdict: MHD_NO closes the connection. */
enum MHD_Result http_reply_json(struct MHD_Connection *, unsigned status,
	    const char *json, const char *allow, int close);
/* A JSON answer built once, to be queued on any number of connections
 * from any libmicrohttpd thread (it counts its references): the answers
 * nearly every webhook gets, without a response built, copied and freed
 * each time. `json` must outlive it (a literal). NULL on no memory. Free
 * with MHD_destroy_response(). */
struct MHD_Response *http_reply_prepare(const char *json);
/* Queue a prepared answer with `status`; the connection stays open. */
enum MHD_Result http_reply_queue(struct MHD_Connection *, unsigned status,
	    struct MHD_Response *);
/* 200 {"status":"ok",...} or 503 with the probe's reason; counted in the
 * request metrics. */
enum MHD_Result http_reply_healthz(struct MHD_Connection *,
	    const struct http_probe *, struct writer *, int close);
/* The Prometheus page; counted in the request metrics (the scrape too). */
enum MHD_Result http_reply_metrics(struct MHD_Connection *,
	    const struct http_probe *, struct writer *, int close);

#endif
