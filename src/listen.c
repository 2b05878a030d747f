/* listen.c - open the listening socket of the `listen` config key, name
 * it, and make room for the connections it will accept.
 *
 * Only socket set-up lives here; libmicrohttpd takes the fd over. A unix
 * socket is bound under a temporary name, chmod'ed, then rename()d over the
 * final path, so a restart never leaves a window without a socket file and
 * never unlinks a path that belongs to a running server or is not a socket.
 * The open-file limit is raised only as far as asked, so hooks inherit no
 * more than the daemon needs. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "listen.h"
#include "log.h"

#define LISTEN_BACKLOG	511

static int
listen_tcp(const struct config *cfg)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd = -1, one = 1;

	memset(&ss, 0, sizeof(ss));
	if (strchr(cfg->listen_host, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)cfg->listen_port);
		if (inet_pton(AF_INET6, cfg->listen_host, &s6->sin6_addr) != 1)
			goto bad;
		sl = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)cfg->listen_port);
		if (inet_pton(AF_INET, cfg->listen_host, &s4->sin_addr) != 1)
			goto bad;
		sl = sizeof(*s4);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1)
		goto fail;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
		    sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) == -1 ||
	    listen(fd, LISTEN_BACKLOG) == -1)
		goto fail;
	return fd;
fail:
	log_error("listen '%s': %s", cfg->listen, strerror(errno));
	if (fd != -1)
		(void)close(fd);
	return -1;
bad:
	log_error("listen '%s': not a numeric address", cfg->listen);
	return -1;
}

/* 0 when nothing is at path or it is a stale socket file; -1 (logged) when
 * the path must not be replaced. */
static int
unix_path_free(const char *path, const struct sockaddr_un *sun)
{
	struct stat st;
	int fd, rc;

	if (lstat(path, &st) == -1) {
		if (errno == ENOENT)
			return 0;
		log_error("listen '%s': %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		log_error("listen '%s': exists and is not a socket; refusing to "
		    "replace it", path);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		log_error("listen '%s': socket: %s", path, strerror(errno));
		return -1;
	}
	rc = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
	(void)close(fd);
	if (rc == 0) {
		log_error("listen '%s': another server is answering on it", path);
		return -1;
	}
	return 0;
}

static int
listen_unix(const struct config *cfg, unsigned long long *ino)
{
	struct stat st;
	struct sockaddr_un sun, tmp;
	int fd = -1, n;

	memset(&sun, 0, sizeof(sun));
	memset(&tmp, 0, sizeof(tmp));
	sun.sun_family = tmp.sun_family = AF_UNIX;
	n = snprintf(sun.sun_path, sizeof(sun.sun_path), "%s",
	    cfg->listen_path);
	if (n < 0 || (size_t)n >= sizeof(sun.sun_path) ||
	    snprintf(tmp.sun_path, sizeof(tmp.sun_path), "%s.%ld.tmp",
	    cfg->listen_path, (long)getpid()) >= (int)sizeof(tmp.sun_path)) {
		log_error("listen '%s': socket path too long", cfg->listen);
		return -1;
	}
	if (unix_path_free(cfg->listen_path, &sun) == -1)
		return -1;
	(void)unlink(tmp.sun_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1)
		goto fail;
	if (bind(fd, (struct sockaddr *)&tmp, sizeof(tmp)) == -1)
		goto fail;
	if (chmod(tmp.sun_path, cfg->listen_mode) == -1 ||
	    listen(fd, LISTEN_BACKLOG) == -1 ||
	    rename(tmp.sun_path, sun.sun_path) == -1) {
		(void)unlink(tmp.sun_path);
		goto fail;
	}
	*ino = lstat(sun.sun_path, &st) == 0 ? (unsigned long long)st.st_ino : 0;
	return fd;
fail:
	log_error("listen '%s': %s", cfg->listen, strerror(errno));
	if (fd != -1)
		(void)close(fd);
	return -1;
}

int
listen_open(const struct config *cfg, unsigned long long *ino)
{
	*ino = 0;
	if (cfg->listen_kind == LISTEN_UNIX)
		return listen_unix(cfg, ino);
	return listen_tcp(cfg);
}

void
listen_unlink(const struct config *cfg, unsigned long long ino)
{
	struct stat st;

	if (cfg->listen_kind != LISTEN_UNIX || ino == 0)
		return;
	if (lstat(cfg->listen_path, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    (unsigned long long)st.st_ino == ino)
		(void)unlink(cfg->listen_path);
}

void
listen_name(int fd, char *out, size_t n)
{
	struct sockaddr_storage ss;
	const struct sockaddr_un *sun = (const struct sockaddr_un *)&ss;
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN];
	size_t plen;

	memset(&ss, 0, sizeof(ss));
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == -1)
		ss.ss_family = AF_UNSPEC;
	if (ss.ss_family == AF_INET &&
	    inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host)) != NULL) {
		(void)snprintf(out, n, "%s:%u", host, ntohs(s4->sin_port));
	} else if (ss.ss_family == AF_INET6 &&
	    inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host)) != NULL) {
		(void)snprintf(out, n, "[%s]:%u", host, ntohs(s6->sin6_port));
	} else if (ss.ss_family == AF_UNIX &&
	    sl > offsetof(struct sockaddr_un, sun_path)) {
		/* An abstract name starts with a NUL and is not terminated. */
		plen = sl - offsetof(struct sockaddr_un, sun_path);
		if (sun->sun_path[0] == '\0')
			(void)snprintf(out, n, "unix:@%.*s", (int)plen - 1,
			    sun->sun_path + 1);
		else
			(void)snprintf(out, n, "unix:%.*s", (int)plen,
			    sun->sun_path);
	} else {
		(void)snprintf(out, n, "fd %d", fd);
	}
}

unsigned long long
listen_nofile(unsigned long long want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return 0;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ||
		    rl.rlim_max > want ? (rlim_t)want : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	return rl.rlim_cur == RLIM_INFINITY ? want :
	    (unsigned long long)rl.rlim_cur;
}
