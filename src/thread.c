/* thread.c - see thread.h. */
#include <signal.h>

#include "thread.h"

int
thread_start(pthread_t *t, void *(*fn)(void *), void *arg, const char *name)
{
	sigset_t all, old;
	int err;

	/* A new thread takes its creator's mask: block everything around the
	 * creation so that no signal can reach it before it exists. */
	(void)sigfillset(&all);
	(void)pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(t, NULL, fn, arg);
	(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err == 0)
		(void)pthread_setname_np(*t, name);
	return err;
}
