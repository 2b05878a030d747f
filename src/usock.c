/* usock.c - deliver envelopes to the merchant's unix stream socket (DESIGN
 * "Forwarding", unix:PATH): one connection, pipelined (usock.h).
 *
 * The stream can never fall out of step without the connection being
 * closed: answers are matched to envelopes strictly in the order sent, an
 * answer that names an id must name the envelope it is matched to, and
 * anything unexpected (another answer, a reply too long, bytes nobody
 * asked for, an answer before its envelope was whole) closes the
 * connection, failing the envelope at the head and reporting those sent
 * after it unanswered. So an "OK" that a consumer sent twice can make
 * another envelope count as delivered only when the consumer answers
 * without ids; with ids it closes the connection instead.
 *
 * Must not: block (every fd is non-blocking and waited on with poll), raise
 * SIGPIPE (MSG_NOSIGNAL), read an unbounded reply, or report an envelope
 * twice or out of order. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "num.h"
#include "reason.h"
#include "usock.h"

#define REASON_LEN	(80 + REASON_QUOTE_MAX)

struct entry {
	char	*line;		/* the envelope and its newline */
	size_t	 len;		/* with the newline */
	size_t	 off;		/* bytes sent */
	int64_t	 id;
	void	*cookie;
	int64_t	 sent_ms;	/* mono: its first byte went out */
	int	 started;	/* start() was told */
	struct entry *next;
};

struct usock {
	char	*path;
	int	 fd;		/* -1: not connected */
	unsigned depth;
	int	 timeout_ms;
	struct entry *head, **tail;	/* not finished, in order */
	struct entry *w;	/* the first not sent completely, or NULL */
	unsigned nsent;		/* entries with bytes sent, unanswered */
	unsigned answered;	/* answers on this connection */
	unsigned n;		/* entries in all */
	int64_t	 answer_ms;	/* mono: the last answer (or connect) */
	char	 in[USOCK_REPLY_MAX];
	size_t	 in_len;
	usock_done_fn *done;	/* for the call in progress */
	usock_start_fn *start;
	void	*arg;
};

static const char *
errtext(int err)
{
	const char *s = strerrordesc_np(err);	/* thread-safe */

	return s != NULL ? s : "unknown error";
}

struct usock *
usock_new(const char *path, unsigned depth, int timeout_ms)
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
	u->depth = depth > 0 ? depth : 1;
	u->timeout_ms = timeout_ms;
	u->tail = &u->head;
	return u;
}

int
usock_push(struct usock *u, char *line, size_t len, int64_t id, void *cookie)
{
	struct entry *e = calloc(1, sizeof(*e));

	if (e == NULL) {
		free(line);
		return -1;
	}
	e->line = line;
	e->len = len + 1;
	e->id = id;
	e->cookie = cookie;
	*u->tail = e;
	u->tail = &e->next;
	if (u->w == NULL)
		u->w = e;
	u->n++;
	return 0;
}

unsigned
usock_pending(const struct usock *u)
{
	return u->n;
}

/* Takes the head off the list and reports it. */
static void
finish_head(struct usock *u, enum usock_result r, const char *reason)
{
	struct entry *e = u->head;

	u->head = e->next;
	if (u->head == NULL)
		u->tail = &u->head;
	if (u->w == e)
		u->w = e->next;
	if (e->off > 0)
		u->nsent--;
	u->n--;
	u->done(u->arg, e->cookie, r, reason);
	free(e->line);
	free(e);
}

/* The connection is gone: the head fails with `reason` (when it was sent),
 * the others sent after it are unanswered; the unsent ones wait, from the
 * start of their line, for the next connection. */
static void
disconnect(struct usock *u, enum usock_result r, const char *reason)
{
	char note[REASON_LEN];
	int64_t failed = -1;

	if (u->fd >= 0)
		(void)close(u->fd);
	u->fd = -1;
	u->in_len = 0;
	if (u->head != NULL && u->head->off > 0) {
		failed = u->head->id;
		finish_head(u, r, reason);
	}
	(void)snprintf(note, sizeof(note), "not answered: the connection was "
	    "closed after event %lld failed", (long long)failed);
	while (u->head != NULL && u->head->off > 0)
		finish_head(u, USOCK_UNANSWERED, note);
}

/* Everything fails: no connection could be made (each is an attempt). */
static void
fail_all(struct usock *u, enum usock_result r, const char *reason)
{
	while (u->head != NULL)
		finish_head(u, r, reason);
}

/* A stop: those sent are cancelled, the others were never sent. */
static void
cancel_all(struct usock *u)
{
	while (u->head != NULL)
		finish_head(u, u->head->off > 0 ? USOCK_CANCELLED : USOCK_UNSENT,
		    "interrupted by shutdown");
}

static int
connect_to(struct usock *u)
{
	struct sockaddr_un sa;
	size_t plen = strlen(u->path);
	char reason[REASON_LEN];

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (plen >= sizeof(sa.sun_path)) {
		fail_all(u, USOCK_FAILED, "connect: socket path too long");
		return -1;
	}
	memcpy(sa.sun_path, u->path, plen + 1);
	u->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (u->fd == -1) {
		(void)snprintf(reason, sizeof(reason), "socket: %s",
		    errtext(errno));
		fail_all(u, USOCK_FAILED, reason);
		return -1;
	}
	/* A unix stream connect completes at once or fails at once (EAGAIN
	 * when the consumer's backlog is full): no in-progress state. */
	if (connect(u->fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		(void)snprintf(reason, sizeof(reason), "connect: %s",
		    errtext(errno));
		(void)close(u->fd);
		u->fd = -1;
		fail_all(u, USOCK_FAILED, reason);
		return -1;
	}
	u->answer_ms = clock_mono_ms();
	u->answered = 0;
	return 0;
}

/* At most this many envelopes in one sendmsg (depth is at most 64, and a
 * partly sent one may come first). */
#define SEND_IOV	72

/* r more bytes went out, from u->w on. */
static void
sent(struct usock *u, size_t r)
{
	int64_t now = clock_mono_ms();
	struct entry *e;
	size_t take;

	while (r > 0 && (e = u->w) != NULL) {
		take = e->len - e->off < r ? e->len - e->off : r;
		if (e->off == 0) {
			e->sent_ms = now;
			u->nsent++;
		}
		e->off += take;
		r -= take;
		if (e->off < e->len)
			break;
		u->w = e->next;
	}
}

/* The envelopes told of before a write that took none of their bytes:
 * their delivery has not started (start() hears so), so a crash now would
 * not count them as attempts. */
static void
untell(struct usock *u)
{
	struct entry *e;

	for (e = u->w; e != NULL; e = e->next) {
		if (e->off > 0)
			continue;	/* only the first can be partly sent */
		if (!e->started)
			break;		/* told in order: none after it */
		if (u->start != NULL)
			u->start(u->arg, e->cookie, 0);
		e->started = 0;
	}
}

/* Sends while envelopes wait and fewer than depth are unanswered: what
 * can go is gathered into one sendmsg, so the consumer is woken once for
 * it and reads it in one go, not once per envelope. */
static void
send_some(struct usock *u)
{
	struct iovec iov[SEND_IOV];
	struct msghdr mh;
	char reason[REASON_LEN];
	struct entry *e;
	unsigned fresh;
	size_t n;
	ssize_t r;

	while (u->w != NULL && u->fd >= 0) {
		n = 0;
		fresh = 0;
		for (e = u->w; e != NULL && n < SEND_IOV; e = e->next) {
			if (e->off == 0 && u->nsent + fresh >= u->depth)
				break;
			if (e->off == 0)
				fresh++;
			/* Before its first byte (forward_marks.h); untell()
			 * takes it back if the write takes none of it. */
			if (!e->started && u->start != NULL)
				u->start(u->arg, e->cookie, 1);
			e->started = 1;
			iov[n].iov_base = e->line + e->off;
			iov[n].iov_len = e->len - e->off;
			n++;
		}
		if (n == 0)
			return;
		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = iov;
		mh.msg_iovlen = n;
		r = sendmsg(u->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1 && errno == EAGAIN) {
			untell(u);
			return;
		}
		if (r <= 0) {
			/* Whether a closing consumer shows as EPIPE here or as
			 * EOF on the read side is timing: one reason for both. */
			if (errno == EPIPE || errno == ECONNRESET)
				(void)snprintf(reason, sizeof(reason),
				    "consumer closed the connection");
			else
				(void)snprintf(reason, sizeof(reason),
				    "send: %s", errtext(errno));
			/* Everything sent was answered, and the consumer closed
			 * after its answers (a restart between envelopes):
			 * nothing failed, the rest go on a new connection. */
			if (u->nsent == 0 && u->answered > 0) {
				log_debug("forward: consumer '%s' closed the "
				    "connection after its answers; reconnecting",
				    u->path);
				untell(u);
				disconnect(u, USOCK_FAILED, "");
				return;
			}
			/* Nothing answered on this connection: the envelope
			 * fails, else a consumer that closes at once would have
			 * us reconnect without end. */
			if (u->nsent == 0) {
				u->w->off = 1;
				u->nsent++;
			}
			untell(u);
			disconnect(u, USOCK_FAILED, reason);
			return;
		}
		sent(u, (size_t)r);
		untell(u);
	}
}

/* "OK", or "OK <id>" naming the head; anything else closes the connection
 * with the head failed. Returns 0 for an OK, -1 when disconnected. */
static int
judge(struct usock *u, const char *line, size_t n)
{
	char reason[REASON_LEN], digits[24];
	struct entry *e = u->head;
	uint64_t id;

	if (n > 0 && line[n - 1] == '\r')
		n--;
	if (e->off < e->len) {
		(void)snprintf(reason, sizeof(reason), "consumer answered "
		    "before the envelope was complete");
		disconnect(u, USOCK_FAILED, reason);
		return -1;
	}
	if (n == 2 && memcmp(line, "OK", 2) == 0)
		return 0;
	if (n > 3 && n - 3 < sizeof(digits) && memcmp(line, "OK ", 3) == 0) {
		memcpy(digits, line + 3, n - 3);
		digits[n - 3] = '\0';
		if (num_parse_u64(digits, 0, INT64_MAX, &id) == 0) {
			if ((int64_t)id == e->id)
				return 0;
			(void)snprintf(reason, sizeof(reason), "consumer "
			    "answered 'OK %s' to event %lld", digits,
			    (long long)e->id);
			disconnect(u, USOCK_FAILED, reason);
			return -1;
		}
	}
	(void)snprintf(reason, sizeof(reason), "consumer answered '");
	reason_append_quoted(reason, sizeof(reason) - 1, line, n);
	n = strlen(reason);
	reason[n] = '\'';
	reason[n + 1] = '\0';
	disconnect(u, USOCK_FAILED, reason);
	return -1;
}

/* Every whole line in the buffer answers the head. */
static void
take_answers(struct usock *u)
{
	const char *p = u->in, *nl;
	size_t left = u->in_len, n;
	char reason[64];

	while ((nl = memchr(p, '\n', left)) != NULL) {
		n = (size_t)(nl - p);
		if (u->head == NULL || u->head->off == 0) {
			log_warning("forward: consumer '%s' sent bytes nobody "
			    "asked for; reconnecting", u->path);
			disconnect(u, USOCK_FAILED, "");
			return;
		}
		if (judge(u, p, n) == -1)
			return;		/* disconnected, buffer dropped */
		finish_head(u, USOCK_OK, NULL);
		u->answered++;
		u->answer_ms = clock_mono_ms();
		p = nl + 1;
		left -= n + 1;
	}
	memmove(u->in, p, left);
	u->in_len = left;
	if (left == sizeof(u->in)) {
		(void)snprintf(reason, sizeof(reason), "answer longer than %d "
		    "bytes", USOCK_REPLY_MAX);
		disconnect(u, USOCK_FAILED, reason);
	}
}

static void
read_some(struct usock *u)
{
	char reason[REASON_LEN];
	size_t room;
	ssize_t r;

	for (;;) {
		room = sizeof(u->in) - u->in_len;
		r = recv(u->fd, u->in + u->in_len, room, MSG_DONTWAIT);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1 && errno == EAGAIN)
			return;
		if (r == 0 && u->nsent == 0) {
			/* Closed while idle (it restarted): no one failed. */
			log_debug("forward: consumer '%s' closed the "
			    "connection; reconnecting", u->path);
			disconnect(u, USOCK_FAILED, "");
			return;
		}
		if (r <= 0) {
			/* A consumer that closes with our envelopes unread
			 * resets the connection: the same to us. */
			(void)snprintf(reason, sizeof(reason), r == 0 ||
			    errno == ECONNRESET ? "consumer closed the "
			    "connection" : "recv: %s", errtext(errno));
			disconnect(u, USOCK_FAILED, reason);
			return;
		}
		u->in_len += (size_t)r;
		take_answers(u);
		/* Less than there was room for: the socket is empty now, and
		 * poll says when more comes (no recv just to hear EAGAIN). */
		if (u->fd < 0 || (size_t)r < room)
			return;
	}
}

/* When the head's answer is due (mono ms), or -1 when none is awaited. */
static int64_t
head_deadline(const struct usock *u)
{
	int64_t from;

	if (u->head == NULL || u->head->off == 0)
		return -1;
	from = u->head->sent_ms > u->answer_ms ? u->head->sent_ms :
	    u->answer_ms;
	return from + u->timeout_ms;
}

static void
timed_out(struct usock *u)
{
	char reason[64];

	if (u->timeout_ms % 1000 == 0)
		(void)snprintf(reason, sizeof(reason), "timeout after %d s",
		    u->timeout_ms / 1000);
	else
		(void)snprintf(reason, sizeof(reason), "timeout after %d ms",
		    u->timeout_ms);
	disconnect(u, USOCK_TIMEOUT, reason);
}

static void
drain_fd(int fd)
{
	uint64_t v;

	if (fd >= 0)
		while (read(fd, &v, sizeof(v)) > 0)
			continue;
}

void
usock_run(struct usock *u, int wake_fd, int cancel_fd, int max_wait_ms,
    usock_done_fn *done, usock_start_fn *start, void *arg)
{
	struct pollfd p[3] = { { wake_fd, POLLIN, 0 }, { cancel_fd, POLLIN, 0 },
	    { -1, POLLIN, 0 } };
	int64_t due, wait = max_wait_ms;

	u->done = done;
	u->start = start;
	u->arg = arg;
	if (u->fd < 0 && u->head != NULL && connect_to(u) == -1)
		return;
	send_some(u);
	p[2].fd = u->fd;
	if (u->fd >= 0 && u->w != NULL && (u->w->off > 0 || u->nsent < u->depth))
		p[2].events |= POLLOUT;
	due = head_deadline(u);
	if (due >= 0 && due - clock_mono_ms() < wait)
		wait = due - clock_mono_ms();
	if (poll(p, 3, wait > 0 ? (int)wait : 0) == -1)
		return;		/* EINTR: the caller calls again */
	if (p[1].revents != 0) {
		if (u->fd >= 0)
			(void)close(u->fd);
		u->fd = -1;
		u->in_len = 0;
		cancel_all(u);
		return;
	}
	if (p[0].revents != 0)
		drain_fd(wake_fd);
	if (u->fd >= 0 && (p[2].revents & (POLLIN | POLLHUP | POLLERR)) != 0)
		read_some(u);
	if (u->fd >= 0 && (p[2].revents & POLLOUT) != 0)
		send_some(u);
	due = head_deadline(u);
	if (u->fd >= 0 && due >= 0 && clock_mono_ms() >= due)
		timed_out(u);
}

void
usock_drop_unsent(struct usock *u, usock_done_fn *done, void *arg)
{
	struct entry **pe = &u->head, *e;

	while ((e = *pe) != NULL) {
		if (e->off > 0) {
			pe = &e->next;
			continue;
		}
		*pe = e->next;
		if (u->w == e)
			u->w = e->next;
		u->n--;
		done(arg, e->cookie, USOCK_UNSENT, "interrupted by shutdown");
		free(e->line);
		free(e);
	}
	u->tail = pe;
}

void
usock_free(struct usock *u, usock_done_fn *done, void *arg)
{
	if (u == NULL)
		return;
	u->done = done;
	u->arg = arg;
	if (u->fd >= 0)
		(void)close(u->fd);
	cancel_all(u);
	free(u->path);
	free(u);
}
