/* test_hook.c - the hook runner against real scripts in a temp dir: exit
 * statuses, spawn failures, timeouts, a grandchild that ignores TERM and
 * keeps stdout open, output bounds, argv/environment/stdin byte-exact, no
 * leaked descriptors, a hook that never reads stdin, cancellation, stderr
 * logged as warnings and its last line in the reason, no false "left
 * processes" alarm, a setsid child that holds stdout, the guard's title,
 * and no zombie left behind. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "tmpdir.h"
#include "clock.h"
#include "hook.h"
#include "log.h"
#include "prio.h"
#include "slice.h"
#include "reason.h"

static char dir[] = "/tmp/cfhook-test-hook-XXXXXX";

static char self_exe[4096];

static void
path_in(char *out, size_t n, const char *name)
{
	(void)snprintf(out, n, "%s/%s", dir, name);
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
	FILE *fp = fopen(path, "we");

	if (fp == NULL)
		return;
	(void)fputs(text, fp);
	(void)fclose(fp);
	(void)chmod(path, mode);
}

/* A script named `name` in the temp dir; its path goes to out. */
static void
script(char *out, size_t n, const char *name, const char *body)
{
	path_in(out, n, name);
	write_file(out, body, 0755);
}

static char *
read_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "re");
	char *buf;
	size_t n;

	if (fp == NULL)
		return NULL;
	buf = calloc(1, 1 << 20);
	n = buf != NULL ? fread(buf, 1, (1 << 20) - 1, fp) : 0;
	(void)fclose(fp);
	if (len != NULL)
		*len = n;
	return buf;
}

static char *const default_env[] = { "PATH=/usr/bin:/bin", NULL };
static struct hook_guard *guard;

static enum hook_result
run_simple(const char *path, int timeout_ms, const char *input, char *reason,
    size_t rlen)
{
	char *argv[] = { (char *)(uintptr_t)path, NULL };
	struct hook_run run = { path, argv, default_env, input,
	    input != NULL ? strlen(input) : 0, timeout_ms, -1, NULL, guard };

	reason[0] = '\0';
	return hook_run(&run, reason, rlen);
}

static void
test_exit_zero(void)
{
	char p[512], reason[200];

	script(p, sizeof(p), "ok.sh", "#!/bin/sh\ncat >/dev/null\nexit 0\n");
	CHECK_INT(run_simple(p, 5000, "{}\n", reason, sizeof(reason)), HOOK_OK);
}

static void
test_exit_three(void)
{
	char p[512], reason[200];

	script(p, sizeof(p), "three.sh", "#!/bin/sh\necho failing >&2\nexit 3\n");
	CHECK_INT(run_simple(p, 5000, "{}\n", reason, sizeof(reason)),
	    HOOK_FAILED);
	CHECK_STR(reason, "exit status 3: failing");
}

static void
test_killed_by_signal(void)
{
	char p[512], reason[200];

	script(p, sizeof(p), "sig.sh", "#!/bin/sh\nkill -KILL $$\n");
	CHECK_INT(run_simple(p, 5000, NULL, reason, sizeof(reason)),
	    HOOK_FAILED);
	CHECK_STR(reason, "killed by signal 9 (SIGKILL)");
}

static void
test_spawn_failures(void)
{
	char p[512], reason[200];

	path_in(p, sizeof(p), "missing");
	CHECK_INT(run_simple(p, 5000, NULL, reason, sizeof(reason)),
	    HOOK_FAILED);
	CHECK_STR(reason, "spawn: No such file or directory");
	path_in(p, sizeof(p), "noexec.sh");
	write_file(p, "#!/bin/sh\nexit 0\n", 0644);
	CHECK_INT(run_simple(p, 5000, NULL, reason, sizeof(reason)),
	    HOOK_FAILED);
	CHECK_STR(reason, "spawn: Permission denied");
}

static void
test_timeout(void)
{
	char p[512], reason[200];
	int64_t t0 = clock_mono_ms(), took;

	script(p, sizeof(p), "hang.sh", "#!/bin/sh\nsleep 60\n");
	CHECK_INT(run_simple(p, 300, NULL, reason, sizeof(reason)),
	    HOOK_TIMEOUT);
	took = clock_mono_ms() - t0;
	CHECK_STR(reason, "timeout after 300 ms");
	CHECK(took >= 300);
	CHECK(took < 300 + HOOK_KILL_GRACE_MS + 1000);
}

/* pid written by a process of the hook; 0 when absent. */
static pid_t
pid_from(const char *name)
{
	char p[512], *text;
	long v = 0;

	path_in(p, sizeof(p), name);
	text = read_file(p, NULL);
	if (text != NULL)
		v = strtol(text, NULL, 10);
	free(text);
	return (pid_t)v;
}

/* Gone, or a zombie waiting for init: either way no longer running. */
static int
process_gone_now(pid_t pid)
{
	char p[64], *stat, *rp;
	int gone;

	if (kill(pid, 0) == -1 && errno == ESRCH)
		return 1;
	(void)snprintf(p, sizeof(p), "/proc/%ld/stat", (long)pid);
	stat = read_file(p, NULL);
	rp = stat != NULL ? strrchr(stat, ')') : NULL;
	gone = rp == NULL || (rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'));
	free(stat);
	return gone;
}

/* A signal takes effect asynchronously: allow the kernel a moment. */
static int
process_gone(pid_t pid)
{
	int i;

	for (i = 0; i < 50; i++) {
		if (process_gone_now(pid))
			return 1;
		(void)usleep(10000);
	}
	return 0;
}

/* The hook hangs; its grandchild ignores TERM and holds stdout open. Both
 * are gone within timeout + grace. */
static void
test_timeout_grandchild(void)
{
	char p[512], body[1024], reason[200];
	int64_t t0 = clock_mono_ms(), took;
	pid_t gc;

	(void)snprintf(body, sizeof(body), "#!/bin/sh\n"
	    "sh -c 'echo $$ > %s/gc1.pid; trap \"\" TERM; "
	    "while :; do sleep 1; done' &\nsleep 60\n", dir);
	script(p, sizeof(p), "hang_gc.sh", body);
	CHECK_INT(run_simple(p, 500, NULL, reason, sizeof(reason)),
	    HOOK_TIMEOUT);
	took = clock_mono_ms() - t0;
	CHECK_STR(reason, "timeout after 500 ms");
	CHECK(took < 500 + HOOK_KILL_GRACE_MS + 1000);
	gc = pid_from("gc1.pid");
	CHECK(gc > 0);
	if (gc > 0)
		CHECK(process_gone(gc));
}

/* The hook succeeds at once but leaves a TERM-proof grandchild holding
 * stdout: still delivered, not stuck, the grandchild killed. */
static void
test_exit_leaves_grandchild(void)
{
	char p[512], body[1024], reason[200];
	int64_t t0 = clock_mono_ms(), took;
	pid_t gc;

	(void)snprintf(body, sizeof(body), "#!/bin/sh\n"
	    "sh -c 'echo $$ > %s/gc2.pid; trap \"\" TERM; "
	    "while :; do sleep 1; done' &\n"
	    "while [ ! -s %s/gc2.pid ]; do sleep 0.05; done\nexit 0\n", dir, dir);
	script(p, sizeof(p), "leave_gc.sh", body);
	CHECK_INT(run_simple(p, 10000, NULL, reason, sizeof(reason)), HOOK_OK);
	took = clock_mono_ms() - t0;
	CHECK(took < HOOK_KILL_GRACE_MS + 2000);
	gc = pid_from("gc2.pid");
	CHECK(gc > 0);
	if (gc > 0)
		CHECK(process_gone(gc));
}

/* Bytes of "hook[" lines and whether the drop notice is there, in a log
 * captured from stderr. */
static void
count_hook_log(const char *text, size_t len, size_t *bytes, int *notice)
{
	const char *p = text, *end = text + len, *nl;

	*bytes = 0;
	*notice = 0;
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		if (memmem(p, (size_t)(nl - p), "hook[", 5) != NULL)
			*bytes += (size_t)(nl - p);
		if (memmem(p, (size_t)(nl - p), "more bytes of output not logged",
		    31) != NULL)
			*notice = 1;
		p = nl + 1;
	}
}

static void
test_huge_output_bounded(void)
{
	char p[512], logp[512], reason[200], *text;
	size_t len = 0, bytes;
	int saved, fd, notice;

	script(p, sizeof(p), "loud.sh", "#!/bin/sh\n"
	    "i=0\nwhile [ $i -lt 2000 ]; do\n"
	    "printf '%0500d\\n' $i\ni=$((i+1))\ndone\nexit 0\n");
	path_in(logp, sizeof(logp), "stderr.log");
	fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	saved = dup(2);
	(void)dup2(fd, 2);
	CHECK_INT(run_simple(p, 20000, NULL, reason, sizeof(reason)), HOOK_OK);
	(void)dup2(saved, 2);
	(void)close(saved);
	(void)close(fd);
	text = read_file(logp, &len);
	if (!CHECK(text != NULL))
		return;
	count_hook_log(text, len, &bytes, &notice);
	/* ~1 MB printed; at most 64 KiB of it logged (plus line prefixes) */
	CHECK(bytes > HOOK_LOG_MAX / 2);
	CHECK(bytes < HOOK_LOG_MAX + 200 * 40);
	CHECK(notice);
	free(text);
}

/* argv, environment and stdin arrive byte for byte; nothing else is in the
 * environment. */
static void
test_argv_env_stdin_exact(void)
{
	static const char input[] = "{\"order_id\":\"a\\nb\",\"q\":\"'\\\"$(x)\"}\n";
	char *argv[] = { NULL, "TYPE X", "", "o'1\"$(touch /tmp/cfhook-pwn)\n;`id`",
	    NULL };
	char *envp[] = { "PATH=/usr/local/bin:/usr/bin:/bin", "CFHOOK_A=x y",
	    "CFHOOK_EMPTY=", "CFHOOK_NL=l1\nl2", NULL };
	char p[512], body[1024], f[512], reason[200], *text;
	struct hook_run run;
	size_t len = 0;

	(void)snprintf(body, sizeof(body), "#!/bin/sh\n"
	    "printf '%%s\\0' \"$0\" \"$@\" > %s/argv\n"
	    "cat /proc/$$/environ > %s/env\ncat > %s/stdin\n", dir, dir, dir);
	script(p, sizeof(p), "exact.sh", body);
	argv[0] = p;
	run = (struct hook_run){ p, argv, envp, input, strlen(input), 5000, -1,
	    NULL, guard };
	CHECK_INT(hook_run(&run, reason, sizeof(reason)), HOOK_OK);
	path_in(f, sizeof(f), "argv");
	text = read_file(f, &len);
	CHECK(text != NULL && len == strlen(p) + 1 + 7 + 1 +
	    strlen(argv[3]) + 1);
	if (text != NULL && len > strlen(p) + 10) {
		CHECK_STR(text, p);
		CHECK_STR(text + strlen(p) + 1, "TYPE X");
		CHECK_STR(text + strlen(p) + 8, "");
		CHECK_STR(text + strlen(p) + 9, argv[3]);
	}
	free(text);
	path_in(f, sizeof(f), "env");
	text = read_file(f, &len);
	CHECK(text != NULL && len == sizeof("PATH=/usr/local/bin:/usr/bin:/bin") +
	    sizeof("CFHOOK_A=x y") + sizeof("CFHOOK_EMPTY=") +
	    sizeof("CFHOOK_NL=l1\nl2"));
	if (text != NULL)
		CHECK(memcmp(text, "PATH=/usr/local/bin:/usr/bin:/bin\0CFHOOK_A=x y"
		    "\0CFHOOK_EMPTY=\0CFHOOK_NL=l1\nl2\0", len) == 0);
	free(text);
	path_in(f, sizeof(f), "stdin");
	text = read_file(f, &len);
	CHECK_STR(text, input);
	free(text);
	CHECK(access("/tmp/cfhook-pwn", F_OK) == -1);
}

/* The hook is this test binary in "fdcheck" mode: it lists its own open
 * descriptors. A descriptor the parent left inheritable must not be there. */
static void
test_no_fd_leak(void)
{
	char f[512], reason[200], *text;
	char *argv[] = { self_exe, "fdcheck", f, NULL };
	struct hook_run run = { self_exe, argv, default_env, "x", 1, 5000, -1,
	    NULL, guard };
	int leak = open("/dev/null", O_RDONLY);	/* deliberately no O_CLOEXEC */

	path_in(f, sizeof(f), "fds");
	CHECK(leak > 2);
	CHECK_INT(hook_run(&run, reason, sizeof(reason)), HOOK_OK);
	(void)close(leak);
	text = read_file(f, NULL);
	CHECK_STR(text, "0 1 2 ");
	free(text);
}

/* The daemon ignores SIGPIPE (and here SIGINT and SIGUSR1), catches others
 * and blocks some in the spawning thread: the hook starts with nothing
 * ignored and nothing blocked. The hook is this binary in "sigcheck" mode,
 * copying its SigIgn and SigBlk lines of /proc/self/status. */
static void
test_signal_dispositions_are_defaults(void)
{
	char f[512], reason[200], *text;
	char *argv[] = { self_exe, "sigcheck", f, NULL };
	struct hook_run run = { self_exe, argv, default_env, "", 0, 5000, -1,
	    NULL, NULL };
	struct sigaction ign, old_pipe, old_int, old_usr1;
	sigset_t block, old_mask;

	path_in(f, sizeof(f), "sigs");
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	(void)sigaction(SIGPIPE, &ign, &old_pipe);
	(void)sigaction(SIGINT, &ign, &old_int);
	(void)sigaction(SIGUSR1, &ign, &old_usr1);
	/* The guard reads the dispositions when it is made, as the daemon's
	 * is made after its own are set. */
	run.guard = hook_guard_new();
	if (!CHECK(run.guard != NULL))
		return;
	CHECK(hook_guard_signals(run.guard) & (1u << (SIGINT - 1)));
	CHECK(hook_guard_signals(run.guard) & (1u << (SIGUSR1 - 1)));
	(void)sigemptyset(&block);
	(void)sigaddset(&block, SIGTERM);
	(void)sigaddset(&block, SIGHUP);
	(void)pthread_sigmask(SIG_BLOCK, &block, &old_mask);
	CHECK_INT(hook_run(&run, reason, sizeof(reason)), HOOK_OK);
	(void)pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	(void)sigaction(SIGPIPE, &old_pipe, NULL);
	(void)sigaction(SIGINT, &old_int, NULL);
	(void)sigaction(SIGUSR1, &old_usr1, NULL);
	hook_guard_free(run.guard);
	text = read_file(f, NULL);
	CHECK_STR(text, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
	free(text);
}

static int kernel_takes_slices(void);

/* The hook runs HOOK_NICE nicer than the daemon, with a slice of
 * PRIO_SLICE_US where the kernel takes one (it is this binary in
 * "nicecheck" mode, writing its own nice value and slice). */
static void
test_hook_is_nicer(void)
{
	char f[512], reason[200], *text, *end = NULL;
	char *argv[] = { self_exe, "nicecheck", f, NULL };
	struct hook_run run = { self_exe, argv, default_env, "", 0, 5000, -1,
	    NULL, guard };
	int want = getpriority(PRIO_PROCESS, 0) + HOOK_NICE;

	path_in(f, sizeof(f), "nice");
	CHECK_INT(hook_run(&run, reason, sizeof(reason)), HOOK_OK);
	text = read_file(f, NULL);
	if (!CHECK(text != NULL))
		return;
	CHECK(strtol(text, &end, 10) == (want > 19 ? 19 : want));
	if (kernel_takes_slices())
		CHECK(strtoll(end, NULL, 10) == (long long)PRIO_SLICE_US * 1000);
	else
		fprintf(stderr, "test_hook: this kernel keeps its own slices; "
		    "only the nice value was checked\n");
	free(text);
}

/* A hook that never reads stdin, with more input than a pipe holds: no
 * SIGPIPE (it would kill this test), no hang. */
static void
test_unread_stdin(void)
{
	char p[512], reason[200], *big;
	size_t n = 4 << 20;
	int64_t t0 = clock_mono_ms();

	script(p, sizeof(p), "noread.sh", "#!/bin/sh\nexit 0\n");
	big = malloc(n + 1);
	if (!CHECK(big != NULL))
		return;
	memset(big, 'x', n);
	big[n] = '\0';
	CHECK_INT(run_simple(p, 5000, big, reason, sizeof(reason)), HOOK_OK);
	CHECK(clock_mono_ms() - t0 < 4000);
	free(big);
}

/* The same where SIGPIPE is ignored, as in the daemon: the run leaves no
 * SIGPIPE pending and this thread's mask as it was. */
static void
test_unread_stdin_sigpipe_ignored(void)
{
	struct sigaction ign = { .sa_handler = SIG_IGN }, old_pipe;
	sigset_t before, after, pending;
	char p[512], reason[200];
	static char big[200000];

	(void)sigaction(SIGPIPE, &ign, &old_pipe);
	(void)pthread_sigmask(SIG_SETMASK, NULL, &before);
	script(p, sizeof(p), "noread2.sh", "#!/bin/sh\nexit 0\n");
	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK_INT(run_simple(p, 5000, big, reason, sizeof(reason)), HOOK_OK);
	(void)pthread_sigmask(SIG_SETMASK, NULL, &after);
	CHECK(sigismember(&after, SIGPIPE) == sigismember(&before, SIGPIPE));
	CHECK(sigpending(&pending) == 0 && !sigismember(&pending, SIGPIPE));
	(void)sigaction(SIGPIPE, &old_pipe, NULL);
}

static void
test_cancel(void)
{
	char p[512], reason[200];
	char *argv[] = { p, NULL };
	uint64_t one = 1;
	int efd = eventfd(0, EFD_CLOEXEC);
	struct hook_run run;
	int64_t t0;

	script(p, sizeof(p), "cancel.sh", "#!/bin/sh\nsleep 60\n");
	run = (struct hook_run){ p, argv, default_env, NULL, 0, 60000, efd,
	    NULL, guard };
	CHECK(write(efd, &one, sizeof(one)) == sizeof(one));
	t0 = clock_mono_ms();
	CHECK_INT(hook_run(&run, reason, sizeof(reason)), HOOK_CANCELLED);
	CHECK_STR(reason, "interrupted by shutdown");
	CHECK(clock_mono_ms() - t0 < HOOK_KILL_GRACE_MS + 1000);
	(void)close(efd);
}


/* stderr (fd 2) goes to a file while `fn` runs; returns what was logged
 * (caller frees). */
static char *
captured(void (*fn)(void *), void *arg, const char *name)
{
	char logp[512], *text;
	int saved, fd;

	path_in(logp, sizeof(logp), name);
	fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	saved = dup(2);
	(void)dup2(fd, 2);
	fn(arg);
	(void)dup2(saved, 2);
	(void)close(saved);
	(void)close(fd);
	text = read_file(logp, NULL);
	return text != NULL ? text : calloc(1, 1);
}

struct one_run {
	const char *path;
	enum hook_result res;
	char	 reason[400];
	int64_t	 took_ms;
};

static void
run_one(void *arg)
{
	struct one_run *r = arg;
	int64_t t0 = clock_mono_ms();

	r->res = run_simple(r->path, 10000, "{}\n", r->reason,
	    sizeof(r->reason));
	r->took_ms = clock_mono_ms() - t0;
}

/* stdout lines are info, stderr lines warnings; the reason ends with the
 * hook's last stderr line. */
static void
test_stderr_is_a_warning_and_the_reason(void)
{
	struct one_run r = { NULL, HOOK_OK, "", 0 };
	char p[512], *log;

	script(p, sizeof(p), "tempfail.sh", "#!/bin/sh\n"
	    "echo 'fetching order'\necho 'shop API: 503' >&2\n"
	    "echo 'giving up for now' >&2\necho >&2\nexit 75\n");
	r.path = p;
	log = captured(run_one, &r, "stderr1.log");
	CHECK_INT(r.res, HOOK_FAILED);
	CHECK_STR(r.reason, "exit status 75: giving up for now");
	CHECK(strstr(log, "<6>hook[") != NULL &&
	    strstr(log, "]: fetching order\n") != NULL);
	CHECK(strstr(log, "<4>hook[") != NULL &&
	    strstr(log, "]: shop API: 503\n") != NULL);
	CHECK(strstr(log, "<6>hook[") < strstr(log, "]: fetching order"));
	free(log);
}

/* A last stderr line with control bytes and no end: quoted and bounded. */
static void
test_stderr_reason_is_quoted_and_bounded(void)
{
	char p[512], reason[400];

	script(p, sizeof(p), "noisy.sh", "#!/bin/sh\n"
	    "printf 'a\\033[31mred\\tx' >&2\nexit 1\n");
	CHECK_INT(run_simple(p, 5000, NULL, reason, sizeof(reason)),
	    HOOK_FAILED);
	CHECK_STR(reason, "exit status 1: a\\x1b[31mred\\x09x");
	script(p, sizeof(p), "long.sh", "#!/bin/sh\n"
	    "printf '%0900d\\n' 7 >&2\nexit 2\n");
	CHECK_INT(run_simple(p, 5000, NULL, reason, sizeof(reason)),
	    HOOK_FAILED);
	CHECK_INT(strlen(reason), strlen("exit status 2: ") +
	    REASON_QUOTE_MAX);
	CHECK(strncmp(reason, "exit status 2: 0000", 19) == 0);
	/* a timeout keeps the hook's word too */
	script(p, sizeof(p), "slowerr.sh", "#!/bin/sh\n"
	    "echo 'waiting for the shop' >&2\nsleep 60\n");
	CHECK_INT(run_simple(p, 300, NULL, reason, sizeof(reason)),
	    HOOK_TIMEOUT);
	CHECK_STR(reason, "timeout after 300 ms: waiting for the shop");
}

static void *
batch_main(void *arg)
{
	struct one_run *runs = arg;
	int j;

	for (j = 0; j < 25; j++)
		run_one(&runs[j]);
	return NULL;
}

static void
many_trivial(void *arg)
{
	struct one_run runs[4][25];
	pthread_t t[4];
	int i, j;

	for (i = 0; i < 4; i++) {
		for (j = 0; j < 25; j++)
			runs[i][j].path = arg;
	}
	for (i = 0; i < 4; i++) {
		if (pthread_create(&t[i], NULL, batch_main,
		    runs[i]) != 0)
			runs[i][0].res = (enum hook_result)-1;
	}
	for (i = 0; i < 4; i++)
		(void)pthread_join(t[i], NULL);
	for (i = 0; i < 4; i++) {
		for (j = 0; j < 25; j++)
			CHECK_INT(runs[i][j].res, HOOK_OK);
	}
}

/* Trivial hooks from four threads at once: every one delivered, and never
 * the "left processes in its group" warning (another thread's spawn briefly
 * holding our pipe is not a process of this hook's group). */
static void
test_no_spurious_group_warning(void)
{
	char p[512], *log;

	script(p, sizeof(p), "trivial.sh", "#!/bin/sh\nexit 0\n");
	log = captured(many_trivial, p, "trivial.log");
	CHECK(strstr(log, "left processes") == NULL);
	free(log);
}

/* A hook that starts a setsid child holding stdout and exits: the run ends
 * when the hook's group is empty, without waiting for the pipe's EOF or a
 * grace period; the child outside the group is not ours to kill. */
static void
test_setsid_child_does_not_hold_the_run(void)
{
	struct one_run r = { NULL, HOOK_FAILED, "", 0 };
	char p[512], body[512], *log;
	pid_t gc;

	(void)snprintf(body, sizeof(body), "#!/bin/sh\n"
	    "setsid sh -c 'echo $$ > %s/setsid.pid; exec sleep 30' &\n"
	    "while [ ! -s %s/setsid.pid ]; do sleep 0.01; done\n"
	    "echo started\nexit 0\n", dir, dir);
	script(p, sizeof(p), "setsid.sh", body);
	r.path = p;
	log = captured(run_one, &r, "setsid.log");
	CHECK_INT(r.res, HOOK_OK);
	CHECK(r.took_ms < 3000);	/* was grace + EOF wait: 3.3 s */
	CHECK(strstr(log, "left processes") == NULL);
	CHECK(strstr(log, "]: started\n") != NULL);
	gc = pid_from("setsid.pid");
	CHECK(gc > 0 && !process_gone_now(gc));
	if (gc > 0)
		(void)kill(gc, SIGKILL);
	free(log);
}

/* The guard runs beside us under a title of its own, never the daemon's
 * name; started with argv[0] alone and no socket, it refuses. */
static void
test_guard_title(void)
{
	char p[64], *text;
	char *argv[] = { HOOK_GUARD_NAME, NULL };
	posix_spawn_file_actions_t fa;
	pid_t g = hook_guard_pid(guard), pid;
	size_t len = 0;
	int status = 0;

	if (!CHECK(g > 0))
		return;
	(void)snprintf(p, sizeof(p), "/proc/%ld/comm", (long)g);
	text = read_file(p, NULL);
	CHECK_STR(text, HOOK_GUARD_NAME "\n");
	free(text);
	(void)snprintf(p, sizeof(p), "/proc/%ld/cmdline", (long)g);
	text = read_file(p, &len);
	CHECK(text != NULL && len == sizeof(HOOK_GUARD_NAME) &&
	    strcmp(text, HOOK_GUARD_NAME) == 0);
	free(text);
	CHECK(strstr(HOOK_GUARD_NAME, "cfhookd") == NULL);
	(void)posix_spawn_file_actions_init(&fa);
	(void)posix_spawn_file_actions_addopen(&fa, 3, "/dev/null", O_RDONLY,
	    0);
	(void)posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY,
	    0);
	if (CHECK(posix_spawn(&pid, self_exe, &fa, NULL, argv,
	    default_env) == 0)) {
		CHECK(waitpid(pid, &status, 0) == pid);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 2);
	}
	(void)posix_spawn_file_actions_destroy(&fa);
}

/* Every child was reaped by hook_run itself; the guard, by its free. */
static void
test_no_zombies(void)
{
	int status;

	hook_guard_free(guard);
	guard = NULL;
	CHECK(waitpid(-1, &status, WNOHANG) == -1 && errno == ECHILD);
}

static int
fdcheck(const char *out)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	FILE *fp;
	char list[1024] = "";
	size_t used = 0;

	if (d == NULL)
		return 1;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' ||
		    strtol(e->d_name, NULL, 10) == dirfd(d))
			continue;	/* the listing's own descriptor */
		used += (size_t)snprintf(list + used, sizeof(list) - used,
		    "%s ", e->d_name);
		if (used >= sizeof(list))
			break;
	}
	(void)closedir(d);
	fp = fopen(out, "we");
	if (fp == NULL)
		return 1;
	(void)fputs(list, fp);
	(void)fclose(fp);
	return 0;
}

/* nicecheck mode: our nice value and our time slice. */
static int
nicecheck(const char *out)
{
	FILE *fp = fopen(out, "we");

	if (fp == NULL)
		return 1;
	(void)fprintf(fp, "%d %lld\n", getpriority(PRIO_PROCESS, 0),
	    slice_ns());
	(void)fclose(fp);
	return 0;
}

/* Whether this kernel gives a fair task the slice it asks for: a child
 * asks for PRIO_SLICE_US and reads what it got. */
static int
kernel_takes_slices(void)
{
	int status = 0;
	pid_t pid = fork();

	if (pid == 0) {
		prio_long_slice();
		_exit(slice_ns() == (long long)PRIO_SLICE_US * 1000 ? 0 : 1);
	}
	return pid > 0 && waitpid(pid, &status, 0) == pid &&
	    WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* sigcheck mode: the SigBlk and SigIgn masks of our /proc/self/status,
 * without signals 32 and 33: glibc keeps those for itself (no program can
 * set them through it, and a glibc program installs its own handlers for
 * them at start); what the test runner left on them is not ours. */
static int
sigcheck(const char *out)
{
	char *text = read_file("/proc/self/status", NULL), *p;
	FILE *fp = fopen(out, "we");
	const char *want[] = { "\nSigBlk:", "\nSigIgn:" };
	unsigned long long mask;
	size_t i;

	if (text == NULL || fp == NULL)
		return 1;
	for (i = 0; i < 2; i++) {
		p = strstr(text, want[i]);
		if (p == NULL)
			continue;
		mask = strtoull(p + strlen(want[i]), NULL, 16);
		mask &= ~(3ULL << 31);
		(void)fprintf(fp, "%s\t%016llx\n", want[i] + 1, mask);
	}
	(void)fclose(fp);
	free(text);
	return 0;
}

int
main(int argc, char **argv)
{
	ssize_t n;
	int rc;

	if (argc == 3 && strcmp(argv[1], "fdcheck") == 0)
		return fdcheck(argv[2]);
	if (argc == 3 && strcmp(argv[1], "sigcheck") == 0)
		return sigcheck(argv[2]);
	if (argc == 3 && strcmp(argv[1], "nicecheck") == 0)
		return nicecheck(argv[2]);
	log_init(LOG_LVL_INFO);
	n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
	if (n <= 0 || mkdtemp(dir) == NULL) {
		perror("setup");
		return 1;
	}
	self_exe[n] = '\0';
	guard = hook_guard_new();
	if (guard == NULL || hook_guard_start(guard) == -1) {
		fprintf(stderr, "no hook guard\n");
		return 1;
	}
	RUN(test_exit_zero);
	RUN(test_exit_three);
	RUN(test_killed_by_signal);
	RUN(test_spawn_failures);
	RUN(test_timeout);
	RUN(test_timeout_grandchild);
	RUN(test_exit_leaves_grandchild);
	RUN(test_huge_output_bounded);
	RUN(test_argv_env_stdin_exact);
	RUN(test_no_fd_leak);
	RUN(test_signal_dispositions_are_defaults);
	RUN(test_hook_is_nicer);
	RUN(test_unread_stdin);
	RUN(test_unread_stdin_sigpipe_ignored);
	RUN(test_cancel);
	RUN(test_stderr_is_a_warning_and_the_reason);
	RUN(test_stderr_reason_is_quoted_and_bounded);
	RUN(test_no_spurious_group_warning);
	RUN(test_setsid_child_does_not_hold_the_run);
	RUN(test_guard_title);
	RUN(test_no_zombies);
	rc = check_finish("test_hook");
	tmpdir_remove(dir);
	return rc;
}
