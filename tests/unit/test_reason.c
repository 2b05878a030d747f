/* test_reason.c - quoting a line from outside into a failure reason:
 * printable text and valid UTF-8 kept, control bytes and broken UTF-8
 * escaped, the bound held (escapes included), the buffer never overrun. */
#include <string.h>

#include "check.h"
#include "reason.h"

static const char *
quoted(char *buf, size_t cap, const char *prefix, const char *p, size_t n)
{
	(void)snprintf(buf, cap, "%s", prefix);
	reason_append_quoted(buf, cap, p, n);
	return buf;
}

static void
test_cases(void)
{
	static const struct {
		const char *in;
		size_t	 n;
		const char *want;
	} cases[] = {
		{ "shop API down", 13, "x: shop API down" },
		{ "tab\there\r", 9, "x: tab\\x09here\\x0d" },
		{ "nul\0byte", 8, "x: nul\\x00byte" },
		{ "del\x7f", 4, "x: del\\x7f" },
		/* valid UTF-8 stays: e-acute, devanagari ka, an emoji */
		{ "caf\xc3\xa9 \xe0\xa4\x95 \xf0\x9f\x92\xb8", 14,
		  "x: caf\xc3\xa9 \xe0\xa4\x95 \xf0\x9f\x92\xb8" },
		/* broken: a lone continuation, an overlong '/', a surrogate,
		 * past U+10FFFF, a sequence cut short */
		{ "\x80", 1, "x: \\x80" },
		{ "\xc0\xaf", 2, "x: \\xc0\\xaf" },
		{ "\xed\xa0\x80", 3, "x: \\xed\\xa0\\x80" },
		{ "\xf4\x90\x80\x80", 4, "x: \\xf4\\x90\\x80\\x80" },
		{ "\xe2\x82", 2, "x: \\xe2\\x82" },
		{ "", 0, "x: " },
	};
	char buf[512];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK_STR(quoted(buf, sizeof(buf), "x: ", cases[i].in,
		    cases[i].n), cases[i].want);
}

/* A long line adds at most REASON_QUOTE_MAX bytes, ends in "...", and is
 * cut between characters, never inside an escape or a UTF-8 sequence. */
static void
test_bound(void)
{
	char in[1000], buf[1024];
	size_t i;

	memset(in, 'a', sizeof(in));
	CHECK_INT(strlen(quoted(buf, sizeof(buf), "exit 1: ", in,
	    sizeof(in))), 8 + REASON_QUOTE_MAX);
	CHECK(strcmp(buf + strlen(buf) - 3, "...") == 0);
	memset(in, 0x01, sizeof(in));
	(void)quoted(buf, sizeof(buf), "", in, sizeof(in));
	CHECK(strlen(buf) <= REASON_QUOTE_MAX);
	CHECK(strlen(buf) >= REASON_QUOTE_MAX - 6);
	CHECK_INT((strlen(buf) - 3) % 4, 0);	/* whole escapes only */
	for (i = 0; i + 1 < sizeof(in); i += 2) {
		in[i] = '\xc3';
		in[i + 1] = '\xa9';
	}
	(void)quoted(buf, sizeof(buf), "", in, sizeof(in));
	CHECK_INT((strlen(buf) - 3) % 2, 0);	/* whole characters only */
	/* exactly at the bound: nothing cut, no "..." */
	memset(in, 'b', REASON_QUOTE_MAX);
	CHECK_INT(strlen(quoted(buf, sizeof(buf), "", in, REASON_QUOTE_MAX)),
	    REASON_QUOTE_MAX - 3 + 3);
}

/* A small buffer: never overrun, always terminated. */
static void
test_small_buffer(void)
{
	char buf[16];

	memset(buf, 'Z', sizeof(buf));
	(void)quoted(buf, 12, "ab: ", "0123456789", 10);
	CHECK_STR(buf, "ab: 0123...");
	CHECK(buf[12] == 'Z');
	(void)quoted(buf, 6, "abcde", "x", 1);
	CHECK_STR(buf, "abcde");
	(void)quoted(buf, 3, "", "xyz", 3);
	CHECK_STR(buf, "");
}

int
main(void)
{
	RUN(test_cases);
	RUN(test_bound);
	RUN(test_small_buffer);
	return check_finish("test_reason");
}
