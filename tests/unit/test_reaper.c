/* test_reaper.c - making room at max_live, on real sockets (socketpairs):
 * the connection that has waited longest for a request is shut down, never
 * a request under way or a parked one, never the newcomer; a kept-alive
 * connection waits from the end of its request; the deadlines themselves
 * are covered end to end (tests/e2e/test_flood.py). */
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "reaper.h"

#define N	7
#define LONG_MS	(3600 * 1000)

struct pair {
	int	 ours;		/* what the reaper tracks (the daemon's end) */
	int	 peer;		/* the client's end */
	struct reaper_conn *c;
};

/* 1 when the reaper shut our end down: the client's end reads EOF. */
static int
was_shut(const struct pair *p)
{
	char ch;
	ssize_t n;

	n = recv(p->peer, &ch, 1, MSG_DONTWAIT);
	return n == 0;
}

static int
open_pairs(struct pair *p, size_t n)
{
	int sv[2];
	size_t i;

	for (i = 0; i < n; i++) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
			return -1;
		p[i].ours = sv[0];
		p[i].peer = sv[1];
		p[i].c = NULL;
	}
	return 0;
}

static void
close_pairs(struct reaper *rp, struct pair *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		reaper_remove(rp, p[i].c);	/* before the close, as promised */
		(void)close(p[i].ours);
		(void)close(p[i].peer);
	}
}

static void
test_longest_waiting_makes_room(void)
{
	struct reaper *rp = NULL;
	struct pair p[N];
	size_t i;

	if (!CHECK(open_pairs(p, N) == 0) ||
	    !CHECK(reaper_start(LONG_MS, LONG_MS, 3, &rp) == 0))
		return;
	for (i = 0; i < 3; i++)
		p[i].c = reaper_add(rp, p[i].ours);
	CHECK(!was_shut(&p[0]) && !was_shut(&p[1]) && !was_shut(&p[2]));
	/* p0 is under way, p1 parked: neither may go; p2 waits */
	reaper_begin(rp, p[0].c);
	reaper_begin(rp, p[1].c);
	reaper_hold(rp, p[1].c);
	p[3].c = reaper_add(rp, p[3].ours);	/* 4 > 3: p2 goes */
	CHECK(was_shut(&p[2]));
	CHECK(!was_shut(&p[0]) && !was_shut(&p[1]) && !was_shut(&p[3]));
	/* nobody else waits: the newcomer is never the one to go, the cap is
	 * passed (libmicrohttpd's own limit, a little higher, holds) */
	reaper_begin(rp, p[3].c);
	p[4].c = reaper_add(rp, p[4].ours);
	CHECK(!was_shut(&p[3]) && !was_shut(&p[4]));
	/* p0's request ends: it waits from now, after p4; a newcomer makes
	 * two too many, so both go, the longest waiting first */
	reaper_idle(rp, p[0].c);
	p[5].c = reaper_add(rp, p[5].ours);
	CHECK(was_shut(&p[4]) && was_shut(&p[0]));
	CHECK(!was_shut(&p[1]) && !was_shut(&p[3]) && !was_shut(&p[5]));
	/* a request line sends a waiting connection to the back of the line:
	 * p3 (kept alive after p5 arrived) goes before p5 */
	reaper_idle(rp, p[3].c);
	reaper_request_line(rp, p[5].c);
	p[6].c = reaper_add(rp, p[6].ours);
	CHECK(was_shut(&p[3]));
	CHECK(!was_shut(&p[1]) && !was_shut(&p[5]) && !was_shut(&p[6]));
	close_pairs(rp, p, N);
	reaper_stop(rp);
}

static void
test_null_entries_are_ignored(void)
{
	struct reaper *rp = NULL;

	if (!CHECK(reaper_start(LONG_MS, LONG_MS, 1, &rp) == 0))
		return;
	reaper_request_line(rp, NULL);
	CHECK(reaper_begin(rp, NULL) == 0);
	reaper_hold(rp, NULL);
	reaper_restart(rp, NULL);
	CHECK(reaper_idle(rp, NULL) == 0);
	CHECK(reaper_remove(rp, NULL) == 0);
	reaper_stop(rp);
	reaper_stop(NULL);
}

/* What a stop needs to know of a connection (http.c's drain): whether a
 * request is its first, and whether it goes without having finished one. */
static void
test_first_request_and_unserved(void)
{
	struct reaper *rp = NULL;
	struct pair p[2];

	if (!CHECK(open_pairs(p, 2) == 0) ||
	    !CHECK(reaper_start(LONG_MS, LONG_MS, 10, &rp) == 0))
		return;
	p[0].c = reaper_add(rp, p[0].ours);
	p[1].c = reaper_add(rp, p[1].ours);
	CHECK(reaper_begin(rp, p[0].c) == 1);	/* its first request */
	CHECK(reaper_idle(rp, p[0].c) == 1);	/* its first finished */
	reaper_request_line(rp, p[0].c);
	CHECK(reaper_begin(rp, p[0].c) == 0);	/* kept alive: the second */
	CHECK(reaper_idle(rp, p[0].c) == 0);
	/* p1 began a request and went before it finished */
	CHECK(reaper_begin(rp, p[1].c) == 1);
	CHECK(reaper_remove(rp, p[1].c) == 1);
	p[1].c = NULL;
	CHECK(reaper_remove(rp, p[0].c) == 0);
	p[0].c = NULL;
	close_pairs(rp, p, 2);
	reaper_stop(rp);
}

int
main(void)
{
	RUN(test_longest_waiting_makes_room);
	RUN(test_null_entries_are_ignored);
	RUN(test_first_request_and_unserved);
	return check_finish("test_reaper");
}
