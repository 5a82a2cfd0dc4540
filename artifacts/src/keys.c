/*
 * keys.c - RSA-PSS / SHA-256 keys over OpenSSL 3 EVP (see art/keys.h).
 *
 * Invariants: every art_key holds an RSA key of ART_KEY_MIN_BITS ..
 * ART_KEY_MAX_BITS bits and its id, computed once at creation. Keys of other
 * types (EC, Ed25519, RSA-PSS-restricted) never get past key_wrap(), so the
 * sign and verify paths only ever see plain RSA.
 *
 * Every PSS parameter is set explicitly on both sides (digest SHA-256, MGF1
 * SHA-256, salt = digest length) rather than left to library defaults.
 */
#include "art/keys.h"

#include "art/error.h"
#include "art/util.h"
#include "keys_internal.h"

#include <openssl/bio.h>
#include <openssl/buffer.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

struct art_key {
	EVP_PKEY *pkey;
	char id[ART_SHA256_HEX_LEN + 1];
	bool has_private;
	unsigned bits;
};

/*
 * Check the key is usable and wrap it. Takes ownership of pkey, also on
 * failure. what names the source in messages ("generated key", a path).
 */
static int key_wrap(art_key **out, EVP_PKEY *pkey, bool has_private, const char *what)
{
	unsigned char *der = NULL;
	art_key *key = NULL;
	int der_len, bits, rc = 0;

	*out = NULL;
	if (!EVP_PKEY_is_a(pkey, "RSA")) {
		rc = art_error_set(AF_EINVAL,
				   "%s: unsupported key type '%s': only RSA keys are accepted "
				   "(generate one with: agentfactory keygen --role ROLE --out DIR)",
				   what, EVP_PKEY_get0_type_name(pkey) ? EVP_PKEY_get0_type_name(pkey) : "?");
		goto cleanup;
	}
	bits = EVP_PKEY_get_bits(pkey);
	if (bits < (int)ART_KEY_MIN_BITS || bits > (int)ART_KEY_MAX_BITS) {
		rc = art_error_set(AF_EINVAL,
				   "%s: RSA key of %d bits refused: keys must have %u to %u bits "
				   "(generate a new one with: agentfactory keygen --role ROLE --out DIR)",
				   what, bits, ART_KEY_MIN_BITS, ART_KEY_MAX_BITS);
		goto cleanup;
	}
	der_len = i2d_PUBKEY(pkey, &der);
	if (der_len <= 0) {
		rc = art_error_openssl("encoding the public key");
		goto cleanup;
	}
	key = calloc(1, sizeof(*key));
	if (!key) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	art_sha256_hex(der, (size_t)der_len, key->id);
	key->pkey = pkey;
	key->has_private = has_private;
	key->bits = (unsigned)bits;
	pkey = NULL;
	*out = key;
cleanup:
	OPENSSL_free(der);
	EVP_PKEY_free(pkey);
	return rc;
}

int art_key_generate(art_key **out, unsigned bits)
{
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	int rc = 0;

	*out = NULL;
	if (bits == 0)
		bits = ART_KEY_DEFAULT_BITS;
	if (bits < ART_KEY_MIN_BITS || bits > ART_KEY_MAX_BITS)
		return art_error_set(AF_EINVAL,
				     "refusing to generate a %u-bit RSA key: use %u to %u bits",
				     bits, ART_KEY_MIN_BITS, ART_KEY_MAX_BITS);
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	if (!ctx || EVP_PKEY_keygen_init(ctx) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)bits) <= 0 ||
	    EVP_PKEY_generate(ctx, &pkey) <= 0) {
		rc = art_error_openssl("generating an RSA key");
		goto cleanup;
	}
	rc = key_wrap(out, pkey, true, "generated key");
	pkey = NULL;
cleanup:
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	return rc;
}

/* A passphrase callback that refuses: encrypted keys fail instead of prompting. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static int pem_parse(art_key **out, const char *pem, size_t len, bool want_private,
		     const char *what)
{
	EVP_PKEY *pkey = NULL;
	BIO *bio = NULL;
	int rc = 0;

	*out = NULL;
	if (len > ART_KEY_FILE_MAX)
		return art_error_set(AF_ETOOBIG, "%s: key is larger than %u bytes", what,
				     ART_KEY_FILE_MAX);
	bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	if (want_private)
		pkey = PEM_read_bio_PrivateKey_ex(bio, NULL, no_passphrase, NULL, NULL, NULL);
	else
		pkey = PEM_read_bio_PUBKEY_ex(bio, NULL, no_passphrase, NULL, NULL, NULL);
	if (!pkey) {
		ERR_clear_error();
		if (want_private && memmem(pem, len, "ENCRYPTED", 9))
			rc = art_error_set(AF_ECORRUPT,
					   "%s: the private key is encrypted; store it unencrypted "
					   "with mode 0600 (e.g. rendered by a secrets agent)", what);
		else if (want_private)
			rc = art_error_set(AF_ECORRUPT,
					   "%s: no PEM private key found (expected '-----BEGIN PRIVATE "
					   "KEY-----', as written by agentfactory keygen; is this the .pub "
					   "file?)", what);
		else
			rc = art_error_set(AF_ECORRUPT,
					   "%s: no PEM public key found (expected '-----BEGIN PUBLIC "
					   "KEY-----', as in the .pub file agentfactory keygen writes)",
					   what);
		goto cleanup;
	}
	rc = key_wrap(out, pkey, want_private, what);
cleanup:
	BIO_free(bio);
	return rc;
}

static int key_load(art_key **out, const char *path, bool want_private)
{
	char *data = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	if (art_key__is_pkcs11_uri(path)) {
		EVP_PKEY *pkey = NULL;

		if (!want_private)
			return art_error_set(AF_EINVAL, "%s: a PKCS#11 URI names a private key in a "
					     "token; give the public key as a PEM file", path);
		if ((rc = art_key__pkcs11_load(&pkey, path)) < 0)
			return rc;
		return key_wrap(out, pkey, true, path);
	}
	rc = art_file_read(&data, &len, path, ART_KEY_FILE_MAX);
	if (rc == AF_ENOTFOUND)
		return art_error_set(rc, "%s: no such key file", path);
	if (rc < 0)
		return rc;
	rc = pem_parse(out, data, len, want_private, path);
	OPENSSL_clear_free(data, len);
	return rc;
}

int art_key_load_private(art_key **out, const char *path)
{
	return key_load(out, path, true);
}

int art_key_load_public(art_key **out, const char *path)
{
	return key_load(out, path, false);
}

int art_key_from_public_pem(art_key **out, const char *pem, size_t len)
{
	return pem_parse(out, pem, len, false, "public key");
}

/* The private (PKCS#8) or public (SPKI) PEM of key as a new NUL-terminated string. */
static int pem_to_string(char **out, size_t *out_len, const art_key *key, bool private_part)
{
	BUF_MEM *mem = NULL;
	BIO *bio = NULL;
	char *s = NULL;
	int rc = 0, ok;

	*out = NULL;
	*out_len = 0;
	/* A secure-memory BIO wipes its buffer when freed: it may hold a private key. */
	bio = BIO_new(private_part ? BIO_s_secmem() : BIO_s_mem());
	if (!bio) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	if (private_part)
		ok = PEM_write_bio_PrivateKey(bio, key->pkey, NULL, NULL, 0, NULL, NULL);
	else
		ok = PEM_write_bio_PUBKEY(bio, key->pkey);
	if (!ok) {
		rc = art_error_openssl("encoding the key as PEM");
		goto cleanup;
	}
	BIO_get_mem_ptr(bio, &mem);
	s = malloc(mem->length + 1);
	if (!s) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	memcpy(s, mem->data, mem->length);
	s[mem->length] = '\0';
	*out = s;
	*out_len = mem->length;
cleanup:
	BIO_free(bio);
	return rc;
}

int art_key_save_private(const art_key *key, const char *path)
{
	char *pem = NULL;
	size_t len = 0;
	int rc;

	if (!key->has_private)
		return art_error_set(AF_EINVAL, "%s: cannot save key %s as private: it is a public key",
				     path, key->id);
	rc = pem_to_string(&pem, &len, key, true);
	if (rc < 0)
		return rc;
	rc = art_file_write_atomic(path, pem, len, 0600);
	OPENSSL_clear_free(pem, len);
	return rc;
}

int art_key_public_pem(char **out, const art_key *key)
{
	size_t len;

	return pem_to_string(out, &len, key, false);
}

const char *art_key_id(const art_key *key)
{
	return key->id;
}

bool art_key_is_private(const art_key *key)
{
	return key->has_private;
}

unsigned art_key_bits(const art_key *key)
{
	return key->bits;
}

int art_key_public_copy(art_key **out, const art_key *key)
{
	const unsigned char *p;
	unsigned char *der = NULL;
	EVP_PKEY *pub = NULL;
	int der_len, rc;

	*out = NULL;
	der_len = i2d_PUBKEY(key->pkey, &der);
	if (der_len <= 0)
		return art_error_openssl("encoding the public key");
	p = der;
	pub = d2i_PUBKEY(NULL, &p, der_len);
	OPENSSL_free(der);
	if (!pub)
		return art_error_openssl("decoding the public key");
	rc = key_wrap(out, pub, false, "public key");
	return rc;
}

/* Set up ctx for RSA-PSS / SHA-256 / MGF1-SHA-256 / salt = 32, to sign or verify. */
static int pss_init(EVP_MD_CTX *ctx, const art_key *key, bool sign)
{
	EVP_PKEY_CTX *pctx = NULL;
	int ok;

	if (sign)
		ok = EVP_DigestSignInit_ex(ctx, &pctx, "SHA256", NULL, NULL, key->pkey, NULL);
	else
		ok = EVP_DigestVerifyInit_ex(ctx, &pctx, "SHA256", NULL, NULL, key->pkey, NULL);
	if (ok <= 0 || EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) <= 0 || /* also for token keys */
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) <= 0)
		return art_error_openssl(sign ? "setting up RSA-PSS signing" :
					 "setting up RSA-PSS verification");
	return 0;
}

int art_key_sign(uint8_t **sig, size_t *sig_len, const art_key *key,
		 const void *data, size_t len)
{
	EVP_MD_CTX *ctx = NULL;
	uint8_t *buf = NULL;
	size_t n = 0;
	int rc = 0;

	*sig = NULL;
	*sig_len = 0;
	if (!key->has_private)
		return art_error_set(AF_EINVAL, "key %s is a public key: signing needs the private key "
				     "file (.key)", key->id);
	ctx = EVP_MD_CTX_new();
	if (!ctx) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	if ((rc = pss_init(ctx, key, true)) < 0)
		goto cleanup;
	if (EVP_DigestSign(ctx, NULL, &n, data, len) <= 0) {
		rc = art_error_openssl("RSA-PSS signing");
		goto cleanup;
	}
	buf = malloc(n);
	if (!buf) {
		rc = art_error_set(AF_ENOMEM, "out of memory");
		goto cleanup;
	}
	if (EVP_DigestSign(ctx, buf, &n, data, len) <= 0) {
		rc = art_error_openssl("RSA-PSS signing");
		goto cleanup;
	}
	*sig = buf;
	*sig_len = n;
	buf = NULL;
cleanup:
	free(buf);
	EVP_MD_CTX_free(ctx);
	return rc;
}

int art_key_verify(const art_key *key, const void *data, size_t len,
		   const uint8_t *sig, size_t sig_len)
{
	EVP_MD_CTX *ctx = NULL;
	int rc = 0, ok;

	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return art_error_set(AF_ENOMEM, "out of memory");
	if ((rc = pss_init(ctx, key, false)) < 0)
		goto cleanup;
	ok = EVP_DigestVerify(ctx, sig, sig_len, data, len);
	if (ok != 1) {
		/* 0 = does not verify; < 0 = malformed signature (e.g. wrong length). */
		ERR_clear_error();
		rc = art_error_set(AF_ESIGNATURE,
				   "RSA-PSS signature does not verify with key %s", key->id);
	}
cleanup:
	EVP_MD_CTX_free(ctx);
	return rc;
}

void art_key_free(art_key *key)
{
	if (!key)
		return;
	EVP_PKEY_free(key->pkey);
	free(key);
}
