/* http_epoll.c - epoll_wait() that never blocks right after a full batch
 * (see http_epoll.h for the libmicrohttpd loop it guards).
 *
 * A full batch means more events may be ready already: the next call is
 * made to collect them, not to wait, so it gets a zero timeout. Any other
 * call passes its timeout through. epoll_pwait() with no signal mask is
 * epoll_wait() itself (glibc implements one with the other on some
 * architectures), and calling it keeps the sanitizers' interceptors on the
 * path.
 *
 * Must not: keep state beyond the calling thread's last result (each
 * libmicrohttpd worker has its own epoll set and thread), or change what a
 * call returns. */
#include <dlfcn.h>
#include <stddef.h>
#include <string.h>
#include <sys/epoll.h>

#include "http_epoll.h"

/* The last call on this thread filled the caller's array. */
static _Thread_local int filled;

__attribute__((visibility("default"))) int
epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout)
{
	int n;

	n = epoll_pwait(epfd, events, maxevents, filled ? 0 : timeout, NULL);
	filled = n > 0 && n == maxevents;
	return n;
}

int
http_epoll_guarded(void)
{
	int (*found)(int, struct epoll_event *, int, int);
	void *sym = dlsym(RTLD_DEFAULT, "epoll_wait");

	/* POSIX's way from an object pointer to a function pointer */
	if (sym == NULL)
		return 0;
	memcpy(&found, &sym, sizeof(found));
	return found == epoll_wait;
}
