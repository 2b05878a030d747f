/* http_accept.c - accept connections and hand them to libmicrohttpd (see
 * http_accept.h).
 *
 * One thread waits on the listening socket and a stop pipe. When the
 * socket is readable it accepts until the queue is empty and gives each
 * connection to MHD_add_connection(), which picks a worker thread by the
 * descriptor's number (it closes the descriptor itself when it cannot take
 * it), then waits for the worker to report it STARTED before it accepts
 * the next: the reaper ranks connections by when they started to wait, so
 * they must start in the order they were accepted, whichever worker each
 * went to. One never reported started (libmicrohttpd out of memory drops
 * it without a word) is forgotten after a second; a live one starts within
 * microseconds.
 *
 * The cap: connections handed over and not yet reported closed are
 * counted; at `max` the thread waits for a CLOSED report instead of on the
 * socket. Reports wake the thread through a second pipe, written only
 * when the thread has said it waits.
 *
 * Out of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM, or any
 * error not about one connection) the socket stays readable, so the thread
 * waits on the stop pipe alone for a short while before it tries again,
 * with one warning per episode; the kernel keeps the connections queued
 * meanwhile.
 *
 * Must not: touch a connection after handing it over (libmicrohttpd owns
 * and closes it), close the listening socket (the caller's), take signals
 * (they are the main thread's), or block a notification (the room pipe is
 * non-blocking, and written only when the thread waits). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "http_accept.h"
#include "log.h"
#include "prio.h"
#include "thread.h"

/* Connections accepted in one go before the stop pipe is looked at. */
#define ACCEPT_BURST		64
/* Out of descriptors or memory: how long to wait before trying again. */
#define STARVED_RETRY_MS	100
/* How long a connection handed over may take to be reported started. */
#define START_MS		1000

enum state {
	ACCEPTING,	/* waiting on the listening socket */
	FULL,		/* at the cap: waiting for a connection to close */
	STARVED		/* out of descriptors or memory: waiting a while */
};

struct http_accept {
	int	 listen_fd;
	unsigned max;
	int	 stop[2];		/* pipe: a byte ends the thread */
	int	 room[2];		/* pipe: a report came in */
	struct MHD_Daemon *mhd;
	pthread_t thread;
	int	 running;		/* the thread is to be joined */
	/* The thread's own. */
	long long added;		/* handed over */
	int	 starved_said;		/* the warning of this episode is out */
	/* From libmicrohttpd's threads. */
	atomic_llong started, closed;
	atomic_int waiting;		/* the thread waits for a report */
};

static long long
outstanding(struct http_accept *a)
{
	long long started = atomic_load(&a->started);

	/* One given up on by wait_started() may have started after all. */
	if (started > a->added)
		a->added = started;
	return a->added - atomic_load(&a->closed);
}

/* At the cap? Before saying yes, ask to be told of the next report, and
 * count again: a close in between would otherwise go unannounced. */
static int
at_cap(struct http_accept *a)
{
	if (outstanding(a) < (long long)a->max)
		return 0;
	atomic_store(&a->waiting, 1);
	if (outstanding(a) < (long long)a->max) {
		atomic_store(&a->waiting, 0);
		return 0;
	}
	return 1;
}

static void
drain(int fd)
{
	char b[64];

	while (read(fd, b, sizeof(b)) > 0)
		;
}

/* Wait until every connection handed over is reported started, or
 * START_MS, or a stop. Returns -1 on a stop. */
static int
wait_started(struct http_accept *a)
{
	struct pollfd pfd[2] = {
		{ a->stop[0], POLLIN, 0 }, { a->room[0], POLLIN, 0 }
	};
	int64_t until = clock_mono_ms() + START_MS, left;

	for (;;) {
		atomic_store(&a->waiting, 1);
		if (atomic_load(&a->started) >= a->added) {
			atomic_store(&a->waiting, 0);
			return 0;
		}
		left = until - clock_mono_ms();
		if (left <= 0)
			break;
		if (poll(pfd, 2, (int)left) > 0 && pfd[0].revents != 0)
			return -1;
		drain(a->room[0]);
	}
	atomic_store(&a->waiting, 0);
	log_debug("http: a connection handed over was never started");
	a->added = atomic_load(&a->started);
	return 0;
}

/* An accept error that is about one connection only: take the next. */
static int
is_passing(int err)
{
	return err == ECONNABORTED || err == EINTR || err == EPROTO ||
	    err == EPERM;
}

/* Accept what is queued, up to ACCEPT_BURST or the cap. Returns the state
 * to wait in, or -1 on a stop. */
static int
accept_burst(struct http_accept *a)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, i;

	for (i = 0; i < ACCEPT_BURST; i++) {
		if (at_cap(a))
			return FULL;
		len = sizeof(ss);
		fd = accept4(a->listen_fd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (fd == -1 && is_passing(errno))
			continue;
		if (fd == -1) {
			/* EMFILE, ENFILE, ENOBUFS, ENOMEM, or worse: the
			 * socket stays readable, so back off rather than
			 * spin. */
			if (!a->starved_said)
				log_warning("http: cannot accept connections "
				    "now (%s), retrying", strerror(errno));
			a->starved_said = 1;
			return STARVED;
		}
		a->starved_said = 0;
		/* On MHD_NO it has closed fd (and logged at debug). */
		if (MHD_add_connection(a->mhd, fd, (struct sockaddr *)&ss,
		    len) != MHD_YES)
			continue;
		a->added++;
		if (wait_started(a) == -1)
			return -1;
	}
	return ACCEPTING;
}

static void *
accept_main(void *arg)
{
	static const int wait_ms[] = {
		[ACCEPTING] = -1, [FULL] = -1,
		[STARVED] = STARVED_RETRY_MS
	};
	struct http_accept *a = arg;
	struct pollfd pfd[2];
	int st = ACCEPTING, n;

	prio_intake_thread();	/* intake first (prio.h) */
	pfd[0].fd = a->stop[0];
	pfd[0].events = pfd[1].events = POLLIN;
	for (;;) {
		pfd[1].fd = st == FULL ? a->room[0] : a->listen_fd;
		pfd[0].revents = pfd[1].revents = 0;
		n = poll(pfd, st == STARVED ? 1 : 2, wait_ms[st]);
		if (n == -1 && errno != EINTR) {
			log_error("http: accepting connections: poll: %s",
			    strerror(errno));
			break;
		}
		if (pfd[0].revents != 0)
			break;		/* stop */
		if (st == FULL)
			drain(a->room[0]);
		st = accept_burst(a);
		if (st == -1)
			break;
	}
	return NULL;
}

static void
close_pipe(int p[2])
{
	if (p[0] >= 0)
		(void)close(p[0]);
	if (p[1] >= 0)
		(void)close(p[1]);
}

int
http_accept_new(int listen_fd, unsigned max, struct http_accept **ret)
{
	struct http_accept *a;
	int flags;

	a = calloc(1, sizeof(*a));
	if (a == NULL) {
		log_error("http: out of memory");
		return -1;
	}
	a->listen_fd = listen_fd;
	a->max = max > 0 ? max : 1;
	a->stop[0] = a->stop[1] = a->room[0] = a->room[1] = -1;
	atomic_init(&a->started, 0);
	atomic_init(&a->closed, 0);
	atomic_init(&a->waiting, 0);
	flags = fcntl(listen_fd, F_GETFL);
	if (flags == -1 || fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK) ==
	    -1 || pipe2(a->stop, O_CLOEXEC) == -1 ||
	    pipe2(a->room, O_CLOEXEC | O_NONBLOCK) == -1) {
		log_error("http: cannot set up accepting: %s",
		    strerror(errno));
		http_accept_free(a);
		return -1;
	}
	*ret = a;
	return 0;
}

int
http_accept_run(struct http_accept *a, struct MHD_Daemon *mhd)
{
	int err;

	a->mhd = mhd;
	err = thread_start(&a->thread, accept_main, a, "http-accept");
	if (err != 0) {
		log_error("http: cannot start the accepting thread: %s",
		    strerror(err));
		return -1;
	}
	a->running = 1;
	return 0;
}

/* Wake the thread if it said it waits for a report. */
static void
report(struct http_accept *a)
{
	if (!atomic_exchange(&a->waiting, 0))
		return;
	if (write(a->room[1], "x", 1) == -1) {
		/* full (EAGAIN): it already holds a wake-up */
	}
}

void
http_accept_started(struct http_accept *a)
{
	(void)atomic_fetch_add(&a->started, 1);
	report(a);
}

void
http_accept_closed(struct http_accept *a)
{
	(void)atomic_fetch_add(&a->closed, 1);
	report(a);
}

void
http_accept_stop(struct http_accept *a)
{
	if (a == NULL || !a->running)
		return;
	/* One byte into an empty pipe: it cannot be full. */
	while (write(a->stop[1], "x", 1) == -1 && errno == EINTR)
		;
	(void)pthread_join(a->thread, NULL);
	a->running = 0;
}

unsigned
http_accept_unstarted(struct http_accept *a)
{
	long long started;

	if (a == NULL)
		return 0;
	started = atomic_load(&a->started);
	return a->added > started ? (unsigned)(a->added - started) : 0;
}

void
http_accept_free(struct http_accept *a)
{
	if (a == NULL)
		return;
	http_accept_stop(a);
	close_pipe(a->stop);
	close_pipe(a->room);
	free(a);
}
