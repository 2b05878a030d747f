/* reason.h - short failure reasons for last_error and forward_log.error
 * (DESIGN "Forwarding"): a line that came from outside (a hook's stderr, a
 * consumer's answer) quoted so that it is bounded, one line, and text any
 * reader of the database can decode. Pure. */
#ifndef CFHOOK_REASON_H
#define CFHOOK_REASON_H

#include <stddef.h>

/* Bytes a quoted line may add to a reason, escapes included. */
#define REASON_QUOTE_MAX	200

/* Appends p[0..n) to the NUL-terminated string in out (cap bytes in all):
 * printable ASCII and valid UTF-8 as they are, control bytes, DEL and bytes
 * that are not UTF-8 as \xNN; at most REASON_QUOTE_MAX bytes, cut at a
 * character and ended by "..." when the line is longer. Never overruns
 * cap; the result is always NUL-terminated. */
void	reason_append_quoted(char *out, size_t cap, const char *p, size_t n);

#endif
