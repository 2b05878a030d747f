/* test_hook_guard.c - hook.c's guard against the daemon's death: when the
 * process that runs hook_run() is SIGKILLed (from a worker thread, as in
 * cfhookd), the hook and everything in its process group die with it, so no
 * delivery of a dead daemon runs on next to the restarted one. Also: a
 * timeout's TERM still reaches the hook (no instant KILL), and a stray
 * guard signal while the daemon lives changes nothing. */
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

static void *
worker(void *arg)
{
	char *argv[] = { (char *)(uintptr_t)worker_hook, NULL };
	struct hook_run run = { worker_hook, argv, default_env, "{}\n", 3,
	    60000, -1, NULL };
	char reason[200];

	(void)arg;
	(void)hook_run(&run, reason, sizeof(reason));
	return NULL;
}

/* A stand-in daemon: a worker thread runs the hook (as forward.c's do),
 * the main thread waits to be killed. */
static void
fake_daemon(const char *hook)
{
	pthread_t t;

	worker_hook = hook;
	if (pthread_create(&t, NULL, worker, NULL) != 0)
		_exit(1);
	for (;;)
		(void)pause();
}

/* The hook and its TERM-proof grandchild are running when the daemon gets
 * SIGKILL; both are gone soon after, without anyone's help. */
static void
test_daemon_sigkill_kills_the_hook_group(void)
{
	char p[512], body[1024];
	long hook = 0, gc = 0;
	pid_t d;
	int status;

	(void)snprintf(body, sizeof(body), "#!/bin/sh\n"
	    "sh -c 'trap \"\" TERM; echo $$ > %s/gc.pid; "
	    "while :; do sleep 1; done' &\n"
	    "echo $$ > %s/hook.pid\ntrap '' TERM\n"
	    "while :; do sleep 1; done\n", dir, dir);
	script(p, sizeof(p), "hang.sh", body);
	d = fork();
	if (!CHECK(d >= 0))
		return;
	if (d == 0)
		fake_daemon(p);
	CHECK(wait_number("hook.pid", &hook));
	CHECK(wait_number("gc.pid", &gc));
	/* the test can fail: both run while the daemon lives */
	CHECK(hook > 0 && running((pid_t)hook));
	CHECK(gc > 0 && running((pid_t)gc));
	CHECK(kill(d, SIGKILL) == 0);
	CHECK(waitpid(d, &status, 0) == d);
	if (hook > 0)
		CHECK(gone_soon((pid_t)hook));
	if (gc > 0)
		CHECK(gone_soon((pid_t)gc));
	/* whatever is left of a failed check must not outlive the test */
	if (hook > 0)
		(void)kill((pid_t)hook, SIGKILL);
	if (gc > 0)
		(void)kill((pid_t)gc, SIGKILL);
}

/* Past the timeout the hook gets TERM first and may finish cleanly. */
static void
test_timeout_term_reaches_the_hook(void)
{
	char p[512], body[512], reason[200];
	char *argv[] = { p, NULL };
	struct hook_run run = { p, argv, default_env, NULL, 0, 300, -1, NULL };

	(void)snprintf(body, sizeof(body), "#!/bin/sh\n"
	    "trap 'echo 7 > %s/term; exit 0' TERM\n"
	    "sleep 60 &\nwait\n", dir);
	script(p, sizeof(p), "term.sh", body);
	CHECK_INT(hook_run(&run, reason, sizeof(reason)), HOOK_FAILED);
	CHECK_STR(reason, "timeout after 300 ms");
	CHECK_INT(number_in("term"), 7);
}

/* The guard's signal from someone else while the daemon lives: ignored,
 * the hook's result stands. */
static void
test_stray_guard_signal_is_ignored(void)
{
	char p[512], reason[200];
	char *argv[] = { p, NULL };
	struct hook_run run = { p, argv, default_env, NULL, 0, 5000, -1, NULL };

	script(p, sizeof(p), "stray.sh", "#!/bin/sh\n"
	    "kill -USR2 $PPID\nsleep 0.2\nexit 0\n");
	CHECK_INT(hook_run(&run, reason, sizeof(reason)), HOOK_OK);
}

/* The hook's exit status and its death by a signal come through the
 * guard unchanged. */
static void
test_status_passes_through(void)
{
	char p[512], reason[200];
	char *argv[] = { p, NULL };
	struct hook_run run = { p, argv, default_env, NULL, 0, 5000, -1, NULL };

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
	RUN(test_timeout_term_reaches_the_hook);
	RUN(test_stray_guard_signal_is_ignored);
	RUN(test_status_passes_through);
	RUN(test_no_zombies);
	rc = check_finish("test_hook_guard");
	tmpdir_remove(dir);
	return rc;
}
