/* lg_conn.h - one keep-alive HTTP/1.1 client connection of the load
 * generator, over TCP or a unix socket, with one request in flight.
 *
 * Non-blocking after connect and registered edge-triggered in the owning
 * thread's epoll set (data.ptr = the connection): lg_conn_io() must be
 * called on every event and runs until the socket would block. One thread
 * owns a connection; nothing here is shared. */
#ifndef LG_CONN_H
#define LG_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lg_req.h"

#define LG_RESP_MAX	8192	/* a whole response: status, headers, body */

/* Where requests go: the address to connect to, and the Host header and
 * path of the URL. */
struct lg_target {
	struct sockaddr_storage addr;
	socklen_t	 addr_len;
	int		 tcp;		/* set TCP_NODELAY */
	char		 host[256];
	char		 path[1024];
};

/* Fills t from "http://HOST[:PORT]/PATH" (HOST a name, an IPv4 address or
 * [IPv6]); with unix_path, connects there instead and takes only Host and
 * path from the URL. -1 with a message in err[errlen]. */
int	lg_target_parse(const char *url, const char *unix_path,
	    struct lg_target *t, char *err, size_t errlen);

/* One parsed response (lg_conn_parse). */
struct lg_resp {
	unsigned	 status;
	size_t		 body_off;	/* where the body starts in the buffer */
	size_t		 body_len;
	size_t		 total;		/* bytes of the whole response */
	int		 close;		/* the server will close the connection */
};

/* Parses buf[0..len): 1 when it holds one complete response (r filled), 0
 * when more bytes are needed, -1 when it is not a response this client
 * understands (bad status line or Content-Length, chunked, no length,
 * larger than LG_RESP_MAX, or bytes past its end). Pure. */
int	lg_conn_parse(const char *buf, size_t len, struct lg_resp *r);

enum lg_conn_state {
	LG_CONN_CLOSED,
	LG_CONN_IDLE,		/* connected, nothing in flight */
	LG_CONN_BUSY		/* a request written or being written */
};

struct lg_conn {
	int		 fd;
	enum lg_conn_state state;
	char		 req[LG_REQ_MAX];
	size_t		 req_len, req_off;
	char		 resp[LG_RESP_MAX];
	size_t		 resp_len;
	struct lg_resp	 r;		/* valid after LG_IO_DONE */
	/* The request in flight, for the caller's bookkeeping. */
	uint64_t	 id;
	enum lg_req_kind kind;
	int		 is_dup;
	int64_t		 start_ns;	/* latency is measured from here */
	int64_t		 deadline_ns;	/* BUSY: give up; CLOSED: retry at */
};

enum lg_io {
	LG_IO_AGAIN,		/* nothing finished; wait for the next event */
	LG_IO_DONE,		/* a complete response is in c->r */
	LG_IO_FAIL,		/* error or EOF with a request in flight */
	LG_IO_CLOSED_IDLE	/* the server closed an idle connection */
};

/* A closed connection; lg_conn_open() connects it. */
void	lg_conn_init(struct lg_conn *);
/* Connects (blocking, bounded by timeout_ms), makes the socket non-blocking
 * and adds it to epfd. -1 with errno on failure (the connection stays
 * closed). */
int	lg_conn_open(struct lg_conn *, const struct lg_target *, int epfd,
	    int timeout_ms);
/* Closes the socket (removing it from epoll). NULL-safe, idempotent. */
void	lg_conn_close(struct lg_conn *);
/* Starts sending c->req[0..req_len) on an idle connection; then as
 * lg_conn_io(). */
enum lg_io lg_conn_send(struct lg_conn *);
/* Moves the request and response along after an epoll event. */
enum lg_io lg_conn_io(struct lg_conn *);

#endif
