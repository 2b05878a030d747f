/* reason.c - quote a line from outside into a failure reason (reason.h).
 *
 * Pure: no I/O, no allocation. Must not let a byte through that would end
 * the line, fail to decode as UTF-8 (a reason is stored as TEXT and read by
 * sqlite3, Python, jq ...), or make the reason grow past its bound. */
#include <string.h>

#include "reason.h"

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0 when the
 * bytes there are not one (RFC 3629: no overlong forms, no surrogates,
 * nothing past U+10FFFF). */
static size_t
utf8_len(const unsigned char *p, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (p[0] == 0xe0)
		lo = 0xa0;
	else if (p[0] == 0xed)
		hi = 0x9f;
	else if (p[0] == 0xf0)
		lo = 0x90;
	else if (p[0] == 0xf4)
		hi = 0x8f;
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < len; i++) {
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	}
	return len;
}

void
reason_append_quoted(char *out, size_t cap, const char *in, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)in;
	size_t o = strnlen(out, cap), room, i = 0, len;

	if (cap < 4 || o >= cap - 4)
		return;		/* no room for anything, "..." included */
	room = cap - 4 - o;	/* keeps "..." and the NUL */
	if (room > REASON_QUOTE_MAX - 3)
		room = REASON_QUOTE_MAX - 3;
	room += o;
	while (i < n) {
		if (p[i] >= 0x20 && p[i] < 0x7f) {
			len = 1;
			if (o + 1 > room)
				break;
			out[o++] = (char)p[i];
		} else if ((len = utf8_len(p + i, n - i)) > 0) {
			if (o + len > room)
				break;
			memcpy(out + o, p + i, len);
			o += len;
		} else {
			len = 1;
			if (o + 4 > room)
				break;
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[p[i] >> 4];
			out[o++] = hex[p[i] & 0x0f];
		}
		i += len;
	}
	if (i < n) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}
