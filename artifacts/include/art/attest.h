/*
 * art/attest.h - standard attestations of an artifact: the SLSA v1
 * provenance as a DSSE-signed in-toto Statement, and a CycloneDX 1.5 SBOM.
 *
 * Two kinds of bytes, kept apart so that builds stay reproducible:
 *
 *  - Reproducible, content-addressed, covered by the manifest signature:
 *    the "provenance" part (the in-toto Statement v1 with the SLSA
 *    Provenance v1 predicate, art_manifest_provenance) and the "sbom" part
 *    (art_attest_sbom). Nothing in them depends on the clock, the machine
 *    or the clone path.
 *
 *  - Detached, not reproducible: the provenance *attestation*, a DSSE
 *    envelope (payloadType "application/vnd.in-toto+json", RSA-PSS/SHA-256
 *    by the builder key) whose payload is the same statement with
 *    runDetails.metadata (invocationId, startedOn, finishedOn) added. RSA-PSS
 *    is randomised and the times differ per run, so the envelope is stored
 *    beside the artifact (the store's "attestations" database, the
 *    bundle's signatures/ entries), never inside anything a digest names.
 *
 * Any in-toto / DSSE verifier checks the envelope with the builder's public
 * key; art_attest_verify_provenance also ties it to the artifact: the
 * statement minus runDetails.metadata must be byte-identical to the
 * manifest's provenance part, and every subject must name a part with its
 * digest. docs/provenance.md is the contract.
 *
 * Nothing here keeps state; every function may be called from many threads.
 */
#ifndef ART_ATTEST_H
#define ART_ATTEST_H

#include "art/keyring.h"
#include "art/keys.h"
#include "art/manifest.h"
#include "art/sig.h"

#include <stddef.h>
#include <time.h>

/** CycloneDX version of the SBOM part. */
#define ART_CYCLONEDX_SPEC "1.5"

/**
 * The CycloneDX 1.5 SBOM of a build, canonical JSON: metadata.component is
 * the agent (hash of its wasm), components are its parts (type "file", with
 * their hashes) and prov->components (the guest library, wasi-libc, the
 * compilers, wasm2c, ...; extra->components); dependencies say the agent depends on all of
 * them (extra may be NULL). serialNumber is a name-based UUID derived from the manifest's
 * inputs; there is no timestamp: reproducible.
 * Needs the wasm, native and source parts already added.
 * @param[out] out, out_len  caller owns out (NUL-terminated); free()
 * @return 0, AF_EINVAL (missing part, malformed component) or AF_ENOMEM
 */
int art_attest_sbom(char **out, size_t *out_len, const art_manifest *m,
		    const art_provenance_extra *extra);

/**
 * Sign the provenance statement (the exact bytes of the provenance part) as
 * a DSSE envelope, adding runDetails.metadata from extra (invocation_id,
 * started_on, finished_on; each left out when unset; extra may be NULL).
 * @param[out] out_json  the envelope, caller owns; free()
 * @param[in]  statement, len  the provenance part bytes (canonical JSON)
 * @return 0, AF_EINVAL (not a SLSA statement), AF_ETOOBIG, AF_ENOMEM or
 *         AF_ECRYPTO
 */
int art_attest_sign_provenance(char **out_json, const art_key *builder, const void *statement,
			       size_t len, const art_provenance_extra *extra);

/**
 * Verify a provenance attestation of the artifact whose (already verified)
 * manifest is m. The first failure decides:
 *  1. the envelope verifies: payloadType application/vnd.in-toto+json, a
 *     signature by a key trusted as builder, valid at now, not revoked
 *     (art_sig_verify_payload's errors);
 *  2. the payload is a Statement v1 with predicateType SLSA provenance v1
 *                                                   else AF_ESIGNATURE
 *  3. every subject names a part of m ("name@version/part") with the
 *     part's digest, and every output part is a subject else AF_ESIGNATURE
 *  4. the statement without runDetails.metadata is the manifest's
 *     provenance part (digest)                      else AF_ESIGNATURE
 * @param[out] info_out   may be NULL; the signer
 * @param[out] statement  may be NULL; the signed statement (caller owns;
 *                        free()), NUL-terminated
 * @return 0 or the error above; the message says what failed
 */
int art_attest_verify_provenance(art_sig_info *info_out, char **statement,
				 size_t *statement_len, const art_keyring *kr,
				 const art_manifest *m, const char *envelope, size_t envelope_len,
				 time_t now);

/**
 * The payload of an envelope, without verifying anything (for display).
 * @param[out] out, out_len  caller owns out; free()
 * @return 0 or AF_ECORRUPT
 */
int art_attest_envelope_payload(char **out, size_t *out_len, const char *envelope,
				size_t envelope_len);

#endif
