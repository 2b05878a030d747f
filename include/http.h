/* http.h - the HTTP front: libmicrohttpd, routing, body cap, timeouts, and
 * the mapping of verification/store outcomes to status codes (DESIGN "HTTP
 * behaviour"). Parses and verifies on libmicrohttpd's threads; never touches
 * the database (the writer does). */
#ifndef CFHOOK_HTTP_H
#define CFHOOK_HTTP_H

#include "attr.h"

#include "config.h"
#include "secret.h"
#include "writer.h"

struct http;

/* What /healthz and /metrics may ask the rest of the daemon. */
struct http_probe {
	/* 0 and a reason string when not healthy; NULL-able */
	int	(*healthy)(void *arg, const char **reason);
	/* outbox gauges for /metrics; -1 when unknown */
	void	(*outbox)(void *arg, long long *pending, long long *dead);
	void	*arg;
};

/* Listen on listen_fd when >= 0 (socket activation), else open cfg->listen
 * (a unix socket file is replaced safely). Takes a reference to `secrets`.
 * cfg must outlive the struct http. Returns 0 / -1 (logged). */
int	http_start(const struct config *cfg, int listen_fd, struct writer *,
	    struct secrets *secrets, const struct http_probe *,
	    struct http **ret) MUST_CHECK;
/* Where it listens, read from the socket (also one systemd passed):
 * "127.0.0.1:8080", "[::1]:8080" or "unix:/run/cfhookd/http.sock".
 * Borrowed; valid until http_stop(). */
const char *http_listen_name(const struct http *);
/* Swap the accepted secrets (SIGHUP); requests under way keep the old set. */
void	http_set_secrets(struct http *, struct secrets *secrets);
/* Stop accepting connections. Requests under way go on; a new request on
 * an open keep-alive connection is answered 503, and every answer from now
 * on closes its connection. */
void	http_quiesce(struct http *);
/* Wait until no request is in flight or timeout_ms passes. Returns the number
 * still in flight. Afterwards nothing more is handed to the writer: a body
 * that completes later is answered 503. */
int	http_drain(struct http *, int timeout_ms);
/* Wait for the writer to answer what it holds (it does within its busy
 * timeout), give those answers up to 2 s to go out, then close every
 * connection and free. A unix socket file it created is removed.
 * NULL-safe. */
void	http_stop(struct http *);

#endif
