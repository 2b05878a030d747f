/* check.h - the unit-test harness: CHECK() records a failure with file:line
 * and goes on; RUN() counts a test function as passed when none of its
 * checks failed; check_finish() prints "NAME: N passed, N failed". */
#ifndef CFHOOK_CHECK_H
#define CFHOOK_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_fails;		/* failed checks in the running test */
static int check_passed, check_failed, check_skipped;

static inline int
check_true(int ok, const char *expr, const char *file, int line)
{
	if (!ok) {
		check_fails++;
		fprintf(stderr, "%s:%d: CHECK failed: %s\n", file, line, expr);
	}
	return ok;
}

static inline int
check_str(const char *a, const char *b, const char *expr, const char *file,
    int line)
{
	int ok = (a == NULL && b == NULL) ||
	    (a != NULL && b != NULL && strcmp(a, b) == 0);

	if (!ok) {
		check_fails++;
		fprintf(stderr, "%s:%d: CHECK_STR failed: %s: \"%s\" != \"%s\"\n",
		    file, line, expr, a == NULL ? "(null)" : a,
		    b == NULL ? "(null)" : b);
	}
	return ok;
}

static inline int
check_int(long long a, long long b, const char *expr, const char *file,
    int line)
{
	if (a != b) {
		check_fails++;
		fprintf(stderr, "%s:%d: CHECK_INT failed: %s: %lld != %lld\n",
		    file, line, expr, a, b);
	}
	return a == b;
}

#define CHECK(e)	check_true(!!(e), #e, __FILE__, __LINE__)
#define CHECK_STR(a, b)	check_str((a), (b), #a " == " #b, __FILE__, __LINE__)
#define CHECK_INT(a, b)	check_int((long long)(a), (long long)(b), \
			    #a " == " #b, __FILE__, __LINE__)

static inline void
check_run(void (*fn)(void), const char *name)
{
	check_fails = 0;
	fn();
	if (check_fails == 0) {
		check_passed++;
	} else {
		check_failed++;
		fprintf(stderr, "FAIL %s\n", name);
	}
}

#define RUN(fn)		check_run((fn), #fn)

/* Count `n` tests as skipped, saying why (once). */
static inline void
check_skip(int n, const char *why)
{
	check_skipped += n;
	printf("skip: %d test(s): %s\n", n, why);
}

/* Prints the summary; returns the process exit status. */
static inline int
check_finish(const char *suite)
{
	if (check_skipped > 0)
		printf("%s: %d passed, %d failed, %d skipped\n", suite,
		    check_passed, check_failed, check_skipped);
	else
		printf("%s: %d passed, %d failed\n", suite, check_passed,
		    check_failed);
	return check_failed == 0 ? 0 : 1;
}

#endif
