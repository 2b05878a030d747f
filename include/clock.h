/* clock.h - the two clocks, in milliseconds. */
#ifndef CFHOOK_CLOCK_H
#define CFHOOK_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Wall clock (unix ms): timestamps that are stored or compared with Cashfree's. */
static inline int64_t
clock_wall_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Monotonic ms: timeouts, deadlines and intervals. */
static inline int64_t
clock_mono_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
