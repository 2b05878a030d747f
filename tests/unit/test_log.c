/* test_log.c - log lines on stderr: "<N>" prefix, escaping, the length cap,
 * level filtering, whole lines from many threads, the journal check. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
	return check_finish("test_log");
}
