/* http.c - the HTTP front (DESIGN "HTTP behaviour").
 *
 * libmicrohttpd threads route each request, cap and read the raw body, verify
 * the signature and extract the event, then suspend the connection and hand
 * the event to the writer thread; the writer's done() resumes it and the
 * answer follows the commit. No database access and no forwarding here: the
 * 200 is only ever sent for an item the writer reports durable.
 *
 * Answers when several apply, first wins: 400/501 a head RFC 9112 refuses
 * (http_frame.c), then 404 path, 405 method, 415 content type, 413 size,
 * 401 signature, 503 store.
 *
 * Stop: http_quiesce() closes the listener, refuses new requests (503) and
 * closes every connection after its answer; http_drain() lets requests
 * under way finish, then parks nothing more; http_stop() waits for the
 * writer to answer what it holds before stopping libmicrohttpd, which
 * aborts the process when stopped with a connection still suspended.
 * The deadlines and the connection cap live in reaper.c, accepting in
 * http_accept.c, the head checks in http_frame.c, the connection and body
 * limits in http_limits.c, the answers in http_reply.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "event.h"
#include "form.h"
#include "http.h"
#include "http_accept.h"
#include "http_epoll.h"
#include "http_frame.h"
#include "http_limits.h"
#include "http_reply.h"
#include "listen.h"
#include "log.h"
#include "metrics.h"
#include "prio.h"
#include "reaper.h"
#include "verify.h"

#define HTTP_THREADS		2
#define PEER_MAX		64
/* Longest x-idempotency-key / x-webhook-version recorded (Cashfree's are
 * 44 and 10 bytes); a longer or non-printable one is not recorded. */
#define RECORDED_MAX		128
#define LISTEN_NAME_MAX		128
/* At stop, how long a connection accepted before it may take to send its
 * first request (a client sends it right after connecting). */
#define DRAIN_FRESH_MS		1000
/* At stop, how long answers the writer already gave may take to be sent. */
#define ANSWER_WAIT_MS		2000

static const char answer_new[] = "{\"status\":\"ok\",\"result\":\"new\"}";
static const char answer_duplicate[] =
    "{\"status\":\"ok\",\"result\":\"duplicate\"}";

struct http {
	struct MHD_Daemon *mhd;
	struct http_accept *acceptor;	/* hands connections to mhd */
	struct writer *writer;
	struct http_probe probe;
	/* The 200 answers, built once (NULL: built per request). */
	struct MHD_Response *ok_new, *ok_duplicate;
	/* The boot configuration, for listen_unlink() at stop (NULL when
	 * the socket came from systemd); borrowed. */
	const struct config *cfg;
	char	*webhook_path;
	size_t	 max_body;
	unsigned tolerance_s;
	int	 form_field_signature;	/* spec section 11: off by default */
	unsigned long long sock_ino;
	int	 listen_fd;		/* ours until quiesce hands it back */
	char	 listen_name[LISTEN_NAME_MAX];
	struct http_limits lim;		/* connections, body budget */
	struct reaper *reaper;		/* deadlines, connection cap */
	/* Set by http_quiesce(): new requests get 503, every answer closes
	 * its connection, so keep-alive clients cannot stretch the drain. */
	atomic_int draining;

	pthread_mutex_t mu;		/* everything below */
	pthread_cond_t cv;		/* inflight/waiting/answering changed */
	struct secrets *secrets;
	unsigned inflight;		/* webhook requests not completed */
	unsigned fresh;			/* connections whose first request has
					 * not finished (or not yet come) */
	unsigned waiting;		/* suspended, not yet resumed */
	unsigned answering;		/* resumed, answer not yet completed */
	/* Set by http_drain() / http_stop(): nothing is suspended any more,
	 * because libmicrohttpd aborts the process when it is stopped with a
	 * suspended connection. */
	int	 closing;
};

enum req_state {
	REQ_BODY,		/* reading the body */
	REQ_WRITER,		/* suspended until the writer answers */
	REQ_ANSWER		/* the writer answered: respond */
};

/* One webhook POST, from its first callback to the completion callback. */
struct request {
	struct http *h;
	struct MHD_Connection *conn;
	struct reaper_conn *track;	/* NULL when not tracked */
	enum req_state state;
	int	 is_form;
	int	 too_large;
	int	 over_budget;		/* refused: the body budget is full */
	size_t	 charged;		/* of h->body_bytes, for this body */
	int	 have_event;
	size_t	 secret_index;
	int64_t	 t0_us;
	char	 peer[PEER_MAX];
	char	*content_type;
	struct buf body;
	struct event ev;
	/* hex SHA-256 of a form's signing string when its signature field
	 * verified (spec section 11), else empty */
	char	 form_digest[2 * VERIFY_DIGEST_LEN + 1];
	char	 idempotency_key[RECORDED_MAX + 1];	/* "" when absent */
	char	 webhook_version[RECORDED_MAX + 1];
	char	 why[160];		/* a refused form field, for the log */
	struct store_item item;
};

static const char *
header(struct MHD_Connection *c, const char *name, const char *alias)
{
	const char *v;

	v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
	if (v == NULL && alias != NULL)
		v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, alias);
	return v;
}

/* A header value without the trailing blanks that RFC 9110 section 5.5 says
 * are not part of it (libmicrohttpd 0.9.75 keeps them). A value that does
 * not fit in buf is passed on whole: it cannot be a valid timestamp or
 * signature anyway. */
static const char *
header_trimmed(struct MHD_Connection *c, const char *name, const char *alias,
    char *buf, size_t n)
{
	const char *v = header(c, name, alias);
	size_t len;

	if (v == NULL)
		return NULL;
	len = strlen(v);
	while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	if (len >= n)
		return v;
	memcpy(buf, v, len);
	buf[len] = '\0';
	return buf;
}

/* Who sent it: the TCP peer, or behind nginx on a unix socket X-Real-IP. */
static void
peer_name(struct MHD_Connection *c, char *out, size_t n)
{
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa = NULL;
	const char *real;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci != NULL)
		sa = ci->client_addr;
	if (sa != NULL && sa->sa_family == AF_INET &&
	    inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->
	    sin_addr, out, (socklen_t)n) != NULL)
		return;
	if (sa != NULL && sa->sa_family == AF_INET6 &&
	    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)
	    sa)->sin6_addr, out, (socklen_t)n) != NULL)
		return;
	real = header(c, "X-Real-IP", NULL);
	(void)snprintf(out, n, "%.40s", real != NULL ? real : "unix");
}

/* Answer with a JSON body. Once the daemon drains, every answer closes
 * its connection, so keep-alive clients cannot stretch the drain. */
static enum MHD_Result
respond(struct http *h, struct MHD_Connection *c, unsigned status,
    const char *json, const char *allow)
{
	return http_reply_json(c, status, json, allow,
	    atomic_load(&h->draining));
}

/* A plain refusal before any body is read (404/405/415/413 on headers). */
static enum MHD_Result
refuse(struct http *h, struct MHD_Connection *c, const char *method,
    const char *url, unsigned status, const char *json, const char *allow)
{
	char peer[PEER_MAX];

	peer_name(c, peer, sizeof(peer));
	log_info("http: %u %.16s %.200s from %s", status, method, url, peer);
	metrics_request(status, 0);
	return respond(h, c, status, json, allow);
}

/* Media type of a Content-Type value: 1 JSON, 2 form, 0 anything else. */
static int
media_type(const char *ct)
{
	static const char json[] = "application/json";
	static const char form[] = "application/x-www-form-urlencoded";
	size_t n;

	if (ct == NULL)
		return 0;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	n = strcspn(ct, "; \t");
	if (n == sizeof(json) - 1 && strncasecmp(ct, json, n) == 0)
		return 1;
	if (n == sizeof(form) - 1 && strncasecmp(ct, form, n) == 0)
		return 2;
	return 0;
}

/* The connection's reaper entry (NULL when untracked). libmicrohttpd's
 * threads only: the info call writes into the connection. */
static struct reaper_conn *
track_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci != NULL ? ci->socket_context : NULL;
}

/* Drop the body's bytes and give its charge back. */
static void
body_drop(struct request *r)
{
	buf_done(&r->body);
	http_limits_give(&r->h->lim, r->charged);
	r->charged = 0;
}

/* Keep a piece of the body. A body of known length was charged whole by
 * webhook_begin(); a chunked one is charged as it grows. Past max_body
 * (413) or past the budget (503) the rest is read and dropped, and the
 * answer follows the last byte: chunked bodies have no length to refuse up
 * front. */
static void
body_take(struct request *r, const char *p, size_t n)
{
	size_t need = r->body.len + n;

	if (r->too_large || r->over_budget)
		return;
	if (need > r->charged) {
		if (http_limits_take(&r->h->lim, need - r->charged) == -1) {
			r->over_budget = 1;
			body_drop(r);
			return;
		}
		r->charged = need;
	}
	if (buf_append(&r->body, p, n) == -1) {
		r->too_large = 1;
		body_drop(r);
	}
}

static void
request_free(struct request *r)
{
	if (r == NULL)
		return;
	if (r->have_event)
		event_done(&r->ev);
	body_drop(r);
	free(r->content_type);
	free(r);
}

/* The writer's done(): runs on the writer thread once the item's
 * transaction is durable or failed. After MHD_resume_connection() the
 * request may be answered and freed at once, so only `h` is touched then. */
static void
stored(struct store_item *item, void *arg)
{
	struct request *r = arg;
	struct http *h = r->h;
	struct MHD_Connection *c = r->conn;

	(void)item;
	reaper_restart(h->reaper, r->track);	/* the answer's own budget */
	pthread_mutex_lock(&h->mu);
	r->state = REQ_ANSWER;
	h->answering++;
	pthread_mutex_unlock(&h->mu);
	MHD_resume_connection(c);
	pthread_mutex_lock(&h->mu);
	h->waiting--;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

static struct secrets *
secrets_current(struct http *h)
{
	struct secrets *s;

	pthread_mutex_lock(&h->mu);
	s = secrets_ref(h->secrets);
	pthread_mutex_unlock(&h->mu);
	return s;
}

/* A header recorded for the merchant's information (DESIGN "Events and
 * deduplication"): copied when it is printable ASCII of at most
 * RECORDED_MAX bytes, else left empty. It is never part of an event key. */
static void
recorded(struct MHD_Connection *c, const char *name, char *out)
{
	const char *v = header(c, name, NULL);
	size_t i;

	out[0] = '\0';
	if (v == NULL)
		return;
	for (i = 0; v[i] != '\0'; i++) {
		if (i >= RECORDED_MAX || v[i] < 0x20 || v[i] > 0x7e)
			return;
	}
	memcpy(out, v, i + 1);
}

static void
hex(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

/* A form: verified by its headers or (when allowed) its signature field,
 * then read; strictly when the field was the only proof. */
static enum verify_result
verify_form_request(struct request *r, const struct secrets *s,
    const struct verify_request *vr)
{
	struct verify_form_info info;
	enum verify_result v;
	enum event_result er;
	struct form f;

	v = verify_form(s, vr, r->h->form_field_signature, &f, &info);
	if (v == VERIFY_OK) {
		r->secret_index = info.secret_index;
		er = event_from_form(&f, vr->body, vr->body_len,
		    info.by_field && !info.by_header, &r->ev, r->why,
		    sizeof(r->why));
		v = er == EVENT_OK ? VERIFY_OK : er == EVENT_REFUSED ?
		    VERIFY_FIELDS : VERIFY_INTERNAL;
	}
	if (v == VERIFY_OK && info.by_field)
		hex(info.signing_digest, VERIFY_DIGEST_LEN, r->form_digest);
	form_done(&f);
	return v;
}

/* Verify and extract. Returns VERIFY_OK with r->ev filled, or why not.
 * The Content-Type only picks the parser; the signed bytes decide the rest
 * (verify_form() refuses a "form" that is JSON). */
static enum verify_result
verify_and_extract(struct request *r)
{
	struct MHD_Connection *c = r->conn;
	struct verify_request vr;
	struct secrets *s;
	enum verify_result v;
	char ts[32], sig[96];

	memset(&vr, 0, sizeof(vr));
	vr.timestamp = header_trimmed(c, "x-webhook-timestamp",
	    "x-cashfree-timestamp", ts, sizeof(ts));
	vr.signature = header_trimmed(c, "x-webhook-signature",
	    "x-cashfree-signature", sig, sizeof(sig));
	vr.body = r->body.data != NULL ? r->body.data : "";
	vr.body_len = r->body.len;
	vr.now_ms = clock_wall_ms();
	vr.tolerance_s = r->h->tolerance_s;
	s = secrets_current(r->h);
	if (!r->is_form) {
		v = verify_json(s, &vr, &r->secret_index);
		if (v == VERIFY_OK && event_from_json(vr.body, vr.body_len,
		    &r->ev) == -1)
			v = VERIFY_INTERNAL;
	} else {
		v = verify_form_request(r, s, &vr);
	}
	secrets_free(s);
	if (v != VERIFY_OK)
		return v;
	r->have_event = 1;
	recorded(c, "x-idempotency-key", r->idempotency_key);
	recorded(c, "x-webhook-version", r->webhook_version);
	return VERIFY_OK;
}

/* Hand the verified event to the writer and suspend the connection until
 * stored() resumes it. Returns -1, suspending nothing, once the drain is
 * over: libmicrohttpd must not be stopped with a suspended connection (it
 * aborts the process), and the writer may be gone soon after. */
static int
park(struct request *r)
{
	struct http *h = r->h;

	r->item.ev = &r->ev;
	r->item.body = r->body.data != NULL ? r->body.data : "";
	r->item.body_len = r->body.len;
	r->item.content_type = r->content_type;
	r->item.idempotency_key = r->idempotency_key[0] != '\0' ?
	    r->idempotency_key : NULL;
	r->item.webhook_version = r->webhook_version[0] != '\0' ?
	    r->webhook_version : NULL;
	r->item.form_digest = r->form_digest[0] != '\0' ? r->form_digest :
	    NULL;
	r->item.received_ms = clock_wall_ms();
	r->item.done = stored;
	r->item.arg = r;
	pthread_mutex_lock(&h->mu);
	if (h->closing) {
		pthread_mutex_unlock(&h->mu);
		return -1;
	}
	r->state = REQ_WRITER;
	h->waiting++;
	pthread_mutex_unlock(&h->mu);
	reaper_hold(h->reaper, r->track);
	MHD_suspend_connection(r->conn);
	writer_submit(h->writer, &r->item);
	return 0;
}

/* The body is complete: verify, then hand over to the writer (suspending the
 * connection), or answer the refusal now. */
static enum MHD_Result
body_done(struct request *r)
{
	struct http *h = r->h;
	enum verify_result v;
	unsigned status;

	if (r->too_large) {
		status = 413;
		log_info("http: 413 body over max_body (%zu bytes) from %s",
		    h->max_body, r->peer);
		metrics_request(status, clock_mono_us() - r->t0_us);
		return respond(h, r->conn, status,
		    "{\"error\":\"body too large\"}", NULL);
	}
	v = verify_and_extract(r);
	if (v != VERIFY_OK) {
		status = v == VERIFY_INTERNAL ? 503 :
		    401;
		metrics_signature_failure(v);
		/* A 401 is a security event: warning, with the reason. */
		if (v == VERIFY_INTERNAL)
			log_warning("http: 503 verification could not run (no "
			    "memory or crypto failure) for a request from %s",
			    r->peer);
		else if (v == VERIFY_FIELDS)
			log_warning("http: 401 %s: %s from %s",
			    verify_result_name(v), r->why, r->peer);
		else
			log_warning("http: 401 signature %s from %s",
			    verify_result_name(v), r->peer);
		metrics_request(status, clock_mono_us() - r->t0_us);
		return respond(h, r->conn, status, status == 503 ?
		    "{\"error\":\"temporarily unavailable\"}" :
		    v == VERIFY_FORMAT ? "{\"error\":\"content type does not "
		    "match the signed body\"}" : v == VERIFY_FIELDS ?
		    "{\"error\":\"form fields fail their grammar\"}" :
		    "{\"error\":\"signature verification failed\"}", NULL);
	}
	if (park(r) == 0)
		return MHD_YES;
	log_warning("http: 503 shutting down, not stored event_key=%s from %s",
	    r->ev.event_key, r->peer);
	metrics_request(503, clock_mono_us() - r->t0_us);
	return respond(h, r->conn, 503, "{\"error\":\"shutting down, retry "
	    "later\"}", NULL);
}

/* The writer answered: 200 for a durable event (new or duplicate), else 503
 * so that Cashfree retries. */
static enum MHD_Result
answer(struct request *r)
{
	struct log_fields lf;
	struct MHD_Response *prepared;
	enum store_result res = r->item.result;
	const char *attempt;
	unsigned status;

	lf.event_key = r->ev.event_key;
	lf.cf_payment_id = r->ev.cf_payment_id;
	lf.order_id = r->ev.order_id;
	attempt = header(r->conn, "x-webhook-attempt", NULL);
	status = res == STORE_UNAVAILABLE ? 503 :
	    200;
	log_event(status == 200 ? LOG_LVL_INFO : LOG_LVL_WARNING, &lf,
	    "http: %u %s event_key=%s id=%lld secret=#%zu attempt=%.12s "
	    "from %s", status, res == STORE_NEW ? "new" :
	    res == STORE_DUPLICATE ? "duplicate" : "not stored",
	    r->ev.event_key, (long long)r->item.id, r->secret_index + 1,
	    attempt != NULL ? attempt : "-", r->peer);
	if (status == 200)
		metrics_event(r->ev.type, res == STORE_DUPLICATE);
	metrics_request(status, clock_mono_us() - r->t0_us);
	if (status != 200)
		return respond(r->h, r->conn, status,
		    "{\"error\":\"could not be stored, retry later\"}", NULL);
	prepared = res == STORE_NEW ? r->h->ok_new : r->h->ok_duplicate;
	if (prepared != NULL && !atomic_load(&r->h->draining))
		return http_reply_queue(r->conn, status, prepared);
	/* draining: the answer closes the connection, so it is built */
	return respond(r->h, r->conn, status, res == STORE_NEW ? answer_new :
	    answer_duplicate, NULL);
}

/* The bodies in memory together reached their budget: 503, so Cashfree
 * retries once the flood is over. r NULL: before the request began. */
static enum MHD_Result
busy(struct http *h, struct MHD_Connection *c, const struct request *r)
{
	char peer[PEER_MAX];

	if (r == NULL)
		peer_name(c, peer, sizeof(peer));
	log_warning("http: 503 bodies in memory reached their budget (%zu "
	    "bytes), not read from %s", h->lim.body_max,
	    r != NULL ? r->peer : peer);
	metrics_request(503, r != NULL ? clock_mono_us() - r->t0_us : 0);
	return respond(h, c, 503, "{\"error\":\"busy, retry later\"}", NULL);
}

/* First callback of a webhook POST: headers are in, no body yet. `first`:
 * the connection's first request. */
static enum MHD_Result
webhook_begin(struct http *h, struct MHD_Connection *c, const char *method,
    const char *url, void **con_cls, int first)
{
	const char *ct, *cl;
	struct request *r;
	unsigned long long len = 0;
	char *end;
	int kind;

	if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
		return refuse(h, c, method, url, 405,
		    "{\"error\":\"method not allowed\"}", "POST");
	ct = header(c, MHD_HTTP_HEADER_CONTENT_TYPE, NULL);
	kind = media_type(ct);
	if (kind == 0)
		return refuse(h, c, method, url, 415, "{\"error\":\"unsupported "
		    "content type\"}", NULL);
	cl = header(c, MHD_HTTP_HEADER_CONTENT_LENGTH, NULL);
	if (cl != NULL) {
		errno = 0;
		len = strtoull(cl, &end, 10);
		if (errno != 0 || end == cl || len > h->max_body)
			return refuse(h, c, method, url, 413,
			    "{\"error\":\"body too large\"}", NULL);
	}
	/* Draining after SIGTERM: requests already under way are finished,
	 * and so is the first request of a connection accepted before (its
	 * client has been taken in; http_drain() waits for it). A new request
	 * on a kept-alive connection is not taken in (Cashfree retries). */
	if (atomic_load(&h->draining) && !first)
		return refuse(h, c, method, url, 503,
		    "{\"error\":\"shutting down, retry later\"}", NULL);
	/* A body of known length is charged before it is read: one that
	 * cannot fit is turned away now, unread. */
	if (http_limits_take(&h->lim, (size_t)len) == -1)
		return busy(h, c, NULL);
	r = calloc(1, sizeof(*r));
	if (r == NULL || (r->content_type = strdup(ct)) == NULL) {
		free(r);
		http_limits_give(&h->lim, (size_t)len);
		return refuse(h, c, method, url, 503,
		    "{\"error\":\"temporarily unavailable\"}", NULL);
	}
	r->charged = (size_t)len;
	r->h = h;
	r->conn = c;
	r->track = track_of(c);
	r->is_form = kind == 2;
	r->t0_us = clock_mono_us();
	/* No more room than the length announced: libmicrohttpd never
	 * passes more, and the buffer then never grows past its charge.
	 * That room is made now, in one allocation, rather than by doubling
	 * and copying as the pieces arrive. */
	buf_init(&r->body, cl != NULL ? (size_t)len : h->max_body);
	if (cl != NULL && buf_reserve(&r->body, (size_t)len) == -1) {
		request_free(r);
		return refuse(h, c, method, url, 503,
		    "{\"error\":\"temporarily unavailable\"}", NULL);
	}
	peer_name(c, r->peer, sizeof(r->peer));
	pthread_mutex_lock(&h->mu);
	h->inflight++;
	pthread_mutex_unlock(&h->mu);
	*con_cls = r;
	return MHD_YES;
}

static enum MHD_Result
frame_field(void *cls, enum MHD_ValueKind kind, const char *name,
    const char *value)
{
	(void)kind;
	http_frame_field(cls, name, value != NULL ? value : "");
	return MHD_YES;
}

/* A head libmicrohttpd let through but RFC 9112 refuses (http_frame.h):
 * 400 or 501, and the connection closes, since where its body ends is in
 * doubt. Answered before routing. */
static enum MHD_Result
protocol_error(struct MHD_Connection *c, const char *method, const char *url,
    enum http_frame_result fr, const char *why)
{
	unsigned status = fr == HTTP_FRAME_UNSUPPORTED ? 501 : 400;
	char peer[PEER_MAX], json[128];

	peer_name(c, peer, sizeof(peer));
	log_info("http: %u %s: %.16s %.200s from %s", status, why, method, url,
	    peer);
	metrics_request(status, 0);
	/* why: one of http_frame.c's fixed phrases, no quotes */
	(void)snprintf(json, sizeof(json), "{\"error\":\"%s\"}", why);
	return http_reply_json(c, status, json, NULL, 1);
}

/* First callback of a request: its head is in, no body yet. Protocol
 * errors first, then the routing table by path (an absolute-form target
 * is routed by its path, RFC 9112 3.2.2). */
static enum MHD_Result
route(struct http *h, struct MHD_Connection *c, const char *method,
    const char *url, void **con_cls)
{
	struct http_frame f;
	enum http_frame_result fr;
	const char *path, *why;
	int first;

	prio_intake_thread();	/* intake first (prio.h) */
	first = reaper_begin(h->reaper, track_of(c));	/* a request is under way */
	http_frame_init(&f);
	(void)MHD_get_connection_values(c, MHD_HEADER_KIND, frame_field, &f);
	fr = http_frame_done(&f, &why);
	path = http_frame_path(url);
	if (fr == HTTP_FRAME_OK && path == NULL) {
		fr = HTTP_FRAME_BAD;
		why = "request target is neither a path nor an http URI";
	}
	if (fr != HTTP_FRAME_OK)
		return protocol_error(c, method, url, fr, why);
	if (strcmp(path, h->webhook_path) == 0)
		return webhook_begin(h, c, method, url, con_cls, first);
	if (strcmp(path, "/healthz") != 0 && strcmp(path, "/metrics") != 0)
		return refuse(h, c, method, url, 404,
		    "{\"error\":\"not found\"}", NULL);
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return refuse(h, c, method, url, 405,
		    "{\"error\":\"method not allowed\"}", "GET, HEAD");
	if (strcmp(path, "/healthz") == 0)
		return http_reply_healthz(c, &h->probe, h->writer,
		    atomic_load(&h->draining));
	return http_reply_metrics(c, &h->probe, h->writer,
	    atomic_load(&h->draining));
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct http *h = cls;
	struct request *r = *con_cls;
	enum req_state state;

	(void)version;
	if (r == NULL)
		return route(h, c, method, url, con_cls);
	if (*upload_data_size > 0) {
		body_take(r, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	pthread_mutex_lock(&h->mu);
	state = r->state;
	pthread_mutex_unlock(&h->mu);
	if (state == REQ_BODY && r->over_budget)
		return busy(h, c, r);
	if (state == REQ_BODY)
		return body_done(r);
	if (state == REQ_ANSWER)
		return answer(r);
	return MHD_YES;		/* resumed spuriously: still waiting */
}

static void
on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct http *h = cls;
	struct request *r = *con_cls;
	int first;

	(void)toe;
	/* libmicrohttpd never completes a suspended request (it does not even
	 * watch its socket), so r is not in the writer's hands here. */
	first = reaper_idle(h->reaper, track_of(c));	/* waits for the next */
	if (r != NULL || first) {
		pthread_mutex_lock(&h->mu);
		if (r != NULL) {
			h->inflight--;
			if (r->state == REQ_ANSWER)
				h->answering--;
		}
		if (first)
			h->fresh--;
		pthread_cond_broadcast(&h->cv);
		pthread_mutex_unlock(&h->mu);
	}
	request_free(r);
	*con_cls = NULL;
}

/* libmicrohttpd has the request line (the URI is only logged here; the
 * route comes with the head): from now on the headers are due. NULL keeps
 * *con_cls unset for on_request. */
static void *
on_request_line(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct http *h = cls;

	(void)uri;
	reaper_request_line(h->reaper, track_of(c));
	return NULL;
}

static void
fresh_changed(struct http *h, int by)
{
	pthread_mutex_lock(&h->mu);
	h->fresh = by > 0 ? h->fresh + 1 : h->fresh - 1;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

/* Connection life: the reaper's list. libmicrohttpd notifies CLOSED before
 * it closes the fd, which is what keeps the reaper off a reused fd. */
static void
on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
    enum MHD_ConnectionNotificationCode code)
{
	const union MHD_ConnectionInfo *ci;
	struct http *h = cls;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(c,
		    MHD_CONNECTION_INFO_CONNECTION_FD);
		/* NULL: not reaped; the idle timeout still applies, and a stop
		 * does not wait for its first request */
		*socket_context = ci != NULL ?
		    reaper_add(h->reaper, ci->connect_fd) : NULL;
		if (*socket_context != NULL)
			fresh_changed(h, 1);
		/* After the count above: http_drain() reads this one first. */
		http_accept_started(h->acceptor);
		return;
	}
	if (reaper_remove(h->reaper, *socket_context))
		fresh_changed(h, -1);	/* gone before a request finished */
	*socket_context = NULL;
	http_accept_closed(h->acceptor);	/* room for the next one */
}

static void __attribute__((format(printf, 2, 0)))
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	size_t n;

	(void)cls;
	if (vsnprintf(line, sizeof(line), fmt, ap) < 0)
		return;
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	log_debug("http: libmicrohttpd: %s", line);
}

static void
http_free(struct http *h)
{
	if (h == NULL)
		return;
	reaper_stop(h->reaper);		/* after libmicrohttpd: it removes */
	if (h->ok_new != NULL)
		MHD_destroy_response(h->ok_new);
	if (h->ok_duplicate != NULL)
		MHD_destroy_response(h->ok_duplicate);
	http_accept_free(h->acceptor);	/* after libmicrohttpd: it counts */
	secrets_free(h->secrets);
	free(h->webhook_path);
	(void)pthread_cond_destroy(&h->cv);
	(void)pthread_mutex_destroy(&h->mu);
	free(h);
}

static int
start_mhd(struct http *h, const struct config *cfg)
{
	/* No listening socket of its own: http_accept.c accepts and spreads
	 * the connections over the worker threads, which the ITC wakes. */
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
	    MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
	    MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC;

	h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned)HTTP_THREADS,
	    /* The acceptor keeps the cap (mhd_max): this one must never
	     * bite, even were every connection on one worker (0.9.75 drops
	     * a connection over it after MHD_add_connection() took it, and
	     * the worker then hangs in MHD_stop_daemon()). */
	    MHD_OPTION_CONNECTION_LIMIT, h->lim.mhd_max * HTTP_THREADS,
	    MHD_OPTION_CONNECTION_TIMEOUT, cfg->idle_timeout_s,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY,
	    MHD_OPTION_URI_LOG_CALLBACK, on_request_line, h,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
	    MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
	    MHD_OPTION_END);
	if (h->mhd == NULL) {
		log_error("http: cannot start libmicrohttpd on '%s'",
		    cfg->listen);
		return -1;
	}
	if (!http_epoll_guarded())
		log_warning("http: libmicrohttpd's epoll_wait() is not the "
		    "guarded one; 128 events at once may stall a worker");
	if (http_accept_run(h->acceptor, h->mhd) == -1) {
		MHD_stop_daemon(h->mhd);
		h->mhd = NULL;
		return -1;
	}
	return 0;
}

/* For the start-up line. A unix socket we made is bound under its
 * temporary name and renamed: getsockname() would show the temporary one. */
static void
name_listener(struct http *h, const struct config *cfg)
{
	if (h->cfg != NULL && cfg->listen_kind == LISTEN_UNIX)
		(void)snprintf(h->listen_name, sizeof(h->listen_name),
		    "unix:%s", cfg->listen_path);
	else
		listen_name(h->listen_fd, h->listen_name,
		    sizeof(h->listen_name));
}

int
http_start(const struct config *cfg, int listen_fd, struct writer *w,
    struct secrets *secrets, const struct http_probe *probe,
    struct http **ret)
{
	struct http *h;

	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return -1;
	(void)pthread_mutex_init(&h->mu, NULL);
	(void)clock_cond_init(&h->cv);
	h->writer = w;
	if (probe != NULL)
		h->probe = *probe;
	h->webhook_path = strdup(cfg->webhook_path);
	h->max_body = cfg->max_body;
	h->tolerance_s = cfg->tolerance_s;
	h->form_field_signature = cfg->form_field_signature;
	h->secrets = secrets_ref(secrets);
	h->listen_fd = listen_fd;
	if (h->webhook_path == NULL)
		goto fail;
	h->ok_new = http_reply_prepare(answer_new);
	h->ok_duplicate = http_reply_prepare(answer_duplicate);
	http_limits_init(&h->lim, cfg);
	if (reaper_start((int64_t)cfg->request_timeout_s * 1000,
	    (int64_t)cfg->header_timeout_s * 1000, h->lim.max_live,
	    &h->reaper) == -1)
		goto fail;
	if (h->listen_fd < 0) {
		h->listen_fd = listen_open(cfg, &h->sock_ino);
		if (h->listen_fd < 0)
			goto fail;
		h->cfg = cfg;	/* for listen_unlink */
	}
	name_listener(h, cfg);
	if (http_accept_new(h->listen_fd, h->lim.mhd_max, &h->acceptor) == -1 ||
	    start_mhd(h, cfg) == -1)
		goto fail;
	*ret = h;
	return 0;
fail:
	if (h->listen_fd >= 0 && listen_fd < 0)
		(void)close(h->listen_fd);
	http_free(h);
	return -1;
}

const char *
http_listen_name(const struct http *h)
{
	return h->listen_name;
}

void
http_set_secrets(struct http *h, struct secrets *secrets)
{
	struct secrets *old;

	pthread_mutex_lock(&h->mu);
	old = h->secrets;
	h->secrets = secrets_ref(secrets);
	pthread_mutex_unlock(&h->mu);
	secrets_free(old);	/* requests under way hold their own ref */
}

void
http_quiesce(struct http *h)
{
	if (h == NULL)
		return;
	atomic_store(&h->draining, 1);
	if (h->listen_fd < 0)
		return;
	http_accept_stop(h->acceptor);
	(void)close(h->listen_fd);
	h->listen_fd = -1;
}

/* Wait (mutex held) until *n is 0 or the monotonic deadline passes
 * (deadline_ms < 0: no deadline). */
static void
wait_zero(struct http *h, const unsigned *n, int64_t deadline_ms)
{
	while (*n > 0) {
		if (deadline_ms >= 0 && clock_mono_ms() >= deadline_ms)
			return;
		(void)clock_cond_wait_until(&h->cv, &h->mu, deadline_ms);
	}
}

/* Connections accepted before the stop whose first request has not
 * finished: handed over and not started yet, or started (mutex held). The
 * acceptor's count is read first: a connection leaves it only after
 * joining h->fresh. */
static unsigned
fresh_connections(struct http *h)
{
	unsigned unstarted = http_accept_unstarted(h->acceptor);

	return unstarted + h->fresh;
}

int
http_drain(struct http *h, int timeout_ms)
{
	int64_t now = clock_mono_ms(), until = now + timeout_ms;
	int64_t fresh_until = now + (timeout_ms < DRAIN_FRESH_MS ? timeout_ms :
	    DRAIN_FRESH_MS);
	unsigned n;

	/* Requests under way, and the first request of every connection the
	 * acceptor took before it stopped: its client sent it, or is about
	 * to, and gets its answer rather than a closed connection. */
	pthread_mutex_lock(&h->mu);
	while (now < until && (h->inflight > 0 ||
	    (now < fresh_until && fresh_connections(h) > 0))) {
		(void)clock_cond_wait_until(&h->cv, &h->mu,
		    h->inflight > 0 ? until : fresh_until);
		now = clock_mono_ms();
	}
	n = h->inflight;
	/* A straggler's body may still complete; it is answered 503 rather
	 * than queued behind a writer that may be blocked for a busy
	 * timeout, so the stop stays bounded. */
	h->closing = 1;
	pthread_mutex_unlock(&h->mu);
	return (int)n;
}

void
http_stop(struct http *h)
{
	if (h == NULL)
		return;
	atomic_store(&h->draining, 1);
	/* From now on nothing is suspended (park() answers 503). Those
	 * already parked are resumed by the writer within its busy timeout;
	 * then their answers get a moment to go out. libmicrohttpd aborts
	 * when stopped with a connection still suspended. */
	pthread_mutex_lock(&h->mu);
	h->closing = 1;
	wait_zero(h, &h->waiting, -1);
	wait_zero(h, &h->answering, clock_mono_ms() + ANSWER_WAIT_MS);
	pthread_mutex_unlock(&h->mu);
	http_accept_stop(h->acceptor);	/* it adds to the daemon */
	if (h->listen_fd >= 0)
		(void)close(h->listen_fd);
	MHD_stop_daemon(h->mhd);
	if (h->cfg != NULL)
		listen_unlink(h->cfg, h->sock_ino);
	http_free(h);
}
