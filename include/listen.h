/* listen.h - the listening socket named by the `listen` config key.
 *
 * TCP (IPv4 or IPv6) or a unix stream socket. A unix socket file is replaced
 * safely: bound under a temporary name, given its mode, then renamed over the
 * old path; a path held by another live server, or by anything that is not a
 * socket, is refused. */
#ifndef CFHOOK_LISTEN_H
#define CFHOOK_LISTEN_H

#include "attr.h"

#include <stddef.h>

#include "config.h"

/* A non-blocking, close-on-exec listening socket. Returns the fd, or -1
 * (logged). For a unix socket *ino gets the socket file's inode. */
int	listen_open(const struct config *, unsigned long long *ino) MUST_CHECK;
/* Remove the unix socket file this process created, unless another server
 * has replaced it since (its inode differs). No-op for TCP. */
void	listen_unlink(const struct config *, unsigned long long ino);
/* The address listening socket fd is bound to, read from the socket itself
 * (so also for one systemd passed): "127.0.0.1:8080", "[::1]:8080",
 * "unix:/run/cfhookd/http.sock" ("unix:@name" for an abstract socket).
 * Writes at most n bytes; "fd N" when the socket cannot say. */
void	listen_name(int fd, char *out, size_t n);
/* Raise the soft limit on open files towards `want` (never lowering it,
 * never past the hard limit) so every connection can be accepted. Returns
 * the soft limit in force afterwards. */
unsigned long long listen_nofile(unsigned long long want);

#endif
