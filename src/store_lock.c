/* store_lock.c - the instance lock: one cfhookd per SQLite database.
 *
 * A POSIX write lock (fcntl F_SETLK) on a file of its own beside the
 * database:
 * - never on the database file: closing any descriptor of a file drops all
 *   of this process's POSIX locks on it, and SQLite opens and closes the
 *   database file;
 * - not flock() or an OFD lock: those belong to the open file description,
 *   which every forked child shares (the hook guard is one), so a child
 *   that outlived a killed daemon would keep the next one from starting.
 *   A POSIX lock belongs to the process alone, is released when it dies,
 *   and F_GETLK names its holder's pid.
 * The file is never removed: removing a lock file races with the next
 * daemon that opens it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "store.h"
#include "store_lock.h"

static void
lock_whole(struct flock *fl)
{
	memset(fl, 0, sizeof(*fl));
	fl->l_type = F_WRLCK;
	fl->l_whence = SEEK_SET;
	fl->l_start = 0;
	fl->l_len = 0;			/* to the end, however long */
}

/* Who holds it: F_GETLK says (0 when the holder is in another pid
 * namespace and cannot be named). */
static void
log_held(int fd, const char *lock_path, const char *db_path)
{
	struct flock fl;

	lock_whole(&fl);
	if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK &&
	    fl.l_pid > 0) {
		log_error("store: '%s' is in use by another cfhookd (pid %ld, "
		    "lock '%s'); one daemon per database: not starting",
		    db_path, (long)fl.l_pid, lock_path);
	} else {
		log_error("store: '%s' is in use by another cfhookd (lock "
		    "'%s'); one daemon per database: not starting", db_path,
		    lock_path);
	}
}

/* Our pid in the file, for people; the lock itself is what counts. */
static void
write_pid(int fd)
{
	char pid[24];
	int n;

	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (n <= 0 || ftruncate(fd, 0) == -1 ||
	    pwrite(fd, pid, (size_t)n, 0) != n)
		log_debug("store: lock file: cannot write the pid: %s",
		    strerror(errno));
}

int
store_lock_take(const char *db_path)
{
	struct flock fl;
	char *lock_path;
	size_t n = strlen(db_path) + sizeof(".lock");
	int fd = -1;

	if (store_is_uri(db_path))
		return STORE_LOCK_NONE;
	lock_path = malloc(n);
	if (lock_path == NULL) {
		log_error("store: '%s': out of memory", db_path);
		return -1;
	}
	(void)snprintf(lock_path, n, "%s.lock", db_path);
	fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1) {
		log_error("store: '%s': %s", lock_path, strerror(errno));
		goto out;
	}
	lock_whole(&fl);
	if (fcntl(fd, F_SETLK, &fl) == -1) {
		if (errno == EACCES || errno == EAGAIN)
			log_held(fd, lock_path, db_path);
		else
			log_error("store: '%s': lock: %s", lock_path,
			    strerror(errno));
		(void)close(fd);
		fd = -1;
		goto out;
	}
	write_pid(fd);
out:
	free(lock_path);
	return fd;
}

void
store_lock_release(int fd)
{
	if (fd >= 0)
		(void)close(fd);
}
