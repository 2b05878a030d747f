/* usock.c - deliver envelopes to the merchant's unix stream socket (DESIGN
 * "Forwarding", unix:PATH): one envelope per line, one "OK" line back.
 *
 * The connection is kept for the next envelope. Anything unexpected (no
 * answer in time, another answer, EOF, a reply too long, bytes that were
 * not asked for) closes it, so the stream can never fall out of step: each
 * "OK" read belongs to the envelope just sent. The retry backoff of the
 * outbox is the reconnect backoff; nothing here retries or sleeps.
 *
 * Must not: block past the deadline (every fd is non-blocking and waited on
 * with poll), raise SIGPIPE (MSG_NOSIGNAL), or read an unbounded reply. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "usock.h"

#define REASON_ECHO	64	/* bytes of a bad answer quoted in last_error */

struct usock {
	char	*path;
	int	 fd;		/* -1: not connected */
};

enum wait_result {
	WAIT_READY,
	WAIT_TIMEOUT,
	WAIT_CANCELLED,
	WAIT_ERROR
};

struct usock *
usock_new(const char *path)
{
	struct usock *u = calloc(1, sizeof(*u));

	if (u == NULL)
		return NULL;
	u->path = strdup(path);
	if (u->path == NULL) {
		free(u);
		return NULL;
	}
	u->fd = -1;
	return u;
}

static void
disconnect(struct usock *u)
{
	if (u->fd >= 0)
		(void)close(u->fd);
	u->fd = -1;
}

void
usock_free(struct usock *u)
{
	if (u == NULL)
		return;
	disconnect(u);
	free(u->path);
	free(u);
}

static const char *
errtext(int err)
{
	const char *s = strerrordesc_np(err);	/* thread-safe */

	return s != NULL ? s : "unknown error";
}

/* A kept connection the consumer closed while idle (it restarted), or one
 * with bytes nobody asked for, is dropped before it is used. */
static void
drop_if_stale(struct usock *u)
{
	struct pollfd p = { u->fd, POLLIN, 0 };
	char c;
	ssize_t n;

	if (u->fd < 0 || poll(&p, 1, 0) != 1)
		return;
	n = recv(u->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR))
		log_debug("forward: consumer '%s' closed the connection; "
		    "reconnecting", u->path);
	else if (n > 0)
		log_warning("forward: consumer '%s' sent bytes nobody asked "
		    "for; reconnecting", u->path);
	else
		return;
	disconnect(u);
}

static int
connect_to(struct usock *u, char *reason, size_t len)
{
	struct sockaddr_un sa;
	size_t plen = strlen(u->path);

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (plen >= sizeof(sa.sun_path)) {
		(void)snprintf(reason, len, "connect: socket path too long");
		return -1;
	}
	memcpy(sa.sun_path, u->path, plen + 1);
	u->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (u->fd == -1) {
		(void)snprintf(reason, len, "socket: %s", errtext(errno));
		return -1;
	}
	/* A unix stream connect completes at once or fails at once (EAGAIN
	 * when the consumer's backlog is full): no in-progress state. */
	if (connect(u->fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		(void)snprintf(reason, len, "connect: %s", errtext(errno));
		disconnect(u);
		return -1;
	}
	return 0;
}

static enum wait_result
wait_fd(int fd, short events, int64_t deadline, int cancel_fd)
{
	struct pollfd p[2] = { { fd, events, 0 }, { cancel_fd, POLLIN, 0 } };
	int64_t left = deadline - clock_mono_ms();
	int r;

	if (left <= 0)
		return WAIT_TIMEOUT;
	r = poll(p, cancel_fd >= 0 ? 2 : 1, (int)left);
	if (r == -1)
		return errno == EINTR ? WAIT_READY : WAIT_ERROR;
	if (r == 0)
		return WAIT_TIMEOUT;
	if (cancel_fd >= 0 && p[1].revents != 0)
		return WAIT_CANCELLED;
	return WAIT_READY;
}

/* Reason text for a timeout or a cancel; returns the matching result. */
static enum usock_result
wait_failed(enum wait_result w, int timeout_ms, char *reason, size_t len)
{
	if (w == WAIT_CANCELLED) {
		(void)snprintf(reason, len, "interrupted by shutdown");
		return USOCK_CANCELLED;
	}
	if (w == WAIT_TIMEOUT && timeout_ms % 1000 == 0)
		(void)snprintf(reason, len, "timeout after %d s",
		    timeout_ms / 1000);
	else if (w == WAIT_TIMEOUT)
		(void)snprintf(reason, len, "timeout after %d ms", timeout_ms);
	else
		(void)snprintf(reason, len, "poll: %s", errtext(errno));
	return USOCK_FAILED;
}

static enum usock_result
send_all(struct usock *u, const char *p, size_t n, int64_t deadline,
    int cancel_fd, int timeout_ms, char *reason, size_t len)
{
	enum wait_result w;
	ssize_t r;

	while (n > 0) {
		r = send(u->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r > 0) {
			p += r;
			n -= (size_t)r;
			continue;
		}
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1 && errno != EAGAIN) {
			(void)snprintf(reason, len, "send: %s", errtext(errno));
			return USOCK_FAILED;
		}
		w = wait_fd(u->fd, POLLOUT, deadline, cancel_fd);
		if (w != WAIT_READY)
			return wait_failed(w, timeout_ms, reason, len);
	}
	return USOCK_OK;
}

/* Quote a bad answer for last_error: bounded, printable ASCII only. */
static void
bad_answer(const char *line, size_t n, char *reason, size_t len)
{
	char echo[REASON_ECHO + 1];
	size_t i;

	if (n > REASON_ECHO)
		n = REASON_ECHO;
	for (i = 0; i < n; i++)
		echo[i] = (line[i] >= 0x20 && line[i] < 0x7f) ? line[i] : '?';
	echo[n] = '\0';
	(void)snprintf(reason, len, "consumer answered '%s'", echo);
}

/* The answer line: exactly "OK", optionally "OK\r". */
static enum usock_result
judge(struct usock *u, const char *buf, size_t have, size_t nl, char *reason,
    size_t len)
{
	size_t n = nl;

	if (nl + 1 < have) {
		log_warning("forward: consumer '%s' answered more than one "
		    "line; reconnecting", u->path);
		disconnect(u);
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (n == 2 && buf[0] == 'O' && buf[1] == 'K')
		return USOCK_OK;
	bad_answer(buf, n, reason, len);
	return USOCK_FAILED;
}

static enum usock_result
read_answer(struct usock *u, int64_t deadline, int cancel_fd, int timeout_ms,
    char *reason, size_t len)
{
	char buf[USOCK_REPLY_MAX];
	size_t have = 0;
	const char *nl;
	enum wait_result w;
	ssize_t r;

	for (;;) {
		w = wait_fd(u->fd, POLLIN, deadline, cancel_fd);
		if (w != WAIT_READY)
			return wait_failed(w, timeout_ms, reason, len);
		r = recv(u->fd, buf + have, sizeof(buf) - have, MSG_DONTWAIT);
		if (r == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r == -1) {
			(void)snprintf(reason, len, "recv: %s", errtext(errno));
			return USOCK_FAILED;
		}
		if (r == 0) {
			(void)snprintf(reason, len,
			    "consumer closed the connection");
			return USOCK_FAILED;
		}
		nl = memchr(buf + have, '\n', (size_t)r);
		have += (size_t)r;
		if (nl != NULL)
			return judge(u, buf, have, (size_t)(nl - buf), reason,
			    len);
		if (have == sizeof(buf)) {
			(void)snprintf(reason, len, "answer longer than %d "
			    "bytes", USOCK_REPLY_MAX);
			return USOCK_FAILED;
		}
	}
}

enum usock_result
usock_deliver(struct usock *u, const char *line, size_t n, int timeout_ms,
    int cancel_fd, char *reason, size_t reason_len)
{
	int64_t deadline = clock_mono_ms() + timeout_ms;
	enum usock_result res;

	drop_if_stale(u);
	if (u->fd < 0 && connect_to(u, reason, reason_len) == -1)
		return USOCK_FAILED;
	res = send_all(u, line, n, deadline, cancel_fd, timeout_ms, reason,
	    reason_len);
	if (res == USOCK_OK)
		res = send_all(u, "\n", 1, deadline, cancel_fd, timeout_ms,
		    reason, reason_len);
	if (res == USOCK_OK)
		res = read_answer(u, deadline, cancel_fd, timeout_ms, reason,
		    reason_len);
	if (res != USOCK_OK)
		disconnect(u);
	return res;
}
