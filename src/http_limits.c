/* http_limits.c - the connection count and the body budget of the HTTP
 * front (see http_limits.h).
 *
 * Memory has two parts, both bounded whatever max_connections is: each
 * connection's libmicrohttpd pool (HTTP_CONN_MEMORY), and the bodies being
 * read, whose buffers grow as bytes arrive, never past max_body each, and
 * never past body_max all together; a body that would pass it is answered
 * 503 and Cashfree retries. Must not: choose a request's answer (http.c
 * does), or lower a limit of the process. */
#include <stdatomic.h>

#include "http_limits.h"
#include "listen.h"
#include "log.h"

/* Bodies held at once: as much as 256 bodies at the default max_body (the
 * old worst case), or 4 of the largest when max_body is set higher. */
#define BODY_BUDGET		((size_t)64 * 1024 * 1024)
#define BODY_BUDGET_BODIES	4
/* Descriptors kept for everything but client connections: the databases,
 * the log, hooks and their pipes, the forwarder's sockets, libmicrohttpd's
 * epoll and wake-up fds. */
#define FD_RESERVE		256

/* Connections libmicrohttpd may hold beyond max_live: the reaper closes
 * the longest-waiting one as soon as a new one passes max_live, and these
 * absorb a burst until libmicrohttpd has closed them (at its own cap it
 * stops accepting). */
static unsigned
spare(unsigned max)
{
	return max / 16 + 16;
}

/* As many of cfg's max_connections as the open-file limit, raised as far
 * as they need, leaves room for. */
static unsigned
room_for(const struct config *cfg)
{
	unsigned max = cfg->max_connections;
	unsigned long long want, have, room;

	want = (unsigned long long)max + spare(max) + FD_RESERVE;
	have = listen_nofile(want);
	if (have >= want)
		return max;
	/* the largest max with max + max / 16 + 16 <= have - FD_RESERVE */
	room = have > FD_RESERVE + 16 ? have - FD_RESERVE - 16 : 0;
	max = room * 16 / 17 > 0 ? (unsigned)(room * 16 / 17) : 1;
	log_warning("http: the open-file limit (%llu) leaves room for %u "
	    "connections, fewer than max_connections (%u); raise LimitNOFILE "
	    "or ulimit -n", have, max, cfg->max_connections);
	return max;
}

void
http_limits_init(struct http_limits *l, const struct config *cfg)
{
	l->max_live = room_for(cfg);
	l->mhd_max = l->max_live + spare(l->max_live);
	l->body_max = cfg->max_body > BODY_BUDGET / BODY_BUDGET_BODIES ?
	    cfg->max_body * BODY_BUDGET_BODIES : BODY_BUDGET;
	atomic_init(&l->body_used, 0);
}

int
http_limits_take(struct http_limits *l, size_t n)
{
	if (atomic_fetch_add(&l->body_used, n) + n > l->body_max) {
		(void)atomic_fetch_sub(&l->body_used, n);
		return -1;
	}
	return 0;
}

void
http_limits_give(struct http_limits *l, size_t n)
{
	(void)atomic_fetch_sub(&l->body_used, n);
}
