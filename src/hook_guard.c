/* hook_guard.c - the guard that kills the hooks' process groups when the
 * daemon dies (hook_guard.h), both sides: the guard process itself, and the
 * daemon's handle on it.
 *
 * The guard process is this executable run again with argv[0] =
 * HOOK_GUARD_NAME and its socket on fd 3. A constructor recognises that
 * before main() and runs the guard loop instead, so the daemon needs no
 * second binary, and the guard is a fresh single-threaded process (not a
 * fork of a big threaded one: no copied page tables, no locks held by
 * threads that do not exist in it).
 *
 * Protocol (SOCK_SEQPACKET, one int32 per message): +pgid registers a
 * hook's process group, -pgid unregisters it. EOF (every copy of the
 * daemon's end closed: the daemon exited or was killed) means: SIGKILL
 * every group still registered, then exit.
 *
 * Must not: be fooled into running as a guard by argv[0] alone (fd 3 must be
 * our kind of socket), exit on the signals a terminal or `pkill` sends the
 * daemon's process group (it leaves at EOF), or block a spawn on a guard
 * that stopped reading (sends never wait; a failed one restarts the guard). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hook_guard.h"
#include "log.h"

#define GUARD_FD	3
/* The stack of a spawning child (hook.c): it runs a few system calls and
 * execve on it, never anything deep. */
#define CHILD_STACK	(64 * 1024)

struct hook_guard {
	pthread_mutex_t mu;	/* everything below; held across a spawn */
	int	 fd;		/* our end of the socket; -1: no guard */
	pid_t	 pid;		/* the guard process; -1: none */
	int	 broken;	/* a send failed: replace the guard */
	pid_t	 live[HOOK_GUARD_MAX];	/* registered and not released */
	unsigned nlive;
	void	*stack;		/* for the spawning child; used under mu */
	uint64_t reset;		/* hook_guard_signals(); fixed */
};

/* ---- the guard process ------------------------------------------------ */

static _Noreturn void
guard_loop(void)
{
	static pid_t groups[HOOK_GUARD_MAX];
	unsigned n = 0, i, killed = 0;
	int32_t msg;
	ssize_t r;

	for (;;) {
		r = recv(GUARD_FD, &msg, sizeof(msg), 0);
		if (r == -1 && errno == EINTR)
			continue;
		if (r != (ssize_t)sizeof(msg))
			break;		/* EOF (or an error: the same to us) */
		if (msg > 0 && n < HOOK_GUARD_MAX) {
			groups[n++] = (pid_t)msg;
		} else if (msg < 0) {
			for (i = 0; i < n && groups[i] != (pid_t)-msg; i++)
				continue;
			if (i < n)
				groups[i] = groups[--n];
		}
	}
	for (i = 0; i < n; i++) {
		if (kill(-groups[i], SIGKILL) == 0)
			killed++;
	}
	if (killed > 0)
		dprintf(STDERR_FILENO, "<4>" HOOK_GUARD_NAME ": cfhookd is "
		    "gone; killed %u hook process group%s\n", killed,
		    killed == 1 ? "" : "s");
	_exit(0);
}

static _Noreturn void
guard_main(void)
{
	static const int quiet[] = { SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGPIPE,
	    SIGUSR1, SIGUSR2 };
	struct sigaction ign;
	socklen_t len = sizeof(int);
	int type = 0;
	size_t i;

	if (getsockopt(GUARD_FD, SOL_SOCKET, SO_TYPE, &type, &len) == -1 ||
	    type != SOCK_SEQPACKET) {
		dprintf(STDERR_FILENO, HOOK_GUARD_NAME ": only cfhookd starts "
		    "this\n");
		_exit(2);
	}
	(void)prctl(PR_SET_NAME, HOOK_GUARD_NAME);
	/* It leaves when the daemon is gone, not when the daemon's process
	 * group is signalled (Ctrl-C, pkill): the hooks may still run. */
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	for (i = 0; i < sizeof(quiet) / sizeof(quiet[0]); i++)
		(void)sigaction(quiet[i], &ign, NULL);
	guard_loop();
}

/* glibc calls constructors with main's arguments. Only the exact argv the
 * daemon uses (HOOK_GUARD_NAME alone) turns this process into a guard. */
__attribute__((constructor)) static void
guard_entry(int argc, char **argv, char **envp)
{
	(void)envp;
	if (argc == 1 && argv != NULL && argv[0] != NULL &&
	    strcmp(argv[0], HOOK_GUARD_NAME) == 0)
		guard_main();
}

/* ---- the daemon's side -------------------------------------------------- */

/* The hex mask after `field` ("SigIgn:") in /proc/self/status text. */
static int
status_mask(const char *text, const char *field, uint64_t *ret)
{
	const char *p = strstr(text, field);
	uint64_t v = 0;
	int n = 0;

	if (p == NULL)
		return -1;
	for (p += strlen(field); *p == '\t' || *p == ' '; p++)
		continue;
	for (; n < 16; p++, n++) {
		if (*p >= '0' && *p <= '9')
			v = v << 4 | (uint64_t)(*p - '0');
		else if (*p >= 'a' && *p <= 'f')
			v = v << 4 | (uint64_t)(*p - 'a' + 10);
		else
			break;
	}
	if (n == 0)
		return -1;
	*ret = v;
	return 0;
}

/* The signals a hook must get back at their default disposition: those
 * the daemon ignores (SIGPIPE) or catches (a sanitizer's). Read from
 * /proc/self/status, as one read rather than 64 sigaction calls in each
 * spawning child; without /proc, all. */
static uint64_t
signals_to_reset(void)
{
	char text[4096];
	uint64_t ign = 0, cgt = 0;
	size_t have = 0;
	ssize_t n;
	int fd;

	fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return ~(uint64_t)0;
	while (have < sizeof(text) - 1 &&
	    (n = read(fd, text + have, sizeof(text) - 1 - have)) > 0)
		have += (size_t)n;
	(void)close(fd);
	text[have] = '\0';
	if (status_mask(text, "\nSigIgn:", &ign) == -1 ||
	    status_mask(text, "\nSigCgt:", &cgt) == -1)
		return ~(uint64_t)0;
	return ign | cgt;
}

struct hook_guard *
hook_guard_new(void)
{
	struct hook_guard *g = calloc(1, sizeof(*g));

	if (g == NULL)
		return NULL;
	(void)pthread_mutex_init(&g->mu, NULL);
	g->fd = -1;
	g->pid = -1;
	/* Once: reading it cost each spawn about 15 us of kernel time
	 * (proc_pid_status of a big threaded process). */
	g->reset = signals_to_reset();
	return g;
}

uint64_t
hook_guard_signals(const struct hook_guard *g)
{
	return g->reset;
}

static int
send_msg(struct hook_guard *g, int32_t msg)
{
	if (g->fd >= 0 && send(g->fd, &msg, sizeof(msg),
	    MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)sizeof(msg))
		return 0;
	g->broken = 1;
	return -1;
}

/* The guard's end of the socket becomes its fd 3; nothing else of ours
 * reaches it. Returns the pid, or -1 with errno. */
static pid_t
spawn_guard(int theirs)
{
	static char *const argv[] = { HOOK_GUARD_NAME, NULL };
	static char *const envp[] = { NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	pid_t pid = -1;
	int err;

	(void)sigemptyset(&none);
	(void)sigfillset(&all);
	if ((err = posix_spawnattr_init(&attr)) != 0)
		goto fail;
	if ((err = posix_spawn_file_actions_init(&fa)) != 0) {
		(void)posix_spawnattr_destroy(&attr);
		goto fail;
	}
	err = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
	    POSIX_SPAWN_SETSIGDEF);
	if (err == 0)
		err = posix_spawnattr_setsigmask(&attr, &none);
	if (err == 0)
		err = posix_spawnattr_setsigdefault(&attr, &all);
	if (err == 0)
		err = posix_spawn_file_actions_adddup2(&fa, theirs, GUARD_FD);
	if (err == 0)
		err = posix_spawn_file_actions_addclosefrom_np(&fa,
		    GUARD_FD + 1);
	if (err == 0)
		err = posix_spawn(&pid, "/proc/self/exe", &fa, &attr, argv,
		    envp);
	(void)posix_spawn_file_actions_destroy(&fa);
	(void)posix_spawnattr_destroy(&attr);
fail:
	if (err != 0) {
		errno = err;
		return -1;
	}
	return pid;
}

/* Under mu: a new guard process, told about every hook still running. */
static int
start_locked(struct hook_guard *g)
{
	int sv[2] = { -1, -1 }, nfd;
	unsigned i;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1)
		goto fail;
	if (sv[1] <= GUARD_FD) {	/* dup2 onto itself keeps CLOEXEC */
		nfd = fcntl(sv[1], F_DUPFD_CLOEXEC, GUARD_FD + 1);
		if (nfd == -1)
			goto fail;
		(void)close(sv[1]);
		sv[1] = nfd;
	}
	g->pid = spawn_guard(sv[1]);
	if (g->pid == -1)
		goto fail;
	(void)close(sv[1]);
	g->fd = sv[0];
	g->broken = 0;
	for (i = 0; i < g->nlive; i++)
		(void)send_msg(g, (int32_t)g->live[i]);
	log_debug("forward: hook guard [%ld] started", (long)g->pid);
	return g->broken ? -1 : 0;
fail:
	log_error("forward: cannot start the hook guard: %s", strerror(errno));
	if (sv[0] >= 0)
		(void)close(sv[0]);
	if (sv[1] >= 0)
		(void)close(sv[1]);
	return -1;
}

/* Under mu: close our end and collect the guard. `kill_it` for one that
 * stopped listening (it would otherwise only go at EOF, which it may not
 * read). */
static void
stop_locked(struct hook_guard *g, int kill_it)
{
	int status;

	if (g->fd >= 0)
		(void)close(g->fd);
	g->fd = -1;
	if (g->pid > 0) {
		if (kill_it)
			(void)kill(g->pid, SIGKILL);
		while (waitpid(g->pid, &status, 0) == -1 && errno == EINTR)
			continue;
	}
	g->pid = -1;
}

/* Under mu: 0 when a guard runs and listens, else replaced (or -1). */
static int
ensure_locked(struct hook_guard *g)
{
	int status;
	pid_t r;

	if (g->pid > 0 && !g->broken) {
		r = waitpid(g->pid, &status, WNOHANG);
		if (r == 0)
			return 0;
		log_warning("forward: hook guard [%ld] %s; starting a new one",
		    (long)g->pid, r == g->pid && WIFSIGNALED(status) ?
		    "was killed" : "exited");
		if (r == g->pid)
			g->pid = -1;	/* reaped */
	}
	stop_locked(g, 1);
	return start_locked(g);
}

int
hook_guard_start(struct hook_guard *g)
{
	int rc;

	(void)pthread_mutex_lock(&g->mu);
	rc = ensure_locked(g);
	(void)pthread_mutex_unlock(&g->mu);
	return rc;
}

pid_t
hook_guard_pid(struct hook_guard *g)
{
	pid_t pid;

	(void)pthread_mutex_lock(&g->mu);
	pid = g->pid;
	(void)pthread_mutex_unlock(&g->mu);
	return pid;
}

int
hook_guard_enter(struct hook_guard *g, int *fd, void **stack,
    size_t *stack_len, char *reason, size_t reason_len)
{
	(void)pthread_mutex_lock(&g->mu);
	if (g->nlive >= HOOK_GUARD_MAX) {
		(void)snprintf(reason, reason_len, "spawn: too many hooks at "
		    "once");
		goto fail;
	}
	if (ensure_locked(g) == -1) {
		(void)snprintf(reason, reason_len, "spawn: no hook guard");
		goto fail;
	}
	if (g->stack == NULL) {
		g->stack = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
		if (g->stack == MAP_FAILED) {
			g->stack = NULL;
			(void)snprintf(reason, reason_len, "spawn: %s",
			    strerrordesc_np(errno));
			goto fail;
		}
	}
	*fd = g->fd;
	*stack = g->stack;
	*stack_len = CHILD_STACK;
	return 0;
fail:
	(void)pthread_mutex_unlock(&g->mu);
	return -1;
}

void
hook_guard_leave(struct hook_guard *g, pid_t pid)
{
	if (pid > 0 && g->nlive < HOOK_GUARD_MAX)
		g->live[g->nlive++] = pid;
	(void)pthread_mutex_unlock(&g->mu);
}

void
hook_guard_release(struct hook_guard *g, pid_t pid)
{
	unsigned i;

	(void)pthread_mutex_lock(&g->mu);
	for (i = 0; i < g->nlive && g->live[i] != pid; i++)
		continue;
	if (i < g->nlive)
		g->live[i] = g->live[--g->nlive];
	/* A guard that missed this would, at the daemon's death, kill a
	 * group id that may have been reused: replace it instead. */
	(void)send_msg(g, -(int32_t)pid);
	(void)pthread_mutex_unlock(&g->mu);
}

void
hook_guard_free(struct hook_guard *g)
{
	if (g == NULL)
		return;
	(void)pthread_mutex_lock(&g->mu);
	/* With nothing registered there is nothing for it to do at EOF:
	 * killing it cannot hang on a guard that stopped reading. */
	stop_locked(g, g->nlive == 0);
	if (g->stack != NULL)
		(void)munmap(g->stack, CHILD_STACK);
	(void)pthread_mutex_unlock(&g->mu);
	(void)pthread_mutex_destroy(&g->mu);
	free(g);
}
