/* store_health.c - keeping a writing store honest (DESIGN "Database"):
 * the connection settings it relies on.
 *
 * Must not: be called from a thread that does not own the store. */
#include <time.h>

#include "clock.h"
#include "store_health.h"

int
store_busy_wait(void *arg, int count)
{
	static const int step_ms[] = { 1, 2, 5, 10, 15, 20, 25, 25, 25, 50,
	    50, 100 };
	const int nsteps = (int)(sizeof(step_ms) / sizeof(step_ms[0]));
	struct store_wait *w = arg;
	int64_t now = clock_mono_ms(), end = w->deadline_ms, ms;
	struct timespec ts;

	/* Sleeping is the only way SQLite offers to wait for another
	 * process's lock (sqlite3_busy_timeout() sleeps too, but starts its
	 * clock again at every step). */
	if (count == 0)
		w->start_ms = now;
	if (end == 0)
		end = w->start_ms + STORE_BUSY_TIMEOUT_MS;
	if (now >= end)
		return 0;
	ms = step_ms[count < nsteps ? count : nsteps - 1];
	if (ms > end - now)
		ms = end - now;
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	(void)nanosleep(&ts, NULL);
	return 1;
}
