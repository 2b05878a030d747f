/* hook.c - run the merchant's hook for one delivery (DESIGN "Forwarding",
 * hook:PATH) and supervise it until it and its process group are gone.
 *
 * The hook is started with posix_spawn: never a shell, exactly the argv and
 * environment given, default signal dispositions and an empty signal mask
 * (an ignored SIGPIPE or a blocked SIGTERM of the daemon must not leak into
 * the hook), stdin a pipe carrying the envelope, stdout and stderr one pipe
 * whose lines are logged, and no other descriptor.
 *
 * Between the daemon and the hook sits a guard: a forked child that leads
 * the hook's process group, spawns the hook, waits for it and exits with
 * its status. It is there for the daemon's death (SIGKILL, a crash): the
 * kernel then signals it (PR_SET_PDEATHSIG) and it kills the whole group.
 * Without it a hook of a dead daemon ran on, unsupervised and past any
 * timeout, while the restarted daemon delivered the same event (or the next
 * of its order) again: two deliveries of one order at once.
 *
 * The parent waits with poll() on the output pipe and a pidfd of the guard
 * against a deadline; it only ever waits for its own child (never
 * waitpid(-1)), so other threads' children are untouched.
 *
 * Must not: block forever (on a child that never reads stdin, a grandchild
 * that keeps stdout open, or one that ignores SIGTERM), leave a zombie, log
 * unbounded output, raise SIGPIPE in the daemon, or call anything in the
 * guard that is not async-signal-safe (it is a fork of a threaded process:
 * no malloc, no stdio, no locks, _exit only). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "hook.h"
#include "log.h"

/* Without a pidfd (old kernel, seccomp) nothing becomes readable when the
 * child exits; and a process group has no descriptor at all. These two
 * waits re-check at this interval instead; both are bounded by a deadline. */
#define RECHECK_MS	50
#define READ_ROUNDS	16	/* chunks per wake-up, then look at the clock */
/* After the hook exited: enough rounds to empty a full pipe (64 KiB by
 * default, 1 MiB at most unprivileged) and see its EOF. */
#define FINAL_ROUNDS	257
/* After SIGKILL, how long to wait for the killed to close our pipe. */
#define KILL_WAIT_MS	1000
/* The guard's parent-death signal. Not SIGTERM: a timeout's TERM must reach
 * the hook with its grace period, not turn into an instant KILL. */
#define GUARD_SIG	SIGUSR2
/* The guard's exit status when it could not start the hook (the reason
 * travels on the error pipe). */
#define GUARD_SPAWN_FAILED	127

struct outlog {
	pid_t	 pid;
	const struct log_fields *fields;
	char	 line[HOOK_LINE_MAX];
	size_t	 line_len;
	size_t	 logged;	/* bytes of output logged so far */
	size_t	 dropped;	/* bytes past HOOK_LOG_MAX */
};

struct child {
	pid_t	 pid;		/* the guard; also the process group id */
	int	 pidfd;		/* -1 when pidfd_open is unavailable */
	int	 err_fd;	/* the guard's spawn error (an errno), or EOF */
	int	 in_fd;		/* -1 once the input is written or refused */
	int	 out_fd;	/* -1 after EOF */
	const char *input;
	size_t	 input_len, input_off;
	int	 reaped;	/* waitpid() collected it; status is valid */
	int	 status;
	struct outlog log;
};

static const char *
errtext(int err)
{
	const char *s = strerrordesc_np(err);	/* thread-safe, unlike strerror */

	return s != NULL ? s : "unknown error";
}

static void
log_line(struct outlog *o)
{
	log_event(LOG_LVL_INFO, o->fields, "hook[%ld]: %.*s", (long)o->pid,
	    (int)o->line_len, o->line);
	o->line_len = 0;
}

/* Output is logged line by line (no newline kept); at most HOOK_LOG_MAX
 * bytes per run, so a hook printing forever cannot flood the journal. */
static void
outlog_feed(struct outlog *o, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (o->logged >= HOOK_LOG_MAX) {
			o->dropped += n - i;
			return;
		}
		o->logged++;
		if (p[i] == '\n') {
			log_line(o);
			continue;
		}
		o->line[o->line_len++] = p[i];
		if (o->line_len == sizeof(o->line))
			log_line(o);
	}
}

static void
outlog_finish(struct outlog *o)
{
	if (o->line_len > 0)
		log_line(o);
	if (o->dropped > 0)
		log_event(LOG_LVL_INFO, o->fields,
		    "hook[%ld]: %zu more bytes of output not logged",
		    (long)o->pid, o->dropped);
}

/* A pipe end at 0, 1 or 2 would be clobbered by the dup2 actions that set
 * up the child's stdio: move it up (still close-on-exec). */
static int
above_stdio(int *fd)
{
	int nfd;

	if (*fd > 2)
		return 0;
	nfd = fcntl(*fd, F_DUPFD_CLOEXEC, 3);
	if (nfd == -1)
		return -1;
	(void)close(*fd);
	*fd = nfd;
	return 0;
}

static int
make_pipes(int in[2], int out[2], int err[2])
{
	if (pipe2(in, O_CLOEXEC) == -1)
		return -1;
	if (pipe2(out, O_CLOEXEC) == -1)
		return -1;
	if (pipe2(err, O_CLOEXEC) == -1)
		return -1;
	if (above_stdio(&in[0]) == -1 || above_stdio(&in[1]) == -1 ||
	    above_stdio(&out[0]) == -1 || above_stdio(&out[1]) == -1 ||
	    above_stdio(&err[0]) == -1 || above_stdio(&err[1]) == -1)
		return -1;
	/* Our ends never block: a child that reads nothing or prints a lot
	 * must not stall this thread past its deadline. */
	if (fcntl(in[1], F_SETFL, O_NONBLOCK) == -1 ||
	    fcntl(out[0], F_SETFL, O_NONBLOCK) == -1 ||
	    fcntl(err[0], F_SETFL, O_NONBLOCK) == -1)
		return -1;
	return 0;
}

/* posix_spawn's attributes and actions for the hook, made by the daemon
 * (they allocate) and used by the guard; returns an errno value. The hook
 * stays in the guard's process group. */
static int
spawn_setup(int in_r, int out_w, posix_spawn_file_actions_t *fa,
    posix_spawnattr_t *attr)
{
	sigset_t none, all;
	int err;

	(void)sigemptyset(&none);
	(void)sigfillset(&all);
	(void)sigdelset(&all, SIGKILL);
	(void)sigdelset(&all, SIGSTOP);
	err = posix_spawnattr_init(attr);
	if (err != 0)
		return err;
	err = posix_spawn_file_actions_init(fa);
	if (err != 0) {
		(void)posix_spawnattr_destroy(attr);
		return err;
	}
	err = posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGMASK |
	    POSIX_SPAWN_SETSIGDEF);
	if (err == 0)
		err = posix_spawnattr_setsigmask(attr, &none);
	if (err == 0)
		err = posix_spawnattr_setsigdefault(attr, &all);
	if (err == 0)
		err = posix_spawn_file_actions_adddup2(fa, in_r, 0);
	if (err == 0)
		err = posix_spawn_file_actions_adddup2(fa, out_w, 1);
	if (err == 0)
		err = posix_spawn_file_actions_adddup2(fa, out_w, 2);
	/* Every daemon fd is close-on-exec already; this also covers any
	 * library that forgot. */
	if (err == 0)
		err = posix_spawn_file_actions_addclosefrom_np(fa, 3);
	if (err != 0) {
		(void)posix_spawn_file_actions_destroy(fa);
		(void)posix_spawnattr_destroy(attr);
	}
	return err;
}

/* The daemon's pid, in the guard (a forked child: its own copy). */
static volatile sig_atomic_t guard_daemon;

/* GUARD_SIG: the thread that forked the guard is gone. Once the daemon is
 * (we were handed to another parent), the whole group goes, guard too. A
 * stray GUARD_SIG while the daemon lives is ignored. */
static void
guard_on_signal(int sig)
{
	(void)sig;
	if (getppid() != (pid_t)guard_daemon)
		(void)kill(0, SIGKILL);
}

/* Every descriptor of the daemon the guard inherited (it never execs, so
 * close-on-exec does not apply), its stdio included. */
static void
guard_close_all(void)
{
	struct rlimit rl;
	unsigned fd;

	if (syscall(SYS_close_range, 0U, ~0U, 0U) == 0)
		return;
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur > 1U << 20)
		rl.rlim_cur = 1U << 20;
	for (fd = 0; fd < rl.rlim_cur; fd++)
		(void)close((int)fd);
}

/* The guard leaves the way the hook did: same exit status, or killed by
 * the same signal (without a core of its own). */
static _Noreturn void
guard_exit(int status)
{
	struct sigaction dfl;
	struct rlimit no_core = { 0, 0 };
	sigset_t one;
	int sig;

	if (WIFSIGNALED(status)) {
		sig = WTERMSIG(status);
		(void)memset(&dfl, 0, sizeof(dfl));
		dfl.sa_handler = SIG_DFL;
		(void)setrlimit(RLIMIT_CORE, &no_core);
		(void)sigaction(sig, &dfl, NULL);
		(void)sigemptyset(&one);
		(void)sigaddset(&one, sig);
		(void)sigprocmask(SIG_UNBLOCK, &one, NULL);
		(void)kill(getpid(), sig);
		_exit(128 + sig);
	}
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 255);
}

/* The guard (see the top). Every signal but GUARD_SIG stays blocked: a
 * timeout's TERM waits pending until the hook is gone, and then the guard
 * leaves as the hook did. */
static _Noreturn void
guard(const struct hook_run *run, posix_spawn_file_actions_t *fa,
    posix_spawnattr_t *attr, int err_w, pid_t daemon)
{
	struct sigaction sa;
	sigset_t mask;
	pid_t pid;
	int err, status;

	guard_daemon = daemon;
	(void)setpgid(0, 0);
	(void)memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	(void)sigaction(SIGCHLD, &sa, NULL);	/* waitpid needs it */
	sa.sa_handler = guard_on_signal;
	(void)sigfillset(&sa.sa_mask);
	(void)sigaction(GUARD_SIG, &sa, NULL);
	(void)sigfillset(&mask);
	(void)sigdelset(&mask, GUARD_SIG);
	(void)sigprocmask(SIG_SETMASK, &mask, NULL);
	(void)prctl(PR_SET_PDEATHSIG, GUARD_SIG);
	if (getppid() != daemon)
		(void)kill(0, SIGKILL);	/* it died before prctl */
	err = posix_spawn(&pid, run->path, fa, attr, run->argv, run->envp);
	if (err != 0) {
		/* An int fits any pipe: the write is whole or fails. */
		if (write(err_w, &err, sizeof(err)) == -1)
			_exit(255);
		_exit(GUARD_SPAWN_FAILED);
	}
	guard_close_all();
	while (waitpid(pid, &status, 0) == -1) {
		if (errno != EINTR)
			_exit(255);
	}
	guard_exit(status);
}

/* Fork the guard, which starts the hook; returns an errno value. */
static int
spawn(const struct hook_run *run, int in_r, int out_w, int err_w, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	pid_t self = getpid(), p;
	int err;

	err = spawn_setup(in_r, out_w, &fa, &attr);
	if (err != 0)
		return err;
	p = fork();
	if (p == 0)
		guard(run, &fa, &attr, err_w, self);
	if (p == -1) {
		err = errno;
	} else {
		/* Also here: a kill of the group right after fork must not
		 * miss a guard that has not run setpgid yet. */
		(void)setpgid(p, p);
		*pid = p;
	}
	(void)posix_spawn_file_actions_destroy(&fa);
	(void)posix_spawnattr_destroy(&attr);
	return err;
}

/* The guard could not start the hook: its errno as the reason. */
static int
spawn_failed(struct child *c, char *reason, size_t len)
{
	int err = 0;

	if (c->err_fd < 0 || read(c->err_fd, &err, sizeof(err)) !=
	    (ssize_t)sizeof(err))
		return 0;
	(void)snprintf(reason, len, "spawn: %s", errtext(err));
	return 1;
}

static void
close_fd(int *fd)
{
	if (*fd >= 0)
		(void)close(*fd);
	*fd = -1;
}

/* Read what is there now, at most `rounds` chunks (so a hook printing
 * without pause still lets us look at the clock); EOF closes out_fd. */
static void
drain(struct child *c, int rounds)
{
	char chunk[4096];
	ssize_t n;
	int i;

	for (i = 0; i < rounds && c->out_fd >= 0; i++) {
		n = read(c->out_fd, chunk, sizeof(chunk));
		if (n > 0) {
			outlog_feed(&c->log, chunk, (size_t)n);
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		close_fd(&c->out_fd);	/* EOF, or an error we cannot fix */
	}
}

/* Feed stdin. A hook that exits or closes stdin without reading is fine:
 * EPIPE just ends the input. SIGPIPE is blocked in this thread (hook_run),
 * and the one that EPIPE raised is taken off the pending set. */
static void
feed(struct child *c)
{
	static const struct timespec zero = { 0, 0 };
	sigset_t pipe_set;
	ssize_t n;

	while (c->in_fd >= 0 && c->input_off < c->input_len) {
		n = write(c->in_fd, c->input + c->input_off,
		    c->input_len - c->input_off);
		if (n > 0) {
			c->input_off += (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		if (n == -1 && errno == EPIPE) {
			(void)sigemptyset(&pipe_set);
			(void)sigaddset(&pipe_set, SIGPIPE);
			(void)sigtimedwait(&pipe_set, NULL, &zero);
		}
		break;
	}
	close_fd(&c->in_fd);	/* all written (EOF for the hook), or refused */
}

static void
reap(struct child *c, int options)
{
	pid_t r;

	if (c->reaped)
		return;
	do {
		r = waitpid(c->pid, &c->status, options);
	} while (r == -1 && errno == EINTR);
	if (r == c->pid || (r == -1 && errno == ECHILD))
		c->reaped = 1;	/* ECHILD: someone reaped it; status unknown */
	if (r == -1 && errno == ECHILD)
		c->status = 0xff00;	/* reads as "exit status 255" */
}

/* One poll round on the child's fds, the pidfd and cancel_fd, for at most
 * wait_ms. Returns 1 when cancel_fd is readable, else 0. */
static int
wait_round(struct child *c, int cancel_fd, int64_t wait_ms)
{
	struct pollfd p[4];
	nfds_t n = 0;
	int i_out = -1, i_in = -1, i_pid = -1, i_cancel = -1, r;

	if (c->out_fd >= 0) {
		i_out = (int)n;
		p[n++] = (struct pollfd){ c->out_fd, POLLIN, 0 };
	}
	if (c->in_fd >= 0) {
		i_in = (int)n;
		p[n++] = (struct pollfd){ c->in_fd, POLLOUT, 0 };
	}
	if (c->pidfd >= 0 && !c->reaped) {
		i_pid = (int)n;
		p[n++] = (struct pollfd){ c->pidfd, POLLIN, 0 };
	} else if (!c->reaped && wait_ms > RECHECK_MS) {
		wait_ms = RECHECK_MS;
	}
	if (cancel_fd >= 0) {
		i_cancel = (int)n;
		p[n++] = (struct pollfd){ cancel_fd, POLLIN, 0 };
	}
	if (wait_ms < 0)
		wait_ms = 0;
	r = poll(p, n, (int)wait_ms);
	if (r == -1)
		return 0;	/* EINTR: the caller loops on its deadline */
	if (i_out >= 0 && p[i_out].revents != 0)
		drain(c, READ_ROUNDS);
	if (i_in >= 0 && p[i_in].revents != 0)
		feed(c);
	if (i_pid < 0 || p[i_pid].revents != 0)
		reap(c, WNOHANG);
	if (c->reaped)
		close_fd(&c->in_fd);
	return i_cancel >= 0 && p[i_cancel].revents != 0;
}

/* Whether any process is left in the group once the hook itself is reaped
 * (before that the zombie leader alone makes kill(-pgid, 0) succeed). */
static int
group_alive(const struct child *c)
{
	return c->reaped && kill(-c->pid, 0) == 0;
}

/* TERM the whole group; give it HOOK_KILL_GRACE_MS to go (collecting its
 * output meanwhile); KILL whatever is left; reap. The first signal goes out
 * while the leader is unreaped, so its pid (the group id) cannot have been
 * reused yet. */
static void
kill_group(struct child *c)
{
	int64_t deadline = clock_mono_ms() + HOOK_KILL_GRACE_MS, left;

	(void)kill(-c->pid, SIGTERM);
	while ((left = deadline - clock_mono_ms()) > 0) {
		if (c->reaped && c->out_fd < 0 && !group_alive(c))
			break;
		/* Once the leader is gone, no fd tells when the rest of the
		 * group exits: re-check it now and then. */
		if (c->reaped && left > RECHECK_MS)
			left = RECHECK_MS;
		(void)wait_round(c, -1, left);
	}
	if (!c->reaped || group_alive(c))
		(void)kill(-c->pid, SIGKILL);
	reap(c, 0);
	/* SIGKILL is delivered asynchronously: a killed process that held our
	 * pipe closes it as it dies, so EOF says it is gone. Bounded, since a
	 * writer outside the group (setsid) is beyond our reach. */
	deadline = clock_mono_ms() + KILL_WAIT_MS;
	while (c->out_fd >= 0 && (left = deadline - clock_mono_ms()) > 0)
		(void)wait_round(c, -1, left);
	close_fd(&c->out_fd);
}

static void
set_exit_reason(int status, char *reason, size_t len)
{
	if (WIFEXITED(status)) {
		(void)snprintf(reason, len, "exit status %d",
		    WEXITSTATUS(status));
	} else if (WIFSIGNALED(status)) {
		const char *abbrev = sigabbrev_np(WTERMSIG(status));

		(void)snprintf(reason, len, "killed by signal %d (SIG%s)",
		    WTERMSIG(status), abbrev != NULL ? abbrev : "?");
	} else {
		(void)snprintf(reason, len, "wait status %d", status);
	}
}

/* The hook exited: take what it printed, then deal with anything it left
 * running in its group (a grandchild holding stdout, or a daemonised one):
 * we do not wait for it, it is killed. */
static void
after_exit(struct child *c)
{
	drain(c, FINAL_ROUNDS);
	if (c->out_fd < 0 && !group_alive(c))
		return;
	log_event(LOG_LVL_WARNING, c->log.fields,
	    "hook[%ld]: exited but left processes in its group; killing them",
	    (long)c->pid);
	kill_group(c);
}

static enum hook_result
supervise(struct child *c, const struct hook_run *run, char *reason,
    size_t len)
{
	int64_t deadline = clock_mono_ms() + run->timeout_ms, left;
	int cancelled = 0;

	feed(c);
	while (!c->reaped) {
		left = deadline - clock_mono_ms();
		if (left <= 0)
			break;
		if (wait_round(c, run->cancel_fd, left)) {
			cancelled = 1;
			break;
		}
	}
	if (c->reaped) {
		after_exit(c);
		if (spawn_failed(c, reason, len))
			return HOOK_FAILED;
		if (WIFEXITED(c->status) && WEXITSTATUS(c->status) == 0)
			return HOOK_OK;
		set_exit_reason(c->status, reason, len);
		return HOOK_FAILED;
	}
	log_event(LOG_LVL_WARNING, c->log.fields, "hook[%ld]: %s; killing its "
	    "process group", (long)c->pid, cancelled ? "shutting down" :
	    "past the timeout");
	kill_group(c);
	if (cancelled) {
		(void)snprintf(reason, len, "interrupted by shutdown");
		return HOOK_CANCELLED;
	}
	if (run->timeout_ms % 1000 == 0)
		(void)snprintf(reason, len, "timeout after %d s",
		    run->timeout_ms / 1000);
	else
		(void)snprintf(reason, len, "timeout after %d ms",
		    run->timeout_ms);
	return HOOK_FAILED;
}

enum hook_result
hook_run(const struct hook_run *run, char *reason, size_t reason_len)
{
	struct child c;
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err_p[2] = { -1, -1 };
	int err;
	sigset_t pipe_set, old;
	enum hook_result res = HOOK_FAILED;

	memset(&c, 0, sizeof(c));
	c.pidfd = c.in_fd = c.out_fd = c.err_fd = -1;
	c.input = run->input;
	c.input_len = run->input_len;
	c.log.fields = run->fields;
	(void)sigemptyset(&pipe_set);
	(void)sigaddset(&pipe_set, SIGPIPE);
	(void)pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	if (make_pipes(in, out, err_p) == -1) {
		(void)snprintf(reason, reason_len, "pipe: %s", errtext(errno));
		goto out;
	}
	err = spawn(run, in[0], out[1], err_p[1], &c.pid);
	close_fd(&in[0]);
	close_fd(&out[1]);
	close_fd(&err_p[1]);
	if (err != 0) {
		(void)snprintf(reason, reason_len, "spawn: %s", errtext(err));
		goto out;
	}
	c.log.pid = c.pid;
	c.in_fd = in[1];
	c.out_fd = out[0];
	c.err_fd = err_p[0];
	in[1] = out[0] = err_p[0] = -1;	/* the child struct owns them now */
	c.pidfd = (int)syscall(SYS_pidfd_open, c.pid, 0);	/* cloexec */
	res = supervise(&c, run, reason, reason_len);
	outlog_finish(&c.log);
out:
	close_fd(&c.in_fd);
	close_fd(&c.out_fd);
	close_fd(&c.err_fd);
	close_fd(&c.pidfd);
	close_fd(&in[0]);
	close_fd(&in[1]);
	close_fd(&out[0]);
	close_fd(&out[1]);
	close_fd(&err_p[0]);
	close_fd(&err_p[1]);
	(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
	return res;
}
