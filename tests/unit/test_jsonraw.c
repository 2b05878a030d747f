/* test_jsonraw.c - raw value text by path, number grammar, and the blanking
 * of numbers jansson cannot hold (checked against jansson itself). */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "check.h"
#include "jsonraw.h"

/* The raw text at path, as a new string, or NULL. */
static char *
find(const char *text, const char *path)
{
	size_t off = 0, n = 0;
	char *s;

	if (jsonraw_find(text, strlen(text), path, &off, &n) == -1)
		return NULL;
	s = malloc(n + 1);
	if (s == NULL)
		return NULL;
	memcpy(s, text + off, n);
	s[n] = '\0';
	return s;
}

static void
check_find(const char *text, const char *path, const char *want)
{
	char *got = find(text, path);

	if (!CHECK_STR(got, want))
		fprintf(stderr, "  path %s in %s\n", path, text);
	free(got);
}

static void
test_find_values(void)
{
	const char *t = " {\"type\":\"P\", \"data\" : {\"x\":[1,{"
	    "\"cf_payment_id\":"
	    "2}],\"s\":\"a\\\"}b\",\"payment\":{\"cf_payment_id\" :\t"
	    "12345678901234567890123 , \"amount\":1.50e3},\"o\":{}},"
	    "\"last\":null}\n";

	check_find(t, "type", "\"P\"");
	check_find(t, "data.payment.cf_payment_id", "12345678901234567890123");
	check_find(t, "data.payment.amount", "1.50e3");
	check_find(t, "data.s", "\"a\\\"}b\"");
	check_find(t, "data.o", "{}");
	check_find(t, "data.x", "[1,{\"cf_payment_id\":2}]");
	check_find(t, "last", "null");
	/* not there, or not through objects */
	check_find(t, "data.payment.cf", NULL);
	check_find(t, "data.x.cf_payment_id", NULL);
	check_find(t, "data.o.a", NULL);
	check_find(t, "nope", NULL);
	check_find(t, "type.x", NULL);
	check_find("[{\"a\":1}]", "a", NULL);
	check_find("", "a", NULL);
	check_find("{", "a", NULL);
}

/* Keys match after their escapes are decoded, as jansson matches them. */
static void
test_find_escaped_keys(void)
{
	check_find("{\"a\\u005fb\":7}", "a_b", "7");
	check_find("{\"a\\/b\":7}", "a/b", "7");
	check_find("{\"\\u0061\":{\"\\u0062\":-0.5}}", "a.b", "-0.5");
	check_find("{\"a\\u00e9\":1,\"a\":2}", "a", "2");
	check_find("{\"ab\":1,\"a\":2}", "a", "2");
	check_find("{\"a\":1,\"ab\":2}", "ab", "2");
	check_find("{\"a\\\"\":1,\"a\":3}", "a", "3");
}

/* jansson accepts one NUL byte right after a number or literal (found by
 * fuzzing), which is why event_parse_json() refuses any body holding a raw
 * NUL before jansson sees it (test_event.c). jsonraw_find() stays in bounds
 * on such text and does not look past the NUL. */
static void
test_find_stops_at_nul(void)
{
	static const char t[] = "{\"a\":2\0,\"n\":true\0,\"b\":{\"c\":\"x\"}}";
	size_t off = 0, n = 0, len = sizeof(t) - 1;
	json_error_t err;
	json_t *j;

	j = json_loadb(t, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
	CHECK(j != NULL);		/* what jansson does, as of 2.14 */
	json_decref(j);
	CHECK(jsonraw_find(t, len, "a", &off, &n) == 0 && off == 5 && n == 1);
	CHECK(jsonraw_find(t, len, "b.c", &off, &n) == -1);
}

/* Lone surrogate escapes make jansson refuse a whole body: the tamed copy
 * turns exactly those into \u0000 (same length); pairs and other escapes
 * stay. */
static void
test_tame_lone_surrogates(void)
{
	static const struct {
		const char *in;
		const char *out;
	} cases[] = {
		{ "{\"n\":\"\\ud83d\"}", "{\"n\":\"\\u0000\"}" },
		{ "{\"n\":\"a\\uDC00b\"}", "{\"n\":\"a\\u0000b\"}" },
		{ "{\"n\":\"\\ud83d\\ude00\"}", "{\"n\":\"\\ud83d\\ude00\"}" },
		{ "{\"n\":\"\\ud83d\\u0041\"}", "{\"n\":\"\\u0000\\u0041\"}" },
		{ "{\"n\":\"\\ude00\\ud83d\"}", "{\"n\":\"\\u0000\\u0000\"}" },
		{ "{\"n\":\"\\\\ud83d\"}", "{\"n\":\"\\\\ud83d\"}" },
		{ "{\"n\":\"\\u00e9\\ud8\"}", "{\"n\":\"\\u00e9\\ud8\"}" },
		{ "{\"n\":\"\\ud83d", "{\"n\":\"\\u0000" },
	};
	size_t i;
	char *t;
	int changed;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		t = jsonraw_tame(cases[i].in, strlen(cases[i].in), &changed);
		if (!CHECK(t != NULL))
			continue;
		if (!CHECK_STR(t, cases[i].out))
			fprintf(stderr, "  case %zu\n", i);
		CHECK_INT(changed, strcmp(cases[i].in, cases[i].out) != 0);
		free(t);
	}
}

/* Truncated or hostile text: no match, and never a read past the end
 * (the asan build checks that; each text is copied to an exact-size
 * allocation). */
static void
test_find_truncated(void)
{
	static const char *texts[] = {
		"{\"a\":{\"b\":",
		"{\"a\":{\"b\"",
		"{\"a\":{\"b",
		"{\"a\":{\"",
		"{\"a\":{",
		"{\"a\":",
		"{\"a\"",
		"{\"a\\",
		"{\"a\\u00",
		"{\"x\":\"\\",
		"{\"x\":[[[[[",
		"{\"x\":1,",
		"{\"x\":1 \"a\":2}",
		"{\"x\" 1}",
	};
	size_t i, off, n, len;
	char *copy;

	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		len = strlen(texts[i]);
		copy = malloc(len);
		if (!CHECK(copy != NULL))
			return;
		memcpy(copy, texts[i], len);
		CHECK(jsonraw_find(copy, len, "a.b", &off, &n) == -1);
		free(copy);
	}
}

static void
test_number_grammar(void)
{
	static const char *yes[] = { "0", "-0", "1", "-12", "1.5", "0.0",
	    "1e5", "1E+5", "-1.25e-3", "12345678901234567890123" };
	static const char *no[] = { "", "-", "01", "-01", "1.", ".5", "1e",
	    "1e+", "+1", "1.5.5", "0x10", "1 ", "NaN", "--1" };
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (!CHECK(jsonraw_is_number(yes[i], strlen(yes[i]))))
			fprintf(stderr, "  '%s'\n", yes[i]);
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (!CHECK(!jsonraw_is_number(no[i], strlen(no[i]))))
			fprintf(stderr, "  '%s'\n", no[i]);
	CHECK(jsonraw_is_integer("-12", 3));
	CHECK(!jsonraw_is_integer("1.0", 3));
	CHECK(!jsonraw_is_integer("1e3", 3));
	CHECK(!jsonraw_is_integer("01", 2));
}

/* What jansson itself says about the text. */
static int
jansson_ok(const char *t, size_t len, int *overflow)
{
	json_error_t err;
	json_t *j;

	j = json_loadb(t, len, JSON_REJECT_DUPLICATES, &err);
	*overflow = j == NULL &&
	    json_error_code(&err) == json_error_numeric_overflow;
	json_decref(j);
	return j != NULL;
}

static void
check_tame(const char *in, const char *want, int want_changed)
{
	int changed = -1, overflow = 0;
	char *t;

	t = jsonraw_tame(in, strlen(in), &changed);
	if (!CHECK(t != NULL))
		return;
	if (!CHECK_STR(t, want) || !CHECK_INT(changed, want_changed))
		fprintf(stderr, "  tame of %s\n", in);
	CHECK_INT(strlen(t), strlen(in));	/* same offsets */
	if (want_changed) {
		CHECK(!jansson_ok(in, strlen(in), &overflow) && overflow);
		CHECK(jansson_ok(t, strlen(t), &overflow));
	}
	free(t);
}

static void
test_tame(void)
{
	check_tame("{\"a\":9223372036854775807,\"b\":-9223372036854775808}",
	    "{\"a\":9223372036854775807,\"b\":-9223372036854775808}", 0);
	check_tame("{\"a\":9223372036854775808}",
	    "{\"a\":null               }", 1);
	check_tame("{\"a\":-9223372036854775809}",
	    "{\"a\":null                }", 1);
	check_tame("{\"a\":[1e309,2e-400,1.5]}",
	    "{\"a\":[null ,2e-400,1.5]}", 1);
	check_tame("{\"a\":-1E+400}", "{\"a\":null   }", 1);
	/* inside strings nothing changes, also after escaped quotes */
	check_tame("{\"k\\\"99999999999999999999\":\"1e999\"}",
	    "{\"k\\\"99999999999999999999\":\"1e999\"}", 0);
	/* not a JSON number: left for jansson to refuse */
	check_tame("{\"a\":0199999999999999999999}",
	    "{\"a\":0199999999999999999999}", 0);
	check_tame("{\"a\":1.e999}", "{\"a\":1.e999}", 0);
	check_tame("", "", 0);
}

/* The token is what jansson's lexer reads: the longest valid prefix, so
 * "8e625" in "8e625ecd" (found by fuzzing). The text stays invalid, but no
 * longer for a number jansson cannot hold. */
static void
test_tame_greedy_token(void)
{
	const char *in = "{\"a\":\"x\"8e625ecd,\"b\":1}";
	int changed = 0, overflow = 0;
	char *t;

	CHECK(!jansson_ok(in, strlen(in), &overflow) && overflow);
	t = jsonraw_tame(in, strlen(in), &changed);
	if (!CHECK(t != NULL))
		return;
	CHECK(changed);
	CHECK_STR(t, "{\"a\":\"x\"null ecd,\"b\":1}");
	CHECK(!jansson_ok(t, strlen(t), &overflow) && !overflow);
	free(t);
}

/* Embedded NUL bytes and bytes past a quote at the very end. */
static void
test_tame_odd_bytes(void)
{
	const char in[] = "{\"a\":99999999999999999999\0\"";
	int changed = 0;
	char *t;

	t = jsonraw_tame(in, sizeof(in) - 1, &changed);
	if (!CHECK(t != NULL))
		return;
	CHECK(changed);
	CHECK(memcmp(t, "{\"a\":null                \0\"", sizeof(in) - 1)
	    == 0);
	CHECK(t[sizeof(in) - 1] == '\0');
	free(t);
}

int
main(void)
{
	RUN(test_find_values);
	RUN(test_find_escaped_keys);
	RUN(test_find_stops_at_nul);
	RUN(test_tame_lone_surrogates);
	RUN(test_find_truncated);
	RUN(test_number_grammar);
	RUN(test_tame);
	RUN(test_tame_greedy_token);
	RUN(test_tame_odd_bytes);
	return check_finish("test_jsonraw");
}
