/*
 * test_pkcs11.c - private keys in a PKCS#11 token through OpenSSL's pkcs11
 * engine (art_key_load_private with a "pkcs11:" URI): the engine missing, a
 * module that does not load, a wrong PIN, a key that is not in the token, and, with a
 * SoftHSM2 token of its own (skipped where SoftHSM2 or pkcs11-tool is not
 * installed), a key that signs what its public half verifies.
 * tests/integration/test_pkcs11_cli.sh drives the same through the CLI.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "art/error.h"
#include "art/keys.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SOFTHSM "/usr/lib/softhsm/libsofthsm2.so"

/* libp11 allocates its method tables once per process and never frees
 * them (tests/integration/lsan-pkcs11.supp): nothing of ours is hidden. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:RSA_meth_dup\nleak:EVP_PKEY_meth_new\nleak:EC_KEY_METHOD_new\n";
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void test_pkcs11__engine_missing_or_module_broken(void **state)
{
	art_key *k = NULL;
	const char *uri = "pkcs11:token=none;object=none;type=private";
	int rc;

	(void)state;
	/* no engine where OpenSSL looks for it */
	setenv("OPENSSL_ENGINES", "/nonexistent-engines", 1);
	assert_int_equal(art_key_load_private(&k, uri), AF_ECRYPTO);
	assert_null(k);
	assert_non_null(strstr(art_error_last(), "engine is not available"));
	assert_non_null(strstr(art_error_last(), uri));
	unsetenv("OPENSSL_ENGINES");
	/* a module that is not there: libp11 loads modules lazily, so the
	 * engine initialises and the key is simply not found */
	setenv("AF_PKCS11_MODULE", "/nonexistent/libpkcs11.so", 1);
	setenv("AF_PKCS11_PIN", "123456", 1);
	rc = art_key_load_private(&k, uri);
	unsetenv("AF_PKCS11_MODULE");
	unsetenv("AF_PKCS11_PIN");
	if (rc == AF_ECRYPTO && strstr(art_error_last(), "engine is not available")) {
		printf("SKIP: the OpenSSL pkcs11 engine is not installed\n");
		skip();
	}
	assert_int_equal(rc, AF_ENOTFOUND);
	assert_null(k);
	assert_non_null(strstr(art_error_last(), uri));
	/* empty settings are unset ones: the engine's default module (p11-kit's
	 * proxy), which has no such token, or does not initialise where the
	 * proxy is not installed */
	setenv("AF_PKCS11_MODULE", "", 1);
	setenv("AF_PKCS11_PIN", "", 1);
	rc = art_key_load_private(&k, uri);
	unsetenv("AF_PKCS11_MODULE");
	unsetenv("AF_PKCS11_PIN");
	if (rc != AF_ENOTFOUND && rc != AF_ECRYPTO)
		fail_msg("the default module: %d (%s)", rc, art_error_last());
	assert_null(k);
	assert_non_null(strstr(art_error_last(), uri));
}

static void test_pkcs11__softhsm_token(void **state)
{
	char dir[] = "/tmp/af-test-pkcs11-XXXXXX", conf[128], cmd[1024];
	art_key *k = NULL, *pub = NULL;
	char *pem = NULL;
	uint8_t *sig = NULL;
	size_t sig_len = 0;
	FILE *f;

	(void)state;
	if (access(SOFTHSM, R_OK) != 0 || system("command -v softhsm2-util pkcs11-tool "
						 ">/dev/null 2>&1") != 0) {
		printf("SKIP: SoftHSM2 (%s) or pkcs11-tool is not installed\n", SOFTHSM);
		skip();
	}
	assert_non_null(mkdtemp(dir));
	snprintf(conf, sizeof(conf), "%s/softhsm2.conf", dir);
	snprintf(cmd, sizeof(cmd), "%s/tokens", dir);
	assert_int_equal(mkdir(cmd, 0700), 0);
	f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f, "directories.tokendir = %s/tokens\nobjectstore.backend = file\n"
		   "log.level = ERROR\n", dir);
	fclose(f);
	setenv("SOFTHSM2_CONF", conf, 1);
	snprintf(cmd, sizeof(cmd),
		 "softhsm2-util --init-token --free --label af-unit --pin 123456 --so-pin 654321 "
		 ">/dev/null && pkcs11-tool --module %s --token-label af-unit --login --pin 123456 "
		 "--keypairgen --key-type rsa:2048 --label signer --id 01 >/dev/null 2>&1",
		 SOFTHSM);
	assert_int_equal(system(cmd), 0);
	setenv("AF_PKCS11_MODULE", SOFTHSM, 1);
	/* a wrong PIN or a missing object: not found, with what to check */
	setenv("AF_PKCS11_PIN", "000000", 1);
	assert_int_equal(art_key_load_private(&k, "pkcs11:token=af-unit;object=signer;type=private"),
			 AF_ENOTFOUND);
	assert_non_null(strstr(art_error_last(), "PIN"));
	setenv("AF_PKCS11_PIN", "123456", 1);
	assert_int_equal(art_key_load_private(&k, "pkcs11:token=af-unit;object=nosuchkey;type=private"),
			 AF_ENOTFOUND);
	assert_null(k);
	/* the key: it signs, its public half verifies, a changed message does not */
	if (art_key_load_private(&k, "pkcs11:token=af-unit;object=signer;type=private") != 0)
		fail_msg("load: %s", art_error_last());
	assert_int_equal(art_key_sign(&sig, &sig_len, k, "message", 7), 0);
	assert_int_equal(art_key_public_pem(&pem, k), 0);
	assert_int_equal(art_key_from_public_pem(&pub, pem, strlen(pem)), 0);
	assert_string_equal(art_key_id(pub), art_key_id(k));
	assert_int_equal(art_key_verify(pub, "message", 7, sig, sig_len), 0);
	assert_int_equal(art_key_verify(pub, "messagE", 7, sig, sig_len), AF_ESIGNATURE);
	free(sig);
	free(pem);
	art_key_free(pub);
	art_key_free(k);
	unsetenv("AF_PKCS11_MODULE");
	unsetenv("AF_PKCS11_PIN");
	unsetenv("SOFTHSM2_CONF");
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pkcs11__engine_missing_or_module_broken),
		cmocka_unit_test(test_pkcs11__softhsm_token),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
