/* test_store_lock.c - the instance lock (store_lock.c) between real
 * processes: a second taker is refused while the first lives, the holder's
 * pid is in the file, a forked child does not inherit it (the hook guard is
 * one), and it is free again once the holder closes it or dies. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "store_lock.h"
#include "tmpdir.h"

static char dir[] = "/tmp/cfhook-lock.XXXXXX";

/* In a child process: 0 when it could take the lock, 1 when refused. */
static int
try_in_child(const char *db)
{
	int status = -1, fd;
	pid_t pid;

	pid = fork();
	if (pid == 0) {
		fd = store_lock_take(db);
		_exit(fd == -1 ? 1 : 0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static void
test_second_taker_refused_until_released(void)
{
	char db[128], lock[140], text[32];
	struct stat sb;
	int fd;

	(void)snprintf(db, sizeof(db), "%s/events.db", dir);
	(void)snprintf(lock, sizeof(lock), "%s.lock", db);
	fd = store_lock_take(db);
	if (!CHECK(fd >= 0))
		return;
	CHECK_INT(stat(lock, &sb), 0);
	CHECK_INT(sb.st_mode & 0777, 0600);
	/* Read through the lock's own descriptor: opening and closing the
	 * file again here would drop this process's POSIX lock on it. */
	memset(text, 0, sizeof(text));
	CHECK(pread(fd, text, sizeof(text) - 1, 0) > 0);
	CHECK_INT(strtol(text, NULL, 10), getpid());
	CHECK_INT(try_in_child(db), 1);
	store_lock_release(fd);
	CHECK_INT(try_in_child(db), 0);
	store_lock_release(-1);
	/* The file stays (removing it would race with the next taker). */
	CHECK_INT(access(lock, F_OK), 0);
}

/* A child forked while the lock is held (as the hook guard is) does not
 * hold it: once the parent lets go, another process takes it although the
 * child still lives. */
static void
test_forked_child_does_not_keep_it(void)
{
	char db[128];
	int fd, pipefd[2], status;
	pid_t child;
	char c;

	(void)snprintf(db, sizeof(db), "%s/forked.db", dir);
	fd = store_lock_take(db);
	if (!CHECK(fd >= 0) || !CHECK(pipe(pipefd) == 0))
		return;
	child = fork();
	if (child == 0) {
		(void)close(pipefd[1]);
		_exit(read(pipefd[0], &c, 1) >= 0 ? 0 : 1);	/* until EOF */
	}
	(void)close(pipefd[0]);
	store_lock_release(fd);
	CHECK_INT(try_in_child(db), 0);
	(void)close(pipefd[1]);
	CHECK_INT(waitpid(child, &status, 0), child);
}

/* A holder killed with SIGKILL leaves the lock free. */
static void
test_dead_holder_frees_it(void)
{
	char db[128];
	int ready[2], status;
	pid_t holder;
	char c = 0;

	(void)snprintf(db, sizeof(db), "%s/killed.db", dir);
	if (!CHECK(pipe(ready) == 0))
		return;
	holder = fork();
	if (holder == 0) {
		(void)close(ready[0]);
		if (store_lock_take(db) == -1 || write(ready[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			(void)pause();
	}
	(void)close(ready[1]);
	CHECK_INT(read(ready[0], &c, 1), 1);
	(void)close(ready[0]);
	CHECK_INT(try_in_child(db), 1);
	(void)kill(holder, SIGKILL);
	CHECK_INT(waitpid(holder, &status, 0), holder);
	CHECK_INT(try_in_child(db), 0);
}

static void
test_missing_directory_fails(void)
{
	char db[160];

	(void)snprintf(db, sizeof(db), "%s/no-such-dir/events.db", dir);
	CHECK_INT(store_lock_take(db), -1);
}

int
main(void)
{
	int rc;

	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_second_taker_refused_until_released);
	RUN(test_forked_child_does_not_keep_it);
	RUN(test_dead_holder_frees_it);
	RUN(test_missing_directory_fails);
	rc = check_finish("test_store_lock");
	tmpdir_remove(dir);
	return rc;
}
