/* http_frame.c - framing and syntax checks of a request's head (RFC 9112)
 * that libmicrohttpd 0.9.75 does not make; see http_frame.h.
 *
 * Pure: no I/O, no logging, no globals. Must not accept a head that
 * libmicrohttpd would frame differently from the RFC: a body read with the
 * wrong length is a second request hidden in the first. */
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "http_frame.h"

/* Longest Content-Length we parse: 19 digits always fit in 64 bits. */
#define LENGTH_DIGITS_MAX	19

void
http_frame_init(struct http_frame *f)
{
	memset(f, 0, sizeof(*f));
}

/* RFC 9110 5.6.2: tchar. */
static int
is_tchar(unsigned char ch)
{
	if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9'))
		return 1;
	return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* A field name is a token (RFC 9110 5.1). libmicrohttpd keeps the blanks
 * of "Content-Type : x" in the name, so this is where they are caught
 * (RFC 9112 5.1: such a request MUST be answered 400). */
static int
is_token(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!is_tchar((unsigned char)*s))
			return 0;
	return 1;
}

/* The next element of a comma-separated value with the blanks around it
 * trimmed (RFC 9110 5.6.1): *start and *len get it (len 0: an empty
 * element), *p moves past it (NULL after the last). Returns 0 when *p is
 * already NULL. */
static int
next_element(const char **p, const char **start, size_t *len)
{
	const char *s = *p, *e;

	if (s == NULL)
		return 0;
	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strcspn(s, ",");
	*p = *e == ',' ? e + 1 : NULL;
	*start = s;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	*len = (size_t)(e - s);
	return 1;
}

static void
bad(struct http_frame *f, const char *why)
{
	if (f->bad == NULL)
		f->bad = why;
}

/* Every number in every Content-Length field must be the same (RFC 9112
 * 6.3 item 5; RFC 9110 8.6): libmicrohttpd uses the first field only. */
static void
content_length(struct http_frame *f, const char *value)
{
	unsigned long long n;
	const char *s;
	size_t len, i;

	while (next_element(&value, &s, &len)) {
		if (len == 0 || len > LENGTH_DIGITS_MAX) {
			bad(f, "malformed Content-Length");
			return;
		}
		n = 0;
		for (i = 0; i < len; i++) {
			if (s[i] < '0' || s[i] > '9') {
				bad(f, "malformed Content-Length");
				return;
			}
			n = n * 10 + (unsigned long long)(s[i] - '0');
		}
		if (f->lengths > 0 && n != f->length) {
			bad(f, "conflicting Content-Length");
			return;
		}
		f->length = n;
		f->lengths++;
	}
}

/* Count the codings of one Transfer-Encoding field, in order. Empty list
 * elements are allowed and skipped (RFC 9110 5.6.1). */
static void
transfer_encoding(struct http_frame *f, const char *value)
{
	const char *s;
	size_t len;

	if (f->encodings++ == 0)
		f->plain_chunked = strcasecmp(value, "chunked") == 0;
	while (next_element(&value, &s, &len)) {
		if (len == 0)
			continue;
		f->chunked_last = len == 7 && strncasecmp(s, "chunked", 7) == 0;
		if (f->chunked_last)
			f->chunked++;
		else
			f->others++;
	}
}

void
http_frame_field(struct http_frame *f, const char *name, const char *value)
{
	if (!is_token(name)) {
		bad(f, "malformed header field name");
		return;
	}
	if (strcasecmp(name, "Content-Length") == 0)
		content_length(f, value);
	else if (strcasecmp(name, "Transfer-Encoding") == 0)
		transfer_encoding(f, value);
}

/* RFC 9112 6.1 and 6.3, in the order that keeps a smuggled length a 400. */
enum http_frame_result
http_frame_done(const struct http_frame *f, const char **why)
{
	*why = NULL;
	if (f->bad != NULL)
		*why = f->bad;
	else if (f->lengths > 0 && f->encodings > 0)
		*why = "Content-Length with Transfer-Encoding";
	else if (f->chunked > 0 && !f->chunked_last)
		*why = "chunked is not the last transfer coding";
	else if (f->chunked > 1)
		*why = "chunked applied more than once";
	else if (f->encodings > 0 && f->chunked == 0 && f->others == 0)
		*why = "empty Transfer-Encoding";
	if (*why != NULL)
		return HTTP_FRAME_BAD;
	/* Codings we cannot undo, or chunked written in a way libmicrohttpd
	 * does not take for chunked ("chunked,", a trailing blank): it would
	 * read the body up to the close, so say we do not implement it. */
	if (f->others > 0)
		*why = "transfer coding other than chunked";
	else if (f->encodings > 0 && !f->plain_chunked)
		*why = "Transfer-Encoding other than a plain chunked";
	return *why != NULL ? HTTP_FRAME_UNSUPPORTED : HTTP_FRAME_OK;
}

/* An authority of an http URI, without userinfo (RFC 9110 4.2.4) and
 * without blanks or control bytes. */
static int
authority_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++) {
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f ||
		    s[i] == '@')
			return 0;
	}
	return 1;
}

const char *
http_frame_path(const char *target)
{
	size_t skip, n;

	if (target[0] == '/' || strcmp(target, "*") == 0)
		return target;
	if (strncasecmp(target, "http://", 7) == 0)
		skip = 7;
	else if (strncasecmp(target, "https://", 8) == 0)
		skip = 8;
	else
		return NULL;
	target += skip;
	n = strcspn(target, "/");
	if (!authority_ok(target, n))
		return NULL;
	return target[n] == '\0' ? "/" : target + n;
}
