/*
 * faultinject.h - make the Nth call of an allocation (or of a wrapped
 * library function) fail, for tests linked with -Wl,--wrap=... (the Makefile
 * gives a test binary its wrap list through TEST_WRAP, see docs/quality.md).
 *
 * Include it in exactly one file of a test binary that is linked with
 *   -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup
 * The wrappers count calls only while armed (fi_arm), so the set-up of a
 * test and cmocka itself (a shared library: never wrapped) are not counted.
 * One call fails per armed run: the Nth one (as curl's torture mode does),
 * later calls succeed again, so error paths that allocate still run.
 *
 * fi_torture() runs an operation with failure 1, 2, 3, ... until a run
 * sees no injected failure, and asks that every failed run report AF_ENOMEM
 * (or succeed: an allocation the code can do without) and leave nothing
 * behind (leaks: run the test under CONFIG=asan, LeakSanitizer checks).
 */
#ifndef AF_FAULTINJECT_H
#define AF_FAULTINJECT_H

#include "art/error.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);

/* 0: disarmed; else the call number that fails. Counting is atomic: the
 * store and the kv run worker threads. */
static long fi_fail_at;
static long fi_calls;
static int fi_failed;

static void fi_arm(long n)
{
	__atomic_store_n(&fi_calls, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&fi_failed, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&fi_fail_at, n, __ATOMIC_SEQ_CST);
}

/* Disarm; whether a call was made to fail. */
static bool fi_disarm(void)
{
	__atomic_store_n(&fi_fail_at, 0, __ATOMIC_SEQ_CST);
	return __atomic_load_n(&fi_failed, __ATOMIC_SEQ_CST) != 0;
}

static bool fi_should_fail(void)
{
	long at = __atomic_load_n(&fi_fail_at, __ATOMIC_SEQ_CST);

	if (at <= 0)
		return false;
	if (__atomic_add_fetch(&fi_calls, 1, __ATOMIC_SEQ_CST) != at)
		return false;
	__atomic_store_n(&fi_failed, 1, __ATOMIC_SEQ_CST);
	errno = ENOMEM;
	return true;
}

void *__wrap_malloc(size_t n)
{
	return fi_should_fail() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
	return fi_should_fail() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
	return fi_should_fail() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
	return fi_should_fail() ? NULL : __real_strdup(s);
}

/* An operation under torture: run() does it from scratch and returns its
 * code; undo() (may be NULL) frees what a successful or failed run left. */
typedef struct fi_op {
	const char *name;
	int (*run)(void *ctx);
	void (*undo)(void *ctx);
	void *ctx;
} fi_op;

/* Fail the 1st, 2nd, ... allocation of op until a run makes none fail (it
 * must then succeed). Each failed run must return AF_ENOMEM, or succeed
 * when the code could do without that allocation. Returns the number of
 * failure points exercised (printed), or -1 with the reason printed. */
static long fi_torture(const fi_op *op)
{
	long n;
	int rc;
	bool failed;

	for (n = 1;; n++) {
		fi_arm(n);
		rc = op->run(op->ctx);
		failed = fi_disarm();
		if (op->undo)
			op->undo(op->ctx);
		if (!failed) {
			if (rc != 0) {
				fprintf(stderr, "%s: without any injected failure: %d (%s)\n",
					op->name, rc, art_error_last());
				return -1;
			}
			printf("%s: %ld allocation failure points\n", op->name, n - 1);
			return n - 1;
		}
		if (rc != 0 && rc != AF_ENOMEM) {
			fprintf(stderr, "%s: allocation %ld failed, but the code said %d: %s\n",
				op->name, n, rc, art_error_last());
			return -1;
		}
		if (n > 1000000) {
			fprintf(stderr, "%s: more than a million allocations?\n", op->name);
			return -1;
		}
	}
}

#endif
