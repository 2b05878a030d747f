/* prio.h - background work yields the CPU to intake at once.
 *
 * Cashfree waits for intake's answer; a delivery can wait a moment.
 *
 * Intake's threads (the HTTP workers, the accepting thread and the
 * writer, whose commit and fsync every webhook waits for) run
 * PRIO_INTAKE_AHEAD nice levels ahead of the daemon's other threads where
 * the daemon may raise them (systemd's LimitNICE=, or CAP_SYS_NICE). The
 * kernel's fair scheduler makes a task that wakes after running more than
 * its share wait until the others catch up: with hooks spawned at full
 * rate on every CPU, the writer woke about 12 times a second only to wait
 * 0.5-1.2 ms behind a whole hook (perf sched, 200 req/s), and hooks made
 * SCHED_IDLE did not change that. Ten levels ahead its share counts nine
 * times more, and such waits became rare (4 in 3 s instead of 31-41).
 * The writer alone ahead of the HTTP threads took CPU from them when
 * intake itself is saturated (p99 at full rate 11-14 ms against 7-8):
 * intake moves as one.
 *
 * Where the kernel lets a task ask for its time slice (EEVDF with custom
 * slices, Linux 6.12 on; older kernels ignore the request), the
 * forwarder's threads and the hooks ask for a long one. A waking intake
 * thread, whose slice is the default and so shorter, then takes a CPU from
 * them at once instead of when their slice ends. Their share of the CPU is
 * unchanged (that is the nice value's business: hook.h's HOOK_NICE for
 * hooks).
 *
 * The kernel's struct is declared here because glibc 2.36 has none. */
#ifndef CFHOOK_PRIO_H
#define CFHOOK_PRIO_H

#include <stdint.h>

/* The slice asked for, in microseconds (the kernel takes 100 to 100,000;
 * its default is about 0.7 ms times a factor that grows with the number of
 * CPUs: 1.4 ms on two). On two CPUs kept busy by hooks spawned at full
 * rate, 3 ms took intake's p99 at 200 req/s from 2.0-2.75x its p99 alone
 * to 1.0-1.6x. */
#define PRIO_SLICE_US		3000

/* The first 48 bytes of the kernel's struct sched_attr (sched_setattr). */
struct prio_sched_attr {
	uint32_t size;
	uint32_t policy;
	uint64_t flags;
	int32_t	 nice;
	uint32_t priority;
	uint64_t runtime;	/* ns: a fair task's slice */
	uint64_t deadline;
	uint64_t period;
};
#define PRIO_KEEP_POLICY	0x08	/* SCHED_FLAG_KEEP_POLICY */

/* Nice levels intake's threads run ahead of the daemon (see above). */
#define PRIO_INTAKE_AHEAD	10

/* The calling thread's nice value goes `by` levels down (not below -20), or
 * as far down as RLIMIT_NICE lets an unprivileged thread (systemd's
 * LimitNICE=). Returns the nice value it has now; *was gets the one it
 * had. A thread that may not raise itself at all keeps its value. */
int	prio_raise(int by, int *was);

/* An intake thread (HTTP, accepting) calls this as it serves: the first
 * call in each thread raises it PRIO_INTAKE_AHEAD levels, as far as it
 * may (the writer raises itself and says how far it got). */
void	prio_intake_thread(void);

/* The calling thread asks for PRIO_SLICE_US, keeping its nice value and
 * policy. A kernel that refuses is left as it was (nothing depends on it). */
void	prio_long_slice(void);

#endif
