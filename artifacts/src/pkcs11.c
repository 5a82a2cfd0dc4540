/*
 * pkcs11.c - private keys held in a PKCS#11 token (an HSM, a smart card,
 * SoftHSM2), used through OpenSSL's pkcs11 engine (libp11's
 * libengine-pkcs11-openssl): the key never leaves the token, OpenSSL hands
 * every signature to the token (C_Sign with CKM_RSA_PKCS_PSS).
 *
 * A key is named by an RFC 7512 URI: "pkcs11:token=...;object=...". The PIN
 * comes from the URI ("pin-value=", or "pin-source=file:...") or from
 * AF_PKCS11_PIN; the token's module (the .so) from AF_PKCS11_MODULE, else
 * the engine's default (p11-kit's proxy). The ENGINE API is deprecated in
 * OpenSSL 3 but is what Debian ships for PKCS#11 (the provider is not in
 * bookworm), so this file alone silences the deprecation warnings.
 *
 * Every load takes its own engine reference; the EVP_PKEY keeps the engine
 * alive as long as it lives.
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "keys_internal.h"

#include "art/error.h"

#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t engine_mu = PTHREAD_MUTEX_INITIALIZER;

bool art_key__is_pkcs11_uri(const char *path)
{
	return path && strncmp(path, "pkcs11:", 7) == 0;
}

int art_key__pkcs11_load(EVP_PKEY **out, const char *uri)
{
	const char *module = getenv("AF_PKCS11_MODULE"), *pin = getenv("AF_PKCS11_PIN");
	ENGINE *e = NULL;
	EVP_PKEY *pkey = NULL;
	bool inited = false;
	int rc = 0;

	*out = NULL;
	pthread_mutex_lock(&engine_mu);
	ERR_clear_error();
	e = ENGINE_by_id("pkcs11");
	if (!e) {
		rc = art_error_set(AF_ECRYPTO, "%s: the OpenSSL pkcs11 engine is not available "
				   "(install libengine-pkcs11-openssl)", uri);
		goto cleanup;
	}
	if (module && *module && !ENGINE_ctrl_cmd_string(e, "MODULE_PATH", module, 0)) {
		rc = art_error_openssl("setting the PKCS#11 module (AF_PKCS11_MODULE)");
		goto cleanup;
	}
	if (!ENGINE_init(e)) {
		rc = art_error_set(AF_ECRYPTO, "%s: the PKCS#11 module did not initialise (check "
				   "AF_PKCS11_MODULE%s%s)", uri, module ? " = " : "",
				   module ? module : "");
		goto cleanup;
	}
	inited = true;
	if (pin && *pin && !ENGINE_ctrl_cmd_string(e, "PIN", pin, 0)) {
		rc = art_error_openssl("setting the PKCS#11 PIN (AF_PKCS11_PIN)");
		goto cleanup;
	}
	pkey = ENGINE_load_private_key(e, uri, NULL, NULL);
	if (!pkey) {
		ERR_clear_error();
		rc = art_error_set(AF_ENOTFOUND, "%s: no such private key in the PKCS#11 token (or "
				   "the PIN is wrong: set it in the URI or AF_PKCS11_PIN)", uri);
		goto cleanup;
	}
	*out = pkey;
cleanup:
	if (inited)
		ENGINE_finish(e);
	ENGINE_free(e);
	pthread_mutex_unlock(&engine_mu);
	return rc;
}
