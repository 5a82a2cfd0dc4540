/*
 * test_spawn.c - codegen/src/spawn.c: running a tool without a shell.
 * The tools are /bin/sh scripts and coreutils, so the tests need nothing
 * beyond a Debian base system. No test asserts a duration: the timeout
 * test only asks that a tool sleeping far longer than its budget is killed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../../codegen/src/gen_spawn.h"

#include "art/error.h"
#include "art/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static void expect_mentions(const char *needle)
{
	if (!strstr(art_error_last(), needle))
		fail_msg("error '%s' does not mention '%s'", art_error_last(), needle);
}

static void test_spawn__output_exit_status_and_environment(void **state)
{
	const char *const argv[] = {"/bin/sh", "-c",
				    "echo out; echo err >&2; echo \"$LC_ALL $TMPDIR\"; "
				    "test ! -t 0 && read x; exit 7", NULL};
	art_buf out = {0};
	int status;

	(void)state;
	assert_int_equal(gen__spawn(argv, NULL, "/some/tmp", 30000, &out, &status), 0);
	assert_int_equal(status, 7);
	assert_non_null(strstr(out.data, "out\n"));
	assert_non_null(strstr(out.data, "err\n"));
	assert_non_null(strstr(out.data, "C /some/tmp\n"));
	art_buf_free(&out);
}

static void test_spawn__no_tmpdir_and_no_output_buffer(void **state)
{
	const char *const argv[] = {"/bin/sh", "-c", "test -z \"$TMPDIR\" && echo ignored", NULL};
	int status;

	(void)state;
	assert_int_equal(gen__spawn(argv, NULL, NULL, 30000, NULL, &status), 0);
	assert_int_equal(status, 0);
}

static void test_spawn__killed_by_a_signal(void **state)
{
	const char *const argv[] = {"/bin/sh", "-c", "kill -TERM $$", NULL};
	art_buf out = {0};
	int status;

	(void)state;
	assert_int_equal(gen__spawn(argv, NULL, NULL, 30000, &out, &status), 0);
	assert_int_equal(status, 128 + 15);
	art_buf_free(&out);
}

static void test_spawn__working_directory(void **state)
{
	const char *const argv[] = {"/bin/pwd", NULL};
	art_buf out = {0};
	int status;

	(void)state;
	assert_int_equal(gen__spawn(argv, "/", NULL, 30000, &out, &status), 0);
	assert_int_equal(status, 0);
	assert_string_equal(out.data, "/\n");
	art_buf_free(&out);
	/* A working directory that does not exist: the tool cannot start. */
	assert_int_equal(gen__spawn(argv, "/no/such/dir", NULL, 30000, &out, &status), AF_EIO);
	expect_mentions("cannot run");
	art_buf_free(&out);
}

/* More output than the cap, in one write and in many: the last
 * GEN_SPAWN_OUTPUT_MAX bytes are kept, ending with what was written last. */
static void test_spawn__output_is_capped_to_its_tail(void **state)
{
	const char *const many[] = {"/bin/sh", "-c",
				    "i=0; while [ $i -lt 3000 ]; do "
				    "echo \"line $i .................................\"; i=$((i+1)); "
				    "done; echo LAST", NULL};
	const char *const one[] = {"/bin/sh", "-c", "head -c 200000 /dev/zero | tr '\\0' x; "
				   "echo; echo END", NULL};
	art_buf out = {0};
	int status;

	(void)state;
	assert_int_equal(gen__spawn(many, NULL, NULL, 60000, &out, &status), 0);
	assert_int_equal(status, 0);
	assert_int_equal(out.len, GEN_SPAWN_OUTPUT_MAX);
	assert_int_equal(out.data[out.len], '\0');
	assert_non_null(strstr(out.data, "LAST\n"));
	assert_null(strstr(out.data, "line 0 "));
	art_buf_free(&out);

	assert_int_equal(gen__spawn(one, NULL, NULL, 60000, &out, &status), 0);
	assert_int_equal(out.len, GEN_SPAWN_OUTPUT_MAX);
	assert_memory_equal(out.data + out.len - 5, "\nEND\n", 5);
	art_buf_free(&out);
}

/* The tool and what it started are killed when the budget is spent, even
 * when a grandchild still holds the output pipe open. */
static void test_spawn__timeout_kills_the_group(void **state)
{
	const char *const argv[] = {"/bin/sh", "-c", "sleep 600 & sleep 600; echo never", NULL};
	art_buf out = {0};
	int status;

	(void)state;
	assert_int_equal(gen__spawn(argv, NULL, NULL, 200, &out, &status), AF_EIO);
	expect_mentions("timed out");
	assert_null(out.data ? strstr(out.data, "never") : NULL);
	art_buf_free(&out);
	/* A zero or negative budget is the smallest one, not "no limit". */
	assert_int_equal(gen__spawn(argv, NULL, NULL, 0, &out, &status), AF_EIO);
	art_buf_free(&out);
}

static void test_spawn__missing_tool(void **state)
{
	const char *const argv[] = {"/no/such/tool", "--version", NULL};
	art_buf out = {0};
	int status;

	(void)state;
	assert_int_equal(gen__spawn(argv, NULL, NULL, 30000, &out, &status), AF_EIO);
	expect_mentions("/no/such/tool");
	art_buf_free(&out);
}

static void test_spawn__which(void **state)
{
	char *p, *saved = getenv("PATH") ? strdup(getenv("PATH")) : NULL;

	(void)state;
	assert_null(gen__which(NULL));
	assert_null(gen__which(""));
	p = gen__which("sh");
	assert_non_null(p);
	assert_int_equal(p[0], '/');
	free(p);
	/* A name with a slash is taken as a path (and resolved). */
	p = gen__which("/bin/sh");
	assert_non_null(p);
	free(p);
	assert_null(gen__which("/no/such/tool"));
	assert_null(gen__which("no-such-tool-anywhere"));
	/* Empty PATH entries are skipped, not read as the current folder. */
	setenv("PATH", "::/bin:", 1);
	p = gen__which("sh");
	assert_non_null(p);
	assert_string_equal(p, "/bin/sh");
	free(p);
	/* Without PATH: /usr/bin:/bin. */
	unsetenv("PATH");
	p = gen__which("sh");
	assert_non_null(p);
	free(p);
	if (saved)
		setenv("PATH", saved, 1);
	free(saved);
}

/* A folder or a file without the execute bit named like the tool is passed
 * over; a miss says ENOENT (not ENOMEM, which would be out of memory). */
static void test_spawn__which_skips_folders_and_non_executables(void **state)
{
	char base[] = "/tmp/af-test-which-XXXXXX", path[256], *p;
	char *saved = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(base));
	snprintf(path, sizeof(path), "%s/a", base);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/a/af-tool", base);
	assert_int_equal(mkdir(path, 0755), 0); /* a folder */
	snprintf(path, sizeof(path), "%s/b", base);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/b/af-tool", base);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("#!/bin/sh\n", f);
	fclose(f);
	assert_int_equal(chmod(path, 0644), 0); /* not executable */
	snprintf(path, sizeof(path), "%s/a:%s/b", base, base);
	setenv("PATH", path, 1);
	errno = 0;
	assert_null(gen__which("af-tool"));
	assert_int_equal(errno, ENOENT);
	snprintf(path, sizeof(path), "%s/b/af-tool", base);
	assert_int_equal(chmod(path, 0755), 0);
	p = gen__which("af-tool");
	assert_non_null(p);
	assert_string_equal(p, path);
	free(p);
	if (saved)
		setenv("PATH", saved, 1);
	free(saved);
	remove(path);
	snprintf(path, sizeof(path), "%s/a/af-tool", base);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/a", base);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/b", base);
	rmdir(path);
	rmdir(base);
}

/* No file descriptor left for the output pipe: an error, nothing started. */
static void test_spawn__no_descriptor_for_the_pipe(void **state)
{
	const char *const argv[] = {"/bin/sh", "-c", "exit 0", NULL};
	struct rlimit saved, low;
	art_buf out = {0};
	int status = 5, rc;

	(void)state;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
	low = saved;
	low.rlim_cur = 3; /* stdin, stdout, stderr */
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	rc = gen__spawn(argv, NULL, NULL, 30000, &out, &status);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
	assert_int_equal(rc, AF_EIO);
	expect_mentions("pipe");
	assert_int_equal(status, -1);
	assert_int_equal(out.len, 0);
	art_buf_free(&out);
}

/* A working directory that does not exist: the tool cannot start there. */
static void test_spawn__missing_working_directory(void **state)
{
	const char *const argv[] = {"/bin/sh", "-c", "exit 0", NULL};
	art_buf out = {0};
	int status = 5;

	(void)state;
	assert_int_equal(gen__spawn(argv, "/no/such/folder", NULL, 30000, &out, &status), AF_EIO);
	expect_mentions("cannot run");
	assert_int_equal(status, -1);
	art_buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spawn__output_exit_status_and_environment),
		cmocka_unit_test(test_spawn__no_tmpdir_and_no_output_buffer),
		cmocka_unit_test(test_spawn__killed_by_a_signal),
		cmocka_unit_test(test_spawn__working_directory),
		cmocka_unit_test(test_spawn__output_is_capped_to_its_tail),
		cmocka_unit_test(test_spawn__timeout_kills_the_group),
		cmocka_unit_test(test_spawn__missing_tool),
		cmocka_unit_test(test_spawn__which),
		cmocka_unit_test(test_spawn__which_skips_folders_and_non_executables),
		cmocka_unit_test(test_spawn__no_descriptor_for_the_pipe),
		cmocka_unit_test(test_spawn__missing_working_directory),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
