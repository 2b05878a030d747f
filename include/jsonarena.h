/* jsonarena.h - a per-thread arena behind jansson's allocator, so that
 * parsing a webhook body costs no malloc/free per JSON value.  Pure (no
 * I/O, no logging).
 *
 * jansson's allocator is process-wide: this module installs its own
 * functions before main() runs (so before any thread or any jansson value
 * exists). On a thread with no scope open they are exactly malloc() and
 * free(), so every other jansson user (the forwarder's envelopes,
 * cfhookctl) is unchanged. Inside a scope, on that thread only, jansson's
 * allocations are carved from the thread's arena block (64 KiB, reused
 * from one scope to the next); what does not fit comes from malloc(). The
 * free function knows arena memory by its address, on the thread that
 * owns it, inside a scope or not, and passes everything else to free().
 *
 * Rules for a scope:
 *   - every jansson value made inside it is released (json_decref) on the
 *     same thread, normally before jsonarena_end(); one still referenced
 *     at the end keeps its block alive (a fresh one is used next time)
 *     until it is released, so a forgotten reference is a leak, never a
 *     use after free;
 *   - nothing jansson allocates inside it is handed to libc's free() (no
 *     json_dumps() there: dump outside a scope).
 * Scopes nest (only the outermost end recycles the block). Each thread's
 * blocks are freed when the thread exits. */
#ifndef CFHOOK_JSONARENA_H
#define CFHOOK_JSONARENA_H

#include <stddef.h>

/* Bytes of one arena block: a 1.25 KB Cashfree body needs about 10 KiB of
 * jansson values; a body of up to about 8 KB fits whole. */
#define JSONARENA_BLOCK	(64 * 1024)

/* Open a scope on the calling thread. Never fails: without memory for a
 * block, jansson simply uses malloc() in it. */
void	jsonarena_begin(void);
/* Close the scope opened last on this thread. */
void	jsonarena_end(void);
/* Does p lie in one of the calling thread's arena blocks? For tests. */
int	jsonarena_owns(const void *p);
/* Allocations from the calling thread's arena blocks not yet freed. For
 * tests. */
size_t	jsonarena_live(void);

#endif
