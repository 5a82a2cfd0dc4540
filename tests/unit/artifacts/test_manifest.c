/*
 * test_manifest.c - build manifests: construction and validation, canonical
 * and reproducible bytes, SLSA provenance, the strict parser's refusals
 * (each naming its field), semver precedence, native parts by compatibility
 * id, and verification of signed (manifest, envelope) pairs.
 *
 * Two RSA keys are generated once: `builder` (trusted as builder) and
 * `signer` (trusted only as template-signer).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "art/error.h"
#include "art/keyring.h"
#include "art/keys.h"
#include "art/manifest.h"
#include "art/sig.h"
#include "art/util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T_2026 ((time_t)1767225600)
#define NOW (T_2026 + 86400)
#define COMPAT "x86_64-linux-gnu/wasm-rt-1.0.32/abi-1/cc-12"

static struct {
	art_key *builder, *signer;
	art_keyring *kr;
} fx;

static const char d_resolved[] = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
static const char d_policy[] = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
static const char commit[] = "0123456789abcdef0123456789abcdef01234567";

static int group_setup(void **state)
{
	(void)state;
	if (art_key_generate(&fx.builder, 2048) < 0 || art_key_generate(&fx.signer, 2048) < 0 ||
	    art_keyring_new(&fx.kr) < 0 ||
	    art_keyring_add(fx.kr, fx.builder, ART_ROLE_BUILDER, T_2026, 0) < 0 ||
	    art_keyring_add(fx.kr, fx.signer, ART_ROLE_TEMPLATE_SIGNER, T_2026, 0) < 0)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	art_key_free(fx.builder);
	art_key_free(fx.signer);
	art_keyring_free(fx.kr);
	return 0;
}

static void hex_of(char out[65], const char *s)
{
	art_sha256_hex(s, strlen(s), out);
}

/* A complete manifest; imports/capabilities in the order given by `reverse`. */
static art_manifest *make_manifest(const char *name, const char *version, int reverse)
{
	art_manifest_import imports[] = {
		{"af", "log", "func"}, {"af", "llm_chat", "func"},
		{"wasi_snapshot_preview1", "fd_write", "func"}};
	art_manifest_import rimports[] = {imports[2], imports[1], imports[0]};
	art_manifest_export exports[] = {{"memory", "memory"}, {"af_handle", "func"},
					 {"af_abi_version", "func"}};
	const char *caps[] = {"log", "llm_chat", "clock"};
	const char *rcaps[] = {"clock", "llm_chat", "log"};
	art_manifest_info info = {
		.name = name, .version = version, .resolved_template_digest = d_resolved,
		.git_commit = commit, .policy_digest = d_policy,
		.toolchain_id = "clang-19.1.7 wasi-libc-0.0~git20240411 wabt-1.0.32",
		.native_compat_id = COMPAT, .target_triple = "x86_64-linux-gnu",
		.guest_abi_version = 1, .imports = reverse ? rimports : imports, .n_imports = 3,
		.exports = exports, .n_exports = 3, .capabilities = reverse ? rcaps : caps,
		.n_capabilities = 3};
	art_provenance_info prov = {"https://git.example.com/agents.git", "main",
				    "https://agentfactory.dev/builder/v1"};
	char h[65], *p = NULL;
	size_t plen;
	art_manifest *m = NULL;

	assert_int_equal(art_manifest_new(&m, &info), 0);
	hex_of(h, "wasm bytes");
	assert_int_equal(art_manifest_add_part(m, ART_PART_WASM, ART_MEDIA_WASM, h, 10), 0);
	hex_of(h, "native bytes");
	assert_int_equal(art_manifest_add_native(m, COMPAT, h, 12), 0);
	hex_of(h, "source bytes");
	assert_int_equal(art_manifest_add_part(m, ART_PART_SOURCE, ART_MEDIA_SOURCE, h, 12), 0);
	assert_int_equal(art_manifest_provenance(&p, &plen, m, &prov), 0);
	art_sha256_hex(p, plen, h);
	assert_int_equal(art_manifest_add_part(m, ART_PART_PROVENANCE, ART_MEDIA_PROVENANCE, h,
					       plen), 0);
	free(p);
	return m;
}

static char *serialize(const art_manifest *m, size_t *len)
{
	char *out = NULL;

	assert_int_equal(art_manifest_serialize(&out, len, m), 0);
	return out;
}

static void test_manifest__canonical_round_trip(void **state)
{
	art_manifest *m = make_manifest("alpha", "1.2.0", 0), *back = NULL;
	size_t len, len2;
	char *bytes = serialize(m, &len), *again;

	(void)state;
	/* compact, sorted keys, no trailing newline */
	assert_null(strchr(bytes, '\n'));
	assert_null(strstr(bytes, ": "));
	assert_true(strncmp(bytes, "{\"capabilities\":[\"clock\",\"llm_chat\",\"log\"]", 41) == 0);
	assert_non_null(strstr(bytes, "\"format\":\"agentfactory-manifest/v1\""));
	assert_int_equal(art_manifest_parse(&back, bytes, len), 0);
	again = serialize(back, &len2);
	assert_int_equal(len, len2);
	assert_memory_equal(bytes, again, len);
	assert_string_equal(back->name, "alpha");
	assert_int_equal(back->n_parts, 4);
	assert_int_equal(back->guest_abi_version, 1);
	assert_string_equal(back->imports[0].name, "llm_chat"); /* sorted by (module, name) */
	assert_string_equal(back->exports[0].name, "af_abi_version");
	free(again);
	free(bytes);
	art_manifest_free(back);
	art_manifest_free(m);
}

static void test_manifest__reproducible_regardless_of_input_order(void **state)
{
	art_manifest *a = make_manifest("alpha", "1.2.0", 0), *b = make_manifest("alpha", "1.2.0", 1);
	size_t la, lb;
	char *x = serialize(a, &la), *y = serialize(b, &lb);
	char da[ART_DIGEST_STR_LEN + 1], db[ART_DIGEST_STR_LEN + 1];

	(void)state;
	assert_int_equal(la, lb);
	assert_memory_equal(x, y, la);
	art_manifest_digest(da, x, la);
	art_manifest_digest(db, y, lb);
	assert_string_equal(da, db);
	assert_true(strncmp(da, "sha256:", 7) == 0);
	free(x);
	free(y);
	art_manifest_free(a);
	art_manifest_free(b);
}

static void test_manifest__provenance_is_slsa_without_time(void **state)
{
	art_manifest *m = make_manifest("alpha", "1.2.0", 0);
	art_provenance_info prov = {"https://git.example.com/agents.git", "refs/heads/main",
				    "https://agentfactory.dev/builder/v1"};
	json_t *root, *deps, *subjects;
	char *p = NULL, *p2 = NULL;
	size_t len, len2, i;
	int found_commit = 0, found_policy = 0, found_template = 0, found_toolchain = 0;

	(void)state;
	assert_int_equal(art_manifest_provenance(&p, &len, m, &prov), 0);
	assert_int_equal(art_manifest_provenance(&p2, &len2, m, &prov), 0);
	assert_int_equal(len, len2);
	assert_memory_equal(p, p2, len); /* reproducible */
	assert_null(strstr(p, "startedOn"));
	assert_null(strstr(p, "finishedOn"));
	assert_null(strstr(p, "2026-"));
	root = json_loads(p, 0, NULL);
	assert_non_null(root);
	assert_string_equal(json_string_value(json_object_get(root, "_type")),
			    "https://in-toto.io/Statement/v1");
	assert_string_equal(json_string_value(json_object_get(root, "predicateType")),
			    "https://slsa.dev/provenance/v1");
	subjects = json_object_get(root, "subject");
	assert_int_equal(json_array_size(subjects), 3); /* native, source, wasm */
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(json_object_get(json_object_get(root, "predicate"),
								    "runDetails"), "builder"), "id")),
			    "https://agentfactory.dev/builder/v1");
	deps = json_object_get(json_object_get(json_object_get(root, "predicate"),
					       "buildDefinition"), "resolvedDependencies");
	for (i = 0; i < json_array_size(deps); i++) {
		json_t *dig = json_object_get(json_array_get(deps, i), "digest");
		const char *v;

		if ((v = json_string_value(json_object_get(dig, "gitCommit"))))
			found_commit = !strcmp(v, commit);
		if ((v = json_string_value(json_object_get(dig, "sha256")))) {
			found_policy |= !strcmp(v, d_policy + 7);
			found_template |= !strcmp(v, d_resolved + 7);
			found_toolchain |= !!json_object_get(json_array_get(deps, i), "annotations");
		}
	}
	assert_true(found_commit && found_policy && found_template && found_toolchain);
	assert_string_equal(json_string_value(json_object_get(json_object_get(
				    json_object_get(json_object_get(root, "predicate"), "buildDefinition"),
				    "externalParameters"), "ref")), "refs/heads/main");
	json_decref(root);
	free(p);
	free(p2);
	art_manifest_free(m);
}

/* Re-serialize bytes after an edit made by fn on the JSON tree. */
typedef void (*edit_fn)(json_t *root);

static int parse_edited(edit_fn fn, art_manifest **out)
{
	art_manifest *m = make_manifest("alpha", "1.2.0", 0);
	size_t len;
	char *bytes = serialize(m, &len), *edited;
	json_t *root = json_loads(bytes, 0, NULL);
	int rc;

	fn(root);
	edited = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
	*out = NULL;
	rc = art_manifest_parse(out, edited, strlen(edited));
	free(edited);
	json_decref(root);
	free(bytes);
	art_manifest_free(m);
	return rc;
}

static void edit_unknown(json_t *r) { json_object_set_new(r, "timestamp", json_string("x")); }
static void edit_missing(json_t *r) { json_object_del(r, "policy_digest"); }
static void edit_v2(json_t *r) { json_object_set_new(r, "format", json_string("agentfactory-manifest/v2")); }
static void edit_other_format(json_t *r) { json_object_set_new(r, "format", json_string("something/v1")); }
static void edit_size_type(json_t *r)
{
	json_object_set_new(json_object_get(json_object_get(r, "parts"), "wasm"), "size",
			    json_string("10"));
}
static void edit_no_wasm(json_t *r) { json_object_del(json_object_get(r, "parts"), "wasm"); }
static void edit_native_name(json_t *r)
{
	json_t *parts = json_object_get(r, "parts"), *v, *native = NULL;
	char old[64] = "";
	const char *k;

	json_object_foreach(parts, k, v) {
		if (!strncmp(k, "native/", 7)) {
			snprintf(old, sizeof(old), "%s", k);
			native = json_incref(v);
		}
	}
	json_object_del(parts, old);
	json_object_set_new(parts, "native/0000000000000000", native);
}
static void edit_unsorted(json_t *r)
{
	json_t *imports = json_object_get(r, "imports");
	json_t *first = json_incref(json_array_get(imports, 0));

	json_array_remove(imports, 0);
	json_array_append_new(imports, first);
}
static void edit_bad_digest(json_t *r) { json_object_set_new(r, "resolved_template_digest", json_string("sha256:XYZ")); }
static void edit_bad_name(json_t *r) { json_object_set_new(r, "name", json_string("../etc")); }
static void edit_bad_version(json_t *r) { json_object_set_new(r, "version", json_string("1.02.0")); }
static void edit_abi(json_t *r) { json_object_set_new(r, "guest_abi_version", json_real(1.5)); }
static void edit_part_field(json_t *r)
{
	json_object_set_new(json_object_get(json_object_get(r, "parts"), "wasm"), "url",
			    json_string("http://x"));
}
static void edit_media(json_t *r)
{
	json_object_set_new(json_object_get(json_object_get(r, "parts"), "wasm"), "media_type",
			    json_string("application/x-sharedlib"));
}

static void expect_refusal(edit_fn fn, int want_rc, const char *needle)
{
	art_manifest *m = NULL;

	assert_int_equal(parse_edited(fn, &m), want_rc);
	assert_null(m);
	if (!strstr(art_error_last(), needle))
		fail_msg("message '%s' does not mention '%s'", art_error_last(), needle);
}

static void test_manifest__strict_parse_refusals(void **state)
{
	(void)state;
	expect_refusal(edit_unknown, AF_ECORRUPT, "timestamp");
	expect_refusal(edit_missing, AF_ECORRUPT, "policy_digest");
	expect_refusal(edit_v2, AF_EVERSION, "agentfactory-manifest/v2");
	expect_refusal(edit_other_format, AF_ECORRUPT, "format");
	expect_refusal(edit_size_type, AF_ECORRUPT, "parts.wasm.size");
	expect_refusal(edit_no_wasm, AF_ECORRUPT, "parts.wasm");
	expect_refusal(edit_native_name, AF_ECORRUPT, "native/0000000000000000");
	expect_refusal(edit_unsorted, AF_ECORRUPT, "imports[");
	expect_refusal(edit_bad_digest, AF_ECORRUPT, "resolved_template_digest");
	expect_refusal(edit_bad_name, AF_ECORRUPT, "name");
	expect_refusal(edit_bad_version, AF_ECORRUPT, "version");
	expect_refusal(edit_abi, AF_ECORRUPT, "guest_abi_version");
	expect_refusal(edit_part_field, AF_ECORRUPT, "parts.wasm.url");
	expect_refusal(edit_media, AF_ECORRUPT, "parts.wasm");
}

static void test_manifest__parse_refuses_garbage_and_oversize(void **state)
{
	static const char dup[] = "{\"format\":\"agentfactory-manifest/v1\",\"format\":\"x\"}";
	art_manifest *m = NULL;
	char *big;

	(void)state;
	assert_int_equal(art_manifest_parse(&m, "not json", 8), AF_ECORRUPT);
	assert_int_equal(art_manifest_parse(&m, "[1,2]", 5), AF_ECORRUPT);
	assert_int_equal(art_manifest_parse(&m, "{}", 2), AF_ECORRUPT);
	assert_non_null(strstr(art_error_last(), "format"));
	assert_int_equal(art_manifest_parse(&m, dup, strlen(dup)), AF_ECORRUPT);
	assert_int_equal(art_manifest_parse(&m, "{\"format\":\"agentfactory-manifest/v1\"}", 37),
			 AF_ECORRUPT);
	assert_non_null(strstr(art_error_last(), "missing field"));
	big = calloc(1, ART_MANIFEST_MAX + 2);
	assert_non_null(big);
	memset(big, ' ', ART_MANIFEST_MAX + 1);
	assert_int_equal(art_manifest_parse(&m, big, ART_MANIFEST_MAX + 1), AF_ETOOBIG);
	assert_null(m);
	free(big);
}

static void test_manifest__new_rejects_bad_fields(void **state)
{
	const char *caps[] = {"log", "log"};
	art_manifest_info info = {
		.name = "alpha", .version = "1.0.0", .resolved_template_digest = d_resolved,
		.git_commit = commit, .policy_digest = d_policy, .toolchain_id = "tc",
		.native_compat_id = COMPAT, .target_triple = "x86_64-linux-gnu",
		.guest_abi_version = 1};
	art_manifest *m = NULL;
	char h[65];

	(void)state;
	info.name = "Alpha";
	assert_int_equal(art_manifest_new(&m, &info), AF_EINVAL);
	assert_non_null(strstr(art_error_last(), "name"));
	info.name = "alpha";
	info.version = "v1.0";
	assert_int_equal(art_manifest_new(&m, &info), AF_EINVAL);
	info.version = "1.0.0";
	info.git_commit = "main";
	assert_int_equal(art_manifest_new(&m, &info), AF_EINVAL);
	assert_non_null(strstr(art_error_last(), "git_commit"));
	info.git_commit = commit;
	info.capabilities = caps;
	info.n_capabilities = 2;
	assert_int_equal(art_manifest_new(&m, &info), AF_EINVAL);
	assert_non_null(strstr(art_error_last(), "duplicate capability"));
	info.n_capabilities = 0;
	info.guest_abi_version = 0;
	assert_int_equal(art_manifest_new(&m, &info), AF_EINVAL);
	info.guest_abi_version = 1;
	assert_null(m);
	assert_int_equal(art_manifest_new(&m, &info), 0);
	/* incomplete: no parts yet */
	assert_int_equal(art_manifest_validate(m), AF_ECORRUPT);
	hex_of(h, "x");
	assert_int_equal(art_manifest_add_part(m, ART_PART_WASM, ART_MEDIA_NATIVE, h, 1), AF_EINVAL);
	assert_int_equal(art_manifest_add_part(m, ART_PART_WASM, ART_MEDIA_WASM, "XYZ", 1), AF_EINVAL);
	assert_int_equal(art_manifest_add_part(m, "../x", ART_MEDIA_WASM, h, 1), AF_EINVAL);
	assert_int_equal(art_manifest_add_part(m, ART_PART_WASM, ART_MEDIA_WASM, h,
					       (uint64_t)ART_PART_MAX_SIZE + 1), AF_EINVAL);
	assert_int_equal(art_manifest_add_part(m, ART_PART_WASM, ART_MEDIA_WASM, h, 1), 0);
	assert_int_equal(art_manifest_add_part(m, ART_PART_WASM, ART_MEDIA_WASM, h, 1), AF_EEXISTS);
	assert_int_equal(art_manifest_add_part(m, "native/abc", ART_MEDIA_NATIVE, h, 1), AF_EINVAL);
	art_manifest_free(m);
}

static void test_manifest__version_precedence(void **state)
{
	static const char *const order[] = {
		"0.9.9", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
		"1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.9.0", "1.10.0",
		"2.0.0", "18446744073709551615.0.0"};
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		for (j = 0; j < sizeof(order) / sizeof(order[0]); j++) {
			int c = art_manifest_version_cmp(order[i], order[j]);

			if ((i < j && c >= 0) || (i > j && c <= 0) || (i == j && c != 0))
				fail_msg("cmp(%s, %s) = %d", order[i], order[j], c);
		}
	assert_int_equal(art_manifest_version_cmp("1.0.0+build.1", "1.0.0+build.2"), 0);
	assert_false(art_manifest_version_valid("1.0"));
	assert_false(art_manifest_version_valid("01.0.0"));
	assert_false(art_manifest_version_valid("1.0.0-01"));
	assert_false(art_manifest_version_valid("1.0.0-"));
	assert_false(art_manifest_version_valid("18446744073709551616.0.0"));
	assert_true(art_manifest_version_valid("1.0.0-0.3.7+exp.sha.5114f85"));
	assert_true(art_manifest_version_cmp("garbage", "0.0.1") < 0);
}

static void test_manifest__native_by_compat_id(void **state)
{
	art_manifest *m = make_manifest("alpha", "1.2.0", 0);
	const art_manifest_part *p = NULL;
	char name[ART_PART_NAME_MAX], h[65];

	(void)state;
	assert_int_equal(art_manifest_native_for(&p, m, COMPAT), 0);
	art_manifest_native_part_name(name, COMPAT);
	assert_string_equal(p->name, name);
	assert_int_equal(strlen(name), 7 + 16);
	assert_int_equal(art_manifest_native_for(&p, m, "aarch64-linux-gnu/wasm-rt-2"), AF_EVERSION);
	assert_null(p);
	assert_non_null(strstr(art_error_last(), COMPAT));
	/* a second target can be added next to the first */
	hex_of(h, "arm native");
	assert_int_equal(art_manifest_add_native(m, "aarch64-linux-gnu/wasm-rt-2", h, 10), 0);
	assert_int_equal(art_manifest_native_for(&p, m, "aarch64-linux-gnu/wasm-rt-2"), 0);
	assert_int_equal(art_manifest_validate(m), 0);
	art_manifest_free(m);
}

static void test_manifest__verify_signed_pair(void **state)
{
	art_manifest *m = make_manifest("alpha", "1.2.0", 0), *got = NULL;
	char *bytes, *env = NULL, *env_role = NULL, *env_type = NULL, *env_odd = NULL, *odd;
	size_t len;
	art_sig_info info;

	(void)state;
	bytes = serialize(m, &len);
	assert_int_equal(art_sig_sign_payload(&env, fx.builder, ART_MANIFEST_PAYLOAD_TYPE, bytes,
					      len), 0);
	assert_int_equal(art_manifest_verify_signed(&got, &info, fx.kr, bytes, len, env,
						    strlen(env), NOW), 0);
	assert_string_equal(info.keyid, art_key_id(fx.builder));
	assert_string_equal(got->name, "alpha");
	art_manifest_free(got);
	got = NULL;

	/* changed manifest */
	bytes[10] ^= 1;
	assert_int_equal(art_manifest_verify_signed(&got, NULL, fx.kr, bytes, len, env,
						    strlen(env), NOW), AF_ESIGNATURE);
	bytes[10] ^= 1;
	assert_null(got);
	/* a template-signer key is not a builder */
	assert_int_equal(art_sig_sign_payload(&env_role, fx.signer, ART_MANIFEST_PAYLOAD_TYPE,
					      bytes, len), 0);
	assert_int_equal(art_manifest_verify_signed(&got, NULL, fx.kr, bytes, len, env_role,
						    strlen(env_role), NOW), AF_EDENIED);
	/* a signature of another document type */
	assert_int_equal(art_sig_sign_payload(&env_type, fx.builder, ART_SIG_TYPE_TEMPLATE, bytes,
					      len), 0);
	assert_int_equal(art_manifest_verify_signed(&got, NULL, fx.kr, bytes, len, env_type,
						    strlen(env_type), NOW), AF_ESIGNATURE);
	/* signed, valid, but not canonical (pretty-printed) */
	{
		json_t *root = json_loads(bytes, 0, NULL);

		odd = json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS);
		json_decref(root);
	}
	assert_int_equal(art_sig_sign_payload(&env_odd, fx.builder, ART_MANIFEST_PAYLOAD_TYPE, odd,
					      strlen(odd)), 0);
	assert_int_equal(art_manifest_verify_signed(&got, NULL, fx.kr, odd, strlen(odd), env_odd,
						    strlen(env_odd), NOW), AF_ECORRUPT);
	assert_non_null(strstr(art_error_last(), "canonical"));
	/* before the key's window */
	assert_int_equal(art_manifest_verify_signed(&got, NULL, fx.kr, bytes, len, env,
						    strlen(env), T_2026 - 1), AF_EEXPIRED);
	assert_null(got);
	free(odd);
	free(env);
	free(env_role);
	free(env_type);
	free(env_odd);
	free(bytes);
	art_manifest_free(m);
}

static void test_manifest__check_part(void **state)
{
	art_manifest *m = make_manifest("alpha", "1.2.0", 0);
	const art_manifest_part *p = art_manifest_part_get(m, ART_PART_WASM);

	(void)state;
	assert_int_equal(art_manifest_check_part(p, "wasm bytes", 10), 0);
	assert_int_equal(art_manifest_check_part(p, "wasm byteX", 10), AF_ECORRUPT);
	assert_non_null(strstr(art_error_last(), "digest"));
	assert_int_equal(art_manifest_check_part(p, "wasm bytes!", 11), AF_ECORRUPT);
	assert_non_null(strstr(art_error_last(), "size"));
	art_manifest_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_manifest__canonical_round_trip),
		cmocka_unit_test(test_manifest__reproducible_regardless_of_input_order),
		cmocka_unit_test(test_manifest__provenance_is_slsa_without_time),
		cmocka_unit_test(test_manifest__strict_parse_refusals),
		cmocka_unit_test(test_manifest__parse_refuses_garbage_and_oversize),
		cmocka_unit_test(test_manifest__new_rejects_bad_fields),
		cmocka_unit_test(test_manifest__version_precedence),
		cmocka_unit_test(test_manifest__native_by_compat_id),
		cmocka_unit_test(test_manifest__verify_signed_pair),
		cmocka_unit_test(test_manifest__check_part),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
