/* test_hook_guard.c - the guard against the daemon's death (hook_guard.h):
 * when the process that runs hook_run() is SIGKILLed (from a worker thread,
 * as in cfhookd), the hook and everything in its process group die with it,
 * and the guard too, so no delivery of a dead daemon runs on next to the
 * restarted one; a guard that was killed is replaced and learns about the
 * hooks still running. Also: a timeout's TERM still reaches the hook (no
 * instant KILL), and signals to the daemon's group leave the guard be. */
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "tmpdir.h"
#include "clock.h"
#include "hook.h"
#include "log.h"

static char dir[] = "/tmp/cfhook-test-guard-XXXXXX";
static char *const default_env[] = { "PATH=/usr/bin:/bin", NULL };
static struct hook_guard *guard;	/* of this process */

static void
path_in(char *out, size_t n, const char *name)
{
	(void)snprintf(out, n, "%s/%s", dir, name);
}

static void
script(char *out, size_t n, const char *name, const char *body)
{
	FILE *fp;

	path_in(out, n, name);
	fp = fopen(out, "we");
	if (fp == NULL)
		return;
	(void)fputs(body, fp);
	(void)fclose(fp);
	(void)chmod(out, 0755);
}

/* The number in file `name` of the temp dir; 0 when absent or empty. */
static long
number_in(const char *name)
{
	char p[512], text[64] = "";
	FILE *fp;
	size_t n;

	path_in(p, sizeof(p), name);
	fp = fopen(p, "re");
	if (fp == NULL)
		return 0;
	n = fread(text, 1, sizeof(text) - 1, fp);
	(void)fclose(fp);
	text[n] = '\0';
	return strtol(text, NULL, 10);
}

static int
wait_number(const char *name, long *ret)
{
	int64_t deadline = clock_mono_ms() + 10000;

	while ((*ret = number_in(name)) <= 0) {
		if (clock_mono_ms() > deadline)
			return 0;
		(void)usleep(10000);
	}
	return 1;
}

/* Running: exists and is not a zombie. */
static int
running(pid_t pid)
{
	char p[64], stat[512], *rp;
	FILE *fp;
	size_t n;

	if (kill(pid, 0) == -1 && errno == ESRCH)
		return 0;
	(void)snprintf(p, sizeof(p), "/proc/%ld/stat", (long)pid);
	fp = fopen(p, "re");
	if (fp == NULL)
		return 0;
	n = fread(stat, 1, sizeof(stat) - 1, fp);
	(void)fclose(fp);
	stat[n] = '\0';
	rp = strrchr(stat, ')');
	return rp != NULL && !(rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'));
}

/* Signals act asynchronously: allow the kernel a moment (bounded). */
static int
gone_soon(pid_t pid)
{
	int i;

	for (i = 0; i < 300; i++) {
		if (!running(pid))
			return 1;
		(void)usleep(10000);
	}
	return 0;
}

static const char *worker_hook;
static struct hook_guard *daemon_guard;	/* in the fake daemon */

static void *
worker(void *arg)
{
	char *argv[] = { (char *)(uintptr_t)worker_hook, NULL };
	struct hook_run run = { worker_hook, argv, default_env, "{}\n", 3,
	    60000, -1, NULL, daemon_guard };
	char reason[200];

	(void)arg;
	(void)hook_run(&run, reason, sizeof(reason));
	return NULL;
}

/* The guard's pid into file `name` of the temp dir. */
static void
note_guard(const char *name)
{
	char p[512];
	FILE *fp;

	path_in(p, sizeof(p), name);
	fp = fopen(p, "we");
	if (fp == NULL)
		return;
	(void)fprintf(fp, "%ld\n", (long)hook_guard_pid(daemon_guard));
	(void)fclose(fp);
}

/* A stand-in daemon: a worker thread runs the hook (as forward.c's do),
 * the main thread waits to be killed. With `second`, once the first hook
 * runs, the guard is SIGKILLed and `second` run: its spawn starts a new
 * guard, which must learn about the first hook too. */
static _Noreturn void
fake_daemon(const char *hook, const char *second, const char *ready_file)
{
	char *argv[] = { (char *)(uintptr_t)second, NULL };
	struct hook_run run = { second, argv, default_env, NULL, 0, 10000, -1,
	    NULL, NULL };
	char reason[200], p[512];
	pthread_t t;
	pid_t old;

	daemon_guard = hook_guard_new();
	if (daemon_guard == NULL || hook_guard_start(daemon_guard) == -1)
		_exit(1);
	note_guard("guard1.pid");
	worker_hook = hook;
	if (pthread_create(&t, NULL, worker, NULL) != 0)
		_exit(1);
	if (second != NULL) {
		path_in(p, sizeof(p), ready_file);
		while (access(p, F_OK) == -1)
			(void)usleep(10000);
		old = hook_guard_pid(daemon_guard);
		(void)kill(old, SIGKILL);
		while (running(old))
			(void)usleep(10000);
		run.guard = daemon_guard;
		if (hook_run(&run, reason, sizeof(reason)) != HOOK_OK)
			_exit(1);
		note_guard("guard2.pid");
	}
	for (;;)
		(void)pause();
}

/* Kill the fake daemon; everything in `pids` must be gone soon after,
 * without anyone's help. Whatever survives is killed here so that a
 * failed check leaves nothing behind. */
static void
kill_daemon_check_gone(pid_t d, const long *pids, int n)
{
	int status, i;

	CHECK(kill(d, SIGKILL) == 0);
	CHECK(waitpid(d, &status, 0) == d);
	for (i = 0; i < n; i++) {
		if (pids[i] > 0)
			CHECK(gone_soon((pid_t)pids[i]));
	}
	for (i = 0; i < n; i++) {
		if (pids[i] > 0)
			(void)kill((pid_t)pids[i], SIGKILL);
	}
}

static void
hang_script(char *p, size_t n, const char *name, const char *tag)
{
	char body[1024];

	(void)snprintf(body, sizeof(body), "#!/bin/sh\n"
	    "sh -c 'trap \"\" TERM; echo $$ > %s/%s.gc; "
	    "while :; do sleep 1; done' &\n"
	    "echo $$ > %s/%s.hook\ntrap '' TERM\n"
	    "while :; do sleep 1; done\n", dir, tag, dir, tag);
	script(p, n, name, body);
}

/* The hook and its TERM-proof grandchild are running when the daemon gets
 * SIGKILL; both are gone soon after, and so is the guard. */
static void
test_daemon_sigkill_kills_the_hook_group(void)
{
	char p[512];
	long pids[3] = { 0, 0, 0 };
	pid_t d;

	hang_script(p, sizeof(p), "hang.sh", "a");
	d = fork();
	if (!CHECK(d >= 0))
		return;
	if (d == 0)
		fake_daemon(p, NULL, NULL);
	CHECK(wait_number("a.hook", &pids[0]));
	CHECK(wait_number("a.gc", &pids[1]));
	CHECK(wait_number("guard1.pid", &pids[2]));
	/* the test can fail: all run while the daemon lives */
	CHECK(pids[0] > 0 && running((pid_t)pids[0]));
	CHECK(pids[1] > 0 && running((pid_t)pids[1]));
	CHECK(pids[2] > 0 && running((pid_t)pids[2]));
	kill_daemon_check_gone(d, pids, 3);
}

/* Someone kills the guard while a hook runs. The next spawn starts a new
 * guard and tells it about the running hook: the daemon's death still
 * takes that hook's group along. */
static void
test_a_restarted_guard_knows_the_running_hooks(void)
{
	char p[512], q[512];
	long pids[3] = { 0, 0, 0 }, old = 0;
	pid_t d;

	hang_script(p, sizeof(p), "hang2.sh", "b");
	path_in(q, sizeof(q), "guard1.pid");
	(void)unlink(q);		/* the first test's */
	script(q, sizeof(q), "quick.sh", "#!/bin/sh\nexit 0\n");
	d = fork();
	if (!CHECK(d >= 0))
		return;
	if (d == 0)
		fake_daemon(p, q, "b.gc");
	CHECK(wait_number("b.hook", &pids[0]));
	CHECK(wait_number("b.gc", &pids[1]));
	CHECK(wait_number("guard2.pid", &pids[2]));
	CHECK(wait_number("guard1.pid", &old));
	CHECK(pids[2] != old && running((pid_t)pids[2]));
	CHECK(running((pid_t)pids[0]) && running((pid_t)pids[1]));
	kill_daemon_check_gone(d, pids, 3);
}

/* Past the timeout the hook gets TERM first and may finish cleanly. */
static void
test_timeout_term_reaches_the_hook(void)
{
	char p[512], body[512], reason[200];
	char *argv[] = { p, NULL };
	struct hook_run run = { p, argv, default_env, NULL, 0, 300, -1, NULL,
	    guard };

	(void)snprintf(body, sizeof(body), "#!/bin/sh\n"
	    "trap 'echo 7 > %s/term; exit 0' TERM\n"
	    "sleep 60 &\nwait\n", dir);
	script(p, sizeof(p), "term.sh", body);
	CHECK_INT(hook_run(&run, reason, sizeof(reason)), HOOK_TIMEOUT);
	CHECK_STR(reason, "timeout after 300 ms");
	CHECK_INT(number_in("term"), 7);
}

/* What a terminal or pkill sends the daemon's process group does not end
 * the guard (it would leave the hooks unguarded): only the daemon's going
 * does. */
static void
test_guard_ignores_group_signals(void)
{
	char p[512], reason[200];
	char *argv[] = { p, NULL };
	struct hook_run run = { p, argv, default_env, NULL, 0, 5000, -1, NULL,
	    guard };
	pid_t g = hook_guard_pid(guard);
	int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };
	size_t i;

	script(p, sizeof(p), "quiet.sh", "#!/bin/sh\nsleep 0.2\nexit 0\n");
	if (!CHECK(g > 0))
		return;
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		CHECK(kill(g, sigs[i]) == 0);
	CHECK_INT(hook_run(&run, reason, sizeof(reason)), HOOK_OK);
	CHECK(running(g));
	CHECK(hook_guard_pid(guard) == g);
}

/* The hook's exit status and its death by a signal come through
 * unchanged. */
static void
test_status_passes_through(void)
{
	char p[512], reason[200];
	char *argv[] = { p, NULL };
	struct hook_run run = { p, argv, default_env, NULL, 0, 5000, -1, NULL,
	    guard };

	script(p, sizeof(p), "st.sh", "#!/bin/sh\nexit 42\n");
	CHECK_INT(hook_run(&run, reason, sizeof(reason)), HOOK_FAILED);
	CHECK_STR(reason, "exit status 42");
	script(p, sizeof(p), "seg.sh", "#!/bin/sh\nkill -TERM $$\nsleep 5\n");
	CHECK_INT(hook_run(&run, reason, sizeof(reason)), HOOK_FAILED);
	CHECK_STR(reason, "killed by signal 15 (SIGTERM)");
}

static void
test_no_zombies(void)
{
	int status;

	CHECK(waitpid(-1, &status, WNOHANG) == -1 && errno == ECHILD);
}

int
main(void)
{
	int rc;

	log_init(LOG_LVL_WARNING);
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_daemon_sigkill_kills_the_hook_group);
	RUN(test_a_restarted_guard_knows_the_running_hooks);
	guard = hook_guard_new();
	if (guard == NULL || hook_guard_start(guard) == -1) {
		fprintf(stderr, "no hook guard\n");
		return 1;
	}
	RUN(test_timeout_term_reaches_the_hook);
	RUN(test_guard_ignores_group_signals);
	RUN(test_status_passes_through);
	hook_guard_free(guard);
	RUN(test_no_zombies);
	rc = check_finish("test_hook_guard");
	tmpdir_remove(dir);
	return rc;
}
