/* store_file.c - the database's files on disk, seen apart from SQLite: are
 * the files a connection writes into still the ones the path names (DESIGN
 * "Database"), and what `--check` can learn about a database file.
 *
 * The held files are O_PATH descriptors: fstat() works on them, and closing
 * one never drops the POSIX locks SQLite holds on the same file (the kernel
 * releases POSIX locks only for descriptors opened for I/O), which closing
 * any ordinary descriptor of the database file would.
 *
 * Must not: open a database or WAL file for reading or writing in the
 * daemon (see above), run SQL, or create anything. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "forward_marks.h"
#include "log.h"
#include "store_file.h"

/* SQLite's 100-byte file header and page 1's b-tree page header. */
#define HEADER_SIZE	108

struct store_file {
	char	*db_path;
	char	*wal_path;
	char	*shm_path;
	int	 db_fd;			/* O_PATH, as the three below */
	int	 wal_fd;
	int	 shm_fd;
};

static char *
with_suffix(const char *path, const char *suffix)
{
	size_t n = strlen(path) + strlen(suffix) + 1;
	char *s = malloc(n);

	if (s != NULL)
		(void)snprintf(s, n, "%s%s", path, suffix);
	return s;
}

/* An existing file is only stat()ed, never opened: closing any descriptor
 * of a database file drops every POSIX lock this process holds on it, and
 * another connection of ours (the writer) would silently lose its WAL
 * locks. A new file is made here so that it gets mode 0600 (payment data;
 * SQLite gives the -wal and -shm files the same mode). */
int
store_file_ready(const char *db_path, int create, int writable)
{
	struct stat sb;
	int fd;

	if (stat(db_path, &sb) == 0) {
		if (access(db_path, writable ? R_OK | W_OK : R_OK) == 0)
			return 0;
	} else if (errno == ENOENT && create) {
		fd = open(db_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd != -1) {
			(void)close(fd);	/* no connection has it yet */
			return 0;
		}
		if (errno == EEXIST)
			return 0;		/* created meanwhile */
	}
	log_error("store: '%s': %s", db_path, strerror(errno));
	return -1;
}

static int
hold(const char *path, int *ret)
{
	int fd = open(path, O_PATH | O_CLOEXEC);

	if (fd == -1) {
		log_error("store: '%s': %s", path, strerror(errno));
		return -1;
	}
	*ret = fd;
	return 0;
}

int
store_file_open(const char *db_path, struct store_file **ret)
{
	struct store_file *f;

	f = calloc(1, sizeof(*f));
	if (f == NULL) {
		log_error("store: '%s': out of memory", db_path);
		return -1;
	}
	f->db_fd = f->wal_fd = f->shm_fd = -1;
	f->db_path = strdup(db_path);
	f->wal_path = with_suffix(db_path, "-wal");
	f->shm_path = with_suffix(db_path, "-shm");
	if (f->db_path == NULL || f->wal_path == NULL || f->shm_path == NULL) {
		log_error("store: '%s': out of memory", db_path);
		goto fail;
	}
	if (hold(f->db_path, &f->db_fd) == -1 ||
	    hold(f->wal_path, &f->wal_fd) == -1 ||
	    hold(f->shm_path, &f->shm_fd) == -1)
		goto fail;
	*ret = f;
	return 0;
fail:
	store_file_close(f);
	return -1;
}

void
store_file_close(struct store_file *f)
{
	if (f == NULL)
		return;
	if (f->db_fd != -1)
		(void)close(f->db_fd);
	if (f->wal_fd != -1)
		(void)close(f->wal_fd);
	if (f->shm_fd != -1)
		(void)close(f->shm_fd);
	free(f->db_path);
	free(f->wal_path);
	free(f->shm_path);
	free(f);
}

/* STORE_FILE_OK when `path` names the held file `fd`; `deleted` when the
 * held file has no name left; `moved` when it has one, but not `path`. One
 * fstat() and one stat(): this runs after every commit. */
static enum store_file_state
compare(int fd, const char *path, enum store_file_state deleted,
    enum store_file_state moved)
{
	struct stat held, sb;

	if (fstat(fd, &held) == -1)
		return moved;
	if (held.st_nlink == 0)
		return deleted;
	if (stat(path, &sb) == -1 || held.st_dev != sb.st_dev ||
	    held.st_ino != sb.st_ino)
		return moved;
	return STORE_FILE_OK;
}

/* 1 when `path` names the held file, 0 when it names nothing or another. */
static int
named(int fd, const char *path)
{
	return compare(fd, path, STORE_FILE_DB_DELETED, STORE_FILE_DB_MOVED) ==
	    STORE_FILE_OK;
}

enum store_file_state
store_file_check(const struct store_file *f)
{
	enum store_file_state s;

	s = compare(f->db_fd, f->db_path, STORE_FILE_DB_DELETED,
	    STORE_FILE_DB_MOVED);
	if (s != STORE_FILE_OK)
		return s;
	return compare(f->wal_fd, f->wal_path, STORE_FILE_WAL_DELETED,
	    STORE_FILE_WAL_MOVED);
}

const char *
store_file_state_text(enum store_file_state s)
{
	switch (s) {
	case STORE_FILE_OK:
		return "the database and its WAL are in place";
	case STORE_FILE_DB_DELETED:
		return "the database file was deleted";
	case STORE_FILE_DB_MOVED:
		return "the database file is no longer at its path";
	case STORE_FILE_WAL_DELETED:
		return "the WAL file was deleted";
	case STORE_FILE_WAL_MOVED:
		return "the WAL file is no longer at its path";
	}
	return "the database files moved";
}

/* Opening a database beside a WAL or -shm file that one of our own
 * connections holds would give one file two states in this process (POSIX
 * locks of one process never conflict, so SQLite could not tell), and
 * replay our WAL into another database: hence MIXED. */
enum store_file_path
store_file_path(const struct store_file *f)
{
	struct stat sb;
	int db, wal, shm;

	if (stat(f->db_path, &sb) == -1 || !S_ISREG(sb.st_mode))
		return STORE_PATH_GONE;
	db = named(f->db_fd, f->db_path);
	wal = named(f->wal_fd, f->wal_path);
	shm = named(f->shm_fd, f->shm_path);
	if (db && wal)
		return STORE_PATH_SAME;
	if (!db && !wal && !shm)
		return STORE_PATH_OTHER_DB;
	return STORE_PATH_MIXED;
}

int64_t
store_file_wal_bytes(const struct store_file *f)
{
	struct stat sb;

	if (fstat(f->wal_fd, &sb) == -1)
		return -1;
	return (int64_t)sb.st_size;
}

int64_t
store_file_free_bytes(const struct store_file *f)
{
	struct statvfs sv;

	if (fstatvfs(f->db_fd, &sv) == -1)
		return -1;
	return (int64_t)sv.f_bavail * (int64_t)sv.f_frsize;
}

/* The directory of `path` (a copy), "." when it has none. */
static char *
dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t n;
	char *d;

	if (slash == NULL)
		return strdup(".");
	n = slash == path ? 1 : (size_t)(slash - path);
	d = malloc(n + 1);
	if (d != NULL) {
		memcpy(d, path, n);
		d[n] = '\0';
	}
	return d;
}

/* The directory must let cfhookd create the files beside the database. */
static int
dir_writable(const char *db_path)
{
	char *dir = dir_of(db_path);
	int rc = -1;

	if (dir == NULL)
		log_error("store: '%s': out of memory", db_path);
	else if (access(dir, W_OK | X_OK) == -1)
		log_error("store: '%s': directory '%s': %s", db_path, dir,
		    errno == ENOENT ? "does not exist" : strerror(errno));
	else
		rc = 0;
	free(dir);
	return rc;
}

/* Each file beside the database, when present, must be writable too; when
 * absent, the directory must let it be created. */
static int
companions_writable(const char *db_path)
{
	static const char *const sfx[] = { "-wal", "-shm", ".lock",
	    FORWARD_MARKS_SUFFIX };
	int need_dir = 0, rc = 0;
	size_t i;
	char *p;

	for (i = 0; i < sizeof(sfx) / sizeof(sfx[0]) && rc == 0; i++) {
		p = with_suffix(db_path, sfx[i]);
		if (p == NULL) {
			log_error("store: '%s': out of memory", db_path);
			return -1;
		}
		if (access(p, F_OK) == -1)
			need_dir = 1;
		else if (access(p, R_OK | W_OK) == -1) {
			log_error("store: '%s': not writable: %s", p,
			    strerror(errno));
			rc = -1;
		}
		free(p);
	}
	if (rc == 0 && need_dir)
		rc = dir_writable(db_path);
	return rc;
}

static uint32_t
be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* user_version from the file header (SQLite file format, section 1.3:
 * offset 60). A version-0 file must have an empty schema (page 1 a table
 * leaf with no cells), or it is somebody else's database. The header can be
 * older than a WAL the daemon has not checkpointed yet; the daemon
 * checkpoints within a second of going idle. This runs in the --check
 * process, which holds no lock the close below could drop. */
static int
read_version(const char *path, int64_t *ret)
{
	static const char magic[16] = "SQLite format 3";
	unsigned char h[HEADER_SIZE];
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1) {
		log_error("store: '%s': %s", path, strerror(errno));
		return -1;
	}
	n = pread(fd, h, sizeof(h), 0);
	(void)close(fd);
	if (n == 0) {
		*ret = 0;		/* empty: cfhookd makes the schema */
		return 0;
	}
	if (n < (ssize_t)sizeof(h) || memcmp(h, magic, sizeof(magic)) != 0) {
		log_error("store: '%s': not an SQLite database", path);
		return -1;
	}
	*ret = (int32_t)be32(h + 60);
	if (*ret < 0) {
		log_error("store: '%s': database schema version %lld is not "
		    "one cfhookd knows", path, (long long)*ret);
		return -1;
	}
	if (*ret == 0 && (h[100] != 0x0D || h[103] != 0 || h[104] != 0)) {
		log_error("store: '%s': not a cfhookd database (it has tables "
		    "but schema version 0)", path);
		return -1;
	}
	return 0;
}

int
store_file_inspect(const char *db_path, int64_t max_version, char *note,
    size_t note_size)
{
	struct stat sb;
	int64_t v;

	if (stat(db_path, &sb) == -1) {
		if (errno != ENOENT) {
			log_error("store: '%s': %s", db_path, strerror(errno));
			return -1;
		}
		if (dir_writable(db_path) == -1)
			return -1;
		(void)snprintf(note, note_size, "to be created");
		return 0;
	}
	if (!S_ISREG(sb.st_mode)) {
		log_error("store: '%s': not a regular file", db_path);
		return -1;
	}
	if (read_version(db_path, &v) == -1)
		return -1;
	if (v > max_version) {
		log_error("store: '%s': database schema version %lld is newer "
		    "than this cfhookd supports (%lld)", db_path, (long long)v,
		    (long long)max_version);
		return -1;
	}
	if (access(db_path, R_OK | W_OK) == -1) {
		log_error("store: '%s': not writable: %s", db_path,
		    strerror(errno));
		return -1;
	}
	if (companions_writable(db_path) == -1)
		return -1;
	if (v == 0)
		(void)snprintf(note, note_size, "empty, schema to be created");
	else if (v < max_version)
		(void)snprintf(note, note_size, "schema version %lld, to be "
		    "upgraded to %lld", (long long)v, (long long)max_version);
	else
		(void)snprintf(note, note_size, "schema version %lld",
		    (long long)v);
	return 0;
}
