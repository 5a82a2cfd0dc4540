/*
 * test_faults.c - the artifacts library when its dependencies fail: every
 * allocation in turn (malloc, calloc, realloc, strdup), LMDB calls and
 * OpenSSL calls, through link-time wrappers (-Wl,--wrap=..., given by
 * TEST_WRAP in the Makefile). Each operation must report the failure
 * (AF_ENOMEM for an allocation; an error for LMDB and OpenSSL, never a
 * success that did not happen), leak nothing (run it under CONFIG=asan)
 * and, for the store, leave it as it was before or as it is after the
 * transaction: never in between. A verification never passes on a failed
 * cryptographic call.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "faultinject.h"

#include "art/bundle.h"
#include "art/error.h"
#include "art/keyring.h"
#include "art/keys.h"
#include "art/manifest.h"
#include "art/sig.h"
#include "art/store.h"
#include "art/util.h"
#include "art/wasm.h"

#include <ftw.h>
#include <lmdb.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T_2026 ((time_t)1767225600)
#define NOW (T_2026 + 86400)
#define COMPAT "x86_64-linux-gnu/wasm-rt-1.0.32/guest-abi-1"

/* ---- LMDB and OpenSSL wrappers: the same one-failure-per-run counter as
 * the allocations, but a class of its own. */
static long lib_fail_at, lib_calls;
static int lib_failed;
static const char *lib_failed_call; /* which wrapper failed, for messages */

static void lib_arm(long n)
{
	__atomic_store_n(&lib_calls, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&lib_failed, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&lib_fail_at, n, __ATOMIC_SEQ_CST);
}

static bool lib_disarm(void)
{
	__atomic_store_n(&lib_fail_at, 0, __ATOMIC_SEQ_CST);
	return __atomic_load_n(&lib_failed, __ATOMIC_SEQ_CST) != 0;
}

#define lib_should_fail() lib_should_fail_call(__func__)

static bool lib_should_fail_call(const char *call)
{
	long at = __atomic_load_n(&lib_fail_at, __ATOMIC_SEQ_CST);

	if (at <= 0 || __atomic_add_fetch(&lib_calls, 1, __ATOMIC_SEQ_CST) != at)
		return false;
	lib_failed_call = call;
	__atomic_store_n(&lib_failed, 1, __ATOMIC_SEQ_CST);
	return true;
}

int __real_mdb_txn_begin(MDB_env *env, MDB_txn *parent, unsigned flags, MDB_txn **txn);
int __real_mdb_put(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data, unsigned flags);
int __real_mdb_get(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data);
int __real_mdb_txn_commit(MDB_txn *txn);
int __wrap_mdb_txn_begin(MDB_env *env, MDB_txn *parent, unsigned flags, MDB_txn **txn);
int __wrap_mdb_put(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data, unsigned flags);
int __wrap_mdb_get(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data);
int __wrap_mdb_txn_commit(MDB_txn *txn);

int __wrap_mdb_txn_begin(MDB_env *env, MDB_txn *parent, unsigned flags, MDB_txn **txn)
{
	return lib_should_fail() ? MDB_READERS_FULL : __real_mdb_txn_begin(env, parent, flags, txn);
}

/* EIO, not MDB_MAP_FULL: the store answers a full map by growing it and
 * trying again, which is right, and would hide the failure here. */
int __wrap_mdb_put(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data, unsigned flags)
{
	return lib_should_fail() ? EIO : __real_mdb_put(txn, dbi, key, data, flags);
}

int __wrap_mdb_get(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data)
{
	return lib_should_fail() ? EIO : __real_mdb_get(txn, dbi, key, data);
}

/* A failed commit frees the transaction, as LMDB's own does. */
int __wrap_mdb_txn_commit(MDB_txn *txn)
{
	if (lib_should_fail()) {
		mdb_txn_abort(txn);
		return EIO;
	}
	return __real_mdb_txn_commit(txn);
}

int __real_EVP_DigestSign(EVP_MD_CTX *ctx, unsigned char *sig, size_t *siglen,
			  const unsigned char *tbs, size_t tbslen);
int __real_EVP_DigestVerify(EVP_MD_CTX *ctx, const unsigned char *sig, size_t siglen,
			    const unsigned char *tbs, size_t tbslen);
EVP_MD_CTX *__real_EVP_MD_CTX_new(void);
int __wrap_EVP_DigestSign(EVP_MD_CTX *ctx, unsigned char *sig, size_t *siglen,
			  const unsigned char *tbs, size_t tbslen);
int __wrap_EVP_DigestVerify(EVP_MD_CTX *ctx, const unsigned char *sig, size_t siglen,
			    const unsigned char *tbs, size_t tbslen);
EVP_MD_CTX *__wrap_EVP_MD_CTX_new(void);

int __wrap_EVP_DigestSign(EVP_MD_CTX *ctx, unsigned char *sig, size_t *siglen,
			  const unsigned char *tbs, size_t tbslen)
{
	return lib_should_fail() ? 0 : __real_EVP_DigestSign(ctx, sig, siglen, tbs, tbslen);
}

/* -1 is OpenSSL's "error", not "bad signature": neither may verify. */
int __wrap_EVP_DigestVerify(EVP_MD_CTX *ctx, const unsigned char *sig, size_t siglen,
			    const unsigned char *tbs, size_t tbslen)
{
	return lib_should_fail() ? -1 : __real_EVP_DigestVerify(ctx, sig, siglen, tbs, tbslen);
}

EVP_MD_CTX *__wrap_EVP_MD_CTX_new(void)
{
	return lib_should_fail() ? NULL : __real_EVP_MD_CTX_new();
}

/* ---- fixtures ------------------------------------------------------------- */

static struct {
	art_key *builder;
	art_keyring *kr;
	char *manifest;   /* canonical manifest bytes */
	size_t manifest_len;
	char *envelope;   /* its builder signature */
	char *keyring_json;
	uint8_t *wasm, *tar;
	size_t wasm_len, tar_len;
	char *dir;        /* a store holding "alpha" */
} fx;

static uint8_t *read_fixture(const char *rel, size_t *len)
{
	const char *src = getenv("AF_SRCDIR");
	char path[4096];
	char *data = NULL;

	snprintf(path, sizeof(path), "%s/%s", src ? src : ".", rel);
	if (art_file_read(&data, len, path, 1 << 20) < 0)
		fail_msg("%s: %s", path, art_error_last());
	return (uint8_t *)data;
}

static art_manifest_info sample_info(const char *name, const char *resolved)
{
	static const char *caps[] = {"log", "llm_chat"};
	static art_manifest_import imports[] = {{"af", "llm_chat", "func"}, {"af", "log", "func"}};
	static art_manifest_export exports[] = {{"af_handle", "func"}, {"memory", "memory"}};
	art_manifest_info info;

	memset(&info, 0, sizeof(info));
	info.name = name;
	info.version = "1.0.0";
	info.resolved_template_digest = resolved;
	info.git_commit = "0123456789abcdef0123456789abcdef01234567";
	info.policy_digest = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
	info.toolchain_id = "clang-19.1.7/wabt-1.0.32";
	info.native_compat_id = COMPAT;
	info.target_triple = "x86_64-linux-gnu";
	info.guest_abi_version = 1;
	info.imports = imports;
	info.n_imports = 2;
	info.exports = exports;
	info.n_exports = 2;
	info.capabilities = caps;
	info.n_capabilities = 2;
	return info;
}

/* Queue the build of agent `name` into txn. */
static int put_agent(art_store_txn *txn, const char *name)
{
	static const char wasm[] = "\0asm\1\0\0\0 wasm bytes of the agent";
	static const char native[] = "\x7f" "ELF native bytes of the agent";
	static const char source[] = "/* generated C of the agent */";
	char resolved[72];
	art_manifest_info info;
	art_provenance_info prov = {"https://git.example.com/agents.git", "main",
				    "https://agentfactory.dev/builder/v1"};
	art_build_parts parts = {wasm, sizeof(wasm), native, sizeof(native), source,
				 sizeof(source)};

	art_manifest_digest(resolved, name, strlen(name));
	info = sample_info(name, resolved);
	return art_store_put_build(txn, NULL, &info, &prov, &parts, fx.builder);
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

	assert_true(asprintf(&d, "%s/af-test-faults-XXXXXX", tmp && *tmp ? tmp : "/tmp") > 0);
	assert_non_null(mkdtemp(d));
	return d;
}

static void remove_dir(char *d)
{
	if (d)
		nftw(d, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(d);
}

static int group_setup(void **state)
{
	art_store *s = NULL;
	art_store_txn *txn = NULL;
	art_store_record *r = NULL;

	(void)state;
	if (art_key_generate(&fx.builder, 2048) < 0 || art_keyring_new(&fx.kr) < 0 ||
	    art_keyring_add(fx.kr, fx.builder, ART_ROLE_BUILDER, T_2026, 0) < 0 ||
	    art_keyring_to_json(&fx.keyring_json, fx.kr) < 0)
		return -1;
	fx.wasm = read_fixture("fuzz/corpus/wasm/module-a.wasm", &fx.wasm_len);
	fx.tar = read_fixture("fuzz/corpus/tar/bundle-like", &fx.tar_len);
	fx.dir = temp_dir();
	if (art_store_open(&s, fx.dir, ART_STORE_CREATE) < 0 || art_store_txn_begin(&txn, s) < 0 ||
	    put_agent(txn, "alpha") < 0 || art_store_txn_commit(txn) < 0 ||
	    art_store_get_artifact(&r, s, "alpha", NULL) < 0)
		return -1;
	fx.manifest = strdup(r->manifest);
	fx.manifest_len = r->manifest_len;
	fx.envelope = strdup(r->envelope);
	art_store_record_free(r);
	art_store_close(s);
	return fx.manifest && fx.envelope ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	art_key_free(fx.builder);
	art_keyring_free(fx.kr);
	free(fx.manifest);
	free(fx.envelope);
	free(fx.keyring_json);
	free(fx.wasm);
	free(fx.tar);
	remove_dir(fx.dir);
	return 0;
}

/* ---- allocation failure, operation by operation ---------------------------- */

static int run_manifest(void *ctx)
{
	art_manifest *m = NULL;
	char *out = NULL;
	size_t len = 0;
	int rc;

	(void)ctx;
	rc = art_manifest_parse(&m, fx.manifest, fx.manifest_len);
	if (rc == 0)
		rc = art_manifest_serialize(&out, &len, m);
	if (rc == 0 && (len != fx.manifest_len || memcmp(out, fx.manifest, len) != 0))
		rc = AF_ECORRUPT;
	free(out);
	art_manifest_free(m);
	return rc;
}

static int run_manifest_verify(void *ctx)
{
	art_manifest *m = NULL;
	int rc;

	(void)ctx;
	rc = art_manifest_verify_signed(&m, NULL, fx.kr, fx.manifest, fx.manifest_len,
					fx.envelope, strlen(fx.envelope), NOW);
	art_manifest_free(m);
	return rc;
}

static int run_wasm(void *ctx)
{
	art_wasm_module *m = NULL;
	int rc;

	(void)ctx;
	rc = art_wasm_parse(&m, fx.wasm, fx.wasm_len);
	if (rc == 0 && (m->n_imports != 2 || m->n_funcs != 2))
		rc = AF_ECORRUPT;
	art_wasm_module_free(m);
	return rc;
}

static int run_tar(void *ctx)
{
	art_tar_entry *e = NULL;
	size_t n = 0;
	int rc;

	(void)ctx;
	rc = art_bundle_tar_read(&e, &n, fx.tar, fx.tar_len, 100);
	if (rc == 0 && n != 4)
		rc = AF_ECORRUPT;
	art_bundle_tar_free(e, n);
	return rc;
}

static int run_keyring(void *ctx)
{
	art_keyring *kr = NULL;
	char *again = NULL;
	int rc;

	(void)ctx;
	rc = art_keyring_parse(&kr, fx.keyring_json, strlen(fx.keyring_json), "keyring.json");
	if (rc == 0)
		rc = art_keyring_to_json(&again, kr);
	if (rc == 0 && strcmp(again, fx.keyring_json) != 0)
		rc = AF_ECORRUPT;
	free(again);
	art_keyring_free(kr);
	return rc;
}

static int run_sign(void *ctx)
{
	char *env = NULL;
	int rc;

	(void)ctx;
	rc = art_sig_sign(&env, fx.builder, ART_SIG_TYPE_TEMPLATE, "agent", "1.0.0", "x", 1);
	free(env);
	return rc;
}

/* A store write: open, put "beta", commit, read it back verified. */
static int run_store_put(void *ctx)
{
	char *dir = ctx;
	art_store *s = NULL;
	art_store_txn *txn = NULL;
	art_verified_artifact *va = NULL;
	int rc;

	rc = art_store_open(&s, dir, ART_STORE_CREATE);
	if (rc == 0)
		rc = art_store_txn_begin(&txn, s);
	if (rc == 0) {
		rc = put_agent(txn, "beta");
		if (rc == 0)
			rc = art_store_txn_commit(txn);
		else
			art_store_txn_abort(txn);
	}
	if (rc == 0)
		rc = art_store_load_verified(&va, s, fx.kr, "beta", NULL, NOW);
	art_verified_artifact_free(va);
	art_store_close(s);
	return rc;
}

static void test_faults__allocation_failures_report_enomem(void **state)
{
	char *dir = temp_dir();
	const fi_op ops[] = {
		{"art_manifest_parse+serialize", run_manifest, NULL, NULL},
		{"art_manifest_verify_signed", run_manifest_verify, NULL, NULL},
		{"art_wasm_parse", run_wasm, NULL, NULL},
		{"art_bundle_tar_read", run_tar, NULL, NULL},
		{"art_keyring_parse+to_json", run_keyring, NULL, NULL},
		{"art_sig_sign", run_sign, NULL, NULL},
		{"art_store put+load_verified", run_store_put, NULL, dir},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (fi_torture(&ops[i]) <= 0)
			fail_msg("%s: see above", ops[i].name);
	remove_dir(dir);
}

/* ---- LMDB: before or after, never between -------------------------------- */

/* The names in the store at dir, "alpha beta " style. */
static void store_names(char *out, size_t n, const char *dir)
{
	art_store *s = NULL;
	art_store_entry *e = NULL;
	size_t count = 0, i, len = 0;

	out[0] = '\0';
	if (art_store_open(&s, dir, ART_STORE_RDONLY) < 0)
		fail_msg("reopen %s: %s", dir, art_error_last());
	if (art_store_list(&e, &count, s) < 0)
		fail_msg("list %s: %s", dir, art_error_last());
	for (i = 0; i < count; i++)
		len += (size_t)snprintf(out + len, n - len, "%s ", e[i].name);
	if (art_store_verify_all(s, fx.kr, NOW, NULL, NULL, NULL, NULL) < 0)
		fail_msg("the store does not verify after a failure: %s", art_error_last());
	art_store_list_free(e, count);
	art_store_close(s);
}

static void copy_store(const char *from, const char *to)
{
	char *cmd = NULL;

	assert_true(asprintf(&cmd, "cp -a '%s'/. '%s'/", from, to) > 0);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

static void test_faults__lmdb_failures_leave_the_store_before_or_after(void **state)
{
	char names[256];
	long n, before = 0, after = 0;
	int rc;

	(void)state;
	for (n = 1;; n++) {
		char *dir = temp_dir();
		bool failed;

		copy_store(fx.dir, dir);
		lib_arm(n);
		rc = run_store_put(dir);
		failed = lib_disarm();
		store_names(names, sizeof(names), dir);
		remove_dir(dir);
		if (!failed) {
			assert_int_equal(rc, 0);
			assert_string_equal(names, "alpha beta ");
			break;
		}
		/* An LMDB failure is reported, never swallowed... */
		if (rc == 0)
			fail_msg("LMDB call %ld (%s) failed but the put succeeded", n, lib_failed_call);
		assert_non_null(art_error_last());
		/* ...and the store is exactly before or exactly after. */
		if (strcmp(names, "alpha ") == 0)
			before++;
		else if (strcmp(names, "alpha beta ") == 0)
			after++;
		else
			fail_msg("LMDB call %ld (%s) failed: the store holds '%s'", n, lib_failed_call,
				 names);
	}
	printf("LMDB: %ld failure points (%ld left the store before, %ld after)\n", n - 1, before,
	       after);
	assert_true(n > 3);
}

/* ---- OpenSSL: fail closed -------------------------------------------------- */

static void test_faults__openssl_failures_never_verify(void **state)
{
	art_manifest *m = NULL;
	char *env = NULL;
	long n;
	int rc;

	(void)state;
	for (n = 1;; n++) {
		lib_arm(n);
		rc = art_manifest_verify_signed(&m, NULL, fx.kr, fx.manifest, fx.manifest_len,
						fx.envelope, strlen(fx.envelope), NOW);
		if (!lib_disarm()) {
			assert_int_equal(rc, 0);
			art_manifest_free(m);
			m = NULL;
			break;
		}
		if (rc == 0)
			fail_msg("%s (call %ld) failed and the manifest still verified",
				 lib_failed_call, n);
		assert_null(m);
	}
	for (n = 1;; n++) {
		lib_arm(n);
		rc = art_sig_sign(&env, fx.builder, ART_SIG_TYPE_TEMPLATE, "agent", "1.0.0", "x", 1);
		if (!lib_disarm()) {
			assert_int_equal(rc, 0);
			free(env);
			break;
		}
		if (rc != AF_ECRYPTO && rc != AF_ENOMEM)
			fail_msg("%s (call %ld) failed: art_sig_sign said %d (%s)", lib_failed_call, n,
				 rc, art_error_last());
		assert_null(env);
	}
	printf("OpenSSL: signing has %ld failure points\n", n - 1);
	assert_true(n > 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_faults__allocation_failures_report_enomem),
		cmocka_unit_test(test_faults__lmdb_failures_leave_the_store_before_or_after),
		cmocka_unit_test(test_faults__openssl_failures_never_verify),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
