/*
 * channel.h - private to runtime/src: what the engine needs to follow a
 * channel (docs/runtime.md, "Channels and live switch").
 *
 *  - rt_channel__peek: the channel's head record as stored, NOT verified: a
 *    cheap change check (one LMDB read snapshot, no signature) the watcher
 *    runs every poll. A change only triggers the real, verified resolve.
 *  - rt_channel__load_pinned / rt_channel__verify_pinned: load (or only
 *    re-verify) the exact artifact a release pins.
 *  - rt_channel__recheck_signers: whether the signers of a record accepted
 *    earlier are still trusted by a (new) keyring.
 */
#ifndef RT_CHANNEL_INTERNAL_H
#define RT_CHANNEL_INTERNAL_H

#include "art/keyring.h"
#include "art/release.h"
#include "art/store.h"
#include "rt/exec.h"
#include "rt/loader.h"

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/** The head record of a channel as stored (claimed, not verified). */
typedef struct rt_channel_head {
	bool exists;                                 /* false: no such channel */
	uint64_t seq, release;
	char release_digest[ART_DIGEST_STR_LEN + 1];
} rt_channel_head;

/**
 * Read the head record of channel without verifying it.
 * @param[out] out  exists false when the store has no such channel
 * @return 0 or a store error (AF_ECORRUPT, AF_ENOMEM, ...)
 */
int rt_channel__peek(rt_channel_head *out, const art_store *s, const char *channel);

/** Whether two heads name the same record. */
bool rt_channel__head_equal(const rt_channel_head *a, const rt_channel_head *b);

/**
 * Verify and load the artifact release r pins for name: the builder
 * signature, the pinned manifest digest, every part, the native code for
 * this runtime, in a sealed memfd (rt_module_from_store), and a loaded
 * manifest equal to the pin.
 * @param[out] out     caller owns one reference
 * @param[out] reason  on error: the refusal label ("pin" for a stored
 *                     manifest other than the pinned one, else as
 *                     rt/loader.h)
 * @return 0, AF_ENOTFOUND (r pins no such name), AF_ESIGNATURE (not the
 *         pinned manifest), or the loader's errors
 */
int rt_channel__load_pinned(rt_module **out, const char **reason, const art_store *s,
			    const art_keyring *kr, const art_release *r, const char *name,
			    time_t now, const rt_host_env *env);

/**
 * Verify only the signed manifest of name's pinned artifact (builder key
 * trusted by kr at now, stored manifest == pin): what a module already
 * loaded from that manifest needs to be kept after the keyring changed.
 * @param[out] reason  on error: the refusal label
 * @return 0 or the error of art_release_load_artifact
 */
int rt_channel__verify_pinned(const char **reason, const art_store *s, const art_keyring *kr,
			      const art_release *r, const char *name, time_t now);

/**
 * As rt_channel__verify_pinned for an artifact that is not pinned (the
 * "latest" mode): name@version's signed manifest must verify and be
 * manifest_digest.
 */
int rt_channel__verify_stored(const char **reason, const art_store *s, const art_keyring *kr,
			      const char *name, const char *version, const char *manifest_digest,
			      time_t now);

/**
 * Count the signers of an accepted channel record that kr still trusts as
 * release-manager at now. The signatures themselves were verified when the
 * record was accepted; only the keys' standing can have changed.
 * @param[in] need  distinct trusted signers required
 * @return 0 when at least need remain; else the most telling lookup error
 *         (AF_EREVOKED > AF_ENOTFOUND > AF_EDENIED > AF_EEXPIRED), the
 *         message naming the key
 */
int rt_channel__recheck_signers(const art_keyring *kr, const art_channel *c, unsigned need,
				time_t now);

#endif
