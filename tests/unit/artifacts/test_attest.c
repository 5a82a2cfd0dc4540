/*
 * test_attest.c - the SLSA provenance attestation (DSSE, in-toto) and the
 * CycloneDX SBOM of an artifact: what a build stores, that the reproducible
 * parts do not change between two builds while the detached attestation
 * does, and the attacks on the attestation: a flipped payload, another key,
 * a subject digest that is not the part's, a statement of another artifact,
 * a re-signed statement with another builder id; plus a store written before
 * attestations existed (no "attestations" database) read by this version.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "art/attest.h"
#include "art/error.h"
#include "art/keyring.h"
#include "art/keys.h"
#include "art/manifest.h"
#include "art/store.h"
#include "art/util.h"

#include <ftw.h>
#include <jansson.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define T_2026 ((time_t)1767225600)
#define NOW (T_2026 + 86400)
#define COMPAT "x86_64-linux-gnu/wasm-rt-1.0.32/guest-abi-1"
#define GUEST_HEX "8058e34ac30897750ea839a88d396bec9016c2450f5311db75d6cd9613674e54"

static struct {
	art_key *builder, *stranger;
	art_keyring *kr;
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
	char *d = strdup("/tmp/af-attest-test-XXXXXX");

	if (!d || !mkdtemp(d))
		return NULL;
	return d;
}

static void remove_dir(char *d)
{
	if (d)
		nftw(d, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(d);
}

/* Build name@version with every provenance fact; times as given. */
static int put_agent(art_store_txn *t, const char *name, const char *version, const art_key *key,
		     time_t started, const char *invocation)
{
	art_manifest_import imports[] = {{"af", "log", "func"}};
	art_manifest_export exports[] = {{"af_handle", "func"}};
	const char *caps[] = {"log"};
	static const art_provenance_file templates[] = {
		{"templates/agent.yaml", "1111111111111111111111111111111111111111111111111111111111111111",
		 "2222222222222222222222222222222222222222"},
		{"templates/bases/base.yaml",
		 "3333333333333333333333333333333333333333333333333333333333333333", NULL}};
	static const art_sbom_component comps[] = {
		{"library", "agentfactory-guest", "0.1.0", NULL, GUEST_HEX, "guest library"},
		{"library", "wasi-libc", "0.0~git20220510.9886d3d-2",
		 "pkg:deb/debian/wasi-libc@0.0~git20220510.9886d3d-2?arch=all", NULL, NULL},
		{"application", "clang", "19.1.7", NULL, NULL, "Debian clang version 19.1.7"}};
	char resolved[72], text[256], wasm[2048], native[4096], source[512];
	art_manifest_info info;
	art_provenance_info prov = {"https://git.example.com/agents.git", "main",
				    "https://agentfactory.dev/builder/v1"};
	art_provenance_extra extra;
	art_build_parts parts;
	size_t i;

	snprintf(text, sizeof(text), "%s@%s", name, version);
	art_manifest_digest(resolved, text, strlen(text));
	snprintf(source, sizeof(source), "/* %s */\n", text);
	memcpy(wasm, "\0asm\1\0\0\0", 8);
	for (i = 8; i < sizeof(wasm); i++)
		wasm[i] = (char)(i * 7 + strlen(text) * (i % 13));
	memcpy(native, "\x7f" "ELF", 4);
	for (i = 4; i < sizeof(native); i++)
		native[i] = (char)(i * 3 + strlen(name) * (i % 11));
	memset(&info, 0, sizeof(info));
	info.name = name;
	info.version = version;
	info.resolved_template_digest = resolved;
	info.git_commit = "0123456789abcdef0123456789abcdef01234567";
	info.policy_digest = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
	info.toolchain_id = "af-toolchain/1 clang=x; guest-src=sha256:" GUEST_HEX;
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
	extra.template_path = "templates/agent.yaml";
	extra.templates = templates;
	extra.n_templates = 2;
	extra.components = comps;
	extra.n_components = 3;
	extra.invocation_id = invocation;
	extra.started_on = started;
	extra.finished_on = started ? started + 5 : 0;
	parts.wasm = wasm;
	parts.wasm_len = sizeof(wasm);
	parts.native = native;
	parts.native_len = sizeof(native);
	parts.source = source;
	parts.source_len = strlen(source);
	return art_store_put_build_ex(t, NULL, &info, &prov, &extra, &parts, key);
}

static art_store *build_store(char **dir, time_t started, const char *invocation)
{
	art_store *s = NULL;
	art_store_txn *t = NULL;

	*dir = temp_dir();
	assert_non_null(*dir);
	assert_int_equal(art_store_open(&s, *dir, ART_STORE_CREATE), 0);
	assert_int_equal(art_store_txn_begin(&t, s), 0);
	assert_int_equal(put_agent(t, "alpha", "1.0.0", fx.builder, started, invocation), 0);
	assert_int_equal(put_agent(t, "beta", "2.0.0", fx.builder, started, invocation), 0);
	assert_int_equal(art_store_txn_commit(t), 0);
	return s;
}

static art_manifest *manifest_of(const art_store *s, const char *name)
{
	art_store_record *rec = NULL;
	art_manifest *m = NULL;

	assert_int_equal(art_store_get_artifact(&rec, s, name, NULL), 0);
	assert_int_equal(art_manifest_parse(&m, rec->manifest, rec->manifest_len), 0);
	art_store_record_free(rec);
	return m;
}

static uint8_t *part_bytes(const art_store *s, const art_manifest *m, const char *part,
			   size_t *len)
{
	uint8_t *b = NULL;

	assert_non_null(art_manifest_part_get(m, part));
	assert_int_equal(art_store_get_blob(&b, len, s, art_manifest_part_get(m, part)->digest + 7),
			 0);
	return b;
}

static int group_setup(void **state)
{
	(void)state;
	if (art_key_generate(&fx.builder, 2048) < 0 || art_key_generate(&fx.stranger, 2048) < 0 ||
	    art_keyring_new(&fx.kr) < 0 ||
	    art_keyring_add(fx.kr, fx.builder, ART_ROLE_BUILDER, T_2026, T_2026 + 364 * 86400) < 0)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	art_key_free(fx.builder);
	art_key_free(fx.stranger);
	art_keyring_free(fx.kr);
	return 0;
}

static void test_attest__build_stores_attestation_and_sbom(void **state)
{
	char *dir = NULL, *env = NULL, *statement = NULL;
	size_t env_len = 0, statement_len = 0, prov_len = 0, ok = 0, failed = 0;
	art_store *s = build_store(&dir, T_2026 + 100, "https://ci.example.com/jobs/42");
	art_manifest *m = manifest_of(s, "alpha");
	uint8_t *prov = part_bytes(s, m, ART_PART_PROVENANCE, &prov_len);
	json_t *st, *meta, *deps, *sbom;
	art_sig_info who;
	uint8_t *sb;
	size_t sb_len, i;
	int templates = 0;

	(void)state;
	assert_string_equal(art_manifest_part_get(m, ART_PART_SBOM)->media_type, ART_MEDIA_SBOM);
	assert_int_equal(art_store_get_attestation(&env, &env_len, s, "alpha", "1.0.0"), 0);
	assert_non_null(strstr(env, "\"payloadType\": \"application/vnd.in-toto+json\""));
	assert_int_equal(art_attest_verify_provenance(&who, &statement, &statement_len, fx.kr, m,
						      env, env_len, NOW), 0);
	assert_string_equal(who.keyid, art_key_id(fx.builder));
	/* the signed statement = the provenance part + run metadata */
	st = json_loadb(statement, statement_len, 0, NULL);
	assert_non_null(st);
	meta = json_object_get(json_object_get(json_object_get(st, "predicate"), "runDetails"),
			       "metadata");
	assert_string_equal(json_string_value(json_object_get(meta, "invocationId")),
			    "https://ci.example.com/jobs/42");
	assert_string_equal(json_string_value(json_object_get(meta, "startedOn")),
			    "2026-01-01T00:01:40Z");
	assert_string_equal(json_string_value(json_object_get(meta, "finishedOn")),
			    "2026-01-01T00:01:45Z");
	assert_null(memmem(prov, prov_len, "metadata", 8));
	assert_null(memmem(prov, prov_len, "2026-", 5));
	deps = json_object_get(json_object_get(json_object_get(st, "predicate"), "buildDefinition"),
			       "resolvedDependencies");
	for (i = 0; i < json_array_size(deps); i++) {
		json_t *d = json_array_get(deps, i);
		const char *n = json_string_value(json_object_get(d, "name"));

		if (n && !strcmp(n, "templates/agent.yaml"))
			templates += !strcmp(json_string_value(json_object_get(
						     json_object_get(d, "digest"), "gitBlob")),
					     "2222222222222222222222222222222222222222");
		if (n && !strcmp(n, "templates/bases/base.yaml"))
			templates++;
	}
	assert_int_equal(templates, 2);
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(
				    json_object_get(st, "predicate"), "buildDefinition"),
				    "externalParameters"), "templatePath")), "templates/agent.yaml");
	json_decref(st);
	/* the SBOM: CycloneDX 1.5, the agent, its parts and components */
	sb = part_bytes(s, m, ART_PART_SBOM, &sb_len);
	sbom = json_loadb((const char *)sb, sb_len, 0, NULL);
	assert_non_null(sbom);
	assert_string_equal(json_string_value(json_object_get(sbom, "bomFormat")), "CycloneDX");
	assert_string_equal(json_string_value(json_object_get(sbom, "specVersion")), "1.5");
	assert_int_equal(strncmp(json_string_value(json_object_get(sbom, "serialNumber")),
				 "urn:uuid:", 9), 0);
	assert_int_equal(json_array_size(json_object_get(sbom, "components")), 3 + 3);
	assert_non_null(memmem(sb, sb_len, "pkg:deb/debian/wasi-libc@", 25));
	assert_non_null(memmem(sb, sb_len, GUEST_HEX, 64));
	json_decref(sbom);
	free(sb);
	/* verify_all checks attestations too */
	assert_int_equal(art_store_verify_all(s, fx.kr, NOW, NULL, NULL, &ok, &failed), 0);
	assert_int_equal(ok, 2);
	assert_int_equal(failed, 0);
	free(prov);
	free(env);
	free(statement);
	art_manifest_free(m);
	art_store_close(s);
	remove_dir(dir);
}

/* Two builds at other times, other runs: same parts and manifests, other envelopes. */
static void test_attest__reproducible_parts_detached_signatures(void **state)
{
	char *d1 = NULL, *d2 = NULL, *e1 = NULL, *e2 = NULL;
	size_t l1 = 0, l2 = 0;
	art_store *s1 = build_store(&d1, T_2026 + 100, "run-1");
	art_store *s2 = build_store(&d2, T_2026 + 90000, "run-2");
	art_store_record *r1 = NULL, *r2 = NULL;
	art_manifest *m2;

	(void)state;
	assert_int_equal(art_store_get_artifact(&r1, s1, "alpha", NULL), 0);
	assert_int_equal(art_store_get_artifact(&r2, s2, "alpha", NULL), 0);
	assert_string_equal(r1->manifest_digest, r2->manifest_digest);
	assert_int_equal(art_store_get_attestation(&e1, &l1, s1, "alpha", NULL), 0);
	assert_int_equal(art_store_get_attestation(&e2, &l2, s2, "alpha", NULL), 0);
	assert_true(l1 != l2 || memcmp(e1, e2, l1) != 0);
	/* each attestation verifies against the other build's manifest too */
	m2 = manifest_of(s2, "alpha");
	assert_int_equal(art_attest_verify_provenance(NULL, NULL, NULL, fx.kr, m2, e1, l1, NOW), 0);
	art_manifest_free(m2);
	free(e1);
	free(e2);
	art_store_record_free(r1);
	art_store_record_free(r2);
	art_store_close(s1);
	art_store_close(s2);
	remove_dir(d1);
	remove_dir(d2);
}

/* Re-sign env's statement after fn edits it. */
static char *resign(const char *env, size_t len, const art_key *key, void (*fn)(json_t *))
{
	char *payload = NULL, *text, *out = NULL;
	size_t plen = 0;
	json_t *st;

	assert_int_equal(art_attest_envelope_payload(&payload, &plen, env, len), 0);
	st = json_loadb(payload, plen, 0, NULL);
	assert_non_null(st);
	fn(st);
	text = json_dumps(st, JSON_COMPACT | JSON_SORT_KEYS);
	assert_int_equal(art_sig_sign_payload(&out, key, ART_SIG_TYPE_INTOTO, text, strlen(text)),
			 0);
	free(text);
	free(payload);
	json_decref(st);
	return out;
}

static void no_edit(json_t *st)
{
	(void)st;
}

static void edit_subject(json_t *st)
{
	json_t *d = json_object_get(json_array_get(json_object_get(st, "subject"), 0), "digest");

	json_object_set_new(d, "sha256", json_string("0000000000000000000000000000000000000000"
						     "000000000000000000000000"));
}

static void edit_builder(json_t *st)
{
	json_object_set_new(json_object_get(json_object_get(json_object_get(st, "predicate"),
							   "runDetails"), "builder"),
			    "id", json_string("https://evil.example.com/builder"));
}

static void unedit_builder(json_t *st)
{
	json_object_set_new(json_object_get(json_object_get(json_object_get(st, "predicate"),
							   "runDetails"), "builder"),
			    "id", json_string("https://agentfactory.dev/builder/v1"));
}

static void edit_metadata(json_t *st)
{
	json_t *meta = json_object();

	json_object_set_new(meta, "invocationId", json_string("another run"));
	json_object_set_new(json_object_get(json_object_get(st, "predicate"), "runDetails"),
			    "metadata", meta);
}

static void test_attest__attacks_refused(void **state)
{
	char *dir = NULL, *env = NULL, *beta_env = NULL, *bad;
	size_t len = 0, beta_len = 0;
	art_store *s = build_store(&dir, T_2026 + 100, NULL);
	art_manifest *m = manifest_of(s, "alpha");
	json_t *root;
	char *flipped;

	(void)state;
	assert_int_equal(art_store_get_attestation(&env, &len, s, "alpha", NULL), 0);
	assert_int_equal(art_store_get_attestation(&beta_env, &beta_len, s, "beta", NULL), 0);

	/* payload flipped, signature kept */
	root = json_loadb(env, len, 0, NULL);
	{
		char *p = strdup(json_string_value(json_object_get(root, "payload")));

		p[40] = p[40] == 'A' ? 'B' : 'A';
		json_object_set_new(root, "payload", json_string(p));
		free(p);
	}
	flipped = json_dumps(root, 0);
	json_decref(root);
	assert_int_equal(art_attest_verify_provenance(NULL, NULL, NULL, fx.kr, m, flipped,
						      strlen(flipped), NOW), AF_ESIGNATURE);
	assert_non_null(strstr(art_error_last(), "does not verify"));
	free(flipped);

	/* signed by a key the keyring does not trust */
	bad = resign(env, len, fx.stranger, no_edit);
	assert_int_equal(art_attest_verify_provenance(NULL, NULL, NULL, fx.kr, m, bad, strlen(bad),
						      NOW), AF_ENOTFOUND);
	free(bad);

	/* a subject digest that is not the part's (validly signed) */
	bad = resign(env, len, fx.builder, edit_subject);
	assert_int_equal(art_attest_verify_provenance(NULL, NULL, NULL, fx.kr, m, bad, strlen(bad),
						      NOW), AF_ESIGNATURE);
	assert_non_null(strstr(art_error_last(), "does not describe these bytes"));
	free(bad);

	/* another builder id, re-signed: not the provenance the manifest covers */
	bad = resign(env, len, fx.builder, edit_builder);
	assert_int_equal(art_attest_verify_provenance(NULL, NULL, NULL, fx.kr, m, bad, strlen(bad),
						      NOW), AF_ESIGNATURE);
	assert_non_null(strstr(art_error_last(), "not the artifact's provenance"));
	free(bad);

	/* only the run metadata changed: still the same provenance */
	bad = resign(env, len, fx.builder, edit_metadata);
	assert_int_equal(art_attest_verify_provenance(NULL, NULL, NULL, fx.kr, m, bad, strlen(bad),
						      NOW), 0);
	free(bad);

	/* beta's attestation presented for alpha */
	assert_int_equal(art_attest_verify_provenance(NULL, NULL, NULL, fx.kr, m, beta_env,
						      beta_len, NOW), AF_ESIGNATURE);
	assert_non_null(strstr(art_error_last(), "not a part of alpha@1.0.0"));

	/* a manifest envelope is no attestation (payload type) */
	{
		art_store_record *rec = NULL;

		assert_int_equal(art_store_get_artifact(&rec, s, "alpha", NULL), 0);
		assert_int_equal(art_attest_verify_provenance(NULL, NULL, NULL, fx.kr, m,
							      rec->envelope, rec->envelope_len,
							      NOW), AF_ESIGNATURE);
		art_store_record_free(rec);
	}
	free(env);
	free(beta_env);
	art_manifest_free(m);
	art_store_close(s);
	remove_dir(dir);
}

/* A tampered attestation stored in place: verify_all names the artifact. */
static void test_attest__verify_all_reports_bad_attestation(void **state)
{
	char *dir = NULL, *env = NULL, *bad;
	size_t len = 0, ok = 0, failed = 0;
	art_store *s = build_store(&dir, T_2026 + 100, NULL);
	art_store_record *rec = NULL;
	art_manifest *m = manifest_of(s, "alpha");
	art_store_txn *t = NULL;

	(void)state;
	assert_int_equal(art_store_get_attestation(&env, &len, s, "alpha", NULL), 0);
	assert_int_equal(art_store_get_artifact(&rec, s, "alpha", NULL), 0);
	bad = resign(env, len, fx.builder, edit_builder);
	/* the store checks the form only, not the signature */
	assert_int_equal(art_store_txn_begin(&t, s), 0);
	assert_int_equal(art_store_put_artifact_ex(t, m, rec->envelope, rec->envelope_len, "{}", 2),
			 AF_EINVAL);
	assert_int_equal(art_store_put_artifact_ex(t, m, rec->envelope, rec->envelope_len, bad,
						   strlen(bad)), 0);
	assert_int_equal(art_store_txn_commit(t), 0);
	assert_int_equal(art_store_verify_all(s, fx.kr, NOW, NULL, NULL, &ok, &failed),
			 AF_ESIGNATURE);
	assert_int_equal(ok, 1);
	assert_int_equal(failed, 1);
	/* the same manifest again without an attestation (a bundle imported
	 * without its signatures/): the stored one is kept, not stripped */
	assert_int_equal(art_store_txn_begin(&t, s), 0);
	assert_int_equal(art_store_put_artifact(t, m, rec->envelope, rec->envelope_len), 0);
	assert_int_equal(art_store_txn_commit(t), 0);
	free(env);
	env = NULL;
	assert_int_equal(art_store_get_attestation(&env, &len, s, "alpha", NULL), 0);
	assert_string_equal(env, bad);
	/* a good attestation replaces it */
	{
		char *good = resign(bad, strlen(bad), fx.builder, unedit_builder);

		assert_int_equal(art_store_txn_begin(&t, s), 0);
		assert_int_equal(art_store_put_artifact_ex(t, m, rec->envelope, rec->envelope_len,
							   good, strlen(good)), 0);
		assert_int_equal(art_store_txn_commit(t), 0);
		free(good);
	}
	assert_int_equal(art_store_verify_all(s, fx.kr, NOW, NULL, NULL, &ok, &failed), 0);
	assert_int_equal(ok, 2);
	/* another manifest under the same name@version without an attestation
	 * (a rebuild by an older tool): the old attestation must go */
	{
		art_manifest *m2 = manifest_of(s, "alpha");
		char *bytes = NULL, *env2 = NULL;
		size_t blen = 0;

		free(m2->toolchain_id);
		m2->toolchain_id = strdup("af-toolchain/1 another");
		assert_int_equal(art_manifest_serialize(&bytes, &blen, m2), 0);
		assert_int_equal(art_sig_sign_payload(&env2, fx.builder, ART_MANIFEST_PAYLOAD_TYPE,
						      bytes, blen), 0);
		assert_int_equal(art_store_txn_begin(&t, s), 0);
		assert_int_equal(art_store_put_artifact(t, m2, env2, strlen(env2)), 0);
		assert_int_equal(art_store_txn_commit(t), 0);
		free(env);
		env = NULL;
		assert_int_equal(art_store_get_attestation(&env, &len, s, "alpha", NULL),
				 AF_ENOTFOUND);
		assert_non_null(strstr(art_error_last(), "no provenance attestation"));
		assert_int_equal(art_store_verify_all(s, fx.kr, NOW, NULL, NULL, &ok, &failed), 0);
		assert_int_equal(ok, 2);
		free(bytes);
		free(env2);
		art_manifest_free(m2);
	}
	free(bad);
	art_store_record_free(rec);
	art_manifest_free(m);
	art_store_close(s);
	remove_dir(dir);
}

/* A store written before attestations has no "attestations" database. */
static void test_attest__store_without_attestations_database(void **state)
{
	char *dir = NULL, *env = NULL, path[512];
	size_t len = 0, ok = 0, failed = 0;
	art_store *s = build_store(&dir, T_2026 + 100, NULL);
	MDB_env *menv = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;

	(void)state;
	art_store_close(s);
	/* drop the database as an older version would never have created it */
	snprintf(path, sizeof(path), "%s", dir);
	assert_int_equal(mdb_env_create(&menv), 0);
	assert_int_equal(mdb_env_set_maxdbs(menv, 16), 0);
	assert_int_equal(mdb_env_set_mapsize(menv, 64u << 20), 0);
	assert_int_equal(mdb_env_open(menv, path, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(menv, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "attestations", 0, &dbi), 0);
	assert_int_equal(mdb_drop(txn, dbi, 1), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(menv);

	/* read-only: no attestations, everything else verifies */
	assert_int_equal(art_store_open(&s, dir, ART_STORE_RDONLY), 0);
	assert_int_equal(art_store_get_attestation(&env, &len, s, "alpha", NULL), AF_ENOTFOUND);
	assert_int_equal(art_store_verify_all(s, fx.kr, NOW, NULL, NULL, &ok, &failed), 0);
	assert_int_equal(ok, 2);
	art_store_close(s);
	/* read-write: the database is created and a new build gets one */
	assert_int_equal(art_store_open(&s, dir, 0), 0);
	{
		art_store_txn *t = NULL;

		assert_int_equal(art_store_txn_begin(&t, s), 0);
		assert_int_equal(put_agent(t, "gamma", "1.0.0", fx.builder, 0, NULL), 0);
		assert_int_equal(art_store_txn_commit(t), 0);
	}
	assert_int_equal(art_store_get_attestation(&env, &len, s, "gamma", NULL), 0);
	free(env);
	art_store_close(s);
	remove_dir(dir);
}

static void test_attest__sbom_and_provenance_refuse_bad_input(void **state)
{
	char *dir = NULL, *out = NULL;
	size_t len = 0;
	art_store *s = build_store(&dir, 0, NULL);
	art_manifest *m = manifest_of(s, "alpha");
	art_provenance_info prov = {"https://git.example.com/agents.git", "main",
				    "https://agentfactory.dev/builder/v1"};
	art_sbom_component bad_comp = {"library", "x", NULL, NULL, "not-hex", NULL};
	art_provenance_file bad_file = {"templates/a.yaml", "xyz", NULL};
	art_provenance_extra extra;

	(void)state;
	memset(&extra, 0, sizeof(extra));
	extra.components = &bad_comp;
	extra.n_components = 1;
	assert_int_equal(art_manifest_provenance_ex(&out, &len, m, &prov, &extra), AF_EINVAL);
	memset(&extra, 0, sizeof(extra));
	extra.templates = &bad_file;
	extra.n_templates = 1;
	assert_int_equal(art_manifest_provenance_ex(&out, &len, m, &prov, &extra), AF_EINVAL);
	assert_null(out);
	/* not a SLSA statement: nothing to sign */
	assert_int_equal(art_attest_sign_provenance(&out, fx.builder, "{}", 2, NULL), AF_EINVAL);
	assert_int_equal(art_attest_envelope_payload(&out, &len, "{}", 2), AF_ECORRUPT);
	art_manifest_free(m);
	art_store_close(s);
	remove_dir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_attest__build_stores_attestation_and_sbom),
		cmocka_unit_test(test_attest__reproducible_parts_detached_signatures),
		cmocka_unit_test(test_attest__attacks_refused),
		cmocka_unit_test(test_attest__verify_all_reports_bad_attestation),
		cmocka_unit_test(test_attest__store_without_attestations_database),
		cmocka_unit_test(test_attest__sbom_and_provenance_refuse_bad_input),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
