/*
 * test_audit.c - the store's hash-chained audit log: append, list, verify;
 * the attacks (an entry edited, edited with its hash recomputed, deleted,
 * reordered, inserted; the whole chain rewritten; the tail truncated) and
 * which of them the chain alone or a signed checkpoint detects; checkpoint
 * signatures (wrong role, tampered, revoked, key expired since); bad
 * events; audit entries queued in a store batch land exactly when the batch
 * does; two processes appending at once keep one chain.
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
#include "art/store.h"
#include "art/util.h"

#include <ftw.h>
#include <jansson.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define T_2026 ((time_t)1767225600)
#define NOW (T_2026 + 86400)

static struct {
	art_key *rm, *builder, *shortlived, *revoked, *signer;
	art_keyring *kr;
} fx;

static int group_setup(void **state)
{
	(void)state;
	if (art_key_generate(&fx.rm, 2048) < 0 || art_key_generate(&fx.builder, 2048) < 0 ||
	    art_key_generate(&fx.shortlived, 2048) < 0 || art_key_generate(&fx.revoked, 2048) < 0 ||
	    art_key_generate(&fx.signer, 2048) < 0 || art_keyring_new(&fx.kr) < 0 ||
	    art_keyring_add(fx.kr, fx.signer, ART_ROLE_TEMPLATE_SIGNER, T_2026, 0) < 0 ||
	    art_keyring_add(fx.kr, fx.rm, ART_ROLE_RELEASE_MANAGER, T_2026, 0) < 0 ||
	    art_keyring_add(fx.kr, fx.builder, ART_ROLE_BUILDER, T_2026, 0) < 0 ||
	    art_keyring_add(fx.kr, fx.shortlived, ART_ROLE_RELEASE_MANAGER, T_2026,
			    NOW + 3600) < 0 ||
	    art_keyring_add(fx.kr, fx.revoked, ART_ROLE_RELEASE_MANAGER, T_2026, 0) < 0 ||
	    art_keyring_revoke(fx.kr, art_key_id(fx.revoked), NOW, "test") < 0)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	art_key_free(fx.rm);
	art_key_free(fx.builder);
	art_key_free(fx.shortlived);
	art_key_free(fx.revoked);
	art_key_free(fx.signer);
	art_keyring_free(fx.kr);
	return 0;
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
	char *d = strdup("/tmp/af-audit-test-XXXXXX");

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

static void append(art_store *s, const char *action, const char *subject, time_t t)
{
	art_audit_event ev = {action, "unsigned", subject, ART_AUDIT_OK, "{\"n\":1}", NULL, 0};

	if (art_audit_append(NULL, s, &ev, t) < 0)
		fail_msg("append: %s", art_error_last());
}

/* A store with n entries (closed again). */
static char *store_with(int n)
{
	char *dir = temp_dir(), subject[32];
	art_store *s = open_store(dir, ART_STORE_CREATE);
	int i;

	for (i = 1; i <= n; i++) {
		snprintf(subject, sizeof(subject), "thing/%d", i);
		append(s, "build", subject, NOW + i);
	}
	art_store_close(s);
	return dir;
}

/* ---- raw LMDB access ----------------------------------------------------- */

static void raw_open(const char *dir, MDB_env **env, MDB_txn **txn, MDB_dbi *dbi)
{
	int rc;

	if ((rc = mdb_env_create(env)) || (rc = mdb_env_set_maxdbs(*env, 16)) ||
	    (rc = mdb_env_set_mapsize(*env, ART_STORE_MAP_SIZE)) ||
	    (rc = mdb_env_open(*env, dir, 0, 0600)) || (rc = mdb_txn_begin(*env, NULL, 0, txn)) ||
	    (rc = mdb_dbi_open(*txn, "audit", 0, dbi)))
		fail_msg("raw open %s: %s", dir, mdb_strerror(rc));
}

static void key_of(char out[21], uint64_t seq)
{
	snprintf(out, 21, "%020llu", (unsigned long long)seq);
}

static char *raw_get(const char *dir, uint64_t seq)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	char key[21];
	MDB_val k = {20, key}, v;
	char *out;

	key_of(key, seq);
	raw_open(dir, &env, &txn, &dbi);
	assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
	out = strndup(v.mv_data, v.mv_size);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return out;
}

/* value NULL deletes the entry. */
static void raw_put(const char *dir, uint64_t seq, const char *value)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	char key[21];
	MDB_val k = {20, key}, v = {value ? strlen(value) : 0, (void *)value};

	key_of(key, seq);
	raw_open(dir, &env, &txn, &dbi);
	if (value)
		assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	else
		assert_int_equal(mdb_del(txn, dbi, &k, NULL), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

/* Re-hash an entry after an edit, as an attacker who knows the format would;
 * prev (may be NULL) replaces its prev_hash. Returns the new text. */
static char *rehash(const char *entry, const char *field, json_t *value, const char *prev)
{
	json_t *o = json_loads(entry, 0, NULL);
	char hash[65], *text;

	assert_non_null(o);
	if (field)
		json_object_set_new(o, field, value);
	if (prev)
		json_object_set_new(o, "prev_hash", json_string(prev));
	json_object_del(o, "hash");
	text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	art_sha256_hex(text, strlen(text), hash);
	free(text);
	json_object_set_new(o, "hash", json_string(hash));
	text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return text;
}

static const char *hash_of(const char *entry, char out[65])
{
	json_t *o = json_loads(entry, 0, NULL);

	snprintf(out, 65, "%s", json_string_value(json_object_get(o, "hash")));
	json_decref(o);
	return out;
}

static int verify_dir(const char *dir, art_audit_report *rep)
{
	art_store *s = open_store(dir, ART_STORE_RDONLY);
	int rc = art_audit_verify(rep, s);

	art_store_close(s);
	return rc;
}

/* ---- tests --------------------------------------------------------------- */

static void test_audit__append_list_verify(void **state)
{
	char *dir = store_with(0);
	art_store *s = open_store(dir, 0);
	art_audit_entry *list = NULL;
	art_audit_report rep;
	art_audit_event ev = {"promote", "ab12", "channel/blue", ART_AUDIT_REFUSED,
			      "{\"reason\":\"threshold not met\",\"release\":3}", NULL, 0};
	uint64_t seq = 0, head;
	char head_hash[65];
	size_t n = 0;

	(void)state;
	/* empty log */
	assert_int_equal(art_audit_verify(&rep, s), 0);
	assert_int_equal(rep.head_seq, 0);
	assert_string_equal(rep.head_hash, "0000000000000000000000000000000000000000000000000000000000000000");
	append(s, "build", "repo@abc", NOW);
	assert_int_equal(art_audit_append(&seq, s, &ev, NOW + 5), 0);
	assert_int_equal(seq, 2);
	append(s, "release", "release/1", NOW + 9);

	assert_int_equal(art_audit_list(&list, &n, s, 0, 0), 0);
	assert_int_equal(n, 3);
	assert_int_equal(list[0].seq, 1);
	assert_string_equal(list[0].prev_hash, "0000000000000000000000000000000000000000000000000000000000000000");
	assert_string_equal(list[1].prev_hash, list[0].hash);
	assert_string_equal(list[2].prev_hash, list[1].hash);
	assert_string_equal(list[1].action, "promote");
	assert_string_equal(list[1].actor, "ab12");
	assert_string_equal(list[1].subject, "channel/blue");
	assert_string_equal(list[1].outcome, "refused");
	assert_string_equal(list[1].details, "{\"reason\":\"threshold not met\",\"release\":3}");
	assert_int_equal(list[1].time, NOW + 5);
	art_audit_list_free(list, n);

	/* after, max */
	assert_int_equal(art_audit_list(&list, &n, s, 1, 1), 0);
	assert_int_equal(n, 1);
	assert_int_equal(list[0].seq, 2);
	art_audit_list_free(list, n);

	assert_int_equal(art_audit_verify(&rep, s), 0);
	assert_int_equal(rep.entries, 3);
	assert_int_equal(rep.head_seq, 3);
	assert_int_equal(art_audit_head(&head, head_hash, s), 0);
	assert_int_equal(head, 3);
	assert_string_equal(head_hash, rep.head_hash);
	art_store_close(s);
	remove_dir(dir);
}

static void test_audit__bad_events_refused(void **state)
{
	char *dir = store_with(0);
	art_store *s = open_store(dir, 0), *ro;
	art_audit_event ev = {"build", NULL, NULL, NULL, NULL, NULL, 0};
	art_audit_report rep;

	(void)state;
	ev.action = "Build";
	assert_int_equal(art_audit_append(NULL, s, &ev, NOW), AF_EINVAL);
	ev.action = "";
	assert_int_equal(art_audit_append(NULL, s, &ev, NOW), AF_EINVAL);
	ev.action = "build";
	ev.details_json = "[1,2]";
	assert_int_equal(art_audit_append(NULL, s, &ev, NOW), AF_EINVAL);
	ev.details_json = "{\"a\":1,\"a\":2}";
	assert_int_equal(art_audit_append(NULL, s, &ev, NOW), AF_EINVAL);
	ev.details_json = NULL;
	ev.outcome = "maybe";
	assert_int_equal(art_audit_append(NULL, s, &ev, NOW), AF_EINVAL);
	ev.outcome = NULL;
	ev.subject = "line\nbreak";
	assert_int_equal(art_audit_append(NULL, s, &ev, NOW), AF_EINVAL);
	ev.subject = NULL;
	assert_int_equal(art_audit_append(NULL, s, &ev, NOW), 0); /* defaults */
	assert_int_equal(art_audit_verify(&rep, s), 0);
	assert_int_equal(rep.entries, 1);
	art_store_close(s);

	ro = open_store(dir, ART_STORE_RDONLY);
	assert_int_equal(art_audit_append(NULL, ro, &ev, NOW), AF_EDENIED);
	art_store_close(ro);
	remove_dir(dir);
}

static void test_audit__edited_entry_detected(void **state)
{
	char *dir = store_with(5), *e3, *edited, prev2[65], *e2;
	art_audit_report rep;
	json_t *o;

	(void)state;
	e3 = raw_get(dir, 3);
	/* 1. edit without fixing the hash */
	o = json_loads(e3, 0, NULL);
	json_object_set_new(o, "subject", json_string("thing/evil"));
	edited = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	raw_put(dir, 3, edited);
	free(edited);
	assert_int_equal(verify_dir(dir, &rep), AF_ECORRUPT);
	assert_int_equal(rep.bad_seq, 3);
	assert_non_null(strstr(art_error_last(), "entry 3 was edited"));

	/* 2. edit and recompute its hash: the next entry no longer follows */
	e2 = raw_get(dir, 2);
	hash_of(e2, prev2);
	edited = rehash(e3, "subject", json_string("thing/evil"), NULL);
	raw_put(dir, 3, edited);
	free(edited);
	assert_int_equal(verify_dir(dir, &rep), AF_ECORRUPT);
	assert_int_equal(rep.bad_seq, 4);
	assert_non_null(strstr(art_error_last(), "does not follow entry 3"));

	/* 3. an edit that is not canonical JSON any more (whitespace) */
	raw_put(dir, 3, e3);
	assert_int_equal(verify_dir(dir, &rep), 0);
	edited = malloc(strlen(e3) + 2);
	snprintf(edited, strlen(e3) + 2, " %s", e3);
	raw_put(dir, 3, edited);
	free(edited);
	assert_int_equal(verify_dir(dir, &rep), AF_ECORRUPT);
	assert_int_equal(rep.bad_seq, 3);

	/* 4. garbage */
	raw_put(dir, 3, "not json");
	assert_int_equal(verify_dir(dir, &rep), AF_ECORRUPT);
	assert_int_equal(rep.bad_seq, 3);
	free(e2);
	free(e3);
	remove_dir(dir);
}

static void test_audit__deleted_entry_detected(void **state)
{
	char *dir = store_with(5);
	art_audit_report rep;

	(void)state;
	raw_put(dir, 2, NULL);
	assert_int_equal(verify_dir(dir, &rep), AF_ECORRUPT);
	assert_int_equal(rep.bad_seq, 2);
	assert_non_null(strstr(art_error_last(), "missing"));
	remove_dir(dir);

	/* deleting the first one too */
	dir = store_with(3);
	raw_put(dir, 1, NULL);
	assert_int_equal(verify_dir(dir, &rep), AF_ECORRUPT);
	assert_int_equal(rep.bad_seq, 1);
	remove_dir(dir);
}

static void test_audit__reordered_entries_detected(void **state)
{
	char *dir = store_with(5), *e2 = raw_get(dir, 2), *e4 = raw_get(dir, 4), *moved;
	art_audit_report rep;

	(void)state;
	raw_put(dir, 2, e4);
	raw_put(dir, 4, e2);
	assert_int_equal(verify_dir(dir, &rep), AF_ECORRUPT);
	assert_int_equal(rep.bad_seq, 2);
	assert_non_null(strstr(art_error_last(), "reordered"));

	/* ... also when the attacker renumbers them (then the links break) */
	moved = rehash(e4, "seq", json_integer(2), NULL);
	raw_put(dir, 2, moved);
	free(moved);
	moved = rehash(e2, "seq", json_integer(4), NULL);
	raw_put(dir, 4, moved);
	free(moved);
	assert_int_equal(verify_dir(dir, &rep), AF_ECORRUPT);
	assert_int_equal(rep.bad_seq, 2);
	free(e2);
	free(e4);
	remove_dir(dir);
}

static void test_audit__inserted_entry_detected(void **state)
{
	char *dir = store_with(3);
	art_audit_report rep;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = {5, "00002"}, v = {2, "{}"};

	(void)state;
	raw_open(dir, &env, &txn, &dbi);
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	assert_int_equal(verify_dir(dir, &rep), AF_ECORRUPT);
	remove_dir(dir);
}

static char *checkpoint_of(const char *dir, const art_key *key, time_t t)
{
	art_store *s = open_store(dir, ART_STORE_RDONLY);
	char *cp = NULL;

	if (art_audit_checkpoint(&cp, s, key, t) < 0)
		fail_msg("checkpoint: %s", art_error_last());
	art_store_close(s);
	return cp;
}

static int verify_cp(const char *dir, const char *cp, time_t now, art_audit_report *rep)
{
	art_store *s = open_store(dir, ART_STORE_RDONLY);
	int rc = art_audit_verify_checkpoint(rep, s, fx.kr, cp, strlen(cp), now);

	art_store_close(s);
	return rc;
}

static void test_audit__checkpoint_detects_truncation_and_rewrite(void **state)
{
	char *dir = store_with(5), *cp, *e, prev[65];
	art_store *s;
	art_audit_report rep;
	uint64_t i;

	(void)state;
	cp = checkpoint_of(dir, fx.rm, NOW + 100);
	assert_int_equal(verify_cp(dir, cp, NOW + 200, &rep), 0);
	assert_int_equal(rep.checkpoint_seq, 5);

	/* more entries later: still consistent */
	s = open_store(dir, 0);
	append(s, "promote", "channel/blue", NOW + 300);
	art_store_close(s);
	assert_int_equal(verify_cp(dir, cp, NOW + 400, &rep), 0);
	assert_int_equal(rep.head_seq, 6);

	/* truncation: the chain alone cannot tell, the checkpoint can */
	raw_put(dir, 6, NULL);
	raw_put(dir, 5, NULL);
	assert_int_equal(verify_dir(dir, &rep), 0);
	assert_int_equal(verify_cp(dir, cp, NOW + 400, &rep), AF_ECORRUPT);
	assert_non_null(strstr(art_error_last(), "truncated"));
	remove_dir(dir);

	/* rewriting the whole chain from entry 2 on: verify passes, the checkpoint fails */
	dir = store_with(5);
	cp = (free(cp), checkpoint_of(dir, fx.rm, NOW + 100));
	e = raw_get(dir, 1);
	hash_of(e, prev);
	free(e);
	for (i = 2; i <= 5; i++) {
		char *orig = raw_get(dir, i), *fixed;

		fixed = rehash(orig, i == 2 ? "subject" : NULL,
			       i == 2 ? json_string("thing/evil") : NULL, prev);
		hash_of(fixed, prev);
		raw_put(dir, i, fixed);
		free(orig);
		free(fixed);
	}
	assert_int_equal(verify_dir(dir, &rep), 0);
	assert_int_equal(verify_cp(dir, cp, NOW + 400, &rep), AF_ECORRUPT);
	assert_non_null(strstr(art_error_last(), "rewritten"));
	free(cp);
	remove_dir(dir);
}

static void test_audit__checkpoint_signatures(void **state)
{
	char *dir = store_with(2), *cp, *bad;
	art_audit_report rep;
	art_store *s;
	json_t *env;

	(void)state;
	/* a template-signer key signs no checkpoint (builders and release managers do) */
	cp = checkpoint_of(dir, fx.signer, NOW);
	assert_int_equal(verify_cp(dir, cp, NOW, &rep), AF_EDENIED);
	assert_non_null(strstr(art_error_last(), "release-manager"));
	free(cp);
	cp = checkpoint_of(dir, fx.builder, NOW);
	assert_int_equal(verify_cp(dir, cp, NOW, &rep), 0);
	free(cp);
	/* a revoked key */
	cp = checkpoint_of(dir, fx.revoked, NOW);
	assert_int_equal(verify_cp(dir, cp, NOW, &rep), AF_EREVOKED);
	free(cp);
	/* a key that has expired since: the checkpoint stays checkable */
	cp = checkpoint_of(dir, fx.shortlived, NOW);
	assert_int_equal(verify_cp(dir, cp, NOW + 30 * 86400, &rep), 0);
	free(cp);
	/* ... but one dated after the key expired is refused */
	cp = checkpoint_of(dir, fx.shortlived, NOW + 7200);
	assert_int_equal(verify_cp(dir, cp, NOW + 7300, &rep), AF_EEXPIRED);
	free(cp);
	/* dated in the future */
	cp = checkpoint_of(dir, fx.rm, NOW + 86400);
	assert_int_equal(verify_cp(dir, cp, NOW, &rep), AF_ESIGNATURE);
	free(cp);
	/* a tampered payload (seq lowered) */
	cp = checkpoint_of(dir, fx.rm, NOW);
	env = json_loads(cp, 0, NULL);
	{
		const char *b64 = json_string_value(json_object_get(env, "payload"));
		uint8_t *payload;
		size_t len;
		char *p2, *b2, *where;

		assert_int_equal(art_base64_decode(&payload, &len, b64), 0);
		p2 = strndup((char *)payload, len);
		where = strstr(p2, "\"seq\":2");
		assert_non_null(where);
		where[6] = '1';
		assert_int_equal(art_base64_encode(&b2, p2, strlen(p2)), 0);
		json_object_set_new(env, "payload", json_string(b2));
		bad = json_dumps(env, 0);
		assert_int_equal(verify_cp(dir, bad, NOW, &rep), AF_ESIGNATURE);
		free(payload);
		free(p2);
		free(b2);
		free(bad);
	}
	json_decref(env);
	assert_int_equal(verify_cp(dir, "{}", NOW, &rep), AF_ECORRUPT);
	free(cp);

	/* a broken chain is not checkpointed */
	raw_put(dir, 1, NULL);
	s = open_store(dir, ART_STORE_RDONLY);
	cp = NULL;
	assert_int_equal(art_audit_checkpoint(&cp, s, fx.rm, NOW), AF_ECORRUPT);
	assert_null(cp);
	art_store_close(s);
	remove_dir(dir);
}

/* Rewrite entries from..to with rehash (field/value applied to `from`). */
static void rewrite_chain(const char *dir, uint64_t from, uint64_t to, const char *field,
			  json_t *value)
{
	char prev[65], *e;
	uint64_t i;

	if (from > 1) {
		e = raw_get(dir, from - 1);
		hash_of(e, prev);
		free(e);
	} else {
		memset(prev, '0', 64);
		prev[64] = '\0';
	}
	for (i = from; i <= to; i++) {
		char *orig = raw_get(dir, i), *fixed;

		fixed = rehash(orig, i == from ? field : NULL, i == from ? value : NULL, prev);
		hash_of(fixed, prev);
		raw_put(dir, i, fixed);
		free(orig);
		free(fixed);
	}
}

static int verify_signed_dir(const char *dir, art_audit_report *rep)
{
	art_store *s = open_store(dir, ART_STORE_RDONLY);
	int rc = art_audit_verify_signed(rep, s, fx.kr);

	art_store_close(s);
	return rc;
}

/* A store: 1 promote signed by rm, 2 an unsigned check, 3 a refused promote
 * signed by a key nobody trusts, 4 a build signed by the builder. */
static char *signed_store(art_key *stranger)
{
	char *dir = temp_dir();
	art_store *s = open_store(dir, ART_STORE_CREATE);
	const art_key *rm[1] = {fx.rm}, *st[1] = {stranger}, *b[1] = {fx.builder};
	art_audit_event ev = {"promote", art_key_id(fx.rm), "channel/blue", ART_AUDIT_OK,
			      "{\"release\":1}", rm, 1};

	assert_int_equal(art_audit_append(NULL, s, &ev, NOW + 1), 0);
	append(s, "check", "repo", NOW + 2);
	ev.actor = art_key_id(stranger);
	ev.outcome = ART_AUDIT_REFUSED;
	ev.signers = st;
	assert_int_equal(art_audit_append(NULL, s, &ev, NOW + 3), 0);
	ev.action = "build";
	ev.actor = art_key_id(fx.builder);
	ev.outcome = ART_AUDIT_OK;
	ev.signers = b;
	assert_int_equal(art_audit_append(NULL, s, &ev, NOW + 4), 0);
	art_store_close(s);
	return dir;
}

/*
 * Entries of signed actions carry their actors' signatures: a history
 * rewritten with recomputed hashes verifies as a chain, but not signed.
 */
static void test_audit__signed_entries_detect_a_rewritten_history(void **state)
{
	art_key *stranger = NULL;
	art_audit_report rep;
	char *dir, *e;
	json_t *o;

	(void)state;
	assert_int_equal(art_key_generate(&stranger, 2048), 0);
	dir = signed_store(stranger);
	e = raw_get(dir, 1);
	assert_non_null(strstr(e, "\"signatures\":[{\"keyid\":\""));
	free(e);
	assert_int_equal(verify_dir(dir, &rep), 0);
	assert_int_equal(verify_signed_dir(dir, &rep), 0);
	assert_int_equal(rep.entries, 4);

	/* The promoted release changed, the chain rehashed: the signature breaks. */
	rewrite_chain(dir, 1, 4, "details", json_pack("{s:i}", "release", 7));
	assert_int_equal(verify_dir(dir, &rep), 0);
	assert_int_equal(verify_signed_dir(dir, &rep), AF_ECORRUPT);
	assert_int_equal(rep.bad_seq, 1);
	assert_non_null(strstr(art_error_last(), "does not verify"));
	remove_dir(dir);

	/* The signatures dropped: an actor's successful action without its signature. */
	dir = signed_store(stranger);
	e = raw_get(dir, 4);
	o = json_loads(e, 0, NULL);
	json_object_del(o, "signatures");
	free(e);
	e = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	raw_put(dir, 4, e);
	rewrite_chain(dir, 4, 4, NULL, NULL);
	json_decref(o);
	free(e);
	assert_int_equal(verify_dir(dir, &rep), 0);
	assert_int_equal(verify_signed_dir(dir, &rep), AF_ECORRUPT);
	assert_int_equal(rep.bad_seq, 4);
	assert_non_null(strstr(art_error_last(), "carries no valid signature of its actor"));
	remove_dir(dir);

	/* An entry forged in a trusted actor's name, signed by another key. */
	dir = signed_store(stranger);
	e = raw_get(dir, 3);
	o = json_loads(e, 0, NULL);
	json_object_set_new(o, "outcome", json_string(ART_AUDIT_OK));
	json_object_set_new(o, "actor", json_string(art_key_id(fx.rm)));
	free(e);
	e = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	raw_put(dir, 3, e);
	rewrite_chain(dir, 3, 4, NULL, NULL);
	json_decref(o);
	free(e);
	assert_int_equal(verify_dir(dir, &rep), 0);
	assert_int_equal(verify_signed_dir(dir, &rep), AF_ECORRUPT);
	assert_int_equal(rep.bad_seq, 3);
	remove_dir(dir);
	art_key_free(stranger);
}

/* Automatic checkpoints: into a directory, by whichever actor signed last. */
static void test_audit__checkpoint_to_dir(void **state)
{
	art_key *stranger = NULL;
	char *dir, *cpdir, path[512], *cp = NULL;
	size_t len = 0;
	art_store *s;
	art_audit_report rep;
	uint64_t seq = 0;

	(void)state;
	assert_int_equal(art_key_generate(&stranger, 2048), 0);
	dir = signed_store(stranger);
	cpdir = temp_dir();
	snprintf(path, sizeof(path), "%s/sub", cpdir);
	s = open_store(dir, 0);
	/* A builder's checkpoint (builds checkpoint too). */
	assert_int_equal(art_audit_checkpoint_to_dir(&seq, s, fx.builder, path, NOW + 10), 0);
	assert_int_equal(seq, 4);
	snprintf(path, sizeof(path), "%s/sub/00000000000000000004.json", cpdir);
	assert_int_equal(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/sub/latest.json", cpdir);
	assert_int_equal(art_file_read(&cp, &len, path, 64 * 1024), 0);
	assert_int_equal(art_audit_verify_checkpoint(&rep, s, fx.kr, cp, len, NOW + 20), 0);
	assert_int_equal(rep.checkpoint_seq, 4);
	art_store_close(s);
	/* Truncated afterwards: the automatic checkpoint catches it. */
	raw_put(dir, 4, NULL);
	s = open_store(dir, ART_STORE_RDONLY);
	assert_int_equal(art_audit_verify_checkpoint(&rep, s, fx.kr, cp, len, NOW + 20), AF_ECORRUPT);
	assert_non_null(strstr(art_error_last(), "truncated"));
	art_store_close(s);
	free(cp);
	remove_dir(cpdir);
	remove_dir(dir);
	art_key_free(stranger);
}

static void test_audit__batch_entries_land_with_the_batch(void **state)
{
	char *dir = store_with(1);
	art_store *s = open_store(dir, 0);
	art_store_txn *t = NULL;
	art_audit_event ev = {"build", "k", "repo@1", ART_AUDIT_OK, "{\"built\":[]}", NULL, 0};
	art_audit_report rep;
	art_manifest_info info;
	art_manifest *m = NULL;
	char *envelope = NULL, *bytes = NULL;
	size_t len;

	(void)state;
	/* a committed batch carries its entry */
	assert_int_equal(art_store_txn_begin(&t, s), 0);
	assert_int_equal(art_store_txn_audit(t, &ev, NOW), 0);
	assert_int_equal(art_store_put_blob(t, "abc", 3, NULL), 0);
	assert_int_equal(art_store_txn_commit(t), 0);
	assert_int_equal(art_audit_verify(&rep, s), 0);
	assert_int_equal(rep.entries, 2);

	/* an aborted batch does not */
	assert_int_equal(art_store_txn_begin(&t, s), 0);
	assert_int_equal(art_store_txn_audit(t, &ev, NOW), 0);
	art_store_txn_abort(t);
	/* a batch that fails at commit (an artifact whose parts are missing) does not */
	assert_int_equal(art_store_txn_begin(&t, s), 0);
	assert_int_equal(art_store_txn_audit(t, &ev, NOW), 0);
	memset(&info, 0, sizeof(info));
	info.name = "ghost";
	info.version = "1.0.0";
	info.resolved_template_digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
	info.git_commit = "0123456789abcdef0123456789abcdef01234567";
	info.policy_digest = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
	info.toolchain_id = "tc";
	info.native_compat_id = "compat";
	info.target_triple = "x86_64-linux-gnu";
	info.guest_abi_version = 1;
	assert_int_equal(art_manifest_new(&m, &info), 0);
	assert_int_equal(art_manifest_add_part(m, ART_PART_WASM, ART_MEDIA_WASM,
		"3333333333333333333333333333333333333333333333333333333333333333", 10), 0);
	assert_int_equal(art_manifest_add_native(m, "compat",
		"4444444444444444444444444444444444444444444444444444444444444444", 10), 0);
	assert_int_equal(art_manifest_add_part(m, ART_PART_SOURCE, ART_MEDIA_SOURCE,
		"5555555555555555555555555555555555555555555555555555555555555555", 10), 0);
	assert_int_equal(art_manifest_add_part(m, ART_PART_PROVENANCE, ART_MEDIA_PROVENANCE,
		"6666666666666666666666666666666666666666666666666666666666666666", 10), 0);
	assert_int_equal(art_manifest_serialize(&bytes, &len, m), 0);
	assert_int_equal(art_sig_sign_payload(&envelope, fx.builder, ART_MANIFEST_PAYLOAD_TYPE,
					      bytes, len), 0);
	assert_int_equal(art_store_put_artifact(t, m, envelope, strlen(envelope)), 0);
	assert_int_equal(art_store_txn_commit(t), AF_ENOTFOUND);
	assert_int_equal(art_audit_verify(&rep, s), 0);
	assert_int_equal(rep.entries, 2);

	/* a bad event is refused when queued */
	assert_int_equal(art_store_txn_begin(&t, s), 0);
	ev.action = "no spaces";
	assert_int_equal(art_store_txn_audit(t, &ev, NOW), AF_EINVAL);
	art_store_txn_abort(t);
	art_manifest_free(m);
	free(bytes);
	free(envelope);
	art_store_close(s);
	remove_dir(dir);
}

#define WRITERS 2
#define PER_WRITER 40

static void test_audit__concurrent_appenders_keep_one_chain(void **state)
{
	char *dir = store_with(0);
	art_audit_report rep;
	pid_t pids[WRITERS];
	int i, status;

	(void)state;
	for (i = 0; i < WRITERS; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			art_store *s = NULL;
			art_audit_event ev = {"check", "unsigned", "repo", ART_AUDIT_OK, NULL, NULL, 0};
			int j;

			if (art_store_open(&s, dir, 0) < 0)
				_exit(2);
			for (j = 0; j < PER_WRITER; j++)
				if (art_audit_append(NULL, s, &ev, NOW + j) < 0)
					_exit(3);
			art_store_close(s);
			_exit(0);
		}
	}
	for (i = 0; i < WRITERS; i++) {
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	assert_int_equal(verify_dir(dir, &rep), 0);
	assert_int_equal(rep.entries, WRITERS * PER_WRITER);
	remove_dir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_audit__append_list_verify),
		cmocka_unit_test(test_audit__bad_events_refused),
		cmocka_unit_test(test_audit__edited_entry_detected),
		cmocka_unit_test(test_audit__deleted_entry_detected),
		cmocka_unit_test(test_audit__reordered_entries_detected),
		cmocka_unit_test(test_audit__inserted_entry_detected),
		cmocka_unit_test(test_audit__checkpoint_detects_truncation_and_rewrite),
		cmocka_unit_test(test_audit__checkpoint_signatures),
		cmocka_unit_test(test_audit__signed_entries_detect_a_rewritten_history),
		cmocka_unit_test(test_audit__checkpoint_to_dir),
		cmocka_unit_test(test_audit__batch_entries_land_with_the_batch),
		cmocka_unit_test(test_audit__concurrent_appenders_keep_one_chain),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
