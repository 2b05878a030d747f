/* listen.h - the listening socket named by the `listen` config key.
 *
 * TCP (IPv4 or IPv6) or a unix stream socket. A unix socket file is replaced
 * safely: bound under a temporary name, given its mode, then renamed over the
 * old path; a path held by another live server, or by anything that is not a
 * socket, is refused. */
#ifndef CFHOOK_LISTEN_H
#define CFHOOK_LISTEN_H

#include "config.h"

/* A non-blocking, close-on-exec listening socket. Returns the fd, or -1
 * (logged). For a unix socket *ino gets the socket file's inode. */
int	listen_open(const struct config *, unsigned long long *ino);
/* Remove the unix socket file this process created, unless another server
 * has replaced it since (its inode differs). No-op for TCP. */
void	listen_unlink(const struct config *, unsigned long long ino);

#endif
