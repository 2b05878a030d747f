/* notify.h - systemd integration: sd_notify, socket activation, watchdog.
 * Every call is a no-op when not running under systemd. */
#ifndef CFHOOK_NOTIFY_H
#define CFHOOK_NOTIFY_H

#include <stdint.h>

/* The listening socket systemd passed (sd_listen_fds), or -1 when none.
 * More than one passed socket is an error: logged, returns -2. */
int	notify_listen_fd(void);
/* READY=1 with a STATUS= line. */
void	notify_ready(const char *status);
void	notify_status(const char *status);
void	notify_reloading(void);		/* RELOADING=1 with MONOTONIC_USEC= */
void	notify_reloaded(const char *status);	/* READY=1 after a reload */
void	notify_stopping(void);		/* STOPPING=1 */
/* Watchdog ping interval in ms (half of WATCHDOG_USEC), 0 when disabled. */
int64_t	notify_watchdog_interval_ms(void);
void	notify_watchdog(void);		/* WATCHDOG=1 */

#endif
