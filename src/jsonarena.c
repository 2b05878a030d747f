/* jsonarena.c - a per-thread arena behind jansson's allocator (see
 * jsonarena.h).
 *
 * jansson makes one allocation per value, key and string token: about 180
 * for a 1.25 KB Cashfree body, freed again a few microseconds later. With
 * several threads doing that at once, malloc's locks, free lists and
 * consolidation cost as much as the parse. Inside a scope they are carved
 * from a thread-owned block instead: a pointer bump each, nothing to
 * return.
 *
 * Each allocation is preceded by a 16-byte header holding its size, so
 * that a free knows how much to give back: the latest allocation is
 * rolled back (jansson frees key and buffer copies at once), and when the
 * last live one goes the whole block is empty again. A block that still
 * holds live values when a new scope opens is left alone (a new block goes
 * in front) and freed when its last value is; so memory is recycled only
 * when nothing can point into it. Under AddressSanitizer every byte not
 * handed out is poisoned, with a gap after each allocation, so overflows
 * and uses after free in the arena are caught as they would be in malloc's
 * memory.
 *
 * Must not: hand arena memory to free(), touch another thread's blocks
 * (they are found only through this thread's list), or fail a scope
 * because memory is short (malloc() takes over). */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include <jansson.h>

#include "jsonarena.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n)	ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n)	ASAN_UNPOISON_MEMORY_REGION((p), (n))
#define GAP		16	/* bytes left poisoned after each allocation */
#else
#define POISON(p, n)	((void)(p), (void)(n))
#define UNPOISON(p, n)	((void)(p), (void)(n))
#define GAP		0
#endif

#define ALIGN		16	/* malloc's: jansson stores doubles, int64s */
#define HEAD		16	/* the size header before each allocation */

struct block {
	struct block *next;	/* older blocks that still hold live values */
	size_t	 top;		/* bytes of mem handed out */
	size_t	 live;		/* allocations not yet freed */
	unsigned char *mem;	/* JSONARENA_BLOCK bytes, ALIGN-aligned */
};

/* This thread's blocks, the one allocations come from first. */
static _Thread_local struct block *blocks;
static _Thread_local unsigned depth;	/* scopes open */
static pthread_key_t exit_key;		/* frees a thread's blocks */
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;
static int exit_key_ok;

static size_t
round_up(size_t n)
{
	return (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
}

/* Room an allocation of n bytes takes after its header: never 0, so that
 * every allocation has an address of its own. */
static size_t
body_of(size_t n)
{
	return round_up(n > 0 ? n : 1);
}

/* Thread exit: nothing of this thread's can be released any more. */
static void
free_blocks(void *arg)
{
	struct block *b = arg, *next;

	for (; b != NULL; b = next) {
		next = b->next;
		UNPOISON(b->mem, JSONARENA_BLOCK);
		free(b);
	}
	blocks = NULL;
}

static void
make_exit_key(void)
{
	exit_key_ok = pthread_key_create(&exit_key, free_blocks) == 0;
}

/* A new empty block in front of the list, or NULL (no memory). */
static struct block *
block_new(void)
{
	struct block *b;

	(void)pthread_once(&exit_once, make_exit_key);
	if (!exit_key_ok)
		return NULL;	/* it could never be freed */
	b = malloc(round_up(sizeof(*b)) + JSONARENA_BLOCK);
	if (b == NULL)
		return NULL;
	b->mem = (unsigned char *)b + round_up(sizeof(*b));
	b->top = 0;
	b->live = 0;
	b->next = blocks;
	if (pthread_setspecific(exit_key, b) != 0) {
		free(b);
		return NULL;
	}
	POISON(b->mem, JSONARENA_BLOCK);
	blocks = b;
	return b;
}

/* The block of this thread that p lies in, and the one before it. */
static struct block *
block_of(const void *p, struct block **prev)
{
	const unsigned char *c = p;
	struct block *b;

	*prev = NULL;
	for (b = blocks; b != NULL; *prev = b, b = b->next) {
		if ((uintptr_t)c >= (uintptr_t)b->mem &&
		    (uintptr_t)c < (uintptr_t)b->mem + JSONARENA_BLOCK)
			return b;
	}
	return NULL;
}

static void *
arena_malloc(size_t n)
{
	struct block *b = blocks;
	unsigned char *h;
	size_t need;

	if (depth == 0 || b == NULL || n > JSONARENA_BLOCK)
		return malloc(n);
	need = HEAD + body_of(n) + GAP;
	if (need > JSONARENA_BLOCK - b->top)
		return malloc(n);
	h = b->mem + b->top;
	UNPOISON(h, HEAD + n);
	*(size_t *)(void *)h = n;
	POISON(h, HEAD);
	b->top += need;
	b->live++;
	return h + HEAD;
}

static void
arena_free(void *p)
{
	struct block *b, *prev;
	unsigned char *h;
	size_t n;

	if (p == NULL)
		return;
	b = blocks != NULL ? block_of(p, &prev) : NULL;
	if (b == NULL) {
		free(p);
		return;
	}
	h = (unsigned char *)p - HEAD;
	UNPOISON(h, HEAD);
	n = *(size_t *)(void *)h;
	POISON(h, HEAD + body_of(n));
	/* The latest allocation: its room is free again at once. */
	if (h + HEAD + body_of(n) + GAP == b->mem + b->top)
		b->top = (size_t)(h - b->mem);
	if (--b->live > 0)
		return;
	if (b == blocks) {
		b->top = 0;		/* empty: reused from the start */
		return;
	}
	prev->next = b->next;		/* an older block, done with */
	UNPOISON(b->mem, JSONARENA_BLOCK);
	free(b);
}

/* Before main(), so before any thread or jansson value exists: the
 * functions are swapped while nobody can be using the old ones. */
static void __attribute__((constructor))
install(void)
{
	json_set_alloc_funcs(arena_malloc, arena_free);
}

void
jsonarena_begin(void)
{
	if (depth++ > 0)
		return;
	/* A block still holding values is never reset: a fresh one goes in
	 * front (without memory for it, the old one goes on from its top). */
	if (blocks == NULL || blocks->live > 0)
		(void)block_new();
}

void
jsonarena_end(void)
{
	if (depth > 0)
		depth--;
}

int
jsonarena_owns(const void *p)
{
	struct block *prev;

	return p != NULL && block_of(p, &prev) != NULL;
}

size_t
jsonarena_live(void)
{
	struct block *b;
	size_t n = 0;

	for (b = blocks; b != NULL; b = b->next)
		n += b->live;
	return n;
}
