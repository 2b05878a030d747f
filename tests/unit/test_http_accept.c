/* test_http_accept.c - the acceptor with a real libmicrohttpd and real TCP
 * connections on 127.0.0.1: connections are spread over the worker
 * threads, the cap holds (the rest wait in the kernel's queue until one
 * closes), a connection whose start is never reported does not hold a
 * place for ever, and nothing is handed over after a stop. (libmicrohttpd's
 * own connection limit is never reached here: 0.9.75 drops a connection
 * over it after MHD_add_connection() said yes, and its worker then hangs
 * in MHD_stop_daemon().) */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "check.h"
#include "http_accept.h"

#define CLIENTS		16
#define WAIT_MS		5000	/* for what must happen */
#define QUIET_MS	300	/* for what must not */

/* What libmicrohttpd's notifications reported. */
struct seen {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int	 started, closed;
	pthread_t threads[CLIENTS * 2];
	int	 fds[CLIENTS * 2];	/* in the order they started */
	struct http_accept *a;
	int	 hide_first;	/* leave the first connection unreported */
};

static enum MHD_Result
answer(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *data,
    size_t *data_size, void **con_cls)
{
	static char ok[] = "ok";
	struct MHD_Response *r;
	enum MHD_Result ret;

	(void)cls, (void)url, (void)method, (void)version, (void)data;
	(void)data_size, (void)con_cls;
	r = MHD_create_response_from_buffer(2, ok, MHD_RESPMEM_PERSISTENT);
	ret = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return ret;
}

static void
notified(void *cls, struct MHD_Connection *c, void **ctx,
    enum MHD_ConnectionNotificationCode code)
{
	struct seen *s = cls;

	pthread_mutex_lock(&s->mu);
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		if (s->started < CLIENTS * 2) {
			s->threads[s->started] = pthread_self();
			s->fds[s->started] = MHD_get_connection_info(c,
			    MHD_CONNECTION_INFO_CONNECTION_FD)->connect_fd;
		}
		*ctx = s->hide_first && s->started == 0 ? s : NULL;
		s->started++;
		if (*ctx == NULL)
			http_accept_started(s->a);
	} else {
		s->closed++;
		if (*ctx == NULL)
			http_accept_closed(s->a);
	}
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* Wait until *n reaches want or ms pass; the value then. */
static int
wait_count(struct seen *s, const int *n, int want, int ms)
{
	struct timespec ts;
	int v;

	(void)clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&s->mu);
	while (*n < want && pthread_cond_timedwait(&s->cv, &s->mu, &ts) !=
	    ETIMEDOUT)
		;
	v = *n;
	pthread_mutex_unlock(&s->mu);
	return v;
}

static int
listener(struct sockaddr_in *sin)
{
	socklen_t len = sizeof(*sin);
	int fd;

	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1 || bind(fd, (struct sockaddr *)sin, sizeof(*sin)) == -1 ||
	    listen(fd, 64) == -1 ||
	    getsockname(fd, (struct sockaddr *)sin, &len) == -1)
		return -1;
	return fd;
}

static int
client(const struct sockaddr_in *sin)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd != -1 &&
	    connect(fd, (const struct sockaddr *)sin, sizeof(*sin)) == -1) {
		(void)close(fd);
		fd = -1;
	}
	return fd;
}

/* Did the server close this client's connection within ms? */
static int
closed_by_server(int fd, int ms)
{
	struct pollfd p = { fd, POLLIN, 0 };
	char ch;

	return poll(&p, 1, ms) == 1 && recv(fd, &ch, 1, 0) == 0;
}

static struct MHD_Daemon *
daemon_for(struct seen *s, unsigned threads, unsigned limit)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
	    MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC;

	(void)pthread_mutex_init(&s->mu, NULL);
	(void)pthread_cond_init(&s->cv, NULL);
	return MHD_start_daemon(flags, 0, NULL, NULL, answer, NULL,
	    MHD_OPTION_THREAD_POOL_SIZE, threads,
	    MHD_OPTION_CONNECTION_LIMIT, limit,
	    MHD_OPTION_NOTIFY_CONNECTION, notified, s, MHD_OPTION_END);
}

static void
close_all(int *fd, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		if (fd[i] >= 0)
			(void)close(fd[i]);
	}
}

/* Connections queued before the acceptor runs get consecutive numbers,
 * as a burst does in the daemon: both workers must get some, and they
 * start in the order they were accepted (the reaper ranks by it). */
static void
test_spread_over_workers(void)
{
	struct seen s = { .started = 0 };
	struct sockaddr_in sin;
	struct MHD_Daemon *d;
	int lfd, fd[CLIENTS], i, other = 0;

	lfd = listener(&sin);
	d = daemon_for(&s, 2, 1000);
	if (!CHECK(lfd >= 0 && d != NULL) ||
	    !CHECK(http_accept_new(lfd, 100, &s.a) == 0))
		return;
	for (i = 0; i < CLIENTS; i++)
		fd[i] = client(&sin);
	CHECK(http_accept_run(s.a, d) == 0);
	CHECK_INT(wait_count(&s, &s.started, CLIENTS, WAIT_MS), CLIENTS);
	for (i = 1; i < CLIENTS; i++) {
		other += !pthread_equal(s.threads[i], s.threads[0]);
		CHECK(s.fds[i] > s.fds[i - 1]);
	}
	CHECK(other >= CLIENTS / 4 && other <= CLIENTS * 3 / 4);
	http_accept_stop(s.a);
	close_all(fd, CLIENTS);
	MHD_stop_daemon(d);
	http_accept_free(s.a);
	(void)close(lfd);
}

/* max 3: the fourth and fifth wait in the queue until one closes. */
static void
test_cap_holds_until_one_closes(void)
{
	struct seen s = { .started = 0 };
	struct sockaddr_in sin;
	struct MHD_Daemon *d;
	int lfd, fd[5], i;

	lfd = listener(&sin);
	d = daemon_for(&s, 2, 1000);
	if (!CHECK(lfd >= 0 && d != NULL) ||
	    !CHECK(http_accept_new(lfd, 3, &s.a) == 0) ||
	    !CHECK(http_accept_run(s.a, d) == 0))
		return;
	for (i = 0; i < 5; i++)
		fd[i] = client(&sin);
	CHECK_INT(wait_count(&s, &s.started, 3, WAIT_MS), 3);
	CHECK_INT(wait_count(&s, &s.started, 4, QUIET_MS), 3);
	for (i = 0; i < 5; i++)
		CHECK(!closed_by_server(fd[i], 0));
	(void)close(fd[0]);
	fd[0] = -1;
	CHECK_INT(wait_count(&s, &s.started, 4, WAIT_MS), 4);
	CHECK_INT(wait_count(&s, &s.started, 5, QUIET_MS), 4);
	(void)close(fd[1]);
	fd[1] = -1;
	CHECK_INT(wait_count(&s, &s.started, 5, WAIT_MS), 5);
	http_accept_stop(s.a);
	close_all(fd, 5);
	MHD_stop_daemon(d);
	http_accept_free(s.a);
	(void)close(lfd);
}

/* A connection handed over whose start is never reported (as when
 * libmicrohttpd drops one for want of memory) must hold up neither the
 * next ones nor a place under the cap for ever: the first start goes
 * unreported, so the second waits in the queue until the acceptor gives
 * up on the first, about a second later; then, with max 2, the second and
 * third are both taken. */
static void
test_unstarted_connection_frees_its_place(void)
{
	struct seen s = { .started = 0 };
	struct sockaddr_in sin;
	struct MHD_Daemon *d;
	int lfd, fd[3], i;

	lfd = listener(&sin);
	d = daemon_for(&s, 2, 1000);
	s.hide_first = 1;
	if (!CHECK(lfd >= 0 && d != NULL) ||
	    !CHECK(http_accept_new(lfd, 2, &s.a) == 0) ||
	    !CHECK(http_accept_run(s.a, d) == 0))
		return;
	for (i = 0; i < 3; i++)
		fd[i] = client(&sin);
	CHECK_INT(wait_count(&s, &s.started, 1, WAIT_MS), 1);
	CHECK_INT(wait_count(&s, &s.started, 2, QUIET_MS), 1);
	CHECK_INT(wait_count(&s, &s.started, 3, WAIT_MS), 3);
	for (i = 0; i < 3; i++)
		CHECK(!closed_by_server(fd[i], 0));
	http_accept_stop(s.a);
	close_all(fd, 3);
	MHD_stop_daemon(d);
	http_accept_free(s.a);
	(void)close(lfd);
}

static double
cpu_seconds(void)
{
	struct rusage ru;

	(void)getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Out of descriptors, a queued connection cannot be accepted: the acceptor
 * backs off instead of spinning on the readable socket, and takes the
 * connection once descriptors are there again. */
static void
test_out_of_descriptors_backs_off(void)
{
	struct seen s = { .started = 0 };
	struct sockaddr_in sin;
	struct MHD_Daemon *d;
	struct rlimit old, low;
	double cpu;
	int lfd, fd, lowest;

	lfd = listener(&sin);
	d = daemon_for(&s, 2, 1000);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!CHECK(lfd >= 0 && d != NULL && fd >= 0) ||
	    !CHECK(http_accept_new(lfd, 10, &s.a) == 0) ||
	    !CHECK(http_accept_run(s.a, d) == 0) ||
	    !CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0))
		return;
	/* every number below the lowest free one is taken: none is left */
	lowest = dup(0);
	(void)close(lowest);
	low = old;
	low.rlim_cur = (rlim_t)lowest;
	CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
	CHECK(connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	cpu = cpu_seconds();
	CHECK_INT(wait_count(&s, &s.started, 1, QUIET_MS), 0);
	CHECK(cpu_seconds() - cpu < QUIET_MS / 1000.0 / 3);
	CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
	CHECK_INT(wait_count(&s, &s.started, 1, WAIT_MS), 1);
	http_accept_stop(s.a);
	(void)close(fd);
	MHD_stop_daemon(d);
	http_accept_free(s.a);
	(void)close(lfd);
}

/* After a stop nothing is taken; the queue keeps the connection. */
static void
test_nothing_after_stop(void)
{
	struct seen s = { .started = 0 };
	struct sockaddr_in sin;
	struct MHD_Daemon *d;
	int lfd, fd[2];

	lfd = listener(&sin);
	d = daemon_for(&s, 2, 1000);
	if (!CHECK(lfd >= 0 && d != NULL) ||
	    !CHECK(http_accept_new(lfd, 10, &s.a) == 0) ||
	    !CHECK(http_accept_run(s.a, d) == 0))
		return;
	fd[0] = client(&sin);
	CHECK_INT(wait_count(&s, &s.started, 1, WAIT_MS), 1);
	http_accept_stop(s.a);
	http_accept_stop(s.a);		/* twice: harmless */
	fd[1] = client(&sin);
	CHECK(fd[1] >= 0);		/* queued by the kernel */
	CHECK_INT(wait_count(&s, &s.started, 2, QUIET_MS), 1);
	CHECK(!closed_by_server(fd[1], 0));
	close_all(fd, 2);
	MHD_stop_daemon(d);
	http_accept_free(s.a);
	http_accept_free(NULL);
	(void)close(lfd);
}

int
main(void)
{
	RUN(test_spread_over_workers);
	RUN(test_cap_holds_until_one_closes);
	RUN(test_unstarted_connection_frees_its_place);
	RUN(test_out_of_descriptors_backs_off);
	RUN(test_nothing_after_stop);
	return check_finish("test_http_accept");
}
