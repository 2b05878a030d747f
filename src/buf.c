/* buf.c - a growable byte buffer with a hard ceiling fixed at init.
 *
 * Pure: no I/O, no logging. Growth is geometric so appending n bytes one at a
 * time costs O(n); every size computation is checked for overflow, and the
 * ceiling (buf.max) is never passed, so a hostile peer cannot make it grow
 * without bound. The bytes are always followed by a NUL so callers may hand
 * them to string functions (the NUL is not counted in len). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

#define BUF_MIN_CAP	64

void
buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

/* Make room for `need` bytes plus the NUL. `need` <= b->max was checked. */
static int
reserve(struct buf *b, size_t need)
{
	size_t cap;
	char *p;

	if (need == SIZE_MAX)
		return -1;
	if (b->data != NULL && need + 1 <= b->cap)
		return 0;
	cap = b->cap < BUF_MIN_CAP ? BUF_MIN_CAP : b->cap;
	while (cap < need + 1) {
		if (cap > SIZE_MAX / 2) {
			cap = need + 1;
			break;
		}
		cap *= 2;
	}
	/* Never allocate much more than the ceiling allows us to use. */
	if (b->max < SIZE_MAX && cap > b->max + 1)
		cap = b->max + 1;
	if (cap < need + 1)
		cap = need + 1;
	p = realloc(b->data, cap);
	if (p == NULL)
		return -1;
	b->data = p;
	b->cap = cap;
	return 0;
}

int
buf_reserve(struct buf *b, size_t n)
{
	if (n > b->max || reserve(b, n) == -1)
		return -1;
	b->data[b->len] = '\0';
	return 0;
}

int
buf_append(struct buf *b, const void *p, size_t n)
{
	size_t need;

	if (n > b->max || b->len > b->max - n)
		return -1;
	need = b->len + n;
	if (reserve(b, need) == -1)
		return -1;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len = need;
	b->data[b->len] = '\0';
	return 0;
}

int
buf_puts(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

char *
buf_take(struct buf *b, size_t *len)
{
	char *p;

	/* An empty buffer still hands out a valid empty string. */
	if (b->data == NULL && reserve(b, 0) == -1)
		return NULL;
	b->data[b->len] = '\0';
	p = b->data;
	if (len != NULL)
		*len = b->len;
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}

void
buf_done(struct buf *b)
{
	if (b == NULL)
		return;
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}
