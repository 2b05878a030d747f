/* spawnrate.c - how fast can this machine start a program and reap it?
 * The reference for cfhookd's hook forwarding: posix_spawn + waitpid of
 * PATH with no arguments, stdio on /dev/null, PARALLEL children at a time.
 *
 *   spawnrate [-p PARALLEL] [-n COUNT | -d SECONDS] [-N NICE] [-S SLICE_US]
 *             PATH
 *
 * -N and -S give the children a nice value and a time slice (Linux 6.12
 * on; ignored before) as cfhookd gives its hooks: set on spawnrate itself,
 * which its children inherit.
 *
 * Prints "SPAWNRATE parallel=P spawns=N failures=N seconds=S rate=R";
 * a child that does not exit 0 is a failure (and still counted as run).
 * Exit 0 when it ran, 1 on bad usage, 2 when spawning failed outright. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "prio.h"

#define PARALLEL_MAX	64

extern char **environ;

static double
now_s(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
parse_num(const char *s, double lo, double hi, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	return errno == 0 && end != s && *end == '\0' && *out >= lo &&
	    *out <= hi ? 0 : -1;
}

static int
spawn_one(const char *path, posix_spawn_file_actions_t *fa)
{
	/* posix_spawn() takes char *const[] and writes through none. */
	char *argv[2] = { (char *)(uintptr_t)path, NULL };
	char *envp[2] = { (char *)(uintptr_t)"PATH=/usr/bin:/bin", NULL };
	pid_t pid;
	int e;

	e = posix_spawn(&pid, path, fa, NULL, argv, envp);
	if (e != 0) {
		fprintf(stderr, "spawnrate: %s: %s\n", path, strerror(e));
		return -1;
	}
	return 0;
}

/* nice and slice (ns; 0: the kernel's) for this process and so its
 * children, the policy kept. */
static int
set_sched(int nice, uint64_t slice_ns)
{
	struct prio_sched_attr a = { sizeof(a), 0, PRIO_KEEP_POLICY, 0, 0, 0,
	    0, 0 };

	a.nice = nice;
	a.runtime = slice_ns;
	if (syscall(SYS_sched_setattr, 0, &a, 0U) == 0)
		return 0;
	return setpriority(PRIO_PROCESS, 0, nice);
}

int
main(int argc, char **argv)
{
	posix_spawn_file_actions_t fa;
	double p = 1, n = 0, secs = 2, t0, last, deadline, nice = 0, slice = 0;
	unsigned long long done = 0, failures = 0, started = 0;
	unsigned running = 0;
	int ch, st;

	while ((ch = getopt(argc, argv, "p:n:d:N:S:")) != -1) {
		if ((ch == 'p' && parse_num(optarg, 1, PARALLEL_MAX, &p)) ||
		    (ch == 'n' && parse_num(optarg, 1, 1e9, &n)) ||
		    (ch == 'd' && parse_num(optarg, 0.01, 3600, &secs)) ||
		    (ch == 'N' && parse_num(optarg, 0, 19, &nice)) ||
		    (ch == 'S' && parse_num(optarg, 100, 100000, &slice)) ||
		    ch == '?') {
			fprintf(stderr, "usage: spawnrate [-p PARALLEL] "
			    "[-n COUNT | -d SECONDS] [-N NICE] [-S SLICE_US] "
			    "PATH\n");
			return 1;
		}
	}
	if ((nice > 0 || slice > 0) &&
	    set_sched((int)nice, (uint64_t)slice * 1000) == -1) {
		fprintf(stderr, "spawnrate: cannot set nice %d: %s\n", (int)nice,
		    strerror(errno));
		return 2;
	}
	if (optind != argc - 1) {
		fprintf(stderr, "spawnrate: one PATH expected\n");
		return 1;
	}
	if (posix_spawn_file_actions_init(&fa) != 0 ||
	    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) ||
	    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0) ||
	    posix_spawn_file_actions_adddup2(&fa, 1, 2))
		return 2;
	t0 = last = now_s();
	deadline = t0 + secs;
	for (;;) {
		while (running < (unsigned)p && (n > 0 ? started < n :
		    now_s() < deadline)) {
			if (spawn_one(argv[optind], &fa) == -1)
				return 2;
			started++;
			running++;
		}
		if (running == 0)
			break;
		if (waitpid(-1, &st, 0) == -1) {
			if (errno == EINTR)
				continue;
			return 2;
		}
		running--;
		done++;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			failures++;
		last = now_s();
	}
	(void)posix_spawn_file_actions_destroy(&fa);
	printf("SPAWNRATE parallel=%u spawns=%llu failures=%llu seconds=%.3f "
	    "rate=%.1f\n", (unsigned)p, done, failures, last - t0,
	    last > t0 ? (double)done / (last - t0) : 0);
	return 0;
}
