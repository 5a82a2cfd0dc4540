/*
 * test_oci_faults.c - the registry client and the registry layout of a
 * store (art/oci.h) when an allocation fails: every malloc, calloc, realloc
 * and strdup of a push and of a pull in turn (tests/unit/faultinject.h),
 * against the in-test registry of oci_registry_fixture.h (whose own memory
 * never fails). Each failed run must answer AF_ENOMEM (or succeed), leak
 * nothing (run it under CONFIG=asan), and a failed pull must leave the
 * store without anything of what it pulled.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "faultinject.h"

/* the registry's memory is not the code under test */
#define REG_MALLOC __real_malloc
#define REG_CALLOC __real_calloc
#define REG_REALLOC __real_realloc
#include "oci_registry_fixture.h"

#include "art/error.h"
#include "art/keyring.h"
#include "art/keys.h"
#include "art/manifest.h"
#include "art/oci.h"
#include "art/release.h"
#include "art/store.h"
#include "art/util.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define T_2026 ((time_t)1767225600)
#define NOW (T_2026 + 86400)
#define LATER (NOW + 30 * (time_t)86400)
#define COMPAT "x86_64-linux-gnu/wasm-rt-1.0.32/guest-abi-1"

static struct {
	art_key *builder, *rm1;
	art_keyring *kr;
	char *src, *tmp, *dst;
	char url[128];
} fx;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void remove_tree(const char *d)
{
	if (d)
		nftw(d, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static char *temp_dir(void)
{
	char *d = strdup("/tmp/af-test-ocifaults-XXXXXX");

	if (!d || !mkdtemp(d)) {
		free(d);
		return NULL;
	}
	return d;
}

static int put_agent(art_store_txn *t, const char *name, const char *version)
{
	const char *caps[] = {"log"};
	art_manifest_import imports[] = {{"af", "log", "func"}};
	art_manifest_export exports[] = {{"af_handle", "func"}};
	char resolved[72], text[128], wasm[256], native[256], source[256];
	art_manifest_info info;
	art_provenance_info prov = {"https://git.example.com/agents.git", "main",
				    "https://agentfactory.dev/builder/v1"};
	art_provenance_extra extra;
	art_build_parts parts;

	snprintf(text, sizeof(text), "%s@%s", name, version);
	art_manifest_digest(resolved, text, strlen(text));
	snprintf(wasm, sizeof(wasm), "\\0asm wasm of %s", text);
	snprintf(native, sizeof(native), "ELF native code of %s", text);
	snprintf(source, sizeof(source), "/* generated C of %s */", text);
	memset(&info, 0, sizeof(info));
	info.name = name;
	info.version = version;
	info.resolved_template_digest = resolved;
	info.git_commit = "0123456789abcdef0123456789abcdef01234567";
	info.policy_digest = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
	info.toolchain_id = "clang-19/wasi-libc/wabt-1.0.32";
	info.native_compat_id = COMPAT;
	info.target_triple = "x86_64-linux-gnu";
	info.guest_abi_version = 1;
	info.imports = imports;
	info.n_imports = 1;
	info.exports = exports;
	info.n_exports = 1;
	info.capabilities = caps;
	info.n_capabilities = 1;
	memset(&extra, 0, sizeof(extra));
	extra.invocation_id = "https://ci.example.com/jobs/1";
	extra.started_on = T_2026;
	extra.finished_on = T_2026 + 5;
	parts.wasm = wasm;
	parts.wasm_len = strlen(wasm);
	parts.native = native;
	parts.native_len = strlen(native);
	parts.source = source;
	parts.source_len = strlen(source);
	return art_store_put_build_ex(t, NULL, &info, &prov, &extra, &parts, fx.builder);
}

static int make_source(void)
{
	static const char *const r1[] = {"alpha@1.0.0"};
	const art_key *keys[] = {fx.rm1};
	art_store *s = NULL;
	art_store_txn *t = NULL;
	int rc;

	if ((rc = art_store_open(&s, fx.src, ART_STORE_CREATE)) < 0)
		return rc;
	if ((rc = art_store_txn_begin(&t, s)) == 0) {
		if ((rc = put_agent(t, "alpha", "1.0.0")) == 0)
			rc = art_store_txn_commit(t);
		else
			art_store_txn_abort(t);
	}
	if (rc == 0)
		rc = art_release_create(NULL, s, fx.kr, fx.rm1, r1, 1, LATER, NOW);
	if (rc == 0)
		rc = art_release_promote(NULL, s, fx.kr, keys, 1, "blue", 1, NOW);
	art_store_close(s);
	return rc;
}

static int group_setup(void **state)
{
	(void)state;
	if (art_key_generate(&fx.builder, 2048) < 0 || art_key_generate(&fx.rm1, 2048) < 0 ||
	    art_keyring_new(&fx.kr) < 0 ||
	    art_keyring_add(fx.kr, fx.builder, ART_ROLE_BUILDER, T_2026, 0) < 0 ||
	    art_keyring_add(fx.kr, fx.rm1, ART_ROLE_RELEASE_MANAGER, T_2026, 0) < 0)
		return -1;
	if (!(fx.src = temp_dir()) || !(fx.tmp = temp_dir()) || make_source() < 0 ||
	    asprintf(&fx.dst, "%s/dst", fx.tmp) < 0 || registry_start() < 0)
		return -1;
	snprintf(fx.url, sizeof(fx.url), "oci://127.0.0.1:%u/team/agents", reg.port);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	MHD_stop_daemon(reg.d);
	registry_clear();
	art_key_free(fx.builder);
	art_key_free(fx.rm1);
	art_keyring_free(fx.kr);
	remove_tree(fx.src);
	remove_tree(fx.tmp);
	free(fx.src);
	free(fx.tmp);
	free(fx.dst);
	return 0;
}

/* A whole push of channel blue (its release, its artifact, the records). */
static int run_push(void *ctx)
{
	art_oci_client *c = NULL;
	art_store *s = NULL;
	art_oci_stats st;
	int rc;

	(void)ctx;
	memset(&st, 0, sizeof(st));
	rc = art_oci_client_new(&c, fx.url, NULL);
	if (rc == 0)
		rc = art_store_open(&s, fx.src, ART_STORE_RDONLY);
	if (rc == 0)
		rc = art_oci_push(&st, c, s, NULL, 0, 0, "blue", NULL);
	if (rc == 0 && (st.release != 1 || st.channel_seq != 1))
		rc = art_error_set(AF_EINTERNAL, "push stats: release %llu seq %llu",
				   (unsigned long long)st.release, (unsigned long long)st.channel_seq);
	art_store_close(s);
	art_oci_client_free(c);
	return rc;
}

static void undo_push(void *ctx)
{
	(void)ctx;
	registry_clear();
}

/* A whole pull of channel blue into an empty store. */
static int run_pull(void *ctx)
{
	art_oci_client *c = NULL;
	art_store *s = NULL;
	art_oci_pull_opts po;
	art_oci_stats st;
	const bool *referrers_api = ctx;
	int rc;

	REG_SET(reg.referrers_api = *referrers_api);
	memset(&po, 0, sizeof(po));
	po.channel = "blue";
	memset(&st, 0, sizeof(st));
	rc = art_oci_client_new(&c, fx.url, NULL);
	if (rc == 0)
		rc = art_store_open(&s, fx.dst, ART_STORE_CREATE);
	if (rc == 0)
		rc = art_oci_pull(&st, c, s, fx.kr, NOW, &po);
	if (rc == 0 && (st.release != 1 || st.artifacts != 1))
		rc = art_error_set(AF_EINTERNAL, "pull stats: release %llu, %llu artifacts",
				   (unsigned long long)st.release, (unsigned long long)st.artifacts);
	art_store_close(s);
	art_oci_client_free(c);
	return rc;
}

/* A failed pull leaves nothing of it in the store; then a fresh store. */
static void undo_pull(void *ctx)
{
	art_store *s = NULL;
	art_store_entry *e = NULL;
	art_release *r = NULL;
	size_t n = 0;
	int rc;

	(void)ctx;
	if (art_store_open(&s, fx.dst, ART_STORE_RDONLY) == 0) {
		assert_int_equal(art_store_list(&e, &n, s), 0);
		rc = art_release_channel_resolve(s, fx.kr, "blue", NOW, &r);
		/* all or nothing */
		if (!((n == 0 && rc == AF_ENOTFOUND) || (n == 1 && rc == 0)))
			fail_msg("a pull left %zu artifacts and a channel that resolves with %d", n,
				 rc);
		art_release_free(r);
		art_store_list_free(e, n);
		art_store_close(s);
	}
	remove_tree(fx.dst);
}

static void test_oci_faults__push_under_allocation_failure(void **state)
{
	fi_op op = {"art_oci_push (channel)", run_push, undo_push, NULL};

	(void)state;
	registry_clear();
	if (fi_torture(&op) <= 0)
		fail_msg("%s: see above", op.name);
}

static void test_oci_faults__pull_under_allocation_failure(void **state)
{
	bool with_api = true, fallback = false;
	fi_op api = {"art_oci_pull (referrers API)", run_pull, undo_pull, &with_api};
	fi_op tags = {"art_oci_pull (fallback tags)", run_pull, undo_pull, &fallback};

	(void)state;
	/* the registry as a push leaves it, with the API and with fallback tags */
	registry_clear();
	REG_SET(reg.referrers_api = true);
	assert_int_equal(run_push(NULL), 0);
	if (fi_torture(&api) <= 0)
		fail_msg("%s: see above", api.name);
	registry_clear();
	REG_SET(reg.referrers_api = false);
	assert_int_equal(run_push(NULL), 0);
	if (fi_torture(&tags) <= 0)
		fail_msg("%s: see above", tags.name);
	registry_clear();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_oci_faults__push_under_allocation_failure),
		cmocka_unit_test(test_oci_faults__pull_under_allocation_failure),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
