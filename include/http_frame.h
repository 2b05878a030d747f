/* http_frame.h - the checks of a request's head that libmicrohttpd 0.9.75
 * leaves to us (RFC 9112; DESIGN "HTTP behaviour"): how the body is framed
 * (Content-Length, Transfer-Encoding), field names, and the request target.
 *
 * libmicrohttpd frames the body by the first Content-Length or by a
 * Transfer-Encoding that is exactly "chunked", and reads any other
 * Transfer-Encoding as a body that ends when the client closes. A request it
 * would frame differently from the RFC, or that a proxy in front could frame
 * differently (request smuggling), is refused before anything is routed.
 *
 * Pure: no I/O, no logging. http.c feeds the fields as libmicrohttpd stored
 * them (name without the colon, value without leading blanks). */
#ifndef CFHOOK_HTTP_FRAME_H
#define CFHOOK_HTTP_FRAME_H

enum http_frame_result {
	HTTP_FRAME_OK,
	HTTP_FRAME_BAD,		/* 400, then close (RFC 9112 5.1, 6.3) */
	HTTP_FRAME_UNSUPPORTED	/* 501, then close: a transfer coding other
				 * than chunked (RFC 9112 6.1) */
};

/* What the fields seen so far say. Caller storage; set up by _init. */
struct http_frame {
	const char *bad;		/* first problem (static) or NULL */
	unsigned lengths;		/* Content-Length fields */
	unsigned long long length;	/* their value */
	unsigned encodings;		/* Transfer-Encoding fields */
	unsigned chunked;		/* "chunked" codings among them */
	unsigned others;		/* any other coding */
	int	 chunked_last;		/* the last coding is chunked */
	int	 plain_chunked;		/* the first field is just "chunked" */
};

void	http_frame_init(struct http_frame *);
/* One header field, in the order received. */
void	http_frame_field(struct http_frame *, const char *name,
	    const char *value);
/* The verdict once every field is in. When not HTTP_FRAME_OK, *why is a
 * short static phrase for the log and the answer (no client bytes). */
enum http_frame_result http_frame_done(const struct http_frame *,
	    const char **why);
/* The path a request target names: an origin-form target ("/x") or "*"
 * itself, the path of an absolute-form http or https URI
 * ("http://host/x" -> "/x", "http://host" -> "/"). NULL for anything else,
 * userinfo in the URI included (RFC 9110 4.2.4): answer 400. Borrowed from
 * target (or static). */
const char *http_frame_path(const char *target);

#endif
