/* ctl_zone.h - the time zone cfhookctl shows times in and reads dates in:
 * `--tz ZONE`, else $TZ, else UTC. Stored times stay UTC; only display and
 * DATE arguments change.
 *
 * A zone is UTC, a fixed offset ("+05:30"), or a tz database name
 * ("Asia/Kolkata"), whose offsets come from the C library: ctl_zone_open()
 * then sets TZ for the whole process, so a process has one zone
 * (cfhookctl). Single-threaded. */
#ifndef CFHOOK_CTL_ZONE_H
#define CFHOOK_CTL_ZONE_H

#include <stddef.h>
#include <stdint.h>

#define CTL_ZONE_NAME_MAX	128

struct ctl_zone {
	int	 kind;			/* UTC, fixed or named (ctl_zone.c) */
	int	 offset_s;		/* fixed: seconds east of UTC */
	char	 name[CTL_ZONE_NAME_MAX];	/* as given, "UTC" by default */
};

/* The zone `name` (NULL or empty: UTC). A named zone must be in the tz
 * database (a TZif file under $TZDIR or /usr/share/zoneinfo, or an
 * absolute path after an optional ':'), so a typo is an error rather than
 * UTC in disguise. Returns 0 and fills *ret, or -1 with the reason in why. */
int	ctl_zone_open(const char *name, struct ctl_zone *ret, char *why,
	    size_t why_len);
/* Seconds east of UTC at unix ms `ms` in the zone. */
int	ctl_zone_offset(const struct ctl_zone *, int64_t ms);
/* RFC 3339 in the zone ("2025-05-05T12:19:19+05:30"; "Z" at offset 0),
 * as ctl_time_format_offset(). 0 / -1. */
int	ctl_zone_format(const struct ctl_zone *, int64_t ms, int with_ms,
	    char *out, size_t n);
/* Midnight in the zone of the day holding unix ms `ms`. */
int64_t	ctl_zone_day_start(const struct ctl_zone *, int64_t ms);
/* The unix ms of a civil time (read as if UTC, ctl_time_parse) in the
 * zone; a time a clock change skipped or repeated is placed as mktime()
 * does. 0 / -1 (out of range). */
int	ctl_zone_from_civil(const struct ctl_zone *, int64_t civil_ms,
	    int64_t *ret);

#endif
