/*
 * test_release_faults.c - the store's higher layers when their dependencies
 * fail: releases and channels (create, promote, rollback, set-threshold,
 * resolve, listings, history, envelopes, import), bundles (export, import
 * from a file and from memory, with detached signatures), provenance
 * attestations and the SBOM, and the audit log (append, list, verify,
 * checkpoints), under allocation failure (every malloc, calloc, realloc and
 * strdup in turn: tests/unit/faultinject.h), LMDB failure and OpenSSL
 * failure (link-time wrappers, TEST_WRAP in the Makefile).
 *
 * Each failed run must answer AF_ENOMEM (or succeed), leak nothing (run it
 * under CONFIG=asan), and a failed write must leave the store before or
 * after the operation, with an audit chain that still verifies: never
 * between. A failed cryptographic call never verifies anything.
 *
 * Only the public API (the art/ headers) is used: internals may move.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "faultinject.h"

#include "art/attest.h"
#include "art/audit.h"
#include "art/bundle.h"
#include "art/error.h"
#include "art/keyring.h"
#include "art/keys.h"
#include "art/manifest.h"
#include "art/release.h"
#include "art/sig.h"
#include "art/store.h"
#include "art/util.h"

#include <ftw.h>
#include <jansson.h>
#include <lmdb.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define T_2026 ((time_t)1767225600)
#define NOW (T_2026 + 86400)
#define DAY ((time_t)86400)
#define LATER (NOW + 30 * DAY)
#define COMPAT "x86_64-linux-gnu/wasm-rt-1.0.32/guest-abi-1"

/* ---- LMDB and OpenSSL wrappers (as test_faults.c): one failing call per
 * armed run, counted apart from the allocations. */
static long lib_fail_at, lib_calls;
static int lib_failed;
static bool lib_crypto_only; /* LMDB calls do not count (nor fail) */
static bool lib_lmdb_only;   /* OpenSSL calls do not count (nor fail) */
static const char *lib_failed_call;

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
	return !lib_crypto_only && lib_should_fail() ? MDB_READERS_FULL : __real_mdb_txn_begin(env, parent, flags, txn);
}

/* EIO, not MDB_MAP_FULL, which the store answers by growing the map. */
int __wrap_mdb_put(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data, unsigned flags)
{
	return !lib_crypto_only && lib_should_fail() ? EIO : __real_mdb_put(txn, dbi, key, data, flags);
}

int __wrap_mdb_get(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data)
{
	return !lib_crypto_only && lib_should_fail() ? EIO : __real_mdb_get(txn, dbi, key, data);
}

/* A failed commit frees the transaction, as LMDB's own does. */
int __wrap_mdb_txn_commit(MDB_txn *txn)
{
	if (!lib_crypto_only && lib_should_fail()) {
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
	return !lib_lmdb_only && lib_should_fail() ? 0 : __real_EVP_DigestSign(ctx, sig, siglen, tbs, tbslen);
}

int __wrap_EVP_DigestVerify(EVP_MD_CTX *ctx, const unsigned char *sig, size_t siglen,
			    const unsigned char *tbs, size_t tbslen)
{
	return !lib_lmdb_only && lib_should_fail() ? -1 : __real_EVP_DigestVerify(ctx, sig, siglen, tbs, tbslen);
}

EVP_MD_CTX *__wrap_EVP_MD_CTX_new(void)
{
	return !lib_lmdb_only && lib_should_fail() ? NULL : __real_EVP_MD_CTX_new();
}

/* ---- fixtures ------------------------------------------------------------- */

/*
 * art_dir: a store holding alpha@1.0.0, alpha@1.1.0, beta@1.0.0 (with
 * provenance attestations and SBOMs).
 * rel_dir: the same plus releases 1 {alpha@1.0.0, beta}, 2 {alpha@1.1.0,
 * beta}, 3 {alpha@1.1.0, beta}, channel blue promoted to 1 then 2 (seq 2).
 * Operations that write work on a copy (work_dir), restored after each run.
 */
static struct {
	art_key *builder, *rm1, *rm2;
	art_keyring *kr;
	char *art_dir, *rel_dir, *work_dir, *tmp_dir;
	char *release2_env, *blue_env;   /* as stored in rel_dir */
	size_t release2_len, blue_len;
	char *attestation;               /* alpha@1.0.0's provenance envelope */
	size_t attestation_len;
	art_manifest *alpha;             /* its manifest */
	uint8_t *provenance;             /* its provenance part */
	size_t provenance_len;
	char *bundle, *bundle_sigs;      /* files: rel_dir exported, signatures apart */
	uint8_t *bundle_data, *sigs_data;
	size_t bundle_len, sigs_len;
	char *checkpoint;                /* of rel_dir's audit log, by rm1 */
	art_key *root;
	char *signed_keyring;            /* a v2 keyring signed by root, version 1 */
} fx;

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

	if (asprintf(&d, "%s/af-test-relfaults-XXXXXX", tmp && *tmp ? tmp : "/tmp") < 0)
		return NULL;
	if (!mkdtemp(d)) {
		free(d);
		return NULL;
	}
	return d;
}

static void remove_tree(const char *d)
{
	if (d)
		nftw(d, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* work_dir := a fresh copy of from (or an empty directory: from NULL). */
static void reset_work(const char *from)
{
	char *cmd = NULL;

	remove_tree(fx.work_dir);
	if (mkdir(fx.work_dir, 0700) < 0)
		fail_msg("mkdir %s", fx.work_dir);
	if (!from)
		return;
	if (asprintf(&cmd, "cp -a '%s'/. '%s'/", from, fx.work_dir) < 0)
		fail_msg("asprintf");
	if (system(cmd) != 0)
		fail_msg("%s failed", cmd);
	free(cmd);
}

static int put_agent(art_store_txn *t, const char *name, const char *version)
{
	const char *caps[] = {"llm_chat", "log"};
	art_manifest_import imports[] = {{"af", "llm_chat", "func"}, {"af", "log", "func"}};
	art_manifest_export exports[] = {{"af_handle", "func"}, {"memory", "memory"}};
	static const art_sbom_component comps[] = {
		{"library", "wasi-libc", "0.0~git20220510.9886d3d-2",
		 "pkg:deb/debian/wasi-libc@0.0~git20220510.9886d3d-2?arch=all", NULL, NULL}};
	static const art_provenance_file templates[] = {
		{"templates/agent.yaml",
		 "1111111111111111111111111111111111111111111111111111111111111111",
		 "2222222222222222222222222222222222222222"}};
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
	info.n_imports = 2;
	info.exports = exports;
	info.n_exports = 2;
	info.capabilities = caps;
	info.n_capabilities = 2;
	memset(&extra, 0, sizeof(extra));
	extra.template_path = "templates/agent.yaml";
	extra.templates = templates;
	extra.n_templates = 1;
	extra.components = comps;
	extra.n_components = 1;
	extra.invocation_id = "https://ci.example.com/jobs/7";
	extra.started_on = T_2026 + 10;
	extra.finished_on = T_2026 + 20;
	parts.wasm = wasm;
	parts.wasm_len = strlen(wasm);
	parts.native = native;
	parts.native_len = strlen(native);
	parts.source = source;
	parts.source_len = strlen(source);
	return art_store_put_build_ex(t, NULL, &info, &prov, &extra, &parts, fx.builder);
}

static int make_art_store(const char *dir)
{
	art_store *s = NULL;
	art_store_txn *t = NULL;
	int rc;

	if ((rc = art_store_open(&s, dir, ART_STORE_CREATE)) < 0)
		return rc;
	if ((rc = art_store_txn_begin(&t, s)) == 0) {
		if ((rc = put_agent(t, "alpha", "1.0.0")) == 0 &&
		    (rc = put_agent(t, "alpha", "1.1.0")) == 0 &&
		    (rc = put_agent(t, "beta", "1.0.0")) == 0)
			rc = art_store_txn_commit(t);
		else
			art_store_txn_abort(t);
	}
	art_store_close(s);
	return rc;
}

static int make_rel_store(const char *dir)
{
	static const char *const r1[] = {"alpha@1.0.0", "beta"};
	static const char *const r2[] = {"alpha@1.1.0", "beta@1.0.0"};
	const art_key *keys[] = {fx.rm1};
	art_store *s = NULL;
	int rc;

	if ((rc = art_store_open(&s, dir, 0)) < 0)
		return rc;
	if ((rc = art_release_create(NULL, s, fx.kr, fx.rm1, r1, 2, LATER, NOW)) == 0 &&
	    (rc = art_release_create(NULL, s, fx.kr, fx.rm1, r2, 2, LATER, NOW)) == 0 &&
	    (rc = art_release_create(NULL, s, fx.kr, fx.rm1, r2, 2, LATER, NOW)) == 0 &&
	    (rc = art_release_promote(NULL, s, fx.kr, keys, 1, "blue", 1, NOW)) == 0 &&
	    (rc = art_release_promote(NULL, s, fx.kr, keys, 1, "blue", 2, NOW)) == 0 &&
	    (rc = art_release_envelope(&fx.release2_env, &fx.release2_len, s, 2)) == 0)
		rc = art_channel_envelope(&fx.blue_env, &fx.blue_len, s, "blue");
	if (rc == 0)
		rc = art_audit_checkpoint(&fx.checkpoint, s, fx.rm1, NOW);
	art_store_close(s);
	return rc;
}

static int fixture_attestation(void)
{
	art_store *s = NULL;
	art_store_record *rec = NULL;
	const art_manifest_part *part;
	int rc;

	if ((rc = art_store_open(&s, fx.art_dir, ART_STORE_RDONLY)) < 0)
		return rc;
	if ((rc = art_store_get_attestation(&fx.attestation, &fx.attestation_len, s, "alpha",
					    "1.0.0")) == 0 &&
	    (rc = art_store_get_artifact(&rec, s, "alpha", "1.0.0")) == 0 &&
	    (rc = art_manifest_parse(&fx.alpha, rec->manifest, rec->manifest_len)) == 0) {
		part = art_manifest_part_get(fx.alpha, ART_PART_PROVENANCE);
		rc = part ? art_store_get_blob(&fx.provenance, &fx.provenance_len, s,
					       part->digest + 7)
			  : AF_ENOTFOUND;
	}
	art_store_record_free(rec);
	art_store_close(s);
	return rc;
}

static int fixture_bundle(void)
{
	art_store *s = NULL;
	char *data = NULL;
	int rc;

	if (asprintf(&fx.bundle, "%s/rel.tar", fx.tmp_dir) < 0 ||
	    asprintf(&fx.bundle_sigs, "%s/rel.sigs.tar", fx.tmp_dir) < 0)
		return AF_ENOMEM;
	if ((rc = art_store_open(&s, fx.rel_dir, ART_STORE_RDONLY)) < 0)
		return rc;
	rc = art_bundle_export_ex(NULL, s, fx.bundle, fx.bundle_sigs, NULL, 0);
	art_store_close(s);
	if (rc == 0 && (rc = art_file_read(&data, &fx.bundle_len, fx.bundle, 1 << 24)) == 0)
		fx.bundle_data = (uint8_t *)data;
	if (rc == 0 && (rc = art_file_read(&data, &fx.sigs_len, fx.bundle_sigs, 1 << 24)) == 0)
		fx.sigs_data = (uint8_t *)data;
	return rc;
}

static int group_setup(void **state)
{
	int rc;

	(void)state;
	if (art_key_generate(&fx.builder, 2048) < 0 || art_key_generate(&fx.rm1, 2048) < 0 ||
	    art_key_generate(&fx.rm2, 2048) < 0 || art_keyring_new(&fx.kr) < 0 ||
	    art_keyring_add(fx.kr, fx.builder, ART_ROLE_BUILDER, T_2026, 0) < 0 ||
	    art_keyring_add(fx.kr, fx.rm1, ART_ROLE_RELEASE_MANAGER, T_2026, 0) < 0 ||
	    art_keyring_add(fx.kr, fx.rm2, ART_ROLE_RELEASE_MANAGER, T_2026, 0) < 0)
		return -1;
	fx.art_dir = temp_dir();
	fx.rel_dir = temp_dir();
	fx.tmp_dir = temp_dir();
	if (!fx.art_dir || !fx.rel_dir || !fx.tmp_dir ||
	    asprintf(&fx.work_dir, "%s/work", fx.tmp_dir) < 0)
		return -1;
	{
		art_keyring *skr = NULL;
		const art_key *roots[1];

		if (art_key_generate(&fx.root, 2048) < 0 || art_keyring_new(&skr) < 0)
			return -1;
		roots[0] = fx.root;
		if (art_keyring_add(skr, fx.root, ART_ROLE_ROOT, T_2026, 0) < 0 ||
		    art_keyring_add(skr, fx.builder, ART_ROLE_BUILDER, T_2026, 0) < 0 ||
		    art_keyring_add(skr, fx.rm1, ART_ROLE_RELEASE_MANAGER, T_2026, 0) < 0 ||
		    art_keyring_add(skr, fx.rm2, ART_ROLE_RELEASE_MANAGER, T_2026, 0) < 0 ||
		    art_keyring_revoke(skr, art_key_id(fx.rm2), T_2026, "lost") < 0 ||
		    art_keyring_sign(skr, 1, LATER, roots, 1) < 0 ||
		    art_keyring_to_json(&fx.signed_keyring, skr) < 0) {
			fprintf(stderr, "signed keyring: %s\n", art_error_last());
			art_keyring_free(skr);
			return -1;
		}
		art_keyring_free(skr);
	}
	if ((rc = make_art_store(fx.art_dir)) < 0 || (rc = make_art_store(fx.rel_dir)) < 0 ||
	    (rc = make_rel_store(fx.rel_dir)) < 0 || (rc = fixture_attestation()) < 0 ||
	    (rc = fixture_bundle()) < 0) {
		fprintf(stderr, "fixture: %d %s\n", rc, art_error_last());
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	art_key_free(fx.builder);
	art_key_free(fx.rm1);
	art_key_free(fx.rm2);
	art_keyring_free(fx.kr);
	remove_tree(fx.art_dir);
	remove_tree(fx.rel_dir);
	remove_tree(fx.tmp_dir);
	free(fx.art_dir);
	free(fx.rel_dir);
	free(fx.tmp_dir);
	free(fx.work_dir);
	free(fx.release2_env);
	free(fx.blue_env);
	free(fx.attestation);
	art_manifest_free(fx.alpha);
	free(fx.provenance);
	free(fx.bundle);
	free(fx.bundle_sigs);
	free(fx.bundle_data);
	free(fx.sigs_data);
	free(fx.checkpoint);
	art_key_free(fx.root);
	free(fx.signed_keyring);
	return 0;
}

/* A result that is not what the operation must give (the line of the check). */
static int wrong(int line)
{
	return art_error_set(AF_EINTERNAL, "the check at line %d failed", line);
}

/* ---- checks of a store after a run ------------------------------------------ */

/* The release blue points at in dir, as stored (0: no channel); the audit
 * chain must verify, whatever happened. */
static uint64_t blue_release(const char *dir, unsigned *threshold)
{
	art_store *s = NULL;
	art_channel **list = NULL;
	art_audit_report rep;
	size_t n = 0, i;
	uint64_t release = 0;
	int rc;

	/* a store whose creation failed: nothing there, and it can be created
	 * again (a transient failure does not leave a store that cannot open) */
	if ((rc = art_store_open(&s, dir, ART_STORE_RDONLY)) == AF_ENOTFOUND)
		return 0;
	if (rc < 0 && strstr(art_error_last(), "not an agentfactory store")) {
		if ((rc = art_store_open(&s, dir, ART_STORE_CREATE)) < 0)
			fail_msg("a store whose creation failed cannot be created again: %s",
				 art_error_last());
		art_store_close(s);
		s = NULL;
		rc = art_store_open(&s, dir, ART_STORE_RDONLY);
	}
	if (rc < 0)
		fail_msg("reopen %s: %s", dir, art_error_last());
	if (art_audit_verify(&rep, s) != 0)
		fail_msg("the audit chain does not verify after a failure: %s", art_error_last());
	if (art_channel_list(&list, &n, s, NULL, NOW) != 0)
		fail_msg("channel list: %s", art_error_last());
	for (i = 0; i < n; i++)
		if (strcmp(list[i]->name, "blue") == 0) {
			release = list[i]->release;
			if (threshold)
				*threshold = list[i]->threshold;
		}
	art_channel_list_free(list, n);
	art_store_close(s);
	return release;
}

/* A write under torture: open the work copy, run, close. */
typedef struct write_op {
	const char *from;                              /* the store copied before each run */
	int (*write)(art_store *s, void *out);         /* the operation; 0 or its error */
	int expect;                                    /* 0, or the refusal it must answer */
	uint64_t before, after;                        /* blue's release before / after */
	unsigned threshold_after;                      /* 0: not checked */
	bool checked;                                  /* the run succeeded and was checked */
} write_op;

static int run_write(void *ctx)
{
	write_op *w = ctx;
	art_store *s = NULL;
	int rc;

	rc = art_store_open(&s, fx.work_dir, w->from ? 0 : ART_STORE_CREATE);
	if (rc == 0)
		rc = w->write(s, w);
	art_store_close(s);
	/* a refusal is this operation's success; anything else is reported */
	if (w->expect != 0 && rc == w->expect)
		return 0;
	if (w->expect != 0 && rc == 0)
		return AF_EINTERNAL;
	return rc;
}

/* After each run: the store is before or after (and verifies), then reset. */
static void undo_write(void *ctx)
{
	write_op *w = ctx;
	unsigned threshold = 0;
	uint64_t now_at = blue_release(fx.work_dir, &threshold);

	if (now_at != w->before && now_at != w->after)
		fail_msg("blue points at %llu: neither %llu (before) nor %llu (after)",
			 (unsigned long long)now_at, (unsigned long long)w->before,
			 (unsigned long long)w->after);
	if (w->threshold_after && now_at == w->after && threshold != w->threshold_after &&
	    threshold != 1)
		fail_msg("blue's threshold is %u", threshold);
	reset_work(w->from);
}

static int op_create(art_store *s, void *ctx)
{
	static const char *const refs[] = {"alpha", "beta@1.0.0"};
	art_release *r = NULL;
	int rc;

	(void)ctx;
	rc = art_release_create(&r, s, fx.kr, fx.rm1, refs, 2, LATER, NOW);
	if (rc == 0 && (r->number != 4 || r->n_pins != 2 ||
			strcmp(r->pins[0].name, "alpha") != 0 ||
			strcmp(r->pins[0].version, "1.1.0") != 0))
		rc = wrong(__LINE__);
	art_release_free(r);
	return rc;
}

static int op_promote(art_store *s, void *ctx)
{
	const art_key *keys[] = {fx.rm1, fx.rm1};
	art_channel *c = NULL;
	int rc;

	(void)ctx;
	rc = art_release_promote(&c, s, fx.kr, keys, 2, "blue", 3, NOW);
	if (rc == 0 && (c->release != 3 || c->previous != 2 || c->seq != 3 ||
			c->n_signers != 1 || strcmp(c->action, "promote") != 0))
		rc = wrong(__LINE__);
	art_channel_free(c);
	return rc;
}

static int op_promote_new_channel(art_store *s, void *ctx)
{
	const art_key *keys[] = {fx.rm2};
	art_channel *c = NULL;
	int rc;

	(void)ctx;
	rc = art_release_promote(&c, s, fx.kr, keys, 1, "green", 1, NOW);
	if (rc == 0 && (c->release != 1 || c->seq != 1 || strcmp(c->name, "green") != 0))
		rc = wrong(__LINE__);
	art_channel_free(c);
	return rc;
}

static int op_rollback(art_store *s, void *ctx)
{
	const art_key *keys[] = {fx.rm1};
	art_channel *c = NULL;
	int rc;

	(void)ctx;
	rc = art_release_rollback(&c, s, fx.kr, keys, 1, "blue", 0, NOW);
	if (rc == 0 && (c->release != 1 || c->previous != 2 || strcmp(c->action, "rollback") != 0))
		rc = wrong(__LINE__);
	art_channel_free(c);
	return rc;
}

static int op_set_threshold(art_store *s, void *ctx)
{
	const art_key *keys[] = {fx.rm1, fx.rm2};
	art_channel *c = NULL;
	int rc;

	(void)ctx;
	rc = art_release_set_threshold(&c, s, fx.kr, keys, 2, "blue", 2, NOW);
	if (rc == 0 && (c->threshold != 2 || c->release != 2 ||
			strcmp(c->action, "set-threshold") != 0))
		rc = wrong(__LINE__);
	art_channel_free(c);
	return rc;
}

/* Refused: an older release promoted (its "refused" audit entry is written). */
static int op_promote_older(art_store *s, void *ctx)
{
	const art_key *keys[] = {fx.rm1};
	art_channel *c = NULL;
	int rc;

	(void)ctx;
	rc = art_release_promote(&c, s, fx.kr, keys, 1, "blue", 1, NOW);
	if (c)
		rc = wrong(__LINE__);
	return rc;
}

/* Refused: a release pinning an artifact that does not exist. */
static int op_create_missing(art_store *s, void *ctx)
{
	static const char *const refs[] = {"alpha@1.0.0", "gamma@9.9.9"};
	art_release *r = NULL;
	int rc;

	(void)ctx;
	rc = art_release_create(&r, s, fx.kr, fx.rm1, refs, 2, LATER, NOW);
	if (r)
		rc = wrong(__LINE__);
	return rc;
}

static int op_audit_append(art_store *s, void *ctx)
{
	const art_key *signers[] = {fx.rm1, fx.rm2};
	art_audit_event ev = {"check", NULL, "agent/alpha", ART_AUDIT_OK,
			      "{\"findings\":0,\"ref\":\"alpha@1.0.0\"}", signers, 2};
	char actor[2 * ART_SHA256_HEX_LEN + 2];
	uint64_t seq = 0;
	int rc;

	(void)ctx;
	snprintf(actor, sizeof(actor), "%s,%s", art_key_id(fx.rm1), art_key_id(fx.rm2));
	ev.actor = actor;
	rc = art_audit_append(&seq, s, &ev, NOW);
	if (rc == 0 && seq == 0)
		rc = wrong(__LINE__);
	return rc;
}

/* Import release 2 and blue's head (seq 2, release 2) into the artifacts-only store. */
static int op_import(art_store *s, void *ctx)
{
	art_store_txn *t = NULL;
	art_release *r = NULL;
	int rc;

	(void)ctx;
	rc = art_store_txn_begin(&t, s);
	if (rc < 0)
		return rc;
	rc = art_release_import(t, fx.kr, NOW, fx.release2_env, fx.release2_len, fx.blue_env,
				fx.blue_len, 1);
	if (rc == 0)
		rc = art_store_txn_commit(t);
	else
		art_store_txn_abort(t);
	if (rc == 0)
		rc = art_release_channel_resolve(s, fx.kr, "blue", NOW, &r);
	if (rc == 0 && (r->number != 2 || !art_release_find(r, "beta")))
		rc = wrong(__LINE__);
	art_release_free(r);
	return rc;
}

static int op_bundle_import(art_store *s, void *ctx)
{
	art_bundle_stats st;
	int rc;

	(void)ctx;
	memset(&st, 0, sizeof(st));
	rc = art_bundle_import_ex(&st, s, fx.kr, NOW, fx.bundle, fx.bundle_sigs);
	if (rc == 0 && st.artifacts != 3)
		rc = wrong(__LINE__);
	return rc;
}

static int op_bundle_import_mem(art_store *s, void *ctx)
{
	art_bundle_stats st;
	int rc;

	(void)ctx;
	memset(&st, 0, sizeof(st));
	rc = art_bundle_import_mem_ex(&st, s, fx.kr, NOW, fx.bundle_data, fx.bundle_len,
				      fx.sigs_data, fx.sigs_len, "rel.tar");
	if (rc == 0 && (st.artifacts != 3 || st.attestations != 3))
		rc = wrong(__LINE__);
	return rc;
}

/* ---- reads: no undo needed -------------------------------------------------- */

static int with_rel_store(int (*read)(const art_store *s))
{
	art_store *s = NULL;
	int rc;

	rc = art_store_open(&s, fx.rel_dir, ART_STORE_RDONLY);
	if (rc == 0)
		rc = read(s);
	art_store_close(s);
	return rc;
}

static int read_resolve(const art_store *s)
{
	art_release_resolve_opts opts = {1, 2};
	art_release *r = NULL;
	art_channel *c = NULL;
	art_verified_artifact *va = NULL;
	const char *const parts[] = {ART_PART_WASM};
	int rc;

	rc = art_release_channel_resolve_ex(s, fx.kr, "blue", NOW, &opts, &r, &c);
	if (rc == 0 && (r->number != 2 || c->seq != 2 || !r->verified))
		rc = wrong(__LINE__);
	if (rc == 0)
		rc = art_release_load_artifact(&va, s, fx.kr, r, "alpha", NOW, parts, 1);
	if (rc == 0 && (va->n_parts != 1 || strcmp(va->manifest->version, "1.1.0") != 0))
		rc = wrong(__LINE__);
	art_verified_artifact_free(va);
	art_release_free(r);
	art_channel_free(c);
	return rc;
}

static int read_listings(const art_store *s)
{
	art_release **rl = NULL;
	art_channel **cl = NULL, **hist = NULL;
	art_release *one = NULL;
	size_t nr = 0, nc = 0, nh = 0;
	int rc;

	rc = art_release_list(&rl, &nr, s, fx.kr, NOW);
	if (rc == 0 && (nr != 3 || !rl[2]->verified || rl[2]->verify_rc != 0))
		rc = wrong(__LINE__);
	if (rc == 0)
		rc = art_channel_list(&cl, &nc, s, fx.kr, NOW);
	if (rc == 0 && (nc != 1 || !cl[0]->verified || cl[0]->release != 2))
		rc = wrong(__LINE__);
	if (rc == 0)
		rc = art_channel_history(&hist, &nh, s, "blue");
	if (rc == 0 && (nh != 2 || hist[0]->release != 1 || hist[1]->release != 2))
		rc = wrong(__LINE__);
	if (rc == 0)
		rc = art_release_get(&one, s, fx.kr, 1, NOW);
	if (rc == 0 && (one->n_pins != 2 || !one->verified))
		rc = wrong(__LINE__);
	art_release_free(one);
	art_release_list_free(rl, nr);
	art_channel_list_free(cl, nc);
	art_channel_list_free(hist, nh);
	return rc;
}

static int read_listings_unverified(const art_store *s)
{
	art_release **rl = NULL;
	art_channel **cl = NULL;
	size_t nr = 0, nc = 0;
	int rc;

	rc = art_release_list(&rl, &nr, s, NULL, NOW);
	if (rc == 0 && (nr != 3 || rl[0]->verified))
		rc = wrong(__LINE__);
	if (rc == 0)
		rc = art_channel_list(&cl, &nc, s, NULL, NOW);
	if (rc == 0 && (nc != 1 || cl[0]->n_signers != 1))
		rc = wrong(__LINE__);
	art_release_list_free(rl, nr);
	art_channel_list_free(cl, nc);
	return rc;
}

static int read_envelopes(const art_store *s)
{
	char *renv = NULL, *cenv = NULL;
	size_t rlen = 0, clen = 0;
	art_release *r = NULL;
	art_channel *c = NULL;
	int rc;

	rc = art_release_envelope(&renv, &rlen, s, 2);
	if (rc == 0)
		rc = art_channel_envelope(&cenv, &clen, s, "blue");
	if (rc == 0)
		rc = art_release_verify_envelope(&r, fx.kr, renv, rlen, NOW, true);
	if (rc == 0)
		rc = art_channel_verify_envelope(&c, fx.kr, "blue", cenv, clen, NOW, 1);
	if (rc == 0 && (r->number != 2 || c->release != 2 ||
			strcmp(c->release_digest, r->digest) != 0))
		rc = wrong(__LINE__);
	free(renv);
	free(cenv);
	art_release_free(r);
	art_channel_free(c);
	return rc;
}

static int read_audit(const art_store *s)
{
	art_audit_entry *e = NULL;
	art_audit_report rep;
	char *cp = NULL, head[ART_SHA256_HEX_LEN + 1];
	size_t n = 0;
	uint64_t seq = 0;
	int rc;

	rc = art_audit_list(&e, &n, s, 1, 0);
	if (rc == 0 && (n == 0 || e[0].seq != 2))
		rc = wrong(__LINE__);
	if (rc == 0)
		rc = art_audit_verify_signed(&rep, s, fx.kr);
	if (rc == 0 && rep.entries != n + 1)
		rc = wrong(__LINE__);
	if (rc == 0)
		rc = art_audit_head(&seq, head, s);
	if (rc == 0)
		rc = art_audit_checkpoint(&cp, s, fx.rm2, NOW);
	if (rc == 0)
		rc = art_audit_verify_checkpoint(&rep, s, fx.kr, fx.checkpoint,
						 strlen(fx.checkpoint), NOW);
	if (rc == 0 && (rep.checkpoint_seq != seq || rep.head_seq != seq))
		rc = wrong(__LINE__);
	free(cp);
	art_audit_list_free(e, n);
	return rc;
}

typedef struct read_op {
	int (*read)(const art_store *s);
} read_op;

static int read_store(const art_store *s)
{
	art_store_entry *e = NULL;
	art_store_stats st;
	char *latest = NULL, *att = NULL, *name = NULL, *version = NULL;
	char resolved[72];
	size_t n = 0, ok = 0, failed = 0, att_len = 0;
	int rc;

	rc = art_store_verify_all(s, fx.kr, NOW, NULL, NULL, &ok, &failed);
	if (rc == 0 && (ok != 3 || failed != 0))
		rc = wrong(__LINE__);
	if (rc == 0)
		rc = art_store_list(&e, &n, s);
	if (rc == 0 && n != 3)
		rc = wrong(__LINE__);
	if (rc == 0)
		rc = art_store_latest(&latest, s, "alpha");
	if (rc == 0 && strcmp(latest, "1.1.0") != 0)
		rc = wrong(__LINE__);
	if (rc == 0)
		rc = art_store_get_attestation(&att, &att_len, s, "beta", "1.0.0");
	if (rc == 0)
		rc = art_store_stats_get(&st, s);
	art_manifest_digest(resolved, "alpha@1.1.0", 11);
	if (rc == 0)
		rc = art_store_cache_lookup(&name, &version, s, resolved,
					    "clang-19/wasi-libc/wabt-1.0.32");
	if (rc == 0 && (strcmp(name, "alpha") != 0 || strcmp(version, "1.1.0") != 0))
		rc = wrong(__LINE__);
	free(latest);
	free(att);
	free(name);
	free(version);
	art_store_list_free(e, n);
	return rc;
}

/* A signed (v2) keyring: parse, check, sign its successor, check that. */
static int run_signed_keyring(void *ctx)
{
	art_keyring *cur = NULL, *next = NULL;
	const art_key *roots[] = {fx.root};
	char *json = NULL;
	int rc;

	(void)ctx;
	rc = art_keyring_parse(&cur, fx.signed_keyring, strlen(fx.signed_keyring), "kr.json");
	if (rc == 0)
		rc = art_keyring_check(cur, "kr.json", NOW);
	if (rc == 0)
		rc = art_keyring_parse(&next, fx.signed_keyring, strlen(fx.signed_keyring),
				       "next.json");
	if (rc == 0)
		rc = art_keyring_sign(next, 2, LATER + DAY, roots, 1);
	if (rc == 0)
		rc = art_keyring_check_successor(cur, next, "next.json", NOW);
	if (rc == 0)
		rc = art_keyring_to_json(&json, next);
	if (rc == 0 && (!art_keyring_is_signed(next) || !strstr(json, "\"version\": 2")))
		rc = wrong(__LINE__);
	free(json);
	art_keyring_free(cur);
	art_keyring_free(next);
	return rc;
}

static int run_read(void *ctx)
{
	return with_rel_store(((const read_op *)ctx)->read);
}

static int run_checkpoint_dir(void *ctx)
{
	art_store *s = NULL;
	char *dir = NULL;
	uint64_t seq = 0;
	int rc;

	(void)ctx;
	if (asprintf(&dir, "%s/checkpoints", fx.tmp_dir) < 0)
		return AF_ENOMEM;
	rc = art_store_open(&s, fx.rel_dir, ART_STORE_RDONLY);
	if (rc == 0)
		rc = art_audit_checkpoint_to_dir(&seq, s, fx.rm1, dir, NOW);
	if (rc == 0 && seq == 0)
		rc = wrong(__LINE__);
	art_store_close(s);
	remove_tree(dir);
	free(dir);
	return rc;
}

static int run_bundle_export(void *ctx)
{
	static const char *const refs[] = {"alpha@1.0.0", "beta"};
	art_store *s = NULL;
	art_bundle_stats st;
	char *path = NULL, *sigs = NULL;
	int rc;

	(void)ctx;
	memset(&st, 0, sizeof(st));
	if (asprintf(&path, "%s/out.tar", fx.tmp_dir) < 0)
		return AF_ENOMEM;
	if (asprintf(&sigs, "%s/out.sigs.tar", fx.tmp_dir) < 0) {
		free(path);
		return AF_ENOMEM;
	}
	rc = art_store_open(&s, fx.rel_dir, ART_STORE_RDONLY);
	if (rc == 0)
		rc = art_bundle_export(&st, s, path, NULL, 0);
	if (rc == 0 && st.artifacts != 3)
		rc = wrong(__LINE__);
	if (rc == 0)
		rc = art_bundle_export_ex(&st, s, path, sigs, refs, 2);
	if (rc == 0 && st.artifacts != 2)
		rc = wrong(__LINE__);
	art_store_close(s);
	unlink(path);
	unlink(sigs);
	free(path);
	free(sigs);
	return rc;
}

static int run_attest(void *ctx)
{
	art_sig_info who;
	char *statement = NULL, *payload = NULL, *env = NULL, *sbom = NULL;
	size_t statement_len = 0, payload_len = 0, sbom_len = 0;
	art_provenance_extra extra;
	int rc;

	(void)ctx;
	memset(&extra, 0, sizeof(extra));
	extra.invocation_id = "https://ci.example.com/jobs/8";
	extra.started_on = T_2026;
	extra.finished_on = T_2026 + 1;
	rc = art_attest_verify_provenance(&who, &statement, &statement_len, fx.kr, fx.alpha,
					  fx.attestation, fx.attestation_len, NOW);
	if (rc == 0 && (strcmp(who.keyid, art_key_id(fx.builder)) != 0 ||
			!strstr(statement, "jobs/7")))
		rc = wrong(__LINE__);
	if (rc == 0)
		rc = art_attest_envelope_payload(&payload, &payload_len, fx.attestation,
						 fx.attestation_len);
	if (rc == 0 && (payload_len != statement_len || memcmp(payload, statement, payload_len)))
		rc = wrong(__LINE__);
	if (rc == 0)
		rc = art_attest_sign_provenance(&env, fx.builder, fx.provenance,
						fx.provenance_len, &extra);
	if (rc == 0)
		rc = art_attest_sbom(&sbom, &sbom_len, fx.alpha, NULL);
	if (rc == 0 && !strstr(sbom, "CycloneDX"))
		rc = wrong(__LINE__);
	free(statement);
	free(payload);
	free(env);
	free(sbom);
	return rc;
}

/* jansson's allocations (json_set_alloc_funcs) under the same counter, for
 * the operations whose every JSON allocation failure is AF_ENOMEM (a parse
 * that fails for want of memory is not: jansson does not say why). */
static void *json_fi_malloc(size_t n)
{
	return fi_should_fail() ? NULL : __real_malloc(n);
}

static void json_fi_free(void *p)
{
	free(p);
}

static int run_sbom(void *ctx)
{
	static const art_sbom_component comps[] = {
		{"library", "agentfactory-guest", "0.1.0", NULL,
		 "8058e34ac30897750ea839a88d396bec9016c2450f5311db75d6cd9613674e54", "guest"},
		{"library", "wasi-libc", "0.0~git20220510.9886d3d-2",
		 "pkg:deb/debian/wasi-libc@0.0~git20220510.9886d3d-2?arch=all", NULL, NULL}};
	art_provenance_extra extra;
	char *sbom = NULL;
	size_t len = 0;
	int rc;

	(void)ctx;
	memset(&extra, 0, sizeof(extra));
	extra.components = comps;
	extra.n_components = 2;
	rc = art_attest_sbom(&sbom, &len, fx.alpha, &extra);
	if (rc == 0 && (!strstr(sbom, "\"serialNumber\":\"urn:uuid:") ||
			!strstr(sbom, "dep:wasi-libc") || !strstr(sbom, "part:wasm") ||
			len != strlen(sbom)))
		rc = wrong(__LINE__);
	free(sbom);
	return rc;
}

/* Serializers only build JSON: each failed allocation is AF_ENOMEM. (Not
 * art_sig_sign: a statement jansson cannot build is "not UTF-8 text (or out
 * of memory)", as its message says: jansson does not tell them apart.) */
static int run_manifest_serialize(void *ctx)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	(void)ctx;
	rc = art_manifest_serialize(&text, &len, fx.alpha);
	if (rc == 0 && (len != strlen(text) || !strstr(text, "\"alpha\"")))
		rc = wrong(__LINE__);
	free(text);
	return rc;
}

static int run_keyring_to_json(void *ctx)
{
	char *json = NULL;
	int rc;

	(void)ctx;
	rc = art_keyring_to_json(&json, fx.kr);
	if (rc == 0 && !strstr(json, art_key_id(fx.rm1)))
		rc = wrong(__LINE__);
	free(json);
	return rc;
}

static void test_release_faults__json_allocation_failures_in_serializers(void **state)
{
	const fi_op ops[] = {
		{"art_attest_sbom (jansson allocations)", run_sbom, NULL, NULL},
		{"art_manifest_serialize (jansson allocations)", run_manifest_serialize, NULL, NULL},
		{"art_keyring_to_json (jansson allocations)", run_keyring_to_json, NULL, NULL},
	};
	long n[sizeof(ops) / sizeof(ops[0])];
	size_t i;

	(void)state;
	json_set_alloc_funcs(json_fi_malloc, json_fi_free);
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		n[i] = fi_torture(&ops[i]);
	json_set_alloc_funcs(malloc, free);
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (n[i] <= 0)
			fail_msg("%s: see above", ops[i].name);
	/* every JSON value of the SBOM is a failure point */
	assert_true(n[0] > 50);
}

/* ---- the tests ------------------------------------------------------------------ */

static void torture_write(const char *name, const char *from, int (*write)(art_store *, void *),
			  int expect, uint64_t before, uint64_t after, unsigned threshold)
{
	write_op w = {from, write, expect, before, after, threshold, false};
	fi_op op = {name, run_write, undo_write, &w};

	reset_work(from);
	if (fi_torture(&op) <= 0)
		fail_msg("%s: see above", name);
}

static void test_release_faults__writes_under_allocation_failure(void **state)
{
	(void)state;
	torture_write("art_release_create", fx.rel_dir, op_create, 0, 2, 2, 0);
	torture_write("art_release_create (refused: missing)", fx.rel_dir, op_create_missing,
		      AF_ENOTFOUND, 2, 2, 0);
	torture_write("art_release_promote", fx.rel_dir, op_promote, 0, 2, 3, 0);
	torture_write("art_release_promote (new channel)", fx.rel_dir, op_promote_new_channel, 0,
		      2, 2, 0);
	torture_write("art_release_promote (refused: older)", fx.rel_dir, op_promote_older,
		      AF_EDENIED, 2, 2, 0);
	torture_write("art_release_rollback", fx.rel_dir, op_rollback, 0, 2, 1, 0);
	torture_write("art_release_set_threshold", fx.rel_dir, op_set_threshold, 0, 2, 2, 2);
	torture_write("art_audit_append (signed)", fx.rel_dir, op_audit_append, 0, 2, 2, 0);
	torture_write("art_release_import", fx.art_dir, op_import, 0, 0, 2, 0);
}

static void test_release_faults__reads_under_allocation_failure(void **state)
{
	read_op reads[] = {{read_resolve}, {read_listings}, {read_listings_unverified},
			   {read_envelopes}, {read_audit}, {read_store}};
	const fi_op ops[] = {
		{"art_release_channel_resolve_ex+load_artifact", run_read, NULL, &reads[0]},
		{"art_release_list+channel_list+history+get", run_read, NULL, &reads[1]},
		{"listings without a keyring", run_read, NULL, &reads[2]},
		{"envelopes+verify_envelope", run_read, NULL, &reads[3]},
		{"art_audit list+verify_signed+checkpoint", run_read, NULL, &reads[4]},
		{"store verify_all+list+latest+attestation+stats+cache", run_read, NULL, &reads[5]},
		{"signed keyring parse+check+sign+successor", run_signed_keyring, NULL, NULL},
		{"art_audit_checkpoint_to_dir", run_checkpoint_dir, NULL, NULL},
		{"art_attest verify+payload+sign+sbom", run_attest, NULL, NULL},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (fi_torture(&ops[i]) <= 0)
			fail_msg("%s: see above", ops[i].name);
}

static void test_release_faults__bundles_under_allocation_failure(void **state)
{
	const fi_op ops[] = {
		{"art_bundle_export+export_ex", run_bundle_export, NULL, NULL},
	};

	(void)state;
	if (fi_torture(&ops[0]) <= 0)
		fail_msg("%s: see above", ops[0].name);
	torture_write("art_bundle_import_ex", NULL, op_bundle_import, 0, 0, 0, 0);
	torture_write("art_bundle_import_mem_ex", NULL, op_bundle_import_mem, 0, 0, 0, 0);
}

/* LMDB: each call of a promote fails in turn; the store is before or after. */
static void lmdb_torture(const char *name, const char *from,
			 int (*write)(art_store *, void *), uint64_t before, uint64_t after)
{
	write_op w = {from, write, 0, before, after, 0, false};
	long n, nbefore = 0, nafter = 0;
	uint64_t at;
	int rc;

	for (n = 1;; n++) {
		bool failed;

		reset_work(from);
		lib_arm(n);
		rc = run_write(&w);
		failed = lib_disarm();
		/* reported, with a message (before the checks below clear it) */
		if (failed && rc == 0)
			fail_msg("%s: LMDB call %ld (%s) failed but it succeeded", name, n,
				 lib_failed_call);
		if (failed && art_error_last()[0] == '\0')
			fail_msg("%s: LMDB call %ld (%s) failed: %d without a message", name, n,
				 lib_failed_call, rc);
		at = blue_release(fx.work_dir, NULL);
		if (!failed) {
			assert_int_equal(rc, 0);
			assert_true(at == after);
			break;
		}
		if (at == before)
			nbefore++;
		else if (at == after)
			nafter++;
		else
			fail_msg("%s: LMDB call %ld (%s) failed: blue points at %llu", name, n,
				 lib_failed_call, (unsigned long long)at);
	}
	printf("%s: %ld LMDB failure points (%ld before, %ld after)\n", name, n - 1, nbefore,
	       nafter);
	assert_true(n > 3);
}

static void test_release_faults__lmdb_failures_leave_channels_before_or_after(void **state)
{
	(void)state;
	lib_lmdb_only = true;
	lmdb_torture("promote", fx.rel_dir, op_promote, 2, 3);
	lmdb_torture("rollback", fx.rel_dir, op_rollback, 2, 1);
	lmdb_torture("import", fx.art_dir, op_import, 0, 2);
	/* writes that leave blue alone: reported, and the audit chain verifies */
	lmdb_torture("create", fx.rel_dir, op_create, 2, 2);
	lmdb_torture("set-threshold", fx.rel_dir, op_set_threshold, 2, 2);
	lmdb_torture("audit append", fx.rel_dir, op_audit_append, 2, 2);
	lmdb_torture("bundle import", NULL, op_bundle_import, 0, 0);
	lib_lmdb_only = false;
}

/* OpenSSL: a failing call never resolves a channel, never verifies an
 * envelope, an attestation or a checkpoint; signing reports it. */
static void test_release_faults__openssl_failures_never_verify(void **state)
{
	art_store *s = NULL;
	art_release *r = NULL;
	art_channel *c = NULL;
	art_audit_report rep;
	art_sig_info who;
	long n, nbefore = 0;
	int rc;

	(void)state;
	lib_lmdb_only = false;
	lib_crypto_only = true;
	assert_int_equal(art_store_open(&s, fx.rel_dir, ART_STORE_RDONLY), 0);
	for (n = 1;; n++) {
		lib_arm(n);
		rc = art_release_channel_resolve(s, fx.kr, "blue", NOW, &r);
		if (!lib_disarm()) {
			assert_int_equal(rc, 0);
			break;
		}
		if (rc == 0)
			fail_msg("%s (call %ld) failed and blue still resolved", lib_failed_call, n);
		assert_null(r);
	}
	art_release_free(r);
	assert_true(n > 2);
	for (n = 1;; n++) {
		lib_arm(n);
		rc = art_channel_verify_envelope(&c, fx.kr, "blue", fx.blue_env, fx.blue_len, NOW, 1);
		if (!lib_disarm())
			break;
		if (rc == 0)
			fail_msg("%s (call %ld) failed and the channel record verified",
				 lib_failed_call, n);
		assert_null(c);
	}
	assert_int_equal(rc, 0);
	art_channel_free(c);
	for (n = 1;; n++) {
		lib_arm(n);
		rc = art_attest_verify_provenance(&who, NULL, NULL, fx.kr, fx.alpha, fx.attestation,
						  fx.attestation_len, NOW);
		if (!lib_disarm())
			break;
		if (rc == 0)
			fail_msg("%s (call %ld) failed and the attestation verified",
				 lib_failed_call, n);
	}
	assert_int_equal(rc, 0);
	for (n = 1;; n++) {
		lib_arm(n);
		rc = art_audit_verify_checkpoint(&rep, s, fx.kr, fx.checkpoint,
						 strlen(fx.checkpoint), NOW);
		if (!lib_disarm())
			break;
		if (rc == 0)
			fail_msg("%s (call %ld) failed and the checkpoint verified", lib_failed_call,
				 n);
	}
	assert_int_equal(rc, 0);
	art_store_close(s);
	/* signing a release: reported, and the store unchanged */
	reset_work(fx.rel_dir);
	for (n = 1;; n++) {
		write_op w = {fx.rel_dir, op_create, 0, 2, 2, 0, false};
		art_store *ws = NULL;
		art_release **list = NULL;
		size_t nl = 0;

		lib_arm(n);
		rc = run_write(&w);
		if (!lib_disarm()) {
			assert_int_equal(rc, 0);
			break;
		}
		if (rc == 0)
			fail_msg("%s (call %ld) failed and the release was created", lib_failed_call,
				 n);
		/* a failed verification of an artifact is its refusal (fail closed) */
		if (rc != AF_ECRYPTO && rc != AF_ENOMEM && rc != AF_ESIGNATURE)
			fail_msg("%s (call %ld) failed: art_release_create said %d (%s)",
				 lib_failed_call, n, rc, art_error_last());
		/* before (signing failed) or after (reading the new release back
		 * failed: it is in the store, verified by the next reader) */
		assert_int_equal(art_store_open(&ws, fx.work_dir, ART_STORE_RDONLY), 0);
		assert_int_equal(art_release_list(&list, &nl, ws, NULL, NOW), 0);
		if (nl != 3 && nl != 4)
			fail_msg("%s (call %ld) failed: %zu releases", lib_failed_call, n, nl);
		nbefore += nl == 3;
		art_release_list_free(list, nl);
		art_store_close(ws);
		(void)blue_release(fx.work_dir, NULL); /* the audit chain verifies */
		reset_work(fx.rel_dir);
	}
	lib_crypto_only = false;
	printf("OpenSSL: release create has %ld failure points (%ld before)\n", n - 1, nbefore);
	assert_true(nbefore > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_release_faults__writes_under_allocation_failure),
		cmocka_unit_test(test_release_faults__reads_under_allocation_failure),
		cmocka_unit_test(test_release_faults__bundles_under_allocation_failure),
		cmocka_unit_test(test_release_faults__lmdb_failures_leave_channels_before_or_after),
		cmocka_unit_test(test_release_faults__openssl_failures_never_verify),
		cmocka_unit_test(test_release_faults__json_allocation_failures_in_serializers),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
