/* log.h - one line per message, to stderr with a syslog "<N>" priority prefix,
 * or to the journal with fields when systemd connected stderr to it. When
 * stderr is a terminal the prefix is a UTC time and a level word instead:
 * "2026-12-07T05:10:11.123Z info  http: ...".
 *
 * Callable from any thread; errno is left as it was. Messages are single
 * lines: control bytes are escaped. Never pass a secret or a request body. */
#ifndef CFHOOK_LOG_H
#define CFHOOK_LOG_H

#include <stddef.h>
#include <stdint.h>

/* syslog priorities */
#define LOG_LVL_ERROR	3
#define LOG_LVL_WARNING	4
#define LOG_LVL_INFO	6
#define LOG_LVL_DEBUG	7

/* Fields that go to the journal with an event's log line (EVENT_KEY=,
 * CF_PAYMENT_ID=, ORDER_ID=); any may be NULL. */
struct log_fields {
	const char *event_key;
	const char *cf_payment_id;
	const char *order_id;
};

/* Chooses the sink: the journal when $JOURNAL_STREAM names our stderr,
 * else stderr. Safe to call again (SIGHUP) to change the level. */
void	log_init(int level);
void	log_set_level(int level);
/* "error", "warning", "info", "debug" -> LOG_LVL_*; -1 if unknown. */
int	log_level_parse(const char *name);
int	log_enabled(int level);
/* unix_ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC) into out, NUL-terminated:
 * the terminal prefix. Pure (no clock, no lock). Returns the length, or 0
 * (out emptied) when cap is too small: 25 bytes fit years 0-9999. */
size_t	log_format_utc(int64_t unix_ms, char *out, size_t cap);

void	log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A line about one event, with its journal fields. */
void	log_event(int level, const struct log_fields *, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

#endif
