/* consumer.c - a unix-socket consumer for cfhookd's `forward = unix:PATH`
 * (DESIGN "Forwarding"): one envelope per line in, one "OK" line out per
 * envelope, in order. It answers without looking at the envelope, so what
 * is measured is the daemon's forwarding, not the consumer's work.
 *
 *   consumer [--fast] SOCKET_PATH
 *
 * Default (sequential): one connection at a time, the next one accepted
 * only when it closes (others wait in the listen backlog, as with the
 * simplest consumer a merchant would write); each line is answered by its
 * own write as soon as it is read. --fast: every connection at once (poll),
 * and every line that arrived in one read answered by one write. On SIGTERM
 * or SIGINT prints "CONSUMER lines=N connections=N" and exits 0. */
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
#define BACKLOG		128	/* what listen() gets in most languages */
#define FAST_CONNS	64
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

/* One read from fd, every complete line in it answered: by a write each,
 * or (fast) by one write for all. Adds to *lines; -1 at EOF or an error. */
static int
answer_read(int fd, int fast, unsigned long long *lines)
{
	static char in[CHUNK], out[CHUNK * ANSWER_LEN];
	size_t i, k = 0;
	ssize_t n;

	do
		n = read(fd, in, sizeof(in));
	while (n == -1 && errno == EINTR && !stop);
	if (n <= 0)
		return -1;
	for (i = 0; i < (size_t)n; i++) {
		if (in[i] != '\n')
			continue;
		++*lines;
		if (fast) {
			memcpy(out + k, ANSWER, ANSWER_LEN);
			k += ANSWER_LEN;
		} else if (write_all(fd, ANSWER, ANSWER_LEN) == -1) {
			return -1;
		}
	}
	return k > 0 ? write_all(fd, out, k) : 0;
}

/* Sequential: accept one connection, serve it until it closes, repeat. */
static void
serve_one_by_one(int lfd, unsigned long long *lines,
    unsigned long long *conns)
{
	int fd;

	while (!stop) {
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd == -1)
			continue;
		++*conns;
		while (!stop && answer_read(fd, 0, lines) == 0)
			;
		(void)close(fd);
	}
}

/* Fast: every connection at once. */
static void
serve_all(int lfd, unsigned long long *lines, unsigned long long *conns)
{
	struct pollfd p[FAST_CONNS + 1];
	nfds_t n = 1, i;
	int fd;

	p[0].fd = lfd;
	p[0].events = POLLIN;
	while (!stop) {
		if (poll(p, n, -1) <= 0)
			continue;
		for (i = n - 1; i >= 1; i--) {
			if (p[i].revents == 0 ||
			    answer_read(p[i].fd, 1, lines) == 0)
				continue;
			(void)close(p[i].fd);
			p[i] = p[--n];
		}
		if ((p[0].revents & POLLIN) && n <= FAST_CONNS) {
			fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			if (fd == -1)
				continue;
			++*conns;
			p[n].fd = fd;
			p[n].events = POLLIN;
			p[n++].revents = 0;
		}
	}
	for (i = 1; i < n; i++)
		(void)close(p[i].fd);
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
	    listen(fd, BACKLOG) == -1) {
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
	int lfd, fast = 0;

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
	if (fast)
		serve_all(lfd, &lines, &conns);
	else
		serve_one_by_one(lfd, &lines, &conns);
	(void)close(lfd);
	(void)unlink(argv[argc - 1]);
	printf("CONSUMER lines=%llu connections=%llu\n", lines, conns);
	return 0;
}
