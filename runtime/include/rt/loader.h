/*
 * rt/loader.h - from a verified artifact to a loaded, runnable module.
 *
 * rt_module_from_store: art_store_load_verified (builder signature, the
 * manifest binding, every part's digest and size, in one snapshot), then the
 * native part for THIS runtime's compatibility id (rt/compat.h), then
 * rt_module_from_bytes on the verified bytes.
 *
 * rt_module_from_bytes: the bytes go to a memfd (MFD_CLOEXEC |
 * MFD_ALLOW_SEALING), which is sealed (F_SEAL_SHRINK | F_SEAL_GROW |
 * F_SEAL_WRITE | F_SEAL_SEAL) and then re-hashed and compared with the
 * expected digest, so the bytes dlopen maps are exactly the bytes that were
 * verified (nobody, this process included, can change a sealed memfd).
 * Then dlopen("/proc/self/fd/N", RTLD_NOW | RTLD_LOCAL), dlsym of
 * ART_WASM_NATIVE_SYMBOL, the descriptor checks (native ABI, guest ABI,
 * memcheck mode, wasm-rt version, instance layout), init with the
 * sandbox's runtime (once per loaded object), and af_describe in a sandboxed
 * instance to learn the agent's tool table and limits (rt/exec.h policy).
 * The memfd stays open while the module is loaded: its path is the object's
 * name in the dynamic loader, and a reused fd number must never make
 * dlopen return an already loaded object.
 *
 * Every refusal says why in the message and names a reason (a static
 * string used as the metric label and in logs):
 *   "signature"  the builder signature does not verify (bad, untrusted,
 *                expired or revoked key; a manifest that is not the signed one)
 *   "digest"     a part or record does not match what was signed
 *   "compat"     no native code for this runtime, or a descriptor mismatch
 *   "load"       memfd, sealing, dlopen, dlsym or init failed
 *   "describe"   af_describe failed, or describes another agent
 *   "store"      the store could not be read, or out of memory (not a
 *                verdict on the module: the engine tries again later)
 *
 * Modules are reference-counted: the engine's cache holds one reference,
 * every running invocation another, and the object is dlclose'd when the
 * last one goes.
 */
#ifndef RT_LOADER_H
#define RT_LOADER_H

#include "art/keyring.h"
#include "art/manifest.h"
#include "art/store.h"
#include "art/wasm.h"
#include "rt/exec.h"

#include <stdatomic.h>
#include <stddef.h>
#include <time.h>

typedef struct rt_module {
	atomic_int refs;
	void *dl;                      /* dlopen handle */
	int fd;                        /* the sealed memfd */
	const art_wasm_native_v1 *native;
	rt_policy *policy;
	char *describe;                /* the resolved template (af_describe) */
	size_t describe_len;
	char manifest_digest[ART_DIGEST_STR_LEN + 1]; /* "" when not from a store */
	char native_digest[ART_DIGEST_STR_LEN + 1];
} rt_module;

/**
 * Load native code from verified bytes.
 * @param[out] out      caller owns one reference; rt_module_unref
 * @param[out] reason   if not NULL, on error: a reason (see above)
 * @param[in]  so, len  the .so bytes (copied into the memfd)
 * @param[in]  digest   "sha256:<hex>" the bytes must have (the manifest's)
 * @param[in]  caps     the granted capabilities (the manifest's)
 * @param[in]  name, version  the manifest's; the describe JSON must agree.
 *                      NULL: not checked
 * @param[in]  env      limits and log for the describe call
 * @return 0; AF_ESIGNATURE (digest mismatch), AF_EVERSION (descriptor),
 *         AF_EIO (memfd, seal, dlopen, init), AF_ECORRUPT (describe),
 *         AF_ENOMEM. The message says what failed.
 */
int rt_module_from_bytes(rt_module **out, const char **reason, const void *so, size_t len,
			 const char *digest, const char *const *caps, size_t n_caps,
			 const char *name, const char *version, const rt_host_env *env);

/**
 * Verify and load name@version (NULL: latest) from a store.
 * @return 0, AF_ENOTFOUND (no such artifact), or the refusal (see above)
 */
int rt_module_from_store(rt_module **out, const char **reason, const art_store *s,
			 const art_keyring *kr, const char *name, const char *version, time_t now,
			 const rt_host_env *env);

/** Take a reference. Returns m. */
rt_module *rt_module_ref(rt_module *m);

/** Drop a reference; the last one unloads the object. NULL-safe. */
void rt_module_unref(rt_module *m);

/** The reason label of a store verification error code. Static string. */
const char *rt_loader_reason(int rc);

#endif
