/* utf8.c - strict UTF-8 (RFC 3629 section 4, the table of well-formed
 * byte sequences).
 *
 * Pure: no I/O, no allocation. The second byte's range depends on the
 * first (that is where overlongs, surrogates and code points past U+10FFFF
 * are refused); every later byte is a plain continuation byte. */
#include <stdint.h>
#include <string.h>

#include "utf8.h"

size_t
utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len, k;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		if (s[0] == 0xe0)
			lo = 0xa0;		/* overlong */
		else if (s[0] == 0xed)
			hi = 0x9f;		/* surrogates */
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		if (s[0] == 0xf0)
			lo = 0x90;		/* overlong */
		else if (s[0] == 0xf4)
			hi = 0x8f;		/* past U+10FFFF */
	} else {
		return 0;	/* a continuation byte, C0, C1, F5..FF */
	}
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (k = 2; k < len; k++) {
		if (s[k] < 0x80 || s[k] > 0xbf)
			return 0;
	}
	return len;
}

/* Bytes before the first non-ASCII one in p[0..n), eight at a time:
 * webhook bodies are mostly ASCII, and this is on the intake path. */
static size_t
ascii_run(const unsigned char *p, size_t n)
{
	size_t i = 0;
	uint64_t w;

	while (n - i >= sizeof(w)) {
		memcpy(&w, p + i, sizeof(w));
		if ((w & UINT64_C(0x8080808080808080)) != 0)
			break;
		i += sizeof(w);
	}
	while (i < n && p[i] < 0x80)
		i++;
	return i;
}

int
utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, l;

	while (i < n) {
		i += ascii_run(p + i, n - i);
		if (i == n)
			break;
		l = utf8_seq(p + i, n - i);
		if (l == 0)
			return 0;
		i += l;
	}
	return 1;
}

int
utf8_text(const char *s, size_t n)
{
	return memchr(s, '\0', n) == NULL && utf8_valid(s, n);
}
