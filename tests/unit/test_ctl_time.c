/* test_ctl_time.c - DATE parsing and RFC 3339 printing of cfhookctl. */
#include <stdint.h>

#include "check.h"
#include "ctl_time.h"

static const struct {
	const char *in;
	int64_t ms;
	int local;		/* no zone named: the caller places it */
} good[] = {
	{ "1970-01-01", 0, 1 },
	{ "1970-01-02", 86400000LL, 1 },
	{ "2025-05-05", 1746403200000LL, 1 },
	{ "2025-05-05T06:49:19Z", 1746427759000LL, 0 },
	{ "2025-05-05T06:49:19", 1746427759000LL, 1 },
	{ "2025-05-05T12:19:19+05:30", 1746427759000LL, 0 },
	{ "2025-05-05T02:49:19-04:00", 1746427759000LL, 0 },
	{ "2025-05-05T06:49:19+00:00", 1746427759000LL, 0 },
	{ "2024-02-29", 1709164800000LL, 1 },
	{ "2000-02-29T23:59:59Z", 951868799000LL, 0 },
	{ "2023-12-31T23:59:59Z", 1704067199000LL, 0 },
	{ "1746427759", 1746427759000LL, 0 },
	{ "0", 0, 0 },
	{ "9999-12-31T23:59:59Z", 253402300799000LL, 0 },
};

static const char *const bad[] = {
	"", "2024-02-30", "2023-02-29", "1900-02-29", "2025-13-01",
	"2025-00-10", "2025-01-00", "2025-04-31", "1969-12-31", "2025-5-5",
	"2025/05/05", "2025-05-05T06:49:19+5:30", "2025-05-05T06:49:19+0530",
	"2025-05-05T06:49:19+24:00", "2025-05-05T06:49:19+05:60",
	"2025-05-05T06:49:19 05:30", "2025-05-05+05:30", "2025-05-05Z",
	"1970-01-01T00:00:00+05:30", "2025-05-05T24:00:00Z", "2025-05-05T06:60:00Z", "2025-05-05T06:49:60Z",
	"2025-05-05 06:49:19Z", "2025-05-05T06:49:19.733Z", " 1746427759",
	"1746427759 ", "+1746427759", "-1", "1746427759000000", "yesterday",
	"2025-05-05x", "0x10", "2025-05-05T06:49:1Z",
};

static void
test_parse_accepts_the_three_forms(void)
{
	size_t i;
	int64_t ms;
	int local;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ms = -1;
		local = -1;
		if (!CHECK(ctl_time_parse(good[i].in, &ms, &local) == 0))
			fprintf(stderr, "  input '%s'\n", good[i].in);
		CHECK_INT(ms, good[i].ms);
		CHECK_INT(local, good[i].local);
	}
}

static void
test_parse_rejects_everything_else(void)
{
	size_t i;
	int64_t ms = 42;
	int local = 7;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (!CHECK(ctl_time_parse(bad[i], &ms, &local) == -1))
			fprintf(stderr, "  input '%s'\n", bad[i]);
	}
	CHECK_INT(local, 7);	/* untouched on failure */
	CHECK(ctl_time_parse(NULL, &ms, &local) == -1);
}

static void
test_format_is_rfc3339_utc(void)
{
	char out[CTL_TIME_MAX];

	CHECK(ctl_time_format(1746427759733LL, 0, out, sizeof(out)) == 0);
	CHECK_STR(out, "2025-05-05T06:49:19Z");
	CHECK(ctl_time_format(1746427759733LL, 1, out, sizeof(out)) == 0);
	CHECK_STR(out, "2025-05-05T06:49:19.733Z");
	CHECK(ctl_time_format(0, 1, out, sizeof(out)) == 0);
	CHECK_STR(out, "1970-01-01T00:00:00.000Z");
	CHECK(ctl_time_format(951868799000LL, 0, out, sizeof(out)) == 0);
	CHECK_STR(out, "2000-02-29T23:59:59Z");
	CHECK(ctl_time_format(-1, 0, out, sizeof(out)) == -1);
	CHECK(ctl_time_format(0, 0, out, 10) == -1);
}

/* India is 5 h 30 min east of UTC: the local time there and its offset. */
static void
test_format_at_an_offset(void)
{
	char out[CTL_TIME_MAX];

	CHECK(ctl_time_format_offset(1746427759733LL, 19800, 0, out,
	    sizeof(out)) == 0);
	CHECK_STR(out, "2025-05-05T12:19:19+05:30");
	CHECK(ctl_time_format_offset(1746427759733LL, 19800, 1, out,
	    sizeof(out)) == 0);
	CHECK_STR(out, "2025-05-05T12:19:19.733+05:30");
	CHECK_INT(strlen(out) + 1 <= CTL_TIME_MAX, 1);
	CHECK(ctl_time_format_offset(1746403200000LL, -14400, 0, out,
	    sizeof(out)) == 0);
	CHECK_STR(out, "2025-05-04T20:00:00-04:00");	/* the day before */
	CHECK(ctl_time_format_offset(1746403200000LL, 0, 0, out,
	    sizeof(out)) == 0);
	CHECK_STR(out, "2025-05-05T00:00:00Z");
	CHECK(ctl_time_format_offset(0, -1800, 0, out, sizeof(out)) == -1);
	CHECK(ctl_time_format_offset(0, 86400, 0, out, sizeof(out)) == -1);
}

/* Every day over 30 years: format(parse(x)) == x, crossing leap days and
 * century rules. */
static void
test_round_trip_every_day(void)
{
	char out[CTL_TIME_MAX], date[16];
	int64_t ms, day;
	int fails = 0, local;

	for (day = 0; day < 366 * 30 * 3; day += 1) {
		if (ctl_time_format(day * 86400000LL + 45296000LL, 0, out,
		    sizeof(out)) == -1 || ctl_time_parse(out, &ms, &local) == -1 ||
		    ms != day * 86400000LL + 45296000LL)
			fails++;
		memcpy(date, out, 10);
		date[10] = '\0';
		if (ctl_time_parse(date, &ms, &local) == -1 ||
		    ms != day * 86400000LL)
			fails++;
	}
	CHECK_INT(fails, 0);
}

static void
test_day_start_and_age(void)
{
	char out[32];

	CHECK_INT(ctl_time_day_start(1746427759733LL), 1746403200000LL);
	CHECK_INT(ctl_time_day_start(1746403200000LL), 1746403200000LL);
	CHECK(ctl_time_age(45000, out, sizeof(out)) == 0);
	CHECK_STR(out, "45s");
	CHECK(ctl_time_age(725000, out, sizeof(out)) == 0);
	CHECK_STR(out, "12m 5s");
	CHECK(ctl_time_age(12000000, out, sizeof(out)) == 0);
	CHECK_STR(out, "3h 20m");
	CHECK(ctl_time_age(187200000, out, sizeof(out)) == 0);
	CHECK_STR(out, "2d 4h");
	CHECK(ctl_time_age(-5, out, sizeof(out)) == 0);
	CHECK_STR(out, "0s");
	CHECK(ctl_time_age(187200000, out, 3) == -1);
}

int
main(void)
{
	RUN(test_parse_accepts_the_three_forms);
	RUN(test_parse_rejects_everything_else);
	RUN(test_format_is_rfc3339_utc);
	RUN(test_format_at_an_offset);
	RUN(test_round_trip_every_day);
	RUN(test_day_start_and_age);
	return check_finish("test_ctl_time");
}
