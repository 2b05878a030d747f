/* prio.c - a long time slice for background threads (see prio.h).
 *
 * Must not: change a thread's nice value or scheduling policy. */
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
