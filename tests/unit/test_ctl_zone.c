/* test_ctl_zone.c - cfhookctl's display zone: UTC by default, a fixed
 * offset, a tz database name through the C library (India: +05:30 all
 * year; New York: a clock change), and a name that is not a zone. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ctl_time.h"
#include "ctl_zone.h"

#define T0	1746427759733LL		/* 2025-05-05T06:49:19.733Z */

static void
test_utc_and_fixed(void)
{
	struct ctl_zone z;
	char why[200], out[CTL_TIME_MAX];
	int64_t ms;

	CHECK(ctl_zone_open(NULL, &z, why, sizeof(why)) == 0);
	CHECK_STR(z.name, "UTC");
	CHECK_INT(ctl_zone_offset(&z, T0), 0);
	CHECK(ctl_zone_format(&z, T0, 0, out, sizeof(out)) == 0);
	CHECK_STR(out, "2025-05-05T06:49:19Z");
	CHECK_INT(ctl_zone_day_start(&z, T0), 1746403200000LL);
	CHECK(ctl_zone_open("", &z, why, sizeof(why)) == 0);
	CHECK_INT(ctl_zone_offset(&z, T0), 0);
	CHECK(ctl_zone_open("+05:30", &z, why, sizeof(why)) == 0);
	CHECK_INT(ctl_zone_offset(&z, T0), 19800);
	CHECK(ctl_zone_format(&z, T0, 1, out, sizeof(out)) == 0);
	CHECK_STR(out, "2025-05-05T12:19:19.733+05:30");
	/* India's 2025-05-05 began at 2025-05-04T18:30:00Z */
	CHECK_INT(ctl_zone_day_start(&z, T0), 1746383400000LL);
	CHECK(ctl_zone_from_civil(&z, 1746403200000LL, &ms) == 0);
	CHECK_INT(ms, 1746383400000LL);
	CHECK(ctl_zone_open("-03:00", &z, why, sizeof(why)) == 0);
	CHECK_INT(ctl_zone_offset(&z, T0), -10800);
	CHECK(ctl_zone_open("+5:30", &z, why, sizeof(why)) == -1);
	CHECK(ctl_zone_open("+24:00", &z, why, sizeof(why)) == -1);
}

static void
test_named(void)
{
	struct ctl_zone z;
	char why[200], out[CTL_TIME_MAX];
	int64_t ms;

	if (!CHECK(ctl_zone_open("Asia/Kolkata", &z, why, sizeof(why)) == 0)) {
		fprintf(stderr, "  %s\n", why);
		return;
	}
	CHECK_STR(getenv("TZ"), "Asia/Kolkata");
	CHECK_INT(ctl_zone_offset(&z, T0), 19800);
	CHECK(ctl_zone_format(&z, T0, 0, out, sizeof(out)) == 0);
	CHECK_STR(out, "2025-05-05T12:19:19+05:30");
	CHECK_INT(ctl_zone_day_start(&z, T0), 1746383400000LL);
	CHECK(ctl_zone_from_civil(&z, 1746403200000LL, &ms) == 0);
	CHECK_INT(ms, 1746383400000LL);
	/* New York: -05:00 in January, -04:00 in May */
	if (!CHECK(ctl_zone_open(":America/New_York", &z, why,
	    sizeof(why)) == 0))
		return;
	CHECK_INT(ctl_zone_offset(&z, T0), -14400);
	CHECK_INT(ctl_zone_offset(&z, 1736000000000LL), -18000);
	CHECK(ctl_zone_format(&z, 1736000000000LL, 0, out, sizeof(out)) == 0);
	CHECK_STR(out, "2025-01-04T09:13:20-05:00");
	/* midnight of 2025-03-09 was still -05:00; the clock changed at 2 */
	CHECK_INT(ctl_zone_day_start(&z, 1741536000000LL), 1741496400000LL);
	CHECK(ctl_zone_open("/usr/share/zoneinfo/Asia/Kolkata", &z, why,
	    sizeof(why)) == 0);
	CHECK_INT(ctl_zone_offset(&z, T0), 19800);
}

static void
test_unknown_names(void)
{
	static const char *const bad[] = { "Asia/Kolkatta", "IST", "../etc",
	    "Asia/../../etc/passwd", "/etc/passwd", ":", "Asia",
	    "Asia/Kolkata/x" };
	struct ctl_zone z;
	char why[200];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		if (!CHECK(ctl_zone_open(bad[i], &z, why, sizeof(why)) == -1))
			fprintf(stderr, "  zone '%s'\n", bad[i]);
		CHECK(strstr(why, "unknown time zone") != NULL);
	}
}

int
main(void)
{
	RUN(test_utc_and_fixed);
	RUN(test_named);
	RUN(test_unknown_names);
	return check_finish("test_ctl_zone");
}
