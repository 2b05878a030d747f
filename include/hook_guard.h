/* hook_guard.h - the guard of the hooks (DESIGN "Forwarding", hook:PATH):
 * a small process that kills every running hook's process group when the
 * daemon dies, SIGKILL included, so a hook of a dead daemon never runs on
 * beside the delivery the restarted daemon makes.
 *
 * The guard is this executable started again (/proc/self/exe) with the
 * process title HOOK_GUARD_NAME, which has nothing of the daemon's name in
 * it: `pgrep cfhookd` and `ps` never take it for the daemon. It only reads a
 * socket: each hook's own process registers its process group there before
 * it execs (hook.c), and unregisters once the group is gone. When the
 * daemon's end of the socket closes (the daemon exited or died) the guard
 * SIGKILLs every group still registered and exits.
 *
 * One struct hook_guard per forwarder, shared by its worker threads (it has
 * its own mutex). A guard that dies is started again on the next spawn and
 * told about the hooks still running. */
#ifndef CFHOOK_HOOK_GUARD_H
#define CFHOOK_HOOK_GUARD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HOOK_GUARD_NAME		"cfhook-guard"
/* Hooks registered at once (the forwarder runs at most 64). */
#define HOOK_GUARD_MAX		256

struct hook_guard;

/* No process yet. NULL on no memory. */
struct hook_guard *hook_guard_new(void);
/* Starts the guard process unless it runs (spawns also start it when
 * needed). Returns 0, or -1 (logged). */
int	hook_guard_start(struct hook_guard *);
/* The guard process's pid, or -1 when none runs. */
pid_t	hook_guard_pid(struct hook_guard *);
/* Closes the daemon's end; the guard kills whatever is still registered
 * (nothing once every hook_run() returned) and exits; it is reaped here.
 * NULL-safe. */
void	hook_guard_free(struct hook_guard *);

/* For hook.c. Begins one spawn: takes the guard's lock (spawns are
 * serialised; each holds it only until the child has exec'd), starts the
 * guard if it is not running, and gives the socket the child registers on
 * and a stack for the child. Returns 0, or -1 with `reason` (unlocked). */
int	hook_guard_enter(struct hook_guard *, int *fd, void **stack,
	    size_t *stack_len, char *reason, size_t reason_len);
/* Ends the spawn: `pid` > 0 is a child that registered and runs (kept, so
 * that a restarted guard learns about it); unlocks. */
void	hook_guard_leave(struct hook_guard *, pid_t pid);
/* The group `pid` is gone (or its child never exec'd): unregister it. */
void	hook_guard_release(struct hook_guard *, pid_t pid);
/* The signals (bit n-1 for signal n) a hook must get back at their
 * default disposition: those this process ignored or caught when the
 * guard was made. The daemon sets its dispositions once at start-up,
 * before it starts a forwarder, and never changes them. */
uint64_t hook_guard_signals(const struct hook_guard *);

#endif
