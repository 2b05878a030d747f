/* usock.h - the unix:PATH forward target (DESIGN "Forwarding"): a stream
 * socket, one envelope per line, one "OK" line back per envelope, the
 * connection reused. One struct usock per worker thread; never shared. */
#ifndef CFHOOK_USOCK_H
#define CFHOOK_USOCK_H

#include <stddef.h>

/* Longest reply line read from the consumer (including the newline). */
#define USOCK_REPLY_MAX	4096

enum usock_result {
	USOCK_OK,		/* the consumer answered "OK" */
	USOCK_FAILED,		/* connect, send, other answer, EOF, timeout */
	USOCK_CANCELLED		/* cancel_fd became readable */
};

struct usock;

/* Nothing is connected yet. NULL on no memory. */
struct usock *usock_new(const char *path);
/* Send `line` (no newline inside; one is added) and wait for the answer,
 * all within timeout_ms. Connects first when there is no connection, or when
 * the consumer closed the one kept from last time. After anything but
 * USOCK_OK the connection is closed, so the next call (the retry, after its
 * backoff) reconnects. `reason` gets a short text on failure. */
enum usock_result usock_deliver(struct usock *, const char *line, size_t len,
	    int timeout_ms, int cancel_fd, char *reason, size_t reason_len);
/* Closes the connection. NULL-safe. */
void	usock_free(struct usock *);

#endif
