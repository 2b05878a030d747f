/* test_buf.c - the bounded byte buffer: ceiling, growth, NUL termination,
 * ownership transfer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "check.h"

static void
test_init_allocates_nothing(void)
{
	struct buf b;

	buf_init(&b, 100);
	CHECK(b.data == NULL);
	CHECK_INT(b.len, 0);
	CHECK_INT(b.cap, 0);
	CHECK_INT(b.max, 100);
	buf_done(&b);
}

static void
test_append_and_nul(void)
{
	struct buf b;

	buf_init(&b, 100);
	CHECK_INT(buf_append(&b, "abc", 3), 0);
	CHECK_INT(b.len, 3);
	CHECK_STR(b.data, "abc");
	CHECK_INT(buf_puts(&b, "def"), 0);
	CHECK_STR(b.data, "abcdef");
	CHECK_INT(buf_append(&b, "", 0), 0);
	CHECK_INT(b.len, 6);
	CHECK(b.data[6] == '\0');
	buf_done(&b);
}

static void
test_binary_bytes_kept(void)
{
	struct buf b;

	buf_init(&b, 16);
	CHECK_INT(buf_append(&b, "a\0b", 3), 0);
	CHECK_INT(b.len, 3);
	CHECK(memcmp(b.data, "a\0b", 4) == 0);
	buf_done(&b);
}

static void
test_ceiling_exact_and_beyond(void)
{
	struct buf b;

	buf_init(&b, 5);
	CHECK_INT(buf_append(&b, "abc", 3), 0);
	/* 3 + 3 > 5: refused and the buffer is unchanged. */
	CHECK_INT(buf_append(&b, "def", 3), -1);
	CHECK_INT(b.len, 3);
	CHECK_STR(b.data, "abc");
	CHECK_INT(buf_append(&b, "de", 2), 0);
	CHECK_STR(b.data, "abcde");
	CHECK_INT(buf_append(&b, "f", 1), -1);
	CHECK_INT(buf_puts(&b, "g"), -1);
	CHECK_INT(b.len, 5);
	CHECK_STR(b.data, "abcde");
	/* The allocation never outgrows ceiling + NUL. */
	CHECK(b.cap <= 6);
	buf_done(&b);
}

static void
test_zero_ceiling(void)
{
	struct buf b;
	char *p;
	size_t len = 99;

	buf_init(&b, 0);
	CHECK_INT(buf_append(&b, "x", 1), -1);
	CHECK_INT(buf_append(&b, "", 0), 0);
	p = buf_take(&b, &len);
	CHECK(p != NULL);
	CHECK_INT(len, 0);
	CHECK_STR(p, "");
	free(p);
	buf_done(&b);
}

static void
test_huge_sizes_refused(void)
{
	struct buf b;
	char c = 'x';

	buf_init(&b, SIZE_MAX);
	CHECK_INT(buf_append(&b, &c, 1), 0);
	/* len + n would wrap around: must be refused, not overflow. */
	CHECK_INT(buf_append(&b, &c, SIZE_MAX), -1);
	CHECK_INT(buf_append(&b, &c, SIZE_MAX - 1), -1);
	CHECK_INT(b.len, 1);
	CHECK_STR(b.data, "x");
	buf_done(&b);
}

static void
test_geometric_growth(void)
{
	struct buf b;
	size_t i, reallocs = 0, cap = 0;
	int ok = 1;

	buf_init(&b, 1 << 20);
	for (i = 0; i < (1 << 20); i++) {
		if (buf_append(&b, "y", 1) != 0) {
			ok = 0;
			break;
		}
		if (b.cap != cap) {
			reallocs++;
			cap = b.cap;
		}
	}
	CHECK(ok);
	CHECK_INT(b.len, 1 << 20);
	CHECK(b.data[b.len] == '\0');
	CHECK(b.data[0] == 'y' && b.data[b.len - 1] == 'y');
	/* One byte at a time to 1 MiB: doubling means ~15 reallocations. */
	CHECK(reallocs <= 20);
	CHECK_INT(buf_append(&b, "y", 1), -1);
	buf_done(&b);
}

/* Room made up front: appending up to it never moves the bytes, and the
 * ceiling still holds. */
static void
test_reserve(void)
{
	struct buf b;
	char *at;
	size_t i;

	buf_init(&b, 1000);
	CHECK_INT(buf_reserve(&b, 1001), -1);
	CHECK(b.data == NULL && b.cap == 0);
	CHECK_INT(buf_reserve(&b, 1000), 0);
	CHECK_INT(b.cap, 1001);
	CHECK_INT(b.len, 0);
	CHECK(b.data != NULL && b.data[0] == '\0');
	at = b.data;
	for (i = 0; i < 100; i++)
		CHECK_INT(buf_append(&b, "0123456789", 10), 0);
	CHECK(b.data == at);
	CHECK_INT(b.len, 1000);
	CHECK(b.data[1000] == '\0');
	CHECK_INT(buf_append(&b, "x", 1), -1);
	CHECK_INT(buf_reserve(&b, 10), 0);	/* less than it has: a no-op */
	CHECK(b.data == at && b.len == 1000);
	buf_done(&b);
	buf_init(&b, 0);
	CHECK_INT(buf_reserve(&b, 0), 0);
	CHECK(b.data != NULL && b.data[0] == '\0');
	buf_done(&b);
}

static void
test_take_moves_ownership(void)
{
	struct buf b;
	char *p;
	size_t len = 0;

	buf_init(&b, 64);
	CHECK_INT(buf_puts(&b, "hello"), 0);
	p = buf_take(&b, &len);
	CHECK_STR(p, "hello");
	CHECK_INT(len, 5);
	CHECK(b.data == NULL);
	CHECK_INT(b.len, 0);
	CHECK_INT(b.cap, 0);
	/* Still usable, same ceiling. */
	CHECK_INT(buf_puts(&b, "again"), 0);
	CHECK_STR(b.data, "again");
	free(p);
	p = buf_take(&b, NULL);
	CHECK_STR(p, "again");
	free(p);
	buf_done(&b);
}

static void
test_done_is_null_safe(void)
{
	struct buf b;

	buf_done(NULL);
	buf_init(&b, 10);
	buf_done(&b);
	buf_done(&b);
	CHECK(b.data == NULL);
	/* Reusable after buf_init. */
	buf_init(&b, 10);
	CHECK_INT(buf_puts(&b, "0123456789"), 0);
	CHECK_STR(b.data, "0123456789");
	buf_done(&b);
}

int
main(void)
{
	RUN(test_init_allocates_nothing);
	RUN(test_append_and_nul);
	RUN(test_binary_bytes_kept);
	RUN(test_ceiling_exact_and_beyond);
	RUN(test_zero_ceiling);
	RUN(test_huge_sizes_refused);
	RUN(test_geometric_growth);
	RUN(test_reserve);
	RUN(test_take_moves_ownership);
	RUN(test_done_is_null_safe);
	return check_finish("test_buf");
}
