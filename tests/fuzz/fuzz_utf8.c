/* fuzz_utf8.c - libFuzzer target: utf8.c against a decoder written the
 * other way round (decode every sequence to a code point, refuse what RFC
 * 3629 refuses, encode it again and demand the same bytes). For any input
 * utf8_valid() must agree, utf8_text() must be utf8_valid() without NUL, and
 * utf8_seq() must give exactly the lengths the oracle walks. Not built by
 * plain make. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t
encode(uint32_t cp, unsigned char out[4])
{
	if (cp < 0x80) {
		out[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (unsigned char)(0xc0 | cp >> 6);
		out[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (unsigned char)(0xe0 | cp >> 12);
		out[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		out[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (unsigned char)(0xf0 | cp >> 18);
	out[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
	out[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
	out[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

/* The oracle: length of the sequence at s, or 0. */
static size_t
oracle(const unsigned char *s, size_t n)
{
	unsigned char again[4];
	size_t len, k;
	uint32_t cp;

	if ((s[0] & 0x80) == 0)
		len = 1;
	else if ((s[0] & 0xe0) == 0xc0)
		len = 2;
	else if ((s[0] & 0xf0) == 0xe0)
		len = 3;
	else if ((s[0] & 0xf8) == 0xf0)
		len = 4;
	else
		return 0;
	if (n < len)
		return 0;
	cp = len == 1 ? s[0] : (uint32_t)(s[0] & (0x7f >> len));
	for (k = 1; k < len; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[k] & 0x3f);
	}
	if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	if (encode(cp, again) != len || memcmp(again, s, len) != 0)
		return 0;		/* overlong */
	return len;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	size_t i = 0, l, o;
	int want = 1;

	while (i < size) {
		l = utf8_seq(data + i, size - i);
		o = oracle(data + i, size - i);
		if (l != o)
			abort();
		if (l == 0) {
			want = 0;
			break;
		}
		i += l;
	}
	if (utf8_valid(s, size) != want)
		abort();
	if (utf8_text(s, size) != (want && memchr(s, 0, size) == NULL))
		abort();
	return 0;
}
