/* store_pg_uri.c - a PostgreSQL connection URI seen as text: where its
 * password is, so that log lines and output show the URI with the password
 * masked (DESIGN "Configuration": `database`), and whether it has one.
 *
 * libpq's URI form: postgresql://[user[:password]@][host][:port][/dbname]
 * [?param=value&...]; the userspec ends at the first '@' before any '/'
 * (a '@' inside a password is percent-encoded), and `password=` may also
 * be a parameter. No libpq here (it has no masking function) and no I/O:
 * the connection itself is store_pg_conn.c's. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "num.h"
#include "store_be.h"

#define MASK	"***"

/* Where the userspec's password is in uri: *off and *len (0: none). The
 * authority starts after "://"; the userspec is the text before an '@'
 * that comes before any '/'. */
static void
user_password(const char *uri, size_t *off, size_t *len)
{
	const char *p = strstr(uri, "://"), *start, *at, *colon;

	*off = 0;
	*len = 0;
	if (p == NULL)
		return;
	start = p + 3;
	at = start + strcspn(start, "@/");
	if (*at != '@')
		return;
	colon = memchr(start, ':', (size_t)(at - start));
	if (colon == NULL)
		return;
	*off = (size_t)(colon + 1 - uri);
	*len = (size_t)(at - (colon + 1));
}

/* Whether the parameter starting at p (up to '&' or the end) is
 * password=...; *vlen gets its value's length. */
/* Whether the query keyword p[0..n) is "password" once its %XX escapes
 * are decoded, as libpq decodes it ("p%61ssword" is one too). */
static int
key_is_password(const char *p, size_t n)
{
	static const char want[] = "password";
	size_t i = 0, k = 0;
	int c, hi, lo;

	while (i < n) {
		c = (unsigned char)p[i++];
		if (c == '%' && n - i >= 2 &&
		    (hi = num_hex_digit(p[i])) >= 0 && (lo = num_hex_digit(p[i + 1])) >= 0) {
			c = hi << 4 | lo;
			i += 2;
		}
		if (k >= sizeof(want) - 1 || tolower(c) != want[k++])
			return 0;
	}
	return k == sizeof(want) - 1;
}

static int
password_param(const char *p, const char **value, size_t *vlen)
{
	size_t klen = strcspn(p, "=&");

	if (p[klen] != '=' || !key_is_password(p, klen))
		return 0;
	*value = p + klen + 1;
	*vlen = strcspn(*value, "&");
	return 1;
}

int
store_pg_uri_has_password(const char *uri)
{
	const char *q, *v;
	size_t off, len, vlen;

	user_password(uri, &off, &len);
	if (off != 0)
		return 1;
	q = strchr(uri, '?');
	while (q != NULL) {
		if (password_param(q + 1, &v, &vlen))
			return 1;
		q = strchr(q + 1, '&');
	}
	return 0;
}

/* Append src[0..len) to out at *w, truncating to n (always terminated). */
static void
put(char *out, size_t n, size_t *w, const char *src, size_t len)
{
	size_t room = *w < n ? n - 1 - *w : 0;

	if (len > room)
		len = room;
	memcpy(out + *w, src, len);
	*w += len;
	out[*w] = '\0';
}

const char *
store_pg_mask(const char *uri, char *out, size_t n)
{
	const char *p = uri, *q, *v;
	size_t off, len, vlen, w = 0;

	if (n == 0)
		return out;
	out[0] = '\0';
	user_password(uri, &off, &len);
	if (off != 0) {
		put(out, n, &w, uri, off);
		put(out, n, &w, MASK, strlen(MASK));
		p = uri + off + len;
	}
	q = strchr(p, '?');
	if (q == NULL) {
		put(out, n, &w, p, strlen(p));
		return out;
	}
	put(out, n, &w, p, (size_t)(q - p) + 1);
	for (p = q + 1;;) {
		len = strcspn(p, "&");
		if (password_param(p, &v, &vlen)) {
			put(out, n, &w, p, (size_t)(v - p));
			put(out, n, &w, MASK, strlen(MASK));
		} else {
			put(out, n, &w, p, len);
		}
		if (p[len] == '\0')
			break;
		put(out, n, &w, "&", 1);
		p += len + 1;
	}
	return out;
}
