/* test_notify.c - notify.c against a real datagram NOTIFY_SOCKET and real
 * sockets placed where systemd puts them (fd 3 onwards). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>

#include "check.h"
#include "notify.h"

static char tmpdir[64];
static char sock_path[96];
static int notify_fd = -1;

static void
clear_env(void)
{
	(void)unsetenv("NOTIFY_SOCKET");
	(void)unsetenv("LISTEN_FDS");
	(void)unsetenv("LISTEN_PID");
	(void)unsetenv("LISTEN_FDNAMES");
	(void)unsetenv("WATCHDOG_USEC");
	(void)unsetenv("WATCHDOG_PID");
}

/* Binds the test's NOTIFY_SOCKET (once) and points the environment at it. */
static int
notify_open(void)
{
	struct sockaddr_un sa;
	struct timeval tv = { 2, 0 };
	int fd;

	if (notify_fd >= 0)
		goto env;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	(void)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1) {
		(void)close(fd);
		return -1;
	}
	notify_fd = fd;
env:
	return setenv("NOTIFY_SOCKET", sock_path, 1);
}

/* Receives one datagram as a string; "" on timeout. */
static void
recv_msg(char *out, size_t cap)
{
	ssize_t n;

	n = recv(notify_fd, out, cap - 1, 0);
	out[n > 0 ? (size_t)n : 0] = '\0';
}

/* Nothing more is queued (a message too many is a bug too). */
static int
queue_empty(void)
{
	char c;

	return recv(notify_fd, &c, 1, MSG_DONTWAIT) == -1 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK);
}

static uint64_t
monotonic_usec(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Moves fd to `target` as systemd would pass it. */
static int
place(int fd, int target)
{
	if (fd == -1)
		return -1;
	if (fd == target)
		return target;
	if (dup2(fd, target) == -1) {
		(void)close(fd);
		return -1;
	}
	(void)close(fd);
	return target;
}

static int
tcp_socket(int do_listen)
{
	struct sockaddr_in sa;
	int fd;

	fd = socket(AF_INET, SOCK_STREAM, 0);	/* no CLOEXEC, like systemd */
	if (fd == -1)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    (do_listen && listen(fd, 8) == -1)) {
		(void)close(fd);
		return -1;
	}
	return fd;
}

static void
set_listen_env(int n, pid_t pid)
{
	char buf[32];

	(void)snprintf(buf, sizeof(buf), "%d", n);
	(void)setenv("LISTEN_FDS", buf, 1);
	(void)snprintf(buf, sizeof(buf), "%ld", (long)pid);
	(void)setenv("LISTEN_PID", buf, 1);
}

static void
test_no_systemd(void)
{
	clear_env();
	CHECK_INT(notify_listen_fd(), -1);
	CHECK_INT(notify_watchdog_interval_ms(), 0);
	/* no NOTIFY_SOCKET: every call is a quiet no-op */
	notify_ready("ready: 0 events today, 0 pending, 0 dead");
	notify_status("x");
	notify_reloading();
	notify_reloaded("x");
	notify_stopping();
	notify_watchdog();
}

static void
test_ready_and_status(void)
{
	char msg[1024];

	clear_env();
	if (!CHECK(notify_open() == 0))
		return;
	notify_ready("ready: 3 events today, 1 pending, 0 dead");
	recv_msg(msg, sizeof(msg));
	CHECK_STR(msg, "READY=1\nSTATUS=ready: 3 events today, 1 pending, "
	    "0 dead");
	notify_status("ready: 4 events today, 0 pending, 0 dead");
	recv_msg(msg, sizeof(msg));
	CHECK_STR(msg, "STATUS=ready: 4 events today, 0 pending, 0 dead");
	notify_ready(NULL);
	recv_msg(msg, sizeof(msg));
	CHECK_STR(msg, "READY=1");
	notify_status(NULL);		/* nothing to say: nothing sent */
	CHECK(queue_empty());
}

static void
test_status_is_one_line(void)
{
	char big[1000];
	char msg[2048];

	clear_env();
	if (!CHECK(notify_open() == 0))
		return;
	/* a newline must not smuggle in another assignment */
	notify_status("bad\nREADY=1\tx\x7f");
	recv_msg(msg, sizeof(msg));
	CHECK_STR(msg, "STATUS=bad READY=1 x ");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	notify_reloaded(big);
	recv_msg(msg, sizeof(msg));
	CHECK(strncmp(msg, "READY=1\nSTATUS=aaa", 18) == 0);
	CHECK(strlen(msg) < 300);
	CHECK(strchr(msg + 8, '\n') == NULL);
	CHECK(queue_empty());
}

static void
test_reloading_has_monotonic_usec(void)
{
	char msg[1024];
	const char *p;
	char *end = NULL;
	uint64_t before, after, stamp;

	clear_env();
	if (!CHECK(notify_open() == 0))
		return;
	before = monotonic_usec();
	notify_reloading();
	after = monotonic_usec();
	recv_msg(msg, sizeof(msg));
	CHECK(strncmp(msg, "RELOADING=1\nMONOTONIC_USEC=", 27) == 0);
	p = strstr(msg, "MONOTONIC_USEC=");
	if (!CHECK(p != NULL))
		return;
	errno = 0;
	stamp = strtoull(p + 15, &end, 10);
	CHECK(errno == 0 && end != p + 15 && *end == '\n');
	CHECK(stamp >= before && stamp <= after);
	CHECK(strstr(msg, "\nSTATUS=") != NULL);
	notify_reloaded("ready: 0 events today, 0 pending, 0 dead");
	recv_msg(msg, sizeof(msg));
	CHECK_STR(msg, "READY=1\nSTATUS=ready: 0 events today, 0 pending, "
	    "0 dead");
}

static void
test_stopping_and_watchdog(void)
{
	char msg[1024];

	clear_env();
	if (!CHECK(notify_open() == 0))
		return;
	notify_stopping();
	recv_msg(msg, sizeof(msg));
	CHECK(strncmp(msg, "STOPPING=1\n", 11) == 0 || strcmp(msg,
	    "STOPPING=1") == 0);
	notify_watchdog();
	recv_msg(msg, sizeof(msg));
	CHECK_STR(msg, "WATCHDOG=1");
	CHECK(queue_empty());
}

static void
test_notify_socket_gone(void)
{
	clear_env();
	/* a NOTIFY_SOCKET nobody listens on: logged, never fatal */
	(void)setenv("NOTIFY_SOCKET", "/nonexistent-cfhookd/notify", 1);
	notify_watchdog();
	notify_watchdog();
	notify_ready("x");
	clear_env();
}

static void
test_watchdog_interval(void)
{
	char pid[32];

	clear_env();
	(void)setenv("WATCHDOG_USEC", "1000000", 1);
	CHECK_INT(notify_watchdog_interval_ms(), 500);
	/* asked again: the environment is kept */
	CHECK_INT(notify_watchdog_interval_ms(), 500);
	(void)setenv("WATCHDOG_USEC", "30000000", 1);
	(void)snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	(void)setenv("WATCHDOG_PID", pid, 1);
	CHECK_INT(notify_watchdog_interval_ms(), 15000);
	/* meant for another process (our parent): not ours to ping */
	(void)snprintf(pid, sizeof(pid), "%ld", (long)getppid());
	(void)setenv("WATCHDOG_PID", pid, 1);
	CHECK_INT(notify_watchdog_interval_ms(), 0);
	(void)unsetenv("WATCHDOG_PID");
	(void)setenv("WATCHDOG_USEC", "1", 1);
	CHECK_INT(notify_watchdog_interval_ms(), 1);
	(void)setenv("WATCHDOG_USEC", "soon", 1);
	CHECK_INT(notify_watchdog_interval_ms(), 0);
	(void)setenv("WATCHDOG_USEC", "0", 1);
	CHECK_INT(notify_watchdog_interval_ms(), 0);
	clear_env();
}

static void
test_listen_fd_tcp(void)
{
	int fd, flags;

	clear_env();
	fd = place(tcp_socket(1), 3);
	if (!CHECK(fd == 3))
		return;
	CHECK((fcntl(3, F_GETFD) & FD_CLOEXEC) == 0);
	set_listen_env(1, getpid());
	CHECK_INT(notify_listen_fd(), 3);
	flags = fcntl(3, F_GETFD);
	CHECK(flags != -1 && (flags & FD_CLOEXEC) != 0);
	/* the variables described this process only: gone for children */
	CHECK(getenv("LISTEN_FDS") == NULL);
	CHECK(getenv("LISTEN_PID") == NULL);
	CHECK_INT(notify_listen_fd(), -1);
	(void)close(3);
}

static void
test_listen_fd_unix(void)
{
	struct sockaddr_un sa;
	int fd;

	clear_env();
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	(void)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/http.sock",
	    tmpdir);
	if (!CHECK(fd != -1 && bind(fd, (struct sockaddr *)&sa,
	    sizeof(sa)) == 0 && listen(fd, 8) == 0))
		return;
	if (!CHECK(place(fd, 3) == 3))
		return;
	set_listen_env(1, getpid());
	CHECK_INT(notify_listen_fd(), 3);
	(void)close(3);
	(void)unlink(sa.sun_path);
}

static void
test_listen_fd_not_listening(void)
{
	int fd;

	clear_env();
	/* bound but never listen()ed: accept() would fail forever */
	if (!CHECK(place(tcp_socket(0), 3) == 3))
		return;
	set_listen_env(1, getpid());
	CHECK_INT(notify_listen_fd(), -2);
	(void)close(3);
	/* a datagram socket (ListenDatagram=) */
	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (!CHECK(place(fd, 3) == 3))
		return;
	set_listen_env(1, getpid());
	CHECK_INT(notify_listen_fd(), -2);
	(void)close(3);
	/* not a socket at all */
	fd = open("/dev/null", O_RDONLY);
	if (!CHECK(place(fd, 3) == 3))
		return;
	set_listen_env(1, getpid());
	CHECK_INT(notify_listen_fd(), -2);
	(void)close(3);
}

static void
test_listen_fd_two(void)
{
	clear_env();
	if (!CHECK(place(tcp_socket(1), 3) == 3 &&
	    place(tcp_socket(1), 4) == 4))
		return;
	set_listen_env(2, getpid());
	CHECK_INT(notify_listen_fd(), -2);
	(void)close(3);
	(void)close(4);
}

static void
test_listen_fd_other_pid(void)
{
	clear_env();
	if (!CHECK(place(tcp_socket(1), 3) == 3))
		return;
	/* LISTEN_PID names another process: the sockets are not ours */
	set_listen_env(1, getppid());
	CHECK_INT(notify_listen_fd(), -1);
	/* garbage in LISTEN_FDS is an error, not "none" */
	set_listen_env(1, getpid());
	(void)setenv("LISTEN_FDS", "x", 1);
	CHECK_INT(notify_listen_fd(), -2);
	(void)close(3);
	clear_env();
}

int
main(void)
{
	(void)snprintf(tmpdir, sizeof(tmpdir), "/tmp/cfhook-notify-XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	(void)snprintf(sock_path, sizeof(sock_path), "%s/notify.sock", tmpdir);
	RUN(test_no_systemd);
	RUN(test_ready_and_status);
	RUN(test_status_is_one_line);
	RUN(test_reloading_has_monotonic_usec);
	RUN(test_stopping_and_watchdog);
	RUN(test_notify_socket_gone);
	RUN(test_watchdog_interval);
	RUN(test_listen_fd_tcp);
	RUN(test_listen_fd_unix);
	RUN(test_listen_fd_not_listening);
	RUN(test_listen_fd_two);
	RUN(test_listen_fd_other_pid);
	if (notify_fd >= 0)
		(void)close(notify_fd);
	(void)unlink(sock_path);
	(void)rmdir(tmpdir);
	return check_finish("test_notify");
}
