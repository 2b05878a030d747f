/* secret.c - the accepted Cashfree secrets (rotation) and HMAC-SHA256 with
 * them.
 *
 * Key bytes never leave this file and are never logged or quoted in a
 * message: errors name the file and line only. Every copy is wiped with
 * OPENSSL_cleanse() before it is freed. Only secrets_load() does I/O and
 * logs; parsing and MACs are pure. A `struct secrets` is immutable after
 * parsing and shared between threads by reference count (SIGHUP swaps in a
 * new one while requests still hold the old).
 *
 * Speed: each secret keeps an EVP_MAC_CTX already keyed (HMAC's inner and
 * outer pads computed once); a MAC duplicates it, feeds a then b (no copy of
 * a 256 KiB body into a new buffer) and finishes. Duplicating is read-only on
 * the shared context, so concurrent callers are safe. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "log.h"
#include "secret.h"

#define SECRET_LINE_MAX	1024		/* bytes per line (secret.h) */
#define SECRET_FILE_MAX	(64 * 1024)	/* a secret file is a few lines */
#define SECRET_CRED	"cashfree-secret"

/* parse_line() spells these limits out in its messages. */
_Static_assert(SECRET_MAX == 16, "update \"more than 16 secrets\"");
_Static_assert(SECRET_LINE_MAX == 1024, "update \"longer than 1024\"");

struct secret_key {
	unsigned char	*bytes;
	size_t		 len;
	EVP_MAC_CTX	*ctx;		/* keyed; duplicated per MAC */
};

struct secrets {
	atomic_uint		 refs;
	EVP_MAC			*mac;
	size_t			 n;
	struct secret_key	 keys[SECRET_MAX];
};

static void
destroy(struct secrets *s)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		EVP_MAC_CTX_free(s->keys[i].ctx);
		if (s->keys[i].bytes != NULL) {
			OPENSSL_cleanse(s->keys[i].bytes, s->keys[i].len);
			free(s->keys[i].bytes);
		}
	}
	EVP_MAC_free(s->mac);
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}

/* Copy the key and build its keyed HMAC-SHA256 context. */
static int
add_key(struct secrets *s, const char *key, size_t len)
{
	struct secret_key *k = &s->keys[s->n];
	OSSL_PARAM params[2];

	k->bytes = malloc(len);
	if (k->bytes == NULL)
		return -1;
	memcpy(k->bytes, key, len);
	k->len = len;
	s->n++;			/* from here destroy() cleans it up */
	k->ctx = EVP_MAC_CTX_new(s->mac);
	if (k->ctx == NULL)
		return -1;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_init(k->ctx, k->bytes, k->len, params) != 1)
		return -1;
	return 0;
}

static void
set_err(char *err, size_t errlen, const char *origin, size_t line,
    const char *msg)
{
	if (err == NULL || errlen == 0)
		return;
	if (line > 0)
		(void)snprintf(err, errlen, "%s:%zu: %s", origin, line, msg);
	else
		(void)snprintf(err, errlen, "%s: %s", origin, msg);
}

static int
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* One line (without its '\n'): trim, skip blank and '#' lines, add the
 * rest. Returns 0, or -1 with *why set. */
static int
parse_line(struct secrets *s, const char *p, size_t n, const char **why)
{
	if (n > SECRET_LINE_MAX) {
		*why = "line longer than 1024 bytes";
		return -1;
	}
	if (memchr(p, '\0', n) != NULL) {
		*why = "NUL byte in line";
		return -1;
	}
	while (n > 0 && is_blank(p[0])) {
		p++;
		n--;
	}
	while (n > 0 && is_blank(p[n - 1]))
		n--;
	if (n == 0 || p[0] == '#')
		return 0;
	if (s->n == SECRET_MAX) {
		*why = "more than 16 secrets";
		return -1;
	}
	if (add_key(s, p, n) == -1) {
		*why = "out of memory or HMAC-SHA256 unavailable";
		return -1;
	}
	return 0;
}

int
secrets_parse(const char *text, size_t len, const char *origin,
    struct secrets **ret, char *err, size_t errlen)
{
	struct secrets *s = NULL;
	const char *why = NULL, *nl;
	size_t pos = 0, line = 0, n;
	int rc = -1;

	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		set_err(err, errlen, origin, 0, "out of memory");
		goto out;
	}
	atomic_init(&s->refs, 1);
	s->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (s->mac == NULL) {
		set_err(err, errlen, origin, 0, "HMAC unavailable in OpenSSL");
		goto out;
	}
	/* An editor's invisible UTF-8 byte order mark is not key material. */
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		pos = 3;
	while (pos < len) {
		line++;
		nl = memchr(text + pos, '\n', len - pos);
		n = nl != NULL ? (size_t)(nl - (text + pos)) : len - pos;
		if (parse_line(s, text + pos, n, &why) == -1) {
			set_err(err, errlen, origin, line, why);
			goto out;
		}
		pos += n + 1;
	}
	if (s->n == 0) {
		set_err(err, errlen, origin, 0, "no secret found");
		goto out;
	}
	*ret = s;
	s = NULL;
	rc = 0;
out:
	if (s != NULL)
		destroy(s);
	return rc;
}

size_t
secrets_count(const struct secrets *s)
{
	return s->n;
}

int
secrets_mac(const struct secrets *s, size_t i, const void *a, size_t alen,
    const void *b, size_t blen, unsigned char out[SECRET_MAC_LEN])
{
	EVP_MAC_CTX *ctx = NULL;
	size_t outl = 0;
	int rc = -1;

	if (s == NULL || i >= s->n)
		goto out;
	ctx = EVP_MAC_CTX_dup(s->keys[i].ctx);
	if (ctx == NULL)
		goto out;
	if (alen > 0 && EVP_MAC_update(ctx, a, alen) != 1)
		goto out;
	if (blen > 0 && EVP_MAC_update(ctx, b, blen) != 1)
		goto out;
	if (EVP_MAC_final(ctx, out, &outl, SECRET_MAC_LEN) != 1 ||
	    outl != SECRET_MAC_LEN)
		goto out;
	rc = 0;
out:
	EVP_MAC_CTX_free(ctx);
	return rc;
}

struct secrets *
secrets_ref(struct secrets *s)
{
	if (s != NULL)
		atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	return s;
}

void
secrets_free(struct secrets *s)
{
	if (s == NULL)
		return;
	/* acq_rel: the last holder sees every other holder's use finished. */
	if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
		destroy(s);
}

/* Read at most SECRET_FILE_MAX bytes of an open regular file into buf
 * (SECRET_FILE_MAX + 1 bytes). Returns the length, or -1 (logged). */
static ssize_t
read_all(int fd, const char *path, char *buf)
{
	size_t len = 0;
	ssize_t r;

	for (;;) {
		r = read(fd, buf + len, SECRET_FILE_MAX + 1 - len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			log_error("secret file '%s': %s", path,
			    strerror(errno));
			return -1;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > SECRET_FILE_MAX) {
			log_error("secret file '%s': larger than %d bytes",
			    path, SECRET_FILE_MAX);
			return -1;
		}
	}
	return (ssize_t)len;
}

/* Open and check the file; warns when group or others may use it. */
static int
open_checked(const char *path)
{
	struct stat st;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd == -1) {
		log_error("secret file '%s': %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		log_error("secret file '%s': %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		log_error("secret file '%s': not a regular file", path);
		goto fail;
	}
	if (st.st_size > SECRET_FILE_MAX) {
		log_error("secret file '%s': larger than %d bytes", path,
		    SECRET_FILE_MAX);
		goto fail;
	}
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
		log_warning("secret file '%s' is readable by others; "
		    "chmod 600 it", path);
	return fd;
fail:
	(void)close(fd);
	return -1;
}

int
secrets_load(const char *path, struct secrets **ret)
{
	char *cred = NULL, *buf = NULL, err[512];
	const char *dir;
	ssize_t len = -1;
	size_t n;
	int fd = -1, rc = -1;

	if (path == NULL) {
		dir = getenv("CREDENTIALS_DIRECTORY");
		if (dir == NULL || dir[0] == '\0') {
			log_error("no secret configured: set secret_file, or "
			    "run under systemd with "
			    "LoadCredential=cashfree-secret:...");
			goto out;
		}
		n = strlen(dir) + sizeof("/" SECRET_CRED);
		cred = malloc(n);
		if (cred == NULL) {
			log_error("secret: out of memory");
			goto out;
		}
		(void)snprintf(cred, n, "%s/%s", dir, SECRET_CRED);
		path = cred;
	}
	fd = open_checked(path);
	if (fd == -1)
		goto out;
	buf = malloc(SECRET_FILE_MAX + 1);
	if (buf == NULL) {
		log_error("secret file '%s': out of memory", path);
		goto out;
	}
	len = read_all(fd, path, buf);
	if (len == -1)
		goto out;
	if (secrets_parse(buf, (size_t)len, path, ret, err,
	    sizeof(err)) == -1) {
		log_error("%s", err);	/* "FILE:LINE: why" */
		goto out;
	}
	rc = 0;
out:
	if (buf != NULL) {
		OPENSSL_cleanse(buf, SECRET_FILE_MAX + 1);
		free(buf);
	}
	if (fd != -1)
		(void)close(fd);
	free(cred);
	return rc;
}
