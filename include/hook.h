/* hook.h - run the merchant's hook executable for one delivery (DESIGN
 * "Forwarding", hook:PATH): execve without a shell, in its own process group,
 * with exactly the given argv and environment, the envelope on stdin, its
 * output logged (bounded), killed as a group past the deadline, and guarded
 * (hook_guard.h) so that it dies with the daemon. */
#ifndef CFHOOK_HOOK_H
#define CFHOOK_HOOK_H

#include <stddef.h>

#include "hook_guard.h"
#include "log.h"

/* After SIGTERM to the group, how long before SIGKILL. */
#define HOOK_KILL_GRACE_MS	2000
/* Output logged per run (stdout and stderr together); the rest is counted
 * and dropped. */
#define HOOK_LOG_MAX		(64 * 1024)
/* One logged line at most; a longer line is logged in pieces. */
#define HOOK_LINE_MAX		1024
/* Hooks run this much nicer than the daemon: a burst of deliveries never
 * takes the CPU from intake (Cashfree waits for its answer; a hook's work
 * can wait a little). They also ask for a long time slice (prio.h). */
#define HOOK_NICE		10

enum hook_result {
	HOOK_OK,		/* exited with status 0 */
	HOOK_FAILED,		/* other status, signal, spawn failure */
	HOOK_TIMEOUT,		/* still running at timeout_ms: group killed */
	HOOK_CANCELLED		/* cancel_fd became readable; group killed */
};

struct hook_run {
	const char *path;		/* absolute path of the executable */
	char	*const *argv;		/* NULL-terminated; argv[0] = path */
	char	*const *envp;		/* NULL-terminated; the whole environment */
	const char *input;		/* written to the hook's stdin, then EOF */
	size_t	 input_len;
	int	 timeout_ms;		/* from the spawn to the kill */
	int	 cancel_fd;		/* -1, or readable = stop now (shutdown) */
	const struct log_fields *fields;	/* journal fields for its lines */
	struct hook_guard *guard;	/* required: kills it if the daemon dies */
};

/* Runs one hook to the end, HOOK_NICE nicer than the caller and with no
 * RLIMIT_NICE to raise itself by: the hook is
 * always reaped and its process group empty (TERM, then KILL) when this
 * returns; a process that left the group
 * (setsid) is not waited for. stdout lines are logged at info, stderr lines
 * at warning, as "hook[PID]: ..." (PID: the hook's, which is also its
 * process group id). A hook that does not read its stdin is fine. On
 * anything but HOOK_OK, `reason` gets a short text ("exit status 3", "timeout
 * after 30 s", "spawn: No such file or directory"), followed by ": " and the
 * last line the hook wrote to stderr, quoted (reason.h), when it wrote one.
 * Any thread; blocks the caller for at most timeout_ms + 2 *
 * HOOK_KILL_GRACE_MS. */
enum hook_result hook_run(const struct hook_run *, char *reason,
	    size_t reason_len);

#endif
