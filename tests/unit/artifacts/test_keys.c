/*
 * test_keys.c - RSA-PSS keys: generation, PEM round trips, key ids, refusal
 * of weak or foreign keys, and the fixed PSS parameters.
 *
 * Two RSA keys are generated once for the whole binary (group setup): RSA
 * generation is the slow part. Files go to a private temporary directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "art/error.h"
#include "art/keys.h"
#include "art/util.h"

#include <ftw.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct fixture {
	char dir[64];
	art_key *a;
	art_key *b;
} fixture;

static fixture fx;

static const char *tmp_path(const char *name)
{
	static char path[256];

	snprintf(path, sizeof(path), "%s/%s", fx.dir, name);
	return path;
}

static void write_text(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Write pkey as PEM with OpenSSL directly (private PKCS#8 or public SPKI). */
static void write_pkey(const char *path, EVP_PKEY *pkey, int private_part)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	if (private_part)
		assert_int_equal(PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL), 1);
	else
		assert_int_equal(PEM_write_PUBKEY(f, pkey), 1);
	assert_int_equal(fclose(f), 0);
}

static EVP_PKEY *gen_pkey(const char *type, int bits)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY *pkey = NULL;

	assert_non_null(ctx);
	assert_true(EVP_PKEY_keygen_init(ctx) > 0);
	if (bits)
		assert_true(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, bits) > 0);
	assert_true(EVP_PKEY_generate(ctx, &pkey) > 0);
	EVP_PKEY_CTX_free(ctx);
	return pkey;
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
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/af-test-keys-XXXXXX");
	if (!mkdtemp(fx.dir))
		return -1;
	if (art_key_generate(&fx.a, 2048) < 0 || art_key_generate(&fx.b, 0) < 0)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	art_key_free(fx.a);
	art_key_free(fx.b);
	nftw(fx.dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static void test_keys__generate_defaults_and_flags(void **state)
{
	(void)state;
	assert_true(art_key_is_private(fx.a));
	assert_int_equal(art_key_bits(fx.a), 2048);
	assert_int_equal(art_key_bits(fx.b), ART_KEY_DEFAULT_BITS);
	assert_int_equal(strlen(art_key_id(fx.a)), 64);
	assert_string_not_equal(art_key_id(fx.a), art_key_id(fx.b));
}

static void test_keys__save_load_round_trip(void **state)
{
	art_key *priv = NULL, *pub = NULL, *frompem = NULL;
	char *pem = NULL, *file = NULL;
	size_t len = 0;
	struct stat st;
	const char *path = tmp_path("a.key");

	(void)state;
	assert_int_equal(art_key_save_private(fx.a, path), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(art_file_read(&file, &len, path, 65536), 0);
	assert_non_null(strstr(file, "-----BEGIN PRIVATE KEY-----")); /* PKCS#8 */

	assert_int_equal(art_key_load_private(&priv, path), 0);
	assert_true(art_key_is_private(priv));
	assert_string_equal(art_key_id(priv), art_key_id(fx.a));

	assert_int_equal(art_key_public_pem(&pem, fx.a), 0);
	assert_non_null(strstr(pem, "-----BEGIN PUBLIC KEY-----"));
	assert_null(strstr(pem, "PRIVATE"));
	write_text(tmp_path("a.pub"), pem, strlen(pem));
	assert_int_equal(art_key_load_public(&pub, tmp_path("a.pub")), 0);
	assert_false(art_key_is_private(pub));
	assert_string_equal(art_key_id(pub), art_key_id(fx.a));
	assert_int_equal(art_key_from_public_pem(&frompem, pem, strlen(pem)), 0);
	assert_string_equal(art_key_id(frompem), art_key_id(fx.a));

	free(file);
	free(pem);
	art_key_free(priv);
	art_key_free(pub);
	art_key_free(frompem);
}

static void test_keys__id_is_sha256_of_der_spki(void **state)
{
	unsigned char *der = NULL, md[SHA256_DIGEST_LENGTH];
	char hex[65], *pem = NULL;
	EVP_PKEY *pkey;
	BIO *bio;
	int der_len;

	(void)state;
	/* Recompute independently from the public PEM with plain OpenSSL. */
	assert_int_equal(art_key_public_pem(&pem, fx.a), 0);
	bio = BIO_new_mem_buf(pem, -1);
	pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	assert_non_null(pkey);
	der_len = i2d_PUBKEY(pkey, &der);
	assert_true(der_len > 0);
	SHA256(der, (size_t)der_len, md);
	art_hex(hex, md, sizeof(md));
	assert_string_equal(art_key_id(fx.a), hex);
	OPENSSL_free(der);
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	free(pem);
}

static void test_keys__id_is_stable(void **state)
{
	art_key *copy = NULL, *again = NULL;
	char id[65];

	(void)state;
	snprintf(id, sizeof(id), "%s", art_key_id(fx.b));
	assert_int_equal(art_key_public_copy(&copy, fx.b), 0);
	assert_string_equal(art_key_id(copy), id);
	assert_false(art_key_is_private(copy));
	assert_int_equal(art_key_save_private(fx.b, tmp_path("b.key")), 0);
	assert_int_equal(art_key_load_private(&again, tmp_path("b.key")), 0);
	assert_string_equal(art_key_id(again), id);
	art_key_free(copy);
	art_key_free(again);
}

static void test_keys__small_rsa_refused(void **state)
{
	art_key *key = NULL;
	EVP_PKEY *small;

	(void)state;
	assert_int_equal(art_key_generate(&key, 1024), AF_EINVAL);
	assert_null(key);
	assert_int_equal(art_key_generate(&key, 2047), AF_EINVAL);
	assert_int_equal(art_key_generate(&key, ART_KEY_MAX_BITS + 1), AF_EINVAL);

	small = gen_pkey("RSA", 1024);
	write_pkey(tmp_path("small.key"), small, 1);
	write_pkey(tmp_path("small.pub"), small, 0);
	EVP_PKEY_free(small);
	assert_int_equal(art_key_load_private(&key, tmp_path("small.key")), AF_EINVAL);
	assert_null(key);
	assert_non_null(strstr(art_error_last(), "small.key"));
	assert_non_null(strstr(art_error_last(), "1024 bits"));
	assert_int_equal(art_key_load_public(&key, tmp_path("small.pub")), AF_EINVAL);
	assert_non_null(strstr(art_error_last(), "small.pub"));
}

static void test_keys__non_rsa_refused(void **state)
{
	art_key *key = NULL;
	EVP_PKEY *ed;

	(void)state;
	ed = gen_pkey("ED25519", 0);
	write_pkey(tmp_path("ed.key"), ed, 1);
	write_pkey(tmp_path("ed.pub"), ed, 0);
	EVP_PKEY_free(ed);
	assert_int_equal(art_key_load_private(&key, tmp_path("ed.key")), AF_EINVAL);
	assert_non_null(strstr(art_error_last(), "only RSA"));
	assert_int_equal(art_key_load_public(&key, tmp_path("ed.pub")), AF_EINVAL);
	assert_non_null(strstr(art_error_last(), "ed.pub"));
	assert_null(key);
}

static void test_keys__bad_files_refused(void **state)
{
	art_key *key = NULL;
	char *pem = NULL;
	char big[ART_KEY_FILE_MAX + 16];

	(void)state;
	assert_int_equal(art_key_load_private(&key, tmp_path("missing.key")), AF_ENOTFOUND);
	assert_non_null(strstr(art_error_last(), "missing.key"));

	write_text(tmp_path("garbage.key"), "hello\n", 6);
	assert_int_equal(art_key_load_private(&key, tmp_path("garbage.key")), AF_ECORRUPT);
	assert_non_null(strstr(art_error_last(), "garbage.key"));
	assert_int_equal(art_key_load_public(&key, tmp_path("garbage.key")), AF_ECORRUPT);

	/* A public key where a private one is expected, and the other way round. */
	assert_int_equal(art_key_public_pem(&pem, fx.a), 0);
	write_text(tmp_path("pub-as-priv.key"), pem, strlen(pem));
	assert_int_equal(art_key_load_private(&key, tmp_path("pub-as-priv.key")), AF_ECORRUPT);
	assert_non_null(strstr(art_error_last(), ".pub"));
	assert_int_equal(art_key_save_private(fx.a, tmp_path("priv-as-pub.pub")), 0);
	assert_int_equal(art_key_load_public(&key, tmp_path("priv-as-pub.pub")), AF_ECORRUPT);

	/* Truncated PEM. */
	write_text(tmp_path("trunc.pub"), pem, strlen(pem) / 2);
	assert_int_equal(art_key_load_public(&key, tmp_path("trunc.pub")), AF_ECORRUPT);

	memset(big, 'A', sizeof(big));
	write_text(tmp_path("big.pub"), big, sizeof(big));
	assert_int_equal(art_key_load_public(&key, tmp_path("big.pub")), AF_ETOOBIG);
	assert_int_equal(art_key_from_public_pem(&key, big, sizeof(big)), AF_ETOOBIG);
	assert_int_equal(art_key_from_public_pem(&key, "", 0), AF_ECORRUPT);
	assert_null(key);
	free(pem);
}

static void test_keys__encrypted_private_key_refused(void **state)
{
	art_key *key = NULL;
	EVP_PKEY *pkey;
	FILE *f;
	char *pem = NULL;
	size_t len;

	(void)state;
	/* Re-read fx.a's PEM with OpenSSL, write it encrypted. */
	assert_int_equal(art_key_save_private(fx.a, tmp_path("plain.key")), 0);
	f = fopen(tmp_path("plain.key"), "rb");
	assert_non_null(f);
	pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(pkey);
	f = fopen(tmp_path("enc.key"), "wb");
	assert_non_null(f);
	assert_int_equal(PEM_write_PKCS8PrivateKey(f, pkey, EVP_aes_256_cbc(), "secret", 6,
						   NULL, NULL), 1);
	fclose(f);
	EVP_PKEY_free(pkey);
	assert_int_equal(art_file_read(&pem, &len, tmp_path("enc.key"), 65536), 0);
	assert_non_null(strstr(pem, "ENCRYPTED"));
	free(pem);
	/* Must fail without prompting for a passphrase. */
	assert_int_equal(art_key_load_private(&key, tmp_path("enc.key")), AF_ECORRUPT);
	assert_non_null(strstr(art_error_last(), "encrypted"));
	assert_null(key);
}

static void test_keys__public_key_cannot_sign_or_be_saved_private(void **state)
{
	art_key *pub = NULL;
	uint8_t *sig = NULL;
	size_t sig_len = 0;

	(void)state;
	assert_int_equal(art_key_public_copy(&pub, fx.a), 0);
	assert_int_equal(art_key_sign(&sig, &sig_len, pub, "x", 1), AF_EINVAL);
	assert_null(sig);
	assert_int_equal(art_key_save_private(pub, tmp_path("pub.key")), AF_EINVAL);
	assert_int_equal(access(tmp_path("pub.key"), F_OK), -1);
	art_key_free(pub);
}

static void test_keys__sign_verify_and_tamper(void **state)
{
	static const char msg[] = "the quick brown fox";
	art_key *pub = NULL;
	uint8_t *sig = NULL, *sig2 = NULL;
	size_t sig_len = 0, sig2_len = 0;

	(void)state;
	assert_int_equal(art_key_sign(&sig, &sig_len, fx.a, msg, sizeof(msg) - 1), 0);
	assert_int_equal(sig_len, 256);
	assert_int_equal(art_key_public_copy(&pub, fx.a), 0);
	assert_int_equal(art_key_verify(pub, msg, sizeof(msg) - 1, sig, sig_len), 0);
	assert_int_equal(art_key_verify(fx.a, msg, sizeof(msg) - 1, sig, sig_len), 0);

	/* PSS is randomised: two signatures differ, both verify. */
	assert_int_equal(art_key_sign(&sig2, &sig2_len, fx.a, msg, sizeof(msg) - 1), 0);
	assert_memory_not_equal(sig, sig2, sig_len);
	assert_int_equal(art_key_verify(pub, msg, sizeof(msg) - 1, sig2, sig2_len), 0);

	assert_int_equal(art_key_verify(pub, "the quick brown fox!", 20, sig, sig_len),
			 AF_ESIGNATURE);
	assert_int_equal(art_key_verify(pub, msg, sizeof(msg) - 2, sig, sig_len), AF_ESIGNATURE);
	assert_int_equal(art_key_verify(fx.b, msg, sizeof(msg) - 1, sig, sig_len), AF_ESIGNATURE);
	sig[100] ^= 0x01;
	assert_int_equal(art_key_verify(pub, msg, sizeof(msg) - 1, sig, sig_len), AF_ESIGNATURE);
	sig[100] ^= 0x01;
	assert_int_equal(art_key_verify(pub, msg, sizeof(msg) - 1, sig, sig_len - 1),
			 AF_ESIGNATURE);
	assert_int_equal(art_key_verify(pub, msg, sizeof(msg) - 1, sig, 0), AF_ESIGNATURE);
	free(sig);
	free(sig2);
	art_key_free(pub);
}

/* Verify with plain OpenSSL, naming every PSS parameter. */
static int openssl_pss_verify(EVP_PKEY *pkey, int saltlen, const void *data, size_t len,
			      const uint8_t *sig, size_t sig_len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	int ok;

	assert_true(EVP_DigestVerifyInit(ctx, &pctx, EVP_sha256(), NULL, pkey) > 0);
	assert_true(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0);
	assert_true(EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) > 0);
	assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, saltlen) > 0);
	ok = EVP_DigestVerify(ctx, sig, sig_len, data, len);
	EVP_MD_CTX_free(ctx);
	return ok;
}

static void test_keys__pss_parameters_are_fixed(void **state)
{
	static const char msg[] = "payload";
	EVP_PKEY_CTX *pctx = NULL;
	EVP_MD_CTX *ctx;
	uint8_t *sig = NULL, other[512];
	size_t sig_len = 0, other_len = sizeof(other);
	EVP_PKEY *pkey;
	char *pem = NULL;
	FILE *f;

	(void)state;
	assert_int_equal(art_key_save_private(fx.a, tmp_path("pss.key")), 0);
	f = fopen(tmp_path("pss.key"), "rb");
	pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(pkey);

	/* Our signature is PSS with a 32-byte salt: plain OpenSSL agrees. */
	assert_int_equal(art_key_sign(&sig, &sig_len, fx.a, msg, sizeof(msg)), 0);
	assert_int_equal(openssl_pss_verify(pkey, 32, msg, sizeof(msg), sig, sig_len), 1);

	/* A PSS signature with the maximum salt is refused: parameters are not negotiable. */
	ctx = EVP_MD_CTX_new();
	assert_true(EVP_DigestSignInit(ctx, &pctx, EVP_sha256(), NULL, pkey) > 0);
	assert_true(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0);
	assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_MAX) > 0);
	assert_true(EVP_DigestSign(ctx, other, &other_len, (const uint8_t *)msg, sizeof(msg)) > 0);
	EVP_MD_CTX_free(ctx);
	assert_int_equal(art_key_verify(fx.a, msg, sizeof(msg), other, other_len), AF_ESIGNATURE);

	/* Nor is PKCS#1 v1.5 over the same bytes. */
	ctx = EVP_MD_CTX_new();
	other_len = sizeof(other);
	assert_true(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pkey) > 0);
	assert_true(EVP_DigestSign(ctx, other, &other_len, (const uint8_t *)msg, sizeof(msg)) > 0);
	EVP_MD_CTX_free(ctx);
	assert_int_equal(art_key_verify(fx.a, msg, sizeof(msg), other, other_len), AF_ESIGNATURE);

	EVP_PKEY_free(pkey);
	free(sig);
	free(pem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys__generate_defaults_and_flags),
		cmocka_unit_test(test_keys__save_load_round_trip),
		cmocka_unit_test(test_keys__id_is_sha256_of_der_spki),
		cmocka_unit_test(test_keys__id_is_stable),
		cmocka_unit_test(test_keys__small_rsa_refused),
		cmocka_unit_test(test_keys__non_rsa_refused),
		cmocka_unit_test(test_keys__bad_files_refused),
		cmocka_unit_test(test_keys__encrypted_private_key_refused),
		cmocka_unit_test(test_keys__public_key_cannot_sign_or_be_saved_private),
		cmocka_unit_test(test_keys__sign_verify_and_tamper),
		cmocka_unit_test(test_keys__pss_parameters_are_fixed),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
