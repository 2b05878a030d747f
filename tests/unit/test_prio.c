/* test_prio.c - a background thread's long slice: asked for, and nothing
 * else about the thread changes (its nice value, its policy). */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "prio.h"
#include "slice.h"

/* Linux 6.12 and later give a fair task the slice it asks for. */
static int
kernel_has_custom_slices(void)
{
	struct utsname u;
	int major = 0, minor = 0;

	if (uname(&u) == -1 || sscanf(u.release, "%d.%d", &major,
	    &minor) != 2)
		return 0;
	return major > 6 || (major == 6 && minor >= 12);
}

/* In a child, so that this process keeps its own nice value and slice. */
static int
child(void)
{
	long long before = slice_ns();
	int policy = sched_getscheduler(0), bad = 0;

	if (setpriority(PRIO_PROCESS, 0, 5) == -1)
		return 10;
	prio_long_slice();
	bad |= getpriority(PRIO_PROCESS, 0) != 5;		/* 1 */
	bad |= (sched_getscheduler(0) != policy) << 1;		/* 2 */
	if (kernel_has_custom_slices())
		bad |= (slice_ns() != (long long)PRIO_SLICE_US * 1000) << 2;
	else
		bad |= (slice_ns() != before &&
		    slice_ns() != (long long)PRIO_SLICE_US * 1000) << 2;
	return bad;
}

static void
test_long_slice_and_nothing_else(void)
{
	int status = 0;
	pid_t pid = fork();

	if (pid == 0)
		_exit(child());
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status));
	CHECK_INT(WEXITSTATUS(status), 0);
}

int
main(void)
{
	RUN(test_long_slice_and_nothing_else);
	return check_finish("test_prio");
}
