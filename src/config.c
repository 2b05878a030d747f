/* config.c - the `key = value` file as one immutable struct config
 * (DESIGN "Configuration", STYLE "Config and logging").
 *
 * One table row per key says its type, bounds, default and field. Every bad
 * line is logged as "FILE:LINE: message" before the load fails, so an operator
 * fixes them all in one go; `cfhookd --check` runs this same code. Relative
 * paths are resolved against the file's directory and stored absolute. It
 * must not open sockets or the files it names: it only says where they are. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "num.h"
#include "store.h"

/* A config file is a few hundred bytes; more is a wrong path. */
#define CONFIG_MAX_BYTES	(1024 * 1024)

/* Longest unix socket path bind()/connect() accept, without the NUL. */
#define SUN_PATH_MAX	(sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1)

enum ktype {
	K_UINT,		/* unsigned in [min, max] */
	K_SIZE,		/* size_t in [min, max] */
	K_PATH,		/* char *, resolved against the file's directory */
	K_DATABASE,	/* K_PATH, or a postgresql:// URI kept as written */
	K_LISTEN,
	K_MODE,
	K_WEBHOOK_PATH,
	K_FORWARD,
	K_DURABILITY,
	K_SWITCH,	/* int, "on" = 1 or "off" = 0 */
	K_ENV,		/* char **, NAME=value pairs */
	K_LOG_LEVEL
};

struct key {
	const char	*name;
	enum ktype	 type;
	uint64_t	 min, max;
	const char	*unit;		/* "seconds", "bytes", NULL: a count */
	const char	*def;		/* NULL: stays unset */
	size_t		 off;		/* its field in struct config */
	int		 restart;	/* a reload keeps the running value */
};

#define F(m)	offsetof(struct config, m)

/* `restart`: what is set up once at start (the listener, the database, the
 * HTTP limits and verification rules copied into the HTTP threads) stays
 * as running until a restart; a reload says so for each such key that
 * changed. Secrets, forwarding and the log level apply at once. */
static const struct key keys[] = {
	{ "listen", K_LISTEN, 0, 0, NULL, "127.0.0.1:8080", F(listen), 1 },
	{ "listen_mode", K_MODE, 0, 0, NULL, "0660", F(listen_mode), 1 },
	{ "webhook_path", K_WEBHOOK_PATH, 0, 0, NULL, "/webhooks/cashfree",
	    F(webhook_path), 1 },
	{ "secret_file", K_PATH, 0, 0, NULL, NULL, F(secret_file), 0 },
	{ "database", K_DATABASE, 0, 0, NULL, "/var/lib/cfhookd/events.db",
	    F(database), 1 },
	{ "tolerance", K_UINT, 0, 86400, "seconds", "0", F(tolerance_s), 1 },
	{ "max_body", K_SIZE, 1024, 67108864, "bytes", "262144", F(max_body),
	    1 },
	{ "max_connections", K_UINT, 1, 100000, NULL, "4096",
	    F(max_connections), 1 },
	{ "idle_timeout", K_UINT, 1, 3600, "seconds", "10", F(idle_timeout_s),
	    1 },
	{ "header_timeout", K_UINT, 1, 3600, "seconds", "5",
	    F(header_timeout_s), 1 },
	{ "request_timeout", K_UINT, 1, 3600, "seconds", "30",
	    F(request_timeout_s), 1 },
	{ "forward", K_FORWARD, 0, 0, NULL, "none", F(forward_path), 0 },
	{ "forward_timeout", K_UINT, 1, 86400, "seconds", "30",
	    F(forward_timeout_s), 0 },
	{ "forward_concurrency", K_UINT, 1, 64, NULL, "4",
	    F(forward_concurrency), 0 },
	{ "forward_max_attempts", K_UINT, 1, 1000, NULL, "12",
	    F(forward_max_attempts), 0 },
	{ "forward_backoff", K_UINT, 1, 3600, "seconds", "2",
	    F(forward_backoff_s), 0 },
	{ "hook_env", K_ENV, 0, 0, NULL, NULL, F(hook_env), 0 },
	{ "durability", K_DURABILITY, 0, 0, NULL, "full", F(durability), 1 },
	/* Spec section 11: the form signature field scheme is weak, so it is
	 * the operator's choice, off unless asked for. */
	{ "form_field_signature", K_SWITCH, 0, 0, NULL, "off",
	    F(form_field_signature), 1 },
	{ "log_level", K_LOG_LEVEL, 0, 0, NULL, "info", F(log_level), 0 },
};

#define NKEYS	(sizeof(keys) / sizeof(keys[0]))

/* One parse: the config being built, where relative paths start, and the
 * message of the last refused value. */
struct ctx {
	struct config	*c;
	char		*dir;		/* absolute directory of the file */
	char		 err[1024];
};

static int
fail(struct ctx *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
fail(struct ctx *x, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(x->err, sizeof(x->err), fmt, ap);
	va_end(ap);
	return -1;
}

static int
nomem(struct ctx *x)
{
	return fail(x, "out of memory");
}

/* "a/b.conf" -> "$PWD/a", "/etc/c.conf" -> "/etc", "c.conf" -> "$PWD". */
static char *
config_dir(const char *path)
{
	char cwd[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t n = slash == NULL ? 0 : (size_t)(slash - path);
	char *d;
	int len;

	if (path[0] == '/')
		return n == 0 ? strdup("/") : strndup(path, n);
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return NULL;
	len = snprintf(NULL, 0, "%s/%.*s", cwd, (int)n, path);
	if (len < 0)
		return NULL;
	d = malloc((size_t)len + 1);
	if (d == NULL)
		return NULL;
	if (n == 0)
		(void)snprintf(d, (size_t)len + 1, "%s", cwd);
	else
		(void)snprintf(d, (size_t)len + 1, "%s/%.*s", cwd, (int)n,
		    path);
	return d;
}

/* Lexically clean an absolute path in place: repeated '/' and "/./" go,
 * "/x/.." removes x (as filepath.Clean does: symlinks are not consulted, so
 * logs name the path the operator meant, not "conf/../var"). */
static void
clean_path(char *p)
{
	char *out = p, *in = p;

	while (*in != '\0') {
		if (in[0] == '/') {
			while (in[1] == '/')
				in++;
			if (in[1] == '.' && (in[2] == '/' || in[2] == '\0')) {
				in += 2;
				continue;
			}
			if (in[1] == '.' && in[2] == '.' &&
			    (in[3] == '/' || in[3] == '\0')) {
				while (out > p && *--out != '/')
					continue;
				in += 3;
				continue;
			}
		}
		*out++ = *in++;
	}
	if (out == p)
		*out++ = '/';
	*out = '\0';
}

/* The absolute form of a path from the file: "x" and "./x" are beside the
 * config file. Returns a new string or -1 (message in x->err). */
static int
resolve(struct ctx *x, const char *key, const char *v, char **ret)
{
	const char *sep;
	size_t need;
	char *p;

	while (v[0] == '.' && v[1] == '/')
		v += 2;
	if (v[0] == '\0')
		return fail(x, "%s: expected a file path, got nothing", key);
	if (v[0] == '/') {
		*ret = strdup(v);
		if (*ret == NULL)
			return nomem(x);
		clean_path(*ret);
		return 0;
	}
	if (x->dir == NULL)
		return fail(x, "%s: cannot resolve relative path '%s': %s",
		    key, v, strerror(errno));
	sep = strcmp(x->dir, "/") == 0 ? "" : "/";
	need = strlen(x->dir) + strlen(sep) + strlen(v) + 1;
	p = malloc(need);
	if (p == NULL)
		return nomem(x);
	(void)snprintf(p, need, "%s%s%s", x->dir, sep, v);
	clean_path(p);
	*ret = p;
	return 0;
}

static int
set_number(struct ctx *x, const struct key *k, const char *v)
{
	uint64_t u;
	char *field = (char *)x->c + k->off;

	if (num_parse_u64(v, k->min, k->max, &u) == -1)
		return fail(x, "%s: expected a number%s%s from %llu to %llu, "
		    "got '%s'", k->name, k->unit != NULL ? " of " : "",
		    k->unit != NULL ? k->unit : "",
		    (unsigned long long)k->min, (unsigned long long)k->max, v);
	if (k->type == K_SIZE)
		*(size_t *)(void *)field = (size_t)u;
	else
		*(unsigned *)(void *)field = (unsigned)u;
	return 0;
}

static int
set_path(struct ctx *x, const struct key *k, const char *v)
{
	char **field = (char **)(void *)((char *)x->c + k->off);

	return resolve(x, k->name, v, field);
}

/* An SQLite file (a path, resolved) or a PostgreSQL URI (store.h), kept
 * as written: it may hold a password, so an error shows it masked. */
static int
set_database(struct ctx *x, const struct key *k, const char *v)
{
	char **field = (char **)(void *)((char *)x->c + k->off);
	char shown[STORE_NAME_MAX];

	if (store_is_uri(v)) {
		*field = strdup(v);
		return *field == NULL ? nomem(x) : 0;
	}
	if (strstr(v, "://") != NULL)
		return fail(x, "%s: expected a file path or a postgresql:// "
		    "URI, got '%s'", k->name, store_display_name(v, shown,
		    sizeof(shown)));
	return resolve(x, k->name, v, field);
}

/* A unix socket path: resolved, and short enough for sockaddr_un. */
static int
unix_path(struct ctx *x, const char *key, const char *v, char **ret)
{
	char *p = NULL;

	if (resolve(x, key, v, &p) == -1)
		return -1;
	if (strlen(p) > SUN_PATH_MAX) {
		free(p);
		return fail(x, "%s: unix socket path longer than %zu bytes, "
		    "got '%s'", key, SUN_PATH_MAX, v);
	}
	*ret = p;
	return 0;
}

/* "IPv4:port" or "[IPv6]:port"; the host must be numeric so start-up never
 * waits on DNS and the address is exactly what the operator wrote. */
static int
tcp_listen(struct config *c, const char *v)
{
	unsigned char addr[sizeof(struct in6_addr)];
	const char *colon, *host = v;
	size_t hlen;
	uint64_t port;
	int af = AF_INET;

	if (v[0] == '[') {
		colon = strstr(v, "]:");
		if (colon == NULL)
			return -1;
		host = v + 1;
		hlen = (size_t)(colon - host);
		colon++;
		af = AF_INET6;
	} else {
		colon = strrchr(v, ':');
		if (colon == NULL)
			return -1;
		hlen = (size_t)(colon - v);
	}
	if (num_parse_u64(colon + 1, 1, 65535, &port) == -1)
		return -1;
	c->listen_host = strndup(host, hlen);
	if (c->listen_host == NULL)
		return -2;
	if (inet_pton(af, c->listen_host, addr) != 1)
		return -1;
	c->listen_kind = LISTEN_TCP;
	c->listen_port = (unsigned)port;
	return 0;
}

static int
set_listen(struct ctx *x, const struct key *k, const char *v)
{
	int r;

	x->c->listen = strdup(v);
	if (x->c->listen == NULL)
		return nomem(x);
	if (strncmp(v, "unix:", 5) == 0) {
		x->c->listen_kind = LISTEN_UNIX;
		return unix_path(x, k->name, v + 5, &x->c->listen_path);
	}
	r = tcp_listen(x->c, v);
	if (r == -2)
		return nomem(x);
	if (r == -1)
		return fail(x, "%s: expected IPv4:port, [IPv6]:port with a "
		    "numeric address and a port from 1 to 65535, or "
		    "unix:/path, got '%s'", k->name, v);
	return 0;
}

static int
set_mode(struct ctx *x, const struct key *k, const char *v)
{
	if (num_parse_mode(v, &x->c->listen_mode) == -1)
		return fail(x, "%s: expected an octal file mode such as 0660, "
		    "got '%s'", k->name, v);
	return 0;
}

/* The routes of http.c: GET /healthz and /metrics must stay reachable, and
 * a query or blank can never match a request path. */
static int
set_webhook_path(struct ctx *x, const struct key *k, const char *v)
{
	size_t i;
	int ok = v[0] == '/' && strcmp(v, "/healthz") != 0 &&
	    strcmp(v, "/metrics") != 0;

	for (i = 0; ok && v[i] != '\0'; i++)
		ok = (unsigned char)v[i] > 0x20 && v[i] != 0x7f &&
		    v[i] != '?' && v[i] != '#';
	if (!ok)
		return fail(x, "%s: expected a path starting with '/' without "
		    "spaces, '?' or '#', other than /healthz and /metrics, "
		    "got '%s'", k->name, v);
	x->c->webhook_path = strdup(v);
	return x->c->webhook_path == NULL ? nomem(x) : 0;
}

static int
set_forward(struct ctx *x, const struct key *k, const char *v)
{
	if (strcmp(v, "none") == 0) {
		x->c->forward_kind = FORWARD_NONE;
		return 0;
	}
	if (strncmp(v, "hook:", 5) == 0 && v[5] != '\0') {
		x->c->forward_kind = FORWARD_HOOK;
		return resolve(x, k->name, v + 5, &x->c->forward_path);
	}
	if (strncmp(v, "unix:", 5) == 0 && v[5] != '\0') {
		x->c->forward_kind = FORWARD_UNIX;
		return unix_path(x, k->name, v + 5, &x->c->forward_path);
	}
	return fail(x, "%s: expected none, hook:/path/to/executable or "
	    "unix:/path/to/socket, got '%s'", k->name, v);
}

static int
set_durability(struct ctx *x, const struct key *k, const char *v)
{
	if (strcmp(v, "full") == 0)
		x->c->durability = DURABILITY_FULL;
	else if (strcmp(v, "normal") == 0)
		x->c->durability = DURABILITY_NORMAL;
	else
		return fail(x, "%s: expected full or normal, got '%s'",
		    k->name, v);
	return 0;
}

static int
set_switch(struct ctx *x, const struct key *k, const char *v)
{
	int *field = (int *)(void *)((char *)x->c + k->off);

	if (strcmp(v, "on") == 0)
		*field = 1;
	else if (strcmp(v, "off") == 0)
		*field = 0;
	else
		return fail(x, "%s: expected on or off, got '%s'", k->name, v);
	return 0;
}

static int
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* A hook_env name: [A-Za-z_][A-Za-z0-9_]*, and neither PATH nor CFHOOK_*,
 * which are cfhookd's own (DESIGN "Forwarding"). */
static int
env_name_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
		return 0;
	for (i = 0; i < n; i++) {
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' &&
		    s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	}
	return !(n == 4 && memcmp(s, "PATH", 4) == 0) &&
	    !(n >= 7 && memcmp(s, "CFHOOK_", 7) == 0);
}

/* Whether "NAME=" (n bytes of name) is already among the first i pairs. */
static int
env_seen(char *const *env, size_t i, const char *name, size_t n)
{
	while (i-- > 0) {
		if (strncmp(env[i], name, n) == 0 && env[i][n] == '=')
			return 1;
	}
	return 0;
}

/* hook_env = NAME=value ...: blank-separated pairs added to the hook's
 * environment, so no wrapper script is needed for an API URL or a token
 * (a value cannot hold a blank or a control byte). */
static int
set_env(struct ctx *x, const struct key *k, const char *v)
{
	char **env = NULL;
	const char *p = v, *end, *eq;
	size_t n = 0;
	int rc = -1;

	while (*p != '\0') {
		if (is_blank(*p)) {
			p++;
			continue;
		}
		for (end = p; *end != '\0' && !is_blank(*end); end++) {
			if ((unsigned char)*end < 0x20 || *end == 0x7f) {
				(void)fail(x, "%s: a control byte in a value",
				    k->name);
				goto out;
			}
		}
		eq = memchr(p, '=', (size_t)(end - p));
		if (eq == NULL || !env_name_ok(p, (size_t)(eq - p)) ||
		    env_seen(env, n, p, (size_t)(eq - p))) {
			(void)fail(x, "%s: expected NAME=value pairs with "
			    "distinct names ([A-Za-z_][A-Za-z0-9_]*, not PATH "
			    "or CFHOOK_*), got '%.*s'", k->name,
			    (int)(end - p), p);
			goto out;
		}
		if (n >= CONFIG_HOOK_ENV_MAX) {
			(void)fail(x, "%s: more than %d pairs", k->name,
			    CONFIG_HOOK_ENV_MAX);
			goto out;
		}
		if (n == 0 && (env = calloc(CONFIG_HOOK_ENV_MAX + 1,
		    sizeof(*env))) == NULL) {
			(void)nomem(x);
			goto out;
		}
		env[n] = strndup(p, (size_t)(end - p));
		if (env[n++] == NULL) {
			(void)nomem(x);
			goto out;
		}
		p = end;
	}
	config_env_free(x->c->hook_env);
	x->c->hook_env = env;
	env = NULL;
	rc = 0;
out:
	config_env_free(env);
	return rc;
}

static int
set_log_level(struct ctx *x, const struct key *k, const char *v)
{
	int l = log_level_parse(v);

	if (l == -1)
		return fail(x, "%s: expected error, warning, info or debug, "
		    "got '%s'", k->name, v);
	x->c->log_level = l;
	return 0;
}

static int
set_value(struct ctx *x, const struct key *k, const char *v)
{
	switch (k->type) {
	case K_UINT:
	case K_SIZE:
		return set_number(x, k, v);
	case K_PATH:
		return set_path(x, k, v);
	case K_DATABASE:
		return set_database(x, k, v);
	case K_LISTEN:
		return set_listen(x, k, v);
	case K_MODE:
		return set_mode(x, k, v);
	case K_WEBHOOK_PATH:
		return set_webhook_path(x, k, v);
	case K_FORWARD:
		return set_forward(x, k, v);
	case K_DURABILITY:
		return set_durability(x, k, v);
	case K_SWITCH:
		return set_switch(x, k, v);
	case K_ENV:
		return set_env(x, k, v);
	case K_LOG_LEVEL:
		break;
	}
	return set_log_level(x, k, v);
}

/* [*s, *e) without blanks at either end. */
static void
trim(const char **s, const char **e)
{
	while (*s < *e && is_blank(**s))
		(*s)++;
	while (*e > *s && is_blank((*e)[-1]))
		(*e)--;
}

static const struct key *
find_key(const char *name, size_t n)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (strlen(keys[i].name) == n &&
		    memcmp(keys[i].name, name, n) == 0)
			return &keys[i];
	return NULL;
}

/* One line; `seen` holds the line that set each key (0: not yet).
 * Returns 0, or -1 with the message in x->err. */
static int
parse_line(struct ctx *x, const char *s, const char *e, int lineno,
    int seen[NKEYS])
{
	const char *eq, *ks, *ke, *vs, *ve;
	const struct key *k;
	char *value;
	int rc;

	trim(&s, &e);
	if (s == e || s[0] == '#')
		return 0;
	if (memchr(s, '\0', (size_t)(e - s)) != NULL)
		return fail(x, "line holds a NUL byte");
	eq = memchr(s, '=', (size_t)(e - s));
	if (eq == NULL)
		return fail(x, "expected 'key = value'");
	ks = s;
	ke = eq;
	vs = eq + 1;
	ve = e;
	trim(&ks, &ke);
	trim(&vs, &ve);
	if (ks == ke)
		return fail(x, "expected 'key = value', the key is missing");
	k = find_key(ks, (size_t)(ke - ks));
	if (k == NULL)
		return fail(x, "unknown key '%.*s'", (int)(ke - ks), ks);
	if (seen[k - keys] != 0)
		return fail(x, "duplicate key '%s' (first set on line %d)",
		    k->name, seen[k - keys]);
	seen[k - keys] = lineno;
	value = strndup(vs, (size_t)(ve - vs));
	if (value == NULL)
		return nomem(x);
	rc = set_value(x, k, value);
	free(value);
	return rc;
}

/* Built-in defaults go through the same setters as the file's values. */
static int
apply_defaults(struct ctx *x, const char *path, const int seen[NKEYS])
{
	size_t i;
	int rc = 0;

	for (i = 0; i < NKEYS; i++) {
		if (seen[i] != 0 || keys[i].def == NULL)
			continue;
		if (set_value(x, &keys[i], keys[i].def) == -1) {
			log_error("%s: default of %s: %s", path, keys[i].name,
			    x->err);
			rc = -1;
		}
	}
	return rc;
}

int
config_parse(const char *text, size_t len, const char *path,
    struct config **ret)
{
	struct ctx x;
	int seen[NKEYS] = { 0 };
	const char *s = text, *end = text + len, *nl;
	int lineno = 0, errors = 0, rc = -1;

	memset(&x, 0, sizeof(x));
	x.c = calloc(1, sizeof(*x.c));
	if (x.c != NULL)
		x.c->path = strdup(path);
	if (x.c == NULL || x.c->path == NULL) {
		log_error("%s: out of memory", path);
		goto out;
	}
	x.dir = config_dir(path);	/* NULL: reported if a path needs it */
	/* An editor's invisible UTF-8 byte order mark is not part of the
	 * first key. */
	if (len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0)
		s += 3;
	while (s < end) {
		nl = memchr(s, '\n', (size_t)(end - s));
		if (nl == NULL)
			nl = end;
		lineno++;
		if (parse_line(&x, s, nl, lineno, seen) == -1) {
			log_error("%s:%d: %s", path, lineno, x.err);
			errors++;
		}
		s = nl + 1;
	}
	if (errors > 0 || apply_defaults(&x, path, seen) == -1)
		goto out;
	*ret = x.c;
	x.c = NULL;
	rc = 0;
out:
	config_free(x.c);
	free(x.dir);
	return rc;
}

/* Reads the whole file into text (at most CONFIG_MAX_BYTES). */
static int
read_fd(int fd, const char *path, char *text, size_t *len)
{
	size_t n = 0;
	ssize_t r;

	while (n <= CONFIG_MAX_BYTES) {
		r = read(fd, text + n, CONFIG_MAX_BYTES + 1 - n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			log_error("config '%s': %s", path, strerror(errno));
			return -1;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > CONFIG_MAX_BYTES) {
		log_error("config '%s': larger than %d bytes", path,
		    CONFIG_MAX_BYTES);
		return -1;
	}
	text[n] = '\0';
	*len = n;
	return 0;
}

/* The whole file, NUL-terminated, or NULL (logged). */
static char *
read_file(const char *path, size_t *len)
{
	struct stat st;
	char *text = NULL, *res = NULL;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd == -1) {
		log_error("config '%s': %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		log_error("config '%s': not a regular file", path);
		goto out;
	}
	text = malloc(CONFIG_MAX_BYTES + 1);
	if (text == NULL) {
		log_error("config '%s': out of memory", path);
		goto out;
	}
	if (read_fd(fd, path, text, len) == -1)
		goto out;
	res = text;
	text = NULL;
out:
	free(text);
	if (fd != -1)
		(void)close(fd);
	return res;
}

int
config_load(const char *path, struct config **ret)
{
	char *text;
	size_t len = 0;
	int rc;

	text = read_file(path, &len);
	if (text == NULL)
		return -1;
	rc = config_parse(text, len, path, ret);
	free(text);
	return rc;
}

void
config_free(struct config *c)
{
	if (c == NULL)
		return;
	free(c->path);
	free(c->listen);
	free(c->listen_host);
	free(c->listen_path);
	free(c->webhook_path);
	free(c->secret_file);
	free(c->database);
	free(c->forward_path);
	config_env_free(c->hook_env);
	free(c);
}

void
config_env_free(char **env)
{
	size_t i;

	if (env == NULL)
		return;
	for (i = 0; env[i] != NULL; i++)
		free(env[i]);
	free(env);
}

/* For log lines only. The struct has no field for the name, so it is built
 * per thread: valid until this thread calls again. */
const char *
config_forward_name(const struct config *c)
{
	static _Thread_local char name[PATH_MAX + 8];
	const char *scheme;

	if (c == NULL || c->forward_kind == FORWARD_NONE ||
	    c->forward_path == NULL)
		return "none";
	scheme = c->forward_kind == FORWARD_HOOK ? "hook" : "unix";
	(void)snprintf(name, sizeof(name), "%s:%s", scheme, c->forward_path);
	return name;
}

static int
env_differs(char *const *a, char *const *b)
{
	size_t i;

	if (a == NULL || b == NULL)
		return a != b;
	for (i = 0; a[i] != NULL && b[i] != NULL; i++) {
		if (strcmp(a[i], b[i]) != 0)
			return 1;
	}
	return a[i] != b[i];
}

/* Whether key k holds another value in a than in b. */
static int
key_differs(const struct key *k, const struct config *a,
    const struct config *b)
{
	const char *pa = (const char *)a + k->off;
	const char *pb = (const char *)b + k->off;
	const char *sa, *sb;

	switch (k->type) {
	case K_UINT:
	case K_MODE:
		return *(const unsigned *)(const void *)pa !=
		    *(const unsigned *)(const void *)pb;
	case K_SIZE:
		return *(const size_t *)(const void *)pa !=
		    *(const size_t *)(const void *)pb;
	case K_SWITCH:
	case K_LOG_LEVEL:
		return *(const int *)(const void *)pa !=
		    *(const int *)(const void *)pb;
	case K_ENV:
		return env_differs(a->hook_env, b->hook_env);
	case K_DURABILITY:
		return a->durability != b->durability;
	case K_FORWARD:
		if (a->forward_kind != b->forward_kind)
			return 1;
		break;
	case K_PATH:
	case K_DATABASE:
	case K_LISTEN:
	case K_WEBHOOK_PATH:
		break;
	}
	sa = *(char *const *)(const void *)pa;
	sb = *(char *const *)(const void *)pb;
	if (sa == NULL || sb == NULL)
		return sa != sb;
	return strcmp(sa, sb) != 0;
}

size_t
config_restart_changes(const struct config *run, const struct config *cfg,
    char *out, size_t n)
{
	size_t i, count = 0, len = 0;
	int w;

	if (n > 0)
		out[0] = '\0';
	for (i = 0; i < NKEYS; i++) {
		if (!keys[i].restart || !key_differs(&keys[i], run, cfg))
			continue;
		count++;
		if (len >= n)
			continue;
		/* whole names only: one that does not fit is left out */
		w = snprintf(out + len, n - len, "%s%s", len > 0 ? ", " : "",
		    keys[i].name);
		if (w > 0 && (size_t)w < n - len)
			len += (size_t)w;
		else
			out[len] = '\0';
	}
	return count;
}
