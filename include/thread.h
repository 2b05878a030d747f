/* thread.h - starting the daemon's own threads: every signal blocked (they
 * belong to the main thread's signalfd) and a name that `top -H`, `ps -L`
 * and perf show (at most 15 bytes). */
#ifndef CFHOOK_THREAD_H
#define CFHOOK_THREAD_H

#include <pthread.h>

/* Starts fn(arg) on *t with every signal blocked and named name (a string
 * that outlives the thread's start, such as a literal). Returns 0 or an
 * error number (pthread_create's, or ENOMEM); the name is best effort. The
 * calling thread's own mask is as it was on return. */
int thread_start(pthread_t *t, void *(*fn)(void *), void *arg, const char *name);

#endif
