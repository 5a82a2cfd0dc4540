/*
 * test_keyring.c - keyring round trips, roles, validity windows, revocation,
 * and refusal of every kind of damaged keyring file.
 *
 * Three RSA keys are generated once (group setup). Corrupt keyrings are made
 * by editing a valid one with jansson, so each case differs from a good file
 * in exactly one way.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "art/error.h"
#include "art/keyring.h"
#include "art/keys.h"
#include "art/util.h"

#include <ftw.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/buffer.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* 2026-01-01T00:00:00Z and friends. */
#define T_2026 ((time_t)1767225600)
#define DAY ((time_t)86400)

typedef struct fixture {
	char dir[64];
	art_key *a, *b, *c;
} fixture;

static fixture fx;

static const char *tmp_path(const char *name)
{
	static char path[256];

	snprintf(path, sizeof(path), "%s/%s", fx.dir, name);
	return path;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int group_setup(void **state)
{
	(void)state;
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/af-test-keyring-XXXXXX");
	if (!mkdtemp(fx.dir))
		return -1;
	if (art_key_generate(&fx.a, 2048) < 0 || art_key_generate(&fx.b, 2048) < 0 ||
	    art_key_generate(&fx.c, 2048) < 0)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	art_key_free(fx.a);
	art_key_free(fx.b);
	art_key_free(fx.c);
	nftw(fx.dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* a: template-signer for 2026 (one year); b: builder, no expiry; a: also builder. */
static art_keyring *sample_keyring(void)
{
	art_keyring *kr = NULL;

	assert_int_equal(art_keyring_new(&kr), 0);
	assert_int_equal(art_keyring_add(kr, fx.a, ART_ROLE_TEMPLATE_SIGNER, T_2026,
					 T_2026 + 365 * DAY), 0);
	assert_int_equal(art_keyring_add(kr, fx.b, ART_ROLE_BUILDER, T_2026, 0), 0);
	assert_int_equal(art_keyring_add(kr, fx.a, ART_ROLE_BUILDER, T_2026, 0), 0);
	return kr;
}

static json_t *sample_json(void)
{
	art_keyring *kr = sample_keyring();
	json_error_t jerr;
	char *text = NULL;
	json_t *root;

	assert_int_equal(art_keyring_revoke(kr, art_key_id(fx.b), T_2026 + DAY, "lost laptop"), 0);
	assert_int_equal(art_keyring_to_json(&text, kr), 0);
	root = json_loads(text, 0, &jerr);
	assert_non_null(root);
	free(text);
	art_keyring_free(kr);
	return root;
}

/* Parse root (as edited by a test) and expect rc with needle in the message. */
static void expect_parse(json_t *root, int rc, const char *needle)
{
	art_keyring *kr = NULL;
	char *text = json_dumps(root, JSON_INDENT(2));

	assert_non_null(text);
	assert_int_equal(art_keyring_parse(&kr, text, strlen(text), "ring.json"), rc);
	assert_null(kr);
	assert_non_null(strstr(art_error_last(), "ring.json"));
	if (needle && !strstr(art_error_last(), needle))
		fail_msg("message '%s' lacks '%s'", art_error_last(), needle);
	free(text);
	json_decref(root);
}

static void expect_parse_text(const char *text, int rc)
{
	art_keyring *kr = NULL;

	assert_int_equal(art_keyring_parse(&kr, text, strlen(text), "ring.json"), rc);
	assert_null(kr);
	assert_non_null(strstr(art_error_last(), "ring.json"));
}

static json_t *first_key(json_t *root)
{
	return json_array_get(json_object_get(root, "keys"), 0);
}

static void test_keyring__save_load_round_trip(void **state)
{
	art_keyring *kr = sample_keyring(), *back = NULL;
	const art_keyring_entry *e;
	char *text1 = NULL, *text2 = NULL;
	struct stat st;

	(void)state;
	assert_int_equal(art_keyring_revoke(kr, art_key_id(fx.b), T_2026 + DAY, NULL), 0);
	assert_int_equal(art_keyring_save(kr, tmp_path("ring.json")), 0);
	assert_int_equal(stat(tmp_path("ring.json"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	/* Unsigned (v1): readable for migration, never trusted. */
	assert_int_equal(art_keyring_load(&back, tmp_path("ring.json")), AF_ESIGNATURE);
	assert_null(back);
	assert_non_null(strstr(art_error_last(), "trust init"));
	assert_int_equal(art_keyring_load_unchecked(&back, tmp_path("ring.json")), 0);
	assert_false(art_keyring_is_signed(back));

	assert_int_equal(art_keyring_count(back), 3);
	e = art_keyring_get(back, 0);
	assert_string_equal(e->id, art_key_id(fx.a));
	assert_string_equal(e->role, ART_ROLE_TEMPLATE_SIGNER);
	assert_string_equal(e->algorithm, "rsa-pss-sha256");
	assert_int_equal(e->not_before, T_2026);
	assert_int_equal(e->not_after, T_2026 + 365 * DAY);
	assert_true(e->added > 0);
	assert_false(art_key_is_private(e->key));
	assert_string_equal(art_key_id(e->key), art_key_id(fx.a));
	e = art_keyring_get(back, 1);
	assert_string_equal(e->id, art_key_id(fx.b));
	assert_int_equal(e->not_after, 0);
	assert_null(art_keyring_get(back, 3));

	assert_int_equal(art_keyring_revoked_count(back), 1);
	assert_string_equal(art_keyring_revoked_get(back, 0)->id, art_key_id(fx.b));
	assert_int_equal(art_keyring_revoked_get(back, 0)->at, T_2026 + DAY);
	assert_string_equal(art_keyring_revoked_get(back, 0)->reason, "unspecified");

	/* Saving what was loaded gives the same bytes. */
	assert_int_equal(art_keyring_to_json(&text1, kr), 0);
	assert_int_equal(art_keyring_to_json(&text2, back), 0);
	assert_string_equal(text1, text2);
	assert_null(strstr(text1, "PRIVATE"));
	assert_non_null(strstr(text1, "\"format\": \"agentfactory-keyring/v1\""));
	free(text1);
	free(text2);
	art_keyring_free(kr);
	art_keyring_free(back);
}

static void test_keyring__empty_keyring_round_trip(void **state)
{
	art_keyring *kr = NULL, *back = NULL;
	char *text = NULL;

	(void)state;
	assert_int_equal(art_keyring_new(&kr), 0);
	assert_int_equal(art_keyring_to_json(&text, kr), 0);
	assert_int_equal(art_keyring_parse(&back, text, strlen(text), "x"), 0);
	assert_int_equal(art_keyring_count(back), 0);
	assert_int_equal(art_keyring_revoked_count(back), 0);
	free(text);
	art_keyring_free(kr);
	art_keyring_free(back);
	art_keyring_free(NULL);
}

static void test_keyring__add_refusals(void **state)
{
	art_keyring *kr = sample_keyring();

	(void)state;
	assert_int_equal(art_keyring_add(kr, fx.a, ART_ROLE_TEMPLATE_SIGNER, T_2026, 0), AF_EEXISTS);
	assert_non_null(strstr(art_error_last(), "already trusted as template-signer"));
	assert_int_equal(art_keyring_add(kr, fx.c, "admin", T_2026, 0), AF_EINVAL);
	assert_non_null(strstr(art_error_last(), "admin"));
	assert_int_equal(art_keyring_add(kr, fx.c, NULL, T_2026, 0), AF_EINVAL);
	assert_int_equal(art_keyring_add(kr, fx.c, ART_ROLE_BUILDER, T_2026, T_2026), AF_EINVAL);
	assert_int_equal(art_keyring_add(kr, fx.c, ART_ROLE_BUILDER, T_2026, T_2026 - 1),
			 AF_EINVAL);
	assert_int_equal(art_keyring_add(kr, fx.c, ART_ROLE_BUILDER, -5, 0), AF_EINVAL);
	assert_int_equal(art_keyring_count(kr), 3);
	/* The same key for a third role is a separate entry. */
	assert_int_equal(art_keyring_add(kr, fx.a, ART_ROLE_RELEASE_MANAGER, T_2026, 0), 0);
	assert_int_equal(art_keyring_count(kr), 4);
	art_keyring_free(kr);
}

static void test_keyring__roles(void **state)
{
	(void)state;
	assert_true(art_keyring_role_valid("template-signer"));
	assert_true(art_keyring_role_valid("builder"));
	assert_true(art_keyring_role_valid("release-manager"));
	assert_false(art_keyring_role_valid("Builder"));
	assert_false(art_keyring_role_valid("builder "));
	assert_false(art_keyring_role_valid(""));
	assert_false(art_keyring_role_valid(NULL));
}

static void test_keyring__lookup(void **state)
{
	art_keyring *kr = sample_keyring();
	time_t mid = T_2026 + 100 * DAY, end = T_2026 + 365 * DAY;
	const art_key *key = NULL;

	(void)state;
	assert_int_equal(art_keyring_lookup(&key, kr, art_key_id(fx.a), ART_ROLE_TEMPLATE_SIGNER,
					    mid), 0);
	assert_non_null(key);
	assert_string_equal(art_key_id(key), art_key_id(fx.a));
	assert_false(art_key_is_private(key));
	/* Window edges are inclusive. */
	assert_int_equal(art_keyring_lookup(&key, kr, art_key_id(fx.a), ART_ROLE_TEMPLATE_SIGNER,
					    T_2026), 0);
	assert_int_equal(art_keyring_lookup(&key, kr, art_key_id(fx.a), ART_ROLE_TEMPLATE_SIGNER,
					    end), 0);
	assert_int_equal(art_keyring_lookup(&key, kr, art_key_id(fx.a), ART_ROLE_TEMPLATE_SIGNER,
					    end + 1), AF_EEXPIRED);
	assert_null(key);
	assert_non_null(strstr(art_error_last(), "expired at 2027-01-01T00:00:00Z"));
	assert_int_equal(art_keyring_lookup(&key, kr, art_key_id(fx.a), ART_ROLE_TEMPLATE_SIGNER,
					    T_2026 - 1), AF_EEXPIRED);
	assert_non_null(strstr(art_error_last(), "not valid before 2026-01-01T00:00:00Z"));
	/* The builder entry of the same key has no expiry. */
	assert_int_equal(art_keyring_lookup(&key, kr, art_key_id(fx.a), ART_ROLE_BUILDER,
					    end + 1000 * DAY), 0);

	assert_int_equal(art_keyring_lookup(&key, kr, art_key_id(fx.b), ART_ROLE_TEMPLATE_SIGNER,
					    mid), AF_EDENIED);
	assert_non_null(strstr(art_error_last(), "trusted as builder, not as template-signer"));
	assert_non_null(strstr(art_error_last(), "agentfactory sign"));
	assert_int_equal(art_keyring_lookup(&key, kr, art_key_id(fx.a), ART_ROLE_RELEASE_MANAGER,
					    mid), AF_EDENIED);
	assert_non_null(strstr(art_error_last(), "template-signer, builder"));

	assert_int_equal(art_keyring_lookup(&key, kr, art_key_id(fx.c), ART_ROLE_BUILDER, mid),
			 AF_ENOTFOUND);
	assert_non_null(strstr(art_error_last(), "trust add"));
	assert_int_equal(art_keyring_lookup(&key, kr, "nonsense", ART_ROLE_BUILDER, mid),
			 AF_ENOTFOUND);
	/* No role, or an unknown one, never matches "any role". */
	assert_int_equal(art_keyring_lookup(&key, kr, art_key_id(fx.a), NULL, mid), AF_EINVAL);
	assert_int_equal(art_keyring_lookup(&key, kr, art_key_id(fx.a), "admin", mid), AF_EINVAL);
	assert_int_equal(art_keyring_lookup(&key, kr, NULL, ART_ROLE_BUILDER, mid), AF_EINVAL);
	assert_null(key);
	art_keyring_free(kr);
}

static void test_keyring__revoke(void **state)
{
	art_keyring *kr = sample_keyring(), *back = NULL;
	const art_key *key = NULL;
	char bad[65];

	(void)state;
	assert_int_equal(art_keyring_revoke(kr, art_key_id(fx.c), T_2026, "x"), AF_ENOTFOUND);
	assert_int_equal(art_keyring_revoke(kr, "abc", T_2026, "x"), AF_EINVAL);
	snprintf(bad, sizeof(bad), "%s", art_key_id(fx.a));
	bad[0] = 'G';
	assert_int_equal(art_keyring_revoke(kr, bad, T_2026, "x"), AF_EINVAL);
	assert_int_equal(art_keyring_revoke(kr, art_key_id(fx.a), T_2026, "\xff\xfe"), AF_EINVAL);

	assert_int_equal(art_keyring_revoke(kr, art_key_id(fx.a), T_2026 + 5 * DAY,
					    "key leaked in CI log"), 0);
	assert_int_equal(art_keyring_revoke(kr, art_key_id(fx.a), T_2026, "again"), AF_EEXISTS);
	/* Revocation covers every role, at any time (even before `at`). */
	assert_int_equal(art_keyring_lookup(&key, kr, art_key_id(fx.a), ART_ROLE_TEMPLATE_SIGNER,
					    T_2026 + DAY), AF_EREVOKED);
	assert_non_null(strstr(art_error_last(), "key leaked in CI log"));
	assert_int_equal(art_keyring_lookup(&key, kr, art_key_id(fx.a), ART_ROLE_BUILDER,
					    T_2026 + 10 * DAY), AF_EREVOKED);
	/* Revoked beats wrong role. */
	assert_int_equal(art_keyring_lookup(&key, kr, art_key_id(fx.a), ART_ROLE_RELEASE_MANAGER,
					    T_2026 + 10 * DAY), AF_EREVOKED);
	/* A revoked key cannot come back. */
	assert_int_equal(art_keyring_add(kr, fx.a, ART_ROLE_RELEASE_MANAGER, T_2026, 0),
			 AF_EREVOKED);
	/* b is untouched. */
	assert_int_equal(art_keyring_lookup(&key, kr, art_key_id(fx.b), ART_ROLE_BUILDER,
					    T_2026 + DAY), 0);
	assert_non_null(art_keyring_find_revocation(kr, art_key_id(fx.a)));
	assert_null(art_keyring_find_revocation(kr, art_key_id(fx.b)));

	/* It survives a save and load. */
	assert_int_equal(art_keyring_save(kr, tmp_path("revoked.json")), 0);
	assert_int_equal(art_keyring_load_unchecked(&back, tmp_path("revoked.json")), 0);
	assert_int_equal(art_keyring_lookup(&key, back, art_key_id(fx.a), ART_ROLE_BUILDER,
					    T_2026 + DAY), AF_EREVOKED);
	assert_string_equal(art_keyring_find_revocation(back, art_key_id(fx.a))->reason,
			    "key leaked in CI log");
	art_keyring_free(kr);
	art_keyring_free(back);
}

/* ---- signed keyrings (format v2) ------------------------------------------ */

#define FAR_FUTURE ((time_t)253402300799LL)

/* sample_keyring + c as its root, signed by c as version `version`. */
static art_keyring *signed_keyring(uint64_t version)
{
	art_keyring *kr = sample_keyring();
	const art_key *signers[1] = {fx.c};

	assert_int_equal(art_keyring_add(kr, fx.c, ART_ROLE_ROOT, 0, 0), 0);
	assert_int_equal(art_keyring_sign(kr, version, FAR_FUTURE, signers, 1), 0);
	return kr;
}

static json_t *to_doc(const art_keyring *kr)
{
	char *text = NULL;
	json_t *doc;

	assert_int_equal(art_keyring_to_json(&text, kr), 0);
	doc = json_loads(text, 0, NULL);
	assert_non_null(doc);
	free(text);
	return doc;
}

static void test_keyring__signed_round_trip(void **state)
{
	art_keyring *kr = signed_keyring(7), *back = NULL;
	char *text1 = NULL, *text2 = NULL;

	(void)state;
	assert_true(art_keyring_is_signed(kr));
	assert_int_equal(art_keyring_check(kr, "ring.json", T_2026), 0);
	assert_int_equal(art_keyring_save(kr, tmp_path("signed.json")), 0);
	assert_int_equal(art_keyring_load(&back, tmp_path("signed.json")), 0);
	assert_true(art_keyring_is_signed(back));
	assert_int_equal(art_keyring_version(back), 7);
	assert_int_equal(art_keyring_expires(back), FAR_FUTURE);
	assert_int_equal(art_keyring_root_threshold(back), 1);
	assert_int_equal(art_keyring_count(back), 4);
	assert_int_equal(art_keyring_to_json(&text1, kr), 0);
	assert_int_equal(art_keyring_to_json(&text2, back), 0);
	assert_string_equal(text1, text2);
	assert_non_null(strstr(text1, "\"format\": \"agentfactory-keyring/v2\""));
	/* A mutation drops the signatures: the change must be signed again. */
	assert_int_equal(art_keyring_revoke(back, art_key_id(fx.b), T_2026, "x"), 0);
	assert_false(art_keyring_is_signed(back));
	assert_int_equal(art_keyring_check(back, "ring.json", T_2026), AF_ESIGNATURE);
	free(text1);
	free(text2);
	art_keyring_free(kr);
	art_keyring_free(back);
}

/* Every hand edit of the signed content is refused when parsed. */
static void test_keyring__hand_edits_refused(void **state)
{
	art_keyring *kr = signed_keyring(3);
	json_t *doc, *body;

	(void)state;
	assert_int_equal(art_keyring_revoke(kr, art_key_id(fx.b), T_2026, "lost"), 0);
	{
		const art_key *signers[1] = {fx.c};

		assert_int_equal(art_keyring_sign(kr, 3, FAR_FUTURE, signers, 1), 0);
	}
	/* A role changed. */
	doc = to_doc(kr);
	body = json_object_get(doc, "signed");
	json_object_set_new(json_array_get(json_object_get(body, "keys"), 0), "role",
			    json_string(ART_ROLE_RELEASE_MANAGER));
	expect_parse(doc, AF_ESIGNATURE, "edited after signing");
	/* A revocation deleted. */
	doc = to_doc(kr);
	json_array_clear(json_object_get(json_object_get(doc, "signed"), "revoked"));
	expect_parse(doc, AF_ESIGNATURE, "edited after signing");
	/* The version bumped, the expiry pushed. */
	doc = to_doc(kr);
	json_object_set_new(json_object_get(doc, "signed"), "version", json_integer(4));
	expect_parse(doc, AF_ESIGNATURE, "edited after signing");
	doc = to_doc(kr);
	json_object_set_new(json_object_get(doc, "signed"), "expires",
			    json_string("9999-12-31T23:59:59Z"));
	json_object_set_new(json_object_get(doc, "signed"), "expires",
			    json_string("9998-12-31T23:59:59Z"));
	expect_parse(doc, AF_ESIGNATURE, "edited after signing");
	/* The signatures removed, or a field added beside them. */
	doc = to_doc(kr);
	json_array_clear(json_object_get(doc, "signatures"));
	expect_parse(doc, AF_ECORRUPT, "signatures");
	doc = to_doc(kr);
	json_object_set_new(doc, "note", json_string("x"));
	expect_parse(doc, AF_ECORRUPT, "exactly the fields");
	/* The root key swapped for the attacker's own (self-signed by b). */
	doc = to_doc(kr);
	json_object_set_new(json_array_get(json_object_get(doc, "signatures"), 0), "keyid",
			    json_string(art_key_id(fx.a)));
	expect_parse(doc, AF_ESIGNATURE, "0 of the 1");
	art_keyring_free(kr);
}

static void test_keyring__root_threshold(void **state)
{
	art_keyring *kr = sample_keyring();
	const art_key *one[1] = {fx.c}, *two[2] = {fx.c, fx.b}, *twice[2] = {fx.c, fx.c};
	char *text = NULL;
	art_keyring *back = NULL;

	(void)state;
	assert_int_equal(art_keyring_add(kr, fx.c, ART_ROLE_ROOT, 0, 0), 0);
	assert_int_equal(art_keyring_set_root_threshold(kr, 2), 0);
	/* Two signatures needed, one root key: refused as corrupt. */
	assert_int_equal(art_keyring_sign(kr, 1, FAR_FUTURE, one, 1), 0);
	assert_int_equal(art_keyring_check(kr, "ring.json", T_2026), AF_ECORRUPT);
	/* b is revoked in sample_json, not here: make it a root; one signature is not enough. */
	assert_int_equal(art_keyring_add(kr, fx.b, ART_ROLE_ROOT, 0, 0), 0);
	assert_int_equal(art_keyring_sign(kr, 1, FAR_FUTURE, one, 1), 0);
	assert_int_equal(art_keyring_check(kr, "ring.json", T_2026), AF_ESIGNATURE);
	assert_int_equal(art_keyring_sign(kr, 1, FAR_FUTURE, twice, 2), AF_EINVAL);
	assert_int_equal(art_keyring_sign(kr, 1, FAR_FUTURE, two, 2), 0);
	assert_int_equal(art_keyring_check(kr, "ring.json", T_2026), 0);
	assert_int_equal(art_keyring_to_json(&text, kr), 0);
	assert_int_equal(art_keyring_parse(&back, text, strlen(text), "ring.json"), 0);
	assert_int_equal(art_keyring_root_threshold(back), 2);
	art_keyring_free(back);
	free(text);
	/* A revoked root's signature does not count. */
	assert_int_equal(art_keyring_revoke(kr, art_key_id(fx.b), T_2026, "lost"), 0);
	assert_int_equal(art_keyring_sign(kr, 2, FAR_FUTURE, two, 2), 0);
	assert_int_equal(art_keyring_check(kr, "ring.json", T_2026), AF_ECORRUPT);
	assert_int_equal(art_keyring_set_root_threshold(kr, 0), AF_EINVAL);
	assert_int_equal(art_keyring_set_root_threshold(kr, 17), AF_EINVAL);
	art_keyring_free(kr);
}

static void test_keyring__expiry(void **state)
{
	art_keyring *kr = sample_keyring();
	const art_key *signers[1] = {fx.c};

	(void)state;
	assert_int_equal(art_keyring_add(kr, fx.c, ART_ROLE_ROOT, 0, 0), 0);
	assert_int_equal(art_keyring_sign(kr, 1, T_2026 + DAY, signers, 1), 0);
	assert_int_equal(art_keyring_check(kr, "ring.json", T_2026 + DAY), 0);
	assert_int_equal(art_keyring_check(kr, "ring.json", T_2026 + DAY + 1), AF_EEXPIRED);
	assert_non_null(strstr(art_error_last(), "trust renew"));
	assert_int_equal(art_keyring_sign(kr, 1, 0, signers, 1), AF_EINVAL);
	assert_int_equal(art_keyring_sign(kr, 0, FAR_FUTURE, signers, 1), AF_EINVAL);
	assert_int_equal(art_keyring_sign(kr, 1, FAR_FUTURE, NULL, 0), AF_EINVAL);
	art_keyring_free(kr);
}

/* Rotation: a new version must be newer and signed by the current roots. */
static void test_keyring__successor(void **state)
{
	art_keyring *v1 = signed_keyring(1), *v2 = NULL, *v3 = NULL, *forged = NULL;
	const art_key *old_root[1] = {fx.c}, *new_root[1] = {fx.a}, *both[2] = {fx.c, fx.a};

	(void)state;
	/* v2 rotates the root from c to a. */
	assert_int_equal(art_keyring_new(&v2), 0);
	assert_int_equal(art_keyring_add(v2, fx.b, ART_ROLE_BUILDER, T_2026, 0), 0);
	assert_int_equal(art_keyring_add(v2, fx.a, ART_ROLE_ROOT, 0, 0), 0);
	/* Signed by the new root only: valid on its own, not as v1's successor. */
	assert_int_equal(art_keyring_sign(v2, 2, FAR_FUTURE, new_root, 1), 0);
	assert_int_equal(art_keyring_check(v2, "v2", T_2026), 0);
	assert_int_equal(art_keyring_check_successor(v1, v2, "v2", T_2026), AF_ESIGNATURE);
	assert_non_null(strstr(art_error_last(), "root key of version 1"));
	/* Signed by the old root only: not valid on its own (a is its root). */
	assert_int_equal(art_keyring_sign(v2, 2, FAR_FUTURE, old_root, 1), 0);
	assert_int_equal(art_keyring_check_successor(v1, v2, "v2", T_2026), AF_ESIGNATURE);
	/* Both: accepted. */
	assert_int_equal(art_keyring_sign(v2, 2, FAR_FUTURE, both, 2), 0);
	assert_int_equal(art_keyring_check_successor(v1, v2, "v2", T_2026), 0);
	/* v3 needs a, not c any more. */
	assert_int_equal(art_keyring_new(&v3), 0);
	assert_int_equal(art_keyring_add(v3, fx.a, ART_ROLE_ROOT, 0, 0), 0);
	assert_int_equal(art_keyring_sign(v3, 3, FAR_FUTURE, old_root, 1), 0);
	assert_int_equal(art_keyring_check_successor(v2, v3, "v3", T_2026), AF_ESIGNATURE);
	assert_int_equal(art_keyring_sign(v3, 3, FAR_FUTURE, new_root, 1), 0);
	assert_int_equal(art_keyring_check_successor(v2, v3, "v3", T_2026), 0);
	/* Older or equal versions never replace the one in force (replay). */
	assert_int_equal(art_keyring_check_successor(v3, v2, "v2", T_2026), AF_EVERSION);
	assert_int_equal(art_keyring_check_successor(v2, v2, "v2", T_2026), AF_EVERSION);
	assert_int_equal(art_keyring_check_successor(v3, v1, "v1", T_2026), AF_EVERSION);
	/* An unsigned keyring never replaces a signed one. */
	forged = sample_keyring();
	assert_int_equal(art_keyring_check_successor(v3, forged, "x", T_2026), AF_ESIGNATURE);
	art_keyring_free(forged);
	art_keyring_free(v1);
	art_keyring_free(v2);
	art_keyring_free(v3);
}

static void test_keyring__private_key_is_never_stored(void **state)
{
	art_keyring *kr = NULL;
	const art_key *key = NULL;
	char *text = NULL;

	(void)state;
	assert_true(art_key_is_private(fx.c));
	assert_int_equal(art_keyring_new(&kr), 0);
	assert_int_equal(art_keyring_add(kr, fx.c, ART_ROLE_BUILDER, 0, 0), 0);
	assert_int_equal(art_keyring_lookup(&key, kr, art_key_id(fx.c), ART_ROLE_BUILDER, 1), 0);
	assert_false(art_key_is_private(key));
	assert_int_equal(art_keyring_to_json(&text, kr), 0);
	assert_null(strstr(text, "PRIVATE"));
	free(text);
	art_keyring_free(kr);
}

static void test_keyring__load_missing_and_too_big(void **state)
{
	art_keyring *kr = NULL;
	char *big;
	FILE *f;

	(void)state;
	assert_int_equal(art_keyring_load(&kr, tmp_path("none.json")), AF_ENOTFOUND);
	assert_non_null(strstr(art_error_last(), "none.json"));
	big = malloc(ART_KEYRING_MAX_BYTES + 1);
	memset(big, ' ', ART_KEYRING_MAX_BYTES + 1);
	f = fopen(tmp_path("big.json"), "wb");
	assert_non_null(f);
	fwrite(big, 1, ART_KEYRING_MAX_BYTES + 1, f);
	fclose(f);
	assert_int_equal(art_keyring_load(&kr, tmp_path("big.json")), AF_ETOOBIG);
	assert_non_null(strstr(art_error_last(), "big.json"));
	assert_int_equal(art_keyring_parse(&kr, big, ART_KEYRING_MAX_BYTES + 1, "ring.json"),
			 AF_ETOOBIG);
	assert_null(kr);
	free(big);
}

static void test_keyring__corrupt_json_refused(void **state)
{
	(void)state;
	expect_parse_text("", AF_ECORRUPT);
	expect_parse_text("{", AF_ECORRUPT);
	expect_parse_text("not json", AF_ECORRUPT);
	expect_parse_text("[]", AF_ECORRUPT);
	expect_parse_text("{}", AF_ECORRUPT);
	expect_parse_text("{\"format\":\"agentfactory-keyring/v1\"}", AF_ECORRUPT);
	expect_parse_text("{\"format\":\"agentfactory-keyring/v1\",\"keys\":{}}", AF_ECORRUPT);
	expect_parse_text("{\"format\":\"agentfactory-keyring/v1\",\"keys\":[1]}", AF_ECORRUPT);
	expect_parse_text("{\"format\":\"agentfactory-keyring/v1\",\"keys\":[],\"revoked\":3}",
			  AF_ECORRUPT);
	expect_parse_text("{\"format\":\"agentfactory-keyring/v1\",\"keys\":[],\"keys\":[]}",
			  AF_ECORRUPT);
	expect_parse_text("{\"format\":\"agentfactory-keyring/v2\",\"keys\":[]}", AF_EVERSION);
	expect_parse_text("{\"format\":\"something-else\",\"keys\":[]}", AF_ECORRUPT);
	expect_parse_text("{\"format\":\"agentfactory-keyring/v1\",\"keys\":[],\"extra\":1}",
			  AF_ECORRUPT);
}

static void test_keyring__truncated_files_refused(void **state)
{
	json_t *root = sample_json();
	char *text = json_dumps(root, JSON_INDENT(2));
	art_keyring *kr = NULL;
	size_t len = strlen(text), cut;

	(void)state;
	assert_int_equal(art_keyring_parse(&kr, text, len, "ring.json"), 0);
	art_keyring_free(kr);
	for (cut = 0; cut < len; cut += 7) {
		kr = NULL;
		assert_int_equal(art_keyring_parse(&kr, text, cut, "ring.json"), AF_ECORRUPT);
		assert_null(kr);
	}
	free(text);
	json_decref(root);
}

static void test_keyring__bad_entries_refused(void **state)
{
	json_t *root, *k;
	char *pem = NULL, *other_id;

	(void)state;
	root = sample_json();
	json_object_set_new(first_key(root), "role", json_string("admin"));
	expect_parse(root, AF_ECORRUPT, "keys[0]");

	root = sample_json();
	json_object_set_new(first_key(root), "role", json_string("admin"));
	expect_parse(root, AF_ECORRUPT, "unknown role 'admin'");

	root = sample_json();
	json_object_del(first_key(root), "role");
	expect_parse(root, AF_ECORRUPT, "missing field 'role'");

	root = sample_json();
	json_object_set_new(first_key(root), "role", json_integer(1));
	expect_parse(root, AF_ECORRUPT, "must be a string");

	root = sample_json();
	json_object_set_new(first_key(root), "algorithm", json_string("rsa-pkcs1-sha1"));
	expect_parse(root, AF_ECORRUPT, "unsupported algorithm");

	root = sample_json();
	json_object_set_new(first_key(root), "comment", json_string("hi"));
	expect_parse(root, AF_ECORRUPT, "unknown field 'comment'");

	/* id / public key mismatch: a's entry carrying c's public key. */
	root = sample_json();
	assert_int_equal(art_key_public_pem(&pem, fx.c), 0);
	json_object_set_new(first_key(root), "public_key", json_string(pem));
	expect_parse(root, AF_ECORRUPT, "does not match its public_key");
	free(pem);

	/* ... and the id swapped instead. */
	root = sample_json();
	other_id = strdup(art_key_id(fx.c));
	json_object_set_new(first_key(root), "id", json_string(other_id));
	expect_parse(root, AF_ECORRUPT, "does not match");
	free(other_id);

	root = sample_json();
	json_object_set_new(first_key(root), "id", json_string("ABCDEF"));
	expect_parse(root, AF_ECORRUPT, "64 lower-case hex");

	root = sample_json();
	json_object_set_new(first_key(root), "public_key", json_string("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"));
	expect_parse(root, AF_ECORRUPT, "public_key");

	/* Duplicate (id, role) entry. */
	root = sample_json();
	k = json_deep_copy(first_key(root));
	json_array_append_new(json_object_get(root, "keys"), k);
	expect_parse(root, AF_ECORRUPT, "duplicate entry");

	root = sample_json();
	json_object_set_new(first_key(root), "not_after",
			    json_string("2025-01-01T00:00:00Z"));
	expect_parse(root, AF_ECORRUPT, "not later than not_before");

	/* Duplicate revocation. */
	root = sample_json();
	json_array_append_new(json_object_get(root, "revoked"),
			      json_deep_copy(json_array_get(json_object_get(root, "revoked"), 0)));
	expect_parse(root, AF_ECORRUPT, "revoked twice");

	root = sample_json();
	json_object_set_new(json_array_get(json_object_get(root, "revoked"), 0), "id",
			    json_string("123"));
	expect_parse(root, AF_ECORRUPT, "revoked[0]");
}

static void test_keyring__malformed_times_refused(void **state)
{
	static const char *const bad[] = {
		"now", "+24h", "2026-01-01", "2026-13-01T00:00:00Z", "2026-02-31T00:00:00Z",
		"2026-01-01T00:00:00", "2026-01-01T00:00:00+01:00", "2026-01-01 00:00:00Z",
		"2026-01-01T25:00:00Z", "", "tomorrow",
	};
	json_t *root;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		root = sample_json();
		json_object_set_new(first_key(root), "not_before", json_string(bad[i]));
		expect_parse(root, AF_ECORRUPT, "not an RFC 3339 UTC time");
		root = sample_json();
		json_object_set_new(json_array_get(json_object_get(root, "revoked"), 0), "at",
				    json_string(bad[i]));
		expect_parse(root, AF_ECORRUPT, "revoked[0]");
	}
	root = sample_json();
	json_object_set_new(first_key(root), "not_after", json_integer(1767225600));
	expect_parse(root, AF_ECORRUPT, "not_after");
}

static void test_keyring__foreign_or_weak_keys_refused(void **state)
{
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *pkey = NULL;
	unsigned char *der = NULL;
	uint8_t md[32];
	char id[65], *pem;
	BIO *bio;
	BUF_MEM *mem;
	json_t *root;
	int der_len, i;
	static const char *const types[] = {"ED25519", "RSA"};

	(void)state;
	for (i = 0; i < 2; i++) {
		ctx = EVP_PKEY_CTX_new_from_name(NULL, types[i], NULL);
		assert_true(EVP_PKEY_keygen_init(ctx) > 0);
		if (i == 1)
			assert_true(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 1024) > 0);
		assert_true(EVP_PKEY_generate(ctx, &pkey) > 0);
		EVP_PKEY_CTX_free(ctx);
		bio = BIO_new(BIO_s_mem());
		assert_int_equal(PEM_write_bio_PUBKEY(bio, pkey), 1);
		BIO_get_mem_ptr(bio, &mem);
		pem = strndup(mem->data, mem->length);
		der_len = i2d_PUBKEY(pkey, &der);
		art_sha256(der, (size_t)der_len, md);
		art_hex(id, md, 32);
		/* A correctly computed id, so only the key itself is wrong. */
		root = sample_json();
		json_object_set_new(first_key(root), "id", json_string(id));
		json_object_set_new(first_key(root), "public_key", json_string(pem));
		expect_parse(root, AF_ECORRUPT, i == 0 ? "only RSA" : "1024 bits");
		OPENSSL_free(der);
		der = NULL;
		free(pem);
		BIO_free(bio);
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keyring__save_load_round_trip),
		cmocka_unit_test(test_keyring__empty_keyring_round_trip),
		cmocka_unit_test(test_keyring__add_refusals),
		cmocka_unit_test(test_keyring__roles),
		cmocka_unit_test(test_keyring__lookup),
		cmocka_unit_test(test_keyring__revoke),
		cmocka_unit_test(test_keyring__private_key_is_never_stored),
		cmocka_unit_test(test_keyring__load_missing_and_too_big),
		cmocka_unit_test(test_keyring__corrupt_json_refused),
		cmocka_unit_test(test_keyring__truncated_files_refused),
		cmocka_unit_test(test_keyring__bad_entries_refused),
		cmocka_unit_test(test_keyring__malformed_times_refused),
		cmocka_unit_test(test_keyring__foreign_or_weak_keys_refused),
		cmocka_unit_test(test_keyring__signed_round_trip),
		cmocka_unit_test(test_keyring__hand_edits_refused),
		cmocka_unit_test(test_keyring__root_threshold),
		cmocka_unit_test(test_keyring__expiry),
		cmocka_unit_test(test_keyring__successor),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
