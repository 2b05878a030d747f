/* prio.c - a long time slice for background threads, a raised nice value
 * for intake's (see prio.h).
 *
 * Must not: change another thread's priority, or a policy. */
#include <errno.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "prio.h"

void
prio_long_slice(void)
{
	struct prio_sched_attr a = { sizeof(a), 0, PRIO_KEEP_POLICY, 0, 0,
	    (uint64_t)PRIO_SLICE_US * 1000, 0, 0 };
	int nice;

	/* sched_setattr sets the nice value too: ask for the one it has
	 * (getpriority's -1 may be a nice value, so errno tells). */
	errno = 0;
	nice = getpriority(PRIO_PROCESS, 0);
	if (nice == -1 && errno != 0)
		return;
	a.nice = nice;
	(void)syscall(SYS_sched_setattr, 0, &a, 0U);
}

/* The lowest nice value RLIMIT_NICE lets a thread without CAP_SYS_NICE
 * set: 20 - limit (a limit of 0 or 1 allows no raise at all). */
static int
rlimit_floor(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NICE, &rl) != 0)
		return 20;
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= 40)
		return -20;
	return 20 - (int)rl.rlim_cur;
}

int
prio_raise(int by, int *was)
{
	int cur, want, floor;

	/* Linux keeps the nice value per thread: PRIO_PROCESS with 0 is the
	 * calling thread. getpriority's -1 may be a nice value: errno tells. */
	errno = 0;
	cur = getpriority(PRIO_PROCESS, 0);
	if (cur == -1 && errno != 0)
		return *was = 0;
	*was = cur;
	want = cur - by < -20 ? -20 : cur - by;
	if (want >= cur || setpriority(PRIO_PROCESS, 0, want) == 0)
		return want < cur ? want : cur;
	floor = rlimit_floor();
	if (floor > want && floor < cur && setpriority(PRIO_PROCESS, 0, floor) == 0)
		return floor;
	return cur;
}

void
prio_intake_thread(void)
{
	static _Thread_local int raised;
	int was;

	if (!raised) {
		raised = 1;
		(void)prio_raise(PRIO_INTAKE_AHEAD, &was);
	}
}
