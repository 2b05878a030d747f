/* tmpdir.h - remove a test's temp dir and everything in it. */
#ifndef CFHOOK_TMPDIR_H
#define CFHOOK_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

static inline int
tmpdir_rm_one(const char *path, const struct stat *sb, int flag,
    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static inline void
tmpdir_remove(const char *dir)
{
	(void)nftw(dir, tmpdir_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
