/* forward_marks.c - which claimed deliveries started (forward_marks.h).
 *
 * The file is one page: a header that says for which boot and which
 * database file the marks were written, then one 64-bit forward_log id per
 * entry (0: free, or taken and not started). A worker's mark is a single
 * aligned store into the shared mapping, made before the delivery's first
 * system call, so whoever maps the file next in this boot sees it whatever
 * became of the process. Nothing is synced: after a crash of the machine
 * the boot differs and the marks are not used.
 *
 * Must not: be trusted across a reboot or for another database file, or
 * lose a mark to a full table (then the whole file says "not trusted"). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "forward_marks.h"
#include "forward_round.h"
#include "log.h"
#include "store.h"

#define MAGIC		"cfhookd marks 1"	/* 15 bytes and a NUL */
#define BOOT_ID_LEN	40
#define MAP_LEN		4096

struct marks_page {
	char	 magic[16];
	char	 boot_id[BOOT_ID_LEN];	/* the kernel's, NUL-terminated */
	uint64_t dev, ino;		/* the database file's, and its */
	int64_t	 born_s, born_ns;	/* creation time (0 if unknown) */
	uint32_t entries;
	uint32_t spoilt;		/* a claim found no free entry */
	int64_t	 started[FORWARD_MAX_CLAIMED];
};

_Static_assert(sizeof(struct marks_page) <= MAP_LEN, "one page");

struct forward_marks {
	struct marks_page *page;	/* the shared mapping */
	char	 boot_id[BOOT_ID_LEN];	/* this boot's, or "" */
	uint64_t dev, ino;
	int64_t	 born_s, born_ns;
	unsigned char used[FORWARD_MAX_CLAIMED];	/* dispatcher's */
	unsigned next;			/* where to look for a free one */
	int64_t	 ids[FORWARD_MAX_CLAIMED];	/* forward_marks_started() */
};

/* This boot's id, or "" when the kernel does not say. */
static void
read_boot_id(char *out)
{
	ssize_t n;
	int fd;

	out[0] = '\0';
	fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return;
	n = read(fd, out, BOOT_ID_LEN - 1);
	(void)close(fd);
	if (n <= 0) {
		out[0] = '\0';
		return;
	}
	out[n] = '\0';
	out[strcspn(out, "\n")] = '\0';
}

static int
map_file(const char *path, struct marks_page **page)
{
	struct stat sb;
	void *p;
	int fd;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1) {
		log_error("forward: '%s': %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) == -1 || (sb.st_size < MAP_LEN &&
	    ftruncate(fd, MAP_LEN) == -1)) {
		log_error("forward: '%s': %s", path, strerror(errno));
		(void)close(fd);
		return -1;
	}
	p = mmap(NULL, MAP_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	(void)close(fd);	/* the mapping keeps the file */
	if (p == MAP_FAILED) {
		log_error("forward: '%s': mmap: %s", path, strerror(errno));
		return -1;
	}
	*page = p;
	return 0;
}

/* Which file the database is: device and inode, and, since a new file
 * may get the inode of a deleted one, its creation time where the file
 * system keeps one. */
static void
identify(const char *db_path, struct forward_marks *m)
{
	struct statx sx;

	if (statx(AT_FDCWD, db_path, 0, STATX_INO | STATX_BTIME, &sx) != 0 ||
	    !(sx.stx_mask & STATX_INO))
		return;
	m->dev = makedev(sx.stx_dev_major, sx.stx_dev_minor);
	m->ino = sx.stx_ino;
	if (sx.stx_mask & STATX_BTIME) {
		m->born_s = sx.stx_btime.tv_sec;
		m->born_ns = sx.stx_btime.tv_nsec;
	}
}

int
forward_marks_open(const char *db_path, struct forward_marks **ret)
{
	struct forward_marks *m;
	size_t n = strlen(db_path) + sizeof(FORWARD_MARKS_SUFFIX);
	char *path;
	int rc;

	*ret = NULL;
	if (store_is_uri(db_path))
		return 0;
	m = calloc(1, sizeof(*m));
	path = malloc(n);
	if (m == NULL || path == NULL) {
		log_error("forward: out of memory");
		free(m);
		free(path);
		return -1;
	}
	(void)snprintf(path, n, "%s%s", db_path, FORWARD_MARKS_SUFFIX);
	rc = map_file(path, &m->page);
	free(path);
	if (rc == -1) {
		free(m);
		return -1;
	}
	read_boot_id(m->boot_id);
	identify(db_path, m);
	*ret = m;
	return 0;
}

static int
cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

int
forward_marks_started(struct forward_marks *m, const int64_t **ids,
    size_t *n, const char **why)
{
	const struct marks_page *p;
	size_t i, k = 0;

	*ids = NULL;
	*n = 0;
	*why = "no record of which had started";
	if (m == NULL)
		return -1;
	p = m->page;
	if (memcmp(p->magic, MAGIC, sizeof(MAGIC)) != 0 ||
	    p->entries != FORWARD_MAX_CLAIMED)
		return -1;
	if (m->boot_id[0] == '\0' ||
	    strncmp(p->boot_id, m->boot_id, BOOT_ID_LEN) != 0) {
		*why = "the machine restarted since";
		return -1;
	}
	if (m->ino == 0 || p->dev != m->dev || p->ino != m->ino ||
	    p->born_s != m->born_s || p->born_ns != m->born_ns) {
		*why = "the record is of another database file";
		return -1;
	}
	if (p->spoilt) {
		*why = "the record ran out of room";
		return -1;
	}
	for (i = 0; i < FORWARD_MAX_CLAIMED; i++)
		if (p->started[i] > 0)
			m->ids[k++] = p->started[i];
	qsort(m->ids, k, sizeof(m->ids[0]), cmp_id);
	*ids = m->ids;
	*n = k;
	return 0;
}

void
forward_marks_reset(struct forward_marks *m, int trusted)
{
	struct marks_page *p;

	if (m == NULL)
		return;
	p = m->page;
	memset(p, 0, sizeof(*p));
	memcpy(p->boot_id, m->boot_id, BOOT_ID_LEN);
	p->dev = m->dev;
	p->ino = m->ino;
	p->born_s = m->born_s;
	p->born_ns = m->born_ns;
	p->spoilt = !trusted;
	memcpy(p->magic, MAGIC, sizeof(MAGIC));
	/* the count last: a half-written header is not trusted */
	__atomic_store_n(&p->entries, FORWARD_MAX_CLAIMED, __ATOMIC_RELEASE);
	memset(m->used, 0, sizeof(m->used));
	m->next = 0;
}

int
forward_marks_take(struct forward_marks *m)
{
	unsigned i, k;

	if (m == NULL)
		return FORWARD_MARK_NONE;
	for (i = 0; i < FORWARD_MAX_CLAIMED; i++) {
		k = (m->next + i) % FORWARD_MAX_CLAIMED;
		if (!m->used[k]) {
			m->used[k] = 1;
			m->next = k + 1;
			return (int)k;
		}
	}
	/* Never with the claim limit as it is; were it to happen, an
	 * unmarked start would be undone at the next start-up: say instead
	 * that these marks cannot be trusted. */
	__atomic_store_n(&m->page->spoilt, 1, __ATOMIC_RELEASE);
	return FORWARD_MARK_NONE;
}

void
forward_marks_free(struct forward_marks *m, int mark)
{
	if (m == NULL || mark < 0 || mark >= FORWARD_MAX_CLAIMED)
		return;
	__atomic_store_n(&m->page->started[mark], 0, __ATOMIC_RELEASE);
	m->used[mark] = 0;
}

void
forward_marks_start(struct forward_marks *m, int mark, int64_t log_id)
{
	if (m == NULL || mark < 0 || mark >= FORWARD_MAX_CLAIMED)
		return;
	__atomic_store_n(&m->page->started[mark], log_id, __ATOMIC_RELEASE);
}

void
forward_marks_close(struct forward_marks *m)
{
	if (m == NULL)
		return;
	(void)munmap(m->page, MAP_LEN);
	free(m);
}
