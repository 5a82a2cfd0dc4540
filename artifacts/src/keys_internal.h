/*
 * keys_internal.h - private to artifacts/src: keys that live outside files.
 */
#ifndef ART_KEYS_INTERNAL_H
#define ART_KEYS_INTERNAL_H

#include <openssl/evp.h>
#include <stdbool.h>

/** Whether path is a PKCS#11 URI ("pkcs11:..."), not a file name. */
bool art_key__is_pkcs11_uri(const char *path);

/**
 * Load a private key handle from a PKCS#11 token (pkcs11.c).
 * @param[out] out  caller owns; EVP_PKEY_free
 * @return 0, AF_ECRYPTO (no engine, module failed), AF_ENOTFOUND (no such
 *         key, wrong PIN)
 */
int art_key__pkcs11_load(EVP_PKEY **out, const char *uri);

#endif
