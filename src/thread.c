/* thread.c - see thread.h. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>

#include "thread.h"

struct start {
	void	*(*fn)(void *);
	void	*arg;
	const char *name;
};

/* The new thread names itself: naming it from outside opens a file under
 * /proc for a moment, an fd number taken while other threads open theirs. */
static void *
trampoline(void *p)
{
	struct start s = *(struct start *)p;

	free(p);
	(void)pthread_setname_np(pthread_self(), s.name);
	return s.fn(s.arg);
}

int
thread_start(pthread_t *t, void *(*fn)(void *), void *arg, const char *name)
{
	struct start *s = malloc(sizeof(*s));
	sigset_t all, old;
	int err;

	if (s == NULL)
		return ENOMEM;
	s->fn = fn;
	s->arg = arg;
	s->name = name;
	/* A new thread takes its creator's mask: block everything around the
	 * creation so that no signal can reach it before it exists. */
	(void)sigfillset(&all);
	(void)pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(t, NULL, trampoline, s);
	(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err != 0)
		free(s);
	return err;
}
