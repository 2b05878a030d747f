/* test_config.c - the config file: defaults, every key good and bad, the
 * "FILE:LINE: message" reports, comments, relative paths, config_load. */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "log.h"

#define LOG_MAX	(64 * 1024)

static char log_buf[LOG_MAX + 1];

/* Runs config_parse (config_load when text is NULL) with stderr in a temp
 * file; what it logged lands in log_buf. */
static int
parse_n(const char *text, size_t len, const char *path, struct config **c)
{
	char tmp[] = "/tmp/test_config.XXXXXX";
	int fd, saved, rc;
	ssize_t r = 1;
	size_t n = 0;

	fd = mkstemp(tmp);
	if (fd == -1)
		exit(2);
	(void)unlink(tmp);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	if (saved == -1 || dup2(fd, STDERR_FILENO) == -1)
		exit(2);
	*c = NULL;
	if (text == NULL)
		rc = config_load(path, c);
	else
		rc = config_parse(text, len, path, c);
	(void)dup2(saved, STDERR_FILENO);
	(void)close(saved);
	(void)lseek(fd, 0, SEEK_SET);
	while (n < LOG_MAX && r > 0) {
		r = read(fd, log_buf + n, LOG_MAX - n);
		if (r > 0)
			n += (size_t)r;
	}
	log_buf[n] = '\0';
	(void)close(fd);
	return rc;
}

static int
parse_logged(const char *text, const char *path, struct config **c)
{
	return parse_n(text, text != NULL ? strlen(text) : 0, path, c);
}

static void
test_defaults(void)
{
	struct config *c;

	if (!CHECK(parse_logged("", "/etc/cfhookd/cfhookd.conf", &c) == 0))
		return;
	CHECK_STR(log_buf, "");
	CHECK_STR(c->path, "/etc/cfhookd/cfhookd.conf");
	CHECK_STR(c->listen, "127.0.0.1:8080");
	CHECK_INT(c->listen_kind, LISTEN_TCP);
	CHECK_STR(c->listen_host, "127.0.0.1");
	CHECK_INT(c->listen_port, 8080);
	CHECK_STR(c->listen_path, NULL);
	CHECK_INT(c->listen_mode, 0660);
	CHECK_STR(c->webhook_path, "/webhooks/cashfree");
	CHECK_STR(c->secret_file, NULL);
	CHECK_STR(c->database, "/var/lib/cfhookd/events.db");
	CHECK_INT(c->tolerance_s, 0);
	CHECK_INT(c->max_body, 262144);
	CHECK_INT(c->max_connections, 4096);
	CHECK_INT(c->idle_timeout_s, 10);
	CHECK_INT(c->header_timeout_s, 5);
	CHECK_INT(c->request_timeout_s, 30);
	CHECK_INT(c->forward_kind, FORWARD_NONE);
	CHECK_STR(c->forward_path, NULL);
	CHECK_STR(config_forward_name(c), "none");
	CHECK_INT(c->forward_timeout_s, 30);
	CHECK_INT(c->forward_concurrency, 4);
	CHECK_INT(c->forward_max_attempts, 12);
	CHECK_INT(c->forward_backoff_s, 2);
	CHECK_INT(c->durability, DURABILITY_FULL);
	CHECK_INT(c->form_field_signature, 0);
	CHECK_INT(c->log_level, LOG_LVL_INFO);
	config_free(c);
}

static void
test_every_key_good(void)
{
	struct config *c;
	const char *text =
	    "listen = 0.0.0.0:1\n"
	    "listen_mode = 0600\n"
	    "webhook_path = /hooks/cf-1\n"
	    "secret_file = /etc/cfhookd/secret\n"
	    "database = /srv/db/events.db\n"
	    "tolerance = 86400\n"
	    "max_body = 67108864\n"
	    "max_connections = 100000\n"
	    "idle_timeout = 3600\n"
	    "header_timeout = 3600\n"
	    "request_timeout = 1\n"
	    "forward = hook:/usr/local/bin/fulfil\n"
	    "forward_timeout = 86400\n"
	    "forward_concurrency = 64\n"
	    "forward_max_attempts = 1000\n"
	    "forward_backoff = 3600\n"
	    "durability = normal\n"
	    "form_field_signature = on\n"
	    "log_level = debug\n";

	if (!CHECK(parse_logged(text, "/etc/c.conf", &c) == 0))
		return;
	CHECK_STR(log_buf, "");
	CHECK_STR(c->listen, "0.0.0.0:1");
	CHECK_STR(c->listen_host, "0.0.0.0");
	CHECK_INT(c->listen_port, 1);
	CHECK_INT(c->listen_mode, 0600);
	CHECK_STR(c->webhook_path, "/hooks/cf-1");
	CHECK_STR(c->secret_file, "/etc/cfhookd/secret");
	CHECK_STR(c->database, "/srv/db/events.db");
	CHECK_INT(c->tolerance_s, 86400);
	CHECK_INT(c->max_body, 67108864);
	CHECK_INT(c->max_connections, 100000);
	CHECK_INT(c->idle_timeout_s, 3600);
	CHECK_INT(c->header_timeout_s, 3600);
	CHECK_INT(c->request_timeout_s, 1);
	CHECK_INT(c->forward_kind, FORWARD_HOOK);
	CHECK_STR(c->forward_path, "/usr/local/bin/fulfil");
	CHECK_STR(config_forward_name(c), "hook:/usr/local/bin/fulfil");
	CHECK_INT(c->forward_timeout_s, 86400);
	CHECK_INT(c->forward_concurrency, 64);
	CHECK_INT(c->forward_max_attempts, 1000);
	CHECK_INT(c->forward_backoff_s, 3600);
	CHECK_INT(c->durability, DURABILITY_NORMAL);
	CHECK_INT(c->form_field_signature, 1);
	CHECK_INT(c->log_level, LOG_LVL_DEBUG);
	config_free(c);
}

static void
test_lower_bounds_and_other_forms(void)
{
	struct config *c;
	const char *text =
	    "tolerance = 0\nmax_body = 1024\nmax_connections = 1\n"
	    "idle_timeout = 1\nrequest_timeout = 3600\nforward_timeout = 1\n"
	    "header_timeout = 1\n"
	    "forward_concurrency = 1\nforward_max_attempts = 1\n"
	    "forward_backoff = 1\ndurability = full\nlog_level = error\n"
	    "forward = unix:/run/shop/events.sock\nlisten = [::1]:65535\n";

	if (!CHECK(parse_logged(text, "/etc/c.conf", &c) == 0))
		return;
	CHECK_INT(c->max_body, 1024);
	CHECK_INT(c->max_connections, 1);
	CHECK_INT(c->header_timeout_s, 1);
	CHECK_INT(c->forward_kind, FORWARD_UNIX);
	CHECK_STR(c->forward_path, "/run/shop/events.sock");
	CHECK_STR(config_forward_name(c), "unix:/run/shop/events.sock");
	CHECK_INT(c->listen_kind, LISTEN_TCP);
	CHECK_STR(c->listen, "[::1]:65535");
	CHECK_STR(c->listen_host, "::1");
	CHECK_INT(c->listen_port, 65535);
	CHECK_INT(c->log_level, LOG_LVL_ERROR);
	config_free(c);
}

static void
test_unix_listen(void)
{
	struct config *c;

	if (!CHECK(parse_logged("listen = unix:/run/cfhookd/http.sock\n"
	    "listen_mode = 0666\n", "/etc/c.conf", &c) == 0))
		return;
	CHECK_INT(c->listen_kind, LISTEN_UNIX);
	CHECK_STR(c->listen, "unix:/run/cfhookd/http.sock");
	CHECK_STR(c->listen_path, "/run/cfhookd/http.sock");
	CHECK_INT(c->listen_mode, 0666);
	config_free(c);
}

/* Each line alone must fail with "/etc/c.conf:1: " + the message. */
static void
test_every_key_bad(void)
{
	static const struct {
		const char *line;
		const char *msg;
	} cases[] = {
		{ "listen = 127.0.0.1", "listen: expected IPv4:port" },
		{ "listen = 127.0.0.1:0", "listen: expected" },
		{ "listen = 127.0.0.1:65536", "listen: expected" },
		{ "listen = localhost:8080", "listen: expected" },
		{ "listen = ::1:8080", "listen: expected" },
		{ "listen = [::1]", "listen: expected" },
		{ "listen = [127.0.0.1]:80", "listen: expected" },
		{ "listen = 1.2.3.4:80x", "listen: expected" },
		{ "listen = unix:", "listen: expected a file path" },
		{ "listen_mode = 0668", "listen_mode: expected an octal" },
		{ "listen_mode = 17777", "listen_mode: expected an octal" },
		{ "webhook_path = hooks", "webhook_path: expected a path" },
		{ "webhook_path = /a b", "webhook_path: expected a path" },
		{ "webhook_path = /a?b=1", "webhook_path: expected a path" },
		{ "webhook_path = /healthz", "webhook_path: expected a path" },
		{ "webhook_path = /metrics", "webhook_path: expected a path" },
		{ "secret_file =", "secret_file: expected a file path" },
		{ "database = ./", "database: expected a file path" },
		{ "tolerance = 86401", "tolerance: expected a number of "
		    "seconds from 0 to 86400, got '86401'" },
		{ "tolerance = -1", "tolerance: expected a number" },
		{ "max_body = abc", "max_body: expected a number of bytes "
		    "from 1024 to 67108864, got 'abc'" },
		{ "max_body = 1023", "max_body: expected" },
		{ "max_body = 67108865", "max_body: expected" },
		{ "max_connections = 0", "max_connections: expected a number "
		    "from 1 to 100000, got '0'" },
		{ "max_connections = 100001", "max_connections: expected" },
		{ "idle_timeout = 0", "idle_timeout: expected a number of "
		    "seconds from 1 to 3600" },
		{ "header_timeout = 0", "header_timeout: expected a number of "
		    "seconds from 1 to 3600" },
		{ "header_timeout = 3601", "header_timeout: expected" },
		{ "request_timeout = 3601", "request_timeout: expected" },
		{ "request_timeout = 10s", "request_timeout: expected" },
		{ "forward = hook:", "forward: expected none, hook:" },
		{ "forward = unix:", "forward: expected none" },
		{ "forward = http://x", "forward: expected none" },
		{ "forward = None", "forward: expected none" },
		{ "forward_timeout = 0", "forward_timeout: expected" },
		{ "forward_timeout = 86401", "forward_timeout: expected" },
		{ "forward_concurrency = 65", "forward_concurrency: expected a "
		    "number from 1 to 64" },
		{ "forward_max_attempts = 0", "forward_max_attempts: exp" },
		{ "forward_max_attempts = 1001", "forward_max_attempts: exp" },
		{ "forward_backoff = 0", "forward_backoff: expected" },
		{ "forward_backoff = +2", "forward_backoff: expected" },
		{ "durability = fsync", "durability: expected full or normal, "
		    "got 'fsync'" },
		{ "form_field_signature = yes", "form_field_signature: "
		    "expected on or off, got 'yes'" },
		{ "form_field_signature = ON", "form_field_signature: exp" },
		{ "log_level = warn", "log_level: expected error, warning, "
		    "info or debug, got 'warn'" },
		{ "foo = 1", "unknown key 'foo'" },
		{ "max body = 1", "unknown key 'max body'" },
		{ "listen 127.0.0.1:80", "expected 'key = value'" },
		{ "= 5", "expected 'key = value'" },
	};
	char text[256], want[256];
	struct config *c;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		(void)snprintf(text, sizeof(text), "%s\n", cases[i].line);
		(void)snprintf(want, sizeof(want), "<3>/etc/c.conf:1: %s",
		    cases[i].msg);
		if (!CHECK(parse_logged(text, "/etc/c.conf", &c) == -1))
			config_free(c);
		if (!CHECK(strncmp(log_buf, want, strlen(want)) == 0))
			fprintf(stderr, "  line '%s' logged '%s'\n",
			    cases[i].line, log_buf);
	}
}

static void
test_unix_path_too_long(void)
{
	char text[512], path[300];
	struct config *c;

	memset(path, 'p', sizeof(path));
	path[0] = '/';
	path[200] = '\0';
	(void)snprintf(text, sizeof(text), "forward = unix:%s\n", path);
	CHECK(parse_logged(text, "/etc/c.conf", &c) == -1);
	CHECK(strstr(log_buf, "/etc/c.conf:1: forward: unix socket path "
	    "longer than 107 bytes") != NULL);
	(void)snprintf(text, sizeof(text), "listen = unix:%s\n", path);
	CHECK(parse_logged(text, "/etc/c.conf", &c) == -1);
	CHECK(strstr(log_buf, "/etc/c.conf:1: listen: unix socket") != NULL);
	(void)snprintf(text, sizeof(text), "forward = hook:%s\n", path);
	if (CHECK(parse_logged(text, "/etc/c.conf", &c) == 0))
		config_free(c);		/* hooks have no such limit */
}

static void
test_every_error_reported(void)
{
	struct config *c;

	CHECK(parse_logged("# cfhookd\nlisten = 127.0.0.1:8080\nbogus\n"
	    "max_body = 1\n\nlisten = [::1]:80\nlog_level = info\nfoo=bar",
	    "/x/c.conf", &c) == -1);
	CHECK_STR(log_buf,
	    "<3>/x/c.conf:3: expected 'key = value'\n"
	    "<3>/x/c.conf:4: max_body: expected a number of bytes from 1024 "
	    "to 67108864, got '1'\n"
	    "<3>/x/c.conf:6: duplicate key 'listen' (first set on line 2)\n"
	    "<3>/x/c.conf:8: unknown key 'foo'\n");
}

static void
test_comments_and_blanks(void)
{
	struct config *c;
	const char *text =
	    "# a comment = with an equals sign\n"
	    "   \t# indented comment\n"
	    "\n"
	    "   \t  \n"
	    "\t max_body\t=\t 2048 \r\n"
	    "database=/var/db#1/events.db   \n"
	    "secret_file = /etc/s # not a comment\n"
	    "webhook_path=/a=b\n";

	if (!CHECK(parse_logged(text, "/etc/c.conf", &c) == 0)) {
		fprintf(stderr, "  log: %s\n", log_buf);
		return;
	}
	CHECK_INT(c->max_body, 2048);
	CHECK_STR(c->database, "/var/db#1/events.db");
	CHECK_STR(c->secret_file, "/etc/s # not a comment");
	CHECK_STR(c->webhook_path, "/a=b");
	config_free(c);
}

/* An editor's UTF-8 byte order mark before the first key is not part of
 * it; the line numbers stay those of the file. */
static void
test_byte_order_mark(void)
{
	struct config *c;

	if (!CHECK(parse_logged("\xef\xbb\xbfmax_body = 4096\nlog_level = "
	    "debug\n", "/etc/c.conf", &c) == 0)) {
		fprintf(stderr, "  log: %s\n", log_buf);
		return;
	}
	CHECK_INT(c->max_body, 4096);
	CHECK_INT(c->log_level, LOG_LVL_DEBUG);
	config_free(c);
	CHECK(parse_logged("\xef\xbb\xbf\nbogus = 1\n", "/x/c.conf", &c)
	    == -1);
	CHECK_STR(log_buf, "<3>/x/c.conf:2: unknown key 'bogus'\n");
}

static void
test_relative_paths(void)
{
	struct config *c;
	char cwd[PATH_MAX], want[PATH_MAX + 64];
	const char *text =
	    "database = events.db\n"
	    "secret_file = ./keys/secret\n"
	    "forward = hook:bin/fulfil\n"
	    "listen = unix:./run/http.sock\n";

	if (CHECK(parse_logged(text, "/srv/cf/cfhookd.conf", &c) == 0)) {
		CHECK_STR(c->database, "/srv/cf/events.db");
		CHECK_STR(c->secret_file, "/srv/cf/keys/secret");
		CHECK_STR(c->forward_path, "/srv/cf/bin/fulfil");
		CHECK_STR(c->listen_path, "/srv/cf/run/http.sock");
		config_free(c);
	}
	if (CHECK(parse_logged("database = ../var/events.db\n"
	    "secret_file = /etc//cf/./a/../secret\nforward = hook:../../../x\n",
	    "/srv/cf/conf/cfhookd.conf", &c) == 0)) {
		CHECK_STR(c->database, "/srv/cf/var/events.db");
		CHECK_STR(c->secret_file, "/etc/cf/secret");
		CHECK_STR(c->forward_path, "/x");
		config_free(c);
	}
	if (CHECK(parse_logged("database = ./x.db\nforward = unix:s.sock\n",
	    "/c.conf", &c) == 0)) {
		CHECK_STR(c->database, "/x.db");
		CHECK_STR(c->forward_path, "/s.sock");
		config_free(c);
	}
	if (!CHECK(getcwd(cwd, sizeof(cwd)) != NULL))
		return;
	if (CHECK(parse_logged("database = x.db\n", "conf/dev.conf",
	    &c) == 0)) {
		(void)snprintf(want, sizeof(want), "%s/conf/x.db", cwd);
		CHECK_STR(c->database, want);
		config_free(c);
	}
	if (CHECK(parse_logged("database = x.db\n", "dev.conf", &c) == 0)) {
		(void)snprintf(want, sizeof(want), "%s/x.db", cwd);
		CHECK_STR(c->database, want);
		config_free(c);
	}
}

static void
write_file(const char *path, const char *s, size_t n)
{
	FILE *fp = fopen(path, "we");

	if (fp == NULL)
		exit(2);
	CHECK(fwrite(s, 1, n, fp) == n);
	CHECK(fclose(fp) == 0);
}

static void
test_load(void)
{
	char dir[] = "/tmp/test_config.XXXXXX", path[128], want[256];
	struct config *c;
	char *big;

	if (!CHECK(mkdtemp(dir) != NULL))
		return;
	(void)snprintf(path, sizeof(path), "%s/missing.conf", dir);
	CHECK(parse_logged(NULL, path, &c) == -1);
	(void)snprintf(want, sizeof(want),
	    "<3>config '%s': No such file or directory\n", path);
	CHECK_STR(log_buf, want);

	(void)snprintf(path, sizeof(path), "%s/cfhookd.conf", dir);
	write_file(path, "database = e.db\nmax_body = 4096\n", 31);
	if (CHECK(parse_logged(NULL, path, &c) == 0)) {
		(void)snprintf(want, sizeof(want), "%s/e.db", dir);
		CHECK_STR(c->database, want);
		CHECK_INT(c->max_body, 4096);
		config_free(c);
	}

	write_file(path, "max_body = 1\n", 13);
	CHECK(parse_logged(NULL, path, &c) == -1);
	(void)snprintf(want, sizeof(want), "<3>%s:1: max_body:", path);
	CHECK(strncmp(log_buf, want, strlen(want)) == 0);

	big = malloc(2 * 1024 * 1024);
	if (CHECK(big != NULL)) {
		memset(big, '#', 2 * 1024 * 1024);
		write_file(path, big, 2 * 1024 * 1024);
		CHECK(parse_logged(NULL, path, &c) == -1);
		CHECK(strstr(log_buf, "larger than") != NULL);
		free(big);
	}
	CHECK(parse_logged(NULL, dir, &c) == -1);	/* a directory */
	CHECK(strstr(log_buf, "not a regular file") != NULL);
	(void)unlink(path);
	(void)rmdir(dir);
}

static void
test_nul_byte_line(void)
{
	struct config *c;
	const char text[] = "max_body = 2048\nlog_level = in\0fo\n";

	CHECK(parse_n(text, sizeof(text) - 1, "/c", &c) == -1);
	CHECK_STR(log_buf, "<3>/c:2: line holds a NUL byte\n");
}

static void
test_free_null(void)
{
	config_free(NULL);
	CHECK_STR(config_forward_name(NULL), "none");
}

/* A reload names exactly the keys it cannot apply that changed; the
 * knowledge is in config.c's table. */
static void
test_restart_changes(void)
{
	struct config *a = NULL, *b = NULL;
	char list[256];

	if (!CHECK(parse_logged("listen = 127.0.0.1:9000\n", "/a.conf",
	    &a) == 0))
		return;
	if (!CHECK(parse_logged("listen = 127.0.0.1:9001\nlisten_mode = "
	    "0600\ntolerance = 300\nheader_timeout = 2\n"
	    "form_field_signature = on\ndatabase = /x/e.db\n"
	    "durability = normal\nforward = hook:/bin/true\n"
	    "forward_timeout = 5\nlog_level = debug\nsecret_file = /s\n",
	    "/b.conf", &b) == 0))
		goto out;
	CHECK_INT(config_restart_changes(a, b, list, sizeof(list)), 7);
	CHECK_STR(list, "listen, listen_mode, database, tolerance, "
	    "header_timeout, durability, form_field_signature");
	CHECK_INT(config_restart_changes(a, a, list, sizeof(list)), 0);
	CHECK_STR(list, "");
	/* a short buffer keeps whole names only, and the count */
	CHECK_INT(config_restart_changes(a, b, list, 16), 7);
	CHECK_STR(list, "listen");
out:
	config_free(a);
	config_free(b);
}

/* hook_env: blank-separated NAME=value pairs for the hook (DESIGN
 * "Configuration"); PATH and CFHOOK_* stay cfhookd's. */
static void
test_hook_env(void)
{
	static const struct {
		const char *line;
		const char *err;	/* NULL: accepted */
	} bad[] = {
		{ "hook_env = SHOP_URL", "hook_env: expected NAME=value" },
		{ "hook_env = =x", "hook_env: expected NAME=value" },
		{ "hook_env = 1A=x", "hook_env: expected NAME=value" },
		{ "hook_env = A-B=x", "hook_env: expected NAME=value" },
		{ "hook_env = PATH=/tmp", "hook_env: expected NAME=value" },
		{ "hook_env = CFHOOK_AMOUNT=1", "hook_env: expected NAME=value" },
		{ "hook_env = A=1 A=2", "hook_env: expected NAME=value" },
		{ "hook_env = A=\x01", "hook_env: a control byte" },
	};
	struct config *c;
	char text[128];
	size_t i;

	if (CHECK(parse_logged("hook_env = SHOP_URL=https://shop.example/api"
	    "?a=b  TOKEN_FILE=/etc/shop/token\tEMPTY=\n", "/c.conf",
	    &c) == 0)) {
		CHECK_STR(c->hook_env[0], "SHOP_URL=https://shop.example/api?a=b");
		CHECK_STR(c->hook_env[1], "TOKEN_FILE=/etc/shop/token");
		CHECK_STR(c->hook_env[2], "EMPTY=");
		CHECK(c->hook_env[3] == NULL);
		config_free(c);
	}
	if (CHECK(parse_logged("", "/c.conf", &c) == 0)) {
		CHECK(c->hook_env == NULL);
		config_free(c);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		(void)snprintf(text, sizeof(text), "%s\n", bad[i].line);
		c = NULL;
		if (!CHECK(parse_logged(text, "/c.conf", &c) == -1))
			config_free(c);
		if (!CHECK(strstr(log_buf, bad[i].err) != NULL))
			fprintf(stderr, "  %s: %s\n", bad[i].line, log_buf);
	}
}

int
main(void)
{
	RUN(test_defaults);
	RUN(test_every_key_good);
	RUN(test_lower_bounds_and_other_forms);
	RUN(test_unix_listen);
	RUN(test_every_key_bad);
	RUN(test_unix_path_too_long);
	RUN(test_every_error_reported);
	RUN(test_comments_and_blanks);
	RUN(test_byte_order_mark);
	RUN(test_relative_paths);
	RUN(test_load);
	RUN(test_nul_byte_line);
	RUN(test_free_null);
	RUN(test_restart_changes);
	RUN(test_hook_env);
	return check_finish("test_config");
}
