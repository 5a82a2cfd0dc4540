/*
 * test_manifest_oom.c - building, serializing and parsing a manifest when any
 * one allocation fails.
 *
 * Linked with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,
 * --wrap=strndup (see the Makefile): every allocation our code makes goes
 * through the wrappers below, and jansson's too (json_set_alloc_funcs). The
 * test fails the 1st, 2nd, ... allocation in turn until a whole run needs no
 * failure; each step must answer 0 or a clean AF_ENOMEM (never crash, never
 * another code), and under ASan nothing may leak.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "art/error.h"
#include "art/manifest.h"
#include "art/util.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t k, size_t n);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

/* 0: never fail; k > 0: the k-th allocation from now fails (once). */
static long fail_countdown;
static bool failed;

static bool should_fail(void)
{
	if (fail_countdown > 0 && --fail_countdown == 0) {
		failed = true;
		return true;
	}
	return false;
}

void *__wrap_malloc(size_t n) { return should_fail() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t k, size_t n) { return should_fail() ? NULL : __real_calloc(k, n); }
void *__wrap_realloc(void *p, size_t n) { return should_fail() ? NULL : __real_realloc(p, n); }
char *__wrap_strdup(const char *s) { return should_fail() ? NULL : __real_strdup(s); }
char *__wrap_strndup(const char *s, size_t n) { return should_fail() ? NULL : __real_strndup(s, n); }

/* Set when the failed allocation was one of jansson's. */
static bool failed_in_jansson;

static void *json_alloc(size_t n)
{
	bool before = failed;
	void *p = __wrap_malloc(n);

	if (!before && failed)
		failed_in_jansson = true;
	return p;
}

#define COMPAT "x86_64-linux-gnu/wasm-rt-1.0.32/abi-1/cc-12"

static const char d_resolved[] = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
static const char d_policy[] = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
static const char commit[] = "0123456789abcdef0123456789abcdef01234567";

static int ok_or_enomem(int rc)
{
	if (rc != 0 && rc != AF_ENOMEM)
		fail_msg("allocation failure answered %d (%s), want AF_ENOMEM", rc, art_error_last());
	return rc;
}

/* One full manifest life: new, every part, provenance, serialize, parse back. */
static int one_run(void)
{
	art_manifest_import imports[] = {{"af", "log", "func"},
					 {"wasi_snapshot_preview1", "fd_write", "func"}};
	art_manifest_export exports[] = {{"memory", "memory"}, {"af_handle", "func"}};
	const char *caps[] = {"log", "clock"};
	const char *hosts[] = {"api.example.com", "*.svc.cluster.local"};
	art_manifest_info info = {
		.name = "alpha", .version = "1.2.0", .resolved_template_digest = d_resolved,
		.git_commit = commit, .policy_digest = d_policy, .toolchain_id = "clang-19",
		.native_compat_id = COMPAT, .target_triple = "x86_64-linux-gnu",
		.guest_abi_version = 1, .imports = imports, .n_imports = 2, .exports = exports,
		.n_exports = 2, .capabilities = caps, .n_capabilities = 2, .hosts = hosts,
		.n_hosts = 2};
	art_provenance_info prov = {"https://git.example.com/agents.git", "main",
				    "https://agentfactory.dev/builder/v1"};
	char h[65], *p = NULL, *bytes = NULL;
	size_t plen = 0, len = 0;
	art_manifest *m = NULL, *back = NULL;
	int rc;

	art_sha256_hex("x", 1, h);
	if ((rc = ok_or_enomem(art_manifest_new(&m, &info))) < 0) {
		assert_null(m);
		goto cleanup;
	}
	if ((rc = ok_or_enomem(art_manifest_add_part(m, ART_PART_WASM, ART_MEDIA_WASM, h, 1))) < 0 ||
	    (rc = ok_or_enomem(art_manifest_add_native(m, COMPAT, h, 1))) < 0 ||
	    (rc = ok_or_enomem(art_manifest_add_part(m, ART_PART_SOURCE, ART_MEDIA_SOURCE, h,
						      1))) < 0 ||
	    (rc = ok_or_enomem(art_manifest_add_part(m, "extra/notes.txt", "text/plain", h,
						      1))) < 0 ||
	    (rc = ok_or_enomem(art_manifest_provenance(&p, &plen, m, &prov))) < 0 ||
	    (rc = ok_or_enomem(art_manifest_add_part(m, ART_PART_PROVENANCE,
						      ART_MEDIA_PROVENANCE, h, plen))) < 0 ||
	    (rc = ok_or_enomem(art_manifest_serialize(&bytes, &len, m))) < 0)
		goto cleanup;
	/* jansson's lexer reports some of its own allocation failures as a
	 * syntax error (json_error_code says "invalid syntax"), which the parser
	 * cannot tell from bad data: only there is AF_ECORRUPT acceptable. */
	rc = art_manifest_parse(&back, bytes, len);
	if (rc == AF_ECORRUPT && failed_in_jansson)
		rc = AF_ENOMEM;
	if ((rc = ok_or_enomem(rc)) < 0)
		goto cleanup;
	/* A run that got through whole built the same manifest as always. */
	assert_int_equal(back->n_parts, 5);
	assert_string_equal(back->name, "alpha");
cleanup:
	art_manifest_free(back);
	art_manifest_free(m);
	free(bytes);
	free(p);
	return rc;
}

static void test_manifest_oom__every_allocation_failure_is_clean(void **state)
{
	long k;
	int failures = 0;

	(void)state;
	json_set_alloc_funcs(json_alloc, free);
	for (k = 1; k < 100000; k++) {
		int rc;

		failed = false;
		failed_in_jansson = false;
		fail_countdown = k;
		rc = one_run();
		fail_countdown = 0;
		if (!failed) {
			assert_int_equal(rc, 0);
			break;
		}
		if (rc == AF_ENOMEM)
			failures++;
	}
	assert_true(k > 20);   /* the run allocates; the wrappers did see it */
	assert_true(failures > 20);
}

/* The part adders are safe even where a caller ignored a failed
 * art_manifest_new (out of memory: m is NULL) or passes no name. */
static void test_manifest_oom__add_part_after_failed_new(void **state)
{
	char h[65];
	art_manifest_info info = {.name = "alpha"};
	art_manifest *m = NULL;

	(void)state;
	art_sha256_hex("x", 1, h);
	assert_int_not_equal(art_manifest_new(&m, &info), 0);
	assert_null(m);
	assert_int_equal(art_manifest_add_part(m, ART_PART_WASM, ART_MEDIA_WASM, h, 1), AF_EINVAL);
	assert_int_equal(art_manifest_add_part(m, "extra", "text/plain", h, 1), AF_EINVAL);
	assert_int_equal(art_manifest_add_native(m, COMPAT, h, 1), AF_EINVAL);
	assert_int_equal(art_manifest_add_part(m, NULL, ART_MEDIA_WASM, h, 1), AF_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_manifest_oom__every_allocation_failure_is_clean),
		cmocka_unit_test(test_manifest_oom__add_part_after_failed_new),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
