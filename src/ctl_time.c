/* ctl_time.c - DATE arguments in and RFC 3339 times out, for cfhookctl.
 *
 * Pure: no clock, no time zone, no locale; a display zone's offset is an
 * argument (ctl_zone.c looks it up). The calendar arithmetic is done here
 * (proleptic Gregorian, days since 1970-01-01) instead of with
 * mktime/timegm/gmtime_r so the result never depends on TZ and every input
 * is range checked: an operator who prunes "before 2024-02-30" gets an error,
 * not March 1st. Must not: accept anything "close to" a date. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ctl_time.h"
#include "num.h"

#define MS_PER_DAY	86400000LL
#define YEAR_MIN	1970
#define YEAR_MAX	9999
/* 9999-12-31T23:59:59Z: the last second a DATE may name. */
#define SECONDS_MAX	253402300799ULL

static int
is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
days_in_month(int64_t y, int64_t m)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31 };

	return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Days since 1970-01-01 of a valid y-m-d (y >= 1970). The era arithmetic
 * of the well-known civil calendar algorithm, for non-negative years. */
static int64_t
days_from_civil(int64_t y, int64_t m, int64_t d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = y / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* The inverse, for days >= 0. */
static void
civil_from_days(int64_t z, int64_t *y, int64_t *m, int64_t *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = z / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = yoe + era * 400 + (*m <= 2);
}

/* Exactly n ASCII digits at s, as a number in [min, max]. */
static int
digits(const char *s, size_t n, int64_t min, int64_t max, int64_t *ret)
{
	int64_t v = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v < min || v > max)
		return -1;
	*ret = v;
	return 0;
}

/* "THH:MM:SS" at s[10]: seconds of the day. */
static int
parse_clock(const char *s, int64_t *ret)
{
	int64_t h, mi, sec;

	if (s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
	    digits(s + 11, 2, 0, 23, &h) == -1 ||
	    digits(s + 14, 2, 0, 59, &mi) == -1 ||
	    digits(s + 17, 2, 0, 59, &sec) == -1)
		return -1;
	*ret = (h * 60 + mi) * 60 + sec;
	return 0;
}

/* "+05:30" / "-03:00": seconds east of UTC. */
static int
parse_offset(const char *s, int64_t *ret)
{
	int64_t h, mi;

	if ((s[0] != '+' && s[0] != '-') || s[3] != ':' ||
	    digits(s + 1, 2, 0, 23, &h) == -1 ||
	    digits(s + 4, 2, 0, 59, &mi) == -1)
		return -1;
	*ret = (s[0] == '-' ? -1 : 1) * (h * 60 + mi) * 60;
	return 0;
}

/* "YYYY-MM-DD", then a time of day (len 19), with "Z" (20) or an offset
 * (25). *local: no zone was named. */
static int
parse_calendar(const char *s, size_t len, int64_t *ret, int *local)
{
	int64_t y, mo, d, secs = 0, off = 0, ms;

	if (s[4] != '-' || s[7] != '-' ||
	    digits(s, 4, YEAR_MIN, YEAR_MAX, &y) == -1 ||
	    digits(s + 5, 2, 1, 12, &mo) == -1 ||
	    digits(s + 8, 2, 1, 31, &d) == -1 || d > days_in_month(y, mo))
		return -1;
	if (len > 10 && parse_clock(s, &secs) == -1)
		return -1;
	if ((len == 20 && s[19] != 'Z') ||
	    (len == 25 && parse_offset(s + 19, &off) == -1))
		return -1;
	ms = days_from_civil(y, mo, d) * MS_PER_DAY + (secs - off) * 1000;
	if (ms < 0)
		return -1;	/* +05:30 on the first day of 1970 */
	*local = len == 10 || len == 19;
	*ret = ms;
	return 0;
}

int
ctl_time_parse(const char *s, int64_t *ret, int *local)
{
	uint64_t secs;
	size_t len;

	if (s == NULL)
		return -1;
	len = strlen(s);
	if ((len == 10 && s[4] == '-') || len == 19 || len == 20 ||
	    len == 25)
		return parse_calendar(s, len, ret, local);
	if (num_parse_u64(s, 0, SECONDS_MAX, &secs) == -1)
		return -1;
	*ret = (int64_t)secs * 1000;
	*local = 0;
	return 0;
}

/* The civil time of `local` ms (>= 0) and a suffix ("Z", "+05:30"). */
static int
format_civil(int64_t local, const char *suffix, int with_ms, char *out,
    size_t n)
{
	int64_t days, rem, y, mo, d;
	char frac[8] = "";
	int w;

	if (local < 0)
		return -1;
	days = local / MS_PER_DAY;
	rem = local % MS_PER_DAY;
	civil_from_days(days, &y, &mo, &d);
	if (with_ms)
		(void)snprintf(frac, sizeof(frac), ".%03lld",
		    (long long)(rem % 1000));
	w = snprintf(out, n, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld%s%s",
	    (long long)y, (long long)mo, (long long)d,
	    (long long)(rem / 3600000), (long long)(rem / 60000 % 60),
	    (long long)(rem / 1000 % 60), frac, suffix);
	return w < 0 || (size_t)w >= n ? -1 : 0;
}

int
ctl_time_format(int64_t ms, int with_ms, char *out, size_t n)
{
	return ctl_time_format_offset(ms, 0, with_ms, out, n);
}

int
ctl_time_format_offset(int64_t ms, int offset_s, int with_ms, char *out,
    size_t n)
{
	char suffix[8] = "Z";
	int m;

	if (ms < 0 || offset_s <= -86400 || offset_s >= 86400)
		return -1;
	if (offset_s != 0) {
		m = (offset_s < 0 ? -offset_s : offset_s) / 60;
		(void)snprintf(suffix, sizeof(suffix), "%c%02d:%02d",
		    offset_s < 0 ? '-' : '+', m / 60, m % 60);
	}
	return format_civil(ms + (int64_t)offset_s * 1000, suffix, with_ms,
	    out, n);
}

int64_t
ctl_time_day_start(int64_t ms)
{
	return ms - ms % MS_PER_DAY;
}

int
ctl_time_age(int64_t ms, char *out, size_t n)
{
	long long s = ms < 0 ? 0 : (long long)(ms / 1000);
	int w;

	if (s < 60)
		w = snprintf(out, n, "%llds", s);
	else if (s < 3600)
		w = snprintf(out, n, "%lldm %llds", s / 60, s % 60);
	else if (s < 86400)
		w = snprintf(out, n, "%lldh %lldm", s / 3600, s / 60 % 60);
	else
		w = snprintf(out, n, "%lldd %lldh", s / 86400, s / 3600 % 24);
	return w < 0 || (size_t)w >= n ? -1 : 0;
}
