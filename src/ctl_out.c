/* ctl_out.c - cfhookctl's output: escaped, aligned text for a person and
 * JSON for a program (ctl_out.h).
 *
 * Everything printed as text passes ctl_out_escape(): an order id is
 * whatever the payer's shop sent, and a raw ESC or newline must not redraw
 * the operator's terminal or forge a table row. Must not: read the database
 * or decide what to print (ctl_cmd.c does); only how. */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "buf.h"
#include "ctl_out.h"
#include "ctl_time.h"
#include "ctl_zone.h"
#include "utf8.h"

#define CELL_MAX	(1024 * 1024)	/* one escaped cell, bytes */
#define LABEL_WIDTH	18

/* A C1 control (U+0080..U+009F): some terminals obey them like ESC [. */
static int
is_c1(const unsigned char *p, size_t l)
{
	return l == 2 && p[0] == 0xc2 && p[1] < 0xa0;
}

char *
ctl_out_escape(const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p;
	char esc[4] = { '\\', 'x', 0, 0 };
	size_t i, l, n;
	struct buf b;
	int bad = 0;

	buf_init(&b, CELL_MAX);
	if (s == NULL)
		s = "-";
	p = (const unsigned char *)s;
	n = strlen(s);
	for (i = 0; i < n && !bad; i += l) {
		l = utf8_seq(p + i, n - i);
		if (l == 1 && p[i] >= 0x20 && p[i] != 0x7f && p[i] != '\\') {
			bad |= buf_append(&b, p + i, 1);
		} else if (l == 1 && p[i] == '\\') {
			bad |= buf_puts(&b, "\\\\");
		} else if (l > 1 && !is_c1(p + i, l)) {
			bad |= buf_append(&b, p + i, l);
		} else {
			l = 1;		/* one byte at a time, as \xNN */
			esc[2] = hex[p[i] >> 4];
			esc[3] = hex[p[i] & 0x0f];
			bad |= buf_append(&b, esc, 4);
		}
	}
	if (bad) {		/* past CELL_MAX: cut, and say so */
		b.len = b.len > CELL_MAX - 3 ? CELL_MAX - 3 : b.len;
		(void)buf_puts(&b, "...");
	}
	return buf_take(&b, NULL);
}

/* Terminal columns of escaped text: one per code point (wide characters
 * are rare in ids; a slightly ragged column beats a wrong one). */
static size_t
width(const char *s)
{
	size_t w = 0;

	for (; *s != '\0'; s++) {
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	}
	return w;
}

struct ctl_table {
	size_t	 ncols;
	const char *const *headers;
	char	**cells;	/* nrows * ncols escaped strings */
	size_t	 nrows;
	size_t	 cap;		/* rows allocated */
};

struct ctl_table *
ctl_table_new(size_t ncols, const char *const *headers)
{
	struct ctl_table *t;

	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->ncols = ncols;
	t->headers = headers;
	return t;
}

int
ctl_table_add(struct ctl_table *t, const char *const *cells)
{
	char **p;
	size_t i, cap;

	if (t->nrows == t->cap) {
		cap = t->cap == 0 ? 32 : t->cap * 2;
		p = realloc(t->cells, cap * t->ncols * sizeof(*p));
		if (p == NULL)
			return -1;
		t->cells = p;
		t->cap = cap;
	}
	p = t->cells + t->nrows * t->ncols;
	for (i = 0; i < t->ncols; i++) {
		p[i] = ctl_out_escape(cells[i]);
		if (p[i] == NULL) {
			while (i > 0)
				free(p[--i]);
			return -1;
		}
	}
	t->nrows++;
	return 0;
}

static void
print_cell(FILE *fp, const char *s, size_t w, int right, int last)
{
	size_t pad = w - width(s);

	if (right)
		fprintf(fp, "%*s%s", (int)pad, "", s);
	else if (last)
		fputs(s, fp);
	else
		fprintf(fp, "%s%*s", s, (int)pad, "");
	fputs(last ? "\n" : "  ", fp);
}

void
ctl_table_print(const struct ctl_table *t, const int *right, FILE *fp)
{
	size_t *w, r, c, x;

	w = calloc(t->ncols, sizeof(*w));
	if (w == NULL)
		return;
	for (c = 0; c < t->ncols; c++) {
		w[c] = width(t->headers[c]);
		for (r = 0; r < t->nrows; r++) {
			x = width(t->cells[r * t->ncols + c]);
			w[c] = x > w[c] ? x : w[c];
		}
	}
	for (c = 0; c < t->ncols; c++)
		print_cell(fp, t->headers[c], w[c], right != NULL && right[c],
		    c + 1 == t->ncols);
	for (r = 0; r < t->nrows; r++) {
		for (c = 0; c < t->ncols; c++)
			print_cell(fp, t->cells[r * t->ncols + c], w[c],
			    right != NULL && right[c], c + 1 == t->ncols);
	}
	free(w);
}

void
ctl_table_free(struct ctl_table *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

void
ctl_out_field(FILE *fp, const char *label, const char *value)
{
	char *v = ctl_out_escape(value);

	fprintf(fp, "  %-*s %s\n", LABEL_WIDTH, label, v == NULL ? "?" : v);
	free(v);
}

const char *
ctl_out_time(const struct ctl_zone *z, int64_t ms, int with_ms, char *out,
    size_t n)
{
	int rc;

	rc = z != NULL ? ctl_zone_format(z, ms, with_ms, out, n) :
	    ctl_time_format(ms, with_ms, out, n);
	if (ms < 0 || rc == -1)
		(void)snprintf(out, n, "-");
	return out;
}

void
ctl_out_time_field(FILE *fp, const struct ctl_zone *z, const char *label,
    int64_t ms, int64_t now)
{
	char when[CTL_TIME_MAX], age[32];

	if (ms < 0 || strcmp(ctl_out_time(z, ms, 0, when, sizeof(when)),
	    "-") == 0) {
		ctl_out_field(fp, label, NULL);
		return;
	}
	if (ctl_time_age(now - ms, age, sizeof(age)) == -1)
		age[0] = '\0';
	if (now >= ms)
		fprintf(fp, "  %-*s %s (%s ago)\n", LABEL_WIDTH, label, when,
		    age);
	else
		fprintf(fp, "  %-*s %s (in %s)\n", LABEL_WIDTH, label, when,
		    ctl_time_age(ms - now, age, sizeof(age)) == 0 ? age : "?");
}

void
ctl_out_int_field(FILE *fp, const char *label, int64_t v)
{
	fprintf(fp, "  %-*s %lld\n", LABEL_WIDTH, label, (long long)v);
}

json_t *
ctl_out_json_text(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	struct buf b;
	size_t i, l;
	json_t *j;
	int bad = 0;

	if (s == NULL)
		return json_null();
	if (utf8_text(s, len))
		return json_stringn(s, len);
	buf_init(&b, (size_t)-1);
	for (i = 0; i < len && !bad; i += l) {
		l = p[i] == 0 ? 1 : utf8_seq(p + i, len - i);
		if (l == 0 || p[i] == 0) {
			l = 1;
			bad |= buf_puts(&b, "\xef\xbf\xbd");	/* U+FFFD */
		} else {
			bad |= buf_append(&b, p + i, l);
		}
	}
	j = bad ? NULL : json_stringn(b.data == NULL ? "" : b.data, b.len);
	buf_done(&b);
	return j;
}

json_t *
ctl_out_json_time(const struct ctl_zone *z, int64_t ms)
{
	char when[CTL_TIME_MAX];

	if (ms < 0 || strcmp(ctl_out_time(z, ms, 1, when, sizeof(when)),
	    "-") == 0)
		return json_null();
	return json_string(when);
}

json_t *
ctl_out_json_base64(const char *s, size_t n)
{
	unsigned char *out;
	json_t *j = NULL;
	size_t cap;
	int len;

	if (n > (size_t)INT32_MAX / 2)
		return NULL;
	cap = (n + 2) / 3 * 4 + 1;
	out = malloc(cap);
	if (out == NULL)
		return NULL;
	len = EVP_EncodeBlock(out, (const unsigned char *)s, (int)n);
	if (len >= 0)
		j = json_stringn((const char *)out, (size_t)len);
	free(out);
	return j;
}

int
ctl_out_set(json_t *obj, const char *key, json_t *v)
{
	if (v == NULL)
		return -1;
	return json_object_set_new(obj, key, v) == 0 ? 0 : -1;
}

int
ctl_out_json_print(json_t *doc, FILE *fp)
{
	int rc = -1;

	if (doc == NULL)
		return -1;
	if (json_dumpf(doc, fp, JSON_INDENT(2)) == 0 && fputc('\n', fp) != EOF)
		rc = 0;
	json_decref(doc);
	return rc;
}
