/* ctl_time.h - the dates `cfhookctl` reads and the times it prints, as
 * RFC 3339 with an explicit offset ("Z" for UTC).  Pure: the offset of a
 * display zone at an instant arrives as an argument (ctl_zone.h looks it
 * up); nothing here reads the clock or the time zone. */
#ifndef CFHOOK_CTL_TIME_H
#define CFHOOK_CTL_TIME_H

#include "attr.h"

#include <stddef.h>
#include <stdint.h>

/* Longest output of ctl_time_format() with its NUL. */
#define CTL_TIME_MAX	32

/* A DATE argument (`list --since`, `prune --before`, ...):
 * "YYYY-MM-DD" (midnight), "YYYY-MM-DDTHH:MM:SS", either of those times
 * with "Z" or an offset "+05:30" / "-03:00" after the seconds, or unix
 * seconds (all digits). Nothing else: no fractions, no blanks; fields are
 * range checked (2024-02-30 is an error). Years 1970..9999. Returns 0 and
 * *ret: the unix ms when *local is 0 (a "Z", an offset or unix seconds
 * said where it is), else, *local 1, the civil time read as if it were
 * UTC, which the caller places in its display zone. -1 otherwise. */
int	ctl_time_parse(const char *s, int64_t *ret, int *local) MUST_CHECK;
/* RFC 3339 UTC of unix ms: "2025-05-05T06:49:19Z", or with_ms
 * "2025-05-05T06:49:19.733Z". Needs n >= CTL_TIME_MAX for any input.
 * Returns 0, or -1 (negative time, n too small). */
int	ctl_time_format(int64_t ms, int with_ms, char *out, size_t n);
/* The same at offset_s seconds east of UTC: the local time there and its
 * offset, "2025-05-05T12:19:19+05:30" ("Z" when offset_s is 0; an offset
 * is printed to the minute). -1 as above, or for |offset_s| >= 24 h. */
int	ctl_time_format_offset(int64_t ms, int offset_s, int with_ms,
	    char *out, size_t n);
/* Midnight UTC of the day holding unix ms `ms` (>= 0). */
int64_t	ctl_time_day_start(int64_t ms);
/* A duration for a person: "45s", "12m 5s", "3h 20m", "2d 4h"; a negative
 * one is printed as "0s". Returns 0 / -1 (n too small). */
int	ctl_time_age(int64_t ms, char *out, size_t n);

#endif
