/* test_forward_marks.c - the record of started deliveries
 * (forward_marks.c): marks outlive a process killed with SIGKILL, freed
 * entries say nothing, and the record is not trusted for another database
 * file, another boot, or once an entry ran out. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "forward_marks.h"
#include "forward_round.h"
#include "tmpdir.h"

static char dir[] = "/tmp/cfhook-marks.XXXXXX";

static void
make_db(char *db, size_t len, const char *name)
{
	int fd;

	(void)snprintf(db, len, "%s/%s", dir, name);
	fd = open(db, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd >= 0)
		(void)close(fd);
}

/* The ids started() reports, as text ("" when untrusted: "-"). */
static const char *
started_text(struct forward_marks *m, char *buf, size_t len)
{
	const int64_t *ids;
	const char *why;
	size_t n, i, off = 0;

	buf[0] = '\0';
	if (forward_marks_started(m, &ids, &n, &why) == -1)
		return "-";
	for (i = 0; i < n && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%lld",
		    i > 0 ? " " : "", (long long)ids[i]);
	return buf;
}

static void
test_a_killed_process_leaves_its_marks(void)
{
	struct forward_marks *m;
	char db[128], buf[128];
	int status, a, b;
	pid_t pid;

	make_db(db, sizeof(db), "killed.db");
	pid = fork();
	if (pid == 0) {
		if (forward_marks_open(db, &m) == -1 || m == NULL)
			_exit(1);
		forward_marks_reset(m, 1);
		a = forward_marks_take(m);
		b = forward_marks_take(m);
		(void)forward_marks_take(m);	/* taken, never started */
		forward_marks_start(m, b, 70);
		forward_marks_start(m, a, 5);
		(void)kill(getpid(), SIGKILL);
		_exit(2);
	}
	if (!CHECK(pid > 0) || !CHECK(waitpid(pid, &status, 0) == pid))
		return;
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	if (!CHECK(forward_marks_open(db, &m) == 0 && m != NULL))
		return;
	CHECK_STR(started_text(m, buf, sizeof(buf)), "5 70");
	/* this run's, once recovered: empty */
	forward_marks_reset(m, 1);
	CHECK_STR(started_text(m, buf, sizeof(buf)), "");
	forward_marks_close(m);
}

static void
test_freed_entries_say_nothing(void)
{
	struct forward_marks *m;
	char db[128], buf[128];
	int a, b;

	make_db(db, sizeof(db), "freed.db");
	if (!CHECK(forward_marks_open(db, &m) == 0 && m != NULL))
		return;
	/* a new file is no record */
	CHECK_STR(started_text(m, buf, sizeof(buf)), "-");
	forward_marks_reset(m, 1);
	a = forward_marks_take(m);
	b = forward_marks_take(m);
	CHECK(a != b && a >= 0 && b >= 0);
	forward_marks_start(m, a, 11);
	forward_marks_start(m, b, 12);
	forward_marks_free(m, a);
	CHECK_STR(started_text(m, buf, sizeof(buf)), "12");
	/* freeing an entry takes its mark off */
	forward_marks_free(m, b);
	CHECK_STR(started_text(m, buf, sizeof(buf)), "");
	forward_marks_close(m);
}

static void
test_not_trusted_for_another_file_or_boot(void)
{
	struct forward_marks *m;
	char db[128], path[160], buf[128];
	int fd;

	make_db(db, sizeof(db), "moved.db");
	if (!CHECK(forward_marks_open(db, &m) == 0 && m != NULL))
		return;
	forward_marks_reset(m, 1);
	forward_marks_start(m, forward_marks_take(m), 9);
	forward_marks_close(m);
	/* a new database file at the path */
	CHECK_INT(unlink(db), 0);
	make_db(db, sizeof(db), "moved.db");
	if (!CHECK(forward_marks_open(db, &m) == 0 && m != NULL))
		return;
	CHECK_STR(started_text(m, buf, sizeof(buf)), "-");
	forward_marks_reset(m, 1);
	forward_marks_start(m, forward_marks_take(m), 9);
	CHECK_STR(started_text(m, buf, sizeof(buf)), "9");
	forward_marks_close(m);
	/* another boot: the boot id follows the 16 bytes of magic */
	(void)snprintf(path, sizeof(path), "%s%s", db, FORWARD_MARKS_SUFFIX);
	fd = open(path, O_RDWR);
	CHECK(fd >= 0 && pwrite(fd, "x", 1, 16) == 1);
	(void)close(fd);
	if (!CHECK(forward_marks_open(db, &m) == 0 && m != NULL))
		return;
	CHECK_STR(started_text(m, buf, sizeof(buf)), "-");
	forward_marks_close(m);
}

static void
test_not_trusted_once_spoilt(void)
{
	struct forward_marks *m;
	char db[128], buf[128];
	const int64_t *ids;
	const char *why;
	size_t n;
	int i, k;

	make_db(db, sizeof(db), "spoilt.db");
	if (!CHECK(forward_marks_open(db, &m) == 0 && m != NULL))
		return;
	/* recovery failed: the next start must count every claim */
	forward_marks_reset(m, 0);
	CHECK_STR(started_text(m, buf, sizeof(buf)), "-");
	forward_marks_reset(m, 1);
	for (i = 0; i < FORWARD_MAX_CLAIMED; i++) {
		k = forward_marks_take(m);
		CHECK(k >= 0);
		forward_marks_start(m, k, i + 1);
	}
	CHECK_INT(forward_marks_started(m, &ids, &n, &why), 0);
	CHECK_INT(n, FORWARD_MAX_CLAIMED);
	CHECK_INT(forward_marks_take(m), FORWARD_MARK_NONE);
	CHECK_STR(started_text(m, buf, sizeof(buf)), "-");
	forward_marks_close(m);
}

static void
test_uri_has_none(void)
{
	struct forward_marks *m = (struct forward_marks *)1;
	char buf[16];

	CHECK_INT(forward_marks_open("postgresql://localhost/x", &m), 0);
	CHECK(m == NULL);
	CHECK_STR(started_text(NULL, buf, sizeof(buf)), "-");
	CHECK_INT(forward_marks_take(NULL), FORWARD_MARK_NONE);
	forward_marks_start(NULL, 0, 1);
	forward_marks_free(NULL, 0);
	forward_marks_reset(NULL, 1);
	forward_marks_close(NULL);
}

int
main(void)
{
	int rc;

	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_a_killed_process_leaves_its_marks);
	RUN(test_freed_entries_say_nothing);
	RUN(test_not_trusted_for_another_file_or_boot);
	RUN(test_not_trusted_once_spoilt);
	RUN(test_uri_has_none);
	rc = check_finish("test_forward_marks");
	tmpdir_remove(dir);
	return rc;
}
