/* config.h - the `key = value` configuration file (DESIGN "Configuration").
 *
 * One immutable struct config per load; SIGHUP loads a new one. Relative paths
 * in the file are resolved against the directory of the file. */
#ifndef CFHOOK_CONFIG_H
#define CFHOOK_CONFIG_H

#include "attr.h"

#include <stddef.h>

enum listen_kind {
	LISTEN_TCP,
	LISTEN_UNIX
};

enum forward_kind {
	FORWARD_NONE,
	FORWARD_HOOK,
	FORWARD_UNIX
};

enum durability {
	DURABILITY_FULL,	/* synchronous=FULL: fsync every commit */
	DURABILITY_NORMAL
};

struct config {
	char	*path;			/* the file it was read from */
	char	*listen;		/* as written [127.0.0.1:8080] */
	enum listen_kind listen_kind;
	char	*listen_host;		/* TCP: "127.0.0.1", "::1" (no brackets) */
	unsigned listen_port;		/* TCP: 1..65535 */
	char	*listen_path;		/* UNIX: absolute socket path */
	unsigned listen_mode;		/* UNIX: socket file mode [0660] */
	char	*webhook_path;		/* [/webhooks/cashfree], starts with '/' */
	char	*secret_file;		/* NULL: $CREDENTIALS_DIRECTORY/cashfree-secret */
	char	*database;		/* [/var/lib/cfhookd/events.db] */
	unsigned tolerance_s;		/* [0] = off */
	size_t	 max_body;		/* [262144] */
	unsigned max_connections;	/* [4096] */
	unsigned idle_timeout_s;	/* [10] */
	unsigned header_timeout_s;	/* [5] */
	unsigned request_timeout_s;	/* [30] */
	enum forward_kind forward_kind;	/* [none] */
	char	*forward_path;		/* HOOK/UNIX: absolute path */
	unsigned forward_timeout_s;	/* [30] */
	unsigned forward_concurrency;	/* [4] */
	unsigned forward_max_attempts;	/* [12] */
	unsigned forward_backoff_s;	/* [2] */
	enum durability durability;	/* [full] */
	char	**hook_env;		/* NULL, or "NAME=value" strings and a
					 * NULL [none] */
	int	 form_field_signature;	/* [0]: forms need the x-webhook-*
					 * headers; 1: their `signature` field
					 * alone also proves them (weak) */
	int	 log_level;		/* LOG_* of log.h [info] */
};

/* Parse text read from `path`. Every problem is logged as
 * "PATH:LINE: message" (all of them, not just the first). Returns 0 and a
 * new config in *ret, or -1. */
int	config_parse(const char *text, size_t len, const char *path,
	    struct config **ret) MUST_CHECK;
/* Read `path` and parse it. Returns 0 / -1 (logged). */
int	config_load(const char *path, struct config **ret) MUST_CHECK;
/* NULL-safe. */
void	config_free(struct config *);
/* The keys a reload cannot apply (marked in config.c's key table) whose
 * value in cfg differs from the running one: their names, comma-separated,
 * in out (truncated to n); returns how many. */
size_t	config_restart_changes(const struct config *run,
	    const struct config *cfg, char *out, size_t n);
/* Most hook_env pairs. */
#define CONFIG_HOOK_ENV_MAX	32
/* Frees a NULL-terminated array of strings like hook_env. NULL-safe. */
void	config_env_free(char **env);
/* "hook:/x", "unix:/x" or "none" for logs. Borrowed. */
const char *config_forward_name(const struct config *);

#endif
