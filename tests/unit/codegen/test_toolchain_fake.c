/*
 * test_toolchain_fake.c - gen_build_agent against fake tools (a WASI SDK
 * folder and /bin/sh scripts for clang, wasm-validate, wasm2c and cc), so
 * that every way a build step can fail is reached without a compiler: a
 * compile error with its output, a link refused for too little memory, a
 * validator that refuses the module, a linker that writes no module or a
 * damaged one, a module without the agent's exports, a tool that hangs past
 * its time limit, a work folder that cannot be created, a guest cache that
 * is not a folder. The tools see only PATH (the fake tools' folder), LC_ALL
 * and TMPDIR, so the scripts read what to do from a file (mode) with the
 * shell's own read, and name other programs by absolute path.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "gen/toolchain.h"

#include "art/error.h"
#include "art/util.h"

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *base, *saved_path, *json;
static size_t json_len;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void write_text(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static void mkdir_p(const char *path)
{
	char buf[4096], *p;

	snprintf(buf, sizeof(buf), "%s", path);
	for (p = buf + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			mkdir(buf, 0755);
			*p = '/';
		}
	mkdir(buf, 0755);
}

/* What the fake tools do: one word per tool, e.g. "compile-fails". */
static void set_mode(const char *mode)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/mode", base);
	write_text(path, mode, 0644);
}

/* The fake clang: versions for discovery; -c writes the object; the link
 * writes agent.wasm (empty module, garbage or nothing); or fails as told. */
static const char clang_script[] =
	"#!/bin/sh\n"
	"read -r mode < '%s/mode'\n"
	"case \"$*\" in *--version*) echo 'fake clang 19.0'; exit 0;; "
	"*-print-libgcc-file-name*) echo /nonexistent/libclang_rt.builtins.a; exit 0;; esac\n"
	"out=; prev=; for a in \"$@\"; do [ \"$prev\" = -o ] && out=$a; prev=$a; done\n"
	"case \"$*\" in *' -c '*)\n"
	"  case $mode in compile-fails) echo \"agent.c:1:1: error: fake failure\" >&2; exit 1;; "
	"hang) exec /bin/sleep 600;; esac\n"
	"  echo obj > \"$out\"; exit 0;;\n"
	"esac\n"
	"case $mode in\n"
	"  link-memory) echo 'wasm-ld: error: initial memory too small, 70000 bytes needed' >&2; exit 1;;\n"
	"  link-nothing) exit 0;;\n"
	"  link-garbage) echo 'not a module' > \"$out\"; exit 0;;\n"
	"  *) printf '\\000asm\\001\\000\\000\\000' > \"$out\"; exit 0;;\n"
	"esac\n";

static void fake_tools(void)
{
	char dir[4096], path[8192], script[8192];

	snprintf(dir, sizeof(dir), "%s/sdk/share/wasi-sysroot/lib/wasm32-wasip1", base);
	mkdir_p(dir);
	snprintf(dir, sizeof(dir), "%s/sdk/bin", base);
	mkdir_p(dir);
	snprintf(path, sizeof(path), "%s/clang", dir);
	snprintf(script, sizeof(script), clang_script, base);
	write_text(path, script, 0755);
	snprintf(dir, sizeof(dir), "%s/bin", base);
	mkdir_p(dir);
	snprintf(path, sizeof(path), "%s/wasm2c", dir);
	write_text(path, "#!/bin/sh\necho 1.0.32\n", 0755);
	snprintf(path, sizeof(path), "%s/wasm-validate", dir);
	snprintf(script, sizeof(script),
		 "#!/bin/sh\nread -r mode < '%s/mode'\ncase $mode in validate-fails) "
		 "echo 'agent.wasm:0000008: error: bad magic' >&2; exit 1;; esac\nexit 0\n", base);
	write_text(path, script, 0755);
	snprintf(path, sizeof(path), "%s/cc", dir);
	write_text(path, "#!/bin/sh\ncase \"$1\" in --version) echo 'cc (fake) 12';; "
			 "-dumpmachine) echo x86_64-linux-gnu;; esac\n", 0755);
	snprintf(dir, sizeof(dir), "%s/sdk", base);
	setenv("WASI_SDK_PATH", dir, 1);
	snprintf(dir, sizeof(dir), "%s/bin", base);
	setenv("PATH", dir, 1);
	set_mode("ok");
}

static int setup(void **state)
{
	const char *tmp = getenv("TMPDIR"), *src = getenv("AF_SRCDIR");
	char *path = NULL;

	(void)state;
	saved_path = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
	if (asprintf(&base, "%s/af-test-tc-fake-XXXXXX", tmp && *tmp ? tmp : "/tmp") < 0 ||
	    !mkdtemp(base))
		return -1;
	if (asprintf(&path, "%s/tests/fixtures/codegen/backup-manager.json",
		     src && *src ? src : ".") < 0 ||
	    art_file_read(&json, &json_len, path, 1 << 20) != 0)
		return -1;
	free(path);
	fake_tools();
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
	free(json);
	return 0;
}

static gen_toolchain *discover(void)
{
	gen_toolchain *tc = NULL;

	if (gen_toolchain_discover(&tc) != 0)
		fail_msg("discover: %s", art_error_last());
	return tc;
}

/* A build that must fail with rc and a message holding each needle. */
static void build_fails(const gen_toolchain *tc, const char *mode, int want, const char *needle1,
			const char *needle2)
{
	char wd[4096];
	gen_result *r = (gen_result *)0x1;
	gen_stage_times t;

	set_mode(mode);
	snprintf(wd, sizeof(wd), "%s/work-%s", base, mode);
	memset(&t, 0xff, sizeof(t));
	if (gen_build_agent(&r, tc, json, json_len, wd, &t) != want)
		fail_msg("%s: %s", mode, art_error_last());
	assert_null(r);
	if (!strstr(art_error_last(), needle1) || (needle2 && !strstr(art_error_last(), needle2)))
		fail_msg("%s: error '%s' does not mention '%s' and '%s'", mode, art_error_last(),
			 needle1, needle2 ? needle2 : "");
	/* the times are filled in on failure too, never negative */
	assert_true(t.total_ms >= 0 && t.total_ms >= t.codegen_ms);
	set_mode("ok");
}

static void test_toolchain_fake__each_failing_step_is_named(void **state)
{
	gen_toolchain *tc = discover();

	(void)state;
	build_fails(tc, "compile-fails", AF_EIO, "clang (compile agent.c) failed (exit status 1)",
		    "agent.c:1:1: error: fake failure");
	build_fails(tc, "link-memory", AF_EIO, "limits.memory_pages is", "raise it");
	build_fails(tc, "link-nothing", AF_ENOTFOUND, "agent.wasm", NULL);
	build_fails(tc, "link-garbage", AF_ECORRUPT, "", NULL);
	build_fails(tc, "validate-fails", AF_EIO, "wasm-validate failed (exit status 1)",
		    "bad magic");
	/* an empty module: it has none of the agent's exports */
	build_fails(tc, "empty-module", AF_EVERSION, "backup-manager: missing export 'memory'", NULL);
	gen_toolchain_free(tc);
}

static void test_toolchain_fake__a_hanging_tool_is_killed(void **state)
{
	gen_toolchain *tc = discover();

	(void)state;
	gen_toolchain_set_timeout(tc, 200);
	gen_toolchain_set_timeout(tc, 0); /* ignored: the 200 ms stay */
	build_fails(tc, "hang", AF_EIO, "timed out after 200 ms and was killed",
		    "clang (compile agent.c)");
	gen_toolchain_free(tc);
}

/* Entries of a folder, "." and ".." left out. */
static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void test_toolchain_fake__guest_cache(void **state)
{
	gen_toolchain *tc = discover();
	char cache[4096], file[4096];

	(void)state;
	snprintf(file, sizeof(file), "%s/not-a-folder", base);
	write_text(file, "x", 0644);
	assert_int_equal(gen_toolchain_set_guest_cache(tc, file), AF_EIO);
	assert_non_null(strstr(art_error_last(), "guest cache"));
	snprintf(cache, sizeof(cache), "%s/missing-cache", base);
	assert_int_equal(gen_toolchain_set_guest_cache(tc, cache), AF_EIO);
	assert_int_equal(gen_toolchain_set_guest_cache(NULL, cache), AF_EINVAL);

	snprintf(cache, sizeof(cache), "%s/cache", base);
	assert_int_equal(mkdir(cache, 0755), 0);
	assert_int_equal(gen_toolchain_set_guest_cache(tc, cache), 0);
	/* the guest objects are compiled into the cache, then linked from it */
	build_fails(tc, "empty-module", AF_EVERSION, "missing export", NULL);
	assert_int_equal(count_entries(cache), 1); /* one entry, no temporary folder left */
	/* a second build uses the entry as it is */
	build_fails(tc, "link-garbage", AF_ECORRUPT, "", NULL);
	/* a compile failure in a fresh cache leaves no temporary folder either */
	snprintf(cache, sizeof(cache), "%s/cache2", base);
	assert_int_equal(mkdir(cache, 0755), 0);
	assert_int_equal(gen_toolchain_set_guest_cache(tc, cache), 0);
	set_mode("compile-fails");
	{
		gen_result *r = NULL;
		char wd[4096];

		snprintf(wd, sizeof(wd), "%s/work-cache2", base);
		assert_int_equal(gen_build_agent(&r, tc, json, json_len, wd, NULL), AF_EIO);
		assert_null(r);
	}
	set_mode("ok");
	assert_int_equal(count_entries(cache), 0);
	assert_int_equal(gen_toolchain_set_guest_cache(tc, NULL), 0);
	gen_toolchain_free(tc);
}

static void test_toolchain_fake__bad_arguments_and_work_folders(void **state)
{
	gen_toolchain *tc = discover();
	gen_result *r = NULL;
	char path[4096];

	(void)state;
	assert_int_equal(gen_build_agent(NULL, tc, json, json_len, base, NULL), AF_EINVAL);
	assert_int_equal(gen_build_agent(&r, NULL, json, json_len, base, NULL), AF_EINVAL);
	assert_int_equal(gen_build_agent(&r, tc, NULL, 0, base, NULL), AF_EINVAL);
	assert_int_equal(gen_build_agent(&r, tc, json, json_len, NULL, NULL), AF_EINVAL);
	/* the work folder's parent is a file */
	snprintf(path, sizeof(path), "%s/file", base);
	write_text(path, "x", 0644);
	snprintf(path, sizeof(path), "%s/file/work", base);
	assert_int_equal(gen_build_agent(&r, tc, json, json_len, path, NULL), AF_EIO);
	assert_non_null(strstr(art_error_last(), "cannot create"));
	assert_null(r);
	/* its tmp is a file */
	snprintf(path, sizeof(path), "%s/work-tmpfile", base);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/work-tmpfile/tmp", base);
	write_text(path, "x", 0644);
	snprintf(path, sizeof(path), "%s/work-tmpfile", base);
	/* mkdir says EEXIST: the build goes on and the tools fail in it */
	assert_true(gen_build_agent(&r, tc, json, json_len, path, NULL) < 0);
	assert_null(r);
	/* a template the generator refuses stops before any tool runs */
	set_mode("compile-fails");
	snprintf(path, sizeof(path), "%s/work-refused", base);
	assert_int_equal(gen_build_agent(&r, tc, "{\"name\":\"x\"}", 12, path, NULL), AF_EINVAL);
	assert_null(strstr(art_error_last(), "fake failure"));
	set_mode("ok");
	gen_toolchain_free(tc);
	/* accessors on NULL */
	assert_string_equal(gen_toolchain_id(NULL), "");
	assert_string_equal(gen_toolchain_compat_id(NULL), "");
	assert_string_equal(gen_toolchain_wasm_rt(NULL), "");
	assert_string_equal(gen_toolchain_target(NULL), "");
	gen_toolchain_set_timeout(NULL, 5);
}

/* A guest cache on another file system: the objects cannot be hard-linked
 * into the work folder and are copied (skipped where /dev/shm is not
 * another file system). */
static void test_toolchain_fake__guest_cache_on_another_file_system(void **state)
{
	gen_toolchain *tc = discover();
	char cache[] = "/dev/shm/af-test-cache-XXXXXX";
	struct stat a, b;

	(void)state;
	if (stat("/dev/shm", &a) != 0 || stat(base, &b) != 0 || a.st_dev == b.st_dev ||
	    !mkdtemp(cache)) {
		gen_toolchain_free(tc);
		skip();
		return;
	}
	assert_int_equal(gen_toolchain_set_guest_cache(tc, cache), 0);
	build_fails(tc, "link-garbage", AF_ECORRUPT, "", NULL);
	{
		char obj[8192];
		struct stat st;

		/* copied, not linked: one link each */
		snprintf(obj, sizeof(obj), "%s/work-link-garbage/af_json.o", base);
		assert_int_equal(stat(obj, &st), 0);
		assert_int_equal(st.st_nlink, 1);
	}
	nftw(cache, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	gen_toolchain_free(tc);
}

/* The Debian layout when clang-19 is not in PATH: LLVM's own folder is used
 * (skipped where it is not installed); a clang-19 in PATH whose resource
 * folder has no wasm builtins is refused, naming the package. */
static void test_toolchain_fake__debian_layout(void **state)
{
	char dir[4096], path[8192], *saved_sdk = getenv("WASI_SDK_PATH") ? strdup(getenv("WASI_SDK_PATH")) : NULL;
	gen_toolchain *tc = NULL;
	int rc;

	(void)state;
	if (access("/usr/lib/llvm-19/bin/clang", X_OK) != 0 ||
	    access("/usr/lib/wasm32-wasi/libc.a", R_OK) != 0) {
		free(saved_sdk);
		skip();
		return;
	}
	unsetenv("WASI_SDK_PATH");
	rc = gen_toolchain_discover(&tc);
	if (rc != 0)
		fail_msg("discover: %s", art_error_last());
	assert_null(strstr(gen_toolchain_id(tc), "fake clang"));
	gen_toolchain_free(tc);
	tc = NULL;
	/* a clang-19 in PATH with no builtins in its resource folder */
	snprintf(dir, sizeof(dir), "%s/bin", base);
	snprintf(path, sizeof(path), "%s/clang-19", dir);
	write_text(path, "#!/bin/sh\ncase \"$*\" in *-print-resource-dir*) echo /nonexistent/rd;; "
			 "*) echo 'fake clang-19';; esac\n", 0755);
	assert_int_equal(gen_toolchain_discover(&tc), AF_ENOTFOUND);
	assert_null(tc);
	assert_non_null(strstr(art_error_last(), "libclang-rt-19-dev-wasm32"));
	assert_int_equal(unlink(path), 0);
	if (saved_sdk)
		setenv("WASI_SDK_PATH", saved_sdk, 1);
	free(saved_sdk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_toolchain_fake__each_failing_step_is_named),
		cmocka_unit_test(test_toolchain_fake__a_hanging_tool_is_killed),
		cmocka_unit_test(test_toolchain_fake__guest_cache),
		cmocka_unit_test(test_toolchain_fake__bad_arguments_and_work_folders),
		cmocka_unit_test(test_toolchain_fake__guest_cache_on_another_file_system),
		cmocka_unit_test(test_toolchain_fake__debian_layout),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
