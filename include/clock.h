/* clock.h - the two clocks, in milliseconds, and waits on a condition
 * variable against the monotonic one. */
#ifndef CFHOOK_CLOCK_H
#define CFHOOK_CLOCK_H

#include <pthread.h>
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

/* Monotonic µs: request latencies. */
static inline int64_t
clock_mono_us(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A monotonic deadline (ms) as pthread_cond_timedwait() takes it, for a
 * condition variable made by clock_cond_init(). */
static inline struct timespec
clock_mono_timespec(int64_t deadline_ms)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(deadline_ms / 1000);
	ts.tv_nsec = (long)(deadline_ms % 1000) * 1000000L;
	return ts;
}

/* A condition variable whose timed waits run on CLOCK_MONOTONIC: a
 * wall-clock step must not stretch or skip a deadline. 0 / an errno. */
static inline int
clock_cond_init(pthread_cond_t *cv)
{
	pthread_condattr_t ca;
	int err;

	err = pthread_condattr_init(&ca);
	if (err != 0)
		return err;
	err = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (err == 0)
		err = pthread_cond_init(cv, &ca);
	(void)pthread_condattr_destroy(&ca);
	return err;
}

/* Wait on cv (made by clock_cond_init, mutex held) until it is signalled
 * or the monotonic deadline_ms passes; deadline_ms < 0 waits without one.
 * Returns pthread_cond_timedwait()'s result (ETIMEDOUT at the deadline). */
static inline int
clock_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu,
    int64_t deadline_ms)
{
	struct timespec ts;

	if (deadline_ms < 0)
		return pthread_cond_wait(cv, mu);
	ts = clock_mono_timespec(deadline_ms);
	return pthread_cond_timedwait(cv, mu, &ts);
}

#endif
