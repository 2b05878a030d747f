/* usock.h - the unix:PATH forward target (DESIGN "Forwarding"): a stream
 * socket, one envelope per line, one answer line per envelope in the order
 * sent, on one connection with up to `depth` envelopes sent ahead of their
 * answers. A consumer that reads one line, answers it and reads the next
 * works unchanged; a fast one is not held to one round trip per event.
 *
 * An answer is "OK", or "OK <id>" with the envelope's `id`, which is then
 * checked (a trailing "\r" is allowed). Anything else, a wrong id, silence
 * past the timeout, EOF or an error closes the connection: the envelope it
 * was about fails, and every envelope sent after it is reported unanswered
 * (to be sent again at once, in order, on a new connection). The timeout
 * of an envelope runs from when it was sent or, if later, from the answer
 * before it: the consumer's time for that envelope alone. Envelopes not yet
 * sent wait for the next connection. Nothing here retries or sleeps: the
 * outbox's backoff is the reconnect backoff.
 *
 * One struct usock per forwarder, used by one thread only. */
#ifndef CFHOOK_USOCK_H
#define CFHOOK_USOCK_H

#include <stddef.h>
#include <stdint.h>

/* Longest answer line read from the consumer (including the newline). */
#define USOCK_REPLY_MAX	4096

enum usock_result {
	USOCK_OK,		/* "OK" or "OK <its id>" */
	USOCK_FAILED,		/* another answer, wrong id, EOF, no connection */
	USOCK_TIMEOUT,		/* no answer within the timeout */
	USOCK_UNANSWERED,	/* sent after one that failed: not answered */
	USOCK_CANCELLED,	/* cancel_fd, after it was sent */
	USOCK_UNSENT		/* dropped before any of it was sent */
};

struct usock;

/* Reports one finished envelope: its cookie, result and, for anything but
 * USOCK_OK, a short reason (borrowed for the call). */
typedef void usock_done_fn(void *arg, void *cookie, enum usock_result,
    const char *reason);

/* Called with started 1 just before an envelope's first byte is sent (its
 * attempt starts), and with 0 when the write it was told for took none of
 * its bytes after all (a full socket, a closed connection): it has not
 * started, and is told again before it goes. */
typedef void usock_start_fn(void *arg, void *cookie, int started);
/* Nothing is connected yet. NULL on no memory. */
struct usock *usock_new(const char *path, unsigned depth, int timeout_ms);
/* Queues one envelope: `line` holds len bytes and its newline after them
 * (len + 1 bytes, malloc'd; usock frees it), `id` is the envelope's id,
 * `cookie` comes back with the result. Returns 0, or -1 on no memory (the
 * line is freed, nothing queued). */
int	usock_push(struct usock *, char *line, size_t len, int64_t id,
	    void *cookie);
/* Envelopes queued and not finished. */
unsigned usock_pending(const struct usock *);
/* One step: connects when there is something to send, sends while fewer
 * than `depth` envelopes wait for their answers, reads answers, applies
 * the timeout; waits (poll) at most max_wait_ms, or until wake_fd or
 * cancel_fd (-1: none) is readable. Finished envelopes are reported to
 * done(), in the order they were queued; start() (NULL: none) hears of
 * each envelope before its first byte is sent. A readable cancel_fd ends
 * every envelope (USOCK_CANCELLED, or USOCK_UNSENT for one not sent) and
 * closes the connection. */
void	usock_run(struct usock *, int wake_fd, int cancel_fd, int max_wait_ms,
	    usock_done_fn *done, usock_start_fn *start, void *arg);
/* Reports every envelope not yet sent as USOCK_UNSENT (a stop: no
 * delivery starts after it). The ones sent keep waiting for answers. */
void	usock_drop_unsent(struct usock *, usock_done_fn *done, void *arg);
/* Closes the connection; envelopes still queued are reported
 * USOCK_CANCELLED (USOCK_UNSENT when not sent). NULL-safe. */
void	usock_free(struct usock *, usock_done_fn *done, void *arg);

#endif
