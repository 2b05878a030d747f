/* test_secret.c - secret files (trimming, comments, limits, permissions,
 * systemd credentials) and HMAC-SHA256 over a || b. MACs are checked
 * against OpenSSL's one-shot HMAC() over the concatenation. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "check.h"
#include "secret.h"

/* HMAC-SHA256(key, msg) the simple way, for comparison. */
static void
ref_hmac(const char *key, const void *msg, size_t len,
    unsigned char out[SECRET_MAC_LEN])
{
	unsigned int n = 0;

	(void)HMAC(EVP_sha256(), key, (int)strlen(key), msg, len, out, &n);
}

/* Does secret i of s equal `key` (judged by the MAC it makes)? */
static int
secret_is(const struct secrets *s, size_t i, const char *key)
{
	unsigned char a[SECRET_MAC_LEN], b[SECRET_MAC_LEN];

	if (secrets_mac(s, i, "msg", 3, NULL, 0, a) != 0)
		return 0;
	ref_hmac(key, "msg", 3, b);
	return memcmp(a, b, sizeof(a)) == 0;
}

static struct secrets *
parse_ok(const char *text, size_t want)
{
	struct secrets *s = NULL;
	char err[256] = "";

	if (!CHECK_INT(secrets_parse(text, strlen(text), "f", &s, err,
	    sizeof(err)), 0)) {
		fprintf(stderr, "  text \"%s\": %s\n", text, err);
		return NULL;
	}
	CHECK_INT(secrets_count(s), want);
	return s;
}

static void
test_parse_trim_and_comments(void)
{
	struct secrets *s;

	s = parse_ok("only", 1);
	CHECK(s != NULL && secret_is(s, 0, "only"));
	secrets_free(s);
	s = parse_ok("  s1 \r\n\t s2\t\r\n", 2);
	CHECK(s != NULL && secret_is(s, 0, "s1") && secret_is(s, 1, "s2"));
	CHECK(s != NULL && !secret_is(s, 0, " s1 "));
	secrets_free(s);
	s = parse_ok("# comment\n\n   \n  # indented\r\nkey one\n#x\n", 1);
	CHECK(s != NULL && secret_is(s, 0, "key one"));
	secrets_free(s);
	/* '#' inside a secret is part of it. */
	s = parse_ok("ab#cd\n", 1);
	CHECK(s != NULL && secret_is(s, 0, "ab#cd"));
	secrets_free(s);
}

static void
check_parse_fails(const char *text, size_t len, const char *want_err,
    const char *secret_text)
{
	struct secrets *s = NULL;
	char err[256] = "";

	CHECK_INT(secrets_parse(text, len, "/etc/x.secret", &s, err,
	    sizeof(err)), -1);
	CHECK(s == NULL);
	if (!CHECK(strstr(err, want_err) != NULL))
		fprintf(stderr, "  got \"%s\", want \"%s\"\n", err, want_err);
	if (secret_text != NULL)
		CHECK(strstr(err, secret_text) == NULL);
}

/* A UTF-8 byte order mark at the start of the file (Windows editors) is not
 * part of the first secret; one elsewhere is kept (it is not at the start). */
static void
test_parse_bom(void)
{
	struct secrets *s;

	s = parse_ok("\xef\xbb\xbfkey1\nkey2\n", 2);
	if (s != NULL) {
		CHECK(secret_is(s, 0, "key1"));
		CHECK(secret_is(s, 1, "key2"));
		secrets_free(s);
	}
	s = parse_ok("\xef\xbb\xbf# comment\nkey\n", 1);
	if (s != NULL) {
		CHECK(secret_is(s, 0, "key"));
		secrets_free(s);
	}
	s = parse_ok("a\n\xef\xbb\xbf" "b\n", 2);
	if (s != NULL) {
		CHECK(secret_is(s, 1, "\xef\xbb\xbf" "b"));
		secrets_free(s);
	}
}

static void
test_parse_errors(void)
{
	char text[4096];
	size_t i, o = 0;

	check_parse_fails("", 0, "/etc/x.secret: no secret", NULL);
	check_parse_fails("# nothing\n\n \r\n", 14, "no secret", NULL);
	check_parse_fails("good\nzzz\0ret\n", 13, "/etc/x.secret:2: NUL",
	    "zzz");
	for (i = 0; i < 17; i++)
		o += (size_t)snprintf(text + o, sizeof(text) - o,
		    "topsecret%zu\n", i);
	check_parse_fails(text, o, "/etc/x.secret:17: more than 16",
	    "topsecret");
}

static void
test_parse_limits(void)
{
	char *text;
	struct secrets *s = NULL;
	char err[256];
	size_t i, o = 0;

	/* 16 secrets are fine. */
	text = calloc(1, 4096);
	if (!CHECK(text != NULL))
		return;
	for (i = 0; i < SECRET_MAX; i++)
		o += (size_t)snprintf(text + o, 4096 - o, "k%zu\n", i);
	s = parse_ok(text, SECRET_MAX);
	CHECK(s != NULL && secret_is(s, 15, "k15"));
	secrets_free(s);
	free(text);
	/* A line of exactly 1024 bytes is fine; 1025 is not. */
	text = malloc(1100);
	if (!CHECK(text != NULL))
		return;
	memset(text, 'x', 1100);
	text[1024] = '\n';
	s = NULL;
	CHECK_INT(secrets_parse(text, 1025, "f", &s, err, sizeof(err)), 0);
	CHECK(s != NULL && secrets_count(s) == 1);
	secrets_free(s);
	memcpy(text, "a\n", 2);
	text[1024] = 'x';
	text[1027] = '\n';		/* line 2: 1025 bytes */
	check_parse_fails(text, 1028, "/etc/x.secret:2: line longer", "xxxx");
	/* No room for a message: still fails cleanly. */
	s = NULL;
	CHECK_INT(secrets_parse("", 0, "f", &s, NULL, 0), -1);
	free(text);
}

static void
test_mac_over_two_parts(void)
{
	static const char msg[] = "1746427757733{\"data\":{\"x\":1}}";
	unsigned char want[SECRET_MAC_LEN], got[SECRET_MAC_LEN];
	struct secrets *s;
	size_t split, len = sizeof(msg) - 1;

	s = parse_ok("k1\nk2\n", 2);
	if (s == NULL)
		return;
	ref_hmac("k2", msg, len, want);
	for (split = 0; split <= len; split++) {
		memset(got, 0, sizeof(got));
		CHECK_INT(secrets_mac(s, 1, msg, split, msg + split,
		    len - split, got), 0);
		CHECK(memcmp(got, want, sizeof(want)) == 0);
	}
	/* Empty message, NULL pointers with zero length. */
	ref_hmac("k1", "", 0, want);
	CHECK_INT(secrets_mac(s, 0, NULL, 0, NULL, 0, got), 0);
	CHECK(memcmp(got, want, sizeof(want)) == 0);
	/* The other secret gives another MAC. */
	CHECK_INT(secrets_mac(s, 1, NULL, 0, NULL, 0, got), 0);
	CHECK(memcmp(got, want, sizeof(want)) != 0);
	CHECK_INT(secrets_mac(s, 2, msg, len, NULL, 0, got), -1);
	CHECK_INT(secrets_mac(s, (size_t)-1, msg, len, NULL, 0, got), -1);
	secrets_free(s);
}

static void
test_mac_large_body(void)
{
	unsigned char want[SECRET_MAC_LEN], got[SECRET_MAC_LEN];
	struct secrets *s;
	char *body;
	size_t n = 256 * 1024 + 13, i;

	body = malloc(n);
	s = parse_ok("big-secret", 1);
	if (!CHECK(body != NULL) || s == NULL)
		goto out;
	for (i = 0; i < n; i++)
		body[i] = (char)(i * 31 + 7);
	ref_hmac("big-secret", body, n, want);
	CHECK_INT(secrets_mac(s, 0, body, 13, body + 13, n - 13, got), 0);
	CHECK(memcmp(got, want, sizeof(want)) == 0);
out:
	secrets_free(s);
	free(body);
}

static void
test_refcount(void)
{
	struct secrets *s, *r;

	s = parse_ok("a\n", 1);
	if (s == NULL)
		return;
	r = secrets_ref(s);
	CHECK(r == s);
	secrets_free(s);
	/* Still alive through the second reference. */
	CHECK(secret_is(r, 0, "a"));
	secrets_free(r);
	secrets_free(NULL);
	CHECK(secrets_ref(NULL) == NULL);
}

struct worker {
	struct secrets *s;
	int bad;
};

static void *
mac_worker(void *arg)
{
	struct worker *w = arg;
	unsigned char want[2][SECRET_MAC_LEN], got[SECRET_MAC_LEN];
	char msg[64];
	int i, n;

	n = snprintf(msg, sizeof(msg), "1746427757733{\"thread\":%p}", arg);
	ref_hmac("t0", msg, (size_t)n, want[0]);
	ref_hmac("t1", msg, (size_t)n, want[1]);
	for (i = 0; i < 2000; i++) {
		if (secrets_mac(w->s, (size_t)(i % 2), msg, 13, msg + 13,
		    (size_t)n - 13, got) != 0 ||
		    memcmp(got, want[i % 2], sizeof(got)) != 0)
			w->bad++;
		secrets_free(secrets_ref(w->s));
	}
	return NULL;
}

static void
test_threads_share_secrets(void)
{
	struct worker w[4];
	pthread_t t[4];
	struct secrets *s;
	int i, started = 0;

	s = parse_ok("t0\nt1\n", 2);
	if (s == NULL)
		return;
	for (i = 0; i < 4; i++) {
		w[i].s = s;
		w[i].bad = 0;
		if (pthread_create(&t[i], NULL, mac_worker, &w[i]) == 0)
			started++;
	}
	CHECK_INT(started, 4);
	for (i = 0; i < started; i++) {
		(void)pthread_join(t[i], NULL);
		CHECK_INT(w[i].bad, 0);
	}
	secrets_free(s);
}

/* Runs secrets_load() with stderr captured into `log` (NUL-terminated). */
static int
load_capturing(const char *path, struct secrets **ret, char *log,
    size_t loglen)
{
	char name[] = "/tmp/cfhook-secret-log-XXXXXX";
	int fd, saved, rc;
	ssize_t n;

	log[0] = '\0';
	fflush(stderr);
	fd = mkstemp(name);
	saved = dup(2);
	if (fd == -1 || saved == -1)
		return -2;
	(void)unlink(name);
	(void)dup2(fd, 2);
	rc = secrets_load(path, ret);
	fflush(stderr);
	(void)dup2(saved, 2);
	(void)close(saved);
	n = pread(fd, log, loglen - 1, 0);
	log[n > 0 ? n : 0] = '\0';
	(void)close(fd);
	return rc;
}

static int
write_file(const char *path, const char *text, size_t len, mode_t mode)
{
	int fd, rc = -1;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1)
		return -1;
	if (write(fd, text, len) == (ssize_t)len && fchmod(fd, mode) == 0)
		rc = 0;
	(void)close(fd);
	return rc;
}

static void
test_load_files(void)
{
	char dir[] = "/tmp/cfhook-secret-XXXXXX", path[256], log[2048];
	struct secrets *s = NULL;
	char *big;

	if (!CHECK(mkdtemp(dir) != NULL))
		return;
	(void)snprintf(path, sizeof(path), "%s/secret", dir);
	CHECK_INT(write_file(path, "hunter2-new\nhunter2-old\n", 24, 0600), 0);
	CHECK_INT(load_capturing(path, &s, log, sizeof(log)), 0);
	CHECK(s != NULL && secrets_count(s) == 2 && secret_is(s, 1,
	    "hunter2-old"));
	CHECK_STR(log, "");
	secrets_free(s);
	s = NULL;
	/* Readable by others: loads, with one warning naming the file. */
	CHECK_INT(chmod(path, 0644), 0);
	CHECK_INT(load_capturing(path, &s, log, sizeof(log)), 0);
	CHECK(strstr(log, "chmod 600") != NULL && strstr(log, path) != NULL);
	CHECK(strstr(log, "hunter2") == NULL);
	secrets_free(s);
	s = NULL;
	/* A bad line: error with file and line, never the secret. */
	CHECK_INT(write_file(path, "hunter2\nhun\0ter\n", 16, 0600), 0);
	CHECK_INT(load_capturing(path, &s, log, sizeof(log)), -1);
	CHECK(s == NULL);
	CHECK(strstr(log, ":2: ") != NULL && strstr(log, "hun") == NULL);
	/* Too large, missing, a directory. */
	big = malloc(64 * 1024 + 1);
	if (CHECK(big != NULL)) {
		memset(big, 'k', 64 * 1024 + 1);
		CHECK_INT(write_file(path, big, 64 * 1024 + 1, 0600), 0);
		CHECK_INT(load_capturing(path, &s, log, sizeof(log)), -1);
		CHECK(strstr(log, "larger") != NULL);
		free(big);
	}
	(void)unlink(path);
	CHECK_INT(load_capturing(path, &s, log, sizeof(log)), -1);
	CHECK(strstr(log, path) != NULL);
	CHECK_INT(load_capturing(dir, &s, log, sizeof(log)), -1);
	CHECK(s == NULL);
	(void)rmdir(dir);
}

static void
test_load_credentials_directory(void)
{
	char dir[] = "/tmp/cfhook-cred-XXXXXX", path[256], log[2048];
	struct secrets *s = NULL;

	if (!CHECK(mkdtemp(dir) != NULL))
		return;
	(void)snprintf(path, sizeof(path), "%s/cashfree-secret", dir);
	CHECK_INT(write_file(path, "from-systemd\n", 13, 0400), 0);
	CHECK_INT(setenv("CREDENTIALS_DIRECTORY", dir, 1), 0);
	CHECK_INT(load_capturing(NULL, &s, log, sizeof(log)), 0);
	CHECK(s != NULL && secret_is(s, 0, "from-systemd"));
	secrets_free(s);
	s = NULL;
	CHECK_INT(unsetenv("CREDENTIALS_DIRECTORY"), 0);
	CHECK_INT(load_capturing(NULL, &s, log, sizeof(log)), -1);
	CHECK(strstr(log, "no secret configured: set secret_file, or run "
	    "under systemd with LoadCredential=cashfree-secret:") != NULL);
	CHECK_INT(setenv("CREDENTIALS_DIRECTORY", "", 1), 0);
	CHECK_INT(load_capturing(NULL, &s, log, sizeof(log)), -1);
	CHECK(s == NULL);
	(void)unsetenv("CREDENTIALS_DIRECTORY");
	(void)unlink(path);
	(void)rmdir(dir);
}

int
main(void)
{
	RUN(test_parse_trim_and_comments);
	RUN(test_parse_bom);
	RUN(test_parse_errors);
	RUN(test_parse_limits);
	RUN(test_mac_over_two_parts);
	RUN(test_mac_large_body);
	RUN(test_refcount);
	RUN(test_threads_share_secrets);
	RUN(test_load_files);
	RUN(test_load_credentials_directory);
	return check_finish("test_secret");
}
