/*
 * fuzz_manifest.c - the artifact manifest parser and the DSSE envelope
 * verifier (art_manifest_parse, art_manifest_verify_signed, art_sig_verify).
 * The first input byte picks what the rest is:
 *   0  a manifest: if art_manifest_parse accepts it, its canonical form
 *      (art_manifest_serialize) must parse and serialize to the same bytes,
 *      and, signed with the builder key, verify with
 *      art_manifest_verify_signed;
 *   1  a DSSE envelope, verified against a fixed manifest and a template
 *      (the key is not trusted: every path up to the signature check);
 *   2  a signed statement: signed with the template-signer key and verified
 *      for template "agent" 1.0.0, so the statement parser behind the
 *      signature check (steps 4-5 of art_sig_verify) sees fuzzed bytes.
 * The two RSA keys are generated at start; the keyring trusts them.
 */
#include "fuzz.h"

#include "art/error.h"
#include "art/keyring.h"
#include "art/keys.h"
#include "art/manifest.h"
#include "art/sig.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static art_key *builder, *signer;
static art_keyring *keyring;
static const time_t fuzz_now = 1790000000; /* 2026-09 */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (art_key_generate(&builder, 2048) != 0 || art_key_generate(&signer, 2048) != 0 ||
	    art_keyring_new(&keyring) != 0 ||
	    art_keyring_add(keyring, builder, ART_ROLE_BUILDER, 0, 0) != 0 ||
	    art_keyring_add(keyring, signer, ART_ROLE_TEMPLATE_SIGNER, 0, 0) != 0) {
		fprintf(stderr, "fuzz_manifest: cannot make keys: %s\n", art_error_last());
		abort();
	}
	return 0;
}

static void manifest_round_trip(const uint8_t *data, size_t size)
{
	art_manifest *m = NULL, *again = NULL, *verified = NULL;
	char *canon = NULL, *canon2 = NULL, *env = NULL;
	size_t len = 0, len2 = 0;
	int rc;

	if (art_manifest_parse(&m, data, size) != 0) {
		FUZZ_CHECK(!m, "a failed parse left a manifest");
		return;
	}
	rc = art_manifest_serialize(&canon, &len, m);
	if (rc == 0) {
		FUZZ_CHECK(art_manifest_parse(&again, canon, len) == 0,
			   "the canonical form does not parse: %s", art_error_last());
		FUZZ_CHECK(art_manifest_serialize(&canon2, &len2, again) == 0, "reserialize");
		FUZZ_CHECK(len == len2 && memcmp(canon, canon2, len) == 0,
			   "serialize is not idempotent");
		FUZZ_CHECK(art_sig_sign_payload(&env, builder, ART_MANIFEST_PAYLOAD_TYPE, canon,
						len) == 0, "sign: %s", art_error_last());
		FUZZ_CHECK(art_manifest_verify_signed(&verified, NULL, keyring, canon, len, env,
						      strlen(env), fuzz_now) == 0,
			   "a signed canonical manifest does not verify: %s", art_error_last());
	} else {
		/* Parsed but not serializable: only a manifest that fails validation. */
		FUZZ_CHECK(rc == AF_ECORRUPT || rc == AF_ETOOBIG || rc == AF_ENOMEM,
			   "serialize returned %d", rc);
	}
	art_manifest_free(verified);
	art_manifest_free(again);
	art_manifest_free(m);
	free(env);
	free(canon2);
	free(canon);
}

static const char fixed_manifest[] = "{}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	art_manifest *m = NULL;
	char *env = NULL;
	art_sig_info info;

	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0:
		manifest_round_trip(data + 1, size - 1);
		break;
	case 1:
		(void)art_sig_verify(&info, keyring, ART_ROLE_TEMPLATE_SIGNER,
				     ART_SIG_TYPE_TEMPLATE, "agent", "1.0.0", "x", 1,
				     (const char *)data + 1, size - 1, fuzz_now);
		if (art_manifest_verify_signed(&m, &info, keyring, fixed_manifest,
					       sizeof(fixed_manifest) - 1, (const char *)data + 1,
					       size - 1, fuzz_now) == 0)
			FUZZ_CHECK(0, "'{}' verified as a manifest");
		break;
	default:
		if (art_sig_sign_payload(&env, signer, ART_SIG_TYPE_TEMPLATE, data + 1,
					 size - 1) == 0)
			(void)art_sig_verify(&info, keyring, ART_ROLE_TEMPLATE_SIGNER,
					     ART_SIG_TYPE_TEMPLATE, "agent", "1.0.0", "x", 1,
					     env, strlen(env), fuzz_now);
		break;
	}
	art_manifest_free(m);
	free(env);
	return 0;
}
