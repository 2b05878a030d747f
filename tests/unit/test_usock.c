/* test_usock.c - the unix:PATH line protocol against a real listening
 * socket served by a thread: OK (with or without CR), the connection kept
 * for the next envelope, other answers, EOF, silence past the deadline, an
 * over-long answer, no consumer, a consumer that restarted while idle, and
 * cancellation. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
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
	M_NO,		/* "NO\n" */
	M_CLOSE,	/* close without answering */
	M_SILENT,	/* read, never answer */
	M_LONG,		/* 5000 bytes without a newline */
	M_OK_HANGUP	/* "OK\n", then close the idle connection */
};

struct server {
	char	 path[100];	/* fits sun_path */
	int	 lfd;
	int	 stop[2];
	enum mode mode;
	int	 accepts;
	char	 got[8192];
	size_t	 got_len;
	pthread_t thread;
};

static void
answer(struct server *s, int *conn)
{
	static char longer[5000];

	switch (s->mode) {
	case M_OK:
	case M_OK_HANGUP:
		(void)!write(*conn, "OK\n", 3);
		break;
	case M_OK_CR:
		(void)!write(*conn, "OK\r\n", 4);
		break;
	case M_NO:
		(void)!write(*conn, "NO\n", 3);
		break;
	case M_LONG:
		memset(longer, 'x', sizeof(longer));
		(void)!write(*conn, longer, sizeof(longer));
		break;
	case M_SILENT:
		break;
	case M_CLOSE:
		break;
	}
	if (s->mode == M_CLOSE || s->mode == M_OK_HANGUP) {
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

static enum usock_result
send_line(struct usock *u, const char *line, int timeout_ms, int cancel_fd,
    char *reason, size_t n)
{
	reason[0] = '\0';
	return usock_deliver(u, line, strlen(line), timeout_ms, cancel_fd,
	    reason, n);
}

static void
test_ok_and_connection_kept(void)
{
	struct server s;
	struct usock *u;
	char reason[200];

	if (!CHECK(server_start(&s, "ok.sock", M_OK) == 0))
		return;
	u = usock_new(s.path);
	CHECK_INT(send_line(u, "{\"id\":1}", 2000, -1, reason, sizeof(reason)),
	    USOCK_OK);
	CHECK_INT(send_line(u, "{\"id\":2}", 2000, -1, reason, sizeof(reason)),
	    USOCK_OK);
	usock_free(u);
	server_stop(&s);
	CHECK_INT(s.accepts, 1);
	CHECK_INT(s.got_len, 18);
	CHECK(memcmp(s.got, "{\"id\":1}\n{\"id\":2}\n", 18) == 0);
}

static void
test_ok_with_cr(void)
{
	struct server s;
	struct usock *u;
	char reason[200];

	if (!CHECK(server_start(&s, "okcr.sock", M_OK_CR) == 0))
		return;
	u = usock_new(s.path);
	CHECK_INT(send_line(u, "{}", 2000, -1, reason, sizeof(reason)),
	    USOCK_OK);
	usock_free(u);
	server_stop(&s);
}

/* A wrong answer fails and drops the connection: the retry reconnects. */
static void
test_other_answer(void)
{
	struct server s;
	struct usock *u;
	char reason[200];

	if (!CHECK(server_start(&s, "no.sock", M_NO) == 0))
		return;
	u = usock_new(s.path);
	CHECK_INT(send_line(u, "{}", 2000, -1, reason, sizeof(reason)),
	    USOCK_FAILED);
	CHECK_STR(reason, "consumer answered 'NO'");
	CHECK_INT(send_line(u, "{}", 2000, -1, reason, sizeof(reason)),
	    USOCK_FAILED);
	usock_free(u);
	server_stop(&s);
	CHECK_INT(s.accepts, 2);
}

static void
test_eof(void)
{
	struct server s;
	struct usock *u;
	char reason[200];

	if (!CHECK(server_start(&s, "eof.sock", M_CLOSE) == 0))
		return;
	u = usock_new(s.path);
	CHECK_INT(send_line(u, "{}", 2000, -1, reason, sizeof(reason)),
	    USOCK_FAILED);
	CHECK_STR(reason, "consumer closed the connection");
	usock_free(u);
	server_stop(&s);
}

static void
test_silence_times_out(void)
{
	struct server s;
	struct usock *u;
	char reason[200];
	int64_t t0 = clock_mono_ms(), took;

	if (!CHECK(server_start(&s, "silent.sock", M_SILENT) == 0))
		return;
	u = usock_new(s.path);
	CHECK_INT(send_line(u, "{}", 300, -1, reason, sizeof(reason)),
	    USOCK_FAILED);
	took = clock_mono_ms() - t0;
	CHECK_STR(reason, "timeout after 300 ms");
	CHECK(took >= 300 && took < 2000);
	usock_free(u);
	server_stop(&s);
}

static void
test_long_answer_bounded(void)
{
	struct server s;
	struct usock *u;
	char reason[200];

	if (!CHECK(server_start(&s, "long.sock", M_LONG) == 0))
		return;
	u = usock_new(s.path);
	CHECK_INT(send_line(u, "{}", 2000, -1, reason, sizeof(reason)),
	    USOCK_FAILED);
	CHECK_STR(reason, "answer longer than 4096 bytes");
	usock_free(u);
	server_stop(&s);
}

static void
test_no_consumer(void)
{
	struct usock *u;
	char path[256], reason[200];

	(void)snprintf(path, sizeof(path), "%s/absent.sock", dir);
	u = usock_new(path);
	CHECK_INT(send_line(u, "{}", 2000, -1, reason, sizeof(reason)),
	    USOCK_FAILED);
	CHECK_STR(reason, "connect: No such file or directory");
	usock_free(u);
}

/* The consumer restarted between two envelopes: the stale connection is
 * noticed before sending and the envelope goes out on a new one. */
static void
test_consumer_restarted_while_idle(void)
{
	struct server s, s2;
	struct usock *u;
	char reason[200];

	if (!CHECK(server_start(&s, "restart.sock", M_OK_HANGUP) == 0))
		return;
	u = usock_new(s.path);
	CHECK_INT(send_line(u, "{\"n\":1}", 2000, -1, reason, sizeof(reason)),
	    USOCK_OK);
	server_stop(&s);
	if (!CHECK(server_start(&s2, "restart.sock", M_OK) == 0)) {
		usock_free(u);
		return;
	}
	CHECK_INT(send_line(u, "{\"n\":2}", 2000, -1, reason, sizeof(reason)),
	    USOCK_OK);
	usock_free(u);
	server_stop(&s2);
	CHECK_INT(s2.accepts, 1);
}

static void
test_cancel(void)
{
	struct server s;
	struct usock *u;
	char reason[200];
	uint64_t one = 1;
	int efd = eventfd(0, EFD_CLOEXEC);
	int64_t t0;

	if (!CHECK(server_start(&s, "cancel.sock", M_SILENT) == 0))
		return;
	u = usock_new(s.path);
	CHECK(write(efd, &one, sizeof(one)) == sizeof(one));
	t0 = clock_mono_ms();
	CHECK_INT(send_line(u, "{}", 60000, efd, reason, sizeof(reason)),
	    USOCK_CANCELLED);
	CHECK_STR(reason, "interrupted by shutdown");
	CHECK(clock_mono_ms() - t0 < 1000);
	usock_free(u);
	server_stop(&s);
	(void)close(efd);
}

int
main(void)
{
	int rc;

	log_init(LOG_LVL_WARNING);
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_ok_and_connection_kept);
	RUN(test_ok_with_cr);
	RUN(test_other_answer);
	RUN(test_eof);
	RUN(test_silence_times_out);
	RUN(test_long_answer_bounded);
	RUN(test_no_consumer);
	RUN(test_consumer_restarted_while_idle);
	RUN(test_cancel);
	rc = check_finish("test_usock");
	(void)rmdir(dir);
	return rc;
}
