/* test_usock.c - the unix:PATH line protocol against a real listening
 * socket served by a thread: envelopes pipelined on one connection and
 * answered in order, OK with or without CR, OK <id> checked (a wrong id, or
 * an id answered twice, fails that envelope and leaves the ones after it
 * unanswered), other answers, EOF, silence past the deadline, a slow
 * sequential consumer that is never timed out, an over-long answer, no
 * consumer, a consumer that restarted while idle, cancellation, the
 * unsent envelopes dropped at a stop, and envelopes larger than the socket
 * takes in one write. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "clock.h"
#include "log.h"
#include "usock.h"

static char dir[] = "/tmp/cfhook-test-usock-XXXXXX";

enum mode {
	M_OK,		/* "OK\n" per line */
	M_OK_CR,	/* "OK\r\n" */
	M_OK_ID,	/* "OK <id>\n" */
	M_OK_ID_TWICE,	/* "OK <id>\n" twice for the first line */
	M_WRONG_ID,	/* "OK 999\n" */
	M_NO,		/* "NO\n" */
	M_ODD,		/* a line with control bytes and UTF-8 */
	M_CLOSE,	/* close without answering */
	M_SILENT,	/* read, never answer */
	M_SLOW,		/* one line at a time, "OK" after 100 ms each */
	M_LONG,		/* 5000 bytes without a newline */
	M_OK_HANGUP,	/* "OK\n", then close the idle connection */
	M_OK_4_HANGUP	/* "OK\n" to 4 lines of a connection, then close it */
};

struct server {
	char	 path[100];	/* fits sun_path */
	int	 lfd;
	int	 stop[2];
	enum mode mode;
	int	 accepts;
	int	 lines;
	int	 conn_lines;	/* on the connection now open */
	char	 got[8192];
	size_t	 got_len;
	pthread_t thread;
};

/* The "id" of the envelope line just received (the test lines start with
 * {"id":N). */
static long
line_id(const struct server *s)
{
	const char *p = s->got, *end = s->got + s->got_len - 1;
	const char *start = p;

	for (; p < end; p++) {
		if (*p == '\n')
			start = p + 1;
	}
	return strncmp(start, "{\"id\":", 6) == 0 ?
	    strtol(start + 6, NULL, 10) : -1;
}

static void
answer(struct server *s, int *conn)
{
	static char longer[5000];
	char line[64];
	int n = 0;

	s->lines++;
	switch (s->mode) {
	case M_OK:
	case M_OK_HANGUP:
	case M_OK_4_HANGUP:
	case M_SLOW:
		if (s->mode == M_SLOW)
			(void)usleep(100000);
		n = snprintf(line, sizeof(line), "OK\n");
		break;
	case M_OK_CR:
		n = snprintf(line, sizeof(line), "OK\r\n");
		break;
	case M_OK_ID:
	case M_OK_ID_TWICE:
		n = snprintf(line, sizeof(line), "OK %ld\n", line_id(s));
		if (s->mode == M_OK_ID_TWICE && s->lines == 1)
			n += snprintf(line + n, sizeof(line) - (size_t)n,
			    "OK %ld\n", line_id(s));
		break;
	case M_WRONG_ID:
		n = snprintf(line, sizeof(line), "OK 999\n");
		break;
	case M_NO:
		n = snprintf(line, sizeof(line), "NO\n");
		break;
	case M_ODD:
		n = snprintf(line, sizeof(line), "ERR\t\x01 caf\xc3\xa9 \xff\n");
		break;
	case M_LONG:
		memset(longer, 'x', sizeof(longer));
		(void)!write(*conn, longer, sizeof(longer));
		break;
	case M_SILENT:
	case M_CLOSE:
		break;
	}
	if (n > 0)
		(void)!write(*conn, line, (size_t)n);
	if (s->mode == M_CLOSE || s->mode == M_OK_HANGUP ||
	    (s->mode == M_OK_4_HANGUP && ++s->conn_lines == 4)) {
		(void)close(*conn);
		*conn = -1;
	}
}

/* Reads what came; answers once per complete line. */
static void
serve_read(struct server *s, int *conn)
{
	char buf[4096];
	ssize_t n = read(*conn, buf, sizeof(buf));
	ssize_t i;

	if (n <= 0) {
		(void)close(*conn);
		*conn = -1;
		return;
	}
	for (i = 0; i < n; i++) {
		if (s->got_len < sizeof(s->got))
			s->got[s->got_len++] = buf[i];
		if (buf[i] == '\n' && *conn >= 0)
			answer(s, conn);
	}
}

static void *
serve(void *arg)
{
	struct server *s = arg;
	int conn = -1;

	for (;;) {
		struct pollfd p[3] = { { s->stop[0], POLLIN, 0 },
		    { s->lfd, POLLIN, 0 }, { conn, POLLIN, 0 } };

		if (poll(p, conn >= 0 ? 3 : 2, -1) == -1)
			continue;
		if (p[0].revents != 0)
			break;
		if (p[1].revents != 0) {
			if (conn >= 0)
				(void)close(conn);
			conn = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
			s->conn_lines = 0;
			if (conn >= 0)
				s->accepts++;
		}
		if (conn >= 0 && p[2].revents != 0)
			serve_read(s, &conn);
	}
	if (conn >= 0)
		(void)close(conn);
	return NULL;
}

static int
server_start(struct server *s, const char *name, enum mode mode)
{
	struct sockaddr_un sa;

	memset(s, 0, sizeof(*s));
	s->mode = mode;
	(void)snprintf(s->path, sizeof(s->path), "%s/%s", dir, name);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	(void)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", s->path);
	s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->lfd == -1 || bind(s->lfd, (struct sockaddr *)&sa,
	    sizeof(sa)) == -1 || listen(s->lfd, 8) == -1 ||
	    pipe2(s->stop, O_CLOEXEC) == -1)
		return -1;
	return pthread_create(&s->thread, NULL, serve, s) == 0 ? 0 : -1;
}

/* Stops the thread; the socket file goes too (the consumer is gone). */
static void
server_stop(struct server *s)
{
	(void)!write(s->stop[1], "x", 1);
	(void)pthread_join(s->thread, NULL);
	(void)close(s->lfd);
	(void)close(s->stop[0]);
	(void)close(s->stop[1]);
	(void)unlink(s->path);
}

/* What came back, in the order reported. */
struct results {
	int	 n;
	int	 cookie[16];
	enum usock_result r[16];
	char	 reason[16][320];
};

static void
record(void *arg, void *cookie, enum usock_result r, const char *reason)
{
	struct results *res = arg;

	if (res->n >= 16)
		return;
	res->cookie[res->n] = (int)(intptr_t)cookie;
	res->r[res->n] = r;
	(void)snprintf(res->reason[res->n], sizeof(res->reason[0]), "%s",
	    reason != NULL ? reason : "");
	res->n++;
}

/* Envelope {"id":ID} with cookie ID. */
static void
push(struct usock *u, long id)
{
	char *line = malloc(32);
	int n;

	if (line == NULL)
		return;
	n = snprintf(line, 32, "{\"id\":%ld}", id);
	line[n] = '\n';		/* the newline after len bytes */
	CHECK_INT(usock_push(u, line, (size_t)n, id, (void *)(intptr_t)id), 0);
}

/* Runs the connection until nothing is pending or max_ms passed. */
static void
run(struct usock *u, int cancel_fd, int max_ms, struct results *res)
{
	int64_t end = clock_mono_ms() + max_ms;

	while (usock_pending(u) > 0 && clock_mono_ms() < end)
		usock_run(u, -1, cancel_fd, 50, record, NULL, res);
}

static int
all(const struct results *res, int n, enum usock_result want)
{
	int i;

	if (res->n != n)
		return 0;
	for (i = 0; i < n; i++) {
		if (res->r[i] != want || res->cookie[i] != i + 1)
			return 0;
	}
	return 1;
}

/* Five envelopes, three at a time ahead of their answers, one connection;
 * reported in order. */
static void
test_pipelined_on_one_connection(void)
{
	struct results res = { 0 };
	struct server s;
	struct usock *u;
	int i;

	if (!CHECK(server_start(&s, "ok.sock", M_OK) == 0))
		return;
	u = usock_new(s.path, 3, 2000);
	for (i = 1; i <= 5; i++)
		push(u, i);
	run(u, -1, 5000, &res);
	CHECK(all(&res, 5, USOCK_OK));
	/* the connection is kept for more */
	push(u, 6);
	run(u, -1, 5000, &res);
	CHECK(res.n == 6 && res.r[5] == USOCK_OK);
	usock_free(u, record, &res);
	server_stop(&s);
	CHECK_INT(s.accepts, 1);
	CHECK_INT(s.got_len, 6 * 9);
	CHECK(memcmp(s.got, "{\"id\":1}\n{\"id\":2}\n{\"id\":3}\n", 27) == 0);
}

static void
test_ok_with_cr_and_with_id(void)
{
	struct results res = { 0 };
	struct server s;
	struct usock *u;
	int i;

	if (!CHECK(server_start(&s, "okcr.sock", M_OK_CR) == 0))
		return;
	u = usock_new(s.path, 4, 2000);
	push(u, 1);
	run(u, -1, 5000, &res);
	CHECK(all(&res, 1, USOCK_OK));
	usock_free(u, record, &res);
	server_stop(&s);
	memset(&res, 0, sizeof(res));
	if (!CHECK(server_start(&s, "okid.sock", M_OK_ID) == 0))
		return;
	u = usock_new(s.path, 4, 2000);
	for (i = 1; i <= 6; i++)
		push(u, i);
	run(u, -1, 5000, &res);
	CHECK(all(&res, 6, USOCK_OK));
	usock_free(u, record, &res);
	server_stop(&s);
}

/* A wrong id fails its envelope and closes the connection; the envelopes
 * sent after it are unanswered (to be sent again), never delivered. */
static void
test_wrong_id(void)
{
	struct results res = { 0 };
	struct server s;
	struct usock *u;

	if (!CHECK(server_start(&s, "wrong.sock", M_WRONG_ID) == 0))
		return;
	u = usock_new(s.path, 3, 2000);
	push(u, 1);
	push(u, 2);
	push(u, 3);
	run(u, -1, 5000, &res);
	CHECK_INT(res.n, 3);
	CHECK_INT(res.r[0], USOCK_FAILED);
	CHECK_STR(res.reason[0], "consumer answered 'OK 999' to event 1");
	CHECK_INT(res.r[1], USOCK_UNANSWERED);
	CHECK_INT(res.r[2], USOCK_UNANSWERED);
	CHECK_STR(res.reason[1], "not answered: the connection was closed "
	    "after event 1 failed");
	usock_free(u, record, &res);
	server_stop(&s);
}

/* A consumer that answers one envelope twice: with ids, the second answer
 * cannot pass for the next envelope's. */
static void
test_an_answer_twice_with_ids(void)
{
	struct results res = { 0 };
	struct server s;
	struct usock *u;

	if (!CHECK(server_start(&s, "twice.sock", M_OK_ID_TWICE) == 0))
		return;
	u = usock_new(s.path, 3, 2000);
	push(u, 1);
	push(u, 2);
	push(u, 3);
	run(u, -1, 5000, &res);
	CHECK_INT(res.n, 3);
	CHECK_INT(res.r[0], USOCK_OK);
	CHECK_INT(res.r[1], USOCK_FAILED);
	CHECK_STR(res.reason[1], "consumer answered 'OK 1' to event 2");
	CHECK_INT(res.r[2], USOCK_UNANSWERED);
	usock_free(u, record, &res);
	server_stop(&s);
}

/* Another answer fails and drops the connection: the next envelope
 * reconnects. The answer is quoted in the reason, escaped. */
static void
test_other_answer(void)
{
	struct results res = { 0 };
	struct server s;
	struct usock *u;

	if (!CHECK(server_start(&s, "no.sock", M_NO) == 0))
		return;
	u = usock_new(s.path, 4, 2000);
	push(u, 1);
	run(u, -1, 5000, &res);
	push(u, 2);
	run(u, -1, 5000, &res);
	CHECK_INT(res.n, 2);
	CHECK_INT(res.r[0], USOCK_FAILED);
	CHECK_STR(res.reason[0], "consumer answered 'NO'");
	CHECK_INT(res.r[1], USOCK_FAILED);
	usock_free(u, record, &res);
	server_stop(&s);
	CHECK_INT(s.accepts, 2);
	memset(&res, 0, sizeof(res));
	if (!CHECK(server_start(&s, "odd.sock", M_ODD) == 0))
		return;
	u = usock_new(s.path, 4, 2000);
	push(u, 1);
	run(u, -1, 5000, &res);
	CHECK_STR(res.reason[0], "consumer answered 'ERR\\x09\\x01 caf\xc3\xa9 "
	    "\\xff'");
	usock_free(u, record, &res);
	server_stop(&s);
}

static void
test_eof(void)
{
	struct results res = { 0 };
	struct server s;
	struct usock *u;

	if (!CHECK(server_start(&s, "eof.sock", M_CLOSE) == 0))
		return;
	u = usock_new(s.path, 2, 2000);
	push(u, 1);
	push(u, 2);
	run(u, -1, 5000, &res);
	CHECK(res.n >= 1 && res.r[0] == USOCK_FAILED);
	CHECK_STR(res.reason[0], "consumer closed the connection");
	usock_free(u, record, &res);
	server_stop(&s);
	/* The second is reported too, never lost. Sent behind the first, it
	 * is cut off with it; written only after the EOF was read, it went
	 * on a new connection, which the server closed as well. */
	CHECK_INT(res.n, 2);
	if (s.accepts == 1) {
		CHECK_INT(res.r[1], USOCK_UNANSWERED);
	} else {
		CHECK_INT(s.accepts, 2);
		CHECK_INT(res.r[1], USOCK_FAILED);
		CHECK_STR(res.reason[1], "consumer closed the connection");
	}
}

static void
test_silence_times_out(void)
{
	struct results res = { 0 };
	struct server s;
	struct usock *u;
	int64_t t0 = clock_mono_ms(), took;

	if (!CHECK(server_start(&s, "silent.sock", M_SILENT) == 0))
		return;
	u = usock_new(s.path, 4, 300);
	push(u, 1);
	push(u, 2);
	run(u, -1, 5000, &res);
	took = clock_mono_ms() - t0;
	CHECK_INT(res.n, 2);
	CHECK_INT(res.r[0], USOCK_TIMEOUT);
	CHECK_STR(res.reason[0], "timeout after 300 ms");
	CHECK_INT(res.r[1], USOCK_UNANSWERED);
	CHECK(took >= 300 && took < 3000);
	usock_free(u, record, &res);
	server_stop(&s);
}

/* A consumer that takes each line in turn and answers it 100 ms later: six
 * envelopes (600 ms) four at a time ahead, with a 300 ms timeout: each
 * one's time starts when the consumer could start on it, so none times
 * out. */
static void
test_slow_sequential_consumer_is_not_timed_out(void)
{
	struct results res = { 0 };
	struct server s;
	struct usock *u;
	int i;

	if (!CHECK(server_start(&s, "slow.sock", M_SLOW) == 0))
		return;
	u = usock_new(s.path, 4, 300);
	for (i = 1; i <= 6; i++)
		push(u, i);
	run(u, -1, 10000, &res);
	CHECK(all(&res, 6, USOCK_OK));
	usock_free(u, record, &res);
	server_stop(&s);
	CHECK_INT(s.accepts, 1);
}

static void
test_long_answer_bounded(void)
{
	struct results res = { 0 };
	struct server s;
	struct usock *u;

	if (!CHECK(server_start(&s, "long.sock", M_LONG) == 0))
		return;
	u = usock_new(s.path, 4, 2000);
	push(u, 1);
	run(u, -1, 5000, &res);
	CHECK_INT(res.r[0], USOCK_FAILED);
	CHECK_STR(res.reason[0], "answer longer than 4096 bytes");
	usock_free(u, record, &res);
	server_stop(&s);
}

/* No listener: every envelope queued fails (each is an attempt). */
static void
test_no_consumer(void)
{
	struct results res = { 0 };
	struct usock *u;
	char path[256];

	(void)snprintf(path, sizeof(path), "%s/absent.sock", dir);
	u = usock_new(path, 4, 2000);
	push(u, 1);
	push(u, 2);
	run(u, -1, 5000, &res);
	CHECK(all(&res, 2, USOCK_FAILED));
	CHECK_STR(res.reason[0], "connect: No such file or directory");
	usock_free(u, record, &res);
}

/* The consumer restarted between two envelopes: the stale connection is
 * noticed and the envelope goes out on a new one, nothing failed. */
static void
test_consumer_restarted_while_idle(void)
{
	struct results res = { 0 };
	struct server s, s2;
	struct usock *u;

	if (!CHECK(server_start(&s, "restart.sock", M_OK_HANGUP) == 0))
		return;
	u = usock_new(s.path, 4, 2000);
	push(u, 1);
	run(u, -1, 5000, &res);
	server_stop(&s);
	usock_run(u, -1, -1, 100, record, NULL, &res);	/* sees the EOF */
	if (!CHECK(server_start(&s2, "restart.sock", M_OK) == 0)) {
		usock_free(u, record, &res);
		return;
	}
	push(u, 2);
	run(u, -1, 5000, &res);
	CHECK(all(&res, 2, USOCK_OK));
	usock_free(u, record, &res);
	server_stop(&s2);
	CHECK_INT(s2.accepts, 1);
}

/* A consumer that answers every envelope it was sent and then closes (a
 * restart between envelopes): nothing fails, the next envelopes go on a
 * new connection. Here the close is not read before the next envelopes
 * are written (usock_run() sends first), so the write meets the closed
 * connection: that is not an envelope of this connection failing. */
static void
test_consumer_closed_after_answering(void)
{
	struct results res = { 0 };
	struct server s;
	struct usock *u;
	int i;

	if (!CHECK(server_start(&s, "answered.sock", M_OK_4_HANGUP) == 0))
		return;
	u = usock_new(s.path, 4, 2000);
	for (i = 1; i <= 4; i++)
		push(u, i);
	run(u, -1, 5000, &res);
	(void)usleep(50000);		/* its close is surely done */
	for (i = 5; i <= 8; i++)
		push(u, i);
	run(u, -1, 5000, &res);
	CHECK(all(&res, 8, USOCK_OK));
	for (i = 0; i < res.n; i++) {
		if (res.r[i] != USOCK_OK)
			fprintf(stderr, "  envelope %d: %s\n", res.cookie[i],
			    res.reason[i]);
	}
	usock_free(u, record, &res);
	server_stop(&s);
	CHECK_INT(s.accepts, 2);
	CHECK_INT(s.lines, 8);
}

static void
test_cancel(void)
{
	struct results res = { 0 };
	struct server s;
	struct usock *u;
	uint64_t one = 1;
	int efd = eventfd(0, EFD_CLOEXEC);
	int64_t t0;

	if (!CHECK(server_start(&s, "cancel.sock", M_SILENT) == 0))
		return;
	u = usock_new(s.path, 4, 60000);
	push(u, 1);
	push(u, 2);
	usock_run(u, -1, -1, 50, record, NULL, &res);	/* both sent */
	CHECK(write(efd, &one, sizeof(one)) == sizeof(one));
	t0 = clock_mono_ms();
	run(u, efd, 5000, &res);
	CHECK(all(&res, 2, USOCK_CANCELLED));
	CHECK_STR(res.reason[0], "interrupted by shutdown");
	CHECK(clock_mono_ms() - t0 < 1000);
	usock_free(u, record, &res);
	server_stop(&s);
	(void)close(efd);
}

/* At a stop the envelopes not yet sent are dropped (no delivery starts
 * after it); the one sent still waits for its answer. */
static void
test_drop_unsent(void)
{
	struct results res = { 0 };
	struct server s;
	struct usock *u;

	if (!CHECK(server_start(&s, "drop.sock", M_SILENT) == 0))
		return;
	u = usock_new(s.path, 1, 60000);
	push(u, 1);
	push(u, 2);
	push(u, 3);
	usock_run(u, -1, -1, 50, record, NULL, &res);
	usock_drop_unsent(u, record, &res);
	CHECK_INT(res.n, 2);
	CHECK(res.cookie[0] == 2 && res.r[0] == USOCK_UNSENT);
	CHECK(res.cookie[1] == 3 && res.r[1] == USOCK_UNSENT);
	CHECK_INT(usock_pending(u), 1);
	push(u, 4);		/* still usable */
	CHECK_INT(usock_pending(u), 2);
	usock_free(u, record, &res);
	CHECK_INT(res.n, 4);
	CHECK(res.cookie[2] == 1 && res.r[2] == USOCK_CANCELLED);
	CHECK(res.cookie[3] == 4 && res.r[3] == USOCK_UNSENT);
	server_stop(&s);
	CHECK_INT(s.lines, 1);
}

/* What came back (first: record() takes the same argument) and the
 * envelopes start() was told of, by cookie, in order. */
struct with_starts {
	struct results res;
	int	 n;
	int	 cookie[16];
	int	 untold;	/* told "did not start after all" */
};

static void
started(void *arg, void *cookie, int on)
{
	struct with_starts *w = arg;

	if (on && w->n < 16)
		w->cookie[w->n++] = (int)(intptr_t)cookie;
	if (!on)
		w->untold++;
}

/* start() hears of an envelope once, before its first byte goes out, and
 * never of one that was not sent: with depth 2 and a consumer that does not
 * answer, envelopes 1 and 2 only, however often usock_run() is called. */
static void
test_start_told_once_per_envelope_sent(void)
{
	struct with_starts w = { { 0 }, 0, { 0 }, 0 };
	struct server s;
	struct usock *u;
	int i;

	if (!CHECK(server_start(&s, "start.sock", M_SILENT) == 0))
		return;
	u = usock_new(s.path, 2, 60000);
	for (i = 1; i <= 4; i++)
		push(u, i);
	for (i = 0; i < 5; i++)
		usock_run(u, -1, -1, 20, record, started, &w);
	CHECK_INT(w.res.n, 0);
	CHECK_INT(w.n, 2);
	CHECK_INT(w.untold, 0);		/* whole writes: nothing taken back */
	CHECK(w.cookie[0] == 1 && w.cookie[1] == 2);
	usock_drop_unsent(u, record, &w.res);
	CHECK_INT(w.res.n, 2);	/* 3 and 4, unsent */
	usock_free(u, record, &w.res);
	CHECK_INT(w.n, 2);
	server_stop(&s);
	CHECK_INT(s.lines, 2);
}

/* Envelopes larger than the socket takes at once: sendmsg stops part way
 * through one, and the next write goes on from that byte. A consumer that
 * starts reading late gets every line whole and in order. */
#define BIG_N		6
#define BIG_LEN		(300 * 1024)

static char *
big_line(int id)
{
	char *line = malloc(BIG_LEN + 1);
	int n;

	if (line == NULL)
		return NULL;
	n = snprintf(line, BIG_LEN, "{\"id\":%d,\"pad\":\"", id);
	memset(line + n, 'a' + id, BIG_LEN - (size_t)n - 2);
	memcpy(line + BIG_LEN - 2, "\"}", 2);
	line[BIG_LEN] = '\n';
	return line;
}

struct big_server {
	int	 lfd;
	int	 whole;		/* lines equal to big_line(k), k in order */
	int	 bad;
	pthread_t thread;
};

static void *
big_serve(void *arg)
{
	struct big_server *s = arg;
	char *got = malloc(BIG_LEN + 1), *want = NULL, buf[65536];
	size_t len = 0;
	ssize_t n, i;
	int conn;

	conn = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
	(void)usleep(100000);		/* let the socket fill */
	while (got != NULL && conn >= 0 && s->whole + s->bad < BIG_N &&
	    (n = read(conn, buf, sizeof(buf))) > 0) {
		for (i = 0; i < n; i++) {
			if (len <= BIG_LEN)
				got[len++] = buf[i];
			if (buf[i] != '\n')
				continue;
			want = big_line(s->whole + s->bad + 1);
			if (want != NULL && len == BIG_LEN + 1 &&
			    memcmp(got, want, len) == 0)
				s->whole++;
			else
				s->bad++;
			free(want);
			len = 0;
			(void)!write(conn, "OK\n", 3);
		}
	}
	free(got);
	if (conn >= 0)
		(void)close(conn);
	return NULL;
}

/* start() as the marks hear it: told 1 then 0 then 1 again is fine, twice
 * in a row is not; res first, as record() takes the same argument. */
struct big_starts {
	struct results res;
	int	 on[BIG_N + 1];
	int	 untold;
	int	 bad;
};

static void
big_start(void *arg, void *cookie, int on)
{
	struct big_starts *b = arg;
	int id = (int)(intptr_t)cookie;

	if (id < 1 || id > BIG_N || b->on[id] == on) {
		b->bad++;
		return;
	}
	b->on[id] = on;
	b->untold += !on;
}

static void
test_partial_writes_keep_envelopes_whole(void)
{
	struct big_server s = { -1, 0, 0, 0 };
	struct big_starts b = { { 0 }, { 0 }, 0, 0 };
	int64_t end;
	struct sockaddr_un sa;
	struct usock *u;
	char *line;
	int i;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	(void)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/big.sock", dir);
	s.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!CHECK(s.lfd >= 0 && bind(s.lfd, (struct sockaddr *)&sa,
	    sizeof(sa)) == 0 && listen(s.lfd, 1) == 0) ||
	    !CHECK(pthread_create(&s.thread, NULL, big_serve, &s) == 0)) {
		if (s.lfd >= 0)
			(void)close(s.lfd);
		return;
	}
	u = usock_new(sa.sun_path, 4, 10000);
	for (i = 1; i <= BIG_N; i++) {
		line = big_line(i);
		if (line != NULL)
			CHECK_INT(usock_push(u, line, BIG_LEN, i,
			    (void *)(intptr_t)i), 0);
	}
	end = clock_mono_ms() + 10000;
	while (usock_pending(u) > 0 && clock_mono_ms() < end)
		usock_run(u, -1, -1, 50, record, big_start, &b);
	CHECK(all(&b.res, BIG_N, USOCK_OK));
	usock_free(u, record, &b.res);
	(void)pthread_join(s.thread, NULL);
	CHECK_INT(s.whole, BIG_N);
	CHECK_INT(s.bad, 0);
	/* The socket took part of a batch: those it took none of were taken
	 * back, told again when they went, and each ended started. */
	CHECK(b.untold > 0);
	CHECK_INT(b.bad, 0);
	for (i = 1; i <= BIG_N; i++)
		CHECK_INT(b.on[i], 1);
	(void)close(s.lfd);
	(void)unlink(sa.sun_path);
}

int
main(void)
{
	int rc;

	log_init(LOG_LVL_ERROR);
	/* the test consumers write to connections usock may have closed */
	(void)signal(SIGPIPE, SIG_IGN);
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_pipelined_on_one_connection);
	RUN(test_ok_with_cr_and_with_id);
	RUN(test_wrong_id);
	RUN(test_an_answer_twice_with_ids);
	RUN(test_other_answer);
	RUN(test_eof);
	RUN(test_silence_times_out);
	RUN(test_slow_sequential_consumer_is_not_timed_out);
	RUN(test_long_answer_bounded);
	RUN(test_no_consumer);
	RUN(test_consumer_restarted_while_idle);
	RUN(test_consumer_closed_after_answering);
	RUN(test_cancel);
	RUN(test_drop_unsent);
	RUN(test_start_told_once_per_envelope_sent);
	RUN(test_partial_writes_keep_envelopes_whole);
	rc = check_finish("test_usock");
	(void)rmdir(dir);
	return rc;
}
