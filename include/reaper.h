/* reaper.h - the deadlines and the connection cap of the HTTP front (DESIGN
 * "HTTP behaviour": a client that stalls is cut off; README "HTTP
 * behaviour" for the numbers).
 *
 * libmicrohttpd's own timeout is an idle timeout: a client that sends one
 * byte now and then (slow headers, a trickled or endless chunked body) would
 * hold a connection for ever, and at its connection limit it stops
 * accepting, so idle connections could lock every genuine client out. The
 * reaper keeps a list of connections and shutdown()s
 *   - one whose request has run past request_timeout;
 *   - one whose headers are not complete header_timeout after it connected
 *     (or, on a kept-alive connection, after its request line arrived);
 *   - when more than max_live are open, the one that has waited longest for
 *     a request (idle, kept alive, or still sending its headers), so that a
 *     new connection is always served. A request under way is never closed
 *     to make room.
 * The fd stays libmicrohttpd's: it sees the shutdown as a closed peer,
 * cleans up and closes it itself. Every function may be called from any
 * libmicrohttpd thread. */
#ifndef CFHOOK_REAPER_H
#define CFHOOK_REAPER_H

#include "attr.h"

#include <stdint.h>

struct reaper;
struct reaper_conn;	/* one tracked connection; owned by the reaper */

/* Start the thread. max_live >= 1. Returns 0 / -1 (logged). */
int	reaper_start(int64_t request_timeout_ms, int64_t header_timeout_ms,
	    unsigned max_live, struct reaper **ret) MUST_CHECK;
/* Track connection fd from now on: waiting for its first request, whose
 * budgets start now. When this makes more than max_live, the connection
 * that has waited longest (never this one) is shut down. NULL when out of
 * memory: that connection only has the idle timeout. */
struct reaper_conn *reaper_add(struct reaper *, int fd);
/* Forget it and free it. Must be called before the fd is closed (the
 * reaper never touches an fd it no longer tracks, so a reused number is
 * safe). Returns 1 when the connection had never finished a request (see
 * reaper_idle), else 0 (also for NULL). */
int	reaper_remove(struct reaper *, struct reaper_conn *);
/* The request line is in: the headers are due within header_timeout (for
 * a first request, of the connect). NULL-safe. */
void	reaper_request_line(struct reaper *, struct reaper_conn *);
/* The head is complete: a request is under way, no longer closed to make
 * room; request_timeout still applies. Returns 1 when it is the
 * connection's first request, else 0 (also for NULL). */
int	reaper_begin(struct reaper *, struct reaper_conn *);
/* The request is parked (suspended for the writer): never reaped until
 * reaper_restart(). NULL-safe. */
void	reaper_hold(struct reaper *, struct reaper_conn *);
/* The answer's own budget from now; ends a hold. NULL-safe. */
void	reaper_restart(struct reaper *, struct reaper_conn *);
/* The request is finished: the connection waits for the next one (kept
 * alive), with a new request budget from now. Returns 1 when it was the
 * connection's first finished request, else 0 (also for NULL). */
int	reaper_idle(struct reaper *, struct reaper_conn *);
/* Stop the thread and free, after libmicrohttpd has stopped (its closed
 * notifications call reaper_remove). Entries still tracked are freed too.
 * NULL-safe. */
void	reaper_stop(struct reaper *);

#endif
