/* fuzz_http_frame.c - libFuzzer target for http_frame.c: the input is a
 * request head as libmicrohttpd hands it over, one line per item: the
 * request target first, then "name:value" fields. Checks the promises of
 * http_frame.h on every input: a verdict with a reason exactly when it is
 * not OK; a path that is NULL, "*", "/" or a suffix of the target starting
 * with '/'; and that the same fields always give the same verdict.
 * Built only by `make fuzz` (scripts/fuzz). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_frame.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fail(void)
{
	__builtin_trap();
}

/* Feed every "name:value" line after the first (NUL-separated copy). */
static enum http_frame_result
run(char *lines, size_t n, const char **why)
{
	struct http_frame f;
	char *line, *colon;
	size_t i = 0;

	http_frame_init(&f);
	while (i < n) {
		line = lines + i;
		i += strlen(line) + 1;
		if (line == lines)
			continue;		/* the target */
		colon = strchr(line, ':');
		if (colon == NULL)
			continue;
		*colon = '\0';
		http_frame_field(&f, line, colon + 1);
		*colon = ':';
	}
	return http_frame_done(&f, why);
}

static void
check_path(const char *target)
{
	const char *p = http_frame_path(target);
	size_t tl = strlen(target);

	if (p == NULL)
		return;
	if (strcmp(p, "*") == 0 || strcmp(p, "/") == 0)
		return;
	if (p[0] != '/' || p < target || p > target + tl)
		fail();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum http_frame_result a, b;
	const char *why_a, *why_b;
	char *lines;
	size_t i;

	lines = malloc(size + 1);
	if (lines == NULL)
		return 0;
	memcpy(lines, data, size);
	lines[size] = '\0';
	for (i = 0; i < size; i++)
		if (lines[i] == '\n')
			lines[i] = '\0';
	check_path(lines);
	a = run(lines, size + 1, &why_a);
	b = run(lines, size + 1, &why_b);
	if (a != b || why_a != why_b)
		fail();
	if (a != HTTP_FRAME_OK && a != HTTP_FRAME_BAD &&
	    a != HTTP_FRAME_UNSUPPORTED)
		fail();
	if ((a == HTTP_FRAME_OK) != (why_a == NULL))
		fail();
	free(lines);
	return 0;
}
