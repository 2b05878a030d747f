/* ctl_time.h - the dates `cfhookctl` reads and the times it prints, always
 * UTC (RFC 3339 with a "Z"), never the local time zone.  Pure. */
#ifndef CFHOOK_CTL_TIME_H
#define CFHOOK_CTL_TIME_H

#include <stddef.h>
#include <stdint.h>

/* Longest output of ctl_time_format() with its NUL. */
#define CTL_TIME_MAX	32

/* A DATE argument (`list --since`, `prune --before`): "YYYY-MM-DD"
 * (midnight UTC), "YYYY-MM-DDTHH:MM:SSZ", or unix seconds (all digits).
 * Nothing else: no other zone, no fractions, no blanks; fields are range
 * checked (2024-02-30 is an error). Years 1970..9999. Returns 0 and the
 * unix ms in *ret, or -1. */
int	ctl_time_parse(const char *s, int64_t *ret);
/* RFC 3339 UTC of unix ms: "2025-05-05T06:49:19Z", or with_ms
 * "2025-05-05T06:49:19.733Z". Needs n >= CTL_TIME_MAX for any input.
 * Returns 0, or -1 (negative time, n too small). */
int	ctl_time_format(int64_t ms, int with_ms, char *out, size_t n);
/* Midnight UTC of the day holding unix ms `ms` (>= 0). */
int64_t	ctl_time_day_start(int64_t ms);
/* A duration for a person: "45s", "12m 5s", "3h 20m", "2d 4h"; a negative
 * one is printed as "0s". Returns 0 / -1 (n too small). */
int	ctl_time_age(int64_t ms, char *out, size_t n);

#endif
