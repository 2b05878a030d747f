/* notify.c - systemd integration through libsystemd: the sd_notify protocol
 * (READY, STATUS, RELOADING, STOPPING, WATCHDOG), the listening socket passed
 * by socket activation, and the watchdog interval (DESIGN "systemd and
 * nginx").
 *
 * Every call is a no-op when systemd did not ask for it ($NOTIFY_SOCKET,
 * $LISTEN_FDS, $WATCHDOG_USEC unset). It must not decide anything about the
 * daemon's health: main.c pings the watchdog only while the writer and the
 * forwarder make progress. Any thread may call it; the only shared state is
 * an atomic flag that keeps a broken notify socket from flooding the log. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "notify.h"

/* A STATUS= line is for `systemctl status`: one short line. */
#define STATUS_MAX	256
/* Room for the assignments one message carries around its STATUS=. */
#define MESSAGE_MAX	(STATUS_MAX + 128)

/* 1 after a send failed and was logged; reset by the next success. */
static atomic_int notify_failing;

/* Copies `status` into out (cap bytes) as one line: a newline or another
 * control byte would end the STATUS= assignment and start a new one, so
 * each becomes a space. A longer status is cut. */
static void
status_line(const char *status, char *out, size_t cap)
{
	size_t i;
	unsigned char c;

	for (i = 0; status[i] != '\0' && i + 1 < cap; i++) {
		c = (unsigned char)status[i];
		out[i] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	out[i] = '\0';
}

/* Sends one message. unset_environment is 0: every later call must still
 * find $NOTIFY_SOCKET (hooks get a fresh environment, see forward.c). */
static void
send_state(const char *state)
{
	int r;

	r = sd_notify(0, state);
	if (r < 0) {
		if (atomic_exchange(&notify_failing, 1) == 0)
			log_warning("notify: sd_notify failed: %s, will retry",
			    strerror(-r));
		return;
	}
	if (r > 0 && atomic_exchange(&notify_failing, 0) == 1)
		log_info("notify: sd_notify works again");
}

/* `head` (assignments separated by '\n', may be "") followed by
 * STATUS=status when status is not NULL. */
static void
send_with_status(const char *head, const char *status)
{
	char line[STATUS_MAX];
	char msg[MESSAGE_MAX];
	int n;

	if (status == NULL) {
		send_state(head);
		return;
	}
	status_line(status, line, sizeof(line));
	n = snprintf(msg, sizeof(msg), "%s%sSTATUS=%s", head,
	    head[0] != '\0' ? "\n" : "", line);
	if (n < 0 || (size_t)n >= sizeof(msg)) {
		send_state(head);	/* cannot happen: sizes above */
		return;
	}
	send_state(msg);
}

/* The socket must be something libmicrohttpd can accept() on: a stream
 * socket already listening (a datagram or a connected socket in the .socket
 * unit is a configuration mistake, better stopped at start-up). */
static int
check_listen_fd(int fd)
{
	int r, flags;

	r = sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1);
	if (r < 0) {
		log_error("notify: passed socket %d: %s", fd, strerror(-r));
		return -1;
	}
	if (r == 0) {
		log_error("notify: passed fd %d is not a listening stream "
		    "socket; check ListenStream= in the .socket unit", fd);
		return -1;
	}
	/* Hooks must inherit only stdio (STYLE "Ownership, limits, threads");
	 * systemd passes the socket without FD_CLOEXEC. */
	flags = fcntl(fd, F_GETFD);
	if (flags == -1 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) == -1) {
		log_error("notify: passed socket %d: fcntl: %s", fd,
		    strerror(errno));
		return -1;
	}
	return 0;
}

int
notify_listen_fd(void)
{
	int n;

	/* unset_environment=1: the LISTEN_* variables describe this process
	 * only and must not reach a child. */
	n = sd_listen_fds(1);
	if (n < 0) {
		log_error("notify: $LISTEN_FDS: %s", strerror(-n));
		return -2;
	}
	if (n == 0)
		return -1;
	if (n > 1) {
		log_error("notify: systemd passed %d sockets, expected one; "
		    "keep a single ListenStream= in the .socket unit", n);
		return -2;
	}
	if (check_listen_fd(SD_LISTEN_FDS_START) == -1)
		return -2;
	return SD_LISTEN_FDS_START;
}

void
notify_ready(const char *status)
{
	send_with_status("READY=1", status);
}

void
notify_status(const char *status)
{
	if (status != NULL)
		send_with_status("", status);
}

void
notify_reloading(void)
{
	struct timespec ts;
	char msg[128];
	uint64_t usec;
	int n;

	/* systemd >= 253 (Type=notify-reload) matches RELOADING=1 to the
	 * reload it started by a CLOCK_MONOTONIC timestamp taken after the
	 * signal arrived; older versions ignore the field. */
	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1) {
		send_state("RELOADING=1\nSTATUS=reloading configuration");
		return;
	}
	usec = (uint64_t)ts.tv_sec * UINT64_C(1000000) +
	    (uint64_t)ts.tv_nsec / UINT64_C(1000);
	n = snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%" PRIu64
	    "\nSTATUS=reloading configuration", usec);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return;			/* cannot happen: 20 digits fit */
	send_state(msg);
}

void
notify_reloaded(const char *status)
{
	send_with_status("READY=1", status);
}

void
notify_stopping(void)
{
	send_state("STOPPING=1\nSTATUS=stopping: answering requests in "
	    "flight");
}

int64_t
notify_watchdog_interval_ms(void)
{
	uint64_t usec = 0;
	int64_t ms;

	/* unset_environment=0: the interval is asked for again (tests, a
	 * reload) and WATCHDOG_PID already keeps children from pinging. */
	if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
		return 0;
	/* Half of WatchdogSec= (sd_watchdog_enabled(3)): one late ping is
	 * not yet a kill. At least 1 ms so "enabled" never reads as 0. */
	ms = (int64_t)(usec / 2 / 1000);
	return ms > 0 ? ms : 1;
}

void
notify_watchdog(void)
{
	send_state("WATCHDOG=1");
}
