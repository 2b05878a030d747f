/* hook.c - run the merchant's hook for one delivery (DESIGN "Forwarding",
 * hook:PATH) and supervise it until it and its process group are gone.
 *
 * The hook is started by a clone(CLONE_VM | CLONE_VFORK) child, the way
 * posix_spawn starts a program, but with two steps of ours before execve:
 * it makes itself the leader of a new process group, and it registers that
 * group with the guard (hook_guard.h). Registering from the child, before
 * the exec, means there is no moment at which the hook runs and the guard
 * does not know it: if the daemon dies at any point, the guard kills the
 * group. Then: never a shell, exactly the argv and environment given,
 * default signal dispositions and an empty signal mask (an ignored SIGPIPE
 * or a blocked SIGTERM of the daemon must not leak into the hook; the
 * guard knows which dispositions to reset), HOOK_NICE below
 * the daemon's CPU priority, stdin a
 * pipe carrying the envelope, stdout and stderr two pipes whose lines are
 * logged, and no other descriptor. A vfork-style child shares the daemon's
 * memory until it execs, so nothing is copied (a fork of the whole daemon
 * cost ~5 ms and ~130 page faults per delivery); it runs only
 * async-signal-safe calls on its own stack, with every signal blocked, and
 * writes nothing of ours but its error number.
 *
 * The parent waits with poll() on the pipes and a pidfd of the hook against
 * a deadline; it only ever waits for its own child (never waitpid(-1)), so
 * other threads' children are untouched. After the hook exits, the group is
 * what counts: when it is empty, the run is over at once (a process that
 * left the group with setsid and holds stdout is not waited for); processes
 * left in it are killed.
 *
 * Must not: block forever (on a child that never reads stdin, a grandchild
 * that keeps stdout open, or one that ignores SIGTERM), leave a zombie, log
 * unbounded output, raise SIGPIPE in the daemon, or run anything but
 * async-signal-safe calls in the child before execve. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "hook.h"
#include "log.h"
#include "prio.h"
#include "reason.h"

/* Without a pidfd (old kernel, seccomp) nothing becomes readable when the
 * child exits; and a process group has no descriptor at all. These two
 * waits re-check at this interval instead; both are bounded by a deadline. */
#define RECHECK_MS	20
#define READ_ROUNDS	16	/* chunks per wake-up, then look at the clock */
/* After the hook exited: enough rounds to empty a full pipe (64 KiB by
 * default, 1 MiB at most unprivileged). */
#define FINAL_ROUNDS	257
/* After SIGKILL, how long to wait for the group to be gone. */
#define KILL_WAIT_MS	1000

/* One of the hook's output pipes. */
struct stream {
	int	 fd;		/* -1 after EOF */
	int	 level;		/* LOG_LVL_INFO (stdout), LOG_LVL_WARNING */
	char	 line[HOOK_LINE_MAX];
	size_t	 line_len;
	char	 last[REASON_QUOTE_MAX];	/* stderr: the last line */
	size_t	 last_len;
};

struct child {
	pid_t	 pid;		/* the hook; also its process group id */
	int	 pidfd;		/* -1 when pidfd_open is unavailable */
	int	 in_fd;		/* -1 once the input is written or refused */
	const char *input;
	size_t	 input_len, input_off;
	int	 reaped;	/* waitpid() collected it; status is valid */
	int	 status;
	struct stream out, err;
	const struct log_fields *fields;
	size_t	 logged;	/* bytes of output logged so far */
	size_t	 dropped;	/* bytes past HOOK_LOG_MAX */
};

/* What the spawning child shares with its parent (same memory). */
struct spawn {
	const struct hook_run *run;
	int	 in_r, out_w, err_w;
	int	 guard_fd;
	uint64_t reset;			/* signals 1-64 (bit sig - 1) whose
					 * disposition is not the default */
	int	 nice;			/* the hook's (HOOK_NICE above ours) */
	int	 report_fd;		/* -1, or where a forked child writes
					 * err and at_guard (see spawn_child) */
	volatile int err;		/* the child failed: an errno value */
	volatile int at_guard;		/* it failed telling the guard */
};

static const char *
errtext(int err)
{
	const char *s = strerrordesc_np(err);	/* thread-safe, unlike strerror */

	return s != NULL ? s : "unknown error";
}

static void
close_fd(int *fd)
{
	if (*fd >= 0)
		(void)close(*fd);
	*fd = -1;
}

/* A line is complete (or cut at HOOK_LINE_MAX, or the last one): log it
 * while the run's budget lasts, and remember stderr's last line. */
static void
line_done(struct child *c, struct stream *s)
{
	if (s->line_len == 0)
		return;
	if (c->logged < HOOK_LOG_MAX) {
		log_event(s->level, c->fields, "hook[%ld]: %.*s", (long)c->pid,
		    (int)s->line_len, s->line);
		c->logged += s->line_len + 1;
	} else {
		c->dropped += s->line_len + 1;
	}
	if (s->level == LOG_LVL_WARNING) {
		s->last_len = s->line_len < sizeof(s->last) ? s->line_len :
		    sizeof(s->last);
		memcpy(s->last, s->line, s->last_len);
	}
	s->line_len = 0;
}

/* Output is taken line by line (no newline kept); a hook printing forever
 * cannot flood the journal (line_done's budget). */
static void
stream_feed(struct child *c, struct stream *s, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] == '\n') {
			if (s->line_len == 0)
				c->logged++;	/* an empty line */
			line_done(c, s);
			continue;
		}
		s->line[s->line_len++] = p[i];
		if (s->line_len == sizeof(s->line))
			line_done(c, s);
	}
}

static void
output_finish(struct child *c)
{
	line_done(c, &c->out);
	line_done(c, &c->err);
	if (c->dropped > 0)
		log_event(LOG_LVL_INFO, c->fields,
		    "hook[%ld]: %zu more bytes of output not logged",
		    (long)c->pid, c->dropped);
}

/* A pipe end at 0, 1 or 2 would be clobbered by the dup2 calls that set up
 * the child's stdio: move it up (still close-on-exec). */
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

/* in, out and err: [0] read end, [1] write end. Our ends never block: a
 * child that reads nothing or prints a lot must not stall this thread past
 * its deadline. */
static int
make_pipes(int in[2], int out[2], int err[2])
{
	if (pipe2(in, O_CLOEXEC) == -1 || pipe2(out, O_CLOEXEC) == -1 ||
	    pipe2(err, O_CLOEXEC) == -1)
		return -1;
	if (above_stdio(&in[0]) == -1 || above_stdio(&in[1]) == -1 ||
	    above_stdio(&out[0]) == -1 || above_stdio(&out[1]) == -1 ||
	    above_stdio(&err[0]) == -1 || above_stdio(&err[1]) == -1)
		return -1;
	if (fcntl(in[1], F_SETFL, O_NONBLOCK) == -1 ||
	    fcntl(out[0], F_SETFL, O_NONBLOCK) == -1 ||
	    fcntl(err[0], F_SETFL, O_NONBLOCK) == -1)
		return -1;
	return 0;
}

/* The spawning child runs on the parent's memory while the parent's thread
 * waits (CLONE_VM | CLONE_VFORK), so it calls the kernel directly, as
 * glibc's own posix_spawn child does: no libc wrapper that keeps state and
 * no sanitizer interceptor (ThreadSanitizer's sigaction and close
 * interceptors would rewrite the parent's bookkeeping) runs there, and its
 * own code is not instrumented. Only async-signal-safe work: system calls,
 * arithmetic, the child's own stack. A failed call's errno is the negated
 * return value of syscall() (errno itself is the parent thread's). */
#define CHILD_CODE \
	__attribute__((no_sanitize_address, no_sanitize_thread))

/* The kernel's struct sigaction (rt_sigaction), for SIG_DFL only. */
struct child_sigaction {
	void	(*handler)(int);
	unsigned long flags;
	void	(*restorer)(void);
	uint64_t mask;
};


/* A system call's result: -errno on failure, as the raw kernel ABI. */
CHILD_CODE static long
child_call(long rc)
{
	return rc == -1 ? -(long)errno : rc;
}

/* Every descriptor above stdio but `keep` (-1: none) goes (the daemon's are
 * close-on-exec already; this also covers any library that forgot, and the
 * guard's socket). */
CHILD_CODE static void
child_close_rest(int keep)
{
	struct rlimit rl;
	long fd, max = 1L << 20;

	if (keep < 3) {
		if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0)
			return;
	} else if ((keep == 3 || syscall(SYS_close_range, 3U,
	    (unsigned)keep - 1, 0U) == 0) &&
	    syscall(SYS_close_range, (unsigned)keep + 1, ~0U, 0U) == 0) {
		return;
	}
	if (syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &rl) == 0 &&
	    rl.rlim_cur < (rlim_t)max)
		max = (long)rl.rlim_cur;
	for (fd = 3; fd < max; fd++) {
		if (fd != keep)
			(void)syscall(SYS_close, fd);
	}
}

/* HOOK_NICE nicer than the daemon (capped at 19), and the long slice of
 * prio.h where the kernel takes one; the scheduling policy stays the
 * daemon's. A kernel without sched_setattr gets the nice value alone; one
 * that does not know slices ignores it. The RLIMIT_NICE that lets intake
 * run ahead (the unit's LimitNICE=) is not the hook's: it goes, so a hook
 * cannot raise itself above intake. */
CHILD_CODE static void
child_priority(int nice)
{
	struct prio_sched_attr a = { sizeof(a), 0, PRIO_KEEP_POLICY, 0, 0,
	    (uint64_t)PRIO_SLICE_US * 1000, 0, 0 };
	uint64_t no_raise[2] = { 0, 0 };	/* struct rlimit64 */

	a.nice = nice > 19 ? 19 : nice;
	if (syscall(SYS_sched_setattr, 0, &a, 0U) != 0)
		(void)syscall(SYS_setpriority, PRIO_PROCESS, 0, nice);
	(void)syscall(SYS_prlimit64, 0, RLIMIT_NICE, no_raise, NULL);
}

/* The signals the daemon changed get their default disposition back, then
 * nothing stays blocked. */
CHILD_CODE static void
child_signals(uint64_t reset)
{
	struct child_sigaction dfl = { SIG_DFL, 0, NULL, 0 };
	uint64_t none = 0;
	long sig;

	for (sig = 1; sig <= 64; sig++) {
		if ((reset >> (sig - 1) & 1) != 0 && sig != SIGKILL &&
		    sig != SIGSTOP)	/* EINVAL for some: fine */
			(void)syscall(SYS_rt_sigaction, sig, &dfl, NULL,
			    sizeof(none));
	}
	(void)syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL,
	    sizeof(none));
}

/* The spawning child (see above): every signal blocked until the
 * dispositions are defaults again, so no handler of the daemon runs here. */
CHILD_CODE static int
child_main(void *arg)
{
	struct spawn *sp = arg;
	int32_t msg;
	long rc;

	rc = child_call(syscall(SYS_setpgid, 0, 0));
	if (rc < 0)
		goto fail;
	msg = (int32_t)syscall(SYS_getpid);
	sp->at_guard = 1;
	rc = child_call(syscall(SYS_sendto, sp->guard_fd, &msg, sizeof(msg),
	    MSG_NOSIGNAL | MSG_DONTWAIT, NULL, 0));
	if (rc != (long)sizeof(msg)) {
		if (rc >= 0)
			rc = -EIO;
		goto fail;
	}
	sp->at_guard = 0;
	rc = child_call(syscall(SYS_dup3, sp->in_r, 0, 0));
	if (rc >= 0)
		rc = child_call(syscall(SYS_dup3, sp->out_w, 1, 0));
	if (rc >= 0)
		rc = child_call(syscall(SYS_dup3, sp->err_w, 2, 0));
	if (rc < 0)
		goto fail;
	child_close_rest(sp->report_fd);
	child_signals(sp->reset);
	/* Niced last: the daemon's thread waits (CLONE_VFORK, under the
	 * guard's lock) until the exec, and a child niced early waited
	 * behind running hooks for the CPU to get there (about 250 us a
	 * spawn instead of 100). */
	child_priority(sp->nice);
	rc = child_call(syscall(SYS_execve, sp->run->path, sp->run->argv,
	    sp->run->envp));
fail:
	sp->err = rc < 0 ? (int)-rc : EINVAL;
	if (sp->report_fd >= 0) {
		int report[2] = { sp->err, sp->at_guard };

		(void)syscall(SYS_write, sp->report_fd, report, sizeof(report));
	}
	(void)syscall(SYS_exit_group, 127);
	return 127;	/* not reached */
}

#if defined(__SANITIZE_THREAD__)
/* ThreadSanitizer intercepts clone() as a fork and resets its bookkeeping
 * in the child, which a CLONE_VM child shares with the daemon: a TSan build
 * spawns with fork() instead (its interceptor knows that one), and the child
 * reports a failure through a close-on-exec pipe rather than sp. The rest,
 * from child_main on, is the same code. */
static pid_t
spawn_child(struct spawn *sp, void *stack, size_t stack_len)
{
	int report[2], p[2];
	pid_t pid;

	(void)stack;
	(void)stack_len;
	if (pipe2(p, O_CLOEXEC) == -1)
		return -1;
	pid = fork();
	if (pid == 0) {
		sp->report_fd = p[1];
		(void)child_main(sp);
	}
	(void)close(p[1]);
	if (pid > 0 && read(p[0], report, sizeof(report)) ==
	    (ssize_t)sizeof(report)) {
		sp->err = report[0];
		sp->at_guard = report[1];
	}
	(void)close(p[0]);
	return pid;
}
#else
/* CLONE_VFORK: back here once the child has exec'd or exited. */
static pid_t
spawn_child(struct spawn *sp, void *stack, size_t stack_len)
{
	return clone(child_main, (char *)stack + stack_len, CLONE_VM |
	    CLONE_VFORK | SIGCHLD, sp);
}
#endif

/* Start the hook; returns 0, or -1 with `reason`. On 0 c->pid runs and is
 * registered with the guard. */
static int
spawn(const struct hook_run *run, struct child *c, int in_r, int out_w,
    int err_w, char *reason, size_t len)
{
	struct spawn sp = { run, in_r, out_w, err_w, -1, 0, 0, -1, 0, 0 };
	sigset_t all, old;
	size_t stack_len = 0;
	void *stack = NULL;
	int status;
	pid_t pid;

	if (run->guard == NULL) {
		(void)snprintf(reason, len, "spawn: no hook guard");
		return -1;
	}
	sp.reset = hook_guard_signals(run->guard);
	errno = 0;
	sp.nice = getpriority(PRIO_PROCESS, 0);	/* -1 may be a nice value */
	sp.nice = errno != 0 ? HOOK_NICE : sp.nice + HOOK_NICE;
	if (hook_guard_enter(run->guard, &sp.guard_fd, &stack, &stack_len,
	    reason, len) == -1)
		return -1;
	(void)sigfillset(&all);
	(void)pthread_sigmask(SIG_SETMASK, &all, &old);
	pid = spawn_child(&sp, stack, stack_len);
	if (pid == -1)
		sp.err = errno;
	(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
	hook_guard_leave(run->guard, pid > 0 && sp.err == 0 ? pid : 0);
	if (sp.err == 0) {
		c->pid = pid;
		return 0;
	}
	if (pid > 0) {
		/* Its group is only itself, a zombie. Unregistered or not, a
		 * guard that does not take this message gets replaced. */
		hook_guard_release(run->guard, pid);
		while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
			continue;
	}
	(void)snprintf(reason, len, "%s: %s", sp.at_guard ?
	    "spawn: hook guard" : "spawn", errtext(sp.err));
	return -1;
}

/* Read what is there now, at most `rounds` chunks (so a hook printing
 * without pause still lets us look at the clock); EOF closes the pipe. */
static void
drain(struct child *c, struct stream *s, int rounds)
{
	char chunk[4096];
	ssize_t n;
	int i;

	for (i = 0; i < rounds && s->fd >= 0; i++) {
		n = read(s->fd, chunk, sizeof(chunk));
		if (n > 0) {
			stream_feed(c, s, chunk, (size_t)n);
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		close_fd(&s->fd);	/* EOF, or an error we cannot fix */
	}
}

/* Feed stdin. A hook that exits or closes stdin without reading is fine:
 * EPIPE just ends the input. The SIGPIPE it raises was discarded by the
 * kernel or is taken off the pending set here (pipe_signal()). */
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
	struct pollfd p[5];
	nfds_t n = 0;
	int i_out = -1, i_err = -1, i_in = -1, i_pid = -1, i_cancel = -1;

	if (c->out.fd >= 0) {
		i_out = (int)n;
		p[n++] = (struct pollfd){ c->out.fd, POLLIN, 0 };
	}
	if (c->err.fd >= 0) {
		i_err = (int)n;
		p[n++] = (struct pollfd){ c->err.fd, POLLIN, 0 };
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
	if (poll(p, n, wait_ms > 0 ? (int)wait_ms : 0) == -1)
		return 0;	/* EINTR: the caller loops on its deadline */
	if (i_out >= 0 && p[i_out].revents != 0)
		drain(c, &c->out, READ_ROUNDS);
	if (i_err >= 0 && p[i_err].revents != 0)
		drain(c, &c->err, READ_ROUNDS);
	if (i_in >= 0 && p[i_in].revents != 0)
		feed(c);
	if (i_pid < 0 || p[i_pid].revents != 0)
		reap(c, WNOHANG);
	if (c->reaped)
		close_fd(&c->in_fd);
	return i_cancel >= 0 && p[i_cancel].revents != 0;
}

/* Whether /proc/PID/stat (the entry `name` of /proc) is a live process of
 * group pgid: its state (after the last ')') is not Z or X and its fifth
 * field is pgid. */
static int
proc_in_group(int proc_fd, const char *name, pid_t pgid)
{
	char path[64], stat[512];
	const char *p;
	long v = 0;
	ssize_t n;
	int fd, field;

	(void)snprintf(path, sizeof(path), "%s/stat", name);
	fd = openat(proc_fd, path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return 0;
	n = read(fd, stat, sizeof(stat) - 1);
	(void)close(fd);
	if (n <= 0)
		return 0;
	stat[n] = '\0';
	p = strrchr(stat, ')');
	if (p == NULL || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X')
		return 0;
	/* ") S ppid pgrp ": skip the state and the parent's pid */
	for (p += 3, field = 0; *p != '\0' && field < 2; p++) {
		if (*p == ' ')
			field++;
	}
	while (*p >= '0' && *p <= '9' && v < INT32_MAX)
		v = v * 10 + (*p++ - '0');
	return v == (long)pgid;
}

/* Whether a process of the group is alive, not counting zombies: an
 * orphaned grandchild that exited stays in the group until init reaps it,
 * which may take a while, and kill() counts it. Only asked once kill() says
 * the group exists; without /proc, kill()'s answer stands. */
static int
group_has_live(pid_t pgid)
{
	struct dirent *e;
	DIR *d = opendir("/proc");
	int found = 0;

	if (d == NULL)
		return 1;
	while (!found && (e = readdir(d)) != NULL) {
		if (e->d_name[0] >= '1' && e->d_name[0] <= '9')
			found = proc_in_group(dirfd(d), e->d_name, pgid);
	}
	(void)closedir(d);
	return found;
}

/* Whether any process is left in the group once the hook itself is reaped
 * (before that the zombie leader alone makes kill(-pgid, 0) succeed). */
static int
group_alive(const struct child *c)
{
	return c->reaped && kill(-c->pid, 0) == 0 && group_has_live(c->pid);
}

/* Wait (collecting output) until the group is empty or the deadline. Once
 * the leader is gone no fd tells when the rest exits: re-check now and
 * then. */
static void
wait_group(struct child *c, int64_t deadline)
{
	int64_t left;

	while ((left = deadline - clock_mono_ms()) > 0) {
		if (c->reaped && !group_alive(c))
			return;
		if (c->reaped && left > RECHECK_MS)
			left = RECHECK_MS;
		(void)wait_round(c, -1, left);
	}
}

/* TERM the whole group; give it HOOK_KILL_GRACE_MS to go (collecting its
 * output meanwhile); KILL whatever is left; reap. The first signal goes out
 * while the leader is unreaped, or while others hold the group id, so it
 * cannot have been reused yet. */
static void
kill_group(struct child *c)
{
	(void)kill(-c->pid, SIGTERM);
	wait_group(c, clock_mono_ms() + HOOK_KILL_GRACE_MS);
	if (!c->reaped || group_alive(c))
		(void)kill(-c->pid, SIGKILL);
	reap(c, 0);
	/* SIGKILL lands asynchronously: the group is released only once it
	 * is empty (bounded: a process stuck in the kernel takes its time). */
	wait_group(c, clock_mono_ms() + KILL_WAIT_MS);
	drain(c, &c->out, FINAL_ROUNDS);
	drain(c, &c->err, FINAL_ROUNDS);
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

/* ": <last stderr line>" after the reason, when the hook wrote one: what
 * an operator needs at 3 a.m. is the hook's own word, not only "exit
 * status 75". */
static void
add_stderr(const struct child *c, char *reason, size_t len)
{
	size_t n = strnlen(reason, len);

	if (c->err.last_len == 0 || n + 3 >= len)
		return;
	(void)snprintf(reason + n, len - n, ": ");
	reason_append_quoted(reason, len, c->err.last, c->err.last_len);
}

/* The hook exited: take what it printed, then deal with anything it left
 * running in its group (a grandchild, daemonised or not): we do not wait
 * for it, it is killed. An empty group ends the run at once, whoever else
 * (outside the group) still holds the pipes. */
static enum hook_result
after_exit(struct child *c, char *reason, size_t len)
{
	drain(c, &c->out, FINAL_ROUNDS);
	drain(c, &c->err, FINAL_ROUNDS);
	if (group_alive(c)) {
		log_event(LOG_LVL_WARNING, c->fields, "hook[%ld]: exited but "
		    "left processes in its group; killing them", (long)c->pid);
		kill_group(c);
	}
	if (WIFEXITED(c->status) && WEXITSTATUS(c->status) == 0)
		return HOOK_OK;
	set_exit_reason(c->status, reason, len);
	return HOOK_FAILED;
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
	if (c->reaped)
		return after_exit(c, reason, len);
	log_event(LOG_LVL_WARNING, c->fields, "hook[%ld]: %s; killing its "
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
	return HOOK_TIMEOUT;
}

static void
child_init(struct child *c, const struct hook_run *run)
{
	memset(c, 0, sizeof(*c));
	c->pid = -1;
	c->pidfd = c->in_fd = c->out.fd = c->err.fd = -1;
	c->input = run->input;
	c->input_len = run->input_len;
	c->fields = run->fields;
	c->out.level = LOG_LVL_INFO;
	c->err.level = LOG_LVL_WARNING;
}

/* A hook that exits without reading stdin makes our write fail with EPIPE
 * and raise SIGPIPE at this thread. The daemon ignores SIGPIPE; while this
 * thread does not block it, the kernel discards it at once. Blocked, it
 * would be queued and taken off again by feed() for every such hook, and
 * each queuing wakes every signalfd of the process: the main thread's poll
 * (7 to 24 times for 60 such hooks, more under the sanitizers). Where
 * SIGPIPE is not ignored (a program other than the daemon), it is blocked
 * and never fatal. The caller's mask is saved in old. */
static void
pipe_signal(sigset_t *old)
{
	struct sigaction sa;
	sigset_t pipe_set;
	int how = SIG_BLOCK;

	(void)sigemptyset(&pipe_set);
	(void)sigaddset(&pipe_set, SIGPIPE);
	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN &&
	    !(sa.sa_flags & SA_SIGINFO))
		how = SIG_UNBLOCK;
	(void)pthread_sigmask(how, &pipe_set, old);
}

enum hook_result
hook_run(const struct hook_run *run, char *reason, size_t reason_len)
{
	struct child c;
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
	sigset_t old;
	enum hook_result res = HOOK_FAILED;

	child_init(&c, run);
	pipe_signal(&old);
	if (make_pipes(in, out, err) == -1) {
		(void)snprintf(reason, reason_len, "pipe: %s", errtext(errno));
		goto out;
	}
	if (spawn(run, &c, in[0], out[1], err[1], reason, reason_len) == -1)
		goto out;
	close_fd(&in[0]);
	close_fd(&out[1]);
	close_fd(&err[1]);
	c.in_fd = in[1];
	c.out.fd = out[0];
	c.err.fd = err[0];
	in[1] = out[0] = err[0] = -1;	/* the child struct owns them now */
	c.pidfd = (int)syscall(SYS_pidfd_open, c.pid, 0);	/* cloexec */
	res = supervise(&c, run, reason, reason_len);
	output_finish(&c);
	if (res == HOOK_FAILED || res == HOOK_TIMEOUT)
		add_stderr(&c, reason, reason_len);
	hook_guard_release(run->guard, c.pid);	/* the group is gone */
out:
	close_fd(&c.in_fd);
	close_fd(&c.out.fd);
	close_fd(&c.err.fd);
	close_fd(&c.pidfd);
	close_fd(&in[0]);
	close_fd(&in[1]);
	close_fd(&out[0]);
	close_fd(&out[1]);
	close_fd(&err[0]);
	close_fd(&err[1]);
	(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
	return res;
}
