/* http_limits.h - what the HTTP front may hold at once (DESIGN "HTTP
 * behaviour"; README "HTTP behaviour" and "Limits"): connections, as many
 * as the open-file limit allows, the memory libmicrohttpd keeps per
 * connection, and the bytes of request bodies, one budget for all of them.
 * The budget functions may be called from any thread. */
#ifndef CFHOOK_HTTP_LIMITS_H
#define CFHOOK_HTTP_LIMITS_H

#include <stdatomic.h>
#include <stddef.h>

#include "config.h"

/* libmicrohttpd's memory pool per connection: the head of one request (it
 * answers 431 past about 7.5 KiB; Cashfree sends under 1 KiB, nginx adds a
 * few hundred bytes), its field list, and the read buffer the body passes
 * through. libmicrohttpd zeroes the whole pool after each request, so on a
 * kept-alive connection all of it stays resident: 8 KiB keeps 1,000 such
 * connections under 10 MiB. */
#define HTTP_CONN_MEMORY	(8 * 1024)

struct http_limits {
	unsigned max_live;	/* connections kept; past it the one that
				 * waited longest is closed (reaper.h) */
	unsigned mhd_max;	/* libmicrohttpd's own cap, a little higher */
	size_t	 body_max;	/* bytes all bodies may hold together */
	atomic_size_t body_used;	/* bytes charged now */
};

/* Fill from cfg. Raises the soft open-file limit as far as max_connections
 * needs; when the hard limit is lower, keeps fewer connections and logs a
 * warning. */
void	http_limits_init(struct http_limits *, const struct config *);
/* Charge n bytes of body. 0, or -1 (nothing charged) when they do not
 * fit. */
int	http_limits_take(struct http_limits *, size_t n);
/* Give back n charged bytes. */
void	http_limits_give(struct http_limits *, size_t n);

#endif
