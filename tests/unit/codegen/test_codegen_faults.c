/*
 * test_codegen_faults.c - the C generator, the embedded guest sources and
 * toolchain discovery when allocations fail: every malloc, calloc, realloc,
 * strdup, strndup, asprintf and vasprintf of our code in turn, and jansson's
 * through its hooks (tests/unit/faultinject.h; the Makefile links this
 * binary with --wrap for them). Each run must give exactly the output of a
 * run without failures, or AF_ENOMEM; never a template error for a valid
 * template, nor different C. Under CONFIG=asan, no failed run may leak.
 * Also: EVP_MD_CTX_new failing in the guest digest, writing the guest
 * sources where that cannot work, and posix_spawn's set-up calls failing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "faultinject.h"

#include "art/error.h"
#include "art/util.h"
#include "gen/cgen.h"
#include "gen/embed.h"
#include "gen/toolchain.h"
#include "../../../codegen/src/gen_spawn.h"

#include <ftw.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *__real_strndup(const char *s, size_t n);
char *__wrap_strndup(const char *s, size_t n);
int __real_vasprintf(char **out, const char *fmt, va_list ap);
int __wrap_vasprintf(char **out, const char *fmt, va_list ap);
int __wrap_asprintf(char **out, const char *fmt, ...);
EVP_MD_CTX *__real_EVP_MD_CTX_new(void);
EVP_MD_CTX *__wrap_EVP_MD_CTX_new(void);

char *__wrap_strndup(const char *s, size_t n)
{
	return fi_should_fail() ? NULL : __real_strndup(s, n);
}

/* Where _FORTIFY_SOURCE turns asprintf into __asprintf_chk (release
 * builds) these are not reached: the counts then differ by build. */
int __wrap_vasprintf(char **out, const char *fmt, va_list ap)
{
	if (fi_should_fail()) {
		*out = NULL;
		return -1;
	}
	return __real_vasprintf(out, fmt, ap);
}

int __wrap_asprintf(char **out, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = __wrap_vasprintf(out, fmt, ap);
	va_end(ap);
	return n;
}

static bool md_ctx_fails;

EVP_MD_CTX *__wrap_EVP_MD_CTX_new(void)
{
	return md_ctx_fails ? NULL : __real_EVP_MD_CTX_new();
}

/* jansson's allocations fail too, except where json_faults is off: its lexer
 * drops a byte when growing its text buffer fails (load.c: lex_save ignores
 * strbuffer_append_byte's result), so a parse can succeed with a string
 * changed; nothing the caller can see. */
static bool json_faults = true;

/* posix_spawn's set-up calls: the one named in spawn_fails fails (ENOMEM). */
static const char *spawn_fails = "";

int __real_posix_spawn_file_actions_init(posix_spawn_file_actions_t *fa);
int __wrap_posix_spawn_file_actions_init(posix_spawn_file_actions_t *fa);
int __real_posix_spawnattr_init(posix_spawnattr_t *a);
int __wrap_posix_spawnattr_init(posix_spawnattr_t *a);
int __real_posix_spawn_file_actions_adddup2(posix_spawn_file_actions_t *fa, int fd, int to);
int __wrap_posix_spawn_file_actions_adddup2(posix_spawn_file_actions_t *fa, int fd, int to);
int __real_posix_spawnattr_setpgroup(posix_spawnattr_t *a, pid_t g);
int __wrap_posix_spawnattr_setpgroup(posix_spawnattr_t *a, pid_t g);

int __wrap_posix_spawn_file_actions_init(posix_spawn_file_actions_t *fa)
{
	return strcmp(spawn_fails, "file_actions_init") == 0 ? ENOMEM
							     : __real_posix_spawn_file_actions_init(fa);
}

int __wrap_posix_spawnattr_init(posix_spawnattr_t *a)
{
	return strcmp(spawn_fails, "attr_init") == 0 ? ENOMEM : __real_posix_spawnattr_init(a);
}

int __wrap_posix_spawn_file_actions_adddup2(posix_spawn_file_actions_t *fa, int fd, int to)
{
	return strcmp(spawn_fails, "adddup2") == 0 ? ENOMEM
						   : __real_posix_spawn_file_actions_adddup2(fa, fd, to);
}

int __wrap_posix_spawnattr_setpgroup(posix_spawnattr_t *a, pid_t g)
{
	return strcmp(spawn_fails, "setpgroup") == 0 ? ENOMEM : __real_posix_spawnattr_setpgroup(a, g);
}

static void *json_alloc(size_t n)
{
	return json_faults ? __wrap_malloc(n) : __real_malloc(n);
}

/* ---- helpers ---------------------------------------------------------------- */

static const char *srcdir(void)
{
	const char *s = getenv("AF_SRCDIR");

	return s && *s ? s : ".";
}

static char *read_src(const char *rel, size_t *len)
{
	char *path = NULL, *data = NULL;

	assert_true(asprintf(&path, "%s/%s", srcdir(), rel) > 0);
	if (art_file_read(&data, len, path, 1 << 22) != 0)
		fail_msg("%s: %s", path, art_error_last());
	free(path);
	return data;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static char *temp_dir(void)
{
	const char *tmp = getenv("TMPDIR");
	char *d = NULL;

	assert_true(asprintf(&d, "%s/af-test-gen-faults-XXXXXX", tmp && *tmp ? tmp : "/tmp") > 0);
	assert_non_null(mkdtemp(d));
	return d;
}

static void remove_dir(char *d)
{
	if (d)
		nftw(d, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(d);
}

static void torture(const fi_op *op, long min)
{
	long n = fi_torture(op);

	if (n < min)
		fail_msg("%s: %ld failure points (want >= %ld)", op->name, n, min);
}

/* ---- the C generator ------------------------------------------------------------ */

typedef struct cgen_ctx {
	const char *name;
	char *json;
	size_t len;
	int want_rc;
	char *want_c;        /* clean run's C, or its error message */
	size_t want_len;
	gen_agent want_agent;
} cgen_ctx;

static int run_cgen(void *ctx)
{
	cgen_ctx *c = ctx;
	char *out = NULL;
	size_t len = 0;
	gen_agent *a = NULL;
	int rc = gen_c_generate(&out, &len, c->json, c->len);

	if (rc == AF_ENOMEM)
		goto done;
	if (rc != c->want_rc) {
		fprintf(stderr, "%s: %d (want %d): %s\n", c->name, rc, c->want_rc, art_error_last());
		rc = AF_EINTERNAL;
		goto done;
	}
	if (rc != 0) {
		rc = strcmp(art_error_last(), c->want_c) == 0 ? 0 : AF_EINTERNAL;
		if (rc)
			fprintf(stderr, "%s: '%s' (want '%s')\n", c->name, art_error_last(), c->want_c);
		goto done;
	}
	if (len != c->want_len || memcmp(out, c->want_c, len) != 0) {
		fprintf(stderr, "%s: the C differs from a clean run's\n", c->name);
		rc = AF_EINTERNAL;
		goto done;
	}
	if ((rc = gen_agent_parse(&a, c->json, c->len)) != 0)
		goto done;
	if (strcmp(a->name, c->want_agent.name) != 0 || a->abi_caps != c->want_agent.abi_caps ||
	    a->n_capabilities != c->want_agent.n_capabilities ||
	    a->n_tools != c->want_agent.n_tools || a->n_steps != c->want_agent.n_steps ||
	    a->max_steps != c->want_agent.max_steps || a->llm != c->want_agent.llm)
		rc = AF_EINTERNAL;
done:
	gen_agent_free(a);
	free(out);
	return rc;
}

static void cgen_case(const char *name, char *json, size_t len, int want_rc, long min)
{
	cgen_ctx c = {name, json, len, 0, NULL, 0, {0}};
	fi_op op = {name, run_cgen, NULL, &c};
	gen_agent *a = NULL;

	c.want_rc = gen_c_generate(&c.want_c, &c.want_len, json, len);
	if (c.want_rc != want_rc)
		fail_msg("%s: %d (want %d): %s", name, c.want_rc, want_rc, art_error_last());
	if (want_rc == 0) {
		assert_int_equal(gen_agent_parse(&a, json, len), 0);
		c.want_agent = *a;
	} else {
		assert_null(c.want_c);
		c.want_c = strdup(art_error_last());
		assert_non_null(strstr(c.want_c, "codegen"));
	}
	torture(&op, min);
	gen_agent_free(a);
	free(c.want_c);
}

static void test_codegen_faults__generate_fixtures(void **state)
{
	static const char *const fixtures[] = {
		"backup-manager", "security-expert", "hostile", "typed-steps", "no-clock-workflow",
	};
	size_t i, len;

	(void)state;
	json_faults = false; /* a parse may succeed with a byte dropped (above) */
	for (i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
		char *rel = NULL, *json;

		assert_true(asprintf(&rel, "tests/fixtures/codegen/%s.json", fixtures[i]) > 0);
		json = read_src(rel, &len);
		cgen_case(fixtures[i], json, len, 0, 20);
		free(json);
		free(rel);
	}
	json_faults = true;
}

/* Templates the generator refuses: the same refusal with failures, or ENOMEM. */
static const struct {
	const char *json;
	int rc;
} refused[] = {
	{"{\"name\":\"a\",\"version\":\"1.0.0\",\"capabilities\":[\"log\"],"
	 "\"tools\":[{\"name\":\"t\",\"capability\":\"kv.read\"}],\"steps\":[{\"tool\":\"t\"}]}",
	 AF_EINVAL},
	{"{\"name\":\"a\",\"version\":\"1.0.0\",\"capabilities\":[\"log\",\"tool_call\"],"
	 "\"tools\":[{\"name\":\"t\",\"capability\":\"tool_call\"},{\"name\":\"t\","
	 "\"capability\":\"tool_call\"}],\"steps\":[{\"tool\":\"t\"}]}",
	 AF_EINVAL},
	{"{\"name\":\"a\",\"version\":\"1.0.0\",\"limits\":{\"max_steps\":0},"
	 "\"steps\":[{\"tool\":\"t\"}]}",
	 AF_EINVAL},
	{"[1, 2]", AF_ESYNTAX},
	{"{\"name\": \"a\", \"name\": \"b\"}", AF_ESYNTAX},
	{"{\"name\":", AF_ESYNTAX},
};

static void test_codegen_faults__refusals_stay_refusals(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		char *copy = strdup(refused[i].json);
		char *c = NULL;
		size_t len = 0;
		int rc;

		assert_non_null(copy);
		rc = gen_c_generate(&c, &len, copy, strlen(copy));
		if (rc != refused[i].rc)
			fail_msg("refused[%zu]: %d: %s", i, rc, art_error_last());
		cgen_case("refused", copy, strlen(copy), refused[i].rc, 0);
		free(copy);
	}
}

/* ---- the embedded guest sources ----------------------------------------------- */

static int run_guest_write(void *ctx)
{
	const char *base = ctx;
	char *dir = NULL, *path = NULL, *data = NULL;
	const gen_embedded_file *f = gen_guest_file("af_json.c");
	size_t len = 0;
	int rc;

	/* test set-up, not counted: the wrappers are armed, so fail softly */
	if (!f)
		return AF_EINTERNAL;
	if (asprintf(&dir, "%s/run", base) < 0)
		return AF_ENOMEM;
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	if (mkdir(dir, 0755) != 0) {
		free(dir);
		return AF_EIO;
	}
	rc = gen_guest_write(dir);
	if (rc == 0) {
		if (asprintf(&path, "%s/af_json.c", dir) < 0) {
			rc = AF_ENOMEM;
		} else if ((rc = art_file_read(&data, &len, path, 1 << 22)) == 0 &&
			   (len != f->len || memcmp(data, f->data, len) != 0)) {
			rc = AF_EINTERNAL;
		}
	}
	free(data);
	free(path);
	free(dir);
	return rc;
}

static void test_codegen_faults__guest_sources(void **state)
{
	char *base = temp_dir(), *path = NULL, d1[65], d2[65];
	fi_op op = {"guest sources", run_guest_write, NULL, base};
	struct stat st;

	(void)state;
	torture(&op, 0);

	/* the digest: stable, and all zeros (matching no real id) without a context */
	gen_guest_digest(d1);
	gen_guest_digest(d2);
	assert_string_equal(d1, d2);
	assert_int_equal(strlen(d1), 64);
	assert_int_not_equal(strspn(d1, "0"), 64);
	md_ctx_fails = true;
	gen_guest_digest(d2);
	md_ctx_fails = false;
	assert_int_equal(strspn(d2, "0"), 64);

	assert_null(gen_guest_file(NULL));
	assert_null(gen_guest_file("nope.c"));
	assert_non_null(gen_guest_file("art/wasm.h"));

	/* a folder that does not exist, and one whose subfolder is a file */
	assert_true(asprintf(&path, "%s/missing/deeper", base) > 0);
	assert_int_equal(gen_guest_write(path), AF_EIO);
	assert_non_null(strstr(art_error_last(), "cannot"));
	assert_int_not_equal(stat(path, &st), 0);
	free(path);
	assert_true(asprintf(&path, "%s/blocked", base) > 0);
	assert_int_equal(mkdir(path, 0755), 0);
	free(path);
	assert_true(asprintf(&path, "%s/blocked/art", base) > 0);
	assert_int_equal(art_file_write_atomic(path, "x", 1, 0644), 0);
	free(path);
	assert_true(asprintf(&path, "%s/blocked", base) > 0);
	assert_int_equal(gen_guest_write(path), AF_EIO);
	assert_non_null(strstr(art_error_last(), "/blocked/art"));
	free(path);
	/* a full disk: the write or the close fails and is reported */
	if (stat("/dev/full", &st) == 0) {
		const gen_embedded_file *f = &gen_embedded_files[0];
		char *full = NULL;

		assert_true(asprintf(&path, "%s/full", base) > 0);
		assert_int_equal(mkdir(path, 0755), 0);
		if (strchr(f->name, '/')) {
			char *sub = NULL;

			assert_true(asprintf(&sub, "%s/%.*s", path, (int)(strrchr(f->name, '/') - f->name),
					     f->name) > 0);
			assert_int_equal(mkdir(sub, 0755), 0);
			free(sub);
		}
		assert_true(asprintf(&full, "%s/%s", path, f->name) > 0);
		assert_int_equal(symlink("/dev/full", full), 0);
		assert_int_equal(gen_guest_write(path), AF_EIO);
		assert_non_null(strstr(art_error_last(), f->name));
		free(full);
		free(path);
	}
	remove_dir(base);
}

/* ---- toolchain discovery with fake tools ----------------------------------------- */

static char *fake_base, *saved_path;

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

static void fake_tools(void)
{
	char dir[4096];

	snprintf(dir, sizeof(dir), "%s/sdk/share/wasi-sysroot/lib/wasm32-wasip1", fake_base);
	mkdir_p(dir);
	snprintf(dir, sizeof(dir), "%s/sdk/bin", fake_base);
	mkdir_p(dir);
	write_script(dir, "clang",
		     "case \"$*\" in *--version*) echo 'fake clang 19.0 ';; "
		     "*-print-libgcc-file-name*) echo /nonexistent/libclang_rt.builtins.a;; esac");
	snprintf(dir, sizeof(dir), "%s/bin", fake_base);
	mkdir_p(dir);
	write_script(dir, "wasm2c", "echo 1.0.32");
	write_script(dir, "wasm-validate", "exit 0");
	write_script(dir, "cc", "case \"$1\" in --version) echo 'cc (fake) 12';; "
				"-dumpmachine) echo x86_64-linux-gnu;; esac");
	snprintf(dir, sizeof(dir), "%s/sdk", fake_base);
	setenv("WASI_SDK_PATH", dir, 1);
	snprintf(dir, sizeof(dir), "%s/bin", fake_base);
	setenv("PATH", dir, 1);
}

typedef struct discover_ctx {
	char *want_id, *want_compat;
	char *cache;
} discover_ctx;

static int run_discover(void *ctx)
{
	discover_ctx *c = ctx;
	gen_toolchain *tc = NULL;
	int rc = gen_toolchain_discover(&tc);

	if (rc == 0 && (rc = gen_toolchain_set_guest_cache(tc, c->cache)) == 0 &&
	    (strcmp(gen_toolchain_id(tc), c->want_id) != 0 ||
	     strcmp(gen_toolchain_compat_id(tc), c->want_compat) != 0)) {
		fprintf(stderr, "ids differ: %s\n", gen_toolchain_id(tc));
		rc = AF_EINTERNAL;
	}
	gen_toolchain_free(tc);
	return rc;
}

static void test_codegen_faults__toolchain_discovery(void **state)
{
	const char *tmp = getenv("TMPDIR");
	discover_ctx c = {NULL, NULL, NULL};
	fi_op op = {"toolchain discovery", run_discover, NULL, &c};
	gen_toolchain *tc = NULL;

	(void)state;
	saved_path = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
	assert_true(asprintf(&fake_base, "%s/af-test-gen-faults-XXXXXX", tmp && *tmp ? tmp : "/tmp") > 0);
	assert_non_null(mkdtemp(fake_base));
	fake_tools();
	assert_true(asprintf(&c.cache, "%s/cache", fake_base) > 0);
	assert_int_equal(mkdir(c.cache, 0755), 0);
	if (gen_toolchain_discover(&tc) != 0)
		fail_msg("discover: %s", art_error_last());
	assert_int_equal(gen_toolchain_set_guest_cache(tc, c.cache), 0);
	c.want_id = strdup(gen_toolchain_id(tc));
	c.want_compat = strdup(gen_toolchain_compat_id(tc));
	assert_non_null(strstr(c.want_id, "clang=fake clang 19.0;"));
	gen_toolchain_free(tc);
	torture(&op, 10);
	free(c.want_id);
	free(c.want_compat);
	free(c.cache);
	if (saved_path)
		setenv("PATH", saved_path, 1);
	unsetenv("WASI_SDK_PATH");
	free(saved_path);
	remove_dir(fake_base);
}

/* A set-up call of posix_spawn that fails: reported, nothing started. */
static void test_codegen_faults__spawn_set_up_failures(void **state)
{
	static const char *const calls[] = {"file_actions_init", "attr_init", "adddup2", "setpgroup"};
	const char *const argv[] = {"/bin/sh", "-c", "echo ran", NULL};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
		art_buf out = ART_BUF_INIT;
		int status = 5;

		spawn_fails = calls[i];
		assert_int_equal(gen__spawn(argv, NULL, "/tmp", 30000, &out, &status), AF_ENOMEM);
		spawn_fails = "";
		assert_int_equal(status, -1);
		assert_int_equal(out.len, 0);
		art_buf_free(&out);
	}
	/* and with the calls working again it runs */
	{
		art_buf out = ART_BUF_INIT;
		int status = 5;

		assert_int_equal(gen__spawn(argv, NULL, NULL, 30000, &out, &status), 0);
		assert_int_equal(status, 0);
		assert_string_equal(out.data, "ran\n");
		art_buf_free(&out);
	}
}

static int setup(void **state)
{
	(void)state;
	json_set_alloc_funcs(json_alloc, free);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_codegen_faults__generate_fixtures),
		cmocka_unit_test(test_codegen_faults__refusals_stay_refusals),
		cmocka_unit_test(test_codegen_faults__guest_sources),
		cmocka_unit_test(test_codegen_faults__toolchain_discovery),
		cmocka_unit_test(test_codegen_faults__spawn_set_up_failures),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
