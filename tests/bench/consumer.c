/* consumer.c - a unix-socket consumer for cfhookd's `forward = unix:PATH`
 * (DESIGN "Forwarding"): one envelope per line in, one "OK" line out per
 * envelope, in order. It answers without looking at the envelope, so what
 * is measured is the daemon's forwarding, not the consumer's work.
 *
 *   consumer [--fast] SOCKET_PATH
 *
 * Default (sequential): one connection at a time; each line is answered by
 * its own write as soon as it is read, like the simplest consumer a
 * merchant would write. --fast: answers every line that arrived in one read
 * with one write. On SIGTERM or SIGINT prints "CONSUMER lines=N
 * connections=N" and exits 0. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define CHUNK		65536
#define ANSWER		"OK\n"
#define ANSWER_LEN	3

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int
write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w == -1 && errno == EINTR && !stop)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Serves one connection until EOF, an error or stop. Returns the lines
 * answered. */
static unsigned long long
serve(int fd, int fast)
{
	static char in[CHUNK], out[CHUNK * ANSWER_LEN];
	unsigned long long lines = 0;
	size_t i, k;
	ssize_t n;

	while (!stop) {
		n = read(fd, in, sizeof(in));
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		k = 0;
		for (i = 0; i < (size_t)n; i++) {
			if (in[i] != '\n')
				continue;
			lines++;
			if (!fast) {
				if (write_all(fd, ANSWER, ANSWER_LEN) == -1)
					return lines;
				continue;
			}
			memcpy(out + k, ANSWER, ANSWER_LEN);
			k += ANSWER_LEN;
		}
		if (k > 0 && write_all(fd, out, k) == -1)
			break;
	}
	return lines;
}

static int
listen_at(const char *path)
{
	struct sockaddr_un sa;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -1;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	(void)unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    listen(fd, 1) == -1) {
		(void)close(fd);
		return -1;
	}
	return fd;
}

int
main(int argc, char **argv)
{
	unsigned long long lines = 0, conns = 0;
	struct sigaction sa;
	struct pollfd p;
	int lfd, fd, fast = 0;

	if (argc == 3 && strcmp(argv[1], "--fast") == 0)
		fast = 1;
	else if (argc != 2) {
		fprintf(stderr, "usage: consumer [--fast] SOCKET_PATH\n");
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;	/* no SA_RESTART: wake blocked calls */
	(void)sigaction(SIGTERM, &sa, NULL);
	(void)sigaction(SIGINT, &sa, NULL);
	(void)signal(SIGPIPE, SIG_IGN);
	lfd = listen_at(argv[argc - 1]);
	if (lfd == -1) {
		fprintf(stderr, "consumer: %s: %s\n", argv[argc - 1],
		    strerror(errno));
		return 2;
	}
	p.fd = lfd;
	p.events = POLLIN;
	while (!stop) {
		if (poll(&p, 1, -1) <= 0)
			continue;
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd == -1)
			continue;
		conns++;
		lines += serve(fd, fast);
		(void)close(fd);
	}
	(void)close(lfd);
	(void)unlink(argv[argc - 1]);
	printf("CONSUMER lines=%llu connections=%llu\n", lines, conns);
	return 0;
}
