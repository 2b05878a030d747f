/* slice.h - the calling thread's time slice as the kernel shows it, for
 * the tests of prio.h's long slice (test_prio, and test_hook's hooks). */
#ifndef CFHOOK_TEST_SLICE_H
#define CFHOOK_TEST_SLICE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* In ns, from /proc/thread-self/sched; -1 where the kernel shows none. */
static inline long long
slice_ns(void)
{
	char line[256];
	long long v = -1;
	FILE *fp = fopen("/proc/thread-self/sched", "re");

	if (fp == NULL)
		return -1;
	while (fgets(line, sizeof(line), fp) != NULL) {
		if (strncmp(line, "se.slice", 8) == 0 &&
		    strchr(line, ':') != NULL)
			v = strtoll(strchr(line, ':') + 1, NULL, 10);
	}
	(void)fclose(fp);
	return v;
}

#endif
