/*
 * art/keys.h - RSA signing keys: generate, load, save, identify, sign, verify.
 *
 * One algorithm: RSA (2048 bits or more) with PSS padding over SHA-256, MGF1
 * with SHA-256 and a salt as long as the digest (RSA_PSS_SALTLEN_DIGEST).
 * Both sides fix every parameter, so a signature made by one build verifies
 * in any other and an attacker cannot pick weaker parameters.
 *
 * A key id is the lower-case hex SHA-256 of the key's DER SubjectPublicKeyInfo
 * (what `openssl pkey -pubin -outform DER | sha256sum` prints), so the id of a
 * private key and of its public half are the same.
 *
 * An art_key is immutable once created: several threads may use one key to
 * sign or verify at the same time.
 */
#ifndef ART_KEYS_H
#define ART_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** The smallest RSA modulus accepted anywhere (generate, load, verify). */
#define ART_KEY_MIN_BITS 2048u
/** The largest RSA modulus accepted (bounds the cost of a hostile key). */
#define ART_KEY_MAX_BITS 16384u
/** The modulus art_key_generate uses when bits is 0. */
#define ART_KEY_DEFAULT_BITS 2048u
/** A PEM key file larger than this is refused. */
#define ART_KEY_FILE_MAX (64u * 1024u)
/** The algorithm name written in keyrings and documents. */
#define ART_KEY_ALGORITHM "rsa-pss-sha256"

/** An RSA key (public, or private with its public half), plus its key id. */
typedef struct art_key art_key;

/**
 * Generate a fresh RSA key pair.
 * @param[out] out   caller owns; free with art_key_free. NULL on error.
 * @param[in]  bits  modulus size; 0 means ART_KEY_DEFAULT_BITS
 * @return 0, AF_EINVAL (bits below ART_KEY_MIN_BITS or above
 *         ART_KEY_MAX_BITS), AF_ENOMEM or AF_ECRYPTO
 */
int art_key_generate(art_key **out, unsigned bits);

/**
 * Load a private key from an unencrypted PEM file (PKCS#8 "PRIVATE KEY", as
 * art_key_save_private writes; the older "RSA PRIVATE KEY" form is also read).
 * @param[out] out   caller owns; free with art_key_free. NULL on error.
 * @param[in]  path  the file; every message names it
 * @return 0, AF_ENOTFOUND (no such file), AF_EIO, AF_ETOOBIG (over
 *         ART_KEY_FILE_MAX), AF_ECORRUPT (not a PEM private key, or
 *         encrypted), AF_EINVAL (not RSA, or fewer than ART_KEY_MIN_BITS)
 *         or AF_ENOMEM
 */
int art_key_load_private(art_key **out, const char *path);

/**
 * Load a public key from a PEM "PUBLIC KEY" (SubjectPublicKeyInfo) file.
 * Same contract and errors as art_key_load_private.
 */
int art_key_load_public(art_key **out, const char *path);

/**
 * Parse a PEM "PUBLIC KEY" from memory.
 * @param[in] pem, len  the text (need not be NUL-terminated)
 * @return 0, AF_ECORRUPT, AF_EINVAL (not RSA or too small), AF_ETOOBIG
 *         (len over ART_KEY_FILE_MAX) or AF_ENOMEM
 */
int art_key_from_public_pem(art_key **out, const char *pem, size_t len);

/**
 * Write the private key as unencrypted PKCS#8 PEM, atomically, mode 0600.
 * @return 0, AF_EINVAL (key has no private half), AF_EIO, AF_ENOMEM or
 *         AF_ECRYPTO
 */
int art_key_save_private(const art_key *key, const char *path);

/**
 * The public half as PEM "PUBLIC KEY" text (ends with a newline).
 * @param[out] out  caller owns; free()
 * @return 0, AF_ENOMEM or AF_ECRYPTO
 */
int art_key_public_pem(char **out, const art_key *key);

/**
 * The key id: 64 lower-case hex digits. Borrowed, valid while key lives.
 */
const char *art_key_id(const art_key *key);

/** Whether the key has a private half (can sign). */
bool art_key_is_private(const art_key *key);

/** The RSA modulus size in bits. */
unsigned art_key_bits(const art_key *key);

/**
 * A new key holding only the public half of key (same id).
 * @param[out] out  caller owns; free with art_key_free
 * @return 0, AF_ENOMEM or AF_ECRYPTO
 */
int art_key_public_copy(art_key **out, const art_key *key);

/**
 * Sign data with RSA-PSS / SHA-256 (salt length = 32).
 * @param[out] sig, sig_len  caller owns sig; free()
 * @return 0, AF_EINVAL (no private half), AF_ENOMEM or AF_ECRYPTO
 */
int art_key_sign(uint8_t **sig, size_t *sig_len, const art_key *key,
		 const void *data, size_t len);

/**
 * Verify an RSA-PSS / SHA-256 signature made by art_key_sign.
 * @return 0 when it verifies, AF_ESIGNATURE when it does not (wrong key,
 *         changed data, damaged or wrong-length signature), AF_ENOMEM or
 *         AF_ECRYPTO
 */
int art_key_verify(const art_key *key, const void *data, size_t len,
		   const uint8_t *sig, size_t sig_len);

/** Free a key (the private half is wiped by OpenSSL). NULL-safe. */
void art_key_free(art_key *key);

#endif
