/*
 * test_release.c - releases and channels: create (numbers grow, pins,
 * verification of what is released), promote, rollback, thresholds, the
 * reader API the runtime uses (resolve, load through a pin), and the
 * refusals the issue lists: an older release promoted, the same version with
 * different content, a threshold not met, one key counted twice (listed
 * twice, or two signatures by one key forged into a record), revoked,
 * expired and wrong-role keys, expired releases (freeze protection), key
 * rotation with overlapping windows (cases that must pass and must fail),
 * records tampered with inside LMDB, replayed records. Every refusal leaves
 * the store unchanged except for its "refused" audit entry, and the audit
 * chain verifies after everything. Crash safety: a process promoting is
 * SIGKILLed at random points 24 times; each time exactly one release is
 * active on the channel and the audit log agrees with it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "art/audit.h"
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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define T_2026 ((time_t)1767225600)
#define NOW (T_2026 + 86400)
#define HOUR ((time_t)3600)
#define DAY ((time_t)86400)
#define LATER (NOW + 30 * DAY)

static struct {
	art_key *builder, *rm1, *rm2, *rm3, *revoked, *expired, *signer, *stranger;
	art_keyring *kr;
} fx;

static int group_setup(void **state)
{
	(void)state;
	if (art_key_generate(&fx.builder, 2048) < 0 || art_key_generate(&fx.rm1, 2048) < 0 ||
	    art_key_generate(&fx.rm2, 2048) < 0 || art_key_generate(&fx.rm3, 2048) < 0 ||
	    art_key_generate(&fx.revoked, 2048) < 0 || art_key_generate(&fx.expired, 2048) < 0 ||
	    art_key_generate(&fx.signer, 2048) < 0 || art_key_generate(&fx.stranger, 2048) < 0 ||
	    art_keyring_new(&fx.kr) < 0 ||
	    art_keyring_add(fx.kr, fx.builder, ART_ROLE_BUILDER, T_2026, 0) < 0 ||
	    art_keyring_add(fx.kr, fx.rm1, ART_ROLE_RELEASE_MANAGER, T_2026, 0) < 0 ||
	    art_keyring_add(fx.kr, fx.rm2, ART_ROLE_RELEASE_MANAGER, T_2026, 0) < 0 ||
	    art_keyring_add(fx.kr, fx.rm3, ART_ROLE_RELEASE_MANAGER, T_2026, 0) < 0 ||
	    art_keyring_add(fx.kr, fx.revoked, ART_ROLE_RELEASE_MANAGER, T_2026, 0) < 0 ||
	    art_keyring_revoke(fx.kr, art_key_id(fx.revoked), T_2026, "lost") < 0 ||
	    art_keyring_add(fx.kr, fx.expired, ART_ROLE_RELEASE_MANAGER, T_2026,
			    T_2026 + HOUR) < 0 ||
	    art_keyring_add(fx.kr, fx.signer, ART_ROLE_TEMPLATE_SIGNER, T_2026, 0) < 0)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	art_key_free(fx.builder);
	art_key_free(fx.rm1);
	art_key_free(fx.rm2);
	art_key_free(fx.rm3);
	art_key_free(fx.revoked);
	art_key_free(fx.expired);
	art_key_free(fx.signer);
	art_key_free(fx.stranger);
	art_keyring_free(fx.kr);
	return 0;
}

/* ---- fixtures ------------------------------------------------------------ */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static char *temp_dir(void)
{
	char *d = strdup("/tmp/af-release-test-XXXXXX");

	assert_non_null(d);
	assert_non_null(mkdtemp(d));
	return d;
}

static void remove_dir(char *d)
{
	nftw(d, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(d);
}

static art_store *open_store(const char *dir, unsigned flags)
{
	art_store *s = NULL;

	if (art_store_open(&s, dir, flags) < 0)
		fail_msg("art_store_open(%s): %s", dir, art_error_last());
	return s;
}

/* Queue a fabricated build of name@version; variant changes its content. */
static int put_agent(art_store_txn *t, const char *name, const char *version, unsigned variant)
{
	const char *caps[] = {"llm_chat", "log"};
	art_manifest_import imports[] = {{"af", "llm_chat", "func"}, {"af", "log", "func"}};
	art_manifest_export exports[] = {{"af_handle", "func"}, {"memory", "memory"}};
	char resolved[72], text[128], wasm[256], native[256], source[256];
	art_manifest_info info;
	art_provenance_info prov = {"https://git.example.com/agents.git", "main",
				    "https://agentfactory.dev/builder/v1"};
	art_build_parts parts;

	snprintf(text, sizeof(text), "%s@%s#%u", name, version, variant);
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
	info.native_compat_id = "x86_64-linux-gnu/wasm-rt-1.0.32/guest-abi-1";
	info.target_triple = "x86_64-linux-gnu";
	info.guest_abi_version = 1;
	info.imports = imports;
	info.n_imports = 2;
	info.exports = exports;
	info.n_exports = 2;
	info.capabilities = caps;
	info.n_capabilities = 2;
	parts.wasm = wasm;
	parts.wasm_len = strlen(wasm);
	parts.native = native;
	parts.native_len = strlen(native);
	parts.source = source;
	parts.source_len = strlen(source);
	return art_store_put_build(t, NULL, &info, &prov, &parts, fx.builder);
}

/* Build refs ("name@version") into s, each with the given variant. */
static int build(art_store *s, const char *const *refs, size_t n, unsigned variant)
{
	art_store_txn *t = NULL;
	size_t i;
	int rc;

	assert_int_equal(art_store_txn_begin(&t, s), 0);
	art_store_txn_set_auto_dict(t, false);
	for (i = 0; i < n; i++) {
		char name[64];
		const char *at = strchr(refs[i], '@');

		snprintf(name, sizeof(name), "%.*s", (int)(at - refs[i]), refs[i]);
		if ((rc = put_agent(t, name, at + 1, variant)) < 0) {
			art_store_txn_abort(t);
			return rc;
		}
	}
	return art_store_txn_commit(t);
}

static const char *const v1[] = {"alpha@1.0.0", "beta@1.0.0", "gamma@2.1.0"};
static const char *const v2[] = {"alpha@1.1.0", "beta@1.0.0", "gamma@2.1.0"};

/* A store holding v1 and alpha@1.1.0. */
static char *catalogue(void)
{
	char *dir = temp_dir();
	art_store *s = open_store(dir, ART_STORE_CREATE);
	static const char *const more[] = {"alpha@1.1.0"};

	if (build(s, v1, 3, 0) < 0 || build(s, more, 1, 0) < 0)
		fail_msg("build: %s", art_error_last());
	art_store_close(s);
	return dir;
}

static uint64_t create(art_store *s, const char *const *refs, size_t n, const art_key *key,
		       time_t expires, time_t now)
{
	art_release *r = NULL;
	uint64_t number;

	if (art_release_create(&r, s, fx.kr, key, refs, n, expires, now) < 0)
		fail_msg("release create: %s", art_error_last());
	number = r->number;
	art_release_free(r);
	return number;
}

static void promote(art_store *s, const char *channel, uint64_t n, const art_key *key,
		    time_t now)
{
	if (art_release_promote(NULL, s, fx.kr, &key, 1, channel, n, now) < 0)
		fail_msg("promote %s -> %llu: %s", channel, (unsigned long long)n, art_error_last());
}

/* The release channel resolves to at now (0 when it does not resolve). */
static uint64_t active(const art_store *s, const art_keyring *kr, const char *channel, time_t now)
{
	art_release *r = NULL;
	uint64_t n;

	if (art_release_channel_resolve(s, kr, channel, now, &r) < 0)
		return 0;
	n = r->number;
	art_release_free(r);
	return n;
}

static size_t history_len(const art_store *s, const char *channel)
{
	art_channel **h = NULL;
	size_t n = 0;

	if (art_channel_history(&h, &n, s, channel) < 0)
		return 0;
	art_channel_list_free(h, n);
	return n;
}

static size_t release_count(const art_store *s)
{
	art_release **list = NULL;
	size_t n = 0;

	assert_int_equal(art_release_list(&list, &n, s, NULL, NOW), 0);
	art_release_list_free(list, n);
	return n;
}

/* The last audit entry; checks the chain verifies. Caller frees. */
static art_audit_entry *last_audit(const art_store *s)
{
	art_audit_report rep;
	art_audit_entry *list = NULL;
	size_t n = 0;

	if (art_audit_verify(&rep, s) < 0)
		fail_msg("audit verify: %s", art_error_last());
	assert_int_equal(art_audit_list(&list, &n, s, rep.head_seq - 1, 1), 0);
	assert_int_equal(n, 1);
	return list;
}

static void expect_last_audit(const art_store *s, const char *action, const char *outcome,
			      const char *needle)
{
	art_audit_entry *e = last_audit(s);

	assert_string_equal(e->action, action);
	assert_string_equal(e->outcome, outcome);
	if (needle && !strstr(e->details, needle))
		fail_msg("audit details '%s' lack '%s'", e->details, needle);
	art_audit_list_free(e, 1);
}

/* ---- raw LMDB access ----------------------------------------------------- */

static void raw_open(const char *dir, const char *db, MDB_env **env, MDB_txn **txn,
		     MDB_dbi *dbi)
{
	int rc;

	if ((rc = mdb_env_create(env)) || (rc = mdb_env_set_maxdbs(*env, 16)) ||
	    (rc = mdb_env_set_mapsize(*env, ART_STORE_MAP_SIZE)) ||
	    (rc = mdb_env_open(*env, dir, 0, 0600)) || (rc = mdb_txn_begin(*env, NULL, 0, txn)) ||
	    (rc = mdb_dbi_open(*txn, db, 0, dbi)))
		fail_msg("raw open %s/%s: %s", dir, db, mdb_strerror(rc));
}

static char *raw_get(const char *dir, const char *db, const char *key)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = {strlen(key), (void *)key}, v;
	char *out;

	raw_open(dir, db, &env, &txn, &dbi);
	if (mdb_get(txn, dbi, &k, &v) != 0)
		fail_msg("raw get %s/%s: missing", db, key);
	out = strndup(v.mv_data, v.mv_size);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return out;
}

static void raw_put(const char *dir, const char *db, const char *key, const void *val,
		    size_t len)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = {strlen(key), (void *)key}, v = {len, (void *)val};

	raw_open(dir, db, &env, &txn, &dbi);
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

/* Copy every value of db from one store to another (over existing keys). */
static void raw_copy_db(const char *from, const char *to, const char *db)
{
	MDB_env *e1, *e2;
	MDB_txn *t1, *t2;
	MDB_dbi d1, d2;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	raw_open(from, db, &e1, &t1, &d1);
	raw_open(to, db, &e2, &t2, &d2);
	assert_int_equal(mdb_cursor_open(t1, d1, &cur), 0);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
		assert_int_equal(mdb_put(t2, d2, &k, &v, 0), 0);
	mdb_cursor_close(cur);
	mdb_txn_abort(t1);
	mdb_env_close(e1);
	assert_int_equal(mdb_txn_commit(t2), 0);
	mdb_env_close(e2);
}

/* Decode an envelope's payload; caller frees. */
static char *payload_of(const char *envelope)
{
	json_t *env = json_loads(envelope, 0, NULL);
	uint8_t *p = NULL;
	size_t len;
	char *out;

	assert_non_null(env);
	assert_int_equal(art_base64_decode(&p, &len, json_string_value(json_object_get(env, "payload"))), 0);
	out = strndup((char *)p, len);
	free(p);
	json_decref(env);
	return out;
}

/* An envelope over payload with one signature by each of keys (repeats allowed). */
static char *envelope_by(const char *type, const char *payload, const art_key *const *keys,
			 size_t n)
{
	json_t *merged = NULL;
	size_t i;
	char *out;

	for (i = 0; i < n; i++) {
		char *env = NULL;
		json_t *part;

		assert_int_equal(art_sig_sign_payload(&env, keys[i], type, payload, strlen(payload)), 0);
		part = json_loads(env, 0, NULL);
		free(env);
		if (!merged) {
			merged = part;
			continue;
		}
		json_array_append(json_object_get(merged, "signatures"),
				  json_array_get(json_object_get(part, "signatures"), 0));
		json_decref(part);
	}
	out = json_dumps(merged, JSON_INDENT(2));
	json_decref(merged);
	return out;
}

/* ---- tests --------------------------------------------------------------- */

static void test_release__create_promote_resolve(void **state)
{
	char *dir = catalogue();
	art_store *s = open_store(dir, 0);
	const char *refs[] = {"gamma@2.1.0", "alpha@1.0.0", "beta"};
	art_release *r = NULL, *got = NULL;
	art_channel *c = NULL, *rc_out = NULL;
	art_verified_artifact *va = NULL;
	art_store_record *rec = NULL;
	art_release **list = NULL;
	art_channel **chans = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(art_release_create(&r, s, fx.kr, fx.rm1, refs, 3, NOW + DAY, NOW), 0);
	assert_int_equal(r->number, 1);
	assert_int_equal(r->n_pins, 3);
	assert_true(r->verified);
	assert_string_equal(r->signer, art_key_id(fx.rm1));
	assert_int_equal(r->created, NOW);
	assert_int_equal(r->expires, NOW + DAY);
	/* sorted by name; "beta" means its latest version; digests are the stored ones */
	assert_string_equal(r->pins[0].name, "alpha");
	assert_string_equal(r->pins[0].version, "1.0.0");
	assert_string_equal(r->pins[1].name, "beta");
	assert_string_equal(r->pins[1].version, "1.0.0");
	assert_string_equal(r->pins[2].name, "gamma");
	assert_int_equal(art_store_get_artifact(&rec, s, "alpha", "1.0.0"), 0);
	assert_string_equal(r->pins[0].manifest_digest, rec->manifest_digest);
	art_store_record_free(rec);
	expect_last_audit(s, "release", "ok", "\"release\":1");

	assert_int_equal(art_release_promote(&c, s, fx.kr, (const art_key *const[]){fx.rm2}, 1,
					     "blue", 1, NOW + 60), 0);
	assert_int_equal(c->seq, 1);
	assert_int_equal(c->release, 1);
	assert_int_equal(c->previous, 0);
	assert_string_equal(c->action, "promote");
	assert_int_equal(c->threshold, 1);
	assert_int_equal(c->n_signers, 1);
	assert_string_equal(c->signers[0], art_key_id(fx.rm2));
	expect_last_audit(s, "promote", "ok", "\"release\":1");

	/* the reader API */
	assert_int_equal(art_release_channel_resolve_ex(s, fx.kr, "blue", NOW + 120, NULL, &got,
							&rc_out), 0);
	assert_int_equal(got->number, 1);
	assert_string_equal(got->digest, r->digest);
	assert_int_equal(rc_out->seq, 1);
	assert_non_null(art_release_find(got, "gamma"));
	assert_null(art_release_find(got, "delta"));
	assert_int_equal(art_release_load_artifact(&va, s, fx.kr, got, "alpha", NOW + 120, NULL, 0), 0);
	assert_string_equal(va->manifest->version, "1.0.0");
	art_verified_artifact_free(va);
	assert_int_equal(art_release_load_artifact(&va, s, fx.kr, got, "delta", NOW, NULL, 0),
			 AF_ENOTFOUND);
	{
		art_release *none = NULL;

		assert_int_equal(art_release_channel_resolve(s, fx.kr, "green", NOW, &none),
				 AF_ENOTFOUND);
		assert_int_equal(art_release_channel_resolve(s, fx.kr, "Bad Name", NOW, &none),
				 AF_EINVAL);
		assert_null(none);
	}

	/* listings */
	assert_int_equal(art_release_list(&list, &n, s, fx.kr, NOW), 0);
	assert_int_equal(n, 1);
	assert_true(list[0]->verified);
	art_release_list_free(list, n);
	assert_int_equal(art_channel_list(&chans, &n, s, fx.kr, NOW), 0);
	assert_int_equal(n, 1);
	assert_string_equal(chans[0]->name, "blue");
	assert_true(chans[0]->verified);
	art_channel_list_free(chans, n);

	art_release_free(r);
	art_channel_free(c);
	art_channel_free(rc_out);
	art_release_free(got);
	art_store_close(s);
	remove_dir(dir);
}

static void test_release__numbers_grow_and_promote_older_refused(void **state)
{
	char *dir = catalogue();
	art_store *s = open_store(dir, 0);
	uint64_t n1, n2, n3;

	(void)state;
	n1 = create(s, v1, 3, fx.rm1, NOW + DAY, NOW);
	n2 = create(s, v2, 3, fx.rm1, NOW + DAY, NOW);
	n3 = create(s, v2, 3, fx.rm1, NOW + DAY, NOW); /* same content again: a new number */
	assert_int_equal(n1, 1);
	assert_int_equal(n2, 2);
	assert_int_equal(n3, 3);

	promote(s, "blue", 2, fx.rm1, NOW);
	/* older, and the same one again: refused, nothing changes but the audit */
	assert_int_equal(art_release_promote(NULL, s, fx.kr, (const art_key *const[]){fx.rm1}, 1,
					     "blue", 1, NOW), AF_EDENIED);
	assert_non_null(strstr(art_error_last(), "only grow"));
	expect_last_audit(s, "promote", "refused", "only grow");
	assert_int_equal(art_release_promote(NULL, s, fx.kr, (const art_key *const[]){fx.rm1}, 1,
					     "blue", 2, NOW), AF_EDENIED);
	assert_int_equal(active(s, fx.kr, "blue", NOW), 2);
	assert_int_equal(history_len(s, "blue"), 1);
	/* a release that does not exist */
	assert_int_equal(art_release_promote(NULL, s, fx.kr, (const art_key *const[]){fx.rm1}, 1,
					     "blue", 9, NOW), AF_ENOTFOUND);
	expect_last_audit(s, "promote", "refused", "does not exist");
	/* newer: fine */
	promote(s, "blue", 3, fx.rm1, NOW);
	assert_int_equal(active(s, fx.kr, "blue", NOW), 3);
	/* channels are independent */
	promote(s, "green", 1, fx.rm1, NOW);
	assert_int_equal(active(s, fx.kr, "green", NOW), 1);
	assert_int_equal(release_count(s), 3);
	/* bad arguments are not attempts */
	assert_int_equal(art_release_promote(NULL, s, fx.kr, (const art_key *const[]){fx.rm1}, 1,
					     "Blue!", 3, NOW), AF_EINVAL);
	assert_int_equal(art_release_promote(NULL, s, fx.kr, NULL, 0, "blue", 3, NOW), AF_EINVAL);
	art_store_close(s);
	remove_dir(dir);
}

static void test_release__same_version_different_content_refused(void **state)
{
	char *dir = catalogue(), *other = temp_dir();
	art_store *s = open_store(dir, 0), *o;
	const char *two[] = {"alpha@1.0.0", "alpha@1.1.0"};
	const char *one[] = {"alpha@1.0.0"};
	art_release *r = NULL;
	art_verified_artifact *va = NULL;
	art_store_record *before = NULL, *after = NULL;

	(void)state;
	/* two versions of one agent in one release */
	assert_int_equal(art_release_create(NULL, s, fx.kr, fx.rm1, two, 2, NOW + DAY, NOW),
			 AF_EDENIED);
	expect_last_audit(s, "release", "refused", "one version per agent");
	assert_int_equal(release_count(s), 0);

	assert_int_equal(create(s, v1, 3, fx.rm1, NOW + DAY, NOW), 1);
	/* the store refuses to rebuild a released name@version with other content */
	assert_int_equal(art_store_get_artifact(&before, s, "alpha", "1.0.0"), 0);
	assert_int_equal(build(s, one, 1, 7), AF_EEXISTS);
	assert_non_null(strstr(art_error_last(), "immutable once released"));
	assert_int_equal(art_store_get_artifact(&after, s, "alpha", "1.0.0"), 0);
	assert_string_equal(before->manifest_digest, after->manifest_digest);
	art_store_record_free(after);
	/* an identical rebuild is fine */
	assert_int_equal(build(s, one, 1, 0), 0);
	/* an unreleased version can still be rebuilt */
	{
		static const char *const unreleased[] = {"alpha@1.1.0"};

		assert_int_equal(build(s, unreleased, 1, 5), 0);
	}
	art_store_close(s);

	/* Someone swaps the artifact behind the store's back (a valid build of
	 * alpha@1.0.0 with other content, copied in raw): a new release of it is
	 * refused, and the old release no longer loads it. */
	o = open_store(other, ART_STORE_CREATE);
	assert_int_equal(build(o, one, 1, 7), 0);
	art_store_close(o);
	raw_copy_db(other, dir, "blobs");
	raw_copy_db(other, dir, "artifacts");
	s = open_store(dir, 0);
	assert_int_equal(art_store_get_artifact(&after, s, "alpha", "1.0.0"), 0);
	assert_string_not_equal(before->manifest_digest, after->manifest_digest);
	assert_int_equal(art_release_create(NULL, s, fx.kr, fx.rm1, one, 1, NOW + DAY, NOW),
			 AF_EEXISTS);
	assert_non_null(strstr(art_error_last(), "different content"));
	expect_last_audit(s, "release", "refused", "different content");
	assert_int_equal(release_count(s), 1);
	assert_int_equal(art_release_get(&r, s, fx.kr, 1, NOW), 0);
	assert_int_equal(art_release_load_artifact(&va, s, fx.kr, r, "alpha", NOW, NULL, 0),
			 AF_ESIGNATURE);
	assert_null(va);
	assert_int_equal(art_release_load_artifact(&va, s, fx.kr, r, "beta", NOW, NULL, 0), 0);
	art_verified_artifact_free(va);
	art_release_free(r);
	art_store_record_free(before);
	art_store_record_free(after);
	art_store_close(s);
	remove_dir(other);
	remove_dir(dir);
}

static void test_release__create_refusals(void **state)
{
	char *dir = catalogue();
	art_store *s = open_store(dir, 0);
	const char *missing[] = {"alpha@1.0.0", "delta@1.0.0"};
	const char *bad[] = {"Alpha@1"};
	art_keyring *other = NULL;

	(void)state;
	assert_int_equal(art_release_create(NULL, s, fx.kr, fx.rm1, missing, 2, NOW + DAY, NOW),
			 AF_ENOTFOUND);
	expect_last_audit(s, "release", "refused", "delta@1.0.0");
	assert_int_equal(art_release_create(NULL, s, fx.kr, fx.revoked, v1, 3, NOW + DAY, NOW),
			 AF_EREVOKED);
	expect_last_audit(s, "release", "refused", "revoked");
	assert_int_equal(art_release_create(NULL, s, fx.kr, fx.expired, v1, 3, NOW + DAY, NOW),
			 AF_EEXPIRED);
	assert_int_equal(art_release_create(NULL, s, fx.kr, fx.signer, v1, 3, NOW + DAY, NOW),
			 AF_EDENIED);
	assert_int_equal(art_release_create(NULL, s, fx.kr, fx.stranger, v1, 3, NOW + DAY, NOW),
			 AF_ENOTFOUND);
	assert_int_equal(art_release_create(NULL, s, fx.kr, fx.rm1, v1, 3, NOW - 1, NOW),
			 AF_EINVAL);
	expect_last_audit(s, "release", "refused", "expire");
	/* an artifact whose builder the keyring does not trust is not released */
	assert_int_equal(art_keyring_new(&other), 0);
	assert_int_equal(art_keyring_add(other, fx.rm1, ART_ROLE_RELEASE_MANAGER, T_2026, 0), 0);
	assert_int_equal(art_release_create(NULL, s, other, fx.rm1, v1, 3, NOW + DAY, NOW),
			 AF_ENOTFOUND);
	art_keyring_free(other);
	/* usage errors are not audited attempts */
	{
		art_audit_entry *before = last_audit(s), *after;

		assert_int_equal(art_release_create(NULL, s, fx.kr, fx.rm1, bad, 1, NOW + DAY, NOW),
				 AF_EINVAL);
		assert_int_equal(art_release_create(NULL, s, fx.kr, fx.rm1, v1, 0, NOW + DAY, NOW),
				 AF_EINVAL);
		after = last_audit(s);
		assert_int_equal(before->seq, after->seq);
		art_audit_list_free(before, 1);
		art_audit_list_free(after, 1);
	}
	assert_int_equal(release_count(s), 0);
	art_store_close(s);
	s = open_store(dir, ART_STORE_RDONLY);
	assert_int_equal(art_release_create(NULL, s, fx.kr, fx.rm1, v1, 3, NOW + DAY, NOW),
			 AF_EDENIED);
	art_store_close(s);
	remove_dir(dir);
}

static void test_release__keys_that_may_not_promote(void **state)
{
	char *dir = catalogue();
	art_store *s = open_store(dir, 0);
	const art_key *const bad[] = {fx.revoked, fx.expired, fx.signer, fx.stranger};
	const int want[] = {AF_EREVOKED, AF_EEXPIRED, AF_EDENIED, AF_ENOTFOUND};
	const art_key *mixed[2];
	size_t i;

	(void)state;
	create(s, v1, 3, fx.rm1, LATER, NOW);
	create(s, v2, 3, fx.rm1, LATER, NOW);
	promote(s, "blue", 1, fx.rm1, NOW);
	for (i = 0; i < 4; i++) {
		assert_int_equal(art_release_promote(NULL, s, fx.kr, &bad[i], 1, "blue", 2, NOW),
				 want[i]);
		expect_last_audit(s, "promote", "refused", art_key_id(bad[i]));
		assert_int_equal(art_release_rollback(NULL, s, fx.kr, &bad[i], 1, "blue", 0, NOW),
				 want[i]);
		/* a bad key next to a good one is still refused */
		mixed[0] = fx.rm1;
		mixed[1] = bad[i];
		assert_int_equal(art_release_promote(NULL, s, fx.kr, mixed, 2, "blue", 2, NOW), want[i]);
	}
	assert_int_equal(active(s, fx.kr, "blue", NOW), 1);
	assert_int_equal(history_len(s, "blue"), 1);
	art_store_close(s);
	remove_dir(dir);
}

static void test_release__threshold(void **state)
{
	char *dir = catalogue();
	art_store *s = open_store(dir, 0);
	art_channel *c = NULL;
	art_release *r = NULL;
	art_release_resolve_opts opts = {0, 0};
	const art_key *twice[] = {fx.rm1, fx.rm1};
	const art_key *pair[] = {fx.rm1, fx.rm2};
	const art_key *all[] = {fx.rm3, fx.rm2, fx.rm1};
	char *head, *payload, *forged;

	(void)state;
	create(s, v1, 3, fx.rm1, LATER, NOW);
	create(s, v2, 3, fx.rm1, LATER, NOW);
	create(s, v2, 3, fx.rm1, LATER, NOW);
	/* a threshold set first creates the channel without a release */
	assert_int_equal(art_release_set_threshold(&c, s, fx.kr, pair, 1, "blue", 2, NOW), 0);
	assert_int_equal(c->release, 0);
	assert_int_equal(c->threshold, 2);
	assert_int_equal(c->required, 1);
	art_channel_free(c);
	assert_int_equal(art_release_channel_resolve(s, fx.kr, "blue", NOW, &r), AF_ENOTFOUND);
	expect_last_audit(s, "set-threshold", "ok", "\"threshold\":2");

	/* 2 of 3: one key is not enough, nor one key listed twice */
	assert_int_equal(art_release_promote(NULL, s, fx.kr, pair, 1, "blue", 1, NOW), AF_EDENIED);
	assert_non_null(strstr(art_error_last(), "threshold not met"));
	expect_last_audit(s, "promote", "refused", "threshold not met");
	assert_int_equal(art_release_promote(NULL, s, fx.kr, twice, 2, "blue", 1, NOW), AF_EDENIED);
	assert_int_equal(history_len(s, "blue"), 1);
	assert_int_equal(art_release_promote(&c, s, fx.kr, pair, 2, "blue", 1, NOW), 0);
	assert_int_equal(c->n_signers, 2);
	assert_int_equal(c->required, 2);
	art_channel_free(c);
	assert_int_equal(active(s, fx.kr, "blue", NOW), 1);
	/* three keys are fine too; rollback needs the threshold as well */
	assert_int_equal(art_release_promote(NULL, s, fx.kr, all, 3, "blue", 2, NOW), 0);
	assert_int_equal(art_release_rollback(NULL, s, fx.kr, twice, 2, "blue", 0, NOW), AF_EDENIED);
	assert_int_equal(active(s, fx.kr, "blue", NOW), 2);

	/* Forgery: the current payload with two signatures by one key. Readers
	 * count distinct keys, so it is refused. */
	head = raw_get(dir, "channels", "head/blue");
	payload = payload_of(head);
	forged = envelope_by(ART_CHANNEL_PAYLOAD_TYPE, payload, twice, 2);
	art_store_close(s);
	raw_put(dir, "channels", "head/blue", forged, strlen(forged));
	s = open_store(dir, 0);
	assert_int_equal(art_release_channel_resolve(s, fx.kr, "blue", NOW, &r), AF_EDENIED);
	assert_non_null(strstr(art_error_last(), "1 distinct valid"));
	/* with two distinct keys it is genuine again */
	free(forged);
	forged = envelope_by(ART_CHANNEL_PAYLOAD_TYPE, payload, pair, 2);
	art_store_close(s);
	raw_put(dir, "channels", "head/blue", forged, strlen(forged));
	s = open_store(dir, 0);
	assert_int_equal(active(s, fx.kr, "blue", NOW), 2);
	/* a reader's floor above the record's own requirement */
	opts.min_threshold = 3;
	assert_int_equal(art_release_channel_resolve_ex(s, fx.kr, "blue", NOW, &opts, &r, NULL),
			 AF_EDENIED);
	free(forged);
	free(payload);
	free(head);

	/* a threshold no keyring can meet is refused; lowering needs the current one */
	assert_int_equal(art_release_set_threshold(NULL, s, fx.kr, pair, 2, "blue", 4, NOW),
			 AF_EDENIED);
	assert_int_equal(art_release_set_threshold(NULL, s, fx.kr, pair, 1, "blue", 1, NOW),
			 AF_EDENIED);
	assert_int_equal(art_release_set_threshold(NULL, s, fx.kr, pair, 2, "blue", 0, NOW),
			 AF_EINVAL);
	assert_int_equal(art_release_set_threshold(&c, s, fx.kr, pair, 2, "blue", 1, NOW), 0);
	assert_int_equal(c->release, 2); /* the pointer does not move */
	art_channel_free(c);
	assert_int_equal(active(s, fx.kr, "blue", NOW), 2);
	promote(s, "blue", 3, fx.rm3, NOW);
	assert_int_equal(active(s, fx.kr, "blue", NOW), 3);
	art_store_close(s);
	remove_dir(dir);
}

static void test_release__rollback(void **state)
{
	char *dir = catalogue();
	art_store *s = open_store(dir, 0);
	const art_key *k = fx.rm1;
	art_channel *c = NULL;
	int i;

	(void)state;
	for (i = 0; i < 4; i++)
		create(s, i % 2 ? v2 : v1, 3, fx.rm1, LATER, NOW);
	assert_int_equal(art_release_rollback(NULL, s, fx.kr, &k, 1, "blue", 0, NOW), AF_ENOTFOUND);
	promote(s, "blue", 1, k, NOW);
	assert_int_equal(art_release_rollback(NULL, s, fx.kr, &k, 1, "blue", 0, NOW), AF_ENOTFOUND);
	promote(s, "blue", 2, k, NOW);
	promote(s, "blue", 4, k, NOW);
	/* default: the previous release the channel had */
	assert_int_equal(art_release_rollback(&c, s, fx.kr, &k, 1, "blue", 0, NOW), 0);
	assert_int_equal(c->release, 2);
	assert_int_equal(c->previous, 4);
	assert_string_equal(c->action, "rollback");
	art_channel_free(c);
	expect_last_audit(s, "rollback", "ok", "\"release\":2");
	assert_int_equal(active(s, fx.kr, "blue", NOW), 2);
	/* again: 1; then nothing older */
	assert_int_equal(art_release_rollback(NULL, s, fx.kr, &k, 1, "blue", 0, NOW), 0);
	assert_int_equal(active(s, fx.kr, "blue", NOW), 1);
	assert_int_equal(art_release_rollback(NULL, s, fx.kr, &k, 1, "blue", 0, NOW), AF_ENOTFOUND);
	/* a rollback never goes forward */
	assert_int_equal(art_release_rollback(NULL, s, fx.kr, &k, 1, "blue", 3, NOW), AF_EDENIED);
	expect_last_audit(s, "rollback", "refused", "older");
	/* after a rollback, promotion goes on growing from where the channel is */
	promote(s, "blue", 3, k, NOW);
	assert_int_equal(art_release_rollback(NULL, s, fx.kr, &k, 1, "blue", 1, NOW), 0);
	assert_int_equal(active(s, fx.kr, "blue", NOW), 1);
	assert_int_equal(history_len(s, "blue"), 7);
	art_store_close(s);
	remove_dir(dir);
}

static void test_release__expiry_is_freeze_protection(void **state)
{
	char *dir = catalogue();
	art_store *s = open_store(dir, 0);
	const art_key *k = fx.rm1;
	art_release *r = NULL;
	art_release **list = NULL;
	size_t n;

	(void)state;
	create(s, v1, 3, k, NOW + HOUR, NOW);
	create(s, v2, 3, k, NOW + HOUR, NOW);
	promote(s, "blue", 1, k, NOW);
	assert_int_equal(active(s, fx.kr, "blue", NOW + HOUR), 1);
	assert_int_equal(art_release_channel_resolve(s, fx.kr, "blue", NOW + HOUR + 1, &r),
			 AF_EEXPIRED);
	assert_non_null(strstr(art_error_last(), "expired"));
	/* an expired release cannot be promoted, nor rolled back to */
	assert_int_equal(art_release_promote(NULL, s, fx.kr, &k, 1, "blue", 2, NOW + 2 * HOUR),
			 AF_EEXPIRED);
	expect_last_audit(s, "promote", "refused", "expired");
	/* listings show it as expired */
	assert_int_equal(art_release_list(&list, &n, s, fx.kr, NOW + 2 * HOUR), 0);
	assert_int_equal(n, 2);
	assert_false(list[0]->verified);
	assert_int_equal(list[0]->verify_rc, AF_EEXPIRED);
	assert_int_equal(list[0]->number, 1);
	art_release_list_free(list, n);
	/* the way out: a fresh release of the same artifacts, promoted */
	create(s, v1, 3, k, NOW + 3 * DAY, NOW + 2 * HOUR);
	promote(s, "blue", 3, k, NOW + 2 * HOUR);
	assert_int_equal(active(s, fx.kr, "blue", NOW + 2 * DAY), 3);
	art_store_close(s);
	remove_dir(dir);
}

/*
 * Daily release-manager keys with a one-hour overlap: day 1 key A valid
 * [T, T+25h], day 2 key B valid [T+24h, T+49h].
 */
static void test_release__key_rotation(void **state)
{
	char *dir = catalogue();
	art_store *s = open_store(dir, 0);
	art_key *a = NULL, *b = NULL;
	art_keyring *kr = NULL;
	art_release *r = NULL;
	const art_key *ka, *kb;
	time_t t = NOW;
	art_channel **chans = NULL;
	size_t n;

	(void)state;
	assert_int_equal(art_key_generate(&a, 2048), 0);
	assert_int_equal(art_key_generate(&b, 2048), 0);
	ka = a;
	kb = b;
	assert_int_equal(art_keyring_new(&kr), 0);
	assert_int_equal(art_keyring_add(kr, fx.builder, ART_ROLE_BUILDER, T_2026, 0), 0);
	assert_int_equal(art_keyring_add(kr, a, ART_ROLE_RELEASE_MANAGER, t, t + 25 * HOUR), 0);
	assert_int_equal(art_keyring_add(kr, b, ART_ROLE_RELEASE_MANAGER, t + 24 * HOUR,
					 t + 49 * HOUR), 0);

	/* day 1: key A releases and promotes blue and green */
	assert_int_equal(art_release_create(&r, s, kr, a, v1, 3, t + 7 * DAY, t + HOUR), 0);
	art_release_free(r);
	assert_int_equal(art_release_promote(NULL, s, kr, &ka, 1, "blue", 1, t + HOUR), 0);
	assert_int_equal(art_release_promote(NULL, s, kr, &ka, 1, "green", 1, t + HOUR), 0);
	/* must fail: key B before its window */
	assert_int_equal(art_release_create(NULL, s, kr, b, v1, 3, t + 7 * DAY, t + 2 * HOUR),
			 AF_EEXPIRED);
	assert_non_null(strstr(art_error_last(), "not valid before"));

	/* overlap hour: B re-signs blue (a fresh release of the same artifacts) */
	assert_int_equal(art_release_create(&r, s, kr, b, v1, 3, t + 7 * DAY, t + 24 * HOUR + 1800), 0);
	assert_int_equal(r->number, 2);
	art_release_free(r);
	assert_int_equal(art_release_promote(NULL, s, kr, &kb, 1, "blue", 2,
					     t + 24 * HOUR + 1800), 0);
	assert_int_equal(active(s, kr, "blue", t + 24 * HOUR + 1800), 2);
	assert_int_equal(active(s, kr, "green", t + 24 * HOUR + 1800), 1); /* A still valid */

	/* day 2, A expired: blue (signed by B) still resolves, green (A only) does not */
	assert_int_equal(active(s, kr, "blue", t + 26 * HOUR), 2);
	assert_int_equal(art_release_channel_resolve(s, kr, "green", t + 26 * HOUR, &r), AF_EEXPIRED);
	/* must fail: A cannot sign any more */
	assert_int_equal(art_release_promote(NULL, s, kr, &ka, 1, "green", 2, t + 26 * HOUR),
			 AF_EEXPIRED);
	assert_int_equal(art_release_create(NULL, s, kr, a, v1, 3, t + 7 * DAY, t + 26 * HOUR),
			 AF_EEXPIRED);
	/* must pass: B repairs green */
	assert_int_equal(art_release_promote(NULL, s, kr, &kb, 1, "green", 2, t + 26 * HOUR), 0);
	assert_int_equal(active(s, kr, "green", t + 26 * HOUR), 2);

	/* revoking B (compromised): everything it signed stops resolving */
	assert_int_equal(art_keyring_revoke(kr, art_key_id(b), t + 27 * HOUR, "leaked"), 0);
	assert_int_equal(art_release_channel_resolve(s, kr, "blue", t + 27 * HOUR, &r), AF_EREVOKED);
	assert_int_equal(art_release_promote(NULL, s, kr, &kb, 1, "blue", 1, t + 27 * HOUR),
			 AF_EREVOKED);
	assert_int_equal(art_channel_list(&chans, &n, s, kr, t + 27 * HOUR), 0);
	assert_int_equal(n, 2);
	assert_false(chans[0]->verified);
	assert_int_equal(chans[0]->verify_rc, AF_EREVOKED);
	assert_int_equal(chans[0]->release, 2); /* what it claims, shown */
	art_channel_list_free(chans, n);

	art_keyring_free(kr);
	art_key_free(a);
	art_key_free(b);
	art_store_close(s);
	remove_dir(dir);
}

static void test_release__tampered_records_refused(void **state)
{
	char *dir = catalogue();
	art_store *s = open_store(dir, 0);
	art_release *r = NULL;
	art_channel *c = NULL;
	art_release_resolve_opts opts = {0, 0};
	char *rel1, *rel2, *blue, *green, *payload, *edited, *where;

	(void)state;
	create(s, v1, 3, fx.rm1, LATER, NOW);
	create(s, v2, 3, fx.rm1, LATER, NOW);
	promote(s, "blue", 1, fx.rm1, NOW);
	promote(s, "blue", 2, fx.rm1, NOW);
	promote(s, "green", 1, fx.rm1, NOW);
	assert_int_equal(art_release_channel_resolve_ex(s, fx.kr, "blue", NOW, NULL, &r, &c), 0);
	assert_int_equal(c->seq, 2);
	art_release_free(r);
	art_channel_free(c);
	art_store_close(s);
	rel1 = raw_get(dir, "releases", "n/00000000000000000001");
	rel2 = raw_get(dir, "releases", "n/00000000000000000002");
	blue = raw_get(dir, "channels", "head/blue");
	green = raw_get(dir, "channels", "head/green");

	/* 1. release 2's record swapped for release 1's: the channel names its digest */
	raw_put(dir, "releases", "n/00000000000000000002", rel1, strlen(rel1));
	s = open_store(dir, ART_STORE_RDONLY);
	assert_int_equal(art_release_channel_resolve(s, fx.kr, "blue", NOW, &r), AF_ESIGNATURE);
	art_store_close(s);
	raw_put(dir, "releases", "n/00000000000000000002", rel2, strlen(rel2));

	/* 2. the channel's payload edited without re-signing */
	{
		json_t *env = json_loads(blue, 0, NULL);
		char *b64;

		payload = payload_of(blue);
		where = strstr(payload, "\"release\":2");
		assert_non_null(where);
		where[10] = '1';
		assert_int_equal(art_base64_encode(&b64, payload, strlen(payload)), 0);
		json_object_set_new(env, "payload", json_string(b64));
		edited = json_dumps(env, 0);
		json_decref(env);
		free(b64);
	}
	raw_put(dir, "channels", "head/blue", edited, strlen(edited));
	s = open_store(dir, ART_STORE_RDONLY);
	assert_int_equal(art_release_channel_resolve(s, fx.kr, "blue", NOW, &r), AF_ESIGNATURE);
	art_store_close(s);
	free(edited);
	free(payload);

	/* 3. green's record copied over blue's: signed for another channel */
	raw_put(dir, "channels", "head/blue", green, strlen(green));
	s = open_store(dir, ART_STORE_RDONLY);
	assert_int_equal(art_release_channel_resolve(s, fx.kr, "blue", NOW, &r), AF_ESIGNATURE);
	assert_non_null(strstr(art_error_last(), "signed for channel green"));
	art_store_close(s);

	/* 4. blue's older (genuine) record replayed: a reader that saw seq 2 refuses it */
	{
		char *old = raw_get(dir, "channels", "hist/blue/00000000000000000001");

		raw_put(dir, "channels", "head/blue", old, strlen(old));
		free(old);
	}
	s = open_store(dir, ART_STORE_RDONLY);
	/* a fresh reader tells too: the history holds a newer record */
	assert_int_equal(active(s, fx.kr, "blue", NOW), 0);
	assert_non_null(strstr(art_error_last(), "replay"));
	opts.min_seq = 2;
	assert_int_equal(art_release_channel_resolve_ex(s, fx.kr, "blue", NOW, &opts, &r, NULL),
			 AF_EDENIED);
	assert_non_null(strstr(art_error_last(), "replay"));
	art_store_close(s);

	/* 5. garbage */
	raw_put(dir, "channels", "head/blue", "{}", 2);
	raw_put(dir, "releases", "n/00000000000000000001", "[]", 2);
	s = open_store(dir, ART_STORE_RDONLY);
	assert_int_equal(art_release_channel_resolve(s, fx.kr, "blue", NOW, &r), AF_ECORRUPT);
	assert_int_equal(art_release_channel_resolve(s, fx.kr, "green", NOW, &r), AF_ECORRUPT);
	assert_int_equal(art_release_get(&r, s, fx.kr, 1, NOW), AF_ECORRUPT);
	assert_int_equal(art_release_get(&r, s, fx.kr, 2, NOW), 0);
	art_release_free(r);
	art_store_close(s);
	free(rel1);
	free(rel2);
	free(blue);
	free(green);
	remove_dir(dir);
}

static void raw_del(const char *dir, const char *db, const char *key)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = {strlen(key), (void *)key};

	raw_open(dir, db, &env, &txn, &dbi);
	assert_int_equal(mdb_del(txn, dbi, &k, NULL), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

/*
 * A replayed channel head: an older, genuinely signed record written back
 * as the current one. Refused when resolving (what the runtime does at
 * start and status shows), by audit verify (also when the newer history is
 * deleted too), and a later promote is refused cleanly, not with a raw
 * MDB_KEYEXIST.
 */
static void test_release__replayed_channel_head_refused(void **state)
{
	char *dir = catalogue(), *head1;
	art_store *s = open_store(dir, 0);
	art_audit_report rep;
	art_channel *c = NULL;
	uint64_t r3;

	(void)state;
	create(s, v1, 3, fx.rm1, LATER, NOW);
	create(s, v2, 3, fx.rm1, LATER, NOW);
	r3 = create(s, v1, 3, fx.rm1, LATER, NOW);
	promote(s, "blue", 1, fx.rm1, NOW);
	promote(s, "blue", 2, fx.rm1, NOW);
	assert_int_equal(art_audit_verify(&rep, s), 0);
	art_store_close(s);
	head1 = raw_get(dir, "channels", "hist/blue/00000000000000000001");

	/* Record 1 written back as the head. */
	raw_put(dir, "channels", "head/blue", head1, strlen(head1));
	s = open_store(dir, 0);
	assert_int_equal(active(s, fx.kr, "blue", NOW), 0);
	assert_int_equal(art_release_channel_resolve(s, fx.kr, "blue", NOW, &(art_release *){NULL}),
			 AF_EDENIED);
	assert_non_null(strstr(art_error_last(), "replay"));
	assert_non_null(strstr(art_error_last(), "history holds record 2"));
	assert_int_equal(art_audit_verify(&rep, s), AF_ECORRUPT);
	assert_non_null(strstr(art_error_last(), "channel blue: the current record is 1"));
	/* A promote on top of the replayed head: a clean refusal, audited. */
	assert_int_equal(art_release_promote(&c, s, fx.kr, (const art_key *const[]){fx.rm1}, 1,
					     "blue", r3, NOW), AF_EDENIED);
	assert_non_null(strstr(art_error_last(), "replay"));
	assert_null(strstr(art_error_last(), "MDB_"));
	assert_null(c);
	art_store_close(s);

	/* The newer history deleted too: the audit log still tells. */
	raw_del(dir, "channels", "hist/blue/00000000000000000002");
	s = open_store(dir, ART_STORE_RDONLY);
	assert_int_equal(active(s, fx.kr, "blue", NOW), 1); /* the store alone cannot tell */
	assert_int_equal(art_audit_verify(&rep, s), AF_ECORRUPT);
	assert_non_null(strstr(art_error_last(), "put back to an older record"));
	assert_true(rep.bad_seq > 0);
	art_store_close(s);

	free(head1);
	remove_dir(dir);
}

static void test_release__audit_trail(void **state)
{
	char *dir = catalogue();
	art_store *s = open_store(dir, 0);
	art_audit_entry *list = NULL;
	art_audit_report rep;
	size_t n = 0, i, ok = 0, refused = 0;
	const art_key *k = fx.rm2;

	(void)state;
	create(s, v1, 3, fx.rm1, LATER, NOW);
	promote(s, "blue", 1, k, NOW);
	assert_int_equal(art_release_promote(NULL, s, fx.kr, &k, 1, "blue", 1, NOW), AF_EDENIED);
	assert_int_equal(art_audit_verify(&rep, s), 0);
	assert_int_equal(art_audit_list(&list, &n, s, 0, 0), 0);
	for (i = 0; i < n; i++) {
		if (strcmp(list[i].action, "promote") && strcmp(list[i].action, "release"))
			continue;
		ok += strcmp(list[i].outcome, "ok") == 0;
		refused += strcmp(list[i].outcome, "refused") == 0;
	}
	assert_int_equal(ok, 2);
	assert_int_equal(refused, 1);
	assert_string_equal(list[n - 2].actor, art_key_id(fx.rm2));
	assert_string_equal(list[n - 2].subject, "channel/blue");
	assert_non_null(strstr(list[n - 2].details, art_key_id(fx.rm2)));
	art_audit_list_free(list, n);
	art_store_close(s);
	remove_dir(dir);
}

/* ---- crash safety -------------------------------------------------------- */

#define CRASH_LOOPS 24
#define CRASH_RELEASES (CRASH_LOOPS + 2)

static void promote_child(const char *dir, uint64_t target)
{
	art_store *s = NULL;
	const art_key *k = fx.rm1;

	if (art_store_open(&s, dir, 0) < 0)
		_exit(2);
	if (art_release_promote(NULL, s, fx.kr, &k, 1, "blue", target, NOW) < 0)
		_exit(3);
	art_store_close(s);
	_exit(0);
}

static void test_release__kill_during_promote(void **state)
{
	char *dir = catalogue();
	art_store *s = open_store(dir, 0);
	struct timespec t0, t1;
	long child_us;
	uint64_t current;
	int loop, landed = 0, lost = 0, status, i;
	pid_t pid;

	(void)state;
	for (i = 0; i < CRASH_RELEASES; i++)
		create(s, i % 2 ? v2 : v1, 3, fx.rm1, LATER, NOW);
	promote(s, "blue", 1, fx.rm1, NOW);
	art_store_close(s);
	current = 1;

	/* time one uninterrupted promotion, to spread the kills over it */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		promote_child(dir, 2);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	child_us = (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000;
	current = 2;
	srand(4242);

	for (loop = 0; loop < CRASH_LOOPS; loop++) {
		art_audit_entry *list = NULL;
		art_audit_report rep;
		art_channel *c = NULL;
		art_release *r = NULL;
		size_t n = 0, promotes = 0, j;
		uint64_t last_release = 0;
		long delay = (long)(rand() % 1000) * (child_us + child_us / 4) / 1000;

		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			promote_child(dir, current + 1);
		usleep((useconds_t)delay);
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
			fail_msg("loop %d: child failed with %d", loop, WEXITSTATUS(status));

		s = open_store(dir, ART_STORE_RDONLY);
		/* exactly one release active: the old one or the new one */
		if (art_release_channel_resolve_ex(s, fx.kr, "blue", NOW, NULL, &r, &c) < 0)
			fail_msg("loop %d: blue does not resolve: %s", loop, art_error_last());
		if (r->number != current && r->number != current + 1)
			fail_msg("loop %d: blue is at %llu, expected %llu or %llu", loop,
				 (unsigned long long)r->number, (unsigned long long)current,
				 (unsigned long long)current + 1);
		if (r->number == current + 1) {
			landed++;
			current++;
		} else {
			lost++;
		}
		/* the audit log agrees: one ok promote per record, the last names the head */
		if (art_audit_verify(&rep, s) < 0)
			fail_msg("loop %d: audit: %s", loop, art_error_last());
		assert_int_equal(art_audit_list(&list, &n, s, 0, 0), 0);
		for (j = 0; j < n; j++) {
			json_t *d;

			if (strcmp(list[j].action, "promote") || strcmp(list[j].outcome, "ok"))
				continue;
			promotes++;
			d = json_loads(list[j].details, 0, NULL);
			last_release = (uint64_t)json_integer_value(json_object_get(d, "release"));
			json_decref(d);
		}
		assert_int_equal(promotes, c->seq);
		assert_int_equal(last_release, r->number);
		assert_int_equal(history_len(s, "blue"), c->seq);
		art_audit_list_free(list, n);
		art_release_free(r);
		art_channel_free(c);
		art_store_close(s);
	}
	print_message("kill -9 during promote: %d kills (promote takes %ld us): %d landed, %d "
		      "absent, never partial\n", CRASH_LOOPS, child_us, landed, lost);
	remove_dir(dir);
}

/*
 * Records moved between stores (a registry pull): art_release_import queues
 * verified release and channel records into a batch; a newer channel record
 * is taken, an older one (replay) is refused, the same one is a no-op, a
 * store with another release under the same number refuses, a release whose
 * artifacts are missing refuses, a record signed by an unknown key is
 * refused before the batch; every refusal leaves the store unchanged.
 */
static uint64_t import(const char *dir, const char *release_env, const char *channel_env)
{
	art_store *s = open_store(dir, 0);
	art_store_txn *t = NULL;
	int rc;

	assert_int_equal(art_store_txn_begin(&t, s), 0);
	rc = art_release_import(t, fx.kr, NOW + HOUR, release_env,
				release_env ? strlen(release_env) : 0, channel_env,
				channel_env ? strlen(channel_env) : 0, 0);
	if (rc < 0)
		art_store_txn_abort(t);
	else
		rc = art_store_txn_commit(t);
	art_store_close(s);
	return (uint64_t)(int64_t)rc;
}

static void test_release__import_between_stores(void **state)
{
	char *a = catalogue(), *b = catalogue(), *c = catalogue(), *d = temp_dir();
	char *rel1 = NULL, *rel2 = NULL, *head = NULL, *rec1, *rec2, *forged;
	const art_key *stranger = fx.stranger;
	art_store *s;
	size_t len;

	(void)state;
	s = open_store(a, 0);
	assert_int_equal(create(s, v1, 3, fx.rm1, LATER, NOW), 1);
	promote(s, "blue", 1, fx.rm1, NOW);
	assert_int_equal(create(s, v2, 3, fx.rm1, LATER, NOW), 2);
	promote(s, "blue", 2, fx.rm1, NOW + 60);
	assert_int_equal(art_release_envelope(&rel1, &len, s, 1), 0);
	assert_int_equal(art_release_envelope(&rel2, &len, s, 2), 0);
	assert_int_equal(art_channel_envelope(&head, &len, s, "blue"), 0);
	assert_int_equal(art_release_envelope(&forged, &len, s, 3), AF_ENOTFOUND);
	art_store_close(s);
	rec1 = raw_get(a, "channels", "hist/blue/00000000000000000001");
	rec2 = raw_get(a, "channels", "hist/blue/00000000000000000002");
	assert_string_equal(rec2, head);

	/* b has the same artifacts: release 2 and record 2 land in one commit */
	assert_int_equal(import(b, rel2, NULL), 0);
	assert_int_equal(import(b, NULL, rec2), 0);
	s = open_store(b, ART_STORE_RDONLY);
	assert_int_equal(active(s, fx.kr, "blue", NOW + HOUR), 2);
	art_store_close(s);
	/* the same record again: a no-op */
	assert_int_equal(import(b, rel2, rec2), 0);
	/* record 1 (release 1) after record 2: a replay */
	assert_int_equal((int)import(b, rel1, rec1), AF_EDENIED);
	assert_non_null(strstr(art_error_last(), "replayed"));
	s = open_store(b, ART_STORE_RDONLY);
	assert_int_equal(active(s, fx.kr, "blue", NOW + HOUR), 2);
	assert_int_equal(release_count(s), 1); /* release 1 was not written either */
	art_store_close(s);

	/* c made its own release 1 (other pins): a pulled release 1 is refused */
	s = open_store(c, 0);
	assert_int_equal(create(s, v2, 3, fx.rm2, LATER, NOW), 1);
	art_store_close(s);
	assert_int_equal((int)import(c, rel1, NULL), AF_EEXISTS);

	/* d has no artifacts: the release pins what it lacks */
	s = open_store(d, ART_STORE_CREATE);
	art_store_close(s);
	assert_int_equal((int)import(d, rel1, NULL), AF_ENOTFOUND);
	s = open_store(d, ART_STORE_RDONLY);
	assert_int_equal(release_count(s), 0);
	art_store_close(s);

	/* a channel record signed by a key the keyring does not know */
	{
		char *payload = payload_of(rec2), *bad = envelope_by(ART_CHANNEL_PAYLOAD_TYPE, payload,
								    &stranger, 1);

		assert_true((int)import(b, NULL, bad) < 0);
		free(payload);
		free(bad);
	}
	free(rel1);
	free(rel2);
	free(head);
	free(rec1);
	free(rec2);
	remove_dir(a);
	remove_dir(b);
	remove_dir(c);
	remove_dir(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_release__create_promote_resolve),
		cmocka_unit_test(test_release__numbers_grow_and_promote_older_refused),
		cmocka_unit_test(test_release__same_version_different_content_refused),
		cmocka_unit_test(test_release__create_refusals),
		cmocka_unit_test(test_release__keys_that_may_not_promote),
		cmocka_unit_test(test_release__threshold),
		cmocka_unit_test(test_release__rollback),
		cmocka_unit_test(test_release__expiry_is_freeze_protection),
		cmocka_unit_test(test_release__key_rotation),
		cmocka_unit_test(test_release__tampered_records_refused),
		cmocka_unit_test(test_release__audit_trail),
		cmocka_unit_test(test_release__replayed_channel_head_refused),
		cmocka_unit_test(test_release__kill_during_promote),
		cmocka_unit_test(test_release__import_between_stores),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
