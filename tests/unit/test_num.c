/* test_num.c - strict integer/mode/timestamp parsing and shortest round-trip
 * decimal printing. */
#include <float.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "num.h"

static void
test_parse_u64_accepts(void)
{
	static const struct {
		const char *s;
		uint64_t want;
	} cases[] = {
		{ "0", 0 },
		{ "1", 1 },
		{ "007", 7 },
		{ "262144", 262144 },
		{ "18446744073709551615", UINT64_MAX },
	};
	uint64_t v;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = 12345;
		if (!CHECK_INT(num_parse_u64(cases[i].s, 0, UINT64_MAX, &v), 0))
			fprintf(stderr, "  input \"%s\"\n", cases[i].s);
		CHECK(v == cases[i].want);
	}
}

static void
test_parse_u64_rejects(void)
{
	static const char *bad[] = {
		"", "+1", "-1", " 1", "1 ", "0x10", "1e3", "1.0", "12a",
		"18446744073709551616", "99999999999999999999", "1\n", "\t1",
		"１",
	};
	uint64_t v = 777;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (!CHECK_INT(num_parse_u64(bad[i], 0, UINT64_MAX, &v), -1))
			fprintf(stderr, "  input \"%s\"\n", bad[i]);
	}
	CHECK_INT(num_parse_u64(NULL, 0, UINT64_MAX, &v), -1);
	/* *ret is written only on success. */
	CHECK(v == 777);
}

static void
test_parse_u64_range(void)
{
	uint64_t v = 0;

	CHECK_INT(num_parse_u64("5", 1, 10, &v), 0);
	CHECK(v == 5);
	CHECK_INT(num_parse_u64("1", 1, 10, &v), 0);
	CHECK_INT(num_parse_u64("10", 1, 10, &v), 0);
	CHECK_INT(num_parse_u64("0", 1, 10, &v), -1);
	CHECK_INT(num_parse_u64("11", 1, 10, &v), -1);
	CHECK(v == 10);
}

static void
test_parse_mode(void)
{
	static const struct {
		const char *s;
		int rc;
		unsigned want;
	} cases[] = {
		{ "0660", 0, 0660 }, { "600", 0, 0600 }, { "0", 0, 0 },
		{ "7777", 0, 07777 }, { "0777", 0, 0777 },
		{ "", -1, 0 }, { "0668", -1, 0 }, { "08", -1, 0 },
		{ "17777", -1, 0 }, { "00660", -1, 0 }, { "+660", -1, 0 },
		{ " 660", -1, 0 }, { "660 ", -1, 0 }, { "0x1", -1, 0 },
	};
	unsigned v;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = 4242;
		if (!CHECK_INT(num_parse_mode(cases[i].s, &v), cases[i].rc))
			fprintf(stderr, "  input \"%s\"\n", cases[i].s);
		CHECK(v == (cases[i].rc == 0 ? cases[i].want : 4242));
	}
	CHECK_INT(num_parse_mode(NULL, &v), -1);
}

static void
test_is_timestamp(void)
{
	static const struct {
		const char *s;
		int want;
	} cases[] = {
		{ "1746427759733", 1 }, { "1746427759", 1 },
		{ "0000000000", 1 }, { "9999999999999", 1 },
		{ "", 0 }, { "174642775", 0 }, { "17464277597", 0 },
		{ "174642775973", 0 }, { "17464277597330", 0 },
		{ "+746427759733", 0 }, { "-746427759733", 0 },
		{ " 746427759733", 0 }, { "174642775973 ", 0 },
		{ "1746427759.73", 0 }, { "1746427759e3", 0 },
		{ "174642775973a", 0 }, { "0x1746427759", 0 },
		{ "1746427759733\n", 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (!CHECK_INT(num_is_timestamp(cases[i].s), cases[i].want))
			fprintf(stderr, "  input \"%s\"\n", cases[i].s);
	}
	CHECK_INT(num_is_timestamp(NULL), 0);
}

static void
test_timestamp_ms(void)
{
	CHECK(num_timestamp_ms("1746427759733") == INT64_C(1746427759733));
	CHECK(num_timestamp_ms("1746427759") == INT64_C(1746427759000));
	CHECK(num_timestamp_ms("0000000000") == 0);
	CHECK(num_timestamp_ms("9999999999") == INT64_C(9999999999000));
	CHECK(num_timestamp_ms("9999999999999") == INT64_C(9999999999999));
	/* 13 digits below 1e11 are still read as seconds (spec section 11). */
	CHECK(num_timestamp_ms("0099999999999") == INT64_C(99999999999000));
	CHECK(num_timestamp_ms("0100000000000") == INT64_C(100000000000));
}

static void
test_format_double_table(void)
{
	static const struct {
		double v;
		const char *want;
	} cases[] = {
		{ 170.0, "170" }, { 1.8, "1.8" }, { 0.1, "0.1" },
		{ 1e-7, "0.0000001" }, { -0.0, "0" }, { 0.0, "0" },
		{ -2.5, "-2.5" }, { 2.0, "2" }, { 1.0, "1" },
		{ 97.94, "97.94" },
		{ 0.3, "0.3" }, { 2.675, "2.675" }, { 100.0, "100" },
		{ 1.0 / 3.0, "0.3333333333333333" },
		{ 0.1 + 0.2, "0.30000000000000004" },
		{ 123456789.123, "123456789.123" },
		{ 9007199254740993.0, "9007199254740992" },
		{ 1e20, "100000000000000000000" },
		{ 123e18, "123000000000000000000" },
		{ 999999999999999900000.0, "999999999999999900000" },
		{ 1e21, "1e+21" }, { -1.5e300, "-1.5e+300" },
		{ 1.23e-18, "0.00000000000000000123" },
		{ 5e-324, NULL },	/* checked by length below */
	};
	char out[512];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (cases[i].want == NULL)
			continue;
		CHECK_INT(num_format_double(cases[i].v, out, sizeof(out)), 0);
		CHECK_STR(out, cases[i].want);
	}
	CHECK_INT(num_format_double(5e-324, out, sizeof(out)), 0);
	CHECK(strncmp(out, "0.000", 5) == 0);
	CHECK_INT(strlen(out), 2 + 323 + 1);
	CHECK(out[strlen(out) - 1] == '5');
	CHECK(strtod(out, NULL) == 5e-324);
}

static void
test_format_double_limits(void)
{
	char out[8];
	char big[400];

	memset(out, 'x', sizeof(out));
	CHECK_INT(num_format_double(1.0 / 0.0, out, sizeof(out)), -1);
	CHECK_INT(num_format_double(-1.0 / 0.0, out, sizeof(out)), -1);
	CHECK_INT(num_format_double(0.0 / 0.0, out, sizeof(out)), -1);
	/* "170" needs 4 bytes with its NUL. */
	CHECK_INT(num_format_double(170.0, out, 4), 0);
	CHECK_STR(out, "170");
	CHECK_INT(num_format_double(170.0, out, 3), -1);
	CHECK_INT(num_format_double(-2.5, out, 5), 0);
	CHECK_STR(out, "-2.5");
	CHECK_INT(num_format_double(-2.5, out, 4), -1);
	CHECK_INT(num_format_double(1.0, out, 0), -1);
	CHECK_INT(num_format_double(1e-7, out, sizeof(out)), -1);
	CHECK_INT(num_format_double(DBL_MAX, big, sizeof(big)), 0);
	CHECK_STR(big, "1.7976931348623157e+308");
}

/* xorshift64: deterministic pseudo-random bits, the same on every run. */
static uint64_t
next_bits(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Minimal: one fewer significant digit must not read back to v. */
static int
digits_are_minimal(double v, const char *text)
{
	char tmp[64];
	int sig = 0, lead = 1;
	const char *p;

	for (p = text; *p != '\0' && *p != 'e'; p++) {
		if (*p < '0' || *p > '9' || (lead && *p == '0'))
			continue;
		lead = 0;
		sig++;
	}
	/* Trailing zeros of an integer are not significant digits. */
	if (strchr(text, '.') == NULL && strchr(text, 'e') == NULL)
		for (p = text + strlen(text) - 1; p > text && *p == '0'; p--)
			sig--;
	if (sig <= 1)
		return 1;
	(void)snprintf(tmp, sizeof(tmp), "%.*e", sig - 2, v);
	return strtod(tmp, NULL) != v;
}

static void
test_format_double_round_trip(void)
{
	uint64_t seed = 0x9e3779b97f4a7c15u, bits;
	char out[512];
	double v, scales[] = { 1e-9, 1e-3, 1.0, 1e3, 1e9, 1e15, 1e20 };
	int i, fails = 0;

	for (i = 0; i < 20000; i++) {
		bits = next_bits(&seed);
		if (i % 2 == 0) {
			/* Random bit patterns: every exponent. */
			memcpy(&v, &bits, sizeof(v));
			if (v != v || v - v != 0.0)
				continue;
		} else {
			/* Amount-like values. */
			v = (double)(bits % 100000000) / 100.0 *
			    scales[(bits >> 40) % 7];
		}
		if (num_format_double(v, out, sizeof(out)) != 0 ||
		    strtod(out, NULL) != v ||
		    ((v < 1e21 && v > -1e21) && strchr(out, 'e') != NULL) ||
		    !digits_are_minimal(v, out)) {
			if (fails++ < 5)
				fprintf(stderr, "  %.17g -> \"%s\"\n", v, out);
		}
	}
	CHECK_INT(fails, 0);
}

/* Exact decimal comparison: the value, never the text or a double. */
static void
test_decimal_cmp(void)
{
	static const struct {
		const char *a, *b;
		int want;		/* sign; 2: not a number */
	} cases[] = {
		{ "100", "100.00", 0 }, { "100", "1e2", 0 }, { "1E2", "100.0", 0 },
		{ "99.99", "100", -1 }, { "100.01", "100", 1 },
		{ "0.10", "0.1", 0 }, { "0.05", "0.5", -1 }, { "00.50", "0.5", 0 },
		{ "0", "-0", 0 }, { "0", "0.000", 0 }, { "-1", "0", -1 },
		{ "-1", "-2", 1 }, { "-2.5", "-2.50", 0 }, { "0", "1e-9", -1 },
		{ "170.00", "170", 0 }, { "1.8", "1.80", 0 },
		{ "12345678901234567890.5", "12345678901234567890.50", 0 },
		{ "12345678901234567890.5", "12345678901234567890.49", 1 },
		{ "0.30000000000000004", "0.3", 1 },
		{ "2.5e-1", "0.25", 0 }, { "25e-2", "0.25", 0 },
		{ "", "1", 2 }, { "1.", "1", 2 }, { ".5", "0.5", 2 },
		{ "1e", "1", 2 }, { "1..2", "1", 2 }, { "+1", "1", 2 },
		{ " 1", "1", 2 }, { "1x", "1", 2 }, { "-", "0", 2 },
		{ "1.2.3", "1", 2 }, { "0x10", "16", 2 },
	};
	size_t i;
	int c, rc;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		c = 7;
		rc = num_decimal_cmp(cases[i].a, cases[i].b, &c);
		if (cases[i].want == 2) {
			if (!CHECK_INT(rc, -1))
				fprintf(stderr, "  %s vs %s\n", cases[i].a,
				    cases[i].b);
			continue;
		}
		if (!CHECK_INT(rc, 0) ||
		    !CHECK_INT(c < 0 ? -1 : c > 0 ? 1 : 0, cases[i].want))
			fprintf(stderr, "  %s vs %s\n", cases[i].a, cases[i].b);
		/* and the other way round */
		CHECK_INT(num_decimal_cmp(cases[i].b, cases[i].a, &c), 0);
		CHECK_INT(c < 0 ? -1 : c > 0 ? 1 : 0, -cases[i].want);
	}
	CHECK_INT(num_decimal_cmp(NULL, "1", &c), -1);
}

int
main(void)
{
	RUN(test_parse_u64_accepts);
	RUN(test_parse_u64_rejects);
	RUN(test_parse_u64_range);
	RUN(test_parse_mode);
	RUN(test_is_timestamp);
	RUN(test_timestamp_ms);
	RUN(test_format_double_table);
	RUN(test_format_double_limits);
	RUN(test_format_double_round_trip);
	RUN(test_decimal_cmp);
	return check_finish("test_num");
}
