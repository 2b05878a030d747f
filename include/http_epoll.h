/* http_epoll.h - libmicrohttpd's epoll loop kept from sleeping on work it
 * already holds.
 *
 * libmicrohttpd 0.9.75 (Debian 12) reads events in batches of 128. When a
 * batch comes back full it asks again, with the timeout it computed before
 * the first batch (up to idle_timeout), and handles the batches only once
 * a call returns fewer. So when exactly 128 events were ready at once (128
 * connections whose requests arrived together, or 127 closing ones and the
 * wake-up for a connection the acceptor handed over) and nothing else
 * follows, the worker sleeps on them: the requests and the new connection
 * wait for the next event on that worker, or for the idle timeout.
 *
 * http_epoll.c defines epoll_wait() for the process: a call made right
 * after a full batch on the same thread does not block. libmicrohttpd then
 * handles what it holds and computes its timeout afresh, as it does after
 * any short batch. Nothing else in cfhookd calls epoll_wait(). */
#ifndef CFHOOK_HTTP_EPOLL_H
#define CFHOOK_HTTP_EPOLL_H

/* 1 when libmicrohttpd's calls reach the epoll_wait() of http_epoll.c (it
 * is exported from the executable), 0 when the link lost it. Any thread. */
int	http_epoll_guarded(void);

#endif
