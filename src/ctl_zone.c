/* ctl_zone.c - the display zone of cfhookctl (ctl_zone.h): UTC, a fixed
 * offset, or a tz database zone through the C library.
 *
 * The C library reads TZ once (tzset) and turns an unknown name into UTC
 * without a word; an operator who typed "Asia/Kolkatta" would then read
 * UTC times labelled as India's. So a named zone is checked first: its
 * TZif file must exist where the C library looks for it. Must not: change
 * what is stored (times stay UTC in the database), or be used from more
 * than one thread (TZ is process-wide). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl_time.h"
#include "ctl_zone.h"

#define MS_PER_DAY	86400000LL
#define ZONEINFO	"/usr/share/zoneinfo"

enum { ZONE_UTC, ZONE_FIXED, ZONE_NAMED };

/* "+05:30" / "-03:00" / "+0530" is not accepted: one spelling, RFC 3339's. */
static int
fixed_offset(const char *s, int *ret)
{
	int h, m;

	if (strlen(s) != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':')
		return -1;
	if (s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9' ||
	    s[4] < '0' || s[4] > '5' || s[5] < '0' || s[5] > '9')
		return -1;
	h = (s[1] - '0') * 10 + (s[2] - '0');
	m = (s[4] - '0') * 10 + (s[5] - '0');
	if (h > 23)
		return -1;
	*ret = (s[0] == '-' ? -1 : 1) * (h * 3600 + m * 60);
	return 0;
}

/* Whether path is a regular file that starts with the TZif magic. */
static int
is_tzif(const char *path)
{
	char magic[4];
	struct stat sb;
	int fd, ok = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return 0;
	if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
	    read(fd, magic, sizeof(magic)) == (ssize_t)sizeof(magic) &&
	    memcmp(magic, "TZif", 4) == 0)
		ok = 1;
	(void)close(fd);
	return ok;
}

/* Where the C library finds the zone `name`: an absolute path (after an
 * optional ':'), else the name under $TZDIR or the system's zoneinfo. A
 * name that climbs out of that directory is not a zone name. */
static int
zone_file(const char *name, char *path, size_t n)
{
	const char *dir = getenv("TZDIR");
	int w;

	if (name[0] == ':')
		name++;
	if (name[0] == '/') {
		w = snprintf(path, n, "%s", name);
	} else {
		if (name[0] == '\0' || name[0] == '.' ||
		    strstr(name, "/.") != NULL)
			return -1;
		if (dir == NULL || dir[0] == '\0')
			dir = ZONEINFO;
		w = snprintf(path, n, "%s/%s", dir, name);
	}
	return w < 0 || (size_t)w >= n ? -1 : 0;
}

int
ctl_zone_open(const char *name, struct ctl_zone *ret, char *why,
    size_t why_len)
{
	char path[512];

	memset(ret, 0, sizeof(*ret));
	ret->kind = ZONE_UTC;
	(void)snprintf(ret->name, sizeof(ret->name), "UTC");
	if (name == NULL || name[0] == '\0' || strcmp(name, "UTC") == 0 ||
	    strcmp(name, "Z") == 0)
		return 0;
	if (strlen(name) >= sizeof(ret->name)) {
		(void)snprintf(why, why_len, "time zone name too long");
		return -1;
	}
	(void)snprintf(ret->name, sizeof(ret->name), "%s", name);
	if (fixed_offset(name, &ret->offset_s) == 0) {
		ret->kind = ZONE_FIXED;
		return 0;
	}
	if (zone_file(name, path, sizeof(path)) == -1 || !is_tzif(path)) {
		(void)snprintf(why, why_len, "unknown time zone '%s' (use a "
		    "tz database name such as Asia/Kolkata, UTC, or an "
		    "offset such as +05:30)", name);
		return -1;
	}
	if (setenv("TZ", name, 1) == -1) {
		(void)snprintf(why, why_len, "TZ: %s", strerror(errno));
		return -1;
	}
	tzset();
	ret->kind = ZONE_NAMED;
	return 0;
}

/* Floor division of ms into whole seconds. */
static time_t
secs_of(int64_t ms)
{
	return (time_t)(ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000));
}

int
ctl_zone_offset(const struct ctl_zone *z, int64_t ms)
{
	time_t t = secs_of(ms);
	struct tm tm;

	if (z->kind == ZONE_FIXED)
		return z->offset_s;
	if (z->kind != ZONE_NAMED || localtime_r(&t, &tm) == NULL)
		return 0;
	return (int)tm.tm_gmtoff;
}

int
ctl_zone_format(const struct ctl_zone *z, int64_t ms, int with_ms,
    char *out, size_t n)
{
	return ctl_time_format_offset(ms, ctl_zone_offset(z, ms), with_ms, out,
	    n);
}

int64_t
ctl_zone_day_start(const struct ctl_zone *z, int64_t ms)
{
	time_t t = secs_of(ms);
	int64_t local;
	struct tm tm;

	if (z->kind == ZONE_NAMED && localtime_r(&t, &tm) != NULL) {
		tm.tm_hour = 0;
		tm.tm_min = 0;
		tm.tm_sec = 0;
		tm.tm_isdst = -1;	/* whatever holds at that midnight */
		t = mktime(&tm);
		if (t != (time_t)-1)
			return (int64_t)t * 1000;
	}
	local = ms + (int64_t)ctl_zone_offset(z, ms) * 1000;
	local -= ((local % MS_PER_DAY) + MS_PER_DAY) % MS_PER_DAY;
	return local - (int64_t)ctl_zone_offset(z, ms) * 1000;
}

int
ctl_zone_from_civil(const struct ctl_zone *z, int64_t civil_ms,
    int64_t *ret)
{
	time_t t = secs_of(civil_ms);
	struct tm tm;

	if (z->kind != ZONE_NAMED) {
		*ret = civil_ms - (int64_t)ctl_zone_offset(z, 0) * 1000;
		return *ret < 0 ? -1 : 0;
	}
	if (gmtime_r(&t, &tm) == NULL)
		return -1;
	tm.tm_isdst = -1;
	t = mktime(&tm);
	if (t == (time_t)-1 || t < 0)
		return -1;
	*ret = (int64_t)t * 1000 + civil_ms % 1000;
	return 0;
}
