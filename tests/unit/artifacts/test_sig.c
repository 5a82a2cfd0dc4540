/*
 * test_sig.c - DSSE signatures over template statements: the good path, and
 * the attacks (tampered content, envelope, payload or signature; mix-and-
 * match across templates and versions; payload type confusion; keys of the
 * wrong role, outside their window, revoked or unknown; garbage envelopes).
 *
 * Three RSA keys are generated once (group setup): `signer` is trusted as
 * template-signer in 2026, `builder` only as builder, `stranger` nowhere.
 * Time is passed explicitly (`now`), never read from the clock.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "art/error.h"
#include "art/keyring.h"
#include "art/keys.h"
#include "art/sig.h"
#include "art/util.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T_2026 ((time_t)1767225600) /* 2026-01-01T00:00:00Z */
#define DAY ((time_t)86400)
#define NOW (T_2026 + 30 * DAY)
#define TYPE ART_SIG_TYPE_TEMPLATE
#define ROLE ART_ROLE_TEMPLATE_SIGNER

static const char content_a[] =
	"kind: AgentTemplate\nname: alpha\nversion: 1.0.0\nrole: Reviewer\n";
static const char content_a11[] =
	"kind: AgentTemplate\nname: alpha\nversion: 1.1.0\nrole: Reviewer\n";
static const char content_b[] =
	"kind: AgentTemplate\nname: beta\nversion: 1.0.0\nrole: Reviewer\n";

typedef struct fixture {
	art_key *signer, *builder, *stranger;
	art_keyring *kr;
	char *env_a; /* alpha@1.0.0 signed by signer */
} fixture;

static fixture fx;

static int group_setup(void **state)
{
	(void)state;
	setenv("AF_NOW", "2026-01-15T12:00:00Z", 1); /* fixes signed_at */
	if (art_key_generate(&fx.signer, 2048) < 0 || art_key_generate(&fx.builder, 2048) < 0 ||
	    art_key_generate(&fx.stranger, 2048) < 0 || art_keyring_new(&fx.kr) < 0 ||
	    art_keyring_add(fx.kr, fx.signer, ROLE, T_2026, T_2026 + 365 * DAY) < 0 ||
	    art_keyring_add(fx.kr, fx.builder, ART_ROLE_BUILDER, T_2026, 0) < 0 ||
	    art_sig_sign(&fx.env_a, fx.signer, TYPE, "alpha", "1.0.0", content_a,
			 strlen(content_a)) < 0)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	art_key_free(fx.signer);
	art_key_free(fx.builder);
	art_key_free(fx.stranger);
	art_keyring_free(fx.kr);
	free(fx.env_a);
	return 0;
}

static int verify_with(const art_keyring *kr, const char *role, const char *name,
		       const char *version, const char *content, const char *env, time_t now)
{
	return art_sig_verify(NULL, kr, role, TYPE, name, version, content, strlen(content), env,
			      strlen(env), now);
}

static int verify_a(const char *env)
{
	return verify_with(fx.kr, ROLE, "alpha", "1.0.0", content_a, env, NOW);
}

static void expect_message(const char *needle)
{
	if (!strstr(art_error_last(), needle))
		fail_msg("message '%s' lacks '%s'", art_error_last(), needle);
}

/* Decode the envelope, let edit() change it, re-encode. Caller frees. */
static char *edit_envelope(const char *env, void (*edit)(json_t *root))
{
	json_error_t jerr;
	json_t *root = json_loads(env, 0, &jerr);
	char *out;

	assert_non_null(root);
	edit(root);
	out = json_dumps(root, JSON_COMPACT);
	assert_non_null(out);
	json_decref(root);
	return out;
}

/* Replace a base64 string field (in obj) after flipping one decoded byte. */
static void flip_b64_field(json_t *obj, const char *field, size_t at)
{
	uint8_t *raw = NULL;
	size_t len = 0;
	char *b64 = NULL;

	assert_int_equal(art_base64_decode(&raw, &len, json_string_value(json_object_get(obj, field))), 0);
	assert_true(at < len);
	raw[at] ^= 0x01;
	assert_int_equal(art_base64_encode(&b64, raw, len), 0);
	json_object_set_new(obj, field, json_string(b64));
	free(raw);
	free(b64);
}

static json_t *first_sig(json_t *root)
{
	return json_array_get(json_object_get(root, "signatures"), 0);
}

static void test_sig__pae_matches_dsse_spec(void **state)
{
	static const char want[] = "DSSEv1 29 http://example.com/HelloWorld 11 hello world";
	uint8_t *pae = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(art_sig_pae(&pae, &len, "http://example.com/HelloWorld", "hello world",
				     11), 0);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(pae, want, len);
	free(pae);
	assert_int_equal(art_sig_pae(&pae, &len, "t", "", 0), 0);
	assert_int_equal(len, strlen("DSSEv1 1 t 0 "));
	assert_memory_equal(pae, "DSSEv1 1 t 0 ", len);
	free(pae);
}

static void test_sig__predicate_type_derivation(void **state)
{
	char *p = NULL;

	(void)state;
	assert_int_equal(art_sig_predicate_type(&p, TYPE), 0);
	assert_string_equal(p, "https://agentfactory.dev/template/v1");
	free(p);
	assert_int_equal(art_sig_predicate_type(&p, "application/vnd.agentfactory.release-set.v12+json"), 0);
	assert_string_equal(p, "https://agentfactory.dev/release-set/v12");
	free(p);
	assert_int_equal(art_sig_predicate_type(&p, "application/json"), AF_EINVAL);
	assert_int_equal(art_sig_predicate_type(&p, "application/vnd.agentfactory.template+json"), AF_EINVAL);
	assert_int_equal(art_sig_predicate_type(&p, "application/vnd.agentfactory..v1+json"), AF_EINVAL);
	assert_int_equal(art_sig_predicate_type(&p, "application/vnd.agentfactory.Tpl.v1+json"), AF_EINVAL);
	assert_int_equal(art_sig_predicate_type(&p, "application/vnd.agentfactory.tpl.v+json"), AF_EINVAL);
	assert_int_equal(art_sig_predicate_type(&p, "application/vnd.agentfactory.tpl.v1x+json"), AF_EINVAL);
	assert_int_equal(art_sig_predicate_type(&p, "application/vnd.agentfactory.a/b.v1+json"), AF_EINVAL);
	assert_int_equal(art_sig_predicate_type(&p, NULL), AF_EINVAL);
	assert_null(p);
}

static void test_sig__valid_signature_verifies(void **state)
{
	art_sig_info info;

	(void)state;
	memset(&info, 0xff, sizeof(info));
	assert_int_equal(art_sig_verify(&info, fx.kr, ROLE, TYPE, "alpha", "1.0.0", content_a,
					strlen(content_a), fx.env_a, strlen(fx.env_a), NOW), 0);
	assert_string_equal(info.keyid, art_key_id(fx.signer));
	assert_string_equal(info.role, ROLE);
	assert_int_equal(info.signed_at, T_2026 + 14 * DAY + 12 * 3600);
}

static void test_sig__envelope_and_statement_format(void **state)
{
	json_error_t jerr;
	json_t *env, *st;
	uint8_t *payload = NULL;
	size_t len = 0;
	char digest[65];

	(void)state;
	env = json_loads(fx.env_a, JSON_REJECT_DUPLICATES, &jerr);
	assert_non_null(env);
	assert_int_equal(json_object_size(env), 3);
	assert_string_equal(json_string_value(json_object_get(env, "payloadType")), TYPE);
	assert_int_equal(json_array_size(json_object_get(env, "signatures")), 1);
	assert_string_equal(json_string_value(json_object_get(first_sig(env), "keyid")),
			    art_key_id(fx.signer));
	assert_int_equal(art_base64_decode(&payload, &len,
					   json_string_value(json_object_get(env, "payload"))), 0);
	st = json_loadb((const char *)payload, len, 0, &jerr);
	assert_non_null(st);
	assert_string_equal(json_string_value(json_object_get(st, "_type")),
			    "https://in-toto.io/Statement/v1");
	assert_string_equal(json_string_value(json_object_get(st, "predicateType")),
			    "https://agentfactory.dev/template/v1");
	art_sha256_hex(content_a, strlen(content_a), digest);
	assert_string_equal(json_string_value(json_object_get(json_object_get(
		json_array_get(json_object_get(st, "subject"), 0), "digest"), "sha256")), digest);
	assert_string_equal(json_string_value(json_object_get(
		json_array_get(json_object_get(st, "subject"), 0), "name")), "alpha");
	assert_string_equal(json_string_value(json_object_get(json_object_get(st, "predicate"),
							      "name")), "alpha");
	assert_string_equal(json_string_value(json_object_get(json_object_get(st, "predicate"),
							      "version")), "1.0.0");
	assert_string_equal(json_string_value(json_object_get(json_object_get(st, "predicate"),
							      "signed_at")), "2026-01-15T12:00:00Z");
	json_decref(st);
	json_decref(env);
	free(payload);
}

/* Check the signature with plain OpenSSL over a PAE built by hand: the format is the spec's. */
static void test_sig__interoperable_with_plain_openssl(void **state)
{
	json_error_t jerr;
	json_t *env;
	uint8_t *payload = NULL, *sig = NULL;
	size_t len = 0, sig_len = 0;
	char *pem = NULL, *pae = NULL;
	EVP_PKEY *pkey;
	EVP_PKEY_CTX *pctx = NULL;
	EVP_MD_CTX *ctx;
	BIO *bio;
	int pae_len;

	(void)state;
	env = json_loads(fx.env_a, 0, &jerr);
	assert_int_equal(art_base64_decode(&payload, &len,
					   json_string_value(json_object_get(env, "payload"))), 0);
	assert_int_equal(art_base64_decode(&sig, &sig_len,
					   json_string_value(json_object_get(first_sig(env), "sig"))), 0);
	pae_len = asprintf(&pae, "DSSEv1 %zu %s %zu %.*s", strlen(TYPE), TYPE, len, (int)len,
			   (const char *)payload);
	assert_true(pae_len > 0);
	assert_int_equal(art_key_public_pem(&pem, fx.signer), 0);
	bio = BIO_new_mem_buf(pem, -1);
	pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	assert_non_null(pkey);
	ctx = EVP_MD_CTX_new();
	assert_true(EVP_DigestVerifyInit(ctx, &pctx, EVP_sha256(), NULL, pkey) > 0);
	assert_true(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0);
	assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) > 0);
	assert_int_equal(EVP_DigestVerify(ctx, sig, sig_len, (uint8_t *)pae, (size_t)pae_len), 1);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	free(pem);
	free(pae);
	free(payload);
	free(sig);
	json_decref(env);
}

static void test_sig__changed_content_rejected(void **state)
{
	char *changed = strdup(content_a);

	(void)state;
	changed[strlen(changed) - 3] ^= 0x01; /* "Reviewer" -> "Reviewdr" */
	assert_int_equal(verify_with(fx.kr, ROLE, "alpha", "1.0.0", changed, fx.env_a, NOW),
			 AF_ESIGNATURE);
	expect_message("content digest mismatch: file changed after signing");
	expect_message("agentfactory sign --key");
	/* Appending a byte, or presenting nothing. */
	assert_int_equal(verify_with(fx.kr, ROLE, "alpha", "1.0.0",
				     "kind: AgentTemplate\nname: alpha\nversion: 1.0.0\nrole: Reviewer\n\n",
				     fx.env_a, NOW), AF_ESIGNATURE);
	assert_int_equal(verify_with(fx.kr, ROLE, "alpha", "1.0.0", "", fx.env_a, NOW),
			 AF_ESIGNATURE);
	free(changed);
}

static void flip_sig(json_t *root)
{
	flip_b64_field(first_sig(root), "sig", 17);
}

static void flip_payload(json_t *root)
{
	flip_b64_field(root, "payload", 40);
}

static void test_sig__tampered_signature_or_payload_rejected(void **state)
{
	char *env;

	(void)state;
	env = edit_envelope(fx.env_a, flip_sig);
	assert_int_equal(verify_a(env), AF_ESIGNATURE);
	expect_message("does not verify");
	free(env);
	env = edit_envelope(fx.env_a, flip_payload);
	assert_int_equal(verify_a(env), AF_ESIGNATURE);
	free(env);
}

/* Every single-bit change anywhere in the envelope text must be refused. */
static void test_sig__every_flipped_bit_rejected(void **state)
{
	size_t len = strlen(fx.env_a), i;
	char *env = strdup(fx.env_a);
	int bit, rc;

	(void)state;
	for (i = 0; i < len; i++) {
		for (bit = 0; bit < 8; bit += 3) {
			env[i] ^= (char)(1 << bit);
			rc = art_sig_verify(NULL, fx.kr, ROLE, TYPE, "alpha", "1.0.0", content_a,
					    strlen(content_a), env, len, NOW);
			if (rc == 0 && env[i] != fx.env_a[i] &&
			    !(strchr(" \n\t\r", fx.env_a[i]) && strchr(" \n\t\r", env[i])))
				fail_msg("flipping bit %d of byte %zu ('%c') still verifies", bit, i,
					 fx.env_a[i]);
			env[i] = fx.env_a[i];
		}
	}
	free(env);
}

static void test_sig__mix_and_match_across_templates_rejected(void **state)
{
	char *env_b = NULL;

	(void)state;
	/* alpha's envelope presented for beta (beta's own content). */
	assert_int_equal(verify_with(fx.kr, ROLE, "beta", "1.0.0", content_b, fx.env_a, NOW),
			 AF_ESIGNATURE);
	expect_message("signed for template 'alpha', not 'beta'");
	/* Even with alpha's bytes, it is not beta's signature. */
	assert_int_equal(verify_with(fx.kr, ROLE, "beta", "1.0.0", content_a, fx.env_a, NOW),
			 AF_ESIGNATURE);
	/* And beta's envelope for alpha. */
	assert_int_equal(art_sig_sign(&env_b, fx.signer, TYPE, "beta", "1.0.0", content_b,
				      strlen(content_b)), 0);
	assert_int_equal(verify_with(fx.kr, ROLE, "beta", "1.0.0", content_b, env_b, NOW), 0);
	assert_int_equal(verify_a(env_b), AF_ESIGNATURE);
	expect_message("signed for template 'beta', not 'alpha'");
	free(env_b);
}

static void test_sig__other_version_rejected(void **state)
{
	(void)state;
	assert_int_equal(verify_with(fx.kr, ROLE, "alpha", "1.1.0", content_a11, fx.env_a, NOW),
			 AF_ESIGNATURE);
	expect_message("signature is for version 1.0.0, file is version 1.1.0");
}

static void test_sig__wrong_payload_type_rejected(void **state)
{
	static const char manifest_type[] = "application/vnd.agentfactory.manifest.v1+json";
	char *env = NULL;

	(void)state;
	assert_int_equal(art_sig_sign(&env, fx.signer, manifest_type, "alpha", "1.0.0", content_a,
				      strlen(content_a)), 0);
	assert_int_equal(verify_a(env), AF_ESIGNATURE);
	expect_message("payload type mismatch");
	/* It does verify as what it is. */
	assert_int_equal(art_sig_verify(NULL, fx.kr, ROLE, manifest_type, "alpha", "1.0.0",
					content_a, strlen(content_a), env, strlen(env), NOW), 0);
	free(env);
	assert_int_equal(art_sig_sign(&env, fx.signer, "text/plain", "alpha", "1.0.0", content_a,
				      strlen(content_a)), AF_EINVAL);
	assert_null(env);
}

static void escape_type(json_t *root)
{
	json_object_set_new(root, "payloadType", json_string("\x1b[2Jevil\ntype"));
}

static void test_sig__hostile_text_is_not_echoed_raw(void **state)
{
	char *env = edit_envelope(fx.env_a, escape_type);

	(void)state;
	assert_int_equal(verify_a(env), AF_ESIGNATURE);
	expect_message("payload type mismatch");
	assert_null(strchr(art_error_last(), '\x1b'));
	assert_null(strchr(art_error_last(), '\n'));
	expect_message("?[2Jevil?type");
	free(env);
}

static void test_sig__wrong_role_denied(void **state)
{
	char *env = NULL;

	(void)state;
	assert_int_equal(art_sig_sign(&env, fx.builder, TYPE, "alpha", "1.0.0", content_a,
				      strlen(content_a)), 0);
	assert_int_equal(verify_a(env), AF_EDENIED);
	expect_message("trusted as builder, not as template-signer");
	expect_message("re-sign with a template-signer key");
	/* The signer's own envelope, verified for another role. */
	assert_int_equal(verify_with(fx.kr, ART_ROLE_RELEASE_MANAGER, "alpha", "1.0.0", content_a,
				     fx.env_a, NOW), AF_EDENIED);
	free(env);
}

static void test_sig__outside_validity_window(void **state)
{
	(void)state;
	assert_int_equal(verify_with(fx.kr, ROLE, "alpha", "1.0.0", content_a, fx.env_a,
				     T_2026 + 366 * DAY), AF_EEXPIRED);
	expect_message("expired at 2027-01-01T00:00:00Z");
	assert_int_equal(verify_with(fx.kr, ROLE, "alpha", "1.0.0", content_a, fx.env_a,
				     T_2026 - DAY), AF_EEXPIRED);
	expect_message("not valid before 2026-01-01T00:00:00Z");
}

static void test_sig__revoked_key_rejected(void **state)
{
	art_keyring *kr = NULL;

	(void)state;
	assert_int_equal(art_keyring_new(&kr), 0);
	assert_int_equal(art_keyring_add(kr, fx.signer, ROLE, T_2026, 0), 0);
	assert_int_equal(verify_with(kr, ROLE, "alpha", "1.0.0", content_a, fx.env_a, NOW), 0);
	/* Revoked "later" still kills it: signing times are the signer's claim. */
	assert_int_equal(art_keyring_revoke(kr, art_key_id(fx.signer), NOW + 10 * DAY,
					    "compromised"), 0);
	assert_int_equal(verify_with(kr, ROLE, "alpha", "1.0.0", content_a, fx.env_a, NOW),
			 AF_EREVOKED);
	expect_message("compromised");
	art_keyring_free(kr);
}

static void test_sig__unknown_key_rejected(void **state)
{
	art_keyring *empty = NULL;
	char *env = NULL;

	(void)state;
	assert_int_equal(art_sig_sign(&env, fx.stranger, TYPE, "alpha", "1.0.0", content_a,
				      strlen(content_a)), 0);
	assert_int_equal(verify_a(env), AF_ENOTFOUND);
	expect_message(art_key_id(fx.stranger));
	assert_int_equal(art_keyring_new(&empty), 0);
	assert_int_equal(verify_with(empty, ROLE, "alpha", "1.0.0", content_a, fx.env_a, NOW),
			 AF_ENOTFOUND);
	art_keyring_free(empty);
	free(env);
}

/* Build an envelope over one payload with signatures by several keys. */
static char *multi_envelope(const char *payload_of, art_key *const *keys, size_t n)
{
	json_error_t jerr;
	json_t *base = json_loads(payload_of, 0, &jerr), *other, *sigs = json_array();
	uint8_t *payload = NULL;
	size_t len = 0, i;
	char *env = NULL, *out;

	assert_int_equal(art_base64_decode(&payload, &len,
					   json_string_value(json_object_get(base, "payload"))), 0);
	for (i = 0; i < n; i++) {
		assert_int_equal(art_sig_sign_payload(&env, keys[i], TYPE, payload, len), 0);
		other = json_loads(env, 0, &jerr);
		json_array_append(sigs, first_sig(other));
		json_decref(other);
		free(env);
	}
	json_object_set_new(base, "signatures", sigs);
	out = json_dumps(base, JSON_COMPACT);
	json_decref(base);
	free(payload);
	return out;
}

static void test_sig__multiple_signatures(void **state)
{
	art_key *unknown_then_good[] = {fx.stranger, fx.signer};
	art_key *unknown_then_role[] = {fx.stranger, fx.builder};
	art_sig_info info;
	char *env;

	(void)state;
	env = multi_envelope(fx.env_a, unknown_then_good, 2);
	assert_int_equal(art_sig_verify(&info, fx.kr, ROLE, TYPE, "alpha", "1.0.0", content_a,
					strlen(content_a), env, strlen(env), NOW), 0);
	assert_string_equal(info.keyid, art_key_id(fx.signer));
	free(env);
	/* None verifies: the most telling failure (wrong role) beats unknown key. */
	env = multi_envelope(fx.env_a, unknown_then_role, 2);
	assert_int_equal(verify_a(env), AF_EDENIED);
	free(env);
}

static char *sign_statement(const char *statement)
{
	char *env = NULL;

	assert_int_equal(art_sig_sign_payload(&env, fx.signer, TYPE, statement,
					      strlen(statement)), 0);
	return env;
}

static void test_sig__signed_but_wrong_statement_rejected(void **state)
{
	char digest[65], st[1024], *env;

	(void)state;
	art_sha256_hex(content_a, strlen(content_a), digest);
	/* Control: a hand-made statement verifies. */
	snprintf(st, sizeof(st),
		 "{\"_type\":\"https://in-toto.io/Statement/v1\",\"subject\":[{\"name\":\"alpha\","
		 "\"digest\":{\"sha256\":\"%s\"}}],\"predicateType\":"
		 "\"https://agentfactory.dev/template/v1\",\"predicate\":{\"name\":\"alpha\","
		 "\"version\":\"1.0.0\"}}", digest);
	env = sign_statement(st);
	assert_int_equal(verify_a(env), 0);
	free(env);

	/* A manifest statement smuggled under the template payload type. */
	snprintf(st, sizeof(st),
		 "{\"_type\":\"https://in-toto.io/Statement/v1\",\"subject\":[{\"name\":\"alpha\","
		 "\"digest\":{\"sha256\":\"%s\"}}],\"predicateType\":"
		 "\"https://agentfactory.dev/manifest/v1\",\"predicate\":{\"name\":\"alpha\","
		 "\"version\":\"1.0.0\"}}", digest);
	env = sign_statement(st);
	assert_int_equal(verify_a(env), AF_ESIGNATURE);
	free(env);

	snprintf(st, sizeof(st),
		 "{\"_type\":\"https://in-toto.io/Statement/v0.1\",\"subject\":[{\"name\":\"alpha\","
		 "\"digest\":{\"sha256\":\"%s\"}}],\"predicateType\":"
		 "\"https://agentfactory.dev/template/v1\",\"predicate\":{\"name\":\"alpha\","
		 "\"version\":\"1.0.0\"}}", digest);
	env = sign_statement(st);
	assert_int_equal(verify_a(env), AF_ESIGNATURE);
	free(env);

	/* Subject and predicate disagree on the name. */
	snprintf(st, sizeof(st),
		 "{\"_type\":\"https://in-toto.io/Statement/v1\",\"subject\":[{\"name\":\"beta\","
		 "\"digest\":{\"sha256\":\"%s\"}}],\"predicateType\":"
		 "\"https://agentfactory.dev/template/v1\",\"predicate\":{\"name\":\"alpha\","
		 "\"version\":\"1.0.0\"}}", digest);
	env = sign_statement(st);
	assert_int_equal(verify_a(env), AF_ESIGNATURE);
	free(env);

	/* Two subjects. */
	snprintf(st, sizeof(st),
		 "{\"_type\":\"https://in-toto.io/Statement/v1\",\"subject\":[{\"name\":\"alpha\","
		 "\"digest\":{\"sha256\":\"%s\"}},{\"name\":\"beta\",\"digest\":{}}],"
		 "\"predicateType\":\"https://agentfactory.dev/template/v1\",\"predicate\":"
		 "{\"name\":\"alpha\",\"version\":\"1.0.0\"}}", digest);
	env = sign_statement(st);
	assert_int_equal(verify_a(env), AF_ECORRUPT);
	free(env);

	/* Signed garbage, and a duplicate key inside the statement. */
	env = sign_statement("not a statement");
	assert_int_equal(verify_a(env), AF_ECORRUPT);
	expect_message("signed statement is malformed");
	free(env);
	snprintf(st, sizeof(st),
		 "{\"_type\":\"https://in-toto.io/Statement/v1\",\"subject\":[{\"name\":\"alpha\","
		 "\"digest\":{\"sha256\":\"%s\"}}],\"predicateType\":"
		 "\"https://agentfactory.dev/template/v1\",\"predicate\":{\"name\":\"alpha\","
		 "\"version\":\"1.0.0\",\"version\":\"9.9.9\"}}", digest);
	env = sign_statement(st);
	assert_int_equal(verify_a(env), AF_ECORRUPT);
	free(env);
}

static void expect_corrupt(const char *env, size_t len)
{
	int rc = art_sig_verify(NULL, fx.kr, ROLE, TYPE, "alpha", "1.0.0", content_a,
				strlen(content_a), env, len, NOW);

	if (rc != AF_ECORRUPT)
		fail_msg("envelope '%.60s' (%zu bytes): rc %d (%s), want AF_ECORRUPT", env, len, rc,
			 art_error_last());
}

static void test_sig__garbage_envelopes_rejected(void **state)
{
	static const char *const bad[] = {
		"", "x", "null", "[]", "{}", "\"str\"", "{\"payloadType\":1}",
		"{\"payloadType\":\"a\",\"payload\":\"\",\"signatures\":[]}",
		"{\"payloadType\":\"a\",\"payload\":\"!!!!\",\"signatures\":[{}]}",
		"{\"payloadType\":\"a\",\"payload\":\"\",\"signatures\":[{\"keyid\":\"ab\",\"sig\":\"AAAA\"}]}",
		"{\"payloadType\":\"a\",\"payload\":\"\",\"signatures\":[1]}",
		"{\"payloadType\":\"a\",\"payload\":\"\",\"signatures\":{}}",
	};
	size_t i, len;
	char *big, *env;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_corrupt(bad[i], strlen(bad[i]));
	/* Every truncation of a good envelope. */
	len = strlen(fx.env_a);
	for (i = 0; i + 1 < len; i++)
		expect_corrupt(fx.env_a, i);
	/* A NUL byte inside. */
	env = strdup(fx.env_a);
	env[len / 2] = '\0';
	expect_corrupt(env, len);
	free(env);
	/* Oversized: a valid envelope padded with spaces past the cap. */
	big = malloc(ART_SIG_ENVELOPE_MAX + 2);
	memset(big, ' ', ART_SIG_ENVELOPE_MAX + 1);
	memcpy(big, fx.env_a, len);
	big[ART_SIG_ENVELOPE_MAX + 1] = '\0';
	expect_corrupt(big, ART_SIG_ENVELOPE_MAX + 1);
	expect_message("limit");
	/* ... while at the cap it is fine. */
	assert_int_equal(art_sig_verify(NULL, fx.kr, ROLE, TYPE, "alpha", "1.0.0", content_a,
					strlen(content_a), big, ART_SIG_ENVELOPE_MAX, NOW), 0);
	free(big);
}

static void extra_field(json_t *root)
{
	json_object_set_new(root, "comment", json_string("hi"));
}

static void extra_sig_field(json_t *root)
{
	json_object_set_new(first_sig(root), "cert", json_string("x"));
}

static void noncanonical_sig(json_t *root)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *s = json_string_value(json_object_get(first_sig(root), "sig"));
	char *copy = strdup(s);
	size_t n = strlen(copy);

	/* 256 bytes encode as "...X==": only the top 2 bits of X are used. Setting
	 * an unused bit gives another spelling of the same bytes. */
	assert_true(n >= 3 && copy[n - 1] == '=' && copy[n - 2] == '=');
	copy[n - 3] = alphabet[(strchr(alphabet, copy[n - 3]) - alphabet) | 1];
	json_object_set_new(first_sig(root), "sig", json_string(copy));
	free(copy);
}

static void seventeen_sigs(json_t *root)
{
	json_t *sigs = json_object_get(root, "signatures");
	int i;

	for (i = 0; i < 16; i++)
		json_array_append(sigs, json_array_get(sigs, 0));
}

static void bad_keyid(json_t *root)
{
	json_object_set_new(first_sig(root), "keyid", json_string("not-a-key-id"));
}

static void test_sig__strict_envelope_fields(void **state)
{
	char *env;

	(void)state;
	env = edit_envelope(fx.env_a, extra_field);
	expect_corrupt(env, strlen(env));
	free(env);
	env = edit_envelope(fx.env_a, extra_sig_field);
	expect_corrupt(env, strlen(env));
	free(env);
	env = edit_envelope(fx.env_a, seventeen_sigs);
	expect_corrupt(env, strlen(env));
	free(env);
	env = edit_envelope(fx.env_a, bad_keyid);
	expect_corrupt(env, strlen(env));
	free(env);
	env = edit_envelope(fx.env_a, noncanonical_sig);
	expect_corrupt(env, strlen(env));
	expect_message("canonical base64");
	free(env);
}

static void test_sig__sign_argument_checks(void **state)
{
	art_key *pub = NULL;
	char *env = NULL, long_name[ART_SIG_FIELD_MAX + 2];

	(void)state;
	assert_int_equal(art_key_public_copy(&pub, fx.signer), 0);
	assert_int_equal(art_sig_sign(&env, pub, TYPE, "alpha", "1.0.0", "x", 1), AF_EINVAL);
	assert_int_equal(art_sig_sign(&env, fx.signer, TYPE, "", "1.0.0", "x", 1), AF_EINVAL);
	assert_int_equal(art_sig_sign(&env, fx.signer, TYPE, "alpha", NULL, "x", 1), AF_EINVAL);
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	assert_int_equal(art_sig_sign(&env, fx.signer, TYPE, long_name, "1.0.0", "x", 1),
			 AF_EINVAL);
	assert_int_equal(art_sig_sign(&env, fx.signer, TYPE, "\xff", "1.0.0", "x", 1), AF_EINVAL);
	assert_null(env);
	art_key_free(pub);
}

static void test_sig__caller_mistakes_are_einval(void **state)
{
	size_t n = strlen(fx.env_a), cl = strlen(content_a);

	(void)state;
	/* A NULL or unknown role must never mean "any role". */
	assert_int_equal(art_sig_verify(NULL, fx.kr, NULL, TYPE, "alpha", "1.0.0", content_a, cl,
					fx.env_a, n, NOW), AF_EINVAL);
	assert_int_equal(art_sig_verify(NULL, fx.kr, "admin", TYPE, "alpha", "1.0.0", content_a, cl,
					fx.env_a, n, NOW), AF_EINVAL);
	assert_int_equal(art_sig_verify(NULL, NULL, ROLE, TYPE, "alpha", "1.0.0", content_a, cl,
					fx.env_a, n, NOW), AF_EINVAL);
	assert_int_equal(art_sig_verify(NULL, fx.kr, ROLE, TYPE, NULL, "1.0.0", content_a, cl,
					fx.env_a, n, NOW), AF_EINVAL);
	assert_int_equal(art_sig_verify(NULL, fx.kr, ROLE, TYPE, "alpha", NULL, content_a, cl,
					fx.env_a, n, NOW), AF_EINVAL);
	assert_int_equal(art_sig_verify(NULL, fx.kr, ROLE, "text/plain", "alpha", "1.0.0",
					content_a, cl, fx.env_a, n, NOW), AF_EINVAL);
	assert_int_equal(art_sig_verify(NULL, fx.kr, ROLE, TYPE, "alpha", "1.0.0", content_a, cl,
					NULL, 0, NOW), AF_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sig__pae_matches_dsse_spec),
		cmocka_unit_test(test_sig__predicate_type_derivation),
		cmocka_unit_test(test_sig__valid_signature_verifies),
		cmocka_unit_test(test_sig__envelope_and_statement_format),
		cmocka_unit_test(test_sig__interoperable_with_plain_openssl),
		cmocka_unit_test(test_sig__changed_content_rejected),
		cmocka_unit_test(test_sig__tampered_signature_or_payload_rejected),
		cmocka_unit_test(test_sig__every_flipped_bit_rejected),
		cmocka_unit_test(test_sig__mix_and_match_across_templates_rejected),
		cmocka_unit_test(test_sig__other_version_rejected),
		cmocka_unit_test(test_sig__wrong_payload_type_rejected),
		cmocka_unit_test(test_sig__hostile_text_is_not_echoed_raw),
		cmocka_unit_test(test_sig__wrong_role_denied),
		cmocka_unit_test(test_sig__outside_validity_window),
		cmocka_unit_test(test_sig__revoked_key_rejected),
		cmocka_unit_test(test_sig__unknown_key_rejected),
		cmocka_unit_test(test_sig__multiple_signatures),
		cmocka_unit_test(test_sig__signed_but_wrong_statement_rejected),
		cmocka_unit_test(test_sig__garbage_envelopes_rejected),
		cmocka_unit_test(test_sig__strict_envelope_fields),
		cmocka_unit_test(test_sig__sign_argument_checks),
		cmocka_unit_test(test_sig__caller_mistakes_are_einval),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
