/* test_log.c - log lines on stderr: "<N>" prefix, escaping, the length cap,
 * level filtering, whole lines from many threads, the journal check, the
 * terminal form (a real pty) and its UTC time stamps. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "log.h"

#define CAP_MAX	(256 * 1024)

static int cap_fd = -1, saved_fd = -1;
static char cap_buf[CAP_MAX + 1];

/* Points stderr at a fresh temp file; CHECKs must wait for capture_end. */
static void
capture_start(void)
{
	char path[] = "/tmp/test_log.XXXXXX";

	cap_fd = mkstemp(path);
	if (cap_fd == -1) {
		perror("mkstemp");
		exit(2);
	}
	(void)unlink(path);
	fflush(stderr);
	saved_fd = dup(STDERR_FILENO);
	if (saved_fd == -1 || dup2(cap_fd, STDERR_FILENO) == -1) {
		perror("dup2");
		exit(2);
	}
}

/* Restores stderr; returns what was written, NUL-terminated. */
static const char *
capture_end(void)
{
	ssize_t r;
	size_t n = 0;

	(void)dup2(saved_fd, STDERR_FILENO);
	(void)close(saved_fd);
	(void)lseek(cap_fd, 0, SEEK_SET);
	while (n < CAP_MAX) {
		r = read(cap_fd, cap_buf + n, CAP_MAX - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	cap_buf[n] = '\0';
	(void)close(cap_fd);
	return cap_buf;
}

static void
test_prefixes(void)
{
	const char *out;

	log_init(LOG_LVL_DEBUG);
	capture_start();
	log_error("e %d", 1);
	log_warning("w %s", "x");
	log_info("i");
	log_debug("d");
	out = capture_end();
	CHECK_STR(out, "<3>e 1\n<4>w x\n<6>i\n<7>d\n");
	log_init(LOG_LVL_INFO);
}

static void
test_level_filter(void)
{
	const char *out;

	log_init(LOG_LVL_WARNING);
	CHECK(log_enabled(LOG_LVL_ERROR));
	CHECK(log_enabled(LOG_LVL_WARNING));
	CHECK(!log_enabled(LOG_LVL_INFO));
	capture_start();
	log_info("hidden");
	log_debug("hidden");
	log_event(LOG_LVL_INFO, NULL, "hidden");
	log_warning("shown");
	log_set_level(LOG_LVL_ERROR);
	log_warning("hidden");
	log_error("last");
	out = capture_end();
	CHECK_STR(out, "<4>shown\n<3>last\n");
	log_init(LOG_LVL_INFO);
	CHECK(log_enabled(LOG_LVL_INFO));
	CHECK(!log_enabled(LOG_LVL_DEBUG));
}

static void
test_escaping(void)
{
	const char *out;

	log_init(LOG_LVL_INFO);
	capture_start();
	log_info("a\nb\rc\x01" "d\x7f" "e\x1b[31m caf\xc3\xa9 %s", "x\ny");
	out = capture_end();
	CHECK_STR(out, "<6>a\\x0ab\\x0dc\\x01d\\x7fe\\x1b[31m caf\xc3\xa9 "
	    "x\\x0ay\n");
}

static void
test_long_line_cut(void)
{
	static char big[10000];
	const char *out;
	size_t n;

	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	capture_start();
	log_info("%s", big);
	memset(big, '\n', sizeof(big) - 1);
	log_info("%s", big);
	out = capture_end();
	n = strcspn(out, "\n");
	CHECK(n > 1900 && n <= 2100);
	CHECK(strncmp(out, "<6>zzz", 6) == 0);
	CHECK(strncmp(out + n - 3, "...", 3) == 0);
	out += n + 1;
	n = strcspn(out, "\n");		/* escaped newlines: 4 bytes each */
	CHECK(n > 1900 && n <= 2100);
	CHECK(strncmp(out, "<6>\\x0a\\x0a", 11) == 0);
	CHECK(strncmp(out + n - 3, "...", 3) == 0);
	CHECK_STR(out + n, "\n");
}

static void
test_log_event_on_stderr(void)
{
	struct log_fields f = { "PAYMENT_SUCCESS_WEBHOOK:1", "1", NULL };
	const char *out;

	capture_start();
	log_event(LOG_LVL_INFO, &f, "stored event %d", 7);
	log_event(LOG_LVL_WARNING, NULL, "no fields");
	out = capture_end();
	CHECK_STR(out, "<6>stored event 7\n<4>no fields\n");
}

static void
test_level_names(void)
{
	CHECK_INT(log_level_parse("error"), LOG_LVL_ERROR);
	CHECK_INT(log_level_parse("warning"), LOG_LVL_WARNING);
	CHECK_INT(log_level_parse("info"), LOG_LVL_INFO);
	CHECK_INT(log_level_parse("debug"), LOG_LVL_DEBUG);
	CHECK_INT(log_level_parse("warn"), -1);
	CHECK_INT(log_level_parse("INFO"), -1);
	CHECK_INT(log_level_parse(""), -1);
	CHECK_INT(log_level_parse(NULL), -1);
}

#define THREADS		4
#define PER_THREAD	500

static void *
writer(void *arg)
{
	int id = (int)(long)arg, i;

	for (i = 0; i < PER_THREAD; i++)
		log_info("thread %d line %d %s", id, i,
		    "................................................");
	return NULL;
}

/* Every line arrives whole: one write(2) per line. */
static void
test_threads_whole_lines(void)
{
	pthread_t t[THREADS];
	int counts[THREADS] = { 0 };
	const char *out, *p;
	int i, id, line, bad = 0;
	char *end;

	capture_start();
	for (i = 0; i < THREADS; i++)
		(void)pthread_create(&t[i], NULL, writer, (void *)(long)i);
	for (i = 0; i < THREADS; i++)
		(void)pthread_join(t[i], NULL);
	out = capture_end();
	for (p = out; *p != '\0'; p = end + 1) {
		end = strchr(p, '\n');
		if (end == NULL || strncmp(p, "<6>thread ", 10) != 0) {
			bad++;
			break;
		}
		id = (int)strtol(p + 10, &end, 10);
		line = (int)strtol(end + 6, &end, 10);
		if (id < 0 || id >= THREADS || line != counts[id] ||
		    strncmp(end, " .....", 6) != 0) {
			bad++;
			break;
		}
		counts[id]++;
		end = strchr(end, '\n');
	}
	CHECK_INT(bad, 0);
	for (i = 0; i < THREADS; i++)
		CHECK_INT(counts[i], PER_THREAD);
}

/* $JOURNAL_STREAM naming another stream leaves the stderr sink; naming our
 * stderr selects the journal, and where no journal listens (this test's
 * usual sandbox) each line falls back to stderr. */
static void
test_journal_stream(void)
{
	struct stat st;
	char js[64];
	const char *out;
	int journald = access("/run/systemd/journal/socket", F_OK) == 0;

	capture_start();
	if (fstat(STDERR_FILENO, &st) == -1)
		exit(2);
	(void)snprintf(js, sizeof(js), "%llu:%llu",
	    (unsigned long long)st.st_dev, (unsigned long long)st.st_ino + 1);
	(void)setenv("JOURNAL_STREAM", js, 1);
	log_init(LOG_LVL_INFO);
	log_info("plain");
	(void)snprintf(js, sizeof(js), "%llu:%llu",
	    (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	(void)setenv("JOURNAL_STREAM", js, 1);
	log_init(LOG_LVL_INFO);
	log_info("journal or fallback");
	(void)unsetenv("JOURNAL_STREAM");
	log_init(LOG_LVL_INFO);
	log_info("after");
	out = capture_end();
	if (journald)
		CHECK_STR(out, "<6>plain\n<6>after\n");
	else
		CHECK_STR(out, "<6>plain\n<6>journal or fallback\n<6>after\n");
}

static void
test_format_utc_table(void)
{
	static const struct {
		int64_t ms;
		const char *want;
	} cases[] = {
		{ 0, "1970-01-01T00:00:00.000Z" },
		{ 951782400000, "2000-02-29T00:00:00.000Z" },
		{ 951868799999, "2000-02-29T23:59:59.999Z" },
		{ 1709251199999, "2024-02-29T23:59:59.999Z" },
		{ 1709251200000, "2024-03-01T00:00:00.000Z" },
		{ 1796620211123, "2026-12-07T05:10:11.123Z" },
		{ 4107542399999, "2100-02-28T23:59:59.999Z" },
		{ 253402300799999, "9999-12-31T23:59:59.999Z" },
		{ -1, "1969-12-31T23:59:59.999Z" },
		{ -86400000, "1969-12-31T00:00:00.000Z" },
	};
	char out[32];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK_INT((long long)log_format_utc(cases[i].ms, out,
		    sizeof(out)), 24);
		CHECK_STR(out, cases[i].want);
	}
	/* too small: nothing half-written */
	CHECK_INT((long long)log_format_utc(0, out, 24), 0);
	CHECK_STR(out, "");
}

/* Every day from 1900 to 2200, and odd times of day, against gmtime_r. */
static void
test_format_utc_against_gmtime(void)
{
	char out[32], want[48];
	int64_t day, ms;
	struct tm tm;
	time_t t;
	int bad = 0;

	for (day = -25567; day < 84006 && bad < 5; day++) {
		ms = day * 86400000 + (day % 86400) * 997 % 86400000;
		t = (time_t)((ms - ((ms % 1000) + 1000) % 1000) / 1000);
		if (gmtime_r(&t, &tm) == NULL)
			exit(2);
		(void)snprintf(want, sizeof(want),
		    "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		    tm.tm_sec, (int)(((ms % 1000) + 1000) % 1000));
		(void)log_format_utc(ms, out, sizeof(out));
		if (!CHECK_STR(out, want))
			bad++;
	}
}

/* stderr on a real pty: "TIME LEVEL text", no "<N>"; errno untouched. */
static void
test_terminal_form(void)
{
	char name[128], got[512], stamp[32];
	struct timespec before, after;
	struct pollfd pfd;
	size_t n = 0;
	ssize_t r;
	int master, slave, saved;

	master = posix_openpt(O_RDWR | O_NOCTTY);
	if (master == -1 || grantpt(master) == -1 || unlockpt(master) == -1 ||
	    ptsname_r(master, name, sizeof(name)) != 0) {
		printf("test_terminal_form: no pty here, skipped\n");
		if (master != -1)
			(void)close(master);
		return;
	}
	slave = open(name, O_RDWR | O_NOCTTY);
	CHECK(slave != -1);
	if (slave == -1)
		return;
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	(void)dup2(slave, STDERR_FILENO);
	log_init(LOG_LVL_DEBUG);
	(void)clock_gettime(CLOCK_REALTIME, &before);
	errno = ENOENT;
	log_info("http: 200 new id=%d", 5);
	CHECK_INT(errno, ENOENT);
	log_warning("w");
	log_error("e");
	log_debug("d\x01");
	(void)clock_gettime(CLOCK_REALTIME, &after);
	(void)dup2(saved, STDERR_FILENO);
	(void)close(saved);
	(void)close(slave);
	pfd.fd = master;
	pfd.events = POLLIN;
	while (n < sizeof(got) - 1 && poll(&pfd, 1, 500) == 1) {
		r = read(master, got + n, sizeof(got) - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	got[n] = '\0';
	(void)close(master);
	log_init(LOG_LVL_INFO);
	/* the pty turns "\n" into "\r\n"; lines are stamp (24) + ' ' ... */
	CHECK(n > 4 * 26 && strchr(got, '<') == NULL);
	(void)log_format_utc((int64_t)before.tv_sec * 1000, stamp,
	    sizeof(stamp));
	CHECK(strncmp(got, stamp, 17) == 0 || before.tv_sec != after.tv_sec);
	CHECK(got[10] == 'T' && got[23] == 'Z' && got[24] == ' ');
	CHECK(strncmp(got + 25, "info  http: 200 new id=5\r\n", 26) == 0);
	CHECK(strstr(got, "Z warn  w\r\n") != NULL);
	CHECK(strstr(got, "Z error e\r\n") != NULL);
	CHECK(strstr(got, "Z debug d\\x01\r\n") != NULL);
}

int
main(void)
{
	RUN(test_prefixes);
	RUN(test_level_filter);
	RUN(test_escaping);
	RUN(test_long_line_cut);
	RUN(test_log_event_on_stderr);
	RUN(test_level_names);
	RUN(test_threads_whole_lines);
	RUN(test_journal_stream);
	RUN(test_format_utc_table);
	RUN(test_format_utc_against_gmtime);
	RUN(test_terminal_form);
	return check_finish("test_log");
}
