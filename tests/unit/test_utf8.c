/* test_utf8.c - the one UTF-8 validator: a table of sequences at every
 * boundary of RFC 3629's table of well-formed byte sequences. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "utf8.h"

static const struct {
	const char *s;
	size_t n;
	int valid;		/* utf8_valid */
	int text;		/* utf8_text */
} cases[] = {
	{ "", 0, 1, 1 },
	{ "abc", 3, 1, 1 },
	{ "a\0b", 3, 1, 0 },			/* NUL: valid, not text */
	{ "\x7f", 1, 1, 1 },
	{ "\x80", 1, 0, 0 },			/* stray continuation */
	{ "\xbf", 1, 0, 0 },
	{ "\xc0\x80", 2, 0, 0 },		/* overlong NUL */
	{ "\xc1\xbf", 2, 0, 0 },		/* overlong */
	{ "\xc2\x80", 2, 1, 1 },		/* U+0080 */
	{ "\xc2\x7f", 2, 0, 0 },
	{ "\xc2", 1, 0, 0 },			/* truncated */
	{ "\xdf\xbf", 2, 1, 1 },		/* U+07FF */
	{ "\xe0\x9f\xbf", 3, 0, 0 },		/* overlong */
	{ "\xe0\xa0\x80", 3, 1, 1 },		/* U+0800 */
	{ "\xe2\x82\xb9", 3, 1, 1 },		/* the rupee sign */
	{ "\xed\x9f\xbf", 3, 1, 1 },		/* U+D7FF */
	{ "\xed\xa0\x80", 3, 0, 0 },		/* U+D800, a surrogate */
	{ "\xed\xbf\xbf", 3, 0, 0 },		/* U+DFFF */
	{ "\xee\x80\x80", 3, 1, 1 },		/* U+E000 */
	{ "\xef\xbf\xbf", 3, 1, 1 },		/* U+FFFF */
	{ "\xe2\x82", 2, 0, 0 },		/* truncated */
	{ "\xe2\x28\xa1", 3, 0, 0 },
	{ "\xe2\x82\x28", 3, 0, 0 },
	{ "\xf0\x8f\xbf\xbf", 4, 0, 0 },	/* overlong */
	{ "\xf0\x90\x80\x80", 4, 1, 1 },	/* U+10000 */
	{ "\xf0\x9f\x98\x80", 4, 1, 1 },	/* an emoji */
	{ "\xf4\x8f\xbf\xbf", 4, 1, 1 },	/* U+10FFFF */
	{ "\xf4\x90\x80\x80", 4, 0, 0 },	/* past U+10FFFF */
	{ "\xf5\x80\x80\x80", 4, 0, 0 },
	{ "\xff", 1, 0, 0 },
	{ "\xf0\x9f\x98", 3, 0, 0 },		/* truncated */
	{ "\xf0\x9f\x98\x28", 4, 0, 0 },
	{ "caf\xc3\xa9 \xe2\x82\xb9" "55.00", 13, 1, 1 },
};

static void
test_table(void)
{
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (!CHECK_INT(utf8_valid(cases[i].s, cases[i].n),
		    cases[i].valid) ||
		    !CHECK_INT(utf8_text(cases[i].s, cases[i].n),
		    cases[i].text))
			fprintf(stderr, "  case %zu\n", i);
	}
}

static void
test_seq_lengths(void)
{
	CHECK_INT(utf8_seq((const unsigned char *)"a", 1), 1);
	CHECK_INT(utf8_seq((const unsigned char *)"\xc3\xa9x", 3), 2);
	CHECK_INT(utf8_seq((const unsigned char *)"\xe2\x82\xb9", 3), 3);
	CHECK_INT(utf8_seq((const unsigned char *)"\xf0\x9f\x98\x80", 4), 4);
	/* never reads past n */
	CHECK_INT(utf8_seq((const unsigned char *)"\xf0\x9f\x98\x80", 3), 0);
	CHECK_INT(utf8_seq((const unsigned char *)"\xed\xa0\x80", 3), 0);
}

/* Every two-byte value, compared with the arithmetic definition. */
static void
test_every_two_bytes(void)
{
	unsigned char b[2];
	unsigned a, c, cp;
	int want, bad = 0;

	for (a = 0; a < 256; a++) {
		for (c = 0; c < 256; c++) {
			b[0] = (unsigned char)a;
			b[1] = (unsigned char)c;
			if (a < 0x80)
				want = c < 0x80;	/* two ASCII bytes */
			else if (a >= 0xc0 && a < 0xe0 && c >= 0x80 &&
			    c < 0xc0) {
				cp = (a & 0x1f) << 6 | (c & 0x3f);
				want = cp >= 0x80;
			} else {
				want = 0;
			}
			bad += utf8_valid((const char *)b, 2) != want;
		}
	}
	CHECK_INT(bad, 0);
}

/* The ASCII fast path reads eight bytes at a time: a sequence or a bad
 * byte at every offset of a longer text is still seen. */
static void
test_every_offset(void)
{
	char t[40];
	size_t at;

	for (at = 0; at + 4 <= sizeof(t); at++) {
		memset(t, 'a', sizeof(t));
		memcpy(t + at, "\xf0\x9f\x98\x80", 4);
		if (!CHECK(utf8_valid(t, sizeof(t))))
			fprintf(stderr, "  emoji at %zu\n", at);
		t[at + 3] = 'x';		/* truncated sequence */
		if (!CHECK(!utf8_valid(t, sizeof(t))))
			fprintf(stderr, "  bad at %zu\n", at);
		memset(t, 'a', sizeof(t));
		t[at] = '\0';
		CHECK(utf8_valid(t, sizeof(t)) && !utf8_text(t, sizeof(t)));
	}
}

int
main(void)
{
	RUN(test_table);
	RUN(test_seq_lengths);
	RUN(test_every_two_bytes);
	RUN(test_every_offset);
	return check_finish("test_utf8");
}
