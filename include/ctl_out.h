/* ctl_out.h - how cfhookctl prints: aligned tables and "label value" lines
 * for a person, JSON documents for a program.
 *
 * Text output never passes a control byte through: order ids and keys come
 * from the outside and may hold newlines or terminal escape sequences, so
 * C0/C1 controls, DEL and invalid UTF-8 are shown as \xNN (and a backslash
 * as \\, so the escaping is unambiguous). JSON output is always valid UTF-8.
 * Single-threaded (cfhookctl). */
#ifndef CFHOOK_CTL_OUT_H
#define CFHOOK_CTL_OUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

struct ctl_zone;

/* The text escaped for a terminal (NULL shows as "-"). malloc'd; NULL on
 * no memory. */
char	*ctl_out_escape(const char *s);

struct ctl_table;

/* A table with ncols columns and these headers (borrowed; they must live
 * as long as the table). Returns NULL on no memory. */
struct ctl_table *ctl_table_new(size_t ncols, const char *const *headers);
/* Adds a row of ncols cells (raw text, escaped here; NULL shows as "-").
 * 0 / -1 (no memory). */
int	ctl_table_add(struct ctl_table *, const char *const *cells);
/* Columns padded to their widest cell, two blanks apart; `right` marks
 * columns aligned right (numbers), one flag per column, or NULL. */
void	ctl_table_print(const struct ctl_table *, const int *right, FILE *);
/* NULL-safe. */
void	ctl_table_free(struct ctl_table *);

/* "  label            value\n", value escaped (NULL shows as "-"). */
void	ctl_out_field(FILE *, const char *label, const char *value);
/* The same for a time (unix ms; -1 shows as "-") in zone z (NULL: UTC),
 * with its age relative to now: "2025-05-05T06:49:19Z (3h 20m ago)". */
void	ctl_out_time_field(FILE *, const struct ctl_zone *z, const char *label,
	    int64_t ms, int64_t now);
/* The same for an integer. */
void	ctl_out_int_field(FILE *, const char *label, int64_t v);

/* JSON values; each returns a new reference, or NULL on no memory. */
/* A string; NULL -> null; bytes that are not UTF-8 become U+FFFD. */
json_t	*ctl_out_json_text(const char *s, size_t len);
/* RFC 3339 with milliseconds in zone z (NULL: UTC); -1 -> null. */
json_t	*ctl_out_json_time(const struct ctl_zone *z, int64_t ms);
/* A time as text in zone z (NULL: UTC) into out (CTL_TIME_MAX bytes), "-"
 * for -1 or a time that cannot be shown. Returns out. */
const char *ctl_out_time(const struct ctl_zone *z, int64_t ms, int with_ms,
	    char *out, size_t n);
/* Standard base64 of n bytes as a JSON string. */
json_t	*ctl_out_json_base64(const char *s, size_t n);
/* Sets key to v in obj, taking v's reference; v NULL (no memory) or a
 * failed set makes it return -1. */
int	ctl_out_set(json_t *obj, const char *key, json_t *v);
/* Prints doc indented, with a final newline, and drops the reference.
 * 0 / -1 (no memory, write error). */
int	ctl_out_json_print(json_t *doc, FILE *);

#endif
