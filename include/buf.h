/* buf.h - a growable byte buffer with a hard ceiling fixed at init.  Pure. */
#ifndef CFHOOK_BUF_H
#define CFHOOK_BUF_H

#include "attr.h"

#include <stddef.h>

struct buf {
	char	*data;		/* always NUL-terminated past len when non-NULL */
	size_t	 len;
	size_t	 cap;		/* allocated bytes */
	size_t	 max;		/* ceiling: len never exceeds it */
};

/* Empty buffer that will refuse to grow past max bytes. Allocates nothing. */
void	buf_init(struct buf *, size_t max);
/* Make room for n bytes in all (a body whose length is announced), so that
 * appending up to n bytes allocates and copies nothing more. Returns 0, or
 * -1 when n passes the ceiling or on no memory (the buffer is unchanged). */
int	buf_reserve(struct buf *, size_t n) MUST_CHECK;
/* Append n bytes. Returns 0, or -1 when it would pass the ceiling or on no
 * memory; on -1 the buffer is unchanged. */
int	buf_append(struct buf *, const void *p, size_t n) MUST_CHECK;
/* Append a NUL-terminated string (same rules as buf_append). */
int	buf_puts(struct buf *, const char *s);
/* Moves the bytes out (caller frees, NUL-terminated); the buffer is empty after. */
char	*buf_take(struct buf *, size_t *len);
/* Frees the bytes; the buffer may be reused after buf_init. NULL-safe. */
void	buf_done(struct buf *);

#endif
