/* form.c - application/x-www-form-urlencoded decoding (WHATWG urlencoded
 * parser) and the string the Cashfree form signature signs (spec 5.2).
 *
 * Pure: no I/O, no logging. Keys and values are byte strings after decoding
 * and may hold NUL, so nothing here uses string functions on them. One
 * allocation per parse holds the field table and every decoded byte; the
 * field count is capped (FORM_MAX_FIELDS) before anything is allocated.
 * Repeated keys are refused (spec section 11), comparing decoded bytes, so
 * "a" and "%61" are the same key. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "form.h"
#include "num.h"

/* Decode s[0..n) into out (room for n + 1 bytes); returns the decoded length.
 * A '%' without two hex digits after it is kept as it is (WHATWG). */
static size_t
decode(const char *s, size_t n, char *out)
{
	size_t i, o = 0;
	int hi, lo;

	for (i = 0; i < n; i++) {
		if (s[i] == '+') {
			out[o++] = ' ';
			continue;
		}
		if (s[i] == '%' && n - i >= 3) {
			hi = num_hex_digit(s[i + 1]);
			lo = num_hex_digit(s[i + 2]);
			if (hi >= 0 && lo >= 0) {
				out[o++] = (char)(hi * 16 + lo);
				i += 2;
				continue;
			}
		}
		out[o++] = s[i];
	}
	out[o] = '\0';
	return o;
}

/* Non-empty '&'-separated pieces in body[0..len). */
static size_t
count_pieces(const char *body, size_t len)
{
	size_t i, start = 0, count = 0;

	for (i = 0; i <= len; i++) {
		if (i == len || body[i] == '&') {
			if (i > start)
				count++;
			start = i + 1;
		}
	}
	return count;
}

/* Bytewise key order (memcmp, then the shorter first); equal keys keep their
 * wire order so the sort is stable (the pointers point into one array). */
static int
cmp_key(const void *pa, const void *pb)
{
	const struct form_field *a = *(const struct form_field *const *)pa;
	const struct form_field *b = *(const struct form_field *const *)pb;
	size_t m = a->key_len < b->key_len ? a->key_len : b->key_len;
	int c;

	c = memcmp(a->key, b->key, m);
	if (c != 0)
		return c;
	if (a->key_len != b->key_len)
		return a->key_len < b->key_len ? -1 : 1;
	if (a == b)
		return 0;
	return a < b ? -1 : 1;
}

/* Pointers to the fields of f, sorted by key (caller frees), or NULL. */
static const struct form_field **
sorted_fields(const struct form *f)
{
	const struct form_field **v;
	size_t i;

	v = calloc(f->n > 0 ? f->n : 1, sizeof(*v));
	if (v == NULL)
		return NULL;
	for (i = 0; i < f->n; i++)
		v[i] = &f->fields[i];
	if (f->n > 1)
		qsort(v, f->n, sizeof(*v), cmp_key);
	return v;
}

static int
same_key(const struct form_field *a, const struct form_field *b)
{
	return a->key_len == b->key_len &&
	    memcmp(a->key, b->key, a->key_len) == 0;
}

static enum form_result
check_duplicates(const struct form *f)
{
	const struct form_field **v;
	enum form_result r = FORM_OK;
	size_t i;

	if (f->n < 2)
		return FORM_OK;
	v = sorted_fields(f);
	if (v == NULL)
		return FORM_NOMEM;
	for (i = 1; i < f->n; i++) {
		if (same_key(v[i - 1], v[i])) {
			r = FORM_DUPLICATE;
			break;
		}
	}
	free(v);
	return r;
}

/* Split each piece on its first '=' and decode both halves into the arena. */
static void
fill_fields(const char *body, size_t len, struct form *f, char *arena)
{
	size_t i, start = 0, eq;
	struct form_field *fld;

	for (i = 0; i <= len; i++) {
		if (i < len && body[i] != '&')
			continue;
		if (i > start) {
			fld = &f->fields[f->n++];
			for (eq = start; eq < i && body[eq] != '='; eq++)
				;
			fld->key = arena;
			fld->key_len = decode(body + start, eq - start, arena);
			arena += fld->key_len + 1;
			/* Without an '=' the value is empty. */
			eq = eq < i ? eq + 1 : i;
			fld->value = arena;
			fld->value_len = decode(body + eq, i - eq, arena);
			arena += fld->value_len + 1;
		}
		start = i + 1;
	}
}

enum form_result
form_parse(const char *body, size_t len, struct form *ret)
{
	size_t count, table, need;
	char *block;

	ret->fields = NULL;
	ret->n = 0;
	if (len == 0)
		return FORM_OK;
	count = count_pieces(body, len);
	if (count > FORM_MAX_FIELDS)
		return FORM_TOO_MANY;
	if (count == 0)
		return FORM_OK;
	/* Decoding never lengthens: the body's bytes plus two NULs per field
	 * (key and value) are enough for every decoded string. */
	table = count * sizeof(struct form_field);
	if (len > SIZE_MAX - table - 2 * count)
		return FORM_NOMEM;
	need = table + len + 2 * count;
	block = malloc(need);
	if (block == NULL)
		return FORM_NOMEM;
	ret->fields = (struct form_field *)(void *)block;
	fill_fields(body, len, ret, block + table);
	return check_duplicates(ret);
}

const struct form_field *
form_get(const struct form *f, const char *key)
{
	size_t i, klen = strlen(key);

	for (i = 0; i < f->n; i++) {
		if (f->fields[i].key_len == klen &&
		    memcmp(f->fields[i].key, key, klen) == 0)
			return &f->fields[i];
	}
	return NULL;
}

const char *
form_value(const struct form *f, const char *key)
{
	const struct form_field *fld = form_get(f, key);

	if (fld == NULL || memchr(fld->value, '\0', fld->value_len) != NULL)
		return NULL;
	return fld->value;
}

static int
is_signature_key(const struct form_field *fld)
{
	return fld->key_len == 9 && memcmp(fld->key, "signature", 9) == 0;
}

char *
form_signing_string(const struct form *f, size_t *len)
{
	const struct form_field **v = NULL;
	char *s = NULL;
	size_t i, total = 0, o = 0;

	v = sorted_fields(f);
	if (v == NULL)
		goto out;
	for (i = 0; i < f->n; i++) {
		if (is_signature_key(v[i]))
			continue;
		if (v[i]->value_len > SIZE_MAX - 1 - total)
			goto out;
		total += v[i]->value_len;
	}
	s = malloc(total + 1);
	if (s == NULL)
		goto out;
	for (i = 0; i < f->n; i++) {
		if (is_signature_key(v[i]))
			continue;
		memcpy(s + o, v[i]->value, v[i]->value_len);
		o += v[i]->value_len;
	}
	s[o] = '\0';
	*len = o;
out:
	free(v);
	return s;
}

void
form_done(struct form *f)
{
	if (f == NULL)
		return;
	/* One block: the table and every decoded byte. */
	free(f->fields);
	f->fields = NULL;
	f->n = 0;
}
