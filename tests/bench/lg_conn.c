/* lg_conn.c - the load generator's HTTP/1.1 client connection: connect,
 * write one request, read and parse one response, keep the connection.
 *
 * Understands exactly what cfhookd and nginx answer: a status line, headers
 * and a Content-Length body. Anything else (chunked, no length, a response
 * past LG_RESP_MAX, bytes nobody asked for) is an error, never a guess, so
 * every counted response is one the server really sent whole. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "lg_conn.h"

static int
set_err(char *err, size_t errlen, const char *msg, const char *what)
{
	(void)snprintf(err, errlen, "%s: '%s'", msg, what);
	return -1;
}

/* Splits "HOST[:PORT]" (HOST maybe "[v6]") into host and port. */
static int
split_authority(const char *a, size_t n, char *host, size_t hostcap,
    char *port, size_t portcap)
{
	const char *colon = NULL, *h = a;
	size_t hl;

	if (n > 0 && a[0] == '[') {
		const char *close = memchr(a, ']', n);

		if (close == NULL)
			return -1;
		h = a + 1;
		hl = (size_t)(close - h);
		if (close + 1 < a + n) {
			if (close[1] != ':')
				return -1;
			colon = close + 1;
		}
	} else {
		colon = memchr(a, ':', n);
		hl = colon != NULL ? (size_t)(colon - a) : n;
	}
	if (hl == 0 || hl >= hostcap)
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (colon == NULL) {
		(void)snprintf(port, portcap, "80");
		return 0;
	}
	n -= (size_t)(colon + 1 - a);
	if (n == 0 || n >= portcap)
		return -1;
	memcpy(port, colon + 1, n);
	port[n] = '\0';
	return 0;
}

static int
resolve(const char *host, const char *port, struct lg_target *t)
{
	struct addrinfo hints, *res = NULL;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if (getaddrinfo(host, port, &hints, &res) != 0 || res == NULL)
		return -1;
	memcpy(&t->addr, res->ai_addr, res->ai_addrlen);
	t->addr_len = res->ai_addrlen;
	t->tcp = 1;
	freeaddrinfo(res);
	return 0;
}

int
lg_target_parse(const char *url, const char *unix_path, struct lg_target *t,
    char *err, size_t errlen)
{
	char host[256], port[16];
	const char *a, *slash;
	struct sockaddr_un *un;
	int n;

	memset(t, 0, sizeof(*t));
	if (strncmp(url, "http://", 7) != 0)
		return set_err(err, errlen, "URL must start with http://", url);
	a = url + 7;
	slash = strchr(a, '/');
	if (slash == NULL)
		slash = a + strlen(a);
	if (split_authority(a, (size_t)(slash - a), host, sizeof(host), port,
	    sizeof(port)) == -1)
		return set_err(err, errlen, "bad host or port in URL", url);
	n = snprintf(t->host, sizeof(t->host), "%.*s", (int)(slash - a), a);
	if (n < 0 || (size_t)n >= sizeof(t->host))
		return set_err(err, errlen, "host too long", url);
	n = snprintf(t->path, sizeof(t->path), "%s", *slash ? slash : "/");
	if (n < 0 || (size_t)n >= sizeof(t->path) ||
	    strpbrk(t->path, " \r\n") != NULL)
		return set_err(err, errlen, "bad path in URL", url);
	if (unix_path == NULL) {
		if (resolve(host, port, t) == -1)
			return set_err(err, errlen, "cannot resolve", host);
		return 0;
	}
	un = (struct sockaddr_un *)&t->addr;
	if (strlen(unix_path) >= sizeof(un->sun_path))
		return set_err(err, errlen, "unix socket path too long",
		    unix_path);
	un->sun_family = AF_UNIX;
	memcpy(un->sun_path, unix_path, strlen(unix_path) + 1);
	t->addr_len = (socklen_t)sizeof(*un);
	return 0;
}

/* One header line name: value (name matched without case). */
static int
header_is(const char *line, size_t len, const char *name, const char **val,
    size_t *vlen)
{
	size_t nl = strlen(name);

	if (len <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0)
		return 0;
	*val = line + nl + 1;
	*vlen = len - nl - 1;
	while (*vlen > 0 && (**val == ' ' || **val == '\t')) {
		(*val)++;
		(*vlen)--;
	}
	while (*vlen > 0 && ((*val)[*vlen - 1] == ' ' ||
	    (*val)[*vlen - 1] == '\t'))
		(*vlen)--;
	return 1;
}

static int
parse_length(const char *v, size_t n, size_t *out)
{
	size_t x = 0, i;

	if (n == 0 || n > 9)
		return -1;		/* longer than any response we accept */
	for (i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		x = x * 10 + (size_t)(v[i] - '0');
	}
	*out = x;
	return 0;
}

/* Status line and headers in buf[0..hlen): fills r (not body_off/total). */
static int
parse_head(const char *buf, size_t hlen, struct lg_resp *r, int *have_len)
{
	const char *p = buf, *end = buf + hlen, *eol, *v;
	size_t vlen;

	if (hlen < 12 || (memcmp(p, "HTTP/1.1 ", 9) != 0 &&
	    memcmp(p, "HTTP/1.0 ", 9) != 0))
		return -1;
	if (p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' ||
	    p[11] < '0' || p[11] > '9')
		return -1;
	r->status = (unsigned)((p[9] - '0') * 100 + (p[10] - '0') * 10 +
	    (p[11] - '0'));
	r->close = p[7] == '0';		/* HTTP/1.0: no keep-alive assumed */
	*have_len = 0;
	eol = memchr(p, '\n', hlen);
	if (eol == NULL)
		return -1;
	for (p = eol + 1; p < end; p = eol + 1) {
		eol = memchr(p, '\n', (size_t)(end - p));
		if (eol == NULL)
			eol = end;
		vlen = (size_t)(eol - p);
		if (vlen > 0 && p[vlen - 1] == '\r')
			vlen--;
		if (header_is(p, vlen, "content-length", &v, &vlen)) {
			if (*have_len || parse_length(v, vlen, &r->body_len))
				return -1;
			*have_len = 1;
		} else if (header_is(p, vlen, "transfer-encoding", &v, &vlen)) {
			return -1;
		} else if (header_is(p, vlen, "connection", &v, &vlen)) {
			r->close = vlen == 5 && strncasecmp(v, "close", 5) == 0;
		}
	}
	return 0;
}

int
lg_conn_parse(const char *buf, size_t len, struct lg_resp *r)
{
	const char *eoh;
	int have_len;

	memset(r, 0, sizeof(*r));
	eoh = memmem(buf, len, "\r\n\r\n", 4);
	if (eoh == NULL)
		return len >= LG_RESP_MAX ? -1 : 0;
	r->body_off = (size_t)(eoh - buf) + 4;
	if (parse_head(buf, r->body_off - 2, r, &have_len) == -1)
		return -1;
	if (!have_len) {
		/* Only bodiless statuses may omit the length here. */
		if (r->status >= 200 && r->status != 204 && r->status != 304)
			return -1;
		r->body_len = 0;
	}
	if (r->body_len > LG_RESP_MAX - r->body_off)
		return -1;
	r->total = r->body_off + r->body_len;
	if (len < r->total)
		return 0;
	return len == r->total ? 1 : -1;
}

void
lg_conn_init(struct lg_conn *c)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->state = LG_CONN_CLOSED;
}

int
lg_conn_open(struct lg_conn *c, const struct lg_target *t, int epfd,
    int timeout_ms)
{
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	struct epoll_event ev;
	int fd, one = 1, saved;

	fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	/* A blocking connect bounded by the send timeout: on a local
	 * server it returns at once; a full backlog waits, not fails. */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1 ||
	    connect(fd, (const struct sockaddr *)&t->addr, t->addr_len) == -1)
		goto fail;
	if (t->tcp && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
	    sizeof(one)) == -1)
		goto fail;
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == -1)
		goto fail;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
	ev.data.ptr = c;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == -1)
		goto fail;
	c->fd = fd;
	c->state = LG_CONN_IDLE;
	c->req_len = c->req_off = c->resp_len = 0;
	return 0;
fail:
	saved = errno;
	(void)close(fd);
	errno = saved;
	return -1;
}

void
lg_conn_close(struct lg_conn *c)
{
	if (c == NULL || c->fd == -1)
		return;
	(void)close(c->fd);	/* also leaves the epoll set */
	c->fd = -1;
	c->state = LG_CONN_CLOSED;
}

/* Writes what is left of the request. 0 written or would block, -1 error. */
static int
write_some(struct lg_conn *c)
{
	ssize_t n;

	while (c->req_off < c->req_len) {
		n = send(c->fd, c->req + c->req_off, c->req_len - c->req_off,
		    MSG_NOSIGNAL);
		if (n > 0) {
			c->req_off += (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		return -1;
	}
	return 0;
}

/* Reads until the socket would block (edge-triggered), parsing as bytes
 * come: a complete response followed by more bytes is an error. */
static enum lg_io
read_some(struct lg_conn *c)
{
	int done = 0, p;
	ssize_t n;

	for (;;) {
		if (c->resp_len == sizeof(c->resp))
			return LG_IO_FAIL;
		n = recv(c->fd, c->resp + c->resp_len,
		    sizeof(c->resp) - c->resp_len, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return done ? LG_IO_DONE : LG_IO_AGAIN;
		if (n == -1)
			return LG_IO_FAIL;
		if (n == 0) {
			if (done) {
				c->r.close = 1;
				return LG_IO_DONE;
			}
			return c->state == LG_CONN_IDLE && c->resp_len == 0 ?
			    LG_IO_CLOSED_IDLE : LG_IO_FAIL;
		}
		if (done || c->state != LG_CONN_BUSY)
			return LG_IO_FAIL;	/* bytes nobody asked for */
		c->resp_len += (size_t)n;
		p = lg_conn_parse(c->resp, c->resp_len, &c->r);
		if (p == -1)
			return LG_IO_FAIL;
		done = p == 1;
	}
}

enum lg_io
lg_conn_io(struct lg_conn *c)
{
	enum lg_io r;

	if (c->state == LG_CONN_CLOSED)
		return LG_IO_AGAIN;	/* a stale event of a closed socket */
	if (c->state == LG_CONN_BUSY && write_some(c) == -1)
		return LG_IO_FAIL;
	r = read_some(c);
	if (r == LG_IO_DONE) {
		/* Answered before the whole request was sent (an early
		 * refusal): the rest would be read as a new request. */
		if (c->req_off < c->req_len)
			c->r.close = 1;
		c->state = LG_CONN_IDLE;
	}
	return r;
}

enum lg_io
lg_conn_send(struct lg_conn *c)
{
	c->req_off = 0;
	c->resp_len = 0;
	c->state = LG_CONN_BUSY;
	return lg_conn_io(c);
}
