/* log.c - one line per message: "<N>text\n" on stderr, or the journal with
 * fields (EVENT_KEY=, CF_PAYMENT_ID=, ORDER_ID=) when systemd connected our
 * stderr to it (DESIGN "systemd and nginx", STYLE "Config and logging").
 * On a terminal a person reads the lines: "2026-12-07T05:10:11.123Z info  "
 * instead of "<6>" (systemd, nginx-style collectors and the tests read the
 * "<N>" form, so anything that is not a tty keeps it byte for byte).
 *
 * Any thread may log: a line is formatted on the stack and written with one
 * write(2) (at most PIPE_BUF bytes, so lines never interleave); the settings
 * are atomics. It must not allocate, lock, or let a control byte from its
 * arguments start a new line; callers never pass secrets or bodies. */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "log.h"
#include "num.h"

/* A longer message is cut and ends in "...": a log line is for a person. */
#define LINE_MAX_BYTES	2048
/* Where journald listens for native messages (sd-journal uses this). */
#define JOURNAL_SOCKET	"/run/systemd/journal/socket"
/* Cap on one journal field value (ids, keys). */
#define FIELD_MAX_BYTES	512

static atomic_int log_level = LOG_LVL_INFO;
static atomic_int log_journal;

/* Copies n bytes of `in` to out (room for cap bytes, cap >= 5), writing
 * control bytes as \xNN; ends with "..." when the input does not fit or
 * `cut` says it was already cut. Returns the length written (NUL added). */
static size_t
escape(const char *in, size_t n, int cut, char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, o = 0, room = cap - 4;	/* keeps "..." and NUL */
	unsigned char c;

	for (i = 0; i < n; i++) {
		c = (unsigned char)in[i];
		if (c < 0x20 || c == 0x7f) {
			if (o + 4 > room)
				break;
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 0x0f];
		} else {
			if (o + 1 > room)
				break;
			out[o++] = (char)c;
		}
	}
	if (i < n || cut) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return o;
}

static void
write_all(const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(STDERR_FILENO, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;		/* nowhere left to report it */
		p += w;
		n -= (size_t)w;
	}
}

/* Days since 1970-01-01 -> civil date (proleptic Gregorian), by eras of
 * 400 years; floor division keeps days before 1970 right. Written out
 * because gmtime_r() takes glibc's time zone lock, and logging must not. */
static void
civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t z = days + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;

	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

size_t
log_format_utc(int64_t unix_ms, char *out, size_t cap)
{
	int64_t ms = unix_ms % 1000, s, days, y;
	unsigned mon, day, sec_of_day;
	int n;

	if (ms < 0)
		ms += 1000;
	s = (unix_ms - ms) / 1000;
	days = (s >= 0 ? s : s - 86399) / 86400;
	sec_of_day = (unsigned)(s - days * 86400);
	civil_from_days(days, &y, &mon, &day);
	n = snprintf(out, cap, "%04lld-%02u-%02uT%02u:%02u:%02u.%03lldZ",
	    (long long)y, mon, day, sec_of_day / 3600, sec_of_day / 60 % 60,
	    sec_of_day % 60, (long long)ms);
	if (n < 0 || (size_t)n >= cap) {
		if (cap > 0)
			out[0] = '\0';
		return 0;
	}
	return (size_t)n;
}

/* "error", "warn ", "info ", "debug": one width, so messages line up. */
static const char *
level_word(int level)
{
	switch (level) {
	case LOG_LVL_ERROR:
		return "error";
	case LOG_LVL_WARNING:
		return "warn ";
	case LOG_LVL_INFO:
		return "info ";
	default:
		return "debug";
	}
}

static void
to_stderr(int level, const char *msg)
{
	char line[LINE_MAX_BYTES + 48], stamp[40];
	struct timespec ts;
	int n;

	/* Asked per line (one ioctl): a person may attach a terminal, and
	 * the "<N>" form must survive any redirection exactly. */
	if (isatty(STDERR_FILENO)) {
		if (clock_gettime(CLOCK_REALTIME, &ts) == -1)
			ts.tv_sec = ts.tv_nsec = 0;
		(void)log_format_utc((int64_t)ts.tv_sec * 1000 +
		    ts.tv_nsec / 1000000, stamp, sizeof(stamp));
		n = snprintf(line, sizeof(line), "%s %s %s\n", stamp,
		    level_word(level), msg);
	} else {
		n = snprintf(line, sizeof(line), "<%d>%s\n", level, msg);
	}
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = (int)sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	write_all(line, (size_t)n);
}

/* "NAME=value" with the value escaped, into buf; returns its length. */
static size_t
field(char *buf, size_t cap, const char *name, const char *value)
{
	size_t l = strlen(name);

	memcpy(buf, name, l);
	return l + escape(value, strlen(value), 0, buf + l, cap - l);
}

/* Returns 0, or -1 when the journal refused the line. */
static int
to_journal(int level, const struct log_fields *f, const char *msg)
{
	char m[LINE_MAX_BYTES + 16], prio[16];
	char ids[3][FIELD_MAX_BYTES + 32];
	const char *names[3] = { "EVENT_KEY=", "CF_PAYMENT_ID=", "ORDER_ID=" };
	const char *vals[3] = { NULL, NULL, NULL };
	struct iovec iov[6];
	int i, n = 0, plen;

	iov[n].iov_base = m;
	iov[n++].iov_len = field(m, sizeof(m), "MESSAGE=", msg);
	plen = snprintf(prio, sizeof(prio), "PRIORITY=%d", level);
	iov[n].iov_base = prio;
	iov[n++].iov_len = (size_t)plen;
	iov[n].iov_base = (void *)"SYSLOG_IDENTIFIER=cfhookd";
	iov[n++].iov_len = strlen("SYSLOG_IDENTIFIER=cfhookd");
	if (f != NULL) {
		vals[0] = f->event_key;
		vals[1] = f->cf_payment_id;
		vals[2] = f->order_id;
	}
	for (i = 0; i < 3; i++) {
		if (vals[i] == NULL)
			continue;
		iov[n].iov_base = ids[i];
		iov[n++].iov_len = field(ids[i], sizeof(ids[i]), names[i],
		    vals[i]);
	}
	return sd_journal_sendv(iov, n) < 0 ? -1 : 0;
}

static void emit(int, const struct log_fields *, const char *, va_list)
    __attribute__((format(printf, 3, 0)));

static void
emit(int level, const struct log_fields *f, const char *fmt, va_list ap)
{
	char raw[LINE_MAX_BYTES], msg[LINE_MAX_BYTES];
	int n, saved_errno = errno;
	size_t len;

	n = vsnprintf(raw, sizeof(raw), fmt, ap);
	if (n < 0) {
		(void)snprintf(raw, sizeof(raw), "(unprintable log message)");
		n = (int)strlen(raw);
	}
	len = (size_t)n < sizeof(raw) ? (size_t)n : sizeof(raw) - 1;
	(void)escape(raw, len, (size_t)n >= sizeof(raw), msg, sizeof(msg));
	if (!atomic_load(&log_journal) || to_journal(level, f, msg) == -1)
		to_stderr(level, msg);
	/* isatty() and a failed write set errno; a caller may still read
	 * its own after logging. */
	errno = saved_errno;
}

/* $JOURNAL_STREAM is "DEV:INO" of the stream systemd gave us; it is only
 * ours while stderr still is that stream (a child with redirected stderr
 * inherits the variable, so compare, do not trust). */
static int
stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM"), *colon;
	char dev[32];
	uint64_t d, ino;
	struct stat st;
	size_t n;

	if (js == NULL)
		return 0;
	colon = strchr(js, ':');
	if (colon == NULL)
		return 0;
	n = (size_t)(colon - js);
	if (n == 0 || n >= sizeof(dev))
		return 0;
	memcpy(dev, js, n);
	dev[n] = '\0';
	if (num_parse_u64(dev, 0, UINT64_MAX, &d) == -1 ||
	    num_parse_u64(colon + 1, 0, UINT64_MAX, &ino) == -1)
		return 0;
	if (fstat(STDERR_FILENO, &st) == -1)
		return 0;
	if ((uint64_t)st.st_dev != d || (uint64_t)st.st_ino != ino)
		return 0;
	/* sd_journal_sendv() reports success when the socket is missing
	 * (it drops the line), so without the socket stay on stderr. */
	return access(JOURNAL_SOCKET, F_OK) == 0;
}

void
log_init(int level)
{
	atomic_store(&log_journal, stderr_is_journal());
	log_set_level(level);
}

void
log_set_level(int level)
{
	atomic_store(&log_level, level);
}

int
log_level_parse(const char *name)
{
	static const struct {
		const char *name;
		int level;
	} names[] = {
		{ "error", LOG_LVL_ERROR },
		{ "warning", LOG_LVL_WARNING },
		{ "info", LOG_LVL_INFO },
		{ "debug", LOG_LVL_DEBUG },
	};
	size_t i;

	if (name == NULL)
		return -1;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(name, names[i].name) == 0)
			return names[i].level;
	return -1;
}

int
log_enabled(int level)
{
	return level <= atomic_load(&log_level);
}

void
log_error(const char *fmt, ...)
{
	va_list ap;

	if (!log_enabled(LOG_LVL_ERROR))
		return;
	va_start(ap, fmt);
	emit(LOG_LVL_ERROR, NULL, fmt, ap);
	va_end(ap);
}

void
log_warning(const char *fmt, ...)
{
	va_list ap;

	if (!log_enabled(LOG_LVL_WARNING))
		return;
	va_start(ap, fmt);
	emit(LOG_LVL_WARNING, NULL, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	if (!log_enabled(LOG_LVL_INFO))
		return;
	va_start(ap, fmt);
	emit(LOG_LVL_INFO, NULL, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	if (!log_enabled(LOG_LVL_DEBUG))
		return;
	va_start(ap, fmt);
	emit(LOG_LVL_DEBUG, NULL, fmt, ap);
	va_end(ap);
}

void
log_event(int level, const struct log_fields *f, const char *fmt, ...)
{
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	emit(level, f, fmt, ap);
	va_end(ap);
}
