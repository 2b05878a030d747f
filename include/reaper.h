/* reaper.h - the per-request timeout of the HTTP front (DESIGN "HTTP
 * behaviour": a client that stalls is cut off after 30 s per request).
 *
 * libmicrohttpd's own timeout is an idle timeout: a client that sends one
 * byte now and then (slow headers, a trickled or endless chunked body) would
 * hold a connection for ever. The reaper keeps a list of connections and
 * shutdown()s every one whose current request has run past its budget. The
 * fd stays libmicrohttpd's: it sees the shutdown as a closed peer, cleans up
 * and closes it itself. */
#ifndef CFHOOK_REAPER_H
#define CFHOOK_REAPER_H

#include <stdint.h>

struct reaper;
struct reaper_conn;	/* one tracked connection; owned by the reaper */

/* Start the thread. Returns 0 / -1 (logged). */
int	reaper_start(int64_t request_timeout_ms, struct reaper **ret);
/* Track connection fd from now on; its first budget starts now. NULL when
 * out of memory: that connection only has the idle timeout. */
struct reaper_conn *reaper_add(struct reaper *, int fd);
/* Forget it and free it. Must be called before the fd is closed (the
 * reaper never touches an fd it no longer tracks, so a reused number is
 * safe). NULL-safe. */
void	reaper_remove(struct reaper *, struct reaper_conn *);
/* The request is parked (suspended for the writer): never reaped until
 * reaper_restart(). NULL-safe. */
void	reaper_hold(struct reaper *, struct reaper_conn *);
/* A new budget from now (the next request on a keep-alive connection, or
 * the answer after a hold); ends a hold. NULL-safe. */
void	reaper_restart(struct reaper *, struct reaper_conn *);
/* Stop the thread and free, after libmicrohttpd has stopped (its closed
 * notifications call reaper_remove). Entries still tracked are freed too.
 * NULL-safe. */
void	reaper_stop(struct reaper *);

#endif
