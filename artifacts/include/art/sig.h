/*
 * art/sig.h - signed statements in DSSE envelopes.
 *
 * A signature never covers bare bytes. It covers an in-toto style statement
 * that binds a payload type, the subject's name and version, and the SHA-256
 * of the subject's exact bytes, so a valid signature cannot be replayed on
 * another template (mix-and-match), on another version of it, or on changed
 * content. The statement travels base64-encoded in a DSSE envelope
 * (https://github.com/secure-systems-lab/dsse) and each signature is
 * RSA-PSS / SHA-256 over the DSSE pre-authentication encoding (PAE) of the
 * payload type and the statement bytes:
 *
 *     "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body
 *
 * where LEN is the byte length in ASCII decimal without leading zeros. The
 * exact formats and every check are in docs/signing.md.
 *
 * The payload type is a parameter, so templates, manifests and releases each
 * get their own type and a signature of one kind never verifies as another.
 * Every type must read "application/vnd.agentfactory.<kind>.v<N>+json"; its
 * statement's predicateType is then "https://agentfactory.dev/<kind>/v<N>".
 *
 * Nothing here keeps state; every function may be called from many threads.
 */
#ifndef ART_SIG_H
#define ART_SIG_H

#include "art/keyring.h"
#include "art/keys.h"

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/** Payload type of template signatures (NAME.yaml.sig). */
#define ART_SIG_TYPE_TEMPLATE "application/vnd.agentfactory.template.v1+json"
/** Payload type of a standard in-toto attestation (a Statement v1 of any
 *  predicate, e.g. SLSA provenance): accepted by art_sig_sign_payload and
 *  art_sig_verify_payload besides the agentfactory types. */
#define ART_SIG_TYPE_INTOTO "application/vnd.in-toto+json"
/** The statement's _type. */
#define ART_SIG_STATEMENT_TYPE "https://in-toto.io/Statement/v1"
/** An envelope larger than this is refused (AF_ECORRUPT) before parsing. */
#define ART_SIG_ENVELOPE_MAX (64u * 1024u)
/** At most this many signatures in one envelope. */
#define ART_SIG_MAX_SIGNATURES 16u
/** Longest accepted name or version in a statement. */
#define ART_SIG_FIELD_MAX 256u

/** Who verified a signature. */
typedef struct art_sig_info {
	char keyid[65];  /* the key whose signature verified */
	char role[24];   /* the role it was trusted for (the required role) */
	time_t signed_at;/* the signer's claim (predicate.signed_at), 0 if absent;
			    for display only, never for a decision */
} art_sig_info;

/**
 * Build the DSSE pre-authentication encoding of (type, body). (In pae.c,
 * so that keyring.c can use it without depending on sig.c.)
 * @param[out] out, out_len  caller owns out; free()
 * @return 0, AF_ETOOBIG (over ART_SIG_ENVELOPE_MAX) or AF_ENOMEM
 */
int art_sig_pae(uint8_t **out, size_t *out_len, const char *payload_type,
		const void *body, size_t body_len);

/**
 * The predicateType that goes with a payload type.
 * @param[out] out  caller owns; free()
 * @return 0, AF_EINVAL (payload_type is not
 *         "application/vnd.agentfactory.<kind>.v<N>+json") or AF_ENOMEM
 */
int art_sig_predicate_type(char **out, const char *payload_type);

/**
 * Sign content: build the statement for (name, version, sha256(content)) and
 * wrap it in a one-signature envelope.
 * @param[out] out_json  the envelope, JSON text ending with a newline; caller
 *                       owns; free()
 * @param[in]  key       a private key
 * @return 0, AF_EINVAL (public key; bad payload type; empty or over-long
 *         name/version), AF_ETOOBIG, AF_ENOMEM or AF_ECRYPTO
 */
int art_sig_sign(char **out_json, const art_key *key, const char *payload_type,
		 const char *name, const char *version, const void *content,
		 size_t content_len);

/**
 * Wrap an arbitrary payload in a one-signature envelope (the lower layer of
 * art_sig_sign, for callers that build their own statements). payload_type
 * is an agentfactory type or ART_SIG_TYPE_INTOTO.
 * @return 0, AF_EINVAL, AF_ETOOBIG (envelope over ART_SIG_ENVELOPE_MAX),
 *         AF_ENOMEM or AF_ECRYPTO
 */
int art_sig_sign_payload(char **out_json, const art_key *key, const char *payload_type,
			 const void *payload, size_t payload_len);

/**
 * Verify an envelope for content, in this order (the first failure wins):
 *  1. the envelope parses strictly (at most ART_SIG_ENVELOPE_MAX bytes, only
 *     the DSSE fields, base64 fields valid, 1..ART_SIG_MAX_SIGNATURES
 *     signatures, 64-hex key ids)                        else AF_ECORRUPT
 *  2. payloadType == payload_type                        else AF_ESIGNATURE
 *  3. some signature's key is in kr, not revoked, trusted for required_role
 *     and valid at now, and its RSA-PSS signature over the PAE verifies;
 *     if none does, the most telling failure is returned:
 *     AF_ESIGNATURE (a usable key, bad signature) > AF_EREVOKED >
 *     AF_EEXPIRED > AF_EDENIED (wrong role) > AF_ENOTFOUND (unknown key)
 *  4. the signed statement parses, _type and predicateType are right
 *                                                        else AF_ECORRUPT /
 *                                                        AF_ESIGNATURE
 *  5. the statement's name == name, version == version, and its subject
 *     digest == sha256(content)                          else AF_ESIGNATURE
 * Name and version are compared before the digest because "signed for
 * version 1.0.0, file is 1.1.0" says more than "digest mismatch".
 * @param[out] info_out  may be NULL; filled on success
 * @param[in]  now       the time keys must be valid at (art_time_now())
 * @return 0 or the code above; the message says what failed and what to do.
 *         AF_EINVAL for caller mistakes: NULL keyring, name, version or
 *         envelope, an unknown required_role, a malformed payload_type.
 *         AF_ENOMEM / AF_ECRYPTO when the machinery fails (no verdict).
 */
int art_sig_verify(art_sig_info *info_out, const art_keyring *kr, const char *required_role,
		   const char *payload_type, const char *name, const char *version,
		   const void *content, size_t content_len, const char *envelope,
		   size_t envelope_len, time_t now);

/**
 * Steps 1-3 of art_sig_verify only: check the envelope's signature and hand
 * back the verified payload bytes (for callers with their own statements).
 * @param[out] payload, payload_len  caller owns payload; free(). NUL-terminated.
 * @return as art_sig_verify steps 1-3
 */
int art_sig_verify_payload(art_sig_info *info_out, uint8_t **payload, size_t *payload_len,
			   const art_keyring *kr, const char *required_role,
			   const char *payload_type, const char *envelope,
			   size_t envelope_len, time_t now);

#endif
