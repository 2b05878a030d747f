/* hook.h - run the merchant's hook executable for one delivery (DESIGN
 * "Forwarding", hook:PATH): execve without a shell, in its own process group,
 * with exactly the given argv and environment, the envelope on stdin, its
 * output logged (bounded), killed as a group past the deadline. */
#ifndef CFHOOK_HOOK_H
#define CFHOOK_HOOK_H

#include <stddef.h>

#include "log.h"

/* After SIGTERM to the group, how long before SIGKILL. */
#define HOOK_KILL_GRACE_MS	2000
/* Output logged per run; the rest is counted and dropped. */
#define HOOK_LOG_MAX		(64 * 1024)
/* One logged line at most; a longer line is logged in pieces. */
#define HOOK_LINE_MAX		1024

enum hook_result {
	HOOK_OK,		/* exited with status 0 */
	HOOK_FAILED,		/* other status, signal, timeout, spawn failure */
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
};

/* Runs one hook to the end: the child is always reaped and its process group
 * gone (TERM, then KILL) when this returns. Output lines are logged at info
 * as "hook[PID]: ..." (PID: the guard that leads the hook's process
 * group). A child that does not read its stdin is fine. On
 * anything but HOOK_OK, `reason` gets a short text ("exit status 3",
 * "timeout after 30 s", "spawn: No such file or directory"). Any thread;
 * blocks the caller for at most timeout_ms + 2 * HOOK_KILL_GRACE_MS. */
enum hook_result hook_run(const struct hook_run *, char *reason,
	    size_t reason_len);

#endif
