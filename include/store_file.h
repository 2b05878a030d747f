/* store_file.h - the database's files on disk, seen apart from SQLite
 * (DESIGN "Database": a commit is durable only into the files the path
 * names).
 *
 * A struct store_file holds the database file and its WAL, as SQLite opened
 * them, by O_PATH descriptors: their identity and link count can then be
 * compared with what the paths name now, and closing them never drops a
 * POSIX lock SQLite holds (an O_PATH descriptor carries none). Also what
 * `cfhookd --check` learns about a database without opening it in SQLite.
 * No SQL here. Owned by one thread, like the struct store holding it. */
#ifndef CFHOOK_STORE_FILE_H
#define CFHOOK_STORE_FILE_H

#include <stddef.h>
#include <stdint.h>

struct store_file;

/* Where the held files are, compared with their paths. */
enum store_file_state {
	STORE_FILE_OK,			/* both are the files the paths name */
	STORE_FILE_DB_DELETED,		/* the database file has no name left */
	STORE_FILE_DB_MOVED,		/* it has one, but not at the path */
	STORE_FILE_WAL_DELETED,		/* likewise for the WAL */
	STORE_FILE_WAL_MOVED
};

/* What the database path names now. */
enum store_file_path {
	STORE_PATH_SAME,	/* the held database and WAL */
	STORE_PATH_GONE,	/* no regular file */
	STORE_PATH_OTHER_DB,	/* a different database, and none of the held
				 * files beside it: it can be opened while
				 * ours are still open */
	STORE_PATH_MIXED	/* some held files there, some not (the WAL
				 * deleted; the database replaced beside our
				 * WAL and -shm): ours must be closed, their
				 * WAL saved and emptied, before it is opened */
};

/* Before SQLite opens `db_path`: it exists (created here, mode 0600, when
 * `create`) and is readable, and writable when `writable`; a missing
 * directory or an unwritable file is logged with errno rather than as
 * SQLite's vaguer "unable to open database file". 0 / -1 (logged). */
int	store_file_ready(const char *db_path, int create, int writable);
/* Hold `db_path` and its -wal and -shm, which SQLite has open right now.
 * Returns 0 / -1 (logged). */
int	store_file_open(const char *db_path, struct store_file **ret);
/* NULL-safe. */
void	store_file_close(struct store_file *);
/* A few stat() calls. STORE_FILE_OK when nothing moved. */
enum store_file_state store_file_check(const struct store_file *);
/* "the WAL file was deleted" and so on, for logs and /healthz. */
const char *store_file_state_text(enum store_file_state);
enum store_file_path store_file_path(const struct store_file *);
/* Size of the held WAL in bytes; -1 when it cannot be read. */
int64_t	store_file_wal_bytes(const struct store_file *);
/* Bytes free to an unprivileged user on the held database's file system;
 * -1 when it cannot be read. */
int64_t	store_file_free_bytes(const struct store_file *);
/* `cfhookd --check`: whether cfhookd can write the database at `db_path`,
 * learnt without SQLite and without creating or changing anything. It
 * exists as a cfhookd database at a schema version up to `max_version`, or
 * as an empty file, or not at all in a directory that lets it be created;
 * the database, the -wal, -shm and .lock files beside it (those present)
 * are readable and writable, and the directory lets the others be made.
 * Returns 0 with a short note ("schema version 2", "to be created", ...)
 * in note, or -1 (logged, naming the file and the reason). */
int	store_file_inspect(const char *db_path, int64_t max_version,
	    char *note, size_t note_size);

#endif
