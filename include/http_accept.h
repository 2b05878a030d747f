/* http_accept.h - the HTTP front's acceptor: one thread that accepts
 * connections on the listening socket and hands each to libmicrohttpd,
 * which spreads them over its worker threads (DESIGN "Data flow", http).
 *
 * libmicrohttpd's workers, left to accept for themselves, race for the
 * listening socket and one of them may take most of a burst of connections
 * (up to ten at a time each): under make bench's 64 connections one thread
 * was seen doing 85% of the work while the other idled, which caps intake
 * at what one core does. MHD_add_connection() gives each new connection to
 * a worker chosen by its descriptor number, so they share the load.
 *
 * The acceptor keeps libmicrohttpd's cap: it never hands over more than
 * `max` connections at once. At the cap it stops accepting, so new
 * connections wait in the kernel's queue (as they did when libmicrohttpd
 * accepted) until the daemon reports one closed. */
#ifndef CFHOOK_HTTP_ACCEPT_H
#define CFHOOK_HTTP_ACCEPT_H

#include <microhttpd.h>

struct http_accept;

/* An acceptor for listen_fd (made non-blocking; it stays the caller's to
 * close) that will hand over at most max (>= 1) connections at once. No
 * thread yet. Returns 0 / -1 (logged). */
int	http_accept_new(int listen_fd, unsigned max, struct http_accept **ret);
/* Start accepting for `mhd`, a daemon started with MHD_USE_NO_LISTEN_SOCKET
 * and MHD_USE_ITC whose own connection limit is high enough never to
 * refuse a connection handed to it, and whose connection notifications
 * call the two functions below. Returns 0 / -1 (logged). */
int	http_accept_run(struct http_accept *, struct MHD_Daemon *mhd);
/* libmicrohttpd started serving a connection (its STARTED notification)
 * or closed one (CLOSED). Any thread, until http_accept_free(). */
void	http_accept_started(struct http_accept *);
void	http_accept_closed(struct http_accept *);
/* Stop accepting and wait for the thread: when it returns no connection is
 * handed over any more, and those the kernel queued stay queued on
 * listen_fd. NULL-safe; a second call does nothing. */
void	http_accept_stop(struct http_accept *);
/* After http_accept_stop(): connections handed over that libmicrohttpd
 * has not reported started yet (about to be; one it dropped for want of
 * memory stays counted). NULL-safe (0). */
unsigned http_accept_unstarted(struct http_accept *);
/* Stop, then free, once libmicrohttpd has stopped (it notifies until
 * then). NULL-safe. */
void	http_accept_free(struct http_accept *);

#endif
