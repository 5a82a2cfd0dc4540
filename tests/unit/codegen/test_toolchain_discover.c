/*
 * test_toolchain_discover.c - gen_toolchain_discover against fake tools:
 * a WASI SDK folder and a PATH of /bin/sh scripts standing in for clang,
 * wasm2c, wasm-validate and cc, so that every way discovery can fail is
 * reached (and named in the message), and a discovery that succeeds records
 * the versions and target the tools reported in the toolchain ids.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "gen/toolchain.h"

#include "art/error.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *base, *saved_path;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void write_script(const char *dir, const char *name, const char *body)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "#!/bin/sh\n%s\n", body);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, 0755), 0);
}

static void mkdir_p(const char *fmt, const char *a)
{
	char path[4096], *p;

	snprintf(path, sizeof(path), fmt, base, a);
	for (p = path + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			mkdir(path, 0755);
			*p = '/';
		}
	mkdir(path, 0755);
}

/* A fresh fake SDK (sdk/) and tool folder (bin/) with working tools. */
static void fake_tools(const char *clang_body, const char *cc_body)
{
	char dir[4096];

	snprintf(dir, sizeof(dir), "%s/sdk/bin", base);
	mkdir_p("%s/sdk/bin%s", "");
	mkdir_p("%s/sdk/share/wasi-sysroot/lib/wasm32-wasip1%s", "");
	mkdir_p("%s/bin%s", "");
	write_script(dir, "clang", clang_body ? clang_body :
		     "case \"$*\" in *--version*) echo 'fake clang 19.0 ';; "
		     "*-print-libgcc-file-name*) echo /nonexistent/libclang_rt.builtins.a;; esac");
	snprintf(dir, sizeof(dir), "%s/bin", base);
	write_script(dir, "wasm2c", "echo 1.0.32");
	write_script(dir, "wasm-validate", "exit 0");
	write_script(dir, "cc", cc_body ? cc_body :
		     "case \"$1\" in --version) echo 'cc (fake) 12';; -dumpmachine) echo x86_64-linux-gnu;; esac");
	snprintf(dir, sizeof(dir), "%s/sdk", base);
	setenv("WASI_SDK_PATH", dir, 1);
	snprintf(dir, sizeof(dir), "%s/bin", base);
	setenv("PATH", dir, 1);
}

static int setup(void **state)
{
	const char *tmp = getenv("TMPDIR");

	(void)state;
	saved_path = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
	if (asprintf(&base, "%s/af-test-discover-XXXXXX", tmp && *tmp ? tmp : "/tmp") < 0 ||
	    !mkdtemp(base))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (saved_path)
		setenv("PATH", saved_path, 1);
	unsetenv("WASI_SDK_PATH");
	nftw(base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(base);
	free(saved_path);
	return 0;
}

/* Each test starts from an empty base folder. */
static int fresh(void **state)
{
	(void)state;
	nftw(base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return mkdir(base, 0700);
}

static void expect_error(int want, const char *needle)
{
	gen_toolchain *tc = (gen_toolchain *)0x1;

	assert_int_equal(gen_toolchain_discover(&tc), want);
	assert_null(tc);
	if (!strstr(art_error_last(), needle))
		fail_msg("error '%s' does not mention '%s'", art_error_last(), needle);
}

static void test_discover__null_argument(void **state)
{
	(void)state;
	assert_int_equal(gen_toolchain_discover(NULL), AF_EINVAL);
}

static void test_discover__fake_sdk_is_recorded_in_the_ids(void **state)
{
	gen_toolchain *tc = NULL;

	(void)state;
	fake_tools(NULL, NULL);
	if (gen_toolchain_discover(&tc) != 0)
		fail_msg("discover: %s", art_error_last());
	/* Trailing blanks trimmed; the wasip1 library folder was looked in. */
	assert_non_null(strstr(gen_toolchain_id(tc), "clang=fake clang 19.0;"));
	assert_non_null(strstr(gen_toolchain_id(tc), "cc=cc (fake) 12;"));
	assert_string_equal(gen_toolchain_wasm_rt(tc), "wabt-1.0.32");
	assert_string_equal(gen_toolchain_target(tc), "x86_64-linux-gnu");
	assert_non_null(strstr(gen_toolchain_compat_id(tc), "x86_64-linux-gnu"));
	gen_toolchain_set_timeout(tc, 1000);
	gen_toolchain_free(tc);
	gen_toolchain_free(NULL);
}

static void test_discover__sdk_without_sysroot(void **state)
{
	char path[4096];

	(void)state;
	fake_tools(NULL, NULL);
	snprintf(path, sizeof(path), "%s/sdk/share", base);
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	expect_error(AF_ENOTFOUND, "has no share/wasi-sysroot");
}

static void test_discover__missing_tools_are_named_with_their_package(void **state)
{
	char path[4096];

	(void)state;
	fake_tools(NULL, NULL);
	snprintf(path, sizeof(path), "%s/bin/wasm2c", base);
	assert_int_equal(unlink(path), 0);
	expect_error(AF_ENOTFOUND, "wasm2c not found in PATH (install the Debian package wabt)");
	fake_tools(NULL, NULL);
	snprintf(path, sizeof(path), "%s/bin/cc", base);
	assert_int_equal(unlink(path), 0);
	expect_error(AF_ENOTFOUND, "build-essential");
}

static void test_discover__failing_tools_report_status_and_output(void **state)
{
	(void)state;
	fake_tools("echo 'clang: broken install' >&2; exit 3", NULL);
	expect_error(AF_EIO, "failed with exit status 3: clang: broken install");
	fake_tools(NULL, "case \"$1\" in --version) echo cc;; *) exit 1;; esac");
	expect_error(AF_EIO, "-dumpmachine failed with exit status 1");
	fake_tools("case \"$*\" in *--version*) echo clang;; *) kill -KILL $$;; esac", NULL);
	expect_error(AF_EIO, "exit status 137");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_discover__null_argument),
		cmocka_unit_test_setup(test_discover__fake_sdk_is_recorded_in_the_ids, fresh),
		cmocka_unit_test_setup(test_discover__sdk_without_sysroot, fresh),
		cmocka_unit_test_setup(test_discover__missing_tools_are_named_with_their_package, fresh),
		cmocka_unit_test_setup(test_discover__failing_tools_report_status_and_output, fresh),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
